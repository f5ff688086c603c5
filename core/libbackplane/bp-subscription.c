/* bp-subscription.c: a per-client stream of events, batched and unicast
 *
 * A BpSubscription is the object a backend hands out for a stream of events
 * (Sql.Listen and the like). It lives at
 * /org/backplane/Backplane1/client/NAME/subscriptionN and implements
 * org.backplane.Backplane1.Subscription without gdbus-codegen: two plugins
 * that both linked a codegen'd "BpDBusSubscription" type would clash on the
 * GType name, so libbackplane registers the object directly from the
 * reviewed XML in data/, embedded at build time (bp-subscription-xml.h).
 *
 * Batching (DESIGN.md §5, the EDS view pattern): events queue in order; a
 * flush timer on the host's BpClock is armed only while events are pending;
 * reaching max-batch-events or max-batch-bytes flushes at once. Each flush
 * sends the queue as one or more `Events (aa{sv})` signals with the owner as
 * destination, so the bus delivers them to the owner only.
 *
 * Bounded memory: after a flush the subscription waits until the bus
 * connection has actually written those signals (g_dbus_connection_flush(),
 * shared by all subscriptions of a connection through a FlushGate, so at
 * most one flush per connection is in flight). Events pushed meanwhile
 * queue up to max-queued-events; NEWER events beyond that bound are dropped
 * (the owner keeps a gap-free prefix, in order) and counted in the Dropped
 * property, announced with a PropertiesChanged signal, also unicast to the
 * owner, at the next flush. Anybody may read Dropped; only the owner may
 * call Close.
 *
 * The subscription ends once, emitting #BpSubscription::closed, when the
 * owner calls Close (pending events are discarded), when the owner leaves
 * the bus (the host's NameOwnerChanged watch; a NameHasOwner check at
 * creation covers an owner that left before the watch existed), or when the
 * creator calls bp_subscription_close() (pending events are flushed first).
 * After that it is unexported, unwatched, has no timer and ignores pushes.
 *
 * Everything runs on the main context the subscription was created in.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-error.h"
#include "bp-subscription.h"
#include "bp-subscription-xml.h"

#define FLUSH_GATE_KEY "bp-subscription-flush-gate"
#define XML_ADDED_KEY  "bp-subscription-xml-added"

/**
 * BpSubscription:
 *
 * A per-client stream of events, exported on the bus, batched and unicast
 * to its owner.
 *
 * A backend hands out a subscription for a stream of events (`Sql.Listen`
 * and the like): [ctor@Bp.Subscription.new] exports it at
 * `/org/backplane/Backplane1/client/NAME/subscriptionN` with the
 * %BP_SUBSCRIPTION_INTERFACE interface, the method returns that path, and
 * the backend feeds events with [method@Bp.Subscription.push].
 *
 * Batching: events queue in push order; a flush timer on the host's
 * [class@Bp.Clock] is armed only while events wait, and reaching a batch
 * bound of [struct@Bp.SubscriptionLimits] flushes at once. A flush sends
 * the queue as `Events (aa{sv})` signals addressed to the owner, so the bus
 * delivers them to the owner only.
 *
 * Bounded memory: after a flush the subscription waits until the bus
 * connection has actually written those signals. Events pushed meanwhile
 * queue up to max-queued-events; newer ones are dropped (the owner keeps a
 * gap-free prefix, in order) and counted in the `Dropped` D-Bus property
 * ([property@Bp.Subscription:dropped]), which is announced to the owner
 * with `PropertiesChanged` at the next flush. Anybody may read `Dropped`;
 * only the owner may call `Close`.
 *
 * The subscription ends once, emitting [signal@Bp.Subscription::closed],
 * when the owner calls `Close` (pending events are discarded), when the
 * owner leaves the bus, or when the creator calls
 * [method@Bp.Subscription.close] (pending events are sent first). After
 * that it is unexported, no longer watches its owner and ignores pushes.
 *
 * Main context only: create, feed and close a subscription on the main
 * context of its [class@Bp.Host].
 */
struct _BpSubscription
{
  GObject               parent_instance;

