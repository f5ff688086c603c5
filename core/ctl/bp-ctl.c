/* bp-ctl.c: backplanectl's shared state, option parsing, calls and errors
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "bp-ctl.h"
#include "bp-ctl-params.h"

G_DEFINE_QUARK (bp-ctl-error-quark, bp_ctl_error)

BpCtl *
bp_ctl_new (void)
{
  BpCtl *ctl = g_new0 (BpCtl, 1);

  ctl->timeout_ms = -1;
  return ctl;
}

void
bp_ctl_free (BpCtl *ctl)
{
  if (ctl == NULL)
    return;
  if (ctl->connection != NULL)
    g_dbus_connection_flush_sync (ctl->connection, NULL, NULL);
  g_clear_object (&ctl->connection);
  g_free (ctl->address);
  g_free (ctl);
}

/**
 * bp_ctl_command_title:
 *
 * Returns: (transfer full): the words that name @command on the command
 *   line, e.g. "system processes" or "vectors NAME create"
 */
char *
bp_ctl_command_title (const BpCtlCommand *command)
{
  if (command->group == NULL)
    return g_strdup (command->name);
  if (command->group_args != NULL)
    return g_strdup_printf ("%s %s %s", command->group, _(command->group_args), command->name);
  return g_strdup_printf ("%s %s", command->group, command->name);
}

void
bp_ctl_set_usage_error (GError     **error,
                        const char  *format,
                        ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, BP_CTL_ERROR, BP_CTL_ERROR_USAGE, message);
}

static gboolean
entries_have (const GOptionEntry *entries,
              const char         *long_name)
{
  for (guint i = 0; entries != NULL && entries[i].long_name != NULL; i++)
    if (g_str_equal (entries[i].long_name, long_name))
      return TRUE;
  return FALSE;
}

/* The global options are accepted after the command words too, except
 * where the command has an option of the same name (run --timeout-ms is the
 * program's timeout, not the D-Bus call's). */
static void
add_global_entries (GOptionContext     *context,
                    BpCtl              *ctl,
                    const GOptionEntry *entries)
{
  const GOptionEntry global[] = {
    { "address", 0, 0, G_OPTION_ARG_STRING, &ctl->address,
      N_("Talk to backplaned on the bus at this address instead of the session bus"), N_("ADDRESS") },
    { "json", 0, 0, G_OPTION_ARG_NONE, &ctl->json,
      N_("Print one JSON document instead of a table"), NULL },
    { "wide", 0, 0, G_OPTION_ARG_NONE, &ctl->wide,
      N_("Never shorten long table cells"), NULL },
    { "timeout-ms", 0, 0, G_OPTION_ARG_INT, &ctl->timeout_ms,
      N_("Give up on a D-Bus call after this many milliseconds (0: never)"), N_("MS") },
  };
  GOptionEntry kept[G_N_ELEMENTS (global) + 1] = { { NULL } };
  guint n = 0;

  for (guint i = 0; i < G_N_ELEMENTS (global); i++)
    if (!entries_have (entries, global[i].long_name))
      kept[n++] = global[i];
  g_option_context_add_main_entries (context, kept, GETTEXT_PACKAGE);
}

/**
 * bp_ctl_parse_command:
 * @entries: (nullable): the command's own options
 * @argv: the command line from the command word on
 * @positional: (out): the arguments before a `--`
 * @rest: (out) (optional): the arguments after the first `--`; when %NULL
 *   they are appended to @positional
 *
 * Parses the options of @command and of backplanectl itself (--json,
 * --address … may follow the command). `COMMAND --help` prints the
 * command's help and exits.
 *
 * Returns: %FALSE with a %BP_CTL_ERROR_USAGE error on a bad command line
 */
