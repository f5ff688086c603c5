/* test-bolt-backend.c: managed transactions of the bolt backend on a manual clock
 *
 * The backend runs in this process against tests/bolt/boltserver.py (real
 * sockets, real Bolt) with a manual BpClock: the network is waited for, but
 * the retry sleeps pass only when the test advances the clock. So the
 * drivers' schedule (1 s, doubling, ±20 %, 30 s) is checked exactly and
 * without sleeping.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>

#include "bp-bolt-backend.h"

/* ---------------------------------------------------------------- */
/* The server process                                                 */

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
  const char *root = g_getenv ("BACKPLANE_SOURCE_ROOT");

  if (env != NULL && g_file_test (env, G_FILE_TEST_EXISTS))
    return g_strdup (env);
  if (root == NULL)
    root = BP_SOURCE_ROOT;
  return g_build_filename (root, "tests", "bolt", "boltserver.py", NULL);
}

static Server *
server_start (const char *first,
              ...)
{
  Server *server = g_new0 (Server, 1);
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autofree char *line = NULL;
  va_list ap;

  server->dir = g_dir_make_tmp ("bp-bolt-backend-XXXXXX", &error);
  g_assert_no_error (error);
  server->log_path = g_build_filename (server->dir, "server.jsonl", NULL);
  g_ptr_array_add (argv, g_strdup ("python3"));
  g_ptr_array_add (argv, find_server ());
  g_ptr_array_add (argv, g_strdup ("--port"));
  g_ptr_array_add (argv, g_strdup ("0"));
  g_ptr_array_add (argv, g_strdup ("--log"));
  g_ptr_array_add (argv, g_strdup (server->log_path));
  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (argv, g_strdup (a));
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
  g_rmdir (server->dir);
  g_free (server->log_path);
  g_free (server->dir);
  g_free (server);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Server, server_stop)

/* How many log lines contain @needle (e.g. `"msg": "BEGIN"`). */
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

/* ---------------------------------------------------------------- */
/* The backend                                                        */

static gboolean
guard_expired (gpointer user_data)
{
  g_error ("timed out waiting for the backend (%s)", (const char *) user_data);
  return G_SOURCE_REMOVE;
}

/* Iterates the main context until *@flag; the guard is real time. */
static void
wait_flag (gboolean   *flag,
           const char *what)
{
  guint guard = g_timeout_add_seconds (60, guard_expired, (gpointer) what);

  while (!*flag)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
}

static void
started_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  gboolean *done = user_data;
  g_autoptr(GError) error = NULL;

  bp_backend_start_finish (BP_BACKEND (object), result, &error);
  g_assert_no_error (error);
  *done = TRUE;
}

static BpBackend *
backend_new (BpClock     *clock,
             const char  *uri,
             const char  *extra,
             GError     **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(BpConfigSection) section = NULL;
  g_autoptr(BpBackend) backend = NULL;
  g_autofree char *text = g_strdup_printf ("[backend graph]\ntype=bolt\nuri=%s\n"
                                           "pool.idle-timeout-ms=0\n%s",
                                           uri, extra != NULL ? extra : "");

  g_assert_true (g_key_file_load_from_data (kf, text, -1, G_KEY_FILE_NONE, NULL));
  section = bp_config_section_new (kf, "backend graph");
  backend = g_object_new (BP_TYPE_BOLT_BACKEND, "name", "graph", "type-name", "bolt", "clock", clock, NULL);
  if (!bp_backend_configure (backend, section, error))
    return NULL;
  return g_steal_pointer (&backend);
}

static BpBackend *
backend_start (BpClock    *clock,
               const char *uri,
               const char *extra)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBackend) backend = backend_new (clock, uri, extra, &error);
  gboolean done = FALSE;

  g_assert_no_error (error);
  bp_backend_start_async (backend, NULL, started_cb, &done);
  wait_flag (&done, "start");
  return g_steal_pointer (&backend);
}

static void
stopped_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  gboolean *done = user_data;

  g_assert_true (bp_backend_stop_finish (BP_BACKEND (object), result, NULL));
  *done = TRUE;
}

