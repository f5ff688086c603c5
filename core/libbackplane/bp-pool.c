/* bp-pool.c: a generic asynchronous resource pool
 *
 * BpPool keeps between min and max resources (database connections, Bolt
 * sessions, …) that a #BpPoolFuncs vtable creates, validates, resets and
 * destroys. What it does, in the terms node-postgres and HikariCP users
 * expect:
 *
 *  - min resources are created up front and kept: lifetime, max-uses and
 *    errors may retire one, and the pool creates a replacement. A failing
 *    refill backs off (250 ms doubling to 30 s, with jitter) instead of
 *    spinning.
 *  - Acquire waiters are served strictly first in, first out. A waiter
 *    gives up after acquire-timeout-ms with %BP_ERROR_POOL_EXHAUSTED, or
 *    with %G_IO_ERROR_CANCELLED when its #GCancellable fires; either way it
 *    leaves the queue at once. At most max-waiters wait; one more gets
 *    %BP_ERROR_LIMIT_EXCEEDED.
 *  - When a create fails and no other pending create or validation can
 *    serve the oldest waiter, that waiter gets the create error (it does
 *    not hang until its timeout). Each failed create fails at most one
 *    waiter, so an unreachable server costs one attempt per waiter.
 *  - A create that outlives create-timeout-ms is cancelled; one that
 *    completes after its waiter left just goes idle (never leaks).
 *  - Idle resources are handed out most-recently-used first; the ones idle
 *    for idle-timeout-ms are destroyed, oldest first, down to min.
 *  - max-lifetime-ms (minus up to 2.5 % random jitter, as HikariCP does, so
 *    a batch created together does not expire together) retires a resource
 *    when idle, or on release when in use. max-uses retires it on the
 *    release that reaches the count. Both apply at or below min.
 *  - An idle resource is validated on checkout when it was idle for
 *    validate-after-idle-ms or more; a failed validation destroys it and the
 *    same waiter is served by another resource within its own timeout.
 *  - Release with healthy=%FALSE destroys instead of returning; so does a
 *    reset hook that returns %FALSE.
 *  - A resource held longer than leak-threshold-ms is reported once per
 *    checkout through #BpPool::leak-detected with the acquirer's label
 *    (library code only logs at debug level; the daemon decides).
 *  - Close fails all waiters with %BP_ERROR_UNAVAILABLE ("pool closed"),
 *    destroys idle resources, cancels pending creates and validations, and
 *    completes when every checked-out resource has come back (each is then
 *    destroyed).
 *
 * Timers: one #BpClock timeout source at most, armed for the nearest
 * deadline of all waiters, creates, validations, idle and lifetime expiry,
 * leak checks and the refill backoff. It is re-armed only when a nearer
 * deadline appears; a timer that fires early just re-arms. A closed pool
 * has none.
 *
 * Thread safety: none. A pool belongs to the thread-default main context
 * that was current when it was created; call it from there only. All
 * callbacks (the vtable, the signal, acquire and close completions) run in
 * that context. Checked-out items keep the pool alive.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bp-pool.h"
#include "bp-error.h"

#define WAIT_SAMPLES 1024
#define REFILL_BACKOFF_MIN_US (250 * G_TIME_SPAN_MILLISECOND)
#define REFILL_BACKOFF_MAX_US (30 * G_TIME_SPAN_SECOND)

typedef enum
{
  ITEM_IDLE,
  ITEM_IN_USE,
  ITEM_VALIDATING,
} ItemState;

struct _BpPoolItem
{
  BpPool    *pool;          /* (unowned); in use, the pool is held by a ref */
  gpointer   resource;      /* (owned) via funcs.destroy */
  GList      link;          /* in idle or in_use */
  ItemState  state;
  gint64     created_at;
  gint64     expires_at;    /* 0: no lifetime limit */
  gint64     idle_since;
  gint64     acquired_at;
  guint      uses;
  char      *acquirer;      /* (owned) (nullable) while in use */
  guint      fresh : 1;     /* created or validated and not handed out since */
  guint      leak_reported : 1;
};

typedef enum
{
  OP_CREATE,
  OP_VALIDATE,
} OpKind;

/* A create or a validation in flight. */
typedef struct
{
  BpPool       *pool;       /* (owned) */
  OpKind        kind;
  BpPoolItem   *item;       /* (nullable) for OP_VALIDATE */
  GCancellable *cancellable; /* (owned) */
  GList         link;       /* in ops */
  gint64        deadline;   /* 0: none */
  gboolean      timed_out;
} PoolOp;

/* The task data of a waiting acquire. */
typedef struct
{
  GTask   *task;            /* (unowned); the queue holds a ref while queued */
  GList    link;            /* in waiters */
  char    *acquirer;        /* (owned) (nullable) */
  gint64   started_at;
  gint64   deadline;        /* 0: waits until served or cancelled */
  GSource *cancel_source;   /* (owned) (nullable) */
  gboolean queued;
} Waiter;

