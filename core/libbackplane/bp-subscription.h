/* bp-subscription.h: a per-client stream of events, batched and unicast
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#include <gio/gio.h>

#include "bp-host.h"
#include "bp-version-macros.h"

G_BEGIN_DECLS

/**
 * BP_SUBSCRIPTION_INTERFACE:
 *
 * The D-Bus interface a #BpSubscription implements.
 */
#define BP_SUBSCRIPTION_INTERFACE "org.backplane.Backplane1.Subscription"

/**
 * BP_SUBSCRIPTION_DEFAULT_FLUSH_INTERVAL_MS:
 *
 * How long the first pending event waits for company before a flush.
 */
#define BP_SUBSCRIPTION_DEFAULT_FLUSH_INTERVAL_MS 100
/**
 * BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_EVENTS:
 *
 * Events per `Events` signal at most.
 */
#define BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_EVENTS 256
/**
 * BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_BYTES:
 *
 * Serialized event bytes per `Events` signal at most (an event larger than
 * this travels alone).
 */
#define BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_BYTES (64 * 1024)
/**
 * BP_SUBSCRIPTION_DEFAULT_MAX_QUEUED_EVENTS:
 *
 * Events held back while the bus connection has not written the previous
 * batches yet; newer events beyond it are dropped and counted.
 */
#define BP_SUBSCRIPTION_DEFAULT_MAX_QUEUED_EVENTS 10000

/**
 * BpSubscriptionLimits:
 * @flush_interval_ms: delay between the first pending event and the flush;
 *   0 means %BP_SUBSCRIPTION_DEFAULT_FLUSH_INTERVAL_MS
 * @max_batch_events: events per signal; reaching it flushes at once;
 *   0 means %BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_EVENTS
 * @max_batch_bytes: estimated bytes (g_variant_get_size()) per signal;
 *   reaching it flushes at once; 0 means %BP_SUBSCRIPTION_DEFAULT_MAX_BATCH_BYTES
 * @max_queued_events: events waiting to be handed to the bus connection;
 *   newer ones beyond it are dropped and counted in `Dropped`;
 *   0 means %BP_SUBSCRIPTION_DEFAULT_MAX_QUEUED_EVENTS
 *
 * Bounds of a #BpSubscription. Zero-initialise it (or call
 * bp_subscription_limits_init()) and set what you need.
 */
typedef struct _BpSubscriptionLimits BpSubscriptionLimits;

struct _BpSubscriptionLimits
{
  guint flush_interval_ms;
  guint max_batch_events;
  gsize max_batch_bytes;
  guint max_queued_events;

  /*< private >*/
  gpointer padding[4];
};

#define BP_TYPE_SUBSCRIPTION (bp_subscription_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpSubscription, bp_subscription, BP, SUBSCRIPTION, GObject)

BP_AVAILABLE_IN_ALL
void            bp_subscription_limits_init      (BpSubscriptionLimits       *limits);

BP_AVAILABLE_IN_ALL
BpSubscription *bp_subscription_new              (BpHost                     *host,
                                                  const char                 *owner,
                                                  const BpSubscriptionLimits *limits,
                                                  GError                    **error);
BP_AVAILABLE_IN_ALL
const char     *bp_subscription_get_object_path  (BpSubscription             *self);
BP_AVAILABLE_IN_ALL
const char     *bp_subscription_get_owner        (BpSubscription             *self);
BP_AVAILABLE_IN_ALL
void            bp_subscription_push             (BpSubscription             *self,
                                                  GVariant                   *event);
BP_AVAILABLE_IN_ALL
void            bp_subscription_close            (BpSubscription             *self);
BP_AVAILABLE_IN_ALL
gboolean        bp_subscription_is_closed        (BpSubscription             *self);
BP_AVAILABLE_IN_ALL
guint64         bp_subscription_get_dropped      (BpSubscription             *self);
BP_AVAILABLE_IN_ALL
guint           bp_subscription_get_n_queued     (BpSubscription             *self);
BP_AVAILABLE_IN_ALL
guint           bp_subscription_get_n_open       (void);

G_END_DECLS
