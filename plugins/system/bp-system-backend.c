/* bp-system-backend.c: backend type `system`
 *
 * Serves org.backplane.Backplane1.System. Every read of /proc or statvfs()
 * runs on the shared BpWorkerPool; handlers on the main context only
 * validate arguments, queue the work and answer when it completes. A full
 * worker queue is LimitExceeded, never a wait.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include "bp-system-backend.h"
#include "bp-system-dbus.h"
#include "bp-system-probe.h"

struct _BpSystemBackend
{
  BpBackend          parent_instance;

  BpDBusSystem      *iface;      /* (owned) */
  BpWorkerPool      *workers;    /* (owned) */
  GMutex             cpu_mutex;
  BpSystemCpuSample  cpu;        /* under cpu_mutex */
  gboolean           have_cpu;   /* under cpu_mutex */
};

G_DEFINE_FINAL_TYPE (BpSystemBackend, bp_system_backend, BP_TYPE_BACKEND)

typedef enum
{
  JOB_STATUS,
  JOB_DISKS,
  JOB_PROCESSES,
  JOB_HEALTH,
} JobKind;

typedef struct
{
  BpSystemBackend *self;      /* (owned) */
  JobKind          kind;
  guint            limit;
  BpSystemSort     sort;
  gint64           uid;
  gint64           started_us;
} Job;

typedef struct
{
  BpCall *call;  /* (owned) */
  Job    *job;   /* (borrowed): freed by the pool */
} JobCall;

static void
job_free (Job *job)
{
  g_clear_object (&job->self);
  g_free (job);
}

/* Runs on a worker thread. */
static gpointer
job_run (gpointer       data,
         GCancellable  *cancellable,
         GError       **error)
{
  Job *job = data;
  BpSystemBackend *self = job->self;

  switch (job->kind)
    {
    case JOB_STATUS:
    case JOB_HEALTH:
      {
        BpSystemCpuSample previous, current;
        gboolean have;
        GVariant *status;

        g_mutex_lock (&self->cpu_mutex);
        previous = self->cpu;
        have = self->have_cpu;
        g_mutex_unlock (&self->cpu_mutex);
        status = bp_system_probe_status (have ? &previous : NULL, &current, error);
        if (status == NULL)
          return NULL;
        g_mutex_lock (&self->cpu_mutex);
        /* Keep a sample old enough to give a meaningful rate next time. */
        if (!self->have_cpu || current.total - self->cpu.total >= 10)
          {
            self->cpu = current;
            self->have_cpu = TRUE;
          }
        g_mutex_unlock (&self->cpu_mutex);
        return status;
      }
    case JOB_DISKS:
      return bp_system_probe_disks (error);
    case JOB_PROCESSES:
      return bp_system_probe_processes (job->limit, job->sort, job->uid, error);
    default:
      g_assert_not_reached ();
    }
}

static void
job_done_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(BpCall) call = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) value = NULL;
  Job *job = g_object_get_data (G_OBJECT (call), "bp-system-job");
  BpBackend *backend = BP_BACKEND (job->self);
  gint64 started = job->started_us;
  JobKind kind = job->kind;

  value = bp_worker_pool_run_finish (BP_WORKER_POOL (source), result, &error);
  bp_backend_record_latency (backend, bp_clock_get_time (bp_backend_get_clock (backend)) - started,
                             value != NULL);
  if (value == NULL)
    {
      if (kind == JOB_HEALTH && !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        bp_call_return_value (call, g_variant_new ("(bs)", FALSE, error->message));
      else
        bp_call_return_error (call, error);
      return;
    }
  bp_call_return_value (call, g_variant_new_tuple (&value, 1));
}

static void
submit (BpSystemBackend *self,
        BpCall          *call,
        Job             *job)
{
  job->self = g_object_ref (self);
  job->started_us = bp_clock_get_time (bp_backend_get_clock (BP_BACKEND (self)));
  /* The job outlives the call's reply only inside the pool; keep a pointer
   * for the completion, which runs before the pool frees it. */
  g_object_set_data (G_OBJECT (call), "bp-system-job", job);
  bp_worker_pool_run_async (self->workers, job_run, job, (GDestroyNotify) job_free,
                            (GDestroyNotify) g_variant_unref,
                            bp_call_get_cancellable (call), job_done_cb, call);
}

