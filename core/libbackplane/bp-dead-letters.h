/* bp-dead-letters.h: a persistent dead-letter queue on SQLite (WAL)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#include <gio/gio.h>

#include "bp-version-macros.h"
#include "bp-clock.h"

G_BEGIN_DECLS

#define BP_TYPE_DEAD_LETTERS (bp_dead_letters_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpDeadLetters, bp_dead_letters, BP, DEAD_LETTERS, GObject)

/**
 * BpDeadLetterReplayFunc:
 * @self: the #BpDeadLetters
 * @backend: the entry's backend name
 * @operation: the entry's operation name (e.g. `Sql.Query`)
 * @payload: (nullable): the entry's payload, as enqueued (in normal form);
 *   %NULL if it had none
 * @idempotency_key: the entry's idempotency key; pass it on so the backend
 *   can recognise a repeat
 * @cancellable: cancelled when the store closes; honour it
 * @task: (transfer full): complete it exactly once, from any thread, with
 *   g_task_return_boolean (@task, %TRUE) on success or g_task_return_error()
 *   on failure
 * @user_data: the data given to bp_dead_letters_set_handler()
 *
 * Replays one entry through the backend, normally through its breaker and
 * retry budget ([method@Bp.Backend.call_async]). It is called in the
 * store's main context and must not block: start the work and complete
 * @task later. The strings and @payload belong to the store and stay valid
 * until @task has completed. The same entry is never replayed twice at
 * once. How the outcome is counted:
 *
 *  - success: the entry is deleted and #BpDeadLetters::resolved emitted;
 *  - %BP_ERROR_CIRCUIT_OPEN: the breaker refused the call, so the backend
 *    was not tried; this is **not** an attempt. The entry is rescheduled at
 *    the error's retry-after (bp_error_set_retry_after()), or the base delay;
 *  - %G_IO_ERROR_CANCELLED or %BP_ERROR_CANCELLED: not an attempt, nothing
 *    changes;
 *  - any other error: an attempt. attempts goes up, the message becomes
 *    last-error and the next attempt is due after an exponential backoff
 *    (never before the error's retry-after); after poison-after failed
 *    replays the entry is poisoned.
 */
typedef void (*BpDeadLetterReplayFunc) (BpDeadLetters *self,
                                        const char    *backend,
                                        const char    *operation,
                                        GVariant      *payload,
                                        const char    *idempotency_key,
                                        GCancellable  *cancellable,
                                        GTask         *task,
                                        gpointer       user_data);

BP_AVAILABLE_IN_ALL
void            bp_dead_letters_open_async        (const char             *path,
                                                   BpClock                *clock,
                                                   GCancellable           *cancellable,
                                                   GAsyncReadyCallback     callback,
                                                   gpointer                user_data);
BP_AVAILABLE_IN_ALL
BpDeadLetters  *bp_dead_letters_open_finish       (GAsyncResult           *result,
                                                   GError                **error);
BP_AVAILABLE_IN_ALL
void            bp_dead_letters_close_async       (BpDeadLetters          *self,
                                                   GCancellable           *cancellable,
                                                   GAsyncReadyCallback     callback,
                                                   gpointer                user_data);
BP_AVAILABLE_IN_ALL
gboolean        bp_dead_letters_close_finish      (BpDeadLetters          *self,
                                                   GAsyncResult           *result,
                                                   GError                **error);

BP_AVAILABLE_IN_ALL
const char     *bp_dead_letters_get_path          (BpDeadLetters          *self);
BP_AVAILABLE_IN_ALL
guint64         bp_dead_letters_get_count         (BpDeadLetters          *self);
BP_AVAILABLE_IN_ALL
guint64         bp_dead_letters_get_poisoned_count (BpDeadLetters         *self);
BP_AVAILABLE_IN_ALL
gint64          bp_dead_letters_get_now_unix      (BpDeadLetters          *self);

BP_AVAILABLE_IN_ALL
void            bp_dead_letters_set_handler       (BpDeadLetters          *self,
                                                   const char             *backend,
                                                   BpDeadLetterReplayFunc  func,
                                                   gpointer                user_data,
                                                   GDestroyNotify          notify);

