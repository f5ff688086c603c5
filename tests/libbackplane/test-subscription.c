/* test-subscription.c: batching, unicast, owner-only Close, owner vanish, overflow
 *
 * A private bus (tests/common/bp-test-bus.h) with three connections: the service (BpHost on
 * a manual BpClock), the owner of the subscription and another client.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include <backplane.h>

#include "../common/bp-test-bus.h"

#define GUARD_SECONDS 90
#define IFACE BP_SUBSCRIPTION_INTERFACE

typedef struct
{
  BpTestBus       *bus;
  GDBusConnection *service;
  GDBusConnection *owner;
  GDBusConnection *other;
  BpClock         *clock;
  BpHost          *host;
  guint            base_watches;
  guint            base_open;

  /* What the owner received. */
  guint            owner_events_id;
  guint            owner_props_id;
  guint            n_signals;
  GPtrArray       *events;        /* (element-type GVariant) a{sv} */
  GArray          *batch_bytes;   /* (element-type gsize) per signal */
  gint64           dropped_seen;  /* last Dropped in PropertiesChanged, -1 none */

  /* What the other client received (it subscribes to everything). */
  guint            other_events_id;
  guint            other_props_id;
  guint            other_n_signals;
} Fixture;

static gboolean
guard_cb (gpointer data)
{
  g_error ("%s: gave up waiting after %d s", (const char *) data, GUARD_SECONDS);
  return G_SOURCE_REMOVE;
}

/* Waits on events; the guard only turns a hang into a failure. */
static void
run_until (gboolean   *flag,
           const char *what)
{
  guint guard = g_timeout_add_seconds (GUARD_SECONDS, guard_cb, (gpointer) what);

  while (!*flag)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
}

static void
drain_context (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* A round trip to the service, answered by its GDBus worker thread: every
 * signal the service sent to @c before it is then queued on our context. */
static void
sync_with_service (Fixture         *f,
                   GDBusConnection *c)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) reply = NULL;

  drain_context ();
  reply = g_dbus_connection_call_sync (c, g_dbus_connection_get_unique_name (f->service), "/",
                                       "org.freedesktop.DBus.Peer", "Ping", NULL, NULL,
                                       G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
  g_assert_no_error (error);
  drain_context ();
}

static GDBusConnection *
connect_bus (Fixture *f)
{
  g_autoptr(GError) error = NULL;
  GDBusConnection *c;

  c = g_dbus_connection_new_for_address_sync (bp_test_bus_get_address (f->bus),
                                              G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                              G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                              NULL, NULL, &error);
  g_assert_no_error (error);
  return c;
}

static void
owner_events_cb (GDBusConnection *connection,
                 const char      *sender,
                 const char      *path,
                 const char      *iface,
                 const char      *signal,
                 GVariant        *params,
                 gpointer         user_data)
{
  Fixture *f = user_data;
  g_autoptr(GVariant) batch = NULL;
  GVariantIter iter;
  GVariant *event;
  gsize bytes = 0;

  g_assert_true (g_variant_is_of_type (params, G_VARIANT_TYPE ("(aa{sv})")));
  batch = g_variant_get_child_value (params, 0);
  f->n_signals++;
  g_variant_iter_init (&iter, batch);
  while ((event = g_variant_iter_next_value (&iter)) != NULL)
    {
      bytes += g_variant_get_size (event);
      g_ptr_array_add (f->events, event);
    }
  g_array_append_val (f->batch_bytes, bytes);
}

static void
owner_props_cb (GDBusConnection *connection,
                const char      *sender,
                const char      *path,
                const char      *iface,
                const char      *signal,
                GVariant        *params,
                gpointer         user_data)
{
  Fixture *f = user_data;
  g_autoptr(GVariant) changed = NULL;
  const char *interface_name;
  guint64 dropped;

  g_variant_get (params, "(&s@a{sv}@as)", &interface_name, &changed, NULL);
  g_assert_cmpstr (interface_name, ==, IFACE);
  g_assert_true (g_variant_lookup (changed, "Dropped", "t", &dropped));
  f->dropped_seen = (gint64) dropped;
}