static void
backend_stop (BpBackend *backend)
{
  gboolean done = FALSE;

  bp_backend_stop_async (backend, NULL, stopped_cb, &done);
  wait_flag (&done, "stop");
  /* GOODBYEs and closes still in flight */
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* One ExecuteRead/ExecuteWrite, driving the clock through its sleeps. */
typedef struct
{
  gboolean  done;
  GVariant *reply;
  GError   *error;
  guint     attempts;
  GArray   *delays;       /* gint64 µs, from ::retry-scheduled */
  GArray   *starts;       /* gint64: clock time each retry started */
  guint     handled;      /* delays already slept through */
} Execute;

static void
execute_clear (Execute *e)
{
  g_clear_pointer (&e->reply, g_variant_unref);
  g_clear_error (&e->error);
  g_clear_pointer (&e->delays, g_array_unref);
  g_clear_pointer (&e->starts, g_array_unref);
}

static void
executed_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Execute *e = user_data;

  e->reply = bp_bolt_backend_execute_finish (BP_BOLT_BACKEND (object), result, &e->attempts, &e->error);
  e->done = TRUE;
}

static void
retry_scheduled_cb (BpBoltTxRetry *retry,
                    guint          attempt,
                    gint64         delay_us,
                    const GError  *error,
                    gpointer       user_data)
{
  Execute *e = user_data;

  g_test_message ("attempt %u failed: %s", attempt, error->message);
  g_assert_cmpuint (attempt, ==, e->delays->len + 1);
  g_array_append_val (e->delays, delay_us);
}

static gboolean
execute_progress (gpointer user_data)
{
  Execute *e = user_data;

  return e->done || e->delays->len > e->handled;
}

static void
execute (BpBackend  *backend,
         BpClock    *clock,
         const char *statements,
         gboolean    write,
         Execute    *e)
{
  BpBoltTxRetry *retry = bp_bolt_backend_get_tx_retry (BP_BOLT_BACKEND (backend));
  gulong id;

  memset (e, 0, sizeof *e);
  e->delays = g_array_new (FALSE, FALSE, sizeof (gint64));
  e->starts = g_array_new (FALSE, FALSE, sizeof (gint64));
  id = g_signal_connect (retry, "retry-scheduled", G_CALLBACK (retry_scheduled_cb), e);
  bp_bolt_backend_execute_async (BP_BOLT_BACKEND (backend), g_variant_new_parsed (statements),
                                 g_variant_new ("a{sv}", NULL), write, NULL, executed_cb, e);
  for (;;)
    {
      guint guard = g_timeout_add_seconds (60, guard_expired, (gpointer) statements);
      gint64 delay, now;

      while (!execute_progress (e))
        g_main_context_iteration (NULL, TRUE);
      g_source_remove (guard);
      if (e->done)
        break;
      /* the attempt failed and a sleep is armed: nothing but the clock
       * starts the next one */
      delay = g_array_index (e->delays, gint64, e->handled++);
      bp_clock_advance (clock, delay);
      now = bp_clock_get_time (clock);
      g_array_append_val (e->starts, now);
    }
  g_signal_handler_disconnect (retry, id);
}

/* ---------------------------------------------------------------- */

static void
assert_attempts (Server      *server,
                 Execute     *e,
                 guint        attempts)
{
  g_assert_cmpuint (e->attempts, ==, attempts);
  g_assert_cmpuint (e->delays->len, ==, attempts - 1);
  /* one BEGIN per attempt reached the server */
  g_assert_cmpuint (server_count (server, "\"msg\": \"BEGIN\""), ==, attempts);
}

static void
test_recovers (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpClock) clock = bp_clock_new_manual (G_USEC_PER_SEC, 11);
  g_autofree char *uri = g_strdup_printf ("bolt://127.0.0.1:%u", server->port);
  g_autoptr(BpBackend) backend = backend_start (clock, uri, NULL);
  Execute e = { 0 };
  g_autoptr(GVariant) results = NULL;
  const char *bookmark;

  g_test_summary ("ExecuteWrite with two transient failures: RESET, sleeps of 1 s and 2 s ±20 %, "
                  "the third attempt commits and its bookmark is returned");

  execute (backend, clock, "[('CALL test.transient(\"rec\", 2)', @a{sv} {}), "
                           "('CREATE (n:Managed) RETURN 1 AS one', @a{sv} {})]", TRUE, &e);
  g_assert_no_error (e.error);
  assert_attempts (server, &e, 3);
  g_assert_cmpint (g_array_index (e.delays, gint64, 0), >=, 800000);
  g_assert_cmpint (g_array_index (e.delays, gint64, 0), <=, 1200000);
  g_assert_cmpint (g_array_index (e.delays, gint64, 1), >=, 1600000);
  g_assert_cmpint (g_array_index (e.delays, gint64, 1), <=, 2400000);
  g_variant_get (e.reply, "(@a(asaa{sv})&s)", &results, &bookmark);
  g_assert_cmpuint (g_variant_n_children (results), ==, 2);
  g_assert_true (g_str_has_prefix (bookmark, "FB:"));
  /* after each FAILURE the connection was RESET before reuse */
  g_assert_cmpuint (server_count (server, "\"msg\": \"RESET\""), >=, 2);
  g_assert_cmpuint (server_count (server, "\"msg\": \"COMMIT\""), ==, 1);

  execute_clear (&e);
  backend_stop (backend);
}

