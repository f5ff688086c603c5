/* bp-shell-backend.c: backend type `shell`
 *
 * Serves org.backplane.Backplane1.Shell: Run (to completion, output in the
 * reply) and Spawn (a per-client Process object, output as batched unicast
 * signals). Programs come from the `allow=` list, resolved when the
 * configuration is loaded. Every caller-controlled size has a configured
 * bound, and concurrent processes are bounded overall and per caller; a
 * slot is given back when the process has been reaped.
 *
 * Configuration keys (besides the common ones):
 *   allow                     `;`-separated program names or absolute paths
 *   max-processes             concurrent processes, all callers (16)
 *   max-processes-per-caller  concurrent processes of one caller (max-processes)
 *   max-output                default and largest max-output per stream (16 MiB)
 *   max-stdin                 largest stdin in the call (16 MiB)
 *   max-args, max-env         argv elements (4096), environment entries (1024)
 *   default-timeout-ms        timeout when the caller gives none (0: none,
 *                             or max-timeout-ms when that is set)
 *   max-timeout-ms            largest timeout (0: unbounded)
 *   kill-grace-ms             SIGTERM to SIGKILL on timeout/cancel (2000)
 *   process-linger-ms         how long a Process object stays after exit (60000)
 *
 * Context: main context only. Process I/O is asynchronous on GSubprocess;
 * nothing here blocks. Nothing to start: the base class's start_async
 * suffices (the daemon ignores SIGPIPE in main(), so a write to the stdin
 * of a child that exited is EPIPE, not the end of the daemon).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "bp-shell-allowlist.h"
#include "bp-shell-backend.h"
#include "bp-shell-dbus.h"
#include "bp-shell-process.h"
#include "bp-shell-process-object.h"
#include "bp-shell-quota.h"
#include "bp-shell-util.h"

#define DAY_MS            (G_GUINT64_CONSTANT (24) * 3600 * 1000)
#define STOP_EXTRA_US     (5 * G_USEC_PER_SEC)
#define HEALTH_TIMEOUT_MS 10000

typedef struct _RunCall RunCall;

struct _BpShellBackend
{
  BpBackend          parent_instance;

  BpDBusShell       *iface;           /* (owned) */
  BpShellAllowlist  *allowlist;       /* (owned) (nullable): set by configure */
  BpShellQuota      *quota;           /* (owned) */
  GPtrArray         *objects;         /* (owned) (element-type BpShellProcessObject): live Process objects */
  GPtrArray         *runs;            /* (element-type RunCall): Runs in flight, not owned */
  char              *health_program;  /* (owned) (nullable) */
  GTask             *stop_task;       /* (owned) (nullable): while stopping */
  GSource           *stop_source;     /* (owned) (nullable): bound on the stop wait */
  BpShellLimits      limits;
  guint64            default_timeout_ms;
  guint64            kill_grace_ms;
  guint64            linger_ms;
};

G_DEFINE_FINAL_TYPE (BpShellBackend, bp_shell_backend, BP_TYPE_BACKEND)

static void maybe_finish_stop (BpShellBackend *self);

/* The handler of a generated skeleton owns @invocation; the call takes
 * that reference over and answers it. */
static BpCall *
shell_call_new (BpShellBackend        *self,
                GDBusMethodInvocation *invocation)
{
  return bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
}

static gint64
now_us (BpShellBackend *self)
{
  return bp_clock_get_time (bp_backend_get_clock (BP_BACKEND (self)));
}

/* ------------------------------------------------------------------------ */
/* Quota slots: taken before a spawn, given back when the process is reaped */

typedef struct
{
  BpShellBackend *self;    /* (owned) */
  char           *caller;  /* (owned) */
} QuotaSlot;

static QuotaSlot *
quota_slot_new (BpShellBackend *self,
                const char     *caller)
{
  QuotaSlot *slot = g_new0 (QuotaSlot, 1);

  slot->self = g_object_ref (self);
  slot->caller = g_strdup (caller);
  return slot;
}

static void
quota_slot_release (QuotaSlot *slot)
{
  if (slot == NULL)
    return;
  bp_shell_quota_release (slot->self->quota, slot->caller);
  maybe_finish_stop (slot->self);
  g_clear_object (&slot->self);
  g_free (slot->caller);
  g_free (slot);
}

