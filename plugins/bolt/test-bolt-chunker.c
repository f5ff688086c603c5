/* test-bolt-chunker.c: Bolt chunk reader and writer
 *
 * Examples from neo4j/docs-bolt bolt/message.adoc §Chunking.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-bolt-chunker.h"

static const guint8 msg16[16] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
static const guint8 msg8[8] = { 0x0F, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0x09, 0x08 };

static void
assert_message (BpBoltChunkReader *reader,
                const guint8      *want,
                gsize              len)
{
  g_autoptr(GBytes) got = bp_bolt_chunk_reader_pop (reader);
  gsize got_len;
  const guint8 *data;

  g_assert_nonnull (got);
  data = g_bytes_get_data (got, &got_len);
  g_assert_cmpmem (data, got_len, want, len);
}

static void
test_write_spec_examples (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  static const guint8 one_chunk[] = {
    0x00, 0x10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x00, 0x00
  };

  g_test_summary ("a 16-byte message is 00 10 <16 bytes> 00 00");

  bp_bolt_chunk_write (out, msg16, sizeof msg16);
  g_assert_cmpmem (out->data, out->len, one_chunk, sizeof one_chunk);
}

static void
test_write_split (void)
{
  g_autoptr(GByteArray) out = g_byte_array_new ();
  gsize len = 200 * 1024;
  g_autofree guint8 *msg = g_malloc (len);
  gsize pos = 0, chunks = 0;

  g_test_summary ("a 200 kB message is split into chunks of at most 65,535 bytes with one 00 00 terminator");

  for (gsize i = 0; i < len; i++)
    msg[i] = (guint8) (i * 7);
  bp_bolt_chunk_write (out, msg, len);

  while (TRUE)
    {
      gsize size;

      g_assert_cmpuint (pos + 2, <=, out->len);
      size = (out->data[pos] << 8) | out->data[pos + 1];
      pos += 2;
      if (size == 0)
        break;
      g_assert_cmpuint (size, <=, 65535);
      chunks++;
      pos += size;
    }
  g_assert_cmpuint (pos, ==, out->len);
  g_assert_cmpuint (chunks, ==, 4);   /* 65535 * 3 + 11,015 */

  /* and the reader puts it back together */
  {
    g_autoptr(BpBoltChunkReader) reader = bp_bolt_chunk_reader_new (1024 * 1024);
    g_autoptr(GError) error = NULL;

    g_assert_true (bp_bolt_chunk_reader_feed (reader, out->data, out->len, &error));
    g_assert_no_error (error);
    assert_message (reader, msg, len);
    g_assert_null (bp_bolt_chunk_reader_pop (reader));
  }
}

static void
test_read_two_messages_noop (void)
{
  g_autoptr(BpBoltChunkReader) reader = bp_bolt_chunk_reader_new (1024);
  g_autoptr(GByteArray) stream = g_byte_array_new ();
  g_autoptr(GError) error = NULL;
  static const guint8 noop[] = { 0, 0 };

  g_test_summary ("two messages with a NOOP chunk between them, fed at once and byte by byte");

  bp_bolt_chunk_write (stream, msg16, sizeof msg16);
  g_byte_array_append (stream, noop, 2);
  g_byte_array_append (stream, noop, 2);
  bp_bolt_chunk_write (stream, msg8, sizeof msg8);

  g_assert_true (bp_bolt_chunk_reader_feed (reader, stream->data, stream->len, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (bp_bolt_chunk_reader_get_n_queued (reader), ==, 2);
  assert_message (reader, msg16, sizeof msg16);
  assert_message (reader, msg8, sizeof msg8);
  g_assert_null (bp_bolt_chunk_reader_pop (reader));
  g_assert_cmpuint (bp_bolt_chunk_reader_get_n_noops (reader), ==, 2);
  g_assert_false (bp_bolt_chunk_reader_in_message (reader));

  /* byte at a time */
  {
    g_autoptr(BpBoltChunkReader) slow = bp_bolt_chunk_reader_new (1024);

    for (guint i = 0; i < stream->len; i++)
      {
        g_assert_true (bp_bolt_chunk_reader_feed (slow, stream->data + i, 1, &error));
        if (i + 1 < 20)
          g_assert_cmpuint (bp_bolt_chunk_reader_get_n_queued (slow), ==, 0);
      }
    assert_message (slow, msg16, sizeof msg16);
    assert_message (slow, msg8, sizeof msg8);
    g_assert_cmpuint (bp_bolt_chunk_reader_get_n_noops (slow), ==, 2);
  }
}

static void
test_read_many_chunks (void)
{
  g_autoptr(BpBoltChunkReader) reader = bp_bolt_chunk_reader_new (1024);
  g_autoptr(GError) error = NULL;
  /* the spec's split example: 16 + 4 bytes */
  static const guint8 split[] = {
    0x00, 0x10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
    0x00, 0x04, 1, 2, 3, 4, 0x00, 0x00
  };
  static const guint8 want[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 1, 2, 3, 4 };
  g_autoptr(GByteArray) tiny = g_byte_array_new ();
  g_autoptr(GByteArray) expect = g_byte_array_new ();

  g_assert_true (bp_bolt_chunk_reader_feed (reader, split, sizeof split, &error));
  assert_message (reader, want, sizeof want);

  /* one message as 300 one-byte chunks, fed in random slices */
  for (guint i = 0; i < 300; i++)
    {
      guint8 c[3] = { 0, 1, (guint8) i };
      g_byte_array_append (tiny, c, 3);
      g_byte_array_append (expect, &c[2], 1);
    }
  g_byte_array_append (tiny, (const guint8 *) "\0\0", 2);
  {
    GRand *rand = g_rand_new_with_seed (42);
    guint pos = 0;

    while (pos < tiny->len)
      {
        guint n = MIN ((guint) g_rand_int_range (rand, 1, 17), tiny->len - pos);
        g_assert_true (bp_bolt_chunk_reader_feed (reader, tiny->data + pos, n, &error));
        pos += n;
      }
    g_rand_free (rand);
  }
  assert_message (reader, expect->data, expect->len);
}

static void
test_read_limit (void)
{
  g_autoptr(BpBoltChunkReader) reader = bp_bolt_chunk_reader_new (20);
  g_autoptr(GError) error = NULL;
  static const guint8 part[] = { 0x00, 0x10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
  static const guint8 next_header[] = { 0x00, 0x05 };

  g_test_summary ("a message beyond the limit fails as soon as a chunk header pushes it over");

  g_assert_true (bp_bolt_chunk_reader_feed (reader, part, sizeof part, &error));
  g_assert_true (bp_bolt_chunk_reader_in_message (reader));
  g_assert_false (bp_bolt_chunk_reader_feed (reader, next_header, 2, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);
  /* sticky */
  g_assert_false (bp_bolt_chunk_reader_feed (reader, next_header, 0, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bolt/chunker/write/spec-example", test_write_spec_examples);
  g_test_add_func ("/bolt/chunker/write/split-200k", test_write_split);
  g_test_add_func ("/bolt/chunker/read/noop", test_read_two_messages_noop);
  g_test_add_func ("/bolt/chunker/read/many-chunks", test_read_many_chunks);
  g_test_add_func ("/bolt/chunker/read/limit", test_read_limit);

  return g_test_run ();
}