  BpHost               *host;             /* (owned) */
  GDBusConnection      *connection;       /* (owned) */
  char                 *owner;            /* (owned) */
  char                 *object_path;      /* (owned) */
  BpSubscriptionLimits  limits;

  guint                 registration_id;
  guint                 watch_id;
  GCancellable         *cancellable;      /* (owned) cancels the NameHasOwner check on close */

  GQueue                queue;            /* (element-type GVariant) (owned) events not yet sent */
  gsize                 queued_bytes;
  GSource              *timer;            /* (owned) (nullable): BpClock source, armed
                                           * only while events queue, in the
                                           * creator's main context */
  guint64               dropped;
  guint64               dropped_announced;
  gboolean              writing;          /* sent signals the connection has not written yet */
  gboolean              flush_requested;  /* flush as soon as writing ends */
  gboolean              closed;
};

G_DEFINE_FINAL_TYPE (BpSubscription, bp_subscription, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_OBJECT_PATH,
  PROP_OWNER,
  PROP_DROPPED,
  N_PROPS
};

enum {
  SIGNAL_CLOSED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];
static GDBusInterfaceInfo *subscription_info;  /* (owned) for the life of the process */
static gint n_open;

static void subscription_written (BpSubscription *self);

/* FlushGate: one g_dbus_connection_flush() at a time per connection.
 * `covered` holds the subscriptions whose signals were queued before the
 * running flush began; `next` those that sent after it began and so wait
 * for the following one. Main context only. */
typedef struct
{
  GPtrArray *covered;  /* (owned) (element-type BpSubscription) */
  GPtrArray *next;     /* (owned) (element-type BpSubscription) */
  gboolean   running;
} FlushGate;

static void
flush_gate_free (FlushGate *gate)
{
  g_ptr_array_unref (gate->covered);
  g_ptr_array_unref (gate->next);
  g_free (gate);
}

static void flush_gate_done_cb (GObject      *source,
                                GAsyncResult *result,
                                gpointer      user_data);

static void
flush_gate_start (FlushGate       *gate,
                  GDBusConnection *connection)
{
  gate->running = TRUE;
  /* The task holds a reference on @connection, which owns @gate. */
  g_dbus_connection_flush (connection, NULL, flush_gate_done_cb, gate);
}

static void
flush_gate_add (GDBusConnection *connection,
                BpSubscription  *subscription)
{
  FlushGate *gate = g_object_get_data (G_OBJECT (connection), FLUSH_GATE_KEY);

  if (gate == NULL)
    {
      gate = g_new0 (FlushGate, 1);
      gate->covered = g_ptr_array_new_with_free_func (g_object_unref);
      gate->next = g_ptr_array_new_with_free_func (g_object_unref);
      g_object_set_data_full (G_OBJECT (connection), FLUSH_GATE_KEY, gate,
                              (GDestroyNotify) flush_gate_free);
    }
  if (gate->running)
    {
      g_ptr_array_add (gate->next, g_object_ref (subscription));
      return;
    }
  g_ptr_array_add (gate->covered, g_object_ref (subscription));
  flush_gate_start (gate, connection);
}

/* Runs on the main context once the connection wrote everything that was
 * queued when the flush began. */
static void
flush_gate_done_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  GDBusConnection *connection = G_DBUS_CONNECTION (source);
  FlushGate *gate = user_data;
  g_autoptr(GPtrArray) done = NULL;
  g_autoptr(GError) error = NULL;

  if (!g_dbus_connection_flush_finish (connection, result, &error))
    g_debug ("flushing the bus connection: %s", error->message);

  done = g_steal_pointer (&gate->covered);
  gate->covered = g_steal_pointer (&gate->next);
  gate->next = g_ptr_array_new_with_free_func (g_object_unref);
  gate->running = FALSE;
  if (gate->covered->len > 0)
    flush_gate_start (gate, connection);

  /* A subscription may send again from here; it then joins `next`. */
  for (guint i = 0; i < done->len; i++)
    subscription_written (g_ptr_array_index (done, i));
}

/* The timer is destroyed through its pointer, not by id: it may live in a
 * thread-default context that g_source_remove() would not search. */