static void
slot_process_exited_cb (BpShellProcess *process,
                        int             exit_code,
                        int             term_signal,
                        gpointer        user_data)
{
  QuotaSlot **slotp = user_data;

  g_clear_pointer (slotp, quota_slot_release);
}

static void
slot_closure_free (gpointer  data,
                   GClosure *closure)
{
  QuotaSlot **slotp = data;

  /* The process went away without an exit we saw (cannot happen once it
   * was spawned, but keep the count right). */
  g_clear_pointer (slotp, quota_slot_release);
  g_free (slotp);
}

/* ------------------------------------------------------------------------ */
/* Parsing a request                                                        */

static gboolean
option_type_error (const char          *key,
                   GVariant            *value,
                   const char          *expected,
                   GError             **error)
{
  g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
               "%s: expected type %s, got %s", key, expected, g_variant_get_type_string (value));
  return FALSE;
}

static gboolean
take_fd_option (BpCall               *call,
                BpShellSpawnOptions  *options,
                BpShellStdio          stdio,
                const char           *key,
                GVariant             *value,
                GError              **error)
{
  int fd;

  if (!g_variant_is_of_type (value, G_VARIANT_TYPE_HANDLE))
    return option_type_error (key, value, "h", error);
  fd = bp_call_steal_fd (call, value, error);
  if (fd < 0)
    {
      g_prefix_error (error, "%s: ", key);
      return FALSE;
    }
  bp_shell_spawn_options_take_fd (options, stdio, fd);
  return TRUE;
}

static gboolean
parse_options (BpShellBackend       *self,
               BpCall               *call,
               GVariant             *dict,
               BpShellSpawnOptions  *options,
               GError              **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *raw;
  gboolean have_timeout = FALSE;

  bp_shell_spawn_options_set_max_output (options, self->limits.max_output);

  g_variant_iter_init (&iter, dict);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &raw))
    {
      g_autoptr(GVariant) value = raw;

      if (g_str_equal (key, "cwd"))
        {
          const char *cwd;
          gsize len;

          if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
            return option_type_error (key, value, "s", error);
          cwd = g_variant_get_string (value, &len);
          bp_shell_spawn_options_set_cwd (options, cwd, len);
        }
      else if (g_str_equal (key, "env"))
        {
          GVariantIter env_iter;
          const char *name, *val;

          if (!g_variant_is_of_type (value, G_VARIANT_TYPE ("a{ss}")))
            return option_type_error (key, value, "a{ss}", error);
          if (g_variant_n_children (value) > self->limits.max_env)
            {
              g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                           "env: %" G_GSIZE_FORMAT " entries exceed the limit of %u",
                           g_variant_n_children (value), self->limits.max_env);
              return FALSE;
            }
          g_variant_iter_init (&env_iter, value);
          while (g_variant_iter_next (&env_iter, "{&s&s}", &name, &val))
            bp_shell_spawn_options_set_env (options, name, -1, val, -1);
        }
      else if (g_str_equal (key, "clear-env"))
        {
          if (!g_variant_is_of_type (value, G_VARIANT_TYPE_BOOLEAN))
            return option_type_error (key, value, "b", error);
          bp_shell_spawn_options_set_clear_env (options, g_variant_get_boolean (value));
        }
      else if (g_str_equal (key, "stdin"))
        {
          if (g_variant_is_of_type (value, G_VARIANT_TYPE_BYTESTRING))
            {
              g_autoptr(GBytes) bytes = g_variant_get_data_as_bytes (value);
              bp_shell_spawn_options_set_stdin_bytes (options, bytes);
            }
          else if (g_variant_is_of_type (value, G_VARIANT_TYPE_HANDLE))
            {
              if (!take_fd_option (call, options, BP_SHELL_STDIN, key, value, error))
                return FALSE;
            }
          else
            return option_type_error (key, value, "ay or h", error);
        }
      else if (g_str_equal (key, "stdout"))
        {
          if (!take_fd_option (call, options, BP_SHELL_STDOUT, key, value, error))
            return FALSE;
        }
      else if (g_str_equal (key, "stderr"))
        {
          if (!take_fd_option (call, options, BP_SHELL_STDERR, key, value, error))
            return FALSE;
        }
      else if (g_str_equal (key, "timeout-ms"))
        {
          if (!g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
            return option_type_error (key, value, "u", error);
          bp_shell_spawn_options_set_timeout_ms (options, g_variant_get_uint32 (value));
          have_timeout = TRUE;
        }
      else if (g_str_equal (key, "max-output"))
        {
          if (!g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
            return option_type_error (key, value, "u", error);
          if (g_variant_get_uint32 (value) == 0)
            {
              g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                   "max-output: must be at least 1");
              return FALSE;
            }
          bp_shell_spawn_options_set_max_output (options, g_variant_get_uint32 (value));
        }
      else
        {
          g_autofree char *desc = bp_shell_describe_string (key, -1);

          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "unknown option %s", desc);
          return FALSE;
        }
    }

  if (!have_timeout)
    bp_shell_spawn_options_set_timeout_ms (options, (guint) self->default_timeout_ms);
  return TRUE;
}

