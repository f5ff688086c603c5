/* bench-postgres.c: the postgres backend against baselines, in one run
 *
 * Starts a throw-away PostgreSQL cluster (tests/postgres/pg-cluster.sh:
 * fsync off, Unix socket), a private dbus-daemon and backplaned from the
 * build tree (bench-common.c) with two backends on that cluster:
 *
 *   db     the pool (pool.min=4, pool.max=16)
 *   fresh  the same, with pool.max-uses=1: every query opens (and closes)
 *          its own connection — connect-per-query
 *
 * and measures, each next to a baseline measured in the same run:
 *
 *  1. Query("SELECT 1") through D-Bus, 16 in flight, against Backend.Ping
 *     on the same object (the foundation's dispatch cost, no I/O); goal
 *     ≥ 0.5×;
 *  2. pooled against connect-per-query Query("SELECT 1"), 16 in flight;
 *     goal ≥ 10×;
 *  3. 1,000,000 rows through QueryToFd (csv and jsonl) against
 *     `psql -c "COPY (…) TO STDOUT"` for the same rows (csv); goal ≥ 0.5×,
 *     with backplaned's RSS growth while streaming (goal < 20 MiB);
 *  4. 2000 INSERTs as one Execute (pipeline mode: one sync per batch with
 *     atomic=true, one per statement without) against 2000 Query calls one
 *     after the other;
 *  5. backplaned's own Manager.LoopLag after every phase (goal p99 < 2 ms).
 *
 * Rates are medians of interleaved rounds. It asserts nothing about time
 * and exits 0 unless something breaks (then 1 with a message and the
 * logs). Every process it starts is stopped at exit, on error and on
 * SIGTERM, SIGINT or SIGHUP; if this program is killed otherwise, a
 * watchdog child stops the cluster, and the bus and the daemon die with it
 * (PR_SET_PDEATHSIG).
 *
 * Options: --rows N (default 1000000), --rounds N (default 3).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <gio/gunixinputstream.h>
#include <glib-unix.h>
#include <glib/gstdio.h>

#include "bench-common.h"

#define DB_PATH       BENCH_ROOT_PATH "/backend/db"
#define FRESH_PATH    BENCH_ROOT_PATH "/backend/fresh"
#define SQL_IFACE     "org.backplane.Backplane1.Sql"
#define BACKEND_IFACE "org.backplane.Backplane1.Backend"
#define IN_FLIGHT     16
#define CALL_TIMEOUT  60000

static const char *tmpdir;
static char *pg_dir;
static char *pg_script;
static char *conninfo;
static GDBusConnection *conn;
static int watchdog_fd = -1;
static pid_t watchdog_pid = -1;
static guint rounds = 3;
static guint rows_total = 1000000;

/* ------------------------------------------------------------------ */
/* Housekeeping                                                        */

static void
run_script (const char *action)
{
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "/bin/sh", pg_script, action, pg_dir, NULL };
  g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "BP_PG_BINDIR", BP_PG_BINDIR, TRUE);
  int status;

  /* the same server binaries as the start, whatever the script's default */
  if (!g_spawn_sync ("/", (char **) argv, envp, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL,
                     &status, &error))
    g_printerr ("pg-cluster.sh %s: %s\n", action, error->message);
}

/* Given to bench_at_cleanup(): bench_cleanup() and bench_die() call it
 * after killing the daemon and the bus, before removing the temporary
 * directory the cluster lives in. pg_ctl detaches the server, so
 * PR_SET_PDEATHSIG does not reach it. */
static void
stop_cluster (void)
{
  if (pg_dir != NULL && g_file_test (pg_dir, G_FILE_TEST_IS_DIR))
    run_script ("stop");
  if (watchdog_fd >= 0)
    {
      char c = 'x';

      if (write (watchdog_fd, &c, 1) != 1)
        g_printerr ("watchdog: write failed\n");
      close (watchdog_fd);
      watchdog_fd = -1;
      /* it exits at once on that byte: reap it, so it leaves no zombie */
      if (watchdog_pid > 0)
        while (waitpid (watchdog_pid, NULL, 0) < 0 && errno == EINTR)
          ;
      watchdog_pid = -1;
    }
}

