/* test-retry.c: BpRetry and BpRetryBudget on a manual BpClock
 *
 * Every timing here is driven by bp_clock_advance(); nothing sleeps.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>

#include <backplane.h>

#define MS (G_GINT64_CONSTANT (1000))
#define S  (G_GINT64_CONSTANT (1000000))
#define T0 (1000 * S)

/* A fake operation ------------------------------------------------------- */

/* In automatic mode the first n_fail attempts fail with fail_error and the
 * others succeed with "result-N"; each completes on the next main-loop
 * iteration. In manual mode attempts wait in @pending until the test
 * completes them. */
typedef struct
{
  guint         n_started;
  gboolean      manual;
  gboolean      ignore_cancellable; /* finish as if the cancellable were never there */
  guint         n_fail;
  GError       *fail_error;        /* (owned) (nullable) */
  GPtrArray    *pending;           /* (element-type GTask) (owned) */
  GCancellable *last_cancellable;  /* (owned) (nullable) */
} FakeOp;

static void
fake_init (FakeOp *f,
           guint   n_fail,
           GError *fail_error)
{
  memset (f, 0, sizeof *f);
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
  GTask *task = g_task_new (NULL, f->ignore_cancellable ? NULL : cancellable,
                            callback, callback_data);

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

/* Completes the oldest pending attempt; @error (transfer full) or success. */
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
    g_task_return_pointer (task, g_strdup_printf ("result-%u", f->n_started), g_free);
  g_object_unref (task);
}

/* Helpers ---------------------------------------------------------------- */

typedef struct
{
  guint    n_callbacks;
  gboolean ok;
  char    *result;
  GError  *error;
  guint    attempts;
} Outcome;

static void
outcome_clear (Outcome *o)
{
  g_clear_pointer (&o->result, g_free);
  g_clear_error (&o->error);
  memset (o, 0, sizeof *o);
}

static void
run_done_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Outcome *o = user_data;

  o->n_callbacks++;
  o->ok = bp_retry_run_finish (BP_RETRY (source), result, (gpointer *) &o->result,
                               &o->attempts, &o->error);
}

static void
iterate (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
advance (BpClock *clock,
         gint64   us)
{
  bp_clock_advance (clock, us);
  iterate ();
}

static GError *
unavailable (void)
{
  return g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, "backend down");
}

static BpRetry *
new_retry (BpClock  *clock,
           BpJitter  jitter,
           guint     base_ms,
           guint     cap_ms,
           guint     max_attempts,
           guint     deadline_ms)
{
  return g_object_new (BP_TYPE_RETRY,
                       "clock", clock,
                       "jitter", jitter,
                       "base-ms", base_ms,
                       "cap-ms", cap_ms,
                       "max-attempts", max_attempts,
                       "deadline-ms", deadline_ms,
                       NULL);
}

/* Backoff shapes --------------------------------------------------------- */

static void
test_jitter_none (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_NONE, 100, 1000, 3, 0);

  g_assert_cmpint (bp_retry_compute_delay (retry, 0, 0), ==, 100 * MS);
  g_assert_cmpint (bp_retry_compute_delay (retry, 1, 0), ==, 200 * MS);
  g_assert_cmpint (bp_retry_compute_delay (retry, 2, 0), ==, 400 * MS);
  g_assert_cmpint (bp_retry_compute_delay (retry, 3, 0), ==, 800 * MS);
  g_assert_cmpint (bp_retry_compute_delay (retry, 4, 0), ==, 1000 * MS);
  g_assert_cmpint (bp_retry_compute_delay (retry, 63, 0), ==, 1000 * MS);
  g_assert_cmpint (bp_retry_compute_delay (retry, 1000, 0), ==, 1000 * MS);

  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

/* multiplier 1.5: 100, 150, 225, 337.5 ms … capped; 1: constant */
static void
test_multiplier (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_NONE, 100, 1000, 3, 0);
  double m = 0;

  g_object_get (retry, "multiplier", &m, NULL);
  g_assert_cmpfloat (m, ==, 2.0);

  g_object_set (retry, "multiplier", 1.5, NULL);
  g_assert_cmpint (bp_retry_compute_delay (retry, 0, 0), ==, 100 * MS);
  g_assert_cmpint (bp_retry_compute_delay (retry, 1, 0), ==, 150 * MS);
  g_assert_cmpint (bp_retry_compute_delay (retry, 2, 0), ==, 225 * MS);
  g_assert_cmpint (bp_retry_compute_delay (retry, 3, 0), ==, 337500);
  g_assert_cmpint (bp_retry_compute_delay (retry, 6, 0), ==, 1000 * MS);
  g_assert_cmpint (bp_retry_compute_delay (retry, G_MAXUINT, 0), ==, 1000 * MS);

  g_object_set (retry, "multiplier", 1.0, NULL);
  for (guint n = 0; n < 100; n += 7)
    g_assert_cmpint (bp_retry_compute_delay (retry, n, 0), ==, 100 * MS);

  g_object_set (retry, "multiplier", 10.0, NULL);
  g_assert_cmpint (bp_retry_compute_delay (retry, 1, 0), ==, 1000 * MS);
  g_assert_cmpint (bp_retry_compute_delay (retry, 1000, 0), ==, 1000 * MS);

  /* full jitter draws within [0, base·m^n] */
  g_object_set (retry, "multiplier", 1.5, "jitter", BP_JITTER_FULL, NULL);
  for (guint i = 0; i < 1000; i++)
    {
      gint64 d = bp_retry_compute_delay (retry, 2, 0);

      g_assert_cmpint (d, >=, 0);
      g_assert_cmpint (d, <=, 225 * MS);
    }

  /* a run sleeps the same schedule */
  {
    FakeOp f;
    Outcome o = { 0, };

    g_object_set (retry, "jitter", BP_JITTER_NONE, "max-attempts", 3, NULL);
    fake_init (&f, 2, unavailable ());
    bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
    iterate ();
    advance (clock, 100 * MS);
    g_assert_cmpuint (f.n_started, ==, 2);
    advance (clock, 149 * MS);
    g_assert_cmpuint (f.n_started, ==, 2);
    advance (clock, 1 * MS);
    g_assert_cmpuint (f.n_started, ==, 3);
    g_assert_true (o.ok);
    outcome_clear (&o);
    fake_clear (&f);
  }

  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

#define N_SAMPLES 10000

/* Draws N_SAMPLES delays, asserts each lies in [lo, hi], returns the mean. */
static double
sample_mean (BpRetry *retry,
             guint    retry_index,
             gint64   prev_us,
             gint64   lo,
             gint64   hi)
{
  double sum = 0;

  for (guint i = 0; i < N_SAMPLES; i++)
    {
      gint64 d = bp_retry_compute_delay (retry, retry_index, prev_us);

      g_assert_cmpint (d, >=, lo);
      g_assert_cmpint (d, <=, hi);
      sum += (double) d;
    }
  return sum / N_SAMPLES;
}

