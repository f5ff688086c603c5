/* bp-test-daemon.c: backplaned from the build tree on a private bus
 *
 * A test helper: starts a private dbus-daemon (bp-test-bus.h), writes a
 * configuration into a fresh temporary directory (also used as
 * XDG_CONFIG/DATA/STATE/RUNTIME home, so nothing touches the real ones),
 * runs build/core/daemon/backplaned --config … --address … and waits until
 * it owns org.backplane.Backplane1. Calls are synchronous with a bounded
 * timeout: this is test code, not daemon code.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <sys/prctl.h>
#include <string.h>

#include "bp-test-daemon.h"

#define BUS_NAME "org.backplane.Backplane1"
#define CALL_TIMEOUT_MS 30000

typedef struct
{
  gboolean  appeared;
  char     *owner;
} NameWait;

static void
name_appeared_cb (GDBusConnection *connection,
                  const char      *name,
                  const char      *owner,
                  gpointer         user_data)
{
  NameWait *w = user_data;

  w->appeared = TRUE;
  g_free (w->owner);
  w->owner = g_strdup (owner);
}

static gboolean
appeared_cond (gpointer data)
{
  return ((NameWait *) data)->appeared;
}

static gboolean
timeout_flag_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
poll_tick_cb (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/**
 * bp_test_wait_until:
 *
 * Iterates the thread-default main context until @condition holds or
 * @timeout_ms passed (a generous safety net, not a timing assertion).
 */
gboolean
bp_test_wait_until (gboolean (*condition) (gpointer),
                    gpointer   data,
                    guint      timeout_ms)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add (timeout_ms, timeout_flag_cb, &timed_out);
  /* Conditions may poll the daemon: wake up regularly to re-check. */
  guint tick = g_timeout_add (20, poll_tick_cb, NULL);

  while (!condition (data) && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  g_source_remove (tick);
  return condition (data);
}

/* If the test crashes, its daemon must not outlive it (and keep meson
 * waiting on the test's output pipes). Runs in the child between fork and
 * exec: async-signal-safe calls only. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static char *
daemon_path (void)
{
  const char *root = g_getenv ("BACKPLANE_BUILD_ROOT");

  return g_build_filename (root != NULL ? root : BP_BUILD_ROOT, "core", "daemon", "backplaned", NULL);
}

void
bp_test_daemon_write_config (BpTestDaemon *t,
                             const char   *config_text)
{
  g_autoptr(GError) error = NULL;

  g_file_set_contents (t->config_path, config_text, -1, &error);
  g_assert_no_error (error);
}

BpTestDaemon *
bp_test_daemon_new_full (const char *config_text,
                         const char *extra_plugin_path,
                         gboolean    wait_for_name)
{
  BpTestDaemon *t = g_new0 (BpTestDaemon, 1);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *exe = daemon_path ();
  g_autofree char *plugin_path = NULL;
  const char *env_path = g_getenv ("BACKPLANE_PLUGIN_PATH");
  NameWait wait = { 0 };
  guint watch;

  t->tmpdir = g_dir_make_tmp ("bp-test-XXXXXX", &error);
  g_assert_no_error (error);
  g_chmod (t->tmpdir, 0700);
  t->config_path = g_build_filename (t->tmpdir, "backplane.conf", NULL);
  bp_test_daemon_write_config (t, config_text);

  t->bus = bp_test_bus_up ();
  t->address = g_strdup (bp_test_bus_get_address (t->bus));
  t->connection = g_dbus_connection_new_for_address_sync (t->address,
                                                          G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                          G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                          NULL, NULL, &error);
  g_assert_no_error (error);

  plugin_path = g_strjoin (":",
                           env_path != NULL ? env_path : BP_BUILD_PLUGINDIR,
                           BP_BUILD_ROOT "/examples/echo-plugin",
                           extra_plugin_path != NULL ? extra_plugin_path : "",
                           NULL);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_NONE);
  g_subprocess_launcher_setenv (launcher, "BACKPLANE_PLUGIN_PATH", plugin_path, TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_CONFIG_HOME", t->tmpdir, TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_DATA_HOME", t->tmpdir, TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_STATE_HOME", t->tmpdir, TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_RUNTIME_DIR", t->tmpdir, TRUE);
  g_subprocess_launcher_unsetenv (launcher, "G_DEBUG");
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  t->daemon = g_subprocess_launcher_spawn (launcher, &error, exe,
                                           "--config", t->config_path,
                                           "--address", t->address,
                                           NULL);
  g_assert_no_error (error);
  t->pid = (guint32) g_ascii_strtoull (g_subprocess_get_identifier (t->daemon), NULL, 10);

  if (!wait_for_name)
    return t;
  watch = g_bus_watch_name_on_connection (t->connection, BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                          name_appeared_cb, NULL, &wait, NULL);
  g_assert_true (bp_test_wait_until (appeared_cond, &wait, 30000));
  g_bus_unwatch_name (watch);
  t->unique_name = wait.owner;
  return t;
}

BpTestDaemon *
bp_test_daemon_new (const char *config_text)
{
  return bp_test_daemon_new_full (config_text, NULL, TRUE);
}

void
bp_test_daemon_signal (BpTestDaemon *t,
                       int           signum)
{
  g_assert_nonnull (t->daemon);
  g_subprocess_send_signal (t->daemon, signum);
}

static void
wait_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  gboolean *done = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *done = TRUE;
}

static gboolean
flag_cond (gpointer data)
{
  return *(gboolean *) data;
}

/**
 * bp_test_daemon_wait_exit:
 *
 * Returns: the exit status, or 128 + signal when killed
 */
