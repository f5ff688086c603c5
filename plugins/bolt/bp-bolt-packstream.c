/* bp-bolt-packstream.c: PackStream v1 primitives (markers, sizes, limits)
 *
 * The byte-level half of PackStream (neo4j/docs-bolt packstream/index.adoc):
 * the encoder always picks the shortest marker, the reader validates every
 * marker, size and UTF-8 string and never reads past the end of its buffer.
 * Mapping values to GVariant or JSON lives in bp-bolt-values.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <string.h>

#include "bp-bolt-packstream.h"

/* Markers */
#define M_NULL     0xC0
#define M_FLOAT    0xC1
#define M_FALSE    0xC2
#define M_TRUE     0xC3
#define M_INT8     0xC8
#define M_INT16    0xC9
#define M_INT32    0xCA
#define M_INT64    0xCB
#define M_BYTES8   0xCC
#define M_BYTES16  0xCD
#define M_BYTES32  0xCE
#define M_STRING8  0xD0
#define M_STRING16 0xD1
#define M_STRING32 0xD2
#define M_LIST8    0xD4
#define M_LIST16   0xD5
#define M_LIST32   0xD6
#define M_MAP8     0xD8
#define M_MAP16    0xD9
#define M_MAP32    0xDA

void
bp_bolt_limits_init_default (BpBoltLimits *limits)
{
  g_return_if_fail (limits != NULL);

  limits->max_depth = 64;
  limits->max_collection_size = 1000000;
  limits->max_string_size = 16 * 1024 * 1024;
  limits->max_message_size = 64 * 1024 * 1024;
  limits->max_expansion = 16;
}

/**
 * bp_bolt_limits_get_default:
 *
 * Returns: (transfer none): the default limits
 */
const BpBoltLimits *
bp_bolt_limits_get_default (void)
{
  static BpBoltLimits defaults;
  static gsize init;

  if (g_once_init_enter (&init))
    {
      bp_bolt_limits_init_default (&defaults);
      g_once_init_leave (&init, 1);
    }
  return &defaults;
}

const char *
bp_bolt_type_to_string (BpBoltType type)
{
  switch (type)
    {
    case BP_BOLT_TYPE_NULL:
      return "null";
    case BP_BOLT_TYPE_BOOLEAN:
      return "boolean";
    case BP_BOLT_TYPE_INTEGER:
      return "integer";
    case BP_BOLT_TYPE_FLOAT:
      return "float";
    case BP_BOLT_TYPE_BYTES:
      return "bytes";
    case BP_BOLT_TYPE_STRING:
      return "string";
    case BP_BOLT_TYPE_LIST:
      return "list";
    case BP_BOLT_TYPE_MAP:
      return "map";
    case BP_BOLT_TYPE_STRUCTURE:
      return "structure";
    default:
      return "unknown";
    }
}

gboolean
bp_bolt_set_invalid_data (GError    **error,
                          const char *format,
                          ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
               _("Invalid PackStream data: %s"), message);
  return FALSE;
}

/* ------------------------------------------------------------------ */
/* Encoding                                                            */

static void
put_u8 (GByteArray *buf,
        guint8      v)
{
  g_byte_array_append (buf, &v, 1);
}

static void
put_be16 (GByteArray *buf,
          guint16     v)
{
  guint8 b[2] = { v >> 8, v & 0xFF };

  g_byte_array_append (buf, b, 2);
}

