/* bp-pg-error.h: PostgreSQL errors as GErrors, SQLSTATE classification
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>
#include <libpq-fe.h>

G_BEGIN_DECLS

/**
 * BpPgErrorClass:
 * @BP_PG_ERROR_CLASS_OTHER: anything else (server-side failures)
 * @BP_PG_ERROR_CLASS_RETRY_TX: serialization failure or deadlock (40001,
 *   40P01): retry the whole transaction
 * @BP_PG_ERROR_CLASS_CONNECTION: the connection broke or could not be made
 *   (08xxx, 57P01, 57P02, 57P03): retryable only for idempotent calls
 * @BP_PG_ERROR_CLASS_CLIENT: the caller's fault (class 22 data exception,
 *   23 constraint violation, 42 syntax or access): never retried and
 *   ignored by the circuit breaker
 */
typedef enum
{
  BP_PG_ERROR_CLASS_OTHER,
  BP_PG_ERROR_CLASS_RETRY_TX,
  BP_PG_ERROR_CLASS_CONNECTION,
  BP_PG_ERROR_CLASS_CLIENT,
} BpPgErrorClass;

GError         *bp_pg_error_new_from_result   (const PGresult *res,
                                               const PGconn   *conn);
GError         *bp_pg_error_new_from_conn     (const PGconn   *conn,
                                               const char     *sqlstate,
                                               const char     *password);
gboolean        bp_pg_error_get_sqlstate      (const GError   *error,
                                               char            out_sqlstate[6]);
BpPgErrorClass  bp_pg_sqlstate_classify       (const char     *sqlstate);
BpPgErrorClass  bp_pg_error_classify          (const GError   *error);
char           *bp_pg_redact                  (const char     *message,
                                               const char     *secret);

G_END_DECLS
