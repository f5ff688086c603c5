/* bp-ctl-cmd-dlq.c: dlq list | show | replay | replay-all | delete | purge
 *
 * The dead-letter queue, org.backplane.Backplane1.DeadLetters at
 * /org/backplane/Backplane1/DeadLetters. Backend names given here are not
 * checked against the running backends: the queue may hold entries of a
 * backend that was removed from the configuration.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "bp-ctl.h"
#include "bp-ctl-format.h"
#include "bp-ctl-json.h"
#include "bp-ctl-table.h"

#define DEFAULT_LIMIT 100
#define MAX_LIMIT 1000

static char *
format_unix_us (gint64 us)
{
  if (us <= 0)
    return g_strdup ("-");
  return bp_ctl_format_unix_time (us / G_USEC_PER_SEC);
}

static int
cmd_dlq_list (BpCtl              *ctl,
              const BpCtlCommand *command,
              char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *backend = NULL;
  g_autofree char *offset_text = NULL;
  g_autofree char *limit_text = NULL;
  gboolean poisoned = FALSE;
  guint64 offset = 0, limit = DEFAULT_LIMIT;
  const GOptionEntry entries[] = {
    { "backend", 0, 0, G_OPTION_ARG_STRING, &backend,
      N_("Only entries of this backend"), N_("NAME") },
    { "poisoned", 0, 0, G_OPTION_ARG_NONE, &poisoned,
      N_("Only entries that failed too many replays"), NULL },
    { "offset", 0, 0, G_OPTION_ARG_STRING, &offset_text,
      N_("Skip this many entries"), N_("N") },
    { "limit", 0, 0, G_OPTION_ARG_STRING, &limit_text,
      N_("Show at most N entries (1 to 1000, default 100)"), N_("N") },
    { NULL }
  };
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) entries_list = NULL;
  g_autoptr(GVariant) props = NULL;
  GVariantBuilder filter;
  GVariantIter iter;
  guint64 id;
  const char *entry_backend, *operation, *key, *last_error;
  guint32 attempts;
  gint64 next_attempt;

  if (!bp_ctl_parse_command (ctl, command, entries, argv, &args, NULL, &error) ||
      !bp_ctl_check_n_args (args, 0, 0, &error) ||
      (offset_text != NULL && !bp_ctl_parse_uint64 ("--offset", offset_text, G_MAXUINT32, &offset, &error)) ||
      (limit_text != NULL && !bp_ctl_parse_uint64 ("--limit", limit_text, MAX_LIMIT, &limit, &error)))
    return bp_ctl_report_error (ctl, command, error);
  if (limit == 0)
    {
      bp_ctl_set_usage_error (&error, _("--limit must be at least 1"));
      return bp_ctl_report_error (ctl, command, error);
    }

  g_variant_builder_init (&filter, G_VARIANT_TYPE_VARDICT);
  if (backend != NULL)
    g_variant_builder_add (&filter, "{sv}", "backend", g_variant_new_string (backend));
  if (poisoned)
    g_variant_builder_add (&filter, "{sv}", "poisoned", g_variant_new_boolean (TRUE));
  reply = bp_ctl_call (ctl, BP_CTL_DEAD_LETTERS_PATH, BP_CTL_DEAD_LETTERS_IFACE, "List",
                       g_variant_new ("(uua{sv})", (guint32) offset, (guint32) limit, &filter),
                       "(a(tsssuxs))", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  entries_list = g_variant_get_child_value (reply, 0);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonArray *array = json_array_new ();

      g_variant_iter_init (&iter, entries_list);
      while (g_variant_iter_next (&iter, "(t&s&s&sux&s)", &id, &entry_backend, &operation, &key,
                                  &attempts, &next_attempt, &last_error))
        {
          JsonObject *object = json_object_new ();

          json_object_set_int_member (object, "id", (gint64) id);
          json_object_set_string_member (object, "backend", entry_backend);
          json_object_set_string_member (object, "operation", operation);
          json_object_set_string_member (object, "idempotency-key", key);
          json_object_set_int_member (object, "attempts", attempts);
          json_object_set_int_member (object, "next-attempt", next_attempt);
          json_object_set_string_member (object, "last-error", last_error);
          json_array_add_object_element (array, object);
        }
      root = bp_ctl_json_node_new_array (array);
      bp_ctl_json_print (root);
    }
  else
    {
      g_autoptr(BpCtlTable) table = bp_ctl_table_new ();
      gint64 count, n_poisoned;

      bp_ctl_table_add_column (table, _("ID"), BP_CTL_ALIGN_RIGHT);
      bp_ctl_table_add_column (table, _("BACKEND"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("OPERATION"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("ATTEMPTS"), BP_CTL_ALIGN_RIGHT);
      bp_ctl_table_add_column (table, _("NEXT ATTEMPT"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("KEY"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("LAST ERROR"), BP_CTL_ALIGN_LEFT);
      g_variant_iter_init (&iter, entries_list);
      while (g_variant_iter_next (&iter, "(t&s&s&sux&s)", &id, &entry_backend, &operation, &key,
                                  &attempts, &next_attempt, &last_error))
        {
          bp_ctl_table_add_cellf (table, "%" G_GUINT64_FORMAT, id);
          bp_ctl_table_add_cell (table, entry_backend);
          bp_ctl_table_add_cell (table, operation);
          bp_ctl_table_add_cellf (table, "%u", attempts);
          bp_ctl_table_take_cell (table, format_unix_us (next_attempt));
          bp_ctl_table_add_cell (table, key);
          bp_ctl_table_add_cell (table, last_error);
        }
      bp_ctl_table_print (table, ctl->wide);

      props = bp_ctl_get_all (ctl, BP_CTL_DEAD_LETTERS_PATH, BP_CTL_DEAD_LETTERS_IFACE, NULL);
      if (bp_ctl_lookup_int64 (props, "Count", &count) && bp_ctl_lookup_int64 (props, "Poisoned", &n_poisoned))
        g_print (_("%lld entries in the queue, %lld poisoned\n"), (long long) count, (long long) n_poisoned);
    }
  return BP_CTL_EXIT_OK;
}

static gboolean
parse_id (BpCtl               *ctl,
          const BpCtlCommand  *command,
          char               **argv,
          guint64             *id,
          GError             **error)
{
  g_auto(GStrv) args = NULL;

  return bp_ctl_parse_command (ctl, command, NULL, argv, &args, NULL, error) &&
         bp_ctl_check_n_args (args, 1, 1, error) &&
         bp_ctl_parse_uint64 (_("ID"), args[0], G_MAXUINT64, id, error);
}

static int
cmd_dlq_show (BpCtl              *ctl,
              const BpCtlCommand *command,
              char              **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) entry = NULL;
  guint64 id;

  if (!parse_id (ctl, command, argv, &id, &error))
    return bp_ctl_report_error (ctl, command, error);
  reply = bp_ctl_call (ctl, BP_CTL_DEAD_LETTERS_PATH, BP_CTL_DEAD_LETTERS_IFACE, "Get",
                       g_variant_new ("(t)", id), "(a{sv})", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  entry = g_variant_get_child_value (reply, 0);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = bp_ctl_json_from_variant (entry);

      bp_ctl_json_print (root);
    }
  else
    {
      g_autoptr(BpCtlTable) table = bp_ctl_table_new ();
      const char *order[] = {
        "id", "backend", "operation", "idempotency-key", "attempts", "next-attempt",
        "created-at", "poisoned", "last-error", "payload",
      };
      GVariantIter iter;
      const char *key;
      GVariant *value;

      bp_ctl_table_add_column (table, "", BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, "", BP_CTL_ALIGN_LEFT);
      bp_ctl_table_set_headers_visible (table, FALSE);
      /* Known keys in a sensible order, then whatever else there is. */
      for (guint i = 0; i < G_N_ELEMENTS (order); i++)
        {
          g_autoptr(GVariant) v = g_variant_lookup_value (entry, order[i], NULL);
          gint64 us;

          if (v == NULL)
            continue;
          bp_ctl_table_take_cell (table, g_strdup_printf ("%s:", order[i]));
          if ((g_str_equal (order[i], "next-attempt") || g_str_equal (order[i], "created-at")) &&
              bp_ctl_lookup_int64 (entry, order[i], &us))
            bp_ctl_table_take_cell (table, format_unix_us (us));
          else
            bp_ctl_table_take_cell (table, bp_ctl_format_value (v));
        }
      g_variant_iter_init (&iter, entry);
      while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
        {
          g_autoptr(GVariant) owned = value;
          gboolean known = FALSE;

          for (guint i = 0; i < G_N_ELEMENTS (order); i++)
            known |= g_str_equal (order[i], key);
          if (known)
            continue;
          bp_ctl_table_take_cell (table, g_strdup_printf ("%s:", key));
          bp_ctl_table_take_cell (table, bp_ctl_format_value (owned));
        }
      /* The payload is what an operator came to see: never cut it. */
      bp_ctl_table_print (table, TRUE);
    }
  return BP_CTL_EXIT_OK;
}

