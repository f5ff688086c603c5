/* bp-worker-pool.c: a bounded GThreadPool that completes GTasks
 *
 * BpWorkerPool runs blocking or CPU-heavy functions (an fsync, a hash, a
 * blocking library call) on a #GThreadPool and delivers the result as a
 * #GTask on the caller's thread-default main context, the context that was
 * current when bp_worker_pool_run_async() was called.
 *
 * The queue is bounded: at most max-threads jobs run and at most max-queued
 * wait. One more is refused with %BP_ERROR_LIMIT_EXCEEDED, which the caller
 * receives on the next main-loop iteration (never synchronously inside
 * run_async), so a flood of work degrades into fast errors instead of
 * unbounded memory.
 *
 * A job cancelled while it still waits in the queue completes at once with
 * %G_IO_ERROR_CANCELLED and its function never runs. A job cancelled while
 * it runs is told through the #GCancellable it receives; its result is then
 * discarded (freed with result_free) and the caller gets the cancellation.
 *
 * Thread safety: every function may be called from any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-worker-pool.h"
#include "bp-error.h"

/**
 * BpWorkerPool:
 *
 * Runs blocking or CPU-heavy functions (an fsync, a hash, a blocking
 * library call) on a bounded #GThreadPool and completes a #GTask with
 * their result on the caller's main context: the thread-default main
 * context that was current when [method@Bp.WorkerPool.run_async] was
 * called. The [callback@Bp.WorkerFunc] itself runs in a worker thread;
 * its result, error or cancellation always comes back in that context,
 * never in the worker thread.
 *
 * The queue is bounded: at most [property@Bp.WorkerPool:max-threads] jobs
 * run and at most [property@Bp.WorkerPool:max-queued] wait. One more is
 * refused with %BP_ERROR_LIMIT_EXCEEDED, which the caller receives on the
 * next main-loop iteration (never synchronously inside
 * [method@Bp.WorkerPool.run_async]), so a flood of work degrades into fast
 * errors instead of unbounded memory.
 *
 * A job cancelled while it still waits in the queue completes at once with
 * `G_IO_ERROR_CANCELLED` and its function never runs. A job cancelled while
 * it runs is told through the #GCancellable it receives; its result is then
 * discarded (freed with `result_free`) and the caller gets the
 * cancellation.
 *
 * Threads are shared with GLib's other non-exclusive thread pools, so an
 * idle worker pool costs no thread. Use
 * [func@Bp.WorkerPool.get_default] for short blocking calls, and a
 * pool of your own for long or unbounded work.
 *
 * ```c
 * static gpointer
 * hash_file (gpointer       data,
 *            GCancellable  *cancellable,
 *            GError       **error)
 * {
 *   // runs in a worker thread
 *   return my_hash_file (data, cancellable, error);
 * }
 *
 * bp_worker_pool_run_async (bp_worker_pool_get_default (), hash_file,
 *                           g_strdup (path), g_free, g_free,
 *                           cancellable, hashed_cb, self);
 *
 * // in hashed_cb, back on the caller's main context:
 * g_autofree char *digest =
 *   bp_worker_pool_run_finish (BP_WORKER_POOL (source), result, &error);
 * ```
 *
 * Thread-safe: every function may be called from any thread.
 */
struct _BpWorkerPool
{
  GObject      parent_instance;

  char        *name;           /* (owned) */
  GThreadPool *threads;        /* (owned) */
  guint        max_threads;
  guint        max_queued;

  GMutex       mutex;
  guint        queued;         /* under mutex: waiting for a thread */
  guint        running;        /* under mutex: inside their BpWorkerFunc */
  guint64      completed;      /* under mutex: func ran and returned */
  guint64      cancelled;      /* under mutex: cancelled while queued */
  guint64      rejected;       /* under mutex: refused, queue full */
};

G_DEFINE_FINAL_TYPE (BpWorkerPool, bp_worker_pool, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_NAME,
  PROP_MAX_THREADS,
  PROP_MAX_QUEUED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  JOB_QUEUED,
  JOB_RUNNING,
  JOB_CANCELLED,
};

typedef struct
{
  BpWorkerFunc    func;
  gpointer        data;          /* (owned) (nullable) via data_free */
  GDestroyNotify  data_free;     /* (nullable) */
  GDestroyNotify  result_free;   /* (nullable) */
  GCancellable   *cancellable;   /* (owned) (nullable) */
  gulong          cancelled_id;
  gint            state;         /* atomic: JOB_* */
  gpointer        result;        /* (owned) (nullable) via result_free */
  GError         *error;         /* (owned) (nullable) */
} RunData;

static void
run_data_free (RunData *data)
{
  if (data->data_free != NULL && data->data != NULL)
    data->data_free (data->data);
  if (data->result_free != NULL && data->result != NULL)
    data->result_free (data->result);
  g_clear_error (&data->error);
  g_clear_object (&data->cancellable);
  g_free (data);
}

