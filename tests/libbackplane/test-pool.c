/* test-pool.c: BpPool scenarios on a manual clock
 *
 * The scenarios follow what pg-pool and HikariCP users test: acquire
 * timeout, FIFO waiters, lifetime, max uses, validation on checkout, leak
 * report, min pre-created, idle reaping down to min, destroy-on-error,
 * close draining, cancellation, create failures and create timeouts.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <backplane.h>

#define MS (G_TIME_SPAN_MILLISECOND)

/* ---- a fake resource factory ------------------------------------------ */

typedef struct
{
  guint id;
} Res;

typedef struct
{
  guint      next_id;
  guint      n_create_calls;
  guint      n_destroyed;
  guint      n_validations;
  guint      n_resets;
  guint      fail_creates;      /* the next N creates fail */
  gboolean   hold_creates;      /* creates wait for factory_complete_create() */
  gboolean   validate_ok;
  gboolean   reset_ok;
  GQueue     pending;           /* (element-type GTask) held creates */
  GHashTable *alive;            /* Res* set */
} Factory;

static void
iterate (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static Factory *
factory_new (void)
{
  Factory *f = g_new0 (Factory, 1);

  f->validate_ok = TRUE;
  f->reset_ok = TRUE;
  f->alive = g_hash_table_new (NULL, NULL);
  return f;
}

static void
factory_free (Factory *f)
{
  g_assert_cmpuint (f->pending.length, ==, 0);
  g_hash_table_unref (f->alive);
  g_free (f);
}

/* A create held until the test completes it, or the pool cancels it. */
typedef struct
{
  Factory *f;
  GTask   *task;      /* (owned) */
  GSource *source;    /* (owned) watches the cancellable */
} Held;

static void
held_free (Held *held)
{
  g_source_destroy (held->source);
  g_source_unref (held->source);
  g_object_unref (held->task);
  g_free (held);
}

static gboolean
held_create_cancelled_cb (GCancellable *cancellable,
                          gpointer      user_data)
{
  Held *held = user_data;

  g_assert_true (g_queue_remove (&held->f->pending, held));
  g_task_return_error_if_cancelled (held->task);
  held_free (held);
  return G_SOURCE_REMOVE;
}

static void
factory_create_async (gpointer             user_data,
                      GCancellable        *cancellable,
                      GAsyncReadyCallback  callback,
                      gpointer             callback_data)
{
  Factory *f = user_data;
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, callback_data);

  f->n_create_calls++;
  if (f->hold_creates)
    {
      Held *held = g_new0 (Held, 1);

      held->f = f;
      held->task = g_steal_pointer (&task);
      held->source = g_cancellable_source_new (cancellable);
      g_source_set_callback (held->source, (GSourceFunc) held_create_cancelled_cb, held, NULL);
      g_source_attach (held->source, NULL);
      g_queue_push_tail (&f->pending, held);
      return;
    }
  if (f->fail_creates > 0)
    {
      f->fail_creates--;
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, "connection refused");
      return;
    }
  {
    Res *res = g_new0 (Res, 1);

    res->id = ++f->next_id;
    g_hash_table_add (f->alive, res);
    g_task_return_pointer (task, res, NULL);
  }
}

/* Completes the oldest held create. */
static void
factory_complete_create (Factory  *f,
                         gboolean  success)
{
  Held *held = g_queue_pop_head (&f->pending);

  g_assert_nonnull (held);
  if (success)
    {
      Res *res = g_new0 (Res, 1);

      res->id = ++f->next_id;
      g_hash_table_add (f->alive, res);
      g_task_return_pointer (held->task, res, NULL);
    }
  else
    g_task_return_new_error (held->task, BP_ERROR, BP_ERROR_UNAVAILABLE, "connection refused");
  held_free (held);
}

static gpointer
factory_create_finish (gpointer       user_data,
                       GAsyncResult  *result,
                       GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
factory_validate_async (gpointer             user_data,
                        gpointer             resource,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             callback_data)
{
  Factory *f = user_data;
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, callback_data);

  g_assert_true (g_hash_table_contains (f->alive, resource));
  f->n_validations++;
  if (f->validate_ok)
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, "server closed the connection");
}

