/* test-qdrant-dbus.c: the qdrant backend through backplaned on a private bus
 *
 * Starts tests/qdrant/qdrantserver.py on a loopback port and backplaned
 * (tests/dbus/bp-test-daemon.h) with a `[backend vec]` group pointing at
 * it, then drives org.backplane.Backplane1.Vectors over D-Bus. At the end
 * of every test the server must have seen no request body that violates
 * the Qdrant v1.19.0 OpenAPI schema.
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
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <libsoup/soup.h>

#include "bp-test-daemon.h"

#define BUS_NAME  "org.backplane.Backplane1"
#define VEC_PATH  "/org/backplane/Backplane1/backend/vec"
#define VEC_IFACE "org.backplane.Backplane1.Vectors"
#define ERR       "org.backplane.Backplane1.Error."

typedef struct
{
  GSubprocess  *server;
  char         *url;
  SoupSession  *http;
  BpTestDaemon *daemon;
} Fixture;

typedef struct
{
  const char *server_key;
  const char *extra_config;
} Config;

static char *
server_path (void)
{
  const char *env = g_getenv ("QDRANT_SERVER");
  const char *root = g_getenv ("BACKPLANE_SOURCE_ROOT");

  if (env != NULL && env[0] != '\0')
    return g_strdup (env);
  return g_build_filename (root != NULL ? root : BP_SOURCE_ROOT, "tests", "qdrant",
                           "qdrantserver.py", NULL);
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
  const Config *config = user_data;
  g_autofree char *script = server_path ();
  const char *python = g_getenv ("PYTHON3");
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  g_autofree char *conf = NULL;

  if (!g_file_test (script, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("tests/qdrant/qdrantserver.py not found");
      return;
    }
  {
    g_autoptr(GSubprocessLauncher) launcher =
      g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE);

    /* a failed assertion must not leave it running (and meson waiting) */
    g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
    if (config->server_key != NULL)
      f->server = g_subprocess_launcher_spawn (launcher, &error, python != NULL ? python : "python3", script,
                                               "--port", "0", "--api-key", config->server_key, NULL);
    else
      f->server = g_subprocess_launcher_spawn (launcher, &error, python != NULL ? python : "python3", script,
                                               "--port", "0", NULL);
  }
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->server));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (line, "LISTENING "));
  f->url = g_strdup_printf ("http://127.0.0.1:%s", line + strlen ("LISTENING "));
  f->http = soup_session_new ();

  conf = g_strdup_printf ("[backend vec]\n"
                          "type=qdrant\n"
                          "url=%s\n"
                          "timeout-ms=5000\n"
                          "retry.base-ms=10\n"
                          "retry.cap-ms=2000\n"
                          "%s",
                          f->url, config->extra_config != NULL ? config->extra_config : "");
  f->daemon = bp_test_daemon_new (conf);
}

static JsonNode *
test_api (Fixture    *f,
          const char *method,
          const char *path,
          const char *body)
{
  g_autofree char *uri = g_strconcat (f->url, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new (method, uri);
  g_autoptr(GBytes) reply = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();

  if (body != NULL)
    {
      g_autoptr(GBytes) b = g_bytes_new (body, strlen (body));

      soup_message_set_request_body_from_bytes (msg, "application/json", b);
    }
  reply = soup_session_send_and_read (f->http, msg, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (reply, NULL),
                                             (gssize) g_bytes_get_size (reply), &error));
  return json_node_copy (json_parser_get_root (parser));
}

static void
stop_server (Fixture *f)
{
  /* EOF on stdin is not enough: GTestDBus's forked watcher holds a copy
   * of the pipe. SIGTERM stops the server as well. */
  g_output_stream_close (g_subprocess_get_stdin_pipe (f->server), NULL, NULL);
  g_subprocess_send_signal (f->server, SIGTERM);
  g_subprocess_wait (f->server, NULL, NULL);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  user_data)
{
  g_clear_pointer (&f->daemon, bp_test_daemon_free);
  if (f->server == NULL)
    return;
  /* test_server_gone stopped it already */
  if (g_subprocess_get_identifier (f->server) != NULL)
    {
      g_autoptr(JsonNode) v = test_api (f, "GET", "/__test/violations", NULL);
      g_autofree char *text = json_to_string (v, TRUE);

      if (json_array_get_length (json_node_get_array (v)) != 0)
        g_test_message ("violations: %s", text);
      g_assert_cmpuint (json_array_get_length (json_node_get_array (v)), ==, 0);
      stop_server (f);
    }
  g_clear_object (&f->http);
  g_clear_object (&f->server);
  g_free (f->url);
}

