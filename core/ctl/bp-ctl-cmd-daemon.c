/* bp-ctl-cmd-daemon.c: status, plugins, backends, ping, health, breakers,
 * metrics, reload
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "bp-ctl.h"
#include "bp-ctl-format.h"
#include "bp-ctl-json.h"
#include "bp-ctl-table.h"

/* Parses a command that takes exactly @n_args positional arguments. */
static gboolean
parse_fixed (BpCtl               *ctl,
             const BpCtlCommand  *command,
             char               **argv,
             guint                n_args,
             GStrv               *args,
             GError             **error)
{
  return bp_ctl_parse_command (ctl, command, NULL, argv, args, NULL, error) &&
         bp_ctl_check_n_args (*args, n_args, n_args, error);
}

/* The interfaces a backend adds to Backend, by their last name element. */
static char *
typed_interfaces (const BpCtlBackend *backend)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new ();

  for (guint i = 0; backend->interfaces[i] != NULL; i++)
    {
      const char *iface = backend->interfaces[i];

      if (g_str_equal (iface, BP_CTL_BACKEND_IFACE) || g_str_has_prefix (iface, "org.freedesktop."))
        continue;
      g_ptr_array_add (names, strrchr (iface, '.') + 1);
    }
  g_ptr_array_add (names, NULL);
  return g_strjoinv (",", (char **) names->pdata);
}

static GVariant *
backend_property (const BpCtlBackend *backend,
                  const char         *name)
{
  return g_variant_lookup_value (backend->properties, name, G_VARIANT_TYPE_VARDICT);
}

static JsonObject *
backend_to_json (const BpCtlBackend *backend,
                 gboolean            details)
{
  JsonObject *object = json_object_new ();

  json_object_set_string_member (object, "name", backend->name);
  json_object_set_string_member (object, "type", backend->type);
  json_object_set_string_member (object, "state", backend->state);
  json_object_set_string_member (object, "reason", backend->reason);
  if (details)
    {
      const char *props[] = { "Breaker", "Pool", "Latency" };
      const char *keys[] = { "breaker", "pool", "latency" };
      JsonArray *ifaces = json_array_new ();

      json_object_set_string_member (object, "path", backend->path);
      for (guint i = 0; backend->interfaces[i] != NULL; i++)
        if (!g_str_has_prefix (backend->interfaces[i], "org.freedesktop."))
          json_array_add_string_element (ifaces, backend->interfaces[i]);
      json_object_set_array_member (object, "interfaces", ifaces);
      for (guint i = 0; i < G_N_ELEMENTS (props); i++)
        {
          g_autoptr(GVariant) value = backend_property (backend, props[i]);

          if (value != NULL)
            json_object_set_member (object, keys[i], bp_ctl_json_from_variant (value));
        }
    }
  return object;
}

static JsonNode *
backends_to_json (GPtrArray *backends,
                  gboolean   details)
{
  JsonArray *array = json_array_new ();

  for (guint i = 0; i < backends->len; i++)
    json_array_add_object_element (array, backend_to_json (g_ptr_array_index (backends, i), details));
  return bp_ctl_json_node_new_array (array);
}

static char *
lookup_duration (GVariant   *dict,
                 const char *key)
{
  gint64 us;

  if (!bp_ctl_lookup_int64 (dict, key, &us))
    return g_strdup ("-");
  return bp_ctl_format_duration_us (us);
}

