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
 * default 64), max-listens= (Listen subscriptions, all served by one
 * dedicated connection, default 32), connect-timeout-ms= (default 10000),
 * and for managed=true only: data-dir= (default
 * $XDG_DATA_HOME/backplane/postgres/NAME), socket-dir= (default
 * $XDG_RUNTIME_DIR/backplane/NAME), bindir= (default the build's
 * BP_PG_BINDIR).
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
#include "bp-pg-pool.h"
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
  char         *socket_dir;         /* (owned) (nullable) */
  char         *bindir;             /* (owned) (nullable) */
  guint         max_rows;
  guint         max_statements;
  guint         max_transactions;
  guint         max_listens;
  guint         connect_timeout_ms;

  BpPgCluster  *cluster;            /* (owned) (nullable) */
  BpPool       *pool;               /* (owned) (nullable) until started */
  GHashTable   *transactions;       /* (element-type BpPgTransaction) (owned) */
  BpPgListener *listener;           /* (owned) (nullable) until the first Listen */
  GCancellable *stop_cancellable;   /* (owned) */
  GSource      *probe_source;       /* (owned) (nullable): next recovery probe */
  BpPgConnection *probe;            /* (owned) (nullable): a probe connecting */
  guint         probe_ms;
  gboolean      stopping;
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

/* ---------------------------------------------------------------------- */
/* Backend state: ready / degraded / unavailable                          */

/*
 * The state follows the server and the breaker: a failed connect makes the
 * backend `unavailable` with the reason; the breaker opening makes it
 * `unavailable`, half-open `degraded`; a successful call or probe makes it
 * `ready` again (unless the breaker is open). While the server is away, or
 * when a connection was lost, a recovery probe (a plain connect, outside
 * pool, breaker and retry) runs with backoff (200 ms doubling to 10 s) until
 * the server answers, so the state comes back without any client traffic.
 */

#define PROBE_MIN_MS 200
#define PROBE_MAX_MS 10000

static void schedule_probe (BpPgBackend *self);

static gboolean
breaker_open (BpPgBackend *self)
{
  return bp_breaker_get_state (bp_backend_get_breaker (BP_BACKEND (self))) == BP_BREAKER_OPEN;
}

static void
set_state (BpPgBackend    *self,
           BpBackendState  state,
           const char     *reason)
{
  BpBackend *backend = BP_BACKEND (self);
  BpBackendState current = bp_backend_get_state (backend);

  if (self->stopping || current == BP_BACKEND_STATE_STOPPING || current == BP_BACKEND_STATE_STARTING)
    return;
  if (current == state && g_strcmp0 (reason, bp_backend_get_state_reason (backend)) == 0)
    return;
  bp_backend_set_state (backend, state, reason);
}

/* Main context: the probe connected (or not). */
static void
probe_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(BpPgBackend) self = user_data;
  BpPgConnection *conn = BP_PG_CONNECTION (object);
  g_autoptr(GError) error = NULL;

  if (!bp_pg_connection_connect_finish (conn, result, &error))
    {
      if (conn != self->probe)
        return;
      g_clear_object (&self->probe);
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      set_state (self, BP_BACKEND_STATE_UNAVAILABLE, error->message);
      schedule_probe (self);
      return;
    }
  bp_pg_connection_close (conn);
  if (conn != self->probe)
    return;
  g_clear_object (&self->probe);
  self->probe_ms = PROBE_MIN_MS;
  if (!breaker_open (self))
    set_state (self, BP_BACKEND_STATE_READY, NULL);
}

static gboolean
on_probe (gpointer user_data)
{
  BpPgBackend *self = user_data;
  g_autofree char *app = g_strdup_printf ("backplaned/%s/probe", bp_backend_get_name (BP_BACKEND (self)));

  g_clear_pointer (&self->probe_source, g_source_unref);
  if (self->stopping || self->conninfo == NULL)
    return G_SOURCE_REMOVE;
  self->probe = bp_pg_connection_new (self->conninfo, self->password, bp_backend_get_clock (BP_BACKEND (self)));
  bp_pg_connection_set_application_name (self->probe, app);
  bp_pg_connection_set_connect_timeout (self->probe, self->connect_timeout_ms);
  bp_pg_connection_connect_async (self->probe, self->stop_cancellable, probe_done_cb, g_object_ref (self));
  return G_SOURCE_REMOVE;
}

