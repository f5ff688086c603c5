/* bp-pg-types.c: PostgreSQL text values to GVariant, JSON and CSV, and
 * GVariant parameters to libpq parameters
 *
 * Results are read in text format (the server renders every type), then
 * decoded here per column type:
 *
 *   int2/int4 → i, int8 → x, oid → u, float4/float8 → d, numeric → s (exact
 *   text), bool → b, bytea → ay, json/jsonb → s (JSON text), everything else
 *   (text, varchar, name, char, uuid, dates and times, unknown types) → s,
 *   one-dimensional arrays of those → av (NULL elements are <@o '/'>),
 *   multi-dimensional arrays → nested av.
 *
 * JSON (for JSON Lines streaming): integers, floats and finite numerics are
 * JSON numbers written with the server's exact text; NaN and ±Infinity are
 * strings; bool is true/false; json/jsonb is embedded as JSON (raw CR/LF,
 * which valid JSON only has as whitespace, become spaces to keep one line a
 * row); bytea is a base64 string (standard alphabet, padded); arrays are JSON
 * arrays; NULL is null.
 *
 * CSV: the server's text of each value with RFC 4180 quoting; NULL is an
 * empty unquoted field and an empty string is "" (as COPY … CSV does); lines
 * end with LF.
 *
 * Parameters: x → int8, i → int4, n/y → int2, q/u → int8, t → numeric,
 * d → float8, b → bool, s → unknown (OID 0, the server infers it),
 * ay → bytea (binary format), <@o '/'> → NULL, arrays (av or typed) → an
 * array literal of the element type.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-pg-types.h"

#include <math.h>
#include <string.h>

typedef struct
{
  Oid         oid;
  const char *name;
  BpPgKind    kind;
  Oid         elem;
} TypeInfo;

static const TypeInfo type_table[] = {
  { 16, "bool", BP_PG_KIND_BOOL, 0 },
  { 17, "bytea", BP_PG_KIND_BYTEA, 0 },
  { 18, "char", BP_PG_KIND_TEXT, 0 },
  { 19, "name", BP_PG_KIND_TEXT, 0 },
  { 20, "int8", BP_PG_KIND_INT64, 0 },
  { 21, "int2", BP_PG_KIND_INT16, 0 },
  { 23, "int4", BP_PG_KIND_INT32, 0 },
  { 25, "text", BP_PG_KIND_TEXT, 0 },
  { 26, "oid", BP_PG_KIND_OID, 0 },
  { 114, "json", BP_PG_KIND_JSON, 0 },
  { 142, "xml", BP_PG_KIND_TEXT, 0 },
  { 650, "cidr", BP_PG_KIND_TEXT, 0 },
  { 700, "float4", BP_PG_KIND_FLOAT, 0 },
  { 701, "float8", BP_PG_KIND_FLOAT, 0 },
  { 705, "unknown", BP_PG_KIND_TEXT, 0 },
  { 790, "money", BP_PG_KIND_TEXT, 0 },
  { 829, "macaddr", BP_PG_KIND_TEXT, 0 },
  { 869, "inet", BP_PG_KIND_TEXT, 0 },
  { 1042, "bpchar", BP_PG_KIND_TEXT, 0 },
  { 1043, "varchar", BP_PG_KIND_TEXT, 0 },
  { 1082, "date", BP_PG_KIND_TEXT, 0 },
  { 1083, "time", BP_PG_KIND_TEXT, 0 },
  { 1114, "timestamp", BP_PG_KIND_TEXT, 0 },
  { 1184, "timestamptz", BP_PG_KIND_TEXT, 0 },
  { 1186, "interval", BP_PG_KIND_TEXT, 0 },
  { 1266, "timetz", BP_PG_KIND_TEXT, 0 },
  { 1560, "bit", BP_PG_KIND_TEXT, 0 },
  { 1562, "varbit", BP_PG_KIND_TEXT, 0 },
  { 1700, "numeric", BP_PG_KIND_NUMERIC, 0 },
  { 2278, "void", BP_PG_KIND_TEXT, 0 },
  { 2950, "uuid", BP_PG_KIND_TEXT, 0 },
  { 3802, "jsonb", BP_PG_KIND_JSON, 0 },
  /* arrays */
  { 143, "xml[]", BP_PG_KIND_ARRAY, 142 },
  { 199, "json[]", BP_PG_KIND_ARRAY, 114 },
  { 651, "cidr[]", BP_PG_KIND_ARRAY, 650 },
  { 791, "money[]", BP_PG_KIND_ARRAY, 790 },
  { 1000, "bool[]", BP_PG_KIND_ARRAY, 16 },
  { 1001, "bytea[]", BP_PG_KIND_ARRAY, 17 },
  { 1002, "char[]", BP_PG_KIND_ARRAY, 18 },
  { 1003, "name[]", BP_PG_KIND_ARRAY, 19 },
  { 1005, "int2[]", BP_PG_KIND_ARRAY, 21 },
  { 1007, "int4[]", BP_PG_KIND_ARRAY, 23 },
  { 1009, "text[]", BP_PG_KIND_ARRAY, 25 },
  { 1014, "bpchar[]", BP_PG_KIND_ARRAY, 1042 },
  { 1015, "varchar[]", BP_PG_KIND_ARRAY, 1043 },
  { 1016, "int8[]", BP_PG_KIND_ARRAY, 20 },
  { 1021, "float4[]", BP_PG_KIND_ARRAY, 700 },
  { 1022, "float8[]", BP_PG_KIND_ARRAY, 701 },
  { 1028, "oid[]", BP_PG_KIND_ARRAY, 26 },
  { 1040, "macaddr[]", BP_PG_KIND_ARRAY, 829 },
  { 1041, "inet[]", BP_PG_KIND_ARRAY, 869 },
  { 1115, "timestamp[]", BP_PG_KIND_ARRAY, 1114 },
  { 1182, "date[]", BP_PG_KIND_ARRAY, 1082 },
  { 1183, "time[]", BP_PG_KIND_ARRAY, 1083 },
  { 1185, "timestamptz[]", BP_PG_KIND_ARRAY, 1184 },
  { 1187, "interval[]", BP_PG_KIND_ARRAY, 1186 },
  { 1231, "numeric[]", BP_PG_KIND_ARRAY, 1700 },
  { 1270, "timetz[]", BP_PG_KIND_ARRAY, 1266 },
  { 2951, "uuid[]", BP_PG_KIND_ARRAY, 2950 },
  { 3807, "jsonb[]", BP_PG_KIND_ARRAY, 3802 },
};