static void
other_signal_cb (GDBusConnection *connection,
                 const char      *sender,
                 const char      *path,
                 const char      *iface,
                 const char      *signal,
                 GVariant        *params,
                 gpointer         user_data)
{
  Fixture *f = user_data;

  /* The other client watches everything; only subscription signals count. */
  if (g_str_has_prefix (path, "/org/backplane/Backplane1/client/"))
    f->other_n_signals++;
}

static void
setup (Fixture       *f,
       gconstpointer  data)
{
  f->bus = bp_test_bus_up ();
  f->service = connect_bus (f);
  f->owner = connect_bus (f);
  f->other = connect_bus (f);
  f->clock = bp_clock_new_manual (0, 1);
  f->host = bp_host_new (f->service, f->clock);
  /* The host's NameOwnerChanged match is added asynchronously: one round
   * trip on the same connection makes sure the bus has it before a
   * client goes away. */
  {
    g_autoptr(GVariant) id = g_dbus_connection_call_sync (f->service, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                          "org.freedesktop.DBus", "GetId", NULL, NULL,
                                                          G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
    g_assert_nonnull (id);
  }
  f->base_watches = bp_host_get_n_watches (f->host);
  f->base_open = bp_subscription_get_n_open ();
  f->events = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  f->batch_bytes = g_array_new (FALSE, FALSE, sizeof (gsize));
  f->dropped_seen = -1;

  f->owner_events_id =
    g_dbus_connection_signal_subscribe (f->owner, g_dbus_connection_get_unique_name (f->service),
                                        IFACE, "Events", NULL, NULL, G_DBUS_SIGNAL_FLAGS_NONE,
                                        owner_events_cb, f, NULL);
  f->owner_props_id =
    g_dbus_connection_signal_subscribe (f->owner, g_dbus_connection_get_unique_name (f->service),
                                        "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                        NULL, IFACE, G_DBUS_SIGNAL_FLAGS_NONE,
                                        owner_props_cb, f, NULL);
  /* No sender, no path, no interface filter: a broadcast would show up. */
  f->other_events_id =
    g_dbus_connection_signal_subscribe (f->other, NULL, NULL, NULL, NULL, NULL,
                                        G_DBUS_SIGNAL_FLAGS_NONE, other_signal_cb, f, NULL);
}

static void
teardown (Fixture       *f,
          gconstpointer  data)
{
  if (f->owner != NULL)
    {
      g_dbus_connection_signal_unsubscribe (f->owner, f->owner_events_id);
      g_dbus_connection_signal_unsubscribe (f->owner, f->owner_props_id);
      g_dbus_connection_close_sync (f->owner, NULL, NULL);
      g_clear_object (&f->owner);
    }
  g_dbus_connection_signal_unsubscribe (f->other, f->other_events_id);
  g_dbus_connection_close_sync (f->other, NULL, NULL);
  g_clear_object (&f->other);
  drain_context ();
  g_assert_cmpuint (bp_host_get_n_watches (f->host), ==, f->base_watches);
  g_assert_cmpuint (bp_subscription_get_n_open (), ==, f->base_open);
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);
  g_assert_finalize_object (f->host);
  g_dbus_connection_close_sync (f->service, NULL, NULL);
  g_clear_object (&f->service);
  bp_test_bus_down (g_steal_pointer (&f->bus));
  g_clear_object (&f->clock);
  g_ptr_array_unref (f->events);
  g_array_unref (f->batch_bytes);
}

static BpSubscription *
new_subscription (Fixture                    *f,
                  const BpSubscriptionLimits *limits)
{
  g_autoptr(GError) error = NULL;
  BpSubscription *sub;

  sub = bp_subscription_new (f->host, g_dbus_connection_get_unique_name (f->owner), limits, &error);
  g_assert_no_error (error);
  g_assert_nonnull (sub);
  g_assert_true (g_str_has_prefix (bp_subscription_get_object_path (sub),
                                   "/org/backplane/Backplane1/client/"));
  g_assert_cmpstr (bp_subscription_get_owner (sub), ==, g_dbus_connection_get_unique_name (f->owner));
  return sub;
}

