/* bp-ctl-cmd-vectors.c: vectors NAME collections | create | upsert | query |
 * count | scroll (org.backplane.Backplane1.Vectors)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "bp-ctl.h"
#include "bp-ctl-format.h"
#include "bp-ctl-json.h"
#include "bp-ctl-table.h"

/* Checks a --filter locally: a JSON object, or a usage error. */
static gboolean
check_filter (const char  *filter,
              GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  g_autoptr(JsonNode) node = NULL;

  if (filter == NULL)
    return TRUE;
  node = bp_ctl_json_parse (filter, &local_error);
  if (node == NULL)
    {
      bp_ctl_set_usage_error (error, _("--filter is not JSON: %s"), local_error->message);
      return FALSE;
    }
  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      bp_ctl_set_usage_error (error, _("--filter must be a JSON object (a Qdrant filter)"));
      return FALSE;
    }
  return TRUE;
}

static void
print_json_object (JsonObject *object)
{
  g_autoptr(JsonNode) root = bp_ctl_json_node_new_object (object);

  bp_ctl_json_print (root);
}

/* Calls a method of fd-taking shape with @fd as handle 0 of the fd list. */
static GVariant *
call_with_fd (BpCtl        *ctl,
              const char   *path,
              const char   *method,
              GVariant     *parameters,
              const char   *reply_type,
              int           fd,
              GError      **error)
{
  g_autoptr(GUnixFDList) fd_list = g_unix_fd_list_new ();

  if (g_unix_fd_list_append (fd_list, fd, error) != 0)
    {
      g_variant_unref (g_variant_ref_sink (parameters));
      return NULL;
    }
  return bp_ctl_call_full (ctl, path, BP_CTL_VECTORS_IFACE, method, parameters, reply_type, fd_list,
                           bp_ctl_data_timeout (ctl), error);
}

static int
cmd_collections (BpCtl              *ctl,
                 const BpCtlCommand *command,
                 char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) names = NULL;

  if (!bp_ctl_parse_command (ctl, command, NULL, argv, &args, NULL, &error) ||
      !bp_ctl_check_n_args (args, 1, 1, &error))
    return bp_ctl_report_error (ctl, command, error);
  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_VECTORS_IFACE, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);
  reply = bp_ctl_call (ctl, backend->path, BP_CTL_VECTORS_IFACE, "ListCollections", NULL, "(as)", &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  names = g_variant_get_child_value (reply, 0);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = bp_ctl_json_from_variant (names);

      bp_ctl_json_print (root);
    }
  else
    {
      g_autoptr(BpCtlTable) table = bp_ctl_table_new ();
      GVariantIter iter;
      const char *name;

      bp_ctl_table_add_column (table, _("COLLECTION"), BP_CTL_ALIGN_LEFT);
      g_variant_iter_init (&iter, names);
      while (g_variant_iter_next (&iter, "&s", &name))
        bp_ctl_table_add_cell (table, name);
      bp_ctl_table_print (table, ctl->wide);
    }
  return BP_CTL_EXIT_OK;
}

static const char *
canonical_distance (const char *text)
{
  const char *distances[] = { "Cosine", "Dot", "Euclid", "Manhattan" };

  for (guint i = 0; i < G_N_ELEMENTS (distances); i++)
    if (g_ascii_strcasecmp (text, distances[i]) == 0)
      return distances[i];
  return NULL;
}