static const TypeInfo *
lookup_type (Oid type)
{
  for (gsize i = 0; i < G_N_ELEMENTS (type_table); i++)
    if (type_table[i].oid == type)
      return &type_table[i];
  return NULL;
}

/**
 * bp_pg_type_get_kind:
 * @type: a type OID
 * @out_elem_type: (out) (optional): the element type of an array type
 *
 * Returns: how values of @type decode; unknown types are text
 */
BpPgKind
bp_pg_type_get_kind (Oid  type,
                     Oid *out_elem_type)
{
  const TypeInfo *info = lookup_type (type);

  if (out_elem_type != NULL)
    *out_elem_type = info != NULL ? info->elem : 0;
  return info != NULL ? info->kind : BP_PG_KIND_TEXT;
}

/**
 * bp_pg_type_dup_name:
 * @type: a type OID
 *
 * Returns: (transfer full): the type name ("int4", "text[]"), or
 *   "oid:NNN" for a type outside the built-in table
 */
char *
bp_pg_type_dup_name (Oid type)
{
  const TypeInfo *info = lookup_type (type);

  if (info != NULL)
    return g_strdup (info->name);
  return g_strdup_printf ("oid:%u", (guint) type);
}

/* ---------------------------------------------------------------------- */
/* Scalars                                                                 */

static GVariant *
new_string_variant (const char *text,
                    gsize       len)
{
  if (g_utf8_validate_len (text, len, NULL) && memchr (text, '\0', len) == NULL)
    {
      if (text[len] == '\0')
        return g_variant_new_string (text);
      else
        {
          g_autofree char *copy = g_strndup (text, len);
          return g_variant_new_string (copy);
        }
    }
  else
    {
      /* client_encoding is UTF8, so this is defensive only. */
      g_autofree char *valid = g_utf8_make_valid (text, len);
      return g_variant_new_string (valid);
    }
}

static gboolean
parse_bool (const char *text,
            gboolean   *out)
{
  if (g_str_equal (text, "t") || g_ascii_strcasecmp (text, "true") == 0)
    *out = TRUE;
  else if (g_str_equal (text, "f") || g_ascii_strcasecmp (text, "false") == 0)
    *out = FALSE;
  else
    return FALSE;
  return TRUE;
}

static gboolean
parse_double (const char *text,
              double     *out)
{
  char *end = NULL;

  if (*text == '\0')
    return FALSE;
  *out = g_ascii_strtod (text, &end);
  return end != NULL && *end == '\0';
}

static gboolean
is_special_number (const char *text)
{
  return g_str_equal (text, "NaN") ||
         g_str_equal (text, "Infinity") ||
         g_str_equal (text, "-Infinity");
}

/**
 * bp_pg_bytea_decode:
 * @text: the server's text of a bytea value, NUL-terminated at @len
 * @len: length of @text
 * @error: return location for a #GError
 *
 * Decodes the hex format ("\x0aff") and, for servers configured with
 * `bytea_output=escape`, the escape format ("a\\000\\\\").
 *
 * Returns: (transfer full): the bytes, or %NULL on malformed input
 */
GBytes *
bp_pg_bytea_decode (const char  *text,
                    gsize        len,
                    GError     **error)
{
  g_autoptr(GByteArray) out = NULL;

  if (len >= 2 && text[0] == '\\' && text[1] == 'x')
    {
      if ((len - 2) % 2 != 0)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                       "malformed bytea: odd number of hex digits");
          return NULL;
        }
      out = g_byte_array_sized_new ((len - 2) / 2);
      for (gsize i = 2; i < len; i += 2)
        {
          int hi = g_ascii_xdigit_value (text[i]);
          int lo = g_ascii_xdigit_value (text[i + 1]);
          guint8 b;

          if (hi < 0 || lo < 0)
            {
              g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                           "malformed bytea: bad hex digit at offset %" G_GSIZE_FORMAT, i);
              return NULL;
            }
          b = (guint8) (hi << 4 | lo);
          g_byte_array_append (out, &b, 1);
        }
      return g_byte_array_free_to_bytes (g_steal_pointer (&out));
    }

  out = g_byte_array_sized_new (len);
  for (gsize i = 0; i < len; i++)
    {
      guint8 b = (guint8) text[i];

      if (b == '\\')
        {
          if (i + 1 < len && text[i + 1] == '\\')
            {
              i++;
            }
          else if (i + 3 < len &&
                   text[i + 1] >= '0' && text[i + 1] <= '3' &&
                   text[i + 2] >= '0' && text[i + 2] <= '7' &&
                   text[i + 3] >= '0' && text[i + 3] <= '7')
            {
              b = (guint8) ((text[i + 1] - '0') << 6 | (text[i + 2] - '0') << 3 | (text[i + 3] - '0'));
              i += 3;
            }
          else
            {
              g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                           "malformed bytea: bad escape at offset %" G_GSIZE_FORMAT, i);
              return NULL;
            }
        }
      g_byte_array_append (out, &b, 1);
    }
  return g_byte_array_free_to_bytes (g_steal_pointer (&out));
}

static GVariant *
scalar_to_variant (BpPgKind     kind,
                   const char  *text,
                   gsize        len,
                   GError     **error)
{
  gint64 i64;
  guint64 u64;
  double d;
  gboolean b;

  switch (kind)
    {
    case BP_PG_KIND_BOOL:
      if (!parse_bool (text, &b))
        break;
      return g_variant_new_boolean (b);

    case BP_PG_KIND_INT16:
      if (!g_ascii_string_to_signed (text, 10, G_MININT16, G_MAXINT16, &i64, NULL))
        break;
      return g_variant_new_int32 ((gint32) i64);

    case BP_PG_KIND_INT32:
      if (!g_ascii_string_to_signed (text, 10, G_MININT32, G_MAXINT32, &i64, NULL))
        break;
      return g_variant_new_int32 ((gint32) i64);

    case BP_PG_KIND_INT64:
      if (!g_ascii_string_to_signed (text, 10, G_MININT64, G_MAXINT64, &i64, NULL))
        break;
      return g_variant_new_int64 (i64);

    case BP_PG_KIND_OID:
      if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT32, &u64, NULL))
        break;
      return g_variant_new_uint32 ((guint32) u64);

    case BP_PG_KIND_FLOAT:
      if (!parse_double (text, &d))
        break;
      return g_variant_new_double (d);

    case BP_PG_KIND_BYTEA:
      {
        g_autoptr(GBytes) bytes = bp_pg_bytea_decode (text, len, error);

        if (bytes == NULL)
          return NULL;
        return g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE);
      }

    case BP_PG_KIND_TEXT:
    case BP_PG_KIND_NUMERIC:
    case BP_PG_KIND_JSON:
    case BP_PG_KIND_ARRAY:
    default:
      return new_string_variant (text, len);
    }

  g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
               "cannot decode server value as %s",
               kind == BP_PG_KIND_BOOL ? "bool" :
               kind == BP_PG_KIND_FLOAT ? "float" : "integer");
  return NULL;
}

