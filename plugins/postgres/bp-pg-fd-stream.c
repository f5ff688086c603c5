/* bp-pg-fd-stream.c: a query's rows streamed into a file descriptor
 *
 * The rows of a single-row-mode stream (bp_pg_connection_stream_async) are
 * framed as JSON Lines or CSV and handed to a BpFrameWriter, which writes
 * the fd asynchronously. The next batch of rows is pulled from the
 * connection only while the writer wants more (bp_frame_writer_wants_more);
 * otherwise the stream waits for it to drain, so a slow reader slows the
 * server down (the connection stops reading its socket) instead of filling
 * memory.
 *
 * start_async completes as soon as the column header is known (the D-Bus
 * reply goes out then); wait_async completes when the stream ended, the
 * trailer ({"end":{"rows":N}} or {"error":…} in JSONL) was written and the
 * fd closed: only then may the connection be reused. A reader that closes
 * its end — seen by the writer as POLLHUP/POLLERR or EPIPE, even while the
 * server has not produced the next row yet — cancels the statement (a
 * server-side cancel) and the stream ends with BP_ERROR_CANCELLED.
 *
 * Main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-pg-fd-stream.h"

#define BATCH_ROWS 256

struct _BpPgFdStream
{
  GObject         parent_instance;

  BpPgConnection *conn;                /* (owned) */
  BpFrameWriter  *writer;              /* (owned) (nullable): NULL when the fd was unusable */
  GError         *writer_error;        /* (owned) (nullable): why there is no writer */
  BpPgFormat      format;
  BpPgRowDesc    *desc;                /* (owned) (nullable) */
  GCancellable   *cancellable;         /* (owned): ours, cancels the statement */
  gulong          writer_cancel_id;
  GCancellable   *caller_cancellable;  /* (owned) (nullable) */
  gulong          caller_cancel_id;
  GString        *line;                /* (owned) scratch for one row */
  guint64         n_rows;
  GError         *error;               /* (owned) (nullable): the first one wins */
  GTask          *start_task;          /* (owned) (nullable) */
  GTask          *wait_task;           /* (owned) (nullable) */
  gboolean        done;
};

G_DEFINE_FINAL_TYPE (BpPgFdStream, bp_pg_fd_stream, G_TYPE_OBJECT)

static void pull (BpPgFdStream *self);

static void
bp_pg_fd_stream_dispose (GObject *object)
{
  BpPgFdStream *self = BP_PG_FD_STREAM (object);

  if (self->caller_cancellable != NULL)
    g_cancellable_disconnect (self->caller_cancellable, self->caller_cancel_id);
  self->caller_cancel_id = 0;
  g_clear_object (&self->caller_cancellable);
  if (self->writer != NULL)
    {
      g_cancellable_disconnect (bp_frame_writer_get_cancellable (self->writer), self->writer_cancel_id);
      self->writer_cancel_id = 0;
      bp_frame_writer_close (self->writer);
    }
  g_clear_object (&self->writer);
  g_clear_object (&self->conn);
  g_clear_object (&self->cancellable);
  G_OBJECT_CLASS (bp_pg_fd_stream_parent_class)->dispose (object);
}

static void
bp_pg_fd_stream_finalize (GObject *object)
{
  BpPgFdStream *self = BP_PG_FD_STREAM (object);

  g_clear_pointer (&self->desc, bp_pg_row_desc_free);
  g_string_free (self->line, TRUE);
  g_clear_error (&self->error);
  g_clear_error (&self->writer_error);
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
  self->line = g_string_sized_new (256);
  self->cancellable = g_cancellable_new ();
}

/* Any thread: a cancellable we follow fired (the writer's: the reader is
 * gone or a write failed; the caller's). */
static void
follow_cancelled_cb (GCancellable *cancellable,
                     gpointer      user_data)
{
  g_cancellable_cancel (user_data);
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
  self->format = format;
  self->writer = bp_frame_writer_new (fd, format == BP_PG_FORMAT_CSV ? BP_FRAME_FORMAT_CSV : BP_FRAME_FORMAT_JSONL,
                                      0, &self->writer_error);
  if (self->writer != NULL)
    self->writer_cancel_id = g_cancellable_connect (bp_frame_writer_get_cancellable (self->writer),
                                                    G_CALLBACK (follow_cancelled_cb),
                                                    g_object_ref (self->cancellable), g_object_unref);
  return self;
}

static void
set_error (BpPgFdStream *self,
           GError       *error)
{
  /* (transfer full) error */
  if (self->error == NULL)
    self->error = error;
  else
    g_error_free (error);
}

/* The error to report when the writer failed: a reader that left is the
 * client's doing, not the backend's. */
static GError *
writer_failure (BpPgFdStream *self,
                const GError *error)
{
  if (bp_frame_writer_is_reader_gone (self->writer))
    return g_error_new_literal (BP_ERROR, BP_ERROR_CANCELLED, "the reader closed the stream");
  return g_error_new (BP_ERROR, BP_ERROR_CANCELLED, "writing the stream: %s",
                      error != NULL ? error->message : "failed");
}

