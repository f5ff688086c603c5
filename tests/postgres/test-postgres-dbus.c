/* test-postgres-dbus.c: the postgres backend through backplaned on a private bus
 *
 * One PostgreSQL cluster (pg-fixture.c) and one backplaned (bp-test-daemon.c)
 * serve all tests; the daemon reaches the cluster over TCP with the
 * password from password-env.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib-unix.h>
#include <string.h>
#include <unistd.h>

#include "bp-test-daemon.h"
#include "pg-fixture.h"

#define BUS_NAME  "org.backplane.Backplane1"
#define DB_PATH   "/org/backplane/Backplane1/backend/db"
#define SQL_IFACE "org.backplane.Backplane1.Sql"
#define TX_IFACE  "org.backplane.Backplane1.SqlTransaction"

static PgFixture *fixture;
static BpTestDaemon *daemon_;

static GVariant *
call (const char  *path,
      const char  *method,
      GVariant    *params,
      const char  *reply_type,
      GError     **error)
{
  return bp_test_daemon_call (daemon_, path, method, params, reply_type, error);
}

static GVariant *
call_with_fd (const char  *method,
              GVariant    *params,
              int          fd,
              const char  *reply_type,
              GError     **error)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autofree char *iface = g_strdup (method);
  char *dot = strrchr (iface, '.');

  *dot = '\0';
  g_assert_cmpint (g_unix_fd_list_append (fds, fd, NULL), ==, 0);
  return g_dbus_connection_call_with_unix_fd_list_sync (daemon_->connection, BUS_NAME, DB_PATH, iface, dot + 1,
                                                        params, G_VARIANT_TYPE (reply_type),
                                                        G_DBUS_CALL_FLAGS_NONE, 30000, fds, NULL, NULL, error);
}

static GVariant *
query (const char  *sql,
       GVariant    *params,
       GError     **error)
{
  return call (DB_PATH, SQL_IFACE ".Query",
               g_variant_new ("(s@ava{sv})", sql,
                              params != NULL ? params : g_variant_new_array (G_VARIANT_TYPE_VARIANT, NULL, 0),
                              NULL),
               "(a(ss)aa{sv})", error);
}

static char *
read_all (int fd)
{
  GString *out = g_string_new (NULL);
  char buf[4096];
  ssize_t n;

  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (out, buf, n);
  close (fd);
  return g_string_free (out, FALSE);
}

static void
assert_dbus_error (const GError *error,
                   const char   *name,
                   const char   *needle)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, name);
  if (needle != NULL && strstr (error->message, needle) == NULL)
    g_error ("“%s” not in “%s”", needle, error->message);
}

/* ---------------------------------------------------------------------- */

static gboolean
db_started (gpointer data)
{
  g_autofree char *state = bp_test_daemon_backend_state (daemon_, "db", NULL);
  g_autofree char *slow = bp_test_daemon_backend_state (daemon_, "slow", NULL);

  return !g_str_equal (state, "starting") && !g_str_equal (slow, "starting");
}

static void
test_ready (void)
{
  g_autofree char *reason = NULL;
  g_autofree char *state = bp_test_daemon_backend_state (daemon_, "db", &reason);
  g_autoptr(GVariant) health = NULL;
  g_autoptr(GError) error = NULL;
  gboolean healthy;
  const char *detail;

  g_assert_cmpstr (state, ==, "ready");
  health = call (DB_PATH, "org.backplane.Backplane1.Backend.CheckHealth", NULL, "(bs)", &error);
  g_assert_no_error (error);
  g_variant_get (health, "(b&s)", &healthy, &detail);
  g_assert_true (healthy);
  g_assert_nonnull (strstr (detail, "SELECT 1"));
}

static void
test_query (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = query ("SELECT $1::int AS a, NULL::text AS n, 'x' AS a",
                                     g_variant_new_parsed ("[<41>]"), &error);
  g_autoptr(GVariant) rows = NULL;
  g_autoptr(GVariant) columns = NULL;
  g_autoptr(GVariant) row = NULL;
  gint32 a;
  const char *a2;

  g_assert_no_error (error);
  g_variant_get (reply, "(@a(ss)@aa{sv})", &columns, &rows);
  g_assert_cmpuint (g_variant_n_children (columns), ==, 3);
  g_assert_cmpuint (g_variant_n_children (rows), ==, 1);
  row = g_variant_get_child_value (rows, 0);
  g_assert_true (g_variant_lookup (row, "a", "i", &a));
  g_assert_cmpint (a, ==, 41);
  g_assert_true (g_variant_lookup (row, "a#2", "&s", &a2));
  g_assert_cmpstr (a2, ==, "x");
  g_assert_false (g_variant_lookup (row, "n", "s", NULL));
}

