/* test-frame-writer.c: JSONL/CSV framing, back-pressure, reader-gone, JSON helpers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <backplane.h>

#define GUARD_SECONDS 90

/* ---- helpers ---- */

static gboolean
guard_cb (gpointer data)
{
  g_error ("%s: gave up waiting after %d s", (const char *) data, GUARD_SECONDS);
  return G_SOURCE_REMOVE;
}

/* Waits on events, never on time: the guard only turns a hang into a failure. */
static void
run_until (gboolean   *flag,
           const char *what)
{
  guint guard = g_timeout_add_seconds (GUARD_SECONDS, guard_cb, (gpointer) what);

  while (!*flag)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
}

static void
make_pipe (int fds[2])
{
  g_assert_no_errno (pipe (fds));
}

/* Reads what is already in (or will arrive at) a blocking fd until EOF. */
static char *
read_to_eof (int    fd,
             gsize *len)
{
  GString *s = g_string_new (NULL);
  char buf[4096];

  for (;;)
    {
      ssize_t n = read (fd, buf, sizeof buf);

      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >=, 0);
      if (n == 0)
        break;
      g_string_append_len (s, buf, n);
    }
  if (len != NULL)
    *len = s->len;
  return g_string_free (s, FALSE);
}

typedef struct
{
  gboolean  done;
  gboolean  ok;
  GError   *error;
} Finish;

static void
finish_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Finish *f = user_data;

  f->ok = bp_frame_writer_finish_finish (BP_FRAME_WRITER (source), result, &f->error);
  f->done = TRUE;
}

static void
flag_cb (gpointer instance,
         gpointer user_data)
{
  (*(guint *) user_data)++;
}

static void
set_true_cb (gpointer instance,
             gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
}

static void
cancelled_cb (GCancellable *cancellable,
              gpointer      user_data)
{
  *(gboolean *) user_data = TRUE;
}

/* Finishes @writer and returns everything the read end @rfd received. */
static char *
finish_and_read (BpFrameWriter *writer,
                 int            rfd,
                 const char    *summary,
                 const GError  *error,
                 gboolean      *ok)
{
  Finish f = { 0 };
  char *text;

  bp_frame_writer_finish_async (writer, summary, error, NULL, finish_cb, &f);
  run_until (&f.done, "finish");
  g_assert_no_error (f.error);
  *ok = f.ok;
  text = read_to_eof (rfd, NULL);
  close (rfd);
  return text;
}

/* ---- framing ---- */

static void
test_jsonl_framing (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpFrameWriter) writer = NULL;
  g_autofree char *text = NULL;
  gboolean ok = FALSE;
  int fds[2];

  make_pipe (fds);
  writer = bp_frame_writer_new (fds[1], BP_FRAME_FORMAT_JSONL, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (bp_frame_writer_get_format (writer), ==, BP_FRAME_FORMAT_JSONL);
  g_assert_true (bp_frame_writer_write_header (writer, "{\"columns\":[[\"a\",\"int4\"]]}"));
  g_assert_true (bp_frame_writer_append_line (writer, "{\"a\":1}", -1));
  g_assert_true (bp_frame_writer_append_line (writer, "{\"a\":2}xyz", 7));
  g_assert_true (bp_frame_writer_wants_more (writer));
  text = finish_and_read (writer, fds[0], "{\"rows\":2}", NULL, &ok);
  g_assert_true (ok);
  g_assert_cmpstr (text, ==,
                   "{\"columns\":[[\"a\",\"int4\"]]}\n"
                   "{\"a\":1}\n"
                   "{\"a\":2}\n"
                   "{\"end\":{\"rows\":2}}\n");
  g_assert_cmpuint (bp_frame_writer_get_n_lines (writer), ==, 2);
  g_assert_cmpuint (bp_frame_writer_get_bytes_written (writer), ==, strlen (text));
  g_assert_cmpuint (bp_frame_writer_get_buffered (writer), ==, 0);
  /* Finished: nothing more is accepted. */
  g_assert_false (bp_frame_writer_append_line (writer, "{}", -1));
  g_assert_false (bp_frame_writer_wants_more (writer));
  g_assert_false (bp_frame_writer_is_reader_gone (writer));
  g_assert_false (g_cancellable_is_cancelled (bp_frame_writer_get_cancellable (writer)));
}

static void
test_jsonl_end_default (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpFrameWriter) writer = NULL;
  g_autofree char *text = NULL;
  gboolean ok = FALSE;
  int fds[2];

  make_pipe (fds);
  writer = bp_frame_writer_new (fds[1], BP_FRAME_FORMAT_JSONL, 0, &error);
  g_assert_no_error (error);
  text = finish_and_read (writer, fds[0], NULL, NULL, &ok);
  g_assert_true (ok);
  g_assert_cmpstr (text, ==, "{\"end\":{}}\n");
}

