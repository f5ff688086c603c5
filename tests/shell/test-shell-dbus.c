/* test-shell-dbus.c: the shell backend through backplaned on a private bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib-unix.h>

#include "bp-test-daemon.h"

#define BUS_NAME     "org.backplane.Backplane1"
#define SHELL_PATH   "/org/backplane/Backplane1/backend/shell"
#define SHELL_IFACE  "org.backplane.Backplane1.Shell"
#define PROC_IFACE   "org.backplane.Backplane1.Process"
#define ERROR_PREFIX "org.backplane.Backplane1.Error."
#define WAIT_MS      60000

static const char config[] =
  "[backend shell]\n"
  "type=shell\n"
  "allow=echo;cat;sh;sleep;true\n"
  "max-processes=3\n"
  "max-processes-per-caller=3\n"
  "kill-grace-ms=200\n"
  "max-output=100000\n";

/* Objects of exited processes go away on their own after a second. */
static const char config_linger[] =
  "[backend shell]\n"
  "type=shell\n"
  "allow=true\n"
  "process-linger-ms=1000\n";

static gboolean
wake_cb (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

/* bp_test_wait_until() sleeps until an event; conditions that poll /proc or
 * the bus need a periodic wake-up. */
static gboolean
wait_until (gboolean (*condition) (gpointer),
            gpointer   data)
{
  guint wake = g_timeout_add (20, wake_cb, NULL);
  gboolean ok = bp_test_wait_until (condition, data, WAIT_MS);

  g_source_remove (wake);
  return ok;
}

static GVariant *
shell_call (GDBusConnection  *connection,
            const char       *path,
            const char       *method,
            GVariant         *params,
            const char       *reply_type,
            GUnixFDList      *fds,
            GError          **error)
{
  const char *iface = g_str_has_prefix (path, SHELL_PATH) ? SHELL_IFACE : PROC_IFACE;

  return g_dbus_connection_call_with_unix_fd_list_sync (connection, BUS_NAME, path, iface, method, params,
                                                        reply_type ? G_VARIANT_TYPE (reply_type) : NULL,
                                                        G_DBUS_CALL_FLAGS_NONE, 30000, fds, NULL, NULL, error);
}

static GVariant *
run (BpTestDaemon  *t,
     const char    *argv0,
     GVariant      *options,
     GError       **error,
     ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  const char *arg;
  va_list ap;

  g_ptr_array_add (args, (gpointer) argv0);
  va_start (ap, error);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  if (options == NULL)
    options = g_variant_new ("a{sv}", NULL);
  return shell_call (t->connection, SHELL_PATH, "Run",
                     g_variant_new ("(^as@a{sv})", (char **) args->pdata, options),
                     "(iiayay)", NULL, error);
}

static void
assert_dbus_error (GError     *error,
                   const char *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_test_message ("%s: %s", remote, error->message);
  g_assert_cmpstr (remote, ==, name);
}

static void
assert_ay (GVariant   *value,
           const char *expected)
{
  gsize len;
  const char *data = g_variant_get_fixed_array (value, &len, 1);

  g_assert_cmpmem (data, len, expected, strlen (expected));
}

/* ------------------------------------------------------------------------ */

static void
test_run (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) out = NULL;
  g_autoptr(GVariant) err = NULL;
  g_autofree char *state = bp_test_daemon_backend_state (t, "shell", NULL);
  GVariantBuilder options;
  int exit_code, term_signal;

  g_assert_cmpstr (state, ==, "ready");

  reply = run (t, "echo", NULL, &error, "hello", "world", NULL);
  g_assert_no_error (error);
  g_variant_get (reply, "(ii@ay@ay)", &exit_code, &term_signal, &out, &err);
  g_assert_cmpint (exit_code, ==, 0);
  g_assert_cmpint (term_signal, ==, 0);
  assert_ay (out, "hello world\n");
  assert_ay (err, "");
  g_clear_pointer (&reply, g_variant_unref);
  g_clear_pointer (&out, g_variant_unref);
  g_clear_pointer (&err, g_variant_unref);

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "stdin",
                         g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "in\0put", 6, 1));
  g_variant_builder_add (&options, "{sv}", "env", g_variant_new_parsed ("{'X': 'y'}"));
  g_variant_builder_add (&options, "{sv}", "cwd", g_variant_new_string ("/"));
  reply = run (t, "sh", g_variant_builder_end (&options), &error,
               "-c", "cat; echo \"$X $(pwd)\" >&2; exit 4", NULL);
  g_assert_no_error (error);
  g_variant_get (reply, "(ii@ay@ay)", &exit_code, &term_signal, &out, &err);
  g_assert_cmpint (exit_code, ==, 4);
  g_assert_cmpmem (g_variant_get_data (out), g_variant_get_size (out), "in\0put", 6);
  assert_ay (err, "y /\n");
}

