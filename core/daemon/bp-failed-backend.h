/* bp-failed-backend.h: stands in for a backend that could not be created
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_TYPE_FAILED_BACKEND (bp_failed_backend_get_type ())

G_DECLARE_FINAL_TYPE (BpFailedBackend, bp_failed_backend, BP, FAILED_BACKEND, BpBackend)

BpBackend *bp_failed_backend_new (BpHost       *host,
                                  const char   *name,
                                  const char   *type_name,
                                  const GError *error);

G_END_DECLS
