/* bench-dbus.c: backplaned's control-plane cost against a minimal GDBus service
 *
 * The foundation benchmark of the daemon (ipc.md §8 scenario 15). In one
 * run, on one private dbus-daemon, it starts
 *
 *  - backplaned from the build tree with a `system` and an `echo` backend,
 *  - the baseline: this same program re-executed with --echo-service, a
 *    minimal GDBus service that registers org.backplane.Backplane1.Backend
 *    at the same object path with g_dbus_connection_register_object (no
 *    codegen, no object manager, no authorization hook) and answers Ping()
 *    with an empty reply,
 *
 * and drives both with the same client code: Backend.Ping sequentially and
 * with 16 calls in flight, in interleaved round pairs (A B, B A, A B …) so
 * drift and noise hit both alike. µs/call are medians over rounds; a ratio is
 * the median of the per-pair ratios. Next to the wall-clock cost per call it
 * prints the CPU time each server process spent per call and how often its
 * threads were scheduled in (all threads, from /proc/PID/task/TID/schedstat):
 * that is what the daemon adds, and far less noisy than latency on a small VM.
 * Then it runs the same comparison again with every process involved (bus,
 * both services, this client) pinned to CPU 0: cross-CPU wake-ups, which
 * dominate a round trip on a 2-vCPU VM and make the unpinned ratio swing,
 * are gone, and what is left is the work each side does per call.
 *
 * It also reports backplaned's own Manager.LoopLag over the load, the idle
 * RSS of both services, and the time from spawn to the bus name being owned
 * (median of several starts each). It asserts nothing about time: it exits
 * 0 unless something breaks, then 1 with a message. Every process it starts
 * is killed on exit, on error, and (PR_SET_PDEATHSIG) if this program dies.
 *
 * Options: --rounds N (round pairs), --calls N (per sequential round;
 * 16-in-flight rounds use 4×N), --starts N. `bench-dbus --echo-service
 * ADDRESS` is the baseline service itself.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#define _GNU_SOURCE /* sched_setaffinity, CPU_SET */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib-unix.h>

#include "bench-common.h"

#define DAEMON_NAME   BENCH_BUS_NAME
#define ECHO_NAME     "org.backplane.BenchEcho1"
#define PING_PATH     "/org/backplane/Backplane1/backend/echo"
#define BACKEND_IFACE "org.backplane.Backplane1.Backend"

#define IN_FLIGHT        16
#define CALL_TIMEOUT_MS  30000
#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS  15000

#define DAEMON_CONFIG \
  "[backend sys]\n" \
  "type=system\n" \
  "[backend echo]\n" \
  "type=echo\n"

/* ------------------------------------------------------------------ */
/* The baseline service (--echo-service)                               */

static const char echo_xml[] =
  "<node>"
  "  <interface name='" BACKEND_IFACE "'>"
  "    <method name='Ping'/>"
  "  </interface>"
  "</node>";

