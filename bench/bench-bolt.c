/* bench-bolt.c: the bolt backend against baselines measured in the same run
 *
 *  1. PackStream decoding, in process: the RECORD bodies of two workloads
 *     (one integer per record, as `UNWIND range(…) AS i RETURN i` sends;
 *     and a mixed record with a string, a float, a list, a map and a Node)
 *     are validated (skip), decoded to JSON (what RunToFd writes) and to
 *     GVariant (what Run returns), each against memcpy of the same bytes.
 *
 *  2. Records per second end to end, against tests/bolt/boltserver.py:
 *     - Graph.RunToFd through backplaned (from the build tree, on a private
 *       dbus-daemon), `UNWIND range(1, $n) AS i RETURN i`, the JSON Lines
 *       read from the pipe by this program, against the official npm
 *       neo4j-driver (tests/bolt/bench-neo4j-driver.mjs) streaming the same
 *       query and turning each record into a JSON line;
 *     - Graph.Run (every record in the reply) against the driver's
 *       executeQuery() for a smaller n;
 *     - the same BpBoltConnection in this process, writing the JSON Lines
 *       to /dev/null: what D-Bus and the pipe add;
 *     - and how busy the Python server was meanwhile (its CPU time over the
 *       wall time): near 100 % the server, not the client, sets the pace.
 *     Rounds are interleaved (A B, B A, …); rates are medians, a ratio is the
 *     median of per-round ratios.
 *
 * It asserts nothing about time: it exits 0 unless something breaks (then
 * 1 with a message), or 77 when node or tests/bolt/node_modules is missing.
 * The numbers also go to /tmp/bench-bolt-results.md. Every process it
 * starts dies with it (PR_SET_PDEATHSIG) and is stopped at exit.
 *
 * Options: --stream-n N (200000), --eager-n N (50000), --rounds N (5),
 * --decode-mb N (8), --results FILE.
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
#include <glib-unix.h>

#include "bp-bolt-auth.h"
#include "bp-bolt-connection.h"
#include "bp-bolt-ops.h"
#include "bp-bolt-values.h"

#include "bench-common.h"

#define BUS_NAME      BENCH_BUS_NAME
#define GRAPH_PATH    "/org/backplane/Backplane1/backend/graph"
#define GRAPH_IFACE   "org.backplane.Backplane1.Graph"
#define QUERY         "UNWIND range(1, $n) AS i RETURN i"
#define CALL_TIMEOUT  120000

/* ------------------------------------------------------------------ */
/* 1. PackStream decoding                                               */

typedef struct
{
  const char *name;
  GByteArray *bytes;       /* every record body, back to back */
  GArray     *offsets;     /* gsize: where each starts; one more at the end */
  const char *keys[8];
  guint       n_keys;
} Workload;

static void
workload_add_record_end (Workload *w)
{
  gsize end = w->bytes->len;

  g_array_append_val (w->offsets, end);
}

static Workload *
workload_integers (gsize target_bytes)
{
  Workload *w = g_new0 (Workload, 1);
  gsize zero = 0;

  w->name = "integers";
  w->bytes = g_byte_array_sized_new (target_bytes + 64);
  w->offsets = g_array_new (FALSE, FALSE, sizeof (gsize));
  w->keys[0] = "i";
  w->n_keys = 1;
  g_array_append_val (w->offsets, zero);
  for (gint64 i = 1; w->bytes->len < target_bytes; i++)
    {
      bp_bolt_pack_list_header (w->bytes, 1);
      bp_bolt_pack_int (w->bytes, i);
      workload_add_record_end (w);
    }
  return w;
}