static gboolean
handle_get_status (BpDBusSystem          *iface,
                   GDBusMethodInvocation *invocation,
                   gpointer               user_data)
{
  BpSystemBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Job *job = g_new0 (Job, 1);

  job->kind = JOB_STATUS;
  submit (self, call, job);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
handle_list_disks (BpDBusSystem          *iface,
                   GDBusMethodInvocation *invocation,
                   gpointer               user_data)
{
  BpSystemBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Job *job = g_new0 (Job, 1);

  job->kind = JOB_DISKS;
  submit (self, call, job);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static gboolean
parse_process_options (GVariant  *options,
                       Job       *job,
                       GError   **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  job->limit = BP_SYSTEM_MAX_PROCESSES;
  job->sort = BP_SYSTEM_SORT_PID;
  job->uid = -1;
  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) v = value;

      if (g_str_equal (key, "limit") && g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
        {
          job->limit = g_variant_get_uint32 (v);
          if (job->limit == 0 || job->limit > BP_SYSTEM_MAX_PROCESSES)
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           _("limit: must be 1 to %u"), BP_SYSTEM_MAX_PROCESSES);
              return FALSE;
            }
        }
      else if (g_str_equal (key, "sort") && g_variant_is_of_type (v, G_VARIANT_TYPE_STRING))
        {
          const char *s = g_variant_get_string (v, NULL);

          if (g_str_equal (s, "pid"))
            job->sort = BP_SYSTEM_SORT_PID;
          else if (g_str_equal (s, "rss"))
            job->sort = BP_SYSTEM_SORT_RSS;
          else if (g_str_equal (s, "cpu"))
            job->sort = BP_SYSTEM_SORT_CPU;
          else
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           _("sort: “%s” is not pid, rss or cpu"), s);
              return FALSE;
            }
        }
      else if (g_str_equal (key, "user") && g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
        job->uid = g_variant_get_uint32 (v);
      else if (g_str_equal (key, "limit") || g_str_equal (key, "sort") || g_str_equal (key, "user"))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       _("%s: wrong type %s"), key, g_variant_get_type_string (v));
          return FALSE;
        }
      else
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, _("unknown option “%s”"), key);
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
handle_list_processes (BpDBusSystem          *iface,
                       GDBusMethodInvocation *invocation,
                       GVariant              *options,
                       gpointer               user_data)
{
  BpSystemBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  g_autoptr(GError) error = NULL;
  Job *job = g_new0 (Job, 1);

  job->kind = JOB_PROCESSES;
  if (!parse_process_options (options, job, &error))
    {
      job_free (job);
      bp_call_return_error (call, error);
      g_object_unref (call);
      return G_DBUS_METHOD_INVOCATION_HANDLED;
    }
  submit (self, call, job);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* Health and the first CPU sample go through the same worker path. */
static void
health_done_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) status = bp_worker_pool_run_finish (BP_WORKER_POOL (source), result, &error);

  if (status == NULL)
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, g_strdup (_("read /proc/stat, /proc/meminfo, /proc/loadavg")), g_free);
}

static void
run_health (BpSystemBackend     *self,
            GCancellable        *cancellable,
            gpointer             source_tag,
            GAsyncReadyCallback  callback,
            gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  Job *job = g_new0 (Job, 1);

  g_task_set_source_tag (task, source_tag);
  job->kind = JOB_HEALTH;
  job->self = g_object_ref (self);
  bp_worker_pool_run_async (self->workers, job_run, job, (GDestroyNotify) job_free,
                            (GDestroyNotify) g_variant_unref, cancellable, health_done_cb, task);
}

static void
bp_system_backend_start_async (BpBackend           *backend,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  run_health (BP_SYSTEM_BACKEND (backend), cancellable, bp_system_backend_start_async, callback, user_data);
}

static gboolean
bp_system_backend_start_finish (BpBackend     *backend,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_autofree char *detail = g_task_propagate_pointer (G_TASK (result), error);

  return detail != NULL;
}

static void
bp_system_backend_check_health_async (BpBackend           *backend,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  run_health (BP_SYSTEM_BACKEND (backend), cancellable, bp_system_backend_check_health_async, callback, user_data);
}

static void
bp_system_backend_dispose (GObject *object)
{
  BpSystemBackend *self = BP_SYSTEM_BACKEND (object);

  g_clear_object (&self->iface);
  g_clear_object (&self->workers);
  G_OBJECT_CLASS (bp_system_backend_parent_class)->dispose (object);
}

static void
bp_system_backend_finalize (GObject *object)
{
  BpSystemBackend *self = BP_SYSTEM_BACKEND (object);

  g_mutex_clear (&self->cpu_mutex);
  G_OBJECT_CLASS (bp_system_backend_parent_class)->finalize (object);
}

static void
bp_system_backend_class_init (BpSystemBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  BpBackendClass *backend_class = BP_BACKEND_CLASS (klass);

  object_class->dispose = bp_system_backend_dispose;
  object_class->finalize = bp_system_backend_finalize;
  backend_class->start_async = bp_system_backend_start_async;
  backend_class->start_finish = bp_system_backend_start_finish;
  backend_class->check_health_async = bp_system_backend_check_health_async;
}

static void
bp_system_backend_init (BpSystemBackend *self)
{
  g_mutex_init (&self->cpu_mutex);
  self->workers = g_object_ref (bp_worker_pool_get_default ());
  self->iface = bp_dbus_system_skeleton_new ();
  g_signal_connect (self->iface, "handle-get-status", G_CALLBACK (handle_get_status), self);
  g_signal_connect (self->iface, "handle-list-disks", G_CALLBACK (handle_list_disks), self);
  g_signal_connect (self->iface, "handle-list-processes", G_CALLBACK (handle_list_processes), self);
  bp_backend_add_interface (BP_BACKEND (self), G_DBUS_INTERFACE_SKELETON (self->iface));
}
