/* bp-breaker.c: circuit breaker with lazy rolling window, timeout and fallback
 *
 * The state machine (mode NORMAL):
 *
 *   CLOSED ──(volume ≥ min-volume and error rate or slow-call rate over the
 *             threshold, in the rolling window)──▶ OPEN
 *   OPEN ──(first call after the open duration; lazy, no timer)──▶ HALF_OPEN
 *   HALF_OPEN ──(half-open-permits probe successes)──▶ CLOSED
 *   HALF_OPEN ──(a probe fails or is slow, or no decision within
 *                half-open-max-wait-ms)──▶ OPEN, open duration ×2 up to
 *                open-max-ms; a close resets it to open-ms
 *
 * Every transition increments a generation number. A permit remembers the
 * generation it was admitted in; an outcome whose generation is no longer
 * current is "stale": it is counted in the totals but never changes the
 * state, the window or the half-open probe slots.
 *
 * The window is an array of buckets indexed by `clock time / bucket width`;
 * a bucket whose index is older than the window is cleared when it is next
 * touched, and sums skip such buckets, so rotation needs no timer. A breaker
 * arms a GSource only for a per-call timeout of bp_breaker_call_async(), and
 * destroys it when the call completes.
 *
 * Thread safety: the state is protected by a mutex; every function may be
 * called from any thread. Signals are emitted after the mutex is released, in
 * the thread whose call caused the transition, exactly once per transition.
 * Library code logs only at debug level.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-breaker-private.h"
#include "bp-epoch-private.h"

#include "bp-error.h"

G_DEFINE_ENUM_TYPE (BpBreakerState, bp_breaker_state,
  G_DEFINE_ENUM_VALUE (BP_BREAKER_CLOSED, "closed"),
  G_DEFINE_ENUM_VALUE (BP_BREAKER_OPEN, "open"),
  G_DEFINE_ENUM_VALUE (BP_BREAKER_HALF_OPEN, "half-open"))

G_DEFINE_ENUM_TYPE (BpBreakerMode, bp_breaker_mode,
  G_DEFINE_ENUM_VALUE (BP_BREAKER_MODE_NORMAL, "normal"),
  G_DEFINE_ENUM_VALUE (BP_BREAKER_MODE_DISABLED, "disabled"),
  G_DEFINE_ENUM_VALUE (BP_BREAKER_MODE_FORCED_OPEN, "forced-open"),
  G_DEFINE_ENUM_VALUE (BP_BREAKER_MODE_METRICS_ONLY, "metrics-only"))

G_DEFINE_ENUM_TYPE (BpBreakerOutcome, bp_breaker_outcome,
  G_DEFINE_ENUM_VALUE (BP_BREAKER_OUTCOME_SUCCESS, "success"),
  G_DEFINE_ENUM_VALUE (BP_BREAKER_OUTCOME_FAILURE, "failure"),
  G_DEFINE_ENUM_VALUE (BP_BREAKER_OUTCOME_TIMEOUT, "timeout"),
  G_DEFINE_ENUM_VALUE (BP_BREAKER_OUTCOME_IGNORED, "ignored"))

#define MAX_BUCKETS     60
#define MAX_DURATION_MS (24u * 3600u * 1000u)
#define EXPORT_VERSION  1u

/* Latency histogram: 4 bins per power of two (each at most 25 % wide), 0 µs .. 2^41 µs. */
#define HIST_BINS 160

typedef struct
{
  gint64  epoch;       /* the window index this bucket counts; -1: empty */
  guint32 calls;       /* successes + failures admitted in the current generation */
  guint32 failures;
  guint32 slow;
  guint32 latency[HIST_BINS];
} WindowBucket;

struct _BpBreaker
{
  GObject         parent_instance;

  char           *name;                 /* (owned) */
  BpClock        *clock;                /* (owned) */

  GMutex          mutex;                /* protects every field below */

  /* Configuration */
  guint           error_threshold_percent;
  gboolean        threshold_inclusive;
  guint           min_volume;
  guint           window_ms;
  guint           n_buckets;
  guint           slow_call_ms;         /* 0: no slow-call detection */
  guint           slow_call_percent;
  guint           open_ms;
  guint           open_max_ms;
  guint           half_open_permits;
  guint           half_open_max_wait_ms; /* 0: no hung-probe guard */
  guint           timeout_ms;           /* 0: no per-call timeout */
  BpBreakerMode   mode;
  BpClassifyFunc  classify;             /* (nullable) */
  gpointer        classify_data;
  GDestroyNotify  classify_destroy;

  /* State */
  BpBreakerState  state;
  guint64         generation;
  gint64          opened_at;            /* -1: never opened */
  gint64          open_until;           /* valid in OPEN; G_MAXINT64 if forced */
  gint64          open_duration_us;     /* the next/current open period */
  gint64          half_open_since;
  guint           half_open_admitted;   /* probe slots in use or succeeded */
  guint           half_open_successes;
  gboolean        would_open_latched;

  gsize           closed_generation;    /* atomic, written under the mutex:
                                         * generation + 1 while NORMAL and
                                         * CLOSED, else 0 (see admission) */
  WindowBucket   *buckets;              /* (owned) (array length=n_buckets) */
  BpEpoch         ring;                 /* bucket of a clock time */

  /* Totals since creation (or the last reset) */
  guint64         successes;
  guint64         failures;
  guint64         timeouts;
  guint64         slow;
  guint64         ignored;
  guint64         rejected;
  guint64         stale;
  guint64         fallbacks;
};

G_DEFINE_FINAL_TYPE (BpBreaker, bp_breaker, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_NAME,
  PROP_CLOCK,
  PROP_MODE,
  PROP_THRESHOLD_INCLUSIVE,
  /* guint properties, in the order of uint_props[] */
  PROP_ERROR_THRESHOLD_PERCENT,
  PROP_MIN_VOLUME,
  PROP_WINDOW_MS,
  PROP_N_BUCKETS,
  PROP_SLOW_CALL_MS,
  PROP_SLOW_CALL_PERCENT,
  PROP_OPEN_MS,
  PROP_OPEN_MAX_MS,
  PROP_HALF_OPEN_PERMITS,
  PROP_HALF_OPEN_MAX_WAIT_MS,
  PROP_TIMEOUT_MS,
  N_PROPS
};

#define FIRST_UINT_PROP PROP_ERROR_THRESHOLD_PERCENT

static const struct
{
  const char *name;
  guint       min;
  guint       max;
  guint       def;
  goffset     offset;
} uint_props[] = {
  { "error-threshold-percent", 1, 100, 50, G_STRUCT_OFFSET (BpBreaker, error_threshold_percent) },
  { "min-volume", 0, 1000000, 10, G_STRUCT_OFFSET (BpBreaker, min_volume) },
  { "window-ms", 10, MAX_DURATION_MS, 10000, G_STRUCT_OFFSET (BpBreaker, window_ms) },
  { "n-buckets", 1, MAX_BUCKETS, 10, G_STRUCT_OFFSET (BpBreaker, n_buckets) },
  { "slow-call-ms", 0, MAX_DURATION_MS, 0, G_STRUCT_OFFSET (BpBreaker, slow_call_ms) },
  { "slow-call-percent", 1, 100, 100, G_STRUCT_OFFSET (BpBreaker, slow_call_percent) },
  { "open-ms", 1, MAX_DURATION_MS, 30000, G_STRUCT_OFFSET (BpBreaker, open_ms) },
  { "open-max-ms", 1, MAX_DURATION_MS, 300000, G_STRUCT_OFFSET (BpBreaker, open_max_ms) },
  { "half-open-permits", 1, 1000, 3, G_STRUCT_OFFSET (BpBreaker, half_open_permits) },
  { "half-open-max-wait-ms", 0, MAX_DURATION_MS, 60000, G_STRUCT_OFFSET (BpBreaker, half_open_max_wait_ms) },
  { "timeout-ms", 0, MAX_DURATION_MS, 0, G_STRUCT_OFFSET (BpBreaker, timeout_ms) },
};

G_STATIC_ASSERT (G_N_ELEMENTS (uint_props) == N_PROPS - FIRST_UINT_PROP);

enum {
  STATE_CHANGED,
  WOULD_OPEN,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

/* Transitions and signals collected under the mutex, emitted after it. */
typedef struct
{
  guint n;
  struct
  {
    BpBreakerState old_state;
    BpBreakerState new_state;
  } t[4];
  gboolean would_open;
  gboolean mode_changed;
  gboolean hung_probe;
} Pending;

static const char *
state_nick (BpBreakerState state)
{
  switch (state)
    {
    case BP_BREAKER_CLOSED:
      return "closed";
    case BP_BREAKER_OPEN:
      return "open";
    case BP_BREAKER_HALF_OPEN:
      return "half-open";
    default:
      return "unknown";
    }
}

static const char *
mode_nick (BpBreakerMode mode)
{
  switch (mode)
    {
    case BP_BREAKER_MODE_NORMAL:
      return "normal";
    case BP_BREAKER_MODE_DISABLED:
      return "disabled";
    case BP_BREAKER_MODE_FORCED_OPEN:
      return "forced-open";
    case BP_BREAKER_MODE_METRICS_ONLY:
      return "metrics-only";
    default:
      return "unknown";
    }
}

static void
emit_pending (BpBreaker     *self,
              const Pending *pending)
{
  if (pending->hung_probe)
    g_debug ("breaker '%s': no half-open decision within half-open-max-wait-ms, reopening",
             self->name);

  if (pending->mode_changed)
    g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MODE]);

  for (guint i = 0; i < pending->n; i++)
    {
      g_debug ("breaker '%s': %s -> %s", self->name,
               state_nick (pending->t[i].old_state),
               state_nick (pending->t[i].new_state));
      g_signal_emit (self, signals[STATE_CHANGED], 0,
                     pending->t[i].old_state, pending->t[i].new_state);
    }

  if (pending->would_open)
    {
      g_debug ("breaker '%s': would open (metrics-only)", self->name);
      g_signal_emit (self, signals[WOULD_OPEN], 0);
    }
}

