/* test-daemon.c: backplaned's D-Bus face, lifecycle and robustness
 *
 * Every test runs a real backplaned from the build tree on a private
 * dbus-daemon, with the system plugin and the example echo plugin.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "bp-test-daemon.h"

#define ROOT "/org/backplane/Backplane1"
#define DOC "org.gtk.GDBus.DocString"

static const char basic_config[] =
  "[daemon]\n"
  "grace-period-ms=10000\n"
  "[backend sys]\n"
  "type=system\n"
  "[backend echo]\n"
  "type=echo\n"
  "max-length=1048576\n";

static gboolean
has_doc (GDBusAnnotationInfo **annotations)
{
  const char *doc = g_dbus_annotation_info_lookup (annotations, DOC);

  return doc != NULL && strlen (doc) > 10;
}

static guint
assert_documented (BpTestDaemon *t,
                   const char   *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GDBusNodeInfo) node = NULL;
  const char *xml;
  guint checked = 0;

  reply = g_dbus_connection_call_sync (t->connection, "org.backplane.Backplane1", path,
                                       "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                                       G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&s)", &xml);
  node = g_dbus_node_info_new_for_xml (xml, &error);
  g_assert_no_error (error);
  for (guint i = 0; node->interfaces[i] != NULL; i++)
    {
      GDBusInterfaceInfo *iface = node->interfaces[i];

      if (!g_str_has_prefix (iface->name, "org.backplane."))
        continue;
      if (!has_doc (iface->annotations))
        g_error ("%s on %s has no documentation", iface->name, path);
      for (guint m = 0; iface->methods && iface->methods[m]; m++)
        {
          GDBusMethodInfo *method = iface->methods[m];

          if (!has_doc (method->annotations))
            g_error ("%s.%s has no documentation", iface->name, method->name);
          for (guint a = 0; method->in_args && method->in_args[a]; a++)
            if (!has_doc (method->in_args[a]->annotations))
              g_error ("%s.%s(%s) has no documentation", iface->name, method->name, method->in_args[a]->name);
          for (guint a = 0; method->out_args && method->out_args[a]; a++)
            if (!has_doc (method->out_args[a]->annotations))
              g_error ("%s.%s → %s has no documentation", iface->name, method->name, method->out_args[a]->name);
          checked++;
        }
      for (guint p = 0; iface->properties && iface->properties[p]; p++)
        if (!has_doc (iface->properties[p]->annotations))
          g_error ("%s.%s has no documentation", iface->name, iface->properties[p]->name);
      for (guint s = 0; iface->signals && iface->signals[s]; s++)
        if (!has_doc (iface->signals[s]->annotations))
          g_error ("signal %s.%s has no documentation", iface->name, iface->signals[s]->name);
    }
  return checked;
}

static void
test_introspection_docs (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (basic_config);
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  const char *xml;

  /* Manager (2 methods), Backend (3) + System (3), Backend (3) + Echo (4),
   * DeadLetters (6) */
  g_assert_cmpuint (assert_documented (t, ROOT), ==, 2);
  g_assert_cmpuint (assert_documented (t, ROOT "/backend/sys"), ==, 6);
  g_assert_cmpuint (assert_documented (t, ROOT "/backend/echo"), ==, 7);
  g_assert_cmpuint (assert_documented (t, ROOT "/DeadLetters"), ==, 6);

  /* Child nodes are listed so busctl tree / d-feet can walk the tree. */
  reply = g_dbus_connection_call_sync (t->connection, "org.backplane.Backplane1", ROOT,
                                       "org.freedesktop.DBus.Introspectable", "Introspect", NULL,
                                       G_VARIANT_TYPE ("(s)"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&s)", &xml);
  g_assert_nonnull (strstr (xml, "<node name=\"backend\"/>"));
  g_assert_nonnull (strstr (xml, "org.freedesktop.DBus.ObjectManager"));
}

