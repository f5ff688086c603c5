/* bench-qdrant.c: the qdrant backend against the official JS client and raw HTTP
 *
 * Issue 7's benchmark. In one run, against one tests/qdrant/qdrantserver.py
 * (the project's Qdrant-compatible server, Python, request validation on),
 * it
 *
 *  1. writes a JSON Lines file of --points points (default 100,000) of
 *     dimension --dim (384): {"id": i, "vector": [six-decimal floats],
 *     "payload": {"n": i}};
 *  2. upserts it through backplaned (built tree, private dbus-daemon):
 *     Vectors.UpsertFromFd with the file's fd, batches of --batch (256),
 *     and reads the daemon's RSS before and its peak (VmHWM, reset first
 *     through /proc/PID/clear_refs) and RSS after;
 *  3. upserts the same file with the official @qdrant/js-client-rest
 *     (tests/qdrant/bench-js-upsert.mjs: stream the file, JSON.parse each
 *     line, client.upsert with wait), once with one request in flight (as
 *     backplaned sends them: in order, one at a time) and once with four;
 *  4. measures Vectors.Query round trips per second through D-Bus against
 *     a loop of the same POST /collections/{c}/points/query done directly
 *     with libsoup in this process, on a small collection so the transport
 *     and not the Python server's brute-force scoring shows (interleaved
 *     round pairs, medians).
 *
 * Each upsert goes into its own collection, which is counted (exactly
 * --points) and deleted afterwards so the server starts every run with the
 * same memory; the server's schema-violation log must stay empty. It
 * prints ratios, writes them to /tmp/bench-qdrant-results.md (or
 * --results FILE) and exits 0; it asserts nothing about time. Every process
 * it starts is killed on exit, on error and (PR_SET_PDEATHSIG) if it dies.
 *
 * Needs: python3, dbus-daemon; node and `npm ci --prefix tests/qdrant` for
 * the JS baseline (without them that part is reported as skipped).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#if defined(__has_include)
# if __has_include(<libsoup/soup.h>)
#  include <libsoup/soup.h>
#  define HAVE_SOUP 1
# endif
#endif

#ifndef HAVE_SOUP
int
main (int   argc,
      char *argv[])
{
  printf ("bench-qdrant: skipped: built without libsoup-3.0 (the qdrant plugin is disabled)\n");
  return 77;
}
#else

#define DAEMON_NAME   "org.backplane.Backplane1"
#define ROOT_PATH     "/org/backplane/Backplane1"
#define VEC_PATH      "/org/backplane/Backplane1/backend/vec"
#define VEC_IFACE     "org.backplane.Backplane1.Vectors"
#define MANAGER_IFACE "org.backplane.Backplane1.Manager"

#define START_TIMEOUT_MS  30000
#define CALL_TIMEOUT_MS   600000
#define RTT_POINTS        100
#define RTT_LIMIT         10

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

/* ------------------------------------------------------------------ */
/* Process bookkeeping and failure                                     */

#define MAX_CHILDREN 8

static GSubprocess *children[MAX_CHILDREN];
static char *tmpdir;

static void
forget_child (GSubprocess *proc)
{
  for (guint i = 0; i < MAX_CHILDREN; i++)
    if (children[i] == proc)
      g_clear_object (&children[i]);
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
  g_error ("bench-qdrant: too many child processes");
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

static void
cleanup_all (void)
{
  /* Services first, the bus last (it was started first). */
  for (int i = MAX_CHILDREN - 1; i >= 0; i--)
    if (children[i] != NULL)
      {
        g_subprocess_force_exit (children[i]);
        g_subprocess_wait (children[i], NULL, NULL);
        forget_child (children[i]);
      }
  if (tmpdir != NULL)
    rm_rf (tmpdir);
  g_clear_pointer (&tmpdir, g_free);
}

static void
print_log (const char *name)
{
  g_autofree char *path = NULL;
  g_autofree char *text = NULL;

  if (tmpdir == NULL)
    return;
  path = g_build_filename (tmpdir, name, NULL);
  if (g_file_get_contents (path, &text, NULL, NULL) && text[0] != '\0')
    {
      gsize len = strlen (text);

      /* the tail is what matters */
      g_printerr ("--- %s ---\n%s", name, len > 8192 ? text + len - 8192 : text);
    }
}

static void die (const char *format,
                 ...) G_GNUC_NORETURN G_GNUC_PRINTF (1, 2);

/* Reports, shows the services' logs, kills what we started, exits 1. */
static void
die (const char *format,
     ...)
{
  va_list args;
  char *message;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_printerr ("bench-qdrant: error: %s\n", message);
  g_free (message);
  print_log ("backplaned.log");
  print_log ("qdrantserver.log");
  print_log ("dbus-daemon.log");
  print_log ("node.log");
  fflush (stdout);
  cleanup_all ();
  exit (EXIT_FAILURE);
}

static gboolean
interrupted_cb (gpointer user_data)
{
  die ("interrupted by signal %d", GPOINTER_TO_INT (user_data));
}

/* Runs in the child between fork and exec: async-signal-safe only. */
static void
child_setup (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static GSubprocess *
spawn_logged (const char * const  *argv,
              char               **envp,
              GSubprocessFlags     flags,
              const char          *log_name)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (flags);
  g_autofree char *log_path = g_build_filename (tmpdir, log_name, NULL);
  g_autoptr(GError) error = NULL;
  GSubprocess *proc;

  if (envp != NULL)
    g_subprocess_launcher_set_environ (launcher, envp);
  if (!(flags & G_SUBPROCESS_FLAGS_STDOUT_PIPE))
    g_subprocess_launcher_set_stdout_file_path (launcher, log_path);
  g_subprocess_launcher_set_stderr_file_path (launcher, log_path);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  if (proc == NULL)
    die ("cannot start %s: %s", argv[0], error->message);
  remember_child (proc);
  return proc;
}

static guint32
proc_pid (GSubprocess *proc)
{
  return (guint32) g_ascii_strtoull (g_subprocess_get_identifier (proc), NULL, 10);
}

/* ------------------------------------------------------------------ */
/* Main-loop helpers                                                   */

static gboolean
flag_timeout_cb (gpointer data)
{
  *(gboolean *) data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
iterate_until (const gboolean *flag,
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

static void
iterate_for (guint ms)
{
  gboolean done = FALSE;

  iterate_until (&done, ms);
}

/* ------------------------------------------------------------------ */
/* /proc and the machine                                               */

/* Returns: the value of a "Key:  N kB" line of /proc/PID/status, in KiB */
static guint64
proc_status_kib (guint32     pid,
                 const char *key)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/status", pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    die ("cannot read %s", path);
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], key) && lines[i][strlen (key)] == ':')
      return g_ascii_strtoull (lines[i] + strlen (key) + 1, NULL, 10);
  die ("no %s in %s", key, path);
}