static void
test_budget (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpClock) clock = bp_clock_new_manual (G_USEC_PER_SEC, 5);
  g_autofree char *uri = g_strdup_printf ("bolt://127.0.0.1:%u", server->port);
  g_autoptr(BpBackend) backend = backend_start (clock, uri, NULL);
  Execute e = { 0 };
  gint64 first_failure;
  gint64 nominal = G_USEC_PER_SEC;

  g_test_summary ("always transient: delays 1, 2, 4, 8, 16 s ±20 %; no retry starts more than "
                  "30 s after the first failure; the last error is returned");

  first_failure = bp_clock_get_time (clock);   /* attempts take no clock time here */
  execute (backend, clock, "[('CALL test.transient(\"always\", 1000)', @a{sv} {})]", FALSE, &e);
  g_assert_error (e.error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_nonnull (strstr (e.error->message, "Neo.TransientError.Transaction.DeadlockDetected"));
  /* nominal starts 0, 1, 3, 7, 15, 31 s: 6 or 7 attempts whatever the draws */
  g_assert_cmpuint (e.attempts, >=, 6);
  g_assert_cmpuint (e.attempts, <=, 7);
  assert_attempts (server, &e, e.attempts);
  for (guint i = 0; i < e.delays->len; i++, nominal *= 2)
    {
      gint64 delay = g_array_index (e.delays, gint64, i);

      g_assert_cmpint (delay, >=, nominal * 8 / 10);
      g_assert_cmpint (delay, <=, nominal * 12 / 10);
    }
  for (guint i = 0; i + 1 < e.starts->len; i++)
    g_assert_cmpint (g_array_index (e.starts, gint64, i) - first_failure, <=, 30 * G_USEC_PER_SEC);
  g_assert_cmpint (g_array_index (e.starts, gint64, e.starts->len - 1) - first_failure, >, 30 * G_USEC_PER_SEC);

  execute_clear (&e);
  backend_stop (backend);
}

static void
test_configured (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpClock) clock = bp_clock_new_manual (G_USEC_PER_SEC, 5);
  g_autofree char *uri = g_strdup_printf ("bolt://127.0.0.1:%u", server->port);
  g_autoptr(BpBackend) backend = backend_start (clock, uri,
                                                "tx-retry.initial-ms=200\ntx-retry.multiplier=1.5\n"
                                                "tx-retry.jitter-percent=0\ntx-retry.max-time-ms=700\n");
  Execute e = { 0 };

  g_test_summary ("tx-retry.* keys: 200 ms ×1.5 without jitter, 700 ms window: sleeps 200, 300, "
                  "450 ms, then the error");

  execute (backend, clock, "[('CALL test.transient(\"conf\", 1000)', @a{sv} {})]", TRUE, &e);
  g_assert_error (e.error, BP_ERROR, BP_ERROR_BACKEND);
  assert_attempts (server, &e, 4);
  g_assert_cmpint (g_array_index (e.delays, gint64, 0), ==, 200000);
  g_assert_cmpint (g_array_index (e.delays, gint64, 1), ==, 300000);
  g_assert_cmpint (g_array_index (e.delays, gint64, 2), ==, 450000);

  execute_clear (&e);
  backend_stop (backend);
}

static void
test_not_retried (void)
{
  static const char * const statements[] = {
    "[('CALL test.terminated()', @a{sv} {})]",
    "[('CALL test.fail(\"Neo.TransientError.Transaction.LockClientStopped\", \"stopped\")', @a{sv} {})]",
    "[('CALL test.fail(\"Neo.ClientError.Transaction.Terminated\", \"t\")', @a{sv} {})]",
    "[('THIS IS NOT CYPHER', @a{sv} {})]",
    "[('CALL test.fail(\"Neo.DatabaseError.General.UnknownError\", \"boom\")', @a{sv} {})]",
    "[('CALL test.fail(\"Neo.ClientError.Cluster.NotALeader\", \"not in a cluster\")', @a{sv} {})]",
  };
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpClock) clock = bp_clock_new_manual (G_USEC_PER_SEC, 5);
  g_autofree char *uri = g_strdup_printf ("bolt://127.0.0.1:%u", server->port);
  g_autoptr(BpBackend) backend = backend_start (clock, uri, NULL);

  g_test_summary ("client errors (Terminated and LockClientStopped included, in either category), "
                  "database errors and NotALeader without routing fail after exactly one attempt");

  for (guint i = 0; i < G_N_ELEMENTS (statements); i++)
    {
      Execute e = { 0 };
      guint begins = server_count (server, "\"msg\": \"BEGIN\"");

      execute (backend, clock, statements[i], TRUE, &e);
      g_assert_error (e.error, BP_ERROR, BP_ERROR_BACKEND);
      g_assert_cmpuint (e.attempts, ==, 1);
      g_assert_cmpuint (e.delays->len, ==, 0);
      g_assert_cmpuint (server_count (server, "\"msg\": \"BEGIN\""), ==, begins + 1);
      execute_clear (&e);
    }
  backend_stop (backend);
}