static void
clear_timer (BpSubscription *self)
{
  if (self->timer == NULL)
    return;
  g_source_destroy (self->timer);
  g_clear_pointer (&self->timer, g_source_unref);
}

static void
bp_subscription_dispose (GObject *object)
{
  BpSubscription *self = BP_SUBSCRIPTION (object);

  /* Dropping the last reference ends the subscription without ::closed. */
  if (!self->closed)
    {
      self->closed = TRUE;
      g_atomic_int_add (&n_open, -1);
      g_cancellable_cancel (self->cancellable);
      clear_timer (self);
      if (self->registration_id != 0)
        {
          g_dbus_connection_unregister_object (self->connection, self->registration_id);
          self->registration_id = 0;
          bp_host_note_unexported (self->host, self->object_path, BP_SUBSCRIPTION_INTERFACE);
        }
      if (self->watch_id != 0)
        bp_host_unwatch_owner (self->host, self->watch_id);
      self->watch_id = 0;
    }
  g_queue_clear_full (&self->queue, (GDestroyNotify) g_variant_unref);
  self->queued_bytes = 0;

  G_OBJECT_CLASS (bp_subscription_parent_class)->dispose (object);
}

static void
bp_subscription_finalize (GObject *object)
{
  BpSubscription *self = BP_SUBSCRIPTION (object);

  g_clear_object (&self->cancellable);
  g_clear_object (&self->connection);
  g_clear_object (&self->host);
  g_clear_pointer (&self->owner, g_free);
  g_clear_pointer (&self->object_path, g_free);

  G_OBJECT_CLASS (bp_subscription_parent_class)->finalize (object);
}