static void
test_object_manager (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (basic_config);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) objects = NULL;
  g_autoptr(GVariant) ifaces = NULL;
  g_autoptr(GVariant) backend = NULL;
  g_autoptr(GVariant) backends = NULL;
  g_autoptr(GVariant) version = NULL;
  const char *type, *name;

  reply = g_dbus_connection_call_sync (t->connection, "org.backplane.Backplane1", ROOT,
                                       "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", NULL,
                                       G_VARIANT_TYPE ("(a{oa{sa{sv}}})"), G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
  g_assert_no_error (error);
  objects = g_variant_get_child_value (reply, 0);
  g_assert_cmpuint (g_variant_n_children (objects), ==, 2);
  g_assert_true (g_variant_lookup (objects, ROOT "/backend/sys", "@a{sa{sv}}", &ifaces));
  g_assert_true (g_variant_lookup (ifaces, "org.backplane.Backplane1.Backend", "@a{sv}", &backend));
  g_assert_true (g_variant_lookup (backend, "Type", "&s", &type));
  g_assert_cmpstr (type, ==, "system");
  g_assert_true (g_variant_lookup (backend, "Name", "&s", &name));
  g_assert_cmpstr (name, ==, "sys");
  g_assert_true (g_variant_lookup_value (ifaces, "org.backplane.Backplane1.System", NULL) != NULL);

  backends = bp_test_daemon_get_property (t, ROOT, "org.backplane.Backplane1.Manager", "Backends");
  g_assert_cmpuint (g_variant_n_children (backends), ==, 2);
  version = bp_test_daemon_get_property (t, ROOT, "org.backplane.Backplane1.Manager", "Version");
  g_assert_cmpuint (g_variant_get_uint32 (version), ==, 1);
}

static gboolean
backend_ready (gpointer data)
{
  BpTestDaemon *t = ((gpointer *) data)[0];
  const char *name = ((gpointer *) data)[1];
  g_autofree char *state = bp_test_daemon_backend_state (t, name, NULL);

  return g_str_equal (state, "ready");
}

static void
wait_ready (BpTestDaemon *t,
            const char   *name)
{
  gpointer data[2] = { t, (gpointer) name };

  g_assert_true (bp_test_wait_until (backend_ready, data, 20000));
}

static void
test_plugins_broken (void)
{
  g_autofree char *broken = g_test_build_filename (G_TEST_DIST, "broken-plugins", NULL);
  g_autofree char *extra = g_strjoin (":", g_test_get_dir (G_TEST_BUILT), broken, NULL);
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new_full (
    "[backend sys]\ntype=system\n"
    "[backend echo]\ntype=echo\n"
    "[backend gone]\ntype=missing-module\n"
    "[backend nosym]\ntype=no-symbol\n"
    "[backend wrong]\ntype=not-a-backend\n"
    "[backend future]\ntype=future\n", extra, TRUE);
  g_autoptr(GVariant) plugins = NULL;
  g_autoptr(GVariant) p = NULL;
  g_autofree char *state = NULL;
  g_autofree char *reason = NULL;
  const char *err;
  gboolean loaded;

  plugins = bp_test_daemon_get_property (t, ROOT, "org.backplane.Backplane1.Manager", "Plugins");

  g_assert_true (g_variant_lookup (plugins, "missing-module", "@a{sv}", &p));
  g_assert_true (g_variant_lookup (p, "error", "&s", &err));
  g_assert_nonnull (strstr (err, "does not exist"));
  g_clear_pointer (&p, g_variant_unref);

  g_assert_true (g_variant_lookup (plugins, "no-symbol", "@a{sv}", &p));
  g_assert_true (g_variant_lookup (p, "error", "&s", &err));
  g_assert_nonnull (strstr (err, "bp_plugin_register"));
  g_clear_pointer (&p, g_variant_unref);

  g_assert_true (g_variant_lookup (plugins, "not-a-backend", "@a{sv}", &p));
  g_assert_true (g_variant_lookup (p, "error", "&s", &err));
  g_assert_nonnull (strstr (err, "not a concrete BpBackend"));
  g_clear_pointer (&p, g_variant_unref);

  g_assert_true (g_variant_lookup (plugins, "bad-abi", "@a{sv}", &p));
  g_assert_true (g_variant_lookup (p, "error", "&s", &err));
  g_assert_nonnull (strstr (err, "ABI 99"));
  g_clear_pointer (&p, g_variant_unref);

  g_assert_true (g_variant_lookup (plugins, "duplicate-echo", "@a{sv}", &p));
  g_assert_true (g_variant_lookup (p, "error", "&s", &err));
  g_assert_nonnull (strstr (err, "duplicate backend type"));
  g_clear_pointer (&p, g_variant_unref);

  g_assert_true (g_variant_lookup (plugins, "missing-key", "@a{sv}", &p));
  g_assert_true (g_variant_lookup (p, "error", "&s", &err));
  g_assert_nonnull (strstr (err, "X-Backplane-Backend-Type"));
  g_clear_pointer (&p, g_variant_unref);

  g_assert_true (g_variant_lookup (plugins, "echo", "@a{sv}", &p));
  g_assert_true (g_variant_lookup (p, "loaded", "b", &loaded));
  g_assert_true (loaded);
  g_assert_true (g_variant_lookup (p, "error", "&s", &err));
  g_assert_cmpstr (err, ==, "");
  g_clear_pointer (&p, g_variant_unref);

  /* The backends of broken plugins are visible and unavailable … */
  state = bp_test_daemon_backend_state (t, "gone", &reason);
  g_assert_cmpstr (state, ==, "unavailable");
  g_assert_nonnull (strstr (reason, "does not exist"));
  g_clear_pointer (&state, g_free);
  g_clear_pointer (&reason, g_free);
  state = bp_test_daemon_backend_state (t, "nosym", &reason);
  g_assert_cmpstr (state, ==, "unavailable");
  g_assert_nonnull (strstr (reason, "bp_plugin_register"));
  g_clear_pointer (&state, g_free);
  g_clear_pointer (&reason, g_free);
  state = bp_test_daemon_backend_state (t, "future", &reason);
  g_assert_cmpstr (state, ==, "unavailable");
  g_clear_pointer (&state, g_free);

  /* … and the others run. */
  wait_ready (t, "sys");
  wait_ready (t, "echo");
}