static GVariant *
vcall (Fixture     *f,
       const char  *method,
       GVariant    *params,
       const char  *reply_type,
       GError     **error)
{
  return g_dbus_connection_call_sync (f->daemon->connection, BUS_NAME, VEC_PATH, VEC_IFACE,
                                      method, params,
                                      reply_type != NULL ? G_VARIANT_TYPE (reply_type) : NULL,
                                      G_DBUS_CALL_FLAGS_NONE, 60000, NULL, error);
}

static GVariant *
vcall_fd (Fixture     *f,
          const char  *method,
          GVariant    *params,
          GUnixFDList *fds,
          const char  *reply_type,
          GError     **error)
{
  return g_dbus_connection_call_with_unix_fd_list_sync (f->daemon->connection, BUS_NAME, VEC_PATH,
                                                        VEC_IFACE, method, params,
                                                        G_VARIANT_TYPE (reply_type),
                                                        G_DBUS_CALL_FLAGS_NONE, 60000, fds, NULL,
                                                        NULL, error);
}

static void
assert_dbus_error (GError     *error,
                   const char *name)
{
  g_autofree char *remote = NULL;

  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  if (g_strcmp0 (remote, name) != 0)
    g_test_message ("got %s: %s", remote, error->message);
  g_assert_cmpstr (remote, ==, name);
}

static void
ok_call (Fixture    *f,
         const char *method,
         GVariant   *params)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = vcall (f, method, params, NULL, &error);

  g_assert_no_error (error);
}

#define DOCS "{\"vectors\":{\"size\":4,\"distance\":\"Cosine\"}}"

static GVariant *
no_options (void)
{
  return g_variant_new ("a{sv}", NULL);
}

static void
seed (Fixture *f)
{
  GVariantBuilder points;
  const double v[4][4] = {
    { 0.05, 0.61, 0.76, 0.74 }, { 0.19, 0.81, 0.75, 0.11 },
    { 0.36, 0.55, 0.47, 0.94 }, { 0.18, 0.01, 0.85, 0.80 },
  };
  const char * const ids[] = { "1", "2", "18446744073709551615", "550E8400-E29B-41D4-A716-446655440000" };
  const char * const payloads[] = { "{\"city\":\"Berlin\"}", "{\"city\":\"London\"}",
                                    "{\"city\":\"Moscow\"}", "" };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  const char *status;
  guint i;

  ok_call (f, "CreateCollection", g_variant_new ("(ss)", "docs", DOCS));
  g_variant_builder_init (&points, G_VARIANT_TYPE ("a(sads)"));
  for (i = 0; i < 4; i++)
    g_variant_builder_add (&points, "(s@ads)", ids[i],
                           g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, v[i], 4, sizeof (double)),
                           payloads[i]);
  r = vcall (f, "Upsert", g_variant_new ("(sa(sads)@a{sv})", "docs", &points, no_options ()),
             "(s)", &error);
  g_assert_no_error (error);
  g_variant_get (r, "(&s)", &status);
  g_assert_cmpstr (status, ==, "completed");
}

static guint64
count (Fixture    *f,
       const char *filter)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  GVariantDict opts;
  guint64 n = 0;

  g_variant_dict_init (&opts, NULL);
  if (filter != NULL)
    g_variant_dict_insert (&opts, "filter", "s", filter);
  r = vcall (f, "Count", g_variant_new ("(s@a{sv})", "docs", g_variant_dict_end (&opts)),
             "(t)", &error);
  g_assert_no_error (error);
  g_variant_get (r, "(t)", &n);
  return n;
}

/* ---------------------------------------------------------------- tests */

static void
test_ready_and_health (Fixture       *f,
                       gconstpointer  user_data)
{
  g_autofree char *reason = NULL;
  g_autofree char *state = NULL;
  g_autoptr(GVariant) r = NULL;
  g_autoptr(GError) error = NULL;
  gboolean healthy = FALSE;
  const char *detail;

  if (f->server == NULL)
    return;
  state = bp_test_daemon_backend_state (f->daemon, "vec", &reason);
  g_assert_cmpstr (state, ==, "ready");

  r = bp_test_daemon_call (f->daemon, VEC_PATH, "org.backplane.Backplane1.Backend.CheckHealth",
                           NULL, "(bs)", &error);
  g_assert_no_error (error);
  g_variant_get (r, "(b&s)", &healthy, &detail);
  g_assert_true (healthy);
  g_assert_true (g_str_has_prefix (detail, "Qdrant 1.19.0 at http://127.0.0.1:"));
}

