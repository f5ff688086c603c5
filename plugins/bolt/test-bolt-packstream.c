/* test-bolt-packstream.c: PackStream golden bytes, mapping and malformed input
 *
 * Golden vectors come from neo4j/docs-bolt packstream/index.adoc (the spec's
 * own examples) and from the integer ranges it defines (dbclients.md §5.2
 * scenario 6).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "bp-bolt-values.h"

static GByteArray *
hex (const char *text)
{
  GByteArray *out = g_byte_array_new ();

  while (*text)
    {
      guint8 b;

      if (g_ascii_isspace (*text))
        {
          text++;
          continue;
        }
      g_assert_true (g_ascii_isxdigit (text[0]) && g_ascii_isxdigit (text[1]));
      b = (guint8) (g_ascii_xdigit_value (text[0]) << 4 | g_ascii_xdigit_value (text[1]));
      g_byte_array_append (out, &b, 1);
      text += 2;
    }
  return out;
}

static void
assert_bytes (GByteArray *got,
              const char *expected_hex)
{
  g_autoptr(GByteArray) want = hex (expected_hex);

  if (got->len != want->len || memcmp (got->data, want->data, got->len) != 0)
    {
      g_autoptr(GString) s = g_string_new (NULL);
      for (guint i = 0; i < got->len && i < 64; i++)
        g_string_append_printf (s, "%02X ", got->data[i]);
      g_error ("bytes differ: got (%u) %s…, want %s", got->len, s->str, expected_hex);
    }
}

/* ---------------------------------------------------------------- */

typedef struct
{
  gint64      value;
  const char *hex;
} IntCase;

static const IntCase int_cases[] = {
  { 0, "00" },
  { 1, "01" },
  { 42, "2A" },
  { 127, "7F" },
  { 128, "C9 00 80" },
  { -1, "FF" },
  { -16, "F0" },
  { -17, "C8 EF" },
  { -128, "C8 80" },
  { -129, "C9 FF 7F" },
  { 129, "C9 00 81" },
  { 32767, "C9 7F FF" },
  { 32768, "CA 00 00 80 00" },
  { -32768, "C9 80 00" },
  { -32769, "CA FF FF 7F FF" },
  { G_GINT64_CONSTANT (2147483647), "CA 7F FF FF FF" },
  { G_GINT64_CONSTANT (2147483648), "CB 00 00 00 00 80 00 00 00" },
  { G_GINT64_CONSTANT (-2147483648), "CA 80 00 00 00" },
  { G_GINT64_CONSTANT (-2147483649), "CB FF FF FF FF 7F FF FF FF" },
  { G_MAXINT64, "CB 7F FF FF FF FF FF FF FF" },
  { G_MININT64, "CB 80 00 00 00 00 00 00 00" },
};

static void
test_ints_golden (void)
{
  g_test_summary ("integers take the shortest marker at every range boundary, and decode back");

  for (guint i = 0; i < G_N_ELEMENTS (int_cases); i++)
    {
      g_autoptr(GByteArray) buf = g_byte_array_new ();
      g_autoptr(GVariant) v = NULL;
      g_autoptr(GError) error = NULL;
      g_autofree char *json = NULL;
      g_autofree char *want_json = g_strdup_printf ("%" G_GINT64_FORMAT, int_cases[i].value);

      bp_bolt_pack_int (buf, int_cases[i].value);
      assert_bytes (buf, int_cases[i].hex);

      v = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (g_variant_is_of_type (v, G_VARIANT_TYPE_INT64));
      g_assert_cmpint (g_variant_get_int64 (v), ==, int_cases[i].value);

      json = bp_bolt_decode_json (buf->data, buf->len, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (json, ==, want_json);
    }
}

static void
test_ints_non_minimal (void)
{
  /* A peer may use a wider marker than needed; the decoder accepts it. */
  struct { const char *hex; gint64 value; } cases[] = {
    { "C8 01", 1 },
    { "C9 00 01", 1 },
    { "CA FF FF FF FF", -1 },
    { "CB 00 00 00 00 00 00 00 05", 5 },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GByteArray) buf = hex (cases[i].hex);
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) v = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);

      g_assert_no_error (error);
      g_assert_cmpint (g_variant_get_int64 (v), ==, cases[i].value);
    }
}

static void
test_scalars_golden (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();

  g_test_summary ("null, booleans and floats match the spec examples");

  bp_bolt_pack_null (buf);
  assert_bytes (buf, "C0");
  g_byte_array_set_size (buf, 0);
  bp_bolt_pack_boolean (buf, TRUE);
  bp_bolt_pack_boolean (buf, FALSE);
  assert_bytes (buf, "C3 C2");
  g_byte_array_set_size (buf, 0);
  bp_bolt_pack_float (buf, 1.1);
  assert_bytes (buf, "C1 3F F1 99 99 99 99 99 9A");
  g_byte_array_set_size (buf, 0);
  bp_bolt_pack_float (buf, -1.1);
  assert_bytes (buf, "C1 BF F1 99 99 99 99 99 9A");
}

static void
test_floats_decode (void)
{
  struct { double v; const char *json; } cases[] = {
    { 1.1, "1.1" },
    { -1.1, "-1.1" },
    { 0.0, "0.0" },
    { 1.0, "1.0" },
    { 1e300, "1e+300" },
    { 0.1 + 0.2, "0.30000000000000004" },
    { INFINITY, "\"Infinity\"" },
    { -INFINITY, "\"-Infinity\"" },
    { NAN, "\"NaN\"" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GByteArray) buf = g_byte_array_new ();
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) v = NULL;
      g_autofree char *json = NULL;

      bp_bolt_pack_float (buf, cases[i].v);
      v = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
      g_assert_no_error (error);
      if (isnan (cases[i].v))
        g_assert_true (isnan (g_variant_get_double (v)));
      else
        g_assert_cmpfloat (g_variant_get_double (v), ==, cases[i].v);
      json = bp_bolt_decode_json (buf->data, buf->len, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpstr (json, ==, cases[i].json);
    }
}