static void
test_run_errors (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  static const char * const invalid_programs[] = { "../bin/echo", "./echo", "echo/../..", "/usr/bin/../bin/echo", "" };

  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = run (t, "rm", NULL, &error, "-rf", "/nonexistent", NULL);
    assert_dbus_error (error, ERROR_PREFIX "PermissionDenied");
    g_assert_nonnull (strstr (error->message, "'rm'"));
  }
  for (guint i = 0; i < G_N_ELEMENTS (invalid_programs); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) reply = run (t, invalid_programs[i], NULL, &error, NULL);
      assert_dbus_error (error, ERROR_PREFIX "InvalidArgument");
    }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = shell_call (t->connection, SHELL_PATH, "Run",
                                            g_variant_new_parsed ("(@as [], @a{sv} {})"),
                                            "(iiayay)", NULL, &error);
    assert_dbus_error (error, ERROR_PREFIX "InvalidArgument");
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = run (t, "true", g_variant_new_parsed ("{'bogus': <1>}"), &error, NULL);
    assert_dbus_error (error, ERROR_PREFIX "InvalidArgument");
    g_assert_nonnull (strstr (error->message, "'bogus'"));
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = run (t, "true", g_variant_new_parsed ("{'timeout-ms': <'soon'>}"), &error, NULL);
    assert_dbus_error (error, ERROR_PREFIX "InvalidArgument");
    g_assert_nonnull (strstr (error->message, "timeout-ms"));
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = run (t, "true", g_variant_new_parsed ("{'cwd': <'/nonexistent'>}"), &error, NULL);
    assert_dbus_error (error, ERROR_PREFIX "InvalidArgument");
    g_assert_nonnull (strstr (error->message, "/nonexistent"));
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = run (t, "sleep", g_variant_new_parsed ("{'timeout-ms': <@u 100>}"), &error, "100", NULL);
    assert_dbus_error (error, ERROR_PREFIX "Timeout");
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = run (t, "sh", NULL, &error, "-c", "while :; do echo xxxxxxxxxxxxxxxxxxxxxxxx; done", NULL);
    assert_dbus_error (error, ERROR_PREFIX "LimitExceeded");
    g_assert_nonnull (strstr (error->message, "stdout exceeded max-output (100001 bytes read)"));
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) reply = run (t, "true", g_variant_new_parsed ("{'max-output': <@u 100001>}"), &error, NULL);
    assert_dbus_error (error, ERROR_PREFIX "LimitExceeded");
  }
}

/* ------------------------------------------------------------------------ */
/* Spawn                                                                    */

typedef struct
{
  GString *out;
  GString *err;
  guint    n_exited;
  int      exit_code;
  int      term_signal;
  gboolean output_after_exit;
  gboolean state_changed;
} Events;

static void
signal_cb (GDBusConnection *connection,
           const char      *sender,
           const char      *path,
           const char      *iface,
           const char      *name,
           GVariant        *params,
           gpointer         user_data)
{
  Events *e = user_data;

  if (g_str_equal (iface, PROC_IFACE) && g_str_equal (name, "Output"))
    {
      g_autoptr(GVariantIter) iter = NULL;
      guint32 stream;
      const char *line;

      if (e->n_exited > 0)
        e->output_after_exit = TRUE;
      g_variant_get (params, "(a(us))", &iter);
      while (g_variant_iter_next (iter, "(u&s)", &stream, &line))
        {
          GString *s = stream == 1 ? e->out : e->err;
          g_string_append_printf (s, "%s%s", s->len > 0 ? "|" : "", line);
        }
    }
  else if (g_str_equal (iface, PROC_IFACE) && g_str_equal (name, "Exited"))
    {
      e->n_exited++;
      g_variant_get (params, "(ii)", &e->exit_code, &e->term_signal);
    }
  else if (g_str_equal (name, "PropertiesChanged") &&
           g_variant_is_of_type (params, G_VARIANT_TYPE ("(sa{sv}as)")))
    {
      const char *changed_iface;

      /* Backend objects broadcast their own changes; only Process counts. */
      g_variant_get_child (params, 0, "&s", &changed_iface);
      if (g_str_equal (changed_iface, PROC_IFACE))
        e->state_changed = TRUE;
    }
}

static guint
subscribe (GDBusConnection *connection,
           const char      *daemon,
           Events          *e)
{
  memset (e, 0, sizeof *e);
  e->out = g_string_new (NULL);
  e->err = g_string_new (NULL);
  return g_dbus_connection_signal_subscribe (connection, daemon, NULL, NULL, NULL, NULL,
                                             G_DBUS_SIGNAL_FLAGS_NONE, signal_cb, e, NULL);
}

static void
events_clear (Events *e)
{
  g_string_free (e->out, TRUE);
  g_string_free (e->err, TRUE);
}

static gboolean
exited_cond (gpointer data)
{
  return ((Events *) data)->n_exited > 0;
}

static char *
spawn (GDBusConnection  *connection,
       GVariant         *options,
       GUnixFDList      *fds,
       GError          **error,
       const char       *argv0,
       ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_autoptr(GVariant) reply = NULL;
  const char *arg;
  char *path = NULL;
  va_list ap;

  g_ptr_array_add (args, (gpointer) argv0);
  va_start (ap, argv0);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  if (options == NULL)
    options = g_variant_new ("a{sv}", NULL);
  reply = shell_call (connection, SHELL_PATH, "Spawn",
                      g_variant_new ("(^as@a{sv})", (char **) args->pdata, options),
                      "(o)", fds, error);
  if (reply != NULL)
    g_variant_get (reply, "(o)", &path);
  return path;
}

static GVariant *
get_property (GDBusConnection  *connection,
              const char       *path,
              const char       *name,
              GError          **error)
{
  g_autoptr(GVariant) reply = NULL;
  GVariant *value = NULL;

  reply = g_dbus_connection_call_sync (connection, BUS_NAME, path, "org.freedesktop.DBus.Properties", "Get",
                                       g_variant_new ("(ss)", PROC_IFACE, name), G_VARIANT_TYPE ("(v)"),
                                       G_DBUS_CALL_FLAGS_NONE, 30000, NULL, error);
  if (reply != NULL)
    g_variant_get (reply, "(v)", &value);
  return value;
}

static GDBusConnection *
second_connection (BpTestDaemon *t)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *c = g_dbus_connection_new_for_address_sync (t->address,
                                                               G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                               G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                               NULL, NULL, &error);
  g_assert_no_error (error);
  return c;
}

