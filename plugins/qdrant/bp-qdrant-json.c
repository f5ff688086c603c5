/* bp-qdrant-json.c: strict JSON scanning, point ids, validation and the
 * Qdrant response envelope
 *
 * json-glib 1.6 is lenient (it accepts comments, single quotes, leading
 * zeros, "1." and lone low surrogates, turning the latter into invalid
 * UTF-8), parses recursively without a depth bound, and keeps integers as
 * gint64: the literal 18446744073709551615 becomes -1 and a literal beyond
 * 2^64-1 saturates to -1 as well. Qdrant point ids are unsigned 64-bit.
 *
 * So every document, from the server or from a caller, first goes through
 * bp_qdrant_json_scan(): a non-recursive RFC 8259 scanner that bounds the
 * depth, checks UTF-8 and escapes, and rewrites the text handed to
 * json-glib so that
 *   - a number at one of the given id paths becomes a string holding the
 *     exact literal ("$.result.points[].id": 18446744073709551615 →
 *     "18446744073709551615"), read back with bp_qdrant_json_node_dup_id();
 *   - any other integer literal outside the gint64 range gets ".0" appended
 *     so json-glib reads it as a double (magnitude and sign kept, precision
 *     that of a double) instead of wrapping it.
 * Caller documents that pass the scan are valid JSON, so they can be
 * spliced into request bodies verbatim, which keeps their numbers exact.
 *
 * All functions here are pure and run in any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-qdrant-json.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include <libsoup/soup.h>

const char * const bp_qdrant_id_paths_points[] = {
  "$.result.points[].id",
  "$.result.next_page_offset",
  NULL
};
const char * const bp_qdrant_id_paths_records[] = { "$.result[].id", NULL };
const char * const bp_qdrant_id_paths_batch[] = { "$.result[].points[].id", NULL };
const char * const bp_qdrant_id_paths_line[] = { "$.id", NULL };

#define MESSAGE_TEXT_MAX 512

/**
 * bp_qdrant_limits_init:
 * @limits: (out caller-allocates): the limits to fill
 *
 * Fills @limits with the defaults.
 */
void
bp_qdrant_limits_init (BpQdrantLimits *limits)
{
  g_return_if_fail (limits != NULL);

  limits->max_batch_points = 10000;
  limits->max_vector_dim = 65536;
  limits->max_result_limit = 10000;
  limits->max_batch_queries = 100;
  limits->max_json_depth = 64;
  limits->max_request_bytes = 32 * 1024 * 1024;
  limits->max_response_bytes = 64 * 1024 * 1024;
  limits->max_line_bytes = 1024 * 1024;
}

/**
 * bp_qdrant_limits_validate:
 * @limits: limits to check
 * @error: return location for a #GError
 *
 * Returns: %TRUE if every bound is non-zero and a line fits in a request
 */
gboolean
bp_qdrant_limits_validate (const BpQdrantLimits  *limits,
                           GError               **error)
{
  g_return_val_if_fail (limits != NULL, FALSE);

  if (limits->max_batch_points == 0 || limits->max_vector_dim == 0 ||
      limits->max_result_limit == 0 || limits->max_batch_queries == 0 ||
      limits->max_json_depth == 0 || limits->max_request_bytes == 0 ||
      limits->max_response_bytes == 0 || limits->max_line_bytes == 0)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "limits: every bound must be greater than zero");
      return FALSE;
    }
  if (limits->max_json_depth > 1024)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "limits: max-json-depth must be at most 1024");
      return FALSE;
    }
  /* A point from a line also carries the request's wrapping. */
  if (limits->max_line_bytes + 64 > limits->max_request_bytes)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "limits: max-line-bytes must be smaller than max-request-bytes");
      return FALSE;
    }
  return TRUE;
}

/* Text from outside (an id, a server message) made safe to put into an
 * error message: valid UTF-8, no control characters, bounded. */
static char *
sanitize_text (const char *text,
               gsize       len,
               gsize       max_bytes)
{
  g_autofree char *valid = g_utf8_make_valid (text, (gssize) MIN (len, max_bytes + 8));
  GString *out = g_string_sized_new (MIN (len, max_bytes) + 4);
  const char *p;

  for (p = valid; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      const char *next = g_utf8_next_char (p);

      if (out->len + (gsize) (next - p) > max_bytes)
        {
          g_string_append (out, "…");
          break;
        }
      if (c < 0x20 || c == 0x7f)
        g_string_append_c (out, ' ');
      else
        g_string_append_len (out, p, next - p);
    }
  if (len > max_bytes + 8 && !g_str_has_suffix (out->str, "…"))
    g_string_append (out, "…");
  return g_string_free (out, FALSE);
}

/* ------------------------------------------------------------------ ids */

/**
 * bp_qdrant_id_parse_u64:
 * @text: decimal digits (not NUL-terminated)
 * @len: length of @text
 * @value: (out): the value
 *
 * Parses an unsigned decimal integer, exactly, up to 2^64-1. No sign, no
 * blanks, no exponent; leading zeros are allowed.
 *
 * Returns: %TRUE if @text is such an integer
 */
gboolean
bp_qdrant_id_parse_u64 (const char *text,
                        gsize       len,
                        guint64    *value)
{
  guint64 v = 0;
  gsize i;

  if (len == 0)
    return FALSE;
  for (i = 0; i < len; i++)
    {
      guint d;

      if (text[i] < '0' || text[i] > '9')
        return FALSE;
      d = (guint) (text[i] - '0');
      if (v > (G_MAXUINT64 - d) / 10)
        return FALSE;
      v = v * 10 + d;
    }
  if (value != NULL)
    *value = v;
  return TRUE;
}

static gboolean
parse_hex (const char *p,
           gsize       n,
           GString    *out)
{
  gsize i;

  for (i = 0; i < n; i++)
    {
      if (!g_ascii_isxdigit (p[i]))
        return FALSE;
      g_string_append_c (out, g_ascii_tolower (p[i]));
    }
  return TRUE;
}

