/* test-qdrant-jsonl.c: JSON Lines batching of the Qdrant client
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-qdrant-jsonl.h"

/* A stream that hands out at most `chunk` bytes per read, to cross line
 * boundaries at every position. */
#define TEST_TYPE_TRICKLE_STREAM (test_trickle_stream_get_type ())
G_DECLARE_FINAL_TYPE (TestTrickleStream, test_trickle_stream, TEST, TRICKLE_STREAM, GFilterInputStream)

struct _TestTrickleStream
{
  GFilterInputStream parent_instance;
  gsize              chunk;
  guint              n_reads;
};

G_DEFINE_FINAL_TYPE (TestTrickleStream, test_trickle_stream, G_TYPE_FILTER_INPUT_STREAM)

static gssize
trickle_read (GInputStream  *stream,
              void          *buffer,
              gsize          count,
              GCancellable  *cancellable,
              GError       **error)
{
  TestTrickleStream *self = TEST_TRICKLE_STREAM (stream);
  GInputStream *base = g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (stream));

  self->n_reads++;
  return g_input_stream_read (base, buffer, MIN (count, self->chunk), cancellable, error);
}

static void
test_trickle_stream_class_init (TestTrickleStreamClass *klass)
{
  G_INPUT_STREAM_CLASS (klass)->read_fn = trickle_read;
}

static void
test_trickle_stream_init (TestTrickleStream *self)
{
}

static GInputStream *
trickle_new (const char *text,
             gsize       chunk)
{
  g_autoptr(GInputStream) base = g_memory_input_stream_new_from_data (g_strdup (text), -1, g_free);
  TestTrickleStream *s = g_object_new (TEST_TYPE_TRICKLE_STREAM, "base-stream", base, NULL);

  s->chunk = chunk;
  return G_INPUT_STREAM (s);
}

typedef struct
{
  GMainLoop *loop;
  GBytes    *body;
  guint      n;
  GError    *error;
  gboolean   ok;
} BatchResult;

static void
batch_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  BatchResult *r = user_data;

  r->ok = bp_qdrant_jsonl_reader_next_batch_finish (BP_QDRANT_JSONL_READER (object), result,
                                                    &r->body, &r->n, &r->error);
  g_main_loop_quit (r->loop);
}

/* Reads one batch, running the main loop until it is there. */
static gboolean
next_batch (BpQdrantJsonlReader  *reader,
            guint                 max_points,
            char                **body,
            guint                *n,
            GError              **error)
{
  BatchResult r = { g_main_loop_new (NULL, FALSE), NULL, 0, NULL, FALSE };

  bp_qdrant_jsonl_reader_next_batch_async (reader, max_points, NULL, batch_cb, &r);
  g_main_loop_run (r.loop);
  g_main_loop_unref (r.loop);
  *n = r.n;
  *body = r.body != NULL ? g_strndup (g_bytes_get_data (r.body, NULL), g_bytes_get_size (r.body))
                         : NULL;
  g_clear_pointer (&r.body, g_bytes_unref);
  if (r.error != NULL)
    g_propagate_error (error, r.error);
  return r.ok;
}

