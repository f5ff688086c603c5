/* bench-shell.c: the shell backend against spawning the programs yourself
 *
 * In one run, on one private dbus-daemon, with backplaned from the build
 * tree serving a `shell` backend, it measures three things, each next to a
 * baseline done by this same process in the same run:
 *
 *  1. spawn + wait of /bin/true per second: Shell.Run, and Shell.Spawn +
 *     Process.Wait + Process.Close, against posix_spawn + waitpid here.
 *     Interleaved rounds (the order rotates each round); rates are medians
 *     over rounds, a ratio is the median of the per-round ratios.
 *  2. 1 GiB through a passed stdout fd: Shell.Spawn of
 *     `head -c 1073741824 /dev/zero` with `stdout` = the write end of a pipe
 *     this program reads, against the same program posix_spawn'ed here
 *     writing into the same kind of pipe. The daemon is out of the data
 *     path, so the goal is ≥ 0.9×; its CPU time and the bytes its threads
 *     read and wrote during the transfer show that directly.
 *  3. Manager.LoopLag while 50 processes stream their output as Output
 *     signals: 50 `cat`s, whose stdin is a pipe this program feeds and
 *     whose stdout has no fd, so every line goes through the daemon's main
 *     loop. Paced (1000 lines/s each, 5 s), then a flood (20000 lines each,
 *     as fast as the pipes take them). All 50 are spawned before the
 *     feeding starts, so the burst of Spawn calls is reported apart.
 *     p50/p99 are read every 250 ms during the stream and once after it,
 *     with the longest iteration and those over 16 ms; next to them the
 *     time the daemon's main thread waited for a CPU, which says how much
 *     of the lag is the machine's. Every line is checked to arrive, in
 *     order, before Exited. Goal p99 < 2 ms.
 *
 * It asserts nothing about time: it exits 0 unless something breaks, then
 * 1 with a message. The numbers also go to /tmp/bench-shell-results.md.
 * Every process it starts is killed on exit, on error, and
 * (PR_SET_PDEATHSIG) if this program dies.
 *
 * Options: --rounds N (5), --calls N (spawns per round and kind, 200),
 * --gib-rounds N (5), --streamers N (50), --rate N and --seconds N (paced
 * stream, 1000 lines/s for 5 s), --lines N (flood, 20000 per process),
 * --phases DIGITS (which of 1, 2, 3 to run), --results FILE.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib-unix.h>

#include "bench-common.h"

extern char **environ;

#define DAEMON_NAME   BENCH_BUS_NAME
#define ROOT_PATH     BENCH_ROOT_PATH
#define SHELL_PATH    "/org/backplane/Backplane1/backend/shell"
#define SHELL_IFACE   "org.backplane.Backplane1.Shell"
#define PROCESS_IFACE "org.backplane.Backplane1.Process"
#define BACKEND_IFACE "org.backplane.Backplane1.Backend"
#define MANAGER_IFACE BENCH_MANAGER_IFACE

#define TRUE_PATH        "/bin/true"
#define GIB              (G_GUINT64_CONSTANT (1) << 30)
#define READ_SIZE        (128 * 1024)
#define CALL_TIMEOUT_MS  30000
#define STREAM_TIMEOUT_S 300
#define LAG_POLL_MS      250

#define DAEMON_CONFIG \
  "[backend shell]\n" \
  "type=shell\n" \
  "allow=" TRUE_PATH ";head;cat\n" \
  "max-processes=128\n" \
  "max-processes-per-caller=128\n"

/* ------------------------------------------------------------------ */
/* /proc readers                                                       */

/* Returns: user + system CPU time of @pid itself (not its children), in ms */
static double
proc_cpu_ms (guint32 pid)
{
  return bench_proc_cpu_ticks (pid) * 1000.0 / sysconf (_SC_CLK_TCK);
}

static guint64
proc_io_field (const char *path,
               const char *key)
{
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  gsize key_len = strlen (key);

  if (!g_file_get_contents (path, &text, NULL, NULL))
    return 0;
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (strncmp (lines[i], key, key_len) == 0 && lines[i][key_len] == ':')
      return g_ascii_strtoull (lines[i] + key_len + 1, NULL, 10);
  return 0;
}

/* Bytes read + written by each live thread of @pid (tid → guint64). Per
 * thread, because /proc/PID/io also counts the children it has reaped. */