static void
assert_within_5_percent (double mean,
                         double expected)
{
  g_test_message ("mean %.1f, analytic %.1f", mean, expected);
  g_assert_cmpfloat (fabs (mean - expected), <=, 0.05 * expected);
}

static void
test_jitter_full (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 7);
  BpRetry *retry = new_retry (clock, BP_JITTER_FULL, 100, 10000, 3, 0);
  double mean;

  /* n = 3: t = min(cap, base·2^3) = 800 ms, uniform in [0, t], mean t/2 */
  mean = sample_mean (retry, 3, 0, 0, 800 * MS);
  assert_within_5_percent (mean, 400 * MS);

  /* capped: n = 10 → t = 10 s */
  mean = sample_mean (retry, 10, 0, 0, 10000 * MS);
  assert_within_5_percent (mean, 5000 * MS);

  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

static void
test_jitter_equal (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 8);
  BpRetry *retry = new_retry (clock, BP_JITTER_EQUAL, 100, 10000, 3, 0);
  double mean;

  /* t = 800 ms: t/2 + uniform [0, t/2] ∈ [t/2, t], mean 3t/4 */
  mean = sample_mean (retry, 3, 0, 400 * MS, 800 * MS);
  assert_within_5_percent (mean, 600 * MS);

  mean = sample_mean (retry, 20, 0, 5000 * MS, 10000 * MS);
  assert_within_5_percent (mean, 7500 * MS);

  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

static void
test_jitter_decorrelated (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 9);
  BpRetry *retry = new_retry (clock, BP_JITTER_DECORRELATED, 100, 10000, 3, 0);
  double mean;
  double a = 100, b = 3000, cap = 2000;

  /* prev = 1 s: uniform in [base, 3·prev] = [100, 3000] ms, mean 1550 ms */
  mean = sample_mean (retry, 5, 1000 * MS, 100 * MS, 3000 * MS);
  assert_within_5_percent (mean, 1550 * MS);

  /* the first sleep: prev = base → [100, 300] ms */
  mean = sample_mean (retry, 0, 0, 100 * MS, 300 * MS);
  assert_within_5_percent (mean, 200 * MS);

  /* capped: min(2 s, uniform [100, 3000] ms) has mean
   * P(U < cap)·E[U | U < cap] + P(U ≥ cap)·cap */
  g_object_set (retry, "cap-ms", 2000, NULL);
  mean = sample_mean (retry, 5, 1000 * MS, 100 * MS, 2000 * MS);
  assert_within_5_percent (mean, MS * ((cap - a) / (b - a) * (a + cap) / 2 + (b - cap) / (b - a) * cap));

  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

static void
test_overflow_1000 (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 10);
  const guint caps[] = { 1, 1000, 24u * 3600u * 1000u };
  const gint64 prevs[] = { -1, 0, 1, 123456789, G_MAXINT64 / 2, G_MAXINT64 };

  for (BpJitter j = BP_JITTER_NONE; j <= BP_JITTER_DECORRELATED; j++)
    for (guint c = 0; c < G_N_ELEMENTS (caps); c++)
      {
        BpRetry *retry = new_retry (clock, j, caps[c], caps[c], 3, 0);

        for (guint n = 0; n <= 1000; n++)
          for (guint p = 0; p < G_N_ELEMENTS (prevs); p++)
            {
              gint64 d = bp_retry_compute_delay (retry, n, prevs[p]);

              g_assert_cmpint (d, >=, 0);
              g_assert_cmpint (d, <=, (gint64) caps[c] * MS);
            }
        /* With base = cap, the no-jitter delay is exactly the cap. */
        if (j == BP_JITTER_NONE)
          g_assert_cmpint (bp_retry_compute_delay (retry, 1000, 0), ==, (gint64) caps[c] * MS);
        g_assert_finalize_object (retry);
      }

  g_assert_finalize_object (clock);
}

static void
test_seed_determinism (void)
{
  BpClock *a = bp_clock_new_manual (T0, 1234);
  BpClock *b = bp_clock_new_manual (T0 + 5 * S, 1234);
  BpClock *c = bp_clock_new_manual (T0, 4321);
  BpRetry *ra = new_retry (a, BP_JITTER_DECORRELATED, 100, 10000, 3, 0);
  BpRetry *rb = new_retry (b, BP_JITTER_DECORRELATED, 100, 10000, 3, 0);
  BpRetry *rc = new_retry (c, BP_JITTER_DECORRELATED, 100, 10000, 3, 0);
  gint64 pa = 0, pb = 0, pc = 0;
  guint differ = 0;

  for (guint i = 0; i < 200; i++)
    {
      BpJitter j = i % 2 == 0 ? BP_JITTER_DECORRELATED : BP_JITTER_FULL;

      g_object_set (ra, "jitter", j, NULL);
      g_object_set (rb, "jitter", j, NULL);
      g_object_set (rc, "jitter", j, NULL);
      pa = bp_retry_compute_delay (ra, i % 8, pa);
      pb = bp_retry_compute_delay (rb, i % 8, pb);
      pc = bp_retry_compute_delay (rc, i % 8, pc);
      g_assert_cmpint (pa, ==, pb);
      if (pa != pc)
        differ++;
    }
  g_assert_cmpuint (differ, >, 100);

  g_assert_finalize_object (ra);
  g_assert_finalize_object (rb);
  g_assert_finalize_object (rc);
  g_assert_finalize_object (a);
  g_assert_finalize_object (b);
  g_assert_finalize_object (c);
}

/* Runs ------------------------------------------------------------------- */

static void
test_success_after_failures (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_NONE, 100, 1000, 5, 0);
  FakeOp f;
  Outcome o = { 0, };

  fake_init (&f, 2, unavailable ());
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  iterate ();
  g_assert_cmpuint (f.n_started, ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 1);

  advance (clock, 100 * MS - 1);
  g_assert_cmpuint (f.n_started, ==, 1);
  advance (clock, 1);
  g_assert_cmpuint (f.n_started, ==, 2);

  advance (clock, 200 * MS - 1);
  g_assert_cmpuint (f.n_started, ==, 2);
  advance (clock, 1);
  g_assert_cmpuint (f.n_started, ==, 3);

  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_true (o.ok);
  g_assert_no_error (o.error);
  g_assert_cmpstr (o.result, ==, "result-3");
  g_assert_cmpuint (o.attempts, ==, 3);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);

  outcome_clear (&o);
  fake_clear (&f);
  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