static Workload *
workload_mixed (gsize target_bytes)
{
  Workload *w = g_new0 (Workload, 1);
  gsize zero = 0;

  w->name = "mixed";
  w->bytes = g_byte_array_sized_new (target_bytes + 512);
  w->offsets = g_array_new (FALSE, FALSE, sizeof (gsize));
  w->keys[0] = "id";
  w->keys[1] = "name";
  w->keys[2] = "score";
  w->keys[3] = "active";
  w->keys[4] = "tags";
  w->keys[5] = "props";
  w->keys[6] = "n";
  w->n_keys = 7;
  g_array_append_val (w->offsets, zero);
  for (gint64 i = 1; w->bytes->len < target_bytes; i++)
    {
      g_autofree char *name = g_strdup_printf ("name-%" G_GINT64_FORMAT "-ü", i);
      g_autofree char *eid = g_strdup_printf ("4:3f0d7c5e-9d2b-4c55-8a6e-1b2f3a4c5d6e:%" G_GINT64_FORMAT, i);

      bp_bolt_pack_list_header (w->bytes, 7);
      bp_bolt_pack_int (w->bytes, i * 1000003);
      bp_bolt_pack_string (w->bytes, name, -1);
      bp_bolt_pack_float (w->bytes, i * 0.5);
      bp_bolt_pack_boolean (w->bytes, i % 2);
      bp_bolt_pack_list_header (w->bytes, 3);
      bp_bolt_pack_string (w->bytes, "a", -1);
      bp_bolt_pack_string (w->bytes, "bb", -1);
      bp_bolt_pack_int (w->bytes, -i);
      bp_bolt_pack_map_header (w->bytes, 2);
      bp_bolt_pack_string (w->bytes, "city", -1);
      bp_bolt_pack_string (w->bytes, "Göteborg", -1);
      bp_bolt_pack_string (w->bytes, "since", -1);
      bp_bolt_pack_int (w->bytes, 2000 + i % 25);
      /* Node (5.x): id, labels, properties, element_id */
      bp_bolt_pack_struct_header (w->bytes, 4, 0x4E);
      bp_bolt_pack_int (w->bytes, i);
      bp_bolt_pack_list_header (w->bytes, 1);
      bp_bolt_pack_string (w->bytes, "Person", -1);
      bp_bolt_pack_map_header (w->bytes, 2);
      bp_bolt_pack_string (w->bytes, "name", -1);
      bp_bolt_pack_string (w->bytes, name, -1);
      bp_bolt_pack_string (w->bytes, "age", -1);
      bp_bolt_pack_int (w->bytes, i % 90);
      bp_bolt_pack_string (w->bytes, eid, -1);
      workload_add_record_end (w);
    }
  return w;
}

static void
workload_free (Workload *w)
{
  g_byte_array_unref (w->bytes);
  g_array_unref (w->offsets);
  g_free (w);
}

typedef enum
{
  DECODE_MEMCPY,
  DECODE_SKIP,
  DECODE_JSON,
  DECODE_VARIANT,
  N_DECODE
} DecodeKind;

static const char * const decode_names[N_DECODE] = { "memcpy", "validate (skip)", "to JSON", "to GVariant" };

/* One pass over the workload; returns the seconds it took. */
static double
decode_pass (Workload   *w,
             DecodeKind  kind,
             guint8     *scratch,
             GString    *json)
{
  guint n = w->offsets->len - 1;
  gint64 start = g_get_monotonic_time ();
  g_autoptr(GError) error = NULL;

  switch (kind)
    {
    case DECODE_MEMCPY:
      memcpy (scratch, w->bytes->data, w->bytes->len);
      break;
    case DECODE_SKIP:
    case DECODE_JSON:
    case DECODE_VARIANT:
      for (guint r = 0; r < n; r++)
        {
          gsize from = g_array_index (w->offsets, gsize, r);
          gsize to = g_array_index (w->offsets, gsize, r + 1);
          BpBoltReader reader;

          bp_bolt_reader_init (&reader, w->bytes->data + from, to - from, NULL);
          if (kind == DECODE_SKIP)
            {
              if (!bp_bolt_reader_skip (&reader, 0, &error))
                bench_die ("skip: %s", error->message);
            }
          else if (kind == DECODE_JSON)
            {
              if (!bp_bolt_record_to_json (&reader, w->keys, w->n_keys, json, &error))
                bench_die ("to JSON: %s", error->message);
              g_string_append_c (json, '\n');
              if (json->len > 1 << 20)
                g_string_truncate (json, 0);
            }
          else
            {
              GVariant *v = bp_bolt_record_to_variant (&reader, w->keys, w->n_keys, &error);

              if (v == NULL)
                bench_die ("to GVariant: %s", error->message);
              g_variant_unref (v);
            }
        }
      break;
    default:
      g_assert_not_reached ();
    }
  return (g_get_monotonic_time () - start) / 1e6;
}

