/* test-worker-pool.c: BpWorkerPool bound, delivery context, cancellation
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <backplane.h>

/* A gate the worker functions block on, so the tests decide when a job
 * ends. Waiting on it is synchronisation between threads, not time. */
typedef struct
{
  GMutex mutex;
  GCond  cond;
  guint  started;
  guint  ran;
  gboolean open;
} Gate;

static void
gate_init (Gate *gate)
{
  g_mutex_init (&gate->mutex);
  g_cond_init (&gate->cond);
  gate->started = 0;
  gate->ran = 0;
  gate->open = FALSE;
}

static void
gate_clear (Gate *gate)
{
  g_mutex_clear (&gate->mutex);
  g_cond_clear (&gate->cond);
}

static void
gate_open (Gate *gate)
{
  g_mutex_lock (&gate->mutex);
  gate->open = TRUE;
  g_cond_broadcast (&gate->cond);
  g_mutex_unlock (&gate->mutex);
}

static void
gate_wait_started (Gate  *gate,
                   guint  n)
{
  g_mutex_lock (&gate->mutex);
  while (gate->started < n)
    g_cond_wait (&gate->cond, &gate->mutex);
  g_mutex_unlock (&gate->mutex);
}

static gpointer
gated_func (gpointer       data,
            GCancellable  *cancellable,
            GError       **error)
{
  Gate *gate = data;

  g_mutex_lock (&gate->mutex);
  gate->started++;
  g_cond_broadcast (&gate->cond);
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->mutex);
  gate->ran++;
  g_mutex_unlock (&gate->mutex);
  return g_strdup ("done");
}

typedef struct
{
  GMainContext *context;
  guint         n_done;
  GThread      *thread;
  char         *result;
  GError       *error;
} Outcome;

static void
outcome_clear (Outcome *o)
{
  g_clear_pointer (&o->result, g_free);
  g_clear_error (&o->error);
  o->n_done = 0;
}

static void
run_cb (GObject      *object,
        GAsyncResult *result,
        gpointer      user_data)
{
  Outcome *o = user_data;

  g_assert_true (g_main_context_is_owner (o->context != NULL ? o->context : g_main_context_default ()));
  o->thread = g_thread_self ();
  g_clear_pointer (&o->result, g_free);
  g_clear_error (&o->error);
  o->result = bp_worker_pool_run_finish (BP_WORKER_POOL (object), result, &o->error);
  o->n_done++;
}

