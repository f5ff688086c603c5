/* bp-bolt-error.h: Bolt FAILURE parsing and error classification
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

/**
 * BpBoltErrorClass:
 * @BP_BOLT_ERROR_CLASS_OTHER: not a server or connection error (cancelled,
 *   invalid argument, limits, …)
 * @BP_BOLT_ERROR_CLASS_TRANSIENT: `Neo.TransientError.*` (except
 *   `Transaction.Terminated` and `Transaction.LockClientStopped`, which
 *   Neo4j 5 re-classified as client errors) and
 *   `Neo.ClientError.Security.AuthorizationExpired`: retrying may succeed
 * @BP_BOLT_ERROR_CLASS_CLIENT: `*.ClientError.*`: the request is wrong
 * @BP_BOLT_ERROR_CLASS_DATABASE: `*.DatabaseError.*`: the server failed
 * @BP_BOLT_ERROR_CLASS_CONNECTION_LOST: the connection broke (I/O error,
 *   closed by the peer, protocol violation, receive or open timeout); work that had
 *   not reached COMMIT may be retried on a new connection
 * @BP_BOLT_ERROR_CLASS_COMMIT_UNKNOWN: the connection broke while a COMMIT
 *   was outstanding; the transaction may or may not have been committed and
 *   must not be retried blindly
 */
typedef enum
{
  BP_BOLT_ERROR_CLASS_OTHER,
  BP_BOLT_ERROR_CLASS_TRANSIENT,
  BP_BOLT_ERROR_CLASS_CLIENT,
  BP_BOLT_ERROR_CLASS_DATABASE,
  BP_BOLT_ERROR_CLASS_CONNECTION_LOST,
  BP_BOLT_ERROR_CLASS_COMMIT_UNKNOWN,
} BpBoltErrorClass;

/* Message prefixes of the BP_ERROR_UNAVAILABLE errors the client raises. */
#define BP_BOLT_CONNECTION_LOST_PREFIX "Bolt connection lost"
#define BP_BOLT_COMMIT_UNKNOWN_PREFIX  "Bolt commit outcome unknown"
/* ... and of the BP_ERROR_TIMEOUT error of an open that took too long */
#define BP_BOLT_OPEN_TIMEOUT_PREFIX    "Opening the Bolt connection"

GError           *bp_bolt_error_new_from_failure  (GVariant          *metadata);
char             *bp_bolt_error_dup_code          (const GError      *error);
BpBoltErrorClass  bp_bolt_error_classify          (const GError      *error);
BpBoltErrorClass  bp_bolt_error_classify_code     (const char        *code);
gboolean          bp_bolt_error_is_retryable      (const GError      *error);
const char       *bp_bolt_error_class_to_string   (BpBoltErrorClass   klass);

G_END_DECLS
