/* bp-ctl-main.c: backplanectl, the command-line client of backplaned
 *
 * backplanectl [--address ADDR] [--json] [--wide] [--timeout-ms MS] COMMAND …
 * The global options may also follow the command. Each command lives in a
 * table of its file (bp-ctl-cmd-*.c); --help is generated from the tables.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "bp-ctl.h"
#include "bp-ctl-format.h"

#define SYNOPSIS_COLUMN 40

static const BpCtlCommand *const command_tables[] = {
  bp_ctl_daemon_commands,
  bp_ctl_system_commands,
  bp_ctl_dlq_commands,
  bp_ctl_shell_commands,
  bp_ctl_sql_commands,
  bp_ctl_graph_commands,
  bp_ctl_vectors_commands,
};

static void
append_command_line (GString            *out,
                     const BpCtlCommand *command)
{
  g_autofree char *title = bp_ctl_command_title (command);
  g_autofree char *synopsis = NULL;
  guint width;

  if (command->synopsis[0] != '\0')
    synopsis = g_strdup_printf ("  %s %s", title, _(command->synopsis));
  else
    synopsis = g_strdup_printf ("  %s", title);
  width = bp_ctl_display_width (synopsis);
  g_string_append (out, synopsis);
  if (width + 2 > SYNOPSIS_COLUMN)
    {
      g_string_append_c (out, '\n');
      width = 0;
    }
  for (guint i = width; i < SYNOPSIS_COLUMN; i++)
    g_string_append_c (out, ' ');
  g_string_append (out, _(command->summary));
  g_string_append_c (out, '\n');
}

/* The command list of --help; the README quotes it. */
static char *
commands_help (const char *group)
{
  GString *out = g_string_new (NULL);

  if (group == NULL)
    g_string_append (out, _("Commands:\n"));
  for (guint t = 0; t < G_N_ELEMENTS (command_tables); t++)
    for (const BpCtlCommand *c = command_tables[t]; c->name != NULL; c++)
      if (group == NULL || g_strcmp0 (c->group, group) == 0)
        append_command_line (out, c);
  if (group == NULL)
    g_string_append (out,
                     _("\n"
                       "Run “backplanectl COMMAND --help” for the options of a command.\n"
                       "\n"
                       "Tables show SQL NULL and other absent values as empty cells; --json\n"
                       "shows them as null. Cells wider than 60 columns are cut with “…”\n"
                       "unless --wide is given.\n"
                       "\n"
                       "Exit status: 0 success, 1 the daemon or a backend reported an error,\n"
                       "2 bad command line, 3 backplaned is not running (or no bus),\n"
                       "4 no such backend or it lacks the needed interface. run exits with\n"
                       "the program's status, or 128 + the signal that ended it.\n"));
  return g_string_free (out, FALSE);
}

static GOptionContext *
main_context (BpCtl    *ctl,
              gboolean *version)
{
  g_autofree char *description = commands_help (NULL);
  GOptionContext *context = g_option_context_new (_("COMMAND [ARGUMENT…]"));
  const GOptionEntry entries[] = {
    { "address", 0, 0, G_OPTION_ARG_STRING, &ctl->address,
      N_("Talk to backplaned on the bus at this address instead of the session bus"), N_("ADDRESS") },
    { "json", 0, 0, G_OPTION_ARG_NONE, &ctl->json,
      N_("Print one JSON document instead of a table"), NULL },
    { "wide", 0, 0, G_OPTION_ARG_NONE, &ctl->wide,
      N_("Never shorten long table cells"), NULL },
    { "timeout-ms", 0, 0, G_OPTION_ARG_INT, &ctl->timeout_ms,
      N_("Give up on a D-Bus call after this many milliseconds (0: never)"), N_("MS") },
    { "version", 0, 0, G_OPTION_ARG_NONE, version,
      N_("Print the version and exit"), NULL },
    { NULL }
  };

  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_summary (context,
                                _("Control backplaned, the Backplane host daemon, over D-Bus."));
  g_option_context_set_description (context, description);
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  /* Stop at the command word: what follows belongs to the command. */
  g_option_context_set_strict_posix (context, TRUE);
  return context;
}