static int
cmd_create (BpCtl              *ctl,
            const BpCtlCommand *command,
            char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(JsonNode) config = NULL;
  g_autofree char *config_json = NULL;
  g_autofree char *size_text = NULL;
  g_autofree char *distance_text = NULL;
  const char *distance;
  guint64 size;
  JsonObject *root, *vectors;
  const GOptionEntry entries[] = {
    { "size", 0, 0, G_OPTION_ARG_STRING, &size_text,
      N_("Dimensions of the vectors"), N_("N") },
    { "distance", 0, 0, G_OPTION_ARG_STRING, &distance_text,
      N_("Cosine, Dot, Euclid or Manhattan"), N_("METRIC") },
    { NULL }
  };

  if (!bp_ctl_parse_command (ctl, command, entries, argv, &args, NULL, &error) ||
      !bp_ctl_check_n_args (args, 2, 2, &error))
    return bp_ctl_report_error (ctl, command, error);
  if (size_text == NULL || distance_text == NULL)
    {
      bp_ctl_set_usage_error (&error, _("--size and --distance are required"));
      return bp_ctl_report_error (ctl, command, error);
    }
  if (!bp_ctl_parse_uint64 ("--size", size_text, G_MAXUINT32, &size, &error))
    return bp_ctl_report_error (ctl, command, error);
  if (size == 0)
    {
      bp_ctl_set_usage_error (&error, _("--size must be at least 1"));
      return bp_ctl_report_error (ctl, command, error);
    }
  distance = canonical_distance (distance_text);
  if (distance == NULL)
    {
      bp_ctl_set_usage_error (&error, _("--distance: “%s” is not Cosine, Dot, Euclid or Manhattan"), distance_text);
      return bp_ctl_report_error (ctl, command, error);
    }

  vectors = json_object_new ();
  json_object_set_int_member (vectors, "size", (gint64) size);
  json_object_set_string_member (vectors, "distance", distance);
  root = json_object_new ();
  json_object_set_object_member (root, "vectors", vectors);
  config = bp_ctl_json_node_new_object (root);
  config_json = bp_ctl_json_to_string (config, FALSE);

  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_VECTORS_IFACE, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);
  reply = bp_ctl_call_full (ctl, backend->path, BP_CTL_VECTORS_IFACE, "CreateCollection",
                            g_variant_new ("(ss)", args[1], config_json), "()", NULL,
                            bp_ctl_data_timeout (ctl), &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);

  if (ctl->json)
    {
      JsonObject *object = json_object_new ();

      json_object_set_string_member (object, "created", args[1]);
      print_json_object (object);
    }
  else
    {
      g_autofree char *name = bp_ctl_sanitize (args[1]);

      g_print (_("Collection “%s” created.\n"), name);
    }
  return BP_CTL_EXIT_OK;
}

static int
cmd_upsert (BpCtl              *ctl,
            const BpCtlCommand *command,
            char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *batch_text = NULL;
  guint64 batch_size = 0, points;
  GVariantBuilder options;
  int fd;
  const GOptionEntry entries[] = {
    { "batch-size", 0, 0, G_OPTION_ARG_STRING, &batch_text,
      N_("Points per request (default: the daemon's, 256)"), N_("N") },
    { NULL }
  };

  if (!bp_ctl_parse_command (ctl, command, entries, argv, &args, NULL, &error) ||
      !bp_ctl_check_n_args (args, 3, 3, &error) ||
      (batch_text != NULL && !bp_ctl_parse_uint64 ("--batch-size", batch_text, G_MAXUINT32, &batch_size, &error)))
    return bp_ctl_report_error (ctl, command, error);
  if (batch_text != NULL && batch_size == 0)
    {
      bp_ctl_set_usage_error (&error, _("--batch-size must be at least 1"));
      return bp_ctl_report_error (ctl, command, error);
    }

  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_VECTORS_IFACE, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);

  /* "-" is standard input; the daemon reads the fd itself. */
  if (g_str_equal (args[2], "-"))
    fd = dup (STDIN_FILENO);
  else
    fd = g_open (args[2], O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (&error, BP_CTL_ERROR, BP_CTL_ERROR_FAILED, _("cannot open “%s”: %s"),
                   args[2], g_strerror (saved_errno));
      return bp_ctl_report_error (ctl, command, error);
    }

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  if (batch_text != NULL)
    g_variant_builder_add (&options, "{sv}", "batch-size", g_variant_new_uint32 ((guint32) batch_size));
  reply = call_with_fd (ctl, backend->path, "UpsertFromFd",
                        g_variant_new ("(sha{sv})", args[1], 0, &options), "(t)", fd, &error);
  close (fd);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  g_variant_get (reply, "(t)", &points);

  if (ctl->json)
    {
      JsonObject *object = json_object_new ();

      json_object_set_string_member (object, "collection", args[1]);
      json_object_set_int_member (object, "points", (gint64) points);
      print_json_object (object);
    }
  else
    {
      g_autofree char *name = bp_ctl_sanitize (args[1]);

      g_print (g_dngettext (GETTEXT_PACKAGE, "%llu point upserted into “%s”.\n",
                            "%llu points upserted into “%s”.\n", (gulong) points),
               (unsigned long long) points, name);
    }
  return BP_CTL_EXIT_OK;
}