/* 8-4-4-4-12 with hyphens, or 32 hex digits. */
static gboolean
parse_uuid_core (const char *p,
                 gsize       len,
                 GString    *out)
{
  static const guint groups[] = { 8, 4, 4, 4, 12 };
  gboolean hyphens;
  guint g;

  if (len == 36)
    hyphens = TRUE;
  else if (len == 32)
    hyphens = FALSE;
  else
    return FALSE;

  for (g = 0; g < G_N_ELEMENTS (groups); g++)
    {
      if (g > 0)
        {
          g_string_append_c (out, '-');
          if (hyphens)
            {
              if (*p != '-')
                return FALSE;
              p++;
            }
        }
      if (!parse_hex (p, groups[g], out))
        return FALSE;
      p += groups[g];
    }
  return TRUE;
}

static gboolean
parse_uuid (const char *text,
            gsize       len,
            GString    *out)
{
  if (len == 38 && text[0] == '{' && text[37] == '}')
    return parse_uuid_core (text + 1, 36, out);
  if (len == 45 && g_ascii_strncasecmp (text, "urn:uuid:", 9) == 0)
    return parse_uuid_core (text + 9, 36, out);
  return parse_uuid_core (text, len, out);
}

/**
 * bp_qdrant_id_normalize:
 * @text: an id as text
 * @len: length of @text, or -1 if NUL-terminated
 * @normalized: (out) (transfer full) (optional): the canonical form: decimal
 *   without leading zeros, or a lowercase hyphenated UUID
 * @is_uuid: (out) (optional): whether it is a UUID
 * @error: return location for a #GError
 *
 * Accepts an unsigned 64-bit integer in decimal (0 … 18446744073709551615)
 * or a UUID in any case, hyphenated, simple (32 hex digits), braced or as a
 * `urn:uuid:` URN. Anything else is %BP_ERROR_INVALID_ARGUMENT.
 *
 * Returns: %TRUE if @text is an id
 */
gboolean
bp_qdrant_id_normalize (const char  *text,
                        gssize       len,
                        char       **normalized,
                        gboolean    *is_uuid,
                        GError     **error)
{
  guint64 v;
  GString *uuid;

  g_return_val_if_fail (text != NULL, FALSE);

  if (len < 0)
    len = (gssize) strlen (text);

  if (bp_qdrant_id_parse_u64 (text, (gsize) len, &v))
    {
      if (normalized != NULL)
        *normalized = g_strdup_printf ("%" G_GUINT64_FORMAT, v);
      if (is_uuid != NULL)
        *is_uuid = FALSE;
      return TRUE;
    }

  uuid = g_string_sized_new (37);
  if (parse_uuid (text, (gsize) len, uuid))
    {
      if (normalized != NULL)
        *normalized = g_string_free (uuid, FALSE);
      else
        g_string_free (uuid, TRUE);
      if (is_uuid != NULL)
        *is_uuid = TRUE;
      return TRUE;
    }
  g_string_free (uuid, TRUE);

  {
    g_autofree char *shown = sanitize_text (text, (gsize) len, 80);

    g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                 "id '%s' is neither an unsigned 64-bit integer nor a UUID",
                 shown);
  }
  return FALSE;
}

/**
 * bp_qdrant_json_append_id:
 * @out: a JSON text being built
 * @normalized_id: an id from bp_qdrant_id_normalize()
 *
 * Appends the id as Qdrant's ExtendedPointId: an integer literal written
 * digit for digit (so 2^64-1 stays exact) or a UUID string.
 */
void
bp_qdrant_json_append_id (GString    *out,
                          const char *normalized_id)
{
  gboolean numeric = normalized_id[0] >= '0' && normalized_id[0] <= '9' &&
                     strchr (normalized_id, '-') == NULL &&
                     strlen (normalized_id) <= 20;

  if (numeric)
    g_string_append (out, normalized_id);
  else
    {
      g_string_append_c (out, '"');
      g_string_append (out, normalized_id);
      g_string_append_c (out, '"');
    }
}

/**
 * bp_qdrant_json_node_dup_id:
 * @node: an id node of a document parsed with bp_qdrant_json_parse()
 * @id: (out) (transfer full): the normalized id
 * @error: return location for a #GError
 *
 * Reads an id. Numbers at the id paths arrive as strings holding the exact
 * literal; a plain json-glib integer is accepted only if it is not negative
 * (a negative value may be a wrapped 2^63…2^64-1, which is not exact).
 *
 * Returns: %TRUE on success
 */
gboolean
bp_qdrant_json_node_dup_id (JsonNode  *node,
                            char     **id,
                            GError   **error)
{
  if (node != NULL && JSON_NODE_HOLDS_VALUE (node))
    {
      GType type = json_node_get_value_type (node);

      if (type == G_TYPE_STRING)
        return bp_qdrant_id_normalize (json_node_get_string (node), -1, id, NULL, error);
      if (type == G_TYPE_INT64 && json_node_get_int (node) >= 0)
        {
          *id = g_strdup_printf ("%" G_GINT64_FORMAT, json_node_get_int (node));
          return TRUE;
        }
    }
  g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "id is neither an unsigned 64-bit integer nor a UUID");
  return FALSE;
}

/* -------------------------------------------------------------- scanner */

typedef enum
{
  ST_VALUE,
  ST_OBJ_FIRST,
  ST_ARR_FIRST,
  ST_KEY,
  ST_AFTER_VALUE,
} ScanState;

typedef struct
{
  gboolean is_object;
  gsize    path_len;
} ScanFrame;

typedef struct
{
  const char         *data;
  gsize               len;
  gsize               pos;
  const char * const *id_paths;
  GString            *out;    /* (nullable) rewritten text, created lazily */
  gsize               copied; /* input bytes already copied to out */
  GString            *path;
} Scanner;

static gboolean
scan_fail (Scanner     *s,
           GError     **error,
           const char  *what)
{
  g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
               "invalid JSON at offset %" G_GSIZE_FORMAT ": %s", s->pos, what);
  return FALSE;
}

static void
scan_rewrite (Scanner    *s,
              gsize       start,
              gsize       end,
              const char *prefix,
              const char *suffix)
{
  if (s->out == NULL)
    s->out = g_string_sized_new (s->len + 64);
  g_string_append_len (s->out, s->data + s->copied, start - s->copied);
  g_string_append (s->out, prefix);
  g_string_append_len (s->out, s->data + start, end - start);
  g_string_append (s->out, suffix);
  s->copied = end;
}