static GHashTable *
thread_io (guint32 pid)
{
  g_autofree char *task_dir = g_strdup_printf ("/proc/%u/task", pid);
  g_autoptr(GDir) dir = g_dir_open (task_dir, 0, NULL);
  GHashTable *io = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  const char *tid;

  if (dir == NULL)
    bench_die ("cannot read %s", task_dir);
  while ((tid = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_build_filename (task_dir, tid, "io", NULL);
      guint64 *bytes = g_new (guint64, 1);

      *bytes = proc_io_field (path, "rchar") + proc_io_field (path, "wchar");
      g_hash_table_insert (io, g_strdup (tid), bytes);
    }
  return io;
}

/* Returns: what the threads of @pid alive now read and wrote since @before */
static guint64
thread_io_since (guint32     pid,
                 GHashTable *before)
{
  g_autoptr(GHashTable) now = thread_io (pid);
  GHashTableIter iter;
  gpointer tid, bytes;
  guint64 total = 0;

  g_hash_table_iter_init (&iter, now);
  while (g_hash_table_iter_next (&iter, &tid, &bytes))
    {
      guint64 *then = g_hash_table_lookup (before, tid);

      total += *(guint64 *) bytes - (then != NULL ? *then : 0);
    }
  return total;
}

/* ------------------------------------------------------------------ */
/* D-Bus calls                                                         */

static GVariant *
call (GDBusConnection *connection,
      const char      *path,
      const char      *iface,
      const char      *method,
      GVariant        *params,
      const char      *reply_type,
      GUnixFDList     *fds)
{
  g_autoptr(GError) error = NULL;
  GVariant *reply;

  reply = g_dbus_connection_call_with_unix_fd_list_sync (connection, DAEMON_NAME, path, iface, method, params,
                                                         reply_type != NULL ? G_VARIANT_TYPE (reply_type) : NULL,
                                                         G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS,
                                                         fds, NULL, NULL, &error);
  if (reply == NULL)
    bench_die ("%s.%s on %s: %s", iface, method, path, error->message);
  return reply;
}

/* Shell.Spawn. Returns: (transfer full): the Process object path */
static char *
spawn_process (GDBusConnection    *connection,
               const char * const *argv,
               GVariant           *options,
               GUnixFDList        *fds)
{
  g_autoptr(GVariant) reply = NULL;
  char *path;

  reply = call (connection, SHELL_PATH, SHELL_IFACE, "Spawn",
                g_variant_new ("(^as@a{sv})", argv, options != NULL ? options : g_variant_new ("a{sv}", NULL)),
                "(o)", fds);
  g_variant_get (reply, "(o)", &path);
  return path;
}

static void
wait_process (GDBusConnection *connection,
              const char      *path,
              int             *exit_code,
              int             *term_signal)
{
  g_autoptr(GVariant) reply = call (connection, path, PROCESS_IFACE, "Wait", NULL, "(ii)", NULL);

  g_variant_get (reply, "(ii)", exit_code, term_signal);
}

static void
close_process (GDBusConnection *connection,
               const char      *path)
{
  g_autoptr(GVariant) reply = call (connection, path, PROCESS_IFACE, "Close", NULL, "()", NULL);
}

/* ------------------------------------------------------------------ */
/* 1. spawn + wait of /bin/true                                        */

enum { SPAWN_DIRECT, SPAWN_RUN, SPAWN_SPAWN_WAIT, N_SPAWN_KINDS };

static const char * const spawn_kind_label[N_SPAWN_KINDS] = {
  "posix_spawn + waitpid, in process",
  "Shell.Run",
  "Shell.Spawn + Process.Wait + Process.Close",
};

static void
spawn_direct (void)
{
  char *argv[] = { (char *) TRUE_PATH, NULL };
  pid_t pid;
  int status, err;

  err = posix_spawn (&pid, TRUE_PATH, NULL, NULL, argv, environ);
  if (err != 0)
    bench_die ("posix_spawn %s: %s", TRUE_PATH, g_strerror (err));
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      bench_die ("waitpid: %s", g_strerror (errno));
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    bench_die ("%s did not exit 0", TRUE_PATH);
}

static void
spawn_run (GDBusConnection *connection)
{
  const char *argv[] = { TRUE_PATH, NULL };
  g_autoptr(GVariant) reply = NULL;
  int exit_code, term_signal;

  reply = call (connection, SHELL_PATH, SHELL_IFACE, "Run",
                g_variant_new ("(^as@a{sv})", argv, g_variant_new ("a{sv}", NULL)), "(iiayay)", NULL);
  g_variant_get (reply, "(ii@ay@ay)", &exit_code, &term_signal, NULL, NULL);
  if (exit_code != 0)
    bench_die ("Shell.Run %s: exit %d, signal %d", TRUE_PATH, exit_code, term_signal);
}

static void
spawn_spawn_wait (GDBusConnection *connection)
{
  const char *argv[] = { TRUE_PATH, NULL };
  g_autofree char *path = spawn_process (connection, argv, NULL, NULL);
  int exit_code, term_signal;

  wait_process (connection, path, &exit_code, &term_signal);
  if (exit_code != 0)
    bench_die ("Process.Wait %s: exit %d, signal %d", TRUE_PATH, exit_code, term_signal);
  close_process (connection, path);
}

/* Returns: spawns per second */
static double
spawn_round (GDBusConnection *connection,
             guint            kind,
             guint            calls)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < calls; i++)
    switch (kind)
      {
      case SPAWN_DIRECT:
        spawn_direct ();
        break;
      case SPAWN_RUN:
        spawn_run (connection);
        break;
      default:
        spawn_spawn_wait (connection);
        break;
      }
  return calls * (double) G_USEC_PER_SEC / (g_get_monotonic_time () - start);
}

typedef struct
{
  double rate[N_SPAWN_KINDS];        /* median spawns/s */
  double rate_min[N_SPAWN_KINDS];
  double rate_max[N_SPAWN_KINDS];
  double ratio[N_SPAWN_KINDS];       /* median over rounds of kind / direct */
  double daemon_cpu_us[N_SPAWN_KINDS]; /* daemon CPU per spawn, over all rounds */
} SpawnResult;

