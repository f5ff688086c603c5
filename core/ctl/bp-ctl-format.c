/* bp-ctl-format.c: values as text for humans
 *
 * Everything the daemon sends is data, never terminal control: process
 * names, SQL text and error messages can carry escape sequences, so every
 * string shown in a table or a line goes through bp_ctl_sanitize().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <string.h>

#include "bp-ctl-format.h"
#include "bp-ctl-json.h"

/**
 * bp_ctl_sanitize:
 *
 * Returns: (transfer full): @text as valid UTF-8 with newlines, tabs and
 *   every other C0 or C1 control character written as an escape (\n, \t,
 *   \x1b, \u009b)
 */
char *
bp_ctl_sanitize (const char *text)
{
  g_autofree char *valid = NULL;
  GString *out;

  if (text == NULL)
    return g_strdup ("");
  if (!g_utf8_validate (text, -1, NULL))
    text = valid = g_utf8_make_valid (text, -1);

  out = g_string_sized_new (strlen (text));
  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (c == '\n')
        g_string_append (out, "\\n");
      else if (c == '\t')
        g_string_append (out, "\\t");
      else if (c == '\r')
        g_string_append (out, "\\r");
      else if (c < 0x20 || c == 0x7f)
        g_string_append_printf (out, "\\x%02x", c);
      else if (c >= 0x80 && c <= 0x9f)
        g_string_append_printf (out, "\\u%04x", c);
      else
        g_string_append_len (out, p, g_utf8_next_char (p) - p);
    }
  return g_string_free (out, FALSE);
}

/**
 * bp_ctl_display_width:
 *
 * Returns: the number of terminal columns @text (valid UTF-8 without
 *   control characters) takes: East Asian wide characters take two,
 *   combining marks none
 */
guint
bp_ctl_display_width (const char *text)
{
  guint width = 0;

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

      if (g_unichar_iszerowidth (c))
        continue;
      width += g_unichar_iswide (c) ? 2 : 1;
    }
  return width;
}

/**
 * bp_ctl_format_double:
 *
 * Returns: (transfer full): the shortest text that reads back as @value
 */
char *
bp_ctl_format_double (double value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (value))
    return g_strdup ("NaN");
  if (isinf (value))
    return g_strdup (value > 0 ? "Infinity" : "-Infinity");
  for (int precision = 15; precision <= 17; precision++)
    {
      char format[8];

      g_snprintf (format, sizeof format, "%%.%dg", precision);
      g_ascii_formatd (buf, sizeof buf, format, value);
      if (g_ascii_strtod (buf, NULL) == value)
        break;
    }
  return g_strdup (buf);
}

/**
 * bp_ctl_format_value:
 *
 * Returns: (transfer full): @value as one table cell: strings as they are,
 *   numbers in decimal, booleans true/false, the null object path '/' as
 *   an empty cell, ay as base64 and containers as compact JSON
 */
char *
bp_ctl_format_value (GVariant *value)
{
  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      return g_strdup (g_variant_get_boolean (value) ? "true" : "false");
    case G_VARIANT_CLASS_BYTE:
      return g_strdup_printf ("%u", g_variant_get_byte (value));
    case G_VARIANT_CLASS_INT16:
      return g_strdup_printf ("%d", g_variant_get_int16 (value));
    case G_VARIANT_CLASS_UINT16:
      return g_strdup_printf ("%u", g_variant_get_uint16 (value));
    case G_VARIANT_CLASS_INT32:
      return g_strdup_printf ("%d", g_variant_get_int32 (value));
    case G_VARIANT_CLASS_UINT32:
      return g_strdup_printf ("%u", g_variant_get_uint32 (value));
    case G_VARIANT_CLASS_INT64:
      return g_strdup_printf ("%" G_GINT64_FORMAT, g_variant_get_int64 (value));
    case G_VARIANT_CLASS_UINT64:
      return g_strdup_printf ("%" G_GUINT64_FORMAT, g_variant_get_uint64 (value));
    case G_VARIANT_CLASS_HANDLE:
      return g_strdup_printf ("%d", g_variant_get_handle (value));
    case G_VARIANT_CLASS_DOUBLE:
      return bp_ctl_format_double (g_variant_get_double (value));
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_SIGNATURE:
      return g_strdup (g_variant_get_string (value, NULL));
    case G_VARIANT_CLASS_OBJECT_PATH:
      if (g_str_equal (g_variant_get_string (value, NULL), "/"))
        return g_strdup ("");
      return g_strdup (g_variant_get_string (value, NULL));
    case G_VARIANT_CLASS_VARIANT:
      {
        g_autoptr(GVariant) inner = g_variant_get_variant (value);

        return bp_ctl_format_value (inner);
      }
    default:
      {
        g_autoptr(JsonNode) node = bp_ctl_json_from_variant (value);

        if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
          return g_strdup (json_node_get_string (node));
        return bp_ctl_json_to_string (node, FALSE);
      }
    }
}

