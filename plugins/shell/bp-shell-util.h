/* bp-shell-util.h: small helpers shared by the shell plugin
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

char     *bp_shell_describe_string          (const char *str,
                                             gssize      len);
gboolean  bp_shell_path_is_canonical_absolute (const char *path);

G_END_DECLS