static void
bp_subscription_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  BpSubscription *self = BP_SUBSCRIPTION (object);

  switch (prop_id)
    {
    case PROP_OBJECT_PATH:
      g_value_set_string (value, self->object_path);
      break;
    case PROP_OWNER:
      g_value_set_string (value, self->owner);
      break;
    case PROP_DROPPED:
      g_value_set_uint64 (value, self->dropped);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_subscription_class_init (BpSubscriptionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  g_autoptr(GDBusNodeInfo) node = NULL;
  g_autoptr(GError) error = NULL;

  object_class->dispose = bp_subscription_dispose;
  object_class->finalize = bp_subscription_finalize;
  object_class->get_property = bp_subscription_get_property;

  /**
   * BpSubscription:object-path:
   *
   * Where the subscription is exported.
   */
  properties[PROP_OBJECT_PATH] =
    g_param_spec_string ("object-path", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /**
   * BpSubscription:owner:
   *
   * The unique bus name of the client the subscription belongs to.
   */
  properties[PROP_OWNER] =
    g_param_spec_string ("owner", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /**
   * BpSubscription:dropped:
   *
   * Events dropped because the queue bound was reached. Notified when the
   * D-Bus property `Dropped` is announced, at most once per flush.
   */
  properties[PROP_DROPPED] =
    g_param_spec_uint64 ("dropped", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * BpSubscription::closed:
   * @self: the subscription
   *
   * Emitted once when the subscription ends: the owner called Close, the
   * owner left the bus, or bp_subscription_close() was called. The creator
   * releases its event source (e.g. UNLISTEN) and its reference here.
   */
  signals[SIGNAL_CLOSED] =
    g_signal_new ("closed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  node = g_dbus_node_info_new_for_xml (bp_subscription_xml, &error);
  g_assert_no_error (error);
  subscription_info = g_dbus_node_info_lookup_interface (node, BP_SUBSCRIPTION_INTERFACE);
  g_assert (subscription_info != NULL);
  g_dbus_interface_info_ref (subscription_info);
  g_dbus_interface_info_cache_build (subscription_info);
}

static void
bp_subscription_init (BpSubscription *self)
{
  self->closed = TRUE;  /* until bp_subscription_new() exported it */
  self->cancellable = g_cancellable_new ();
  g_queue_init (&self->queue);
}

/**
 * bp_subscription_limits_init:
 * @limits: (out caller-allocates): limits to fill
 *
 * Fills @limits with the defaults.
 */
void
bp_subscription_limits_init (BpSubscriptionLimits *limits)
{
  g_return_if_fail (limits != NULL);

  memset (limits, 0, sizeof *limits);
  limits->flush_interval_ms = BP_SUBSCRIPTION_DEFAULT_FLUSH_INTERVAL_MS;
  limits->max_batch_events = BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_EVENTS;
  limits->max_batch_bytes = BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_BYTES;
  limits->max_queued_events = BP_SUBSCRIPTION_DEFAULT_MAX_QUEUED_EVENTS;
}

static gboolean
batch_is_full (BpSubscription *self)
{
  return self->queue.length >= self->limits.max_batch_events ||
         self->queued_bytes >= self->limits.max_batch_bytes;
}

static void
emit_to_owner (BpSubscription *self,
               const char     *interface_name,
               const char     *signal_name,
               GVariant       *parameters)
{
  g_autoptr(GError) error = NULL;

  if (!g_dbus_connection_emit_signal (self->connection, self->owner, self->object_path,
                                      interface_name, signal_name, parameters, &error))
    g_debug ("%s: cannot send %s to %s: %s", self->object_path, signal_name,
             self->owner, error->message);
}

/* Sends every queued event, in batches, then announces a changed Dropped.
 * Returns whether anything was sent. */
static gboolean
send_queue (BpSubscription *self)
{
  gboolean sent = FALSE;

  while (!g_queue_is_empty (&self->queue))
    {
      GVariantBuilder builder;
      guint n = 0;
      gsize bytes = 0;

      g_variant_builder_init (&builder, G_VARIANT_TYPE ("aa{sv}"));
      while (!g_queue_is_empty (&self->queue) && n < self->limits.max_batch_events)
        {
          GVariant *event = g_queue_peek_head (&self->queue);
          gsize size = g_variant_get_size (event);

          if (n > 0 && bytes + size > self->limits.max_batch_bytes)
            break;
          g_queue_pop_head (&self->queue);
          g_variant_builder_add_value (&builder, event);
          g_variant_unref (event);
          self->queued_bytes -= MIN (size, self->queued_bytes);
          bytes += size;
          n++;
        }
      emit_to_owner (self, BP_SUBSCRIPTION_INTERFACE, "Events",
                     g_variant_new ("(@aa{sv})", g_variant_builder_end (&builder)));
      sent = TRUE;
    }
  self->queued_bytes = 0;

  if (self->dropped != self->dropped_announced)
    {
      GVariantBuilder changed;

      self->dropped_announced = self->dropped;
      g_variant_builder_init (&changed, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&changed, "{sv}", "Dropped", g_variant_new_uint64 (self->dropped));
      emit_to_owner (self, "org.freedesktop.DBus.Properties", "PropertiesChanged",
                     g_variant_new ("(sa{sv}@as)", BP_SUBSCRIPTION_INTERFACE, &changed,
                                    g_variant_new_strv (NULL, 0)));
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DROPPED]);
      sent = TRUE;
    }
  return sent;
}

static void
flush (BpSubscription *self)
{
  clear_timer (self);
  self->flush_requested = FALSE;
  if (send_queue (self))
    {
      self->writing = TRUE;
      flush_gate_add (self->connection, self);
    }
}

static void
request_flush (BpSubscription *self)
{
  if (self->writing)
    self->flush_requested = TRUE;
  else
    flush (self);
}

/* Main context: the connection wrote what this subscription sent last. */
static void
subscription_written (BpSubscription *self)
{
  self->writing = FALSE;
  if (self->closed)
    return;
  if (self->flush_requested || (!g_queue_is_empty (&self->queue) && batch_is_full (self)))
    flush (self);
}

static gboolean
flush_timeout_cb (gpointer user_data)
{
  BpSubscription *self = user_data;

  g_clear_pointer (&self->timer, g_source_unref);
  request_flush (self);
  return G_SOURCE_REMOVE;
}

static void
close_internal (BpSubscription *self,
                gboolean        send_pending)
{
  if (self->closed)
    return;

  g_object_ref (self);
  if (send_pending)
    send_queue (self);  /* past the gate: one last burst, bounded by the queue */
  self->closed = TRUE;
  g_atomic_int_add (&n_open, -1);
  g_cancellable_cancel (self->cancellable);
  clear_timer (self);
  g_queue_clear_full (&self->queue, (GDestroyNotify) g_variant_unref);
  self->queued_bytes = 0;
  self->flush_requested = FALSE;
  if (self->registration_id != 0)
    {
      g_dbus_connection_unregister_object (self->connection, self->registration_id);
      self->registration_id = 0;
      bp_host_note_unexported (self->host, self->object_path, BP_SUBSCRIPTION_INTERFACE);
    }
  if (self->watch_id != 0)
    bp_host_unwatch_owner (self->host, self->watch_id);
  self->watch_id = 0;
  g_debug ("%s: closed", self->object_path);
  g_signal_emit (self, signals[SIGNAL_CLOSED], 0);
  g_object_unref (self);
}

/* Main context: the owner left the bus. */
static void
owner_vanished_cb (const char *unique_name,
                   gpointer    user_data)
{
  BpSubscription *self = user_data;

  self->watch_id = 0;  /* it fired; nothing to unwatch */
  close_internal (self, FALSE);
}

/* Main context: covers an owner that left before the watch existed (the
 * bus sends this reply before any later NameOwnerChanged). */
static void
name_has_owner_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(BpSubscription) self = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  gboolean has_owner = TRUE;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_debug ("NameHasOwner: %s", error->message);
      return;
    }
  g_variant_get (reply, "(b)", &has_owner);
  if (!has_owner)
    close_internal (self, FALSE);
}

/* Main context (the context of registration). */
static void
subscription_method_call (GDBusConnection       *connection,
                          const char            *sender,
                          const char            *object_path,
                          const char            *interface_name,
                          const char            *method_name,
                          GVariant              *parameters,
                          GDBusMethodInvocation *invocation,
                          gpointer               user_data)
{
  g_autoptr(BpSubscription) self = g_object_ref (user_data);

  if (g_str_equal (method_name, "Close"))
    {
      if (!bp_host_check_owner (invocation, self->owner))
        return;
      close_internal (self, FALSE);
      g_dbus_method_invocation_return_value (invocation, NULL);
      return;
    }
  g_dbus_method_invocation_return_error (invocation, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD,
                                         "No such method “%s”", method_name);
}

/* Anybody may read Dropped. */
static GVariant *
subscription_get_property (GDBusConnection *connection,
                           const char      *sender,
                           const char      *object_path,
                           const char      *interface_name,
                           const char      *property_name,
                           GError         **error,
                           gpointer         user_data)
{
  BpSubscription *self = user_data;

  if (g_str_equal (property_name, "Dropped"))
    return g_variant_new_uint64 (self->dropped);
  g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY,
               "No such property “%s”", property_name);
  return NULL;
}

