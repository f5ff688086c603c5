/* bp-host-private.h: BpHost internals that unit tests reach
 *
 * Tests that include this header link the library's objects directly
 * (libbackplane_internal_dep in core/libbackplane/meson.build).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bp-host.h"

G_BEGIN_DECLS

/* Where the next owner-watch id is taken from (ids wrap around at 2^32). */
G_GNUC_INTERNAL
void bp_host_set_next_watch_id (BpHost *self,
                                guint   next_id);

G_END_DECLS
