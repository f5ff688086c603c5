/* bp-host.h: the daemon services a backend uses
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#include <gio/gio.h>

#include "bp-clock.h"
#include "bp-dead-letters.h"
#include "bp-version-macros.h"

G_BEGIN_DECLS

#define BP_TYPE_HOST (bp_host_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpHost, bp_host, BP, HOST, GObject)

/**
 * BpOwnerVanishedFunc:
 * @unique_name: the bus name that went away
 * @user_data: the data given to bp_host_watch_owner()
 *
 * Called on the main context when a watched client disconnects.
 */
typedef void (*BpOwnerVanishedFunc) (const char *unique_name,
                                     gpointer    user_data);

BP_AVAILABLE_IN_ALL
BpHost          *bp_host_new                      (GDBusConnection     *connection,
                                                   BpClock             *clock);
BP_AVAILABLE_IN_ALL
GDBusConnection *bp_host_get_connection           (BpHost              *self);
BP_AVAILABLE_IN_ALL
BpClock         *bp_host_get_clock                (BpHost              *self);
BP_AVAILABLE_IN_ALL
GCancellable    *bp_host_get_shutdown_cancellable (BpHost              *self);
BP_AVAILABLE_IN_ALL
void             bp_host_shutdown                 (BpHost              *self);
BP_AVAILABLE_IN_ALL
gboolean         bp_host_is_shutting_down         (BpHost              *self);

BP_AVAILABLE_IN_ALL
guint            bp_host_watch_owner              (BpHost              *self,
                                                   const char          *unique_name,
                                                   BpOwnerVanishedFunc  func,
                                                   gpointer             user_data,
                                                   GDestroyNotify       notify);
BP_AVAILABLE_IN_ALL
void             bp_host_unwatch_owner            (BpHost              *self,
                                                   guint                watch_id);
BP_AVAILABLE_IN_ALL
guint            bp_host_get_n_watches            (BpHost              *self);

BP_AVAILABLE_IN_ALL
guint            bp_host_get_n_calls              (BpHost              *self);
BP_AVAILABLE_IN_ALL
const char      *bp_host_get_last_call            (BpHost              *self);

BP_AVAILABLE_IN_ALL
char            *bp_host_make_client_path         (BpHost              *self,
                                                   const char          *unique_name,
                                                   const char          *kind);
BP_AVAILABLE_IN_ALL
gboolean         bp_host_check_owner              (GDBusMethodInvocation *invocation,
                                                   const char          *owner);

BP_AVAILABLE_IN_ALL
gboolean         bp_host_add_interface_xml        (BpHost              *self,
                                                   const char          *xml,
                                                   GError             **error);
BP_AVAILABLE_IN_ALL
gboolean         bp_host_export                   (BpHost              *self,
                                                   GDBusInterfaceSkeleton *skeleton,
                                                   const char          *object_path,
                                                   GError             **error);
BP_AVAILABLE_IN_ALL
void             bp_host_unexport                 (BpHost              *self,
                                                   GDBusInterfaceSkeleton *skeleton);
BP_AVAILABLE_IN_ALL
void             bp_host_note_exported            (BpHost              *self,
                                                   const char          *object_path,
                                                   const char          *interface_name);
BP_AVAILABLE_IN_ALL
void             bp_host_note_unexported          (BpHost              *self,
                                                   const char          *object_path,
                                                   const char          *interface_name);
BP_AVAILABLE_IN_ALL
void             bp_host_set_dead_letters         (BpHost              *self,
                                                   BpDeadLetters       *dead_letters);
BP_AVAILABLE_IN_ALL
BpDeadLetters   *bp_host_get_dead_letters         (BpHost              *self);
BP_AVAILABLE_IN_ALL
char            *bp_host_introspect               (BpHost              *self,
                                                   const char          *object_path);

G_END_DECLS
