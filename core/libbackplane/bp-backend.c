/* bp-backend.c: the base class of every configured backend instance
 *
 * A plugin registers one subclass per backend type. The daemon creates one
 * instance per `[backend NAME]` group, calls configure() with that group,
 * start_async(), exports the instance at
 * /org/backplane/Backplane1/backend/NAME with the common Backend interface
 * plus the skeletons the subclass added, and calls stop_async() on reload or
 * shutdown. Everything here runs on the main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "bp-backend.h"
#include "bp-error.h"
#include "bp-host.h"
#include "bp-breaker.h"

#define N_LATENCY_BUCKETS 48  /* log2 buckets of microseconds */

typedef struct
{
  char                      *name;          /* (owned) */
  char                      *type_name;     /* (owned) */
  char                      *object_path;   /* (owned) */
  BpHost                    *host;          /* (owned) (nullable) */
  BpClock                   *clock;         /* (owned) */
  BpBackendState             state;
  char                      *state_reason;  /* (owned) */
  GPtrArray                 *interfaces;    /* (owned) (element-type GDBusInterfaceSkeleton) */
  BpBreaker                 *breaker;       /* (owned) */
  BpRetry                   *retry;         /* (owned) */
  BpBackendPoolConfig        pool_config;
  BpBackendResilienceConfig  resilience;
  guint64                    latency_buckets[N_LATENCY_BUCKETS];
  guint64                    latency_count;
  guint64                    latency_errors;
  gint64                     latency_max_us;
} BpBackendPrivate;

/**
 * BpBackend:
 *
 * The base class of every configured backend instance. A plugin
 * ([class@Bp.Plugin]) registers one concrete subclass per backend type;
 * the daemon creates one instance per `[backend NAME]` group whose
 * `type=` names that type.
 *
 * ## Life cycle
 *
 * 1. The daemon creates the instance with [property@Bp.Backend:name],
 *    [property@Bp.Backend:type-name] and [property@Bp.Backend:host]. The
 *    subclass's instance init creates its D-Bus interface skeletons and
 *    adds them with [method@Bp.Backend.add_interface].
 * 2. Configure: [method@Bp.Backend.configure] reads the common `pool.*`,
 *    `breaker.*` and `retry.*` keys, calls [vfunc@Bp.Backend.configure]
 *    for the subclass's own keys, fails on any key nobody read, and
 *    applies the common keys to the breaker and the retry policy. If this
 *    fails, the group is served by a placeholder backend that is
 *    `unavailable` with the error as its reason, and the instance is
 *    dropped.
 * 3. Start: the daemon exports the instance at
 *    `/org/backplane/Backplane1/backend/NAME`
 *    ([method@Bp.Backend.get_object_path]) with the common
 *    `org.backplane.Backplane1.Backend` interface (State, StateReason,
 *    Latency, Pool, Breaker; Ping, CheckHealth, ResetBreaker) plus the
 *    skeletons the subclass added, attaches the dead-letter queue
 *    ([method@Bp.Backend.attach_dead_letters]) and calls
 *    [method@Bp.Backend.start_async]. It takes its bus name only when
 *    every backend's start has completed, so at daemon start-up clients
 *    first see each backend `ready` or `unavailable` with the reason.
 * 4. Exported on the bus: the subclass serves its interfaces, runs its
 *    operations through [method@Bp.Backend.call_async] and reports its
 *    health with [method@Bp.Backend.set_state].
 * 5. Stop: on reload (its group removed or changed) or shutdown, the
 *    daemon unexports the instance, detaches the dead-letter queue,
 *    cancels a pending start and calls [method@Bp.Backend.stop_async],
 *    which sets `stopping` first. A changed group gets a new instance.
 *
 * ## What a subclass overrides
 *
 * The virtual functions of #BpBackendClass, all called on the main
 * context: [vfunc@Bp.Backend.start_async] and
 * [vfunc@Bp.Backend.stop_async] (with their finish functions) always;
 * usually [vfunc@Bp.Backend.configure],
 * [vfunc@Bp.Backend.check_health_async] and
 * [vfunc@Bp.Backend.dup_pool_stats]; [vfunc@Bp.Backend.classify_error] so
 * that the breaker and the retry understand its native errors;
 * [vfunc@Bp.Backend.replay_async] if it dead-letters operations. The
 * defaults succeed at once (start, stop), read no keys, report the state
 * as health, show no pool, use [func@Bp.FailureKind.from_error] and
 * refuse replays.
 *
 * ## Resilience
 *
 * Each instance owns a [class@Bp.Breaker] ([method@Bp.Backend.get_breaker])
 * and a [class@Bp.Retry] ([method@Bp.Backend.get_retry]) with a shared
 * [struct@Bp.RetryBudget] (retries may add 20 % to the load of the last
 * 10 s, plus 10 a second), both configured from the backend's keys and
 * both classifying errors with [vfunc@Bp.Backend.classify_error].
 *
 * Wrap each backend operation in a [struct@Bp.Operation] and run it with
 * [method@Bp.Backend.call_async]. It runs the retry policy and the
 * breaker fused ([method@Bp.Retry.run_with_breaker_async]): every attempt
 * is admitted by the breaker and its outcome recorded there, the breaker's
 * per-call timeout applies to each attempt, a rejection
 * (%BP_ERROR_CIRCUIT_OPEN) is retried only if its retry-after fits the
 * deadline (`retry.cap-ms` without one), and only idempotent or keyed
 * operations are retried, each retry paid for from the budget. The
 * call's latency goes to Backend.Latency.
 *
 * An idempotent operation that still fails can be dead-lettered:
 * [method@Bp.Backend.dead_letter_async] stores it durably in the daemon's
 * queue ([class@Bp.DeadLetters]), which later replays it through
 * [vfunc@Bp.Backend.replay_async], admitted by the breaker and paid for
 * from the retry budget; a replay refused by either is rescheduled and not
 * counted as an attempt.
 *
 * Everything here runs on the main context; #BpBackend is not
 * thread-safe.
 */
