/* bp-pg-fd-stream.c: a query's rows streamed into a file descriptor
 *
 * The rows of a single-row-mode stream (bp_pg_connection_stream_async) are
 * framed as JSON Lines or CSV and written to the fd asynchronously; the next
 * batch is pulled from the connection only once the last one was written,
 * so a slow reader slows the server down instead of filling memory.
 *
 * start_async completes as soon as the column header is known (the D-Bus
 * reply goes out then); wait_async completes when the stream ended, the
 * trailer was written and the fd closed: only then may the connection be
 * reused. A reader that closes its end (POLLERR/POLLHUP on the fd, or a
 * failed write) cancels the statement.
 *
 * Main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-pg-fd-stream.h"

#include <gio/gunixoutputstream.h>
#include <glib-unix.h>

#define BATCH_ROWS  256
#define FLUSH_BYTES (64 * 1024)

struct _BpPgFdStream
{
  GObject         parent_instance;

  BpPgConnection *conn;          /* (owned) */
  GOutputStream  *output;        /* (owned) */
  int             fd;            /* owned by output */
  BpPgFormat      format;
  BpPgRowDesc    *desc;          /* (owned) (nullable) */
  GCancellable   *cancellable;   /* (owned): ours, cancels the statement */
  gulong          caller_cancel_id;
  GCancellable   *caller_cancellable;  /* (owned) (nullable) */
  GSource        *hup_source;    /* (owned) (nullable) */
  GString        *buffer;        /* (owned) */
  GBytes         *writing;       /* (owned) (nullable) */
  guint64         n_rows;
  GError         *error;         /* (owned) (nullable) */
  GTask          *start_task;    /* (owned) (nullable) */
  GTask          *wait_task;     /* (owned) (nullable) */
  gboolean        done;
};

G_DEFINE_FINAL_TYPE (BpPgFdStream, bp_pg_fd_stream, G_TYPE_OBJECT)

static void pull (BpPgFdStream *self);

static void
bp_pg_fd_stream_dispose (GObject *object)
{
  BpPgFdStream *self = BP_PG_FD_STREAM (object);

  if (self->hup_source != NULL)
    {
      g_source_destroy (self->hup_source);
      g_clear_pointer (&self->hup_source, g_source_unref);
    }
  if (self->caller_cancellable != NULL)
    g_cancellable_disconnect (self->caller_cancellable, self->caller_cancel_id);
  self->caller_cancel_id = 0;
  g_clear_object (&self->caller_cancellable);
  g_clear_object (&self->conn);
  g_clear_object (&self->output);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (bp_pg_fd_stream_parent_class)->dispose (object);
}

static void
bp_pg_fd_stream_finalize (GObject *object)
{
  BpPgFdStream *self = BP_PG_FD_STREAM (object);

  g_clear_pointer (&self->desc, bp_pg_row_desc_free);
  g_string_free (self->buffer, TRUE);
  g_clear_pointer (&self->writing, g_bytes_unref);
  g_clear_error (&self->error);
  g_assert (self->start_task == NULL && self->wait_task == NULL);
  G_OBJECT_CLASS (bp_pg_fd_stream_parent_class)->finalize (object);
}

static void
bp_pg_fd_stream_class_init (BpPgFdStreamClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = bp_pg_fd_stream_dispose;
  G_OBJECT_CLASS (klass)->finalize = bp_pg_fd_stream_finalize;
}

static void
bp_pg_fd_stream_init (BpPgFdStream *self)
{
  self->buffer = g_string_new (NULL);
  self->cancellable = g_cancellable_new ();
  self->fd = -1;
}

/**
 * bp_pg_fd_stream_new:
 * @conn: an idle connection, busy until the stream ends
 * @fd: (transfer full): the fd to write to; closed at the end
 * @format: the framing
 *
 * Returns: (transfer full): a new stream
 */
BpPgFdStream *
bp_pg_fd_stream_new (BpPgConnection *conn,
                     int             fd,
                     BpPgFormat      format)
{
  BpPgFdStream *self = g_object_new (BP_TYPE_PG_FD_STREAM, NULL);

  self->conn = g_object_ref (conn);
  self->fd = fd;
  /* Non-blocking: a pollable write never blocks the loop. */
  g_unix_set_fd_nonblocking (fd, TRUE, NULL);
  self->output = g_unix_output_stream_new (fd, TRUE);
  self->format = format;
  return self;
}

