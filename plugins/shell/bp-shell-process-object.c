/* bp-shell-process-object.c: the per-client org.backplane.Backplane1.Process object
 *
 * One object per BpShellProcess started with Shell.Spawn, exported at
 * /org/backplane/Backplane1/client/NAME/processN. It is a hand-written
 * GDBusInterfaceSkeleton (the interface info comes from gdbus-codegen)
 * rather than the generated skeleton, because everything about it is for
 * its owner only:
 *   - methods from anyone else get PermissionDenied (bp_host_check_owner()),
 *     and so do property reads;
 *   - Output, Exited and PropertiesChanged are unicast to the owner; the
 *     generated skeleton would broadcast them.
 *
 * It is released (process group SIGKILL, unexported, `released` emitted)
 * on Close, when the owner disconnects, when the backend stops, or
 * process-linger-ms after the process exited. The BpShellProcess itself
 * lives on until it is reaped.
 *
 * Context: main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-shell-dbus.h"
#include "bp-shell-process-object.h"

#define PROCESS_IFACE "org.backplane.Backplane1.Process"

struct _BpShellProcessObject
{
  GDBusInterfaceSkeleton  parent_instance;

  BpHost                 *host;          /* (owned) */
  BpShellProcess         *process;       /* (owned) */
  BpClock                *clock;         /* (owned) */
  char                   *owner;         /* (owned) */
  char                   *path;          /* (owned) (nullable): set by export */
  GSource                *linger_source; /* (owned) (nullable) */
  gint64                  linger_us;
  gulong                  output_handler;
  gulong                  exited_handler;
  guint                   watch_id;
  gboolean                released;
};

G_DEFINE_FINAL_TYPE (BpShellProcessObject, bp_shell_process_object, G_TYPE_DBUS_INTERFACE_SKELETON)

enum {
  SIGNAL_RELEASED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void
emit_to_owner (BpShellProcessObject *self,
               const char           *interface_name,
               const char           *signal_name,
               GVariant             *parameters)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (parameters);
  g_autoptr(GError) error = NULL;
  GDBusConnection *connection = bp_host_get_connection (self->host);

  if (connection == NULL || self->released || self->path == NULL)
    return;
  if (!g_dbus_connection_emit_signal (connection, self->owner, self->path, interface_name,
                                      signal_name, owned, &error))
    g_debug ("%s: %s.%s: %s", self->path, interface_name, signal_name, error->message);
}

static GVariant *
dup_property (BpShellProcessObject *self,
              const char           *name)
{
  if (g_str_equal (name, "Pid"))
    return g_variant_new_uint32 (bp_shell_process_get_pid (self->process));
  if (g_str_equal (name, "Argv"))
    return g_variant_new_strv (bp_shell_process_get_argv (self->process), -1);
  if (g_str_equal (name, "State"))
    return g_variant_new_string (bp_shell_process_state_to_string (bp_shell_process_get_state (self->process)));
  if (g_str_equal (name, "ExitCode"))
    return g_variant_new_int32 (bp_shell_process_get_exit_code (self->process));
  if (g_str_equal (name, "TermSignal"))
    return g_variant_new_int32 (bp_shell_process_get_term_signal (self->process));
  return NULL;
}

/* ------------------------------------------------------------------------ */
/* Release                                                                  */

static gboolean
linger_cb (gpointer user_data)
{
  BpShellProcessObject *self = user_data;

  g_clear_pointer (&self->linger_source, g_source_unref);
  bp_shell_process_object_release (self);
  return G_SOURCE_REMOVE;
}

static void
owner_vanished_cb (const char *unique_name,
                   gpointer    user_data)
{
  BpShellProcessObject *self = user_data;

  g_debug ("%s: owner %s vanished", self->path, unique_name);
  self->watch_id = 0;
  bp_shell_process_object_release (self);
}

/**
 * bp_shell_process_object_release:
 * @self: a process object
 *
 * Kills the process group if the child still runs, stops all signals,
 * unexports the object and emits `released`. Idempotent.
 */
void
bp_shell_process_object_release (BpShellProcessObject *self)
{
  g_return_if_fail (BP_IS_SHELL_PROCESS_OBJECT (self));

  if (self->released)
    return;

  g_object_ref (self);
  self->released = TRUE;
  bp_shell_process_close (self->process);
  g_clear_signal_handler (&self->output_handler, self->process);
  g_clear_signal_handler (&self->exited_handler, self->process);
  if (self->linger_source != NULL)
    {
      g_source_destroy (self->linger_source);
      g_clear_pointer (&self->linger_source, g_source_unref);
    }
  bp_host_unwatch_owner (self->host, self->watch_id);
  self->watch_id = 0;
  if (self->path != NULL)
    bp_host_unexport (self->host, G_DBUS_INTERFACE_SKELETON (self));
  g_signal_emit (self, signals[SIGNAL_RELEASED], 0);
  g_object_unref (self);
}

/* ------------------------------------------------------------------------ */
/* Process events                                                           */