static void
test_query_errors (void)
{
  g_autoptr(GError) error = NULL;
  GVariant *reply;

  reply = query ("SELEC 1", NULL, &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.backplane.Backplane1.Error.Backend", "SQLSTATE 42601");
  g_clear_error (&error);

  reply = call (DB_PATH, SQL_IFACE ".Query",
                g_variant_new_parsed ("('SELECT 1', @av [], {'bogus': <1>})"), "(a(ss)aa{sv})", &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.backplane.Backplane1.Error.InvalidArgument", "bogus");
  g_clear_error (&error);

  reply = query ("SELECT $1, $2", g_variant_new_parsed ("[<1>]"), &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.backplane.Backplane1.Error.InvalidArgument", "($2)");
  g_clear_error (&error);

  reply = call (DB_PATH, SQL_IFACE ".Query",
                g_variant_new_parsed ("('SELECT g FROM generate_series(1, 100) g', @av [], {'max-rows': <uint32 10>})"),
                "(a(ss)aa{sv})", &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.backplane.Backplane1.Error.LimitExceeded", "max-rows");
}

/* breaker.timeout-ms is the default statement timeout: the server cancels
 * the statement and the call fails with Timeout; the timeout-ms option
 * still overrides it. */
static void
test_breaker_timeout (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = call ("/org/backplane/Backplane1/backend/slow", SQL_IFACE ".Query",
                g_variant_new_parsed ("('SELECT pg_sleep(30)', @av [], @a{sv} {})"),
                "(a(ss)aa{sv})", &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.backplane.Backplane1.Error.Timeout", NULL);
  g_clear_error (&error);

  /* the connection is fine afterwards, and the option wins */
  reply = call ("/org/backplane/Backplane1/backend/slow", SQL_IFACE ".Query",
                g_variant_new_parsed ("('SELECT pg_sleep(0.5), 7 AS n', @av [], {'timeout-ms': <uint32 20000>})"),
                "(a(ss)aa{sv})", &error);
  g_assert_no_error (error);
  g_assert_nonnull (reply);
}

static void
test_execute (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) count = NULL;

  reply = call (DB_PATH, SQL_IFACE ".Execute",
                g_variant_new_parsed ("([('CREATE TABLE ex (id int primary key)', @av []), "
                                      "('INSERT INTO ex VALUES ($1), ($2)', [<1>, <2>])], @a{sv} {})"),
                "(at)", &error);
  g_assert_no_error (error);
  {
    g_autofree char *text = g_variant_print (reply, FALSE);
    g_assert_cmpstr (text, ==, "([0, 2],)");
  }
  g_clear_pointer (&reply, g_variant_unref);

  /* atomic: the failing 2nd statement takes the 1st with it */
  reply = call (DB_PATH, SQL_IFACE ".Execute",
                g_variant_new_parsed ("([('INSERT INTO ex VALUES (3)', @av []), "
                                      "('INSERT INTO ex VALUES (1)', @av []), "
                                      "('INSERT INTO ex VALUES (4)', @av [])], {'atomic': <true>})"),
                "(at)", &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.backplane.Backplane1.Error.Backend", "statement 1: SQLSTATE 23505");
  g_clear_error (&error);

  count = query ("SELECT count(*) AS n FROM ex", NULL, &error);
  g_assert_no_error (error);
  {
    g_autofree char *text = g_variant_print (count, FALSE);
    g_assert_nonnull (strstr (text, "'n': <int64 2>"));
  }
  g_clear_pointer (&count, g_variant_unref);
  count = query ("DROP TABLE ex", NULL, &error);
  g_assert_no_error (error);
}

static void
test_query_to_fd (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  int fds[2];

  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
  reply = call_with_fd (SQL_IFACE ".QueryToFd",
                        g_variant_new_parsed ("('SELECT g, g::numeric / 4 AS q, NULL::text AS n FROM generate_series(1, 1000) g', "
                                              "@av [], @h 0, @a{sv} {})"),
                        fds[1], "(a(ss))", &error);
  close (fds[1]);
  g_assert_no_error (error);
  text = read_all (fds[0]);
  lines = g_strsplit (text, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 1000 + 2 + 1);
  g_assert_true (g_str_has_prefix (lines[0], "{\"columns\":[{\"name\":\"g\""));
  g_assert_cmpstr (lines[1], ==, "{\"g\":1,\"q\":0.25000000000000000000,\"n\":null}");
  g_assert_cmpstr (lines[1001], ==, "{\"end\":{\"rows\":1000}}");
  g_assert_cmpstr (lines[1002], ==, "");

  /* CSV */
  g_clear_pointer (&reply, g_variant_unref);
  g_clear_pointer (&text, g_free);
  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
  reply = call_with_fd (SQL_IFACE ".QueryToFd",
                        g_variant_new_parsed ("('SELECT 1 AS a, $1 AS b, NULL AS c, $2 AS d', [<'x,y'>, <''>], @h 0, "
                                              "{'format': <'csv'>})"),
                        fds[1], "(a(ss))", &error);
  close (fds[1]);
  g_assert_no_error (error);
  text = read_all (fds[0]);
  g_assert_cmpstr (text, ==, "a,b,c,d\n1,\"x,y\",,\"\"\n");
}

static void
test_query_to_fd_reader_gone (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) again = NULL;
  char buf[128];
  int fds[2];

  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
  reply = call_with_fd (SQL_IFACE ".QueryToFd",
                        g_variant_new_parsed ("('SELECT generate_series(1, 100000000) AS g', @av [], @h 0, @a{sv} {})"),
                        fds[1], "(a(ss))", &error);
  close (fds[1]);
  g_assert_no_error (error);
  g_assert_cmpint (read (fds[0], buf, sizeof buf), >, 0);
  close (fds[0]);

  /* The statement is cancelled and the pool still serves. */
  again = query ("SELECT 1 AS one", NULL, &error);
  g_assert_no_error (error);
}

static gint64 count_value (const char *sql);

static gboolean
no_sleeper (gpointer data)
{
  return count_value ("SELECT count(*) AS n FROM pg_stat_activity "
                      "WHERE application_name = 'backplaned/db' AND state = 'active' "
                      "AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()") == 0;
}

/* The reader leaves while the server works on the next row: the daemon
 * notices from the fd alone and cancels the statement. */
static void
test_query_to_fd_reader_gone_idle (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  char buf[4096];
  ssize_t n;
  int fds[2];

  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
  reply = call_with_fd (SQL_IFACE ".QueryToFd",
                        g_variant_new_parsed ("(\"SELECT g, repeat('x', 100) AS pad, "
                                              "CASE WHEN g = 1000 THEN pg_sleep(30) END AS s "
                                              "FROM generate_series(1, 1000) g\", @av [], @h 0, @a{sv} {})"),
                        fds[1], "(a(ss))", &error);
  close (fds[1]);
  g_assert_no_error (error);
  /* The header and rows (enough to leave the server's send buffer), then
   * nothing for 30 s. */
  n = read (fds[0], buf, sizeof buf - 1);
  g_assert_cmpint (n, >, 0);
  buf[n] = '\0';
  g_assert_true (g_str_has_prefix (buf, "{\"columns\":"));
  g_assert_false (no_sleeper (NULL));
  close (fds[0]);
  g_assert_true (bp_test_wait_until (no_sleeper, NULL, 10000));
}

static void
test_copy (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *out = NULL;
  const char *data = "1\tone\n2\ttwo\n3\t\\N\n";
  guint64 rows;
  int fds[2];

  reply = query ("CREATE TABLE cp (id int, v text)", NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);

  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
  g_assert_cmpint (write (fds[1], data, strlen (data)), ==, (ssize_t) strlen (data));
  close (fds[1]);
  reply = call_with_fd (SQL_IFACE ".CopyFrom", g_variant_new_parsed ("('COPY cp FROM STDIN', @h 0, @a{sv} {})"),
                        fds[0], "(t)", &error);
  close (fds[0]);
  g_assert_no_error (error);
  g_variant_get (reply, "(t)", &rows);
  g_assert_cmpuint (rows, ==, 3);
  g_clear_pointer (&reply, g_variant_unref);

  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
  reply = call_with_fd (SQL_IFACE ".CopyTo",
                        g_variant_new_parsed ("('COPY (SELECT * FROM cp ORDER BY id) TO STDOUT', @h 0, @a{sv} {})"),
                        fds[1], "(t)", &error);
  close (fds[1]);
  g_assert_no_error (error);
  g_variant_get (reply, "(t)", &rows);
  g_assert_cmpuint (rows, ==, 3);
  out = read_all (fds[0]);
  g_assert_cmpstr (out, ==, data);
  g_clear_pointer (&reply, g_variant_unref);

  reply = query ("DROP TABLE cp", NULL, &error);
  g_assert_no_error (error);
}

static void
test_transaction (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) inside = NULL;
  g_autoptr(GVariant) outside = NULL;
  g_autoptr(GVariant) isolation = NULL;
  g_autofree char *path = NULL;

  reply = query ("CREATE TABLE tx (v int)", NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);

  reply = call (DB_PATH, SQL_IFACE ".BeginTransaction",
                g_variant_new_parsed ("({'isolation': <'serializable'>},)"), "(o)", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(o)", &path);
  g_assert_true (g_str_has_prefix (path, "/org/backplane/Backplane1/client/"));
  isolation = bp_test_daemon_get_property (daemon_, path, TX_IFACE, "Isolation");
  g_assert_cmpstr (g_variant_get_string (isolation, NULL), ==, "serializable");

  inside = call (path, TX_IFACE ".Query",
                 g_variant_new_parsed ("('INSERT INTO tx VALUES (1) RETURNING v', @av [], @a{sv} {})"),
                 "(a(ss)aa{sv})", &error);
  g_assert_no_error (error);
  outside = query ("SELECT count(*) AS n FROM tx", NULL, &error);
  g_assert_no_error (error);
  {
    g_autofree char *text = g_variant_print (outside, FALSE);
    g_assert_nonnull (strstr (text, "'n': <int64 0>"));
  }

  g_clear_pointer (&reply, g_variant_unref);
  reply = call (path, TX_IFACE ".Commit", NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);

  /* The object is gone. */
  reply = call (path, TX_IFACE ".Rollback", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_clear_error (&error);

  g_clear_pointer (&outside, g_variant_unref);
  outside = query ("SELECT count(*) AS n FROM tx", NULL, &error);
  g_assert_no_error (error);
  {
    g_autofree char *text = g_variant_print (outside, FALSE);
    g_assert_nonnull (strstr (text, "'n': <int64 1>"));
  }
  g_clear_pointer (&outside, g_variant_unref);
  outside = query ("DROP TABLE tx", NULL, &error);
  g_assert_no_error (error);
}

typedef struct
{
  GVariant *batch;
} Events;

static void
events_cb (GDBusConnection *connection,
           const char      *sender,
           const char      *path,
           const char      *iface,
           const char      *signal,
           GVariant        *params,
           gpointer         user_data)
{
  Events *events = user_data;

  if (events->batch == NULL)
    g_variant_get (params, "(@aa{sv})", &events->batch);
}

static gboolean
have_batch (gpointer data)
{
  return ((Events *) data)->batch != NULL;
}

static void
test_listen (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) notify = NULL;
  g_autoptr(GVariant) event = NULL;
  Events events = { NULL };
  const char *path;
  const char *channel;
  const char *payload;
  guint sub;

  reply = call (DB_PATH, SQL_IFACE ".Listen", g_variant_new ("(s)", "Bp Channel"), "(o)", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&o)", &path);
  sub = g_dbus_connection_signal_subscribe (daemon_->connection, NULL, "org.backplane.Backplane1.Subscription",
                                            "Events", path, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                            events_cb, &events, NULL);

  notify = query ("SELECT pg_notify('Bp Channel', 'hello')", NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bp_test_wait_until (have_batch, &events, 10000));

  event = g_variant_get_child_value (events.batch, 0);
  g_assert_true (g_variant_lookup (event, "channel", "&s", &channel));
  g_assert_true (g_variant_lookup (event, "payload", "&s", &payload));
  g_assert_cmpstr (channel, ==, "Bp Channel");
  g_assert_cmpstr (payload, ==, "hello");
  g_variant_unref (events.batch);
  g_dbus_connection_signal_unsubscribe (daemon_->connection, sub);

  g_clear_pointer (&notify, g_variant_unref);
  notify = call (path, "org.backplane.Backplane1.Subscription.Close", NULL, NULL, &error);
  g_assert_no_error (error);
}

static GDBusConnection *
second_connection (void)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *other = g_dbus_connection_new_for_address_sync (daemon_->address,
                                                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                                   NULL, NULL, &error);
  g_assert_no_error (error);
  return other;
}

static gint64
count_value (const char *sql)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = query (sql, NULL, &error);
  g_autoptr(GVariant) rows = NULL;
  g_autoptr(GVariant) row = NULL;
  gint64 n = -1;

  g_assert_no_error (error);
  g_variant_get (reply, "(a(ss)@aa{sv})", NULL, &rows);
  row = g_variant_get_child_value (rows, 0);
  g_assert_true (g_variant_lookup (row, "n", "x", &n));
  return n;
}

static gboolean
no_open_transaction (gpointer data)
{
  return count_value ("SELECT count(*) AS n FROM pg_stat_activity "
                      "WHERE application_name = 'backplaned/db' AND state LIKE 'idle in transaction%'") == 0;
}

static void
test_transaction_owner_vanishes (void)
{
  g_autoptr(GDBusConnection) other = second_connection ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) inside = NULL;
  g_autoptr(GVariant) denied = NULL;
  g_autofree char *path = NULL;

  reply = query ("CREATE TABLE vanish (v int)", NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);

  reply = g_dbus_connection_call_sync (other, BUS_NAME, DB_PATH, SQL_IFACE, "BeginTransaction",
                                       g_variant_new_parsed ("(@a{sv} {},)"), G_VARIANT_TYPE ("(o)"),
                                       G_DBUS_CALL_FLAGS_NONE, 30000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(o)", &path);
  inside = g_dbus_connection_call_sync (other, BUS_NAME, path, TX_IFACE, "Query",
                                        g_variant_new_parsed ("('INSERT INTO vanish VALUES (1)', @av [], @a{sv} {})"),
                                        G_VARIANT_TYPE ("(a(ss)aa{sv})"), G_DBUS_CALL_FLAGS_NONE, 30000, NULL, &error);
  g_assert_no_error (error);

  /* Someone else may not touch it. */
  denied = call (path, TX_IFACE ".Commit", NULL, NULL, &error);
  g_assert_null (denied);
  assert_dbus_error (error, "org.backplane.Backplane1.Error.PermissionDenied", NULL);
  g_clear_error (&error);

  g_dbus_connection_close_sync (other, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bp_test_wait_until (no_open_transaction, NULL, 10000));
  g_assert_cmpint (count_value ("SELECT count(*) AS n FROM vanish"), ==, 0);

  g_clear_pointer (&reply, g_variant_unref);
  reply = query ("DROP TABLE vanish", NULL, &error);
  g_assert_no_error (error);
}

typedef struct
{
  const char *path;
} PathGone;

static gboolean
transaction_gone (gpointer data)
{
  PathGone *gone = data;
  g_autoptr(GError) error = NULL;
  /* A property read, not a call on the transaction: that would reset its
   * idle timer. */
  g_autoptr(GVariant) reply = g_dbus_connection_call_sync (daemon_->connection, BUS_NAME, gone->path,
                                                           "org.freedesktop.DBus.Properties", "Get",
                                                           g_variant_new ("(ss)", TX_IFACE, "Isolation"),
                                                           G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE,
                                                           30000, NULL, &error);

  return reply == NULL;
}

static void
test_transaction_idle_timeout (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *path = NULL;
  PathGone gone;

  reply = call (DB_PATH, SQL_IFACE ".BeginTransaction",
                g_variant_new_parsed ("({'idle-timeout-ms': <uint32 300>},)"), "(o)", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(o)", &path);
  gone.path = path;
  g_assert_true (bp_test_wait_until (transaction_gone, &gone, 10000));
  g_assert_true (bp_test_wait_until (no_open_transaction, NULL, 10000));
}

static gint64
listener_backend_pid (void)
{
  return count_value ("SELECT coalesce(max(pid), 0)::int8 AS n FROM pg_stat_activity "
                      "WHERE application_name = 'backplaned/db/listen'");
}

static void
test_listen_reconnect (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) killed = NULL;
  g_autofree char *kill_sql = NULL;
  Events events = { NULL };
  g_autofree char *path = NULL;
  gint64 pid;
  guint sub;

  reply = call (DB_PATH, SQL_IFACE ".Listen", g_variant_new ("(s)", "again"), "(o)", &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(o)", &path);
  sub = g_dbus_connection_signal_subscribe (daemon_->connection, NULL, "org.backplane.Backplane1.Subscription",
                                            "Events", path, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                            events_cb, &events, NULL);

  pid = listener_backend_pid ();
  g_assert_cmpint (pid, >, 0);
  kill_sql = g_strdup_printf ("SELECT pg_terminate_backend(%" G_GINT64_FORMAT ")", pid);
  killed = query (kill_sql, NULL, &error);
  g_assert_no_error (error);

  /* NOTIFYs sent while it reconnects are lost: keep sending until one lands. */
  for (guint i = 0; i < 100 && events.batch == NULL; i++)
    {
      g_autoptr(GVariant) notify = query ("SELECT pg_notify('again', 'back')", NULL, &error);

      g_assert_no_error (error);
      bp_test_wait_until (have_batch, &events, 100);
    }
  g_assert_nonnull (events.batch);
  g_assert_cmpint (listener_backend_pid (), !=, pid);
  g_variant_unref (events.batch);
  g_dbus_connection_signal_unsubscribe (daemon_->connection, sub);
  g_clear_pointer (&reply, g_variant_unref);
  reply = call (path, "org.backplane.Backplane1.Subscription.Close", NULL, NULL, &error);
  g_assert_no_error (error);
}

/* Every event of one subscription, payloads in order. */
typedef struct
{
  GPtrArray *payloads;  /* (element-type utf8) */
  guint      sub;
} Collector;

static void
collect_cb (GDBusConnection *connection,
            const char      *sender,
            const char      *path,
            const char      *iface,
            const char      *signal,
            GVariant        *params,
            gpointer         user_data)
{
  Collector *c = user_data;
  g_autoptr(GVariant) batch = NULL;
  GVariantIter iter;
  GVariant *event;

  g_variant_get (params, "(@aa{sv})", &batch);
  g_variant_iter_init (&iter, batch);
  while ((event = g_variant_iter_next_value (&iter)) != NULL)
    {
      const char *payload = NULL;

      g_assert_true (g_variant_lookup (event, "payload", "&s", &payload));
      g_ptr_array_add (c->payloads, g_strdup (payload));
      g_variant_unref (event);
    }
}

static char *
listen_collect (const char *channel,
                Collector  *c)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (DB_PATH, SQL_IFACE ".Listen", g_variant_new ("(s)", channel), "(o)", &error);
  char *path;

  g_assert_no_error (error);
  g_variant_get (reply, "(o)", &path);
  c->payloads = g_ptr_array_new_with_free_func (g_free);
  c->sub = g_dbus_connection_signal_subscribe (daemon_->connection, NULL, "org.backplane.Backplane1.Subscription",
                                               "Events", path, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                               collect_cb, c, NULL);
  return path;
}

static void
collector_clear (Collector *c)
{
  g_dbus_connection_signal_unsubscribe (daemon_->connection, c->sub);
  g_ptr_array_unref (c->payloads);
}

static void
notify (const char *channel,
        const char *payload)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = query ("SELECT pg_notify($1, $2)",
                                     g_variant_new_parsed ("[<%s>, <%s>]", channel, payload), &error);

  g_assert_no_error (error);
}

static void
close_subscription (const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (path, "org.backplane.Backplane1.Subscription.Close", NULL, NULL, &error);

  g_assert_no_error (error);
}

static gboolean
has_n_payloads (gpointer data)
{
  Collector *c = data;

  return c->payloads->len >= GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (daemon_->connection), "bp-want"));
}

