/* bp-call.h: one D-Bus method call in flight, answered exactly once
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

#define BP_TYPE_CALL (bp_call_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpCall, bp_call, BP, CALL, GObject)

BP_AVAILABLE_IN_ALL
BpCall                *bp_call_new               (BpHost                *host,
                                                  GDBusMethodInvocation *invocation);
BP_AVAILABLE_IN_ALL
GCancellable          *bp_call_get_cancellable   (BpCall                *self);
BP_AVAILABLE_IN_ALL
const char            *bp_call_get_sender        (BpCall                *self);
BP_AVAILABLE_IN_ALL
GDBusMethodInvocation *bp_call_get_invocation    (BpCall                *self);
BP_AVAILABLE_IN_ALL
gboolean               bp_call_is_answered       (BpCall                *self);
BP_AVAILABLE_IN_ALL
int                    bp_call_steal_fd          (BpCall                *self,
                                                  GVariant              *handle,
                                                  GError               **error);
BP_AVAILABLE_IN_ALL
void                   bp_call_return_value      (BpCall                *self,
                                                  GVariant              *parameters);
BP_AVAILABLE_IN_ALL
void                   bp_call_return_error      (BpCall                *self,
                                                  const GError          *error);
BP_AVAILABLE_IN_ALL
void                   bp_call_return_new_error  (BpCall                *self,
                                                  int                    code,
                                                  const char            *format,
                                                  ...) G_GNUC_PRINTF (3, 4);

G_END_DECLS
