/* bench-resilience.c: per-call overhead of BpBreaker + BpRetry
 *
 * Runs an operation whose GTask is already completed when its start
 * function returns (the cheapest possible backend call) N times, one after
 * the other on the main loop:
 *   - bare: the operation alone;
 *   - breaker: through bp_breaker_call_async();
 *   - breaker+retry: through bp_retry_run_with_breaker_async(), with a retry
 *     budget, as bp_backend_call_async() runs every backend call (one GTask
 *     for the run, the breaker admitted inline);
 *   - composed: bp_retry_run_async() around bp_breaker_call_async(), the
 *     same policy built from the two public pieces (two extra GTasks), for
 *     comparison.
 * The variants run in many short rounds, interleaved, so that all of them
 * see the same load; each keeps its best round and its median round (this
 * shared VM's noise comes in bursts longer than a round). It prints the
 * ratios of both to the bare GTask and never fails on timing (exit status
 * 0).
 *
 * Usage: bench-resilience [N [VARIANT]]
 *   N: calls a round (default 20000); VARIANT: run only "bare", "breaker",
 *   "breaker+retry" or "composed" (for perf stat / callgrind), without the
 *   comparison.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>

#include <backplane.h>

#define N_ROUNDS 60

/* The operation: a GTask returned before start() returns. */
static void
ready_start (gpointer             op_data,
             GCancellable        *cancellable,
             GAsyncReadyCallback  callback,
             gpointer             callback_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, callback_data);

  g_task_return_pointer (task, GUINT_TO_POINTER (1), NULL);
  g_object_unref (task);
}

static gboolean
ready_finish (gpointer       op_data,
              GAsyncResult  *result,
              gpointer      *out_result,
              GError       **error)
{
  gpointer r = g_task_propagate_pointer (G_TASK (result), error);

  if (out_result != NULL)
    *out_result = r;
  return r != NULL;
}

static const BpOperation ready_op = { ready_start, ready_finish, NULL };

/* The breaker around it, as a BpOperation for the retry. */
static void
breaker_start (gpointer             op_data,
               GCancellable        *cancellable,
               GAsyncReadyCallback  callback,
               gpointer             callback_data)
{
  bp_breaker_call_async (BP_BREAKER (op_data), &ready_op, NULL, NULL, NULL,
                         cancellable, callback, callback_data);
}

static gboolean
breaker_finish (gpointer       op_data,
                GAsyncResult  *result,
                gpointer      *out_result,
                GError       **error)
{
  return bp_breaker_call_finish (BP_BREAKER (op_data), result, out_result, NULL, error);
}

static const BpOperation breaker_op = { breaker_start, breaker_finish, NULL };

typedef enum
{
  VARIANT_BARE,
  VARIANT_BREAKER,
  VARIANT_BREAKER_RETRY,
  VARIANT_COMPOSED,
  N_VARIANTS
} Variant;

static const char *variant_names[N_VARIANTS] = { "bare GTask", "breaker", "breaker+retry", "composed" };
static const char *variant_labels[N_VARIANTS] = {
  "bare GTask", "breaker", "breaker+retry", "composed retry(breaker call)"
};

static int
compare_double (const void *a,
                const void *b)
{
  double x = *(const double *) a;
  double y = *(const double *) b;

  return (x > y) - (x < y);
}

typedef struct
{
  BpBreaker *breaker;
  BpRetry   *retry;
  gboolean   done;
  gboolean   ok;
  guint64    iterations;   /* main-context iterations, all rounds */
} Bench;

static void
bare_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Bench *b = user_data;

  b->ok = ready_finish (NULL, result, NULL, NULL);
  b->done = TRUE;
}

static void
breaker_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Bench *b = user_data;

  b->ok = bp_breaker_call_finish (BP_BREAKER (source), result, NULL, NULL, NULL);
  b->done = TRUE;
}

static void
retry_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  Bench *b = user_data;

  b->ok = bp_retry_run_finish (BP_RETRY (source), result, NULL, NULL, NULL);
  b->done = TRUE;
}