/* Builds validated options for Run or Spawn from the call's parameters
 * `(asa{sv})`; argv[0] resolved through the allowlist. */
static BpShellSpawnOptions *
parse_request (BpShellBackend  *self,
               BpCall          *call,
               GError         **error)
{
  GVariant *parameters = g_dbus_method_invocation_get_parameters (bp_call_get_invocation (call));
  g_autoptr(GVariant) argv = g_variant_get_child_value (parameters, 0);
  g_autoptr(GVariant) dict = g_variant_get_child_value (parameters, 1);
  g_autoptr(BpShellSpawnOptions) options = bp_shell_spawn_options_new ();
  const char *program, *resolved;
  gsize n_args = g_variant_n_children (argv);
  gsize len = 0;

  if (n_args > self->limits.max_args)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "argv: %" G_GSIZE_FORMAT " arguments exceed the limit of %u",
                   n_args, self->limits.max_args);
      return NULL;
    }
  for (gsize i = 0; i < n_args; i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (argv, i);
      const char *arg = g_variant_get_string (child, &len);

      bp_shell_spawn_options_add_arg (options, arg, len);
    }

  if (!parse_options (self, call, dict, options, error))
    return NULL;
  bp_shell_spawn_options_set_kill_grace_ms (options, (guint) self->kill_grace_ms);
  bp_shell_spawn_options_set_clock (options, bp_backend_get_clock (BP_BACKEND (self)));

  if (!bp_shell_spawn_options_check_limits (options, &self->limits, error))
    return NULL;

  program = bp_shell_spawn_options_get_program (options, &len);
  if (program == NULL)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "argv: must not be empty");
      return NULL;
    }
  resolved = bp_shell_allowlist_lookup (self->allowlist, program, len, error);
  if (resolved == NULL)
    return NULL;
  bp_shell_spawn_options_set_program (options, resolved);

  if (!bp_shell_spawn_options_validate (options, error))
    return NULL;
  return g_steal_pointer (&options);
}

static gboolean
check_serving (BpShellBackend  *self,
               GError         **error)
{
  if (self->stop_task != NULL || self->allowlist == NULL)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_UNAVAILABLE, "the shell backend is not serving");
      return FALSE;
    }
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Run                                                                      */

struct _RunCall
{
  BpShellBackend *self;         /* (owned) */
  BpCall         *call;         /* (owned) */
  GCancellable   *cancellable;  /* (owned): call vanished or backend stopping */
  QuotaSlot      *slot;         /* (owned) */
  gulong          cancel_handler;
  gint64          started_us;
};

