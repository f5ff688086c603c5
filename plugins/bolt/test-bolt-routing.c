/* test-bolt-routing.c: routing table parsing, expiry and selection; error
 * classification
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-bolt-error.h"
#include "bp-bolt-routing-table.h"
#include "bp-bolt-uri.h"

static GVariant *
sample_rt (gint64 ttl)
{
  return g_variant_ref_sink (g_variant_new_parsed (
      "{'ttl': <%x>, 'db': <'neo4j'>, 'servers': <["
      "<{'addresses': <[<'r1:7687'>, <'r2:7687'>]>, 'role': <'ROUTE'>}>,"
      "<{'addresses': <[<'a:7687'>, <'b:7687'>, <'c:7687'>]>, 'role': <'READ'>}>,"
      "<{'addresses': <[<'w:7687'>]>, 'role': <'WRITE'>}>,"
      "<{'addresses': <[<'x:1'>]>, 'role': <'FUTURE'>}>"
      "]>}", ttl));
}

static void
test_parse (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (1000000, 1);
  g_autoptr(GVariant) rt = sample_rt (300);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltRoutingTable) table = bp_bolt_routing_table_new (rt, clock, &error);
  const char * const *servers;
  guint n;

  g_assert_no_error (error);
  g_assert_cmpstr (bp_bolt_routing_table_get_database (table), ==, "neo4j");
  g_assert_cmpint (bp_bolt_routing_table_get_ttl (table), ==, 300);
  g_assert_cmpint (bp_bolt_routing_table_get_expires (table), ==, 1000000 + 300 * G_USEC_PER_SEC);
  servers = bp_bolt_routing_table_get_servers (table, BP_BOLT_ROLE_ROUTE, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpstr (servers[1], ==, "r2:7687");
  g_assert_null (servers[2]);
  bp_bolt_routing_table_get_servers (table, BP_BOLT_ROLE_READ, &n);
  g_assert_cmpuint (n, ==, 3);
  bp_bolt_routing_table_get_servers (table, BP_BOLT_ROLE_WRITE, &n);
  g_assert_cmpuint (n, ==, 1);
}

static void
test_parse_errors (void)
{
  const char *bad[] = {
    "{'db': <'x'>, 'servers': <@av []>}",
    "{'ttl': <int64 -1>, 'servers': <@av []>}",
    "{'ttl': <int64 10>}",
    "{'ttl': <int64 10>, 'servers': <[<'notadict'>]>}",
    "{'ttl': <int64 10>, 'servers': <[<{'addresses': <[<'a:1'>]>}>]>}",
    "{'ttl': <int64 10>, 'servers': <[<{'role': <'READ'>}>]>}",
    "{'ttl': <int64 10>, 'servers': <[<{'role': <'READ'>, 'addresses': <[<int64 5>]>}>]>}",
    "{'ttl': <int64 10>, 'servers': <[<{'role': <'READ'>, 'addresses': <[<''>]>}>]>}",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GVariant) rt = g_variant_ref_sink (g_variant_new_parsed (bad[i]));
      g_autoptr(GError) error = NULL;
      g_autoptr(BpBoltRoutingTable) table = bp_bolt_routing_table_new (rt, NULL, &error);

      g_assert_null (table);
      g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
    }
}

static void
test_expiry (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 1);
  g_autoptr(GVariant) rt = sample_rt (10);
  g_autoptr(BpBoltRoutingTable) table = bp_bolt_routing_table_new (rt, clock, NULL);

  g_test_summary ("the table expires exactly ttl seconds later on its clock");

  g_assert_false (bp_bolt_routing_table_is_expired (table));
  g_assert_false (bp_bolt_routing_table_is_stale_for (table, BP_BOLT_ROLE_WRITE));
  bp_clock_advance (clock, 10 * G_USEC_PER_SEC - 1);
  g_assert_false (bp_bolt_routing_table_is_expired (table));
  bp_clock_advance (clock, 1);
  g_assert_true (bp_bolt_routing_table_is_expired (table));
  g_assert_true (bp_bolt_routing_table_is_stale_for (table, BP_BOLT_ROLE_READ));
}

static void
test_remove (void)
{
  g_autoptr(GVariant) rt = sample_rt (300);
  g_autoptr(BpBoltRoutingTable) table = bp_bolt_routing_table_new (rt, NULL, NULL);
  g_autoptr(GVariant) rt2 = g_variant_ref_sink (g_variant_new_parsed (
      "{'ttl': <int64 300>, 'servers': <["
      "<{'addresses': <[<'s:1'>]>, 'role': <'ROUTE'>}>,"
      "<{'addresses': <[<'s:1'>]>, 'role': <'READ'>}>,"
      "<{'addresses': <[<'s:1'>]>, 'role': <'WRITE'>}>]>}"));
  g_autoptr(BpBoltRoutingTable) single = bp_bolt_routing_table_new (rt2, NULL, NULL);
  guint n;

  g_test_summary ("a failed server leaves every role; NotALeader removes a writer only; empty roles are stale");

  g_assert_false (bp_bolt_routing_table_remove_server (table, "nowhere:1"));
  g_assert_true (bp_bolt_routing_table_remove_server (table, "b:7687"));
  bp_bolt_routing_table_get_servers (table, BP_BOLT_ROLE_READ, &n);
  g_assert_cmpuint (n, ==, 2);
  g_assert_true (bp_bolt_routing_table_remove_writer (table, "w:7687"));
  g_assert_true (bp_bolt_routing_table_is_stale_for (table, BP_BOLT_ROLE_WRITE));
  g_assert_false (bp_bolt_routing_table_is_stale_for (table, BP_BOLT_ROLE_READ));
  g_assert_null (bp_bolt_routing_table_select (table, BP_BOLT_ROLE_WRITE, BP_BOLT_SELECT_ROUND_ROBIN, NULL, NULL));

  g_assert_true (bp_bolt_routing_table_remove_writer (single, "s:1"));
  bp_bolt_routing_table_get_servers (single, BP_BOLT_ROLE_READ, &n);
  g_assert_cmpuint (n, ==, 1);
  g_assert_true (bp_bolt_routing_table_remove_server (single, "s:1"));
  g_assert_true (bp_bolt_routing_table_is_stale_for (single, BP_BOLT_ROLE_READ));
}

static void
test_round_robin (void)
{
  g_autoptr(GVariant) rt = sample_rt (300);
  g_autoptr(BpBoltRoutingTable) table = bp_bolt_routing_table_new (rt, NULL, NULL);
  const char *want[] = { "a:7687", "b:7687", "c:7687", "a:7687", "b:7687" };

  for (guint i = 0; i < G_N_ELEMENTS (want); i++)
    {
      g_autofree char *got = bp_bolt_routing_table_select (table, BP_BOLT_ROLE_READ, BP_BOLT_SELECT_ROUND_ROBIN, NULL, NULL);
      g_assert_cmpstr (got, ==, want[i]);
    }
}

static guint
in_use (const char *address,
        gpointer    user_data)
{
  GHashTable *loads = user_data;

  return GPOINTER_TO_UINT (g_hash_table_lookup (loads, address));
}

static void
test_least_connections (void)
{
  g_autoptr(GVariant) rt = sample_rt (300);
  g_autoptr(BpBoltRoutingTable) table = bp_bolt_routing_table_new (rt, NULL, NULL);
  g_autoptr(GHashTable) loads = g_hash_table_new (g_str_hash, g_str_equal);

  g_test_summary ("least-connections picks the least loaded reader and spreads ties round-robin");

  g_hash_table_insert (loads, "a:7687", GUINT_TO_POINTER (5));
  g_hash_table_insert (loads, "b:7687", GUINT_TO_POINTER (1));
  g_hash_table_insert (loads, "c:7687", GUINT_TO_POINTER (3));
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *got = bp_bolt_routing_table_select (table, BP_BOLT_ROLE_READ, BP_BOLT_SELECT_LEAST_CONNECTIONS,
                                                           in_use, loads);
      g_assert_cmpstr (got, ==, "b:7687");
    }
  g_hash_table_insert (loads, "a:7687", GUINT_TO_POINTER (1));
  {
    g_autofree char *x = bp_bolt_routing_table_select (table, BP_BOLT_ROLE_READ, BP_BOLT_SELECT_LEAST_CONNECTIONS, in_use, loads);
    g_autofree char *y = bp_bolt_routing_table_select (table, BP_BOLT_ROLE_READ, BP_BOLT_SELECT_LEAST_CONNECTIONS, in_use, loads);
    g_assert_cmpstr (x, !=, y);
  }
}

/* ---------------------------------------------------------------- */

