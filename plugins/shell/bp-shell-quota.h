/* bp-shell-quota.h: concurrent process counts, overall and per caller
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_TYPE_SHELL_QUOTA (bp_shell_quota_get_type ())

G_DECLARE_FINAL_TYPE (BpShellQuota, bp_shell_quota, BP, SHELL_QUOTA, GObject)

BpShellQuota *bp_shell_quota_new            (guint         max_total,
                                             guint         max_per_caller);
void          bp_shell_quota_set_limits     (BpShellQuota *self,
                                             guint         max_total,
                                             guint         max_per_caller);
gboolean      bp_shell_quota_acquire        (BpShellQuota *self,
                                             const char   *caller,
                                             GError      **error);
void          bp_shell_quota_release        (BpShellQuota *self,
                                             const char   *caller);
guint         bp_shell_quota_get_n_total    (BpShellQuota *self);
guint         bp_shell_quota_get_n_for_caller (BpShellQuota *self,
                                             const char   *caller);

G_END_DECLS
