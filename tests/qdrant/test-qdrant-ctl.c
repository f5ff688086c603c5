/* test-qdrant-ctl.c: `backplanectl vectors …` end to end, and the api key
 *
 * Starts tests/qdrant/qdrantserver.py in api-key mode, then backplaned from
 * the build tree on a private bus (tests/dbus/bp-test-daemon.h) with two
 * qdrant backends: `vec` with the right key (from a 0600 api-key-file) and
 * `wrong` with another one (api-key-env). The daemon runs with
 * G_MESSAGES_DEBUG=all and its stdout and stderr go to a file.
 *
 *  /qdrant/ctl/vectors: the built backplanectl --address … runs
 *    `vectors vec collections|create|upsert FILE.jsonl|query C v1,…|count|
 *    scroll --to-file F` (tables and --json) against it, and the scroll
 *    output (with vectors) is upserted again into a second collection.
 *  /qdrant/ctl/api-key-never-exposed: drives every surface (ctl commands,
 *    D-Bus replies and errors, properties, introspection, the dead-letter
 *    queue, health checks, a 401, a reload) and checks that neither key
 *    appears in any reply, any output, or the daemon's log — which must
 *    show the debug lines of the requests, so the check has teeth.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "bp-test-daemon.h"

#define BUS_NAME  "org.backplane.Backplane1"
#define ROOT      "/org/backplane/Backplane1"
#define VEC_PATH  ROOT "/backend/vec"
#define VEC_IFACE "org.backplane.Backplane1.Vectors"

/* Distinctive, so that any leak (or part of one) is found. */
#define KEY       "Sk-9c1f2e7a-qdrant-ctl-test-key"
#define KEY_PART  "9c1f2e7a"
#define WRONG_KEY "Wk-4d8e0b31-not-the-right-key"
#define WRONG_PART "4d8e0b31"

#define RUN_TIMEOUT_MS 120000

typedef struct
{
  GSubprocess  *server;
  char         *url;
  char         *dir;       /* key file, points, scroll output, daemon log */
  char         *log_path;
  BpTestDaemon *daemon;
  GString      *seen;      /* every reply, error and output, for the key check */
} Fixture;

/* ------------------------------------------------------------ set-up */

static char *
server_path (void)
{
  const char *env = g_getenv ("QDRANT_SERVER");
  const char *root = g_getenv ("BACKPLANE_SOURCE_ROOT");

  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  return g_build_filename (root != NULL ? root : BP_SOURCE_ROOT, "tests", "qdrant", "qdrantserver.py", NULL);
}

/* backplaned inherits our stdout and stderr: point them at the log file
 * while it is spawned (and its private dbus-daemon with it). */
