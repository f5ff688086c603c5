/* bp-ctl-stream.c: copy a stream the daemon writes into a file
 *
 * Sql.QueryToFd and Graph.RunToFd reply as soon as the header is known and
 * keep writing afterwards. The CLI passes them the write end of a pipe
 * rather than the file itself, copies the pipe into the file, and so knows
 * when the stream really ended (the daemon closed its copy) and whether its
 * last line was {"end":…} or {"error":…}. All callbacks run on the main
 * context; the copy is asynchronous with a bounded buffer.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>
#include <glib-unix.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "bp-ctl.h"
#include "bp-ctl-json.h"
#include "bp-ctl-stream.h"

#define CHUNK_SIZE (64 * 1024)
/* Enough to hold any sane end or error line. */
#define TAIL_KEEP (64 * 1024)

typedef struct
{
  GInputStream  *input;    /* (owned) */
  GOutputStream *output;   /* (owned) */
  GByteArray    *tail;     /* (owned): the last bytes written */
  guint64        bytes;
} CopyData;

static void
copy_data_free (CopyData *data)
{
  g_clear_object (&data->input);
  g_clear_object (&data->output);
  g_clear_pointer (&data->tail, g_byte_array_unref);
  g_free (data);
}

static void read_next (GTask *task);

static void
output_closed_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_output_stream_close_finish (G_OUTPUT_STREAM (source), result, &error))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_boolean (task, TRUE);
}

static void
keep_tail (CopyData     *data,
           const guint8 *bytes,
           gsize         len)
{
  g_byte_array_append (data->tail, bytes, len);
  if (data->tail->len > 2 * TAIL_KEEP)
    g_byte_array_remove_range (data->tail, 0, data->tail->len - TAIL_KEEP);
}

static void
written_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  read_next (g_steal_pointer (&task));
}

static void
read_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CopyData *data = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source), result, &error);
  gconstpointer bytes;
  gsize len;

  if (chunk == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  bytes = g_bytes_get_data (chunk, &len);
  if (len == 0)
    {
      /* End of stream: the daemon closed its copy of the pipe. */
      g_output_stream_close_async (data->output, G_PRIORITY_DEFAULT, cancellable,
                                   output_closed_cb, g_steal_pointer (&task));
      return;
    }
  data->bytes += len;
  keep_tail (data, bytes, len);
  /* The chunk stays alive on the task until the write finished. */
  g_object_set_data_full (G_OBJECT (task), "chunk", g_bytes_ref (chunk), (GDestroyNotify) g_bytes_unref);
  g_output_stream_write_all_async (data->output, bytes, len, G_PRIORITY_DEFAULT, cancellable,
                                   written_cb, g_steal_pointer (&task));
}

static void
read_next (GTask *task)
{
  CopyData *data = g_task_get_task_data (task);

  g_input_stream_read_bytes_async (data->input, CHUNK_SIZE, G_PRIORITY_DEFAULT, g_task_get_cancellable (task),
                                   read_cb, task);
}

/**
 * bp_ctl_copy_to_file_async:
 * @read_fd: (transfer full): the read end of a pipe the daemon writes
 * @file_fd: (transfer full): the file, open for writing
 *
 * Copies @read_fd into @file_fd until end of file, then closes both.
 */
void
bp_ctl_copy_to_file_async (int                  read_fd,
                           int                  file_fd,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  CopyData *data = g_new0 (CopyData, 1);

  g_task_set_source_tag (task, bp_ctl_copy_to_file_async);
  data->input = g_unix_input_stream_new (read_fd, TRUE);
  data->output = g_unix_output_stream_new (file_fd, TRUE);
  data->tail = g_byte_array_new ();
  g_task_set_task_data (task, data, (GDestroyNotify) copy_data_free);
  read_next (task);
}

/**
 * bp_ctl_copy_to_file_finish:
 * @bytes: (out) (optional): how many bytes were copied
 * @last_line: (out) (optional) (transfer full): the last non-empty line,
 *   or %NULL
 */
