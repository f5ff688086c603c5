/* bp-qdrant-jsonl.c: JSON Lines points read in bounded batches
 *
 * BpQdrantJsonlReader turns a stream of lines `{"id":…,"vector":…,"payload":…}`
 * into upsert bodies `{"points":[…]}` of at most N points and at most
 * max-request-bytes. It reads only when asked for the next batch, so the
 * caller gets back-pressure for free: ask for batch k+1 once batch k was
 * sent. Memory stays bounded by one batch, one pending point and
 * max-line-bytes plus one read chunk of buffered input.
 *
 * Lines are numbered from 1; blank lines count but are skipped; a CR
 * before the LF is ignored; the last line needs no LF. The first invalid
 * line stops the reader with an error that starts with `line N: `.
 *
 * The framing ScrollToFd writes is understood too, so that its output
 * (with vectors) can be upserted again: a first line `{"collection":…}`
 * is a header and skipped, `{"end":…}` ends the points (only blank lines
 * may follow), and `{"error":…}` (a scroll that failed) stops the reader
 * with InvalidArgument quoting its message.
 *
 * Callbacks run in the thread-default main context of the caller of
 * bp_qdrant_jsonl_reader_next_batch_async().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-qdrant-jsonl.h"

#include <string.h>

#define READ_CHUNK (64 * 1024)

struct _BpQdrantJsonlReader
{
  GObject         parent_instance;

  GInputStream   *input;    /* (owned) */
  BpQdrantLimits  limits;
  GByteArray     *buf;      /* (owned) unread input from buf_start on */
  gsize           buf_start;
  GString        *pending;  /* (owned) (nullable) a point that did not fit the last batch */
  GString        *scratch;  /* (owned) */
  guint64         line_no;
  guint64         n_points;
  gboolean        seen_line;  /* a non-blank line was read */
  gboolean        ended;      /* after an {"end":…} line */
  gboolean        eof;
  gboolean        failed;
  gboolean        busy;
};

G_DEFINE_FINAL_TYPE (BpQdrantJsonlReader, bp_qdrant_jsonl_reader, G_TYPE_OBJECT)

typedef struct
{
  GString *batch;
  guint    n;
  guint    max_points;
} BatchData;

static void
batch_data_free (BatchData *data)
{
  if (data->batch != NULL)
    g_string_free (data->batch, TRUE);
  g_free (data);
}

static void
bp_qdrant_jsonl_reader_finalize (GObject *object)
{
  BpQdrantJsonlReader *self = BP_QDRANT_JSONL_READER (object);

  g_clear_object (&self->input);
  g_clear_pointer (&self->buf, g_byte_array_unref);
  if (self->pending != NULL)
    g_string_free (self->pending, TRUE);
  g_string_free (self->scratch, TRUE);

  G_OBJECT_CLASS (bp_qdrant_jsonl_reader_parent_class)->finalize (object);
}

static void
bp_qdrant_jsonl_reader_class_init (BpQdrantJsonlReaderClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bp_qdrant_jsonl_reader_finalize;
}

static void
bp_qdrant_jsonl_reader_init (BpQdrantJsonlReader *self)
{
  self->buf = g_byte_array_new ();
  self->scratch = g_string_new (NULL);
}

/**
 * bp_qdrant_jsonl_reader_new:
 * @input: the stream of JSON Lines
 * @limits: the bounds (max-line-bytes, max-request-bytes, max-vector-dim,
 *   max-json-depth); copied
 *
 * Returns: (transfer full): a new reader
 */
BpQdrantJsonlReader *
bp_qdrant_jsonl_reader_new (GInputStream          *input,
                            const BpQdrantLimits  *limits)
{
  BpQdrantJsonlReader *self;

  g_return_val_if_fail (G_IS_INPUT_STREAM (input), NULL);
  g_return_val_if_fail (limits != NULL, NULL);

  self = g_object_new (BP_TYPE_QDRANT_JSONL_READER, NULL);
  self->input = g_object_ref (input);
  self->limits = *limits;
  return self;
}

/**
 * bp_qdrant_jsonl_reader_get_line_number:
 * @self: a reader
 *
 * Returns: the number of the last line read
 */
guint64
bp_qdrant_jsonl_reader_get_line_number (BpQdrantJsonlReader *self)
{
  g_return_val_if_fail (BP_IS_QDRANT_JSONL_READER (self), 0);
  return self->line_no;
}

/**
 * bp_qdrant_jsonl_reader_get_n_points:
 * @self: a reader
 *
 * Returns: the number of points handed out in batches so far
 */
guint64
bp_qdrant_jsonl_reader_get_n_points (BpQdrantJsonlReader *self)
{
  g_return_val_if_fail (BP_IS_QDRANT_JSONL_READER (self), 0);
  return self->n_points;
}

