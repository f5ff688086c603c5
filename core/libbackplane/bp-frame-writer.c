/* bp-frame-writer.c: framed rows into a client's fd, with back-pressure
 *
 * The data plane of Backplane (DESIGN.md §4): a client passes an fd (a pipe,
 * a socket or an open file) with QueryToFd, RunToFd, ScrollToFd or CopyTo;
 * the method replies as soon as the header is known and a BpFrameWriter
 * streams the rows into the fd:
 *
 *   JSONL  {"columns":…}            header line (bp_frame_writer_write_header)
 *          {…}                      one line per row (bp_frame_writer_append_line)
 *          {"end":{…}}              or {"error":{"name":…,"message":…}}
 *   CSV    records, no trailer (an error ends the stream early and travels
 *          in the method's D-Bus reply)
 *   RAW    bytes as given
 *
 * Nothing blocks the main loop. The fd is switched to O_NONBLOCK (unless it
 * is a regular file), as TinySPARQL does; note that this flag lives on the
 * open file description, which the client shares if it kept a duplicate of
 * the same end. Writes go through a GUnixOutputStream with
 * g_output_stream_write_async(): poll-driven for pipes, sockets and ttys,
 * in a GIO worker thread for regular files (which never return EAGAIN but
 * may be slow). Partial writes simply continue.
 *
 * Back-pressure: rows are appended to an in-memory buffer; while at least
 * max_buffer bytes wait, bp_frame_writer_wants_more() is FALSE and the
 * producer stops pulling rows (a cursor fetch, a Bolt PULL) until
 * #BpFrameWriter::drained or bp_frame_writer_wait_writable_async(), which
 * fire once the buffer is down to max_buffer / 2. The buffer exceeds
 * max_buffer by at most the line that crossed it, as long as the producer
 * honours wants_more().
 *
 * Reader gone: EPIPE/ECONNRESET on a write, or POLLHUP/POLLERR on the fd
 * (a g_unix_fd_source on pipes and sockets, so a reader that closes early
 * is noticed at once even when the producer is idle waiting on its
 * backend), emits #BpFrameWriter::reader-gone and cancels the cancellable of
 * bp_frame_writer_get_cancellable(), which producers chain to their backend
 * work. Writing to a closed pipe raises SIGPIPE: backplaned ignores it
 * (signal (SIGPIPE, SIG_IGN)) and so must every program using this writer.
 *
 * Main context only: create, feed and finish a writer on one context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gio/gunixoutputstream.h>

#include "bp-error.h"
#include "bp-frame-writer.h"

typedef enum
{
  STATE_OPEN,       /* accepting rows */
  STATE_FINISHING,  /* trailer queued, draining */
  STATE_CLOSING,    /* closing the stream (after the write in flight) */
  STATE_CLOSED,
} State;

/**
 * BpFrameWriter:
 *
 * Streams bulk data into a file descriptor passed by the client, framed as
 * a [enum@Bp.FrameFormat], without blocking the main loop.
 *
 * This is the data plane of Backplane: a client passes an fd (a pipe, a
 * socket or an open file) with `QueryToFd`, `RunToFd`, `ScrollToFd` or
 * `CopyTo`; the backend takes it with [method@Bp.Call.steal_fd], replies
 * as soon as the header is known and streams the rows into the fd:
 *
 * - JSONL: a header object ([method@Bp.FrameWriter.write_header]), one
 *   object per row ([method@Bp.FrameWriter.append_line]), then the trailer
 *   that [method@Bp.FrameWriter.finish_async] writes: `{"end":{…}}` or
 *   `{"error":{"name":…,"message":…}}`;
 * - CSV: the header record and one record per row, no trailer (an error
 *   ends the stream early and travels in the method's D-Bus reply);
 * - RAW: bytes as given ([method@Bp.FrameWriter.append_bytes]).
 *
 * Nothing blocks the main loop. The fd is switched to `O_NONBLOCK` unless
 * it is a regular file or a block device (the flag lives on the open file
 * description, which the client shares if it kept a duplicate of the same
 * end) and written with g_output_stream_write_async(): poll-driven for
 * pipes, sockets and ttys, in a GIO worker thread for regular files.
 *
 * Back-pressure: appended data waits in an in-memory buffer. Once
 * max_buffer bytes wait, [method@Bp.FrameWriter.wants_more] turns %FALSE
 * and the producer stops pulling rows (a cursor fetch, a Bolt PULL) until
 * [signal@Bp.FrameWriter::drained] or
 * [method@Bp.FrameWriter.wait_writable_async], which fire once the buffer
 * is down to max_buffer / 2. The buffer exceeds max_buffer by at most the
 * line that crossed it, as long as the producer honours wants_more().
 *
 * Reader gone: `EPIPE` or `ECONNRESET` on a write, or `POLLHUP`/`POLLERR`
 * on a pipe or socket (noticed at once, even while the producer waits on
 * its backend), emits [signal@Bp.FrameWriter::reader-gone] and cancels
 * [method@Bp.FrameWriter.get_cancellable], which producers chain to their
 * backend work. Writing to a closed pipe raises `SIGPIPE`: backplaned
 * ignores it, and so must every program that uses this writer.
 *
 * Main context only: create, feed and finish a writer on one thread; its
 * callbacks and signals run in the thread-default main context it was
 * created in.
 */
struct _BpFrameWriter
{
  GObject        parent_instance;

  GOutputStream *stream;          /* (owned) GUnixOutputStream, closes the fd */
  GMainContext  *context;         /* (owned) */
  BpFrameFormat  format;
  gsize          max_buffer;
  gsize          low_water;

