/* bp-retry.c: GTask-based retry with backoff, jitter, deadline and budget
 *
 * A BpRetry holds one backend's retry policy (attempts, backoff shape,
 * deadline), its shared BpRetryBudget and its error classifier, and runs any
 * BpOperation under that policy with bp_retry_run_async().
 *
 * Rules, in the order they are applied after a failed attempt:
 *  1. a cancelled call, or a failure classified FATAL or IGNORE, is final;
 *  2. an UNSAFE operation is never retried (RFC 9110 §9.2.2, gRPC A6);
 *  3. no more than max-attempts attempts (the first one included);
 *  4. no attempt starts after the deadline, and the last sleep is clipped to
 *     it;
 *  5. a failure that carries a retry-after (bp_error_get_retry_after(): a
 *     breaker's rejection, a server's Retry-After) is retried only if the
 *     retry-after fits in the remaining deadline (in cap-ms when there is no
 *     deadline), and then the sleep is at least the retry-after; a
 *     BP_ERROR_CIRCUIT_OPEN without one (forced open) is not retried;
 *  6. every retry must withdraw from the budget, if there is one.
 * The error of the last attempt is returned unchanged.
 *
 * bp_retry_run_with_breaker_async() also admits every attempt through a
 * BpBreaker, inline (see bp-breaker-private.h): one object per call instead
 * of a GTask per layer.
 *
 * Sleeps are BpClock timeout sources in the run's main context, raced
 * against a GCancellableSource, so a cancellation during a sleep completes the
 * run from the main loop without starting another attempt, and nothing stays
 * armed once the run has completed.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>

#include "bp-retry.h"

#include "bp-breaker-private.h"
#include "bp-epoch-private.h"
#include "bp-error.h"

G_DEFINE_ENUM_TYPE (BpFailureKind, bp_failure_kind,
  G_DEFINE_ENUM_VALUE (BP_FAILURE_RETRYABLE, "retryable"),
  G_DEFINE_ENUM_VALUE (BP_FAILURE_FATAL, "fatal"),
  G_DEFINE_ENUM_VALUE (BP_FAILURE_AMBIGUOUS, "ambiguous"),
  G_DEFINE_ENUM_VALUE (BP_FAILURE_IGNORE, "ignore"))

G_DEFINE_ENUM_TYPE (BpJitter, bp_jitter,
  G_DEFINE_ENUM_VALUE (BP_JITTER_NONE, "none"),
  G_DEFINE_ENUM_VALUE (BP_JITTER_FULL, "full"),
  G_DEFINE_ENUM_VALUE (BP_JITTER_EQUAL, "equal"),
  G_DEFINE_ENUM_VALUE (BP_JITTER_DECORRELATED, "decorrelated"))

G_DEFINE_ENUM_TYPE (BpIdempotency, bp_idempotency,
  G_DEFINE_ENUM_VALUE (BP_IDEMPOTENCY_UNSAFE, "unsafe"),
  G_DEFINE_ENUM_VALUE (BP_IDEMPOTENCY_IDEMPOTENT, "idempotent"),
  G_DEFINE_ENUM_VALUE (BP_IDEMPOTENCY_KEYED, "keyed"))

/* Bounds of the configuration (every limit a caller can push has one). */
#define MAX_ATTEMPTS_LIMIT 100
#define MAX_DELAY_MS       (24u * 3600u * 1000u)

/**
 * bp_failure_kind_from_error:
 * @error: a #GError
 *
 * The default classification, used when no [callback@Bp.ClassifyFunc] is
 * set and by custom classifiers for the errors they do not know:
 *
 * - `G_IO_ERROR_CANCELLED`, `BP_ERROR_CANCELLED`: %BP_FAILURE_IGNORE (never a
 *   failure, never retried)
 * - `BP_ERROR_TIMEOUT`, `BP_ERROR_UNAVAILABLE`, `BP_ERROR_CIRCUIT_OPEN`, and
 *   the I/O errors meaning the request never left or the server is busy
 *   (`G_IO_ERROR_CONNECTION_REFUSED`, `HOST_UNREACHABLE`,
 *   `NETWORK_UNREACHABLE`, `HOST_NOT_FOUND`, `NOT_CONNECTED`, `TIMED_OUT`,
 *   `BUSY`, `WOULD_BLOCK`, `G_RESOLVER_ERROR_TEMPORARY_FAILURE`):
 *   %BP_FAILURE_RETRYABLE
 * - `G_IO_ERROR_CONNECTION_CLOSED` / `G_IO_ERROR_BROKEN_PIPE` (the same
 *   code), `G_IO_ERROR_PARTIAL_INPUT`: %BP_FAILURE_AMBIGUOUS (the request
 *   may have been applied)
 * - client errors (`INVALID_ARGUMENT`, `NOT_FOUND`, `PERMISSION_DENIED`) and
 *   local limits (`POOL_EXHAUSTED`, `LIMIT_EXCEEDED`): %BP_FAILURE_IGNORE
 * - everything else (`BP_ERROR_BACKEND`, `BP_ERROR_FAILED`, unknown domains):
 *   %BP_FAILURE_FATAL
 *
 * Other domains (and the remaining `G_IO_ERROR` codes) are first mapped to
 * a %BP_ERROR code with [func@Bp.error_normalize]. Pure and thread-safe.
 *
 * Returns: the kind of failure
 */
BpFailureKind
bp_failure_kind_from_error (const GError *error)
{
  g_autoptr(GError) normalized = NULL;

  g_return_val_if_fail (error != NULL, BP_FAILURE_FATAL);

  if (error->domain == G_IO_ERROR)
    {
      switch (error->code)
        {
        case G_IO_ERROR_CANCELLED:
          return BP_FAILURE_IGNORE;
        case G_IO_ERROR_TIMED_OUT:
        case G_IO_ERROR_CONNECTION_REFUSED:
        case G_IO_ERROR_HOST_UNREACHABLE:
        case G_IO_ERROR_NETWORK_UNREACHABLE:
        case G_IO_ERROR_HOST_NOT_FOUND:
        case G_IO_ERROR_NOT_CONNECTED:
        case G_IO_ERROR_BUSY:
        case G_IO_ERROR_WOULD_BLOCK:
          return BP_FAILURE_RETRYABLE;
        case G_IO_ERROR_CONNECTION_CLOSED:
        case G_IO_ERROR_PARTIAL_INPUT:
          return BP_FAILURE_AMBIGUOUS;
        default:
          break;
        }
    }
  else if (error->domain == G_RESOLVER_ERROR &&
           error->code == G_RESOLVER_ERROR_TEMPORARY_FAILURE)
    return BP_FAILURE_RETRYABLE;

  if (error->domain != BP_ERROR)
    error = normalized = bp_error_normalize (error);

  switch ((BpError) error->code)
    {
    case BP_ERROR_CANCELLED:
    case BP_ERROR_INVALID_ARGUMENT:
    case BP_ERROR_NOT_FOUND:
    case BP_ERROR_PERMISSION_DENIED:
    case BP_ERROR_POOL_EXHAUSTED:
    case BP_ERROR_LIMIT_EXCEEDED:
      return BP_FAILURE_IGNORE;
    case BP_ERROR_TIMEOUT:
    case BP_ERROR_UNAVAILABLE:
    case BP_ERROR_CIRCUIT_OPEN:
      return BP_FAILURE_RETRYABLE;
    case BP_ERROR_FAILED:
    case BP_ERROR_BACKEND:
    default:
      return BP_FAILURE_FATAL;
    }
}

