/* bp-ctl-stream.h: copy a stream the daemon writes into a file
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

#include "bp-ctl.h"

G_BEGIN_DECLS

void      bp_ctl_copy_to_file_async   (int                   read_fd,
                                       int                   file_fd,
                                       GCancellable         *cancellable,
                                       GAsyncReadyCallback   callback,
                                       gpointer              user_data);
gboolean  bp_ctl_copy_to_file_finish  (GAsyncResult         *result,
                                       guint64              *bytes,
                                       char                **last_line,
                                       GError              **error);
gboolean  bp_ctl_check_jsonl_end      (const char           *last_line,
                                       guint64              *rows,
                                       GError              **error);

const char *bp_ctl_format_for_file     (const char           *path,
                                       gboolean              csv_allowed,
                                       GError              **error);
GVariant  *bp_ctl_call_to_file        (BpCtl                *ctl,
                                       const char           *object_path,
                                       const char           *interface,
                                       const char           *method,
                                       GVariant             *parameters,
                                       const char           *reply_type,
                                       int                   timeout_ms,
                                       const char           *path,
                                       gboolean              jsonl,
                                       GError              **error);

G_END_DECLS
