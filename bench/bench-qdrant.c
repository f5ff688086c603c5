/* bench-qdrant.c: the qdrant backend against the official JS client and raw HTTP
 *
 * Issue 7's benchmark. In one run, against one tests/qdrant/qdrantserver.py
 * (the project's Qdrant-compatible server, Python, request validation on),
 * it
 *
 *  1. writes a JSON Lines file of --points points (default 100,000) of
 *     dimension --dim (384): {"id": i, "vector": [six-decimal floats],
 *     "payload": {"n": i}};
 *  2. upserts it through backplaned (built tree, private dbus-daemon):
 *     Vectors.UpsertFromFd with the file's fd, batches of --batch (256),
 *     and reads the daemon's RSS before and its peak (VmHWM, reset first
 *     through /proc/PID/clear_refs) and RSS after;
 *  3. upserts the same file with the official @qdrant/js-client-rest
 *     (tests/qdrant/bench-js-upsert.mjs: stream the file, JSON.parse each
 *     line, client.upsert with wait), once with one request in flight (as
 *     backplaned sends them: in order, one at a time) and once with four;
 *  4. measures Vectors.Query round trips per second through D-Bus against
 *     a loop of the same POST /collections/{c}/points/query done directly
 *     with libsoup in this process, on a small collection so the transport
 *     and not the Python server's brute-force scoring shows (interleaved
 *     round pairs, medians).
 *
 * Each upsert goes into its own collection, which is counted (exactly
 * --points) and deleted afterwards so the server starts every run with the
 * same memory; the server's schema-violation log must stay empty. It
 * prints ratios, writes them to /tmp/bench-qdrant-results.md (or
 * --results FILE) and exits 0; it asserts nothing about time. Every process
 * it starts is killed on exit, on error and (PR_SET_PDEATHSIG) if it dies.
 *
 * Needs: python3, dbus-daemon; node and `npm ci --prefix tests/qdrant` for
 * the JS baseline (without them that part is reported as skipped).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>

#include "bench-common.h"

#if defined(__has_include)
# if __has_include(<libsoup/soup.h>)
#  include <libsoup/soup.h>
#  define HAVE_SOUP 1
# endif
#endif

#ifndef HAVE_SOUP
int
main (int   argc,
      char *argv[])
{
  printf ("bench-qdrant: skipped: built without libsoup-3.0 (the qdrant plugin is disabled)\n");
  return 77;
}
#else

#define DAEMON_NAME   BENCH_BUS_NAME
#define VEC_PATH      "/org/backplane/Backplane1/backend/vec"
#define VEC_IFACE     "org.backplane.Backplane1.Vectors"

#define CALL_TIMEOUT_MS   600000
#define RTT_POINTS        100
#define RTT_LIMIT         10

/* ------------------------------------------------------------------ */
/* /proc and the machine                                               */

/* Resets VmHWM to the current RSS (Linux ≥ 4.0); FALSE if not allowed. */
static gboolean
proc_reset_peak (guint32 pid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/clear_refs", pid);
  int fd = g_open (path, O_WRONLY | O_CLOEXEC, 0);
  gboolean ok;

  if (fd < 0)
    return FALSE;
  ok = write (fd, "5", 1) == 1;
  close (fd);
  return ok;
}

/* Total CPU time (user + system) of a process, in seconds. */
static double
proc_cpu_seconds (guint32 pid)
{
  return (double) bench_proc_cpu_ticks (pid) / (double) sysconf (_SC_CLK_TCK);
}

static char *
machine_line (void)
{
  g_autofree char *machine = bench_machine_line ();

  return g_strdup_printf ("%s, libsoup %u.%u.%u", machine,
                          soup_get_major_version (), soup_get_minor_version (), soup_get_micro_version ());
}

/* ------------------------------------------------------------------ */
/* The points file                                                     */

static guint64 rng_state = 0x9e3779b97f4a7c15ull;

static guint64
rng_next (void)
{
  /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1dull;
}

/* Appends a uniform value in [-0.5, 0.5) with six decimals, as text. */
static char *
put_component (char *p)
{
  gint64 k = (gint64) (rng_next () >> 40) % 1000000 - 500000;   /* −500000 … 499999 */
  guint64 a = (guint64) (k < 0 ? -k : k);

  if (k < 0)
    *p++ = '-';
  *p++ = '0';
  *p++ = '.';
  for (int d = 5; d >= 0; d--)
    {
      p[d] = (char) ('0' + a % 10);
      a /= 10;
    }
  return p + 6;
}

