/* bp-host.c: the daemon services a backend uses
 *
 * One BpHost lives in backplaned (and in tests, on a private bus). It
 * holds the bus connection and gives backends four things:
 *
 *  - caller tracking: ONE NameOwnerChanged subscription for the whole daemon;
 *    bp_host_watch_owner() runs a callback when a client disconnects, which is
 *    how each call's GCancellable fires and how per-client objects are
 *    released when their owner vanishes;
 *  - in-flight call accounting (BpCall), so shutdown can drain;
 *  - per-client object paths, /org/backplane/Backplane1/client/NAME/TOKEN;
 *  - full introspection. gdbus-codegen drops doc annotations from the
 *    interface info it generates, so GDBus's own Introspect reply would show
 *    no documentation. The host keeps the reviewed XML of every interface and
 *    registers org.freedesktop.DBus.Introspectable on each path it exports;
 *    GDBus dispatches a registered interface before its built-in handler, so
 *    d-feet and `busctl introspect` see the docs.
 *
 * Everything runs on the main context the host was created in.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-host-private.h"

#define BP_ROOT_PATH "/org/backplane/Backplane1"
#define INTROSPECT_DOCTYPE \
  "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n" \
  "\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n"

typedef struct
{
  guint               id;
  char               *name;     /* (owned) */
  BpOwnerVanishedFunc func;
  gpointer            user_data;
  GDestroyNotify      notify;
} Watch;

typedef struct
{
  GPtrArray *interfaces;        /* (owned) (element-type utf8) */
  guint      registration_id;   /* of org.freedesktop.DBus.Introspectable */
} PathEntry;

/**
 * BpHost:
 *
 * What the daemon gives a backend: the bus connection, documented exports,
 * caller tracking and the shutdown state.
 *
 * backplaned creates one host on its bus connection and hands it to every
 * backend ([method@Bp.Backend.get_host]); unit tests create one without a
 * connection. The host provides:
 *
 * - the #GDBusConnection ([method@Bp.Host.get_connection]) and the
 *   [class@Bp.Clock] that every timer should use, so that tests can swap in
 *   a manual clock ([method@Bp.Host.get_clock]);
 * - exporting with documentation: [method@Bp.Host.export] exports an
 *   interface skeleton and registers `org.freedesktop.DBus.Introspectable`
 *   on its path, so that `Introspect` returns the reviewed XML given to
 *   [method@Bp.Host.add_interface_xml], doc annotations included
 *   (gdbus-codegen drops them from the interface info it generates);
 * - caller tracking: ONE `NameOwnerChanged` subscription for the whole
 *   daemon. [method@Bp.Host.watch_owner] runs a callback when a client
 *   leaves the bus; this is how the cancellable of a [class@Bp.Call] fires
 *   and how per-client objects, exported at
 *   [method@Bp.Host.make_client_path] paths and guarded by
 *   [func@Bp.Host.check_owner], are released;
 * - in-flight call accounting ([property@Bp.Host:n-calls]) so that shutdown
 *   can drain, and the shutdown state
 *   ([method@Bp.Host.get_shutdown_cancellable],
 *   [method@Bp.Host.is_shutting_down]);
 * - the daemon's dead-letter store ([method@Bp.Host.get_dead_letters]).
 *
 * Everything runs on the main context the host was created in, and callbacks
 * are invoked there. The host is not thread-safe.
 */
struct _BpHost
{
  GObject          parent_instance;

  GDBusConnection *connection;        /* (owned) (nullable) */
  BpClock         *clock;             /* (owned) */
  GCancellable    *shutdown;          /* (owned) */
  guint            noc_subscription;
  GHashTable      *watches_by_id;     /* (owned) guint → Watch* (owned) */
  GHashTable      *watches_by_name;   /* (owned) name → GPtrArray of Watch* (borrowed) */
  guint            next_watch_id;
  guint64          next_token;
  guint            n_calls;
  char             last_call[160];
  GHashTable      *interface_xml;     /* (owned) name → XML text */
  GHashTable      *paths;             /* (owned) path → PathEntry* */
  GDBusNodeInfo   *introspectable_info; /* (owned) */
  BpDeadLetters   *dead_letters;      /* (owned) (nullable) */
  gboolean         shutting_down;
};