static void
run_call_free (RunCall *rc)
{
  g_cancellable_disconnect (bp_call_get_cancellable (rc->call), rc->cancel_handler);
  g_ptr_array_remove_fast (rc->self->runs, rc);
  g_clear_pointer (&rc->slot, quota_slot_release);
  g_clear_object (&rc->cancellable);
  g_clear_object (&rc->call);
  g_clear_object (&rc->self);
  g_free (rc);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (RunCall, run_call_free)

/* Runs where the call's cancellable is cancelled: the main context. */
static void
run_call_cancelled_cb (GCancellable *cancellable,
                       gpointer      user_data)
{
  RunCall *rc = user_data;

  g_cancellable_cancel (rc->cancellable);
}

static GVariant *
bytes_or_empty (GBytes *bytes)
{
  if (bytes == NULL)
    return g_variant_new_from_data (G_VARIANT_TYPE_BYTESTRING, "", 0, TRUE, NULL, NULL);
  return g_variant_new_from_bytes (G_VARIANT_TYPE_BYTESTRING, bytes, TRUE);
}

static void
run_done_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(RunCall) rc = user_data;
  g_autoptr(BpShellRunResult) run = NULL;
  g_autoptr(GError) error = NULL;

  run = bp_shell_process_run_finish (result, &error);
  bp_backend_record_latency (BP_BACKEND (rc->self), now_us (rc->self) - rc->started_us, run != NULL);
  if (run == NULL)
    {
      bp_call_return_error (rc->call, error);
      return;
    }
  bp_call_return_value (rc->call, g_variant_new ("(ii@ay@ay)", run->exit_code, run->term_signal,
                                                 bytes_or_empty (run->stdout_bytes),
                                                 bytes_or_empty (run->stderr_bytes)));
}