/* Runs in the task's context: the job's outcome goes to the caller. */
static gboolean
bp_worker_pool_complete_cb (gpointer user_data)
{
  GTask *task = user_data;
  RunData *data = g_task_get_task_data (task);

  if (data->error != NULL)
    g_task_return_error (task, g_steal_pointer (&data->error));
  else
    g_task_return_pointer (task, g_steal_pointer (&data->result), data->result_free);
  return G_SOURCE_REMOVE;
}

/* Runs in a worker thread of self->threads. @job_task carries a reference
 * that the pool owned while the job was queued. */
static void
bp_worker_pool_thread (gpointer job_task,
                       gpointer pool_data)
{
  GTask *task = job_task;
  BpWorkerPool *self = pool_data;
  RunData *data = g_task_get_task_data (task);
  g_autoptr(GSource) source = NULL;
  gboolean claimed;

  claimed = g_atomic_int_compare_and_exchange (&data->state, JOB_QUEUED, JOB_RUNNING);

  /* Blocks until a concurrent cancelled handler has returned; once we
   * claimed the job that handler sees JOB_RUNNING and does nothing. The
   * handler holds a task reference, so this also breaks the
   * task → cancellable → handler → task cycle. */
  if (data->cancelled_id != 0)
    g_cancellable_disconnect (data->cancellable, data->cancelled_id);
  data->cancelled_id = 0;

  /* A job cancelled while queued was already completed and uncounted. */
  if (!claimed)
    {
      g_object_unref (task);
      return;
    }

  g_mutex_lock (&self->mutex);
  self->queued--;
  self->running++;
  g_mutex_unlock (&self->mutex);

  data->result = data->func (data->data, data->cancellable, &data->error);

  g_mutex_lock (&self->mutex);
  self->running--;
  self->completed++;
  g_mutex_unlock (&self->mutex);

  /* Hand our task reference to an idle source in the caller's context
   * instead of calling g_task_return_*() here: that way the last
   * reference (and with it @self and data_free) is never dropped in this
   * thread after the caller has already seen the result. Not
   * g_main_context_invoke(): it could run the callback in this thread
   * when the caller's context happens to be free. */
  source = g_idle_source_new ();
  g_source_set_priority (source, g_task_get_priority (task));
  g_source_set_static_name (source, "[backplane] BpWorkerPool complete");
  g_source_set_callback (source, bp_worker_pool_complete_cb, task, g_object_unref);
  g_source_attach (source, g_task_get_context (task));
}

/* Runs in whichever thread cancels the cancellable. */
static void
bp_worker_pool_job_cancelled_cb (GCancellable *cancellable,
                                 gpointer      user_data)
{
  GTask *task = user_data;
  RunData *data = g_task_get_task_data (task);
  BpWorkerPool *self = g_task_get_source_object (task);

  if (!g_atomic_int_compare_and_exchange (&data->state, JOB_QUEUED, JOB_CANCELLED))
    return;

  g_mutex_lock (&self->mutex);
  self->queued--;
  self->cancelled++;
  g_mutex_unlock (&self->mutex);

  /* GTask defers this to the task's context because the cancellable is
   * cancelled; the stale entry left in the GThreadPool queue is skipped. */
  g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                           "Operation was cancelled");
}

static void
bp_worker_pool_finalize (GObject *object)
{
  BpWorkerPool *self = BP_WORKER_POOL (object);

  /* Every queued job holds a reference on us through its GTask, so the
   * queue is empty here. Do not wait: finalize may run in one of our
   * own threads, and the last thread frees the GThreadPool. */
  if (self->threads != NULL)
    g_thread_pool_free (self->threads, FALSE, FALSE);
  g_clear_pointer (&self->name, g_free);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (bp_worker_pool_parent_class)->finalize (object);
}

static void
bp_worker_pool_constructed (GObject *object)
{
  BpWorkerPool *self = BP_WORKER_POOL (object);

  G_OBJECT_CLASS (bp_worker_pool_parent_class)->constructed (object);

  /* Shared (non-exclusive) threads: idle pools cost no thread, and a
   * non-exclusive GThreadPool push never fails. */
  self->threads = g_thread_pool_new (bp_worker_pool_thread, self,
                                     (int) self->max_threads, FALSE, NULL);
}

