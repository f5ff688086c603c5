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
 * The error domain of Backplane. Each code maps to the D-Bus error name
 * `org.backplane.Backplane1.Error.<Name>`.
 */
#define BP_ERROR (bp_error_quark ())

/**
 * BpError:
 * @BP_ERROR_FAILED: generic failure
 * @BP_ERROR_INVALID_ARGUMENT: an argument or option was invalid; the message names it
 * @BP_ERROR_NOT_FOUND: the named object does not exist
 * @BP_ERROR_TIMEOUT: the operation ran out of time
 * @BP_ERROR_CANCELLED: the operation was cancelled (caller vanished, shutdown, Close)
 * @BP_ERROR_CIRCUIT_OPEN: the backend's circuit breaker rejected the call; see retry-after-ms
 * @BP_ERROR_POOL_EXHAUSTED: no pooled resource became free within the acquire timeout
 * @BP_ERROR_UNAVAILABLE: the backend is not reachable or not started
 * @BP_ERROR_BACKEND: the backend reported an error; the message keeps its native detail
 * @BP_ERROR_PERMISSION_DENIED: the caller may not do this
 * @BP_ERROR_LIMIT_EXCEEDED: a configured bound (size, count, rate, concurrency) was hit
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