/**
 * BpPool:
 *
 * A generic asynchronous pool of resources created by a #BpPoolFuncs
 * vtable: min/max sizing, FIFO acquire with timeout and cancellation, idle
 * and lifetime retirement, max uses, validation on checkout, leak
 * detection, draining close and `a{sv}` stats. Used by the postgres and
 * bolt plugins for their connections.
 *
 * ## Life cycle of a resource
 *
 * - **Sizing.** [property@Bp.Pool:min] resources are created up front (from
 *   [ctor@Bp.Pool.new]) and kept: when lifetime, max-uses or an error
 *   retires one, the pool creates a replacement. A failing refill backs off
 *   (250 ms doubling to 30 s, with jitter) instead of spinning. At most
 *   [property@Bp.Pool:max] resources exist at once, idle, in use, being
 *   validated or being created; a min above max counts as max.
 * - **Acquire.** [method@Bp.Pool.acquire_async] hands out an idle resource
 *   (the most recently used first), creates one if there is room, or waits
 *   for the next release. Waiters are served strictly first in, first out.
 *   A waiter gives up after [property@Bp.Pool:acquire-timeout-ms] with
 *   %BP_ERROR_POOL_EXHAUSTED, or with `G_IO_ERROR_CANCELLED` when its
 *   #GCancellable fires; either way it leaves the queue at once. At most
 *   [property@Bp.Pool:max-waiters] wait; one more gets
 *   %BP_ERROR_LIMIT_EXCEEDED.
 * - **Create.** When a create fails and no other pending create or
 *   validation can serve the oldest waiter, that waiter gets the create
 *   error (it does not hang until its timeout). Each failed create fails at
 *   most one waiter, so an unreachable server costs one attempt per waiter.
 *   A create that outlives [property@Bp.Pool:create-timeout-ms] is
 *   cancelled (its error becomes %BP_ERROR_TIMEOUT); one that completes
 *   after its waiter left just goes idle (it never leaks).
 * - **Validation.** An idle resource is validated on checkout (with the
 *   optional `validate_async` hook) when it was idle for
 *   [property@Bp.Pool:validate-after-idle-ms] or more; a failed or
 *   timed-out ([property@Bp.Pool:validation-timeout-ms]) validation
 *   destroys it and the same waiter is served by another resource within
 *   its own timeout.
 * - **Release.** [method@Bp.Pool.release] returns the resource to the idle
 *   list after the optional `reset` hook. With healthy=%FALSE it is
 *   destroyed instead; so is a resource the reset hook refuses.
 * - **Retirement.** Resources idle for [property@Bp.Pool:idle-timeout-ms]
 *   are destroyed, oldest first, down to min.
 *   [property@Bp.Pool:max-lifetime-ms] (minus up to 2.5 % random jitter,
 *   as HikariCP does, so a batch created together does not expire
 *   together) retires a resource when idle, or on release when in use.
 *   [property@Bp.Pool:max-uses] retires it on the release that reaches the
 *   count. Both apply at or below min.
 * - **Leaks.** A resource held longer than
 *   [property@Bp.Pool:leak-threshold-ms] is reported once per checkout
 *   through [signal@Bp.Pool::leak-detected] with the acquirer's label; the
 *   pool only reports it (library code logs at debug level; the daemon
 *   decides).
 * - **Close.** [method@Bp.Pool.close_async] fails all waiters with
 *   %BP_ERROR_UNAVAILABLE ("pool closed"), destroys idle resources, cancels
 *   pending creates and validations, and completes when every checked-out
 *   resource has come back (each is then destroyed). Later acquires fail
 *   with %BP_ERROR_UNAVAILABLE.
 *
 * [method@Bp.Pool.dup_stats] reports the gauges and counters.
 *
 * ## Threads and timers
 *
 * A pool is not thread-safe. It belongs to the thread-default main context
 * that was current when it was created; call it from there only. All
 * callbacks (the #BpPoolFuncs hooks, the signal, acquire and close
 * completions) run in that context. Checked-out items, waiters and pending
 * creates keep the pool alive. The pool arms one [class@Bp.Clock] timeout
 * source at most, for the nearest deadline of all waiters, creates,
 * validations, idle and lifetime expiry, leak checks and the refill
 * backoff; a closed pool has none.
 *
 * ## Example
 *
 * ```c
 * static void
 * conn_create_async (gpointer             user_data,
 *                    GCancellable        *cancellable,
 *                    GAsyncReadyCallback  callback,
 *                    gpointer             callback_data)
 * {
 *   MyFactory *factory = user_data;
 *
 *   my_conn_connect_async (factory->uri, cancellable,
 *                          callback, callback_data);
 * }
 *
 * static gpointer
 * conn_create_finish (gpointer       user_data,
 *                     GAsyncResult  *result,
 *                     GError       **error)
 * {
 *   return my_conn_connect_finish (result, error);
 * }
 *
 * static void
 * conn_destroy (gpointer user_data,
 *               gpointer resource)
 * {
 *   my_conn_close (resource);   // must not block
 * }
 *
 * static const BpPoolFuncs conn_funcs = {
 *   .create_async = conn_create_async,
 *   .create_finish = conn_create_finish,
 *   .destroy = conn_destroy,
 * };
 *
 * static void
 * acquired_cb (GObject      *source,
 *              GAsyncResult *result,
 *              gpointer      user_data)
 * {
 *   BpPool *pool = BP_POOL (source);
 *   g_autoptr(GError) error = NULL;
 *   BpPoolItem *item = bp_pool_acquire_finish (pool, result, &error);
 *   gboolean ok;
 *
 *   if (item == NULL)
 *     return fail (user_data, error);   // POOL_EXHAUSTED, UNAVAILABLE, ...
 *
 *   ok = my_conn_query (bp_pool_item_get_resource (item), user_data, &error);
 *   bp_pool_release (pool, item, ok);   // exactly once
 *   // ...
 * }
 *
 * pool = bp_pool_new (&conn_funcs, factory, my_factory_free,
 *                     "min", 1, "max", 8, "acquire-timeout-ms", 5000,
 *                     NULL);
 * bp_pool_acquire_async (pool, "Sql.Query :1.42", cancellable,
 *                        acquired_cb, request);
 * ```
 */
struct _BpPool
{
  GObject        parent_instance;

  BpPoolFuncs    funcs;
  gboolean       has_funcs;
  gpointer       user_data;
  GDestroyNotify user_data_free;
  BpClock       *clock;          /* (owned) */
  GMainContext  *context;        /* (owned) */

  /* configuration */
  guint          min;
  guint          max;
  guint          max_waiters;
  guint          acquire_timeout_ms;
  guint          create_timeout_ms;
  guint          validation_timeout_ms;
  guint          idle_timeout_ms;
  guint          max_lifetime_ms;
  guint          max_uses;
  guint          validate_after_idle_ms;
  guint          leak_threshold_ms;

  /* state */
  GQueue         idle;           /* (element-type BpPoolItem) head: most recently used */
  GQueue         in_use;         /* (element-type BpPoolItem) */
  GQueue         waiters;        /* (element-type Waiter) FIFO */
  GQueue         ops;            /* (element-type PoolOp) */
  guint          n_creating;
  guint          n_validating;
  GSource       *timer;          /* (owned) (nullable) */
  gint64         timer_deadline;
  gint64         refill_not_before;
  gint64         refill_backoff;
  GPtrArray     *close_tasks;    /* (element-type GTask) (owned) */
  gboolean       dispatching;
  gboolean       dispatch_again;
  gboolean       closed;

  /* stats */
  guint64        created;
  guint64        destroyed;
  guint64        acquired;
  guint64        acquire_timeouts;
  guint64        create_errors;
  guint64        validation_failures;
  guint64        leaks;
  gint64         wait_samples[WAIT_SAMPLES];
  guint          n_wait_samples;
  guint          wait_sample_pos;
};