/* BpRetryBudget ---------------------------------------------------------- */

#define BUDGET_N_BUCKETS 10

typedef struct
{
  gint64  epoch;        /* bucket index (time / width) this slot counts, -1: empty */
  guint64 deposits;
  guint64 withdrawals;  /* retries paid from the ratio share */
} BudgetBucket;

struct _BpRetryBudget
{
  gatomicrefcount ref_count;
  BpClock        *clock;          /* (owned) */
  double          ratio;
  double          min_per_second;

  GMutex          mutex;          /* protects every field below */
  BpEpoch         ring;           /* bucket of a clock time */
  BudgetBucket    buckets[BUDGET_N_BUCKETS];
  double          reserve;        /* tokens of the per-second reserve */
  gint64          reserve_at;     /* clock time of the last refill */
  guint64         total_deposits;
  guint64         total_withdrawals;
  guint64         total_exhausted;
};

G_DEFINE_BOXED_TYPE (BpRetryBudget, bp_retry_budget, bp_retry_budget_ref, bp_retry_budget_unref)

/**
 * bp_retry_budget_new:
 * @clock: (nullable): the clock, %NULL for the default one
 * @ratio: the share of first attempts that may be retried, in [0, 10]
 *   (0.2: 20 %)
 * @min_per_second: retries always allowed per second on top of @ratio
 *   (at most 10000)
 * @window_ms: how long a deposit counts, in [100, 600000] ms (clamped)
 *
 * Creates a retry budget, usually one per backend shared by its retries,
 * hedges and dead-letter replays. Finagle's default is ratio 0.2, 10 per
 * second, window 10 s: over the first T seconds, with N first attempts, at
 * most `ratio·N + min_per_second·(T + 1)` retries pass (the reserve starts
 * full and holds at most one second's worth).
 *
 * A @ratio or @min_per_second out of range is a programming error: a
 * critical warning is logged and %NULL returned.
 *
 * Returns: (transfer full): a new #BpRetryBudget; free it with
 *   [method@Bp.RetryBudget.unref]
 */
BpRetryBudget *
bp_retry_budget_new (BpClock *clock,
                     double   ratio,
                     guint    min_per_second,
                     guint    window_ms)
{
  BpRetryBudget *self;

  g_return_val_if_fail (clock == NULL || BP_IS_CLOCK (clock), NULL);
  g_return_val_if_fail (ratio >= 0.0 && ratio <= 10.0, NULL);
  g_return_val_if_fail (min_per_second <= 10000, NULL);

  self = g_new0 (BpRetryBudget, 1);
  g_atomic_ref_count_init (&self->ref_count);
  self->clock = g_object_ref (clock != NULL ? clock : bp_clock_get_default ());
  self->ratio = ratio;
  self->min_per_second = min_per_second;
  window_ms = CLAMP (window_ms, 100, 600000);
  bp_epoch_init (&self->ring, (gint64) window_ms * 1000 / BUDGET_N_BUCKETS, BUDGET_N_BUCKETS);
  g_mutex_init (&self->mutex);
  for (guint i = 0; i < BUDGET_N_BUCKETS; i++)
    self->buckets[i].epoch = -1;
  /* One second's worth up front: a daemon that just started can still retry
   * its first transient failure. */
  self->reserve = min_per_second;
  self->reserve_at = bp_clock_get_time (self->clock);
  return self;
}

/**
 * bp_retry_budget_ref:
 * @self: a #BpRetryBudget
 *
 * Takes a reference on @self. Thread-safe (atomic).
 *
 * Returns: (transfer full): @self
 */
BpRetryBudget *
bp_retry_budget_ref (BpRetryBudget *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  g_atomic_ref_count_inc (&self->ref_count);
  return self;
}

/**
 * bp_retry_budget_unref:
 * @self: (transfer full): a #BpRetryBudget
 *
 * Drops a reference on @self; the last one frees it. Thread-safe (atomic).
 * Runs in progress hold their own reference.
 */
void
bp_retry_budget_unref (BpRetryBudget *self)
{
  g_return_if_fail (self != NULL);

  if (!g_atomic_ref_count_dec (&self->ref_count))
    return;
  g_mutex_clear (&self->mutex);
  g_clear_object (&self->clock);
  g_free (self);
}

/* Called with the mutex held; returns the bucket of @now, cleared if stale. */
static BudgetBucket *
budget_bucket_locked (BpRetryBudget *self,
                      gint64         now)
{
  guint slot;
  gint64 epoch = bp_epoch_at (&self->ring, now, &slot);
  BudgetBucket *b = &self->buckets[slot];

  if (b->epoch != epoch)
    {
      b->epoch = epoch;
      b->deposits = 0;
      b->withdrawals = 0;
    }
  return b;
}

static void
budget_deposit_at (BpRetryBudget *self,
                   gint64         now)
{
  g_mutex_lock (&self->mutex);
  budget_bucket_locked (self, now)->deposits++;
  self->total_deposits++;
  g_mutex_unlock (&self->mutex);
}

/**
 * bp_retry_budget_deposit:
 * @self: a #BpRetryBudget
 *
 * Records a first attempt. [method@Bp.Retry.run_async] calls it once per
 * run; call it yourself for operations you retry by other means. A deposit
 * counts for the budget's window.
 */
void
bp_retry_budget_deposit (BpRetryBudget *self)
{
  g_return_if_fail (self != NULL);

  budget_deposit_at (self, bp_clock_get_time (self->clock));
}

/**
 * bp_retry_budget_try_withdraw:
 * @self: a #BpRetryBudget
 *
 * Asks for one retry: it is paid from the `ratio` share of the deposits in
 * the window if that share is not used up, otherwise from the per-second
 * reserve. [method@Bp.Retry.run_async] calls it before every retry; call it
 * yourself before a retry you make by other means, and do not retry when it
 * says no. Each refusal is counted as `exhausted` in
 * [method@Bp.RetryBudget.dup_stats].
 *
 * Returns: %TRUE if the retry may go ahead (and is now paid for), %FALSE if
 *   the budget is exhausted
 */
