/* bp-pg-transaction.c: an open transaction owned by one D-Bus client
 *
 * Holds one pooled connection inside BEGIN … and exports
 * org.backplane.Backplane1.SqlTransaction at a per-client path. Only the
 * owner may call it; one call runs at a time. It ends (object removed,
 * connection back to the pool) on Commit, Rollback, the idle timeout, the
 * owner vanishing and backend stop; the last three roll back. A connection
 * that is in the middle of a statement when the transaction is aborted is
 * destroyed instead of being rolled back and reused.
 *
 * Main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-pg-transaction.h"
#include "bp-pg-fd-stream.h"
#include "bp-postgres-dbus.h"

struct _BpPgTransaction
{
  GObject               parent_instance;

  BpPgBackend          *backend;     /* (owned) */
  BpHost               *host;        /* (owned) */
  BpPoolItem           *item;        /* (nullable): NULL once ended */
  BpPgConnection       *conn;        /* (owned) */
  char                 *owner;       /* (owned) */
  char                 *path;        /* (owned) (nullable) until exported */
  BpDBusSqlTransaction *skeleton;    /* (owned) */
  guint                 watch_id;
  GSource              *idle_source; /* (owned) (nullable) */
  guint                 idle_timeout_ms;
  gboolean              busy;
  gboolean              ended;
};

G_DEFINE_FINAL_TYPE (BpPgTransaction, bp_pg_transaction, G_TYPE_OBJECT)

