/* bp-ctl-cmd-sql.c: sql, listen (org.backplane.Backplane1.Sql)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bp-ctl.h"
#include "bp-ctl-format.h"
#include "bp-ctl-json.h"
#include "bp-ctl-params.h"
#include "bp-ctl-stream.h"
#include "bp-ctl-table.h"

/**
 * row_keys:
 * @columns: the a(ss) of Sql.Query
 *
 * The row key of each column, by the daemon's rule: the first occurrence
 * of a name keeps it, each later one gets the smallest free "#k" (k ≥ 2).
 *
 * Returns: (transfer full): the keys, in column order
 */
static GStrv
row_keys (GVariant *columns)
{
  gsize n = g_variant_n_children (columns);
  GStrv keys = g_new0 (char *, n + 1);
  g_autoptr(GHashTable) used = g_hash_table_new (g_str_hash, g_str_equal);

  for (gsize i = 0; i < n; i++)
    {
      const char *name;

      g_variant_get_child (columns, i, "(&s&s)", &name, NULL);
      if (!g_hash_table_contains (used, name))
        keys[i] = g_strdup (name);
      else
        for (guint k = 2; keys[i] == NULL; k++)
          {
            g_autofree char *candidate = g_strdup_printf ("%s#%u", name, k);

            if (!g_hash_table_contains (used, candidate))
              keys[i] = g_steal_pointer (&candidate);
          }
      g_hash_table_add (used, keys[i]);
    }
  return keys;
}

static gboolean
is_numeric_type (const char *type)
{
  const char *numeric[] = { "int2", "int4", "int8", "oid", "float4", "float8", "numeric" };

  for (guint i = 0; i < G_N_ELEMENTS (numeric); i++)
    if (g_str_equal (type, numeric[i]))
      return TRUE;
  return FALSE;
}

static JsonArray *
columns_to_json (GVariant *columns)
{
  JsonArray *array = json_array_new ();
  GVariantIter iter;
  const char *name, *type;

  g_variant_iter_init (&iter, columns);
  while (g_variant_iter_next (&iter, "(&s&s)", &name, &type))
    {
      JsonObject *column = json_object_new ();

      json_object_set_string_member (column, "name", name);
      json_object_set_string_member (column, "type", type);
      json_array_add_object_element (array, column);
    }
  return array;
}

/* A json or jsonb value travels as JSON text: embed it, as QueryToFd does. */
static JsonNode *
column_value_to_json (GVariant *columns,
                      gsize     column,
                      GVariant *value)
{
  const char *type;

  if (value == NULL)
    return bp_ctl_json_node_new_null ();
  g_variant_get_child (columns, column, "(&s&s)", NULL, &type);
  if ((g_str_equal (type, "json") || g_str_equal (type, "jsonb")) &&
      g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
    {
      JsonNode *node = bp_ctl_json_parse (g_variant_get_string (value, NULL), NULL);

      if (node != NULL)
        return node;
    }
  return bp_ctl_json_from_variant (value);
}

static void
print_rows (BpCtl    *ctl,
            GVariant *columns,
            GVariant *rows)
{
  g_auto(GStrv) keys = row_keys (columns);
  gsize n_columns = g_variant_n_children (columns);
  gsize n_rows = g_variant_n_children (rows);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object = json_object_new ();
      JsonArray *array = json_array_new ();

      for (gsize r = 0; r < n_rows; r++)
        {
          g_autoptr(GVariant) row = g_variant_get_child_value (rows, r);
          JsonObject *json_row = json_object_new ();

          /* NULL is an absent key on D-Bus and null here. */
          for (gsize c = 0; c < n_columns; c++)
            {
              g_autoptr(GVariant) value = g_variant_lookup_value (row, keys[c], NULL);

              json_object_set_member (json_row, keys[c], column_value_to_json (columns, c, value));
            }
          json_array_add_object_element (array, json_row);
        }
      json_object_set_array_member (object, "columns", columns_to_json (columns));
      json_object_set_array_member (object, "rows", array);
      root = bp_ctl_json_node_new_object (object);
      bp_ctl_json_print (root);
    }
  else
    {
      g_autoptr(BpCtlTable) table = bp_ctl_table_new ();

      for (gsize c = 0; c < n_columns; c++)
        {
          const char *name, *type;

          g_variant_get_child (columns, c, "(&s&s)", &name, &type);
          bp_ctl_table_add_column (table, name, is_numeric_type (type) ? BP_CTL_ALIGN_RIGHT : BP_CTL_ALIGN_LEFT);
        }
      for (gsize r = 0; r < n_rows && n_columns > 0; r++)
        {
          g_autoptr(GVariant) row = g_variant_get_child_value (rows, r);

          for (gsize c = 0; c < n_columns; c++)
            /* SQL NULL is an empty cell, as psql shows it. */
            bp_ctl_table_take_cell (table, bp_ctl_format_lookup (row, keys[c]));
        }
      if (n_columns > 0)
        bp_ctl_table_print (table, ctl->wide);
      g_print (g_dngettext (GETTEXT_PACKAGE, "(%u row)\n", "(%u rows)\n", (gulong) n_rows), (guint) n_rows);
    }
}

