/* bp-ctl-json.c: GVariant to JSON, and JSON text out
 *
 * The mapping of --json output: a{sv} and other dictionaries are objects,
 * arrays and tuples are arrays, the object path '/' (the Backplane null) is
 * null, ay is base64 text, a uint64 beyond 2^63-1 is decimal text, and a
 * NaN or infinite double is the text "NaN", "Infinity" or "-Infinity".
 *
 * JSON text is written here rather than by JsonGenerator so that doubles
 * come out in their shortest exact form (0.1, not 0.10000000000000001) and
 * control characters, C1 controls included, are always escaped: values
 * come from the daemon and must never reach a terminal as raw escape
 * sequences.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bp-ctl-json.h"

JsonNode *
bp_ctl_json_node_new_string (const char *value)
{
  JsonNode *node = json_node_alloc ();

  if (value == NULL)
    return json_node_init_null (node);
  if (!g_utf8_validate (value, -1, NULL))
    {
      g_autofree char *valid = g_utf8_make_valid (value, -1);

      return json_node_init_string (node, valid);
    }
  return json_node_init_string (node, value);
}

JsonNode *
bp_ctl_json_node_new_int (gint64 value)
{
  return json_node_init_int (json_node_alloc (), value);
}

JsonNode *
bp_ctl_json_node_new_bool (gboolean value)
{
  return json_node_init_boolean (json_node_alloc (), value);
}

JsonNode *
bp_ctl_json_node_new_null (void)
{
  return json_node_init_null (json_node_alloc ());
}

/**
 * bp_ctl_json_node_new_object:
 * @object: (transfer full): the object
 */
JsonNode *
bp_ctl_json_node_new_object (JsonObject *object)
{
  JsonNode *node = json_node_init_object (json_node_alloc (), object);

  json_object_unref (object);
  return node;
}

/**
 * bp_ctl_json_node_new_array:
 * @array: (transfer full): the array
 */
JsonNode *
bp_ctl_json_node_new_array (JsonArray *array)
{
  JsonNode *node = json_node_init_array (json_node_alloc (), array);

  json_array_unref (array);
  return node;
}

static JsonNode *
double_to_node (double value)
{
  if (isnan (value))
    return bp_ctl_json_node_new_string ("NaN");
  if (isinf (value))
    return bp_ctl_json_node_new_string (value > 0 ? "Infinity" : "-Infinity");
  return json_node_init_double (json_node_alloc (), value);
}

static char *
basic_to_key (GVariant *key)
{
  if (g_variant_is_of_type (key, G_VARIANT_TYPE_STRING) ||
      g_variant_is_of_type (key, G_VARIANT_TYPE_OBJECT_PATH) ||
      g_variant_is_of_type (key, G_VARIANT_TYPE_SIGNATURE))
    return g_strdup (g_variant_get_string (key, NULL));
  return g_variant_print (key, FALSE);
}

static JsonNode *
container_to_node (GVariant *value)
{
  const GVariantType *type = g_variant_get_type (value);
  gsize n = g_variant_n_children (value);

  if (g_variant_type_is_array (type) &&
      g_variant_type_is_dict_entry (g_variant_type_element (type)))
    {
      JsonObject *object = json_object_new ();

      for (gsize i = 0; i < n; i++)
        {
          g_autoptr(GVariant) entry = g_variant_get_child_value (value, i);
          g_autoptr(GVariant) key = g_variant_get_child_value (entry, 0);
          g_autoptr(GVariant) member = g_variant_get_child_value (entry, 1);
          g_autofree char *name = basic_to_key (key);

          json_object_set_member (object, name, bp_ctl_json_from_variant (member));
        }
      return bp_ctl_json_node_new_object (object);
    }
  else
    {
      JsonArray *array = json_array_sized_new (n);

      for (gsize i = 0; i < n; i++)
        {
          g_autoptr(GVariant) child = g_variant_get_child_value (value, i);

          json_array_add_element (array, bp_ctl_json_from_variant (child));
        }
      return bp_ctl_json_node_new_array (array);
    }
}

