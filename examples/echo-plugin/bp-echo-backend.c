/* bp-echo-backend.c: backend type `echo`, the example plugin
 *
 * The smallest complete backend: it reads its own config keys, exports a
 * typed interface next to Backend, answers every call exactly once through
 * BpCall, never blocks (Sleep is a BpClock timer), and stops early when the
 * call's cancellable fires because the caller vanished or the daemon is
 * shutting down. The daemon's own tests use it for those behaviours.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <string.h>

#include <backplane.h>

#include "bp-echo-backend.h"
#include "bp-echo-dbus.h"

struct _BpEchoBackend
{
  BpBackend      parent_instance;

  BpDBusEcho    *iface;          /* (owned) */
  guint64        max_length;
  guint64        max_sleep_ms;
  gboolean       online;
  GPtrArray     *delivered;      /* (owned) (element-type utf8), NULL-terminated */
};

G_DEFINE_FINAL_TYPE (BpEchoBackend, bp_echo_backend, BP_TYPE_BACKEND)

static gboolean
handle_echo (BpDBusEcho            *iface,
             GDBusMethodInvocation *invocation,
             const char            *text,
             gpointer               user_data)
{
  BpEchoBackend *self = user_data;
  g_autoptr(BpCall) call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);

  if (strlen (text) > self->max_length)
    bp_call_return_new_error (call, BP_ERROR_LIMIT_EXCEEDED,
                              "text: %zu bytes is more than max-length (%" G_GUINT64_FORMAT ")",
                              strlen (text), self->max_length);
  else
    bp_call_return_value (call, g_variant_new ("(s)", text));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

typedef struct
{
  BpEchoBackend *self;     /* (owned) */
  BpCall        *call;     /* (owned) */
  GSource       *timer;    /* (owned) */
  gulong         cancel_id;
} SleepData;

static void
sleep_data_free (SleepData *data)
{
  if (data->timer != NULL)
    g_source_destroy (data->timer);
  g_clear_pointer (&data->timer, g_source_unref);
  g_clear_object (&data->call);
  g_clear_object (&data->self);
  g_free (data);
}

static void
sleep_finish (SleepData *data,
              gboolean   completed)
{
  BpDBusEcho *iface = data->self->iface;

  g_cancellable_disconnect (bp_call_get_cancellable (data->call), data->cancel_id);
  if (completed)
    {
      bp_dbus_echo_set_completed (iface, bp_dbus_echo_get_completed (iface) + 1);
      bp_call_return_value (data->call, NULL);
    }
  else
    {
      bp_dbus_echo_set_cancelled (iface, bp_dbus_echo_get_cancelled (iface) + 1);
      bp_call_return_new_error (data->call, BP_ERROR_CANCELLED, "Sleep was cancelled");
    }
  sleep_data_free (data);
}

static gboolean
sleep_timer_cb (gpointer user_data)
{
  sleep_finish (user_data, TRUE);
  return G_SOURCE_REMOVE;
}

static gboolean
sleep_cancelled_idle_cb (gpointer user_data)
{
  sleep_finish (user_data, FALSE);
  return G_SOURCE_REMOVE;
}

static void
sleep_cancelled_cb (GCancellable *cancellable,
                    gpointer      user_data)
{
  SleepData *data = user_data;

  /* Cancellable handlers may not disconnect themselves: finish in an idle. */
  g_source_destroy (data->timer);
  g_idle_add (sleep_cancelled_idle_cb, data);
}

