/* bp-daemon.c: backplaned — bus name, Manager, backends, lifecycle
 *
 * Start-up: read the configuration (a broken file is fatal and says why),
 * connect to the bus, find the plugins, export the root (ObjectManager +
 * Manager), create every configured backend (configure() synchronously,
 * export its object, start_async()), and own org.backplane.Backplane1 once
 * every backend has started or failed visibly — or start-timeout-ms passed,
 * so one slow server never keeps the bus name away.
 *
 * Shutdown (SIGTERM/SIGINT): release the name, refuse new calls on backend
 * interfaces, wait for in-flight calls up to grace-period-ms, then cancel
 * what is left (BpHost's shutdown cancellable), stop every backend (they roll
 * back transactions and close pools) and leave the loop with status 0.
 *
 * Reload (SIGHUP or Manager.Reload): diff the new configuration against the
 * running set by group content; removed and changed backends are stopped
 * and unexported, new and changed ones created. Untouched backends keep
 * serving throughout.
 *
 * Everything here runs on the main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>

#include "bp-config.h"
#include "bp-daemon.h"
#include "bp-daemon-dbus.h"
#include "bp-dead-letters-service.h"
#include "bp-data-resources.h"
#include "bp-failed-backend.h"
#include "bp-loop-monitor.h"
#include "bp-metrics-text.h"

#define BP_BUS_NAME   "org.backplane.Backplane1"
#define BP_ROOT_PATH  "/org/backplane/Backplane1"
#define BP_API_VERSION 1
#define STATS_REFRESH_US (250 * 1000)

typedef struct
{
  BpDaemon            *daemon;        /* (unowned) */
  char                *name;          /* (owned) */
  char                *digest;        /* (owned) */
  BpBackend           *backend;       /* (owned) */
  BpDBusBackend       *iface;         /* (owned) */
  GDBusObjectSkeleton *object;        /* (owned) */
  GCancellable        *cancellable;   /* (owned): start */
  gboolean             start_pending;
} BackendEntry;

struct _BpDaemon
{
  GObject                    parent_instance;

  char                      *config_path;     /* (owned) (nullable) */
  char                      *address;         /* (owned) (nullable) */
  gboolean                   replace;

  GMainLoop                 *loop;            /* (owned) */
  GDBusConnection           *connection;      /* (owned) */
  BpHost                    *host;            /* (owned) */
  BpConfig                  *config;          /* (owned) */
  GPtrArray                 *plugins;         /* (owned) (element-type BpPlugin) */
  GDBusObjectManagerServer  *object_manager;  /* (owned) */
  BpDBusManager             *manager;         /* (owned) */
  GPtrArray                 *backends;        /* (owned) (element-type BackendEntry) in config order */
  BpDeadLetters             *dead_letters;    /* (owned) (nullable) */
  BpDeadLettersService      *dl_service;      /* (owned) (nullable) */
  gboolean                   dl_pending;

  guint                      own_name_id;
  guint                      start_timeout_id;
  guint                      grace_timeout_id;
  guint                      stats_timeout_id;
  guint                      drained_idle_id;
  guint                      quit_timeout_id;
  gboolean                   backends_stopped;
  guint                      signal_ids[4];
  guint                      pending_stops;
  int                        exit_status;
  gboolean                   name_owned;
  gint                       draining;  /* atomic: read by the authorize handler on a GDBus worker thread */
  gboolean                   stopping;
};

G_DEFINE_FINAL_TYPE (BpDaemon, bp_daemon, G_TYPE_OBJECT)

static void backend_entry_free (BackendEntry *entry);
static void bp_daemon_begin_shutdown (BpDaemon *self);
static void bp_daemon_refresh_stats (BpDaemon *self);

static void
bp_daemon_finalize (GObject *object)
{
  BpDaemon *self = BP_DAEMON (object);

  g_clear_object (&self->dl_service);
  g_clear_object (&self->dead_letters);
  g_clear_pointer (&self->backends, g_ptr_array_unref);
  g_clear_object (&self->manager);
  g_clear_object (&self->object_manager);
  g_clear_pointer (&self->plugins, g_ptr_array_unref);
  g_clear_pointer (&self->config, bp_config_free);
  g_clear_object (&self->host);
  g_clear_object (&self->connection);
  g_clear_pointer (&self->loop, g_main_loop_unref);
  g_clear_pointer (&self->config_path, g_free);
  g_clear_pointer (&self->address, g_free);

  G_OBJECT_CLASS (bp_daemon_parent_class)->finalize (object);
}

static void
bp_daemon_class_init (BpDaemonClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bp_daemon_finalize;
}

static void
bp_daemon_init (BpDaemon *self)
{
  self->backends = g_ptr_array_new_with_free_func ((GDestroyNotify) backend_entry_free);
  self->loop = g_main_loop_new (NULL, FALSE);
}

BpDaemon *
bp_daemon_new (const char *config_path,
               const char *address,
               gboolean    replace)
{
  BpDaemon *self = g_object_new (BP_TYPE_DAEMON, NULL);

  self->config_path = g_strdup (config_path);
  self->address = g_strdup (address);
  self->replace = replace;
  return self;
}

/* ------------------------------------------------------------------ */
/* Manager properties                                                  */