static GVariant *
query_to_fd_parameters (BpCtl      *ctl,
                        const char *sql,
                        GVariant   *params,
                        const char *format)
{
  GVariantBuilder options;

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "format", g_variant_new_string (format));
  if (ctl->timeout_ms > 0)
    g_variant_builder_add (&options, "{sv}", "timeout-ms", g_variant_new_uint32 ((guint32) ctl->timeout_ms));
  /* The fd is handle 0 of the call's fd list. */
  return g_variant_new ("(s@avh@a{sv})", sql, params, 0, g_variant_builder_end (&options));
}

static int
cmd_sql (BpCtl              *ctl,
         const BpCtlCommand *command,
         char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) params = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *to_file = NULL;
  g_autofree char *max_rows_text = NULL;
  gboolean integers = FALSE;
  guint64 max_rows = 0;
  const char *format = NULL;
  GVariantBuilder builder;
  const GOptionEntry entries[] = {
    { "int", 0, 0, G_OPTION_ARG_NONE, &integers,
      N_("Pass untyped parameters that are whole numbers as integers"), NULL },
    { "max-rows", 0, 0, G_OPTION_ARG_STRING, &max_rows_text,
      N_("Fail instead of returning more than N rows"), N_("N") },
    { "to-file", 0, 0, G_OPTION_ARG_FILENAME, &to_file,
      N_("Stream the rows into FILE (.csv or .jsonl) instead of printing them"), N_("FILE") },
    { NULL }
  };

  if (!bp_ctl_parse_command (ctl, command, entries, argv, &args, NULL, &error) ||
      !bp_ctl_check_n_args (args, 2, G_MAXUINT, &error) ||
      (max_rows_text != NULL && !bp_ctl_parse_uint64 ("--max-rows", max_rows_text, G_MAXUINT32, &max_rows, &error)))
    return bp_ctl_report_error (ctl, command, error);
  if (to_file != NULL && (format = bp_ctl_format_for_file (to_file, TRUE, &error)) == NULL)
    return bp_ctl_report_error (ctl, command, error);
  if (to_file != NULL && max_rows_text != NULL)
    {
      bp_ctl_set_usage_error (&error, _("--max-rows cannot be used with --to-file"));
      return bp_ctl_report_error (ctl, command, error);
    }

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("av"));
  for (guint i = 2; args[i] != NULL; i++)
    {
      g_autoptr(GVariant) value = bp_ctl_param_parse (args[i], integers, &error);

      if (value == NULL)
        {
          g_variant_builder_clear (&builder);
          return bp_ctl_report_error (ctl, command, error);
        }
      g_variant_builder_add (&builder, "v", value);
    }
  params = g_variant_ref_sink (g_variant_builder_end (&builder));

  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_SQL_IFACE, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);

  if (to_file != NULL)
    {
      g_autoptr(GVariant) columns = NULL;

      reply = bp_ctl_call_to_file (ctl, backend->path, BP_CTL_SQL_IFACE, "QueryToFd",
                                   query_to_fd_parameters (ctl, args[1], params, format),
                                   "(a(ss))", bp_ctl_timeout_with_grace (ctl), to_file,
                                   g_str_equal (format, "jsonl"), &error);
      if (reply == NULL)
        return bp_ctl_report_error (ctl, command, error);
      columns = g_variant_get_child_value (reply, 0);
      if (ctl->json)
        {
          g_autoptr(JsonNode) root = NULL;
          JsonObject *object = json_object_new ();

          json_object_set_string_member (object, "file", to_file);
          json_object_set_string_member (object, "format", format);
          json_object_set_array_member (object, "columns", columns_to_json (columns));
          root = bp_ctl_json_node_new_object (object);
          bp_ctl_json_print (root);
        }
      else
        {
          g_autofree char *display = g_filename_display_name (to_file);

          g_print (_("Rows written to %s.\n"), display);
        }
      return BP_CTL_EXIT_OK;
    }

  {
    GVariantBuilder options;
    g_autoptr(GVariant) columns = NULL;
    g_autoptr(GVariant) rows = NULL;

    g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
    if (ctl->timeout_ms > 0)
      g_variant_builder_add (&options, "{sv}", "timeout-ms", g_variant_new_uint32 ((guint32) ctl->timeout_ms));
    if (max_rows_text != NULL)
      g_variant_builder_add (&options, "{sv}", "max-rows", g_variant_new_uint32 ((guint32) max_rows));
    reply = bp_ctl_call_full (ctl, backend->path, BP_CTL_SQL_IFACE, "Query",
                              g_variant_new ("(s@ava{sv})", args[1], params, &options),
                              "(a(ss)aa{sv})", NULL, bp_ctl_timeout_with_grace (ctl), &error);
    if (reply == NULL)
      return bp_ctl_report_error (ctl, command, error);
    columns = g_variant_get_child_value (reply, 0);
    rows = g_variant_get_child_value (reply, 1);
    print_rows (ctl, columns, rows);
  }
  return BP_CTL_EXIT_OK;
}