static void
check_sized (gsize       size,
             const char *string_header,
             const char *bytes_header)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GByteArray) want = hex (string_header);
  g_autofree char *s = g_malloc (size + 1);
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GError) error = NULL;

  memset (s, 'x', size);
  s[size] = '\0';
  bp_bolt_pack_string (buf, s, -1);
  g_assert_cmpuint (buf->len, ==, want->len + size);
  g_assert_cmpmem (buf->data, want->len, want->data, want->len);
  v = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_string (v, NULL), ==, s);

  if (bytes_header != NULL)
    {
      g_autoptr(GByteArray) bwant = hex (bytes_header);
      g_autoptr(GVariant) bv = NULL;

      g_byte_array_set_size (buf, 0);
      bp_bolt_pack_bytes (buf, (const guint8 *) s, size);
      g_assert_cmpuint (buf->len, ==, bwant->len + size);
      g_assert_cmpmem (buf->data, bwant->len, bwant->data, bwant->len);
      bv = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
      g_assert_no_error (error);
      g_assert_true (g_variant_is_of_type (bv, G_VARIANT_TYPE_BYTESTRING));
      g_assert_cmpuint (g_variant_get_size (bv), ==, size);
    }
}

static void
test_strings_golden (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();

  g_test_summary ("strings and bytes: tiny/8/16/32-bit size markers at 15/16/255/256/65535/65536 bytes");

  bp_bolt_pack_string (buf, "", -1);
  assert_bytes (buf, "80");
  g_byte_array_set_size (buf, 0);
  bp_bolt_pack_string (buf, "A", -1);
  assert_bytes (buf, "81 41");
  g_byte_array_set_size (buf, 0);
  /* spec example */
  bp_bolt_pack_string (buf, "Größenmaßstäbe", -1);
  assert_bytes (buf, "D0 12 47 72 C3 B6 C3 9F 65 6E 6D 61 C3 9F 73 74 C3 A4 62 65");

  check_sized (0, "80", "CC 00");
  check_sized (15, "8F", "CC 0F");
  check_sized (16, "D0 10", "CC 10");
  check_sized (255, "D0 FF", "CC FF");
  check_sized (256, "D1 01 00", "CD 01 00");
  check_sized (65535, "D1 FF FF", "CD FF FF");
  check_sized (65536, "D2 00 01 00 00", "CE 00 01 00 00");
}

static void
test_collections_golden (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;

  g_test_summary ("lists and maps: tiny/8/16/32-bit headers; the spec's {\"one\":\"eins\"}");

  bp_bolt_pack_map_header (buf, 1);
  bp_bolt_pack_string (buf, "one", -1);
  bp_bolt_pack_string (buf, "eins", -1);
  assert_bytes (buf, "A1 83 6F 6E 65 84 65 69 6E 73");
  json = bp_bolt_decode_json (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json, ==, "{\"one\":\"eins\"}");

  g_byte_array_set_size (buf, 0);
  bp_bolt_pack_list_header (buf, 3);
  bp_bolt_pack_int (buf, 1);
  bp_bolt_pack_int (buf, 2);
  bp_bolt_pack_int (buf, 3);
  assert_bytes (buf, "93 01 02 03");
  v = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (v), ==, "av");
  g_assert_cmpuint (g_variant_n_children (v), ==, 3);

  {
  struct { guint32 n; const char *list; const char *map; } headers[] = {
    { 0, "90", "A0" },
    { 15, "9F", "AF" },
    { 16, "D4 10", "D8 10" },
    { 255, "D4 FF", "D8 FF" },
    { 256, "D5 01 00", "D9 01 00" },
    { 65535, "D5 FF FF", "D9 FF FF" },
    { 65536, "D6 00 01 00 00", "DA 00 01 00 00" },
  };
  for (guint i = 0; i < G_N_ELEMENTS (headers); i++)
    {
      g_byte_array_set_size (buf, 0);
      bp_bolt_pack_list_header (buf, headers[i].n);
      assert_bytes (buf, headers[i].list);
      g_byte_array_set_size (buf, 0);
      bp_bolt_pack_map_header (buf, headers[i].n);
      assert_bytes (buf, headers[i].map);
    }
  }

  /* lists and maps of 15 and 16 entries decode */
  for (guint n = 15; n <= 16; n++)
    {
      g_autoptr(GVariant) lv = NULL, mv = NULL;

      g_byte_array_set_size (buf, 0);
      bp_bolt_pack_list_header (buf, n);
      for (guint i = 0; i < n; i++)
        bp_bolt_pack_int (buf, i);
      lv = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (lv), ==, n);

      g_byte_array_set_size (buf, 0);
      bp_bolt_pack_map_header (buf, n);
      for (guint i = 0; i < n; i++)
        {
          char k[8];
          g_snprintf (k, sizeof k, "k%u", i);
          bp_bolt_pack_string (buf, k, -1);
          bp_bolt_pack_int (buf, i);
        }
      mv = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (g_variant_n_children (mv), ==, n);
    }
}

static void
test_struct_header (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();

  bp_bolt_pack_struct_header (buf, 1, 0x44);
  bp_bolt_pack_int (buf, 0);
  assert_bytes (buf, "B1 44 00");
}

/* ---------------------------------------------------------------- */
/* Null handling, duplicate keys                                      */

static void
test_nulls (void)
{
  g_autoptr(GByteArray) buf = hex ("93 01 C0 A2 81 61 C0 81 62 01");
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GVariant) elem = NULL;
  g_autoptr(GVariant) inner = NULL;
  g_autoptr(GVariant) map = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;

  g_test_summary ("null in a list is <@o '/'>, null as a map value is an absent key; JSON keeps null");

  /* [1, null, {"a": null, "b": 1}] */
  v = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  elem = g_variant_get_child_value (v, 1);
  inner = g_variant_get_variant (elem);
  g_assert_true (g_variant_is_of_type (inner, G_VARIANT_TYPE_OBJECT_PATH));
  g_assert_cmpstr (g_variant_get_string (inner, NULL), ==, "/");
  g_assert_true (bp_bolt_variant_is_null (elem));

  g_clear_pointer (&elem, g_variant_unref);
  elem = g_variant_get_child_value (v, 2);
  map = g_variant_get_variant (elem);
  g_assert_cmpuint (g_variant_n_children (map), ==, 1);
  g_assert_false (g_variant_lookup (map, "a", "*", NULL));
  g_assert_true (g_variant_lookup (map, "b", "*", NULL));

  json = bp_bolt_decode_json (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json, ==, "[1,null,{\"a\":null,\"b\":1}]");

  /* a top-level null */
  {
    g_autoptr(GByteArray) n = hex ("C0");
    g_autoptr(GVariant) nv = bp_bolt_decode_variant (n->data, n->len, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (bp_bolt_variant_is_null (nv));
  }
}