/* Main context: the reader closed its end while we wait on the server. */
static gboolean
on_fd_hup (gint         fd,
           GIOCondition condition,
           gpointer     user_data)
{
  BpPgFdStream *self = user_data;

  g_debug ("stream reader went away");
  if (self->error == NULL)
    self->error = g_error_new_literal (BP_ERROR, BP_ERROR_CANCELLED, "the reader closed the stream");
  g_cancellable_cancel (self->cancellable);
  g_clear_pointer (&self->hup_source, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* Any thread: the caller's cancellable. */
static void
on_caller_cancelled (GCancellable *cancellable,
                     gpointer      user_data)
{
  GCancellable *ours = user_data;

  g_cancellable_cancel (ours);
}

static void
append_error_line (BpPgFdStream *self,
                   const GError *error)
{
  g_autoptr(GError) normalized = bp_error_normalize (error);
  g_autofree char *name = g_strconcat ("org.backplane.Backplane1.Error.",
                                       bp_error_code_to_nick (normalized->code), NULL);

  if (self->format != BP_PG_FORMAT_JSONL)
    return;
  g_string_append (self->buffer, "{\"error\":{\"name\":");
  bp_pg_json_append_string (self->buffer, name, -1);
  g_string_append (self->buffer, ",\"message\":");
  bp_pg_json_append_string (self->buffer, normalized->message, -1);
  g_string_append (self->buffer, "}}\n");
}

static void
finish (BpPgFdStream *self)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->wait_task);

  self->done = TRUE;
  if (self->hup_source != NULL)
    {
      g_source_destroy (self->hup_source);
      g_clear_pointer (&self->hup_source, g_source_unref);
    }
  /* The output stream closes the fd when disposed; close it now. */
  g_output_stream_close (self->output, NULL, NULL);
  if (task == NULL)
    return;
  if (self->error != NULL)
    g_task_return_error (task, g_error_copy (self->error));
  else
    {
      guint64 *rows = g_new (guint64, 1);

      *rows = self->n_rows;
      g_task_return_pointer (task, rows, g_free);
    }
}

/* Main context. */
static void
final_write_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(BpPgFdStream) self = user_data;

  g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, NULL);
  g_clear_pointer (&self->writing, g_bytes_unref);
  finish (self);
}

static void
write_final (BpPgFdStream *self)
{
  gsize len;
  const void *data;

  if (self->buffer->len == 0)
    {
      finish (self);
      return;
    }
  self->writing = g_string_free_to_bytes (g_steal_pointer (&self->buffer));
  self->buffer = g_string_new (NULL);
  data = g_bytes_get_data (self->writing, &len);
  /* Not cancellable by our own cancellable: the trailer says why we stop. */
  g_output_stream_write_all_async (self->output, data, len, G_PRIORITY_DEFAULT, NULL,
                                   final_write_cb, g_object_ref (self));
}

/* Main context: the connection is idle again after an early stop. */
static void
stream_closed_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(BpPgFdStream) self = user_data;

  bp_pg_connection_stream_close_finish (BP_PG_CONNECTION (object), result, NULL);
  finish (self);
}

static void
stop_early (BpPgFdStream *self,
            GError       *error)
{
  /* (transfer full) error */
  if (self->error == NULL)
    self->error = error;
  else
    g_error_free (error);
  bp_pg_connection_stream_close_async (self->conn, NULL, stream_closed_cb, g_object_ref (self));
}

/* Main context. */
static void
batch_written_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(BpPgFdStream) self = user_data;
  g_autoptr(GError) error = NULL;

  g_clear_pointer (&self->writing, g_bytes_unref);
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, &error))
    {
      if (self->error == NULL && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        self->error = g_error_new (BP_ERROR, BP_ERROR_CANCELLED, "writing the stream: %s", error->message);
      stop_early (self, g_error_new_literal (BP_ERROR, BP_ERROR_CANCELLED, "the reader closed the stream"));
      return;
    }
  pull (self);
}

static void
write_buffer (BpPgFdStream *self)
{
  gsize len;
  const void *data;

  self->writing = g_string_free_to_bytes (g_steal_pointer (&self->buffer));
  self->buffer = g_string_new (NULL);
  data = g_bytes_get_data (self->writing, &len);
  g_output_stream_write_all_async (self->output, data, len, G_PRIORITY_DEFAULT, self->cancellable,
                                   batch_written_cb, g_object_ref (self));
}

/* Main context: a batch of rows arrived. */
static void
next_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(BpPgFdStream) self = user_data;
  g_autoptr(GError) error = NULL;
  gboolean done = FALSE;
  g_autoptr(GPtrArray) rows = bp_pg_connection_stream_next_finish (self->conn, result, &done, &error);

  if (rows == NULL)
    {
      /* The connection is idle (or closed) again. */
      if (self->error == NULL)
        self->error = g_steal_pointer (&error);
      append_error_line (self, self->error);
      write_final (self);
      return;
    }

  for (guint i = 0; i < rows->len; i++)
    {
      PGresult *res = g_ptr_array_index (rows, i);

      if (self->format == BP_PG_FORMAT_JSONL)
        {
          if (!bp_pg_row_append_json (self->desc, res, 0, self->buffer, &error))
            {
              stop_early (self, g_steal_pointer (&error));
              return;
            }
          g_string_append_c (self->buffer, '\n');
        }
      else
        bp_pg_row_append_csv (self->desc, res, 0, self->buffer);
      self->n_rows++;
    }

  if (done)
    {
      if (self->format == BP_PG_FORMAT_JSONL)
        g_string_append_printf (self->buffer, "{\"end\":{\"rows\":%" G_GUINT64_FORMAT "}}\n", self->n_rows);
      write_final (self);
      return;
    }
  if (self->buffer->len >= FLUSH_BYTES || rows->len > 0)
    write_buffer (self);
  else
    pull (self);
}