static const GDBusInterfaceVTable subscription_vtable = {
  subscription_method_call,
  subscription_get_property,
  NULL,
  { 0 }
};

static guint
limit_or (guint value,
          guint fallback)
{
  return value != 0 ? value : fallback;
}

/**
 * bp_subscription_new:
 * @host: the host whose connection exports the subscription
 * @owner: the unique bus name of the client it belongs to, usually
 *   [method@Bp.Call.get_sender]
 * @limits: (nullable): batching and queue bounds, copied; %NULL or zero
 *   fields mean the defaults
 * @error: return location for a #GError
 *
 * Creates a subscription for @owner and exports it at a fresh
 * [method@Bp.Host.make_client_path] path (`…/client/NAME/subscriptionN`),
 * with documented introspection. It watches @owner and asks the bus
 * (`NameHasOwner`) whether @owner is still there, so a subscription made
 * for a client that already left closes by itself soon after.
 *
 * Keep a reference and connect to [signal@Bp.Subscription::closed] to
 * release the event source; dropping the last reference unexports the
 * subscription without emitting ::closed.
 *
 * Returns: (transfer full): the exported subscription, or %NULL with
 *   %BP_ERROR_INVALID_ARGUMENT (@owner is not a unique name),
 *   %BP_ERROR_UNAVAILABLE (the host has no connection) or the
 *   %G_IO_ERROR of g_dbus_connection_register_object()
 */
