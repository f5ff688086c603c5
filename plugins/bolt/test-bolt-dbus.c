/* test-bolt-dbus.c: the bolt backend through backplaned on a private bus
 *
 * Starts tests/bolt/boltserver.py, then backplaned (from the build tree,
 * on a GTestDBus bus) with a [backend graph] of type bolt pointing at it,
 * and calls org.backplane.Backplane1.Graph like an application would.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <glib-unix.h>

#include <json-glib/json-glib.h>

#include "bp-test-daemon.h"

#define BUS_NAME     "org.backplane.Backplane1"
#define GRAPH_PATH   "/org/backplane/Backplane1/backend/graph"
#define GRAPH_IFACE  "org.backplane.Backplane1.Graph"
#define TX_IFACE     "org.backplane.Backplane1.GraphTransaction"
#define ERROR_PREFIX "org.backplane.Backplane1.Error."

typedef struct
{
  GSubprocess *process;
  guint16      port;
  char        *dir;
  char        *log_path;
} Server;

static char *
find_server (void)
{
  const char *env = g_getenv ("BOLT_SERVER");

  if (env != NULL && g_file_test (env, G_FILE_TEST_EXISTS))
    return g_strdup (env);
  return g_build_filename (BP_SOURCE_ROOT, "tests", "bolt", "boltserver.py", NULL);
}

static Server *
server_start (const char *first,
              ...)
{
  Server *server = g_new0 (Server, 1);
  g_autofree char *script = find_server ();
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autofree char *line = NULL;
  va_list ap;

  server->dir = g_dir_make_tmp ("bp-bolt-dbus-XXXXXX", &error);
  g_assert_no_error (error);
  server->log_path = g_build_filename (server->dir, "server.jsonl", NULL);
  g_ptr_array_add (argv, "python3");
  g_ptr_array_add (argv, script);
  g_ptr_array_add (argv, "--port");
  g_ptr_array_add (argv, "0");
  g_ptr_array_add (argv, "--log");
  g_ptr_array_add (argv, server->log_path);
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (argv, NULL);
  server->process = g_subprocess_newv ((const char * const *) argv->pdata,
                                       G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (server->process));
  line = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (line != NULL && g_str_has_prefix (line, "LISTENING "));
  server->port = (guint16) g_ascii_strtoull (line + 10, NULL, 10);
  return server;
}

static void
server_stop (Server *server)
{
  g_subprocess_send_signal (server->process, SIGTERM);
  g_subprocess_wait (server->process, NULL, NULL);
  g_object_unref (server->process);
  g_remove (server->log_path);
  {
    g_autofree char *password = g_build_filename (server->dir, "password", NULL);
    g_remove (password);
  }
  g_rmdir (server->dir);
  g_free (server->log_path);
  g_free (server->dir);
  g_free (server);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Server, server_stop)

/* How many lines of the server's log contain @needle. */
static guint
server_count (Server     *server,
              const char *needle)
{
  g_autofree char *text = NULL;
  guint n = 0;

  g_assert_true (g_file_get_contents (server->log_path, &text, NULL, NULL));
  for (const char *p = strstr (text, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

/* backplaned with one bolt backend "graph" */
static BpTestDaemon *
daemon_for (Server     *server,
            const char *scheme,
            const char *extra)
{
  g_autofree char *password_file = g_build_filename (server->dir, "password", NULL);
  g_autofree char *config = NULL;
  g_autoptr(GError) error = NULL;

  g_assert_true (g_file_set_contents_full (password_file, "s3cret", -1, G_FILE_SET_CONTENTS_NONE, 0600, &error));
  config = g_strdup_printf ("[backend graph]\n"
                            "type=bolt\n"
                            "uri=%s://127.0.0.1:%u\n"
                            "user=neo4j\n"
                            "password-file=%s\n"
                            "retry.max-attempts=3\n"
                            "retry.base-ms=10\n"
                            "retry.cap-ms=50\n"
                            "%s",
                            scheme, server->port, password_file, extra ? extra : "");
  return bp_test_daemon_new (config);
}

static GVariant *
graph_call (GDBusConnection  *connection,
            const char       *path,
            const char       *method,
            GVariant         *params,
            const char       *reply_type,
            GUnixFDList      *fds,
            GError          **error)
{
  const char *iface = g_str_equal (path, GRAPH_PATH) ? GRAPH_IFACE : TX_IFACE;

  return g_dbus_connection_call_with_unix_fd_list_sync (connection, BUS_NAME, path, iface, method, params,
                                                        reply_type ? G_VARIANT_TYPE (reply_type) : NULL,
                                                        G_DBUS_CALL_FLAGS_NONE, 30000, fds, NULL, NULL, error);
}

static void
assert_dbus_error (const GError *error,
                   const char   *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  if (g_strcmp0 (remote, name) != 0)
    g_error ("expected %s, got %s: %s", name, remote, error->message);
}

static GVariant *
run (BpTestDaemon *t,
     const char   *cypher,
     GVariant     *params,
     GVariant     *options,
     GError      **error)
{
  return graph_call (t->connection, GRAPH_PATH, "Run",
                     g_variant_new ("(s@a{sv}@a{sv})", cypher,
                                    params ? params : g_variant_new ("a{sv}", NULL),
                                    options ? options : g_variant_new ("a{sv}", NULL)),
                     "(asaa{sv}a{sv})", NULL, error);
}

static gint64
single_int (GVariant   *reply,
            const char *key)
{
  g_autoptr(GVariant) records = g_variant_get_child_value (reply, 1);
  g_autoptr(GVariant) record = NULL;
  gint64 v = G_MININT64;

  g_assert_cmpuint (g_variant_n_children (records), ==, 1);
  record = g_variant_get_child_value (records, 0);
  g_assert_true (g_variant_lookup (record, key, "x", &v));
  return v;
}

/* ---------------------------------------------------------------- */

static void
test_run (void)
{
  g_autoptr(Server) server = server_start ("--auth", "neo4j:s3cret", NULL);
  g_autoptr(BpTestDaemon) t = daemon_for (server, "bolt", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) records = NULL;
  g_autoptr(GVariant) summary = NULL;
  g_autofree char *state = bp_test_daemon_backend_state (t, "graph", NULL);
  const char **keys = NULL;
  const char *bookmark;

  g_test_summary ("Graph.Run returns keys, records and a summary with the bookmark");

  g_assert_cmpstr (state, ==, "ready");
  reply = run (t, "UNWIND range(1, $n) AS i RETURN i", g_variant_new_parsed ("{'n': <int64 5>}"),
               g_variant_new_parsed ("{'fetch-size': <2>}"), &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(^a&s@aa{sv}@a{sv})", &keys, &records, &summary);
  g_assert_cmpstr (keys[0], ==, "i");
  g_free (keys);
  g_assert_cmpuint (g_variant_n_children (records), ==, 5);
  g_assert_true (g_variant_lookup (summary, "bookmark", "&s", &bookmark));
  g_assert_true (g_str_has_prefix (bookmark, "FB:"));

  /* graph values */
  g_clear_pointer (&reply, g_variant_unref);
  reply = run (t, "CREATE (n:Person {name: 'Ann'}) RETURN n", NULL, NULL, &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) recs = g_variant_get_child_value (reply, 1);
    g_autoptr(GVariant) rec = g_variant_get_child_value (recs, 0);
    g_autoptr(GVariant) node = g_variant_lookup_value (rec, "n", G_VARIANT_TYPE_VARDICT);
    g_autoptr(GVariant) labels = NULL;

    g_assert_nonnull (node);
    labels = g_variant_lookup_value (node, "labels", G_VARIANT_TYPE_STRING_ARRAY);
    g_assert_nonnull (labels);
  }
}

static void
test_run_errors (void)
{
  g_autoptr(Server) server = server_start ("--auth", "neo4j:s3cret", NULL);
  g_autoptr(BpTestDaemon) t = daemon_for (server, "bolt", "max-records=10\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  g_test_summary ("server errors are Backend with the Neo4j code; bad options InvalidArgument; "
                  "max-records LimitExceeded; the connection pool stays usable");

  reply = run (t, "THIS IS NOT CYPHER", NULL, NULL, &error);
  assert_dbus_error (error, ERROR_PREFIX "Backend");
  g_assert_nonnull (strstr (error->message, "Neo.ClientError.Statement.SyntaxError"));
  g_clear_error (&error);

  reply = run (t, "RETURN 1 AS x", NULL, g_variant_new_parsed ("{'colour': <'red'>}"), &error);
  assert_dbus_error (error, ERROR_PREFIX "InvalidArgument");
  g_assert_nonnull (strstr (error->message, "colour"));
  g_clear_error (&error);

  reply = run (t, "RETURN 1 AS x", NULL, g_variant_new_parsed ("{'access-mode': <'sideways'>}"), &error);
  assert_dbus_error (error, ERROR_PREFIX "InvalidArgument");
  g_clear_error (&error);

  reply = run (t, "UNWIND range(1, 100) AS i RETURN i", NULL, NULL, &error);
  assert_dbus_error (error, ERROR_PREFIX "LimitExceeded");
  g_clear_error (&error);

  reply = run (t, "RETURN 7 AS x", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (single_int (reply, "x"), ==, 7);
}

/* breaker.timeout-ms is the default tx_timeout: the server terminates a
 * transaction that runs longer; the timeout-ms option still wins. */
static void
test_breaker_timeout (void)
{
  g_autoptr(Server) server = server_start ("--auth", "neo4j:s3cret", NULL);
  g_autoptr(BpTestDaemon) t = daemon_for (server, "bolt", "breaker.timeout-ms=300\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  reply = run (t, "CALL test.sleep(2000)", NULL, NULL, &error);
  g_assert_null (reply);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "TransactionTimedOutClientConfiguration"));
  g_clear_error (&error);

  reply = run (t, "CALL test.sleep(400)", NULL, g_variant_new_parsed ("{'timeout-ms': <uint32 5000>}"), &error);
  g_assert_no_error (error);
  g_assert_nonnull (reply);
}

static void
test_run_to_fd (void)
{
  g_autoptr(Server) server = server_start ("--auth", "neo4j:s3cret", NULL);
  g_autoptr(BpTestDaemon) t = daemon_for (server, "bolt", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  int pipe_fds[2];
  int index;
  guint n = 0;
  char *line;
  gboolean saw_end = FALSE;

  g_test_summary ("Graph.RunToFd replies with the keys, then writes the header, 1000 records and the end line");

  g_assert_true (g_unix_open_pipe (pipe_fds, FD_CLOEXEC, NULL));
  index = g_unix_fd_list_append (fds, pipe_fds[1], &error);
  g_assert_no_error (error);
  close (pipe_fds[1]);
  reply = graph_call (t->connection, GRAPH_PATH, "RunToFd",
                      g_variant_new ("(s@a{sv}h@a{sv})", "UNWIND range(1, 1000) AS i RETURN i",
                                     g_variant_new ("a{sv}", NULL), index,
                                     g_variant_new_parsed ("{'fetch-size': <100>}")),
                      "(as)", fds, &error);
  g_assert_no_error (error);
  g_clear_object (&fds);   /* its copy of the write end, or EOF never comes */
  in = g_unix_input_stream_new (pipe_fds[0], TRUE);
  lines = g_data_input_stream_new (in);
  line = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error);
  g_assert_cmpstr (line, ==, "{\"columns\":[\"i\"]}");
  g_free (line);
  while ((line = g_data_input_stream_read_line_utf8 (lines, NULL, NULL, &error)) != NULL)
    {
      if (g_str_has_prefix (line, "{\"end\":"))
        {
          saw_end = TRUE;
          g_assert_nonnull (strstr (line, "\"bookmark\":"));
        }
      else
        {
          g_autofree char *want = g_strdup_printf ("{\"i\":%u}", ++n);
          g_assert_cmpstr (line, ==, want);
        }
      g_free (line);
    }
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 1000);
  g_assert_true (saw_end);
}

static void
test_execute_retry (void)
{
  g_autoptr(Server) server = server_start ("--auth", "neo4j:s3cret", NULL);
  g_autoptr(BpTestDaemon) t = daemon_for (server, "bolt", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) results = NULL;
  const char *bookmark;

  g_test_summary ("ExecuteWrite runs the statements in one transaction, retried once after a transient error");

  reply = graph_call (t->connection, GRAPH_PATH, "ExecuteWrite",
                      g_variant_new_parsed ("([('CALL test.transient($k, 1)', {'k': <'exec-1'>}), "
                                            "('CREATE (n:Exec) RETURN 1 AS one', @a{sv} {})], @a{sv} {})"),
                      "(a(asaa{sv})s)", NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(@a(asaa{sv})&s)", &results, &bookmark);
  g_assert_cmpuint (g_variant_n_children (results), ==, 2);
  g_assert_true (g_str_has_prefix (bookmark, "FB:"));

  /* client errors are not retried */
  g_clear_pointer (&reply, g_variant_unref);
  reply = graph_call (t->connection, GRAPH_PATH, "ExecuteRead",
                      g_variant_new_parsed ("([('CALL test.terminated()', @a{sv} {})], @a{sv} {})"),
                      "(a(asaa{sv})s)", NULL, &error);
  assert_dbus_error (error, ERROR_PREFIX "Backend");
  g_assert_nonnull (strstr (error->message, "Transaction.Terminated"));
}

static void
test_transaction (void)
{
  g_autoptr(Server) server = server_start ("--auth", "neo4j:s3cret", NULL);
  g_autoptr(BpTestDaemon) t = daemon_for (server, "bolt", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GDBusConnection) other = NULL;
  g_autofree char *path = NULL;
  const char *bookmark;

  g_test_summary ("BeginTransaction gives an owner-only GraphTransaction; Commit returns the bookmark");

  reply = graph_call (t->connection, GRAPH_PATH, "BeginTransaction",
                      g_variant_new_parsed ("({'access-mode': <'write'>},)"), "(o)", NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(o)", &path);
  g_clear_pointer (&reply, g_variant_unref);

  reply = graph_call (t->connection, path, "Run",
                      g_variant_new_parsed ("('CREATE (n:TxNode) RETURN 1 AS one', @a{sv} {}, @a{sv} {})"),
                      "(asaa{sv}a{sv})", NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);

  other = g_dbus_connection_new_for_address_sync (t->address, G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                  G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION, NULL, NULL, &error);
  g_assert_no_error (error);
  reply = graph_call (other, path, "Commit", NULL, "(s)", NULL, &error);
  assert_dbus_error (error, ERROR_PREFIX "PermissionDenied");
  g_clear_error (&error);

  reply = graph_call (t->connection, path, "Commit", NULL, "(s)", NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&s)", &bookmark);
  g_assert_true (g_str_has_prefix (bookmark, "FB:"));
  g_clear_pointer (&reply, g_variant_unref);

  /* the object is gone */
  reply = graph_call (t->connection, path, "Rollback", NULL, NULL, NULL, &error);
  g_assert_nonnull (error);
  g_clear_error (&error);

  reply = run (t, "MATCH (n:TxNode) RETURN count(n) AS c", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (single_int (reply, "c"), ==, 1);
}

static void
test_routing (void)
{
  g_autoptr(Server) server = server_start ("--auth", "neo4j:s3cret", "--router", NULL);
  g_autoptr(BpTestDaemon) t = daemon_for (server, "neo4j", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) pool = NULL;

  g_test_summary ("neo4j:// fetches the routing table and routes reads and writes to pools per member");

  reply = run (t, "RETURN 1 AS x", NULL, g_variant_new_parsed ("{'access-mode': <'read'>}"), &error);
  g_assert_no_error (error);
  g_clear_pointer (&reply, g_variant_unref);
  reply = run (t, "CREATE (n:Routed) RETURN 2 AS x", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (single_int (reply, "x"), ==, 2);

  pool = bp_test_daemon_get_property (t, GRAPH_PATH, "org.backplane.Backplane1.Backend", "Pool");
  g_assert_nonnull (pool);
  g_assert_true (g_variant_lookup (pool, "servers", "*", NULL));
}

static void
test_stale_connection (void)
{
  g_autoptr(Server) server = server_start ("--auth", "neo4j:s3cret", NULL);
  g_autoptr(BpTestDaemon) t = daemon_for (server, "bolt", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) first = NULL;
  g_autoptr(GVariant) second = NULL;
  g_autoptr(GVariant) reply = NULL;

  g_test_summary ("the server closes the pooled idle connection: the next write (not retried) "
                  "still succeeds, on a new connection");

  first = run (t, "CALL test.connectionId()", NULL, NULL, &error);
  g_assert_no_error (error);
  g_subprocess_send_signal (server->process, SIGUSR1);
  /* the daemon sees the EOF on its idle connection as soon as it arrives */
  g_usleep (300 * 1000);
  reply = run (t, "CREATE (n:AfterRestart) RETURN 1 AS one", NULL, NULL, &error);
  g_assert_no_error (error);
  second = run (t, "CALL test.connectionId()", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (g_variant_equal (first, second));
}

static void
test_unavailable (void)
{
  g_autoptr(Server) server = server_start ("--auth", "neo4j:s3cret", NULL);
  g_autoptr(BpTestDaemon) t = NULL;
  g_autofree char *state = NULL;
  g_autofree char *reason = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  g_test_summary ("a backend whose server refuses the credentials is exported unavailable, with the reason");

  {
    g_autofree char *config = g_strdup_printf ("[backend graph]\ntype=bolt\nuri=bolt://127.0.0.1:%u\n"
                                               "user=neo4j\nretry.max-attempts=1\n", server->port);
    t = bp_test_daemon_new (config);
  }
  state = bp_test_daemon_backend_state (t, "graph", &reason);
  g_assert_cmpstr (state, ==, "unavailable");
  g_assert_nonnull (strstr (reason, "Unauthorized"));
  reply = run (t, "RETURN 1 AS x", NULL, NULL, &error);
  assert_dbus_error (error, ERROR_PREFIX "Backend");
}

static void
test_execute_not_a_leader (void)
{
  g_autoptr(Server) follower = server_start ("--role", "reader", NULL);
  g_autoptr(Server) leader = server_start (NULL);
  g_autoptr(Server) router = NULL;
  g_autoptr(BpTestDaemon) t = NULL;
  g_autofree char *tables = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  const char *bookmark;

  g_test_summary ("neo4j:// cluster whose leader moved: ExecuteWrite meets NotALeader on the old "
                  "writer, refreshes the routing table and commits on the new leader");

  tables = g_strdup_printf ("[{\"ttl\": 300, \"writers\": [\"127.0.0.1:%u\"]},"
                            " {\"ttl\": 300, \"writers\": [\"127.0.0.1:%u\"]}]",
                            follower->port, leader->port);
  router = server_start ("--routing-table", tables, NULL);
  t = daemon_for (router, "neo4j", "tx-retry.initial-ms=50\n");

  reply = graph_call (t->connection, GRAPH_PATH, "ExecuteWrite",
                      g_variant_new_parsed ("([('CREATE (n:Led) RETURN 1 AS one', @a{sv} {})], @a{sv} {})"),
                      "(a(asaa{sv})s)", NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(@a(asaa{sv})&s)", NULL, &bookmark);
  g_assert_true (g_str_has_prefix (bookmark, "FB:"));
  g_assert_cmpuint (server_count (follower, "\"msg\": \"BEGIN\""), ==, 1);
  g_assert_cmpuint (server_count (follower, "\"msg\": \"COMMIT\""), ==, 0);
  g_assert_cmpuint (server_count (leader, "\"msg\": \"COMMIT\""), ==, 1);
  g_assert_cmpuint (server_count (router, "\"msg\": \"ROUTE\""), ==, 2);

  /* an auto-commit write (not retried) now goes to the leader at once */
  g_clear_pointer (&reply, g_variant_unref);
  reply = run (t, "CREATE (n:Led) RETURN 2 AS x", NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (single_int (reply, "x"), ==, 2);
  g_assert_cmpuint (server_count (follower, "\"msg\": \"BEGIN\""), ==, 1);
}

static void
test_execute_commit_unknown (void)
{
  g_autoptr(Server) server = server_start ("--auth", "neo4j:s3cret", NULL);
  g_autoptr(BpTestDaemon) t = daemon_for (server, "bolt", "tx-retry.initial-ms=50\n");
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  g_test_summary ("ExecuteWrite whose connection drops while COMMIT is outstanding: Unavailable "
                  "\"commit outcome unknown\", one attempt only");

  reply = graph_call (t->connection, GRAPH_PATH, "ExecuteWrite",
                      g_variant_new_parsed ("([('CALL test.dropOnCommit()', @a{sv} {})], @a{sv} {})"),
                      "(a(asaa{sv})s)", NULL, &error);
  assert_dbus_error (error, ERROR_PREFIX "Unavailable");
  g_assert_nonnull (strstr (error->message, "commit outcome unknown"));
  g_assert_cmpuint (server_count (server, "\"msg\": \"COMMIT\""), ==, 1);
  g_assert_cmpuint (server_count (server, "\"msg\": \"BEGIN\""), ==, 1);
}

/* backplanectl, the real binary from the build tree */

typedef struct
{
  int   status;
  char *out;
  char *err;
} CtlResult;

static void
ctl_result_free (CtlResult *r)
{
  g_free (r->out);
  g_free (r->err);
  g_free (r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CtlResult, ctl_result_free)

static CtlResult *
run_ctlv (BpTestDaemon       *t,
          const char * const *args)
{
  const char *root = g_getenv ("BACKPLANE_BUILD_ROOT");
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  CtlResult *r = g_new0 (CtlResult, 1);

  g_ptr_array_add (argv, g_build_filename (root != NULL ? root : BP_BUILD_ROOT, "core", "ctl", "backplanectl", NULL));
  g_ptr_array_add (argv, g_strdup ("--address"));
  g_ptr_array_add (argv, g_strdup (t->address));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "G_DEBUG", "fatal-criticals", TRUE);
  g_subprocess_launcher_setenv (launcher, "LC_ALL", "C.UTF-8", TRUE);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  /* the daemon is another process: waiting here blocks nobody */
  g_subprocess_communicate_utf8 (process, NULL, NULL, &r->out, &r->err, &error);
  g_assert_no_error (error);
  r->status = g_subprocess_get_if_exited (process) ? g_subprocess_get_exit_status (process) : 128;
  g_test_message ("backplanectl … → %d\nstdout: %s\nstderr: %s", r->status, r->out, r->err);
  return r;
}

#define run_ctl(t, ...) run_ctlv ((t), (const char * const[]) { __VA_ARGS__, NULL })

static JsonObject *
parse_object (JsonParser *parser,
              const char *text)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  g_assert_no_error (error);
  g_assert_true (JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)));
  return json_node_get_object (json_parser_get_root (parser));
}

static void
test_ctl_cypher (gconstpointer data)
{
  const char *mode = data;
  g_autoptr(Server) server = server_start ("--auth", "neo4j:s3cret", "--mode", mode, NULL);
  g_autoptr(BpTestDaemon) t = daemon_for (server, "bolt", NULL);
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autofree char *jsonl = g_build_filename (server->dir, "out.jsonl", NULL);
  g_autofree char *contents = NULL;

  g_test_summary ("backplanectl --address … cypher against the bolt backend (Neo4j 5 and Memgraph "
                  "modes): --json, --param, --int, the table form, --to-file (RunToFd) and a server error");

  {
    g_autoptr(CtlResult) r = run_ctl (t, "cypher", "graph", "RETURN 1 AS x", "--json");
    JsonObject *o;
    JsonArray *keys, *records;

    g_assert_cmpint (r->status, ==, 0);
    o = parse_object (parser, r->out);
    keys = json_object_get_array_member (o, "keys");
    g_assert_cmpuint (json_array_get_length (keys), ==, 1);
    g_assert_cmpstr (json_array_get_string_element (keys, 0), ==, "x");
    records = json_object_get_array_member (o, "records");
    g_assert_cmpuint (json_array_get_length (records), ==, 1);
    g_assert_cmpint (json_object_get_int_member (json_array_get_object_element (records, 0), "x"), ==, 1);
    g_assert_nonnull (json_object_get_object_member (o, "summary"));
    if (g_str_equal (mode, "neo4j"))
      g_assert_true (json_object_has_member (json_object_get_object_member (o, "summary"), "bookmark"));
  }
  {
    g_autoptr(CtlResult) r = run_ctl (t, "cypher", "graph", "RETURN $a AS a, $b AS b, $c AS c, $d AS d",
                                      "--param", "a=i:42", "--param", "b=hello", "--param", "c=j:[1, \"two\"]",
                                      "--param", "d=n:", "--json");
    JsonObject *record;
    JsonArray *c;

    g_assert_cmpint (r->status, ==, 0);
    record = json_array_get_object_element (json_object_get_array_member (parse_object (parser, r->out), "records"), 0);
    g_assert_cmpint (json_object_get_int_member (record, "a"), ==, 42);
    g_assert_cmpstr (json_object_get_string_member (record, "b"), ==, "hello");
    c = json_object_get_array_member (record, "c");
    g_assert_cmpuint (json_array_get_length (c), ==, 2);
    g_assert_cmpint (json_array_get_int_element (c, 0), ==, 1);
    g_assert_cmpstr (json_array_get_string_element (c, 1), ==, "two");
    g_assert_true (json_object_get_null_member (record, "d"));
  }
  {
    g_autoptr(CtlResult) r = run_ctl (t, "cypher", "graph", "UNWIND range(1, $n) AS i RETURN i",
                                      "--int", "--param", "n=3", "--json");
    JsonArray *records;

    g_assert_cmpint (r->status, ==, 0);
    records = json_object_get_array_member (parse_object (parser, r->out), "records");
    g_assert_cmpuint (json_array_get_length (records), ==, 3);
    g_assert_cmpint (json_object_get_int_member (json_array_get_object_element (records, 2), "i"), ==, 3);
  }
  {
    g_autoptr(CtlResult) r = run_ctl (t, "cypher", "graph", "RETURN 'Ann' AS name, 7 AS n");

    g_assert_cmpint (r->status, ==, 0);
    g_assert_nonnull (strstr (r->out, "name"));
    g_assert_nonnull (strstr (r->out, "Ann"));
    g_assert_nonnull (strstr (r->out, "(1 record)"));
  }
  {
    g_autoptr(CtlResult) r = run_ctl (t, "cypher", "graph", "UNWIND range(1, 250) AS i RETURN i",
                                      "--to-file", jsonl);
    g_auto(GStrv) lines = NULL;

    g_assert_cmpint (r->status, ==, 0);
    g_assert_true (g_file_get_contents (jsonl, &contents, NULL, NULL));
    lines = g_strsplit (contents, "\n", -1);
    g_assert_cmpstr (lines[0], ==, "{\"columns\":[\"i\"]}");
    g_assert_cmpstr (lines[1], ==, "{\"i\":1}");
    g_assert_cmpstr (lines[250], ==, "{\"i\":250}");
    g_assert_true (g_str_has_prefix (lines[251], "{\"end\":"));
    g_remove (jsonl);
  }
  {
    g_autoptr(CtlResult) r = run_ctl (t, "cypher", "graph", "THIS IS NOT CYPHER");

    g_assert_cmpint (r->status, !=, 0);
    g_assert_nonnull (strstr (r->err, "Neo.ClientError.Statement.SyntaxError"));
  }
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *server = NULL;

  g_test_init (&argc, &argv, NULL);

  server = find_server ();
  if (!g_file_test (server, G_FILE_TEST_EXISTS))
    return 77;

  g_test_add_func ("/bolt/dbus/run", test_run);
  g_test_add_func ("/bolt/dbus/run-errors", test_run_errors);
  g_test_add_func ("/bolt/dbus/breaker-timeout", test_breaker_timeout);
  g_test_add_func ("/bolt/dbus/run-to-fd", test_run_to_fd);
  g_test_add_func ("/bolt/dbus/execute-retry", test_execute_retry);
  g_test_add_func ("/bolt/dbus/transaction", test_transaction);
  g_test_add_func ("/bolt/dbus/routing", test_routing);
  g_test_add_func ("/bolt/dbus/stale-connection", test_stale_connection);
  g_test_add_func ("/bolt/dbus/unavailable", test_unavailable);
  g_test_add_func ("/bolt/dbus/execute-not-a-leader", test_execute_not_a_leader);
  g_test_add_func ("/bolt/dbus/execute-commit-unknown", test_execute_commit_unknown);
  g_test_add_data_func ("/bolt/dbus/ctl-cypher/neo4j", "neo4j", test_ctl_cypher);
  g_test_add_data_func ("/bolt/dbus/ctl-cypher/memgraph", "memgraph", test_ctl_cypher);

  return g_test_run ();
}
