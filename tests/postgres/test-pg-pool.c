/* test-pg-pool.c: the postgres pool (BpPool + BpPgConnection) against a
 * real PostgreSQL 15 cluster: the pool scenarios of dbclients.md §5.1
 * (2–10, 15).
 *
 * One cluster (pg-fixture.c) serves all tests of this binary; each test
 * names its connections with its own application_name, so counting them in
 * pg_stat_activity sees only its own. Waits are on events or on polled
 * server state with a generous overall deadline; the only clocks are the
 * real ones of a real server (lifetimes and timeouts are a few hundred
 * milliseconds, bounds are loose).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "bp-pg-connection.h"
#include "bp-pg-error.h"
#include "bp-pg-pool.h"
#include "pg-fixture.h"

#define WAIT_US (60 * G_USEC_PER_SEC)

static PgFixture *fixture;
static BpPgConnection *admin;

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

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
  GAsyncResult **slot = user_data;

  g_assert_null (*slot);
  *slot = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;
  guint wake = g_timeout_add (50, wake_cb, NULL);

  while (*slot == NULL)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
  g_source_remove (wake);
  return g_steal_pointer (slot);
}

/* Runs the loop for @ms (real time): lets timers of the pool fire. */
static void
spin (guint ms)
{
  gint64 end = g_get_monotonic_time () + (gint64) ms * 1000;
  guint wake = g_timeout_add (10, wake_cb, NULL);

  while (g_get_monotonic_time () < end)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (wake);
}

/* Spins until @cond holds; fails the test after the deadline. */
static void
spin_until (gboolean (*cond) (gpointer),
            gpointer   data)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_US;

  while (!cond (data))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      spin (20);
    }
}

typedef struct
{
  char  *conninfo;
  char  *app;
  guint  connect_timeout_ms;
} Factory;

static void
factory_free (Factory *f)
{
  g_free (f->conninfo);
  g_free (f->app);
  g_free (f);
}

static BpPgConnection *
factory_new_connection (gpointer user_data)
{
  Factory *f = user_data;
  BpPgConnection *conn = bp_pg_connection_new (f->conninfo, NULL, NULL);

  bp_pg_connection_set_application_name (conn, f->app);
  bp_pg_connection_set_connect_timeout (conn, f->connect_timeout_ms);
  return conn;
}

static BpPool *
new_pool (const char                *app,
          const char                *conninfo,
          const BpBackendPoolConfig *config,
          guint                      connect_timeout_ms)
{
  Factory *f = g_new0 (Factory, 1);

  f->conninfo = g_strdup (conninfo != NULL ? conninfo : fixture->conninfo_socket);
  f->app = g_strdup (app);
  f->connect_timeout_ms = connect_timeout_ms;
  return bp_pg_pool_new (factory_new_connection, f, (GDestroyNotify) factory_free,
                         bp_clock_get_default (), config, connect_timeout_ms);
}

static BpBackendPoolConfig
default_config (void)
{
  BpBackendPoolConfig config = {
    .min = 0, .max = 4, .acquire_timeout_ms = 10000, .idle_timeout_ms = 600000,
    .max_lifetime_ms = 0, .max_uses = 0,
  };

  return config;
}

static BpPoolItem *
acquire (BpPool  *pool,
         GError **error)
{
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  bp_pg_pool_acquire_async (pool, "test", NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  return bp_pg_pool_acquire_finish (pool, result, error);
}

static BpPoolItem *
acquire_ok (BpPool *pool)
{
  g_autoptr(GError) error = NULL;
  BpPoolItem *item = acquire (pool, &error);

  g_assert_no_error (error);
  g_assert_nonnull (item);
  return item;
}

static BpPgConnection *
conn_of (BpPoolItem *item)
{
  return bp_pool_item_get_resource (item);
}

static int
pid_of (BpPoolItem *item)
{
  return bp_pg_connection_get_backend_pid (conn_of (item));
}

static gboolean
run_query (BpPgConnection  *conn,
           const char      *sql,
           GVariant       **out_rows,
           GError         **error)
{
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  bp_pg_connection_query_async (conn, sql, NULL, 0, 0, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  return bp_pg_connection_query_finish (conn, result, NULL, out_rows, NULL, error);
}

static void
run_ok (BpPgConnection *conn,
        const char     *sql)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (run_query (conn, sql, NULL, &error));
  g_assert_no_error (error);
}

static gint64
admin_count (const char *sql)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) rows = NULL;
  g_autoptr(GVariant) row = NULL;
  gint64 n = -1;

  g_assert_true (run_query (admin, sql, &rows, &error));
  g_assert_no_error (error);
  row = g_variant_get_child_value (rows, 0);
  g_assert_true (g_variant_lookup (row, "n", "x", &n));
  return n;
}