static void
test_duplicate_keys (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;
  gint64 x;

  g_test_summary ("a repeated map key: the last value wins, in both sinks, for small and big maps");

  /* {"a": 1, "b": 2, "a": 3} */
  bp_bolt_pack_map_header (buf, 3);
  bp_bolt_pack_string (buf, "a", -1);
  bp_bolt_pack_int (buf, 1);
  bp_bolt_pack_string (buf, "b", -1);
  bp_bolt_pack_int (buf, 2);
  bp_bolt_pack_string (buf, "a", -1);
  bp_bolt_pack_int (buf, 3);
  v = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (v), ==, 2);
  g_assert_true (g_variant_lookup (v, "a", "x", &x));
  g_assert_cmpint (x, ==, 3);
  json = bp_bolt_decode_json (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json, ==, "{\"b\":2,\"a\":3}");

  /* a key three times: only the last survives */
  g_byte_array_set_size (buf, 0);
  bp_bolt_pack_map_header (buf, 4);
  bp_bolt_pack_string (buf, "", -1);
  bp_bolt_pack_int (buf, 1);
  bp_bolt_pack_string (buf, "", -1);
  bp_bolt_pack_int (buf, 2);
  bp_bolt_pack_string (buf, "x", -1);
  bp_bolt_pack_int (buf, 0);
  bp_bolt_pack_string (buf, "", -1);
  bp_bolt_pack_int (buf, 3);
  g_clear_pointer (&v, g_variant_unref);
  v = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (v), ==, 2);
  g_assert_true (g_variant_lookup (v, "", "x", &x));
  g_assert_cmpint (x, ==, 3);
  g_clear_pointer (&json, g_free);
  json = bp_bolt_decode_json (buf->data, buf->len, NULL, &error);
  g_assert_cmpstr (json, ==, "{\"x\":0,\"\":3}");

  /* a big map (hash-table path) with a nested map inside the dead entry */
  g_byte_array_set_size (buf, 0);
  bp_bolt_pack_map_header (buf, 41);
  bp_bolt_pack_string (buf, "dup", -1);
  bp_bolt_pack_map_header (buf, 1);
  bp_bolt_pack_string (buf, "inner", -1);
  bp_bolt_pack_int (buf, 7);
  for (guint i = 0; i < 39; i++)
    {
      char k[8];
      g_snprintf (k, sizeof k, "k%u", i);
      bp_bolt_pack_string (buf, k, -1);
      bp_bolt_pack_int (buf, i);
    }
  bp_bolt_pack_string (buf, "dup", -1);
  bp_bolt_pack_null (buf);
  g_clear_pointer (&v, g_variant_unref);
  v = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (v), ==, 39);
  g_assert_false (g_variant_lookup (v, "dup", "*", NULL));
  g_clear_pointer (&json, g_free);
  json = bp_bolt_decode_json (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (json, "{\"k0\":0,"));
  g_assert_true (g_str_has_suffix (json, ",\"k38\":38,\"dup\":null}"));
  g_assert_null (strstr (json, "inner"));
}

static void
test_json_escaping (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *json = NULL;

  bp_bolt_pack_list_header (buf, 2);
  bp_bolt_pack_string (buf, "q\"b\\n\nt\t\x01é", -1);
  bp_bolt_pack_bytes (buf, (const guint8 *) "\x00\x01\xff", 3);
  json = bp_bolt_decode_json (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json, ==, "[\"q\\\"b\\\\n\\nt\\t\\u0001é\",\"AAH/\"]");
}

/* ---------------------------------------------------------------- */
/* Structures                                                         */

static void
pack_node (GByteArray *buf,
           gint64      id,
           const char *label,
           const char *eid)
{
  bp_bolt_pack_struct_header (buf, eid ? 4 : 3, 0x4E);
  bp_bolt_pack_int (buf, id);
  bp_bolt_pack_list_header (buf, 1);
  bp_bolt_pack_string (buf, label, -1);
  bp_bolt_pack_map_header (buf, 1);
  bp_bolt_pack_string (buf, "name", -1);
  bp_bolt_pack_string (buf, label, -1);
  if (eid)
    bp_bolt_pack_string (buf, eid, -1);
}

static void
pack_unbound (GByteArray *buf,
              gint64      id,
              const char *type,
              const char *eid)
{
  bp_bolt_pack_struct_header (buf, eid ? 4 : 3, 0x72);
  bp_bolt_pack_int (buf, id);
  bp_bolt_pack_string (buf, type, -1);
  bp_bolt_pack_map_header (buf, 0);
  if (eid)
    bp_bolt_pack_string (buf, eid, -1);
}

