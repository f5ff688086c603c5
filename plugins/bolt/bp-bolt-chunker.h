/* bp-bolt-chunker.h: Bolt message chunking
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_BOLT_MAX_CHUNK_SIZE 65535

typedef struct _BpBoltChunkReader BpBoltChunkReader;

BpBoltChunkReader *bp_bolt_chunk_reader_new         (gsize               max_message_size);
void               bp_bolt_chunk_reader_free        (BpBoltChunkReader  *self);
gboolean           bp_bolt_chunk_reader_feed        (BpBoltChunkReader  *self,
                                                     const guint8       *data,
                                                     gsize               len,
                                                     GError            **error);
GBytes            *bp_bolt_chunk_reader_pop         (BpBoltChunkReader  *self);
guint              bp_bolt_chunk_reader_get_n_queued (BpBoltChunkReader *self);
guint64            bp_bolt_chunk_reader_get_n_noops (BpBoltChunkReader  *self);
gboolean           bp_bolt_chunk_reader_in_message  (BpBoltChunkReader  *self);

void               bp_bolt_chunk_write              (GByteArray         *out,
                                                     const guint8       *message,
                                                     gsize               len);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpBoltChunkReader, bp_bolt_chunk_reader_free)

G_END_DECLS