static void
schedule_probe (BpPgBackend *self)
{
  if (self->stopping || self->probe_source != NULL || self->probe != NULL)
    return;
  self->probe_source = bp_clock_timeout_source_new (bp_backend_get_clock (BP_BACKEND (self)),
                                                    (gint64) self->probe_ms * 1000);
  g_source_set_callback (self->probe_source, on_probe, self, NULL);
  g_source_set_static_name (self->probe_source, "[bp-postgres] recovery probe");
  g_source_attach (self->probe_source, g_main_context_get_thread_default ());
  self->probe_ms = MIN (self->probe_ms * 2, PROBE_MAX_MS);
}

/* Main context: a connection of ours broke (idle in the pool, or in use). */
static void
connection_lost_cb (BpPgConnection *conn,
                    const GError   *error,
                    BpPgBackend    *self)
{
  g_debug ("%s: connection lost: %s", bp_backend_get_name (BP_BACKEND (self)), error->message);
  schedule_probe (self);
}

/* Main context. */
static void
breaker_state_changed_cb (BpBreaker      *breaker,
                          BpBreakerState  old_state,
                          BpBreakerState  new_state,
                          BpPgBackend    *self)
{
  switch (new_state)
    {
    case BP_BREAKER_OPEN:
      set_state (self, BP_BACKEND_STATE_UNAVAILABLE, "circuit breaker open");
      schedule_probe (self);
      break;
    case BP_BREAKER_HALF_OPEN:
      set_state (self, BP_BACKEND_STATE_DEGRADED, "circuit breaker half-open");
      break;
    case BP_BREAKER_CLOSED:
    default:
      if (bp_backend_get_state (BP_BACKEND (self)) != BP_BACKEND_STATE_READY)
        schedule_probe (self);
      break;
    }
}

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
  /* A connection lost while idle is the first sign of a server going
   * away: look whether it is still there. */
  g_signal_connect_object (conn, "closed", G_CALLBACK (connection_lost_cb), self, 0);
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
  bp_pg_pool_release (self->pool, item);
}

guint
bp_pg_backend_get_max_rows (BpPgBackend *self)
{
  return self->max_rows;
}

