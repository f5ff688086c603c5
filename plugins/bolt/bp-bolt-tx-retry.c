/* bp-bolt-tx-retry.c: the managed-transaction retry loop of the official drivers
 *
 * ExecuteRead/ExecuteWrite retry the whole unit of work the way the Neo4j
 * drivers do (JS `internal/transaction-executor.ts`, python
 * `_async/work/session.py::_run_transaction`; dbclients.md §2.7):
 *
 *  1. the first attempt starts at once;
 *  2. a failed attempt is retried only if the classifier calls its error
 *     %BP_FAILURE_RETRYABLE or %BP_FAILURE_AMBIGUOUS (a managed transaction
 *     is all or nothing, so a connection lost before COMMIT is safe to run
 *     again; the caller classifies "commit outcome unknown" as fatal);
 *  3. the retry window opens at the first failure: no retry once more than
 *     max-time-ms have passed since then (0: never retry). As in the
 *     drivers the sleep itself is not clipped to the window;
 *  4. the n-th sleep (n = 0, 1, …) is initial-ms · multiplier^n, drawn
 *     uniformly within ±jitter-percent of that (1 s, 2 s, 4 s … ±20 % by
 *     default), from the clock's seeded RNG;
 *  5. each retry withdraws from the shared retry budget, if one is set;
 *  6. cancellation ends the run at once, also during a sleep.
 *
 * BpRetry cannot express this schedule (its exponent base is fixed at 2,
 * its jitter shapes are full/equal/decorrelated, its deadline starts with
 * the first attempt), hence this small loop; it keeps BpRetry's
 * BpOperation, BpClassifyFunc and BpRetryBudget.
 *
 * Not thread-safe: create, configure and run it in one main context. The
 * callbacks and the ::retry-scheduled signal run in the thread-default main
 * context of the caller of bp_bolt_tx_retry_run_async().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>

#include "bp-bolt-tx-retry.h"

struct _BpBoltTxRetry
{
  GObject         parent_instance;

  BpClock        *clock;            /* (owned) */
  BpRetryBudget  *budget;           /* (owned) (nullable) */
  BpClassifyFunc  classify;         /* (nullable): bp_failure_kind_from_error */
  gpointer        classify_data;
  GDestroyNotify  classify_destroy;
  guint           initial_ms;
  double          multiplier;
  guint           jitter_percent;
  guint           max_time_ms;
};