static BpTestDaemon *
daemon_new_logged (const char *config,
                   const char *log_path)
{
  int saved_out, saved_err, log_fd;
  BpTestDaemon *daemon;

  fflush (stdout);
  fflush (stderr);
  log_fd = g_open (log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  g_assert_cmpint (log_fd, >=, 0);
  /* close-on-exec: what we spawn meanwhile must not hold our real
   * stdout/stderr (meson waits for them to close) */
  saved_out = fcntl (STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  saved_err = fcntl (STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  g_assert_cmpint (saved_out, >=, 0);
  g_assert_cmpint (saved_err, >=, 0);
  g_assert_cmpint (dup2 (log_fd, STDOUT_FILENO), ==, STDOUT_FILENO);
  g_assert_cmpint (dup2 (log_fd, STDERR_FILENO), ==, STDERR_FILENO);
  g_setenv ("G_MESSAGES_DEBUG", "all", TRUE);

  daemon = bp_test_daemon_new (config);

  g_unsetenv ("G_MESSAGES_DEBUG");
  fflush (stdout);
  fflush (stderr);
  dup2 (saved_out, STDOUT_FILENO);
  dup2 (saved_err, STDERR_FILENO);
  close (saved_out);
  close (saved_err);
  close (log_fd);
  return daemon;
}

/* Runs in the child between fork and exec: async-signal-safe only. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  user_data)
{
  g_autofree char *script = server_path ();
  g_autofree char *key_path = NULL;
  g_autofree char *conf = NULL;
  g_autofree char *line = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  const char *python = g_getenv ("PYTHON");

  f->seen = g_string_new (NULL);
  f->dir = g_dir_make_tmp ("qdrant-ctl-XXXXXX", &error);
  g_assert_no_error (error);
  f->log_path = g_build_filename (f->dir, "backplaned.log", NULL);

  {
    g_autoptr(GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);

    /* a failed assertion must not leave it running (and meson waiting) */
    g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
    f->server = g_subprocess_launcher_spawn (launcher, &error, python != NULL ? python : "python3", script,
                                             "--port", "0", "--api-key", KEY, NULL);
  }
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->server));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (line, "LISTENING "));
  f->url = g_strdup_printf ("http://127.0.0.1:%s", line + strlen ("LISTENING "));

  /* The key lives in a file only we can read, never in the config. */
  key_path = g_build_filename (f->dir, "qdrant.key", NULL);
  g_file_set_contents (key_path, KEY "\n", -1, &error);
  g_assert_no_error (error);
  g_chmod (key_path, 0600);
  g_setenv ("BP_QDRANT_CTL_WRONG_KEY", WRONG_KEY, TRUE);

  conf = g_strdup_printf ("[backend vec]\n"
                          "type=qdrant\n"
                          "url=%s\n"
                          "api-key-file=%s\n"
                          "timeout-ms=10000\n"
                          "retry.base-ms=10\n"
                          "retry.cap-ms=50\n"
                          "breaker.min-volume=1000\n"
                          "[backend wrong]\n"
                          "type=qdrant\n"
                          "url=%s\n"
                          "api-key-env=BP_QDRANT_CTL_WRONG_KEY\n"
                          "timeout-ms=10000\n",
                          f->url, key_path, f->url);
  f->daemon = daemon_new_logged (conf, f->log_path);
}

static void
rm_rf (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *entry;

  while (dir != NULL && (entry = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, entry, NULL);

      g_unlink (child);
    }
  g_rmdir (path);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  user_data)
{
  g_clear_pointer (&f->daemon, bp_test_daemon_free);
  /* EOF on stdin is not enough (GTestDBus's watcher holds a copy). */
  g_output_stream_close (g_subprocess_get_stdin_pipe (f->server), NULL, NULL);
  g_subprocess_send_signal (f->server, SIGTERM);
  g_subprocess_wait (f->server, NULL, NULL);
  g_clear_object (&f->server);
  rm_rf (f->dir);
  g_free (f->dir);
  g_free (f->log_path);
  g_free (f->url);
  g_string_free (f->seen, TRUE);
  g_unsetenv ("BP_QDRANT_CTL_WRONG_KEY");
}

/* ------------------------------------------------------ backplanectl */

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

typedef struct
{
  gboolean  done;
  char     *out;
  char     *err;
  GError   *error;
} Communicate;

static void
communicated_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Communicate *c = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &c->out, &c->err, &c->error);
  c->done = TRUE;
}

static gboolean
flag_set (gpointer data)
{
  return *(gboolean *) data;
}

/* Runs the built backplanectl --address ADDRESS ARGS…; its output is
 * logged one line a message (TAP-safe) and kept for the key check. */
static CtlResult *
run_ctlv (Fixture            *f,
          const char * const *args)
{
  const char *root = g_getenv ("BACKPLANE_BUILD_ROOT");
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *command = g_strjoinv (" ", (char **) args);
  Communicate c = { 0 };
  CtlResult *r;

  g_ptr_array_add (argv, g_build_filename (root != NULL ? root : BP_BUILD_ROOT, "core", "ctl",
                                           "backplanectl", NULL));
  g_ptr_array_add (argv, g_strdup ("--address"));
  g_ptr_array_add (argv, g_strdup (f->daemon->address));
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_setenv (launcher, "G_DEBUG", "fatal-criticals", TRUE);
  g_subprocess_launcher_setenv (launcher, "LC_ALL", "C.UTF-8", TRUE);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, communicated_cb, &c);
  g_assert_true (bp_test_wait_until (flag_set, &c.done, RUN_TIMEOUT_MS));
  g_assert_no_error (c.error);

  r = g_new0 (CtlResult, 1);
  r->status = g_subprocess_get_if_exited (process) ? g_subprocess_get_exit_status (process)
                                                   : 128 + g_subprocess_get_term_sig (process);
  r->out = c.out;
  r->err = c.err;
  {
    g_auto(GStrv) out = g_strsplit (r->out, "\n", -1);
    g_auto(GStrv) err = g_strsplit (r->err, "\n", -1);

    g_test_message ("backplanectl %s → %d", command, r->status);
    for (guint i = 0; out[i] != NULL && i < 20; i++)
      if (out[i][0] != '\0')
        g_test_message ("  stdout: %s", out[i]);
    for (guint i = 0; err[i] != NULL; i++)
      if (err[i][0] != '\0')
        g_test_message ("  stderr: %s", err[i]);
  }
  g_string_append_printf (f->seen, "$ backplanectl %s\n%s%s", command, r->out, r->err);
  return r;
}