G_DEFINE_FINAL_TYPE (BpHost, bp_host, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_N_CALLS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const char standard_xml[] =
  "<node>"
  "<interface name=\"org.freedesktop.DBus.Introspectable\">"
  "<method name=\"Introspect\"><arg type=\"s\" name=\"xml_data\" direction=\"out\"/></method>"
  "</interface>"
  "<interface name=\"org.freedesktop.DBus.Peer\">"
  "<method name=\"Ping\"/>"
  "<method name=\"GetMachineId\"><arg type=\"s\" name=\"machine_uuid\" direction=\"out\"/></method>"
  "</interface>"
  "<interface name=\"org.freedesktop.DBus.Properties\">"
  "<method name=\"Get\"><arg type=\"s\" name=\"interface_name\" direction=\"in\"/>"
  "<arg type=\"s\" name=\"property_name\" direction=\"in\"/><arg type=\"v\" name=\"value\" direction=\"out\"/></method>"
  "<method name=\"GetAll\"><arg type=\"s\" name=\"interface_name\" direction=\"in\"/>"
  "<arg type=\"a{sv}\" name=\"properties\" direction=\"out\"/></method>"
  "<method name=\"Set\"><arg type=\"s\" name=\"interface_name\" direction=\"in\"/>"
  "<arg type=\"s\" name=\"property_name\" direction=\"in\"/><arg type=\"v\" name=\"value\" direction=\"in\"/></method>"
  "<signal name=\"PropertiesChanged\"><arg type=\"s\" name=\"interface_name\"/>"
  "<arg type=\"a{sv}\" name=\"changed_properties\"/><arg type=\"as\" name=\"invalidated_properties\"/></signal>"
  "</interface>"
  "<interface name=\"org.freedesktop.DBus.ObjectManager\">"
  "<method name=\"GetManagedObjects\">"
  "<arg type=\"a{oa{sa{sv}}}\" name=\"object_paths_interfaces_and_properties\" direction=\"out\"/></method>"
  "<signal name=\"InterfacesAdded\"><arg type=\"o\" name=\"object_path\"/>"
  "<arg type=\"a{sa{sv}}\" name=\"interfaces_and_properties\"/></signal>"
  "<signal name=\"InterfacesRemoved\"><arg type=\"o\" name=\"object_path\"/>"
  "<arg type=\"as\" name=\"interfaces\"/></signal>"
  "</interface>"
  "</node>";

static void
watch_free (Watch *w)
{
  if (w->notify != NULL)
    w->notify (w->user_data);
  g_free (w->name);
  g_free (w);
}

static void
path_entry_free (PathEntry *e)
{
  g_ptr_array_unref (e->interfaces);
  g_free (e);
}

static void
bp_host_dispose (GObject *object)
{
  BpHost *self = BP_HOST (object);

  if (self->connection != NULL)
    {
      GHashTableIter iter;
      PathEntry *e;

      if (self->noc_subscription != 0)
        g_dbus_connection_signal_unsubscribe (self->connection, self->noc_subscription);
      self->noc_subscription = 0;
      g_hash_table_iter_init (&iter, self->paths);
      while (g_hash_table_iter_next (&iter, NULL, (gpointer *) &e))
        if (e->registration_id != 0)
          {
            g_dbus_connection_unregister_object (self->connection, e->registration_id);
            e->registration_id = 0;
          }
    }
  g_hash_table_remove_all (self->watches_by_name);
  g_hash_table_remove_all (self->watches_by_id);
  g_clear_object (&self->connection);

  G_OBJECT_CLASS (bp_host_parent_class)->dispose (object);
}

static void
bp_host_finalize (GObject *object)
{
  BpHost *self = BP_HOST (object);

  g_clear_pointer (&self->watches_by_id, g_hash_table_unref);
  g_clear_pointer (&self->watches_by_name, g_hash_table_unref);
  g_clear_pointer (&self->interface_xml, g_hash_table_unref);
  g_clear_pointer (&self->paths, g_hash_table_unref);
  g_clear_pointer (&self->introspectable_info, g_dbus_node_info_unref);
  g_clear_object (&self->shutdown);
  g_clear_object (&self->clock);
  g_clear_object (&self->dead_letters);

  G_OBJECT_CLASS (bp_host_parent_class)->finalize (object);
}

static void
bp_host_get_property (GObject    *object,
                      guint       prop_id,
                      GValue     *value,
                      GParamSpec *pspec)
{
  BpHost *self = BP_HOST (object);

  switch (prop_id)
    {
    case PROP_N_CALLS:
      g_value_set_uint (value, self->n_calls);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_host_class_init (BpHostClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bp_host_dispose;
  object_class->finalize = bp_host_finalize;
  object_class->get_property = bp_host_get_property;

  /**
   * BpHost:n-calls:
   *
   * Method calls begun with bp_call_new() and not yet answered.
   */
  properties[PROP_N_CALLS] =
    g_param_spec_uint ("n-calls", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
bp_host_init (BpHost *self)
{
  g_autoptr(GDBusNodeInfo) standard = NULL;

  self->shutdown = g_cancellable_new ();
  self->watches_by_id = g_hash_table_new_full (NULL, NULL, NULL, (GDestroyNotify) watch_free);
  self->watches_by_name = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                                 (GDestroyNotify) g_ptr_array_unref);
  self->interface_xml = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) path_entry_free);
  self->next_watch_id = 1;
  self->next_token = 1;

  standard = g_dbus_node_info_new_for_xml (standard_xml, NULL);
  g_assert (standard != NULL);
  self->introspectable_info = g_dbus_node_info_ref (standard);
  for (guint i = 0; standard->interfaces[i] != NULL; i++)
    {
      GString *s = g_string_new (NULL);

      g_dbus_interface_info_generate_xml (standard->interfaces[i], 1, s);
      g_hash_table_insert (self->interface_xml, g_strdup (standard->interfaces[i]->name),
                           g_string_free (s, FALSE));
    }
}

static void
name_owner_changed_cb (GDBusConnection *connection,
                       const char      *sender_name,
                       const char      *object_path,
                       const char      *interface_name,
                       const char      *signal_name,
                       GVariant        *parameters,
                       gpointer         user_data)
{
  BpHost *self = user_data;
  g_autoptr(GPtrArray) watches = NULL;
  g_autoptr(GArray) ids = NULL;
  const char *name, *old_owner, *new_owner;
  g_autofree char *key = NULL;

  if (!g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(sss)")))
    return;
  g_variant_get (parameters, "(&s&s&s)", &name, &old_owner, &new_owner);
  if (name[0] != ':' || new_owner[0] != '\0')
    return;

  /* Steal the list first: callbacks may add or remove watches. */
  if (!g_hash_table_steal_extended (self->watches_by_name, name, (gpointer *) &key, (gpointer *) &watches))
    return;
  g_debug ("client %s vanished: %u watch(es)", name, watches->len);
  /* Callbacks may unwatch other watches of the same name: work from ids. */
  ids = g_array_sized_new (FALSE, FALSE, sizeof (guint), watches->len);
  for (guint i = 0; i < watches->len; i++)
    g_array_append_val (ids, ((Watch *) g_ptr_array_index (watches, i))->id);
  g_clear_pointer (&watches, g_ptr_array_unref);
  g_object_ref (self);
  for (guint i = 0; i < ids->len; i++)
    {
      guint id = g_array_index (ids, guint, i);
      Watch *w = g_hash_table_lookup (self->watches_by_id, GUINT_TO_POINTER (id));

      /* Steal from the id table so the watch outlives its own callback. */
      if (w == NULL || !g_hash_table_steal (self->watches_by_id, GUINT_TO_POINTER (id)))
        continue;
      w->func (name, w->user_data);
      watch_free (w);
    }
  g_object_unref (self);
}

/**
 * bp_host_new:
 * @connection: (nullable): the bus connection to serve on; %NULL for unit
 *   tests (then nothing is exported and no owner watch ever fires)
 * @clock: (nullable): the clock for every timer; %NULL for
 *   [func@Bp.Clock.get_default]
 *
 * Creates a host. The daemon does this once; a backend receives the host
 * from [method@Bp.Backend.get_host] and never creates its own. With a
 * @connection, the host subscribes to the bus's `NameOwnerChanged` signal
 * from the thread-default main context, where all its callbacks then run.
 *
 * Returns: (transfer full): a new host
 */
BpHost *
bp_host_new (GDBusConnection *connection,
             BpClock         *clock)
{
  BpHost *self = g_object_new (BP_TYPE_HOST, NULL);

  self->clock = clock != NULL ? g_object_ref (clock) : g_object_ref (bp_clock_get_default ());
  if (connection != NULL)
    {
      self->connection = g_object_ref (connection);
      self->noc_subscription =
        g_dbus_connection_signal_subscribe (connection,
                                            "org.freedesktop.DBus",
                                            "org.freedesktop.DBus",
                                            "NameOwnerChanged",
                                            "/org/freedesktop/DBus",
                                            NULL,
                                            G_DBUS_SIGNAL_FLAGS_NONE,
                                            name_owner_changed_cb,
                                            self, NULL);
    }
  return self;
}

/**
 * bp_host_get_connection:
 * @self: a #BpHost
 *
 * Returns the bus connection the host serves on.
 *
 * Returns: (transfer none) (nullable): the bus connection, %NULL when the
 *   host was created without one (unit tests)
 */
GDBusConnection *
bp_host_get_connection (BpHost *self)
{
  g_return_val_if_fail (BP_IS_HOST (self), NULL);
  return self->connection;
}

/**
 * bp_host_get_clock:
 * @self: a #BpHost
 *
 * Returns the clock backends use for time, timers and random jitter, so
 * that tests can run them on a manual clock.
 *
 * Returns: (transfer none): the clock
 */
BpClock *
bp_host_get_clock (BpHost *self)
{
  g_return_val_if_fail (BP_IS_HOST (self), NULL);
  return self->clock;
}

/**
 * bp_host_get_shutdown_cancellable:
 * @self: a #BpHost
 *
 * Returns the cancellable that [method@Bp.Host.shutdown] cancels: when the
 * daemon's drain ends (every call answered, or the grace period ran out),
 * just before the backends are stopped. The cancellable of every
 * [class@Bp.Call] is already chained to it; chain it yourself to
 * long-lived work that belongs to no call (a listener, a replay). Its
 * handlers run on the host's main context.
 *
 * Returns: (transfer none): the shutdown cancellable
 */
GCancellable *
bp_host_get_shutdown_cancellable (BpHost *self)
{
  g_return_val_if_fail (BP_IS_HOST (self), NULL);
  return self->shutdown;
}

/**
 * bp_host_shutdown:
 * @self: a #BpHost
 *
 * Marks the host as shutting down and cancels its shutdown cancellable,
 * and with it the cancellable of every [class@Bp.Call] in flight (calls
 * created afterwards start cancelled). The daemon calls this once when
 * draining ends, before it stops the backends; backends do not call it.
 * Calling it again has no further effect.
 */
void
bp_host_shutdown (BpHost *self)
{
  g_return_if_fail (BP_IS_HOST (self));

  self->shutting_down = TRUE;
  g_cancellable_cancel (self->shutdown);
}

/**
 * bp_host_is_shutting_down:
 * @self: a #BpHost
 *
 * Tells whether [method@Bp.Host.shutdown] was called. While the daemon is
 * only draining (new calls refused, calls in flight still running) this is
 * still %FALSE.
 *
 * Returns: %TRUE once the host has shut down
 */
gboolean
bp_host_is_shutting_down (BpHost *self)
{
  g_return_val_if_fail (BP_IS_HOST (self), TRUE);
  return self->shutting_down;
}

/**
 * bp_host_watch_owner:
 * @self: a #BpHost
 * @unique_name: a unique bus name (`:1.42`); a well-known name never fires
 * @func: (scope notified): called once when @unique_name disconnects
 * @user_data: data for @func
 * @notify: (nullable): frees @user_data after @func ran or on unwatch
 *
 * Runs @func on the host's main context when the client @unique_name
 * leaves the bus. A watch fires at most once and is then removed, @notify
 * running right after @func. All watches share the host's single
 * `NameOwnerChanged` subscription, so a watch is cheap. @func may add and
 * remove watches, also other watches of the same name.
 *
 * A client that left before the watch was added is not reported: add the
 * watch from the method handler that received the client's call, before
 * returning to the main loop, or check `NameHasOwner` afterwards as
 * [class@Bp.Subscription] does. A host without a connection never fires.
 *
 * Returns: a watch id for [method@Bp.Host.unwatch_owner], never 0
 */
guint
bp_host_watch_owner (BpHost              *self,
                     const char          *unique_name,
                     BpOwnerVanishedFunc  func,
                     gpointer             user_data,
                     GDestroyNotify       notify)
{
  Watch *w;
  GPtrArray *list;

  g_return_val_if_fail (BP_IS_HOST (self), 0);
  g_return_val_if_fail (unique_name != NULL, 0);
  g_return_val_if_fail (func != NULL, 0);

  w = g_new0 (Watch, 1);
  /* Ids wrap after 2^32 watches; skip the ones still live, so a new watch
   * never replaces (and frees) one that is still listed by name. */
  do
    {
      w->id = self->next_watch_id++;
      if (self->next_watch_id == 0)
        self->next_watch_id = 1;
    }
  while (g_hash_table_contains (self->watches_by_id, GUINT_TO_POINTER (w->id)));
  w->name = g_strdup (unique_name);
  w->func = func;
  w->user_data = user_data;
  w->notify = notify;
  g_hash_table_insert (self->watches_by_id, GUINT_TO_POINTER (w->id), w);
  list = g_hash_table_lookup (self->watches_by_name, unique_name);
  if (list == NULL)
    {
      list = g_ptr_array_new ();
      g_hash_table_insert (self->watches_by_name, g_strdup (unique_name), list);
    }
  g_ptr_array_add (list, w);
  return w->id;
}

/**
 * bp_host_unwatch_owner:
 * @self: a #BpHost
 * @watch_id: an id from bp_host_watch_owner(); 0 and ids that already fired
 *   or were removed are ignored
 *
 * Removes a watch that has not fired yet; its @notify runs now. May be
 * called from any watch callback.
 */
void
bp_host_unwatch_owner (BpHost *self,
                       guint   watch_id)
{
  Watch *w;
  GPtrArray *list;

  g_return_if_fail (BP_IS_HOST (self));

  if (watch_id == 0)
    return;
  w = g_hash_table_lookup (self->watches_by_id, GUINT_TO_POINTER (watch_id));
  if (w == NULL)
    return;
  list = g_hash_table_lookup (self->watches_by_name, w->name);
  if (list != NULL)
    {
      g_ptr_array_remove_fast (list, w);
      if (list->len == 0)
        g_hash_table_remove (self->watches_by_name, w->name);
    }
  g_hash_table_remove (self->watches_by_id, GUINT_TO_POINTER (watch_id));
}

/**
 * bp_host_get_n_watches:
 * @self: a #BpHost
 *
 * Counts the owner watches that have neither fired nor been removed. Tests
 * assert that it returns to its baseline, i.e. that no watch leaks.
 *
 * Returns: the number of live owner watches
 */
guint
bp_host_get_n_watches (BpHost *self)
{
  g_return_val_if_fail (BP_IS_HOST (self), 0);
  return g_hash_table_size (self->watches_by_id);
}

void
bp_host_set_next_watch_id (BpHost *self,
                           guint   next_id)
{
  g_return_if_fail (BP_IS_HOST (self));
  g_return_if_fail (next_id != 0);

  self->next_watch_id = next_id;
}

/**
 * bp_host_get_last_call:
 * @self: a #BpHost
 *
 * Describes the method call begun last with [ctor@Bp.Call.new], whether
 * or not it is still in flight, for the daemon's stall reports. The text
 * is cut at 159 bytes.
 *
 * Returns: (transfer none) (nullable): `Interface.Method on /path` of the
 *   call begun last, %NULL before the first; valid until the next call
 *   begins
 */
const char *
bp_host_get_last_call (BpHost *self)
{
  g_return_val_if_fail (BP_IS_HOST (self), NULL);
  return self->last_call[0] ? self->last_call : NULL;
}

/**
 * bp_host_get_n_calls:
 * @self: a #BpHost
 *
 * Counts the calls created with [ctor@Bp.Call.new] and not answered yet;
 * the value of [property@Bp.Host:n-calls]. On shutdown the daemon drains
 * until it reaches 0 or the grace period ends.
 *
 * Returns: the number of calls in flight
 */
guint
bp_host_get_n_calls (BpHost *self)
{
  g_return_val_if_fail (BP_IS_HOST (self), 0);
  return self->n_calls;
}

/* Called by BpCall. */
void _bp_host_call_begin (BpHost *self, GDBusMethodInvocation *invocation);
void _bp_host_call_end (BpHost *self);

void
_bp_host_call_begin (BpHost                *self,
                     GDBusMethodInvocation *invocation)
{
  g_snprintf (self->last_call, sizeof self->last_call, "%s.%s on %s",
              g_dbus_method_invocation_get_interface_name (invocation),
              g_dbus_method_invocation_get_method_name (invocation),
              g_dbus_method_invocation_get_object_path (invocation));
  self->n_calls++;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_CALLS]);
}

void
_bp_host_call_end (BpHost *self)
{
  g_return_if_fail (self->n_calls > 0);
  self->n_calls--;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_N_CALLS]);
}