static gboolean
handle_run (BpDBusShell           *iface,
            GDBusMethodInvocation *invocation,
            GUnixFDList           *fd_list,
            const char * const    *argv,
            GVariant              *dict,
            gpointer               user_data)
{
  BpShellBackend *self = user_data;
  g_autoptr(BpCall) call = shell_call_new (self, invocation);
  g_autoptr(BpShellSpawnOptions) options = NULL;
  g_autoptr(GError) error = NULL;
  RunCall *rc;

  if (!check_serving (self, &error) ||
      (options = parse_request (self, call, &error)) == NULL ||
      !bp_shell_quota_acquire (self->quota, bp_call_get_sender (call), &error))
    {
      bp_call_return_error (call, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  rc = g_new0 (RunCall, 1);
  rc->self = g_object_ref (self);
  rc->call = g_steal_pointer (&call);
  rc->slot = quota_slot_new (self, bp_call_get_sender (rc->call));
  rc->cancellable = g_cancellable_new ();
  rc->started_us = now_us (self);
  g_ptr_array_add (self->runs, rc);
  rc->cancel_handler = g_cancellable_connect (bp_call_get_cancellable (rc->call),
                                              G_CALLBACK (run_call_cancelled_cb), rc, NULL);

  /* Spawns now; the options (and our copies of any fds) go right after. */
  bp_shell_process_run_async (options, rc->cancellable, run_done_cb, rc);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ------------------------------------------------------------------------ */
/* Spawn                                                                    */

static void
object_released_cb (BpShellProcessObject *object,
                    gpointer              user_data)
{
  BpShellBackend *self = user_data;

  g_signal_handlers_disconnect_by_data (object, self);
  g_ptr_array_remove_fast (self->objects, object);
}

static gboolean
handle_spawn (BpDBusShell           *iface,
              GDBusMethodInvocation *invocation,
              GUnixFDList           *fd_list,
              const char * const    *argv,
              GVariant              *dict,
              gpointer               user_data)
{
  BpShellBackend *self = user_data;
  BpBackend *backend = BP_BACKEND (self);
  g_autoptr(BpCall) call = shell_call_new (self, invocation);
  g_autoptr(BpShellSpawnOptions) options = NULL;
  g_autoptr(BpShellProcess) process = NULL;
  g_autoptr(BpShellProcessObject) object = NULL;
  g_autoptr(GError) error = NULL;
  const char *sender = bp_call_get_sender (call);
  QuotaSlot **slotp;
  gint64 started = now_us (self);

  if (!check_serving (self, &error))
    {
      bp_call_return_error (call, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if (sender == NULL || sender[0] != ':')
    {
      bp_call_return_new_error (call, BP_ERROR_FAILED, "Spawn needs a caller with a unique bus name");
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  if ((options = parse_request (self, call, &error)) == NULL ||
      !bp_shell_quota_acquire (self->quota, sender, &error))
    {
      bp_call_return_error (call, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  process = bp_shell_process_spawn (options, &error);
  /* Our copies of the caller's fds go now: only the child holds them. */
  g_clear_pointer (&options, bp_shell_spawn_options_free);
  if (process == NULL)
    {
      bp_shell_quota_release (self->quota, sender);
      bp_backend_record_latency (backend, now_us (self) - started, FALSE);
      bp_call_return_error (call, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }

  slotp = g_new0 (QuotaSlot *, 1);
  *slotp = quota_slot_new (self, sender);
  g_signal_connect_data (process, "exited", G_CALLBACK (slot_process_exited_cb),
                         slotp, slot_closure_free, 0);

  object = bp_shell_process_object_new (bp_backend_get_host (backend), process, sender,
                                        bp_backend_get_clock (backend),
                                        (gint64) self->linger_ms * G_TIME_SPAN_MILLISECOND);
  if (!bp_shell_process_object_export (object, &error))
    {
      bp_shell_process_close (process);
      bp_backend_record_latency (backend, now_us (self) - started, FALSE);
      bp_call_return_error (call, error);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  g_signal_connect (object, "released", G_CALLBACK (object_released_cb), self);
  g_ptr_array_add (self->objects, g_object_ref (object));

  bp_backend_record_latency (backend, now_us (self) - started, TRUE);
  bp_call_return_value (call, g_variant_new ("(o)", bp_shell_process_object_get_path (object)));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ------------------------------------------------------------------------ */
/* BpBackend                                                                */

static gboolean
bp_shell_backend_configure (BpBackend        *backend,
                            BpConfigSection  *section,
                            GError          **error)
{
  BpShellBackend *self = BP_SHELL_BACKEND (backend);
  g_autofree char *allow = bp_config_section_get_string (section, "allow", NULL);
  const char *group = bp_config_section_get_group (section);
  guint64 max_processes, per_caller, max_output, max_stdin, max_args, max_env, max_timeout;
  g_autoptr(BpShellAllowlist) allowlist = NULL;

  if (!bp_config_section_get_uint (section, "max-processes", 16, 1, 4096, &max_processes, error) ||
      !bp_config_section_get_uint (section, "max-processes-per-caller", max_processes, 1, 4096, &per_caller, error) ||
      !bp_config_section_get_uint (section, "max-output", BP_SHELL_DEFAULT_MAX_OUTPUT, 1, G_MAXUINT32, &max_output, error) ||
      !bp_config_section_get_uint (section, "max-stdin", 16 * 1024 * 1024, 0, G_MAXUINT32, &max_stdin, error) ||
      !bp_config_section_get_uint (section, "max-args", 4096, 1, 65536, &max_args, error) ||
      !bp_config_section_get_uint (section, "max-env", 1024, 0, 65536, &max_env, error) ||
      !bp_config_section_get_uint (section, "default-timeout-ms", 0, 0, DAY_MS, &self->default_timeout_ms, error) ||
      !bp_config_section_get_uint (section, "max-timeout-ms", 0, 0, DAY_MS, &max_timeout, error) ||
      !bp_config_section_get_uint (section, "kill-grace-ms", BP_SHELL_DEFAULT_KILL_GRACE_MS, 0, 60000, &self->kill_grace_ms, error) ||
      !bp_config_section_get_uint (section, "process-linger-ms", 60000, 0, DAY_MS, &self->linger_ms, error))
    return FALSE;

  if (max_timeout > 0 && self->default_timeout_ms == 0)
    self->default_timeout_ms = max_timeout;
  if (max_timeout > 0 && self->default_timeout_ms > max_timeout)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "[%s] default-timeout-ms exceeds max-timeout-ms", group);
      return FALSE;
    }

  /* Resolves names on PATH: a few stat() calls, at configuration time. */
  allowlist = bp_shell_allowlist_new_from_string (allow, NULL, error);
  if (allowlist == NULL)
    {
      g_prefix_error (error, "[%s] ", group);
      return FALSE;
    }

  bp_shell_limits_init (&self->limits);
  self->limits.max_args = (guint) max_args;
  self->limits.max_env = (guint) max_env;
  self->limits.max_stdin = max_stdin;
  self->limits.max_output = max_output;
  self->limits.max_timeout_ms = (guint) max_timeout;
  bp_shell_quota_set_limits (self->quota, (guint) max_processes, (guint) per_caller);
  g_set_object (&self->allowlist, allowlist);
  g_clear_pointer (&self->health_program, g_free);
  self->health_program = g_find_program_in_path ("true");
  return TRUE;
}

static void
finish_stop (BpShellBackend *self)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->stop_task);

  if (self->stop_source != NULL)
    {
      g_source_destroy (self->stop_source);
      g_clear_pointer (&self->stop_source, g_source_unref);
    }
  if (task != NULL)
    g_task_return_boolean (task, TRUE);
}

static void
maybe_finish_stop (BpShellBackend *self)
{
  if (self->stop_task != NULL && bp_shell_quota_get_n_total (self->quota) == 0)
    finish_stop (self);
}

static gboolean
stop_timeout_cb (gpointer user_data)
{
  BpShellBackend *self = user_data;

  g_clear_pointer (&self->stop_source, g_source_unref);
  g_debug ("%u process(es) not reaped yet; stopping anyway", bp_shell_quota_get_n_total (self->quota));
  finish_stop (self);
  return G_SOURCE_REMOVE;
}

static void
bp_shell_backend_stop_async (BpBackend           *backend,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  BpShellBackend *self = BP_SHELL_BACKEND (backend);
  g_autoptr(GTask) task = g_task_new (backend, cancellable, callback, user_data);
  g_autoptr(GPtrArray) objects = NULL;
  g_autoptr(GPtrArray) runs = NULL;

  g_task_set_source_tag (task, bp_shell_backend_stop_async);
  if (self->stop_task != NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED, "already stopping");
      return;
    }
  self->stop_task = g_steal_pointer (&task);

  /* Kill every process group, then wait (bounded) until all are reaped. */
  objects = g_ptr_array_copy (self->objects, (GCopyFunc) g_object_ref, NULL);
  g_ptr_array_set_free_func (objects, g_object_unref);
  for (guint i = 0; i < objects->len; i++)
    bp_shell_process_object_release (g_ptr_array_index (objects, i));
  runs = g_ptr_array_copy (self->runs, NULL, NULL);
  for (guint i = 0; i < runs->len; i++)
    g_cancellable_cancel (((RunCall *) g_ptr_array_index (runs, i))->cancellable);

  self->stop_source = bp_clock_timeout_source_new (bp_backend_get_clock (backend),
                                                   (gint64) self->kill_grace_ms * G_TIME_SPAN_MILLISECOND + STOP_EXTRA_US);
  g_source_set_callback (self->stop_source, stop_timeout_cb, self, NULL);
  g_source_attach (self->stop_source, g_main_context_get_thread_default ());
  maybe_finish_stop (self);
}

static gboolean
bp_shell_backend_stop_finish (BpBackend     *backend,
                              GAsyncResult  *result,
                              GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
health_run_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpShellBackend *self = g_task_get_source_object (task);
  g_autoptr(BpShellRunResult) run = NULL;
  g_autoptr(GError) error = NULL;
  gint64 started = GPOINTER_TO_SIZE (g_task_get_task_data (task));

  run = bp_shell_process_run_finish (result, &error);
  if (run == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (run->exit_code != 0)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_BACKEND, "%s exited with %d (signal %d)",
                               self->health_program, run->exit_code, run->term_signal);
      return;
    }
  g_task_return_pointer (task,
                         g_strdup_printf ("spawned and reaped %s in %" G_GINT64_FORMAT " us; "
                                          "%u process(es) running, %u Process object(s)",
                                          self->health_program, now_us (self) - started,
                                          bp_shell_quota_get_n_total (self->quota), self->objects->len),
                         g_free);
}

static void
bp_shell_backend_check_health_async (BpBackend           *backend,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  BpShellBackend *self = BP_SHELL_BACKEND (backend);
  g_autoptr(GTask) task = g_task_new (backend, cancellable, callback, user_data);
  g_autoptr(BpShellSpawnOptions) options = NULL;

  g_task_set_source_tag (task, bp_shell_backend_check_health_async);
  if (self->health_program == NULL)
    {
      g_task_return_pointer (task, g_strdup ("no `true` program on PATH to test spawning with"), g_free);
      return;
    }

  /* Real work: fork, exec and reap a child, outside the callers' quota. */
  options = bp_shell_spawn_options_new ();
  bp_shell_spawn_options_add_arg (options, self->health_program, -1);
  bp_shell_spawn_options_set_timeout_ms (options, HEALTH_TIMEOUT_MS);
  bp_shell_spawn_options_set_kill_grace_ms (options, 0);
  g_task_set_task_data (task, GSIZE_TO_POINTER (now_us (self)), NULL);
  bp_shell_process_run_async (options, cancellable, health_run_cb, g_steal_pointer (&task));
}

static GVariant *
bp_shell_backend_dup_pool_stats (BpBackend *backend)
{
  BpShellBackend *self = BP_SHELL_BACKEND (backend);
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "in-use", "u", bp_shell_quota_get_n_total (self->quota));
  g_variant_dict_insert (&dict, "processes", "u", self->objects->len);
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

static void
bp_shell_backend_dispose (GObject *object)
{
  BpShellBackend *self = BP_SHELL_BACKEND (object);

  if (self->objects != NULL)
    {
      g_autoptr(GPtrArray) objects = g_steal_pointer (&self->objects);

      for (guint i = 0; i < objects->len; i++)
        {
          g_signal_handlers_disconnect_by_data (g_ptr_array_index (objects, i), self);
          bp_shell_process_object_release (g_ptr_array_index (objects, i));
        }
      self->objects = g_ptr_array_new_with_free_func (g_object_unref);
    }
  if (self->stop_source != NULL)
    {
      g_source_destroy (self->stop_source);
      g_clear_pointer (&self->stop_source, g_source_unref);
    }
  g_clear_object (&self->iface);
  g_clear_object (&self->allowlist);

  G_OBJECT_CLASS (bp_shell_backend_parent_class)->dispose (object);
}

static void
bp_shell_backend_finalize (GObject *object)
{
  BpShellBackend *self = BP_SHELL_BACKEND (object);

  g_assert (self->stop_task == NULL);
  g_assert (self->runs->len == 0);
  g_clear_pointer (&self->objects, g_ptr_array_unref);
  g_clear_pointer (&self->runs, g_ptr_array_unref);
  g_clear_pointer (&self->health_program, g_free);
  g_clear_object (&self->quota);

  G_OBJECT_CLASS (bp_shell_backend_parent_class)->finalize (object);
}

static void
bp_shell_backend_class_init (BpShellBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  BpBackendClass *backend_class = BP_BACKEND_CLASS (klass);

  object_class->dispose = bp_shell_backend_dispose;
  object_class->finalize = bp_shell_backend_finalize;
  backend_class->configure = bp_shell_backend_configure;
  backend_class->stop_async = bp_shell_backend_stop_async;
  backend_class->stop_finish = bp_shell_backend_stop_finish;
  backend_class->check_health_async = bp_shell_backend_check_health_async;
  backend_class->dup_pool_stats = bp_shell_backend_dup_pool_stats;
}

static void
bp_shell_backend_init (BpShellBackend *self)
{
  bp_shell_limits_init (&self->limits);
  self->limits.max_output = BP_SHELL_DEFAULT_MAX_OUTPUT;
  self->kill_grace_ms = BP_SHELL_DEFAULT_KILL_GRACE_MS;
  self->linger_ms = 60000;
  self->quota = bp_shell_quota_new (16, 16);
  self->objects = g_ptr_array_new_with_free_func (g_object_unref);
  self->runs = g_ptr_array_new ();

  self->iface = bp_dbus_shell_skeleton_new ();
  g_signal_connect (self->iface, "handle-run", G_CALLBACK (handle_run), self);
  g_signal_connect (self->iface, "handle-spawn", G_CALLBACK (handle_spawn), self);
  bp_backend_add_interface (BP_BACKEND (self), G_DBUS_INTERFACE_SKELETON (self->iface));
}