G_DEFINE_ABSTRACT_TYPE_WITH_PRIVATE (BpBackend, bp_backend, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_NAME,
  PROP_TYPE_NAME,
  PROP_HOST,
  PROP_CLOCK,
  PROP_STATE,
  PROP_STATE_REASON,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static const char *state_names[] = {
  "starting", "ready", "degraded", "unavailable", "stopping",
};

/**
 * bp_backend_state_get_type:
 *
 * Gets the #GType of [enum@Bp.BackendState], whose value nicks are the
 * names of [func@Bp.BackendState.to_string].
 *
 * Returns: the #GType
 */
GType
bp_backend_state_get_type (void)
{
  static gsize type_id;

  if (g_once_init_enter (&type_id))
    {
      static const GEnumValue values[] = {
        { BP_BACKEND_STATE_STARTING, "BP_BACKEND_STATE_STARTING", "starting" },
        { BP_BACKEND_STATE_READY, "BP_BACKEND_STATE_READY", "ready" },
        { BP_BACKEND_STATE_DEGRADED, "BP_BACKEND_STATE_DEGRADED", "degraded" },
        { BP_BACKEND_STATE_UNAVAILABLE, "BP_BACKEND_STATE_UNAVAILABLE", "unavailable" },
        { BP_BACKEND_STATE_STOPPING, "BP_BACKEND_STATE_STOPPING", "stopping" },
        { 0, NULL, NULL }
      };
      GType id = g_enum_register_static (g_intern_static_string ("BpBackendState"), values);
      g_once_init_leave (&type_id, id);
    }
  return type_id;
}

/**
 * bp_backend_state_to_string:
 * @state: a #BpBackendState
 *
 * Gets the name of @state as Backend.State shows it on D-Bus: `starting`,
 * `ready`, `degraded`, `unavailable` or `stopping`. A value outside the
 * enumeration gives `unavailable`.
 *
 * Returns: (transfer none): the name used on D-Bus, a static string
 */
const char *
bp_backend_state_to_string (BpBackendState state)
{
  if ((guint) state >= G_N_ELEMENTS (state_names))
    return "unavailable";
  return state_names[state];
}

static void
bp_backend_dispose (GObject *object)
{
  BpBackend *self = BP_BACKEND (object);
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_clear_pointer (&priv->interfaces, g_ptr_array_unref);
  g_clear_object (&priv->breaker);
  g_clear_object (&priv->retry);
  g_clear_object (&priv->host);

  G_OBJECT_CLASS (bp_backend_parent_class)->dispose (object);
}

static void
bp_backend_finalize (GObject *object)
{
  BpBackend *self = BP_BACKEND (object);
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_clear_pointer (&priv->name, g_free);
  g_clear_pointer (&priv->type_name, g_free);
  g_clear_pointer (&priv->object_path, g_free);
  g_clear_pointer (&priv->state_reason, g_free);
  g_clear_object (&priv->clock);

  G_OBJECT_CLASS (bp_backend_parent_class)->finalize (object);
}

static BpFailureKind
classify_cb (const GError *error,
             gpointer      user_data)
{
  BpBackend *self = user_data;

  return BP_BACKEND_GET_CLASS (self)->classify_error (self, error);
}

static BpFailureKind
bp_backend_real_classify_error (BpBackend    *self,
                                const GError *error)
{
  return bp_failure_kind_from_error (error);
}

static void
bp_backend_constructed (GObject *object)
{
  BpBackend *self = BP_BACKEND (object);
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);
  g_autofree char *escaped = NULL;

  G_OBJECT_CLASS (bp_backend_parent_class)->constructed (object);

  if (priv->clock == NULL)
    priv->clock = g_object_ref (bp_clock_get_default ());
  escaped = g_dbus_escape_object_path (priv->name != NULL ? priv->name : "unnamed");
  priv->breaker = bp_breaker_new (priv->name != NULL ? priv->name : "unnamed", priv->clock);
  bp_breaker_set_classify_func (priv->breaker, classify_cb, self, NULL);
  priv->retry = bp_retry_new (priv->clock);
  bp_retry_set_classify_func (priv->retry, classify_cb, self, NULL);
  {
    /* Finagle's default: retries may add 20 % to the load, plus 10 a second. */
    g_autoptr(BpRetryBudget) budget = bp_retry_budget_new (priv->clock, 0.2, 10, 10000);
    bp_retry_set_budget (priv->retry, budget);
  }
  priv->object_path = g_strconcat ("/org/backplane/Backplane1/backend/", escaped, NULL);
}

static void
bp_backend_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  BpBackend *self = BP_BACKEND (object);
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, priv->name);
      break;
    case PROP_TYPE_NAME:
      g_value_set_string (value, priv->type_name);
      break;
    case PROP_HOST:
      g_value_set_object (value, priv->host);
      break;
    case PROP_CLOCK:
      g_value_set_object (value, priv->clock);
      break;
    case PROP_STATE:
      g_value_set_enum (value, priv->state);
      break;
    case PROP_STATE_REASON:
      g_value_set_string (value, priv->state_reason);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_backend_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  BpBackend *self = BP_BACKEND (object);
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  switch (prop_id)
    {
    case PROP_NAME:
      priv->name = g_value_dup_string (value);
      break;
    case PROP_TYPE_NAME:
      priv->type_name = g_value_dup_string (value);
      break;
    case PROP_HOST:
      priv->host = g_value_dup_object (value);
      break;
    case PROP_CLOCK:
      priv->clock = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static gboolean
bp_backend_real_configure (BpBackend        *self,
                           BpConfigSection  *section,
                           GError          **error)
{
  return TRUE;
}

static void
bp_backend_real_start_async (BpBackend           *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, bp_backend_real_start_async);
  g_task_return_boolean (task, TRUE);
}

static gboolean
bp_backend_real_start_finish (BpBackend     *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
bp_backend_real_check_health_async (BpBackend           *self,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, bp_backend_real_check_health_async);
  g_task_return_pointer (task, g_strdup (bp_backend_state_to_string (bp_backend_get_state (self))), g_free);
}

static gboolean
bp_backend_real_check_health_finish (BpBackend     *self,
                                     GAsyncResult  *result,
                                     char         **detail,
                                     GError       **error)
{
  g_autofree char *d = g_task_propagate_pointer (G_TASK (result), error);

  if (d == NULL)
    return FALSE;
  if (detail != NULL)
    *detail = g_steal_pointer (&d);
  return TRUE;
}

static GVariant *
bp_backend_real_dup_pool_stats (BpBackend *self)
{
  return g_variant_ref_sink (g_variant_new ("a{sv}", NULL));
}

static void
bp_backend_real_replay_async (BpBackend           *self,
                              const char          *operation,
                              GVariant            *payload,
                              const char          *idempotency_key,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_task_report_new_error (self, callback, user_data, bp_backend_real_replay_async,
                           BP_ERROR, BP_ERROR_FAILED,
                           _("backend %s cannot replay “%s”"), bp_backend_get_name (self), operation);
}