/* A child that stops the cluster if we die without saying goodbye. */
static void
start_watchdog (void)
{
  int fds[2];
  pid_t pid;

  if (pipe (fds) != 0)
    bench_die ("pipe: %s", g_strerror (errno));
  pid = fork ();
  if (pid < 0)
    bench_die ("fork: %s", g_strerror (errno));
  if (pid == 0)
    {
      char c;
      ssize_t r;

      /* not bench_init()'s handlers: they need our main loop */
      signal (SIGTERM, SIG_DFL);
      signal (SIGINT, SIG_DFL);
      signal (SIGHUP, SIG_DFL);
      setsid ();
      close (fds[1]);
      do
        r = read (fds[0], &c, 1);
      while (r < 0 && errno == EINTR);
      if (r == 1)
        _exit (0);
      setenv ("BP_PG_BINDIR", BP_PG_BINDIR, 1);
      execl ("/bin/sh", "sh", "-c", "\"$0\" stop \"$1\" >/dev/null 2>&1; rm -rf \"$2\"",
             pg_script, pg_dir, tmpdir, (char *) NULL);
      _exit (127);
    }
  close (fds[0]);
  g_unix_set_fd_nonblocking (fds[1], FALSE, NULL);
  fcntl (fds[1], F_SETFD, FD_CLOEXEC);
  watchdog_fd = fds[1];
  watchdog_pid = pid;
}

static guint64
daemon_rss_kib (void)
{
  return bench_proc_status_kib (bench_daemon_pid (), "VmRSS");
}

/* ------------------------------------------------------------------ */
/* Setup                                                               */

static void
start_cluster (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_auto(GStrv) lines = NULL;
  int status;

  pg_script = g_build_filename (bench_source_root (), "tests", "postgres", "pg-cluster.sh", NULL);
  pg_dir = bench_tmp_path ("pg");
  start_watchdog ();
  bench_at_cleanup (stop_cluster);
  {
    const char *argv[] = { "/bin/sh", pg_script, "start", pg_dir, NULL };
    g_auto(GStrv) envp = g_environ_setenv (g_get_environ (), "BP_PG_BINDIR", BP_PG_BINDIR, TRUE);

    if (!g_spawn_sync ("/", (char **) argv, envp, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status, &error))
      bench_die ("pg-cluster.sh: %s", error->message);
    if (!g_spawn_check_wait_status (status, NULL))
      bench_die ("pg-cluster.sh start failed: %s", err);
  }
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], "PG_CONNINFO_SOCKET='"))
      {
        conninfo = g_strdup (lines[i] + strlen ("PG_CONNINFO_SOCKET='"));
        conninfo[strlen (conninfo) - 1] = '\0';
      }
  if (conninfo == NULL)
    bench_die ("pg-cluster.sh printed no socket conninfo: %s", out);
}

static GVariant *
get_property (const char *path,
              const char *iface,
              const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = g_dbus_connection_call_sync (conn, BENCH_BUS_NAME, path,
                                                           "org.freedesktop.DBus.Properties", "Get",
                                                           g_variant_new ("(ss)", iface, name),
                                                           G_VARIANT_TYPE ("(v)"), G_DBUS_CALL_FLAGS_NONE,
                                                           CALL_TIMEOUT, NULL, &error);
  GVariant *value;

  if (reply == NULL)
    bench_die ("Get %s.%s: %s", iface, name, error->message);
  g_variant_get (reply, "(v)", &value);
  return value;
}