static void
test_jsonl_error_trailer (void)
{
  struct {
    GQuark      domain;
    int         code;
    const char *message;
    const char *expected;
  } cases[] = {
    { 0, BP_ERROR_BACKEND, "SQLSTATE 23505: duplicate key",
      "{\"error\":{\"name\":\"org.backplane.Backplane1.Error.Backend\","
      "\"message\":\"SQLSTATE 23505: duplicate key\"}}\n" },
    { 1, G_IO_ERROR_CANCELLED, "Operation was cancelled",
      "{\"error\":{\"name\":\"org.backplane.Backplane1.Error.Cancelled\","
      "\"message\":\"Operation was cancelled\"}}\n" },
    { 1, G_IO_ERROR_TIMED_OUT, "line 1\nsaid \"late\"",
      "{\"error\":{\"name\":\"org.backplane.Backplane1.Error.Timeout\","
      "\"message\":\"line 1\\nsaid \\\"late\\\"\"}}\n" },
    { 2, 42, "odd",
      "{\"error\":{\"name\":\"org.backplane.Backplane1.Error.Failed\",\"message\":\"odd\"}}\n" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GError) reported = NULL;
      g_autoptr(BpFrameWriter) writer = NULL;
      g_autofree char *text = NULL;
      g_autofree char *expected = NULL;
      GQuark domain = cases[i].domain == 0 ? BP_ERROR
                      : cases[i].domain == 1 ? G_IO_ERROR
                      : g_quark_from_static_string ("test-other-domain");
      gboolean ok = FALSE;
      int fds[2];

      make_pipe (fds);
      writer = bp_frame_writer_new (fds[1], BP_FRAME_FORMAT_JSONL, 0, &error);
      g_assert_no_error (error);
      g_assert_true (bp_frame_writer_write_header (writer, "{\"columns\":[]}"));
      reported = g_error_new_literal (domain, cases[i].code, cases[i].message);
      text = finish_and_read (writer, fds[0], "{\"ignored\":true}", reported, &ok);
      g_assert_true (ok);
      expected = g_strconcat ("{\"columns\":[]}\n", cases[i].expected, NULL);
      g_assert_cmpstr (text, ==, expected);
    }
}

static void
test_csv_and_raw (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpFrameWriter) csv = NULL;
  g_autoptr(BpFrameWriter) raw = NULL;
  g_autoptr(GError) failure = NULL;
  g_autofree char *text = NULL;
  g_autofree char *raw_text = NULL;
  gboolean ok = FALSE;
  int fds[2], rfds[2];

  make_pipe (fds);
  csv = bp_frame_writer_new (fds[1], BP_FRAME_FORMAT_CSV, 0, &error);
  g_assert_no_error (error);
  g_assert_true (bp_frame_writer_write_header (csv, "id,name"));
  g_assert_true (bp_frame_writer_append_line (csv, "1,\"a\nb\"", -1));  /* newlines allowed in CSV */
  /* No trailer in CSV, even with an error. */
  failure = g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND, "boom");
  text = finish_and_read (csv, fds[0], NULL, failure, &ok);
  g_assert_true (ok);
  g_assert_cmpstr (text, ==, "id,name\n1,\"a\nb\"\n");

  make_pipe (rfds);
  raw = bp_frame_writer_new (rfds[1], BP_FRAME_FORMAT_RAW, 0, &error);
  g_assert_no_error (error);
  g_assert_true (bp_frame_writer_append_bytes (raw, "abc", 3));
  g_assert_true (bp_frame_writer_append_bytes (raw, "\0def", 4));
  raw_text = finish_and_read (raw, rfds[0], "{}", NULL, &ok);
  g_assert_true (ok);
  g_assert_cmpmem (raw_text, 7, "abc\0def", 7);
  g_assert_cmpuint (bp_frame_writer_get_bytes_written (raw), ==, 7);
  g_assert_cmpuint (bp_frame_writer_get_n_lines (raw), ==, 0);
}