static gint64
backends_of (const char *app)
{
  g_autofree char *sql = g_strdup_printf ("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = '%s'",
                                          app);

  return admin_count (sql);
}

static void
terminate (int pid)
{
  g_autofree char *sql = g_strdup_printf ("SELECT pg_terminate_backend(%d)", pid);

  run_ok (admin, sql);
}

static guint64
stat_u (BpPool     *pool,
        const char *key)
{
  g_autoptr(GVariant) stats = bp_pool_dup_stats (pool);
  g_autoptr(GVariant) value = g_variant_lookup_value (stats, key, NULL);

  g_assert_nonnull (value);
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (value);
  return g_variant_get_uint64 (value);
}

static void
close_pool (BpPool *pool)
{
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  bp_pool_close_async (pool, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  g_assert_true (bp_pool_close_finish (pool, result, &error));
  g_assert_no_error (error);
}

typedef struct
{
  const char *app;
  gint64      n;
} AppCount;

static gboolean
app_has_n (gpointer data)
{
  AppCount *c = data;

  return backends_of (c->app) == c->n;
}

static void
wait_backends (const char *app,
               gint64      n)
{
  AppCount c = { app, n };

  spin_until (app_has_n, &c);
}

static gboolean
conn_closed (gpointer data)
{
  return bp_pg_connection_get_state (data) == BP_PG_CONNECTION_STATE_CLOSED;
}

/* ---------------------------------------------------------------------- */
/* 2. Connect timeout                                                      */

static void
test_connect_timeout (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) listener = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(BpPool) pool = NULL;
  g_autofree char *conninfo = NULL;
  BpBackendPoolConfig config = default_config ();
  BpPoolItem *item;
  gint64 start, elapsed;

  /* The kernel completes the handshake; nobody ever answers. */
  listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (listener, any, FALSE, &error);
  g_assert_no_error (error);
  g_socket_listen (listener, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (listener, &error);
  g_assert_no_error (error);
  conninfo = g_strdup_printf ("host=127.0.0.1 port=%u dbname=postgres user=x",
                              g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));

  pool = new_pool ("bp-pool-connect-timeout", conninfo, &config, 500);
  start = g_get_monotonic_time ();
  item = acquire (pool, &error);
  elapsed = g_get_monotonic_time () - start;
  g_assert_null (item);
  g_assert_error (error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_cmpint (elapsed, >=, 450 * 1000);
  g_assert_cmpint (elapsed, <, 5 * G_USEC_PER_SEC);
  /* Nothing left behind. */
  g_assert_cmpuint (stat_u (pool, "size"), ==, 0);
  g_assert_cmpuint (stat_u (pool, "pending-creates"), ==, 0);
  g_assert_cmpuint (stat_u (pool, "waiting"), ==, 0);
  close_pool (pool);
}

/* ---------------------------------------------------------------------- */
/* 3. Beyond max                                                           */

static void
test_beyond_max (void)
{
  BpBackendPoolConfig config = default_config ();
  g_autoptr(BpPool) pool = NULL;
  g_autoptr(GError) error = NULL;
  BpPoolItem *a, *b, *c, *d;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  int pid_a;
  gint64 start, elapsed;

  config.max = 2;
  config.acquire_timeout_ms = 500;
  pool = new_pool ("bp-pool-beyond-max", NULL, &config, 5000);
  a = acquire_ok (pool);
  b = acquire_ok (pool);
  pid_a = pid_of (a);

  /* The third waits … */
  bp_pg_pool_acquire_async (pool, "third", NULL, store_result_cb, &slot);
  spin (50);
  g_assert_null (slot);
  g_assert_cmpuint (stat_u (pool, "waiting"), ==, 1);
  /* … and gets the connection released within the timeout. */
  bp_pg_pool_release (pool, a);
  result = wait_result (&slot);
  c = bp_pg_pool_acquire_finish (pool, result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (pid_of (c), ==, pid_a);
  g_assert_cmpuint (stat_u (pool, "waiting"), ==, 0);

  /* With nothing released it times out. */
  start = g_get_monotonic_time ();
  d = acquire (pool, &error);
  elapsed = g_get_monotonic_time () - start;
  g_assert_null (d);
  g_assert_error (error, BP_ERROR, BP_ERROR_POOL_EXHAUSTED);
  g_assert_cmpint (elapsed, >=, 450 * 1000);
  g_assert_cmpint (elapsed, <, 5 * G_USEC_PER_SEC);
  g_assert_cmpuint (stat_u (pool, "waiting"), ==, 0);
  g_assert_cmpuint (stat_u (pool, "acquire-timeouts"), ==, 1);
  g_assert_cmpuint (backends_of ("bp-pool-beyond-max"), ==, 2);

  bp_pg_pool_release (pool, b);
  bp_pg_pool_release (pool, c);
  close_pool (pool);
}

/* ---------------------------------------------------------------------- */
/* 4. FIFO                                                                 */

typedef struct
{
  BpPool *pool;
  GArray *order;
  guint   index;
} FifoWaiter;

static void
fifo_acquired_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  FifoWaiter *w = user_data;
  g_autoptr(GError) error = NULL;
  BpPoolItem *item = bp_pg_pool_acquire_finish (BP_POOL (object), result, &error);

  g_assert_no_error (error);
  g_array_append_val (w->order, w->index);
  bp_pg_pool_release (w->pool, item);
}

static void
test_fifo (void)
{
  BpBackendPoolConfig config = default_config ();
  g_autoptr(BpPool) pool = NULL;
  g_autoptr(GArray) order = g_array_new (FALSE, FALSE, sizeof (guint));
  FifoWaiter waiters[5];
  BpPoolItem *held;
  gint64 deadline;

  config.max = 1;
  pool = new_pool ("bp-pool-fifo", NULL, &config, 5000);
  held = acquire_ok (pool);
  for (guint i = 0; i < G_N_ELEMENTS (waiters); i++)
    {
      waiters[i].pool = pool;
      waiters[i].order = order;
      waiters[i].index = i;
      bp_pg_pool_acquire_async (pool, "fifo", NULL, fifo_acquired_cb, &waiters[i]);
    }
  spin (20);
  g_assert_cmpuint (stat_u (pool, "waiting"), ==, 5);
  bp_pg_pool_release (pool, held);

  deadline = g_get_monotonic_time () + WAIT_US;
  while (order->len < G_N_ELEMENTS (waiters))
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
  for (guint i = 0; i < order->len; i++)
    g_assert_cmpuint (g_array_index (order, guint, i), ==, i);
  close_pool (pool);
}

/* ---------------------------------------------------------------------- */
/* 5. Idle backend killed                                                  */

static void
test_idle_killed (void)
{
  BpBackendPoolConfig config = default_config ();
  g_autoptr(BpPool) pool = new_pool ("bp-pool-idle-killed", NULL, &config, 5000);
  g_autoptr(BpPgConnection) victim = NULL;
  BpPoolItem *item = acquire_ok (pool);
  int pid = pid_of (item);

  victim = g_object_ref (conn_of (item));
  bp_pg_pool_release (pool, item);
  terminate (pid);
  /* Noticed from its socket while idle in the pool. */
  spin_until (conn_closed, victim);

  item = acquire_ok (pool);
  g_assert_cmpint (pid_of (item), !=, pid);
  run_ok (conn_of (item), "SELECT 1");
  g_assert_cmpuint (stat_u (pool, "destroyed"), ==, 1);
  g_assert_cmpuint (stat_u (pool, "size"), ==, 1);
  bp_pg_pool_release (pool, item);
  close_pool (pool);
}

/* ---------------------------------------------------------------------- */
/* 6. In-use backend killed                                                */

static void
test_busy_killed (void)
{
  BpBackendPoolConfig config = default_config ();
  g_autoptr(BpPool) pool = new_pool ("bp-pool-busy-killed", NULL, &config, 5000);
  g_autoptr(GError) error = NULL;
  BpPoolItem *item = acquire_ok (pool);
  BpPoolItem *next;
  int pid = pid_of (item);
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  char sqlstate[6];

  bp_pg_connection_query_async (conn_of (item), "SELECT pg_sleep(5)", NULL, 0, 0, NULL, store_result_cb, &slot);
  spin (100);
  terminate (pid);
  result = wait_result (&slot);
  g_assert_false (bp_pg_connection_query_finish (conn_of (item), result, NULL, NULL, NULL, &error));
  g_assert_true (bp_pg_error_get_sqlstate (error, sqlstate));
  g_assert_cmpint (bp_pg_sqlstate_classify (sqlstate), ==, BP_PG_ERROR_CLASS_CONNECTION);

  /* Destroyed on release, not returned. */
  bp_pg_pool_release (pool, item);
  g_assert_cmpuint (stat_u (pool, "size"), ==, 0);
  g_assert_cmpuint (stat_u (pool, "destroyed"), ==, 1);
  next = acquire_ok (pool);
  g_assert_cmpint (pid_of (next), !=, pid);
  run_ok (conn_of (next), "SELECT 1");
  bp_pg_pool_release (pool, next);
  close_pool (pool);
}

/* ---------------------------------------------------------------------- */
/* 7. Server restart                                                       */

static void
test_server_restart (void)
{
  BpBackendPoolConfig config = default_config ();
  g_autoptr(BpPool) pool = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpPgConnection) first = NULL;
  g_autoptr(BpPgConnection) second = NULL;
  BpPoolItem *a, *b, *item;
  int pid_a, pid_b;
  gint64 start, elapsed;

  config.min = 2;
  pool = new_pool ("bp-pool-restart", NULL, &config, 2000);
  a = acquire_ok (pool);
  b = acquire_ok (pool);
  pid_a = pid_of (a);
  pid_b = pid_of (b);
  first = g_object_ref (conn_of (a));
  second = g_object_ref (conn_of (b));
  bp_pg_pool_release (pool, a);
  bp_pg_pool_release (pool, b);

  g_assert_true (pg_fixture_pg_ctl (fixture, "restart", &error));
  g_assert_no_error (error);
  /* Both idle connections learnt it from their sockets. */
  spin_until (conn_closed, first);
  spin_until (conn_closed, second);
  g_clear_object (&admin);
  admin = bp_pg_connection_new (fixture->conninfo_socket, NULL, NULL);
  {
    GAsyncResult *slot = NULL;
    g_autoptr(GAsyncResult) result = NULL;

    bp_pg_connection_connect_async (admin, NULL, store_result_cb, &slot);
    result = wait_result (&slot);
    g_assert_true (bp_pg_connection_connect_finish (admin, result, &error));
    g_assert_no_error (error);
  }

  /* Queries after the restart work, on new backends, without restarting
   * anything. */
  item = acquire_ok (pool);
  g_assert_cmpint (pid_of (item), !=, pid_a);
  g_assert_cmpint (pid_of (item), !=, pid_b);
  run_ok (conn_of (item), "SELECT 1");
  bp_pg_pool_release (pool, item);

  /* During an outage they fail fast (no hang). */
  g_assert_true (pg_fixture_pg_ctl (fixture, "stop", &error));
  g_assert_no_error (error);
  spin (50);
  start = g_get_monotonic_time ();
  item = acquire (pool, &error);
  elapsed = g_get_monotonic_time () - start;
  g_assert_null (item);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "SQLSTATE 08001"));
  g_assert_cmpint (elapsed, <, 3 * G_USEC_PER_SEC);
  g_clear_error (&error);

  g_assert_true (pg_fixture_pg_ctl (fixture, "start", &error));
  g_assert_no_error (error);
  item = acquire_ok (pool);
  run_ok (conn_of (item), "SELECT 1");
  bp_pg_pool_release (pool, item);
  close_pool (pool);

  g_clear_object (&admin);
  admin = bp_pg_connection_new (fixture->conninfo_socket, NULL, NULL);
  {
    GAsyncResult *slot = NULL;
    g_autoptr(GAsyncResult) result = NULL;

    bp_pg_connection_connect_async (admin, NULL, store_result_cb, &slot);
    result = wait_result (&slot);
    g_assert_true (bp_pg_connection_connect_finish (admin, result, &error));
    g_assert_no_error (error);
  }
}