/* ---------------------------------------------------------------------- */
/* Arrays                                                                  */

typedef struct _ArrayNode ArrayNode;
struct _ArrayNode
{
  GPtrArray *children;  /* (element-type ArrayNode) (owned) (nullable): set for sub-arrays */
  char      *text;      /* (owned) (nullable): element text, NULL for SQL NULL */
};

static void
array_node_free (ArrayNode *node)
{
  if (node == NULL)
    return;
  g_clear_pointer (&node->children, g_ptr_array_unref);
  g_free (node->text);
  g_free (node);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ArrayNode, array_node_free)

typedef struct
{
  const char *p;
  const char *end;
} ArrayParser;

static void
skip_space (ArrayParser *ps)
{
  while (ps->p < ps->end && g_ascii_isspace (*ps->p))
    ps->p++;
}

static ArrayNode *
parse_array_level (ArrayParser  *ps,
                   guint         depth,
                   GError      **error)
{
  g_autoptr(ArrayNode) node = g_new0 (ArrayNode, 1);

  if (depth > BP_PG_ARRAY_MAX_DEPTH)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                   "malformed array: more than %d dimensions", BP_PG_ARRAY_MAX_DEPTH);
      return NULL;
    }

  node->children = g_ptr_array_new_with_free_func ((GDestroyNotify) array_node_free);
  g_assert (ps->p < ps->end && *ps->p == '{');
  ps->p++;
  skip_space (ps);
  if (ps->p < ps->end && *ps->p == '}')
    {
      ps->p++;
      return g_steal_pointer (&node);
    }

  for (;;)
    {
      g_autoptr(ArrayNode) child = NULL;

      skip_space (ps);
      if (ps->p >= ps->end)
        break;

      if (*ps->p == '{')
        {
          child = parse_array_level (ps, depth + 1, error);
          if (child == NULL)
            return NULL;
        }
      else if (*ps->p == '"')
        {
          GString *s = g_string_new (NULL);

          ps->p++;
          while (ps->p < ps->end && *ps->p != '"')
            {
              if (*ps->p == '\\' && ps->p + 1 < ps->end)
                ps->p++;
              g_string_append_c (s, *ps->p);
              ps->p++;
            }
          if (ps->p >= ps->end)
            {
              g_string_free (s, TRUE);
              break;
            }
          ps->p++;  /* closing quote */
          child = g_new0 (ArrayNode, 1);
          child->text = g_string_free (s, FALSE);
        }
      else
        {
          GString *s = g_string_new (NULL);
          gboolean escaped = FALSE;
          gsize trim_to = 0;

          while (ps->p < ps->end && *ps->p != ',' && *ps->p != '}')
            {
              if (*ps->p == '{' || *ps->p == '"')
                {
                  g_string_free (s, TRUE);
                  g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                               "malformed array: unexpected '%c'", *ps->p);
                  return NULL;
                }
              if (*ps->p == '\\' && ps->p + 1 < ps->end)
                {
                  ps->p++;
                  escaped = TRUE;
                  g_string_append_c (s, *ps->p);
                  trim_to = s->len;
                }
              else
                {
                  g_string_append_c (s, *ps->p);
                  if (!g_ascii_isspace (*ps->p))
                    trim_to = s->len;
                }
              ps->p++;
            }
          g_string_truncate (s, trim_to);
          if (s->len == 0)
            {
              g_string_free (s, TRUE);
              break;
            }
          child = g_new0 (ArrayNode, 1);
          if (!escaped && g_ascii_strcasecmp (s->str, "NULL") == 0)
            g_string_free (s, TRUE);
          else
            child->text = g_string_free (s, FALSE);
        }

      g_ptr_array_add (node->children, g_steal_pointer (&child));

      skip_space (ps);
      if (ps->p < ps->end && *ps->p == ',')
        {
          ps->p++;
          continue;
        }
      if (ps->p < ps->end && *ps->p == '}')
        {
          ps->p++;
          return g_steal_pointer (&node);
        }
      break;
    }

  g_set_error (error, BP_ERROR, BP_ERROR_BACKEND, "malformed array literal");
  return NULL;
}

static ArrayNode *
parse_array (const char  *text,
             gsize        len,
             GError     **error)
{
  ArrayParser ps = { text, text + len };
  g_autoptr(ArrayNode) root = NULL;

  skip_space (&ps);
  /* Optional dimension decoration, e.g. "[0:1]={1,2}" */
  if (ps.p < ps.end && *ps.p == '[')
    {
      while (ps.p < ps.end && *ps.p != '=')
        ps.p++;
      if (ps.p < ps.end)
        ps.p++;
      skip_space (&ps);
    }
  if (ps.p >= ps.end || *ps.p != '{')
    {
      g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                   "malformed array literal: missing '{'");
      return NULL;
    }
  root = parse_array_level (&ps, 1, error);
  if (root == NULL)
    return NULL;
  skip_space (&ps);
  if (ps.p != ps.end)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                   "malformed array literal: junk after '}'");
      return NULL;
    }
  return g_steal_pointer (&root);
}

static GVariant *
array_node_to_variant (ArrayNode  *node,
                       Oid         elem_type,
                       GError    **error)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("av"));
  BpPgKind kind = bp_pg_type_get_kind (elem_type, NULL);

  for (guint i = 0; i < node->children->len; i++)
    {
      ArrayNode *child = g_ptr_array_index (node->children, i);
      GVariant *value;

      if (child->children != NULL)
        value = array_node_to_variant (child, elem_type, error);
      else if (child->text == NULL)
        value = g_variant_new_object_path ("/");
      else
        value = scalar_to_variant (kind == BP_PG_KIND_ARRAY ? BP_PG_KIND_TEXT : kind,
                                   child->text, strlen (child->text), error);
      if (value == NULL)
        return NULL;
      g_variant_builder_add (&builder, "v", value);
    }
  return g_variant_builder_end (&builder);
}