static gboolean
factory_validate_finish (gpointer       user_data,
                         GAsyncResult  *result,
                         GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
factory_reset (gpointer user_data,
               gpointer resource)
{
  Factory *f = user_data;

  f->n_resets++;
  return f->reset_ok;
}

static void
factory_destroy (gpointer user_data,
                 gpointer resource)
{
  Factory *f = user_data;

  g_assert_true (g_hash_table_remove (f->alive, resource));
  f->n_destroyed++;
  g_free (resource);
}

static const BpPoolFuncs factory_funcs = {
  .create_async = factory_create_async,
  .create_finish = factory_create_finish,
  .validate_async = factory_validate_async,
  .validate_finish = factory_validate_finish,
  .reset = factory_reset,
  .destroy = factory_destroy,
};

static const BpPoolFuncs factory_funcs_no_validate = {
  .create_async = factory_create_async,
  .create_finish = factory_create_finish,
  .destroy = factory_destroy,
};

/* ---- acquire helpers ---------------------------------------------------- */

typedef struct
{
  gboolean    done;
  BpPoolItem *item;
  GError     *error;
  guint      *order;     /* (nullable) appends its tag when served */
  guint       tag;
} Acq;

static guint served_order[64];
static guint n_served;

static void
acquire_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  Acq *acq = user_data;

  g_assert_false (acq->done);
  acq->done = TRUE;
  acq->item = bp_pool_acquire_finish (BP_POOL (object), result, &acq->error);
  g_assert_true ((acq->item == NULL) != (acq->error == NULL));
  if (acq->item != NULL && n_served < G_N_ELEMENTS (served_order))
    served_order[n_served++] = acq->tag;
}

static void
acquire (BpPool       *pool,
         Acq          *acq,
         const char   *label,
         GCancellable *cancellable)
{
  acq->done = FALSE;
  acq->item = NULL;
  g_clear_error (&acq->error);
  bp_pool_acquire_async (pool, label, cancellable, acquire_cb, acq);
  /* Never synchronous. */
  g_assert_false (acq->done);
}

/* Acquires and runs the loop until served. */
static BpPoolItem *
acquire_now (BpPool     *pool,
             const char *label)
{
  Acq acq = { 0 };

  acquire (pool, &acq, label, NULL);
  iterate ();
  g_assert_true (acq.done);
  g_assert_no_error (acq.error);
  return acq.item;
}

static guint64
stat (BpPool     *pool,
      const char *key)
{
  g_autoptr(GVariant) stats = bp_pool_dup_stats (pool);
  g_autoptr(GVariant) v = g_variant_lookup_value (stats, key, NULL);

  g_assert_nonnull (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT64))
    return (guint64) g_variant_get_int64 (v);
  return g_variant_get_uint64 (v);
}

static void
advance (BpClock *clock,
         gint64   us)
{
  bp_clock_advance (clock, us);
  iterate ();
}

static void
close_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_true (bp_pool_close_finish (BP_POOL (object), result, &error));
  g_assert_no_error (error);
  *done = TRUE;
}

/* Closes (nothing may be checked out), checks that no timer is left and
 * that every resource was destroyed, then finalizes. */
static void
close_and_free (BpPool  *pool,
                BpClock *clock,
                Factory *f)
{
  gboolean done = FALSE;

  bp_pool_close_async (pool, NULL, close_cb, &done);
  g_assert_false (done);
  iterate ();
  g_assert_true (done);
  g_assert_true (bp_pool_is_closed (pool));
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);
  g_assert_cmpuint (g_hash_table_size (f->alive), ==, 0);
  g_assert_finalize_object (pool);
}

typedef struct
{
  BpClock *clock;
  Factory *f;
  BpPool  *pool;
} Fixture;

static void
fixture_setup (Fixture       *fx,
               gconstpointer  data)
{
  fx->clock = bp_clock_new_manual (1000 * G_TIME_SPAN_SECOND, 42);
  fx->f = factory_new ();
  fx->pool = NULL;
  n_served = 0;
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data)
{
  if (fx->pool != NULL)
    close_and_free (g_steal_pointer (&fx->pool), fx->clock, fx->f);
  factory_free (fx->f);
  g_assert_finalize_object (fx->clock);
}

/* ---- scenarios ---------------------------------------------------------- */

static void
test_min_prefill (Fixture       *fx,
                  gconstpointer  data)
{
  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL,
                          "clock", fx->clock, "min", 2, "max", 4, NULL);
  iterate ();
  g_assert_cmpuint (fx->f->n_create_calls, ==, 2);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 2);
  g_assert_cmpuint (stat (fx->pool, "idle"), ==, 2);
  g_assert_cmpuint (stat (fx->pool, "created"), ==, 2);
  g_assert_cmpuint (stat (fx->pool, "acquired"), ==, 0);

  /* Raising min creates more. */
  g_object_set (fx->pool, "min", 3, NULL);
  iterate ();
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 3);
}