#define run_ctl(f, ...) run_ctlv ((f), (const char * const[]) { __VA_ARGS__, NULL })

static void
assert_ok (CtlResult *r)
{
  if (r->status != 0)
    g_test_message ("unexpected failure: %s", r->err);
  g_assert_cmpint (r->status, ==, 0);
}

static JsonNode *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  g_assert_true (json_parser_load_from_data (parser, text, -1, &error));
  g_assert_no_error (error);
  return json_node_copy (json_parser_get_root (parser));
}

/* ------------------------------------------------------------ D-Bus */

/* A call whose reply or error text goes into f->seen. */
static GVariant *
seen_call (Fixture     *f,
           const char  *path,
           const char  *interface,
           const char  *method,
           GVariant    *params,
           GError     **error)
{
  g_autoptr(GError) local = NULL;
  GVariant *r = g_dbus_connection_call_sync (f->daemon->connection, BUS_NAME, path, interface, method,
                                             params, NULL, G_DBUS_CALL_FLAGS_NONE, 60000, NULL, &local);

  g_string_append_printf (f->seen, "%s %s.%s → ", path, interface, method);
  if (r != NULL)
    {
      g_autofree char *text = g_variant_print (r, FALSE);

      g_string_append_printf (f->seen, "%s\n", text);
    }
  else
    {
      g_autofree char *remote = g_dbus_error_get_remote_error (local);

      g_string_append_printf (f->seen, "%s: %s\n", remote, local->message);
      if (error != NULL)
        *error = g_steal_pointer (&local);
    }
  return r;
}

/* POST /__test/faults (the server's test API needs no key). */
static void
add_fault (Fixture    *f,
           const char *json)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *request = NULL;
  char reply[512] = "";
  gsize n = 0;

  conn = g_socket_client_connect_to_host (client, f->url + strlen ("http://"), 80, NULL, &error);
  g_assert_no_error (error);
  request = g_strdup_printf ("POST /__test/faults HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                             "Connection: close\r\n\r\n%s", strlen (json), json);
  g_output_stream_write_all (g_io_stream_get_output_stream (G_IO_STREAM (conn)), request, strlen (request),
                             NULL, NULL, &error);
  g_assert_no_error (error);
  g_input_stream_read_all (g_io_stream_get_input_stream (G_IO_STREAM (conn)), reply, sizeof reply - 1, &n,
                           NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (reply, "HTTP/1.1 200"));
}

static void
write_points (const char *path)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  /* id i points at (1, i−1): the nearest to (1, 0, 0, 0) are 1, 2, 3 */
  for (guint i = 1; i <= 1000; i++)
    g_string_append_printf (text, "{\"id\":%u,\"vector\":[1,%u,0,0],\"payload\":{\"i\":%u,\"even\":%s}}\n",
                            i, i - 1, i, i % 2 == 0 ? "true" : "false");
  g_string_append (text, "{\"id\":18446744073709551615,\"vector\":[0,0,1,0],\"payload\":{\"big\":true}}\n"
                         "\n"
                         "{\"id\":\"550E8400-E29B-41D4-A716-446655440000\",\"vector\":[0,0,0,1]}\n");
  g_file_set_contents (path, text->str, (gssize) text->len, &error);
  g_assert_no_error (error);
}

#define EVEN_FILTER "{\"must\":[{\"key\":\"even\",\"match\":{\"value\":true}}]}"

/* ------------------------------------------------------------ tests */