  GByteArray    *out;             /* (owned) being written; untouched while a write is in flight */
  gsize          out_off;
  GByteArray    *in;              /* (owned) appends go here */
  gboolean       writing;
  gboolean       blocked;         /* wants_more() is FALSE until the buffer drains */
  gboolean       started;         /* something was appended */
  gboolean       reader_gone;
  State          state;
  GError        *failure;         /* (owned) (nullable) sticky: reader gone, write error, closed */

  GSource       *hup_source;      /* (owned) (nullable) POLLHUP/POLLERR watch, pipes and sockets */
  GCancellable  *cancellable;     /* (owned) public: nobody will read the rest */
  GCancellable  *io_cancellable;  /* (owned) aborts the write in flight */
  GQueue         waiters;         /* (element-type GTask) (owned) wait_writable_async */
  GTask         *finish_task;     /* (owned) (nullable) */
  GSource       *finish_cancel;   /* (owned) (nullable) watches finish_async's cancellable */

  guint64        bytes_written;
  guint64        n_lines;
  gsize          max_buffered;
};

G_DEFINE_FINAL_TYPE (BpFrameWriter, bp_frame_writer, G_TYPE_OBJECT)

enum {
  SIGNAL_READER_GONE,
  SIGNAL_DRAINED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void kick (BpFrameWriter *self);

static void
remove_hup_source (BpFrameWriter *self)
{
  if (self->hup_source != NULL)
    {
      g_source_destroy (self->hup_source);
      g_clear_pointer (&self->hup_source, g_source_unref);
    }
}

static void
remove_finish_cancel (BpFrameWriter *self)
{
  if (self->finish_cancel != NULL)
    {
      g_source_destroy (self->finish_cancel);
      g_clear_pointer (&self->finish_cancel, g_source_unref);
    }
}

static void
bp_frame_writer_dispose (GObject *object)
{
  BpFrameWriter *self = BP_FRAME_WRITER (object);

  remove_hup_source (self);
  remove_finish_cancel (self);
  /* Every operation in flight holds a reference, so none is running. The
   * close operation keeps the stream alive until it is done. */
  if (self->stream != NULL && self->state != STATE_CLOSED &&
      !g_output_stream_is_closed (self->stream) && !g_output_stream_has_pending (self->stream))
    g_output_stream_close_async (self->stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  self->state = STATE_CLOSED;
  if (self->cancellable != NULL)
    g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->stream);

  G_OBJECT_CLASS (bp_frame_writer_parent_class)->dispose (object);
}

static void
bp_frame_writer_finalize (GObject *object)
{
  BpFrameWriter *self = BP_FRAME_WRITER (object);

  g_clear_pointer (&self->out, g_byte_array_unref);
  g_clear_pointer (&self->in, g_byte_array_unref);
  g_clear_error (&self->failure);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->io_cancellable);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (bp_frame_writer_parent_class)->finalize (object);
}

static void
bp_frame_writer_class_init (BpFrameWriterClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bp_frame_writer_dispose;
  object_class->finalize = bp_frame_writer_finalize;

  /**
   * BpFrameWriter::reader-gone:
   * @self: the writer
   *
   * Emitted once when the reading side closed (EPIPE, ECONNRESET, or
   * POLLHUP/POLLERR on the fd). The writer's cancellable is already
   * cancelled; buffered data is discarded and the fd closed.
   */
  signals[SIGNAL_READER_GONE] =
    g_signal_new ("reader-gone", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);

  /**
   * BpFrameWriter::drained:
   * @self: the writer
   *
   * Emitted when bp_frame_writer_wants_more() turns %TRUE again: the
   * buffer went down to half of max_buffer.
   */
  signals[SIGNAL_DRAINED] =
    g_signal_new ("drained", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
bp_frame_writer_init (BpFrameWriter *self)
{
  self->out = g_byte_array_new ();
  self->in = g_byte_array_new ();
  self->cancellable = g_cancellable_new ();
  self->io_cancellable = g_cancellable_new ();
  self->context = g_main_context_ref_thread_default ();
  g_queue_init (&self->waiters);
}

static gsize
buffered (BpFrameWriter *self)
{
  return (self->out->len - self->out_off) + self->in->len;
}

static void
complete_waiters (BpFrameWriter *self)
{
  GTask *task;

  while ((task = g_queue_pop_head (&self->waiters)) != NULL)
    {
      if (self->failure != NULL)
        g_task_return_error (task, g_error_copy (self->failure));
      else
        g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
}

/* Main context: the stream is closed; the fd is gone. */
static void
close_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(BpFrameWriter) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GTask) task = NULL;

  if (!g_output_stream_close_finish (G_OUTPUT_STREAM (source), result, &error))
    {
      g_debug ("closing the output fd: %s", error->message);
      if (self->failure == NULL)
        self->failure = g_steal_pointer (&error);
    }
  self->state = STATE_CLOSED;
  remove_finish_cancel (self);
  complete_waiters (self);
  task = g_steal_pointer (&self->finish_task);
  if (task == NULL)
    return;
  if (self->failure != NULL)
    g_task_return_error (task, g_error_copy (self->failure));
  else
    g_task_return_boolean (task, TRUE);
}

static void
really_close (BpFrameWriter *self)
{
  g_output_stream_close_async (self->stream, G_PRIORITY_DEFAULT, NULL,
                               close_cb, g_object_ref (self));
}

/* Closes the stream once the write in flight, if any, is over. */
static void
start_close (BpFrameWriter *self)
{
  if (self->state == STATE_CLOSING || self->state == STATE_CLOSED)
    return;
  self->state = STATE_CLOSING;
  remove_hup_source (self);
  if (!self->writing)
    really_close (self);
}

/* Nothing more will be written: keep @error, stop the producer, close. */
static void
fail (BpFrameWriter *self,
      GError        *error)
{
  if (self->failure != NULL)
    {
      g_error_free (error);
      return;
    }
  self->failure = error;
  g_byte_array_set_size (self->in, 0);
  if (!self->writing)
    {
      g_byte_array_set_size (self->out, 0);
      self->out_off = 0;
    }
  /* A write in flight to a vanished reader ends by itself (EPIPE); cancel
   * only a write that may wait for a reader that is still there, because a
   * cancelled write reports no byte count even when it wrote. */
  if (!self->reader_gone)
    g_cancellable_cancel (self->io_cancellable);
  g_cancellable_cancel (self->cancellable);
  complete_waiters (self);
  start_close (self);
}

static void
mark_reader_gone (BpFrameWriter *self)
{
  if (self->reader_gone || self->failure != NULL)
    return;
  g_object_ref (self);
  self->reader_gone = TRUE;
  g_debug ("frame writer: the reader went away after %" G_GUINT64_FORMAT " bytes",
           self->bytes_written);
  fail (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE,
                                   "The reader closed the stream"));
  g_signal_emit (self, signals[SIGNAL_READER_GONE], 0);
  g_object_unref (self);
}

