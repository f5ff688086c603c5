/* bp-ctl-cmd-shell.c: run (org.backplane.Backplane1.Shell, Process)
 *
 * run NAME [--cwd DIR] [--env K=V]… [--timeout-ms MS] -- PROGRAM [ARG…]
 *
 * Shell.Spawn gets backplanectl's own stdin, stdout and stderr as `h`
 * options: the child reads and writes the terminal (or the pipes) directly
 * and the daemon never touches those bytes. A standard fd that is closed is
 * not passed; that stream then arrives as Output signals and is printed.
 * SIGINT, SIGTERM and SIGHUP are forwarded with Process.Kill (a second
 * Ctrl-C sends SIGKILL); Process.Wait gives the exit status, which becomes
 * backplanectl's: the exit code, or 128 + the terminating signal.
 *
 * Everything after the Spawn call runs on the main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bp-ctl.h"
#include "bp-ctl-format.h"

typedef struct
{
  BpCtl           *ctl;             /* (unowned) */
  GDBusConnection *connection;      /* (unowned) */
  GMainLoop       *loop;            /* (owned) */
  char            *process_path;    /* (owned) (nullable): known once Spawn replied */
  guint            output_id;
  guint            signal_ids[3];
  int              pending_signal;  /* forward once the process exists; 0 none */
  guint            n_interrupts;
  int              status;
} RunData;

static void
run_data_clear (RunData *data)
{
  if (data->output_id != 0)
    g_dbus_connection_signal_unsubscribe (data->connection, data->output_id);
  for (guint i = 0; i < G_N_ELEMENTS (data->signal_ids); i++)
    g_clear_handle_id (&data->signal_ids[i], g_source_remove);
  g_clear_pointer (&data->loop, g_main_loop_unref);
  g_clear_pointer (&data->process_path, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (RunData, run_data_clear)

static gboolean
fd_is_open (int fd)
{
  return fcntl (fd, F_GETFD) != -1;
}

/* Output of a stream that had no fd: only when a standard fd was closed. */
static void
output_cb (GDBusConnection *connection,
           const char      *sender,
           const char      *object_path,
           const char      *interface,
           const char      *signal,
           GVariant        *parameters,
           gpointer         user_data)
{
  RunData *data = user_data;
  g_autoptr(GVariant) lines = NULL;
  GVariantIter iter;
  guint32 stream;
  const char *line;

  if (data->process_path == NULL || !g_str_equal (object_path, data->process_path) ||
      !g_variant_is_of_type (parameters, G_VARIANT_TYPE ("(a(us))")))
    return;
  lines = g_variant_get_child_value (parameters, 0);
  g_variant_iter_init (&iter, lines);
  while (g_variant_iter_next (&iter, "(u&s)", &stream, &line))
    {
      FILE *out = stream == 2 ? stderr : stdout;

      fputs (line, out);
      fputc ('\n', out);
    }
  fflush (stdout);
}

static void
closed_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  RunData *data = user_data;
  g_autoptr(GVariant) reply = NULL;

  /* The process has been reaped; a failed Close changes nothing. */
  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, NULL);
  g_main_loop_quit (data->loop);
}

static void
close_process (RunData *data)
{
  g_dbus_connection_call (data->connection, BP_CTL_BUS_NAME, data->process_path, BP_CTL_PROCESS_IFACE, "Close",
                          NULL, G_VARIANT_TYPE ("()"), G_DBUS_CALL_FLAGS_NONE,
                          bp_ctl_control_timeout (data->ctl), NULL, closed_cb, data);
}

static void
waited_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  RunData *data = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  gint32 exit_code, term_signal;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    data->status = bp_ctl_report_error (data->ctl, NULL, error);
  else
    {
      g_variant_get (reply, "(ii)", &exit_code, &term_signal);
      data->status = term_signal > 0 ? 128 + term_signal : exit_code;
    }
  close_process (data);
}

static void
killed_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  RunData *data = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    bp_ctl_report_error (data->ctl, NULL, error);
}

static void
send_kill (RunData *data,
           int      signum)
{
  g_dbus_connection_call (data->connection, BP_CTL_BUS_NAME, data->process_path, BP_CTL_PROCESS_IFACE, "Kill",
                          g_variant_new ("(i)", signum), G_VARIANT_TYPE ("()"), G_DBUS_CALL_FLAGS_NONE,
                          bp_ctl_control_timeout (data->ctl), NULL, killed_cb, data);
}

