/* bp-bolt-transaction.h: a client's explicit transaction (GraphTransaction)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bp-bolt-backend.h"
#include "bp-bolt-ops.h"

G_BEGIN_DECLS

#define BP_TYPE_BOLT_TRANSACTION (bp_bolt_transaction_get_type ())

G_DECLARE_FINAL_TYPE (BpBoltTransaction, bp_bolt_transaction, BP, BOLT_TRANSACTION, GObject)

BpBoltTransaction *bp_bolt_transaction_new      (BpBoltBackend       *backend,
                                                 BpBoltLease         *lease,
                                                 const char          *owner,
                                                 const BpBoltOptions *options);
gboolean           bp_bolt_transaction_export   (BpBoltTransaction   *self,
                                                 GError             **error);
const char        *bp_bolt_transaction_get_path (BpBoltTransaction   *self);
void               bp_bolt_transaction_abort    (BpBoltTransaction   *self);

G_END_DECLS