static void
test_failure_forms (void)
{
  struct { const char *metadata; const char *message; const char *code; BpBoltErrorClass klass; } cases[] = {
    /* Neo4j ≤ 5.6 */
    { "{'code': <'Neo.ClientError.Statement.SyntaxError'>, 'message': <'Invalid input'>}",
      "Neo.ClientError.Statement.SyntaxError: Invalid input", "Neo.ClientError.Statement.SyntaxError",
      BP_BOLT_ERROR_CLASS_CLIENT },
    /* Memgraph */
    { "{'code': <'Memgraph.ClientError.MemgraphError.MemgraphError'>, 'message': <'x'>}",
      "Memgraph.ClientError.MemgraphError.MemgraphError: x", "Memgraph.ClientError.MemgraphError.MemgraphError",
      BP_BOLT_ERROR_CLASS_CLIENT },
    /* 5.7+ GQL */
    { "{'neo4j_code': <'Neo.TransientError.Transaction.DeadlockDetected'>, 'message': <'deadlock'>, "
      "'gql_status': <'50N05'>, 'description': <'error: general processing exception'>, "
      "'diagnostic_record': <{'_classification': <'TRANSIENT_ERROR'>}>}",
      "Neo.TransientError.Transaction.DeadlockDetected: deadlock (GQLSTATUS 50N05)",
      "Neo.TransientError.Transaction.DeadlockDetected", BP_BOLT_ERROR_CLASS_TRANSIENT },
    { "{'neo4j_code': <'Neo.DatabaseError.General.UnknownError'>, 'description': <'only a description'>}",
      "Neo.DatabaseError.General.UnknownError: only a description", "Neo.DatabaseError.General.UnknownError",
      BP_BOLT_ERROR_CLASS_DATABASE },
    { "@a{sv} {}", "Neo.DatabaseError.General.UnknownError: (no message)",
      "Neo.DatabaseError.General.UnknownError", BP_BOLT_ERROR_CLASS_DATABASE },
    { "{'code': <'Neo.TransientError.Transaction.Terminated'>, 'message': <'t'>}",
      "Neo.TransientError.Transaction.Terminated: t", "Neo.TransientError.Transaction.Terminated",
      BP_BOLT_ERROR_CLASS_CLIENT },
    { "{'code': <'Neo.TransientError.Transaction.LockClientStopped'>, 'message': <'t'>}",
      "Neo.TransientError.Transaction.LockClientStopped: t", "Neo.TransientError.Transaction.LockClientStopped",
      BP_BOLT_ERROR_CLASS_CLIENT },
    { "{'code': <'Neo.ClientError.Security.AuthorizationExpired'>, 'message': <'t'>}",
      "Neo.ClientError.Security.AuthorizationExpired: t", "Neo.ClientError.Security.AuthorizationExpired",
      BP_BOLT_ERROR_CLASS_TRANSIENT },
  };

  g_test_summary ("FAILURE in the 5.x, Memgraph and 5.7+ GQL forms: \"<code>: <message>\", code accessor, classes");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GVariant) md = g_variant_ref_sink (g_variant_new_parsed (cases[i].metadata));
      g_autoptr(GError) error = bp_bolt_error_new_from_failure (md);
      g_autofree char *code = bp_bolt_error_dup_code (error);

      g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
      g_assert_cmpstr (error->message, ==, cases[i].message);
      g_assert_cmpstr (code, ==, cases[i].code);
      g_assert_cmpint (bp_bolt_error_classify (error), ==, cases[i].klass);
      g_assert_true (bp_bolt_error_is_retryable (error) == (cases[i].klass == BP_BOLT_ERROR_CLASS_TRANSIENT));
    }
}