static void
test_config_errors (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (
    "[backend a]\ntype=nosuchtype\n"
    "[backend b]\ntype=echo\nbogus-key=1\n"
    "[backend c]\ntype=echo\nmax-length=lots\n"
    "[backend d]\ntype=echo\npool.max=0\n"
    "[backend e]\n"
    "[backend ok]\ntype=echo\n");
  struct { const char *name; const char *needle; } cases[] = {
    { "a", "nosuchtype" },
    { "b", "bogus-key" },
    { "c", "max-length" },
    { "d", "pool.max" },
    { "e", "type= is missing" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *reason = NULL;
      g_autofree char *state = bp_test_daemon_backend_state (t, cases[i].name, &reason);

      g_assert_cmpstr (state, ==, "unavailable");
      if (strstr (reason, cases[i].needle) == NULL)
        g_error ("backend %s: reason “%s” does not name “%s”", cases[i].name, reason, cases[i].needle);
    }
  wait_ready (t, "ok");
}

static void
test_config_invalid_file (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new_full ("[backend x\ntype=echo\n", NULL, FALSE);

  g_assert_cmpint (bp_test_daemon_wait_exit (t), ==, 1);
}

typedef struct
{
  BpTestDaemon *t;
  const char   *series;
  double        value;
} MetricWait;

static gboolean
metric_is (gpointer data)
{
  MetricWait *w = data;

  return bp_test_daemon_metric (w->t, w->series) == w->value;
}

static guint64
echo_counter (BpTestDaemon *t,
              const char   *property)
{
  g_autoptr(GVariant) v = bp_test_daemon_get_property (t, ROOT "/backend/echo", "org.backplane.Example1.Echo", property);

  return g_variant_get_uint64 (v);
}

static gboolean
one_cancelled (gpointer data)
{
  return echo_counter (data, "Cancelled") == 1;
}

static void
test_client_vanishes (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (basic_config);
  g_autoptr(GSubprocess) client = NULL;
  g_autoptr(GError) error = NULL;
  MetricWait in_flight = { t, "backplane_calls_in_flight", 1 };
  MetricWait idle = { t, "backplane_calls_in_flight", 0 };
  double watches_before;
  guint fds_before;

  wait_ready (t, "echo");
  watches_before = bp_test_daemon_metric (t, "backplane_owner_watches");
  fds_before = bp_test_count_fds (t->pid);

  client = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error,
                             "gdbus", "call", "--address", t->address,
                             "--dest", "org.backplane.Backplane1",
                             "--object-path", ROOT "/backend/echo",
                             "--method", "org.backplane.Example1.Echo.Sleep", "30000", NULL);
  g_assert_no_error (error);
  g_assert_true (bp_test_wait_until (metric_is, &in_flight, 20000));

  g_subprocess_force_exit (client);
  g_assert_true (g_subprocess_wait (client, NULL, NULL));

  g_assert_true (bp_test_wait_until (one_cancelled, t, 10000));
  g_assert_true (bp_test_wait_until (metric_is, &idle, 10000));
  g_assert_cmpfloat (bp_test_daemon_metric (t, "backplane_owner_watches"), ==, watches_before);
  g_assert_cmpuint (echo_counter (t, "Completed"), ==, 0);
  g_assert_cmpuint (bp_test_count_fds (t->pid), ==, fds_before);
}

