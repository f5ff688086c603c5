/* bp-shell-spawn-options.h: what to run and how, plus the configured bounds
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

/**
 * BpShellStdio:
 * @BP_SHELL_STDIN: the child's standard input
 * @BP_SHELL_STDOUT: the child's standard output (stream 1 in `Output` lines)
 * @BP_SHELL_STDERR: the child's standard error (stream 2 in `Output` lines)
 */
typedef enum
{
  BP_SHELL_STDIN  = 0,
  BP_SHELL_STDOUT = 1,
  BP_SHELL_STDERR = 2,
} BpShellStdio;

/**
 * BpShellLimits:
 * @max_args: most argv elements
 * @max_argv_bytes: most bytes over all argv elements (each counted with its NUL)
 * @max_env: most caller-provided environment entries
 * @max_env_bytes: most bytes over all caller-provided "NAME=value" entries
 * @max_stdin: most bytes of stdin data passed in the call
 * @max_output: the largest max-output a caller may ask for, per stream
 * @max_timeout_ms: the largest timeout a caller may ask for (0: unbounded)
 *
 * Configured bounds on what one caller may ask for. Initialise with
 * bp_shell_limits_init() and override fields from the configuration.
 */
typedef struct
{
  guint  max_args;
  gsize  max_argv_bytes;
  guint  max_env;
  gsize  max_env_bytes;
  gsize  max_stdin;
  gsize  max_output;
  guint  max_timeout_ms;
} BpShellLimits;

#define BP_SHELL_DEFAULT_MAX_OUTPUT      (16 * 1024 * 1024)
#define BP_SHELL_DEFAULT_KILL_GRACE_MS   2000
#define BP_SHELL_DEFAULT_MAX_LINE_BYTES  (64 * 1024)
#define BP_SHELL_DEFAULT_FLUSH_INTERVAL_US (100 * G_TIME_SPAN_MILLISECOND)
#define BP_SHELL_DEFAULT_BATCH_MAX_LINES 512
#define BP_SHELL_DEFAULT_BATCH_MAX_BYTES (32 * 1024)

void                 bp_shell_limits_init                     (BpShellLimits             *limits);

typedef struct _BpShellSpawnOptions BpShellSpawnOptions;

BpShellSpawnOptions *bp_shell_spawn_options_new               (void);
void                 bp_shell_spawn_options_free              (BpShellSpawnOptions       *self);
void                 bp_shell_spawn_options_add_arg           (BpShellSpawnOptions       *self,
                                                               const char                *arg,
                                                               gssize                     len);
void                 bp_shell_spawn_options_set_argv          (BpShellSpawnOptions       *self,
                                                               const char * const        *argv);
const char          *bp_shell_spawn_options_get_program       (const BpShellSpawnOptions *self,
                                                               gsize                     *len);
void                 bp_shell_spawn_options_set_program       (BpShellSpawnOptions       *self,
                                                               const char                *program);
guint                bp_shell_spawn_options_get_n_args        (const BpShellSpawnOptions *self);
void                 bp_shell_spawn_options_set_cwd           (BpShellSpawnOptions       *self,
                                                               const char                *cwd,
                                                               gssize                     len);
void                 bp_shell_spawn_options_set_clear_env     (BpShellSpawnOptions       *self,
                                                               gboolean                   clear_env);
void                 bp_shell_spawn_options_set_env           (BpShellSpawnOptions       *self,
                                                               const char                *name,
                                                               gssize                     name_len,
                                                               const char                *value,
                                                               gssize                     value_len);
void                 bp_shell_spawn_options_set_stdin_bytes   (BpShellSpawnOptions       *self,
                                                               GBytes                    *data);
void                 bp_shell_spawn_options_take_fd           (BpShellSpawnOptions       *self,
                                                               BpShellStdio               stdio,
                                                               int                        fd);
gboolean             bp_shell_spawn_options_has_fd            (const BpShellSpawnOptions *self,
                                                               BpShellStdio               stdio);
void                 bp_shell_spawn_options_set_timeout_ms    (BpShellSpawnOptions       *self,
                                                               guint                      timeout_ms);
void                 bp_shell_spawn_options_set_kill_grace_ms (BpShellSpawnOptions       *self,
                                                               guint                      kill_grace_ms);
void                 bp_shell_spawn_options_set_max_output    (BpShellSpawnOptions       *self,
                                                               gsize                      max_output);
void                 bp_shell_spawn_options_set_kill_group_on_exit (BpShellSpawnOptions *self,
                                                               gboolean                   kill_group_on_exit);
void                 bp_shell_spawn_options_set_die_with_parent (BpShellSpawnOptions     *self,
                                                               gboolean                   die_with_parent);
void                 bp_shell_spawn_options_set_clock         (BpShellSpawnOptions       *self,
                                                               BpClock                   *clock);
void                 bp_shell_spawn_options_set_max_line_bytes (BpShellSpawnOptions      *self,
                                                               gsize                      max_line_bytes);
void                 bp_shell_spawn_options_set_batching      (BpShellSpawnOptions       *self,
                                                               gint64                     flush_interval_us,
                                                               guint                      max_lines,
                                                               gsize                      max_bytes);
gboolean             bp_shell_spawn_options_validate          (const BpShellSpawnOptions *self,
                                                               GError                   **error);
gboolean             bp_shell_spawn_options_check_limits      (const BpShellSpawnOptions *self,
                                                               const BpShellLimits       *limits,
                                                               GError                   **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpShellSpawnOptions, bp_shell_spawn_options_free)

G_END_DECLS
