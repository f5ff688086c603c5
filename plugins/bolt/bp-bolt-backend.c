/* bp-bolt-backend.c: backend type `bolt`
 *
 * Serves org.backplane.Backplane1.Graph from pools (BpPool) of
 * BpBoltConnections. With a bolt:// URI there is one pool for the server;
 * with neo4j:// the backend keeps a routing table per database (ROUTE,
 * refreshed when it expires or lacks a server of the wanted role) and one
 * pool per cluster member: reads go to readers, writes to writers, chosen by
 * least connections in use (or round-robin). A member that fails with a
 * lost connection leaves the table until the next refresh; a writer that
 * answers Neo.ClientError.Cluster.NotALeader leaves the writers.
 *
 * Retries. Graph.Run, RunToFd's start and health checks run as attempts
 * under the backend's BpRetry (`retry.*` keys; reads are retried,
 * auto-commit writes are not) and its BpBreaker (one permit an attempt).
 * ExecuteRead/ExecuteWrite (managed transactions) retry the whole
 * transaction on the official drivers' schedule instead (BpBoltTxRetry,
 * `tx-retry.*` keys, one breaker permit an attempt, paid for from the
 * backend's retry budget): 1 s, doubling, ±20 % jitter, no retry once 30 s
 * have passed since the first failure. Failures are classified by
 * bp_bolt_classify_failure() (breaker, BpRetry) and tx_retry_classify()
 * (managed transactions): transient errors are retried; client errors
 * (including Neo.TransientError.Transaction.Terminated and
 * LockClientStopped, client errors since Neo4j 5) never count against the
 * breaker and are not retried; a connection lost before COMMIT is retried
 * in a managed transaction; "commit outcome unknown" is never retried; in a
 * neo4j:// cluster NotALeader / ForbiddenOnReadOnlyDatabase drop that
 * writer, and the managed transaction is retried against the leader of a
 * fresh routing table.
 *
 * Config keys: uri= (bolt://, bolt+s://, bolt+ssc://, neo4j://, neo4j+s://,
 * neo4j+ssc://), user=, password-file= / password-env=, auth= (basic when a
 * user is set, else none; bearer takes the token from the password secret),
 * database=, fetch-size= (1000), max-records= (100000), max-statements=
 * (1000), max-transactions= (64), connect-timeout-ms= (10000),
 * max-message-size= (64 MiB), routing-policy= (least-connections or
 * round-robin), tx-retry.initial-ms= (1000, 1–600000),
 * tx-retry.multiplier= (2, a decimal from 1 to 10),
 * tx-retry.jitter-percent= (20, 0–100), tx-retry.max-time-ms= (30000,
 * 0 = no retries, up to a day); plus the common type=, enabled=,
 * breaker.*, retry.* and pool.* keys.
 *
 * Everything runs on the main context; nothing here blocks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <unistd.h>
#include <string.h>

#include "bp-bolt-backend.h"
#include "bp-bolt-dbus.h"
#include "bp-bolt-ops.h"
#include "bp-bolt-routing-table.h"
#include "bp-bolt-transaction.h"
#include "bp-bolt-tx-retry.h"
#include "bp-bolt-uri.h"

typedef struct _ServerPool ServerPool;

/* idle longer than this: RESET on checkout to prove the connection lives */
#define LIVENESS_CHECK_AFTER_US (30 * G_USEC_PER_SEC)

struct _BpBoltBackend
{
  BpBackend           parent_instance;

  BpDBusGraph        *iface;             /* (owned) */
  BpBoltUri          *uri;               /* (owned) (nullable) until configured */
  char               *user;              /* (owned) (nullable) */
  char               *password;          /* (owned) (nullable): never logged */
  guint               auth_scheme;       /* 0 basic, 1 bearer, 2 none */
  char               *database;          /* (owned) (nullable) */
  gint64              fetch_size;
  guint               max_records;
  guint               max_statements;
  guint               max_transactions;
  guint               connect_timeout_ms;
  BpBoltSelectPolicy  policy;
  BpBoltLimits        limits;

  BpBoltTxRetry      *tx_retry;          /* (owned): ExecuteRead/ExecuteWrite */
  GHashTable         *pools;             /* address → ServerPool (owned) */
  GHashTable         *tables;            /* database ("" default) → BpBoltRoutingTable */
  GHashTable         *refreshes;         /* database → GPtrArray of waiting GTasks */
  GHashTable         *transactions;      /* (element-type BpBoltTransaction) (owned) */
  GCancellable       *stop_cancellable;  /* (owned) */
  gboolean            stopped;
};

G_DEFINE_FINAL_TYPE (BpBoltBackend, bp_bolt_backend, BP_TYPE_BACKEND)

struct _ServerPool
{
  BpBoltBackend *backend;   /* (unowned) the backend outlives its pools */
  char          *address;
  char          *host;
  guint16        port;
  BpPool        *pool;      /* (owned) */
  guint          in_use;
};

struct _BpBoltLease
{
  BpBoltBackend    *backend;  /* (owned): keeps the server pools alive */
  ServerPool       *server;   /* (unowned) */
  BpPoolItem       *item;
  BpBoltConnection *conn;     /* (unowned): the item's resource */
};

/* ---------------------------------------------------------------------- */
/* Failure classification                                                  */

/**
 * bp_bolt_classify_failure:
 * @error: an error of a bolt operation
 * @user_data: unused
 *
 * Returns: how BpRetry and BpBreaker judge @error
 */
BpFailureKind
bp_bolt_classify_failure (const GError *error,
                          gpointer      user_data)
{
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return BP_FAILURE_IGNORE;
  if (error->domain == BP_ERROR)
    {
      switch (error->code)
        {
        case BP_ERROR_INVALID_ARGUMENT:
        case BP_ERROR_LIMIT_EXCEEDED:
        case BP_ERROR_PERMISSION_DENIED:
        case BP_ERROR_NOT_FOUND:
        case BP_ERROR_CANCELLED:
        case BP_ERROR_POOL_EXHAUSTED:
        case BP_ERROR_CIRCUIT_OPEN:
          return BP_FAILURE_IGNORE;
        case BP_ERROR_FAILED:
          /* client-side misuse: a failed transaction, a busy connection */
          return BP_FAILURE_IGNORE;
        default:
          break;
        }
    }
  switch (bp_bolt_error_classify (error))
    {
    case BP_BOLT_ERROR_CLASS_TRANSIENT:
      return BP_FAILURE_RETRYABLE;
    case BP_BOLT_ERROR_CLASS_CLIENT:
      return BP_FAILURE_IGNORE;
    case BP_BOLT_ERROR_CLASS_DATABASE:
      return BP_FAILURE_FATAL;
    case BP_BOLT_ERROR_CLASS_COMMIT_UNKNOWN:
      /* never retried, even for idempotent work */
      return BP_FAILURE_FATAL;
    case BP_BOLT_ERROR_CLASS_CONNECTION_LOST:
      if (g_str_has_prefix (error->message, "Could not connect") ||
          g_str_has_prefix (error->message, BP_BOLT_OPEN_TIMEOUT_PREFIX))
        return BP_FAILURE_RETRYABLE;   /* nothing was sent */
      return BP_FAILURE_AMBIGUOUS;
    case BP_BOLT_ERROR_CLASS_OTHER:
    default:
      return bp_failure_kind_from_error (error);
    }
}

static gboolean
is_not_a_leader (const GError *error)
{
  g_autofree char *code = bp_bolt_error_dup_code (error);

  return code != NULL && (g_str_equal (code, "Neo.ClientError.Cluster.NotALeader") ||
                          g_str_equal (code, "Neo.ClientError.General.ForbiddenOnReadOnlyDatabase"));
}

/* The retry predicate of managed transactions (BpBoltTxRetry), as the
 * drivers decide it: transient errors, and a connection lost before COMMIT
 * (ServiceUnavailable/SessionExpired in the drivers), are retried; client
 * errors, Transaction.Terminated/LockClientStopped (client errors since
 * Neo4j 5), database errors and "commit outcome unknown" are not. In a
 * routed cluster a member that is no longer the leader (NotALeader,
 * ForbiddenOnReadOnlyDatabase) has left the writers by the time this runs
 * (bp_bolt_backend_release()), so the retry asks for a fresh routing table
 * and writes to the new leader. */
