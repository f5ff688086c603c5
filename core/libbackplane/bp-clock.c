/* bp-clock.c: injectable monotonic clock and seeded random numbers
 *
 * Every time-based helper of libbackplane (retry sleeps, breaker windows,
 * pool timeouts, dead-letter schedules) reads time and arms timers through a
 * BpClock. The default clock is g_get_monotonic_time() with a randomly seeded
 * RNG. A manual clock only moves when a test calls bp_clock_advance(), and its
 * timeout sources become ready exactly then, so tests are deterministic and
 * never sleep.
 *
 * Thread safety: all functions may be called from any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-clock.h"

/**
 * BpClock:
 *
 * Monotonic time, timeout sources and seeded random numbers, replaceable
 * by a manual clock for deterministic tests.
 *
 * Every time-based helper of libbackplane (retry sleeps, breaker windows,
 * pool timeouts, dead-letter schedules) reads the time, arms timers and
 * draws jitter through a clock, and so should backends, with the clock of
 * [method@Bp.Host.get_clock].
 *
 * The default clock ([func@Bp.Clock.get_default]) is
 * g_get_monotonic_time() with a randomly seeded RNG. A manual clock
 * ([ctor@Bp.Clock.new_manual]) starts at a given time with a given seed and
 * moves only when a test calls [method@Bp.Clock.advance]; its timeout
 * sources ([method@Bp.Clock.timeout_source_new],
 * [method@Bp.Clock.timeout_add]) become ready exactly then. Tests are thus
 * deterministic and never sleep, and [method@Bp.Clock.get_n_pending] tells
 * whether a timer is left armed.
 *
 * All functions may be called from any thread.
 */
struct _BpClock
{
  GObject     parent_instance;

  GMutex      mutex;
  GRand      *rand;          /* (owned), under mutex */
  gint64      manual_now;    /* under mutex; only for manual clocks */
  GHashTable *sources;       /* (element-type BpClockSource) not owned, under mutex */
  guint       manual : 1;
};

G_DEFINE_FINAL_TYPE (BpClock, bp_clock, G_TYPE_OBJECT)

typedef struct
{
  GSource  source;
  BpClock *clock;      /* (owned) */
  gint64   deadline;   /* in the clock's time base */
  gint64   interval;
} BpClockSource;

static void
bp_clock_finalize (GObject *object)
{
  BpClock *self = BP_CLOCK (object);

  g_clear_pointer (&self->rand, g_rand_free);
  g_clear_pointer (&self->sources, g_hash_table_unref);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (bp_clock_parent_class)->finalize (object);
}

static void
bp_clock_class_init (BpClockClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bp_clock_finalize;
}

static void
bp_clock_init (BpClock *self)
{
  g_mutex_init (&self->mutex);
  self->rand = g_rand_new ();
  self->sources = g_hash_table_new (NULL, NULL);
}

/**
 * bp_clock_get_default:
 *
 * Returns the process-wide real clock: g_get_monotonic_time() and an RNG
 * seeded from the system. It is created on first use and never freed.
 *
 * Returns: (transfer none): the process-wide real clock
 */
BpClock *
bp_clock_get_default (void)
{
  static gsize default_clock;

  if (g_once_init_enter (&default_clock))
    {
      BpClock *clock = g_object_new (BP_TYPE_CLOCK, NULL);
      g_once_init_leave (&default_clock, (gsize) clock);
    }
  return (BpClock *) default_clock;
}

/**
 * bp_clock_new_manual:
 * @start_us: the initial time, in microseconds
 * @seed: the RNG seed; the same seed gives the same sequence
 *
 * Creates a clock for tests: its time moves only through
 * [method@Bp.Clock.advance], its timeout sources fire only then, and its
 * random numbers repeat for the same @seed.
 *
 * Returns: (transfer full): a new manual clock
 */
BpClock *
bp_clock_new_manual (gint64  start_us,
                     guint32 seed)
{
  BpClock *self = g_object_new (BP_TYPE_CLOCK, NULL);

  self->manual = TRUE;
  self->manual_now = start_us;
  g_rand_set_seed (self->rand, seed);
  return self;
}

/**
 * bp_clock_is_manual:
 * @self: a #BpClock
 *
 * Tells whether @self was made with [ctor@Bp.Clock.new_manual].
 *
 * Returns: %TRUE for a manual clock, %FALSE for a real one
 */
gboolean
bp_clock_is_manual (BpClock *self)
{
  g_return_val_if_fail (BP_IS_CLOCK (self), FALSE);
  return self->manual;
}

/**
 * bp_clock_get_time:
 * @self: a #BpClock
 *
 * Reads the clock: g_get_monotonic_time() for a real clock; the start time
 * plus every advance so far for a manual one. Compare it only with other
 * readings of the same clock.
 *
 * Returns: the monotonic time in microseconds
 */