static void
update_backends_property (BpDaemon *self)
{
  g_autoptr(GPtrArray) paths = g_ptr_array_new_null_terminated (self->backends->len, NULL, TRUE);

  for (guint i = 0; i < self->backends->len; i++)
    {
      BackendEntry *e = g_ptr_array_index (self->backends, i);
      g_ptr_array_add (paths, (gpointer) bp_backend_get_object_path (e->backend));
    }
  bp_dbus_manager_set_backends (self->manager, (const char * const *) paths->pdata);
}

static void
update_plugins_property (BpDaemon *self)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a{sa{sv}}"));
  for (guint i = 0; i < self->plugins->len; i++)
    {
      BpPlugin *p = g_ptr_array_index (self->plugins, i);
      g_variant_builder_add (&b, "{s@a{sv}}", bp_plugin_get_id (p), bp_plugin_to_variant (p));
    }
  bp_dbus_manager_set_plugins (self->manager, g_variant_builder_end (&b));
}

static gboolean
loop_lag_changed_cb (gpointer user_data)
{
  BpDaemon *self = user_data;
  g_autoptr(GVariant) stats = bp_loop_monitor_dup_stats ();

  if (self->manager != NULL)
    bp_dbus_manager_set_loop_lag (self->manager, stats);
  return G_SOURCE_REMOVE;
}

static const char *
loop_label_cb (gpointer user_data)
{
  BpDaemon *self = user_data;

  return self->host != NULL ? bp_host_get_last_call (self->host) : NULL;
}

/* ------------------------------------------------------------------ */
/* Backends                                                            */

static void
backend_entry_free (BackendEntry *e)
{
  if (e->cancellable != NULL)
    g_cancellable_cancel (e->cancellable);
  g_clear_object (&e->cancellable);
  if (e->backend != NULL)
    {
      g_signal_handlers_disconnect_by_data (e->backend, e);
      g_signal_handlers_disconnect_by_data (bp_backend_get_breaker (e->backend), e);
    }
  g_clear_object (&e->object);
  g_clear_object (&e->iface);
  g_clear_object (&e->backend);
  g_free (e->name);
  g_free (e->digest);
  g_free (e);
}

static void
sync_backend_properties (BackendEntry *e)
{
  g_autoptr(GVariant) latency = bp_backend_dup_latency (e->backend);
  g_autoptr(GVariant) pool = bp_backend_dup_pool_stats (e->backend);
  g_autoptr(GVariant) breaker = bp_backend_dup_breaker_stats (e->backend);

  bp_dbus_backend_set_state (e->iface, bp_backend_state_to_string (bp_backend_get_state (e->backend)));
  bp_dbus_backend_set_state_reason (e->iface, bp_backend_get_state_reason (e->backend));
  bp_dbus_backend_set_latency (e->iface, latency);
  bp_dbus_backend_set_pool (e->iface, pool);
  bp_dbus_backend_set_breaker (e->iface, breaker);
}

static void
backend_state_notify_cb (BpBackend  *backend,
                         GParamSpec *pspec,
                         gpointer    user_data)
{
  BackendEntry *e = user_data;
  BpBackendState state = bp_backend_get_state (backend);

  if (g_str_equal (pspec->name, "state"))
    g_message (_("backend %s is %s%s%s"), e->name, bp_backend_state_to_string (state),
               bp_backend_get_state_reason (backend)[0] ? ": " : "",
               bp_backend_get_state_reason (backend));
  sync_backend_properties (e);
}

static const char *
breaker_state_nick (BpBreakerState state)
{
  GEnumClass *klass = g_type_class_ref (BP_TYPE_BREAKER_STATE);
  GEnumValue *value = g_enum_get_value (klass, state);
  const char *nick = value != NULL ? value->value_nick : "unknown";

  g_type_class_unref (klass);
  return nick;
}

/* One log line per breaker transition (the breaker emits one signal per
 * transition), and the Breaker property follows at once. */
static void
breaker_state_changed_cb (BpBreaker      *breaker,
                          BpBreakerState  old_state,
                          BpBreakerState  new_state,
                          gpointer        user_data)
{
  BackendEntry *e = user_data;

  g_message (_("backend %s: circuit breaker %s → %s"), e->name,
             breaker_state_nick (old_state), breaker_state_nick (new_state));
  if (e->iface != NULL)
    sync_backend_properties (e);
}

static gboolean
refuse_while_draining_cb (GDBusInterfaceSkeleton *skeleton,
                          GDBusMethodInvocation  *invocation,
                          gpointer                user_data)
{
  BpDaemon *self = user_data;

  if (!g_atomic_int_get (&self->draining))
    return TRUE;
  g_dbus_method_invocation_return_dbus_error (invocation,
                                              "org.backplane.Backplane1.Error.Unavailable",
                                              _("backplaned is shutting down"));
  return FALSE;
}

