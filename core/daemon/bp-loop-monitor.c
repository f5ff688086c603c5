/* bp-loop-monitor.c: how long the main loop is kept from polling
 *
 * The monitor wraps the main context's poll function. The time from one
 * poll's return to the next poll's start is the time the loop spent
 * preparing, checking and dispatching: for that long, an event that arrived
 * could not be served. That span is the sample — measured exactly, with no
 * probe timer and so no wake-ups while the daemon is idle.
 *
 * A span over 16 ms is a stall: it is counted and logged with a label of
 * what ran (the daemon passes the D-Bus call dispatched last). Percentiles
 * come from the last 4096 spans. Manager.LoopLag is refreshed at most once a
 * second, from an idle scheduled here after an iteration, never by a timer.
 *
 * The poll function has no user data, so the monitor is process-wide; it is
 * installed on the daemon's main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "bp-loop-monitor.h"

#define N_SAMPLES 4096

static struct
{
  GMainContext           *context;
  GPollFunc               orig_poll;
  BpLoopMonitorLabelFunc  label_func;
  gpointer                label_data;
  GSourceFunc             changed_func;
  gpointer                changed_data;
  gint64                  last_wake;
  gint64                  last_notify;
  guint                   notify_source;
  gint64                  samples[N_SAMPLES];
  guint64                 n_samples;
  gint64                  max_us;
  guint64                 stalls;
} mon;

static gboolean
notify_idle_cb (gpointer user_data)
{
  mon.notify_source = 0;
  if (mon.changed_func != NULL)
    mon.changed_func (mon.changed_data);
  return G_SOURCE_REMOVE;
}

static gint
monitor_poll (GPollFD *fds,
              guint    nfds,
              gint     timeout)
{
  gint64 now = g_get_monotonic_time ();
  gint ret;

  if (mon.last_wake != 0)
    {
      gint64 busy = now - mon.last_wake;

      mon.samples[mon.n_samples % N_SAMPLES] = busy;
      mon.n_samples++;
      if (busy > mon.max_us)
        mon.max_us = busy;
      if (busy > BP_LOOP_STALL_US)
        {
          const char *label = mon.label_func ? mon.label_func (mon.label_data) : NULL;

          mon.stalls++;
          g_message ("main loop stalled for %.1f ms (last dispatched: %s)",
                     busy / 1000.0, label != NULL ? label : "unknown");
        }
      if (mon.changed_func != NULL && mon.notify_source == 0 &&
          now - mon.last_notify >= G_USEC_PER_SEC)
        {
          GSource *idle = g_idle_source_new ();

          mon.last_notify = now;
          g_source_set_priority (idle, G_PRIORITY_LOW);
          g_source_set_callback (idle, notify_idle_cb, NULL, NULL);
          g_source_set_static_name (idle, "[backplaned] loop-lag notify");
          mon.notify_source = g_source_attach (idle, mon.context);
          g_source_unref (idle);
        }
    }
  ret = mon.orig_poll (fds, nfds, timeout);
  mon.last_wake = g_get_monotonic_time ();
  return ret;
}

void
bp_loop_monitor_install (GMainContext           *context,
                         BpLoopMonitorLabelFunc  label_func,
                         gpointer                user_data)
{
  g_return_if_fail (mon.context == NULL);

  mon.context = g_main_context_ref (context);
  mon.orig_poll = g_main_context_get_poll_func (context);
  mon.label_func = label_func;
  mon.label_data = user_data;
  g_main_context_set_poll_func (context, monitor_poll);
}

void
bp_loop_monitor_set_changed_func (GSourceFunc func,
                                  gpointer    user_data)
{
  mon.changed_func = func;
  mon.changed_data = user_data;
}

void
bp_loop_monitor_uninstall (void)
{
  if (mon.context == NULL)
    return;
  g_main_context_set_poll_func (mon.context, mon.orig_poll);
  if (mon.notify_source != 0)
    {
      GSource *s = g_main_context_find_source_by_id (mon.context, mon.notify_source);
      if (s != NULL)
        g_source_destroy (s);
    }
  g_clear_pointer (&mon.context, g_main_context_unref);
  mon.notify_source = 0;
  mon.changed_func = NULL;
}

static int
compare_gint64 (const void *a,
                const void *b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;

  return (x > y) - (x < y);
}

guint64
bp_loop_monitor_get_stalls (void)
{
  return mon.stalls;
}

/**
 * bp_loop_monitor_dup_stats:
 *
 * Returns: (transfer full): `a{sv}` p50-us, p99-us, max-us (x), samples,
 *   stalls-over-16ms (t)
 */
GVariant *
bp_loop_monitor_dup_stats (void)
{
  guint n = (guint) MIN (mon.n_samples, N_SAMPLES);
  g_autofree gint64 *sorted = g_new (gint64, MAX (n, 1));
  gint64 p50 = 0, p99 = 0;
  GVariantBuilder b;

  memcpy (sorted, mon.samples, n * sizeof (gint64));
  if (n > 0)
    {
      qsort (sorted, n, sizeof (gint64), compare_gint64);
      p50 = sorted[(guint) (0.50 * (n - 1))];
      p99 = sorted[(guint) (0.99 * (n - 1))];
    }
  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "p50-us", g_variant_new_int64 (p50));
  g_variant_builder_add (&b, "{sv}", "p99-us", g_variant_new_int64 (p99));
  g_variant_builder_add (&b, "{sv}", "max-us", g_variant_new_int64 (mon.max_us));
  g_variant_builder_add (&b, "{sv}", "samples", g_variant_new_uint64 (mon.n_samples));
  g_variant_builder_add (&b, "{sv}", "stalls-over-16ms", g_variant_new_uint64 (mon.stalls));
  return g_variant_ref_sink (g_variant_builder_end (&b));
}