/* Starts the bus and backplaned, and waits until both backends are ready. */
static void
start_daemon (void)
{
  g_autofree char *address = NULL;
  g_autofree char *config = NULL;
  gint64 deadline;

  config = g_strdup_printf ("[backend db]\ntype=postgres\nconninfo=%s\npool.min=4\npool.max=16\n"
                            "max-statements=100000\n\n"
                            "[backend fresh]\ntype=postgres\nconninfo=%s\npool.max=16\npool.max-uses=1\n",
                            conninfo, conninfo);
  address = bench_start_bus (NULL);
  conn = bench_connect (address);
  bench_daemon_start (conn, address, config, NULL);

  for (guint i = 0; i < 2; i++)
    {
      const char *path = i == 0 ? DB_PATH : FRESH_PATH;

      deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;
      for (;;)
        {
          g_autoptr(GVariant) state = get_property (path, BACKEND_IFACE, "State");

          if (g_str_equal (g_variant_get_string (state, NULL), "ready"))
            break;
          if (g_get_monotonic_time () > deadline)
            bench_die ("%s is %s", path, g_variant_get_string (state, NULL));
          bench_iterate_for (50);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Calls with N in flight                                              */

typedef struct
{
  const char *path;
  const char *iface;
  const char *method;
  GVariant   *params;      /* (owned) */
  const char *reply_type;
  guint       to_send;
  guint       in_flight;
  guint       done;
  GError     *error;
} Batch;

static void send_one (Batch *b);

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Batch *b = user_data;
  g_autoptr(GVariant) reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result,
                                                             b->error == NULL ? &b->error : NULL);

  b->in_flight--;
  b->done++;
  if (b->to_send > 0 && b->error == NULL)
    send_one (b);
}

static void
send_one (Batch *b)
{
  b->to_send--;
  b->in_flight++;
  g_dbus_connection_call (conn, BENCH_BUS_NAME, b->path, b->iface, b->method, b->params,
                          b->reply_type != NULL ? G_VARIANT_TYPE (b->reply_type) : NULL,
                          G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT, NULL, call_done_cb, b);
}

/* Returns calls per second. */
static double
run_batch (const char *path,
           const char *iface,
           const char *method,
           GVariant   *params,
           const char *reply_type,
           guint       n_calls,
           guint       in_flight)
{
  Batch b = { path, iface, method, params != NULL ? g_variant_ref_sink (params) : NULL, reply_type, n_calls, 0, 0, NULL };
  gint64 start = g_get_monotonic_time ();
  gint64 elapsed;

  for (guint i = 0; i < in_flight && b.to_send > 0; i++)
    send_one (&b);
  while (b.in_flight > 0)
    g_main_context_iteration (NULL, TRUE);
  elapsed = g_get_monotonic_time () - start;
  g_clear_pointer (&b.params, g_variant_unref);
  if (b.error != NULL)
    bench_die ("%s.%s: %s", iface, method, b.error->message);
  return n_calls / (elapsed / 1e6);
}

static GVariant *
query_params (const char *sql)
{
  return g_variant_new ("(s@ava{sv})", sql, g_variant_new_array (G_VARIANT_TYPE_VARIANT, NULL, 0), NULL);
}

static void
query_ok (const char *sql)
{
  run_batch (DB_PATH, SQL_IFACE, "Query", query_params (sql), "(a(ss)aa{sv})", 1, 1);
}

/* ------------------------------------------------------------------ */
/* Loop lag                                                            */

static void
print_lag (const char *phase)
{
  BenchLoopLag l;

  /* Backend.Ping: a call that wakes the loop and touches no database */
  bench_read_loop_lag (conn, DB_PATH, BACKEND_IFACE, "Ping", &l);
  g_print ("  loop lag after %-22s p50 %5" G_GINT64_FORMAT " us  p99 %6" G_GINT64_FORMAT " us  "
           "max %7" G_GINT64_FORMAT " us  stalls>16ms %" G_GUINT64_FORMAT "  [goal p99 < 2000 us]\n",
           phase, l.p50_us, l.p99_us, l.max_us, l.stalls);
}

/* ------------------------------------------------------------------ */
/* Phases                                                              */

static void
phase_query_vs_ping (void)
{
  g_autofree double *ping = g_new (double, rounds);
  g_autofree double *query = g_new (double, rounds);
  g_autofree double *ratio = g_new (double, rounds);
  const guint n = 10000;

  g_print ("\n1. Query(\"SELECT 1\") vs Backend.Ping, %d in flight, %u calls a round\n", IN_FLIGHT, n);
  for (guint r = 0; r < rounds; r++)
    {
      ping[r] = run_batch (DB_PATH, BACKEND_IFACE, "Ping", NULL, NULL, n, IN_FLIGHT);
      query[r] = run_batch (DB_PATH, SQL_IFACE, "Query", query_params ("SELECT 1"), "(a(ss)aa{sv})", n, IN_FLIGHT);
      ratio[r] = query[r] / ping[r];
    }
  g_print ("  Ping  %9.0f calls/s\n  Query %9.0f calls/s\n  ratio %9.2fx   [goal >= 0.5x]\n",
           bench_median (ping, rounds), bench_median (query, rounds), bench_median (ratio, rounds));
  print_lag ("query-vs-ping");
}

static void
phase_pooled_vs_fresh (void)
{
  g_autofree double *pooled = g_new (double, rounds);
  g_autofree double *fresh = g_new (double, rounds);
  g_autofree double *ratio = g_new (double, rounds);
  const guint n_pooled = 5000;
  const guint n_fresh = 400;

  g_print ("\n2. pooled vs connect-per-query Query(\"SELECT 1\"), %d in flight\n", IN_FLIGHT);
  for (guint r = 0; r < rounds; r++)
    {
      pooled[r] = run_batch (DB_PATH, SQL_IFACE, "Query", query_params ("SELECT 1"), "(a(ss)aa{sv})",
                             n_pooled, IN_FLIGHT);
      fresh[r] = run_batch (FRESH_PATH, SQL_IFACE, "Query", query_params ("SELECT 1"), "(a(ss)aa{sv})",
                            n_fresh, IN_FLIGHT);
      ratio[r] = pooled[r] / fresh[r];
    }
  g_print ("  pooled           %9.0f queries/s\n  connect-per-query %8.0f queries/s\n"
           "  ratio            %9.1fx   [goal >= 10x]\n",
           bench_median (pooled, rounds), bench_median (fresh, rounds), bench_median (ratio, rounds));
  print_lag ("pooled-vs-fresh");
}

/* Reads @fd to EOF (blocking; the replies arrive on GDBus's own thread),
 * sampling the daemon's RSS. Returns bytes read. */
static guint64
drain (int       fd,
       guint64   base_rss,
       guint64  *peak_growth_kib)
{
  char buf[65536];
  guint64 total = 0;
  gint64 next_sample = 0;
  ssize_t n;

  for (;;)
    {
      n = read (fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      total += n;
      if (peak_growth_kib != NULL && g_get_monotonic_time () >= next_sample)
        {
          guint64 rss = daemon_rss_kib ();

          if (rss > base_rss && rss - base_rss > *peak_growth_kib)
            *peak_growth_kib = rss - base_rss;
          next_sample = g_get_monotonic_time () + 10000;
        }
    }
  if (n < 0)
    bench_die ("read: %s", g_strerror (errno));
  close (fd);
  return total;
}

typedef struct
{
  GVariant *reply;
  GError   *error;
  gboolean  done;
} Reply;

static void
fd_call_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Reply *r = user_data;

  r->reply = g_dbus_connection_call_with_unix_fd_list_finish (G_DBUS_CONNECTION (source), NULL, result, &r->error);
  r->done = TRUE;
}

/* Returns rows per second through QueryToFd. */
static double
stream_query_to_fd (const char *sql,
                    const char *format,
                    guint64    *out_bytes,
                    guint64    *peak_growth_kib)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  Reply r = { NULL, NULL, FALSE };
  guint64 base = daemon_rss_kib ();
  gint64 start;
  gint64 elapsed;
  int pipe_fds[2];

  if (!g_unix_open_pipe (pipe_fds, FD_CLOEXEC, NULL))
    bench_die ("pipe");
  g_unix_fd_list_append (fds, pipe_fds[1], NULL);
  close (pipe_fds[1]);
  start = g_get_monotonic_time ();
  g_dbus_connection_call_with_unix_fd_list (conn, BENCH_BUS_NAME, DB_PATH, SQL_IFACE, "QueryToFd",
                                            g_variant_new_parsed ("(%s, @av [], @h 0, {'format': <%s>})", sql, format),
                                            G_VARIANT_TYPE ("(a(ss))"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT,
                                            fds, NULL, fd_call_done_cb, &r);
  /* Our copy of the write end must go, or the read never sees EOF (the
   * message holds the other one until it is written). */
  g_clear_object (&fds);
  *out_bytes = drain (pipe_fds[0], base, peak_growth_kib);
  elapsed = g_get_monotonic_time () - start;
  while (!r.done)
    g_main_context_iteration (NULL, TRUE);
  if (r.reply == NULL)
    bench_die ("QueryToFd: %s", r.error->message);
  g_variant_unref (r.reply);
  return rows_total / (elapsed / 1e6);
}

/* Returns rows per second through psql's COPY TO STDOUT. */
static double
stream_psql (const char *sql,
             guint64    *out_bytes)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *psql = g_build_filename (BP_PG_BINDIR, "psql", NULL);
  g_autofree char *copy = g_strdup_printf ("COPY (%s) TO STDOUT WITH (FORMAT csv, HEADER)", sql);
  g_autoptr(GSubprocess) proc = NULL;
  GInputStream *out;
  gint64 start = g_get_monotonic_time ();
  gint64 elapsed;
  int fd;

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, psql, "-X", "-q", "-d", conninfo, "-c", copy, NULL);
  if (proc == NULL)
    bench_die ("psql: %s", error->message);
  out = g_subprocess_get_stdout_pipe (proc);
  fd = dup (g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (out)));
  g_unix_set_fd_nonblocking (fd, FALSE, NULL);
  *out_bytes = drain (fd, 0, NULL);
  if (!g_subprocess_wait_check (proc, NULL, &error))
    bench_die ("psql: %s", error->message);
  elapsed = g_get_monotonic_time () - start;
  return rows_total / (elapsed / 1e6);
}

