/* bp-pg-listener.c: LISTEN on a channel for one D-Bus client
 *
 * A dedicated connection (not pooled: LISTEN is per session) runs
 * `LISTEN "channel"`; each NOTIFY becomes an event {channel, payload, pid}.
 * Events are sent as org.backplane.Backplane1.Subscription.Events signals
 * to the owner only, batched: a flush timer is armed only while events are
 * pending (100 ms), a batch holds at most 256 events, order is kept. At most
 * 10000 events wait; beyond that the oldest are dropped and counted in the
 * Dropped property. When the connection breaks (server restart,
 * pg_terminate_backend) the listener reconnects with exponential backoff
 * (100 ms … 10 s) and LISTENs again; NOTIFYs sent meanwhile are lost, as
 * PostgreSQL does not queue them for absent listeners.
 *
 * Main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-pg-listener.h"
#include "bp-postgres-dbus.h"

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 10000

struct _BpPgListener
{
  GObject                 parent_instance;

  BpPgBackend            *backend;         /* (owned) */
  BpHost                 *host;            /* (owned) */
  char                   *owner;           /* (owned) */
  char                   *channel;         /* (owned) */
  char                   *path;            /* (owned) (nullable) */
  BpDBusSubscription     *skeleton;        /* (owned) */
  BpPgConnection         *conn;            /* (owned) (nullable) */
  GCancellable           *cancellable;     /* (owned) */
  guint                   watch_id;
  GQueue                  pending;         /* (element-type GVariant) (owned) */
  GSource                *flush_source;    /* (owned) (nullable) */
  GSource                *retry_source;    /* (owned) (nullable) */
  guint                   retry_ms;
  guint64                 dropped;
  GTask                  *start_task;      /* (owned) (nullable) */
  gboolean                closed;
};

G_DEFINE_FINAL_TYPE (BpPgListener, bp_pg_listener, G_TYPE_OBJECT)

enum {
  SIGNAL_ENDED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void connect_listener (BpPgListener *self);

static void
destroy_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

/**
 * bp_pg_check_channel:
 * @channel: a NOTIFY channel name
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @channel is 1 … 63 bytes of UTF-8 without NUL
 */
gboolean
bp_pg_check_channel (const char  *channel,
                     GError     **error)
{
  gsize len = strlen (channel);

  if (len == 0 || len > 63)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "channel: must be 1 … 63 bytes, got %" G_GSIZE_FORMAT, len);
      return FALSE;
    }
  return TRUE;
}

/**
 * bp_pg_quote_ident:
 * @ident: an identifier
 *
 * Returns: (transfer full): @ident as a quoted SQL identifier
 */
char *
bp_pg_quote_ident (const char *ident)
{
  GString *out = g_string_new ("\"");

  for (const char *p = ident; *p != '\0'; p++)
    {
      if (*p == '"')
        g_string_append_c (out, '"');
      g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
  return g_string_free (out, FALSE);
}

static void
bp_pg_listener_dispose (GObject *object)
{
  BpPgListener *self = BP_PG_LISTENER (object);

  destroy_source (&self->flush_source);
  destroy_source (&self->retry_source);
  if (self->watch_id != 0)
    bp_host_unwatch_owner (self->host, self->watch_id);
  self->watch_id = 0;
  if (self->conn != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->conn, self);
      bp_pg_connection_close (self->conn);
    }
  g_clear_object (&self->conn);
  g_queue_clear_full (&self->pending, (GDestroyNotify) g_variant_unref);
  g_clear_object (&self->skeleton);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->backend);
  g_clear_object (&self->host);
  G_OBJECT_CLASS (bp_pg_listener_parent_class)->dispose (object);
}

static void
bp_pg_listener_finalize (GObject *object)
{
  BpPgListener *self = BP_PG_LISTENER (object);

  g_assert (self->start_task == NULL);
  g_free (self->owner);
  g_free (self->channel);
  g_free (self->path);
  G_OBJECT_CLASS (bp_pg_listener_parent_class)->finalize (object);
}

static void
bp_pg_listener_class_init (BpPgListenerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = bp_pg_listener_dispose;
  G_OBJECT_CLASS (klass)->finalize = bp_pg_listener_finalize;

  /**
   * BpPgListener::ended:
   *
   * The subscription is closed and its object removed from the bus.
   */
  signals[SIGNAL_ENDED] =
    g_signal_new ("ended", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
bp_pg_listener_init (BpPgListener *self)
{
  g_queue_init (&self->pending);
  self->cancellable = g_cancellable_new ();
  self->retry_ms = RECONNECT_MIN_MS;
}

/* ---------------------------------------------------------------------- */
/* Events                                                                  */

static void
flush (BpPgListener *self)
{
  GDBusConnection *bus = bp_host_get_connection (self->host);

  while (self->pending.length > 0)
    {
      g_auto(GVariantBuilder) batch = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));

      for (guint i = 0; i < BP_PG_LISTENER_MAX_BATCH && self->pending.length > 0; i++)
        {
          g_autoptr(GVariant) event = g_queue_pop_head (&self->pending);
          g_variant_builder_add_value (&batch, event);
        }
      if (bus != NULL && self->path != NULL)
        g_dbus_connection_emit_signal (bus, self->owner, self->path,
                                       "org.backplane.Backplane1.Subscription", "Events",
                                       g_variant_new ("(aa{sv})", &batch), NULL);
    }
}