/* Resets VmHWM to the current RSS (Linux ≥ 4.0); FALSE if not allowed. */
static gboolean
proc_reset_peak (guint32 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/clear_refs", pid);
  int fd = g_open (path, O_WRONLY | O_CLOEXEC, 0);
  gboolean ok;

  if (fd < 0)
    return FALSE;
  ok = write (fd, "5", 1) == 1;
  close (fd);
  return ok;
}

/* Total CPU time (user + system) of a process, in seconds. */
static double
proc_cpu_seconds (guint32 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/stat", pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    die ("cannot read %s", path);
  /* the command name may contain spaces: fields start after its ')' */
  after = strrchr (text, ')');
  if (after == NULL)
    die ("unexpected %s", path);
  fields = g_strsplit (after + 2, " ", -1);
  if (g_strv_length (fields) < 13)
    die ("unexpected %s", path);
  /* fields[11] is utime, fields[12] stime (fields 14 and 15 of stat) */
  return (g_ascii_strtod (fields[11], NULL) + g_ascii_strtod (fields[12], NULL)) /
         (double) sysconf (_SC_CLK_TCK);
}

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

        while (*sep == ' ' || *sep == '\t' || *sep == ':' || *sep == '=')
          sep++;
        value = g_strstrip (g_strdup (sep));
        return g_shell_unquote (value, NULL) ?: g_steal_pointer (&value);
      }
  return g_strdup ("?");
}

static char *
machine_line (void)
{
  g_autofree char *cpu = first_line_of ("/proc/cpuinfo", "model name");
  g_autofree char *os = first_line_of ("/etc/os-release", "PRETTY_NAME");
  struct utsname uts;

  uname (&uts);
  return g_strdup_printf ("%s, %u CPUs, kernel %s, %s, GLib %u.%u.%u, libsoup %u.%u.%u",
                          cpu, g_get_num_processors (), uts.release, os,
                          glib_major_version, glib_minor_version, glib_micro_version,
                          soup_get_major_version (), soup_get_minor_version (),
                          soup_get_micro_version ());
}

static char *
load_line (void)
{
  g_autofree char *load = first_line_of ("/proc/loadavg", NULL);
  double one = g_ascii_strtod (load, NULL);

  return g_strdup_printf ("%s%s", load,
                          one > 0.5 * g_get_num_processors () ? " (busy machine: take the numbers with a grain of salt)" : "");
}

/* ------------------------------------------------------------------ */
/* The points file                                                     */

static guint64 rng_state = 0x9e3779b97f4a7c15ull;

static guint64
rng_next (void)
{
  /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

/* Appends a uniform value in [-0.5, 0.5) with six decimals, as text. */
static char *
put_component (char *p)
{
  gint64 k = (gint64) (rng_next () >> 40) % 1000000 - 500000;   /* −500000 … 499999 */
  guint64 a = (guint64) (k < 0 ? -k : k);

  if (k < 0)
    *p++ = '-';
  *p++ = '0';
  *p++ = '.';
  for (int d = 5; d >= 0; d--)
    {
      p[d] = (char) ('0' + a % 10);
      a /= 10;
    }
  return p + 6;
}

static void
fill_vector (double *v,
             guint   dim)
{
  for (guint i = 0; i < dim; i++)
    v[i] = (double) ((gint64) (rng_next () >> 40) % 1000000 - 500000) / 1e6;
}

/* Returns: the file size in bytes */
static guint64
write_points (const char *path,
              guint       n,
              guint       dim)
{
  FILE *f = fopen (path, "w");
  g_autofree char *line = g_malloc ((gsize) dim * 12 + 128);
  guint64 size = 0;

  if (f == NULL)
    die ("cannot create %s: %s", path, g_strerror (errno));
  setvbuf (f, NULL, _IOFBF, 1 << 20);
  for (guint i = 0; i < n; i++)
    {
      char *p = line + sprintf (line, "{\"id\":%u,\"vector\":[", i + 1);

      for (guint j = 0; j < dim; j++)
        {
          if (j > 0)
            *p++ = ',';
          p = put_component (p);
        }
      p += sprintf (p, "],\"payload\":{\"n\":%u}}\n", i);
      if (fwrite (line, 1, (gsize) (p - line), f) != (gsize) (p - line))
        die ("writing %s: %s", path, g_strerror (errno));
      size += (guint64) (p - line);
    }
  if (fclose (f) != 0)
    die ("writing %s: %s", path, g_strerror (errno));
  return size;
}

/* ------------------------------------------------------------------ */
/* The services                                                        */

static GSubprocess *bus_proc;
static GSubprocess *server_proc;
static GSubprocess *daemon_proc;
static gboolean daemon_exited;
static char *server_url;

/* Starts dbus-daemon on a socket in tmpdir. Returns: (transfer full): its address */
static char *
start_bus (void)
{
  g_autofree char *conf_path = g_build_filename (tmpdir, "bus.conf", NULL);
  g_autofree char *conf = g_strdup_printf (BUS_CONFIG, tmpdir);
  g_autofree char *conf_arg = g_strdup_printf ("--config-file=%s", conf_path);
  g_autoptr(GDataInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "dbus-daemon", conf_arg, "--nofork", "--print-address", NULL };
  char *address;

  if (!g_file_set_contents (conf_path, conf, -1, &error))
    die ("%s", error->message);
  bus_proc = spawn_logged (argv, NULL, G_SUBPROCESS_FLAGS_STDOUT_PIPE, "dbus-daemon.log");
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (bus_proc));
  address = g_data_input_stream_read_line (in, NULL, NULL, &error);
  if (address == NULL)
    die ("dbus-daemon printed no address%s%s", error ? ": " : "", error ? error->message : "");
  return address;
}

