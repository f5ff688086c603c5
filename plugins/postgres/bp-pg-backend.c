/* bp-pg-backend.c: backend type `postgres`
 *
 * Serves org.backplane.Backplane1.Sql from a BpPool of non-blocking
 * BpPgConnections. Every pooled call runs as attempts under the backend's
 * BpRetry (only idempotent calls are retried) and BpBreaker (one permit an
 * attempt); SQLSTATEs are classified by bp_pg_classify_failure(): client
 * errors (classes 22, 23, 42) never count against the breaker, a failed
 * connect (08001) is retryable, a connection lost mid-statement ambiguous.
 *
 * Config keys: conninfo= (libpq conninfo or URI, multi-host allowed) or
 * managed=true (a private cluster, bp-pg-cluster.c), password-file= /
 * password-env=, max-rows= (Query bound, default 100000), max-statements=
 * (Execute bound, default 10000), max-transactions= (open transactions,
 * default 64), max-listens= (Listen subscriptions, each a dedicated
 * connection, default 32), connect-timeout-ms= (default 10000),
 * data-dir= (managed only).
 *
 * Everything runs on the main context; no libpq call here blocks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <string.h>

#include "bp-pg-backend.h"
#include "bp-pg-cluster.h"
#include "bp-pg-error.h"
#include "bp-pg-fd-stream.h"
#include "bp-pg-listener.h"
#include "bp-pg-options.h"
#include "bp-pg-transaction.h"
#include "bp-postgres-dbus.h"

struct _BpPgBackend
{
  BpBackend     parent_instance;

  BpDBusSql    *iface;              /* (owned) */
  char         *conninfo;           /* (owned) (nullable) until a managed cluster runs */
  char         *password;           /* (owned) (nullable): never logged */
  gboolean      managed;
  char         *data_dir;           /* (owned) (nullable) */
  guint         max_rows;
  guint         max_statements;
  guint         max_transactions;
  guint         max_listens;
  guint         connect_timeout_ms;

  BpPgCluster  *cluster;            /* (owned) (nullable) */
  BpPool       *pool;               /* (owned) (nullable) until started */
  BpRetry      *retry;              /* (owned) */
  GHashTable   *transactions;       /* (element-type BpPgTransaction) (owned) */
  GHashTable   *listeners;          /* (element-type BpPgListener) (owned) */
  GCancellable *stop_cancellable;   /* (owned) */
};

G_DEFINE_FINAL_TYPE (BpPgBackend, bp_pg_backend, BP_TYPE_BACKEND)

/* ---------------------------------------------------------------------- */
/* Failure classification                                                  */

/**
 * bp_pg_classify_failure:
 * @error: an error of a postgres operation
 * @user_data: unused
 *
 * Returns: how BpRetry and BpBreaker judge @error
 */
BpFailureKind
bp_pg_classify_failure (const GError *error,
                        gpointer      user_data)
{
  char sqlstate[6];

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
        default:
          break;
        }
    }
  if (bp_pg_error_get_sqlstate (error, sqlstate))
    {
      switch (bp_pg_sqlstate_classify (sqlstate))
        {
        case BP_PG_ERROR_CLASS_CLIENT:
          return BP_FAILURE_IGNORE;
        case BP_PG_ERROR_CLASS_RETRY_TX:
          return BP_FAILURE_RETRYABLE;
        case BP_PG_ERROR_CLASS_CONNECTION:
          /* Nothing was sent when the connect failed; otherwise unknown. */
          return g_str_equal (sqlstate, "08001") || g_str_equal (sqlstate, "57P03")
                 ? BP_FAILURE_RETRYABLE : BP_FAILURE_AMBIGUOUS;
        case BP_PG_ERROR_CLASS_OTHER:
        default:
          if (g_str_has_prefix (sqlstate, "53"))  /* insufficient resources */
            return BP_FAILURE_RETRYABLE;
          return BP_FAILURE_FATAL;
        }
    }
  if (g_error_matches (error, BP_ERROR, BP_ERROR_TIMEOUT))
    return BP_FAILURE_AMBIGUOUS;
  return bp_failure_kind_from_error (error);
}

/* ---------------------------------------------------------------------- */
/* Connections and the pool                                                */

/**
 * bp_pg_backend_new_connection:
 * @self: a started backend
 *
 * Returns: (transfer full): a new, unconnected connection with the
 *   backend's conninfo, password, clock and connect timeout
 */
BpPgConnection *
bp_pg_backend_new_connection (BpPgBackend *self)
{
  BpPgConnection *conn;
  g_autofree char *app = NULL;

  conn = bp_pg_connection_new (self->conninfo, self->password,
                               bp_backend_get_clock (BP_BACKEND (self)));
  app = g_strdup_printf ("backplaned/%s", bp_backend_get_name (BP_BACKEND (self)));
  bp_pg_connection_set_application_name (conn, app);
  bp_pg_connection_set_connect_timeout (conn, self->connect_timeout_ms);
  return conn;
}

/**
 * bp_pg_backend_release:
 * @self: a backend
 * @item: (transfer full): a checked-out connection
 *
 * Gives @item back; only an idle connection outside a transaction is kept.
 */
void
bp_pg_backend_release (BpPgBackend *self,
                       BpPoolItem  *item)
{
  BpPgConnection *conn = bp_pool_item_get_resource (item);
  gboolean healthy = bp_pg_connection_get_state (conn) == BP_PG_CONNECTION_STATE_IDLE &&
                     bp_pg_connection_get_transaction_status (conn) == PQTRANS_IDLE;

  bp_pool_release (self->pool, item, healthy);
}

guint
bp_pg_backend_get_max_rows (BpPgBackend *self)
{
  return self->max_rows;
}