static void
test_collections (Fixture       *f,
                  gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r1 = NULL;
  g_autoptr(GVariant) r2 = NULL;
  g_autoptr(GVariant) r3 = NULL;
  g_autoptr(GVariant) r4 = NULL;
  g_autoptr(GVariant) r5 = NULL;
  g_autofree const char **names = NULL;
  gboolean exists = TRUE;
  const char *info;

  if (f->server == NULL)
    return;
  r1 = vcall (f, "CollectionExists", g_variant_new ("(s)", "docs"), "(b)", &error);
  g_assert_no_error (error);
  g_variant_get (r1, "(b)", &exists);
  g_assert_false (exists);

  ok_call (f, "CreateCollection", g_variant_new ("(ss)", "docs", DOCS));
  r2 = vcall (f, "GetCollection", g_variant_new ("(s)", "docs"), "(s)", &error);
  g_assert_no_error (error);
  g_variant_get (r2, "(&s)", &info);
  g_assert_nonnull (strstr (info, "\"size\":4"));

  r3 = vcall (f, "ListCollections", NULL, "(as)", &error);
  g_assert_no_error (error);
  g_variant_get (r3, "(^a&s)", &names);
  g_assert_true (g_strv_contains (names, "docs"));

  /* config checked before sending, naming the field */
  r4 = vcall (f, "CreateCollection", g_variant_new ("(ss)", "other", "{\"vectors\":{\"size\":0,\"distance\":\"Dot\"}}"),
              NULL, &error);
  assert_dbus_error (error, ERR "InvalidArgument");
  g_assert_nonnull (strstr (error->message, "config.vectors.size"));
  g_clear_error (&error);

  ok_call (f, "DeleteCollection", g_variant_new ("(s)", "docs"));
  r5 = vcall (f, "GetCollection", g_variant_new ("(s)", "docs"), "(s)", &error);
  assert_dbus_error (error, ERR "NotFound");
  g_assert_nonnull (strstr (error->message, "HTTP 404: Not found: Collection `docs` doesn't exist!"));
}

static void
test_points (Fixture       *f,
             gconstpointer  user_data)
{
  const double q[] = { 0.2, 0.1, 0.9, 0.7 };
  const char * const want[] = { "18446744073709551615", "550e8400-e29b-41d4-a716-446655440000",
                                "404", NULL };
  const char * const del[] = { "2", NULL };
  const char * const none[] = { NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) hits = NULL;
  g_autoptr(GVariant) got = NULL;
  g_autoptr(GVariant) batch = NULL;
  g_autoptr(GVariant) bad = NULL;
  GVariantDict opts;
  GVariantBuilder queries;
  GVariantIter iter;
  const char *id, *payload;
  GVariant *vector;
  double score;
  guint n = 0;

  if (f->server == NULL)
    return;
  seed (f);
  g_assert_cmpuint (count (f, NULL), ==, 4);

  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "limit", "u", 2);
  g_variant_dict_insert (&opts, "filter", "s",
                         "{\"must_not\":[{\"key\":\"city\",\"match\":{\"value\":\"Moscow\"}}]}");
  hits = vcall (f, "Query",
                g_variant_new ("(s@ad@a{sv})", "docs",
                               g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, q, 4, sizeof (double)),
                               g_variant_dict_end (&opts)),
                "(a(sds))", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (g_variant_get_child_value (hits, 0)), ==, 2);

  /* QueryBatch: two lists in order */
  g_variant_builder_init (&queries, G_VARIANT_TYPE ("a(ada{sv})"));
  g_variant_builder_add (&queries, "(@ad@a{sv})",
                         g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, q, 4, sizeof (double)),
                         no_options ());
  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "limit", "u", 1);
  g_variant_dict_insert (&opts, "with-payload", "b", FALSE);
  g_variant_builder_add (&queries, "(@ad@a{sv})",
                         g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, q, 4, sizeof (double)),
                         g_variant_dict_end (&opts));
  batch = vcall (f, "QueryBatch", g_variant_new ("(sa(ada{sv})@a{sv})", "docs", &queries, no_options ()),
                 "(aa(sds))", &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) lists = g_variant_get_child_value (batch, 0);
    g_autoptr(GVariant) second = g_variant_get_child_value (lists, 1);
    g_autoptr(GVariant) hit = g_variant_get_child_value (second, 0);

    g_assert_cmpuint (g_variant_n_children (lists), ==, 2);
    g_variant_get (hit, "(&sd&s)", &id, &score, &payload);
    g_assert_cmpstr (payload, ==, "null");
  }

  /* Retrieve: u64 max and UUIDs round-trip, missing ids are absent */
  got = vcall (f, "Retrieve", g_variant_new ("(s^as@a{sv})", "docs", want, no_options ()),
               "(a(sads))", &error);
  g_assert_no_error (error);
  g_variant_iter_init (&iter, g_variant_get_child_value (got, 0));
  while (g_variant_iter_next (&iter, "(&s@ad&s)", &id, &vector, &payload))
    {
      g_assert_true (g_str_equal (id, want[0]) || g_str_equal (id, want[1]));
      g_assert_cmpuint (g_variant_n_children (vector), ==, 4);
      if (g_str_equal (id, want[1]))
        g_assert_cmpstr (payload, ==, "{}"); /* upserted without one: the server says {} */
      else
        g_assert_cmpstr (payload, ==, "{\"city\":\"Moscow\"}");
      g_variant_unref (vector);
      n++;
    }
  g_assert_cmpuint (n, ==, 2);

  /* Delete by id, then by filter */
  ok_call (f, "Delete", g_variant_new ("(s^as@a{sv})", "docs", del, no_options ()));
  g_assert_cmpuint (count (f, NULL), ==, 3);
  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "filter", "s", "{\"must\":[{\"key\":\"city\",\"match\":{\"value\":\"Berlin\"}}]}");
  ok_call (f, "Delete", g_variant_new ("(s^as@a{sv})", "docs", none, g_variant_dict_end (&opts)));
  g_assert_cmpuint (count (f, NULL), ==, 2);

  /* unknown option and a bad id: InvalidArgument naming them */
  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "colour", "s", "red");
  bad = vcall (f, "Count", g_variant_new ("(s@a{sv})", "docs", g_variant_dict_end (&opts)), "(t)", &error);
  assert_dbus_error (error, ERR "InvalidArgument");
  g_assert_nonnull (strstr (error->message, "unknown option 'colour'"));
  g_clear_error (&error);
  {
    const char * const bad_ids[] = { "-1", NULL };
    g_autoptr(GVariant) r = vcall (f, "Retrieve", g_variant_new ("(s^as@a{sv})", "docs", bad_ids, no_options ()),
                                   "(a(sads))", &error);

    assert_dbus_error (error, ERR "InvalidArgument");
    g_assert_nonnull (strstr (error->message, "id '-1' is neither an unsigned 64-bit integer nor a UUID"));
  }
}

