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

#include "bp-host.h"

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
 * @connection: (nullable): the bus connection; %NULL for unit tests
 * @clock: (nullable): the clock; %NULL for the default one
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
 * Returns: (transfer none) (nullable): the bus connection
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
 * Returns: (transfer none): a cancellable that fires when the daemon's
 *   grace period ends (in-flight work is then cancelled)
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
 * Cancels every tracked call; called by the daemon when draining ends.
 */
void
bp_host_shutdown (BpHost *self)
{
  g_return_if_fail (BP_IS_HOST (self));

  self->shutting_down = TRUE;
  g_cancellable_cancel (self->shutdown);
}

gboolean
bp_host_is_shutting_down (BpHost *self)
{
  g_return_val_if_fail (BP_IS_HOST (self), TRUE);
  return self->shutting_down;
}

/**
 * bp_host_watch_owner:
 * @self: a #BpHost
 * @unique_name: a unique bus name (`:1.42`)
 * @func: called once when @unique_name disconnects
 * @user_data: data for @func
 * @notify: (nullable): frees @user_data after @func ran or on unwatch
 *
 * Returns: a watch id for bp_host_unwatch_owner(), never 0
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
  w->id = self->next_watch_id++;
  if (self->next_watch_id == 0)
    self->next_watch_id = 1;
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
 *   are ignored
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
 * Returns: live owner watches (tests assert it returns to its baseline)
 */
guint
bp_host_get_n_watches (BpHost *self)
{
  g_return_val_if_fail (BP_IS_HOST (self), 0);
  return g_hash_table_size (self->watches_by_id);
}

/**
 * bp_host_get_last_call:
 * @self: a #BpHost
 *
 * Returns: (transfer none): `Interface.Method on /path` of the call begun
 *   last, for stall reports
 */
const char *
bp_host_get_last_call (BpHost *self)
{
  g_return_val_if_fail (BP_IS_HOST (self), NULL);
  return self->last_call[0] ? self->last_call : NULL;
}

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
 * @kind: a short word (`process`, `transaction`, `subscription`)
 *
 * Returns: (transfer full): a fresh path
 *   `/org/backplane/Backplane1/client/ESCAPED-NAME/KINDN`
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
 * @owner: the object's owner
 *
 * When the sender is not @owner, completes @invocation with
 * `PermissionDenied` and returns %FALSE; otherwise returns %TRUE and leaves
 * @invocation alone (the caller still owns it).
 *
 * Returns: whether the caller owns the object
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
 * @xml: a D-Bus introspection document with one or more interfaces
 * @error: return location for a #GError
 *
 * Remembers the full XML (with its doc annotations) of each interface in
 * @xml, served on Introspect of every path that exports it.
 *
 * Returns: %TRUE on success
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
 * @object_path: where
 * @interface_name: what
 *
 * Records that @interface_name is exported at @object_path by someone else
 * (e.g. a #GDBusObjectManagerServer), for introspection.
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
 * Exports @skeleton on the host's connection with documented introspection.
 *
 * Returns: %TRUE on success
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
 * Returns: (transfer none) (nullable): the dead-letter store, %NULL while
 *   it is not open
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
 * @object_path: a path
 *
 * Returns: (transfer full): the introspection XML of @object_path, with
 *   the documentation of every interface and the child nodes
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