/**
 * bp_ctl_format_lookup:
 * @dict: an a{sv}
 *
 * Returns: (transfer full) (nullable): the value of @key as a cell, %NULL
 *   when absent
 */
char *
bp_ctl_format_lookup (GVariant   *dict,
                      const char *key)
{
  g_autoptr(GVariant) value = dict != NULL ? g_variant_lookup_value (dict, key, NULL) : NULL;

  return value != NULL ? bp_ctl_format_value (value) : NULL;
}

/**
 * bp_ctl_lookup_int64:
 *
 * Looks up an integer of any width in an a{sv}.
 */
gboolean
bp_ctl_lookup_int64 (GVariant   *dict,
                     const char *key,
                     gint64     *out)
{
  g_autoptr(GVariant) value = dict != NULL ? g_variant_lookup_value (dict, key, NULL) : NULL;

  if (value == NULL)
    return FALSE;
  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BYTE:
      *out = g_variant_get_byte (value);
      return TRUE;
    case G_VARIANT_CLASS_INT16:
      *out = g_variant_get_int16 (value);
      return TRUE;
    case G_VARIANT_CLASS_UINT16:
      *out = g_variant_get_uint16 (value);
      return TRUE;
    case G_VARIANT_CLASS_INT32:
      *out = g_variant_get_int32 (value);
      return TRUE;
    case G_VARIANT_CLASS_UINT32:
      *out = g_variant_get_uint32 (value);
      return TRUE;
    case G_VARIANT_CLASS_INT64:
      *out = g_variant_get_int64 (value);
      return TRUE;
    case G_VARIANT_CLASS_UINT64:
      *out = (gint64) MIN (g_variant_get_uint64 (value), (guint64) G_MAXINT64);
      return TRUE;
    default:
      return FALSE;
    }
}

/**
 * bp_ctl_format_bytes:
 *
 * Returns: (transfer full): @bytes in binary units (“1.5 GiB”)
 */
char *
bp_ctl_format_bytes (guint64 bytes)
{
  return g_format_size_full (bytes, G_FORMAT_SIZE_IEC_UNITS);
}

/**
 * bp_ctl_format_duration_us:
 *
 * Returns: (transfer full): a latency for humans: “850 µs”, “12.5 ms”,
 *   “3.20 s”
 */
char *
bp_ctl_format_duration_us (gint64 microseconds)
{
  if (microseconds < 1000)
    /* TRANSLATORS: microseconds */
    return g_strdup_printf (_("%lld µs"), (long long) microseconds);
  if (microseconds < 1000 * 1000)
    /* TRANSLATORS: milliseconds */
    return g_strdup_printf (_("%.1f ms"), microseconds / 1000.0);
  /* TRANSLATORS: seconds */
  return g_strdup_printf (_("%.2f s"), microseconds / 1000000.0);
}

/**
 * bp_ctl_format_unix_time:
 *
 * Returns: (transfer full): local date and time, or “-” for 0
 */
char *
bp_ctl_format_unix_time (gint64 seconds)
{
  g_autoptr(GDateTime) time = NULL;

  if (seconds <= 0)
    return g_strdup ("-");
  time = g_date_time_new_from_unix_local (seconds);
  if (time == NULL)
    return g_strdup_printf ("%" G_GINT64_FORMAT, seconds);
  return g_date_time_format (time, "%Y-%m-%d %H:%M:%S");
}
