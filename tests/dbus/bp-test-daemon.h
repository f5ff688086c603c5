/* bp-test-daemon.h: backplaned from the build tree on a private bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "../common/bp-test-bus.h"

G_BEGIN_DECLS

typedef struct
{
  BpTestBus       *bus;
  char            *address;
  GDBusConnection *connection;   /* the test's own connection */
  GSubprocess     *daemon;       /* (nullable) once exited */
  char            *tmpdir;
  char            *config_path;
  char            *unique_name;  /* the daemon's unique bus name */
  guint32          pid;
} BpTestDaemon;

BpTestDaemon *bp_test_daemon_new            (const char    *config_text);
BpTestDaemon *bp_test_daemon_new_full       (const char    *config_text,
                                             const char    *extra_plugin_path,
                                             gboolean       wait_for_name);
void          bp_test_daemon_write_config   (BpTestDaemon  *t,
                                             const char    *config_text);
void          bp_test_daemon_signal         (BpTestDaemon  *t,
                                             int            signum);
int           bp_test_daemon_wait_exit      (BpTestDaemon  *t);
void          bp_test_daemon_free           (BpTestDaemon  *t);
GVariant     *bp_test_daemon_call           (BpTestDaemon  *t,
                                             const char    *path,
                                             const char    *method,
                                             GVariant      *params,
                                             const char    *reply_type,
                                             GError       **error);
GVariant     *bp_test_daemon_get_property   (BpTestDaemon  *t,
                                             const char    *path,
                                             const char    *interface,
                                             const char    *property);
char         *bp_test_daemon_backend_state  (BpTestDaemon  *t,
                                             const char    *name,
                                             char         **reason);
gboolean      bp_test_wait_until            (gboolean     (*condition) (gpointer),
                                             gpointer       data,
                                             guint          timeout_ms);
guint         bp_test_count_fds             (guint32        pid);
double        bp_test_daemon_metric         (BpTestDaemon  *t,
                                             const char    *series);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpTestDaemon, bp_test_daemon_free)

G_END_DECLS