static char *
decode_both (GByteArray *buf,
             GVariant  **variant)
{
  g_autoptr(GError) error = NULL;
  char *json;

  *variant = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  json = bp_bolt_decode_json (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  return json;
}

static void
test_node (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GVariant) labels = NULL;
  g_autoptr(GVariant) props = NULL;
  g_autofree char *json = NULL;
  const char *eid;
  gint64 id;

  g_test_summary ("Node (5.x with element_id, 4.x without) maps to {id, labels as, properties, element-id}");

  pack_node (buf, 3, "Person", "4:abc:3");
  json = decode_both (buf, &v);
  g_assert_cmpstr (json, ==, "{\"id\":3,\"labels\":[\"Person\"],\"properties\":{\"name\":\"Person\"},\"element-id\":\"4:abc:3\"}");
  g_assert_true (g_variant_lookup (v, "id", "x", &id));
  g_assert_cmpint (id, ==, 3);
  g_assert_true (g_variant_lookup (v, "element-id", "&s", &eid));
  g_assert_cmpstr (eid, ==, "4:abc:3");
  labels = g_variant_lookup_value (v, "labels", G_VARIANT_TYPE_STRING_ARRAY);
  g_assert_nonnull (labels);
  props = g_variant_lookup_value (v, "properties", G_VARIANT_TYPE_VARDICT);
  g_assert_nonnull (props);

  g_byte_array_set_size (buf, 0);
  g_clear_pointer (&v, g_variant_unref);
  g_clear_pointer (&json, g_free);
  pack_node (buf, 42, "Old", NULL);
  json = decode_both (buf, &v);
  g_assert_cmpstr (json, ==, "{\"id\":42,\"labels\":[\"Old\"],\"properties\":{\"name\":\"Old\"},\"element-id\":\"42\"}");
}

static void
test_relationship (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GVariant) v = NULL;
  g_autofree char *json = NULL;

  bp_bolt_pack_struct_header (buf, 8, 0x52);
  bp_bolt_pack_int (buf, 11);
  bp_bolt_pack_int (buf, 2);
  bp_bolt_pack_int (buf, 3);
  bp_bolt_pack_string (buf, "KNOWS", -1);
  bp_bolt_pack_map_header (buf, 1);
  bp_bolt_pack_string (buf, "since", -1);
  bp_bolt_pack_int (buf, 1999);
  bp_bolt_pack_string (buf, "r11", -1);
  bp_bolt_pack_string (buf, "n2", -1);
  bp_bolt_pack_string (buf, "n3", -1);
  json = decode_both (buf, &v);
  g_assert_cmpstr (json, ==,
                   "{\"id\":11,\"start\":2,\"end\":3,\"type\":\"KNOWS\",\"properties\":{\"since\":1999},"
                   "\"element-id\":\"r11\",\"start-element-id\":\"n2\",\"end-element-id\":\"n3\"}");
  g_assert_cmpuint (g_variant_n_children (v), ==, 8);
}

static void
test_path (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GVariant) nodes = NULL;
  g_autoptr(GVariant) rels = NULL;
  g_autofree char *json = NULL;

  g_test_summary ("Path: the spec example (42)-[1000]->(69)-[1000]->(42)<-[1001]-(1) is resolved");

  bp_bolt_pack_struct_header (buf, 3, 0x50);
  bp_bolt_pack_list_header (buf, 3);
  pack_node (buf, 42, "A", "n42");
  pack_node (buf, 69, "B", "n69");
  pack_node (buf, 1, "C", "n1");
  bp_bolt_pack_list_header (buf, 2);
  pack_unbound (buf, 1000, "R", "r1000");
  pack_unbound (buf, 1001, "S", "r1001");
  bp_bolt_pack_list_header (buf, 6);
  bp_bolt_pack_int (buf, 1);
  bp_bolt_pack_int (buf, 1);
  bp_bolt_pack_int (buf, 1);
  bp_bolt_pack_int (buf, 0);
  bp_bolt_pack_int (buf, -2);
  bp_bolt_pack_int (buf, 2);
  json = decode_both (buf, &v);

  nodes = g_variant_lookup_value (v, "nodes", G_VARIANT_TYPE ("av"));
  rels = g_variant_lookup_value (v, "relationships", G_VARIANT_TYPE ("av"));
  g_assert_cmpuint (g_variant_n_children (nodes), ==, 4);
  g_assert_cmpuint (g_variant_n_children (rels), ==, 3);

  {
    gint64 want_nodes[] = { 42, 69, 42, 1 };
    /* (id, start, end) */
    gint64 want_rels[][3] = { { 1000, 42, 69 }, { 1000, 69, 42 }, { 1001, 1, 42 } };

    for (guint i = 0; i < 4; i++)
      {
        g_autoptr(GVariant) n = g_variant_get_child_value (nodes, i);
        g_autoptr(GVariant) nd = g_variant_get_variant (n);
        gint64 id;
        g_assert_true (g_variant_lookup (nd, "id", "x", &id));
        g_assert_cmpint (id, ==, want_nodes[i]);
      }
    for (guint i = 0; i < 3; i++)
      {
        g_autoptr(GVariant) r = g_variant_get_child_value (rels, i);
        g_autoptr(GVariant) rd = g_variant_get_variant (r);
        gint64 id, start, end;
        const char *seid;
        g_assert_true (g_variant_lookup (rd, "id", "x", &id));
        g_assert_true (g_variant_lookup (rd, "start", "x", &start));
        g_assert_true (g_variant_lookup (rd, "end", "x", &end));
        g_assert_cmpint (id, ==, want_rels[i][0]);
        g_assert_cmpint (start, ==, want_rels[i][1]);
        g_assert_cmpint (end, ==, want_rels[i][2]);
        g_assert_true (g_variant_lookup (rd, "start-element-id", "&s", &seid));
        g_assert_true (g_str_has_suffix (seid, want_rels[i][1] == 42 ? "n42" : want_rels[i][1] == 69 ? "n69" : "n1"));
      }
  }
  g_assert_nonnull (strstr (json, "\"relationships\":[{\"id\":1000,\"start\":42,\"end\":69,\"type\":\"R\""));
  g_assert_nonnull (strstr (json, "{\"id\":1001,\"start\":1,\"end\":42,\"type\":\"S\",\"properties\":{},"
                                  "\"element-id\":\"r1001\",\"start-element-id\":\"n1\",\"end-element-id\":\"n42\"}"));
}

typedef struct
{
  guint8      tag;
  gint64      f[4];
  guint       n_ints;
  const char *tz;
  const char *json;
} TemporalCase;