static void
spawned_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  RunData *data = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_with_unix_fd_list_finish (G_DBUS_CONNECTION (source), NULL, result, &error);
  if (reply == NULL)
    {
      data->status = bp_ctl_report_error (data->ctl, NULL, error);
      g_main_loop_quit (data->loop);
      return;
    }
  g_variant_get (reply, "(o)", &data->process_path);
  if (data->pending_signal != 0)
    send_kill (data, data->pending_signal);
  /* No timeout: the program runs as long as it runs (the backend's own
   * timeout-ms and Ctrl-C bound it). */
  g_dbus_connection_call (data->connection, BP_CTL_BUS_NAME, data->process_path, BP_CTL_PROCESS_IFACE, "Wait",
                          NULL, G_VARIANT_TYPE ("(ii)"), G_DBUS_CALL_FLAGS_NONE, G_MAXINT, NULL,
                          waited_cb, data);
}

static gboolean
forward_signal (RunData *data,
                int      signum)
{
  if (signum == SIGINT && ++data->n_interrupts > 1)
    signum = SIGKILL;
  if (data->process_path != NULL)
    send_kill (data, signum);
  else
    data->pending_signal = signum;
  return G_SOURCE_CONTINUE;
}

static gboolean
sigint_cb (gpointer user_data)
{
  return forward_signal (user_data, SIGINT);
}

static gboolean
sigterm_cb (gpointer user_data)
{
  return forward_signal (user_data, SIGTERM);
}

static gboolean
sighup_cb (gpointer user_data)
{
  return forward_signal (user_data, SIGHUP);
}

static GVariant *
build_env (GStrv     env,
           GError  **error)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{ss}"));
  for (guint i = 0; env[i] != NULL; i++)
    {
      const char *eq = strchr (env[i], '=');
      g_autofree char *name = NULL;

      if (eq == NULL || eq == env[i])
        {
          g_variant_builder_clear (&builder);
          bp_ctl_set_usage_error (error, _("--env: “%s” is not NAME=VALUE"), env[i]);
          return NULL;
        }
      name = g_strndup (env[i], eq - env[i]);
      g_variant_builder_add (&builder, "{ss}", name, eq + 1);
    }
  return g_variant_builder_end (&builder);
}

