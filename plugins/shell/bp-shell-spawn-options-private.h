/* bp-shell-spawn-options-private.h: fields of BpShellSpawnOptions for BpShellProcess
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bp-shell-spawn-options.h"

G_BEGIN_DECLS

struct _BpShellSpawnOptions
{
  GPtrArray *argv;              /* (owned) (element-type GBytes): no terminating NUL inside */
  GBytes    *cwd;               /* (owned) (nullable) */
  GPtrArray *env;               /* (owned) (element-type GBytes): name, value, name, value… */
  GBytes    *stdin_bytes;       /* (owned) (nullable) */
  int        fds[3];            /* (owned): -1 when unset */
  BpClock   *clock;             /* (owned) (nullable): NULL is the default clock */
  gsize      max_output;
  gsize      max_line_bytes;
  gint64     flush_interval_us;
  gsize      batch_max_bytes;
  guint      batch_max_lines;
  guint      timeout_ms;        /* 0: none */
  guint      kill_grace_ms;
  guint      clear_env : 1;
  guint      kill_group_on_exit : 1;
  guint      die_with_parent : 1;
};

char  **_bp_shell_spawn_options_dup_argv (const BpShellSpawnOptions *self);

G_END_DECLS
