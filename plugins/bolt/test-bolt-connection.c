/* test-bolt-connection.c: the Bolt client against the project's Bolt server
 *
 * Each test starts tests/bolt/boltserver.py (path from $BOLT_SERVER, or
 * $BACKPLANE_SOURCE_ROOT/tests/bolt/boltserver.py) on a free port with a
 * JSON Lines log, drives a BpBoltConnection on the main loop and checks both
 * what the client returns and what the server logged it received.
 *
 * Real processes and sockets: tests wait on events with a generous overall
 * timeout; only the receive-timeout test depends on (second-scale) time.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <glib/gstdio.h>

#include "bp-bolt-connection.h"
#include "bp-bolt-routing-table.h"

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
server_start_argv (const char * const *extra)
{
  Server *server = g_new0 (Server, 1);
  g_autofree char *script = find_server ();
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autofree char *line = NULL;

  server->dir = g_dir_make_tmp ("bp-bolt-test-XXXXXX", &error);
  g_assert_no_error (error);
  server->log_path = g_build_filename (server->dir, "server.jsonl", NULL);

  g_ptr_array_add (argv, g_strdup ("python3"));
  g_ptr_array_add (argv, g_strdup (script));
  g_ptr_array_add (argv, g_strdup ("--port"));
  g_ptr_array_add (argv, g_strdup ("0"));
  g_ptr_array_add (argv, g_strdup ("--log"));
  g_ptr_array_add (argv, g_strdup (server->log_path));
  for (guint i = 0; extra != NULL && extra[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (extra[i]));
  g_ptr_array_add (argv, NULL);

  server->process = g_subprocess_newv ((const char * const *) argv->pdata,
                                       G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                       &error);
  g_assert_no_error (error);
  /* blocking read of one line: test code */
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (server->process));
  line = g_data_input_stream_read_line_utf8 (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "LISTENING "));
  server->port = (guint16) g_ascii_strtoull (line + 10, NULL, 10);
  g_assert_cmpuint (server->port, >, 0);
  return server;
}

static Server *
server_start (const char *first,
              ...)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  va_list ap;

  va_start (ap, first);
  for (const char *a = first; a != NULL; a = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) a);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  return server_start_argv ((const char * const *) args->pdata);
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

static char *
server_log (Server *server)
{
  char *text = NULL;

  g_file_get_contents (server->log_path, &text, NULL, NULL);
  return text != NULL ? text : g_strdup ("");
}