/* Drops the test's reference and waits until the object is really gone:
 * an in-flight connection flush or NameHasOwner call may still hold one. */
static void
release_subscription (BpSubscription **sub)
{
  gpointer weak = *sub;
  guint guard = g_timeout_add_seconds (GUARD_SECONDS, guard_cb, (gpointer) "finalize");

  g_object_add_weak_pointer (G_OBJECT (weak), &weak);
  g_clear_object (sub);
  while (weak != NULL)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
}

static GVariant *
make_event (guint n)
{
  static const char * const kinds[] = { "add", "change", "remove" };
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "n", "u", n);
  g_variant_dict_insert (&dict, "kind", "s", kinds[n % 3]);
  return g_variant_dict_end (&dict);
}

static void
assert_events_in_order (Fixture *f,
                        guint    first,
                        guint    count)
{
  g_assert_cmpuint (f->events->len, ==, count);
  for (guint i = 0; i < count; i++)
    {
      guint32 n;

      g_assert_true (g_variant_lookup (g_ptr_array_index (f->events, i), "n", "u", &n));
      g_assert_cmpuint (n, ==, first + i);
    }
}

static void
wait_for_events (Fixture    *f,
                 guint       count,
                 const char *what)
{
  guint guard = g_timeout_add_seconds (GUARD_SECONDS, guard_cb, (gpointer) what);

  while (f->events->len < count)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
}

typedef struct
{
  gboolean  done;
  GVariant *reply;
  GError   *error;
} Reply;

static void
reply_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Reply *r = user_data;

  r->reply = g_dbus_connection_call_finish (G_DBUS_CONNECTION (source), result, &r->error);
  r->done = TRUE;
}

/* Calls the service asynchronously (its handlers run on this context). */
static void
call_service (Fixture         *f,
              GDBusConnection *c,
              const char      *path,
              const char      *iface,
              const char      *method,
              GVariant        *params,
              Reply           *r)
{
  g_dbus_connection_call (c, g_dbus_connection_get_unique_name (f->service), path, iface, method,
                          params, NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, reply_cb, r);
  run_until (&r->done, method);
}

static guint64
get_dropped (GVariant *reply)
{
  g_autoptr(GVariant) value = NULL;

  g_variant_get (reply, "(v)", &value);
  g_assert_true (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64));
  return g_variant_get_uint64 (value);
}

static void
closed_cb (BpSubscription *sub,
           gpointer        user_data)
{
  (*(guint *) user_data)++;
}

/* ---- tests ---- */

static void
test_burst (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(BpSubscription) sub = new_subscription (f, NULL);
  const guint n = 10000;
  const guint max_signals = (n + BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_EVENTS - 1) /
                            BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_EVENTS + 2;

  for (guint i = 0; i < n; i++)
    bp_subscription_push (sub, make_event (i));
  wait_for_events (f, n, "10,000 events");
  sync_with_service (f, f->owner);

  assert_events_in_order (f, 0, n);
  g_assert_cmpuint (f->n_signals, <=, max_signals);
  for (guint i = 0; i < f->batch_bytes->len; i++)
    g_assert_cmpuint (g_array_index (f->batch_bytes, gsize, i), <=, BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_BYTES);
  g_assert_cmpuint (bp_subscription_get_dropped (sub), ==, 0);
  g_assert_cmpint (f->dropped_seen, ==, -1);
  g_assert_cmpuint (bp_subscription_get_n_queued (sub), ==, 0);
  /* Nothing pending: no timer. */
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);

  /* Unicast: the client that listens to everything saw none of it. */
  sync_with_service (f, f->other);
  g_assert_cmpuint (f->other_n_signals, ==, 0);

  bp_subscription_close (sub);
  release_subscription (&sub);
}