static guint
latency_bin (gint64 us)
{
  guint64 v = us < 0 ? 0 : (guint64) us;
  guint msb;
  guint bin;

  if (v < 4)
    return (guint) v;
  msb = 63 - __builtin_clzll (v);
  bin = 4 + (msb - 2) * 4 + (guint) ((v >> (msb - 2)) & 3);
  return MIN (bin, HIST_BINS - 1);
}

static gint64
latency_bin_upper (guint bin)
{
  guint msb;
  guint sub;

  if (bin < 4)
    return bin;
  msb = (bin - 4) / 4 + 2;
  sub = (bin - 4) % 4;
  return ((gint64) (5 + sub) << (msb - 2)) - 1;
}

/* The window ------------------------------------------------------------- */

static void
window_clear_locked (BpBreaker *self)
{
  for (guint i = 0; i < self->n_buckets; i++)
    self->buckets[i].epoch = -1;
}

static void
window_realloc_locked (BpBreaker *self)
{
  g_free (self->buckets);
  self->buckets = g_new0 (WindowBucket, self->n_buckets);
  bp_epoch_init (&self->ring, MAX (1, (gint64) self->window_ms * 1000 / self->n_buckets),
                 self->n_buckets);
  window_clear_locked (self);
}

static WindowBucket *
window_bucket_locked (BpBreaker *self,
                      gint64     now)
{
  guint slot;
  gint64 epoch = bp_epoch_at (&self->ring, now, &slot);
  WindowBucket *b = &self->buckets[slot];

  if (b->epoch != epoch)
    {
      memset (b, 0, sizeof *b);
      b->epoch = epoch;
    }
  return b;
}

static gboolean
window_bucket_live (BpBreaker          *self,
                    const WindowBucket *b,
                    gint64              epoch)
{
  return b->epoch >= 0 && b->epoch > epoch - (gint64) self->n_buckets && b->epoch <= epoch;
}

static void
window_sum_locked (BpBreaker *self,
                   gint64     now,
                   guint64   *calls,
                   guint64   *failures,
                   guint64   *slow)
{
  gint64 epoch = bp_epoch_at (&self->ring, now, NULL);

  *calls = *failures = *slow = 0;
  for (guint i = 0; i < self->n_buckets; i++)
    {
      const WindowBucket *b = &self->buckets[i];

      if (!window_bucket_live (self, b, epoch))
        continue;
      *calls += b->calls;
      *failures += b->failures;
      *slow += b->slow;
    }
}

static gboolean
rate_exceeded (guint64  count,
               guint64  volume,
               guint    percent,
               gboolean inclusive)
{
  if (count == 0)
    return FALSE;
  return inclusive ? count * 100 >= (guint64) percent * volume
                   : count * 100 > (guint64) percent * volume;
}

static gboolean
window_exceeded_locked (BpBreaker *self,
                        gint64     now)
{
  guint64 calls, failures, slow;

  window_sum_locked (self, now, &calls, &failures, &slow);
  if (calls == 0 || calls < self->min_volume)
    return FALSE;
  if (rate_exceeded (failures, calls, self->error_threshold_percent, self->threshold_inclusive))
    return TRUE;
  return self->slow_call_ms > 0 &&
         rate_exceeded (slow, calls, self->slow_call_percent, self->threshold_inclusive);
}

/* Transitions ------------------------------------------------------------ */

static gint64
open_max_us (BpBreaker *self)
{
  return (gint64) MAX (self->open_max_ms, self->open_ms) * 1000;
}

static void
transition_locked (BpBreaker      *self,
                   BpBreakerState  new_state,
                   gint64          now,
                   Pending        *pending)
{
  BpBreakerState old_state = self->state;

  self->generation++;
  self->state = new_state;
  self->half_open_admitted = 0;
  self->half_open_successes = 0;
  g_atomic_pointer_set (&self->closed_generation,
                        self->mode == BP_BREAKER_MODE_NORMAL && new_state == BP_BREAKER_CLOSED
                        ? (gsize) self->generation + 1 : 0);

  switch (new_state)
    {
    case BP_BREAKER_OPEN:
      self->opened_at = now;
      self->open_until = self->mode == BP_BREAKER_MODE_FORCED_OPEN
                         ? G_MAXINT64 : now + self->open_duration_us;
      break;
    case BP_BREAKER_HALF_OPEN:
      self->half_open_since = now;
      break;
    case BP_BREAKER_CLOSED:
    default:
      window_clear_locked (self);
      self->open_duration_us = (gint64) self->open_ms * 1000;
      self->would_open_latched = FALSE;
      break;
    }

  if (old_state != new_state)
    {
      g_assert (pending->n < G_N_ELEMENTS (pending->t));
      pending->t[pending->n].old_state = old_state;
      pending->t[pending->n].new_state = new_state;
      pending->n++;
    }
}

/* A half-open trial failed (a probe failed or hung): reopen for longer. */
static void
reopen_locked (BpBreaker *self,
               gint64     now,
               Pending   *pending)
{
  self->open_duration_us = MIN (self->open_duration_us * 2, open_max_us (self));
  transition_locked (self, BP_BREAKER_OPEN, now, pending);
}

/* Starts afresh in @mode: window cleared, open duration reset. */
static void
set_mode_locked (BpBreaker     *self,
                 BpBreakerMode  mode,
                 gint64         now,
                 Pending       *pending)
{
  if (self->mode != mode)
    pending->mode_changed = TRUE;
  self->mode = mode;
  self->open_duration_us = (gint64) self->open_ms * 1000;
  transition_locked (self,
                     mode == BP_BREAKER_MODE_FORCED_OPEN ? BP_BREAKER_OPEN : BP_BREAKER_CLOSED,
                     now, pending);
  window_clear_locked (self);
  self->would_open_latched = FALSE;
}

/* Rounds up so that a breaker that is still open never says 0 ms. */
static gint64
us_to_ms_ceil (gint64 us)
{
  return us <= 0 ? 0 : (us + 999) / 1000;
}

/* GObject ---------------------------------------------------------------- */

static void
bp_breaker_finalize (GObject *object)
{
  BpBreaker *self = BP_BREAKER (object);

  if (self->classify_destroy != NULL)
    self->classify_destroy (self->classify_data);
  g_clear_pointer (&self->buckets, g_free);
  g_clear_pointer (&self->name, g_free);
  g_clear_object (&self->clock);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (bp_breaker_parent_class)->finalize (object);
}

static void
bp_breaker_get_property (GObject    *object,
                         guint       prop_id,
                         GValue     *value,
                         GParamSpec *pspec)
{
  BpBreaker *self = BP_BREAKER (object);

  switch (prop_id)
    {
    case PROP_NAME:
      g_value_set_string (value, self->name);
      return;
    case PROP_CLOCK:
      g_value_set_object (value, self->clock);
      return;
    default:
      break;
    }

  g_mutex_lock (&self->mutex);
  if (prop_id == PROP_MODE)
    g_value_set_enum (value, self->mode);
  else if (prop_id == PROP_THRESHOLD_INCLUSIVE)
    g_value_set_boolean (value, self->threshold_inclusive);
  else if (prop_id >= FIRST_UINT_PROP && prop_id < N_PROPS)
    g_value_set_uint (value, G_STRUCT_MEMBER (guint, self, uint_props[prop_id - FIRST_UINT_PROP].offset));
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  g_mutex_unlock (&self->mutex);
}

static void
bp_breaker_set_property (GObject      *object,
                         guint         prop_id,
                         const GValue *value,
                         GParamSpec   *pspec)
{
  BpBreaker *self = BP_BREAKER (object);
  gboolean changed = FALSE;
  guint *field;

  switch (prop_id)
    {
    case PROP_NAME:
      g_assert (self->name == NULL);
      self->name = g_value_dup_string (value);
      if (self->name == NULL)
        self->name = g_strdup ("breaker");
      return;
    case PROP_CLOCK:
      g_assert (self->clock == NULL);
      self->clock = g_value_dup_object (value);
      if (self->clock == NULL)
        self->clock = g_object_ref (bp_clock_get_default ());
      return;
    case PROP_MODE:
      bp_breaker_set_mode (self, g_value_get_enum (value));
      return;
    default:
      break;
    }

  g_mutex_lock (&self->mutex);
  if (prop_id == PROP_THRESHOLD_INCLUSIVE)
    {
      changed = self->threshold_inclusive != g_value_get_boolean (value);
      self->threshold_inclusive = g_value_get_boolean (value);
    }
  else if (prop_id >= FIRST_UINT_PROP && prop_id < N_PROPS)
    {
      field = &G_STRUCT_MEMBER (guint, self, uint_props[prop_id - FIRST_UINT_PROP].offset);
      changed = *field != g_value_get_uint (value);
      /* atomic: admission reads timeout-ms without the mutex */
      g_atomic_int_set ((gint *) field, (gint) g_value_get_uint (value));
      if (changed && self->buckets != NULL && (prop_id == PROP_WINDOW_MS || prop_id == PROP_N_BUCKETS))
        window_realloc_locked (self);
      if (changed && (prop_id == PROP_OPEN_MS || prop_id == PROP_OPEN_MAX_MS) &&
          self->state == BP_BREAKER_CLOSED)
        self->open_duration_us = (gint64) self->open_ms * 1000;
      if (changed && prop_id == PROP_OPEN_MAX_MS)
        self->open_duration_us = MIN (self->open_duration_us, open_max_us (self));
    }
  else
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
  g_mutex_unlock (&self->mutex);

  if (changed)
    g_object_notify_by_pspec (object, pspec);
}