static void
wait_payloads (Collector *c,
               guint      n)
{
  g_object_set_data (G_OBJECT (daemon_->connection), "bp-want", GUINT_TO_POINTER (n));
  g_assert_true (bp_test_wait_until (has_n_payloads, c, 10000));
  g_assert_cmpuint (c->payloads->len, ==, n);
}

static gint64
listener_connections (void)
{
  return count_value ("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'backplaned/db/listen'");
}

static gboolean
listener_ran (gpointer data)
{
  g_autofree char *sql = g_strdup_printf ("SELECT count(*) AS n FROM pg_stat_activity "
                                          "WHERE application_name = 'backplaned/db/listen' AND query = '%s'",
                                          (const char *) data);

  return count_value (sql) == 1;
}

static gboolean
no_listener (gpointer data)
{
  return listener_connections () == 0;
}

/* One dedicated connection serves every subscription; a channel is
 * UNLISTENed when its last subscriber goes, the connection closed when the
 * last channel goes. */
static void
test_listen_shared (void)
{
  g_autoptr(GDBusConnection) other = second_connection ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) denied = NULL;
  Collector a, b, c;
  g_autofree char *path_a = listen_collect ("shared", &a);
  g_autofree char *path_b = listen_collect ("shared", &b);
  g_autofree char *path_c = listen_collect ("other", &c);

  g_assert_cmpstr (path_a, !=, path_b);
  g_assert_cmpint (listener_connections (), ==, 1);

  notify ("shared", "one");
  wait_payloads (&a, 1);
  wait_payloads (&b, 1);
  g_assert_cmpstr (g_ptr_array_index (a.payloads, 0), ==, "one");

  /* Only the owner may close it. */
  denied = g_dbus_connection_call_sync (other, BUS_NAME, path_a, "org.backplane.Backplane1.Subscription", "Close",
                                        NULL, NULL, G_DBUS_CALL_FLAGS_NONE, 30000, NULL, &error);
  g_assert_null (denied);
  assert_dbus_error (error, "org.backplane.Backplane1.Error.PermissionDenied", NULL);
  g_clear_error (&error);

  /* A goes; B still hears "shared". */
  close_subscription (path_a);
  notify ("shared", "two");
  notify ("other", "x");
  wait_payloads (&b, 2);
  wait_payloads (&c, 1);
  g_assert_cmpstr (g_ptr_array_index (b.payloads, 1), ==, "two");
  g_assert_cmpuint (a.payloads->len, ==, 1);

  /* B goes: the last one on "shared". */
  close_subscription (path_b);
  g_assert_true (bp_test_wait_until (listener_ran, (gpointer) "UNLISTEN \"shared\"", 10000));
  notify ("other", "y");
  wait_payloads (&c, 2);
  g_assert_cmpint (listener_connections (), ==, 1);

  /* C goes: nothing left to listen to. */
  close_subscription (path_c);
  g_assert_true (bp_test_wait_until (no_listener, NULL, 10000));

  collector_clear (&a);
  collector_clear (&b);
  collector_clear (&c);
}

