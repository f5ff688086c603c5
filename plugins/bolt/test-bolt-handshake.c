/* test-bolt-handshake.c: the handshake, byte for byte, against a scripted peer
 *
 * A tiny peer in a thread (blocking I/O is fine in a test thread) accepts one
 * connection, records the 20 handshake bytes, sends a scripted reply, reads
 * the client's manifest choice and its HELLO/LOGON and answers SUCCESS.
 * Scenarios from dbclients.md §5.2 (1–4) and handshake.adoc.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-bolt-connection.h"
#include "bp-bolt-chunker.h"
#include "bp-bolt-values.h"

typedef struct
{
  GSocketListener *listener;
  guint16          port;
  GThread         *thread;
  GCancellable    *cancellable;
  gint             got_proposals;   /* (atomic) */

  /* script */
  GBytes          *reply;          /* handshake reply */
  gboolean         read_pick;      /* read the client's manifest choice */
  guint            n_messages;     /* messages answered with SUCCESS */
  gboolean         silent;         /* never answer the handshake */

  /* what the client sent */
  guint8           proposals[20];
  guint8           pick[16];
  gsize            pick_len;
  GPtrArray       *messages;       /* (element-type GBytes) */
} Peer;

static GCancellable *peer_cancellable;   /* the running peer's */

static gboolean
read_exact (GInputStream *in,
            guint8       *buf,
            gsize         n)
{
  gsize got = 0;

  return g_input_stream_read_all (in, buf, n, &got, peer_cancellable, NULL) && got == n;
}

static GBytes *
read_message (GInputStream *in)
{
  g_autoptr(GByteArray) msg = g_byte_array_new ();

  while (TRUE)
    {
      guint8 h[2];
      gsize size;
      g_autofree guint8 *chunk = NULL;

      if (!read_exact (in, h, 2))
        return NULL;
      size = (h[0] << 8) | h[1];
      if (size == 0)
        {
          if (msg->len == 0)
            continue;
          return g_byte_array_free_to_bytes (g_steal_pointer (&msg));
        }
      chunk = g_malloc (size);
      if (!read_exact (in, chunk, size))
        return NULL;
      g_byte_array_append (msg, chunk, size);
    }
}

static gpointer
peer_thread (gpointer data)
{
  Peer *peer = data;
  g_autoptr(GSocketConnection) conn = NULL;
  GInputStream *in;
  GOutputStream *out;

  conn = g_socket_listener_accept (peer->listener, NULL, peer->cancellable, NULL);
  if (conn == NULL)
    return NULL;
  in = g_io_stream_get_input_stream (G_IO_STREAM (conn));
  out = g_io_stream_get_output_stream (G_IO_STREAM (conn));

  if (!read_exact (in, peer->proposals, 20))
    return NULL;
  g_atomic_int_set (&peer->got_proposals, 1);
  if (peer->silent)
    {
      guint8 b;
      read_exact (in, &b, 1);   /* until the client gives up */
      return NULL;
    }
  g_output_stream_write_all (out, g_bytes_get_data (peer->reply, NULL), g_bytes_get_size (peer->reply),
                             NULL, NULL, NULL);
  if (peer->read_pick)
    {
      if (!read_exact (in, peer->pick, 4))
        return NULL;
      peer->pick_len = 4;
      do
        {
          if (!read_exact (in, peer->pick + peer->pick_len, 1))
            return NULL;
        }
      while (peer->pick[peer->pick_len++] & 0x80 && peer->pick_len < sizeof peer->pick);
    }
  for (guint i = 0; i < peer->n_messages; i++)
    {
      g_autoptr(GBytes) msg = read_message (in);
      g_autoptr(GByteArray) success = g_byte_array_new ();
      g_autoptr(GByteArray) chunked = g_byte_array_new ();

      if (msg == NULL)
        return NULL;
      g_ptr_array_add (peer->messages, g_bytes_ref (msg));
      bp_bolt_pack_struct_header (success, 1, 0x70);
      bp_bolt_pack_map_header (success, 2);
      bp_bolt_pack_string (success, "server", -1);
      bp_bolt_pack_string (success, "Peer/1.0", -1);
      bp_bolt_pack_string (success, "connection_id", -1);
      bp_bolt_pack_string (success, "peer-1", -1);
      bp_bolt_chunk_write (chunked, success->data, success->len);
      g_output_stream_write_all (out, chunked->data, chunked->len, NULL, NULL, NULL);
    }
  /* wait for the client to close */
  {
    guint8 b[64];
    while (g_input_stream_read (in, b, sizeof b, peer->cancellable, NULL) > 0)
      ;
  }
  return NULL;
}