static BpFailureKind
tx_retry_classify (const GError *error,
                   gpointer      user_data)
{
  BpBoltBackend *self = user_data;

  if (self->stopped || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return BP_FAILURE_IGNORE;
  if (self->uri != NULL && self->uri->routing && is_not_a_leader (error))
    return BP_FAILURE_RETRYABLE;
  switch (bp_bolt_error_classify (error))
    {
    case BP_BOLT_ERROR_CLASS_TRANSIENT:
      return BP_FAILURE_RETRYABLE;
    case BP_BOLT_ERROR_CLASS_CONNECTION_LOST:
      return BP_FAILURE_AMBIGUOUS;
    case BP_BOLT_ERROR_CLASS_COMMIT_UNKNOWN:
    case BP_BOLT_ERROR_CLASS_DATABASE:
      return BP_FAILURE_FATAL;
    case BP_BOLT_ERROR_CLASS_CLIENT:
    case BP_BOLT_ERROR_CLASS_OTHER:
    default:
      /* also the pool's acquisition timeout and an open breaker */
      return BP_FAILURE_IGNORE;
    }
}

static BpFailureKind
bp_bolt_backend_classify_error (BpBackend    *backend,
                                const GError *error)
{
  return bp_bolt_classify_failure (error, NULL);
}

/* ---------------------------------------------------------------------- */
/* Pools of connections, one per server                                    */

static BpBoltConnection *
new_connection (BpBoltBackend *self,
                const char    *host,
                guint16        port)
{
  BpBoltConnection *conn = bp_bolt_connection_new (host, port, self->uri->tls_mode);

  bp_bolt_connection_set_limits (conn, &self->limits);
  bp_bolt_connection_set_clock (conn, bp_backend_get_clock (BP_BACKEND (self)));
  bp_bolt_connection_set_open_timeout (conn, self->connect_timeout_ms);
  if (self->uri->routing_context != NULL)
    bp_bolt_connection_set_routing_context (conn, self->uri->routing_context);
  return conn;
}

static BpBoltAuth *
new_auth (BpBoltBackend *self)
{
  switch (self->auth_scheme)
    {
    case 0:
      return bp_bolt_auth_new_basic (self->user, self->password != NULL ? self->password : "", NULL);
    case 1:
      return bp_bolt_auth_new_bearer (self->password != NULL ? self->password : "");
    default:
      return bp_bolt_auth_new_none ();
    }
}

/* Pool context: a new connection is open (or not). */
static void
pool_opened_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpBoltConnection *conn = BP_BOLT_CONNECTION (object);
  GError *error = NULL;

  if (!bp_bolt_connection_open_finish (conn, result, &error))
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
  ServerPool *server = user_data;
  g_autoptr(BpBoltConnection) conn = new_connection (server->backend, server->host, server->port);
  g_autoptr(BpBoltAuth) auth = new_auth (server->backend);
  GTask *task = g_task_new (NULL, cancellable, callback, callback_data);

  g_task_set_source_tag (task, pool_create_async);
  bp_bolt_connection_open_async (conn, auth, cancellable, pool_opened_cb, task);
}

static gpointer
pool_create_finish (gpointer       user_data,
                    GAsyncResult  *result,
                    GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Pool context: RESET proves an idle connection still works. */
static void
pool_validated_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!bp_bolt_connection_reset_finish (BP_BOLT_CONNECTION (object), result, &error))
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
  ServerPool *server = user_data;
  BpBoltConnection *conn = resource;
  GTask *task = g_task_new (NULL, cancellable, callback, callback_data);

  g_task_set_source_tag (task, pool_validate_async);
  /* A connection the server closed while idle knows already: its read is
   * always pending. */
  if (!bp_bolt_connection_is_idle (conn))
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, BP_BOLT_CONNECTION_LOST_PREFIX ": %s",
                               bp_bolt_connection_get_address (conn));
      g_object_unref (task);
      return;
    }
  /* Only a connection idle for long gets a round trip (a half-open TCP
   * connection shows no error until something is sent). */
  if (bp_clock_get_time (bp_backend_get_clock (BP_BACKEND (server->backend))) -
      bp_bolt_connection_get_last_used_time (conn) < LIVENESS_CHECK_AFTER_US)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  bp_bolt_connection_reset_async (conn, cancellable, pool_validated_cb, task);
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
  return bp_bolt_connection_is_idle (resource);
}

static void
pool_destroy (gpointer user_data,
              gpointer resource)
{
  BpBoltConnection *conn = resource;

  /* GOODBYE and close; the task keeps the connection alive until done */
  bp_bolt_connection_close_async (conn, NULL, NULL, NULL);
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

static void
server_pool_free (ServerPool *server)
{
  g_clear_object (&server->pool);
  g_free (server->address);
  g_free (server->host);
  g_free (server);
}

static ServerPool *
get_server_pool (BpBoltBackend *self,
                 const char    *address,
                 GError       **error)
{
  const BpBackendPoolConfig *config = bp_backend_get_pool_config (BP_BACKEND (self));
  ServerPool *server = g_hash_table_lookup (self->pools, address);

  if (server != NULL)
    return server;
  server = g_new0 (ServerPool, 1);
  server->backend = self;
  server->address = g_strdup (address);
  if (!bp_bolt_split_address (address, &server->host, &server->port, error))
    {
      server_pool_free (server);
      return NULL;
    }
  server->pool = bp_pool_new (&pool_funcs, server, NULL,
                              "clock", bp_backend_get_clock (BP_BACKEND (self)),
                              "min", clamp_uint (config->min),
                              "max", clamp_uint (config->max),
                              "acquire-timeout-ms", clamp_uint (config->acquire_timeout_ms),
                              "create-timeout-ms", self->connect_timeout_ms + 1000,
                              "idle-timeout-ms", clamp_uint (config->idle_timeout_ms),
                              "max-lifetime-ms", clamp_uint (config->max_lifetime_ms),
                              "max-uses", clamp_uint (config->max_uses),
                              /* every checkout: catches a connection the server closed */
                              "validate-after-idle-ms", 0,
                              NULL);
  g_hash_table_insert (self->pools, server->address, server);
  return server;
}

/* ---------------------------------------------------------------------- */
/* Routing tables (neo4j:// only)                                          */

typedef struct
{
  BpBoltBackend *self;     /* (owned) */
  char      *database;     /* "" for the default */
  GPtrArray *routers;      /* (element-type utf8) still to try */
  GError    *last_error;   /* (nullable) */
  BpBoltConnection *conn;  /* (nullable) the one asking now */
} RefreshData;

static void
refresh_data_free (RefreshData *data)
{
  g_clear_object (&data->self);
  g_free (data->database);
  g_ptr_array_unref (data->routers);
  g_clear_error (&data->last_error);
  g_clear_object (&data->conn);
  g_free (data);
}

static void refresh_next (BpBoltBackend *self, RefreshData *data);

static void
refresh_complete (BpBoltBackend *self,
                  RefreshData   *data,
                  const GError  *error)
{
  g_autoptr(GPtrArray) waiters = NULL;
  g_autofree char *key = NULL;

  g_hash_table_steal_extended (self->refreshes, data->database, (gpointer *) &key, (gpointer *) &waiters);
  for (guint i = 0; waiters != NULL && i < waiters->len; i++)
    {
      GTask *task = g_ptr_array_index (waiters, i);

      if (error != NULL)
        g_task_return_error (task, g_error_copy (error));
      else
        g_task_return_boolean (task, TRUE);
    }
  refresh_data_free (data);
}

static void
refresh_route_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  RefreshData *data = user_data;
  BpBoltConnection *conn = BP_BOLT_CONNECTION (object);
  BpBoltBackend *self = data->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) rt = bp_bolt_connection_route_finish (conn, result, &error);
  g_autoptr(BpBoltRoutingTable) table = NULL;

  bp_bolt_connection_close_async (conn, NULL, NULL, NULL);
  g_clear_object (&data->conn);
  if (rt != NULL)
    table = bp_bolt_routing_table_new (rt, bp_backend_get_clock (BP_BACKEND (self)), &error);
  if (table == NULL)
    {
      g_clear_error (&data->last_error);
      data->last_error = g_steal_pointer (&error);
      refresh_next (self, data);
      return;
    }
  g_debug ("Bolt backend %s: routing table for '%s': ttl %" G_GINT64_FORMAT " s",
           bp_backend_get_name (BP_BACKEND (self)), data->database, bp_bolt_routing_table_get_ttl (table));
  g_hash_table_replace (self->tables, g_strdup (data->database), g_steal_pointer (&table));
  refresh_complete (self, data, NULL);
}