static gboolean
handle_ping (BpDBusBackend         *iface,
             GDBusMethodInvocation *invocation,
             gpointer               user_data)
{
  bp_dbus_backend_complete_ping (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
check_health_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(BpCall) call = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *detail = NULL;
  gboolean healthy;

  healthy = bp_backend_check_health_finish (BP_BACKEND (source), result, &detail, &error);
  if (!healthy && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      bp_call_return_error (call, error);
      return;
    }
  bp_call_return_value (call, g_variant_new ("(bs)", healthy,
                                             healthy ? (detail ? detail : "") : error->message));
}

static gboolean
handle_check_health (BpDBusBackend         *iface,
                     GDBusMethodInvocation *invocation,
                     gpointer               user_data)
{
  BackendEntry *e = user_data;
  BpCall *call = bp_call_new (e->daemon->host, invocation);

  bp_backend_check_health_async (e->backend, bp_call_get_cancellable (call), check_health_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_reset_breaker (BpDBusBackend         *iface,
                      GDBusMethodInvocation *invocation,
                      gpointer               user_data)
{
  BackendEntry *e = user_data;

  bp_backend_reset_breaker (e->backend);
  sync_backend_properties (e);
  bp_dbus_backend_complete_reset_breaker (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
maybe_own_name (BpDaemon *self);

static void
backend_started_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  BackendEntry *e = user_data;
  BpBackend *backend = BP_BACKEND (source);
  g_autoptr(GError) error = NULL;

  if (!bp_backend_start_finish (backend, result, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return; /* the entry is gone or going */
      g_warning (_("backend %s failed to start: %s"), bp_backend_get_name (backend), error->message);
      bp_backend_set_state (backend, BP_BACKEND_STATE_UNAVAILABLE, error->message);
    }
  else if (bp_backend_get_state (backend) == BP_BACKEND_STATE_STARTING)
    bp_backend_set_state (backend, BP_BACKEND_STATE_READY, NULL);

  e->start_pending = FALSE;
  g_clear_object (&e->cancellable);
  maybe_own_name (e->daemon);
}

static BpPlugin *
find_plugin (BpDaemon   *self,
             const char *type)
{
  BpPlugin *found = NULL;

  for (guint i = 0; i < self->plugins->len; i++)
    {
      BpPlugin *p = g_ptr_array_index (self->plugins, i);

      if (!g_str_equal (bp_plugin_get_backend_type (p), type))
        continue;
      /* A plugin that lost a duplicate-type contest carries that error. */
      if (found == NULL || bp_plugin_get_error (found) != NULL)
        found = p;
    }
  return found;
}

static BpBackend *
create_backend (BpDaemon         *self,
                BpBackendConfig  *bc,
                GError          **error)
{
  g_autoptr(BpBackend) backend = NULL;
  g_autoptr(BpConfigSection) section = NULL;
  BpPlugin *plugin;
  const char * const *xml;

  if (bc->type == NULL || bc->type[0] == '\0')
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("[%s] type= is missing"), bc->group);
      return NULL;
    }
  plugin = find_plugin (self, bc->type);
  if (plugin == NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_NOT_FOUND,
                   _("[%s] unknown backend type “%s” (no plugin provides it)"), bc->group, bc->type);
      return NULL;
    }
  if (!bp_plugin_load (plugin, error))
    {
      g_warning (_("plugin %s failed to load: %s"), bp_plugin_get_id (plugin),
                 bp_plugin_get_error (plugin)->message);
      update_plugins_property (self);
      return NULL;
    }
  update_plugins_property (self);
  xml = bp_plugin_get_interface_xml (plugin);
  for (guint i = 0; xml != NULL && xml[i] != NULL; i++)
    if (!bp_host_add_interface_xml (self->host, xml[i], error))
      return NULL;

  backend = g_object_new (bp_plugin_get_backend_gtype (plugin),
                          "name", bc->name,
                          "type-name", bc->type,
                          "host", self->host,
                          NULL);
  section = bp_config_section_new (self->config->key_file, bc->group);
  if (!bp_backend_configure (backend, section, error))
    return NULL;
  return g_steal_pointer (&backend);
}

static void
export_backend (BpDaemon     *self,
                BackendEntry *e)
{
  GPtrArray *ifaces = bp_backend_get_interfaces (e->backend);
  const char *path = bp_backend_get_object_path (e->backend);

  e->iface = bp_dbus_backend_skeleton_new ();
  bp_dbus_backend_set_name (e->iface, e->name);
  bp_dbus_backend_set_type_ (e->iface, bp_backend_get_type_name (e->backend));
  sync_backend_properties (e);
  g_signal_connect (e->iface, "handle-ping", G_CALLBACK (handle_ping), e);
  g_signal_connect (e->iface, "handle-check-health", G_CALLBACK (handle_check_health), e);
  g_signal_connect (e->iface, "handle-reset-breaker", G_CALLBACK (handle_reset_breaker), e);
  g_signal_connect (e->backend, "notify::state", G_CALLBACK (backend_state_notify_cb), e);
  g_signal_connect (bp_backend_get_breaker (e->backend), "state-changed",
                    G_CALLBACK (breaker_state_changed_cb), e);
  g_signal_connect (e->backend, "notify::state-reason", G_CALLBACK (backend_state_notify_cb), e);

  e->object = g_dbus_object_skeleton_new (path);
  g_dbus_object_skeleton_add_interface (e->object, G_DBUS_INTERFACE_SKELETON (e->iface));
  bp_host_note_exported (self->host, path, "org.backplane.Backplane1.Backend");
  for (guint i = 0; i < ifaces->len; i++)
    {
      GDBusInterfaceSkeleton *skel = g_ptr_array_index (ifaces, i);

      g_dbus_object_skeleton_add_interface (e->object, skel);
      bp_host_note_exported (self->host, path, g_dbus_interface_skeleton_get_info (skel)->name);
    }
  g_dbus_object_manager_server_export (self->object_manager, e->object);
}

static void
unexport_backend (BpDaemon     *self,
                  BackendEntry *e)
{
  const char *path = bp_backend_get_object_path (e->backend);
  GPtrArray *ifaces = bp_backend_get_interfaces (e->backend);

  if (e->object == NULL)
    return;
  g_dbus_object_manager_server_unexport (self->object_manager, path);
  bp_host_note_unexported (self->host, path, "org.backplane.Backplane1.Backend");
  for (guint i = 0; i < ifaces->len; i++)
    bp_host_note_unexported (self->host, path,
                             g_dbus_interface_skeleton_get_info (g_ptr_array_index (ifaces, i))->name);
}

static BackendEntry *
add_backend (BpDaemon        *self,
             BpBackendConfig *bc)
{
  BackendEntry *e = g_new0 (BackendEntry, 1);
  g_autoptr(GError) error = NULL;

  e->daemon = self;
  e->name = g_strdup (bc->name);
  e->digest = g_strdup (bc->digest);
  e->backend = create_backend (self, bc, &error);
  if (e->backend == NULL)
    {
      g_warning (_("backend %s: %s"), bc->name, error->message);
      e->backend = bp_failed_backend_new (self->host, bc->name, bc->type, error);
    }
  g_ptr_array_add (self->backends, e);
  export_backend (self, e);

  if (!BP_IS_FAILED_BACKEND (e->backend))
    {
      if (self->dead_letters != NULL)
        bp_backend_attach_dead_letters (e->backend, self->dead_letters);
      e->cancellable = g_cancellable_new ();
      e->start_pending = TRUE;
      bp_backend_start_async (e->backend, e->cancellable, backend_started_cb, e);
    }
  return e;
}

/* ------------------------------------------------------------------ */
/* Stopping backends                                                   */

typedef struct
{
  BpDaemon     *daemon;   /* (owned) */
  BackendEntry *entry;    /* (owned) */
  GTask        *task;     /* (owned) (nullable): completes when all stopped */
} StopData;

static void
backend_stopped_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  StopData *data = user_data;
  g_autoptr(GError) error = NULL;

  if (!bp_backend_stop_finish (BP_BACKEND (source), result, &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_warning (_("backend %s did not stop cleanly: %s"), data->entry->name, error->message);
  backend_entry_free (data->entry);
  if (data->task != NULL)
    {
      guint *pending = g_task_get_task_data (data->task);

      if (--(*pending) == 0)
        g_task_return_boolean (data->task, TRUE);
      g_object_unref (data->task);
    }
  g_object_unref (data->daemon);
  g_free (data);
}

/* Takes @entries out of service: unexported at once, stopped asynchronously. */
static void
stop_backends_async (BpDaemon            *self,
                     GPtrArray           *entries,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, NULL, callback, user_data);
  guint *pending = g_new0 (guint, 1);

  g_task_set_source_tag (task, stop_backends_async);
  *pending = entries->len;
  g_task_set_task_data (task, pending, g_free);
  if (entries->len == 0)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  for (guint i = 0; i < entries->len; i++)
    {
      BackendEntry *e = g_ptr_array_index (entries, i);
      StopData *data = g_new0 (StopData, 1);

      unexport_backend (self, e);
      if (self->dead_letters != NULL && !BP_IS_FAILED_BACKEND (e->backend))
        bp_backend_detach_dead_letters (e->backend, self->dead_letters);
      if (e->cancellable != NULL)
        g_cancellable_cancel (e->cancellable);
      data->daemon = g_object_ref (self);
      data->entry = e;
      data->task = g_object_ref (task);
      bp_backend_stop_async (e->backend, NULL, backend_stopped_cb, data);
    }
}

/* ------------------------------------------------------------------ */
/* Bus name                                                            */

static void
name_acquired_cb (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  BpDaemon *self = user_data;

  self->name_owned = TRUE;
  g_message (_("owning %s on the bus (%s)"), name,
             self->config->source);
}

static void
name_lost_cb (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data)
{
  BpDaemon *self = user_data;

  if (self->stopping)
    return;
  if (!self->name_owned)
    {
      g_printerr (_("backplaned: %s is owned by another process (use --replace to take it over)\n"), name);
      self->exit_status = 1;
      g_main_loop_quit (self->loop);
      return;
    }
  g_message (_("lost %s to another process; shutting down"), name);
  self->name_owned = FALSE;
  bp_daemon_begin_shutdown (self);
}

static void
own_name (BpDaemon *self)
{
  GBusNameOwnerFlags flags = G_BUS_NAME_OWNER_FLAGS_ALLOW_REPLACEMENT | G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE;

  g_clear_handle_id (&self->start_timeout_id, g_source_remove);
  if (self->own_name_id != 0 || self->stopping)
    return;
  if (self->replace)
    flags |= G_BUS_NAME_OWNER_FLAGS_REPLACE;
  self->own_name_id = g_bus_own_name_on_connection (self->connection, BP_BUS_NAME, flags,
                                                    name_acquired_cb, name_lost_cb, self, NULL);
}

static void
maybe_own_name (BpDaemon *self)
{
  if (self->dl_pending)
    return;
  for (guint i = 0; i < self->backends->len; i++)
    if (((BackendEntry *) g_ptr_array_index (self->backends, i))->start_pending)
      return;
  own_name (self);
}

static gboolean
start_timeout_cb (gpointer user_data)
{
  BpDaemon *self = user_data;

  self->start_timeout_id = 0;
  g_message (_("some backends are still starting; taking the bus name now"));
  own_name (self);
  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------ */
/* Reload                                                              */

static BackendEntry *
find_entry (BpDaemon   *self,
            const char *name)
{
  for (guint i = 0; i < self->backends->len; i++)
    {
      BackendEntry *e = g_ptr_array_index (self->backends, i);
      if (g_str_equal (e->name, name))
        return e;
    }
  return NULL;
}

static BpBackendConfig *
find_backend_config (BpConfig   *config,
                     const char *name)
{
  for (guint i = 0; i < config->backends->len; i++)
    {
      BpBackendConfig *bc = g_ptr_array_index (config->backends, i);
      if (bc->enabled && g_str_equal (bc->name, name))
        return bc;
    }
  return NULL;
}

typedef struct
{
  BpDaemon              *daemon;      /* (owned) */
  BpConfig              *config;      /* (owned) */
  GDBusMethodInvocation *invocation;  /* (owned) (nullable) */
} ReloadData;

static void
reload_stopped_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  ReloadData *data = user_data;
  BpDaemon *self = data->daemon;
  BpConfig *old = self->config;
  guint added = 0;

  self->config = g_steal_pointer (&data->config);
  for (guint i = 0; i < self->config->backends->len; i++)
    {
      BpBackendConfig *bc = g_ptr_array_index (self->config->backends, i);

      if (bc->enabled && find_entry (self, bc->name) == NULL)
        {
          add_backend (self, bc);
          added++;
        }
    }
  update_backends_property (self);
  g_message (ngettext ("configuration reloaded from %s: %u backend started",
                       "configuration reloaded from %s: %u backends started", added),
             self->config->source, added);
  bp_config_free (old);
  if (data->invocation != NULL)
    g_dbus_method_invocation_return_value (g_steal_pointer (&data->invocation), NULL);
  g_object_unref (data->daemon);
  g_free (data);
}

static gboolean
bp_daemon_reload (BpDaemon               *self,
                  GDBusMethodInvocation  *invocation,
                  GError                **error)
{
  g_autoptr(BpConfig) config = NULL;
  g_autoptr(GPtrArray) to_stop = g_ptr_array_new ();
  ReloadData *data;

  if (self->stopping)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE, _("backplaned is shutting down"));
      return FALSE;
    }
  config = bp_config_load (self->config_path, error);
  if (config == NULL)
    return FALSE;

  for (guint i = 0; i < self->backends->len;)
    {
      BackendEntry *e = g_ptr_array_index (self->backends, i);
      BpBackendConfig *bc = find_backend_config (config, e->name);

      if (bc == NULL || !g_str_equal (bc->digest, e->digest))
        {
          g_ptr_array_add (to_stop, g_ptr_array_steal_index (self->backends, i));
          continue;
        }
      i++;
    }
  update_backends_property (self);
  data = g_new0 (ReloadData, 1);
  data->daemon = g_object_ref (self);
  data->config = g_steal_pointer (&config);
  data->invocation = invocation != NULL ? g_object_ref (invocation) : NULL;
  stop_backends_async (self, to_stop, reload_stopped_cb, data);
  return TRUE;
}