static int
temp_file_with (const char *text)
{
  g_autofree char *path = NULL;
  g_autoptr(GError) error = NULL;
  int fd = g_file_open_tmp ("qdrant-test-XXXXXX", &path, &error);

  g_assert_no_error (error);
  g_unlink (path);
  if (text != NULL)
    {
      gsize len = strlen (text), done = 0;

      while (done < len)
        {
          gssize n = write (fd, text + done, len - done);

          g_assert_cmpint (n, >, 0);
          done += (gsize) n;
        }
      g_assert_cmpint (lseek (fd, 0, SEEK_SET), ==, 0);
    }
  return fd;
}

static void
test_fd_streams (Fixture       *f,
                 gconstpointer  user_data)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GUnixFDList) in_fds = g_unix_fd_list_new ();
  g_autoptr(GUnixFDList) out_fds = g_unix_fd_list_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r1 = NULL;
  g_autoptr(GVariant) r2 = NULL;
  g_autofree char *written = NULL;
  g_auto(GStrv) lines = NULL;
  GVariantDict opts;
  guint64 n = 0;
  int in_fd, out_fd, idx;
  guint i;

  if (f->server == NULL)
    return;
  ok_call (f, "CreateCollection", g_variant_new ("(ss)", "docs", DOCS));
  for (i = 0; i < 5000; i++)
    g_string_append_printf (text, "{\"id\":%u,\"vector\":[1,%u,0.5,-1],\"payload\":{\"i\":%u}}\n",
                            i, i % 13, i);
  g_string_append (text, "{\"id\":18446744073709551615,\"vector\":[1,2,3,4]}\n");

  in_fd = temp_file_with (text->str);
  idx = g_unix_fd_list_append (in_fds, in_fd, &error);
  close (in_fd);
  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "batch-size", "u", 700);
  r1 = vcall_fd (f, "UpsertFromFd",
                 g_variant_new ("(sh@a{sv})", "docs", idx, g_variant_dict_end (&opts)),
                 in_fds, "(t)", &error);
  g_assert_no_error (error);
  g_variant_get (r1, "(t)", &n);
  g_assert_cmpuint (n, ==, 5001);
  g_assert_cmpuint (count (f, NULL), ==, 5001);

  out_fd = temp_file_with (NULL);
  idx = g_unix_fd_list_append (out_fds, out_fd, &error);
  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "page-size", "u", 333);
  r2 = vcall_fd (f, "ScrollToFd",
                 g_variant_new ("(sh@a{sv})", "docs", idx, g_variant_dict_end (&opts)),
                 out_fds, "(t)", &error);
  g_assert_no_error (error);
  g_variant_get (r2, "(t)", &n);
  g_assert_cmpuint (n, ==, 5001);

  {
    gsize size = (gsize) lseek (out_fd, 0, SEEK_END);
    gssize got;

    written = g_malloc0 (size + 1);
    got = pread (out_fd, written, size, 0);
    g_assert_cmpint (got, ==, (gssize) size);
    close (out_fd);
  }
  lines = g_strsplit (written, "\n", -1);
  /* header, 5001 points, end, and the empty rest after the last newline */
  g_assert_cmpuint (g_strv_length (lines), ==, 5001 + 3);
  g_assert_cmpstr (lines[0], ==, "{\"collection\":\"docs\",\"with_payload\":true,\"with_vector\":false}");
  g_assert_cmpstr (lines[5002], ==, "{\"end\":{\"points\":5001}}");
  g_assert_nonnull (strstr (written, "\n{\"id\":18446744073709551615,\"payload\":{}}\n"));
}