static void
put_be32 (GByteArray *buf,
          guint32     v)
{
  guint8 b[4] = { v >> 24, (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF };

  g_byte_array_append (buf, b, 4);
}

static void
put_be64 (GByteArray *buf,
          guint64     v)
{
  put_be32 (buf, (guint32) (v >> 32));
  put_be32 (buf, (guint32) (v & 0xFFFFFFFFu));
}

void
bp_bolt_pack_null (GByteArray *buf)
{
  put_u8 (buf, M_NULL);
}

void
bp_bolt_pack_boolean (GByteArray *buf,
                      gboolean    value)
{
  put_u8 (buf, value ? M_TRUE : M_FALSE);
}

void
bp_bolt_pack_int (GByteArray *buf,
                  gint64      value)
{
  if (value >= -16 && value <= 127)
    put_u8 (buf, (guint8) (value & 0xFF));
  else if (value >= G_MININT8 && value <= G_MAXINT8)
    {
      put_u8 (buf, M_INT8);
      put_u8 (buf, (guint8) (value & 0xFF));
    }
  else if (value >= G_MININT16 && value <= G_MAXINT16)
    {
      put_u8 (buf, M_INT16);
      put_be16 (buf, (guint16) (value & 0xFFFF));
    }
  else if (value >= G_MININT32 && value <= G_MAXINT32)
    {
      put_u8 (buf, M_INT32);
      put_be32 (buf, (guint32) (value & 0xFFFFFFFF));
    }
  else
    {
      put_u8 (buf, M_INT64);
      put_be64 (buf, (guint64) value);
    }
}

void
bp_bolt_pack_float (GByteArray *buf,
                    double      value)
{
  guint64 bits;

  G_STATIC_ASSERT (sizeof bits == sizeof value);
  memcpy (&bits, &value, sizeof bits);
  put_u8 (buf, M_FLOAT);
  put_be64 (buf, bits);
}

static void
pack_sized_header (GByteArray *buf,
                   guint8      tiny_base,
                   guint8      m8,
                   guint32     size)
{
  if (tiny_base != 0 && size < 16)
    put_u8 (buf, tiny_base | (guint8) size);
  else if (size <= G_MAXUINT8)
    {
      put_u8 (buf, m8);
      put_u8 (buf, (guint8) size);
    }
  else if (size <= G_MAXUINT16)
    {
      put_u8 (buf, m8 + 1);
      put_be16 (buf, (guint16) size);
    }
  else
    {
      put_u8 (buf, m8 + 2);
      put_be32 (buf, size);
    }
}

/**
 * bp_bolt_pack_string:
 * @buf: the output
 * @str: UTF-8 text
 * @len: its length in bytes, or -1 if NUL-terminated
 *
 * The caller checks the length against its limits; it must fit 32 bits.
 */
void
bp_bolt_pack_string (GByteArray *buf,
                     const char *str,
                     gssize      len)
{
  gsize n = len < 0 ? strlen (str) : (gsize) len;

  g_return_if_fail (n <= G_MAXUINT32);
  pack_sized_header (buf, 0x80, M_STRING8, (guint32) n);
  g_byte_array_append (buf, (const guint8 *) str, (guint) n);
}

void
bp_bolt_pack_bytes (GByteArray   *buf,
                    const guint8 *data,
                    gsize         len)
{
  g_return_if_fail (len <= G_MAXINT32);
  pack_sized_header (buf, 0, M_BYTES8, (guint32) len);
  if (len > 0)
    g_byte_array_append (buf, data, (guint) len);
}

void
bp_bolt_pack_list_header (GByteArray *buf,
                          guint32     n_items)
{
  pack_sized_header (buf, 0x90, M_LIST8, n_items);
}

void
bp_bolt_pack_map_header (GByteArray *buf,
                         guint32     n_entries)
{
  pack_sized_header (buf, 0xA0, M_MAP8, n_entries);
}

void
bp_bolt_pack_struct_header (GByteArray *buf,
                            guint       n_fields,
                            guint8      tag)
{
  g_return_if_fail (n_fields < 16);
  put_u8 (buf, 0xB0 | (guint8) n_fields);
  put_u8 (buf, tag);
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

void
bp_bolt_reader_init (BpBoltReader       *reader,
                     const guint8       *data,
                     gsize               len,
                     const BpBoltLimits *limits)
{
  reader->data = data;
  reader->len = len;
  reader->pos = 0;
  reader->limits = limits != NULL ? limits : bp_bolt_limits_get_default ();
}

gboolean
bp_bolt_reader_at_end (BpBoltReader *reader)
{
  return reader->pos >= reader->len;
}

static inline gsize
remaining (BpBoltReader *reader)
{
  return reader->len - reader->pos;
}

static gboolean
need (BpBoltReader *reader,
      gsize         n,
      GError      **error)
{
  if (remaining (reader) < n)
    return bp_bolt_set_invalid_data (error, "truncated input at offset %" G_GSIZE_FORMAT
                                     " (need %" G_GSIZE_FORMAT " bytes, have %" G_GSIZE_FORMAT ")",
                                     reader->pos, n, remaining (reader));
  return TRUE;
}

static guint64
get_be (const guint8 *p,
        guint         n)
{
  guint64 v = 0;

  for (guint i = 0; i < n; i++)
    v = (v << 8) | p[i];
  return v;
}

static BpBoltType
marker_type (guint8 m)
{
  if (m <= 0x7F || m >= 0xF0)
    return BP_BOLT_TYPE_INTEGER;
  switch (m >> 4)
    {
    case 0x8:
      return BP_BOLT_TYPE_STRING;
    case 0x9:
      return BP_BOLT_TYPE_LIST;
    case 0xA:
      return BP_BOLT_TYPE_MAP;
    case 0xB:
      return BP_BOLT_TYPE_STRUCTURE;
    default:
      break;
    }
  switch (m)
    {
    case M_NULL:
      return BP_BOLT_TYPE_NULL;
    case M_FLOAT:
      return BP_BOLT_TYPE_FLOAT;
    case M_FALSE:
    case M_TRUE:
      return BP_BOLT_TYPE_BOOLEAN;
    case M_INT8:
    case M_INT16:
    case M_INT32:
    case M_INT64:
      return BP_BOLT_TYPE_INTEGER;
    case M_BYTES8:
    case M_BYTES16:
    case M_BYTES32:
      return BP_BOLT_TYPE_BYTES;
    case M_STRING8:
    case M_STRING16:
    case M_STRING32:
      return BP_BOLT_TYPE_STRING;
    case M_LIST8:
    case M_LIST16:
    case M_LIST32:
      return BP_BOLT_TYPE_LIST;
    case M_MAP8:
    case M_MAP16:
    case M_MAP32:
      return BP_BOLT_TYPE_MAP;
    default:
      return (BpBoltType) -1;
    }
}

/**
 * bp_bolt_reader_peek_type:
 * @reader: a #BpBoltReader
 * @type: (out): the type of the next value
 * @error: a #GError
 *
 * Looks at the next marker without consuming it.
 *
 * Returns: %FALSE at the end of input or on a reserved marker
 */
gboolean
bp_bolt_reader_peek_type (BpBoltReader *reader,
                          BpBoltType   *type,
                          GError      **error)
{
  guint8 m;
  BpBoltType t;

  if (!need (reader, 1, error))
    return FALSE;
  m = reader->data[reader->pos];
  t = marker_type (m);
  if ((int) t < 0)
    return bp_bolt_set_invalid_data (error, "reserved marker 0x%02X at offset %" G_GSIZE_FORMAT,
                                     m, reader->pos);
  *type = t;
  return TRUE;
}

static gboolean
wrong_type (BpBoltReader *reader,
            const char   *expected,
            GError      **error)
{
  BpBoltType t = marker_type (reader->data[reader->pos]);

  return bp_bolt_set_invalid_data (error, "expected %s at offset %" G_GSIZE_FORMAT ", found %s (marker 0x%02X)",
                                   expected, reader->pos,
                                   (int) t < 0 ? "a reserved marker" : bp_bolt_type_to_string (t),
                                   reader->data[reader->pos]);
}

gboolean
bp_bolt_reader_read_null (BpBoltReader *reader,
                          GError      **error)
{
  if (!need (reader, 1, error))
    return FALSE;
  if (reader->data[reader->pos] != M_NULL)
    return wrong_type (reader, "null", error);
  reader->pos++;
  return TRUE;
}

gboolean
bp_bolt_reader_read_boolean (BpBoltReader *reader,
                             gboolean     *value,
                             GError      **error)
{
  guint8 m;

  if (!need (reader, 1, error))
    return FALSE;
  m = reader->data[reader->pos];
  if (m != M_TRUE && m != M_FALSE)
    return wrong_type (reader, "a boolean", error);
  *value = m == M_TRUE;
  reader->pos++;
  return TRUE;
}

gboolean
bp_bolt_reader_read_int (BpBoltReader *reader,
                         gint64       *value,
                         GError      **error)
{
  guint8 m;
  guint n;

  if (!need (reader, 1, error))
    return FALSE;
  m = reader->data[reader->pos];
  if (m <= 0x7F)
    {
      *value = m;
      reader->pos++;
      return TRUE;
    }
  if (m >= 0xF0)
    {
      *value = (gint64) m - 256;
      reader->pos++;
      return TRUE;
    }
  switch (m)
    {
    case M_INT8:
      n = 1;
      break;
    case M_INT16:
      n = 2;
      break;
    case M_INT32:
      n = 4;
      break;
    case M_INT64:
      n = 8;
      break;
    default:
      return wrong_type (reader, "an integer", error);
    }
  if (!need (reader, 1 + n, error))
    return FALSE;
  {
    guint64 raw = get_be (reader->data + reader->pos + 1, n);
    guint shift = 64 - 8 * n;

    /* sign-extend without relying on implementation-defined shifts */
    if (shift > 0 && (raw >> (8 * n - 1)) & 1)
      raw |= ~G_GUINT64_CONSTANT (0) << (8 * n);
    *value = (gint64) raw;
  }
  reader->pos += 1 + n;
  return TRUE;
}

gboolean
bp_bolt_reader_read_float (BpBoltReader *reader,
                           double       *value,
                           GError      **error)
{
  guint64 bits;

  if (!need (reader, 1, error))
    return FALSE;
  if (reader->data[reader->pos] != M_FLOAT)
    return wrong_type (reader, "a float", error);
  if (!need (reader, 9, error))
    return FALSE;
  bits = get_be (reader->data + reader->pos + 1, 8);
  memcpy (value, &bits, sizeof *value);
  reader->pos += 9;
  return TRUE;
}

/* Reads a size that follows marker m, where m8 is the 8-bit variant and
 * tiny_base (or 0) the tiny family. */
static gboolean
read_size (BpBoltReader *reader,
           guint8        tiny_base,
           guint8        m8,
           const char   *what,
           guint32      *size,
           GError      **error)
{
  guint8 m = reader->data[reader->pos];
  guint n;

  if (tiny_base != 0 && (m & 0xF0) == tiny_base)
    {
      *size = m & 0x0F;
      reader->pos++;
      return TRUE;
    }
  if (m == m8)
    n = 1;
  else if (m == m8 + 1)
    n = 2;
  else if (m == m8 + 2)
    n = 4;
  else
    return wrong_type (reader, what, error);
  if (!need (reader, 1 + n, error))
    return FALSE;
  *size = (guint32) get_be (reader->data + reader->pos + 1, n);
  reader->pos += 1 + n;
  return TRUE;
}

gboolean
bp_bolt_reader_read_string (BpBoltReader *reader,
                            const char  **str,
                            gsize        *len,
                            GError      **error)
{
  guint32 size;
  gsize start = reader->pos;

  if (!need (reader, 1, error) ||
      !read_size (reader, 0x80, M_STRING8, "a string", &size, error))
    return FALSE;
  if (size > reader->limits->max_string_size)
    {
      reader->pos = start;
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   _("PackStream string of %u bytes exceeds the limit of %lu"),
                   size, (gulong) reader->limits->max_string_size);
      return FALSE;
    }
  if (!need (reader, size, error))
    {
      reader->pos = start;
      return FALSE;
    }
  if (!g_utf8_validate_len ((const char *) reader->data + reader->pos, size, NULL))
    {
      bp_bolt_set_invalid_data (error, "string at offset %" G_GSIZE_FORMAT " is not valid UTF-8 (or holds NUL)", start);
      reader->pos = start;
      return FALSE;
    }
  *str = (const char *) reader->data + reader->pos;
  *len = size;
  reader->pos += size;
  return TRUE;
}

gboolean
bp_bolt_reader_read_bytes (BpBoltReader  *reader,
                           const guint8 **data,
                           gsize         *len,
                           GError       **error)
{
  guint32 size;
  gsize start = reader->pos;

  if (!need (reader, 1, error) ||
      !read_size (reader, 0, M_BYTES8, "bytes", &size, error))
    return FALSE;
  if (size > G_MAXINT32)
    {
      reader->pos = start;
      return bp_bolt_set_invalid_data (error, "byte array size %u beyond 2^31-1", size);
    }
  if (size > reader->limits->max_string_size)
    {
      reader->pos = start;
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   _("PackStream byte array of %u bytes exceeds the limit of %lu"),
                   size, (gulong) reader->limits->max_string_size);
      return FALSE;
    }
  if (!need (reader, size, error))
    {
      reader->pos = start;
      return FALSE;
    }
  *data = reader->data + reader->pos;
  *len = size;
  reader->pos += size;
  return TRUE;
}