static void
scan_skip_ws (Scanner *s)
{
  while (s->pos < s->len)
    {
      char c = s->data[s->pos];

      if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
        break;
      s->pos++;
    }
}

static int
hex4 (const char *p)
{
  int v = 0;
  int i;

  for (i = 0; i < 4; i++)
    {
      int d = g_ascii_xdigit_value (p[i]);

      if (d < 0)
        return -1;
      v = v * 16 + d;
    }
  return v;
}

/* At the opening quote. On success pos is past the closing quote and
 * *has_escape tells whether the raw bytes differ from the decoded text. */
static gboolean
scan_string (Scanner   *s,
             gboolean  *has_escape,
             GError   **error)
{
  *has_escape = FALSE;
  s->pos++;
  while (s->pos < s->len)
    {
      guchar c = (guchar) s->data[s->pos];

      if (c == '"')
        {
          s->pos++;
          return TRUE;
        }
      if (c < 0x20)
        return scan_fail (s, error, "control character in string");
      if (c != '\\')
        {
          s->pos++;
          continue;
        }
      *has_escape = TRUE;
      if (s->pos + 1 >= s->len)
        break;
      c = (guchar) s->data[s->pos + 1];
      if (strchr ("\"\\/bfnrt", c) != NULL && c != '\0')
        {
          s->pos += 2;
          continue;
        }
      if (c != 'u')
        return scan_fail (s, error, "invalid escape in string");
      {
        int u;

        if (s->pos + 6 > s->len || (u = hex4 (s->data + s->pos + 2)) < 0)
          return scan_fail (s, error, "invalid \\u escape");
        if (u == 0)
          return scan_fail (s, error, "\\u0000 in a string is not supported");
        if (u >= 0xdc00 && u <= 0xdfff)
          return scan_fail (s, error, "unpaired UTF-16 surrogate");
        if (u >= 0xd800 && u <= 0xdbff)
          {
            int lo;

            if (s->pos + 12 > s->len || s->data[s->pos + 6] != '\\' ||
                s->data[s->pos + 7] != 'u' ||
                (lo = hex4 (s->data + s->pos + 8)) < 0xdc00 || lo > 0xdfff)
              return scan_fail (s, error, "unpaired UTF-16 surrogate");
            s->pos += 12;
          }
        else
          s->pos += 6;
      }
    }
  return scan_fail (s, error, "unterminated string");
}

/* Compares decimal digit strings without leading zeros. */
static int
compare_digits (const char *a,
                gsize       a_len,
                const char *b)
{
  gsize b_len = strlen (b);

  if (a_len != b_len)
    return a_len < b_len ? -1 : 1;
  return memcmp (a, b, a_len);
}

