/* bp-pg-listener.c: the backend's dedicated LISTEN connection
 *
 * One connection per backend, outside the pool (LISTEN belongs to a
 * session), serves every Sql.Listen subscription. Each channel counts its
 * holders — the subscriptions on it and the Listen calls waiting for it —
 * and the connection is reconciled with that: `LISTEN "channel"` while a
 * channel has holders, `UNLISTEN "channel"` when its last subscriber goes,
 * and the connection itself is closed when no channel is left (it is opened
 * again by the next Listen). One statement runs at a time.
 *
 * A Listen call completes once the server has the LISTEN: no NOTIFY sent
 * after the reply is missed. Each NOTIFY becomes an event {channel, payload,
 * pid} pushed to every subscription of its channel (each batches its own
 * Events signals for its owner).
 *
 * When the connection breaks (server restart, pg_terminate_backend) the
 * listener reconnects with exponential backoff (100 ms … 10 s) and LISTENs
 * again on every channel; NOTIFYs sent meanwhile are lost, as PostgreSQL
 * does not queue them for absent listeners. A failed connect fails the
 * Listen calls that wait; established subscriptions keep waiting for the
 * next attempt.
 *
 * Main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-pg-listener.h"

#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 10000
#define CHANNEL_KEY      "bp-pg-listener-channel"

typedef struct
{
  char      *name;       /* (owned) */
  GPtrArray *subs;       /* (owned) (element-type BpSubscription) */
  GQueue     waiters;    /* (owned) (element-type GTask) */
  gboolean   listening;  /* the current connection has the LISTEN */
} Channel;

struct _BpPgListener
{
  GObject         parent_instance;

  BpPgBackend    *backend;       /* (unowned): the backend owns us and closes us first */
  BpHost         *host;          /* (owned) */
  BpClock        *clock;         /* (owned) */
  GHashTable     *channels;      /* (owned) name → Channel */
  BpPgConnection *conn;          /* (owned) (nullable) */
  GCancellable   *cancellable;   /* (owned): cancels everything at close */
  GSource        *retry_source;  /* (owned) (nullable) */
  guint           retry_ms;
  gboolean        connecting;
  gboolean        busy;          /* a LISTEN/UNLISTEN runs */
  gboolean        closed;
};

G_DEFINE_FINAL_TYPE (BpPgListener, bp_pg_listener, G_TYPE_OBJECT)

static void reconcile (BpPgListener *self);

static void
destroy_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
channel_free (Channel *ch)
{
  g_assert (ch->waiters.length == 0);
  g_free (ch->name);
  g_ptr_array_unref (ch->subs);
  g_free (ch);
}

static gboolean
channel_wanted (Channel *ch)
{
  return ch->subs->len > 0 || ch->waiters.length > 0;
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

  bp_pg_listener_close (self);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->clock);
  g_clear_object (&self->host);
  G_OBJECT_CLASS (bp_pg_listener_parent_class)->dispose (object);
}

static void
bp_pg_listener_finalize (GObject *object)
{
  BpPgListener *self = BP_PG_LISTENER (object);

  g_hash_table_unref (self->channels);
  G_OBJECT_CLASS (bp_pg_listener_parent_class)->finalize (object);
}

static void
bp_pg_listener_class_init (BpPgListenerClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = bp_pg_listener_dispose;
  G_OBJECT_CLASS (klass)->finalize = bp_pg_listener_finalize;
}

static void
bp_pg_listener_init (BpPgListener *self)
{
  self->channels = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, (GDestroyNotify) channel_free);
  self->cancellable = g_cancellable_new ();
  self->retry_ms = RECONNECT_MIN_MS;
}

/**
 * bp_pg_listener_new:
 * @backend: the backend (not referenced: it closes the listener before it
 *   goes away)
 *
 * Returns: (transfer full): a listener without a connection yet
 */
BpPgListener *
bp_pg_listener_new (BpPgBackend *backend)
{
  BpPgListener *self = g_object_new (BP_TYPE_PG_LISTENER, NULL);

  self->backend = backend;
  self->host = g_object_ref (bp_backend_get_host (BP_BACKEND (backend)));
  self->clock = g_object_ref (bp_backend_get_clock (BP_BACKEND (backend)));
  return self;
}

/* ---------------------------------------------------------------------- */
/* Subscriptions                                                           */