/**
 * bp_host_make_client_path:
 * @self: a #BpHost
 * @unique_name: the owner's unique bus name
 * @kind: a short word of ASCII letters, digits and `_` (`process`,
 *   `transaction`, `subscription`); it is not checked
 *
 * Builds the object path of a new per-client object. @unique_name is
 * escaped with g_dbus_escape_object_path() and @kind gets a number that
 * this host never hands out again. The path is not exported: export the
 * object with [method@Bp.Host.export] (or register it and call
 * [method@Bp.Host.note_exported]), guard its methods with
 * [func@Bp.Host.check_owner] and release it when
 * [method@Bp.Host.watch_owner] reports that the owner left.
 *
 * Returns: (transfer full): a fresh path
 *   `/org/backplane/Backplane1/client/ESCAPED-NAME/KINDN`, for example
 *   `/org/backplane/Backplane1/client/_3a1_2e42/subscription7`
 */
char *
bp_host_make_client_path (BpHost     *self,
                          const char *unique_name,
                          const char *kind)
{
  g_autofree char *escaped = NULL;

  g_return_val_if_fail (BP_IS_HOST (self), NULL);
  g_return_val_if_fail (unique_name != NULL, NULL);
  g_return_val_if_fail (kind != NULL, NULL);

  escaped = g_dbus_escape_object_path (unique_name);
  return g_strdup_printf (BP_ROOT_PATH "/client/%s/%s%" G_GUINT64_FORMAT,
                          escaped, kind, self->next_token++);
}