static gboolean
handle_sleep (BpDBusEcho            *iface,
              GDBusMethodInvocation *invocation,
              guint                  ms,
              gpointer               user_data)
{
  BpEchoBackend *self = user_data;
  SleepData *data;

  data = g_new0 (SleepData, 1);
  data->self = g_object_ref (self);
  data->call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  if (ms > self->max_sleep_ms)
    {
      bp_call_return_new_error (data->call, BP_ERROR_INVALID_ARGUMENT,
                                "milliseconds: %u is more than max-sleep-ms (%" G_GUINT64_FORMAT ")",
                                ms, self->max_sleep_ms);
      sleep_data_free (data);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  data->timer = bp_clock_timeout_source_new (bp_backend_get_clock (BP_BACKEND (self)), (gint64) ms * 1000);
  g_source_set_callback (data->timer, sleep_timer_cb, data, NULL);
  g_source_attach (data->timer, NULL);
  data->cancel_id = g_cancellable_connect (bp_call_get_cancellable (data->call),
                                           G_CALLBACK (sleep_cancelled_cb), data, NULL);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Delivery: the operation run through bp_backend_call_async() (retry and
 * breaker) and, after a failure with dead-letter, through replay_async(). */

static void
deliver (BpEchoBackend *self,
         const char    *text)
{
  g_ptr_array_add (self->delivered, g_strdup (text));
  bp_dbus_echo_set_delivered (self->iface, (const char * const *) self->delivered->pdata);
}

typedef struct
{
  BpEchoBackend *self;  /* (owned) */
  char          *text;
} DeliverOp;

static void
deliver_op_free (DeliverOp *op)
{
  g_clear_object (&op->self);
  g_free (op->text);
  g_free (op);
}

static void
deliver_start (gpointer             op_data,
               GCancellable        *cancellable,
               GAsyncReadyCallback  callback,
               gpointer             callback_data)
{
  DeliverOp *op = op_data;
  g_autoptr(GTask) task = g_task_new (op->self, cancellable, callback, callback_data);

  if (!op->self->online)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, "the echo server is offline");
      return;
    }
  deliver (op->self, op->text);
  g_task_return_boolean (task, TRUE);
}

static gboolean
deliver_finish (gpointer       op_data,
                GAsyncResult  *result,
                gpointer      *out_result,
                GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static const BpOperation deliver_op = { deliver_start, deliver_finish, NULL };

typedef struct
{
  BpCall   *call;   /* (owned) */
  char     *text;
  char     *key;
  gboolean  dead_letter;
} SendData;

static void
send_data_free (SendData *data)
{
  g_clear_object (&data->call);
  g_free (data->text);
  g_free (data->key);
  g_free (data);
}

static void
send_dead_lettered_cb (GObject      *source,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  SendData *data = user_data;
  GError *original = g_object_steal_data (G_OBJECT (data->call), "echo-error");
  g_autoptr(GError) error = NULL;
  guint64 id = 0;

  if (!bp_backend_dead_letter_finish (BP_BACKEND (source), result, &id, &error))
    bp_call_return_new_error (data->call, original->code, "%s (not dead-lettered: %s)",
                              original->message, error->message);
  else
    bp_call_return_new_error (data->call, original->code, "%s (dead-lettered as entry %" G_GUINT64_FORMAT ")",
                              original->message, id);
  g_error_free (original);
  send_data_free (data);
}

static void
send_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  SendData *data = user_data;
  GError *error = NULL;
  guint attempts = 0;

  if (bp_backend_call_finish (BP_BACKEND (source), result, NULL, &attempts, &error))
    {
      bp_call_return_value (data->call, NULL);
      send_data_free (data);
      return;
    }
  if (!data->dead_letter || g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      bp_call_return_error (data->call, error);
      g_error_free (error);
      send_data_free (data);
      return;
    }
  g_object_set_data (G_OBJECT (data->call), "echo-error", error);
  bp_backend_dead_letter_async (BP_BACKEND (source), "Echo.Send", g_variant_new_string (data->text),
                                data->key, error, attempts, NULL, send_dead_lettered_cb, data);
}