static void
pull (BpPgFdStream *self)
{
  bp_pg_connection_stream_next_async (self->conn, BATCH_ROWS, self->cancellable,
                                      next_cb, g_object_ref (self));
}

/* Main context: the header is known (or the statement failed). */
static void
stream_started_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(BpPgFdStream) self = user_data;
  g_autoptr(GTask) task = g_steal_pointer (&self->start_task);
  g_autoptr(GError) error = NULL;

  self->desc = bp_pg_connection_stream_finish (self->conn, result, &error);
  if (self->desc == NULL)
    {
      /* Nothing was written: the reply carries the error. */
      if (self->error == NULL)
        self->error = g_error_copy (error);
      finish (self);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  if (self->format == BP_PG_FORMAT_JSONL)
    {
      g_string_append (self->buffer, "{\"columns\":");
      bp_pg_row_desc_append_json_columns (self->desc, self->buffer);
      g_string_append (self->buffer, "}\n");
    }
  else
    bp_pg_row_desc_append_csv_header (self->desc, self->buffer);

  self->hup_source = g_unix_fd_source_new (self->fd, G_IO_ERR | G_IO_HUP);
  g_source_set_callback (self->hup_source, (GSourceFunc) (void (*) (void)) on_fd_hup, self, NULL);
  g_source_set_static_name (self->hup_source, "[bp-postgres] stream reader");
  g_source_attach (self->hup_source, g_main_context_get_thread_default ());

  write_buffer (self);
  g_task_return_pointer (task, g_variant_ref_sink (bp_pg_row_desc_to_columns (self->desc)),
                         (GDestroyNotify) g_variant_unref);
}

/**
 * bp_pg_fd_stream_start_async:
 * @self: a new stream
 * @sql: one statement
 * @params: (nullable): its `av` parameters
 * @timeout_ms: for the whole stream, 0 for none
 * @cancellable: (nullable): cancels the whole stream, also after the start
 * @callback: called once the header is known
 * @user_data: data for @callback
 */
void
bp_pg_fd_stream_start_async (BpPgFdStream        *self,
                             const char          *sql,
                             GVariant            *params,
                             guint                timeout_ms,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_return_if_fail (BP_IS_PG_FD_STREAM (self));
  g_return_if_fail (self->start_task == NULL && self->desc == NULL);

  self->start_task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (self->start_task, bp_pg_fd_stream_start_async);
  if (cancellable != NULL)
    {
      self->caller_cancellable = g_object_ref (cancellable);
      self->caller_cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (on_caller_cancelled),
                                                      g_object_ref (self->cancellable), g_object_unref);
    }
  bp_pg_connection_stream_async (self->conn, sql, params, timeout_ms, self->cancellable,
                                 stream_started_cb, g_object_ref (self));
}

/**
 * bp_pg_fd_stream_start_finish:
 * @self: a stream
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the `a(ss)` columns, or %NULL (then the stream
 *   is already over: wait_async completes at once)
 */
GVariant *
bp_pg_fd_stream_start_finish (BpPgFdStream  *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * bp_pg_fd_stream_wait_async:
 * @self: a started stream
 * @callback: called when the stream ended and the fd is closed
 * @user_data: data for @callback
 */
void
bp_pg_fd_stream_wait_async (BpPgFdStream        *self,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_return_if_fail (BP_IS_PG_FD_STREAM (self));
  g_return_if_fail (self->wait_task == NULL);

  self->wait_task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (self->wait_task, bp_pg_fd_stream_wait_async);
  if (self->done)
    {
      self->done = FALSE;
      finish (self);
    }
}

/**
 * bp_pg_fd_stream_wait_finish:
 * @self: a stream
 * @result: the result
 * @out_rows: (out) (optional): rows written
 * @error: return location for a #GError
 *
 * Returns: %TRUE if every row was written
 */
gboolean
bp_pg_fd_stream_wait_finish (BpPgFdStream  *self,
                             GAsyncResult  *result,
                             guint64       *out_rows,
                             GError       **error)
{
  g_autofree guint64 *rows = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  rows = g_task_propagate_pointer (G_TASK (result), error);
  if (rows == NULL)
    return FALSE;
  if (out_rows != NULL)
    *out_rows = *rows;
  return TRUE;
}
