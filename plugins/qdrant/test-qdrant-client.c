/* test-qdrant-client.c: BpQdrantClient against tests/qdrant/qdrantserver.py
 *
 * Each test starts the project's Qdrant-compatible server on a loopback
 * port (`python3 qdrantserver.py --port 0`), talks to it through the
 * client, and at the end asserts that the server saw no request body that
 * violates the Qdrant v1.19.0 OpenAPI schema (GET /__test/violations).
 *
 * The server path comes from $QDRANT_SERVER, else
 * $BACKPLANE_SOURCE_ROOT/tests/qdrant/qdrantserver.py; without it the
 * tests are skipped.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include <libsoup/soup.h>

#include "bp-qdrant-client.h"

#define OVERALL_TIMEOUT_S 120

typedef struct
{
  GSubprocess    *server;
  guint           port;
  char           *url;
  SoupSession    *test_session;  /* sync calls to /__test */
  BpQdrantClient *client;
  GAsyncResult   *result;
  GMainLoop      *loop;
} Fixture;

typedef struct
{
  const char *api_key;     /* for the server and, unless client_key, the client */
  const char *client_key;
  const char *version;
} FixtureConfig;

static const FixtureConfig plain_config = { NULL, NULL, NULL };

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

static gboolean
start_server (Fixture             *f,
              const FixtureConfig *config)
{
  g_autofree char *script = server_path ();
  const char *python = g_getenv ("PYTHON3");
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GDataInputStream) out = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;

  if (!g_file_test (script, G_FILE_TEST_EXISTS))
    {
      g_test_skip ("tests/qdrant/qdrantserver.py not found");
      return FALSE;
    }
  g_ptr_array_add (argv, (char *) (python != NULL ? python : "python3"));
  g_ptr_array_add (argv, script);
  g_ptr_array_add (argv, (char *) "--port");
  g_ptr_array_add (argv, (char *) "0");
  if (config->api_key != NULL)
    {
      g_ptr_array_add (argv, (char *) "--api-key");
      g_ptr_array_add (argv, (char *) config->api_key);
    }
  if (config->version != NULL)
    {
      g_ptr_array_add (argv, (char *) "--version");
      g_ptr_array_add (argv, (char *) config->version);
    }
  g_ptr_array_add (argv, NULL);

  /* stdin stays open: the server exits on EOF, so it dies with the test. */
  f->server = g_subprocess_newv ((const char * const *) argv->pdata,
                                 G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                 &error);
  g_assert_no_error (error);
  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (f->server));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  g_assert_true (g_str_has_prefix (line, "LISTENING "));
  f->port = (guint) g_ascii_strtoull (line + strlen ("LISTENING "), NULL, 10);
  g_assert_cmpuint (f->port, >, 0);
  f->url = g_strdup_printf ("http://127.0.0.1:%u", f->port);
  return TRUE;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  user_data)
{
  const FixtureConfig *config = user_data;
  g_autoptr(GError) error = NULL;

  f->loop = g_main_loop_new (NULL, FALSE);
  if (!start_server (f, config))
    return;
  f->test_session = soup_session_new ();
  f->client = bp_qdrant_client_new (f->url,
                                    config->client_key != NULL ? config->client_key : config->api_key,
                                    &error);
  g_assert_no_error (error);
  bp_qdrant_client_set_timeout_ms (f->client, 30000);
}

/* A sync call to the server's test API; returns the parsed JSON. */
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
  reply = soup_session_send_and_read (f->test_session, msg, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (soup_message_get_status (msg), ==, 200);
  g_assert_true (json_parser_load_from_data (parser, g_bytes_get_data (reply, NULL),
                                             (gssize) g_bytes_get_size (reply), &error));
  return json_node_copy (json_parser_get_root (parser));
}

static void
add_fault (Fixture    *f,
           const char *json)
{
  g_autoptr(JsonNode) r = test_api (f, "POST", "/__test/faults", json);
}

static guint
n_requests (Fixture *f)
{
  g_autoptr(JsonNode) r = test_api (f, "GET", "/__test/requests", NULL);

  return json_array_get_length (json_node_get_array (r));
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  user_data)
{
  if (f->server != NULL)
    {
      g_autoptr(JsonNode) v = test_api (f, "GET", "/__test/violations", NULL);
      g_autofree char *text = json_to_string (v, TRUE);

      /* Every body the client sent validates against the v1.19.0 schema. */
      if (json_array_get_length (json_node_get_array (v)) != 0)
        g_test_message ("violations: %s", text);
      g_assert_cmpuint (json_array_get_length (json_node_get_array (v)), ==, 0);

      g_output_stream_close (g_subprocess_get_stdin_pipe (f->server), NULL, NULL);
      g_subprocess_wait (f->server, NULL, NULL);
    }
  g_clear_object (&f->result);
  if (f->client != NULL)
    g_assert_finalize_object (f->client);
  g_clear_object (&f->test_session);
  g_clear_object (&f->server);
  g_free (f->url);
  g_main_loop_unref (f->loop);
}

static void
result_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Fixture *f = user_data;

  g_assert_null (f->result);
  f->result = g_object_ref (result);
  g_main_loop_quit (f->loop);
}

static gboolean
overall_timeout_cb (gpointer user_data)
{
  g_error ("an operation did not complete within %d s", OVERALL_TIMEOUT_S);
  return G_SOURCE_REMOVE;
}

/* Runs the main loop until result_cb stored a result; the caller owns it. */
static GAsyncResult *
run (Fixture *f)
{
  guint id = g_timeout_add_seconds (OVERALL_TIMEOUT_S, overall_timeout_cb, NULL);
  GAsyncResult *r;

  while (f->result == NULL)
    g_main_loop_run (f->loop);
  g_source_remove (id);
  r = f->result;
  f->result = NULL;
  return r;
}