/* Pool context: a new connection is up (or not). */
static void
pool_connected_cb (GObject      *object,
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
  BpPgBackend *self = user_data;
  g_autoptr(BpPgConnection) conn = bp_pg_backend_new_connection (self);
  GTask *task = g_task_new (NULL, cancellable, callback, callback_data);

  g_task_set_source_tag (task, pool_create_async);
  bp_pg_connection_connect_async (conn, cancellable, pool_connected_cb, task);
}

static gpointer
pool_create_finish (gpointer       user_data,
                    GAsyncResult  *result,
                    GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Pool context. */
static void
pool_validated_cb (GObject      *object,
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
  GTask *task = g_task_new (NULL, cancellable, callback, callback_data);

  g_task_set_source_tag (task, pool_validate_async);
  /* A connection whose server went away while idle is known already. */
  if (bp_pg_connection_get_state (conn) != BP_PG_CONNECTION_STATE_IDLE)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE,
                               "SQLSTATE 08003: connection is closed");
      g_object_unref (task);
      return;
    }
  bp_pg_connection_query_async (conn, "SELECT 1", NULL, 0, 0, cancellable, pool_validated_cb, task);
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
  BpPgConnection *conn = resource;

  return bp_pg_connection_get_state (conn) == BP_PG_CONNECTION_STATE_IDLE &&
         bp_pg_connection_get_transaction_status (conn) == PQTRANS_IDLE;
}

static void
pool_destroy (gpointer user_data,
              gpointer resource)
{
  BpPgConnection *conn = resource;

  /* PQfinish on a non-blocking connection does not block. A connection
   * still draining a cancelled statement is closed all the same. */
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

static void
create_pool (BpPgBackend *self)
{
  const BpBackendPoolConfig *config = bp_backend_get_pool_config (BP_BACKEND (self));

  self->pool = bp_pool_new (&pool_funcs, self, NULL,
                            "clock", bp_backend_get_clock (BP_BACKEND (self)),
                            "min", clamp_uint (config->min),
                            "max", clamp_uint (config->max),
                            "acquire-timeout-ms", clamp_uint (config->acquire_timeout_ms),
                            "create-timeout-ms", self->connect_timeout_ms + 1000,
                            "idle-timeout-ms", clamp_uint (config->idle_timeout_ms),
                            "max-lifetime-ms", clamp_uint (config->max_lifetime_ms),
                            "max-uses", clamp_uint (config->max_uses),
                            NULL);
}

/* ---------------------------------------------------------------------- */
/* Pooled operations under retry and breaker                               */

typedef enum
{
  SQL_QUERY,
  SQL_EXECUTE,
  SQL_COPY_FROM,
  SQL_COPY_TO,
  SQL_HEALTH,
} SqlKind;

typedef struct
{
  BpPgBackend   *self;        /* (owned) */
  BpCall        *call;        /* (owned) (nullable): none for health checks */
  GTask         *task;        /* (owned) (nullable): health checks */
  SqlKind        kind;
  char          *sql;         /* (owned) (nullable) */
  GVariant      *params;      /* (owned) (nullable) */
  GVariant      *statements;  /* (owned) (nullable) */
  BpPgOptions    options;
  GInputStream  *input;       /* (owned) (nullable) */
  GOutputStream *output;      /* (owned) (nullable) */
  gint64         started_us;
} SqlOp;

typedef struct
{
  SqlOp           *op;       /* (borrowed): outlives the attempt */
  GTask           *task;     /* (owned) */
  BpPoolItem      *item;     /* (nullable) */
  BpBreakerPermit *permit;   /* (nullable) */
  gint64           started_us;
} Attempt;

static void
sql_op_free (SqlOp *op)
{
  g_clear_object (&op->self);
  g_clear_object (&op->call);
  g_clear_object (&op->task);
  g_free (op->sql);
  g_clear_pointer (&op->params, g_variant_unref);
  g_clear_pointer (&op->statements, g_variant_unref);
  bp_pg_options_clear (&op->options);
  g_clear_object (&op->input);
  g_clear_object (&op->output);
  g_free (op);
}

static SqlOp *
sql_op_new (BpPgBackend *self,
            BpCall      *call,
            SqlKind      kind)
{
  SqlOp *op = g_new0 (SqlOp, 1);

  op->self = g_object_ref (self);
  op->call = call != NULL ? g_object_ref (call) : NULL;
  op->kind = kind;
  op->started_us = bp_clock_get_time (bp_backend_get_clock (BP_BACKEND (self)));
  return op;
}

/* Ends an attempt: the connection goes back, the breaker learns the outcome. */
static void
attempt_done (Attempt  *attempt,
              GVariant *reply,
              GError   *error)
{
  /* (transfer full) reply and error */
  BpPgBackend *self = attempt->op->self;
  GTask *task = g_steal_pointer (&attempt->task);

  if (attempt->item != NULL)
    bp_pg_backend_release (self, g_steal_pointer (&attempt->item));
  if (attempt->permit != NULL)
    {
      if (error != NULL)
        bp_breaker_permit_release_error (g_steal_pointer (&attempt->permit), error);
      else
        bp_breaker_permit_release (g_steal_pointer (&attempt->permit), BP_BREAKER_OUTCOME_SUCCESS);
    }
  g_free (attempt);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_variant_ref_sink (reply), (GDestroyNotify) g_variant_unref);
  g_object_unref (task);
}

