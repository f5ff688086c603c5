/* bench-common.c: what the benchmarks that run backplaned share
 *
 * A private dbus-daemon and backplaned from the build tree in a temporary
 * directory, the bookkeeping that kills them whatever happens, and the
 * small readers of /proc every benchmark reports from. See bench-common.h.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>

#include "bench-common.h"

#define MAX_CHILDREN     8
#define MAX_CLEANUPS     4
#define CALL_TIMEOUT_MS  30000
#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS  30000

#define BUS_CONFIG \
  "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n" \
  " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n" \
  "<busconfig>\n" \
  "  <type>session</type>\n" \
  "  <listen>unix:dir=%s</listen>\n" \
  "  <auth>EXTERNAL</auth>\n" \
  "  <policy context=\"default\">\n" \
  "    <allow send_destination=\"*\"/>\n" \
  "    <allow receive_sender=\"*\"/>\n" \
  "    <allow own=\"*\"/>\n" \
  "  </policy>\n" \
  "</busconfig>\n"

static const char *program_name = "bench";
static const char * const *die_logs;
static gsize die_log_bytes;
static char *tmpdir;
static GSubprocess *children[MAX_CHILDREN];
static BenchCleanupFunc cleanups[MAX_CLEANUPS];
static GSubprocess *daemon_proc;
static guint32 daemon_pid;
static gboolean daemon_exited;

/* ------------------------------------------------------------------ */
/* Set-up, failure, clean-up                                           */

static gboolean
interrupted_cb (gpointer user_data)
{
  bench_die ("interrupted by signal %d", GPOINTER_TO_INT (user_data));
}

/**
 * bench_init:
 * @program: the program's name, for messages ("bench-dbus"); kept
 * @logs: (array zero-terminated=1): the logs in the temporary directory
 *   that bench_die() shows, in this order; kept, not copied
 * @max_log_bytes: show at most the last this many bytes of each log, 0 for
 *   all of it
 *
 * Call once the options are parsed. Makes stdout line-buffered (so its
 * lines stay in order with stderr and the logs) and cleans up through
 * bench_die() on SIGTERM (meson's timeout), SIGINT and SIGHUP at the next
 * main-loop iteration; if the benchmark is SIGKILLed instead,
 * PR_SET_PDEATHSIG takes its children down.
 */