/**
 * bp_host_check_owner:
 * @invocation: (transfer full): a method call on a per-client object
 * @owner: (nullable): the unique bus name of the object's owner; %NULL
 *   refuses every caller
 *
 * Lets only the owner call a per-client object's methods. When the sender
 * of @invocation is @owner, returns %TRUE and leaves @invocation alone: the
 * handler still owns it and answers it. Otherwise completes @invocation
 * with `org.backplane.Backplane1.Error.PermissionDenied`, which consumes
 * the handler's reference, and returns %FALSE: the handler then returns
 * without touching @invocation again. A call without a sender (a
 * peer-to-peer connection) is always refused.
 *
 * Returns: %TRUE when the caller owns the object
 */
gboolean
bp_host_check_owner (GDBusMethodInvocation *invocation,
                     const char            *owner)
{
  const char *sender = g_dbus_method_invocation_get_sender (invocation);

  if (sender != NULL && owner != NULL && g_str_equal (sender, owner))
    return TRUE;
  g_dbus_method_invocation_return_dbus_error (invocation,
                                              "org.backplane.Backplane1.Error.PermissionDenied",
                                              "This object belongs to another client");
  return FALSE;
}

/**
 * bp_host_add_interface_xml:
 * @self: a #BpHost
 * @xml: a D-Bus introspection document (`<node>`) with one or more
 *   interfaces, typically the reviewed XML from data/ with its
 *   `org.gtk.GDBus.DocString` annotations
 * @error: return location for a #GError
 *
 * Remembers the full XML, doc annotations included, of each interface in
 * @xml. `Introspect` on every path that exports one of them
 * ([method@Bp.Host.export], [method@Bp.Host.note_exported]) returns it, so
 * that d-feet and `busctl introspect` show the documentation that
 * gdbus-codegen drops. A later document replaces the XML of an interface
 * of the same name; an exported interface without XML is listed as an
 * empty `<interface>`.
 *
 * Returns: %TRUE on success; %FALSE with a %G_MARKUP_ERROR when @xml is
 *   not a valid introspection document
 */
