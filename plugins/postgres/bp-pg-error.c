/* bp-pg-error.c: PostgreSQL errors as GErrors, SQLSTATE classification
 *
 * A failed result becomes BP_ERROR_BACKEND with the message
 * "SQLSTATE <code>: <primary message>" (plus " (DETAIL: …)" when the server
 * sent one). The SQLSTATE is recovered from the message with
 * bp_pg_error_get_sqlstate(), so it survives the trip over D-Bus too.
 * Errors libpq makes itself carry no SQLSTATE; a broken connection is given
 * 08006 (connection_failure), a failed connection attempt 08001
 * (sqlclient_unable_to_establish_sqlconnection).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-pg-error.h"

#include <string.h>

static char *
trim_message (const char *message)
{
  char *copy = g_strdup (message != NULL ? message : "");

  return g_strstrip (copy);
}

/**
 * bp_pg_redact:
 * @message: a message
 * @secret: (nullable): a secret that must not appear in it
 *
 * Returns: (transfer full): @message with every occurrence of @secret
 *   replaced by "***"
 */
char *
bp_pg_redact (const char *message,
              const char *secret)
{
  GString *out;
  const char *p;
  gsize n;

  if (message == NULL)
    return NULL;
  if (secret == NULL || *secret == '\0')
    return g_strdup (message);

  out = g_string_new (NULL);
  n = strlen (secret);
  p = message;
  for (;;)
    {
      const char *hit = strstr (p, secret);

      if (hit == NULL)
        break;
      g_string_append_len (out, p, hit - p);
      g_string_append (out, "***");
      p = hit + n;
    }
  g_string_append (out, p);
  return g_string_free (out, FALSE);
}

/**
 * bp_pg_error_new_from_result:
 * @res: a failed result (PGRES_FATAL_ERROR)
 * @conn: (nullable): its connection
 *
 * Returns: (transfer full): a %BP_ERROR_BACKEND error
 */
GError *
bp_pg_error_new_from_result (const PGresult *res,
                             const PGconn   *conn)
{
  const char *sqlstate = PQresultErrorField (res, PG_DIAG_SQLSTATE);
  const char *primary = PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY);
  const char *detail = PQresultErrorField (res, PG_DIAG_MESSAGE_DETAIL);
  g_autofree char *text = NULL;

  if (primary != NULL)
    text = trim_message (primary);
  else
    text = trim_message (PQresultErrorMessage (res));
  if (*text == '\0' && conn != NULL)
    {
      g_free (text);
      text = trim_message (PQerrorMessage (conn));
    }

  if (sqlstate == NULL && conn != NULL && PQstatus (conn) == CONNECTION_BAD)
    sqlstate = "08006";

  if (sqlstate != NULL && detail != NULL)
    return g_error_new (BP_ERROR, BP_ERROR_BACKEND, "SQLSTATE %s: %s (DETAIL: %s)",
                        sqlstate, text, detail);
  if (sqlstate != NULL)
    return g_error_new (BP_ERROR, BP_ERROR_BACKEND, "SQLSTATE %s: %s", sqlstate, text);
  return g_error_new (BP_ERROR, BP_ERROR_BACKEND, "%s", text);
}

/**
 * bp_pg_error_new_from_conn:
 * @conn: a connection whose last operation failed
 * @sqlstate: the SQLSTATE to report ("08001" for a failed connect)
 * @password: (nullable): the password used, redacted from the message
 *
 * Returns: (transfer full): a %BP_ERROR_UNAVAILABLE error built from
 *   PQerrorMessage()
 */
GError *
bp_pg_error_new_from_conn (const PGconn *conn,
                           const char   *sqlstate,
                           const char   *password)
{
  g_autofree char *text = trim_message (conn != NULL ? PQerrorMessage (conn) : "out of memory");
  g_autofree char *redacted = NULL;

  /* One line: libpq separates the attempts on several hosts with newlines. */
  for (char *p = text; *p != '\0'; p++)
    if (*p == '\n')
      *p = ' ';
  redacted = bp_pg_redact (text, password);
  return g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "SQLSTATE %s: %s", sqlstate, redacted);
}

/**
 * bp_pg_error_get_sqlstate:
 * @error: an error
 * @out_sqlstate: (out caller-allocates): 6 bytes for the SQLSTATE
 *
 * Finds "SQLSTATE XXXXX" in the error message.
 *
 * Returns: %TRUE if found
 */
gboolean
bp_pg_error_get_sqlstate (const GError *error,
                          char          out_sqlstate[6])
{
  const char *hit;

  out_sqlstate[0] = '\0';
  if (error == NULL || error->message == NULL)
    return FALSE;
  hit = strstr (error->message, "SQLSTATE ");
  if (hit == NULL)
    return FALSE;
  hit += strlen ("SQLSTATE ");
  for (int i = 0; i < 5; i++)
    if (!(g_ascii_isdigit (hit[i]) || g_ascii_isupper (hit[i])))
      return FALSE;
  memcpy (out_sqlstate, hit, 5);
  out_sqlstate[5] = '\0';
  return TRUE;
}

/**
 * bp_pg_sqlstate_classify:
 * @sqlstate: (nullable): a SQLSTATE
 *
 * Returns: the class of @sqlstate
 */
BpPgErrorClass
bp_pg_sqlstate_classify (const char *sqlstate)
{
  if (sqlstate == NULL || strlen (sqlstate) != 5)
    return BP_PG_ERROR_CLASS_OTHER;
  if (g_str_equal (sqlstate, "40001") || g_str_equal (sqlstate, "40P01"))
    return BP_PG_ERROR_CLASS_RETRY_TX;
  if (g_str_has_prefix (sqlstate, "08") ||
      g_str_equal (sqlstate, "57P01") ||
      g_str_equal (sqlstate, "57P02") ||
      g_str_equal (sqlstate, "57P03"))
    return BP_PG_ERROR_CLASS_CONNECTION;
  if (g_str_has_prefix (sqlstate, "22") ||
      g_str_has_prefix (sqlstate, "23") ||
      g_str_has_prefix (sqlstate, "42"))
    return BP_PG_ERROR_CLASS_CLIENT;
  return BP_PG_ERROR_CLASS_OTHER;
}

/**
 * bp_pg_error_classify:
 * @error: an error from this plugin
 *
 * Classifies by the SQLSTATE in the message; %BP_ERROR_INVALID_ARGUMENT is
 * a client error and %BP_ERROR_UNAVAILABLE without SQLSTATE a connection
 * error.
 *
 * Returns: the class of @error
 */
BpPgErrorClass
bp_pg_error_classify (const GError *error)
{
  char sqlstate[6];

  if (error == NULL)
    return BP_PG_ERROR_CLASS_OTHER;
  if (g_error_matches (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT))
    return BP_PG_ERROR_CLASS_CLIENT;
  if (bp_pg_error_get_sqlstate (error, sqlstate))
    return bp_pg_sqlstate_classify (sqlstate);
  if (g_error_matches (error, BP_ERROR, BP_ERROR_UNAVAILABLE))
    return BP_PG_ERROR_CLASS_CONNECTION;
  return BP_PG_ERROR_CLASS_OTHER;
}
