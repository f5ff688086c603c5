/* bp-error.h: the Backplane error domain and its D-Bus names
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#include <gio/gio.h>

#include "bp-version-macros.h"

G_BEGIN_DECLS

/**
 * BP_ERROR:
 *
 * The error domain of Backplane, [error@Bp.Error]. Each code maps to the
 * D-Bus error name `org.backplane.Backplane1.Error.<Name>`, where `<Name>`
 * is [func@Bp.error_code_to_nick]; the mapping is registered by
 * [func@Bp.error_quark], so an error in this domain crosses D-Bus in both
 * directions with its code intact.
 */
#define BP_ERROR (bp_error_quark ())

/**
 * BpError:
 * @BP_ERROR_FAILED: generic failure (`Failed`)
 * @BP_ERROR_INVALID_ARGUMENT: an argument or option was invalid; the
 *   message names it (`InvalidArgument`)
 * @BP_ERROR_NOT_FOUND: the named object does not exist (`NotFound`)
 * @BP_ERROR_TIMEOUT: the operation ran out of time (`Timeout`)
 * @BP_ERROR_CANCELLED: the operation was cancelled (caller vanished,
 *   shutdown, Close) (`Cancelled`)
 * @BP_ERROR_CIRCUIT_OPEN: the backend's circuit breaker rejected the call
 *   (or a dead-letter replay found the retry budget empty) without trying
 *   the backend; the message carries `(retry-after-ms=N)`, see
 *   [func@Bp.error_get_retry_after], unless the breaker is forced open
 *   (`CircuitOpen`)
 * @BP_ERROR_POOL_EXHAUSTED: no pooled resource became free within the
 *   acquire timeout (`PoolExhausted`)
 * @BP_ERROR_UNAVAILABLE: the backend is not reachable or not started
 *   (`Unavailable`)
 * @BP_ERROR_BACKEND: the backend reported an error; the message keeps its
 *   native detail (`Backend`)
 * @BP_ERROR_PERMISSION_DENIED: the caller may not do this
 *   (`PermissionDenied`)
 * @BP_ERROR_LIMIT_EXCEEDED: a configured bound (size, count, rate,
 *   concurrency) was hit (`LimitExceeded`)
 *
 * The error codes of the %BP_ERROR domain. These are the errors clients
 * see on D-Bus: a backend returns errors of other domains through
 * [func@Bp.invocation_return_error] (or [class@Bp.Call]), which maps them
 * with [func@Bp.error_normalize].
 */
typedef enum
{
  BP_ERROR_FAILED,
  BP_ERROR_INVALID_ARGUMENT,
  BP_ERROR_NOT_FOUND,
  BP_ERROR_TIMEOUT,
  BP_ERROR_CANCELLED,
  BP_ERROR_CIRCUIT_OPEN,
  BP_ERROR_POOL_EXHAUSTED,
  BP_ERROR_UNAVAILABLE,
  BP_ERROR_BACKEND,
  BP_ERROR_PERMISSION_DENIED,
  BP_ERROR_LIMIT_EXCEEDED,
} BpError;

/**
 * BP_ERROR_N_CODES:
 *
 * The number of codes in [error@Bp.Error]: one more than the highest
 * code, for arrays indexed by code.
 */
#define BP_ERROR_N_CODES (BP_ERROR_LIMIT_EXCEEDED + 1)

BP_AVAILABLE_IN_ALL
GQuark       bp_error_quark            (void);
BP_AVAILABLE_IN_ALL
const char  *bp_error_code_to_nick     (BpError        code);
BP_AVAILABLE_IN_ALL
GError      *bp_error_normalize        (const GError  *error);
BP_AVAILABLE_IN_ALL
void         bp_error_set_retry_after  (GError       **error,
                                        gint64         retry_after_ms);
BP_AVAILABLE_IN_ALL
gint64       bp_error_get_retry_after  (const GError  *error);
BP_AVAILABLE_IN_ALL
void         bp_invocation_return_error (GDBusMethodInvocation *invocation,
                                         const GError          *error);

G_END_DECLS