static void
test_classify_other (void)
{
  g_autoptr(GError) lost = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, BP_BOLT_CONNECTION_LOST_PREFIX ": x");
  g_autoptr(GError) unknown = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, BP_BOLT_COMMIT_UNKNOWN_PREFIX ": x");
  g_autoptr(GError) cancelled = g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED, "c");
  g_autoptr(GError) reset = g_error_new (G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "c");
  g_autoptr(GError) invalid = g_error_new (BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "Neo.ClientError.X.Y: not from a server");
  g_autoptr(GError) timeout = g_error_new (BP_ERROR, BP_ERROR_TIMEOUT, BP_BOLT_CONNECTION_LOST_PREFIX ": silent");

  g_assert_cmpint (bp_bolt_error_classify (lost), ==, BP_BOLT_ERROR_CLASS_CONNECTION_LOST);
  g_assert_true (bp_bolt_error_is_retryable (lost));
  g_assert_cmpint (bp_bolt_error_classify (unknown), ==, BP_BOLT_ERROR_CLASS_COMMIT_UNKNOWN);
  g_assert_false (bp_bolt_error_is_retryable (unknown));
  g_assert_cmpint (bp_bolt_error_classify (cancelled), ==, BP_BOLT_ERROR_CLASS_OTHER);
  g_assert_cmpint (bp_bolt_error_classify (reset), ==, BP_BOLT_ERROR_CLASS_CONNECTION_LOST);
  g_assert_cmpint (bp_bolt_error_classify (invalid), ==, BP_BOLT_ERROR_CLASS_OTHER);
  g_assert_null (bp_bolt_error_dup_code (invalid));
  g_assert_cmpint (bp_bolt_error_classify (timeout), ==, BP_BOLT_ERROR_CLASS_CONNECTION_LOST);
  g_assert_cmpint (bp_bolt_error_classify (NULL), ==, BP_BOLT_ERROR_CLASS_OTHER);
}