static void
test_timer (Fixture       *f,
            gconstpointer  data)
{
  g_autoptr(BpSubscription) sub = new_subscription (f, NULL);

  /* Idle subscription: no timer armed. */
  sync_with_service (f, f->owner);
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);

  bp_subscription_push (sub, make_event (0));
  bp_subscription_push (sub, make_event (1));
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 1);
  sync_with_service (f, f->owner);
  g_assert_cmpuint (f->n_signals, ==, 0);

  bp_clock_advance (f->clock, 100 * 1000 - 1);
  sync_with_service (f, f->owner);
  g_assert_cmpuint (f->n_signals, ==, 0);
  g_assert_cmpuint (bp_subscription_get_n_queued (sub), ==, 2);

  /* Exactly at 100 ms the batch goes out, and the timer is gone. */
  bp_clock_advance (f->clock, 1);
  sync_with_service (f, f->owner);
  g_assert_cmpuint (f->n_signals, ==, 1);
  assert_events_in_order (f, 0, 2);
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);

  /* The next event starts a fresh 100 ms window. */
  bp_subscription_push (sub, make_event (2));
  bp_clock_advance (f->clock, 50 * 1000);
  sync_with_service (f, f->owner);
  g_assert_cmpuint (f->n_signals, ==, 1);
  bp_clock_advance (f->clock, 50 * 1000);
  wait_for_events (f, 3, "second window");
  g_assert_cmpuint (f->n_signals, ==, 2);
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);

  bp_subscription_close (sub);
  release_subscription (&sub);
}

static void
test_configured_interval (Fixture       *f,
                          gconstpointer  data)
{
  BpSubscriptionLimits limits;
  g_autoptr(BpSubscription) sub = NULL;

  bp_subscription_limits_init (&limits);
  g_assert_cmpuint (limits.flush_interval_ms, ==, 100);
  g_assert_cmpuint (limits.max_batch_events, ==, 256);
  g_assert_cmpuint (limits.max_batch_bytes, ==, 64 * 1024);
  g_assert_cmpuint (limits.max_queued_events, ==, 10000);
  limits.flush_interval_ms = 10;
  sub = new_subscription (f, &limits);
  bp_subscription_push (sub, make_event (0));
  bp_clock_advance (f->clock, 10 * 1000 - 1);
  sync_with_service (f, f->owner);
  g_assert_cmpuint (f->n_signals, ==, 0);
  bp_clock_advance (f->clock, 1);
  wait_for_events (f, 1, "10 ms window");
  bp_subscription_close (sub);
  release_subscription (&sub);
}

static void
test_batch_bytes (Fixture       *f,
                  gconstpointer  data)
{
  BpSubscriptionLimits limits = { 0 };
  g_autoptr(BpSubscription) sub = NULL;
  g_autofree char *payload = g_strnfill (300, 'p');
  g_autofree char *huge = g_strnfill (5000, 'h');
  guint n_alone = 0;

  limits.max_batch_bytes = 1024;
  sub = new_subscription (f, &limits);
  for (guint i = 0; i < 40; i++)
    {
      GVariantDict dict;

      g_variant_dict_init (&dict, NULL);
      g_variant_dict_insert (&dict, "n", "u", i);
      g_variant_dict_insert (&dict, "payload", "s", i == 20 ? huge : payload);
      bp_subscription_push (sub, g_variant_dict_end (&dict));
    }
  /* The tail below the cap waits for the timer. */
  bp_clock_advance (f->clock, 100 * 1000);
  wait_for_events (f, 40, "byte-capped batches");
  assert_events_in_order (f, 0, 40);
  for (guint i = 0; i < f->batch_bytes->len; i++)
    {
      gsize bytes = g_array_index (f->batch_bytes, gsize, i);

      if (bytes > 1024)
        n_alone++;  /* only the huge event may exceed the cap, alone */
    }
  g_assert_cmpuint (n_alone, ==, 1);
  g_assert_cmpuint (f->n_signals, >=, 40 * 300 / 1024);
  bp_subscription_close (sub);
  release_subscription (&sub);
}

