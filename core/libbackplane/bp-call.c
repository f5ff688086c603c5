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

/**
 * BpCall:
 *
 * One D-Bus method call in flight, answered exactly once.
 *
 * A method handler wraps its #GDBusMethodInvocation in a call with
 * [ctor@Bp.Call.new] and passes [method@Bp.Call.get_cancellable] down to
 * the backend work. That cancellable fires when the caller leaves the bus
 * (an owner watch of the [class@Bp.Host]) or when the daemon's shutdown
 * grace period ends ([method@Bp.Host.shutdown]); the work should then stop,
 * and its reply is skipped when nobody is left to read it.
 *
 * The first of [method@Bp.Call.return_value], [method@Bp.Call.return_error]
 * and [method@Bp.Call.return_new_error] answers the call; a later one is a
 * programming error, logged as critical and dropped. A call released
 * without an answer replies `org.backplane.Backplane1.Error.Failed`, so no
 * client ever waits for the D-Bus timeout. File descriptors passed with
 * the call are taken with [method@Bp.Call.steal_fd]; those never taken are
 * closed with the call.
 *
 * The host counts every unanswered call ([property@Bp.Host:n-calls]),
 * which lets the daemon drain on shutdown. Main context only: create,
 * answer and release a call on the host's main context.
 */
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
 * @host: the #BpHost, which counts the call and watches its sender
 * @invocation: (transfer full): the incoming call, as a method handler
 *   receives it
 *
 * Starts tracking a method call. The call takes over the handler's
 * reference to @invocation and answers it: do not unref or complete
 * @invocation yourself (a gdbus-codegen handler returns
 * %G_DBUS_METHOD_INVOCATION_HANDLED). When the sender is a unique bus name
 * the host watches it, so that the call's cancellable fires when the
 * sender leaves; create the call in the method handler itself, before
 * returning to the main loop, so that a caller that leaves at once is
 * noticed. During shutdown the cancellable starts cancelled.
 *
 * Returns: (transfer full): a tracked call; releasing the last reference
 *   before an answer replies `org.backplane.Backplane1.Error.Failed`
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
 * Returns the cancellable for the backend work done for this call. It is
 * cancelled on the host's main context when the caller leaves the bus or
 * when the host shuts down ([method@Bp.Host.shutdown]); answering the call
 * does not cancel it.
 *
 * Returns: (transfer none): the call's cancellable
 */
GCancellable *
bp_call_get_cancellable (BpCall *self)
{
  g_return_val_if_fail (BP_IS_CALL (self), NULL);
  return self->cancellable;
}

/**
 * bp_call_get_sender:
 * @self: a #BpCall
 *
 * Returns the caller's bus name, e.g. to key per-client state or for
 * [method@Bp.Host.make_client_path]. It stays valid after the answer.
 *
 * Returns: (transfer none): the unique bus name of the caller, or an empty
 *   string when the message had no sender (a peer-to-peer connection)
 */
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
 * Returns the invocation, to read its message, parameters or flags. Do not
 * complete it directly: answer through the call.
 *
 * Returns: (transfer none) (nullable): the invocation, %NULL once answered
 */
GDBusMethodInvocation *
bp_call_get_invocation (BpCall *self)
{
  g_return_val_if_fail (BP_IS_CALL (self), NULL);
  return self->invocation;
}

/**
 * bp_call_is_answered:
 * @self: a #BpCall
 *
 * Tells whether one of the bp_call_return_*() functions ran. A call whose
 * caller left is not answered until then, although its reply will be
 * skipped.
 *
 * Returns: %TRUE once the call has been answered
 */
gboolean
bp_call_is_answered (BpCall *self)
{
  g_return_val_if_fail (BP_IS_CALL (self), TRUE);
  return self->invocation == NULL;
}

/**
 * bp_call_steal_fd:
 * @self: a #BpCall
 * @handle: (nullable): a `h` value from the call's parameters
 * @error: return location for a #GError
 *
 * Takes a file descriptor passed with the call (e.g. the output fd of a
 * `…ToFd` method, for [ctor@Bp.FrameWriter.new]). The first use takes every
 * fd out of the message at once, so that the message holds no copy that
 * would keep a pipe open; each fd can then be taken once. Fds never taken
 * are closed when the call is finalized. Take them before answering.
 *
 * Returns: a file descriptor that the caller owns and must close, or -1
 *   with %BP_ERROR_INVALID_ARGUMENT when @handle is not a handle, names no
 *   fd passed with the call or one already taken, or the call was answered
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
 * @parameters: (nullable): the reply tuple, %NULL for `()`; a floating
 *   reference is sunk, otherwise the caller keeps its reference
 *
 * Answers the call with @parameters and ends its tracking: the host's call
 * count drops and the sender is no longer watched. The reply is skipped
 * when the caller has already left. Answering twice is a programming
 * error: it is logged as critical and dropped (@parameters is still sunk).
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
 * @error: the error, of any domain; not consumed
 *
 * Answers the call with @error and ends its tracking, as
 * [method@Bp.Call.return_value] does. @error is mapped by
 * [func@Bp.error_normalize] to a registered
 * `org.backplane.Backplane1.Error.*` name (see
 * [func@Bp.invocation_return_error]); the message is sent unchanged, so it
 * must not contain secrets. The reply is skipped when the caller has
 * already left; answering twice is logged as critical and dropped.
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

/**
 * bp_call_return_new_error:
 * @self: a #BpCall
 * @code: the error code, of the [error@Bp.Error] domain
 * @format: the message, a printf()-style format
 * @...: arguments for @format
 *
 * Answers the call with a new %BP_ERROR error, like
 * [method@Bp.Call.return_error]. The message reaches the client as is:
 * keep secrets out of it.
 */
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