/**
 * bp_pg_array_parse:
 * @text: the server's text of an array value, NUL-terminated at @len
 * @len: length of @text
 * @elem_type: the element type OID
 * @error: return location for a #GError
 *
 * Parses PostgreSQL's array output format (quoting, backslash escapes,
 * NULL, optional dimension decoration, nested braces for more dimensions).
 *
 * Returns: (transfer floating): an `av`, or %NULL on malformed input
 */
GVariant *
bp_pg_array_parse (const char  *text,
                   gsize        len,
                   Oid          elem_type,
                   GError     **error)
{
  g_autoptr(ArrayNode) root = parse_array (text, len, error);

  if (root == NULL)
    return NULL;
  return array_node_to_variant (root, elem_type, error);
}

/**
 * bp_pg_value_to_variant:
 * @type: the column type OID
 * @text: the server's text of a non-NULL value, NUL-terminated at @len
 * @len: length of @text
 * @error: return location for a #GError
 *
 * Returns: (transfer floating): the value, or %NULL on malformed input
 */
GVariant *
bp_pg_value_to_variant (Oid          type,
                        const char  *text,
                        gsize        len,
                        GError     **error)
{
  Oid elem = 0;
  BpPgKind kind = bp_pg_type_get_kind (type, &elem);

  if (kind == BP_PG_KIND_ARRAY)
    return bp_pg_array_parse (text, len, elem, error);
  return scalar_to_variant (kind, text, len, error);
}

/* ---------------------------------------------------------------------- */
/* JSON and CSV                                                            */

/**
 * bp_pg_json_append_string:
 * @out: where to append
 * @str: UTF-8 text
 * @len: length of @str, or -1 if NUL-terminated
 *
 * Appends @str as a JSON string literal: bp_frame_json_append_string_len(),
 * so that rows and the stream's own lines escape alike. Invalid UTF-8 is
 * replaced.
 */
void
bp_pg_json_append_string (GString    *out,
                          const char *str,
                          gssize      len)
{
  bp_frame_json_append_string_len (out, str, len);
}

static gboolean
looks_like_json_number (const char *text)
{
  const char *p = text;

  if (*p == '-')
    p++;
  if (!g_ascii_isdigit (*p))
    return FALSE;
  if (*p == '0' && g_ascii_isdigit (p[1]))
    return FALSE;
  while (g_ascii_isdigit (*p))
    p++;
  if (*p == '.')
    {
      p++;
      if (!g_ascii_isdigit (*p))
        return FALSE;
      while (g_ascii_isdigit (*p))
        p++;
    }
  if (*p == 'e' || *p == 'E')
    {
      p++;
      if (*p == '+' || *p == '-')
        p++;
      if (!g_ascii_isdigit (*p))
        return FALSE;
      while (g_ascii_isdigit (*p))
        p++;
    }
  return *p == '\0';
}

static gboolean
append_json_scalar (GString     *out,
                    BpPgKind     kind,
                    const char  *text,
                    gsize        len,
                    GError     **error)
{
  gboolean b;

  switch (kind)
    {
    case BP_PG_KIND_INT16:
    case BP_PG_KIND_INT32:
    case BP_PG_KIND_INT64:
    case BP_PG_KIND_OID:
    case BP_PG_KIND_FLOAT:
    case BP_PG_KIND_NUMERIC:
      if (looks_like_json_number (text))
        g_string_append_len (out, text, len);
      else if (is_special_number (text))
        bp_pg_json_append_string (out, text, len);
      else
        {
          g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                       "cannot decode server value as a number");
          return FALSE;
        }
      return TRUE;

    case BP_PG_KIND_BOOL:
      if (!parse_bool (text, &b))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                       "cannot decode server value as bool");
          return FALSE;
        }
      g_string_append (out, b ? "true" : "false");
      return TRUE;

    case BP_PG_KIND_JSON:
      {
        gsize start = out->len;

        g_string_append_len (out, text, len);
        /* Valid JSON has raw CR/LF only as whitespace: keep one row a line. */
        for (gsize i = start; i < out->len; i++)
          if (out->str[i] == '\n' || out->str[i] == '\r')
            out->str[i] = ' ';
        return TRUE;
      }

    case BP_PG_KIND_BYTEA:
      {
        g_autoptr(GBytes) bytes = bp_pg_bytea_decode (text, len, error);
        g_autofree char *b64 = NULL;
        gsize size;
        const guint8 *data;

        if (bytes == NULL)
          return FALSE;
        data = g_bytes_get_data (bytes, &size);
        b64 = g_base64_encode (data, size);
        g_string_append_c (out, '"');
        g_string_append (out, b64);
        g_string_append_c (out, '"');
        return TRUE;
      }

    case BP_PG_KIND_TEXT:
    case BP_PG_KIND_ARRAY:
    default:
      bp_pg_json_append_string (out, text, len);
      return TRUE;
    }
}

static gboolean
append_json_array (GString     *out,
                   ArrayNode   *node,
                   BpPgKind     elem_kind,
                   GError     **error)
{
  g_string_append_c (out, '[');
  for (guint i = 0; i < node->children->len; i++)
    {
      ArrayNode *child = g_ptr_array_index (node->children, i);

      if (i > 0)
        g_string_append_c (out, ',');
      if (child->children != NULL)
        {
          if (!append_json_array (out, child, elem_kind, error))
            return FALSE;
        }
      else if (child->text == NULL)
        g_string_append (out, "null");
      else if (!append_json_scalar (out, elem_kind, child->text, strlen (child->text), error))
        return FALSE;
    }
  g_string_append_c (out, ']');
  return TRUE;
}

/**
 * bp_pg_json_append_value:
 * @out: where to append
 * @type: the column type OID
 * @text: the server's text of a non-NULL value, NUL-terminated at @len
 * @len: length of @text
 * @error: return location for a #GError
 *
 * Appends the value as JSON (see the file comment for the mapping).
 *
 * Returns: %FALSE on malformed input (@out may hold a partial value)
 */