/* qdrantserver.py on a loopback port; it exits on EOF on its stdin. */
static void
start_server (const char *source_root)
{
  g_autofree char *script = NULL;
  g_autoptr(GDataInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  const char *python = g_getenv ("PYTHON");
  const char *env_script = g_getenv ("QDRANT_SERVER");
  const char *argv[] = { python != NULL ? python : "python3", NULL, "--port", "0", NULL };

  script = env_script != NULL ? g_strdup (env_script)
                              : g_build_filename (source_root, "tests", "qdrant", "qdrantserver.py", NULL);
  if (!g_file_test (script, G_FILE_TEST_EXISTS))
    die ("%s not found", script);
  argv[1] = script;
  server_proc = spawn_logged (argv, NULL, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                              "qdrantserver.log");
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (server_proc));
  line = g_data_input_stream_read_line (in, NULL, NULL, &error);
  if (line == NULL || !g_str_has_prefix (line, "LISTENING "))
    die ("qdrantserver.py did not print LISTENING%s%s", error ? ": " : "", error ? error->message : "");
  server_url = g_strdup_printf ("http://127.0.0.1:%s", line + strlen ("LISTENING "));
}

static void
daemon_exit_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  daemon_exited = TRUE;
}

static void
name_appeared_cb (GDBusConnection *connection,
                  const char      *name,
                  const char      *owner,
                  gpointer         user_data)
{
  *(gboolean *) user_data = TRUE;
}

static void
start_daemon (GDBusConnection *connection,
              const char      *build_root,
              const char      *address)
{
  g_autofree char *exe = g_build_filename (build_root, "core", "daemon", "backplaned", NULL);
  g_autofree char *config_path = g_build_filename (tmpdir, "backplane.conf", NULL);
  g_autofree char *plugins = g_build_filename (build_root, "plugins", NULL);
  g_autofree char *config = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) envp = g_get_environ ();
  const char *plugin_env = g_getenv ("BACKPLANE_PLUGIN_PATH");
  gboolean owned = FALSE;
  guint watch;
  const char *argv[] = { exe, "--config", config_path, "--address", address, NULL };

  if (!g_file_test (exe, G_FILE_TEST_IS_EXECUTABLE))
    die ("%s is not built", exe);
  config = g_strdup_printf ("[backend vec]\n"
                            "type=qdrant\n"
                            "url=%s\n"
                            /* one 256-point batch through Python takes ~0.1 s;
                             * be generous on a loaded machine */
                            "timeout-ms=300000\n",
                            server_url);
  if (!g_file_set_contents (config_path, config, -1, &error))
    die ("%s", error->message);
  envp = g_environ_setenv (envp, "BACKPLANE_PLUGIN_PATH", plugin_env != NULL ? plugin_env : plugins, TRUE);
  envp = g_environ_setenv (envp, "XDG_CONFIG_HOME", tmpdir, TRUE);
  envp = g_environ_setenv (envp, "XDG_DATA_HOME", tmpdir, TRUE);
  envp = g_environ_setenv (envp, "XDG_STATE_HOME", tmpdir, TRUE);
  envp = g_environ_setenv (envp, "XDG_RUNTIME_DIR", tmpdir, TRUE);
  envp = g_environ_unsetenv (envp, "DBUS_SESSION_BUS_ADDRESS");
  envp = g_environ_unsetenv (envp, "G_DEBUG");
  envp = g_environ_unsetenv (envp, "G_MESSAGES_DEBUG");
  /* The daemon talks to 127.0.0.1 only. */
  envp = g_environ_setenv (envp, "no_proxy", "*", TRUE);
  envp = g_environ_unsetenv (envp, "http_proxy");

  watch = g_bus_watch_name_on_connection (connection, DAEMON_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                          name_appeared_cb, NULL, &owned, NULL);
  daemon_proc = spawn_logged (argv, envp, G_SUBPROCESS_FLAGS_NONE, "backplaned.log");
  g_subprocess_wait_async (daemon_proc, NULL, daemon_exit_cb, NULL);
  {
    gint64 deadline = g_get_monotonic_time () + START_TIMEOUT_MS * 1000;

    while (!owned && !daemon_exited && g_get_monotonic_time () < deadline)
      iterate_for (20);
  }
  g_bus_unwatch_name (watch);
  if (daemon_exited)
    die ("backplaned exited during start-up");
  if (!owned)
    die ("backplaned did not own %s within %d s", DAEMON_NAME, START_TIMEOUT_MS / 1000);
}

static void
stop_daemon (void)
{
  g_subprocess_send_signal (daemon_proc, SIGTERM);
  if (!iterate_until (&daemon_exited, 30000))
    die ("backplaned did not exit within 30 s of SIGTERM");
  if (!g_subprocess_get_if_exited (daemon_proc) || g_subprocess_get_exit_status (daemon_proc) != 0)
    die ("backplaned did not exit cleanly on SIGTERM");
  forget_child (daemon_proc);
  g_clear_object (&daemon_proc);
  {
    g_autofree char *path = g_build_filename (tmpdir, "backplaned.log", NULL);
    g_autofree char *text = NULL;

    if (g_file_get_contents (path, &text, NULL, NULL) &&
        (strstr (text, "Sanitizer") != NULL || strstr (text, "runtime error:") != NULL))
      die ("backplaned reported a sanitizer error (its log follows)");
  }
}

/* ------------------------------------------------------------------ */
/* D-Bus and HTTP helpers                                              */