static void
test_close_not_owner (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(BpSubscription) sub = new_subscription (f, NULL);
  g_autofree char *remote = NULL;
  Reply close_reply = { 0 }, get_reply = { 0 };
  guint closed = 0;
  guint64 dropped = 99;

  g_signal_connect (sub, "closed", G_CALLBACK (closed_cb), &closed);
  call_service (f, f->other, bp_subscription_get_object_path (sub), IFACE, "Close", NULL, &close_reply);
  g_assert_null (close_reply.reply);
  remote = g_dbus_error_get_remote_error (close_reply.error);
  g_assert_cmpstr (remote, ==, "org.backplane.Backplane1.Error.PermissionDenied");
  g_clear_error (&close_reply.error);
  g_assert_cmpuint (closed, ==, 0);
  g_assert_false (bp_subscription_is_closed (sub));

  /* Reading Dropped is allowed to anybody. */
  call_service (f, f->other, bp_subscription_get_object_path (sub),
                "org.freedesktop.DBus.Properties", "Get",
                g_variant_new ("(ss)", IFACE, "Dropped"), &get_reply);
  g_assert_no_error (get_reply.error);
  dropped = get_dropped (get_reply.reply);
  g_assert_cmpuint (dropped, ==, 0);
  g_variant_unref (get_reply.reply);

  bp_subscription_close (sub);
  g_assert_cmpuint (closed, ==, 1);
  release_subscription (&sub);
}

static void
test_close_owner (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(BpSubscription) sub = new_subscription (f, NULL);
  g_autofree char *path = g_strdup (bp_subscription_get_object_path (sub));
  const char *xml;
  Reply introspect = { 0 }, close_reply = { 0 }, again = { 0 }, after = { 0 };
  guint closed = 0;

  g_assert_cmpuint (bp_subscription_get_n_open (), ==, f->base_open + 1);
  g_assert_cmpuint (bp_host_get_n_watches (f->host), ==, f->base_watches + 1);

  /* Documented introspection while it lives. */
  call_service (f, f->owner, path, "org.freedesktop.DBus.Introspectable", "Introspect", NULL, &introspect);
  g_assert_no_error (introspect.error);
  g_variant_get (introspect.reply, "(&s)", &xml);
  g_assert_nonnull (strstr (xml, "<interface name=\"" IFACE "\">"));
  g_assert_nonnull (strstr (xml, "org.gtk.GDBus.DocString"));
  g_assert_nonnull (strstr (xml, "name=\"Dropped\""));
  g_variant_unref (introspect.reply);

  g_signal_connect (sub, "closed", G_CALLBACK (closed_cb), &closed);
  bp_subscription_push (sub, make_event (0));  /* discarded: the owner asked to stop */
  call_service (f, f->owner, path, IFACE, "Close", NULL, &close_reply);
  g_assert_no_error (close_reply.error);
  g_variant_unref (close_reply.reply);
  g_assert_cmpuint (closed, ==, 1);
  g_assert_true (bp_subscription_is_closed (sub));
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);
  g_assert_cmpuint (bp_host_get_n_watches (f->host), ==, f->base_watches);
  g_assert_cmpuint (bp_subscription_get_n_open (), ==, f->base_open);

  /* The object is gone. */
  call_service (f, f->owner, path, IFACE, "Close", NULL, &again);
  g_assert_null (again.reply);
  g_assert_true (g_error_matches (again.error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_METHOD) ||
                 g_error_matches (again.error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_OBJECT));
  g_clear_error (&again.error);
  call_service (f, f->owner, path, "org.freedesktop.DBus.Introspectable", "Introspect", NULL, &after);
  if (after.reply != NULL)
    {
      g_variant_get (after.reply, "(&s)", &xml);
      g_assert_null (strstr (xml, IFACE));
      g_variant_unref (after.reply);
    }
  g_clear_error (&after.error);

  /* Later pushes and closes are ignored; ::closed fired once. */
  bp_subscription_push (sub, make_event (1));
  g_assert_cmpuint (bp_subscription_get_n_queued (sub), ==, 0);
  bp_subscription_close (sub);
  sync_with_service (f, f->owner);
  g_assert_cmpuint (closed, ==, 1);
  g_assert_cmpuint (f->events->len, ==, 0);
  release_subscription (&sub);
}