static gboolean
pid_dead (gpointer data)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/stat", GPOINTER_TO_UINT (data));
  g_autofree char *contents = NULL;
  const char *p;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return TRUE;
  p = strrchr (contents, ')');
  return p != NULL && (p[2] == 'Z' || p[2] == 'X');
}

static void
test_spawn (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autofree char *path = NULL;
  Events e;
  guint sub = subscribe (t->connection, t->unique_name, &e);
  int exit_code = 0, term_signal = -1;

  path = spawn (t->connection, NULL, NULL, &error, "sh", "-c", "echo a; echo b >&2; printf c; exit 3", NULL);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (path, "/org/backplane/Backplane1/client/"));

  reply = shell_call (t->connection, path, "Wait", NULL, "(ii)", NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(ii)", &exit_code, &term_signal);
  g_assert_cmpint (exit_code, ==, 3);
  g_assert_cmpint (term_signal, ==, 0);

  g_assert_true (wait_until (exited_cond, &e));
  g_assert_cmpint (e.exit_code, ==, 3);
  g_assert_cmpstr (e.out->str, ==, "a|c");
  g_assert_cmpstr (e.err->str, ==, "b");
  g_assert_false (e.output_after_exit);
  g_assert_true (e.state_changed);

  value = get_property (t->connection, path, "State", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_string (value, NULL), ==, "exited");
  g_clear_pointer (&value, g_variant_unref);
  value = get_property (t->connection, path, "Argv", &error);
  g_assert_no_error (error);
  {
    g_autofree const char **argv = g_variant_get_strv (value, NULL);
    g_assert_true (g_str_has_prefix (argv[0], "/"));
    g_assert_cmpstr (argv[1], ==, "-c");
  }
  g_clear_pointer (&value, g_variant_unref);

  /* Documented introspection on the per-client object. */
  {
    g_autoptr(GVariant) xml = g_dbus_connection_call_sync (t->connection, BUS_NAME, path,
                                                           "org.freedesktop.DBus.Introspectable", "Introspect",
                                                           NULL, G_VARIANT_TYPE ("(s)"), 0, 30000, NULL, &error);
    const char *text;

    g_assert_no_error (error);
    g_variant_get (xml, "(&s)", &text);
    g_assert_nonnull (strstr (text, "org.backplane.Backplane1.Process"));
    g_assert_nonnull (strstr (text, "Only the client that spawned it"));
  }

  g_clear_pointer (&reply, g_variant_unref);
  reply = shell_call (t->connection, path, "Close", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  reply = shell_call (t->connection, path, "Wait", NULL, "(ii)", NULL, &error);
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD);
  g_clear_error (&error);

  g_dbus_connection_signal_unsubscribe (t->connection, sub);
  events_clear (&e);
}

static void
test_spawn_not_owner (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  g_autoptr(GDBusConnection) other = second_connection (t);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autofree char *path = NULL;
  Events e;
  guint sub = subscribe (other, t->unique_name, &e);

  path = spawn (t->connection, NULL, NULL, &error, "sh", "-c", "echo secret; sleep 100", NULL);
  g_assert_no_error (error);

  reply = shell_call (other, path, "Kill", g_variant_new ("(i)", 9), NULL, NULL, &error);
  assert_dbus_error (error, ERROR_PREFIX "PermissionDenied");
  g_clear_error (&error);
  reply = shell_call (other, path, "Close", NULL, NULL, NULL, &error);
  assert_dbus_error (error, ERROR_PREFIX "PermissionDenied");
  g_clear_error (&error);
  value = get_property (other, path, "Pid", &error);
  g_assert_nonnull (error);
  g_assert_null (value);
  g_clear_error (&error);

  /* The owner's Kill reaches it; the other client saw no signal. */
  reply = shell_call (t->connection, path, "Kill", g_variant_new ("(i)", 0), NULL, NULL, &error);
  assert_dbus_error (error, ERROR_PREFIX "InvalidArgument");
  g_clear_error (&error);
  reply = shell_call (t->connection, path, "Kill", g_variant_new ("(i)", SIGTERM), NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  reply = shell_call (t->connection, path, "Wait", NULL, "(ii)", NULL, &error);
  g_assert_no_error (error);
  {
    int exit_code, term_signal;
    g_variant_get (reply, "(ii)", &exit_code, &term_signal);
    g_assert_cmpint (exit_code, ==, -1);
    g_assert_cmpint (term_signal, ==, SIGTERM);
  }
  /* Let any stray signal arrive before checking. */
  g_dbus_connection_flush_sync (t->connection, NULL, NULL);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (e.n_exited, ==, 0);
  g_assert_cmpuint (e.out->len, ==, 0);
  g_assert_false (e.state_changed);

  g_dbus_connection_signal_unsubscribe (other, sub);
  events_clear (&e);
}

static void
test_spawn_owner_vanishes (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  g_autoptr(GDBusConnection) other = second_connection (t);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *path = NULL;
  guint32 pid;

  path = spawn (other, NULL, NULL, &error, "sleep", "100", NULL);
  g_assert_no_error (error);
  value = get_property (other, path, "Pid", &error);
  g_assert_no_error (error);
  pid = g_variant_get_uint32 (value);
  g_assert_false (pid_dead (GUINT_TO_POINTER (pid)));

  g_dbus_connection_close_sync (other, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wait_until (pid_dead, GUINT_TO_POINTER (pid)));

  /* The object is gone too. */
  reply = shell_call (t->connection, path, "Wait", NULL, "(ii)", NULL, &error);
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD);
}