static void
fill_vector (double *v,
             guint   dim)
{
  for (guint i = 0; i < dim; i++)
    v[i] = (double) ((gint64) (rng_next () >> 40) % 1000000 - 500000) / 1e6;
}

/* Returns: the file size in bytes */
static guint64
write_points (const char *path,
              guint       n,
              guint       dim)
{
  FILE *f = fopen (path, "w");
  g_autofree char *line = g_malloc ((gsize) dim * 12 + 128);
  guint64 size = 0;

  if (f == NULL)
    bench_die ("cannot create %s: %s", path, g_strerror (errno));
  setvbuf (f, NULL, _IOFBF, 1 << 20);
  for (guint i = 0; i < n; i++)
    {
      char *p = line + sprintf (line, "{\"id\":%u,\"vector\":[", i + 1);

      for (guint j = 0; j < dim; j++)
        {
          if (j > 0)
            *p++ = ',';
          p = put_component (p);
        }
      p += sprintf (p, "],\"payload\":{\"n\":%u}}\n", i);
      if (fwrite (line, 1, (gsize) (p - line), f) != (gsize) (p - line))
        bench_die ("writing %s: %s", path, g_strerror (errno));
      size += (guint64) (p - line);
    }
  if (fclose (f) != 0)
    bench_die ("writing %s: %s", path, g_strerror (errno));
  return size;
}

/* ------------------------------------------------------------------ */
/* The services                                                        */

static GSubprocess *server_proc;
static char *server_url;

/* qdrantserver.py on a loopback port; it exits on EOF on its stdin. */
static void
start_server (const char *source_root)
{
  g_autofree char *script = NULL;
  const char *python = g_getenv ("PYTHON");
  const char *env_script = g_getenv ("QDRANT_SERVER");
  const char *argv[] = { python != NULL ? python : "python3", NULL, "--port", "0", NULL };
  guint16 port;

  script = env_script != NULL ? g_strdup (env_script)
                              : g_build_filename (source_root, "tests", "qdrant", "qdrantserver.py", NULL);
  if (!g_file_test (script, G_FILE_TEST_EXISTS))
    bench_die ("%s not found", script);
  argv[1] = script;
  port = bench_start_server (argv, "qdrantserver.log", &server_proc);
  server_url = g_strdup_printf ("http://127.0.0.1:%u", port);
}

static void
start_daemon (GDBusConnection *connection,
              const char      *address)
{
  g_autofree char *config = NULL;
  g_auto(GStrv) envp = bench_service_environ (NULL);

  config = g_strdup_printf ("[backend vec]\n"
                            "type=qdrant\n"
                            "url=%s\n"
                            /* one 256-point batch through Python takes ~0.1 s;
                             * be generous on a loaded machine */
                            "timeout-ms=300000\n",
                            server_url);
  /* The daemon talks to 127.0.0.1 only. */
  envp = g_environ_setenv (envp, "no_proxy", "*", TRUE);
  envp = g_environ_unsetenv (envp, "http_proxy");
  bench_daemon_start (connection, address, config, envp);
}

/* ------------------------------------------------------------------ */
/* D-Bus and HTTP helpers                                              */

static GVariant *
vcall (GDBusConnection *connection,
       const char      *method,
       GVariant        *params,
       const char      *reply_type)
{
  g_autoptr(GError) error = NULL;
  GVariant *r = g_dbus_connection_call_sync (connection, DAEMON_NAME, VEC_PATH, VEC_IFACE, method, params,
                                             reply_type != NULL ? G_VARIANT_TYPE (reply_type) : NULL,
                                             G_DBUS_CALL_FLAGS_NO_AUTO_START, CALL_TIMEOUT_MS, NULL, &error);

  if (r == NULL)
    bench_die ("Vectors.%s: %s", method, error->message);
  return r;
}

static GVariant *
no_options (void)
{
  return g_variant_new ("a{sv}", NULL);
}

static void
create_collection (GDBusConnection *connection,
                   const char      *name,
                   guint            dim)
{
  g_autofree char *config = g_strdup_printf ("{\"vectors\":{\"size\":%u,\"distance\":\"Cosine\"}}", dim);

  g_variant_unref (vcall (connection, "CreateCollection", g_variant_new ("(ss)", name, config), NULL));
}

static guint64
count_points (GDBusConnection *connection,
              const char      *name)
{
  g_autoptr(GVariant) r = vcall (connection, "Count", g_variant_new ("(s@a{sv})", name, no_options ()), "(t)");
  guint64 n;

  g_variant_get (r, "(t)", &n);
  return n;
}