static int
cmd_run (BpCtl              *ctl,
         const BpCtlCommand *command,
         char              **argv)
{
  g_auto(GStrv) args = NULL;
  g_auto(GStrv) rest = NULL;
  g_auto(GStrv) env = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpCtlBackend) backend = NULL;
  g_autoptr(GUnixFDList) fd_list = NULL;
  g_autofree char *cwd = NULL;
  g_autofree char *timeout_text = NULL;
  g_autofree char *owner = NULL;
  g_auto(RunData) data = { 0 };
  gboolean clear_env = FALSE;
  guint64 timeout_ms = 0;
  GVariantBuilder program;
  GVariantBuilder options;
  const char *stream_keys[] = { "stdin", "stdout", "stderr" };
  const GOptionEntry entries[] = {
    { "cwd", 0, 0, G_OPTION_ARG_FILENAME, &cwd,
      N_("Run in this directory"), N_("DIR") },
    { "env", 0, 0, G_OPTION_ARG_STRING_ARRAY, &env,
      N_("Set an environment variable (repeat for more)"), N_("NAME=VALUE") },
    { "clear-env", 0, 0, G_OPTION_ARG_NONE, &clear_env,
      N_("Start from an empty environment instead of the daemon's"), NULL },
    { "timeout-ms", 0, 0, G_OPTION_ARG_STRING, &timeout_text,
      N_("Kill the program after this many milliseconds"), N_("MS") },
    { NULL }
  };

  if (!bp_ctl_parse_command (ctl, command, entries, argv, &args, &rest, &error) ||
      (timeout_text != NULL && !bp_ctl_parse_uint64 ("--timeout-ms", timeout_text, G_MAXUINT32, &timeout_ms, &error)))
    return bp_ctl_report_error (ctl, command, error);
  /* run NAME -- PROGRAM …, or run NAME PROGRAM … when no argument looks
   * like an option. */
  if (args[0] == NULL)
    {
      bp_ctl_set_usage_error (&error, _("missing the backend name"));
      return bp_ctl_report_error (ctl, command, error);
    }
  g_variant_builder_init (&program, G_VARIANT_TYPE_STRING_ARRAY);
  for (guint i = 1; args[i] != NULL; i++)
    g_variant_builder_add (&program, "s", args[i]);
  for (guint i = 0; rest[i] != NULL; i++)
    g_variant_builder_add (&program, "s", rest[i]);
  if (args[1] == NULL && rest[0] == NULL)
    {
      g_variant_builder_clear (&program);
      bp_ctl_set_usage_error (&error, _("missing the program to run"));
      return bp_ctl_report_error (ctl, command, error);
    }

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  if (env != NULL)
    {
      GVariant *env_variant = build_env (env, &error);

      if (env_variant == NULL)
        {
          g_variant_builder_clear (&program);
          g_variant_builder_clear (&options);
          return bp_ctl_report_error (ctl, command, error);
        }
      g_variant_builder_add (&options, "{sv}", "env", env_variant);
    }
  if (cwd != NULL)
    {
      /* The daemon wants an absolute directory; relative means ours. */
      g_autofree char *absolute = g_canonicalize_filename (cwd, NULL);

      g_variant_builder_add (&options, "{sv}", "cwd", g_variant_new_string (absolute));
    }
  if (clear_env)
    g_variant_builder_add (&options, "{sv}", "clear-env", g_variant_new_boolean (TRUE));
  if (timeout_text != NULL)
    g_variant_builder_add (&options, "{sv}", "timeout-ms", g_variant_new_uint32 ((guint32) timeout_ms));

  fd_list = g_unix_fd_list_new ();
  for (int fd = 0; fd < 3; fd++)
    {
      gint32 handle;

      if (!fd_is_open (fd))
        continue;
      handle = g_unix_fd_list_append (fd_list, fd, &error);
      if (handle < 0)
        {
          g_variant_builder_clear (&program);
          g_variant_builder_clear (&options);
          return bp_ctl_report_error (ctl, command, error);
        }
      g_variant_builder_add (&options, "{sv}", stream_keys[fd], g_variant_new_handle (handle));
    }

  backend = bp_ctl_find_backend (ctl, args[0], BP_CTL_SHELL_IFACE, &error);
  if (backend == NULL)
    {
      g_variant_builder_clear (&program);
      g_variant_builder_clear (&options);
      return bp_ctl_report_error (ctl, command, error);
    }
  owner = bp_ctl_get_daemon_owner (ctl, &error);
  if (owner == NULL)
    {
      g_variant_builder_clear (&program);
      g_variant_builder_clear (&options);
      return bp_ctl_report_error (ctl, command, error);
    }

  data.ctl = ctl;
  data.connection = ctl->connection;
  data.loop = g_main_loop_new (NULL, FALSE);
  data.status = BP_CTL_EXIT_FAILED;
  data.output_id = g_dbus_connection_signal_subscribe (data.connection, owner, BP_CTL_PROCESS_IFACE, "Output",
                                                       NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE, output_cb, &data, NULL);
  data.signal_ids[0] = g_unix_signal_add (SIGINT, sigint_cb, &data);
  data.signal_ids[1] = g_unix_signal_add (SIGTERM, sigterm_cb, &data);
  data.signal_ids[2] = g_unix_signal_add (SIGHUP, sighup_cb, &data);
  g_dbus_connection_call_with_unix_fd_list (data.connection, BP_CTL_BUS_NAME, backend->path, BP_CTL_SHELL_IFACE,
                                            "Spawn", g_variant_new ("(asa{sv})", &program, &options),
                                            G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NONE,
                                            bp_ctl_control_timeout (ctl), fd_list, NULL, spawned_cb, &data);
  g_clear_object (&fd_list);
  g_main_loop_run (data.loop);
  return data.status;
}

const BpCtlCommand bp_ctl_shell_commands[] = {
  { NULL, NULL, "run", N_("NAME [--cwd DIR] [--env NAME=VALUE]… [--clear-env] [--timeout-ms MS] -- PROGRAM [ARG…]"),
    N_("Run a program through a shell backend, attached to this terminal"),
    N_("The program is an argv, not a shell command line, and must be on the backend's allow list.\n"
       "It reads and writes this terminal directly. Ctrl-C is forwarded (twice: SIGKILL).\n"
       "The exit status is the program's, or 128 + the signal that ended it."),
    cmd_run },
  { NULL }
};
