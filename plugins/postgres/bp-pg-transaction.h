/* bp-pg-transaction.h: an open transaction owned by one D-Bus client
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

#include "bp-pg-backend.h"
#include "bp-pg-options.h"

G_BEGIN_DECLS

#define BP_TYPE_PG_TRANSACTION (bp_pg_transaction_get_type ())

G_DECLARE_FINAL_TYPE (BpPgTransaction, bp_pg_transaction, BP, PG_TRANSACTION, GObject)

BpPgTransaction *bp_pg_transaction_new      (BpPgBackend        *backend,
                                             BpPoolItem         *item,
                                             const char         *owner,
                                             const BpPgOptions  *options);
gboolean         bp_pg_transaction_export   (BpPgTransaction    *self,
                                             GError            **error);
const char      *bp_pg_transaction_get_path (BpPgTransaction    *self);
void             bp_pg_transaction_abort    (BpPgTransaction    *self);
char            *bp_pg_transaction_begin_sql (const BpPgOptions *options);

G_END_DECLS
