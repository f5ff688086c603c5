/* bp-ctl-cmd-graph.c: cypher (org.backplane.Backplane1.Graph)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "bp-ctl.h"
#include "bp-ctl-format.h"
#include "bp-ctl-json.h"
#include "bp-ctl-params.h"
#include "bp-ctl-stream.h"
#include "bp-ctl-table.h"

/* --param K=V … as the a{sv} of Graph.Run; a key given twice is an error. */
static GVariant *
parse_params (GStrv      params,
              gboolean   integers,
              GError   **error)
{
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  for (guint i = 0; params != NULL && params[i] != NULL; i++)
    {
      const char *eq = strchr (params[i], '=');
      g_autofree char *key = NULL;
      g_autoptr(GVariant) value = NULL;

      if (eq == NULL || eq == params[i])
        {
          g_variant_builder_clear (&builder);
          bp_ctl_set_usage_error (error, _("--param: “%s” is not KEY=VALUE"), params[i]);
          return NULL;
        }
      key = g_strndup (params[i], eq - params[i]);
      if (g_hash_table_contains (seen, key))
        {
          g_variant_builder_clear (&builder);
          bp_ctl_set_usage_error (error, _("--param: “%s” is given twice"), key);
          return NULL;
        }
      value = bp_ctl_param_parse (eq + 1, integers, error);
      if (value == NULL)
        {
          g_variant_builder_clear (&builder);
          return NULL;
        }
      g_variant_builder_add (&builder, "{sv}", key, value);
      g_hash_table_add (seen, g_steal_pointer (&key));
    }
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static void
print_records (BpCtl    *ctl,
               GVariant *keys,
               GVariant *records,
               GVariant *summary)
{
  g_autofree const char **names = g_variant_get_strv (keys, NULL);
  gsize n_keys = g_variant_n_children (keys);
  gsize n_records = g_variant_n_children (records);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object = json_object_new ();
      JsonArray *array = json_array_new ();

      for (gsize r = 0; r < n_records; r++)
        {
          g_autoptr(GVariant) record = g_variant_get_child_value (records, r);
          JsonObject *json_record = json_object_new ();

          for (gsize k = 0; k < n_keys; k++)
            {
              g_autoptr(GVariant) value = g_variant_lookup_value (record, names[k], NULL);

              json_object_set_member (json_record, names[k],
                                      value != NULL ? bp_ctl_json_from_variant (value) : bp_ctl_json_node_new_null ());
            }
          json_array_add_object_element (array, json_record);
        }
      json_object_set_member (object, "keys", bp_ctl_json_from_variant (keys));
      json_object_set_array_member (object, "records", array);
      json_object_set_member (object, "summary", bp_ctl_json_from_variant (summary));
      root = bp_ctl_json_node_new_object (object);
      bp_ctl_json_print (root);
    }
  else
    {
      g_autoptr(BpCtlTable) table = bp_ctl_table_new ();
      g_autoptr(GVariant) stats = g_variant_lookup_value (summary, "stats", G_VARIANT_TYPE_VARDICT);

      for (gsize k = 0; k < n_keys; k++)
        bp_ctl_table_add_column (table, names[k], BP_CTL_ALIGN_LEFT);
      for (gsize r = 0; r < n_records && n_keys > 0; r++)
        {
          g_autoptr(GVariant) record = g_variant_get_child_value (records, r);

          for (gsize k = 0; k < n_keys; k++)
            bp_ctl_table_take_cell (table, bp_ctl_format_lookup (record, names[k]));
        }
      if (n_keys > 0)
        bp_ctl_table_print (table, ctl->wide);
      g_print (g_dngettext (GETTEXT_PACKAGE, "(%u record)\n", "(%u records)\n", (gulong) n_records),
               (guint) n_records);
      if (stats != NULL && g_variant_n_children (stats) > 0)
        {
          g_autofree char *text = bp_ctl_format_value (stats);
          g_autofree char *clean = bp_ctl_sanitize (text);

          g_print (_("Counters: %s\n"), clean);
        }
    }
}