static void
echo_method_call (GDBusConnection       *connection,
                  const char            *sender,
                  const char            *object_path,
                  const char            *interface_name,
                  const char            *method_name,
                  GVariant              *parameters,
                  GDBusMethodInvocation *invocation,
                  gpointer               user_data)
{
  /* GDBus only dispatches methods of the registered interface: Ping. */
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static const GDBusInterfaceVTable echo_vtable = { echo_method_call, NULL, NULL, { 0 } };

static gboolean
echo_quit_cb (gpointer user_data)
{
  g_main_loop_quit (user_data);
  return G_SOURCE_REMOVE;
}

static gboolean echo_name_lost;

static void
echo_name_lost_cb (GDBusConnection *connection,
                   const char      *name,
                   gpointer         user_data)
{
  g_printerr ("bench-dbus --echo-service: lost or could not own %s\n", name);
  echo_name_lost = TRUE;
  g_main_loop_quit (user_data);
}

static int
run_echo_service (const char *address)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(GDBusNodeInfo) node = NULL;
  g_autoptr(GMainLoop) loop = g_main_loop_new (NULL, FALSE);
  guint owner_id;

  connection = g_dbus_connection_new_for_address_sync (address,
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  if (connection == NULL)
    {
      g_printerr ("bench-dbus --echo-service: %s\n", error->message);
      return 1;
    }
  g_dbus_connection_set_exit_on_close (connection, FALSE);
  node = g_dbus_node_info_new_for_xml (echo_xml, &error);
  g_assert_no_error (error);
  if (g_dbus_connection_register_object (connection, PING_PATH, node->interfaces[0],
                                         &echo_vtable, NULL, NULL, &error) == 0)
    {
      g_printerr ("bench-dbus --echo-service: %s\n", error->message);
      return 1;
    }
  owner_id = g_bus_own_name_on_connection (connection, ECHO_NAME, G_BUS_NAME_OWNER_FLAGS_NONE,
                                           NULL, echo_name_lost_cb, loop, NULL);
  g_unix_signal_add (SIGTERM, echo_quit_cb, loop);
  g_unix_signal_add (SIGINT, echo_quit_cb, loop);
  g_main_loop_run (loop);
  g_bus_unown_name (owner_id);
  g_dbus_connection_flush_sync (connection, NULL, NULL);
  return echo_name_lost ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Targets: a bus name, how to start it, a watch on it                  */

typedef struct
{
  const char  *label;        /* "backplaned" / "echo service" */
  const char  *bus_name;
  const char  *log_name;
  char       **argv;         /* (owned) */
  char       **envp;         /* (owned) */
  GSubprocess *proc;         /* (nullable) (owned) */
  guint32      pid;
  gboolean     exited;
  guint        watch_id;
  gboolean     name_known;   /* the watch has reported once */
  gboolean     name_owned;
  gint64       appeared_us;
} Target;

static void
name_appeared_cb (GDBusConnection *connection,
                  const char      *name,
                  const char      *owner,
                  gpointer         user_data)
{
  Target *t = user_data;

  t->appeared_us = g_get_monotonic_time ();
  t->name_owned = TRUE;
  t->name_known = TRUE;
}

static void
name_vanished_cb (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  Target *t = user_data;

  t->name_owned = FALSE;
  t->name_known = TRUE;
}

static void
target_watch (Target          *t,
              GDBusConnection *connection)
{
  t->watch_id = g_bus_watch_name_on_connection (connection, t->bus_name, G_BUS_NAME_WATCHER_FLAGS_NONE,
                                                name_appeared_cb, name_vanished_cb, t, NULL);
  if (!bench_iterate_until (&t->name_known, START_TIMEOUT_MS))
    bench_die ("no answer from the bus about %s", t->bus_name);
  if (t->name_owned)
    bench_die ("%s is already owned on the private bus", t->bus_name);
}

static void
wait_exit_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Target *t = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  t->exited = TRUE;
}

static void
target_spawn (Target *t)
{
  /* The log of the latest start only (the file is truncated). */
  t->exited = FALSE;
  t->proc = bench_spawn_logged ((const char * const *) t->argv, t->envp, G_SUBPROCESS_FLAGS_NONE, t->log_name);
  t->pid = bench_pid (t->proc);
  g_subprocess_wait_async (t->proc, NULL, wait_exit_cb, t);
}

/* Returns: microseconds from spawn to the bus name being owned */
static gint64
target_start (Target *t)
{
  gint64 start;

  if (!t->name_known || t->name_owned)
    bench_die ("%s: name watch not ready before start", t->label);
  start = g_get_monotonic_time ();
  target_spawn (t);
  while (!t->name_owned && !t->exited && g_get_monotonic_time () - start < START_TIMEOUT_MS * 1000)
    bench_iterate_for (50);
  if (t->exited)
    bench_die ("%s exited during start-up", t->label);
  if (!t->name_owned)
    bench_die ("%s did not own %s within %d s", t->label, t->bus_name, START_TIMEOUT_MS / 1000);
  return t->appeared_us - start;
}

static void
target_stop (Target *t)
{
  if (t->proc == NULL)
    return;
  g_subprocess_send_signal (t->proc, SIGTERM);
  if (!bench_iterate_until (&t->exited, STOP_TIMEOUT_MS))
    {
      g_subprocess_force_exit (t->proc);
      bench_iterate_until (&t->exited, STOP_TIMEOUT_MS);
      bench_die ("%s did not exit within %d s of SIGTERM", t->label, STOP_TIMEOUT_MS / 1000);
    }
  if (!g_subprocess_get_if_exited (t->proc) || g_subprocess_get_exit_status (t->proc) != 0)
    bench_die ("%s did not exit cleanly on SIGTERM (%s %d)", t->label,
               g_subprocess_get_if_exited (t->proc) ? "status" : "signal",
               g_subprocess_get_if_exited (t->proc) ? g_subprocess_get_exit_status (t->proc)
                                                    : g_subprocess_get_term_sig (t->proc));
  bench_forget_child (t->proc);
  g_clear_object (&t->proc);
  t->pid = 0;
  /* Under -Db_sanitize, a service's leak or UB report lands in its log. */
  bench_check_log (t->label, t->log_name);
  /* The next start is timed from a name nobody owns. */
  {
    gint64 deadline = g_get_monotonic_time () + STOP_TIMEOUT_MS * 1000;

    while (t->name_owned && g_get_monotonic_time () < deadline)
      bench_iterate_for (10);
    if (t->name_owned)
      bench_die ("%s still owned after %s exited", t->bus_name, t->label);
  }
}

static void
target_check_alive (Target *t)
{
  if (t->proc == NULL || t->exited)
    bench_die ("%s is not running any more", t->label);
}

/* ------------------------------------------------------------------ */
/* /proc readers                                                       */

typedef struct
{
  guint64 cpu_ns;       /* time on CPU */
  guint64 slices;       /* times a thread was scheduled in */
} SchedStat;

/* Sums /proc/PID/task/TID/schedstat over the live threads of @pid. Threads
 * that exited in between are missed (GLib's pool threads come and go), which
 * can only make a service look cheaper than it is. */
static void
proc_sched (guint32    pid,
            SchedStat *out)
{
  g_autofree char *task_dir = g_strdup_printf ("/proc/%u/task", pid);
  g_autoptr(GDir) dir = g_dir_open (task_dir, 0, NULL);
  const char *tid;

  if (dir == NULL)
    bench_die ("cannot read %s", task_dir);
  out->cpu_ns = out->slices = 0;
  while ((tid = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (task_dir, tid, "schedstat", NULL);
      g_autofree char *text = NULL;
      g_auto(GStrv) fields = NULL;

      /* "run-ns wait-ns timeslices"; a thread may have exited since readdir. */
      if (!g_file_get_contents (path, &text, NULL, NULL))
        continue;
      fields = g_strsplit (g_strstrip (text), " ", -1);
      if (g_strv_length (fields) < 3)
        bench_die ("unexpected %s: %s", path, text);
      out->cpu_ns += g_ascii_strtoull (fields[0], NULL, 10);
      out->slices += g_ascii_strtoull (fields[2], NULL, 10);
    }
}

/* Sets the CPU mask of every thread of @pid. Threads created later inherit
 * the mask of their creator. */
static void
proc_set_affinity (guint32          pid,
                   const cpu_set_t *set)
{
  g_autofree char *task_dir = g_strdup_printf ("/proc/%u/task", pid);
  g_autoptr(GDir) dir = g_dir_open (task_dir, 0, NULL);
  const char *tid;

  if (dir == NULL)
    bench_die ("cannot read %s", task_dir);
  while ((tid = g_dir_read_name (dir)) != NULL)
    if (sched_setaffinity ((pid_t) g_ascii_strtoll (tid, NULL, 10), sizeof *set, set) != 0 &&
        errno != ESRCH)
      bench_die ("sched_setaffinity %s: %s", tid, g_strerror (errno));
}

/* ------------------------------------------------------------------ */
/* The Ping load                                                       */

typedef struct
{
  GDBusConnection *connection;
  const char      *bus_name;
  guint            total;
  guint            sent;
  guint            done;
  GError          *error;        /* (nullable) (owned) */
  gint64          *latencies;    /* (array length=total) (nullable) */
} PingRun;

typedef struct
{
  PingRun *run;
  gint64   sent_us;
} PingCall;

static void send_ping (PingRun *run);

static void
ping_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  PingCall *call = user_data;
  PingRun *run = call->run;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL && run->error == NULL)
    run->error = g_steal_pointer (&error);
  if (run->latencies != NULL)
    run->latencies[run->done] = g_get_monotonic_time () - call->sent_us;
  run->done++;
  g_free (call);
  if (run->sent < run->total && run->error == NULL)
    send_ping (run);
}