typedef struct
{
  const char *state;
} StateIs;

static gboolean
db_state_is (gpointer data)
{
  StateIs *want = data;
  g_autofree char *state = bp_test_daemon_backend_state (daemon_, "db", NULL);

  return g_str_equal (state, want->state);
}

#define DLQ_PATH  "/org/backplane/Backplane1/DeadLetters"
#define DLQ_IFACE "org.backplane.Backplane1.DeadLetters"

static gboolean
dlq_has (guint64 id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = call (DLQ_PATH, DLQ_IFACE ".List", g_variant_new_parsed ("(@u 0, @u 1000, @a{sv} {})"),
                                    "(a(tsssuxs))", &error);
  g_autoptr(GVariant) entries = NULL;

  g_assert_no_error (error);
  entries = g_variant_get_child_value (reply, 0);
  for (gsize i = 0; i < g_variant_n_children (entries); i++)
    {
      guint64 eid;
      const char *backend, *operation, *key;

      g_variant_get_child (entries, i, "(t&s&s&suxs)", &eid, &backend, &operation, &key, NULL, NULL, NULL);
      if (eid == id)
        {
          g_assert_cmpstr (backend, ==, "db");
          g_assert_cmpstr (operation, ==, "Sql.Execute");
          g_assert_cmpstr (key, ==, "dl-k1");
          return TRUE;
        }
    }
  return FALSE;
}