static int
cmd_dlq_replay (BpCtl              *ctl,
                const BpCtlCommand *command,
                char              **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint64 id;

  if (!parse_id (ctl, command, argv, &id, &error))
    return bp_ctl_report_error (ctl, command, error);
  reply = bp_ctl_call_full (ctl, BP_CTL_DEAD_LETTERS_PATH, BP_CTL_DEAD_LETTERS_IFACE, "Replay",
                            g_variant_new ("(t)", id), "()", NULL, bp_ctl_data_timeout (ctl), &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object = json_object_new ();

      json_object_set_int_member (object, "replayed", (gint64) id);
      root = bp_ctl_json_node_new_object (object);
      bp_ctl_json_print (root);
    }
  else
    g_print (_("Entry %llu replayed.\n"), (unsigned long long) id);
  return BP_CTL_EXIT_OK;
}

static int
cmd_dlq_delete (BpCtl              *ctl,
                const BpCtlCommand *command,
                char              **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint64 id;

  if (!parse_id (ctl, command, argv, &id, &error))
    return bp_ctl_report_error (ctl, command, error);
  reply = bp_ctl_call (ctl, BP_CTL_DEAD_LETTERS_PATH, BP_CTL_DEAD_LETTERS_IFACE, "Delete",
                       g_variant_new ("(t)", id), "()", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object = json_object_new ();

      json_object_set_int_member (object, "deleted", (gint64) id);
      root = bp_ctl_json_node_new_object (object);
      bp_ctl_json_print (root);
    }
  else
    g_print (_("Entry %llu deleted.\n"), (unsigned long long) id);
  return BP_CTL_EXIT_OK;
}

