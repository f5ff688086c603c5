/* bp-failed-backend.c: stands in for a backend that could not be created
 *
 * A backend whose type is unknown, whose plugin failed to load or whose
 * group has a bad key is still exported, `unavailable`, with the error as
 * its StateReason: the mistake is visible in d-feet and `backplanectl
 * backends`, and the other backends run normally.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-failed-backend.h"

struct _BpFailedBackend
{
  BpBackend  parent_instance;
  GError    *error;  /* (owned) */
};

G_DEFINE_FINAL_TYPE (BpFailedBackend, bp_failed_backend, BP_TYPE_BACKEND)

static void
bp_failed_backend_start_async (BpBackend           *backend,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  BpFailedBackend *self = BP_FAILED_BACKEND (backend);
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, bp_failed_backend_start_async);
  g_task_return_error (task, g_error_copy (self->error));
}

static gboolean
bp_failed_backend_start_finish (BpBackend     *backend,
                                GAsyncResult  *result,
                                GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
bp_failed_backend_check_health_async (BpBackend           *backend,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  bp_failed_backend_start_async (backend, cancellable, callback, user_data);
}

static gboolean
bp_failed_backend_check_health_finish (BpBackend     *backend,
                                       GAsyncResult  *result,
                                       char         **detail,
                                       GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
bp_failed_backend_finalize (GObject *object)
{
  BpFailedBackend *self = BP_FAILED_BACKEND (object);

  g_clear_error (&self->error);
  G_OBJECT_CLASS (bp_failed_backend_parent_class)->finalize (object);
}

static void
bp_failed_backend_class_init (BpFailedBackendClass *klass)
{
  BpBackendClass *backend_class = BP_BACKEND_CLASS (klass);

  G_OBJECT_CLASS (klass)->finalize = bp_failed_backend_finalize;
  backend_class->start_async = bp_failed_backend_start_async;
  backend_class->start_finish = bp_failed_backend_start_finish;
  backend_class->check_health_async = bp_failed_backend_check_health_async;
  backend_class->check_health_finish = bp_failed_backend_check_health_finish;
}

static void
bp_failed_backend_init (BpFailedBackend *self)
{
}

BpBackend *
bp_failed_backend_new (BpHost       *host,
                       const char   *name,
                       const char   *type_name,
                       const GError *error)
{
  BpFailedBackend *self = g_object_new (BP_TYPE_FAILED_BACKEND,
                                        "name", name,
                                        "type-name", type_name != NULL ? type_name : "",
                                        "host", host,
                                        NULL);

  self->error = g_error_copy (error);
  bp_backend_set_state (BP_BACKEND (self), BP_BACKEND_STATE_UNAVAILABLE, error->message);
  return BP_BACKEND (self);
}
