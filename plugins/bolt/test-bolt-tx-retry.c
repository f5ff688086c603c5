/* test-bolt-tx-retry.c: the managed-transaction retry schedule on a manual clock
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-bolt-tx-retry.h"

/* A fake unit of work: fails `fail_times` times with `error`, then
 * succeeds; records the clock time each attempt starts at. */
typedef struct
{
  BpClock  *clock;
  guint     fail_times;
  GError   *error;
  GArray   *starts;     /* gint64 */
} FakeWork;

static gboolean
complete_later (gpointer user_data)
{
  GTask *task = user_data;
  FakeWork *work = g_task_get_task_data (task);

  if (work->starts->len <= work->fail_times)
    g_task_return_error (task, g_error_copy (work->error));
  else
    g_task_return_pointer (task, g_strdup ("done"), g_free);
  return G_SOURCE_REMOVE;
}

static void
fake_start (gpointer             op_data,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             callback_data)
{
  FakeWork *work = op_data;
  GTask *task = g_task_new (NULL, cancellable, callback, callback_data);
  gint64 now = bp_clock_get_time (work->clock);

  g_array_append_val (work->starts, now);
  g_task_set_task_data (task, work, NULL);
  g_idle_add_full (G_PRIORITY_DEFAULT, complete_later, task, g_object_unref);
}

static gboolean
fake_finish (gpointer       op_data,
             GAsyncResult  *result,
             gpointer      *out_result,
             GError       **error)
{
  char *value = g_task_propagate_pointer (G_TASK (result), error);

  if (value == NULL)
    return FALSE;
  *out_result = value;
  return TRUE;
}

static const BpOperation fake_op = { fake_start, fake_finish, g_free };

typedef struct
{
  gboolean  done;
  gboolean  ok;
  char     *value;
  guint     attempts;
  GError   *error;
  GArray   *delays;     /* gint64, from ::retry-scheduled */
  guint     failed_attempt;
} Outcome;

static void
outcome_clear (Outcome *o)
{
  g_free (o->value);
  g_clear_error (&o->error);
  g_clear_pointer (&o->delays, g_array_unref);
}

static void
run_done_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Outcome *o = user_data;

  o->ok = bp_bolt_tx_retry_run_finish (BP_BOLT_TX_RETRY (object), result, (gpointer *) &o->value,
                                       &o->attempts, &o->error);
  o->done = TRUE;
}

static void
retry_scheduled_cb (BpBoltTxRetry *retry,
                    guint          attempt,
                    gint64         delay_us,
                    const GError  *error,
                    gpointer       user_data)
{
  Outcome *o = user_data;

  g_assert_nonnull (error);
  o->failed_attempt = attempt;
  g_array_append_val (o->delays, delay_us);
}

static BpFailureKind
classify_as (const GError *error,
             gpointer      user_data)
{
  return (BpFailureKind) GPOINTER_TO_INT (user_data);
}

static void
drain (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
test_delays (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 1);
  g_autoptr(BpBoltTxRetry) retry = bp_bolt_tx_retry_new (clock);

  g_test_summary ("the drivers' schedule: 1 s, doubling, ±20 %; configurable multiplier and jitter");

  g_assert_cmpint (bp_bolt_tx_retry_compute_delay (retry, 0, 0.0), ==, 800000);
  g_assert_cmpint (bp_bolt_tx_retry_compute_delay (retry, 0, 0.5), ==, 1000000);
  g_assert_cmpint (bp_bolt_tx_retry_compute_delay (retry, 0, 1.0), ==, 1200000);
  g_assert_cmpint (bp_bolt_tx_retry_compute_delay (retry, 1, 0.5), ==, 2000000);
  g_assert_cmpint (bp_bolt_tx_retry_compute_delay (retry, 2, 0.0), ==, 3200000);
  g_assert_cmpint (bp_bolt_tx_retry_compute_delay (retry, 4, 1.0), ==, 19200000);
  /* never more than a day, whatever the index */
  g_assert_cmpint (bp_bolt_tx_retry_compute_delay (retry, 5000, 1.0), ==, G_GINT64_CONSTANT (86400000000));

  g_object_set (retry, "initial-ms", 100, "multiplier", 1.5, "jitter-percent", 0, NULL);
  g_assert_cmpint (bp_bolt_tx_retry_compute_delay (retry, 0, 0.9), ==, 100000);
  g_assert_cmpint (bp_bolt_tx_retry_compute_delay (retry, 2, 0.1), ==, 225000);
  g_object_set (retry, "jitter-percent", 100, NULL);
  g_assert_cmpint (bp_bolt_tx_retry_compute_delay (retry, 0, 0.0), ==, 0);
  g_assert_cmpint (bp_bolt_tx_retry_compute_delay (retry, 0, 1.0), ==, 200000);
}

