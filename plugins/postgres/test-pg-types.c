/* test-pg-types.c: value conversion, parameters and error helpers (no server)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-pg-error.h"
#include "bp-pg-types.h"

static void
assert_variant_text (GVariant   *value,
                     const char *expected)
{
  g_autofree char *text = g_variant_print (value, TRUE);

  g_assert_cmpstr (text, ==, expected);
}

static void
test_scalars (void)
{
  struct {
    Oid type;
    const char *text;
    const char *expected;
  } cases[] = {
    { BP_PG_OID_INT2, "-32768", "<-32768>" },
    { BP_PG_OID_INT4, "2147483647", "2147483647" },
    { BP_PG_OID_INT8, "-9223372036854775808", "int64 -9223372036854775808" },
    { BP_PG_OID_OID, "4294967295", "uint32 4294967295" },
    { BP_PG_OID_FLOAT8, "1.5", "1.5" },
    { BP_PG_OID_FLOAT4, "-Infinity", "-inf" },
    { BP_PG_OID_NUMERIC, "12345678901234567890.000000001", "'12345678901234567890.000000001'" },
    { BP_PG_OID_NUMERIC, "NaN", "'NaN'" },
    { BP_PG_OID_BOOL, "t", "true" },
    { BP_PG_OID_BOOL, "f", "false" },
    { BP_PG_OID_TEXT, "", "''" },
    { BP_PG_OID_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'" },
    { BP_PG_OID_JSONB, "{\"a\": 1}", "'{\"a\": 1}'" },
    { BP_PG_OID_TIMESTAMPTZ, "2024-01-02 03:04:05+00", "'2024-01-02 03:04:05+00'" },
    { 99999, "whatever", "'whatever'" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = bp_pg_value_to_variant (cases[i].type, cases[i].text,
                                                          strlen (cases[i].text), &error);
      g_assert_no_error (error);
      g_variant_ref_sink (value);
      /* int16/int32 print without a type annotation: check the type too. */
      if (cases[i].type == BP_PG_OID_INT2 || cases[i].type == BP_PG_OID_INT4)
        g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32));
      if (cases[i].type == BP_PG_OID_INT2)
        g_assert_cmpint (g_variant_get_int32 (value), ==, -32768);
      else
        assert_variant_text (value, cases[i].expected);
    }
}

static void
test_scalars_malformed (void)
{
  const struct { Oid type; const char *text; } cases[] = {
    { BP_PG_OID_INT4, "12x" },
    { BP_PG_OID_INT4, "2147483648" },
    { BP_PG_OID_INT2, "40000" },
    { BP_PG_OID_INT8, "" },
    { BP_PG_OID_OID, "-1" },
    { BP_PG_OID_FLOAT8, "1.5.5" },
    { BP_PG_OID_BOOL, "yes" },
    { BP_PG_OID_BYTEA, "\\x0" },
    { BP_PG_OID_BYTEA, "\\xzz" },
    { BP_PG_OID_INT4_ARRAY, "{1,2" },
    { BP_PG_OID_INT4_ARRAY, "1,2}" },
    { BP_PG_OID_INT4_ARRAY, "{1,{2}x}" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      GVariant *value = bp_pg_value_to_variant (cases[i].type, cases[i].text,
                                                strlen (cases[i].text), &error);
      g_assert_null (value);
      g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
    }
}

static void
test_bytea (void)
{
  const guint8 expected[] = { 0x00, 0xde, 0xad, 0xbe, 0xef, 0x5c };
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) hex = bp_pg_bytea_decode ("\\x00DEadbeef5c", 14, &error);
  g_autoptr(GBytes) escaped = NULL;
  g_autoptr(GBytes) empty = NULL;
  const char *esc = "\\000\\336\\255\\276\\357\\\\";

  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (hex, NULL), g_bytes_get_size (hex), expected, sizeof expected);

  escaped = bp_pg_bytea_decode (esc, strlen (esc), &error);
  g_assert_no_error (error);
  g_assert_cmpmem (g_bytes_get_data (escaped, NULL), g_bytes_get_size (escaped), expected, sizeof expected);

  empty = bp_pg_bytea_decode ("\\x", 2, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_bytes_get_size (empty), ==, 0);
}