gboolean
bp_retry_budget_try_withdraw (BpRetryBudget *self)
{
  gint64 now;
  gint64 epoch;
  guint64 deposits = 0;
  guint64 withdrawals = 0;
  gboolean ok = TRUE;

  g_return_val_if_fail (self != NULL, FALSE);

  now = bp_clock_get_time (self->clock);

  g_mutex_lock (&self->mutex);

  epoch = bp_epoch_at (&self->ring, now, NULL);

  if (now > self->reserve_at)
    {
      self->reserve += (double) (now - self->reserve_at) * self->min_per_second / G_USEC_PER_SEC;
      self->reserve = MIN (self->reserve, self->min_per_second);
      self->reserve_at = now;
    }

  for (guint i = 0; i < BUDGET_N_BUCKETS; i++)
    {
      const BudgetBucket *b = &self->buckets[i];

      if (b->epoch > epoch - BUDGET_N_BUCKETS && b->epoch <= epoch)
        {
          deposits += b->deposits;
          withdrawals += b->withdrawals;
        }
    }

  if ((double) (withdrawals + 1) <= self->ratio * (double) deposits + 1e-9)
    budget_bucket_locked (self, now)->withdrawals++;
  else if (self->reserve >= 1.0)
    self->reserve -= 1.0;
  else
    ok = FALSE;

  if (ok)
    self->total_withdrawals++;
  else
    self->total_exhausted++;

  g_mutex_unlock (&self->mutex);

  return ok;
}

/**
 * bp_retry_budget_dup_stats:
 * @self: a #BpRetryBudget
 *
 * Takes a snapshot of the budget's counters, for metrics and D-Bus: the
 * first attempts recorded, the retries allowed and the retries refused.
 *
 * Returns: (transfer full): a new, non-floating `a{sv}` with `deposits`,
 *   `withdrawals` and `exhausted` (all `t`, since creation)
 */