static void
delete_collection (GDBusConnection *connection,
                   const char      *name)
{
  g_variant_unref (vcall (connection, "DeleteCollection", g_variant_new ("(s)", name), NULL));
}

static char *
http_get (SoupSession *http,
          const char  *path)
{
  g_autofree char *uri = g_strconcat (server_url, path, NULL);
  g_autoptr(SoupMessage) msg = soup_message_new ("GET", uri);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = soup_session_send_and_read (http, msg, NULL, &error);

  if (body == NULL)
    bench_die ("GET %s: %s", path, error->message);
  return g_strndup (g_bytes_get_data (body, NULL), g_bytes_get_size (body));
}

/* The server checks every request body against the OpenAPI schema. */
static void
check_no_violations (SoupSession *http,
                     const char  *after)
{
  g_autofree char *v = http_get (http, "/__test/violations");

  g_strstrip (v);
  if (!g_str_equal (v, "[]"))
    bench_die ("the server saw request bodies that violate the Qdrant schema after %s: %.500s", after, v);
}

/* ------------------------------------------------------------------ */
/* 2. UpsertFromFd                                                      */

typedef struct
{
  double       seconds;
  double       daemon_cpu_s;
  double       server_cpu_s;
  guint64      rss_before_kib;
  guint64      hwm_kib;          /* peak during the upsert */
  guint64      rss_after_kib;
  gboolean     hwm_reset;        /* VmHWM could be reset before */
  BenchLoopLag lag_before;
  BenchLoopLag lag_after;
} BpRun;

static void
run_backplane (GDBusConnection *connection,
               const char      *path,
               guint            n,
               guint            dim,
               guint            batch,
               BpRun           *out)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) r = NULL;
  guint32 pid = bench_daemon_pid ();
  GVariantDict opts;
  guint64 upserted = 0;
  double cpu0;
  gint64 t0;
  int fd, idx;

  create_collection (connection, "bp", dim);
  bench_read_loop_lag (connection, VEC_PATH, VEC_IFACE, "ListCollections", &out->lag_before);
  fd = g_open (path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0)
    bench_die ("cannot open %s: %s", path, g_strerror (errno));
  idx = g_unix_fd_list_append (fds, fd, &error);
  close (fd);
  if (idx < 0)
    bench_die ("%s", error->message);
  g_variant_dict_init (&opts, NULL);
  g_variant_dict_insert (&opts, "batch-size", "u", batch);

  out->rss_before_kib = bench_proc_status_kib (pid, "VmRSS");
  out->hwm_reset = proc_reset_peak (pid);
  cpu0 = proc_cpu_seconds (pid);
  out->server_cpu_s = proc_cpu_seconds (bench_pid (server_proc));
  t0 = g_get_monotonic_time ();
  r = g_dbus_connection_call_with_unix_fd_list_sync (connection, DAEMON_NAME, VEC_PATH, VEC_IFACE, "UpsertFromFd",
                                                     g_variant_new ("(sh@a{sv})", "bp", idx,
                                                                    g_variant_dict_end (&opts)),
                                                     G_VARIANT_TYPE ("(t)"), G_DBUS_CALL_FLAGS_NO_AUTO_START,
                                                     CALL_TIMEOUT_MS, fds, NULL, NULL, &error);
  out->seconds = (double) (g_get_monotonic_time () - t0) / 1e6;
  if (r == NULL)
    bench_die ("Vectors.UpsertFromFd: %s", error->message);
  out->daemon_cpu_s = proc_cpu_seconds (pid) - cpu0;
  out->server_cpu_s = proc_cpu_seconds (bench_pid (server_proc)) - out->server_cpu_s;
  out->hwm_kib = bench_proc_status_kib (pid, "VmHWM");
  out->rss_after_kib = bench_proc_status_kib (pid, "VmRSS");
  bench_read_loop_lag (connection, VEC_PATH, VEC_IFACE, "ListCollections", &out->lag_after);
  g_variant_get (r, "(t)", &upserted);
  if (upserted != n)
    bench_die ("UpsertFromFd reported %" G_GUINT64_FORMAT " points, not %u", upserted, n);
  if (count_points (connection, "bp") != n)
    bench_die ("collection bp holds %" G_GUINT64_FORMAT " points, not %u", count_points (connection, "bp"), n);
  delete_collection (connection, "bp");
}

/* ------------------------------------------------------------------ */
/* 3. The official JS client                                            */

typedef struct
{
  gboolean ran;
  char    *skipped;        /* (nullable) why not */
  double   seconds;        /* the script's own: first line read → last answer */
  double   wall_seconds;   /* including node's start-up */
  double   rss_peak_mib;
  double   server_cpu_s;
} JsRun;

