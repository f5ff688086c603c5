/* bp-echo-backend.h: backend type `echo`, the example plugin
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_TYPE_ECHO_BACKEND (bp_echo_backend_get_type ())

G_DECLARE_FINAL_TYPE (BpEchoBackend, bp_echo_backend, BP, ECHO_BACKEND, BpBackend)

G_END_DECLS