static void
bp_worker_pool_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  BpWorkerPool *self = BP_WORKER_POOL (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      break;
    case PROP_MAX_THREADS:
      g_value_set_uint (value, self->max_threads);
      break;
    case PROP_MAX_QUEUED:
      g_value_set_uint (value, self->max_queued);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_worker_pool_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  BpWorkerPool *self = BP_WORKER_POOL (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_free (self->name);
      self->name = g_value_dup_string (value);
      break;
    case PROP_MAX_THREADS:
      self->max_threads = g_value_get_uint (value);
      break;
    case PROP_MAX_QUEUED:
      self->max_queued = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_worker_pool_class_init (BpWorkerPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = bp_worker_pool_constructed;
  object_class->finalize = bp_worker_pool_finalize;
  object_class->get_property = bp_worker_pool_get_property;
  object_class->set_property = bp_worker_pool_set_property;

  /**
   * BpWorkerPool:name:
   *
   * A name for debugging, error messages and stats. Construct-only.
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, "worker",
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * BpWorkerPool:max-threads:
   *
   * How many jobs run at the same time (1 to 256, default 4).
   * Construct-only.
   */
  properties[PROP_MAX_THREADS] =
    g_param_spec_uint ("max-threads", NULL, NULL, 1, 256, 4,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * BpWorkerPool:max-queued:
   *
   * How many jobs may wait for a thread (0 to 1048576, default 1024); one
   * more is refused with %BP_ERROR_LIMIT_EXCEEDED. Construct-only.
   */
  properties[PROP_MAX_QUEUED] =
    g_param_spec_uint ("max-queued", NULL, NULL, 0, 1 << 20, 1024,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
bp_worker_pool_init (BpWorkerPool *self)
{
  g_mutex_init (&self->mutex);
}

/**
 * bp_worker_pool_new:
 * @name: a name for debugging and stats
 * @max_threads: how many jobs run concurrently, 1 to 256
 * @max_queued: how many jobs may wait for a thread (0: none wait), at most
 *   1048576
 *
 * Creates a worker pool accepting at most @max_threads + @max_queued jobs
 * at a time. Values out of range are a programming error (a critical
 * warning, and %NULL). Threads are started on demand.
 *
 * Returns: (transfer full): a new #BpWorkerPool
 */
BpWorkerPool *
bp_worker_pool_new (const char *name,
                    guint       max_threads,
                    guint       max_queued)
{
  g_return_val_if_fail (name != NULL, NULL);
  g_return_val_if_fail (max_threads >= 1 && max_threads <= 256, NULL);
  g_return_val_if_fail (max_queued <= (1 << 20), NULL);

  return g_object_new (BP_TYPE_WORKER_POOL,
                       "name", name,
                       "max-threads", max_threads,
                       "max-queued", max_queued,
                       NULL);
}

/**
 * bp_worker_pool_get_default:
 *
 * The process-wide pool for small blocking calls (a stat, a getpwnam, a
 * short file read): one thread per processor, clamped to 2..8, with 1024
 * queue slots. Long or unbounded work should get its own pool so it cannot
 * starve everyone else.
 *
 * Returns: (transfer none): the shared #BpWorkerPool
 */
BpWorkerPool *
bp_worker_pool_get_default (void)
{
  static gsize default_pool;

  if (g_once_init_enter (&default_pool))
    {
      guint n = CLAMP (g_get_num_processors (), 2, 8);
      BpWorkerPool *pool = bp_worker_pool_new ("default", n, 1024);

      g_once_init_leave (&default_pool, (gsize) pool);
    }
  return (BpWorkerPool *) default_pool;
}

/**
 * bp_worker_pool_get_name:
 * @self: a #BpWorkerPool
 *
 * Gets the name given at construction ([property@Bp.WorkerPool:name]).
 *
 * Returns: (transfer none): the pool's name, owned by @self
 */
const char *
bp_worker_pool_get_name (BpWorkerPool *self)
{
  g_return_val_if_fail (BP_IS_WORKER_POOL (self), NULL);
  return self->name;
}

/**
 * bp_worker_pool_get_max_threads:
 * @self: a #BpWorkerPool
 *
 * Gets [property@Bp.WorkerPool:max-threads].
 *
 * Returns: how many jobs may run at once
 */
guint
bp_worker_pool_get_max_threads (BpWorkerPool *self)
{
  g_return_val_if_fail (BP_IS_WORKER_POOL (self), 0);
  return self->max_threads;
}

/**
 * bp_worker_pool_get_max_queued:
 * @self: a #BpWorkerPool
 *
 * Gets [property@Bp.WorkerPool:max-queued].
 *
 * Returns: how many jobs may wait for a thread
 */
guint
bp_worker_pool_get_max_queued (BpWorkerPool *self)
{
  g_return_val_if_fail (BP_IS_WORKER_POOL (self), 0);
  return self->max_queued;
}

/**
 * bp_worker_pool_run_async:
 * @self: a #BpWorkerPool
 * @func: the blocking function, run in a worker thread
 * @data: (nullable): data for @func
 * @data_free: (nullable): frees @data once the job is done or dropped; it
 *   may run in any thread
 * @result_free: (nullable): frees a result nobody collected (the caller
 *   did not call finish, or the job was cancelled after it produced one)
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called on the thread-default main context of
 *   the calling thread once the job is done, refused or cancelled
 * @user_data: data for @callback
 *
 * Queues @func. If max-threads jobs run and max-queued wait already, the job
 * is refused with %BP_ERROR_LIMIT_EXCEEDED; @callback still runs, on the next
 * main-loop iteration. Cancelling @cancellable while the job waits completes
 * it at once with `G_IO_ERROR_CANCELLED` without running @func; cancelling
 * it while @func runs only tells @func (which should return early), and
 * the job then completes with `G_IO_ERROR_CANCELLED`. A @cancellable
 * already cancelled fails the job without queuing it.
 *
 * @callback is called exactly once, never from within this function and
 * never in the worker thread. Finish with
 * [method@Bp.WorkerPool.run_finish].
 */
void
bp_worker_pool_run_async (BpWorkerPool        *self,
                          BpWorkerFunc         func,
                          gpointer             data,
                          GDestroyNotify       data_free,
                          GDestroyNotify       result_free,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  RunData *run;
  gboolean accepted;
  guint n_running, n_queued;

  g_return_if_fail (BP_IS_WORKER_POOL (self));
  g_return_if_fail (func != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_worker_pool_run_async);
  g_task_set_name (task, "[backplane] bp_worker_pool_run_async");

  run = g_new0 (RunData, 1);
  run->func = func;
  run->data = data;
  run->data_free = data_free;
  run->result_free = result_free;
  run->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  run->state = JOB_QUEUED;
  g_task_set_task_data (task, run, (GDestroyNotify) run_data_free);

  /* The task is created in this call, so GTask completes it on the next
   * iteration of the caller's context even when we return right away. */
  if (g_task_return_error_if_cancelled (task))
    return;

  g_mutex_lock (&self->mutex);
  accepted = self->queued + self->running < self->max_threads + self->max_queued;
  n_running = self->running;
  n_queued = self->queued;
  if (accepted)
    self->queued++;
  else
    self->rejected++;
  g_mutex_unlock (&self->mutex);

  if (!accepted)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                               "Worker pool “%s” is full: %u running, %u queued "
                               "(max-threads %u, max-queued %u)",
                               self->name, n_running, n_queued,
                               self->max_threads, self->max_queued);
      return;
    }

  if (cancellable != NULL)
    run->cancelled_id = g_cancellable_connect (cancellable,
                                               G_CALLBACK (bp_worker_pool_job_cancelled_cb),
                                               g_object_ref (task), g_object_unref);

  /* A non-exclusive pool never fails to push. */
  g_thread_pool_push (self->threads, g_steal_pointer (&task), NULL);
}

/**
 * bp_worker_pool_run_finish:
 * @self: a #BpWorkerPool
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.WorkerPool.run_async]. The error is the one the
 * [callback@Bp.WorkerFunc] set, %BP_ERROR_LIMIT_EXCEEDED if the job was
 * refused, or `G_IO_ERROR_CANCELLED` if it was cancelled (its result, if
 * any, is then freed with `result_free`). Since %NULL is a valid result,
 * check @error rather than the return value.
 *
 * Returns: (nullable) (transfer full): what the #BpWorkerFunc returned (free
 *   it yourself), or %NULL with @error set
 */
gpointer
bp_worker_pool_run_finish (BpWorkerPool  *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (BP_IS_WORKER_POOL (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_worker_pool_run_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * bp_worker_pool_dup_stats:
 * @self: a #BpWorkerPool
 *
 * The counters, as `a{sv}`: `name` s, `max-threads` u, `max-queued` u,
 * `queued` u (waiting now), `running` u (inside their function now),
 * `completed` t (functions that returned), `cancelled` t (cancelled while
 * queued), `rejected` t (refused because the queue was full). Counters are
 * since creation. Thread-safe.
 *
 * Returns: (transfer full): a new non-floating `a{sv}` #GVariant
 */
GVariant *
bp_worker_pool_dup_stats (BpWorkerPool *self)
{
  GVariantDict dict;

  g_return_val_if_fail (BP_IS_WORKER_POOL (self), NULL);

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "name", "s", self->name);
  g_variant_dict_insert (&dict, "max-threads", "u", self->max_threads);
  g_variant_dict_insert (&dict, "max-queued", "u", self->max_queued);
  g_mutex_lock (&self->mutex);
  g_variant_dict_insert (&dict, "queued", "u", self->queued);
  g_variant_dict_insert (&dict, "running", "u", self->running);
  g_variant_dict_insert (&dict, "completed", "t", self->completed);
  g_variant_dict_insert (&dict, "cancelled", "t", self->cancelled);
  g_variant_dict_insert (&dict, "rejected", "t", self->rejected);
  g_mutex_unlock (&self->mutex);
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}