gboolean
bp_pg_json_append_value (GString     *out,
                         Oid          type,
                         const char  *text,
                         gsize        len,
                         GError     **error)
{
  Oid elem = 0;
  BpPgKind kind = bp_pg_type_get_kind (type, &elem);

  if (kind == BP_PG_KIND_ARRAY)
    {
      g_autoptr(ArrayNode) root = parse_array (text, len, error);
      BpPgKind elem_kind = bp_pg_type_get_kind (elem, NULL);

      if (root == NULL)
        return FALSE;
      return append_json_array (out, root,
                                elem_kind == BP_PG_KIND_ARRAY ? BP_PG_KIND_TEXT : elem_kind,
                                error);
    }
  return append_json_scalar (out, kind, text, len, error);
}

/**
 * bp_pg_csv_append_field:
 * @out: where to append
 * @text: (nullable): the field text, %NULL for SQL NULL
 * @len: length of @text
 *
 * Appends one CSV field with RFC 4180 quoting: a field holding a comma,
 * quote, CR or LF, or an empty string, is quoted and its quotes doubled;
 * NULL is an empty unquoted field. This is exactly what PostgreSQL's
 * `COPY … (FORMAT csv)` writes (it does not quote leading or trailing
 * blanks, unlike bp_frame_csv_append_field()), so QueryToFd csv and CopyTo
 * csv agree byte for byte.
 */
void
bp_pg_csv_append_field (GString    *out,
                        const char *text,
                        gsize       len)
{
  gboolean quote = FALSE;

  if (text == NULL)
    return;
  if (len == 0)
    quote = TRUE;
  for (gsize i = 0; i < len && !quote; i++)
    if (text[i] == ',' || text[i] == '"' || text[i] == '\r' || text[i] == '\n')
      quote = TRUE;

  if (!quote)
    {
      g_string_append_len (out, text, len);
      return;
    }
  g_string_append_c (out, '"');
  for (gsize i = 0; i < len; i++)
    {
      if (text[i] == '"')
        g_string_append_c (out, '"');
      g_string_append_c (out, text[i]);
    }
  g_string_append_c (out, '"');
}

/* ---------------------------------------------------------------------- */
/* Row descriptions                                                        */

struct _BpPgRowDesc
{
  guint  n_columns;
  char **names;       /* (owned) */
  char **keys;        /* (owned) unique */
  char **type_names;  /* (owned) */
  Oid   *types;       /* (owned) */
};

/**
 * bp_pg_row_desc_new:
 * @res: (nullable): a result with tuples (PGRES_TUPLES_OK or PGRES_SINGLE_TUPLE),
 *   or %NULL for an empty description
 *
 * Returns: (transfer full): the row description of @res
 */
BpPgRowDesc *
bp_pg_row_desc_new (const PGresult *res)
{
  BpPgRowDesc *self = g_new0 (BpPgRowDesc, 1);
  g_autoptr(GHashTable) used = g_hash_table_new (g_str_hash, g_str_equal);
  int n = PQnfields (res);

  self->n_columns = n > 0 ? (guint) n : 0;
  self->names = g_new0 (char *, self->n_columns + 1);
  self->keys = g_new0 (char *, self->n_columns + 1);
  self->type_names = g_new0 (char *, self->n_columns + 1);
  self->types = g_new0 (Oid, self->n_columns + 1);

  for (guint i = 0; i < self->n_columns; i++)
    {
      const char *name = PQfname (res, (int) i);

      self->names[i] = g_strdup (name != NULL ? name : "?column?");
      self->types[i] = PQftype (res, (int) i);
      self->type_names[i] = bp_pg_type_dup_name (self->types[i]);
    }
  /* Positional rule: the first occurrence keeps the name, each later
   * occurrence gets the smallest "#k" (k ≥ 2) not used by an earlier key. */
  for (guint i = 0; i < self->n_columns; i++)
    {
      if (!g_hash_table_contains (used, self->names[i]))
        self->keys[i] = g_strdup (self->names[i]);
      else
        {
          for (guint k = 2; ; k++)
            {
              g_autofree char *candidate = g_strdup_printf ("%s#%u", self->names[i], k);

              if (!g_hash_table_contains (used, candidate))
                {
                  self->keys[i] = g_steal_pointer (&candidate);
                  break;
                }
            }
        }
      g_hash_table_add (used, self->keys[i]);
    }
  return self;
}

/**
 * bp_pg_row_desc_copy:
 * @self: a row description
 *
 * Returns: (transfer full): a copy of @self
 */
BpPgRowDesc *
bp_pg_row_desc_copy (const BpPgRowDesc *self)
{
  BpPgRowDesc *copy = g_new0 (BpPgRowDesc, 1);

  copy->n_columns = self->n_columns;
  copy->names = g_strdupv (self->names);
  copy->keys = g_strdupv (self->keys);
  copy->type_names = g_strdupv (self->type_names);
  copy->types = g_memdup2 (self->types, sizeof (Oid) * (self->n_columns + 1));
  return copy;
}

void
bp_pg_row_desc_free (BpPgRowDesc *self)
{
  if (self == NULL)
    return;
  g_strfreev (self->names);
  g_strfreev (self->keys);
  g_strfreev (self->type_names);
  g_free (self->types);
  g_free (self);
}

guint
bp_pg_row_desc_get_n_columns (const BpPgRowDesc *self)
{
  return self->n_columns;
}

const char *
bp_pg_row_desc_get_name (const BpPgRowDesc *self,
                         guint              column)
{
  g_return_val_if_fail (column < self->n_columns, NULL);
  return self->names[column];
}

const char *
bp_pg_row_desc_get_key (const BpPgRowDesc *self,
                        guint              column)
{
  g_return_val_if_fail (column < self->n_columns, NULL);
  return self->keys[column];
}

const char *
bp_pg_row_desc_get_type_name (const BpPgRowDesc *self,
                              guint              column)
{
  g_return_val_if_fail (column < self->n_columns, NULL);
  return self->type_names[column];
}

Oid
bp_pg_row_desc_get_type (const BpPgRowDesc *self,
                         guint              column)
{
  g_return_val_if_fail (column < self->n_columns, 0);
  return self->types[column];
}

/**
 * bp_pg_row_desc_to_columns:
 * @self: a row description
 *
 * Returns: (transfer floating): the `a(ss)` column list: the SQL column
 *   names (not the de-duplicated row keys) and type names
 */
GVariant *
bp_pg_row_desc_to_columns (const BpPgRowDesc *self)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(ss)"));

  for (guint i = 0; i < self->n_columns; i++)
    {
      g_autofree char *valid = g_utf8_make_valid (self->names[i], -1);
      g_variant_builder_add (&builder, "(ss)", valid, self->type_names[i]);
    }
  return g_variant_builder_end (&builder);
}