static void
create_collection (Fixture    *f,
                   const char *name,
                   const char *config)
{
  g_autoptr(GAsyncResult) r = NULL;
  g_autoptr(GError) error = NULL;

  bp_qdrant_client_create_collection_async (f->client, name, config, NULL, result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_create_collection_finish (f->client, r, &error));
  g_assert_no_error (error);
}

static char *
upsert (Fixture    *f,
        const char *name,
        GPtrArray  *points,
        gboolean    wait,
        GError    **error)
{
  g_autoptr(GAsyncResult) r = NULL;

  bp_qdrant_client_upsert_async (f->client, name, points, wait, NULL, result_cb, f);
  r = run (f);
  return bp_qdrant_client_upsert_finish (f->client, r, error);
}

static guint64
count (Fixture    *f,
       const char *name,
       const char *filter)
{
  g_autoptr(GAsyncResult) r = NULL;
  g_autoptr(GError) error = NULL;
  guint64 n = G_MAXUINT64;

  bp_qdrant_client_count_async (f->client, name, filter, TRUE, NULL, result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_count_finish (f->client, r, &n, &error));
  g_assert_no_error (error);
  return n;
}

static gboolean
exists (Fixture    *f,
        const char *name)
{
  g_autoptr(GAsyncResult) r = NULL;
  g_autoptr(GError) error = NULL;
  gboolean e = FALSE;

  bp_qdrant_client_collection_exists_async (f->client, name, NULL, result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_collection_exists_finish (f->client, r, &e, &error));
  g_assert_no_error (error);
  return e;
}

static GPtrArray *
retrieve (Fixture            *f,
          const char         *name,
          const char * const *ids)
{
  g_autoptr(GAsyncResult) r = NULL;
  g_autoptr(GError) error = NULL;
  GPtrArray *points;

  bp_qdrant_client_retrieve_async (f->client, name, ids, TRUE, TRUE, NULL, result_cb, f);
  r = run (f);
  points = bp_qdrant_client_retrieve_finish (f->client, r, &error);
  g_assert_no_error (error);
  return points;
}

static GPtrArray *
new_points (void)
{
  return g_ptr_array_new_with_free_func ((GDestroyNotify) bp_qdrant_point_free);
}

#define DOCS_CONFIG "{\"vectors\":{\"size\":4,\"distance\":\"Cosine\"}}"

