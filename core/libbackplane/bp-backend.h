/* bp-backend.h: the base class of every configured backend instance
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#include <gio/gio.h>

#include "bp-clock.h"
#include "bp-config-section.h"
#include "bp-retry.h"
#include "bp-dead-letters.h"
#include "bp-version-macros.h"

G_BEGIN_DECLS

typedef struct _BpHost BpHost;
typedef struct _BpBreaker BpBreaker;

/**
 * BpBackendState:
 * @BP_BACKEND_STATE_STARTING: start_async() has not completed yet
 * @BP_BACKEND_STATE_READY: serving normally
 * @BP_BACKEND_STATE_DEGRADED: serving, but something is wrong (breaker
 *   half-open, a pool below its minimum, a fallback in use)
 * @BP_BACKEND_STATE_UNAVAILABLE: not serving (start failed, server gone,
 *   breaker open)
 * @BP_BACKEND_STATE_STOPPING: stop_async() is running
 */
typedef enum
{
  BP_BACKEND_STATE_STARTING,
  BP_BACKEND_STATE_READY,
  BP_BACKEND_STATE_DEGRADED,
  BP_BACKEND_STATE_UNAVAILABLE,
  BP_BACKEND_STATE_STOPPING,
} BpBackendState;

BP_AVAILABLE_IN_ALL
GType        bp_backend_state_get_type    (void) G_GNUC_CONST;
#define BP_TYPE_BACKEND_STATE (bp_backend_state_get_type ())
BP_AVAILABLE_IN_ALL
const char  *bp_backend_state_to_string   (BpBackendState state);

/**
 * BpBackendPoolConfig:
 *
 * The `pool.*` keys common to every backend; a backend with a pool applies
 * them to its #BpPool.
 */
typedef struct
{
  guint64 min;
  guint64 max;
  guint64 acquire_timeout_ms;
  guint64 idle_timeout_ms;
  guint64 max_lifetime_ms;
  guint64 max_uses;
} BpBackendPoolConfig;

/**
 * BpBackendResilienceConfig:
 *
 * The `breaker.*` and `retry.*` keys common to every backend.
 */
typedef struct
{
  guint64 breaker_error_threshold;  /* percent */
  guint64 breaker_min_volume;
  guint64 breaker_open_ms;
  guint64 breaker_half_open_permits;
  guint64 breaker_timeout_ms;       /* 0: none */
  guint64 retry_max_attempts;
  guint64 retry_base_ms;
  guint64 retry_cap_ms;
  guint   retry_jitter;             /* 0 full, 1 equal, 2 decorrelated */
  guint64 retry_deadline_ms;        /* 0: none */
  double  retry_multiplier;         /* backoff growth per retry, [1, 10] */
} BpBackendResilienceConfig;

#define BP_TYPE_BACKEND (bp_backend_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (BpBackend, bp_backend, BP, BACKEND, GObject)

/**
 * BpBackendClass:
 * @configure: read the type-specific keys of the backend's config group.
 *   Called before start; every key not read is an "unknown key" error.
 * @start_async: connect, pre-create pools, export interfaces. The backend is
 *   exported on the bus when this completes, whatever the outcome: a failed
 *   start leaves it `unavailable` with the reason in StateReason.
 * @start_finish: finishes @start_async
 * @stop_async: cancel in-flight work, roll back, close pools
 * @stop_finish: finishes @stop_async
 * @check_health_async: real I/O proving the backend works
 * @check_health_finish: finishes @check_health_async; returns healthy and a
 *   human-readable @detail
 * @dup_pool_stats: the `a{sv}` shown as Backend.Pool (empty when no pool)
 * @replay_async: re-runs a dead-lettered operation (its @operation name and
 *   @payload as the backend wrote them with bp_backend_dead_letter_async());
 *   called through the backend's breaker and retry budget
 * @replay_finish: finishes @replay_async
 * @classify_error: maps a native error to retryable / fatal / ambiguous /
 *   ignore (e.g. SQLSTATE 40001 retryable, 23505 ignore); used by the
 *   backend's breaker and retry. The default is bp_failure_kind_from_error().
 *
 * Subclasses implement these. All are called on the main context. The
 * default @start_finish / @stop_finish propagate a #GTask boolean and the
 * default @check_health_finish a #GTask string (the detail), so a subclass
 * whose async functions complete a #GTask that way need not override them.
 */
struct _BpBackendClass
{
  GObjectClass parent_class;

  gboolean  (*configure)           (BpBackend            *self,
                                    BpConfigSection      *section,
                                    GError              **error);
  void      (*start_async)         (BpBackend            *self,
                                    GCancellable         *cancellable,
                                    GAsyncReadyCallback   callback,
                                    gpointer              user_data);
  gboolean  (*start_finish)        (BpBackend            *self,
                                    GAsyncResult         *result,
                                    GError              **error);
  void      (*stop_async)          (BpBackend            *self,
                                    GCancellable         *cancellable,
                                    GAsyncReadyCallback   callback,
                                    gpointer              user_data);
  gboolean  (*stop_finish)         (BpBackend            *self,
                                    GAsyncResult         *result,
                                    GError              **error);
  void      (*check_health_async)  (BpBackend            *self,
                                    GCancellable         *cancellable,
                                    GAsyncReadyCallback   callback,
                                    gpointer              user_data);
  gboolean  (*check_health_finish) (BpBackend            *self,
                                    GAsyncResult         *result,
                                    char                **detail,
                                    GError              **error);
  GVariant *(*dup_pool_stats)      (BpBackend            *self);
  BpFailureKind (*classify_error)  (BpBackend            *self,
                                    const GError         *error);
  void      (*replay_async)        (BpBackend            *self,
                                    const char           *operation,
                                    GVariant             *payload,
                                    const char           *idempotency_key,
                                    GCancellable         *cancellable,
                                    GAsyncReadyCallback   callback,
                                    gpointer              user_data);
  gboolean  (*replay_finish)       (BpBackend            *self,
                                    GAsyncResult         *result,
                                    GError              **error);

