/* fuzz-qdrant-json.c: fuzz target for what the Qdrant client decodes
 *
 * Feeds one input through every decoder of untrusted bytes in
 * plugins/qdrant: the strict JSON scanner and its id rewrite, the response
 * envelope for success and error statuses, the readers of hits, records
 * and scroll pages, the JSON Lines point reader (line by line and through
 * BpQdrantJsonlReader with tiny limits), the validators of filters,
 * collection configs and payloads, ids, and Retry-After / version text.
 * Invariants are checked with abort() so libFuzzer reports them.
 *
 * Built as a libFuzzer target with -Dfuzzing=true (clang), and always with
 * the plain tests/fuzz/fuzz-driver.c as a fixed-iteration meson test.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bp-qdrant-jsonl.h"

int LLVMFuzzerTestOneInput (const guint8 *data,
                            size_t        size);

#define CHECK(cond)                                                     \
  G_STMT_START {                                                        \
    if (!(cond))                                                        \
      {                                                                 \
        g_printerr ("fuzz-qdrant-json: invariant failed: %s (%s:%d)\n", \
                    #cond, __FILE__, __LINE__);                         \
        abort ();                                                       \
      }                                                                 \
  } G_STMT_END

static void
check_error (GError *error)
{
  CHECK (error != NULL);
  CHECK (error->domain == BP_ERROR);
  CHECK (g_utf8_validate (error->message, -1, NULL));
  CHECK (strlen (error->message) < 4096);
}

static void
check_utf8 (const char *s)
{
  CHECK (s == NULL || g_utf8_validate (s, -1, NULL));
}

static void
check_hits (GPtrArray *hits)
{
  guint i;

  for (i = 0; i < hits->len; i++)
    {
      BpQdrantHit *h = g_ptr_array_index (hits, i);

      CHECK (bp_qdrant_id_normalize (h->id, -1, NULL, NULL, NULL));
      check_utf8 (h->payload_json);
      if (h->payload_json != NULL)
        CHECK (bp_qdrant_json_scan (h->payload_json, strlen (h->payload_json), 1024, NULL,
                                    NULL, NULL, NULL));
    }
}

static void
decode_response (const char         *text,
                 gsize               len,
                 guint               status,
                 const char * const *id_paths)
{
  g_autoptr(JsonNode) result = NULL;
  g_autofree char *st = NULL;
  g_autoptr(GError) error = NULL;
  JsonNode *points;

  if (!bp_qdrant_response_parse (status, "Reason", "2", text, len, TRUE, 32, id_paths,
                                 &result, &st, &error))
    {
      check_error (error);
      CHECK (result == NULL);
      return;
    }
  CHECK (status >= 200 && status < 300);
  check_utf8 (st);
  if (result == NULL)
    return;

  points = JSON_NODE_HOLDS_OBJECT (result)
             ? json_object_get_member (json_node_get_object (result), "points")
             : NULL;
  if (points != NULL)
    {
      g_autoptr(GPtrArray) hits = bp_qdrant_hits_from_node (points, &error);

      if (hits != NULL)
        check_hits (hits);
      else
        check_error (error);
      g_clear_error (&error);

      if (JSON_NODE_HOLDS_ARRAY (points))
        {
          JsonArray *array = json_node_get_array (points);
          g_autoptr(GString) lines = g_string_new (NULL);
          guint i;

          for (i = 0; i < json_array_get_length (array); i++)
            {
              gsize mark = lines->len;

              if (!bp_qdrant_record_write_line (lines, json_array_get_element (array, i), &error))
                {
                  check_error (error);
                  g_clear_error (&error);
                  g_string_truncate (lines, mark);
                  continue;
                }
              /* A line written for the scroll stream reads back strictly. */
              CHECK (bp_qdrant_json_scan (lines->str + mark, lines->len - mark - 1, 1024, NULL,
                                          NULL, NULL, NULL));
            }
        }
    }
  {
    g_autoptr(GPtrArray) records = bp_qdrant_points_from_node (result, &error);

    if (records != NULL)
      {
        guint i;

        for (i = 0; i < records->len; i++)
          {
            BpQdrantPoint *p = g_ptr_array_index (records, i);

            CHECK (bp_qdrant_id_normalize (p->id, -1, NULL, NULL, NULL));
            check_utf8 (p->payload_json);
          }
      }
    else
      check_error (error);
  }
}

/* state: -1 while pending, 0 for a batch, 1 at the end or an error */
static void
batch_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  int *state = user_data;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GError) error = NULL;
  guint n = 0;

  if (bp_qdrant_jsonl_reader_next_batch_finish (BP_QDRANT_JSONL_READER (object), result,
                                                &body, &n, &error))
    {
      if (body != NULL)
        {
          CHECK (n > 0);
          /* every batch body is strict JSON within the request bound */
          CHECK (g_bytes_get_size (body) <= 512);
          CHECK (bp_qdrant_json_scan (g_bytes_get_data (body, NULL), g_bytes_get_size (body),
                                      1024, NULL, NULL, NULL, NULL));
        }
      *state = body == NULL;
    }
  else
    {
      check_error (error);
      *state = 1;
    }
}