static void
test_max_attempts (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_FULL, 100, 1000, 4, 0);
  FakeOp f;
  Outcome o = { 0, };

  fake_init (&f, G_MAXUINT, unavailable ());
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_KEYED, NULL, run_done_cb, &o);
  iterate ();
  for (guint i = 0; i < 20 && o.n_callbacks == 0; i++)
    advance (clock, 1 * S);

  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_false (o.ok);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_cmpstr (o.error->message, ==, "backend down");
  g_assert_cmpuint (o.attempts, ==, 4);
  g_assert_cmpuint (f.n_started, ==, 4);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);

  /* Not asking for the result frees it (checked by ASan/LSan). */
  outcome_clear (&o);
  fake_clear (&f);
  fake_init (&f, 0, NULL);
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_KEYED, NULL, run_done_cb, &o);
  iterate ();
  g_assert_true (o.ok);
  g_assert_cmpstr (o.result, ==, "result-1");

  outcome_clear (&o);
  fake_clear (&f);
  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

/* Runs @error through a fresh retry policy; returns the number of attempts. */
static guint
attempts_for (GError        *error,
              BpIdempotency  idempotency,
              BpRetry       *retry,
              BpClock       *clock,
              GError       **out_error)
{
  FakeOp f;
  Outcome o = { 0, };
  guint attempts;

  fake_init (&f, G_MAXUINT, error);
  bp_retry_run_async (retry, &fake_op, &f, NULL, idempotency, NULL, run_done_cb, &o);
  iterate ();
  for (guint i = 0; i < 100 && o.n_callbacks == 0; i++)
    advance (clock, 100 * MS);
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_false (o.ok);
  g_assert_cmpuint (o.attempts, ==, f.n_started);
  attempts = o.attempts;
  if (out_error != NULL)
    *out_error = g_steal_pointer (&o.error);
  outcome_clear (&o);
  fake_clear (&f);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);
  return attempts;
}

static void
test_classification (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_FULL, 100, 1000, 3, 0);
  GError *error = NULL;

  g_assert_cmpint (bp_failure_kind_from_error (&(GError) { BP_ERROR, BP_ERROR_UNAVAILABLE, (char *) "down" }),
                   ==, BP_FAILURE_RETRYABLE);

  /* FATAL: a backend error is a failure but not retried */
  g_assert_cmpuint (attempts_for (g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND, "SQLSTATE 42601: syntax"),
                                  BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, &error), ==, 1);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_clear_error (&error);

  /* IGNORE: client errors, cancellation, local limits */
  g_assert_cmpuint (attempts_for (g_error_new_literal (BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "bad"),
                                  BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 1);
  g_assert_cmpuint (attempts_for (g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "cancelled"),
                                  BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 1);
  g_assert_cmpuint (attempts_for (g_error_new_literal (BP_ERROR, BP_ERROR_POOL_EXHAUSTED, "full"),
                                  BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 1);

  /* RETRYABLE in other domains */
  g_assert_cmpuint (attempts_for (g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED, "refused"),
                                  BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 3);
  g_assert_cmpuint (attempts_for (g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "slow"),
                                  BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 3);
  g_assert_cmpint (bp_failure_kind_from_error (&(GError) { G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, (char *) "eof" }),
                   ==, BP_FAILURE_AMBIGUOUS);
  g_assert_cmpint (bp_failure_kind_from_error (&(GError) { G_DBUS_ERROR, G_DBUS_ERROR_ACCESS_DENIED, (char *) "no" }),
                   ==, BP_FAILURE_IGNORE);
  g_assert_cmpint (bp_failure_kind_from_error (&(GError) { G_FILE_ERROR, G_FILE_ERROR_IO, (char *) "io" }),
                   ==, BP_FAILURE_FATAL);

  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

/* A backend classifier: SQLSTATE 40001 (serialization failure) is retryable,
 * 23505 (unique violation) is the client's problem. */
static BpFailureKind
sqlstate_classify (const GError *error,
                   gpointer      user_data)
{
  guint *calls = user_data;

  (*calls)++;
  if (g_error_matches (error, BP_ERROR, BP_ERROR_BACKEND))
    {
      if (g_str_has_prefix (error->message, "SQLSTATE 40001"))
        return BP_FAILURE_RETRYABLE;
      if (g_str_has_prefix (error->message, "SQLSTATE 23505"))
        return BP_FAILURE_IGNORE;
    }
  return bp_failure_kind_from_error (error);
}

static void
test_classify_func (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_FULL, 100, 1000, 3, 0);
  guint *calls = g_new0 (guint, 1);

  bp_retry_set_classify_func (retry, sqlstate_classify, calls, g_free);
  g_assert_cmpuint (attempts_for (g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND, "SQLSTATE 40001: could not serialize"),
                                  BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 3);
  g_assert_cmpuint (*calls, ==, 3);
  g_assert_cmpuint (attempts_for (g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND, "SQLSTATE 23505: duplicate key"),
                                  BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 1);
  g_assert_cmpuint (*calls, ==, 4);

  g_assert_finalize_object (retry);   /* frees calls */
  g_assert_finalize_object (clock);
}

static void
test_idempotency (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_FULL, 100, 1000, 3, 0);
  GError *error = NULL;

  /* UNSAFE: never retried, whatever the kind; an ambiguous outcome is
   * surfaced as is. */
  g_assert_cmpuint (attempts_for (unavailable (), BP_IDEMPOTENCY_UNSAFE, retry, clock, NULL), ==, 1);
  g_assert_cmpuint (attempts_for (g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "eof after send"),
                                  BP_IDEMPOTENCY_UNSAFE, retry, clock, &error), ==, 1);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  g_clear_error (&error);

  /* IDEMPOTENT and KEYED: retryable and ambiguous are retried */
  g_assert_cmpuint (attempts_for (unavailable (), BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 3);
  g_assert_cmpuint (attempts_for (unavailable (), BP_IDEMPOTENCY_KEYED, retry, clock, NULL), ==, 3);
  g_assert_cmpuint (attempts_for (g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "eof after send"),
                                  BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 3);
  g_assert_cmpuint (attempts_for (g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "eof after send"),
                                  BP_IDEMPOTENCY_KEYED, retry, clock, NULL), ==, 3);

  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

