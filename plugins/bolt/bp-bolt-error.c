/* bp-bolt-error.c: Bolt FAILURE parsing and error classification
 *
 * A FAILURE summary carries, depending on the server:
 * - Neo4j up to Bolt 5.6 and Memgraph: {code, message}
 * - Bolt 5.7+ (GQL errors): {neo4j_code, message, gql_status, description,
 *   diagnostic_record{…, _classification}, cause}
 * Each becomes a %BP_ERROR_BACKEND GError whose message is
 * "<code>: <message>", so the native detail travels over D-Bus unchanged;
 * bp_bolt_error_dup_code() reads the code back.
 *
 * Classification follows the official drivers (dbclients.md §2.7): the
 * category is the second dotted part of the code.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-bolt-error.h"

static const char *
lookup_string (GVariant   *metadata,
               const char *key)
{
  const char *s = NULL;

  if (metadata != NULL && g_variant_lookup (metadata, key, "&s", &s) && *s != '\0')
    return s;
  return NULL;
}

/**
 * bp_bolt_error_new_from_failure:
 * @metadata: (nullable): the FAILURE metadata, `a{sv}`
 *
 * Returns: (transfer full): a %BP_ERROR_BACKEND error "<code>: <message>"
 */
GError *
bp_bolt_error_new_from_failure (GVariant *metadata)
{
  const char *code, *message;
  const char *gql_status;

  code = lookup_string (metadata, "neo4j_code");
  if (code == NULL)
    code = lookup_string (metadata, "code");
  if (code == NULL)
    code = "Neo.DatabaseError.General.UnknownError";
  message = lookup_string (metadata, "message");
  if (message == NULL)
    message = lookup_string (metadata, "description");
  if (message == NULL)
    message = "(no message)";
  gql_status = lookup_string (metadata, "gql_status");

  if (gql_status != NULL)
    return g_error_new (BP_ERROR, BP_ERROR_BACKEND, "%s: %s (GQLSTATUS %s)", code, message, gql_status);
  return g_error_new (BP_ERROR, BP_ERROR_BACKEND, "%s: %s", code, message);
}

/**
 * bp_bolt_error_dup_code:
 * @error: an error from the Bolt client
 *
 * Returns: (transfer full) (nullable): the server's status code, e.g.
 *   `Neo.ClientError.Statement.SyntaxError`, or %NULL if @error is not a
 *   server FAILURE
 */
char *
bp_bolt_error_dup_code (const GError *error)
{
  const char *colon;

  if (error == NULL || !g_error_matches (error, BP_ERROR, BP_ERROR_BACKEND))
    return NULL;
  colon = strstr (error->message, ": ");
  if (colon == NULL || colon == error->message)
    return NULL;
  for (const char *p = error->message; p < colon; p++)
    if (!(g_ascii_isalnum (*p) || *p == '.' || *p == '_' || *p == '-'))
      return NULL;
  return g_strndup (error->message, colon - error->message);
}

/**
 * bp_bolt_error_classify_code:
 * @code: a server status code
 *
 * Returns: the class of @code
 */
BpBoltErrorClass
bp_bolt_error_classify_code (const char *code)
{
  g_auto(GStrv) parts = NULL;
  const char *category;

  if (code == NULL)
    return BP_BOLT_ERROR_CLASS_OTHER;
  /* Re-classified as client errors in Neo4j 5 (python and JS drivers). */
  if (strcmp (code, "Neo.TransientError.Transaction.Terminated") == 0 ||
      strcmp (code, "Neo.TransientError.Transaction.LockClientStopped") == 0)
    return BP_BOLT_ERROR_CLASS_CLIENT;
  /* Retry after re-authentication, on a new connection. */
  if (strcmp (code, "Neo.ClientError.Security.AuthorizationExpired") == 0)
    return BP_BOLT_ERROR_CLASS_TRANSIENT;

  parts = g_strsplit (code, ".", 4);
  category = g_strv_length (parts) >= 2 ? parts[1] : "";
  if (strcmp (category, "TransientError") == 0)
    return BP_BOLT_ERROR_CLASS_TRANSIENT;
  if (strcmp (category, "ClientError") == 0)
    return BP_BOLT_ERROR_CLASS_CLIENT;
  if (strcmp (category, "DatabaseError") == 0)
    return BP_BOLT_ERROR_CLASS_DATABASE;
  return BP_BOLT_ERROR_CLASS_OTHER;
}

/**
 * bp_bolt_error_classify:
 * @error: (nullable): an error from the Bolt client
 *
 * Returns: what kind of failure @error is
 */
BpBoltErrorClass
bp_bolt_error_classify (const GError *error)
{
  if (error == NULL)
    return BP_BOLT_ERROR_CLASS_OTHER;
  if (g_error_matches (error, BP_ERROR, BP_ERROR_BACKEND))
    {
      g_autofree char *code = bp_bolt_error_dup_code (error);
      return bp_bolt_error_classify_code (code);
    }
  if (g_error_matches (error, BP_ERROR, BP_ERROR_UNAVAILABLE))
    {
      if (g_str_has_prefix (error->message, BP_BOLT_COMMIT_UNKNOWN_PREFIX))
        return BP_BOLT_ERROR_CLASS_COMMIT_UNKNOWN;
      return BP_BOLT_ERROR_CLASS_CONNECTION_LOST;
    }
  /* the receive timeout (hint) and the open timeout: the connection is gone */
  if (g_error_matches (error, BP_ERROR, BP_ERROR_TIMEOUT) &&
      (g_str_has_prefix (error->message, BP_BOLT_CONNECTION_LOST_PREFIX) ||
       g_str_has_prefix (error->message, BP_BOLT_OPEN_TIMEOUT_PREFIX)))
    return BP_BOLT_ERROR_CLASS_CONNECTION_LOST;
  if (error->domain == G_IO_ERROR && error->code != G_IO_ERROR_CANCELLED &&
      error->code != G_IO_ERROR_INVALID_ARGUMENT)
    return BP_BOLT_ERROR_CLASS_CONNECTION_LOST;
  if (error->domain == G_TLS_ERROR || error->domain == G_RESOLVER_ERROR)
    return BP_BOLT_ERROR_CLASS_CONNECTION_LOST;
  return BP_BOLT_ERROR_CLASS_OTHER;
}

/**
 * bp_bolt_error_is_retryable:
 * @error: (nullable): an error from the Bolt client
 *
 * Returns: %TRUE if a managed transaction may run again after @error
 *   (transient or connection lost before COMMIT)
 */
gboolean
bp_bolt_error_is_retryable (const GError *error)
{
  BpBoltErrorClass klass = bp_bolt_error_classify (error);

  return klass == BP_BOLT_ERROR_CLASS_TRANSIENT || klass == BP_BOLT_ERROR_CLASS_CONNECTION_LOST;
}

const char *
bp_bolt_error_class_to_string (BpBoltErrorClass klass)
{
  switch (klass)
    {
    case BP_BOLT_ERROR_CLASS_TRANSIENT:
      return "transient";
    case BP_BOLT_ERROR_CLASS_CLIENT:
      return "client";
    case BP_BOLT_ERROR_CLASS_DATABASE:
      return "database";
    case BP_BOLT_ERROR_CLASS_CONNECTION_LOST:
      return "connection-lost";
    case BP_BOLT_ERROR_CLASS_COMMIT_UNKNOWN:
      return "commit-unknown";
    case BP_BOLT_ERROR_CLASS_OTHER:
    default:
      return "other";
    }
}