int
bp_test_daemon_wait_exit (BpTestDaemon *t)
{
  gboolean done = FALSE;
  int status;

  g_assert_nonnull (t->daemon);
  g_subprocess_wait_async (t->daemon, NULL, wait_cb, &done);
  g_assert_true (bp_test_wait_until (flag_cond, &done, 60000));
  if (g_subprocess_get_if_exited (t->daemon))
    status = g_subprocess_get_exit_status (t->daemon);
  else
    status = 128 + g_subprocess_get_term_sig (t->daemon);
  g_clear_object (&t->daemon);
  return status;
}

static void
rm_rf (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *entry;

  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, entry, NULL);

      if (g_file_test (child, G_FILE_TEST_IS_DIR) && !g_file_test (child, G_FILE_TEST_IS_SYMLINK))
        rm_rf (child);
      else
        g_unlink (child);
    }
  g_rmdir (path);
}

void
bp_test_daemon_free (BpTestDaemon *t)
{
  if (t == NULL)
    return;
  if (t->daemon != NULL)
    {
      g_subprocess_send_signal (t->daemon, SIGTERM);
      bp_test_daemon_wait_exit (t);
    }
  if (t->connection != NULL)
    g_dbus_connection_close_sync (t->connection, NULL, NULL);
  g_clear_object (&t->connection);
  bp_test_bus_down (g_steal_pointer (&t->bus));
  rm_rf (t->tmpdir);
  g_free (t->tmpdir);
  g_free (t->config_path);
  g_free (t->address);
  g_free (t->unique_name);
  g_free (t);
}

GVariant *
bp_test_daemon_call (BpTestDaemon  *t,
                     const char    *path,
                     const char    *method,
                     GVariant      *params,
                     const char    *reply_type,
                     GError       **error)
{
  g_autofree char *iface = g_strdup (method);
  char *dot = strrchr (iface, '.');

  g_assert_nonnull (dot);
  *dot = '\0';
  return g_dbus_connection_call_sync (t->connection, BUS_NAME, path, iface, dot + 1, params,
                                      reply_type ? G_VARIANT_TYPE (reply_type) : NULL,
                                      G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, error);
}

GVariant *
bp_test_daemon_get_property (BpTestDaemon *t,
                             const char   *path,
                             const char   *interface,
                             const char   *property)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  GVariant *value;

  reply = g_dbus_connection_call_sync (t->connection, BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", interface, property), G_VARIANT_TYPE ("(v)"),
                                       G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(v)", &value);
  return value;
}

char *
bp_test_daemon_backend_state (BpTestDaemon  *t,
                              const char    *name,
                              char         **reason)
{
  g_autofree char *path = g_strconcat ("/org/backplane/Backplane1/backend/", name, NULL);
  g_autoptr(GVariant) state = bp_test_daemon_get_property (t, path, "org.backplane.Backplane1.Backend", "State");

  if (reason != NULL)
    {
      g_autoptr(GVariant) r = bp_test_daemon_get_property (t, path, "org.backplane.Backplane1.Backend", "StateReason");
      *reason = g_variant_dup_string (r, NULL);
    }
  return g_variant_dup_string (state, NULL);
}

guint
bp_test_count_fds (guint32 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/fd", pid);
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  guint n = 0;

  g_assert_nonnull (dir);
  while (g_dir_read_name (dir) != NULL)
    n++;
  return n;
}

/**
 * bp_test_daemon_metric:
 * @series: a sample name with labels exactly as exposed
 *
 * Returns: the value from Manager.GetMetrics, or -1 when absent
 */
double
bp_test_daemon_metric (BpTestDaemon *t,
                       const char   *series)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = bp_test_daemon_call (t, "/org/backplane/Backplane1",
                                                   "org.backplane.Backplane1.Manager.GetMetrics",
                                                   NULL, "(s)", &error);
  g_auto(GStrv) lines = NULL;
  const char *text;

  g_assert_no_error (error);
  g_variant_get (reply, "(&s)", &text);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], series) && lines[i][strlen (series)] == ' ')
      return g_ascii_strtod (lines[i] + strlen (series) + 1, NULL);
  return -1;
}