static void
test_batches (void)
{
  const char *text =
    "{\"id\":1,\"vector\":[1]}\n"
    "\n"
    "{\"id\":2,\"vector\":[2],\"payload\":{\"k\":\"v\"}}\r\n"
    "   \n"
    "{\"id\":18446744073709551615,\"vector\":[3]}\n"
    "{\"id\":\"550E8400-E29B-41D4-A716-446655440000\",\"vector\":[4]}\n"
    "{\"id\":5,\"vector\":[5]}";   /* no final newline */
  gsize chunks[] = { 1, 3, 7, 64 * 1024 };
  guint c;

  for (c = 0; c < G_N_ELEMENTS (chunks); c++)
    {
      BpQdrantLimits limits;
      g_autoptr(GInputStream) input = trickle_new (text, chunks[c]);
      g_autoptr(BpQdrantJsonlReader) reader = NULL;
      g_autoptr(GError) error = NULL;
      char *body;
      guint n;

      bp_qdrant_limits_init (&limits);
      reader = bp_qdrant_jsonl_reader_new (input, &limits);

      g_assert_true (next_batch (reader, 2, &body, &n, &error));
      g_assert_no_error (error);
      g_assert_cmpuint (n, ==, 2);
      g_assert_cmpstr (body, ==,
                       "{\"points\":[{\"id\":1,\"vector\":[1]},"
                       "{\"id\":2,\"vector\":[2],\"payload\":{\"k\":\"v\"}}]}");
      g_free (body);
      g_assert_cmpuint (bp_qdrant_jsonl_reader_get_line_number (reader), ==, 3);

      g_assert_true (next_batch (reader, 2, &body, &n, &error));
      g_assert_cmpuint (n, ==, 2);
      g_assert_cmpstr (body, ==,
                       "{\"points\":[{\"id\":18446744073709551615,\"vector\":[3]},"
                       "{\"id\":\"550e8400-e29b-41d4-a716-446655440000\",\"vector\":[4]}]}");
      g_free (body);

      g_assert_true (next_batch (reader, 2, &body, &n, &error));
      g_assert_cmpuint (n, ==, 1);
      g_assert_cmpstr (body, ==, "{\"points\":[{\"id\":5,\"vector\":[5]}]}");
      g_free (body);

      /* the end, twice */
      g_assert_true (next_batch (reader, 2, &body, &n, &error));
      g_assert_null (body);
      g_assert_cmpuint (n, ==, 0);
      g_assert_true (next_batch (reader, 2, &body, &n, &error));
      g_assert_null (body);
      g_assert_cmpuint (bp_qdrant_jsonl_reader_get_n_points (reader), ==, 5);
      g_assert_cmpuint (bp_qdrant_jsonl_reader_get_line_number (reader), ==, 7);
    }
}

static void
test_bad_line (void)
{
  const char *text =
    "{\"id\":1,\"vector\":[1]}\n"
    "{\"id\":2,\"vector\":[1]}\n"
    "{\"id\":3,\"vector\":[1]}\n"
    "\n"
    "{\"id\":\"x\",\"vector\":[1]}\n"
    "{\"id\":6,\"vector\":[1]}\n";
  BpQdrantLimits limits;
  g_autoptr(GInputStream) input = g_memory_input_stream_new_from_data (text, -1, NULL);
  BpQdrantJsonlReader *reader;
  g_autoptr(GError) error = NULL;
  char *body;
  guint n;

  bp_qdrant_limits_init (&limits);
  reader = bp_qdrant_jsonl_reader_new (input, &limits);
  g_assert_true (next_batch (reader, 2, &body, &n, &error));
  g_assert_cmpuint (n, ==, 2);
  g_free (body);

  g_assert_false (next_batch (reader, 2, &body, &n, &error));
  g_assert_null (body);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==,
                   "line 5: id: id 'x' is neither an unsigned 64-bit integer nor a UUID");
  g_clear_error (&error);

  /* stopped for good */
  g_assert_false (next_batch (reader, 2, &body, &n, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_FAILED);
  /* no batch task left holding it */
  g_assert_finalize_object (reader);
}