typedef struct
{
  gboolean  done;
  GVariant *reply;
  GError   *error;
} AsyncCall;

static void
async_call_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  AsyncCall *c = user_data;

  c->reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &c->error);
  c->done = TRUE;
}

static gboolean
async_done (gpointer data)
{
  return ((AsyncCall *) data)->done;
}

static void
test_sigterm_drains (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (basic_config);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) refused = NULL;
  AsyncCall sleep_call = { 0 };
  MetricWait in_flight = { t, "backplane_calls_in_flight", 1 };

  wait_ready (t, "echo");
  g_dbus_connection_call (t->connection, "org.backplane.Backplane1", ROOT "/backend/echo",
                          "org.backplane.Example1.Echo", "Sleep", g_variant_new ("(u)", 1500),
                          NULL, G_DBUS_CALL_FLAGS_NONE, 30000, NULL, async_call_cb, &sleep_call);
  g_assert_true (bp_test_wait_until (metric_is, &in_flight, 20000));

  bp_test_daemon_signal (t, SIGTERM);

  /* While draining, new work is refused with a named error (the bus name is
   * already released, so address the daemon by its unique name). */
  do
    {
      g_clear_error (&error);
      g_clear_pointer (&refused, g_variant_unref);
      refused = g_dbus_connection_call_sync (t->connection, t->unique_name, ROOT "/backend/echo",
                                             "org.backplane.Example1.Echo", "Echo", g_variant_new ("(s)", "x"),
                                             NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, &error);
    }
  while (error == NULL && !sleep_call.done);
  if (!sleep_call.done)
    {
      g_autofree char *remote = g_dbus_error_get_remote_error (error);
      g_assert_cmpstr (remote, ==, "org.backplane.Backplane1.Error.Unavailable");
    }

  g_assert_true (bp_test_wait_until (async_done, &sleep_call, 30000));
  g_assert_no_error (sleep_call.error);
  g_assert_nonnull (sleep_call.reply);
  g_variant_unref (sleep_call.reply);
  g_assert_cmpint (bp_test_daemon_wait_exit (t), ==, 0);
}

static void
test_sigterm_grace_cancels (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new ("[daemon]\ngrace-period-ms=200\n[backend echo]\ntype=echo\n");
  AsyncCall sleep_call = { 0 };
  MetricWait in_flight = { t, "backplane_calls_in_flight", 1 };
  g_autofree char *remote = NULL;

  wait_ready (t, "echo");
  g_dbus_connection_call (t->connection, "org.backplane.Backplane1", ROOT "/backend/echo",
                          "org.backplane.Example1.Echo", "Sleep", g_variant_new ("(u)", 50000),
                          NULL, G_DBUS_CALL_FLAGS_NONE, 60000, NULL, async_call_cb, &sleep_call);
  g_assert_true (bp_test_wait_until (metric_is, &in_flight, 20000));
  bp_test_daemon_signal (t, SIGINT);
  g_assert_true (bp_test_wait_until (async_done, &sleep_call, 30000));
  g_assert_nonnull (sleep_call.error);
  remote = g_dbus_error_get_remote_error (sleep_call.error);
  g_assert_cmpstr (remote, ==, "org.backplane.Backplane1.Error.Cancelled");
  g_clear_error (&sleep_call.error);
  g_assert_cmpint (bp_test_daemon_wait_exit (t), ==, 0);
}

static void
assert_remote_error (GError     *error,
                     const char *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, name);
}

typedef struct
{
  GPtrArray *added;
  GPtrArray *removed;
} ObjectEvents;

static void
interfaces_changed_cb (GDBusConnection *connection,
                       const char      *sender,
                       const char      *path,
                       const char      *iface,
                       const char      *signal,
                       GVariant        *params,
                       gpointer         user_data)
{
  ObjectEvents *ev = user_data;
  const char *object;

  g_variant_get_child (params, 0, "&o", &object);
  g_ptr_array_add (g_str_equal (signal, "InterfacesAdded") ? ev->added : ev->removed, g_strdup (object));
}

