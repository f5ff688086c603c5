/* test-postgres-managed.c: backplaned running its own PostgreSQL (managed=true)
 *
 * The embedded default configuration (data/default.conf) has a `local`
 * backend with managed=true. These tests run backplaned from the build tree
 * on that configuration — the backend renamed so that parallel runs do not
 * share a cluster — and check that it comes up ready (as root: the server
 * runs as the `postgres` user, and the data and socket directories fall back
 * to /var/lib/backplane/postgres/NAME and /run/backplane/NAME because the
 * test's XDG directories are 0700 root's), that the cluster stops with the
 * daemon, also when the daemon is SIGKILLed, and that missing server binaries
 * give a clear `unavailable` reason.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bp-test-daemon.h"

#define SQL_IFACE "org.backplane.Backplane1.Sql"

static const char *
expected_role (void)
{
  return geteuid () == 0 ? "postgres" : g_get_user_name ();
}

static char *
read_default_config (void)
{
  const char *root = g_getenv ("BACKPLANE_SOURCE_ROOT");
  g_autofree char *path = g_build_filename (root != NULL ? root : BP_SOURCE_ROOT, "data", "default.conf", NULL);
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  g_file_get_contents (path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

static GVariant *
query_row (BpTestDaemon *t,
           const char   *backend,
           const char   *sql)
{
  g_autofree char *path = g_strconcat ("/org/backplane/Backplane1/backend/", backend, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = bp_test_daemon_call (t, path, SQL_IFACE ".Query",
                                                   g_variant_new ("(s@ava{sv})", sql,
                                                                  g_variant_new_array (G_VARIANT_TYPE_VARIANT, NULL, 0),
                                                                  NULL),
                                                   "(a(ss)aa{sv})", &error);
  g_autoptr(GVariant) rows = NULL;

  g_assert_no_error (error);
  g_variant_get (reply, "(a(ss)@aa{sv})", NULL, &rows);
  g_assert_cmpuint (g_variant_n_children (rows), ==, 1);
  return g_variant_get_child_value (rows, 0);
}

static void
rm_rf (const char *path)
{
  g_autofree char *q = g_shell_quote (path);
  g_autofree char *cmd = g_strdup_printf ("rm -rf %s", q);

  g_assert_cmpint (system (cmd), ==, 0);
}

static gboolean
file_gone (gpointer data)
{
  return !g_file_test (data, G_FILE_TEST_EXISTS);
}

typedef struct
{
  BpTestDaemon *t;
  const char   *name;
} StateWait;

static gboolean
state_settled (gpointer data)
{
  StateWait *w = data;
  g_autofree char *state = bp_test_daemon_backend_state (w->t, w->name, NULL);

  return !g_str_equal (state, "starting");
}

/* The state once start_async completed (initdb can take a while). */
static char *
settled_state (BpTestDaemon  *t,
               const char    *name,
               char         **reason)
{
  StateWait w = { t, name };

  g_assert_true (bp_test_wait_until (state_settled, &w, 120000));
  return bp_test_daemon_backend_state (t, name, reason);
}