static gboolean
bp_backend_real_replay_finish (BpBackend     *self,
                               GAsyncResult  *result,
                               GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
bp_backend_class_init (BpBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bp_backend_dispose;
  object_class->finalize = bp_backend_finalize;
  object_class->constructed = bp_backend_constructed;
  object_class->get_property = bp_backend_get_property;
  object_class->set_property = bp_backend_set_property;

  klass->configure = bp_backend_real_configure;
  klass->start_async = bp_backend_real_start_async;
  klass->start_finish = bp_backend_real_start_finish;
  klass->stop_async = bp_backend_real_start_async;
  klass->stop_finish = bp_backend_real_start_finish;
  klass->check_health_async = bp_backend_real_check_health_async;
  klass->check_health_finish = bp_backend_real_check_health_finish;
  klass->dup_pool_stats = bp_backend_real_dup_pool_stats;
  klass->classify_error = bp_backend_real_classify_error;
  klass->replay_async = bp_backend_real_replay_async;
  klass->replay_finish = bp_backend_real_replay_finish;

  /**
   * BpBackend:name:
   *
   * The backend's name: NAME of its `[backend NAME]` group. It names the
   * object path, the breaker and the dead-letter entries. Set by the
   * daemon at construction.
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * BpBackend:type-name:
   *
   * The backend type, `type=` of the group (the plugin's
   * `X-Backplane-Backend-Type`), shown as Backend.Type. Set by the daemon
   * at construction.
   */
  properties[PROP_TYPE_NAME] =
    g_param_spec_string ("type-name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * BpBackend:host:
   *
   * The daemon's services ([class@Bp.Host]): the bus connection, caller
   * tracking, per-client objects and the dead-letter store. %NULL in unit
   * tests that construct a backend alone. Construct-only.
   */
  properties[PROP_HOST] =
    g_param_spec_object ("host", NULL, NULL, BP_TYPE_HOST,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * BpBackend:clock:
   *
   * The clock of every timer of this backend: its breaker, its retry
   * policy and budget, its latency measurements, and the subclass's own
   * timeouts should use it too. Construct-only; when not set, the default
   * clock ([func@Bp.Clock.get_default]). Tests pass a manual clock.
   */
  properties[PROP_CLOCK] =
    g_param_spec_object ("clock", NULL, NULL, BP_TYPE_CLOCK,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * BpBackend:state:
   *
   * The backend's health, shown as Backend.State; see
   * [enum@Bp.BackendState]. Read-only; changed with
   * [method@Bp.Backend.set_state], which notifies only on a real change.
   */
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, BP_TYPE_BACKEND_STATE, BP_BACKEND_STATE_STARTING,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * BpBackend:state-reason:
   *
   * Why the backend is in its state, for humans (Backend.StateReason);
   * empty when there is nothing to say. Read-only; changed with
   * [method@Bp.Backend.set_state], which notifies only on a real change.
   */
  properties[PROP_STATE_REASON] =
    g_param_spec_string ("state-reason", NULL, NULL, NULL,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
bp_backend_init (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  priv->interfaces = g_ptr_array_new_with_free_func (g_object_unref);
  priv->state = BP_BACKEND_STATE_STARTING;
  priv->state_reason = g_strdup ("");
}

/**
 * bp_backend_get_name:
 * @self: a #BpBackend
 *
 * Gets the backend's name, [property@Bp.Backend:name].
 *
 * Returns: (transfer none): the name
 */
const char *
bp_backend_get_name (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return priv->name;
}

/**
 * bp_backend_get_type_name:
 * @self: a #BpBackend
 *
 * Gets the backend type, [property@Bp.Backend:type-name].
 *
 * Returns: (transfer none): the type name, e.g. `postgres`
 */
const char *
bp_backend_get_type_name (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return priv->type_name;
}

/**
 * bp_backend_get_object_path:
 * @self: a #BpBackend
 *
 * Gets the object path the daemon exports the backend at, with the common
 * Backend interface and the skeletons added with
 * [method@Bp.Backend.add_interface]. NAME is the backend's name escaped
 * with g_dbus_escape_object_path().
 *
 * Returns: (transfer none): `/org/backplane/Backplane1/backend/NAME`
 */
const char *
bp_backend_get_object_path (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return priv->object_path;
}

/**
 * bp_backend_get_host:
 * @self: a #BpBackend
 *
 * Gets the daemon's services, [property@Bp.Backend:host]: the bus
 * connection, caller tracking ([ctor@Bp.Call.new]), per-client objects and
 * the dead-letter store.
 *
 * Returns: (transfer none) (nullable): the host; %NULL only for a backend
 *   constructed without one (unit tests)
 */
BpHost *
bp_backend_get_host (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return priv->host;
}

/**
 * bp_backend_get_clock:
 * @self: a #BpBackend
 *
 * Gets [property@Bp.Backend:clock], the clock of the backend's breaker,
 * retry policy and latency measurements. Use it for the subclass's own
 * timers too (bp_clock_timeout_source_new()), so that tests with a manual
 * clock control them.
 *
 * Returns: (transfer none): the clock every timer of this backend uses
 */
BpClock *
bp_backend_get_clock (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return priv->clock;
}

/**
 * bp_backend_get_state:
 * @self: a #BpBackend
 *
 * Gets the backend's health, [property@Bp.Backend:state].
 *
 * Returns: the current state
 */
BpBackendState
bp_backend_get_state (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), BP_BACKEND_STATE_UNAVAILABLE);
  return priv->state;
}

/**
 * bp_backend_get_state_reason:
 * @self: a #BpBackend
 *
 * Gets the reason for the current state,
 * [property@Bp.Backend:state-reason].
 *
 * Returns: (transfer none): the reason; empty when there is none
 */
const char *
bp_backend_get_state_reason (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return priv->state_reason;
}

/**
 * bp_backend_set_state:
 * @self: a #BpBackend
 * @state: the new state
 * @reason: (nullable): why, for humans (shown as StateReason); must not
 *   contain secrets. %NULL is the same as an empty string
 *
 * Sets [property@Bp.Backend:state] and [property@Bp.Backend:state-reason].
 * Subclasses call this as their server goes away and comes back; the
 * daemon calls it when start completes and when stop begins. Each property
 * is notified only if it changed, and the daemon updates the D-Bus
 * properties and logs the transition from that notification. Call it on
 * the main context.
 */
void
bp_backend_set_state (BpBackend      *self,
                      BpBackendState  state,
                      const char     *reason)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_if_fail (BP_IS_BACKEND (self));

  if (reason == NULL)
    reason = "";
  if (priv->state != state)
    {
      g_debug ("backend %s: %s → %s%s%s", priv->name,
               bp_backend_state_to_string (priv->state),
               bp_backend_state_to_string (state),
               reason[0] ? ": " : "", reason);
      priv->state = state;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
    }
  if (g_strcmp0 (priv->state_reason, reason) != 0)
    {
      g_free (priv->state_reason);
      priv->state_reason = g_strdup (reason);
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE_REASON]);
    }
}

/**
 * bp_backend_get_pool_config:
 * @self: a #BpBackend
 *
 * Gets the `pool.*` keys of the backend's group, read by
 * [method@Bp.Backend.configure] (all zero before that). A backend with
 * a pool applies them to its #BpPool in its start.
 *
 * Returns: (transfer none): the pool configuration, valid as long as
 *   @self
 */
const BpBackendPoolConfig *
bp_backend_get_pool_config (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return &priv->pool_config;
}

/**
 * bp_backend_get_resilience_config:
 * @self: a #BpBackend
 *
 * Gets the `breaker.*` and `retry.*` keys of the backend's group, read by
 * [method@Bp.Backend.configure] (all zero before that). They are already
 * applied to [method@Bp.Backend.get_breaker] and
 * [method@Bp.Backend.get_retry]; use them for resilience a subclass
 * builds itself.
 *
 * Returns: (transfer none): the resilience configuration, valid as long
 *   as @self
 */
const BpBackendResilienceConfig *
bp_backend_get_resilience_config (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return &priv->resilience;
}

/**
 * bp_backend_add_interface:
 * @self: a #BpBackend
 * @skeleton: (transfer none): a D-Bus interface skeleton; a reference is
 *   kept
 *
 * Adds a typed interface (`.Sql`, `.Graph`, …) that the daemon exports at
 * the backend's object path next to the common Backend interface. Call it
 * from the instance init or from [vfunc@Bp.Backend.configure]: the daemon
 * exports the interfaces once, before it starts the backend, so an
 * interface added later is not exported. There is no way to remove one.
 */
void
bp_backend_add_interface (BpBackend              *self,
                          GDBusInterfaceSkeleton *skeleton)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_if_fail (BP_IS_BACKEND (self));
  g_return_if_fail (G_IS_DBUS_INTERFACE_SKELETON (skeleton));

  g_ptr_array_add (priv->interfaces, g_object_ref (skeleton));
}

