/* bp-qdrant-backend.h: backend type `qdrant`
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_TYPE_QDRANT_BACKEND (bp_qdrant_backend_get_type ())

G_DECLARE_FINAL_TYPE (BpQdrantBackend, bp_qdrant_backend, BP, QDRANT_BACKEND, BpBackend)

G_END_DECLS
