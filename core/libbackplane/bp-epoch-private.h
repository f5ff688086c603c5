/* bp-epoch-private.h: which bucket of a time ring a clock time falls in
 *
 * The breaker's rolling window and the retry budget both keep N buckets of
 * a fixed width indexed by `floor(time / width)`, in a ring of N slots.
 * BpEpoch caches the current bucket's bounds, so the common case (many
 * calls within one bucket) costs two comparisons instead of four 64-bit
 * divisions. Not thread-safe: callers hold their own lock.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  gint64 width;   /* > 0 */
  guint  n;       /* slots in the ring, > 0 */
  gint64 epoch;   /* the cached bucket index */
  gint64 start;   /* its first time; G_MAXINT64 while nothing is cached */
  guint  slot;    /* epoch mod n, in [0, n) */
} BpEpoch;

static inline void
bp_epoch_init (BpEpoch *e,
               gint64   width,
               guint    n)
{
  g_assert (width > 0 && n > 0);
  e->width = width;
  e->n = n;
  e->epoch = 0;
  e->start = G_MAXINT64;
  e->slot = 0;
}

/* floor (a / b) for b > 0, also for negative a */
static inline gint64
bp_floor_div (gint64 a,
              gint64 b)
{
  gint64 q = a / b;

  return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Returns the bucket index of @now and sets *@slot to its ring slot. */
static inline gint64
bp_epoch_at (BpEpoch *e,
             gint64   now,
             guint   *slot)
{
  if (G_UNLIKELY (now < e->start || now - e->start >= e->width))
    {
      gint64 m;

      e->epoch = bp_floor_div (now, e->width);
      e->start = e->epoch * e->width;
      m = e->epoch % (gint64) e->n;
      e->slot = (guint) (m < 0 ? m + e->n : m);
    }
  if (slot != NULL)
    *slot = e->slot;
  return e->epoch;
}

G_END_DECLS