/* ---------------------------------------------------------------------- */
/* 8. Release hygiene                                                      */

static void
test_release_hygiene (void)
{
  BpBackendPoolConfig config = default_config ();
  g_autoptr(BpPool) pool = new_pool ("bp-pool-hygiene", NULL, &config, 5000);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) rows = NULL;
  BpPoolItem *item;
  int pid;

  run_ok (admin, "CREATE TABLE hygiene (v int)");

  /* Released inside a transaction. */
  item = acquire_ok (pool);
  pid = pid_of (item);
  run_ok (conn_of (item), "BEGIN");
  run_ok (conn_of (item), "INSERT INTO hygiene VALUES (1)");
  g_assert_cmpint (bp_pg_connection_get_transaction_status (conn_of (item)), ==, PQTRANS_INTRANS);
  bp_pg_pool_release (pool, item);
  g_assert_cmpuint (stat_u (pool, "destroyed"), ==, 1);

  item = acquire_ok (pool);
  g_assert_cmpint (pid_of (item), !=, pid);
  g_assert_cmpint (bp_pg_connection_get_transaction_status (conn_of (item)), ==, PQTRANS_IDLE);
  g_assert_true (run_query (conn_of (item), "SELECT count(*) AS n FROM hygiene", &rows, &error));
  g_assert_no_error (error);
  {
    g_autofree char *text = g_variant_print (rows, FALSE);
    g_assert_cmpstr (text, ==, "[{'n': <int64 0>}]");
  }

  /* Released inside a failed transaction. */
  pid = pid_of (item);
  run_ok (conn_of (item), "BEGIN");
  g_assert_false (run_query (conn_of (item), "SELECT 1/0", NULL, &error));
  g_clear_error (&error);
  g_assert_cmpint (bp_pg_connection_get_transaction_status (conn_of (item)), ==, PQTRANS_INERROR);
  bp_pg_pool_release (pool, item);
  g_assert_cmpuint (stat_u (pool, "destroyed"), ==, 2);

  item = acquire_ok (pool);
  g_assert_cmpint (pid_of (item), !=, pid);
  g_assert_cmpint (bp_pg_connection_get_transaction_status (conn_of (item)), ==, PQTRANS_IDLE);
  bp_pg_pool_release (pool, item);
  close_pool (pool);
  run_ok (admin, "DROP TABLE hygiene");
}

