/* test-host.c: caller tracking, per-client paths and BpCall's one reply
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>
#include <unistd.h>

#include <backplane.h>

#include "bp-host-private.h"

#include "../common/bp-test-bus.h"

typedef struct
{
  BpTestBus       *bus;
  GDBusConnection *service;  /* the daemon side */
  GDBusConnection *client;
  BpHost          *host;
  guint            reg_id;
  GPtrArray       *calls;    /* BpCall kept alive by the test */
} Fixture;

static const char test_xml[] =
  "<node><interface name='org.backplane.Test'>"
  "<annotation name='org.gtk.GDBus.DocString' value='A test interface for the host.'/>"
  "<method name='Hold'/>"
  "<method name='Drop'/>"
  "<method name='TakeFd'><arg type='h' name='fd' direction='in'/></method>"
  "</interface></node>";

static void
method_call (GDBusConnection       *connection,
             const char            *sender,
             const char            *path,
             const char            *iface,
             const char            *method,
             GVariant              *params,
             GDBusMethodInvocation *invocation,
             gpointer               user_data)
{
  Fixture *f = user_data;
  BpCall *call = bp_call_new (f->host, invocation);

  if (g_str_equal (method, "Hold"))
    g_ptr_array_add (f->calls, call);       /* answered later, or never */
  else if (g_str_equal (method, "Drop"))
    g_object_unref (call);                  /* never answered explicitly */
  else
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(GVariant) h = g_variant_get_child_value (params, 0);
      int fd = bp_call_steal_fd (call, h, &error);

      if (fd < 0)
        bp_call_return_error (call, error);
      else
        {
          close (fd);
          bp_call_return_value (call, NULL);
        }
      g_object_unref (call);
    }
}

static const GDBusInterfaceVTable vtable = { method_call, NULL, NULL, { 0 } };

static void
setup (Fixture       *f,
       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GDBusNodeInfo) info = g_dbus_node_info_new_for_xml (test_xml, &error);

  g_assert_no_error (error);
  f->bus = bp_test_bus_up ();
  f->service = g_dbus_connection_new_for_address_sync (bp_test_bus_get_address (f->bus),
                                                       G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                       G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                       NULL, NULL, &error);
  g_assert_no_error (error);
  f->client = g_dbus_connection_new_for_address_sync (bp_test_bus_get_address (f->bus),
                                                      G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                      G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                      NULL, NULL, &error);
  g_assert_no_error (error);
  f->host = bp_host_new (f->service, NULL);
  /* The host's NameOwnerChanged match is added asynchronously: one round
   * trip on the same connection makes sure the bus has it before a
   * client goes away. */
  {
    g_autoptr(GVariant) id = g_dbus_connection_call_sync (f->service, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                          "org.freedesktop.DBus", "GetId", NULL, NULL,
                                                          G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
    g_assert_nonnull (id);
  }
  g_assert_true (bp_host_add_interface_xml (f->host, test_xml, &error));
  f->reg_id = g_dbus_connection_register_object (f->service, "/t", info->interfaces[0], &vtable, f, NULL, &error);
  g_assert_no_error (error);
  bp_host_note_exported (f->host, "/t", "org.backplane.Test");
  f->calls = g_ptr_array_new_with_free_func (g_object_unref);
}

static void
teardown (Fixture       *f,
          gconstpointer  data)
{
  g_ptr_array_unref (f->calls);
  g_dbus_connection_unregister_object (f->service, f->reg_id);
  g_assert_finalize_object (f->host);
  if (f->client != NULL)
    g_dbus_connection_close_sync (f->client, NULL, NULL);
  g_clear_object (&f->client);
  g_dbus_connection_close_sync (f->service, NULL, NULL);
  g_clear_object (&f->service);
  bp_test_bus_down (g_steal_pointer (&f->bus));
}

typedef struct
{
  gboolean  done;
  GError   *error;
} Reply;

static void
reply_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Reply *r = user_data;
  g_autoptr(GVariant) v = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &r->error);

  r->done = TRUE;
}

static void
call_async (Fixture    *f,
            const char *method,
            Reply      *r)
{
  g_dbus_connection_call (f->client, g_dbus_connection_get_unique_name (f->service), "/t",
                          "org.backplane.Test", method, NULL, NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL,
                          reply_cb, r);
}

static void
iterate_until (gboolean *flag)
{
  while (!*flag)
    g_main_context_iteration (NULL, TRUE);
}

typedef struct
{
  gboolean  done;
  GVariant *reply;
  GError   *error;
} SyncReply;

static void
sync_reply_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  SyncReply *r = user_data;

  r->reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &r->error);
  r->done = TRUE;
}