/* Main context: a subscription ended (Close, owner gone, backend stop). */
static void
subscription_closed_cb (BpSubscription *sub,
                        BpPgListener     *self)
{
  const char *name = g_object_get_data (G_OBJECT (sub), CHANNEL_KEY);
  Channel *ch = g_hash_table_lookup (self->channels, name);

  if (ch == NULL)
    return;
  g_signal_handlers_disconnect_by_data (sub, self);
  g_ptr_array_remove (ch->subs, sub);
  if (!channel_wanted (ch) && !ch->listening)
    g_hash_table_remove (self->channels, name);
  if (!self->closed)
    reconcile (self);
}

/* Completes one waiting Listen: the channel is listened to. */
static void
serve_waiter (BpPgListener *self,
              Channel      *ch,
              GTask        *task)
{
  /* (transfer full) task */
  const char *owner = g_task_get_task_data (task);
  GError *error = NULL;
  BpSubscription *sub;

  if (g_task_return_error_if_cancelled (task))  /* the caller left */
    {
      g_object_unref (task);
      return;
    }
  sub = bp_subscription_new (self->host, owner, NULL, &error);
  if (sub == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  g_object_set_data_full (G_OBJECT (sub), CHANNEL_KEY, g_strdup (ch->name), g_free);
  g_ptr_array_add (ch->subs, g_object_ref (sub));
  g_signal_connect (sub, "closed", G_CALLBACK (subscription_closed_cb), self);
  g_task_return_pointer (task, sub, g_object_unref);
  g_object_unref (task);
}

static void
serve_waiters (BpPgListener *self,
               Channel      *ch)
{
  GTask *task;

  while ((task = g_queue_pop_head (&ch->waiters)) != NULL)
    serve_waiter (self, ch, task);
}

static void
fail_waiters (Channel      *ch,
              const GError *error)
{
  GTask *task;

  while ((task = g_queue_pop_head (&ch->waiters)) != NULL)
    {
      g_task_return_error (task, g_error_copy (error));
      g_object_unref (task);
    }
}

/* Fails every waiting Listen; drops the channels nobody holds then. */
static void
fail_all_waiters (BpPgListener *self,
                  const GError *error)
{
  GHashTableIter iter;
  Channel *ch;

  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &ch))
    {
      fail_waiters (ch, error);
      if (!channel_wanted (ch))
        g_hash_table_iter_remove (&iter);
    }
}

/* ---------------------------------------------------------------------- */
/* Events                                                                  */

/* Main context: a NOTIFY arrived. */
static void
notification_cb (BpPgConnection *conn,
                 const char     *channel,
                 const char     *payload,
                 int             pid,
                 BpPgListener   *self)
{
  Channel *ch = g_hash_table_lookup (self->channels, channel);
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr(GVariant) event = NULL;

  if (ch == NULL || ch->subs->len == 0)
    return;
  g_variant_builder_add (&builder, "{sv}", "channel", g_variant_new_string (channel));
  g_variant_builder_add (&builder, "{sv}", "payload", g_variant_new_string (payload));
  g_variant_builder_add (&builder, "{sv}", "pid", g_variant_new_int32 (pid));
  event = g_variant_ref_sink (g_variant_builder_end (&builder));
  for (guint i = 0; i < ch->subs->len; i++)
    bp_subscription_push (g_ptr_array_index (ch->subs, i), event);
}

/* ---------------------------------------------------------------------- */
/* The connection                                                          */

static void
drop_connection (BpPgListener *self)
{
  GHashTableIter iter;
  Channel *ch;

  if (self->conn == NULL)
    return;
  g_signal_handlers_disconnect_by_data (self->conn, self);
  bp_pg_connection_close (self->conn);
  g_clear_object (&self->conn);
  self->connecting = FALSE;
  self->busy = FALSE;
  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &ch))
    {
      ch->listening = FALSE;
      if (!channel_wanted (ch))
        g_hash_table_iter_remove (&iter);
    }
}

static gboolean
on_retry (gpointer user_data)
{
  BpPgListener *self = user_data;

  g_clear_pointer (&self->retry_source, g_source_unref);
  reconcile (self);
  return G_SOURCE_REMOVE;
}

static void
schedule_reconnect (BpPgListener *self)
{
  if (self->closed || self->retry_source != NULL)
    return;
  g_debug ("listener reconnects in %u ms", self->retry_ms);
  self->retry_source = bp_clock_timeout_source_new (self->clock, (gint64) self->retry_ms * 1000);
  g_source_set_callback (self->retry_source, on_retry, self, NULL);
  g_source_set_static_name (self->retry_source, "[bp-postgres] listener reconnect");
  g_source_attach (self->retry_source, g_main_context_get_thread_default ());
  self->retry_ms = MIN (self->retry_ms * 2, RECONNECT_MAX_MS);
}