static void
test_temporal (void)
{
  static const TemporalCase cases[] = {
    { 0x44, { 0 }, 1, NULL, "{\"type\":\"date\",\"days\":0,\"iso\":\"1970-01-01\"}" },
    { 0x44, { 19782 }, 1, NULL, "{\"type\":\"date\",\"days\":19782,\"iso\":\"2024-02-29\"}" },
    { 0x44, { -719529 }, 1, NULL, "{\"type\":\"date\",\"days\":-719529,\"iso\":\"-0001-12-31\"}" },
    { 0x44, { 2932897 }, 1, NULL, "{\"type\":\"date\",\"days\":2932897,\"iso\":\"+10000-01-01\"}" },
    { 0x54, { G_GINT64_CONSTANT (45000500000000), 3600 }, 2, NULL,
      "{\"type\":\"time\",\"nanoseconds\":45000500000000,\"tz_offset_seconds\":3600,\"iso\":\"12:30:00.500+01:00\"}" },
    { 0x54, { 1, -19800 }, 2, NULL,
      "{\"type\":\"time\",\"nanoseconds\":1,\"tz_offset_seconds\":-19800,\"iso\":\"00:00:00.000000001-05:30\"}" },
    { 0x74, { G_GINT64_CONSTANT (86399999999000) }, 1, NULL,
      "{\"type\":\"local-time\",\"nanoseconds\":86399999999000,\"iso\":\"23:59:59.999999\"}" },
    /* the spec's example: 1970-01-01T02:15:00.000000042+01:00 */
    { 0x49, { 4500, 42, 3600 }, 3, NULL,
      "{\"type\":\"date-time\",\"seconds\":4500,\"nanoseconds\":42,\"tz_offset_seconds\":3600,"
      "\"iso\":\"1970-01-01T02:15:00.000000042+01:00\"}" },
    /* legacy form of the same instant: seconds are local */
    { 0x46, { 8100, 42, 3600 }, 3, NULL,
      "{\"type\":\"date-time\",\"seconds\":4500,\"nanoseconds\":42,\"tz_offset_seconds\":3600,"
      "\"iso\":\"1970-01-01T02:15:00.000000042+01:00\"}" },
    { 0x69, { 4500, 42 }, 2, "Europe/Paris",
      "{\"type\":\"date-time-zone-id\",\"seconds\":4500,\"nanoseconds\":42,\"tz_id\":\"Europe/Paris\","
      "\"iso\":\"1970-01-01T02:15:00.000000042+01:00[Europe/Paris]\"}" },
    { 0x66, { 8100, 42 }, 2, "Europe/Paris",
      "{\"type\":\"date-time-zone-id\",\"seconds\":4500,\"nanoseconds\":42,\"tz_id\":\"Europe/Paris\","
      "\"iso\":\"1970-01-01T02:15:00.000000042+01:00[Europe/Paris]\"}" },
    { 0x69, { 4500, 0 }, 2, "Mars/Olympus",
      "{\"type\":\"date-time-zone-id\",\"seconds\":4500,\"nanoseconds\":0,\"tz_id\":\"Mars/Olympus\","
      "\"iso\":\"1970-01-01T01:15:00Z[Mars/Olympus]\"}" },
    { 0x64, { -1, 0 }, 2, NULL,
      "{\"type\":\"local-date-time\",\"seconds\":-1,\"nanoseconds\":0,\"iso\":\"1969-12-31T23:59:59\"}" },
    { 0x45, { 14, 3, 14706, 500000000 }, 4, NULL,
      "{\"type\":\"duration\",\"months\":14,\"days\":3,\"seconds\":14706,\"nanoseconds\":500000000,"
      "\"iso\":\"P1Y2M3DT4H5M6.500S\"}" },
    { 0x45, { 0, 0, 0, 0 }, 4, NULL,
      "{\"type\":\"duration\",\"months\":0,\"days\":0,\"seconds\":0,\"nanoseconds\":0,\"iso\":\"PT0S\"}" },
    { 0x45, { 0, 0, -1, 500000000 }, 4, NULL,
      "{\"type\":\"duration\",\"months\":0,\"days\":0,\"seconds\":-1,\"nanoseconds\":500000000,\"iso\":\"PT-0.500S\"}" },
  };

  g_test_summary ("temporal structures: raw fields plus ISO-8601 text, legacy forms normalised to UTC seconds");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GByteArray) buf = g_byte_array_new ();
      g_autoptr(GVariant) v = NULL;
      g_autofree char *json = NULL;
      const char *type;

      bp_bolt_pack_struct_header (buf, cases[i].n_ints + (cases[i].tz ? 1 : 0), cases[i].tag);
      for (guint k = 0; k < cases[i].n_ints; k++)
        bp_bolt_pack_int (buf, cases[i].f[k]);
      if (cases[i].tz)
        bp_bolt_pack_string (buf, cases[i].tz, -1);
      json = decode_both (buf, &v);
      g_assert_cmpstr (json, ==, cases[i].json);
      g_assert_true (g_variant_lookup (v, "type", "&s", &type));
      g_assert_true (g_variant_lookup (v, "iso", "&s", NULL));
    }
}

static void
test_points (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GVariant) v = NULL;
  g_autofree char *json = NULL;
  double z;

  bp_bolt_pack_struct_header (buf, 3, 0x58);
  bp_bolt_pack_int (buf, 7203);
  bp_bolt_pack_float (buf, 1.5);
  bp_bolt_pack_float (buf, -2.0);
  json = decode_both (buf, &v);
  g_assert_cmpstr (json, ==, "{\"srid\":7203,\"x\":1.5,\"y\":-2.0}");

  g_byte_array_set_size (buf, 0);
  g_clear_pointer (&v, g_variant_unref);
  g_clear_pointer (&json, g_free);
  bp_bolt_pack_struct_header (buf, 4, 0x59);
  bp_bolt_pack_int (buf, 9157);
  bp_bolt_pack_float (buf, 1);
  bp_bolt_pack_float (buf, 2);
  bp_bolt_pack_float (buf, 3.25);
  json = decode_both (buf, &v);
  g_assert_cmpstr (json, ==, "{\"srid\":9157,\"x\":1.0,\"y\":2.0,\"z\":3.25}");
  g_assert_true (g_variant_lookup (v, "z", "d", &z));
  g_assert_cmpfloat (z, ==, 3.25);
}

