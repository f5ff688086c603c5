/* bp-bolt-transaction.c: a client's explicit transaction (GraphTransaction)
 *
 * Exported at /org/backplane/Backplane1/client/NAME/transactionN for the
 * client that called Graph.BeginTransaction, and callable only by it. It
 * holds one pooled connection inside BEGIN until Commit or Rollback, or
 * until it is aborted: the owner leaving the bus, the idle timeout (on the
 * backend's clock) or shutdown, which roll back. One call runs at a time.
 *
 * Main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <unistd.h>
#include "bp-bolt-dbus.h"
#include "bp-bolt-transaction.h"

struct _BpBoltTransaction
{
  GObject                 parent_instance;

  BpBoltBackend          *backend;    /* (owned) */
  BpBoltLease            *lease;      /* (owned) (nullable) once ended */
  char                   *owner;
  char                   *path;       /* (nullable) until exported */
  BpDBusGraphTransaction *skeleton;   /* (owned) */
  gboolean                exported;
  guint                   watch_id;
  GSource                *idle_timer; /* (owned) (nullable) */
  guint                   idle_timeout_ms;
  gint64                  fetch_size;
  guint                   max_records;
  gboolean                busy;
  gboolean                ended;
};

enum
{
  SIGNAL_ENDED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE (BpBoltTransaction, bp_bolt_transaction, G_TYPE_OBJECT)

static void arm_idle_timer (BpBoltTransaction *self);

static void
clear_idle_timer (BpBoltTransaction *self)
{
  if (self->idle_timer != NULL)
    {
      g_source_destroy (self->idle_timer);
      g_clear_pointer (&self->idle_timer, g_source_unref);
    }
}

/* Unexports, gives the connection back (rolling back what is open) and
 * tells the backend. */
static void
end (BpBoltTransaction *self,
     const GError      *error)
{
  BpHost *host = bp_backend_get_host (BP_BACKEND (self->backend));

  if (self->ended)
    return;
  self->ended = TRUE;
  g_object_ref (self);
  clear_idle_timer (self);
  if (self->watch_id != 0)
    {
      bp_host_unwatch_owner (host, self->watch_id);
      self->watch_id = 0;
    }
  if (self->exported)
    {
      bp_host_unexport (host, G_DBUS_INTERFACE_SKELETON (self->skeleton));
      self->exported = FALSE;
    }
  if (self->lease != NULL)
    bp_bolt_backend_release (self->backend, g_steal_pointer (&self->lease), error);
  g_signal_emit (self, signals[SIGNAL_ENDED], 0);
  g_object_unref (self);
}

/**
 * bp_bolt_transaction_abort:
 * @self: a #BpBoltTransaction
 *
 * Rolls back and ends the transaction (shutdown, owner gone, idle).
 */
void
bp_bolt_transaction_abort (BpBoltTransaction *self)
{
  g_return_if_fail (BP_IS_BOLT_TRANSACTION (self));

  /* bp_bolt_backend_release() rolls back a connection left in a transaction */
  end (self, NULL);
}

static gboolean
idle_timeout_cb (gpointer user_data)
{
  BpBoltTransaction *self = user_data;

  g_clear_pointer (&self->idle_timer, g_source_unref);
  g_debug ("Bolt transaction %s: idle for %u ms, rolled back", self->path, self->idle_timeout_ms);
  bp_bolt_transaction_abort (self);
  return G_SOURCE_REMOVE;
}

static void
arm_idle_timer (BpBoltTransaction *self)
{
  clear_idle_timer (self);
  if (self->ended)
    return;
  self->idle_timer = bp_clock_timeout_source_new (bp_backend_get_clock (BP_BACKEND (self->backend)),
                                                  (gint64) self->idle_timeout_ms * 1000);
  g_source_set_callback (self->idle_timer, idle_timeout_cb, self, NULL);
  g_source_attach (self->idle_timer, g_main_context_get_thread_default ());
}

static void
owner_vanished_cb (const char *unique_name,
                   gpointer    user_data)
{
  BpBoltTransaction *self = user_data;

  self->watch_id = 0;
  bp_bolt_transaction_abort (self);
}

/* Common checks of every method; answers the call itself when it refuses. */
static BpCall *
begin_call (BpBoltTransaction     *self,
            GDBusMethodInvocation *invocation)
{
  BpCall *call;

  if (!bp_host_check_owner (invocation, self->owner))
    return NULL;
  call = bp_call_new (bp_backend_get_host (BP_BACKEND (self->backend)), invocation);
  if (self->ended || self->lease == NULL)
    {
      bp_call_return_new_error (call, BP_ERROR_NOT_FOUND, _("The transaction has ended"));
      g_object_unref (call);
      return NULL;
    }
  if (self->busy)
    {
      bp_call_return_new_error (call, BP_ERROR_LIMIT_EXCEEDED, _("Another call on this transaction is running"));
      g_object_unref (call);
      return NULL;
    }
  clear_idle_timer (self);
  self->busy = TRUE;
  return call;
}

static void
end_call (BpBoltTransaction *self)
{
  self->busy = FALSE;
  if (!self->ended)
    arm_idle_timer (self);
}

static BpBoltConnection *
connection (BpBoltTransaction *self)
{
  return bp_bolt_lease_get_connection (self->lease);
}

/* Run */

typedef struct
{
  BpBoltTransaction *self;   /* (owned) */
  BpCall            *call;   /* (owned) */
} CallData;

static CallData *
call_data_new (BpBoltTransaction *self,
               BpCall            *call)
{
  CallData *data = g_new0 (CallData, 1);

  data->self = g_object_ref (self);
  data->call = call;
  return data;
}

static void
call_data_free (CallData *data)
{
  g_clear_object (&data->call);
  g_clear_object (&data->self);
  g_free (data);
}

static void
run_done_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  CallData *data = user_data;
  g_autoptr(GError) error = NULL;
  GVariant *reply = bp_bolt_run_collect_finish (BP_BOLT_CONNECTION (object), result, &error);

