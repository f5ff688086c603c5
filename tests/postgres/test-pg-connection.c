/* test-pg-connection.c: BpPgConnection against a real PostgreSQL 15 cluster
 *
 * One cluster (pg-fixture.c) serves all tests of this binary. Waits are on
 * events with a generous overall deadline, never sleeps.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "bp-pg-connection.h"
#include "bp-pg-error.h"
#include "pg-fixture.h"

#define WAIT_DEADLINE_US (60 * G_USEC_PER_SEC)

static PgFixture *fixture;

/* ---------------------------------------------------------------------- */
/* Helpers                                                                 */

static gboolean
wake_cb (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

static gboolean
tick_cb (gpointer user_data)
{
  guint *ticks = user_data;

  (*ticks)++;
  return G_SOURCE_CONTINUE;
}

static void
store_result_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GAsyncResult **slot = user_data;

  g_assert_null (*slot);
  *slot = g_object_ref (result);
}

/* Iterates the main context until *@done is TRUE. */
static void
wait_until (gboolean *done)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_DEADLINE_US;
  guint wake = g_timeout_add (100, wake_cb, NULL);

  while (!*done)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
  g_source_remove (wake);
}

static GAsyncResult *
wait_result (GAsyncResult **slot)
{
  gint64 deadline = g_get_monotonic_time () + WAIT_DEADLINE_US;
  guint wake = g_timeout_add (100, wake_cb, NULL);

  while (*slot == NULL)
    {
      g_assert_cmpint (g_get_monotonic_time (), <, deadline);
      g_main_context_iteration (NULL, TRUE);
    }
  g_source_remove (wake);
  return g_steal_pointer (slot);
}

static BpPgConnection *
connect_conn (const char  *conninfo,
              const char  *password,
              GError     **error)
{
  g_autoptr(BpPgConnection) conn = bp_pg_connection_new (conninfo, password, NULL);
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  bp_pg_connection_set_application_name (conn, "bp-test");
  bp_pg_connection_connect_async (conn, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  if (!bp_pg_connection_connect_finish (conn, result, error))
    return NULL;
  return g_steal_pointer (&conn);
}

static BpPgConnection *
connect_socket (void)
{
  g_autoptr(GError) error = NULL;
  BpPgConnection *conn = connect_conn (fixture->conninfo_socket, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpint (bp_pg_connection_get_state (conn), ==, BP_PG_CONNECTION_STATE_IDLE);
  return conn;
}

static gboolean
run_query (BpPgConnection  *conn,
           const char      *sql,
           GVariant        *params,
           GVariant       **out_columns,
           GVariant       **out_rows,
           GError         **error)
{
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  if (params != NULL)
    g_variant_ref_sink (params);
  bp_pg_connection_query_async (conn, sql, params, 0, 0, NULL, store_result_cb, &slot);
  g_clear_pointer (&params, g_variant_unref);
  result = wait_result (&slot);
  return bp_pg_connection_query_finish (conn, result, out_columns, out_rows, NULL, error);
}

/* Runs @sql and returns the first column of the first row, printed. */
static char *
query_value (BpPgConnection *conn,
             const char     *sql)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) rows = NULL;
  g_autoptr(GVariant) columns = NULL;
  g_autoptr(GVariant) row = NULL;
  g_autoptr(GVariant) value = NULL;
  const char *name;

  g_assert_true (run_query (conn, sql, NULL, &columns, &rows, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (rows), >=, 1);
  row = g_variant_get_child_value (rows, 0);
  g_variant_get_child (columns, 0, "(&s&s)", &name, NULL);
  value = g_variant_lookup_value (row, name, NULL);
  g_assert_nonnull (value);
  return g_variant_print (value, FALSE);
}

static void
assert_usable (BpPgConnection *conn)
{
  g_autofree char *one = query_value (conn, "SELECT 41 + 1");

  g_assert_cmpstr (one, ==, "42");
  g_assert_cmpint (bp_pg_connection_get_transaction_status (conn), ==, PQTRANS_IDLE);
}

/* ---------------------------------------------------------------------- */
/* Connect                                                                 */

static void
test_connect_socket (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autofree char *style = query_value (conn, "SHOW DateStyle");
  g_autofree char *tz = query_value (conn, "SHOW TimeZone");
  g_autofree char *app = query_value (conn, "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()");

  g_assert_cmpint (bp_pg_connection_get_backend_pid (conn), >, 0);
  g_assert_cmpstr (style, ==, "'ISO, MDY'");
  g_assert_cmpstr (tz, ==, "'UTC'");
  g_assert_cmpstr (app, ==, "'bp-test'");
  assert_usable (conn);
}

static void
test_connect_tcp (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpPgConnection) conn = connect_conn (fixture->conninfo_tcp, fixture->password, &error);
  g_autofree char *ssl = NULL;

  g_assert_no_error (error);
  ssl = query_value (conn, "SELECT host(client_addr) FROM pg_stat_activity WHERE pid = pg_backend_pid()");
  g_assert_cmpstr (ssl, ==, "'127.0.0.1'");
  assert_usable (conn);
}