static gboolean
on_flush (gpointer user_data)
{
  BpPgListener *self = user_data;

  g_clear_pointer (&self->flush_source, g_source_unref);
  flush (self);
  return G_SOURCE_REMOVE;
}

/* Main context: a NOTIFY arrived. */
static void
notification_cb (BpPgConnection *conn,
                 const char     *channel,
                 const char     *payload,
                 int             pid,
                 BpPgListener   *self)
{
  g_auto(GVariantBuilder) event = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  if (self->closed)
    return;
  g_variant_builder_add (&event, "{sv}", "channel", g_variant_new_string (channel));
  g_variant_builder_add (&event, "{sv}", "payload", g_variant_new_string (payload));
  g_variant_builder_add (&event, "{sv}", "pid", g_variant_new_int32 (pid));
  g_queue_push_tail (&self->pending, g_variant_ref_sink (g_variant_builder_end (&event)));

  if (self->pending.length > BP_PG_LISTENER_MAX_QUEUED)
    {
      g_variant_unref (g_queue_pop_head (&self->pending));
      self->dropped++;
      bp_dbus_subscription_set_dropped (self->skeleton, self->dropped);
    }
  if (self->pending.length >= BP_PG_LISTENER_MAX_BATCH)
    {
      destroy_source (&self->flush_source);
      flush (self);
      return;
    }
  if (self->flush_source == NULL)
    {
      self->flush_source = bp_clock_timeout_source_new (bp_backend_get_clock (BP_BACKEND (self->backend)),
                                                        BP_PG_LISTENER_FLUSH_MS * 1000);
      g_source_set_callback (self->flush_source, on_flush, self, NULL);
      g_source_set_static_name (self->flush_source, "[bp-postgres] subscription flush");
      g_source_attach (self->flush_source, g_main_context_get_thread_default ());
    }
}

/* ---------------------------------------------------------------------- */
/* Connection and reconnection                                             */

static gboolean
on_retry (gpointer user_data)
{
  BpPgListener *self = user_data;

  g_clear_pointer (&self->retry_source, g_source_unref);
  connect_listener (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_reconnect (BpPgListener *self)
{
  if (self->closed || self->retry_source != NULL)
    return;
  g_debug ("listener on %s reconnects in %u ms", self->channel, self->retry_ms);
  self->retry_source = bp_clock_timeout_source_new (bp_backend_get_clock (BP_BACKEND (self->backend)),
                                                    (gint64) self->retry_ms * 1000);
  g_source_set_callback (self->retry_source, on_retry, self, NULL);
  g_source_set_static_name (self->retry_source, "[bp-postgres] listener reconnect");
  g_source_attach (self->retry_source, g_main_context_get_thread_default ());
  self->retry_ms = MIN (self->retry_ms * 2, RECONNECT_MAX_MS);
}

static void
drop_connection (BpPgListener *self)
{
  if (self->conn == NULL)
    return;
  g_signal_handlers_disconnect_by_data (self->conn, self);
  bp_pg_connection_close (self->conn);
  g_clear_object (&self->conn);
}

/* Main context: the listening connection broke. */
static void
closed_cb (BpPgConnection *conn,
           const GError   *error,
           BpPgListener   *self)
{
  g_debug ("listener on %s lost its connection: %s", self->channel, error->message);
  drop_connection (self);
  schedule_reconnect (self);
}

static void
start_done (BpPgListener *self,
            GError       *error)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->start_task);

  if (task == NULL)
    {
      g_clear_error (&error);
      return;
    }
  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/* Main context: LISTEN ran. */
static void
listened_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(BpPgListener) self = user_data;
  GError *error = NULL;

  if (!bp_pg_connection_query_finish (BP_PG_CONNECTION (object), result, NULL, NULL, NULL, &error))
    {
      if (BP_PG_CONNECTION (object) == self->conn)
        drop_connection (self);
      if (self->start_task != NULL)
        start_done (self, error);
      else
        {
          g_clear_error (&error);
          schedule_reconnect (self);
        }
      return;
    }
  self->retry_ms = RECONNECT_MIN_MS;
  start_done (self, NULL);
}