static void
run_js (GDBusConnection *connection,
        const char      *source_root,
        const char      *path,
        guint            n,
        guint            dim,
        guint            batch,
        guint            concurrency,
        JsRun           *out)
{
  g_autofree char *node = g_find_program_in_path ("node");
  g_autofree char *script = g_build_filename (source_root, "tests", "qdrant", "bench-js-upsert.mjs", NULL);
  g_autofree char *module = g_build_filename (source_root, "tests", "qdrant", "node_modules", "@qdrant",
                                              "js-client-rest", "package.json", NULL);
  g_autofree char *collection = g_strdup_printf ("js%u", concurrency);
  g_autofree char *batch_text = g_strdup_printf ("%u", batch);
  g_autofree char *conc_text = g_strdup_printf ("%u", concurrency);
  g_autofree char *stdout_text = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { node, script, "--url", server_url, "--collection", collection, "--file", path,
                         "--batch", batch_text, "--concurrency", conc_text, NULL };
  const char *p;
  gint64 t0;

  memset (out, 0, sizeof *out);
  if (node == NULL)
    {
      out->skipped = g_strdup ("node is not installed");
      return;
    }
  if (!g_file_test (module, G_FILE_TEST_EXISTS))
    {
      out->skipped = g_strdup ("@qdrant/js-client-rest is not installed (npm ci --prefix tests/qdrant)");
      return;
    }
  create_collection (connection, collection, dim);
  out->server_cpu_s = proc_cpu_seconds (bench_pid (server_proc));
  t0 = g_get_monotonic_time ();
  proc = bench_spawn_logged (argv, NULL, G_SUBPROCESS_FLAGS_STDOUT_PIPE, "node.log");
  if (!g_subprocess_communicate_utf8 (proc, NULL, NULL, &stdout_text, NULL, &error))
    bench_die ("node: %s", error->message);
  out->wall_seconds = (double) (g_get_monotonic_time () - t0) / 1e6;
  out->server_cpu_s = proc_cpu_seconds (bench_pid (server_proc)) - out->server_cpu_s;
  bench_forget_child (proc);
  if (!g_subprocess_get_if_exited (proc) || g_subprocess_get_exit_status (proc) != 0)
    bench_die ("bench-js-upsert.mjs failed (its log follows)");
  /* {"points":N,"seconds":S,"requests":R,"rss_peak_mib":M} */
  if ((p = strstr (stdout_text, "\"points\":")) == NULL || g_ascii_strtoull (p + 9, NULL, 10) != n)
    bench_die ("bench-js-upsert.mjs did not upsert %u points: %s", n, stdout_text);
  if ((p = strstr (stdout_text, "\"seconds\":")) == NULL)
    bench_die ("bench-js-upsert.mjs printed no time: %s", stdout_text);
  out->seconds = g_ascii_strtod (p + 10, NULL);
  if ((p = strstr (stdout_text, "\"rss_peak_mib\":")) != NULL)
    out->rss_peak_mib = g_ascii_strtod (p + 15, NULL);
  if (count_points (connection, collection) != n)
    bench_die ("collection %s holds %" G_GUINT64_FORMAT " points, not %u", collection,
               count_points (connection, collection), n);
  delete_collection (connection, collection);
  out->ran = TRUE;
}

static double
children_cpu_seconds (void)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/stat", (guint) getpid ());
  g_autofree char *text = NULL;
  g_auto(GStrv) fields = NULL;
  const char *after;

  /* cutime and cstime: fields 16 and 17, of reaped children */
  if (!g_file_get_contents (path, &text, NULL, NULL) || (after = strrchr (text, ')')) == NULL)
    return 0;
  fields = g_strsplit (after + 2, " ", -1);
  if (g_strv_length (fields) < 15)
    return 0;
  return (g_ascii_strtod (fields[13], NULL) + g_ascii_strtod (fields[14], NULL)) /
         (double) sysconf (_SC_CLK_TCK);
}

/* ------------------------------------------------------------------ */
/* 4. Query round trips                                                 */

typedef struct
{
  double dbus_per_s;     /* medians over rounds */
  double http_per_s;
  double ping_us;        /* Backend.Ping round trip: the bus alone */
  double daemon_cpu_us;  /* backplaned's CPU time per Query */
  double ratio;          /* median over round pairs of dbus/http throughput */
  double dbus_min, dbus_max, http_min, http_max;
  guint  rounds, calls;
} QueryResult;