static int
cmd_status (BpCtl              *ctl,
            const BpCtlCommand *command,
            char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) manager = NULL;
  g_autoptr(GVariant) lag = NULL;
  g_autoptr(GVariant) dead_letters = NULL;
  g_autoptr(GPtrArray) backends = NULL;
  const char *daemon_version = "";
  guint32 api_version = 0;

  if (!parse_fixed (ctl, command, argv, 0, &args, &error))
    return bp_ctl_report_error (ctl, command, error);

  manager = bp_ctl_get_all (ctl, BP_CTL_ROOT_PATH, BP_CTL_MANAGER_IFACE, &error);
  if (manager == NULL)
    return bp_ctl_report_error (ctl, command, error);
  backends = bp_ctl_list_backends (ctl, &error);
  if (backends == NULL)
    return bp_ctl_report_error (ctl, command, error);
  /* Optional: a daemon without a dead-letter store has no such object. */
  dead_letters = bp_ctl_get_all (ctl, BP_CTL_DEAD_LETTERS_PATH, BP_CTL_DEAD_LETTERS_IFACE, NULL);

  g_variant_lookup (manager, "DaemonVersion", "&s", &daemon_version);
  g_variant_lookup (manager, "Version", "u", &api_version);
  lag = g_variant_lookup_value (manager, "LoopLag", G_VARIANT_TYPE_VARDICT);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object = json_object_new ();

      json_object_set_string_member (object, "daemon-version", daemon_version);
      json_object_set_int_member (object, "api-version", api_version);
      json_object_set_member (object, "loop-lag",
                              lag != NULL ? bp_ctl_json_from_variant (lag) : bp_ctl_json_node_new_null ());
      if (dead_letters != NULL)
        json_object_set_member (object, "dead-letters", bp_ctl_json_from_variant (dead_letters));
      json_object_set_member (object, "backends", backends_to_json (backends, FALSE));
      root = bp_ctl_json_node_new_object (object);
      bp_ctl_json_print (root);
    }
  else
    {
      g_autoptr(BpCtlTable) table = bp_ctl_table_new ();
      g_autofree char *version = bp_ctl_sanitize (daemon_version);
      g_autofree char *p50 = lookup_duration (lag, "p50-us");
      g_autofree char *p99 = lookup_duration (lag, "p99-us");
      g_autofree char *max = lookup_duration (lag, "max-us");
      g_autofree char *stalls = bp_ctl_format_lookup (lag, "stalls-over-16ms");
      gint64 count, poisoned;

      g_print (_("backplaned %s, D-Bus API version %u\n"), version, api_version);
      g_print (_("Main loop lag: p50 %s, p99 %s, max %s; stalls over 16 ms: %s\n"),
               p50, p99, max, stalls != NULL ? stalls : "-");
      if (bp_ctl_lookup_int64 (dead_letters, "Count", &count) &&
          bp_ctl_lookup_int64 (dead_letters, "Poisoned", &poisoned))
        g_print (_("Dead letters: %lld (%lld poisoned)\n"), (long long) count, (long long) poisoned);
      g_print ("\n");

      bp_ctl_table_add_column (table, _("BACKEND"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("TYPE"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("STATE"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("REASON"), BP_CTL_ALIGN_LEFT);
      for (guint i = 0; i < backends->len; i++)
        {
          BpCtlBackend *backend = g_ptr_array_index (backends, i);

          bp_ctl_table_add_cell (table, backend->name);
          bp_ctl_table_add_cell (table, backend->type);
          bp_ctl_table_add_cell (table, backend->state);
          bp_ctl_table_add_cell (table, backend->reason);
        }
      bp_ctl_table_print (table, ctl->wide);
    }
  return BP_CTL_EXIT_OK;
}

static int
cmd_backends (BpCtl              *ctl,
              const BpCtlCommand *command,
              char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) backends = NULL;
  g_autoptr(BpCtlTable) table = NULL;

  if (!parse_fixed (ctl, command, argv, 0, &args, &error))
    return bp_ctl_report_error (ctl, command, error);
  backends = bp_ctl_list_backends (ctl, &error);
  if (backends == NULL)
    return bp_ctl_report_error (ctl, command, error);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = backends_to_json (backends, TRUE);

      bp_ctl_json_print (root);
      return BP_CTL_EXIT_OK;
    }

  table = bp_ctl_table_new ();
  bp_ctl_table_add_column (table, _("BACKEND"), BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, _("TYPE"), BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, _("STATE"), BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, _("INTERFACES"), BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, _("BREAKER"), BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, _("CALLS"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("ERRORS"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("P99"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("REASON"), BP_CTL_ALIGN_LEFT);
  for (guint i = 0; i < backends->len; i++)
    {
      BpCtlBackend *backend = g_ptr_array_index (backends, i);
      g_autoptr(GVariant) breaker = backend_property (backend, "Breaker");
      g_autoptr(GVariant) latency = backend_property (backend, "Latency");
      char *state = bp_ctl_format_lookup (breaker, "state");
      char *calls = bp_ctl_format_lookup (latency, "count");
      char *errors = bp_ctl_format_lookup (latency, "errors");
      gint64 p99;

      bp_ctl_table_add_cell (table, backend->name);
      bp_ctl_table_add_cell (table, backend->type);
      bp_ctl_table_add_cell (table, backend->state);
      bp_ctl_table_take_cell (table, typed_interfaces (backend));
      bp_ctl_table_take_cell (table, state != NULL ? state : g_strdup ("-"));
      bp_ctl_table_take_cell (table, calls != NULL ? calls : g_strdup ("-"));
      bp_ctl_table_take_cell (table, errors != NULL ? errors : g_strdup ("-"));
      if (bp_ctl_lookup_int64 (latency, "p99-us", &p99))
        bp_ctl_table_take_cell (table, bp_ctl_format_duration_us (p99));
      else
        bp_ctl_table_add_cell (table, "-");
      bp_ctl_table_add_cell (table, backend->reason);
    }
  bp_ctl_table_print (table, ctl->wide);
  return BP_CTL_EXIT_OK;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static int
cmd_plugins (BpCtl              *ctl,
             const BpCtlCommand *command,
             char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) manager = NULL;
  g_autoptr(GVariant) plugins = NULL;
  g_autoptr(GPtrArray) ids = g_ptr_array_new ();
  g_autoptr(BpCtlTable) table = NULL;
  GVariantIter iter;
  const char *id;

  if (!parse_fixed (ctl, command, argv, 0, &args, &error))
    return bp_ctl_report_error (ctl, command, error);
  manager = bp_ctl_get_all (ctl, BP_CTL_ROOT_PATH, BP_CTL_MANAGER_IFACE, &error);
  if (manager == NULL)
    return bp_ctl_report_error (ctl, command, error);
  plugins = g_variant_lookup_value (manager, "Plugins", G_VARIANT_TYPE ("a{sa{sv}}"));
  if (plugins == NULL)
    plugins = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("{sa{sv}}"), NULL, 0));

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = bp_ctl_json_from_variant (plugins);

      bp_ctl_json_print (root);
      return BP_CTL_EXIT_OK;
    }

  g_variant_iter_init (&iter, plugins);
  while (g_variant_iter_next (&iter, "{&s@a{sv}}", &id, NULL))
    g_ptr_array_add (ids, (gpointer) id);
  g_ptr_array_sort (ids, compare_strings);

  table = bp_ctl_table_new ();
  bp_ctl_table_add_column (table, _("PLUGIN"), BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, _("TYPE"), BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, _("LOADED"), BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, _("DESCRIPTION"), BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, _("ERROR"), BP_CTL_ALIGN_LEFT);
  for (guint i = 0; i < ids->len; i++)
    {
      g_autoptr(GVariant) plugin = g_variant_lookup_value (plugins, g_ptr_array_index (ids, i), G_VARIANT_TYPE_VARDICT);
      gboolean loaded = FALSE;

      g_variant_lookup (plugin, "loaded", "b", &loaded);
      bp_ctl_table_add_cell (table, g_ptr_array_index (ids, i));
      bp_ctl_table_take_cell (table, bp_ctl_format_lookup (plugin, "type"));
      bp_ctl_table_add_cell (table, loaded ? _("yes") : _("no"));
      bp_ctl_table_take_cell (table, bp_ctl_format_lookup (plugin, "description"));
      bp_ctl_table_take_cell (table, bp_ctl_format_lookup (plugin, "error"));
    }
  bp_ctl_table_print (table, ctl->wide);
  return BP_CTL_EXIT_OK;
}

