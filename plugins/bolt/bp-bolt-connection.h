/* bp-bolt-connection.h: one Bolt connection over GIO
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

#include "bp-bolt-auth.h"
#include "bp-bolt-error.h"
#include "bp-bolt-packstream.h"
#include "bp-bolt-stream.h"

G_BEGIN_DECLS

/**
 * BP_BOLT_VERSION:
 * @major: the major version
 * @minor: the minor version
 *
 * A protocol version as one comparable number.
 */
#define BP_BOLT_VERSION(major, minor) ((guint) (((major) << 8) | (minor)))
#define BP_BOLT_VERSION_MAJOR(v)      ((guint) ((v) >> 8))
#define BP_BOLT_VERSION_MINOR(v)      ((guint) ((v) & 0xFF))

/**
 * BpBoltTlsMode:
 * @BP_BOLT_TLS_NONE: plain TCP (`bolt://`, `neo4j://`)
 * @BP_BOLT_TLS_VERIFY: TLS, certificate verified against the system (or the
 *   set) trust database and the host name (`bolt+s://`, `neo4j+s://`)
 * @BP_BOLT_TLS_TRUST_ANY: TLS, any certificate accepted (`bolt+ssc://`,
 *   `neo4j+ssc://`)
 */
typedef enum
{
  BP_BOLT_TLS_NONE,
  BP_BOLT_TLS_VERIFY,
  BP_BOLT_TLS_TRUST_ANY,
} BpBoltTlsMode;

/**
 * BpBoltState:
 * @BP_BOLT_STATE_DISCONNECTED: not opened yet
 * @BP_BOLT_STATE_CONNECTING: connecting, TLS, handshake, HELLO/LOGON
 * @BP_BOLT_STATE_READY: idle, ready for RUN/BEGIN/ROUTE
 * @BP_BOLT_STATE_STREAMING: an auto-commit result is open
 * @BP_BOLT_STATE_TX_READY: inside an explicit transaction
 * @BP_BOLT_STATE_TX_STREAMING: inside an explicit transaction with results open
 * @BP_BOLT_STATE_FAILED: the server reported a FAILURE; a RESET is under way
 * @BP_BOLT_STATE_DEFUNCT: closed or broken for good; drop the connection
 *
 * The state as the client last learnt it from the server's replies.
 */
typedef enum
{
  BP_BOLT_STATE_DISCONNECTED,
  BP_BOLT_STATE_CONNECTING,
  BP_BOLT_STATE_READY,
  BP_BOLT_STATE_STREAMING,
  BP_BOLT_STATE_TX_READY,
  BP_BOLT_STATE_TX_STREAMING,
  BP_BOLT_STATE_FAILED,
  BP_BOLT_STATE_DEFUNCT,
} BpBoltState;

#define BP_TYPE_BOLT_CONNECTION (bp_bolt_connection_get_type ())

G_DECLARE_FINAL_TYPE (BpBoltConnection, bp_bolt_connection, BP, BOLT_CONNECTION, GObject)

BpBoltConnection *bp_bolt_connection_new                  (const char          *host,
                                                           guint16              port,
                                                           BpBoltTlsMode        tls_mode);
void              bp_bolt_connection_set_limits           (BpBoltConnection    *self,
                                                           const BpBoltLimits  *limits);
void              bp_bolt_connection_set_routing_context  (BpBoltConnection    *self,
                                                           GVariant            *routing);
void              bp_bolt_connection_set_user_agent       (BpBoltConnection    *self,
                                                           const char          *user_agent);
void              bp_bolt_connection_set_max_version      (BpBoltConnection    *self,
                                                           guint                version);
void              bp_bolt_connection_set_tls_database     (BpBoltConnection    *self,
                                                           GTlsDatabase        *database);
void              bp_bolt_connection_set_clock            (BpBoltConnection    *self,
                                                           BpClock             *clock);
void              bp_bolt_connection_set_open_timeout     (BpBoltConnection    *self,
                                                           guint                timeout_ms);