/**
 * bp_pg_row_desc_append_json_columns:
 * @self: a row description
 * @out: where to append
 *
 * Appends `[{"name":…,"key":…,"type":…},…]` for a JSON Lines header.
 */
void
bp_pg_row_desc_append_json_columns (const BpPgRowDesc *self,
                                    GString           *out)
{
  g_string_append_c (out, '[');
  for (guint i = 0; i < self->n_columns; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      g_string_append (out, "{\"name\":");
      bp_pg_json_append_string (out, self->names[i], -1);
      g_string_append (out, ",\"key\":");
      bp_pg_json_append_string (out, self->keys[i], -1);
      g_string_append (out, ",\"type\":");
      bp_pg_json_append_string (out, self->type_names[i], -1);
      g_string_append_c (out, '}');
    }
  g_string_append_c (out, ']');
}

/**
 * bp_pg_row_desc_append_csv_header:
 * @self: a row description
 * @out: where to append
 *
 * Appends the CSV header line (column names) with its LF.
 */
void
bp_pg_row_desc_append_csv_header (const BpPgRowDesc *self,
                                  GString           *out)
{
  for (guint i = 0; i < self->n_columns; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      bp_pg_csv_append_field (out, self->names[i], strlen (self->names[i]));
    }
  g_string_append_c (out, '\n');
}

/**
 * bp_pg_row_to_variant:
 * @desc: the row description of @res
 * @res: a result
 * @row: the row number in @res
 * @error: return location for a #GError
 *
 * Returns: (transfer floating): the row as `a{sv}` (NULL columns absent),
 *   or %NULL if a value cannot be decoded
 */
GVariant *
bp_pg_row_to_variant (const BpPgRowDesc *desc,
                      const PGresult    *res,
                      int                row,
                      GError           **error)
{
  g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);

  for (guint i = 0; i < desc->n_columns; i++)
    {
      GVariant *value;
      g_autoptr(GError) local_error = NULL;

      if (PQgetisnull (res, row, (int) i))
        continue;
      value = bp_pg_value_to_variant (desc->types[i],
                                      PQgetvalue (res, row, (int) i),
                                      (gsize) PQgetlength (res, row, (int) i),
                                      &local_error);
      if (value == NULL)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                       "column %u (%s): %s", i, desc->keys[i], local_error->message);
          return NULL;
        }
      g_variant_builder_add (&builder, "{sv}", desc->keys[i], value);
    }
  return g_variant_builder_end (&builder);
}

/**
 * bp_pg_row_append_json:
 * @desc: the row description of @res
 * @res: a result
 * @row: the row number in @res
 * @out: where to append
 * @error: return location for a #GError
 *
 * Appends the row as one JSON object (no newline); NULL is null.
 *
 * Returns: %FALSE if a value cannot be decoded
 */
gboolean
bp_pg_row_append_json (const BpPgRowDesc *desc,
                       const PGresult    *res,
                       int                row,
                       GString           *out,
                       GError           **error)
{
  g_string_append_c (out, '{');
  for (guint i = 0; i < desc->n_columns; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      bp_pg_json_append_string (out, desc->keys[i], -1);
      g_string_append_c (out, ':');
      if (PQgetisnull (res, row, (int) i))
        g_string_append (out, "null");
      else
        {
          g_autoptr(GError) local_error = NULL;

          if (!bp_pg_json_append_value (out, desc->types[i],
                                        PQgetvalue (res, row, (int) i),
                                        (gsize) PQgetlength (res, row, (int) i),
                                        &local_error))
            {
              g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                           "column %u (%s): %s", i, desc->keys[i], local_error->message);
              return FALSE;
            }
        }
    }
  g_string_append_c (out, '}');
  return TRUE;
}

/**
 * bp_pg_row_append_csv:
 * @desc: the row description of @res
 * @res: a result
 * @row: the row number in @res
 * @out: where to append
 *
 * Appends the row as one CSV line with its LF.
 */
void
bp_pg_row_append_csv (const BpPgRowDesc *desc,
                      const PGresult    *res,
                      int                row,
                      GString           *out)
{
  for (guint i = 0; i < desc->n_columns; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      if (!PQgetisnull (res, row, (int) i))
        bp_pg_csv_append_field (out, PQgetvalue (res, row, (int) i),
                                (gsize) PQgetlength (res, row, (int) i));
    }
  g_string_append_c (out, '\n');
}

/* ---------------------------------------------------------------------- */
/* Parameters                                                              */

static gboolean
is_null_variant (GVariant *value)
{
  return g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH) &&
         g_str_equal (g_variant_get_string (value, NULL), "/");
}

static GVariant *
unbox (GVariant *value)
{
  /* (transfer full) */
  g_variant_ref (value);
  while (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT))
    {
      GVariant *inner = g_variant_get_variant (value);
      g_variant_unref (value);
      value = inner;
    }
  return value;
}

static void
format_double (GString *out,
               double   d)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (d))
    g_string_append (out, "NaN");
  else if (isinf (d))
    g_string_append (out, d > 0 ? "Infinity" : "-Infinity");
  else
    g_string_append (out, g_ascii_dtostr (buf, sizeof buf, d));
}

/* The scalar type OIDs of parameters and array elements. */
static Oid
scalar_param_type (const GVariantType *type)
{
  switch (g_variant_type_peek_string (type)[0])
    {
    case 'x': return BP_PG_OID_INT8;
    case 'i': return BP_PG_OID_INT4;
    case 'n': case 'y': return BP_PG_OID_INT2;
    case 'q': case 'u': return BP_PG_OID_INT8;
    case 't': return BP_PG_OID_NUMERIC;
    case 'd': return BP_PG_OID_FLOAT8;
    case 'b': return BP_PG_OID_BOOL;
    case 's': return BP_PG_OID_TEXT;
    default: return 0;
    }
}

static Oid
array_type_for (Oid elem)
{
  switch (elem)
    {
    case BP_PG_OID_INT8: return BP_PG_OID_INT8_ARRAY;
    case BP_PG_OID_INT4: return BP_PG_OID_INT4_ARRAY;
    case BP_PG_OID_INT2: return BP_PG_OID_INT2_ARRAY;
    case BP_PG_OID_NUMERIC: return BP_PG_OID_NUMERIC_ARRAY;
    case BP_PG_OID_FLOAT8: return BP_PG_OID_FLOAT8_ARRAY;
    case BP_PG_OID_BOOL: return BP_PG_OID_BOOL_ARRAY;
    case BP_PG_OID_TEXT: return BP_PG_OID_TEXT_ARRAY;
    case BP_PG_OID_BYTEA: return BP_PG_OID_BYTEA_ARRAY;
    default: return 0;
    }
}