static void
test_spawn_stdout_fd (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *path = NULL;
  GVariantBuilder options;
  GString *got = g_string_new (NULL);
  char buf[256];
  int pipe_fds[2];
  int index;
  ssize_t n;

  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, NULL));
  index = g_unix_fd_list_append (fds, pipe_fds[1], &error);
  g_assert_no_error (error);
  close (pipe_fds[1]);

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "stdout", g_variant_new_handle (index));
  path = spawn (t->connection, g_variant_builder_end (&options), fds, &error,
                "sh", "-c", "echo via-fd; echo to-signal >&2", NULL);
  g_assert_no_error (error);
  g_clear_object (&fds);

  /* End of file once the child is done: the daemon kept no copy. */
  while ((n = read (pipe_fds[0], buf, sizeof buf)) > 0)
    g_string_append_len (got, buf, n);
  g_assert_cmpint (n, ==, 0);
  close (pipe_fds[0]);
  g_assert_cmpstr (got->str, ==, "via-fd\n");
  g_string_free (got, TRUE);

  reply = shell_call (t->connection, path, "Wait", NULL, "(ii)", NULL, &error);
  g_assert_no_error (error);
}

typedef struct
{
  BpTestDaemon *t;
  guint32       below;
} PoolWait;

/* Live numbers from Manager.GetMetrics: the Backend.Pool property is only
 * refreshed after calls, and a process can be reaped without one. */
static guint
shell_pool_stat (BpTestDaemon *t,
                 const char   *key)
{
  g_autofree char *series = g_strdup_printf ("backplane_backend_pool_%s{backend=\"shell\"}", key);
  double value = bp_test_daemon_metric (t, series);

  g_assert_cmpfloat (value, >=, 0);
  return (guint) value;
}

static gboolean
pool_below (gpointer data)
{
  PoolWait *w = data;

  return shell_pool_stat (w->t, "in_use") < w->below;
}

static void
test_spawn_quota (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  g_autoptr(GError) error = NULL;
  char *paths[3] = { NULL, };
  g_autofree char *extra = NULL;
  g_autoptr(GVariant) reply = NULL;
  PoolWait w = { t, 3 };

  for (guint i = 0; i < 3; i++)
    {
      paths[i] = spawn (t->connection, NULL, NULL, &error, "sleep", "100", NULL);
      g_assert_no_error (error);
    }
  extra = spawn (t->connection, NULL, NULL, &error, "sleep", "100", NULL);
  assert_dbus_error (error, ERROR_PREFIX "LimitExceeded");
  g_clear_error (&error);
  reply = run (t, "true", NULL, &error, NULL);
  assert_dbus_error (error, ERROR_PREFIX "LimitExceeded");
  g_clear_error (&error);

  /* Close one: its slot comes back once it is reaped. */
  reply = shell_call (t->connection, paths[0], "Close", NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (wait_until (pool_below, &w));
  g_clear_pointer (&reply, g_variant_unref);
  reply = run (t, "true", NULL, &error, NULL);
  g_assert_no_error (error);

  for (guint i = 1; i < 3; i++)
    {
      g_clear_pointer (&reply, g_variant_unref);
      reply = shell_call (t->connection, paths[i], "Close", NULL, NULL, NULL, &error);
      g_assert_no_error (error);
    }
  for (guint i = 0; i < 3; i++)
    g_free (paths[i]);
}

static void
test_config_error (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new ("[backend shell]\ntype=shell\nallow=echo;no-such-program-bp\n");
  g_autofree char *reason = NULL;
  g_autofree char *state = bp_test_daemon_backend_state (t, "shell", &reason);

  g_test_message ("%s: %s", state, reason);
  g_assert_cmpstr (state, ==, "unavailable");
  g_assert_nonnull (strstr (reason, "no-such-program-bp"));
}

/* ------------------------------------------------------------------------ */
/* Processes of the daemon, from /proc                                      */

/* Reads the state letter and parent of @pid. Returns: FALSE when there is
 * no such process. */
static gboolean
proc_stat (guint32  pid,
           char    *state,
           guint32 *ppid,
           char   **comm)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/stat", pid);
  g_autofree char *contents = NULL;
  const char *open_paren, *close_paren;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return FALSE;
  open_paren = strchr (contents, '(');
  close_paren = strrchr (contents, ')');
  if (open_paren == NULL || close_paren == NULL || strlen (close_paren) < 5)
    return FALSE;
  if (state != NULL)
    *state = close_paren[2];
  if (ppid != NULL)
    *ppid = (guint32) strtoul (close_paren + 4, NULL, 10);
  if (comm != NULL)
    *comm = g_strndup (open_paren + 1, close_paren - open_paren - 1);
  return TRUE;
}

/* Returns: how many children @parent has (zombies included), and in
 * @n_zombies how many of them are zombies; the first called @comm (if
 * given) in @found. */
static guint
count_children (guint32     parent,
                guint      *n_zombies,
                const char *comm,
                guint32    *found)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *entry;
  guint n = 0;

  g_assert_nonnull (dir);
  if (n_zombies != NULL)
    *n_zombies = 0;
  if (found != NULL)
    *found = 0;
  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *name = NULL;
      guint32 pid, ppid;
      char *end;
      char state;

      pid = (guint32) strtoul (entry, &end, 10);
      if (*end != '\0' || pid == 0 || !proc_stat (pid, &state, &ppid, &name) || ppid != parent)
        continue;
      n++;
      if (n_zombies != NULL && state == 'Z')
        (*n_zombies)++;
      if (found != NULL && *found == 0 && comm != NULL && g_str_equal (name, comm))
        *found = pid;
    }
  return n;
}

typedef struct
{
  guint32 daemon_pid;
  guint32 pid;
} ChildOf;

/* Reaped: no such process, or (pid reused) not the daemon's child. */
static gboolean
child_reaped (gpointer data)
{
  ChildOf *c = data;
  guint32 ppid;

  return !proc_stat (c->pid, NULL, &ppid, NULL) || ppid != c->daemon_pid;
}

