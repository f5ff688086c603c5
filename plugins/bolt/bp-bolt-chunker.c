/* bp-bolt-chunker.c: Bolt message chunking
 *
 * bolt/message.adoc §Chunking: a message travels as chunks of
 * [u16 big-endian size][data], at most 65,535 bytes each, ended by a
 * zero-size chunk `00 00`. A `00 00` outside a message is a NOOP (keep-alive,
 * Bolt 4.1+). A chunk never holds two messages.
 *
 * The reader is incremental: feed it whatever the socket returned (one byte
 * or many messages) and pop complete messages. It refuses a message larger
 * than its limit as soon as the running size passes it, before buffering
 * the rest.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "bp-bolt-chunker.h"

typedef enum
{
  STATE_HEADER,     /* reading a 2-byte chunk header */
  STATE_DATA,       /* inside a chunk's data */
  STATE_FAILED,
} ReaderState;

struct _BpBoltChunkReader
{
  ReaderState state;
  guint8      header[2];
  guint       header_len;     /* bytes of header read so far */
  gsize       chunk_left;     /* data bytes left in the current chunk */
  GByteArray *message;        /* (owned) the message being assembled */
  GQueue      complete;       /* (element-type GBytes) (owned) */
  gsize       max_message_size;
  guint64     n_noops;
};

/**
 * bp_bolt_chunk_reader_new:
 * @max_message_size: the largest message accepted, in bytes
 *
 * Returns: (transfer full): a new reader
 */
BpBoltChunkReader *
bp_bolt_chunk_reader_new (gsize max_message_size)
{
  BpBoltChunkReader *self = g_new0 (BpBoltChunkReader, 1);

  self->state = STATE_HEADER;
  self->message = g_byte_array_new ();
  g_queue_init (&self->complete);
  self->max_message_size = max_message_size;
  return self;
}

void
bp_bolt_chunk_reader_free (BpBoltChunkReader *self)
{
  if (self == NULL)
    return;
  g_byte_array_unref (self->message);
  g_queue_clear_full (&self->complete, (GDestroyNotify) g_bytes_unref);
  g_free (self);
}

/**
 * bp_bolt_chunk_reader_feed:
 * @self: a #BpBoltChunkReader
 * @data: (array length=len): bytes from the connection
 * @len: how many
 * @error: a #GError
 *
 * Consumes @data; complete messages become available through
 * bp_bolt_chunk_reader_pop(). After an error the reader stays failed.
 *
 * Returns: %FALSE if a message exceeded the size limit (%BP_ERROR_LIMIT_EXCEEDED)
 *   or the reader had failed before
 */
gboolean
bp_bolt_chunk_reader_feed (BpBoltChunkReader *self,
                           const guint8      *data,
                           gsize              len,
                           GError           **error)
{
  gsize pos = 0;

  if (self->state == STATE_FAILED)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                           _("Bolt chunk stream already failed"));
      return FALSE;
    }

  while (pos < len)
    {
      if (self->state == STATE_HEADER)
        {
          guint16 size;

          self->header[self->header_len++] = data[pos++];
          if (self->header_len < 2)
            continue;
          self->header_len = 0;
          size = (guint16) ((self->header[0] << 8) | self->header[1]);
          if (size == 0)
            {
              if (self->message->len == 0)
                self->n_noops++;
              else
                {
                  GByteArray *done = g_steal_pointer (&self->message);
                  g_queue_push_tail (&self->complete, g_byte_array_free_to_bytes (done));
                  self->message = g_byte_array_new ();
                }
              continue;
            }
          if (self->message->len + (gsize) size > self->max_message_size)
            {
              self->state = STATE_FAILED;
              g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                           _("Bolt message exceeds the limit of %lu bytes"),
                           (gulong) self->max_message_size);
              return FALSE;
            }
          self->chunk_left = size;
          self->state = STATE_DATA;
        }
      else
        {
          gsize take = MIN (self->chunk_left, len - pos);

          g_byte_array_append (self->message, data + pos, (guint) take);
          pos += take;
          self->chunk_left -= take;
          if (self->chunk_left == 0)
            self->state = STATE_HEADER;
        }
    }
  return TRUE;
}

/**
 * bp_bolt_chunk_reader_pop:
 * @self: a #BpBoltChunkReader
 *
 * Returns: (transfer full) (nullable): the oldest complete message, or %NULL
 */
GBytes *
bp_bolt_chunk_reader_pop (BpBoltChunkReader *self)
{
  return g_queue_pop_head (&self->complete);
}

guint
bp_bolt_chunk_reader_get_n_queued (BpBoltChunkReader *self)
{
  return self->complete.length;
}

/**
 * bp_bolt_chunk_reader_get_n_noops:
 * @self: a #BpBoltChunkReader
 *
 * Returns: how many NOOP chunks were seen between messages
 */
guint64
bp_bolt_chunk_reader_get_n_noops (BpBoltChunkReader *self)
{
  return self->n_noops;
}

/**
 * bp_bolt_chunk_reader_in_message:
 * @self: a #BpBoltChunkReader
 *
 * Returns: %TRUE while part of a message (or a chunk header) has been read
 */
gboolean
bp_bolt_chunk_reader_in_message (BpBoltChunkReader *self)
{
  return self->message->len > 0 || self->header_len > 0 || self->state == STATE_DATA;
}

/**
 * bp_bolt_chunk_write:
 * @out: the output
 * @message: (array length=len): one encoded message, not empty
 * @len: its length
 *
 * Appends @message as chunks of at most 65,535 bytes and the `00 00` end
 * marker.
 */
void
bp_bolt_chunk_write (GByteArray   *out,
                     const guint8 *message,
                     gsize         len)
{
  static const guint8 end[2] = { 0, 0 };
  gsize pos = 0;

  g_return_if_fail (len > 0);

  while (pos < len)
    {
      gsize n = MIN (len - pos, BP_BOLT_MAX_CHUNK_SIZE);
      guint8 header[2] = { (n >> 8) & 0xFF, n & 0xFF };

      g_byte_array_append (out, header, 2);
      g_byte_array_append (out, message + pos, (guint) n);
      pos += n;
    }
  g_byte_array_append (out, end, 2);
}