static void
test_connect_uri_multi_host (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) closed = NULL;
  g_autoptr(BpPgConnection) conn = NULL;
  g_autofree char *conninfo = NULL;
  guint16 dead_port;

  /* A port nobody listens on: bind, read the port, close. */
  {
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
    g_autoptr(GSocketAddress) bound = NULL;

    closed = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
    g_assert_no_error (error);
    g_socket_bind (closed, any, FALSE, &error);
    g_assert_no_error (error);
    bound = g_socket_get_local_address (closed, &error);
    g_assert_no_error (error);
    dead_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
    g_socket_close (closed, NULL);
  }

  /* "localhost" goes through GResolver; the first host refuses. */
  conninfo = g_strdup_printf ("postgresql://%s@127.0.0.1:%u,localhost:%u/postgres?target_session_attrs=read-write&sslmode=disable",
                              fixture->superuser, dead_port, fixture->port);
  conn = connect_conn (conninfo, fixture->password, &error);
  g_assert_no_error (error);
  assert_usable (conn);
}

static void
test_connect_bad_password (void)
{
  g_autoptr(GError) error = NULL;
  const char *wrong = "Wr0ng-Passw0rd-xyzzy";
  BpPgConnection *conn = connect_conn (fixture->conninfo_tcp, wrong, &error);

  g_assert_null (conn);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_nonnull (strstr (error->message, "password authentication failed"));
  g_assert_null (strstr (error->message, wrong));
  g_assert_true (g_str_has_prefix (error->message, "SQLSTATE 08001: "));
}

static void
test_connect_bad_conninfo (void)
{
  g_autoptr(GError) error = NULL;
  BpPgConnection *conn = connect_conn ("host=127.0.0.1 nonsense_key=1", NULL, &error);

  g_assert_null (conn);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
}