static gboolean
daemon_has_no_children (gpointer data)
{
  return count_children (GPOINTER_TO_UINT (data), NULL, NULL, NULL) == 0;
}

typedef struct
{
  BpTestDaemon *t;
  guint32       in_use;
  guint32       processes;
} PoolIs;

static gboolean
pool_is (gpointer data)
{
  PoolIs *w = data;

  return shell_pool_stat (w->t, "in_use") == w->in_use && shell_pool_stat (w->t, "processes") == w->processes;
}

/* Returns: the node names below the caller's client path */
static char *
client_subtree (BpTestDaemon    *t,
                GDBusConnection *connection)
{
  g_autofree char *escaped = g_dbus_escape_object_path (g_dbus_connection_get_unique_name (connection));
  g_autofree char *path = g_strdup_printf ("/org/backplane/Backplane1/client/%s", escaped);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GDBusNodeInfo) node = NULL;
  g_autoptr(GString) names = g_string_new (NULL);
  const char *xml;

  reply = g_dbus_connection_call_sync (t->connection, BUS_NAME, path, "org.freedesktop.DBus.Introspectable",
                                       "Introspect", NULL, G_VARIANT_TYPE ("(s)"), 0, 30000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&s)", &xml);
  node = g_dbus_node_info_new_for_xml (xml, &error);
  g_assert_no_error (error);
  for (guint i = 0; node->nodes != NULL && node->nodes[i] != NULL; i++)
    g_string_append_printf (names, "%s%s", names->len > 0 ? " " : "", node->nodes[i]->path);
  return g_string_free (g_steal_pointer (&names), FALSE);
}

static gboolean
client_subtree_empty (gpointer data)
{
  BpTestDaemon *t = data;
  g_autofree char *names = client_subtree (t, t->connection);

  return names[0] == '\0';
}

typedef struct
{
  guint32 pid;
  guint   fds;
} FdsAtMost;

static gboolean
fds_at_most (gpointer data)
{
  FdsAtMost *f = data;

  return bp_test_count_fds (f->pid) <= f->fds;
}

/* ------------------------------------------------------------------------ */
/* The owner is SIGKILLed                                                   */

/* `test-shell-dbus --spawn-client ADDRESS`: a client that spawns
 * `sh` (with a `sleep` grandchild) writing to this program's stdout, says
 * who it is and what it started, and waits to be killed. */
static int
spawn_client_main (const char *address)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GVariant) pid = NULL;
  g_autofree char *path = NULL;
  GVariantBuilder options;
  int index;

  connection = g_dbus_connection_new_for_address_sync (address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  if (connection != NULL && (index = g_unix_fd_list_append (fds, STDOUT_FILENO, &error)) >= 0)
    {
      g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&options, "{sv}", "stdout", g_variant_new_handle (index));
      path = spawn (connection, g_variant_builder_end (&options), fds, &error,
                    "sh", "-c", "sleep 100 & echo \"grandchild $!\"; wait", NULL);
    }
  if (path != NULL)
    pid = get_property (connection, path, "Pid", &error);
  if (pid == NULL)
    {
      g_printerr ("spawn client: %s\n", error->message);
      return 1;
    }
  printf ("name %s\npath %s\nchild %u\n", g_dbus_connection_get_unique_name (connection), path,
          g_variant_get_uint32 (pid));
  fflush (stdout);
  for (;;)
    pause ();
}

typedef struct
{
  GDataInputStream *in;
  char             *name;
  char             *path;
  guint32           child;
  guint32           grandchild;
  gboolean          eof;
} ClientLines;

static void
client_line_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  ClientLines *c = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (c->in, result, NULL, &error);

  g_assert_no_error (error);
  if (line == NULL)
    {
      c->eof = TRUE;
      return;
    }
  if (g_str_has_prefix (line, "name "))
    c->name = g_strdup (line + 5);
  else if (g_str_has_prefix (line, "path "))
    c->path = g_strdup (line + 5);
  else if (g_str_has_prefix (line, "child "))
    c->child = (guint32) strtoul (line + 6, NULL, 10);
  else if (g_str_has_prefix (line, "grandchild "))
    c->grandchild = (guint32) strtoul (line + 11, NULL, 10);
  else
    g_error ("unexpected line from the spawn client: %s", line);
  g_data_input_stream_read_line_async (c->in, G_PRIORITY_DEFAULT, NULL, client_line_cb, c);
}

static gboolean
client_ready (gpointer data)
{
  ClientLines *c = data;

  return c->name != NULL && c->path != NULL && c->child != 0 && c->grandchild != 0;
}

static gboolean
flag_set (gpointer data)
{
  return *(gboolean *) data;
}

static void
subprocess_waited_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static char *
self_exe (void)
{
  g_autoptr(GError) error = NULL;
  char *path = g_file_read_link ("/proc/self/exe", &error);

  g_assert_no_error (error);
  return path;
}

typedef struct
{
  ClientLines *lines;
  ChildOf      child;
} OwnedGone;

static gboolean
owned_gone (gpointer data)
{
  OwnedGone *g = data;

  return g->lines->eof && child_reaped (&g->child) && pid_dead (GUINT_TO_POINTER (g->lines->grandchild));
}

