/* bp-ctl-cmd-system.c: system status | disks | processes
 *
 * The System interface of a backend of type system: the first such
 * backend in configuration order, or --backend NAME.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "bp-ctl.h"
#include "bp-ctl-format.h"
#include "bp-ctl-json.h"
#include "bp-ctl-table.h"

typedef struct
{
  char    *backend;   /* (owned) (nullable): --backend */
  char    *sort;      /* (owned) (nullable): --sort */
  char    *limit;     /* (owned) (nullable): --limit */
  guint64  n_limit;
} SystemOptions;

static void
system_options_clear (SystemOptions *options)
{
  g_clear_pointer (&options->backend, g_free);
  g_clear_pointer (&options->sort, g_free);
  g_clear_pointer (&options->limit, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (SystemOptions, system_options_clear)

static gboolean
parse_system (BpCtl               *ctl,
              const BpCtlCommand  *command,
              char               **argv,
              SystemOptions       *options,
              gboolean             with_process_options,
              GError             **error)
{
  g_auto(GStrv) args = NULL;
  const GOptionEntry all_entries[] = {
    { "backend", 0, 0, G_OPTION_ARG_STRING, &options->backend,
      N_("Use this backend instead of the first one of type system"), N_("NAME") },
    { "sort", 0, 0, G_OPTION_ARG_STRING, &options->sort,
      N_("Order by pid (default), rss (largest first) or cpu (busiest first)"), N_("KEY") },
    { "limit", 0, 0, G_OPTION_ARG_STRING, &options->limit,
      N_("Show at most N processes (1 to 10000)"), N_("N") },
    { NULL }
  };
  GOptionEntry entries[G_N_ELEMENTS (all_entries)] = { { NULL } };

  entries[0] = all_entries[0];
  if (with_process_options)
    {
      entries[1] = all_entries[1];
      entries[2] = all_entries[2];
    }
  if (!bp_ctl_parse_command (ctl, command, entries, argv, &args, NULL, error) ||
      !bp_ctl_check_n_args (args, 0, 0, error))
    return FALSE;
  if (options->sort != NULL &&
      !g_str_equal (options->sort, "pid") && !g_str_equal (options->sort, "rss") &&
      !g_str_equal (options->sort, "cpu"))
    {
      bp_ctl_set_usage_error (error, _("--sort: “%s” is not pid, rss or cpu"), options->sort);
      return FALSE;
    }
  /* The upper bound is the daemon's to enforce; its error names it. */
  if (options->limit != NULL &&
      (!bp_ctl_parse_uint64 ("--limit", options->limit, G_MAXUINT32, &options->n_limit, error)))
    return FALSE;
  if (options->limit != NULL && options->n_limit == 0)
    {
      bp_ctl_set_usage_error (error, _("--limit must be at least 1"));
      return FALSE;
    }
  return TRUE;
}

static BpCtlBackend *
find_system_backend (BpCtl          *ctl,
                     SystemOptions  *options,
                     GError        **error)
{
  if (options->backend != NULL)
    return bp_ctl_find_backend (ctl, options->backend, BP_CTL_SYSTEM_IFACE, error);
  return bp_ctl_find_backend_of_type (ctl, "system", BP_CTL_SYSTEM_IFACE, error);
}

static void
add_row (BpCtlTable *table,
         const char *label,
         char       *value)
{
  bp_ctl_table_add_cell (table, label);
  bp_ctl_table_take_cell (table, value != NULL ? value : g_strdup ("-"));
}

static char *
lookup_bytes (GVariant   *status,
              const char *key)
{
  gint64 bytes;

  if (!bp_ctl_lookup_int64 (status, key, &bytes))
    return NULL;
  return bp_ctl_format_bytes ((guint64) bytes);
}

static char *
format_uptime (GVariant *status)
{
  double seconds;
  guint64 s;

  if (!g_variant_lookup (status, "uptime", "d", &seconds))
    return NULL;
  s = (guint64) seconds;
  /* TRANSLATORS: days, hours, minutes, seconds of uptime */
  return g_strdup_printf (_("%llud %02lluh %02llum %02llus"),
                          (unsigned long long) (s / 86400), (unsigned long long) (s / 3600 % 24),
                          (unsigned long long) (s / 60 % 60), (unsigned long long) (s % 60));
}

static char *
format_load (GVariant *status)
{
  g_autoptr(GVariant) load = g_variant_lookup_value (status, "load", G_VARIANT_TYPE ("ad"));
  gsize n = 0;
  const double *values;

  if (load == NULL)
    return NULL;
  values = g_variant_get_fixed_array (load, &n, sizeof (double));
  if (n < 3)
    return NULL;
  return g_strdup_printf ("%.2f %.2f %.2f", values[0], values[1], values[2]);
}

static int
cmd_system_status (BpCtl              *ctl,
                   const BpCtlCommand *command,
                   char              **argv)
{
  g_auto(SystemOptions) options = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(BpCtlTable) table = NULL;
  double cpu;

  if (!parse_system (ctl, command, argv, &options, FALSE, &error))
    return bp_ctl_report_error (ctl, command, error);
  backend = find_system_backend (ctl, &options, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);
  reply = bp_ctl_call (ctl, backend->path, BP_CTL_SYSTEM_IFACE, "GetStatus", NULL, "(a{sv})", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  status = g_variant_get_child_value (reply, 0);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = bp_ctl_json_from_variant (status);

      bp_ctl_json_print (root);
      return BP_CTL_EXIT_OK;
    }

  table = bp_ctl_table_new ();
  bp_ctl_table_add_column (table, "", BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, "", BP_CTL_ALIGN_LEFT);
  bp_ctl_table_set_headers_visible (table, FALSE);
  add_row (table, _("CPU:"),
           g_variant_lookup (status, "cpu-percent", "d", &cpu) ? g_strdup_printf ("%.1f %%", cpu) : NULL);
  add_row (table, _("CPUs:"), bp_ctl_format_lookup (status, "n-cpus"));
  add_row (table, _("Load:"), format_load (status));
  add_row (table, _("Memory total:"), lookup_bytes (status, "memory-total"));
  add_row (table, _("Memory available:"), lookup_bytes (status, "memory-available"));
  add_row (table, _("Swap total:"), lookup_bytes (status, "swap-total"));
  add_row (table, _("Swap free:"), lookup_bytes (status, "swap-free"));
  add_row (table, _("Uptime:"), format_uptime (status));
  add_row (table, _("Daemon PID:"), bp_ctl_format_lookup (status, "daemon-pid"));
  add_row (table, _("Daemon RSS:"), lookup_bytes (status, "daemon-rss"));
  bp_ctl_table_print (table, ctl->wide);
  return BP_CTL_EXIT_OK;
}

static int
cmd_system_disks (BpCtl              *ctl,
                  const BpCtlCommand *command,
                  char              **argv)
{
  g_auto(SystemOptions) options = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) disks = NULL;
  GVariantIter iter;
  const char *mount, *fstype, *device;
  guint64 total, free_bytes, available;

  if (!parse_system (ctl, command, argv, &options, FALSE, &error))
    return bp_ctl_report_error (ctl, command, error);
  backend = find_system_backend (ctl, &options, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);
  reply = bp_ctl_call (ctl, backend->path, BP_CTL_SYSTEM_IFACE, "ListDisks", NULL, "(a(sssttt))", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  disks = g_variant_get_child_value (reply, 0);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonArray *array = json_array_new ();

      g_variant_iter_init (&iter, disks);
      while (g_variant_iter_next (&iter, "(&s&s&sttt)", &mount, &fstype, &device, &total, &free_bytes, &available))
        {
          JsonObject *object = json_object_new ();

          json_object_set_string_member (object, "mount", mount);
          json_object_set_string_member (object, "fstype", fstype);
          json_object_set_string_member (object, "device", device);
          json_object_set_int_member (object, "total", (gint64) total);
          json_object_set_int_member (object, "free", (gint64) free_bytes);
          json_object_set_int_member (object, "available", (gint64) available);
          json_array_add_object_element (array, object);
        }
      root = bp_ctl_json_node_new_array (array);
      bp_ctl_json_print (root);
    }
  else
    {
      g_autoptr(BpCtlTable) table = bp_ctl_table_new ();

      bp_ctl_table_add_column (table, _("MOUNT"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("TYPE"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("DEVICE"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("SIZE"), BP_CTL_ALIGN_RIGHT);
      bp_ctl_table_add_column (table, _("USED"), BP_CTL_ALIGN_RIGHT);
      bp_ctl_table_add_column (table, _("AVAILABLE"), BP_CTL_ALIGN_RIGHT);
      bp_ctl_table_add_column (table, _("USE%"), BP_CTL_ALIGN_RIGHT);
      g_variant_iter_init (&iter, disks);
      while (g_variant_iter_next (&iter, "(&s&s&sttt)", &mount, &fstype, &device, &total, &free_bytes, &available))
        {
          guint64 used = total > free_bytes ? total - free_bytes : 0;

          bp_ctl_table_add_cell (table, mount);
          bp_ctl_table_add_cell (table, fstype);
          bp_ctl_table_add_cell (table, device);
          bp_ctl_table_take_cell (table, bp_ctl_format_bytes (total));
          bp_ctl_table_take_cell (table, bp_ctl_format_bytes (used));
          bp_ctl_table_take_cell (table, bp_ctl_format_bytes (available));
          /* As df: used over what users could have. */
          if (used + available > 0)
            bp_ctl_table_add_cellf (table, "%.0f%%", 100.0 * (double) used / (double) (used + available));
          else
            bp_ctl_table_add_cell (table, "-");
        }
      bp_ctl_table_print (table, ctl->wide);
    }
  return BP_CTL_EXIT_OK;
}

static int
cmd_system_processes (BpCtl              *ctl,
                      const BpCtlCommand *command,
                      char              **argv)
{
  g_auto(SystemOptions) options = { 0 };
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) processes = NULL;
  GVariantBuilder builder;
  GVariantIter iter;
  guint32 pid, ppid;
  const char *name, *cmdline;
  guint64 rss, start_time;
  double cpu;

  if (!parse_system (ctl, command, argv, &options, TRUE, &error))
    return bp_ctl_report_error (ctl, command, error);
  backend = find_system_backend (ctl, &options, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  if (options.limit != NULL)
    g_variant_builder_add (&builder, "{sv}", "limit", g_variant_new_uint32 ((guint32) options.n_limit));
  if (options.sort != NULL)
    g_variant_builder_add (&builder, "{sv}", "sort", g_variant_new_string (options.sort));
  reply = bp_ctl_call (ctl, backend->path, BP_CTL_SYSTEM_IFACE, "ListProcesses",
                       g_variant_new ("(a{sv})", &builder), "(a(uussttd))", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  processes = g_variant_get_child_value (reply, 0);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonArray *array = json_array_new ();

      g_variant_iter_init (&iter, processes);
      while (g_variant_iter_next (&iter, "(uu&s&sttd)", &pid, &ppid, &name, &cmdline, &rss, &start_time, &cpu))
        {
          JsonObject *object = json_object_new ();

          json_object_set_int_member (object, "pid", pid);
          json_object_set_int_member (object, "ppid", ppid);
          json_object_set_string_member (object, "name", name);
          json_object_set_string_member (object, "cmdline", cmdline);
          json_object_set_int_member (object, "rss", (gint64) rss);
          json_object_set_int_member (object, "start-time", (gint64) start_time);
          json_object_set_double_member (object, "cpu-percent", cpu);
          json_array_add_object_element (array, object);
        }
      root = bp_ctl_json_node_new_array (array);
      bp_ctl_json_print (root);
    }
  else
    {
      g_autoptr(BpCtlTable) table = bp_ctl_table_new ();

      bp_ctl_table_add_column (table, _("PID"), BP_CTL_ALIGN_RIGHT);
      bp_ctl_table_add_column (table, _("PPID"), BP_CTL_ALIGN_RIGHT);
      bp_ctl_table_add_column (table, _("NAME"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("RSS"), BP_CTL_ALIGN_RIGHT);
      bp_ctl_table_add_column (table, _("CPU%"), BP_CTL_ALIGN_RIGHT);
      bp_ctl_table_add_column (table, _("STARTED"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("COMMAND"), BP_CTL_ALIGN_LEFT);
      g_variant_iter_init (&iter, processes);
      while (g_variant_iter_next (&iter, "(uu&s&sttd)", &pid, &ppid, &name, &cmdline, &rss, &start_time, &cpu))
        {
          bp_ctl_table_add_cellf (table, "%u", pid);
          bp_ctl_table_add_cellf (table, "%u", ppid);
          bp_ctl_table_add_cell (table, name);
          bp_ctl_table_take_cell (table, bp_ctl_format_bytes (rss));
          bp_ctl_table_add_cellf (table, "%.1f", cpu);
          bp_ctl_table_take_cell (table, bp_ctl_format_unix_time ((gint64) start_time));
          bp_ctl_table_add_cell (table, cmdline[0] != '\0' ? cmdline : name);
        }
      bp_ctl_table_print (table, ctl->wide);
    }
  return BP_CTL_EXIT_OK;
}

const BpCtlCommand bp_ctl_system_commands[] = {
  { "system", NULL, "status", N_("[--backend NAME]"),
    N_("Show CPU, load, memory and uptime of the machine"), NULL, cmd_system_status },
  { "system", NULL, "disks", N_("[--backend NAME]"),
    N_("List mounted file systems with their size and free space"), NULL, cmd_system_disks },
  { "system", NULL, "processes", N_("[--sort rss|cpu|pid] [--limit N] [--backend NAME]"),
    N_("List processes"), NULL, cmd_system_processes },
  { NULL }
};