gboolean
bp_ctl_parse_command (BpCtl               *ctl,
                      const BpCtlCommand  *command,
                      const GOptionEntry  *entries,
                      char               **argv,
                      GStrv               *positional,
                      GStrv               *rest,
                      GError             **error)
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *title = bp_ctl_command_title (command);
  g_autofree char *parameter = g_strdup_printf ("%s %s", title, _(command->synopsis));
  g_auto(GStrv) args = g_strdupv (argv);
  g_autoptr(GPtrArray) before = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GPtrArray) after = g_ptr_array_new_with_free_func (g_free);
  gboolean seen_separator = FALSE;

  context = g_option_context_new (parameter);
  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_set_summary (context, _(command->summary));
  if (command->description != NULL && command->typed_values)
    {
      g_autofree char *description = g_strdup_printf ("%s\n\n%s", _(command->description),
                                                       _(BP_CTL_PARAMS_HELP));

      g_option_context_set_description (context, description);
    }
  else if (command->description != NULL)
    g_option_context_set_description (context, _(command->description));
  else if (command->typed_values)
    g_option_context_set_description (context, _(BP_CTL_PARAMS_HELP));
  if (entries != NULL)
    g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  add_global_entries (context, ctl, entries);

  if (!g_option_context_parse_strv (context, &args, &local_error))
    {
      bp_ctl_set_usage_error (error, "%s", local_error->message);
      return FALSE;
    }
  if (ctl->timeout_ms < -1)
    {
      bp_ctl_set_usage_error (error, _("--timeout-ms must not be negative"));
      return FALSE;
    }

  for (guint i = 1; args[i] != NULL; i++)
    {
      if (!seen_separator && g_str_equal (args[i], "--"))
        seen_separator = TRUE;
      else if (seen_separator && rest != NULL)
        g_ptr_array_add (after, g_strdup (args[i]));
      else
        g_ptr_array_add (before, g_strdup (args[i]));
    }
  g_ptr_array_add (before, NULL);
  *positional = (GStrv) g_ptr_array_steal (before, NULL);
  if (rest != NULL)
    {
      g_ptr_array_add (after, NULL);
      *rest = (GStrv) g_ptr_array_steal (after, NULL);
    }
  return TRUE;
}

/**
 * bp_ctl_check_n_args:
 *
 * Checks that @args has @min to @max elements; the error says which
 * argument is missing or what is too much.
 */
gboolean
bp_ctl_check_n_args (GStrv     args,
                     guint     min,
                     guint     max,
                     GError  **error)
{
  guint n = g_strv_length (args);

  if (n < min)
    {
      bp_ctl_set_usage_error (error, _("missing arguments"));
      return FALSE;
    }
  if (n > max)
    {
      bp_ctl_set_usage_error (error, _("unexpected argument “%s”"), args[max]);
      return FALSE;
    }
  return TRUE;
}

gboolean
bp_ctl_parse_uint64 (const char  *what,
                     const char  *text,
                     guint64      max,
                     guint64     *out,
                     GError     **error)
{
  if (!g_ascii_string_to_unsigned (text, 10, 0, max, out, NULL))
    {
      bp_ctl_set_usage_error (error, _("%s: “%s” is not a number from 0 to %llu"),
                              what, text, (unsigned long long) max);
      return FALSE;
    }
  return TRUE;
}

/* Remote errors are shown by the last element of their D-Bus name and their
 * message: "CircuitOpen: breaker open; retry-after-ms=500". */
static int
report_dbus_error (const GError *error)
{
  g_autofree char *remote = g_dbus_error_get_remote_error (error);
  g_autoptr(GError) copy = g_error_copy (error);
  const char *short_name;

  if (remote == NULL)
    return -1;
  if (g_str_equal (remote, "org.freedesktop.DBus.Error.ServiceUnknown") ||
      g_str_equal (remote, "org.freedesktop.DBus.Error.NameHasNoOwner"))
    {
      g_printerr ("backplanectl: %s\n", _("backplaned is not running on this bus"));
      return BP_CTL_EXIT_NO_DAEMON;
    }
  g_dbus_error_strip_remote_error (copy);
  short_name = strrchr (remote, '.');
  short_name = short_name != NULL ? short_name + 1 : remote;
  g_printerr ("backplanectl: %s: %s\n", short_name, copy->message);
  return BP_CTL_EXIT_FAILED;
}