static void
test_ctl_vectors (Fixture       *f,
                  gconstpointer  user_data)
{
  g_autofree char *points = g_build_filename (f->dir, "points.jsonl", NULL);
  g_autofree char *scrolled = g_build_filename (f->dir, "scrolled.jsonl", NULL);
  g_autofree char *with_vectors = g_build_filename (f->dir, "with-vectors.jsonl", NULL);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  write_points (points);

  {
    g_autoptr(CtlResult) r = run_ctl (f, "vectors", "vec", "collections");

    assert_ok (r);
    g_assert_nonnull (strstr (r->out, "COLLECTION"));
    g_assert_null (strstr (r->out, "docs"));
  }
  {
    g_autoptr(CtlResult) r = run_ctl (f, "vectors", "vec", "create", "docs", "--size", "4", "--distance", "cosine");

    assert_ok (r);
    g_assert_cmpstr (r->out, ==, "Collection “docs” created.\n");
  }
  {
    g_autoptr(CtlResult) r = run_ctl (f, "vectors", "vec", "upsert", "docs", points, "--batch-size", "100");

    assert_ok (r);
    g_assert_cmpstr (r->out, ==, "1002 points upserted into “docs”.\n");
  }
  {
    g_autoptr(CtlResult) r1 = run_ctl (f, "vectors", "vec", "count", "docs");
    g_autoptr(CtlResult) r2 = run_ctl (f, "vectors", "vec", "count", "docs", "--filter", EVEN_FILTER);
    g_autoptr(CtlResult) r3 = run_ctl (f, "--json", "vectors", "vec", "count", "docs");
    g_autoptr(JsonNode) json = NULL;

    assert_ok (r1);
    g_assert_cmpstr (r1->out, ==, "1002\n");
    assert_ok (r2);
    g_assert_cmpstr (r2->out, ==, "500\n");
    assert_ok (r3);
    json = parse_json (r3->out);
    g_assert_cmpstr (json_object_get_string_member (json_node_get_object (json), "collection"), ==, "docs");
    g_assert_cmpint (json_object_get_int_member (json_node_get_object (json), "count"), ==, 1002);
  }
  {
    g_autoptr(CtlResult) r = run_ctl (f, "vectors", "vec", "query", "docs", "1,0,0,0", "--limit", "3");
    g_auto(GStrv) rows = NULL;

    assert_ok (r);
    rows = g_strsplit (r->out, "\n", -1);
    g_assert_true (g_str_has_prefix (rows[0], "ID"));
    g_assert_nonnull (strstr (rows[0], "SCORE"));
    g_assert_true (g_str_has_prefix (rows[1], "1 "));
    g_assert_nonnull (strstr (rows[1], "1.0000"));
    g_assert_true (g_str_has_prefix (rows[2], "2 "));
    g_assert_nonnull (strstr (rows[2], "0.7071"));
    g_assert_true (g_str_has_prefix (rows[3], "3 "));
    g_assert_cmpstr (rows[4], ==, "");
  }
  {
    g_autoptr(CtlResult) r = run_ctl (f, "--json", "vectors", "vec", "query", "docs", "1,0,0,0",
                                      "--limit", "2", "--filter", EVEN_FILTER);
    g_autoptr(JsonNode) json = NULL;
    JsonArray *hits;
    JsonObject *hit;

    assert_ok (r);
    json = parse_json (r->out);
    hits = json_node_get_array (json);
    g_assert_cmpuint (json_array_get_length (hits), ==, 2);
    hit = json_array_get_object_element (hits, 0);
    g_assert_cmpstr (json_object_get_string_member (hit, "id"), ==, "2");
    g_assert_cmpfloat_with_epsilon (json_object_get_double_member (hit, "score"), 1 / G_SQRT2, 1e-6);
    g_assert_true (json_object_get_boolean_member (json_object_get_object_member (hit, "payload"), "even"));
    g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (hits, 1), "id"), ==, "4");
  }
  {
    /* a vector that starts with '-' comes after "--"; the nearest to
     * (-1, 0, 0, 0) are the two points orthogonal to the others */
    g_autoptr(CtlResult) r = run_ctl (f, "--json", "vectors", "vec", "query", "docs", "--limit", "2",
                                      "--", "-1,0,0,0");
    g_autoptr(JsonNode) json = NULL;
    JsonArray *hits;

    assert_ok (r);
    json = parse_json (r->out);
    hits = json_node_get_array (json);
    g_assert_cmpuint (json_array_get_length (hits), ==, 2);
    for (guint i = 0; i < 2; i++)
      {
        const char *id = json_object_get_string_member (json_array_get_object_element (hits, i), "id");

        g_assert_true (g_str_equal (id, "18446744073709551615") ||
                       g_str_equal (id, "550e8400-e29b-41d4-a716-446655440000"));
      }
  }
  {
    g_autoptr(CtlResult) r = run_ctl (f, "vectors", "vec", "scroll", "docs", "--to-file", scrolled);
    g_autofree char *expected = g_strdup_printf ("1002 points written to %s.\n", scrolled);
    g_autoptr(GError) error = NULL;

    assert_ok (r);
    g_assert_cmpstr (r->out, ==, expected);
    g_file_get_contents (scrolled, &text, NULL, &error);
    g_assert_no_error (error);
    lines = g_strsplit (text, "\n", -1);
    /* header, 1002 points, end line, and what follows the last newline */
    g_assert_cmpuint (g_strv_length (lines), ==, 1 + 1002 + 1 + 1);
    g_assert_cmpstr (lines[0], ==, "{\"collection\":\"docs\",\"with_payload\":true,\"with_vector\":false}");
    g_assert_cmpstr (lines[1003], ==, "{\"end\":{\"points\":1002}}");
    g_assert_nonnull (strstr (text, "\n{\"id\":18446744073709551615,\"payload\":{\"big\":true}}\n"));
    g_assert_nonnull (strstr (text, "\n{\"id\":\"550e8400-e29b-41d4-a716-446655440000\",\"payload\":{}}\n"));
  }
  {
    /* the scroll output with vectors upserts again, unchanged */
    g_autoptr(CtlResult) r1 = run_ctl (f, "vectors", "vec", "scroll", "docs", "--to-file", with_vectors,
                                       "--with-vectors", "--filter", EVEN_FILTER);
    g_autoptr(CtlResult) r2 = run_ctl (f, "vectors", "vec", "create", "copy", "--size", "4", "--distance", "Cosine");
    g_autoptr(CtlResult) r3 = run_ctl (f, "vectors", "vec", "upsert", "copy", with_vectors);
    g_autoptr(CtlResult) r4 = run_ctl (f, "--json", "vectors", "vec", "query", "copy", "1,0,0,0", "--limit", "1");
    g_autoptr(CtlResult) r5 = run_ctl (f, "--json", "vectors", "vec", "collections");
    g_autoptr(JsonNode) hits = NULL;
    g_autoptr(JsonNode) names = NULL;
    JsonObject *hit;

    assert_ok (r1);
    g_assert_true (g_str_has_prefix (r1->out, "500 points written to "));
    assert_ok (r2);
    assert_ok (r3);
    g_assert_cmpstr (r3->out, ==, "500 points upserted into “copy”.\n");
    assert_ok (r4);
    hits = parse_json (r4->out);
    hit = json_array_get_object_element (json_node_get_array (hits), 0);
    g_assert_cmpstr (json_object_get_string_member (hit, "id"), ==, "2");
    g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (hit, "payload"), "i"), ==, 2);
    assert_ok (r5);
    names = parse_json (r5->out);
    g_assert_cmpuint (json_array_get_length (json_node_get_array (names)), ==, 2);
  }
  {
    /* errors keep the native detail and give exit status 1 */
    g_autoptr(CtlResult) r1 = run_ctl (f, "vectors", "vec", "query", "missing", "1,0,0,0");
    g_autoptr(CtlResult) r2 = run_ctl (f, "vectors", "vec", "count", "docs", "--filter", "[1]");
    g_autoptr(CtlResult) r3 = run_ctl (f, "vectors", "vec", "query", "docs", "1,x");

    g_assert_cmpint (r1->status, ==, 1);
    g_assert_nonnull (strstr (r1->err, "NotFound: HTTP 404: Not found: Collection `missing` doesn't exist!"));
    g_assert_cmpint (r2->status, ==, 2);
    g_assert_cmpint (r3->status, ==, 2);
  }
}