static void
test_cancel_during_sleep (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_NONE, 1000, 1000, 5, 0);
  GCancellable *cancellable = g_cancellable_new ();
  FakeOp f;
  Outcome o = { 0, };

  fake_init (&f, G_MAXUINT, unavailable ());
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, cancellable, run_done_cb, &o);
  iterate ();
  advance (clock, 500 * MS);
  g_assert_cmpuint (f.n_started, ==, 1);
  g_assert_true (f.last_cancellable == cancellable);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 1);

  /* No clock movement is needed: the loop completes the task. */
  g_cancellable_cancel (cancellable);
  g_assert_cmpuint (o.n_callbacks, ==, 0);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_false (o.ok);
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (o.attempts, ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);

  /* and no further attempt, ever */
  advance (clock, 10 * S);
  g_assert_cmpuint (f.n_started, ==, 1);
  g_assert_cmpuint (o.n_callbacks, ==, 1);

  /* A run on an already-cancelled cancellable never starts the operation. */
  outcome_clear (&o);
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, cancellable, run_done_cb, &o);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (o.attempts, ==, 0);
  g_assert_cmpuint (f.n_started, ==, 1);

  /* Cancelled while an attempt is in flight: the attempt's own cancelled
   * error ends the run, no retry. */
  outcome_clear (&o);
  g_cancellable_reset (cancellable);
  f.manual = TRUE;
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, cancellable, run_done_cb, &o);
  iterate ();
  g_assert_cmpuint (f.n_started, ==, 2);
  g_cancellable_cancel (cancellable);
  fake_complete (&f, unavailable ());
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (o.attempts, ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);

  outcome_clear (&o);
  fake_clear (&f);
  g_assert_finalize_object (cancellable);
  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

static void
test_deadline_clip (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_NONE, 400, 10000, 10, 1000);
  FakeOp f;
  Outcome o = { 0, };

  /* Attempts at 0 and 400 ms; the 800 ms sleep is clipped to 600 ms, so the
   * third attempt starts exactly at the deadline, fails, and the run ends. */
  fake_init (&f, G_MAXUINT, unavailable ());
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  iterate ();
  advance (clock, 400 * MS);
  g_assert_cmpuint (f.n_started, ==, 2);
  advance (clock, 599 * MS);
  g_assert_cmpuint (f.n_started, ==, 2);
  advance (clock, 1 * MS);
  g_assert_cmpuint (f.n_started, ==, 3);
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (o.attempts, ==, 3);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);
  outcome_clear (&o);
  fake_clear (&f);

  /* An attempt that fails after the deadline is not followed by another. */
  fake_init (&f, 0, NULL);
  f.manual = TRUE;
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  iterate ();
  fake_complete (&f, unavailable ());
  iterate ();
  advance (clock, 400 * MS);
  g_assert_cmpuint (f.n_started, ==, 2);
  advance (clock, 800 * MS);
  fake_complete (&f, unavailable ());
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_cmpuint (o.attempts, ==, 2);
  g_assert_cmpuint (f.n_started, ==, 2);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);

  outcome_clear (&o);
  fake_clear (&f);
  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

static GError *
circuit_open (gint64 retry_after_ms)
{
  GError *error = g_error_new_literal (BP_ERROR, BP_ERROR_CIRCUIT_OPEN, "Circuit breaker 'x' is open");

  bp_error_set_retry_after (&error, retry_after_ms);
  return error;
}

static void
test_circuit_open (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_NONE, 100, 10000, 3, 1000);
  FakeOp f;
  Outcome o = { 0, };

  /* retry-after beyond the remaining deadline: surfaced at once */
  g_assert_cmpuint (attempts_for (circuit_open (1001), BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 1);
  /* no retry-after (forced open): never retried */
  g_assert_cmpuint (attempts_for (circuit_open (-1), BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 1);

  /* retry-after within the deadline: the sleep is the retry-after, not the
   * 100 ms backoff */
  fake_init (&f, 1, circuit_open (500));
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  iterate ();
  advance (clock, 499 * MS);
  g_assert_cmpuint (f.n_started, ==, 1);
  advance (clock, 1 * MS);
  g_assert_cmpuint (f.n_started, ==, 2);
  g_assert_true (o.ok);
  g_assert_cmpuint (o.attempts, ==, 2);
  outcome_clear (&o);
  fake_clear (&f);

  /* Without a deadline the cap bounds the retry-after we accept. */
  g_object_set (retry, "deadline-ms", 0, "cap-ms", 2000, NULL);
  g_assert_cmpuint (attempts_for (circuit_open (2001), BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 1);
  g_assert_cmpuint (attempts_for (circuit_open (2000), BP_IDEMPOTENCY_IDEMPOTENT, retry, clock, NULL), ==, 3);

  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

/* A server's Retry-After (e.g. HTTP 429/503) rides on a retryable error and
 * is honoured like a breaker's: at least that long, and only if it fits. */
static GError *
unavailable_after (gint64 retry_after_ms)
{
  GError *error = unavailable ();

  bp_error_set_retry_after (&error, retry_after_ms);
  return error;
}

static void
test_server_retry_after (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_NONE, 100, 10000, 3, 0);
  FakeOp f;
  Outcome o = { 0, };

  fake_init (&f, 1, unavailable_after (700));
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  iterate ();
  /* not the 100 ms backoff */
  advance (clock, 699 * MS);
  g_assert_cmpuint (f.n_started, ==, 1);
  advance (clock, 1 * MS);
  g_assert_cmpuint (f.n_started, ==, 2);
  g_assert_true (o.ok);
  outcome_clear (&o);
  fake_clear (&f);

  /* a retry-after shorter than the backoff does not shorten it */
  fake_init (&f, 1, unavailable_after (10));
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  iterate ();
  advance (clock, 99 * MS);
  g_assert_cmpuint (f.n_started, ==, 1);
  advance (clock, 1 * MS);
  g_assert_cmpuint (f.n_started, ==, 2);
  outcome_clear (&o);
  fake_clear (&f);

  /* beyond the cap (no deadline), or beyond the deadline: surfaced at once,
   * with the retry-after for the caller */
  {
    g_autoptr(GError) error = NULL;

    g_assert_cmpuint (attempts_for (unavailable_after (10001), BP_IDEMPOTENCY_IDEMPOTENT,
                                    retry, clock, &error), ==, 1);
    g_assert_cmpint (bp_error_get_retry_after (error), ==, 10001);
  }
  g_object_set (retry, "deadline-ms", 500, NULL);
  g_assert_cmpuint (attempts_for (unavailable_after (501), BP_IDEMPOTENCY_IDEMPOTENT,
                                  retry, clock, NULL), ==, 1);
  g_assert_cmpuint (attempts_for (unavailable_after (200), BP_IDEMPOTENCY_IDEMPOTENT,
                                  retry, clock, NULL), ==, 3);

  g_assert_finalize_object (retry);
  g_assert_finalize_object (clock);
}

static void
test_retry_after_parse (void)
{
  static const struct
  {
    const char *message;
    gint64      expected;
  } cases[] = {
    { "backend down (retry-after-ms=250)", 250 },
    { "backend down (retry-after-ms=250) (fallback failed: no cache)", 250 },
    { "quoted (retry-after-ms=1) then ours (retry-after-ms=2)", 2 },
    { "a server says retry-after-ms=5 in its text", -1 },
    { "backend down (retry-after-ms=)", -1 },
    { "backend down (retry-after-ms=-3)", -1 },
    { "backend down (retry-after-ms=12x)", -1 },
    { "backend down (retry-after-ms=99999999999999999999999)", -1 },
    { "backend down", -1 },
  };
  GError *error = g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, "backend down");

  bp_error_set_retry_after (&error, 42);
  g_assert_cmpint (bp_error_get_retry_after (error), ==, 42);
  g_clear_error (&error);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      error = g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, cases[i].message);
      g_test_message ("%s", cases[i].message);
      g_assert_cmpint (bp_error_get_retry_after (error), ==, cases[i].expected);
      g_clear_error (&error);
    }
  g_assert_cmpint (bp_error_get_retry_after (NULL), ==, -1);
}