  if (reply == NULL)
    bp_call_return_error (data->call, error);
  else
    {
      bp_call_return_value (data->call, reply);
      g_variant_unref (reply);
    }
  end_call (data->self);
  call_data_free (data);
}

static gboolean
parse_run_options (BpBoltTransaction *self,
                   GVariant          *options,
                   BpBoltOptionFlags  allowed,
                   BpBoltOptions     *out,
                   GError           **error)
{
  return bp_bolt_options_parse (options, allowed, NULL, self->fetch_size, self->max_records, out, error);
}

static gboolean
handle_run (BpDBusGraphTransaction *skeleton,
            GDBusMethodInvocation  *invocation,
            const char             *cypher,
            GVariant               *params,
            GVariant               *options,
            gpointer                user_data)
{
  BpBoltTransaction *self = user_data;
  BpCall *call = begin_call (self, invocation);
  g_auto(BpBoltOptions) parsed = { 0, };
  g_autoptr(GError) error = NULL;

  if (call == NULL)
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  if (!bp_bolt_check_query ("cypher", cypher, &error) ||
      !parse_run_options (self, options, BP_BOLT_OPT_FETCH_SIZE | BP_BOLT_OPT_MAX_RECORDS, &parsed, &error))
    {
      bp_call_return_error (call, error);
      g_object_unref (call);
      end_call (self);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  bp_bolt_run_collect_async (connection (self), cypher, params, NULL, parsed.fetch_size, parsed.max_records,
                             bp_call_get_cancellable (call), run_done_cb, call_data_new (self, call));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* RunToFd */

typedef struct
{
  BpBoltTransaction *self;     /* (owned) */
  BpCall            *call;     /* (owned) */
  int                fd;
} ToFdData;

static void
to_fd_data_free (ToFdData *data)
{
  if (data->fd >= 0)
    close (data->fd);
  g_clear_object (&data->call);
  g_clear_object (&data->self);
  g_free (data);
}

static void
to_fd_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  ToFdData *data = user_data;

  bp_bolt_stream_to_fd_finish (BP_BOLT_STREAM (object), result, NULL, NULL);
  end_call (data->self);
  to_fd_data_free (data);
}

static void
to_fd_started_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  ToFdData *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = bp_bolt_connection_run_finish (BP_BOLT_CONNECTION (object), result, &error);
  guint n;
  const char * const *keys;

  if (stream == NULL)
    {
      bp_call_return_error (data->call, error);
      end_call (data->self);
      to_fd_data_free (data);
      return;
    }
  keys = bp_bolt_stream_get_keys (stream, &n);
  bp_call_return_value (data->call, g_variant_new ("(@as)", g_variant_new_strv (keys, n)));
  bp_bolt_stream_to_fd_async (stream, data->fd, bp_call_get_cancellable (data->call), to_fd_done_cb, data);
  data->fd = -1;
}

