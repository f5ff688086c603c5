/* fuzz-bolt-chunker.c: fuzz target for the Bolt chunk reader
 *
 * The first byte of the input picks how the rest is cut into slices fed to
 * a BpBoltChunkReader (as a socket would deliver it); the messages it yields
 * must be the same whatever the slicing, each within the size limit, and
 * re-chunking them with bp_bolt_chunk_write() and reading again must give
 * them back. Each message is also parsed the way the connection parses a
 * server message (structure header, then a PackStream value per field).
 * Invariants abort().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bp-bolt-chunker.h"
#include "bp-bolt-values.h"

int LLVMFuzzerTestOneInput (const guint8 *data,
                            size_t        size);

#define CHECK(cond)                                                        \
  G_STMT_START {                                                           \
    if (!(cond))                                                           \
      {                                                                    \
        g_printerr ("fuzz-bolt-chunker: invariant failed: %s (%s:%d)\n", \
                    #cond, __FILE__, __LINE__);                            \
        abort ();                                                          \
      }                                                                    \
  } G_STMT_END

#define LIMIT 4096

static GPtrArray *
read_all (const guint8 *data,
          gsize         size,
          guint         slice,
          gboolean     *failed)
{
  g_autoptr(BpBoltChunkReader) reader = bp_bolt_chunk_reader_new (LIMIT);
  GPtrArray *messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  gsize pos = 0;
  GBytes *msg;

  *failed = FALSE;
  while (pos < size && !*failed)
    {
      gsize n = slice == 0 ? size - pos : MIN ((gsize) slice, size - pos);
      g_autoptr(GError) error = NULL;

      if (!bp_bolt_chunk_reader_feed (reader, data + pos, n, &error))
        {
          CHECK (g_error_matches (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED));
          *failed = TRUE;
        }
      pos += n;
      while ((msg = bp_bolt_chunk_reader_pop (reader)) != NULL)
        {
          CHECK (g_bytes_get_size (msg) > 0 && g_bytes_get_size (msg) <= LIMIT);
          g_ptr_array_add (messages, msg);
        }
    }
  return messages;
}

static void
parse_message (GBytes *message)
{
  gsize len;
  const guint8 *d = g_bytes_get_data (message, &len);
  BpBoltReader reader;
  guint n_fields;
  guint8 tag;

  bp_bolt_reader_init (&reader, d, len, NULL);
  if (!bp_bolt_reader_read_struct_header (&reader, &n_fields, &tag, NULL))
    return;
  for (guint i = 0; i < n_fields; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) v = bp_bolt_reader_read_variant (&reader, &error);

      if (v == NULL)
        {
          CHECK (error != NULL);
          return;
        }
      CHECK (reader.pos <= reader.len);
    }
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  g_autoptr(GPtrArray) whole = NULL;
  g_autoptr(GPtrArray) sliced = NULL;
  gboolean failed_whole, failed_sliced;
  guint slice;

  if (size == 0)
    return 0;
  slice = data[0] % 17 + 1;
  data++;
  size--;

  whole = read_all (data, size, 0, &failed_whole);
  sliced = read_all (data, size, slice, &failed_sliced);
  CHECK (failed_whole == failed_sliced);
  CHECK (whole->len == sliced->len);
  for (guint i = 0; i < whole->len; i++)
    CHECK (g_bytes_equal (g_ptr_array_index (whole, i), g_ptr_array_index (sliced, i)));

  /* write and read back */
  {
    g_autoptr(GByteArray) out = g_byte_array_new ();
    g_autoptr(GPtrArray) again = NULL;
    gboolean failed;

    for (guint i = 0; i < whole->len; i++)
      {
        gsize len;
        const guint8 *d = g_bytes_get_data (g_ptr_array_index (whole, i), &len);
        bp_bolt_chunk_write (out, d, len);
      }
    again = read_all (out->data, out->len, slice, &failed);
    CHECK (!failed);
    CHECK (again->len == whole->len);
    for (guint i = 0; i < whole->len; i++)
      CHECK (g_bytes_equal (g_ptr_array_index (whole, i), g_ptr_array_index (again, i)));
  }

  for (guint i = 0; i < whole->len; i++)
    parse_message (g_ptr_array_index (whole, i));
  return 0;
}