/* Returns: elapsed µs for @calls sequential Vectors.Query calls */
static gint64
query_round_dbus (GDBusConnection *connection,
                  GVariant        *vector,
                  guint            calls)
{
  gint64 t0 = g_get_monotonic_time ();

  for (guint i = 0; i < calls; i++)
    {
      GVariantDict opts;
      g_autoptr(GVariant) r = NULL;
      g_autoptr(GVariant) hits = NULL;

      g_variant_dict_init (&opts, NULL);
      g_variant_dict_insert (&opts, "limit", "u", RTT_LIMIT);
      r = vcall (connection, "Query", g_variant_new ("(s@ad@a{sv})", "rtt", vector, g_variant_dict_end (&opts)),
                 "(a(sds))");
      hits = g_variant_get_child_value (r, 0);
      if (g_variant_n_children (hits) != RTT_LIMIT)
        bench_die ("Query returned %" G_GSIZE_FORMAT " hits, not %d", g_variant_n_children (hits), RTT_LIMIT);
    }
  return g_get_monotonic_time () - t0;
}

/* Returns: elapsed µs for @calls sequential Backend.Ping calls (no I/O) */
static gint64
ping_round (GDBusConnection *connection,
            guint            calls)
{
  gint64 t0 = g_get_monotonic_time ();

  for (guint i = 0; i < calls; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) r = g_dbus_connection_call_sync (connection, DAEMON_NAME, VEC_PATH,
                                                           "org.backplane.Backplane1.Backend", "Ping", NULL,
                                                           NULL, G_DBUS_CALL_FLAGS_NO_AUTO_START, 30000,
                                                           NULL, &error);

      if (r == NULL)
        bench_die ("Backend.Ping: %s", error->message);
    }
  return g_get_monotonic_time () - t0;
}

/* The same request done directly: POST, read the whole answer, check it. */
static gint64
query_round_http (SoupSession *http,
                  const char  *uri,
                  GBytes      *body,
                  guint        calls)
{
  gint64 t0 = g_get_monotonic_time ();

  for (guint i = 0; i < calls; i++)
    {
      g_autoptr(SoupMessage) msg = soup_message_new ("POST", uri);
      g_autoptr(GBytes) reply = NULL;
      g_autoptr(GError) error = NULL;

      /* a read: may go over the kept-alive connection (as the plugin's do) */
      soup_message_add_flags (msg, SOUP_MESSAGE_IDEMPOTENT);
      soup_message_set_request_body_from_bytes (msg, "application/json", body);
      reply = soup_session_send_and_read (http, msg, NULL, &error);
      if (reply == NULL)
        bench_die ("POST %s: %s", uri, error->message);
      if (soup_message_get_status (msg) != SOUP_STATUS_OK)
        bench_die ("POST %s: HTTP %u", uri, soup_message_get_status (msg));
    }
  return g_get_monotonic_time () - t0;
}