/* The service runs in this thread: call asynchronously and iterate. */
static GVariant *
call_iterate (Fixture     *f,
              const char  *iface,
              const char  *method,
              GVariant    *params,
              GError     **error)
{
  SyncReply r = { 0 };

  g_dbus_connection_call (f->client, g_dbus_connection_get_unique_name (f->service), "/t",
                          iface, method, params, NULL, G_DBUS_CALL_FLAGS_NONE, 10000, NULL, sync_reply_cb, &r);
  iterate_until (&r.done);
  if (r.error != NULL)
    g_propagate_error (error, r.error);
  return r.reply;
}

static void
test_call_without_reply_fails (Fixture       *f,
                               gconstpointer  data)
{
  Reply r = { 0 };
  g_autofree char *remote = NULL;

  call_async (f, "Drop", &r);
  iterate_until (&r.done);
  remote = g_dbus_error_get_remote_error (r.error);
  g_assert_cmpstr (remote, ==, "org.backplane.Backplane1.Error.Failed");
  g_clear_error (&r.error);
  g_assert_cmpuint (bp_host_get_n_calls (f->host), ==, 0);
}

static void
cancelled_cb (GCancellable *c,
              gpointer      data)
{
  *(gboolean *) data = TRUE;
}

static void
test_vanished_caller_cancels (Fixture       *f,
                              gconstpointer  data)
{
  Reply r = { 0 };
  gboolean cancelled = FALSE;
  BpCall *call;

  call_async (f, "Hold", &r);
  while (f->calls->len == 0)
    g_main_context_iteration (NULL, TRUE);
  call = g_ptr_array_index (f->calls, 0);
  g_assert_cmpuint (bp_host_get_n_calls (f->host), ==, 1);
  g_assert_cmpuint (bp_host_get_n_watches (f->host), ==, 1);
  g_assert_cmpstr (bp_call_get_sender (call), ==, g_dbus_connection_get_unique_name (f->client));
  g_cancellable_connect (bp_call_get_cancellable (call), G_CALLBACK (cancelled_cb), &cancelled, NULL);

  /* The client goes away: the one NameOwnerChanged match cancels its call. */
  g_dbus_connection_close_sync (f->client, NULL, NULL);
  g_clear_object (&f->client);
  iterate_until (&cancelled);
  g_assert_cmpuint (bp_host_get_n_watches (f->host), ==, 0);

  /* Answering a vanished caller is harmless and ends the call. */
  bp_call_return_new_error (call, BP_ERROR_CANCELLED, "gone");
  g_assert_true (bp_call_is_answered (call));
  g_assert_cmpuint (bp_host_get_n_calls (f->host), ==, 0);
}

static void
test_shutdown_cancels (Fixture       *f,
                       gconstpointer  data)
{
  Reply r = { 0 };
  g_autofree char *remote = NULL;
  BpCall *call;

  call_async (f, "Hold", &r);
  while (f->calls->len == 0)
    g_main_context_iteration (NULL, TRUE);
  call = g_ptr_array_index (f->calls, 0);
  bp_host_shutdown (f->host);
  g_assert_true (g_cancellable_is_cancelled (bp_call_get_cancellable (call)));
  bp_call_return_new_error (call, BP_ERROR_CANCELLED, "shutting down");
  iterate_until (&r.done);
  remote = g_dbus_error_get_remote_error (r.error);
  g_assert_cmpstr (remote, ==, "org.backplane.Backplane1.Error.Cancelled");
  g_clear_error (&r.error);
}

static void
vanished_count_cb (const char *name,
                   gpointer    data)
{
  (*(guint *) data)++;
}

static void
test_watches (Fixture       *f,
              gconstpointer  data)
{
  const char *client_name = g_dbus_connection_get_unique_name (f->client);
  guint fired = 0, other = 0;
  guint a, b;

  a = bp_host_watch_owner (f->host, client_name, vanished_count_cb, &fired, NULL);
  b = bp_host_watch_owner (f->host, client_name, vanished_count_cb, &other, NULL);
  bp_host_watch_owner (f->host, ":9.999", vanished_count_cb, &other, NULL);
  g_assert_cmpuint (a, !=, b);
  bp_host_unwatch_owner (f->host, b);
  bp_host_unwatch_owner (f->host, b); /* twice: harmless */
  g_assert_cmpuint (bp_host_get_n_watches (f->host), ==, 2);
  g_dbus_connection_close_sync (f->client, NULL, NULL);
  g_clear_object (&f->client);
  while (fired == 0)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (fired, ==, 1);
  g_assert_cmpuint (other, ==, 0);
  g_assert_cmpuint (bp_host_get_n_watches (f->host), ==, 1);
}

/* Ids wrap around after 2^32 watches: a new watch must never take the id
 * of one that is still live (that would free it while it is listed). */