static GVariant *
parse_vector (const char  *text,
              GError     **error)
{
  g_auto(GStrv) parts = g_strsplit (text, ",", -1);
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("ad"));
  for (guint i = 0; parts[i] != NULL; i++)
    {
      char *end = NULL;
      const char *part = g_strstrip (parts[i]);
      double d = g_ascii_strtod (part, &end);

      if (*part == '\0' || end == NULL || *end != '\0' || !isfinite (d))
        {
          g_variant_builder_clear (&builder);
          bp_ctl_set_usage_error (error, _("vector: “%s” is not a finite number"), part);
          return NULL;
        }
      g_variant_builder_add (&builder, "d", d);
    }
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static int
cmd_query (BpCtl              *ctl,
           const BpCtlCommand *command,
           char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) vector = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) hits = NULL;
  g_autofree char *limit_text = NULL;
  g_autofree char *filter = NULL;
  guint64 limit = 0;
  GVariantBuilder options;
  GVariantIter iter;
  const char *id, *payload;
  double score;
  const GOptionEntry entries[] = {
    { "limit", 0, 0, G_OPTION_ARG_STRING, &limit_text,
      N_("Return at most N hits (default 10)"), N_("N") },
    { "filter", 0, 0, G_OPTION_ARG_STRING, &filter,
      N_("Only points matching this Qdrant filter"), N_("JSON") },
    { NULL }
  };

  if (!bp_ctl_parse_command (ctl, command, entries, argv, &args, NULL, &error) ||
      !bp_ctl_check_n_args (args, 3, 3, &error) ||
      (limit_text != NULL && !bp_ctl_parse_uint64 ("--limit", limit_text, G_MAXUINT32, &limit, &error)) ||
      !check_filter (filter, &error))
    return bp_ctl_report_error (ctl, command, error);
  if (limit_text != NULL && limit == 0)
    {
      bp_ctl_set_usage_error (&error, _("--limit must be at least 1"));
      return bp_ctl_report_error (ctl, command, error);
    }
  vector = parse_vector (args[2], &error);
  if (vector == NULL)
    return bp_ctl_report_error (ctl, command, error);

  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_VECTORS_IFACE, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  if (limit_text != NULL)
    g_variant_builder_add (&options, "{sv}", "limit", g_variant_new_uint32 ((guint32) limit));
  if (filter != NULL)
    g_variant_builder_add (&options, "{sv}", "filter", g_variant_new_string (filter));
  reply = bp_ctl_call_full (ctl, backend->path, BP_CTL_VECTORS_IFACE, "Query",
                            g_variant_new ("(s@ada{sv})", args[1], vector, &options), "(a(sds))", NULL,
                            bp_ctl_data_timeout (ctl), &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  hits = g_variant_get_child_value (reply, 0);

  if (ctl->json)
    {
      g_autoptr(JsonNode) root = NULL;
      JsonArray *array = json_array_new ();

      g_variant_iter_init (&iter, hits);
      while (g_variant_iter_next (&iter, "(&sd&s)", &id, &score, &payload))
        {
          JsonObject *hit = json_object_new ();
          JsonNode *payload_node = bp_ctl_json_parse (payload, NULL);

          json_object_set_string_member (hit, "id", id);
          json_object_set_double_member (hit, "score", score);
          /* The payload is JSON text: embed it, or keep the text if broken. */
          json_object_set_member (hit, "payload",
                                  payload_node != NULL ? payload_node : bp_ctl_json_node_new_string (payload));
          json_array_add_object_element (array, hit);
        }
      root = bp_ctl_json_node_new_array (array);
      bp_ctl_json_print (root);
    }
  else
    {
      g_autoptr(BpCtlTable) table = bp_ctl_table_new ();

      bp_ctl_table_add_column (table, _("ID"), BP_CTL_ALIGN_LEFT);
      bp_ctl_table_add_column (table, _("SCORE"), BP_CTL_ALIGN_RIGHT);
      bp_ctl_table_add_column (table, _("PAYLOAD"), BP_CTL_ALIGN_LEFT);
      g_variant_iter_init (&iter, hits);
      while (g_variant_iter_next (&iter, "(&sd&s)", &id, &score, &payload))
        {
          bp_ctl_table_add_cell (table, id);
          bp_ctl_table_add_cellf (table, "%.4f", score);
          bp_ctl_table_add_cell (table, g_str_equal (payload, "null") ? "" : payload);
        }
      bp_ctl_table_print (table, ctl->wide);
    }
  return BP_CTL_EXIT_OK;
}