G_DEFINE_FINAL_TYPE (BpBoltTxRetry, bp_bolt_tx_retry, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_CLOCK,
  PROP_INITIAL_MS,
  PROP_MULTIPLIER,
  PROP_JITTER_PERCENT,
  PROP_MAX_TIME_MS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  SIGNAL_RETRY_SCHEDULED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
bp_bolt_tx_retry_finalize (GObject *object)
{
  BpBoltTxRetry *self = BP_BOLT_TX_RETRY (object);

  if (self->classify_destroy != NULL)
    self->classify_destroy (self->classify_data);
  g_clear_pointer (&self->budget, bp_retry_budget_unref);
  g_clear_object (&self->clock);
  G_OBJECT_CLASS (bp_bolt_tx_retry_parent_class)->finalize (object);
}

static void
bp_bolt_tx_retry_constructed (GObject *object)
{
  BpBoltTxRetry *self = BP_BOLT_TX_RETRY (object);

  G_OBJECT_CLASS (bp_bolt_tx_retry_parent_class)->constructed (object);
  if (self->clock == NULL)
    self->clock = g_object_ref (bp_clock_get_default ());
}

static void
bp_bolt_tx_retry_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  BpBoltTxRetry *self = BP_BOLT_TX_RETRY (object);

  switch (prop_id)
    {
    case PROP_CLOCK:
      g_value_set_object (value, self->clock);
      break;
    case PROP_INITIAL_MS:
      g_value_set_uint (value, self->initial_ms);
      break;
    case PROP_MULTIPLIER:
      g_value_set_double (value, self->multiplier);
      break;
    case PROP_JITTER_PERCENT:
      g_value_set_uint (value, self->jitter_percent);
      break;
    case PROP_MAX_TIME_MS:
      g_value_set_uint (value, self->max_time_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_bolt_tx_retry_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  BpBoltTxRetry *self = BP_BOLT_TX_RETRY (object);

  switch (prop_id)
    {
    case PROP_CLOCK:
      self->clock = g_value_dup_object (value);
      break;
    case PROP_INITIAL_MS:
      self->initial_ms = g_value_get_uint (value);
      break;
    case PROP_MULTIPLIER:
      self->multiplier = g_value_get_double (value);
      break;
    case PROP_JITTER_PERCENT:
      self->jitter_percent = g_value_get_uint (value);
      break;
    case PROP_MAX_TIME_MS:
      self->max_time_ms = g_value_get_uint (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_bolt_tx_retry_class_init (BpBoltTxRetryClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->constructed = bp_bolt_tx_retry_constructed;
  object_class->finalize = bp_bolt_tx_retry_finalize;
  object_class->get_property = bp_bolt_tx_retry_get_property;
  object_class->set_property = bp_bolt_tx_retry_set_property;

  /**
   * BpBoltTxRetry:clock:
   *
   * The clock of the sleeps and of the retry window, and whose RNG draws
   * the jitter. %NULL at construction: the real clock.
   */
  properties[PROP_CLOCK] =
    g_param_spec_object ("clock", NULL, NULL, BP_TYPE_CLOCK,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * BpBoltTxRetry:initial-ms:
   *
   * The first sleep, before jitter (config key `tx-retry.initial-ms`).
   */
  properties[PROP_INITIAL_MS] =
    g_param_spec_uint ("initial-ms", NULL, NULL, 1, BP_BOLT_TX_RETRY_MAX_INITIAL_MS,
                       BP_BOLT_TX_RETRY_DEFAULT_INITIAL_MS,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);
  /**
   * BpBoltTxRetry:multiplier:
   *
   * Each sleep is the previous one times this, before jitter (config key
   * `tx-retry.multiplier`).
   */
  properties[PROP_MULTIPLIER] =
    g_param_spec_double ("multiplier", NULL, NULL, BP_BOLT_TX_RETRY_MIN_MULTIPLIER,
                         BP_BOLT_TX_RETRY_MAX_MULTIPLIER, BP_BOLT_TX_RETRY_DEFAULT_MULTIPLIER,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);
  /**
   * BpBoltTxRetry:jitter-percent:
   *
   * Each sleep is drawn uniformly within ± this percentage of its nominal
   * value (config key `tx-retry.jitter-percent`).
   */
  properties[PROP_JITTER_PERCENT] =
    g_param_spec_uint ("jitter-percent", NULL, NULL, 0, 100, BP_BOLT_TX_RETRY_DEFAULT_JITTER_PERCENT,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);
  /**
   * BpBoltTxRetry:max-time-ms:
   *
   * No retry starts once this much time has passed since the first failure;
   * 0 disables retries (config key `tx-retry.max-time-ms`).
   */
  properties[PROP_MAX_TIME_MS] =
    g_param_spec_uint ("max-time-ms", NULL, NULL, 0, BP_BOLT_TX_RETRY_MAX_MAX_TIME_MS,
                       BP_BOLT_TX_RETRY_DEFAULT_MAX_TIME_MS,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * BpBoltTxRetry::retry-scheduled:
   * @self: the retry loop
   * @attempt: the number of the attempt that failed (1 for the first)
   * @delay_us: the sleep before the next attempt
   * @error: why the attempt failed
   *
   * Emitted when a failed attempt will be retried, before the sleep.
   */
  signals[SIGNAL_RETRY_SCHEDULED] =
    g_signal_new ("retry-scheduled", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 3, G_TYPE_UINT, G_TYPE_INT64, G_TYPE_ERROR | G_SIGNAL_TYPE_STATIC_SCOPE);
}

static void
bp_bolt_tx_retry_init (BpBoltTxRetry *self)
{
}

/**
 * bp_bolt_tx_retry_new:
 * @clock: (nullable): the clock; %NULL for the real one
 *
 * Returns: (transfer full): a retry loop with the drivers' defaults: 1 s,
 *   doubling, ±20 %, 30 s; no budget; the default classifier
 */
BpBoltTxRetry *
bp_bolt_tx_retry_new (BpClock *clock)
{
  return g_object_new (BP_TYPE_BOLT_TX_RETRY, "clock", clock, NULL);
}

/**
 * bp_bolt_tx_retry_set_budget:
 * @self: a #BpBoltTxRetry
 * @budget: (nullable): the retry budget every retry withdraws from
 */
void
bp_bolt_tx_retry_set_budget (BpBoltTxRetry *self,
                             BpRetryBudget *budget)
{
  g_return_if_fail (BP_IS_BOLT_TX_RETRY (self));

  if (budget != NULL)
    bp_retry_budget_ref (budget);
  g_clear_pointer (&self->budget, bp_retry_budget_unref);
  self->budget = budget;
}

/**
 * bp_bolt_tx_retry_set_classify_func:
 * @self: a #BpBoltTxRetry
 * @func: (nullable): the retry predicate; %NULL for bp_failure_kind_from_error()
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data
 *
 * Errors @func calls %BP_FAILURE_RETRYABLE or %BP_FAILURE_AMBIGUOUS are
 * retried; %BP_FAILURE_FATAL and %BP_FAILURE_IGNORE end the run.
 */
void
bp_bolt_tx_retry_set_classify_func (BpBoltTxRetry  *self,
                                    BpClassifyFunc  func,
                                    gpointer        user_data,
                                    GDestroyNotify  destroy)
{
  g_return_if_fail (BP_IS_BOLT_TX_RETRY (self));

  if (self->classify_destroy != NULL)
    self->classify_destroy (self->classify_data);
  self->classify = func;
  self->classify_data = user_data;
  self->classify_destroy = destroy;
}

/**
 * bp_bolt_tx_retry_compute_delay:
 * @self: a #BpBoltTxRetry
 * @retry_index: 0 for the sleep after the first failure, 1 for the next, …
 * @uniform: a number in [0, 1): 0 gives the shortest sleep, towards 1 the
 *   longest
 *
 * Returns: `initial · multiplier^retry_index · (1 ± jitter)` in
 *   microseconds, at most a day
 */
gint64
bp_bolt_tx_retry_compute_delay (BpBoltTxRetry *self,
                                guint          retry_index,
                                double         uniform)
{
  const double cap_us = 24.0 * 3600.0 * G_USEC_PER_SEC;
  double nominal, spread, delay;

  g_return_val_if_fail (BP_IS_BOLT_TX_RETRY (self), 0);

  uniform = CLAMP (uniform, 0.0, 1.0);
  nominal = (double) self->initial_ms * 1000.0 * pow (self->multiplier, (double) retry_index);
  if (!(nominal < cap_us))   /* also catches inf */
    nominal = cap_us;
  spread = nominal * (double) self->jitter_percent / 100.0;
  delay = nominal - spread + uniform * 2.0 * spread;
  return (gint64) CLAMP (delay, 0.0, cap_us);
}

/* ---------------------------------------------------------------------- */
/* One run                                                                 */

typedef struct
{
  BpOperation     op;
  gpointer        op_data;           /* (owned by op_data_destroy) */
  GDestroyNotify  op_data_destroy;   /* (nullable) */
  guint           attempts;          /* started */
  gint64          first_failure_us;  /* -1 until an attempt failed */
  GSource        *sleep_source;      /* (owned) (nullable) */
  GSource        *cancel_source;     /* (owned) (nullable) */
} RunData;

static void
clear_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

static void
run_data_free (RunData *data)
{
  clear_source (&data->sleep_source);
  clear_source (&data->cancel_source);
  if (data->op_data_destroy != NULL)
    data->op_data_destroy (data->op_data);
  g_free (data);
}

static void run_attempt_done_cb (GObject      *source,
                                 GAsyncResult *result,
                                 gpointer      user_data);

/* Takes @task. */
static void
run_start_attempt (GTask *task)
{
  RunData *data = g_task_get_task_data (task);

  data->attempts++;
  data->op.start (data->op_data, g_task_get_cancellable (task), run_attempt_done_cb, task);
}

/* The sleep before the next attempt in µs, or -1 for no retry. */
static gint64
run_decide (BpBoltTxRetry *self,
            GTask         *task,
            RunData       *data,
            const GError  *error)
{
  BpFailureKind kind;
  gint64 now;

  if (g_cancellable_is_cancelled (g_task_get_cancellable (task)) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return -1;
  kind = self->classify != NULL ? self->classify (error, self->classify_data) : bp_failure_kind_from_error (error);
  if (kind != BP_FAILURE_RETRYABLE && kind != BP_FAILURE_AMBIGUOUS)
    return -1;
  if (self->max_time_ms == 0)
    return -1;

  now = bp_clock_get_time (self->clock);
  if (data->first_failure_us < 0)
    data->first_failure_us = now;
  if (now - data->first_failure_us > (gint64) self->max_time_ms * 1000)
    {
      g_debug ("transaction retry: %u attempts in %" G_GINT64_FORMAT " ms, over max-time-ms",
               data->attempts, (now - data->first_failure_us) / 1000);
      return -1;
    }
  if (self->budget != NULL && !bp_retry_budget_try_withdraw (self->budget))
    {
      g_debug ("transaction retry: budget exhausted after attempt %u", data->attempts);
      return -1;
    }
  return bp_bolt_tx_retry_compute_delay (self, data->attempts - 1, bp_clock_random_double (self->clock));
}

static gboolean run_sleep_done_cb      (gpointer      user_data);
static gboolean run_sleep_cancelled_cb (GCancellable *cancellable,
                                        gpointer      user_data);

/* Caller's context: an attempt ended. */
static void
run_attempt_done_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpBoltTxRetry *self = g_task_get_source_object (task);
  RunData *data = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GMainContext *context = g_task_get_context (task);
  g_autoptr(GError) error = NULL;
  gpointer op_result = NULL;
  gint64 delay;

  if (data->op.finish (data->op_data, result, &op_result, &error))
    {
      g_task_return_pointer (task, op_result, data->op.free_result);
      return;
    }
  if (error == NULL)
    error = g_error_new_literal (BP_ERROR, BP_ERROR_FAILED, "operation failed without setting an error");

  delay = run_decide (self, task, data, error);
  if (delay < 0)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  g_debug ("transaction retry: attempt %u failed (%s), next in %" G_GINT64_FORMAT " ms",
           data->attempts, error->message, delay / 1000);
  g_signal_emit (self, signals[SIGNAL_RETRY_SCHEDULED], 0, data->attempts, delay, error);

  /* Race the sleep against the cancellable; whichever fires first destroys
   * both. Each holds a reference on the task meanwhile. */
  data->sleep_source = bp_clock_timeout_source_new (self->clock, delay);
  g_source_set_callback (data->sleep_source, run_sleep_done_cb, g_object_ref (task), g_object_unref);
  g_source_attach (data->sleep_source, context);
  if (cancellable != NULL)
    {
      data->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (data->cancel_source, (GSourceFunc) (void (*) (void)) run_sleep_cancelled_cb,
                             g_object_ref (task), g_object_unref);
      g_source_attach (data->cancel_source, context);
    }
}

static gboolean
run_sleep_done_cb (gpointer user_data)
{
  g_autoptr(GTask) task = g_object_ref (user_data);
  RunData *data = g_task_get_task_data (task);

  clear_source (&data->sleep_source);
  clear_source (&data->cancel_source);
  if (g_task_return_error_if_cancelled (task))
    return G_SOURCE_REMOVE;
  run_start_attempt (g_steal_pointer (&task));
  return G_SOURCE_REMOVE;
}

static gboolean
run_sleep_cancelled_cb (GCancellable *cancellable,
                        gpointer      user_data)
{
  g_autoptr(GTask) task = g_object_ref (user_data);
  RunData *data = g_task_get_task_data (task);

  clear_source (&data->sleep_source);
  clear_source (&data->cancel_source);
  g_task_return_error_if_cancelled (task);
  return G_SOURCE_REMOVE;
}

/**
 * bp_bolt_tx_retry_run_async:
 * @self: a #BpBoltTxRetry
 * @op: the unit of work, one attempt per start (copied)
 * @op_data: (nullable): passed to @op's functions; lives until the run ends
 * @op_data_destroy: (nullable): frees @op_data
 * @cancellable: (nullable): cancels the run, including a sleep
 * @callback: called when the run completes, in the thread-default main
 *   context of the caller
 * @user_data: data for @callback
 *
 * Runs @op until an attempt succeeds or the rules at the top of this file
 * end the run. With a budget the run deposits once; each retry withdraws.
 */
void
bp_bolt_tx_retry_run_async (BpBoltTxRetry       *self,
                            const BpOperation   *op,
                            gpointer             op_data,
                            GDestroyNotify       op_data_destroy,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  RunData *data;

  g_return_if_fail (BP_IS_BOLT_TX_RETRY (self));
  g_return_if_fail (op != NULL && op->start != NULL && op->finish != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_tx_retry_run_async);
  data = g_new0 (RunData, 1);
  data->op = *op;
  data->op_data = op_data;
  data->op_data_destroy = op_data_destroy;
  data->first_failure_us = -1;
  g_task_set_task_data (task, data, (GDestroyNotify) run_data_free);

  if (g_task_return_error_if_cancelled (task))
    return;
  if (self->budget != NULL)
    bp_retry_budget_deposit (self->budget);
  run_start_attempt (g_steal_pointer (&task));
}

/**
 * bp_bolt_tx_retry_run_finish:
 * @self: a #BpBoltTxRetry
 * @result: the #GAsyncResult
 * @out_result: (out) (optional) (transfer full) (nullable): the result of
 *   the successful attempt; freed with the operation's `free_result` if not
 *   requested
 * @out_attempts: (out) (optional): attempts started, set on failure too
 * @error: the last attempt's error, or `G_IO_ERROR_CANCELLED`
 *
 * Returns: %TRUE if an attempt succeeded
 */
gboolean
bp_bolt_tx_retry_run_finish (BpBoltTxRetry  *self,
                             GAsyncResult   *result,
                             gpointer       *out_result,
                             guint          *out_attempts,
                             GError        **error)
{
  GTask *task = G_TASK (result);
  RunData *data;
  GError *local = NULL;
  gpointer value;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (task) == bp_bolt_tx_retry_run_async, FALSE);

  data = g_task_get_task_data (task);
  if (out_attempts != NULL)
    *out_attempts = data->attempts;
  value = g_task_propagate_pointer (task, &local);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  if (out_result != NULL)
    *out_result = value;
  else if (value != NULL && data->op.free_result != NULL)
    data->op.free_result (value);
  return TRUE;
}