static void
test_fd_bad_line (Fixture       *f,
                  gconstpointer  user_data)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  int fd, idx;

  if (f->server == NULL)
    return;
  ok_call (f, "CreateCollection", g_variant_new ("(ss)", "docs", DOCS));
  fd = temp_file_with ("{\"id\":1,\"vector\":[1,2,3,4]}\n{\"id\":2,\"vector\":[1,2,3,4],\"x\":1}\n");
  idx = g_unix_fd_list_append (fds, fd, &error);
  close (fd);
  r = vcall_fd (f, "UpsertFromFd", g_variant_new ("(sh@a{sv})", "docs", idx, no_options ()),
                fds, "(t)", &error);
  assert_dbus_error (error, ERR "InvalidArgument");
  g_assert_nonnull (strstr (error->message, "line 2: unknown member 'x'"));
}

static void
test_scroll_reader_gone (Fixture       *f,
                         gconstpointer  user_data)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  int pipe_fds[2];
  int idx;

  if (f->server == NULL)
    return;
  seed (f);
  g_assert_cmpint (pipe (pipe_fds), ==, 0);
  idx = g_unix_fd_list_append (fds, pipe_fds[1], &error);
  close (pipe_fds[1]);
  close (pipe_fds[0]); /* nobody will read */
  r = vcall_fd (f, "ScrollToFd", g_variant_new ("(sh@a{sv})", "docs", idx, no_options ()),
                fds, "(t)", &error);
  g_assert_null (r);
  g_assert_nonnull (error);
  /* the daemon is still fine */
  g_assert_cmpuint (count (f, NULL), ==, 4);
}

static void
test_retry_after (Fixture       *f,
                  gconstpointer  user_data)
{
  g_autoptr(JsonNode) fault = NULL;
  gint64 start, elapsed;

  if (f->server == NULL)
    return;
  seed (f);
  fault = test_api (f, "POST", "/__test/faults",
                    "{\"path_regex\":\"/points/count$\",\"kind\":\"429\",\"retry_after\":1,\"count\":1}");
  start = g_get_monotonic_time ();
  /* The first attempt gets 429 Retry-After: 1; the retry waits it out
   * (it fits in retry.cap-ms). */
  g_assert_cmpuint (count (f, NULL), ==, 4);
  elapsed = g_get_monotonic_time () - start;
  g_assert_cmpint (elapsed, >=, 1000 * 1000);
}

/* breaker.timeout-ms, shorter than timeout-ms, bounds each request. */
static void
test_breaker_timeout (Fixture       *f,
                      gconstpointer  user_data)
{
  g_autoptr(JsonNode) fault = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;

  if (f->server == NULL)
    return;
  seed (f);
  fault = test_api (f, "POST", "/__test/faults",
                    "{\"path_regex\":\"/points/count$\",\"kind\":\"stall\",\"stall_ms\":3000,\"count\":1}");
  r = vcall (f, "Count", g_variant_new_parsed ("('docs', @a{sv} {})"), "(t)", &error);
  g_assert_null (r);
  assert_dbus_error (error, ERR "Timeout");
  g_clear_error (&error);
}