/* Consumes @task. */
static void
fail (BpQdrantJsonlReader *self,
      GTask               *task,
      GError              *error)
{
  self->failed = TRUE;
  self->busy = FALSE;
  g_task_return_error (task, error);
  g_object_unref (task);
}

static void
finish_batch (BpQdrantJsonlReader *self,
              GTask               *task)
{
  BatchData *data = g_task_get_task_data (task);
  GBytes *body = NULL;

  self->busy = FALSE;
  if (data->n > 0)
    {
      g_string_append (data->batch, "]}");
      body = g_string_free_to_bytes (g_steal_pointer (&data->batch));
      self->n_points += data->n;
    }
  g_task_return_pointer (task, body, body != NULL ? (GDestroyNotify) g_bytes_unref : NULL);
}

static gboolean
blank (const char *p,
       gsize       len)
{
  gsize i;

  for (i = 0; i < len; i++)
    if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
      return FALSE;
  return TRUE;
}

static gboolean
has_prefix (const char *line,
            gsize       len,
            const char *prefix)
{
  gsize n = strlen (prefix);

  while (len > 0 && (*line == ' ' || *line == '\t'))
    {
      line++;
      len--;
    }
  return len >= n && memcmp (line, prefix, n) == 0;
}

typedef enum
{
  LINE_POINT,   /* a point: convert it */
  LINE_SKIP,    /* ScrollToFd's header or end line */
  LINE_ERROR,
} LineKind;

/* Recognises ScrollToFd's own header, end and error lines (see the file
 * comment). */
static LineKind
classify_line (BpQdrantJsonlReader  *self,
               const char           *line,
               gsize                 len,
               GError              **error)
{
  gboolean first = !self->seen_line;

  self->seen_line = TRUE;
  if (self->ended)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "line %" G_GUINT64_FORMAT ": a line after the end line", self->line_no);
      return LINE_ERROR;
    }
  if (first && has_prefix (line, len, "{\"collection\":"))
    return LINE_SKIP;
  if (has_prefix (line, len, "{\"end\":"))
    {
      self->ended = TRUE;
      return LINE_SKIP;
    }
  if (has_prefix (line, len, "{\"error\":"))
    {
      g_autoptr(JsonNode) node = bp_qdrant_json_parse (line, len, self->limits.max_json_depth, NULL, NULL);
      JsonObject *e = NULL;
      const char *message = NULL;

      if (node != NULL && JSON_NODE_HOLDS_OBJECT (node))
        {
          JsonNode *member = json_object_get_member (json_node_get_object (node), "error");

          if (member != NULL && JSON_NODE_HOLDS_OBJECT (member))
            e = json_node_get_object (member);
        }
      if (e != NULL && json_object_has_member (e, "message") &&
          JSON_NODE_HOLDS_VALUE (json_object_get_member (e, "message")) &&
          json_node_get_value_type (json_object_get_member (e, "message")) == G_TYPE_STRING)
        message = json_object_get_string_member (e, "message");
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "line %" G_GUINT64_FORMAT ": the input ends with an error line: %s",
                   self->line_no, message != NULL ? message : "(no message)");
      return LINE_ERROR;
    }
  return LINE_POINT;
}

/* Adds one line to the batch. Returns FALSE with *error set on a bad line,
 * FALSE without error when the batch is full (the point is kept pending). */
static gboolean
take_line (BpQdrantJsonlReader  *self,
           BatchData            *data,
           const char           *line,
           gsize                 len,
           GError              **error)
{
  g_autoptr(GError) local = NULL;

  self->line_no++;
  if (len > 0 && line[len - 1] == '\r')
    len--;
  if (blank (line, len))
    return TRUE;
  switch (classify_line (self, line, len, error))
    {
    case LINE_SKIP:
      return TRUE;
    case LINE_ERROR:
      return FALSE;
    case LINE_POINT:
      break;
    }

  g_string_truncate (self->scratch, 0);
  if (!bp_qdrant_jsonl_line_to_point (line, len, &self->limits, self->scratch, &local))
    {
      g_set_error (error, BP_ERROR, local->code, "line %" G_GUINT64_FORMAT ": %s",
                   self->line_no, local->message);
      return FALSE;
    }
  /* Room for ',' now and "]}" at the end. */
  if (data->n > 0 &&
      data->batch->len + 1 + self->scratch->len + 2 > self->limits.max_request_bytes)
    {
      self->pending = g_string_new_len (self->scratch->str, (gssize) self->scratch->len);
      return FALSE;
    }
  if (data->n > 0)
    g_string_append_c (data->batch, ',');
  g_string_append_len (data->batch, self->scratch->str, (gssize) self->scratch->len);
  data->n++;
  return TRUE;
}

static void read_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data);

