/* bp-pg-pool.c: a BpPool of BpPgConnections
 *
 * The BpPoolFuncs of the postgres backend:
 *
 *  - create: a new connection (PQconnectStartParams …), bounded by its own
 *    connect timeout and by the pool's create-timeout-ms a second later;
 *  - checkout: a connection watches its socket while idle, so one the
 *    server dropped (pg_terminate_backend, a restart) is already CLOSED:
 *    bp_pg_pool_acquire_async() checks that locally (no round trip) on
 *    every checkout, gives a dead one back to be destroyed and acquires
 *    again, so the caller is served by another connection or a new one;
 *  - validate, on checkout after BP_PG_POOL_PING_AFTER_IDLE_MS idle (where
 *    a silent network could have lost it): a `SELECT 1`;
 *  - reset, on release: only an idle connection outside a transaction is
 *    kept; one released inside a transaction (or after a failed statement
 *    left it INERROR, or mid-result) is destroyed, never handed to the next
 *    caller dirty;
 *  - destroy: PQfinish, which does not block on a non-blocking connection.
 *
 * Main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-pg-pool.h"

typedef struct
{
  BpPgConnectionFactory  factory;
  gpointer               user_data;
  GDestroyNotify         user_data_free;
} PoolData;

static void
pool_data_free (PoolData *data)
{
  if (data->user_data_free != NULL)
    data->user_data_free (data->user_data);
  g_free (data);
}

static gboolean
is_clean (BpPgConnection *conn)
{
  return bp_pg_connection_get_state (conn) == BP_PG_CONNECTION_STATE_IDLE &&
         bp_pg_connection_get_transaction_status (conn) == PQTRANS_IDLE;
}

/* Main context: a new connection is up (or not). */
static void
connected_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpPgConnection *conn = BP_PG_CONNECTION (object);
  GError *error = NULL;

  if (!bp_pg_connection_connect_finish (conn, result, &error))
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_object_ref (conn), g_object_unref);
}

static void
pool_create_async (gpointer             user_data,
                   GCancellable        *cancellable,
                   GAsyncReadyCallback  callback,
                   gpointer             callback_data)
{
  PoolData *data = user_data;
  g_autoptr(BpPgConnection) conn = data->factory (data->user_data);
  GTask *task = g_task_new (NULL, cancellable, callback, callback_data);

  g_task_set_source_tag (task, pool_create_async);
  bp_pg_connection_connect_async (conn, cancellable, connected_cb, task);
}

static gpointer
pool_create_finish (gpointer       user_data,
                    GAsyncResult  *result,
                    GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Main context. */
static void
pinged_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!bp_pg_connection_query_finish (BP_PG_CONNECTION (object), result, NULL, NULL, NULL, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
pool_validate_async (gpointer             user_data,
                     gpointer             resource,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             callback_data)
{
  BpPgConnection *conn = resource;
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, callback_data);

  g_task_set_source_tag (task, pool_validate_async);
  if (!is_clean (conn))
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE,
                               "SQLSTATE 08003: the connection was closed while idle");
      return;
    }
  bp_pg_connection_query_async (conn, "SELECT 1", NULL, 0, 0, cancellable, pinged_cb,
                                g_steal_pointer (&task));
}