static void
test_reuse (Fixture       *fx,
            gconstpointer  data)
{
  BpPoolItem *item;
  Res *first;

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock, "max", 1, NULL);
  item = acquire_now (fx->pool, "a");
  first = bp_pool_item_get_resource (item);
  g_assert_cmpuint (bp_pool_item_get_uses (item), ==, 1);
  g_assert_cmpstr (bp_pool_item_get_acquirer (item), ==, "a");
  g_assert_cmpuint (stat (fx->pool, "in-use"), ==, 1);
  bp_pool_release (fx->pool, item, TRUE);
  g_assert_cmpuint (fx->f->n_resets, ==, 1);
  g_assert_cmpuint (stat (fx->pool, "idle"), ==, 1);

  item = acquire_now (fx->pool, "b");
  g_assert_true (bp_pool_item_get_resource (item) == first);
  g_assert_cmpuint (bp_pool_item_get_uses (item), ==, 2);
  bp_pool_release (fx->pool, item, TRUE);
  g_assert_cmpuint (fx->f->n_create_calls, ==, 1);

  /* The synchronous fast path takes the same idle resource. */
  item = bp_pool_try_acquire (fx->pool, "c");
  g_assert_nonnull (item);
  g_assert_true (bp_pool_item_get_resource (item) == first);
  g_assert_null (bp_pool_try_acquire (fx->pool, "d"));
  bp_pool_release (fx->pool, item, TRUE);
}

static void
test_acquire_timeout (Fixture       *fx,
                      gconstpointer  data)
{
  BpPoolItem *held;
  Acq waiter = { 0 }, later = { 0 };

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "max", 1, "acquire-timeout-ms", 1000, NULL);
  held = acquire_now (fx->pool, "holder");

  acquire (fx->pool, &waiter, "waiter", NULL);
  iterate ();
  g_assert_false (waiter.done);
  g_assert_cmpuint (stat (fx->pool, "waiting"), ==, 1);

  advance (fx->clock, 999 * MS);
  g_assert_false (waiter.done);
  advance (fx->clock, 1 * MS);
  g_assert_true (waiter.done);
  g_assert_error (waiter.error, BP_ERROR, BP_ERROR_POOL_EXHAUSTED);
  g_assert_cmpuint (stat (fx->pool, "waiting"), ==, 0);
  g_assert_cmpuint (stat (fx->pool, "acquire-timeouts"), ==, 1);
  /* Nothing left to time: no timer armed. */
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);

  /* A timed-out waiter does not break later ones. */
  acquire (fx->pool, &later, "later", NULL);
  advance (fx->clock, 500 * MS);
  g_assert_false (later.done);
  bp_pool_release (fx->pool, held, TRUE);
  iterate ();
  g_assert_true (later.done);
  g_assert_no_error (later.error);
  g_assert_cmpint (stat (fx->pool, "acquire-wait-p99-us"), >=, 500 * MS);
  bp_pool_release (fx->pool, later.item, TRUE);
  g_clear_error (&waiter.error);
}

static void
test_fifo (Fixture       *fx,
           gconstpointer  data)
{
  BpPoolItem *held;
  Acq waiters[5] = { { 0 } };

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock, "max", 1, NULL);
  held = acquire_now (fx->pool, "holder");

  for (guint i = 0; i < G_N_ELEMENTS (waiters); i++)
    {
      waiters[i].tag = i;
      acquire (fx->pool, &waiters[i], "waiter", NULL);
      advance (fx->clock, 1 * MS);
    }
  g_assert_cmpuint (stat (fx->pool, "waiting"), ==, 5);

  n_served = 0;
  bp_pool_release (fx->pool, held, TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (waiters); i++)
    {
      iterate ();
      g_assert_true (waiters[i].done);
      for (guint j = i + 1; j < G_N_ELEMENTS (waiters); j++)
        g_assert_false (waiters[j].done);
      bp_pool_release (fx->pool, waiters[i].item, TRUE);
    }
  iterate ();
  for (guint i = 0; i < G_N_ELEMENTS (waiters); i++)
    g_assert_cmpuint (served_order[i], ==, i);
  g_assert_cmpuint (fx->f->n_create_calls, ==, 1);
}