/* ---------------------------------------------------------------------- */
/* 9. Lifetime and use limits                                              */

static void
test_max_lifetime (void)
{
  BpBackendPoolConfig config = default_config ();
  g_autoptr(BpPool) pool = NULL;
  BpPoolItem *item;
  int pid;

  config.max_lifetime_ms = 600;
  pool = new_pool ("bp-pool-lifetime", NULL, &config, 5000);

  /* Idle: retired once expired, the next checkout is a new backend. */
  item = acquire_ok (pool);
  pid = pid_of (item);
  bp_pg_pool_release (pool, item);
  spin (900);
  g_assert_cmpuint (stat_u (pool, "destroyed"), ==, 1);
  item = acquire_ok (pool);
  g_assert_cmpint (pid_of (item), !=, pid);

  /* Busy: kept past its lifetime while in use, retired on release. */
  pid = pid_of (item);
  spin (900);
  run_ok (conn_of (item), "SELECT 1");
  g_assert_cmpint (pid_of (item), ==, pid);
  g_assert_cmpuint (stat_u (pool, "destroyed"), ==, 1);
  bp_pg_pool_release (pool, item);
  g_assert_cmpuint (stat_u (pool, "destroyed"), ==, 2);
  item = acquire_ok (pool);
  g_assert_cmpint (pid_of (item), !=, pid);
  bp_pg_pool_release (pool, item);
  close_pool (pool);
}