/* Four cities, ids 1..4. */
static void
seed_docs (Fixture *f)
{
  g_autoptr(GPtrArray) points = new_points ();
  g_autoptr(GError) error = NULL;
  g_autofree char *status = NULL;
  const double v[4][4] = {
    { 0.05, 0.61, 0.76, 0.74 }, { 0.19, 0.81, 0.75, 0.11 },
    { 0.36, 0.55, 0.47, 0.94 }, { 0.18, 0.01, 0.85, 0.80 },
  };
  const char * const payloads[] = {
    "{\"city\":\"Berlin\"}", "{\"city\":\"London\"}", "{\"city\":\"Moscow\"}",
    "{\"city\":\"Berlin\",\"n\":18446744073709551615}",
  };
  guint i;

  create_collection (f, "docs", DOCS_CONFIG);
  for (i = 0; i < 4; i++)
    {
      g_autofree char *id = g_strdup_printf ("%u", i + 1);

      g_ptr_array_add (points, bp_qdrant_point_new (id, v[i], 4, payloads[i]));
    }
  status = upsert (f, "docs", points, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (status, ==, "completed");
}

/* ------------------------------------------------------------------ tests */

static void
test_version (Fixture       *f,
              gconstpointer  user_data)
{
  const FixtureConfig *config = user_data;
  g_autoptr(GAsyncResult) r = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *version = NULL;
  g_autofree char *warning = NULL;
  gboolean compatible = FALSE;

  if (f->server == NULL)
    return;
  bp_qdrant_client_version_check_async (f->client, NULL, result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_version_check_finish (f->client, r, &version, &compatible,
                                                        &warning, &error));
  g_assert_no_error (error);
  if (config->version == NULL)
    {
      g_assert_cmpstr (version, ==, "1.19.0");
      g_assert_true (compatible);
      g_assert_null (warning);
    }
  else
    {
      g_assert_cmpstr (version, ==, config->version);
      g_assert_false (compatible);
      g_assert_nonnull (warning);
      g_assert_true (strstr (warning, config->version) != NULL);
    }
}

static void
test_collections (Fixture       *f,
                  gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_auto(GStrv) names = NULL;
  g_autofree char *info = NULL;
  GAsyncResult *r;
  JsonObject *params;

  if (f->server == NULL)
    return;
  g_assert_false (exists (f, "docs"));
  create_collection (f, "docs", DOCS_CONFIG);
  g_assert_true (exists (f, "docs"));

  bp_qdrant_client_get_collection_async (f->client, "docs", NULL, result_cb, f);
  r = run (f);
  info = bp_qdrant_client_get_collection_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_true (json_parser_load_from_data (parser, info, -1, NULL));
  params = json_object_get_object_member (
    json_object_get_object_member (json_node_get_object (json_parser_get_root (parser)), "config"),
    "params");
  g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (params, "vectors"),
                                               "size"), ==, 4);

  bp_qdrant_client_list_collections_async (f->client, NULL, result_cb, f);
  r = run (f);
  names = bp_qdrant_client_list_collections_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_true (g_strv_contains ((const char * const *) names, "docs"));

  /* creating it twice: the server's 409 text */
  bp_qdrant_client_create_collection_async (f->client, "docs", DOCS_CONFIG, NULL, result_cb, f);
  r = run (f);
  g_assert_false (bp_qdrant_client_create_collection_finish (f->client, r, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_cmpstr (error->message, ==, "HTTP 409: Wrong input: Collection `docs` already exists!");
  g_clear_error (&error);

  bp_qdrant_client_delete_collection_async (f->client, "docs", NULL, result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_delete_collection_finish (f->client, r, &error));
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_false (exists (f, "docs"));

  /* missing: 404 with the server's envelope text */
  bp_qdrant_client_get_collection_async (f->client, "docs", NULL, result_cb, f);
  r = run (f);
  g_assert_null (bp_qdrant_client_get_collection_finish (f->client, r, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_NOT_FOUND);
  g_assert_cmpstr (error->message, ==, "HTTP 404: Not found: Collection `docs` doesn't exist!");
  g_clear_error (&error);

  bp_qdrant_client_delete_collection_async (f->client, "docs", NULL, result_cb, f);
  r = run (f);
  g_assert_false (bp_qdrant_client_delete_collection_finish (f->client, r, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_NOT_FOUND);
}

static void
test_invalid_input_sends_nothing (Fixture       *f,
                                  gconstpointer  user_data)
{
  g_autoptr(GPtrArray) points = new_points ();
  g_autoptr(GError) error = NULL;
  const double v[] = { 1, 2, 3, 4 };
  const char * const bad_ids[] = { "1", "-7", NULL };
  guint before;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  before = n_requests (f);

  bp_qdrant_client_create_collection_async (f->client, "docs",
                                            "{\"vectors\":{\"size\":4,\"distance\":\"cos\"}}",
                                            NULL, result_cb, f);
  r = run (f);
  g_assert_false (bp_qdrant_client_create_collection_finish (f->client, r, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_str_has_prefix (error->message, "config.vectors.distance:"));
  g_clear_error (&error);

  bp_qdrant_client_count_async (f->client, "docs", "{\"must\":[],\"oops\":1}", TRUE, NULL,
                                result_cb, f);
  r = run (f);
  g_assert_false (bp_qdrant_client_count_finish (f->client, r, NULL, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_str_has_prefix (error->message, "filter: unknown key 'oops'"));
  g_clear_error (&error);

  g_ptr_array_add (points, bp_qdrant_point_new ("1e3", v, 4, NULL));
  g_assert_null (upsert (f, "docs", points, TRUE, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==,
                   "points[0].id: id '1e3' is neither an unsigned 64-bit integer nor a UUID");
  g_clear_error (&error);

  bp_qdrant_client_retrieve_async (f->client, "docs", bad_ids, TRUE, FALSE, NULL, result_cb, f);
  r = run (f);
  g_assert_null (bp_qdrant_client_retrieve_finish (f->client, r, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  bp_qdrant_client_list_snapshots_async (f->client, "a/b", NULL, result_cb, f);
  r = run (f);
  g_assert_null (bp_qdrant_client_list_snapshots_finish (f->client, r, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);

  g_assert_cmpuint (n_requests (f), ==, before);
}

static void
test_upsert_wait (Fixture       *f,
                  gconstpointer  user_data)
{
  g_autoptr(GPtrArray) points = new_points ();
  g_autoptr(GError) error = NULL;
  g_autofree char *s1 = NULL;
  g_autofree char *s2 = NULL;
  const double v[] = { 1, 2, 3, 4 };

  if (f->server == NULL)
    return;
  create_collection (f, "docs", DOCS_CONFIG);
  g_ptr_array_add (points, bp_qdrant_point_new ("1", v, 4, "{\"a\":1}"));
  s1 = upsert (f, "docs", points, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (s1, ==, "completed");
  s2 = upsert (f, "docs", points, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (s2, ==, "acknowledged");
  g_assert_cmpuint (count (f, "docs", NULL), ==, 1);

  /* The server refuses a wrong dimension: 400 with its text. */
  g_ptr_array_set_size (points, 0);
  g_ptr_array_add (points, bp_qdrant_point_new ("2", v, 3, NULL));
  g_assert_null (upsert (f, "docs", points, TRUE, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_true (g_str_has_prefix (error->message, "HTTP 400: Wrong input: Vector dimension error"));
}

static void
test_ids (Fixture       *f,
          gconstpointer  user_data)
{
  g_autoptr(GPtrArray) points = new_points ();
  g_autoptr(GPtrArray) got = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *status = NULL;
  const double v[] = { 1, 0, 0, 0 };
  const char * const ids[] = {
    "18446744073709551615", "9223372036854775808", "0",
    "550E8400-E29B-41D4-A716-446655440000", "404", NULL,
  };
  const char * const expected[] = {
    "18446744073709551615", "9223372036854775808", "0", "550e8400-e29b-41d4-a716-446655440000",
  };
  guint i, j;

  if (f->server == NULL)
    return;
  create_collection (f, "docs", DOCS_CONFIG);
  for (i = 0; i < 4; i++)
    g_ptr_array_add (points, bp_qdrant_point_new (ids[i], v, 4, "{\"k\":1}"));
  status = upsert (f, "docs", points, TRUE, &error);
  g_assert_no_error (error);

  got = retrieve (f, "docs", ids);
  g_assert_cmpuint (got->len, ==, 4); /* 404 does not exist */
  for (i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      gboolean found = FALSE;

      for (j = 0; j < got->len; j++)
        {
          BpQdrantPoint *p = g_ptr_array_index (got, j);

          if (g_str_equal (p->id, expected[i]))
            {
              found = TRUE;
              g_assert_cmpstr (p->payload_json, ==, "{\"k\":1}");
              g_assert_cmpuint (bp_qdrant_point_get_vector (p, NULL)->values->len, ==, 4);
            }
        }
      g_assert_true (found);
    }
}

static void
test_query (Fixture       *f,
            gconstpointer  user_data)
{
  const double q[] = { 0.2, 0.1, 0.9, 0.7 };
  g_autoptr(BpQdrantQuery) query = bp_qdrant_query_new (q, 4, 3);
  g_autoptr(GPtrArray) hits = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) log = NULL;
  GAsyncResult *r;
  JsonArray *requests;
  gboolean saw_query = FALSE;
  guint i;

  if (f->server == NULL)
    return;
  seed_docs (f);
  query->filter_json = g_strdup ("{\"must\":[{\"key\":\"city\",\"match\":{\"value\":\"Berlin\"}}]}");
  bp_qdrant_client_query_async (f->client, "docs", query, NULL, result_cb, f);
  r = run (f);
  hits = bp_qdrant_client_query_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_cmpuint (hits->len, ==, 2);
  for (i = 0; i < hits->len; i++)
    {
      BpQdrantHit *h = g_ptr_array_index (hits, i);

      g_assert_true (g_str_equal (h->id, "1") || g_str_equal (h->id, "4"));
      g_assert_nonnull (strstr (h->payload_json, "\"city\":\"Berlin\""));
      if (i > 0)
        g_assert_cmpfloat (((BpQdrantHit *) g_ptr_array_index (hits, i - 1))->score, >=, h->score);
    }
  /* point 4 scores best for this vector */
  g_assert_cmpstr (((BpQdrantHit *) g_ptr_array_index (hits, 0))->id, ==, "4");

  /* score threshold, no payload, and never /points/search */
  g_clear_pointer (&query->filter_json, g_free);
  query->with_payload = FALSE;
  query->has_score_threshold = TRUE;
  query->score_threshold = 2.0; /* cosine never exceeds 1 */
  bp_qdrant_client_query_async (f->client, "docs", query, NULL, result_cb, f);
  r = run (f);
  g_clear_pointer (&hits, g_ptr_array_unref);
  hits = bp_qdrant_client_query_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_cmpuint (hits->len, ==, 0);

  log = test_api (f, "GET", "/__test/requests", NULL);
  requests = json_node_get_array (log);
  for (i = 0; i < json_array_get_length (requests); i++)
    {
      const char *path = json_object_get_string_member (json_array_get_object_element (requests, i), "path");

      g_assert_null (strstr (path, "/points/search"));
      if (g_str_has_suffix (path, "/points/query"))
        saw_query = TRUE;
    }
  g_assert_true (saw_query);
}

static void
test_query_batch (Fixture       *f,
                  gconstpointer  user_data)
{
  const double q1[] = { 0.05, 0.61, 0.76, 0.74 };
  const double q2[] = { 0.19, 0.81, 0.75, 0.11 };
  g_autoptr(GPtrArray) queries = g_ptr_array_new_with_free_func ((GDestroyNotify) bp_qdrant_query_free);
  g_autoptr(GPtrArray) lists = NULL;
  g_autoptr(GError) error = NULL;
  BpQdrantQuery *second;
  GPtrArray *l1, *l2;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  seed_docs (f);
  g_ptr_array_add (queries, bp_qdrant_query_new (q1, 4, 1));
  second = bp_qdrant_query_new (q2, 4, 2);
  second->filter_json = g_strdup ("{\"must_not\":{\"key\":\"city\",\"match\":{\"value\":\"Moscow\"}}}");
  g_ptr_array_add (queries, second);

  bp_qdrant_client_query_batch_async (f->client, "docs", queries, NULL, result_cb, f);
  r = run (f);
  lists = bp_qdrant_client_query_batch_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_cmpuint (lists->len, ==, 2);
  l1 = g_ptr_array_index (lists, 0);
  l2 = g_ptr_array_index (lists, 1);
  g_assert_cmpuint (l1->len, ==, 1);
  g_assert_cmpstr (((BpQdrantHit *) g_ptr_array_index (l1, 0))->id, ==, "1");
  g_assert_cmpuint (l2->len, ==, 2);
  g_assert_cmpstr (((BpQdrantHit *) g_ptr_array_index (l2, 0))->id, ==, "2");
}

static void
test_delete (Fixture       *f,
             gconstpointer  user_data)
{
  const char * const ids[] = { "2", NULL };
  const char * const all[] = { "1", "2", "3", "4", NULL };
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) left = NULL;
  g_autofree char *s1 = NULL;
  g_autofree char *s2 = NULL;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  seed_docs (f);
  g_assert_cmpuint (count (f, "docs", NULL), ==, 4);
  g_assert_cmpuint (count (f, "docs", "{\"must\":[{\"key\":\"city\",\"match\":{\"value\":\"Berlin\"}}]}"), ==, 2);

  bp_qdrant_client_delete_points_async (f->client, "docs", ids, NULL, TRUE, NULL, result_cb, f);
  r = run (f);
  s1 = bp_qdrant_client_delete_points_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_cmpstr (s1, ==, "completed");
  g_assert_cmpuint (count (f, "docs", NULL), ==, 3);

  bp_qdrant_client_delete_points_async (f->client, "docs", NULL,
                                        "{\"must\":[{\"key\":\"city\",\"match\":{\"value\":\"Berlin\"}}]}",
                                        TRUE, NULL, result_cb, f);
  r = run (f);
  s2 = bp_qdrant_client_delete_points_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_cmpuint (count (f, "docs", NULL), ==, 1);

  left = retrieve (f, "docs", all);
  g_assert_cmpuint (left->len, ==, 1);
  g_assert_cmpstr (((BpQdrantPoint *) g_ptr_array_index (left, 0))->id, ==, "3");

  /* neither or both selectors */
  bp_qdrant_client_delete_points_async (f->client, "docs", NULL, NULL, TRUE, NULL, result_cb, f);
  r = run (f);
  g_assert_null (bp_qdrant_client_delete_points_finish (f->client, r, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
}

/* Writes n points as JSON Lines: id i, payload {"i": i}. */
static GString *
make_jsonl (guint n)
{
  GString *s = g_string_sized_new (n * 64);
  guint i;

  for (i = 0; i < n; i++)
    g_string_append_printf (s, "{\"id\":%u,\"vector\":[%u.5,1,0.25,-1],\"payload\":{\"i\":%u}}\n",
                            i, i % 97, i);
  return s;
}

static void
test_upsert_stream_100k (Fixture       *f,
                         gconstpointer  user_data)
{
  GString *text = make_jsonl (100000);
  gsize len = text->len;
  g_autoptr(GInputStream) input = g_memory_input_stream_new_from_data (g_string_free (text, FALSE), (gssize) len, g_free);
  g_autoptr(GError) error = NULL;
  guint64 n = 0;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  create_collection (f, "big", DOCS_CONFIG);
  bp_qdrant_client_upsert_from_stream_async (f->client, "big", input, 1000, TRUE, NULL,
                                             result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_upsert_from_stream_finish (f->client, r, &n, &error));
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 100000);
  g_assert_cmpuint (count (f, "big", NULL), ==, 100000);
  /* 100 requests for the points, each of 1000 */
  g_assert_cmpuint (n_requests (f), ==, 1 + 100 + 1);
}

static void
test_upsert_stream_bad_line (Fixture       *f,
                             gconstpointer  user_data)
{
  const char *text =
    "{\"id\":1,\"vector\":[1,2,3,4]}\n"
    "{\"id\":2,\"vector\":[1,2,3,4]}\n"
    "{\"id\":3,\"vector\":[1,2,3,4]}\n"
    "{\"id\":4,\"vector\":[1,2,3,4]}\n"
    "{\"id\":5,\"vector\":[1,2,3,4],\"payload\":7}\n"
    "{\"id\":6,\"vector\":[1,2,3,4]}\n";
  g_autoptr(GInputStream) input = g_memory_input_stream_new_from_data (text, -1, NULL);
  g_autoptr(GError) error = NULL;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  create_collection (f, "docs", DOCS_CONFIG);
  bp_qdrant_client_upsert_from_stream_async (f->client, "docs", input, 2, TRUE, NULL,
                                             result_cb, f);
  r = run (f);
  g_assert_false (bp_qdrant_client_upsert_from_stream_finish (f->client, r, NULL, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==,
                   "after 4 points were upserted: line 5: payload: must be a JSON object or null");
  g_assert_cmpuint (count (f, "docs", NULL), ==, 4);
}

/* Reads are POSTs: they must reuse the kept-alive connection (libsoup
 * opens a new one for every POST it is not told is idempotent). */
static void
test_keep_alive (Fixture       *f,
                 gconstpointer  user_data)
{
  const double v[4] = { 1, 0, 0, 0 };
  const char * const ids[] = { "1", NULL };
  g_autoptr(JsonNode) log = NULL;
  g_autoptr(GHashTable) connections = g_hash_table_new (NULL, NULL);
  JsonArray *entries;
  guint i;

  if (f->server == NULL)
    return;
  create_collection (f, "docs", DOCS_CONFIG);
  for (i = 0; i < 5; i++)
    {
      g_autoptr(BpQdrantQuery) query = bp_qdrant_query_new (v, 4, 3);
      g_autoptr(GPtrArray) hits = NULL;
      g_autoptr(GPtrArray) points = NULL;
      g_autoptr(GError) error = NULL;
      GAsyncResult *r;

      g_assert_cmpuint (count (f, "docs", NULL), ==, 0);
      bp_qdrant_client_query_async (f->client, "docs", query, NULL, result_cb, f);
      r = run (f);
      hits = bp_qdrant_client_query_finish (f->client, r, &error);
      g_object_unref (r);
      g_assert_no_error (error);
      points = retrieve (f, "docs", ids);
    }
  log = test_api (f, "GET", "/__test/requests", NULL);
  entries = json_node_get_array (log);
  g_assert_cmpuint (json_array_get_length (entries), ==, 1 + 5 * 3);
  for (i = 0; i < json_array_get_length (entries); i++)
    g_hash_table_add (connections,
                      GINT_TO_POINTER (json_object_get_int_member (json_array_get_object_element (entries, i),
                                                                   "connection")));
  g_assert_cmpuint (g_hash_table_size (connections), ==, 1);
}

/* The server refuses batch 2 while batch 3 is already read: nothing more
 * is sent, and the count in the error is exact. Requests stay in order: a
 * later line for the same id wins. */
static void
test_upsert_stream_server_error (Fixture       *f,
                                 gconstpointer  user_data)
{
  const char *text =
    "{\"id\":1,\"vector\":[1,2,3,4],\"payload\":{\"v\":1}}\n"
    "{\"id\":2,\"vector\":[1,2,3,4]}\n"
    "{\"id\":1,\"vector\":[1,2,3,4],\"payload\":{\"v\":2}}\n"
    "{\"id\":4,\"vector\":[1,2,3]}\n"
    "{\"id\":5,\"vector\":[1,2,3,4]}\n"
    "{\"id\":6,\"vector\":[1,2,3,4]}\n";
  const char * const one[] = { "1", NULL };
  g_autoptr(GInputStream) input = g_memory_input_stream_new_from_data (text, -1, NULL);
  g_autoptr(GPtrArray) got = NULL;
  g_autoptr(GError) error = NULL;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  create_collection (f, "docs", DOCS_CONFIG);
  bp_qdrant_client_upsert_from_stream_async (f->client, "docs", input, 1, TRUE, NULL,
                                             result_cb, f);
  r = run (f);
  g_assert_false (bp_qdrant_client_upsert_from_stream_finish (f->client, r, NULL, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_true (g_str_has_prefix (error->message, "after 3 points were upserted: HTTP 400: "));
  g_assert_nonnull (strstr (error->message, "Vector dimension error"));
  g_assert_cmpuint (count (f, "docs", NULL), ==, 2);
  /* create + 4 upserts (the 4th refused; line 5 was read, never sent) + count */
  g_assert_cmpuint (n_requests (f), ==, 1 + 4 + 1);
  got = retrieve (f, "docs", one);
  g_assert_cmpuint (got->len, ==, 1);
  g_assert_cmpstr (((BpQdrantPoint *) g_ptr_array_index (got, 0))->payload_json, ==, "{\"v\":2}");
}

static void
test_scroll (Fixture       *f,
             gconstpointer  user_data)
{
  GString *text = make_jsonl (1000);
  gsize len = text->len;
  g_autoptr(GInputStream) input = g_memory_input_stream_new_from_data (g_string_free (text, FALSE), (gssize) len, g_free);
  g_autoptr(GOutputStream) output = g_memory_output_stream_new_resizable ();
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) lines = NULL;
  g_autofree char *data = NULL;
  guint64 n = 0, written = 0;
  GAsyncResult *r;
  guint i;

  if (f->server == NULL)
    return;
  create_collection (f, "docs", DOCS_CONFIG);
  bp_qdrant_client_upsert_from_stream_async (f->client, "docs", input, 300, TRUE, NULL,
                                             result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_upsert_from_stream_finish (f->client, r, &n, &error));
  g_object_unref (r);
  g_assert_cmpuint (n, ==, 1000);

  bp_qdrant_client_scroll_to_stream_async (f->client, "docs", NULL, 64, TRUE, FALSE, output,
                                           NULL, result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_scroll_to_stream_finish (f->client, r, &written, &error));
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_cmpuint (written, ==, count (f, "docs", NULL));

  g_output_stream_close (output, NULL, NULL);
  data = g_strndup (g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (output)),
                    g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (output)));
  lines = g_strsplit (data, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 1001); /* last one empty */
  for (i = 0; i < 1000; i++)
    {
      g_autoptr(JsonParser) parser = json_parser_new ();
      JsonObject *obj;
      char *id;

      g_assert_true (json_parser_load_from_data (parser, lines[i], -1, NULL));
      obj = json_node_get_object (json_parser_get_root (parser));
      id = g_strdup_printf ("%" G_GINT64_FORMAT, json_object_get_int_member (obj, "id"));
      g_assert_cmpint (json_object_get_int_member (json_object_get_object_member (obj, "payload"), "i"),
                       ==, json_object_get_int_member (obj, "id"));
      g_assert_false (json_object_has_member (obj, "vector"));
      /* each point exactly once */
      g_assert_true (g_hash_table_add (seen, id));
    }
  g_assert_cmpuint (g_hash_table_size (seen), ==, 1000);

  /* with a filter: only some pages' worth */
  {
    g_autoptr(GOutputStream) out2 = g_memory_output_stream_new_resizable ();

    bp_qdrant_client_scroll_to_stream_async (f->client, "docs",
                                             "{\"must\":[{\"key\":\"i\",\"range\":{\"lt\":100}}]}",
                                             7, FALSE, TRUE, out2, NULL, result_cb, f);
    r = run (f);
    g_assert_true (bp_qdrant_client_scroll_to_stream_finish (f->client, r, &written, &error));
    g_object_unref (r);
    g_assert_no_error (error);
    g_assert_cmpuint (written, ==, 100);
  }
}

static void
test_scroll_u64 (Fixture       *f,
                 gconstpointer  user_data)
{
  const char *text =
    "{\"id\":18446744073709551615,\"vector\":[1,2,3,4]}\n"
    "{\"id\":18446744073709551614,\"vector\":[1,2,3,4]}\n"
    "{\"id\":\"550e8400-e29b-41d4-a716-446655440000\",\"vector\":[1,2,3,4]}\n";
  g_autoptr(GInputStream) input = g_memory_input_stream_new_from_data (text, -1, NULL);
  g_autoptr(GOutputStream) output = g_memory_output_stream_new_resizable ();
  g_autoptr(GError) error = NULL;
  g_autofree char *data = NULL;
  guint64 n = 0;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  create_collection (f, "docs", DOCS_CONFIG);
  bp_qdrant_client_upsert_from_stream_async (f->client, "docs", input, 0, TRUE, NULL,
                                             result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_upsert_from_stream_finish (f->client, r, &n, &error));
  g_object_unref (r);
  g_assert_cmpuint (n, ==, 3);

  /* page size 1: next_page_offset is the u64 id itself */
  bp_qdrant_client_scroll_to_stream_async (f->client, "docs", NULL, 1, FALSE, FALSE, output,
                                           NULL, result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_scroll_to_stream_finish (f->client, r, &n, &error));
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 3);
  g_output_stream_close (output, NULL, NULL);
  data = g_strndup (g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (output)),
                    g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (output)));
  g_assert_nonnull (strstr (data, "{\"id\":18446744073709551615}\n"));
  g_assert_nonnull (strstr (data, "{\"id\":18446744073709551614}\n"));
  g_assert_nonnull (strstr (data, "{\"id\":\"550e8400-e29b-41d4-a716-446655440000\"}\n"));
}

static void
test_snapshots (Fixture       *f,
                gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *name = NULL;
  g_autofree char *none = (char *) 0x1;
  g_auto(GStrv) list = NULL;
  g_auto(GStrv) list2 = NULL;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  seed_docs (f);
  bp_qdrant_client_create_snapshot_async (f->client, "docs", TRUE, NULL, result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_create_snapshot_finish (f->client, r, &name, &error));
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_nonnull (name);
  g_assert_true (g_str_has_suffix (name, ".snapshot"));

  bp_qdrant_client_list_snapshots_async (f->client, "docs", NULL, result_cb, f);
  r = run (f);
  list = bp_qdrant_client_list_snapshots_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_true (g_strv_contains ((const char * const *) list, name));

  bp_qdrant_client_delete_snapshot_async (f->client, "docs", name, TRUE, NULL, result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_delete_snapshot_finish (f->client, r, &error));
  g_object_unref (r);
  g_assert_no_error (error);

  bp_qdrant_client_list_snapshots_async (f->client, "docs", NULL, result_cb, f);
  r = run (f);
  list2 = bp_qdrant_client_list_snapshots_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_false (g_strv_contains ((const char * const *) list2, name));

  /* deleting it again: 404 */
  bp_qdrant_client_delete_snapshot_async (f->client, "docs", name, TRUE, NULL, result_cb, f);
  r = run (f);
  g_assert_false (bp_qdrant_client_delete_snapshot_finish (f->client, r, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* wait=false: 202 {"status":"accepted"} without a result */
  bp_qdrant_client_create_snapshot_async (f->client, "docs", FALSE, NULL, result_cb, f);
  r = run (f);
  g_assert_true (bp_qdrant_client_create_snapshot_finish (f->client, r, &none, &error));
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_null (none);
}

static const FixtureConfig key_good = { "s3cret-key", NULL, NULL };
static const FixtureConfig key_bad = { "s3cret-key", "wrong-key", NULL };
static const FixtureConfig key_missing = { "s3cret-key", "", NULL };
static const FixtureConfig version_2 = { NULL, NULL, "2.0.0" };

static void
test_api_key_good (Fixture       *f,
                   gconstpointer  user_data)
{
  g_autoptr(JsonNode) log = NULL;
  JsonArray *requests;
  guint i;

  if (f->server == NULL)
    return;
  seed_docs (f);
  g_assert_cmpuint (count (f, "docs", NULL), ==, 4);

  log = test_api (f, "GET", "/__test/requests", NULL);
  requests = json_node_get_array (log);
  g_assert_cmpuint (json_array_get_length (requests), >=, 3);
  for (i = 0; i < json_array_get_length (requests); i++)
    {
      JsonObject *req = json_array_get_object_element (requests, i);
      JsonObject *headers = json_object_get_object_member (req, "headers");
      JsonObjectIter iter;
      const char *name;
      JsonNode *value;
      gboolean has_key = FALSE;

      json_object_iter_init (&iter, headers);
      while (json_object_iter_next (&iter, &name, &value))
        if (g_ascii_strcasecmp (name, "api-key") == 0)
          has_key = TRUE;
      g_assert_true (has_key);
      g_assert_cmpint (json_object_get_int_member (req, "status"), ==, 200);
    }
}

static void
test_api_key_bad (Fixture       *f,
                  gconstpointer  user_data)
{
  const FixtureConfig *config = user_data;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  bp_qdrant_client_list_collections_async (f->client, NULL, result_cb, f);
  r = run (f);
  names = bp_qdrant_client_list_collections_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_null (names);
  g_assert_error (error, BP_ERROR, BP_ERROR_PERMISSION_DENIED);
  if (config->client_key[0] == '\0')
    g_assert_cmpstr (error->message, ==,
                     "HTTP 401: Must provide an API key or an Authorization bearer token");
  else
    g_assert_cmpstr (error->message, ==, "HTTP 401: Invalid API key or JWT");
  g_assert_null (strstr (error->message, config->api_key));
  g_assert_false (bp_qdrant_error_is_retryable (error));
}

static void
test_rate_limit (Fixture       *f,
                 gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  GAsyncResult *r;
  guint64 n;

  if (f->server == NULL)
    return;
  seed_docs (f);
  add_fault (f, "{\"path_regex\":\"/points/count$\",\"kind\":\"429\",\"retry_after\":2,\"count\":1}");
  bp_qdrant_client_count_async (f->client, "docs", NULL, TRUE, NULL, result_cb, f);
  r = run (f);
  g_assert_false (bp_qdrant_client_count_finish (f->client, r, &n, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_true (g_str_has_prefix (error->message, "HTTP 429: Rate limiting exceeded"));
  g_assert_cmpint (bp_error_get_retry_after (error), ==, 2000);
  g_assert_true (bp_qdrant_error_is_retryable (error));

  /* the fault is spent: the next call goes through */
  g_assert_cmpuint (count (f, "docs", NULL), ==, 4);
}

static void
test_unavailable_503 (Fixture       *f,
                      gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  add_fault (f, "{\"path_regex\":\"^/collections$\",\"kind\":\"503\",\"count\":1}");
  bp_qdrant_client_list_collections_async (f->client, NULL, result_cb, f);
  r = run (f);
  g_assert_null (bp_qdrant_client_list_collections_finish (f->client, r, &error));
  g_object_unref (r);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_true (g_str_has_prefix (error->message, "HTTP 503: Shard temporarily unavailable"));
  g_assert_true (bp_qdrant_error_is_retryable (error));
}

static gboolean
tick_cb (gpointer user_data)
{
  guint *ticks = user_data;

  (*ticks)++;
  return G_SOURCE_CONTINUE;
}

static void
test_stall_timeout (Fixture       *f,
                    gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;
  gint64 start, elapsed;
  guint ticks = 0, tick_id;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  bp_qdrant_client_set_timeout_ms (f->client, 1000);
  add_fault (f, "{\"path_regex\":\"^/collections$\",\"kind\":\"stall\",\"stall_ms\":5000,\"count\":1}");

  tick_id = g_timeout_add (50, tick_cb, &ticks);
  start = g_get_monotonic_time ();
  bp_qdrant_client_list_collections_async (f->client, NULL, result_cb, f);
  r = run (f);
  elapsed = g_get_monotonic_time () - start;
  g_source_remove (tick_id);
  names = bp_qdrant_client_list_collections_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_null (names);
  g_assert_error (error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_cmpstr (error->message, ==, "Qdrant GET /collections timed out after 1000 ms");
  g_assert_true (bp_qdrant_error_is_retryable (error));
  g_clear_error (&error);
  /* the deadline, not the server, ended it (generous bounds for a loaded CI) */
  g_assert_cmpint (elapsed, >=, 900 * 1000);
  g_assert_cmpint (elapsed, <, 4000 * 1000);
  /* the main loop kept running meanwhile */
  g_assert_cmpuint (ticks, >=, 5);

  /* the same client works afterwards */
  bp_qdrant_client_set_timeout_ms (f->client, 30000);
  bp_qdrant_client_list_collections_async (f->client, NULL, result_cb, f);
  r = run (f);
  names = bp_qdrant_client_list_collections_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_no_error (error);
  g_assert_nonnull (names);
}

static void
test_drop (Fixture       *f,
           gconstpointer  user_data)
{
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  add_fault (f, "{\"path_regex\":\"^/collections$\",\"kind\":\"drop\",\"count\":5}");
  bp_qdrant_client_list_collections_async (f->client, NULL, result_cb, f);
  r = run (f);
  names = bp_qdrant_client_list_collections_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_null (names);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_true (g_str_has_prefix (error->message, "Qdrant at http://127.0.0.1:"));
  g_assert_true (bp_qdrant_error_is_retryable (error));
}

static void
test_connection_refused (Fixture       *f,
                         gconstpointer  user_data)
{
  g_autoptr(BpQdrantClient) dead = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  /* port 1 on loopback: nothing listens there */
  dead = bp_qdrant_client_new ("http://127.0.0.1:1/", NULL, &error);
  g_assert_no_error (error);
  bp_qdrant_client_list_collections_async (dead, NULL, result_cb, f);
  r = run (f);
  names = bp_qdrant_client_list_collections_finish (dead, r, &error);
  g_object_unref (r);
  g_assert_null (names);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
}

static void
test_cancel (Fixture       *f,
             gconstpointer  user_data)
{
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) names = NULL;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  add_fault (f, "{\"path_regex\":\"^/collections$\",\"kind\":\"stall\",\"stall_ms\":3000,\"count\":1}");
  bp_qdrant_client_list_collections_async (f->client, cancellable, result_cb, f);
  g_timeout_add_once (100, (GSourceOnceFunc) g_cancellable_cancel, cancellable);
  r = run (f);
  names = bp_qdrant_client_list_collections_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_null (names);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

static void
test_response_limit (Fixture       *f,
                     gconstpointer  user_data)
{
  BpQdrantLimits limits = *bp_qdrant_client_get_limits (f->client);
  g_autoptr(GError) error = NULL;
  g_autofree char *info = NULL;
  GAsyncResult *r;

  if (f->server == NULL)
    return;
  create_collection (f, "docs", DOCS_CONFIG);
  limits.max_response_bytes = 64;
  limits.max_line_bytes = 16;
  limits.max_request_bytes = 4096;
  g_assert_true (bp_qdrant_client_set_limits (f->client, &limits, NULL));
  bp_qdrant_client_get_collection_async (f->client, "docs", NULL, result_cb, f);
  r = run (f);
  info = bp_qdrant_client_get_collection_finish (f->client, r, &error);
  g_object_unref (r);
  g_assert_null (info);
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_assert_nonnull (strstr (error->message, "max-response-bytes (64)"));
}

static void
test_bad_url (void)
{
  const char * const bad[] = {
    "ftp://h/", "http://", "http://user:pw@h/", "http://h/?x=1", "http://h/#f", "not a url",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      BpQdrantClient *c = bp_qdrant_client_new (bad[i], NULL, &error);

      g_assert_null (c);
      g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
      g_assert_null (strstr (error->message, "pw"));
    }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(BpQdrantClient) c = bp_qdrant_client_new ("HTTPS://Example.org:6333/prefix//", "k", &error);

    g_assert_no_error (error);
    g_assert_cmpstr (bp_qdrant_client_get_url (c), ==, "https://Example.org:6333/prefix");
  }
  {
    g_autoptr(GError) error = NULL;
    BpQdrantClient *c = bp_qdrant_client_new ("http://h/", "bad\nkey", &error);

    g_assert_null (c);
    g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
    g_assert_null (strstr (error->message, "bad"));
  }
}

#define ADD(path, config, func) \
  g_test_add (path, Fixture, config, fixture_set_up, func, fixture_tear_down)

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/qdrant/client/bad-url", test_bad_url);
  ADD ("/qdrant/client/version/compatible", &plain_config, test_version);
  ADD ("/qdrant/client/version/incompatible", &version_2, test_version);
  ADD ("/qdrant/client/collections", &plain_config, test_collections);
  ADD ("/qdrant/client/invalid-input-sends-nothing", &plain_config, test_invalid_input_sends_nothing);
  ADD ("/qdrant/client/upsert-wait", &plain_config, test_upsert_wait);
  ADD ("/qdrant/client/ids-round-trip", &plain_config, test_ids);
  ADD ("/qdrant/client/query", &plain_config, test_query);
  ADD ("/qdrant/client/query-batch", &plain_config, test_query_batch);
  ADD ("/qdrant/client/delete", &plain_config, test_delete);
  ADD ("/qdrant/client/upsert-stream/100k", &plain_config, test_upsert_stream_100k);
  ADD ("/qdrant/client/upsert-stream/bad-line", &plain_config, test_upsert_stream_bad_line);
  ADD ("/qdrant/client/keep-alive", &plain_config, test_keep_alive);
  ADD ("/qdrant/client/upsert-stream/server-error", &plain_config, test_upsert_stream_server_error);
  ADD ("/qdrant/client/scroll/all-once", &plain_config, test_scroll);
  ADD ("/qdrant/client/scroll/u64-offsets", &plain_config, test_scroll_u64);
  ADD ("/qdrant/client/snapshots", &plain_config, test_snapshots);
  ADD ("/qdrant/client/api-key/good", &key_good, test_api_key_good);
  ADD ("/qdrant/client/api-key/wrong", &key_bad, test_api_key_bad);
  ADD ("/qdrant/client/api-key/missing", &key_missing, test_api_key_bad);
  ADD ("/qdrant/client/fault/429-retry-after", &plain_config, test_rate_limit);
  ADD ("/qdrant/client/fault/503", &plain_config, test_unavailable_503);
  ADD ("/qdrant/client/fault/stall-timeout", &plain_config, test_stall_timeout);
  ADD ("/qdrant/client/fault/drop", &plain_config, test_drop);
  ADD ("/qdrant/client/fault/connection-refused", &plain_config, test_connection_refused);
  ADD ("/qdrant/client/cancel", &plain_config, test_cancel);
  ADD ("/qdrant/client/response-limit", &plain_config, test_response_limit);

  return g_test_run ();
}