static void
test_spawn_owner_killed (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  g_autoptr(GSubprocess) client = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *exe = self_exe ();
  ClientLines lines = { NULL, };
  OwnedGone gone = { &lines, { t->pid, 0 } };
  PoolIs idle = { t, 0, 0 };
  gboolean client_exited = FALSE;
  gint64 killed_at, elapsed;

  /* A real client process: its bus connection ends only because the
   * kernel closes its socket. */
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  client = g_subprocess_launcher_spawn (launcher, &error, exe, "--spawn-client", t->address, NULL);
  g_assert_no_error (error);
  lines.in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (client));
  g_data_input_stream_read_line_async (lines.in, G_PRIORITY_DEFAULT, NULL, client_line_cb, &lines);
  g_assert_true (wait_until (client_ready, &lines));
  gone.child.pid = lines.child;
  g_test_message ("client %s spawned %s: sh %u, its child sleep %u",
                  lines.name, lines.path, lines.child, lines.grandchild);
  g_assert_false (child_reaped (&gone.child));
  g_assert_false (pid_dead (GUINT_TO_POINTER (lines.grandchild)));
  g_assert_false (lines.eof);

  g_subprocess_send_signal (client, SIGKILL);
  g_subprocess_wait_async (client, NULL, subprocess_waited_cb, &client_exited);
  g_assert_true (wait_until (flag_set, &client_exited));
  g_assert_cmpint (g_subprocess_get_term_sig (client), ==, SIGKILL);
  killed_at = g_get_monotonic_time ();

  /* The whole group: sh reaped by the daemon, its sleep dead, and so
   * nobody holds the write end of the stdout pipe any more. */
  g_assert_true (wait_until (owned_gone, &gone));
  elapsed = g_get_monotonic_time () - killed_at;
  g_test_message ("the owner's process group was gone %.1f ms after the owner died", elapsed / 1000.0);
  g_assert_cmpint (elapsed, <, G_USEC_PER_SEC);

  /* Its slot and its object are gone too. */
  g_assert_true (wait_until (pool_is, &idle));
  reply = shell_call (t->connection, lines.path, "Wait", NULL, "(ii)", NULL, &error);
  g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD);

  g_object_unref (lines.in);
  g_free (lines.name);
  g_free (lines.path);
}

/* ------------------------------------------------------------------------ */
/* Many short processes leave nothing behind                                */

static void
spawn_wait_true (BpTestDaemon *t,
                 gboolean      close)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *path = spawn (t->connection, NULL, NULL, &error, "true", NULL);
  int exit_code = -2, term_signal = -2;

  g_assert_no_error (error);
  reply = shell_call (t->connection, path, "Wait", NULL, "(ii)", NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(ii)", &exit_code, &term_signal);
  g_assert_cmpint (exit_code, ==, 0);
  g_assert_cmpint (term_signal, ==, 0);
  if (close)
    {
      g_clear_pointer (&reply, g_variant_unref);
      reply = shell_call (t->connection, path, "Close", NULL, NULL, NULL, &error);
      g_assert_no_error (error);
    }
}

static void
test_spawn_cycles (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config_linger);
  g_autofree char *names = NULL;
  PoolIs idle = { t, 0, 0 };
  FdsAtMost fds;
  guint zombies, n_objects;
  const guint n = 1000;
  g_autoptr(GTimer) timer = g_timer_new ();

  /* Warm up (GLib's child-watch machinery in the daemon), and check that
   * the client subtree does show a Process object while one exists. */
  spawn_wait_true (t, FALSE);
  names = client_subtree (t, t->connection);
  g_test_message ("client subtree after one Spawn: %s", names);
  g_assert_true (g_str_has_prefix (names, "process"));
  g_assert_true (wait_until (pool_is, &idle));
  g_assert_true (wait_until (client_subtree_empty, t));
  g_assert_true (wait_until (daemon_has_no_children, GUINT_TO_POINTER (t->pid)));
  fds.pid = t->pid;
  fds.fds = bp_test_count_fds (t->pid);

  /* Half are closed, half left to expire (process-linger-ms). */
  g_timer_start (timer);
  for (guint i = 0; i < n; i++)
    spawn_wait_true (t, i % 2 == 0);
  g_test_message ("%u Spawn/Wait cycles in %.2f s", n, g_timer_elapsed (timer, NULL));

  g_assert_cmpuint (count_children (t->pid, &zombies, NULL, NULL), <=, 1);
  g_assert_cmpuint (zombies, ==, 0);
  n_objects = shell_pool_stat (t, "processes");
  g_test_message ("%u Process objects lingering right after the loop", n_objects);
  g_assert_true (wait_until (pool_is, &idle));
  g_assert_true (wait_until (client_subtree_empty, t));
  g_assert_true (wait_until (daemon_has_no_children, GUINT_TO_POINTER (t->pid)));
  g_assert_true (wait_until (fds_at_most, &fds));
  g_assert_cmpuint (bp_test_count_fds (t->pid), ==, fds.fds);
}

/* ------------------------------------------------------------------------ */
/* Data plane                                                               */

/* A write to the stdin of a child that exited without reading it is EPIPE
 * for the daemon (it ignores SIGPIPE), not its end. */
static void
test_run_stdin_not_read (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  gsize size = 4 * 1024 * 1024;
  g_autofree guchar *input = g_malloc0 (size);

  for (guint i = 0; i < 3; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) reply = NULL;
      GVariantBuilder options;
      int exit_code = -2, term_signal = -2;

      g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
      g_variant_builder_add (&options, "{sv}", "stdin",
                             g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, input, size, 1));
      reply = run (t, "true", g_variant_builder_end (&options), &error, NULL);
      g_assert_no_error (error);
      g_variant_get (reply, "(ii@ay@ay)", &exit_code, &term_signal, NULL, NULL);
      g_assert_cmpint (exit_code, ==, 0);
      g_assert_cmpint (term_signal, ==, 0);
    }
  /* Still serving, and never killed by SIGPIPE on the way. */
  {
    g_autofree char *state = bp_test_daemon_backend_state (t, "shell", NULL);
    char proc_state = 0;

    g_assert_cmpstr (state, ==, "ready");
    g_assert_true (proc_stat (t->pid, &proc_state, NULL, NULL));
    g_assert_cmpint (proc_state, !=, 'Z');
  }
}

