/* bp-pg-subscription.c: a client's stream of NOTIFY events
 *
 * org.backplane.Backplane1.Subscription at
 * /org/backplane/Backplane1/client/NAME/subscriptionN, for its owner only:
 * events are sent as Events signals with the owner as destination,
 * batched: a flush timer (100 ms, on the host's BpClock) is armed only while
 * events are pending, a batch holds at most 256 events, order is kept. At
 * most 10000 events wait; beyond that the oldest are dropped and counted in
 * the Dropped property.
 *
 * It ends once, emitting ::closed, when the owner calls Close, when the
 * owner leaves the bus, or on bp_pg_subscription_close() (pending events
 * are flushed first).
 *
 * The API is libbackplane's BpSubscription's, so that this file goes once
 * that one is available.
 *
 * Main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-pg-subscription.h"
#include "bp-postgres-dbus.h"

struct _BpPgSubscription
{
  GObject             parent_instance;

  BpHost             *host;          /* (owned) */
  char               *owner;         /* (owned) */
  char               *path;          /* (owned) */
  BpDBusSubscription *skeleton;      /* (owned) */
  guint               watch_id;
  GQueue              pending;       /* (element-type GVariant) (owned) */
  GSource            *flush_source;  /* (owned) (nullable) */
  guint64             dropped;
  gboolean            closed;
};

G_DEFINE_FINAL_TYPE (BpPgSubscription, bp_pg_subscription, G_TYPE_OBJECT)

