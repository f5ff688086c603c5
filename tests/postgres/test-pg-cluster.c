/* test-pg-cluster.c: the managed cluster (managed=true) end to end
 *
 * Runs as whoever runs the suite: as root (CI) the server programs run as
 * the `postgres` system user and the directories are chowned to it; meson
 * also runs this binary through runuser as `postgres` itself, the
 * unprivileged path.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bp-pg-cluster.h"
#include "bp-pg-connection.h"

#define WAIT_US (120 * G_USEC_PER_SEC)

static gboolean
wake_cb (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

static void
store_result_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;
  guint wake = g_timeout_add (100, wake_cb, NULL);

  while (*slot == NULL)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
  g_source_remove (wake);
  return g_steal_pointer (slot);
}

static char *
start (BpPgCluster  *cluster,
       GError      **error)
{
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  bp_pg_cluster_start_async (cluster, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  return bp_pg_cluster_start_finish (cluster, result, error);
}

static void
stop (BpPgCluster *cluster)
{
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  bp_pg_cluster_stop_async (cluster, store_result_cb, &slot);
  result = wait_result (&slot);
  g_assert_true (bp_pg_cluster_stop_finish (cluster, result, &error));
  g_assert_no_error (error);
}

static const char *
expected_role (void)
{
  return geteuid () == 0 ? BP_PG_CLUSTER_SERVER_USER : g_get_user_name ();
}

static void
query_one (const char *conninfo)
{
  g_autoptr(BpPgConnection) conn = bp_pg_connection_new (conninfo, NULL, NULL);
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) rows = NULL;
  g_autofree char *text = NULL;

  bp_pg_connection_connect_async (conn, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  g_assert_true (bp_pg_connection_connect_finish (conn, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);

  bp_pg_connection_query_async (conn, "SELECT current_user = $1 AS me, "
                                      "current_setting('listen_addresses') = '' AS socket_only",
                                g_variant_new_parsed ("[<%s>]", expected_role ()),
                                0, 0, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  g_assert_true (bp_pg_connection_query_finish (conn, result, NULL, &rows, NULL, &error));
  g_assert_no_error (error);
  text = g_variant_print (rows, FALSE);
  g_assert_cmpstr (text, ==, "[{'me': <true>, 'socket_only': <true>}]");
  bp_pg_connection_close (conn);
}

/* A scratch directory the server's user can enter (as root: postgres). */
static char *
make_scratch (void)
{
  g_autoptr(GError) error = NULL;
  char *tmp = g_dir_make_tmp ("bp-pg-cluster-XXXXXX", &error);

  g_assert_no_error (error);
  g_assert_cmpint (g_chmod (tmp, 0755), ==, 0);
  return tmp;
}

static void
remove_scratch (const char *tmp)
{
  g_autofree char *q = g_shell_quote (tmp);
  g_autofree char *rm = g_strdup_printf ("rm -rf %s", q);

  g_assert_cmpint (system (rm), ==, 0);
}

static void
assert_mode_owner (const char *path,
                   guint       mode)
{
  struct stat st;

  g_assert_cmpint (g_stat (path, &st), ==, 0);
  g_assert_cmpuint (st.st_mode & 0777, ==, mode);
  if (geteuid () == 0)
    g_assert_cmpuint (st.st_uid, !=, 0);
  else
    g_assert_cmpuint (st.st_uid, ==, geteuid ());
}

static gboolean
process_gone (int pid)
{
  g_autofree char *stat_path = g_strdup_printf ("/proc/%d/stat", pid);
  g_autofree char *contents = NULL;
  const char *end;

  if (!g_file_get_contents (stat_path, &contents, NULL, NULL))
    return TRUE;
  /* A zombie nobody reaped yet is gone too. */
  end = strrchr (contents, ')');
  return end != NULL && end[1] == ' ' && end[2] == 'Z';
}

