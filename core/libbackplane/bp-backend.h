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
 *
 * The health of a [class@Bp.Backend], shown on D-Bus as Backend.State
 * (the names of [func@Bp.BackendState.to_string]) with a human-readable
 * Backend.StateReason.
 *
 * A backend is created `starting`. The daemon sets `ready` when
 * [vfunc@Bp.Backend.start_async] succeeds and the state is still
 * `starting`, and `unavailable` with the error message when it fails;
 * [method@Bp.Backend.stop_async] sets `stopping`. In between, the subclass
 * moves between `ready`, `degraded` and `unavailable` with
 * [method@Bp.Backend.set_state] as its server comes and goes; the base
 * class does not derive the state from the breaker or the pool.
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
 * @min: `pool.min`: connections kept open (default 0, at most 10000 and
 *   at most @max)
 * @max: `pool.max`: the most connections at once (default 10, 1–10000)
 * @acquire_timeout_ms: `pool.acquire-timeout-ms`: how long a call waits
 *   for a free connection (default 5000, 1 ms to 1 day)
 * @idle_timeout_ms: `pool.idle-timeout-ms`: idle connections above @min
 *   are closed after this long; 0 keeps them (default 30000, up to 1 day)
 * @max_lifetime_ms: `pool.max-lifetime-ms`: connections are retired after
 *   this long; 0 never (default 1800000, up to 30 days)
 * @max_uses: `pool.max-uses`: connections are retired after this many
 *   checkouts; 0 never (default 0, up to %G_MAXUINT32)
 *
 * The `pool.*` keys common to every backend, read and validated by
 * [method@Bp.Backend.configure] before the subclass's
 * [vfunc@Bp.Backend.configure] runs. A backend with a pool applies them to
 * its #BpPool (the properties of the same names); a backend without one
 * ignores them. Get them with [method@Bp.Backend.get_pool_config].
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
 * @breaker_error_threshold: `breaker.error-threshold`: the failure rate,
 *   in percent, that opens the breaker (default 50, 1–100)
 * @breaker_min_volume: `breaker.min-volume`: calls in the window before
 *   the rate counts (default 10, 1–1000000)
 * @breaker_open_ms: `breaker.open-ms`: how long the breaker stays open
 *   before it half-opens; it grows after failed trials, up to the
 *   breaker's `open-max-ms` (default 30000, 1 ms to 1 day)
 * @breaker_half_open_permits: `breaker.half-open-permits`: trial calls
 *   let through while half-open (default 3, 1–1000)
 * @breaker_timeout_ms: `breaker.timeout-ms`: per-attempt timeout; 0 none.
 *   bp_backend_call_async() abandons and cancels an attempt at this
 *   deadline; backends with a timeout of their own use it as that
 *   timeout's default (PostgreSQL: the statement timeout of Query and
 *   Execute; Bolt: the transaction's tx_timeout; Qdrant: the HTTP request
 *   timeout when shorter than `timeout-ms=`)
 *   (default 0, up to 1 day)
 * @retry_max_attempts: `retry.max-attempts`: attempts per call, the first
 *   one included (default 3, 1–100)
 * @retry_base_ms: `retry.base-ms`: the first backoff (default 100, 1 ms
 *   to 1 day, at most @retry_cap_ms)
 * @retry_cap_ms: `retry.cap-ms`: the largest backoff (default 10000, 1 ms
 *   to 1 day)
 * @retry_jitter: `retry.jitter`: 0 `full`, 1 `equal`, 2 `decorrelated`,
 *   3 `none`
 *   (default `full`); add %BP_JITTER_FULL to get a [enum@Bp.Jitter]
 * @retry_deadline_ms: `retry.deadline-ms`: no attempt starts later than
 *   this after the call; 0 none (default 0, up to 1 day)
 * @retry_multiplier: `retry.multiplier`: backoff growth per retry
 *   (default 2.0, 1.0–10.0)
 *
 * The `breaker.*` and `retry.*` keys common to every backend, read and
 * validated by [method@Bp.Backend.configure], which then applies them to
 * the backend's [class@Bp.Breaker] and [class@Bp.Retry] (the properties
 * of the same names). Get them with
 * [method@Bp.Backend.get_resilience_config].
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
  guint   retry_jitter;             /* 0 full, 1 equal, 2 decorrelated, 3 none */
  guint64 retry_deadline_ms;        /* 0: none */
  double  retry_multiplier;         /* backoff growth per retry, [1, 10] */
} BpBackendResilienceConfig;