/* ---------------------------------------------------------------- */
/* Records                                                            */

static void
test_record (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GVariant) v = NULL;
  g_autoptr(GString) out = g_string_new ("");
  g_autoptr(GError) error = NULL;
  const char *keys[] = { "a", "b", "c" };
  BpBoltReader r;

  bp_bolt_pack_list_header (buf, 3);
  bp_bolt_pack_int (buf, 1);
  bp_bolt_pack_null (buf);
  bp_bolt_pack_string (buf, "x", -1);

  bp_bolt_reader_init (&r, buf->data, buf->len, NULL);
  v = bp_bolt_record_to_variant (&r, keys, 3, &error);
  g_assert_no_error (error);
  g_assert_true (bp_bolt_reader_at_end (&r));
  g_assert_cmpuint (g_variant_n_children (v), ==, 2);
  g_assert_false (g_variant_lookup (v, "b", "*", NULL));

  bp_bolt_reader_init (&r, buf->data, buf->len, NULL);
  g_assert_true (bp_bolt_record_to_json (&r, keys, 3, out, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (out->str, ==, "{\"a\":1,\"b\":null,\"c\":\"x\"}");

  /* wrong arity */
  bp_bolt_reader_init (&r, buf->data, buf->len, NULL);
  g_string_truncate (out, 0);
  g_assert_false (bp_bolt_record_to_json (&r, keys, 2, out, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_assert_cmpuint (out->len, ==, 0);
}

/* ---------------------------------------------------------------- */
/* Encoding GVariant parameters and round trips                       */

static void
test_pack_variant (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) params = NULL;
  g_autoptr(GVariant) back = NULL;
  g_autofree char *json = NULL;

  g_test_summary ("GVariant parameters encode as documented: o '/' is null, ay is bytes, nested av/a{sv}");

  params = g_variant_ref_sink (g_variant_new_parsed (
      "{'i': <int32 -5>, 'u': <uint32 300>, 't': <uint64 7>, 'b': <true>, 'd': <1.5>, "
      "'s': <'hé'>, 'null': <@o '/'>, 'bytes': <[byte 0x41, 0x42]>, 'list': <[<1>, <'two'>, <@o '/'>]>, "
      "'as': <['x', 'y']>, 'nested': <{'k': <{'deep': <int64 1>}>}>, 'tuple': <(1, 'a')>, "
      "'maybe': <@mi nothing>, 'y': <byte 0xff>}"));
  g_assert_true (bp_bolt_pack_variant (buf, params, NULL, &error));
  g_assert_no_error (error);
  json = bp_bolt_decode_json (buf->data, buf->len, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (json, ==,
                   "{\"i\":-5,\"u\":300,\"t\":7,\"b\":true,\"d\":1.5,\"s\":\"hé\",\"null\":null,"
                   "\"bytes\":\"QUI=\",\"list\":[1,\"two\",null],\"as\":[\"x\",\"y\"],"
                   "\"nested\":{\"k\":{\"deep\":1}},\"tuple\":[1,\"a\"],\"maybe\":null,\"y\":255}");

  /* bytes that were produced from a{sv} decode back to an equal a{sv},
   * once the int widths are normalised */
  {
    g_autoptr(GVariant) simple = g_variant_ref_sink (g_variant_new_parsed (
        "{'a': <int64 1>, 'b': <[<'x'>, <2.5>, <@o '/'>]>, 'c': <{'d': <b'xy'>}>}"));
    g_autoptr(GByteArray) again = g_byte_array_new ();

    g_byte_array_set_size (buf, 0);
    g_assert_true (bp_bolt_pack_variant (buf, simple, NULL, &error));
    back = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_variant_equal (back, simple));
    /* decode → encode reproduces the bytes */
    g_assert_true (bp_bolt_pack_variant (again, back, NULL, &error));
    g_assert_cmpmem (again->data, again->len, buf->data, buf->len);
  }
}

static void
test_pack_variant_errors (void)
{
  const char *bad[] = {
    "{'h': <handle 0>}",
    "{'o': <@o '/org/x'>}",
    "{'g': <@g 'ss'>}",
    "{'t': <uint64 18446744073709551615>}",
    "{'m': <@a{is} {1: 'a'}>}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GByteArray) buf = g_byte_array_new ();
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) v = g_variant_ref_sink (g_variant_new_parsed (bad[i]));

      g_assert_false (bp_bolt_pack_variant (buf, v, NULL, &error));
      g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
      g_assert_cmpuint (buf->len, ==, 0);
    }

  /* limits */
  {
    BpBoltLimits limits;
    g_autoptr(GByteArray) buf = g_byte_array_new ();
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) deep = g_variant_ref_sink (g_variant_new_parsed ("[[[[[[1]]]]]]"));
    g_autoptr(GVariant) big = g_variant_ref_sink (g_variant_new_parsed ("['a', 'b', 'c', 'd']"));
    g_autoptr(GVariant) str = g_variant_ref_sink (g_variant_new_string ("0123456789"));

    bp_bolt_limits_init_default (&limits);
    limits.max_depth = 4;
    limits.max_collection_size = 3;
    limits.max_string_size = 9;
    g_assert_false (bp_bolt_pack_variant (buf, deep, &limits, &error));
    g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
    g_clear_error (&error);
    g_assert_false (bp_bolt_pack_variant (buf, big, &limits, &error));
    g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
    g_clear_error (&error);
    g_assert_false (bp_bolt_pack_variant (buf, str, &limits, &error));
    g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  }
}

/* ---------------------------------------------------------------- */
/* Malformed input                                                    */

typedef struct
{
  const char *name;
  const char *hex;
  GQuark    (*domain) (void);
  int         code;
} BadCase;

static GQuark
io_error (void)
{
  return G_IO_ERROR;
}

static GQuark
bp_error (void)
{
  return BP_ERROR;
}