/* Budget ----------------------------------------------------------------- */

static void
test_budget_unit (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetryBudget *budget = bp_retry_budget_new (clock, 0.2, 2, 10000);
  g_autoptr(GVariant) stats = NULL;
  guint64 exhausted = 0;

  /* The reserve: 2 per second, full at creation, at most 2 kept. */
  g_assert_true (bp_retry_budget_try_withdraw (budget));
  g_assert_true (bp_retry_budget_try_withdraw (budget));
  g_assert_false (bp_retry_budget_try_withdraw (budget));
  bp_clock_advance (clock, 499 * MS);
  g_assert_false (bp_retry_budget_try_withdraw (budget));
  bp_clock_advance (clock, 1 * MS);
  g_assert_true (bp_retry_budget_try_withdraw (budget));
  g_assert_false (bp_retry_budget_try_withdraw (budget));
  bp_clock_advance (clock, 60 * S);
  g_assert_true (bp_retry_budget_try_withdraw (budget));
  g_assert_true (bp_retry_budget_try_withdraw (budget));
  g_assert_false (bp_retry_budget_try_withdraw (budget));

  /* The ratio: 5 deposits pay for exactly one retry; it refills with
   * traffic. */
  for (guint i = 0; i < 4; i++)
    bp_retry_budget_deposit (budget);
  g_assert_false (bp_retry_budget_try_withdraw (budget));
  bp_retry_budget_deposit (budget);
  g_assert_true (bp_retry_budget_try_withdraw (budget));
  g_assert_false (bp_retry_budget_try_withdraw (budget));
  for (guint i = 0; i < 10; i++)
    bp_retry_budget_deposit (budget);
  g_assert_true (bp_retry_budget_try_withdraw (budget));
  g_assert_true (bp_retry_budget_try_withdraw (budget));
  g_assert_false (bp_retry_budget_try_withdraw (budget));

  /* Deposits expire with the window (the reserve has refilled meanwhile). */
  for (guint i = 0; i < 100; i++)
    bp_retry_budget_deposit (budget);
  bp_clock_advance (clock, 10 * S);
  g_assert_true (bp_retry_budget_try_withdraw (budget));
  g_assert_true (bp_retry_budget_try_withdraw (budget));
  g_assert_false (bp_retry_budget_try_withdraw (budget));

  stats = bp_retry_budget_dup_stats (budget);
  g_assert_true (g_variant_lookup (stats, "exhausted", "t", &exhausted));
  g_assert_cmpuint (exhausted, ==, 8);

  bp_retry_budget_unref (budget);
  g_assert_finalize_object (clock);
}

static void
test_budget_storm (void)
{
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_NONE, 0, 0, 5, 0);
  g_autoptr(BpRetryBudget) budget = bp_retry_budget_new (clock, 0.2, 10, 10000);
  FakeOp f;
  Outcome o = { 0, };
  const guint n_steps = 100, per_step = 10;
  const double elapsed_s = n_steps * 0.1;
  guint runs = 0, first_attempts = 0;
  double bound;

  bp_retry_set_budget (retry, budget);

  /* 100 % failures, 100 runs a second for 10 s, up to 5 attempts each. */
  fake_init (&f, G_MAXUINT, unavailable ());
  for (guint step = 0; step < n_steps; step++)
    {
      for (guint i = 0; i < per_step; i++)
        {
          bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
          iterate ();
          g_assert_cmpuint (o.n_callbacks, ==, 1);
          g_assert_cmpuint (o.attempts, >=, 1);
          first_attempts++;
          runs++;
          outcome_clear (&o);
        }
      advance (clock, 100 * MS);
    }

  /* §10.13: total attempts ≤ N·1.2 + 10·(elapsed s), plus the one second of
   * reserve the budget starts with. */
  bound = runs * 1.2 + 10 * (elapsed_s + 1);
  g_test_message ("%u runs, %u attempts, bound %.0f", runs, f.n_started, bound);
  g_assert_cmpuint (first_attempts, ==, runs);
  g_assert_cmpfloat (f.n_started, <=, bound);
  /* the budget did allow retries: 20 % plus the reserve */
  g_assert_cmpuint (f.n_started, >=, runs + runs / 5);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);

  /* Without a budget the same load would make 5 attempts a run. */
  bp_retry_set_budget (retry, NULL);
  bp_retry_run_async (retry, &fake_op, &f, NULL, BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  iterate ();
  g_assert_cmpuint (o.attempts, ==, 5);
  outcome_clear (&o);

  fake_clear (&f);
  g_assert_finalize_object (retry);
  g_clear_pointer (&budget, bp_retry_budget_unref);
  g_assert_finalize_object (clock);
}

/* Retry around a breaker (§10.12) ---------------------------------------- */

typedef struct
{
  BpBreaker *breaker;
  FakeOp    *backend;
} Composed;

static void
composed_start (gpointer             op_data,
                GCancellable        *cancellable,
                GAsyncReadyCallback  callback,
                gpointer             callback_data)
{
  Composed *c = op_data;

  bp_breaker_call_async (c->breaker, &fake_op, c->backend, NULL, NULL,
                         cancellable, callback, callback_data);
}

static gboolean
composed_finish (gpointer       op_data,
                 GAsyncResult  *result,
                 gpointer      *out_result,
                 GError       **error)
{
  Composed *c = op_data;

  return bp_breaker_call_finish (c->breaker, result, out_result, NULL, error);
}

static const BpOperation composed_op = { composed_start, composed_finish, g_free };

/* Runs @c's backend through retry and breaker: composed from the public
 * pieces, or fused in bp_retry_run_with_breaker_async(). Both must behave
 * the same. */
static void
run_x_breaker (BpRetry       *retry,
               Composed      *c,
               gboolean       fused,
               BpIdempotency  idempotency,
               Outcome       *o)
{
  if (fused)
    bp_retry_run_with_breaker_async (retry, c->breaker, &fake_op, c->backend, NULL,
                                     idempotency, NULL, run_done_cb, o);
  else
    bp_retry_run_async (retry, &composed_op, c, NULL, idempotency, NULL, run_done_cb, o);
}