/**
 * bp_ctl_report_error:
 * @command: (nullable): the command, for the usage line of usage errors
 *
 * Prints @error on stderr the way backplanectl shows errors.
 *
 * Returns: the exit status that goes with @error
 */
int
bp_ctl_report_error (BpCtl              *ctl,
                     const BpCtlCommand *command,
                     const GError       *error)
{
  int status;

  if (error->domain == BP_CTL_ERROR)
    {
      g_printerr ("backplanectl: %s\n", error->message);
      switch ((BpCtlError) error->code)
        {
        case BP_CTL_ERROR_USAGE:
          if (command != NULL)
            {
              g_autofree char *title = bp_ctl_command_title (command);

              g_printerr (_("Usage: backplanectl %s %s\n"), title, _(command->synopsis));
              g_printerr (_("Run “backplanectl %s --help” for more information.\n"), title);
            }
          else
            g_printerr (_("Usage: backplanectl [OPTION…] COMMAND [ARGUMENT…]\n"
                          "Run “backplanectl --help” to list the commands.\n"));
          return BP_CTL_EXIT_USAGE;
        case BP_CTL_ERROR_NO_DAEMON:
          return BP_CTL_EXIT_NO_DAEMON;
        case BP_CTL_ERROR_NO_BACKEND:
          return BP_CTL_EXIT_NO_BACKEND;
        case BP_CTL_ERROR_FAILED:
        default:
          return BP_CTL_EXIT_FAILED;
        }
    }

  status = report_dbus_error (error);
  if (status >= 0)
    return status;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    g_printerr ("backplanectl: %s\n", _("Timeout: backplaned did not answer in time (see --timeout-ms)"));
  else
    g_printerr ("backplanectl: %s\n", error->message);
  return BP_CTL_EXIT_FAILED;
}

/**
 * bp_ctl_get_connection:
 *
 * Returns: (transfer none): the bus connection, opened on first use
 */
GDBusConnection *
bp_ctl_get_connection (BpCtl   *ctl,
                       GError **error)
{
  g_autoptr(GError) local_error = NULL;

  if (ctl->connection != NULL)
    return ctl->connection;

  if (ctl->address != NULL)
    ctl->connection = g_dbus_connection_new_for_address_sync (ctl->address,
                                                              G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                              G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                              NULL, NULL, &local_error);
  else
    ctl->connection = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &local_error);

  if (ctl->connection == NULL)
    {
      g_set_error (error, BP_CTL_ERROR, BP_CTL_ERROR_NO_DAEMON,
                   _("cannot connect to the bus: %s"), local_error->message);
      return NULL;
    }
  /* The shared session connection would otherwise exit(1) when it closes. */
  g_dbus_connection_set_exit_on_close (ctl->connection, FALSE);
  return ctl->connection;
}

/* Calls about the daemon itself: --timeout-ms, else GDBus' default (25 s). */
int
bp_ctl_control_timeout (BpCtl *ctl)
{
  if (ctl->timeout_ms < 0)
    return -1;
  return ctl->timeout_ms == 0 ? G_MAXINT : ctl->timeout_ms;
}

/* Calls that do real work (queries, replays, uploads): --timeout-ms, else
 * none — the daemon's own timeouts and Ctrl-C (which makes the daemon cancel
 * the call because its caller vanished) bound them. */
int
bp_ctl_data_timeout (BpCtl *ctl)
{
  if (ctl->timeout_ms <= 0)
    return G_MAXINT;
  return ctl->timeout_ms;
}

/* For calls whose server-side timeout is --timeout-ms (the daemon cancels
 * the statement itself): the D-Bus call waits a little longer so that the
 * daemon's Timeout error, not ours, is what the user sees. */