void
bench_init (const char         *program,
            const char * const *logs,
            gsize               max_log_bytes)
{
  program_name = program;
  die_logs = logs;
  die_log_bytes = max_log_bytes;
  setvbuf (stdout, NULL, _IOLBF, 0);
  g_unix_signal_add (SIGTERM, interrupted_cb, GINT_TO_POINTER (SIGTERM));
  g_unix_signal_add (SIGINT, interrupted_cb, GINT_TO_POINTER (SIGINT));
  g_unix_signal_add (SIGHUP, interrupted_cb, GINT_TO_POINTER (SIGHUP));
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

/**
 * bench_cleanup:
 *
 * Kills the processes bench_spawn_logged() started that were not
 * forgotten, the last started first (services before the bus), calls the
 * functions given to bench_at_cleanup(), the last given first, and removes
 * the temporary directory.
 */
void
bench_cleanup (void)
{
  for (int i = MAX_CHILDREN - 1; i >= 0; i--)
    if (children[i] != NULL)
      {
        g_subprocess_force_exit (children[i]);
        g_subprocess_wait (children[i], NULL, NULL);
        g_clear_object (&children[i]);
      }
  for (int i = MAX_CLEANUPS - 1; i >= 0; i--)
    if (cleanups[i] != NULL)
      {
        BenchCleanupFunc func = cleanups[i];

        /* once, even if it dies */
        cleanups[i] = NULL;
        func ();
      }
  if (tmpdir != NULL)
    rm_rf (tmpdir);
  g_clear_pointer (&tmpdir, g_free);
}

/**
 * bench_at_cleanup:
 * @func: what to call
 *
 * Has bench_cleanup(), and so bench_die(), call @func once, after killing
 * the processes it knows and before removing the temporary directory: for
 * what the benchmark started that bench_spawn_logged() does not track,
 * such as a server that detaches itself and keeps its files there.
 */
void
bench_at_cleanup (BenchCleanupFunc func)
{
  for (guint i = 0; i < MAX_CLEANUPS; i++)
    if (cleanups[i] == NULL)
      {
        cleanups[i] = func;
        return;
      }
  g_error ("%s: too many clean-up functions", program_name);
}

static void
print_log (const char *name)
{
  g_autofree char *path = NULL;
  g_autofree char *text = NULL;
  gsize len;

  if (tmpdir == NULL)
    return;
  path = g_build_filename (tmpdir, name, NULL);
  if (!g_file_get_contents (path, &text, NULL, NULL) || text[0] == '\0')
    return;
  len = strlen (text);
  g_printerr ("--- %s ---\n%s", name,
              die_log_bytes > 0 && len > die_log_bytes ? text + len - die_log_bytes : text);
}

/**
 * bench_die:
 * @format: a printf() format for the message
 * @...: its arguments
 *
 * Reports "PROGRAM: error: MESSAGE", shows the logs named to bench_init(),
 * kills what the benchmark started, removes the temporary directory and
 * exits 1.
 */
void
bench_die (const char *format,
           ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("%s: error: %s\n", program_name, message);
  for (guint i = 0; die_logs != NULL && die_logs[i] != NULL; i++)
    print_log (die_logs[i]);
  fflush (stdout);
  bench_cleanup ();
  exit (EXIT_FAILURE);
}

/**
 * bench_make_tmpdir:
 *
 * Creates the temporary directory, PROGRAM-XXXXXX under g_get_tmp_dir(),
 * mode 0700. It holds the logs, the configurations, the bus socket and
 * what the benchmark writes with bench_write_file().
 *
 * Returns: (transfer none): its path, valid until bench_cleanup()
 */
const char *
bench_make_tmpdir (void)
{
  g_autofree char *template = g_strdup_printf ("%s-XXXXXX", program_name);
  g_autoptr(GError) error = NULL;

  g_return_val_if_fail (tmpdir == NULL, tmpdir);
  tmpdir = g_dir_make_tmp (template, &error);
  if (tmpdir == NULL)
    bench_die ("%s", error->message);
  g_chmod (tmpdir, 0700);
  return tmpdir;
}

/**
 * bench_tmp_path:
 * @name: a file name
 *
 * Returns: (transfer full): the path of @name in the temporary directory
 */
char *
bench_tmp_path (const char *name)
{
  g_return_val_if_fail (tmpdir != NULL, NULL);
  return g_build_filename (tmpdir, name, NULL);
}

/**
 * bench_write_file:
 * @name: a file name
 * @contents: what to write
 *
 * Writes @contents to @name in the temporary directory, or dies.
 *
 * Returns: (transfer full): the file's path
 */
char *
bench_write_file (const char *name,
                  const char *contents)
{
  g_autofree char *path = bench_tmp_path (name);
  g_autoptr(GError) error = NULL;

  if (!g_file_set_contents (path, contents, -1, &error))
    bench_die ("%s", error->message);
  return g_steal_pointer (&path);
}

/**
 * bench_build_root:
 *
 * Returns: $BACKPLANE_BUILD_ROOT (set by `meson test --benchmark`), else
 *   the build tree this program was configured in
 */
const char *
bench_build_root (void)
{
  const char *root = g_getenv ("BACKPLANE_BUILD_ROOT");

  return root != NULL ? root : BP_BUILD_ROOT;
}

/**
 * bench_source_root:
 *
 * Returns: $BACKPLANE_SOURCE_ROOT, else the source tree this program was
 *   configured from
 */
const char *
bench_source_root (void)
{
  const char *root = g_getenv ("BACKPLANE_SOURCE_ROOT");

  return root != NULL ? root : BP_SOURCE_ROOT;
}

/* ------------------------------------------------------------------ */
/* Child processes                                                     */

/* Runs in the child between fork and exec: async-signal-safe only. */
static void
child_setup (gpointer user_data)
{
  /* Die with the benchmark even if it is SIGKILLed. */
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/**
 * bench_launcher_new:
 * @flags: the launcher's flags; with @log_name, none that redirect stderr
 * @log_name: (nullable): a log in the temporary directory
 *
 * A launcher whose processes die with the benchmark. With @log_name, their
 * stderr goes to that file, and their stdout too unless @flags pipe it.
 *
 * Returns: (transfer full): the launcher
 */
GSubprocessLauncher *
bench_launcher_new (GSubprocessFlags  flags,
                    const char       *log_name)
{
  g_autofree char *log_path = log_name != NULL ? bench_tmp_path (log_name) : NULL;
  GSubprocessLauncher *launcher;

  if (log_path != NULL && !(flags & G_SUBPROCESS_FLAGS_STDOUT_PIPE))
    flags |= G_SUBPROCESS_FLAGS_STDERR_MERGE;
  launcher = g_subprocess_launcher_new (flags);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  if (log_path != NULL && (flags & G_SUBPROCESS_FLAGS_STDOUT_PIPE))
    g_subprocess_launcher_set_stderr_file_path (launcher, log_path);
  else if (log_path != NULL)
    g_subprocess_launcher_set_stdout_file_path (launcher, log_path);
  return launcher;
}

static void
remember_child (GSubprocess *proc)
{
  for (guint i = 0; i < MAX_CHILDREN; i++)
    if (children[i] == NULL)
      {
        children[i] = g_object_ref (proc);
        return;
      }
  g_error ("%s: too many child processes", program_name);
}

/**
 * bench_spawn_logged:
 * @argv: (array zero-terminated=1): the command
 * @envp: (nullable) (array zero-terminated=1): its environment, %NULL for ours
 * @flags: as for bench_launcher_new()
 * @log_name: (nullable): as for bench_launcher_new()
 *
 * Starts a process that bench_cleanup() and bench_die() kill unless it is
 * forgotten first, or dies.
 *
 * Returns: (transfer full): the process
 */
GSubprocess *
bench_spawn_logged (const char * const  *argv,
                    char               **envp,
                    GSubprocessFlags     flags,
                    const char          *log_name)
{
  g_autoptr(GSubprocessLauncher) launcher = bench_launcher_new (flags, log_name);
  g_autoptr(GError) error = NULL;
  GSubprocess *proc;

  if (envp != NULL)
    g_subprocess_launcher_set_environ (launcher, envp);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  if (proc == NULL)
    bench_die ("cannot start %s: %s", argv[0], error->message);
  remember_child (proc);
  return proc;
}

/**
 * bench_forget_child:
 * @proc: a process from bench_spawn_logged()
 *
 * For a process that has exited: bench_cleanup() leaves it alone.
 */
void
bench_forget_child (GSubprocess *proc)
{
  for (guint i = 0; i < MAX_CHILDREN; i++)
    if (children[i] == proc)
      g_clear_object (&children[i]);
}

/**
 * bench_pid:
 * @proc: a running process
 *
 * Returns: its process id
 */
guint32
bench_pid (GSubprocess *proc)
{
  return (guint32) g_ascii_strtoull (g_subprocess_get_identifier (proc), NULL, 10);
}

/**
 * bench_check_log:
 * @label: the process, for the message ("backplaned")
 * @log_name: its log in the temporary directory
 *
 * Dies if the log holds a sanitizer report: under -Db_sanitize, a leak or
 * undefined behaviour is reported there when the process exits.
 */
void
bench_check_log (const char *label,
                 const char *log_name)
{
  g_autofree char *path = bench_tmp_path (log_name);
  g_autofree char *text = NULL;

  if (g_file_get_contents (path, &text, NULL, NULL) &&
      (strstr (text, "Sanitizer") != NULL || strstr (text, "runtime error:") != NULL))
    bench_die ("%s reported a sanitizer error (its log follows)", label);
}

/**
 * bench_start_server:
 * @argv: (array zero-terminated=1): a test server's command, such as
 *   `python3 tests/qdrant/qdrantserver.py --port 0`
 * @log_name: its log (stderr) in the temporary directory
 * @proc: (out) (transfer full): the process
 *
 * Starts one of the project's test servers, which print `LISTENING PORT`
 * once they are bound and exit at EOF on their stdin (held open by @proc).
 *
 * Returns: the port it listens on, on 127.0.0.1
 */
guint16
bench_start_server (const char * const  *argv,
                    const char          *log_name,
                    GSubprocess        **proc)
{
  g_autoptr(GDataInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  *proc = bench_spawn_logged (argv, NULL, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, log_name);
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (*proc));
  line = g_data_input_stream_read_line_utf8 (in, NULL, NULL, &error);
  if (line == NULL || !g_str_has_prefix (line, "LISTENING "))
    {
      g_autofree char *command = g_strjoinv (" ", (char **) argv);

      bench_die ("%s did not print LISTENING%s%s", command, error ? ": " : "", error ? error->message : "");
    }
  return (guint16) g_ascii_strtoull (line + strlen ("LISTENING "), NULL, 10);
}

/* ------------------------------------------------------------------ */
/* The main loop                                                       */

static gboolean
flag_timeout_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

/**
 * bench_iterate_until:
 * @flag: set by a callback
 * @timeout_ms: how long to wait at most
 *
 * Iterates the default main context until *@flag or @timeout_ms.
 *
 * Returns: *@flag
 */
gboolean
bench_iterate_until (const gboolean *flag,
                     guint           timeout_ms)
{
  gboolean timed_out = FALSE;
  guint id = g_timeout_add (timeout_ms, flag_timeout_cb, &timed_out);

  while (!*flag && !timed_out)
    g_main_context_iteration (NULL, TRUE);
  if (!timed_out)
    g_source_remove (id);
  return *flag;
}

/**
 * bench_iterate_for:
 * @ms: how long
 *
 * Sleeps while still dispatching (name watches, signals, replies).
 */
void
bench_iterate_for (guint ms)
{
  gboolean done = FALSE;

  bench_iterate_until (&done, ms);
}

/* ------------------------------------------------------------------ */
/* The private bus and backplaned                                      */

/**
 * bench_start_bus:
 * @pid: (out) (optional): its process id
 *
 * Starts a dbus-daemon that listens in the temporary directory, allows
 * everything and logs to dbus-daemon.log.
 *
 * Returns: (transfer full): its address
 */
char *
bench_start_bus (guint32 *pid)
{
  g_autofree char *conf = g_strdup_printf (BUS_CONFIG, tmpdir);
  g_autofree char *conf_path = bench_write_file ("bus.conf", conf);
  g_autofree char *conf_arg = g_strdup_printf ("--config-file=%s", conf_path);
  const char *argv[] = { "dbus-daemon", conf_arg, "--nofork", "--print-address", NULL };
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GDataInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  char *address;

  proc = bench_spawn_logged (argv, NULL, G_SUBPROCESS_FLAGS_STDOUT_PIPE, "dbus-daemon.log");
  if (pid != NULL)
    *pid = bench_pid (proc);
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  address = g_data_input_stream_read_line (in, NULL, NULL, &error);
  if (address == NULL)
    bench_die ("dbus-daemon printed no address%s%s", error ? ": " : "", error ? error->message : "");
  return address;
}

/**
 * bench_connect:
 * @address: the bus's address
 *
 * Returns: (transfer full): a connection to it, which does not exit the
 *   program when it closes
 */
GDBusConnection *
bench_connect (const char *address)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection;

  connection = g_dbus_connection_new_for_address_sync (address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  if (connection == NULL)
    bench_die ("cannot connect to the private bus: %s", error->message);
  g_dbus_connection_set_exit_on_close (connection, FALSE);
  return connection;
}

/**
 * bench_service_environ:
 * @extra_plugin_dir: (nullable): a directory to search for plugins after
 *   the build tree's
 *
 * The environment for backplaned (or a service standing in for it): ours,
 * with the plugins of the build tree ($BACKPLANE_PLUGIN_PATH if set), the
 * XDG directories in the temporary directory, and without the session bus
 * and GLib's debugging variables.
 *
 * Returns: (transfer full) (array zero-terminated=1): the environment
 */
char **
bench_service_environ (const char *extra_plugin_dir)
{
  char **envp = g_get_environ ();
  const char *plugin_env = g_getenv ("BACKPLANE_PLUGIN_PATH");
  g_autofree char *build_plugins = g_build_filename (bench_build_root (), "plugins", NULL);
  g_autofree char *plugins = g_strjoin (":", plugin_env != NULL ? plugin_env : build_plugins,
                                        extra_plugin_dir, NULL);

  envp = g_environ_setenv (envp, "BACKPLANE_PLUGIN_PATH", plugins, TRUE);
  envp = g_environ_setenv (envp, "XDG_CONFIG_HOME", tmpdir, TRUE);
  envp = g_environ_setenv (envp, "XDG_DATA_HOME", tmpdir, TRUE);
  envp = g_environ_setenv (envp, "XDG_STATE_HOME", tmpdir, TRUE);
  envp = g_environ_setenv (envp, "XDG_RUNTIME_DIR", tmpdir, TRUE);
  envp = g_environ_unsetenv (envp, "DBUS_SESSION_BUS_ADDRESS");
  envp = g_environ_unsetenv (envp, "G_DEBUG");
  envp = g_environ_unsetenv (envp, "G_MESSAGES_DEBUG");
  envp = g_environ_unsetenv (envp, "G_SLICE");
  return envp;
}

/**
 * bench_daemon_exe:
 *
 * Returns: (transfer full): backplaned in the build tree; dies if it is
 *   not built
 */
char *
bench_daemon_exe (void)
{
  char *exe = g_build_filename (bench_build_root (), "core", "daemon", "backplaned", NULL);

  if (!g_file_test (exe, G_FILE_TEST_IS_EXECUTABLE))
    bench_die ("%s is not built", exe);
  return exe;
}

static void
daemon_exited_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  daemon_exited = TRUE;
}

static void
daemon_name_appeared_cb (GDBusConnection *connection,
                         const char      *name,
                         const char      *owner,
                         gpointer         user_data)
{
  *(gboolean *) user_data = TRUE;
}

/**
 * bench_daemon_start:
 * @connection: a connection to the bus at @address
 * @address: the private bus's address
 * @config: backplaned's configuration, written to backplane.conf
 * @envp: (nullable) (array zero-terminated=1): its environment, %NULL for
 *   bench_service_environ (%NULL)
 *
 * Starts backplaned from the build tree, logging to backplaned.log, and
 * waits until it owns its bus name; dies if it exits first or takes more
 * than 30 s.
 */
void
bench_daemon_start (GDBusConnection  *connection,
                    const char       *address,
                    const char       *config,
                    char            **envp)
{
  g_autofree char *exe = bench_daemon_exe ();
  g_autofree char *config_path = bench_write_file ("backplane.conf", config);
  g_auto(GStrv) default_envp = NULL;
  const char *argv[] = { exe, "--config", config_path, "--address", address, NULL };
  gint64 deadline = g_get_monotonic_time () + START_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
  gboolean owned = FALSE;
  guint watch;

  g_return_if_fail (daemon_proc == NULL);
  if (envp == NULL)
    envp = default_envp = bench_service_environ (NULL);
  watch = g_bus_watch_name_on_connection (connection, BENCH_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                          daemon_name_appeared_cb, NULL, &owned, NULL);
  daemon_exited = FALSE;
  daemon_proc = bench_spawn_logged (argv, envp, G_SUBPROCESS_FLAGS_NONE, "backplaned.log");
  daemon_pid = bench_pid (daemon_proc);
  g_subprocess_wait_async (daemon_proc, NULL, daemon_exited_cb, NULL);
  while (!owned && !daemon_exited && g_get_monotonic_time () < deadline)
    bench_iterate_for (20);
  g_bus_unwatch_name (watch);
  if (daemon_exited)
    bench_die ("backplaned exited during start-up");
  if (!owned)
    bench_die ("backplaned did not own %s within %d s", BENCH_BUS_NAME, START_TIMEOUT_MS / 1000);
}

/**
 * bench_daemon_stop:
 *
 * Stops backplaned with SIGTERM; dies unless it exits with status 0 within
 * 30 s and without a sanitizer report in its log.
 */
void
bench_daemon_stop (void)
{
  g_return_if_fail (daemon_proc != NULL);
  g_subprocess_send_signal (daemon_proc, SIGTERM);
  if (!bench_iterate_until (&daemon_exited, STOP_TIMEOUT_MS))
    bench_die ("backplaned did not exit within %d s of SIGTERM", STOP_TIMEOUT_MS / 1000);
  if (!g_subprocess_get_if_exited (daemon_proc) || g_subprocess_get_exit_status (daemon_proc) != 0)
    bench_die ("backplaned did not exit cleanly on SIGTERM");
  bench_forget_child (daemon_proc);
  g_clear_object (&daemon_proc);
  daemon_pid = 0;
  bench_check_log ("backplaned", "backplaned.log");
}

/**
 * bench_daemon_pid:
 *
 * Returns: the process id of the backplaned bench_daemon_start() started
 */
guint32
bench_daemon_pid (void)
{
  return daemon_pid;
}

/**
 * bench_parse_loop_lag:
 * @reply: the reply to Properties.Get of Manager.LoopLag, `(v)`
 * @out: (out caller-allocates): the values
 *
 * Dies if a key is missing.
 */
void
bench_parse_loop_lag (GVariant     *reply,
                      BenchLoopLag *out)
{
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariantDict) dict = NULL;

  g_variant_get (reply, "(v)", &value);
  dict = g_variant_dict_new (value);
  if (!g_variant_dict_lookup (dict, "p50-us", "x", &out->p50_us) ||
      !g_variant_dict_lookup (dict, "p99-us", "x", &out->p99_us) ||
      !g_variant_dict_lookup (dict, "max-us", "x", &out->max_us) ||
      !g_variant_dict_lookup (dict, "samples", "t", &out->samples) ||
      !g_variant_dict_lookup (dict, "stalls-over-16ms", "t", &out->stalls))
    {
      g_autofree char *text = g_variant_print (value, TRUE);

      bench_die ("Manager.LoopLag lacks a key: %s", text);
    }
}