static void
create_pool (BpPgBackend *self)
{
  self->pool = bp_pg_pool_new ((BpPgConnectionFactory) bp_pg_backend_new_connection, self, NULL,
                               bp_backend_get_clock (BP_BACKEND (self)),
                               bp_backend_get_pool_config (BP_BACKEND (self)),
                               self->connect_timeout_ms);
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
  gboolean       no_breaker;  /* a dead-letter replay: the caller holds the permit */
  guint          attempts;
  GError        *error;       /* (owned) (nullable): the failure being dead-lettered */
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
  g_clear_error (&op->error);
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

/* The statement timeout of a Query or Execute: the call's timeout-ms
 * option, else the backend's breaker.timeout-ms (0: none). Either way the
 * server cancels the statement and the call fails with Timeout. */
static guint
statement_timeout_ms (SqlOp *op)
{
  if (op->options.timeout_ms > 0)
    return op->options.timeout_ms;
  return (guint) bp_backend_get_resilience_config (BP_BACKEND (op->self))->breaker_timeout_ms;
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

  attempt->item = bp_pg_pool_acquire_finish (BP_POOL (object), result, &error);
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
                                    statement_timeout_ms (op), cancellable, attempt_query_cb, attempt);
      break;
    case SQL_HEALTH:
      bp_pg_connection_query_async (conn, "SELECT 1", NULL, 0, 0, cancellable, attempt_query_cb, attempt);
      break;
    case SQL_EXECUTE:
      bp_pg_connection_execute_async (conn, op->statements,
                                      op->options.atomic ? BP_PG_PIPELINE_FLAGS_NONE
                                                         : BP_PG_PIPELINE_FLAGS_SYNC_EACH,
                                      statement_timeout_ms (op), cancellable, attempt_execute_cb, attempt);
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
  if (!op->no_breaker)
    {
      attempt->permit = bp_breaker_try_acquire (bp_backend_get_breaker (BP_BACKEND (self)), &error);
      if (attempt->permit == NULL)
        {
          attempt_done (attempt, NULL, error);
          return;
        }
    }
  bp_pg_pool_acquire_async (self->pool,
                            op->call != NULL ? bp_call_get_sender (op->call) : op->no_breaker ? "replay" : "health",
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
  char sqlstate[6];

  bp_backend_record_latency (backend, now - started_us, error == NULL);
  if (error == NULL)
    {
      if (!breaker_open (self))
        set_state (self, BP_BACKEND_STATE_READY, NULL);
      return;
    }
  if (!bp_pg_error_get_sqlstate (error, sqlstate))
    return;
  if (g_str_equal (sqlstate, "08001") || g_str_equal (sqlstate, "57P03"))
    {
      /* The server cannot be reached (or does not take connections). */
      set_state (self, BP_BACKEND_STATE_UNAVAILABLE, error->message);
      schedule_probe (self);
    }
  else if (bp_pg_sqlstate_classify (sqlstate) == BP_PG_ERROR_CLASS_CONNECTION)
    schedule_probe (self);
}

/*
 * Dead letters. A Query or Execute with `dead-letter` (idempotent or keyed)
 * that still fails after its retries, for a reason that says the server
 * was out of reach rather than that the statement is wrong — a connection
 * failure, a timeout, the pool exhausted, the breaker open, a serialization
 * failure, insufficient resources — is stored in the daemon's dead-letter
 * queue (operation "Sql.Query" or "Sql.Execute", payload the statements
 * and their parameters). The call still fails, its message saying which
 * entry holds it. Replays re-run it (bp_pg_backend_replay_async()).
 */
static gboolean
should_dead_letter (const GError *error)
{
  char sqlstate[6];

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return FALSE;
  if (bp_pg_error_get_sqlstate (error, sqlstate))
    {
      switch (bp_pg_sqlstate_classify (sqlstate))
        {
        case BP_PG_ERROR_CLASS_CONNECTION:
        case BP_PG_ERROR_CLASS_RETRY_TX:
          return TRUE;
        case BP_PG_ERROR_CLASS_CLIENT:
          return FALSE;
        case BP_PG_ERROR_CLASS_OTHER:
        default:
          return g_str_has_prefix (sqlstate, "53") || g_str_has_prefix (sqlstate, "57");
        }
    }
  return g_error_matches (error, BP_ERROR, BP_ERROR_UNAVAILABLE) ||
         g_error_matches (error, BP_ERROR, BP_ERROR_TIMEOUT) ||
         g_error_matches (error, BP_ERROR, BP_ERROR_POOL_EXHAUSTED) ||
         g_error_matches (error, BP_ERROR, BP_ERROR_CIRCUIT_OPEN);
}

static GVariant *
dead_letter_payload (SqlOp *op)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  if (op->kind == SQL_QUERY)
    {
      g_variant_dict_insert (&dict, "sql", "s", op->sql);
      g_variant_dict_insert_value (&dict, "params", op->params);
      g_variant_dict_insert (&dict, "max-rows", "u", op->options.max_rows);
    }
  else
    {
      g_variant_dict_insert_value (&dict, "statements", op->statements);
      g_variant_dict_insert (&dict, "atomic", "b", op->options.atomic);
    }
  if (op->options.timeout_ms > 0)
    g_variant_dict_insert (&dict, "timeout-ms", "u", op->options.timeout_ms);
  return g_variant_dict_end (&dict);
}