static void
test_x_breaker (gconstpointer user_data)
{
  gboolean fused = GPOINTER_TO_INT (user_data);
  BpClock *clock = bp_clock_new_manual (T0, 1);
  BpRetry *retry = new_retry (clock, BP_JITTER_NONE, 100, 10000, 3, 500);
  BpBreaker *breaker = bp_breaker_new ("x", clock);
  g_autoptr(GVariant) stats = NULL;
  guint64 failures = 0;
  FakeOp backend;
  Composed c = { breaker, &backend };
  Outcome o = { 0, };

  g_object_set (breaker, "open-ms", 1000, "half-open-permits", 1, NULL);
  fake_init (&backend, 0, NULL);

  /* OPEN with retry-after 1000 ms > 500 ms left: not retried, backend untouched */
  bp_breaker_force_open (breaker);
  run_x_breaker (retry, &c, fused, BP_IDEMPOTENCY_IDEMPOTENT, &o);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_CIRCUIT_OPEN);
  g_assert_cmpint (bp_error_get_retry_after (o.error), ==, 1000);
  g_assert_cmpuint (o.attempts, ==, 1);
  g_assert_cmpuint (backend.n_started, ==, 0);
  outcome_clear (&o);

  /* With 5 s of deadline the retry sleeps the retry-after, the breaker
   * half-opens and admits it, the probe succeeds and closes it. */
  g_object_set (retry, "deadline-ms", 5000, NULL);
  bp_breaker_force_open (breaker);
  run_x_breaker (retry, &c, fused, BP_IDEMPOTENCY_IDEMPOTENT, &o);
  iterate ();
  advance (clock, 999 * MS);
  g_assert_cmpuint (backend.n_started, ==, 0);
  advance (clock, 1 * MS);
  g_assert_cmpuint (backend.n_started, ==, 1);
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_true (o.ok);
  g_assert_cmpstr (o.result, ==, "result-1");
  g_assert_cmpuint (o.attempts, ==, 2);
  g_assert_cmpint (bp_breaker_get_state (breaker), ==, BP_BREAKER_CLOSED);
  outcome_clear (&o);

  /* An unsafe operation with an ambiguous outcome is surfaced, not retried;
   * the breaker counts it as a failure. */
  fake_clear (&backend);
  fake_init (&backend, G_MAXUINT,
             g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "connection lost after send"));
  run_x_breaker (retry, &c, fused, BP_IDEMPOTENCY_UNSAFE, &o);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED);
  g_assert_cmpuint (o.attempts, ==, 1);
  g_assert_cmpuint (backend.n_started, ==, 1);
  stats = bp_breaker_dup_stats (breaker);
  g_assert_true (g_variant_lookup (stats, "failures", "t", &failures));
  g_assert_cmpuint (failures, ==, 1);
  outcome_clear (&o);

  /* The same operation declared idempotent is retried. */
  run_x_breaker (retry, &c, fused, BP_IDEMPOTENCY_IDEMPOTENT, &o);
  iterate ();
  for (guint i = 0; i < 50 && o.n_callbacks == 0; i++)
    advance (clock, 100 * MS);
  g_assert_cmpuint (o.attempts, ==, 3);
  g_assert_cmpuint (backend.n_started, ==, 4);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);
  outcome_clear (&o);

  fake_clear (&backend);
  g_assert_finalize_object (retry);
  g_assert_finalize_object (breaker);
  g_assert_finalize_object (clock);
}

/* The fused path (bp_retry_run_with_breaker_async) ----------------------- */

/* A manual clock, a retry policy without jitter (base 100 ms, cap 10 s, 3
 * attempts, no deadline) and a breaker on that clock. */
typedef struct
{
  BpClock   *clock;
  BpRetry   *retry;
  BpBreaker *breaker;
} Fused;

static void
fused_set_up (Fused         *fx,
              gconstpointer  data)
{
  fx->clock = bp_clock_new_manual (T0, 1);
  fx->retry = new_retry (fx->clock, BP_JITTER_NONE, 100, 10000, 3, 0);
  fx->breaker = bp_breaker_new ("x", fx->clock);
}

static void
fused_tear_down (Fused         *fx,
                 gconstpointer  data)
{
  g_assert_finalize_object (fx->retry);
  g_assert_finalize_object (fx->breaker);
  g_assert_finalize_object (fx->clock);
}

static guint64
stat_u64 (BpBreaker  *breaker,
          const char *key)
{
  g_autoptr(GVariant) stats = bp_breaker_dup_stats (breaker);
  guint64 v = G_MAXUINT64;

  g_assert_true (g_variant_lookup (stats, key, "t", &v));
  return v;
}

/* A per-call timeout applies to each attempt; a timed-out attempt's late
 * result is finished and dropped, and never counts. */
static void
test_fused_timeout_late_result (Fused         *fx,
                                gconstpointer  data)
{
  BpClock *clock = fx->clock;
  BpRetry *retry = fx->retry;
  BpBreaker *breaker = fx->breaker;
  g_autoptr(GCancellable) first = NULL;
  FakeOp f;
  Outcome o = { 0, };

  g_object_set (breaker, "timeout-ms", 50, "min-volume", 100, NULL);
  fake_init (&f, 0, NULL);
  f.manual = TRUE;

  bp_retry_run_with_breaker_async (retry, breaker, &fake_op, &f, NULL,
                                   BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  iterate ();
  g_assert_cmpuint (f.n_started, ==, 1);
  /* with a timeout the attempt gets its own cancellable */
  g_assert_nonnull (f.last_cancellable);
  first = g_object_ref (f.last_cancellable);
  g_assert_false (g_cancellable_is_cancelled (first));

  advance (clock, 49 * MS);
  g_assert_false (g_cancellable_is_cancelled (first));
  advance (clock, 1 * MS);
  g_assert_true (g_cancellable_is_cancelled (first));
  g_assert_cmpuint (stat_u64 (breaker, "timeouts"), ==, 1);
  g_assert_cmpuint (o.n_callbacks, ==, 0);
  g_assert_cmpuint (f.n_started, ==, 1);

  /* the backoff, then attempt 2 */
  advance (clock, 100 * MS);
  g_assert_cmpuint (f.n_started, ==, 2);
  g_assert_true (f.last_cancellable != first);

  /* attempt 1's late success is dropped: no callback, no success counted */
  fake_complete (&f, NULL);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 0);
  g_assert_cmpuint (stat_u64 (breaker, "successes"), ==, 0);

  fake_complete (&f, NULL);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_true (o.ok);
  g_assert_cmpstr (o.result, ==, "result-2");
  g_assert_cmpuint (o.attempts, ==, 2);
  g_assert_cmpuint (stat_u64 (breaker, "successes"), ==, 1);
  g_assert_cmpuint (stat_u64 (breaker, "timeouts"), ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);
  outcome_clear (&o);

  fake_clear (&f);
}