static gboolean
path_is_id (Scanner *s)
{
  const char * const *p;

  if (s->id_paths == NULL)
    return FALSE;
  for (p = s->id_paths; *p != NULL; p++)
    if (strcmp (s->path->str, *p) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
scan_number (Scanner  *s,
             GError  **error)
{
  gsize start = s->pos;
  gsize digits_start;
  gboolean negative = FALSE;
  gboolean integer = TRUE;
  gboolean exponent = FALSE;

  if (s->data[s->pos] == '-')
    {
      negative = TRUE;
      s->pos++;
    }
  digits_start = s->pos;
  if (s->pos >= s->len || !g_ascii_isdigit (s->data[s->pos]))
    return scan_fail (s, error, "invalid number");
  if (s->data[s->pos] == '0')
    s->pos++;
  else
    while (s->pos < s->len && g_ascii_isdigit (s->data[s->pos]))
      s->pos++;
  if (s->pos < s->len && g_ascii_isdigit (s->data[s->pos]))
    return scan_fail (s, error, "leading zero in number");
  if (s->pos < s->len && s->data[s->pos] == '.')
    {
      integer = FALSE;
      s->pos++;
      if (s->pos >= s->len || !g_ascii_isdigit (s->data[s->pos]))
        return scan_fail (s, error, "invalid number");
      while (s->pos < s->len && g_ascii_isdigit (s->data[s->pos]))
        s->pos++;
    }
  if (s->pos < s->len && (s->data[s->pos] == 'e' || s->data[s->pos] == 'E'))
    {
      integer = FALSE;
      exponent = TRUE;
      s->pos++;
      if (s->pos < s->len && (s->data[s->pos] == '+' || s->data[s->pos] == '-'))
        s->pos++;
      if (s->pos >= s->len || !g_ascii_isdigit (s->data[s->pos]))
        return scan_fail (s, error, "invalid number");
      while (s->pos < s->len && g_ascii_isdigit (s->data[s->pos]))
        s->pos++;
    }

  if (path_is_id (s))
    {
      scan_rewrite (s, start, s->pos, "\"", "\"");
      return TRUE;
    }
  if (integer &&
      compare_digits (s->data + digits_start, s->pos - digits_start,
                      negative ? "9223372036854775808" : "9223372036854775807") <= 0)
    return TRUE;

  /* A double (or an integer json-glib cannot hold, read as a double): it
   * must be finite, or json-glib would read inf and write "inf.0". Without
   * an exponent, fewer than 300 digits are below DBL_MAX (1.8·10^308). */
  if (!exponent && s->pos - digits_start < 300)
    {
      if (integer)
        scan_rewrite (s, start, s->pos, "", ".0");
      return TRUE;
    }
  {
    g_autofree char *literal = g_strndup (s->data + start, s->pos - start);

    if (!isfinite (g_ascii_strtod (literal, NULL)))
      {
        s->pos = start;
        return scan_fail (s, error, "number out of range");
      }
  }
  if (integer)
    scan_rewrite (s, start, s->pos, "", ".0");
  return TRUE;
}

static gboolean
scan_literal (Scanner    *s,
              const char *word,
              GError    **error)
{
  gsize n = strlen (word);

  if (s->len - s->pos < n || memcmp (s->data + s->pos, word, n) != 0)
    return scan_fail (s, error, "unexpected character");
  s->pos += n;
  return TRUE;
}

static void
path_push_key (Scanner    *s,
               const char *key,
               gsize       key_len,
               gboolean    has_escape)
{
  gboolean plain = !has_escape && key_len <= 64;
  gsize i;

  for (i = 0; plain && i < key_len; i++)
    if (key[i] == '.' || key[i] == '[' || key[i] == ']' || key[i] == '$')
      plain = FALSE;
  g_string_append_c (s->path, '.');
  if (plain)
    g_string_append_len (s->path, key, key_len);
  else
    g_string_append_c (s->path, '\x01'); /* matches no id path */
}

/* A value just ended; if it is a member of a top-level object, note it. */
static void
record_member (GArray     *stack,
               GArray     *members,
               const char *key,
               gsize       key_len,
               gsize       start,
               gsize       end)
{
  BpQdrantJsonMember m = { key, key_len, start, end };

  if (members == NULL || stack->len != 1 ||
      !g_array_index (stack, ScanFrame, 0).is_object)
    return;
  g_array_append_val (members, m);
}

/**
 * bp_qdrant_json_scan:
 * @data: the text (need not be NUL-terminated)
 * @len: its length
 * @max_depth: deepest nesting of arrays and objects allowed
 * @id_paths: (nullable) (array zero-terminated=1): where ids live
 * @rewritten: (out) (optional) (nullable) (transfer full): the text to give
 *   json-glib, or %NULL when it is @data unchanged
 * @members: (nullable) (element-type BpQdrantJsonMember): filled with the
 *   members of a top-level object, in order, if not %NULL
 * @error: return location for a #GError
 *
 * Checks that @data is one strict RFC 8259 JSON value in valid UTF-8 (no
 * NUL bytes, no `\u0000`, no unpaired surrogates) nested at most
 * @max_depth deep, without recursion. See the file comment for the rewrite.
 *
 * Returns: %TRUE if valid; otherwise %BP_ERROR_INVALID_ARGUMENT, or
 *   %BP_ERROR_LIMIT_EXCEEDED for too deep a nesting
 */
gboolean
bp_qdrant_json_scan (const char          *data,
                     gsize                len,
                     guint                max_depth,
                     const char * const  *id_paths,
                     GString            **rewritten,
                     GArray              *members,
                     GError             **error)
{
  Scanner s = { data, len, 0, id_paths, NULL, 0, NULL };
  g_autoptr(GArray) stack = NULL;
  ScanState state = ST_VALUE;
  gsize member_start = 0;
  const char *key = NULL;
  gsize key_len = 0;
  gboolean ok = FALSE;

  g_return_val_if_fail (data != NULL || len == 0, FALSE);

  if (rewritten != NULL)
    *rewritten = NULL;
  if (!g_utf8_validate_len (data, len, NULL))
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "invalid JSON: not valid UTF-8 (or contains a NUL byte)");
      return FALSE;
    }

  stack = g_array_new (FALSE, FALSE, sizeof (ScanFrame));
  s.path = g_string_new ("$");

  for (;;)
    {
      ScanFrame *top;
      char c;

      scan_skip_ws (&s);
      if (state == ST_AFTER_VALUE && stack->len == 0)
        {
          if (s.pos != s.len)
            {
              scan_fail (&s, error, "trailing data after the value");
              break;
            }
          ok = TRUE;
          break;
        }
      if (s.pos >= s.len)
        {
          scan_fail (&s, error, "unexpected end of data");
          break;
        }
      c = s.data[s.pos];
      top = stack->len > 0 ? &g_array_index (stack, ScanFrame, stack->len - 1) : NULL;

      if (state == ST_OBJ_FIRST || state == ST_ARR_FIRST)
        {
          if ((state == ST_OBJ_FIRST && c == '}') || (state == ST_ARR_FIRST && c == ']'))
            {
              s.pos++;
              g_string_truncate (s.path, top->path_len);
              g_array_set_size (stack, stack->len - 1);
              record_member (stack, members, key, key_len, member_start, s.pos);
              state = ST_AFTER_VALUE;
              continue;
            }
          if (state == ST_ARR_FIRST)
            {
              g_string_append (s.path, "[]");
              state = ST_VALUE;
            }
          else
            state = ST_KEY;
        }

      if (state == ST_KEY)
        {
          gboolean has_escape;
          gsize key_start, key_end;

          if (c != '"')
            {
              scan_fail (&s, error, "expected a string key");
              break;
            }
          key_start = s.pos + 1;
          if (!scan_string (&s, &has_escape, error))
            break;
          key_end = s.pos - 1;
          scan_skip_ws (&s);
          if (s.pos >= s.len || s.data[s.pos] != ':')
            {
              scan_fail (&s, error, "expected ':'");
              break;
            }
          s.pos++;
          path_push_key (&s, s.data + key_start, key_end - key_start, has_escape);
          if (stack->len == 1)
            {
              key = s.data + key_start;
              key_len = key_end - key_start;
              scan_skip_ws (&s);
              member_start = s.pos;
            }
          state = ST_VALUE;
          continue;
        }

      if (state == ST_AFTER_VALUE)
        {
          g_string_truncate (s.path, top->path_len);
          if (c == ',')
            {
              s.pos++;
              if (top->is_object)
                state = ST_KEY;
              else
                {
                  g_string_append (s.path, "[]");
                  state = ST_VALUE;
                }
              continue;
            }
          if ((top->is_object && c == '}') || (!top->is_object && c == ']'))
            {
              s.pos++;
              g_array_set_size (stack, stack->len - 1);
              record_member (stack, members, key, key_len, member_start, s.pos);
              continue;
            }
          scan_fail (&s, error, top->is_object ? "expected ',' or '}'" : "expected ',' or ']'");
          break;
        }

      /* ST_VALUE */
      if (c == '{' || c == '[')
        {
          ScanFrame f = { c == '{', s.path->len };

          if (stack->len >= max_depth)
            {
              g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                           "JSON nested deeper than %u levels", max_depth);
              break;
            }
          s.pos++;
          g_array_append_val (stack, f);
          state = c == '{' ? ST_OBJ_FIRST : ST_ARR_FIRST;
          continue;
        }
      if (c == '"')
        {
          gboolean has_escape;

          if (!scan_string (&s, &has_escape, error))
            break;
        }
      else if (c == '-' || g_ascii_isdigit (c))
        {
          if (!scan_number (&s, error))
            break;
        }
      else if (c == 't')
        {
          if (!scan_literal (&s, "true", error))
            break;
        }
      else if (c == 'f')
        {
          if (!scan_literal (&s, "false", error))
            break;
        }
      else if (c == 'n')
        {
          if (!scan_literal (&s, "null", error))
            break;
        }
      else
        {
          scan_fail (&s, error, "unexpected character");
          break;
        }
      record_member (stack, members, key, key_len, member_start, s.pos);
      state = ST_AFTER_VALUE;
    }

  g_string_free (s.path, TRUE);
  if (!ok)
    {
      if (s.out != NULL)
        g_string_free (s.out, TRUE);
      if (members != NULL)
        g_array_set_size (members, 0);
      return FALSE;
    }
  if (s.out != NULL)
    {
      g_string_append_len (s.out, s.data + s.copied, s.len - s.copied);
      if (rewritten != NULL)
        *rewritten = s.out;
      else
        g_string_free (s.out, TRUE);
    }
  return TRUE;
}