BpSubscription *
bp_subscription_new (BpHost                     *host,
                     const char                 *owner,
                     const BpSubscriptionLimits *limits,
                     GError                    **error)
{
  g_autoptr(BpSubscription) self = NULL;
  GDBusConnection *connection;

  g_return_val_if_fail (BP_IS_HOST (host), NULL);
  g_return_val_if_fail (owner != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  connection = bp_host_get_connection (host);
  if (connection == NULL)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_UNAVAILABLE,
                           "No bus connection to export a subscription on");
      return NULL;
    }
  if (!g_dbus_is_unique_name (owner))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "Subscription owner “%s” is not a unique bus name", owner);
      return NULL;
    }

  self = g_object_new (BP_TYPE_SUBSCRIPTION, NULL);
  self->host = g_object_ref (host);
  self->connection = g_object_ref (connection);
  self->owner = g_strdup (owner);
  self->limits.flush_interval_ms = limit_or (limits ? limits->flush_interval_ms : 0,
                                             BP_SUBSCRIPTION_DEFAULT_FLUSH_INTERVAL_MS);
  self->limits.max_batch_events = limit_or (limits ? limits->max_batch_events : 0,
                                            BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_EVENTS);
  self->limits.max_batch_bytes = limits != NULL && limits->max_batch_bytes != 0
                                 ? limits->max_batch_bytes : BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_BYTES;
  self->limits.max_queued_events = limit_or (limits ? limits->max_queued_events : 0,
                                             BP_SUBSCRIPTION_DEFAULT_MAX_QUEUED_EVENTS);
  self->object_path = bp_host_make_client_path (host, owner, "subscription");

  /* Documented introspection needs the XML in the host once; the daemon
   * also loads it from data/, the same text. */
  if (g_object_get_data (G_OBJECT (host), XML_ADDED_KEY) == NULL)
    {
      if (!bp_host_add_interface_xml (host, bp_subscription_xml, error))
        return NULL;
      g_object_set_data (G_OBJECT (host), XML_ADDED_KEY, GINT_TO_POINTER (1));
    }

  self->registration_id =
    g_dbus_connection_register_object (connection, self->object_path, subscription_info,
                                       &subscription_vtable, self, NULL, error);
  if (self->registration_id == 0)
    return NULL;
  bp_host_note_exported (host, self->object_path, BP_SUBSCRIPTION_INTERFACE);
  self->closed = FALSE;
  g_atomic_int_inc (&n_open);

  self->watch_id = bp_host_watch_owner (host, owner, owner_vanished_cb, self, NULL);
  g_dbus_connection_call (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                          "org.freedesktop.DBus", "NameHasOwner", g_variant_new ("(s)", owner),
                          G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, -1, self->cancellable,
                          name_has_owner_cb, g_object_ref (self));
  g_debug ("%s: subscription for %s", self->object_path, owner);
  return g_steal_pointer (&self);
}

/**
 * bp_subscription_get_object_path:
 * @self: a #BpSubscription
 *
 * Returns where the subscription is exported: the path a method hands to
 * the client.
 *
 * Returns: (transfer none): the object path, also after close
 */
const char *
bp_subscription_get_object_path (BpSubscription *self)
{
  g_return_val_if_fail (BP_IS_SUBSCRIPTION (self), NULL);
  return self->object_path;
}

/**
 * bp_subscription_get_owner:
 * @self: a #BpSubscription
 *
 * Returns the client the subscription belongs to: the only receiver of its
 * signals and the only caller allowed to `Close` it.
 *
 * Returns: (transfer none): the owner's unique bus name
 */
const char *
bp_subscription_get_owner (BpSubscription *self)
{
  g_return_val_if_fail (BP_IS_SUBSCRIPTION (self), NULL);
  return self->owner;
}