static gboolean
check_count (BpBoltReader *reader,
             gsize         start,
             guint32       n,
             guint         min_bytes_each,
             const char   *what,
             GError      **error)
{
  if (n > reader->limits->max_collection_size)
    {
      reader->pos = start;
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   _("PackStream %s of %u entries exceeds the limit of %u"),
                   what, n, reader->limits->max_collection_size);
      return FALSE;
    }
  /* Each entry takes at least min_bytes_each bytes: a size beyond what is
   * left is truncated input, found before anything is allocated for it. */
  if ((guint64) n * min_bytes_each > remaining (reader))
    {
      reader->pos = start;
      return bp_bolt_set_invalid_data (error, "%s of %u entries at offset %" G_GSIZE_FORMAT
                                       " is longer than the remaining %" G_GSIZE_FORMAT " bytes",
                                       what, n, start, remaining (reader));
    }
  return TRUE;
}

gboolean
bp_bolt_reader_read_list_header (BpBoltReader *reader,
                                 guint32      *n_items,
                                 GError      **error)
{
  gsize start = reader->pos;

  if (!need (reader, 1, error) ||
      !read_size (reader, 0x90, M_LIST8, "a list", n_items, error))
    return FALSE;
  return check_count (reader, start, *n_items, 1, "list", error);
}