/* Failures count, ignored errors do not (and are not retried). */
static void
test_fused_ignored (Fused         *fx,
                    gconstpointer  data)
{
  BpClock *clock = fx->clock;
  BpRetry *retry = fx->retry;
  BpBreaker *breaker = fx->breaker;
  FakeOp f;
  Outcome o = { 0, };

  g_object_set (breaker, "min-volume", 100, NULL);

  fake_init (&f, G_MAXUINT, g_error_new_literal (BP_ERROR, BP_ERROR_NOT_FOUND, "no such row"));
  bp_retry_run_with_breaker_async (retry, breaker, &fake_op, &f, NULL,
                                   BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_NOT_FOUND);
  g_assert_cmpuint (o.attempts, ==, 1);
  g_assert_cmpuint (stat_u64 (breaker, "ignored"), ==, 1);
  g_assert_cmpuint (stat_u64 (breaker, "failures"), ==, 0);
  outcome_clear (&o);
  fake_clear (&f);

  fake_init (&f, G_MAXUINT, unavailable ());
  bp_retry_run_with_breaker_async (retry, breaker, &fake_op, &f, NULL,
                                   BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  iterate ();
  for (guint i = 0; i < 10 && o.n_callbacks == 0; i++)
    advance (clock, 100 * MS);
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (o.attempts, ==, 3);
  g_assert_cmpuint (stat_u64 (breaker, "failures"), ==, 3);
  g_assert_cmpuint (stat_u64 (breaker, "window-volume"), ==, 3);
  outcome_clear (&o);
  fake_clear (&f);
}

/* The callback never runs before bp_retry_run_with_breaker_async() has
 * returned, not even for a rejection decided inside it. */
static void
test_fused_never_synchronous (Fused         *fx,
                              gconstpointer  data)
{
  BpRetry *retry = fx->retry;
  BpBreaker *breaker = fx->breaker;
  FakeOp f;
  Outcome o = { 0, };

  fake_init (&f, 0, NULL);

  bp_breaker_force_open (breaker);
  bp_retry_run_with_breaker_async (retry, breaker, &fake_op, &f, NULL,
                                   BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  g_assert_cmpuint (o.n_callbacks, ==, 0);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_CIRCUIT_OPEN);
  g_assert_cmpuint (o.attempts, ==, 1);
  g_assert_cmpuint (f.n_started, ==, 0);
  g_assert_cmpuint (stat_u64 (breaker, "rejected"), ==, 1);
  outcome_clear (&o);

  bp_breaker_reset (breaker);
  bp_retry_run_with_breaker_async (retry, breaker, &fake_op, &f, NULL,
                                   BP_IDEMPOTENCY_IDEMPOTENT, NULL, run_done_cb, &o);
  g_assert_cmpuint (o.n_callbacks, ==, 0);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_true (o.ok);
  outcome_clear (&o);

  fake_clear (&f);
}

static void
test_fused_cancel (Fused         *fx,
                   gconstpointer  data)
{
  BpRetry *retry = fx->retry;
  BpBreaker *breaker = fx->breaker;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  FakeOp f;
  Outcome o = { 0, };

  fake_init (&f, 0, NULL);

  /* cancelled before the start: no attempt, no admission */
  g_cancellable_cancel (cancellable);
  bp_retry_run_with_breaker_async (retry, breaker, &fake_op, &f, NULL,
                                   BP_IDEMPOTENCY_IDEMPOTENT, cancellable, run_done_cb, &o);
  g_assert_cmpuint (o.n_callbacks, ==, 0);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (o.attempts, ==, 0);
  g_assert_cmpuint (f.n_started, ==, 0);
  outcome_clear (&o);

  /* cancelled in flight, and the operation succeeds anyway: the run reports
   * the cancellation (as a GTask would) and frees the result */
  g_cancellable_reset (cancellable);
  f.manual = TRUE;
  f.ignore_cancellable = TRUE;
  bp_retry_run_with_breaker_async (retry, breaker, &fake_op, &f, NULL,
                                   BP_IDEMPOTENCY_IDEMPOTENT, cancellable, run_done_cb, &o);
  iterate ();
  g_assert_cmpuint (f.n_started, ==, 1);
  g_cancellable_cancel (cancellable);
  fake_complete (&f, NULL);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (o.result);
  g_assert_cmpuint (o.attempts, ==, 1);
  /* the backend did succeed, and the breaker knows */
  g_assert_cmpuint (stat_u64 (breaker, "successes"), ==, 1);
  outcome_clear (&o);

  fake_clear (&f);
}

typedef struct
{
  BpClock      *clock;
  GMainContext *context;   /* the thread's */
  GMainContext *seen;      /* the thread-default in the callback */
  GThread      *seen_thread;
  Outcome       o;
} ThreadRun;

static void
thread_run_done_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  ThreadRun *t = user_data;

  t->seen = g_main_context_get_thread_default ();
  t->seen_thread = g_thread_self ();
  run_done_cb (source, result, &t->o);
}

static gpointer
thread_run_func (gpointer user_data)
{
  ThreadRun *t = user_data;
  BpRetry *retry = new_retry (t->clock, BP_JITTER_NONE, 0, 0, 3, 0);
  BpBreaker *breaker = bp_breaker_new ("thread", t->clock);
  FakeOp f;

  g_main_context_push_thread_default (t->context);

  /* one failure, a zero-length backoff, then success: every step must run
   * in this thread's context */
  fake_init (&f, 1, unavailable ());
  bp_retry_run_with_breaker_async (retry, breaker, &fake_op, &f, NULL,
                                   BP_IDEMPOTENCY_IDEMPOTENT, NULL, thread_run_done_cb, t);
  while (t->o.n_callbacks == 0)
    g_main_context_iteration (t->context, TRUE);

  g_main_context_pop_thread_default (t->context);
  fake_clear (&f);
  g_assert_finalize_object (retry);
  g_assert_finalize_object (breaker);
  return NULL;
}

static void
test_fused_thread_context (void)
{
  ThreadRun t = { 0, };
  GThread *thread;

  t.clock = bp_clock_new_manual (T0, 1);
  t.context = g_main_context_new ();
  thread = g_thread_new ("fused", thread_run_func, &t);
  g_thread_join (thread);

  g_assert_true (t.seen == t.context);
  g_assert_true (t.seen_thread == thread);
  g_assert_true (t.o.ok);
  g_assert_cmpuint (t.o.attempts, ==, 2);
  g_assert_false (g_main_context_pending (NULL));
  outcome_clear (&t.o);

  g_main_context_unref (t.context);
  g_assert_finalize_object (t.clock);
}

