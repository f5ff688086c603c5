/* fuzz-bolt-connection.c: fuzz target for what a Bolt server sends
 *
 * The input is everything a "server" says: it is written into one end of a
 * socket pair (then the write side is shut down) and a BpBoltConnection
 * opened on the other end parses it: the handshake reply (4-byte version or
 * manifest v1 with VarInts), chunks, and every summary and RECORD the
 * request queue sees. When the open succeeds the client pipelines a RUN
 * with a PULL of 2, pulls all batches, BEGINs, RUNs, COMMITs and asks for a
 * ROUTE, so replies land on every kind of request. Whatever the bytes, every
 * callback must run exactly once and the connection must end DEFUNCT (the
 * server side is closed), never crash or hang. Invariants abort().
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bp-bolt-connection.h"

int LLVMFuzzerTestOneInput (const guint8 *data,
                            size_t        size);

#define CHECK(cond)                                                           \
  G_STMT_START {                                                              \
    if (!(cond))                                                              \
      {                                                                       \
        g_printerr ("fuzz-bolt-connection: invariant failed: %s (%s:%d)\n",  \
                    #cond, __FILE__, __LINE__);                               \
        abort ();                                                             \
      }                                                                       \
  } G_STMT_END

static void
store_result (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GAsyncResult **slot = user_data;

  CHECK (*slot == NULL);
  *slot = g_object_ref (result);
}

static void
wait_for (GAsyncResult **result)
{
  /* the server side is shut down: EOF ends everything */
  for (guint i = 0; *result == NULL; i++)
    {
      CHECK (i < 100000);
      g_main_context_iteration (NULL, TRUE);
    }
}

static void
check_error (const GError *error)
{
  CHECK (error != NULL);
  CHECK (error->message != NULL && g_utf8_validate (error->message, -1, NULL));
}

static void
drain_stream (BpBoltStream *stream)
{
  gboolean more = TRUE;

  for (guint n = 0; more && n < 64; n++)
    {
      g_autoptr(GAsyncResult) result = NULL;
      g_autoptr(GError) error = NULL;
      g_autoptr(GPtrArray) batch = NULL;

      bp_bolt_stream_next_batch_async (stream, NULL, store_result, &result);
      wait_for (&result);
      batch = bp_bolt_stream_next_batch_finish (stream, result, &more, &error);
      if (batch == NULL)
        {
          check_error (error);
          return;
        }
    }
}

static void
exercise (BpBoltConnection *conn)
{
  /* auto-commit RUN + PULL n=2 */
  {
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(BpBoltStream) stream = NULL;

    bp_bolt_connection_run_async (conn, "RETURN 1 AS x", NULL, NULL, 2, NULL, store_result, &result);
    wait_for (&result);
    stream = bp_bolt_connection_run_finish (conn, result, &error);
    if (stream == NULL)
      check_error (error);
    else
      drain_stream (stream);
  }
  /* explicit transaction */
  {
    g_autoptr(GAsyncResult) begun = NULL;
    g_autoptr(GAsyncResult) ran = NULL;
    g_autoptr(GAsyncResult) committed = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(BpBoltStream) stream = NULL;
    g_autofree char *bookmark = NULL;

    bp_bolt_connection_begin_async (conn, NULL, NULL, store_result, &begun);
    bp_bolt_connection_run_async (conn, "RETURN 2 AS y", NULL, NULL, -1, NULL, store_result, &ran);
    wait_for (&begun);
    if (!bp_bolt_connection_begin_finish (conn, begun, &error))
      check_error (error);
    g_clear_error (&error);
    wait_for (&ran);
    stream = bp_bolt_connection_run_finish (conn, ran, &error);
    if (stream == NULL)
      check_error (error);
    g_clear_error (&error);
    bp_bolt_connection_commit_async (conn, NULL, store_result, &committed);
    wait_for (&committed);
    if (!bp_bolt_connection_commit_finish (conn, committed, &bookmark, &error))
      check_error (error);
  }
  /* ROUTE */
  {
    g_autoptr(GAsyncResult) result = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) rt = NULL;

    bp_bolt_connection_route_async (conn, NULL, NULL, NULL, NULL, NULL, store_result, &result);
    wait_for (&result);
    rt = bp_bolt_connection_route_finish (conn, result, &error);
    if (rt == NULL)
      check_error (error);
  }
}

int
LLVMFuzzerTestOneInput (const guint8 *data,
                        size_t        size)
{
  int sv[2];
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GSocketConnection) stream = NULL;
  g_autoptr(BpBoltConnection) conn = NULL;
  g_autoptr(BpBoltAuth) auth = bp_bolt_auth_new_basic ("u", "p", NULL);
  g_autoptr(GAsyncResult) opened = NULL;
  g_autoptr(GAsyncResult) closed = NULL;
  g_autoptr(GError) error = NULL;
  BpBoltLimits limits;
  gsize written = 0;

  if (size > 65536)
    return 0;
  CHECK (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
  while (written < size)
    {
      ssize_t n = write (sv[1], data + written, size - written);
      CHECK (n > 0);
      written += (gsize) n;
    }
  shutdown (sv[1], SHUT_WR);

  socket = g_socket_new_from_fd (sv[0], &error);
  CHECK (socket != NULL);
  stream = g_socket_connection_factory_create_connection (socket);

  conn = bp_bolt_connection_new ("fuzz", 7687, BP_BOLT_TLS_NONE);
  bp_bolt_limits_init_default (&limits);
  limits.max_message_size = 16384;
  limits.max_collection_size = 256;
  limits.max_string_size = 4096;
  bp_bolt_connection_set_limits (conn, &limits);
  bp_bolt_connection_set_open_timeout (conn, 0);
  bp_bolt_connection_open_on_stream_async (conn, G_IO_STREAM (stream), auth, NULL, store_result, &opened);
  wait_for (&opened);
  if (bp_bolt_connection_open_finish (conn, opened, &error))
    exercise (conn);
  else
    check_error (error);

  bp_bolt_connection_close_async (conn, NULL, store_result, &closed);
  wait_for (&closed);
  CHECK (bp_bolt_connection_close_finish (conn, closed, NULL));
  CHECK (bp_bolt_connection_is_defunct (conn));
  close (sv[1]);
  /* let the socket's close complete */
  while (g_main_context_iteration (NULL, FALSE))
    ;
  return 0;
}