static void
refresh_opened_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  RefreshData *data = user_data;
  BpBoltConnection *conn = BP_BOLT_CONNECTION (object);
  BpBoltBackend *self = data->self;
  g_autoptr(GError) error = NULL;

  if (!bp_bolt_connection_open_finish (conn, result, &error))
    {
      g_clear_object (&data->conn);
      g_clear_error (&data->last_error);
      data->last_error = g_steal_pointer (&error);
      refresh_next (self, data);
      return;
    }
  bp_bolt_connection_route_async (conn, NULL, NULL, *data->database ? data->database : NULL, NULL,
                                  self->stop_cancellable, refresh_route_cb, data);
}

/* Asks the next router for a table; each on a short-lived connection. */
static void
refresh_next (BpBoltBackend *self,
              RefreshData   *data)
{
  g_autofree char *address = NULL;
  g_autofree char *host = NULL;
  g_autoptr(BpBoltAuth) auth = NULL;
  guint16 port;

  if (data->routers->len == 0 || self->stopped)
    {
      g_autoptr(GError) error = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                             _("Could not obtain a routing table for database '%s': %s"),
                                             *data->database ? data->database : _("(default)"),
                                             data->last_error ? data->last_error->message : _("no router"));
      refresh_complete (self, data, error);
      return;
    }
  address = g_ptr_array_steal_index (data->routers, 0);
  if (!bp_bolt_split_address (address, &host, &port, &data->last_error))
    {
      refresh_next (self, data);
      return;
    }
  data->conn = new_connection (self, host, port);
  auth = new_auth (self);
  bp_bolt_connection_open_async (data->conn, auth, self->stop_cancellable, refresh_opened_cb, data);
}

static void
refresh_table_async (BpBoltBackend       *self,
                     const char          *database,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  const char *key = database != NULL ? database : "";
  GPtrArray *waiters = g_hash_table_lookup (self->refreshes, key);
  RefreshData *data;
  BpBoltRoutingTable *old;
  g_autofree char *seed = NULL;

  g_task_set_source_tag (task, refresh_table_async);
  if (waiters != NULL)
    {
      g_ptr_array_add (waiters, task);   /* one refresh at a time per database */
      return;
    }
  waiters = g_ptr_array_new_with_free_func (g_object_unref);
  g_ptr_array_add (waiters, task);
  g_hash_table_insert (self->refreshes, g_strdup (key), waiters);

  data = g_new0 (RefreshData, 1);
  data->self = g_object_ref (self);
  data->database = g_strdup (key);
  data->routers = g_ptr_array_new_with_free_func (g_free);
  old = g_hash_table_lookup (self->tables, key);
  if (old != NULL)
    {
      guint n;
      const char * const *routers = bp_bolt_routing_table_get_servers (old, BP_BOLT_ROLE_ROUTE, &n);
      for (guint i = 0; i < n; i++)
        g_ptr_array_add (data->routers, g_strdup (routers[i]));
    }
  /* the address of the URI is always tried, last */
  g_variant_lookup (self->uri->routing_context, "address", "s", &seed);
  if (seed != NULL)
    g_ptr_array_add (data->routers, g_steal_pointer (&seed));
  refresh_next (self, data);
}

static gboolean
refresh_table_finish (BpBoltBackend  *self,
                      GAsyncResult   *result,
                      GError        **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------- */
/* Acquire and release                                                     */

BpBoltConnection *
bp_bolt_lease_get_connection (BpBoltLease *lease)
{
  return lease->conn;
}

const char *
bp_bolt_lease_get_address (BpBoltLease *lease)
{
  return lease->server->address;
}

const char *
bp_bolt_backend_get_database (BpBoltBackend *self)
{
  return self->database;
}

gint64
bp_bolt_backend_get_fetch_size (BpBoltBackend *self)
{
  return self->fetch_size;
}

guint
bp_bolt_backend_get_max_records (BpBoltBackend *self)
{
  return self->max_records;
}

typedef struct
{
  gboolean    write;
  char       *database;   /* (nullable) */
  char       *acquirer;
  ServerPool *server;     /* (unowned) */
  gboolean    refreshed;
} AcquireData;

static void
acquire_data_free (AcquireData *data)
{
  g_free (data->database);
  g_free (data->acquirer);
  g_free (data);
}

static guint
server_in_use (const char *address,
               gpointer    user_data)
{
  BpBoltBackend *self = user_data;
  ServerPool *server = g_hash_table_lookup (self->pools, address);

  return server != NULL ? server->in_use : 0;
}

static void acquire_step (GTask *task);

static void
acquire_item_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpBoltBackend *self = g_task_get_source_object (task);
  AcquireData *data = g_task_get_task_data (task);
  GError *error = NULL;
  BpPoolItem *item = bp_pool_acquire_finish (BP_POOL (object), result, &error);
  BpBoltLease *lease;

  if (item == NULL)
    {
      if (self->uri->routing && bp_bolt_error_classify (error) == BP_BOLT_ERROR_CLASS_CONNECTION_LOST)
        {
          /* this member is down: forget it until the next refresh */
          GHashTableIter iter;
          gpointer table;

          g_hash_table_iter_init (&iter, self->tables);
          while (g_hash_table_iter_next (&iter, NULL, &table))
            bp_bolt_routing_table_remove_server (table, data->server->address);
        }
      g_task_return_error (task, error);
      return;
    }
  lease = g_new0 (BpBoltLease, 1);
  lease->backend = g_object_ref (self);
  lease->server = data->server;
  lease->item = item;
  lease->conn = bp_pool_item_get_resource (item);
  data->server->in_use++;
  g_task_return_pointer (task, lease, NULL);
}

static void
acquire_refreshed_cb (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  AcquireData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!refresh_table_finish (BP_BOLT_BACKEND (object), result, &error))
    {
      g_task_return_error (task, error);
      return;
    }
  data->refreshed = TRUE;
  acquire_step (g_steal_pointer (&task));
}

static void
acquire_step (GTask *task)
{
  BpBoltBackend *self = g_task_get_source_object (task);
  AcquireData *data = g_task_get_task_data (task);
  GError *error = NULL;
  g_autofree char *address = NULL;

  if (self->stopped)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, _("backend %s is stopping"),
                               bp_backend_get_name (BP_BACKEND (self)));
      g_object_unref (task);
      return;
    }
  if (self->uri->routing)
    {
      BpBoltRole role = data->write ? BP_BOLT_ROLE_WRITE : BP_BOLT_ROLE_READ;
      BpBoltRoutingTable *table = g_hash_table_lookup (self->tables, data->database ? data->database : "");

      if (table == NULL || bp_bolt_routing_table_is_stale_for (table, role))
        {
          if (data->refreshed)
            {
              g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE,
                                       data->write ? _("The routing table has no writer")
                                                   : _("The routing table has no reader"));
              g_object_unref (task);
              return;
            }
          refresh_table_async (self, data->database, g_task_get_cancellable (task), acquire_refreshed_cb, task);
          return;
        }
      address = bp_bolt_routing_table_select (table, role, self->policy, server_in_use, self);
    }
  else
    address = g_strdup_printf (strchr (self->uri->host, ':') ? "[%s]:%u" : "%s:%u",
                               self->uri->host, self->uri->port);

  data->server = get_server_pool (self, address, &error);
  if (data->server == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  bp_pool_acquire_async (data->server->pool, data->acquirer, g_task_get_cancellable (task),
                         acquire_item_cb, task);
}

/**
 * bp_bolt_backend_acquire_async:
 * @self: a started backend
 * @write: %TRUE for a write (routed to a writer)
 * @database: (nullable): the database, for routing
 * @acquirer: who asks (a bus name), for the pool's leak detection
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with a lease
 * @user_data: data for @callback
 */
void
bp_bolt_backend_acquire_async (BpBoltBackend       *self,
                               gboolean             write,
                               const char          *database,
                               const char          *acquirer,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  AcquireData *data = g_new0 (AcquireData, 1);

  g_task_set_source_tag (task, bp_bolt_backend_acquire_async);
  data->write = write;
  data->database = g_strdup (database);
  data->acquirer = g_strdup (acquirer != NULL ? acquirer : "backplaned");
  g_task_set_task_data (task, data, (GDestroyNotify) acquire_data_free);
  if (self->uri == NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, _("backend %s is not configured"),
                               bp_backend_get_name (BP_BACKEND (self)));
      g_object_unref (task);
      return;
    }
  acquire_step (task);
}

