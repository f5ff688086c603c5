/* bp-bolt-auth.h: Bolt authentication tokens
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

typedef struct _BpBoltAuth BpBoltAuth;

BpBoltAuth *bp_bolt_auth_new_none        (void);
BpBoltAuth *bp_bolt_auth_new_basic       (const char       *principal,
                                          const char       *credentials,
                                          const char       *realm);
BpBoltAuth *bp_bolt_auth_new_bearer      (const char       *token);
BpBoltAuth *bp_bolt_auth_copy            (const BpBoltAuth *self);
void        bp_bolt_auth_free            (BpBoltAuth       *self);
const char *bp_bolt_auth_get_scheme      (const BpBoltAuth *self);
const char *bp_bolt_auth_get_principal   (const BpBoltAuth *self);
guint       bp_bolt_auth_get_n_entries   (const BpBoltAuth *self);
void        bp_bolt_auth_pack_entries    (const BpBoltAuth *self,
                                          GByteArray       *buf);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpBoltAuth, bp_bolt_auth_free)

G_END_DECLS
