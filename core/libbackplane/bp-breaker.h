/* bp-breaker.h: circuit breaker with lazy rolling window, timeout and fallback
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#include <gio/gio.h>

#include "bp-clock.h"
#include "bp-retry.h"
#include "bp-version-macros.h"

G_BEGIN_DECLS

/**
 * BpBreakerState:
 * @BP_BREAKER_CLOSED: calls pass and their outcomes are counted
 * @BP_BREAKER_OPEN: calls are rejected with %BP_ERROR_CIRCUIT_OPEN until the
 *   open duration has passed
 * @BP_BREAKER_HALF_OPEN: a bounded number of probe calls pass; the others are
 *   rejected; the probes decide between CLOSED and OPEN
 *
 * The state of a [class@Bp.Breaker]; see its description for the
 * transitions. Its nick (`closed`, `open`, `half-open`) is the `state` of
 * [method@Bp.Breaker.dup_stats].
 */
typedef enum
{
  BP_BREAKER_CLOSED,
  BP_BREAKER_OPEN,
  BP_BREAKER_HALF_OPEN,
} BpBreakerState;

/**
 * BpBreakerMode:
 * @BP_BREAKER_MODE_NORMAL: the state machine runs
 * @BP_BREAKER_MODE_DISABLED: every call passes and nothing is recorded
 *   (the state reads CLOSED)
 * @BP_BREAKER_MODE_FORCED_OPEN: every call is rejected, with no retry-after;
 *   the breaker never leaves OPEN by itself (isolation)
 * @BP_BREAKER_MODE_METRICS_ONLY: every call passes and is recorded; when the
 *   thresholds are crossed #BpBreaker::would-open is emitted instead of
 *   opening (the state reads CLOSED)
 *
 * Operating modes of a [class@Bp.Breaker] (resilience4j's DISABLED,
 * FORCED_OPEN and METRICS_ONLY states), set with
 * [method@Bp.Breaker.set_mode] or [property@Bp.Breaker:mode]. Changing the
 * mode starts afresh: window cleared, open duration reset, and outcomes of
 * calls admitted before are stale. Its nick (`normal`, `disabled`,
 * `forced-open`, `metrics-only`) is the `mode` of
 * [method@Bp.Breaker.dup_stats].
 */
typedef enum
{
  BP_BREAKER_MODE_NORMAL,
  BP_BREAKER_MODE_DISABLED,
  BP_BREAKER_MODE_FORCED_OPEN,
  BP_BREAKER_MODE_METRICS_ONLY,
} BpBreakerMode;

/**
 * BpBreakerOutcome:
 * @BP_BREAKER_OUTCOME_SUCCESS: the call succeeded
 * @BP_BREAKER_OUTCOME_FAILURE: the call failed in a way that is the backend's
 *   fault (a failure kind other than %BP_FAILURE_IGNORE)
 * @BP_BREAKER_OUTCOME_TIMEOUT: the call ran out of time; a failure, also
 *   counted as a timeout
 * @BP_BREAKER_OUTCOME_IGNORED: neither success nor failure (cancelled, a
 *   client error, a local concurrency-limit rejection); a half-open probe
 *   slot it held is given back
 *
 * What a caller reports when releasing a [struct@Bp.BreakerPermit] with
 * [method@Bp.BreakerPermit.release].
 * [method@Bp.BreakerPermit.release_error] derives it from an error.
 */
typedef enum
{
  BP_BREAKER_OUTCOME_SUCCESS,
  BP_BREAKER_OUTCOME_FAILURE,
  BP_BREAKER_OUTCOME_TIMEOUT,
  BP_BREAKER_OUTCOME_IGNORED,
} BpBreakerOutcome;

#define BP_TYPE_BREAKER_STATE   (bp_breaker_state_get_type ())
#define BP_TYPE_BREAKER_MODE    (bp_breaker_mode_get_type ())
#define BP_TYPE_BREAKER_OUTCOME (bp_breaker_outcome_get_type ())

BP_AVAILABLE_IN_ALL
GType bp_breaker_state_get_type   (void) G_GNUC_CONST;
BP_AVAILABLE_IN_ALL
GType bp_breaker_mode_get_type    (void) G_GNUC_CONST;
BP_AVAILABLE_IN_ALL
GType bp_breaker_outcome_get_type (void) G_GNUC_CONST;

/**
 * BpBreakerPermit:
 *
 * An admission to call the protected backend, from
 * [method@Bp.Breaker.try_acquire]. It remembers the generation of the
 * breaker state it was admitted in and the admission time (for the
 * latency and slow-call detection), so a late outcome never changes a newer
 * state. Release it exactly once, from any thread, with
 * [method@Bp.BreakerPermit.release] or
 * [method@Bp.BreakerPermit.release_error]; it is freed then. A permit that
 * is never released holds a half-open probe slot until the hung-probe guard
 * ([property@Bp.Breaker:half-open-max-wait-ms]) reopens the breaker.
 *
 * An opaque C-only structure: it holds a reference on its breaker, and has
 * no type of its own for language bindings, which use
 * [method@Bp.Breaker.call_async] instead.
 */