/* Main context: the connection broke while idle or during a statement. */
static void
closed_cb (BpPgConnection *conn,
           const GError   *error,
           BpPgListener   *self)
{
  g_debug ("listener lost its connection: %s", error->message);
  drop_connection (self);
  if (g_hash_table_size (self->channels) > 0)
    schedule_reconnect (self);
}

typedef struct
{
  BpPgListener   *self;     /* (owned) */
  BpPgConnection *conn;     /* (owned): the statement ran on this one */
  char           *channel;  /* (owned) */
  gboolean        listen;
} Statement;

static void
statement_free (Statement *st)
{
  g_object_unref (st->self);
  g_object_unref (st->conn);
  g_free (st->channel);
  g_free (st);
}

/* Main context: a LISTEN or UNLISTEN ran. */
static void
statement_done_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Statement *st = user_data;
  BpPgListener *self = st->self;
  g_autoptr(GError) error = NULL;
  Channel *ch;

  bp_pg_connection_query_finish (st->conn, result, NULL, NULL, NULL, &error);
  if (st->conn != self->conn || self->closed)
    {
      /* Dropped meanwhile: reconnecting redoes it. */
      statement_free (st);
      return;
    }
  self->busy = FALSE;
  ch = g_hash_table_lookup (self->channels, st->channel);

  if (error != NULL && bp_pg_connection_get_state (st->conn) == BP_PG_CONNECTION_STATE_CLOSED)
    {
      /* ::closed has run or runs: it reconnects. */
      statement_free (st);
      return;
    }
  if (error != NULL)
    {
      g_debug ("%s %s: %s", st->listen ? "LISTEN" : "UNLISTEN", st->channel, error->message);
      if (st->listen && ch != NULL)
        {
          fail_waiters (ch, error);
          if (!channel_wanted (ch))
            g_hash_table_remove (self->channels, st->channel);
        }
      else
        {
          /* An UNLISTEN that failed: start over on a fresh session. */
          drop_connection (self);
        }
    }
  else if (ch != NULL)
    {
      ch->listening = st->listen;
      if (ch->listening)
        {
          self->retry_ms = RECONNECT_MIN_MS;
          serve_waiters (self, ch);
        }
      if (!channel_wanted (ch) && !ch->listening)
        g_hash_table_remove (self->channels, st->channel);
    }
  statement_free (st);
  reconcile (self);
}

static void
run_statement (BpPgListener *self,
               Channel      *ch,
               gboolean      listen)
{
  g_autofree char *quoted = bp_pg_quote_ident (ch->name);
  g_autofree char *sql = g_strdup_printf ("%s %s", listen ? "LISTEN" : "UNLISTEN", quoted);
  Statement *st = g_new0 (Statement, 1);

  st->self = g_object_ref (self);
  st->conn = g_object_ref (self->conn);
  st->channel = g_strdup (ch->name);
  st->listen = listen;
  self->busy = TRUE;
  bp_pg_connection_query_async (self->conn, sql, NULL, 0, 0, self->cancellable, statement_done_cb, st);
}

/* Main context: the dedicated connection is up (or not). */
static void
connected_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(BpPgListener) self = user_data;
  BpPgConnection *conn = BP_PG_CONNECTION (object);
  g_autoptr(GError) error = NULL;

  if (!bp_pg_connection_connect_finish (conn, result, &error))
    {
      if (conn != self->conn || self->closed)
        return;
      g_debug ("listener connect failed: %s", error->message);
      drop_connection (self);
      fail_all_waiters (self, error);
      if (g_hash_table_size (self->channels) > 0)
        schedule_reconnect (self);
      return;
    }
  if (conn != self->conn || self->closed)
    return;
  self->connecting = FALSE;
  reconcile (self);
}

static void
start_connect (BpPgListener *self)
{
  g_autofree char *app = g_strdup_printf ("backplaned/%s/listen",
                                          bp_backend_get_name (BP_BACKEND (self->backend)));

  self->conn = bp_pg_backend_new_connection (self->backend);
  bp_pg_connection_set_application_name (self->conn, app);
  g_signal_connect (self->conn, "notification", G_CALLBACK (notification_cb), self);
  g_signal_connect (self->conn, "closed", G_CALLBACK (closed_cb), self);
  self->connecting = TRUE;
  bp_pg_connection_connect_async (self->conn, self->cancellable, connected_cb, g_object_ref (self));
}