static void
process_output_cb (BpShellProcess *process,
                   GVariant       *lines,
                   gpointer        user_data)
{
  BpShellProcessObject *self = user_data;

  emit_to_owner (self, PROCESS_IFACE, "Output", g_variant_new_tuple (&lines, 1));
}

static void
process_exited_cb (BpShellProcess *process,
                   int             exit_code,
                   int             term_signal,
                   gpointer        user_data)
{
  BpShellProcessObject *self = user_data;
  GVariantBuilder changed;
  static const char * const names[] = { "State", "ExitCode", "TermSignal" };

  g_variant_builder_init (&changed, G_VARIANT_TYPE_VARDICT);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    g_variant_builder_add (&changed, "{sv}", names[i], dup_property (self, names[i]));
  emit_to_owner (self, "org.freedesktop.DBus.Properties", "PropertiesChanged",
                 g_variant_new ("(sa{sv}as)", PROCESS_IFACE, &changed, NULL));
  emit_to_owner (self, PROCESS_IFACE, "Exited", g_variant_new ("(ii)", exit_code, term_signal));

  if (!self->released && self->linger_source == NULL)
    {
      self->linger_source = bp_clock_timeout_source_new (self->clock, self->linger_us);
      g_source_set_callback (self->linger_source, linger_cb, self, NULL);
      g_source_attach (self->linger_source, g_main_context_get_thread_default ());
    }
}

/* ------------------------------------------------------------------------ */
/* Methods                                                                  */

static void
wait_done_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(BpCall) call = user_data;
  g_autoptr(GError) error = NULL;
  int exit_code = -1, term_signal = 0;

  if (!bp_shell_process_wait_finish (BP_SHELL_PROCESS (object), result, &exit_code, &term_signal, &error))
    bp_call_return_error (call, error);
  else
    bp_call_return_value (call, g_variant_new ("(ii)", exit_code, term_signal));
}

static void
method_call (GDBusConnection       *connection,
             const char            *sender,
             const char            *object_path,
             const char            *interface_name,
             const char            *method_name,
             GVariant              *parameters,
             GDBusMethodInvocation *invocation,
             gpointer               user_data)
{
  BpShellProcessObject *self = BP_SHELL_PROCESS_OBJECT (user_data);
  g_autoptr(BpCall) call = NULL;
  g_autoptr(GError) error = NULL;

  /* @invocation is ours (transfer full); check_owner answers it on refusal,
   * otherwise the call takes it over. */
  if (!bp_host_check_owner (invocation, self->owner))
    return;
  call = bp_call_new (self->host, invocation);

  if (g_str_equal (method_name, "Kill"))
    {
      int signum;

      g_variant_get (parameters, "(i)", &signum);
      if (!bp_shell_process_kill (self->process, signum, &error))
        bp_call_return_error (call, error);
      else
        bp_call_return_value (call, NULL);
    }
  else if (g_str_equal (method_name, "Wait"))
    {
      /* Not in one expression: argument evaluation order is unspecified. */
      GCancellable *cancellable = bp_call_get_cancellable (call);

      bp_shell_process_wait_async (self->process, cancellable, wait_done_cb, g_steal_pointer (&call));
    }
  else if (g_str_equal (method_name, "Close"))
    {
      bp_shell_process_object_release (self);
      bp_call_return_value (call, NULL);
    }
  else
    {
      bp_call_return_new_error (call, BP_ERROR_INVALID_ARGUMENT, "unknown method %s", method_name);
    }
}

static GVariant *
get_property (GDBusConnection  *connection,
                        const char       *sender,
                        const char       *object_path,
                        const char       *interface_name,
                        const char       *property_name,
                        GError          **error,
                        gpointer          user_data)
{
  BpShellProcessObject *self = BP_SHELL_PROCESS_OBJECT (user_data);
  GVariant *value;

  if (sender == NULL || !g_str_equal (sender, self->owner))
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_PERMISSION_DENIED,
                           "This object belongs to another client");
      return NULL;
    }
  value = dup_property (self, property_name);
  if (value == NULL)
    g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "No property %s", property_name);
  return value;
}

static const GDBusInterfaceVTable process_vtable = {
  method_call,
  get_property,
  NULL,
  { 0 }
};

/* ------------------------------------------------------------------------ */
/* GDBusInterfaceSkeleton                                                   */

static GDBusInterfaceInfo *
bp_shell_process_object_get_info (GDBusInterfaceSkeleton *skeleton)
{
  return bp_dbus_process_interface_info ();
}

static GDBusInterfaceVTable *
bp_shell_process_object_get_vtable (GDBusInterfaceSkeleton *skeleton)
{
  return (GDBusInterfaceVTable *) &process_vtable;
}

static GVariant *
bp_shell_process_object_get_properties (GDBusInterfaceSkeleton *skeleton)
{
  BpShellProcessObject *self = BP_SHELL_PROCESS_OBJECT (skeleton);
  static const char * const names[] = { "Pid", "Argv", "State", "ExitCode", "TermSignal" };
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    g_variant_builder_add (&builder, "{sv}", names[i], dup_property (self, names[i]));
  return g_variant_builder_end (&builder);
}

static void
bp_shell_process_object_flush (GDBusInterfaceSkeleton *skeleton)
{
  /* Nothing is deferred. */
}