/* listen: Sql.Listen, then the Events of the Subscription until Ctrl-C. */

typedef struct
{
  BpCtl           *ctl;          /* (unowned) */
  GMainLoop       *loop;         /* (owned) */
  GDBusConnection *connection;   /* (unowned) */
  char            *path;         /* (owned) (nullable): the subscription */
  guint            subscription_id;
  guint            watch_id;
  guint            signal_ids[2];
  gboolean         closing;
  int              status;
} ListenData;

static void
listen_data_clear (ListenData *data)
{
  if (data->subscription_id != 0)
    g_dbus_connection_signal_unsubscribe (data->connection, data->subscription_id);
  g_clear_handle_id (&data->watch_id, g_bus_unwatch_name);
  for (guint i = 0; i < G_N_ELEMENTS (data->signal_ids); i++)
    g_clear_handle_id (&data->signal_ids[i], g_source_remove);
  g_clear_pointer (&data->loop, g_main_loop_unref);
  g_clear_pointer (&data->path, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (ListenData, listen_data_clear)

static void
print_event (ListenData *data,
             GVariant   *event)
{
  const char *channel = NULL;
  const char *payload = "";

  if (data->ctl->json)
    {
      g_autoptr(JsonNode) node = bp_ctl_json_from_variant (event);

      bp_ctl_json_print_line (node);
      return;
    }
  if (g_variant_lookup (event, "channel", "&s", &channel))
    {
      g_autofree char *c = bp_ctl_sanitize (channel);
      g_autofree char *p = NULL;

      g_variant_lookup (event, "payload", "&s", &payload);
      p = bp_ctl_sanitize (payload);
      g_print ("%s: %s\n", c, p);
    }
  else
    {
      g_autofree char *text = bp_ctl_format_value (event);
      g_autofree char *clean = bp_ctl_sanitize (text);

      g_print ("%s\n", clean);
    }
  fflush (stdout);
}

/* Main context: a batch of events, unicast to us by the daemon (the
 * subscription names its unique name). Subscribed before Listen was called
 * so that no batch sent right after the reply is missed; the path tells
 * which subscription a batch belongs to. */
static void
events_cb (GDBusConnection *connection,
           const char      *sender,
           const char      *object_path,
           const char      *interface,
           const char      *signal,
           GVariant        *parameters,
           gpointer         user_data)
{
  ListenData *data = user_data;
  g_autoptr(GVariant) batch = NULL;

  if (data->path == NULL || !g_str_equal (object_path, data->path) ||
      !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(aa{sv})")))
    return;
  batch = g_variant_get_child_value (parameters, 0);
  for (gsize i = 0; i < g_variant_n_children (batch); i++)
    {
      g_autoptr(GVariant) event = g_variant_get_child_value (batch, i);

      print_event (data, event);
    }
}

static void
closed_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  ListenData *data = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    data->status = bp_ctl_report_error (data->ctl, NULL, error);
  g_main_loop_quit (data->loop);
}

/* Main context: Ctrl-C or SIGTERM ends the subscription. */
static gboolean
stop_signal_cb (gpointer user_data)
{
  ListenData *data = user_data;

  if (data->closing)
    {
      /* A second Ctrl-C: do not wait for the daemon. */
      g_main_loop_quit (data->loop);
      return G_SOURCE_CONTINUE;
    }
  data->closing = TRUE;
  g_dbus_connection_call (data->connection, BP_CTL_BUS_NAME, data->path, BP_CTL_SUBSCRIPTION_IFACE, "Close",
                          NULL, G_VARIANT_TYPE ("()"), G_DBUS_CALL_FLAGS_NONE,
                          bp_ctl_control_timeout (data->ctl), NULL, closed_cb, data);
  return G_SOURCE_CONTINUE;
}

static void
daemon_vanished_cb (GDBusConnection *connection,
                    const char      *name,
                    gpointer         user_data)
{
  ListenData *data = user_data;

  g_printerr ("backplanectl: %s\n", _("backplaned went away"));
  data->status = BP_CTL_EXIT_FAILED;
  g_main_loop_quit (data->loop);
}

static int
cmd_listen (BpCtl              *ctl,
            const BpCtlCommand *command,
            char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *owner = NULL;
  g_auto(ListenData) data = { 0 };

  if (!bp_ctl_parse_command (ctl, command, NULL, argv, &args, NULL, &error) ||
      !bp_ctl_check_n_args (args, 2, 2, &error))
    return bp_ctl_report_error (ctl, command, error);
  if (args[1][0] == '\0')
    {
      bp_ctl_set_usage_error (&error, _("the channel name is empty"));
      return bp_ctl_report_error (ctl, command, error);
    }
  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_SQL_IFACE, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);

  owner = bp_ctl_get_daemon_owner (ctl, &error);
  if (owner == NULL)
    return bp_ctl_report_error (ctl, command, error);

  data.ctl = ctl;
  data.connection = ctl->connection;
  data.loop = g_main_loop_new (NULL, FALSE);
  data.subscription_id = g_dbus_connection_signal_subscribe (data.connection, owner,
                                                             BP_CTL_SUBSCRIPTION_IFACE, "Events", NULL, NULL,
                                                             G_DBUS_SIGNAL_FLAGS_NONE, events_cb, &data, NULL);
  reply = bp_ctl_call (ctl, backend->path, BP_CTL_SQL_IFACE, "Listen", g_variant_new ("(s)", args[1]), "(o)", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  g_variant_get (reply, "(o)", &data.path);

  data.watch_id = g_bus_watch_name_on_connection (data.connection, BP_CTL_BUS_NAME, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                  NULL, daemon_vanished_cb, &data, NULL);
  data.signal_ids[0] = g_unix_signal_add (SIGINT, stop_signal_cb, &data);
  data.signal_ids[1] = g_unix_signal_add (SIGTERM, stop_signal_cb, &data);
  if (isatty (STDERR_FILENO))
    {
      g_autofree char *channel = bp_ctl_sanitize (args[1]);

      g_printerr (_("Listening on “%s”; press Ctrl-C to stop.\n"), channel);
    }
  g_main_loop_run (data.loop);
  return data.status;
}

const BpCtlCommand bp_ctl_sql_commands[] = {
  { NULL, NULL, "sql", N_("NAME SQL [PARAM…] [--int] [--max-rows N] [--to-file FILE.csv|FILE.jsonl]"),
    N_("Run one SQL statement ($1, $2 … are the parameters) and print its rows"),
    N_("With --to-file the rows are streamed into the file (Sql.QueryToFd): CSV, or the daemon's\n"
       "JSON Lines (a header line, one object a row, an end line); backplanectl returns once the\n"
       "file is complete and fails if the stream ended with an error."),
    cmd_sql, TRUE },
  { NULL, NULL, "listen", N_("NAME CHANNEL"),
    N_("Print NOTIFY events of a channel, one a line, until Ctrl-C"),
    N_("With --json each event is one JSON object on its own line."),
    cmd_listen },
  { NULL }
};