/**
 * bench_read_loop_lag:
 * @connection: a connection to the private bus
 * @wake_path: an object of backplaned's
 * @wake_iface: an interface of it
 * @wake_method: a method of that interface that takes no arguments
 * @out: (out caller-allocates): the values
 *
 * Reads backplaned's Manager.LoopLag. The property is refreshed at most
 * once a second, after loop activity: this waits out the second, wakes
 * the loop with a call of @wake_method, then reads it. Dies on an error.
 */
void
bench_read_loop_lag (GDBusConnection *connection,
                     const char      *wake_path,
                     const char      *wake_iface,
                     const char      *wake_method,
                     BenchLoopLag    *out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) wake = NULL;
  g_autoptr(GVariant) reply = NULL;

  bench_iterate_for (1100);
  wake = g_dbus_connection_call_sync (connection, BENCH_BUS_NAME, wake_path, wake_iface, wake_method, NULL, NULL,
                                      G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, NULL, &error);
  if (wake == NULL)
    bench_die ("%s.%s on %s: %s", wake_iface, wake_method, wake_path, error->message);
  bench_iterate_for (50);
  reply = g_dbus_connection_call_sync (connection, BENCH_BUS_NAME, BENCH_ROOT_PATH,
                                       "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", BENCH_MANAGER_IFACE, "LoopLag"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE,
                                       CALL_TIMEOUT_MS, NULL, &error);
  if (reply == NULL)
    bench_die ("reading Manager.LoopLag: %s", error->message);
  bench_parse_loop_lag (reply, out);
}