static void
bp_shell_process_object_dispose (GObject *object)
{
  BpShellProcessObject *self = BP_SHELL_PROCESS_OBJECT (object);

  if (self->process != NULL)
    {
      g_clear_signal_handler (&self->output_handler, self->process);
      g_clear_signal_handler (&self->exited_handler, self->process);
    }
  if (self->linger_source != NULL)
    {
      g_source_destroy (self->linger_source);
      g_clear_pointer (&self->linger_source, g_source_unref);
    }
  if (self->host != NULL && self->watch_id != 0)
    {
      bp_host_unwatch_owner (self->host, self->watch_id);
      self->watch_id = 0;
    }

  G_OBJECT_CLASS (bp_shell_process_object_parent_class)->dispose (object);
}

static void
bp_shell_process_object_finalize (GObject *object)
{
  BpShellProcessObject *self = BP_SHELL_PROCESS_OBJECT (object);

  g_clear_object (&self->process);
  g_clear_object (&self->host);
  g_clear_object (&self->clock);
  g_clear_pointer (&self->owner, g_free);
  g_clear_pointer (&self->path, g_free);

  G_OBJECT_CLASS (bp_shell_process_object_parent_class)->finalize (object);
}

static void
bp_shell_process_object_class_init (BpShellProcessObjectClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GDBusInterfaceSkeletonClass *skeleton_class = G_DBUS_INTERFACE_SKELETON_CLASS (klass);

  object_class->dispose = bp_shell_process_object_dispose;
  object_class->finalize = bp_shell_process_object_finalize;
  skeleton_class->get_info = bp_shell_process_object_get_info;
  skeleton_class->get_vtable = bp_shell_process_object_get_vtable;
  skeleton_class->get_properties = bp_shell_process_object_get_properties;
  skeleton_class->flush = bp_shell_process_object_flush;

  /**
   * BpShellProcessObject::released:
   * @self: the object
   *
   * The object was released and unexported; drop it.
   */
  signals[SIGNAL_RELEASED] =
    g_signal_new ("released",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 0);

}

static void
bp_shell_process_object_init (BpShellProcessObject *self)
{
}

/**
 * bp_shell_process_object_new:
 * @host: the daemon's host
 * @process: the spawned process
 * @owner: the unique bus name of the client that spawned it
 * @clock: the clock of the linger timer
 * @linger_us: how long the object stays after the process exited
 *
 * Returns: (transfer full): a new, unexported object
 */
BpShellProcessObject *
bp_shell_process_object_new (BpHost         *host,
                             BpShellProcess *process,
                             const char     *owner,
                             BpClock        *clock,
                             gint64          linger_us)
{
  BpShellProcessObject *self;

  g_return_val_if_fail (BP_IS_HOST (host), NULL);
  g_return_val_if_fail (BP_IS_SHELL_PROCESS (process), NULL);
  g_return_val_if_fail (owner != NULL, NULL);
  g_return_val_if_fail (BP_IS_CLOCK (clock), NULL);

  self = g_object_new (BP_TYPE_SHELL_PROCESS_OBJECT, NULL);
  self->host = g_object_ref (host);
  self->process = g_object_ref (process);
  self->clock = g_object_ref (clock);
  self->owner = g_strdup (owner);
  self->linger_us = MAX (linger_us, 0);
  self->output_handler = g_signal_connect (process, "output", G_CALLBACK (process_output_cb), self);
  self->exited_handler = g_signal_connect (process, "exited", G_CALLBACK (process_exited_cb), self);
  return self;
}

/**
 * bp_shell_process_object_export:
 * @self: a process object
 * @error: return location for a #GError
 *
 * Exports @self at a fresh client path and starts watching its owner.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_shell_process_object_export (BpShellProcessObject  *self,
                                GError               **error)
{
  g_autofree char *path = NULL;

  g_return_val_if_fail (BP_IS_SHELL_PROCESS_OBJECT (self), FALSE);
  g_return_val_if_fail (self->path == NULL, FALSE);

  path = bp_host_make_client_path (self->host, self->owner, "process");
  if (!bp_host_export (self->host, G_DBUS_INTERFACE_SKELETON (self), path, error))
    return FALSE;
  self->path = g_steal_pointer (&path);
  self->watch_id = bp_host_watch_owner (self->host, self->owner, owner_vanished_cb, self, NULL);
  return TRUE;
}

const char *
bp_shell_process_object_get_path (BpShellProcessObject *self)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS_OBJECT (self), NULL);

  return self->path;
}

const char *
bp_shell_process_object_get_owner (BpShellProcessObject *self)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS_OBJECT (self), NULL);

  return self->owner;
}

/**
 * bp_shell_process_object_get_process:
 * @self: a process object
 *
 * Returns: (transfer none): the process
 */
BpShellProcess *
bp_shell_process_object_get_process (BpShellProcessObject *self)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS_OBJECT (self), NULL);

  return self->process;
}

gboolean
bp_shell_process_object_is_released (BpShellProcessObject *self)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS_OBJECT (self), TRUE);

  return self->released;
}