static void
bench_spawn (GDBusConnection *connection,
             guint            rounds,
             guint            calls,
             SpawnResult     *out)
{
  g_autofree double *rates = g_new0 (double, N_SPAWN_KINDS * rounds);
  g_autofree double *ratios = g_new0 (double, rounds);
  double cpu_ms[N_SPAWN_KINDS] = { 0, };

  /* Warm-up: page cache, GLib's child-watch machinery in the daemon. */
  for (guint k = 0; k < N_SPAWN_KINDS; k++)
    spawn_round (connection, k, MAX (calls / 10, 5));

  for (guint r = 0; r < rounds; r++)
    for (guint i = 0; i < N_SPAWN_KINDS; i++)
      {
        guint k = (i + r) % N_SPAWN_KINDS;
        double cpu_before = proc_cpu_ms (bench_daemon_pid ());

        rates[k * rounds + r] = spawn_round (connection, k, calls);
        cpu_ms[k] += proc_cpu_ms (bench_daemon_pid ()) - cpu_before;
      }

  for (guint k = 0; k < N_SPAWN_KINDS; k++)
    {
      const double *mine = rates + k * rounds;

      for (guint r = 0; r < rounds; r++)
        ratios[r] = mine[r] / rates[SPAWN_DIRECT * rounds + r];
      out->rate[k] = bench_median (mine, rounds);
      bench_range (mine, rounds, &out->rate_min[k], &out->rate_max[k]);
      out->ratio[k] = bench_median (ratios, rounds);
      out->daemon_cpu_us[k] = cpu_ms[k] * 1000.0 / ((double) rounds * calls);
    }
}

/* ------------------------------------------------------------------ */
/* 2. 1 GiB through a passed stdout fd                                 */

static char *head_path;

/* Reads @fd to end of file. Returns: the byte count */
static guint64
drain_fd (int fd)
{
  g_autofree char *buffer = g_malloc (READ_SIZE);
  guint64 total = 0;
  ssize_t n;

  for (;;)
    {
      n = read (fd, buffer, READ_SIZE);
      if (n > 0)
        total += n;
      else if (n == 0)
        break;
      else if (errno != EINTR)
        bench_die ("read: %s", g_strerror (errno));
    }
  return total;
}

static void
open_pipe (int fds[2])
{
  g_autoptr(GError) error = NULL;

  if (!g_unix_open_pipe (fds, FD_CLOEXEC, &error))
    bench_die ("pipe: %s", error->message);
}

/* Returns: MiB/s of `head -c 1GiB /dev/zero` posix_spawn'ed here */
static double
gib_direct (void)
{
  char *argv[] = { head_path, (char *) "-c", (char *) "1073741824", (char *) "/dev/zero", NULL };
  posix_spawn_file_actions_t actions;
  gint64 start = g_get_monotonic_time ();
  guint64 total;
  int fds[2];
  pid_t pid;
  int status, err;

  open_pipe (fds);
  posix_spawn_file_actions_init (&actions);
  posix_spawn_file_actions_adddup2 (&actions, fds[1], STDOUT_FILENO);
  err = posix_spawn (&pid, head_path, &actions, NULL, argv, environ);
  posix_spawn_file_actions_destroy (&actions);
  if (err != 0)
    bench_die ("posix_spawn %s: %s", head_path, g_strerror (err));
  close (fds[1]);
  total = drain_fd (fds[0]);
  close (fds[0]);
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      bench_die ("waitpid: %s", g_strerror (errno));
  if (total != GIB || !WIFEXITED (status) || WEXITSTATUS (status) != 0)
    bench_die ("head wrote %" G_GUINT64_FORMAT " bytes, status %d", total, status);
  return GIB / 1048576.0 * G_USEC_PER_SEC / (g_get_monotonic_time () - start);
}

typedef struct
{
  double  mib_s;
  double  daemon_cpu_ms;
  guint64 daemon_io;
} GibDaemon;

/* The same through Shell.Spawn with `stdout` = our pipe: from the Spawn
 * call to end of file and Process.Wait. */
static void
gib_daemon (GDBusConnection *connection,
            GibDaemon       *out)
{
  const char *argv[] = { "head", "-c", "1073741824", "/dev/zero", NULL };
  g_autoptr(GUnixFDList) fd_list = g_unix_fd_list_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GHashTable) io_before = thread_io (bench_daemon_pid ());
  g_autofree char *path = NULL;
  GVariantBuilder options;
  double cpu_before = proc_cpu_ms (bench_daemon_pid ());
  gint64 start, elapsed;
  guint64 total;
  int fds[2];
  int exit_code, term_signal;

  open_pipe (fds);
  if (g_unix_fd_list_append (fd_list, fds[1], &error) < 0)
    bench_die ("%s", error->message);
  close (fds[1]);
  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "stdout", g_variant_new_handle (0));

  start = g_get_monotonic_time ();
  path = spawn_process (connection, argv, g_variant_builder_end (&options), fd_list);
  /* Only the child holds the write end now. */
  g_clear_object (&fd_list);
  total = drain_fd (fds[0]);
  close (fds[0]);
  wait_process (connection, path, &exit_code, &term_signal);
  elapsed = g_get_monotonic_time () - start;
  close_process (connection, path);
  if (total != GIB || exit_code != 0)
    bench_die ("head through backplaned wrote %" G_GUINT64_FORMAT " bytes, exit %d, signal %d",
               total, exit_code, term_signal);

  out->mib_s = GIB / 1048576.0 * G_USEC_PER_SEC / elapsed;
  out->daemon_cpu_ms = proc_cpu_ms (bench_daemon_pid ()) - cpu_before;
  out->daemon_io = thread_io_since (bench_daemon_pid (), io_before);
}

typedef struct
{
  double  direct_mib_s;
  double  daemon_mib_s;
  double  direct_min, direct_max;
  double  daemon_min, daemon_max;
  double  ratio;
  double  daemon_cpu_ms;   /* median per GiB */
  guint64 daemon_io_max;   /* bytes its threads read/wrote, worst round */
} GibResult;