gboolean
bp_host_add_interface_xml (BpHost      *self,
                           const char  *xml,
                           GError     **error)
{
  g_autoptr(GDBusNodeInfo) info = NULL;

  g_return_val_if_fail (BP_IS_HOST (self), FALSE);

  info = g_dbus_node_info_new_for_xml (xml, error);
  if (info == NULL)
    return FALSE;
  for (guint i = 0; info->interfaces[i] != NULL; i++)
    {
      GString *s = g_string_new (NULL);

      g_dbus_interface_info_generate_xml (info->interfaces[i], 1, s);
      g_hash_table_insert (self->interface_xml, g_strdup (info->interfaces[i]->name),
                           g_string_free (s, FALSE));
    }
  return TRUE;
}

static void
introspect_method_call (GDBusConnection       *connection,
                        const char            *sender,
                        const char            *object_path,
                        const char            *interface_name,
                        const char            *method_name,
                        GVariant              *parameters,
                        GDBusMethodInvocation *invocation,
                        gpointer               user_data)
{
  BpHost *self = user_data;
  g_autofree char *xml = bp_host_introspect (self, object_path);

  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(s)", xml));
}

static const GDBusInterfaceVTable introspect_vtable = {
  introspect_method_call, NULL, NULL, { 0 }
};

/**
 * bp_host_note_exported:
 * @self: a #BpHost
 * @object_path: the object path
 * @interface_name: the D-Bus interface exported there
 *
 * Records that @interface_name is exported at @object_path by other means
 * (g_dbus_connection_register_object(), a #GDBusObjectManagerServer), so
 * that `Introspect` on @object_path lists it with its documentation and
 * the parent paths list @object_path as a child node. The first interface
 * noted on a path also registers `org.freedesktop.DBus.Introspectable`
 * there. Noting the same interface twice has no effect. Undo it with
 * [method@Bp.Host.note_unexported].
 */