/* Main context: POLLHUP/POLLERR on a pipe or socket. */
static gboolean
hup_cb (int          fd,
        GIOCondition condition,
        gpointer     user_data)
{
  BpFrameWriter *self = user_data;

  mark_reader_gone (self);
  return G_SOURCE_REMOVE;
}

static gboolean
is_reader_gone_error (const GError *error)
{
  /* G_IO_ERROR_CONNECTION_CLOSED is the same code as BROKEN_PIPE. */
  return g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED);
}

static void
maybe_drained (BpFrameWriter *self)
{
  if (!self->blocked || buffered (self) > self->low_water)
    return;
  self->blocked = FALSE;
  complete_waiters (self);
  g_signal_emit (self, signals[SIGNAL_DRAINED], 0);
}

/* Main context (also for regular files: the worker thread only runs the
 * write(2)). */
static void
write_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(BpFrameWriter) self = user_data;
  g_autoptr(GError) error = NULL;
  gssize n;

  n = g_output_stream_write_finish (G_OUTPUT_STREAM (source), result, &error);
  self->writing = FALSE;
  if (n > 0)
    {
      /* Counted even when the reader is gone by now: it got these bytes. */
      self->out_off += n;
      self->bytes_written += n;
    }

  if (self->state == STATE_CLOSING)
    {
      really_close (self);
      return;
    }
  if (n < 0)
    {
      if (is_reader_gone_error (error))
        mark_reader_gone (self);
      else
        fail (self, g_steal_pointer (&error));
      return;
    }
  kick (self);
  maybe_drained (self);
}

/* Starts the next write when none is in flight; closes after the trailer. */
static void
kick (BpFrameWriter *self)
{
  if (self->writing || self->failure != NULL ||
      self->state == STATE_CLOSING || self->state == STATE_CLOSED)
    return;

  if (self->out_off == self->out->len)
    {
      GByteArray *tmp;

      /* Do not keep a huge line's allocation around. */
      if (self->out->len > 2 * self->max_buffer)
        {
          g_byte_array_unref (self->out);
          self->out = g_byte_array_new ();
        }
      g_byte_array_set_size (self->out, 0);
      self->out_off = 0;
      if (self->in->len == 0)
        {
          if (self->state == STATE_FINISHING)
            start_close (self);
          return;
        }
      tmp = self->out;
      self->out = self->in;
      self->in = tmp;
    }

  self->writing = TRUE;
  g_output_stream_write_async (self->stream,
                               self->out->data + self->out_off,
                               self->out->len - self->out_off,
                               G_PRIORITY_DEFAULT, self->io_cancellable,
                               write_cb, g_object_ref (self));
}

/**
 * bp_frame_writer_new:
 * @fd: a file descriptor open for writing: a pipe, a socket, a regular
 *   file or a character device; the writer takes ownership of it in every
 *   case, also on error
 * @format: the framing
 * @max_buffer: how many bytes may wait in memory before
 *   bp_frame_writer_wants_more() turns %FALSE; 0 means
 *   %BP_FRAME_WRITER_DEFAULT_MAX_BUFFER
 * @error: return location for a #GError
 *
 * Wraps @fd. Unless @fd is a regular file or block device, O_NONBLOCK is
 * set on it (on the open file description the client may share), so a
 * client that passed a blocking pipe cannot stall the daemon. Pipes and
 * sockets get a POLLHUP/POLLERR watch. The writer belongs to the
 * thread-default main context of the caller, where it runs its callbacks
 * and emits its signals. The fd is closed by
 * [method@Bp.FrameWriter.finish_async], [method@Bp.FrameWriter.close], a
 * reader that went away, or the last unref.
 *
 * Returns: (transfer full): a new writer, or %NULL with
 *   %BP_ERROR_INVALID_ARGUMENT when @fd is invalid, a directory, not open
 *   for writing, or cannot be made non-blocking
 */