/**
 * bp_backend_get_interfaces:
 * @self: a #BpBackend
 *
 * Gets the interfaces added with [method@Bp.Backend.add_interface], in the
 * order they were added. The daemon exports and unexports them with the
 * backend.
 *
 * Returns: (transfer none) (element-type GDBusInterfaceSkeleton): the typed
 *   interfaces; do not modify the array
 */
GPtrArray *
bp_backend_get_interfaces (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return priv->interfaces;
}

/**
 * bp_backend_record_latency:
 * @self: a #BpBackend
 * @duration_us: how long one operation took, in microseconds of the
 *   backend's clock; negative values count as 0
 * @success: whether it succeeded; [method@Bp.Backend.call_async] counts
 *   an error classified %BP_FAILURE_IGNORE (a client's bad argument) as a
 *   success
 *
 * Feeds the latency histogram exported as Backend.Latency, a histogram of
 * power-of-two buckets that covers the whole life of the backend.
 * [method@Bp.Backend.call_async] records each call itself; call this for
 * operations that do not go through it. Main context only.
 */
void
bp_backend_record_latency (BpBackend *self,
                           gint64     duration_us,
                           gboolean   success)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);
  guint bucket;

  g_return_if_fail (BP_IS_BACKEND (self));

  duration_us = MAX (duration_us, 0);
  bucket = duration_us <= 1 ? 0 : (guint) g_bit_storage ((gulong) duration_us) - 1;
  bucket = MIN (bucket, N_LATENCY_BUCKETS - 1);
  priv->latency_buckets[bucket]++;
  priv->latency_count++;
  if (!success)
    priv->latency_errors++;
  priv->latency_max_us = MAX (priv->latency_max_us, duration_us);
}

static gint64
latency_percentile (BpBackendPrivate *priv,
                    double            p)
{
  guint64 rank, seen = 0;

  if (priv->latency_count == 0)
    return 0;
  rank = (guint64) (p * (double) priv->latency_count);
  for (guint i = 0; i < N_LATENCY_BUCKETS; i++)
    {
      seen += priv->latency_buckets[i];
      if (seen > rank)
        return MIN ((gint64) 1 << (i + 1), priv->latency_max_us); /* bucket upper bound */
    }
  return priv->latency_max_us;
}

/**
 * bp_backend_dup_latency:
 * @self: a #BpBackend
 *
 * Summarizes what [method@Bp.Backend.record_latency] recorded since the
 * backend was created, as shown in Backend.Latency: `count` t, `errors` t,
 * `p50-us` x, `p90-us` x, `p99-us` x and `max-us` x. A percentile is the
 * upper bound of its power-of-two bucket, at most `max-us`; all are 0
 * before the first operation.
 *
 * Returns: (transfer full): a new, non-floating `a{sv}` #GVariant
 */
GVariant *
bp_backend_dup_latency (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);
  GVariantBuilder b;

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "count", g_variant_new_uint64 (priv->latency_count));
  g_variant_builder_add (&b, "{sv}", "errors", g_variant_new_uint64 (priv->latency_errors));
  g_variant_builder_add (&b, "{sv}", "p50-us", g_variant_new_int64 (latency_percentile (priv, 0.50)));
  g_variant_builder_add (&b, "{sv}", "p90-us", g_variant_new_int64 (latency_percentile (priv, 0.90)));
  g_variant_builder_add (&b, "{sv}", "p99-us", g_variant_new_int64 (latency_percentile (priv, 0.99)));
  g_variant_builder_add (&b, "{sv}", "max-us", g_variant_new_int64 (priv->latency_max_us));
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

/**
 * bp_backend_get_breaker:
 * @self: a #BpBackend
 *
 * Gets the backend's circuit breaker. [method@Bp.Backend.call_async] and
 * dead-letter replays go through it; use it directly
 * ([method@Bp.Breaker.call_async], [method@Bp.Breaker.try_acquire]) for
 * work that does not fit a [struct@Bp.Operation]. It is named after the
 * backend, classifies with [vfunc@Bp.Backend.classify_error] and is
 * configured from the `breaker.*` keys by [method@Bp.Backend.configure].
 *
 * Returns: (transfer none): the backend's circuit breaker, configured from
 *   the `breaker.*` keys
 */
BpBreaker *
bp_backend_get_breaker (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return priv->breaker;
}

/**
 * bp_backend_dup_breaker_stats:
 * @self: a #BpBackend
 *
 * Takes a snapshot of the breaker's state and counters, as
 * bp_breaker_dup_stats() describes them.
 *
 * Returns: (transfer full): the `a{sv}` shown as Backend.Breaker, a new,
 *   non-floating #GVariant
 */
GVariant *
bp_backend_dup_breaker_stats (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return bp_breaker_dup_stats (priv->breaker);
}

/**
 * bp_backend_reset_breaker:
 * @self: a #BpBackend
 *
 * Closes the breaker and clears its window (Backend.ResetBreaker): mode
 * normal, state closed, base open duration, zeroed counters. See
 * [method@Bp.Breaker.reset]. It does not change the backend's
 * [property@Bp.Backend:state].
 */
void
bp_backend_reset_breaker (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_if_fail (BP_IS_BACKEND (self));
  bp_breaker_reset (priv->breaker);
}

