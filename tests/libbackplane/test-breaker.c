/* test-breaker.c: BpBreaker on a manual BpClock
 *
 * The acceptance scenarios of reference/resilience.md §10 that concern the
 * breaker, with its configuration: threshold 50 %, min volume 10, window
 * 10 s / 10 buckets, open 30 s, half-open permits 3, timeout 1 s where a
 * test needs one. Nothing sleeps; time moves with bp_clock_advance().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <backplane.h>

#define MS (G_GINT64_CONSTANT (1000))
#define S  (G_GINT64_CONSTANT (1000000))
#define T0 (1000 * S)

/* A fake operation that completes when the test says so ------------------ */

typedef struct
{
  guint         n_started;
  gboolean      manual;
  guint         n_fail;
  GError       *fail_error;        /* (owned) (nullable) */
  GPtrArray    *pending;           /* (element-type GTask) (owned) */
  GCancellable *last_cancellable;  /* (owned) (nullable) */
} FakeOp;

static void
fake_init (FakeOp   *f,
           gboolean  manual,
           guint     n_fail,
           GError   *fail_error)
{
  memset (f, 0, sizeof *f);
  f->manual = manual;
  f->n_fail = n_fail;
  f->fail_error = fail_error;
  f->pending = g_ptr_array_new_with_free_func (g_object_unref);
}

static void
fake_clear (FakeOp *f)
{
  g_assert_cmpuint (f->pending->len, ==, 0);
  g_clear_pointer (&f->pending, g_ptr_array_unref);
  g_clear_error (&f->fail_error);
  g_clear_object (&f->last_cancellable);
}

static void
fake_start (gpointer             op_data,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             callback_data)
{
  FakeOp *f = op_data;
  GTask *task = g_task_new (NULL, cancellable, callback, callback_data);

  f->n_started++;
  g_set_object (&f->last_cancellable, cancellable);
  if (f->manual)
    {
      g_ptr_array_add (f->pending, task);
      return;
    }
  if (f->n_started <= f->n_fail)
    g_task_return_error (task, g_error_copy (f->fail_error));
  else
    g_task_return_pointer (task, g_strdup_printf ("result-%u", f->n_started), g_free);
  g_object_unref (task);
}

static gboolean
fake_finish (gpointer       op_data,
             GAsyncResult  *result,
             gpointer      *out_result,
             GError       **error)
{
  GError *local_error = NULL;
  gpointer r = g_task_propagate_pointer (G_TASK (result), &local_error);

  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  if (out_result != NULL)
    *out_result = r;
  else
    g_free (r);
  return TRUE;
}

static const BpOperation fake_op = { fake_start, fake_finish, g_free };

static void
fake_complete (FakeOp *f,
               GError *error)
{
  GTask *task;

  g_assert_cmpuint (f->pending->len, >, 0);
  task = g_ptr_array_steal_index (f->pending, 0);
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_strdup ("late"), g_free);
  g_object_unref (task);
}

/* Fixture ---------------------------------------------------------------- */

typedef struct
{
  BpClock   *clock;
  BpBreaker *breaker;
  GMutex     mutex;          /* protects transitions: signals may come from threads */
  GArray    *transitions;    /* (element-type guint) pairs old, new */
  guint      n_would_open;
} Fixture;

static void
state_changed_cb (BpBreaker      *breaker,
                  BpBreakerState  old_state,
                  BpBreakerState  new_state,
                  Fixture        *fx)
{
  guint pair[2] = { old_state, new_state };

  g_assert_cmpint (old_state, !=, new_state);
  g_mutex_lock (&fx->mutex);
  g_array_append_vals (fx->transitions, pair, 2);
  g_mutex_unlock (&fx->mutex);
}

static void
would_open_cb (BpBreaker *breaker,
               Fixture   *fx)
{
  fx->n_would_open++;
}

static void
setup (Fixture       *fx,
       gconstpointer  data)
{
  fx->clock = bp_clock_new_manual (T0, 42);
  fx->breaker = bp_breaker_new ("test", fx->clock);
  g_object_set (fx->breaker,
                "error-threshold-percent", 50,
                "min-volume", 10,
                "window-ms", 10000,
                "n-buckets", 10,
                "open-ms", 30000,
                "open-max-ms", 300000,
                "half-open-permits", 3,
                "half-open-max-wait-ms", 0,
                NULL);
  g_mutex_init (&fx->mutex);
  fx->transitions = g_array_new (FALSE, FALSE, sizeof (guint));
  g_signal_connect (fx->breaker, "state-changed", G_CALLBACK (state_changed_cb), fx);
  g_signal_connect (fx->breaker, "would-open", G_CALLBACK (would_open_cb), fx);
}

static void
teardown (Fixture       *fx,
          gconstpointer  data)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);
  g_assert_finalize_object (fx->breaker);
  g_assert_finalize_object (fx->clock);
  g_array_unref (fx->transitions);
  g_mutex_clear (&fx->mutex);
}

static guint
n_transitions (Fixture *fx)
{
  guint n;

  g_mutex_lock (&fx->mutex);
  n = fx->transitions->len / 2;
  g_mutex_unlock (&fx->mutex);
  return n;
}

static void
assert_transition (Fixture        *fx,
                   guint           i,
                   BpBreakerState  old_state,
                   BpBreakerState  new_state)
{
  g_assert_cmpuint (i, <, n_transitions (fx));
  g_assert_cmpint (g_array_index (fx->transitions, guint, 2 * i), ==, old_state);
  g_assert_cmpint (g_array_index (fx->transitions, guint, 2 * i + 1), ==, new_state);
}

