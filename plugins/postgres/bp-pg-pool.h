/* bp-pg-pool.h: a BpPool of BpPgConnections
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

#include "bp-pg-connection.h"

G_BEGIN_DECLS

/**
 * BP_PG_POOL_PING_AFTER_IDLE_MS:
 *
 * A connection idle this long gets a `SELECT 1` on checkout; every checkout
 * checks its local state (a server that went away has closed it already
 * through its socket).
 */
#define BP_PG_POOL_PING_AFTER_IDLE_MS 30000

/**
 * BP_PG_POOL_MAX_DEAD_RETRIES:
 *
 * How often bp_pg_pool_acquire_async() replaces a dead connection before it
 * returns the last one as it is.
 */
#define BP_PG_POOL_MAX_DEAD_RETRIES 16

/**
 * BpPgConnectionFactory:
 * @user_data: the data given to bp_pg_pool_new()
 *
 * Returns: (transfer full): a new, unconnected connection
 */
typedef BpPgConnection *(*BpPgConnectionFactory) (gpointer user_data);

BpPool *bp_pg_pool_new     (BpPgConnectionFactory      factory,
                            gpointer                   user_data,
                            GDestroyNotify             user_data_free,
                            BpClock                   *clock,
                            const BpBackendPoolConfig *config,
                            guint                      connect_timeout_ms);
void        bp_pg_pool_acquire_async  (BpPool              *pool,
                                       const char          *acquirer,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
BpPoolItem *bp_pg_pool_acquire_finish (BpPool              *pool,
                                       GAsyncResult        *result,
                                       GError             **error);
void        bp_pg_pool_release        (BpPool              *pool,
                                       BpPoolItem          *item);

G_END_DECLS
