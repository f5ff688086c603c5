/* bp-daemon.h: backplaned — bus name, Manager, backends, lifecycle
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_TYPE_DAEMON (bp_daemon_get_type ())

G_DECLARE_FINAL_TYPE (BpDaemon, bp_daemon, BP, DAEMON, GObject)

BpDaemon *bp_daemon_new (const char *config_path,
                         const char *address,
                         gboolean    replace);
int       bp_daemon_run (BpDaemon   *self);

G_END_DECLS
