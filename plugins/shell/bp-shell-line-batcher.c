/* bp-shell-line-batcher.c: process output → batches of (stream, line)
 *
 * Bytes read from a child's stdout (stream 1) and stderr (stream 2) are
 * split into lines: a line ends at '\n', which is dropped (a '\r' before it
 * is kept), a partial line waits for the next chunk of its stream, a final
 * line without '\n' comes out at bp_shell_line_batcher_end_stream(), and a
 * line longer than max-line-bytes is cut into pieces (at a UTF-8 character
 * boundary where one is near). Lines become valid UTF-8 without NUL (invalid
 * bytes and NULs turn into U+FFFD) so they fit the D-Bus `s` type.
 *
 * Complete lines are queued in the order they were pushed, across streams,
 * straight into the serialized form of an `a(us)` (GVariant's format: each
 * (stream, line) element 4-aligned, then the table of little-endian end
 * offsets): one memcpy a line, no GVariant a line. They are emitted as one
 * `batch` signal holding that `a(us)` when
 *   - max-lines are pending, or the next line would take the pending bytes
 *     over max-bytes (so a batch stays under max-bytes unless a single line
 *     is longer), or
 *   - the flush timer fires: it is armed on a #BpClock only while lines are
 *     pending (default 100 ms after the first pending line), or
 *   - bp_shell_line_batcher_flush() is called.
 *
 * Context: not thread-safe; use it from the thread-default main context it
 * was created in, where the timer runs and `batch` is emitted.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-shell-line-batcher.h"
#include "bp-shell-spawn-options.h"

#define N_STREAMS 3 /* indexed by stream number; 0 is unused */

struct _BpShellLineBatcher
{
  GObject       parent_instance;

  BpClock      *clock;          /* (owned) */
  GMainContext *context;        /* (owned) */
  GSource      *flush_source;   /* (owned) (nullable): armed only while lines are pending */
  GString      *partial[N_STREAMS]; /* (owned) (nullable): bytes after the last '\n' */
  GByteArray   *body;           /* (owned): serialized (us) elements of the pending lines */
  GArray       *ends;           /* (owned) (element-type gsize): end offset of each element in @body */
  gsize         pending_bytes;  /* line bytes pending (what max-bytes bounds) */

  gint64        flush_interval_us;
  gsize         max_bytes;
  gsize         max_line_bytes;
  guint         max_lines;
};

G_DEFINE_FINAL_TYPE (BpShellLineBatcher, bp_shell_line_batcher, G_TYPE_OBJECT)

