/* bp-pg-cluster.h: a private PostgreSQL cluster run by backplaned
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

/**
 * BP_PG_CLUSTER_SERVER_USER:
 *
 * The system user the server programs run as when backplaned runs as root
 * (PostgreSQL refuses to run as root).
 */
#define BP_PG_CLUSTER_SERVER_USER "postgres"

#define BP_TYPE_PG_CLUSTER (bp_pg_cluster_get_type ())

G_DECLARE_FINAL_TYPE (BpPgCluster, bp_pg_cluster, BP, PG_CLUSTER, GObject)

BpPgCluster *bp_pg_cluster_new               (const char          *bindir,
                                              const char          *data_dir,
                                              const char          *socket_dir,
                                              BpClock             *clock);
void         bp_pg_cluster_set_fallback_dirs (BpPgCluster         *self,
                                              const char          *data_dir,
                                              const char          *socket_dir);
void         bp_pg_cluster_start_async       (BpPgCluster         *self,
                                              GCancellable        *cancellable,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data);
char        *bp_pg_cluster_start_finish      (BpPgCluster         *self,
                                              GAsyncResult        *result,
                                              GError             **error);
void         bp_pg_cluster_stop_async        (BpPgCluster         *self,
                                              GAsyncReadyCallback  callback,
                                              gpointer             user_data);
gboolean     bp_pg_cluster_stop_finish       (BpPgCluster         *self,
                                              GAsyncResult        *result,
                                              GError             **error);
const char  *bp_pg_cluster_get_data_dir      (BpPgCluster         *self);
const char  *bp_pg_cluster_get_socket_dir    (BpPgCluster         *self);
const char  *bp_pg_cluster_get_role          (BpPgCluster         *self);
int          bp_pg_cluster_get_server_pid    (BpPgCluster         *self);

G_END_DECLS