static void
phase_stream (void)
{
  g_autofree char *sql = g_strdup_printf ("SELECT g AS id, 'name-' || g AS name, g * 0.5 AS score "
                                          "FROM (SELECT generate_series(1, %u) AS g) s", rows_total);
  g_autofree double *psql = g_new (double, rounds);
  g_autofree double *csv = g_new (double, rounds);
  g_autofree double *jsonl = g_new (double, rounds);
  g_autofree double *ratio_csv = g_new (double, rounds);
  g_autofree double *ratio_jsonl = g_new (double, rounds);
  guint64 bytes_psql = 0, bytes_csv = 0, bytes_jsonl = 0;
  guint64 growth = 0;
  guint64 rss_before = daemon_rss_kib ();

  g_print ("\n3. %u rows: QueryToFd vs psql COPY TO STDOUT (csv)\n", rows_total);
  for (guint r = 0; r < rounds; r++)
    {
      psql[r] = stream_psql (sql, &bytes_psql);
      csv[r] = stream_query_to_fd (sql, "csv", &bytes_csv, &growth);
      jsonl[r] = stream_query_to_fd (sql, "jsonl", &bytes_jsonl, &growth);
      ratio_csv[r] = csv[r] / psql[r];
      ratio_jsonl[r] = jsonl[r] / psql[r];
    }
  g_print ("  psql COPY csv     %9.0f rows/s  (%" G_GUINT64_FORMAT " bytes)\n",
           bench_median (psql, rounds), bytes_psql);
  g_print ("  QueryToFd csv     %9.0f rows/s  (%" G_GUINT64_FORMAT " bytes)  ratio %.2fx   [goal >= 0.5x]\n",
           bench_median (csv, rounds), bytes_csv, bench_median (ratio_csv, rounds));
  g_print ("  QueryToFd jsonl   %9.0f rows/s  (%" G_GUINT64_FORMAT " bytes)  ratio %.2fx\n",
           bench_median (jsonl, rounds), bytes_jsonl, bench_median (ratio_jsonl, rounds));
  g_print ("  backplaned RSS    %" G_GUINT64_FORMAT " KiB before, peak growth while streaming %.1f MiB"
           "   [goal < 20 MiB]\n", rss_before, growth / 1024.0);
  print_lag ("streaming");
}