/**
 * bp_ctl_json_from_variant:
 *
 * Returns: (transfer full): @value as JSON (see the mapping above)
 */
JsonNode *
bp_ctl_json_from_variant (GVariant *value)
{
  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      return bp_ctl_json_node_new_bool (g_variant_get_boolean (value));
    case G_VARIANT_CLASS_BYTE:
      return bp_ctl_json_node_new_int (g_variant_get_byte (value));
    case G_VARIANT_CLASS_INT16:
      return bp_ctl_json_node_new_int (g_variant_get_int16 (value));
    case G_VARIANT_CLASS_UINT16:
      return bp_ctl_json_node_new_int (g_variant_get_uint16 (value));
    case G_VARIANT_CLASS_INT32:
      return bp_ctl_json_node_new_int (g_variant_get_int32 (value));
    case G_VARIANT_CLASS_UINT32:
      return bp_ctl_json_node_new_int (g_variant_get_uint32 (value));
    case G_VARIANT_CLASS_INT64:
      return bp_ctl_json_node_new_int (g_variant_get_int64 (value));
    case G_VARIANT_CLASS_HANDLE:
      return bp_ctl_json_node_new_int (g_variant_get_handle (value));
    case G_VARIANT_CLASS_UINT64:
      {
        guint64 u = g_variant_get_uint64 (value);
        g_autofree char *text = NULL;

        if (u <= G_MAXINT64)
          return bp_ctl_json_node_new_int ((gint64) u);
        text = g_strdup_printf ("%" G_GUINT64_FORMAT, u);
        return bp_ctl_json_node_new_string (text);
      }
    case G_VARIANT_CLASS_DOUBLE:
      return double_to_node (g_variant_get_double (value));
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_SIGNATURE:
      return bp_ctl_json_node_new_string (g_variant_get_string (value, NULL));
    case G_VARIANT_CLASS_OBJECT_PATH:
      if (g_str_equal (g_variant_get_string (value, NULL), "/"))
        return bp_ctl_json_node_new_null ();
      return bp_ctl_json_node_new_string (g_variant_get_string (value, NULL));
    case G_VARIANT_CLASS_VARIANT:
      {
        g_autoptr(GVariant) inner = g_variant_get_variant (value);

        return bp_ctl_json_from_variant (inner);
      }
    case G_VARIANT_CLASS_MAYBE:
      {
        g_autoptr(GVariant) inner = g_variant_get_maybe (value);

        return inner != NULL ? bp_ctl_json_from_variant (inner) : bp_ctl_json_node_new_null ();
      }
    case G_VARIANT_CLASS_ARRAY:
      if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTESTRING))
        {
          gsize len;
          const guchar *data = g_variant_get_fixed_array (value, &len, 1);
          g_autofree char *b64 = g_base64_encode (data, len);

          return bp_ctl_json_node_new_string (b64);
        }
      return container_to_node (value);
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
    default:
      return container_to_node (value);
    }
}

/**
 * bp_ctl_json_parse:
 *
 * Returns: (transfer full): the JSON value of @text
 */
JsonNode *
bp_ctl_json_parse (const char  *text,
                   GError     **error)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  JsonNode *root;

  if (!json_parser_load_from_data (parser, text, -1, error))
    return NULL;
  root = json_parser_get_root (parser);
  if (root == NULL)
    {
      g_set_error_literal (error, JSON_PARSER_ERROR, JSON_PARSER_ERROR_PARSE, _("empty JSON text"));
      return NULL;
    }
  return json_node_copy (root);
}

static void
write_string (GString    *out,
              const char *text)
{
  g_autofree char *valid = g_utf8_validate (text, -1, NULL) ? NULL : g_utf8_make_valid (text, -1);
  const char *p = valid != NULL ? valid : text;

  g_string_append_c (out, '"');
  for (; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);

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
        case '\b':
          g_string_append (out, "\\b");
          break;
        case '\f':
          g_string_append (out, "\\f");
          break;
        default:
          if (c < 0x20 || (c >= 0x7f && c <= 0x9f) || c == 0x2028 || c == 0x2029)
            g_string_append_printf (out, "\\u%04x", c);
          else
            g_string_append_len (out, p, g_utf8_next_char (p) - p);
        }
    }
  g_string_append_c (out, '"');
}