/* Main context: the dedicated connection is up (or not). */
static void
connected_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(BpPgListener) self = user_data;
  BpPgConnection *conn = BP_PG_CONNECTION (object);
  g_autofree char *sql = NULL;
  g_autofree char *quoted = NULL;
  GError *error = NULL;

  if (!bp_pg_connection_connect_finish (conn, result, &error))
    {
      if (conn == self->conn)
        drop_connection (self);
      if (self->start_task != NULL)
        start_done (self, error);
      else
        {
          g_clear_error (&error);
          schedule_reconnect (self);
        }
      return;
    }
  if (self->closed || conn != self->conn)
    {
      if (self->start_task != NULL)
        start_done (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "subscription closed"));
      return;
    }
  quoted = bp_pg_quote_ident (self->channel);
  sql = g_strdup_printf ("LISTEN %s", quoted);
  bp_pg_connection_query_async (conn, sql, NULL, 0, 0, self->cancellable, listened_cb, g_object_ref (self));
}

static void
connect_listener (BpPgListener *self)
{
  if (self->closed)
    return;
  drop_connection (self);
  self->conn = bp_pg_backend_new_connection (self->backend);
  g_signal_connect (self->conn, "notification", G_CALLBACK (notification_cb), self);
  g_signal_connect (self->conn, "closed", G_CALLBACK (closed_cb), self);
  bp_pg_connection_connect_async (self->conn, self->cancellable, connected_cb, g_object_ref (self));
}

/* ---------------------------------------------------------------------- */
/* The bus object                                                          */

static void
owner_vanished_cb (const char *unique_name,
                   gpointer    user_data)
{
  bp_pg_listener_close (user_data);
}

static gboolean
handle_close (BpDBusSubscription    *skeleton,
              GDBusMethodInvocation *invocation,
              gpointer               user_data)
{
  BpPgListener *self = user_data;

  if (!bp_host_check_owner (invocation, self->owner))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  g_dbus_method_invocation_return_value (invocation, NULL);
  bp_pg_listener_close (self);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/**
 * bp_pg_listener_new:
 * @backend: the backend
 * @owner: the unique bus name of the client
 * @channel: the channel (checked with bp_pg_check_channel())
 *
 * Returns: (transfer full): a listener, not started
 */
BpPgListener *
bp_pg_listener_new (BpPgBackend *backend,
                    const char  *owner,
                    const char  *channel)
{
  BpPgListener *self = g_object_new (BP_TYPE_PG_LISTENER, NULL);

  self->backend = g_object_ref (backend);
  self->host = g_object_ref (bp_backend_get_host (BP_BACKEND (backend)));
  self->owner = g_strdup (owner);
  self->channel = g_strdup (channel);
  self->skeleton = bp_dbus_subscription_skeleton_new ();
  g_signal_connect_object (self->skeleton, "handle-close", G_CALLBACK (handle_close), self, 0);
  return self;
}

/* Main context: the first LISTEN result decides the start. */
static void
first_listen_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpPgListener *self = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;
  g_autofree char *path = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      bp_pg_listener_close (self);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  path = bp_host_make_client_path (self->host, self->owner, "subscription");
  if (!bp_host_export (self->host, G_DBUS_INTERFACE_SKELETON (self->skeleton), path, &error))
    {
      bp_pg_listener_close (self);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  self->path = g_steal_pointer (&path);
  self->watch_id = bp_host_watch_owner (self->host, self->owner, owner_vanished_cb, self, NULL);
  g_task_return_boolean (task, TRUE);
}

/**
 * bp_pg_listener_start_async:
 * @self: a new listener
 * @cancellable: (nullable): cancels the start
 * @callback: called once listening and exported (or failed)
 * @user_data: data for @callback
 */
void
bp_pg_listener_start_async (BpPgListener        *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *outer;

  g_return_if_fail (BP_IS_PG_LISTENER (self));
  g_return_if_fail (self->start_task == NULL);

  outer = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (outer, bp_pg_listener_start_async);
  self->start_task = g_task_new (self, cancellable, first_listen_cb, outer);
  connect_listener (self);
}

gboolean
bp_pg_listener_start_finish (BpPgListener  *self,
                             GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

const char *
bp_pg_listener_get_path (BpPgListener *self)
{
  g_return_val_if_fail (BP_IS_PG_LISTENER (self), NULL);
  return self->path;
}

/**
 * bp_pg_listener_close:
 * @self: a listener
 *
 * Sends what is pending, removes the object, closes the connection.
 */
void
bp_pg_listener_close (BpPgListener *self)
{
  g_autoptr(BpPgListener) hold = g_object_ref (self);

  g_return_if_fail (BP_IS_PG_LISTENER (self));

  if (self->closed)
    return;
  destroy_source (&self->flush_source);
  flush (self);
  self->closed = TRUE;
  g_cancellable_cancel (self->cancellable);
  destroy_source (&self->retry_source);
  if (self->watch_id != 0)
    bp_host_unwatch_owner (self->host, self->watch_id);
  self->watch_id = 0;
  if (self->path != NULL)
    bp_host_unexport (self->host, G_DBUS_INTERFACE_SKELETON (self->skeleton));
  drop_connection (self);
  g_signal_emit (self, signals[SIGNAL_ENDED], 0);
}
