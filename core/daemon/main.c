/* main.c: backplaned
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <signal.h>

#include "bp-daemon.h"

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpDaemon) daemon = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *address = NULL;
  gboolean replace = FALSE;
  gboolean version = FALSE;
  gboolean verbose = FALSE;
  GOptionEntry entries[] = {
    { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
      N_("Read this configuration file instead of ~/.config/backplane/backplane.conf"), N_("FILE") },
    { "address", 'a', 0, G_OPTION_ARG_STRING, &address,
      N_("Serve on the bus at this address instead of the session bus"), N_("ADDRESS") },
    { "replace", 'r', 0, G_OPTION_ARG_NONE, &replace,
      N_("Take the bus name over from a running backplaned"), NULL },
    { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
      N_("Log debug messages of every domain"), NULL },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version,
      N_("Print the version and exit"), NULL },
    { NULL }
  };

  /* A client closing its end of a data-plane fd must be an EPIPE error on
   * the write, not the end of the daemon. */
  signal (SIGPIPE, SIG_IGN);

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  g_set_prgname ("backplaned");
  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
                                _("Backplane host daemon: databases, graphs, vectors and processes for desktop applications, over D-Bus."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("backplaned: %s\n", error->message);
      return 2;
    }
  if (version)
    {
      g_print ("backplaned %s\n", PACKAGE_VERSION);
      return 0;
    }
  if (verbose)
    g_setenv ("G_MESSAGES_DEBUG", "all", TRUE);

  daemon = bp_daemon_new (config_path, address, replace);
  return bp_daemon_run (daemon);
}