static void
test_cancel_waiter (Fixture       *fx,
                    gconstpointer  data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  BpPoolItem *held;
  Acq w1 = { 0 }, w2 = { 0 };

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock, "max", 1, NULL);
  held = acquire_now (fx->pool, "holder");

  acquire (fx->pool, &w1, "w1", cancellable);
  acquire (fx->pool, &w2, "w2", NULL);
  iterate ();
  g_assert_cmpuint (stat (fx->pool, "waiting"), ==, 2);

  g_cancellable_cancel (cancellable);
  iterate ();
  g_assert_true (w1.done);
  g_assert_error (w1.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* It left the queue at once. */
  g_assert_cmpuint (stat (fx->pool, "waiting"), ==, 1);

  bp_pool_release (fx->pool, held, TRUE);
  iterate ();
  g_assert_true (w2.done);
  g_assert_no_error (w2.error);
  bp_pool_release (fx->pool, w2.item, TRUE);
  g_clear_error (&w1.error);

  /* Already cancelled: fails without queueing. */
  acquire (fx->pool, &w1, "w1", cancellable);
  iterate ();
  g_assert_error (w1.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (stat (fx->pool, "in-use"), ==, 0);
  g_clear_error (&w1.error);
}

static void
test_unclaimed_returns (Fixture       *fx,
                        gconstpointer  data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  Acq acq = { 0 };

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "min", 1, "max", 1, NULL);
  iterate ();

  /* Served from the idle item at once, but cancelled before the callback
   * could take it: the item must go back to the pool. */
  acquire (fx->pool, &acq, "quitter", cancellable);
  g_assert_cmpuint (stat (fx->pool, "in-use"), ==, 1);
  g_cancellable_cancel (cancellable);
  iterate ();
  g_assert_true (acq.done);
  g_assert_error (acq.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (stat (fx->pool, "in-use"), ==, 0);
  g_assert_cmpuint (stat (fx->pool, "idle"), ==, 1);
  g_clear_error (&acq.error);
}

static void
test_lifetime (Fixture       *fx,
               gconstpointer  data)
{
  BpPoolItem *item;

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "max", 2, "max-lifetime-ms", 10000, "idle-timeout-ms", 0, NULL);
  item = acquire_now (fx->pool, "a");
  bp_pool_release (fx->pool, item, TRUE);

  /* The jitter takes at most 2.5 % off the lifetime. */
  advance (fx->clock, 9700 * MS);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 1);
  advance (fx->clock, 300 * MS);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 0);
  g_assert_cmpuint (fx->f->n_destroyed, ==, 1);

  /* In use when it expires: retired on release, not before. */
  item = acquire_now (fx->pool, "b");
  advance (fx->clock, 20000 * MS);
  g_assert_cmpuint (stat (fx->pool, "in-use"), ==, 1);
  bp_pool_release (fx->pool, item, TRUE);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 0);
  g_assert_cmpuint (fx->f->n_destroyed, ==, 2);

  /* At min, an expired resource is replaced. */
  g_object_set (fx->pool, "min", 1, NULL);
  iterate ();
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 1);
  advance (fx->clock, 10000 * MS);
  g_assert_cmpuint (fx->f->n_destroyed, ==, 3);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 1);
  g_assert_cmpuint (stat (fx->pool, "created"), ==, 4);
}

static void
test_max_uses (Fixture       *fx,
               gconstpointer  data)
{
  BpPoolItem *item;
  Res *first;
  Acq waiter = { 0 };

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "max", 1, "max-uses", 2, NULL);
  item = acquire_now (fx->pool, "a");
  first = bp_pool_item_get_resource (item);
  bp_pool_release (fx->pool, item, TRUE);
  g_assert_cmpuint (fx->f->n_destroyed, ==, 0);

  item = acquire_now (fx->pool, "b");
  g_assert_true (bp_pool_item_get_resource (item) == first);
  g_assert_cmpuint (bp_pool_item_get_uses (item), ==, 2);

  /* A pending waiter gets a fresh resource when this one is spent. */
  acquire (fx->pool, &waiter, "waiter", NULL);
  iterate ();
  g_assert_false (waiter.done);
  bp_pool_release (fx->pool, item, TRUE);
  g_assert_cmpuint (fx->f->n_destroyed, ==, 1);
  iterate ();
  g_assert_true (waiter.done);
  g_assert_no_error (waiter.error);
  g_assert_cmpuint (bp_pool_item_get_uses (waiter.item), ==, 1);
  g_assert_cmpuint (fx->f->n_create_calls, ==, 2);
  bp_pool_release (fx->pool, waiter.item, TRUE);
}

