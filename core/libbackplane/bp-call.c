/* bp-call.c: one D-Bus method call in flight, answered exactly once
 *
 * A handler wraps its GDBusMethodInvocation in a BpCall and passes the
 * call's cancellable down to the backend. The cancellable fires when the
 * caller disconnects (the host's NameOwnerChanged watch) or when the daemon's
 * shutdown grace period ends. The first bp_call_return_*() answers; later
 * ones are programming errors and are dropped. A call finalized without an
 * answer replies `Failed` so that no client ever waits for the D-Bus
 * timeout. Replies to a caller that has gone are skipped. Main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gunixfdlist.h>
#include <glib/gi18n-lib.h>
#include <unistd.h>

#include "bp-call.h"
#include "bp-error.h"

void _bp_host_call_begin (BpHost *self, GDBusMethodInvocation *invocation);
void _bp_host_call_end (BpHost *self);

struct _BpCall
{
  GObject                parent_instance;

  BpHost                *host;          /* (owned) */
  GDBusMethodInvocation *invocation;    /* (owned) (nullable): NULL once answered */
  GCancellable          *cancellable;   /* (owned) */
  char                  *sender;        /* (owned) */
  int                   *fds;           /* (owned) (nullable): fds of the message, -1 once taken */
  int                    n_fds;
  guint                  watch_id;
  gulong                 shutdown_handler;
  gboolean               vanished;
};

G_DEFINE_FINAL_TYPE (BpCall, bp_call, G_TYPE_OBJECT)

static void
bp_call_finish (BpCall *self)
{
  bp_host_unwatch_owner (self->host, self->watch_id);
  self->watch_id = 0;
  g_cancellable_disconnect (bp_host_get_shutdown_cancellable (self->host), self->shutdown_handler);
  self->shutdown_handler = 0;
  g_clear_object (&self->invocation);
  _bp_host_call_end (self->host);
}

static void
bp_call_dispose (GObject *object)
{
  BpCall *self = BP_CALL (object);

  if (self->invocation != NULL)
    {
      g_autoptr(GError) error = g_error_new_literal (BP_ERROR, BP_ERROR_FAILED,
                                                     _("The call ended without a reply"));
      bp_call_return_error (self, error);
    }

  G_OBJECT_CLASS (bp_call_parent_class)->dispose (object);
}

static void
bp_call_finalize (GObject *object)
{
  BpCall *self = BP_CALL (object);

  for (int i = 0; i < self->n_fds; i++)
    if (self->fds[i] >= 0)
      close (self->fds[i]);
  g_clear_pointer (&self->fds, g_free);

  g_clear_object (&self->cancellable);
  g_clear_object (&self->host);
  g_clear_pointer (&self->sender, g_free);

  G_OBJECT_CLASS (bp_call_parent_class)->finalize (object);
}

static void
bp_call_class_init (BpCallClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bp_call_dispose;
  object_class->finalize = bp_call_finalize;
}

static void
bp_call_init (BpCall *self)
{
  self->cancellable = g_cancellable_new ();
}

static void
owner_vanished_cb (const char *unique_name,
                   gpointer    user_data)
{
  BpCall *self = user_data;

  self->watch_id = 0;
  self->vanished = TRUE;
  g_cancellable_cancel (self->cancellable);
}

static void
shutdown_cb (GCancellable *shutdown,
             gpointer      user_data)
{
  BpCall *self = user_data;

  g_cancellable_cancel (self->cancellable);
}

/**
 * bp_call_new:
 * @host: the #BpHost
 * @invocation: (transfer full): the incoming call, as a method handler
 *   receives it
 *
 * Takes over the handler's reference to @invocation: the call answers it.
 *
 * Returns: (transfer full): a tracked call
 */
BpCall *
bp_call_new (BpHost                *host,
             GDBusMethodInvocation *invocation)
{
  BpCall *self;
  const char *sender;

  g_return_val_if_fail (BP_IS_HOST (host), NULL);
  g_return_val_if_fail (G_IS_DBUS_METHOD_INVOCATION (invocation), NULL);

  self = g_object_new (BP_TYPE_CALL, NULL);
  self->host = g_object_ref (host);
  self->invocation = invocation;
  sender = g_dbus_method_invocation_get_sender (invocation);
  self->sender = g_strdup (sender != NULL ? sender : "");
  if (sender != NULL && sender[0] == ':')
    self->watch_id = bp_host_watch_owner (host, sender, owner_vanished_cb, self, NULL);
  /* A cancellable's handler runs at once when it is already cancelled. */
  self->shutdown_handler = g_cancellable_connect (bp_host_get_shutdown_cancellable (host),
                                                  G_CALLBACK (shutdown_cb), self, NULL);
  _bp_host_call_begin (host, invocation);
  return self;
}

