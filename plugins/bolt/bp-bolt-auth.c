/* bp-bolt-auth.c: Bolt authentication tokens
 *
 * An auth token is the dictionary sent in LOGON (Bolt 5.1+) or merged into
 * HELLO (before 5.1): `{scheme: "none"}`, `{scheme: "basic", principal,
 * credentials[, realm]}` or `{scheme: "bearer", credentials}`.
 *
 * The secret is only ever written into the outgoing message buffer; it is
 * wiped from memory when the token is freed and never appears in errors or
 * debug output.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-bolt-auth.h"
#include "bp-bolt-packstream.h"

struct _BpBoltAuth
{
  char *scheme;
  char *principal;    /* (nullable) */
  char *credentials;  /* (nullable) secret */
  char *realm;        /* (nullable) */
};

static BpBoltAuth *
auth_new (const char *scheme,
          const char *principal,
          const char *credentials,
          const char *realm)
{
  BpBoltAuth *self = g_new0 (BpBoltAuth, 1);

  self->scheme = g_strdup (scheme);
  self->principal = g_strdup (principal);
  self->credentials = g_strdup (credentials);
  self->realm = g_strdup (realm);
  return self;
}

/**
 * bp_bolt_auth_new_none:
 *
 * Returns: (transfer full): the `none` scheme (no authentication)
 */
BpBoltAuth *
bp_bolt_auth_new_none (void)
{
  return auth_new ("none", NULL, NULL, NULL);
}

/**
 * bp_bolt_auth_new_basic:
 * @principal: the user name
 * @credentials: the password
 * @realm: (nullable): an optional realm
 *
 * Returns: (transfer full): a `basic` token
 */
BpBoltAuth *
bp_bolt_auth_new_basic (const char *principal,
                        const char *credentials,
                        const char *realm)
{
  g_return_val_if_fail (principal != NULL, NULL);
  g_return_val_if_fail (credentials != NULL, NULL);

  return auth_new ("basic", principal, credentials, realm);
}

/**
 * bp_bolt_auth_new_bearer:
 * @token: the bearer token (e.g. an SSO JWT)
 *
 * Returns: (transfer full): a `bearer` token
 */
BpBoltAuth *
bp_bolt_auth_new_bearer (const char *token)
{
  g_return_val_if_fail (token != NULL, NULL);

  return auth_new ("bearer", NULL, token, NULL);
}

BpBoltAuth *
bp_bolt_auth_copy (const BpBoltAuth *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  return auth_new (self->scheme, self->principal, self->credentials, self->realm);
}

static void
wipe (char **secret)
{
  if (*secret != NULL)
    {
      volatile char *p = *secret;
      while (*p)
        *p++ = 0;
      g_clear_pointer (secret, g_free);
    }
}

void
bp_bolt_auth_free (BpBoltAuth *self)
{
  if (self == NULL)
    return;
  wipe (&self->credentials);
  g_free (self->scheme);
  g_free (self->principal);
  g_free (self->realm);
  g_free (self);
}

const char *
bp_bolt_auth_get_scheme (const BpBoltAuth *self)
{
  return self->scheme;
}

const char *
bp_bolt_auth_get_principal (const BpBoltAuth *self)
{
  return self->principal;
}

/**
 * bp_bolt_auth_get_n_entries:
 * @self: a #BpBoltAuth
 *
 * Returns: how many dictionary entries bp_bolt_auth_pack_entries() writes
 */
guint
bp_bolt_auth_get_n_entries (const BpBoltAuth *self)
{
  return 1 + (self->principal != NULL) + (self->credentials != NULL) + (self->realm != NULL);
}

/**
 * bp_bolt_auth_pack_entries:
 * @self: a #BpBoltAuth
 * @buf: the message being built
 *
 * Appends the token's key/value pairs (no dictionary header), so the caller
 * can write them as LOGON's auth dictionary or merge them into HELLO.
 */
void
bp_bolt_auth_pack_entries (const BpBoltAuth *self,
                           GByteArray       *buf)
{
  bp_bolt_pack_string (buf, "scheme", -1);
  bp_bolt_pack_string (buf, self->scheme, -1);
  if (self->principal != NULL)
    {
      bp_bolt_pack_string (buf, "principal", -1);
      bp_bolt_pack_string (buf, self->principal, -1);
    }
  if (self->credentials != NULL)
    {
      bp_bolt_pack_string (buf, "credentials", -1);
      bp_bolt_pack_string (buf, self->credentials, -1);
    }
  if (self->realm != NULL)
    {
      bp_bolt_pack_string (buf, "realm", -1);
      bp_bolt_pack_string (buf, self->realm, -1);
    }
}