/* Returns the mean wall time of one call, in nanoseconds. */
static double
run_round (Bench   *b,
           Variant  variant,
           guint    n)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      b->done = FALSE;
      switch (variant)
        {
        case VARIANT_BARE:
          ready_start (NULL, NULL, bare_done_cb, b);
          break;
        case VARIANT_BREAKER:
          bp_breaker_call_async (b->breaker, &ready_op, NULL, NULL, NULL, NULL, breaker_done_cb, b);
          break;
        case VARIANT_BREAKER_RETRY:
          bp_retry_run_with_breaker_async (b->retry, b->breaker, &ready_op, NULL, NULL,
                                           BP_IDEMPOTENCY_IDEMPOTENT, NULL, retry_done_cb, b);
          break;
        case VARIANT_COMPOSED:
        default:
          bp_retry_run_async (b->retry, &breaker_op, b->breaker, NULL,
                              BP_IDEMPOTENCY_IDEMPOTENT, NULL, retry_done_cb, b);
          break;
        }
      while (!b->done)
        {
          g_main_context_iteration (NULL, TRUE);
          b->iterations++;
        }
      if (!b->ok)
        g_error ("call %u of %s failed", i, variant_names[variant]);
    }

  return (double) (g_get_monotonic_time () - start) * 1000.0 / n;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(BpRetryBudget) budget = NULL;
  double rounds[N_VARIANTS][N_ROUNDS];
  double best[N_VARIANTS];
  double median[N_VARIANTS];
  Bench b = { 0, };
  guint n = 20000;

  if (argc > 1)
    n = CLAMP (strtoul (argv[1], NULL, 10), 1000, 100000000);

  b.breaker = bp_breaker_new ("bench", NULL);
  b.retry = bp_retry_new (NULL);
  budget = bp_retry_budget_new (NULL, 0.2, 10, 10000);
  bp_retry_set_budget (b.retry, budget);

  if (argc > 2)
    {
      for (Variant v = 0; v < N_VARIANTS; v++)
        if (g_strcmp0 (argv[2], variant_names[v]) == 0 ||
            (v == VARIANT_BARE && g_strcmp0 (argv[2], "bare") == 0))
          {
            double ns = run_round (&b, v, n);

            g_print ("%s per call: %.0f ns, %.2f main-context iterations per call\n",
                     variant_names[v], ns, (double) b.iterations / n);
          }
      g_clear_object (&b.retry);
      g_clear_object (&b.breaker);
      return EXIT_SUCCESS;
    }

  /* warm-up */
  for (Variant v = 0; v < N_VARIANTS; v++)
    run_round (&b, v, n);

  for (guint round = 0; round < N_ROUNDS; round++)
    for (Variant v = 0; v < N_VARIANTS; v++)
      rounds[v][round] = run_round (&b, v, n);

  for (Variant v = 0; v < N_VARIANTS; v++)
    {
      qsort (rounds[v], N_ROUNDS, sizeof (double), compare_double);
      best[v] = rounds[v][0];
      median[v] = rounds[v][N_ROUNDS / 2];
    }

  g_print ("calls per round: %u, rounds: %u, interleaved\n", n, N_ROUNDS);
  for (Variant v = VARIANT_BREAKER; v < N_VARIANTS; v++)
    g_print ("%s per call: best %.0f ns (bare GTask %.0f ns): ratio %.2f, added %.0f ns; "
             "median %.0f ns (bare %.0f ns): ratio %.2f, added %.0f ns\n",
             variant_labels[v],
             best[v], best[VARIANT_BARE], best[v] / best[VARIANT_BARE], best[v] - best[VARIANT_BARE],
             median[v], median[VARIANT_BARE], median[v] / median[VARIANT_BARE],
             median[v] - median[VARIANT_BARE]);

  g_clear_object (&b.retry);
  g_clear_object (&b.breaker);
  return EXIT_SUCCESS;
}