#define BP_TYPE_BACKEND (bp_backend_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_DERIVABLE_TYPE (BpBackend, bp_backend, BP, BACKEND, GObject)

/**
 * BpBackendClass:
 * @parent_class: the parent class
 * @configure: read the type-specific keys of the backend's config group
 *   with the #BpConfigSection getters, and keep the values. Called once,
 *   before start, after the common `pool.*`, `breaker.*` and `retry.*`
 *   keys have been read; every key not read is then an "unknown key"
 *   error. Return %FALSE with a %BP_ERROR_INVALID_ARGUMENT naming the key
 *   on a bad value. No I/O beyond reading a secret file. The default reads
 *   nothing.
 * @start_async: connect, pre-create pools, start background work. The
 *   object is already exported, in state `starting`; at start-up the
 *   daemon takes its bus name only once every backend's start has
 *   completed, whatever the outcome (or `[daemon] start-timeout-ms` has
 *   passed). A failed start
 *   leaves the backend exported but `unavailable`, with the error message
 *   as StateReason; a successful one makes it `ready` unless it set
 *   another state itself. @cancellable is cancelled when the backend is
 *   removed before its start completes. The default succeeds at once.
 * @start_finish: finishes @start_async
 * @stop_async: cancel in-flight work, roll back, close pools. Called on
 *   reload (for a removed or changed group) and on shutdown, after the
 *   backend has been unexported and a pending start cancelled; also when
 *   start failed. The state is already `stopping`. The default succeeds at
 *   once.
 * @stop_finish: finishes @stop_async
 * @check_health_async: real I/O proving the backend works, for
 *   Backend.CheckHealth; honour @cancellable, which is cancelled when the
 *   caller leaves. The default does no I/O: it reports healthy, with the
 *   state's name as detail, whatever the state.
 * @check_health_finish: finishes @check_health_async; returns %TRUE and a
 *   human-readable @detail when healthy, %FALSE with an error otherwise
 * @dup_pool_stats: return a new, non-floating `a{sv}`, shown as
 *   Backend.Pool, usually bp_pool_dup_stats(). The default returns an
 *   empty dictionary.
 * @classify_error: map a native error to a [enum@Bp.FailureKind]
 *   (e.g. SQLSTATE 40001 retryable, 23505 ignore); the backend's breaker
 *   and retry use it for every attempt. Must be cheap and must not block.
 *   The default is bp_failure_kind_from_error().
 * @replay_async: re-run a dead-lettered operation: its @operation name,
 *   @payload and @idempotency_key as the backend passed them to
 *   bp_backend_dead_letter_async(). Called by the dead-letter queue through
 *   the backend's breaker (once, not retried; the retry budget pays for it).
 *   Apply it at most once per key. The default fails with %BP_ERROR_FAILED.
 * @replay_finish: finishes @replay_async
 *
 * The virtual functions of [class@Bp.Backend]. A subclass overrides
 * @start_async / @start_finish and @stop_async / @stop_finish, usually
 * @configure, @check_health_async / @check_health_finish and, with a pool,
 * @dup_pool_stats; @classify_error to teach the breaker and the retry its
 * native errors; @replay_async / @replay_finish if it dead-letters.
 *
 * All are called on the main context, and their callbacks must be invoked
 * there, from the main loop (not from within the call), as #GTask does.
 * The default @start_finish, @stop_finish and @replay_finish propagate a
 * #GTask boolean and the default @check_health_finish a #GTask string (the
 * detail), so a subclass whose async functions complete a #GTask that way
 * need not override them. Error messages reach D-Bus clients (as
 * StateReason, CheckHealth's detail, a dead letter's last error), so they
 * must not contain secrets.
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