/**
 * bp_bolt_backend_acquire_finish:
 * @self: the backend
 * @result: the #GAsyncResult
 * @error: a #GError
 *
 * Returns: (transfer full): the lease
 */
BpBoltLease *
bp_bolt_backend_acquire_finish (BpBoltBackend  *self,
                                GAsyncResult   *result,
                                GError        **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
lease_give_back (BpBoltLease *lease)
{
  BpBoltConnection *conn = lease->conn;

  lease->server->in_use--;
  bp_pool_release (lease->server->pool, lease->item,
                   !bp_bolt_connection_is_defunct (conn) && bp_bolt_connection_is_idle (conn));
  g_object_unref (lease->backend);
  g_free (lease);
}

static void
lease_idle_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  BpBoltLease *lease = user_data;

  bp_bolt_connection_wait_idle_finish (BP_BOLT_CONNECTION (object), result, NULL);
  lease_give_back (lease);
}

/**
 * bp_bolt_backend_release:
 * @self: the backend
 * @lease: (transfer full): what bp_bolt_backend_acquire_finish() gave
 * @error: (nullable): how the operation failed, for the routing table
 *
 * Gives the connection back once its last request (an automatic RESET, a
 * DISCARD) is answered; a connection left broken or inside a transaction is
 * destroyed by the pool.
 */
void
bp_bolt_backend_release (BpBoltBackend *self,
                         BpBoltLease   *lease,
                         const GError  *error)
{
  if (error != NULL && self->uri != NULL && self->uri->routing)
    {
      gboolean lost = bp_bolt_error_classify (error) == BP_BOLT_ERROR_CLASS_CONNECTION_LOST;
      gboolean not_leader = is_not_a_leader (error);
      GHashTableIter iter;
      gpointer table;

      g_hash_table_iter_init (&iter, self->tables);
      while ((lost || not_leader) && g_hash_table_iter_next (&iter, NULL, &table))
        {
          if (lost)
            bp_bolt_routing_table_remove_server (table, lease->server->address);
          else
            {
              g_debug ("Bolt backend %s: %s is no longer a writer",
                       bp_backend_get_name (BP_BACKEND (self)), lease->server->address);
              bp_bolt_routing_table_remove_writer (table, lease->server->address);
            }
        }
    }
  if (bp_bolt_connection_in_transaction (lease->conn) && !bp_bolt_connection_is_defunct (lease->conn))
    bp_bolt_connection_rollback_async (lease->conn, NULL, NULL, NULL);
  bp_bolt_connection_wait_idle_async (lease->conn, NULL, lease_idle_cb, lease);
}

/* ---------------------------------------------------------------------- */
/* Graph operations under retry and breaker                                */

typedef enum
{
  OP_RUN,
  OP_EXECUTE,
  OP_HEALTH,
} OpKind;

typedef struct
{
  BpBoltBackend *self;        /* (owned) */
  BpCall        *call;        /* (owned) (nullable): none for health checks */
  GTask         *task;        /* (owned) (nullable): health checks */
  OpKind         kind;
  char          *cypher;      /* (owned) (nullable) */
  GVariant      *params;      /* (owned) (nullable) */
  GVariant      *statements;  /* (owned) (nullable) a(sa{sv}) */
  BpBoltOptions  options;
  gint64         started_us;
  guint          attempts;
} GraphOp;

typedef struct
{
  GraphOp         *op;        /* (borrowed): outlives the attempt */
  GTask           *task;      /* (owned) */
  BpBoltLease     *lease;     /* (nullable) */
  BpBreakerPermit *permit;    /* (nullable) */
  GPtrArray       *results;   /* (element-type GVariant) execute: (asaa{sv}) each */
  guint            index;
} Attempt;

static void
graph_op_free (GraphOp *op)
{
  g_clear_object (&op->self);
  g_clear_object (&op->call);
  g_clear_object (&op->task);
  g_free (op->cypher);
  g_clear_pointer (&op->params, g_variant_unref);
  g_clear_pointer (&op->statements, g_variant_unref);
  bp_bolt_options_clear (&op->options);
  g_free (op);
}

static GraphOp *
graph_op_new (BpBoltBackend *self,
              BpCall        *call,
              OpKind         kind)
{
  GraphOp *op = g_new0 (GraphOp, 1);

  op->self = g_object_ref (self);
  op->call = call != NULL ? g_object_ref (call) : NULL;
  op->kind = kind;
  op->started_us = bp_clock_get_time (bp_backend_get_clock (BP_BACKEND (self)));
  return op;
}

/* Ends an attempt: the connection goes back, the breaker learns the outcome.
 * Takes @reply (floating or full) and @error. */
static void
attempt_done (Attempt  *attempt,
              GVariant *reply,
              GError   *error)
{
  BpBoltBackend *self = attempt->op->self;
  GTask *task = g_steal_pointer (&attempt->task);

  if (attempt->lease != NULL)
    bp_bolt_backend_release (self, g_steal_pointer (&attempt->lease), error);
  if (attempt->permit != NULL)
    {
      if (error != NULL)
        bp_breaker_permit_release_error (g_steal_pointer (&attempt->permit), error);
      else
        bp_breaker_permit_release (g_steal_pointer (&attempt->permit), BP_BREAKER_OUTCOME_SUCCESS);
    }
  g_clear_pointer (&attempt->results, g_ptr_array_unref);
  g_free (attempt);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_variant_ref_sink (reply), (GDestroyNotify) g_variant_unref);
  g_object_unref (task);
}

static void
attempt_run_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Attempt *attempt = user_data;
  GError *error = NULL;
  GVariant *reply = bp_bolt_run_collect_finish (BP_BOLT_CONNECTION (object), result, &error);

  attempt_done (attempt, reply, error);
}

static void execute_next (Attempt *attempt);

static void
execute_committed_cb (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  Attempt *attempt = user_data;
  GError *error = NULL;
  g_autofree char *bookmark = NULL;
  GVariant *results;

  if (!bp_bolt_connection_commit_finish (BP_BOLT_CONNECTION (object), result, &bookmark, &error))
    {
      attempt_done (attempt, NULL, error);
      return;
    }
  results = g_variant_new_array (G_VARIANT_TYPE ("(asaa{sv})"),
                                 (GVariant **) attempt->results->pdata, attempt->results->len);
  attempt_done (attempt, g_variant_new ("(@a(asaa{sv})s)", results, bookmark != NULL ? bookmark : ""), NULL);
}

static void
execute_statement_cb (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  Attempt *attempt = user_data;
  GError *error = NULL;
  g_autoptr(GVariant) reply = bp_bolt_run_collect_finish (BP_BOLT_CONNECTION (object), result, &error);
  g_autoptr(GVariant) keys = NULL;
  g_autoptr(GVariant) records = NULL;

  if (reply == NULL)
    {
      attempt_done (attempt, NULL, error);
      return;
    }
  keys = g_variant_get_child_value (reply, 0);
  records = g_variant_get_child_value (reply, 1);
  g_ptr_array_add (attempt->results, g_variant_ref_sink (g_variant_new ("(@as@aa{sv})", keys, records)));
  attempt->index++;
  execute_next (attempt);
}

static void
execute_next (Attempt *attempt)
{
  GraphOp *op = attempt->op;
  BpBoltConnection *conn = bp_bolt_lease_get_connection (attempt->lease);
  GCancellable *cancellable = g_task_get_cancellable (attempt->task);

  if (attempt->index < g_variant_n_children (op->statements))
    {
      const char *cypher;
      g_autoptr(GVariant) params = NULL;

      g_variant_get_child (op->statements, attempt->index, "(&s@a{sv})", &cypher, &params);
      bp_bolt_run_collect_async (conn, cypher, params, NULL, op->options.fetch_size, op->options.max_records,
                                 cancellable, execute_statement_cb, attempt);
      return;
    }
  bp_bolt_connection_commit_async (conn, NULL, execute_committed_cb, attempt);
}

static void
execute_begun_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Attempt *attempt = user_data;
  GError *error = NULL;

  if (!bp_bolt_connection_begin_finish (BP_BOLT_CONNECTION (object), result, &error))
    {
      attempt_done (attempt, NULL, error);
      return;
    }
  execute_next (attempt);
}