/* ------------------------------------------------------------------ */
/* The machine, /proc, statistics                                      */

static char *
first_line_of (const char *path,
               const char *prefix)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return g_strdup ("?");
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (prefix == NULL || g_str_has_prefix (lines[i], prefix))
      {
        const char *sep = lines[i] + (prefix != NULL ? strlen (prefix) : 0);
        g_autofree char *value = NULL;

        /* "key : value" (cpuinfo) or KEY="value" (os-release) */
        while (*sep == ' ' || *sep == '\t' || *sep == ':' || *sep == '=')
          sep++;
        value = g_strstrip (g_strdup (sep));
        return g_shell_unquote (value, NULL) ?: g_steal_pointer (&value);
      }
  return g_strdup ("?");
}

/**
 * bench_machine_line:
 *
 * Returns: (transfer full): "CPU, N CPUs, kernel RELEASE, OS, GLib X.Y.Z"
 */
char *
bench_machine_line (void)
{
  g_autofree char *cpu = first_line_of ("/proc/cpuinfo", "model name");
  g_autofree char *os = first_line_of ("/etc/os-release", "PRETTY_NAME");
  struct utsname uts;

  uname (&uts);
  return g_strdup_printf ("%s, %u CPUs, kernel %s, %s, GLib %u.%u.%u",
                          cpu, g_get_num_processors (), uts.release, os,
                          glib_major_version, glib_minor_version, glib_micro_version);
}