static void
bench_gib (GDBusConnection *connection,
           guint            rounds,
           GibResult       *out)
{
  g_autofree double *direct = g_new0 (double, rounds);
  g_autofree double *daemon = g_new0 (double, rounds);
  g_autofree double *ratios = g_new0 (double, rounds);
  g_autofree double *cpu = g_new0 (double, rounds);

  out->daemon_io_max = 0;
  for (guint r = 0; r < rounds; r++)
    {
      GibDaemon d;

      /* A B, B A, … */
      if (r % 2 == 0)
        {
          direct[r] = gib_direct ();
          gib_daemon (connection, &d);
        }
      else
        {
          gib_daemon (connection, &d);
          direct[r] = gib_direct ();
        }
      daemon[r] = d.mib_s;
      cpu[r] = d.daemon_cpu_ms;
      ratios[r] = daemon[r] / direct[r];
      out->daemon_io_max = MAX (out->daemon_io_max, d.daemon_io);
    }
  out->direct_mib_s = bench_median (direct, rounds);
  out->daemon_mib_s = bench_median (daemon, rounds);
  bench_range (direct, rounds, &out->direct_min, &out->direct_max);
  bench_range (daemon, rounds, &out->daemon_min, &out->daemon_max);
  out->ratio = bench_median (ratios, rounds);
  out->daemon_cpu_ms = bench_median (cpu, rounds);
}

/* ------------------------------------------------------------------ */
/* 3. Loop lag while processes stream Output signals                   */

static GVariant *
loop_lag_params (void)
{
  return g_variant_new ("(ss)", MANAGER_IFACE, "LoopLag");
}

/* Main-thread scheduling of @pid: time it ran and time it was runnable
 * but waiting for a CPU (/proc/PID/task/PID/schedstat), in ns. */
static void
main_thread_sched (guint32  pid,
                   guint64 *run_ns,
                   guint64 *wait_ns)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/task/%u/schedstat", pid, pid);
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;

  if (!g_file_get_contents (path, &text, NULL, NULL))
    bench_die ("cannot read %s", path);
  fields = g_strsplit (g_strstrip (text), " ", -1);
  if (g_strv_length (fields) < 2)
    bench_die ("unexpected %s: %s", path, text);
  *run_ns = g_ascii_strtoull (fields[0], NULL, 10);
  *wait_ns = g_ascii_strtoull (fields[1], NULL, 10);
}

#define STREAM_LINE "line %u: a process streaming its output through backplaned\n"

typedef struct
{
  guint32  next_line;   /* the number the next line must carry */
  gboolean exited;
} Streamer;

typedef struct _Stream Stream;

typedef struct
{
  Stream *s;
  int     fd;          /* write end of a cat's stdin; -1 once closed */
  gsize   written;     /* bytes of the text written so far */
  guint   watch;       /* flood: the fd's G_IO_OUT watch */
} Feeder;

struct _Stream
{
  GDBusConnection *connection;
  GString         *text;           /* (owned): lines 1…n_lines, fed to every cat */
  gsize           *line_end;       /* (owned): offset after each line of @text */
  guint            n_lines;
  guint            rate;           /* lines a second, each; 0: as fast as the pipes take it */
  GHashTable      *streamers;      /* (owned): path → Streamer */
  GPtrArray       *feeders;        /* (owned) (element-type Feeder) */
  guint            n_spawned;
  guint            n_exited;
  guint64          lines;
  guint64          bytes;
  guint64          batches;
  guint32          max_batch;
  guint64          feeder_stalls;  /* writes that found a pipe full */
  gint64           feed_start;
  guint            feed_timer;
  char            *error;          /* (owned) (nullable) */
  /* Manager.LoopLag read during the stream */
  GArray          *lag_p50;        /* (element-type gint64) */
  GArray          *lag_p99;
  gboolean         lag_in_flight;
  guint            lag_timer;
};

static void
stream_fail (Stream     *s,
             const char *format,
             ...) G_GNUC_PRINTF (2, 3);

static void
stream_fail (Stream     *s,
             const char *format,
             ...)
{
  va_list args;

  if (s->error != NULL)
    return;
  va_start (args, format);
  s->error = g_strdup_vprintf (format, args);
  va_end (args);
}

static void
feeder_free (Feeder *f)
{
  g_clear_handle_id (&f->watch, g_source_remove);
  if (f->fd >= 0)
    close (f->fd);
  g_free (f);
}

/* Checks every line: stdout, numbered 1, 2, … per process, none after
 * Exited, all of them before it. */
static void
stream_signal_cb (GDBusConnection *connection,
                  const char      *sender,
                  const char      *path,
                  const char      *iface,
                  const char      *name,
                  GVariant        *params,
                  gpointer         user_data)
{
  Stream *s = user_data;
  Streamer *st = g_hash_table_lookup (s->streamers, path);

  if (st == NULL)
    {
      /* Signals of a process follow the Spawn reply that named it. */
      stream_fail (s, "%s from %s, a path no Spawn returned", name, path);
      return;
    }
  if (g_str_equal (name, "Output") && g_variant_is_of_type (params, G_VARIANT_TYPE ("(a(us))")))
    {
      g_autoptr(GVariant) lines = g_variant_get_child_value (params, 0);
      GVariantIter iter;
      guint32 stream;
      const char *line;
      gsize n = g_variant_n_children (lines);

      if (st->exited)
        stream_fail (s, "%s: Output after Exited", path);
      s->batches++;
      s->max_batch = MAX (s->max_batch, (guint32) n);
      g_variant_iter_init (&iter, lines);
      while (g_variant_iter_next (&iter, "(u&s)", &stream, &line))
        {
          char *end = NULL;

          if (stream != 1 || strncmp (line, "line ", 5) != 0 ||
              strtoul (line + 5, &end, 10) != st->next_line || *end != ':')
            {
              stream_fail (s, "%s: expected stdout line %u, got stream %u “%s”", path, st->next_line, stream, line);
              return;
            }
          st->next_line++;
          s->lines++;
          s->bytes += strlen (line) + 1;
        }
    }
  else if (g_str_equal (name, "Exited") && g_variant_is_of_type (params, G_VARIANT_TYPE ("(ii)")))
    {
      int exit_code, term_signal;

      g_variant_get (params, "(ii)", &exit_code, &term_signal);
      if (exit_code != 0)
        stream_fail (s, "%s exited with %d, signal %d", path, exit_code, term_signal);
      else if (st->next_line != s->n_lines + 1)
        stream_fail (s, "%s exited after %u of %u lines", path, st->next_line - 1, s->n_lines);
      if (!st->exited)
        {
          st->exited = TRUE;
          s->n_exited++;
        }
    }
}