BpFrameWriter *
bp_frame_writer_new (int            fd,
                     BpFrameFormat  format,
                     gsize          max_buffer,
                     GError       **error)
{
  BpFrameWriter *self;
  struct stat st;
  int flags;

  g_return_val_if_fail (format <= BP_FRAME_FORMAT_RAW, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (fd < 0 || fstat (fd, &st) != 0)
    {
      int errsv = fd < 0 ? EBADF : errno;

      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "The output fd is not valid: %s", g_strerror (errsv));
      if (fd >= 0)
        close (fd);
      return NULL;
    }
  flags = fcntl (fd, F_GETFL);
  if (S_ISDIR (st.st_mode) || flags == -1 || (flags & O_ACCMODE) == O_RDONLY)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "The output fd is not open for writing");
      close (fd);
      return NULL;
    }
  if (!S_ISREG (st.st_mode) && !S_ISBLK (st.st_mode) && (flags & O_NONBLOCK) == 0 &&
      fcntl (fd, F_SETFL, flags | O_NONBLOCK) != 0)
    {
      int errsv = errno;

      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "Cannot make the output fd non-blocking: %s", g_strerror (errsv));
      close (fd);
      return NULL;
    }

  self = g_object_new (BP_TYPE_FRAME_WRITER, NULL);
  self->stream = g_unix_output_stream_new (fd, TRUE);
  self->format = format;
  self->max_buffer = max_buffer != 0 ? max_buffer : BP_FRAME_WRITER_DEFAULT_MAX_BUFFER;
  self->low_water = self->max_buffer / 2;
  if (S_ISFIFO (st.st_mode) || S_ISSOCK (st.st_mode))
    {
      self->hup_source = g_unix_fd_source_new (fd, G_IO_HUP | G_IO_ERR);
      g_source_set_static_name (self->hup_source, "[backplane] frame writer reader watch");
      g_source_set_callback (self->hup_source, G_SOURCE_FUNC (hup_cb), self, NULL);
      g_source_attach (self->hup_source, self->context);
    }
  return self;
}

/**
 * bp_frame_writer_get_format:
 * @self: a #BpFrameWriter
 *
 * Returns the framing given to [ctor@Bp.FrameWriter.new].
 *
 * Returns: the framing
 */
BpFrameFormat
bp_frame_writer_get_format (BpFrameWriter *self)
{
  g_return_val_if_fail (BP_IS_FRAME_WRITER (self), BP_FRAME_FORMAT_RAW);
  return self->format;
}

/**
 * bp_frame_writer_get_cancellable:
 * @self: a #BpFrameWriter
 *
 * The producer chains this to its backend work (a query cursor, a process):
 * it is cancelled when the reader went away, when a write failed, when the
 * cancellable given to [method@Bp.FrameWriter.finish_async] fired, on
 * bp_frame_writer_close() and when the writer is disposed; never by a
 * successful finish.
 *
 * Returns: (transfer none): the writer's cancellable
 */
GCancellable *
bp_frame_writer_get_cancellable (BpFrameWriter *self)
{
  g_return_val_if_fail (BP_IS_FRAME_WRITER (self), NULL);
  return self->cancellable;
}

static gboolean
append (BpFrameWriter *self,
        const void    *data,
        gsize          len,
        gboolean       newline)
{
  gsize now;

  if (self->state != STATE_OPEN || self->failure != NULL)
    return FALSE;
  self->started = TRUE;
  g_byte_array_append (self->in, data, len);
  if (newline)
    g_byte_array_append (self->in, (const guint8 *) "\n", 1);
  now = buffered (self);
  self->max_buffered = MAX (self->max_buffered, now);
  if (now >= self->max_buffer)
    self->blocked = TRUE;
  kick (self);
  return TRUE;
}

/**
 * bp_frame_writer_write_header:
 * @self: a #BpFrameWriter
 * @json_object_text: JSONL: the header object (`{"columns":…}`), one line
 *   of JSON without a newline; CSV: the header record
 *
 * Queues the first line, plus a newline. It must come before any other
 * data, at most once, and not for RAW: anything else is a programming
 * error. The header is not counted by bp_frame_writer_get_n_lines().
 *
 * Returns: %FALSE when the writer no longer accepts data (the reader went
 *   away, a write failed, or it was closed)
 */
gboolean
bp_frame_writer_write_header (BpFrameWriter *self,
                              const char    *json_object_text)
{
  g_return_val_if_fail (BP_IS_FRAME_WRITER (self), FALSE);
  g_return_val_if_fail (json_object_text != NULL, FALSE);
  g_return_val_if_fail (self->format != BP_FRAME_FORMAT_RAW, FALSE);
  g_return_val_if_fail (!self->started, FALSE);
  g_return_val_if_fail (self->format != BP_FRAME_FORMAT_JSONL ||
                        strchr (json_object_text, '\n') == NULL, FALSE);

  return append (self, json_object_text, strlen (json_object_text), TRUE);
}

/**
 * bp_frame_writer_append_line:
 * @self: a #BpFrameWriter
 * @text: one row: a JSON object (JSONL, no newline inside) or a CSV record
 *   (newlines only inside quoted fields)
 * @len: length of @text, or -1 when NUL-terminated
 *
 * Queues @text plus a newline and counts a row. Always accepted while the
 * writer is open, even past max_buffer: the producer checks
 * bp_frame_writer_wants_more() before pulling the next row. A JSONL row
 * with a newline is a programming error.
 *
 * Returns: %FALSE when the writer no longer accepts data; stop producing
 */
gboolean
bp_frame_writer_append_line (BpFrameWriter *self,
                             const char    *text,
                             gssize         len)
{
  g_return_val_if_fail (BP_IS_FRAME_WRITER (self), FALSE);
  g_return_val_if_fail (text != NULL || len == 0, FALSE);

  if (len < 0)
    len = strlen (text);
  g_return_val_if_fail (self->format != BP_FRAME_FORMAT_JSONL ||
                        memchr (text, '\n', len) == NULL, FALSE);
  if (!append (self, text, len, TRUE))
    return FALSE;
  self->n_lines++;
  return TRUE;
}

/**
 * bp_frame_writer_append_bytes:
 * @self: a #BpFrameWriter
 * @data: (array length=len) (element-type guint8): bytes
 * @len: how many
 *
 * Queues @data as is, for RAW output: no newline added, no line counted.
 * Back-pressure works as for bp_frame_writer_append_line().
 *
 * Returns: %FALSE when the writer no longer accepts data
 */