static void
send_ping (PingRun *run)
{
  PingCall *call = g_new (PingCall, 1);

  call->run = run;
  call->sent_us = g_get_monotonic_time ();
  run->sent++;
  g_dbus_connection_call (run->connection, run->bus_name, PING_PATH, BACKEND_IFACE, "Ping",
                          NULL, G_VARIANT_TYPE_UNIT, G_DBUS_CALL_FLAGS_NO_AUTO_START,
                          CALL_TIMEOUT_MS, NULL, ping_cb, call);
}

/* Runs @total Pings keeping @depth in flight; latencies may be NULL.
 * Returns: elapsed microseconds */
static gint64
ping_round (GDBusConnection *connection,
            Target          *t,
            guint            total,
            guint            depth,
            gint64          *latencies)
{
  PingRun run = { connection, t->bus_name, total, 0, 0, NULL, latencies };
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < depth && i < total; i++)
    send_ping (&run);
  while (run.done < run.sent)
    g_main_context_iteration (NULL, TRUE);
  if (run.error != NULL)
    bench_die ("Ping on %s failed: %s", t->label, run.error->message);
  return g_get_monotonic_time () - start;
}

typedef struct
{
  double wall_us;      /* median µs per call over rounds */
  double wall_min_us;
  double wall_max_us;
  double cpu_us;       /* median server CPU µs per call over rounds */
  double slices;       /* median times a server thread was scheduled in, per call */
  gint64 p50_us;       /* per-call latency over all rounds */
  gint64 p99_us;
} PingResult;