gboolean
bp_ctl_copy_to_file_finish (GAsyncResult  *result,
                            guint64       *bytes,
                            char         **last_line,
                            GError       **error)
{
  GTask *task = G_TASK (result);
  CopyData *data = g_task_get_task_data (task);

  g_return_val_if_fail (g_task_get_source_tag (task) == bp_ctl_copy_to_file_async, FALSE);

  if (!g_task_propagate_boolean (task, error))
    return FALSE;
  if (bytes != NULL)
    *bytes = data->bytes;
  if (last_line != NULL && data->tail->len == 0)
    *last_line = NULL;
  else if (last_line != NULL)
    {
      g_autofree char *tail = g_strndup ((const char *) data->tail->data, data->tail->len);
      char *end = tail + strlen (tail);
      char *start;

      while (end > tail && (end[-1] == '\n' || end[-1] == '\r'))
        *--end = '\0';
      start = strrchr (tail, '\n');
      start = start != NULL ? start + 1 : tail;
      *last_line = *start != '\0' ? g_strdup (start) : NULL;
    }
  return TRUE;
}

/**
 * bp_ctl_check_jsonl_end:
 * @last_line: (nullable): the last line of a JSON Lines stream
 * @rows: (out): the rows the end line counts, -1 if it has no count
 *
 * Returns: %TRUE if the stream ended with {"end":…}; %FALSE with the
 *   stream's own error ({"error":{"name","message"}}, as a D-Bus error) or
 *   an error saying the stream was cut short
 */
gboolean
bp_ctl_check_jsonl_end (const char  *last_line,
                        guint64     *rows,
                        GError     **error)
{
  g_autoptr(JsonNode) node = last_line != NULL ? bp_ctl_json_parse (last_line, NULL) : NULL;
  JsonObject *object = node != NULL && JSON_NODE_HOLDS_OBJECT (node) ? json_node_get_object (node) : NULL;
  JsonNode *member;

  *rows = G_MAXUINT64;
  if (object != NULL && (member = json_object_get_member (object, "end")) != NULL)
    {
      if (JSON_NODE_HOLDS_OBJECT (member))
        {
          JsonObject *end = json_node_get_object (member);
          const char *keys[] = { "rows", "records", "points" };

          for (guint i = 0; i < G_N_ELEMENTS (keys); i++)
            if (json_object_has_member (end, keys[i]))
              *rows = (guint64) json_object_get_int_member (end, keys[i]);
        }
      return TRUE;
    }
  if (object != NULL && (member = json_object_get_member (object, "error")) != NULL &&
      JSON_NODE_HOLDS_OBJECT (member))
    {
      JsonObject *e = json_node_get_object (member);
      const char *name = json_object_get_string_member_with_default (e, "name", "Failed");
      const char *message = json_object_get_string_member_with_default (e, "message", "");
      g_autofree char *full = strchr (name, '.') != NULL ? g_strdup (name)
                                                          : g_strconcat (BP_CTL_IFACE_PREFIX "Error.", name, NULL);

      if (!g_dbus_is_interface_name (full))
        g_set_error (error, BP_CTL_ERROR, BP_CTL_ERROR_FAILED, "%s: %s", name, message);
      else
        g_propagate_error (error, g_dbus_error_new_for_dbus_error (full, message));
      return FALSE;
    }
  g_set_error_literal (error, BP_CTL_ERROR, BP_CTL_ERROR_FAILED,
                       _("the stream ended without its end line; the file is incomplete"));
  return FALSE;
}

/**
 * bp_ctl_format_for_file:
 *
 * Returns: (nullable): the stream format of --to-file @path, from its
 *   extension: csv or jsonl
 */
const char *
bp_ctl_format_for_file (const char  *path,
                        gboolean     csv_allowed,
                        GError     **error)
{
  if (csv_allowed && g_str_has_suffix (path, ".csv"))
    return "csv";
  if (g_str_has_suffix (path, ".jsonl") || g_str_has_suffix (path, ".ndjson"))
    return "jsonl";
  if (csv_allowed)
    bp_ctl_set_usage_error (error, _("--to-file: “%s” must end in .csv or .jsonl"), path);
  else
    bp_ctl_set_usage_error (error, _("--to-file: “%s” must end in .jsonl"), path);
  return NULL;
}

typedef struct
{
  GMainLoop    *loop;          /* (owned) */
  GCancellable *cancellable;   /* (owned): the copy */
  GVariant     *reply;         /* (owned) (nullable) */
  GError       *call_error;    /* (owned) (nullable) */
  GError       *copy_error;    /* (owned) (nullable) */
  char         *last_line;     /* (owned) (nullable) */
  guint         pending;
} CallToFileData;