static void
test_uri (void)
{
  struct { const char *text; const char *host; guint16 port; BpBoltTlsMode tls; gboolean routing; } good[] = {
    { "bolt://localhost", "localhost", 7687, BP_BOLT_TLS_NONE, FALSE },
    { "bolt+s://db.example:7000", "db.example", 7000, BP_BOLT_TLS_VERIFY, FALSE },
    { "bolt+ssc://10.0.0.1:1", "10.0.0.1", 1, BP_BOLT_TLS_TRUST_ANY, FALSE },
    { "neo4j://cluster.example", "cluster.example", 7687, BP_BOLT_TLS_NONE, TRUE },
    { "neo4j+s://[::1]:7688/", "::1", 7688, BP_BOLT_TLS_VERIFY, TRUE },
    { "NEO4J+SSC://h", "h", 7687, BP_BOLT_TLS_TRUST_ANY, TRUE },
  };
  const char *bad[] = {
    "http://localhost", "bolt://", "bolt://user:pw@host", "bolt://host/db", "bolt://host?x=1",
    "neo4j://host?address=x", "bolt://host#frag", "not a uri", "bolt://host:99999",
  };

  g_test_summary ("bolt:// and neo4j:// URIs with their TLS forms; credentials, paths and stray queries refused");

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BpBoltUri) uri = bp_bolt_uri_parse (good[i].text, &error);

      g_assert_no_error (error);
      g_assert_cmpstr (uri->host, ==, good[i].host);
      g_assert_cmpuint (uri->port, ==, good[i].port);
      g_assert_cmpint (uri->tls_mode, ==, good[i].tls);
      g_assert_true (uri->routing == good[i].routing);
      g_assert_true ((uri->routing_context != NULL) == good[i].routing);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BpBoltUri) uri = bp_bolt_uri_parse (bad[i], &error);

      g_test_message ("bad: %s", bad[i]);
      g_assert_null (uri);
      g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
      g_assert_null (strstr (error->message, "pw@"));
    }

  {
    g_autoptr(GError) error = NULL;
    g_autoptr(BpBoltUri) uri = bp_bolt_uri_parse ("neo4j://h:7000?policy=eu&region=west", &error);
    const char *v;

    g_assert_no_error (error);
    g_assert_true (g_variant_lookup (uri->routing_context, "address", "&s", &v));
    g_assert_cmpstr (v, ==, "h:7000");
    g_assert_true (g_variant_lookup (uri->routing_context, "region", "&s", &v));
    g_assert_cmpstr (v, ==, "west");
  }
}

static void
test_split_address (void)
{
  struct { const char *address; const char *host; guint16 port; } good[] = {
    { "a:1", "a", 1 }, { "a", "a", 7687 }, { "[::1]:7", "::1", 7 }, { "[fe80::1]", "fe80::1", 7687 },
  };
  const char *bad[] = { ":1", "", "a:0", "a:x", "[::1", "[]:1", "[::1]x" };

  for (guint i = 0; i < G_N_ELEMENTS (good); i++)
    {
      g_autofree char *host = NULL;
      guint16 port;

      g_assert_true (bp_bolt_split_address (good[i].address, &host, &port, NULL));
      g_assert_cmpstr (host, ==, good[i].host);
      g_assert_cmpuint (port, ==, good[i].port);
    }
  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autofree char *host = NULL;
      guint16 port;
      g_autoptr(GError) error = NULL;

      g_assert_false (bp_bolt_split_address (bad[i], &host, &port, &error));
      g_assert_null (host);
      g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bolt/routing/parse", test_parse);
  g_test_add_func ("/bolt/routing/parse-errors", test_parse_errors);
  g_test_add_func ("/bolt/routing/expiry", test_expiry);
  g_test_add_func ("/bolt/routing/remove", test_remove);
  g_test_add_func ("/bolt/routing/round-robin", test_round_robin);
  g_test_add_func ("/bolt/routing/least-connections", test_least_connections);
  g_test_add_func ("/bolt/error/failure-forms", test_failure_forms);
  g_test_add_func ("/bolt/error/classify", test_classify_other);
  g_test_add_func ("/bolt/uri/parse", test_uri);
  g_test_add_func ("/bolt/uri/split-address", test_split_address);

  return g_test_run ();
}