/**
 * bp_qdrant_json_parse:
 * @data: the text
 * @len: its length
 * @max_depth: deepest nesting allowed
 * @id_paths: (nullable) (array zero-terminated=1): where ids live
 * @error: return location for a #GError
 *
 * bp_qdrant_json_scan() followed by json-glib on the rewritten text.
 *
 * Returns: (transfer full): the root node
 */
JsonNode *
bp_qdrant_json_parse (const char          *data,
                      gsize                len,
                      guint                max_depth,
                      const char * const  *id_paths,
                      GError             **error)
{
  g_autoptr(JsonParser) parser = NULL;
  GString *rewritten = NULL;
  gboolean ok;
  JsonNode *root;

  if (!bp_qdrant_json_scan (data, len, max_depth, id_paths, &rewritten, NULL, error))
    return NULL;

  parser = json_parser_new ();
  if (rewritten != NULL)
    ok = json_parser_load_from_data (parser, rewritten->str, (gssize) rewritten->len, error);
  else
    ok = json_parser_load_from_data (parser, data, (gssize) len, error);
  if (rewritten != NULL)
    g_string_free (rewritten, TRUE);
  if (!ok)
    return NULL; /* unreachable after a successful scan; kept for safety */

  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "invalid JSON: empty document");
      return NULL;
    }
  return json_node_copy (root);
}

/* --------------------------------------------------------------- writer */

/**
 * bp_qdrant_json_append_string:
 * @out: a JSON text being built
 * @utf8: valid UTF-8
 *
 * Appends @utf8 as a JSON string literal.
 */
void
bp_qdrant_json_append_string (GString    *out,
                              const char *utf8)
{
  const char *p;

  g_string_append_c (out, '"');
  for (p = utf8; *p != '\0'; p++)
    {
      guchar c = (guchar) *p;

      switch (c)
        {
        case '"':
          g_string_append (out, "\\\"");
          break;
        case '\\':
          g_string_append (out, "\\\\");
          break;
        case '\n':
          g_string_append (out, "\\n");
          break;
        case '\r':
          g_string_append (out, "\\r");
          break;
        case '\t':
          g_string_append (out, "\\t");
          break;
        default:
          if (c < 0x20)
            g_string_append_printf (out, "\\u%04x", c);
          else
            g_string_append_c (out, (char) c);
        }
    }
  g_string_append_c (out, '"');
}

/**
 * bp_qdrant_json_append_double:
 * @out: a JSON text being built
 * @value: a number
 *
 * Appends the shortest decimal text that reads back as @value.
 *
 * Returns: %FALSE (appending nothing) if @value is not finite
 */
/* The common case without printf: @value is the double nearest to a
 * decimal with at most nine fractional digits and fewer than 2^53 units
 * (0.25, -0.123456, 42). Then that decimal, written out, reads back as
 * @value (both the division here and strtod round correctly to nearest). */
static gboolean
append_short_decimal (GString *out,
                      double   value)
{
  static const double pow10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9 };
  static const guint64 ipow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
                                    100000000, 1000000000 };
  guint p;

  /* -0 and magnitudes %.15g writes with an exponent go the general way. */
  if (value == 0 ? signbit (value) : !(fabs (value) < 1e15))
    return FALSE;
  for (p = 0; p < G_N_ELEMENTS (pow10); p++)
    {
      double m = value * pow10[p];
      double r;
      guint64 units, int_part, frac;
      char digits[32];
      int n;

      if (!(fabs (m) < 9007199254740992.0)) /* 2^53 */
        return FALSE;
      r = nearbyint (m);
      if (r / pow10[p] != value)
        continue;
      units = (guint64) fabs (r);
      int_part = units / ipow10[p];
      frac = units % ipow10[p];
      if (r < 0)
        g_string_append_c (out, '-');
      n = g_snprintf (digits, sizeof digits, "%" G_GUINT64_FORMAT, int_part);
      g_string_append_len (out, digits, n);
      if (p > 0 && frac > 0)
        {
          guint k;

          /* p digits, zero-padded on the left, trailing zeros dropped */
          for (k = p; k > 0; k--)
            {
              digits[k - 1] = (char) ('0' + frac % 10);
              frac /= 10;
            }
          for (k = p; k > 0 && digits[k - 1] == '0'; k--)
            ;
          g_string_append_c (out, '.');
          g_string_append_len (out, digits, (gssize) k);
        }
      return TRUE;
    }
  return FALSE;
}

gboolean
bp_qdrant_json_append_double (GString *out,
                              double   value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];
  static const char * const formats[] = { "%.15g", "%.16g", "%.17g" };
  guint i;

  if (!isfinite (value))
    return FALSE;
  if (append_short_decimal (out, value))
    return TRUE;
  for (i = 0; i < G_N_ELEMENTS (formats); i++)
    {
      g_ascii_formatd (buf, sizeof buf, formats[i], value);
      if (g_ascii_strtod (buf, NULL) == value)
        break;
    }
  g_string_append (out, buf);
  return TRUE;
}

/**
 * bp_qdrant_json_append_node:
 * @out: a JSON text being built
 * @node: a node
 *
 * Appends @node serialized compactly.
 */
void
bp_qdrant_json_append_node (GString  *out,
                            JsonNode *node)
{
  g_autofree char *text = bp_qdrant_json_node_to_string (node);

  g_string_append (out, text);
}

