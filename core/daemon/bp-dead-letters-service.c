/* bp-dead-letters-service.c: the DeadLetters object on the bus
 *
 * Exports org.backplane.Backplane1.DeadLetters at
 * /org/backplane/Backplane1/DeadLetters over the daemon's BpDeadLetters:
 * every method is one asynchronous store operation (SQLite runs on the
 * store's own thread), the Count and Poisoned properties follow the store,
 * and its added/resolved/poisoned signals become D-Bus signals. Main
 * context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>

#include "bp-daemon-dbus.h"
#include "bp-dead-letters-service.h"

#define DEAD_LETTERS_PATH "/org/backplane/Backplane1/DeadLetters"

struct _BpDeadLettersService
{
  GObject              parent_instance;

  BpHost              *host;     /* (owned) */
  BpDeadLetters       *dl;       /* (owned) */
  BpDBusDeadLetters   *iface;    /* (owned) */
};

G_DEFINE_FINAL_TYPE (BpDeadLettersService, bp_dead_letters_service, G_TYPE_OBJECT)

static void
bp_dead_letters_service_dispose (GObject *object)
{
  BpDeadLettersService *self = BP_DEAD_LETTERS_SERVICE (object);

  bp_dead_letters_service_unexport (self);
  if (self->dl != NULL)
    g_signal_handlers_disconnect_by_data (self->dl, self);
  g_clear_object (&self->iface);
  g_clear_object (&self->dl);
  g_clear_object (&self->host);

  G_OBJECT_CLASS (bp_dead_letters_service_parent_class)->dispose (object);
}

static void
bp_dead_letters_service_class_init (BpDeadLettersServiceClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = bp_dead_letters_service_dispose;
}

static void
bp_dead_letters_service_init (BpDeadLettersService *self)
{
}

static void
sync_counts (BpDeadLettersService *self)
{
  bp_dbus_dead_letters_set_count (self->iface, bp_dead_letters_get_count (self->dl));
  bp_dbus_dead_letters_set_poisoned (self->iface, bp_dead_letters_get_poisoned_count (self->dl));
}

static void
counts_notify_cb (GObject    *object,
                  GParamSpec *pspec,
                  gpointer    user_data)
{
  sync_counts (user_data);
}

static void
added_cb (BpDeadLetters *dl,
          guint64        id,
          const char    *backend,
          const char    *operation,
          gpointer       user_data)
{
  BpDeadLettersService *self = user_data;

  bp_dbus_dead_letters_emit_added (self->iface, id, backend, operation);
}

static void
resolved_cb (BpDeadLetters *dl,
             guint64        id,
             gpointer       user_data)
{
  BpDeadLettersService *self = user_data;

  bp_dbus_dead_letters_emit_resolved (self->iface, id);
}

static void
poisoned_cb (BpDeadLetters *dl,
             guint64        id,
             gpointer       user_data)
{
  BpDeadLettersService *self = user_data;

  bp_dbus_dead_letters_emit_poisoned (self->iface, id);
}

/* Each method: start the store operation with the call, finish in one
 * callback that knows the method by the call's method name. */

static void
list_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(BpCall) call = user_data;
  g_autoptr(GError) error = NULL;
  GVariant *entries = bp_dead_letters_list_finish (BP_DEAD_LETTERS (source), result, &error);

  if (entries == NULL)
    bp_call_return_error (call, error);
  else
    bp_call_return_value (call, g_variant_new_tuple (&entries, 1));
}