static GVariant *
vcall (GDBusConnection *connection,
       const char      *method,
       GVariant        *params,
       const char      *reply_type)
{
  g_autoptr(GError) error = NULL;
  GVariant *r = g_dbus_connection_call_sync (connection, DAEMON_NAME, VEC_PATH, VEC_IFACE, method, params,
                                             reply_type != NULL ? G_VARIANT_TYPE (reply_type) : NULL,
                                             G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, NULL, &error);

  if (r == NULL)
    die ("Vectors.%s: %s", method, error->message);
  return r;
}

static GVariant *
no_options (void)
{
  return g_variant_new ("a{sv}", NULL);
}

static void
create_collection (GDBusConnection *connection,
                   const char      *name,
                   guint            dim)
{
  g_autofree char *config = g_strdup_printf ("{\"vectors\":{\"size\":%u,\"distance\":\"Cosine\"}}", dim);

  g_variant_unref (vcall (connection, "CreateCollection", g_variant_new ("(ss)", name, config), NULL));
}

static guint64
count_points (GDBusConnection *connection,
              const char      *name)
{
  g_autoptr(GVariant) r = vcall (connection, "Count", g_variant_new ("(s@a{sv})", name, no_options ()), "(t)");
  guint64 n;

  g_variant_get (r, "(t)", &n);
  return n;
}

static void
delete_collection (GDBusConnection *connection,
                   const char      *name)
{
  g_variant_unref (vcall (connection, "DeleteCollection", g_variant_new ("(s)", name), NULL));
}

static char *
http_get (SoupSession *http,
          const char  *path)
{
  g_autofree char *uri = g_strconcat (server_url, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read (http, msg, NULL, &error);

  if (body == NULL)
    die ("GET %s: %s", path, error->message);
  return g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

/* The server checks every request body against the OpenAPI schema. */
static void
check_no_violations (SoupSession *http,
                     const char  *after)
{
  g_autofree char *v = http_get (http, "/__test/violations");

  g_strstrip (v);
  if (!g_str_equal (v, "[]"))
    die ("the server saw request bodies that violate the Qdrant schema after %s: %.500s", after, v);
}

typedef struct
{
  gint64  p50_us;
  gint64  p99_us;
  gint64  max_us;
  guint64 samples;
  guint64 stalls;
} LoopLag;

static void
read_loop_lag (GDBusConnection *connection,
               LoopLag         *out)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariantDict) dict = NULL;

  /* Refreshed at most once a second, after loop activity: wait it out,
   * wake the loop with one call, then read. */
  iterate_for (1100);
  g_variant_unref (vcall (connection, "ListCollections", NULL, "(as)"));
  iterate_for (50);
  reply = g_dbus_connection_call_sync (connection, DAEMON_NAME, ROOT_PATH, "org.freedesktop.DBus.Properties",
                                       "Get", g_variant_new ("(ss)", MANAGER_IFACE, "LoopLag"),
                                       G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE, 30000, NULL, &error);
  if (reply == NULL)
    die ("reading Manager.LoopLag: %s", error->message);
  g_variant_get (reply, "(v)", &value);
  dict = g_variant_dict_new (value);
  if (!g_variant_dict_lookup (dict, "p50-us", "x", &out->p50_us) ||
      !g_variant_dict_lookup (dict, "p99-us", "x", &out->p99_us) ||
      !g_variant_dict_lookup (dict, "max-us", "x", &out->max_us) ||
      !g_variant_dict_lookup (dict, "samples", "t", &out->samples) ||
      !g_variant_dict_lookup (dict, "stalls-over-16ms", "t", &out->stalls))
    die ("Manager.LoopLag lacks a key");
}

/* ------------------------------------------------------------------ */
/* 2. UpsertFromFd                                                      */

typedef struct
{
  double  seconds;
  double  daemon_cpu_s;
  double  server_cpu_s;
  guint64 rss_before_kib;
  guint64 hwm_kib;          /* peak during the upsert */
  guint64 rss_after_kib;
  gboolean hwm_reset;       /* VmHWM could be reset before */
  LoopLag lag_before;
  LoopLag lag_after;
} BpRun;

static void
run_backplane (GDBusConnection *connection,
               const char      *path,
               guint            n,
               guint            dim,
               guint            batch,
               BpRun           *out)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  guint32 pid = proc_pid (daemon_proc);
  GVariantDict opts;
  guint64 upserted = 0;
  double cpu0;
  gint64 t0;
  int fd, idx;

  create_collection (connection, "bp", dim);
  read_loop_lag (connection, &out->lag_before);
  fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    die ("cannot open %s: %s", path, g_strerror (errno));
  idx = g_unix_fd_list_append (fds, fd, &error);
  close (fd);
  if (idx < 0)
    die ("%s", error->message);
  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "batch-size", "u", batch);

  out->rss_before_kib = proc_status_kib (pid, "VmRSS");
  out->hwm_reset = proc_reset_peak (pid);
  cpu0 = proc_cpu_seconds (pid);
  out->server_cpu_s = proc_cpu_seconds (proc_pid (server_proc));
  t0 = g_get_monotonic_time ();
  r = g_dbus_connection_call_with_unix_fd_list_sync (connection, DAEMON_NAME, VEC_PATH, VEC_IFACE, "UpsertFromFd",
                                                     g_variant_new ("(sh@a{sv})", "bp", idx,
                                                                    g_variant_dict_end (&opts)),
                                                     G_VARIANT_TYPE ("(t)"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                                     CALL_TIMEOUT_MS, fds, NULL, NULL, &error);
  out->seconds = (double) (g_get_monotonic_time () - t0) / 1e6;
  if (r == NULL)
    die ("Vectors.UpsertFromFd: %s", error->message);
  out->daemon_cpu_s = proc_cpu_seconds (pid) - cpu0;
  out->server_cpu_s = proc_cpu_seconds (proc_pid (server_proc)) - out->server_cpu_s;
  out->hwm_kib = proc_status_kib (pid, "VmHWM");
  out->rss_after_kib = proc_status_kib (pid, "VmRSS");
  read_loop_lag (connection, &out->lag_after);
  g_variant_get (r, "(t)", &upserted);
  if (upserted != n)
    die ("UpsertFromFd reported %" G_GUINT64_FORMAT " points, not %u", upserted, n);
  if (count_points (connection, "bp") != n)
    die ("collection bp holds %" G_GUINT64_FORMAT " points, not %u", count_points (connection, "bp"), n);
  delete_collection (connection, "bp");
}