G_DEFINE_FINAL_TYPE (BpPool, bp_pool, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_CLOCK,
  PROP_MIN,
  PROP_MAX,
  PROP_MAX_WAITERS,
  PROP_ACQUIRE_TIMEOUT_MS,
  PROP_CREATE_TIMEOUT_MS,
  PROP_VALIDATION_TIMEOUT_MS,
  PROP_IDLE_TIMEOUT_MS,
  PROP_MAX_LIFETIME_MS,
  PROP_MAX_USES,
  PROP_VALIDATE_AFTER_IDLE_MS,
  PROP_LEAK_THRESHOLD_MS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_LEAK_DETECTED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void bp_pool_dispatch (BpPool *self);
static void bp_pool_reschedule (BpPool *self);
static void bp_pool_maybe_finish_close (BpPool *self);

static inline gint64
ms_to_us (guint ms)
{
  return (gint64) ms * G_TIME_SPAN_MILLISECOND;
}

static inline gint64
now_us (BpPool *self)
{
  return bp_clock_get_time (self->clock);
}

/* Resources that exist: idle, handed out or being validated. */
static inline guint
n_live (BpPool *self)
{
  return self->idle.length + self->in_use.length + self->n_validating;
}

static inline guint
effective_min (BpPool *self)
{
  return MIN (self->min, self->max);
}

/* ---- items ------------------------------------------------------------ */

static void
bp_pool_item_destroy (BpPool     *self,
                      BpPoolItem *item)
{
  g_debug ("pool %p: destroying resource %p after %u uses", self, item->resource, item->uses);
  self->funcs.destroy (self->user_data, item->resource);
  self->destroyed++;
  g_free (item->acquirer);
  g_free (item);
}

static gboolean
bp_pool_item_expired (BpPool     *self,
                      BpPoolItem *item,
                      gint64      now)
{
  return item->expires_at != 0 && now >= item->expires_at;
}

static BpPoolItem *
bp_pool_item_new (BpPool   *self,
                  gpointer  resource)
{
  BpPoolItem *item = g_new0 (BpPoolItem, 1);
  gint64 now = now_us (self);

  item->pool = self;
  item->resource = resource;
  item->link.data = item;
  item->created_at = now;
  item->idle_since = now;
  item->fresh = TRUE;
  if (self->max_lifetime_ms > 0)
    {
      gint64 lifetime = ms_to_us (self->max_lifetime_ms);

      item->expires_at = now + lifetime - bp_clock_random_range (self->clock, 0, lifetime / 40);
    }
  return item;
}

static void
bp_pool_push_idle (BpPool     *self,
                   BpPoolItem *item)
{
  item->state = ITEM_IDLE;
  item->idle_since = now_us (self);
  g_queue_push_head_link (&self->idle, &item->link);
}

/* ---- waiters ---------------------------------------------------------- */

static void
waiter_free (Waiter *waiter)
{
  g_assert (!waiter->queued);
  if (waiter->cancel_source != NULL)
    {
      g_source_destroy (waiter->cancel_source);
      g_source_unref (waiter->cancel_source);
    }
  g_free (waiter->acquirer);
  g_free (waiter);
}

/* Takes @waiter off the queue. Returns the queue's reference on the task. */
static GTask *
bp_pool_unqueue_waiter (BpPool *self,
                        Waiter *waiter)
{
  g_assert (waiter->queued);
  g_queue_unlink (&self->waiters, &waiter->link);
  waiter->queued = FALSE;
  if (waiter->cancel_source != NULL)
    {
      g_source_destroy (waiter->cancel_source);
      g_clear_pointer (&waiter->cancel_source, g_source_unref);
    }
  return waiter->task;
}

static void
bp_pool_fail_waiter (BpPool *self,
                     Waiter *waiter,
                     GError *error)
{
  g_autoptr(GTask) task = bp_pool_unqueue_waiter (self, waiter);

  g_task_return_error (task, error);
}

static void
bp_pool_item_return_unclaimed (gpointer data)
{
  BpPoolItem *item = data;

  /* The acquire completed but nobody took the item (the caller was
   * cancelled meanwhile, or never called finish): give it back. */
  bp_pool_release (item->pool, item, TRUE);
}

static void
bp_pool_record_wait (BpPool *self,
                     gint64  wait_us)
{
  self->wait_samples[self->wait_sample_pos] = MAX (wait_us, 0);
  self->wait_sample_pos = (self->wait_sample_pos + 1) % WAIT_SAMPLES;
  self->n_wait_samples = MIN (self->n_wait_samples + 1, WAIT_SAMPLES);
}

static void
bp_pool_checkout (BpPool     *self,
                  BpPoolItem *item,
                  const char *acquirer,
                  gint64      started_at)
{
  gint64 now = now_us (self);

  item->state = ITEM_IN_USE;
  item->uses++;
  item->acquired_at = now;
  item->fresh = FALSE;
  item->leak_reported = FALSE;
  g_free (item->acquirer);
  item->acquirer = g_strdup (acquirer);
  g_queue_push_tail_link (&self->in_use, &item->link);
  /* A checked-out item keeps the pool alive until it is released. */
  g_object_ref (self);
  self->acquired++;
  bp_pool_record_wait (self, now - started_at);
}

static void
bp_pool_serve_waiter (BpPool     *self,
                      Waiter     *waiter,
                      BpPoolItem *item)
{
  g_autoptr(GTask) task = bp_pool_unqueue_waiter (self, waiter);

  bp_pool_checkout (self, item, waiter->acquirer, waiter->started_at);
  /* May call back synchronously; the dispatch guard absorbs re-entry. */
  g_task_return_pointer (task, item, bp_pool_item_return_unclaimed);
}

/* ---- creates and validations ------------------------------------------ */

static PoolOp *
bp_pool_op_new (BpPool *self,
                OpKind  kind,
                guint   timeout_ms)
{
  PoolOp *op = g_new0 (PoolOp, 1);

  op->pool = g_object_ref (self);
  op->kind = kind;
  op->cancellable = g_cancellable_new ();
  op->link.data = op;
  if (timeout_ms > 0)
    op->deadline = now_us (self) + ms_to_us (timeout_ms);
  g_queue_push_tail_link (&self->ops, &op->link);
  return op;
}

static void
bp_pool_op_free (PoolOp *op)
{
  g_clear_object (&op->cancellable);
  g_clear_object (&op->pool);
  g_free (op);
}

static void
bp_pool_refill_failed (BpPool *self)
{
  gint64 backoff;

  if (self->refill_backoff == 0)
    self->refill_backoff = REFILL_BACKOFF_MIN_US;
  else
    self->refill_backoff = MIN (self->refill_backoff * 2, REFILL_BACKOFF_MAX_US);
  backoff = bp_clock_random_range (self->clock, self->refill_backoff / 2, self->refill_backoff);
  self->refill_not_before = now_us (self) + backoff;
}

static void
bp_pool_create_cb (GObject      *source_object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  PoolOp *op = user_data;
  g_autoptr(BpPool) self = g_object_ref (op->pool);
  g_autoptr(GError) error = NULL;
  gpointer resource;

  resource = self->funcs.create_finish (self->user_data, result, &error);
  if (resource == NULL && error == NULL)
    g_set_error_literal (&error, BP_ERROR, BP_ERROR_FAILED, "Creating a pooled resource returned nothing");

  g_queue_unlink (&self->ops, &op->link);
  self->n_creating--;

  if (resource != NULL)
    {
      BpPoolItem *item = bp_pool_item_new (self, resource);

      self->created++;
      self->refill_backoff = 0;
      self->refill_not_before = 0;
      if (self->closed)
        bp_pool_item_destroy (self, item);
      else
        bp_pool_push_idle (self, item);
    }
  else
    {
      self->create_errors++;
      if (op->timed_out && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_clear_error (&error);
          g_set_error (&error, BP_ERROR, BP_ERROR_TIMEOUT,
                       "Creating a pooled resource timed out after %u ms",
                       self->create_timeout_ms);
        }
      g_debug ("pool %p: create failed: %s", self, error->message);

      if (!self->closed)
        {
          bp_pool_refill_failed (self);
          /* Fail the oldest waiter unless another pending create or
           * validation can still serve it. */
          if (self->waiters.length > self->n_creating + self->n_validating)
            bp_pool_fail_waiter (self, self->waiters.head->data, g_steal_pointer (&error));
        }
    }

  bp_pool_op_free (op);
  bp_pool_dispatch (self);
  bp_pool_maybe_finish_close (self);
}

static void
bp_pool_start_create (BpPool *self)
{
  PoolOp *op = bp_pool_op_new (self, OP_CREATE, self->create_timeout_ms);

  self->n_creating++;
  self->funcs.create_async (self->user_data, op->cancellable, bp_pool_create_cb, op);
}

static void
bp_pool_validate_cb (GObject      *source_object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  PoolOp *op = user_data;
  g_autoptr(BpPool) self = g_object_ref (op->pool);
  g_autoptr(GError) error = NULL;
  BpPoolItem *item = op->item;
  gboolean valid;

  valid = self->funcs.validate_finish (self->user_data, result, &error);

  g_queue_unlink (&self->ops, &op->link);
  self->n_validating--;

  if (self->closed)
    bp_pool_item_destroy (self, item);
  else if (valid && !bp_pool_item_expired (self, item, now_us (self)))
    {
      /* Goes to the head of the queue, fresh: the next waiter gets it
       * without another validation. */
      bp_pool_push_idle (self, item);
      item->fresh = TRUE;
    }
  else
    {
      self->validation_failures++;
      g_debug ("pool %p: validation failed: %s", self,
               error != NULL ? error->message : "expired");
      bp_pool_item_destroy (self, item);
    }

  bp_pool_op_free (op);
  bp_pool_dispatch (self);
  bp_pool_maybe_finish_close (self);
}

static void
bp_pool_start_validate (BpPool     *self,
                        BpPoolItem *item)
{
  PoolOp *op = bp_pool_op_new (self, OP_VALIDATE, self->validation_timeout_ms);

  op->item = item;
  item->state = ITEM_VALIDATING;
  self->n_validating++;
  self->funcs.validate_async (self->user_data, item->resource, op->cancellable,
                              bp_pool_validate_cb, op);
}

static gboolean
bp_pool_needs_validation (BpPool     *self,
                          BpPoolItem *item,
                          gint64      now)
{
  if (self->funcs.validate_async == NULL || item->fresh)
    return FALSE;
  return now - item->idle_since >= ms_to_us (self->validate_after_idle_ms);
}

/* Pops the most recently used idle item that has not expired. */
static BpPoolItem *
bp_pool_pop_idle (BpPool *self,
                  gint64  now)
{
  GList *link;

  while ((link = g_queue_pop_head_link (&self->idle)) != NULL)
    {
      BpPoolItem *item = link->data;

      if (!bp_pool_item_expired (self, item, now))
        return item;
      bp_pool_item_destroy (self, item);
    }
  return NULL;
}

/* ---- the dispatcher ---------------------------------------------------- */

/* Serves waiters from idle items, starts creates and validations, keeps
 * min, trims to max. Safe against re-entry from callbacks it triggers. */
static void
bp_pool_dispatch (BpPool *self)
{
  if (!self->has_funcs)
    return;
  if (self->dispatching)
    {
      self->dispatch_again = TRUE;
      return;
    }

  self->dispatching = TRUE;
  do
    {
      gint64 now = now_us (self);

      self->dispatch_again = FALSE;
      if (self->closed)
        break;

      /* max was lowered: drop the oldest idle items. */
      while (n_live (self) > self->max && self->idle.length > 0)
        bp_pool_item_destroy (self, g_queue_pop_tail_link (&self->idle)->data);

      while (!self->closed && self->waiters.length > self->n_creating + self->n_validating)
        {
          BpPoolItem *item = bp_pool_pop_idle (self, now);

          if (item != NULL)
            {
              if (bp_pool_needs_validation (self, item, now))
                bp_pool_start_validate (self, item);
              else
                bp_pool_serve_waiter (self, self->waiters.head->data, item);
            }
          else if (n_live (self) + self->n_creating < self->max)
            bp_pool_start_create (self);
          else
            break;
        }

      while (!self->closed &&
             n_live (self) + self->n_creating < effective_min (self) &&
             now >= self->refill_not_before)
        bp_pool_start_create (self);
    }
  while (self->dispatch_again);
  self->dispatching = FALSE;

  bp_pool_reschedule (self);
}

/* ---- the timer --------------------------------------------------------- */

static inline void
consider (gint64 *next,
          gint64  deadline)
{
  if (deadline > 0 && (*next == 0 || deadline < *next))
    *next = deadline;
}

static gint64
bp_pool_next_deadline (BpPool *self)
{
  gint64 next = 0;

  for (GList *l = self->waiters.head; l != NULL; l = l->next)
    consider (&next, ((Waiter *) l->data)->deadline);

  for (GList *l = self->ops.head; l != NULL; l = l->next)
    {
      PoolOp *op = l->data;

      if (!op->timed_out)
        consider (&next, op->deadline);
    }

  for (GList *l = self->idle.head; l != NULL; l = l->next)
    {
      BpPoolItem *item = l->data;

      consider (&next, item->expires_at);
      if (self->idle_timeout_ms > 0 && n_live (self) > effective_min (self))
        consider (&next, item->idle_since + ms_to_us (self->idle_timeout_ms));
    }

  if (self->leak_threshold_ms > 0)
    for (GList *l = self->in_use.head; l != NULL; l = l->next)
      {
        BpPoolItem *item = l->data;

        if (!item->leak_reported)
          consider (&next, item->acquired_at + ms_to_us (self->leak_threshold_ms));
      }

  if (n_live (self) + self->n_creating < effective_min (self) && self->refill_not_before > 0)
    consider (&next, self->refill_not_before);

  return next;
}

static void
bp_pool_clear_timer (BpPool *self)
{
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  self->timer_deadline = 0;
}

typedef struct
{
  char   *acquirer;
  gint64  held;
} LeakReport;

static gboolean
bp_pool_timer_cb (gpointer user_data)
{
  BpPool *self = user_data;
  g_autoptr(BpPool) hold G_GNUC_UNUSED = g_object_ref (self);
  g_autoptr(GArray) leaks = g_array_new (FALSE, FALSE, sizeof (LeakReport));
  g_autoptr(GPtrArray) to_cancel = g_ptr_array_new_with_free_func (g_object_unref);
  gint64 now = now_us (self);
  GList *l;

  g_clear_pointer (&self->timer, g_source_unref);
  self->timer_deadline = 0;

  /* Waiters out of time. */
  l = self->waiters.head;
  while (l != NULL)
    {
      Waiter *waiter = l->data;

      l = l->next;
      if (waiter->deadline > 0 && now >= waiter->deadline)
        {
          self->acquire_timeouts++;
          bp_pool_fail_waiter (self, waiter,
                               g_error_new (BP_ERROR, BP_ERROR_POOL_EXHAUSTED,
                                            "No pooled resource became free within %u ms "
                                            "(%u in use, max %u)",
                                            self->acquire_timeout_ms,
                                            self->in_use.length, self->max));
          /* A callback may have changed the queue; start over. */
          l = self->waiters.head;
        }
    }

  /* Creates and validations out of time: cancel them, their callbacks
   * clean up. Collected first, cancelling may call back. */
  for (l = self->ops.head; l != NULL; l = l->next)
    {
      PoolOp *op = l->data;

      if (!op->timed_out && op->deadline > 0 && now >= op->deadline)
        {
          op->timed_out = TRUE;
          g_ptr_array_add (to_cancel, g_object_ref (op->cancellable));
        }
    }
  for (guint i = 0; i < to_cancel->len; i++)
    g_cancellable_cancel (g_ptr_array_index (to_cancel, i));

  /* Idle reaping, oldest first: lifetime always, idle timeout down to min. */
  l = self->idle.tail;
  while (l != NULL)
    {
      BpPoolItem *item = l->data;
      GList *prev = l->prev;

      if (bp_pool_item_expired (self, item, now) ||
          (self->idle_timeout_ms > 0 &&
           n_live (self) > effective_min (self) &&
           now - item->idle_since >= ms_to_us (self->idle_timeout_ms)))
        {
          g_queue_unlink (&self->idle, l);
          bp_pool_item_destroy (self, item);
        }
      l = prev;
    }

  /* Leak checks, reported once per checkout. */
  if (self->leak_threshold_ms > 0)
    for (l = self->in_use.head; l != NULL; l = l->next)
      {
        BpPoolItem *item = l->data;

        if (!item->leak_reported && now - item->acquired_at >= ms_to_us (self->leak_threshold_ms))
          {
            LeakReport report = { g_strdup (item->acquirer), now - item->acquired_at };

            item->leak_reported = TRUE;
            self->leaks++;
            g_array_append_val (leaks, report);
          }
      }
  for (guint i = 0; i < leaks->len; i++)
    {
      LeakReport *report = &g_array_index (leaks, LeakReport, i);

      g_debug ("pool %p: resource held by “%s” for %" G_GINT64_FORMAT " ms, possible leak",
               self, report->acquirer != NULL ? report->acquirer : "(unknown)",
               report->held / G_TIME_SPAN_MILLISECOND);
      g_signal_emit (self, signals[SIGNAL_LEAK_DETECTED], 0, report->acquirer, report->held);
      g_free (report->acquirer);
    }

  bp_pool_dispatch (self);
  return G_SOURCE_REMOVE;
}

static void
bp_pool_reschedule (BpPool *self)
{
  gint64 next;

  if (self->closed)
    {
      bp_pool_clear_timer (self);
      return;
    }

  next = bp_pool_next_deadline (self);
  if (next == 0)
    {
      bp_pool_clear_timer (self);
      return;
    }
  /* An armed timer that fires no later is good enough: when it fires it
   * re-arms for whatever is due then. */
  if (self->timer != NULL && self->timer_deadline <= next)
    return;

  bp_pool_clear_timer (self);
  self->timer = bp_clock_timeout_source_new (self->clock, next - now_us (self));
  g_source_set_static_name (self->timer, "[backplane] BpPool timer");
  g_source_set_callback (self->timer, bp_pool_timer_cb, self, NULL);
  g_source_attach (self->timer, self->context);
  self->timer_deadline = next;
}

/* ---- GObject ----------------------------------------------------------- */

static void
bp_pool_dispose (GObject *object)
{
  BpPool *self = BP_POOL (object);
  GList *link;

  /* Waiters, ops and checked-out items all hold a reference: none left. */
  bp_pool_clear_timer (self);
  if (self->has_funcs)
    while ((link = g_queue_pop_head_link (&self->idle)) != NULL)
      bp_pool_item_destroy (self, link->data);

  G_OBJECT_CLASS (bp_pool_parent_class)->dispose (object);
}

static void
bp_pool_finalize (GObject *object)
{
  BpPool *self = BP_POOL (object);

  g_assert (self->in_use.length == 0);
  g_assert (self->waiters.length == 0);
  g_assert (self->ops.length == 0);

  if (self->user_data_free != NULL)
    self->user_data_free (self->user_data);
  g_clear_pointer (&self->close_tasks, g_ptr_array_unref);
  g_clear_object (&self->clock);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (bp_pool_parent_class)->finalize (object);
}

static void
bp_pool_constructed (GObject *object)
{
  BpPool *self = BP_POOL (object);

  G_OBJECT_CLASS (bp_pool_parent_class)->constructed (object);

  if (self->clock == NULL)
    self->clock = g_object_ref (bp_clock_get_default ());
}

static void
bp_pool_get_property (GObject    *object,
                      guint       prop_id,
                      GValue     *value,
                      GParamSpec *pspec)
{
  BpPool *self = BP_POOL (object);

  switch (prop_id)
    {
    case PROP_CLOCK:
      g_value_set_object (value, self->clock);
      break;
    case PROP_MIN:
      g_value_set_uint (value, self->min);
      break;
    case PROP_MAX:
      g_value_set_uint (value, self->max);
      break;
    case PROP_MAX_WAITERS:
      g_value_set_uint (value, self->max_waiters);
      break;
    case PROP_ACQUIRE_TIMEOUT_MS:
      g_value_set_uint (value, self->acquire_timeout_ms);
      break;
    case PROP_CREATE_TIMEOUT_MS:
      g_value_set_uint (value, self->create_timeout_ms);
      break;
    case PROP_VALIDATION_TIMEOUT_MS:
      g_value_set_uint (value, self->validation_timeout_ms);
      break;
    case PROP_IDLE_TIMEOUT_MS:
      g_value_set_uint (value, self->idle_timeout_ms);
      break;
    case PROP_MAX_LIFETIME_MS:
      g_value_set_uint (value, self->max_lifetime_ms);
      break;
    case PROP_MAX_USES:
      g_value_set_uint (value, self->max_uses);
      break;
    case PROP_VALIDATE_AFTER_IDLE_MS:
      g_value_set_uint (value, self->validate_after_idle_ms);
      break;
    case PROP_LEAK_THRESHOLD_MS:
      g_value_set_uint (value, self->leak_threshold_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_pool_set_property (GObject      *object,
                      guint         prop_id,
                      const GValue *value,
                      GParamSpec   *pspec)
{
  BpPool *self = BP_POOL (object);

  switch (prop_id)
    {
    case PROP_CLOCK:
      g_clear_object (&self->clock);
      self->clock = g_value_dup_object (value);
      return;
    case PROP_MIN:
      self->min = g_value_get_uint (value);
      break;
    case PROP_MAX:
      self->max = g_value_get_uint (value);
      break;
    case PROP_MAX_WAITERS:
      self->max_waiters = g_value_get_uint (value);
      break;
    case PROP_ACQUIRE_TIMEOUT_MS:
      /* Applies to waiters that arrive from now on. */
      self->acquire_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_CREATE_TIMEOUT_MS:
      self->create_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_VALIDATION_TIMEOUT_MS:
      self->validation_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_IDLE_TIMEOUT_MS:
      self->idle_timeout_ms = g_value_get_uint (value);
      break;
    case PROP_MAX_LIFETIME_MS:
      /* Applies to resources created from now on. */
      self->max_lifetime_ms = g_value_get_uint (value);
      break;
    case PROP_MAX_USES:
      self->max_uses = g_value_get_uint (value);
      break;
    case PROP_VALIDATE_AFTER_IDLE_MS:
      self->validate_after_idle_ms = g_value_get_uint (value);
      break;
    case PROP_LEAK_THRESHOLD_MS:
      self->leak_threshold_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }

  /* A changed limit may let waiters through, need a refill or a trim, or
   * move a deadline. */
  if (self->has_funcs)
    {
      g_autoptr(BpPool) hold G_GNUC_UNUSED = g_object_ref (self);

      bp_pool_dispatch (self);
    }
}

static void
bp_pool_class_init (BpPoolClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS;

  object_class->constructed = bp_pool_constructed;
  object_class->dispose = bp_pool_dispose;
  object_class->finalize = bp_pool_finalize;
  object_class->get_property = bp_pool_get_property;
  object_class->set_property = bp_pool_set_property;

  /**
   * BpPool:clock:
   *
   * The time source of every timeout and of the lifetime jitter;
   * [func@Bp.Clock.get_default] if unset. Construct-only.
   */
  properties[PROP_CLOCK] =
    g_param_spec_object ("clock", NULL, NULL, BP_TYPE_CLOCK,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * BpPool:min:
   *
   * Resources created up front and kept through idle reaping (0 to 10000,
   * default 0; a min above #BpPool:max counts as max). Raising it starts the
   * missing creates.
   */
  properties[PROP_MIN] =
    g_param_spec_uint ("min", NULL, NULL, 0, 10000, 0, rw);

  /**
   * BpPool:max:
   *
   * The most resources that exist at once, idle, in use, being validated
   * or being created (1 to 10000, default 10). Lowering it destroys idle
   * resources over the limit at once, and resources in use as they are
   * released.
   */
  properties[PROP_MAX] =
    g_param_spec_uint ("max", NULL, NULL, 1, 10000, 10, rw);

  /**
   * BpPool:max-waiters:
   *
   * The most acquires that may wait at once (default 1024); one more fails
   * with %BP_ERROR_LIMIT_EXCEEDED. 0 means no limit.
   */
  properties[PROP_MAX_WAITERS] =
    g_param_spec_uint ("max-waiters", NULL, NULL, 0, 1000000, 1024, rw);

  /**
   * BpPool:acquire-timeout-ms:
   *
   * How long an acquire waits before %BP_ERROR_POOL_EXHAUSTED, in
   * milliseconds (default 30 s); 0 waits until served or cancelled. A
   * change applies to acquires made afterwards.
   */
  properties[PROP_ACQUIRE_TIMEOUT_MS] =
    g_param_spec_uint ("acquire-timeout-ms", NULL, NULL, 0, G_MAXUINT, 30000, rw);

  /**
   * BpPool:create-timeout-ms:
   *
   * A create still running after this long, in milliseconds (default
   * 30 s), is cancelled and counts as failed with %BP_ERROR_TIMEOUT;
   * 0 never.
   */
  properties[PROP_CREATE_TIMEOUT_MS] =
    g_param_spec_uint ("create-timeout-ms", NULL, NULL, 0, G_MAXUINT, 30000, rw);

  /**
   * BpPool:validation-timeout-ms:
   *
   * A validation still running after this long, in milliseconds (default
   * 5 s), is cancelled (and the resource destroyed); 0 never.
   */
  properties[PROP_VALIDATION_TIMEOUT_MS] =
    g_param_spec_uint ("validation-timeout-ms", NULL, NULL, 0, G_MAXUINT, 5000, rw);

  /**
   * BpPool:idle-timeout-ms:
   *
   * Resources idle this long, in milliseconds (default 10 min), are
   * destroyed while more than min exist; 0 keeps them.
   */
  properties[PROP_IDLE_TIMEOUT_MS] =
    g_param_spec_uint ("idle-timeout-ms", NULL, NULL, 0, G_MAXUINT, 600000, rw);

  /**
   * BpPool:max-lifetime-ms:
   *
   * Resources older than this, in milliseconds (default 30 min; minus up to
   * 2.5 % jitter), are retired when idle or on release; 0 never. Applies to
   * resources created afterwards.
   */
  properties[PROP_MAX_LIFETIME_MS] =
    g_param_spec_uint ("max-lifetime-ms", NULL, NULL, 0, G_MAXUINT, 1800000, rw);

  /**
   * BpPool:max-uses:
   *
   * A resource is destroyed on the release that completes its
   * max-uses-th checkout; 0 means unlimited.
   */
  properties[PROP_MAX_USES] =
    g_param_spec_uint ("max-uses", NULL, NULL, 0, G_MAXUINT, 0, rw);

  /**
   * BpPool:validate-after-idle-ms:
   *
   * An idle resource is validated on checkout when it was idle at least
   * this long, in milliseconds (default 500 ms; 0: on every checkout). A
   * resource just created or just validated is not validated again. Ignored
   * without a validate function.
   */
  properties[PROP_VALIDATE_AFTER_IDLE_MS] =
    g_param_spec_uint ("validate-after-idle-ms", NULL, NULL, 0, G_MAXUINT, 500, rw);

  /**
   * BpPool:leak-threshold-ms:
   *
   * A resource checked out for longer, in milliseconds, is reported once
   * through #BpPool::leak-detected; 0 (the default) disables the check.
   */
  properties[PROP_LEAK_THRESHOLD_MS] =
    g_param_spec_uint ("leak-threshold-ms", NULL, NULL, 0, G_MAXUINT, 0, rw);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * BpPool::leak-detected:
   * @self: the #BpPool
   * @acquirer: (nullable): the label given to bp_pool_acquire_async()
   * @held_us: how long the resource has been checked out, in microseconds
   *
   * A resource has been checked out for leak-threshold-ms or longer. Emitted
   * once per checkout, in the pool's context, from the pool's timer. The
   * pool does nothing else about it (it is counted as `leaks` in
   * [method@Bp.Pool.dup_stats]): the holder may still release it.
   */
  signals[SIGNAL_LEAK_DETECTED] =
    g_signal_new ("leak-detected",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_INT64);
}

static void
bp_pool_init (BpPool *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->close_tasks = g_ptr_array_new_with_free_func (g_object_unref);
}

/* ---- public API -------------------------------------------------------- */

/**
 * bp_pool_new:
 * @funcs: the resource factory; copied
 * @user_data: (nullable): passed to every function of @funcs
 * @user_data_free: (nullable): frees @user_data when the pool is finalized
 * @first_property_name: (nullable): name of the first property to set
 * @...: its value, then more name/value pairs, then %NULL
 *
 * Creates a pool bound to the calling thread's thread-default main context,
 * e.g. `bp_pool_new (&funcs, factory, g_object_unref, "min", 2, "max", 8,
 * "clock", clock, NULL)`. It starts creating min resources right away.
 * `create_async`, `create_finish` and `destroy` are required, and
 * `validate_async` and `validate_finish` come as a pair: anything else is a
 * programming error (a critical warning, and %NULL).
 *
 * Dropping the last reference without closing the pool destroys its idle
 * resources; checked-out items, waiters and pending creates hold
 * references of their own, so that happens only once they are done.
 *
 * Returns: (transfer full): a new #BpPool
 */
BpPool *
bp_pool_new (const BpPoolFuncs *funcs,
             gpointer           user_data,
             GDestroyNotify     user_data_free,
             const char        *first_property_name,
             ...)
{
  BpPool *self;
  va_list args;

  g_return_val_if_fail (funcs != NULL, NULL);
  g_return_val_if_fail (funcs->create_async != NULL && funcs->create_finish != NULL, NULL);
  g_return_val_if_fail (funcs->destroy != NULL, NULL);
  g_return_val_if_fail ((funcs->validate_async == NULL) == (funcs->validate_finish == NULL), NULL);

  va_start (args, first_property_name);
  self = (BpPool *) g_object_new_valist (BP_TYPE_POOL, first_property_name, args);
  va_end (args);

  self->funcs = *funcs;
  self->user_data = user_data;
  self->user_data_free = user_data_free;
  self->has_funcs = TRUE;

  bp_pool_dispatch (self);
  return self;
}

/**
 * bp_pool_get_clock:
 * @self: a #BpPool
 *
 * Gets the clock every timeout of the pool is measured on
 * ([property@Bp.Pool:clock]).
 *
 * Returns: (transfer none): the pool's clock, owned by @self
 */
BpClock *
bp_pool_get_clock (BpPool *self)
{
  g_return_val_if_fail (BP_IS_POOL (self), NULL);
  return self->clock;
}

/**
 * bp_pool_is_closed:
 * @self: a #BpPool
 *
 * Tells whether the pool is closed: acquires then fail with
 * %BP_ERROR_UNAVAILABLE. It is %TRUE as soon as
 * [method@Bp.Pool.close_async] was called, before the drain completes.
 *
 * Returns: whether [method@Bp.Pool.close_async] was called
 */
gboolean
bp_pool_is_closed (BpPool *self)
{
  g_return_val_if_fail (BP_IS_POOL (self), TRUE);
  return self->closed;
}

static gboolean
bp_pool_waiter_cancelled_cb (GCancellable *cancellable,
                             gpointer      user_data)
{
  GTask *task = user_data;
  BpPool *self = g_task_get_source_object (task);
  Waiter *waiter = g_task_get_task_data (task);
  g_autoptr(BpPool) hold G_GNUC_UNUSED = g_object_ref (self);

  if (waiter->queued)
    {
      g_autoptr(GTask) queued_ref = bp_pool_unqueue_waiter (self, waiter);

      g_task_return_error_if_cancelled (queued_ref);
      bp_pool_reschedule (self);
    }
  return G_SOURCE_REMOVE;
}

/**
 * bp_pool_acquire_async:
 * @self: a #BpPool
 * @acquirer: (nullable): who asks, for leak reports (e.g. "Sql.Query :1.42")
 * @cancellable: (nullable): cancels the wait; the waiter leaves the queue
 * @callback: (scope async): called in the pool's context
 * @user_data: data for @callback
 *
 * Checks out a resource: an idle one (validated first when it was idle
 * long enough), a newly created one, or the next one released, in the
 * order the acquires arrived. Fails with %BP_ERROR_POOL_EXHAUSTED after
 * acquire-timeout-ms, %BP_ERROR_LIMIT_EXCEEDED when max-waiters already
 * wait, %BP_ERROR_UNAVAILABLE once the pool is closed, with the create
 * error (%BP_ERROR_TIMEOUT for a create that timed out) when creating a
 * resource for it failed, and `G_IO_ERROR_CANCELLED`.
 * @callback never runs synchronously inside this call.
 *
 * Call it from the pool's context. Finish with
 * [method@Bp.Pool.acquire_finish], and give the item back with
 * [method@Bp.Pool.release].
 */
void
bp_pool_acquire_async (BpPool              *self,
                       const char          *acquirer,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(BpPool) hold = NULL;
  Waiter *waiter;

  g_return_if_fail (BP_IS_POOL (self));
  g_return_if_fail (self->has_funcs);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_pool_acquire_async);
  g_task_set_name (task, "[backplane] bp_pool_acquire_async");

  /* The task was created in this call, so every return below completes
   * on the next iteration of the pool's context. */
  if (g_task_return_error_if_cancelled (task))
    return;
  if (self->closed)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, "The pool is closed");
      return;
    }
  if (self->max_waiters > 0 && self->waiters.length >= self->max_waiters)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                               "Too many acquires waiting for the pool (max-waiters %u)",
                               self->max_waiters);
      return;
    }

  hold = g_object_ref (self);
  waiter = g_new0 (Waiter, 1);
  waiter->task = task;
  waiter->link.data = waiter;
  waiter->acquirer = g_strdup (acquirer);
  waiter->started_at = now_us (self);
  if (self->acquire_timeout_ms > 0)
    waiter->deadline = waiter->started_at + ms_to_us (self->acquire_timeout_ms);
  g_task_set_task_data (task, waiter, (GDestroyNotify) waiter_free);

  waiter->queued = TRUE;
  g_queue_push_tail_link (&self->waiters, &waiter->link);
  g_object_ref (task);       /* the queue's reference */

  bp_pool_dispatch (self);

  /* Still waiting: watch the cancellable from the pool's context, whatever
   * thread cancels it. */
  if (waiter->queued && cancellable != NULL)
    {
      waiter->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_static_name (waiter->cancel_source, "[backplane] BpPool acquire cancelled");
      g_source_set_callback (waiter->cancel_source, (GSourceFunc) bp_pool_waiter_cancelled_cb,
                             g_object_ref (task), g_object_unref);
      g_source_attach (waiter->cancel_source, self->context);
    }
}

/**
 * bp_pool_acquire_finish: (skip)
 * @self: a #BpPool
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.Pool.acquire_async]. Errors are in the
 * `BP_ERROR` domain (see [method@Bp.Pool.acquire_async]), the domain of
 * the create error, or `G_IO_ERROR_CANCELLED`. If the acquire's
 * cancellable was cancelled after a resource was handed out, this fails
 * with `G_IO_ERROR_CANCELLED` and the item goes back to the pool by itself;
 * so does an item whose acquire is never finished.
 *
 * Not introspectable: a #BpPoolItem has no type for language bindings.
 *
 * Returns: (transfer full): the checked-out item, to give back exactly once
 *   with [method@Bp.Pool.release]; %NULL with @error set
 */
BpPoolItem *
bp_pool_acquire_finish (BpPool        *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (BP_IS_POOL (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_pool_acquire_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * bp_pool_try_acquire: (skip)
 * @self: a #BpPool
 * @acquirer: (nullable): who asks, for leak reports
 *
 * The synchronous fast path: checks out the most recently used idle
 * resource if it is ready right now (nobody is waiting, the pool is open,
 * and it has not expired and needs no validation). Never creates,
 * validates or waits; on %NULL, fall back to
 * [method@Bp.Pool.acquire_async].
 *
 * Not introspectable: a #BpPoolItem has no type for language bindings.
 *
 * Returns: (transfer full) (nullable): a checked-out item, or %NULL
 */
BpPoolItem *
bp_pool_try_acquire (BpPool     *self,
                     const char *acquirer)
{
  BpPoolItem *item;
  gint64 now;

  g_return_val_if_fail (BP_IS_POOL (self), NULL);
  g_return_val_if_fail (self->has_funcs, NULL);

  if (self->closed || self->waiters.length > 0 || self->idle.length == 0)
    return NULL;

  now = now_us (self);
  item = self->idle.head->data;
  if (bp_pool_item_expired (self, item, now) || bp_pool_needs_validation (self, item, now))
    return NULL;

  g_queue_unlink (&self->idle, &item->link);
  bp_pool_checkout (self, item, acquirer, now);
  return item;
}

/**
 * bp_pool_release:
 * @self: a #BpPool
 * @item: (transfer full): an item checked out from @self
 * @healthy: %FALSE if the resource failed and must not be reused
 *
 * Gives a checked-out item back; @item is invalid afterwards. The resource
 * is destroyed instead of returned when @healthy is %FALSE, when it reached
 * max-uses or its lifetime, when the pool is over #BpPool:max (it was
 * lowered), when the reset hook refuses it, or when the pool is closed.
 * Either way the next waiter is served (from this resource or a new one);
 * its callback may run before this function returns. Call it from the
 * pool's context. Releasing an item twice, or to another pool, is a
 * programming error.
 *
 * This drops the reference the item held on @self, which may finalize the
 * pool.
 */
void
bp_pool_release (BpPool     *self,
                 BpPoolItem *item,
                 gboolean    healthy)
{
  gint64 now;
  gboolean keep;

  g_return_if_fail (BP_IS_POOL (self));
  g_return_if_fail (item != NULL);
  g_return_if_fail (item->pool == self);
  g_return_if_fail (item->state == ITEM_IN_USE);

  now = now_us (self);
  g_queue_unlink (&self->in_use, &item->link);
  g_clear_pointer (&item->acquirer, g_free);

  keep = healthy &&
         !self->closed &&
         (self->max_uses == 0 || item->uses < self->max_uses) &&
         !bp_pool_item_expired (self, item, now) &&
         n_live (self) < self->max;
  if (keep && self->funcs.reset != NULL)
    keep = self->funcs.reset (self->user_data, item->resource);

  if (keep)
    bp_pool_push_idle (self, item);
  else
    bp_pool_item_destroy (self, item);

  bp_pool_dispatch (self);
  bp_pool_maybe_finish_close (self);

  /* The checkout's reference; may finalize the pool. */
  g_object_unref (self);
}

static void
bp_pool_maybe_finish_close (BpPool *self)
{
  g_autoptr(GPtrArray) tasks = NULL;

  if (!self->closed || self->close_tasks->len == 0 ||
      self->in_use.length > 0 || self->n_creating > 0 || self->n_validating > 0)
    return;

  tasks = g_steal_pointer (&self->close_tasks);
  self->close_tasks = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < tasks->len; i++)
    {
      GTask *task = g_ptr_array_index (tasks, i);
      GSource *cancel_source = g_task_get_task_data (task);

      if (cancel_source != NULL)
        g_source_destroy (cancel_source);
      g_task_return_boolean (task, TRUE);
    }
}

static gboolean
bp_pool_close_cancelled_cb (GCancellable *cancellable,
                            gpointer      user_data)
{
  GTask *task = user_data;
  BpPool *self = g_task_get_source_object (task);

  /* Only stops waiting; the pool stays closed and keeps draining. */
  if (g_ptr_array_find (self->close_tasks, task, NULL))
    {
      g_autoptr(GTask) ref = g_object_ref (task);

      g_ptr_array_remove (self->close_tasks, task);
      g_task_return_error_if_cancelled (ref);
    }
  return G_SOURCE_REMOVE;
}

/**
 * bp_pool_close_async:
 * @self: a #BpPool
 * @cancellable: (nullable): stops waiting for the drain (the pool stays
 *   closed)
 * @callback: (scope async): called in the pool's context
 * @user_data: data for @callback
 *
 * Closes the pool: waiters fail with %BP_ERROR_UNAVAILABLE, idle resources
 * are destroyed, pending creates and validations are cancelled, and later
 * acquires fail. Completes once every checked-out item was released (and
 * destroyed) and every cancelled create and validation has called back, or
 * on the next iteration if nothing is out. May be called more than once;
 * every call completes.
 *
 * As with g_output_stream_close_async(), a cancelled @cancellable never
 * keeps the pool open: it closes, and the call fails with
 * `G_IO_ERROR_CANCELLED` instead of waiting for the drain.
 */
void
bp_pool_close_async (BpPool              *self,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(BpPool) hold = NULL;

  g_return_if_fail (BP_IS_POOL (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_pool_close_async);
  g_task_set_name (task, "[backplane] bp_pool_close_async");
  hold = g_object_ref (self);

  if (!self->closed)
    {
      g_autoptr(GPtrArray) to_cancel = g_ptr_array_new_with_free_func (g_object_unref);
      GList *link;

      self->closed = TRUE;
      bp_pool_clear_timer (self);

      while (self->waiters.length > 0)
        bp_pool_fail_waiter (self, self->waiters.head->data,
                             g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, "The pool is closed"));

      while ((link = g_queue_pop_head_link (&self->idle)) != NULL)
        bp_pool_item_destroy (self, link->data);

      for (GList *l = self->ops.head; l != NULL; l = l->next)
        g_ptr_array_add (to_cancel, g_object_ref (((PoolOp *) l->data)->cancellable));
      for (guint i = 0; i < to_cancel->len; i++)
        g_cancellable_cancel (g_ptr_array_index (to_cancel, i));
    }

  /* As with g_output_stream_close_async(): cancelling a close still
   * closes; it only stops the wait for the drain. */
  if (g_task_return_error_if_cancelled (task))
    return;

  if (cancellable != NULL)
    {
      g_autoptr(GSource) source = g_cancellable_source_new (cancellable);

      g_source_set_static_name (source, "[backplane] BpPool close cancelled");
      g_source_set_callback (source, (GSourceFunc) bp_pool_close_cancelled_cb, g_object_ref (task), g_object_unref);
      g_source_attach (source, self->context);
      g_task_set_task_data (task, g_source_ref (source), (GDestroyNotify) g_source_unref);
    }

  g_ptr_array_add (self->close_tasks, g_steal_pointer (&task));
  bp_pool_maybe_finish_close (self);
}

/**
 * bp_pool_close_finish:
 * @self: a #BpPool
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.Pool.close_async]. The only error is
 * `G_IO_ERROR_CANCELLED`, when the close's cancellable fired: the pool
 * then stays closed and keeps draining.
 *
 * Returns: %TRUE once the pool is drained; %FALSE with @error set if the
 *   wait was cancelled
 */
gboolean
bp_pool_close_finish (BpPool        *self,
                      GAsyncResult  *result,
                      GError       **error)
{
  g_return_val_if_fail (BP_IS_POOL (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_pool_close_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static int
compare_gint64 (gconstpointer a,
                gconstpointer b)
{
  gint64 x = *(const gint64 *) a;
  gint64 y = *(const gint64 *) b;

  return x < y ? -1 : x > y ? 1 : 0;
}

static gint64
percentile (const gint64 *sorted,
            guint         n,
            guint         pct)
{
  guint rank;

  if (n == 0)
    return 0;
  /* nearest rank */
  rank = (pct * n + 99) / 100;
  return sorted[CLAMP (rank, 1, n) - 1];
}

/**
 * bp_pool_dup_stats:
 * @self: a #BpPool
 *
 * The pool's gauges and counters as `a{sv}`: `size` u (resources that
 * exist), `idle` u, `in-use` u, `waiting` u, `pending-creates` u, `min` u,
 * `max` u, `created` t, `destroyed` t, `acquired` t, `acquire-timeouts` t,
 * `create-errors` t, `validation-failures` t, `leaks` t, and the acquire
 * wait percentiles over the last 1024 checkouts, `acquire-wait-p50-us` x
 * and `acquire-wait-p99-us` x; `closed` b. Counters are since creation.
 *
 * Returns: (transfer full): a new non-floating `a{sv}` #GVariant
 */
GVariant *
bp_pool_dup_stats (BpPool *self)
{
  gint64 sorted[WAIT_SAMPLES];
  GVariantDict dict;
  guint n;

  g_return_val_if_fail (BP_IS_POOL (self), NULL);

  n = self->n_wait_samples;
  memcpy (sorted, self->wait_samples, n * sizeof (gint64));
  qsort (sorted, n, sizeof (gint64), compare_gint64);

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "size", "u", n_live (self));
  g_variant_dict_insert (&dict, "idle", "u", self->idle.length);
  g_variant_dict_insert (&dict, "in-use", "u", self->in_use.length);
  g_variant_dict_insert (&dict, "waiting", "u", self->waiters.length);
  g_variant_dict_insert (&dict, "pending-creates", "u", self->n_creating);
  g_variant_dict_insert (&dict, "min", "u", self->min);
  g_variant_dict_insert (&dict, "max", "u", self->max);
  g_variant_dict_insert (&dict, "created", "t", self->created);
  g_variant_dict_insert (&dict, "destroyed", "t", self->destroyed);
  g_variant_dict_insert (&dict, "acquired", "t", self->acquired);
  g_variant_dict_insert (&dict, "acquire-timeouts", "t", self->acquire_timeouts);
  g_variant_dict_insert (&dict, "create-errors", "t", self->create_errors);
  g_variant_dict_insert (&dict, "validation-failures", "t", self->validation_failures);
  g_variant_dict_insert (&dict, "leaks", "t", self->leaks);
  g_variant_dict_insert (&dict, "acquire-wait-p50-us", "x", percentile (sorted, n, 50));
  g_variant_dict_insert (&dict, "acquire-wait-p99-us", "x", percentile (sorted, n, 99));
  g_variant_dict_insert (&dict, "closed", "b", self->closed);
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

/**
 * bp_pool_item_get_resource:
 * @item: a checked-out #BpPoolItem
 *
 * Gets the resource `create_finish` returned. Use it only until the item
 * is released, and do not destroy it yourself: release the item with
 * healthy=%FALSE instead.
 *
 * Returns: (transfer none): the resource, owned by the pool
 */
gpointer
bp_pool_item_get_resource (BpPoolItem *item)
{
  g_return_val_if_fail (item != NULL, NULL);
  return item->resource;
}

/**
 * bp_pool_item_get_uses:
 * @item: a checked-out #BpPoolItem
 *
 * Gets how often the resource was handed out, for example to prepare
 * statements only on first use. [property@Bp.Pool:max-uses] compares
 * against it.
 *
 * Returns: how many times the resource was checked out, this time
 *   included (1 on its first use)
 */
guint
bp_pool_item_get_uses (BpPoolItem *item)
{
  g_return_val_if_fail (item != NULL, 0);
  return item->uses;
}

/**
 * bp_pool_item_get_acquirer:
 * @item: a checked-out #BpPoolItem
 *
 * Gets the label given to [method@Bp.Pool.acquire_async] (or
 * [method@Bp.Pool.try_acquire]) for this checkout, the one
 * [signal@Bp.Pool::leak-detected] reports.
 *
 * Returns: (nullable) (transfer none): the label given when it was acquired,
 *   owned by @item
 */
const char *
bp_pool_item_get_acquirer (BpPoolItem *item)
{
  g_return_val_if_fail (item != NULL, NULL);
  return item->acquirer;
}