static void
decode_jsonl_stream (const guint8 *data,
                     size_t        size)
{
  BpQdrantLimits limits;
  g_autoptr(GInputStream) input = g_memory_input_stream_new_from_data (data, (gssize) size, NULL);
  g_autoptr(BpQdrantJsonlReader) reader = NULL;
  guint rounds;

  bp_qdrant_limits_init (&limits);
  limits.max_line_bytes = 256;
  limits.max_request_bytes = 512;
  limits.max_vector_dim = 16;
  limits.max_json_depth = 16;
  reader = bp_qdrant_jsonl_reader_new (input, &limits);
  for (rounds = 0; rounds < 100000; rounds++)
    {
      int state = -1;

      bp_qdrant_jsonl_reader_next_batch_async (reader, 3, NULL, batch_cb, &state);
      while (state < 0)
        g_main_context_iteration (NULL, TRUE);
      if (state == 1)
        break;
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  const char *text = size > 0 ? (const char *) data : "";
  g_autofree char *nul = g_strndup (text, size);
  BpQdrantLimits limits;

  if (size > 1024 * 1024)
    return 0;
  bp_qdrant_limits_init (&limits);
  limits.max_vector_dim = 64;
  limits.max_json_depth = 32;

  /* the scanner and json-glib agree on what the scanner accepts */
  {
    GString *rewritten = NULL;
    g_autoptr(GArray) members = g_array_new (FALSE, FALSE, sizeof (BpQdrantJsonMember));
    g_autoptr(GError) error = NULL;

    /* Without id paths, each top-level member is itself a valid document. */
    if (bp_qdrant_json_scan (text, size, 32, NULL, NULL, members, NULL))
      {
        guint i;

        for (i = 0; i < members->len; i++)
          {
            BpQdrantJsonMember *m = &g_array_index (members, BpQdrantJsonMember, i);

            CHECK (m->start < m->end && m->end <= size);
            CHECK (bp_qdrant_json_scan (text + m->start, m->end - m->start, 32, NULL, NULL,
                                        NULL, NULL));
          }
      }
    else
      CHECK (members->len == 0);

    if (bp_qdrant_json_scan (text, size, 32, bp_qdrant_id_paths_points, &rewritten, NULL,
                             &error))
      {
        g_autoptr(JsonParser) parser = json_parser_new ();
        const char *t = rewritten != NULL ? rewritten->str : text;
        gsize n = rewritten != NULL ? rewritten->len : size;

        CHECK (json_parser_load_from_data (parser, t, (gssize) n, NULL));
        CHECK (bp_qdrant_json_scan (t, n, 32, NULL, NULL, NULL, NULL));
        if (rewritten != NULL)
          g_string_free (rewritten, TRUE);
      }
    else
      {
        check_error (error);
        CHECK (rewritten == NULL);
      }
  }

  decode_response (text, size, 200, bp_qdrant_id_paths_points);
  decode_response (text, size, 200, bp_qdrant_id_paths_records);
  decode_response (text, size, 200, bp_qdrant_id_paths_batch);
  decode_response (text, size, 404, NULL);
  decode_response (text, size, 429, NULL);
  {
    g_autoptr(JsonNode) root = NULL;
    g_autoptr(GError) error = NULL;

    if (!bp_qdrant_response_parse (200, NULL, NULL, text, size, FALSE, 32, NULL, &root, NULL,
                                   &error))
      check_error (error);
  }

  /* one JSON Lines point */
  {
    g_autoptr(GString) out = g_string_new ("x");
    g_autoptr(GError) error = NULL;

    if (bp_qdrant_jsonl_line_to_point (text, size, &limits, out, &error))
      CHECK (bp_qdrant_json_scan (out->str + 1, out->len - 1, 64, NULL, NULL, NULL, NULL));
    else
      {
        check_error (error);
        CHECK (out->len == 1);
      }
  }
  decode_jsonl_stream (data, size);

  /* caller-side validators take NUL-terminated text */
  {
    g_autoptr(GError) e1 = NULL;
    g_autoptr(GError) e2 = NULL;
    g_autoptr(GError) e3 = NULL;
    g_autoptr(GError) e4 = NULL;
    g_autofree char *id = NULL;

    if (!bp_qdrant_filter_validate (nul, 32, "filter", &e1))
      check_error (e1);
    if (!bp_qdrant_collection_config_validate (nul, &limits, &e2))
      check_error (e2);
    if (!bp_qdrant_payload_validate (nul, 32, "payload", &e3))
      check_error (e3);
    if (bp_qdrant_id_normalize (text, (gssize) size, &id, NULL, &e4))
      CHECK (bp_qdrant_id_normalize (id, -1, NULL, NULL, NULL));
    else
      check_error (e4);
    (void) bp_qdrant_retry_after_parse (nul, NULL);
    (void) bp_qdrant_version_check (nul, 1, 19, NULL);
    (void) bp_qdrant_name_validate (nul, "collection", NULL);
  }
  return 0;
}