/* ------------------------------------------------------------------ */
/* 3. The official JS client                                            */

typedef struct
{
  gboolean ran;
  char    *skipped;        /* (nullable) why not */
  double   seconds;        /* the script's own: first line read → last answer */
  double   wall_seconds;   /* including node's start-up */
  double   rss_peak_mib;
  double   server_cpu_s;
} JsRun;

static void
run_js (GDBusConnection *connection,
        const char      *source_root,
        const char      *path,
        guint            n,
        guint            dim,
        guint            batch,
        guint            concurrency,
        JsRun           *out)
{
  g_autofree char *node = g_find_program_in_path ("node");
  g_autofree char *script = g_build_filename (source_root, "tests", "qdrant", "bench-js-upsert.mjs", NULL);
  g_autofree char *module = g_build_filename (source_root, "tests", "qdrant", "node_modules", "@qdrant",
                                              "js-client-rest", "package.json", NULL);
  g_autofree char *collection = g_strdup_printf ("js%u", concurrency);
  g_autofree char *batch_text = g_strdup_printf ("%u", batch);
  g_autofree char *conc_text = g_strdup_printf ("%u", concurrency);
  g_autofree char *stdout_text = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { node, script, "--url", server_url, "--collection", collection, "--file", path,
                         "--batch", batch_text, "--concurrency", conc_text, NULL };
  const char *p;
  gint64 t0;

  memset (out, 0, sizeof *out);
  if (node == NULL)
    {
      out->skipped = g_strdup ("node is not installed");
      return;
    }
  if (!g_file_test (module, G_FILE_TEST_EXISTS))
    {
      out->skipped = g_strdup ("@qdrant/js-client-rest is not installed (npm ci --prefix tests/qdrant)");
      return;
    }
  create_collection (connection, collection, dim);
  out->server_cpu_s = proc_cpu_seconds (proc_pid (server_proc));
  t0 = g_get_monotonic_time ();
  proc = spawn_logged (argv, NULL, G_SUBPROCESS_FLAGS_STDOUT_PIPE, "node.log");
  if (!g_subprocess_communicate_utf8 (proc, NULL, NULL, &stdout_text, NULL, &error))
    die ("node: %s", error->message);
  out->wall_seconds = (double) (g_get_monotonic_time () - t0) / 1e6;
  out->server_cpu_s = proc_cpu_seconds (proc_pid (server_proc)) - out->server_cpu_s;
  forget_child (proc);
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0)
    die ("bench-js-upsert.mjs failed (its log follows)");
  /* {"points":N,"seconds":S,"requests":R,"rss_peak_mib":M} */
  if ((p = strstr (stdout_text, "\"points\":")) == NULL || g_ascii_strtoull (p + 9, NULL, 10) != n)
    die ("bench-js-upsert.mjs did not upsert %u points: %s", n, stdout_text);
  if ((p = strstr (stdout_text, "\"seconds\":")) == NULL)
    die ("bench-js-upsert.mjs printed no time: %s", stdout_text);
  out->seconds = g_ascii_strtod (p + 10, NULL);
  if ((p = strstr (stdout_text, "\"rss_peak_mib\":")) != NULL)
    out->rss_peak_mib = g_ascii_strtod (p + 15, NULL);
  if (count_points (connection, collection) != n)
    die ("collection %s holds %" G_GUINT64_FORMAT " points, not %u", collection,
         count_points (connection, collection), n);
  delete_collection (connection, collection);
  out->ran = TRUE;
}

static double
children_cpu_seconds (void)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/stat", (guint) getpid ());
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after;

  /* cutime and cstime: fields 16 and 17, of reaped children */
  if (!g_file_get_contents (path, &text, NULL, NULL) || (after = strrchr (text, ')')) == NULL)
    return 0;
  fields = g_strsplit (after + 2, " ", -1);
  if (g_strv_length (fields) < 15)
    return 0;
  return (g_ascii_strtod (fields[13], NULL) + g_ascii_strtod (fields[14], NULL)) /
         (double) sysconf (_SC_CLK_TCK);
}

/* ------------------------------------------------------------------ */
/* 4. Query round trips                                                 */

static int
compare_double (const void *a,
                const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return (x > y) - (x < y);
}

static double
median (double *values,
        guint   n)
{
  qsort (values, n, sizeof (double), compare_double);
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

typedef struct
{
  double dbus_per_s;     /* medians over rounds */
  double http_per_s;
  double ping_us;        /* Backend.Ping round trip: the bus alone */
  double daemon_cpu_us;  /* backplaned's CPU time per Query */
  double ratio;          /* median over round pairs of dbus/http throughput */
  double dbus_min, dbus_max, http_min, http_max;
  guint  rounds, calls;
} QueryResult;

/* Returns: elapsed µs for @calls sequential Vectors.Query calls */
static gint64
query_round_dbus (GDBusConnection *connection,
                  GVariant        *vector,
                  guint            calls)
{
  gint64 t0 = g_get_monotonic_time ();

  for (guint i = 0; i < calls; i++)
    {
      GVariantDict opts;
      g_autoptr(GVariant) r = NULL;
      g_autoptr(GVariant) hits = NULL;

      g_variant_dict_init (&opts, NULL);
      g_variant_dict_insert (&opts, "limit", "u", RTT_LIMIT);
      r = vcall (connection, "Query", g_variant_new ("(s@ad@a{sv})", "rtt", vector, g_variant_dict_end (&opts)),
                 "(a(sds))");
      hits = g_variant_get_child_value (r, 0);
      if (g_variant_n_children (hits) != RTT_LIMIT)
        die ("Query returned %" G_GSIZE_FORMAT " hits, not %d", g_variant_n_children (hits), RTT_LIMIT);
    }
  return g_get_monotonic_time () - t0;
}

/* Returns: elapsed µs for @calls sequential Backend.Ping calls (no I/O) */
static gint64
ping_round (GDBusConnection *connection,
            guint            calls)
{
  gint64 t0 = g_get_monotonic_time ();

  for (guint i = 0; i < calls; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) r = g_dbus_connection_call_sync (connection, DAEMON_NAME, VEC_PATH,
                                                           "org.backplane.Backplane1.Backend", "Ping", NULL,
                                                           NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START, 30000,
                                                           NULL, &error);

      if (r == NULL)
        die ("Backend.Ping: %s", error->message);
    }
  return g_get_monotonic_time () - t0;
}