static gboolean
handle_reload (BpDBusManager         *manager,
               GDBusMethodInvocation *invocation,
               gpointer               user_data)
{
  BpDaemon *self = user_data;
  g_autoptr(GError) error = NULL;

  if (!bp_daemon_reload (self, invocation, &error))
    bp_invocation_return_error (invocation, error);
  else
    g_object_unref (invocation); /* reload_stopped_cb answers its own reference */
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
sighup_cb (gpointer user_data)
{
  BpDaemon *self = user_data;
  g_autoptr(GError) error = NULL;

  g_message (_("SIGHUP: reloading the configuration"));
  if (!bp_daemon_reload (self, NULL, &error))
    g_warning (_("reload failed, keeping the running configuration: %s"), error->message);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* Metrics                                                             */

static gboolean
handle_get_metrics (BpDBusManager         *manager,
                    GDBusMethodInvocation *invocation,
                    gpointer               user_data)
{
  BpDaemon *self = user_data;
  g_autoptr(BpMetricsText) m = bp_metrics_text_new ();
  g_autoptr(GVariant) lag = bp_loop_monitor_dup_stats ();
  g_autofree char *text = NULL;

  bp_metrics_text_add_vardict (m, "backplane_loop", "Main-loop busy time between polls", NULL, NULL, lag);
  bp_metrics_text_add (m, "backplane_calls_in_flight", "gauge", "D-Bus calls being served",
                       NULL, NULL, bp_host_get_n_calls (self->host));
  bp_metrics_text_add (m, "backplane_owner_watches", "gauge", "Clients watched for disconnection",
                       NULL, NULL, bp_host_get_n_watches (self->host));
  if (self->dead_letters != NULL)
    {
      bp_metrics_text_add (m, "backplane_dead_letters", "gauge", "Entries in the dead-letter queue",
                           NULL, NULL, bp_dead_letters_get_count (self->dead_letters));
      bp_metrics_text_add (m, "backplane_dead_letters_poisoned", "gauge", "Poisoned dead-letter entries",
                           NULL, NULL, bp_dead_letters_get_poisoned_count (self->dead_letters));
    }
  for (guint i = 0; i < self->backends->len; i++)
    {
      BackendEntry *e = g_ptr_array_index (self->backends, i);
      g_autoptr(GVariant) latency = bp_backend_dup_latency (e->backend);
      g_autoptr(GVariant) pool = bp_backend_dup_pool_stats (e->backend);
      g_autoptr(GVariant) breaker = bp_backend_dup_breaker_stats (e->backend);

      for (guint s = BP_BACKEND_STATE_STARTING; s <= BP_BACKEND_STATE_STOPPING; s++)
        bp_metrics_text_add2 (m, "backplane_backend_state", "gauge", "1 for the backend's current state",
                              "backend", e->name, "state", bp_backend_state_to_string (s),
                              bp_backend_get_state (e->backend) == s);
      bp_metrics_text_add_vardict (m, "backplane_backend_latency", "Operation latency", "backend", e->name, latency);
      bp_metrics_text_add_vardict (m, "backplane_backend_pool", "Connection pool", "backend", e->name, pool);
      bp_metrics_text_add_vardict (m, "backplane_backend_breaker", "Circuit breaker", "backend", e->name, breaker);
    }
  text = bp_metrics_text_finish (m);
  bp_dbus_manager_complete_get_metrics (manager, invocation, text);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Pool, Breaker and Latency properties are refreshed 250 ms after call
 * activity, at most that often, and never while the daemon is idle. */
static gboolean
stats_timeout_cb (gpointer user_data)
{
  BpDaemon *self = user_data;

  self->stats_timeout_id = 0;
  bp_daemon_refresh_stats (self);
  return G_SOURCE_REMOVE;
}

static void
bp_daemon_refresh_stats (BpDaemon *self)
{
  for (guint i = 0; i < self->backends->len; i++)
    sync_backend_properties (g_ptr_array_index (self->backends, i));
}

static void finish_draining (BpDaemon *self);
static void maybe_quit (BpDaemon *self);

static gboolean
drained_idle_cb (gpointer user_data)
{
  BpDaemon *self = user_data;

  self->drained_idle_id = 0;
  if (bp_host_get_n_calls (self->host) == 0)
    finish_draining (self);
  return G_SOURCE_REMOVE;
}

static void
n_calls_notify_cb (BpHost     *host,
                   GParamSpec *pspec,
                   gpointer    user_data)
{
  BpDaemon *self = user_data;

  if (self->stats_timeout_id == 0 && !self->stopping)
    self->stats_timeout_id = g_timeout_add_full (G_PRIORITY_LOW, STATS_REFRESH_US / 1000,
                                                 stats_timeout_cb, self, NULL);
  if (self->draining && bp_host_get_n_calls (host) == 0 && self->drained_idle_id == 0)
    self->drained_idle_id = g_idle_add (drained_idle_cb, self);
  if (self->backends_stopped && bp_host_get_n_calls (host) == 0)
    maybe_quit (self);
}

/* ------------------------------------------------------------------ */
/* Shutdown                                                            */

/* Cancelled calls still owe their callers a reply: leave the loop only once
 * every call was answered, or after a last second. */
static gboolean quit_timeout_cb (gpointer user_data);

static void
maybe_quit (BpDaemon *self)
{
  if (!self->backends_stopped)
    return;
  if (bp_host_get_n_calls (self->host) > 0 && self->quit_timeout_id != 0)
    return;
  if (bp_host_get_n_calls (self->host) > 0)
    {
      self->quit_timeout_id = g_timeout_add (1000, quit_timeout_cb, self);
      return;
    }
  g_clear_handle_id (&self->quit_timeout_id, g_source_remove);
  g_message (_("all backends stopped; exiting"));
  g_main_loop_quit (self->loop);
}

static gboolean
quit_timeout_cb (gpointer user_data)
{
  BpDaemon *self = user_data;

  self->quit_timeout_id = 0;
  g_message (ngettext ("%u call did not answer after cancellation; exiting anyway",
                       "%u calls did not answer after cancellation; exiting anyway",
                       bp_host_get_n_calls (self->host)),
             bp_host_get_n_calls (self->host));
  g_main_loop_quit (self->loop);
  return G_SOURCE_REMOVE;
}

static void
dead_letters_closed_cb (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  BpDaemon *self = user_data;
  g_autoptr(GError) error = NULL;

  if (!bp_dead_letters_close_finish (BP_DEAD_LETTERS (source), result, &error))
    g_warning (_("closing the dead-letter store: %s"), error->message);
  self->backends_stopped = TRUE;
  maybe_quit (self);
  g_object_unref (self);
}

static void
all_stopped_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  BpDaemon *self = BP_DAEMON (source);

  if (self->dead_letters != NULL)
    {
      if (self->dl_service != NULL)
        bp_dead_letters_service_unexport (self->dl_service);
      bp_host_set_dead_letters (self->host, NULL);
      bp_dead_letters_close_async (self->dead_letters, NULL, dead_letters_closed_cb, g_object_ref (self));
      return;
    }
  self->backends_stopped = TRUE;
  maybe_quit (self);
}

static void
stop_everything (BpDaemon *self)
{
  g_autoptr(GPtrArray) entries = g_ptr_array_new ();

  bp_host_shutdown (self->host);
  while (self->backends->len > 0)
    g_ptr_array_add (entries, g_ptr_array_steal_index (self->backends, 0));
  stop_backends_async (self, entries, all_stopped_cb, NULL);
}

/* Ends the drain: in-flight calls finished or the grace period ran out. */
static void
finish_draining (BpDaemon *self)
{
  if (!self->draining)
    return;
  g_atomic_int_set (&self->draining, FALSE);
  g_clear_handle_id (&self->grace_timeout_id, g_source_remove);
  g_clear_handle_id (&self->drained_idle_id, g_source_remove);
  stop_everything (self);
}

static gboolean
grace_timeout_cb (gpointer user_data)
{
  BpDaemon *self = user_data;

  self->grace_timeout_id = 0;
  g_message (ngettext ("grace period over: cancelling %u call still in flight",
                       "grace period over: cancelling %u calls still in flight",
                       bp_host_get_n_calls (self->host)),
             bp_host_get_n_calls (self->host));
  finish_draining (self);
  return G_SOURCE_REMOVE;
}

/* Any g-authorize-method handler makes GDBus run each call on that skeleton
 * through a thread-pool thread and back to the main context (GLib's
 * gdbusinterfaceskeleton.c): two more thread hand-offs per call, and calls
 * from one client can then be handled out of order. So the refusal is hooked
 * up only when the drain starts. The handler runs in a GLib worker thread. */
static void
refuse_new_calls (BpDaemon *self)
{
  for (guint i = 0; i < self->backends->len; i++)
    {
      BackendEntry *e = g_ptr_array_index (self->backends, i);
      GPtrArray *ifaces;

      if (e->iface == NULL)
        continue;
      ifaces = bp_backend_get_interfaces (e->backend);
      g_signal_connect (e->iface, "g-authorize-method", G_CALLBACK (refuse_while_draining_cb), self);
      for (guint j = 0; j < ifaces->len; j++)
        g_signal_connect (g_ptr_array_index (ifaces, j), "g-authorize-method",
                          G_CALLBACK (refuse_while_draining_cb), self);
    }
}

static void
bp_daemon_begin_shutdown (BpDaemon *self)
{
  if (self->stopping)
    return;
  self->stopping = TRUE;
  g_atomic_int_set (&self->draining, TRUE);
  refuse_new_calls (self);
  g_clear_handle_id (&self->start_timeout_id, g_source_remove);
  g_clear_handle_id (&self->stats_timeout_id, g_source_remove);
  if (self->own_name_id != 0)
    {
      g_bus_unown_name (self->own_name_id);
      self->own_name_id = 0;
    }
  if (bp_host_get_n_calls (self->host) == 0 || self->config->grace_period_ms == 0)
    {
      finish_draining (self);
      return;
    }
  g_message (ngettext ("draining %u call, for at most %llu ms",
                       "draining %u calls, for at most %llu ms",
                       bp_host_get_n_calls (self->host)),
             bp_host_get_n_calls (self->host), (unsigned long long) self->config->grace_period_ms);
  self->grace_timeout_id = g_timeout_add (self->config->grace_period_ms, grace_timeout_cb, self);
}

static gboolean
sigterm_cb (gpointer user_data)
{
  BpDaemon *self = user_data;

  g_message (_("signal received: shutting down"));
  bp_daemon_begin_shutdown (self);
  return G_SOURCE_CONTINUE;
}

/* ------------------------------------------------------------------ */
/* Start-up                                                            */

static void
dead_letters_opened_cb (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  BpDaemon *self = user_data;
  g_autoptr(GError) error = NULL;

  self->dead_letters = bp_dead_letters_open_finish (result, &error);
  self->dl_pending = FALSE;
  if (self->dead_letters == NULL)
    g_warning (_("the dead-letter store is unavailable: %s"), error->message);
  else if (!self->stopping)
    {
      bp_host_set_dead_letters (self->host, self->dead_letters);
      self->dl_service = bp_dead_letters_service_new (self->host, self->dead_letters, &error);
      if (self->dl_service == NULL)
        g_warning ("%s", error->message);
      for (guint i = 0; i < self->backends->len; i++)
        {
          BackendEntry *e = g_ptr_array_index (self->backends, i);

          if (!BP_IS_FAILED_BACKEND (e->backend))
            bp_backend_attach_dead_letters (e->backend, self->dead_letters);
        }
    }
  maybe_own_name (self);
  g_object_unref (self);
}

static void
open_dead_letters (BpDaemon *self)
{
  g_autofree char *path = NULL;

  if (self->config->dead_letters_path != NULL)
    path = g_strdup (self->config->dead_letters_path);
  else
    path = g_build_filename (g_get_user_state_dir (), "backplane", "dead-letters.db", NULL);
  self->dl_pending = TRUE;
  bp_dead_letters_open_async (path, bp_host_get_clock (self->host), NULL,
                              dead_letters_opened_cb, g_object_ref (self));
}

static gboolean
load_interface_xml (BpDaemon  *self,
                    GError   **error)
{
  g_auto(GStrv) children = g_resources_enumerate_children ("/org/backplane/Backplane1",
                                                           G_RESOURCE_LOOKUP_FLAGS_NONE, error);

  if (children == NULL)
    return FALSE;
  for (guint i = 0; children[i] != NULL; i++)
    {
      g_autofree char *path = NULL;
      g_autoptr(GBytes) bytes = NULL;

      if (!g_str_has_suffix (children[i], ".xml"))
        continue;
      path = g_strconcat ("/org/backplane/Backplane1/", children[i], NULL);
      bytes = g_resources_lookup_data (path, G_RESOURCE_LOOKUP_FLAGS_NONE, error);
      if (bytes == NULL || !bp_host_add_interface_xml (self->host, g_bytes_get_data (bytes, NULL), error))
        return FALSE;
    }
  return TRUE;
}

int
bp_daemon_run (BpDaemon *self)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *daemon_version = NULL;

  self->config = bp_config_load (self->config_path, &error);
  if (self->config == NULL)
    {
      g_printerr (_("backplaned: invalid configuration: %s\n"), error->message);
      return 1;
    }

  /* Before the loop runs: connecting may block, nothing else is served yet. */
  if (self->address != NULL)
    self->connection = g_dbus_connection_new_for_address_sync (self->address,
                                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                               G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                               NULL, NULL, &error);
  else
    self->connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  if (self->connection == NULL)
    {
      g_printerr (_("backplaned: cannot connect to the bus: %s\n"), error->message);
      return 1;
    }
  g_dbus_connection_set_exit_on_close (self->connection, FALSE);

  self->host = bp_host_new (self->connection, NULL);
  if (!load_interface_xml (self, &error))
    {
      g_printerr ("backplaned: %s\n", error->message);
      return 1;
    }
  g_signal_connect (self->host, "notify::n-calls", G_CALLBACK (n_calls_notify_cb), self);
  bp_loop_monitor_install (g_main_context_default (), loop_label_cb, self);
  bp_loop_monitor_set_changed_func (loop_lag_changed_cb, self);

  self->plugins = bp_plugin_discover (NULL);
  for (guint i = 0; i < self->plugins->len; i++)
    {
      BpPlugin *p = g_ptr_array_index (self->plugins, i);
      const GError *perr = bp_plugin_get_error (p);

      if (perr != NULL)
        g_warning (_("plugin %s: %s"), bp_plugin_get_id (p), perr->message);
    }

  self->manager = bp_dbus_manager_skeleton_new ();
  daemon_version = g_strdup (PACKAGE_VERSION);
  bp_dbus_manager_set_version (self->manager, BP_API_VERSION);
  bp_dbus_manager_set_daemon_version (self->manager, daemon_version);
  loop_lag_changed_cb (self);
  update_plugins_property (self);
  g_signal_connect (self->manager, "handle-reload", G_CALLBACK (handle_reload), self);
  g_signal_connect (self->manager, "handle-get-metrics", G_CALLBACK (handle_get_metrics), self);

  self->object_manager = g_dbus_object_manager_server_new (BP_ROOT_PATH);
  g_dbus_object_manager_server_set_connection (self->object_manager, self->connection);
  bp_host_note_exported (self->host, BP_ROOT_PATH, "org.freedesktop.DBus.ObjectManager");
  if (!bp_host_export (self->host, G_DBUS_INTERFACE_SKELETON (self->manager), BP_ROOT_PATH, &error))
    {
      g_printerr ("backplaned: %s\n", error->message);
      return 1;
    }

  open_dead_letters (self);
  for (guint i = 0; i < self->config->backends->len; i++)
    {
      BpBackendConfig *bc = g_ptr_array_index (self->config->backends, i);
      if (bc->enabled)
        add_backend (self, bc);
    }
  update_backends_property (self);

  self->signal_ids[0] = g_unix_signal_add (SIGTERM, sigterm_cb, self);
  self->signal_ids[1] = g_unix_signal_add (SIGINT, sigterm_cb, self);
  self->signal_ids[2] = g_unix_signal_add (SIGHUP, sighup_cb, self);
  if (self->config->start_timeout_ms > 0)
    self->start_timeout_id = g_timeout_add (self->config->start_timeout_ms, start_timeout_cb, self);
  maybe_own_name (self);

  g_main_loop_run (self->loop);

  for (guint i = 0; i < G_N_ELEMENTS (self->signal_ids); i++)
    g_clear_handle_id (&self->signal_ids[i], g_source_remove);
  g_clear_handle_id (&self->start_timeout_id, g_source_remove);
  g_clear_handle_id (&self->grace_timeout_id, g_source_remove);
  g_clear_handle_id (&self->stats_timeout_id, g_source_remove);
  g_clear_handle_id (&self->drained_idle_id, g_source_remove);
  g_clear_handle_id (&self->quit_timeout_id, g_source_remove);
  if (self->own_name_id != 0)
    g_bus_unown_name (self->own_name_id);
  self->own_name_id = 0;
  g_signal_handlers_disconnect_by_data (self->host, self);
  bp_host_unexport (self->host, G_DBUS_INTERFACE_SKELETON (self->manager));
  g_dbus_object_manager_server_set_connection (self->object_manager, NULL);
  bp_loop_monitor_uninstall ();
  /* The loop has ended: nothing is served any more, so waiting here for the
   * last replies to leave is what we want. */
  g_dbus_connection_flush_sync (self->connection, NULL, NULL);
  return self->exit_status;
}
