/* bp-retry.h: GTask-based retry with backoff, jitter, deadline and budget
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#include <gio/gio.h>

#include "bp-clock.h"
#include "bp-version-macros.h"

G_BEGIN_DECLS

/**
 * BpFailureKind:
 * @BP_FAILURE_RETRYABLE: a transient failure of the backend (unreachable,
 *   timed out, overloaded). It counts as a breaker failure and is retried if
 *   the operation is idempotent.
 * @BP_FAILURE_FATAL: the backend failed in a way a retry will not fix. It
 *   counts as a breaker failure and is never retried.
 * @BP_FAILURE_AMBIGUOUS: the outcome is unknown: the request may or may not
 *   have been applied (the connection dropped after it was sent). It counts
 *   as a breaker failure and is retried only if the operation is idempotent;
 *   for an unsafe operation it is surfaced as is.
 * @BP_FAILURE_IGNORE: not the backend's fault (cancellation, a client error
 *   such as an invalid argument or a SQL unique violation, a local
 *   concurrency-limit rejection). Neither a breaker failure nor retried.
 *
 * How a #GError is judged by [class@Bp.Retry] and [class@Bp.Breaker].
 * Backends classify their native errors (SQLSTATE classes, Bolt failure
 * codes, HTTP status, exit status) with a [callback@Bp.ClassifyFunc] and fall
 * back to [func@Bp.FailureKind.from_error] for the rest.
 *
 * | kind | breaker failure | retried (idempotent or keyed op) |
 * |------|-----------------|----------------------------------|
 * | %BP_FAILURE_RETRYABLE | yes | yes |
 * | %BP_FAILURE_FATAL | yes | no |
 * | %BP_FAILURE_AMBIGUOUS | yes | yes |
 * | %BP_FAILURE_IGNORE | no | no |
 *
 * An operation declared %BP_IDEMPOTENCY_UNSAFE is never retried, whatever
 * the kind.
 */
typedef enum
{
  BP_FAILURE_RETRYABLE,
  BP_FAILURE_FATAL,
  BP_FAILURE_AMBIGUOUS,
  BP_FAILURE_IGNORE,
} BpFailureKind;

/**
 * BpJitter:
 * @BP_JITTER_NONE: `min(cap, base·m^n)`, no randomness
 * @BP_JITTER_FULL: uniform in `[0, min(cap, base·m^n)]` (AWS "full
 *   jitter"); the default
 * @BP_JITTER_EQUAL: `t/2` plus uniform in `[0, t/2]`, with
 *   `t = min(cap, base·m^n)`
 * @BP_JITTER_DECORRELATED: `min(cap, uniform in [base, 3·previous])`, with
 *   `previous` the last sleep clamped to `[base, cap]` (the base for the
 *   first retry); `m` is not used
 *
 * The backoff shapes of [class@Bp.Retry] (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"). `base`, `m` and `cap` are the
 * [property@Bp.Retry:base-ms], [property@Bp.Retry:multiplier] (2 by
 * default) and [property@Bp.Retry:cap-ms] properties, a base above the cap
 * counts as the cap, and `n` is the 0-based index of the retry (0 for the
 * sleep after the first failed attempt). The random draws come from the
 * retry's [class@Bp.Clock], so a manual clock makes them reproducible.
 */
typedef enum
{
  BP_JITTER_NONE,
  BP_JITTER_FULL,
  BP_JITTER_EQUAL,
  BP_JITTER_DECORRELATED,
} BpJitter;

/**
 * BpIdempotency:
 * @BP_IDEMPOTENCY_UNSAFE: repeating the operation may apply it twice; it is
 *   never retried or replayed automatically
 * @BP_IDEMPOTENCY_IDEMPOTENT: repeating it has the effect of doing it once
 *   (a read, an upsert by id, a DELETE by key)
 * @BP_IDEMPOTENCY_KEYED: it carries an idempotency key the backend (or the
 *   dead-letter queue) uses to apply it at most once
 *
 * What an operation declares about itself, passed to
 * [method@Bp.Retry.run_async]. Only %BP_IDEMPOTENCY_IDEMPOTENT and
 * %BP_IDEMPOTENCY_KEYED operations are retried; [class@Bp.Retry] treats the
 * two alike, the key itself travels with the operation's data (and is what
 * [class@Bp.DeadLetters] deduplicates on).
 */
typedef enum
{
  BP_IDEMPOTENCY_UNSAFE,
  BP_IDEMPOTENCY_IDEMPOTENT,
  BP_IDEMPOTENCY_KEYED,
} BpIdempotency;