static void
lag_read_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Stream *s = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  BenchLoopLag lag;

  s->lag_in_flight = FALSE;
  reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &error);
  if (reply == NULL)
    {
      stream_fail (s, "reading Manager.LoopLag: %s", error->message);
      return;
    }
  bench_parse_loop_lag (reply, &lag);
  g_array_append_val (s->lag_p50, lag.p50_us);
  g_array_append_val (s->lag_p99, lag.p99_us);
}

static gboolean
lag_timer_cb (gpointer user_data)
{
  Stream *s = user_data;

  if (!s->lag_in_flight)
    {
      s->lag_in_flight = TRUE;
      g_dbus_connection_call (s->connection, DAEMON_NAME, ROOT_PATH, "org.freedesktop.DBus.Properties", "Get",
                              loop_lag_params (), G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                              CALL_TIMEOUT_MS, NULL, lag_read_cb, s);
    }
  return G_SOURCE_CONTINUE;
}

/* Writes @f's text up to byte @target without blocking; closes the pipe
 * (so its cat ends) once the whole text is written. Returns: TRUE when
 * closed. */
static gboolean
feeder_write (Feeder *f,
              gsize   target)
{
  Stream *s = f->s;

  while (f->fd >= 0 && f->written < target)
    {
      ssize_t n = write (f->fd, s->text->str + f->written, target - f->written);

      if (n > 0)
        f->written += n;
      else if (n < 0 && errno == EAGAIN)
        {
          s->feeder_stalls++;
          return FALSE;
        }
      else if (n < 0 && errno != EINTR)
        {
          stream_fail (s, "writing to a cat's stdin: %s", g_strerror (errno));
          return FALSE;
        }
    }
  if (f->fd >= 0 && f->written == s->text->len)
    {
      close (f->fd);
      f->fd = -1;
    }
  return f->fd < 0;
}