static void
test_managed (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = make_scratch ();
  g_autofree char *data_dir = g_build_filename (tmp, "data", "db", NULL);
  g_autofree char *socket_dir = g_build_filename (tmp, "run", "db", NULL);
  g_autoptr(BpPgCluster) cluster = NULL;
  g_autofree char *conninfo = NULL;
  g_autofree char *again = NULL;
  int pid;

  cluster = bp_pg_cluster_new (BP_PG_BINDIR, data_dir, socket_dir, bp_clock_get_default ());
  conninfo = start (cluster, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (bp_pg_cluster_get_data_dir (cluster), ==, data_dir);
  g_assert_cmpstr (bp_pg_cluster_get_socket_dir (cluster), ==, socket_dir);
  g_assert_cmpstr (bp_pg_cluster_get_role (cluster), ==, expected_role ());
  assert_mode_owner (data_dir, 0700);
  assert_mode_owner (socket_dir, 0700);
  pid = bp_pg_cluster_get_server_pid (cluster);
  g_assert_cmpint (pid, >, 0);
  query_one (conninfo);
  stop (cluster);
  g_assert_true (process_gone (pid));
  g_assert_cmpint (bp_pg_cluster_get_server_pid (cluster), ==, 0);
  g_clear_object (&cluster);

  /* A second start reuses the data directory (no initdb). */
  cluster = bp_pg_cluster_new (BP_PG_BINDIR, data_dir, socket_dir, bp_clock_get_default ());
  again = start (cluster, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (again, ==, conninfo);
  query_one (again);
  stop (cluster);

  remove_scratch (tmp);
}

/* A server that outlives its cluster object (a previous daemon's) is
 * adopted, and stopped through pg_ctl. */
static void
test_adopt (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = make_scratch ();
  g_autofree char *data_dir = g_build_filename (tmp, "data", NULL);
  g_autofree char *socket_dir = g_build_filename (tmp, "run", NULL);
  g_autofree char *pid_file = g_build_filename (data_dir, "postmaster.pid", NULL);
  g_autoptr(BpPgCluster) first = bp_pg_cluster_new (BP_PG_BINDIR, data_dir, socket_dir, bp_clock_get_default ());
  g_autoptr(BpPgCluster) second = bp_pg_cluster_new (BP_PG_BINDIR, data_dir, socket_dir, bp_clock_get_default ());
  g_autofree char *conninfo = NULL;
  g_autofree char *adopted = NULL;
  int pid;

  conninfo = start (first, &error);
  g_assert_no_error (error);
  pid = bp_pg_cluster_get_server_pid (first);

  adopted = start (second, &error);
  g_assert_no_error (error);
  /* Its own postmaster gave up on the lock the first one holds. */
  {
    gint64 deadline = g_get_monotonic_time () + WAIT_US;

    while (bp_pg_cluster_get_server_pid (second) != 0)
      {
        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        g_main_context_iteration (NULL, TRUE);
      }
  }
  query_one (adopted);

  stop (second);
  g_assert_false (g_file_test (pid_file, G_FILE_TEST_EXISTS));
  {
    gint64 deadline = g_get_monotonic_time () + WAIT_US;

    while (!process_gone (pid))
      {
        g_assert_cmpint (g_get_monotonic_time (), <, deadline);
        g_main_context_iteration (NULL, FALSE);
        g_usleep (10000);
      }
  }
  stop (first);
  remove_scratch (tmp);
}

/* The child of /pg-cluster/dies-with-daemon: starts a cluster, tells its
 * pid, and dies hard. */
static void
dying_daemon (void)
{
  const char *tmp = g_getenv ("BP_TEST_CLUSTER_DIR");
  g_autofree char *data_dir = g_build_filename (tmp, "data", NULL);
  g_autofree char *socket_dir = g_build_filename (tmp, "run", NULL);
  g_autoptr(BpPgCluster) cluster = bp_pg_cluster_new (BP_PG_BINDIR, data_dir, socket_dir, bp_clock_get_default ());
  g_autoptr(GError) error = NULL;
  g_autofree char *conninfo = NULL;
  g_autofree char *pid_path = NULL;
  g_autofree char *pid_text = NULL;

  if (!g_test_subprocess ())
    {
      g_test_skip ("run by /pg-cluster/dies-with-daemon");
      return;
    }
  conninfo = start (cluster, &error);
  g_assert_no_error (error);
  pid_path = g_build_filename (tmp, "server-pid", NULL);
  pid_text = g_strdup_printf ("%d", bp_pg_cluster_get_server_pid (cluster));
  g_assert_true (g_file_set_contents (pid_path, pid_text, -1, NULL));
  raise (SIGKILL);
}

static char *dies_dir;  /* made in main(): setenv before any thread */

static void
test_dies_with_daemon (void)
{
  g_autofree char *tmp = g_steal_pointer (&dies_dir);
  g_autofree char *pid_file = g_build_filename (tmp, "data", "postmaster.pid", NULL);
  g_autofree char *pid_path = g_build_filename (tmp, "server-pid", NULL);
  g_autofree char *pid_text = NULL;
  gint64 deadline;
  int pid;

  g_test_trap_subprocess ("/pg-cluster/dies-with-daemon/child", 120 * G_USEC_PER_SEC,
                          G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_failed ();
  g_assert_true (g_file_get_contents (pid_path, &pid_text, NULL, NULL));
  pid = atoi (pid_text);
  g_assert_cmpint (pid, >, 0);

  /* SIGINT from the kernel: a fast shutdown removes the pid file. */
  deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
  while (!process_gone (pid) || g_file_test (pid_file, G_FILE_TEST_EXISTS))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_usleep (20000);
    }
  remove_scratch (tmp);
}

static void
test_root_fallback (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = make_scratch ();
  g_autofree char *closed = g_build_filename (tmp, "closed", NULL);
  g_autofree char *data_dir = g_build_filename (closed, "data", NULL);
  g_autofree char *socket_dir = g_build_filename (closed, "run", NULL);
  g_autofree char *fb_data = g_build_filename (tmp, "open", "data", NULL);
  g_autofree char *fb_socket = g_build_filename (tmp, "open", "run", NULL);
  g_autoptr(BpPgCluster) cluster = NULL;
  g_autofree char *conninfo = NULL;

  if (geteuid () != 0)
    {
      g_test_skip ("only root hands the cluster to another user");
      remove_scratch (tmp);
      return;
    }
  /* Like root's home: 0700, owned by root. */
  g_assert_cmpint (g_mkdir (closed, 0700), ==, 0);

  /* Without a fallback: a clear error naming the directory in the way. */
  cluster = bp_pg_cluster_new (BP_PG_BINDIR, data_dir, socket_dir, bp_clock_get_default ());
  conninfo = start (cluster, &error);
  g_assert_null (conninfo);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, closed));
  g_assert_nonnull (strstr (error->message, "data-dir="));
  g_clear_error (&error);
  g_clear_object (&cluster);
  g_assert_false (g_file_test (data_dir, G_FILE_TEST_EXISTS));

  /* With one: it is used. */
  cluster = bp_pg_cluster_new (BP_PG_BINDIR, data_dir, socket_dir, bp_clock_get_default ());
  bp_pg_cluster_set_fallback_dirs (cluster, fb_data, fb_socket);
  conninfo = start (cluster, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (bp_pg_cluster_get_data_dir (cluster), ==, fb_data);
  g_assert_cmpstr (bp_pg_cluster_get_socket_dir (cluster), ==, fb_socket);
  g_assert_false (g_file_test (data_dir, G_FILE_TEST_EXISTS));
  {
    /* The ancestors it created let postgres through, nothing more. */
    g_autofree char *open_dir = g_build_filename (tmp, "open", NULL);
    struct stat st;

    g_assert_cmpint (g_stat (open_dir, &st), ==, 0);
    g_assert_cmpuint (st.st_mode & 0777, ==, 0711);
  }
  query_one (conninfo);
  stop (cluster);
  remove_scratch (tmp);
}

static void
test_missing_binaries (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpPgCluster) cluster = bp_pg_cluster_new ("/nonexistent/bin", "/nonexistent/data", "/nonexistent/run",
                                                      bp_clock_get_default ());
  g_autofree char *conninfo = start (cluster, &error);

  g_assert_null (conninfo);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "/nonexistent/bin"));
  g_assert_false (g_file_test ("/nonexistent", G_FILE_TEST_EXISTS));
}

int
main (int   argc,
      char *argv[])
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  if (!g_test_subprocess ())
    {
      dies_dir = make_scratch ();
      g_setenv ("BP_TEST_CLUSTER_DIR", dies_dir, TRUE);
    }
  g_test_add_func ("/pg-cluster/managed", test_managed);
  g_test_add_func ("/pg-cluster/adopt", test_adopt);
  g_test_add_func ("/pg-cluster/dies-with-daemon", test_dies_with_daemon);
  g_test_add_func ("/pg-cluster/dies-with-daemon/child", dying_daemon);
  g_test_add_func ("/pg-cluster/root/fallback", test_root_fallback);
  g_test_add_func ("/pg-cluster/missing-binaries", test_missing_binaries);
  ret = g_test_run ();
  if (dies_dir != NULL)  /* that test did not run */
    remove_scratch (dies_dir);
  return ret;
}