static void
test_validation (Fixture       *fx,
                 gconstpointer  data)
{
  BpPoolItem *item;
  Res *first;

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "max", 2, "validate-after-idle-ms", 1000, NULL);
  item = acquire_now (fx->pool, "a");
  first = bp_pool_item_get_resource (item);
  /* A new resource is not validated. */
  g_assert_cmpuint (fx->f->n_validations, ==, 0);
  bp_pool_release (fx->pool, item, TRUE);

  advance (fx->clock, 500 * MS);
  item = acquire_now (fx->pool, "b");
  g_assert_cmpuint (fx->f->n_validations, ==, 0);
  bp_pool_release (fx->pool, item, TRUE);

  advance (fx->clock, 1000 * MS);
  item = acquire_now (fx->pool, "c");
  g_assert_cmpuint (fx->f->n_validations, ==, 1);
  g_assert_true (bp_pool_item_get_resource (item) == first);
  bp_pool_release (fx->pool, item, TRUE);

  /* A failed validation destroys it; the same waiter gets a new one. */
  fx->f->validate_ok = FALSE;
  advance (fx->clock, 1000 * MS);
  item = acquire_now (fx->pool, "d");
  g_assert_cmpuint (fx->f->n_validations, ==, 2);
  g_assert_cmpuint (fx->f->n_destroyed, ==, 1);
  g_assert_cmpuint (((Res *) bp_pool_item_get_resource (item))->id, ==, 2);
  g_assert_cmpuint (bp_pool_item_get_uses (item), ==, 1);
  g_assert_cmpuint (stat (fx->pool, "validation-failures"), ==, 1);
  bp_pool_release (fx->pool, item, TRUE);
}

typedef struct
{
  guint  n;
  char  *acquirer;
  gint64 held;
} LeakSeen;

static void
leak_cb (BpPool     *pool,
         const char *acquirer,
         gint64      held_us,
         gpointer    user_data)
{
  LeakSeen *seen = user_data;

  seen->n++;
  g_free (seen->acquirer);
  seen->acquirer = g_strdup (acquirer);
  seen->held = held_us;
}

static void
test_leak (Fixture       *fx,
           gconstpointer  data)
{
  LeakSeen seen = { 0 };
  BpPoolItem *item;

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "max", 2, "leak-threshold-ms", 5000, NULL);
  g_signal_connect (fx->pool, "leak-detected", G_CALLBACK (leak_cb), &seen);

  item = acquire_now (fx->pool, "Sql.Query :1.42");
  advance (fx->clock, 4999 * MS);
  g_assert_cmpuint (seen.n, ==, 0);
  advance (fx->clock, 1 * MS);
  g_assert_cmpuint (seen.n, ==, 1);
  g_assert_cmpstr (seen.acquirer, ==, "Sql.Query :1.42");
  g_assert_cmpint (seen.held, ==, 5000 * MS);
  g_assert_cmpuint (stat (fx->pool, "leaks"), ==, 1);

  /* Once per checkout. */
  advance (fx->clock, 60000 * MS);
  g_assert_cmpuint (seen.n, ==, 1);
  bp_pool_release (fx->pool, item, TRUE);

  /* A resource returned in time is not reported. */
  item = acquire_now (fx->pool, "quick");
  advance (fx->clock, 100 * MS);
  bp_pool_release (fx->pool, item, TRUE);
  advance (fx->clock, 10000 * MS);
  g_assert_cmpuint (seen.n, ==, 1);
  g_free (seen.acquirer);
}

static void
test_idle_reaping (Fixture       *fx,
                   gconstpointer  data)
{
  BpPoolItem *items[3];

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "min", 1, "max", 4, "idle-timeout-ms", 10000,
                          "max-lifetime-ms", 0, NULL);
  iterate ();
  for (guint i = 0; i < 3; i++)
    items[i] = acquire_now (fx->pool, "x");
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 3);
  for (guint i = 0; i < 3; i++)
    bp_pool_release (fx->pool, items[i], TRUE);
  g_assert_cmpuint (stat (fx->pool, "idle"), ==, 3);

  /* Used resources are not reaped while in use. */
  items[0] = acquire_now (fx->pool, "y");
  advance (fx->clock, 9999 * MS);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 3);
  advance (fx->clock, 1 * MS);
  /* The two idle ones went (3 > min); the in-use one stays. */
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 1);
  g_assert_cmpuint (stat (fx->pool, "in-use"), ==, 1);
  bp_pool_release (fx->pool, items[0], TRUE);

  /* Never below min. */
  advance (fx->clock, 60000 * MS);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 1);
  g_assert_cmpuint (fx->f->n_destroyed, ==, 2);
  /* Nothing to wait for at min: no timer. */
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);
}