static void
iterate (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
advance (Fixture *fx,
         gint64   us)
{
  bp_clock_advance (fx->clock, us);
  iterate ();
}

/* Acquires and releases at once (or asserts the rejection). */
static void
record (Fixture          *fx,
        guint             n,
        BpBreakerOutcome  outcome)
{
  for (guint i = 0; i < n; i++)
    {
      g_autoptr(GError) error = NULL;
      BpBreakerPermit *permit = bp_breaker_try_acquire (fx->breaker, &error);

      g_assert_no_error (error);
      g_assert_nonnull (permit);
      bp_breaker_permit_release (permit, outcome);
    }
}

static guint64
stat_t (Fixture    *fx,
        const char *key)
{
  g_autoptr(GVariant) stats = bp_breaker_dup_stats (fx->breaker);
  guint64 v = 0;

  g_assert_true (g_variant_lookup (stats, key, "t", &v));
  return v;
}

static gint64
stat_x (Fixture    *fx,
        const char *key)
{
  g_autoptr(GVariant) stats = bp_breaker_dup_stats (fx->breaker);
  gint64 v = 0;

  g_assert_true (g_variant_lookup (stats, key, "x", &v));
  return v;
}

/* Returns the retry-after of a rejection (asserting it is one). */
static gint64
rejected_retry_after (Fixture *fx)
{
  g_autoptr(GError) error = NULL;
  BpBreakerPermit *permit = bp_breaker_try_acquire (fx->breaker, &error);

  g_assert_null (permit);
  g_assert_error (error, BP_ERROR, BP_ERROR_CIRCUIT_OPEN);
  return bp_error_get_retry_after (error);
}

static void
trip (Fixture *fx)
{
  record (fx, 10, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
}

/* §10.1 ------------------------------------------------------------------ */

static void
test_min_volume (Fixture       *fx,
                 gconstpointer  data)
{
  record (fx, 9, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  g_assert_cmpuint (n_transitions (fx), ==, 0);

  record (fx, 1, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
  g_assert_cmpuint (n_transitions (fx), ==, 1);
  assert_transition (fx, 0, BP_BREAKER_CLOSED, BP_BREAKER_OPEN);
  g_assert_cmpint (stat_x (fx, "opened-at"), ==, T0);
}

static void
test_threshold_inclusive (Fixture       *fx,
                          gconstpointer  data)
{
  /* 5 of 10 = 50 % >= 50 %: opens */
  record (fx, 5, BP_BREAKER_OUTCOME_SUCCESS);
  record (fx, 4, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  record (fx, 1, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
  g_assert_cmpuint (n_transitions (fx), ==, 1);

  /* just under: 5 of 11 = 45 % stays closed */
  bp_breaker_reset (fx->breaker);
  record (fx, 6, BP_BREAKER_OUTCOME_SUCCESS);
  record (fx, 5, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
}

static void
test_threshold_exclusive (Fixture       *fx,
                          gconstpointer  data)
{
  g_object_set (fx->breaker, "threshold-inclusive", FALSE, NULL);

  /* 5 of 10 = 50 %, not > 50 %: stays closed */
  record (fx, 5, BP_BREAKER_OUTCOME_SUCCESS);
  record (fx, 5, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);

  /* 6 of 11 = 54.5 % > 50 %: opens */
  record (fx, 1, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
  g_assert_cmpuint (n_transitions (fx), ==, 1);
}

/* §10.2 ------------------------------------------------------------------ */

static void
test_window_expiry (Fixture       *fx,
                    gconstpointer  data)
{
  FakeOp f;

  /* through call_async, to check that no source is left armed */
  fake_init (&f, FALSE, G_MAXUINT, g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, "down"));
  for (guint i = 0; i < 9; i++)
    bp_breaker_call_async (fx->breaker, &fake_op, &f, NULL, NULL, NULL, NULL, NULL);
  iterate ();
  g_assert_cmpuint (f.n_started, ==, 9);
  g_assert_cmpuint (stat_t (fx, "window-volume"), ==, 9);
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);

  advance (fx, 10 * S + 1 * MS);
  g_assert_cmpuint (stat_t (fx, "window-volume"), ==, 0);
  bp_breaker_call_async (fx->breaker, &fake_op, &f, NULL, NULL, NULL, NULL, NULL);
  iterate ();
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  g_assert_cmpuint (stat_t (fx, "window-volume"), ==, 1);
  g_assert_cmpuint (stat_t (fx, "failures"), ==, 10);
  g_assert_cmpuint (n_transitions (fx), ==, 0);
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);

  fake_clear (&f);
}

static void
test_window_partial (Fixture       *fx,
                     gconstpointer  data)
{
  /* 5 failures 5 s apart are both in a 10 s window: the 10th opens it. */
  record (fx, 5, BP_BREAKER_OUTCOME_FAILURE);
  advance (fx, 5 * S);
  record (fx, 4, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpuint (stat_t (fx, "window-volume"), ==, 9);
  record (fx, 1, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);

  /* a change of the window configuration starts it afresh */
  bp_breaker_reset (fx->breaker);
  record (fx, 9, BP_BREAKER_OUTCOME_FAILURE);
  g_object_set (fx->breaker, "n-buckets", 20, NULL);
  g_assert_cmpuint (stat_t (fx, "window-volume"), ==, 0);
  record (fx, 9, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
}

/* §10.3 ------------------------------------------------------------------ */

static gboolean
unexpected_fallback (gpointer       op_data,
                     const GError  *error,
                     gpointer      *out_result,
                     GError       **fallback_error)
{
  g_assert_not_reached ();
  return FALSE;
}

static BpFailureKind
unique_violation_is_ignored (const GError *error,
                             gpointer      user_data)
{
  if (g_error_matches (error, BP_ERROR, BP_ERROR_BACKEND) &&
      g_str_has_prefix (error->message, "SQLSTATE 23505"))
    return BP_FAILURE_IGNORE;
  return bp_failure_kind_from_error (error);
}

typedef struct
{
  guint    n_callbacks;
  gboolean ok;
  gboolean degraded;
  char    *result;
  GError  *error;
} Outcome;

static void
outcome_clear (Outcome *o)
{
  g_clear_pointer (&o->result, g_free);
  g_clear_error (&o->error);
  memset (o, 0, sizeof *o);
}

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Outcome *o = user_data;

  o->n_callbacks++;
  o->ok = bp_breaker_call_finish (BP_BREAKER (source), result, (gpointer *) &o->result,
                                  &o->degraded, &o->error);
}

static void
test_what_counts (Fixture       *fx,
                  gconstpointer  data)
{
  const GError errors[] = {
    { BP_ERROR, BP_ERROR_BACKEND, (char *) "SQLSTATE 23505: duplicate key value" },
    { BP_ERROR, BP_ERROR_POOL_EXHAUSTED, (char *) "no connection within 5000 ms" },
    { BP_ERROR, BP_ERROR_LIMIT_EXCEEDED, (char *) "too many concurrent calls" },
    { BP_ERROR, BP_ERROR_INVALID_ARGUMENT, (char *) "bad sql" },
    { G_IO_ERROR, G_IO_ERROR_CANCELLED, (char *) "cancelled" },
  };
  Outcome o = { 0, };

  /* Ignored errors and concurrency-limit rejections: neither failures nor
   * volume, no fallback. */
  bp_breaker_set_classify_func (fx->breaker, unique_violation_is_ignored, NULL, NULL);
  for (guint i = 0; i < G_N_ELEMENTS (errors); i++)
    {
      FakeOp f;

      fake_init (&f, FALSE, G_MAXUINT, g_error_copy (&errors[i]));
      for (guint j = 0; j < 20; j++)
        {
          bp_breaker_call_async (fx->breaker, &fake_op, &f, NULL, unexpected_fallback, NULL, call_done_cb, &o);
          iterate ();
          g_assert_cmpuint (o.n_callbacks, ==, 1);
          g_assert_false (o.ok);
          g_assert_error (o.error, errors[i].domain, errors[i].code);
          outcome_clear (&o);
        }
      fake_clear (&f);
    }
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  g_assert_cmpuint (stat_t (fx, "ignored"), ==, 20 * G_N_ELEMENTS (errors));
  g_assert_cmpuint (stat_t (fx, "failures"), ==, 0);
  g_assert_cmpuint (stat_t (fx, "window-volume"), ==, 0);

  /* While OPEN, rejections are counted only as rejected. */
  trip (fx);
  for (guint i = 0; i < 1000; i++)
    rejected_retry_after (fx);
  g_assert_cmpuint (stat_t (fx, "rejected"), ==, 1000);
  g_assert_cmpuint (stat_t (fx, "window-volume"), ==, 10);
  g_assert_cmpuint (stat_t (fx, "window-failures"), ==, 10);
  g_assert_cmpuint (stat_t (fx, "failures"), ==, 10);
  g_assert_cmpuint (n_transitions (fx), ==, 1);
}

/* §10.4 ------------------------------------------------------------------ */

static void
test_open_retry_after (Fixture       *fx,
                       gconstpointer  data)
{
  BpBreakerPermit *permit;

  trip (fx);
  g_assert_cmpint (rejected_retry_after (fx), ==, 30000);
  g_assert_cmpint (stat_x (fx, "retry-after-ms"), ==, 30000);

  advance (fx, 30 * S - 1 * MS);
  g_assert_cmpint (rejected_retry_after (fx), ==, 1);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
  g_assert_cmpuint (n_transitions (fx), ==, 1);

  /* a fraction of a millisecond left still says 1 ms, never 0 */
  advance (fx, 999);
  g_assert_cmpint (rejected_retry_after (fx), ==, 1);

  advance (fx, 1);
  permit = bp_breaker_try_acquire (fx->breaker, NULL);
  g_assert_nonnull (permit);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_HALF_OPEN);
  g_assert_cmpuint (n_transitions (fx), ==, 2);
  assert_transition (fx, 1, BP_BREAKER_OPEN, BP_BREAKER_HALF_OPEN);
  bp_breaker_permit_release (permit, BP_BREAKER_OUTCOME_SUCCESS);
  g_assert_cmpuint (n_transitions (fx), ==, 2);
}

/* §10.5 ------------------------------------------------------------------ */

static void
test_half_open_permits (Fixture       *fx,
                        gconstpointer  data)
{
  FakeOp f;
  Outcome o[5] = { { 0, }, };
  gint64 retry_after;

  g_object_set (fx->breaker, "half-open-max-wait-ms", 5000, NULL);
  trip (fx);
  advance (fx, 30 * S);

  /* 5 calls: 3 reach the backend, 2 are rejected without touching it */
  fake_init (&f, TRUE, 0, NULL);
  for (guint i = 0; i < 5; i++)
    bp_breaker_call_async (fx->breaker, &fake_op, &f, NULL, NULL, NULL, call_done_cb, &o[i]);
  iterate ();
  g_assert_cmpuint (f.n_started, ==, 3);
  for (guint i = 3; i < 5; i++)
    {
      g_assert_cmpuint (o[i].n_callbacks, ==, 1);
      g_assert_error (o[i].error, BP_ERROR, BP_ERROR_CIRCUIT_OPEN);
    }
  /* the retry-after of a full half-open is the hung-probe guard's remainder */
  retry_after = bp_error_get_retry_after (o[3].error);
  g_assert_cmpint (retry_after, ==, 5000);

  for (guint i = 0; i < 3; i++)
    fake_complete (&f, NULL);
  iterate ();
  for (guint i = 0; i < 3; i++)
    {
      g_assert_true (o[i].ok);
      g_assert_false (o[i].degraded);
      g_assert_cmpstr (o[i].result, ==, "late");
    }
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  g_assert_cmpuint (stat_t (fx, "window-volume"), ==, 0);
  g_assert_cmpint (stat_x (fx, "open-duration-ms"), ==, 30000);
  assert_transition (fx, 2, BP_BREAKER_HALF_OPEN, BP_BREAKER_CLOSED);
  g_assert_cmpuint (n_transitions (fx), ==, 3);

  for (guint i = 0; i < 5; i++)
    outcome_clear (&o[i]);
  fake_clear (&f);
}

#define N_THREADS 10

typedef struct
{
  BpBreaker       *breaker;
  GMutex           mutex;
  GCond            cond;
  guint            n_ready;
  gboolean         go;
  gint             admitted;
  gint             rejected;
  BpBreakerPermit *permits[N_THREADS];
} Race;

static gpointer
race_thread (gpointer user_data)
{
  Race *race = user_data;
  g_autoptr(GError) error = NULL;
  BpBreakerPermit *permit;

  g_mutex_lock (&race->mutex);
  race->n_ready++;
  g_cond_broadcast (&race->cond);
  while (!race->go)
    g_cond_wait (&race->cond, &race->mutex);
  g_mutex_unlock (&race->mutex);

  permit = bp_breaker_try_acquire (race->breaker, &error);
  if (permit != NULL)
    race->permits[g_atomic_int_add (&race->admitted, 1)] = permit;
  else
    {
      g_assert_error (error, BP_ERROR, BP_ERROR_CIRCUIT_OPEN);
      g_atomic_int_inc (&race->rejected);
    }
  return NULL;
}

static void
test_half_open_permits_threads (Fixture       *fx,
                                gconstpointer  data)
{
  for (guint round = 0; round < 50; round++)
    {
      Race race = { fx->breaker, };
      GThread *threads[N_THREADS];
      guint before;

      trip (fx);
      advance (fx, 30 * S);
      before = n_transitions (fx);

      g_mutex_init (&race.mutex);
      g_cond_init (&race.cond);
      for (guint i = 0; i < N_THREADS; i++)
        threads[i] = g_thread_new ("race", race_thread, &race);
      g_mutex_lock (&race.mutex);
      while (race.n_ready < N_THREADS)
        g_cond_wait (&race.cond, &race.mutex);
      race.go = TRUE;
      g_cond_broadcast (&race.cond);
      g_mutex_unlock (&race.mutex);
      for (guint i = 0; i < N_THREADS; i++)
        g_thread_join (threads[i]);

      g_assert_cmpint (race.admitted, ==, 3);
      g_assert_cmpint (race.rejected, ==, 7);
      /* exactly one OPEN -> HALF_OPEN, whichever thread caused it */
      g_assert_cmpuint (n_transitions (fx), ==, before + 1);
      assert_transition (fx, before, BP_BREAKER_OPEN, BP_BREAKER_HALF_OPEN);

      for (guint i = 0; i < 3; i++)
        bp_breaker_permit_release (race.permits[i], BP_BREAKER_OUTCOME_SUCCESS);
      g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
      g_assert_cmpuint (n_transitions (fx), ==, before + 2);

      g_mutex_clear (&race.mutex);
      g_cond_clear (&race.cond);
    }
}

/* §10.6 ------------------------------------------------------------------ */

static void
test_half_open_growth (Fixture       *fx,
                       gconstpointer  data)
{
  const gint64 expected[] = { 30000, 60000, 100000, 100000 };
  BpBreakerPermit *probes[3];

  g_object_set (fx->breaker, "open-max-ms", 100000, NULL);
  trip (fx);

  for (guint i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      g_assert_cmpint (rejected_retry_after (fx), ==, expected[i]);
      g_assert_cmpint (stat_x (fx, "open-duration-ms"), ==, expected[i]);
      advance (fx, expected[i] * MS);

      /* three probes; the first failure reopens at once and the others'
       * results are ignored */
      for (guint p = 0; p < 3; p++)
        {
          probes[p] = bp_breaker_try_acquire (fx->breaker, NULL);
          g_assert_nonnull (probes[p]);
        }
      bp_breaker_permit_release (probes[1], BP_BREAKER_OUTCOME_FAILURE);
      g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
      bp_breaker_permit_release (probes[0], BP_BREAKER_OUTCOME_SUCCESS);
      bp_breaker_permit_release (probes[2], BP_BREAKER_OUTCOME_SUCCESS);
      g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
    }
  g_assert_cmpuint (stat_t (fx, "stale"), ==, 2 * G_N_ELEMENTS (expected));
  /* CLOSED->OPEN, then per round OPEN->HALF_OPEN and HALF_OPEN->OPEN */
  g_assert_cmpuint (n_transitions (fx), ==, 1 + 2 * G_N_ELEMENTS (expected));

  /* a close resets the open duration */
  advance (fx, 100 * S);
  record (fx, 3, BP_BREAKER_OUTCOME_SUCCESS);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  trip (fx);
  g_assert_cmpint (rejected_retry_after (fx), ==, 30000);
}

static void
test_half_open_ignored_probe (Fixture       *fx,
                              gconstpointer  data)
{
  BpBreakerPermit *probes[3];

  /* A probe that ends in an ignored error gives its slot back. */
  trip (fx);
  advance (fx, 30 * S);
  for (guint p = 0; p < 3; p++)
    probes[p] = bp_breaker_try_acquire (fx->breaker, NULL);
  rejected_retry_after (fx);
  bp_breaker_permit_release (probes[0], BP_BREAKER_OUTCOME_IGNORED);
  probes[0] = bp_breaker_try_acquire (fx->breaker, NULL);
  g_assert_nonnull (probes[0]);
  rejected_retry_after (fx);
  for (guint p = 0; p < 3; p++)
    bp_breaker_permit_release (probes[p], BP_BREAKER_OUTCOME_SUCCESS);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
}

static void
test_slow_calls (Fixture       *fx,
                 gconstpointer  data)
{
  BpBreakerPermit *permit;

  g_object_set (fx->breaker, "slow-call-ms", 500, "slow-call-percent", 50, NULL);

  for (guint i = 0; i < 10; i++)
    {
      permit = bp_breaker_try_acquire (fx->breaker, NULL);
      advance (fx, i < 5 ? 499 * MS : 500 * MS);
      if (i == 9)
        g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
      bp_breaker_permit_release (permit, BP_BREAKER_OUTCOME_SUCCESS);
    }
  /* 5 slow successes of 10: the slow-call rate opened it */
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
  g_assert_cmpuint (stat_t (fx, "slow"), ==, 5);
  g_assert_cmpuint (stat_t (fx, "failures"), ==, 0);

  /* a slow probe is a failed probe */
  advance (fx, 30 * S);
  permit = bp_breaker_try_acquire (fx->breaker, NULL);
  advance (fx, 600 * MS);
  bp_breaker_permit_release (permit, BP_BREAKER_OUTCOME_SUCCESS);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
  g_assert_cmpint (rejected_retry_after (fx), ==, 60000);
}

/* §10.7 ------------------------------------------------------------------ */

static void
test_stale_outcome (Fixture       *fx,
                    gconstpointer  data)
{
  BpBreakerPermit *old_success, *old_failure, *probe;
  g_autoptr(GVariant) stats = NULL;
  guint in_flight = 0;

  old_success = bp_breaker_try_acquire (fx->breaker, NULL);
  old_failure = bp_breaker_try_acquire (fx->breaker, NULL);
  trip (fx);
  g_assert_cmpuint (n_transitions (fx), ==, 1);

  /* a closed-admitted failure arriving while OPEN: no extension, no signal */
  advance (fx, 10 * S);
  bp_breaker_permit_release (old_failure, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (rejected_retry_after (fx), ==, 20000);
  g_assert_cmpuint (n_transitions (fx), ==, 1);

  /* a closed-admitted success while HALF_OPEN: neither closes nor takes or
   * frees a probe slot */
  advance (fx, 20 * S);
  probe = bp_breaker_try_acquire (fx->breaker, NULL);
  g_assert_nonnull (probe);
  bp_breaker_permit_release (old_success, BP_BREAKER_OUTCOME_SUCCESS);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_HALF_OPEN);
  stats = bp_breaker_dup_stats (fx->breaker);
  g_assert_true (g_variant_lookup (stats, "half-open-in-flight", "u", &in_flight));
  g_assert_cmpuint (in_flight, ==, 1);
  g_assert_cmpuint (stat_t (fx, "stale"), ==, 2);
  /* had the stale success counted, the second probe success would close it */
  bp_breaker_permit_release (probe, BP_BREAKER_OUTCOME_SUCCESS);
  record (fx, 1, BP_BREAKER_OUTCOME_SUCCESS);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_HALF_OPEN);
  record (fx, 1, BP_BREAKER_OUTCOME_SUCCESS);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  g_assert_cmpuint (n_transitions (fx), ==, 3);
}

/* §10.8 ------------------------------------------------------------------ */

static void
test_hung_probe (Fixture       *fx,
                 gconstpointer  data)
{
  BpBreakerPermit *hung[3];
  BpBreakerPermit *permit;

  g_object_set (fx->breaker, "half-open-max-wait-ms", 5000, NULL);
  trip (fx);
  advance (fx, 30 * S);
  for (guint p = 0; p < 3; p++)
    hung[p] = bp_breaker_try_acquire (fx->breaker, NULL);

  advance (fx, 5 * S - 1);
  g_assert_cmpint (rejected_retry_after (fx), ==, 1);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_HALF_OPEN);

  /* no decision after the guard: back to OPEN, as a failed trial */
  advance (fx, 1);
  g_assert_cmpint (rejected_retry_after (fx), ==, 60000);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
  assert_transition (fx, 2, BP_BREAKER_HALF_OPEN, BP_BREAKER_OPEN);

  /* and it half-opens again later with fresh probe slots */
  advance (fx, 60 * S);
  permit = bp_breaker_try_acquire (fx->breaker, NULL);
  g_assert_nonnull (permit);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_HALF_OPEN);

  /* the hung probes finally return: stale, ignored */
  for (guint p = 0; p < 3; p++)
    bp_breaker_permit_release (hung[p], BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_HALF_OPEN);
  g_assert_cmpuint (stat_t (fx, "stale"), ==, 3);
  bp_breaker_permit_release (permit, BP_BREAKER_OUTCOME_SUCCESS);
  g_assert_cmpuint (n_transitions (fx), ==, 4);
}

/* §10.9 ------------------------------------------------------------------ */

static void
test_timeout_exactly_once (Fixture       *fx,
                           gconstpointer  data)
{
  FakeOp f;
  Outcome o = { 0, };
  GCancellable *caller = g_cancellable_new ();

  g_object_set (fx->breaker, "timeout-ms", 1000, "half-open-permits", 1, NULL);
  fake_init (&f, TRUE, 0, NULL);

  bp_breaker_call_async (fx->breaker, &fake_op, &f, NULL, NULL, caller, call_done_cb, &o);
  iterate ();
  g_assert_cmpuint (f.n_started, ==, 1);
  g_assert_true (f.last_cancellable != caller);   /* a child, cancelled on timeout */
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 1);

  advance (fx, 999 * MS);
  g_assert_cmpuint (o.n_callbacks, ==, 0);
  advance (fx, 1 * MS);
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_true (g_cancellable_is_cancelled (f.last_cancellable));
  g_assert_false (g_cancellable_is_cancelled (caller));
  g_assert_cmpuint (stat_t (fx, "failures"), ==, 1);
  g_assert_cmpuint (stat_t (fx, "timeouts"), ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);

  /* the late success is discarded: no second callback, no stats */
  fake_complete (&f, NULL);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_cmpuint (stat_t (fx, "successes"), ==, 0);
  g_assert_cmpuint (stat_t (fx, "failures"), ==, 1);
  g_assert_cmpuint (stat_t (fx, "stale"), ==, 0);
  outcome_clear (&o);

  /* A timed-out half-open probe frees its slot exactly once: it reopens. */
  bp_breaker_force_open (fx->breaker);
  advance (fx, 30 * S);
  bp_breaker_call_async (fx->breaker, &fake_op, &f, NULL, NULL, NULL, call_done_cb, &o);
  iterate ();
  advance (fx, 1 * S);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
  fake_complete (&f, g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, "late failure"));
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_cmpint (rejected_retry_after (fx), ==, 60000);
  outcome_clear (&o);

  /* Completion before the timeout destroys the timeout source. */
  bp_breaker_reset (fx->breaker);
  bp_breaker_call_async (fx->breaker, &fake_op, &f, NULL, NULL, caller, call_done_cb, &o);
  iterate ();
  advance (fx, 500 * MS);
  fake_complete (&f, NULL);
  iterate ();
  g_assert_true (o.ok);
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);
  g_assert_cmpint (stat_x (fx, "p50-us"), >=, 500 * MS);
  g_assert_cmpint (stat_x (fx, "p50-us"), <=, 625 * MS);
  advance (fx, 10 * S);
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_cmpuint (stat_t (fx, "successes"), ==, 1);
  outcome_clear (&o);

  /* The caller's cancellation reaches the operation through the child. */
  bp_breaker_call_async (fx->breaker, &fake_op, &f, NULL, unexpected_fallback, caller, call_done_cb, &o);
  iterate ();
  g_cancellable_cancel (caller);
  g_assert_true (g_cancellable_is_cancelled (f.last_cancellable));
  fake_complete (&f, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"));
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (stat_t (fx, "ignored"), ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);
  outcome_clear (&o);

  fake_clear (&f);
  g_assert_finalize_object (caller);
}