static Peer *
peer_new (const char *reply_hex,
          gboolean    read_pick,
          guint       n_messages)
{
  Peer *peer = g_new0 (Peer, 1);
  g_autoptr(GByteArray) reply = g_byte_array_new ();
  g_autoptr(GError) error = NULL;

  for (const char *p = reply_hex; p && *p;)
    {
      guint8 b;
      if (*p == ' ')
        {
          p++;
          continue;
        }
      b = (guint8) (g_ascii_xdigit_value (p[0]) << 4 | g_ascii_xdigit_value (p[1]));
      g_byte_array_append (reply, &b, 1);
      p += 2;
    }
  peer->reply = g_byte_array_free_to_bytes (g_steal_pointer (&reply));
  peer->read_pick = read_pick;
  peer->n_messages = n_messages;
  peer->messages = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  peer->cancellable = g_cancellable_new ();
  peer_cancellable = peer->cancellable;
  peer->listener = g_socket_listener_new ();
  peer->port = g_socket_listener_add_any_inet_port (peer->listener, NULL, &error);
  g_assert_no_error (error);
  peer->thread = g_thread_new ("peer", peer_thread, peer);
  return peer;
}

static void
peer_free (Peer *peer)
{
  g_cancellable_cancel (peer->cancellable);
  g_socket_listener_close (peer->listener);
  g_thread_join (peer->thread);
  g_object_unref (peer->cancellable);
  g_object_unref (peer->listener);
  g_bytes_unref (peer->reply);
  g_ptr_array_unref (peer->messages);
  g_free (peer);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Peer, peer_free)

/* ---------------------------------------------------------------- */

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  *(GAsyncResult **) user_data = g_object_ref (result);
}

static gboolean
abort_test (gpointer data)
{
  g_error ("test timed out");
  return G_SOURCE_REMOVE;
}