void
bp_host_note_exported (BpHost     *self,
                       const char *object_path,
                       const char *interface_name)
{
  PathEntry *e;

  g_return_if_fail (BP_IS_HOST (self));
  g_return_if_fail (g_variant_is_object_path (object_path));

  e = g_hash_table_lookup (self->paths, object_path);
  if (e == NULL)
    {
      e = g_new0 (PathEntry, 1);
      e->interfaces = g_ptr_array_new_with_free_func (g_free);
      g_hash_table_insert (self->paths, g_strdup (object_path), e);
      if (self->connection != NULL)
        {
          g_autoptr(GError) error = NULL;

          e->registration_id =
            g_dbus_connection_register_object (self->connection, object_path,
                                               g_dbus_node_info_lookup_interface (self->introspectable_info,
                                                                                  "org.freedesktop.DBus.Introspectable"),
                                               &introspect_vtable, self, NULL, &error);
          if (e->registration_id == 0)
            g_debug ("no documented introspection at %s: %s", object_path, error->message);
        }
    }
  if (!g_ptr_array_find_with_equal_func (e->interfaces, interface_name, g_str_equal, NULL))
    g_ptr_array_add (e->interfaces, g_strdup (interface_name));
}

/**
 * bp_host_note_unexported:
 * @self: a #BpHost
 * @object_path: the object path
 * @interface_name: the D-Bus interface no longer exported there
 *
 * Undoes [method@Bp.Host.note_exported]. When @interface_name was the last
 * interface noted at @object_path, the host also unregisters its
 * `Introspectable` handler there. Unknown paths and interfaces are ignored.
 */
