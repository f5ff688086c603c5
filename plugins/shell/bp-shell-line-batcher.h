/* bp-shell-line-batcher.h: process output → batches of (stream, line)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_TYPE_SHELL_LINE_BATCHER (bp_shell_line_batcher_get_type ())

G_DECLARE_FINAL_TYPE (BpShellLineBatcher, bp_shell_line_batcher, BP, SHELL_LINE_BATCHER, GObject)

BpShellLineBatcher *bp_shell_line_batcher_new                (BpClock            *clock);
void                bp_shell_line_batcher_set_flush_interval (BpShellLineBatcher *self,
                                                              gint64              interval_us);
void                bp_shell_line_batcher_set_max_batch      (BpShellLineBatcher *self,
                                                              guint               max_lines,
                                                              gsize               max_bytes);
void                bp_shell_line_batcher_set_max_line_bytes (BpShellLineBatcher *self,
                                                              gsize               max_line_bytes);
void                bp_shell_line_batcher_push               (BpShellLineBatcher *self,
                                                              guint               stream,
                                                              const guint8       *data,
                                                              gsize               len);
void                bp_shell_line_batcher_end_stream         (BpShellLineBatcher *self,
                                                              guint               stream);
void                bp_shell_line_batcher_flush              (BpShellLineBatcher *self);
guint               bp_shell_line_batcher_get_n_pending      (BpShellLineBatcher *self);

G_END_DECLS