static void
test_connect_timeout (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocket) listener = NULL;
  g_autoptr(GInetAddress) lo = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (lo, 0);
  g_autoptr(GSocketAddress) bound = NULL;
  g_autoptr(BpPgConnection) conn = NULL;
  g_autofree char *conninfo = NULL;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  gint64 start;
  gint64 elapsed;
  guint ticks = 0;
  guint tick_id;

  /* A black hole: the kernel completes the handshake, nobody ever answers. */
  listener = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, &error);
  g_assert_no_error (error);
  g_socket_bind (listener, any, FALSE, &error);
  g_assert_no_error (error);
  g_socket_set_listen_backlog (listener, 8);
  g_socket_listen (listener, &error);
  g_assert_no_error (error);
  bound = g_socket_get_local_address (listener, &error);
  g_assert_no_error (error);

  conninfo = g_strdup_printf ("host=127.0.0.1 port=%u dbname=postgres user=x",
                              g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound)));
  conn = bp_pg_connection_new (conninfo, "secret", NULL);
  bp_pg_connection_set_connect_timeout (conn, 500);

  tick_id = g_timeout_add (10, tick_cb, &ticks);
  start = g_get_monotonic_time ();
  bp_pg_connection_connect_async (conn, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  elapsed = g_get_monotonic_time () - start;
  g_source_remove (tick_id);

  g_assert_false (bp_pg_connection_connect_finish (conn, result, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_cmpint (bp_pg_connection_get_state (conn), ==, BP_PG_CONNECTION_STATE_CLOSED);
  /* Generous bounds: the timer is ours, not the kernel's. */
  g_assert_cmpint (elapsed, >=, 450 * 1000);
  g_assert_cmpint (elapsed, <, 5 * G_USEC_PER_SEC);
  /* The loop kept running while connecting. */
  g_assert_cmpuint (ticks, >=, 10);
}

static void
test_connect_cancel (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpPgConnection) conn = bp_pg_connection_new (fixture->conninfo_socket, NULL, NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  bp_pg_connection_connect_async (conn, cancellable, store_result_cb, &slot);
  g_cancellable_cancel (cancellable);
  result = wait_result (&slot);
  g_assert_false (bp_pg_connection_connect_finish (conn, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* ---------------------------------------------------------------------- */
/* Types, parameters, errors                                               */

static GVariant *
lookup (GVariant   *row,
        const char *key)
{
  return g_variant_lookup_value (row, key, NULL);
}

static void
assert_key_printed (GVariant   *row,
                    const char *key,
                    const char *expected)
{
  g_autoptr(GVariant) value = lookup (row, key);
  g_autofree char *text = NULL;

  if (value == NULL)
    g_error ("key %s missing", key);
  text = g_variant_print (value, TRUE);
  g_assert_cmpstr (text, ==, expected);
}

static void
test_types_round_trip (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) columns = NULL;
  g_autoptr(GVariant) rows = NULL;
  g_autoptr(GVariant) row = NULL;
  g_autoptr(GVariant) absent = NULL;
  const char *sql =
    "SELECT $1::int2 AS i2, $2::int4 AS i4, $3::int8 AS i8, $4::oid AS o, "
    "$5::float4 AS f4, $6::float8 AS f8, $7::numeric AS num, $8::bool AS b, "
    "$9::text AS t, $10::varchar AS vc, 'nm'::name AS nm, 'c'::char AS ch, "
    "$11::bytea AS by, $12::json AS js, $13::jsonb AS jb, $14::uuid AS u, "
    "$15::date AS d, $16::time AS tm, $17::timestamp AS ts, $18::timestamptz AS tstz, "
    "$19::interval AS iv, $20::int4[] AS arr, $21::text[] AS tarr, $22::text AS null_text, "
    "''::text AS empty_text, '{}'::int4[] AS empty_arr, $23::bytea AS empty_bytes, "
    "'{{1,2},{3,4}}'::int4[] AS arr2, 1 AS dup, 2 AS dup, 'NaN'::numeric AS nan";
  GVariant *params = g_variant_parse (G_VARIANT_TYPE ("av"),
    "[<-32768>, <2147483647>, <int64 -9223372036854775808>, <uint32 4000000000>, "
    "<1.5>, <-0.25>, <'12345678901234567890.000000000000000001'>, <true>, "
    "<'héllo \"wörld\"'>, <'v'>, <[byte 0x00, 0xff, 0x5c]>, <'{\"a\": [1, 2]}'>, "
    "<'{\"b\": null}'>, <'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'>, <'2024-02-29'>, "
    "<'23:59:58.5'>, <'2024-01-02 03:04:05'>, <'2024-01-02 03:04:05+02'>, "
    "<'1 day 2 hours'>, <[<1>, <objectpath '/'>, <3>]>, <['a,b', '', 'NULL']>, "
    "<objectpath '/'>, <@ay []>]", NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (run_query (conn, sql, params, &columns, &rows, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (rows), ==, 1);
  row = g_variant_get_child_value (rows, 0);

  assert_key_printed (row, "i2", "-32768");
  assert_key_printed (row, "i4", "2147483647");
  assert_key_printed (row, "i8", "int64 -9223372036854775808");
  assert_key_printed (row, "o", "uint32 4000000000");
  assert_key_printed (row, "f4", "1.5");
  assert_key_printed (row, "f8", "-0.25");
  assert_key_printed (row, "num", "'12345678901234567890.000000000000000001'");
  assert_key_printed (row, "b", "true");
  assert_key_printed (row, "t", "'héllo \"wörld\"'");
  assert_key_printed (row, "vc", "'v'");
  assert_key_printed (row, "nm", "'nm'");
  assert_key_printed (row, "ch", "'c'");
  assert_key_printed (row, "by", "[byte 0x00, 0xff, 0x5c]");
  assert_key_printed (row, "js", "'{\"a\": [1, 2]}'");
  assert_key_printed (row, "jb", "'{\"b\": null}'");
  assert_key_printed (row, "u", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'");
  assert_key_printed (row, "d", "'2024-02-29'");
  assert_key_printed (row, "tm", "'23:59:58.5'");
  assert_key_printed (row, "ts", "'2024-01-02 03:04:05'");
  assert_key_printed (row, "tstz", "'2024-01-02 01:04:05+00'");
  assert_key_printed (row, "iv", "'P1DT2H'");
  assert_key_printed (row, "arr", "[<1>, <objectpath '/'>, <3>]");
  assert_key_printed (row, "tarr", "[<'a,b'>, <''>, <'NULL'>]");
  assert_key_printed (row, "empty_text", "''");
  assert_key_printed (row, "empty_arr", "@av []");
  assert_key_printed (row, "empty_bytes", "@ay []");
  assert_key_printed (row, "arr2", "[<[<1>, <2>]>, <[<3>, <4>]>]");
  assert_key_printed (row, "dup", "1");
  assert_key_printed (row, "dup#2", "2");
  assert_key_printed (row, "nan", "'NaN'");

  /* NULL is an absent key, distinct from '' and '{}' */
  absent = lookup (row, "null_text");
  g_assert_null (absent);

  /* Columns keep SQL names and carry type names. */
  {
    const char *name, *type;

    g_variant_get_child (columns, 0, "(&s&s)", &name, &type);
    g_assert_cmpstr (name, ==, "i2");
    g_assert_cmpstr (type, ==, "int2");
    g_variant_get_child (columns, 21, "(&s&s)", &name, &type);
    g_assert_cmpstr (type, ==, "int4[]");
    g_variant_get_child (columns, 28, "(&s&s)", &name, &type);
    g_assert_cmpstr (name, ==, "dup");
    g_variant_get_child (columns, 29, "(&s&s)", &name, &type);
    g_assert_cmpstr (name, ==, "dup");
  }
}

static void
test_params_invalid (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;

  g_assert_false (run_query (conn, "SELECT $1, $2",
                             g_variant_parse (G_VARIANT_TYPE ("av"), "[<1>]", NULL, NULL, NULL),
                             NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "($2)"));
  g_clear_error (&error);

  g_assert_false (run_query (conn, "SELECT $1",
                             g_variant_parse (G_VARIANT_TYPE ("av"), "[<{'a': <1>}>]", NULL, NULL, NULL),
                             NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "params[0] ($1)"));
  assert_usable (conn);
}

static void
test_injection (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) rows = NULL;
  const char *evil[] = {
    "'; DROP TABLE inj; --",
    "x' OR '1'='1",
    "$1",
    "\\'; SELECT pg_sleep(10); --",
  };

  g_assert_true (run_query (conn, "CREATE TABLE inj (v text)", NULL, NULL, NULL, &error));
  g_assert_no_error (error);
  for (gsize i = 0; i < G_N_ELEMENTS (evil); i++)
    {
      GVariant *params = g_variant_new_parsed ("[<%s>]", evil[i]);

      g_assert_true (run_query (conn, "INSERT INTO inj VALUES ($1)", params, NULL, NULL, &error));
      g_assert_no_error (error);
    }
  g_assert_true (run_query (conn, "SELECT v FROM inj WHERE v = $1",
                            g_variant_new_parsed ("[<%s>]", evil[1]), NULL, &rows, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (rows), ==, 1);
  g_clear_pointer (&rows, g_variant_unref);
  g_assert_true (run_query (conn, "SELECT count(*) AS n FROM inj", NULL, NULL, &rows, &error));
  g_assert_no_error (error);
  {
    g_autoptr(GVariant) row = g_variant_get_child_value (rows, 0);
    assert_key_printed (row, "n", "int64 4");
  }
  g_assert_true (run_query (conn, "DROP TABLE inj", NULL, NULL, NULL, &error));
  g_assert_no_error (error);
}

static void
test_syntax_error (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  char sqlstate[6];

  g_assert_false (run_query (conn, "SELEC 1", NULL, NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_true (g_str_has_prefix (error->message, "SQLSTATE 42601: "));
  g_assert_true (bp_pg_error_get_sqlstate (error, sqlstate));
  g_assert_cmpstr (sqlstate, ==, "42601");
  g_assert_cmpint (bp_pg_error_classify (error), ==, BP_PG_ERROR_CLASS_CLIENT);
  g_clear_error (&error);

  g_assert_false (run_query (conn, "SELECT 1/0", NULL, NULL, NULL, &error));
  g_assert_true (g_str_has_prefix (error->message, "SQLSTATE 22012: "));
  assert_usable (conn);
}

static void
test_max_rows (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  bp_pg_connection_query_async (conn, "SELECT g FROM generate_series(1, 1000000) g", NULL,
                                10, 0, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  g_assert_false (bp_pg_connection_query_finish (conn, result, NULL, NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  assert_usable (conn);
}

/* ---------------------------------------------------------------------- */
/* Streaming                                                               */

typedef struct
{
  BpPgConnection *conn;
  BpPgRowDesc    *desc;
  guint           max_buffered;
  guint64         n_rows;
  guint64         sum;
  guint           n_batches;
  guint           slow_batches;
  gboolean        done;
  GError         *error;
} StreamState;

static void pull_next (StreamState *state);

static gboolean
pull_later_cb (gpointer user_data)
{
  pull_next (user_data);
  return G_SOURCE_REMOVE;
}

static void
next_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  StreamState *state = user_data;
  gboolean done = FALSE;
  g_autoptr(GPtrArray) rows = bp_pg_connection_stream_next_finish (state->conn, result, &done, &state->error);
  const BpPgRowDesc *desc = state->desc;

  /* Never more than the bound read ahead of us. */
  g_assert_cmpuint (bp_pg_connection_get_buffered_rows (state->conn), <=, state->max_buffered);

  if (rows == NULL)
    {
      state->done = TRUE;
      return;
    }
  for (guint i = 0; i < rows->len; i++)
    {
      PGresult *res = g_ptr_array_index (rows, i);
      g_autoptr(GVariant) row = g_variant_ref_sink (bp_pg_row_to_variant (desc, res, 0, NULL));
      gint32 g;

      g_assert_true (g_variant_lookup (row, "g", "i", &g));
      state->sum += (guint64) g;
      state->n_rows++;
    }
  state->n_batches++;
  if (done)
    {
      state->done = TRUE;
      return;
    }
  /* A slow consumer for a while: the server must wait for us. */
  if (state->n_batches < state->slow_batches)
    g_timeout_add (2, pull_later_cb, state);
  else
    pull_next (state);
}

static void
pull_next (StreamState *state)
{
  bp_pg_connection_stream_next_async (state->conn, 50, NULL, next_cb, state);
}

static void
test_stream_slow_consumer (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  g_autoptr(BpPgRowDesc) desc = NULL;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  StreamState state = { 0 };
  const guint64 n = 200000;

  bp_pg_connection_set_max_buffered_rows (conn, 64);
  bp_pg_connection_stream_async (conn, "SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 200000) g",
                                 NULL, 0, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  desc = bp_pg_connection_stream_finish (conn, result, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bp_pg_row_desc_get_n_columns (desc), ==, 2);
  g_assert_cmpstr (bp_pg_row_desc_get_type_name (desc, 1), ==, "text");

  state.conn = conn;
  state.desc = desc;
  state.max_buffered = 64;
  state.slow_batches = 100;
  pull_next (&state);
  wait_until (&state.done);

  g_assert_no_error (state.error);
  g_assert_cmpuint (state.n_rows, ==, n);
  g_assert_cmpuint (state.sum, ==, n * (n + 1) / 2);
  g_assert_cmpuint (bp_pg_connection_get_peak_buffered_rows (conn), <=, 64);
  g_assert_cmpuint (bp_pg_connection_get_peak_buffered_rows (conn), >=, 1);
  g_assert_cmpint (bp_pg_connection_get_state (conn), ==, BP_PG_CONNECTION_STATE_IDLE);
  assert_usable (conn);
}

static void
test_stream_close_early (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  g_autoptr(BpPgRowDesc) desc = NULL;
  g_autoptr(GPtrArray) rows = NULL;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  gboolean done = TRUE;

  bp_pg_connection_stream_async (conn, "SELECT g FROM generate_series(1, 50000000) g",
                                 NULL, 0, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  desc = bp_pg_connection_stream_finish (conn, result, &error);
  g_assert_no_error (error);
  g_clear_object (&result);

  bp_pg_connection_stream_next_async (conn, 10, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  rows = bp_pg_connection_stream_next_finish (conn, result, &done, &error);
  g_assert_no_error (error);
  g_assert_false (done);
  g_assert_cmpuint (rows->len, >=, 1);
  g_clear_object (&result);

  bp_pg_connection_stream_close_async (conn, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  g_assert_true (bp_pg_connection_stream_close_finish (conn, result, &error));
  g_assert_no_error (error);
  assert_usable (conn);
}

static void
test_stream_error (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  BpPgRowDesc *desc;

  bp_pg_connection_stream_async (conn, "SELECT nope FROM nowhere", NULL, 0, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  desc = bp_pg_connection_stream_finish (conn, result, &error);
  g_assert_null (desc);
  g_assert_true (g_str_has_prefix (error->message, "SQLSTATE 42P01"));
  assert_usable (conn);
}

/* ---------------------------------------------------------------------- */
/* Cancel, timeouts                                                        */

static gboolean
cancel_cb (gpointer user_data)
{
  g_cancellable_cancel (user_data);
  return G_SOURCE_REMOVE;
}

static void
test_cancel (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  gint64 start;
  guint ticks = 0;
  guint tick_id;

  tick_id = g_timeout_add (10, tick_cb, &ticks);
  start = g_get_monotonic_time ();
  bp_pg_connection_query_async (conn, "SELECT pg_sleep(30)", NULL, 0, 0, cancellable,
                                store_result_cb, &slot);
  g_timeout_add (200, cancel_cb, cancellable);
  result = wait_result (&slot);
  g_source_remove (tick_id);

  g_assert_false (bp_pg_connection_query_finish (conn, result, NULL, NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
  g_assert_cmpuint (ticks, >=, 10);
  assert_usable (conn);
}

static void
test_query_timeout (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  gint64 start = g_get_monotonic_time ();

  bp_pg_connection_query_async (conn, "SELECT pg_sleep(30)", NULL, 0, 300, NULL,
                                store_result_cb, &slot);
  result = wait_result (&slot);
  g_assert_false (bp_pg_connection_query_finish (conn, result, NULL, NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_cmpint (g_get_monotonic_time () - start, <, 5 * G_USEC_PER_SEC);
  assert_usable (conn);
}

/* ---------------------------------------------------------------------- */
/* Pipeline                                                                */

static GVariant *
run_execute (BpPgConnection     *conn,
             const char         *statements,
             BpPgPipelineFlags   flags,
             int                *out_failed,
             GError            **error)
{
  g_autoptr(GVariant) v = g_variant_ref_sink (g_variant_parse (G_VARIANT_TYPE ("a(sav)"), statements,
                                                               NULL, NULL, NULL));
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;

  g_assert_nonnull (v);
  bp_pg_connection_execute_async (conn, v, flags, 0, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  return bp_pg_connection_execute_finish (conn, result, out_failed, error);
}

static void
test_pipeline (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) affected = NULL;
  g_autofree char *count = NULL;
  int failed = 99;

  g_assert_true (run_query (conn, "CREATE TABLE pipe (id int primary key)", NULL, NULL, NULL, &error));
  g_assert_no_error (error);

  affected = run_execute (conn,
                          "[('INSERT INTO pipe VALUES ($1)', [<1>]), "
                          "('INSERT INTO pipe SELECT g FROM generate_series(2, 4) g', @av []), "
                          "('UPDATE pipe SET id = id + 10 WHERE id > $1', [<2>])]",
                          BP_PG_PIPELINE_FLAGS_NONE, &failed, &error);
  g_assert_no_error (error);
  g_assert_cmpint (failed, ==, -1);
  {
    g_autofree char *text = g_variant_print (affected, FALSE);
    g_assert_cmpstr (text, ==, "[1, 3, 2]");
  }

  /* The 2nd of 3 fails: index 1, the batch is rolled back, the connection lives. */
  g_clear_pointer (&affected, g_variant_unref);
  affected = run_execute (conn,
                          "[('INSERT INTO pipe VALUES (100)', @av []), "
                          "('INSERT INTO pipe VALUES (1)', @av []), "
                          "('INSERT INTO pipe VALUES (101)', @av [])]",
                          BP_PG_PIPELINE_FLAGS_NONE, &failed, &error);
  g_assert_null (affected);
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_cmpint (failed, ==, 1);
  g_assert_true (g_str_has_prefix (error->message, "statement 1: SQLSTATE 23505: "));
  g_clear_error (&error);
  count = query_value (conn, "SELECT count(*) FROM pipe");
  g_assert_cmpstr (count, ==, "4");
  assert_usable (conn);

  /* Sync after each: the others commit. */
  affected = run_execute (conn,
                          "[('INSERT INTO pipe VALUES (200)', @av []), "
                          "('SELECT 1/0', @av []), "
                          "('INSERT INTO pipe VALUES (201)', @av [])]",
                          BP_PG_PIPELINE_FLAGS_SYNC_EACH, &failed, &error);
  g_assert_null (affected);
  g_assert_cmpint (failed, ==, 1);
  g_assert_true (g_str_has_prefix (error->message, "statement 1: SQLSTATE 22012: "));
  g_clear_error (&error);
  g_free (count);
  count = query_value (conn, "SELECT count(*) FROM pipe");
  g_assert_cmpstr (count, ==, "6");

  /* A parameter error is reported before anything is sent. */
  affected = run_execute (conn, "[('SELECT 1', @av []), ('SELECT $1', @av [])]",
                          BP_PG_PIPELINE_FLAGS_NONE, &failed, &error);
  g_assert_null (affected);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_cmpint (failed, ==, 1);
  g_clear_error (&error);

  /* Many statements, one sync. */
  {
    g_autoptr(GString) many = g_string_new ("[");

    for (guint i = 0; i < 1000; i++)
      g_string_append_printf (many, "%s('INSERT INTO pipe VALUES ($1) RETURNING id', [<%u>])",
                              i > 0 ? ", " : "", 1000 + i);
    g_string_append (many, "]");
    affected = run_execute (conn, many->str, BP_PG_PIPELINE_FLAGS_NONE, &failed, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (g_variant_n_children (affected), ==, 1000);
  }

  /* Batches larger than one dispatch's chunk: a bad parameter far in still
   * stops it before anything is sent … */
  g_clear_pointer (&affected, g_variant_unref);
  g_clear_pointer (&count, g_free);
  {
    g_autoptr(GString) many = g_string_new ("[");

    for (guint i = 0; i < 1000; i++)
      g_string_append_printf (many, "%s('INSERT INTO pipe VALUES ($1)', [<%s>])",
                              i > 0 ? ", " : "", i == 700 ? "{'not': <'a value'>}" : "5000");
    g_string_append (many, "]");
    affected = run_execute (conn, many->str, BP_PG_PIPELINE_FLAGS_SYNC_EACH, &failed, &error);
    g_assert_null (affected);
    g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
    g_assert_true (g_str_has_prefix (error->message, "statements[700]."));
    g_assert_cmpint (failed, ==, 700);
    g_clear_error (&error);
    count = query_value (conn, "SELECT count(*) FROM pipe WHERE id = 5000");
    g_assert_cmpstr (count, ==, "0");
  }
  /* … and a statement failing far in aborts the rest up to the one sync;
   * the connection is usable afterwards. */
  g_clear_pointer (&count, g_free);
  {
    g_autoptr(GString) many = g_string_new ("[");

    for (guint i = 0; i < 1000; i++)
      g_string_append_printf (many, "%s('INSERT INTO pipe VALUES ($1)', [<%u>])",
                              i > 0 ? ", " : "", i == 600 ? 1 : 6000 + i);
    g_string_append (many, "]");
    affected = run_execute (conn, many->str, BP_PG_PIPELINE_FLAGS_NONE, &failed, &error);
    g_assert_null (affected);
    g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
    g_assert_cmpint (failed, ==, 600);
    g_assert_true (g_str_has_prefix (error->message, "statement 600: SQLSTATE 23505: "));
    g_clear_error (&error);
    count = query_value (conn, "SELECT count(*) FROM pipe WHERE id >= 6000");
    g_assert_cmpstr (count, ==, "0");
    assert_usable (conn);
  }
  g_assert_true (run_query (conn, "DROP TABLE pipe", NULL, NULL, NULL, &error));
  g_assert_no_error (error);
}

/* A pipeline cancelled part way (its timeout) leaves the connection idle
 * and usable. */
static void
test_pipeline_timeout (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) affected = NULL;
  g_autoptr(GString) many = g_string_new ("[");
  g_autoptr(GVariant) v = NULL;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  int failed;

  for (guint i = 0; i < 2000; i++)
    g_string_append_printf (many, "%s('SELECT pg_sleep(0.005)', @av [])", i > 0 ? ", " : "");
  g_string_append (many, "]");
  v = g_variant_ref_sink (g_variant_parse (G_VARIANT_TYPE ("a(sav)"), many->str, NULL, NULL, NULL));
  bp_pg_connection_execute_async (conn, v, BP_PG_PIPELINE_FLAGS_NONE, 200, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  affected = bp_pg_connection_execute_finish (conn, result, &failed, &error);
  g_assert_null (affected);
  g_assert_error (error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_cmpint (bp_pg_connection_get_state (conn), ==, BP_PG_CONNECTION_STATE_IDLE);
  assert_usable (conn);

  /* Cancelled while still converting and sending (the batch goes out over
   * several dispatches): after 0, 5, 20 and 30 of them. */
  for (guint k = 0; k < 4; k++)
    {
      const guint spins[] = { 0, 5, 20, 30 };
      g_autoptr(GCancellable) cancellable = g_cancellable_new ();

      g_clear_pointer (&affected, g_variant_unref);
      g_clear_object (&result);
      g_clear_error (&error);
      bp_pg_connection_execute_async (conn, v, BP_PG_PIPELINE_FLAGS_NONE, 0, cancellable, store_result_cb, &slot);
      for (guint i = 0; i < spins[k] && slot == NULL; i++)
        g_main_context_iteration (NULL, FALSE);
      g_cancellable_cancel (cancellable);
      result = wait_result (&slot);
      affected = bp_pg_connection_execute_finish (conn, result, &failed, &error);
      g_assert_null (affected);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_assert_cmpint (bp_pg_connection_get_state (conn), ==, BP_PG_CONNECTION_STATE_IDLE);
      assert_usable (conn);
    }
}

/* ---------------------------------------------------------------------- */
/* COPY                                                                    */

static void
test_copy_round_trip (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) data = g_string_new (NULL);
  g_autoptr(GInputStream) input = NULL;
  g_autoptr(GOutputStream) output = NULL;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  guint64 rows = 0;
  const guint n = 20000;

  g_assert_true (run_query (conn, "CREATE TABLE cp (id int, v text)", NULL, NULL, NULL, &error));
  g_assert_no_error (error);

  for (guint i = 0; i < n; i++)
    g_string_append_printf (data, "%u\tvalue \\\\ %u \xc3\xa9\n", i, i * 7);
  input = g_memory_input_stream_new_from_data (g_memdup2 (data->str, data->len), data->len, g_free);

  bp_pg_connection_copy_from_async (conn, "COPY cp FROM STDIN", input, 0, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  g_assert_true (bp_pg_connection_copy_from_finish (conn, result, &rows, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (rows, ==, n);
  g_clear_object (&result);

  output = g_memory_output_stream_new_resizable ();
  bp_pg_connection_copy_to_async (conn, "COPY (SELECT * FROM cp ORDER BY id) TO STDOUT", output, 0, NULL,
                                  store_result_cb, &slot);
  result = wait_result (&slot);
  g_assert_true (bp_pg_connection_copy_to_finish (conn, result, &rows, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (rows, ==, n);
  g_assert_true (g_output_stream_close (output, NULL, NULL));
  g_assert_cmpmem (g_memory_output_stream_get_data (G_MEMORY_OUTPUT_STREAM (output)),
                   g_memory_output_stream_get_data_size (G_MEMORY_OUTPUT_STREAM (output)),
                   data->str, data->len);
  g_clear_object (&result);

  /* Bad input: the COPY fails, the connection lives, nothing was added. */
  {
    const char *bad = "1\tok\nnot-a-number\tbad\n";
    g_autoptr(GInputStream) bad_input = g_memory_input_stream_new_from_data (bad, strlen (bad), NULL);
    g_autofree char *count = NULL;

    bp_pg_connection_copy_from_async (conn, "COPY cp FROM STDIN", bad_input, 0, NULL, store_result_cb, &slot);
    result = wait_result (&slot);
    g_assert_false (bp_pg_connection_copy_from_finish (conn, result, &rows, &error));
    g_assert_true (g_str_has_prefix (error->message, "SQLSTATE 22P02"));
    g_clear_error (&error);
    count = query_value (conn, "SELECT count(*) FROM cp");
    g_assert_cmpstr (count, ==, "20000");
  }

  /* COPY through Query is refused and leaves the connection usable. */
  g_assert_false (run_query (conn, "COPY cp TO STDOUT", NULL, NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (run_query (conn, "COPY cp FROM STDIN", NULL, NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  assert_usable (conn);

  g_assert_true (run_query (conn, "DROP TABLE cp", NULL, NULL, NULL, &error));
  g_assert_no_error (error);
}

/* ---------------------------------------------------------------------- */
/* LISTEN/NOTIFY, dead connections                                         */

typedef struct
{
  char    *channel;
  char    *payload;
  int      pid;
  gboolean got;
} Notified;

static void
notification_cb (BpPgConnection *conn,
                 const char     *channel,
                 const char     *payload,
                 int             pid,
                 Notified       *n)
{
  g_free (n->channel);
  g_free (n->payload);
  n->channel = g_strdup (channel);
  n->payload = g_strdup (payload);
  n->pid = pid;
  n->got = TRUE;
}

static void
test_listen_notify (void)
{
  g_autoptr(BpPgConnection) listener = connect_socket ();
  g_autoptr(BpPgConnection) sender = connect_socket ();
  g_autoptr(GError) error = NULL;
  Notified n = { 0 };

  g_signal_connect (listener, "notification", G_CALLBACK (notification_cb), &n);
  g_assert_true (run_query (listener, "LISTEN bp_channel", NULL, NULL, NULL, &error));
  g_assert_no_error (error);

  g_assert_true (run_query (sender, "SELECT pg_notify('bp_channel', $1)",
                            g_variant_new_parsed ("[<'payload \"x\"'>]"), NULL, NULL, &error));
  g_assert_no_error (error);

  /* The listener is idle: only its socket watch can deliver this. */
  wait_until (&n.got);
  g_assert_cmpstr (n.channel, ==, "bp_channel");
  g_assert_cmpstr (n.payload, ==, "payload \"x\"");
  g_assert_cmpint (n.pid, ==, bp_pg_connection_get_backend_pid (sender));
  g_free (n.channel);
  g_free (n.payload);
}

typedef struct
{
  GError  *error;
  gboolean closed;
} Closed;

static void
closed_cb (BpPgConnection *conn,
           const GError   *error,
           Closed         *c)
{
  g_assert_false (c->closed);
  c->closed = TRUE;
  c->error = g_error_copy (error);
}

static void
test_idle_killed (void)
{
  g_autoptr(BpPgConnection) victim = connect_socket ();
  g_autoptr(BpPgConnection) killer = connect_socket ();
  g_autoptr(GError) error = NULL;
  g_autofree char *sql = NULL;
  Closed c = { 0 };
  char sqlstate[6];

  g_signal_connect (victim, "closed", G_CALLBACK (closed_cb), &c);
  sql = g_strdup_printf ("SELECT pg_terminate_backend(%d)", bp_pg_connection_get_backend_pid (victim));
  g_assert_true (run_query (killer, sql, NULL, NULL, NULL, &error));
  g_assert_no_error (error);

  wait_until (&c.closed);
  g_assert_error (c.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_true (bp_pg_error_get_sqlstate (c.error, sqlstate));
  g_assert_cmpstr (sqlstate, ==, "57P01");
  g_assert_cmpint (bp_pg_error_classify (c.error), ==, BP_PG_ERROR_CLASS_CONNECTION);
  g_assert_cmpint (bp_pg_connection_get_state (victim), ==, BP_PG_CONNECTION_STATE_CLOSED);
  g_clear_error (&c.error);

  g_assert_false (run_query (victim, "SELECT 1", NULL, NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
}

static void
test_busy_killed (void)
{
  g_autoptr(BpPgConnection) victim = connect_socket ();
  g_autoptr(BpPgConnection) killer = connect_socket ();
  g_autoptr(GError) error = NULL;
  g_autofree char *sql = NULL;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  Closed c = { 0 };
  char sqlstate[6];

  g_signal_connect (victim, "closed", G_CALLBACK (closed_cb), &c);
  bp_pg_connection_query_async (victim, "SELECT pg_sleep(30)", NULL, 0, 0, NULL, store_result_cb, &slot);
  sql = g_strdup_printf ("SELECT pg_terminate_backend(%d)", bp_pg_connection_get_backend_pid (victim));
  g_assert_true (run_query (killer, sql, NULL, NULL, NULL, &error));
  g_assert_no_error (error);

  result = wait_result (&slot);
  g_assert_false (bp_pg_connection_query_finish (victim, result, NULL, NULL, NULL, &error));
  g_assert_true (bp_pg_error_get_sqlstate (error, sqlstate));
  g_assert_cmpstr (sqlstate, ==, "57P01");
  g_assert_cmpint (bp_pg_sqlstate_classify (sqlstate), ==, BP_PG_ERROR_CLASS_CONNECTION);
  wait_until (&c.closed);
  g_clear_error (&c.error);
  g_assert_cmpint (bp_pg_connection_get_state (victim), ==, BP_PG_CONNECTION_STATE_CLOSED);
}

/* ---------------------------------------------------------------------- */
/* The loop never blocks                                                   */

static void
test_loop_liveness (void)
{
  g_autoptr(BpPgConnection) conn = connect_socket ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) rows = NULL;
  GAsyncResult *slot = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  guint ticks = 0;
  guint tick_id;
  gint64 start;
  gint64 elapsed;

  /* ~1 s of server time, then a big result to convert. */
  tick_id = g_timeout_add (10, tick_cb, &ticks);
  start = g_get_monotonic_time ();
  bp_pg_connection_query_async (conn,
                                "SELECT g, repeat('y', 200) AS pad FROM pg_sleep(1), generate_series(1, 100000) g",
                                NULL, 0, 0, NULL, store_result_cb, &slot);
  result = wait_result (&slot);
  elapsed = g_get_monotonic_time () - start;
  g_source_remove (tick_id);

  g_assert_true (bp_pg_connection_query_finish (conn, result, NULL, &rows, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (rows), ==, 100000);
  g_test_message ("%u ticks of 10 ms in %" G_GINT64_FORMAT " ms", ticks, elapsed / 1000);
  g_assert_cmpint (elapsed, >=, G_USEC_PER_SEC);
  g_assert_cmpuint (ticks, >=, 50);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);

  fixture = pg_fixture_start (&error);
  if (fixture == NULL)
    g_error ("cannot start the PostgreSQL fixture: %s", error->message);

  g_test_add_func ("/pg-connection/connect/socket", test_connect_socket);
  g_test_add_func ("/pg-connection/connect/tcp", test_connect_tcp);
  g_test_add_func ("/pg-connection/connect/uri-multi-host", test_connect_uri_multi_host);
  g_test_add_func ("/pg-connection/connect/bad-password", test_connect_bad_password);
  g_test_add_func ("/pg-connection/connect/bad-conninfo", test_connect_bad_conninfo);
  g_test_add_func ("/pg-connection/connect/timeout", test_connect_timeout);
  g_test_add_func ("/pg-connection/connect/cancel", test_connect_cancel);
  g_test_add_func ("/pg-connection/types/round-trip", test_types_round_trip);
  g_test_add_func ("/pg-connection/params/invalid", test_params_invalid);
  g_test_add_func ("/pg-connection/params/injection", test_injection);
  g_test_add_func ("/pg-connection/errors/syntax", test_syntax_error);
  g_test_add_func ("/pg-connection/query/max-rows", test_max_rows);
  g_test_add_func ("/pg-connection/stream/slow-consumer", test_stream_slow_consumer);
  g_test_add_func ("/pg-connection/stream/close-early", test_stream_close_early);
  g_test_add_func ("/pg-connection/stream/error", test_stream_error);
  g_test_add_func ("/pg-connection/cancel/pg-sleep", test_cancel);
  g_test_add_func ("/pg-connection/cancel/timeout", test_query_timeout);
  g_test_add_func ("/pg-connection/pipeline", test_pipeline);
  g_test_add_func ("/pg-connection/pipeline/timeout", test_pipeline_timeout);
  g_test_add_func ("/pg-connection/copy/round-trip", test_copy_round_trip);
  g_test_add_func ("/pg-connection/listen-notify", test_listen_notify);
  g_test_add_func ("/pg-connection/dead/idle-killed", test_idle_killed);
  g_test_add_func ("/pg-connection/dead/busy-killed", test_busy_killed);
  g_test_add_func ("/pg-connection/loop/liveness", test_loop_liveness);

  ret = g_test_run ();
  pg_fixture_stop (g_steal_pointer (&fixture));
  return ret;
}