static void
test_line_too_long (void)
{
  BpQdrantLimits limits;
  g_autoptr(GString) text = g_string_new ("{\"id\":1,\"vector\":[1]}\n{\"id\":2,\"vector\":[");
  g_autoptr(GInputStream) input = NULL;
  BpQdrantJsonlReader *reader;
  g_autoptr(GError) error = NULL;
  char *body;
  guint n, i;

  /* The second line never ends: the reader must stop at the bound, not
   * buffer the whole stream. */
  for (i = 0; i < 200000; i++)
    g_string_append (text, "1,");
  input = g_memory_input_stream_new_from_data (g_strdup (text->str), (gssize) text->len, g_free);
  bp_qdrant_limits_init (&limits);
  limits.max_line_bytes = 1000;
  reader = bp_qdrant_jsonl_reader_new (input, &limits);

  g_assert_false (next_batch (reader, 10, &body, &n, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_assert_cmpstr (error->message, ==, "line 2: longer than max-line-bytes (1000)");
  /* no batch task left holding it */
  g_assert_finalize_object (reader);
}

static void
test_complete_line_too_long (void)
{
  BpQdrantLimits limits;
  g_autoptr(GString) text = g_string_new ("{\"id\":1,\"vector\":[1]}\n{\"id\":2,\"vector\":[1");
  g_autoptr(GInputStream) input = NULL;
  BpQdrantJsonlReader *reader;
  g_autoptr(GError) error = NULL;
  char *body;
  guint n, i;

  for (i = 0; i < 100; i++)
    g_string_append (text, ",1");
  g_string_append (text, "]}\n");
  input = g_memory_input_stream_new_from_data (g_strdup (text->str), (gssize) text->len, g_free);
  bp_qdrant_limits_init (&limits);
  limits.max_line_bytes = 100;
  reader = bp_qdrant_jsonl_reader_new (input, &limits);

  g_assert_false (next_batch (reader, 10, &body, &n, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_assert_cmpstr (error->message, ==, "line 2: line longer than max-line-bytes (100)");
  /* no batch task left holding it */
  g_assert_finalize_object (reader);
}

static void
test_split_by_bytes (void)
{
  BpQdrantLimits limits;
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GInputStream) input = NULL;
  BpQdrantJsonlReader *reader;
  g_autoptr(GError) error = NULL;
  guint64 total = 0;
  guint batches = 0;
  guint i;

  for (i = 0; i < 50; i++)
    g_string_append_printf (text, "{\"id\":%u,\"vector\":[1,2,3],\"payload\":{\"pad\":\"%s\"}}\n",
                            i, "0123456789012345678901234567890123456789");
  input = g_memory_input_stream_new_from_data (g_strdup (text->str), (gssize) text->len, g_free);
  bp_qdrant_limits_init (&limits);
  limits.max_line_bytes = 200;
  limits.max_request_bytes = 400; /* about four points */
  reader = bp_qdrant_jsonl_reader_new (input, &limits);

  for (;;)
    {
      char *body;
      guint n;

      g_assert_true (next_batch (reader, 1000, &body, &n, &error));
      g_assert_no_error (error);
      if (body == NULL)
        break;
      g_assert_cmpuint (strlen (body), <=, limits.max_request_bytes);
      g_assert_cmpuint (n, >=, 1);
      g_assert_true (g_str_has_prefix (body, "{\"points\":["));
      g_assert_true (g_str_has_suffix (body, "]}"));
      total += n;
      batches++;
      g_free (body);
    }
  g_assert_cmpuint (total, ==, 50);
  g_assert_cmpuint (batches, >, 10);
  /* no batch task left holding it */
  g_assert_finalize_object (reader);
}

static void
test_empty_input (void)
{
  BpQdrantLimits limits;
  g_autoptr(GInputStream) input = g_memory_input_stream_new_from_data ("\n\n  \n", -1, NULL);
  BpQdrantJsonlReader *reader;
  char *body;
  guint n;

  bp_qdrant_limits_init (&limits);
  reader = bp_qdrant_jsonl_reader_new (input, &limits);
  g_assert_true (next_batch (reader, 5, &body, &n, NULL));
  g_assert_null (body);
  g_assert_cmpuint (n, ==, 0);
  /* no batch task left holding it */
  g_assert_finalize_object (reader);
}

static void
cancelled_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  BatchResult *r = user_data;

  r->ok = bp_qdrant_jsonl_reader_next_batch_finish (BP_QDRANT_JSONL_READER (object), result,
                                                    &r->body, &r->n, &r->error);
  g_main_loop_quit (r->loop);
}

static void
test_cancelled (void)
{
  BpQdrantLimits limits;
  g_autoptr(GInputStream) input = trickle_new ("{\"id\":1,\"vector\":[1]}\n", 2);
  BpQdrantJsonlReader *reader;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  BatchResult r = { g_main_loop_new (NULL, FALSE), NULL, 0, NULL, FALSE };

  bp_qdrant_limits_init (&limits);
  reader = bp_qdrant_jsonl_reader_new (input, &limits);
  g_cancellable_cancel (cancellable);
  bp_qdrant_jsonl_reader_next_batch_async (reader, 5, cancellable, cancelled_cb, &r);
  g_main_loop_run (r.loop);
  g_main_loop_unref (r.loop);
  g_assert_false (r.ok);
  g_assert_error (r.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&r.error);
  /* no batch task left holding it */
  g_assert_finalize_object (reader);
}

/* ScrollToFd's output (header, points, end line) upserts again. */
static void
test_scroll_framing (void)
{
  const char *text =
    "{\"collection\":\"docs\",\"with_payload\":true,\"with_vector\":true}\n"
    "{\"id\":1,\"payload\":{\"a\":1},\"vector\":[0.5,1]}\n"
    "{\"id\":\"550e8400-e29b-41d4-a716-446655440000\",\"payload\":{},\"vector\":[1,2]}\n"
    "{\"end\":{\"points\":2}}\n"
    "\n";
  BpQdrantLimits limits;
  g_autoptr(GInputStream) input = trickle_new (text, 7);
  g_autoptr(BpQdrantJsonlReader) reader = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *body = NULL;
  g_autofree char *end = NULL;
  guint n = 0;

  bp_qdrant_limits_init (&limits);
  reader = bp_qdrant_jsonl_reader_new (input, &limits);
  g_assert_true (next_batch (reader, 10, &body, &n, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpstr (body, ==,
                   "{\"points\":[{\"id\":1,\"vector\":[0.5,1],\"payload\":{\"a\":1}},"
                   "{\"id\":\"550e8400-e29b-41d4-a716-446655440000\",\"vector\":[1,2],\"payload\":{}}]}");
  g_assert_true (next_batch (reader, 10, &end, &n, &error));
  g_assert_null (end);

  /* a point after the end line */
  {
    g_autoptr(GInputStream) in2 = trickle_new ("{\"id\":1,\"vector\":[1]}\n{\"end\":{\"points\":1}}\n"
                                               "{\"id\":2,\"vector\":[1]}\n", 1000);
    g_autoptr(BpQdrantJsonlReader) r2 = bp_qdrant_jsonl_reader_new (in2, &limits);
    g_autofree char *b2 = NULL;

    g_assert_false (next_batch (r2, 10, &b2, &n, &error));
    g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr (error->message, ==, "line 3: a line after the end line");
    g_clear_error (&error);
  }
  /* a scroll that failed: its error stops the upsert */
  {
    g_autoptr(GInputStream) in3 =
      trickle_new ("{\"collection\":\"docs\"}\n{\"id\":1,\"vector\":[1]}\n"
                   "{\"error\":{\"name\":\"org.backplane.Backplane1.Error.Unavailable\","
                   "\"message\":\"HTTP 503: gone\"}}\n", 1000);
    g_autoptr(BpQdrantJsonlReader) r3 = bp_qdrant_jsonl_reader_new (in3, &limits);
    g_autofree char *b3 = NULL;

    g_assert_false (next_batch (r3, 10, &b3, &n, &error));
    g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr (error->message, ==, "line 3: the input ends with an error line: HTTP 503: gone");
    g_clear_error (&error);
  }
  /* a header is only a header on the first line */
  {
    g_autoptr(GInputStream) in4 = trickle_new ("{\"id\":1,\"vector\":[1]}\n{\"collection\":\"docs\"}\n", 1000);
    g_autoptr(BpQdrantJsonlReader) r4 = bp_qdrant_jsonl_reader_new (in4, &limits);
    g_autofree char *b4 = NULL;

    g_assert_false (next_batch (r4, 10, &b4, &n, &error));
    g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
    g_assert_true (g_str_has_prefix (error->message, "line 2: "));
  }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/qdrant/jsonl/batches", test_batches);
  g_test_add_func ("/qdrant/jsonl/bad-line", test_bad_line);
  g_test_add_func ("/qdrant/jsonl/line-too-long", test_line_too_long);
  g_test_add_func ("/qdrant/jsonl/complete-line-too-long", test_complete_line_too_long);
  g_test_add_func ("/qdrant/jsonl/split-by-bytes", test_split_by_bytes);
  g_test_add_func ("/qdrant/jsonl/empty-input", test_empty_input);
  g_test_add_func ("/qdrant/jsonl/cancelled", test_cancelled);
  g_test_add_func ("/qdrant/jsonl/scroll-framing", test_scroll_framing);

  return g_test_run ();
}
