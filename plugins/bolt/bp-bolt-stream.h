/* bp-bolt-stream.h: the records of one RUN, pulled in batches
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

/**
 * BpBoltRecordFormat:
 * @BP_BOLT_RECORD_FORMAT_VARIANT: each record is a #GVariant `a{sv}`
 * @BP_BOLT_RECORD_FORMAT_JSON: each record is a JSON object text (`char *`,
 *   no trailing newline)
 */
typedef enum
{
  BP_BOLT_RECORD_FORMAT_VARIANT,
  BP_BOLT_RECORD_FORMAT_JSON,
} BpBoltRecordFormat;

#define BP_TYPE_BOLT_STREAM (bp_bolt_stream_get_type ())

G_DECLARE_FINAL_TYPE (BpBoltStream, bp_bolt_stream, BP, BOLT_STREAM, GObject)

typedef struct _BpBoltConnection BpBoltConnection;

const char * const *bp_bolt_stream_get_keys          (BpBoltStream        *self,
                                                      guint               *n_keys);
gint64              bp_bolt_stream_get_qid           (BpBoltStream        *self);
GVariant           *bp_bolt_stream_get_run_metadata  (BpBoltStream        *self);
void                bp_bolt_stream_set_record_format (BpBoltStream        *self,
                                                      BpBoltRecordFormat   format);
void                bp_bolt_stream_set_prefetch      (BpBoltStream        *self,
                                                      gboolean             prefetch);
BpBoltConnection   *bp_bolt_stream_get_connection    (BpBoltStream        *self);
gboolean            bp_bolt_stream_is_finished       (BpBoltStream        *self);
GVariant           *bp_bolt_stream_get_summary       (BpBoltStream        *self);

void                bp_bolt_stream_next_batch_async  (BpBoltStream        *self,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
GPtrArray          *bp_bolt_stream_next_batch_finish (BpBoltStream        *self,
                                                      GAsyncResult        *result,
                                                      gboolean            *has_more,
                                                      GError             **error);
void                bp_bolt_stream_discard_async     (BpBoltStream        *self,
                                                      GCancellable        *cancellable,
                                                      GAsyncReadyCallback  callback,
                                                      gpointer             user_data);
gboolean            bp_bolt_stream_discard_finish    (BpBoltStream        *self,
                                                      GAsyncResult        *result,
                                                      GError             **error);

G_END_DECLS