static void
test_schedule (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 42);
  g_autoptr(BpClock) twin = bp_clock_new_manual (0, 42);   /* same RNG sequence */
  g_autoptr(BpBoltTxRetry) retry = bp_bolt_tx_retry_new (clock);
  FakeWork work = { clock, G_MAXUINT, NULL, g_array_new (FALSE, FALSE, sizeof (gint64)) };
  Outcome o = { 0 };
  gint64 expected_next = 0;

  g_test_summary ("a transaction that always fails transiently: each sleep is exactly the drawn "
                  "1 s·2^n ±20 %, and the last retry starts within 30 s of the first failure");

  work.error = g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND, "Neo.TransientError.Transaction.DeadlockDetected: x");
  o.delays = g_array_new (FALSE, FALSE, sizeof (gint64));
  bp_bolt_tx_retry_set_classify_func (retry, classify_as, GINT_TO_POINTER (BP_FAILURE_RETRYABLE), NULL);
  g_signal_connect (retry, "retry-scheduled", G_CALLBACK (retry_scheduled_cb), &o);

  bp_bolt_tx_retry_run_async (retry, &fake_op, &work, NULL, NULL, run_done_cb, &o);
  drain ();
  while (!o.done)
    {
      guint n = o.delays->len;
      gint64 delay = g_array_index (o.delays, gint64, n - 1);
      gint64 nominal = (gint64) 1000000 << (n - 1);

      /* one sleep is pending; its length is the drawn one */
      g_assert_cmpuint (o.failed_attempt, ==, n);
      g_assert_cmpuint (work.starts->len, ==, n);
      g_assert_cmpint (delay, ==, bp_bolt_tx_retry_compute_delay (retry, n - 1, bp_clock_random_double (twin)));
      g_assert_cmpint (delay, >=, nominal * 8 / 10);
      g_assert_cmpint (delay, <=, nominal * 12 / 10);
      /* not a microsecond early */
      bp_clock_advance (clock, delay - 1);
      drain ();
      g_assert_cmpuint (work.starts->len, ==, n);
      bp_clock_advance (clock, 1);
      drain ();
      g_assert_cmpuint (work.starts->len, ==, n + 1);
      expected_next += delay;
      g_assert_cmpint (g_array_index (work.starts, gint64, n), ==, expected_next);
    }

  g_assert_false (o.ok);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_cmpuint (o.attempts, ==, work.starts->len);
  /* every retry started while the window was open; the last failure was past it */
  for (guint i = 1; i + 1 < work.starts->len; i++)
    g_assert_cmpint (g_array_index (work.starts, gint64, i), <=, 30000000);
  g_assert_cmpint (g_array_index (work.starts, gint64, work.starts->len - 1), >, 30000000);
  /* nominal 0, 1, 3, 7, 15, 31 s: five or six retries whatever the draws */
  g_assert_cmpuint (o.attempts, >=, 6);
  g_assert_cmpuint (o.attempts, <=, 7);

  g_error_free (work.error);
  g_array_unref (work.starts);
  outcome_clear (&o);
}

static void
run_to_end (BpBoltTxRetry *retry,
            BpClock       *clock,
            FakeWork      *work,
            Outcome       *o)
{
  o->delays = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_signal_connect (retry, "retry-scheduled", G_CALLBACK (retry_scheduled_cb), o);
  bp_bolt_tx_retry_run_async (retry, &fake_op, work, NULL, NULL, run_done_cb, o);
  drain ();
  while (!o->done)
    {
      bp_clock_advance (clock, 100 * 1000);
      drain ();
    }
  g_signal_handlers_disconnect_by_data (retry, o);
}