gboolean
bp_frame_writer_append_bytes (BpFrameWriter *self,
                              const void    *data,
                              gsize          len)
{
  g_return_val_if_fail (BP_IS_FRAME_WRITER (self), FALSE);
  g_return_val_if_fail (data != NULL || len == 0, FALSE);

  return append (self, data, len, FALSE);
}

/**
 * bp_frame_writer_wants_more:
 * @self: a #BpFrameWriter
 *
 * Tells the producer whether to pull the next row. When it is %FALSE,
 * wait for #BpFrameWriter::drained or with
 * [method@Bp.FrameWriter.wait_writable_async], which also reports a
 * writer that can take no more data.
 *
 * Returns: %TRUE while the producer may append; %FALSE once max_buffer
 *   bytes wait (until the buffer drained to half of it), and when the
 *   writer no longer accepts data
 */
gboolean
bp_frame_writer_wants_more (BpFrameWriter *self)
{
  g_return_val_if_fail (BP_IS_FRAME_WRITER (self), FALSE);

  return !self->blocked && self->state == STATE_OPEN && self->failure == NULL;
}

/* Main context: the waiter's cancellable fired. */
static gboolean
waiter_cancelled_cb (GCancellable *cancellable,
                     gpointer      user_data)
{
  GTask *task = user_data;
  BpFrameWriter *self = g_task_get_source_object (task);

  if (g_queue_remove (&self->waiters, task))
    {
      g_task_return_error_if_cancelled (task);
      g_object_unref (task);
    }
  return G_SOURCE_REMOVE;
}

static void
destroy_source (gpointer data)
{
  g_source_destroy (data);
  g_source_unref (data);
}

/**
 * bp_frame_writer_wait_writable_async:
 * @self: a #BpFrameWriter
 * @cancellable: (nullable): cancels this wait only, not the writer
 * @callback: (scope async): called when bp_frame_writer_wants_more() is
 *   %TRUE again, or the writer can take no more data
 * @user_data: data for @callback
 *
 * Waits until the buffer drained to max_buffer / 2. Completes without
 * waiting when the buffer has room, and with an error when the writer has
 * failed, was closed or is finishing. @callback runs on the writer's main
 * context; call bp_frame_writer_wait_writable_finish() from it.
 */
void
bp_frame_writer_wait_writable_async (BpFrameWriter       *self,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BP_IS_FRAME_WRITER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_frame_writer_wait_writable_async);

  if (self->failure != NULL)
    {
      g_task_return_error (task, g_error_copy (self->failure));
      return;
    }
  if (self->state != STATE_OPEN)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CLOSED,
                               "The frame writer is finishing");
      return;
    }
  if (!self->blocked)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (cancellable != NULL)
    {
      GSource *source = g_cancellable_source_new (cancellable);

      g_source_set_static_name (source, "[backplane] frame writer wait");
      g_source_set_callback (source, G_SOURCE_FUNC (waiter_cancelled_cb), task, NULL);
      g_source_attach (source, self->context);
      g_task_set_task_data (task, source, destroy_source);
    }
  g_queue_push_tail (&self->waiters, g_steal_pointer (&task));
}

/**
 * bp_frame_writer_wait_writable_finish:
 * @self: a #BpFrameWriter
 * @result: the result
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.FrameWriter.wait_writable_async].
 *
 * Returns: %TRUE when the producer may append again; %FALSE with
 *   %G_IO_ERROR_BROKEN_PIPE when the reader went away, another write
 *   error, %G_IO_ERROR_CANCELLED, or %G_IO_ERROR_CLOSED
 */
gboolean
bp_frame_writer_wait_writable_finish (BpFrameWriter  *self,
                                      GAsyncResult   *result,
                                      GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_frame_writer_wait_writable_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Main context: finish_async's cancellable fired. */
static gboolean
finish_cancelled_cb (GCancellable *cancellable,
                     gpointer      user_data)
{
  BpFrameWriter *self = user_data;

  g_clear_pointer (&self->finish_cancel, g_source_unref);
  fail (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                   "Writing the stream was cancelled"));
  return G_SOURCE_REMOVE;
}

/**
 * bp_frame_writer_finish_async:
 * @self: a #BpFrameWriter
 * @end_summary_json: (nullable): JSONL: the summary object for the
 *   `{"end":…}` line; %NULL writes `{"end":{}}`
 * @error: (nullable): when set, JSONL ends with
 *   `{"error":{"name":"org.backplane.Backplane1.Error.X","message":…}}`
 *   instead (the error mapped like bp_error_normalize()); CSV and RAW
 *   just end
 * @cancellable: (nullable): aborts the drain (and closes the fd)
 * @callback: (scope async): called when everything was written and the fd
 *   closed, or the writer failed
 * @user_data: data for @callback
 *
 * Writes the trailer, drains the buffer and closes the fd. Call it once;
 * afterwards the writer accepts no data. The drain waits for the reader as
 * long as it takes, so pass a cancellable (the call's) to bound it. When
 * the writer has already failed (the reader went away, a write error,
 * bp_frame_writer_close()), it reports that failure once the fd is closed.
 * @callback runs on the writer's main context; call
 * bp_frame_writer_finish_finish() from it.
 */