/**
 * bp_qdrant_json_node_to_string:
 * @node: (nullable): a node
 *
 * Returns: (transfer full): compact JSON text; `null` for %NULL
 */
char *
bp_qdrant_json_node_to_string (JsonNode *node)
{
  g_autoptr(JsonGenerator) gen = NULL;

  if (node == NULL)
    return g_strdup ("null");
  gen = json_generator_new ();
  json_generator_set_root (gen, node);
  return json_generator_to_data (gen, NULL);
}

/* ----------------------------------------------------------- validation */

/**
 * bp_qdrant_name_validate:
 * @name: (nullable): a collection, snapshot or vector name
 * @field: the argument's name for the error message
 * @error: return location for a #GError
 *
 * Qdrant's rule: 1 to 255 bytes of UTF-8 without `<>:"/\|?*` or control
 * characters.
 *
 * Returns: %TRUE if valid
 */
gboolean
bp_qdrant_name_validate (const char  *name,
                         const char  *field,
                         GError     **error)
{
  gsize len = name != NULL ? strlen (name) : 0;
  const char *p;

  if (len == 0 || len > 255)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "%s: must be 1 to 255 bytes long", field);
      return FALSE;
    }
  if (!g_utf8_validate (name, (gssize) len, NULL))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "%s: not valid UTF-8", field);
      return FALSE;
    }
  for (p = name; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f || strchr ("<>:\"/\\|?*", *p) != NULL)
      {
        g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                     "%s: must not contain control characters or any of <>:\"/\\|?*",
                     field);
        return FALSE;
      }
  if (strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "%s: must not be '.' or '..'", field);
      return FALSE;
    }
  return TRUE;
}

static JsonNode *
parse_input (const char  *json,
             guint        max_depth,
             const char  *field,
             GError     **error)
{
  g_autoptr(GError) local = NULL;
  JsonNode *root;

  if (json == NULL || json[0] == '\0')
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "%s: empty, expected a JSON object", field);
      return NULL;
    }
  root = bp_qdrant_json_parse (json, strlen (json), max_depth, NULL, &local);
  if (root == NULL)
    {
      g_set_error (error, BP_ERROR, local->code, "%s: %s", field, local->message);
      return NULL;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      json_node_unref (root);
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "%s: must be a JSON object", field);
      return NULL;
    }
  return root;
}

static gboolean
condition_list_ok (JsonNode *node)
{
  JsonArray *array;
  guint i;

  if (JSON_NODE_HOLDS_NULL (node) || JSON_NODE_HOLDS_OBJECT (node))
    return TRUE;
  if (!JSON_NODE_HOLDS_ARRAY (node))
    return FALSE;
  array = json_node_get_array (node);
  for (i = 0; i < json_array_get_length (array); i++)
    if (!JSON_NODE_HOLDS_OBJECT (json_array_get_element (array, i)))
      return FALSE;
  return TRUE;
}

/**
 * bp_qdrant_filter_validate:
 * @json: a Qdrant Filter as JSON text
 * @max_depth: deepest nesting allowed
 * @field: the argument's name for error messages (e.g. `filter`)
 * @error: return location for a #GError
 *
 * A filter is an object whose keys are only `must`, `should`, `must_not`
 * and `min_should`; the first three hold a condition object, an array of
 * them, or null; `min_should` holds `{conditions, min_count}` or null.
 * Conditions themselves are left to the server.
 *
 * Returns: %TRUE if valid
 */
gboolean
bp_qdrant_filter_validate (const char  *json,
                           guint        max_depth,
                           const char  *field,
                           GError     **error)
{
  g_autoptr(JsonNode) root = parse_input (json, max_depth, field, error);
  JsonObjectIter iter;
  const char *name;
  JsonNode *value;

  if (root == NULL)
    return FALSE;

  json_object_iter_init (&iter, json_node_get_object (root));
  while (json_object_iter_next (&iter, &name, &value))
    {
      if (g_str_equal (name, "must") || g_str_equal (name, "should") ||
          g_str_equal (name, "must_not"))
        {
          if (!condition_list_ok (value))
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "%s.%s: must be a condition object or an array of condition objects",
                           field, name);
              return FALSE;
            }
        }
      else if (g_str_equal (name, "min_should"))
        {
          JsonObject *ms;
          JsonNode *conditions, *min_count;

          if (JSON_NODE_HOLDS_NULL (value))
            continue;
          if (!JSON_NODE_HOLDS_OBJECT (value))
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "%s.min_should: must be an object {conditions, min_count}", field);
              return FALSE;
            }
          ms = json_node_get_object (value);
          conditions = json_object_get_member (ms, "conditions");
          min_count = json_object_get_member (ms, "min_count");
          if (conditions == NULL || !JSON_NODE_HOLDS_ARRAY (conditions) ||
              !condition_list_ok (conditions))
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "%s.min_should.conditions: must be an array of condition objects",
                           field);
              return FALSE;
            }
          if (min_count == NULL || json_node_get_value_type (min_count) != G_TYPE_INT64 ||
              json_node_get_int (min_count) < 0)
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "%s.min_should.min_count: must be a non-negative integer", field);
              return FALSE;
            }
        }
      else
        {
          g_autofree char *shown = sanitize_text (name, strlen (name), 64);

          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "%s: unknown key '%s' (expected must, should, must_not or min_should)",
                       field, shown);
          return FALSE;
        }
    }
  return TRUE;
}

/**
 * bp_qdrant_payload_validate:
 * @json: a payload as JSON text
 * @max_depth: deepest nesting allowed
 * @field: the argument's name for error messages
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @json is strict JSON holding an object
 */
gboolean
bp_qdrant_payload_validate (const char  *json,
                            guint        max_depth,
                            const char  *field,
                            GError     **error)
{
  g_autoptr(JsonNode) root = parse_input (json, max_depth, field, error);

  return root != NULL;
}