typedef struct _BpBreakerPermit BpBreakerPermit;

/**
 * BpFallbackFunc:
 * @op_data: the operation's data
 * @error: why the call did not succeed: %BP_ERROR_CIRCUIT_OPEN,
 *   %BP_ERROR_TIMEOUT or the operation's error
 * @out_result: (out) (transfer full) (nullable): the degraded result, freed
 *   with the operation's `free_result` if nobody takes it
 * @fallback_error: return location for the fallback's own error
 *
 * Produces a degraded result (a cached value, an empty list) for
 * [method@Bp.Breaker.call_async] when a call is rejected, times out or
 * fails. Not called for errors the breaker classifies %BP_FAILURE_IGNORE
 * (with the default classifier, that includes cancellation). Called in the
 * caller's thread-default main context (from within
 * [method@Bp.Breaker.call_async] for a rejection); it must not block. A
 * degraded result completes the call successfully, with `out_degraded` set
 * by [method@Bp.Breaker.call_finish]; the outcome recorded by the breaker is
 * still the failure. Each call of the fallback is counted as `fallbacks` in
 * [method@Bp.Breaker.dup_stats].
 *
 * Returns: %TRUE with @out_result set, or %FALSE with @fallback_error set; the
 *   call then fails with the original error's domain and code, its message
 *   followed by the fallback's
 */
typedef gboolean (*BpFallbackFunc) (gpointer       op_data,
                                    const GError  *error,
                                    gpointer      *out_result,
                                    GError       **fallback_error);

#define BP_TYPE_BREAKER (bp_breaker_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpBreaker, bp_breaker, BP, BREAKER, GObject)

BP_AVAILABLE_IN_ALL
BpBreaker        *bp_breaker_new                 (const char         *name,
                                                  BpClock            *clock);
BP_AVAILABLE_IN_ALL
const char       *bp_breaker_get_name            (BpBreaker          *self);
BP_AVAILABLE_IN_ALL
BpClock          *bp_breaker_get_clock           (BpBreaker          *self);
BP_AVAILABLE_IN_ALL
BpBreakerState    bp_breaker_get_state           (BpBreaker          *self);
BP_AVAILABLE_IN_ALL
BpBreakerMode     bp_breaker_get_mode            (BpBreaker          *self);
BP_AVAILABLE_IN_ALL
void              bp_breaker_set_mode            (BpBreaker          *self,
                                                  BpBreakerMode       mode);
BP_AVAILABLE_IN_ALL
void              bp_breaker_set_classify_func   (BpBreaker          *self,
                                                  BpClassifyFunc      func,
                                                  gpointer            user_data,
                                                  GDestroyNotify      destroy);
BP_AVAILABLE_IN_ALL
BpFailureKind     bp_breaker_classify            (BpBreaker          *self,
                                                  const GError       *error);
BP_AVAILABLE_IN_ALL
void              bp_breaker_reset               (BpBreaker          *self);
BP_AVAILABLE_IN_ALL
void              bp_breaker_force_open          (BpBreaker          *self);

BP_AVAILABLE_IN_ALL
BpBreakerPermit  *bp_breaker_try_acquire         (BpBreaker          *self,
                                                  GError            **error);
BP_AVAILABLE_IN_ALL
void              bp_breaker_permit_release      (BpBreakerPermit    *permit,
                                                  BpBreakerOutcome    outcome);
BP_AVAILABLE_IN_ALL
void              bp_breaker_permit_release_error (BpBreakerPermit   *permit,
                                                   const GError      *error);

BP_AVAILABLE_IN_ALL
void              bp_breaker_call_async          (BpBreaker          *self,
                                                  const BpOperation  *op,
                                                  gpointer            op_data,
                                                  GDestroyNotify      op_data_destroy,
                                                  BpFallbackFunc      fallback,
                                                  GCancellable       *cancellable,
                                                  GAsyncReadyCallback callback,
                                                  gpointer            user_data);
BP_AVAILABLE_IN_ALL
gboolean          bp_breaker_call_finish         (BpBreaker          *self,
                                                  GAsyncResult       *result,
                                                  gpointer           *out_result,
                                                  gboolean           *out_degraded,
                                                  GError            **error);

BP_AVAILABLE_IN_ALL
GVariant         *bp_breaker_dup_stats           (BpBreaker          *self);
BP_AVAILABLE_IN_ALL
GVariant         *bp_breaker_export_state        (BpBreaker          *self);
BP_AVAILABLE_IN_ALL
gboolean          bp_breaker_import_state        (BpBreaker          *self,
                                                  GVariant           *state,
                                                  GError            **error);

G_END_DECLS