static void
test_regular_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpFrameWriter) writer = NULL;
  g_autofree char *path = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(GString) expected = g_string_new ("{\"columns\":[\"n\"]}\n");
  Finish f = { 0 };
  int fd, flags;

  fd = g_file_open_tmp ("bp-frame-writer-XXXXXX", &path, &error);
  g_assert_no_error (error);
  writer = bp_frame_writer_new (fd, BP_FRAME_FORMAT_JSONL, 4096, &error);
  g_assert_no_error (error);
  /* A regular file is left blocking (writes never return EAGAIN). */
  flags = fcntl (fd, F_GETFL);
  g_assert_cmpint (flags & O_NONBLOCK, ==, 0);
  g_assert_true (bp_frame_writer_write_header (writer, "{\"columns\":[\"n\"]}"));
  for (guint i = 0; i < 5000; i++)
    {
      g_autofree char *line = g_strdup_printf ("{\"n\":%u}", i);

      g_assert_true (bp_frame_writer_append_line (writer, line, -1));
      g_string_append_printf (expected, "%s\n", line);
    }
  g_string_append (expected, "{\"end\":{\"rows\":5000}}\n");
  bp_frame_writer_finish_async (writer, "{\"rows\":5000}", NULL, NULL, finish_cb, &f);
  run_until (&f.done, "file finish");
  g_assert_no_error (f.error);
  g_assert_true (f.ok);
  g_assert_true (g_file_get_contents (path, &contents, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (contents, ==, expected->str);
  g_unlink (path);
}

static void
test_invalid_fd (void)
{
  g_autoptr(GError) error = NULL;
  BpFrameWriter *writer;
  int fds[2];

  writer = bp_frame_writer_new (-1, BP_FRAME_FORMAT_JSONL, 0, &error);
  g_assert_null (writer);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  /* The read end of a pipe is not writable; the fd is closed anyway. */
  make_pipe (fds);
  writer = bp_frame_writer_new (fds[0], BP_FRAME_FORMAT_JSONL, 0, &error);
  g_assert_null (writer);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpint (fcntl (fds[0], F_GETFD), ==, -1);
  g_assert_cmpint (errno, ==, EBADF);
  close (fds[1]);
}

static void
test_sets_nonblocking (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpFrameWriter) writer = NULL;
  int fds[2];

  make_pipe (fds);
  g_assert_cmpint (fcntl (fds[1], F_GETFL) & O_NONBLOCK, ==, 0);
  writer = bp_frame_writer_new (fds[1], BP_FRAME_FORMAT_JSONL, 0, &error);
  g_assert_no_error (error);
  g_assert_cmpint (fcntl (fds[1], F_GETFL) & O_NONBLOCK, !=, 0);
  bp_frame_writer_close (writer);
  close (fds[0]);
}

/* ---- streaming: a producer honouring back-pressure, a reader thread ---- */

typedef struct
{
  int        fd;
  guint64    limit;    /* stop and close after this many bytes; 0: read to EOF */
  guint64    n_read;
  GChecksum *sum;
  gboolean   eof;
} Reader;

static gpointer
reader_thread (gpointer data)
{
  Reader *r = data;
  guint8 buf[4096];

  for (;;)
    {
      ssize_t n;

      if (r->limit != 0 && r->n_read >= r->limit)
        break;
      n = read (r->fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      g_assert_cmpint (n, >=, 0);
      if (n == 0)
        {
          r->eof = TRUE;
          break;
        }
      g_checksum_update (r->sum, buf, n);
      r->n_read += n;
    }
  close (r->fd);
  return NULL;
}

typedef struct
{
  BpFrameWriter *writer;
  guint64        target;    /* bytes of rows to produce; 0: until stopped */
  guint64        produced;  /* bytes handed to the writer, trailer included */
  guint64        rows;
  GChecksum     *sum;
  guint          n_waits;
  gsize          max_line;
  GString       *line;
  gboolean       stopped;   /* the writer refused data or a wait failed */
  Finish         finish;
} Producer;

static void produce (Producer *p);

static void
producer_finish (Producer *p)
{
  g_autofree char *summary = g_strdup_printf ("{\"rows\":%" G_GUINT64_FORMAT "}", p->rows);
  g_autofree char *trailer = g_strdup_printf ("{\"end\":%s}\n", summary);

  g_checksum_update (p->sum, (const guchar *) trailer, -1);
  p->produced += strlen (trailer);
  bp_frame_writer_finish_async (p->writer, summary, NULL, NULL, finish_cb, &p->finish);
}

static void
wait_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Producer *p = user_data;
  g_autoptr(GError) error = NULL;

  if (!bp_frame_writer_wait_writable_finish (BP_FRAME_WRITER (source), result, &error))
    {
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
      p->stopped = TRUE;
      producer_finish (p);
      return;
    }
  produce (p);
}

