/* bp-loop-monitor.h: how long the main loop is kept from polling
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BP_LOOP_STALL_US (16 * 1000)

typedef const char *(*BpLoopMonitorLabelFunc) (gpointer user_data);

void      bp_loop_monitor_install   (GMainContext           *context,
                                     BpLoopMonitorLabelFunc  label_func,
                                     gpointer                user_data);
void      bp_loop_monitor_uninstall (void);
GVariant *bp_loop_monitor_dup_stats (void);
guint64   bp_loop_monitor_get_stalls (void);
void      bp_loop_monitor_set_changed_func (GSourceFunc func,
                                            gpointer    user_data);

G_END_DECLS