typedef struct
{
  double mb_s[N_DECODE];
  double records_s[N_DECODE];
  double ratio[N_DECODE];       /* against memcpy */
} DecodeResult;

static void
bench_decode (Workload     *w,
              guint         rounds,
              DecodeResult *out)
{
  g_autofree guint8 *scratch = g_malloc (w->bytes->len);
  g_autoptr(GString) json = g_string_sized_new (2 << 20);
  g_autofree double *rate = g_new0 (double, (gsize) rounds * N_DECODE);
  g_autofree double *ratio = g_new0 (double, rounds);
  guint n_records = w->offsets->len - 1;
  double mb = w->bytes->len / 1e6;

  /* warm up caches and allocators */
  for (guint k = 0; k < N_DECODE; k++)
    decode_pass (w, k, scratch, json);
  for (guint r = 0; r < rounds; r++)
    for (guint i = 0; i < N_DECODE; i++)
      {
        guint k = r % 2 ? N_DECODE - 1 - i : i;   /* alternate the order */
        double seconds = 0;
        guint passes = 0;

        /* memcpy is fast: repeat it until it is measurable */
        while (seconds < 0.05 || passes == 0)
          {
            seconds += decode_pass (w, k, scratch, json);
            passes++;
          }
        rate[r * N_DECODE + k] = mb * passes / seconds;
      }
  for (guint k = 0; k < N_DECODE; k++)
    {
      g_autofree double *per = g_new (double, rounds);

      for (guint r = 0; r < rounds; r++)
        {
          per[r] = rate[r * N_DECODE + k];
          ratio[r] = rate[r * N_DECODE + k] / rate[r * N_DECODE + DECODE_MEMCPY];
        }
      out->mb_s[k] = bench_median (per, rounds);
      out->records_s[k] = out->mb_s[k] * 1e6 / w->bytes->len * n_records;
      out->ratio[k] = bench_median (ratio, rounds);
    }
}

/* ------------------------------------------------------------------ */
/* 2. End to end                                                       */

static GSubprocess *server;
static guint16 server_port;
static GDBusConnection *bus;

static void
start_server (const char *source_root)
{
  g_autofree char *script = g_build_filename (source_root, "tests", "bolt", "boltserver.py", NULL);
  const char *argv[] = { "python3", script, "--port", "0", NULL };

  server_port = bench_start_server (argv, "boltserver.log", &server);
}

static void
start_daemon (const char *address,
              guint       eager_n)
{
  g_autofree char *config = g_strdup_printf ("[backend graph]\ntype=bolt\nuri=bolt://127.0.0.1:%u\n"
                                             "user=neo4j\nmax-records=%u\n", server_port, MAX (eager_n, 1000));

  bench_daemon_start (bus, address, config, NULL);
}

typedef struct
{
  GVariant *reply;
  GError   *error;
  gboolean  done;
} Reply;

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Reply *r = user_data;

  r->reply = g_dbus_connection_call_with_unix_fd_list_finish (G_DBUS_CONNECTION (source), NULL, result, &r->error);
  r->done = TRUE;
}