static void
produce (Producer *p)
{
  static const char pad[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

  while (bp_frame_writer_wants_more (p->writer))
    {
      if (p->target != 0 && p->produced >= p->target)
        {
          producer_finish (p);
          return;
        }
      g_string_printf (p->line, "{\"n\":%" G_GUINT64_FORMAT ",\"pad\":\"", p->rows);
      for (guint i = 0; i < 16; i++)
        g_string_append (p->line, pad + (p->rows + i) % (sizeof pad - 1));
      g_string_append (p->line, "\"}");
      if (!bp_frame_writer_append_line (p->writer, p->line->str, p->line->len))
        {
          p->stopped = TRUE;
          producer_finish (p);
          return;
        }
      p->max_line = MAX (p->max_line, p->line->len + 1);
      g_string_append_c (p->line, '\n');
      g_checksum_update (p->sum, (const guchar *) p->line->str, p->line->len);
      p->produced += p->line->len;
      p->rows++;
    }
  p->n_waits++;
  bp_frame_writer_wait_writable_async (p->writer, NULL, wait_cb, p);
}

static void
test_back_pressure_256mib (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpFrameWriter) writer = NULL;
  g_autoptr(GThread) thread = NULL;
  const gsize max_buffer = 256 * 1024;
  const char *header = "{\"columns\":[[\"n\",\"int8\"],[\"pad\",\"text\"]]}";
  Reader r = { 0 };
  Producer p = { 0 };
  int fds[2];

  make_pipe (fds);
  writer = bp_frame_writer_new (fds[1], BP_FRAME_FORMAT_JSONL, max_buffer, &error);
  g_assert_no_error (error);
  r.fd = fds[0];
  r.sum = g_checksum_new (G_CHECKSUM_SHA256);
  p.writer = writer;
  p.target = G_GUINT64_CONSTANT (256) * 1024 * 1024;
  p.sum = g_checksum_new (G_CHECKSUM_SHA256);
  p.line = g_string_new (NULL);

  g_assert_true (bp_frame_writer_write_header (writer, header));
  g_checksum_update (p.sum, (const guchar *) header, -1);
  g_checksum_update (p.sum, (const guchar *) "\n", 1);
  p.produced = strlen (header) + 1;

  thread = g_thread_new ("slow-reader", reader_thread, &r);
  produce (&p);
  run_until (&p.finish.done, "256 MiB stream");
  g_assert_no_error (p.finish.error);
  g_assert_true (p.finish.ok);
  g_thread_join (g_steal_pointer (&thread));

  g_assert_true (r.eof);
  g_assert_false (p.stopped);
  g_assert_cmpuint (r.n_read, ==, p.produced);
  g_assert_cmpuint (bp_frame_writer_get_bytes_written (writer), ==, p.produced);
  g_assert_cmpstr (g_checksum_get_string (r.sum), ==, g_checksum_get_string (p.sum));
  g_assert_cmpuint (bp_frame_writer_get_n_lines (writer), ==, p.rows);
  /* Back-pressure worked: the producer had to wait, and memory stayed
   * within the bound plus the one line that crossed it. */
  g_assert_cmpuint (p.n_waits, >, 0);
  g_assert_cmpuint (bp_frame_writer_get_max_buffered (writer), >=, max_buffer);
  g_assert_cmpuint (bp_frame_writer_get_max_buffered (writer), <=, max_buffer + p.max_line);
  g_assert_false (bp_frame_writer_is_reader_gone (writer));

  g_checksum_free (r.sum);
  g_checksum_free (p.sum);
  g_string_free (p.line, TRUE);
}

static void
test_reader_gone_while_streaming (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpFrameWriter) writer = NULL;
  g_autoptr(GThread) thread = NULL;
  Reader r = { 0 };
  Producer p = { 0 };
  guint gone = 0;
  gboolean cancelled = FALSE;
  int fds[2];

  make_pipe (fds);
  writer = bp_frame_writer_new (fds[1], BP_FRAME_FORMAT_JSONL, 128 * 1024, &error);
  g_assert_no_error (error);
  g_signal_connect (writer, "reader-gone", G_CALLBACK (flag_cb), &gone);
  g_cancellable_connect (bp_frame_writer_get_cancellable (writer), G_CALLBACK (cancelled_cb),
                         &cancelled, NULL);
  r.fd = fds[0];
  r.limit = 10 * 1024 * 1024;
  r.sum = g_checksum_new (G_CHECKSUM_SHA256);
  p.writer = writer;
  p.target = 0;  /* endless: only the reader going away stops it */
  p.sum = g_checksum_new (G_CHECKSUM_SHA256);
  p.line = g_string_new (NULL);

  g_assert_true (bp_frame_writer_write_header (writer, "{\"columns\":[]}"));
  thread = g_thread_new ("early-closer", reader_thread, &r);
  produce (&p);
  run_until (&p.finish.done, "reader gone while streaming");
  g_thread_join (g_steal_pointer (&thread));

  g_assert_true (p.stopped);
  g_assert_cmpuint (gone, ==, 1);
  g_assert_true (cancelled);
  g_assert_true (bp_frame_writer_is_reader_gone (writer));
  g_assert_false (p.finish.ok);
  g_assert_error (p.finish.error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_assert_cmpuint (r.n_read, >=, r.limit);
  g_assert_cmpuint (bp_frame_writer_get_bytes_written (writer), >=, r.n_read);
  g_assert_false (bp_frame_writer_wants_more (writer));
  g_assert_false (bp_frame_writer_append_line (writer, "{}", -1));
  g_clear_error (&p.finish.error);

  g_checksum_free (r.sum);
  g_checksum_free (p.sum);
  g_string_free (p.line, TRUE);
}