/* The same request done directly: POST, read the whole answer, check it. */
static gint64
query_round_http (SoupSession *http,
                  const char  *uri,
                  GBytes      *body,
                  guint        calls)
{
  gint64 t0 = g_get_monotonic_time ();

  for (guint i = 0; i < calls; i++)
    {
      g_autoptr(SoupMessage) msg = soup_message_new ("POST", uri);
      g_autoptr(GBytes) reply = NULL;
      g_autoptr(GError) error = NULL;

      /* a read: may go over the kept-alive connection (as the plugin's do) */
      soup_message_add_flags (msg, SOUP_MESSAGE_IDEMPOTENT);
      soup_message_set_request_body_from_bytes (msg, "application/json", body);
      reply = soup_session_send_and_read (http, msg, NULL, &error);
      if (reply == NULL)
        die ("POST %s: %s", uri, error->message);
      if (soup_message_get_status (msg) != SOUP_STATUS_OK)
        die ("POST %s: HTTP %u", uri, soup_message_get_status (msg));
    }
  return g_get_monotonic_time () - t0;
}

static void
run_queries (GDBusConnection *connection,
             SoupSession     *http,
             guint            dim,
             guint            rounds,
             guint            calls,
             QueryResult     *out)
{
  g_autofree double *v = g_new (double, dim);
  g_autofree double *dbus_rate = g_new (double, rounds);
  g_autofree double *http_rate = g_new (double, rounds);
  g_autofree double *ratio = g_new (double, rounds);
  g_autofree double *ping = g_new (double, rounds);
  g_autofree double *cpu = g_new (double, rounds);
  guint32 daemon_pid = proc_pid (daemon_proc);
  g_autofree char *uri = g_strconcat (server_url, "/collections/rtt/points/query", NULL);
  g_autoptr(GVariant) vector = NULL;
  g_autoptr(GBytes) body = NULL;
  GVariantBuilder points;
  GString *json;

  /* The collection: RTT_POINTS points, so scoring stays small. */
  create_collection (connection, "rtt", dim);
  g_variant_builder_init (&points, G_VARIANT_TYPE ("a(sads)"));
  for (guint i = 0; i < RTT_POINTS; i++)
    {
      g_autofree char *id = g_strdup_printf ("%u", i + 1);
      g_autofree char *payload = g_strdup_printf ("{\"n\":%u}", i);

      fill_vector (v, dim);
      g_variant_builder_add (&points, "(s@ads)", id,
                             g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, v, dim, sizeof (double)),
                             payload);
    }
  g_variant_unref (vcall (connection, "Upsert", g_variant_new ("(sa(sads)@a{sv})", "rtt", &points, no_options ()),
                          "(s)"));

  /* One query vector for both; the direct body is what the plugin sends. */
  fill_vector (v, dim);
  vector = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, v, dim, sizeof (double)));
  json = g_string_new ("{\"query\":[");
  for (guint i = 0; i < dim; i++)
    {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];

      if (i > 0)
        g_string_append_c (json, ',');
      g_string_append (json, g_ascii_dtostr (buf, sizeof buf, v[i]));
    }
  g_string_append_printf (json, "],\"limit\":%d,\"with_payload\":true}", RTT_LIMIT);
  body = g_string_free_to_bytes (json);

  /* warm-up: connections, caches */
  query_round_dbus (connection, vector, calls / 4 + 1);
  query_round_http (http, uri, body, calls / 4 + 1);
  for (guint r = 0; r < rounds; r++)
    {
      gint64 d, h;
      double c0;

      /* alternate who goes first */
      if (r % 2 == 0)
        {
          c0 = proc_cpu_seconds (daemon_pid);
          d = query_round_dbus (connection, vector, calls);
          cpu[r] = (proc_cpu_seconds (daemon_pid) - c0) * 1e6 / calls;
          h = query_round_http (http, uri, body, calls);
        }
      else
        {
          h = query_round_http (http, uri, body, calls);
          c0 = proc_cpu_seconds (daemon_pid);
          d = query_round_dbus (connection, vector, calls);
          cpu[r] = (proc_cpu_seconds (daemon_pid) - c0) * 1e6 / calls;
        }
      ping[r] = (double) ping_round (connection, calls) / calls;
      dbus_rate[r] = calls / ((double) d / 1e6);
      http_rate[r] = calls / ((double) h / 1e6);
      ratio[r] = dbus_rate[r] / http_rate[r];
    }
  out->rounds = rounds;
  out->calls = calls;
  out->ratio = median (ratio, rounds);
  out->ping_us = median (ping, rounds);
  out->daemon_cpu_us = median (cpu, rounds);
  out->dbus_per_s = median (dbus_rate, rounds);
  out->dbus_min = dbus_rate[0];
  out->dbus_max = dbus_rate[rounds - 1];
  out->http_per_s = median (http_rate, rounds);
  out->http_min = http_rate[0];
  out->http_max = http_rate[rounds - 1];
  delete_collection (connection, "rtt");
}

/* ------------------------------------------------------------------ */