static void
finish (BpPgFdStream *self)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->wait_task);

  self->done = TRUE;
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

/* Main context: the trailer is written and the fd closed (or not). */
static void
writer_finished_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(BpPgFdStream) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!bp_frame_writer_finish_finish (BP_FRAME_WRITER (object), result, &error) && self->error == NULL)
    self->error = writer_failure (self, error);
  finish (self);
}

/* The statement is over: trailer, drain, close. */
static void
end_stream (BpPgFdStream *self)
{
  g_autofree char *summary = g_strdup_printf ("{\"rows\":%" G_GUINT64_FORMAT "}", self->n_rows);

  /* Not our cancellable (the trailer says why we stop); the caller's bounds
   * the drain. */
  bp_frame_writer_finish_async (self->writer, summary, self->error, self->caller_cancellable,
                                writer_finished_cb, g_object_ref (self));
}

/* Main context: the connection is idle again after an early stop. */
static void
stream_closed_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(BpPgFdStream) self = user_data;

  bp_pg_connection_stream_close_finish (BP_PG_CONNECTION (object), result, NULL);
  end_stream (self);
}

static void
stop_early (BpPgFdStream *self,
            GError       *error)
{
  /* (transfer full) error */
  g_debug ("stream stops early: %s", error->message);
  set_error (self, error);
  bp_pg_connection_stream_close_async (self->conn, NULL, stream_closed_cb, g_object_ref (self));
}

/* Main context: a batch of rows arrived (or the statement ended). */
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
      g_debug ("stream ended: %s", error->message);
      if (bp_frame_writer_is_reader_gone (self->writer))
        set_error (self, writer_failure (self, NULL));
      else
        set_error (self, g_steal_pointer (&error));
      end_stream (self);
      return;
    }

  for (guint i = 0; i < rows->len; i++)
    {
      PGresult *res = g_ptr_array_index (rows, i);

      g_string_truncate (self->line, 0);
      if (self->format == BP_PG_FORMAT_JSONL)
        {
          if (!bp_pg_row_append_json (self->desc, res, 0, self->line, &error))
            {
              stop_early (self, g_steal_pointer (&error));
              return;
            }
        }
      else
        {
          bp_pg_row_append_csv (self->desc, res, 0, self->line);
          g_string_truncate (self->line, self->line->len - 1);  /* the writer ends lines */
        }
      if (!bp_frame_writer_append_line (self->writer, self->line->str, self->line->len))
        {
          stop_early (self, writer_failure (self, NULL));
          return;
        }
      self->n_rows++;
    }

  if (done)
    {
      end_stream (self);
      return;
    }
  pull (self);
}

/* Main context: the writer has room again (or failed). */
static void
writable_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(BpPgFdStream) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!bp_frame_writer_wait_writable_finish (BP_FRAME_WRITER (object), result, &error))
    {
      stop_early (self, writer_failure (self, error));
      return;
    }
  pull (self);
}

static void
pull (BpPgFdStream *self)
{
  if (!bp_frame_writer_wants_more (self->writer))
    {
      bp_frame_writer_wait_writable_async (self->writer, NULL, writable_cb, g_object_ref (self));
      return;
    }
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
  g_autoptr(GString) header = g_string_new (NULL);

  self->desc = bp_pg_connection_stream_finish (self->conn, result, &error);
  if (self->desc == NULL)
    {
      /* Nothing was written: the reply carries the error; the fd is closed
       * without a trailer. */
      set_error (self, g_error_copy (error));
      bp_frame_writer_close (self->writer);
      finish (self);
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  if (self->format == BP_PG_FORMAT_JSONL)
    {
      g_string_append (header, "{\"columns\":");
      bp_pg_row_desc_append_json_columns (self->desc, header);
      g_string_append_c (header, '}');
    }
  else
    {
      bp_pg_row_desc_append_csv_header (self->desc, header);
      g_string_truncate (header, header->len - 1);
    }
  g_task_return_pointer (task, g_variant_ref_sink (bp_pg_row_desc_to_columns (self->desc)),
                         (GDestroyNotify) g_variant_unref);
  if (!bp_frame_writer_write_header (self->writer, header->str))
    {
      stop_early (self, writer_failure (self, NULL));
      return;
    }
  pull (self);
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
  if (self->writer == NULL)
    {
      g_autoptr(GTask) task = g_steal_pointer (&self->start_task);

      set_error (self, g_error_copy (self->writer_error));
      finish (self);
      g_task_return_error (task, g_error_copy (self->writer_error));
      return;
    }
  if (cancellable != NULL)
    {
      self->caller_cancellable = g_object_ref (cancellable);
      self->caller_cancel_id = g_cancellable_connect (cancellable, G_CALLBACK (follow_cancelled_cb),
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
    finish (self);
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