static void
run_queries (GDBusConnection *connection,
             SoupSession     *http,
             guint            dim,
             guint            rounds,
             guint            calls,
             QueryResult     *out)
{
  g_autofree double *v = g_new (double, dim);
  g_autofree double *dbus_rate = g_new (double, rounds);
  g_autofree double *http_rate = g_new (double, rounds);
  g_autofree double *ratio = g_new (double, rounds);
  g_autofree double *ping = g_new (double, rounds);
  g_autofree double *cpu = g_new (double, rounds);
  guint32 daemon_pid = bench_daemon_pid ();
  g_autofree char *uri = g_strconcat (server_url, "/collections/rtt/points/query", NULL);
  g_autoptr(GVariant) vector = NULL;
  g_autoptr(GBytes) body = NULL;
  GVariantBuilder points;
  GString *json;

  /* The collection: RTT_POINTS points, so scoring stays small. */
  create_collection (connection, "rtt", dim);
  g_variant_builder_init (&points, G_VARIANT_TYPE ("a(sads)"));
  for (guint i = 0; i < RTT_POINTS; i++)
    {
      g_autofree char *id = g_strdup_printf ("%u", i + 1);
      g_autofree char *payload = g_strdup_printf ("{\"n\":%u}", i);

      fill_vector (v, dim);
      g_variant_builder_add (&points, "(s@ads)", id,
                             g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, v, dim, sizeof (double)),
                             payload);
    }
  g_variant_unref (vcall (connection, "Upsert", g_variant_new ("(sa(sads)@a{sv})", "rtt", &points, no_options ()),
                          "(s)"));

  /* One query vector for both; the direct body is what the plugin sends. */
  fill_vector (v, dim);
  vector = g_variant_ref_sink (g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, v, dim, sizeof (double)));
  json = g_string_new ("{\"query\":[");
  for (guint i = 0; i < dim; i++)
    {
      char buf[G_ASCII_DTOSTR_BUF_SIZE];

      if (i > 0)
        g_string_append_c (json, ',');
      g_string_append (json, g_ascii_dtostr (buf, sizeof buf, v[i]));
    }
  g_string_append_printf (json, "],\"limit\":%d,\"with_payload\":true}", RTT_LIMIT);
  body = g_string_free_to_bytes (json);

  /* warm-up: connections, caches */
  query_round_dbus (connection, vector, calls / 4 + 1);
  query_round_http (http, uri, body, calls / 4 + 1);
  for (guint r = 0; r < rounds; r++)
    {
      gint64 d, h;
      double c0;

      /* alternate who goes first */
      if (r % 2 == 0)
        {
          c0 = proc_cpu_seconds (daemon_pid);
          d = query_round_dbus (connection, vector, calls);
          cpu[r] = (proc_cpu_seconds (daemon_pid) - c0) * 1e6 / calls;
          h = query_round_http (http, uri, body, calls);
        }
      else
        {
          h = query_round_http (http, uri, body, calls);
          c0 = proc_cpu_seconds (daemon_pid);
          d = query_round_dbus (connection, vector, calls);
          cpu[r] = (proc_cpu_seconds (daemon_pid) - c0) * 1e6 / calls;
        }
      ping[r] = (double) ping_round (connection, calls) / calls;
      dbus_rate[r] = calls / ((double) d / 1e6);
      http_rate[r] = calls / ((double) h / 1e6);
      ratio[r] = dbus_rate[r] / http_rate[r];
    }
  out->rounds = rounds;
  out->calls = calls;
  out->ratio = bench_median (ratio, rounds);
  out->ping_us = bench_median (ping, rounds);
  out->daemon_cpu_us = bench_median (cpu, rounds);
  out->dbus_per_s = bench_median (dbus_rate, rounds);
  bench_range (dbus_rate, rounds, &out->dbus_min, &out->dbus_max);
  out->http_per_s = bench_median (http_rate, rounds);
  bench_range (http_rate, rounds, &out->http_min, &out->http_max);
  delete_collection (connection, "rtt");
}

/* ------------------------------------------------------------------ */