static char *
read_log (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  char *text = NULL;

  g_file_get_contents (f->log_path, &text, NULL, &error);
  g_assert_no_error (error);
  return text;
}

static void
assert_no_key (const char *where,
               const char *text)
{
  const char *needles[] = { KEY, KEY_PART, WRONG_KEY, WRONG_PART };

  for (guint i = 0; i < G_N_ELEMENTS (needles); i++)
    if (strstr (text, needles[i]) != NULL)
      {
        const char *hit = strstr (text, needles[i]);
        const char *from = MAX (text, hit - 200);

        g_test_message ("%s leaks “%s”: …%.400s…", where, needles[i], from);
        g_test_fail ();
      }
}

static void
test_api_key_never_exposed (Fixture       *f,
                            gconstpointer  user_data)
{
  g_autofree char *points = g_build_filename (f->dir, "points.jsonl", NULL);
  g_autofree char *scrolled = g_build_filename (f->dir, "scrolled.jsonl", NULL);
  const char * const paths[] = { ROOT, VEC_PATH, ROOT "/backend/wrong", ROOT "/DeadLetters" };
  g_autoptr(GError) error = NULL;
  g_autofree char *log = NULL;
  guint64 entry = 0;

  write_points (points);

  /* Through backplanectl: everything works with the key from the file. */
  {
    const char *commands[][12] = {
      { "vectors", "vec", "create", "docs", "--size", "4", "--distance", "Dot" },
      { "vectors", "vec", "upsert", "docs", points },
      { "vectors", "vec", "query", "docs", "1,0,0,0", "--limit", "3" },
      { "vectors", "vec", "count", "docs" },
      { "vectors", "vec", "scroll", "docs", "--to-file", scrolled, "--with-vectors" },
      { "--json", "vectors", "vec", "collections" },
      { "health", "vec" },
    };

    for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
      {
        g_autoptr(CtlResult) r = run_ctlv (f, commands[i]);

        assert_ok (r);
      }
  }
  /* The wrong key: 401 through ctl and D-Bus, and a failed health check. */
  {
    g_autoptr(CtlResult) r1 = run_ctl (f, "vectors", "wrong", "collections");
    g_autoptr(CtlResult) r2 = run_ctl (f, "health", "wrong");
    g_autoptr(GVariant) r3 = seen_call (f, ROOT "/backend/wrong", VEC_IFACE, "ListCollections", NULL, &error);

    g_assert_cmpint (r1->status, ==, 1);
    g_assert_nonnull (strstr (r1->err, "PermissionDenied: HTTP 401"));
    g_assert_cmpint (r2->status, !=, 0);
    g_assert_null (r3);
    g_assert_nonnull (strstr (error->message, "HTTP 401"));
    g_clear_error (&error);
  }
  /* A dead letter: its entry (payload, last error) is readable over D-Bus. */
  {
    g_autoptr(GVariant) r = NULL;
    g_autoptr(GVariant) list = NULL;
    g_autoptr(GVariant) got = NULL;
    g_autoptr(CtlResult) show = NULL;
    g_autofree char *id_text = NULL;
    g_autoptr(CtlResult) listed = NULL;
    GVariantBuilder pts, opts;
    const double v[4] = { 1, 2, 3, 4 };
    const char *entry_text;

    /* every PUT of points fails, more often than retry.max-attempts */
    add_fault (f, "{\"path_regex\":\"/collections/docs/points$\",\"method\":\"PUT\","
                  "\"kind\":\"503\",\"count\":1000}");
    g_variant_builder_init (&pts, G_VARIANT_TYPE ("a(sads)"));
    g_variant_builder_add (&pts, "(s@ads)", "77",
                           g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, v, 4, sizeof (double)), "{\"k\":1}");
    g_variant_builder_init (&opts, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add (&opts, "{sv}", "dead-letter", g_variant_new_boolean (TRUE));
    r = seen_call (f, VEC_PATH, VEC_IFACE, "Upsert", g_variant_new ("(sa(sads)a{sv})", "docs", &pts, &opts),
                   &error);
    g_assert_null (r);
    entry_text = strstr (error->message, "(dead-lettered as entry ");
    g_assert_nonnull (entry_text);
    entry = g_ascii_strtoull (entry_text + strlen ("(dead-lettered as entry "), NULL, 10);
    g_clear_error (&error);
    list = seen_call (f, ROOT "/DeadLetters", "org.backplane.Backplane1.DeadLetters", "List",
                      g_variant_new ("(uua{sv})", 0, 100, NULL), &error);
    g_assert_no_error (error);
    got = seen_call (f, ROOT "/DeadLetters", "org.backplane.Backplane1.DeadLetters", "Get",
                     g_variant_new ("(t)", entry), &error);
    g_assert_no_error (error);
    id_text = g_strdup_printf ("%" G_GUINT64_FORMAT, entry);
    show = run_ctl (f, "dlq", "show", id_text);
    assert_ok (show);
    listed = run_ctl (f, "dlq", "list");
    assert_ok (listed);
  }
  /* Every property, the object tree and the documented introspection. */
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++)
    {
      g_autoptr(GVariant) xml = seen_call (f, paths[i], "org.freedesktop.DBus.Introspectable", "Introspect",
                                           NULL, &error);
      const char *text;
      g_autoptr(GDBusNodeInfo) node = NULL;

      g_assert_no_error (error);
      g_variant_get (xml, "(&s)", &text);
      node = g_dbus_node_info_new_for_xml (text, &error);
      g_assert_no_error (error);
      for (guint k = 0; node->interfaces != NULL && node->interfaces[k] != NULL; k++)
        {
          g_autoptr(GVariant) all = NULL;

          if (g_str_has_prefix (node->interfaces[k]->name, "org.freedesktop.DBus."))
            continue;
          all = seen_call (f, paths[i], "org.freedesktop.DBus.Properties", "GetAll",
                           g_variant_new ("(s)", node->interfaces[k]->name), &error);
          g_assert_no_error (error);
        }
    }
  {
    g_autoptr(GVariant) objects = seen_call (f, ROOT, "org.freedesktop.DBus.ObjectManager",
                                             "GetManagedObjects", NULL, &error);
    g_autoptr(GVariant) h1 = seen_call (f, VEC_PATH, "org.backplane.Backplane1.Backend", "CheckHealth",
                                        NULL, &error);
    g_autoptr(GVariant) h2 = NULL;

    g_assert_no_error (error);
    h2 = seen_call (f, ROOT "/backend/wrong", "org.backplane.Backplane1.Backend", "CheckHealth", NULL, NULL);
  }
  {
    const char *commands[][4] = {
      { "status" }, { "backends" }, { "breakers" }, { "plugins" }, { "metrics" },
      { "--json", "backends" }, { "--json", "status" },
    };

    for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
      {
        g_autoptr(CtlResult) r = run_ctlv (f, commands[i]);

        assert_ok (r);
      }
  }
  /* A reload reads the key file again. */
  {
    g_autoptr(CtlResult) r = run_ctl (f, "reload");
    g_autoptr(CtlResult) r2 = run_ctl (f, "vectors", "vec", "count", "docs");

    assert_ok (r);
    assert_ok (r2);
  }

  /* The daemon's whole log, once it has exited. */
  bp_test_daemon_signal (f->daemon, SIGTERM);
  g_assert_cmpint (bp_test_daemon_wait_exit (f->daemon), ==, 0);
  log = read_log (f);
  /* Under -Db_sanitize the daemon's reports land there too. */
  g_assert_null (strstr (log, "Sanitizer"));
  g_assert_null (strstr (log, "runtime error:"));
  /* The debug output was on: the log shows the requests themselves. */
  g_assert_nonnull (strstr (log, "PUT /collections/docs/points"));
  g_assert_nonnull (strstr (log, "POST /collections/docs/points/query"));

  assert_no_key ("the D-Bus replies and backplanectl's output", f->seen->str);
  assert_no_key ("backplaned's log", log);
  {
    g_autofree char *scroll = NULL;

    g_file_get_contents (scrolled, &scroll, NULL, &error);
    g_assert_no_error (error);
    assert_no_key ("the scroll output", scroll);
  }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/qdrant/ctl/vectors", Fixture, NULL, fixture_set_up, test_ctl_vectors, fixture_tear_down);
  g_test_add ("/qdrant/ctl/api-key-never-exposed", Fixture, NULL, fixture_set_up, test_api_key_never_exposed,
              fixture_tear_down);

  return g_test_run ();
}