/**
 * bp_backend_get_retry:
 * @self: a #BpBackend
 *
 * Gets the backend's retry policy, which [method@Bp.Backend.call_async]
 * uses. It classifies with [vfunc@Bp.Backend.classify_error], is
 * configured from the `retry.*` keys by [method@Bp.Backend.configure] and
 * has a [struct@Bp.RetryBudget] that all of the backend's calls and
 * dead-letter replays share.
 *
 * Returns: (transfer none): the backend's retry policy (`retry.*` keys),
 *   sharing one retry budget across all of the backend's calls
 */
BpRetry *
bp_backend_get_retry (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return priv->retry;
}

/**
 * bp_backend_classify_error:
 * @self: a #BpBackend
 * @error: an error an operation of this backend failed with
 *
 * Classifies @error with [vfunc@Bp.Backend.classify_error], as the
 * backend's breaker and retry policy do.
 *
 * Returns: how the breaker and retry treat @error
 */
BpFailureKind
bp_backend_classify_error (BpBackend    *self,
                           const GError *error)
{
  g_return_val_if_fail (BP_IS_BACKEND (self), BP_FAILURE_FATAL);
  return BP_BACKEND_GET_CLASS (self)->classify_error (self, error);
}

/* bp_backend_call_async(): the retry policy around the breaker, fused in
 * bp_retry_run_with_breaker_async(), so every attempt is admitted by the
 * breaker and a CIRCUIT_OPEN rejection is retried only when its retry-after
 * fits the deadline. */
typedef struct
{
  BpBackend      *backend;   /* (owned) */
  BpOperation     op;        /* op_data belongs to the run: a timed-out
                              * attempt's late result may come after this
                              * call is over, and still needs it */
  gint64          started_us;
} CallData;

static void
call_data_free (CallData *data)
{
  g_clear_object (&data->backend);
  g_free (data);
}

static void
backend_call_done_cb (GObject      *source,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  CallData *data = g_task_get_task_data (task);
  BpBackendPrivate *priv = bp_backend_get_instance_private (data->backend);
  g_autoptr(GError) error = NULL;
  gpointer value = NULL;
  guint attempts = 0;
  gboolean ok;

  ok = bp_retry_run_finish (priv->retry, result, &value, &attempts, &error);
  bp_backend_record_latency (data->backend, bp_clock_get_time (priv->clock) - data->started_us,
                             ok || (error != NULL && bp_backend_classify_error (data->backend, error) == BP_FAILURE_IGNORE));
  g_object_set_data (G_OBJECT (task), "bp-attempts", GUINT_TO_POINTER (attempts));
  if (!ok)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, value, data->op.free_result);
}

/**
 * bp_backend_call_async:
 * @self: a #BpBackend
 * @op: the operation (copied)
 * @op_data: (nullable): passed to @op's functions at every attempt
 * @op_data_destroy: (nullable): frees @op_data when the call is over and
 *   the late result of a timed-out attempt, if any, has come
 * @idempotency: what @op declares; only %BP_IDEMPOTENCY_IDEMPOTENT and
 *   %BP_IDEMPOTENCY_KEYED operations are retried
 * @cancellable: (nullable): usually bp_call_get_cancellable(); cancels the
 *   call, including a sleep between attempts, and is passed to every
 *   attempt
 * @callback: (scope async): called when the call is over, in the
 *   thread-default main context of the caller (the main context)
 * @user_data: data for @callback
 *
 * Runs @op with the backend's resilience: the retry policy and the circuit
 * breaker, fused ([method@Bp.Retry.run_with_breaker_async]). Every attempt
 * is admitted by the breaker ([method@Bp.Backend.get_breaker]) and its
 * outcome recorded there, classified by
 * [vfunc@Bp.Backend.classify_error]; the breaker's `timeout-ms` applies to
 * each attempt. A failed attempt is retried as the `retry.*` keys allow
 * ([method@Bp.Backend.get_retry]): not if it is fatal, ignored or
 * cancelled, not for an unsafe operation, within max-attempts and the
 * deadline, after a jittered backoff (at least the error's retry-after),
 * and only while the shared retry budget lasts. A breaker rejection is
 * retried only if its retry-after fits the deadline (`retry.cap-ms`
 * without one); a forced-open breaker is not retried. The call's latency
 * and outcome go to Backend.Latency.
 *
 * Finish with [method@Bp.Backend.call_finish], which also tells how many
 * attempts were made, for [method@Bp.Backend.dead_letter_async].
 */
void
bp_backend_call_async (BpBackend           *self,
                       const BpOperation   *op,
                       gpointer             op_data,
                       GDestroyNotify       op_data_destroy,
                       BpIdempotency        idempotency,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);
  GTask *task;
  CallData *data;

  g_return_if_fail (BP_IS_BACKEND (self));
  g_return_if_fail (op != NULL);

  data = g_new0 (CallData, 1);
  data->backend = g_object_ref (self);
  data->op = *op;
  data->started_us = bp_clock_get_time (priv->clock);
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_backend_call_async);
  g_task_set_task_data (task, data, (GDestroyNotify) call_data_free);
  bp_retry_run_with_breaker_async (priv->retry, priv->breaker, op, op_data, op_data_destroy,
                                   idempotency, cancellable, backend_call_done_cb, task);
}

/**
 * bp_backend_call_finish:
 * @self: a #BpBackend
 * @result: the result
 * @out_result: (out) (optional) (transfer full) (nullable): the
 *   operation's result, to free with @op's `free_result`; if not
 *   requested it is freed that way
 * @out_attempts: (out) (optional): attempts made, also on failure (for the
 *   dead-letter queue); 0 if the call was cancelled before its first
 *   attempt
 * @error: return location for a #GError
 *
 * Finishes a call started with [method@Bp.Backend.call_async].
 *
 * On failure @error is the error of the last attempt, unchanged (the
 * operation's own domain, so classify it or pass it through
 * [func@Bp.error_normalize]); %BP_ERROR_CIRCUIT_OPEN with a
 * `(retry-after-ms=N)` when the breaker refused the last attempt;
 * %BP_ERROR_TIMEOUT when it exceeded the breaker's `timeout-ms`;
 * %G_IO_ERROR_CANCELLED when @cancellable was cancelled.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_backend_call_finish (BpBackend     *self,
                        GAsyncResult  *result,
                        gpointer      *out_result,
                        guint         *out_attempts,
                        GError       **error)
{
  GTask *task = G_TASK (result);
  gpointer value;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  if (out_attempts != NULL)
    *out_attempts = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (task), "bp-attempts"));
  if (g_task_had_error (task))
    {
      g_task_propagate_pointer (task, error);
      return FALSE;
    }
  value = g_task_propagate_pointer (task, error);
  if (out_result != NULL)
    *out_result = value;
  else if (value != NULL && ((CallData *) g_task_get_task_data (task))->op.free_result != NULL)
    ((CallData *) g_task_get_task_data (task))->op.free_result (value);
  return TRUE;
}

/* Dead letters ------------------------------------------------------------ */