void              bp_bolt_connection_open_async           (BpBoltConnection    *self,
                                                           const BpBoltAuth    *auth,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
void              bp_bolt_connection_open_on_stream_async (BpBoltConnection    *self,
                                                           GIOStream           *stream,
                                                           const BpBoltAuth    *auth,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
gboolean          bp_bolt_connection_open_finish          (BpBoltConnection    *self,
                                                           GAsyncResult        *result,
                                                           GError             **error);

const char       *bp_bolt_connection_get_address          (BpBoltConnection    *self);
guint             bp_bolt_connection_get_protocol_version (BpBoltConnection    *self);
gboolean          bp_bolt_connection_get_used_manifest    (BpBoltConnection    *self);
const char       *bp_bolt_connection_get_server_agent     (BpBoltConnection    *self);
const char       *bp_bolt_connection_get_connection_id    (BpBoltConnection    *self);
GVariant         *bp_bolt_connection_get_hints            (BpBoltConnection    *self);
gint64            bp_bolt_connection_get_recv_timeout     (BpBoltConnection    *self);
BpBoltState       bp_bolt_connection_get_state            (BpBoltConnection    *self);
const char       *bp_bolt_state_to_string                 (BpBoltState          state);
gboolean          bp_bolt_connection_is_defunct           (BpBoltConnection    *self);
gboolean          bp_bolt_connection_is_idle              (BpBoltConnection    *self);
gboolean          bp_bolt_connection_in_transaction       (BpBoltConnection    *self);
gint64            bp_bolt_connection_get_created_time     (BpBoltConnection    *self);
gint64            bp_bolt_connection_get_last_used_time   (BpBoltConnection    *self);
GVariant         *bp_bolt_connection_dup_last_failure     (BpBoltConnection    *self);
const GError     *bp_bolt_connection_get_defunct_error    (BpBoltConnection    *self);

void              bp_bolt_connection_run_async            (BpBoltConnection    *self,
                                                           const char          *query,
                                                           GVariant            *parameters,
                                                           GVariant            *extra,
                                                           gint64               fetch_size,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
BpBoltStream     *bp_bolt_connection_run_finish           (BpBoltConnection    *self,
                                                           GAsyncResult        *result,
                                                           GError             **error);

void              bp_bolt_connection_begin_async          (BpBoltConnection    *self,
                                                           GVariant            *extra,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
gboolean          bp_bolt_connection_begin_finish         (BpBoltConnection    *self,
                                                           GAsyncResult        *result,
                                                           GError             **error);
void              bp_bolt_connection_commit_async         (BpBoltConnection    *self,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
gboolean          bp_bolt_connection_commit_finish        (BpBoltConnection    *self,
                                                           GAsyncResult        *result,
                                                           char               **bookmark,
                                                           GError             **error);
void              bp_bolt_connection_rollback_async       (BpBoltConnection    *self,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
gboolean          bp_bolt_connection_rollback_finish      (BpBoltConnection    *self,
                                                           GAsyncResult        *result,
                                                           GError             **error);
void              bp_bolt_connection_reset_async          (BpBoltConnection    *self,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
gboolean          bp_bolt_connection_reset_finish         (BpBoltConnection    *self,
                                                           GAsyncResult        *result,
                                                           GError             **error);
void              bp_bolt_connection_route_async          (BpBoltConnection    *self,
                                                           GVariant            *routing,
                                                           const char * const  *bookmarks,
                                                           const char          *database,
                                                           const char          *imp_user,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
GVariant         *bp_bolt_connection_route_finish         (BpBoltConnection    *self,
                                                           GAsyncResult        *result,
                                                           GError             **error);
void              bp_bolt_connection_close_async          (BpBoltConnection    *self,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
gboolean          bp_bolt_connection_close_finish         (BpBoltConnection    *self,
                                                           GAsyncResult        *result,
                                                           GError             **error);
void              bp_bolt_connection_wait_idle_async      (BpBoltConnection    *self,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
gboolean          bp_bolt_connection_wait_idle_finish     (BpBoltConnection    *self,
                                                           GAsyncResult        *result,
                                                           GError             **error);

G_END_DECLS
