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
 * Returns: (transfer none): the name used on D-Bus (`ready`, …)
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

  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_TYPE_NAME] =
    g_param_spec_string ("type-name", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_HOST] =
    g_param_spec_object ("host", NULL, NULL, BP_TYPE_HOST,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_CLOCK] =
    g_param_spec_object ("clock", NULL, NULL, BP_TYPE_CLOCK,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  properties[PROP_STATE] =
    g_param_spec_enum ("state", NULL, NULL, BP_TYPE_BACKEND_STATE, BP_BACKEND_STATE_STARTING,
                       G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
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

const char *
bp_backend_get_name (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return priv->name;
}

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
 * Returns: (transfer none) (nullable): the daemon services: the bus
 *   connection, caller tracking, per-client objects
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
 * Returns: (transfer none): the clock every timer of this backend uses
 */
BpClock *
bp_backend_get_clock (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return priv->clock;
}

BpBackendState
bp_backend_get_state (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), BP_BACKEND_STATE_UNAVAILABLE);
  return priv->state;
}

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
 *   contain secrets
 *
 * Subclasses call this as their server goes away and comes back.
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

const BpBackendPoolConfig *
bp_backend_get_pool_config (BpBackend *self)
{
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);

  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return &priv->pool_config;
}

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
 * @skeleton: (transfer none): a D-Bus interface skeleton
 *
 * Adds a typed interface (`.Sql`, `.Graph`, …) that the daemon exports at
 * the backend's object path next to the common Backend interface. Call it
 * from init, configure or start.
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
 * Returns: (transfer none) (element-type GDBusInterfaceSkeleton): the typed
 *   interfaces
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
 * @duration_us: how long one operation took
 * @success: whether it succeeded
 *
 * Feeds the latency histogram exported as Backend.Latency.
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
 * Returns: (transfer full): `a{sv}` with count, errors, p50-us, p90-us,
 *   p99-us, max-us (percentiles are upper bounds of power-of-two buckets)
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
 * Returns: (transfer full): the `a{sv}` shown as Backend.Breaker
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
 * Closes the breaker and clears its window (Backend.ResetBreaker).
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
  BpOperation     op;
  gpointer        op_data;
  GDestroyNotify  op_data_destroy;
  gint64          started_us;
} CallData;

static void
call_data_free (CallData *data)
{
  if (data->op_data_destroy != NULL)
    data->op_data_destroy (data->op_data);
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
 * @op_data: its data
 * @op_data_destroy: (nullable): frees @op_data when the call is over
 * @idempotency: whether the operation may be retried
 * @cancellable: (nullable): usually bp_call_get_cancellable()
 * @callback: called on the main context when done
 * @user_data: data for @callback
 *
 * Runs @op through the backend's retry policy and circuit breaker and
 * records its latency. Use bp_backend_call_finish() for the result.
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
  data->op_data = op_data;
  data->op_data_destroy = op_data_destroy;
  data->started_us = bp_clock_get_time (priv->clock);
  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_backend_call_async);
  g_task_set_task_data (task, data, (GDestroyNotify) call_data_free);
  bp_retry_run_with_breaker_async (priv->retry, priv->breaker, &data->op, data->op_data, NULL,
                                   idempotency, cancellable, backend_call_done_cb, task);
}

/**
 * bp_backend_call_finish:
 * @self: a #BpBackend
 * @result: the result
 * @out_result: (out) (optional) (transfer full): the operation's result
 * @out_attempts: (out) (optional): attempts made, also on failure (for the
 *   dead-letter queue)
 * @error: return location for a #GError
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
 * @operation: what to replay, e.g. `Sql.Execute`
 * @payload: everything the replay needs (floating references are sunk)
 * @idempotency_key: (nullable): deduplicates: the same key is stored once
 * @last_error: why the operation failed; its retry-after, if any, delays the
 *   first replay
 * @attempts: attempts made so far
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the entry id
 * @user_data: data for @callback
 *
 * Stores a failed idempotent operation in the daemon's dead-letter queue,
 * from where it is replayed through this backend's replay_async().
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
  BpBackendPrivate *priv = bp_backend_get_instance_private (self);
  BpDeadLetters *dl = priv->host != NULL ? bp_host_get_dead_letters (priv->host) : NULL;
  g_autoptr(GVariant) owned = g_variant_ref_sink (payload);
  GTask *task;
  gint64 retry_after_ms = last_error != NULL ? bp_error_get_retry_after (last_error) : -1;
  gint64 not_before = 0;

  g_return_if_fail (BP_IS_BACKEND (self));
  g_return_if_fail (operation != NULL);

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
 * @out_id: (out) (optional): the entry id (an existing one when the
 *   idempotency key was already queued)
 * @error: return location for a #GError
 *
 * Returns: %TRUE when the operation is stored
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
 * Makes @dead_letters replay this backend's entries through it. The daemon
 * calls this when the backend starts.
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
 * Stops replays into this backend (its entries stay queued).
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
 * Returns: (transfer full): the `a{sv}` shown as Backend.Pool
 */
GVariant *
bp_backend_dup_pool_stats (BpBackend *self)
{
  g_return_val_if_fail (BP_IS_BACKEND (self), NULL);
  return BP_BACKEND_GET_CLASS (self)->dup_pool_stats (self);
}

static const char * const jitter_names[] = { "full", "equal", "decorrelated", NULL };
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
 * Reads the keys common to every backend, then the subclass's own, then
 * fails on any key nobody read.
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
                "jitter", BP_JITTER_FULL + priv->resilience.retry_jitter,
                "deadline-ms", (guint) priv->resilience.retry_deadline_ms,
                NULL);
  return TRUE;
}

void
bp_backend_start_async (BpBackend           *self,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_return_if_fail (BP_IS_BACKEND (self));
  BP_BACKEND_GET_CLASS (self)->start_async (self, cancellable, callback, user_data);
}

gboolean
bp_backend_start_finish (BpBackend     *self,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (BP_IS_BACKEND (self), FALSE);
  return BP_BACKEND_GET_CLASS (self)->start_finish (self, result, error);
}

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

gboolean
bp_backend_stop_finish (BpBackend     *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (BP_IS_BACKEND (self), FALSE);
  return BP_BACKEND_GET_CLASS (self)->stop_finish (self, result, error);
}

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
 * @detail: (out) (optional) (transfer full): what was checked
 * @error: return location for a #GError
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