/* Main context: each of these ends one attempt's statement. */
static void
attempt_query_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Attempt *attempt = user_data;
  GVariant *columns = NULL;
  GVariant *rows = NULL;
  GError *error = NULL;

  if (!bp_pg_connection_query_finish (BP_PG_CONNECTION (object), result, &columns, &rows, NULL, &error))
    {
      attempt_done (attempt, NULL, error);
      return;
    }
  if (attempt->op->kind == SQL_HEALTH)
    {
      g_variant_unref (columns);
      g_variant_unref (rows);
      attempt_done (attempt, g_variant_new_int32 (bp_pg_connection_get_backend_pid (BP_PG_CONNECTION (object))), NULL);
      return;
    }
  attempt_done (attempt, g_variant_new ("(@a(ss)@aa{sv})", columns, rows), NULL);
  g_variant_unref (columns);
  g_variant_unref (rows);
}

static void
attempt_execute_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  Attempt *attempt = user_data;
  GError *error = NULL;
  g_autoptr(GVariant) affected = bp_pg_connection_execute_finish (BP_PG_CONNECTION (object), result, NULL, &error);

  if (affected == NULL)
    attempt_done (attempt, NULL, error);
  else
    attempt_done (attempt, g_variant_new ("(@at)", affected), NULL);
}

static void
attempt_copy_from_cb (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  Attempt *attempt = user_data;
  GError *error = NULL;
  guint64 rows = 0;

  if (!bp_pg_connection_copy_from_finish (BP_PG_CONNECTION (object), result, &rows, &error))
    attempt_done (attempt, NULL, error);
  else
    attempt_done (attempt, g_variant_new ("(t)", rows), NULL);
}

static void
attempt_copy_to_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  Attempt *attempt = user_data;
  GError *error = NULL;
  guint64 rows = 0;

  if (!bp_pg_connection_copy_to_finish (BP_PG_CONNECTION (object), result, &rows, &error))
    attempt_done (attempt, NULL, error);
  else
    attempt_done (attempt, g_variant_new ("(t)", rows), NULL);
}