void
bp_host_note_unexported (BpHost     *self,
                         const char *object_path,
                         const char *interface_name)
{
  PathEntry *e;
  guint idx;

  g_return_if_fail (BP_IS_HOST (self));

  e = g_hash_table_lookup (self->paths, object_path);
  if (e == NULL)
    return;
  if (g_ptr_array_find_with_equal_func (e->interfaces, interface_name, g_str_equal, &idx))
    g_ptr_array_remove_index (e->interfaces, idx);
  if (e->interfaces->len == 0)
    {
      if (e->registration_id != 0 && self->connection != NULL)
        g_dbus_connection_unregister_object (self->connection, e->registration_id);
      g_hash_table_remove (self->paths, object_path);
    }
}

/**
 * bp_host_export:
 * @self: a #BpHost
 * @skeleton: an interface skeleton
 * @object_path: where to export it
 * @error: return location for a #GError
 *
 * Exports @skeleton at @object_path on the host's connection with
 * g_dbus_interface_skeleton_export() and notes it for documented
 * introspection ([method@Bp.Host.note_exported]). Without a connection it
 * does nothing and returns %TRUE, so backends run unchanged in unit tests.
 * Undo it with [method@Bp.Host.unexport].
 *
 * Returns: %TRUE on success; %FALSE with the error of
 *   g_dbus_interface_skeleton_export(), e.g. %G_IO_ERROR_EXISTS when the
 *   interface is already exported at @object_path
 */
gboolean
bp_host_export (BpHost                 *self,
                GDBusInterfaceSkeleton *skeleton,
                const char             *object_path,
                GError                **error)
{
  g_return_val_if_fail (BP_IS_HOST (self), FALSE);
  g_return_val_if_fail (G_IS_DBUS_INTERFACE_SKELETON (skeleton), FALSE);

  if (self->connection == NULL)
    return TRUE;
  if (!g_dbus_interface_skeleton_export (skeleton, self->connection, object_path, error))
    return FALSE;
  bp_host_note_exported (self, object_path, g_dbus_interface_skeleton_get_info (skeleton)->name);
  return TRUE;
}

/**
 * bp_host_unexport:
 * @self: a #BpHost
 * @skeleton: a skeleton exported with bp_host_export()
 *
 * Unexports @skeleton (from every connection it is exported on) and drops
 * it from the introspection data of its path. Does nothing when @skeleton
 * is not exported.
 */