static void
test_close_by_creator_flushes (Fixture       *f,
                               gconstpointer  data)
{
  g_autoptr(BpSubscription) sub = new_subscription (f, NULL);
  guint closed = 0;

  g_signal_connect (sub, "closed", G_CALLBACK (closed_cb), &closed);
  for (guint i = 0; i < 3; i++)
    bp_subscription_push (sub, make_event (i));
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 1);
  bp_subscription_close (sub);
  g_assert_cmpuint (closed, ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);
  wait_for_events (f, 3, "events flushed on close");
  assert_events_in_order (f, 0, 3);
  release_subscription (&sub);
}

typedef struct
{
  Fixture        *f;
  const char     *name;
  guint          *closed;
  gboolean        checked;
  guint           closed_at_check;
} VanishCheck;

static gboolean
vanish_check_idle (gpointer user_data)
{
  VanishCheck *v = user_data;

  v->closed_at_check = *v->closed;
  v->checked = TRUE;
  return G_SOURCE_REMOVE;
}

static void
noc_cb (GDBusConnection *connection,
        const char      *sender,
        const char      *path,
        const char      *iface,
        const char      *signal,
        GVariant        *params,
        gpointer         user_data)
{
  VanishCheck *v = user_data;
  const char *name, *old_owner, *new_owner;

  g_variant_get (params, "(&s&s&s)", &name, &old_owner, &new_owner);
  if (g_str_equal (name, v->name) && new_owner[0] == '\0')
    g_idle_add (vanish_check_idle, v);  /* one main-loop turn later */
}

static void
test_owner_vanishes (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(BpSubscription) sub = new_subscription (f, NULL);
  g_autofree char *owner_name = g_strdup (g_dbus_connection_get_unique_name (f->owner));
  VanishCheck v = { 0 };
  guint closed = 0;
  guint noc;

  g_signal_connect (sub, "closed", G_CALLBACK (closed_cb), &closed);
  v.f = f;
  v.name = owner_name;
  v.closed = &closed;
  noc = g_dbus_connection_signal_subscribe (f->service, "org.freedesktop.DBus", "org.freedesktop.DBus",
                                            "NameOwnerChanged", "/org/freedesktop/DBus", owner_name,
                                            G_DBUS_SIGNAL_FLAGS_NONE, noc_cb, &v, NULL);
  /* Let the NameHasOwner check of the creation come back first. */
  sync_with_service (f, f->owner);
  bp_subscription_push (sub, make_event (0));
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 1);

  g_dbus_connection_signal_unsubscribe (f->owner, f->owner_events_id);
  g_dbus_connection_signal_unsubscribe (f->owner, f->owner_props_id);
  g_dbus_connection_close_sync (f->owner, NULL, NULL);
  g_clear_object (&f->owner);

  run_until (&v.checked, "NameOwnerChanged");
  g_assert_cmpuint (v.closed_at_check, ==, 1);
  g_assert_cmpuint (closed, ==, 1);
  g_assert_true (bp_subscription_is_closed (sub));
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);
  g_assert_cmpuint (bp_host_get_n_watches (f->host), ==, f->base_watches);
  g_dbus_connection_signal_unsubscribe (f->service, noc);
  release_subscription (&sub);
}

static void
set_flag_cb (BpSubscription *sub,
             gpointer        user_data)
{
  *(gboolean *) user_data = TRUE;
}

static void
test_owner_already_gone (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpSubscription) sub = NULL;
  gboolean closed = FALSE;

  /* The owner left before the subscription existed (an async backend
   * call completed late): the NameHasOwner check closes it. */
  sub = bp_subscription_new (f->host, ":1.424242", NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (sub, "closed", G_CALLBACK (set_flag_cb), &closed);
  run_until (&closed, "NameHasOwner");
  g_assert_true (bp_subscription_is_closed (sub));
  g_assert_cmpuint (bp_host_get_n_watches (f->host), ==, f->base_watches);
  release_subscription (&sub);
}