/* The producer is idle (waiting on its backend), nothing is being written:
 * the POLLHUP/POLLERR watch alone must notice the reader closing. */
static void
check_reader_gone_when_idle (int wfd,
                             int rfd)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpFrameWriter) writer = NULL;
  const char *header = "{\"columns\":[\"x\"]}";
  char buf[64];
  guint gone = 0;
  gboolean cancelled = FALSE;
  gboolean gone_flag = FALSE;
  Finish f = { 0 };
  gsize want = strlen (header) + 1;
  gsize got = 0;

  writer = bp_frame_writer_new (wfd, BP_FRAME_FORMAT_JSONL, 0, &error);
  g_assert_no_error (error);
  g_signal_connect (writer, "reader-gone", G_CALLBACK (flag_cb), &gone);
  g_signal_connect (writer, "reader-gone", G_CALLBACK (set_true_cb), &gone_flag);
  g_cancellable_connect (bp_frame_writer_get_cancellable (writer), G_CALLBACK (cancelled_cb),
                         &cancelled, NULL);
  g_assert_true (bp_frame_writer_write_header (writer, header));

  /* Let the header reach the fd, then read it and hang up. */
  while (bp_frame_writer_get_bytes_written (writer) < want)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (bp_frame_writer_get_buffered (writer), ==, 0);
  while (got < want)
    {
      ssize_t n = read (rfd, buf + got, sizeof buf - got);

      g_assert_cmpint (n, >, 0);
      got += n;
    }
  g_assert_cmpmem (buf, got, "{\"columns\":[\"x\"]}\n", want);
  close (rfd);

  run_until (&gone_flag, "reader gone while idle");
  g_assert_cmpuint (gone, ==, 1);
  g_assert_true (cancelled);
  g_assert_false (bp_frame_writer_wants_more (writer));
  g_assert_false (bp_frame_writer_append_line (writer, "{\"x\":1}", -1));

  bp_frame_writer_finish_async (writer, NULL, NULL, NULL, finish_cb, &f);
  run_until (&f.done, "finish after reader gone");
  g_assert_false (f.ok);
  g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE);
  g_clear_error (&f.error);
}

static void
test_reader_gone_idle_pipe (void)
{
  int fds[2];

  make_pipe (fds);
  check_reader_gone_when_idle (fds[1], fds[0]);
}

static void
test_reader_gone_idle_socket (void)
{
  int fds[2];

  g_assert_no_errno (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds));
  check_reader_gone_when_idle (fds[1], fds[0]);
}

static void
test_close_aborts (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpFrameWriter) writer = NULL;
  g_autofree char *text = NULL;
  gboolean cancelled = FALSE;
  guint gone = 0;
  Finish f = { 0 };
  int fds[2];

  make_pipe (fds);
  writer = bp_frame_writer_new (fds[1], BP_FRAME_FORMAT_JSONL, 0, &error);
  g_assert_no_error (error);
  g_signal_connect (writer, "reader-gone", G_CALLBACK (flag_cb), &gone);
  g_cancellable_connect (bp_frame_writer_get_cancellable (writer), G_CALLBACK (cancelled_cb),
                         &cancelled, NULL);
  g_assert_true (bp_frame_writer_write_header (writer, "{\"columns\":[]}"));
  bp_frame_writer_close (writer);
  g_assert_true (cancelled);
  g_assert_false (bp_frame_writer_append_line (writer, "{}", -1));

  bp_frame_writer_finish_async (writer, NULL, NULL, NULL, finish_cb, &f);
  run_until (&f.done, "finish after close");
  g_assert_false (f.ok);
  g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&f.error);
  g_assert_cmpuint (gone, ==, 0);
  /* The fd is closed: the reader sees EOF, and never a trailer. */
  text = read_to_eof (fds[0], NULL);
  g_assert_null (strstr (text, "end"));
  close (fds[0]);
}

static void
test_finish_cancelled (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpFrameWriter) writer = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *big = g_strnfill (1000, 'x');
  Finish f = { 0 };
  int fds[2];

  /* Nobody reads: the drain cannot complete until it is cancelled. */
  make_pipe (fds);
  writer = bp_frame_writer_new (fds[1], BP_FRAME_FORMAT_RAW, 0, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < 200; i++)
    g_assert_true (bp_frame_writer_append_bytes (writer, big, 1000));
  bp_frame_writer_finish_async (writer, NULL, NULL, cancellable, finish_cb, &f);
  while (bp_frame_writer_get_bytes_written (writer) == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (f.done);
  g_cancellable_cancel (cancellable);
  run_until (&f.done, "cancelled finish");
  g_assert_false (f.ok);
  g_assert_error (f.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&f.error);
  g_assert_true (g_cancellable_is_cancelled (bp_frame_writer_get_cancellable (writer)));
  close (fds[0]);
}