static gboolean
pool_validate_finish (gpointer       user_data,
                      GAsyncResult  *result,
                      GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
pool_reset (gpointer user_data,
            gpointer resource)
{
  return is_clean (resource);
}

static void
pool_destroy (gpointer user_data,
              gpointer resource)
{
  BpPgConnection *conn = resource;

  /* A connection still draining a cancelled statement is closed all the
   * same. */
  bp_pg_connection_close (conn);
  g_object_unref (conn);
}

static const BpPoolFuncs pool_funcs = {
  .create_async = pool_create_async,
  .create_finish = pool_create_finish,
  .validate_async = pool_validate_async,
  .validate_finish = pool_validate_finish,
  .reset = pool_reset,
  .destroy = pool_destroy,
};

static guint
clamp_uint (guint64 value)
{
  return (guint) MIN (value, (guint64) G_MAXUINT);
}

/**
 * bp_pg_pool_new:
 * @factory: makes the connections
 * @user_data: data for @factory
 * @user_data_free: (nullable): frees @user_data with the pool
 * @clock: the clock of the pool's timers
 * @config: the `pool.*` settings
 * @connect_timeout_ms: the connections' connect timeout
 *
 * Returns: (transfer full): a pool in the current thread-default context
 */
BpPool *
bp_pg_pool_new (BpPgConnectionFactory      factory,
                gpointer                   user_data,
                GDestroyNotify             user_data_free,
                BpClock                   *clock,
                const BpBackendPoolConfig *config,
                guint                      connect_timeout_ms)
{
  PoolData *data = g_new0 (PoolData, 1);

  data->factory = factory;
  data->user_data = user_data;
  data->user_data_free = user_data_free;
  return bp_pool_new (&pool_funcs, data, (GDestroyNotify) pool_data_free,
                      "clock", clock,
                      "min", clamp_uint (config->min),
                      "max", clamp_uint (config->max),
                      "acquire-timeout-ms", clamp_uint (config->acquire_timeout_ms),
                      "create-timeout-ms", connect_timeout_ms + 1000,
                      "idle-timeout-ms", clamp_uint (config->idle_timeout_ms),
                      "max-lifetime-ms", clamp_uint (config->max_lifetime_ms),
                      "max-uses", clamp_uint (config->max_uses),
                      "validate-after-idle-ms", BP_PG_POOL_PING_AFTER_IDLE_MS,
                      NULL);
}

/**
 * bp_pg_pool_release:
 * @pool: the pool
 * @item: (transfer full): a checked-out connection
 *
 * Gives @item back: kept if clean, destroyed otherwise.
 */
void
bp_pg_pool_release (BpPool     *pool,
                    BpPoolItem *item)
{
  bp_pool_release (pool, item, is_clean (bp_pool_item_get_resource (item)));
}

/* ---------------------------------------------------------------------- */
/* Acquire                                                                 */

typedef struct
{
  char  *acquirer;  /* (owned) */
  guint  tries;
} AcquireData;

static void
acquire_data_free (AcquireData *data)
{
  g_free (data->acquirer);
  g_free (data);
}

/* Main context. */
static void
acquired_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpPool *pool = BP_POOL (object);
  AcquireData *data = g_task_get_task_data (task);
  GError *error = NULL;
  BpPoolItem *item = bp_pool_acquire_finish (pool, result, &error);

  if (item == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (!is_clean (bp_pool_item_get_resource (item)) && data->tries++ < BP_PG_POOL_MAX_DEAD_RETRIES)
    {
      GCancellable *cancellable = g_task_get_cancellable (task);

      g_debug ("acquired a connection that died while idle: acquiring again");
      bp_pool_release (pool, item, FALSE);
      bp_pool_acquire_async (pool, data->acquirer, cancellable, acquired_cb, g_steal_pointer (&task));
      return;
    }
  g_task_return_pointer (task, item, NULL);
}

/**
 * bp_pg_pool_acquire_async:
 * @pool: a pool from bp_pg_pool_new()
 * @acquirer: (nullable): a label for leak reports
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with a live, clean connection (or an error)
 * @user_data: data for @callback
 *
 * bp_pool_acquire_async(), but a connection that died since it was made is
 * destroyed and replaced (up to BP_PG_POOL_MAX_DEAD_RETRIES times).
 */
void
bp_pg_pool_acquire_async (BpPool              *pool,
                          const char          *acquirer,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  GTask *task = g_task_new (pool, cancellable, callback, user_data);
  AcquireData *data = g_new0 (AcquireData, 1);

  g_task_set_source_tag (task, bp_pg_pool_acquire_async);
  data->acquirer = g_strdup (acquirer);
  g_task_set_task_data (task, data, (GDestroyNotify) acquire_data_free);
  bp_pool_acquire_async (pool, acquirer, cancellable, acquired_cb, task);
}

/**
 * bp_pg_pool_acquire_finish:
 * @pool: the pool
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the item; give it back with
 *   bp_pg_pool_release()
 */
BpPoolItem *
bp_pg_pool_acquire_finish (BpPool        *pool,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, pool), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}