static int
cmd_count (BpCtl              *ctl,
           const BpCtlCommand *command,
           char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *filter = NULL;
  gboolean estimate = FALSE;
  GVariantBuilder options;
  guint64 count;
  const GOptionEntry entries[] = {
    { "filter", 0, 0, G_OPTION_ARG_STRING, &filter,
      N_("Only count points matching this Qdrant filter"), N_("JSON") },
    { "estimate", 0, 0, G_OPTION_ARG_NONE, &estimate,
      N_("Ask for a faster, approximate count"), NULL },
    { NULL }
  };

  if (!bp_ctl_parse_command (ctl, command, entries, argv, &args, NULL, &error) ||
      !bp_ctl_check_n_args (args, 2, 2, &error) ||
      !check_filter (filter, &error))
    return bp_ctl_report_error (ctl, command, error);
  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_VECTORS_IFACE, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  if (filter != NULL)
    g_variant_builder_add (&options, "{sv}", "filter", g_variant_new_string (filter));
  if (estimate)
    g_variant_builder_add (&options, "{sv}", "exact", g_variant_new_boolean (FALSE));
  reply = bp_ctl_call_full (ctl, backend->path, BP_CTL_VECTORS_IFACE, "Count",
                            g_variant_new ("(sa{sv})", args[1], &options), "(t)", NULL,
                            bp_ctl_data_timeout (ctl), &error);
  if (reply == NULL)
    return bp_ctl_report_error (ctl, command, error);
  g_variant_get (reply, "(t)", &count);

  if (ctl->json)
    {
      JsonObject *object = json_object_new ();

      json_object_set_string_member (object, "collection", args[1]);
      json_object_set_int_member (object, "count", (gint64) count);
      print_json_object (object);
    }
  else
    g_print ("%llu\n", (unsigned long long) count);
  return BP_CTL_EXIT_OK;
}

