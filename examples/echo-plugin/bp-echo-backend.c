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
#include <backplane.h>

#include "bp-echo-backend.h"
#include "bp-echo-dbus.h"

struct _BpEchoBackend
{
  BpBackend      parent_instance;

  BpDBusEcho    *iface;          /* (owned) */
  guint64        max_length;
  guint64        max_sleep_ms;
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
  G_OBJECT_CLASS (bp_echo_backend_parent_class)->dispose (object);
}

static void
bp_echo_backend_class_init (BpEchoBackendClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = bp_echo_backend_dispose;
  BP_BACKEND_CLASS (klass)->configure = bp_echo_backend_configure;
}

static void
bp_echo_backend_init (BpEchoBackend *self)
{
  self->iface = bp_dbus_echo_skeleton_new ();
  g_signal_connect (self->iface, "handle-echo", G_CALLBACK (handle_echo), self);
  g_signal_connect (self->iface, "handle-sleep", G_CALLBACK (handle_sleep), self);
  bp_backend_add_interface (BP_BACKEND (self), G_DBUS_INTERFACE_SKELETON (self->iface));
}