#define CALL_GRACE_MS 5000

int
bp_ctl_timeout_with_grace (BpCtl *ctl)
{
  if (ctl->timeout_ms <= 0)
    return G_MAXINT;
  return ctl->timeout_ms > G_MAXINT - CALL_GRACE_MS ? G_MAXINT : ctl->timeout_ms + CALL_GRACE_MS;
}

GVariant *
bp_ctl_call_full (BpCtl        *ctl,
                  const char   *path,
                  const char   *interface,
                  const char   *method,
                  GVariant     *parameters,
                  const char   *reply_type,
                  GUnixFDList  *fd_list,
                  int           timeout_ms,
                  GError      **error)
{
  GDBusConnection *connection = bp_ctl_get_connection (ctl, error);
  const GVariantType *type = reply_type != NULL ? G_VARIANT_TYPE (reply_type) : NULL;

  if (connection == NULL)
    {
      if (parameters != NULL)
        g_variant_unref (g_variant_ref_sink (parameters));
      return NULL;
    }
  if (fd_list != NULL)
    return g_dbus_connection_call_with_unix_fd_list_sync (connection, BP_CTL_BUS_NAME, path, interface, method,
                                                          parameters, type, G_DBUS_CALL_FLAGS_NONE, timeout_ms,
                                                          fd_list, NULL, NULL, error);
  return g_dbus_connection_call_sync (connection, BP_CTL_BUS_NAME, path, interface, method,
                                      parameters, type, G_DBUS_CALL_FLAGS_NONE, timeout_ms, NULL, error);
}

/**
 * bp_ctl_call:
 * @parameters: (nullable) (transfer floating): the arguments
 *
 * A call with the control timeout and no fds.
 *
 * Returns: (transfer full): the reply
 */
GVariant *
bp_ctl_call (BpCtl       *ctl,
             const char  *path,
             const char  *interface,
             const char  *method,
             GVariant    *parameters,
             const char  *reply_type,
             GError     **error)
{
  return bp_ctl_call_full (ctl, path, interface, method, parameters, reply_type, NULL,
                           bp_ctl_control_timeout (ctl), error);
}

/**
 * bp_ctl_get_all:
 *
 * Returns: (transfer full): the a{sv} of every property of @interface
 */
GVariant *
bp_ctl_get_all (BpCtl       *ctl,
                const char  *path,
                const char  *interface,
                GError     **error)
{
  g_autoptr(GVariant) reply = bp_ctl_call (ctl, path, "org.freedesktop.DBus.Properties", "GetAll",
                                           g_variant_new ("(s)", interface), "(a{sv})", error);

  if (reply == NULL)
    return NULL;
  return g_variant_get_child_value (reply, 0);
}

/**
 * bp_ctl_get_daemon_owner:
 *
 * The unique name of the daemon, for signal subscriptions that must only
 * accept signals the daemon sent.
 *
 * Returns: (transfer full): the unique name owning org.backplane.Backplane1
 */
char *
bp_ctl_get_daemon_owner (BpCtl   *ctl,
                         GError **error)
{
  GDBusConnection *connection = bp_ctl_get_connection (ctl, error);
  g_autoptr(GVariant) reply = NULL;
  char *owner;

  if (connection == NULL)
    return NULL;
  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                       "org.freedesktop.DBus", "GetNameOwner",
                                       g_variant_new ("(s)", BP_CTL_BUS_NAME), G_VARIANT_TYPE ("(s)"),
                                       G_DBUS_CALL_FLAGS_NONE, bp_ctl_control_timeout (ctl), NULL, error);
  if (reply == NULL)
    return NULL;
  g_variant_get (reply, "(s)", &owner);
  return owner;
}

