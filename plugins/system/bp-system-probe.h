/* bp-system-probe.h: reading /proc and statvfs() (blocking: worker threads only)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct
{
  guint64 busy;   /* clock ticks spent not idle, all CPUs */
  guint64 total;  /* all clock ticks, all CPUs */
} BpSystemCpuSample;

typedef enum
{
  BP_SYSTEM_SORT_PID,
  BP_SYSTEM_SORT_RSS,
  BP_SYSTEM_SORT_CPU,
} BpSystemSort;

#define BP_SYSTEM_MAX_PROCESSES 10000

gboolean  bp_system_probe_cpu        (BpSystemCpuSample        *sample,
                                      GError                  **error);
GVariant *bp_system_probe_status     (const BpSystemCpuSample  *previous,
                                      BpSystemCpuSample        *current,
                                      GError                  **error);
GVariant *bp_system_probe_disks      (GError                  **error);
GVariant *bp_system_probe_processes  (guint                     limit,
                                      BpSystemSort              sort,
                                      gint64                    only_uid,
                                      GError                  **error);
char     *bp_system_unescape_mount   (const char               *field);

G_END_DECLS