static void
test_watch_id_wraps (Fixture       *f,
                     gconstpointer  data)
{
  const char *client_name = g_dbus_connection_get_unique_name (f->client);
  guint fired_a = 0, fired_b = 0, fired_c = 0;
  guint a, b, c;

  bp_host_set_next_watch_id (f->host, G_MAXUINT);
  a = bp_host_watch_owner (f->host, client_name, vanished_count_cb, &fired_a, NULL);
  g_assert_cmpuint (a, ==, G_MAXUINT);
  b = bp_host_watch_owner (f->host, client_name, vanished_count_cb, &fired_b, NULL);
  g_assert_cmpuint (b, ==, 1);   /* 0 is never an id */

  /* wrapped all the way round: a and b are still live, so c skips them */
  bp_host_set_next_watch_id (f->host, G_MAXUINT);
  c = bp_host_watch_owner (f->host, client_name, vanished_count_cb, &fired_c, NULL);
  g_assert_cmpuint (c, !=, a);
  g_assert_cmpuint (c, !=, b);
  g_assert_cmpuint (c, ==, 2);
  g_assert_cmpuint (bp_host_get_n_watches (f->host), ==, 3);

  g_dbus_connection_close_sync (f->client, NULL, NULL);
  g_clear_object (&f->client);
  while (fired_a + fired_b + fired_c < 3)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (fired_a, ==, 1);
  g_assert_cmpuint (fired_b, ==, 1);
  g_assert_cmpuint (fired_c, ==, 1);
  g_assert_cmpuint (bp_host_get_n_watches (f->host), ==, 0);
}

static void
test_paths_and_introspection (Fixture       *f,
                              gconstpointer  data)
{
  g_autofree char *p1 = bp_host_make_client_path (f->host, ":1.42", "process");
  g_autofree char *p2 = bp_host_make_client_path (f->host, ":1.42", "process");
  g_autofree char *xml = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  const char *remote_xml;

  g_assert_true (g_variant_is_object_path (p1));
  g_assert_true (g_str_has_prefix (p1, "/org/backplane/Backplane1/client/"));
  g_assert_cmpstr (p1, !=, p2);

  xml = bp_host_introspect (f->host, "/");
  g_assert_nonnull (strstr (xml, "<node name=\"t\"/>"));
  reply = call_iterate (f, "org.freedesktop.DBus.Introspectable", "Introspect", NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(&s)", &remote_xml);
  g_assert_nonnull (strstr (remote_xml, "A test interface for the host."));
}

static void
test_bad_fd_handle (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;
  g_autofree char *remote = NULL;

  /* A handle index with no fd passed along. */
  reply = call_iterate (f, "org.backplane.Test", "TakeFd", g_variant_new ("(h)", 3), &error);
  g_assert_nonnull (error);
  remote = g_dbus_error_get_remote_error (error);
  g_assert_cmpstr (remote, ==, "org.backplane.Backplane1.Error.InvalidArgument");
}

static void
test_error_mapping (void)
{
  g_autoptr(GError) io = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "slow");
  g_autoptr(GError) mapped = bp_error_normalize (io);
  g_autoptr(GError) other = g_error_new_literal (G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_PARSE, "bad");
  g_autoptr(GError) mapped2 = bp_error_normalize (other);
  g_autoptr(GError) ra = g_error_new_literal (BP_ERROR, BP_ERROR_CIRCUIT_OPEN, "open");
  g_autofree char *name = NULL;

  g_assert_error (mapped, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_cmpstr (mapped->message, ==, "slow");
  g_assert_error (mapped2, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  bp_error_set_retry_after (&ra, 1500);
  g_assert_cmpint (bp_error_get_retry_after (ra), ==, 1500);
  name = g_dbus_error_encode_gerror (ra);
  g_assert_cmpstr (name, ==, "org.backplane.Backplane1.Error.CircuitOpen");
  g_assert_cmpstr (bp_error_code_to_nick (BP_ERROR_LIMIT_EXCEEDED), ==, "LimitExceeded");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/error/mapping", test_error_mapping);
  g_test_add ("/host/call/no-reply-fails", Fixture, NULL, setup, test_call_without_reply_fails, teardown);
  g_test_add ("/host/call/vanished-caller-cancels", Fixture, NULL, setup, test_vanished_caller_cancels, teardown);
  g_test_add ("/host/call/shutdown-cancels", Fixture, NULL, setup, test_shutdown_cancels, teardown);
  g_test_add ("/host/watches", Fixture, NULL, setup, test_watches, teardown);
  g_test_add ("/host/watches/id-wraps", Fixture, NULL, setup, test_watch_id_wraps, teardown);
  g_test_add ("/host/paths-and-introspection", Fixture, NULL, setup, test_paths_and_introspection, teardown);
  g_test_add ("/host/call/bad-fd-handle", Fixture, NULL, setup, test_bad_fd_handle, teardown);
  return g_test_run ();
}