static void
test_unhealthy_release (Fixture       *fx,
                        gconstpointer  data)
{
  BpPoolItem *item;
  Res *first;

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock, "max", 1, NULL);
  item = acquire_now (fx->pool, "a");
  first = bp_pool_item_get_resource (item);
  bp_pool_release (fx->pool, item, FALSE);
  g_assert_cmpuint (fx->f->n_destroyed, ==, 1);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 0);
  g_assert_cmpuint (fx->f->n_resets, ==, 0);

  item = acquire_now (fx->pool, "b");
  g_assert_cmpuint (fx->f->n_create_calls, ==, 2);
  g_assert_cmpuint (bp_pool_item_get_uses (item), ==, 1);
  (void) first;

  /* A refusing reset hook destroys too. */
  fx->f->reset_ok = FALSE;
  bp_pool_release (fx->pool, item, TRUE);
  g_assert_cmpuint (fx->f->n_resets, ==, 1);
  g_assert_cmpuint (fx->f->n_destroyed, ==, 2);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 0);
}

static void
test_close_drains (Fixture       *fx,
                   gconstpointer  data)
{
  BpPoolItem *a, *b;
  Acq w1 = { 0 }, w2 = { 0 }, after = { 0 };
  gboolean closed = FALSE;

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "max", 2, "leak-threshold-ms", 100000, NULL);
  a = acquire_now (fx->pool, "a");
  b = acquire_now (fx->pool, "b");
  acquire (fx->pool, &w1, "w1", NULL);
  acquire (fx->pool, &w2, "w2", NULL);
  iterate ();
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), >, 0);

  bp_pool_close_async (fx->pool, NULL, close_cb, &closed);
  iterate ();
  g_assert_true (w1.done && w2.done);
  g_assert_error (w1.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_error (w2.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_false (closed);
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);

  acquire (fx->pool, &after, "after", NULL);
  iterate ();
  g_assert_error (after.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_null (bp_pool_try_acquire (fx->pool, "after"));

  bp_pool_release (fx->pool, b, TRUE);
  iterate ();
  g_assert_false (closed);
  g_assert_cmpuint (fx->f->n_destroyed, ==, 1);
  bp_pool_release (fx->pool, a, TRUE);
  iterate ();
  g_assert_true (closed);
  g_assert_cmpuint (fx->f->n_destroyed, ==, 2);
  g_assert_cmpuint (g_hash_table_size (fx->f->alive), ==, 0);

  g_clear_error (&w1.error);
  g_clear_error (&w2.error);
  g_clear_error (&after.error);
  /* Closing again completes at once; teardown does that. */
}

static void
close_cancelled_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  g_assert_false (bp_pool_close_finish (BP_POOL (object), result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  *done = TRUE;
}

/* As with GOutputStream: a cancelled close still closes. */
static void
test_close_cancelled (Fixture       *fx,
                      gconstpointer  data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  BpPoolItem *a;
  Acq after = { 0 };
  gboolean done = FALSE;

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "min", 1, "max", 2, NULL);
  iterate ();
  a = acquire_now (fx->pool, "a");
  g_cancellable_cancel (cancellable);
  bp_pool_close_async (fx->pool, cancellable, close_cancelled_cb, &done);
  g_assert_true (bp_pool_is_closed (fx->pool));
  iterate ();
  g_assert_true (done);
  acquire (fx->pool, &after, "after", NULL);
  iterate ();
  g_assert_error (after.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_clear_error (&after.error);

  /* the checked-out item still drains: released, it is destroyed */
  bp_pool_release (fx->pool, a, TRUE);
  iterate ();
  g_assert_cmpuint (g_hash_table_size (fx->f->alive), ==, 0);
}

static void
test_close_idle (Fixture       *fx,
                 gconstpointer  data)
{
  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "min", 3, "max", 3, "idle-timeout-ms", 1000, NULL);
  iterate ();
  g_assert_cmpuint (g_hash_table_size (fx->f->alive), ==, 3);
  /* Teardown closes: idle resources destroyed, close completes on the
   * next iteration, no timer left. */
}

static void
test_close_pending_create (Fixture       *fx,
                           gconstpointer  data)
{
  Acq w = { 0 };
  gboolean closed = FALSE;

  fx->f->hold_creates = TRUE;
  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock, "max", 1, NULL);
  acquire (fx->pool, &w, "w", NULL);
  iterate ();
  g_assert_cmpuint (fx->f->pending.length, ==, 1);

  bp_pool_close_async (fx->pool, NULL, close_cb, &closed);
  iterate ();
  /* The create was cancelled and the close waited for it. */
  g_assert_cmpuint (fx->f->pending.length, ==, 0);
  g_assert_true (closed);
  g_assert_error (w.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_clear_error (&w.error);
}

static void
test_create_error (Fixture       *fx,
                   gconstpointer  data)
{
  Acq w = { 0 };

  fx->f->fail_creates = 1;
  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "max", 1, "acquire-timeout-ms", 30000, NULL);
  acquire (fx->pool, &w, "w", NULL);
  iterate ();
  /* The waiter gets the create error right away, not a timeout. */
  g_assert_true (w.done);
  g_assert_error (w.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_true (strstr (w.error->message, "connection refused") != NULL);
  g_assert_cmpuint (fx->f->n_create_calls, ==, 1);
  g_assert_cmpuint (stat (fx->pool, "create-errors"), ==, 1);
  g_clear_error (&w.error);

  /* And the pool recovers. */
  bp_pool_release (fx->pool, acquire_now (fx->pool, "again"), TRUE);
}

static void
test_refill_backoff (Fixture       *fx,
                     gconstpointer  data)
{
  fx->f->fail_creates = 100;
  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "min", 1, "max", 2, "max-lifetime-ms", 0, NULL);
  iterate ();
  /* No spinning: one attempt, then wait for the backoff. */
  g_assert_cmpuint (fx->f->n_create_calls, ==, 1);
  iterate ();
  g_assert_cmpuint (fx->f->n_create_calls, ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 1);

  /* 250 ms with jitter in [125, 250], then 500 ms in [250, 500], … */
  advance (fx->clock, 250 * MS);
  g_assert_cmpuint (fx->f->n_create_calls, ==, 2);
  advance (fx->clock, 500 * MS);
  g_assert_cmpuint (fx->f->n_create_calls, ==, 3);
  advance (fx->clock, 100 * MS);
  g_assert_cmpuint (fx->f->n_create_calls, ==, 3);

  /* The server comes back: the next attempt fills min. */
  fx->f->fail_creates = 0;
  advance (fx->clock, 1000 * MS);
  g_assert_cmpuint (fx->f->n_create_calls, ==, 4);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);
}