static char *
format_lag (const BenchLoopLag *before,
            const BenchLoopLag *after)
{
  return g_strdup_printf ("p50 %" G_GINT64_FORMAT " µs, p99 %" G_GINT64_FORMAT " µs, max %.1f ms "
                          "(%.1f ms before), stalls > 16 ms during the upsert: %" G_GUINT64_FORMAT,
                          after->p50_us, after->p99_us, after->max_us / 1000.0, before->max_us / 1000.0,
                          after->stalls - before->stalls);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusConnection) connection = NULL;
  g_autoptr(SoupSession) http = NULL;
  g_autofree char *address = NULL;
  g_autofree char *points_path = NULL;
  g_autofree char *machine = NULL;
  g_autofree char *load_start = NULL;
  g_autofree char *load_end = NULL;
  g_autofree char *results_path = NULL;
  const char *source_root = bench_source_root ();
  static const char * const logs[] = { "backplaned.log", "qdrantserver.log", "dbus-daemon.log", "node.log", NULL };
  int n_points = 100000, dim = 384, batch = 256, rounds = 7, calls = 200;
  gboolean no_js = FALSE;
  GOptionEntry entries[] = {
    { "points", 'n', 0, G_OPTION_ARG_INT, &n_points, "Points to upsert (default 100000)", "N" },
    { "dim", 'd', 0, G_OPTION_ARG_INT, &dim, "Vector dimension (default 384)", "D" },
    { "batch", 'b', 0, G_OPTION_ARG_INT, &batch, "Points per request (default 256)", "N" },
    { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds, "Query round pairs (default 7)", "N" },
    { "calls", 'c', 0, G_OPTION_ARG_INT, &calls, "Queries per round (default 200)", "N" },
    { "no-js", 0, 0, G_OPTION_ARG_NONE, &no_js, "Skip the JS client baseline", NULL },
    { "results", 0, 0, G_OPTION_ARG_FILENAME, &results_path,
      "Write the table here (default /tmp/bench-qdrant-results.md)", "FILE" },
    { NULL }
  };
  BpRun bp = { 0 };
  JsRun js[2] = { { 0 } };
  guint js_conc[2] = { 1, 4 };
  double js_cpu[2] = { 0, 0 };
  QueryResult q = { 0 };
  guint64 file_size;
  gint64 t_start = g_get_monotonic_time (), t0;
  double gen_s;
  GString *md;

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
                                "UpsertFromFd through backplaned vs the official JS client, and Vectors.Query "
                                "round trips vs direct libsoup, against tests/qdrant/qdrantserver.py.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-qdrant: %s\n", error->message);
      return 2;
    }
  n_points = CLAMP (n_points, 1, 10000000);
  dim = CLAMP (dim, 1, 4096);
  batch = CLAMP (batch, 1, 10000);
  rounds = CLAMP (rounds, 1, 1000);
  calls = CLAMP (calls, 1, 1000000);
  if (results_path == NULL)
    results_path = g_strdup ("/tmp/bench-qdrant-results.md");

  /* the logs can be long: their tails on failure */
  bench_init ("bench-qdrant", logs, 8192);
  bench_make_tmpdir ();

  machine = machine_line ();
  load_start = bench_load_line ();
  printf ("machine: %s\n", machine);
  printf ("load average at start: %s\n", load_start);

  /* 1. the file */
  points_path = bench_tmp_path ("points.jsonl");
  t0 = g_get_monotonic_time ();
  file_size = write_points (points_path, (guint) n_points, (guint) dim);
  gen_s = (double) (g_get_monotonic_time () - t0) / 1e6;
  printf ("points file: %d points × %d dimensions, %.1f MiB of JSON Lines (written in %.1f s)\n",
          n_points, dim, file_size / 1048576.0, gen_s);

  /* the services */
  address = bench_start_bus (NULL);
  connection = bench_connect (address);
  start_server (source_root);
  start_daemon (connection, address);
  http = soup_session_new_with_options ("max-conns", 1, "max-conns-per-host", 1, "timeout", 300, NULL);
  /* the server is on 127.0.0.1: no proxy from the environment */
  soup_session_set_proxy_resolver (http, NULL);

  /* 2. backplaned */
  run_backplane (connection, points_path, (guint) n_points, (guint) dim, (guint) batch, &bp);
  check_no_violations (http, "UpsertFromFd");
  printf ("backplaned UpsertFromFd: %.2f s = %.0f points/s (daemon CPU %.2f s, server CPU %.2f s); daemon RSS "
          "%.1f MiB before, peak %.1f MiB%s, %.1f MiB after: growth %.1f MiB (goal < 50 MiB)\n",
          bp.seconds, n_points / bp.seconds, bp.daemon_cpu_s, bp.server_cpu_s, bp.rss_before_kib / 1024.0,
          bp.hwm_kib / 1024.0,
          bp.hwm_reset ? "" : " (VmHWM since start-up: clear_refs refused)", bp.rss_after_kib / 1024.0,
          ((double) MAX (bp.hwm_kib, bp.rss_after_kib) - (double) bp.rss_before_kib) / 1024.0);
  {
    g_autofree char *lag = format_lag (&bp.lag_before, &bp.lag_after);

    printf ("  backplaned loop lag: %s\n", lag);
  }

  /* 3. the JS client */
  for (guint k = 0; k < G_N_ELEMENTS (js); k++)
    {
      double c0 = children_cpu_seconds ();

      if (no_js)
        {
          js[k].skipped = g_strdup ("--no-js");
          continue;
        }
      run_js (connection, source_root, points_path, (guint) n_points, (guint) dim, (guint) batch, js_conc[k],
              &js[k]);
      if (!js[k].ran)
        {
          printf ("JS client: skipped: %s\n", js[k].skipped);
          break;
        }
      js_cpu[k] = children_cpu_seconds () - c0;
      check_no_violations (http, "the JS client");
      printf ("@qdrant/js-client-rest, %u request%s in flight: %.2f s = %.0f points/s (%.2f s with node's "
              "start-up; node CPU %.2f s, server CPU %.2f s, node peak RSS %.0f MiB); backplaned is %.2f× as fast\n",
              js_conc[k], js_conc[k] == 1 ? "" : "s", js[k].seconds, n_points / js[k].seconds,
              js[k].wall_seconds, js_cpu[k], js[k].server_cpu_s, js[k].rss_peak_mib, js[k].seconds / bp.seconds);
    }

  /* 4. Query round trips */
  run_queries (connection, http, (guint) dim, (guint) rounds, (guint) calls, &q);
  check_no_violations (http, "the queries");
  printf ("Vectors.Query round trips (collection of %d points × %d, limit %d, one at a time; %u round pairs of "
          "%u calls): through D-Bus %.0f/s (%.0f µs each), direct libsoup %.0f/s (%.0f µs each): ratio %.2f\n",
          RTT_POINTS, dim, RTT_LIMIT, q.rounds, q.calls, q.dbus_per_s, 1e6 / q.dbus_per_s, q.http_per_s,
          1e6 / q.http_per_s, q.ratio);
  printf ("  D-Bus adds %.0f µs a query: a Backend.Ping round trip (the bus alone) takes %.0f µs, backplaned "
          "spends %.0f µs of CPU a query (clock ticks: coarse); rounds ranged %.0f–%.0f vs %.0f–%.0f/s\n",
          1e6 / q.dbus_per_s - 1e6 / q.http_per_s, q.ping_us, q.daemon_cpu_us, q.dbus_min, q.dbus_max,
          q.http_min, q.http_max);

  load_end = bench_load_line ();
  printf ("load average at end: %s\n", load_end);
  printf ("total %.0f s\n", (double) (g_get_monotonic_time () - t_start) / 1e6);

  /* the table */
  md = g_string_new (NULL);
  g_string_append_printf (md, "# bench-qdrant results\n\n"
                          "Machine: %s  \nLoad average: %s (start), %s (end)  \n"
                          "Server: tests/qdrant/qdrantserver.py (Python, request validation on), loopback.  \n"
                          "Workload: %d points × %d dimensions, %.1f MiB of JSON Lines, batches of %d.\n\n",
                          machine, load_start, load_end, n_points, dim, file_size / 1048576.0, batch);
  g_string_append (md, "| Upsert of the file | seconds | points/s | vs backplaned |\n|---|---:|---:|---:|\n");
  g_string_append_printf (md, "| backplaned Vectors.UpsertFromFd (fd passed, one request at a time) | %.2f | %.0f | 1.00 |\n",
                          bp.seconds, n_points / bp.seconds);
  for (guint k = 0; k < G_N_ELEMENTS (js); k++)
    if (js[k].ran)
      g_string_append_printf (md, "| @qdrant/js-client-rest, %u in flight | %.2f | %.0f | backplaned %.2f× as fast |\n",
                              js_conc[k], js[k].seconds, n_points / js[k].seconds, js[k].seconds / bp.seconds);
    else if (k == 0)
      g_string_append_printf (md, "| @qdrant/js-client-rest | skipped: %s | | |\n", js[k].skipped);
  g_string_append_printf (md, "\nbackplaned during the upsert: RSS %.1f MiB before, peak %.1f MiB, %.1f MiB after "
                          "(growth %.1f MiB, goal < 50 MiB); daemon CPU %.2f s; loop lag p99 %" G_GINT64_FORMAT
                          " µs, max %.1f ms, stalls > 16 ms: %" G_GUINT64_FORMAT ".\n",
                          bp.rss_before_kib / 1024.0, bp.hwm_kib / 1024.0, bp.rss_after_kib / 1024.0,
                          ((double) MAX (bp.hwm_kib, bp.rss_after_kib) - (double) bp.rss_before_kib) / 1024.0,
                          bp.daemon_cpu_s, bp.lag_after.p99_us, bp.lag_after.max_us / 1000.0,
                          bp.lag_after.stalls - bp.lag_before.stalls);
  g_string_append_printf (md, "\n| Query round trips (%d points, limit %d, sequential) | per second | µs each |\n"
                          "|---|---:|---:|\n"
                          "| through D-Bus (Vectors.Query) | %.0f | %.0f |\n"
                          "| direct libsoup POST /points/query | %.0f | %.0f |\n"
                          "| ratio D-Bus / direct | %.2f | |\n"
                          "\nD-Bus adds %.0f µs a query; a Backend.Ping round trip through the bus takes %.0f µs; "
                          "backplaned spends about %.0f µs of CPU a query.\n",
                          RTT_POINTS, RTT_LIMIT, q.dbus_per_s, 1e6 / q.dbus_per_s, q.http_per_s, 1e6 / q.http_per_s,
                          q.ratio, 1e6 / q.dbus_per_s - 1e6 / q.http_per_s, q.ping_us, q.daemon_cpu_us);
  if (!g_file_set_contents (results_path, md->str, (gssize) md->len, &error))
    g_printerr ("bench-qdrant: cannot write %s: %s\n", results_path, error->message);
  else
    printf ("results written to %s\n", results_path);
  g_string_free (md, TRUE);

  bench_daemon_stop ();
  g_dbus_connection_close_sync (connection, NULL, NULL);
  g_clear_object (&connection);
  for (guint k = 0; k < G_N_ELEMENTS (js); k++)
    g_free (js[k].skipped);
  g_free (server_url);
  bench_cleanup ();
  return EXIT_SUCCESS;
}

#endif /* HAVE_SOUP */