void
bp_ctl_backend_free (BpCtlBackend *backend)
{
  if (backend == NULL)
    return;
  g_free (backend->path);
  g_free (backend->name);
  g_free (backend->type);
  g_free (backend->state);
  g_free (backend->reason);
  g_clear_pointer (&backend->properties, g_variant_unref);
  g_strfreev (backend->interfaces);
  g_free (backend);
}

static char *
dup_string_property (GVariant   *properties,
                     const char *name)
{
  const char *value = NULL;

  if (!g_variant_lookup (properties, name, "&s", &value))
    value = "";
  return g_strdup (value);
}

/* @ifaces is the a{sa{sv}} of one object; NULL unless it is a backend. */
static BpCtlBackend *
backend_new (const char *path,
             GVariant   *ifaces)
{
  g_autoptr(GVariant) properties = g_variant_lookup_value (ifaces, BP_CTL_BACKEND_IFACE, G_VARIANT_TYPE_VARDICT);
  g_autoptr(GPtrArray) names = g_ptr_array_new ();
  BpCtlBackend *backend;
  GVariantIter iter;
  const char *iface;

  if (properties == NULL)
    return NULL;

  backend = g_new0 (BpCtlBackend, 1);
  backend->path = g_strdup (path);
  backend->name = dup_string_property (properties, "Name");
  backend->type = dup_string_property (properties, "Type");
  backend->state = dup_string_property (properties, "State");
  backend->reason = dup_string_property (properties, "StateReason");
  backend->properties = g_steal_pointer (&properties);

  g_variant_iter_init (&iter, ifaces);
  while (g_variant_iter_next (&iter, "{&s@a{sv}}", &iface, NULL))
    g_ptr_array_add (names, g_strdup (iface));
  g_ptr_array_add (names, NULL);
  backend->interfaces = (GStrv) g_ptr_array_steal (names, NULL);
  return backend;
}

static int
compare_backend_path (gconstpointer a,
                      gconstpointer b)
{
  const BpCtlBackend *ba = *(const BpCtlBackend * const *) a;
  const BpCtlBackend *bb = *(const BpCtlBackend * const *) b;

  return strcmp (ba->path, bb->path);
}

/**
 * bp_ctl_list_backends:
 *
 * Every backend, in configuration order (Manager.Backends), from one
 * GetManagedObjects call.
 *
 * Returns: (transfer full) (element-type BpCtlBackend): the backends
 */
GPtrArray *
bp_ctl_list_backends (BpCtl   *ctl,
                      GError **error)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) objects = NULL;
  g_autoptr(GVariant) order_reply = NULL;
  g_autoptr(GPtrArray) backends = g_ptr_array_new_with_free_func ((GDestroyNotify) bp_ctl_backend_free);
  g_autoptr(GPtrArray) unordered = g_ptr_array_new_with_free_func ((GDestroyNotify) bp_ctl_backend_free);
  g_autoptr(GHashTable) listed = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GVariantIter iter;
  const char *path;
  GVariant *ifaces;

  reply = bp_ctl_call (ctl, BP_CTL_ROOT_PATH, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                       NULL, "(a{oa{sa{sv}}})", error);
  if (reply == NULL)
    return NULL;
  objects = g_variant_get_child_value (reply, 0);

  /* The configuration order; without it (an older daemon) the path order. */
  order_reply = bp_ctl_call (ctl, BP_CTL_ROOT_PATH, "org.freedesktop.DBus.Properties", "Get",
                             g_variant_new ("(ss)", BP_CTL_MANAGER_IFACE, "Backends"), "(v)", NULL);
  if (order_reply != NULL)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (order_reply, 0);
      g_autoptr(GVariant) order = g_variant_get_variant (boxed);

      if (g_variant_is_of_type (order, G_VARIANT_TYPE_OBJECT_PATH_ARRAY))
        {
          g_variant_iter_init (&iter, order);
          while (g_variant_iter_next (&iter, "&o", &path))
            {
              g_autoptr(GVariant) found = g_variant_lookup_value (objects, path, G_VARIANT_TYPE ("a{sa{sv}}"));
              BpCtlBackend *backend = found != NULL ? backend_new (path, found) : NULL;

              if (backend != NULL && !g_hash_table_contains (listed, path))
                {
                  g_ptr_array_add (backends, backend);
                  g_hash_table_add (listed, g_strdup (path));
                }
              else
                bp_ctl_backend_free (backend);
            }
        }
    }

  g_variant_iter_init (&iter, objects);
  while (g_variant_iter_next (&iter, "{&o@a{sa{sv}}}", &path, &ifaces))
    {
      g_autoptr(GVariant) owned = ifaces;
      BpCtlBackend *backend;

      if (g_hash_table_contains (listed, path))
        continue;
      backend = backend_new (path, owned);
      if (backend != NULL)
        g_ptr_array_add (unordered, backend);
    }
  g_ptr_array_sort (unordered, compare_backend_path);
  g_ptr_array_extend_and_steal (backends, g_steal_pointer (&unordered));
  return g_steal_pointer (&backends);
}