static void
test_overflow (Fixture       *f,
               gconstpointer  data)
{
  BpSubscriptionLimits limits = { 0 };
  g_autoptr(BpSubscription) sub = NULL;
  Reply get_reply = { 0 };
  guint64 dropped = 0;
  guint guard;

  limits.max_batch_events = 10;
  limits.max_queued_events = 100;
  sub = new_subscription (f, &limits);

  /* The first 10 go out at once; until the connection wrote them, 100 more
   * queue; the 390 newest are dropped. */
  for (guint i = 0; i < 500; i++)
    bp_subscription_push (sub, make_event (i));
  g_assert_cmpuint (bp_subscription_get_dropped (sub), ==, 390);
  g_assert_cmpuint (bp_subscription_get_n_queued (sub), ==, 100);

  wait_for_events (f, 110, "events before the overflow");
  guard = g_timeout_add_seconds (GUARD_SECONDS, guard_cb, (gpointer) "PropertiesChanged");
  while (f->dropped_seen < 0)
    g_main_context_iteration (NULL, TRUE);
  g_source_remove (guard);
  sync_with_service (f, f->owner);
  assert_events_in_order (f, 0, 110);
  g_assert_cmpint (f->dropped_seen, ==, 390);
  g_assert_cmpuint (f->n_signals, ==, 11);

  call_service (f, f->other, bp_subscription_get_object_path (sub),
                "org.freedesktop.DBus.Properties", "Get",
                g_variant_new ("(ss)", IFACE, "Dropped"), &get_reply);
  g_assert_no_error (get_reply.error);
  dropped = get_dropped (get_reply.reply);
  g_assert_cmpuint (dropped, ==, 390);
  g_variant_unref (get_reply.reply);

  sync_with_service (f, f->other);
  g_assert_cmpuint (f->other_n_signals, ==, 0);
  bp_subscription_close (sub);
  release_subscription (&sub);
}

static void
test_dispose_unexports (Fixture       *f,
                        gconstpointer  data)
{
  BpSubscription *sub = new_subscription (f, NULL);
  g_autofree char *path = g_strdup (bp_subscription_get_object_path (sub));
  Reply r = { 0 };
  guint closed = 0;

  g_signal_connect (sub, "closed", G_CALLBACK (closed_cb), &closed);
  bp_subscription_push (sub, make_event (0));
  release_subscription (&sub);
  g_assert_cmpuint (closed, ==, 0);
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);
  call_service (f, f->owner, path, IFACE, "Close", NULL, &r);
  g_assert_null (r.reply);
  g_assert_nonnull (r.error);
  g_clear_error (&r.error);
}

static void
test_invalid (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpHost) offline = bp_host_new (NULL, f->clock);
  BpSubscription *sub;

  sub = bp_subscription_new (f->host, "org.example.NotUnique", NULL, &error);
  g_assert_null (sub);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  sub = bp_subscription_new (offline, ":1.1", NULL, &error);
  g_assert_null (sub);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
}

int
main (int    argc,
      char **argv)
{
  g_test_init (&argc, &argv, NULL);
  /* D-Bus errors come back as BP_ERROR codes. */
  (void) bp_error_quark ();

#define ADD(path, fn) g_test_add (path, Fixture, NULL, setup, fn, teardown)
  ADD ("/subscription/batching/burst", test_burst);
  ADD ("/subscription/batching/timer", test_timer);
  ADD ("/subscription/batching/configured-interval", test_configured_interval);
  ADD ("/subscription/batching/bytes", test_batch_bytes);
  ADD ("/subscription/close/not-owner", test_close_not_owner);
  ADD ("/subscription/close/owner", test_close_owner);
  ADD ("/subscription/close/creator-flushes", test_close_by_creator_flushes);
  ADD ("/subscription/owner/vanishes", test_owner_vanishes);
  ADD ("/subscription/owner/already-gone", test_owner_already_gone);
  ADD ("/subscription/overflow", test_overflow);
  ADD ("/subscription/dispose-unexports", test_dispose_unexports);
  ADD ("/subscription/invalid", test_invalid);
#undef ADD

  return g_test_run ();
}