/* Main context: a pooled connection for this attempt. */
static void
attempt_acquired_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  Attempt *attempt = user_data;
  GraphOp *op = attempt->op;
  GError *error = NULL;
  GCancellable *cancellable = g_task_get_cancellable (attempt->task);
  BpBoltConnection *conn;

  attempt->lease = bp_bolt_backend_acquire_finish (BP_BOLT_BACKEND (object), result, &error);
  if (attempt->lease == NULL)
    {
      attempt_done (attempt, NULL, error);
      return;
    }
  conn = bp_bolt_lease_get_connection (attempt->lease);

  /* breaker.timeout-ms is the default transaction timeout (tx_timeout):
   * the server aborts the transaction, and the call fails. */
  if (op->options.timeout_ms == 0)
    op->options.timeout_ms = (guint) bp_backend_get_resilience_config (BP_BACKEND (op->self))->breaker_timeout_ms;

  switch (op->kind)
    {
    case OP_RUN:
      bp_bolt_run_collect_async (conn, op->cypher, op->params, bp_bolt_options_to_extra (&op->options),
                                 op->options.fetch_size, op->options.max_records, cancellable,
                                 attempt_run_cb, attempt);
      break;
    case OP_HEALTH:
      bp_bolt_run_collect_async (conn, "RETURN 1 AS ok", NULL, bp_bolt_options_to_extra (&op->options),
                                 1, 1, cancellable, attempt_run_cb, attempt);
      break;
    case OP_EXECUTE:
      attempt->results = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
      attempt->index = 0;
      bp_bolt_connection_begin_async (conn, bp_bolt_options_to_extra (&op->options), NULL,
                                      execute_begun_cb, attempt);
      break;
    default:
      g_assert_not_reached ();
    }
}

/* BpOperation.start: one attempt = breaker permit + pooled connection. */
static void
attempt_start (gpointer             op_data,
               GCancellable        *cancellable,
               GAsyncReadyCallback  callback,
               gpointer             callback_data)
{
  GraphOp *op = op_data;
  BpBoltBackend *self = op->self;
  Attempt *attempt = g_new0 (Attempt, 1);
  GError *error = NULL;

  attempt->op = op;
  attempt->task = g_task_new (NULL, cancellable, callback, callback_data);
  g_task_set_source_tag (attempt->task, attempt_start);

  attempt->permit = bp_breaker_try_acquire (bp_backend_get_breaker (BP_BACKEND (self)), &error);
  if (attempt->permit == NULL)
    {
      attempt_done (attempt, NULL, error);
      return;
    }
  bp_bolt_backend_acquire_async (self, op->options.write, op->options.database,
                                 op->call != NULL ? bp_call_get_sender (op->call) : "health",
                                 cancellable, attempt_acquired_cb, attempt);
}

static gboolean
attempt_finish (gpointer       op_data,
                GAsyncResult  *result,
                gpointer      *out_result,
                GError       **error)
{
  GVariant *reply = g_task_propagate_pointer (G_TASK (result), error);

  if (reply == NULL)
    return FALSE;
  if (out_result != NULL)
    *out_result = reply;
  else
    g_variant_unref (reply);
  return TRUE;
}

static const BpOperation graph_operation = {
  attempt_start,
  attempt_finish,
  (GDestroyNotify) g_variant_unref,
};

static void
note_outcome (BpBoltBackend *self,
              gint64         started_us,
              const GError  *error)
{
  BpBackend *backend = BP_BACKEND (self);
  gint64 now = bp_clock_get_time (bp_backend_get_clock (backend));
  BpBackendState state = bp_backend_get_state (backend);

  bp_backend_record_latency (backend, now - started_us, error == NULL);
  if (state == BP_BACKEND_STATE_STOPPING || state == BP_BACKEND_STATE_STARTING)
    return;
  if (error == NULL)
    {
      if (state != BP_BACKEND_STATE_READY)
        bp_backend_set_state (backend, BP_BACKEND_STATE_READY, NULL);
    }
  else if (bp_bolt_error_classify (error) == BP_BOLT_ERROR_CLASS_CONNECTION_LOST &&
           g_str_has_prefix (error->message, "Could not connect"))
    bp_backend_set_state (backend, BP_BACKEND_STATE_UNAVAILABLE, error->message);
}

/* Main context: all attempts are over. */
static void
graph_op_done_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GraphOp *op = user_data;
  g_autoptr(GError) error = NULL;
  GVariant *reply = NULL;

  if (BP_IS_BOLT_TX_RETRY (object))
    bp_bolt_tx_retry_run_finish (BP_BOLT_TX_RETRY (object), result, (gpointer *) &reply, &op->attempts, &error);
  else
    bp_retry_run_finish (BP_RETRY (object), result, (gpointer *) &reply, &op->attempts, &error);
  note_outcome (op->self, op->started_us, error);

  if (op->task != NULL)
    {
      g_task_set_task_data (op->task, GUINT_TO_POINTER (op->attempts), NULL);
      if (reply == NULL)
        g_task_return_error (op->task, g_steal_pointer (&error));
      else
        g_task_return_pointer (op->task, reply, (GDestroyNotify) g_variant_unref);
    }
  else if (reply == NULL)
    bp_call_return_error (op->call, error);
  else
    {
      bp_call_return_value (op->call, reply);
      g_variant_unref (reply);
    }
  graph_op_free (op);
}

/* Managed transactions under the drivers' retry loop, the rest under the
 * backend's BpRetry (retry.* keys). */
static void
graph_op_run (GraphOp       *op,
              BpIdempotency  idempotency)
{
  GCancellable *cancellable = op->call != NULL ? bp_call_get_cancellable (op->call)
                                               : g_task_get_cancellable (op->task);

  if (op->kind == OP_EXECUTE)
    bp_bolt_tx_retry_run_async (op->self->tx_retry, &graph_operation, op, NULL,
                                cancellable, graph_op_done_cb, op);
  else
    bp_retry_run_async (bp_backend_get_retry (BP_BACKEND (op->self)), &graph_operation, op, NULL, idempotency,
                        cancellable, graph_op_done_cb, op);
}

static gboolean
reply_error (BpCall *call,
             GError *error)
{
  /* (transfer full) call and error */
  bp_call_return_error (call, error);
  g_error_free (error);
  g_object_unref (call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------------------------------------------------------------------- */
/* D-Bus handlers                                                          */

#define RUN_OPTIONS (BP_BOLT_OPT_DATABASE | BP_BOLT_OPT_ACCESS_MODE | BP_BOLT_OPT_BOOKMARKS | \
                     BP_BOLT_OPT_TIMEOUT | BP_BOLT_OPT_FETCH_SIZE | BP_BOLT_OPT_TX_METADATA)

static gboolean
handle_run (BpDBusGraph           *iface,
            GDBusMethodInvocation *invocation,
            const char            *cypher,
            GVariant              *params,
            GVariant              *options,
            gpointer               user_data)
{
  BpBoltBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  GraphOp *op = graph_op_new (self, call, OP_RUN);
  GError *error = NULL;

  if (!bp_bolt_check_query ("cypher", cypher, &error) ||
      !bp_bolt_options_parse (options, RUN_OPTIONS | BP_BOLT_OPT_MAX_RECORDS, self->database,
                              self->fetch_size, self->max_records, &op->options, &error))
    {
      graph_op_free (op);
      return reply_error (call, error);
    }
  g_object_unref (call);
  op->cypher = g_strdup (cypher);
  op->params = g_variant_ref (params);
  /* a read can be run again; an auto-commit write cannot */
  graph_op_run (op, op->options.write ? BP_IDEMPOTENCY_UNSAFE : BP_IDEMPOTENCY_IDEMPOTENT);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Validates a managed transaction's statements and options into @op. */
static gboolean
execute_op_prepare (GraphOp   *op,
                    GVariant  *statements,
                    GVariant  *options,
                    gboolean   write,
                    GError   **error)
{
  BpBoltBackend *self = op->self;
  gsize n = g_variant_n_children (statements);

  if (n == 0 || n > self->max_statements)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("statements: give 1 to %u statements (max-statements)"), self->max_statements);
      return FALSE;
    }
  for (gsize i = 0; i < n; i++)
    {
      const char *cypher;
      g_autofree char *field = g_strdup_printf ("statements[%" G_GSIZE_FORMAT "]", i);

      g_variant_get_child (statements, i, "(&s@a{sv})", &cypher, NULL);
      if (!bp_bolt_check_query (field, cypher, error))
        return FALSE;
    }
  if (!bp_bolt_options_parse (options, BP_BOLT_OPT_DATABASE | BP_BOLT_OPT_BOOKMARKS | BP_BOLT_OPT_TIMEOUT |
                                       BP_BOLT_OPT_TX_METADATA | BP_BOLT_OPT_MAX_RECORDS | BP_BOLT_OPT_FETCH_SIZE,
                              self->database, self->fetch_size, self->max_records, &op->options, error))
    return FALSE;
  op->options.write = write;
  op->statements = g_variant_ref (statements);
  return TRUE;
}