typedef struct
{
  PingResult target[2];
  double     wall_ratio;   /* median over rounds of backplaned/echo in the same round pair */
  double     cpu_ratio;
} PingComparison;

/* Interleaved rounds A B, B A, A B … after one warm-up round each: the two
 * rounds of a pair run back to back, so the ratio of a pair sees the same
 * machine; the medians resist the rounds the VM had a hiccup in. */
static void
ping_compare (GDBusConnection *connection,
              Target          *targets[2],
              guint            rounds,
              guint            calls,
              guint            depth,
              PingComparison  *out)
{
  double *wall[2] = { g_new (double, rounds), g_new (double, rounds) };
  double *cpu[2] = { g_new (double, rounds), g_new (double, rounds) };
  double *slices[2] = { g_new (double, rounds), g_new (double, rounds) };
  gint64 *lat[2] = { g_new (gint64, (gsize) rounds * calls), g_new (gint64, (gsize) rounds * calls) };
  double *wall_ratio = g_new (double, rounds);
  double *cpu_ratio = g_new (double, rounds);

  for (guint k = 0; k < 2; k++)
    ping_round (connection, targets[k], calls / 4 + 1, depth, NULL);

  for (guint r = 0; r < rounds; r++)
    {
      for (guint k = 0; k < 2; k++)
        {
          /* Alternate who goes first, so neither always follows the other. */
          guint i = (r % 2) ? 1 - k : k;
          Target *t = targets[i];
          SchedStat s0, s1;
          gint64 elapsed;

          target_check_alive (t);
          proc_sched (t->pid, &s0);
          elapsed = ping_round (connection, t, calls, depth, lat[i] + (gsize) r * calls);
          proc_sched (t->pid, &s1);
          wall[i][r] = (double) elapsed / calls;
          cpu[i][r] = (double) (s1.cpu_ns - s0.cpu_ns) / 1000.0 / calls;
          slices[i][r] = (double) (s1.slices - s0.slices) / calls;
        }
      wall_ratio[r] = wall[0][r] / wall[1][r];
      cpu_ratio[r] = cpu[0][r] / MAX (cpu[1][r], 0.001);
    }

  out->wall_ratio = bench_median (wall_ratio, rounds);
  out->cpu_ratio = bench_median (cpu_ratio, rounds);
  for (guint k = 0; k < 2; k++)
    {
      PingResult *res = &out->target[k];
      gsize n = (gsize) rounds * calls;

      qsort (lat[k], n, sizeof (gint64), bench_compare_gint64);
      res->p50_us = lat[k][(gsize) (0.50 * (n - 1))];
      res->p99_us = lat[k][(gsize) (0.99 * (n - 1))];
      res->wall_us = bench_median (wall[k], rounds);
      bench_range (wall[k], rounds, &res->wall_min_us, &res->wall_max_us);
      res->cpu_us = bench_median (cpu[k], rounds);
      res->slices = bench_median (slices[k], rounds);
      g_free (wall[k]);
      g_free (cpu[k]);
      g_free (slices[k]);
      g_free (lat[k]);
    }
  g_free (wall_ratio);
  g_free (cpu_ratio);
}