static void
test_arrays (void)
{
  struct {
    Oid type;
    const char *text;
    const char *expected;
  } cases[] = {
    { BP_PG_OID_INT4_ARRAY, "{}", "@av []" },
    { BP_PG_OID_INT4_ARRAY, "{1,NULL,3}", "[<1>, <objectpath '/'>, <3>]" },
    { BP_PG_OID_INT8_ARRAY, "{-5}", "[<int64 -5>]" },
    { BP_PG_OID_TEXT_ARRAY, "{a,\"b c\",\"x\\\"y\",\"back\\\\slash\",\"NULL\",null,\"\"}",
      "[<'a'>, <'b c'>, <'x\"y'>, <'back\\\\slash'>, <'NULL'>, <objectpath '/'>, <''>]" },
    { BP_PG_OID_TEXT_ARRAY, "{  spaced out  ,x}", "[<'spaced out'>, <'x'>]" },
    { BP_PG_OID_TEXT_ARRAY, "{\"{}\",\",\"}", "[<'{}'>, <','>]" },
    { BP_PG_OID_INT4_ARRAY, "{{1,2},{3,4}}", "[<[<1>, <2>]>, <[<3>, <4>]>]" },
    { BP_PG_OID_INT4_ARRAY, "[0:1]={7,8}", "[<7>, <8>]" },
    { BP_PG_OID_BOOL_ARRAY, "{t,f}", "[<true>, <false>]" },
    { BP_PG_OID_BYTEA_ARRAY, "{\"\\\\x0102\",NULL}", "[<[byte 0x01, 0x02]>, <objectpath '/'>]" },
    { BP_PG_OID_FLOAT8_ARRAY, "{1.25,NaN}", "[<1.25>, <nan>]" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) value = bp_pg_value_to_variant (cases[i].type, cases[i].text,
                                                          strlen (cases[i].text), &error);
      g_assert_no_error (error);
      g_variant_ref_sink (value);
      assert_variant_text (value, cases[i].expected);
    }
}

static void
test_arrays_depth (void)
{
  g_autoptr(GError) error = NULL;
  GVariant *value;
  const char *ok = "{{{{{{1}}}}}}";
  const char *deep = "{{{{{{{1}}}}}}}";

  value = bp_pg_array_parse (ok, strlen (ok), BP_PG_OID_INT4, &error);
  g_assert_no_error (error);
  g_variant_unref (g_variant_ref_sink (value));

  value = bp_pg_array_parse (deep, strlen (deep), BP_PG_OID_INT4, &error);
  g_assert_null (value);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
}

static char *
json_of (Oid         type,
         const char *text)
{
  g_autoptr(GString) out = g_string_new (NULL);
  g_autoptr(GError) error = NULL;

  g_assert_true (bp_pg_json_append_value (out, type, text, strlen (text), &error));
  g_assert_no_error (error);
  return g_strdup (out->str);
}

static void
test_json (void)
{
  struct {
    Oid type;
    const char *text;
    const char *expected;
  } cases[] = {
    { BP_PG_OID_INT8, "-9223372036854775808", "-9223372036854775808" },
    { BP_PG_OID_NUMERIC, "12345678901234567890.000000001", "12345678901234567890.000000001" },
    { BP_PG_OID_NUMERIC, "NaN", "\"NaN\"" },
    { BP_PG_OID_FLOAT8, "-Infinity", "\"-Infinity\"" },
    { BP_PG_OID_FLOAT8, "1e+100", "1e+100" },
    { BP_PG_OID_BOOL, "t", "true" },
    { BP_PG_OID_TEXT, "quote\" back\\ nl\n tab\t bell\a", "\"quote\\\" back\\\\ nl\\n tab\\t bell\\u0007\"" },
    { BP_PG_OID_JSON, "{\"a\":\n [1, 2]}", "{\"a\":  [1, 2]}" },
    { BP_PG_OID_BYTEA, "\\x00ff10", "\"AP8Q\"" },
    { BP_PG_OID_INT4_ARRAY, "{{1,NULL},{3,4}}", "[[1,null],[3,4]]" },
    { BP_PG_OID_TEXT_ARRAY, "{\"a,b\",NULL}", "[\"a,b\",null]" },
    { BP_PG_OID_TIMESTAMPTZ, "2024-01-02 03:04:05+00", "\"2024-01-02 03:04:05+00\"" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *json = json_of (cases[i].type, cases[i].text);
      g_assert_cmpstr (json, ==, cases[i].expected);
    }
}

static void
test_json_invalid_utf8 (void)
{
  g_autoptr(GString) out = g_string_new (NULL);

  bp_pg_json_append_string (out, "a\xff" "b", 3);
  g_assert_true (g_utf8_validate (out->str, -1, NULL));
  g_assert_true (g_str_has_prefix (out->str, "\"a"));
}

static void
test_csv (void)
{
  struct {
    const char *text;
    const char *expected;
  } cases[] = {
    { "plain", "plain" },
    { "", "\"\"" },
    { "a,b", "\"a,b\"" },
    { "say \"hi\"", "\"say \"\"hi\"\"\"" },
    { "two\nlines", "\"two\nlines\"" },
    { "cr\r", "\"cr\r\"" },
    { " spaces ", " spaces " },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GString) out = g_string_new (NULL);

      bp_pg_csv_append_field (out, cases[i].text, strlen (cases[i].text));
      g_assert_cmpstr (out->str, ==, cases[i].expected);
    }

  {
    g_autoptr(GString) out = g_string_new (NULL);
    bp_pg_csv_append_field (out, NULL, 0);
    g_assert_cmpstr (out->str, ==, "");
  }
}