void
bp_frame_writer_finish_async (BpFrameWriter       *self,
                              const char          *end_summary_json,
                              const GError        *error,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BP_IS_FRAME_WRITER (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_frame_writer_finish_async);

  if (self->finish_task != NULL || self->state == STATE_FINISHING)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               "The frame writer is already finishing");
      return;
    }
  if (self->state == STATE_CLOSED)
    {
      if (self->failure != NULL)
        g_task_return_error (task, g_error_copy (self->failure));
      else
        g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CLOSED,
                                 "The frame writer is closed");
      return;
    }

  self->finish_task = g_steal_pointer (&task);
  if (self->failure != NULL)
    return;  /* closing already; close_cb reports the failure */

  if (self->format == BP_FRAME_FORMAT_JSONL)
    {
      g_autoptr(GString) trailer = g_string_new (NULL);

      if (error != NULL)
        bp_frame_json_append_error (trailer, error);
      else
        g_string_append_printf (trailer, "{\"end\":%s}",
                                end_summary_json != NULL ? end_summary_json : "{}");
      append (self, trailer->str, trailer->len, TRUE);
    }
  self->state = STATE_FINISHING;
  if (cancellable != NULL)
    {
      self->finish_cancel = g_cancellable_source_new (cancellable);
      g_source_set_static_name (self->finish_cancel, "[backplane] frame writer finish");
      g_source_set_callback (self->finish_cancel, G_SOURCE_FUNC (finish_cancelled_cb), self, NULL);
      g_source_attach (self->finish_cancel, self->context);
    }
  kick (self);
}

/**
 * bp_frame_writer_finish_finish:
 * @self: a #BpFrameWriter
 * @result: the result
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.FrameWriter.finish_async].
 *
 * Returns: %TRUE when every byte reached the fd and it was closed;
 *   %FALSE with %G_IO_ERROR_BROKEN_PIPE when the reader went away, the
 *   write or close error, %G_IO_ERROR_CANCELLED (cancelled or
 *   bp_frame_writer_close()), %G_IO_ERROR_PENDING for a second finish, or
 *   %G_IO_ERROR_CLOSED for a finish after the writer closed
 */
gboolean
bp_frame_writer_finish_finish (BpFrameWriter  *self,
                               GAsyncResult   *result,
                               GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_frame_writer_finish_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * bp_frame_writer_close:
 * @self: a #BpFrameWriter
 *
 * Aborts: discards buffered data, cancels the writer's cancellable and
 * closes the fd without a trailer. A pending finish or wait reports
 * %G_IO_ERROR_CANCELLED. Does nothing once the writer has failed (the
 * reader went away, a write error, an earlier close); after a successful
 * finish, when the fd is closed already, it only cancels the cancellable.
 */
void
bp_frame_writer_close (BpFrameWriter *self)
{
  g_return_if_fail (BP_IS_FRAME_WRITER (self));

  fail (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                   "The stream was closed"));
}

/**
 * bp_frame_writer_is_reader_gone:
 * @self: a #BpFrameWriter
 *
 * Tells whether the reading side went away (`EPIPE`, `ECONNRESET`,
 * `POLLHUP` or `POLLERR`); #BpFrameWriter::reader-gone has then been
 * emitted.
 *
 * Returns: %TRUE once the reader is gone
 */
gboolean
bp_frame_writer_is_reader_gone (BpFrameWriter *self)
{
  g_return_val_if_fail (BP_IS_FRAME_WRITER (self), FALSE);
  return self->reader_gone;
}

/**
 * bp_frame_writer_get_bytes_written:
 * @self: a #BpFrameWriter
 *
 * Counts the bytes written into the fd, header and trailer included.
 *
 * Returns: bytes the fd accepted so far
 */
guint64
bp_frame_writer_get_bytes_written (BpFrameWriter *self)
{
  g_return_val_if_fail (BP_IS_FRAME_WRITER (self), 0);
  return self->bytes_written;
}

/**
 * bp_frame_writer_get_n_lines:
 * @self: a #BpFrameWriter
 *
 * Counts the rows accepted, whether or not they were written yet.
 *
 * Returns: rows appended with bp_frame_writer_append_line() (not the
 *   header or the trailer)
 */
guint64
bp_frame_writer_get_n_lines (BpFrameWriter *self)
{
  g_return_val_if_fail (BP_IS_FRAME_WRITER (self), 0);
  return self->n_lines;
}

/**
 * bp_frame_writer_get_buffered:
 * @self: a #BpFrameWriter
 *
 * Counts the bytes appended and not yet accepted by the fd: the amount
 * that max_buffer bounds.
 *
 * Returns: bytes waiting in memory
 */
gsize
bp_frame_writer_get_buffered (BpFrameWriter *self)
{
  g_return_val_if_fail (BP_IS_FRAME_WRITER (self), 0);
  return buffered (self);
}

/**
 * bp_frame_writer_get_max_buffered:
 * @self: a #BpFrameWriter
 *
 * Reports the high-water mark of bp_frame_writer_get_buffered() over the
 * writer's life, to check the memory bound in tests and statistics.
 *
 * Returns: the most bytes that waited in memory at once
 */
gsize
bp_frame_writer_get_max_buffered (BpFrameWriter *self)
{
  g_return_val_if_fail (BP_IS_FRAME_WRITER (self), 0);
  return self->max_buffered;
}

/* ---- JSON and CSV helpers for producers ---- */

/**
 * bp_frame_json_append_string_len:
 * @out: where to append
 * @text: (nullable): text, normally UTF-8; %NULL appends `null`
 * @len: length of @text in bytes, or -1 when NUL-terminated
 *
 * Appends @text as a JSON string: `"` and `\` escaped, control characters
 * (including NUL) as `\n`, `\t`, … or `\u00XX`, U+2028/U+2029 as `\u2028`/
 * `\u2029` (safe for JavaScript too), and every byte that is not part of
 * valid UTF-8 replaced by U+FFFD.
 */