/* Graph.RunToFd; reads the JSON Lines until EOF. Returns seconds. */
static double
run_to_fd (guint n)
{
  g_autoptr(GUnixFDList) fds = g_unix_fd_list_new ();
  Reply r = { NULL, NULL, FALSE };
  char buffer[256 * 1024];
  guint64 lines = 0;
  gint64 start;
  double seconds;
  gssize got;
  int pipe_fds[2];

  if (!g_unix_open_pipe (pipe_fds, FD_CLOEXEC, NULL))
    bench_die ("pipe: %s", g_strerror (errno));
  g_unix_fd_list_append (fds, pipe_fds[1], NULL);
  close (pipe_fds[1]);
  start = g_get_monotonic_time ();
  g_dbus_connection_call_with_unix_fd_list (bus, BUS_NAME, GRAPH_PATH, GRAPH_IFACE, "RunToFd",
                                            g_variant_new_parsed ("(%s, {'n': <%x>}, @h 0, @a{sv} {})",
                                                                  QUERY, (gint64) n),
                                            G_VARIANT_TYPE ("(as)"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT,
                                            fds, NULL, call_done_cb, &r);
  /* our copy of the write end must go, or EOF never comes */
  g_clear_object (&fds);
  /* the daemon is another process: a blocking read here stalls nobody
   * (GDBus reads the reply on its own thread) */
  while ((got = read (pipe_fds[0], buffer, sizeof buffer)) != 0)
    {
      if (got < 0)
        {
          if (errno == EINTR)
            continue;
          bench_die ("read: %s", g_strerror (errno));
        }
      for (const char *p = buffer; (p = memchr (p, '\n', buffer + got - p)) != NULL; p++)
        lines++;
    }
  seconds = (g_get_monotonic_time () - start) / 1e6;
  close (pipe_fds[0]);
  bench_iterate_until (&r.done, CALL_TIMEOUT);
  if (r.reply == NULL)
    bench_die ("RunToFd: %s", r.error ? r.error->message : "no reply");
  g_variant_unref (r.reply);
  if (lines != (guint64) n + 2)
    bench_die ("RunToFd: %" G_GUINT64_FORMAT " lines, wanted %u (header, records, end)", lines, n + 2);
  return seconds;
}

/* Graph.Run; every record in the reply. Returns seconds. */
static double
run_eager (guint n)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GVariant) records = NULL;
  gint64 start = g_get_monotonic_time ();
  double seconds;

  reply = g_dbus_connection_call_sync (bus, BUS_NAME, GRAPH_PATH, GRAPH_IFACE, "Run",
                                       g_variant_new_parsed ("(%s, {'n': <%x>}, @a{sv} {})", QUERY, (gint64) n),
                                       G_VARIANT_TYPE ("(asaa{sv}a{sv})"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT,
                                       NULL, &error);
  if (reply == NULL)
    bench_die ("Run: %s", error->message);
  records = g_variant_get_child_value (reply, 1);
  seconds = (g_get_monotonic_time () - start) / 1e6;
  if (g_variant_n_children (records) != n)
    bench_die ("Run: %" G_GSIZE_FORMAT " records, wanted %u", g_variant_n_children (records), n);
  return seconds;
}

/* The same client in this process, JSON Lines into /dev/null. */

static BpBoltConnection *local_conn;

static void
store_result_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  while (*slot == NULL)
    g_main_context_iteration (NULL, TRUE);
  return *slot;
}

static void
local_open (void)
{
  g_autoptr(BpBoltAuth) auth = bp_bolt_auth_new_basic ("neo4j", "", NULL);
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  local_conn = bp_bolt_connection_new ("127.0.0.1", server_port, BP_BOLT_TLS_NONE);
  bp_bolt_connection_open_async (local_conn, auth, NULL, store_result_cb, &result);
  if (!bp_bolt_connection_open_finish (local_conn, wait_result (&result), &error))
    bench_die ("in-process connection: %s", error->message);
}

static double
local_stream (guint n)
{
  g_autoptr(GAsyncResult) run_result = NULL;
  g_autoptr(GAsyncResult) fd_result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = NULL;
  gint64 start = g_get_monotonic_time ();
  guint64 records = 0;
  int fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);

  if (fd < 0)
    bench_die ("/dev/null: %s", g_strerror (errno));
  bp_bolt_connection_run_async (local_conn, QUERY, g_variant_new_parsed ("{'n': <%x>}", (gint64) n), NULL, 1000,
                                NULL, store_result_cb, &run_result);
  stream = bp_bolt_connection_run_finish (local_conn, wait_result (&run_result), &error);
  if (stream == NULL)
    bench_die ("in-process RUN: %s", error->message);
  bp_bolt_stream_to_fd_async (stream, fd, NULL, store_result_cb, &fd_result);
  if (!bp_bolt_stream_to_fd_finish (stream, wait_result (&fd_result), &records, &error))
    bench_die ("in-process stream: %s", error->message);
  if (records != n)
    bench_die ("in-process stream: %" G_GUINT64_FORMAT " records, wanted %u", records, n);
  return (g_get_monotonic_time () - start) / 1e6;
}