/**
 * bp_subscription_push:
 * @self: a #BpSubscription
 * @event: (transfer floating): an `a{sv}` event; a floating reference is
 *   sunk, otherwise a new reference is taken
 *
 * Queues @event for the owner. Events reach the owner in push order. A
 * batch that is full by count or by bytes is flushed at once; otherwise
 * the flush timer is armed, if it is not yet. When the queue holds
 * max-queued-events already, @event is dropped and counted in `Dropped`.
 * Ignored after close. An event of another type than `a{sv}` is a
 * programming error. Main context only.
 */
void
bp_subscription_push (BpSubscription *self,
                      GVariant       *event)
{
  g_autoptr(GVariant) owned = NULL;
  gsize size;

  g_return_if_fail (BP_IS_SUBSCRIPTION (self));
  g_return_if_fail (event != NULL);

  owned = g_variant_ref_sink (event);
  g_return_if_fail (g_variant_is_of_type (owned, G_VARIANT_TYPE_VARDICT));

  if (self->closed)
    return;
  if (self->queue.length >= self->limits.max_queued_events)
    {
      self->dropped++;
      return;
    }
  size = g_variant_get_size (owned);
  /* Keep batches full: send what is queued when this event would not fit. */
  if (!g_queue_is_empty (&self->queue) && self->queued_bytes + size > self->limits.max_batch_bytes)
    request_flush (self);
  self->queued_bytes += size;
  g_queue_push_tail (&self->queue, g_steal_pointer (&owned));
  if (batch_is_full (self))
    request_flush (self);
  else if (self->timer == NULL)
    {
      self->timer = bp_clock_timeout_source_new (bp_host_get_clock (self->host),
                                                 (gint64) self->limits.flush_interval_ms * 1000);
      g_source_set_callback (self->timer, flush_timeout_cb, self, NULL);
      g_source_attach (self->timer, g_main_context_get_thread_default ());
    }
}

/**
 * bp_subscription_close:
 * @self: a #BpSubscription
 *
 * Ends the subscription from the creator's side (the backend stops, the
 * source failed): queued events are handed to the bus connection first,
 * then the object is unexported, its owner unwatched and
 * [signal@Bp.Subscription::closed] emitted. Does nothing when already
 * closed.
 */
void
bp_subscription_close (BpSubscription *self)
{
  g_return_if_fail (BP_IS_SUBSCRIPTION (self));

  close_internal (self, TRUE);
}

/**
 * bp_subscription_is_closed:
 * @self: a #BpSubscription
 *
 * Tells whether the subscription has ended, in any of the ways listed for
 * [signal@Bp.Subscription::closed].
 *
 * Returns: %TRUE once the subscription has ended
 */
gboolean
bp_subscription_is_closed (BpSubscription *self)
{
  g_return_val_if_fail (BP_IS_SUBSCRIPTION (self), TRUE);
  return self->closed;
}

/**
 * bp_subscription_get_dropped:
 * @self: a #BpSubscription
 *
 * Counts the events that were dropped because the queue was full.
 *
 * Returns: events dropped so far; the D-Bus property `Dropped` and
 *   [property@Bp.Subscription:dropped] catch up at the next flush
 */
guint64
bp_subscription_get_dropped (BpSubscription *self)
{
  g_return_val_if_fail (BP_IS_SUBSCRIPTION (self), 0);
  return self->dropped;
}

/**
 * bp_subscription_get_n_queued:
 * @self: a #BpSubscription
 *
 * Counts the events pushed and not yet handed to the bus connection; at
 * most max-queued-events of the [struct@Bp.SubscriptionLimits].
 *
 * Returns: events pushed and not yet sent
 */
guint
bp_subscription_get_n_queued (BpSubscription *self)
{
  g_return_val_if_fail (BP_IS_SUBSCRIPTION (self), 0);
  return self->queue.length;
}

/**
 * bp_subscription_get_n_open:
 *
 * Counts the subscriptions of the whole process that are exported and not
 * yet closed; the daemon reports it as its `ActiveSubscriptions` counter.
 * May be called from any thread.
 *
 * Returns: subscriptions exported and not yet closed in this process
 */
guint
bp_subscription_get_n_open (void)
{
  return (guint) g_atomic_int_get (&n_open);
}