enum {
  SIGNAL_ENDED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void arm_idle_timer (BpPgTransaction *self);

/**
 * bp_pg_transaction_begin_sql:
 * @options: parsed BeginTransaction options
 *
 * Returns: (transfer full): the BEGIN statement
 */
char *
bp_pg_transaction_begin_sql (const BpPgOptions *options)
{
  const char *level = "READ COMMITTED";

  if (g_str_equal (options->isolation, "repeatable-read"))
    level = "REPEATABLE READ";
  else if (g_str_equal (options->isolation, "serializable"))
    level = "SERIALIZABLE";
  return g_strdup_printf ("BEGIN ISOLATION LEVEL %s%s", level, options->read_only ? " READ ONLY" : "");
}

static void
bp_pg_transaction_dispose (GObject *object)
{
  BpPgTransaction *self = BP_PG_TRANSACTION (object);

  if (self->item != NULL)
    bp_pg_backend_release (self->backend, g_steal_pointer (&self->item));
  if (self->idle_source != NULL)
    {
      g_source_destroy (self->idle_source);
      g_clear_pointer (&self->idle_source, g_source_unref);
    }
  if (self->watch_id != 0)
    bp_host_unwatch_owner (self->host, self->watch_id);
  self->watch_id = 0;
  g_clear_object (&self->skeleton);
  g_clear_object (&self->conn);
  g_clear_object (&self->backend);
  g_clear_object (&self->host);
  G_OBJECT_CLASS (bp_pg_transaction_parent_class)->dispose (object);
}

static void
bp_pg_transaction_finalize (GObject *object)
{
  BpPgTransaction *self = BP_PG_TRANSACTION (object);

  g_free (self->owner);
  g_free (self->path);
  G_OBJECT_CLASS (bp_pg_transaction_parent_class)->finalize (object);
}

static void
bp_pg_transaction_class_init (BpPgTransactionClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = bp_pg_transaction_dispose;
  G_OBJECT_CLASS (klass)->finalize = bp_pg_transaction_finalize;

  /**
   * BpPgTransaction::ended:
   *
   * The transaction is over and its object removed from the bus.
   */
  signals[SIGNAL_ENDED] =
    g_signal_new ("ended", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
bp_pg_transaction_init (BpPgTransaction *self)
{
}

/* Takes the transaction off the bus; the connection is handled by the caller. */
static void
end (BpPgTransaction *self)
{
  g_autoptr(BpPgTransaction) hold = g_object_ref (self);

  if (self->ended)
    return;
  self->ended = TRUE;
  if (self->idle_source != NULL)
    {
      g_source_destroy (self->idle_source);
      g_clear_pointer (&self->idle_source, g_source_unref);
    }
  if (self->watch_id != 0)
    bp_host_unwatch_owner (self->host, self->watch_id);
  self->watch_id = 0;
  if (self->path != NULL)
    bp_host_unexport (self->host, G_DBUS_INTERFACE_SKELETON (self->skeleton));
  g_signal_emit (self, signals[SIGNAL_ENDED], 0);
}

static void
release (BpPgTransaction *self)
{
  if (self->item != NULL)
    bp_pg_backend_release (self->backend, g_steal_pointer (&self->item));
}

/* Main context: the ROLLBACK of an abort is done. */
static void
abort_rolled_back_cb (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(BpPgTransaction) self = user_data;

  bp_pg_connection_query_finish (BP_PG_CONNECTION (object), result, NULL, NULL, NULL, NULL);
  release (self);
}

/**
 * bp_pg_transaction_abort:
 * @self: a transaction
 *
 * Rolls back and ends the transaction (idle timeout, owner gone, stop).
 */
void
bp_pg_transaction_abort (BpPgTransaction *self)
{
  g_return_if_fail (BP_IS_PG_TRANSACTION (self));

  if (self->ended)
    return;
  end (self);
  if (self->item == NULL)
    return;
  if (self->busy || bp_pg_connection_get_state (self->conn) != BP_PG_CONNECTION_STATE_IDLE)
    {
      /* In the middle of a statement: destroy rather than wait for it. */
      bp_pg_connection_close (self->conn);
      release (self);
      return;
    }
  bp_pg_connection_query_async (self->conn, "ROLLBACK", NULL, 0, 5000, NULL,
                                abort_rolled_back_cb, g_object_ref (self));
}

static gboolean
on_idle_timeout (gpointer user_data)
{
  BpPgTransaction *self = user_data;

  g_clear_pointer (&self->idle_source, g_source_unref);
  g_debug ("transaction %s idle for %u ms: rolled back", self->path, self->idle_timeout_ms);
  bp_pg_transaction_abort (self);
  return G_SOURCE_REMOVE;
}

static void
arm_idle_timer (BpPgTransaction *self)
{
  BpClock *clock = bp_backend_get_clock (BP_BACKEND (self->backend));

  if (self->idle_source != NULL)
    {
      g_source_destroy (self->idle_source);
      g_clear_pointer (&self->idle_source, g_source_unref);
    }
  if (self->ended)
    return;
  self->idle_source = bp_clock_timeout_source_new (clock, (gint64) self->idle_timeout_ms * 1000);
  g_source_set_callback (self->idle_source, on_idle_timeout, self, NULL);
  g_source_set_static_name (self->idle_source, "[bp-postgres] transaction idle");
  g_source_attach (self->idle_source, g_main_context_get_thread_default ());
}

static void
owner_vanished_cb (const char *unique_name,
                   gpointer    user_data)
{
  BpPgTransaction *self = user_data;

  g_debug ("owner %s of %s vanished: rolled back", unique_name, self->path);
  bp_pg_transaction_abort (self);
}

/* Checks owner, liveness and that no other call runs. FALSE: answered. */
static gboolean
begin_call (BpPgTransaction       *self,
            GDBusMethodInvocation *invocation,
            BpCall               **out_call)
{
  BpCall *call;

  if (!bp_host_check_owner (invocation, self->owner))
    return FALSE;
  call = bp_call_new (self->host, invocation);
  if (self->ended || self->item == NULL)
    {
      bp_call_return_new_error (call, BP_ERROR_NOT_FOUND, "the transaction is over");
      g_object_unref (call);
      return FALSE;
    }
  if (self->busy)
    {
      bp_call_return_new_error (call, BP_ERROR_LIMIT_EXCEEDED,
                                "the transaction is busy with another call");
      g_object_unref (call);
      return FALSE;
    }
  self->busy = TRUE;
  if (self->idle_source != NULL)
    {
      g_source_destroy (self->idle_source);
      g_clear_pointer (&self->idle_source, g_source_unref);
    }
  *out_call = call;
  return TRUE;
}

/* After a call: a broken connection ends the transaction. */
static void
end_call (BpPgTransaction *self)
{
  self->busy = FALSE;
  if (self->ended)
    return;
  if (bp_pg_connection_get_state (self->conn) == BP_PG_CONNECTION_STATE_CLOSED)
    {
      end (self);
      release (self);
      return;
    }
  arm_idle_timer (self);
}

typedef struct
{
  BpPgTransaction *self;  /* (owned) */
  BpCall          *call;  /* (owned) */
} TxCall;

static TxCall *
tx_call_new (BpPgTransaction *self,
             BpCall          *call)
{
  TxCall *tc = g_new0 (TxCall, 1);

  tc->self = g_object_ref (self);
  tc->call = call;
  return tc;
}

static void
tx_call_free (TxCall *tc)
{
  g_clear_object (&tc->self);
  g_clear_object (&tc->call);
  g_free (tc);
}

/* Main context. */
static void
query_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  TxCall *tc = user_data;
  g_autoptr(GError) error = NULL;
  GVariant *columns = NULL;
  GVariant *rows = NULL;

  if (!bp_pg_connection_query_finish (BP_PG_CONNECTION (object), result, &columns, &rows, NULL, &error))
    bp_call_return_error (tc->call, error);
  else
    {
      bp_call_return_value (tc->call, g_variant_new ("(@a(ss)@aa{sv})", columns, rows));
      g_variant_unref (columns);
      g_variant_unref (rows);
    }
  end_call (tc->self);
  tx_call_free (tc);
}

static gboolean
handle_query (BpDBusSqlTransaction  *skeleton,
              GDBusMethodInvocation *invocation,
              const char            *sql,
              GVariant              *params,
              GVariant              *options,
              gpointer               user_data)
{
  BpPgTransaction *self = user_data;
  BpCall *call = NULL;
  BpPgOptions parsed;
  g_autoptr(GError) error = NULL;

  if (!begin_call (self, invocation, &call))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  if (!bp_pg_check_sql ("sql", sql, &error) ||
      !bp_pg_options_parse (options, BP_PG_OPT_TIMEOUT | BP_PG_OPT_MAX_ROWS,
                            bp_pg_backend_get_max_rows (self->backend), &parsed, &error))
    {
      bp_call_return_error (call, error);
      g_object_unref (call);
      end_call (self);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  bp_pg_connection_query_async (self->conn, sql, params, parsed.max_rows, parsed.timeout_ms,
                                bp_call_get_cancellable (call), query_done_cb, tx_call_new (self, call));
  bp_pg_options_clear (&parsed);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct
{
  TxCall       *tc;      /* (owned) */
  BpPgFdStream *stream;  /* (owned) */
} TxStream;

/* Main context: the stream ended and its fd is closed. */
static void
stream_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  TxStream *ts = user_data;

  bp_pg_fd_stream_wait_finish (BP_PG_FD_STREAM (object), result, NULL, NULL);
  end_call (ts->tc->self);
  tx_call_free (ts->tc);
  g_object_unref (ts->stream);
  g_free (ts);
}

static void
stream_started_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  TxStream *ts = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) columns = bp_pg_fd_stream_start_finish (BP_PG_FD_STREAM (object), result, &error);

  if (columns == NULL)
    bp_call_return_error (ts->tc->call, error);
  else
    bp_call_return_value (ts->tc->call, g_variant_new ("(@a(ss))", columns));
  bp_pg_fd_stream_wait_async (ts->stream, stream_done_cb, ts);
}

static gboolean
handle_query_to_fd (BpDBusSqlTransaction  *skeleton,
                    GDBusMethodInvocation *invocation,
                    GUnixFDList           *fd_list,
                    const char            *sql,
                    GVariant              *params,
                    GVariant              *fd_handle,
                    GVariant              *options,
                    gpointer               user_data)
{
  BpPgTransaction *self = user_data;
  BpCall *call = NULL;
  BpPgOptions parsed;
  g_autoptr(GError) error = NULL;
  TxStream *ts;
  int fd;

  if (!begin_call (self, invocation, &call))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  if (!bp_pg_check_sql ("sql", sql, &error) ||
      !bp_pg_options_parse (options, BP_PG_OPT_TIMEOUT | BP_PG_OPT_FORMAT,
                            bp_pg_backend_get_max_rows (self->backend), &parsed, &error) ||
      (fd = bp_pg_steal_fd (call, fd_handle, &error)) < 0)
    {
      bp_call_return_error (call, error);
      g_object_unref (call);
      end_call (self);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  ts = g_new0 (TxStream, 1);
  ts->tc = tx_call_new (self, call);
  ts->stream = bp_pg_fd_stream_new (self->conn, fd, parsed.format);
  bp_pg_fd_stream_start_async (ts->stream, sql, params, parsed.timeout_ms, bp_call_get_cancellable (call),
                               stream_started_cb, ts);
  bp_pg_options_clear (&parsed);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Main context: COMMIT or ROLLBACK ran; the transaction is over either way. */
static void
finish_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  TxCall *tc = user_data;
  BpPgTransaction *self = tc->self;
  g_autoptr(GError) error = NULL;

  self->busy = FALSE;
  if (!bp_pg_connection_query_finish (BP_PG_CONNECTION (object), result, NULL, NULL, NULL, &error))
    bp_call_return_error (tc->call, error);
  else
    bp_call_return_value (tc->call, NULL);
  end (self);
  release (self);
  tx_call_free (tc);
}

static gboolean
handle_finish (BpPgTransaction       *self,
               GDBusMethodInvocation *invocation,
               const char            *sql)
{
  BpCall *call = NULL;

  if (!begin_call (self, invocation, &call))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  bp_pg_connection_query_async (self->conn, sql, NULL, 0, 0, NULL, finish_done_cb, tx_call_new (self, call));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_commit (BpDBusSqlTransaction  *skeleton,
               GDBusMethodInvocation *invocation,
               gpointer               user_data)
{
  return handle_finish (user_data, invocation, "COMMIT");
}

static gboolean
handle_rollback (BpDBusSqlTransaction  *skeleton,
                 GDBusMethodInvocation *invocation,
                 gpointer               user_data)
{
  return handle_finish (user_data, invocation, "ROLLBACK");
}

/**
 * bp_pg_transaction_new:
 * @backend: the backend
 * @item: (transfer full): a pooled connection inside BEGIN
 * @owner: the unique bus name of the client
 * @options: the BeginTransaction options
 *
 * Returns: (transfer full): a transaction, not exported yet
 */
BpPgTransaction *
bp_pg_transaction_new (BpPgBackend       *backend,
                       BpPoolItem        *item,
                       const char        *owner,
                       const BpPgOptions *options)
{
  BpPgTransaction *self = g_object_new (BP_TYPE_PG_TRANSACTION, NULL);

  self->backend = g_object_ref (backend);
  self->host = g_object_ref (bp_backend_get_host (BP_BACKEND (backend)));
  self->item = item;
  self->conn = g_object_ref (bp_pool_item_get_resource (item));
  self->owner = g_strdup (owner);
  self->idle_timeout_ms = options->idle_timeout_ms;

  self->skeleton = bp_dbus_sql_transaction_skeleton_new ();
  bp_dbus_sql_transaction_set_isolation (self->skeleton, options->isolation);
  bp_dbus_sql_transaction_set_read_only (self->skeleton, options->read_only);
  g_signal_connect_object (self->skeleton, "handle-query", G_CALLBACK (handle_query), self, 0);
  g_signal_connect_object (self->skeleton, "handle-query-to-fd", G_CALLBACK (handle_query_to_fd), self, 0);
  g_signal_connect_object (self->skeleton, "handle-commit", G_CALLBACK (handle_commit), self, 0);
  g_signal_connect_object (self->skeleton, "handle-rollback", G_CALLBACK (handle_rollback), self, 0);
  return self;
}

/**
 * bp_pg_transaction_export:
 * @self: a new transaction
 * @error: return location for a #GError
 *
 * Exports the object at the owner's client path, watches the owner and
 * arms the idle timeout.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_pg_transaction_export (BpPgTransaction  *self,
                          GError          **error)
{
  g_autofree char *path = bp_host_make_client_path (self->host, self->owner, "transaction");

  if (!bp_host_export (self->host, G_DBUS_INTERFACE_SKELETON (self->skeleton), path, error))
    return FALSE;
  self->path = g_steal_pointer (&path);
  self->watch_id = bp_host_watch_owner (self->host, self->owner, owner_vanished_cb, self, NULL);
  arm_idle_timer (self);
  return TRUE;
}

const char *
bp_pg_transaction_get_path (BpPgTransaction *self)
{
  g_return_val_if_fail (BP_IS_PG_TRANSACTION (self), NULL);
  return self->path;
}
