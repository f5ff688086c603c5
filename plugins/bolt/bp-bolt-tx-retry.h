/* bp-bolt-tx-retry.h: the managed-transaction retry loop of the official drivers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

/* The defaults of the official drivers (python `initial_retry_delay`,
 * `retry_delay_multiplier`, `retry_delay_jitter_factor`,
 * `max_transaction_retry_time`; JS `maxTransactionRetryTime`). */
#define BP_BOLT_TX_RETRY_DEFAULT_INITIAL_MS      1000
#define BP_BOLT_TX_RETRY_DEFAULT_MULTIPLIER      2.0
#define BP_BOLT_TX_RETRY_DEFAULT_JITTER_PERCENT  20
#define BP_BOLT_TX_RETRY_DEFAULT_MAX_TIME_MS     30000

/* bounds of the configuration keys */
#define BP_BOLT_TX_RETRY_MAX_INITIAL_MS   600000
#define BP_BOLT_TX_RETRY_MIN_MULTIPLIER   1.0
#define BP_BOLT_TX_RETRY_MAX_MULTIPLIER   10.0
#define BP_BOLT_TX_RETRY_MAX_MAX_TIME_MS  (24 * 3600 * 1000)

#define BP_TYPE_BOLT_TX_RETRY (bp_bolt_tx_retry_get_type ())

G_DECLARE_FINAL_TYPE (BpBoltTxRetry, bp_bolt_tx_retry, BP, BOLT_TX_RETRY, GObject)

BpBoltTxRetry *bp_bolt_tx_retry_new                (BpClock             *clock);
void           bp_bolt_tx_retry_set_budget         (BpBoltTxRetry       *self,
                                                    BpRetryBudget       *budget);
void           bp_bolt_tx_retry_set_classify_func  (BpBoltTxRetry       *self,
                                                    BpClassifyFunc       func,
                                                    gpointer             user_data,
                                                    GDestroyNotify       destroy);
gint64         bp_bolt_tx_retry_compute_delay      (BpBoltTxRetry       *self,
                                                    guint                retry_index,
                                                    double               uniform);
void           bp_bolt_tx_retry_run_async          (BpBoltTxRetry       *self,
                                                    const BpOperation   *op,
                                                    gpointer             op_data,
                                                    GDestroyNotify       op_data_destroy,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
gboolean       bp_bolt_tx_retry_run_finish         (BpBoltTxRetry       *self,
                                                    GAsyncResult        *result,
                                                    gpointer            *out_result,
                                                    guint               *out_attempts,
                                                    GError             **error);

G_END_DECLS