static void
test_recovers (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 3);
  g_autoptr(BpBoltTxRetry) retry = bp_bolt_tx_retry_new (clock);
  FakeWork work = { clock, 2, NULL, g_array_new (FALSE, FALSE, sizeof (gint64)) };
  Outcome o = { 0 };

  g_test_summary ("two transient failures, then success: the result, three attempts");

  work.error = g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, "Bolt connection lost: x");
  /* a connection lost before COMMIT is ambiguous, and retried */
  bp_bolt_tx_retry_set_classify_func (retry, classify_as, GINT_TO_POINTER (BP_FAILURE_AMBIGUOUS), NULL);
  run_to_end (retry, clock, &work, &o);
  g_assert_true (o.ok);
  g_assert_no_error (o.error);
  g_assert_cmpstr (o.value, ==, "done");
  g_assert_cmpuint (o.attempts, ==, 3);
  g_assert_cmpuint (o.delays->len, ==, 2);

  g_error_free (work.error);
  g_array_unref (work.starts);
  outcome_clear (&o);
}

static void
test_not_retried (void)
{
  static const BpFailureKind kinds[] = { BP_FAILURE_FATAL, BP_FAILURE_IGNORE };

  g_test_summary ("fatal and client errors end the run after one attempt; so does max-time-ms=0 "
                  "and an empty retry budget");

  for (guint i = 0; i < G_N_ELEMENTS (kinds) + 2; i++)
    {
      g_autoptr(BpClock) clock = bp_clock_new_manual (0, 3);
      g_autoptr(BpBoltTxRetry) retry = bp_bolt_tx_retry_new (clock);
      FakeWork work = { clock, 5, NULL, g_array_new (FALSE, FALSE, sizeof (gint64)) };
      Outcome o = { 0 };

      work.error = g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND, "Neo.ClientError.Statement.SyntaxError: x");
      if (i < G_N_ELEMENTS (kinds))
        bp_bolt_tx_retry_set_classify_func (retry, classify_as, GINT_TO_POINTER (kinds[i]), NULL);
      else
        {
          bp_bolt_tx_retry_set_classify_func (retry, classify_as, GINT_TO_POINTER (BP_FAILURE_RETRYABLE), NULL);
          if (i == G_N_ELEMENTS (kinds))
            g_object_set (retry, "max-time-ms", 0, NULL);
          else
            {
              g_autoptr(BpRetryBudget) budget = bp_retry_budget_new (clock, 0.0, 0, 10000);
              bp_bolt_tx_retry_set_budget (retry, budget);
            }
        }
      run_to_end (retry, clock, &work, &o);
      g_assert_false (o.ok);
      g_assert_error (o.error, BP_ERROR, BP_ERROR_BACKEND);
      g_assert_cmpuint (o.attempts, ==, 1);
      g_assert_cmpuint (work.starts->len, ==, 1);
      g_assert_cmpuint (o.delays->len, ==, 0);

      g_error_free (work.error);
      g_array_unref (work.starts);
      outcome_clear (&o);
    }
}

static void
test_cancel_during_sleep (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 3);
  g_autoptr(BpBoltTxRetry) retry = bp_bolt_tx_retry_new (clock);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  FakeWork work = { clock, 5, NULL, g_array_new (FALSE, FALSE, sizeof (gint64)) };
  Outcome o = { 0 };

  g_test_summary ("cancelling during the sleep ends the run at once, without another attempt");

  work.error = g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND, "Neo.TransientError.General.X: x");
  o.delays = g_array_new (FALSE, FALSE, sizeof (gint64));
  bp_bolt_tx_retry_set_classify_func (retry, classify_as, GINT_TO_POINTER (BP_FAILURE_RETRYABLE), NULL);
  g_signal_connect (retry, "retry-scheduled", G_CALLBACK (retry_scheduled_cb), &o);
  bp_bolt_tx_retry_run_async (retry, &fake_op, &work, NULL, cancellable, run_done_cb, &o);
  drain ();
  g_assert_false (o.done);
  g_assert_cmpuint (o.delays->len, ==, 1);
  g_cancellable_cancel (cancellable);
  drain ();
  g_assert_true (o.done);
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  bp_clock_advance (clock, 60 * G_USEC_PER_SEC);
  drain ();
  g_assert_cmpuint (work.starts->len, ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);

  g_error_free (work.error);
  g_array_unref (work.starts);
  outcome_clear (&o);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bolt/tx-retry/delays", test_delays);
  g_test_add_func ("/bolt/tx-retry/schedule", test_schedule);
  g_test_add_func ("/bolt/tx-retry/recovers", test_recovers);
  g_test_add_func ("/bolt/tx-retry/not-retried", test_not_retried);
  g_test_add_func ("/bolt/tx-retry/cancel-during-sleep", test_cancel_during_sleep);

  return g_test_run ();
}
