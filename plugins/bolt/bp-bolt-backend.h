/* bp-bolt-backend.h: backend type `bolt`
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

#include "bp-bolt-connection.h"
#include "bp-bolt-tx-retry.h"

G_BEGIN_DECLS

#define BP_TYPE_BOLT_BACKEND (bp_bolt_backend_get_type ())

G_DECLARE_FINAL_TYPE (BpBoltBackend, bp_bolt_backend, BP, BOLT_BACKEND, BpBackend)

/**
 * BpBoltLease:
 *
 * A pooled connection checked out for one operation or transaction; give it
 * back with bp_bolt_backend_release().
 */
typedef struct _BpBoltLease BpBoltLease;

BpBoltConnection *bp_bolt_lease_get_connection    (BpBoltLease         *lease);
const char       *bp_bolt_lease_get_address       (BpBoltLease         *lease);

void              bp_bolt_backend_acquire_async   (BpBoltBackend       *self,
                                                   gboolean             write,
                                                   const char          *database,
                                                   const char          *acquirer,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
BpBoltLease      *bp_bolt_backend_acquire_finish  (BpBoltBackend       *self,
                                                   GAsyncResult        *result,
                                                   GError             **error);
void              bp_bolt_backend_release         (BpBoltBackend       *self,
                                                   BpBoltLease         *lease,
                                                   const GError        *error);

const char       *bp_bolt_backend_get_database    (BpBoltBackend       *self);
gint64            bp_bolt_backend_get_fetch_size  (BpBoltBackend       *self);
guint             bp_bolt_backend_get_max_records (BpBoltBackend       *self);

BpFailureKind     bp_bolt_classify_failure        (const GError        *error,
                                                   gpointer             user_data);

void              bp_bolt_backend_execute_async   (BpBoltBackend       *self,
                                                   GVariant            *statements,
                                                   GVariant            *options,
                                                   gboolean             write,
                                                   GCancellable        *cancellable,
                                                   GAsyncReadyCallback  callback,
                                                   gpointer             user_data);
GVariant         *bp_bolt_backend_execute_finish  (BpBoltBackend       *self,
                                                   GAsyncResult        *result,
                                                   guint               *out_attempts,
                                                   GError             **error);
BpBoltTxRetry    *bp_bolt_backend_get_tx_retry    (BpBoltBackend       *self);

G_END_DECLS
