/* bp-test-bus.h: a private dbus-daemon for tests, without GTestDBus
 *
 * GTestDBus forks a watcher copy of the test process (fork without exec).
 * When the test already runs threads — GDBus workers, GTask pools — that
 * copy can deadlock on a lock another thread held, and g_test_dbus_up()
 * then waits for it forever (seen under load and under ASan). This helper
 * only spawns dbus-daemon (fork + exec), reads the address it prints, and
 * ties its life to the test's with PR_SET_PDEATHSIG.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>
#include <signal.h>
#include <sys/prctl.h>

typedef struct
{
  GSubprocess     *daemon;
  char            *address;
  GDBusConnection *session;   /* the process's session-bus singleton */
} BpTestBus;

static void
bp_test_bus_child_setup (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* Starts the bus and points DBUS_SESSION_BUS_ADDRESS at it. */
static inline BpTestBus *
bp_test_bus_up (void)
{
  g_autoptr(GSubprocessLauncher) launcher =
    g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_SILENCE);
  g_autoptr(GDataInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  BpTestBus *bus = g_new0 (BpTestBus, 1);

  g_subprocess_launcher_set_child_setup (launcher, bp_test_bus_child_setup, NULL, NULL);
  bus->daemon = g_subprocess_launcher_spawn (launcher, &error, "dbus-daemon", "--session", "--nofork",
                                             "--nopidfile", "--print-address=1", NULL);
  g_assert_no_error (error);
  in = g_data_input_stream_new (g_subprocess_get_stdout_pipe (bus->daemon));
  bus->address = g_data_input_stream_read_line (in, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (bus->address);
  g_strstrip (bus->address);
  g_setenv ("DBUS_SESSION_BUS_ADDRESS", bus->address, TRUE);
  /* Libraries may open the shared session-bus connection behind our back
   * (GSettings/dconf via a proxy resolver, for one). Its exit-on-close
   * would raise SIGTERM in this process when the bus goes down: take that
   * singleton now and turn it off, as GTestDBus does. */
  bus->session = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  g_dbus_connection_set_exit_on_close (bus->session, FALSE);
  return bus;
}

static inline const char *
bp_test_bus_get_address (BpTestBus *bus)
{
  return bus->address;
}

static inline void
bp_test_bus_down (BpTestBus *bus)
{
  if (bus == NULL)
    return;
  g_unsetenv ("DBUS_SESSION_BUS_ADDRESS");
  g_dbus_connection_close_sync (bus->session, NULL, NULL);
  g_clear_object (&bus->session);
  g_subprocess_send_signal (bus->daemon, SIGTERM);
  g_subprocess_wait (bus->daemon, NULL, NULL);
  g_clear_object (&bus->daemon);
  g_free (bus->address);
  g_free (bus);
}
