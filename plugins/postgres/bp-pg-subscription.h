/* bp-pg-subscription.h: a client's stream of NOTIFY events
 *
 * Stand-in with the API of libbackplane's BpSubscription until that one is
 * in: switching is a rename.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_PG_SUBSCRIPTION_MAX_QUEUED 10000
#define BP_PG_SUBSCRIPTION_MAX_BATCH  256
#define BP_PG_SUBSCRIPTION_FLUSH_MS   100

#define BP_TYPE_PG_SUBSCRIPTION (bp_pg_subscription_get_type ())

G_DECLARE_FINAL_TYPE (BpPgSubscription, bp_pg_subscription, BP, PG_SUBSCRIPTION, GObject)

BpPgSubscription *bp_pg_subscription_new             (BpHost           *host,
                                                      const char       *owner,
                                                      GError          **error);
const char       *bp_pg_subscription_get_object_path (BpPgSubscription *self);
const char       *bp_pg_subscription_get_owner       (BpPgSubscription *self);
void              bp_pg_subscription_push            (BpPgSubscription *self,
                                                      GVariant         *event);
void              bp_pg_subscription_close           (BpPgSubscription *self);
gboolean          bp_pg_subscription_is_closed       (BpPgSubscription *self);
guint64           bp_pg_subscription_get_dropped     (BpPgSubscription *self);

G_END_DECLS