  /*< private >*/
  gpointer _reserved[13];
};

BP_AVAILABLE_IN_ALL
const char       *bp_backend_get_name             (BpBackend           *self);
BP_AVAILABLE_IN_ALL
const char       *bp_backend_get_type_name        (BpBackend           *self);
BP_AVAILABLE_IN_ALL
const char       *bp_backend_get_object_path      (BpBackend           *self);
BP_AVAILABLE_IN_ALL
BpHost           *bp_backend_get_host             (BpBackend           *self);
BP_AVAILABLE_IN_ALL
BpClock          *bp_backend_get_clock            (BpBackend           *self);
BP_AVAILABLE_IN_ALL
BpBackendState    bp_backend_get_state            (BpBackend           *self);
BP_AVAILABLE_IN_ALL
const char       *bp_backend_get_state_reason     (BpBackend           *self);
BP_AVAILABLE_IN_ALL
void              bp_backend_set_state            (BpBackend           *self,
                                                   BpBackendState       state,
                                                   const char          *reason);
BP_AVAILABLE_IN_ALL
const BpBackendPoolConfig *
                  bp_backend_get_pool_config      (BpBackend           *self);
BP_AVAILABLE_IN_ALL
const BpBackendResilienceConfig *
                  bp_backend_get_resilience_config (BpBackend          *self);
BP_AVAILABLE_IN_ALL
void              bp_backend_add_interface        (BpBackend           *self,
                                                   GDBusInterfaceSkeleton *skeleton);
BP_AVAILABLE_IN_ALL
GPtrArray        *bp_backend_get_interfaces       (BpBackend           *self);
BP_AVAILABLE_IN_ALL
void              bp_backend_record_latency       (BpBackend           *self,
                                                   gint64               duration_us,
                                                   gboolean             success);
BP_AVAILABLE_IN_ALL
GVariant         *bp_backend_dup_latency          (BpBackend           *self);
BP_AVAILABLE_IN_ALL
GVariant         *bp_backend_dup_pool_stats       (BpBackend           *self);
BP_AVAILABLE_IN_ALL
BpBreaker        *bp_backend_get_breaker          (BpBackend           *self);
BP_AVAILABLE_IN_ALL
GVariant         *bp_backend_dup_breaker_stats    (BpBackend           *self);
BP_AVAILABLE_IN_ALL
void              bp_backend_reset_breaker        (BpBackend           *self);
BP_AVAILABLE_IN_ALL
BpRetry          *bp_backend_get_retry            (BpBackend           *self);
BP_AVAILABLE_IN_ALL
BpFailureKind     bp_backend_classify_error       (BpBackend           *self,
                                                   const GError        *error);
BP_AVAILABLE_IN_ALL
void              bp_backend_call_async           (BpBackend           *self,
                                                   const BpOperation   *op,
                                                   gpointer             op_data,
                                                   GDestroyNotify       op_data_destroy,
                                                   BpIdempotency        idempotency,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
BP_AVAILABLE_IN_ALL
void              bp_backend_dead_letter_async    (BpBackend           *self,
                                                   const char          *operation,
                                                   GVariant            *payload,
                                                   const char          *idempotency_key,
                                                   const GError        *last_error,
                                                   guint                attempts,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
BP_AVAILABLE_IN_ALL
gboolean          bp_backend_dead_letter_finish   (BpBackend           *self,
                                                   GAsyncResult        *result,
                                                   guint64             *out_id,
                                                   GError             **error);
BP_AVAILABLE_IN_ALL
void              bp_backend_attach_dead_letters  (BpBackend           *self,
                                                   BpDeadLetters       *dead_letters);
BP_AVAILABLE_IN_ALL
void              bp_backend_detach_dead_letters  (BpBackend           *self,
                                                   BpDeadLetters       *dead_letters);
BP_AVAILABLE_IN_ALL
gboolean          bp_backend_call_finish          (BpBackend           *self,
                                                   GAsyncResult        *result,
                                                   gpointer            *out_result,
                                                   guint               *out_attempts,
                                                   GError             **error);

BP_AVAILABLE_IN_ALL
gboolean          bp_backend_configure            (BpBackend           *self,
                                                   BpConfigSection     *section,
                                                   GError             **error);
BP_AVAILABLE_IN_ALL
void              bp_backend_start_async          (BpBackend           *self,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
BP_AVAILABLE_IN_ALL
gboolean          bp_backend_start_finish         (BpBackend           *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);
BP_AVAILABLE_IN_ALL
void              bp_backend_stop_async           (BpBackend           *self,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
BP_AVAILABLE_IN_ALL
gboolean          bp_backend_stop_finish          (BpBackend           *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);
BP_AVAILABLE_IN_ALL
void              bp_backend_check_health_async   (BpBackend           *self,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
BP_AVAILABLE_IN_ALL
gboolean          bp_backend_check_health_finish  (BpBackend           *self,
                                                   GAsyncResult        *result,
                                                   char               **detail,
                                                   GError             **error);

G_END_DECLS