static void
wait_for (GAsyncResult **result)
{
  guint timeout = g_timeout_add_seconds (30, abort_test, NULL);

  while (*result == NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (timeout);
}

/* The peer thread cannot wake our main context: poll. */
static void
wait_for_proposals (Peer *peer)
{
  for (guint i = 0; !g_atomic_int_get (&peer->got_proposals); i++)
    {
      g_assert_cmpuint (i, <, 30000);
      if (!g_main_context_iteration (NULL, FALSE))
        g_usleep (1000);
    }
}

static gboolean
open_connection (BpBoltConnection *conn,
                 GError          **error)
{
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(BpBoltAuth) auth = bp_bolt_auth_new_basic ("neo4j", "s3cret-pw", NULL);

  bp_bolt_connection_open_async (conn, auth, NULL, store_result, &result);
  wait_for (&result);
  return bp_bolt_connection_open_finish (conn, result, error);
}

static void
close_connection (BpBoltConnection *conn)
{
  g_autoptr(GAsyncResult) result = NULL;

  bp_bolt_connection_close_async (conn, NULL, store_result, &result);
  wait_for (&result);
  g_assert_true (bp_bolt_connection_close_finish (conn, result, NULL));
}

static void
assert_hex (const guint8 *data,
            gsize         len,
            const char   *want)
{
  g_autoptr(GString) got = g_string_new (NULL);

  for (gsize i = 0; i < len; i++)
    g_string_append_printf (got, "%s%02X", i ? " " : "", data[i]);
  g_assert_cmpstr (got->str, ==, want);
}

/* HELLO/LOGON field dictionary */
static GVariant *
message_fields (GBytes *msg,
                guint8  want_tag)
{
  gsize len;
  const guint8 *d = g_bytes_get_data (msg, &len);
  g_autoptr(GError) error = NULL;
  GVariant *v;

  g_assert_cmpuint (len, >, 2);
  g_assert_cmpuint (d[0], ==, 0xB1);
  g_assert_cmpuint (d[1], ==, want_tag);
  v = bp_bolt_decode_variant (d + 2, len - 2, NULL, &error);
  g_assert_no_error (error);
  return v;
}

static void
test_proposals_and_manifest (void)
{
  /* scenario 2: manifest v1, 2 ranges (5.8–5.6, 4.4–4.0), no capabilities */
  g_autoptr(Peer) peer = peer_new ("00 00 01 FF 02 00 02 08 05 00 04 04 04 00", TRUE, 2);
  g_autoptr(BpBoltConnection) conn = bp_bolt_connection_new ("127.0.0.1", peer->port, BP_BOLT_TLS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) hello = NULL;
  g_autoptr(GVariant) logon = NULL;
  g_autoptr(GVariant) agent = NULL;
  const char *s;

  g_test_summary ("the client offers manifest v1, 5.8..5.0, 4.4..4.3; answers a manifest with 5.8 and "
                  "no capabilities; sends HELLO (with bolt_agent) and LOGON");

  g_assert_true (open_connection (conn, &error));
  g_assert_no_error (error);
  assert_hex (peer->proposals, 20, "60 60 B0 17 00 00 01 FF 00 08 08 05 00 01 04 04 00 00 00 00");
  assert_hex (peer->pick, peer->pick_len, "00 00 08 05 00");
  g_assert_cmpuint (bp_bolt_connection_get_protocol_version (conn), ==, BP_BOLT_VERSION (5, 8));
  g_assert_true (bp_bolt_connection_get_used_manifest (conn));
  g_assert_cmpstr (bp_bolt_connection_get_server_agent (conn), ==, "Peer/1.0");
  g_assert_cmpstr (bp_bolt_connection_get_connection_id (conn), ==, "peer-1");
  g_assert_cmpint (bp_bolt_connection_get_state (conn), ==, BP_BOLT_STATE_READY);

  g_assert_cmpuint (peer->messages->len, ==, 2);
  hello = message_fields (g_ptr_array_index (peer->messages, 0), 0x01);
  g_assert_true (g_variant_lookup (hello, "user_agent", "&s", &s));
  g_assert_true (g_str_has_prefix (s, "backplane/"));
  g_assert_false (g_variant_lookup (hello, "credentials", "&s", &s));
  g_assert_false (g_variant_lookup (hello, "routing", "*", NULL));
  agent = g_variant_lookup_value (hello, "bolt_agent", G_VARIANT_TYPE_VARDICT);
  g_assert_nonnull (agent);
  g_assert_true (g_variant_lookup (agent, "product", "&s", &s));
  g_assert_true (g_variant_lookup (agent, "language", "&s", &s));
  g_assert_cmpstr (s, ==, "C");

  logon = message_fields (g_ptr_array_index (peer->messages, 1), 0x6A);
  g_assert_true (g_variant_lookup (logon, "scheme", "&s", &s));
  g_assert_cmpstr (s, ==, "basic");
  g_assert_true (g_variant_lookup (logon, "principal", "&s", &s));
  g_assert_cmpstr (s, ==, "neo4j");
  g_assert_true (g_variant_lookup (logon, "credentials", "&s", &s));
  g_assert_cmpstr (s, ==, "s3cret-pw");

  close_connection (conn);
  g_assert_true (bp_bolt_connection_is_defunct (conn));
}

static void
test_manifest_future (void)
{
  /* 6.0, then 5.8–5.6; capabilities FF 82 71 (multi-byte VarInt) */
  g_autoptr(Peer) peer = peer_new ("00 00 01 FF 02 00 00 00 06 00 02 08 05 FF 82 71", TRUE, 2);
  g_autoptr(BpBoltConnection) conn = bp_bolt_connection_new ("127.0.0.1", peer->port, BP_BOLT_TLS_NONE);
  g_autoptr(GError) error = NULL;

  g_test_summary ("a manifest listing 6.0 first and capabilities makes the client pick 5.8 and select none");

  g_assert_true (open_connection (conn, &error));
  g_assert_no_error (error);
  assert_hex (peer->pick, peer->pick_len, "00 00 08 05 00");
  g_assert_cmpuint (bp_bolt_connection_get_protocol_version (conn), ==, BP_BOLT_VERSION (5, 8));
  close_connection (conn);
}

static void
test_manifest_nothing_usable (void)
{
  g_autoptr(Peer) peer = peer_new ("00 00 01 FF 01 00 00 00 06 00", FALSE, 0);
  g_autoptr(BpBoltConnection) conn = bp_bolt_connection_new ("127.0.0.1", peer->port, BP_BOLT_TLS_NONE);
  g_autoptr(GError) error = NULL;

  g_assert_false (open_connection (conn, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
  g_assert_nonnull (strstr (error->message, "no protocol version"));
  g_assert_true (bp_bolt_connection_is_defunct (conn));
}

static void
test_legacy_reply (void)
{
  /* scenario 3: a plain 4-byte reply to a manifest offer */
  g_autoptr(Peer) peer = peer_new ("00 00 04 05", FALSE, 2);
  g_autoptr(BpBoltConnection) conn = bp_bolt_connection_new ("127.0.0.1", peer->port, BP_BOLT_TLS_NONE);
  g_autoptr(GError) error = NULL;

  g_test_summary ("a plain 00 00 04 05 reply to the manifest offer gives a 5.4 session without error");

  g_assert_true (open_connection (conn, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (bp_bolt_connection_get_protocol_version (conn), ==, BP_BOLT_VERSION (5, 4));
  g_assert_false (bp_bolt_connection_get_used_manifest (conn));
  close_connection (conn);
}

static void
test_memgraph_52 (void)
{
  /* scenario 4: a server that only knows 5.2 */
  g_autoptr(Peer) peer = peer_new ("00 00 02 05", FALSE, 2);
  g_autoptr(BpBoltConnection) conn = bp_bolt_connection_new ("127.0.0.1", peer->port, BP_BOLT_TLS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) hello = NULL;
  g_autoptr(GVariant) logon = NULL;

  g_test_summary ("Bolt 5.2: HELLO without credentials nor bolt_agent, then LOGON with them");

  g_assert_true (open_connection (conn, &error));
  g_assert_cmpuint (bp_bolt_connection_get_protocol_version (conn), ==, BP_BOLT_VERSION (5, 2));
  hello = message_fields (g_ptr_array_index (peer->messages, 0), 0x01);
  g_assert_false (g_variant_lookup (hello, "credentials", "*", NULL));
  g_assert_false (g_variant_lookup (hello, "scheme", "*", NULL));
  g_assert_false (g_variant_lookup (hello, "bolt_agent", "*", NULL));
  logon = message_fields (g_ptr_array_index (peer->messages, 1), 0x6A);
  g_assert_true (g_variant_lookup (logon, "credentials", "*", NULL));
  close_connection (conn);
}

static void
test_v44 (void)
{
  g_autoptr(Peer) peer = peer_new ("00 00 04 04", FALSE, 1);
  g_autoptr(BpBoltConnection) conn = bp_bolt_connection_new ("127.0.0.1", peer->port, BP_BOLT_TLS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) hello = NULL;
  g_autoptr(GVariant) patch = NULL;
  const char *s;

  g_test_summary ("Bolt 4.4: one HELLO carrying the credentials and patch_bolt [\"utc\"], no LOGON");

  g_assert_true (open_connection (conn, &error));
  g_assert_cmpuint (bp_bolt_connection_get_protocol_version (conn), ==, BP_BOLT_VERSION (4, 4));
  g_assert_cmpuint (peer->messages->len, ==, 1);
  hello = message_fields (g_ptr_array_index (peer->messages, 0), 0x01);
  g_assert_true (g_variant_lookup (hello, "scheme", "&s", &s));
  g_assert_cmpstr (s, ==, "basic");
  g_assert_true (g_variant_lookup (hello, "credentials", "&s", &s));
  patch = g_variant_lookup_value (hello, "patch_bolt", G_VARIANT_TYPE ("av"));
  g_assert_nonnull (patch);
  close_connection (conn);
}

static void
test_max_version (void)
{
  g_autoptr(Peer) peer = peer_new ("00 00 04 04", FALSE, 1);
  g_autoptr(BpBoltConnection) conn = bp_bolt_connection_new ("127.0.0.1", peer->port, BP_BOLT_TLS_NONE);
  g_autoptr(GError) error = NULL;

  bp_bolt_connection_set_max_version (conn, BP_BOLT_VERSION (4, 4));
  g_assert_true (open_connection (conn, &error));
  assert_hex (peer->proposals, 20, "60 60 B0 17 00 01 04 04 00 00 00 00 00 00 00 00 00 00 00 00");
  close_connection (conn);
}

static void
test_routing_context (void)
{
  g_autoptr(Peer) peer = peer_new ("00 00 08 05", FALSE, 2);
  g_autoptr(BpBoltConnection) conn = bp_bolt_connection_new ("127.0.0.1", peer->port, BP_BOLT_TLS_NONE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) hello = NULL;
  g_autoptr(GVariant) routing = NULL;
  const char *s;

  bp_bolt_connection_set_routing_context (conn, g_variant_new_parsed ("{'address': 'db.example:7687', 'region': 'eu'}"));
  g_assert_true (open_connection (conn, &error));
  hello = message_fields (g_ptr_array_index (peer->messages, 0), 0x01);
  routing = g_variant_lookup_value (hello, "routing", G_VARIANT_TYPE_VARDICT);
  g_assert_nonnull (routing);
  g_assert_true (g_variant_lookup (routing, "address", "&s", &s));
  g_assert_cmpstr (s, ==, "db.example:7687");
  close_connection (conn);
}

typedef struct
{
  const char *name;
  const char *reply;
  int         code;
} RefusalCase;

static void
test_refusals (void)
{
  static const RefusalCase cases[] = {
    { "zero", "00 00 00 00", BP_ERROR_BACKEND },
    { "not-offered-3.0", "00 00 00 03", BP_ERROR_UNAVAILABLE },
    { "not-offered-5.9", "00 00 09 05", BP_ERROR_UNAVAILABLE },
    { "range-in-reply", "00 02 08 05", BP_ERROR_UNAVAILABLE },
    { "http", "48 54 54 50 2F 31 2E 31", BP_ERROR_UNAVAILABLE },
  };

  g_test_summary ("a 00 00 00 00 reply, a version not offered or an HTTP reply fail the open and close the socket");

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(Peer) peer = peer_new (cases[i].reply, FALSE, 0);
      g_autoptr(BpBoltConnection) conn = bp_bolt_connection_new ("127.0.0.1", peer->port, BP_BOLT_TLS_NONE);
      g_autoptr(GError) error = NULL;

      g_test_message ("case %s", cases[i].name);
      g_assert_false (open_connection (conn, &error));
      g_assert_error (error, BP_ERROR, cases[i].code);
      g_assert_true (bp_bolt_connection_is_defunct (conn));
      g_assert_null (strstr (error->message, "s3cret"));
    }
}

static void
test_open_timeout (void)
{
  g_autoptr(Peer) peer = peer_new ("", FALSE, 0);
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 1);
  g_autoptr(BpBoltConnection) conn = NULL;
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(BpBoltAuth) auth = bp_bolt_auth_new_none ();
  g_autoptr(GError) error = NULL;

  g_test_summary ("a server that never answers the handshake: the open times out on the connection's clock");

  peer->silent = TRUE;
  conn = bp_bolt_connection_new ("127.0.0.1", peer->port, BP_BOLT_TLS_NONE);
  bp_bolt_connection_set_clock (conn, clock);
  bp_bolt_connection_set_open_timeout (conn, 5000);
  bp_bolt_connection_open_async (conn, auth, NULL, store_result, &result);
  /* let the connect and the handshake write happen, then move time */
  wait_for_proposals (peer);
  g_assert_null (result);
  bp_clock_advance (clock, 4999 * 1000);
  g_main_context_iteration (NULL, FALSE);
  g_assert_null (result);
  bp_clock_advance (clock, 1000);
  wait_for (&result);
  g_assert_false (bp_bolt_connection_open_finish (conn, result, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_true (bp_bolt_connection_is_defunct (conn));
}

static void
test_connect_refused (void)
{
  g_autoptr(GSocketListener) listener = g_socket_listener_new ();
  guint16 port = g_socket_listener_add_any_inet_port (listener, NULL, NULL);
  g_autoptr(BpBoltConnection) conn = NULL;
  g_autoptr(GError) error = NULL;

  g_socket_listener_close (listener);
  conn = bp_bolt_connection_new ("127.0.0.1", port, BP_BOLT_TLS_NONE);
  g_assert_false (open_connection (conn, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_cmpint (bp_bolt_error_classify (error), ==, BP_BOLT_ERROR_CLASS_CONNECTION_LOST);
}

static void
test_cancel_open (void)
{
  g_autoptr(Peer) peer = peer_new ("", FALSE, 0);
  g_autoptr(BpBoltConnection) conn = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(BpBoltAuth) auth = bp_bolt_auth_new_none ();
  g_autoptr(GError) error = NULL;

  peer->silent = TRUE;
  conn = bp_bolt_connection_new ("127.0.0.1", peer->port, BP_BOLT_TLS_NONE);
  bp_bolt_connection_open_async (conn, auth, cancellable, store_result, &result);
  wait_for_proposals (peer);
  g_cancellable_cancel (cancellable);
  wait_for (&result);
  g_assert_false (bp_bolt_connection_open_finish (conn, result, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/bolt/handshake/proposals-and-manifest", test_proposals_and_manifest);
  g_test_add_func ("/bolt/handshake/manifest-future-versions", test_manifest_future);
  g_test_add_func ("/bolt/handshake/manifest-nothing-usable", test_manifest_nothing_usable);
  g_test_add_func ("/bolt/handshake/legacy-reply", test_legacy_reply);
  g_test_add_func ("/bolt/handshake/memgraph-5.2", test_memgraph_52);
  g_test_add_func ("/bolt/handshake/4.4", test_v44);
  g_test_add_func ("/bolt/handshake/max-version", test_max_version);
  g_test_add_func ("/bolt/handshake/routing-context", test_routing_context);
  g_test_add_func ("/bolt/handshake/refusals", test_refusals);
  g_test_add_func ("/bolt/handshake/open-timeout", test_open_timeout);
  g_test_add_func ("/bolt/handshake/connect-refused", test_connect_refused);
  g_test_add_func ("/bolt/handshake/cancel", test_cancel_open);

  return g_test_run ();
}