#define BP_TYPE_FAILURE_KIND (bp_failure_kind_get_type ())
#define BP_TYPE_JITTER       (bp_jitter_get_type ())
#define BP_TYPE_IDEMPOTENCY  (bp_idempotency_get_type ())

BP_AVAILABLE_IN_ALL
GType bp_failure_kind_get_type (void) G_GNUC_CONST;
BP_AVAILABLE_IN_ALL
GType bp_jitter_get_type       (void) G_GNUC_CONST;
BP_AVAILABLE_IN_ALL
GType bp_idempotency_get_type  (void) G_GNUC_CONST;

/**
 * BpClassifyFunc:
 * @error: the error an operation failed with; never %NULL
 * @user_data: the data given with the function
 *
 * Classifies a failure, for [method@Bp.Retry.set_classify_func] and
 * [method@Bp.Breaker.set_classify_func]. Called in the thread and main
 * context the operation completes in (for [class@Bp.Retry], the caller's
 * thread-default main context), without any lock held; for a
 * [class@Bp.Breaker] used from several threads it must be thread-safe. It
 * must not block. Return [func@Bp.FailureKind.from_error] for the
 * errors it does not know, so cancellation stays %BP_FAILURE_IGNORE.
 *
 * Returns: the kind of failure
 */
typedef BpFailureKind (*BpClassifyFunc) (const GError *error,
                                         gpointer      user_data);

/**
 * BpOperationStartFunc:
 * @op_data: the operation's data, as given to the runner
 * @cancellable: (nullable): cancels this attempt
 * @callback: call it exactly once when the attempt completes, in the
 *   thread-default main context of the caller of this function
 * @callback_data: pass it to @callback
 *
 * Starts one attempt of an asynchronous operation, in the style of a
 * `foo_async()` function. It is called once per attempt, in the
 * thread-default main context of the caller of the runner (or from that
 * context's main loop, for a retry after a sleep). As with #GTask, @callback
 * must be invoked from the main loop: never from within this function, nor
 * synchronously from a #GCancellable::cancelled handler.
 */
typedef void (*BpOperationStartFunc) (gpointer             op_data,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             callback_data);

/**
 * BpOperationFinishFunc:
 * @op_data: the operation's data
 * @result: the #GAsyncResult given to the callback
 * @out_result: (out) (transfer full) (optional) (nullable): the result of the
 *   operation; %NULL for operations without one
 * @error: return location for a #GError
 *
 * Completes one attempt, in the style of a `foo_finish()` function. Called
 * from @callback of [callback@Bp.OperationStartFunc], exactly once per
 * attempt, even for an attempt whose result is no longer wanted (a
 * [class@Bp.Breaker] call that timed out): the result is then freed with the
 * operation's `free_result`.
 *
 * Returns: %TRUE on success, %FALSE with @error set on failure (a %FALSE
 *   without an error is reported as %BP_ERROR_FAILED)
 */
typedef gboolean (*BpOperationFinishFunc) (gpointer       op_data,
                                           GAsyncResult  *result,
                                           gpointer      *out_result,
                                           GError       **error);

/**
 * BpOperation:
 * @start: starts one attempt
 * @finish: completes an attempt
 * @free_result: (nullable): frees a result @finish returned (%NULL if results
 *   need no freeing)
 *
 * A generic asynchronous operation, usually a `static const` table next to
 * the backend function it wraps:
 *
 * ```c
 * static const BpOperation query_op = {
 *   query_start, query_finish, (GDestroyNotify) query_result_free,
 * };
 * ```
 *
 * The runners ([method@Bp.Retry.run_async],
 * [method@Bp.Retry.run_with_breaker_async], [method@Bp.Breaker.call_async])
 * copy the table, so it may live on the stack. They call @start once per
 * attempt with the operation's data, and free any result nobody takes
 * with @free_result. See [class@Bp.Retry] for a complete example.
 */
typedef struct
{
  BpOperationStartFunc  start;
  BpOperationFinishFunc finish;
  GDestroyNotify        free_result;
} BpOperation;

BP_AVAILABLE_IN_ALL
BpFailureKind bp_failure_kind_from_error (const GError *error);

/* BpRetryBudget ---------------------------------------------------------- */