gboolean
bp_ctl_backend_has_interface (const BpCtlBackend *backend,
                              const char         *interface)
{
  return g_strv_contains ((const char * const *) backend->interfaces, interface);
}

static BpCtlBackend *
check_interface (BpCtlBackend  *backend,
                 const char    *interface,
                 GError       **error)
{
  g_autoptr(BpCtlBackend) owned = backend;
  const char *short_name;

  if (interface == NULL || bp_ctl_backend_has_interface (owned, interface))
    return g_steal_pointer (&owned);

  if (g_str_equal (owned->state, "unavailable"))
    {
      g_set_error (error, BP_CTL_ERROR, BP_CTL_ERROR_FAILED,
                   _("backend “%s” is unavailable: %s"), owned->name, owned->reason);
      return NULL;
    }
  short_name = strrchr (interface, '.') + 1;
  g_set_error (error, BP_CTL_ERROR, BP_CTL_ERROR_NO_BACKEND,
               _("backend “%s” is of type %s and has no %s interface"),
               owned->name, owned->type, short_name);
  return NULL;
}

/**
 * bp_ctl_find_backend:
 * @interface: (nullable): an interface the backend must export
 *
 * Returns: (transfer full): the backend named @name
 */
BpCtlBackend *
bp_ctl_find_backend (BpCtl       *ctl,
                     const char  *name,
                     const char  *interface,
                     GError     **error)
{
  g_autoptr(GPtrArray) backends = bp_ctl_list_backends (ctl, error);

  if (backends == NULL)
    return NULL;
  for (guint i = 0; i < backends->len; i++)
    {
      BpCtlBackend *backend = g_ptr_array_index (backends, i);

      if (g_str_equal (backend->name, name))
        return check_interface (g_ptr_array_steal_index (backends, i), interface, error);
    }
  g_set_error (error, BP_CTL_ERROR, BP_CTL_ERROR_NO_BACKEND, _("no backend named “%s”"), name);
  return NULL;
}

/**
 * bp_ctl_find_backend_of_type:
 *
 * Returns: (transfer full): the first backend (in configuration order) of
 *   type @type
 */
BpCtlBackend *
bp_ctl_find_backend_of_type (BpCtl       *ctl,
                             const char  *type,
                             const char  *interface,
                             GError     **error)
{
  g_autoptr(GPtrArray) backends = bp_ctl_list_backends (ctl, error);

  if (backends == NULL)
    return NULL;
  for (guint i = 0; i < backends->len; i++)
    {
      BpCtlBackend *backend = g_ptr_array_index (backends, i);

      if (g_str_equal (backend->type, type))
        return check_interface (g_ptr_array_steal_index (backends, i), interface, error);
    }
  g_set_error (error, BP_CTL_ERROR, BP_CTL_ERROR_NO_BACKEND, _("no backend of type %s"), type);
  return NULL;
}