static GVariant *
params_of (const char *text)
{
  g_autoptr(GError) error = NULL;
  GVariant *v = g_variant_parse (G_VARIANT_TYPE ("av"), text, NULL, NULL, &error);

  g_assert_no_error (error);
  return v;
}

static void
test_params (void)
{
  g_autoptr(GVariant) v = params_of ("[<int64 -7>, <42>, <uint32 7>, <1.5>, <true>, <'text'>, "
                                     "<[byte 0x00, 0x01]>, <objectpath '/'>, <[<1>, <objectpath '/'>]>, "
                                     "<['a\"b', 'c\\\\d']>, <[<[<1>, <2>]>, <[<3>, <4>]>]>, "
                                     "<double nan>, <uint64 18446744073709551615>, <<int16 -3>>]");
  g_autoptr(GError) error = NULL;
  g_autoptr(BpPgParams) p = bp_pg_params_new (v, &error);

  g_assert_no_error (error);
  g_assert_nonnull (p);
  g_assert_cmpint (p->n, ==, 14);

  g_assert_cmpuint (p->types[0], ==, BP_PG_OID_INT8);
  g_assert_cmpstr (p->values[0], ==, "-7");
  g_assert_cmpuint (p->types[1], ==, BP_PG_OID_INT4);
  g_assert_cmpstr (p->values[1], ==, "42");
  g_assert_cmpuint (p->types[2], ==, BP_PG_OID_INT8);
  g_assert_cmpstr (p->values[2], ==, "7");
  g_assert_cmpuint (p->types[3], ==, BP_PG_OID_FLOAT8);
  g_assert_cmpstr (p->values[3], ==, "1.5");
  g_assert_cmpuint (p->types[4], ==, BP_PG_OID_BOOL);
  g_assert_cmpstr (p->values[4], ==, "t");
  g_assert_cmpuint (p->types[5], ==, 0);
  g_assert_cmpstr (p->values[5], ==, "text");
  g_assert_cmpuint (p->types[6], ==, BP_PG_OID_BYTEA);
  g_assert_cmpint (p->formats[6], ==, 1);
  g_assert_cmpint (p->lengths[6], ==, 2);
  g_assert_cmpmem (p->values[6], 2, "\x00\x01", 2);
  g_assert_null (p->values[7]);
  g_assert_cmpuint (p->types[8], ==, BP_PG_OID_INT4_ARRAY);
  g_assert_cmpstr (p->values[8], ==, "{\"1\",NULL}");
  g_assert_cmpuint (p->types[9], ==, 0);
  g_assert_cmpstr (p->values[9], ==, "{\"a\\\"b\",\"c\\\\d\"}");
  g_assert_cmpstr (p->values[10], ==, "{{\"1\",\"2\"},{\"3\",\"4\"}}");
  g_assert_cmpstr (p->values[11], ==, "NaN");
  g_assert_cmpuint (p->types[12], ==, BP_PG_OID_NUMERIC);
  g_assert_cmpstr (p->values[12], ==, "18446744073709551615");
  g_assert_cmpuint (p->types[13], ==, 21);
  g_assert_cmpstr (p->values[13], ==, "-3");
}

static void
test_params_invalid (void)
{
  const struct { const char *params; const char *needle; } cases[] = {
    { "[<1>, <{'a': <1>}>]", "params[1] ($2)" },
    { "[<objectpath '/x'>]", "params[0] ($1)" },
    { "[<(1, 2)>]", "params[0] ($1)" },
    { "[<[<1>, <'a'>]>]", "mixes element types" },
    { "[<@mi 5>]", "params[0] ($1)" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GVariant) v = params_of (cases[i].params);
      g_autoptr(GError) error = NULL;
      BpPgParams *p = bp_pg_params_new (v, &error);

      g_assert_null (p);
      g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
      g_assert_nonnull (strstr (error->message, cases[i].needle));
    }
}