static gboolean
dlq_gone (gpointer data)
{
  return !dlq_has (*(guint64 *) data);
}

/* The server goes away and comes back: calls fail fast, the state follows
 * (without traffic on the way back), a write with dead-letter is stored and
 * replayed once the server is back. Stops the fixture: runs last. */
static void
test_server_away (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  StateIs unavailable = { "unavailable" };
  StateIs ready = { "ready" };
  g_autofree char *reason = NULL;
  g_autofree char *state = NULL;
  const char *marker;
  guint64 id;

  reply = query ("CREATE TABLE dl (k text PRIMARY KEY)", NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);

  g_assert_true (pg_fixture_pg_ctl (fixture, "stop", &error));
  g_assert_no_error (error);

  reply = query ("SELECT 1", NULL, &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.backplane.Backplane1.Error.Unavailable", "SQLSTATE 08001");
  g_clear_error (&error);
  g_assert_true (bp_test_wait_until (db_state_is, &unavailable, 30000));
  state = bp_test_daemon_backend_state (daemon_, "db", &reason);
  g_assert_nonnull (strstr (reason, "08001"));

  /* dead-letter needs a call that may run twice. */
  reply = call (DB_PATH, SQL_IFACE ".Execute",
                g_variant_new_parsed ("([('INSERT INTO dl VALUES (1)', @av [])], {'dead-letter': <true>})"),
                "(at)", &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.backplane.Backplane1.Error.InvalidArgument", "idempotent");
  g_clear_error (&error);

  reply = call (DB_PATH, SQL_IFACE ".Execute",
                g_variant_new_parsed ("([('INSERT INTO dl VALUES ($1) ON CONFLICT DO NOTHING', [<'k1'>])], "
                                      "{'dead-letter': <true>, 'idempotency-key': <'dl-k1'>})"),
                "(at)", &error);
  g_assert_null (reply);
  assert_dbus_error (error, "org.backplane.Backplane1.Error.Unavailable", "dead-lettered as entry ");
  marker = strstr (error->message, "dead-lettered as entry ");
  id = g_ascii_strtoull (marker + strlen ("dead-lettered as entry "), NULL, 10);
  g_assert_cmpuint (id, >, 0);
  g_clear_error (&error);
  g_assert_true (dlq_has (id));

  /* Back: ready again without any call. */
  g_assert_true (pg_fixture_pg_ctl (fixture, "start", &error));
  g_assert_no_error (error);
  g_assert_true (bp_test_wait_until (db_state_is, &ready, 60000));

  reply = call (DLQ_PATH, DLQ_IFACE ".Replay", g_variant_new ("(t)", id), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bp_test_wait_until (dlq_gone, &id, 30000));
  g_assert_cmpint (count_value ("SELECT count(*) AS n FROM dl WHERE k = 'k1'"), ==, 1);
  g_clear_pointer (&reply, g_variant_unref);
  reply = query ("DROP TABLE dl", NULL, &error);
  g_assert_no_error (error);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *config = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);

  fixture = pg_fixture_start (&error);
  if (fixture == NULL)
    g_error ("cannot start the PostgreSQL fixture: %s", error->message);
  g_setenv ("BP_TEST_PG_PASSWORD", fixture->password, TRUE);
  config = g_strdup_printf ("[backend db]\n"
                            "type=postgres\n"
                            "conninfo=%s\n"
                            "password-env=BP_TEST_PG_PASSWORD\n"
                            "pool.max=4\n"
                            "retry.base-ms=10\n"
                            "breaker.min-volume=1000\n"
                            "\n"
                            "[backend slow]\n"
                            "type=postgres\n"
                            "conninfo=%s\n"
                            "password-env=BP_TEST_PG_PASSWORD\n"
                            "pool.max=2\n"
                            "retry.max-attempts=1\n"
                            "breaker.min-volume=1000\n"
                            "breaker.timeout-ms=300\n",
                            fixture->conninfo_tcp, fixture->conninfo_tcp);
  daemon_ = bp_test_daemon_new (config);
  g_assert_true (bp_test_wait_until (db_started, NULL, 60000));

  g_test_add_func ("/postgres-dbus/ready", test_ready);
  g_test_add_func ("/postgres-dbus/query", test_query);
  g_test_add_func ("/postgres-dbus/query/errors", test_query_errors);
  g_test_add_func ("/postgres-dbus/execute", test_execute);
  g_test_add_func ("/postgres-dbus/breaker-timeout", test_breaker_timeout);
  g_test_add_func ("/postgres-dbus/query-to-fd", test_query_to_fd);
  g_test_add_func ("/postgres-dbus/query-to-fd/reader-gone", test_query_to_fd_reader_gone);
  g_test_add_func ("/postgres-dbus/query-to-fd/reader-gone-idle", test_query_to_fd_reader_gone_idle);
  g_test_add_func ("/postgres-dbus/copy", test_copy);
  g_test_add_func ("/postgres-dbus/transaction", test_transaction);
  g_test_add_func ("/postgres-dbus/listen", test_listen);
  g_test_add_func ("/postgres-dbus/listen/reconnect", test_listen_reconnect);
  g_test_add_func ("/postgres-dbus/listen/shared", test_listen_shared);
  /* Last: it stops and starts the server. */
  g_test_add_func ("/postgres-dbus/server/away", test_server_away);
  g_test_add_func ("/postgres-dbus/transaction/owner-vanishes", test_transaction_owner_vanishes);
  g_test_add_func ("/postgres-dbus/transaction/idle-timeout", test_transaction_idle_timeout);

  ret = g_test_run ();
  bp_test_daemon_free (daemon_);
  pg_fixture_stop (g_steal_pointer (&fixture));
  return ret;
}
