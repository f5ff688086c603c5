/* bp-system-backend.h: backend type `system`
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_TYPE_SYSTEM_BACKEND (bp_system_backend_get_type ())

G_DECLARE_FINAL_TYPE (BpSystemBackend, bp_system_backend, BP, SYSTEM_BACKEND, BpBackend)

G_END_DECLS