void
bp_frame_json_append_string_len (GString    *out,
                                 const char *text,
                                 gssize      len)
{
  const char *p, *end;

  g_return_if_fail (out != NULL);

  if (text == NULL)
    {
      g_string_append (out, "null");
      return;
    }
  if (len < 0)
    len = strlen (text);
  p = text;
  end = text + len;

  g_string_append_c (out, '"');
  while (p < end)
    {
      const char *run = p;
      guchar c;

      while (p < end && (guchar) *p >= 0x20 && (guchar) *p < 0x80 && *p != '"' && *p != '\\')
        p++;
      if (p > run)
        g_string_append_len (out, run, p - run);
      if (p >= end)
        break;

      c = (guchar) *p;
      if (c < 0x80)
        {
          switch (c)
            {
            case '"':  g_string_append (out, "\\\""); break;
            case '\\': g_string_append (out, "\\\\"); break;
            case '\b': g_string_append (out, "\\b"); break;
            case '\f': g_string_append (out, "\\f"); break;
            case '\n': g_string_append (out, "\\n"); break;
            case '\r': g_string_append (out, "\\r"); break;
            case '\t': g_string_append (out, "\\t"); break;
            default:   g_string_append_printf (out, "\\u%04x", c); break;
            }
          p++;
        }
      else
        {
          gunichar ch = g_utf8_get_char_validated (p, end - p);

          if (ch == (gunichar) -1 || ch == (gunichar) -2)
            {
              g_string_append (out, "\xef\xbf\xbd");  /* U+FFFD */
              p++;
            }
          else
            {
              const char *next = g_utf8_next_char (p);

              if (ch == 0x2028 || ch == 0x2029)
                g_string_append_printf (out, "\\u%04x", ch);
              else
                g_string_append_len (out, p, next - p);
              p = next;
            }
        }
    }
  g_string_append_c (out, '"');
}

/**
 * bp_frame_json_append_string:
 * @out: where to append
 * @utf8: (nullable): a NUL-terminated string; %NULL appends `null`
 *
 * Appends @utf8 as a JSON string; see bp_frame_json_append_string_len().
 */
void
bp_frame_json_append_string (GString    *out,
                             const char *utf8)
{
  bp_frame_json_append_string_len (out, utf8, -1);
}

static void
append_double (GString *out,
               double   d)
{
  static const char * const formats[] = { "%.15g", "%.16g", "%.17g" };
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (!isfinite (d))
    {
      g_string_append (out, "null");
      return;
    }
  /* The shortest of these that reads back as the same double. */
  for (guint i = 0; i < G_N_ELEMENTS (formats); i++)
    {
      g_ascii_formatd (buf, sizeof buf, formats[i], d);
      if (g_ascii_strtod (buf, NULL) == d)
        break;
    }
  g_string_append (out, buf);
}

static void
append_key (GString  *out,
            GVariant *key)
{
  g_autoptr(GString) text = NULL;

  if (g_variant_is_of_type (key, G_VARIANT_TYPE_STRING) ||
      g_variant_is_of_type (key, G_VARIANT_TYPE_OBJECT_PATH) ||
      g_variant_is_of_type (key, G_VARIANT_TYPE_SIGNATURE))
    {
      bp_frame_json_append_string (out, g_variant_get_string (key, NULL));
      return;
    }
  /* JSON keys are strings: use the JSON text of any other basic key. */
  text = g_string_new (NULL);
  bp_frame_json_append_variant (text, key);
  bp_frame_json_append_string_len (out, text->str, text->len);
}

/**
 * bp_frame_json_append_variant:
 * @out: where to append
 * @value: a #GVariant
 *
 * Appends @value as JSON: `a{sv}` (any dictionary) → object (non-string
 * keys as their JSON text), other arrays and tuples → array, `ay` → base64
 * string, `v` → its content, maybe → content or `null`, the object path
 * `/` → `null` (Backplane's positional NULL) and other paths, signatures
 * and strings → string, booleans → `true`/`false`, integers exact (the full
 * `t` and `x` ranges), doubles in their shortest round-trip form and NaN or
 * infinities → `null`.
 */