static void
dead_letter_enqueued_cb (GObject      *source,
                         GAsyncResult *result,
                         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  gboolean added = FALSE;
  guint64 id;

  id = bp_dead_letters_enqueue_finish (BP_DEAD_LETTERS (source), result, &added, &error);
  if (id == 0 && error != NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_return_pointer (task, g_memdup2 (&id, sizeof id), g_free);
}

/**
 * bp_backend_dead_letter_async:
 * @self: a #BpBackend
 * @operation: what to replay, e.g. `Sql.Execute`; 1 to 256 bytes of UTF-8
 * @payload: everything the replay needs (floating references are sunk);
 *   at most the store's max-payload-size bytes serialized
 * @idempotency_key: deduplicates: one entry per backend and key, so a
 *   repeated enqueue returns the existing entry; 1 to 1024 bytes of UTF-8
 *   (%NULL or empty fails with %BP_ERROR_INVALID_ARGUMENT)
 * @last_error: (nullable): why the operation failed; its message is kept
 *   as the entry's last error and its retry-after, if any, delays the
 *   first replay
 * @attempts: attempts made so far, usually from
 *   [method@Bp.Backend.call_finish]
 * @cancellable: (nullable): cancels before the write starts; once started,
 *   the write completes
 * @callback: (scope async): called on the main context when the entry is
 *   durable (committed to disk), or on failure
 * @user_data: data for @callback
 *
 * Stores a failed idempotent (or keyed) operation in the daemon's
 * persistent dead-letter queue ([class@Bp.DeadLetters]). The queue
 * replays it later, after a backoff, through this backend's
 * [vfunc@Bp.Backend.replay_async], admitted by the breaker and paid for
 * from the retry budget, until it succeeds or is poisoned after repeated
 * failures. It survives daemon restarts. Do not dead-letter an operation
 * that is not safe to apply twice.
 *
 * Fails with %BP_ERROR_UNAVAILABLE when the daemon's store is not open (or
 * the backend has no host), %BP_ERROR_INVALID_ARGUMENT for an empty,
 * oversized or invalid @operation or @idempotency_key, and
 * %BP_ERROR_LIMIT_EXCEEDED when the payload is too large or the queue
 * holds max-entries. Finish with [method@Bp.Backend.dead_letter_finish].
 */
void
bp_backend_dead_letter_async (BpBackend           *self,
                              const char          *operation,
                              GVariant            *payload,
                              const char          *idempotency_key,
                              const GError        *last_error,
                              guint                attempts,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  BpBackendPrivate *priv;
  BpDeadLetters *dl;
  g_autoptr(GVariant) owned = NULL;
  GTask *task;
  gint64 retry_after_ms = last_error != NULL ? bp_error_get_retry_after (last_error) : -1;
  gint64 not_before = 0;

  g_return_if_fail (BP_IS_BACKEND (self));
  g_return_if_fail (operation != NULL);
  g_return_if_fail (payload != NULL);

  priv = bp_backend_get_instance_private (self);
  dl = priv->host != NULL ? bp_host_get_dead_letters (priv->host) : NULL;
  owned = g_variant_ref_sink (payload);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_backend_dead_letter_async);
  if (dl == NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, _("the dead-letter store is not open"));
      g_object_unref (task);
      return;
    }
  if (retry_after_ms > 0)
    not_before = bp_dead_letters_get_now_unix (dl) + retry_after_ms * 1000;
  bp_dead_letters_enqueue_async (dl, priv->name, operation, owned, idempotency_key, last_error, attempts,
                                 not_before, cancellable, dead_letter_enqueued_cb, task);
}

/**
 * bp_backend_dead_letter_finish:
 * @self: a #BpBackend
 * @result: the result
 * @out_id: (out) (optional): the entry id, never 0 (an existing one when
 *   the idempotency key was already queued)
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.Backend.dead_letter_async].
 *
 * Returns: %TRUE when the operation is stored durably
 */
gboolean
bp_backend_dead_letter_finish (BpBackend     *self,
                               GAsyncResult  *result,
                               guint64       *out_id,
                               GError       **error)
{
  g_autofree guint64 *id = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  id = g_task_propagate_pointer (G_TASK (result), error);
  if (id == NULL)
    return FALSE;
  if (out_id != NULL)
    *out_id = *id;
  return TRUE;
}

typedef struct
{
  BpBackend *backend;   /* (owned) */
  char      *operation;
  GVariant  *payload;
  char      *key;
} ReplayData;

static void
replay_data_free (ReplayData *data)
{
  g_clear_object (&data->backend);
  g_free (data->operation);
  g_clear_pointer (&data->payload, g_variant_unref);
  g_free (data->key);
  g_free (data);
}

static void
replay_op_start (gpointer             op_data,
                 GCancellable        *cancellable,
                 GAsyncReadyCallback  callback,
                 gpointer             callback_data)
{
  ReplayData *data = op_data;

  BP_BACKEND_GET_CLASS (data->backend)->replay_async (data->backend, data->operation, data->payload,
                                                      data->key, cancellable, callback, callback_data);
}

static gboolean
replay_op_finish (gpointer       op_data,
                  GAsyncResult  *result,
                  gpointer      *out_result,
                  GError       **error)
{
  ReplayData *data = op_data;

  return BP_BACKEND_GET_CLASS (data->backend)->replay_finish (data->backend, result, error);
}

