/* bp-ctl-params.c: typed values from the command line
 *
 * SQL parameters (Sql.Query's av) and Cypher parameters (Graph.Run's a{sv})
 * are given as text; a short prefix types them (BP_CTL_PARAMS_HELP). A
 * null is the object path '/', as everywhere in the Backplane API.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "bp-ctl.h"
#include "bp-ctl-json.h"
#include "bp-ctl-params.h"

static GVariant *
from_json (JsonNode *node)
{
  switch (json_node_get_node_type (node))
    {
    case JSON_NODE_NULL:
      return g_variant_new_object_path ("/");
    case JSON_NODE_VALUE:
      switch (json_node_get_value_type (node))
        {
        case G_TYPE_INT64:
          return g_variant_new_int64 (json_node_get_int (node));
        case G_TYPE_DOUBLE:
          return g_variant_new_double (json_node_get_double (node));
        case G_TYPE_BOOLEAN:
          return g_variant_new_boolean (json_node_get_boolean (node));
        case G_TYPE_STRING:
        default:
          return g_variant_new_string (json_node_get_string (node));
        }
    case JSON_NODE_ARRAY:
      {
        JsonArray *array = json_node_get_array (node);
        GVariantBuilder builder;

        g_variant_builder_init (&builder, G_VARIANT_TYPE ("av"));
        for (guint i = 0; i < json_array_get_length (array); i++)
          g_variant_builder_add (&builder, "v", from_json (json_array_get_element (array, i)));
        return g_variant_builder_end (&builder);
      }
    case JSON_NODE_OBJECT:
    default:
      {
        JsonObject *object = json_node_get_object (node);
        g_autoptr(GList) members = json_object_get_members (object);
        GVariantBuilder builder;

        g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
        for (GList *l = members; l != NULL; l = l->next)
          g_variant_builder_add (&builder, "{sv}", (const char *) l->data,
                                 from_json (json_object_get_member (object, l->data)));
        return g_variant_builder_end (&builder);
      }
    }
}

/**
 * bp_ctl_variant_from_json:
 *
 * Maps JSON to the Backplane's value types: integers x, other numbers d,
 * strings s, booleans b, null the object path '/', arrays av, objects a{sv}.
 *
 * Returns: (transfer full): the value
 */
GVariant *
bp_ctl_variant_from_json (JsonNode *node)
{
  return g_variant_ref_sink (from_json (node));
}

static gboolean
parse_boolean (const char *text,
               gboolean   *out)
{
  const char *yes[] = { "true", "yes", "on", "1", "t", "y" };
  const char *no[] = { "false", "no", "off", "0", "f", "n" };

  for (guint i = 0; i < G_N_ELEMENTS (yes); i++)
    if (g_ascii_strcasecmp (text, yes[i]) == 0)
      {
        *out = TRUE;
        return TRUE;
      }
  for (guint i = 0; i < G_N_ELEMENTS (no); i++)
    if (g_ascii_strcasecmp (text, no[i]) == 0)
      {
        *out = FALSE;
        return TRUE;
      }
  return FALSE;
}

/**
 * bp_ctl_param_parse:
 * @integers: pass untyped whole numbers as integers (--int)
 *
 * Returns: (transfer full): the value of one typed parameter, or %NULL with
 *   a usage error naming @text
 */
GVariant *
bp_ctl_param_parse (const char  *text,
                    gboolean     integers,
                    GError     **error)
{
  gint64 i;

  if (g_str_has_prefix (text, "i:"))
    {
      if (!g_ascii_string_to_signed (text + 2, 10, G_MININT64, G_MAXINT64, &i, NULL))
        {
          bp_ctl_set_usage_error (error, _("“%s” is not an integer"), text);
          return NULL;
        }
      return g_variant_ref_sink (g_variant_new_int64 (i));
    }
  if (g_str_has_prefix (text, "f:"))
    {
      char *end = NULL;
      double d = g_ascii_strtod (text + 2, &end);

      if (text[2] == '\0' || end == NULL || *end != '\0')
        {
          bp_ctl_set_usage_error (error, _("“%s” is not a number"), text);
          return NULL;
        }
      return g_variant_ref_sink (g_variant_new_double (d));
    }
  if (g_str_has_prefix (text, "b:"))
    {
      gboolean b;

      if (!parse_boolean (text + 2, &b))
        {
          bp_ctl_set_usage_error (error, _("“%s” is not a boolean (true or false)"), text);
          return NULL;
        }
      return g_variant_ref_sink (g_variant_new_boolean (b));
    }
  if (g_str_has_prefix (text, "n:"))
    {
      if (text[2] != '\0')
        {
          bp_ctl_set_usage_error (error, _("“%s”: a null (n:) takes no value"), text);
          return NULL;
        }
      return g_variant_ref_sink (g_variant_new_object_path ("/"));
    }
  if (g_str_has_prefix (text, "s:"))
    return g_variant_ref_sink (g_variant_new_string (text + 2));
  if (g_str_has_prefix (text, "j:"))
    {
      g_autoptr(GError) local_error = NULL;
      g_autoptr(JsonNode) node = bp_ctl_json_parse (text + 2, &local_error);

      if (node == NULL)
        {
          bp_ctl_set_usage_error (error, _("“%s” is not JSON: %s"), text, local_error->message);
          return NULL;
        }
      return bp_ctl_variant_from_json (node);
    }
  if (integers && g_ascii_string_to_signed (text, 10, G_MININT64, G_MAXINT64, &i, NULL))
    return g_variant_ref_sink (g_variant_new_int64 (i));
  return g_variant_ref_sink (g_variant_new_string (text));
}