static void
bp_breaker_constructed (GObject *object)
{
  BpBreaker *self = BP_BREAKER (object);

  G_OBJECT_CLASS (bp_breaker_parent_class)->constructed (object);

  g_mutex_lock (&self->mutex);
  if (self->buckets == NULL)
    window_realloc_locked (self);
  self->open_duration_us = (gint64) self->open_ms * 1000;
  g_mutex_unlock (&self->mutex);
}

static void
bp_breaker_class_init (BpBreakerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS;

  object_class->finalize = bp_breaker_finalize;
  object_class->constructed = bp_breaker_constructed;
  object_class->get_property = bp_breaker_get_property;
  object_class->set_property = bp_breaker_set_property;

  /**
   * BpBreaker:name:
   *
   * A name for debug output, error messages and stats, usually the
   * backend's. Construct-only; %NULL gives `breaker`.
   */
  properties[PROP_NAME] =
    g_param_spec_string ("name", NULL, NULL, "breaker",
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * BpBreaker:clock:
   *
   * The clock for windows, open durations and timeouts (%NULL at
   * construction: the default clock).
   */
  properties[PROP_CLOCK] =
    g_param_spec_object ("clock", NULL, NULL, BP_TYPE_CLOCK,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * BpBreaker:mode:
   *
   * The operating mode; see [enum@Bp.BreakerMode] and
   * [method@Bp.Breaker.set_mode]. Notified only when it changes.
   */
  properties[PROP_MODE] =
    g_param_spec_enum ("mode", NULL, NULL,
                       BP_TYPE_BREAKER_MODE, BP_BREAKER_MODE_NORMAL,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * BpBreaker:threshold-inclusive:
   *
   * %TRUE: the breaker opens when the rate is greater than *or equal to* the
   * threshold (resilience4j, Polly, failsafe-go); %FALSE: only when it is
   * strictly greater (opossum, cockatiel). Applies to both the error rate
   * and the slow-call rate. A rate is never exceeded with zero failures.
   */
  properties[PROP_THRESHOLD_INCLUSIVE] =
    g_param_spec_boolean ("threshold-inclusive", NULL, NULL, TRUE, rw);

  /**
   * BpBreaker:error-threshold-percent:
   *
   * The failure rate, in percent of the calls in the window, that opens the
   * breaker (1 to 100, default 50). Timeouts are failures. Rejected calls
   * and ignored errors are in neither the numerator nor the denominator.
   */
  /**
   * BpBreaker:min-volume:
   *
   * The number of recorded calls the window must hold before the rates are
   * evaluated (default 10), so that one failure out of one call does not
   * open the breaker.
   */
  /**
   * BpBreaker:window-ms:
   *
   * The length of the rolling window, in milliseconds (10 ms to 24 h,
   * default 10 s). Changing it clears the window.
   */
  /**
   * BpBreaker:n-buckets:
   *
   * How many buckets the window is split into (1 to 60, default 10);
   * outcomes expire a bucket at a time. Changing it clears the window.
   */
  /**
   * BpBreaker:slow-call-ms:
   *
   * A call taking at least this long, in milliseconds, is slow, whatever
   * its outcome (ignored outcomes aside); 0 (the default) disables
   * slow-call detection. In HALF_OPEN a slow probe counts as a failed probe.
   */
  /**
   * BpBreaker:slow-call-percent:
   *
   * The slow-call rate, in percent of the calls in the window, that opens
   * the breaker (1 to 100, default 100). Used only with
   * #BpBreaker:slow-call-ms set.
   */
  /**
   * BpBreaker:open-ms:
   *
   * How long the breaker stays OPEN the first time, in milliseconds
   * (default 30 s).
   */
  /**
   * BpBreaker:open-max-ms:
   *
   * The cap of the open duration, in milliseconds (default 300 s), which
   * doubles on each failed half-open trial and returns to
   * #BpBreaker:open-ms on close. A cap below #BpBreaker:open-ms counts as
   * #BpBreaker:open-ms.
   */
  /**
   * BpBreaker:half-open-permits:
   *
   * How many probe calls HALF_OPEN admits (1 to 1000, default 3); all of
   * them must succeed to close the breaker, and the first failure reopens
   * it. Extra calls are rejected without reaching the backend.
   */
  /**
   * BpBreaker:half-open-max-wait-ms:
   *
   * The hung-probe guard, in milliseconds (default 60 s): if HALF_OPEN has
   * not decided after this long, the next call reopens the breaker (as a
   * failed trial) instead of waiting for a probe that may never complete.
   * 0 disables the guard.
   */
  /**
   * BpBreaker:timeout-ms:
   *
   * The per-call timeout of [method@Bp.Breaker.call_async] and
   * [method@Bp.Retry.run_with_breaker_async], in milliseconds; 0 (the
   * default) for none. A timed-out call completes with %BP_ERROR_TIMEOUT
   * and is recorded as a failure and a timeout; its operation's cancellable
   * is cancelled and its late result is discarded. It does not apply to
   * permits from [method@Bp.Breaker.try_acquire].
   */
  for (guint i = 0; i < G_N_ELEMENTS (uint_props); i++)
    properties[FIRST_UINT_PROP + i] =
      g_param_spec_uint (uint_props[i].name, NULL, NULL,
                         uint_props[i].min, uint_props[i].max, uint_props[i].def, rw);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * BpBreaker::state-changed:
   * @self: the breaker
   * @old_state: the state before
   * @new_state: the state after
   *
   * Emitted exactly once per transition, after the breaker's lock is
   * released, in the thread whose call caused the transition. Lazy
   * transitions (OPEN to HALF_OPEN, the hung-probe guard) happen on the next
   * call. One function call may cause two transitions
   * ([method@Bp.Breaker.force_open] on a forced-open breaker: OPEN to
   * CLOSED, then CLOSED to OPEN); they are emitted in order. A re-entry
   * into the same state (such as [method@Bp.Breaker.force_open] on an open
   * breaker) is not emitted. The daemon logs one line per emission.
   */
  signals[STATE_CHANGED] =
    g_signal_new ("state-changed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, BP_TYPE_BREAKER_STATE, BP_TYPE_BREAKER_STATE);

  /**
   * BpBreaker::would-open:
   * @self: the breaker
   *
   * Emitted in %BP_BREAKER_MODE_METRICS_ONLY when the thresholds are
   * crossed, where %BP_BREAKER_MODE_NORMAL would open. Emitted again only
   * after the rates have gone back under the thresholds.
   */
  signals[WOULD_OPEN] =
    g_signal_new ("would-open",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);
}

static void
bp_breaker_init (BpBreaker *self)
{
  g_mutex_init (&self->mutex);
  self->state = BP_BREAKER_CLOSED;
  self->opened_at = -1;
  self->closed_generation = (gsize) self->generation + 1;
}

/**
 * BpBreaker:
 *
 * A circuit breaker for one backend: CLOSED, OPEN and HALF_OPEN plus the
 * modes of [enum@Bp.BreakerMode], a rolling window rotated lazily from
 * [class@Bp.Clock] (no timer per breaker), error-rate, minimum-volume and
 * slow-call thresholds, an open duration that grows on each failed half-open
 * trial, bounded half-open probes with a hung-probe guard, a per-call
 * timeout, fallbacks, outcomes tagged with the state they were admitted in,
 * [signal@Bp.Breaker::state-changed] on every transition, and stats.
 *
 * Create one with [ctor@Bp.Breaker.new] and configure it through its
 * properties. A backend's own breaker, configured from the `breaker.*` keys
 * of its group, is used by [method@Bp.Backend.call_async].
 *
 * ## State machine
 *
 * In %BP_BREAKER_MODE_NORMAL:
 *
 * - **CLOSED → OPEN**: after an outcome is recorded, when the rolling window
 *   ([property@Bp.Breaker:window-ms], in [property@Bp.Breaker:n-buckets]
 *   buckets) holds at least [property@Bp.Breaker:min-volume] calls and the
 *   failure rate reaches [property@Bp.Breaker:error-threshold-percent], or
 *   the slow-call rate reaches [property@Bp.Breaker:slow-call-percent]
 *   (with [property@Bp.Breaker:slow-call-ms] set). Whether "reaches" means
 *   ≥ or > is [property@Bp.Breaker:threshold-inclusive]. Only outcomes of
 *   calls admitted while CLOSED count: successes, failures and timeouts;
 *   ignored outcomes and rejections do not.
 * - **OPEN**: every call is rejected at once with %BP_ERROR_CIRCUIT_OPEN
 *   carrying the time left as its retry-after
 *   ([func@Bp.error_get_retry_after]). The first call after the open
 *   duration ([property@Bp.Breaker:open-ms] at first) turns the breaker
 *   HALF_OPEN; this is lazy, no timer runs.
 * - **HALF_OPEN → CLOSED**: up to [property@Bp.Breaker:half-open-permits]
 *   probe calls are admitted and the others rejected; when that many
 *   probes have succeeded, the breaker closes with an empty window and the
 *   open duration back to [property@Bp.Breaker:open-ms].
 * - **HALF_OPEN → OPEN**: the first probe that fails, times out or is slow
 *   reopens the breaker, for twice the previous open duration, at most
 *   [property@Bp.Breaker:open-max-ms]. So does the next call once HALF_OPEN
 *   has lasted [property@Bp.Breaker:half-open-max-wait-ms] without a
 *   decision (the hung-probe guard). A probe whose outcome is ignored gives
 *   its slot back.
 *
 * Every transition increments a generation number. A call remembers the
 * generation it was admitted in; an outcome whose generation is no longer
 * current is *stale*: it is counted in the totals but never changes the
 * state, the window or the half-open probe slots, so a late success cannot
 * close a breaker that has reopened meanwhile.
 *
 * The other modes: %BP_BREAKER_MODE_DISABLED lets everything through and
 * records nothing, %BP_BREAKER_MODE_FORCED_OPEN rejects everything without
 * a retry-after, and %BP_BREAKER_MODE_METRICS_ONLY records outcomes but
 * emits [signal@Bp.Breaker::would-open] instead of opening.
 * [method@Bp.Breaker.force_open] opens a NORMAL breaker for one open
 * duration; [method@Bp.Breaker.reset] returns to a fresh CLOSED state. The
 * state that must survive a restart is saved with
 * [method@Bp.Breaker.export_state] and restored with
 * [method@Bp.Breaker.import_state].
 *
 * ## Calling through a breaker
 *
 * Use [method@Bp.Breaker.call_async] around a [struct@Bp.Operation]: it
 * admits the call, applies [property@Bp.Breaker:timeout-ms], records the
 * outcome with the breaker's classifier
 * ([method@Bp.Breaker.set_classify_func]) and can fall back to a degraded
 * result ([callback@Bp.FallbackFunc]).
 * [method@Bp.Retry.run_with_breaker_async] does the same for every attempt
 * of a retried operation.
 *
 * In C, calls you manage yourself take a permit with
 * [method@Bp.Breaker.try_acquire] and release it exactly once:
 *
 * ```c
 * g_autoptr(GError) error = NULL;
 * BpBreakerPermit *permit = bp_breaker_try_acquire (breaker, &error);
 * gboolean ok;
 *
 * if (permit == NULL)
 *   return fail_fast (error);   // BP_ERROR_CIRCUIT_OPEN, with retry-after
 *
 * ok = do_the_call (conn, &error);
 * bp_breaker_permit_release_error (permit, ok ? NULL : error);
 * ```
 *
 * ## Threads
 *
 * Thread-safe: the state is protected by a mutex and every function may be
 * called from any thread. Signals and property notifications are emitted
 * after the mutex is released, in the thread whose call caused them, once
 * per transition. [method@Bp.Breaker.call_async] completes in its caller's
 * thread-default main context; its per-call timeout is the only timer a
 * breaker ever arms, and it is destroyed when the call completes.
 */

/**
 * bp_breaker_new:
 * @name: (nullable): a name for debug output, usually the backend's
 * @clock: (nullable): the clock, %NULL for the default one
 *
 * Creates a breaker with the defaults: threshold 50 % (inclusive), minimum
 * volume 10, window 10 s in 10 buckets, open 30 s growing to at most 300 s,
 * 3 half-open probes, hung-probe guard 60 s, no slow-call detection, no
 * timeout, mode NORMAL, the default classifier. Configure it with
 * properties. It starts CLOSED.
 *
 * Returns: (transfer full): a new #BpBreaker
 */
BpBreaker *
bp_breaker_new (const char *name,
                BpClock    *clock)
{
  g_return_val_if_fail (clock == NULL || BP_IS_CLOCK (clock), NULL);

  return g_object_new (BP_TYPE_BREAKER, "name", name, "clock", clock, NULL);
}

/**
 * bp_breaker_get_name:
 * @self: a #BpBreaker
 *
 * Gets the name given at construction ([property@Bp.Breaker:name]).
 *
 * Returns: (transfer none): the name, owned by @self
 */
const char *
bp_breaker_get_name (BpBreaker *self)
{
  g_return_val_if_fail (BP_IS_BREAKER (self), NULL);
  return self->name;
}

/**
 * bp_breaker_get_clock:
 * @self: a #BpBreaker
 *
 * Gets the clock windows, open durations, latencies and timeouts are
 * measured on ([property@Bp.Breaker:clock]).
 *
 * Returns: (transfer none): the clock, owned by @self
 */
BpClock *
bp_breaker_get_clock (BpBreaker *self)
{
  g_return_val_if_fail (BP_IS_BREAKER (self), NULL);
  return self->clock;
}

/**
 * bp_breaker_get_state:
 * @self: a #BpBreaker
 *
 * Returns the recorded state. Transitions out of OPEN and out of a stuck
 * HALF_OPEN happen lazily on the next call, so an OPEN breaker whose open
 * duration has passed still reads OPEN until then.
 *
 * Returns: the state
 */
BpBreakerState
bp_breaker_get_state (BpBreaker *self)
{
  BpBreakerState state;

  g_return_val_if_fail (BP_IS_BREAKER (self), BP_BREAKER_CLOSED);

  g_mutex_lock (&self->mutex);
  state = self->state;
  g_mutex_unlock (&self->mutex);
  return state;
}

/**
 * bp_breaker_get_mode:
 * @self: a #BpBreaker
 *
 * Gets the operating mode ([property@Bp.Breaker:mode]). Thread-safe.
 *
 * Returns: the mode
 */
BpBreakerMode
bp_breaker_get_mode (BpBreaker *self)
{
  BpBreakerMode mode;

  g_return_val_if_fail (BP_IS_BREAKER (self), BP_BREAKER_MODE_NORMAL);

  g_mutex_lock (&self->mutex);
  mode = self->mode;
  g_mutex_unlock (&self->mutex);
  return mode;
}

/**
 * bp_breaker_set_mode:
 * @self: a #BpBreaker
 * @mode: the new mode
 *
 * Switches the mode. A change starts afresh: the window is cleared, the open
 * duration reset, and the state becomes OPEN for
 * %BP_BREAKER_MODE_FORCED_OPEN and CLOSED for the others (with a
 * [signal@Bp.Breaker::state-changed] if it differs), and
 * [property@Bp.Breaker:mode] is notified. Outcomes of calls admitted
 * before are stale. Setting the current mode does nothing.
 */
void
bp_breaker_set_mode (BpBreaker     *self,
                     BpBreakerMode  mode)
{
  Pending pending = { 0, };
  gint64 now;

  g_return_if_fail (BP_IS_BREAKER (self));
  g_return_if_fail (mode <= BP_BREAKER_MODE_METRICS_ONLY);

  now = bp_clock_get_time (self->clock);
  g_mutex_lock (&self->mutex);
  if (self->mode != mode)
    set_mode_locked (self, mode, now, &pending);
  g_mutex_unlock (&self->mutex);

  emit_pending (self, &pending);
}

/**
 * bp_breaker_set_classify_func:
 * @self: a #BpBreaker
 * @func: (nullable) (scope notified): the classifier, %NULL for
 *   [func@Bp.FailureKind.from_error]
 * @user_data: data for @func
 * @destroy: (nullable): frees @user_data
 *
 * Sets how errors of [method@Bp.Breaker.call_async],
 * [method@Bp.Retry.run_with_breaker_async] and
 * [method@Bp.BreakerPermit.release_error] are judged: %BP_FAILURE_IGNORE
 * is an ignored outcome, every other kind a failure (a timeout error a
 * timeout). Set it before the first call: the old @user_data is destroyed
 * at once, even if a call is using it. @func is called without the
 * breaker's lock held, in the thread that reports the outcome, and must be
 * thread-safe if the breaker is used from several threads.
 */
void
bp_breaker_set_classify_func (BpBreaker      *self,
                              BpClassifyFunc  func,
                              gpointer        user_data,
                              GDestroyNotify  destroy)
{
  gpointer old_data;
  GDestroyNotify old_destroy;

  g_return_if_fail (BP_IS_BREAKER (self));

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

/**
 * bp_breaker_classify:
 * @self: a #BpBreaker
 * @error: an error
 *
 * Classifies @error with the breaker's classifier
 * ([method@Bp.Breaker.set_classify_func]), or with
 * [func@Bp.FailureKind.from_error] when none is set. Useful to apply
 * the same judgement outside the breaker. Thread-safe; records nothing.
 *
 * Returns: how the breaker judges @error
 */
BpFailureKind
bp_breaker_classify (BpBreaker    *self,
                     const GError *error)
{
  BpClassifyFunc func;
  gpointer data;

  g_return_val_if_fail (BP_IS_BREAKER (self), BP_FAILURE_FATAL);
  g_return_val_if_fail (error != NULL, BP_FAILURE_FATAL);

  g_mutex_lock (&self->mutex);
  func = self->classify;
  data = self->classify_data;
  g_mutex_unlock (&self->mutex);

  return func != NULL ? func (error, data) : bp_failure_kind_from_error (error);
}

/**
 * bp_breaker_reset:
 * @self: a #BpBreaker
 *
 * Returns to mode NORMAL and state CLOSED with an empty window, the base
 * open duration and zeroed totals (the D-Bus `ResetBreaker`). Emits
 * [signal@Bp.Breaker::state-changed] if the state changes. Outcomes of
 * calls admitted before are stale.
 */
void
bp_breaker_reset (BpBreaker *self)
{
  Pending pending = { 0, };
  gint64 now;

  g_return_if_fail (BP_IS_BREAKER (self));

  now = bp_clock_get_time (self->clock);
  g_mutex_lock (&self->mutex);
  set_mode_locked (self, BP_BREAKER_MODE_NORMAL, now, &pending);
  self->opened_at = -1;
  self->successes = self->failures = self->timeouts = self->slow = 0;
  self->ignored = self->rejected = self->stale = self->fallbacks = 0;
  g_mutex_unlock (&self->mutex);

  emit_pending (self, &pending);
}

/**
 * bp_breaker_force_open:
 * @self: a #BpBreaker
 *
 * Opens the breaker now in mode NORMAL (switching to that mode first if
 * needed), as if the threshold had been crossed: it rejects calls for the
 * current open duration and then half-opens as usual. On an open breaker it
 * restarts the open duration. (To isolate a backend until told otherwise,
 * set %BP_BREAKER_MODE_FORCED_OPEN instead.)
 */
void
bp_breaker_force_open (BpBreaker *self)
{
  Pending pending = { 0, };
  gint64 now;

  g_return_if_fail (BP_IS_BREAKER (self));

  now = bp_clock_get_time (self->clock);
  g_mutex_lock (&self->mutex);
  if (self->mode != BP_BREAKER_MODE_NORMAL)
    set_mode_locked (self, BP_BREAKER_MODE_NORMAL, now, &pending);
  transition_locked (self, BP_BREAKER_OPEN, now, &pending);
  g_mutex_unlock (&self->mutex);

  emit_pending (self, &pending);
}

/* Admission -------------------------------------------------------------- */

static void
permit_fill (BpBreakerPermit *permit,
             guint64          generation,
             BpBreakerState   state,
             gint64           now,
             gboolean         tracked)
{
  permit->breaker = NULL;
  permit->generation = generation;
  permit->admitted_state = state;
  permit->start_us = now;
  permit->tracked = tracked;
}

static void
permit_init_locked (BpBreaker       *self,
                    BpBreakerPermit *permit,
                    gint64           now,
                    gboolean         tracked)
{
  permit_fill (permit, self->generation, self->state, now, tracked);
}

static GError *
reject_locked (BpBreaker  *self,
               gint64      retry_after_ms,
               const char *why)
{
  GError *error;

  self->rejected++;
  error = g_error_new (BP_ERROR, BP_ERROR_CIRCUIT_OPEN,
                       "Circuit breaker '%s' is %s", self->name, why);
  bp_error_set_retry_after (&error, retry_after_ms);
  return error;
}

/* Admission into caller-owned storage (bp_breaker_call_async() and the
 * fused retry path embed the permit in their call data: no allocation, no
 * extra reference). @now is the breaker clock's time if the caller has just
 * read it, or -1. Also reads the per-call timeout under the same lock. */
gboolean
bp_breaker_admit_into (BpBreaker        *self,
                       gint64            now,
                       BpBreakerPermit  *permit,
                       guint            *out_timeout_ms,
                       GError          **error)
{
  Pending pending = { 0, };
  GError *local_error = NULL;
  gsize closed_generation;

  if (now < 0)
    now = bp_clock_get_time (self->clock);

  /* Fast path, no lock: a NORMAL breaker that is CLOSED admits every call
   * and changes nothing by doing so. A transition racing with this read
   * makes the permit stale, which is what a call admitted just before the
   * transition is anyway. */
  closed_generation = g_atomic_pointer_get (&self->closed_generation);
  if (G_LIKELY (closed_generation != 0))
    {
      permit_fill (permit, closed_generation - 1, BP_BREAKER_CLOSED, now, TRUE);
      if (out_timeout_ms != NULL)
        *out_timeout_ms = (guint) g_atomic_int_get ((gint *) &self->timeout_ms);
      return TRUE;
    }

  g_mutex_lock (&self->mutex);

  switch (self->mode)
    {
    case BP_BREAKER_MODE_DISABLED:
      permit_init_locked (self, permit, now, FALSE);
      break;

    case BP_BREAKER_MODE_FORCED_OPEN:
      local_error = reject_locked (self, -1, "forced open");
      break;

    case BP_BREAKER_MODE_METRICS_ONLY:
      permit_init_locked (self, permit, now, TRUE);
      break;

    case BP_BREAKER_MODE_NORMAL:
    default:
      if (self->state == BP_BREAKER_OPEN && now >= self->open_until)
        transition_locked (self, BP_BREAKER_HALF_OPEN, now, &pending);
      else if (self->state == BP_BREAKER_HALF_OPEN &&
               self->half_open_max_wait_ms > 0 &&
               now - self->half_open_since >= (gint64) self->half_open_max_wait_ms * 1000)
        {
          pending.hung_probe = TRUE;
          reopen_locked (self, now, &pending);
        }

      if (self->state == BP_BREAKER_CLOSED)
        permit_init_locked (self, permit, now, TRUE);
      else if (self->state == BP_BREAKER_OPEN)
        local_error = reject_locked (self, us_to_ms_ceil (self->open_until - now), "open");
      else if (self->half_open_admitted < self->half_open_permits)
        {
          self->half_open_admitted++;
          permit_init_locked (self, permit, now, TRUE);
        }
      else
        {
          gint64 wait_us = self->half_open_max_wait_ms > 0
                           ? self->half_open_since + (gint64) self->half_open_max_wait_ms * 1000 - now
                           : self->open_duration_us;
          local_error = reject_locked (self, us_to_ms_ceil (wait_us),
                                       "half-open and its probes are in flight");
        }
      break;
    }

  if (out_timeout_ms != NULL)
    *out_timeout_ms = self->timeout_ms;
  g_mutex_unlock (&self->mutex);

  emit_pending (self, &pending);

  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }
  return TRUE;
}

/**
 * bp_breaker_try_acquire: (skip)
 * @self: a #BpBreaker
 * @error: return location for a %BP_ERROR_CIRCUIT_OPEN error carrying
 *   `retry-after-ms` (except in %BP_BREAKER_MODE_FORCED_OPEN)
 *
 * Asks to call the backend. This is where lazy transitions happen: an OPEN
 * breaker whose open duration has passed becomes HALF_OPEN and admits up to
 * #BpBreaker:half-open-permits probes, and a HALF_OPEN breaker older than
 * #BpBreaker:half-open-max-wait-ms reopens. Rejections are counted as
 * `rejected`, never as failures. The retry-after of a rejection is the time
 * left in OPEN, or in HALF_OPEN the time until the hung-probe guard.
 *
 * The permit does not arm #BpBreaker:timeout-ms: timing the call is up to
 * the caller. Thread-safe.
 *
 * Not introspectable (a permit is a plain struct released exactly once);
 * language bindings use [method@Bp.Breaker.call_async].
 *
 * Returns: (transfer full) (nullable): a permit to release exactly once, or
 *   %NULL with @error set
 */
BpBreakerPermit *
bp_breaker_try_acquire (BpBreaker  *self,
                        GError    **error)
{
  BpBreakerPermit admitted;
  BpBreakerPermit *permit;

  g_return_val_if_fail (BP_IS_BREAKER (self), NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!bp_breaker_admit_into (self, -1, &admitted, NULL, error))
    return NULL;
  permit = g_new (BpBreakerPermit, 1);
  *permit = admitted;
  permit->breaker = g_object_ref (self);
  return permit;
}

/* Records one outcome; called with the mutex held. */
static void
record_locked (BpBreaker             *self,
               const BpBreakerPermit *permit,
               BpBreakerOutcome       outcome,
               gint64                 now,
               Pending               *pending)
{
  gint64 duration = now - permit->start_us;
  gboolean failed = outcome == BP_BREAKER_OUTCOME_FAILURE || outcome == BP_BREAKER_OUTCOME_TIMEOUT;
  gboolean slow;
  WindowBucket *bucket;

  if (self->mode == BP_BREAKER_MODE_DISABLED)
    return;   /* no stats while disabled */

  slow = outcome != BP_BREAKER_OUTCOME_IGNORED &&
         self->slow_call_ms > 0 &&
         duration >= (gint64) self->slow_call_ms * 1000;

  switch (outcome)
    {
    case BP_BREAKER_OUTCOME_SUCCESS:
      self->successes++;
      break;
    case BP_BREAKER_OUTCOME_TIMEOUT:
      self->timeouts++;
      self->failures++;
      break;
    case BP_BREAKER_OUTCOME_FAILURE:
      self->failures++;
      break;
    case BP_BREAKER_OUTCOME_IGNORED:
    default:
      self->ignored++;
      break;
    }
  if (slow)
    self->slow++;

  bucket = window_bucket_locked (self, now);
  if (outcome != BP_BREAKER_OUTCOME_IGNORED)
    bucket->latency[latency_bin (duration)]++;

  if (permit->generation != self->generation)
    {
      self->stale++;
      return;
    }

  if (permit->admitted_state == BP_BREAKER_HALF_OPEN)
    {
      if (outcome == BP_BREAKER_OUTCOME_IGNORED)
        self->half_open_admitted--;
      else if (failed || slow)
        reopen_locked (self, now, pending);
      else if (++self->half_open_successes >= self->half_open_permits)
        transition_locked (self, BP_BREAKER_CLOSED, now, pending);
      return;
    }

  if (permit->admitted_state != BP_BREAKER_CLOSED || outcome == BP_BREAKER_OUTCOME_IGNORED)
    return;

  bucket->calls++;
  if (failed)
    bucket->failures++;
  if (slow)
    bucket->slow++;

  if (!window_exceeded_locked (self, now))
    self->would_open_latched = FALSE;
  else if (self->mode == BP_BREAKER_MODE_NORMAL)
    transition_locked (self, BP_BREAKER_OPEN, now, pending);
  else if (!self->would_open_latched)
    {
      self->would_open_latched = TRUE;
      pending->would_open = TRUE;
    }
}

static void
permit_record (BpBreaker             *self,
               const BpBreakerPermit *permit,
               BpBreakerOutcome       outcome)
{
  Pending pending = { 0, };
  gint64 now;

  if (!permit->tracked)
    return;

  now = bp_clock_get_time (self->clock);
  g_mutex_lock (&self->mutex);
  record_locked (self, permit, outcome, now, &pending);
  g_mutex_unlock (&self->mutex);
  emit_pending (self, &pending);
}

static gboolean
error_is_timeout (const GError *error)
{
  return g_error_matches (error, BP_ERROR, BP_ERROR_TIMEOUT) ||
         g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT);
}

static BpBreakerOutcome
outcome_from_error (BpBreaker    *self,
                    const GError *error)
{
  if (error == NULL)
    return BP_BREAKER_OUTCOME_SUCCESS;
  if (bp_breaker_classify (self, error) == BP_FAILURE_IGNORE)
    return BP_BREAKER_OUTCOME_IGNORED;
  if (error_is_timeout (error))
    return BP_BREAKER_OUTCOME_TIMEOUT;
  return BP_BREAKER_OUTCOME_FAILURE;
}

/* Records the outcome of an embedded permit: success when @error is %NULL,
 * otherwise as the breaker's classifier says. */
void
bp_breaker_record (BpBreaker             *self,
                   const BpBreakerPermit *permit,
                   const GError          *error)
{
  permit_record (self, permit, outcome_from_error (self, error));
}

/**
 * bp_breaker_permit_release:
 * @permit: (transfer full): a permit from bp_breaker_try_acquire()
 * @outcome: how the call went
 *
 * Records the outcome of an admitted call and frees @permit. The latency is
 * measured on the breaker's clock from admission. An outcome from an older
 * generation (the breaker changed state meanwhile) is counted in the totals
 * and as `stale`, and changes nothing else: it neither closes nor reopens
 * the breaker, nor takes or frees a half-open probe slot. A permit admitted
 * in %BP_BREAKER_MODE_DISABLED records nothing.
 *
 * May be called from any thread; a transition it causes is signalled in
 * that thread.
 */
void
bp_breaker_permit_release (BpBreakerPermit  *permit,
                           BpBreakerOutcome  outcome)
{
  g_return_if_fail (permit != NULL);
  g_return_if_fail (outcome <= BP_BREAKER_OUTCOME_IGNORED);

  permit_record (permit->breaker, permit, outcome);
  g_object_unref (permit->breaker);
  g_free (permit);
}

/**
 * bp_breaker_permit_release_error:
 * @permit: (transfer full): a permit from bp_breaker_try_acquire()
 * @error: (nullable): the call's error, %NULL for success
 *
 * Like [method@Bp.BreakerPermit.release] with the outcome derived from
 * @error by the breaker's classifier: no error gives
 * %BP_BREAKER_OUTCOME_SUCCESS, %BP_FAILURE_IGNORE gives
 * %BP_BREAKER_OUTCOME_IGNORED, a timeout error (%BP_ERROR_TIMEOUT,
 * `G_IO_ERROR_TIMED_OUT`) %BP_BREAKER_OUTCOME_TIMEOUT, any other kind
 * %BP_BREAKER_OUTCOME_FAILURE. The classifier runs in the calling thread.
 */
void
bp_breaker_permit_release_error (BpBreakerPermit *permit,
                                 const GError    *error)
{
  g_return_if_fail (permit != NULL);

  bp_breaker_permit_release (permit, outcome_from_error (permit->breaker, error));
}

/* bp_breaker_call_async -------------------------------------------------- */

typedef struct
{
  BpOperation      op;
  gpointer         op_data;           /* (owned by op_data_destroy) */
  GDestroyNotify   op_data_destroy;   /* (nullable) */
  BpFallbackFunc   fallback;          /* (nullable) */
  BpBreakerPermit  permit;            /* valid while holds_permit */
  gboolean         holds_permit;
  GCancellable    *op_cancellable;    /* (owned) (nullable): child, with a timeout only */
  GCancellable    *caller_cancellable; /* (owned) (nullable) */
  gulong           cancel_handler;
  GSource         *timeout_source;    /* (owned) (nullable) */
  guint            timeout_ms;
  gboolean         completed;         /* the task has been returned */
  gboolean         degraded;
  GObject         *keep_alive;        /* (owned) (nullable): what owns op_data,
                                       * held until the late result came */
} CallData;

static void
call_data_unlink (CallData *data)
{
  if (data->timeout_source != NULL)
    {
      g_source_destroy (data->timeout_source);
      g_clear_pointer (&data->timeout_source, g_source_unref);
    }
  if (data->cancel_handler != 0)
    {
      g_cancellable_disconnect (data->caller_cancellable, data->cancel_handler);
      data->cancel_handler = 0;
    }
}

static void
call_data_free (gpointer p)
{
  CallData *data = p;

  call_data_unlink (data);
  /* holds_permit is still set only if the operation dropped its callback
   * without calling it; the hung-probe guard reclaims a probe slot lost so. */
  g_clear_object (&data->op_cancellable);
  g_clear_object (&data->caller_cancellable);
  if (data->op_data_destroy != NULL)
    data->op_data_destroy (data->op_data);
  g_clear_object (&data->keep_alive);
  g_free (data);
}

/* Completes @task with @error, or with the fallback's degraded result. */
static void
call_return_error (GTask  *task,
                   GError *error,   /* (transfer full) */
                   gboolean may_fall_back)
{
  BpBreaker *self = g_task_get_source_object (task);
  CallData *data = g_task_get_task_data (task);
  g_autoptr(GError) fallback_error = NULL;
  gpointer result = NULL;

  data->completed = TRUE;

  if (!may_fall_back || data->fallback == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  g_mutex_lock (&self->mutex);
  self->fallbacks++;
  g_mutex_unlock (&self->mutex);

  if (data->fallback (data->op_data, error, &result, &fallback_error))
    {
      data->degraded = TRUE;
      g_task_return_pointer (task, result, data->op.free_result);
      g_error_free (error);
      return;
    }

  /* Keep the original domain and code (and its retry-after), chain both. */
  g_task_return_new_error (task, error->domain, error->code,
                           "%s (fallback failed: %s)", error->message,
                           fallback_error != NULL ? fallback_error->message : "no error given");
  g_error_free (error);
}

/* Records the call's outcome, exactly once. */
static void
call_release (BpBreaker        *self,
              CallData         *data,
              BpBreakerOutcome  outcome)
{
  g_assert (data->holds_permit);
  data->holds_permit = FALSE;
  permit_record (self, &data->permit, outcome);
}

static void
call_cancel_child_cb (GCancellable *cancellable,
                      gpointer      user_data)
{
  /* Called in the thread that cancelled the caller's cancellable. */
  g_cancellable_cancel (G_CANCELLABLE (user_data));
}

static void     call_op_done_cb (GObject      *source,
                                 GAsyncResult *result,
                                 gpointer      user_data);
static gboolean call_timeout_cb (gpointer      user_data);

static GTask *
call_task_new (BpBreaker           *self,
               const BpOperation   *op,
               gpointer             op_data,
               GDestroyNotify       op_data_destroy,
               BpFallbackFunc       fallback,
               GCancellable        *cancellable,
               GAsyncReadyCallback  callback,
               gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  CallData *data;

  g_task_set_source_tag (task, bp_breaker_call_async);
  data = g_new0 (CallData, 1);
  data->op = *op;
  data->op_data = op_data;
  data->op_data_destroy = op_data_destroy;
  data->fallback = fallback;
  g_task_set_task_data (task, data, call_data_free);
  return task;
}

/* Starts the admitted call: arms the timeout if there is one, then the
 * operation. Takes ownership of @task. */
static void
call_start (GTask *task)
{
  BpBreaker *self = g_task_get_source_object (task);
  CallData *data = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GCancellable *op_cancellable = cancellable;

  if (data->timeout_ms > 0)
    {
      data->op_cancellable = g_cancellable_new ();
      op_cancellable = data->op_cancellable;
      if (cancellable != NULL)
        {
          data->caller_cancellable = g_object_ref (cancellable);
          data->cancel_handler = g_cancellable_connect (cancellable,
                                                        G_CALLBACK (call_cancel_child_cb),
                                                        g_object_ref (data->op_cancellable),
                                                        g_object_unref);
        }

      /* The task owns the source through its data; the source only borrows
       * the task, and is destroyed before the task is. */
      data->timeout_source = bp_clock_timeout_source_new (self->clock,
                                                          (gint64) data->timeout_ms * 1000);
      g_source_set_callback (data->timeout_source, call_timeout_cb, task, NULL);
      g_source_attach (data->timeout_source, g_task_get_context (task));
    }

  data->op.start (data->op_data, op_cancellable, call_op_done_cb, task);
}

/**
 * bp_breaker_call_async:
 * @self: a #BpBreaker
 * @op: the operation (copied)
 * @op_data: (nullable): passed to @op's functions and to @fallback; it lives
 *   until the operation has completed, even after a timeout
 * @op_data_destroy: (nullable): frees @op_data
 * @fallback: (nullable) (scope async): produces a degraded result on
 *   rejection, timeout or failure
 * @cancellable: (nullable): cancels the call; with a timeout the operation
 *   gets a child cancellable that is also cancelled on timeout
 * @callback: called exactly once, in the thread-default main context of the
 *   caller
 * @user_data: data for @callback
 *
 * Runs @op under the breaker: admission (a rejection fails with
 * %BP_ERROR_CIRCUIT_OPEN and never starts @op), the per-call timeout
 * (#BpBreaker:timeout-ms), outcome recording with the breaker's classifier,
 * and @fallback. A timed-out call completes with %BP_ERROR_TIMEOUT at the
 * deadline; the operation's late result is finished and freed when it
 * comes, and @op_data is destroyed only after that.
 *
 * @op is started before this function returns (when admitted), with
 * @cancellable or, with a timeout, a child of it. @callback is called
 * exactly once, never from within this function; finish with
 * [method@Bp.Breaker.call_finish]. There is no retry: use
 * [method@Bp.Retry.run_with_breaker_async] for that.
 */
void
bp_breaker_call_async (BpBreaker           *self,
                       const BpOperation   *op,
                       gpointer             op_data,
                       GDestroyNotify       op_data_destroy,
                       BpFallbackFunc       fallback,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  CallData *data;

  g_return_if_fail (BP_IS_BREAKER (self));
  g_return_if_fail (op != NULL && op->start != NULL && op->finish != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = call_task_new (self, op, op_data, op_data_destroy, fallback,
                        cancellable, callback, user_data);
  data = g_task_get_task_data (task);

  data->holds_permit = bp_breaker_admit_into (self, -1, &data->permit, &data->timeout_ms, &error);
  if (!data->holds_permit)
    {
      call_return_error (task, error, TRUE);
      return;
    }

  call_start (g_steal_pointer (&task));
}

/* For the fused retry path: runs @op under a permit already admitted (it is
 * copied), with the per-call timeout read at admission. Completes like
 * bp_breaker_call_async() without a fallback. */
void
bp_breaker_call_admitted_async (BpBreaker              *self,
                                const BpBreakerPermit  *permit,
                                guint                   timeout_ms,
                                const BpOperation      *op,
                                gpointer                op_data,
                                GObject                *keep_alive,
                                GCancellable           *cancellable,
                                GAsyncReadyCallback     callback,
                                gpointer                user_data)
{
  GTask *task;
  CallData *data;

  task = call_task_new (self, op, op_data, NULL, NULL, cancellable, callback, user_data);
  data = g_task_get_task_data (task);
  data->permit = *permit;
  data->holds_permit = TRUE;
  data->timeout_ms = timeout_ms;
  data->keep_alive = keep_alive != NULL ? g_object_ref (keep_alive) : NULL;
  call_start (task);
}

static void
call_op_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpBreaker *self = g_task_get_source_object (task);
  CallData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  gpointer op_result = NULL;
  gboolean ok;
  BpBreakerOutcome outcome;

  ok = data->op.finish (data->op_data, result, &op_result, &error);

  if (data->completed)
    {
      /* The call already timed out: discard the late outcome. */
      if (op_result != NULL && data->op.free_result != NULL)
        data->op.free_result (op_result);
      return;
    }

  call_data_unlink (data);

  if (ok)
    {
      call_release (self, data, BP_BREAKER_OUTCOME_SUCCESS);
      data->completed = TRUE;
      g_task_return_pointer (task, op_result, data->op.free_result);
      return;
    }

  if (error == NULL)
    error = g_error_new_literal (BP_ERROR, BP_ERROR_FAILED,
                                 "operation failed without setting an error");

  outcome = outcome_from_error (self, error);
  call_release (self, data, outcome);
  call_return_error (task, g_steal_pointer (&error), outcome != BP_BREAKER_OUTCOME_IGNORED);
}

static gboolean
call_timeout_cb (gpointer user_data)
{
  g_autoptr(GTask) task = g_object_ref (user_data);
  CallData *data = g_task_get_task_data (task);
  GError *error;

  g_assert (!data->completed);

  call_data_unlink (data);
  call_release (g_task_get_source_object (task), data, BP_BREAKER_OUTCOME_TIMEOUT);

  error = g_error_new (BP_ERROR, BP_ERROR_TIMEOUT,
                       "Operation timed out after %u ms", data->timeout_ms);
  call_return_error (task, error, TRUE);

  /* Tell the operation last: if it completes synchronously on cancel, it
   * finds the call already completed. */
  g_cancellable_cancel (data->op_cancellable);

  return G_SOURCE_REMOVE;
}

/**
 * bp_breaker_call_finish:
 * @self: a #BpBreaker
 * @result: the #GAsyncResult
 * @out_result: (out) (optional) (transfer full) (nullable): the operation's
 *   or the fallback's result; if not requested it is freed with the
 *   operation's `free_result`
 * @out_degraded: (out) (optional): set to %TRUE if the result came from the
 *   fallback
 * @error: return location for a #GError: %BP_ERROR_CIRCUIT_OPEN (with
 *   retry-after), %BP_ERROR_TIMEOUT, the operation's error, or one of these
 *   chained with the fallback's error
 *
 * Finishes a call started with [method@Bp.Breaker.call_async]. If the
 * call's #GCancellable was cancelled, it fails with `G_IO_ERROR_CANCELLED`
 * whatever the operation did (a result is then freed).
 *
 * Returns: %TRUE on success (possibly degraded)
 */
gboolean
bp_breaker_call_finish (BpBreaker     *self,
                        GAsyncResult  *result,
                        gpointer      *out_result,
                        gboolean      *out_degraded,
                        GError       **error)
{
  GTask *task = G_TASK (result);
  CallData *data;
  GError *local_error = NULL;
  gpointer op_result;

  g_return_val_if_fail (BP_IS_BREAKER (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (task) == bp_breaker_call_async, FALSE);

  data = g_task_get_task_data (task);
  op_result = g_task_propagate_pointer (task, &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return FALSE;
    }

  if (out_degraded != NULL)
    *out_degraded = data->degraded;
  if (out_result != NULL)
    *out_result = op_result;
  else if (op_result != NULL && data->op.free_result != NULL)
    data->op.free_result (op_result);
  return TRUE;
}

/* Stats and state -------------------------------------------------------- */

static gint64
percentile_locked (const guint64 *hist,
                   guint64        total,
                   double         p)
{
  guint64 rank;
  guint64 seen = 0;

  if (total == 0)
    return 0;
  rank = (guint64) (p * (double) total + 0.999999);
  rank = CLAMP (rank, 1, total);
  for (guint i = 0; i < HIST_BINS; i++)
    {
      seen += hist[i];
      if (seen >= rank)
        return latency_bin_upper (i);
    }
  return latency_bin_upper (HIST_BINS - 1);
}

/**
 * bp_breaker_dup_stats:
 * @self: a #BpBreaker
 *
 * A snapshot for D-Bus (`Breaker` property) and metrics, an `a{sv}` with:
 * `name` s, `state` s, `mode` s; totals since creation or reset (all `t`):
 * `successes`, `failures` (timeouts included), `timeouts`, `slow`,
 * `ignored`, `rejected`, `stale`, `fallbacks`; over the rolling window:
 * `window-volume` t, `window-failures` t, `window-slow` t, `error-rate` d
 * (percent), and latency percentiles `p50-us`, `p90-us`, `p99-us` (x, upper
 * bound of a bin at most 25 % wide); `opened-at` x (clock µs of the last
 * opening, -1 if never), `retry-after-ms` x (0 unless OPEN),
 * `open-duration-ms` x, `half-open-in-flight` u.
 *
 * Returns: (transfer full): a new, non-floating #GVariant
 */
GVariant *
bp_breaker_dup_stats (BpBreaker *self)
{
  g_autofree guint64 *hist = g_new0 (guint64, HIST_BINS);
  GVariantDict dict;
  guint64 calls, failures, slow, total = 0;
  gint64 now, epoch, retry_after_us = 0;

  g_return_val_if_fail (BP_IS_BREAKER (self), NULL);

  now = bp_clock_get_time (self->clock);
  g_variant_dict_init (&dict, NULL);

  g_mutex_lock (&self->mutex);

  epoch = bp_epoch_at (&self->ring, now, NULL);
  window_sum_locked (self, now, &calls, &failures, &slow);
  for (guint i = 0; i < self->n_buckets; i++)
    {
      const WindowBucket *b = &self->buckets[i];

      if (!window_bucket_live (self, b, epoch))
        continue;
      for (guint j = 0; j < HIST_BINS; j++)
        {
          hist[j] += b->latency[j];
          total += b->latency[j];
        }
    }
  if (self->state == BP_BREAKER_OPEN && self->mode == BP_BREAKER_MODE_NORMAL)
    retry_after_us = MAX (0, self->open_until - now);

  g_variant_dict_insert (&dict, "name", "s", self->name);
  g_variant_dict_insert (&dict, "state", "s", state_nick (self->state));
  g_variant_dict_insert (&dict, "mode", "s", mode_nick (self->mode));
  g_variant_dict_insert (&dict, "successes", "t", self->successes);
  g_variant_dict_insert (&dict, "failures", "t", self->failures);
  g_variant_dict_insert (&dict, "timeouts", "t", self->timeouts);
  g_variant_dict_insert (&dict, "slow", "t", self->slow);
  g_variant_dict_insert (&dict, "ignored", "t", self->ignored);
  g_variant_dict_insert (&dict, "rejected", "t", self->rejected);
  g_variant_dict_insert (&dict, "stale", "t", self->stale);
  g_variant_dict_insert (&dict, "fallbacks", "t", self->fallbacks);
  g_variant_dict_insert (&dict, "window-volume", "t", calls);
  g_variant_dict_insert (&dict, "window-failures", "t", failures);
  g_variant_dict_insert (&dict, "window-slow", "t", slow);
  g_variant_dict_insert (&dict, "error-rate", "d",
                         calls > 0 ? 100.0 * (double) failures / (double) calls : 0.0);
  g_variant_dict_insert (&dict, "p50-us", "x", percentile_locked (hist, total, 0.50));
  g_variant_dict_insert (&dict, "p90-us", "x", percentile_locked (hist, total, 0.90));
  g_variant_dict_insert (&dict, "p99-us", "x", percentile_locked (hist, total, 0.99));
  g_variant_dict_insert (&dict, "opened-at", "x", self->opened_at);
  g_variant_dict_insert (&dict, "retry-after-ms", "x", us_to_ms_ceil (retry_after_us));
  g_variant_dict_insert (&dict, "open-duration-ms", "x", self->open_duration_us / 1000);
  g_variant_dict_insert (&dict, "half-open-in-flight", "u",
                         self->state == BP_BREAKER_HALF_OPEN
                         ? self->half_open_admitted - self->half_open_successes : 0);

  g_mutex_unlock (&self->mutex);

  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

/**
 * bp_breaker_export_state:
 * @self: a #BpBreaker
 *
 * Exports what must survive a restart, as an `a{sv}`: `version` u (1),
 * `mode` s, `state` s (`closed` or `open`; HALF_OPEN is exported as `open`
 * with nothing left to wait), `open-remaining-ms` x, `open-duration-ms` x
 * (the grown open duration), and `exported-at-realtime-us` x (wall clock,
 * g_get_real_time()). Window counts are not exported.
 *
 * Returns: (transfer full): a new, non-floating #GVariant
 */
GVariant *
bp_breaker_export_state (BpBreaker *self)
{
  GVariantDict dict;
  gint64 now;
  gint64 remaining_us = 0;
  gboolean open;

  g_return_val_if_fail (BP_IS_BREAKER (self), NULL);

  now = bp_clock_get_time (self->clock);
  g_variant_dict_init (&dict, NULL);

  g_mutex_lock (&self->mutex);
  open = self->state != BP_BREAKER_CLOSED;
  if (self->state == BP_BREAKER_OPEN && self->mode == BP_BREAKER_MODE_NORMAL)
    remaining_us = MAX (0, self->open_until - now);
  g_variant_dict_insert (&dict, "version", "u", EXPORT_VERSION);
  g_variant_dict_insert (&dict, "mode", "s", mode_nick (self->mode));
  g_variant_dict_insert (&dict, "state", "s", open ? "open" : "closed");
  g_variant_dict_insert (&dict, "open-remaining-ms", "x", us_to_ms_ceil (remaining_us));
  g_variant_dict_insert (&dict, "open-duration-ms", "x", self->open_duration_us / 1000);
  g_mutex_unlock (&self->mutex);

  g_variant_dict_insert (&dict, "exported-at-realtime-us", "x", g_get_real_time ());
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

static gboolean
lookup_mode (const char    *nick,
             BpBreakerMode *mode)
{
  for (BpBreakerMode m = BP_BREAKER_MODE_NORMAL; m <= BP_BREAKER_MODE_METRICS_ONLY; m++)
    if (g_strcmp0 (nick, mode_nick (m)) == 0)
      {
        *mode = m;
        return TRUE;
      }
  return FALSE;
}

/**
 * bp_breaker_import_state:
 * @self: a #BpBreaker
 * @state: an `a{sv}` from bp_breaker_export_state()
 * @error: return location for a %BP_ERROR_INVALID_ARGUMENT error
 *
 * Restores an exported state: the mode, and an OPEN breaker with the time it
 * had left, minus the wall-clock time since the export (a restart's
 * downtime counts), and its grown open duration (clamped between
 * #BpBreaker:open-ms and #BpBreaker:open-max-ms). An exported OPEN state is
 * restored only in mode NORMAL; otherwise the state follows the mode. Emits
 * [signal@Bp.Breaker::state-changed] if the state changes and notifies
 * [property@Bp.Breaker:mode] if the mode does. The window starts empty;
 * the totals are kept. Outcomes of calls admitted before are stale.
 *
 * Returns: %TRUE on success; on error nothing changes
 */
gboolean
bp_breaker_import_state (BpBreaker  *self,
                         GVariant   *state,
                         GError    **error)
{
  Pending pending = { 0, };
  GVariantDict dict;
  guint32 version = 0;
  const char *mode_str = NULL;
  const char *state_str = NULL;
  gint64 remaining_ms = 0;
  gint64 duration_ms = 0;
  gint64 exported_at = 0;
  BpBreakerMode mode;
  gboolean open;
  gint64 now;

  g_return_val_if_fail (BP_IS_BREAKER (self), FALSE);
  g_return_val_if_fail (state != NULL, FALSE);

  if (!g_variant_is_of_type (state, G_VARIANT_TYPE_VARDICT))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "Breaker state must be of type a{sv}, not %s",
                   g_variant_get_type_string (state));
      return FALSE;
    }

  g_variant_dict_init (&dict, state);
  if (!g_variant_dict_lookup (&dict, "version", "u", &version) || version != EXPORT_VERSION)
    {
      g_variant_dict_clear (&dict);
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "Breaker state: unsupported or missing version (%u)", version);
      return FALSE;
    }
  if (!g_variant_dict_lookup (&dict, "mode", "&s", &mode_str) || !lookup_mode (mode_str, &mode) ||
      !g_variant_dict_lookup (&dict, "state", "&s", &state_str) ||
      (g_strcmp0 (state_str, "open") != 0 && g_strcmp0 (state_str, "closed") != 0))
    {
      g_variant_dict_clear (&dict);
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "Breaker state: missing or invalid mode or state");
      return FALSE;
    }
  g_variant_dict_lookup (&dict, "open-remaining-ms", "x", &remaining_ms);
  g_variant_dict_lookup (&dict, "open-duration-ms", "x", &duration_ms);
  g_variant_dict_lookup (&dict, "exported-at-realtime-us", "x", &exported_at);
  open = g_strcmp0 (state_str, "open") == 0;
  g_variant_dict_clear (&dict);

  if (exported_at > 0)
    {
      gint64 downtime_ms = (g_get_real_time () - exported_at) / 1000;

      if (downtime_ms > 0)
        remaining_ms -= downtime_ms;
    }
  remaining_ms = CLAMP (remaining_ms, 0, (gint64) MAX_DURATION_MS);

  now = bp_clock_get_time (self->clock);
  g_mutex_lock (&self->mutex);
  /* One transition at most, straight to the imported state. */
  pending.mode_changed = self->mode != mode;
  self->mode = mode;
  window_clear_locked (self);
  self->would_open_latched = FALSE;
  if (mode == BP_BREAKER_MODE_FORCED_OPEN)
    transition_locked (self, BP_BREAKER_OPEN, now, &pending);
  else if (open && mode == BP_BREAKER_MODE_NORMAL)
    {
      self->open_duration_us = CLAMP (duration_ms * 1000, (gint64) self->open_ms * 1000,
                                      open_max_us (self));
      transition_locked (self, BP_BREAKER_OPEN, now, &pending);
      self->open_until = now + remaining_ms * 1000;
    }
  else
    transition_locked (self, BP_BREAKER_CLOSED, now, &pending);
  g_mutex_unlock (&self->mutex);

  emit_pending (self, &pending);
  return TRUE;
}