static void
test_server_gone (Fixture       *f,
                  gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  g_autofree char *state = NULL;
  g_autofree char *reason = NULL;

  if (f->server == NULL)
    return;
  seed (f);
  stop_server (f);
  r = vcall (f, "ListCollections", NULL, "(as)", &error);
  assert_dbus_error (error, ERR "Unavailable");
  state = bp_test_daemon_backend_state (f->daemon, "vec", &reason);
  g_assert_cmpstr (state, ==, "unavailable");
}

static void
test_api_key (Fixture       *f,
              gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;

  if (f->server == NULL)
    return;
  seed (f);
  r = vcall (f, "ListCollections", NULL, "(as)", &error);
  g_assert_no_error (error);
}

static void
test_api_key_wrong (Fixture       *f,
                    gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;

  g_autofree char *state = NULL;
  g_autofree char *reason = NULL;
  g_autoptr(GVariant) health = NULL;
  gboolean healthy = TRUE;
  const char *detail;

  if (f->server == NULL)
    return;
  r = vcall (f, "ListCollections", NULL, "(as)", &error);
  assert_dbus_error (error, ERR "PermissionDenied");
  g_assert_nonnull (strstr (error->message, "HTTP 401"));
  g_assert_null (strstr (error->message, "k3y-from-env"));
  g_clear_error (&error);

  /* GET / needs no key: start and the health check also list the
   * collections, so a refused key shows. */
  state = bp_test_daemon_backend_state (f->daemon, "vec", &reason);
  g_assert_cmpstr (state, ==, "unavailable");
  g_assert_nonnull (strstr (reason, "HTTP 401"));
  health = bp_test_daemon_call (f->daemon, VEC_PATH, "org.backplane.Backplane1.Backend.CheckHealth",
                                NULL, "(bs)", &error);
  g_assert_no_error (error);
  g_variant_get (health, "(b&s)", &healthy, &detail);
  g_assert_false (healthy);
  g_assert_nonnull (strstr (detail, "HTTP 401"));
}

#define DLQ_PATH  "/org/backplane/Backplane1/DeadLetters"
#define DLQ_IFACE "org.backplane.Backplane1.DeadLetters"

static guint64
dead_letter_count (BpTestDaemon *t)
{
  g_autoptr(GVariant) v = bp_test_daemon_get_property (t, DLQ_PATH, DLQ_IFACE, "Count");

  return g_variant_get_uint64 (v);
}

static gboolean
no_dead_letters (gpointer data)
{
  return dead_letter_count (data) == 0;
}

static GVariant *
one_point (const char *id)
{
  const double v[4] = { 0.1, 0.2, 0.3, 0.4 };
  GVariantBuilder points;

  g_variant_builder_init (&points, G_VARIANT_TYPE ("a(sads)"));
  g_variant_builder_add (&points, "(s@ads)", id,
                         g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, v, 4, sizeof (double)),
                         "{\"k\":\"v\"}");
  return g_variant_builder_end (&points);
}

static GVariant *
dead_letter_options (void)
{
  GVariantDict opts;

  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "dead-letter", "b", TRUE);
  return g_variant_dict_end (&opts);
}

/* Upsert with dead-letter against a server that keeps answering 503: the
 * retries run out, the upsert lands in the dead-letter queue, and a replay
 * once the server is back applies it. */