static int
cmd_scroll (BpCtl              *ctl,
            const BpCtlCommand *command,
            char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *filter = NULL;
  g_autofree char *to_file = NULL;
  gboolean with_vectors = FALSE;
  GVariantBuilder options;
  guint64 points;
  int fd;
  const GOptionEntry entries[] = {
    { "to-file", 0, 0, G_OPTION_ARG_FILENAME, &to_file,
      N_("Write the points into FILE as JSON Lines (required)"), N_("FILE") },
    { "filter", 0, 0, G_OPTION_ARG_STRING, &filter,
      N_("Only points matching this Qdrant filter"), N_("JSON") },
    { "with-vectors", 0, 0, G_OPTION_ARG_NONE, &with_vectors,
      N_("Include the vectors (the file can then be upserted again)"), NULL },
    { NULL }
  };

  if (!bp_ctl_parse_command (ctl, command, entries, argv, &args, NULL, &error) ||
      !bp_ctl_check_n_args (args, 2, 2, &error) ||
      !check_filter (filter, &error))
    return bp_ctl_report_error (ctl, command, error);
  if (to_file == NULL)
    {
      bp_ctl_set_usage_error (&error, _("--to-file is required"));
      return bp_ctl_report_error (ctl, command, error);
    }
  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_VECTORS_IFACE, &error);
  if (backend == NULL)
    return bp_ctl_report_error (ctl, command, error);

  fd = g_open (to_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0)
    {
      int saved_errno = errno;

      g_set_error (&error, BP_CTL_ERROR, BP_CTL_ERROR_FAILED, _("cannot open “%s”: %s"),
                   to_file, g_strerror (saved_errno));
      return bp_ctl_report_error (ctl, command, error);
    }
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  if (filter != NULL)
    g_variant_builder_add (&options, "{sv}", "filter", g_variant_new_string (filter));
  if (with_vectors)
    g_variant_builder_add (&options, "{sv}", "with-vector", g_variant_new_boolean (TRUE));
  /* ScrollToFd replies once everything is written: the file is complete. */
  reply = call_with_fd (ctl, backend->path, "ScrollToFd",
                        g_variant_new ("(sha{sv})", args[1], 0, &options), "(t)", fd, &error);
  close (fd);
  if (reply == NULL)
    {
      g_unlink (to_file);
      return bp_ctl_report_error (ctl, command, error);
    }
  g_variant_get (reply, "(t)", &points);

  if (ctl->json)
    {
      JsonObject *object = json_object_new ();

      json_object_set_string_member (object, "file", to_file);
      json_object_set_int_member (object, "points", (gint64) points);
      print_json_object (object);
    }
  else
    {
      g_autofree char *display = g_filename_display_name (to_file);

      g_print (g_dngettext (GETTEXT_PACKAGE, "%llu point written to %s.\n",
                            "%llu points written to %s.\n", (gulong) points),
               (unsigned long long) points, display);
    }
  return BP_CTL_EXIT_OK;
}

const BpCtlCommand bp_ctl_vectors_commands[] = {
  { "vectors", N_("NAME"), "collections", "",
    N_("List the collections of a vector store"), NULL, cmd_collections },
  { "vectors", N_("NAME"), "create", N_("COLLECTION --size N --distance Cosine|Dot|Euclid|Manhattan"),
    N_("Create a collection"), NULL, cmd_create },
  { "vectors", N_("NAME"), "upsert", N_("COLLECTION FILE.jsonl [--batch-size N]"),
    N_("Upsert the points of a JSON Lines file (“-”: standard input)"),
    N_("One point a line: {\"id\": 1, \"vector\": [0.1, …], \"payload\": {…}}; the id is an unsigned\n"
       "integer or a UUID, the payload optional. The daemon reads the file itself, in batches."),
    cmd_upsert },
  { "vectors", N_("NAME"), "query", N_("COLLECTION V1,V2,… [--limit N] [--filter JSON]"),
    N_("Find the nearest points to a vector"),
    N_("Put a vector that starts with “-” after “--”: query COLLECTION -- -0.5,0.1"), cmd_query },
  { "vectors", N_("NAME"), "count", N_("COLLECTION [--filter JSON] [--estimate]"),
    N_("Count the points of a collection"), NULL, cmd_count },
  { "vectors", N_("NAME"), "scroll", N_("COLLECTION --to-file FILE [--filter JSON] [--with-vectors]"),
    N_("Write every point of a collection into a JSON Lines file"), NULL, cmd_scroll },
  { NULL }
};