static void
test_max_uses (void)
{
  BpBackendPoolConfig config = default_config ();
  g_autoptr(BpPool) pool = NULL;
  BpPoolItem *item;
  int pid = 0;

  config.max_uses = 3;
  pool = new_pool ("bp-pool-max-uses", NULL, &config, 5000);
  for (guint i = 0; i < 3; i++)
    {
      item = acquire_ok (pool);
      if (i == 0)
        pid = pid_of (item);
      g_assert_cmpint (pid_of (item), ==, pid);
      run_ok (conn_of (item), "SELECT 1");
      bp_pg_pool_release (pool, item);
    }
  item = acquire_ok (pool);
  g_assert_cmpint (pid_of (item), !=, pid);
  bp_pg_pool_release (pool, item);
  close_pool (pool);
}

/* ---------------------------------------------------------------------- */
/* 10. Idle timeout versus min                                             */

static void
test_idle_timeout_min (void)
{
  BpBackendPoolConfig config = default_config ();
  g_autoptr(BpPool) pool = NULL;
  BpPoolItem *items[5];

  config.min = 2;
  config.max = 5;
  config.idle_timeout_ms = 500;
  pool = new_pool ("bp-pool-idle-min", NULL, &config, 5000);
  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    items[i] = acquire_ok (pool);
  g_assert_cmpint (backends_of ("bp-pool-idle-min"), ==, 5);
  for (guint i = 0; i < G_N_ELEMENTS (items); i++)
    bp_pg_pool_release (pool, items[i]);

  /* Shrinks to exactly min, and stays there. */
  wait_backends ("bp-pool-idle-min", 2);
  spin (800);
  g_assert_cmpint (backends_of ("bp-pool-idle-min"), ==, 2);
  g_assert_cmpuint (stat_u (pool, "size"), ==, 2);
  close_pool (pool);
  wait_backends ("bp-pool-idle-min", 0);
}