typedef struct
{
  gboolean done;
  gboolean ok;
  GError  *error;
} Wait;

static void
wait_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Wait *w = user_data;

  w->ok = bp_frame_writer_wait_writable_finish (BP_FRAME_WRITER (source), result, &w->error);
  w->done = TRUE;
}

static void
test_wait_and_drained (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpFrameWriter) writer = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autofree char *chunk = g_strnfill (4096, 'y');
  g_autofree char *drain = NULL;
  Wait immediate = { 0 }, blocked = { 0 }, cancelled = { 0 };
  guint drained = 0;
  gsize n_drained = 0;
  int fds[2];

  make_pipe (fds);
  writer = bp_frame_writer_new (fds[1], BP_FRAME_FORMAT_RAW, 16 * 1024, &error);
  g_assert_no_error (error);
  g_signal_connect (writer, "drained", G_CALLBACK (flag_cb), &drained);

  /* Room: completes at once (asynchronously). */
  bp_frame_writer_wait_writable_async (writer, NULL, wait_done_cb, &immediate);
  run_until (&immediate.done, "immediate wait");
  g_assert_true (immediate.ok);

  /* Fill the pipe (64 KiB) and the buffer; nobody reads yet. */
  while (bp_frame_writer_wants_more (writer))
    {
      g_assert_true (bp_frame_writer_append_bytes (writer, chunk, 4096));
      g_main_context_iteration (NULL, FALSE);
    }
  g_assert_cmpuint (bp_frame_writer_get_buffered (writer), >=, 16 * 1024);
  bp_frame_writer_wait_writable_async (writer, NULL, wait_done_cb, &blocked);
  bp_frame_writer_wait_writable_async (writer, cancellable, wait_done_cb, &cancelled);
  g_cancellable_cancel (cancellable);
  run_until (&cancelled.done, "cancelled wait");
  g_assert_error (cancelled.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&cancelled.error);
  g_assert_false (blocked.done);
  g_assert_cmpuint (drained, ==, 0);

  /* The reader catches up: drained fires and the waiter completes. */
  while (!blocked.done)
    {
      char buf[8192];
      ssize_t n;

      g_main_context_iteration (NULL, FALSE);
      n = read (fds[0], buf, sizeof buf);
      g_assert_cmpint (n, >, 0);
      n_drained += n;
    }
  g_assert_true (blocked.ok);
  g_assert_cmpuint (drained, ==, 1);
  g_assert_true (bp_frame_writer_wants_more (writer));
  g_assert_cmpuint (bp_frame_writer_get_buffered (writer), <=, 8 * 1024);
  bp_frame_writer_close (writer);
  close (fds[0]);
}

static void
test_dispose_closes (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = NULL;
  BpFrameWriter *writer;
  guint guard;
  int fds[2];

  /* A producer that drops the writer without finishing it: the fd is
   * closed (no trailer) and its cancellable fires. */
  make_pipe (fds);
  writer = bp_frame_writer_new (fds[1], BP_FRAME_FORMAT_JSONL, 0, &error);
  g_assert_no_error (error);
  cancellable = g_object_ref (bp_frame_writer_get_cancellable (writer));
  g_assert_true (bp_frame_writer_write_header (writer, "{\"columns\":[]}"));
  g_object_unref (writer);

  guard = g_timeout_add_seconds (GUARD_SECONDS, guard_cb, (gpointer) "dispose");
  for (;;)
    {
      struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
      char buf[256];

      g_main_context_iteration (NULL, FALSE);
      g_assert_cmpint (poll (&pfd, 1, 0), >=, 0);
      if ((pfd.revents & POLLHUP) != 0 && (pfd.revents & POLLIN) == 0)
        break;
      if ((pfd.revents & POLLIN) != 0)
        g_assert_cmpint (read (fds[0], buf, sizeof buf), >, 0);
    }
  g_source_remove (guard);
  g_assert_true (g_cancellable_is_cancelled (cancellable));
  close (fds[0]);
}

/* ---- JSON and CSV helpers ---- */

static char *
json_string (const char *text,
             gssize      len)
{
  GString *s = g_string_new (NULL);

  bp_frame_json_append_string_len (s, text, len);
  return g_string_free (s, FALSE);
}