gboolean
bp_bolt_reader_read_map_header (BpBoltReader *reader,
                                guint32      *n_entries,
                                GError      **error)
{
  gsize start = reader->pos;

  if (!need (reader, 1, error) ||
      !read_size (reader, 0xA0, M_MAP8, "a map", n_entries, error))
    return FALSE;
  return check_count (reader, start, *n_entries, 2, "map", error);
}

gboolean
bp_bolt_reader_read_struct_header (BpBoltReader *reader,
                                   guint        *n_fields,
                                   guint8       *tag,
                                   GError      **error)
{
  guint8 m;

  if (!need (reader, 1, error))
    return FALSE;
  m = reader->data[reader->pos];
  if ((m & 0xF0) != 0xB0)
    return wrong_type (reader, "a structure", error);
  if (!need (reader, 2, error))
    return FALSE;
  *n_fields = m & 0x0F;
  *tag = reader->data[reader->pos + 1];
  reader->pos += 2;
  if ((gsize) *n_fields > remaining (reader))
    {
      reader->pos -= 2;
      return bp_bolt_set_invalid_data (error, "structure of %u fields at offset %" G_GSIZE_FORMAT " is truncated",
                                       *n_fields, reader->pos);
    }
  return TRUE;
}

static gboolean
check_depth (BpBoltReader *reader,
             guint         depth,
             GError      **error)
{
  if (depth >= reader->limits->max_depth)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   _("PackStream value nested deeper than %u levels"), reader->limits->max_depth);
      return FALSE;
    }
  return TRUE;
}

