/* bp-shell-process-object.h: the per-client org.backplane.Backplane1.Process object
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

#include "bp-shell-process.h"

G_BEGIN_DECLS

#define BP_TYPE_SHELL_PROCESS_OBJECT (bp_shell_process_object_get_type ())

G_DECLARE_FINAL_TYPE (BpShellProcessObject, bp_shell_process_object, BP, SHELL_PROCESS_OBJECT, GDBusInterfaceSkeleton)

BpShellProcessObject *bp_shell_process_object_new         (BpHost               *host,
                                                           BpShellProcess       *process,
                                                           const char           *owner,
                                                           BpClock              *clock,
                                                           gint64                linger_us);
gboolean              bp_shell_process_object_export      (BpShellProcessObject *self,
                                                           GError              **error);
void                  bp_shell_process_object_release     (BpShellProcessObject *self);
const char           *bp_shell_process_object_get_path    (BpShellProcessObject *self);
const char           *bp_shell_process_object_get_owner   (BpShellProcessObject *self);
BpShellProcess       *bp_shell_process_object_get_process (BpShellProcessObject *self);
gboolean              bp_shell_process_object_is_released (BpShellProcessObject *self);

G_END_DECLS