/* Paced: every 5 ms, what is due by now. */
static gboolean
feed_paced_cb (gpointer user_data)
{
  Stream *s = user_data;
  gint64 elapsed = g_get_monotonic_time () - s->feed_start;
  guint due = (guint) MIN ((guint64) s->n_lines, (guint64) s->rate * elapsed / G_USEC_PER_SEC);
  gsize target = due > 0 ? s->line_end[due - 1] : 0;
  gboolean all_closed = TRUE;

  for (guint i = 0; i < s->feeders->len; i++)
    if (!feeder_write (g_ptr_array_index (s->feeders, i), target))
      all_closed = FALSE;
  if (all_closed)
    {
      s->feed_timer = 0;
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

/* Flood: whenever a pipe has room. */
static gboolean
feed_flood_cb (int          fd,
               GIOCondition condition,
               gpointer     user_data)
{
  Feeder *f = user_data;

  if (feeder_write (f, f->s->text->len) || f->s->error != NULL)
    {
      f->watch = 0;
      return G_SOURCE_REMOVE;
    }
  return G_SOURCE_CONTINUE;
}

static void
stream_spawned_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Stream *s = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  Streamer *st;
  char *path;

  reply = g_dbus_connection_call_with_unix_fd_list_finish (G_DBUS_CONNECTION (source), NULL, result, &error);
  if (reply == NULL)
    {
      stream_fail (s, "Shell.Spawn: %s", error->message);
      return;
    }
  g_variant_get (reply, "(o)", &path);
  st = g_new0 (Streamer, 1);
  st->next_line = 1;
  g_hash_table_insert (s->streamers, path, st);
  s->n_spawned++;
}

/* Spawns `cat` reading a pipe whose write end becomes a feeder. */
static void
spawn_fed_cat (Stream *s)
{
  const char *argv[] = { "cat", NULL };
  g_autoptr(GUnixFDList) fd_list = g_unix_fd_list_new ();
  g_autoptr(GError) error = NULL;
  GVariantBuilder options;
  Feeder *f = g_new0 (Feeder, 1);
  int fds[2];

  open_pipe (fds);
  if (g_unix_fd_list_append (fd_list, fds[0], &error) < 0)
    bench_die ("%s", error->message);
  close (fds[0]);
  if (!g_unix_set_fd_nonblocking (fds[1], TRUE, &error))
    bench_die ("%s", error->message);
  f->s = s;
  f->fd = fds[1];
  g_ptr_array_add (s->feeders, f);

  g_variant_builder_init (&options, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&options, "{sv}", "stdin", g_variant_new_handle (0));
  g_dbus_connection_call_with_unix_fd_list (s->connection, DAEMON_NAME, SHELL_PATH, SHELL_IFACE, "Spawn",
                                            g_variant_new ("(^as@a{sv})", argv, g_variant_builder_end (&options)),
                                            G_VARIANT_TYPE ("(o)"), G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS,
                                            fd_list, NULL, stream_spawned_cb, s);
}

typedef struct
{
  const char  *mode;
  guint        streamers;
  guint        lines_each;
  guint        rate;            /* paced: lines a second, each; 0 flood */
  guint64      feeder_stalls;
  double       seconds;
  guint64      lines;
  guint64      bytes;
  guint64      batches;
  guint32      max_batch;
  guint        lag_reads;
  gint64       lag_p50_median;  /* of the reads during the stream */
  gint64       lag_p99_median;
  gint64       lag_p99_worst;
  BenchLoopLag before_spawn;
  BenchLoopLag before;          /* the processes spawned, nothing fed yet */
  BenchLoopLag after;           /* the stream over */
  double       daemon_cpu_ms;
  double       daemon_wait_ms;  /* main thread runnable, waiting for a CPU */
} StreamResult;

/* @n `cat`s, spawned first, then fed @lines_each lines each: @rate lines a
 * second, or (@rate 0) as fast as the pipes take them. Their stdout has no
 * fd, so every line becomes part of an Output signal. */
static void
bench_stream (GDBusConnection *connection,
              guint            n,
              guint            lines_each,
              guint            rate,
              StreamResult    *out)
{
  Stream s = { connection, };
  gint64 start, deadline;
  guint64 run_before, wait_before, run_after, wait_after;
  double cpu_before;
  GHashTableIter iter;
  gpointer path;
  guint sub;

  s.text = g_string_new (NULL);
  s.n_lines = lines_each;
  s.line_end = g_new (gsize, lines_each);
  for (guint i = 0; i < lines_each; i++)
    {
      g_string_append_printf (s.text, STREAM_LINE, i + 1);
      s.line_end[i] = s.text->len;
    }
  s.rate = rate;
  s.streamers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  s.feeders = g_ptr_array_new_with_free_func ((GDestroyNotify) feeder_free);
  s.lag_p50 = g_array_new (FALSE, FALSE, sizeof (gint64));
  s.lag_p99 = g_array_new (FALSE, FALSE, sizeof (gint64));

  /* All processes first: n Spawn calls at once (fork + exec each, on the
   * daemon's main thread) are measured apart from the stream. */
  bench_read_loop_lag (connection, SHELL_PATH, BACKEND_IFACE, "Ping", &out->before_spawn);
  sub = g_dbus_connection_signal_subscribe (connection, NULL, PROCESS_IFACE, NULL, NULL, NULL,
                                            G_DBUS_SIGNAL_FLAGS_NONE, stream_signal_cb, &s, NULL);
  for (guint i = 0; i < n; i++)
    spawn_fed_cat (&s);
  deadline = g_get_monotonic_time () + CALL_TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
  while (s.n_spawned < n && s.error == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  if (s.n_spawned < n)
    bench_die ("streaming: %s", s.error != NULL ? s.error : "Spawn timed out");
  bench_read_loop_lag (connection, SHELL_PATH, BACKEND_IFACE, "Ping", &out->before);

  cpu_before = proc_cpu_ms (bench_daemon_pid ());
  main_thread_sched (bench_daemon_pid (), &run_before, &wait_before);
  start = s.feed_start = g_get_monotonic_time ();
  deadline = start + STREAM_TIMEOUT_S * G_USEC_PER_SEC;
  if (rate > 0)
    s.feed_timer = g_timeout_add (5, feed_paced_cb, &s);
  else
    for (guint i = 0; i < s.feeders->len; i++)
      {
        Feeder *f = g_ptr_array_index (s.feeders, i);

        f->watch = g_unix_fd_add (f->fd, G_IO_OUT, feed_flood_cb, f);
      }
  s.lag_timer = g_timeout_add (LAG_POLL_MS, lag_timer_cb, &s);
  while (s.n_exited < n && s.error == NULL && g_get_monotonic_time () < deadline)
    g_main_context_iteration (NULL, TRUE);
  out->seconds = (g_get_monotonic_time () - start) / (double) G_USEC_PER_SEC;
  out->daemon_cpu_ms = proc_cpu_ms (bench_daemon_pid ()) - cpu_before;
  main_thread_sched (bench_daemon_pid (), &run_after, &wait_after);
  out->daemon_wait_ms = (wait_after - wait_before) / 1e6;
  g_source_remove (s.lag_timer);
  g_clear_handle_id (&s.feed_timer, g_source_remove);
  while (s.lag_in_flight)
    g_main_context_iteration (NULL, TRUE);
  g_dbus_connection_signal_unsubscribe (connection, sub);
  if (s.error != NULL)
    bench_die ("streaming: %s", s.error);
  if (s.n_exited < n)
    bench_die ("streaming: %u of %u processes exited within %d s", s.n_exited, n, STREAM_TIMEOUT_S);

  g_hash_table_iter_init (&iter, s.streamers);
  while (g_hash_table_iter_next (&iter, &path, NULL))
    close_process (connection, path);
  bench_read_loop_lag (connection, SHELL_PATH, BACKEND_IFACE, "Ping", &out->after);

  out->mode = rate > 0 ? "paced" : "flood";
  out->streamers = n;
  out->lines_each = lines_each;
  out->rate = rate;
  out->feeder_stalls = s.feeder_stalls;
  out->lines = s.lines;
  out->bytes = s.bytes;
  out->batches = s.batches;
  out->max_batch = s.max_batch;
  out->lag_reads = s.lag_p99->len;
  out->lag_p50_median = out->lag_p99_median = out->lag_p99_worst = 0;
  if (s.lag_p99->len > 0)
    {
      g_array_sort (s.lag_p50, bench_compare_gint64);
      g_array_sort (s.lag_p99, bench_compare_gint64);
      out->lag_p50_median = g_array_index (s.lag_p50, gint64, s.lag_p50->len / 2);
      out->lag_p99_median = g_array_index (s.lag_p99, gint64, s.lag_p99->len / 2);
      out->lag_p99_worst = g_array_index (s.lag_p99, gint64, s.lag_p99->len - 1);
    }
  g_array_unref (s.lag_p50);
  g_array_unref (s.lag_p99);
  g_ptr_array_unref (s.feeders);
  g_hash_table_unref (s.streamers);
  g_string_free (s.text, TRUE);
  g_free (s.line_end);
}

/* ------------------------------------------------------------------ */
/* Report                                                              */

static char *
format_us (gint64 us)
{
  if (us >= 1000)
    return g_strdup_printf ("%.2f ms", us / 1000.0);
  return g_strdup_printf ("%" G_GINT64_FORMAT " µs", us);
}

static void
report (GString    *md,
        const char *format,
        ...) G_GNUC_PRINTF (2, 3);

/* Prints a line and appends it to the Markdown results. */
static void
report (GString    *md,
        const char *format,
        ...)
{
  va_list args;
  g_autofree char *line = NULL;

  va_start (args, format);
  line = g_strdup_vprintf (format, args);
  va_end (args);
  printf ("%s\n", line);
  g_string_append_printf (md, "%s\n", line);
}

static void
report_stream (GString      *md,
               StreamResult *r)
{
  g_autofree char *p50 = format_us (r->lag_p50_median);
  g_autofree char *p99 = format_us (r->lag_p99_median);
  g_autofree char *p99_worst = format_us (r->lag_p99_worst);
  g_autofree char *p50_after = format_us (r->after.p50_us);
  g_autofree char *p99_after = format_us (r->after.p99_us);
  g_autofree char *max_spawn = format_us (r->before.max_us);
  g_autofree char *max_before = format_us (r->before.max_us);
  g_autofree char *max_after = format_us (r->after.max_us);

  if (r->rate > 0)
    report (md, "### %s: each `cat` fed %u lines/s for %.0f s\n",
            r->mode, r->rate, (double) r->lines_each / r->rate);
  else
    report (md, "### %s: each `cat` fed %u lines as fast as its stdin pipe takes them\n",
            r->mode, r->lines_each);
  report (md, "All %" G_GUINT64_FORMAT " lines (%.1f MiB) arrived, in order, in %.2f s (%.0f lines/s) as %"
          G_GUINT64_FORMAT " Output signals of up to %u lines. backplaned: %.0f ms of CPU (%.0f%% of one); "
          "its main thread also waited %.0f ms for a CPU, runnable (load from elsewhere on the machine).\n",
          r->lines, r->bytes / 1048576.0, r->seconds, r->lines / r->seconds, r->batches, r->max_batch,
          r->daemon_cpu_ms, r->daemon_cpu_ms / 10.0 / r->seconds, r->daemon_wait_ms);
  report (md, "| Manager.LoopLag | p50 | p99 |");
  report (md, "|---|---|---|");
  report (md, "| during the stream (median of %u reads) | %s | %s |", r->lag_reads, p50, p99);
  report (md, "| during the stream, worst read | | %s |", p99_worst);
  report (md, "| after it (last 4096 iterations) | %s | %s |", p50_after, p99_after);
  report (md, "%s", "");
  report (md, "p99 < 2 ms: %s. Iterations over 16 ms during the stream: %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
          "; longest iteration since start-up %s (%s before the stream).",
          MAX (r->lag_p99_worst, r->after.p99_us) < 2000 ? "met" : "NOT met",
          r->after.stalls - r->before.stalls, r->after.samples - r->before.samples, max_after, max_before);
  if (r->before.max_us > r->before_spawn.max_us)
    report (md, "Spawning the %u processes (%u Spawn calls at once, fork + exec on the daemon's main thread): "
            "longest iteration %s, %" G_GUINT64_FORMAT " over 16 ms.\n",
            r->streamers, r->streamers, max_spawn, r->before.stalls - r->before_spawn.stalls);
  else
    report (md, "Spawning the %u processes (%u Spawn calls at once): no iteration longer than before, "
            "%" G_GUINT64_FORMAT " over 16 ms.\n",
            r->streamers, r->streamers, r->before.stalls - r->before_spawn.stalls);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = NULL;
  g_autofree char *address = NULL;
  g_autofree char *results_path = NULL;
  g_autofree char *machine = NULL;
  g_autofree char *load_start = NULL;
  g_autofree char *load_end = NULL;
  g_autoptr(GString) md = g_string_new (NULL);
  static const char * const logs[] = { "backplaned.log", "dbus-daemon.log", NULL };
  int rounds = 5, calls = 200, gib_rounds = 5, streamers = 50, lines = 20000, rate = 1000, seconds = 5;
  g_autofree char *phases = NULL;
  GOptionEntry entries[] = {
    { "phases", 0, 0, G_OPTION_ARG_STRING, &phases, "Which parts to run (default 123)", "DIGITS" },
    { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds, "Interleaved spawn rounds (default 5)", "N" },
    { "calls", 'n', 0, G_OPTION_ARG_INT, &calls, "Spawns per round and kind (default 200)", "N" },
    { "gib-rounds", 0, 0, G_OPTION_ARG_INT, &gib_rounds, "1 GiB transfers each way (default 5)", "N" },
    { "streamers", 0, 0, G_OPTION_ARG_INT, &streamers, "Processes streaming Output at once (default 50)", "N" },
    { "rate", 0, 0, G_OPTION_ARG_INT, &rate, "Paced stream: lines a second, each process (default 1000)", "N" },
    { "seconds", 0, 0, G_OPTION_ARG_INT, &seconds, "Paced stream: how long (default 5)", "N" },
    { "lines", 0, 0, G_OPTION_ARG_INT, &lines, "Flood: lines each process prints (default 20000)", "N" },
    { "results", 0, 0, G_OPTION_ARG_FILENAME, &results_path, "Markdown results (/tmp/bench-shell-results.md)", "FILE" },
    { NULL }
  };
  SpawnResult spawn = { { 0, }, };
  GibResult gib = { 0, };
  StreamResult paced = { 0, }, flood = { 0, };

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
                                "Spawn rate, 1 GiB through a passed fd, and loop lag under 50 output streams: "
                                "backplaned's shell backend against doing it in process.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-shell: %s\n", error->message);
      return 2;
    }
  rounds = CLAMP (rounds, 1, 1000);
  calls = CLAMP (calls, 1, 1000000);
  gib_rounds = CLAMP (gib_rounds, 1, 100);
  streamers = CLAMP (streamers, 1, 128);
  lines = CLAMP (lines, 1, 10000000);
  rate = CLAMP (rate, 1, 1000000);
  seconds = CLAMP (seconds, 1, 600);
  if (phases == NULL)
    phases = g_strdup ("123");
  if (results_path == NULL)
    results_path = g_strdup ("/tmp/bench-shell-results.md");

  bench_init ("bench-shell", logs, 0);
  head_path = g_find_program_in_path ("head");
  if (head_path == NULL || !g_file_test (TRUE_PATH, G_FILE_TEST_IS_EXECUTABLE))
    bench_die ("needs %s and head", TRUE_PATH);

  bench_make_tmpdir ();

  machine = bench_machine_line ();
  load_start = bench_load_line ();
  printf ("machine: %s\nload average at start: %s\n", machine, load_start);
  address = bench_start_bus (NULL);
  connection = bench_connect (address);
  bench_daemon_start (connection, address, DAEMON_CONFIG, NULL);

  if (strchr (phases, '1') != NULL)
    {
      printf ("1. spawn + wait of %s: %d interleaved rounds of %d each …\n", TRUE_PATH, rounds, calls);
      bench_spawn (connection, rounds, calls, &spawn);
    }
  if (strchr (phases, '2') != NULL)
    {
      printf ("2. 1 GiB through a pipe: %d rounds each way …\n", gib_rounds);
      bench_gib (connection, gib_rounds, &gib);
    }
  if (strchr (phases, '3') != NULL)
    {
      printf ("3. %d processes streaming Output: paced (%d lines/s each for %d s), then flood (%d lines each) …\n",
              streamers, rate, seconds, lines);
      bench_stream (connection, streamers, (guint) (rate * seconds), rate, &paced);
      bench_stream (connection, streamers, lines, 0, &flood);
    }
  load_end = bench_load_line ();

  g_string_append_printf (md, "# bench-shell results\n\nmachine: %s  \nload average at start: %s, at end: %s\n\n",
                          machine, load_start, load_end);
  printf ("\n");
  if (strchr (phases, '1') != NULL)
    {
      report (md, "## spawn + wait of %s per second (median of %d rounds of %d; ratio = median of per-round ratios)\n",
              TRUE_PATH, rounds, calls);
      report (md, "| how | spawns/s | range | vs posix_spawn | backplaned CPU per spawn |");
      report (md, "|---|---|---|---|---|");
      for (guint k = 0; k < N_SPAWN_KINDS; k++)
        {
          g_autofree char *cpu = k == SPAWN_DIRECT ? g_strdup ("") :
                                 g_strdup_printf ("%.0f µs", spawn.daemon_cpu_us[k]);

          report (md, "| %s | %.0f | %.0f–%.0f | %.2f× | %s |", spawn_kind_label[k], spawn.rate[k],
                  spawn.rate_min[k], spawn.rate_max[k], spawn.ratio[k], cpu);
        }
      report (md, "%s", "");
    }
  if (strchr (phases, '2') != NULL)
    {
      report (md, "## 1 GiB through a pipe (`head -c 1073741824 /dev/zero`; median of %d rounds each way)\n", gib_rounds);
      report (md, "| how | MiB/s | range |");
      report (md, "|---|---|---|");
      report (md, "| posix_spawn here, stdout = our pipe (raw copy) | %.0f | %.0f–%.0f |",
              gib.direct_mib_s, gib.direct_min, gib.direct_max);
      report (md, "| Shell.Spawn, `stdout` = our pipe passed as `h` | %.0f | %.0f–%.0f |",
              gib.daemon_mib_s, gib.daemon_min, gib.daemon_max);
      report (md, "%s", "");
      report (md, "Ratio through backplaned: %.2f× (goal ≥ 0.9×; median of per-round ratios). backplaned's CPU per GiB: "
              "%.0f ms; bytes its threads read and wrote during a transfer: %" G_GUINT64_FORMAT " at most "
              "(D-Bus messages only: it is out of the data path)\n",
              gib.ratio, gib.daemon_cpu_ms, gib.daemon_io_max);
    }
  if (strchr (phases, '3') != NULL)
    {
      report (md, "## Loop lag while %d processes stream output as Output signals (goal p99 < 2 ms)\n", streamers);
      report_stream (md, &paced);
      report_stream (md, &flood);
    }
  printf ("load average at end: %s\n", load_end);

  bench_daemon_stop ();
  g_dbus_connection_close_sync (connection, NULL, NULL);
  g_clear_object (&connection);
  bench_cleanup ();
  g_free (head_path);

  if (!g_file_set_contents (results_path, md->str, -1, &error))
    g_printerr ("bench-shell: cannot write %s: %s\n", results_path, error->message);
  else
    printf ("results written to %s\n", results_path);
  return EXIT_SUCCESS;
}