/**
 * bp_bolt_reader_skip:
 * @reader: a #BpBoltReader
 * @depth: the nesting depth of the value to skip (0 at top level)
 * @error: a #GError
 *
 * Steps over one complete value, validating it as it goes (strings must be
 * UTF-8, sizes within the limits). Structures are skipped without looking
 * at their tag.
 */
gboolean
bp_bolt_reader_skip (BpBoltReader *reader,
                     guint         depth,
                     GError      **error)
{
  BpBoltType type;
  const char *s;
  const guint8 *b;
  gsize len;
  guint32 n;
  guint nf;
  guint8 tag;
  gint64 i;
  double d;
  gboolean v;

  if (!bp_bolt_reader_peek_type (reader, &type, error))
    return FALSE;
  switch (type)
    {
    case BP_BOLT_TYPE_NULL:
      return bp_bolt_reader_read_null (reader, error);
    case BP_BOLT_TYPE_BOOLEAN:
      return bp_bolt_reader_read_boolean (reader, &v, error);
    case BP_BOLT_TYPE_INTEGER:
      return bp_bolt_reader_read_int (reader, &i, error);
    case BP_BOLT_TYPE_FLOAT:
      return bp_bolt_reader_read_float (reader, &d, error);
    case BP_BOLT_TYPE_STRING:
      return bp_bolt_reader_read_string (reader, &s, &len, error);
    case BP_BOLT_TYPE_BYTES:
      return bp_bolt_reader_read_bytes (reader, &b, &len, error);
    case BP_BOLT_TYPE_LIST:
      if (!check_depth (reader, depth, error) ||
          !bp_bolt_reader_read_list_header (reader, &n, error))
        return FALSE;
      for (guint32 k = 0; k < n; k++)
        if (!bp_bolt_reader_skip (reader, depth + 1, error))
          return FALSE;
      return TRUE;
    case BP_BOLT_TYPE_MAP:
      if (!check_depth (reader, depth, error) ||
          !bp_bolt_reader_read_map_header (reader, &n, error))
        return FALSE;
      for (guint32 k = 0; k < n; k++)
        if (!bp_bolt_reader_read_string (reader, &s, &len, error) ||
            !bp_bolt_reader_skip (reader, depth + 1, error))
          return FALSE;
      return TRUE;
    case BP_BOLT_TYPE_STRUCTURE:
      if (!check_depth (reader, depth, error) ||
          !bp_bolt_reader_read_struct_header (reader, &nf, &tag, error))
        return FALSE;
      for (guint k = 0; k < nf; k++)
        if (!bp_bolt_reader_skip (reader, depth + 1, error))
          return FALSE;
      return TRUE;
    default:
      g_assert_not_reached ();
    }
  return FALSE;
}