/* Where Graph.Run's time goes, in this process: the same client collecting
 * the records into the reply's GVariant, then GDBus marshalling that reply
 * (the daemon's side) and parsing the bytes back (the caller's side). */
typedef struct
{
  double collect_s;
  double marshal_s;
  double parse_s;
} RunBreakdown;

static void
local_run_breakdown (guint         n,
                     RunBreakdown *out)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GDBusMessage) call = g_dbus_message_new_method_call (BUS_NAME, GRAPH_PATH, GRAPH_IFACE, "Run");
  g_autoptr(GDBusMessage) message = NULL;
  g_autoptr(GDBusMessage) parsed = NULL;
  g_autofree guchar *blob = NULL;
  gsize blob_len = 0;
  gint64 t0, t1, t2, t3;

  t0 = g_get_monotonic_time ();
  bp_bolt_run_collect_async (local_conn, QUERY, g_variant_new_parsed ("{'n': <%x>}", (gint64) n), NULL, 1000, n,
                             NULL, store_result_cb, &result);
  reply = bp_bolt_run_collect_finish (local_conn, wait_result (&result), &error);
  if (reply == NULL)
    bench_die ("in-process collect: %s", error->message);
  t1 = g_get_monotonic_time ();
  g_dbus_message_set_serial (call, 1);
  message = g_dbus_message_new_method_reply (call);
  g_dbus_message_set_body (message, reply);
  blob = g_dbus_message_to_blob (message, &blob_len, G_DBUS_CAPABILITY_FLAGS_UNIX_FD_PASSING, &error);
  if (blob == NULL)
    bench_die ("marshalling the reply: %s", error->message);
  t2 = g_get_monotonic_time ();
  parsed = g_dbus_message_new_from_blob (blob, blob_len, G_DBUS_CAPABILITY_FLAGS_UNIX_FD_PASSING, &error);
  if (parsed == NULL)
    bench_die ("parsing the reply: %s", error->message);
  t3 = g_get_monotonic_time ();
  out->collect_s = (t1 - t0) / 1e6;
  out->marshal_s = (t2 - t1) / 1e6;
  out->parse_s = (t3 - t2) / 1e6;
}

/* The official driver: one node process per round. */
typedef struct
{
  double stream_s;
  double eager_s;
  char  *version;
} NodeResult;

static double
json_number_after (const char *text,
                   const char *object,
                   const char *key)
{
  const char *o = strstr (text, object);
  const char *k = o != NULL ? strstr (o, key) : NULL;

  if (k == NULL)
    bench_die ("node printed no %s.%s: %s", object, key, text);
  return g_ascii_strtod (k + strlen (key), NULL);
}

static int
node_round (const char *source_root,
            guint       stream_n,
            guint       eager_n,
            NodeResult *out)
{
  g_autofree char *script = g_build_filename (source_root, "tests", "bolt", "bench-neo4j-driver.mjs", NULL);
  g_autofree char *uri = g_strdup_printf ("bolt://127.0.0.1:%u", server_port);
  g_autofree char *sn = g_strdup_printf ("%u", stream_n);
  g_autofree char *en = g_strdup_printf ("%u", eager_n);
  g_autoptr(GSubprocessLauncher) launcher = bench_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                                G_SUBPROCESS_FLAGS_STDERR_PIPE, NULL);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *stdout_text = NULL;
  g_autofree char *stderr_text = NULL;
  const char *version;

  proc = g_subprocess_launcher_spawn (launcher, &error, "node", script, "--uri", uri,
                                      "--stream-n", sn, "--eager-n", en, NULL);
  if (proc == NULL)
    return 77;
  /* node is another process: waiting for it here blocks nothing of ours */
  if (!g_subprocess_communicate_utf8 (proc, NULL, NULL, &stdout_text, &stderr_text, &error))
    bench_die ("node: %s", error->message);
  if (g_subprocess_get_if_exited (proc) && g_subprocess_get_exit_status (proc) == 77)
    {
      g_printerr ("bench-bolt: %s", stderr_text);
      return 77;
    }
  if (!g_subprocess_get_successful (proc))
    bench_die ("node %s failed: %s%s", script, stdout_text, stderr_text);
  out->stream_s = json_number_after (stdout_text, "\"stream\"", "\"seconds\":");
  out->eager_s = json_number_after (stdout_text, "\"eager\"", "\"seconds\":");
  version = strstr (stdout_text, "\"driver\":\"");
  g_free (out->version);
  out->version = version != NULL ? g_strndup (version + 10, strcspn (version + 10, "\"")) : g_strdup ("?");
  return 0;
}

