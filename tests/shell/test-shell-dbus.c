/* test-shell-dbus.c: the shell backend through backplaned on a private bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
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

static gboolean
pool_below (gpointer data)
{
  PoolWait *w = data;
  g_autoptr(GVariant) pool = bp_test_daemon_get_property (w->t, SHELL_PATH, "org.backplane.Backplane1.Backend", "Pool");
  guint32 in_use = 0;

  g_variant_lookup (pool, "in-use", "u", &in_use);
  return in_use < w->below;
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

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/shell/dbus/run", test_run);
  g_test_add_func ("/shell/dbus/run/errors", test_run_errors);
  g_test_add_func ("/shell/dbus/spawn", test_spawn);
  g_test_add_func ("/shell/dbus/spawn/not-owner", test_spawn_not_owner);
  g_test_add_func ("/shell/dbus/spawn/owner-vanishes", test_spawn_owner_vanishes);
  g_test_add_func ("/shell/dbus/spawn/stdout-fd", test_spawn_stdout_fd);
  g_test_add_func ("/shell/dbus/spawn/quota", test_spawn_quota);
  g_test_add_func ("/shell/dbus/config-error", test_config_error);

  return g_test_run ();
}