static void
test_dead_letter (Fixture       *f,
                  gconstpointer  user_data)
{
  const char * const seven[] = { "7", NULL };
  g_autoptr(JsonNode) fault = NULL;
  g_autoptr(JsonNode) cleared = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  g_autoptr(GVariant) list = NULL;
  g_autoptr(GVariant) got = NULL;
  const char *backend, *operation, *key, *last_error, *entry;
  guint64 id = 0, again = 0, listed_id = 0;
  guint32 attempts = 0;
  gint64 next_attempt = 0;

  if (f->server == NULL)
    return;
  ok_call (f, "CreateCollection", g_variant_new ("(ss)", "docs", DOCS));
  g_assert_cmpuint (dead_letter_count (f->daemon), ==, 0);

  /* A failure of the caller's own making is never dead-lettered. */
  r = vcall (f, "Upsert", g_variant_new ("(s@a(sads)@a{sv})", "nope", one_point ("7"), dead_letter_options ()),
             "(s)", &error);
  assert_dbus_error (error, ERR "NotFound");
  g_assert_null (strstr (error->message, "dead-lettered"));
  g_clear_error (&error);
  /* Nor a delete by filter: replayed later it would match other points. */
  {
    const char * const none[] = { NULL };
    GVariantDict opts;

    g_variant_dict_init (&opts, NULL);
    g_variant_dict_insert (&opts, "dead-letter", "b", TRUE);
    g_variant_dict_insert (&opts, "filter", "s", "{\"must\":[{\"has_id\":[7]}]}");
    r = vcall (f, "Delete", g_variant_new ("(s^as@a{sv})", "docs", none, g_variant_dict_end (&opts)),
               NULL, &error);
    assert_dbus_error (error, ERR "InvalidArgument");
    g_assert_nonnull (strstr (error->message, "dead-letter"));
    g_clear_error (&error);
  }
  g_assert_cmpuint (dead_letter_count (f->daemon), ==, 0);

  /* More 503s than retry.max-attempts (3): every attempt fails. */
  fault = test_api (f, "POST", "/__test/faults",
                    "{\"path_regex\":\"/collections/docs/points$\",\"method\":\"PUT\","
                    "\"kind\":\"503\",\"count\":1000}");
  r = vcall (f, "Upsert", g_variant_new ("(s@a(sads)@a{sv})", "docs", one_point ("7"), dead_letter_options ()),
             "(s)", &error);
  assert_dbus_error (error, ERR "Unavailable");
  g_assert_nonnull (strstr (error->message, "HTTP 503: Shard temporarily unavailable"));
  entry = strstr (error->message, "(dead-lettered as entry ");
  g_assert_nonnull (entry);
  id = g_ascii_strtoull (entry + strlen ("(dead-lettered as entry "), NULL, 10);
  g_assert_cmpuint (id, >, 0);
  g_clear_error (&error);
  g_assert_cmpuint (dead_letter_count (f->daemon), ==, 1);

  list = bp_test_daemon_call (f->daemon, DLQ_PATH, DLQ_IFACE ".List",
                              g_variant_new ("(uu@a{sv})", 0, 10, no_options ()),
                              "(a(tsssuxs))", &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) entries = g_variant_get_child_value (list, 0);

    g_assert_cmpuint (g_variant_n_children (entries), ==, 1);
    g_variant_get_child (entries, 0, "(t&s&s&sux&s)", &listed_id, &backend, &operation, &key,
                         &attempts, &next_attempt, &last_error);
    g_assert_cmpuint (listed_id, ==, id);
    g_assert_cmpstr (backend, ==, "vec");
    g_assert_cmpstr (operation, ==, "Vectors.Upsert");
    g_assert_true (g_str_has_prefix (key, "Vectors.Upsert:sha256:"));
    g_assert_cmpuint (attempts, ==, 3);
    g_assert_nonnull (strstr (last_error, "HTTP 503"));
  }

  /* The same upsert again is the same entry (same idempotency key). */
  r = vcall (f, "Upsert", g_variant_new ("(s@a(sads)@a{sv})", "docs", one_point ("7"), dead_letter_options ()),
             "(s)", &error);
  assert_dbus_error (error, ERR "Unavailable");
  entry = strstr (error->message, "(dead-lettered as entry ");
  g_assert_nonnull (entry);
  again = g_ascii_strtoull (entry + strlen ("(dead-lettered as entry "), NULL, 10);
  g_assert_cmpuint (again, ==, id);
  g_clear_error (&error);
  g_assert_cmpuint (dead_letter_count (f->daemon), ==, 1);

  /* Replayed while the server still fails: the entry stays (and its next
   * automatic replay moves further away). */
  r = bp_test_daemon_call (f->daemon, DLQ_PATH, DLQ_IFACE ".Replay", g_variant_new ("(t)", id), NULL, &error);
  g_assert_nonnull (error);
  g_assert_nonnull (strstr (error->message, "HTTP 503"));
  g_clear_error (&error);
  g_assert_cmpuint (dead_letter_count (f->daemon), ==, 1);

  /* The server is back: the replay applies the point. */
  cleared = test_api (f, "DELETE", "/__test/faults", NULL);
  r = bp_test_daemon_call (f->daemon, DLQ_PATH, DLQ_IFACE ".Replay", g_variant_new ("(t)", id), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bp_test_wait_until (no_dead_letters, f->daemon, 10000));

  got = vcall (f, "Retrieve", g_variant_new ("(s^as@a{sv})", "docs", seven, no_options ()),
               "(a(sads))", &error);
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) points = g_variant_get_child_value (got, 0);
    g_autoptr(GVariant) vector = NULL;
    const char *pid, *payload;

    g_assert_cmpuint (g_variant_n_children (points), ==, 1);
    g_variant_get_child (points, 0, "(&s@ad&s)", &pid, &vector, &payload);
    g_assert_cmpstr (pid, ==, "7");
    g_assert_cmpstr (payload, ==, "{\"k\":\"v\"}");
    g_assert_cmpuint (g_variant_n_children (vector), ==, 4);
  }
  g_assert_cmpuint (count (f, NULL), ==, 1);
}