static guint n_op_data_freed;

static void
count_op_data_free (gpointer data)
{
  n_op_data_freed++;
}

static void
async_result_done_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  Outcome *o = user_data;
  g_autoptr(GObject) source_object = g_async_result_get_source_object (result);

  g_assert_true (source_object == source);
  g_assert_true (BP_IS_RETRY (source_object));
  g_assert_true (g_async_result_get_user_data (result) == user_data);
  g_assert_true (g_async_result_is_tagged (result, bp_retry_run_async));
  g_assert_false (g_async_result_is_tagged (result, bp_retry_run_finish));
  /* the operation's data lives until the run is over */
  g_assert_cmpuint (n_op_data_freed, ==, 0);
  run_done_cb (source, result, o);
}

static void
test_fused_async_result (Fused         *fx,
                         gconstpointer  data)
{
  BpRetry *retry = fx->retry;
  BpBreaker *breaker = fx->breaker;
  FakeOp f;
  Outcome o = { 0, };

  fake_init (&f, 0, NULL);
  n_op_data_freed = 0;
  bp_retry_run_with_breaker_async (retry, breaker, &fake_op, &f, count_op_data_free,
                                   BP_IDEMPOTENCY_IDEMPOTENT, NULL, async_result_done_cb, &o);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_true (o.ok);
  g_assert_cmpuint (n_op_data_freed, ==, 1);
  outcome_clear (&o);

  fake_clear (&f);
}

/* An operation that breaks the GTask rule and calls back from a thread of
 * its own, in that thread's context: the run still completes in the
 * caller's context. */
typedef struct
{
  GAsyncReadyCallback callback;
  gpointer            callback_data;
} StrayCall;

static gpointer
stray_thread_func (gpointer user_data)
{
  StrayCall *call = user_data;
  GMainContext *context = g_main_context_new ();
  GTask *task;
  gboolean done = FALSE;

  g_main_context_push_thread_default (context);
  task = g_task_new (NULL, NULL, call->callback, call->callback_data);
  g_task_return_pointer (task, g_strdup ("stray"), g_free);
  g_object_unref (task);
  /* the idle GTask posted delivers the callback here */
  while (g_main_context_iteration (context, FALSE))
    done = TRUE;
  g_assert_true (done);
  g_main_context_pop_thread_default (context);
  g_main_context_unref (context);
  g_free (call);
  return NULL;
}

static void
stray_start (gpointer             op_data,
             GCancellable        *cancellable,
             GAsyncReadyCallback  callback,
             gpointer             callback_data)
{
  StrayCall *call = g_new (StrayCall, 1);

  call->callback = callback;
  call->callback_data = callback_data;
  *(GThread **) op_data = g_thread_new ("stray", stray_thread_func, call);
}

static const BpOperation stray_op = { stray_start, fake_finish, g_free };

static void
stray_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Outcome *o = user_data;

  g_assert_true (g_main_context_is_owner (g_main_context_default ()));
  g_assert_null (g_main_context_get_thread_default ());
  run_done_cb (source, result, o);
}

static void
test_fused_stray_thread (Fused         *fx,
                         gconstpointer  data)
{
  BpRetry *retry = fx->retry;
  BpBreaker *breaker = fx->breaker;
  GThread *thread = NULL;
  Outcome o = { 0, };

  g_main_context_acquire (g_main_context_default ());
  bp_retry_run_with_breaker_async (retry, breaker, &stray_op, &thread, NULL,
                                   BP_IDEMPOTENCY_IDEMPOTENT, NULL, stray_done_cb, &o);
  g_assert_nonnull (thread);
  g_thread_join (thread);
  /* the stray callback ran in the other thread and handed over */
  g_assert_cmpuint (o.n_callbacks, ==, 0);
  iterate ();
  g_assert_cmpuint (o.n_callbacks, ==, 1);
  g_assert_true (o.ok);
  g_assert_cmpstr (o.result, ==, "stray");
  g_main_context_release (g_main_context_default ());
  outcome_clear (&o);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/retry/jitter/none", test_jitter_none);
  g_test_add_func ("/retry/jitter/full/bounds-and-mean", test_jitter_full);
  g_test_add_func ("/retry/jitter/equal/bounds-and-mean", test_jitter_equal);
  g_test_add_func ("/retry/jitter/decorrelated/bounds-and-mean", test_jitter_decorrelated);
  g_test_add_func ("/retry/overflow-1000", test_overflow_1000);
  g_test_add_func ("/retry/multiplier", test_multiplier);
  g_test_add_func ("/retry/seed-determinism", test_seed_determinism);
  g_test_add_func ("/retry/success-after-failures", test_success_after_failures);
  g_test_add_func ("/retry/max-attempts", test_max_attempts);
  g_test_add_func ("/retry/classification", test_classification);
  g_test_add_func ("/retry/classify-func", test_classify_func);
  g_test_add_func ("/retry/idempotency", test_idempotency);
  g_test_add_func ("/retry/cancel-during-sleep", test_cancel_during_sleep);
  g_test_add_func ("/retry/deadline-clip", test_deadline_clip);
  g_test_add_func ("/retry/circuit-open", test_circuit_open);
  g_test_add_func ("/retry/server-retry-after", test_server_retry_after);
  g_test_add_func ("/retry/retry-after-parse", test_retry_after_parse);
  g_test_add_func ("/retry/budget", test_budget_unit);
  g_test_add_func ("/retry/budget/storm", test_budget_storm);
  g_test_add_data_func ("/retry/x-breaker/composed", GINT_TO_POINTER (FALSE), test_x_breaker);
  g_test_add_data_func ("/retry/x-breaker/fused", GINT_TO_POINTER (TRUE), test_x_breaker);
  g_test_add ("/retry/fused/timeout-late-result", Fused, NULL, fused_set_up, test_fused_timeout_late_result, fused_tear_down);
  g_test_add ("/retry/fused/ignored-not-counted", Fused, NULL, fused_set_up, test_fused_ignored, fused_tear_down);
  g_test_add ("/retry/fused/never-synchronous", Fused, NULL, fused_set_up, test_fused_never_synchronous, fused_tear_down);
  g_test_add ("/retry/fused/cancel", Fused, NULL, fused_set_up, test_fused_cancel, fused_tear_down);
  g_test_add_func ("/retry/fused/thread-context", test_fused_thread_context);
  g_test_add ("/retry/fused/async-result", Fused, NULL, fused_set_up, test_fused_async_result, fused_tear_down);
  g_test_add ("/retry/fused/stray-thread", Fused, NULL, fused_set_up, test_fused_stray_thread, fused_tear_down);

  return g_test_run ();
}