static int
cmd_cypher (BpCtl              *ctl,
            const BpCtlCommand *command,
            char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_auto(GStrv) param_texts = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) params = NULL;
  g_autoptr(GVariant) options = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *database = NULL;
  g_autofree char *to_file = NULL;
  gboolean integers = FALSE;
  gboolean read_only = FALSE;
  GVariantBuilder builder;
  const GOptionEntry entries[] = {
    { "param", 0, 0, G_OPTION_ARG_STRING_ARRAY, &param_texts,
      N_("The parameter $KEY (repeat for more)"), N_("KEY=VALUE") },
    { "int", 0, 0, G_OPTION_ARG_NONE, &integers,
      N_("Pass untyped parameters that are whole numbers as integers"), NULL },
    { "database", 0, 0, G_OPTION_ARG_STRING, &database,
      N_("Run against this database instead of the backend's default"), N_("NAME") },
    { "read", 0, 0, G_OPTION_ARG_NONE, &read_only,
      N_("Run as a read (access mode read: routed to a reader, retried on transient errors)"), NULL },
    { "to-file", 0, 0, G_OPTION_ARG_FILENAME, &to_file,
      N_("Stream the records into FILE.jsonl instead of printing them"), N_("FILE") },
    { NULL }
  };

  if (!bp_ctl_parse_command (ctl, command, entries, argv, &args, NULL, &error) ||
      !bp_ctl_check_n_args (args, 2, 2, &error))
    return bp_ctl_report_error (ctl, command, error);
  if (to_file != NULL && bp_ctl_format_for_file (to_file, FALSE, &error) == NULL)
    return bp_ctl_report_error (ctl, command, error);
  params = parse_params (param_texts, integers, &error);
  if (params == NULL)
    return bp_ctl_report_error (ctl, command, error);

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  if (database != NULL)
    g_variant_builder_add (&builder, "{sv}", "database", g_variant_new_string (database));
  if (read_only)
    g_variant_builder_add (&builder, "{sv}", "access-mode", g_variant_new_string ("read"));
  if (ctl->timeout_ms > 0)
    g_variant_builder_add (&builder, "{sv}", "timeout-ms", g_variant_new_uint32 ((guint32) ctl->timeout_ms));
  options = g_variant_ref_sink (g_variant_builder_end (&builder));

  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_GRAPH_IFACE, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);

  if (to_file != NULL)
    {
      reply = bp_ctl_call_to_file (ctl, backend->path, BP_CTL_GRAPH_IFACE, "RunToFd",
                                   g_variant_new ("(s@a{sv}h@a{sv})", args[1], params, 0, options),
                                   "(as)", bp_ctl_timeout_with_grace (ctl), to_file, TRUE, &error);
      if (reply == NULL)
        return bp_ctl_report_error (ctl, command, error);
      if (ctl->json)
        {
          g_autoptr(JsonNode) root = NULL;
          g_autoptr(GVariant) keys = g_variant_get_child_value (reply, 0);
          JsonObject *object = json_object_new ();

          json_object_set_string_member (object, "file", to_file);
          json_object_set_member (object, "keys", bp_ctl_json_from_variant (keys));
          root = bp_ctl_json_node_new_object (object);
          bp_ctl_json_print (root);
        }
      else
        {
          g_autofree char *display = g_filename_display_name (to_file);

          g_print (_("Records written to %s.\n"), display);
        }
      return BP_CTL_EXIT_OK;
    }

  reply = bp_ctl_call_full (ctl, backend->path, BP_CTL_GRAPH_IFACE, "Run",
                            g_variant_new ("(s@a{sv}@a{sv})", args[1], params, options),
                            "(asaa{sv}a{sv})", NULL, bp_ctl_timeout_with_grace (ctl), &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  {
    g_autoptr(GVariant) keys = g_variant_get_child_value (reply, 0);
    g_autoptr(GVariant) records = g_variant_get_child_value (reply, 1);
    g_autoptr(GVariant) summary = g_variant_get_child_value (reply, 2);

    print_records (ctl, keys, records, summary);
  }
  return BP_CTL_EXIT_OK;
}

const BpCtlCommand bp_ctl_graph_commands[] = {
  { NULL, NULL, "cypher", N_("NAME CYPHER [--param KEY=VALUE]… [--database DB] [--read] [--to-file FILE.jsonl]"),
    N_("Run one Cypher query ($KEY are the parameters) and print its records"),
    N_("Nodes, relationships and other graph values are shown as compact JSON."),
    cmd_cypher, TRUE },
  { NULL }
};
