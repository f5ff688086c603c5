/* test-pg-cluster.c: the managed cluster (managed=true) end to end
 *
 * PostgreSQL refuses to run as root, and so does BpPgCluster: as root the
 * test checks that refusal, and meson runs the real test a second time as
 * the `postgres` user (see meson.build).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "bp-pg-cluster.h"
#include "bp-pg-connection.h"

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
  gint64 deadline = g_get_monotonic_time () + 120 * G_USEC_PER_SEC;
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

static void
query_one (const char *conninfo)
{
  g_autoptr(BpPgConnection) conn = bp_pg_connection_new (conninfo, NULL, NULL);
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) rows = NULL;

  bp_pg_connection_connect_async (conn, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  g_assert_true (bp_pg_connection_connect_finish (conn, result, &error));
  g_assert_no_error (error);
  g_clear_object (&result);

  bp_pg_connection_query_async (conn, "SELECT current_user = $1 AS me", g_variant_new_parsed ("[<%s>]", g_get_user_name ()),
                                0, 0, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  g_assert_true (bp_pg_connection_query_finish (conn, result, NULL, &rows, NULL, &error));
  g_assert_no_error (error);
  {
    g_autofree char *text = g_variant_print (rows, FALSE);
    g_assert_cmpstr (text, ==, "[{'me': <true>}]");
  }
  bp_pg_connection_close (conn);
}

static void
test_managed (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *tmp = g_dir_make_tmp ("bp-pg-cluster-XXXXXX", &error);
  g_autofree char *data_dir = g_build_filename (tmp, "data", "db", NULL);
  g_autofree char *socket_dir = g_build_filename (tmp, "run", NULL);
  g_autoptr(BpPgCluster) cluster = NULL;
  g_autofree char *conninfo = NULL;
  g_autofree char *again = NULL;
  g_autofree char *rm = NULL;

  g_assert_no_error (error);
  cluster = bp_pg_cluster_new (BP_PG_BINDIR, data_dir, socket_dir, bp_clock_get_default ());
  conninfo = start (cluster, &error);

  if (geteuid () == 0)
    {
      g_assert_null (conninfo);
      g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
      g_assert_nonnull (strstr (error->message, "root"));
      g_test_message ("as root: refused as expected; the full run happens as the postgres user");
    }
  else
    {
      g_assert_no_error (error);
      query_one (conninfo);
      stop (cluster);
      g_clear_object (&cluster);

      /* A second start reuses the data directory (no initdb). */
      cluster = bp_pg_cluster_new (BP_PG_BINDIR, data_dir, socket_dir, bp_clock_get_default ());
      again = start (cluster, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (again, ==, conninfo);
      query_one (again);
      stop (cluster);
    }

  rm = g_strdup_printf ("rm -rf '%s'", tmp);
  g_assert_cmpint (system (rm), ==, 0);
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
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/pg-cluster/managed", test_managed);
  g_test_add_func ("/pg-cluster/missing-binaries", test_missing_binaries);
  return g_test_run ();
}
