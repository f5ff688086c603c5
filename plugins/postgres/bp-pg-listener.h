/* bp-pg-listener.h: the backend's dedicated LISTEN connection
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

#include "bp-pg-backend.h"

G_BEGIN_DECLS

#define BP_TYPE_PG_LISTENER (bp_pg_listener_get_type ())

G_DECLARE_FINAL_TYPE (BpPgListener, bp_pg_listener, BP, PG_LISTENER, GObject)

BpPgListener     *bp_pg_listener_new                 (BpPgBackend          *backend);
void              bp_pg_listener_subscribe_async     (BpPgListener         *self,
                                                      const char           *owner,
                                                      const char           *channel,
                                                      GCancellable         *cancellable,
                                                      GAsyncReadyCallback   callback,
                                                      gpointer              user_data);
BpSubscription *bp_pg_listener_subscribe_finish    (BpPgListener         *self,
                                                      GAsyncResult         *result,
                                                      GError              **error);
guint             bp_pg_listener_get_n_subscriptions (BpPgListener         *self);
guint             bp_pg_listener_get_n_channels      (BpPgListener         *self);
void              bp_pg_listener_close               (BpPgListener         *self);
gboolean          bp_pg_check_channel                (const char           *channel,
                                                      GError              **error);
char             *bp_pg_quote_ident                  (const char           *ident);

G_END_DECLS
