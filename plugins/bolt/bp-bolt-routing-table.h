/* bp-bolt-routing-table.h: a cluster routing table from ROUTE
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

/**
 * BpBoltRole:
 * @BP_BOLT_ROLE_ROUTE: servers that answer ROUTE
 * @BP_BOLT_ROLE_READ: servers for read transactions
 * @BP_BOLT_ROLE_WRITE: servers for write transactions (the leader)
 */
typedef enum
{
  BP_BOLT_ROLE_ROUTE,
  BP_BOLT_ROLE_READ,
  BP_BOLT_ROLE_WRITE,
} BpBoltRole;

#define BP_BOLT_N_ROLES 3

/**
 * BpBoltSelectPolicy:
 * @BP_BOLT_SELECT_ROUND_ROBIN: rotate through the servers of the role
 * @BP_BOLT_SELECT_LEAST_CONNECTIONS: the server with the fewest connections
 *   in use (ties broken round-robin)
 */
typedef enum
{
  BP_BOLT_SELECT_ROUND_ROBIN,
  BP_BOLT_SELECT_LEAST_CONNECTIONS,
} BpBoltSelectPolicy;

/**
 * BpBoltInUseFunc:
 * @address: a server address "host:port"
 * @user_data: data given to bp_bolt_routing_table_select()
 *
 * Returns: how many connections to @address are in use
 */
typedef guint (*BpBoltInUseFunc) (const char *address,
                                  gpointer    user_data);

#define BP_TYPE_BOLT_ROUTING_TABLE (bp_bolt_routing_table_get_type ())

G_DECLARE_FINAL_TYPE (BpBoltRoutingTable, bp_bolt_routing_table, BP, BOLT_ROUTING_TABLE, GObject)

BpBoltRoutingTable  *bp_bolt_routing_table_new           (GVariant            *rt,
                                                          BpClock             *clock,
                                                          GError             **error);
const char          *bp_bolt_routing_table_get_database  (BpBoltRoutingTable  *self);
gint64               bp_bolt_routing_table_get_ttl       (BpBoltRoutingTable  *self);
gint64               bp_bolt_routing_table_get_expires   (BpBoltRoutingTable  *self);
gboolean             bp_bolt_routing_table_is_expired    (BpBoltRoutingTable  *self);
gboolean             bp_bolt_routing_table_is_stale_for  (BpBoltRoutingTable  *self,
                                                          BpBoltRole           role);
const char * const  *bp_bolt_routing_table_get_servers   (BpBoltRoutingTable  *self,
                                                          BpBoltRole           role,
                                                          guint               *n_servers);
gboolean             bp_bolt_routing_table_remove_server (BpBoltRoutingTable  *self,
                                                          const char          *address);
gboolean             bp_bolt_routing_table_remove_writer (BpBoltRoutingTable  *self,
                                                          const char          *address);
char                *bp_bolt_routing_table_select        (BpBoltRoutingTable  *self,
                                                          BpBoltRole           role,
                                                          BpBoltSelectPolicy   policy,
                                                          BpBoltInUseFunc      in_use,
                                                          gpointer             user_data);
const char          *bp_bolt_role_to_string              (BpBoltRole           role);

G_END_DECLS