/* Appends a scalar as text; returns its type OID, or 0 with @error set. */
static Oid
append_scalar_text (GString   *out,
                    GVariant  *value,
                    GError   **error)
{
  const GVariantType *type = g_variant_get_type (value);

  switch (g_variant_type_peek_string (type)[0])
    {
    case 'x': g_string_append_printf (out, "%" G_GINT64_FORMAT, g_variant_get_int64 (value)); break;
    case 'i': g_string_append_printf (out, "%d", g_variant_get_int32 (value)); break;
    case 'n': g_string_append_printf (out, "%d", g_variant_get_int16 (value)); break;
    case 'y': g_string_append_printf (out, "%u", g_variant_get_byte (value)); break;
    case 'q': g_string_append_printf (out, "%u", g_variant_get_uint16 (value)); break;
    case 'u': g_string_append_printf (out, "%u", g_variant_get_uint32 (value)); break;
    case 't': g_string_append_printf (out, "%" G_GUINT64_FORMAT, g_variant_get_uint64 (value)); break;
    case 'd': format_double (out, g_variant_get_double (value)); break;
    case 'b': g_string_append (out, g_variant_get_boolean (value) ? "t" : "f"); break;
    case 's': g_string_append (out, g_variant_get_string (value, NULL)); break;
    default:
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "unsupported type '%s'", g_variant_get_type_string (value));
      return 0;
    }
  return scalar_param_type (type);
}

static void
append_array_element_quoted (GString    *out,
                             const char *text,
                             gsize       len)
{
  g_string_append_c (out, '"');
  for (gsize i = 0; i < len; i++)
    {
      if (text[i] == '"' || text[i] == '\\')
        g_string_append_c (out, '\\');
      g_string_append_c (out, text[i]);
    }
  g_string_append_c (out, '"');
}

/* Appends an array literal for an array GVariant (av or a typed array).
 * *io_elem is the element type seen so far (0 = none yet), checked for
 * consistency. */
static gboolean
append_array_literal (GString   *out,
                      GVariant  *array,
                      guint      depth,
                      Oid       *io_elem,
                      GError   **error)
{
  GVariantIter iter;
  GVariant *child_raw;
  gboolean first = TRUE;

  if (depth > BP_PG_ARRAY_MAX_DEPTH)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "array nested deeper than %d", BP_PG_ARRAY_MAX_DEPTH);
      return FALSE;
    }

  g_string_append_c (out, '{');
  g_variant_iter_init (&iter, array);
  while ((child_raw = g_variant_iter_next_value (&iter)) != NULL)
    {
      g_autoptr(GVariant) child = unbox (child_raw);
      Oid elem;

      g_variant_unref (child_raw);
      if (!first)
        g_string_append_c (out, ',');
      first = FALSE;

      if (is_null_variant (child))
        {
          g_string_append (out, "NULL");
          continue;
        }
      if (g_variant_is_of_type (child, G_VARIANT_TYPE_BYTESTRING))
        {
          gsize n;
          const guint8 *data = g_variant_get_fixed_array (child, &n, 1);
          GString *hex = g_string_sized_new (2 + 2 * n);

          g_string_append (hex, "\\x");
          for (gsize i = 0; i < n; i++)
            g_string_append_printf (hex, "%02x", data[i]);
          append_array_element_quoted (out, hex->str, hex->len);
          g_string_free (hex, TRUE);
          elem = BP_PG_OID_BYTEA;
        }
      else if (g_variant_is_of_type (child, G_VARIANT_TYPE_ARRAY))
        {
          if (!append_array_literal (out, child, depth + 1, io_elem, error))
            return FALSE;
          continue;
        }
      else
        {
          g_autoptr(GString) text = g_string_new (NULL);

          elem = append_scalar_text (text, child, error);
          if (elem == 0)
            return FALSE;
          append_array_element_quoted (out, text->str, text->len);
        }

      if (*io_elem == 0)
        *io_elem = elem;
      else if (*io_elem != elem)
        {
          g_autofree char *a = bp_pg_type_dup_name (*io_elem);
          g_autofree char *b = bp_pg_type_dup_name (elem);
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "array mixes element types %s and %s", a, b);
          return FALSE;
        }
    }
  g_string_append_c (out, '}');
  return TRUE;
}

void
bp_pg_params_free (BpPgParams *self)
{
  if (self == NULL)
    return;
  for (int i = 0; i < self->n; i++)
    g_free (self->values[i]);
  g_free (self->values);
  g_free (self->types);
  g_free (self->lengths);
  g_free (self->formats);
  g_free (self);
}

/**
 * bp_pg_params_new:
 * @params: (nullable): an `av` of parameter values
 * @error: return location for a #GError
 *
 * Converts parameters to libpq form. Errors are %BP_ERROR_INVALID_ARGUMENT
 * naming the parameter ("params[2] ($3): …").
 *
 * Returns: (transfer full): the parameters, or %NULL on error
 */