/**
 * bp_call_get_cancellable:
 * @self: a #BpCall
 *
 * Returns: (transfer none): fires when the caller vanishes or on shutdown
 */
GCancellable *
bp_call_get_cancellable (BpCall *self)
{
  g_return_val_if_fail (BP_IS_CALL (self), NULL);
  return self->cancellable;
}

const char *
bp_call_get_sender (BpCall *self)
{
  g_return_val_if_fail (BP_IS_CALL (self), NULL);
  return self->sender;
}

/**
 * bp_call_get_invocation:
 * @self: a #BpCall
 *
 * Returns: (transfer none) (nullable): the invocation, %NULL once answered
 */
GDBusMethodInvocation *
bp_call_get_invocation (BpCall *self)
{
  g_return_val_if_fail (BP_IS_CALL (self), NULL);
  return self->invocation;
}

gboolean
bp_call_is_answered (BpCall *self)
{
  g_return_val_if_fail (BP_IS_CALL (self), TRUE);
  return self->invocation == NULL;
}

/**
 * bp_call_steal_fd:
 * @self: a #BpCall
 * @handle: a `h` value from the call's parameters
 * @error: return location for a #GError
 *
 * Returns: a new fd the caller owns (close it), or -1 with
 *   `InvalidArgument` when the handle does not name a passed fd
 */
int
bp_call_steal_fd (BpCall    *self,
                  GVariant  *handle,
                  GError   **error)
{
  gint32 index;
  int fd;

  g_return_val_if_fail (BP_IS_CALL (self), -1);

  if (self->invocation == NULL || handle == NULL ||
      !g_variant_is_of_type (handle, G_VARIANT_TYPE_HANDLE))
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, _("fd: not a handle"));
      return -1;
    }
  /* Take every fd out of the message at once (so that the message holds no
   * copy that would keep a pipe open), then hand them out one by one. */
  if (self->fds == NULL)
    {
      GUnixFDList *list = g_dbus_message_get_unix_fd_list (g_dbus_method_invocation_get_message (self->invocation));

      self->fds = list != NULL ? g_unix_fd_list_steal_fds (list, &self->n_fds) : g_new0 (int, 1);
    }
  index = g_variant_get_handle (handle);
  if (index < 0 || index >= self->n_fds || self->fds[index] < 0)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("fd: handle %d names no file descriptor passed with the call"), index);
      return -1;
    }
  fd = self->fds[index];
  self->fds[index] = -1;
  return fd;
}

/**
 * bp_call_return_value:
 * @self: a #BpCall
 * @parameters: (nullable): the reply tuple; floating references are sunk
 *
 * Answers the call. Does nothing (but sink @parameters) if already answered.
 */
void
bp_call_return_value (BpCall   *self,
                      GVariant *parameters)
{
  g_autoptr(GVariant) owned = parameters ? g_variant_ref_sink (parameters) : NULL;

  g_return_if_fail (BP_IS_CALL (self));

  if (self->invocation == NULL)
    {
      g_critical ("BpCall answered twice");
      return;
    }
  if (!self->vanished)
    g_dbus_method_invocation_return_value (g_steal_pointer (&self->invocation), owned);
  bp_call_finish (self);
}

/**
 * bp_call_return_error:
 * @self: a #BpCall
 * @error: the error, mapped to a Backplane D-Bus error name
 */
void
bp_call_return_error (BpCall       *self,
                      const GError *error)
{
  g_return_if_fail (BP_IS_CALL (self));
  g_return_if_fail (error != NULL);

  if (self->invocation == NULL)
    {
      g_critical ("BpCall answered twice");
      return;
    }
  if (!self->vanished)
    bp_invocation_return_error (g_steal_pointer (&self->invocation), error);
  bp_call_finish (self);
}

void
bp_call_return_new_error (BpCall     *self,
                          int         code,
                          const char *format,
                          ...)
{
  g_autoptr(GError) error = NULL;
  va_list args;

  va_start (args, format);
  error = g_error_new_valist (BP_ERROR, code, format, args);
  va_end (args);
  bp_call_return_error (self, error);
}