static void
test_commit_unknown (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpClock) clock = bp_clock_new_manual (G_USEC_PER_SEC, 5);
  g_autofree char *uri = g_strdup_printf ("bolt://127.0.0.1:%u", server->port);
  g_autoptr(BpBackend) backend = backend_start (clock, uri, NULL);
  Execute e = { 0 };

  g_test_summary ("the connection drops while COMMIT is outstanding: \"commit outcome unknown\", "
                  "not retried");

  execute (backend, clock, "[('CALL test.dropOnCommit()', @a{sv} {})]", TRUE, &e);
  g_assert_error (e.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (e.error->message, "commit outcome unknown"));
  assert_attempts (server, &e, 1);
  g_assert_cmpuint (server_count (server, "\"msg\": \"COMMIT\""), ==, 1);

  execute_clear (&e);
  backend_stop (backend);
}

static void
test_connection_lost (void)
{
  g_autoptr(Server) server = NULL;
  g_autoptr(BpClock) clock = bp_clock_new_manual (G_USEC_PER_SEC, 5);
  g_autofree char *uri = NULL;
  g_autoptr(BpBackend) backend = NULL;
  g_autofree char *script = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bp-bolt-script-XXXXXX", NULL);
  Execute e = { 0 };

  g_test_summary ("a connection lost before COMMIT: the managed transaction runs again on a new "
                  "connection");

  script = g_build_filename (dir, "script.json", NULL);
  g_assert_true (g_file_set_contents (script,
                                      "[{\"match\": \"flaky\", \"close\": true, \"times\": 1},"
                                      " {\"match\": \"flaky\", \"fields\": [\"ok\"], \"records\": [[true]]}]",
                                      -1, NULL));
  server = server_start ("--script", script, NULL);
  uri = g_strdup_printf ("bolt://127.0.0.1:%u", server->port);
  backend = backend_start (clock, uri, NULL);

  execute (backend, clock, "[('RETURN \"flaky\" AS f', @a{sv} {})]", TRUE, &e);
  g_assert_no_error (e.error);
  assert_attempts (server, &e, 2);

  execute_clear (&e);
  backend_stop (backend);
  g_remove (script);
  g_rmdir (dir);
}

static void
test_not_a_leader (void)
{
  g_autoptr(Server) follower = server_start ("--role", "reader", NULL);
  g_autoptr(Server) leader = server_start (NULL);
  g_autoptr(Server) router = NULL;
  g_autoptr(BpClock) clock = bp_clock_new_manual (G_USEC_PER_SEC, 5);
  g_autofree char *tables = NULL;
  g_autofree char *uri = NULL;
  g_autoptr(BpBackend) backend = NULL;
  Execute e = { 0 };
  const char *bookmark;

  g_test_summary ("neo4j://: the writer answers NotALeader: it leaves the routing table, the table "
                  "is fetched again and the managed transaction is retried on the new leader");

  /* the first table names the follower as writer, later ones the leader */
  tables = g_strdup_printf ("[{\"ttl\": 300, \"writers\": [\"127.0.0.1:%u\"]},"
                            " {\"ttl\": 300, \"writers\": [\"127.0.0.1:%u\"]}]",
                            follower->port, leader->port);
  router = server_start ("--routing-table", tables, NULL);
  uri = g_strdup_printf ("neo4j://127.0.0.1:%u", router->port);
  backend = backend_start (clock, uri, NULL);
  g_assert_cmpuint (server_count (router, "\"msg\": \"ROUTE\""), ==, 1);

  execute (backend, clock, "[('CREATE (n:Led) RETURN 1 AS one', @a{sv} {})]", TRUE, &e);
  g_assert_no_error (e.error);
  g_assert_cmpuint (e.attempts, ==, 2);
  g_assert_cmpuint (e.delays->len, ==, 1);
  g_assert_cmpint (g_array_index (e.delays, gint64, 0), >=, 800000);
  g_assert_cmpint (g_array_index (e.delays, gint64, 0), <=, 1200000);
  g_variant_get (e.reply, "(@a(asaa{sv})&s)", NULL, &bookmark);
  g_assert_true (g_str_has_prefix (bookmark, "FB:"));
  /* attempt 1 on the follower, refused; a new table; attempt 2 on the leader */
  g_assert_cmpuint (server_count (follower, "Neo.ClientError.Cluster.NotALeader"), ==, 1);
  g_assert_cmpuint (server_count (follower, "\"msg\": \"COMMIT\""), ==, 0);
  g_assert_cmpuint (server_count (router, "\"msg\": \"ROUTE\""), ==, 2);
  g_assert_cmpuint (server_count (leader, "\"msg\": \"COMMIT\""), ==, 1);
  execute_clear (&e);

  /* the next write goes straight to the leader */
  execute (backend, clock, "[('CREATE (n:Led) RETURN 2 AS two', @a{sv} {})]", TRUE, &e);
  g_assert_no_error (e.error);
  g_assert_cmpuint (e.attempts, ==, 1);
  g_assert_cmpuint (server_count (leader, "\"msg\": \"COMMIT\""), ==, 2);
  execute_clear (&e);

  backend_stop (backend);
}