BpPgParams *
bp_pg_params_new (GVariant  *params,
                  GError   **error)
{
  g_autoptr(BpPgParams) self = g_new0 (BpPgParams, 1);
  gsize n = 0;

  if (params != NULL)
    {
      if (!g_variant_is_of_type (params, G_VARIANT_TYPE ("av")))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "params: expected type 'av', got '%s'",
                       g_variant_get_type_string (params));
          return NULL;
        }
      n = g_variant_n_children (params);
    }
  if (n > 65535)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "params: %" G_GSIZE_FORMAT " parameters, at most 65535 allowed", n);
      return NULL;
    }

  self->n = (int) n;
  self->types = g_new0 (Oid, n + 1);
  self->values = g_new0 (char *, n + 1);
  self->lengths = g_new0 (int, n + 1);
  self->formats = g_new0 (int, n + 1);

  for (gsize i = 0; i < n; i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (params, i);
      g_autoptr(GVariant) value = unbox (boxed);
      g_autoptr(GError) local_error = NULL;

      if (is_null_variant (value))
        continue;  /* NULL, type 0 */

      if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTESTRING))
        {
          gsize len;
          const guint8 *data = g_variant_get_fixed_array (value, &len, 1);

          if (len > G_MAXINT)
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "params[%" G_GSIZE_FORMAT "] ($%" G_GSIZE_FORMAT "): too large", i, i + 1);
              return NULL;
            }
          self->types[i] = BP_PG_OID_BYTEA;
          /* Never NULL, even when empty: NULL would mean SQL NULL. */
          self->values[i] = g_malloc0 (len > 0 ? len : 1);
          if (len > 0)
            memcpy (self->values[i], data, len);
          self->lengths[i] = (int) len;
          self->formats[i] = 1;
          continue;
        }

      if (g_variant_is_of_type (value, G_VARIANT_TYPE_ARRAY) &&
          !g_variant_is_of_type (value, G_VARIANT_TYPE_VARDICT) &&
          !g_variant_type_is_dict_entry (g_variant_type_element (g_variant_get_type (value))))
        {
          g_autoptr(GString) text = g_string_new (NULL);
          Oid elem = 0;

          if (!append_array_literal (text, value, 1, &elem, &local_error))
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "params[%" G_GSIZE_FORMAT "] ($%" G_GSIZE_FORMAT "): %s",
                           i, i + 1, local_error->message);
              return NULL;
            }
          /* A text[] literal goes as unknown so that the server can read it
           * as uuid[], date[], … from the context. */
          self->types[i] = elem == BP_PG_OID_TEXT ? 0 : array_type_for (elem);
          self->lengths[i] = (int) text->len;
          self->values[i] = g_string_free (g_steal_pointer (&text), FALSE);
          continue;
        }

      {
        g_autoptr(GString) text = g_string_new (NULL);
        Oid type = append_scalar_text (text, value, &local_error);

        if (type == 0)
          {
            g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                         "params[%" G_GSIZE_FORMAT "] ($%" G_GSIZE_FORMAT "): %s",
                         i, i + 1, local_error->message);
            return NULL;
          }
        if (g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
          type = 0;  /* let the server infer: text, json, timestamp, uuid … */
        self->types[i] = type;
        self->lengths[i] = (int) text->len;
        self->values[i] = g_string_free (g_steal_pointer (&text), FALSE);
      }
    }

  return g_steal_pointer (&self);
}

static gboolean
is_ident_char (guchar c)
{
  return g_ascii_isalnum (c) || c == '_' || c == '$' || c >= 0x80;
}

/**
 * bp_pg_sql_count_params:
 * @sql: one SQL statement
 *
 * Scans @sql like PostgreSQL's lexer does for parameter references ($N)
 * outside string literals, quoted identifiers, dollar quotes and comments.
 *
 * Returns: the highest N referenced, 0 if none
 */
int
bp_pg_sql_count_params (const char *sql)
{
  const char *p = sql;
  int max = 0;

  while (*p != '\0')
    {
      guchar prev = p > sql ? (guchar) p[-1] : ' ';

      if (*p == '-' && p[1] == '-')
        {
          while (*p != '\0' && *p != '\n')
            p++;
        }
      else if (*p == '/' && p[1] == '*')
        {
          int nest = 1;

          p += 2;
          while (*p != '\0' && nest > 0)
            {
              if (*p == '/' && p[1] == '*')
                nest++, p += 2;
              else if (*p == '*' && p[1] == '/')
                nest--, p += 2;
              else
                p++;
            }
        }
      else if (*p == '\'')
        {
          gboolean escapes = (p > sql && (p[-1] == 'E' || p[-1] == 'e') &&
                              (p - 1 == sql || !is_ident_char ((guchar) p[-2])));

          p++;
          while (*p != '\0')
            {
              if (escapes && *p == '\\' && p[1] != '\0')
                p += 2;
              else if (*p == '\'' && p[1] == '\'')
                p += 2;
              else if (*p == '\'')
                break;
              else
                p++;
            }
          if (*p != '\0')
            p++;
        }
      else if (*p == '"')
        {
          p++;
          while (*p != '\0')
            {
              if (*p == '"' && p[1] == '"')
                p += 2;
              else if (*p == '"')
                break;
              else
                p++;
            }
          if (*p != '\0')
            p++;
        }
      else if (*p == '$' && !is_ident_char (prev))
        {
          if (g_ascii_isdigit (p[1]))
            {
              gint64 n = 0;

              p++;
              while (g_ascii_isdigit (*p))
                {
                  if (n < G_MAXINT / 10)
                    n = n * 10 + (*p - '0');
                  p++;
                }
              if (n > max)
                max = (int) n;
            }
          else
            {
              /* $tag$ … $tag$ (tag may be empty) */
              const char *tag_start = p;
              const char *q = p + 1;
              gsize tag_len;
              const char *close;
              g_autofree char *tag = NULL;

              if (*q != '$' && !(g_ascii_isalpha (*q) || *q == '_' || (guchar) *q >= 0x80))
                {
                  p++;
                  continue;
                }
              while (*q != '$' && *q != '\0' &&
                     (g_ascii_isalnum (*q) || *q == '_' || (guchar) *q >= 0x80))
                q++;
              if (*q != '$')
                {
                  p = q;
                  continue;
                }
              tag_len = (gsize) (q - tag_start) + 1;
              tag = g_strndup (tag_start, tag_len);
              close = strstr (q + 1, tag);
              p = close != NULL ? close + tag_len : q + 1 + strlen (q + 1);
            }
        }
      else
        p++;
    }
  return max;
}

/**
 * bp_pg_params_check_count:
 * @sql: one SQL statement
 * @n_given: number of parameters supplied
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @sql references exactly parameters $1 … $@n_given
 *   (by its highest reference), else %FALSE with %BP_ERROR_INVALID_ARGUMENT
 */
gboolean
bp_pg_params_check_count (const char  *sql,
                          guint        n_given,
                          GError     **error)
{
  int used = bp_pg_sql_count_params (sql);

  if ((guint) used > n_given)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "params[%u] ($%u): missing; the statement uses %d parameter%s, %u given",
                   n_given, n_given + 1, used, used == 1 ? "" : "s", n_given);
      return FALSE;
    }
  if ((guint) used < n_given)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "params[%d] ($%d): not used; the statement uses %d parameter%s, %u given",
                   used, used + 1, used, used == 1 ? "" : "s", n_given);
      return FALSE;
    }
  return TRUE;
}