/* ------------------------------------------------------------------ */

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;
  g_autofree char *results_path = NULL;
  const char *source_root = bench_source_root ();
  static const char * const logs[] = { "backplaned.log", "boltserver.log", NULL };
  int stream_n = 200000, eager_n = 50000, rounds = 5, decode_mb = 8;
  GOptionEntry entries[] = {
    { "stream-n", 0, 0, G_OPTION_ARG_INT, &stream_n, "Records streamed (RunToFd) per round (200000)", "N" },
    { "eager-n", 0, 0, G_OPTION_ARG_INT, &eager_n, "Records returned by Run per round (50000)", "N" },
    { "rounds", 'r', 0, G_OPTION_ARG_INT, &rounds, "Interleaved rounds (5)", "N" },
    { "decode-mb", 0, 0, G_OPTION_ARG_INT, &decode_mb, "Size of each decode workload in MB (8)", "N" },
    { "results", 0, 0, G_OPTION_ARG_FILENAME, &results_path, "Markdown results (/tmp/bench-bolt-results.md)", "FILE" },
    { NULL }
  };
  Workload *workloads[2];
  DecodeResult decode[2];
  g_autoptr(GString) md = g_string_new (NULL);
  g_autofree double *bp_stream = NULL, *bp_eager = NULL, *node_stream = NULL, *node_eager = NULL;
  g_autofree double *local = NULL, *ratio_stream = NULL, *ratio_eager = NULL, *ratio_local = NULL;
  g_autofree double *busy_bp = NULL, *busy_node = NULL;
  g_autofree double *bd_collect = NULL, *bd_marshal = NULL, *bd_parse = NULL;
  NodeResult node = { 0 };
  double m_bp_stream, m_bp_eager, m_node_stream, m_node_eager, m_local;
  double r_stream, r_eager, r_local;
  long ticks_per_s = sysconf (_SC_CLK_TCK);

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context, "PackStream decoding vs memcpy; records/s through backplaned "
                                         "vs the official neo4j-driver, against the same test server.");
  g_option_context_add_main_entries (context, entries, NULL);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("bench-bolt: %s\n", error->message);
      return 2;
    }
  stream_n = CLAMP (stream_n, 1000, 100000000);
  eager_n = CLAMP (eager_n, 1000, 10000000);
  rounds = CLAMP (rounds, 1, 100);
  decode_mb = CLAMP (decode_mb, 1, 1024);
  if (results_path == NULL)
    results_path = g_strdup ("/tmp/bench-bolt-results.md");

  bench_init ("bench-bolt", logs, 0);

  {
    g_autofree char *modules = g_build_filename (source_root, "tests", "bolt", "node_modules", "neo4j-driver", NULL);
    g_autofree char *node_exe = g_find_program_in_path ("node");

    if (node_exe == NULL || !g_file_test (modules, G_FILE_TEST_IS_DIR))
      {
        g_printerr ("bench-bolt: the baseline needs node and `npm ci --prefix tests/bolt`; skipping\n");
        return 77;
      }
  }

  /* 1. decoding */
  g_print ("1. PackStream decoding in process, %d MB per workload, median of %d rounds\n", decode_mb, rounds);
  workloads[0] = workload_integers ((gsize) decode_mb * 1000000);
  workloads[1] = workload_mixed ((gsize) decode_mb * 1000000);
  g_string_append_printf (md, "## PackStream decoding (in process, %d MB a workload, median of %d rounds)\n\n"
                              "| workload | records | step | MB/s | records/s | vs memcpy |\n"
                              "|---|---:|---|---:|---:|---:|\n", decode_mb, rounds);
  for (guint w = 0; w < 2; w++)
    {
      guint n_records = workloads[w]->offsets->len - 1;

      bench_decode (workloads[w], rounds, &decode[w]);
      g_print ("  %-8s (%u records of %.1f bytes)\n", workloads[w]->name, n_records,
               (double) workloads[w]->bytes->len / n_records);
      for (guint k = 0; k < N_DECODE; k++)
        {
          g_print ("    %-16s %9.1f MB/s  %12.0f records/s  %7.4fx memcpy\n", decode_names[k],
                   decode[w].mb_s[k], decode[w].records_s[k], decode[w].ratio[k]);
          g_string_append_printf (md, "| %s | %u | %s | %.1f | %.0f | %.4f× |\n", workloads[w]->name, n_records,
                                  decode_names[k], decode[w].mb_s[k], decode[w].records_s[k], decode[w].ratio[k]);
        }
      workload_free (workloads[w]);
    }

  /* 2. end to end */
  bench_make_tmpdir ();
  start_server (source_root);
  address = bench_start_bus (NULL);
  bus = bench_connect (address);
  start_daemon (address, eager_n);
  local_open ();
  /* warm-up: pooled connections on both sides, page cache, JIT */
  run_to_fd (1000);
  run_eager (1000);
  local_stream (1000);

  g_print ("\n2. %s against boltserver.py (Python), %d interleaved rounds\n", QUERY, rounds);
  bp_stream = g_new (double, rounds);
  bp_eager = g_new (double, rounds);
  node_stream = g_new (double, rounds);
  node_eager = g_new (double, rounds);
  local = g_new (double, rounds);
  ratio_stream = g_new (double, rounds);
  ratio_eager = g_new (double, rounds);
  ratio_local = g_new (double, rounds);
  busy_bp = g_new (double, rounds);
  busy_node = g_new (double, rounds);
  bd_collect = g_new (double, rounds);
  bd_marshal = g_new (double, rounds);
  bd_parse = g_new (double, rounds);
  for (int r = 0; r < rounds; r++)
    {
      for (int half = 0; half < 2; half++)
        {
          gboolean ours = (half == 0) == (r % 2 == 0);

          if (ours)
            {
              guint64 t0 = bench_proc_cpu_ticks (bench_pid (server));
              double s = run_to_fd ((guint) stream_n);

              busy_bp[r] = (bench_proc_cpu_ticks (bench_pid (server)) - t0) / (double) ticks_per_s / s;
              bp_stream[r] = stream_n / s;
              bp_eager[r] = eager_n / run_eager ((guint) eager_n);
              local[r] = stream_n / local_stream ((guint) stream_n);
              {
                RunBreakdown bd;

                local_run_breakdown ((guint) eager_n, &bd);
                bd_collect[r] = bd.collect_s * 1000;
                bd_marshal[r] = bd.marshal_s * 1000;
                bd_parse[r] = bd.parse_s * 1000;
              }
            }
          else
            {
              guint64 t0 = bench_proc_cpu_ticks (bench_pid (server));
              gint64 start = g_get_monotonic_time ();
              int status = node_round (source_root, (guint) stream_n, (guint) eager_n, &node);

              if (status == 77)
                {
                  bench_cleanup ();
                  return 77;
                }
              /* the server's share of the node process's whole run */
              busy_node[r] = (bench_proc_cpu_ticks (bench_pid (server)) - t0) / (double) ticks_per_s /
                             ((g_get_monotonic_time () - start) / 1e6);
              node_stream[r] = stream_n / node.stream_s;
              node_eager[r] = eager_n / node.eager_s;
            }
        }
      ratio_stream[r] = bp_stream[r] / node_stream[r];
      ratio_eager[r] = bp_eager[r] / node_eager[r];
      ratio_local[r] = bp_stream[r] / local[r];
      g_print ("  round %d: RunToFd %.0f/s vs driver %.0f/s; Run %.0f/s vs driver %.0f/s; in-process %.0f/s\n",
               r + 1, bp_stream[r], node_stream[r], bp_eager[r], node_eager[r], local[r]);
    }
  m_bp_stream = bench_median (bp_stream, rounds);
  m_bp_eager = bench_median (bp_eager, rounds);
  m_node_stream = bench_median (node_stream, rounds);
  m_node_eager = bench_median (node_eager, rounds);
  m_local = bench_median (local, rounds);
  r_stream = bench_median (ratio_stream, rounds);
  r_eager = bench_median (ratio_eager, rounds);
  r_local = bench_median (ratio_local, rounds);

  g_print ("  streaming %d records (JSON Lines):\n", stream_n);
  g_print ("    Graph.RunToFd via backplaned  %10.0f records/s   %.2fx the driver  [goal > 1x]\n",
           m_bp_stream, r_stream);
  g_print ("    neo4j-driver %-8s (node)    %10.0f records/s\n", node.version, m_node_stream);
  g_print ("    BpBoltConnection in process   %10.0f records/s   (D-Bus + pipe keep %.0f %% of it)\n",
           m_local, 100 * r_local);
  g_print ("  all %d records in one reply:\n", eager_n);
  g_print ("    Graph.Run via backplaned      %10.0f records/s   %.2fx the driver  [goal > 1x]\n",
           m_bp_eager, r_eager);
  g_print ("    neo4j-driver executeQuery     %10.0f records/s\n", m_node_eager);
  g_print ("    where Run's time goes (in process, %d records): fetch + decode to GVariant %.1f ms, "
           "GDBus marshalling %.1f ms, GDBus parsing in the caller %.1f ms; the driver's whole query: %.1f ms\n",
           eager_n, bench_median (bd_collect, rounds), bench_median (bd_marshal, rounds),
           bench_median (bd_parse, rounds), 1000.0 * eager_n / m_node_eager);
  g_print ("  boltserver.py CPU busy: %.0f %% while RunToFd ran, %.0f %% over a node run "
           "(near 100 %%: the server sets the pace)\n",
           100 * bench_median (busy_bp, rounds), 100 * bench_median (busy_node, rounds));

  g_string_append_printf (md, "\n## Records per second end to end (`%s`, boltserver.py, median of %d "
                              "interleaved rounds)\n\n"
                              "| path | records | records/s | vs neo4j-driver |\n|---|---:|---:|---:|\n", QUERY, rounds);
  g_string_append_printf (md, "| Graph.RunToFd via backplaned (JSON Lines from the pipe) | %d | %.0f | %.2f× |\n",
                          stream_n, m_bp_stream, r_stream);
  g_string_append_printf (md, "| neo4j-driver %s, streamed, JSON line per record | %d | %.0f | 1× |\n",
                          node.version, stream_n, m_node_stream);
  g_string_append_printf (md, "| BpBoltConnection in process → /dev/null | %d | %.0f | |\n", stream_n, m_local);
  g_string_append_printf (md, "| Graph.Run via backplaned (one reply) | %d | %.0f | %.2f× |\n",
                          eager_n, m_bp_eager, r_eager);
  g_string_append_printf (md, "| neo4j-driver %s executeQuery | %d | %.0f | 1× |\n", node.version, eager_n,
                          m_node_eager);
  g_string_append_printf (md, "\nGraph.Run's %d records, in process: fetch + decode to GVariant %.1f ms, GDBus "
                              "marshalling of the reply %.1f ms, GDBus parsing of it in the caller %.1f ms "
                              "(the driver's whole executeQuery: %.1f ms).\n",
                          eager_n, bench_median (bd_collect, rounds), bench_median (bd_marshal, rounds),
                          bench_median (bd_parse, rounds), 1000.0 * eager_n / m_node_eager);
  g_string_append_printf (md, "\nboltserver.py CPU busy: %.0f %% during RunToFd, %.0f %% over a node run.\n",
                          100 * bench_median (busy_bp, rounds), 100 * bench_median (busy_node, rounds));
  if (!g_file_set_contents (results_path, md->str, -1, &error))
    g_printerr ("bench-bolt: %s\n", error->message);
  else
    g_print ("results written to %s\n", results_path);

  {
    g_autoptr(GAsyncResult) result = NULL;

    bp_bolt_connection_close_async (local_conn, NULL, store_result_cb, &result);
    bp_bolt_connection_close_finish (local_conn, wait_result (&result), NULL);
    g_clear_object (&local_conn);
  }
  g_free (node.version);
  bench_daemon_stop ();
  g_clear_object (&bus);
  bench_cleanup ();
  return 0;
}
