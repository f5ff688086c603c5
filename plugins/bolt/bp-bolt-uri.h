/* bp-bolt-uri.h: bolt:// and neo4j:// URIs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bp-bolt-connection.h"

G_BEGIN_DECLS

/**
 * BpBoltUri:
 * @scheme: the scheme as written (bolt, bolt+s, bolt+ssc, neo4j, neo4j+s, neo4j+ssc)
 * @host: the host name or address (IPv6 without brackets)
 * @port: the port, 7687 when absent
 * @tls_mode: what the scheme asks for
 * @routing: %TRUE for neo4j:// schemes (cluster routing)
 * @routing_context: (nullable): `a{ss}` with `address` (host:port as written)
 *   and the query parameters, for neo4j:// schemes
 */
typedef struct
{
  char          *scheme;
  char          *host;
  guint16        port;
  BpBoltTlsMode  tls_mode;
  gboolean       routing;
  GVariant      *routing_context;
} BpBoltUri;

BpBoltUri *bp_bolt_uri_parse (const char  *text,
                              GError     **error);
void       bp_bolt_uri_free  (BpBoltUri   *uri);

gboolean   bp_bolt_split_address (const char  *address,
                                  char       **host,
                                  guint16     *port,
                                  GError     **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpBoltUri, bp_bolt_uri_free)

G_END_DECLS