/**
 * bench_load_line:
 *
 * Other work on the machine skews everything: this says how much there was.
 *
 * Returns: (transfer full): /proc/loadavg, with a warning when the load
 *   is over half the CPUs
 */
char *
bench_load_line (void)
{
  g_autofree char *load = first_line_of ("/proc/loadavg", NULL);
  double one = g_ascii_strtod (load, NULL);

  return g_strdup_printf ("%s%s", load,
                          one > 0.5 * g_get_num_processors () ? " (busy machine: take the numbers with a grain of salt)" : "");
}

/**
 * bench_proc_status_kib:
 * @pid: a process
 * @key: a key of /proc/PID/status given in kB ("VmRSS", "VmHWM")
 *
 * Returns: its value, in KiB; dies if there is none
 */
guint64
bench_proc_status_kib (guint32     pid,
                       const char *key)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/status", pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    bench_die ("cannot read %s", path);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], key) && lines[i][strlen (key)] == ':')
      return g_ascii_strtoull (lines[i] + strlen (key) + 1, NULL, 10);
  bench_die ("no %s in %s", key, path);
}

/**
 * bench_proc_cpu_ticks:
 * @pid: a process
 *
 * Returns: the user + system CPU time of @pid itself (not of its children),
 *   in clock ticks (sysconf (_SC_CLK_TCK) a second); dies if unreadable
 */