static void
test_create_timeout (Fixture       *fx,
                     gconstpointer  data)
{
  Acq w = { 0 };

  fx->f->hold_creates = TRUE;
  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "max", 1, "create-timeout-ms", 1000, "acquire-timeout-ms", 5000, NULL);
  acquire (fx->pool, &w, "w", NULL);
  iterate ();
  g_assert_cmpuint (fx->f->pending.length, ==, 1);
  advance (fx->clock, 1000 * MS);
  g_assert_cmpuint (fx->f->pending.length, ==, 0);
  g_assert_true (w.done);
  g_assert_error (w.error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_clear_error (&w.error);
  fx->f->hold_creates = FALSE;
}

static void
test_late_create (Fixture       *fx,
                  gconstpointer  data)
{
  Acq w = { 0 };
  BpPoolItem *item;

  fx->f->hold_creates = TRUE;
  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "max", 1, "create-timeout-ms", 0, "acquire-timeout-ms", 1000, NULL);
  acquire (fx->pool, &w, "w", NULL);
  advance (fx->clock, 1000 * MS);
  g_assert_error (w.error, BP_ERROR, BP_ERROR_POOL_EXHAUSTED);
  g_clear_error (&w.error);

  /* The connection arrives after its waiter left: kept idle, not leaked. */
  factory_complete_create (fx->f, TRUE);
  iterate ();
  g_assert_cmpuint (stat (fx->pool, "idle"), ==, 1);
  fx->f->hold_creates = FALSE;
  item = acquire_now (fx->pool, "next");
  g_assert_cmpuint (fx->f->n_create_calls, ==, 1);
  bp_pool_release (fx->pool, item, TRUE);
}