void
bp_host_unexport (BpHost                 *self,
                  GDBusInterfaceSkeleton *skeleton)
{
  g_autofree char *path = NULL;

  g_return_if_fail (BP_IS_HOST (self));
  g_return_if_fail (G_IS_DBUS_INTERFACE_SKELETON (skeleton));

  path = g_strdup (g_dbus_interface_skeleton_get_object_path (skeleton));
  if (path == NULL)
    return;
  g_dbus_interface_skeleton_unexport (skeleton);
  bp_host_note_unexported (self, path, g_dbus_interface_skeleton_get_info (skeleton)->name);
}

static void
add_child (GPtrArray  *children,
           const char *object_path,
           const char *path)
{
  size_t plen = strlen (object_path);
  const char *rest;
  const char *slash;
  char *child;

  if (g_str_equal (object_path, "/"))
    rest = path + 1;
  else if (strncmp (path, object_path, plen) == 0 && path[plen] == '/')
    rest = path + plen + 1;
  else
    return;
  if (*rest == '\0')
    return;
  slash = strchr (rest, '/');
  child = slash ? g_strndup (rest, slash - rest) : g_strdup (rest);
  if (g_ptr_array_find_with_equal_func (children, child, g_str_equal, NULL))
    g_free (child);
  else
    g_ptr_array_add (children, child);
}

/**
 * bp_host_set_dead_letters:
 * @self: a #BpHost
 * @dead_letters: (nullable): the daemon's dead-letter store
 *
 * Makes @dead_letters the store that backends get from
 * [method@Bp.Host.get_dead_letters]; the host keeps a reference. The
 * daemon sets it once the store is open and sets %NULL before closing it.
 */
void
bp_host_set_dead_letters (BpHost        *self,
                          BpDeadLetters *dead_letters)
{
  g_return_if_fail (BP_IS_HOST (self));
  g_set_object (&self->dead_letters, dead_letters);
}

/**
 * bp_host_get_dead_letters:
 * @self: a #BpHost
 *
 * Returns the daemon's dead-letter store, where backends park failed
 * idempotent operations for a later replay. Look it up when needed rather
 * than keeping it: it comes and goes with the daemon's start and stop.
 *
 * Returns: (transfer none) (nullable): the dead-letter store, %NULL while
 *   none is open
 */
BpDeadLetters *
bp_host_get_dead_letters (BpHost *self)
{
  g_return_val_if_fail (BP_IS_HOST (self), NULL);
  return self->dead_letters;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/**
 * bp_host_introspect:
 * @self: a #BpHost
 * @object_path: an object path
 *
 * Builds the `org.freedesktop.DBus.Introspectable.Introspect` reply for
 * @object_path, with the standard `Introspectable`, `Peer` and `Properties`
 * interfaces, the full XML of every interface noted there (see
 * [method@Bp.Host.add_interface_xml]) and a `<node>` for each child path
 * that leads to an exported path. A path with nothing exported gets only
 * its child nodes. The host answers `Introspect` with this itself; call it
 * from tests or diagnostics.
 *
 * Returns: (transfer full): the introspection XML of @object_path
 */
char *
bp_host_introspect (BpHost     *self,
                    const char *object_path)
{
  g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func (g_free);
  GString *s = g_string_new (INTROSPECT_DOCTYPE);
  PathEntry *e;
  GHashTableIter iter;
  const char *path;
  static const char * const standard[] = {
    "org.freedesktop.DBus.Introspectable",
    "org.freedesktop.DBus.Peer",
    "org.freedesktop.DBus.Properties",
  };

  g_return_val_if_fail (BP_IS_HOST (self), NULL);

  g_string_append (s, "<node>\n");
  e = g_hash_table_lookup (self->paths, object_path);
  if (e != NULL)
    {
      for (guint i = 0; i < G_N_ELEMENTS (standard); i++)
        g_string_append (s, g_hash_table_lookup (self->interface_xml, standard[i]));
      for (guint i = 0; i < e->interfaces->len; i++)
        {
          const char *name = g_ptr_array_index (e->interfaces, i);
          const char *xml = g_hash_table_lookup (self->interface_xml, name);

          if (xml != NULL)
            g_string_append (s, xml);
          else
            g_string_append_printf (s, "  <interface name=\"%s\"/>\n", name);
        }
    }
  g_hash_table_iter_init (&iter, self->paths);
  while (g_hash_table_iter_next (&iter, (gpointer *) &path, NULL))
    add_child (children, object_path, path);
  g_ptr_array_sort (children, compare_strings);
  for (guint i = 0; i < children->len; i++)
    g_string_append_printf (s, "  <node name=\"%s\"/>\n", (char *) g_ptr_array_index (children, i));
  g_string_append (s, "</node>\n");
  return g_string_free (s, FALSE);
}