enum {
  SIGNAL_CLOSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

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
bp_pg_subscription_dispose (GObject *object)
{
  BpPgSubscription *self = BP_PG_SUBSCRIPTION (object);

  destroy_source (&self->flush_source);
  if (self->watch_id != 0)
    bp_host_unwatch_owner (self->host, self->watch_id);
  self->watch_id = 0;
  if (self->skeleton != NULL && !self->closed)
    bp_host_unexport (self->host, G_DBUS_INTERFACE_SKELETON (self->skeleton));
  self->closed = TRUE;
  g_queue_clear_full (&self->pending, (GDestroyNotify) g_variant_unref);
  g_clear_object (&self->skeleton);
  g_clear_object (&self->host);
  G_OBJECT_CLASS (bp_pg_subscription_parent_class)->dispose (object);
}

static void
bp_pg_subscription_finalize (GObject *object)
{
  BpPgSubscription *self = BP_PG_SUBSCRIPTION (object);

  g_free (self->owner);
  g_free (self->path);
  G_OBJECT_CLASS (bp_pg_subscription_parent_class)->finalize (object);
}

static void
bp_pg_subscription_class_init (BpPgSubscriptionClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = bp_pg_subscription_dispose;
  G_OBJECT_CLASS (klass)->finalize = bp_pg_subscription_finalize;

  /**
   * BpPgSubscription::closed:
   *
   * The subscription ended and its object left the bus.
   */
  signals[SIGNAL_CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
bp_pg_subscription_init (BpPgSubscription *self)
{
  g_queue_init (&self->pending);
}

static void
flush (BpPgSubscription *self)
{
  GDBusConnection *bus = bp_host_get_connection (self->host);

  while (self->pending.length > 0)
    {
      g_auto(GVariantBuilder) batch = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("aa{sv}"));

      for (guint i = 0; i < BP_PG_SUBSCRIPTION_MAX_BATCH && self->pending.length > 0; i++)
        {
          g_autoptr(GVariant) event = g_queue_pop_head (&self->pending);
          g_variant_builder_add_value (&batch, event);
        }
      if (bus != NULL)
        g_dbus_connection_emit_signal (bus, self->owner, self->path,
                                       "org.backplane.Backplane1.Subscription", "Events",
                                       g_variant_new ("(aa{sv})", &batch), NULL);
    }
}

static gboolean
on_flush (gpointer user_data)
{
  BpPgSubscription *self = user_data;

  g_clear_pointer (&self->flush_source, g_source_unref);
  flush (self);
  return G_SOURCE_REMOVE;
}

static void
end (BpPgSubscription *self,
     gboolean          send_pending)
{
  g_autoptr(BpPgSubscription) hold = g_object_ref (self);

  if (self->closed)
    return;
  destroy_source (&self->flush_source);
  if (send_pending)
    flush (self);
  g_queue_clear_full (&self->pending, (GDestroyNotify) g_variant_unref);
  self->closed = TRUE;
  if (self->watch_id != 0)
    bp_host_unwatch_owner (self->host, self->watch_id);
  self->watch_id = 0;
  bp_host_unexport (self->host, G_DBUS_INTERFACE_SKELETON (self->skeleton));
  g_signal_emit (self, signals[SIGNAL_CLOSED], 0);
}

static void
owner_vanished_cb (const char *unique_name,
                   gpointer    user_data)
{
  end (user_data, FALSE);
}

static gboolean
handle_close (BpDBusSubscription    *skeleton,
              GDBusMethodInvocation *invocation,
              gpointer               user_data)
{
  BpPgSubscription *self = user_data;

  if (!bp_host_check_owner (invocation, self->owner))
    return G_DBUS_METHOD_INVOCATION_HANDLED;
  g_dbus_method_invocation_return_value (invocation, NULL);
  end (self, FALSE);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/**
 * bp_pg_subscription_new:
 * @host: the host
 * @owner: the unique bus name of the client
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): a subscription, exported at a new
 *   client path
 */
BpPgSubscription *
bp_pg_subscription_new (BpHost      *host,
                        const char  *owner,
                        GError     **error)
{
  g_autoptr(BpPgSubscription) self = g_object_new (BP_TYPE_PG_SUBSCRIPTION, NULL);

  self->host = g_object_ref (host);
  self->owner = g_strdup (owner);
  self->skeleton = bp_dbus_subscription_skeleton_new ();
  g_signal_connect_object (self->skeleton, "handle-close", G_CALLBACK (handle_close), self, 0);
  self->path = bp_host_make_client_path (host, owner, "subscription");
  if (!bp_host_export (host, G_DBUS_INTERFACE_SKELETON (self->skeleton), self->path, error))
    {
      self->closed = TRUE;
      return NULL;
    }
  self->watch_id = bp_host_watch_owner (host, owner, owner_vanished_cb, self, NULL);
  return g_steal_pointer (&self);
}

const char *
bp_pg_subscription_get_object_path (BpPgSubscription *self)
{
  g_return_val_if_fail (BP_IS_PG_SUBSCRIPTION (self), NULL);
  return self->path;
}

const char *
bp_pg_subscription_get_owner (BpPgSubscription *self)
{
  g_return_val_if_fail (BP_IS_PG_SUBSCRIPTION (self), NULL);
  return self->owner;
}

/**
 * bp_pg_subscription_push:
 * @self: a subscription
 * @event: (transfer floating): an `a{sv}` event
 *
 * Queues @event for the next batch (ignored once closed).
 */
void
bp_pg_subscription_push (BpPgSubscription *self,
                         GVariant         *event)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (event);

  g_return_if_fail (BP_IS_PG_SUBSCRIPTION (self));

  if (self->closed)
    return;
  g_queue_push_tail (&self->pending, g_steal_pointer (&owned));
  if (self->pending.length > BP_PG_SUBSCRIPTION_MAX_QUEUED)
    {
      g_variant_unref (g_queue_pop_head (&self->pending));
      self->dropped++;
      bp_dbus_subscription_set_dropped (self->skeleton, self->dropped);
    }
  if (self->pending.length >= BP_PG_SUBSCRIPTION_MAX_BATCH)
    {
      destroy_source (&self->flush_source);
      flush (self);
      return;
    }
  if (self->flush_source == NULL)
    {
      self->flush_source = bp_clock_timeout_source_new (bp_host_get_clock (self->host),
                                                        BP_PG_SUBSCRIPTION_FLUSH_MS * 1000);
      g_source_set_callback (self->flush_source, on_flush, self, NULL);
      g_source_set_static_name (self->flush_source, "[bp-postgres] subscription flush");
      g_source_attach (self->flush_source, g_main_context_get_thread_default ());
    }
}

/**
 * bp_pg_subscription_close:
 * @self: a subscription
 *
 * Sends what is pending, removes the object, emits ::closed.
 */
void
bp_pg_subscription_close (BpPgSubscription *self)
{
  g_return_if_fail (BP_IS_PG_SUBSCRIPTION (self));
  end (self, TRUE);
}

gboolean
bp_pg_subscription_is_closed (BpPgSubscription *self)
{
  g_return_val_if_fail (BP_IS_PG_SUBSCRIPTION (self), TRUE);
  return self->closed;
}

guint64
bp_pg_subscription_get_dropped (BpPgSubscription *self)
{
  g_return_val_if_fail (BP_IS_PG_SUBSCRIPTION (self), 0);
  return self->dropped;
}
