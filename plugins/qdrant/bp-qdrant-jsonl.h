/* bp-qdrant-jsonl.h: JSON Lines points read in bounded batches
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bp-qdrant-point.h"

G_BEGIN_DECLS

#define BP_TYPE_QDRANT_JSONL_READER (bp_qdrant_jsonl_reader_get_type ())

G_DECLARE_FINAL_TYPE (BpQdrantJsonlReader, bp_qdrant_jsonl_reader, BP, QDRANT_JSONL_READER, GObject)

BpQdrantJsonlReader *bp_qdrant_jsonl_reader_new               (GInputStream          *input,
                                                               const BpQdrantLimits  *limits);
void                 bp_qdrant_jsonl_reader_next_batch_async  (BpQdrantJsonlReader   *self,
                                                               guint                  max_points,
                                                               GCancellable          *cancellable,
                                                               GAsyncReadyCallback    callback,
                                                               gpointer               user_data);
gboolean             bp_qdrant_jsonl_reader_next_batch_finish (BpQdrantJsonlReader   *self,
                                                               GAsyncResult          *result,
                                                               GBytes               **body,
                                                               guint                 *n_points,
                                                               GError               **error);
guint64              bp_qdrant_jsonl_reader_get_line_number   (BpQdrantJsonlReader   *self);
guint64              bp_qdrant_jsonl_reader_get_n_points      (BpQdrantJsonlReader   *self);

G_END_DECLS
