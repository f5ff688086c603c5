/* bp-shell-allowlist.h: which programs a shell backend may run
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_TYPE_SHELL_ALLOWLIST (bp_shell_allowlist_get_type ())

G_DECLARE_FINAL_TYPE (BpShellAllowlist, bp_shell_allowlist, BP, SHELL_ALLOWLIST, GObject)

BpShellAllowlist   *bp_shell_allowlist_new_from_string (const char        *value,
                                                        const char        *search_path,
                                                        GError           **error);
const char         *bp_shell_allowlist_lookup          (BpShellAllowlist  *self,
                                                        const char        *program,
                                                        gssize             len,
                                                        GError           **error);
const char * const *bp_shell_allowlist_get_programs    (BpShellAllowlist  *self);

G_END_DECLS