/**
 * BpRetryBudget:
 *
 * A retry budget shared by every retry of one backend, so that retries cannot
 * storm a failing backend (Finagle's RetryBudget). Every first attempt
 * deposits ([method@Bp.RetryBudget.deposit]); a retry must withdraw
 * ([method@Bp.RetryBudget.try_withdraw]). Retries are allowed up to `ratio`
 * of the deposits of the last `window_ms` (counted in 10 buckets, so old
 * deposits expire a tenth of the window at a time), plus a reserve of
 * `min_per_second` retries per second that refills continuously. The
 * reserve holds at most one second's worth and is full at creation, so a
 * process that just started can still retry its first transient failures.
 *
 * Create one with [ctor@Bp.RetryBudget.new] and attach it to one or more
 * [class@Bp.Retry] policies with [method@Bp.Retry.set_budget]; a run then
 * deposits once and withdraws once per retry. A withdrawal that fails ends
 * the run with the last attempt's error. [method@Bp.RetryBudget.dup_stats]
 * shows how often that happened.
 *
 * A reference-counted boxed type. Thread-safe: all functions may be called
 * from any thread.
 */
typedef struct _BpRetryBudget BpRetryBudget;

#define BP_TYPE_RETRY_BUDGET (bp_retry_budget_get_type ())

BP_AVAILABLE_IN_ALL
GType          bp_retry_budget_get_type      (void) G_GNUC_CONST;
BP_AVAILABLE_IN_ALL
BpRetryBudget *bp_retry_budget_new           (BpClock       *clock,
                                              double         ratio,
                                              guint          min_per_second,
                                              guint          window_ms);
BP_AVAILABLE_IN_ALL
BpRetryBudget *bp_retry_budget_ref           (BpRetryBudget *self);
BP_AVAILABLE_IN_ALL
void           bp_retry_budget_unref         (BpRetryBudget *self);
BP_AVAILABLE_IN_ALL
void           bp_retry_budget_deposit       (BpRetryBudget *self);
BP_AVAILABLE_IN_ALL
gboolean       bp_retry_budget_try_withdraw  (BpRetryBudget *self);
BP_AVAILABLE_IN_ALL
GVariant      *bp_retry_budget_dup_stats     (BpRetryBudget *self);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpRetryBudget, bp_retry_budget_unref)

/* BpRetry ---------------------------------------------------------------- */

/* Declared in full in bp-breaker.h (which includes this header). */
typedef struct _BpBreaker BpBreaker;

#define BP_TYPE_RETRY (bp_retry_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpRetry, bp_retry, BP, RETRY, GObject)

BP_AVAILABLE_IN_ALL
BpRetry       *bp_retry_new                (BpClock              *clock);
BP_AVAILABLE_IN_ALL
BpClock       *bp_retry_get_clock          (BpRetry              *self);
BP_AVAILABLE_IN_ALL
void           bp_retry_set_budget         (BpRetry              *self,
                                            BpRetryBudget        *budget);
BP_AVAILABLE_IN_ALL
BpRetryBudget *bp_retry_dup_budget         (BpRetry              *self);
BP_AVAILABLE_IN_ALL
void           bp_retry_set_classify_func  (BpRetry              *self,
                                            BpClassifyFunc        func,
                                            gpointer              user_data,
                                            GDestroyNotify        destroy);
BP_AVAILABLE_IN_ALL
gint64         bp_retry_compute_delay      (BpRetry              *self,
                                            guint                 retry_index,
                                            gint64                prev_delay_us);
BP_AVAILABLE_IN_ALL
void           bp_retry_run_async          (BpRetry              *self,
                                            const BpOperation    *op,
                                            gpointer              op_data,
                                            GDestroyNotify        op_data_destroy,
                                            BpIdempotency         idempotency,
                                            GCancellable         *cancellable,
                                            GAsyncReadyCallback   callback,
                                            gpointer              user_data);
BP_AVAILABLE_IN_ALL
void           bp_retry_run_with_breaker_async
                                           (BpRetry              *self,
                                            BpBreaker            *breaker,
                                            const BpOperation    *op,
                                            gpointer              op_data,
                                            GDestroyNotify        op_data_destroy,
                                            BpIdempotency         idempotency,
                                            GCancellable         *cancellable,
                                            GAsyncReadyCallback   callback,
                                            gpointer              user_data);
BP_AVAILABLE_IN_ALL
gboolean       bp_retry_run_finish         (BpRetry              *self,
                                            GAsyncResult         *result,
                                            gpointer             *out_result,
                                            guint                *out_attempts,
                                            GError              **error);

G_END_DECLS