static guint64
stat_u (BpWorkerPool *pool,
        const char   *key)
{
  g_autoptr(GVariant) stats = bp_worker_pool_dup_stats (pool);
  g_autoptr(GVariant) v = g_variant_lookup_value (stats, key, NULL);

  g_assert_nonnull (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (v);
  return g_variant_get_uint64 (v);
}

static gpointer
thread_name_func (gpointer       data,
                  GCancellable  *cancellable,
                  GError       **error)
{
  GThread **out = data;

  *out = g_thread_self ();
  return g_strdup ("hello");
}

static gpointer
failing_func (gpointer       data,
              GCancellable  *cancellable,
              GError       **error)
{
  g_set_error (error, BP_ERROR, BP_ERROR_BACKEND, "it broke");
  return NULL;
}

static void
test_run_result (void)
{
  g_autoptr(BpWorkerPool) pool = bp_worker_pool_new ("test", 2, 4);
  Outcome o = { 0 };
  GThread *worker = NULL;

  bp_worker_pool_run_async (pool, thread_name_func, &worker, NULL, g_free, NULL, run_cb, &o);
  g_assert_cmpuint (o.n_done, ==, 0);
  while (o.n_done == 0)
    g_main_context_iteration (NULL, TRUE);

  g_assert_no_error (o.error);
  g_assert_cmpstr (o.result, ==, "hello");
  g_assert_true (o.thread == g_thread_self ());
  g_assert_nonnull (worker);
  g_assert_true (worker != g_thread_self ());
  g_assert_cmpuint (stat_u (pool, "completed"), ==, 1);
  g_assert_cmpuint (stat_u (pool, "running"), ==, 0);
  outcome_clear (&o);

  bp_worker_pool_run_async (pool, failing_func, NULL, NULL, g_free, NULL, run_cb, &o);
  while (o.n_done == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_null (o.result);
  outcome_clear (&o);

  g_assert_finalize_object (g_steal_pointer (&pool));
}

static void
test_bound (void)
{
  g_autoptr(BpWorkerPool) pool = bp_worker_pool_new ("bounded", 1, 2);
  Gate gate;
  Outcome accepted[3] = { { 0 } };
  Outcome refused[2] = { { 0 } };

  gate_init (&gate);

  for (guint i = 0; i < 3; i++)
    bp_worker_pool_run_async (pool, gated_func, &gate, NULL, g_free, NULL, run_cb, &accepted[i]);
  gate_wait_started (&gate, 1);
  g_assert_cmpuint (stat_u (pool, "running"), ==, 1);
  g_assert_cmpuint (stat_u (pool, "queued"), ==, 2);

  for (guint i = 0; i < 2; i++)
    {
      bp_worker_pool_run_async (pool, gated_func, &gate, NULL, g_free, NULL, run_cb, &refused[i]);
      /* Never completed synchronously inside run_async. */
      g_assert_cmpuint (refused[i].n_done, ==, 0);
    }
  g_assert_cmpuint (stat_u (pool, "rejected"), ==, 2);

  while (refused[0].n_done == 0 || refused[1].n_done == 0)
    g_main_context_iteration (NULL, TRUE);
  for (guint i = 0; i < 2; i++)
    {
      g_assert_error (refused[i].error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
      g_assert_null (refused[i].result);
    }
  /* Nothing accepted has finished: the gate is still closed. */
  for (guint i = 0; i < 3; i++)
    g_assert_cmpuint (accepted[i].n_done, ==, 0);

  gate_open (&gate);
  while (accepted[0].n_done + accepted[1].n_done + accepted[2].n_done < 3)
    g_main_context_iteration (NULL, TRUE);
  for (guint i = 0; i < 3; i++)
    {
      g_assert_no_error (accepted[i].error);
      g_assert_cmpstr (accepted[i].result, ==, "done");
      outcome_clear (&accepted[i]);
    }
  for (guint i = 0; i < 2; i++)
    outcome_clear (&refused[i]);

  g_assert_cmpuint (gate.ran, ==, 3);
  g_assert_cmpuint (stat_u (pool, "completed"), ==, 3);
  g_assert_cmpuint (stat_u (pool, "queued"), ==, 0);
  g_assert_cmpuint (stat_u (pool, "running"), ==, 0);

  /* Slots are free again. */
  bp_worker_pool_run_async (pool, gated_func, &gate, NULL, g_free, NULL, run_cb, &accepted[0]);
  while (accepted[0].n_done == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (accepted[0].error);
  outcome_clear (&accepted[0]);

  g_assert_finalize_object (g_steal_pointer (&pool));
  gate_clear (&gate);
}

static void
test_no_queue (void)
{
  g_autoptr(BpWorkerPool) pool = bp_worker_pool_new ("no-queue", 1, 0);
  Gate gate;
  Outcome a = { 0 }, b = { 0 };

  gate_init (&gate);
  bp_worker_pool_run_async (pool, gated_func, &gate, NULL, g_free, NULL, run_cb, &a);
  bp_worker_pool_run_async (pool, gated_func, &gate, NULL, g_free, NULL, run_cb, &b);
  while (b.n_done == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (b.error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  gate_open (&gate);
  while (a.n_done == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (a.error);
  outcome_clear (&a);
  outcome_clear (&b);
  g_assert_finalize_object (g_steal_pointer (&pool));
  gate_clear (&gate);
}

static void
count_free (gpointer data)
{
  guint *n = data;

  (*n)++;
}

static gpointer
never_func (gpointer       data,
            GCancellable  *cancellable,
            GError       **error)
{
  g_assert_not_reached ();
  return NULL;
}

static void
test_cancel_queued (void)
{
  g_autoptr(BpWorkerPool) pool = bp_worker_pool_new ("cancel", 1, 1);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Gate gate;
  Outcome running = { 0 }, queued = { 0 }, later = { 0 };
  guint data_freed = 0;

  gate_init (&gate);
  bp_worker_pool_run_async (pool, gated_func, &gate, NULL, g_free, NULL, run_cb, &running);
  gate_wait_started (&gate, 1);

  bp_worker_pool_run_async (pool, never_func, &data_freed, count_free, g_free,
                            cancellable, run_cb, &queued);
  g_assert_cmpuint (stat_u (pool, "queued"), ==, 1);
  g_cancellable_cancel (cancellable);
  /* The slot is free right away, the job completes without a thread. */
  g_assert_cmpuint (stat_u (pool, "queued"), ==, 0);
  g_assert_cmpuint (stat_u (pool, "cancelled"), ==, 1);
  while (queued.n_done == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (queued.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (running.n_done, ==, 0);

  /* The freed slot takes a new job while the first still runs. */
  bp_worker_pool_run_async (pool, gated_func, &gate, NULL, g_free, NULL, run_cb, &later);
  g_assert_cmpuint (stat_u (pool, "queued"), ==, 1);

  gate_open (&gate);
  while (running.n_done == 0 || later.n_done == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_no_error (running.error);
  g_assert_no_error (later.error);
  outcome_clear (&running);
  outcome_clear (&queued);
  outcome_clear (&later);

  /* An already-cancelled cancellable never reaches the queue. */
  bp_worker_pool_run_async (pool, never_func, &data_freed, count_free, g_free,
                            cancellable, run_cb, &queued);
  g_assert_cmpuint (queued.n_done, ==, 0);
  while (queued.n_done == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (queued.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  outcome_clear (&queued);

  g_assert_finalize_object (g_steal_pointer (&pool));
  g_assert_cmpuint (data_freed, ==, 2);
  gate_clear (&gate);
}

typedef struct
{
  Gate      *gate;
  GCancellable *cancellable;
} CancelRunning;

static gpointer
cancel_self_func (gpointer       data,
                  GCancellable  *cancellable,
                  GError       **error)
{
  /* The result exists but the call was cancelled: it must be freed. */
  g_cancellable_cancel (cancellable);
  return g_strdup ("dropped");
}

static guint n_results_freed;

static void
counting_result_free (gpointer p)
{
  n_results_freed++;
  g_free (p);
}

static void
ignore_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  guint *n = user_data;

  (*n)++;
}

static void
test_result_free (void)
{
  g_autoptr(BpWorkerPool) pool = bp_worker_pool_new ("free", 1, 4);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Outcome o = { 0 };
  guint n = 0;

  n_results_freed = 0;

  /* Cancelled while running: the caller sees the cancellation and the
   * produced result is freed. */
  bp_worker_pool_run_async (pool, cancel_self_func, NULL, NULL, counting_result_free,
                            cancellable, run_cb, &o);
  while (o.n_done == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (o.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (o.result);
  outcome_clear (&o);

  /* Nobody calls finish: the result is freed with the task. */
  bp_worker_pool_run_async (pool, cancel_self_func, NULL, NULL, counting_result_free,
                            NULL, ignore_cb, &n);
  while (n == 0)
    g_main_context_iteration (NULL, TRUE);

  g_assert_finalize_object (g_steal_pointer (&pool));
  g_assert_cmpuint (n_results_freed, ==, 2);
}

typedef struct
{
  BpWorkerPool *pool;
  GThread      *callback_thread;
  GThread      *caller_thread;
  char         *result;
} ContextData;

static void
context_run_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  ContextData *data = user_data;
  g_autoptr(GError) error = NULL;

  data->callback_thread = g_thread_self ();
  data->result = bp_worker_pool_run_finish (BP_WORKER_POOL (object), result, &error);
  g_assert_no_error (error);
}

static gpointer
caller_thread_func (gpointer user_data)
{
  ContextData *data = user_data;
  g_autoptr(GMainContext) context = g_main_context_new ();
  GThread *worker = NULL;

  g_main_context_push_thread_default (context);
  data->caller_thread = g_thread_self ();
  bp_worker_pool_run_async (data->pool, thread_name_func, &worker, NULL, g_free,
                            NULL, context_run_cb, data);
  while (data->result == NULL)
    g_main_context_iteration (context, TRUE);
  g_main_context_pop_thread_default (context);
  return NULL;
}

static void
test_caller_context (void)
{
  g_autoptr(BpWorkerPool) pool = bp_worker_pool_new ("context", 2, 4);
  ContextData data = { pool, NULL, NULL, NULL };
  GThread *thread;

  thread = g_thread_new ("caller", caller_thread_func, &data);
  g_thread_join (thread);

  g_assert_cmpstr (data.result, ==, "hello");
  g_assert_true (data.callback_thread == data.caller_thread);
  g_assert_true (data.callback_thread != g_thread_self ());
  g_free (data.result);
  g_assert_finalize_object (g_steal_pointer (&pool));
}

static void
test_default (void)
{
  BpWorkerPool *pool = bp_worker_pool_get_default ();
  Outcome o = { 0 };
  GThread *worker = NULL;

  g_assert_true (pool == bp_worker_pool_get_default ());
  g_assert_cmpuint (bp_worker_pool_get_max_threads (pool), >=, 2);
  g_assert_cmpuint (bp_worker_pool_get_max_queued (pool), >, 0);
  g_assert_cmpstr (bp_worker_pool_get_name (pool), ==, "default");

  bp_worker_pool_run_async (pool, thread_name_func, &worker, NULL, g_free, NULL, run_cb, &o);
  while (o.n_done == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpstr (o.result, ==, "hello");
  outcome_clear (&o);
}

static gpointer
sum_func (gpointer       data,
          GCancellable  *cancellable,
          GError       **error)
{
  guint *v = data;

  return GUINT_TO_POINTER (*v * 2 + 1);
}

static void
sum_cb (GObject      *object,
        GAsyncResult *result,
        gpointer      user_data)
{
  guint64 *sum = user_data;
  g_autoptr(GError) error = NULL;
  gpointer r = bp_worker_pool_run_finish (BP_WORKER_POOL (object), result, &error);

  g_assert_no_error (error);
  *sum += GPOINTER_TO_UINT (r);
  sum[1]++;
}

static void
test_many (void)
{
  g_autoptr(BpWorkerPool) pool = bp_worker_pool_new ("many", 4, 1000);
  guint values[1000];
  guint64 sum[2] = { 0, 0 };
  guint64 expected = 0;

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      values[i] = i;
      expected += i * 2 + 1;
      bp_worker_pool_run_async (pool, sum_func, &values[i], NULL, NULL, NULL, sum_cb, sum);
    }
  /* max-threads running + max-queued waiting: all 1000 fit (4 + 1000). */
  while (sum[1] < G_N_ELEMENTS (values))
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (sum[0], ==, expected);
  g_assert_cmpuint (stat_u (pool, "rejected"), ==, 0);
  g_assert_cmpuint (stat_u (pool, "completed"), ==, G_N_ELEMENTS (values));
  g_assert_finalize_object (g_steal_pointer (&pool));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/worker-pool/run/result", test_run_result);
  g_test_add_func ("/worker-pool/bound/limit-exceeded", test_bound);
  g_test_add_func ("/worker-pool/bound/no-queue", test_no_queue);
  g_test_add_func ("/worker-pool/cancel/queued", test_cancel_queued);
  g_test_add_func ("/worker-pool/cancel/result-freed", test_result_free);
  g_test_add_func ("/worker-pool/context/caller", test_caller_context);
  g_test_add_func ("/worker-pool/default", test_default);
  g_test_add_func ("/worker-pool/run/many", test_many);

  return g_test_run ();
}