gint64
bp_clock_get_time (BpClock *self)
{
  gint64 now;

  g_return_val_if_fail (BP_IS_CLOCK (self), 0);

  if (!self->manual)
    return g_get_monotonic_time ();
  g_mutex_lock (&self->mutex);
  now = self->manual_now;
  g_mutex_unlock (&self->mutex);
  return now;
}

/**
 * bp_clock_advance:
 * @self: a manual #BpClock
 * @delta_us: how far to move, >= 0
 *
 * Moves a manual clock forward and wakes every main context that has one of
 * its timeout sources attached; sources that are now due dispatch on the next
 * iteration of their context (a test runs g_main_context_iteration()).
 * Calling it on a real clock is a programming error.
 */
void
bp_clock_advance (BpClock *self,
                  gint64   delta_us)
{
  g_autoptr(GPtrArray) contexts = g_ptr_array_new_with_free_func ((GDestroyNotify) g_main_context_unref);
  GHashTableIter iter;
  gpointer key;

  g_return_if_fail (BP_IS_CLOCK (self));
  g_return_if_fail (self->manual);
  g_return_if_fail (delta_us >= 0);

  g_mutex_lock (&self->mutex);
  self->manual_now += delta_us;
  g_hash_table_iter_init (&iter, self->sources);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    {
      GMainContext *context = g_source_get_context (key);

      if (context != NULL && !g_ptr_array_find (contexts, context, NULL))
        g_ptr_array_add (contexts, g_main_context_ref (context));
    }
  g_mutex_unlock (&self->mutex);

  for (guint i = 0; i < contexts->len; i++)
    g_main_context_wakeup (g_ptr_array_index (contexts, i));
}

/**
 * bp_clock_set_seed:
 * @self: a #BpClock
 * @seed: the new RNG seed
 *
 * Reseeds the clock's random number generator, so that the numbers drawn
 * afterwards repeat for the same @seed. This also works on the default
 * clock, which the whole process shares.
 */
void
bp_clock_set_seed (BpClock *self,
                   guint32  seed)
{
  g_return_if_fail (BP_IS_CLOCK (self));

  g_mutex_lock (&self->mutex);
  g_rand_set_seed (self->rand, seed);
  g_mutex_unlock (&self->mutex);
}

/**
 * bp_clock_random_double:
 * @self: a #BpClock
 *
 * Draws the next number from the clock's RNG (one #GRand, behind a lock).
 *
 * Returns: a uniformly distributed number in [0, 1)
 */
double
bp_clock_random_double (BpClock *self)
{
  double r;

  g_return_val_if_fail (BP_IS_CLOCK (self), 0.0);

  g_mutex_lock (&self->mutex);
  r = g_rand_double (self->rand);
  g_mutex_unlock (&self->mutex);
  return r;
}

/**
 * bp_clock_random_range:
 * @self: a #BpClock
 * @begin: lower bound, inclusive
 * @end: upper bound, inclusive; any span is fine, even one wider than
 *   %G_MAXINT64
 *
 * Draws a random integer, such as a jittered delay, from the clock's RNG.
 * When @end is not above @begin, returns @begin without drawing.
 *
 * Returns: a uniformly distributed integer in [@begin, @end]
 */
gint64
bp_clock_random_range (BpClock *self,
                       gint64   begin,
                       gint64   end)
{
  double r;
  double offset;
  guint64 span;

  g_return_val_if_fail (BP_IS_CLOCK (self), begin);

  if (end <= begin)
    return begin;
  r = bp_clock_random_double (self);
  /* The span is computed unsigned: end - begin can exceed G_MAXINT64. The
   * product stays within [0, span] up to double rounding; clamp against it
   * at the top. */
  span = (guint64) end - (guint64) begin;
  offset = r * ((double) span + 1.0);
  if (offset >= (double) span)
    return end;
  return (gint64) ((guint64) begin + (guint64) offset);
}

static gboolean
bp_clock_source_prepare (GSource *source,
                         gint    *timeout)
{
  BpClockSource *cs = (BpClockSource *) source;

  *timeout = -1;
  return bp_clock_get_time (cs->clock) >= cs->deadline;
}

static gboolean
bp_clock_source_check (GSource *source)
{
  BpClockSource *cs = (BpClockSource *) source;

  return bp_clock_get_time (cs->clock) >= cs->deadline;
}

static gboolean
bp_clock_source_dispatch (GSource    *source,
                          GSourceFunc callback,
                          gpointer    user_data)
{
  BpClockSource *cs = (BpClockSource *) source;
  gboolean again;

  if (callback == NULL)
    return G_SOURCE_REMOVE;
  again = callback (user_data);
  if (again)
    {
      cs->deadline = bp_clock_get_time (cs->clock) + cs->interval;
      if (!cs->clock->manual)
        g_source_set_ready_time (source, cs->deadline);
    }
  return again;
}