static void
test_create_fails_one_waiter_each (Fixture       *fx,
                                   gconstpointer  data)
{
  Acq w[3] = { { 0 } };

  fx->f->hold_creates = TRUE;
  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock, "max", 2, NULL);
  for (guint i = 0; i < 3; i++)
    acquire (fx->pool, &w[i], "w", NULL);
  iterate ();
  g_assert_cmpuint (fx->f->pending.length, ==, 2);

  /* One create fails: one more create starts for the uncovered waiter
   * (2 waiting on 1 pending create), and the oldest waiter fails. */
  factory_complete_create (fx->f, FALSE);
  iterate ();
  g_assert_true (w[0].done);
  g_assert_error (w[0].error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_false (w[1].done);
  g_assert_cmpuint (fx->f->pending.length, ==, 2);

  factory_complete_create (fx->f, TRUE);
  factory_complete_create (fx->f, TRUE);
  iterate ();
  g_assert_no_error (w[1].error);
  g_assert_no_error (w[2].error);
  bp_pool_release (fx->pool, w[1].item, TRUE);
  bp_pool_release (fx->pool, w[2].item, TRUE);
  g_clear_error (&w[0].error);
  fx->f->hold_creates = FALSE;
}

static void
test_max_waiters (Fixture       *fx,
                  gconstpointer  data)
{
  BpPoolItem *held;
  Acq w1 = { 0 }, w2 = { 0 };

  fx->pool = bp_pool_new (&factory_funcs, fx->f, NULL, "clock", fx->clock,
                          "max", 1, "max-waiters", 1, NULL);
  held = acquire_now (fx->pool, "holder");
  acquire (fx->pool, &w1, "w1", NULL);
  acquire (fx->pool, &w2, "w2", NULL);
  iterate ();
  g_assert_false (w1.done);
  g_assert_error (w2.error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  bp_pool_release (fx->pool, held, TRUE);
  iterate ();
  g_assert_no_error (w1.error);
  bp_pool_release (fx->pool, w1.item, TRUE);
  g_clear_error (&w2.error);
}

static void
test_max_shrinks (Fixture       *fx,
                  gconstpointer  data)
{
  BpPoolItem *items[3];

  fx->pool = bp_pool_new (&factory_funcs_no_validate, fx->f, NULL, "clock", fx->clock,
                          "max", 3, NULL);
  for (guint i = 0; i < 3; i++)
    items[i] = acquire_now (fx->pool, "x");
  bp_pool_release (fx->pool, items[0], TRUE);
  g_object_set (fx->pool, "max", 1, NULL);
  /* The idle one goes at once, the others on release. */
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 2);
  bp_pool_release (fx->pool, items[1], TRUE);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 1);
  bp_pool_release (fx->pool, items[2], TRUE);
  g_assert_cmpuint (stat (fx->pool, "size"), ==, 1);
  g_assert_cmpuint (stat (fx->pool, "idle"), ==, 1);
}

static void
test_finalize_unclosed (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (G_TIME_SPAN_SECOND, 1);
  Factory *f = factory_new ();
  BpPool *pool;

  /* Dropping the last reference of an idle pool destroys its resources. */
  pool = bp_pool_new (&factory_funcs, f, (GDestroyNotify) factory_free, "clock", clock,
                      "min", 2, NULL);
  iterate ();
  g_assert_cmpuint (g_hash_table_size (f->alive), ==, 2);
  g_assert_finalize_object (pool);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/pool/min/prefill", test_min_prefill);
  ADD ("/pool/acquire/reuse", test_reuse);
  ADD ("/pool/acquire/timeout", test_acquire_timeout);
  ADD ("/pool/acquire/fifo", test_fifo);
  ADD ("/pool/acquire/cancel", test_cancel_waiter);
  ADD ("/pool/acquire/unclaimed-returns", test_unclaimed_returns);
  ADD ("/pool/acquire/max-waiters", test_max_waiters);
  ADD ("/pool/lifetime", test_lifetime);
  ADD ("/pool/max-uses", test_max_uses);
  ADD ("/pool/validation", test_validation);
  ADD ("/pool/leak", test_leak);
  ADD ("/pool/idle/reaping-to-min", test_idle_reaping);
  ADD ("/pool/release/unhealthy-destroys", test_unhealthy_release);
  ADD ("/pool/max/shrink", test_max_shrinks);
  ADD ("/pool/close/drains", test_close_drains);
  ADD ("/pool/close/idle", test_close_idle);
  ADD ("/pool/close/cancelled-still-closes", test_close_cancelled);
  ADD ("/pool/close/pending-create", test_close_pending_create);
  ADD ("/pool/create/error-fails-waiter", test_create_error);
  ADD ("/pool/create/error-one-waiter-each", test_create_fails_one_waiter_each);
  ADD ("/pool/create/refill-backoff", test_refill_backoff);
  ADD ("/pool/create/timeout", test_create_timeout);
  ADD ("/pool/create/late", test_late_create);
  g_test_add_func ("/pool/finalize/unclosed", test_finalize_unclosed);

#undef ADD

  return g_test_run ();
}