GVariant *
bp_retry_budget_dup_stats (BpRetryBudget *self)
{
  GVariantDict dict;

  g_return_val_if_fail (self != NULL, NULL);

  g_variant_dict_init (&dict, NULL);
  g_mutex_lock (&self->mutex);
  g_variant_dict_insert (&dict, "deposits", "t", self->total_deposits);
  g_variant_dict_insert (&dict, "withdrawals", "t", self->total_withdrawals);
  g_variant_dict_insert (&dict, "exhausted", "t", self->total_exhausted);
  g_mutex_unlock (&self->mutex);
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

/* BpRetry ---------------------------------------------------------------- */

/**
 * BpRetry:
 *
 * A retry policy: exponential backoff with a jitter shape, a cap, a maximum
 * number of attempts, an overall deadline, a retry predicate
 * ([callback@Bp.ClassifyFunc]) and an optional shared [struct@Bp.RetryBudget].
 *
 * Create one with [ctor@Bp.Retry.new], configure it through its properties,
 * then run any [struct@Bp.Operation] under it with
 * [method@Bp.Retry.run_async], or with
 * [method@Bp.Retry.run_with_breaker_async] to also admit every attempt
 * through a [class@Bp.Breaker]. A backend's own policy, built from the
 * `retry.*` keys of its configuration group, is used by
 * [method@Bp.Backend.call_async].
 *
 * ## Retry rules
 *
 * After a failed attempt the rules below are applied in this order; the
 * first one that says stop completes the run with the error of that
 * attempt, unchanged:
 *
 * 1. a cancelled run, or a failure classified %BP_FAILURE_FATAL or
 *    %BP_FAILURE_IGNORE, is final (%BP_FAILURE_RETRYABLE and
 *    %BP_FAILURE_AMBIGUOUS go on);
 * 2. a %BP_IDEMPOTENCY_UNSAFE operation is never retried (RFC 9110 §9.2.2,
 *    gRPC A6);
 * 3. no more than [property@Bp.Retry:max-attempts] attempts, the first one
 *    included;
 * 4. no attempt starts after the deadline
 *    ([property@Bp.Retry:deadline-ms] after the start of the run), and the
 *    last sleep is clipped to it;
 * 5. a failure that carries a retry-after ([func@Bp.error_get_retry_after]:
 *    a breaker's rejection, a server's `Retry-After`) is retried only if the
 *    retry-after fits in the time left before the deadline (in
 *    [property@Bp.Retry:cap-ms] when there is no deadline), and then the
 *    sleep is at least the retry-after; a %BP_ERROR_CIRCUIT_OPEN without one
 *    (a breaker in %BP_BREAKER_MODE_FORCED_OPEN) is not retried;
 * 6. every retry must withdraw from the budget, if there is one
 *    ([method@Bp.RetryBudget.try_withdraw]); an exhausted budget ends the
 *    run.
 *
 * The sleep before a retry is drawn as [enum@Bp.Jitter] describes from
 * [property@Bp.Retry:base-ms], [property@Bp.Retry:multiplier] and
 * [property@Bp.Retry:cap-ms] ([method@Bp.Retry.compute_delay] draws one).
 * With the defaults (3 attempts, base 100 ms, multiplier 2, cap 10 s, full
 * jitter) a run sleeps at most 100 ms and then at most 200 ms.
 *
 * ## Threads and main contexts
 *
 * Properties may be changed from any thread; a run reads them, the budget
 * and the classifier once, when it starts. [method@Bp.Retry.run_async] may
 * be called from any thread: every attempt is started, every sleep runs
 * and the callback is called in the thread-default main context of its
 * caller, never before [method@Bp.Retry.run_async] has returned. Sleeps
 * are [class@Bp.Clock] timeout sources raced against the run's
 * #GCancellable, so a cancellation during a sleep completes the run from
 * the main loop with `G_IO_ERROR_CANCELLED` without starting another
 * attempt, and nothing stays armed once the run has completed. A run whose
 * cancellable was cancelled also finishes with `G_IO_ERROR_CANCELLED` when
 * its last attempt succeeded (the result is freed). Set the classifier
 * before the first run.
 *
 * ## Example
 *
 * ```c
 * static void
 * get_start (gpointer             op_data,
 *            GCancellable        *cancellable,
 *            GAsyncReadyCallback  callback,
 *            gpointer             callback_data)
 * {
 *   GetRequest *req = op_data;
 *
 *   my_client_get_async (req->client, req->key, cancellable,
 *                        callback, callback_data);
 * }
 *
 * static gboolean
 * get_finish (gpointer       op_data,
 *             GAsyncResult  *result,
 *             gpointer      *out_result,
 *             GError       **error)
 * {
 *   GetRequest *req = op_data;
 *   GBytes *value = my_client_get_finish (req->client, result, error);
 *
 *   if (value == NULL)
 *     return FALSE;
 *   if (out_result != NULL)
 *     *out_result = value;
 *   else
 *     g_bytes_unref (value);
 *   return TRUE;
 * }
 *
 * static const BpOperation get_op = {
 *   get_start, get_finish, (GDestroyNotify) g_bytes_unref,
 * };
 *
 * static void
 * get_done_cb (GObject      *source,
 *              GAsyncResult *result,
 *              gpointer      user_data)
 * {
 *   g_autoptr(GBytes) value = NULL;
 *   g_autoptr(GError) error = NULL;
 *   guint attempts = 0;
 *
 *   if (!bp_retry_run_finish (BP_RETRY (source), result,
 *                             (gpointer *) &value, &attempts, &error))
 *     g_message ("GET failed after %u attempts: %s",
 *                attempts, error->message);
 *   // ...
 * }
 *
 * // The request is freed with get_request_free() once the run is over.
 * bp_retry_run_async (retry, &get_op, req, get_request_free,
 *                     BP_IDEMPOTENCY_IDEMPOTENT, cancellable,
 *                     get_done_cb, self);
 * ```
 */
struct _BpRetry
{
  GObject         parent_instance;

  BpClock        *clock;             /* (owned) */

  GMutex          mutex;             /* protects every field below */
  guint           max_attempts;
  guint           base_ms;
  guint           cap_ms;
  guint           deadline_ms;       /* 0: none */
  double          multiplier;        /* the backoff's growth per retry */
  BpJitter        jitter;
  BpRetryBudget  *budget;            /* (owned) (nullable) */
  BpClassifyFunc  classify;          /* (nullable) */
  gpointer        classify_data;
  GDestroyNotify  classify_destroy;
};

G_DEFINE_FINAL_TYPE (BpRetry, bp_retry, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_CLOCK,
  PROP_MAX_ATTEMPTS,
  PROP_BASE_MS,
  PROP_CAP_MS,
  PROP_JITTER,
  PROP_DEADLINE_MS,
  PROP_MULTIPLIER,
  PROP_BUDGET,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
bp_retry_finalize (GObject *object)
{
  BpRetry *self = BP_RETRY (object);

  if (self->classify_destroy != NULL)
    self->classify_destroy (self->classify_data);
  g_clear_pointer (&self->budget, bp_retry_budget_unref);
  g_clear_object (&self->clock);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (bp_retry_parent_class)->finalize (object);
}

static void
bp_retry_get_property (GObject    *object,
                       guint       prop_id,
                       GValue     *value,
                       GParamSpec *pspec)
{
  BpRetry *self = BP_RETRY (object);

  if (prop_id == PROP_CLOCK)
    {
      g_value_set_object (value, self->clock);
      return;
    }

  g_mutex_lock (&self->mutex);
  switch (prop_id)
    {
    case PROP_MAX_ATTEMPTS:
      g_value_set_uint (value, self->max_attempts);
      break;
    case PROP_BASE_MS:
      g_value_set_uint (value, self->base_ms);
      break;
    case PROP_CAP_MS:
      g_value_set_uint (value, self->cap_ms);
      break;
    case PROP_JITTER:
      g_value_set_enum (value, self->jitter);
      break;
    case PROP_DEADLINE_MS:
      g_value_set_uint (value, self->deadline_ms);
      break;
    case PROP_MULTIPLIER:
      g_value_set_double (value, self->multiplier);
      break;
    case PROP_BUDGET:
      g_value_set_boxed (value, self->budget);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
  g_mutex_unlock (&self->mutex);
}

static void
bp_retry_set_property (GObject      *object,
                       guint         prop_id,
                       const GValue *value,
                       GParamSpec   *pspec)
{
  BpRetry *self = BP_RETRY (object);
  guint *field = NULL;

  switch (prop_id)
    {
    case PROP_CLOCK:
      g_assert (self->clock == NULL);
      self->clock = g_value_dup_object (value);
      if (self->clock == NULL)
        self->clock = g_object_ref (bp_clock_get_default ());
      return;
    case PROP_MAX_ATTEMPTS:
      field = &self->max_attempts;
      break;
    case PROP_BASE_MS:
      field = &self->base_ms;
      break;
    case PROP_CAP_MS:
      field = &self->cap_ms;
      break;
    case PROP_DEADLINE_MS:
      field = &self->deadline_ms;
      break;
    case PROP_JITTER:
      g_mutex_lock (&self->mutex);
      if (self->jitter == (BpJitter) g_value_get_enum (value))
        {
          g_mutex_unlock (&self->mutex);
          return;
        }
      self->jitter = g_value_get_enum (value);
      g_mutex_unlock (&self->mutex);
      g_object_notify_by_pspec (object, pspec);
      return;
    case PROP_MULTIPLIER:
      g_mutex_lock (&self->mutex);
      if (self->multiplier == g_value_get_double (value))
        {
          g_mutex_unlock (&self->mutex);
          return;
        }
      self->multiplier = g_value_get_double (value);
      g_mutex_unlock (&self->mutex);
      g_object_notify_by_pspec (object, pspec);
      return;
    case PROP_BUDGET:
      bp_retry_set_budget (self, g_value_get_boxed (value));
      return;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }

  g_mutex_lock (&self->mutex);
  if (*field == g_value_get_uint (value))
    {
      g_mutex_unlock (&self->mutex);
      return;
    }
  *field = g_value_get_uint (value);
  g_mutex_unlock (&self->mutex);
  g_object_notify_by_pspec (object, pspec);
}

static void
bp_retry_class_init (BpRetryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = bp_retry_finalize;
  object_class->get_property = bp_retry_get_property;
  object_class->set_property = bp_retry_set_property;

  /**
   * BpRetry:clock:
   *
   * The clock sleeps and the deadline are measured on, and whose RNG draws
   * the jitter. %NULL at construction means the default clock.
   */
  properties[PROP_CLOCK] =
    g_param_spec_object ("clock", NULL, NULL,
                         BP_TYPE_CLOCK,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * BpRetry:max-attempts:
   *
   * The most attempts of one run, the first one included (1: no retry).
   */
  properties[PROP_MAX_ATTEMPTS] =
    g_param_spec_uint ("max-attempts", NULL, NULL,
                       1, MAX_ATTEMPTS_LIMIT, 3, rw);

  /**
   * BpRetry:base-ms:
   *
   * The base delay of the backoff, in milliseconds.
   */
  properties[PROP_BASE_MS] =
    g_param_spec_uint ("base-ms", NULL, NULL,
                       0, MAX_DELAY_MS, 100, rw);

  /**
   * BpRetry:cap-ms:
   *
   * No sleep is longer than this, in milliseconds.
   */
  properties[PROP_CAP_MS] =
    g_param_spec_uint ("cap-ms", NULL, NULL,
                       0, MAX_DELAY_MS, 10000, rw);

  /**
   * BpRetry:jitter:
   *
   * The shape of the backoff.
   */
  properties[PROP_JITTER] =
    g_param_spec_enum ("jitter", NULL, NULL,
                       BP_TYPE_JITTER, BP_JITTER_FULL, rw);

  /**
   * BpRetry:deadline-ms:
   *
   * The overall time a run may take from its start, in milliseconds; no
   * attempt starts after it. 0 means no deadline.
   */
  properties[PROP_DEADLINE_MS] =
    g_param_spec_uint ("deadline-ms", NULL, NULL,
                       0, MAX_DELAY_MS, 0, rw);

  /**
   * BpRetry:multiplier:
   *
   * How much the backoff grows per retry: the n-th sleep is shaped from
   * `base·multiplier^n`, in [1, 10] (1: constant backoff).
   */
  properties[PROP_MULTIPLIER] =
    g_param_spec_double ("multiplier", NULL, NULL,
                         1.0, 10.0, 2.0, rw);

  /**
   * BpRetry:budget:
   *
   * The shared retry budget, or %NULL for none.
   */
  properties[PROP_BUDGET] =
    g_param_spec_boxed ("budget", NULL, NULL,
                        BP_TYPE_RETRY_BUDGET,
                        G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
bp_retry_init (BpRetry *self)
{
  g_mutex_init (&self->mutex);
}

/**
 * bp_retry_new:
 * @clock: (nullable): the clock, %NULL for the default one
 *
 * Creates a retry policy with the defaults: 3 attempts, base 100 ms,
 * multiplier 2, cap 10 s, full jitter, no deadline, no budget, the default
 * classifier.
 *
 * Returns: (transfer full): a new #BpRetry
 */
BpRetry *
bp_retry_new (BpClock *clock)
{
  g_return_val_if_fail (clock == NULL || BP_IS_CLOCK (clock), NULL);

  return g_object_new (BP_TYPE_RETRY, "clock", clock, NULL);
}

/**
 * bp_retry_get_clock:
 * @self: a #BpRetry
 *
 * Gets the clock the sleeps and the deadline are measured on and the jitter
 * is drawn from ([property@Bp.Retry:clock]).
 *
 * Returns: (transfer none): the clock, owned by @self
 */
BpClock *
bp_retry_get_clock (BpRetry *self)
{
  g_return_val_if_fail (BP_IS_RETRY (self), NULL);
  return self->clock;
}

/**
 * bp_retry_set_budget:
 * @self: a #BpRetry
 * @budget: (nullable): the budget to share, or %NULL for none
 *
 * Sets the retry budget ([property@Bp.Retry:budget]); @self takes its own
 * reference. Several policies may share one budget. Runs already started
 * keep the one they started with. Thread-safe.
 */
void
bp_retry_set_budget (BpRetry       *self,
                     BpRetryBudget *budget)
{
  BpRetryBudget *old;

  g_return_if_fail (BP_IS_RETRY (self));

  g_mutex_lock (&self->mutex);
  old = self->budget;
  if (old == budget)
    {
      g_mutex_unlock (&self->mutex);
      return;
    }
  self->budget = budget != NULL ? bp_retry_budget_ref (budget) : NULL;
  g_mutex_unlock (&self->mutex);

  g_clear_pointer (&old, bp_retry_budget_unref);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_BUDGET]);
}

/**
 * bp_retry_dup_budget:
 * @self: a #BpRetry
 *
 * Gets the retry budget new runs use. Thread-safe.
 *
 * Returns: (transfer full) (nullable): a new reference to the retry budget,
 *   or %NULL if there is none
 */
BpRetryBudget *
bp_retry_dup_budget (BpRetry *self)
{
  BpRetryBudget *budget = NULL;

  g_return_val_if_fail (BP_IS_RETRY (self), NULL);

  g_mutex_lock (&self->mutex);
  if (self->budget != NULL)
    budget = bp_retry_budget_ref (self->budget);
  g_mutex_unlock (&self->mutex);
  return budget;
}

/**
 * bp_retry_set_classify_func:
 * @self: a #BpRetry
 * @func: (nullable) (scope notified): the classifier, %NULL for
 *   [func@Bp.FailureKind.from_error]
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data
 *
 * Sets the retry predicate, which decides rule 1 of the retry rules (see
 * [class@Bp.Retry]). It is called once per failed attempt, in the run's
 * main context. Set it before the first run: runs in progress keep using
 * the function they started with, and the old @user_data is destroyed at
 * once, so changing it while runs are in progress is unsafe.
 */
void
bp_retry_set_classify_func (BpRetry        *self,
                            BpClassifyFunc  func,
                            gpointer        user_data,
                            GDestroyNotify  destroy)
{
  gpointer old_data;
  GDestroyNotify old_destroy;

  g_return_if_fail (BP_IS_RETRY (self));

  g_mutex_lock (&self->mutex);
  old_data = self->classify_data;
  old_destroy = self->classify_destroy;
  self->classify = func;
  self->classify_data = user_data;
  self->classify_destroy = destroy;
  g_mutex_unlock (&self->mutex);

  if (old_destroy != NULL)
    old_destroy (old_data);
}

/* min(cap, base·m^n) without overflow for any n; exact shifts for m = 2. */
static gint64
exp_delay (gint64 base_us,
           gint64 cap_us,
           double multiplier,
           guint  n)
{
  double t;

  if (base_us <= 0)
    return 0;
  if (multiplier == 2.0)
    {
      if (n >= 62 || base_us > (cap_us >> n))
        return cap_us;
      return MIN (cap_us, base_us << n);
    }
  /* m in [1, 10]: pow() grows to +inf at worst, never NaN */
  t = (double) base_us * pow (multiplier, n);
  return t >= (double) cap_us ? cap_us : (gint64) t;
}

static gint64
compute_delay (BpClock  *clock,
               BpJitter  jitter,
               gint64    base_us,
               gint64    cap_us,
               double    multiplier,
               guint     n,
               gint64    prev_us)
{
  gint64 t;

  base_us = MIN (base_us, cap_us);

  switch (jitter)
    {
    case BP_JITTER_NONE:
      return exp_delay (base_us, cap_us, multiplier, n);

    case BP_JITTER_FULL:
      return bp_clock_random_range (clock, 0, exp_delay (base_us, cap_us, multiplier, n));

    case BP_JITTER_EQUAL:
      t = exp_delay (base_us, cap_us, multiplier, n);
      return t / 2 + bp_clock_random_range (clock, 0, t - t / 2);

    case BP_JITTER_DECORRELATED:
    default:
      prev_us = CLAMP (prev_us, base_us, cap_us);
      t = prev_us > G_MAXINT64 / 3 ? G_MAXINT64 : prev_us * 3;
      t = bp_clock_random_range (clock, base_us, t);   /* one draw: MIN() evaluates twice */
      return MIN (cap_us, t);
    }
}

/**
 * bp_retry_compute_delay:
 * @self: a #BpRetry
 * @retry_index: 0 for the sleep after the first failed attempt, 1 for the
 *   next, …; any value is safe (no overflow)
 * @prev_delay_us: the previous sleep, used by %BP_JITTER_DECORRELATED
 *   (0 or less: the base)
 *
 * Draws one backoff delay with the current configuration and the clock's
 * RNG, as a run does before each retry (before rule 5 of [class@Bp.Retry]
 * lengthens it to a retry-after or rule 4 clips it to the deadline). The
 * result is in `[0, cap]` for every input; see [enum@Bp.Jitter] for each
 * shape's range. Thread-safe.
 *
 * Returns: the delay in microseconds
 */
gint64
bp_retry_compute_delay (BpRetry *self,
                        guint    retry_index,
                        gint64   prev_delay_us)
{
  BpJitter jitter;
  gint64 base_us;
  gint64 cap_us;
  double multiplier;

  g_return_val_if_fail (BP_IS_RETRY (self), 0);

  g_mutex_lock (&self->mutex);
  jitter = self->jitter;
  base_us = (gint64) self->base_ms * 1000;
  cap_us = (gint64) self->cap_ms * 1000;
  multiplier = self->multiplier;
  g_mutex_unlock (&self->mutex);

  return compute_delay (self->clock, jitter, base_us, cap_us, multiplier, retry_index, prev_delay_us);
}

/* A run --------------------------------------------------------------------
 *
 * A run is its own GAsyncResult rather than a GTask with task data: one
 * GObject holds the whole run (no separate allocation), and completing it
 * from the operation's callback calls the caller's callback directly,
 * without GTask's per-return thread-default push/pop and "completed"
 * notification. The around-a-completed-GTask overhead of a call through
 * breaker and retry is the benchmark of bench/bench-resilience.c.
 *
 * It keeps GTask's contract: the callback runs in the thread-default main
 * context of the bp_retry_run_async() caller, never before that function
 * has returned (a completion reached while starting, or from another
 * context, goes through an idle source in the caller's context), and a run
 * whose cancellable was cancelled finishes with `G_IO_ERROR_CANCELLED` even
 * if its last attempt succeeded.
 */

#define BP_TYPE_RETRY_RUN (bp_retry_run_get_type ())
G_DECLARE_FINAL_TYPE (BpRetryRun, bp_retry_run, BP, RETRY_RUN, GObject)

struct _BpRetryRun
{
  GObject              parent_instance;

  BpRetry             *retry;             /* (owned): the source object */
  GCancellable        *cancellable;       /* (owned) (nullable) */
  GMainContext        *context;           /* (owned): the caller's thread-default */
  gboolean             context_is_global; /* context is g_main_context_default() */
  GAsyncReadyCallback  callback;          /* (nullable) */
  gpointer             user_data;
  gboolean             starting;          /* inside retry_run(): complete from an idle */
  gboolean             completed;

  gpointer             result;            /* (owned by op.free_result) */
  GError              *error;             /* (owned) (nullable) */

  BpOperation          op;
  gpointer             op_data;           /* (owned by op_data_destroy) */
  GDestroyNotify       op_data_destroy;   /* (nullable) */
  BpIdempotency        idempotency;
  BpClassifyFunc       classify;          /* (nullable) */
  gpointer             classify_data;
  BpRetryBudget       *budget;            /* (owned) (nullable) */
  guint                max_attempts;
  BpJitter             jitter;
  double               multiplier;
  gint64               base_us;
  gint64               cap_us;
  gint64               deadline;          /* absolute clock time, G_MAXINT64: none */
  guint                attempts;          /* attempts started */
  gint64               prev_delay_us;
  GSource             *sleep_source;      /* (owned) (nullable) */
  GSource             *cancel_source;     /* (owned) (nullable) */

  BpBreaker           *breaker;           /* (owned) (nullable): admits every attempt */
  BpBreakerPermit      permit;            /* the current attempt's, while holds_permit */
  gboolean             holds_permit;
  gboolean             via_breaker_call;  /* the current attempt runs in the breaker's
                                           * own call, for its per-call timeout */
};

static void bp_retry_run_async_result_iface_init (GAsyncResultIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (BpRetryRun, bp_retry_run, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_ASYNC_RESULT,
                                                      bp_retry_run_async_result_iface_init))

static void
clear_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

static void
bp_retry_run_finalize (GObject *object)
{
  BpRetryRun *run = (BpRetryRun *) object;

  clear_source (&run->sleep_source);
  clear_source (&run->cancel_source);
  if (run->result != NULL && run->op.free_result != NULL)
    run->op.free_result (run->result);
  g_clear_error (&run->error);
  g_clear_pointer (&run->budget, bp_retry_budget_unref);
  g_clear_object (&run->breaker);
  if (run->op_data_destroy != NULL)
    run->op_data_destroy (run->op_data);
  g_clear_object (&run->cancellable);
  g_main_context_unref (run->context);
  g_clear_object (&run->retry);

  G_OBJECT_CLASS (bp_retry_run_parent_class)->finalize (object);
}

static void
bp_retry_run_class_init (BpRetryRunClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bp_retry_run_finalize;
}

static void
bp_retry_run_init (BpRetryRun *run)
{
}

static GObject *
bp_retry_run_get_source_object (GAsyncResult *result)
{
  return g_object_ref (G_OBJECT (BP_RETRY_RUN (result)->retry));
}

static gpointer
bp_retry_run_get_user_data (GAsyncResult *result)
{
  return BP_RETRY_RUN (result)->user_data;
}

static gboolean
bp_retry_run_is_tagged (GAsyncResult *result,
                        gpointer      source_tag)
{
  return source_tag == bp_retry_run_async;
}

static void
bp_retry_run_async_result_iface_init (GAsyncResultIface *iface)
{
  iface->get_source_object = bp_retry_run_get_source_object;
  iface->get_user_data = bp_retry_run_get_user_data;
  iface->is_tagged = bp_retry_run_is_tagged;
}

static void
run_return_now (BpRetryRun *run)
{
  if (run->callback != NULL)
    run->callback ((GObject *) run->retry, (GAsyncResult *) run, run->user_data);
}

static gboolean
run_complete_in_idle_cb (gpointer user_data)
{
  run_return_now (user_data);
  return G_SOURCE_REMOVE;
}

static gboolean
run_in_own_context (BpRetryRun *run)
{
  GMainContext *current = g_main_context_get_thread_default ();

  return current != NULL ? current == run->context : run->context_is_global;
}

/* Completes @run with its result or @error (transfer full, nullable) and
 * drops the reference the caller held. */
static void
run_complete (BpRetryRun *run,
              GError     *error)
{
  GSource *idle;

  g_assert (!run->completed);
  run->completed = TRUE;
  run->error = error;

  if (!run->starting && run_in_own_context (run))
    {
      run_return_now (run);
      g_object_unref (run);
      return;
    }

  idle = g_idle_source_new ();
  g_source_set_priority (idle, G_PRIORITY_DEFAULT);
  g_source_set_callback (idle, run_complete_in_idle_cb, run, g_object_unref);
  g_source_set_static_name (idle, "[backplane] bp_retry_run_async");
  g_source_attach (idle, run->context);
  g_source_unref (idle);
}

static void retry_attempt_done_cb (GObject      *source,
                                   GAsyncResult *result,
                                   gpointer      user_data);
static void retry_attempt_failed  (BpRetryRun   *run,
                                   GError       *error);

/* Takes a reference on @run for the attempt. With a breaker, the attempt
 * is admitted here; a rejection is a failed attempt (BP_ERROR_CIRCUIT_OPEN)
 * that never reaches the operation. Without a per-call timeout the
 * operation is started directly and its outcome recorded in
 * retry_attempt_done_cb(). With one, the attempt goes through the
 * breaker's own call, which owns the timer and the late result. */
static void
retry_start_attempt (BpRetryRun *run,
                     gint64      now)
{
  guint timeout_ms = 0;

  run->attempts++;
  run->via_breaker_call = FALSE;

  if (run->breaker != NULL)
    {
      GError *error = NULL;

      if (!bp_breaker_admit_into (run->breaker, now, &run->permit, &timeout_ms, &error))
        {
          retry_attempt_failed (g_object_ref (run), error);
          return;
        }
      if (timeout_ms > 0)
        {
          run->via_breaker_call = TRUE;
          /* The breaker's call keeps the run, and so op_data, alive until
           * a timed-out attempt's late result has been finished. */
          bp_breaker_call_admitted_async (run->breaker, &run->permit, timeout_ms,
                                          &run->op, run->op_data, G_OBJECT (run),
                                          run->cancellable,
                                          retry_attempt_done_cb, g_object_ref (run));
          return;
        }
      run->holds_permit = TRUE;
    }

  run->op.start (run->op_data, run->cancellable, retry_attempt_done_cb, g_object_ref (run));
}

/* Decides whether to retry after @error. Returns the sleep in µs, or -1. */
static gint64
retry_decide (BpRetryRun   *run,
              const GError *error)
{
  BpClock *clock = run->retry->clock;
  BpFailureKind kind;
  gint64 retry_after_ms;
  gint64 now;
  gint64 remaining;
  gint64 delay;

  if (g_cancellable_is_cancelled (run->cancellable) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return -1;

  kind = run->classify != NULL ? run->classify (error, run->classify_data)
                               : bp_failure_kind_from_error (error);
  if (kind == BP_FAILURE_FATAL || kind == BP_FAILURE_IGNORE)
    return -1;
  if (run->idempotency == BP_IDEMPOTENCY_UNSAFE)
    return -1;
  if (run->attempts >= run->max_attempts)
    return -1;

  now = bp_clock_get_time (clock);
  if (now >= run->deadline)
    return -1;
  remaining = run->deadline - now;

  delay = compute_delay (clock, run->jitter, run->base_us, run->cap_us, run->multiplier,
                         run->attempts - 1, run->prev_delay_us);
  run->prev_delay_us = delay;

  retry_after_ms = bp_error_get_retry_after (error);
  /* A forced-open breaker gives no retry-after: it will not close soon. */
  if (retry_after_ms < 0 && g_error_matches (error, BP_ERROR, BP_ERROR_CIRCUIT_OPEN))
    return -1;
  if (retry_after_ms >= 0)
    {
      gint64 limit = run->deadline != G_MAXINT64 ? remaining : run->cap_us;

      if (retry_after_ms > limit / 1000)
        return -1;
      delay = MAX (delay, retry_after_ms * 1000);
    }

  delay = MIN (delay, remaining);

  if (run->budget != NULL && !bp_retry_budget_try_withdraw (run->budget))
    {
      g_debug ("retry: budget exhausted after attempt %u", run->attempts);
      return -1;
    }

  return delay;
}

static gboolean retry_sleep_done_cb      (gpointer      user_data);
static gboolean retry_sleep_cancelled_cb (GCancellable *cancellable,
                                          gpointer      user_data);

/* The attempt's reference on the run comes back here. */
static void
retry_attempt_done_cb (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  BpRetryRun *run = user_data;
  GError *error = NULL;
  gpointer op_result = NULL;
  gboolean ok;

  if (run->via_breaker_call)
    ok = bp_breaker_call_finish (run->breaker, result, &op_result, NULL, &error);
  else
    ok = run->op.finish (run->op_data, result, &op_result, &error);

  if (!ok && error == NULL)
    error = g_error_new_literal (BP_ERROR, BP_ERROR_FAILED,
                                 "operation failed without setting an error");

  if (run->holds_permit)
    {
      run->holds_permit = FALSE;
      bp_breaker_record (run->breaker, &run->permit, ok ? NULL : error);
    }

  if (ok)
    {
      g_clear_error (&error);
      run->result = op_result;
      run_complete (run, NULL);
      return;
    }

  retry_attempt_failed (run, error);
}

/* Takes a reference on @run and @error: completes the run with @error or
 * sleeps before the next attempt. */
static void
retry_attempt_failed (BpRetryRun *run,
                      GError     *error)
{
  gint64 delay;

  delay = retry_decide (run, error);
  if (delay < 0)
    {
      run_complete (run, error);
      return;
    }

  g_debug ("retry: attempt %u failed (%s), next in %" G_GINT64_FORMAT " µs",
           run->attempts, error->message, delay);
  g_error_free (error);

  /* Race the sleep against the cancellable; whichever fires first destroys
   * both. Each holds a reference on the run meanwhile; the one passed in
   * goes to the sleep. */
  run->sleep_source = bp_clock_timeout_source_new (run->retry->clock, delay);
  g_source_set_callback (run->sleep_source, retry_sleep_done_cb, run, g_object_unref);
  g_source_attach (run->sleep_source, run->context);

  if (run->cancellable != NULL)
    {
      run->cancel_source = g_cancellable_source_new (run->cancellable);
      g_source_set_callback (run->cancel_source, (GSourceFunc) retry_sleep_cancelled_cb,
                             g_object_ref (run), g_object_unref);
      g_source_attach (run->cancel_source, run->context);
    }
}

static gboolean
retry_sleep_done_cb (gpointer user_data)
{
  g_autoptr(BpRetryRun) run = g_object_ref (user_data);

  clear_source (&run->sleep_source);
  clear_source (&run->cancel_source);

  if (g_cancellable_is_cancelled (run->cancellable))
    {
      GError *error = NULL;

      g_cancellable_set_error_if_cancelled (run->cancellable, &error);
      run_complete (g_steal_pointer (&run), error);
      return G_SOURCE_REMOVE;
    }

  retry_start_attempt (run, -1);
  return G_SOURCE_REMOVE;
}

static gboolean
retry_sleep_cancelled_cb (GCancellable *cancellable,
                          gpointer      user_data)
{
  g_autoptr(BpRetryRun) run = g_object_ref (user_data);
  GError *error = NULL;

  clear_source (&run->sleep_source);
  clear_source (&run->cancel_source);

  g_debug ("retry: cancelled while sleeping after attempt %u", run->attempts);
  if (!g_cancellable_set_error_if_cancelled (cancellable, &error))
    g_assert_not_reached ();
  run_complete (g_steal_pointer (&run), error);
  return G_SOURCE_REMOVE;
}

static void
retry_run (BpRetry             *self,
           BpBreaker           *breaker,
           const BpOperation   *op,
           gpointer             op_data,
           GDestroyNotify       op_data_destroy,
           BpIdempotency        idempotency,
           GCancellable        *cancellable,
           GAsyncReadyCallback  callback,
           gpointer             user_data)
{
  BpRetryRun *run;
  GError *error = NULL;
  gint64 now = -1;

  run = g_object_new (BP_TYPE_RETRY_RUN, NULL);
  run->retry = g_object_ref (self);
  run->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  run->context = g_main_context_ref_thread_default ();
  run->context_is_global = run->context == g_main_context_default ();
  run->callback = callback;
  run->user_data = user_data;
  run->starting = TRUE;
  run->op = *op;
  run->op_data = op_data;
  run->op_data_destroy = op_data_destroy;
  run->idempotency = idempotency;
  run->breaker = breaker != NULL ? g_object_ref (breaker) : NULL;

  g_mutex_lock (&self->mutex);
  run->classify = self->classify;
  run->classify_data = self->classify_data;
  run->budget = self->budget != NULL ? bp_retry_budget_ref (self->budget) : NULL;
  run->max_attempts = self->max_attempts;
  run->jitter = self->jitter;
  run->multiplier = self->multiplier;
  run->base_us = (gint64) self->base_ms * 1000;
  run->cap_us = (gint64) self->cap_ms * 1000;
  run->deadline = self->deadline_ms > 0
                  ? bp_clock_get_time (self->clock) + (gint64) self->deadline_ms * 1000
                  : G_MAXINT64;
  g_mutex_unlock (&self->mutex);

  if (g_cancellable_set_error_if_cancelled (cancellable, &error))
    {
      run_complete (run, error);
      return;
    }

  /* One clock read for the deposit and the admission when both use the
   * same clock, as a backend's do. */
  if (run->budget != NULL)
    {
      now = bp_clock_get_time (run->budget->clock);
      budget_deposit_at (run->budget, now);
      if (run->breaker != NULL && bp_breaker_get_clock (run->breaker) != run->budget->clock)
        now = -1;
    }

  retry_start_attempt (run, now);
  run->starting = FALSE;
  g_object_unref (run);
}

/**
 * bp_retry_run_async:
 * @self: a #BpRetry
 * @op: the operation (copied)
 * @op_data: (nullable): passed to @op's functions; it lives until the run
 *   has completed
 * @op_data_destroy: (nullable): frees @op_data
 * @idempotency: what @op declares; only idempotent or keyed operations are
 *   retried
 * @cancellable: (nullable): cancels the run, including a sleep between
 *   attempts; it is passed to every attempt
 * @callback: called when the run completes, in the thread-default main
 *   context of the caller
 * @user_data: data for @callback
 *
 * Runs @op, retrying failed attempts as the policy allows (see the retry
 * rules in [class@Bp.Retry]). The first attempt starts before this function
 * returns (unless @cancellable is already cancelled); @callback is called
 * exactly once, never from within this function. If a budget is set, the
 * run deposits once and each retry withdraws once. The configuration,
 * budget and classifier are read once, now.
 *
 * Finish with [method@Bp.Retry.run_finish]. The run holds a reference on
 * @self and on @cancellable until it has completed; @op_data is destroyed
 * when the run is freed, after @callback.
 */
void
bp_retry_run_async (BpRetry             *self,
                    const BpOperation   *op,
                    gpointer             op_data,
                    GDestroyNotify       op_data_destroy,
                    BpIdempotency        idempotency,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  g_return_if_fail (BP_IS_RETRY (self));
  g_return_if_fail (op != NULL && op->start != NULL && op->finish != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  retry_run (self, NULL, op, op_data, op_data_destroy, idempotency,
             cancellable, callback, user_data);
}

/**
 * bp_retry_run_with_breaker_async:
 * @self: a #BpRetry
 * @breaker: the circuit breaker that admits every attempt
 * @op: the operation (copied)
 * @op_data: (nullable): passed to @op's functions; it must stay valid
 *   until the run has completed and, after a per-call timeout, until the
 *   timed-out attempt's late result has come
 * @op_data_destroy: (nullable): frees @op_data when the run is over: after
 *   @callback, and with #BpBreaker:timeout-ms set, after the late result of
 *   every timed-out attempt has been passed to @op's `finish`
 * @idempotency: what @op declares; only idempotent or keyed operations are
 *   retried
 * @cancellable: (nullable): cancels the run, including a sleep between
 *   attempts; it is passed to every attempt (with a per-call timeout, as the
 *   parent of the attempt's own cancellable)
 * @callback: called when the run completes, in the thread-default main
 *   context of the caller
 * @user_data: data for @callback
 *
 * Runs @op as [method@Bp.Retry.run_async] does, with every attempt admitted
 * by @breaker. It behaves as if each attempt were wrapped in
 * [method@Bp.Breaker.call_async] (without a fallback), in one object per
 * run instead of a #GTask per attempt plus one for the run. A rejected
 * attempt fails with %BP_ERROR_CIRCUIT_OPEN without starting @op, counts as
 * an attempt, and is retried only if its retry-after fits (rule 5); each
 * admitted attempt's outcome is recorded with the breaker's classifier; the
 * breaker's [property@Bp.Breaker:timeout-ms] applies to each attempt and a
 * timed-out attempt fails with %BP_ERROR_TIMEOUT (retryable). This is what
 * [method@Bp.Backend.call_async] uses.
 *
 * Finish with [method@Bp.Retry.run_finish].
 */
void
bp_retry_run_with_breaker_async (BpRetry             *self,
                                 BpBreaker           *breaker,
                                 const BpOperation   *op,
                                 gpointer             op_data,
                                 GDestroyNotify       op_data_destroy,
                                 BpIdempotency        idempotency,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_return_if_fail (BP_IS_RETRY (self));
  g_return_if_fail (BP_IS_BREAKER (breaker));
  g_return_if_fail (op != NULL && op->start != NULL && op->finish != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  retry_run (self, breaker, op, op_data, op_data_destroy, idempotency,
             cancellable, callback, user_data);
}

/**
 * bp_retry_run_finish:
 * @self: a #BpRetry
 * @result: the #GAsyncResult
 * @out_result: (out) (optional) (transfer full) (nullable): the operation's
 *   result; if not requested it is freed with the operation's `free_result`
 * @out_attempts: (out) (optional): how many attempts were started; set on
 *   failure too (the dead-letter queue records it)
 * @error: return location for the error of the last attempt, or
 *   `G_IO_ERROR_CANCELLED`
 *
 * Finishes a run started with [method@Bp.Retry.run_async] or
 * [method@Bp.Retry.run_with_breaker_async]; call it once, from the run's
 * callback. On failure @error is the last attempt's error as the operation
 * (or, with a breaker, the breaker: %BP_ERROR_CIRCUIT_OPEN with a
 * retry-after, %BP_ERROR_TIMEOUT) reported it, in any domain, or
 * `G_IO_ERROR_CANCELLED` if the run was cancelled before or between
 * attempts, or after its last attempt succeeded.
 *
 * Returns: %TRUE if an attempt succeeded
 */
gboolean
bp_retry_run_finish (BpRetry       *self,
                     GAsyncResult  *result,
                     gpointer      *out_result,
                     guint         *out_attempts,
                     GError       **error)
{
  BpRetryRun *run;
  gpointer op_result;

  g_return_val_if_fail (BP_IS_RETRY (self), FALSE);
  g_return_val_if_fail (BP_IS_RETRY_RUN (result), FALSE);

  run = (BpRetryRun *) result;   /* checked above; no second check on the hot path */
  g_return_val_if_fail (run->retry == self, FALSE);
  g_return_val_if_fail (run->completed, FALSE);

  if (out_attempts != NULL)
    *out_attempts = run->attempts;

  if (run->error != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&run->error));
      return FALSE;
    }

  op_result = g_steal_pointer (&run->result);
  if (g_cancellable_set_error_if_cancelled (run->cancellable, error))
    {
      if (op_result != NULL && run->op.free_result != NULL)
        run->op.free_result (op_result);
      return FALSE;
    }

  if (out_result != NULL)
    *out_result = op_result;
  else if (op_result != NULL && run->op.free_result != NULL)
    run->op.free_result (op_result);
  return TRUE;
}