static gboolean
handle_execute (BpBoltBackend         *self,
                GDBusMethodInvocation *invocation,
                GVariant              *statements,
                GVariant              *options,
                gboolean               write)
{
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  GraphOp *op = graph_op_new (self, call, OP_EXECUTE);
  GError *error = NULL;

  if (!execute_op_prepare (op, statements, options, write, &error))
    {
      graph_op_free (op);
      return reply_error (call, error);
    }
  g_object_unref (call);
  /* a managed transaction is all or nothing: it may run again */
  graph_op_run (op, BP_IDEMPOTENCY_IDEMPOTENT);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/**
 * bp_bolt_backend_execute_async:
 * @self: a configured backend
 * @statements: `a(sa{sv})`, as ExecuteRead/ExecuteWrite take them
 * @options: `a{sv}`, as ExecuteRead/ExecuteWrite take them
 * @write: %TRUE for ExecuteWrite
 * @cancellable: (nullable): a #GCancellable
 * @callback: called in the caller's main context when done
 * @user_data: data for @callback
 *
 * What ExecuteRead/ExecuteWrite do, without D-Bus: one managed transaction
 * under the transaction retry loop.
 */
void
bp_bolt_backend_execute_async (BpBoltBackend       *self,
                               GVariant            *statements,
                               GVariant            *options,
                               gboolean             write,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  GraphOp *op = graph_op_new (self, NULL, OP_EXECUTE);
  GError *error = NULL;

  op->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (op->task, bp_bolt_backend_execute_async);
  if (!execute_op_prepare (op, statements, options, write, &error))
    {
      g_task_return_error (op->task, error);
      graph_op_free (op);
      return;
    }
  graph_op_run (op, BP_IDEMPOTENCY_IDEMPOTENT);
}

/**
 * bp_bolt_backend_execute_finish:
 * @self: the backend
 * @result: the #GAsyncResult
 * @out_attempts: (out) (optional): how many attempts ran
 * @error: a #GError
 *
 * Returns: (transfer full): `(a(asaa{sv})s)`, the results and the bookmark
 */
GVariant *
bp_bolt_backend_execute_finish (BpBoltBackend  *self,
                                GAsyncResult   *result,
                                guint          *out_attempts,
                                GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  if (out_attempts != NULL)
    *out_attempts = GPOINTER_TO_UINT (g_task_get_task_data (G_TASK (result)));
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * bp_bolt_backend_get_tx_retry:
 * @self: the backend
 *
 * Returns: (transfer none): the retry loop of managed transactions
 */
BpBoltTxRetry *
bp_bolt_backend_get_tx_retry (BpBoltBackend *self)
{
  return self->tx_retry;
}

static gboolean
handle_execute_read (BpDBusGraph           *iface,
                     GDBusMethodInvocation *invocation,
                     GVariant              *statements,
                     GVariant              *options,
                     gpointer               user_data)
{
  return handle_execute (user_data, invocation, statements, options, FALSE);
}

static gboolean
handle_execute_write (BpDBusGraph           *iface,
                      GDBusMethodInvocation *invocation,
                      GVariant              *statements,
                      GVariant              *options,
                      gpointer               user_data)
{
  return handle_execute (user_data, invocation, statements, options, TRUE);
}

/* RunToFd: not retried (the records are on their way once it runs) */

typedef struct
{
  BpBoltBackend   *self;     /* (owned) */
  BpCall          *call;     /* (owned) */
  int              fd;       /* -1 once handed to the writer */
  BpBoltOptions    options;
  char            *cypher;
  GVariant        *params;   /* (owned) */
  BpBoltLease     *lease;    /* (nullable) */
  BpBreakerPermit *permit;   /* (nullable) */
  BpBoltStream    *stream;   /* (owned) (nullable) */
  gint64           started_us;
} ToFdOp;

static void
to_fd_op_free (ToFdOp *op)
{
  if (op->fd >= 0)
    close (op->fd);
  g_clear_object (&op->stream);
  g_clear_object (&op->call);
  g_clear_object (&op->self);
  bp_bolt_options_clear (&op->options);
  g_free (op->cypher);
  g_clear_pointer (&op->params, g_variant_unref);
  g_free (op);
}

static void
to_fd_op_end (ToFdOp       *op,
              const GError *error)
{
  g_clear_object (&op->stream);
  if (op->lease != NULL)
    bp_bolt_backend_release (op->self, g_steal_pointer (&op->lease), error);
  if (op->permit != NULL)
    {
      if (error != NULL)
        bp_breaker_permit_release_error (g_steal_pointer (&op->permit), error);
      else
        bp_breaker_permit_release (g_steal_pointer (&op->permit), BP_BREAKER_OUTCOME_SUCCESS);
    }
  note_outcome (op->self, op->started_us,
                error != NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? error : NULL);
  if (error != NULL && !bp_call_is_answered (op->call))
    bp_call_return_error (op->call, error);
  to_fd_op_free (op);
}

static void
to_fd_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  ToFdOp *op = user_data;
  g_autoptr(GError) error = NULL;

  bp_bolt_stream_to_fd_finish (BP_BOLT_STREAM (object), result, NULL, &error);
  to_fd_op_end (op, error);
}

static void
to_fd_started_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  ToFdOp *op = user_data;
  g_autoptr(GError) error = NULL;
  guint n;
  const char * const *keys;

  op->stream = bp_bolt_connection_run_finish (BP_BOLT_CONNECTION (object), result, &error);
  if (op->stream == NULL)
    {
      to_fd_op_end (op, error);
      return;
    }
  keys = bp_bolt_stream_get_keys (op->stream, &n);
  bp_call_return_value (op->call, g_variant_new ("(@as)", g_variant_new_strv (keys, n)));
  bp_bolt_stream_to_fd_async (op->stream, op->fd, bp_call_get_cancellable (op->call), to_fd_done_cb, op);
  op->fd = -1;
}

static void
to_fd_acquired_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  ToFdOp *op = user_data;
  g_autoptr(GError) error = NULL;

  op->lease = bp_bolt_backend_acquire_finish (BP_BOLT_BACKEND (object), result, &error);
  if (op->lease == NULL)
    {
      to_fd_op_end (op, error);
      return;
    }
  bp_bolt_connection_run_async (bp_bolt_lease_get_connection (op->lease), op->cypher, op->params,
                                bp_bolt_options_to_extra (&op->options), op->options.fetch_size,
                                bp_call_get_cancellable (op->call), to_fd_started_cb, op);
}