static gboolean
vector_params_validate (JsonNode              *node,
                        const char            *field,
                        const BpQdrantLimits  *limits,
                        GError               **error)
{
  static const char * const distances[] = { "Cosine", "Dot", "Euclid", "Manhattan", NULL };
  JsonObject *obj;
  JsonNode *size, *distance;
  gint64 n;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "%s: must be an object {size, distance}", field);
      return FALSE;
    }
  obj = json_node_get_object (node);
  size = json_object_get_member (obj, "size");
  distance = json_object_get_member (obj, "distance");
  if (size == NULL || json_node_get_value_type (size) != G_TYPE_INT64 ||
      (n = json_node_get_int (size)) < 1 || (guint64) n > limits->max_vector_dim)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "%s.size: must be an integer from 1 to %u", field, limits->max_vector_dim);
      return FALSE;
    }
  if (distance == NULL || json_node_get_value_type (distance) != G_TYPE_STRING ||
      !g_strv_contains (distances, json_node_get_string (distance)))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "%s.distance: must be one of Cosine, Dot, Euclid, Manhattan", field);
      return FALSE;
    }
  return TRUE;
}

/**
 * bp_qdrant_collection_config_validate:
 * @json: a CreateCollection body as JSON text
 * @limits: the bounds (max-vector-dim, max-json-depth)
 * @error: return location for a #GError
 *
 * The body must be an object with a `vectors` member that is either one
 * VectorParams `{size, distance}` or an object mapping vector names to
 * VectorParams. Other members are passed to the server as they are.
 *
 * Returns: %TRUE if valid
 */
gboolean
bp_qdrant_collection_config_validate (const char            *json,
                                      const BpQdrantLimits  *limits,
                                      GError               **error)
{
  g_autoptr(JsonNode) root = parse_input (json, limits->max_json_depth, "config", error);
  JsonNode *vectors;
  JsonObject *vobj;
  JsonObjectIter iter;
  const char *name;
  JsonNode *value;

  if (root == NULL)
    return FALSE;

  vectors = json_object_get_member (json_node_get_object (root), "vectors");
  if (vectors == NULL || !JSON_NODE_HOLDS_OBJECT (vectors))
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "config.vectors: required, an object {size, distance} or a map of named {size, distance}");
      return FALSE;
    }
  vobj = json_node_get_object (vectors);
  if (json_object_has_member (vobj, "size") || json_object_has_member (vobj, "distance"))
    return vector_params_validate (vectors, "config.vectors", limits, error);

  json_object_iter_init (&iter, vobj);
  while (json_object_iter_next (&iter, &name, &value))
    {
      g_autofree char *shown = sanitize_text (name, strlen (name), 64);
      g_autofree char *field = g_strdup_printf ("config.vectors.%s", shown);

      if (name[0] == '\0')
        {
          g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                               "config.vectors: a vector name must not be empty");
          return FALSE;
        }
      if (!vector_params_validate (value, field, limits, error))
        return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------ responses */

/* The server's error text: status.error of the envelope, else the body
 * as text (401 answers plain text), else the reason phrase. */
static char *
error_text (const char *body,
            gsize       len,
            guint       max_depth,
            const char *reason)
{
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *trimmed = NULL;

  if (len > 0)
    root = bp_qdrant_json_parse (body, len, max_depth, NULL, NULL);
  if (root != NULL && JSON_NODE_HOLDS_OBJECT (root))
    {
      JsonObject *obj = json_node_get_object (root);
      JsonNode *status = json_object_get_member (obj, "status");

      if (status != NULL && JSON_NODE_HOLDS_OBJECT (status))
        {
          JsonNode *e = json_object_get_member (json_node_get_object (status), "error");

          if (e != NULL && json_node_get_value_type (e) == G_TYPE_STRING)
            {
              const char *s = json_node_get_string (e);

              return sanitize_text (s, strlen (s), MESSAGE_TEXT_MAX);
            }
        }
    }
  if (len > 0)
    {
      if (!g_utf8_validate_len (body, len, NULL))
        return g_strdup_printf ("(%" G_GSIZE_FORMAT " bytes of non-text body)", len);
      trimmed = sanitize_text (body, len, MESSAGE_TEXT_MAX);
      g_strstrip (trimmed);
      if (trimmed[0] != '\0')
        return g_steal_pointer (&trimmed);
    }
  if (reason != NULL && reason[0] != '\0')
    return sanitize_text (reason, strlen (reason), 128);
  return g_strdup ("no error text");
}

static BpError
status_to_code (guint http_status)
{
  switch (http_status)
    {
    case 401:
    case 403:
      return BP_ERROR_PERMISSION_DENIED;
    case 404:
      return BP_ERROR_NOT_FOUND;
    case 408:
      return BP_ERROR_TIMEOUT;
    case 413:
      return BP_ERROR_LIMIT_EXCEEDED;
    case 429:
    case 502:
    case 503:
    case 504:
      return BP_ERROR_UNAVAILABLE;
    default:
      return BP_ERROR_BACKEND;
    }
}

/**
 * bp_qdrant_response_parse:
 * @http_status: the HTTP status code
 * @reason: (nullable): the reason phrase
 * @retry_after: (nullable): the Retry-After header
 * @body: (array length=len): the body
 * @len: its length
 * @enveloped: whether the body is `{result, status, time}` (everything but `GET /`)
 * @max_depth: deepest nesting allowed
 * @id_paths: (nullable) (array zero-terminated=1): where ids live
 * @result: (out) (transfer full) (nullable): the `result` member (or the
 *   whole body when not @enveloped); %NULL when absent or null
 * @status: (out) (transfer full) (optional) (nullable): the envelope's
 *   `status` string (`ok`, `accepted`)
 * @error: return location for a #GError
 *
 * Turns one HTTP answer into a result or a %BP_ERROR. The error message
 * always starts with `HTTP <code>: ` followed by the server's text (the
 * envelope's `status.error`, or a plain-text body as Qdrant sends with
 * 401). 404 is %BP_ERROR_NOT_FOUND; 401/403 %BP_ERROR_PERMISSION_DENIED;
 * 408 %BP_ERROR_TIMEOUT; 413 %BP_ERROR_LIMIT_EXCEEDED; 429, 502, 503 and
 * 504 %BP_ERROR_UNAVAILABLE with `retry-after-ms` when Retry-After came;
 * any other status %BP_ERROR_BACKEND. A 2xx body that is not a valid
 * envelope is %BP_ERROR_BACKEND ("malformed response").
 *
 * Returns: %TRUE for a 2xx answer with a valid body
 */