static void
replay_done_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (!bp_breaker_call_finish (BP_BREAKER (source), result, NULL, NULL, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/* The BpDeadLetters handler of this backend: one replay, admitted by the
 * breaker and paid for from the retry budget. Without budget the entry is
 * rescheduled as if the breaker were open, which BpDeadLetters does not count
 * as an attempt. Runs on the main context. */
static void
replay_dead_letter (BpDeadLetters *dl,
                    const char    *backend,
                    const char    *operation,
                    GVariant      *payload,
                    const char    *idempotency_key,
                    GCancellable  *cancellable,
                    GTask         *task,
                    gpointer       user_data)
{
  BpBackend *self = user_data;
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);
  static const BpOperation replay_op = { replay_op_start, replay_op_finish, NULL };
  g_autoptr(BpRetryBudget) budget = bp_retry_dup_budget (priv->retry);
  ReplayData *data;

  if (budget != NULL && !bp_retry_budget_try_withdraw (budget))
    {
      GError *error = g_error_new (BP_ERROR, BP_ERROR_CIRCUIT_OPEN,
                                   _("retry budget of backend %s exhausted"), priv->name);
      bp_error_set_retry_after (&error, 1000);
      g_task_return_error (task, error);
      return;
    }
  data = g_new0 (ReplayData, 1);
  data->backend = g_object_ref (self);
  data->operation = g_strdup (operation);
  data->payload = payload != NULL ? g_variant_ref (payload) : NULL;
  data->key = g_strdup (idempotency_key);
  bp_breaker_call_async (priv->breaker, &replay_op, data, (GDestroyNotify) replay_data_free, NULL,
                         cancellable, replay_done_cb, g_object_ref (task));
}

/**
 * bp_backend_attach_dead_letters:
 * @self: a #BpBackend
 * @dead_letters: the daemon's store
 *
 * Makes @dead_letters replay this backend's entries (those whose backend
 * name is [property@Bp.Backend:name]) through it: each replay is admitted
 * by the backend's breaker and withdraws from its retry budget, then calls
 * [vfunc@Bp.Backend.replay_async] once. With the budget empty or the
 * breaker open, the entry is rescheduled without counting an attempt.
 * Replaces any handler for the same name and keeps a reference on @self
 * until detached. The daemon calls this before the backend starts (or
 * when the store opens); a plugin does not.
 */
void
bp_backend_attach_dead_letters (BpBackend     *self,
                                BpDeadLetters *dead_letters)
{
  g_return_if_fail (BP_IS_BACKEND (self));
  g_return_if_fail (BP_IS_DEAD_LETTERS (dead_letters));

  bp_dead_letters_set_handler (dead_letters, bp_backend_get_name (self), replay_dead_letter,
                               g_object_ref (self), g_object_unref);
}

/**
 * bp_backend_detach_dead_letters:
 * @self: a #BpBackend
 * @dead_letters: the daemon's store
 *
 * Stops replays into this backend; its entries stay queued for the next
 * backend of the same name. Replays in flight complete. The daemon calls
 * this before it stops the backend.
 */
void
bp_backend_detach_dead_letters (BpBackend     *self,
                                BpDeadLetters *dead_letters)
{
  g_return_if_fail (BP_IS_BACKEND (self));
  g_return_if_fail (BP_IS_DEAD_LETTERS (dead_letters));

  bp_dead_letters_set_handler (dead_letters, bp_backend_get_name (self), NULL, NULL, NULL);
}

/**
 * bp_backend_dup_pool_stats:
 * @self: a #BpBackend
 *
 * Gets the pool statistics from [vfunc@Bp.Backend.dup_pool_stats],
 * usually those of bp_pool_dup_stats(); empty for a backend without a
 * pool.
 *
 * Returns: (transfer full): the `a{sv}` shown as Backend.Pool
 */
GVariant *
bp_backend_dup_pool_stats (BpBackend *self)
{
  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return BP_BACKEND_GET_CLASS (self)->dup_pool_stats (self);
}

/* retry.jitter, in the order of BpBackendResilienceConfig.retry_jitter */
static const char * const jitter_names[] = { "full", "equal", "decorrelated", "none", NULL };
static const BpJitter jitter_values[] = { BP_JITTER_FULL, BP_JITTER_EQUAL, BP_JITTER_DECORRELATED, BP_JITTER_NONE };
G_STATIC_ASSERT (G_N_ELEMENTS (jitter_names) == G_N_ELEMENTS (jitter_values) + 1);
static const char * const inline_secret_keys[] = { "password", "api-key", "token" };

static gboolean
read_common_keys (BpBackend        *self,
                  BpConfigSection  *s,
                  GError          **error)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);
  BpBackendPoolConfig *p = &priv->pool_config;
  BpBackendResilienceConfig *r = &priv->resilience;
  gboolean enabled;
  const guint64 day_ms = 24 * 3600 * 1000;

  /* type= and enabled= are the daemon's, but they belong to the group. */
  bp_config_section_has_key (s, "type");
  for (guint i = 0; i < G_N_ELEMENTS (inline_secret_keys); i++)
    if (bp_config_section_has_key (s, inline_secret_keys[i]))
      {
        g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                     _("[%s] %s: secrets may not be written in the configuration; use %s-file= or %s-env="),
                     bp_config_section_get_group (s), inline_secret_keys[i],
                     inline_secret_keys[i], inline_secret_keys[i]);
        return FALSE;
      }
  if (!bp_config_section_get_boolean (s, "enabled", TRUE, &enabled, error))
    return FALSE;

  return bp_config_section_get_uint (s, "breaker.error-threshold", 50, 1, 100, &r->breaker_error_threshold, error) &&
         bp_config_section_get_uint (s, "breaker.min-volume", 10, 1, 1000000, &r->breaker_min_volume, error) &&
         bp_config_section_get_uint (s, "breaker.open-ms", 30000, 1, day_ms, &r->breaker_open_ms, error) &&
         bp_config_section_get_uint (s, "breaker.half-open-permits", 3, 1, 1000, &r->breaker_half_open_permits, error) &&
         bp_config_section_get_uint (s, "breaker.timeout-ms", 0, 0, day_ms, &r->breaker_timeout_ms, error) &&
         bp_config_section_get_uint (s, "retry.max-attempts", 3, 1, 100, &r->retry_max_attempts, error) &&
         bp_config_section_get_uint (s, "retry.base-ms", 100, 1, day_ms, &r->retry_base_ms, error) &&
         bp_config_section_get_uint (s, "retry.cap-ms", 10000, 1, day_ms, &r->retry_cap_ms, error) &&
         bp_config_section_get_double (s, "retry.multiplier", 2.0, 1.0, 10.0, &r->retry_multiplier, error) &&
         bp_config_section_get_choice (s, "retry.jitter", jitter_names, 0, &r->retry_jitter, error) &&
         bp_config_section_get_uint (s, "retry.deadline-ms", 0, 0, day_ms, &r->retry_deadline_ms, error) &&
         bp_config_section_get_uint (s, "pool.min", 0, 0, 10000, &p->min, error) &&
         bp_config_section_get_uint (s, "pool.max", 10, 1, 10000, &p->max, error) &&
         bp_config_section_get_uint (s, "pool.acquire-timeout-ms", 5000, 1, day_ms, &p->acquire_timeout_ms, error) &&
         bp_config_section_get_uint (s, "pool.idle-timeout-ms", 30000, 0, day_ms, &p->idle_timeout_ms, error) &&
         bp_config_section_get_uint (s, "pool.max-lifetime-ms", 1800000, 0, 30 * day_ms, &p->max_lifetime_ms, error) &&
         bp_config_section_get_uint (s, "pool.max-uses", 0, 0, G_MAXUINT32, &p->max_uses, error);
}