static const BadCase bad_cases[] = {
  { "empty", "", io_error, G_IO_ERROR_INVALID_DATA },
  { "reserved-C4", "C4", io_error, G_IO_ERROR_INVALID_DATA },
  { "reserved-C7", "C7", io_error, G_IO_ERROR_INVALID_DATA },
  { "reserved-CF", "CF", io_error, G_IO_ERROR_INVALID_DATA },
  { "reserved-D3", "D3", io_error, G_IO_ERROR_INVALID_DATA },
  { "reserved-D7", "D7", io_error, G_IO_ERROR_INVALID_DATA },
  { "reserved-DB", "DB", io_error, G_IO_ERROR_INVALID_DATA },
  { "reserved-DF", "DF", io_error, G_IO_ERROR_INVALID_DATA },
  { "reserved-E0", "E0", io_error, G_IO_ERROR_INVALID_DATA },
  { "reserved-EF", "EF", io_error, G_IO_ERROR_INVALID_DATA },
  { "truncated-int8", "C8", io_error, G_IO_ERROR_INVALID_DATA },
  { "truncated-int64", "CB 00 00 00 00 00 00 00", io_error, G_IO_ERROR_INVALID_DATA },
  { "truncated-float", "C1 3F F1", io_error, G_IO_ERROR_INVALID_DATA },
  { "truncated-string", "85 61 62", io_error, G_IO_ERROR_INVALID_DATA },
  { "truncated-string32-size", "D2 00 00", io_error, G_IO_ERROR_INVALID_DATA },
  { "string32-huge", "D2 7F FF FF FF 61", bp_error, BP_ERROR_LIMIT_EXCEEDED },
  { "bytes-above-2^31", "CE 80 00 00 00", io_error, G_IO_ERROR_INVALID_DATA },
  { "truncated-bytes", "CC 05 01 02", io_error, G_IO_ERROR_INVALID_DATA },
  { "truncated-list", "93 01 02", io_error, G_IO_ERROR_INVALID_DATA },
  { "list-count-beyond-input", "D6 00 0F 00 00 01", io_error, G_IO_ERROR_INVALID_DATA },
  { "list-count-beyond-limit", "D6 7F FF FF FF", bp_error, BP_ERROR_LIMIT_EXCEEDED },
  { "truncated-map", "A2 81 61 01", io_error, G_IO_ERROR_INVALID_DATA },
  { "map-int-key", "A1 01 02", io_error, G_IO_ERROR_INVALID_DATA },
  { "map-null-key", "A1 C0 02", io_error, G_IO_ERROR_INVALID_DATA },
  { "trailing-garbage", "01 02", io_error, G_IO_ERROR_INVALID_DATA },
  { "invalid-utf8", "82 C3 28", io_error, G_IO_ERROR_INVALID_DATA },
  { "nul-in-string", "83 61 00 62", io_error, G_IO_ERROR_INVALID_DATA },
  { "unknown-struct", "B1 01 01", io_error, G_IO_ERROR_INVALID_DATA },
  { "struct-truncated", "B3 44 01", io_error, G_IO_ERROR_INVALID_DATA },
  { "struct-no-tag", "B0", io_error, G_IO_ERROR_INVALID_DATA },
  { "date-wrong-arity", "B2 44 01 02", io_error, G_IO_ERROR_INVALID_DATA },
  { "date-string-field", "B1 44 81 61", io_error, G_IO_ERROR_INVALID_DATA },
  { "date-out-of-range", "B1 44 CB 7F FF FF FF FF FF FF FF", io_error, G_IO_ERROR_INVALID_DATA },
  { "time-negative", "B2 54 FF 00", io_error, G_IO_ERROR_INVALID_DATA },
  { "datetime-nanos", "B3 49 00 CA 3B 9A CA 00 00", io_error, G_IO_ERROR_INVALID_DATA },
  { "datetime-min-seconds", "B3 49 CB 80 00 00 00 00 00 00 00 00 00", io_error, G_IO_ERROR_INVALID_DATA },
  { "duration-min", "B4 45 CB 80 00 00 00 00 00 00 00 00 00 00", io_error, G_IO_ERROR_INVALID_DATA },
  { "point-int-coords", "B3 58 01 02 03", io_error, G_IO_ERROR_INVALID_DATA },
  { "node-arity", "B2 4E 01 90", io_error, G_IO_ERROR_INVALID_DATA },
  { "node-labels-not-strings", "B3 4E 01 91 01 A0", io_error, G_IO_ERROR_INVALID_DATA },
  { "node-props-list", "B3 4E 01 90 90", io_error, G_IO_ERROR_INVALID_DATA },
  { "rel-arity", "B6 52 01 02 03 81 54 A0 80", io_error, G_IO_ERROR_INVALID_DATA },
  { "path-empty", "B3 50 90 90 90", io_error, G_IO_ERROR_INVALID_DATA },
  { "path-odd", "B3 50 91 B3 4E 01 90 A0 90 91 01", io_error, G_IO_ERROR_INVALID_DATA },
  { "path-rel-zero", "B3 50 91 B3 4E 01 90 A0 90 92 00 00", io_error, G_IO_ERROR_INVALID_DATA },
  { "path-node-oob", "B3 50 91 B3 4E 01 90 A0 91 B3 72 01 81 52 A0 92 01 05", io_error, G_IO_ERROR_INVALID_DATA },
  { "path-rel-oob", "B3 50 91 B3 4E 01 90 A0 91 B3 72 01 81 52 A0 92 FE 00", io_error, G_IO_ERROR_INVALID_DATA },
  { "path-node-not-node", "B3 50 91 B1 44 01 90 90", io_error, G_IO_ERROR_INVALID_DATA },
  { "path-rel-bound", "B3 50 91 B3 4E 01 90 A0 91 B5 52 01 02 03 81 54 A0 90", io_error, G_IO_ERROR_INVALID_DATA },
};