static gboolean
handle_run_to_fd (BpDBusGraph           *iface,
                  GDBusMethodInvocation *invocation,
                  GUnixFDList           *fd_list,
                  const char            *cypher,
                  GVariant              *params,
                  GVariant              *fd_handle,
                  GVariant              *options,
                  gpointer               user_data)
{
  BpBoltBackend *self = user_data;
  ToFdOp *op = g_new0 (ToFdOp, 1);
  GError *error = NULL;

  op->self = g_object_ref (self);
  op->call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  op->started_us = bp_clock_get_time (bp_backend_get_clock (BP_BACKEND (self)));
  op->fd = bp_call_steal_fd (op->call, fd_handle, &error);
  bp_bolt_close_passed_fds (invocation);
  if (op->fd < 0 ||
      !bp_bolt_check_query ("cypher", cypher, &error) ||
      !bp_bolt_options_parse (options, RUN_OPTIONS, self->database, self->fetch_size, self->max_records,
                              &op->options, &error))
    {
      bp_call_return_error (op->call, error);
      g_error_free (error);
      to_fd_op_free (op);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  op->cypher = g_strdup (cypher);
  op->params = g_variant_ref (params);
  op->permit = bp_breaker_try_acquire (bp_backend_get_breaker (BP_BACKEND (self)), &error);
  if (op->permit == NULL)
    {
      to_fd_op_end (op, error);
      g_error_free (error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  bp_bolt_backend_acquire_async (self, op->options.write, op->options.database, bp_call_get_sender (op->call),
                                 bp_call_get_cancellable (op->call), to_fd_acquired_cb, op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* BeginTransaction */

typedef struct
{
  BpBoltBackend *self;     /* (owned) */
  BpCall        *call;     /* (owned) */
  BpBoltOptions  options;
  BpBoltLease   *lease;    /* (nullable) */
} BeginOp;

static void
begin_op_free (BeginOp *op)
{
  g_clear_object (&op->call);
  g_clear_object (&op->self);
  bp_bolt_options_clear (&op->options);
  g_free (op);
}

static void
transaction_ended_cb (BpBoltTransaction *transaction,
                      gpointer           user_data)
{
  BpBoltBackend *self = user_data;

  g_hash_table_remove (self->transactions, transaction);
}

static void
begin_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  BeginOp *op = user_data;
  BpBoltBackend *self = op->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltTransaction) transaction = NULL;

  if (!bp_bolt_connection_begin_finish (BP_BOLT_CONNECTION (object), result, &error))
    {
      bp_bolt_backend_release (self, g_steal_pointer (&op->lease), error);
      bp_call_return_error (op->call, error);
      begin_op_free (op);
      return;
    }
  transaction = bp_bolt_transaction_new (self, g_steal_pointer (&op->lease), bp_call_get_sender (op->call),
                                         &op->options);
  if (!bp_bolt_transaction_export (transaction, &error))
    {
      bp_bolt_transaction_abort (transaction);
      bp_call_return_error (op->call, error);
      begin_op_free (op);
      return;
    }
  g_signal_connect (transaction, "ended", G_CALLBACK (transaction_ended_cb), self);
  g_hash_table_add (self->transactions, g_object_ref (transaction));
  bp_call_return_value (op->call, g_variant_new ("(o)", bp_bolt_transaction_get_path (transaction)));
  begin_op_free (op);
}

static void
begin_acquired_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  BeginOp *op = user_data;
  g_autoptr(GError) error = NULL;

  op->lease = bp_bolt_backend_acquire_finish (BP_BOLT_BACKEND (object), result, &error);
  if (op->lease == NULL)
    {
      bp_call_return_error (op->call, error);
      begin_op_free (op);
      return;
    }
  bp_bolt_connection_begin_async (bp_bolt_lease_get_connection (op->lease), bp_bolt_options_to_extra (&op->options),
                                  NULL, begin_done_cb, op);
}

static gboolean
handle_begin_transaction (BpDBusGraph           *iface,
                          GDBusMethodInvocation *invocation,
                          GVariant              *options,
                          gpointer               user_data)
{
  BpBoltBackend *self = user_data;
  BeginOp *op = g_new0 (BeginOp, 1);
  GError *error = NULL;

  op->self = g_object_ref (self);
  op->call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  if (bp_bolt_options_parse (options, BP_BOLT_OPT_DATABASE | BP_BOLT_OPT_ACCESS_MODE | BP_BOLT_OPT_BOOKMARKS |
                                      BP_BOLT_OPT_TIMEOUT | BP_BOLT_OPT_TX_METADATA | BP_BOLT_OPT_IDLE_TIMEOUT,
                             self->database, self->fetch_size, self->max_records, &op->options, &error) &&
      g_hash_table_size (self->transactions) >= self->max_transactions)
    error = g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED, _("At most %u transactions may be open (max-transactions)"),
                         self->max_transactions);
  if (error != NULL)
    {
      bp_call_return_error (op->call, error);
      g_error_free (error);
      begin_op_free (op);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  bp_bolt_backend_acquire_async (self, op->options.write, op->options.database, bp_call_get_sender (op->call),
                                 bp_call_get_cancellable (op->call), begin_acquired_cb, op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------------------------------------------------------------------- */
/* BpBackend vfuncs                                                        */

/* tx-retry.*: the managed-transaction retry loop (the drivers' defaults). */
static gboolean
configure_tx_retry (BpBoltBackend    *self,
                    BpConfigSection  *section,
                    GError          **error)
{
  guint64 initial_ms, jitter_percent, max_time_ms;
  double multiplier;

  if (!bp_config_section_get_uint (section, "tx-retry.initial-ms", BP_BOLT_TX_RETRY_DEFAULT_INITIAL_MS,
                                   1, BP_BOLT_TX_RETRY_MAX_INITIAL_MS, &initial_ms, error) ||
      !bp_config_section_get_uint (section, "tx-retry.jitter-percent", BP_BOLT_TX_RETRY_DEFAULT_JITTER_PERCENT,
                                   0, 100, &jitter_percent, error) ||
      !bp_config_section_get_uint (section, "tx-retry.max-time-ms", BP_BOLT_TX_RETRY_DEFAULT_MAX_TIME_MS,
                                   0, BP_BOLT_TX_RETRY_MAX_MAX_TIME_MS, &max_time_ms, error))
    return FALSE;
  if (!bp_config_section_get_double (section, "tx-retry.multiplier", BP_BOLT_TX_RETRY_DEFAULT_MULTIPLIER,
                                     BP_BOLT_TX_RETRY_MIN_MULTIPLIER, BP_BOLT_TX_RETRY_MAX_MULTIPLIER,
                                     &multiplier, error))
    return FALSE;
  g_object_set (self->tx_retry,
                "initial-ms", (guint) initial_ms,
                "multiplier", multiplier,
                "jitter-percent", (guint) jitter_percent,
                "max-time-ms", (guint) max_time_ms,
                NULL);
  return TRUE;
}

static gboolean
bp_bolt_backend_configure (BpBackend        *backend,
                           BpConfigSection  *section,
                           GError          **error)
{
  BpBoltBackend *self = BP_BOLT_BACKEND (backend);
  static const char * const auth_choices[] = { "basic", "bearer", "none", NULL };
  static const char * const policy_choices[] = { "least-connections", "round-robin", NULL };
  const char *group = bp_config_section_get_group (section);
  g_autofree char *uri = NULL;
  g_autoptr(GError) local = NULL;
  guint64 value;
  guint index;

  uri = bp_config_section_get_string (section, "uri", NULL);
  if (uri == NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, _("[%s] uri is required"), group);
      return FALSE;
    }
  g_clear_pointer (&self->uri, bp_bolt_uri_free);
  self->uri = bp_bolt_uri_parse (uri, &local);
  if (self->uri == NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "[%s] %s", group, local->message);
      return FALSE;
    }
  g_clear_pointer (&self->user, g_free);
  self->user = bp_config_section_get_string (section, "user", NULL);
  if (self->password != NULL)
    {
      memset (self->password, 0, strlen (self->password));
      g_clear_pointer (&self->password, g_free);
    }
  if (!bp_config_section_get_secret (section, "password", &self->password, error))
    return FALSE;
  if (!bp_config_section_get_choice (section, "auth", auth_choices, self->user != NULL ? 0 : 2, &index, error))
    return FALSE;
  self->auth_scheme = index;
  if (self->auth_scheme == 0 && self->user == NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, _("[%s] auth=basic needs user="), group);
      return FALSE;
    }
  if (self->auth_scheme == 1 && self->password == NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("[%s] auth=bearer takes the token from password-file= or password-env="), group);
      return FALSE;
    }
  g_clear_pointer (&self->database, g_free);
  self->database = bp_config_section_get_string (section, "database", NULL);

  if (!bp_config_section_get_uint (section, "fetch-size", 1000, 1, BP_BOLT_MAX_FETCH_SIZE, &value, error))
    return FALSE;
  self->fetch_size = (gint64) value;
  if (!bp_config_section_get_uint (section, "max-records", 100000, 1, 10000000, &value, error))
    return FALSE;
  self->max_records = (guint) value;
  if (!bp_config_section_get_uint (section, "max-statements", 1000, 1, 100000, &value, error))
    return FALSE;
  self->max_statements = (guint) value;
  if (!bp_config_section_get_uint (section, "max-transactions", 64, 1, 10000, &value, error))
    return FALSE;
  self->max_transactions = (guint) value;
  if (!bp_config_section_get_uint (section, "connect-timeout-ms", 10000, 100, 600000, &value, error))
    return FALSE;
  self->connect_timeout_ms = (guint) value;
  if (!bp_config_section_get_uint (section, "max-message-size", 64 * 1024 * 1024, 64 * 1024,
                                   G_GUINT64_CONSTANT (1) << 30, &value, error))
    return FALSE;
  self->limits.max_message_size = (gsize) value;
  if (!bp_config_section_get_choice (section, "routing-policy", policy_choices, 0, &index, error))
    return FALSE;
  self->policy = index == 0 ? BP_BOLT_SELECT_LEAST_CONNECTIONS : BP_BOLT_SELECT_ROUND_ROBIN;

  return configure_tx_retry (self, section, error);
}