static int
cmd_ping (BpCtl              *ctl,
          const BpCtlCommand *command,
          char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) reply = NULL;
  gint64 start, elapsed;

  if (!parse_fixed (ctl, command, argv, 1, &args, &error))
    return bp_ctl_report_error (ctl, command, error);
  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_BACKEND_IFACE, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);

  start = g_get_monotonic_time ();
  reply = bp_ctl_call (ctl, backend->path, BP_CTL_BACKEND_IFACE, "Ping", NULL, "()", &error);
  elapsed = g_get_monotonic_time () - start;
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object = json_object_new ();

      json_object_set_string_member (object, "backend", backend->name);
      json_object_set_boolean_member (object, "ok", TRUE);
      json_object_set_int_member (object, "round-trip-us", elapsed);
      root = bp_ctl_json_node_new_object (object);
      bp_ctl_json_print (root);
    }
  else
    {
      g_autofree char *name = bp_ctl_sanitize (backend->name);
      g_autofree char *duration = bp_ctl_format_duration_us (elapsed);

      g_print (_("%s: ping ok in %s\n"), name, duration);
    }
  return BP_CTL_EXIT_OK;
}

static int
cmd_health (BpCtl              *ctl,
            const BpCtlCommand *command,
            char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) reply = NULL;
  gboolean healthy;
  const char *detail;

  if (!parse_fixed (ctl, command, argv, 1, &args, &error))
    return bp_ctl_report_error (ctl, command, error);
  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_BACKEND_IFACE, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);
  reply = bp_ctl_call (ctl, backend->path, BP_CTL_BACKEND_IFACE, "CheckHealth", NULL, "(bs)", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  g_variant_get (reply, "(b&s)", &healthy, &detail);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object = json_object_new ();

      json_object_set_string_member (object, "backend", backend->name);
      json_object_set_boolean_member (object, "healthy", healthy);
      json_object_set_string_member (object, "detail", detail);
      root = bp_ctl_json_node_new_object (object);
      bp_ctl_json_print (root);
    }
  else
    {
      g_autofree char *name = bp_ctl_sanitize (backend->name);
      g_autofree char *text = bp_ctl_sanitize (detail);

      if (healthy)
        g_print (_("%s: healthy: %s\n"), name, text);
      else
        g_print (_("%s: unhealthy: %s\n"), name, text);
    }
  return healthy ? BP_CTL_EXIT_OK : BP_CTL_EXIT_FAILED;
}

