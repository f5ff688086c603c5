/* bp-dead-letters-service.h: the DeadLetters object on the bus
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

#define BP_TYPE_DEAD_LETTERS_SERVICE (bp_dead_letters_service_get_type ())

G_DECLARE_FINAL_TYPE (BpDeadLettersService, bp_dead_letters_service, BP, DEAD_LETTERS_SERVICE, GObject)

BpDeadLettersService *bp_dead_letters_service_new      (BpHost                *host,
                                                        BpDeadLetters         *dead_letters,
                                                        GError               **error);
void                  bp_dead_letters_service_unexport (BpDeadLettersService  *self);

G_END_DECLS