static void
test_json_string (void)
{
  struct {
    const char *in;
    gssize      len;
    const char *out;
  } cases[] = {
    { "plain", -1, "\"plain\"" },
    { "", -1, "\"\"" },
    { "q\"b\\s/", -1, "\"q\\\"b\\\\s/\"" },
    { "\b\f\n\r\t", -1, "\"\\b\\f\\n\\r\\t\"" },
    { "\x01\x1f\x7f", -1, "\"\\u0001\\u001f\x7f\"" },
    { "a\0b", 3, "\"a\\u0000b\"" },
    { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", -1, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"" },
    { "x\xffy", -1, "\"x\xef\xbf\xbdy\"" },                          /* invalid byte */
    { "\xe2\x82", -1, "\"\xef\xbf\xbd\xef\xbf\xbd\"" },              /* truncated sequence */
    { "\xc0\xaf", -1, "\"\xef\xbf\xbd\xef\xbf\xbd\"" },              /* overlong '/' */
    { "\xed\xa0\x80", -1, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },  /* surrogate */
    { "\xf4\x90\x80\x80", -1, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"" },  /* > U+10FFFF */
    { "a\xe2\x80\xa8" "b\xe2\x80\xa9", -1, "\"a\\u2028b\\u2029\"" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *out = json_string (cases[i].in, cases[i].len);

      g_assert_cmpstr (out, ==, cases[i].out);
      g_assert_true (g_utf8_validate (out, -1, NULL));
    }
  {
    g_autofree char *null_out = json_string (NULL, -1);
    g_autoptr(GString) s = g_string_new ("[");

    g_assert_cmpstr (null_out, ==, "null");
    bp_frame_json_append_string (s, "z");
    g_assert_cmpstr (s->str, ==, "[\"z\"");
  }
}

static char *
json_variant (GVariant *v)
{
  GString *s = g_string_new (NULL);

  g_variant_ref_sink (v);
  bp_frame_json_append_variant (s, v);
  g_variant_unref (v);
  return g_string_free (s, FALSE);
}

static void
check_variant (GVariant   *v,
               const char *expected)
{
  g_autofree char *out = json_variant (v);

  g_assert_cmpstr (out, ==, expected);
}

static void
test_json_variant (void)
{
  check_variant (g_variant_new_uint64 (G_MAXUINT64), "18446744073709551615");
  check_variant (g_variant_new_int64 (G_MININT64), "-9223372036854775808");
  check_variant (g_variant_new_int64 (G_MAXINT64), "9223372036854775807");
  check_variant (g_variant_new_int32 (G_MININT32), "-2147483648");
  check_variant (g_variant_new_uint32 (G_MAXUINT32), "4294967295");
  check_variant (g_variant_new_int16 (-7), "-7");
  check_variant (g_variant_new_uint16 (65535), "65535");
  check_variant (g_variant_new_byte (255), "255");
  check_variant (g_variant_new_handle (3), "3");
  check_variant (g_variant_new_boolean (TRUE), "true");
  check_variant (g_variant_new_boolean (FALSE), "false");
  check_variant (g_variant_new_double (0.1), "0.1");
  check_variant (g_variant_new_double (1.0), "1");
  check_variant (g_variant_new_double (-2.5), "-2.5");
  check_variant (g_variant_new_double (1e300), "1e+300");
  check_variant (g_variant_new_double (1.0 / 3.0), "0.3333333333333333");
  check_variant (g_variant_new_double (NAN), "null");
  check_variant (g_variant_new_double (INFINITY), "null");
  check_variant (g_variant_new_double (-INFINITY), "null");
  check_variant (g_variant_new_string ("a\"b\n"), "\"a\\\"b\\n\"");
  check_variant (g_variant_new_object_path ("/"), "null");
  check_variant (g_variant_new_object_path ("/a/b"), "\"/a/b\"");
  check_variant (g_variant_new_signature ("a{sv}"), "\"a{sv}\"");
  check_variant (g_variant_new_variant (g_variant_new_int32 (5)), "5");
  check_variant (g_variant_new_bytestring ("hello"), "\"aGVsbG8A\"");  /* with its NUL */
  check_variant (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, "hello", 5, 1), "\"aGVsbG8=\"");
  check_variant (g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, NULL, 0, 1), "\"\"");
  check_variant (g_variant_new_parsed ("@as []"), "[]");
  check_variant (g_variant_new_parsed ("@a{sv} {}"), "{}");
  check_variant (g_variant_new_parsed ("[<1>, <'s'>, <@o '/'>, <@mi nothing>, <@mi just 4>]"),
                 "[1,\"s\",null,null,4]");
  check_variant (g_variant_new_parsed ("(1, 'x', true)"), "[1,\"x\",true]");
  check_variant (g_variant_new_parsed ("@a{ix} {1: 2, -3: 4}"), "{\"1\":2,\"-3\":4}");
  check_variant (g_variant_new_parsed ("@a{ss} {'k\"': 'v'}"), "{\"k\\\"\":\"v\"}");
  check_variant (g_variant_new_parsed ("{'k', 1}"), "[\"k\",1]");
  check_variant (g_variant_new_parsed ("@aay [b'ab', b'']"), "[\"YWIA\",\"AA==\"]");
  check_variant (g_variant_new_parsed ("{'a': <int32 1>, 'b': <['x', 'y']>, "
                                       "'c': <{'d': <@o '/'>, 'e': <[<{'f': <2.5>}>]>}>, "
                                       "'g': <@mi nothing>, 'h': <uint64 18446744073709551615>, "
                                       "'i': <int64 -9223372036854775808>}"),
                 "{\"a\":1,\"b\":[\"x\",\"y\"],\"c\":{\"d\":null,\"e\":[{\"f\":2.5}]},"
                 "\"g\":null,\"h\":18446744073709551615,\"i\":-9223372036854775808}");
}