/* Modes ------------------------------------------------------------------ */

static void
test_modes_disabled (Fixture       *fx,
                     gconstpointer  data)
{
  FakeOp f;
  Outcome o = { 0, };

  BpBreakerPermit *before;

  /* a call admitted before the switch and finished after it records nothing */
  before = bp_breaker_try_acquire (fx->breaker, NULL);
  bp_breaker_set_mode (fx->breaker, BP_BREAKER_MODE_DISABLED);
  g_assert_cmpuint (n_transitions (fx), ==, 0);
  bp_breaker_permit_release (before, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpuint (stat_t (fx, "stale"), ==, 0);
  record (fx, 100, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  g_assert_cmpuint (stat_t (fx, "failures"), ==, 0);
  g_assert_cmpuint (stat_t (fx, "window-volume"), ==, 0);

  fake_init (&f, FALSE, 0, NULL);
  bp_breaker_call_async (fx->breaker, &fake_op, &f, NULL, NULL, NULL, call_done_cb, &o);
  iterate ();
  g_assert_true (o.ok);
  g_assert_cmpuint (stat_t (fx, "successes"), ==, 0);
  outcome_clear (&o);
  fake_clear (&f);
}

static void
count_notify_cb (guint *counter)
{
  (*counter)++;
}

static void
test_modes_forced_open (Fixture       *fx,
                        gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  guint n_notify = 0;

  g_signal_connect_swapped (fx->breaker, "notify::mode", G_CALLBACK (count_notify_cb), &n_notify);
  g_object_set (fx->breaker, "mode", BP_BREAKER_MODE_FORCED_OPEN, NULL);
  g_object_set (fx->breaker, "mode", BP_BREAKER_MODE_FORCED_OPEN, NULL);
  g_assert_cmpuint (n_notify, ==, 1);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
  g_assert_cmpuint (n_transitions (fx), ==, 1);
  g_assert_cmpint (rejected_retry_after (fx), ==, -1);

  advance (fx, 3600 * S);
  g_assert_null (bp_breaker_try_acquire (fx->breaker, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_CIRCUIT_OPEN);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_OPEN);
  g_assert_cmpuint (n_transitions (fx), ==, 1);
  g_assert_cmpuint (stat_t (fx, "rejected"), ==, 2);

  bp_breaker_set_mode (fx->breaker, BP_BREAKER_MODE_NORMAL);
  g_assert_cmpuint (n_notify, ==, 2);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  assert_transition (fx, 1, BP_BREAKER_OPEN, BP_BREAKER_CLOSED);
  record (fx, 1, BP_BREAKER_OUTCOME_SUCCESS);
}

static void
test_modes_metrics_only (Fixture       *fx,
                         gconstpointer  data)
{
  bp_breaker_set_mode (fx->breaker, BP_BREAKER_MODE_METRICS_ONLY);
  g_assert_cmpint (bp_breaker_get_mode (fx->breaker), ==, BP_BREAKER_MODE_METRICS_ONLY);

  record (fx, 9, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpuint (fx->n_would_open, ==, 0);
  record (fx, 1, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpuint (fx->n_would_open, ==, 1);
  record (fx, 20, BP_BREAKER_OUTCOME_FAILURE);   /* admitted, counted, one signal */
  g_assert_cmpuint (fx->n_would_open, ==, 1);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  g_assert_cmpuint (stat_t (fx, "failures"), ==, 30);
  g_assert_cmpuint (n_transitions (fx), ==, 0);

  /* once back under the threshold it may fire again */
  advance (fx, 11 * S);
  record (fx, 10, BP_BREAKER_OUTCOME_SUCCESS);
  record (fx, 10, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpuint (fx->n_would_open, ==, 2);
}

/* §10.14 ----------------------------------------------------------------- */

static gboolean
cached_fallback (gpointer       op_data,
                 const GError  *error,
                 gpointer      *out_result,
                 GError       **fallback_error)
{
  guint *calls = op_data;

  (*calls)++;
  *out_result = g_strdup_printf ("cached (%s)", bp_error_code_to_nick (error->code));
  return TRUE;
}

static gboolean
failing_fallback (gpointer       op_data,
                  const GError  *error,
                  gpointer      *out_result,
                  GError       **fallback_error)
{
  g_set_error_literal (fallback_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND, "no cached value");
  return FALSE;
}

typedef struct
{
  FakeOp f;
  guint  fallback_calls;
} FallbackOp;

static void
fb_start (gpointer             op_data,
          GCancellable        *cancellable,
          GAsyncReadyCallback  callback,
          gpointer             callback_data)
{
  fake_start (&((FallbackOp *) op_data)->f, cancellable, callback, callback_data);
}

static gboolean
fb_finish (gpointer       op_data,
           GAsyncResult  *result,
           gpointer      *out_result,
           GError       **error)
{
  return fake_finish (&((FallbackOp *) op_data)->f, result, out_result, error);
}

static gboolean
fb_fallback (gpointer       op_data,
             const GError  *error,
             gpointer      *out_result,
             GError       **fallback_error)
{
  return cached_fallback (&((FallbackOp *) op_data)->fallback_calls, error, out_result, fallback_error);
}

static const BpOperation fb_op = { fb_start, fb_finish, g_free };

static void
test_fallback_degraded (Fixture       *fx,
                        gconstpointer  data)
{
  FallbackOp op;
  Outcome o = { 0, };

  g_object_set (fx->breaker, "timeout-ms", 1000, NULL);
  fake_init (&op.f, FALSE, 1, g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, "down"));
  op.fallback_calls = 0;

  /* on failure: degraded result, the failure still counts, the fallback's
   * success does not */
  bp_breaker_call_async (fx->breaker, &fb_op, &op, NULL, fb_fallback, NULL, call_done_cb, &o);
  iterate ();
  g_assert_true (o.ok);
  g_assert_true (o.degraded);
  g_assert_cmpstr (o.result, ==, "cached (Unavailable)");
  g_assert_cmpuint (stat_t (fx, "failures"), ==, 1);
  g_assert_cmpuint (stat_t (fx, "successes"), ==, 0);
  g_assert_cmpuint (stat_t (fx, "fallbacks"), ==, 1);
  outcome_clear (&o);

  /* on success: not degraded, no fallback */
  bp_breaker_call_async (fx->breaker, &fb_op, &op, NULL, fb_fallback, NULL, call_done_cb, &o);
  iterate ();
  g_assert_true (o.ok);
  g_assert_false (o.degraded);
  g_assert_cmpstr (o.result, ==, "result-2");
  g_assert_cmpuint (op.fallback_calls, ==, 1);
  outcome_clear (&o);

  /* on timeout */
  op.f.manual = TRUE;
  bp_breaker_call_async (fx->breaker, &fb_op, &op, NULL, fb_fallback, NULL, call_done_cb, &o);
  iterate ();
  advance (fx, 1 * S);
  g_assert_true (o.degraded);
  g_assert_cmpstr (o.result, ==, "cached (Timeout)");
  fake_complete (&op.f, NULL);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  outcome_clear (&o);
  op.f.manual = FALSE;

  /* on rejection; the backend is not called */
  bp_breaker_set_mode (fx->breaker, BP_BREAKER_MODE_FORCED_OPEN);
  bp_breaker_call_async (fx->breaker, &fb_op, &op, NULL, fb_fallback, NULL, call_done_cb, &o);
  iterate ();
  g_assert_true (o.degraded);
  g_assert_cmpstr (o.result, ==, "cached (CircuitOpen)");
  g_assert_cmpuint (op.f.n_started, ==, 3);
  g_assert_cmpuint (op.fallback_calls, ==, 3);
  outcome_clear (&o);

  /* a failing fallback returns the original error chained with its own */
  bp_breaker_force_open (fx->breaker);
  bp_breaker_call_async (fx->breaker, &fb_op, &op, NULL, failing_fallback, NULL, call_done_cb, &o);
  iterate ();
  g_assert_false (o.ok);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_CIRCUIT_OPEN);
  g_assert_cmpint (bp_error_get_retry_after (o.error), ==, 30000);
  g_assert_nonnull (strstr (o.error->message, "no cached value"));
  outcome_clear (&o);

  fake_clear (&op.f);
}

/* State ------------------------------------------------------------------ */

static void
count_cb (BpBreaker      *breaker,
          BpBreakerState  old_state,
          BpBreakerState  new_state,
          guint          *counter)
{
  (*counter)++;
}

static void
test_export_import (Fixture       *fx,
                    gconstpointer  data)
{
  g_autoptr(GVariant) state = NULL;
  g_autoptr(GVariant) bad = NULL;
  g_autoptr(GError) error = NULL;
  BpClock *clock2 = bp_clock_new_manual (5 * S, 1);
  BpBreaker *other = bp_breaker_new ("restored", clock2);
  BpBreakerPermit *permit;
  gint64 retry_after;
  guint n_signals = 0;

  g_signal_connect (other, "state-changed", G_CALLBACK (count_cb), &n_signals);

  /* open, grown once to 60 s, 10 s into it */
  trip (fx);
  advance (fx, 30 * S);
  permit = bp_breaker_try_acquire (fx->breaker, NULL);
  bp_breaker_permit_release (permit, BP_BREAKER_OUTCOME_FAILURE);
  advance (fx, 10 * S);
  state = bp_breaker_export_state (fx->breaker);

  g_assert_true (bp_breaker_import_state (other, state, &error));
  g_assert_no_error (error);
  g_assert_cmpint (bp_breaker_get_state (other), ==, BP_BREAKER_OPEN);
  g_assert_cmpuint (n_signals, ==, 1);
  /* importing OPEN over OPEN is no transition */
  g_assert_true (bp_breaker_import_state (other, state, NULL));
  g_assert_cmpuint (n_signals, ==, 1);
  permit = bp_breaker_try_acquire (other, &error);
  g_assert_null (permit);
  retry_after = bp_error_get_retry_after (error);
  /* 50 s left, less the wall-clock time the test took between the calls */
  g_assert_cmpint (retry_after, <=, 50000);
  g_assert_cmpint (retry_after, >=, 49000);
  g_clear_error (&error);

  /* the grown duration came along: a failed trial now doubles 60 s */
  bp_clock_advance (clock2, 50 * S);
  permit = bp_breaker_try_acquire (other, NULL);
  g_assert_nonnull (permit);
  bp_breaker_permit_release (permit, BP_BREAKER_OUTCOME_FAILURE);
  permit = bp_breaker_try_acquire (other, &error);
  g_assert_null (permit);
  g_assert_cmpint (bp_error_get_retry_after (error), ==, 120000);
  g_clear_error (&error);

  /* the mode travels too */
  g_clear_pointer (&state, g_variant_unref);
  bp_breaker_set_mode (fx->breaker, BP_BREAKER_MODE_FORCED_OPEN);
  state = bp_breaker_export_state (fx->breaker);
  bp_breaker_reset (other);
  g_assert_true (bp_breaker_import_state (other, state, NULL));
  g_assert_cmpint (bp_breaker_get_mode (other), ==, BP_BREAKER_MODE_FORCED_OPEN);
  g_assert_cmpint (bp_breaker_get_state (other), ==, BP_BREAKER_OPEN);

  /* a restart's downtime counts against the remaining open time */
  g_clear_pointer (&state, g_variant_unref);
  state = g_variant_ref_sink (g_variant_new_parsed ("{'version': <@u 1>, 'mode': <'normal'>, 'state': <'open'>,"
                                                    " 'open-remaining-ms': <@x 30000>, 'open-duration-ms': <@x 30000>,"
                                                    " 'exported-at-realtime-us': <%x>}",
                                                    g_get_real_time () - 10 * S));
  g_assert_true (bp_breaker_import_state (other, state, NULL));
  g_assert_cmpint (bp_breaker_get_mode (other), ==, BP_BREAKER_MODE_NORMAL);
  permit = bp_breaker_try_acquire (other, &error);
  g_assert_null (permit);
  g_assert_cmpint (bp_error_get_retry_after (error), <=, 20000);
  g_assert_cmpint (bp_error_get_retry_after (error), >=, 19000);
  g_clear_error (&error);
  bp_breaker_set_mode (other, BP_BREAKER_MODE_FORCED_OPEN);

  /* invalid input changes nothing */
  bad = g_variant_ref_sink (g_variant_new_parsed ("{'version': <@u 7>, 'mode': <'normal'>, 'state': <'closed'>}"));
  g_assert_false (bp_breaker_import_state (other, bad, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_clear_pointer (&bad, g_variant_unref);
  bad = g_variant_ref_sink (g_variant_new_parsed ("{'version': <@u 1>, 'mode': <'sideways'>, 'state': <'closed'>}"));
  g_assert_false (bp_breaker_import_state (other, bad, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_clear_pointer (&bad, g_variant_unref);
  bad = g_variant_ref_sink (g_variant_new_string ("open"));
  g_assert_false (bp_breaker_import_state (other, bad, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpint (bp_breaker_get_mode (other), ==, BP_BREAKER_MODE_FORCED_OPEN);

  g_assert_finalize_object (other);
  g_assert_finalize_object (clock2);
}

static void
test_stats (Fixture       *fx,
            gconstpointer  data)
{
  g_autoptr(GVariant) stats = NULL;
  double rate = 0;
  const char *state = NULL;
  gint64 p50, p90, p99;

  g_object_set (fx->breaker, "min-volume", 1000, NULL);

  /* latencies 1 .. 100 ms */
  for (guint i = 1; i <= 100; i++)
    {
      BpBreakerPermit *permit = bp_breaker_try_acquire (fx->breaker, NULL);

      bp_clock_advance (fx->clock, i * MS);
      bp_breaker_permit_release (permit, i % 4 == 0 ? BP_BREAKER_OUTCOME_FAILURE : BP_BREAKER_OUTCOME_SUCCESS);
    }

  stats = bp_breaker_dup_stats (fx->breaker);
  g_assert_true (g_variant_lookup (stats, "state", "&s", &state));
  g_assert_cmpstr (state, ==, "closed");
  g_assert_true (g_variant_lookup (stats, "error-rate", "d", &rate));
  g_assert_true (g_variant_lookup (stats, "p50-us", "x", &p50));
  g_assert_true (g_variant_lookup (stats, "p90-us", "x", &p90));
  g_assert_true (g_variant_lookup (stats, "p99-us", "x", &p99));
  g_test_message ("p50 %" G_GINT64_FORMAT " p90 %" G_GINT64_FORMAT " p99 %" G_GINT64_FORMAT, p50, p90, p99);

  /* 5 s elapsed in all: every call is still in the 10 s window */
  g_assert_cmpuint (stat_t (fx, "window-volume"), ==, 100);
  g_assert_cmpfloat (rate, ==, 25.0);
  g_assert_cmpuint (stat_t (fx, "successes"), ==, 75);
  g_assert_cmpuint (stat_t (fx, "failures"), ==, 25);
  /* bins are at most 25 % wide and report their upper bound */
  g_assert_cmpint (p50, >=, 50 * MS);
  g_assert_cmpint (p50, <=, 50 * MS * 1.25);
  g_assert_cmpint (p90, >=, 90 * MS);
  g_assert_cmpint (p90, <=, 90 * MS * 1.25);
  g_assert_cmpint (p99, >=, 99 * MS);
  g_assert_cmpint (p99, <=, 99 * MS * 1.25);

  bp_breaker_reset (fx->breaker);
  g_assert_cmpuint (stat_t (fx, "successes"), ==, 0);
  g_assert_cmpint (stat_x (fx, "p99-us"), ==, 0);
}

static void
test_reset (Fixture       *fx,
            gconstpointer  data)
{
  trip (fx);
  bp_breaker_reset (fx->breaker);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  assert_transition (fx, 1, BP_BREAKER_OPEN, BP_BREAKER_CLOSED);
  g_assert_cmpuint (stat_t (fx, "failures"), ==, 0);
  g_assert_cmpint (stat_x (fx, "opened-at"), ==, -1);
  record (fx, 9, BP_BREAKER_OUTCOME_FAILURE);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);

  /* force_open: a normal open period, then half-open as usual */
  bp_breaker_force_open (fx->breaker);
  g_assert_cmpint (rejected_retry_after (fx), ==, 30000);
  advance (fx, 30 * S);
  record (fx, 3, BP_BREAKER_OUTCOME_SUCCESS);
  g_assert_cmpint (bp_breaker_get_state (fx->breaker), ==, BP_BREAKER_CLOSED);
  g_assert_cmpuint (n_transitions (fx), ==, 5);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) g_test_add (path, Fixture, NULL, setup, func, teardown)
  ADD ("/breaker/min-volume", test_min_volume);
  ADD ("/breaker/threshold/inclusive", test_threshold_inclusive);
  ADD ("/breaker/threshold/exclusive", test_threshold_exclusive);
  ADD ("/breaker/window/expiry", test_window_expiry);
  ADD ("/breaker/window/partial", test_window_partial);
  ADD ("/breaker/what-counts", test_what_counts);
  ADD ("/breaker/open/retry-after", test_open_retry_after);
  ADD ("/breaker/half-open/permits", test_half_open_permits);
  ADD ("/breaker/half-open/permits-threads", test_half_open_permits_threads);
  ADD ("/breaker/half-open/growth", test_half_open_growth);
  ADD ("/breaker/half-open/ignored-probe", test_half_open_ignored_probe);
  ADD ("/breaker/slow-calls", test_slow_calls);
  ADD ("/breaker/stale-outcome", test_stale_outcome);
  ADD ("/breaker/hung-probe", test_hung_probe);
  ADD ("/breaker/timeout/exactly-once", test_timeout_exactly_once);
  ADD ("/breaker/modes/disabled", test_modes_disabled);
  ADD ("/breaker/modes/forced-open", test_modes_forced_open);
  ADD ("/breaker/modes/metrics-only", test_modes_metrics_only);
  ADD ("/breaker/fallback/degraded", test_fallback_degraded);
  ADD ("/breaker/export-import", test_export_import);
  ADD ("/breaker/stats", test_stats);
  ADD ("/breaker/reset", test_reset);
#undef ADD

  return g_test_run ();
}