/* Main context: the entry is stored (or the store refused it). */
static void
dead_lettered_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  SqlOp *op = user_data;
  g_autoptr(GError) store_error = NULL;
  g_autoptr(GError) error = NULL;
  guint64 id = 0;

  if (bp_backend_dead_letter_finish (BP_BACKEND (object), result, &id, &store_error))
    error = g_error_new (op->error->domain, op->error->code, "%s (dead-lettered as entry %" G_GUINT64_FORMAT ")",
                         op->error->message, id);
  else
    error = g_error_new (op->error->domain, op->error->code, "%s (not dead-lettered: %s)",
                         op->error->message, store_error->message);
  bp_call_return_error (op->call, error);
  sql_op_free (op);
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

  bp_retry_run_finish (BP_RETRY (object), result, (gpointer *) &reply, &op->attempts, &error);
  note_outcome (op->self, op->started_us, error);

  if (op->task != NULL)
    {
      if (reply == NULL)
        g_task_return_error (op->task, g_steal_pointer (&error));
      else
        g_task_return_pointer (op->task, reply, (GDestroyNotify) g_variant_unref);
    }
  else if (reply == NULL && op->options.dead_letter && should_dead_letter (error))
    {
      g_autoptr(GVariant) payload = g_variant_ref_sink (dead_letter_payload (op));

      op->error = g_steal_pointer (&error);
      bp_backend_dead_letter_async (BP_BACKEND (op->self), op->kind == SQL_QUERY ? "Sql.Query" : "Sql.Execute",
                                    payload, op->options.idempotency_key, op->error, op->attempts,
                                    NULL, dead_lettered_cb, op);
      return;
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
  bp_retry_run_async (bp_backend_get_retry (BP_BACKEND (op->self)), &sql_operation, op, NULL, idempotency,
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
  if (!bp_pg_options_parse (options, BP_PG_OPT_TIMEOUT | BP_PG_OPT_ATOMIC | BP_PG_OPT_IDEMPOTENT |
                                     BP_PG_OPT_IDEMPOTENCY_KEY | BP_PG_OPT_DEAD_LETTER,
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

  op->item = bp_pg_pool_acquire_finish (BP_POOL (object), result, &error);
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
  bp_pg_pool_acquire_async (self->pool, bp_call_get_sender (op->call), bp_call_get_cancellable (op->call),
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

  op->item = bp_pg_pool_acquire_finish (BP_POOL (object), result, &error);
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
  bp_pg_pool_acquire_async (self->pool, bp_call_get_sender (op->call), bp_call_get_cancellable (op->call),
                         begin_acquired_cb, op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Listen */
typedef struct
{
  BpPgBackend *self;   /* (owned) */
  BpCall      *call;   /* (owned) */
} ListenOp;

/* Main context: the channel is listened to (or not). */
static void
listen_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  ListenOp *op = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpSubscription) sub = bp_pg_listener_subscribe_finish (BP_PG_LISTENER (object), result, &error);

  if (sub == NULL)
    bp_call_return_error (op->call, error);
  else
    bp_call_return_value (op->call, g_variant_new ("(o)", bp_subscription_get_object_path (sub)));
  g_object_unref (op->self);
  g_object_unref (op->call);
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
  if (self->conninfo == NULL || self->pool == NULL || bp_pool_is_closed (self->pool))
    return reply_error (call, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "backend %s is not running",
                                           bp_backend_get_name (BP_BACKEND (self))));
  if (self->listener == NULL)
    self->listener = bp_pg_listener_new (self);
  if (bp_pg_listener_get_n_subscriptions (self->listener) >= self->max_listens)
    return reply_error (call, g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                                           "%u subscriptions are open, at most %u",
                                           bp_pg_listener_get_n_subscriptions (self->listener),
                                           self->max_listens));

  op = g_new0 (ListenOp, 1);
  op->self = g_object_ref (self);
  op->call = call;
  bp_pg_listener_subscribe_async (self->listener, bp_call_get_sender (call), channel,
                                  bp_call_get_cancellable (call), listen_done_cb, op);
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
  g_clear_pointer (&self->socket_dir, g_free);
  self->socket_dir = bp_config_section_get_string (section, "socket-dir", NULL);
  g_clear_pointer (&self->bindir, g_free);
  self->bindir = bp_config_section_get_string (section, "bindir", NULL);
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
  if (!self->managed && (self->data_dir != NULL || self->socket_dir != NULL || self->bindir != NULL))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "[%s] %s needs managed=true", bp_config_section_get_group (section),
                   self->data_dir != NULL ? "data-dir" : self->socket_dir != NULL ? "socket-dir" : "bindir");
      return FALSE;
    }
  for (guint i = 0; i < 3; i++)
    {
      const char *keys[] = { "data-dir", "socket-dir", "bindir" };
      const char *values[] = { self->data_dir, self->socket_dir, self->bindir };

      if (values[i] != NULL && !g_path_is_absolute (values[i]))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "[%s] %s: “%s” is not an absolute path",
                       bp_config_section_get_group (section), keys[i], values[i]);
          return FALSE;
        }
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
       * the next successful call or probe. */
      schedule_probe (g_task_get_source_object (task));
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
  bp_retry_run_async (bp_backend_get_retry (BP_BACKEND (self)), &sql_operation, op, NULL, BP_IDEMPOTENCY_IDEMPOTENT,
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
      const char *name = bp_backend_get_name (backend);
      g_autofree char *data_dir = self->data_dir != NULL
        ? g_strdup (self->data_dir)
        : g_build_filename (g_get_user_data_dir (), "backplane", "postgres", name, NULL);
      g_autofree char *socket_dir = self->socket_dir != NULL
        ? g_strdup (self->socket_dir)
        : g_build_filename (g_get_user_runtime_dir (), "backplane", name, NULL);
      /* As root the server runs as `postgres`, which cannot enter root's
       * 0700 home: then the system locations serve (explicit keys never
       * fall back). */
      g_autofree char *fallback_data_dir = self->data_dir == NULL
        ? g_build_filename ("/var/lib/backplane/postgres", name, NULL) : NULL;
      g_autofree char *fallback_socket_dir = self->socket_dir == NULL
        ? g_build_filename ("/run/backplane", name, NULL) : NULL;

      self->cluster = bp_pg_cluster_new (self->bindir != NULL ? self->bindir : BP_PG_BINDIR,
                                         data_dir, socket_dir, bp_backend_get_clock (backend));
      bp_pg_cluster_set_fallback_dirs (self->cluster, fallback_data_dir, fallback_socket_dir);
      bp_pg_cluster_start_async (self->cluster, cancellable, cluster_started_cb, g_steal_pointer (&task));
      return;
    }
  start_pool (self, task);
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

  g_task_set_source_tag (task, bp_pg_backend_stop_async);
  self->stopping = TRUE;
  g_cancellable_cancel (self->stop_cancellable);
  if (self->probe_source != NULL)
    {
      g_source_destroy (self->probe_source);
      g_clear_pointer (&self->probe_source, g_source_unref);
    }
  if (self->probe != NULL)
    bp_pg_connection_close (self->probe);
  g_clear_object (&self->probe);

  /* Roll back what clients left open; their connections go back to the
   * pool (or are destroyed) before it closes. Ending removes them from the
   * tables, so walk copies. */
  transactions = g_hash_table_get_keys (self->transactions);
  g_list_foreach (transactions, (GFunc) (void (*) (void)) g_object_ref, NULL);
  for (GList *l = transactions; l != NULL; l = l->next)
    bp_pg_transaction_abort (l->data);
  g_list_free_full (transactions, g_object_unref);
  if (self->listener != NULL)
    bp_pg_listener_close (self->listener);

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