static char *
format_lag (const LoopLag *before,
            const LoopLag *after)
{
  return g_strdup_printf ("p50 %" G_GINT64_FORMAT " µs, p99 %" G_GINT64_FORMAT " µs, max %.1f ms "
                          "(%.1f ms before), stalls > 16 ms during the upsert: %" G_GUINT64_FORMAT,
                          after->p50_us, after->p99_us, after->max_us / 1000.0, before->max_us / 1000.0,
                          after->stalls - before->stalls);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(SoupSession) http = NULL;
  g_autofree char *address = NULL;
  g_autofree char *points_path = NULL;
  g_autofree char *machine = NULL;
  g_autofree char *load_start = NULL;
  g_autofree char *load_end = NULL;
  g_autofree char *results_path = NULL;
  const char *build_root = g_getenv ("BACKPLANE_BUILD_ROOT");
  const char *source_root = g_getenv ("BACKPLANE_SOURCE_ROOT");
  int n_points = 100000, dim = 384, batch = 256, rounds = 7, calls = 200;
  gboolean no_js = FALSE;
  GOptionEntry entries[] = {
    { "points", 'n', 0, G_OPTION_ARG_INT, &n_points, "Points to upsert (default 100000)", "N" },
    { "dim", 'd', 0, G_OPTION_ARG_INT, &dim, "Vector dimension (default 384)", "D" },
    { "batch", 'b', 0, G_OPTION_ARG_INT, &batch, "Points per request (default 256)", "N" },
    { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds, "Query round pairs (default 7)", "N" },
    { "calls", 'c', 0, G_OPTION_ARG_INT, &calls, "Queries per round (default 200)", "N" },
    { "no-js", 0, 0, G_OPTION_ARG_NONE, &no_js, "Skip the JS client baseline", NULL },
    { "results", 0, 0, G_OPTION_ARG_FILENAME, &results_path,
      "Write the table here (default /tmp/bench-qdrant-results.md)", "FILE" },
    { NULL }
  };
  BpRun bp = { 0 };
  JsRun js[2] = { { 0 } };
  guint js_conc[2] = { 1, 4 };
  double js_cpu[2] = { 0, 0 };
  QueryResult q = { 0 };
  guint64 file_size;
  gint64 t_start = g_get_monotonic_time (), t0;
  double gen_s;
  GString *md;

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
                                "UpsertFromFd through backplaned vs the official JS client, and Vectors.Query "
                                "round trips vs direct libsoup, against tests/qdrant/qdrantserver.py.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-qdrant: %s\n", error->message);
      return 2;
    }
  n_points = CLAMP (n_points, 1, 10000000);
  dim = CLAMP (dim, 1, 4096);
  batch = CLAMP (batch, 1, 10000);
  rounds = CLAMP (rounds, 1, 1000);
  calls = CLAMP (calls, 1, 1000000);
  if (results_path == NULL)
    results_path = g_strdup ("/tmp/bench-qdrant-results.md");
  if (build_root == NULL)
    build_root = BP_BUILD_ROOT;
  if (source_root == NULL)
    source_root = BP_SOURCE_ROOT;

  setvbuf (stdout, NULL, _IOLBF, 0);
  g_unix_signal_add (SIGTERM, interrupted_cb, GINT_TO_POINTER (SIGTERM));
  g_unix_signal_add (SIGINT, interrupted_cb, GINT_TO_POINTER (SIGINT));
  g_unix_signal_add (SIGHUP, interrupted_cb, GINT_TO_POINTER (SIGHUP));

  tmpdir = g_dir_make_tmp ("bench-qdrant-XXXXXX", &error);
  if (tmpdir == NULL)
    die ("%s", error->message);
  g_chmod (tmpdir, 0700);

  machine = machine_line ();
  load_start = load_line ();
  printf ("machine: %s\n", machine);
  printf ("load average at start: %s\n", load_start);

  /* 1. the file */
  points_path = g_build_filename (tmpdir, "points.jsonl", NULL);
  t0 = g_get_monotonic_time ();
  file_size = write_points (points_path, (guint) n_points, (guint) dim);
  gen_s = (double) (g_get_monotonic_time () - t0) / 1e6;
  printf ("points file: %d points × %d dimensions, %.1f MiB of JSON Lines (written in %.1f s)\n",
          n_points, dim, file_size / 1048576.0, gen_s);

  /* the services */
  address = start_bus ();
  connection = g_dbus_connection_new_for_address_sync (address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  if (connection == NULL)
    die ("cannot connect to the private bus: %s", error->message);
  g_dbus_connection_set_exit_on_close (connection, FALSE);
  start_server (source_root);
  start_daemon (connection, build_root, address);
  http = soup_session_new_with_options ("max-conns", 1, "max-conns-per-host", 1, "timeout", 300, NULL);
  /* the server is on 127.0.0.1: no proxy from the environment */
  soup_session_set_proxy_resolver (http, NULL);

  /* 2. backplaned */
  run_backplane (connection, points_path, (guint) n_points, (guint) dim, (guint) batch, &bp);
  check_no_violations (http, "UpsertFromFd");
  printf ("backplaned UpsertFromFd: %.2f s = %.0f points/s (daemon CPU %.2f s, server CPU %.2f s); daemon RSS "
          "%.1f MiB before, peak %.1f MiB%s, %.1f MiB after: growth %.1f MiB (goal < 50 MiB)\n",
          bp.seconds, n_points / bp.seconds, bp.daemon_cpu_s, bp.server_cpu_s, bp.rss_before_kib / 1024.0,
          bp.hwm_kib / 1024.0,
          bp.hwm_reset ? "" : " (VmHWM since start-up: clear_refs refused)", bp.rss_after_kib / 1024.0,
          ((double) MAX (bp.hwm_kib, bp.rss_after_kib) - (double) bp.rss_before_kib) / 1024.0);
  {
    g_autofree char *lag = format_lag (&bp.lag_before, &bp.lag_after);

    printf ("  backplaned loop lag: %s\n", lag);
  }

  /* 3. the JS client */
  for (guint k = 0; k < G_N_ELEMENTS (js); k++)
    {
      double c0 = children_cpu_seconds ();

      if (no_js)
        {
          js[k].skipped = g_strdup ("--no-js");
          continue;
        }
      run_js (connection, source_root, points_path, (guint) n_points, (guint) dim, (guint) batch, js_conc[k],
              &js[k]);
      if (!js[k].ran)
        {
          printf ("JS client: skipped: %s\n", js[k].skipped);
          break;
        }
      js_cpu[k] = children_cpu_seconds () - c0;
      check_no_violations (http, "the JS client");
      printf ("@qdrant/js-client-rest, %u request%s in flight: %.2f s = %.0f points/s (%.2f s with node's "
              "start-up; node CPU %.2f s, server CPU %.2f s, node peak RSS %.0f MiB); backplaned is %.2f× as fast\n",
              js_conc[k], js_conc[k] == 1 ? "" : "s", js[k].seconds, n_points / js[k].seconds,
              js[k].wall_seconds, js_cpu[k], js[k].server_cpu_s, js[k].rss_peak_mib, js[k].seconds / bp.seconds);
    }

  /* 4. Query round trips */
  run_queries (connection, http, (guint) dim, (guint) rounds, (guint) calls, &q);
  check_no_violations (http, "the queries");
  printf ("Vectors.Query round trips (collection of %d points × %d, limit %d, one at a time; %u round pairs of "
          "%u calls): through D-Bus %.0f/s (%.0f µs each), direct libsoup %.0f/s (%.0f µs each): ratio %.2f\n",
          RTT_POINTS, dim, RTT_LIMIT, q.rounds, q.calls, q.dbus_per_s, 1e6 / q.dbus_per_s, q.http_per_s,
          1e6 / q.http_per_s, q.ratio);
  printf ("  D-Bus adds %.0f µs a query: a Backend.Ping round trip (the bus alone) takes %.0f µs, backplaned "
          "spends %.0f µs of CPU a query (clock ticks: coarse); rounds ranged %.0f–%.0f vs %.0f–%.0f/s\n",
          1e6 / q.dbus_per_s - 1e6 / q.http_per_s, q.ping_us, q.daemon_cpu_us, q.dbus_min, q.dbus_max,
          q.http_min, q.http_max);

  load_end = load_line ();
  printf ("load average at end: %s\n", load_end);
  printf ("total %.0f s\n", (double) (g_get_monotonic_time () - t_start) / 1e6);

  /* the table */
  md = g_string_new (NULL);
  g_string_append_printf (md, "# bench-qdrant results\n\n"
                          "Machine: %s  \nLoad average: %s (start), %s (end)  \n"
                          "Server: tests/qdrant/qdrantserver.py (Python, request validation on), loopback.  \n"
                          "Workload: %d points × %d dimensions, %.1f MiB of JSON Lines, batches of %d.\n\n",
                          machine, load_start, load_end, n_points, dim, file_size / 1048576.0, batch);
  g_string_append (md, "| Upsert of the file | seconds | points/s | vs backplaned |\n|---|---:|---:|---:|\n");
  g_string_append_printf (md, "| backplaned Vectors.UpsertFromFd (fd passed, one request at a time) | %.2f | %.0f | 1.00 |\n",
                          bp.seconds, n_points / bp.seconds);
  for (guint k = 0; k < G_N_ELEMENTS (js); k++)
    if (js[k].ran)
      g_string_append_printf (md, "| @qdrant/js-client-rest, %u in flight | %.2f | %.0f | backplaned %.2f× as fast |\n",
                              js_conc[k], js[k].seconds, n_points / js[k].seconds, js[k].seconds / bp.seconds);
    else if (k == 0)
      g_string_append_printf (md, "| @qdrant/js-client-rest | skipped: %s | | |\n", js[k].skipped);
  g_string_append_printf (md, "\nbackplaned during the upsert: RSS %.1f MiB before, peak %.1f MiB, %.1f MiB after "
                          "(growth %.1f MiB, goal < 50 MiB); daemon CPU %.2f s; loop lag p99 %" G_GINT64_FORMAT
                          " µs, max %.1f ms, stalls > 16 ms: %" G_GUINT64_FORMAT ".\n",
                          bp.rss_before_kib / 1024.0, bp.hwm_kib / 1024.0, bp.rss_after_kib / 1024.0,
                          ((double) MAX (bp.hwm_kib, bp.rss_after_kib) - (double) bp.rss_before_kib) / 1024.0,
                          bp.daemon_cpu_s, bp.lag_after.p99_us, bp.lag_after.max_us / 1000.0,
                          bp.lag_after.stalls - bp.lag_before.stalls);
  g_string_append_printf (md, "\n| Query round trips (%d points, limit %d, sequential) | per second | µs each |\n"
                          "|---|---:|---:|\n"
                          "| through D-Bus (Vectors.Query) | %.0f | %.0f |\n"
                          "| direct libsoup POST /points/query | %.0f | %.0f |\n"
                          "| ratio D-Bus / direct | %.2f | |\n"
                          "\nD-Bus adds %.0f µs a query; a Backend.Ping round trip through the bus takes %.0f µs; "
                          "backplaned spends about %.0f µs of CPU a query.\n",
                          RTT_POINTS, RTT_LIMIT, q.dbus_per_s, 1e6 / q.dbus_per_s, q.http_per_s, 1e6 / q.http_per_s,
                          q.ratio, 1e6 / q.dbus_per_s - 1e6 / q.http_per_s, q.ping_us, q.daemon_cpu_us);
  if (!g_file_set_contents (results_path, md->str, (gssize) md->len, &error))
    g_printerr ("bench-qdrant: cannot write %s: %s\n", results_path, error->message);
  else
    printf ("results written to %s\n", results_path);
  g_string_free (md, TRUE);

  stop_daemon ();
  g_dbus_connection_close_sync (connection, NULL, NULL);
  g_clear_object (&connection);
  for (guint k = 0; k < G_N_ELEMENTS (js); k++)
    g_free (js[k].skipped);
  g_free (server_url);
  cleanup_all ();
  return EXIT_SUCCESS;
}

#endif /* HAVE_SOUP */