static void
bp_clock_source_finalize (GSource *source)
{
  BpClockSource *cs = (BpClockSource *) source;

  g_mutex_lock (&cs->clock->mutex);
  g_hash_table_remove (cs->clock->sources, cs);
  g_mutex_unlock (&cs->clock->mutex);
  g_clear_object (&cs->clock);
}

static GSourceFuncs bp_clock_source_funcs = {
  bp_clock_source_prepare,
  bp_clock_source_check,
  bp_clock_source_dispatch,
  bp_clock_source_finalize,
};

/* The real clock needs no prepare/check: the ready time does the work. */
static GSourceFuncs bp_clock_real_source_funcs = {
  NULL,
  NULL,
  bp_clock_source_dispatch,
  bp_clock_source_finalize,
};

/**
 * bp_clock_timeout_source_new:
 * @self: a #BpClock
 * @delay_us: delay in microseconds from now (negative counts as 0)
 *
 * Creates a #GSource that becomes ready once the clock has advanced by
 * @delay_us, counted from this call. If its callback returns
 * %G_SOURCE_CONTINUE it re-arms with the same delay, counted from the end
 * of the callback. On a real clock it is a ready-time source, as cheap as
 * g_timeout_source_new(); on a manual clock it fires only after
 * [method@Bp.Clock.advance]. The source keeps a reference to @self; set a
 * callback and attach it to the context it should run in.
 *
 * Returns: (transfer full): a new unattached #GSource
 */
GSource *
bp_clock_timeout_source_new (BpClock *self,
                             gint64   delay_us)
{
  GSource *source;
  BpClockSource *cs;

  g_return_val_if_fail (BP_IS_CLOCK (self), NULL);

  delay_us = MAX (delay_us, 0);
  source = g_source_new (self->manual ? &bp_clock_source_funcs : &bp_clock_real_source_funcs,
                         sizeof (BpClockSource));
  g_source_set_static_name (source, "[backplane] BpClock timeout");
  cs = (BpClockSource *) source;
  cs->clock = g_object_ref (self);
  cs->interval = delay_us;
  cs->deadline = bp_clock_get_time (self) + delay_us;
  if (!self->manual)
    g_source_set_ready_time (source, cs->deadline);

  g_mutex_lock (&self->mutex);
  g_hash_table_add (self->sources, cs);
  g_mutex_unlock (&self->mutex);

  return source;
}

/**
 * bp_clock_timeout_add:
 * @self: a #BpClock
 * @delay_us: delay in microseconds (negative counts as 0)
 * @func: (scope notified): the callback; returning %G_SOURCE_CONTINUE runs
 *   it again after the same delay
 * @user_data: data for @func
 * @notify: (nullable): destroys @user_data
 *
 * Like g_timeout_add_full() at default priority, but on this clock (see
 * [method@Bp.Clock.timeout_source_new]) and attached to the calling
 * thread's thread-default main context, where @func runs.
 *
 * Returns: the source id within that context. g_source_remove() only finds
 *   ids of the global default context; elsewhere destroy the source found
 *   with g_main_context_find_source_by_id().
 */
guint
bp_clock_timeout_add (BpClock        *self,
                      gint64          delay_us,
                      GSourceFunc     func,
                      gpointer        user_data,
                      GDestroyNotify  notify)
{
  g_autoptr(GSource) source = NULL;

  g_return_val_if_fail (BP_IS_CLOCK (self), 0);
  g_return_val_if_fail (func != NULL, 0);

  source = bp_clock_timeout_source_new (self, delay_us);
  g_source_set_callback (source, func, user_data, notify);
  return g_source_attach (source, g_main_context_get_thread_default ());
}

/**
 * bp_clock_get_n_pending:
 * @self: a #BpClock
 *
 * Counts the timeout sources of this clock that exist and are not
 * destroyed, attached or not. Tests assert that it drops back to 0, i.e.
 * that nothing is left armed.
 *
 * Returns: the number of live timeout sources of this clock
 */
guint
bp_clock_get_n_pending (BpClock *self)
{
  guint n = 0;
  GHashTableIter iter;
  gpointer key;

  g_return_val_if_fail (BP_IS_CLOCK (self), 0);

  g_mutex_lock (&self->mutex);
  g_hash_table_iter_init (&iter, self->sources);
  while (g_hash_table_iter_next (&iter, &key, NULL))
    if (!g_source_is_destroyed (key))
      n++;
  g_mutex_unlock (&self->mutex);
  return n;
}