/**
 * bp_backend_configure:
 * @self: a #BpBackend
 * @section: the backend's group
 * @error: return location for a #GError
 *
 * Reads the keys common to every backend (`type`, `enabled`, and the
 * `breaker.*`, `retry.*` and `pool.*` keys of
 * [struct@Bp.BackendResilienceConfig] and [struct@Bp.BackendPoolConfig]),
 * then the subclass's own with [vfunc@Bp.Backend.configure], then fails on
 * any key nobody read. On success it applies the common keys to the
 * backend's breaker and retry policy. The daemon calls it once, before
 * start; tests call it directly.
 *
 * Errors are %BP_ERROR_INVALID_ARGUMENT naming the group and the key: a
 * value out of range or of the wrong type, an inline `password=`,
 * `api-key=` or `token=` (secrets go in `KEY-file=` or `KEY-env=`),
 * `pool.min` above `pool.max`, `retry.base-ms` above `retry.cap-ms`, or an
 * unknown key; the subclass's errors are passed on.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_backend_configure (BpBackend        *self,
                      BpConfigSection  *section,
                      GError          **error)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), FALSE);
  g_return_val_if_fail (BP_IS_CONFIG_SECTION (section), FALSE);

  if (!read_common_keys (self, section, error))
    return FALSE;
  if (priv->pool_config.min > priv->pool_config.max)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("[%s] pool.min (%llu) exceeds pool.max (%llu)"),
                   bp_config_section_get_group (section), (unsigned long long) priv->pool_config.min,
                   (unsigned long long) priv->pool_config.max);
      return FALSE;
    }
  if (priv->resilience.retry_base_ms > priv->resilience.retry_cap_ms)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("[%s] retry.base-ms exceeds retry.cap-ms"),
                   bp_config_section_get_group (section));
      return FALSE;
    }
  if (!BP_BACKEND_GET_CLASS (self)->configure (self, section, error))
    return FALSE;
  if (!bp_config_section_check_unused (section, error))
    return FALSE;
  g_object_set (priv->breaker,
                "error-threshold-percent", (guint) priv->resilience.breaker_error_threshold,
                "min-volume", (guint) priv->resilience.breaker_min_volume,
                "open-ms", (guint) priv->resilience.breaker_open_ms,
                "half-open-permits", (guint) priv->resilience.breaker_half_open_permits,
                "timeout-ms", (guint) priv->resilience.breaker_timeout_ms,
                NULL);
  g_object_set (priv->retry,
                "max-attempts", (guint) priv->resilience.retry_max_attempts,
                "base-ms", (guint) priv->resilience.retry_base_ms,
                "cap-ms", (guint) priv->resilience.retry_cap_ms,
                "multiplier", priv->resilience.retry_multiplier,
                "jitter", jitter_values[priv->resilience.retry_jitter],
                "deadline-ms", (guint) priv->resilience.retry_deadline_ms,
                NULL);
  return TRUE;
}

/**
 * bp_backend_start_async:
 * @self: a #BpBackend
 * @cancellable: (nullable): cancels the start, e.g. when the backend is
 *   removed before it has started
 * @callback: (scope async): called on the main context when the start is
 *   over
 * @user_data: data for @callback
 *
 * Starts the backend with [vfunc@Bp.Backend.start_async]: connect,
 * pre-create pools, start background work. It does not change the state;
 * the daemon sets `ready` or `unavailable` from the outcome. Call it once,
 * after [method@Bp.Backend.configure]. Finish with
 * [method@Bp.Backend.start_finish].
 */
void
bp_backend_start_async (BpBackend           *self,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_return_if_fail (BP_IS_BACKEND (self));
  BP_BACKEND_GET_CLASS (self)->start_async (self, cancellable, callback, user_data);
}

/**
 * bp_backend_start_finish:
 * @self: a #BpBackend
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.Backend.start_async] with
 * [vfunc@Bp.Backend.start_finish].
 *
 * Returns: %TRUE if the backend started; %FALSE with @error set (its
 *   message becomes the StateReason), or %G_IO_ERROR_CANCELLED when it was
 *   cancelled
 */
gboolean
bp_backend_start_finish (BpBackend     *self,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (BP_IS_BACKEND (self), FALSE);
  return BP_BACKEND_GET_CLASS (self)->start_finish (self, result, error);
}

/**
 * bp_backend_stop_async:
 * @self: a #BpBackend
 * @cancellable: (nullable): a #GCancellable; the daemon passes %NULL, so a
 *   stop always runs to its end
 * @callback: (scope async): called on the main context when the backend
 *   has stopped
 * @user_data: data for @callback
 *
 * Sets the state to `stopping` and stops the backend with
 * [vfunc@Bp.Backend.stop_async]: cancel in-flight work, roll back, close
 * pools. Valid whether or not the start succeeded. Finish with
 * [method@Bp.Backend.stop_finish].
 */
void
bp_backend_stop_async (BpBackend           *self,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_return_if_fail (BP_IS_BACKEND (self));
  bp_backend_set_state (self, BP_BACKEND_STATE_STOPPING, NULL);
  BP_BACKEND_GET_CLASS (self)->stop_async (self, cancellable, callback, user_data);
}

/**
 * bp_backend_stop_finish:
 * @self: a #BpBackend
 * @result: the #GAsyncResult given to the callback
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.Backend.stop_async] with
 * [vfunc@Bp.Backend.stop_finish]. The daemon logs a failure and drops the
 * backend anyway.
 *
 * Returns: %TRUE if the backend stopped cleanly
 */
gboolean
bp_backend_stop_finish (BpBackend     *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (BP_IS_BACKEND (self), FALSE);
  return BP_BACKEND_GET_CLASS (self)->stop_finish (self, result, error);
}

/**
 * bp_backend_check_health_async:
 * @self: a #BpBackend
 * @cancellable: (nullable): usually bp_call_get_cancellable(), cancelled
 *   when the caller leaves the bus
 * @callback: (scope async): called on the main context with the outcome
 * @user_data: data for @callback
 *
 * Checks with real I/O that the backend works (Backend.CheckHealth), with
 * [vfunc@Bp.Backend.check_health_async]. It does not change the state.
 * Finish with [method@Bp.Backend.check_health_finish].
 */
void
bp_backend_check_health_async (BpBackend           *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_return_if_fail (BP_IS_BACKEND (self));
  BP_BACKEND_GET_CLASS (self)->check_health_async (self, cancellable, callback, user_data);
}

/**
 * bp_backend_check_health_finish:
 * @self: a #BpBackend
 * @result: the result
 * @detail: (out) (optional) (transfer full): what was checked, for humans;
 *   set only when healthy
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.Backend.check_health_async] with
 * [vfunc@Bp.Backend.check_health_finish]. CheckHealth answers
 * `(healthy, detail)`, with the error message as detail when unhealthy.
 *
 * Returns: %TRUE when healthy; %FALSE with @error set otherwise
 */
gboolean
bp_backend_check_health_finish (BpBackend     *self,
                                GAsyncResult  *result,
                                char         **detail,
                                GError       **error)
{
  g_return_val_if_fail (BP_IS_BACKEND (self), FALSE);
  return BP_BACKEND_GET_CLASS (self)->check_health_finish (self, result, detail, error);
}
