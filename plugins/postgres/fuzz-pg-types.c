/* fuzz-pg-types.c: fuzz the PostgreSQL text decoders
 *
 * LLVMFuzzerTestOneInput() feeds the array parser (as GVariant and as
 * JSON), the bytea decoder, the scalar decoders and the $N scanner. Built
 * with -Dfuzzing=true (clang, -fsanitize=fuzzer) it is a libFuzzer target;
 * otherwise a deterministic driver runs seeds and mutations of them for a
 * fixed number of iterations as a plain test.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-pg-types.h"

int LLVMFuzzerTestOneInput (const guint8 *data, size_t size);

static const Oid types[] = {
  BP_PG_OID_INT4_ARRAY, BP_PG_OID_TEXT_ARRAY, BP_PG_OID_BYTEA_ARRAY, BP_PG_OID_FLOAT8_ARRAY,
  BP_PG_OID_BOOL_ARRAY, BP_PG_OID_NUMERIC_ARRAY, BP_PG_OID_BYTEA, BP_PG_OID_INT8, BP_PG_OID_FLOAT8,
  BP_PG_OID_BOOL, BP_PG_OID_JSONB, BP_PG_OID_TEXT,
};

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autofree char *text = NULL;
  Oid type;

  if (size < 1)
    return 0;
  type = types[data[0] % G_N_ELEMENTS (types)];
  /* Server text is NUL-terminated and has no NUL inside. */
  text = g_strndup ((const char *) data + 1, size - 1);

  {
    g_autoptr(GError) error = NULL;
    GVariant *v = bp_pg_value_to_variant (type, text, strlen (text), &error);

    g_assert ((v == NULL) == (error != NULL));
    if (v != NULL)
      g_variant_unref (g_variant_ref_sink (v));
  }
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GString) out = g_string_new (NULL);
    gboolean ok = bp_pg_json_append_value (out, type, text, strlen (text), &error);

    g_assert (ok == (error == NULL));
    if (ok)
      g_assert (g_utf8_validate (out->str, out->len, NULL) || type == BP_PG_OID_JSONB);
  }
  {
    g_autoptr(GBytes) bytes = bp_pg_bytea_decode (text, strlen (text), NULL);
  }
  {
    g_autoptr(GString) out = g_string_new (NULL);

    bp_pg_csv_append_field (out, text, strlen (text));
    g_assert (bp_pg_sql_count_params (text) >= 0);
  }
  return 0;
}

#ifndef BP_FUZZING

static const char *seeds[] = {
  "{}", "{1,2,3}", "{{1,2},{3,4}}", "[0:1]={7,8}", "{\"a\\\"b\",NULL,\"\"}",
  "{  spaced  ,x}", "{\"\\\\x0102\",NULL}", "\\x00ff", "\\000\\\\abc", "1e+100", "NaN",
  "t", "{\"a\": [1, 2]}", "SELECT $1, '$2', $$ $3 $$, \"$4\", -- $5\n $6 /* $7 /* */ */",
  "{{{{{{{1}}}}}}}", "{1,{2}}", "{\"unterminated", "E'\\'' $9",
};

int
main (int   argc,
      char *argv[])
{
  GRand *rand = g_rand_new_with_seed (20240601);
  guint iterations = 20000;

  if (argc > 1)
    iterations = (guint) g_ascii_strtoull (argv[1], NULL, 10);

  for (guint i = 0; i < iterations; i++)
    {
      const char *seed = seeds[i % G_N_ELEMENTS (seeds)];
      gsize len = strlen (seed);
      g_autoptr(GByteArray) input = g_byte_array_new ();
      guint8 selector = (guint8) g_rand_int (rand);
      guint mutations = g_rand_int_range (rand, 0, 6);

      g_byte_array_append (input, &selector, 1);
      g_byte_array_append (input, (const guint8 *) seed, (guint) len);
      for (guint m = 0; m < mutations && input->len > 1; m++)
        {
          guint pos = g_rand_int_range (rand, 1, (gint32) input->len);
          guint8 byte = (guint8) g_rand_int_range (rand, 1, 256);
          static const char interesting[] = "{}\",\\$'-*/NUL \n";

          switch (g_rand_int_range (rand, 0, 4))
            {
            case 0:
              input->data[pos] = byte;
              break;
            case 1:
              input->data[pos] = (guint8) interesting[g_rand_int_range (rand, 0, sizeof interesting - 1)];
              break;
            case 2:
              g_byte_array_remove_index (input, pos);
              break;
            default:
              g_byte_array_set_size (input, input->len + 1);
              memmove (input->data + pos + 1, input->data + pos, input->len - pos - 1);
              input->data[pos] = byte;
              break;
            }
        }
      LLVMFuzzerTestOneInput (input->data, input->len);
    }
  g_rand_free (rand);
  g_print ("1..1\nok 1 - %u inputs\n", iterations);
  return 0;
}

#endif
