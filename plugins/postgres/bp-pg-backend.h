/* bp-pg-backend.h: backend type `postgres`
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

#include "bp-pg-connection.h"

G_BEGIN_DECLS

#define BP_TYPE_PG_BACKEND (bp_pg_backend_get_type ())

G_DECLARE_FINAL_TYPE (BpPgBackend, bp_pg_backend, BP, PG_BACKEND, BpBackend)

BpPgConnection *bp_pg_backend_new_connection (BpPgBackend *self);
void            bp_pg_backend_release        (BpPgBackend *self,
                                              BpPoolItem  *item);
guint           bp_pg_backend_get_max_rows   (BpPgBackend *self);
BpFailureKind   bp_pg_classify_failure       (const GError *error,
                                              gpointer      user_data);

G_END_DECLS