static int
group_usage (const char *group,
             const char *message)
{
  g_autofree char *list = commands_help (group);

  g_printerr ("backplanectl: %s\n%s%s", message, _("Usage:\n"), list);
  return BP_CTL_EXIT_USAGE;
}

static gboolean
is_help (const char *arg)
{
  return arg != NULL && (g_str_equal (arg, "--help") || g_str_equal (arg, "-h"));
}

static int
dispatch (BpCtl  *ctl,
          char  **argv)
{
  const char *word = argv[0];
  gboolean is_group = FALSE;
  guint argc = g_strv_length (argv);

  for (guint t = 0; t < G_N_ELEMENTS (command_tables); t++)
    for (const BpCtlCommand *c = command_tables[t]; c->name != NULL; c++)
      {
        guint sub;
        g_autoptr(GPtrArray) sub_argv = NULL;

        if (c->group == NULL)
          {
            if (g_str_equal (c->name, word))
              return c->func (ctl, c, argv);
            continue;
          }
        if (!g_str_equal (c->group, word))
          continue;
        is_group = TRUE;
        /* "system disks …" or, with group_args, "vectors NAME create …" */
        sub = c->group_args != NULL ? 2 : 1;
        if (argc <= sub || !g_str_equal (argv[sub], c->name))
          continue;
        /* The command sees: its word, the group arguments, the rest. */
        sub_argv = g_ptr_array_new ();
        g_ptr_array_add (sub_argv, argv[sub]);
        for (guint i = 1; i < sub; i++)
          g_ptr_array_add (sub_argv, argv[i]);
        for (guint i = sub + 1; i < argc; i++)
          g_ptr_array_add (sub_argv, argv[i]);
        g_ptr_array_add (sub_argv, NULL);
        return c->func (ctl, c, (char **) sub_argv->pdata);
      }

  if (is_group)
    {
      g_autofree char *message = NULL;

      if (is_help (argv[1]))
        {
          g_autofree char *list = commands_help (word);

          g_print ("%s%s", _("Usage:\n"), list);
          return BP_CTL_EXIT_OK;
        }
      message = g_strdup_printf (_("%s: missing or unknown sub-command"), word);
      return group_usage (word, message);
    }

  {
    g_autoptr(GError) error = NULL;

    bp_ctl_set_usage_error (&error, _("unknown command “%s”"), word);
    return bp_ctl_report_error (ctl, NULL, error);
  }
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(BpCtl) ctl = bp_ctl_new ();
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) args = NULL;
  gboolean version = FALSE;

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);
  g_set_prgname ("backplanectl");

  context = main_context (ctl, &version);
  args = g_strdupv (argv);
  if (!g_option_context_parse_strv (context, &args, &error))
    {
      g_autoptr(GError) usage = NULL;

      bp_ctl_set_usage_error (&usage, "%s", error->message);
      return bp_ctl_report_error (ctl, NULL, usage);
    }
  if (version)
    {
      g_print ("backplanectl %s\n", PACKAGE_VERSION);
      return BP_CTL_EXIT_OK;
    }
  if (ctl->timeout_ms < -1)
    {
      g_autoptr(GError) usage = NULL;

      bp_ctl_set_usage_error (&usage, _("--timeout-ms must not be negative"));
      return bp_ctl_report_error (ctl, NULL, usage);
    }
  if (args[1] == NULL)
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);

      g_printerr ("%s", help);
      return BP_CTL_EXIT_USAGE;
    }
  if (g_str_equal (args[1], "help"))
    {
      g_autofree char *help = g_option_context_get_help (context, TRUE, NULL);

      g_print ("%s", help);
      return BP_CTL_EXIT_OK;
    }
  return dispatch (ctl, args + 1);
}