static guint64
proc_io (const char *path,
         const char *key)
{
  g_autofree char *contents = NULL;
  g_autofree char *prefix = g_strdup_printf ("%s: ", key);
  g_auto(GStrv) lines = NULL;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;
  lines = g_strsplit (contents, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      return g_ascii_strtoull (lines[i] + strlen (prefix), NULL, 10);
  g_assert_not_reached ();
}

/* Bytes read and written by each thread of @pid (tid → rchar + wchar).
 * Per thread, because /proc/PID/io also counts the children it reaped. */
static GHashTable *
thread_io (guint32 pid)
{
  g_autofree char *task_dir = g_strdup_printf ("/proc/%u/task", pid);
  g_autoptr(GDir) dir = g_dir_open (task_dir, 0, NULL);
  GHashTable *io = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  const char *tid;

  g_assert_nonnull (dir);
  while ((tid = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (task_dir, tid, "io", NULL);
      guint64 *bytes = g_new (guint64, 1);

      *bytes = proc_io (path, "rchar") + proc_io (path, "wchar");
      g_hash_table_insert (io, g_strdup (tid), bytes);
    }
  return io;
}

/* Returns: what the threads alive now did since @before */
static guint64
thread_io_since (guint32     pid,
                 GHashTable *before)
{
  g_autoptr(GHashTable) now = thread_io (pid);
  GHashTableIter iter;
  gpointer tid, bytes;
  guint64 total = 0;

  g_hash_table_iter_init (&iter, now);
  while (g_hash_table_iter_next (&iter, &tid, &bytes))
    {
      guint64 *then = g_hash_table_lookup (before, tid);

      total += *(guint64 *) bytes - (then != NULL ? *then : 0);
    }
  return total;
}

#define STREAM_PATTERN     "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\n"
#define STREAM_PATTERN_LEN (sizeof STREAM_PATTERN - 1)
#define STREAM_READ        (1024 * 1024)

/* 1 GiB through a passed stdout fd, compared byte for byte; the daemon
 * reads and writes (all syscalls, sockets included) far less than that. */
static void
test_spawn_stdout_fd_1gib (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GTimer) timer = g_timer_new ();
  g_autofree char *path = NULL;
  g_autofree char *script = NULL;
  g_autofree char *buffer = g_malloc (STREAM_READ);
  g_autofree char *expected = g_malloc (STREAM_READ + STREAM_PATTERN_LEN);
  const guint64 size = G_GUINT64_CONSTANT (1024) * 1024 * 1024;
  g_autoptr(GHashTable) io_before = NULL;
  guint64 total = 0, io;
  GVariantBuilder options;
  int pipe_fds[2];
  int exit_code = -2, term_signal = -2;
  ssize_t n;

  for (gsize i = 0; i < STREAM_READ + STREAM_PATTERN_LEN; i++)
    expected[i] = STREAM_PATTERN[i % STREAM_PATTERN_LEN];
  script = g_strdup_printf ("yes %.*s | head -c %" G_GUINT64_FORMAT,
                            (int) STREAM_PATTERN_LEN - 1, STREAM_PATTERN, size);

  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, NULL));
  (void) fcntl (pipe_fds[0], F_SETPIPE_SZ, 1024 * 1024);
  g_unix_fd_list_append (fds, pipe_fds[1], &error);
  g_assert_no_error (error);
  close (pipe_fds[1]);
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "stdout", g_variant_new_handle (0));

  io_before = thread_io (t->pid);
  path = spawn (t->connection, g_variant_builder_end (&options), fds, &error, "sh", "-c", script, NULL);
  g_assert_no_error (error);
  g_clear_object (&fds);

  /* Blocking reads are fine here: GDBus runs in its own thread. */
  while ((n = read (pipe_fds[0], buffer, STREAM_READ)) > 0)
    {
      if (memcmp (buffer, expected + total % STREAM_PATTERN_LEN, n) != 0)
        g_error ("the stream differs within bytes %" G_GUINT64_FORMAT "-%" G_GUINT64_FORMAT,
                 total, total + n);
      total += n;
    }
  g_assert_cmpint (n, ==, 0);
  close (pipe_fds[0]);
  g_assert_cmpuint (total, ==, size);
  g_test_message ("1 GiB through the passed fd in %.2f s", g_timer_elapsed (timer, NULL));

  reply = shell_call (t->connection, path, "Wait", NULL, "(ii)", NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(ii)", &exit_code, &term_signal);
  g_assert_cmpint (exit_code, ==, 0);

  io = thread_io_since (t->pid, io_before);
  g_test_message ("the daemon's threads read and wrote %" G_GUINT64_FORMAT " bytes meanwhile", io);
  g_assert_cmpuint (io, <, 16 * 1024 * 1024);
}

/* ------------------------------------------------------------------------ */
/* backplanectl run against the real daemon                                 */

typedef struct
{
  GSubprocess *process;
  gboolean     done;
  char        *out;
  char        *err;
  GError      *error;
} Ctl;

static void
ctl_communicated_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  Ctl *c = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &c->out, &c->err, &c->error);
  c->done = TRUE;
}

/* Starts backplanectl --address ADDRESS ARGS… with stdin, stdout and
 * stderr on pipes this process reads (stdin at end of file). */