static GVariant *
insert_statements (guint n,
                   guint round)
{
  GVariantBuilder b;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(sav)"));
  for (guint i = 0; i < n; i++)
    {
      GVariant *params[2] = {
        g_variant_new_variant (g_variant_new_int32 ((gint32) (round * n + i))),
        g_variant_new_variant (g_variant_new_string ("pipelined row")),
      };

      g_variant_builder_add (&b, "(s@av)", "INSERT INTO bench_ins (id, v) VALUES ($1, $2)",
                             g_variant_new_array (G_VARIANT_TYPE_VARIANT, params, 2));
    }
  return g_variant_builder_end (&b);
}

static double
execute_pipeline (guint    n,
                  guint    round,
                  gboolean atomic)
{
  GVariantDict options;

  g_variant_dict_init (&options, NULL);
  g_variant_dict_insert (&options, "atomic", "b", atomic);
  return n * run_batch (DB_PATH, SQL_IFACE, "Execute",
                        g_variant_new ("(@a(sav)@a{sv})", insert_statements (n, round), g_variant_dict_end (&options)),
                        "(at)", 1, 1);
}

static double
sequential_inserts (guint n,
                    guint round)
{
  gint64 start = g_get_monotonic_time ();

  for (guint i = 0; i < n; i++)
    {
      GVariant *params[2] = {
        g_variant_new_variant (g_variant_new_int32 ((gint32) (round * n + i))),
        g_variant_new_variant (g_variant_new_string ("sequential row")),
      };

      run_batch (DB_PATH, SQL_IFACE, "Query",
                 g_variant_new ("(s@ava{sv})", "INSERT INTO bench_ins (id, v) VALUES ($1, $2)",
                                g_variant_new_array (G_VARIANT_TYPE_VARIANT, params, 2), NULL),
                 "(a(ss)aa{sv})", 1, 1);
    }
  return n / ((g_get_monotonic_time () - start) / 1e6);
}