/* Brings the connection in line with the channels' holders. */
static void
reconcile (BpPgListener *self)
{
  GHashTableIter iter;
  Channel *ch;

  if (self->closed)
    return;
  if (g_hash_table_size (self->channels) == 0)
    {
      /* Nothing to listen to: no session held open. */
      destroy_source (&self->retry_source);
      self->retry_ms = RECONNECT_MIN_MS;
      if (self->conn != NULL && !self->busy)
        drop_connection (self);
      return;
    }
  if (self->conn == NULL)
    {
      if (self->retry_source == NULL)
        start_connect (self);
      return;
    }
  if (self->connecting || self->busy)
    return;

  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &ch))
    {
      gboolean wanted = channel_wanted (ch);

      if (wanted && ch->listening && ch->waiters.length > 0)
        serve_waiters (self, ch);
      else if (wanted != ch->listening)
        {
          run_statement (self, ch, wanted);
          return;
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Public                                                                  */

/**
 * bp_pg_listener_subscribe_async:
 * @self: a listener
 * @owner: the unique bus name of the client
 * @channel: the channel (checked with bp_pg_check_channel())
 * @cancellable: (nullable): the call's; when cancelled before the LISTEN is
 *   in place no subscription is made
 * @callback: called once the server listens on @channel (or failed)
 * @user_data: data for @callback
 */
void
bp_pg_listener_subscribe_async (BpPgListener        *self,
                                const char          *owner,
                                const char          *channel,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  GTask *task;
  Channel *ch;

  g_return_if_fail (BP_IS_PG_LISTENER (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_pg_listener_subscribe_async);
  g_task_set_task_data (task, g_strdup (owner), g_free);
  if (self->closed)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, "the backend is stopping");
      g_object_unref (task);
      return;
    }
  ch = g_hash_table_lookup (self->channels, channel);
  if (ch == NULL)
    {
      ch = g_new0 (Channel, 1);
      ch->name = g_strdup (channel);
      ch->subs = g_ptr_array_new_with_free_func (g_object_unref);
      g_queue_init (&ch->waiters);
      g_hash_table_insert (self->channels, ch->name, ch);
    }
  g_queue_push_tail (&ch->waiters, task);
  reconcile (self);
}

/**
 * bp_pg_listener_subscribe_finish:
 * @self: a listener
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the exported subscription, or %NULL
 */
BpSubscription *
bp_pg_listener_subscribe_finish (BpPgListener  *self,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * bp_pg_listener_get_n_subscriptions:
 * @self: a listener
 *
 * Returns: subscriptions plus Listen calls waiting for theirs
 */
guint
bp_pg_listener_get_n_subscriptions (BpPgListener *self)
{
  GHashTableIter iter;
  Channel *ch;
  guint n = 0;

  g_return_val_if_fail (BP_IS_PG_LISTENER (self), 0);

  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &ch))
    n += ch->subs->len + ch->waiters.length;
  return n;
}

/**
 * bp_pg_listener_get_n_channels:
 * @self: a listener
 *
 * Returns: the channels listened to, or about to be, or about to be
 *   unlistened
 */
guint
bp_pg_listener_get_n_channels (BpPgListener *self)
{
  g_return_val_if_fail (BP_IS_PG_LISTENER (self), 0);
  return g_hash_table_size (self->channels);
}

/**
 * bp_pg_listener_close:
 * @self: a listener
 *
 * Fails the waiting Listen calls, closes every subscription (pending
 * events are sent first) and the connection. For backend stop.
 */
void
bp_pg_listener_close (BpPgListener *self)
{
  g_autoptr(BpPgListener) hold = g_object_ref (self);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) subs = g_ptr_array_new_with_free_func (g_object_unref);
  GHashTableIter iter;
  Channel *ch;

  g_return_if_fail (BP_IS_PG_LISTENER (self));

  if (self->closed)
    return;
  self->closed = TRUE;
  g_cancellable_cancel (self->cancellable);
  destroy_source (&self->retry_source);

  error = g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, "the backend is stopping");
  g_hash_table_iter_init (&iter, self->channels);
  while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &ch))
    {
      fail_waiters (ch, error);
      for (guint i = 0; i < ch->subs->len; i++)
        g_ptr_array_add (subs, g_object_ref (g_ptr_array_index (ch->subs, i)));
    }
  for (guint i = 0; i < subs->len; i++)
    bp_subscription_close (g_ptr_array_index (subs, i));
  drop_connection (self);
  g_hash_table_remove_all (self->channels);
}