static void
test_json_error (void)
{
  g_autoptr(GString) s = g_string_new (NULL);
  g_autoptr(GError) error = g_error_new_literal (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                                                 "max-rows 10 reached (retry-after-ms=5)");

  bp_frame_json_append_error (s, error);
  g_assert_cmpstr (s->str, ==,
                   "{\"error\":{\"name\":\"org.backplane.Backplane1.Error.LimitExceeded\","
                   "\"message\":\"max-rows 10 reached (retry-after-ms=5)\"}}");
}

static char *
csv_field (const char *text)
{
  GString *s = g_string_new (NULL);

  bp_frame_csv_append_field (s, text);
  return g_string_free (s, FALSE);
}

static void
test_csv_quoting (void)
{
  struct {
    const char *in;
    const char *out;
  } cases[] = {
    { NULL, "" },
    { "", "\"\"" },
    { "plain", "plain" },
    { "a,b", "\"a,b\"" },
    { "say \"hi\"", "\"say \"\"hi\"\"\"" },
    { "\"", "\"\"\"\"" },
    { "line\nbreak", "\"line\nbreak\"" },
    { "cr\rlf", "\"cr\rlf\"" },
    { " lead", "\" lead\"" },
    { "trail\t", "\"trail\t\"" },
    { "in side", "in side" },
    { "caf\xc3\xa9", "caf\xc3\xa9" },
  };
  const char *record[] = { "1", NULL, "", "x,y", "q\"" };
  g_autoptr(GString) s = g_string_new (NULL);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *out = csv_field (cases[i].in);

      g_assert_cmpstr (out, ==, cases[i].out);
    }
  bp_frame_csv_append_record (s, record, G_N_ELEMENTS (record));
  g_assert_cmpstr (s->str, ==, "1,,\"\",\"x,y\",\"q\"\"\"");
  g_string_truncate (s, 0);
  bp_frame_csv_append_record (s, record + 1, 1);
  g_assert_cmpstr (s->str, ==, "");
}

int
main (int    argc,
      char **argv)
{
  /* Writing to a closed pipe must be an EPIPE error, not a signal;
   * backplaned does the same at startup. */
  signal (SIGPIPE, SIG_IGN);
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/frame-writer/jsonl/framing", test_jsonl_framing);
  g_test_add_func ("/frame-writer/jsonl/end-default", test_jsonl_end_default);
  g_test_add_func ("/frame-writer/jsonl/error-trailer", test_jsonl_error_trailer);
  g_test_add_func ("/frame-writer/csv-and-raw", test_csv_and_raw);
  g_test_add_func ("/frame-writer/regular-file", test_regular_file);
  g_test_add_func ("/frame-writer/invalid-fd", test_invalid_fd);
  g_test_add_func ("/frame-writer/sets-nonblocking", test_sets_nonblocking);
  g_test_add_func ("/frame-writer/wait-and-drained", test_wait_and_drained);
  g_test_add_func ("/frame-writer/back-pressure/256mib", test_back_pressure_256mib);
  g_test_add_func ("/frame-writer/reader-gone/streaming", test_reader_gone_while_streaming);
  g_test_add_func ("/frame-writer/reader-gone/idle-pipe", test_reader_gone_idle_pipe);
  g_test_add_func ("/frame-writer/reader-gone/idle-socket", test_reader_gone_idle_socket);
  g_test_add_func ("/frame-writer/close-aborts", test_close_aborts);
  g_test_add_func ("/frame-writer/finish-cancelled", test_finish_cancelled);
  g_test_add_func ("/frame-writer/dispose-closes", test_dispose_closes);
  g_test_add_func ("/frame-json/string", test_json_string);
  g_test_add_func ("/frame-json/variant", test_json_variant);
  g_test_add_func ("/frame-json/error", test_json_error);
  g_test_add_func ("/frame-csv/quoting", test_csv_quoting);

  return g_test_run ();
}