static void
write_double (GString *out,
              double   value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (value))
    {
      g_string_append (out, "null");
      return;
    }
  /* The shortest of %.15g … %.17g that reads back as the same double. */
  for (int precision = 15; precision <= 17; precision++)
    {
      char format[8];

      g_snprintf (format, sizeof format, "%%.%dg", precision);
      g_ascii_formatd (buf, sizeof buf, format, value);
      if (g_ascii_strtod (buf, NULL) == value)
        break;
    }
  g_string_append (out, buf);
  if (strpbrk (buf, ".eE") == NULL)
    g_string_append (out, ".0");
}

static void
write_indent (GString  *out,
              gboolean  pretty,
              guint     depth)
{
  if (!pretty)
    return;
  g_string_append_c (out, '\n');
  for (guint i = 0; i < depth; i++)
    g_string_append (out, "  ");
}

static void
write_node (GString  *out,
            JsonNode *node,
            gboolean  pretty,
            guint     depth)
{
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_NULL:
      g_string_append (out, "null");
      break;
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          g_string_append_printf (out, "%" G_GINT64_FORMAT, json_node_get_int (node));
          break;
        case G_TYPE_DOUBLE:
          write_double (out, json_node_get_double (node));
          break;
        case G_TYPE_BOOLEAN:
          g_string_append (out, json_node_get_boolean (node) ? "true" : "false");
          break;
        case G_TYPE_STRING:
          write_string (out, json_node_get_string (node));
          break;
        default:
          g_string_append (out, "null");
        }
      break;
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        guint n = json_array_get_length (array);

        g_string_append_c (out, '[');
        for (guint i = 0; i < n; i++)
          {
            if (i > 0)
              g_string_append_c (out, ',');
            write_indent (out, pretty, depth + 1);
            write_node (out, json_array_get_element (array, i), pretty, depth + 1);
          }
        if (n > 0)
          write_indent (out, pretty, depth);
        g_string_append_c (out, ']');
      }
      break;
    case JSON_NODE_OBJECT:
      {
        JsonObject *object = json_node_get_object (node);
        g_autoptr(GList) members = json_object_get_members (object);

        g_string_append_c (out, '{');
        for (GList *l = members; l != NULL; l = l->next)
          {
            if (l != members)
              g_string_append_c (out, ',');
            write_indent (out, pretty, depth + 1);
            write_string (out, l->data);
            g_string_append (out, pretty ? ": " : ":");
            write_node (out, json_object_get_member (object, l->data), pretty, depth + 1);
          }
        if (members != NULL)
          write_indent (out, pretty, depth);
        g_string_append_c (out, '}');
      }
      break;
    default:
      g_string_append (out, "null");
    }
}

/**
 * bp_ctl_json_to_string:
 *
 * Returns: (transfer full): @node as JSON text, indented by two spaces when
 *   @pretty, else on one line
 */
char *
bp_ctl_json_to_string (JsonNode *node,
                       gboolean  pretty)
{
  GString *out = g_string_new (NULL);

  write_node (out, node, pretty, 0);
  return g_string_free (out, FALSE);
}

/* The one JSON document of --json, on stdout. */
void
bp_ctl_json_print (JsonNode *node)
{
  g_autofree char *text = bp_ctl_json_to_string (node, TRUE);

  g_print ("%s\n", text);
}

/* One line of a JSON Lines stream (listen --json), flushed at once. */
void
bp_ctl_json_print_line (JsonNode *node)
{
  g_autofree char *text = bp_ctl_json_to_string (node, FALSE);

  g_print ("%s\n", text);
  fflush (stdout);
}