static guint
count (const char *haystack,
       const char *needle)
{
  guint n = 0;

  for (const char *p = strstr (haystack, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  return n;
}

/* waits until the server logged @needle @n times (it logs asynchronously) */
static char *
server_log_wait (Server     *server,
                 const char *needle,
                 guint       n)
{
  for (guint i = 0; i < 500; i++)
    {
      g_autofree char *log = server_log (server);
      if (count (log, needle) >= n)
        return g_steal_pointer (&log);
      g_usleep (10000);
    }
  return server_log (server);
}

/* ---------------------------------------------------------------- */
/* Main-loop helpers                                                  */

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static gboolean
abort_test (gpointer data)
{
  g_error ("test timed out");
  return G_SOURCE_REMOVE;
}

static void
wait_for (GAsyncResult **result)
{
  guint timeout = g_timeout_add_seconds (60, abort_test, NULL);

  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
}

static BpBoltConnection *
connect_full (guint16           port,
              BpBoltTlsMode     tls,
              const BpBoltAuth *auth,
              guint             max_version,
              GError          **error)
{
  g_autoptr(BpBoltConnection) conn = bp_bolt_connection_new ("127.0.0.1", port, tls);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(BpBoltAuth) none = bp_bolt_auth_new_none ();

  if (max_version != 0)
    bp_bolt_connection_set_max_version (conn, max_version);
  bp_bolt_connection_open_async (conn, auth ? auth : none, NULL, store_result, &result);
  wait_for (&result);
  if (!bp_bolt_connection_open_finish (conn, result, error))
    return NULL;
  return g_steal_pointer (&conn);
}

static BpBoltConnection *
connect_ok (Server *server)
{
  g_autoptr(GError) error = NULL;
  BpBoltConnection *conn = connect_full (server->port, BP_BOLT_TLS_NONE, NULL, 0, &error);

  g_assert_no_error (error);
  g_assert_nonnull (conn);
  return conn;
}

static void
close_conn (BpBoltConnection *conn)
{
  g_autoptr(GAsyncResult) result = NULL;

  bp_bolt_connection_close_async (conn, NULL, store_result, &result);
  wait_for (&result);
  g_assert_true (bp_bolt_connection_close_finish (conn, result, NULL));
}

static BpBoltStream *
run (BpBoltConnection *conn,
     const char       *query,
     GVariant         *params,
     GVariant         *extra,
     gint64            fetch_size,
     GError          **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  bp_bolt_connection_run_async (conn, query, params, extra, fetch_size, NULL, store_result, &result);
  wait_for (&result);
  return bp_bolt_connection_run_finish (conn, result, error);
}

static GPtrArray *
next_batch (BpBoltStream *stream,
            gboolean     *has_more,
            GError      **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  bp_bolt_stream_next_batch_async (stream, NULL, store_result, &result);
  wait_for (&result);
  return bp_bolt_stream_next_batch_finish (stream, result, has_more, error);
}

/* runs @query and returns all records (GVariant) */
static GPtrArray *
run_all (BpBoltConnection *conn,
         const char       *query,
         GVariant         *params,
         GError          **error)
{
  g_autoptr(BpBoltStream) stream = run (conn, query, params, NULL, 0, error);
  g_autoptr(GPtrArray) all = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  gboolean more = TRUE;

  if (stream == NULL)
    return NULL;
  while (more)
    {
      g_autoptr(GPtrArray) batch = next_batch (stream, &more, error);
      if (batch == NULL)
        return NULL;
      for (guint i = 0; i < batch->len; i++)
        g_ptr_array_add (all, g_variant_ref (g_ptr_array_index (batch, i)));
    }
  return g_steal_pointer (&all);
}

static void
begin (BpBoltConnection *conn)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  bp_bolt_connection_begin_async (conn, NULL, NULL, store_result, &result);
  wait_for (&result);
  g_assert_true (bp_bolt_connection_begin_finish (conn, result, &error));
  g_assert_no_error (error);
}

static gboolean
commit (BpBoltConnection *conn,
        char            **bookmark,
        GError          **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  bp_bolt_connection_commit_async (conn, NULL, store_result, &result);
  wait_for (&result);
  return bp_bolt_connection_commit_finish (conn, result, bookmark, error);
}

static gint64
record_int (GVariant   *record,
            const char *key)
{
  gint64 v = G_MININT64;

  g_assert_true (g_variant_lookup (record, key, "x", &v));
  return v;
}

/* ---------------------------------------------------------------- */
/* Handshake and authentication                                        */

static void
test_handshake_5x (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autofree char *log = NULL;

  g_test_summary ("against a Neo4j-mode server the client negotiates 5.8 through the manifest");

  g_assert_cmpuint (bp_bolt_connection_get_protocol_version (conn), ==, BP_BOLT_VERSION (5, 8));
  g_assert_true (bp_bolt_connection_get_used_manifest (conn));
  g_assert_true (g_str_has_prefix (bp_bolt_connection_get_server_agent (conn), "Neo4j/"));
  g_assert_true (bp_bolt_connection_is_idle (conn));
  close_conn (conn);
  log = server_log_wait (server, "\"msg\": \"GOODBYE\"", 1);
  g_assert_nonnull (strstr (log, "\"proposals\": [\"000001ff\", \"00080805\", \"00010404\", \"00000000\"]"));
  g_assert_nonnull (strstr (log, "\"client_choice\": \"00000805\""));
  g_assert_nonnull (strstr (log, "\"msg\": \"GOODBYE\""));
}

static void
test_handshake_no_manifest (void)
{
  g_autoptr(Server) server = server_start ("--no-manifest", NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);

  g_assert_cmpuint (bp_bolt_connection_get_protocol_version (conn), ==, BP_BOLT_VERSION (5, 8));
  g_assert_false (bp_bolt_connection_get_used_manifest (conn));
  close_conn (conn);
}

static void
test_handshake_44 (void)
{
  g_autoptr(Server) server = server_start ("--max-version", "4.4", NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GVariant) node = NULL;
  const char *eid;
  gint64 id;

  g_test_summary ("Bolt 4.4: nodes have no element id on the wire; element-id is the decimal id");

  g_assert_cmpuint (bp_bolt_connection_get_protocol_version (conn), ==, BP_BOLT_VERSION (4, 4));
  records = run_all (conn, "CREATE (n:Person {name: 'Ann'}) RETURN n", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (records->len, ==, 1);
  node = g_variant_lookup_value (g_ptr_array_index (records, 0), "n", G_VARIANT_TYPE_VARDICT);
  g_assert_nonnull (node);
  g_assert_true (g_variant_lookup (node, "id", "x", &id));
  g_assert_true (g_variant_lookup (node, "element-id", "&s", &eid));
  {
    g_autofree char *want = g_strdup_printf ("%" G_GINT64_FORMAT, id);
    g_assert_cmpstr (eid, ==, want);
  }
  close_conn (conn);
}

static void
test_handshake_memgraph (void)
{
  g_autoptr(Server) server = server_start ("--mode", "memgraph", "--auth", "mg:pw", NULL);
  g_autoptr(BpBoltAuth) auth = bp_bolt_auth_new_basic ("mg", "pw", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltConnection) conn = connect_full (server->port, BP_BOLT_TLS_NONE, auth, 0, &error);
  g_autoptr(BpBoltStream) stream = NULL;
  g_autofree char *code = NULL;
  g_autofree char *log = NULL;

  g_test_summary ("Memgraph mode: 5.2 with HELLO + LOGON, {code, message} failures parsed");

  g_assert_no_error (error);
  g_assert_cmpuint (bp_bolt_connection_get_protocol_version (conn), ==, BP_BOLT_VERSION (5, 2));
  stream = run (conn, "CALL test.fail('Memgraph.ClientError.MemgraphError.MemgraphError', 'boom')", NULL, NULL, 0, &error);
  g_assert_null (stream);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_cmpstr (error->message, ==, "Memgraph.ClientError.MemgraphError.MemgraphError: boom");
  code = bp_bolt_error_dup_code (error);
  g_assert_cmpstr (code, ==, "Memgraph.ClientError.MemgraphError.MemgraphError");
  g_assert_cmpint (bp_bolt_error_classify (error), ==, BP_BOLT_ERROR_CLASS_CLIENT);
  close_conn (conn);

  log = server_log_wait (server, "\"msg\": \"GOODBYE\"", 1);
  g_assert_nonnull (strstr (log, "\"msg\": \"LOGON\""));
  g_assert_null (strstr (log, "\"msg\": \"TELEMETRY\""));
  g_assert_null (strstr (log, "\"pw\""));
}

static void
test_handshake_rejected (void)
{
  g_autoptr(Server) server = server_start ("--reject-handshake", NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltConnection) conn = connect_full (server->port, BP_BOLT_TLS_NONE, NULL, 0, &error);

  g_test_summary ("a 00 00 00 00 handshake reply is a 'no compatible version' error");

  g_assert_null (conn);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_nonnull (strstr (error->message, "none of the offered protocol versions"));
}

static void
test_auth (void)
{
  g_autoptr(Server) server = server_start ("--auth", "neo4j:correct-horse", NULL);
  g_autoptr(BpBoltAuth) bad = bp_bolt_auth_new_basic ("neo4j", "wrong-battery", NULL);
  g_autoptr(BpBoltAuth) good = bp_bolt_auth_new_basic ("neo4j", "correct-horse", NULL);
  g_autoptr(BpBoltAuth) bearer = bp_bolt_auth_new_bearer ("correct-horse");
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltConnection) conn = NULL;
  g_autofree char *code = NULL;

  g_test_summary ("wrong credentials fail the open with Neo.ClientError.Security.Unauthorized; "
                  "basic and bearer succeed; the secret never shows in the error");

  conn = connect_full (server->port, BP_BOLT_TLS_NONE, bad, 0, &error);
  g_assert_null (conn);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  code = bp_bolt_error_dup_code (error);
  g_assert_cmpstr (code, ==, "Neo.ClientError.Security.Unauthorized");
  g_assert_null (strstr (error->message, "wrong-battery"));
  g_clear_error (&error);

  conn = connect_full (server->port, BP_BOLT_TLS_NONE, good, 0, &error);
  g_assert_no_error (error);
  close_conn (conn);
  g_clear_object (&conn);

  conn = connect_full (server->port, BP_BOLT_TLS_NONE, bearer, 0, &error);
  g_assert_no_error (error);
  close_conn (conn);
  g_clear_object (&conn);

  /* 4.4: credentials travel in HELLO */
  conn = connect_full (server->port, BP_BOLT_TLS_NONE, bad, BP_BOLT_VERSION (4, 4), &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_clear_error (&error);
  conn = connect_full (server->port, BP_BOLT_TLS_NONE, good, BP_BOLT_VERSION (4, 4), &error);
  g_assert_no_error (error);
  close_conn (conn);
}

/* ---------------------------------------------------------------- */
/* Queries                                                            */

static void
test_fetch_size (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = NULL;
  gboolean more;
  GVariant *summary;
  const char *bookmark;
  guint n_keys;
  const char * const *keys;
  gint64 expect = 1;
  guint batches[3] = { 2, 2, 1 };
  g_autofree char *log = NULL;

  g_test_summary ("RUN + PULL n=2 over 5 records: batches 2, 2, 1 with has_more true, true, false; "
                  "summary with bookmark");

  stream = run (conn, "UNWIND range(1, $n) AS i RETURN i", g_variant_new_parsed ("{'n': <int64 5>}"),
                NULL, 2, &error);
  g_assert_no_error (error);
  keys = bp_bolt_stream_get_keys (stream, &n_keys);
  g_assert_cmpuint (n_keys, ==, 1);
  g_assert_cmpstr (keys[0], ==, "i");
  g_assert_cmpint (bp_bolt_connection_get_state (conn), ==, BP_BOLT_STATE_STREAMING);

  for (guint b = 0; b < 3; b++)
    {
      g_autoptr(GPtrArray) batch = next_batch (stream, &more, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (batch->len, ==, batches[b]);
      for (guint i = 0; i < batch->len; i++)
        g_assert_cmpint (record_int (g_ptr_array_index (batch, i), "i"), ==, expect++);
      g_assert_true (more == (b < 2));
      if (b < 2)
        g_assert_null (bp_bolt_stream_get_summary (stream));
    }
  {
    g_autoptr(GPtrArray) empty = next_batch (stream, &more, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (empty->len, ==, 0);
    g_assert_false (more);
  }
  summary = bp_bolt_stream_get_summary (stream);
  g_assert_nonnull (summary);
  g_assert_true (g_variant_lookup (summary, "bookmark", "&s", &bookmark));
  g_assert_true (g_str_has_prefix (bookmark, "FB:"));
  g_assert_true (g_variant_lookup (summary, "db", "&s", NULL));
  g_assert_true (g_variant_lookup (summary, "t_last", "x", NULL));
  g_assert_true (g_variant_lookup (summary, "server", "&s", NULL));
  g_assert_false (g_variant_lookup (summary, "has_more", "b", NULL));
  g_assert_cmpint (bp_bolt_connection_get_state (conn), ==, BP_BOLT_STATE_READY);
  g_assert_true (bp_bolt_connection_is_idle (conn));

  close_conn (conn);
  log = server_log_wait (server, "\"msg\": \"GOODBYE\"", 1);
  g_assert_cmpuint (count (log, "\"msg\": \"PULL\", \"fields\": [{\"n\": 2}]"), ==, 3);
}

static void
test_json_records (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = NULL;
  g_autoptr(GPtrArray) batch = NULL;
  gboolean more;

  stream = run (conn, "RETURN $a AS a, $b AS b, $c AS c",
                g_variant_new_parsed ("{'a': <int64 9007199254740993>, 'b': <@o '/'>, 'c': <[byte 0x00, 0xff]>}"),
                NULL, 0, &error);
  g_assert_no_error (error);
  bp_bolt_stream_set_record_format (stream, BP_BOLT_RECORD_FORMAT_JSON);
  batch = next_batch (stream, &more, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (batch->len, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (batch, 0), ==, "{\"a\":9007199254740993,\"b\":null,\"c\":\"AP8=\"}");
  close_conn (conn);
}

static void
test_params_roundtrip (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GVariant) params = g_variant_ref_sink (g_variant_new_parsed (
      "{'a': <{'int': <int64 -129>, 'big': <int64 9223372036854775807>, 'f': <1.5>, 's': <'héllo'>, "
      "'list': <[<int64 1>, <'x'>, <@o '/'>]>, 'bytes': <[byte 0x01, 0x02]>, 't': <true>}>}"));
  g_autoptr(GVariant) a = NULL;
  g_autoptr(GVariant) expected = NULL;

  records = run_all (conn, "RETURN $a AS a", params, &error);
  g_assert_no_error (error);
  a = g_variant_lookup_value (g_ptr_array_index (records, 0), "a", NULL);
  expected = g_variant_lookup_value (params, "a", NULL);
  g_assert_true (g_variant_equal (a, expected));
  close_conn (conn);
}

static void
test_big_parameter (void)
{
  g_autoptr(Server) server = server_start ("--max-chunk", "1000", NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autofree char *big = g_malloc (200 * 1024 + 1);
  const char *back;

  g_test_summary ("a 200 kB string parameter goes out in several chunks and comes back in 1000-byte chunks");

  for (gsize i = 0; i < 200 * 1024; i++)
    big[i] = 'a' + (i % 26);
  big[200 * 1024] = '\0';
  records = run_all (conn, "RETURN $a AS a", g_variant_new_parsed ("{'a': <%s>}", big), &error);
  g_assert_no_error (error);
  g_assert_true (g_variant_lookup (g_ptr_array_index (records, 0), "a", "&s", &back));
  g_assert_cmpstr (back, ==, big);
  close_conn (conn);
}

static void
test_types (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GPtrArray) json = NULL;
  GVariant *record;
  gboolean more;

  g_test_summary ("CALL test.types(): every graph, temporal and spatial value decodes, to GVariant and to JSON");

  records = run_all (conn, "CALL test.types()", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (records->len, ==, 1);
  record = g_ptr_array_index (records, 0);
  {
    g_autoptr(GVariant) node = g_variant_lookup_value (record, "node", G_VARIANT_TYPE_VARDICT);
    g_autoptr(GVariant) path = g_variant_lookup_value (record, "path", G_VARIANT_TYPE_VARDICT);
    g_autoptr(GVariant) date = g_variant_lookup_value (record, "date", G_VARIANT_TYPE_VARDICT);
    g_autoptr(GVariant) dtz = g_variant_lookup_value (record, "datetimezoneid", G_VARIANT_TYPE_VARDICT);
    g_autoptr(GVariant) p3 = g_variant_lookup_value (record, "point3d", G_VARIANT_TYPE_VARDICT);
    g_autoptr(GVariant) rels = NULL;
    const char *s;

    g_assert_nonnull (node);
    g_assert_true (g_variant_lookup (node, "element-id", "&s", &s));
    g_assert_nonnull (path);
    rels = g_variant_lookup_value (path, "relationships", G_VARIANT_TYPE ("av"));
    g_assert_nonnull (rels);
    g_assert_nonnull (date);
    g_assert_true (g_variant_lookup (date, "type", "&s", &s));
    g_assert_cmpstr (s, ==, "date");
    g_assert_nonnull (dtz);
    g_assert_true (g_variant_lookup (dtz, "iso", "&s", &s));
    g_assert_true (g_str_has_suffix (s, "]"));
    g_assert_nonnull (p3);
    g_assert_true (g_variant_lookup (p3, "z", "d", NULL));
    g_assert_false (g_variant_lookup (record, "null", "*", NULL));
  }

  stream = run (conn, "CALL test.types()", NULL, NULL, 0, &error);
  g_assert_no_error (error);
  bp_bolt_stream_set_record_format (stream, BP_BOLT_RECORD_FORMAT_JSON);
  json = next_batch (stream, &more, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (json->len, ==, 1);
  g_assert_nonnull (strstr (g_ptr_array_index (json, 0), "\"null\":null"));
  g_test_message ("%s", (char *) g_ptr_array_index (json, 0));
  close_conn (conn);
}

static void
test_discard (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = NULL;
  g_autoptr(GPtrArray) batch = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GPtrArray) after = NULL;
  gboolean more;

  g_test_summary ("DISCARD after a partial pull ends the result with a summary and leaves the connection READY");

  stream = run (conn, "UNWIND range(1, 100) AS i RETURN i", NULL, NULL, 10, &error);
  g_assert_no_error (error);
  batch = next_batch (stream, &more, &error);
  g_assert_cmpuint (batch->len, ==, 10);
  g_assert_true (more);
  bp_bolt_stream_discard_async (stream, NULL, store_result, &result);
  wait_for (&result);
  g_assert_true (bp_bolt_stream_discard_finish (stream, result, &error));
  g_assert_no_error (error);
  g_assert_true (bp_bolt_stream_is_finished (stream));
  g_assert_nonnull (bp_bolt_stream_get_summary (stream));
  g_assert_cmpint (bp_bolt_connection_get_state (conn), ==, BP_BOLT_STATE_READY);
  g_assert_true (bp_bolt_connection_is_idle (conn));

  after = run_all (conn, "RETURN 1 AS x", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (record_int (g_ptr_array_index (after, 0), "x"), ==, 1);
  close_conn (conn);
}

static void
test_drop_stream (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) after = NULL;
  g_autofree char *log = NULL;

  g_test_summary ("dropping an unfinished result makes the connection DISCARD the rest by itself");

  {
    g_autoptr(BpBoltStream) stream = run (conn, "UNWIND range(1, 10) AS i RETURN i", NULL, NULL, 3, &error);
    g_autoptr(GPtrArray) batch = NULL;
    gboolean more;

    g_assert_no_error (error);
    batch = next_batch (stream, &more, &error);
    g_assert_true (more);
  }
  after = run_all (conn, "RETURN 2 AS x", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (record_int (g_ptr_array_index (after, 0), "x"), ==, 2);
  close_conn (conn);
  log = server_log_wait (server, "\"msg\": \"GOODBYE\"", 1);
  g_assert_cmpuint (count (log, "\"msg\": \"DISCARD\", \"fields\": [{\"n\": -1}]"), ==, 1);
}

static void
test_prefetch (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) after = NULL;
  g_autofree char *log = NULL;
  gint64 expect = 1;

  g_test_summary ("a prefetching stream pulls the next batch as it hands one out; without it the next "
                  "PULL waits for the caller; ending it early with discard leaves the connection clean");

  {
    g_autoptr(BpBoltStream) stream = run (conn, "UNWIND range(1, 10) AS i RETURN i", NULL, NULL, 3, &error);
    g_autoptr(GPtrArray) batch = NULL;
    gboolean more = TRUE;

    g_assert_no_error (error);
    bp_bolt_stream_set_prefetch (stream, TRUE);
    batch = next_batch (stream, &more, &error);
    g_assert_no_error (error);
    g_assert_true (more);
    /* the PULL of the second batch left with the first: two PULLs, one asked for */
    log = server_log_wait (server, "\"msg\": \"PULL\"", 2);
    g_assert_cmpuint (count (log, "\"msg\": \"PULL\""), ==, 2);
    g_clear_pointer (&log, g_free);
    while (more)
      {
        for (guint i = 0; i < batch->len; i++)
          g_assert_cmpint (record_int (g_ptr_array_index (batch, i), "i"), ==, expect++);
        g_clear_pointer (&batch, g_ptr_array_unref);
        batch = next_batch (stream, &more, &error);
        g_assert_no_error (error);
      }
    for (guint i = 0; i < batch->len; i++)
      g_assert_cmpint (record_int (g_ptr_array_index (batch, i), "i"), ==, expect++);
    g_assert_cmpint (expect, ==, 11);
    g_assert_nonnull (bp_bolt_stream_get_summary (stream));
  }
  {
    /* no prefetch: nothing is pulled until asked */
    g_autoptr(BpBoltStream) stream = run (conn, "UNWIND range(1, 10) AS i RETURN i AS k", NULL, NULL, 3, &error);
    g_autoptr(GPtrArray) batch = NULL;
    g_autoptr(GAsyncResult) result = NULL;
    gboolean more;
    guint pulls;

    g_assert_no_error (error);
    batch = next_batch (stream, &more, &error);
    g_assert_no_error (error);
    log = server_log_wait (server, "\"msg\": \"PULL\"", 5);
    pulls = count (log, "\"msg\": \"PULL\"");
    g_clear_pointer (&log, g_free);
    g_assert_cmpuint (pulls, ==, 4 + 1);
    /* a prefetching stream ended early, with a PULL in flight */
    bp_bolt_stream_set_prefetch (stream, TRUE);
    g_clear_pointer (&batch, g_ptr_array_unref);
    batch = next_batch (stream, &more, &error);
    g_assert_no_error (error);
    g_assert_true (more);
    bp_bolt_stream_discard_async (stream, NULL, store_result, &result);
    wait_for (&result);
    g_assert_true (bp_bolt_stream_discard_finish (stream, result, &error));
    g_assert_no_error (error);
  }
  g_assert_true (bp_bolt_connection_is_idle (conn));
  after = run_all (conn, "RETURN 3 AS x", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (record_int (g_ptr_array_index (after, 0), "x"), ==, 3);
  close_conn (conn);
}

static void
test_failure_reset (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = NULL;
  g_autoptr(GPtrArray) after = NULL;
  g_autoptr(GVariant) failure = NULL;
  g_autofree char *log = NULL;
  g_autofree char *code = NULL;

  g_test_summary ("FAILURE: the pipelined PULL is IGNORED, the client RESETs by itself and the next query works");

  stream = run (conn, "CALL test.fail('Neo.ClientError.Statement.SyntaxError', 'Invalid input')", NULL, NULL, 0, &error);
  g_assert_null (stream);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_true (g_str_has_prefix (error->message, "Neo.ClientError.Statement.SyntaxError: Invalid input"));
  code = bp_bolt_error_dup_code (error);
  g_assert_cmpstr (code, ==, "Neo.ClientError.Statement.SyntaxError");
  g_assert_cmpint (bp_bolt_error_classify (error), ==, BP_BOLT_ERROR_CLASS_CLIENT);
  failure = bp_bolt_connection_dup_last_failure (conn);
  g_assert_nonnull (failure);
  g_assert_true (g_variant_lookup (failure, "gql_status", "&s", NULL));   /* 5.8: GQL fields */
  g_clear_error (&error);

  after = run_all (conn, "RETURN 3 AS x", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (record_int (g_ptr_array_index (after, 0), "x"), ==, 3);
  g_assert_cmpint (bp_bolt_connection_get_state (conn), ==, BP_BOLT_STATE_READY);

  /* transient classification (test.transient fails the first n times) */
  g_clear_object (&stream);
  stream = run (conn, "CALL test.transient('k1', 1)", NULL, NULL, 0, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_cmpint (bp_bolt_error_classify (error), ==, BP_BOLT_ERROR_CLASS_TRANSIENT);
  g_assert_true (bp_bolt_error_is_retryable (error));
  g_clear_error (&error);
  stream = run (conn, "CALL test.terminated()", NULL, NULL, 0, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_cmpint (bp_bolt_error_classify (error), ==, BP_BOLT_ERROR_CLASS_CLIENT);
  g_assert_false (bp_bolt_error_is_retryable (error));
  g_clear_error (&error);

  close_conn (conn);
  log = server_log_wait (server, "\"msg\": \"GOODBYE\"", 1);
  g_assert_cmpuint (count (log, "\"dir\": \"in\", \"msg\": \"RESET\""), ==, 3);
  g_assert_cmpuint (count (log, "\"dir\": \"out\", \"msg\": \"IGNORED\""), ==, 3);
}

/* ---------------------------------------------------------------- */
/* Transactions                                                       */

static void
test_tx_commit (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autofree char *bookmark = NULL;
  g_autofree char *log = NULL;

  g_test_summary ("BEGIN, RUN, COMMIT returns the bookmark; the write is visible afterwards");

  begin (conn);
  g_assert_true (bp_bolt_connection_in_transaction (conn));
  g_assert_cmpint (bp_bolt_connection_get_state (conn), ==, BP_BOLT_STATE_TX_READY);
  records = run_all (conn, "CREATE (n:TxTest {v: 1}) RETURN n.v AS v", NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&records, g_ptr_array_unref);
  /* a result left open is discarded before COMMIT */
  {
    g_autoptr(BpBoltStream) open = run (conn, "UNWIND range(1, 50) AS i RETURN i", NULL, NULL, 5, &error);
    g_assert_no_error (error);
    g_assert_true (commit (conn, &bookmark, &error));
    g_assert_no_error (error);
  }
  g_assert_nonnull (bookmark);
  g_assert_true (g_str_has_prefix (bookmark, "FB:"));
  g_assert_false (bp_bolt_connection_in_transaction (conn));
  g_assert_cmpint (bp_bolt_connection_get_state (conn), ==, BP_BOLT_STATE_READY);

  records = run_all (conn, "MATCH (n:TxTest) RETURN count(n) AS c", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (record_int (g_ptr_array_index (records, 0), "c"), ==, 1);
  close_conn (conn);
  log = server_log_wait (server, "\"msg\": \"GOODBYE\"", 1);
  g_assert_cmpuint (count (log, "\"msg\": \"COMMIT\""), ==, 1);
}

static void
test_tx_failure_rollback (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  g_test_summary ("a failure inside a transaction fails it: RUN and COMMIT are refused, ROLLBACK succeeds");

  begin (conn);
  g_clear_pointer (&records, g_ptr_array_unref);
  stream = run (conn, "CALL test.fail('Neo.ClientError.Statement.SyntaxError', 'bad')", NULL, NULL, 0, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_clear_error (&error);
  stream = run (conn, "RETURN 1 AS x", NULL, NULL, 0, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_FAILED);
  g_clear_error (&error);
  g_assert_false (commit (conn, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_FAILED);
  g_clear_error (&error);
  bp_bolt_connection_rollback_async (conn, NULL, store_result, &result);
  wait_for (&result);
  g_assert_true (bp_bolt_connection_rollback_finish (conn, result, &error));
  g_assert_false (bp_bolt_connection_in_transaction (conn));

  records = run_all (conn, "RETURN 4 AS x", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (record_int (g_ptr_array_index (records, 0), "x"), ==, 4);
  g_clear_pointer (&records, g_ptr_array_unref);

  /* a plain rollback */
  begin (conn);
  records = run_all (conn, "CREATE (n:Gone) RETURN 1 AS one", NULL, &error);
  g_assert_no_error (error);
  g_clear_object (&result);
  bp_bolt_connection_rollback_async (conn, NULL, store_result, &result);
  wait_for (&result);
  g_assert_true (bp_bolt_connection_rollback_finish (conn, result, &error));
  g_clear_pointer (&records, g_ptr_array_unref);
  records = run_all (conn, "MATCH (n:Gone) RETURN count(n) AS c", NULL, &error);
  g_assert_cmpint (record_int (g_ptr_array_index (records, 0), "c"), ==, 0);
  close_conn (conn);
}

static void
test_drop_on_commit (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) records = NULL;
  g_autofree char *bookmark = NULL;

  g_test_summary ("the socket closes while COMMIT is outstanding: \"commit outcome unknown\", not retryable, defunct");

  begin (conn);
  records = run_all (conn, "CALL test.dropOnCommit()", NULL, &error);
  g_assert_no_error (error);
  g_assert_false (commit (conn, &bookmark, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_true (g_str_has_prefix (error->message, BP_BOLT_COMMIT_UNKNOWN_PREFIX));
  g_assert_cmpint (bp_bolt_error_classify (error), ==, BP_BOLT_ERROR_CLASS_COMMIT_UNKNOWN);
  g_assert_false (bp_bolt_error_is_retryable (error));
  g_assert_null (bookmark);
  g_assert_true (bp_bolt_connection_is_defunct (conn));
  g_clear_error (&error);

  /* further use fails at once with connection-lost */
  g_clear_pointer (&records, g_ptr_array_unref);
  records = run_all (conn, "RETURN 1 AS x", NULL, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_cmpint (bp_bolt_error_classify (error), ==, BP_BOLT_ERROR_CLASS_CONNECTION_LOST);
}

static void
test_connection_killed (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = NULL;

  g_test_summary ("the server closing an idle connection makes it defunct without any request; "
                  "a query whose connection closes fails as connection-lost");

  g_subprocess_send_signal (server->process, SIGUSR1);
  while (!bp_bolt_connection_is_defunct (conn))
    g_main_context_iteration (NULL, TRUE);
  g_assert_nonnull (bp_bolt_connection_get_defunct_error (conn));
  g_clear_object (&conn);

  conn = connect_ok (server);
  stream = run (conn, "CALL test.closeConnection()", NULL, NULL, 0, &error);
  g_assert_null (stream);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_cmpint (bp_bolt_error_classify (error), ==, BP_BOLT_ERROR_CLASS_CONNECTION_LOST);
  g_assert_true (bp_bolt_error_is_retryable (error));
}

/* ---------------------------------------------------------------- */
/* Transport                                                          */

static gboolean
make_certificate (const char *dir,
                  char      **cert,
                  char      **key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;

  *cert = g_build_filename (dir, "cert.pem", NULL);
  *key = g_build_filename (dir, "key.pem", NULL);
  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, &error,
                           "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                           "-subj", "/CN=localhost", "-keyout", *key, "-out", *cert, NULL);
  if (proc == NULL || !g_subprocess_wait_check (proc, NULL, &error))
    {
      g_test_message ("openssl: %s", error ? error->message : "?");
      return FALSE;
    }
  return TRUE;
}

static void
test_tls (void)
{
  g_autofree char *dir = g_dir_make_tmp ("bp-bolt-tls-XXXXXX", NULL);
  g_autofree char *cert = NULL;
  g_autofree char *key = NULL;
  g_autoptr(Server) server = NULL;
  g_autoptr(BpBoltConnection) conn = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) records = NULL;

  g_test_summary ("bolt+ssc:// accepts a self-signed certificate made with openssl req; bolt+s:// refuses it");

  g_assert_true (make_certificate (dir, &cert, &key));
  server = server_start ("--tls-cert", cert, "--tls-key", key, NULL);

  conn = connect_full (server->port, BP_BOLT_TLS_TRUST_ANY, NULL, 0, &error);
  g_assert_no_error (error);
  records = run_all (conn, "RETURN 5 AS x", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (record_int (g_ptr_array_index (records, 0), "x"), ==, 5);
  close_conn (conn);
  g_clear_object (&conn);

  conn = connect_full (server->port, BP_BOLT_TLS_VERIFY, NULL, 0, &error);
  g_assert_null (conn);
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
  g_assert_cmpint (bp_bolt_error_classify (error), ==, BP_BOLT_ERROR_CLASS_CONNECTION_LOST);

  /* plain Bolt against the TLS port fails cleanly */
  g_clear_error (&error);
  {
    g_autoptr(BpBoltConnection) plain = NULL;
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(BpBoltAuth) none = bp_bolt_auth_new_none ();

    plain = bp_bolt_connection_new ("127.0.0.1", server->port, BP_BOLT_TLS_NONE);
    bp_bolt_connection_set_open_timeout (plain, 3000);
    bp_bolt_connection_open_async (plain, none, NULL, store_result, &result);
    wait_for (&result);
    g_assert_false (bp_bolt_connection_open_finish (plain, result, &error));
    g_assert_true (bp_bolt_connection_is_defunct (plain));
  }

  g_remove (cert);
  g_remove (key);
  g_rmdir (dir);
}

static void
test_noop_chunks (void)
{
  g_autoptr(Server) server = server_start ("--noop-every", "1", NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = NULL;
  guint total = 0;
  gboolean more = TRUE;

  g_test_summary ("a NOOP chunk after every server message does not disturb the client");

  stream = run (conn, "UNWIND range(1, 100) AS i RETURN i", NULL, NULL, 7, &error);
  g_assert_no_error (error);
  while (more)
    {
      g_autoptr(GPtrArray) batch = next_batch (stream, &more, &error);
      g_assert_no_error (error);
      for (guint i = 0; i < batch->len; i++)
        g_assert_cmpint (record_int (g_ptr_array_index (batch, i), "i"), ==, ++total);
    }
  g_assert_cmpuint (total, ==, 100);
  close_conn (conn);
}

static void
test_recv_timeout (void)
{
  g_autoptr(Server) server = server_start ("--recv-timeout", "1", "--no-keepalive", NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = NULL;

  g_test_summary ("hint connection.recv_timeout_seconds=1 with a silent server: the connection gives up");

  g_assert_cmpint (bp_bolt_connection_get_recv_timeout (conn), ==, G_USEC_PER_SEC);
  stream = run (conn, "CALL test.sleep(5000)", NULL, NULL, 0, &error);
  g_assert_null (stream);
  g_assert_error (error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_true (bp_bolt_connection_is_defunct (conn));
  g_assert_cmpint (bp_bolt_error_classify (error), ==, BP_BOLT_ERROR_CLASS_CONNECTION_LOST);
}

static void
test_recv_timeout_keepalive (void)
{
  g_autoptr(Server) server = server_start ("--recv-timeout", "1", NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) records = NULL;

  g_test_summary ("with the server's NOOP keep-alives a query longer than the receive timeout succeeds");

  records = run_all (conn, "CALL test.sleep(2500)", NULL, &error);
  g_assert_no_error (error);
  close_conn (conn);
}

static gboolean
cancel_later (gpointer data)
{
  g_cancellable_cancel (data);
  return G_SOURCE_REMOVE;
}

static void
test_cancel_run (void)
{
  g_autoptr(Server) server = server_start (NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(BpBoltStream) stream = NULL;
  g_autoptr(GPtrArray) records = NULL;
  gint64 start = g_get_monotonic_time ();

  g_test_summary ("cancelling a long RUN returns at once, RESET interrupts the server, the connection is reusable");

  bp_bolt_connection_run_async (conn, "CALL test.sleep(10000)", NULL, NULL, 0, cancellable, store_result, &result);
  g_timeout_add (200, cancel_later, cancellable);
  wait_for (&result);
  stream = bp_bolt_connection_run_finish (conn, result, &error);
  g_assert_null (stream);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  records = run_all (conn, "RETURN 6 AS x", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (record_int (g_ptr_array_index (records, 0), "x"), ==, 6);
  /* far less than the 10 s the query would have slept */
  g_assert_cmpint (g_get_monotonic_time () - start, <, 8 * G_USEC_PER_SEC);
  close_conn (conn);
}

static void
test_route (void)
{
  g_autoptr(Server) server = server_start ("--router", "--routing-table",
                                           "{\"ttl\": 300, \"routers\": [\"10.0.0.1:7687\"], "
                                           "\"writers\": [\"10.0.0.2:7687\"], "
                                           "\"readers\": [\"10.0.0.3:7687\", \"10.0.0.4:7687\"]}",
                                           NULL);
  g_autoptr(BpBoltConnection) conn = connect_ok (server);
  g_autoptr(GError) error = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GVariant) rt = NULL;
  g_autoptr(BpBoltRoutingTable) table = NULL;
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 1);
  const char * const *servers;
  guint n;

  g_test_summary ("ROUTE returns the routing table, parsed into routers, writers, readers and a ttl");

  bp_bolt_connection_route_async (conn, NULL, NULL, NULL, NULL, NULL, store_result, &result);
  wait_for (&result);
  rt = bp_bolt_connection_route_finish (conn, result, &error);
  g_assert_no_error (error);
  table = bp_bolt_routing_table_new (rt, clock, &error);
  g_assert_no_error (error);
  g_assert_cmpint (bp_bolt_routing_table_get_ttl (table), ==, 300);
  g_assert_cmpstr (bp_bolt_routing_table_get_database (table), ==, "neo4j");
  servers = bp_bolt_routing_table_get_servers (table, BP_BOLT_ROLE_READ, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpstr (servers[0], ==, "10.0.0.3:7687");
  servers = bp_bolt_routing_table_get_servers (table, BP_BOLT_ROLE_WRITE, &n);
  g_assert_cmpuint (n, ==, 1);
  g_assert_cmpstr (servers[0], ==, "10.0.0.2:7687");
  servers = bp_bolt_routing_table_get_servers (table, BP_BOLT_ROLE_ROUTE, &n);
  g_assert_cmpuint (n, ==, 1);
  g_assert_true (bp_bolt_connection_is_idle (conn));

  /* 4.4 sends the database in the extra map, 4.3 as a string: both work */
  g_clear_object (&result);
  g_clear_pointer (&rt, g_variant_unref);
  bp_bolt_connection_route_async (conn, NULL, NULL, "neo4j", NULL, NULL, store_result, &result);
  wait_for (&result);
  rt = bp_bolt_connection_route_finish (conn, result, &error);
  g_assert_no_error (error);
  close_conn (conn);
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *server = NULL;

  g_test_init (&argc, &argv, NULL);

  server = find_server ();
  if (!g_file_test (server, G_FILE_TEST_EXISTS))
    {
      g_test_message ("Bolt test server not found at %s", server);
      return 77;
    }

  g_test_add_func ("/bolt/connection/handshake/5.x-manifest", test_handshake_5x);
  g_test_add_func ("/bolt/connection/handshake/no-manifest", test_handshake_no_manifest);
  g_test_add_func ("/bolt/connection/handshake/4.4", test_handshake_44);
  g_test_add_func ("/bolt/connection/handshake/memgraph-5.2", test_handshake_memgraph);
  g_test_add_func ("/bolt/connection/handshake/rejected", test_handshake_rejected);
  g_test_add_func ("/bolt/connection/auth", test_auth);
  g_test_add_func ("/bolt/connection/run/fetch-size", test_fetch_size);
  g_test_add_func ("/bolt/connection/run/json", test_json_records);
  g_test_add_func ("/bolt/connection/run/params", test_params_roundtrip);
  g_test_add_func ("/bolt/connection/run/big-parameter", test_big_parameter);
  g_test_add_func ("/bolt/connection/run/types", test_types);
  g_test_add_func ("/bolt/connection/run/discard", test_discard);
  g_test_add_func ("/bolt/connection/run/drop-stream", test_drop_stream);
  g_test_add_func ("/bolt/connection/run/prefetch", test_prefetch);
  g_test_add_func ("/bolt/connection/run/failure-reset", test_failure_reset);
  g_test_add_func ("/bolt/connection/run/cancel", test_cancel_run);
  g_test_add_func ("/bolt/connection/tx/commit-bookmark", test_tx_commit);
  g_test_add_func ("/bolt/connection/tx/failure-rollback", test_tx_failure_rollback);
  g_test_add_func ("/bolt/connection/tx/drop-on-commit", test_drop_on_commit);
  g_test_add_func ("/bolt/connection/killed", test_connection_killed);
  g_test_add_func ("/bolt/connection/tls", test_tls);
  g_test_add_func ("/bolt/connection/noop-chunks", test_noop_chunks);
  g_test_add_func ("/bolt/connection/recv-timeout/silent", test_recv_timeout);
  g_test_add_func ("/bolt/connection/recv-timeout/keepalive", test_recv_timeout_keepalive);
  g_test_add_func ("/bolt/connection/route", test_route);

  return g_test_run ();
}