BP_AVAILABLE_IN_ALL
void            bp_dead_letters_enqueue_async     (BpDeadLetters          *self,
                                                   const char             *backend,
                                                   const char             *operation,
                                                   GVariant               *payload,
                                                   const char             *idempotency_key,
                                                   const GError           *last_error,
                                                   guint                   attempts,
                                                   gint64                  not_before_us,
                                                   GCancellable           *cancellable,
                                                   GAsyncReadyCallback     callback,
                                                   gpointer                user_data);
BP_AVAILABLE_IN_ALL
guint64         bp_dead_letters_enqueue_finish    (BpDeadLetters          *self,
                                                   GAsyncResult           *result,
                                                   gboolean               *out_added,
                                                   GError                **error);

BP_AVAILABLE_IN_ALL
void            bp_dead_letters_list_async        (BpDeadLetters          *self,
                                                   guint                   offset,
                                                   guint                   limit,
                                                   GVariant               *filter,
                                                   GCancellable           *cancellable,
                                                   GAsyncReadyCallback     callback,
                                                   gpointer                user_data);
BP_AVAILABLE_IN_ALL
GVariant       *bp_dead_letters_list_finish       (BpDeadLetters          *self,
                                                   GAsyncResult           *result,
                                                   GError                **error);

BP_AVAILABLE_IN_ALL
void            bp_dead_letters_get_async         (BpDeadLetters          *self,
                                                   guint64                 id,
                                                   GCancellable           *cancellable,
                                                   GAsyncReadyCallback     callback,
                                                   gpointer                user_data);
BP_AVAILABLE_IN_ALL
GVariant       *bp_dead_letters_get_finish        (BpDeadLetters          *self,
                                                   GAsyncResult           *result,
                                                   GError                **error);

BP_AVAILABLE_IN_ALL
void            bp_dead_letters_delete_async      (BpDeadLetters          *self,
                                                   guint64                 id,
                                                   GCancellable           *cancellable,
                                                   GAsyncReadyCallback     callback,
                                                   gpointer                user_data);
BP_AVAILABLE_IN_ALL
gboolean        bp_dead_letters_delete_finish     (BpDeadLetters          *self,
                                                   GAsyncResult           *result,
                                                   GError                **error);

BP_AVAILABLE_IN_ALL
void            bp_dead_letters_purge_async       (BpDeadLetters          *self,
                                                   const char             *backend,
                                                   GCancellable           *cancellable,
                                                   GAsyncReadyCallback     callback,
                                                   gpointer                user_data);
BP_AVAILABLE_IN_ALL
gboolean        bp_dead_letters_purge_finish      (BpDeadLetters          *self,
                                                   GAsyncResult           *result,
                                                   guint                  *out_count,
                                                   GError                **error);

BP_AVAILABLE_IN_ALL
void            bp_dead_letters_replay_async      (BpDeadLetters          *self,
                                                   guint64                 id,
                                                   GCancellable           *cancellable,
                                                   GAsyncReadyCallback     callback,
                                                   gpointer                user_data);
BP_AVAILABLE_IN_ALL
gboolean        bp_dead_letters_replay_finish     (BpDeadLetters          *self,
                                                   GAsyncResult           *result,
                                                   GError                **error);

BP_AVAILABLE_IN_ALL
void            bp_dead_letters_replay_all_async  (BpDeadLetters          *self,
                                                   const char             *backend,
                                                   GCancellable           *cancellable,
                                                   GAsyncReadyCallback     callback,
                                                   gpointer                user_data);
BP_AVAILABLE_IN_ALL
gboolean        bp_dead_letters_replay_all_finish (BpDeadLetters          *self,
                                                   GAsyncResult           *result,
                                                   guint                  *out_count,
                                                   GError                **error);

BP_AVAILABLE_IN_ALL
void            bp_dead_letters_flush_async       (BpDeadLetters          *self,
                                                   GCancellable           *cancellable,
                                                   GAsyncReadyCallback     callback,
                                                   gpointer                user_data);
BP_AVAILABLE_IN_ALL
gboolean        bp_dead_letters_flush_finish      (BpDeadLetters          *self,
                                                   GAsyncResult           *result,
                                                   GError                **error);

G_END_DECLS
