/* bp-shell-process.h: one child process on GSubprocess, fully asynchronous
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

#include "bp-shell-spawn-options.h"

G_BEGIN_DECLS

/**
 * BpShellProcessState:
 * @BP_SHELL_PROCESS_STATE_RUNNING: not reaped yet (also after kill/close until it is)
 * @BP_SHELL_PROCESS_STATE_EXITED: exited normally, with any exit code
 * @BP_SHELL_PROCESS_STATE_KILLED: terminated by a signal (its own, another
 *   process's, bp_shell_process_kill() or bp_shell_process_close())
 * @BP_SHELL_PROCESS_STATE_FAILED: ended by us because of an error: timeout or
 *   max-output; see bp_shell_process_get_error()
 */
typedef enum
{
  BP_SHELL_PROCESS_STATE_RUNNING,
  BP_SHELL_PROCESS_STATE_EXITED,
  BP_SHELL_PROCESS_STATE_KILLED,
  BP_SHELL_PROCESS_STATE_FAILED,
} BpShellProcessState;

/**
 * BpShellRunResult:
 * @pid: the process id the child had
 * @exit_code: the exit status, or -1 if a signal terminated the child
 * @term_signal: the terminating signal, or 0 if the child exited normally
 * @stdout_bytes: (nullable): captured stdout, %NULL if it went to an fd
 * @stderr_bytes: (nullable): captured stderr, %NULL if it went to an fd
 *
 * The outcome of bp_shell_process_run_async().
 */
typedef struct
{
  guint   pid;
  int     exit_code;
  int     term_signal;
  GBytes *stdout_bytes;
  GBytes *stderr_bytes;
} BpShellRunResult;

void                bp_shell_run_result_free           (BpShellRunResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpShellRunResult, bp_shell_run_result_free)

const char         *bp_shell_process_state_to_string   (BpShellProcessState state);

#define BP_TYPE_SHELL_PROCESS (bp_shell_process_get_type ())

G_DECLARE_FINAL_TYPE (BpShellProcess, bp_shell_process, BP, SHELL_PROCESS, GObject)

BpShellProcess     *bp_shell_process_spawn             (const BpShellSpawnOptions *options,
                                                        GError                   **error);
guint               bp_shell_process_get_pid           (BpShellProcess            *self);
const char * const *bp_shell_process_get_argv          (BpShellProcess            *self);
BpShellProcessState bp_shell_process_get_state         (BpShellProcess            *self);
int                 bp_shell_process_get_exit_code     (BpShellProcess            *self);
int                 bp_shell_process_get_term_signal   (BpShellProcess            *self);
const GError       *bp_shell_process_get_error         (BpShellProcess            *self);
gboolean            bp_shell_process_kill              (BpShellProcess            *self,
                                                        int                        signum,
                                                        GError                   **error);
void                bp_shell_process_terminate         (BpShellProcess            *self);
void                bp_shell_process_close             (BpShellProcess            *self);
void                bp_shell_process_wait_async        (BpShellProcess            *self,
                                                        GCancellable              *cancellable,
                                                        GAsyncReadyCallback        callback,
                                                        gpointer                   user_data);
gboolean            bp_shell_process_wait_finish       (BpShellProcess            *self,
                                                        GAsyncResult              *result,
                                                        int                       *exit_code,
                                                        int                       *term_signal,
                                                        GError                   **error);
void                bp_shell_process_run_async         (const BpShellSpawnOptions *options,
                                                        GCancellable              *cancellable,
                                                        GAsyncReadyCallback        callback,
                                                        gpointer                   user_data);
BpShellRunResult   *bp_shell_process_run_finish        (GAsyncResult              *result,
                                                        GError                   **error);

G_END_DECLS
