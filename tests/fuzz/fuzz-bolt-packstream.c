/* fuzz-bolt-packstream.c: fuzz target for the PackStream decoder
 *
 * Every input is decoded as one PackStream value to GVariant and to JSON
 * (both must agree on success and on the error domain), and as a RECORD data
 * list with three keys; tight limits are used for one pass and the defaults
 * for another. A value that decoded is then re-encoded from its GVariant and
 * decoded again, twice: the mapping reaches a fixed point after one round
 * (structures become maps, map nulls vanish, duplicate keys collapse, label
 * lists `as` become `av`), so the second and third decodings must be equal.
 * Invariants abort().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bp-bolt-values.h"

int LLVMFuzzerTestOneInput (const guint8 *data,
                            size_t        size);

#define CHECK(cond)                                                          \
  G_STMT_START {                                                             \
    if (!(cond))                                                             \
      {                                                                      \
        g_printerr ("fuzz-bolt-packstream: invariant failed: %s (%s:%d)\n", \
                    #cond, __FILE__, __LINE__);                              \
        abort ();                                                            \
      }                                                                      \
  } G_STMT_END

static void
check_error (const GError *error)
{
  CHECK (error != NULL);
  CHECK ((error->domain == G_IO_ERROR && error->code == G_IO_ERROR_INVALID_DATA) ||
         (error->domain == BP_ERROR && error->code == BP_ERROR_LIMIT_EXCEEDED));
  CHECK (g_utf8_validate (error->message, -1, NULL));
}

static void
one_pass (const guint8       *data,
          gsize               size,
          const BpBoltLimits *limits)
{
  g_autoptr(GError) verror = NULL;
  g_autoptr(GError) jerror = NULL;
  g_autoptr(GVariant) value = bp_bolt_decode_variant (data, size, limits, &verror);
  g_autofree char *json = bp_bolt_decode_json (data, size, limits, &jerror);

  CHECK ((value == NULL) == (json == NULL));
  if (value == NULL)
    {
      check_error (verror);
      check_error (jerror);
      CHECK (verror->domain == jerror->domain && verror->code == jerror->code);
    }
  else
    {
      g_autoptr(GByteArray) again = g_byte_array_new ();
      g_autoptr(GByteArray) third_bytes = g_byte_array_new ();
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) second = NULL;
      g_autoptr(GVariant) third = NULL;
      BpBoltLimits loose;

      CHECK (verror == NULL && jerror == NULL);
      CHECK (g_utf8_validate (json, -1, NULL));
      CHECK (g_variant_is_normal_form (value));

      /* re-encode and decode: a fixed point (the limits may only be hit by
       * a re-encoding that is longer, e.g. a Path expanded) */
      bp_bolt_limits_init_default (&loose);
      CHECK (bp_bolt_pack_variant (again, value, &loose, &error));
      second = bp_bolt_decode_variant (again->data, again->len, &loose, &error);
      CHECK (second != NULL);
      CHECK (bp_bolt_pack_variant (third_bytes, second, &loose, &error));
      third = bp_bolt_decode_variant (third_bytes->data, third_bytes->len, &loose, &error);
      CHECK (third != NULL);
      CHECK (g_variant_equal (second, third));
      CHECK (again->len == third_bytes->len && memcmp (again->data, third_bytes->data, again->len) == 0);
    }

  /* the same bytes as a RECORD's data list */
  {
    static const char * const keys[] = { "a", "b", "c" };
    BpBoltReader reader;
    g_autoptr(GVariant) record = NULL;
    g_autoptr(GString) out = g_string_new ("x");
    g_autoptr(GError) rerror = NULL;
    g_autoptr(GError) oerror = NULL;
    gboolean ok;

    bp_bolt_reader_init (&reader, data, size, limits);
    record = bp_bolt_record_to_variant (&reader, keys, 3, &rerror);
    bp_bolt_reader_init (&reader, data, size, limits);
    ok = bp_bolt_record_to_json (&reader, keys, 3, out, &oerror);
    CHECK (ok == (record != NULL));
    if (!ok)
      {
        check_error (rerror);
        CHECK (strcmp (out->str, "x") == 0);
      }
    else
      {
        CHECK (out->str[1] == '{');
        CHECK (g_variant_is_of_type (record, G_VARIANT_TYPE_VARDICT));
      }
  }
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  BpBoltLimits tight;

  bp_bolt_limits_init_default (&tight);
  tight.max_depth = 8;
  tight.max_collection_size = 64;
  tight.max_string_size = 256;
  tight.max_message_size = 8192;
  tight.max_expansion = 4;

  one_pass (data, size, &tight);
  one_pass (data, size, NULL);
  return 0;
}