static gboolean
reload_seen (gpointer data)
{
  ObjectEvents *ev = data;

  return g_ptr_array_find_with_equal_func (ev->added, ROOT "/backend/b", g_str_equal, NULL) &&
         g_ptr_array_find_with_equal_func (ev->removed, ROOT "/backend/a", g_str_equal, NULL);
}

static void
test_sighup_reload (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new ("[backend a]\ntype=echo\n[backend echo]\ntype=echo\n");
  g_autoptr(GVariant) backends = NULL;
  g_autoptr(GVariant) r = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *state = NULL;
  ObjectEvents ev = { g_ptr_array_new_with_free_func (g_free), g_ptr_array_new_with_free_func (g_free) };
  guint sub;

  wait_ready (t, "echo");
  r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Example1.Echo.Sleep",
                           g_variant_new ("(u)", 0), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (echo_counter (t, "Completed"), ==, 1);

  sub = g_dbus_connection_signal_subscribe (t->connection, "org.backplane.Backplane1",
                                            "org.freedesktop.DBus.ObjectManager", NULL, ROOT, NULL,
                                            G_DBUS_SIGNAL_FLAGS_NONE, interfaces_changed_cb, &ev, NULL);
  bp_test_daemon_write_config (t, "[backend echo]\ntype=echo\n[backend b]\ntype=echo\n");
  bp_test_daemon_signal (t, SIGHUP);
  g_assert_true (bp_test_wait_until (reload_seen, &ev, 20000));
  g_dbus_connection_signal_unsubscribe (t->connection, sub);

  /* The untouched backend kept running: its counter survived. */
  g_assert_cmpuint (echo_counter (t, "Completed"), ==, 1);
  g_assert_false (g_ptr_array_find_with_equal_func (ev.removed, ROOT "/backend/echo", g_str_equal, NULL));
  wait_ready (t, "b");
  backends = bp_test_daemon_get_property (t, ROOT, "org.backplane.Backplane1.Manager", "Backends");
  g_assert_cmpuint (g_variant_n_children (backends), ==, 2);

  /* A broken file is refused by Reload with a named error; nothing changes. */
  bp_test_daemon_write_config (t, "[backend echo\n");
  g_clear_pointer (&r, g_variant_unref);
  r = bp_test_daemon_call (t, ROOT, "org.backplane.Backplane1.Manager.Reload", NULL, NULL, &error);
  assert_remote_error (error, "org.backplane.Backplane1.Error.InvalidArgument");
  g_clear_error (&error);
  state = bp_test_daemon_backend_state (t, "b", NULL);
  g_assert_cmpstr (state, ==, "ready");
  g_ptr_array_unref (ev.added);
  g_ptr_array_unref (ev.removed);
}

static void
test_bad_input (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (basic_config);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  g_autofree char *huge = g_strnfill (2 * 1024 * 1024, 'x');
  GVariantBuilder b;

  wait_ready (t, "echo");
  /* Wrong argument types are refused by GDBus with the standard name. */
  r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Example1.Echo.Echo",
                           g_variant_new ("(u)", 7), NULL, &error);
  assert_remote_error (error, "org.freedesktop.DBus.Error.InvalidArgs");
  g_clear_error (&error);

  /* Unknown option keys name the key. */
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "colour", g_variant_new_string ("blue"));
  r = bp_test_daemon_call (t, ROOT "/backend/sys", "org.backplane.Backplane1.System.ListProcesses",
                           g_variant_new ("(a{sv})", &b), NULL, &error);
  assert_remote_error (error, "org.backplane.Backplane1.Error.InvalidArgument");
  g_assert_nonnull (strstr (error->message, "colour"));
  g_clear_error (&error);

  /* Option of the wrong type names the key too. */
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "limit", g_variant_new_string ("ten"));
  r = bp_test_daemon_call (t, ROOT "/backend/sys", "org.backplane.Backplane1.System.ListProcesses",
                           g_variant_new ("(a{sv})", &b), NULL, &error);
  assert_remote_error (error, "org.backplane.Backplane1.Error.InvalidArgument");
  g_assert_nonnull (strstr (error->message, "limit"));
  g_clear_error (&error);

  /* A huge string hits the configured bound, not the daemon's memory. */
  r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Example1.Echo.Echo",
                           g_variant_new ("(s)", huge), NULL, &error);
  assert_remote_error (error, "org.backplane.Backplane1.Error.LimitExceeded");
  g_clear_error (&error);

  /* Unknown methods and objects get the standard names. */
  r = bp_test_daemon_call (t, ROOT "/backend/nope", "org.backplane.Backplane1.Backend.Ping", NULL, NULL, &error);
  g_assert_nonnull (error);
  g_clear_error (&error);

  /* The daemon is still fine. */
  r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Backplane1.Backend.Ping", NULL, NULL, &error);
  g_assert_no_error (error);
}