gboolean
bp_qdrant_response_parse (guint                http_status,
                          const char          *reason,
                          const char          *retry_after,
                          const char          *body,
                          gsize                len,
                          gboolean             enveloped,
                          guint                max_depth,
                          const char * const  *id_paths,
                          JsonNode           **result,
                          char               **status,
                          GError             **error)
{
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) local = NULL;
  JsonObject *obj;
  JsonNode *st, *res;

  g_return_val_if_fail (result != NULL, FALSE);

  *result = NULL;
  if (status != NULL)
    *status = NULL;

  if (http_status < 200 || http_status > 299)
    {
      g_autofree char *text = error_text (body, len, max_depth, reason);
      BpError code = status_to_code (http_status);

      g_set_error (error, BP_ERROR, code, "HTTP %u: %s", http_status, text);
      if (code == BP_ERROR_UNAVAILABLE && retry_after != NULL)
        bp_error_set_retry_after (error, bp_qdrant_retry_after_parse (retry_after, NULL));
      return FALSE;
    }

  root = bp_qdrant_json_parse (body, len, max_depth, id_paths, &local);
  if (root == NULL)
    {
      g_set_error (error, BP_ERROR,
                   local->code == BP_ERROR_LIMIT_EXCEEDED ? BP_ERROR_LIMIT_EXCEEDED : BP_ERROR_BACKEND,
                   "HTTP %u: malformed response: %s", http_status, local->message);
      return FALSE;
    }
  if (!enveloped)
    {
      *result = g_steal_pointer (&root);
      return TRUE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                   "HTTP %u: malformed response: not a JSON object", http_status);
      return FALSE;
    }
  obj = json_node_get_object (root);
  st = json_object_get_member (obj, "status");
  if (st != NULL && JSON_NODE_HOLDS_OBJECT (st))
    {
      g_autofree char *text = error_text (body, len, max_depth, reason);

      g_set_error (error, BP_ERROR, BP_ERROR_BACKEND, "HTTP %u: %s", http_status, text);
      return FALSE;
    }
  if (st != NULL && !JSON_NODE_HOLDS_NULL (st) &&
      json_node_get_value_type (st) != G_TYPE_STRING)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                   "HTTP %u: malformed response: status is neither a string nor an error",
                   http_status);
      return FALSE;
    }
  if (status != NULL && st != NULL && !JSON_NODE_HOLDS_NULL (st))
    *status = g_strdup (json_node_get_string (st));
  res = json_object_get_member (obj, "result");
  if (res != NULL && !JSON_NODE_HOLDS_NULL (res))
    *result = json_node_ref (res);
  return TRUE;
}

/**
 * bp_qdrant_retry_after_parse:
 * @value: a Retry-After header value (delta seconds or an HTTP date)
 * @now: (nullable): the current time for HTTP dates; %NULL for the real one
 *
 * Returns: milliseconds to wait (capped at one day), or -1 if @value is
 *   not understood
 */
gint64
bp_qdrant_retry_after_parse (const char *value,
                             GDateTime  *now)
{
  g_autofree char *v = NULL;
  guint64 secs;

  if (value == NULL)
    return -1;
  v = g_strstrip (g_strdup (value));
  if (bp_qdrant_id_parse_u64 (v, strlen (v), &secs))
    return (gint64) MIN (secs, (guint64) 86400) * 1000;
  {
    g_autoptr(GDateTime) when = soup_date_time_new_from_http_string (v);
    g_autoptr(GDateTime) real_now = NULL;
    GTimeSpan span;

    if (when == NULL)
      return -1;
    if (now == NULL)
      now = real_now = g_date_time_new_now_utc ();
    span = g_date_time_difference (when, now);
    if (span < 0)
      return 0;
    return MIN (span / 1000, (gint64) 86400 * 1000);
  }
}

/**
 * bp_qdrant_error_is_retryable:
 * @error: an error from a #BpQdrantClient call
 *
 * Rate limiting (429), unavailable servers (502/503/504), transport
 * failures and timeouts may succeed later; the server refusing the input
 * (other 4xx), cancellation and client-side validation never do.
 *
 * Returns: whether retrying the same request may succeed
 */
gboolean
bp_qdrant_error_is_retryable (const GError *error)
{
  if (error == NULL || error->domain != BP_ERROR)
    return FALSE;
  return error->code == BP_ERROR_UNAVAILABLE || error->code == BP_ERROR_TIMEOUT;
}

static gboolean
parse_version (const char *version,
               guint64    *major,
               guint64    *minor)
{
  const char *p = version;
  char *end;

  if (p[0] == 'v' || p[0] == 'V')
    p++;
  if (!g_ascii_isdigit (*p))
    return FALSE;
  *major = g_ascii_strtoull (p, &end, 10);
  if (*end != '.' || !g_ascii_isdigit (end[1]))
    return FALSE;
  *minor = g_ascii_strtoull (end + 1, &end, 10);
  return *end == '\0' || *end == '.' || *end == '-' || *end == '+';
}

/**
 * bp_qdrant_version_check:
 * @version: the server's version, e.g. `1.19.0`
 * @target_major: the major version the client was written for
 * @target_minor: the minor version the client was written for
 * @error: return location for a #GError
 *
 * The rule of the official clients: compatible iff the major versions are
 * equal and the minor versions differ by at most one.
 *
 * Returns: %TRUE if compatible; otherwise %BP_ERROR_BACKEND saying why
 */
gboolean
bp_qdrant_version_check (const char  *version,
                         guint        target_major,
                         guint        target_minor,
                         GError     **error)
{
  guint64 major, minor;
  g_autofree char *shown = NULL;

  g_return_val_if_fail (version != NULL, FALSE);

  shown = sanitize_text (version, strlen (version), 64);
  if (!parse_version (version, &major, &minor))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                   "Qdrant version '%s' is not understood", shown);
      return FALSE;
    }
  if (major != target_major ||
      minor + 1 < target_minor || minor > (guint64) target_minor + 1)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                   "Qdrant %s is not compatible with this client (written for %u.%u; "
                   "accepts %u.%u to %u.%u)",
                   shown, target_major, target_minor, target_major,
                   target_minor > 0 ? target_minor - 1 : 0, target_major, target_minor + 1);
      return FALSE;
    }
  return TRUE;
}