static void
print_comparison (const char           *what,
                  const PingComparison *c)
{
  const PingResult *d = &c->target[0], *e = &c->target[1];

  printf ("%s: backplaned %.1f µs/call, echo service %.1f µs/call, ratio %.2f (goal ≤ 1.2)\n",
          what, d->wall_us, e->wall_us, c->wall_ratio);
  printf ("  server CPU per call: backplaned %.1f µs, echo service %.1f µs, ratio %.2f; "
          "server threads scheduled in per call: %.1f vs %.1f\n",
          d->cpu_us, e->cpu_us, c->cpu_ratio, d->slices, e->slices);
  printf ("  per-call latency p50/p99: backplaned %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " µs, "
          "echo service %" G_GINT64_FORMAT "/%" G_GINT64_FORMAT " µs; rounds ranged %.1f–%.1f vs %.1f–%.1f µs/call\n",
          d->p50_us, d->p99_us, e->p50_us, e->p99_us,
          d->wall_min_us, d->wall_max_us, e->wall_min_us, e->wall_max_us);
}

/* ------------------------------------------------------------------ */
/* backplaned's loop lag                                               */

static char *
format_us (gint64 us)
{
  if (us >= 1000)
    return g_strdup_printf ("%.1f ms", us / 1000.0);
  return g_strdup_printf ("%" G_GINT64_FORMAT " µs", us);
}

/* ------------------------------------------------------------------ */
/* Set-up                                                              */

static void
print_machine (void)
{
  g_autofree char *machine = bench_machine_line ();
  g_autofree char *dbus_version = NULL;

  if (!g_spawn_command_line_sync ("dbus-daemon --version", &dbus_version, NULL, NULL, NULL) ||
      dbus_version == NULL)
    dbus_version = g_strdup ("?");
  else
    {
      char *nl = strchr (dbus_version, '\n');
      if (nl != NULL)
        *nl = '\0';
    }
  printf ("machine: %s, %s\n", machine, dbus_version);
}

/* Other work on the machine skews everything here: say how much there was. */
static void
print_load (const char *when)
{
  g_autofree char *load = bench_load_line ();

  printf ("load average %s: %s\n", when, load);
}

static double
median_gint64_ms (gint64 *values,
                  guint   n)
{
  g_autofree double *ms = g_new (double, n);

  for (guint i = 0; i < n; i++)
    ms[i] = values[i] / 1000.0;
  return bench_median (ms, n);
}