/* Main context: the one attempt of a replay ended. */
static void
replay_attempt_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  SqlOp *op = user_data;
  GError *error = NULL;
  GVariant *reply = NULL;

  if (attempt_finish (op, result, (gpointer *) &reply, &error))
    {
      g_variant_unref (reply);
      note_outcome (op->self, op->started_us, NULL);
      g_task_return_boolean (op->task, TRUE);
    }
  else
    {
      note_outcome (op->self, op->started_us, error);
      g_task_return_error (op->task, error);
    }
  sql_op_free (op);
}

/* BpBackendClass.replay_async: re-runs a dead-lettered Query or Execute,
 * once: the caller (BpBackend) holds the breaker permit and BpDeadLetters
 * schedules the next try. Main context. */
static void
bp_pg_backend_replay_async (BpBackend           *backend,
                            const char          *operation,
                            GVariant            *payload,
                            const char          *idempotency_key,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  BpPgBackend *self = BP_PG_BACKEND (backend);
  SqlOp *op = NULL;
  const char *sql = NULL;
  guint32 max_rows = self->max_rows;

  if (payload != NULL && g_variant_is_of_type (payload, G_VARIANT_TYPE_VARDICT))
    {
      if (g_str_equal (operation, "Sql.Query") &&
          g_variant_lookup (payload, "sql", "&s", &sql))
        {
          op = sql_op_new (self, NULL, SQL_QUERY);
          op->sql = g_strdup (sql);
          op->params = g_variant_lookup_value (payload, "params", G_VARIANT_TYPE ("av"));
          g_variant_lookup (payload, "max-rows", "u", &max_rows);
          op->options.max_rows = MIN (max_rows, self->max_rows);
        }
      else if (g_str_equal (operation, "Sql.Execute"))
        {
          g_autoptr(GVariant) statements = g_variant_lookup_value (payload, "statements", G_VARIANT_TYPE ("a(sav)"));

          if (statements != NULL && g_variant_n_children (statements) <= self->max_statements)
            {
              op = sql_op_new (self, NULL, SQL_EXECUTE);
              op->statements = g_steal_pointer (&statements);
              g_variant_lookup (payload, "atomic", "b", &op->options.atomic);
            }
        }
    }
  if (op == NULL)
    {
      g_task_report_new_error (self, callback, user_data, bp_pg_backend_replay_async,
                               BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                               "backend %s cannot replay this “%s” entry",
                               bp_backend_get_name (backend), operation);
      return;
    }
  g_variant_lookup (payload, "timeout-ms", "u", &op->options.timeout_ms);
  op->options.idempotency_key = g_strdup (idempotency_key);
  op->no_breaker = TRUE;
  op->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (op->task, bp_pg_backend_replay_async);
  attempt_start (op, cancellable, replay_attempt_cb, op);
}