/* Main context: a pooled connection for this attempt. */
static void
attempt_acquired_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  Attempt *attempt = user_data;
  SqlOp *op = attempt->op;
  GError *error = NULL;
  GCancellable *cancellable = g_task_get_cancellable (attempt->task);
  BpPgConnection *conn;

  attempt->item = bp_pool_acquire_finish (BP_POOL (object), result, &error);
  if (attempt->item == NULL)
    {
      attempt_done (attempt, NULL, error);
      return;
    }
  conn = bp_pool_item_get_resource (attempt->item);

  switch (op->kind)
    {
    case SQL_QUERY:
      bp_pg_connection_query_async (conn, op->sql, op->params, op->options.max_rows,
                                    op->options.timeout_ms, cancellable, attempt_query_cb, attempt);
      break;
    case SQL_HEALTH:
      bp_pg_connection_query_async (conn, "SELECT 1", NULL, 0, 0, cancellable, attempt_query_cb, attempt);
      break;
    case SQL_EXECUTE:
      bp_pg_connection_execute_async (conn, op->statements,
                                      op->options.atomic ? BP_PG_PIPELINE_FLAGS_NONE
                                                         : BP_PG_PIPELINE_FLAGS_SYNC_EACH,
                                      op->options.timeout_ms, cancellable, attempt_execute_cb, attempt);
      break;
    case SQL_COPY_FROM:
      bp_pg_connection_copy_from_async (conn, op->sql, op->input, op->options.timeout_ms,
                                        cancellable, attempt_copy_from_cb, attempt);
      break;
    case SQL_COPY_TO:
      bp_pg_connection_copy_to_async (conn, op->sql, op->output, op->options.timeout_ms,
                                      cancellable, attempt_copy_to_cb, attempt);
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
  SqlOp *op = op_data;
  BpPgBackend *self = op->self;
  Attempt *attempt = g_new0 (Attempt, 1);
  GError *error = NULL;

  attempt->op = op;
  attempt->task = g_task_new (NULL, cancellable, callback, callback_data);
  g_task_set_source_tag (attempt->task, attempt_start);

  if (self->pool == NULL || bp_pool_is_closed (self->pool))
    {
      attempt_done (attempt, NULL, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                                "backend %s is not running",
                                                bp_backend_get_name (BP_BACKEND (self))));
      return;
    }
  attempt->permit = bp_breaker_try_acquire (bp_backend_get_breaker (BP_BACKEND (self)), &error);
  if (attempt->permit == NULL)
    {
      attempt_done (attempt, NULL, error);
      return;
    }
  bp_pool_acquire_async (self->pool, op->call != NULL ? bp_call_get_sender (op->call) : "health",
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

static const BpOperation sql_operation = {
  attempt_start,
  attempt_finish,
  (GDestroyNotify) g_variant_unref,
};

static void
note_outcome (BpPgBackend  *self,
              gint64        started_us,
              const GError *error)
{
  BpBackend *backend = BP_BACKEND (self);
  gint64 now = bp_clock_get_time (bp_backend_get_clock (backend));
  BpBackendState state = bp_backend_get_state (backend);
  char sqlstate[6];

  bp_backend_record_latency (backend, now - started_us, error == NULL);
  if (state == BP_BACKEND_STATE_STOPPING || state == BP_BACKEND_STATE_STARTING)
    return;
  if (error == NULL)
    {
      if (state != BP_BACKEND_STATE_READY)
        bp_backend_set_state (backend, BP_BACKEND_STATE_READY, NULL);
    }
  else if (bp_pg_error_get_sqlstate (error, sqlstate) && g_str_equal (sqlstate, "08001"))
    bp_backend_set_state (backend, BP_BACKEND_STATE_UNAVAILABLE, error->message);
}

/* Main context: all attempts are over. */
static void
sql_op_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  SqlOp *op = user_data;
  g_autoptr(GError) error = NULL;
  GVariant *reply = NULL;

  bp_retry_run_finish (BP_RETRY (object), result, (gpointer *) &reply, NULL, &error);
  note_outcome (op->self, op->started_us, error);

  if (op->task != NULL)
    {
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
  sql_op_free (op);
}

static void
sql_op_run (SqlOp *op)
{
  BpIdempotency idempotency = BP_IDEMPOTENCY_UNSAFE;
  GCancellable *cancellable;

  if (op->options.idempotency_key != NULL)
    idempotency = BP_IDEMPOTENCY_KEYED;
  else if (op->options.idempotent)
    idempotency = BP_IDEMPOTENCY_IDEMPOTENT;
  cancellable = op->call != NULL ? bp_call_get_cancellable (op->call)
                                 : g_task_get_cancellable (op->task);
  bp_retry_run_async (op->self->retry, &sql_operation, op, NULL, idempotency,
                      cancellable, sql_op_done_cb, op);
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

static gboolean
handle_query (BpDBusSql             *iface,
              GDBusMethodInvocation *invocation,
              const char            *sql,
              GVariant              *params,
              GVariant              *options,
              gpointer               user_data)
{
  BpPgBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  SqlOp *op;
  GError *error = NULL;

  op = sql_op_new (self, call, SQL_QUERY);
  g_object_unref (call);
  if (!bp_pg_check_sql ("sql", sql, &error) ||
      !bp_pg_options_parse (options, BP_PG_OPT_TIMEOUT | BP_PG_OPT_MAX_ROWS | BP_PG_OPT_IDEMPOTENT |
                                     BP_PG_OPT_IDEMPOTENCY_KEY | BP_PG_OPT_DEAD_LETTER,
                            self->max_rows, &op->options, &error))
    {
      reply_error (g_object_ref (op->call), error);
      sql_op_free (op);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  op->sql = g_strdup (sql);
  op->params = g_variant_ref (params);
  sql_op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
check_statements (BpPgBackend  *self,
                  GVariant     *statements,
                  GError      **error)
{
  gsize n = g_variant_n_children (statements);

  if (n > self->max_statements)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "statements: %" G_GSIZE_FORMAT " statements, at most %u", n, self->max_statements);
      return FALSE;
    }
  for (gsize i = 0; i < n; i++)
    {
      const char *sql;
      g_autofree char *field = g_strdup_printf ("statements[%" G_GSIZE_FORMAT "]", i);

      g_variant_get_child (statements, i, "(&s@av)", &sql, NULL);
      if (!bp_pg_check_sql (field, sql, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
handle_execute (BpDBusSql             *iface,
                GDBusMethodInvocation *invocation,
                GVariant              *statements,
                GVariant              *options,
                gpointer               user_data)
{
  BpPgBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  SqlOp *op = sql_op_new (self, call, SQL_EXECUTE);
  GError *error = NULL;

  g_object_unref (call);
  if (!bp_pg_options_parse (options, BP_PG_OPT_TIMEOUT | BP_PG_OPT_ATOMIC | BP_PG_OPT_IDEMPOTENT,
                            self->max_rows, &op->options, &error) ||
      !check_statements (self, statements, &error))
    {
      reply_error (g_object_ref (op->call), error);
      sql_op_free (op);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  op->statements = g_variant_ref (statements);
  sql_op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_copy (BpPgBackend           *self,
             GDBusMethodInvocation *invocation,
             SqlKind                kind,
             const char            *copy_sql,
             GVariant              *fd_handle,
             GVariant              *options)
{
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  SqlOp *op = sql_op_new (self, call, kind);
  GError *error = NULL;
  int fd;

  g_object_unref (call);
  if (!bp_pg_check_sql ("copy_sql", copy_sql, &error) ||
      !bp_pg_options_parse (options, BP_PG_OPT_TIMEOUT, self->max_rows, &op->options, &error))
    {
      reply_error (g_object_ref (op->call), error);
      sql_op_free (op);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  fd = bp_pg_steal_fd (op->call, fd_handle, &error);
  if (fd < 0)
    {
      reply_error (g_object_ref (op->call), error);
      sql_op_free (op);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_unix_set_fd_nonblocking (fd, TRUE, NULL);
  if (kind == SQL_COPY_FROM)
    op->input = g_unix_input_stream_new (fd, TRUE);
  else
    op->output = g_unix_output_stream_new (fd, TRUE);
  op->sql = g_strdup (copy_sql);
  sql_op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_copy_from (BpDBusSql             *iface,
                  GDBusMethodInvocation *invocation,
                  GUnixFDList           *fd_list,
                  const char            *copy_sql,
                  GVariant              *fd,
                  GVariant              *options,
                  gpointer               user_data)
{
  return handle_copy (user_data, invocation, SQL_COPY_FROM, copy_sql, fd, options);
}

static gboolean
handle_copy_to (BpDBusSql             *iface,
                GDBusMethodInvocation *invocation,
                GUnixFDList           *fd_list,
                const char            *copy_sql,
                GVariant              *fd,
                GVariant              *options,
                gpointer               user_data)
{
  return handle_copy (user_data, invocation, SQL_COPY_TO, copy_sql, fd, options);
}

/* QueryToFd: not retried (rows may already be out), one breaker permit. */
typedef struct
{
  BpPgBackend     *self;     /* (owned) */
  BpCall          *call;     /* (owned) */
  BpPoolItem      *item;     /* (nullable) */
  BpBreakerPermit *permit;   /* (nullable) */
  BpPgFdStream    *stream;   /* (owned) (nullable) */
  char            *sql;      /* (owned) */
  GVariant        *params;   /* (owned) */
  BpPgOptions      options;
  int              fd;
  gint64           started_us;
} ToFdOp;

static void
to_fd_op_free (ToFdOp *op)
{
  g_clear_object (&op->self);
  g_clear_object (&op->call);
  g_clear_object (&op->stream);
  g_free (op->sql);
  g_clear_pointer (&op->params, g_variant_unref);
  bp_pg_options_clear (&op->options);
  if (op->fd >= 0)
    g_close (op->fd, NULL);
  g_free (op);
}

static void
to_fd_op_end (ToFdOp       *op,
              const GError *error)
{
  if (op->item != NULL)
    bp_pg_backend_release (op->self, g_steal_pointer (&op->item));
  if (op->permit != NULL)
    {
      if (error != NULL)
        bp_breaker_permit_release_error (g_steal_pointer (&op->permit), error);
      else
        bp_breaker_permit_release (g_steal_pointer (&op->permit), BP_BREAKER_OUTCOME_SUCCESS);
    }
  note_outcome (op->self, op->started_us, error);
  if (!bp_call_is_answered (op->call))
    bp_call_return_error (op->call, error);
  to_fd_op_free (op);
}

/* Main context: the stream ended and the fd is closed. */
static void
to_fd_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  ToFdOp *op = user_data;
  g_autoptr(GError) error = NULL;

  bp_pg_fd_stream_wait_finish (BP_PG_FD_STREAM (object), result, NULL, &error);
  /* A reader that went away is the client's business, not a backend failure. */
  if (g_error_matches (error, BP_ERROR, BP_ERROR_CANCELLED))
    g_clear_error (&error);
  to_fd_op_end (op, error);
}

/* Main context: the header is known: reply now, rows follow. */
static void
to_fd_started_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  ToFdOp *op = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) columns = bp_pg_fd_stream_start_finish (BP_PG_FD_STREAM (object), result, &error);

  if (columns == NULL)
    bp_call_return_error (op->call, error);
  else
    bp_call_return_value (op->call, g_variant_new ("(@a(ss))", columns));
  bp_pg_fd_stream_wait_async (op->stream, to_fd_done_cb, op);
}

static void
to_fd_acquired_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  ToFdOp *op = user_data;
  g_autoptr(GError) error = NULL;

  op->item = bp_pool_acquire_finish (BP_POOL (object), result, &error);
  if (op->item == NULL)
    {
      to_fd_op_end (op, error);
      return;
    }
  op->stream = bp_pg_fd_stream_new (bp_pool_item_get_resource (op->item), op->fd, op->options.format);
  op->fd = -1;
  bp_pg_fd_stream_start_async (op->stream, op->sql, op->params, op->options.timeout_ms,
                               bp_call_get_cancellable (op->call), to_fd_started_cb, op);
}

static gboolean
handle_query_to_fd (BpDBusSql             *iface,
                    GDBusMethodInvocation *invocation,
                    GUnixFDList           *fd_list,
                    const char            *sql,
                    GVariant              *params,
                    GVariant              *fd_handle,
                    GVariant              *options,
                    gpointer               user_data)
{
  BpPgBackend *self = user_data;
  ToFdOp *op = g_new0 (ToFdOp, 1);
  g_autoptr(GError) error = NULL;

  op->self = g_object_ref (self);
  op->call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  op->fd = -1;
  op->started_us = bp_clock_get_time (bp_backend_get_clock (BP_BACKEND (self)));
  op->sql = g_strdup (sql);
  op->params = g_variant_ref (params);

  if (!bp_pg_check_sql ("sql", sql, &error) ||
      !bp_pg_options_parse (options, BP_PG_OPT_TIMEOUT | BP_PG_OPT_FORMAT, self->max_rows,
                            &op->options, &error) ||
      (op->fd = bp_pg_steal_fd (op->call, fd_handle, &error)) < 0)
    {
      bp_call_return_error (op->call, error);
      to_fd_op_free (op);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (self->pool == NULL || bp_pool_is_closed (self->pool))
    {
      g_set_error (&error, BP_ERROR, BP_ERROR_UNAVAILABLE, "backend %s is not running",
                   bp_backend_get_name (BP_BACKEND (self)));
      bp_call_return_error (op->call, error);
      to_fd_op_free (op);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  op->permit = bp_breaker_try_acquire (bp_backend_get_breaker (BP_BACKEND (self)), &error);
  if (op->permit == NULL)
    {
      bp_call_return_error (op->call, error);
      to_fd_op_free (op);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  bp_pool_acquire_async (self->pool, bp_call_get_sender (op->call), bp_call_get_cancellable (op->call),
                         to_fd_acquired_cb, op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* BeginTransaction */
typedef struct
{
  BpPgBackend *self;   /* (owned) */
  BpCall      *call;   /* (owned) */
  BpPoolItem  *item;   /* (nullable) */
  BpPgOptions  options;
} BeginOp;

static void
begin_op_free (BeginOp *op)
{
  if (op->item != NULL)
    bp_pg_backend_release (op->self, g_steal_pointer (&op->item));
  g_clear_object (&op->self);
  g_clear_object (&op->call);
  bp_pg_options_clear (&op->options);
  g_free (op);
}

static void
transaction_ended_cb (BpPgTransaction *transaction,
                      BpPgBackend     *self)
{
  g_hash_table_remove (self->transactions, transaction);
}

/* Main context: BEGIN ran. */
static void
begin_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  BeginOp *op = user_data;
  BpPgBackend *self = op->self;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpPgTransaction) transaction = NULL;

  if (!bp_pg_connection_query_finish (BP_PG_CONNECTION (object), result, NULL, NULL, NULL, &error))
    {
      bp_call_return_error (op->call, error);
      begin_op_free (op);
      return;
    }
  transaction = bp_pg_transaction_new (self, g_steal_pointer (&op->item),
                                       bp_call_get_sender (op->call), &op->options);
  if (!bp_pg_transaction_export (transaction, &error))
    {
      bp_pg_transaction_abort (transaction);
      bp_call_return_error (op->call, error);
      begin_op_free (op);
      return;
    }
  g_hash_table_add (self->transactions, g_object_ref (transaction));
  g_signal_connect_object (transaction, "ended", G_CALLBACK (transaction_ended_cb), self, 0);
  bp_call_return_value (op->call, g_variant_new ("(o)", bp_pg_transaction_get_path (transaction)));
  begin_op_free (op);
}

static void
begin_acquired_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  BeginOp *op = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *sql = NULL;

  op->item = bp_pool_acquire_finish (BP_POOL (object), result, &error);
  if (op->item == NULL)
    {
      bp_call_return_error (op->call, error);
      begin_op_free (op);
      return;
    }
  sql = bp_pg_transaction_begin_sql (&op->options);
  bp_pg_connection_query_async (bp_pool_item_get_resource (op->item), sql, NULL, 0, 0,
                                bp_call_get_cancellable (op->call), begin_done_cb, op);
}

static gboolean
handle_begin_transaction (BpDBusSql             *iface,
                          GDBusMethodInvocation *invocation,
                          GVariant              *options,
                          gpointer               user_data)
{
  BpPgBackend *self = user_data;
  BeginOp *op = g_new0 (BeginOp, 1);
  g_autoptr(GError) error = NULL;

  op->self = g_object_ref (self);
  op->call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  if (bp_pg_options_parse (options, BP_PG_OPT_ISOLATION | BP_PG_OPT_READ_ONLY | BP_PG_OPT_IDLE_TIMEOUT,
                           self->max_rows, &op->options, &error))
    {
      if (g_hash_table_size (self->transactions) >= self->max_transactions)
        g_set_error (&error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED, "%u transactions are open, at most %u",
                     g_hash_table_size (self->transactions), self->max_transactions);
      else if (self->pool == NULL || bp_pool_is_closed (self->pool))
        g_set_error (&error, BP_ERROR, BP_ERROR_UNAVAILABLE, "backend %s is not running",
                     bp_backend_get_name (BP_BACKEND (self)));
    }
  if (error != NULL)
    {
      bp_call_return_error (op->call, error);
      begin_op_free (op);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  bp_pool_acquire_async (self->pool, bp_call_get_sender (op->call), bp_call_get_cancellable (op->call),
                         begin_acquired_cb, op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Listen */
static void
listener_ended_cb (BpPgListener *listener,
                   BpPgBackend  *self)
{
  g_hash_table_remove (self->listeners, listener);
}

typedef struct
{
  BpPgBackend  *self;      /* (owned) */
  BpCall       *call;      /* (owned) */
  BpPgListener *listener;  /* (owned) */
} ListenOp;

static void
listen_started_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  ListenOp *op = user_data;
  g_autoptr(GError) error = NULL;

  if (!bp_pg_listener_start_finish (op->listener, result, &error))
    {
      g_hash_table_remove (op->self->listeners, op->listener);
      bp_call_return_error (op->call, error);
    }
  else
    bp_call_return_value (op->call, g_variant_new ("(o)", bp_pg_listener_get_path (op->listener)));
  g_object_unref (op->self);
  g_object_unref (op->call);
  g_object_unref (op->listener);
  g_free (op);
}

static gboolean
handle_listen (BpDBusSql             *iface,
               GDBusMethodInvocation *invocation,
               const char            *channel,
               gpointer               user_data)
{
  BpPgBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  GError *error = NULL;
  ListenOp *op;

  if (!bp_pg_check_channel (channel, &error))
    return reply_error (call, error);
  if (g_hash_table_size (self->listeners) >= self->max_listens)
    return reply_error (call, g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                                           "%u subscriptions are open, at most %u",
                                           g_hash_table_size (self->listeners), self->max_listens));
  if (self->conninfo == NULL)
    return reply_error (call, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "backend %s is not running",
                                           bp_backend_get_name (BP_BACKEND (self))));

  op = g_new0 (ListenOp, 1);
  op->self = g_object_ref (self);
  op->call = call;
  op->listener = bp_pg_listener_new (self, bp_call_get_sender (call), channel);
  g_hash_table_add (self->listeners, g_object_ref (op->listener));
  g_signal_connect_object (op->listener, "ended", G_CALLBACK (listener_ended_cb), self, 0);
  bp_pg_listener_start_async (op->listener, bp_call_get_cancellable (call), listen_started_cb, op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------------------------------------------------------------------- */
/* BpBackend vfuncs                                                        */

static gboolean
bp_pg_backend_configure (BpBackend        *backend,
                         BpConfigSection  *section,
                         GError          **error)
{
  BpPgBackend *self = BP_PG_BACKEND (backend);
  guint64 value;

  g_clear_pointer (&self->conninfo, g_free);
  self->conninfo = bp_config_section_get_string (section, "conninfo", NULL);
  if (!bp_config_section_get_boolean (section, "managed", FALSE, &self->managed, error))
    return FALSE;
  g_clear_pointer (&self->data_dir, g_free);
  self->data_dir = bp_config_section_get_string (section, "data-dir", NULL);
  g_clear_pointer (&self->password, g_free);
  if (!bp_config_section_get_secret (section, "password", &self->password, error))
    return FALSE;

  if (self->managed && self->conninfo != NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "[%s] conninfo and managed=true exclude each other",
                   bp_config_section_get_group (section));
      return FALSE;
    }
  if (!self->managed && self->conninfo == NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "[%s] conninfo is required (or managed=true)",
                   bp_config_section_get_group (section));
      return FALSE;
    }
  if (!self->managed && self->data_dir != NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "[%s] data-dir needs managed=true", bp_config_section_get_group (section));
      return FALSE;
    }
  if (self->conninfo != NULL)
    {
      char *errmsg = NULL;
      PQconninfoOption *parsed = PQconninfoParse (self->conninfo, &errmsg);

      if (parsed == NULL)
        {
          g_autofree char *message = g_strstrip (g_strdup (errmsg != NULL ? errmsg : "out of memory"));
          g_autofree char *redacted = bp_pg_redact (message, self->password);

          PQfreemem (errmsg);
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "[%s] conninfo: %s",
                       bp_config_section_get_group (section), redacted);
          return FALSE;
        }
      PQconninfoFree (parsed);
    }

  if (!bp_config_section_get_uint (section, "max-rows", 100000, 1, 10000000, &value, error))
    return FALSE;
  self->max_rows = (guint) value;
  if (!bp_config_section_get_uint (section, "max-statements", 10000, 1, 1000000, &value, error))
    return FALSE;
  self->max_statements = (guint) value;
  if (!bp_config_section_get_uint (section, "max-transactions", 64, 1, 10000, &value, error))
    return FALSE;
  self->max_transactions = (guint) value;
  if (!bp_config_section_get_uint (section, "max-listens", 32, 1, 10000, &value, error))
    return FALSE;
  self->max_listens = (guint) value;
  if (!bp_config_section_get_uint (section, "connect-timeout-ms", 10000, 100, 600000, &value, error))
    return FALSE;
  self->connect_timeout_ms = (guint) value;

  {
    const BpBackendResilienceConfig *r = bp_backend_get_resilience_config (backend);
    static const BpJitter jitters[] = { BP_JITTER_FULL, BP_JITTER_EQUAL, BP_JITTER_DECORRELATED };

    g_object_set (self->retry,
                  "max-attempts", clamp_uint (r->retry_max_attempts),
                  "base-ms", clamp_uint (r->retry_base_ms),
                  "cap-ms", clamp_uint (r->retry_cap_ms),
                  "jitter", jitters[MIN (r->retry_jitter, G_N_ELEMENTS (jitters) - 1)],
                  "deadline-ms", clamp_uint (r->retry_deadline_ms),
                  NULL);
  }
  return TRUE;
}

static void
start_pool (BpPgBackend *self,
            GTask       *task);

/* Main context: the first connection proves the configuration. */
static void
start_checked_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) pid = g_task_propagate_pointer (G_TASK (result), &error);

  if (pid == NULL)
    {
      /* Exported all the same: unavailable with the reason, recovering on
       * the next successful call. */
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
run_health (BpPgBackend         *self,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  SqlOp *op = sql_op_new (self, NULL, SQL_HEALTH);

  op->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (op->task, run_health);
  bp_retry_run_async (self->retry, &sql_operation, op, NULL, BP_IDEMPOTENCY_IDEMPOTENT,
                      cancellable, sql_op_done_cb, op);
}

static void
start_pool (BpPgBackend *self,
            GTask       *task)
{
  create_pool (self);
  run_health (self, g_task_get_cancellable (task), start_checked_cb, g_object_ref (task));
}

/* Main context: the managed cluster runs (or failed to). */
static void
cluster_started_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpPgBackend *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  char *conninfo = bp_pg_cluster_start_finish (BP_PG_CLUSTER (object), result, &error);

  if (conninfo == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_free (self->conninfo);
  self->conninfo = conninfo;
  start_pool (self, task);
}

static void
bp_pg_backend_start_async (BpBackend           *backend,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  BpPgBackend *self = BP_PG_BACKEND (backend);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, bp_pg_backend_start_async);

  if (self->managed)
    {
      g_autofree char *data_dir = self->data_dir != NULL
        ? g_strdup (self->data_dir)
        : g_build_filename (g_get_user_data_dir (), "backplane", "postgres", bp_backend_get_name (backend), NULL);
      g_autofree char *socket_dir = g_build_filename (g_get_user_runtime_dir (), "backplane",
                                                      bp_backend_get_name (backend), NULL);

      self->cluster = bp_pg_cluster_new (BP_PG_BINDIR, data_dir, socket_dir, bp_backend_get_clock (backend));
      bp_pg_cluster_start_async (self->cluster, cancellable, cluster_started_cb, g_steal_pointer (&task));
      return;
    }
  start_pool (self, task);
}

static gboolean
bp_pg_backend_start_finish (BpBackend     *backend,
                            GAsyncResult  *result,
                            GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
stop_cluster_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;

  bp_pg_cluster_stop_finish (BP_PG_CLUSTER (object), result, NULL);
  g_task_return_boolean (task, TRUE);
}

/* Main context: every pooled connection is closed. */
static void
stop_pool_closed_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpPgBackend *self = g_task_get_source_object (task);

  bp_pool_close_finish (BP_POOL (object), result, NULL);
  if (self->cluster != NULL)
    {
      bp_pg_cluster_stop_async (self->cluster, stop_cluster_cb, g_steal_pointer (&task));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
bp_pg_backend_stop_async (BpBackend           *backend,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  BpPgBackend *self = BP_PG_BACKEND (backend);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  GList *transactions;
  GList *listeners;

  g_task_set_source_tag (task, bp_pg_backend_stop_async);
  g_cancellable_cancel (self->stop_cancellable);

  /* Roll back what clients left open; their connections go back to the
   * pool (or are destroyed) before it closes. Ending removes them from the
   * tables, so walk copies. */
  transactions = g_hash_table_get_keys (self->transactions);
  g_list_foreach (transactions, (GFunc) (void (*) (void)) g_object_ref, NULL);
  for (GList *l = transactions; l != NULL; l = l->next)
    bp_pg_transaction_abort (l->data);
  g_list_free_full (transactions, g_object_unref);
  listeners = g_hash_table_get_keys (self->listeners);
  g_list_foreach (listeners, (GFunc) (void (*) (void)) g_object_ref, NULL);
  for (GList *l = listeners; l != NULL; l = l->next)
    bp_pg_listener_close (l->data);
  g_list_free_full (listeners, g_object_unref);

  if (self->pool != NULL)
    {
      bp_pool_close_async (self->pool, NULL, stop_pool_closed_cb, g_steal_pointer (&task));
      return;
    }
  if (self->cluster != NULL)
    {
      bp_pg_cluster_stop_async (self->cluster, stop_cluster_cb, g_steal_pointer (&task));
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static gboolean
bp_pg_backend_stop_finish (BpBackend     *backend,
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
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) pid = g_task_propagate_pointer (G_TASK (result), &error);

  if (pid == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, g_strdup_printf ("SELECT 1 answered by backend pid %d",
                                                  g_variant_get_int32 (pid)), g_free);
}

static void
bp_pg_backend_check_health_async (BpBackend           *backend,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  GTask *task = g_task_new (backend, cancellable, callback, user_data);

  g_task_set_source_tag (task, bp_pg_backend_check_health_async);
  run_health (BP_PG_BACKEND (backend), cancellable, health_done_cb, task);
}

static gboolean
bp_pg_backend_check_health_finish (BpBackend     *backend,
                                   GAsyncResult  *result,
                                   char         **detail,
                                   GError       **error)
{
  char *d = g_task_propagate_pointer (G_TASK (result), error);

  if (d == NULL)
    return FALSE;
  if (detail != NULL)
    *detail = d;
  else
    g_free (d);
  return TRUE;
}

static GVariant *
bp_pg_backend_dup_pool_stats (BpBackend *backend)
{
  BpPgBackend *self = BP_PG_BACKEND (backend);

  if (self->pool == NULL)
    return g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
  return bp_pool_dup_stats (self->pool);
}

static void
bp_pg_backend_dispose (GObject *object)
{
  BpPgBackend *self = BP_PG_BACKEND (object);

  g_clear_object (&self->iface);
  g_clear_pointer (&self->transactions, g_hash_table_unref);
  g_clear_pointer (&self->listeners, g_hash_table_unref);
  g_clear_object (&self->pool);
  g_clear_object (&self->retry);
  g_clear_object (&self->cluster);
  g_clear_object (&self->stop_cancellable);
  G_OBJECT_CLASS (bp_pg_backend_parent_class)->dispose (object);
}

static void
bp_pg_backend_finalize (GObject *object)
{
  BpPgBackend *self = BP_PG_BACKEND (object);

  g_free (self->conninfo);
  g_free (self->data_dir);
  if (self->password != NULL)
    {
      memset (self->password, 0, strlen (self->password));
      g_free (self->password);
    }
  G_OBJECT_CLASS (bp_pg_backend_parent_class)->finalize (object);
}

static void
bp_pg_backend_constructed (GObject *object)
{
  BpPgBackend *self = BP_PG_BACKEND (object);

  G_OBJECT_CLASS (bp_pg_backend_parent_class)->constructed (object);

  self->retry = bp_retry_new (bp_backend_get_clock (BP_BACKEND (self)));
  bp_retry_set_classify_func (self->retry, bp_pg_classify_failure, NULL, NULL);
  bp_breaker_set_classify_func (bp_backend_get_breaker (BP_BACKEND (self)),
                                bp_pg_classify_failure, NULL, NULL);
}

static void
bp_pg_backend_class_init (BpPgBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  BpBackendClass *backend_class = BP_BACKEND_CLASS (klass);

  object_class->constructed = bp_pg_backend_constructed;
  object_class->dispose = bp_pg_backend_dispose;
  object_class->finalize = bp_pg_backend_finalize;
  backend_class->configure = bp_pg_backend_configure;
  backend_class->start_async = bp_pg_backend_start_async;
  backend_class->start_finish = bp_pg_backend_start_finish;
  backend_class->stop_async = bp_pg_backend_stop_async;
  backend_class->stop_finish = bp_pg_backend_stop_finish;
  backend_class->check_health_async = bp_pg_backend_check_health_async;
  backend_class->check_health_finish = bp_pg_backend_check_health_finish;
  backend_class->dup_pool_stats = bp_pg_backend_dup_pool_stats;
}

static void
bp_pg_backend_init (BpPgBackend *self)
{
  self->transactions = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->listeners = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->stop_cancellable = g_cancellable_new ();
  self->max_rows = 100000;
  self->connect_timeout_ms = BP_PG_CONNECTION_DEFAULT_CONNECT_TIMEOUT_MS;

  self->iface = bp_dbus_sql_skeleton_new ();
  g_signal_connect (self->iface, "handle-query", G_CALLBACK (handle_query), self);
  g_signal_connect (self->iface, "handle-query-to-fd", G_CALLBACK (handle_query_to_fd), self);
  g_signal_connect (self->iface, "handle-execute", G_CALLBACK (handle_execute), self);
  g_signal_connect (self->iface, "handle-begin-transaction", G_CALLBACK (handle_begin_transaction), self);
  g_signal_connect (self->iface, "handle-listen", G_CALLBACK (handle_listen), self);
  g_signal_connect (self->iface, "handle-copy-from", G_CALLBACK (handle_copy_from), self);
  g_signal_connect (self->iface, "handle-copy-to", G_CALLBACK (handle_copy_to), self);
  bp_backend_add_interface (BP_BACKEND (self), G_DBUS_INTERFACE_SKELETON (self->iface));
}