static void
add_stat_cell (BpCtlTable *table,
               GVariant   *dict,
               const char *key)
{
  char *text = bp_ctl_format_lookup (dict, key);

  bp_ctl_table_take_cell (table, text != NULL ? text : g_strdup ("-"));
}

static int
cmd_breakers (BpCtl              *ctl,
              const BpCtlCommand *command,
              char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) backends = NULL;
  g_autoptr(BpCtlTable) table = NULL;

  if (!parse_fixed (ctl, command, argv, 0, &args, &error))
    return bp_ctl_report_error (ctl, command, error);
  backends = bp_ctl_list_backends (ctl, &error);
  if (backends == NULL)
    return bp_ctl_report_error (ctl, command, error);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonArray *array = json_array_new ();

      for (guint i = 0; i < backends->len; i++)
        {
          BpCtlBackend *backend = g_ptr_array_index (backends, i);
          g_autoptr(GVariant) breaker = backend_property (backend, "Breaker");
          g_autoptr(GVariant) pool = backend_property (backend, "Pool");
          JsonObject *object = json_object_new ();

          json_object_set_string_member (object, "backend", backend->name);
          json_object_set_member (object, "breaker",
                                  breaker != NULL ? bp_ctl_json_from_variant (breaker) : bp_ctl_json_node_new_null ());
          json_object_set_member (object, "pool",
                                  pool != NULL ? bp_ctl_json_from_variant (pool) : bp_ctl_json_node_new_null ());
          json_array_add_object_element (array, object);
        }
      root = bp_ctl_json_node_new_array (array);
      bp_ctl_json_print (root);
      return BP_CTL_EXIT_OK;
    }

  table = bp_ctl_table_new ();
  bp_ctl_table_add_column (table, _("BACKEND"), BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, _("BREAKER"), BP_CTL_ALIGN_LEFT);
  bp_ctl_table_add_column (table, _("ERROR %"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("OK"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("FAILED"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("TIMEOUTS"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("REJECTED"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("RETRY AFTER"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("POOL"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("IN USE"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("IDLE"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("WAITING"), BP_CTL_ALIGN_RIGHT);
  bp_ctl_table_add_column (table, _("MAX"), BP_CTL_ALIGN_RIGHT);
  for (guint i = 0; i < backends->len; i++)
    {
      BpCtlBackend *backend = g_ptr_array_index (backends, i);
      g_autoptr(GVariant) breaker = backend_property (backend, "Breaker");
      g_autoptr(GVariant) pool = backend_property (backend, "Pool");
      g_autoptr(GVariant) rate = breaker != NULL ? g_variant_lookup_value (breaker, "error-rate", G_VARIANT_TYPE_DOUBLE) : NULL;
      gint64 retry_after;

      bp_ctl_table_add_cell (table, backend->name);
      add_stat_cell (table, breaker, "state");
      if (rate != NULL)
        bp_ctl_table_add_cellf (table, "%.1f", g_variant_get_double (rate));
      else
        bp_ctl_table_add_cell (table, "-");
      add_stat_cell (table, breaker, "successes");
      add_stat_cell (table, breaker, "failures");
      add_stat_cell (table, breaker, "timeouts");
      add_stat_cell (table, breaker, "rejected");
      if (bp_ctl_lookup_int64 (breaker, "retry-after-ms", &retry_after) && retry_after > 0)
        bp_ctl_table_take_cell (table, bp_ctl_format_duration_us (retry_after * 1000));
      else
        bp_ctl_table_add_cell (table, "-");
      add_stat_cell (table, pool, "size");
      add_stat_cell (table, pool, "in-use");
      add_stat_cell (table, pool, "idle");
      add_stat_cell (table, pool, "waiting");
      add_stat_cell (table, pool, "max");
    }
  bp_ctl_table_print (table, ctl->wide);
  return BP_CTL_EXIT_OK;
}

static int
cmd_metrics (BpCtl              *ctl,
             const BpCtlCommand *command,
             char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  const char *text;

  if (!parse_fixed (ctl, command, argv, 0, &args, &error))
    return bp_ctl_report_error (ctl, command, error);
  reply = bp_ctl_call (ctl, BP_CTL_ROOT_PATH, BP_CTL_MANAGER_IFACE, "GetMetrics", NULL, "(s)", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  g_variant_get (reply, "(&s)", &text);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object = json_object_new ();

      json_object_set_string_member (object, "openmetrics", text);
      root = bp_ctl_json_node_new_object (object);
      bp_ctl_json_print (root);
    }
  else
    {
      /* Raw exposition text for scrapers and grep; the daemon built it. */
      g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

      for (guint i = 0; lines[i] != NULL; i++)
        {
          g_autofree char *clean = NULL;

          if (lines[i][0] == '\0' && lines[i + 1] == NULL)
            break;
          clean = bp_ctl_sanitize (lines[i]);
          g_print ("%s\n", clean);
        }
    }
  return BP_CTL_EXIT_OK;
}

static int
cmd_reload (BpCtl              *ctl,
            const BpCtlCommand *command,
            char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  if (!parse_fixed (ctl, command, argv, 0, &args, &error))
    return bp_ctl_report_error (ctl, command, error);
  reply = bp_ctl_call (ctl, BP_CTL_ROOT_PATH, BP_CTL_MANAGER_IFACE, "Reload", NULL, "()", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonObject *object = json_object_new ();

      json_object_set_boolean_member (object, "reloaded", TRUE);
      root = bp_ctl_json_node_new_object (object);
      bp_ctl_json_print (root);
    }
  else
    g_print ("%s\n", _("Configuration reloaded."));
  return BP_CTL_EXIT_OK;
}

const BpCtlCommand bp_ctl_daemon_commands[] = {
  { NULL, NULL, "status", "", N_("Show the daemon and API versions, main-loop lag and every backend's state"),
    NULL, cmd_status },
  { NULL, NULL, "plugins", "", N_("List the plugins found, whether they loaded and why not"),
    NULL, cmd_plugins },
  { NULL, NULL, "backends", "", N_("List the backends with their interfaces, breaker and latency"),
    NULL, cmd_backends },
  { NULL, NULL, "ping", N_("NAME"), N_("Check that the daemon dispatches calls for a backend (no I/O)"),
    NULL, cmd_ping },
  { NULL, NULL, "health", N_("NAME"), N_("Run a backend's real health check; exit status 1 if unhealthy"),
    NULL, cmd_health },
  { NULL, NULL, "breakers", "", N_("Show every backend's circuit breaker and connection pool"),
    NULL, cmd_breakers },
  { NULL, NULL, "metrics", "", N_("Print all metrics in OpenMetrics text format"),
    NULL, cmd_metrics },
  { NULL, NULL, "reload", "", N_("Make the daemon re-read its configuration"),
    NULL, cmd_reload },
  { NULL }
};