/* The README quick start: no config of one's own, the embedded default. */
static void
test_default_config (void)
{
  g_autofree char *name = g_strdup_printf ("local%d", (int) getpid ());
  g_autofree char *config = read_default_config ();
  g_autoptr(GString) renamed = g_string_new (config);
  g_autofree char *state = NULL;
  g_autofree char *reason = NULL;
  g_autofree char *data_dir = NULL;
  g_autofree char *pid_file = NULL;
  g_autofree char *log_file = NULL;
  g_autofree char *socket_dir = NULL;
  g_autoptr(GVariant) row = NULL;
  BpTestDaemon *t;
  const char *user;
  const char *dir;
  struct stat st;

  g_assert_cmpuint (g_string_replace (renamed, "[backend local]", "", 0), ==, 1);
  g_string_append_printf (renamed, "\n[backend %s]\ntype=postgres\nmanaged=true\n", name);
  {
    /* The [backend local] group keys are type and managed only: check
     * that what we copied is what the default says. */
    g_autoptr(GKeyFile) kf = g_key_file_new ();
    g_auto(GStrv) keys = NULL;

    g_assert_true (g_key_file_load_from_data (kf, config, -1, G_KEY_FILE_NONE, NULL));
    keys = g_key_file_get_keys (kf, "backend local", NULL, NULL);
    g_assert_nonnull (keys);
    g_assert_cmpuint (g_strv_length (keys), ==, 2);
    g_assert_true (g_key_file_get_boolean (kf, "backend local", "managed", NULL));
  }

  t = bp_test_daemon_new (renamed->str);
  if (geteuid () == 0)
    {
      data_dir = g_build_filename ("/var/lib/backplane/postgres", name, NULL);
      socket_dir = g_build_filename ("/run/backplane", name, NULL);
    }
  else
    {
      data_dir = g_build_filename (t->tmpdir, "backplane", "postgres", name, NULL);
      socket_dir = g_build_filename (t->tmpdir, "backplane", name, NULL);
    }
  pid_file = g_build_filename (data_dir, "postmaster.pid", NULL);
  log_file = g_strconcat (data_dir, ".log", NULL);

  state = settled_state (t, name, &reason);
  g_test_message ("state %s (%s)", state, reason);
  g_assert_cmpstr (state, ==, "ready");

  row = query_row (t, name, "SELECT current_user::text AS u, current_setting('data_directory') AS d, "
                            "current_setting('unix_socket_directories') AS s, "
                            "current_setting('listen_addresses') AS l");
  g_assert_true (g_variant_lookup (row, "u", "&s", &user));
  g_assert_cmpstr (user, ==, expected_role ());
  g_assert_true (g_variant_lookup (row, "d", "&s", &dir));
  g_assert_cmpstr (dir, ==, data_dir);
  g_assert_true (g_variant_lookup (row, "s", "&s", &dir));
  g_assert_cmpstr (dir, ==, socket_dir);
  g_assert_true (g_variant_lookup (row, "l", "&s", &dir));
  g_assert_cmpstr (dir, ==, "");
  g_assert_cmpint (g_stat (data_dir, &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 0777, ==, 0700);
  g_assert_cmpint (g_stat (socket_dir, &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 0777, ==, 0700);
  g_assert_true (g_file_test (pid_file, G_FILE_TEST_EXISTS));

  /* Stopped after serving. */
  bp_test_daemon_signal (t, SIGTERM);
  g_assert_cmpint (bp_test_daemon_wait_exit (t), ==, 0);
  g_assert_false (g_file_test (pid_file, G_FILE_TEST_EXISTS));
  bp_test_daemon_free (t);

  if (geteuid () == 0)
    {
      rm_rf (data_dir);
      rm_rf (socket_dir);
      g_unlink (log_file);
    }
}

static void
test_sigkill (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *scratch = g_dir_make_tmp ("bp-pg-managed-XXXXXX", &error);
  g_autofree char *data_dir = g_build_filename (scratch, "data", NULL);
  g_autofree char *socket_dir = g_build_filename (scratch, "run", NULL);
  g_autofree char *pid_file = g_build_filename (data_dir, "postmaster.pid", NULL);
  g_autofree char *config = NULL;
  g_autofree char *state = NULL;
  g_autoptr(GVariant) row = NULL;
  BpTestDaemon *t;
  gint32 one;

  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (scratch, 0755), ==, 0);
  config = g_strdup_printf ("[backend db]\ntype=postgres\nmanaged=true\ndata-dir=%s\nsocket-dir=%s\n",
                            data_dir, socket_dir);
  t = bp_test_daemon_new (config);
  state = settled_state (t, "db", NULL);
  g_assert_cmpstr (state, ==, "ready");
  row = query_row (t, "db", "SELECT 1 AS one");
  g_assert_true (g_variant_lookup (row, "one", "i", &one));
  g_assert_true (g_file_test (pid_file, G_FILE_TEST_EXISTS));

  bp_test_daemon_signal (t, SIGKILL);
  g_assert_cmpint (bp_test_daemon_wait_exit (t), ==, 128 + SIGKILL);
  /* The kernel sends the postmaster SIGINT: a fast shutdown. */
  g_assert_true (bp_test_wait_until (file_gone, pid_file, 60000));
  bp_test_daemon_free (t);
  rm_rf (scratch);
}

static void
test_no_binaries (void)
{
  BpTestDaemon *t = bp_test_daemon_new ("[backend db]\ntype=postgres\nmanaged=true\nbindir=/nonexistent/pgbin\n");
  g_autofree char *reason = NULL;
  g_autofree char *state = settled_state (t, "db", &reason);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *remote = NULL;

  g_assert_cmpstr (state, ==, "unavailable");
  g_assert_nonnull (strstr (reason, "/nonexistent/pgbin"));
  g_assert_nonnull (strstr (reason, "server binaries"));

  reply = bp_test_daemon_call (t, "/org/backplane/Backplane1/backend/db", SQL_IFACE ".Query",
                               g_variant_new_parsed ("('SELECT 1', @av [], @a{sv} {})"), "(a(ss)aa{sv})", &error);
  g_assert_null (reply);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, "org.backplane.Backplane1.Error.Unavailable");
  bp_test_daemon_free (t);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/postgres-managed/default-config", test_default_config);
  g_test_add_func ("/postgres-managed/sigkill", test_sigkill);
  g_test_add_func ("/postgres-managed/no-binaries", test_no_binaries);
  return g_test_run ();
}