static void
ctl_start (Ctl                *c,
           BpTestDaemon       *t,
           const char * const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) error = NULL;
  const char *root = g_getenv ("BACKPLANE_BUILD_ROOT");

  memset (c, 0, sizeof *c);
  g_ptr_array_add (argv, g_build_filename (root != NULL ? root : BP_BUILD_ROOT, "core", "ctl", "backplanectl", NULL));
  g_ptr_array_add (argv, g_strdup ("--address"));
  g_ptr_array_add (argv, g_strdup (t->address));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "G_DEBUG", "fatal-criticals", TRUE);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  c->process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  /* Reads both pipes to end of file: until every holder closed them, the
   * program backplanectl ran included (it writes into them directly). */
  g_subprocess_communicate_utf8_async (c->process, NULL, NULL, ctl_communicated_cb, c);
}

/* Returns: backplanectl's exit status, or 128 + signal */
static int
ctl_finish (Ctl *c)
{
  int status;

  g_assert_true (wait_until (flag_set, &c->done));
  g_assert_no_error (c->error);
  g_assert_true (g_subprocess_wait (c->process, NULL, NULL));
  status = g_subprocess_get_if_exited (c->process) ? g_subprocess_get_exit_status (c->process)
                                                   : 128 + g_subprocess_get_term_sig (c->process);
  {
    g_autofree char *out = g_strescape (c->out, NULL);
    g_autofree char *err = g_strescape (c->err, NULL);

    g_test_message ("backplanectl -> %d; stdout \"%s\", stderr \"%s\"", status, out, err);
  }
  return status;
}

static void
ctl_clear (Ctl *c)
{
  g_clear_object (&c->process);
  g_clear_pointer (&c->out, g_free);
  g_clear_pointer (&c->err, g_free);
}

static void
test_ctl_run (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  PoolIs idle = { t, 0, 0 };
  Ctl c;

  ctl_start (&c, t, (const char * const[]) { "run", "shell", "--", "sh", "-c", "echo out; echo err >&2; exit 3", NULL });
  g_assert_cmpint (ctl_finish (&c), ==, 3);
  g_assert_cmpstr (c.out, ==, "out\n");
  g_assert_cmpstr (c.err, ==, "err\n");
  ctl_clear (&c);

  /* A terminating signal is 128 + signal; stdin is passed as well. */
  ctl_start (&c, t, (const char * const[]) { "run", "shell", "--", "sh", "-c", "cat; kill -TERM $$", NULL });
  g_assert_cmpint (ctl_finish (&c), ==, 128 + SIGTERM);
  g_assert_cmpstr (c.out, ==, "");
  ctl_clear (&c);

  /* Not on the allow list: the daemon's refusal, exit status 1. */
  ctl_start (&c, t, (const char * const[]) { "run", "shell", "--", "rm", "-rf", "/nonexistent", NULL });
  g_assert_cmpint (ctl_finish (&c), !=, 0);
  g_assert_nonnull (strstr (c.err, "PermissionDenied"));
  g_assert_nonnull (strstr (c.err, "rm"));
  ctl_clear (&c);

  /* backplanectl closes its Process objects. */
  g_assert_true (wait_until (pool_is, &idle));
}

typedef struct
{
  guint32 daemon_pid;
  guint32 pid;
} FindChild;

static gboolean
found_sleep (gpointer data)
{
  FindChild *f = data;

  count_children (f->daemon_pid, NULL, "sleep", &f->pid);
  return f->pid != 0;
}

static void
test_ctl_run_interrupt (void)
{
  g_autoptr(BpTestDaemon) t = bp_test_daemon_new (config);
  FindChild f = { t->pid, 0 };
  ChildOf sleeping = { t->pid, 0 };
  PoolIs idle = { t, 0, 0 };
  Ctl c;

  ctl_start (&c, t, (const char * const[]) { "run", "shell", "--", "sleep", "100", NULL });
  g_assert_true (wait_until (found_sleep, &f));
  sleeping.pid = f.pid;
  g_test_message ("the daemon runs sleep as %u", f.pid);

  /* Ctrl-C: forwarded as Kill (SIGINT); sleep dies of it, so backplanectl
   * exits 128 + SIGINT (and the pipes reach end of file). */
  g_subprocess_send_signal (c.process, SIGINT);
  g_assert_cmpint (ctl_finish (&c), ==, 128 + SIGINT);
  g_assert_true (wait_until (child_reaped, &sleeping));
  g_assert_true (wait_until (pool_is, &idle));
  ctl_clear (&c);
}

int
main (int   argc,
      char *argv[])
{
  if (argc == 3 && g_str_equal (argv[1], "--spawn-client"))
    return spawn_client_main (argv[2]);

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/shell/dbus/run", test_run);
  g_test_add_func ("/shell/dbus/run/errors", test_run_errors);
  g_test_add_func ("/shell/dbus/spawn", test_spawn);
  g_test_add_func ("/shell/dbus/spawn/not-owner", test_spawn_not_owner);
  g_test_add_func ("/shell/dbus/spawn/owner-vanishes", test_spawn_owner_vanishes);
  g_test_add_func ("/shell/dbus/spawn/stdout-fd", test_spawn_stdout_fd);
  g_test_add_func ("/shell/dbus/spawn/quota", test_spawn_quota);
  g_test_add_func ("/shell/dbus/spawn/owner-killed", test_spawn_owner_killed);
  g_test_add_func ("/shell/dbus/spawn/cycles-leave-nothing", test_spawn_cycles);
  g_test_add_func ("/shell/dbus/run/stdin-not-read", test_run_stdin_not_read);
  g_test_add_func ("/shell/dbus/spawn/stdout-fd-1gib", test_spawn_stdout_fd_1gib);
  g_test_add_func ("/shell/dbus/ctl/run", test_ctl_run);
  g_test_add_func ("/shell/dbus/ctl/run-interrupt", test_ctl_run_interrupt);
  g_test_add_func ("/shell/dbus/config-error", test_config_error);

  return g_test_run ();
}