static void
test_health_metrics_looplag (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (basic_config);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  g_autoptr(GVariant) lag = NULL;
  const char *text, *detail;
  gboolean healthy;
  gint64 p99;

  wait_ready (t, "sys");
  r = bp_test_daemon_call (t, ROOT "/backend/sys", "org.backplane.Backplane1.Backend.CheckHealth",
                           NULL, "(bs)", &error);
  g_assert_no_error (error);
  g_variant_get (r, "(b&s)", &healthy, &detail);
  g_assert_true (healthy);
  g_assert_nonnull (strstr (detail, "/proc"));
  g_clear_pointer (&r, g_variant_unref);
  r = bp_test_daemon_call (t, ROOT "/backend/sys", "org.backplane.Backplane1.System.GetStatus",
                           NULL, "(a{sv})", &error);
  g_assert_no_error (error);
  g_clear_pointer (&r, g_variant_unref);

  r = bp_test_daemon_call (t, ROOT, "org.backplane.Backplane1.Manager.GetMetrics", NULL, "(s)", &error);
  g_assert_no_error (error);
  g_variant_get (r, "(&s)", &text);
  g_assert_true (g_str_has_suffix (text, "# EOF\n"));
  g_assert_nonnull (strstr (text, "backplane_backend_state{backend=\"sys\",state=\"ready\"} 1\n"));
  g_assert_nonnull (strstr (text, "backplane_backend_state{backend=\"sys\",state=\"degraded\"} 0\n"));
  g_assert_cmpfloat (bp_test_daemon_metric (t, "backplane_backend_latency_count{backend=\"sys\"}"), >=, 1);

  lag = bp_test_daemon_get_property (t, ROOT, "org.backplane.Backplane1.Manager", "LoopLag");
  g_assert_true (g_variant_lookup (lag, "p99-us", "x", &p99));
  g_assert_cmpint (p99, >=, 0);
  g_assert_true (g_variant_lookup_value (lag, "stalls-over-16ms", G_VARIANT_TYPE_UINT64) != NULL);
}

static guint64
dead_letter_count (BpTestDaemon *t)
{
  g_autoptr(GVariant) v = bp_test_daemon_get_property (t, ROOT "/DeadLetters", "org.backplane.Backplane1.DeadLetters", "Count");

  return g_variant_get_uint64 (v);
}

static gboolean
no_dead_letters (gpointer data)
{
  return dead_letter_count (data) == 0;
}