/* ------------------------------------------------------------------ */

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = NULL;
  g_autofree char *echo_address = NULL;
  g_autofree char *address = NULL;
  g_autofree char *self_exe = NULL;
  g_autofree char *daemon_exe = NULL;
  g_autofree char *config_path = NULL;
  g_autofree char *echo_plugin = NULL;
  gint64 *start_us[2] = { NULL, NULL };
  static const char * const logs[] = { "backplaned.log", "echo-service.log", "dbus-daemon.log", NULL };
  guint32 bus_pid;
  int rounds = 15, calls = 500, starts = 5;
  GOptionEntry entries[] = {
    { "echo-service", 0, G_OPTION_FLAG_HIDDEN, G_OPTION_ARG_STRING, &echo_address,
      "Run the baseline echo service on the bus at ADDRESS", "ADDRESS" },
    { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds, "Interleaved round pairs (default 15)", "N" },
    { "calls", 'n', 0, G_OPTION_ARG_INT, &calls, "Sequential Pings per round (default 500; ×4 with 16 in flight)", "N" },
    { "starts", 's', 0, G_OPTION_ARG_INT, &starts, "Timed starts per service (default 5)", "N" },
    { NULL }
  };
  Target daemon = { "backplaned", DAEMON_NAME, "backplaned.log" };
  Target echo = { "echo service", ECHO_NAME, "echo-service.log" };
  Target *targets[2] = { &daemon, &echo };
  PingComparison seq, par, seq_pinned, par_pinned;
  int pinned_cpu = 0;
  BenchLoopLag lag_before, lag_after;
  guint64 rss_idle[2], rss_after[2], hwm_after[2];

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
                                "Ping through backplaned vs a minimal GDBus service, loop lag, idle RSS, start time.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-dbus: %s\n", error->message);
      return 2;
    }
  if (echo_address != NULL)
    return run_echo_service (echo_address);
  rounds = CLAMP (rounds, 1, 1000);
  calls = CLAMP (calls, 10, 10000000);
  starts = CLAMP (starts, 1, 100);

  bench_init ("bench-dbus", logs, 0);

  daemon_exe = bench_daemon_exe ();
  echo_plugin = g_build_filename (bench_build_root (), "examples", "echo-plugin", NULL);
  {
    g_autofree char *so = g_build_filename (echo_plugin, "libbp-echo.so", NULL);
    if (!g_file_test (so, G_FILE_TEST_EXISTS))
      bench_die ("%s is not built (the example echo plugin is built with -Dtests=true)", so);
  }
  self_exe = g_file_read_link ("/proc/self/exe", &error);
  if (self_exe == NULL)
    bench_die ("%s", error->message);

  bench_make_tmpdir ();
  config_path = bench_write_file ("backplane.conf", DAEMON_CONFIG);

  print_machine ();
  print_load ("at start");
  address = bench_start_bus (&bus_pid);
  connection = bench_connect (address);

  daemon.argv = g_strdupv ((char *[]) { daemon_exe, "--config", config_path, "--address", address, NULL });
  echo.argv = g_strdupv ((char *[]) { self_exe, "--echo-service", address, NULL });
  daemon.envp = bench_service_environ (echo_plugin);
  echo.envp = bench_service_environ (echo_plugin);
  target_watch (&daemon, connection);
  target_watch (&echo, connection);

  /* 1. Exec → name owned: one untimed start each (page cache, state dir),
   *    then alternating timed starts. */
  start_us[0] = g_new (gint64, starts);
  start_us[1] = g_new (gint64, starts);
  for (int i = -1; i < starts; i++)
    for (guint k = 0; k < 2; k++)
      {
        gint64 us = target_start (targets[k]);

        if (i >= 0)
          start_us[k][i] = us;
        target_stop (targets[k]);
      }

  /* 2. Idle RSS: start both, a few Pings each, let them settle for 1 s. */
  for (guint k = 0; k < 2; k++)
    target_start (targets[k]);
  for (guint k = 0; k < 2; k++)
    ping_round (connection, targets[k], 10, 1, NULL);
  bench_iterate_for (1000);
  for (guint k = 0; k < 2; k++)
    rss_idle[k] = bench_proc_status_kib (targets[k]->pid, "VmRSS");

  /* 3. Ping, sequential and 16 in flight, with the loop lag around it. */
  bench_read_loop_lag (connection, PING_PATH, BACKEND_IFACE, "Ping", &lag_before);
  ping_compare (connection, targets, rounds, calls, 1, &seq);
  ping_compare (connection, targets, rounds, calls * 4, IN_FLIGHT, &par);
  for (guint k = 0; k < 2; k++)
    {
      rss_after[k] = bench_proc_status_kib (targets[k]->pid, "VmRSS");
      hwm_after[k] = bench_proc_status_kib (targets[k]->pid, "VmHWM");
    }
  bench_read_loop_lag (connection, PING_PATH, BACKEND_IFACE, "Ping", &lag_after);

  /* 4. The same with every process on one CPU: no cross-CPU wake-ups, so
   *    far steadier on a small VM, and the CPU work per call shows plainly. */
  {
    guint32 pids[] = { bus_pid, daemon.pid, echo.pid, (guint32) getpid () };
    cpu_set_t all, one;

    if (sched_getaffinity (0, sizeof all, &all) != 0)
      bench_die ("sched_getaffinity: %s", g_strerror (errno));
    CPU_ZERO (&one);
    for (int i = 0; i < CPU_SETSIZE; i++)
      if (CPU_ISSET (i, &all))
        {
          CPU_SET (i, &one);
          pinned_cpu = i;
          break;
        }
    for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
      proc_set_affinity (pids[i], &one);
    ping_compare (connection, targets, rounds, calls, 1, &seq_pinned);
    ping_compare (connection, targets, rounds, calls * 4, IN_FLIGHT, &par_pinned);
    for (guint i = 0; i < G_N_ELEMENTS (pids); i++)
      proc_set_affinity (pids[i], &all);
  }

  /* Report. */
  printf ("bus: private dbus-daemon; %d interleaved round pairs, %d sequential / %d in-flight Pings a round; "
          "µs/call are medians over rounds, ratios medians over round pairs\n",
          rounds, calls, calls * 4);
  print_comparison ("ping sequential", &seq);
  print_comparison ("ping " G_STRINGIFY (IN_FLIGHT) " in flight", &par);
  {
    g_autofree char *p50 = format_us (lag_after.p50_us);
    g_autofree char *p99 = format_us (lag_after.p99_us);
    g_autofree char *max = format_us (lag_after.max_us);
    g_autofree char *max_before = format_us (lag_before.max_us);

    printf ("loop lag during load: p50 %s, p99 %s, max %s, stalls>16ms %" G_GUINT64_FORMAT
            " (goals p99 < 2 ms, max < 16 ms)\n", p50, p99, max, lag_after.stalls - lag_before.stalls);
    printf ("  backplaned's Manager.LoopLag: %" G_GUINT64_FORMAT " loop iterations during the load "
            "(p50/p99 over the last 4096); max is since start-up, it was %s before the load%s; "
            "no such metric for the echo service\n",
            lag_after.samples - lag_before.samples, max_before,
            lag_after.max_us > lag_before.max_us ? " (so the max above happened during the load)" :
                                                   " (so no iteration during the load was longer)");
  }
  printf ("idle RSS: backplaned %.1f MiB vs echo service %.1f MiB (goal < 10 MiB)\n",
          rss_idle[0] / 1024.0, rss_idle[1] / 1024.0);
  printf ("  after the load: RSS %.1f vs %.1f MiB, peak (VmHWM) %.1f vs %.1f MiB\n",
          rss_after[0] / 1024.0, rss_after[1] / 1024.0, hwm_after[0] / 1024.0, hwm_after[1] / 1024.0);
  {
    g_autofree char *seq_title = g_strdup_printf ("ping sequential, all processes on CPU %d", pinned_cpu);
    g_autofree char *par_title = g_strdup_printf ("ping %d in flight, all processes on CPU %d",
                                                  IN_FLIGHT, pinned_cpu);

    print_comparison (seq_title, &seq_pinned);
    print_comparison (par_title, &par_pinned);
  }
  {
    double d, e;

    qsort (start_us[0], starts, sizeof (gint64), bench_compare_gint64);
    qsort (start_us[1], starts, sizeof (gint64), bench_compare_gint64);
    d = median_gint64_ms (start_us[0], starts);
    e = median_gint64_ms (start_us[1], starts);


    printf ("exec → name owned: backplaned %.1f ms vs echo service %.1f ms, ratio %.1f (goal < 100 ms; median of %d starts)\n",
            d, e, d / e, starts);
    printf ("  range: backplaned %.1f–%.1f ms, echo service %.1f–%.1f ms\n",
            start_us[0][0] / 1000.0, start_us[0][starts - 1] / 1000.0,
            start_us[1][0] / 1000.0, start_us[1][starts - 1] / 1000.0);
  }

  print_load ("at end");

  for (guint k = 0; k < 2; k++)
    target_stop (targets[k]);
  for (guint k = 0; k < 2; k++)
    {
      g_free (start_us[k]);
      g_bus_unwatch_name (targets[k]->watch_id);
      g_strfreev (targets[k]->argv);
      g_strfreev (targets[k]->envp);
    }
  g_dbus_connection_close_sync (connection, NULL, NULL);
  g_clear_object (&connection);
  bench_cleanup ();
  return EXIT_SUCCESS;
}