static gboolean
handle_send (BpDBusEcho            *iface,
             GDBusMethodInvocation *invocation,
             const char            *text,
             GVariant              *options,
             gpointer               user_data)
{
  BpEchoBackend *self = user_data;
  SendData *data = g_new0 (SendData, 1);
  DeliverOp *op;
  GVariantIter iter;
  const char *key;
  GVariant *value;

  data->call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  data->text = g_strdup (text);
  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) v = value;

      if (g_str_equal (key, "idempotency-key") && g_variant_is_of_type (v, G_VARIANT_TYPE_STRING))
        data->key = g_variant_dup_string (v, NULL);
      else if (g_str_equal (key, "dead-letter") && g_variant_is_of_type (v, G_VARIANT_TYPE_BOOLEAN))
        data->dead_letter = g_variant_get_boolean (v);
      else
        {
          bp_call_return_new_error (data->call, BP_ERROR_INVALID_ARGUMENT,
                                    "options: unknown key or wrong type “%s”", key);
          send_data_free (data);
          return G_DBUS_METHOD_INVOCATION_HANDLED;
        }
    }
  if (data->dead_letter && data->key == NULL)
    {
      bp_call_return_new_error (data->call, BP_ERROR_INVALID_ARGUMENT,
                                "options: dead-letter needs an idempotency-key");
      send_data_free (data);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  op = g_new0 (DeliverOp, 1);
  op->self = g_object_ref (self);
  op->text = g_strdup (text);
  bp_backend_call_async (BP_BACKEND (self), &deliver_op, op, (GDestroyNotify) deliver_op_free,
                         data->key != NULL ? BP_IDEMPOTENCY_KEYED : BP_IDEMPOTENCY_UNSAFE,
                         bp_call_get_cancellable (data->call), send_done_cb, data);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_set_online (BpDBusEcho            *iface,
                   GDBusMethodInvocation *invocation,
                   gboolean               online,
                   gpointer               user_data)
{
  BpEchoBackend *self = user_data;

  self->online = online;
  bp_backend_set_state (BP_BACKEND (self), online ? BP_BACKEND_STATE_READY : BP_BACKEND_STATE_UNAVAILABLE,
                        online ? NULL : "offline (SetOnline)");
  bp_dbus_echo_complete_set_online (iface, invocation);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
bp_echo_backend_replay_async (BpBackend           *backend,
                              const char          *operation,
                              GVariant            *payload,
                              const char          *idempotency_key,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  BpEchoBackend *self = BP_ECHO_BACKEND (backend);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  if (!g_str_equal (operation, "Echo.Send") || payload == NULL ||
      !g_variant_is_of_type (payload, G_VARIANT_TYPE_STRING))
    g_task_return_new_error (task, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "cannot replay “%s”", operation);
  else if (!self->online)
    g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, "the echo server is offline");
  else
    {
      deliver (self, g_variant_get_string (payload, NULL));
      g_task_return_boolean (task, TRUE);
    }
}

static gboolean
bp_echo_backend_replay_finish (BpBackend     *backend,
                               GAsyncResult  *result,
                               GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static gboolean
bp_echo_backend_configure (BpBackend        *backend,
                           BpConfigSection  *section,
                           GError          **error)
{
  BpEchoBackend *self = BP_ECHO_BACKEND (backend);

  return bp_config_section_get_uint (section, "max-length", 1024 * 1024, 0, 64 * 1024 * 1024,
                                     &self->max_length, error) &&
         bp_config_section_get_uint (section, "max-sleep-ms", 60000, 0, 3600000,
                                     &self->max_sleep_ms, error);
}

static void
bp_echo_backend_dispose (GObject *object)
{
  BpEchoBackend *self = BP_ECHO_BACKEND (object);

  g_clear_object (&self->iface);
  g_clear_pointer (&self->delivered, g_ptr_array_unref);
  G_OBJECT_CLASS (bp_echo_backend_parent_class)->dispose (object);
}

static void
bp_echo_backend_class_init (BpEchoBackendClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = bp_echo_backend_dispose;
  BP_BACKEND_CLASS (klass)->configure = bp_echo_backend_configure;
  BP_BACKEND_CLASS (klass)->replay_async = bp_echo_backend_replay_async;
  BP_BACKEND_CLASS (klass)->replay_finish = bp_echo_backend_replay_finish;
}

static void
bp_echo_backend_init (BpEchoBackend *self)
{
  self->online = TRUE;
  self->delivered = g_ptr_array_new_null_terminated (0, g_free, TRUE);
  self->iface = bp_dbus_echo_skeleton_new ();
  g_signal_connect (self->iface, "handle-send", G_CALLBACK (handle_send), self);
  g_signal_connect (self->iface, "handle-set-online", G_CALLBACK (handle_set_online), self);
  g_signal_connect (self->iface, "handle-echo", G_CALLBACK (handle_echo), self);
  g_signal_connect (self->iface, "handle-sleep", G_CALLBACK (handle_sleep), self);
  bp_backend_add_interface (BP_BACKEND (self), G_DBUS_INTERFACE_SKELETON (self->iface));
}