static void
call_to_file_data_clear (CallToFileData *data)
{
  g_clear_pointer (&data->loop, g_main_loop_unref);
  g_clear_object (&data->cancellable);
  g_clear_pointer (&data->reply, g_variant_unref);
  g_clear_error (&data->call_error);
  g_clear_error (&data->copy_error);
  g_clear_pointer (&data->last_line, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CallToFileData, call_to_file_data_clear)

static void
call_to_file_step_done (CallToFileData *data)
{
  if (--data->pending == 0)
    g_main_loop_quit (data->loop);
}

/* Main context: the reply to …ToFd, which may come before the rows. */
static void
call_to_file_reply_cb (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  CallToFileData *data = user_data;

  data->reply = g_dbus_connection_call_with_unix_fd_list_finish (G_DBUS_CONNECTION (source), NULL, result,
                                                                 &data->call_error);
  /* A refused call writes nothing: do not wait for an end of file. */
  if (data->reply == NULL)
    g_cancellable_cancel (data->cancellable);
  call_to_file_step_done (data);
}

/* Main context: the daemon closed its end of the pipe. */
static void
call_to_file_copied_cb (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  CallToFileData *data = user_data;

  bp_ctl_copy_to_file_finish (result, NULL, &data->last_line, &data->copy_error);
  call_to_file_step_done (data);
}

/**
 * bp_ctl_call_to_file:
 * @parameters: (transfer floating): the arguments; the fd is handle 0
 * @path: the file to write
 * @jsonl: the stream is JSON Lines and must end with an end line
 *
 * Calls a …ToFd method with the write end of a pipe, copies the pipe into
 * @path until the daemon closes it, and checks how the stream ended. Runs
 * a main loop until then. On failure @path is removed.
 *
 * Returns: (transfer full): the reply
 */
GVariant *
bp_ctl_call_to_file (BpCtl       *ctl,
                     const char  *object_path,
                     const char  *interface,
                     const char  *method,
                     GVariant    *parameters,
                     const char  *reply_type,
                     int          timeout_ms,
                     const char  *path,
                     gboolean     jsonl,
                     GError     **error)
{
  g_auto(CallToFileData) data = { 0 };
  g_autoptr(GVariant) owned_parameters = g_variant_ref_sink (parameters);
  g_autoptr(GUnixFDList) fd_list = NULL;
  GDBusConnection *connection;
  int fds[2];
  int file_fd;
  gint32 handle;
  guint64 rows;

  connection = bp_ctl_get_connection (ctl, error);
  if (connection == NULL)
    return NULL;

  file_fd = g_open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (file_fd < 0)
    {
      int saved_errno = errno;

      g_set_error (error, BP_CTL_ERROR, BP_CTL_ERROR_FAILED, _("cannot open “%s”: %s"),
                   path, g_strerror (saved_errno));
      return NULL;
    }
  if (!g_unix_open_pipe (fds, FD_CLOEXEC, error))
    {
      close (file_fd);
      return NULL;
    }
  fd_list = g_unix_fd_list_new ();
  handle = g_unix_fd_list_append (fd_list, fds[1], error);
  /* Only the daemon may hold the write end, or the copy never sees EOF. */
  close (fds[1]);
  if (handle < 0)
    {
      close (fds[0]);
      close (file_fd);
      g_unlink (path);
      return NULL;
    }
  g_assert (handle == 0);

  data.loop = g_main_loop_new (NULL, FALSE);
  data.cancellable = g_cancellable_new ();
  data.pending = 2;
  bp_ctl_copy_to_file_async (fds[0], file_fd, data.cancellable, call_to_file_copied_cb, &data);
  g_dbus_connection_call_with_unix_fd_list (connection, BP_CTL_BUS_NAME, object_path, interface, method,
                                            owned_parameters, G_VARIANT_TYPE (reply_type),
                                            G_DBUS_CALL_FLAGS_NONE, timeout_ms, fd_list,
                                            NULL, call_to_file_reply_cb, &data);
  g_clear_object (&fd_list);
  g_main_loop_run (data.loop);

  if (data.call_error != NULL || data.copy_error != NULL)
    {
      g_unlink (path);
      g_propagate_error (error, data.call_error != NULL ? g_steal_pointer (&data.call_error)
                                                        : g_steal_pointer (&data.copy_error));
      return NULL;
    }
  if (jsonl && !bp_ctl_check_jsonl_end (data.last_line, &rows, error))
    return NULL;
  return g_steal_pointer (&data.reply);
}