static gboolean
bp_pg_backend_replay_finish (BpBackend     *backend,
                             GAsyncResult  *result,
                             GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
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
  if (self->listener != NULL)
    bp_pg_listener_close (self->listener);
  g_clear_object (&self->listener);
  g_clear_object (&self->pool);
  g_clear_object (&self->cluster);
  if (self->probe_source != NULL)
    {
      g_source_destroy (self->probe_source);
      g_clear_pointer (&self->probe_source, g_source_unref);
    }
  g_clear_object (&self->probe);
  g_clear_object (&self->stop_cancellable);
  G_OBJECT_CLASS (bp_pg_backend_parent_class)->dispose (object);
}

static void
bp_pg_backend_finalize (GObject *object)
{
  BpPgBackend *self = BP_PG_BACKEND (object);

  g_free (self->conninfo);
  g_free (self->data_dir);
  g_free (self->socket_dir);
  g_free (self->bindir);
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

  g_signal_connect_object (bp_backend_get_breaker (BP_BACKEND (self)), "state-changed",
                           G_CALLBACK (breaker_state_changed_cb), self, 0);
}

static BpFailureKind
bp_pg_backend_classify_error (BpBackend    *backend,
                              const GError *error)
{
  return bp_pg_classify_failure (error, NULL);
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
  backend_class->stop_async = bp_pg_backend_stop_async;
  backend_class->stop_finish = bp_pg_backend_stop_finish;
  backend_class->check_health_async = bp_pg_backend_check_health_async;
  backend_class->dup_pool_stats = bp_pg_backend_dup_pool_stats;
  backend_class->classify_error = bp_pg_backend_classify_error;
  backend_class->replay_async = bp_pg_backend_replay_async;
  backend_class->replay_finish = bp_pg_backend_replay_finish;
}

static void
bp_pg_backend_init (BpPgBackend *self)
{
  self->transactions = g_hash_table_new_full (NULL, NULL, g_object_unref, NULL);
  self->stop_cancellable = g_cancellable_new ();
  self->probe_ms = PROBE_MIN_MS;
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