void
bp_frame_json_append_variant (GString  *out,
                              GVariant *value)
{
  g_return_if_fail (out != NULL);
  g_return_if_fail (value != NULL);

  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      g_string_append (out, g_variant_get_boolean (value) ? "true" : "false");
      break;
    case G_VARIANT_CLASS_BYTE:
      g_string_append_printf (out, "%u", (guint) g_variant_get_byte (value));
      break;
    case G_VARIANT_CLASS_INT16:
      g_string_append_printf (out, "%d", (int) g_variant_get_int16 (value));
      break;
    case G_VARIANT_CLASS_UINT16:
      g_string_append_printf (out, "%u", (guint) g_variant_get_uint16 (value));
      break;
    case G_VARIANT_CLASS_INT32:
      g_string_append_printf (out, "%" G_GINT32_FORMAT, g_variant_get_int32 (value));
      break;
    case G_VARIANT_CLASS_UINT32:
      g_string_append_printf (out, "%" G_GUINT32_FORMAT, g_variant_get_uint32 (value));
      break;
    case G_VARIANT_CLASS_INT64:
      g_string_append_printf (out, "%" G_GINT64_FORMAT, g_variant_get_int64 (value));
      break;
    case G_VARIANT_CLASS_UINT64:
      g_string_append_printf (out, "%" G_GUINT64_FORMAT, g_variant_get_uint64 (value));
      break;
    case G_VARIANT_CLASS_HANDLE:
      g_string_append_printf (out, "%" G_GINT32_FORMAT, g_variant_get_handle (value));
      break;
    case G_VARIANT_CLASS_DOUBLE:
      append_double (out, g_variant_get_double (value));
      break;
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_SIGNATURE:
      bp_frame_json_append_string (out, g_variant_get_string (value, NULL));
      break;
    case G_VARIANT_CLASS_OBJECT_PATH:
      if (g_str_equal (g_variant_get_string (value, NULL), "/"))
        g_string_append (out, "null");
      else
        bp_frame_json_append_string (out, g_variant_get_string (value, NULL));
      break;
    case G_VARIANT_CLASS_VARIANT:
      {
        g_autoptr(GVariant) child = g_variant_get_variant (value);

        bp_frame_json_append_variant (out, child);
      }
      break;
    case G_VARIANT_CLASS_MAYBE:
      {
        g_autoptr(GVariant) child = g_variant_get_maybe (value);

        if (child == NULL)
          g_string_append (out, "null");
        else
          bp_frame_json_append_variant (out, child);
      }
      break;
    case G_VARIANT_CLASS_ARRAY:
      if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTESTRING))
        {
          gsize n = 0;
          const guchar *data = g_variant_get_fixed_array (value, &n, 1);
          g_autofree char *b64 = g_base64_encode (data, n);

          g_string_append_c (out, '"');
          g_string_append (out, b64);
          g_string_append_c (out, '"');
        }
      else if (g_variant_type_is_dict_entry (g_variant_type_element (g_variant_get_type (value))))
        {
          GVariantIter iter;
          GVariant *entry;
          gboolean first = TRUE;

          g_string_append_c (out, '{');
          g_variant_iter_init (&iter, value);
          while ((entry = g_variant_iter_next_value (&iter)) != NULL)
            {
              g_autoptr(GVariant) key = g_variant_get_child_value (entry, 0);
              g_autoptr(GVariant) val = g_variant_get_child_value (entry, 1);

              if (!first)
                g_string_append_c (out, ',');
              first = FALSE;
              append_key (out, key);
              g_string_append_c (out, ':');
              bp_frame_json_append_variant (out, val);
              g_variant_unref (entry);
            }
          g_string_append_c (out, '}');
        }
      else
        {
          GVariantIter iter;
          GVariant *child;
          gboolean first = TRUE;

          g_string_append_c (out, '[');
          g_variant_iter_init (&iter, value);
          while ((child = g_variant_iter_next_value (&iter)) != NULL)
            {
              if (!first)
                g_string_append_c (out, ',');
              first = FALSE;
              bp_frame_json_append_variant (out, child);
              g_variant_unref (child);
            }
          g_string_append_c (out, ']');
        }
      break;
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
      {
        GVariantIter iter;
        GVariant *child;
        gboolean first = TRUE;

        g_string_append_c (out, '[');
        g_variant_iter_init (&iter, value);
        while ((child = g_variant_iter_next_value (&iter)) != NULL)
          {
            if (!first)
              g_string_append_c (out, ',');
            first = FALSE;
            bp_frame_json_append_variant (out, child);
            g_variant_unref (child);
          }
        g_string_append_c (out, ']');
      }
      break;
    default:
      g_string_append (out, "null");
      break;
    }
}

/**
 * bp_frame_json_append_error:
 * @out: where to append
 * @error: the error that ended a stream
 *
 * Appends the JSONL error trailer
 * `{"error":{"name":"org.backplane.Backplane1.Error.X","message":"…"}}`,
 * with @error mapped like bp_error_normalize() (no newline).
 */
void
bp_frame_json_append_error (GString      *out,
                            const GError *error)
{
  g_autoptr(GError) normalized = NULL;
  g_autofree char *name = NULL;

  g_return_if_fail (out != NULL);
  g_return_if_fail (error != NULL);

  normalized = bp_error_normalize (error);
  name = g_strconcat ("org.backplane.Backplane1.Error.",
                      bp_error_code_to_nick (normalized->code), NULL);
  g_string_append (out, "{\"error\":{\"name\":");
  bp_frame_json_append_string (out, name);
  g_string_append (out, ",\"message\":");
  bp_frame_json_append_string (out, normalized->message);
  g_string_append (out, "}}");
}

/**
 * bp_frame_csv_append_field:
 * @out: where to append
 * @text: (nullable): the field; %NULL (SQL NULL) appends nothing
 *
 * Appends one CSV field (RFC 4180). The caller writes the `,` between
 * fields (or uses bp_frame_csv_append_record()). A field is quoted, with
 * `"` doubled, when it is empty (so that `""` differs from NULL, as in
 * PostgreSQL's CSV), contains `,` `"` CR or LF, or starts or ends with a
 * space or tab.
 */
void
bp_frame_csv_append_field (GString    *out,
                           const char *text)
{
  size_t len;
  gboolean quote;

  g_return_if_fail (out != NULL);

  if (text == NULL)
    return;
  len = strlen (text);
  quote = len == 0 || strpbrk (text, ",\"\r\n") != NULL ||
          text[0] == ' ' || text[0] == '\t' ||
          text[len - 1] == ' ' || text[len - 1] == '\t';
  if (!quote)
    {
      g_string_append_len (out, text, len);
      return;
    }
  g_string_append_c (out, '"');
  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == '"')
        g_string_append_c (out, '"');
      g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
}

/**
 * bp_frame_csv_append_record:
 * @out: where to append
 * @fields: (array length=n_fields) (nullable): the fields; %NULL entries
 *   are SQL NULLs
 * @n_fields: how many
 *
 * Appends one CSV record, fields separated by `,`, without a line end.
 */
void
bp_frame_csv_append_record (GString            *out,
                            const char * const *fields,
                            gsize               n_fields)
{
  g_return_if_fail (out != NULL);
  g_return_if_fail (fields != NULL || n_fields == 0);

  for (gsize i = 0; i < n_fields; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      bp_frame_csv_append_field (out, fields[i]);
    }
}