guint64
bench_proc_cpu_ticks (guint32 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/stat", pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after;

  /* The command name may contain spaces: the fields start after its ')'. */
  if (!g_file_get_contents (path, &text, NULL, NULL) || (after = strrchr (text, ')')) == NULL)
    bench_die ("cannot read %s", path);
  fields = g_strsplit (after + 2, " ", -1);
  if (g_strv_length (fields) < 13)
    bench_die ("unexpected %s", path);
  /* fields[0] is stat field 3 (state): utime is 14, stime 15 */
  return g_ascii_strtoull (fields[11], NULL, 10) + g_ascii_strtoull (fields[12], NULL, 10);
}

static int
compare_double (const void *a,
                const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

/**
 * bench_median:
 * @values: (array length=n): the values, left as they are
 * @n: how many, at least 1
 *
 * Returns: the median of @values
 */
double
bench_median (const double *values,
              guint         n)
{
  g_autofree double *sorted = g_memdup2 (values, n * sizeof (double));

  qsort (sorted, n, sizeof (double), compare_double);
  return n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

/**
 * bench_range:
 * @values: (array length=n): the values
 * @n: how many, at least 1
 * @min: (out): the smallest of @values
 * @max: (out): the largest of @values
 */
void
bench_range (const double *values,
             guint         n,
             double       *min,
             double       *max)
{
  *min = *max = values[0];
  for (guint i = 1; i < n; i++)
    {
      *min = MIN (*min, values[i]);
      *max = MAX (*max, values[i]);
    }
}

/**
 * bench_compare_gint64:
 * @a: a #gint64
 * @b: another
 *
 * A comparison for qsort() and g_array_sort().
 *
 * Returns: < 0, 0 or > 0 as *@a is less than, equal to or greater than *@b
 */
int
bench_compare_gint64 (gconstpointer a,
                      gconstpointer b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return (x > y) - (x < y);
}
