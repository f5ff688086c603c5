/* bp-clock.h: injectable monotonic clock and seeded random numbers
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#include <gio/gio.h>

#include "bp-version-macros.h"

G_BEGIN_DECLS

#define BP_TYPE_CLOCK (bp_clock_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpClock, bp_clock, BP, CLOCK, GObject)

BP_AVAILABLE_IN_ALL
BpClock  *bp_clock_get_default         (void);
BP_AVAILABLE_IN_ALL
BpClock  *bp_clock_new_manual          (gint64        start_us,
                                        guint32       seed);
BP_AVAILABLE_IN_ALL
gboolean  bp_clock_is_manual           (BpClock      *self);
BP_AVAILABLE_IN_ALL
gint64    bp_clock_get_time            (BpClock      *self);
BP_AVAILABLE_IN_ALL
void      bp_clock_advance             (BpClock      *self,
                                        gint64        delta_us);
BP_AVAILABLE_IN_ALL
void      bp_clock_set_seed            (BpClock      *self,
                                        guint32       seed);
BP_AVAILABLE_IN_ALL
double    bp_clock_random_double       (BpClock      *self);
BP_AVAILABLE_IN_ALL
gint64    bp_clock_random_range        (BpClock      *self,
                                        gint64        begin,
                                        gint64        end);
BP_AVAILABLE_IN_ALL
GSource  *bp_clock_timeout_source_new  (BpClock      *self,
                                        gint64        delay_us);
BP_AVAILABLE_IN_ALL
guint     bp_clock_timeout_add         (BpClock      *self,
                                        gint64        delay_us,
                                        GSourceFunc   func,
                                        gpointer      user_data,
                                        GDestroyNotify notify);
BP_AVAILABLE_IN_ALL
guint     bp_clock_get_n_pending       (BpClock      *self);

G_END_DECLS