/* Delete by ids with dead-letter and an explicit idempotency key. */
static void
test_dead_letter_delete (Fixture       *f,
                         gconstpointer  user_data)
{
  const char * const two[] = { "2", NULL };
  g_autoptr(JsonNode) fault = NULL;
  g_autoptr(JsonNode) cleared = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  g_autoptr(GVariant) got = NULL;
  GVariantDict opts;
  const char *entry;
  guint64 id;

  if (f->server == NULL)
    return;
  seed (f);
  fault = test_api (f, "POST", "/__test/faults",
                    "{\"path_regex\":\"/points/delete$\",\"kind\":\"503\",\"count\":1000}");
  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "dead-letter", "b", TRUE);
  g_variant_dict_insert (&opts, "idempotency-key", "s", "delete-two");
  r = vcall (f, "Delete", g_variant_new ("(s^as@a{sv})", "docs", two, g_variant_dict_end (&opts)),
             NULL, &error);
  assert_dbus_error (error, ERR "Unavailable");
  entry = strstr (error->message, "(dead-lettered as entry ");
  g_assert_nonnull (entry);
  id = g_ascii_strtoull (entry + strlen ("(dead-lettered as entry "), NULL, 10);
  g_clear_error (&error);
  g_assert_cmpuint (dead_letter_count (f->daemon), ==, 1);
  g_assert_cmpuint (count (f, NULL), ==, 4);

  cleared = test_api (f, "DELETE", "/__test/faults", NULL);
  r = bp_test_daemon_call (f->daemon, DLQ_PATH, DLQ_IFACE ".Replay", g_variant_new ("(t)", id), NULL, &error);
  g_assert_no_error (error);
  g_assert_true (bp_test_wait_until (no_dead_letters, f->daemon, 10000));
  g_assert_cmpuint (count (f, NULL), ==, 3);
  got = vcall (f, "Retrieve", g_variant_new ("(s^as@a{sv})", "docs", two, no_options ()),
               "(a(sads))", &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (g_variant_get_child_value (got, 0)), ==, 0);
}

static const Config plain = { NULL, NULL };
/* Many 503s on purpose: the breaker must not open in between. */
static const Config dead_letters = { NULL, "breaker.min-volume=1000\n" };
static const Config breaker_timeout = { NULL, "breaker.timeout-ms=300\nretry.max-attempts=1\n" };
static const Config keyed = { "k3y-from-env", "api-key-env=BP_QDRANT_TEST_KEY\n" };
static const Config keyed_wrong = { "the-real-key", "api-key-env=BP_QDRANT_TEST_KEY\n" };

#define ADD(path, config, func) \
  g_test_add (path, Fixture, config, fixture_set_up, func, fixture_tear_down)

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  /* the daemon inherits it: the key never appears in the config text */
  g_setenv ("BP_QDRANT_TEST_KEY", "k3y-from-env", TRUE);

  ADD ("/qdrant/dbus/ready-and-health", &plain, test_ready_and_health);
  ADD ("/qdrant/dbus/collections", &plain, test_collections);
  ADD ("/qdrant/dbus/points", &plain, test_points);
  ADD ("/qdrant/dbus/fd-streams", &plain, test_fd_streams);
  ADD ("/qdrant/dbus/fd-bad-line", &plain, test_fd_bad_line);
  ADD ("/qdrant/dbus/scroll-reader-gone", &plain, test_scroll_reader_gone);
  ADD ("/qdrant/dbus/retry-after", &plain, test_retry_after);
  ADD ("/qdrant/dbus/server-gone", &plain, test_server_gone);
  ADD ("/qdrant/dbus/breaker-timeout", &breaker_timeout, test_breaker_timeout);
  ADD ("/qdrant/dbus/dead-letter/upsert", &dead_letters, test_dead_letter);
  ADD ("/qdrant/dbus/dead-letter/delete", &dead_letters, test_dead_letter_delete);
  ADD ("/qdrant/dbus/api-key/from-env", &keyed, test_api_key);
  ADD ("/qdrant/dbus/api-key/wrong", &keyed_wrong, test_api_key_wrong);

  return g_test_run ();
}