static void
test_dead_letters_round_trip (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new ("[backend echo]\ntype=echo\nretry.max-attempts=2\nretry.base-ms=1\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  g_autoptr(GVariant) entries = NULL;
  g_autoptr(GVariant) delivered = NULL;
  g_autoptr(GVariant) entry = NULL;
  GVariantBuilder opts;
  const char *backend, *operation, *key, *last_error;
  guint64 id, id2;
  guint attempts;
  gint64 next;

  wait_ready (t, "echo");
  r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Example1.Echo.SetOnline",
                           g_variant_new ("(b)", FALSE), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&r, g_variant_unref);

  /* dead-letter without a key is refused up front */
  g_variant_builder_init (&opts, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&opts, "{sv}", "dead-letter", g_variant_new_boolean (TRUE));
  r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Example1.Echo.Send",
                           g_variant_new ("(sa{sv})", "lost", &opts), NULL, &error);
  assert_remote_error (error, "org.backplane.Backplane1.Error.InvalidArgument");
  g_clear_error (&error);

  /* Offline: retried, then dead-lettered; the caller still gets the error. */
  for (guint i = 0; i < 2; i++)
    {
      g_variant_builder_init (&opts, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&opts, "{sv}", "dead-letter", g_variant_new_boolean (TRUE));
      g_variant_builder_add (&opts, "{sv}", "idempotency-key", g_variant_new_string ("order-17"));
      r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Example1.Echo.Send",
                               g_variant_new ("(sa{sv})", "hello", &opts), NULL, &error);
      assert_remote_error (error, "org.backplane.Backplane1.Error.Unavailable");
      g_assert_nonnull (strstr (error->message, "dead-lettered as entry"));
      g_clear_error (&error);
    }
  /* The same idempotency key is stored once. */
  g_assert_cmpuint (dead_letter_count (t), ==, 1);

  r = bp_test_daemon_call (t, ROOT "/DeadLetters", "org.backplane.Backplane1.DeadLetters.List",
                           g_variant_new ("(uua{sv})", 0, 10, NULL), "(a(tsssuxs))", &error);
  g_assert_no_error (error);
  entries = g_variant_get_child_value (r, 0);
  g_assert_cmpuint (g_variant_n_children (entries), ==, 1);
  g_variant_get_child (entries, 0, "(t&s&s&sux&s)", &id, &backend, &operation, &key, &attempts, &next, &last_error);
  g_assert_cmpstr (backend, ==, "echo");
  g_assert_cmpstr (operation, ==, "Echo.Send");
  g_assert_cmpstr (key, ==, "order-17");
  g_assert_cmpuint (attempts, ==, 2);
  g_assert_nonnull (strstr (last_error, "offline"));
  g_clear_pointer (&r, g_variant_unref);

  r = bp_test_daemon_call (t, ROOT "/DeadLetters", "org.backplane.Backplane1.DeadLetters.Get",
                           g_variant_new ("(t)", id), "(a{sv})", &error);
  g_assert_no_error (error);
  g_variant_get (r, "(@a{sv})", &entry);
  g_assert_true (g_variant_lookup (entry, "id", "t", &id2));
  g_assert_cmpuint (id2, ==, id);
  g_clear_pointer (&r, g_variant_unref);

  /* Replaying while still offline fails and keeps the entry. */
  r = bp_test_daemon_call (t, ROOT "/DeadLetters", "org.backplane.Backplane1.DeadLetters.Replay",
                           g_variant_new ("(t)", id), NULL, &error);
  g_assert_nonnull (error);
  g_clear_error (&error);
  g_assert_cmpuint (dead_letter_count (t), ==, 1);

  /* Back online: the replay delivers and the entry is gone. */
  r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Example1.Echo.SetOnline",
                           g_variant_new ("(b)", TRUE), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&r, g_variant_unref);
  bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Backplane1.Backend.ResetBreaker", NULL, NULL, &error);
  g_assert_no_error (error);
  r = bp_test_daemon_call (t, ROOT "/DeadLetters", "org.backplane.Backplane1.DeadLetters.Replay",
                           g_variant_new ("(t)", id), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bp_test_wait_until (no_dead_letters, t, 10000));
  delivered = bp_test_daemon_get_property (t, ROOT "/backend/echo", "org.backplane.Example1.Echo", "Delivered");
  g_assert_cmpuint (g_variant_n_children (delivered), ==, 1);
  g_clear_pointer (&r, g_variant_unref);

  /* Unknown ids are NotFound. */
  r = bp_test_daemon_call (t, ROOT "/DeadLetters", "org.backplane.Backplane1.DeadLetters.Delete",
                           g_variant_new ("(t)", id), NULL, &error);
  assert_remote_error (error, "org.backplane.Backplane1.Error.NotFound");
}

static char *
breaker_state (BpTestDaemon *t)
{
  g_autoptr(GVariant) b = bp_test_daemon_get_property (t, ROOT "/backend/echo", "org.backplane.Backplane1.Backend", "Breaker");
  const char *state = "?";

  g_variant_lookup (b, "state", "&s", &state);
  return g_strdup (state);
}

static void
test_breaker_on_the_bus (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new ("[backend echo]\ntype=echo\nbreaker.min-volume=2\n"
                                                  "breaker.error-threshold=50\nbreaker.open-ms=60000\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  g_autofree char *state = NULL;

  wait_ready (t, "echo");
  r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Example1.Echo.SetOnline",
                           g_variant_new ("(b)", FALSE), NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 2; i++)
    {
      g_clear_pointer (&r, g_variant_unref);
      r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Example1.Echo.Send",
                               g_variant_new ("(sa{sv})", "x", NULL), NULL, &error);
      assert_remote_error (error, "org.backplane.Backplane1.Error.Unavailable");
      g_clear_error (&error);
    }
  state = breaker_state (t);
  g_assert_cmpstr (state, ==, "open");
  g_clear_pointer (&state, g_free);

  /* Open: rejected without touching the backend, with a retry-after. */
  r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Example1.Echo.Send",
                           g_variant_new ("(sa{sv})", "x", NULL), NULL, &error);
  assert_remote_error (error, "org.backplane.Backplane1.Error.CircuitOpen");
  g_assert_nonnull (strstr (error->message, "retry-after-ms="));
  g_clear_error (&error);

  r = bp_test_daemon_call (t, ROOT "/backend/echo", "org.backplane.Backplane1.Backend.ResetBreaker", NULL, NULL, &error);
  g_assert_no_error (error);
  state = breaker_state (t);
  g_assert_cmpstr (state, ==, "closed");
}

