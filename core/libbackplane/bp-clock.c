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
 * Returns: (transfer full): a clock that moves only through bp_clock_advance()
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
 * iteration of their context.
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
 * @end: upper bound, inclusive
 *
 * Returns: a uniformly distributed integer in [@begin, @end]
 */
gint64
bp_clock_random_range (BpClock *self,
                       gint64   begin,
                       gint64   end)
{
  double r;

  g_return_val_if_fail (BP_IS_CLOCK (self), begin);

  if (end <= begin)
    return begin;
  r = bp_clock_random_double (self);
  /* The product stays within [0, end-begin] in double precision for every
   * span a delay can have; clamp against rounding at the top. */
  return MIN (end, begin + (gint64) (r * ((double) (end - begin) + 1.0)));
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
 * @delay_us. If its callback returns %G_SOURCE_CONTINUE it re-arms with the
 * same delay.
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
 * @delay_us: delay in microseconds
 * @func: the callback
 * @user_data: data for @func
 * @notify: (nullable): destroys @user_data
 *
 * Like g_timeout_add_full() at default priority, attached to the
 * thread-default main context, but on this clock.
 *
 * Returns: the source id
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
 * Returns: the number of timeout sources of this clock that are alive (for
 *   tests that assert nothing is left armed)
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
