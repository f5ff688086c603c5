/* bp-breaker-private.h: what bp-retry.c needs to run a breaker inline
 *
 * bp_retry_run_with_breaker_async() admits each attempt and records its
 * outcome itself instead of wrapping it in bp_breaker_call_async(), so a call
 * costs one GTask, not two. The permit lives in the run's data.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bp-breaker.h"

G_BEGIN_DECLS

struct _BpBreakerPermit
{
  BpBreaker      *breaker;              /* (owned) in heap permits; NULL when embedded */
  guint64         generation;
  BpBreakerState  admitted_state;
  gint64          start_us;
  gboolean        tracked;              /* FALSE when admitted while DISABLED */
};

G_GNUC_INTERNAL
gboolean bp_breaker_admit_into  (BpBreaker        *self,
                                 gint64            now,
                                 BpBreakerPermit  *permit,
                                 guint            *out_timeout_ms,
                                 GError          **error);
G_GNUC_INTERNAL
void     bp_breaker_record      (BpBreaker              *self,
                                 const BpBreakerPermit  *permit,
                                 const GError           *error);
G_GNUC_INTERNAL
void     bp_breaker_call_admitted_async (BpBreaker              *self,
                                         const BpBreakerPermit  *permit,
                                         guint                   timeout_ms,
                                         const BpOperation      *op,
                                         gpointer                op_data,
                                         GObject                *keep_alive,
                                         GCancellable           *cancellable,
                                         GAsyncReadyCallback     callback,
                                         gpointer                user_data);

G_END_DECLS
