/* bp-ctl-table.h: aligned text tables
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Cells longer than this many columns are shortened with “…” unless --wide. */
#define BP_CTL_TABLE_MAX_CELL_WIDTH 60

typedef enum
{
  BP_CTL_ALIGN_LEFT,
  BP_CTL_ALIGN_RIGHT,
} BpCtlAlign;

typedef struct _BpCtlTable BpCtlTable;

BpCtlTable *bp_ctl_table_new          (void);
void        bp_ctl_table_free         (BpCtlTable *self);
void        bp_ctl_table_set_headers_visible (BpCtlTable *self,
                                              gboolean    visible);
void        bp_ctl_table_add_column   (BpCtlTable *self,
                                       const char *header,
                                       BpCtlAlign  align);
void        bp_ctl_table_add_cell     (BpCtlTable *self,
                                       const char *text);
void        bp_ctl_table_take_cell    (BpCtlTable *self,
                                       char       *text);
void        bp_ctl_table_add_cellf    (BpCtlTable *self,
                                       const char *format,
                                       ...) G_GNUC_PRINTF (2, 3);
guint       bp_ctl_table_get_n_rows   (BpCtlTable *self);
char       *bp_ctl_table_render       (BpCtlTable *self,
                                       guint       max_cell_width);
void        bp_ctl_table_print        (BpCtlTable *self,
                                       gboolean    wide);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpCtlTable, bp_ctl_table_free)

G_END_DECLS