static gboolean
handle_list (BpDBusDeadLetters     *iface,
             GDBusMethodInvocation *invocation,
             guint                  offset,
             guint                  limit,
             GVariant              *filter,
             gpointer               user_data)
{
  BpDeadLettersService *self = user_data;
  BpCall *call = bp_call_new (self->host, invocation);

  bp_dead_letters_list_async (self->dl, offset, limit, filter, bp_call_get_cancellable (call),
                              list_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
get_done_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(BpCall) call = user_data;
  g_autoptr(GError) error = NULL;
  GVariant *entry = bp_dead_letters_get_finish (BP_DEAD_LETTERS (source), result, &error);

  if (entry == NULL)
    bp_call_return_error (call, error);
  else
    bp_call_return_value (call, g_variant_new_tuple (&entry, 1));
}

static gboolean
handle_get (BpDBusDeadLetters     *iface,
            GDBusMethodInvocation *invocation,
            guint64                id,
            gpointer               user_data)
{
  BpDeadLettersService *self = user_data;
  BpCall *call = bp_call_new (self->host, invocation);

  bp_dead_letters_get_async (self->dl, id, bp_call_get_cancellable (call), get_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
boolean_done_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(BpCall) call = user_data;
  g_autoptr(GError) error = NULL;
  const char *method = g_dbus_method_invocation_get_method_name (bp_call_get_invocation (call));
  gboolean ok;

  if (g_str_equal (method, "Replay"))
    ok = bp_dead_letters_replay_finish (BP_DEAD_LETTERS (source), result, &error);
  else
    ok = bp_dead_letters_delete_finish (BP_DEAD_LETTERS (source), result, &error);
  if (!ok)
    bp_call_return_error (call, error);
  else
    bp_call_return_value (call, NULL);
}

static gboolean
handle_replay (BpDBusDeadLetters     *iface,
               GDBusMethodInvocation *invocation,
               guint64                id,
               gpointer               user_data)
{
  BpDeadLettersService *self = user_data;
  BpCall *call = bp_call_new (self->host, invocation);

  bp_dead_letters_replay_async (self->dl, id, bp_call_get_cancellable (call), boolean_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_delete (BpDBusDeadLetters     *iface,
               GDBusMethodInvocation *invocation,
               guint64                id,
               gpointer               user_data)
{
  BpDeadLettersService *self = user_data;
  BpCall *call = bp_call_new (self->host, invocation);

  bp_dead_letters_delete_async (self->dl, id, bp_call_get_cancellable (call), boolean_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
count_done_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(BpCall) call = user_data;
  g_autoptr(GError) error = NULL;
  const char *method = g_dbus_method_invocation_get_method_name (bp_call_get_invocation (call));
  guint count = 0;
  gboolean ok;

  if (g_str_equal (method, "ReplayAll"))
    ok = bp_dead_letters_replay_all_finish (BP_DEAD_LETTERS (source), result, &count, &error);
  else
    ok = bp_dead_letters_purge_finish (BP_DEAD_LETTERS (source), result, &count, &error);
  if (!ok)
    bp_call_return_error (call, error);
  else
    bp_call_return_value (call, g_variant_new ("(u)", count));
}

static gboolean
handle_replay_all (BpDBusDeadLetters     *iface,
                   GDBusMethodInvocation *invocation,
                   const char            *backend,
                   gpointer               user_data)
{
  BpDeadLettersService *self = user_data;
  BpCall *call = bp_call_new (self->host, invocation);

  bp_dead_letters_replay_all_async (self->dl, backend, bp_call_get_cancellable (call), count_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_purge (BpDBusDeadLetters     *iface,
              GDBusMethodInvocation *invocation,
              const char            *backend,
              gpointer               user_data)
{
  BpDeadLettersService *self = user_data;
  BpCall *call = bp_call_new (self->host, invocation);

  bp_dead_letters_purge_async (self->dl, backend, bp_call_get_cancellable (call), count_done_cb, call);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/**
 * bp_dead_letters_service_new:
 * @host: the daemon's host
 * @dead_letters: the open store
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the exported service
 */
BpDeadLettersService *
bp_dead_letters_service_new (BpHost         *host,
                             BpDeadLetters  *dead_letters,
                             GError        **error)
{
  g_autoptr(BpDeadLettersService) self = g_object_new (BP_TYPE_DEAD_LETTERS_SERVICE, NULL);

  self->host = g_object_ref (host);
  self->dl = g_object_ref (dead_letters);
  self->iface = bp_dbus_dead_letters_skeleton_new ();
  sync_counts (self);
  g_signal_connect (self->dl, "notify::count", G_CALLBACK (counts_notify_cb), self);
  g_signal_connect (self->dl, "notify::poisoned-count", G_CALLBACK (counts_notify_cb), self);
  g_signal_connect (self->dl, "added", G_CALLBACK (added_cb), self);
  g_signal_connect (self->dl, "resolved", G_CALLBACK (resolved_cb), self);
  g_signal_connect (self->dl, "poisoned", G_CALLBACK (poisoned_cb), self);
  g_signal_connect (self->iface, "handle-list", G_CALLBACK (handle_list), self);
  g_signal_connect (self->iface, "handle-get", G_CALLBACK (handle_get), self);
  g_signal_connect (self->iface, "handle-replay", G_CALLBACK (handle_replay), self);
  g_signal_connect (self->iface, "handle-replay-all", G_CALLBACK (handle_replay_all), self);
  g_signal_connect (self->iface, "handle-delete", G_CALLBACK (handle_delete), self);
  g_signal_connect (self->iface, "handle-purge", G_CALLBACK (handle_purge), self);
  if (!bp_host_export (host, G_DBUS_INTERFACE_SKELETON (self->iface), DEAD_LETTERS_PATH, error))
    return NULL;
  return g_steal_pointer (&self);
}

void
bp_dead_letters_service_unexport (BpDeadLettersService *self)
{
  g_return_if_fail (BP_IS_DEAD_LETTERS_SERVICE (self));

  if (self->iface != NULL && g_dbus_interface_skeleton_get_object_path (G_DBUS_INTERFACE_SKELETON (self->iface)))
    bp_host_unexport (self->host, G_DBUS_INTERFACE_SKELETON (self->iface));
}
