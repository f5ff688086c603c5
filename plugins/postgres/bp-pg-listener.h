/* bp-pg-listener.h: LISTEN on a channel for one D-Bus client
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

#include "bp-pg-backend.h"

G_BEGIN_DECLS

#define BP_PG_LISTENER_MAX_QUEUED      10000
#define BP_PG_LISTENER_MAX_BATCH       256
#define BP_PG_LISTENER_FLUSH_MS        100

#define BP_TYPE_PG_LISTENER (bp_pg_listener_get_type ())

G_DECLARE_FINAL_TYPE (BpPgListener, bp_pg_listener, BP, PG_LISTENER, GObject)

BpPgListener *bp_pg_listener_new          (BpPgBackend          *backend,
                                           const char           *owner,
                                           const char           *channel);
void          bp_pg_listener_start_async  (BpPgListener         *self,
                                           GCancellable         *cancellable,
                                           GAsyncReadyCallback   callback,
                                           gpointer              user_data);
gboolean      bp_pg_listener_start_finish (BpPgListener         *self,
                                           GAsyncResult         *result,
                                           GError              **error);
const char   *bp_pg_listener_get_path     (BpPgListener         *self);
void          bp_pg_listener_close        (BpPgListener         *self);
gboolean      bp_pg_check_channel         (const char           *channel,
                                           GError              **error);
char         *bp_pg_quote_ident           (const char           *ident);

G_END_DECLS