static gboolean
handle_run_to_fd (BpDBusGraphTransaction *skeleton,
                  GDBusMethodInvocation  *invocation,
                  GUnixFDList            *fd_list,
                  const char             *cypher,
                  GVariant               *params,
                  GVariant               *fd_handle,
                  GVariant               *options,
                  gpointer                user_data)
{
  BpBoltTransaction *self = user_data;
  BpCall *call = begin_call (self, invocation);
  g_auto(BpBoltOptions) parsed = { 0, };
  g_autoptr(GError) error = NULL;
  ToFdData *data;

  if (call == NULL)
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  data = g_new0 (ToFdData, 1);
  data->self = g_object_ref (self);
  data->call = call;
  data->fd = bp_call_steal_fd (call, fd_handle, &error);
  bp_bolt_close_passed_fds (invocation);
  if (data->fd < 0 ||
      !bp_bolt_check_query ("cypher", cypher, &error) ||
      !parse_run_options (self, options, BP_BOLT_OPT_FETCH_SIZE, &parsed, &error))
    {
      bp_call_return_error (call, error);
      end_call (self);
      to_fd_data_free (data);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  bp_bolt_connection_run_async (connection (self), cypher, params, NULL, parsed.fetch_size,
                                bp_call_get_cancellable (call), to_fd_started_cb, data);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Commit and Rollback */

static void
commit_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  CallData *data = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *bookmark = NULL;

  if (!bp_bolt_connection_commit_finish (BP_BOLT_CONNECTION (object), result, &bookmark, &error))
    bp_call_return_error (data->call, error);
  else
    bp_call_return_value (data->call, g_variant_new ("(s)", bookmark != NULL ? bookmark : ""));
  /* a failed COMMIT ends the transaction too: the server rolled it back */
  data->self->busy = FALSE;
  end (data->self, error);
  call_data_free (data);
}

static gboolean
handle_commit (BpDBusGraphTransaction *skeleton,
               GDBusMethodInvocation  *invocation,
               gpointer                user_data)
{
  BpBoltTransaction *self = user_data;
  BpCall *call = begin_call (self, invocation);

  if (call == NULL)
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  bp_bolt_connection_commit_async (connection (self), NULL, commit_done_cb, call_data_new (self, call));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
rollback_done_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  CallData *data = user_data;
  g_autoptr(GError) error = NULL;

  /* a connection that is gone took the transaction with it */
  if (!bp_bolt_connection_rollback_finish (BP_BOLT_CONNECTION (object), result, &error) &&
      !bp_bolt_connection_is_defunct (BP_BOLT_CONNECTION (object)))
    bp_call_return_error (data->call, error);
  else
    bp_call_return_value (data->call, NULL);
  data->self->busy = FALSE;
  end (data->self, NULL);
  call_data_free (data);
}

static gboolean
handle_rollback (BpDBusGraphTransaction *skeleton,
                 GDBusMethodInvocation  *invocation,
                 gpointer                user_data)
{
  BpBoltTransaction *self = user_data;
  BpCall *call = begin_call (self, invocation);

  if (call == NULL)
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  bp_bolt_connection_rollback_async (connection (self), NULL, rollback_done_cb, call_data_new (self, call));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------------------------------------------------------------------- */

static void
bp_bolt_transaction_dispose (GObject *object)
{
  BpBoltTransaction *self = BP_BOLT_TRANSACTION (object);

  end (self, NULL);
  g_clear_object (&self->skeleton);
  G_OBJECT_CLASS (bp_bolt_transaction_parent_class)->dispose (object);
}

static void
bp_bolt_transaction_finalize (GObject *object)
{
  BpBoltTransaction *self = BP_BOLT_TRANSACTION (object);

  g_clear_object (&self->backend);
  g_free (self->owner);
  g_free (self->path);
  G_OBJECT_CLASS (bp_bolt_transaction_parent_class)->finalize (object);
}

static void
bp_bolt_transaction_class_init (BpBoltTransactionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bp_bolt_transaction_dispose;
  object_class->finalize = bp_bolt_transaction_finalize;

  /**
   * BpBoltTransaction::ended:
   *
   * The transaction was committed, rolled back or aborted, and unexported.
   */
  signals[SIGNAL_ENDED] = g_signal_new ("ended", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                        0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
bp_bolt_transaction_init (BpBoltTransaction *self)
{
  self->skeleton = bp_dbus_graph_transaction_skeleton_new ();
  g_signal_connect (self->skeleton, "handle-run", G_CALLBACK (handle_run), self);
  g_signal_connect (self->skeleton, "handle-run-to-fd", G_CALLBACK (handle_run_to_fd), self);
  g_signal_connect (self->skeleton, "handle-commit", G_CALLBACK (handle_commit), self);
  g_signal_connect (self->skeleton, "handle-rollback", G_CALLBACK (handle_rollback), self);
}

/**
 * bp_bolt_transaction_new:
 * @backend: the backend
 * @lease: (transfer full): a connection inside a successful BEGIN
 * @owner: the unique bus name of the client
 * @options: the BeginTransaction options
 *
 * Returns: (transfer full): the transaction, not exported yet
 */
BpBoltTransaction *
bp_bolt_transaction_new (BpBoltBackend       *backend,
                         BpBoltLease         *lease,
                         const char          *owner,
                         const BpBoltOptions *options)
{
  BpBoltTransaction *self = g_object_new (BP_TYPE_BOLT_TRANSACTION, NULL);

  self->backend = g_object_ref (backend);
  self->lease = lease;
  self->owner = g_strdup (owner);
  self->idle_timeout_ms = options->idle_timeout_ms;
  self->fetch_size = bp_bolt_backend_get_fetch_size (backend);
  self->max_records = bp_bolt_backend_get_max_records (backend);
  bp_dbus_graph_transaction_set_database (self->skeleton, options->database != NULL ? options->database : "");
  bp_dbus_graph_transaction_set_access_mode (self->skeleton, options->write ? "write" : "read");
  return self;
}

/**
 * bp_bolt_transaction_export:
 * @self: a new transaction
 * @error: a #GError
 *
 * Exports the object for its owner and starts watching the owner and the
 * idle time.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_bolt_transaction_export (BpBoltTransaction *self,
                            GError           **error)
{
  BpHost *host = bp_backend_get_host (BP_BACKEND (self->backend));

  self->path = bp_host_make_client_path (host, self->owner, "transaction");
  if (!bp_host_export (host, G_DBUS_INTERFACE_SKELETON (self->skeleton), self->path, error))
    return FALSE;
  self->exported = TRUE;
  self->watch_id = bp_host_watch_owner (host, self->owner, owner_vanished_cb, self, NULL);
  arm_idle_timer (self);
  return TRUE;
}

/**
 * bp_bolt_transaction_get_path:
 * @self: a #BpBoltTransaction
 *
 * Returns: (nullable): the object path once exported
 */
const char *
bp_bolt_transaction_get_path (BpBoltTransaction *self)
{
  g_return_val_if_fail (BP_IS_BOLT_TRANSACTION (self), NULL);
  return self->path;
}