static void
phase_pipeline (void)
{
  g_autofree double *seq = g_new (double, rounds);
  g_autofree double *one_sync = g_new (double, rounds);
  g_autofree double *sync_each = g_new (double, rounds);
  g_autofree double *ratio = g_new (double, rounds);
  g_autofree double *ratio_each = g_new (double, rounds);
  const guint n = 2000;

  query_ok ("CREATE TABLE bench_ins (id int, v text)");
  g_print ("\n4. %u INSERTs: one Execute (pipeline) vs %u Query calls one after the other\n", n, n);
  for (guint r = 0; r < rounds; r++)
    {
      seq[r] = sequential_inserts (n, 3 * r);
      one_sync[r] = execute_pipeline (n, 3 * r + 1, TRUE);
      sync_each[r] = execute_pipeline (n, 3 * r + 2, FALSE);
      ratio[r] = one_sync[r] / seq[r];
      ratio_each[r] = sync_each[r] / seq[r];
    }
  g_print ("  sequential Query            %9.0f rows/s\n", bench_median (seq, rounds));
  g_print ("  Execute atomic (one sync)   %9.0f rows/s  ratio %.1fx\n", bench_median (one_sync, rounds),
           bench_median (ratio, rounds));
  g_print ("  Execute (sync per stmt)     %9.0f rows/s  ratio %.1fx\n", bench_median (sync_each, rounds),
           bench_median (ratio_each, rounds));
  query_ok ("DROP TABLE bench_ins");
  print_lag ("pipeline");
}

int
main (int   argc,
      char *argv[])
{
  static const char * const logs[] = { "backplaned.log", "pg/postgres.log", "dbus-daemon.log", NULL };
  gint64 start = g_get_monotonic_time ();

  for (int i = 1; i < argc; i++)
    {
      if (g_str_equal (argv[i], "--rows") && i + 1 < argc)
        rows_total = (guint) g_ascii_strtoull (argv[++i], NULL, 10);
      else if (g_str_equal (argv[i], "--rounds") && i + 1 < argc)
        {
          rounds = (guint) g_ascii_strtoull (argv[++i], NULL, 10);
          rounds = MAX (rounds, 1);
        }
      else
        {
          g_printerr ("usage: %s [--rows N] [--rounds N]\n", argv[0]);
          return 2;
        }
    }
  if (!g_file_test (BP_PG_BINDIR "/pg_ctl", G_FILE_TEST_IS_EXECUTABLE))
    {
      g_print ("bench-postgres: no PostgreSQL server in %s, nothing to measure\n", BP_PG_BINDIR);
      return 0;
    }
  signal (SIGPIPE, SIG_IGN);

  /* the logs can be long: their tails on failure */
  bench_init ("bench-postgres", logs, 8192);
  tmpdir = bench_make_tmpdir ();
  /* As root the server runs as postgres, which must reach its directory. */
  g_chmod (tmpdir, 0755);
  start_cluster ();
  start_daemon ();

  g_print ("bench-postgres: PostgreSQL in %s, backplaned pid %u, %u round(s) per measurement, "
           "medians shown\n", pg_dir, bench_daemon_pid (), rounds);
  /* Warm up: the pools, the server's caches. */
  run_batch (DB_PATH, SQL_IFACE, "Query", query_params ("SELECT 1"), "(a(ss)aa{sv})", 2000, IN_FLIGHT);
  run_batch (FRESH_PATH, SQL_IFACE, "Query", query_params ("SELECT 1"), "(a(ss)aa{sv})", 32, IN_FLIGHT);

  phase_query_vs_ping ();
  phase_pooled_vs_fresh ();
  phase_stream ();
  phase_pipeline ();

  {
    /* What the daemon logged about stalls (what ran, how long). */
    g_autofree char *log_path = bench_tmp_path ("backplaned.log");
    g_autofree char *log = NULL;

    if (g_file_get_contents (log_path, &log, NULL, NULL))
      {
        g_auto(GStrv) lines = g_strsplit (log, "\n", -1);

        for (guint i = 0; lines[i] != NULL; i++)
          if (strstr (lines[i], "stalled") != NULL)
            g_print ("  backplaned: %s\n", lines[i]);
      }
  }
  g_print ("\nbench-postgres: done in %.0f s\n", (g_get_monotonic_time () - start) / 1e6);
  bench_daemon_stop ();
  g_dbus_connection_close_sync (conn, NULL, NULL);
  g_clear_object (&conn);
  bench_cleanup ();
  return 0;
}