/* ---------------------------------------------------------------------- */
/* 15. Shutdown                                                            */

static void
test_close (void)
{
  BpBackendPoolConfig config = default_config ();
  g_autoptr(BpPool) pool = new_pool ("bp-pool-close", NULL, &config, 5000);
  g_autoptr(GError) error = NULL;
  BpPoolItem *a = acquire_ok (pool);
  BpPoolItem *b = acquire_ok (pool);
  BpPoolItem *late;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  gint64 start;

  bp_pool_close_async (pool, NULL, store_result_cb, &slot);
  spin (50);
  g_assert_null (slot);  /* waits for the two checked out */

  start = g_get_monotonic_time ();
  late = acquire (pool, &error);
  g_assert_null (late);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "closed"));
  g_assert_cmpint (g_get_monotonic_time () - start, <, G_USEC_PER_SEC);
  g_clear_error (&error);

  run_ok (conn_of (a), "SELECT 1");
  bp_pg_pool_release (pool, a);
  spin (20);
  g_assert_null (slot);
  bp_pg_pool_release (pool, b);
  result = wait_result (&slot);
  g_assert_true (bp_pool_close_finish (pool, result, &error));
  g_assert_no_error (error);
  wait_backends ("bp-pool-close", 0);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);

  fixture = pg_fixture_start (&error);
  if (fixture == NULL)
    g_error ("cannot start the PostgreSQL fixture: %s", error->message);
  admin = bp_pg_connection_new (fixture->conninfo_socket, NULL, NULL);
  bp_pg_connection_connect_async (admin, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  if (!bp_pg_connection_connect_finish (admin, result, &error))
    g_error ("admin connection: %s", error->message);

  g_test_add_func ("/pg-pool/connect-timeout", test_connect_timeout);
  g_test_add_func ("/pg-pool/beyond-max", test_beyond_max);
  g_test_add_func ("/pg-pool/fifo", test_fifo);
  g_test_add_func ("/pg-pool/idle-killed", test_idle_killed);
  g_test_add_func ("/pg-pool/busy-killed", test_busy_killed);
  g_test_add_func ("/pg-pool/release-hygiene", test_release_hygiene);
  g_test_add_func ("/pg-pool/max-lifetime", test_max_lifetime);
  g_test_add_func ("/pg-pool/max-uses", test_max_uses);
  g_test_add_func ("/pg-pool/idle-timeout-min", test_idle_timeout_min);
  g_test_add_func ("/pg-pool/close", test_close);
  g_test_add_func ("/pg-pool/server-restart", test_server_restart);

  ret = g_test_run ();
  g_clear_object (&admin);
  pg_fixture_stop (g_steal_pointer (&fixture));
  return ret;
}