typedef struct
{
  char     *owner;
  gboolean  changed;
} OwnerWatch;

static void
owner_appeared_cb (GDBusConnection *connection,
                   const char      *name,
                   const char      *owner,
                   gpointer         user_data)
{
  OwnerWatch *w = user_data;

  if (w->owner != NULL && !g_str_equal (w->owner, owner))
    w->changed = TRUE;
  g_free (w->owner);
  w->owner = g_strdup (owner);
}

static gboolean
owner_changed (gpointer data)
{
  return ((OwnerWatch *) data)->changed;
}

static void
test_replace (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new ("[backend echo]\ntype=echo\n");
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr(GSubprocess) second = NULL;
  g_autoptr(GSubprocess) third = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *exe = g_build_filename (g_getenv ("BACKPLANE_BUILD_ROOT"), "core", "daemon", "backplaned", NULL);
  g_autofree char *plugins = g_strjoin (":", g_getenv ("BACKPLANE_PLUGIN_PATH"),
                                        BP_BUILD_ROOT "/examples/echo-plugin", NULL);
  OwnerWatch w = { 0 };
  guint watch;

  g_subprocess_launcher_setenv (launcher, "BACKPLANE_PLUGIN_PATH", plugins, TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_STATE_HOME", t->tmpdir, TRUE);

  /* Without --replace a second daemon refuses to start (exit 1). */
  third = g_subprocess_launcher_spawn (launcher, &error, exe, "--config", t->config_path,
                                       "--address", t->address, NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_wait (third, NULL, &error));
  g_assert_true (g_subprocess_get_if_exited (third));
  g_assert_cmpint (g_subprocess_get_exit_status (third), ==, 1);

  /* With --replace it takes the name over and the first one exits 0. */
  watch = g_bus_watch_name_on_connection (t->connection, "org.backplane.Backplane1", G_BUS_NAME_WATCHER_FLAGS_NONE,
                                          owner_appeared_cb, NULL, &w, NULL);
  second = g_subprocess_launcher_spawn (launcher, &error, exe, "--config", t->config_path,
                                        "--address", t->address, "--replace", NULL);
  g_assert_no_error (error);
  g_assert_cmpint (bp_test_daemon_wait_exit (t), ==, 0);
  g_assert_true (bp_test_wait_until (owner_changed, &w, 30000));
  g_assert_cmpstr (w.owner, !=, t->unique_name);
  g_bus_unwatch_name (watch);
  g_subprocess_send_signal (second, SIGTERM);
  g_assert_true (g_subprocess_wait (second, NULL, &error));
  g_assert_cmpint (g_subprocess_get_exit_status (second), ==, 0);
  g_free (w.owner);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/daemon/introspection/docs", test_introspection_docs);
  g_test_add_func ("/daemon/object-manager", test_object_manager);
  g_test_add_func ("/daemon/plugins/broken", test_plugins_broken);
  g_test_add_func ("/daemon/config/backend-errors", test_config_errors);
  g_test_add_func ("/daemon/config/invalid-file", test_config_invalid_file);
  g_test_add_func ("/daemon/client-vanishes/cancels", test_client_vanishes);
  g_test_add_func ("/daemon/sigterm/drains", test_sigterm_drains);
  g_test_add_func ("/daemon/sigterm/grace-cancels", test_sigterm_grace_cancels);
  g_test_add_func ("/daemon/sighup/reload", test_sighup_reload);
  g_test_add_func ("/daemon/bad-input", test_bad_input);
  g_test_add_func ("/daemon/health-metrics-looplag", test_health_metrics_looplag);
  g_test_add_func ("/daemon/dead-letters/round-trip", test_dead_letters_round_trip);
  g_test_add_func ("/daemon/replace", test_replace);
  g_test_add_func ("/daemon/breaker-on-the-bus", test_breaker_on_the_bus);
  return g_test_run ();
}