static void
test_sql_count_params (void)
{
  const struct { const char *sql; int expected; } cases[] = {
    { "SELECT 1", 0 },
    { "SELECT $1, $2", 2 },
    { "SELECT $10", 10 },
    { "SELECT '$3' || $1", 1 },
    { "SELECT E'it\\'s $5' || $1", 1 },
    { "SELECT 'it''s $5', $2", 2 },
    { "SELECT \"col$9\" FROM t WHERE a = $1", 1 },
    { "SELECT $$ $7 $$, $1", 1 },
    { "SELECT $fn$ body $8 $fn$ || $2", 2 },
    { "SELECT 1 -- $4\n, $1", 1 },
    { "SELECT /* $4 /* nested $5 */ $6 */ $1", 1 },
    { "SELECT a$1 FROM t", 0 },
    { "SELECT $1::int[]", 1 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    g_assert_cmpint (bp_pg_sql_count_params (cases[i].sql), ==, cases[i].expected);
}

static void
test_params_count (void)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (bp_pg_params_check_count ("SELECT $1, $2", 2, &error));
  g_assert_no_error (error);

  g_assert_false (bp_pg_params_check_count ("SELECT $1, $2", 1, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "params[1] ($2)"));
  g_clear_error (&error);

  g_assert_false (bp_pg_params_check_count ("SELECT $1", 3, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "params[1] ($2)"));
}

static void
test_error_sqlstate (void)
{
  g_autoptr(GError) error = g_error_new (BP_ERROR, BP_ERROR_BACKEND,
                                         "statement 1: SQLSTATE 23505: duplicate key (DETAIL: x)");
  g_autoptr(GError) none = g_error_new (BP_ERROR, BP_ERROR_BACKEND, "SQLSTATE 2350");
  g_autoptr(GError) unavailable = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "gone");
  char sqlstate[6];

  g_assert_true (bp_pg_error_get_sqlstate (error, sqlstate));
  g_assert_cmpstr (sqlstate, ==, "23505");
  g_assert_cmpint (bp_pg_error_classify (error), ==, BP_PG_ERROR_CLASS_CLIENT);
  g_assert_false (bp_pg_error_get_sqlstate (none, sqlstate));
  g_assert_cmpint (bp_pg_error_classify (unavailable), ==, BP_PG_ERROR_CLASS_CONNECTION);

  g_assert_cmpint (bp_pg_sqlstate_classify ("40001"), ==, BP_PG_ERROR_CLASS_RETRY_TX);
  g_assert_cmpint (bp_pg_sqlstate_classify ("40P01"), ==, BP_PG_ERROR_CLASS_RETRY_TX);
  g_assert_cmpint (bp_pg_sqlstate_classify ("08006"), ==, BP_PG_ERROR_CLASS_CONNECTION);
  g_assert_cmpint (bp_pg_sqlstate_classify ("57P01"), ==, BP_PG_ERROR_CLASS_CONNECTION);
  g_assert_cmpint (bp_pg_sqlstate_classify ("57P03"), ==, BP_PG_ERROR_CLASS_CONNECTION);
  g_assert_cmpint (bp_pg_sqlstate_classify ("57014"), ==, BP_PG_ERROR_CLASS_OTHER);
  g_assert_cmpint (bp_pg_sqlstate_classify ("22012"), ==, BP_PG_ERROR_CLASS_CLIENT);
  g_assert_cmpint (bp_pg_sqlstate_classify ("42601"), ==, BP_PG_ERROR_CLASS_CLIENT);
  g_assert_cmpint (bp_pg_sqlstate_classify ("53300"), ==, BP_PG_ERROR_CLASS_OTHER);
  g_assert_cmpint (bp_pg_sqlstate_classify (NULL), ==, BP_PG_ERROR_CLASS_OTHER);
}

static void
test_redact (void)
{
  g_autofree char *a = bp_pg_redact ("pw s3cret and s3cret", "s3cret");
  g_autofree char *b = bp_pg_redact ("nothing", NULL);

  g_assert_cmpstr (a, ==, "pw *** and ***");
  g_assert_cmpstr (b, ==, "nothing");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/pg-types/scalars", test_scalars);
  g_test_add_func ("/pg-types/scalars/malformed", test_scalars_malformed);
  g_test_add_func ("/pg-types/bytea", test_bytea);
  g_test_add_func ("/pg-types/arrays", test_arrays);
  g_test_add_func ("/pg-types/arrays/depth", test_arrays_depth);
  g_test_add_func ("/pg-types/json", test_json);
  g_test_add_func ("/pg-types/json/invalid-utf8", test_json_invalid_utf8);
  g_test_add_func ("/pg-types/csv", test_csv);
  g_test_add_func ("/pg-types/params", test_params);
  g_test_add_func ("/pg-types/params/invalid", test_params_invalid);
  g_test_add_func ("/pg-types/params/count", test_params_count);
  g_test_add_func ("/pg-types/sql-count-params", test_sql_count_params);
  g_test_add_func ("/pg-error/sqlstate", test_error_sqlstate);
  g_test_add_func ("/pg-error/redact", test_redact);

  return g_test_run ();
}