/* Takes lines from the buffer until the batch is full, the input ends or
 * more input is needed. Consumes @task. */
static void
fill_batch (BpQdrantJsonlReader *self,
            GTask               *task)
{
  BatchData *data = g_task_get_task_data (task);

  while (data->n < data->max_points && self->pending == NULL)
    {
      gsize avail = self->buf->len - self->buf_start;
      const char *start = avail > 0 ? (const char *) self->buf->data + self->buf_start : "";
      const char *nl = avail > 0 ? memchr (start, '\n', avail) : NULL;
      GError *error = NULL;

      if (nl != NULL)
        {
          gsize len = (gsize) (nl - start);

          self->buf_start += len + 1;
          if (!take_line (self, data, start, len, &error))
            {
              if (error != NULL)
                return fail (self, task, error);
              break;
            }
          continue;
        }
      if (avail > self->limits.max_line_bytes)
        {
          error = g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                               "line %" G_GUINT64_FORMAT ": longer than max-line-bytes (%"
                               G_GSIZE_FORMAT ")",
                               self->line_no + 1, self->limits.max_line_bytes);
          return fail (self, task, error);
        }
      if (self->eof)
        {
          if (avail == 0)
            break;
          self->buf_start += avail;
          if (!take_line (self, data, start, avail, &error))
            {
              if (error != NULL)
                return fail (self, task, error);
            }
          break;
        }

      /* Need more input: drop what was consumed, read one chunk. */
      g_byte_array_remove_range (self->buf, 0, (guint) self->buf_start);
      self->buf_start = 0;
      {
        guint old = self->buf->len;

        g_byte_array_set_size (self->buf, old + READ_CHUNK);
        g_input_stream_read_async (self->input, self->buf->data + old, READ_CHUNK,
                                   G_PRIORITY_DEFAULT, g_task_get_cancellable (task),
                                   read_cb, task);
        return;
      }
    }
  finish_batch (self, task);
  g_object_unref (task);
}

/* Runs in the caller's main context when a chunk arrived. */
static void
read_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  GTask *task = user_data;
  BpQdrantJsonlReader *self = g_task_get_source_object (task);
  GError *error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (object), result, &error);
  g_byte_array_set_size (self->buf, self->buf->len - READ_CHUNK + (guint) MAX (n, 0));
  if (n < 0)
    return fail (self, task, error);
  if (n == 0)
    self->eof = TRUE;
  fill_batch (self, task);
}

/**
 * bp_qdrant_jsonl_reader_next_batch_async:
 * @self: a reader
 * @max_points: the most points in the batch (at least 1)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the batch is ready
 * @user_data: data for @callback
 *
 * Reads lines until @max_points points are collected, the next point
 * would make the body exceed max-request-bytes, or the input ends. One
 * call at a time.
 */
void
bp_qdrant_jsonl_reader_next_batch_async (BpQdrantJsonlReader *self,
                                         guint                max_points,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  GTask *task;
  BatchData *data;

  g_return_if_fail (BP_IS_QDRANT_JSONL_READER (self));
  g_return_if_fail (max_points > 0);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_qdrant_jsonl_reader_next_batch_async);

  if (self->busy)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "a batch is already being read");
      g_object_unref (task);
      return;
    }
  if (self->failed)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED,
                               "the reader stopped at an earlier error");
      g_object_unref (task);
      return;
    }

  data = g_new0 (BatchData, 1);
  data->batch = g_string_new ("{\"points\":[");
  data->max_points = max_points;
  g_task_set_task_data (task, data, (GDestroyNotify) batch_data_free);
  self->busy = TRUE;

  if (self->pending != NULL)
    {
      g_string_append_len (data->batch, self->pending->str, (gssize) self->pending->len);
      g_string_free (g_steal_pointer (&self->pending), TRUE);
      data->n = 1;
    }
  fill_batch (self, task);
}

/**
 * bp_qdrant_jsonl_reader_next_batch_finish:
 * @self: a reader
 * @result: the result
 * @body: (out) (transfer full) (nullable): the upsert body `{"points":[…]}`;
 *   %NULL at the end of the input
 * @n_points: (out) (optional): how many points @body holds
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success, including the end of the input
 */
gboolean
bp_qdrant_jsonl_reader_next_batch_finish (BpQdrantJsonlReader  *self,
                                          GAsyncResult         *result,
                                          GBytes              **body,
                                          guint                *n_points,
                                          GError              **error)
{
  GError *local = NULL;
  GBytes *bytes;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (body != NULL, FALSE);

  bytes = g_task_propagate_pointer (G_TASK (result), &local);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      *body = NULL;
      return FALSE;
    }
  *body = bytes;
  if (n_points != NULL)
    *n_points = ((BatchData *) g_task_get_task_data (G_TASK (result)))->n;
  return TRUE;
}