static void
test_config_errors (void)
{
  static const struct { const char *text; const char *in_message; } cases[] = {
    { "tx-retry.multiplier=abc\n", "tx-retry.multiplier" },
    { "tx-retry.multiplier=0.5\n", "tx-retry.multiplier" },
    { "tx-retry.multiplier=11\n", "tx-retry.multiplier" },
    { "tx-retry.jitter-percent=101\n", "tx-retry.jitter-percent" },
    { "tx-retry.initial-ms=0\n", "tx-retry.initial-ms" },
    { "tx-retry.max-time-ms=-1\n", "tx-retry.max-time-ms" },
    { "tx-retry.colour=red\n", "tx-retry.colour" },
  };
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 1);

  g_test_summary ("tx-retry.* values are checked at configuration; the defaults are the drivers'");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BpBackend) backend = backend_new (clock, "bolt://127.0.0.1:7687", cases[i].text, &error);

      g_assert_null (backend);
      g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
      if (strstr (error->message, cases[i].in_message) == NULL)
        g_error ("%s: %s", cases[i].text, error->message);
    }

  {
    g_autoptr(GError) error = NULL;
    g_autoptr(BpBackend) backend = backend_new (clock, "bolt://127.0.0.1:7687", NULL, &error);
    BpBoltTxRetry *retry;
    guint initial_ms, jitter, max_time_ms;
    double multiplier;

    g_assert_no_error (error);
    retry = bp_bolt_backend_get_tx_retry (BP_BOLT_BACKEND (backend));
    g_object_get (retry, "initial-ms", &initial_ms, "multiplier", &multiplier, "jitter-percent", &jitter,
                  "max-time-ms", &max_time_ms, NULL);
    g_assert_cmpuint (initial_ms, ==, 1000);
    g_assert_cmpfloat (multiplier, ==, 2.0);
    g_assert_cmpuint (jitter, ==, 20);
    g_assert_cmpuint (max_time_ms, ==, 30000);
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(BpBackend) backend = backend_new (clock, "bolt://127.0.0.1:7687", "tx-retry.multiplier=1.5\n", &error);
    double multiplier;

    g_assert_no_error (error);
    g_object_get (bp_bolt_backend_get_tx_retry (BP_BOLT_BACKEND (backend)), "multiplier", &multiplier, NULL);
    g_assert_cmpfloat (multiplier, ==, 1.5);
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

  g_test_add_func ("/bolt/backend/tx-retry/recovers", test_recovers);
  g_test_add_func ("/bolt/backend/tx-retry/budget", test_budget);
  g_test_add_func ("/bolt/backend/tx-retry/configured", test_configured);
  g_test_add_func ("/bolt/backend/tx-retry/not-retried", test_not_retried);
  g_test_add_func ("/bolt/backend/tx-retry/commit-unknown", test_commit_unknown);
  g_test_add_func ("/bolt/backend/tx-retry/connection-lost", test_connection_lost);
  g_test_add_func ("/bolt/backend/tx-retry/not-a-leader", test_not_a_leader);
  g_test_add_func ("/bolt/backend/config/tx-retry", test_config_errors);

  return g_test_run ();
}