/* replay-all and purge: (s backend) → (u count), "" for every backend. */
static int
backend_wide (BpCtl              *ctl,
              const BpCtlCommand *command,
              char              **argv,
              const char         *method,
              const char         *json_key)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  guint32 count;

  if (!bp_ctl_parse_command (ctl, command, NULL, argv, &args, NULL, &error) ||
      !bp_ctl_check_n_args (args, 0, 1, &error))
    return bp_ctl_report_error (ctl, command, error);
  reply = bp_ctl_call (ctl, BP_CTL_DEAD_LETTERS_PATH, BP_CTL_DEAD_LETTERS_IFACE, method,
                       g_variant_new ("(s)", args[0] != NULL ? args[0] : ""), "(u)", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  g_variant_get (reply, "(u)", &count);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object = json_object_new ();

      json_object_set_int_member (object, json_key, count);
      root = bp_ctl_json_node_new_object (object);
      bp_ctl_json_print (root);
    }
  else if (g_str_equal (method, "ReplayAll"))
    g_print (g_dngettext (GETTEXT_PACKAGE, "%u entry scheduled for replay.\n",
                          "%u entries scheduled for replay.\n", count), count);
  else
    g_print (g_dngettext (GETTEXT_PACKAGE, "%u entry removed.\n", "%u entries removed.\n", count), count);
  return BP_CTL_EXIT_OK;
}

static int
cmd_dlq_replay_all (BpCtl              *ctl,
                    const BpCtlCommand *command,
                    char              **argv)
{
  return backend_wide (ctl, command, argv, "ReplayAll", "scheduled");
}

static int
cmd_dlq_purge (BpCtl              *ctl,
               const BpCtlCommand *command,
               char              **argv)
{
  return backend_wide (ctl, command, argv, "Purge", "removed");
}

const BpCtlCommand bp_ctl_dlq_commands[] = {
  { "dlq", NULL, "list", N_("[--backend NAME] [--poisoned] [--offset N] [--limit N]"),
    N_("List dead-lettered operations, oldest first"), NULL, cmd_dlq_list },
  { "dlq", NULL, "show", N_("ID"),
    N_("Show one dead letter with its payload"), NULL, cmd_dlq_show },
  { "dlq", NULL, "replay", N_("ID"),
    N_("Replay one dead letter now and wait for the outcome"), NULL, cmd_dlq_replay },
  { "dlq", NULL, "replay-all", N_("[BACKEND]"),
    N_("Schedule every non-poisoned dead letter (of a backend) for replay"), NULL, cmd_dlq_replay_all },
  { "dlq", NULL, "delete", N_("ID"),
    N_("Remove one dead letter without replaying it"), NULL, cmd_dlq_delete },
  { "dlq", NULL, "purge", N_("[BACKEND]"),
    N_("Remove every dead letter (of a backend)"), NULL, cmd_dlq_purge },
  { NULL }
};
