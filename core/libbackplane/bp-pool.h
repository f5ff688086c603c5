/* bp-pool.h: a generic asynchronous resource pool
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#include <gio/gio.h>

#include "bp-version-macros.h"
#include "bp-clock.h"

G_BEGIN_DECLS

#define BP_TYPE_POOL (bp_pool_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpPool, bp_pool, BP, POOL, GObject)

/**
 * BpPoolItem:
 *
 * One checked-out resource, from [method@Bp.Pool.acquire_finish] or
 * [method@Bp.Pool.try_acquire]. It stays owned by the pool: get the
 * resource with [method@Bp.PoolItem.get_resource] and give the item back,
 * exactly once, with [method@Bp.Pool.release]; the item is invalid after
 * that. An item that is never released keeps its pool alive and is
 * reported by [signal@Bp.Pool::leak-detected] when
 * [property@Bp.Pool:leak-threshold-ms] is set.
 *
 * An opaque C-only structure, with no type of its own for language
 * bindings.
 */
typedef struct _BpPoolItem BpPoolItem;

/**
 * BpPoolFuncs:
 * @create_async: starts creating a resource (opening a connection). It
 *   must honour @cancellable: the pool cancels it on create-timeout-ms and
 *   on close. Required.
 * @create_finish: finishes @create_async. Returns the new resource, or
 *   %NULL with an error (a %NULL without an error is reported as
 *   %BP_ERROR_FAILED). The error is handed to the oldest waiter when no
 *   other pending create or validation can serve it. Required.
 * @validate_async: (nullable): checks that an idle resource still works
 *   (a `SELECT 1`, a Bolt `RESET`) before it is handed out. The pool calls
 *   it on checkout when the resource was idle for validate-after-idle-ms or
 *   longer. It must honour @cancellable (validation-timeout-ms).
 * @validate_finish: (nullable): finishes @validate_async; %FALSE destroys
 *   the resource and the waiter is served by another one.
 * @reset: (nullable): called on every healthy release, in the pool's
 *   context; returns %FALSE when the resource cannot be reused (for
 *   example a connection left inside a transaction), which destroys it.
 *   Must not block.
 * @destroy: frees a resource. Synchronous and must not block: a resource
 *   that needs asynchronous teardown starts it here and lets it finish on
 *   its own. Required.
 *
 * The resource factory of a #BpPool. Every function receives the
 * `user_data` given to [ctor@Bp.Pool.new] and runs in the pool's main
 * context. The async functions report to their `callback` with their
 * `callback_data` as usual, exactly once, from the main loop. A resource is
 * an opaque pointer to the pool; it is handed to @destroy exactly once.
 * Unused members must be %NULL (use a designated initializer).
 */
typedef struct _BpPoolFuncs BpPoolFuncs;

struct _BpPoolFuncs
{
  void      (*create_async)    (gpointer              user_data,
                                GCancellable         *cancellable,
                                GAsyncReadyCallback   callback,
                                gpointer              callback_data);
  gpointer  (*create_finish)   (gpointer              user_data,
                                GAsyncResult         *result,
                                GError              **error);
  void      (*validate_async)  (gpointer              user_data,
                                gpointer              resource,
                                GCancellable         *cancellable,
                                GAsyncReadyCallback   callback,
                                gpointer              callback_data);
  gboolean  (*validate_finish) (gpointer              user_data,
                                GAsyncResult         *result,
                                GError              **error);
  gboolean  (*reset)           (gpointer              user_data,
                                gpointer              resource);
  void      (*destroy)         (gpointer              user_data,
                                gpointer              resource);

  /*< private >*/
  gpointer padding[8];
};

BP_AVAILABLE_IN_ALL
BpPool       *bp_pool_new                (const BpPoolFuncs    *funcs,
                                          gpointer              user_data,
                                          GDestroyNotify        user_data_free,
                                          const char           *first_property_name,
                                          ...) G_GNUC_NULL_TERMINATED;
BP_AVAILABLE_IN_ALL
void          bp_pool_acquire_async      (BpPool               *self,
                                          const char           *acquirer,
                                          GCancellable         *cancellable,
                                          GAsyncReadyCallback   callback,
                                          gpointer              user_data);
BP_AVAILABLE_IN_ALL
BpPoolItem   *bp_pool_acquire_finish     (BpPool               *self,
                                          GAsyncResult         *result,
                                          GError              **error);
BP_AVAILABLE_IN_ALL
BpPoolItem   *bp_pool_try_acquire        (BpPool               *self,
                                          const char           *acquirer);
BP_AVAILABLE_IN_ALL
void          bp_pool_release            (BpPool               *self,
                                          BpPoolItem           *item,
                                          gboolean              healthy);
BP_AVAILABLE_IN_ALL
void          bp_pool_close_async        (BpPool               *self,
                                          GCancellable         *cancellable,
                                          GAsyncReadyCallback   callback,
                                          gpointer              user_data);
BP_AVAILABLE_IN_ALL
gboolean      bp_pool_close_finish       (BpPool               *self,
                                          GAsyncResult         *result,
                                          GError              **error);
BP_AVAILABLE_IN_ALL
gboolean      bp_pool_is_closed          (BpPool               *self);
BP_AVAILABLE_IN_ALL
BpClock      *bp_pool_get_clock          (BpPool               *self);
BP_AVAILABLE_IN_ALL
GVariant     *bp_pool_dup_stats          (BpPool               *self);

BP_AVAILABLE_IN_ALL
gpointer      bp_pool_item_get_resource  (BpPoolItem           *item);
BP_AVAILABLE_IN_ALL
guint         bp_pool_item_get_uses      (BpPoolItem           *item);
BP_AVAILABLE_IN_ALL
const char   *bp_pool_item_get_acquirer  (BpPoolItem           *item);

G_END_DECLS