static void
test_malformed (void)
{
  g_test_summary ("every malformed input is an error of the documented domain, never a crash");

  for (guint i = 0; i < G_N_ELEMENTS (bad_cases); i++)
    {
      g_autoptr(GByteArray) buf = hex (bad_cases[i].hex);
      g_autoptr(GError) error = NULL;
      g_autoptr(GError) error2 = NULL;
      g_autoptr(GVariant) v = NULL;
      g_autofree char *json = NULL;

      g_test_message ("case %s", bad_cases[i].name);
      v = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
      g_assert_null (v);
      g_assert_error (error, bad_cases[i].domain (), bad_cases[i].code);
      json = bp_bolt_decode_json (buf->data, buf->len, NULL, &error2);
      g_assert_null (json);
      g_assert_error (error2, bad_cases[i].domain (), bad_cases[i].code);
    }
}

static void
test_limits (void)
{
  BpBoltLimits limits;
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = NULL;

  g_test_summary ("depth, collection size, string size and total size limits are enforced when decoding");

  bp_bolt_limits_init_default (&limits);

  /* depth: 100 nested lists */
  for (guint i = 0; i < 100; i++)
    bp_bolt_pack_list_header (buf, 1);
  bp_bolt_pack_int (buf, 1);
  v = bp_bolt_decode_variant (buf->data, buf->len, &limits, &error);
  g_assert_null (v);
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);

  /* ... deep maps too, and within the limit it works */
  g_byte_array_set_size (buf, 0);
  for (guint i = 0; i < 63; i++)
    {
      bp_bolt_pack_map_header (buf, 1);
      bp_bolt_pack_string (buf, "k", -1);
    }
  bp_bolt_pack_int (buf, 1);
  v = bp_bolt_decode_variant (buf->data, buf->len, &limits, &error);
  g_assert_no_error (error);
  g_clear_pointer (&v, g_variant_unref);
  limits.max_depth = 10;
  v = bp_bolt_decode_variant (buf->data, buf->len, &limits, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);

  /* what decodes within the depth limit encodes again (v boxes do not
   * count as levels) */
  {
    g_autoptr(GByteArray) again = g_byte_array_new ();

    bp_bolt_limits_init_default (&limits);
    g_byte_array_set_size (buf, 0);
    for (guint i = 0; i < 64; i++)
      bp_bolt_pack_list_header (buf, 1);
    bp_bolt_pack_int (buf, 1);
    v = bp_bolt_decode_variant (buf->data, buf->len, &limits, &error);
    g_assert_no_error (error);
    g_assert_true (bp_bolt_pack_variant (again, v, &limits, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (again->data, again->len, buf->data, buf->len);
    g_clear_pointer (&v, g_variant_unref);
  }

  /* collection count */
  bp_bolt_limits_init_default (&limits);
  limits.max_collection_size = 2;
  g_byte_array_set_size (buf, 0);
  bp_bolt_pack_list_header (buf, 3);
  bp_bolt_pack_int (buf, 1);
  bp_bolt_pack_int (buf, 2);
  bp_bolt_pack_int (buf, 3);
  v = bp_bolt_decode_variant (buf->data, buf->len, &limits, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);

  /* string size */
  bp_bolt_limits_init_default (&limits);
  limits.max_string_size = 3;
  g_byte_array_set_size (buf, 0);
  bp_bolt_pack_string (buf, "abcd", -1);
  v = bp_bolt_decode_variant (buf->data, buf->len, &limits, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);

  /* total size */
  bp_bolt_limits_init_default (&limits);
  limits.max_message_size = 3;
  v = bp_bolt_decode_variant (buf->data, buf->len, &limits, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);
}

static void
test_path_expansion (void)
{
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) v = NULL;
  g_autofree char *big = g_malloc0 (10001);
  const guint steps = 5000;

  g_test_summary ("a Path referencing one big node thousands of times is refused, not expanded");

  memset (big, 'x', 10000);
  bp_bolt_pack_struct_header (buf, 3, 0x50);
  bp_bolt_pack_list_header (buf, 1);
  pack_node (buf, 1, big, "n1");
  bp_bolt_pack_list_header (buf, 1);
  pack_unbound (buf, 2, "LOOP", "r2");
  bp_bolt_pack_list_header (buf, steps * 2);
  for (guint i = 0; i < steps; i++)
    {
      bp_bolt_pack_int (buf, 1);
      bp_bolt_pack_int (buf, 0);
    }
  v = bp_bolt_decode_variant (buf->data, buf->len, NULL, &error);
  g_assert_null (v);
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bolt/packstream/ints/golden", test_ints_golden);
  g_test_add_func ("/bolt/packstream/ints/non-minimal", test_ints_non_minimal);
  g_test_add_func ("/bolt/packstream/scalars/golden", test_scalars_golden);
  g_test_add_func ("/bolt/packstream/floats/decode", test_floats_decode);
  g_test_add_func ("/bolt/packstream/strings/golden", test_strings_golden);
  g_test_add_func ("/bolt/packstream/collections/golden", test_collections_golden);
  g_test_add_func ("/bolt/packstream/struct/header", test_struct_header);
  g_test_add_func ("/bolt/packstream/nulls", test_nulls);
  g_test_add_func ("/bolt/packstream/duplicate-keys", test_duplicate_keys);
  g_test_add_func ("/bolt/packstream/json/escaping", test_json_escaping);
  g_test_add_func ("/bolt/packstream/struct/node", test_node);
  g_test_add_func ("/bolt/packstream/struct/relationship", test_relationship);
  g_test_add_func ("/bolt/packstream/struct/path", test_path);
  g_test_add_func ("/bolt/packstream/struct/temporal", test_temporal);
  g_test_add_func ("/bolt/packstream/struct/points", test_points);
  g_test_add_func ("/bolt/packstream/record", test_record);
  g_test_add_func ("/bolt/packstream/encode/variant", test_pack_variant);
  g_test_add_func ("/bolt/packstream/encode/errors", test_pack_variant_errors);
  g_test_add_func ("/bolt/packstream/malformed", test_malformed);
  g_test_add_func ("/bolt/packstream/limits", test_limits);
  g_test_add_func ("/bolt/packstream/path-expansion", test_path_expansion);

  return g_test_run ();
}
