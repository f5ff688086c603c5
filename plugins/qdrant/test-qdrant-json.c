/* test-qdrant-json.c: ids, the strict scanner, validation, request bodies
 * and the response envelope of the Qdrant client (pure code, no I/O)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "bp-qdrant-point.h"

/* ------------------------------------------------------------------ ids */

static void
assert_id (const char *in,
           const char *expected,
           gboolean    expected_uuid)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  gboolean is_uuid = !expected_uuid;

  g_assert_true (bp_qdrant_id_normalize (in, -1, &out, &is_uuid, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (out, ==, expected);
  g_assert_cmpint (is_uuid, ==, expected_uuid);
}

static void
assert_bad_id (const char *in)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *expected = NULL;

  g_assert_false (bp_qdrant_id_normalize (in, -1, &out, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_null (out);
  expected = g_strdup_printf ("id '%s' is neither an unsigned 64-bit integer nor a UUID", in);
  g_assert_cmpstr (error->message, ==, expected);
}

static void
test_id_integers (void)
{
  guint64 v = 0;

  assert_id ("0", "0", FALSE);
  assert_id ("42", "42", FALSE);
  assert_id ("007", "7", FALSE);
  assert_id ("9223372036854775807", "9223372036854775807", FALSE);
  assert_id ("9223372036854775808", "9223372036854775808", FALSE);
  assert_id ("18446744073709551615", "18446744073709551615", FALSE);

  g_assert_true (bp_qdrant_id_parse_u64 ("18446744073709551615", 20, &v));
  g_assert_cmpuint (v, ==, G_MAXUINT64);
  g_assert_true (bp_qdrant_id_parse_u64 ("9223372036854775808", 19, &v));
  g_assert_cmpuint (v, ==, G_GUINT64_CONSTANT (9223372036854775808));
  g_assert_false (bp_qdrant_id_parse_u64 ("18446744073709551616", 20, &v));
  g_assert_false (bp_qdrant_id_parse_u64 ("", 0, &v));

  assert_bad_id ("18446744073709551616");
  assert_bad_id ("99999999999999999999999");
  assert_bad_id ("-1");
  assert_bad_id ("-0");
  assert_bad_id ("+1");
  assert_bad_id ("1e3");
  assert_bad_id ("1.0");
  assert_bad_id (" 1");
  assert_bad_id ("1 ");
  assert_bad_id ("0x10");
  assert_bad_id ("");
  assert_bad_id ("abc");
}

static void
test_id_uuids (void)
{
  const char *canonical = "550e8400-e29b-41d4-a716-446655440000";

  assert_id ("550e8400-e29b-41d4-a716-446655440000", canonical, TRUE);
  assert_id ("550E8400-E29B-41D4-A716-446655440000", canonical, TRUE);
  assert_id ("550e8400E29B41d4A716446655440000", canonical, TRUE);
  assert_id ("{550e8400-e29b-41d4-a716-446655440000}", canonical, TRUE);
  assert_id ("urn:uuid:550E8400-e29b-41d4-a716-446655440000", canonical, TRUE);
  assert_id ("URN:UUID:550e8400-e29b-41d4-a716-446655440000", canonical, TRUE);

  assert_bad_id ("550e8400-e29b-41d4-a716-44665544000g");
  assert_bad_id ("550e8400-e29b-41d4-a716-4466554400000");
  assert_bad_id ("550e8400e29b-41d4-a716-446655440000");
  assert_bad_id ("550e8400-e29b-41d4-a716_446655440000");
  assert_bad_id ("{550e8400-e29b-41d4-a716-446655440000");
  assert_bad_id ("550e8400-e29b-41d4-a716-44665544000");
}

static void
test_id_message_sanitized (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *long_id = g_strnfill (500, 'x');

  g_assert_false (bp_qdrant_id_normalize ("a\nb\x01", -1, NULL, NULL, &error));
  g_assert_cmpstr (error->message, ==,
                   "id 'a b ' is neither an unsigned 64-bit integer nor a UUID");
  g_clear_error (&error);

  g_assert_false (bp_qdrant_id_normalize ("\xff\xfe", -1, NULL, NULL, &error));
  g_assert_true (g_utf8_validate (error->message, -1, NULL));
  g_clear_error (&error);

  g_assert_false (bp_qdrant_id_normalize (long_id, -1, NULL, NULL, &error));
  g_assert_cmpuint (strlen (error->message), <, 200);
}

static void
test_id_append (void)
{
  g_autoptr(GString) s = g_string_new (NULL);

  bp_qdrant_json_append_id (s, "18446744073709551615");
  g_string_append_c (s, ',');
  bp_qdrant_json_append_id (s, "0");
  g_string_append_c (s, ',');
  bp_qdrant_json_append_id (s, "550e8400-e29b-41d4-a716-446655440000");
  g_assert_cmpstr (s->str, ==,
                   "18446744073709551615,0,\"550e8400-e29b-41d4-a716-446655440000\"");
}

/* json-glib itself is what the scanner works around; pin its behaviour. */
static void
test_json_glib_wraps (void)
{
  g_autoptr(JsonParser) parser = json_parser_new ();

  g_assert_true (json_parser_load_from_data (parser, "[18446744073709551615]", -1, NULL));
  g_assert_cmpint (json_array_get_int_element (
                     json_node_get_array (json_parser_get_root (parser)), 0), ==, -1);
}

/* -------------------------------------------------------------- scanner */

static void
assert_scan_fails (const char *text,
                   gssize      len,
                   int         code)
{
  g_autoptr(GError) error = NULL;

  if (len < 0)
    len = (gssize) strlen (text);
  g_assert_false (bp_qdrant_json_scan (text, (gsize) len, 64, NULL, NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, code);
}

static void
test_scan_strict (void)
{
  const char * const good[] = {
    "0", "-0", "1.5e-3", "1E+2", "\"\"", "\"\\u00e9\\ud83d\\ude00\\/\"", "true",
    "false", "null", " [ ] ", "{}", "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}",
    "\"é😀\"", "123456789012345678901234567890",
  };
  const char * const bad[] = {
    "", " ", "/*c*/[1]", "'x'", "[01]", "[1.]", "[.5]", "[1e]", "[-]", "[1,]",
    "{\"a\":1,}", "{a:1}", "{\"a\" 1}", "[1] x", "1 2", "\"\\ud800\"",
    "\"\\udc00x\"", "\"\\ud800\\u0041\"", "\"a\\u0000b\"", "\"\\x\"", "\"\t\"",
    "tru", "nul", "[", "{\"a\":", "\"abc", "[1}", "{\"a\":1]", "NaN", "Infinity",
    "+1", "0x1", "1e999", "[-1e400]", "{\"a\":1e309}",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (bp_qdrant_json_scan (good[i], strlen (good[i]), 64, NULL, NULL, NULL, &error));
      g_assert_no_error (error);
    }
  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_message ("bad: %s", bad[i]);
      assert_scan_fails (bad[i], -1, BP_ERROR_INVALID_ARGUMENT);
    }
  /* a NUL byte, invalid UTF-8 */
  assert_scan_fails ("[1,\0 2]", 7, BP_ERROR_INVALID_ARGUMENT);
  assert_scan_fails ("\"\xc3\x28\"", -1, BP_ERROR_INVALID_ARGUMENT);
}

static void
test_scan_depth (void)
{
  g_autoptr(GError) error = NULL;
  gsize n = 1000000;
  g_autofree char *deep = g_malloc (n);
  g_autofree char *ok = g_strdup ("[[[[\"x\"]]]]");

  /* A million '[' must fail fast on the bound, not blow the stack. */
  memset (deep, '[', n);
  g_assert_false (bp_qdrant_json_scan (deep, n, 64, NULL, NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);

  g_assert_true (bp_qdrant_json_scan (ok, strlen (ok), 4, NULL, NULL, NULL, &error));
  g_assert_false (bp_qdrant_json_scan (ok, strlen (ok), 3, NULL, NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
}

static void
test_scan_rewrite (void)
{
  const char *text =
    "{\"result\":{\"points\":[{\"id\":18446744073709551615,\"payload\":{\"id\":7,"
    "\"big\":18446744073709551615,\"neg\":-9223372036854775809,\"max\":9223372036854775807}},"
    "{\"id\":\"550e8400-e29b-41d4-a716-446655440000\"},{\"id\":1.5}],"
    "\"next_page_offset\":9223372036854775808},\"status\":\"ok\"}";
  const char *expected =
    "{\"result\":{\"points\":[{\"id\":\"18446744073709551615\",\"payload\":{\"id\":7,"
    "\"big\":18446744073709551615.0,\"neg\":-9223372036854775809.0,\"max\":9223372036854775807}},"
    "{\"id\":\"550e8400-e29b-41d4-a716-446655440000\"},{\"id\":\"1.5\"}],"
    "\"next_page_offset\":\"9223372036854775808\"},\"status\":\"ok\"}";
  g_autoptr(GError) error = NULL;
  GString *out = NULL;

  g_assert_true (bp_qdrant_json_scan (text, strlen (text), 64, bp_qdrant_id_paths_points,
                                      &out, NULL, &error));
  g_assert_no_error (error);
  g_assert_nonnull (out);
  g_assert_cmpstr (out->str, ==, expected);
  g_string_free (out, TRUE);

  /* Nothing to rewrite: no copy. */
  g_assert_true (bp_qdrant_json_scan ("{\"a\":1}", 7, 64, bp_qdrant_id_paths_points, &out,
                                      NULL, &error));
  g_assert_null (out);
}

static void
test_parse_ids_exact (void)
{
  const char *text =
    "{\"result\":[{\"id\":18446744073709551615},{\"id\":9223372036854775808},"
    "{\"id\":0},{\"id\":\"550E8400-E29B-41D4-A716-446655440000\"},{\"i\\u0064\":5},"
    "{\"id\":-1},{\"id\":1e3}],\"status\":\"ok\",\"time\":0.1}";
  const char * const expected[] = {
    "18446744073709551615", "9223372036854775808", "0",
    "550e8400-e29b-41d4-a716-446655440000", "5", NULL, NULL,
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonArray *array;
  guint i;

  root = bp_qdrant_json_parse (text, strlen (text), 64, bp_qdrant_id_paths_records, &error);
  g_assert_no_error (error);
  array = json_node_get_array (json_object_get_member (json_node_get_object (root), "result"));
  g_assert_cmpuint (json_array_get_length (array), ==, G_N_ELEMENTS (expected));
  for (i = 0; i < G_N_ELEMENTS (expected); i++)
    {
      JsonObject *obj = json_array_get_object_element (array, i);
      g_autofree char *id = NULL;
      g_autoptr(GError) local = NULL;
      gboolean ok = bp_qdrant_json_node_dup_id (json_object_get_member (obj, "id"), &id, &local);

      if (expected[i] != NULL)
        {
          g_assert_no_error (local);
          g_assert_true (ok);
          g_assert_cmpstr (id, ==, expected[i]);
        }
      else
        {
          g_assert_false (ok);
          g_assert_error (local, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
        }
    }
}

static void
test_scan_members (void)
{
  const char *text = " { \"id\" : 1 , \"vector\":[1,2], \"payload\" : {\"a\":[{}]} ,\"x\":\"y\"} ";
  g_autoptr(GArray) members = g_array_new (FALSE, FALSE, sizeof (BpQdrantJsonMember));
  const char * const keys[] = { "id", "vector", "payload", "x" };
  const char * const values[] = { "1", "[1,2]", "{\"a\":[{}]}", "\"y\"" };
  guint i;

  g_assert_true (bp_qdrant_json_scan (text, strlen (text), 64, NULL, NULL, members, NULL));
  g_assert_cmpuint (members->len, ==, 4);
  for (i = 0; i < 4; i++)
    {
      BpQdrantJsonMember *m = &g_array_index (members, BpQdrantJsonMember, i);
      g_autofree char *key = g_strndup (m->key, m->key_len);
      g_autofree char *value = g_strndup (text + m->start, m->end - m->start);

      g_assert_cmpstr (key, ==, keys[i]);
      g_assert_cmpstr (value, ==, values[i]);
    }

  /* A top-level array has no members. */
  g_array_set_size (members, 0);
  g_assert_true (bp_qdrant_json_scan ("[{\"a\":1},[2]]", 13, 64, NULL, NULL, members, NULL));
  g_assert_cmpuint (members->len, ==, 0);
}

static void
test_append_double (void)
{
  g_autoptr(GString) s = g_string_new (NULL);

  g_assert_true (bp_qdrant_json_append_double (s, 0.1));
  g_string_append_c (s, ',');
  g_assert_true (bp_qdrant_json_append_double (s, 1.0 / 3.0));
  g_string_append_c (s, ',');
  g_assert_true (bp_qdrant_json_append_double (s, -2));
  g_string_append_c (s, ',');
  g_assert_true (bp_qdrant_json_append_double (s, 1e300));
  g_assert_cmpstr (s->str, ==, "0.1,0.3333333333333333,-2,1e+300");
  g_assert_false (bp_qdrant_json_append_double (s, NAN));
  g_assert_false (bp_qdrant_json_append_double (s, INFINITY));

  /* short decimals are written as such (without printf) */
  {
    const struct { double v; const char *text; } cases[] = {
      { 0.0, "0" }, { -0.0, "-0" }, { 42, "42" }, { -0.5, "-0.5" }, { 0.000001, "0.000001" },
      { -0.123456, "-0.123456" }, { 123456.789, "123456.789" }, { 0.000000001, "0.000000001" },
      { 1e-10, "1e-10" }, { 1e15, "1e+15" }, { 999999999999999.0, "999999999999999" },
    };

    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        g_string_truncate (s, 0);
        g_assert_true (bp_qdrant_json_append_double (s, cases[i].v));
        g_assert_cmpstr (s->str, ==, cases[i].text);
      }
  }

  /* every finite double reads back exactly */
  {
    GRand *rand = g_rand_new_with_seed (7);

    for (guint i = 0; i < 200000; i++)
      {
        double v;

        switch (i % 4)
          {
          case 0: /* a decimal with up to nine fractional digits */
            v = (double) g_rand_int_range (rand, -2000000000, 2000000000) /
                pow (10, g_rand_int_range (rand, 0, 10));
            break;
          case 1: /* a float32 widened, as embeddings come */
            v = (float) g_rand_double_range (rand, -1, 1);
            break;
          case 2: /* any bit pattern */
            {
              guint64 bits = ((guint64) g_rand_int (rand) << 32) | g_rand_int (rand);

              memcpy (&v, &bits, sizeof v);
              if (!isfinite (v))
                continue;
            }
            break;
          default:
            v = g_rand_double_range (rand, -1e6, 1e6);
          }
        g_string_truncate (s, 0);
        g_assert_true (bp_qdrant_json_append_double (s, v));
        if (g_ascii_strtod (s->str, NULL) != v || signbit (g_ascii_strtod (s->str, NULL)) != signbit (v))
          g_error ("%.17g written as %s", v, s->str);
      }
    g_rand_free (rand);
  }
}

static void
test_append_string (void)
{
  g_autoptr(GString) s = g_string_new (NULL);
  g_autoptr(JsonNode) back = NULL;
  const char *in = "a\"b\\c\n\t\x01é";

  bp_qdrant_json_append_string (s, in);
  g_assert_cmpstr (s->str, ==, "\"a\\\"b\\\\c\\n\\t\\u0001é\"");
  back = bp_qdrant_json_parse (s->str, s->len, 4, NULL, NULL);
  g_assert_cmpstr (json_node_get_string (back), ==, in);
}

/* ----------------------------------------------------------- validation */

static void
assert_invalid (gboolean    ok,
                GError     *error,
                const char *message)
{
  g_assert_false (ok);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  if (message != NULL)
    g_assert_cmpstr (error->message, ==, message);
}

static void
test_filter_validate (void)
{
  const char * const good[] = {
    "{}",
    "{\"must\":[{\"key\":\"city\",\"match\":{\"value\":\"Berlin\"}}]}",
    "{\"should\":{\"key\":\"a\",\"range\":{\"gt\":1}},\"must_not\":null}",
    "{\"min_should\":{\"conditions\":[{\"has_id\":[1,2]}],\"min_count\":1}}",
    "{\"must\":[{\"must\":[{\"is_empty\":{\"key\":\"x\"}}]}]}",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (bp_qdrant_filter_validate (good[i], 64, "filter", &error));
      g_assert_no_error (error);
    }

#define BAD(json, msg)                                                       \
  G_STMT_START {                                                             \
    g_autoptr(GError) e = NULL;                                              \
    gboolean ok = bp_qdrant_filter_validate (json, 64, "filter", &e);        \
    assert_invalid (ok, e, msg);                                             \
  } G_STMT_END

  BAD ("[]", "filter: must be a JSON object");
  BAD ("", "filter: empty, expected a JSON object");
  BAD ("{\"must\":[1]}",
       "filter.must: must be a condition object or an array of condition objects");
  BAD ("{\"should\":\"x\"}",
       "filter.should: must be a condition object or an array of condition objects");
  BAD ("{\"key\":\"city\"}",
       "filter: unknown key 'key' (expected must, should, must_not or min_should)");
  BAD ("{\"min_should\":{\"conditions\":[]}}",
       "filter.min_should.min_count: must be a non-negative integer");
  BAD ("{\"min_should\":[]}", "filter.min_should: must be an object {conditions, min_count}");
  BAD ("{\"must\":[}", NULL);
  BAD ("{\"must\":[]} // comment", NULL);
#undef BAD
}

static void
test_config_validate (void)
{
  BpQdrantLimits limits;
  const char * const good[] = {
    "{\"vectors\":{\"size\":4,\"distance\":\"Cosine\"}}",
    "{\"vectors\":{\"size\":65536,\"distance\":\"Manhattan\",\"on_disk\":true},\"shard_number\":2}",
    "{\"vectors\":{\"image\":{\"size\":512,\"distance\":\"Dot\"},\"text\":{\"size\":4,\"distance\":\"Euclid\"}}}",
    "{\"vectors\":{},\"sparse_vectors\":{\"s\":{}}}",
  };
  guint i;

  bp_qdrant_limits_init (&limits);
  for (i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GError) error = NULL;

      g_assert_true (bp_qdrant_collection_config_validate (good[i], &limits, &error));
      g_assert_no_error (error);
    }

#define BAD(json, msg)                                                         \
  G_STMT_START {                                                               \
    g_autoptr(GError) e = NULL;                                                \
    gboolean ok = bp_qdrant_collection_config_validate (json, &limits, &e);    \
    assert_invalid (ok, e, msg);                                               \
  } G_STMT_END

  BAD ("[]", "config: must be a JSON object");
  BAD ("{}", "config.vectors: required, an object {size, distance} or a map of named {size, distance}");
  BAD ("{\"vectors\":4}", "config.vectors: required, an object {size, distance} or a map of named {size, distance}");
  BAD ("{\"vectors\":{\"size\":4,\"distance\":\"cosine\"}}",
       "config.vectors.distance: must be one of Cosine, Dot, Euclid, Manhattan");
  BAD ("{\"vectors\":{\"size\":4}}",
       "config.vectors.distance: must be one of Cosine, Dot, Euclid, Manhattan");
  BAD ("{\"vectors\":{\"size\":0,\"distance\":\"Dot\"}}",
       "config.vectors.size: must be an integer from 1 to 65536");
  BAD ("{\"vectors\":{\"size\":65537,\"distance\":\"Dot\"}}",
       "config.vectors.size: must be an integer from 1 to 65536");
  BAD ("{\"vectors\":{\"size\":4.5,\"distance\":\"Dot\"}}",
       "config.vectors.size: must be an integer from 1 to 65536");
  BAD ("{\"vectors\":{\"distance\":\"Dot\"}}",
       "config.vectors.size: must be an integer from 1 to 65536");
  BAD ("{\"vectors\":{\"image\":{\"size\":3,\"distance\":\"Dot\"},\"text\":{\"size\":-1,\"distance\":\"Dot\"}}}",
       "config.vectors.text.size: must be an integer from 1 to 65536");
  BAD ("{\"vectors\":{\"image\":{\"size\":3,\"distance\":\"L2\"}}}",
       "config.vectors.image.distance: must be one of Cosine, Dot, Euclid, Manhattan");
  BAD ("{\"vectors\":{\"image\":[]}}",
       "config.vectors.image: must be an object {size, distance}");
#undef BAD
}

static void
test_name_validate (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *long_name = g_strnfill (256, 'a');

  g_assert_true (bp_qdrant_name_validate ("docs", "collection", NULL));
  g_assert_true (bp_qdrant_name_validate ("my collection-ü_1", "collection", NULL));
  g_assert_false (bp_qdrant_name_validate ("", "collection", &error));
  g_assert_cmpstr (error->message, ==, "collection: must be 1 to 255 bytes long");
  g_clear_error (&error);
  g_assert_false (bp_qdrant_name_validate (long_name, "collection", &error));
  g_clear_error (&error);
  g_assert_false (bp_qdrant_name_validate ("a/b", "collection", &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (bp_qdrant_name_validate ("..", "collection", &error));
  g_clear_error (&error);
  g_assert_false (bp_qdrant_name_validate ("a\nb", "snapshot", &error));
  g_assert_true (g_str_has_prefix (error->message, "snapshot: "));
}

static void
test_limits_validate (void)
{
  BpQdrantLimits limits;
  g_autoptr(GError) error = NULL;

  bp_qdrant_limits_init (&limits);
  g_assert_true (bp_qdrant_limits_validate (&limits, NULL));
  limits.max_line_bytes = limits.max_request_bytes;
  g_assert_false (bp_qdrant_limits_validate (&limits, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  bp_qdrant_limits_init (&limits);
  limits.max_batch_points = 0;
  g_assert_false (bp_qdrant_limits_validate (&limits, &error));
}

/* ------------------------------------------------------------- bodies */

static void
test_points_write (void)
{
  BpQdrantLimits limits;
  g_autoptr(GPtrArray) points = g_ptr_array_new_with_free_func ((GDestroyNotify) bp_qdrant_point_free);
  g_autoptr(GString) s = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  const double v1[] = { 0.5, -1, 2.25 };
  const double v2[] = { 1, 2 };
  BpQdrantPoint *named;

  bp_qdrant_limits_init (&limits);
  g_ptr_array_add (points, bp_qdrant_point_new ("18446744073709551615", v1, 3,
                                                "{\"n\":18446744073709551615,\"city\":\"Berlin\"}"));
  g_ptr_array_add (points, bp_qdrant_point_new ("550E8400-E29B-41D4-A716-446655440000", v2, 2, ""));
  named = bp_qdrant_point_new ("7", NULL, 0, NULL);
  bp_qdrant_point_add_vector (named, "image", v2, 2);
  bp_qdrant_point_add_vector (named, "text\"x", v1, 1);
  g_ptr_array_add (points, named);

  g_assert_true (bp_qdrant_points_write (s, points, &limits, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (s->str, ==,
                   "{\"points\":["
                   "{\"id\":18446744073709551615,\"vector\":[0.5,-1,2.25],"
                   "\"payload\":{\"n\":18446744073709551615,\"city\":\"Berlin\"}},"
                   "{\"id\":\"550e8400-e29b-41d4-a716-446655440000\",\"vector\":[1,2]},"
                   "{\"id\":7,\"vector\":{\"image\":[1,2],\"text\\\"x\":[0.5]}}"
                   "]}");
  /* and it is strict JSON */
  g_assert_true (bp_qdrant_json_scan (s->str, s->len, 64, NULL, NULL, NULL, NULL));
}

static void
assert_points_fail (BpQdrantPoint *point,
                    int            code,
                    const char    *message)
{
  BpQdrantLimits limits;
  g_autoptr(GPtrArray) points = g_ptr_array_new_with_free_func ((GDestroyNotify) bp_qdrant_point_free);
  g_autoptr(GString) s = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  bp_qdrant_limits_init (&limits);
  limits.max_vector_dim = 4;
  g_ptr_array_add (points, point);
  g_assert_false (bp_qdrant_points_write (s, points, &limits, &error));
  g_assert_error (error, BP_ERROR, code);
  g_assert_cmpstr (error->message, ==, message);
}

static void
test_points_write_errors (void)
{
  const double nan_v[] = { 1, NAN };
  const double big_v[] = { 1e39 };
  const double five[] = { 1, 2, 3, 4, 5 };
  const double one[] = { 1 };
  BpQdrantPoint *p;

  assert_points_fail (bp_qdrant_point_new ("-5", one, 1, NULL), BP_ERROR_INVALID_ARGUMENT,
                      "points[0].id: id '-5' is neither an unsigned 64-bit integer nor a UUID");
  assert_points_fail (bp_qdrant_point_new ("1", nan_v, 2, NULL), BP_ERROR_INVALID_ARGUMENT,
                      "points[0].vector[1]: not a finite 32-bit float");
  assert_points_fail (bp_qdrant_point_new ("1", big_v, 1, NULL), BP_ERROR_INVALID_ARGUMENT,
                      "points[0].vector[0]: not a finite 32-bit float");
  assert_points_fail (bp_qdrant_point_new ("1", five, 5, NULL), BP_ERROR_LIMIT_EXCEEDED,
                      "points[0].vector: must have 1 to 4 components, has 5");
  assert_points_fail (bp_qdrant_point_new ("1", one, 0, NULL), BP_ERROR_INVALID_ARGUMENT,
                      "points[0].vector: must have 1 to 4 components, has 0");
  assert_points_fail (bp_qdrant_point_new ("1", NULL, 0, NULL), BP_ERROR_INVALID_ARGUMENT,
                      "points[0].vector: missing");
  assert_points_fail (bp_qdrant_point_new ("1", one, 1, "[1]"), BP_ERROR_INVALID_ARGUMENT,
                      "points[0].payload: must be a JSON object");
  assert_points_fail (bp_qdrant_point_new ("1", one, 1, "{\"a\":1"), BP_ERROR_INVALID_ARGUMENT,
                      "points[0].payload: invalid JSON at offset 6: unexpected end of data");
  p = bp_qdrant_point_new ("1", one, 1, NULL);
  bp_qdrant_point_add_vector (p, "x", one, 1);
  assert_points_fail (p, BP_ERROR_INVALID_ARGUMENT,
                      "points[0].vector: an unnamed vector cannot be mixed with named ones");
  p = bp_qdrant_point_new ("1", NULL, 0, NULL);
  bp_qdrant_point_add_vector (p, "x", one, 1);
  bp_qdrant_point_add_vector (p, "x", one, 1);
  assert_points_fail (p, BP_ERROR_INVALID_ARGUMENT, "points[0].vector.x: given twice");
}

static void
test_points_write_batch_limit (void)
{
  BpQdrantLimits limits;
  g_autoptr(GPtrArray) points = g_ptr_array_new_with_free_func ((GDestroyNotify) bp_qdrant_point_free);
  g_autoptr(GString) s = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  const double one[] = { 1 };
  guint i;

  bp_qdrant_limits_init (&limits);
  limits.max_batch_points = 3;
  for (i = 0; i < 4; i++)
    g_ptr_array_add (points, bp_qdrant_point_new ("1", one, 1, NULL));
  g_assert_false (bp_qdrant_points_write (s, points, &limits, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);
  g_ptr_array_set_size (points, 0);
  g_assert_false (bp_qdrant_points_write (s, points, &limits, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
}

static void
test_ids_write (void)
{
  BpQdrantLimits limits;
  g_autoptr(GString) s = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  const char * const ids[] = { "1", "18446744073709551615", "{550E8400-E29B-41D4-A716-446655440000}", NULL };
  const char * const bad[] = { "1", "x", NULL };

  bp_qdrant_limits_init (&limits);
  g_assert_true (bp_qdrant_ids_write (s, ids, "ids", &limits, &error));
  g_assert_cmpstr (s->str, ==,
                   "[1,18446744073709551615,\"550e8400-e29b-41d4-a716-446655440000\"]");
  g_assert_false (bp_qdrant_ids_write (s, bad, "ids", &limits, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpstr (error->message, ==,
                   "ids[1]: id 'x' is neither an unsigned 64-bit integer nor a UUID");
}

static void
test_query_write (void)
{
  BpQdrantLimits limits;
  const double v[] = { 0.25, 1 };
  g_autoptr(BpQdrantQuery) q = bp_qdrant_query_new (v, 2, 3);
  g_autoptr(GString) s = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  bp_qdrant_limits_init (&limits);
  q->filter_json = g_strdup ("{\"must\":[{\"key\":\"city\",\"match\":{\"value\":\"Berlin\"}}]}");
  q->has_score_threshold = TRUE;
  q->score_threshold = 0.5;
  q->using = g_strdup ("image");
  g_assert_true (bp_qdrant_query_write (s, q, "query", &limits, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (s->str, ==,
                   "{\"query\":[0.25,1],\"limit\":3,"
                   "\"filter\":{\"must\":[{\"key\":\"city\",\"match\":{\"value\":\"Berlin\"}}]},"
                   "\"with_payload\":true,\"score_threshold\":0.5,\"using\":\"image\"}");

  g_string_truncate (s, 0);
  g_free (q->filter_json);
  q->filter_json = g_strdup ("{\"bogus\":1}");
  g_assert_false (bp_qdrant_query_write (s, q, "queries[2]", &limits, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_true (g_str_has_prefix (error->message, "queries[2].filter: unknown key 'bogus'"));
  g_clear_error (&error);

  g_string_truncate (s, 0);
  g_clear_pointer (&q->filter_json, g_free);
  q->limit = limits.max_result_limit + 1;
  g_assert_false (bp_qdrant_query_write (s, q, "query", &limits, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
}

static void
test_jsonl_line (void)
{
  BpQdrantLimits limits;
  const struct {
    const char *line;
    const char *expected;
  } good[] = {
    { "{\"id\":1,\"vector\":[1,2.5],\"payload\":{\"a\":18446744073709551615}}",
      "{\"id\":1,\"vector\":[1,2.5],\"payload\":{\"a\":18446744073709551615}}" },
    { " {\"vector\":[0.5] , \"id\" : 18446744073709551615 } ",
      "{\"id\":18446744073709551615,\"vector\":[0.5]}" },
    { "{\"id\":\"550E8400-E29B-41D4-A716-446655440000\",\"vector\":{\"img\":[1],\"t\":[2,3]},\"payload\":null}",
      "{\"id\":\"550e8400-e29b-41d4-a716-446655440000\",\"vector\":{\"img\":[1],\"t\":[2,3]}}" },
    { "{\"id\":\"42\",\"vector\":[1e2],\"payload\":{}}",
      "{\"id\":42,\"vector\":[100],\"payload\":{}}" },
    /* plain decimals go out as written, white space dropped */
    { "{\"id\":7,\"vector\":[ -0 , 0.000001 ,-12.250,99999999999999999999999999999999999999 ],"
      "\"payload\":{ \"k\" : [1, 2] }}",
      "{\"id\":7,\"vector\":[-0,0.000001,-12.250,99999999999999999999999999999999999999],"
      "\"payload\":{ \"k\" : [1, 2] }}" },
    /* keys with escapes and repeated keys take the general path: the last wins */
    { "{\"\\u0069d\":3,\"vector\":[1]}", "{\"id\":3,\"vector\":[1]}" },
    { "{\"id\":1,\"vector\":[1],\"id\":2}", "{\"id\":2,\"vector\":[1]}" },
    { "{\"id\":\"5\",\"vector\":[2.5E-1]}", "{\"id\":5,\"vector\":[0.25]}" },
  };
  const struct {
    const char *line;
    int code;
    const char *message;
  } bad[] = {
    { "{\"id\":1e3,\"vector\":[1]}", BP_ERROR_INVALID_ARGUMENT,
      "id: id '1e3' is neither an unsigned 64-bit integer nor a UUID" },
    { "{\"id\":-1,\"vector\":[1]}", BP_ERROR_INVALID_ARGUMENT,
      "id: id '-1' is neither an unsigned 64-bit integer nor a UUID" },
    { "{\"id\":18446744073709551616,\"vector\":[1]}", BP_ERROR_INVALID_ARGUMENT,
      "id: id '18446744073709551616' is neither an unsigned 64-bit integer nor a UUID" },
    { "{\"id\":true,\"vector\":[1]}", BP_ERROR_INVALID_ARGUMENT,
      "id: id is neither an unsigned 64-bit integer nor a UUID" },
    { "{\"vector\":[1]}", BP_ERROR_INVALID_ARGUMENT, "id: missing" },
    { "{\"id\":1}", BP_ERROR_INVALID_ARGUMENT, "vector: missing" },
    { "{\"id\":1,\"vector\":[1],\"extra\":2}", BP_ERROR_INVALID_ARGUMENT,
      "unknown member 'extra' (expected id, vector, payload)" },
    { "{\"id\":1,\"vector\":[\"a\"]}", BP_ERROR_INVALID_ARGUMENT, "vector[0]: not a number" },
    { "{\"id\":1,\"vector\":[]}", BP_ERROR_INVALID_ARGUMENT,
      "vector: must have 1 to 8 components, has 0" },
    { "{\"id\":1,\"vector\":[1,2,3,4,5,6,7,8,9]}", BP_ERROR_LIMIT_EXCEEDED,
      "vector: must have 1 to 8 components, has 9" },
    { "{\"id\":1,\"vector\":[1e39]}", BP_ERROR_INVALID_ARGUMENT,
      "vector[0]: not a finite 32-bit float" },
    { "{\"id\":1,\"vector\":[0.5,-999999999999999999999999999999999999999.5]}", BP_ERROR_INVALID_ARGUMENT,
      "vector[1]: not a finite 32-bit float" },
    { "{\"id\":1,\"vector\":[0.5,[1]]}", BP_ERROR_INVALID_ARGUMENT, "vector[1]: not a number" },
    { "{\"id\":1,\"vector\":[1e400]}", BP_ERROR_INVALID_ARGUMENT,
      "invalid JSON at offset 18: number out of range" },
    { "{\"id\":1,\"vector\":{}}", BP_ERROR_INVALID_ARGUMENT,
      "vector: an object of named vectors must not be empty" },
    { "{\"id\":1,\"vector\":{\"a\":[1],\"b\":\"x\"}}", BP_ERROR_INVALID_ARGUMENT,
      "vector.b: must be an array of numbers" },
    { "{\"id\":1,\"vector\":[1],\"payload\":[1]}", BP_ERROR_INVALID_ARGUMENT,
      "payload: must be a JSON object or null" },
    { "[1]", BP_ERROR_INVALID_ARGUMENT,
      "a point must be a JSON object {\"id\", \"vector\", \"payload\"}" },
    { "{\"id\":1,\"vector\":[1]", BP_ERROR_INVALID_ARGUMENT, NULL },
  };
  guint i;

  bp_qdrant_limits_init (&limits);
  limits.max_vector_dim = 8;
  for (i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GString) out = g_string_new ("");
      g_autoptr(GError) error = NULL;

      g_assert_true (bp_qdrant_jsonl_line_to_point (good[i].line, strlen (good[i].line),
                                                    &limits, out, &error));
      g_assert_no_error (error);
      g_assert_cmpstr (out->str, ==, good[i].expected);
    }
  for (i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GString) out = g_string_new ("prefix");
      g_autoptr(GError) error = NULL;

      g_test_message ("bad line: %s", bad[i].line);
      g_assert_false (bp_qdrant_jsonl_line_to_point (bad[i].line, strlen (bad[i].line),
                                                     &limits, out, &error));
      g_assert_error (error, BP_ERROR, bad[i].code);
      if (bad[i].message != NULL)
        g_assert_cmpstr (error->message, ==, bad[i].message);
      g_assert_cmpstr (out->str, ==, "prefix");
    }
}

/* ------------------------------------------------------------ responses */

static JsonNode *
parse_ok (guint               status,
          const char         *body,
          gboolean            enveloped,
          const char * const *id_paths,
          char              **status_text)
{
  g_autoptr(GError) error = NULL;
  JsonNode *result = NULL;

  g_assert_true (bp_qdrant_response_parse (status, "OK", NULL, body, strlen (body), enveloped,
                                           64, id_paths, &result, status_text, &error));
  g_assert_no_error (error);
  return result;
}

static GError *
parse_error (guint       status,
             const char *reason,
             const char *retry_after,
             const char *body,
             gsize       len)
{
  GError *error = NULL;
  JsonNode *result = (JsonNode *) 0x1;

  g_assert_false (bp_qdrant_response_parse (status, reason, retry_after, body, len, TRUE, 64,
                                            NULL, &result, NULL, &error));
  g_assert_null (result);
  g_assert_nonnull (error);
  return error;
}

static void
test_envelope_ok (void)
{
  g_autoptr(JsonNode) r1 = NULL;
  g_autoptr(JsonNode) r2 = NULL;
  g_autoptr(JsonNode) r3 = NULL;
  g_autoptr(JsonNode) r4 = NULL;
  g_autofree char *st = NULL;
  g_autofree char *st2 = NULL;

  r1 = parse_ok (200, "{\"result\":true,\"status\":\"ok\",\"time\":0.0012}", TRUE, NULL, &st);
  g_assert_true (json_node_get_boolean (r1));
  g_assert_cmpstr (st, ==, "ok");

  /* a body without result is not a failure */
  r2 = parse_ok (202, "{\"status\":\"accepted\",\"time\":0.1}", TRUE, NULL, &st2);
  g_assert_null (r2);
  g_assert_cmpstr (st2, ==, "accepted");

  r3 = parse_ok (200, "{\"title\":\"qdrant - vector search engine\",\"version\":\"1.19.0\"}",
                 FALSE, NULL, NULL);
  g_assert_cmpstr (json_object_get_string_member (json_node_get_object (r3), "version"), ==,
                   "1.19.0");

  r4 = parse_ok (200, "{\"result\":{\"points\":[{\"id\":18446744073709551615,\"version\":3,"
                      "\"score\":0.9,\"payload\":{\"city\":\"Berlin\"}}]},\"status\":\"ok\"}",
                 TRUE, bp_qdrant_id_paths_points, NULL);
  {
    g_autoptr(GPtrArray) hits = NULL;
    BpQdrantHit *hit;

    hits = bp_qdrant_hits_from_node (json_object_get_member (json_node_get_object (r4), "points"),
                                     NULL);
    g_assert_cmpuint (hits->len, ==, 1);
    hit = g_ptr_array_index (hits, 0);
    g_assert_cmpstr (hit->id, ==, "18446744073709551615");
    g_assert_cmpfloat (hit->score, ==, 0.9);
    g_assert_cmpuint (hit->version, ==, 3);
    g_assert_cmpstr (hit->payload_json, ==, "{\"city\":\"Berlin\"}");
  }
}

static void
test_envelope_errors (void)
{
  const char *not_found = "{\"status\":{\"error\":\"Not found: Collection `x` doesn't exist!\"},\"time\":0.001}";
  const char *plain401 = "Must provide an API key or an Authorization bearer token";
  const char *bad_req = "{\"status\":{\"error\":\"Wrong input: Vector dimension error: expected dim: 4, got 3\"},\"time\":0.0}";
  GError *e;

  e = parse_error (404, "Not Found", NULL, not_found, strlen (not_found));
  g_assert_error (e, BP_ERROR, BP_ERROR_NOT_FOUND);
  g_assert_cmpstr (e->message, ==, "HTTP 404: Not found: Collection `x` doesn't exist!");
  g_error_free (e);

  e = parse_error (401, "Unauthorized", NULL, plain401, strlen (plain401));
  g_assert_error (e, BP_ERROR, BP_ERROR_PERMISSION_DENIED);
  g_assert_cmpstr (e->message, ==,
                   "HTTP 401: Must provide an API key or an Authorization bearer token");
  g_error_free (e);

  e = parse_error (400, "Bad Request", NULL, bad_req, strlen (bad_req));
  g_assert_error (e, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_cmpstr (e->message, ==,
                   "HTTP 400: Wrong input: Vector dimension error: expected dim: 4, got 3");
  g_error_free (e);

  e = parse_error (422, "Unprocessable Entity", NULL, bad_req, strlen (bad_req));
  g_assert_error (e, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_true (g_str_has_prefix (e->message, "HTTP 422: Wrong input"));
  g_error_free (e);

  {
    const char *rate = "{\"status\":{\"error\":\"Rate limiting exceeded: Write rate limit exceeded\"},\"time\":0}";

    e = parse_error (429, "Too Many Requests", "2", rate, strlen (rate));
  }
  g_assert_error (e, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_cmpint (bp_error_get_retry_after (e), ==, 2000);
  g_assert_true (g_str_has_prefix (e->message, "HTTP 429: Rate limiting exceeded"));
  g_assert_true (bp_qdrant_error_is_retryable (e));
  g_error_free (e);

  e = parse_error (429, "Too Many Requests", NULL, "", 0);
  g_assert_error (e, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_cmpint (bp_error_get_retry_after (e), ==, -1);
  g_assert_cmpstr (e->message, ==, "HTTP 429: Too Many Requests");
  g_error_free (e);

  e = parse_error (503, "Service Unavailable", NULL, "", 0);
  g_assert_error (e, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_true (bp_qdrant_error_is_retryable (e));
  g_error_free (e);

  {
    const char *boom = "{\"status\":{\"error\":\"Service internal error: boom\"}}";

    e = parse_error (500, NULL, NULL, boom, strlen (boom));
  }
  g_assert_error (e, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_false (bp_qdrant_error_is_retryable (e));
  g_assert_cmpstr (e->message, ==, "HTTP 500: Service internal error: boom");
  g_error_free (e);

  {
    const char *timeout = "{\"status\":{\"error\":\"Timeout: x\"}}";

    e = parse_error (408, NULL, NULL, timeout, strlen (timeout));
  }
  g_assert_error (e, BP_ERROR, BP_ERROR_TIMEOUT);
  g_error_free (e);

  e = parse_error (502, NULL, NULL, "\xff\xfe\x00\x01", 4);
  g_assert_error (e, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_cmpstr (e->message, ==, "HTTP 502: (4 bytes of non-text body)");
  g_error_free (e);

  e = parse_error (409, NULL, NULL, "  line one\nline\ttwo  ", strlen ("  line one\nline\ttwo  "));
  g_assert_error (e, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_cmpstr (e->message, ==, "HTTP 409: line one line two");
  g_error_free (e);

  /* 2xx that is not an envelope */
  e = parse_error (200, "OK", NULL, "<html>", 6);
  g_assert_error (e, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_true (g_str_has_prefix (e->message, "HTTP 200: malformed response: invalid JSON"));
  g_error_free (e);

  e = parse_error (200, "OK", NULL, "[1]", 3);
  g_assert_error (e, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_cmpstr (e->message, ==, "HTTP 200: malformed response: not a JSON object");
  g_error_free (e);

  {
    const char *odd = "{\"status\":{\"error\":\"odd\"}}";

    e = parse_error (200, "OK", NULL, odd, strlen (odd));
  }
  g_assert_error (e, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_cmpstr (e->message, ==, "HTTP 200: odd");
  g_error_free (e);

  e = parse_error (200, "OK", NULL, "", 0);
  g_assert_error (e, BP_ERROR, BP_ERROR_BACKEND);
  g_error_free (e);
}

static void
test_error_text_bounded (void)
{
  gsize n = 100000;
  g_autofree char *body = g_strnfill (n, 'e');
  GError *e = parse_error (400, NULL, NULL, body, n);

  g_assert_cmpuint (strlen (e->message), <, 600);
  g_error_free (e);
}

static void
test_retry_after (void)
{
  g_autoptr(GDateTime) now = g_date_time_new_utc (2026, 11, 27, 12, 0, 0);

  g_assert_cmpint (bp_qdrant_retry_after_parse ("2", NULL), ==, 2000);
  g_assert_cmpint (bp_qdrant_retry_after_parse (" 3 ", NULL), ==, 3000);
  g_assert_cmpint (bp_qdrant_retry_after_parse ("0", NULL), ==, 0);
  g_assert_cmpint (bp_qdrant_retry_after_parse ("99999999999", NULL), ==, 86400 * 1000);
  g_assert_cmpint (bp_qdrant_retry_after_parse ("Fri, 27 Nov 2026 12:00:05 GMT", now), ==, 5000);
  g_assert_cmpint (bp_qdrant_retry_after_parse ("Fri, 27 Nov 2026 11:00:00 GMT", now), ==, 0);
  g_assert_cmpint (bp_qdrant_retry_after_parse ("soon", NULL), ==, -1);
  g_assert_cmpint (bp_qdrant_retry_after_parse ("-1", NULL), ==, -1);
  g_assert_cmpint (bp_qdrant_retry_after_parse (NULL, NULL), ==, -1);
}

static void
test_retryable (void)
{
  g_autoptr(GError) cancelled = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "x");
  g_autoptr(GError) timeout = g_error_new_literal (BP_ERROR, BP_ERROR_TIMEOUT, "x");
  g_autoptr(GError) invalid = g_error_new_literal (BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "x");
  g_autoptr(GError) not_found = g_error_new_literal (BP_ERROR, BP_ERROR_NOT_FOUND, "x");

  g_assert_false (bp_qdrant_error_is_retryable (cancelled));
  g_assert_true (bp_qdrant_error_is_retryable (timeout));
  g_assert_false (bp_qdrant_error_is_retryable (invalid));
  g_assert_false (bp_qdrant_error_is_retryable (not_found));
  g_assert_false (bp_qdrant_error_is_retryable (NULL));
}

static void
test_version_check (void)
{
  const char * const ok[] = { "1.19.0", "1.18.3", "1.20.0", "v1.19.1", "1.19.0-dev", "1.19" };
  const char * const no[] = { "1.17.9", "1.21.0", "2.0.0", "0.19.0" };
  g_autoptr(GError) error = NULL;
  guint i;

  for (i = 0; i < G_N_ELEMENTS (ok); i++)
    g_assert_true (bp_qdrant_version_check (ok[i], 1, 19, NULL));
  for (i = 0; i < G_N_ELEMENTS (no); i++)
    {
      g_assert_false (bp_qdrant_version_check (no[i], 1, 19, &error));
      g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
      g_clear_error (&error);
    }
  g_assert_false (bp_qdrant_version_check ("2.0.0", 1, 19, &error));
  g_assert_cmpstr (error->message, ==,
                   "Qdrant 2.0.0 is not compatible with this client (written for 1.19; "
                   "accepts 1.18 to 1.20)");
  g_clear_error (&error);
  g_assert_false (bp_qdrant_version_check ("garbage", 1, 19, &error));
  g_assert_cmpstr (error->message, ==, "Qdrant version 'garbage' is not understood");
  g_clear_error (&error);
  g_assert_true (bp_qdrant_version_check ("1.0.0", 1, 0, NULL));
  g_assert_true (bp_qdrant_version_check ("1.1.0", 1, 0, NULL));
}

static void
test_records (void)
{
  const char *body =
    "{\"result\":[{\"id\":18446744073709551615,\"payload\":{\"a\":1},\"vector\":[0.5,1]},"
    "{\"id\":\"550e8400-e29b-41d4-a716-446655440000\",\"vector\":{\"img\":[1,2],"
    "\"sparse\":{\"indices\":[1],\"values\":[0.5]}}},{\"id\":3}],\"status\":\"ok\"}";
  g_autoptr(JsonNode) result = parse_ok (200, body, TRUE, bp_qdrant_id_paths_records, NULL);
  g_autoptr(GPtrArray) points = NULL;
  g_autoptr(GString) lines = g_string_new (NULL);
  g_autoptr(GError) error = NULL;
  BpQdrantPoint *p;
  BpQdrantVector *v;
  guint i;

  points = bp_qdrant_points_from_node (result, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (points->len, ==, 3);

  p = g_ptr_array_index (points, 0);
  g_assert_cmpstr (p->id, ==, "18446744073709551615");
  g_assert_cmpstr (p->payload_json, ==, "{\"a\":1}");
  v = bp_qdrant_point_get_vector (p, NULL);
  g_assert_nonnull (v);
  g_assert_cmpuint (v->values->len, ==, 2);
  g_assert_cmpfloat (g_array_index (v->values, double, 0), ==, 0.5);

  p = g_ptr_array_index (points, 1);
  g_assert_null (p->payload_json);
  g_assert_cmpuint (p->vectors->len, ==, 1); /* the sparse one is left out */
  v = bp_qdrant_point_get_vector (p, "img");
  g_assert_nonnull (v);
  g_assert_cmpuint (v->values->len, ==, 2);

  p = g_ptr_array_index (points, 2);
  g_assert_cmpuint (p->vectors->len, ==, 0);

  for (i = 0; i < json_array_get_length (json_node_get_array (result)); i++)
    g_assert_true (bp_qdrant_record_write_line (lines, json_array_get_element (json_node_get_array (result), i), NULL));
  g_assert_cmpstr (lines->str, ==,
                   "{\"id\":18446744073709551615,\"vector\":[0.5,1],\"payload\":{\"a\":1}}\n"
                   "{\"id\":\"550e8400-e29b-41d4-a716-446655440000\",\"vector\":{\"img\":[1,2],"
                   "\"sparse\":{\"indices\":[1],\"values\":[0.5]}}}\n"
                   "{\"id\":3}\n");
}

static void
test_records_malformed (void)
{
  const char * const bodies[] = {
    "{\"result\":[{\"payload\":{}}]}",
    "{\"result\":[{\"id\":-5}]}",
    "{\"result\":[{\"id\":\"nope\"}]}",
    "{\"result\":[7]}",
    "{\"result\":{}}",
  };
  guint i;

  for (i = 0; i < G_N_ELEMENTS (bodies); i++)
    {
      g_autoptr(JsonNode) result = parse_ok (200, bodies[i], TRUE, bp_qdrant_id_paths_records, NULL);
      g_autoptr(GError) error = NULL;
      GPtrArray *points = bp_qdrant_points_from_node (result, &error);

      g_assert_null (points);
      g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
      g_assert_true (g_str_has_prefix (error->message, "malformed response"));
    }
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/qdrant/id/integers", test_id_integers);
  g_test_add_func ("/qdrant/id/uuids", test_id_uuids);
  g_test_add_func ("/qdrant/id/message-sanitized", test_id_message_sanitized);
  g_test_add_func ("/qdrant/id/append", test_id_append);
  g_test_add_func ("/qdrant/json/json-glib-wraps", test_json_glib_wraps);
  g_test_add_func ("/qdrant/json/scan-strict", test_scan_strict);
  g_test_add_func ("/qdrant/json/scan-depth", test_scan_depth);
  g_test_add_func ("/qdrant/json/scan-rewrite", test_scan_rewrite);
  g_test_add_func ("/qdrant/json/parse-ids-exact", test_parse_ids_exact);
  g_test_add_func ("/qdrant/json/scan-members", test_scan_members);
  g_test_add_func ("/qdrant/json/append-double", test_append_double);
  g_test_add_func ("/qdrant/json/append-string", test_append_string);
  g_test_add_func ("/qdrant/validate/filter", test_filter_validate);
  g_test_add_func ("/qdrant/validate/config", test_config_validate);
  g_test_add_func ("/qdrant/validate/name", test_name_validate);
  g_test_add_func ("/qdrant/validate/limits", test_limits_validate);
  g_test_add_func ("/qdrant/body/points", test_points_write);
  g_test_add_func ("/qdrant/body/points-errors", test_points_write_errors);
  g_test_add_func ("/qdrant/body/points-batch-limit", test_points_write_batch_limit);
  g_test_add_func ("/qdrant/body/ids", test_ids_write);
  g_test_add_func ("/qdrant/body/query", test_query_write);
  g_test_add_func ("/qdrant/body/jsonl-line", test_jsonl_line);
  g_test_add_func ("/qdrant/envelope/ok", test_envelope_ok);
  g_test_add_func ("/qdrant/envelope/errors", test_envelope_errors);
  g_test_add_func ("/qdrant/envelope/error-text-bounded", test_error_text_bounded);
  g_test_add_func ("/qdrant/envelope/retry-after", test_retry_after);
  g_test_add_func ("/qdrant/envelope/retryable", test_retryable);
  g_test_add_func ("/qdrant/envelope/version-check", test_version_check);
  g_test_add_func ("/qdrant/records/parse", test_records);
  g_test_add_func ("/qdrant/records/malformed", test_records_malformed);

  return g_test_run ();
}
