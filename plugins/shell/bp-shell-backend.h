/* bp-shell-backend.h: backend type `shell`
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_TYPE_SHELL_BACKEND (bp_shell_backend_get_type ())

G_DECLARE_FINAL_TYPE (BpShellBackend, bp_shell_backend, BP, SHELL_BACKEND, BpBackend)

G_END_DECLS