static void
run_health (BpBoltBackend       *self,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  GraphOp *op = graph_op_new (self, NULL, OP_HEALTH);

  op->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (op->task, run_health);
  op->options.database = g_strdup (self->database);
  op->options.write = FALSE;
  bp_retry_run_async (bp_backend_get_retry (BP_BACKEND (self)), &graph_operation, op, NULL,
                      BP_IDEMPOTENCY_IDEMPOTENT, cancellable, graph_op_done_cb, op);
}

/* Main context: the first query proves the configuration. */
static void
start_checked_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_task_propagate_pointer (G_TASK (result), &error);

  if (reply == NULL)
    {
      /* exported all the same: unavailable with the reason, recovering on
       * the next successful call */
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
bp_bolt_backend_start_async (BpBackend           *backend,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  BpBoltBackend *self = BP_BOLT_BACKEND (backend);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, bp_bolt_backend_start_async);
  run_health (self, cancellable, start_checked_cb, g_steal_pointer (&task));
}

typedef struct
{
  guint pending;
} StopData;

static void
stop_pool_closed_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  StopData *data = g_task_get_task_data (task);

  bp_pool_close_finish (BP_POOL (object), result, NULL);
  if (--data->pending == 0)
    g_task_return_boolean (task, TRUE);
}

static void
bp_bolt_backend_stop_async (BpBackend           *backend,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  BpBoltBackend *self = BP_BOLT_BACKEND (backend);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  StopData *data = g_new0 (StopData, 1);
  GList *transactions;
  GHashTableIter iter;
  gpointer value;

  g_task_set_source_tag (task, bp_bolt_backend_stop_async);
  g_task_set_task_data (task, data, g_free);
  self->stopped = TRUE;
  g_cancellable_cancel (self->stop_cancellable);

  /* roll back what clients left open; ending removes them from the table */
  transactions = g_hash_table_get_keys (self->transactions);
  g_list_foreach (transactions, (GFunc) (void (*) (void)) g_object_ref, NULL);
  for (GList *l = transactions; l != NULL; l = l->next)
    bp_bolt_transaction_abort (l->data);
  g_list_free_full (transactions, g_object_unref);

  data->pending = 1;
  g_hash_table_iter_init (&iter, self->pools);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      ServerPool *server = value;
      data->pending++;
      bp_pool_close_async (server->pool, NULL, stop_pool_closed_cb, g_object_ref (task));
    }
  if (--data->pending == 0)
    g_task_return_boolean (task, TRUE);
}

static gboolean
bp_bolt_backend_stop_finish (BpBackend     *backend,
                             GAsyncResult  *result,
                             GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
health_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpBoltBackend *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_task_propagate_pointer (G_TASK (result), &error);

  if (reply == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, g_strdup_printf ("RETURN 1 answered (%s)", self->uri->scheme), g_free);
}

static void
bp_bolt_backend_check_health_async (BpBackend           *backend,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  GTask *task = g_task_new (backend, cancellable, callback, user_data);

  g_task_set_source_tag (task, bp_bolt_backend_check_health_async);
  run_health (BP_BOLT_BACKEND (backend), cancellable, health_done_cb, task);
}

/* One pool: its stats. Several (routing): the sums, and per server. */
static GVariant *
bp_bolt_backend_dup_pool_stats (BpBackend *backend)
{
  BpBoltBackend *self = BP_BOLT_BACKEND (backend);
  GVariantBuilder builder, servers;
  GHashTableIter iter;
  gpointer value;

  if (self->uri == NULL)
    return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
  if (g_hash_table_size (self->pools) == 1 && !self->uri->routing)
    {
      g_hash_table_iter_init (&iter, self->pools);
      g_hash_table_iter_next (&iter, NULL, &value);
      return bp_pool_dup_stats (((ServerPool *) value)->pool);
    }
  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_init (&servers, G_VARIANT_TYPE_VARDICT);
  g_hash_table_iter_init (&iter, self->pools);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    {
      ServerPool *server = value;
      g_autoptr(GVariant) stats = bp_pool_dup_stats (server->pool);

      g_variant_builder_add (&servers, "{sv}", server->address, stats);
    }
  g_variant_builder_add (&builder, "{sv}", "servers", g_variant_builder_end (&servers));
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static void
bp_bolt_backend_dispose (GObject *object)
{
  BpBoltBackend *self = BP_BOLT_BACKEND (object);

  g_clear_object (&self->iface);
  g_clear_pointer (&self->transactions, g_hash_table_unref);
  g_clear_pointer (&self->pools, g_hash_table_unref);
  g_clear_pointer (&self->tables, g_hash_table_unref);
  g_clear_pointer (&self->refreshes, g_hash_table_unref);
  g_clear_object (&self->tx_retry);
  g_clear_object (&self->stop_cancellable);
  G_OBJECT_CLASS (bp_bolt_backend_parent_class)->dispose (object);
}

static void
bp_bolt_backend_finalize (GObject *object)
{
  BpBoltBackend *self = BP_BOLT_BACKEND (object);

  g_clear_pointer (&self->uri, bp_bolt_uri_free);
  g_free (self->user);
  g_free (self->database);
  if (self->password != NULL)
    {
      memset (self->password, 0, strlen (self->password));
      g_free (self->password);
    }
  G_OBJECT_CLASS (bp_bolt_backend_parent_class)->finalize (object);
}

static void
bp_bolt_backend_constructed (GObject *object)
{
  BpBoltBackend *self = BP_BOLT_BACKEND (object);

  G_OBJECT_CLASS (bp_bolt_backend_parent_class)->constructed (object);

  /* Managed transactions retry on their own schedule, paid for from the
   * backend's retry budget. The backend's BpRetry and BpBreaker judge errors
   * with classify_error (bp_bolt_classify_failure()). */
  self->tx_retry = bp_bolt_tx_retry_new (bp_backend_get_clock (BP_BACKEND (self)));
  bp_bolt_tx_retry_set_classify_func (self->tx_retry, tx_retry_classify, self, NULL);
  {
    g_autoptr(BpRetryBudget) budget = bp_retry_dup_budget (bp_backend_get_retry (BP_BACKEND (self)));
    bp_bolt_tx_retry_set_budget (self->tx_retry, budget);
  }
}

static void
bp_bolt_backend_class_init (BpBoltBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  BpBackendClass *backend_class = BP_BACKEND_CLASS (klass);

  object_class->constructed = bp_bolt_backend_constructed;
  object_class->dispose = bp_bolt_backend_dispose;
  object_class->finalize = bp_bolt_backend_finalize;
  backend_class->configure = bp_bolt_backend_configure;
  backend_class->start_async = bp_bolt_backend_start_async;
  backend_class->stop_async = bp_bolt_backend_stop_async;
  backend_class->stop_finish = bp_bolt_backend_stop_finish;
  backend_class->check_health_async = bp_bolt_backend_check_health_async;
  backend_class->dup_pool_stats = bp_bolt_backend_dup_pool_stats;
  backend_class->classify_error = bp_bolt_backend_classify_error;
}

static void
bp_bolt_backend_init (BpBoltBackend *self)
{
  self->pools = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) server_pool_free);
  self->tables = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_object_unref);
  self->refreshes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_ptr_array_unref);
  self->transactions = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->stop_cancellable = g_cancellable_new ();
  self->fetch_size = 1000;
  self->max_records = 100000;
  self->max_statements = 1000;
  self->max_transactions = 64;
  self->connect_timeout_ms = 10000;
  self->policy = BP_BOLT_SELECT_LEAST_CONNECTIONS;
  bp_bolt_limits_init_default (&self->limits);

  self->iface = bp_dbus_graph_skeleton_new ();
  g_signal_connect (self->iface, "handle-run", G_CALLBACK (handle_run), self);
  g_signal_connect (self->iface, "handle-run-to-fd", G_CALLBACK (handle_run_to_fd), self);
  g_signal_connect (self->iface, "handle-execute-read", G_CALLBACK (handle_execute_read), self);
  g_signal_connect (self->iface, "handle-execute-write", G_CALLBACK (handle_execute_write), self);
  g_signal_connect (self->iface, "handle-begin-transaction", G_CALLBACK (handle_begin_transaction), self);
  bp_backend_add_interface (BP_BACKEND (self), G_DBUS_INTERFACE_SKELETON (self->iface));
}
