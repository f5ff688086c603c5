/* bp-bolt-private.h: what BpBoltConnection and BpBoltStream tell each other
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bp-bolt-connection.h"
#include "bp-bolt-stream.h"

G_BEGIN_DECLS

/* Stream side, called by the connection in its main context. */
BpBoltStream *_bp_bolt_stream_new              (BpBoltConnection   *connection,
                                                gboolean            in_tx,
                                                gint64              fetch_size,
                                                const BpBoltLimits *limits);
gboolean      _bp_bolt_stream_set_run_metadata (BpBoltStream       *self,
                                                GVariant           *metadata,
                                                GError            **error);
void          _bp_bolt_stream_push_record      (BpBoltStream       *self,
                                                GBytes             *message);
void          _bp_bolt_stream_pull_done        (BpBoltStream       *self,
                                                GVariant           *metadata,
                                                const GError       *error);
gboolean      _bp_bolt_stream_is_in_tx         (BpBoltStream       *self);
gboolean      _bp_bolt_stream_is_pulling       (BpBoltStream       *self);
gboolean      _bp_bolt_stream_is_discarding    (BpBoltStream       *self);
void          _bp_bolt_stream_discard_internal (BpBoltStream       *self);
void          _bp_bolt_stream_abort            (BpBoltStream       *self,
                                                const GError       *error);

/* Connection side, called by the stream. */
void          _bp_bolt_connection_send_pull    (BpBoltConnection   *self,
                                                BpBoltStream       *stream,
                                                gint64              n,
                                                gboolean            discard);
void          _bp_bolt_connection_stream_done  (BpBoltConnection   *self,
                                                BpBoltStream       *stream);
void          _bp_bolt_connection_stream_dropped (BpBoltConnection *self,
                                                  BpBoltStream     *stream,
                                                  gint64            qid,
                                                  gboolean          needs_discard);
void          _bp_bolt_connection_interrupt    (BpBoltConnection   *self);

G_END_DECLS