enum {
  SIGNAL_BATCH,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
bp_shell_line_batcher_dispose (GObject *object)
{
  BpShellLineBatcher *self = BP_SHELL_LINE_BATCHER (object);

  if (self->flush_source != NULL)
    {
      g_source_destroy (self->flush_source);
      g_clear_pointer (&self->flush_source, g_source_unref);
    }

  G_OBJECT_CLASS (bp_shell_line_batcher_parent_class)->dispose (object);
}

static void
bp_shell_line_batcher_finalize (GObject *object)
{
  BpShellLineBatcher *self = BP_SHELL_LINE_BATCHER (object);

  for (guint i = 0; i < N_STREAMS; i++)
    if (self->partial[i] != NULL)
      g_string_free (self->partial[i], TRUE);
  g_clear_pointer (&self->body, g_byte_array_unref);
  g_clear_pointer (&self->ends, g_array_unref);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_object (&self->clock);

  G_OBJECT_CLASS (bp_shell_line_batcher_parent_class)->finalize (object);
}

static void
bp_shell_line_batcher_class_init (BpShellLineBatcherClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bp_shell_line_batcher_dispose;
  object_class->finalize = bp_shell_line_batcher_finalize;

  /**
   * BpShellLineBatcher::batch:
   * @self: the batcher
   * @lines: an `a(us)` of (stream, line), in the order read
   *
   * Emitted with a non-empty batch of lines.
   */
  signals[SIGNAL_BATCH] =
    g_signal_new ("batch",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_VARIANT);
}

static void
bp_shell_line_batcher_init (BpShellLineBatcher *self)
{
  self->body = g_byte_array_new ();
  self->ends = g_array_new (FALSE, FALSE, sizeof (gsize));
  self->flush_interval_us = BP_SHELL_DEFAULT_FLUSH_INTERVAL_US;
  self->max_lines = BP_SHELL_DEFAULT_BATCH_MAX_LINES;
  self->max_bytes = BP_SHELL_DEFAULT_BATCH_MAX_BYTES;
  self->max_line_bytes = BP_SHELL_DEFAULT_MAX_LINE_BYTES;
}

/**
 * bp_shell_line_batcher_new:
 * @clock: (nullable): the clock of the flush timer; %NULL for the default
 *
 * Creates a batcher bound to the thread-default main context.
 *
 * Returns: (transfer full): a new batcher
 */
BpShellLineBatcher *
bp_shell_line_batcher_new (BpClock *clock)
{
  BpShellLineBatcher *self;

  g_return_val_if_fail (clock == NULL || BP_IS_CLOCK (clock), NULL);

  self = g_object_new (BP_TYPE_SHELL_LINE_BATCHER, NULL);
  self->clock = clock != NULL ? g_object_ref (clock) : g_object_ref (bp_clock_get_default ());
  self->context = g_main_context_ref_thread_default ();
  return self;
}

/**
 * bp_shell_line_batcher_set_flush_interval:
 * @self: a batcher
 * @interval_us: how long the first pending line may wait (>= 0)
 *
 * Applies from the next time the timer is armed.
 */
void
bp_shell_line_batcher_set_flush_interval (BpShellLineBatcher *self,
                                          gint64              interval_us)
{
  g_return_if_fail (BP_IS_SHELL_LINE_BATCHER (self));
  g_return_if_fail (interval_us >= 0);

  self->flush_interval_us = interval_us;
}

/**
 * bp_shell_line_batcher_set_max_batch:
 * @self: a batcher
 * @max_lines: most lines in one batch (> 0)
 * @max_bytes: most line bytes in one batch (> 0); a single longer line
 *   still goes out, alone
 */
void
bp_shell_line_batcher_set_max_batch (BpShellLineBatcher *self,
                                     guint               max_lines,
                                     gsize               max_bytes)
{
  g_return_if_fail (BP_IS_SHELL_LINE_BATCHER (self));
  g_return_if_fail (max_lines > 0);
  g_return_if_fail (max_bytes > 0);

  self->max_lines = max_lines;
  self->max_bytes = max_bytes;
}

/**
 * bp_shell_line_batcher_set_max_line_bytes:
 * @self: a batcher
 * @max_line_bytes: longer lines are cut into pieces of at most this many
 *   input bytes (> 0)
 */
void
bp_shell_line_batcher_set_max_line_bytes (BpShellLineBatcher *self,
                                          gsize               max_line_bytes)
{
  g_return_if_fail (BP_IS_SHELL_LINE_BATCHER (self));
  g_return_if_fail (max_line_bytes > 0);

  self->max_line_bytes = max_line_bytes;
}

static gboolean
flush_timeout_cb (gpointer user_data)
{
  BpShellLineBatcher *self = user_data;

  /* The source is destroyed when we return; forget it first so that
   * flush() does not destroy it again. */
  g_clear_pointer (&self->flush_source, g_source_unref);
  bp_shell_line_batcher_flush (self);
  return G_SOURCE_REMOVE;
}

static void
ensure_flush_timer (BpShellLineBatcher *self)
{
  if (self->flush_source != NULL)
    return;

  /* The source does not hold a reference: dispose destroys it. */
  self->flush_source = bp_clock_timeout_source_new (self->clock, self->flush_interval_us);
  g_source_set_callback (self->flush_source, flush_timeout_cb, self, NULL);
  g_source_attach (self->flush_source, self->context);
}

/* Appends one (stream, line) element to the serialized array: padding to
 * the element alignment (4), the stream as a native-endian guint32, the
 * line and its NUL. @line must be valid UTF-8 without NUL. */
static void
append_element (BpShellLineBatcher *self,
                guint32             stream,
                const char         *line,
                gsize               len)
{
  static const guint8 zeros[3] = { 0, };
  gsize end;

  if (self->body->len % 4 != 0)
    g_byte_array_append (self->body, zeros, 4 - self->body->len % 4);
  g_byte_array_append (self->body, (const guint8 *) &stream, sizeof stream);
  g_byte_array_append (self->body, (const guint8 *) line, len);
  g_byte_array_append (self->body, zeros, 1);
  end = self->body->len;
  g_array_append_val (self->ends, end);
}

static void
queue_line (BpShellLineBatcher *self,
            guint               stream,
            const char         *data,
            gsize               len)
{
  g_autofree char *fixed = NULL;

  /* Common case: already valid UTF-8 (g_utf8_validate_len() also refuses
   * NUL); otherwise invalid bytes and NULs become U+FFFD. */
  if (!g_utf8_validate_len (data, len, NULL))
    {
      fixed = g_utf8_make_valid (data, len);
      data = fixed;
      len = strlen (fixed);
    }

  if (self->ends->len > 0 && self->pending_bytes + len > self->max_bytes)
    bp_shell_line_batcher_flush (self);

  append_element (self, stream, data, len);
  self->pending_bytes += len;

  if (self->ends->len >= self->max_lines || self->pending_bytes >= self->max_bytes)
    bp_shell_line_batcher_flush (self);
  else
    ensure_flush_timer (self);
}

/* Where to cut a run of bytes that is too long: at @max, moved back by up to
 * three bytes so that a UTF-8 sequence is not split. */
static gsize
cut_point (const char *data,
           gsize       max)
{
  gsize cut = max;

  for (guint i = 0; i < 3 && cut > 1; i++)
    {
      if (((guchar) data[cut] & 0xC0) != 0x80)
        return cut;
      cut--;
    }
  return ((guchar) data[cut] & 0xC0) != 0x80 ? cut : max;
}

/* Emits pieces of @buf while more than max_line_bytes remain, keeping the
 * rest (at least one byte) in @buf. */
static void
emit_overlong (BpShellLineBatcher *self,
               guint               stream,
               GString            *buf)
{
  gsize done = 0;

  while (buf->len - done > self->max_line_bytes)
    {
      gsize cut = cut_point (buf->str + done, self->max_line_bytes);

      queue_line (self, stream, buf->str + done, cut);
      done += cut;
    }
  if (done > 0)
    g_string_erase (buf, 0, done);
}

/**
 * bp_shell_line_batcher_push:
 * @self: a batcher
 * @stream: 1 (stdout) or 2 (stderr)
 * @data: (array length=len): bytes as read
 * @len: length of @data
 *
 * Splits @data into lines; may emit `batch` synchronously when a size cap is
 * reached.
 */
void
bp_shell_line_batcher_push (BpShellLineBatcher *self,
                            guint               stream,
                            const guint8       *data,
                            gsize               len)
{
  const char *p = (const char *) data;
  const char *end = p + len;
  GString *buf;

  g_return_if_fail (BP_IS_SHELL_LINE_BATCHER (self));
  g_return_if_fail (stream == 1 || stream == 2);
  g_return_if_fail (data != NULL || len == 0);

  if (self->partial[stream] == NULL)
    self->partial[stream] = g_string_new (NULL);
  buf = self->partial[stream];

  while (p < end)
    {
      const char *nl = memchr (p, '\n', end - p);

      if (nl == NULL)
        {
          g_string_append_len (buf, p, end - p);
          emit_overlong (self, stream, buf);
          break;
        }

      if (buf->len == 0 && (gsize) (nl - p) <= self->max_line_bytes)
        {
          /* Common case: a whole line inside this chunk. */
          queue_line (self, stream, p, nl - p);
        }
      else
        {
          g_string_append_len (buf, p, nl - p);
          emit_overlong (self, stream, buf);
          queue_line (self, stream, buf->str, buf->len);
          g_string_truncate (buf, 0);
        }
      p = nl + 1;
    }
}

/**
 * bp_shell_line_batcher_end_stream:
 * @self: a batcher
 * @stream: 1 or 2
 *
 * The stream reached end-of-file: a last line without '\n' is queued.
 */
void
bp_shell_line_batcher_end_stream (BpShellLineBatcher *self,
                                  guint               stream)
{
  GString *buf;

  g_return_if_fail (BP_IS_SHELL_LINE_BATCHER (self));
  g_return_if_fail (stream == 1 || stream == 2);

  buf = self->partial[stream];
  if (buf == NULL || buf->len == 0)
    return;
  queue_line (self, stream, buf->str, buf->len);
  g_string_truncate (buf, 0);
}

/**
 * bp_shell_line_batcher_flush:
 * @self: a batcher
 *
 * Emits `batch` now if any line is pending and disarms the timer.
 * Partial lines stay until their newline or end_stream().
 */
void
bp_shell_line_batcher_flush (BpShellLineBatcher *self)
{
  g_autoptr(GVariant) batch = NULL;
  g_autoptr(GBytes) bytes = NULL;
  gsize body_size, n, offset_size;

  g_return_if_fail (BP_IS_SHELL_LINE_BATCHER (self));

  if (self->flush_source != NULL)
    {
      g_source_destroy (self->flush_source);
      g_clear_pointer (&self->flush_source, g_source_unref);
    }
  n = self->ends->len;
  if (n == 0)
    return;

  /* The framing offsets after the elements: each as wide as the whole
   * container needs (GVariant picks the smallest of 1, 2, 4, 8 bytes that
   * can address it), little-endian. */
  body_size = self->body->len;
  if (body_size + n <= G_MAXUINT8)
    offset_size = 1;
  else if (body_size + 2 * n <= G_MAXUINT16)
    offset_size = 2;
  else if (body_size + 4 * n <= G_MAXUINT32)
    offset_size = 4;
  else
    offset_size = 8;
  for (gsize i = 0; i < n; i++)
    {
      guint64 le = GUINT64_TO_LE ((guint64) g_array_index (self->ends, gsize, i));

      g_byte_array_append (self->body, (const guint8 *) &le, offset_size);
    }

  bytes = g_byte_array_free_to_bytes (g_steal_pointer (&self->body));
  self->body = g_byte_array_sized_new (MIN (body_size + n * offset_size, 64 * 1024));
  g_array_set_size (self->ends, 0);
  self->pending_bytes = 0;
  batch = g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE ("a(us)"), bytes, TRUE));

  g_signal_emit (self, signals[SIGNAL_BATCH], 0, batch);
}

/**
 * bp_shell_line_batcher_get_n_pending:
 * @self: a batcher
 *
 * Returns: the number of complete lines waiting for the next batch
 */
guint
bp_shell_line_batcher_get_n_pending (BpShellLineBatcher *self)
{
  g_return_val_if_fail (BP_IS_SHELL_LINE_BATCHER (self), 0);

  return self->ends->len;
}
