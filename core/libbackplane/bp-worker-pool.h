/* bp-worker-pool.h: a bounded GThreadPool that completes GTasks
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

#define BP_TYPE_WORKER_POOL (bp_worker_pool_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpWorkerPool, bp_worker_pool, BP, WORKER_POOL, GObject)

/**
 * BpWorkerFunc:
 * @data: (nullable): the data given to bp_worker_pool_run_async()
 * @cancellable: (nullable): the call's #GCancellable; long work should poll it
 * @error: return location for a #GError
 *
 * The blocking work, for [method@Bp.WorkerPool.run_async]. It runs in a
 * worker thread, never in the caller's main context, so it must not touch
 * objects that are not thread-safe, nor rely on a thread-default main
 * context. It is called at most once per job, and not at all for a job
 * refused or cancelled while queued.
 *
 * Returns: (nullable) (transfer full): the result; %NULL with @error set on
 *   failure. %NULL without an error is a valid result.
 */
typedef gpointer (*BpWorkerFunc) (gpointer       data,
                                  GCancellable  *cancellable,
                                  GError       **error);

BP_AVAILABLE_IN_ALL
BpWorkerPool *bp_worker_pool_new          (const char          *name,
                                           guint                max_threads,
                                           guint                max_queued);
BP_AVAILABLE_IN_ALL
BpWorkerPool *bp_worker_pool_get_default  (void);
BP_AVAILABLE_IN_ALL
const char   *bp_worker_pool_get_name     (BpWorkerPool        *self);
BP_AVAILABLE_IN_ALL
guint         bp_worker_pool_get_max_threads (BpWorkerPool     *self);
BP_AVAILABLE_IN_ALL
guint         bp_worker_pool_get_max_queued  (BpWorkerPool     *self);
BP_AVAILABLE_IN_ALL
void          bp_worker_pool_run_async    (BpWorkerPool        *self,
                                           BpWorkerFunc         func,
                                           gpointer             data,
                                           GDestroyNotify       data_free,
                                           GDestroyNotify       result_free,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data);
BP_AVAILABLE_IN_ALL
gpointer      bp_worker_pool_run_finish   (BpWorkerPool        *self,
                                           GAsyncResult        *result,
                                           GError             **error);
BP_AVAILABLE_IN_ALL
GVariant     *bp_worker_pool_dup_stats    (BpWorkerPool        *self);

G_END_DECLS
