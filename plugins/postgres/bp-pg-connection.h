/* bp-pg-connection.h: one non-blocking libpq connection on a GMainContext
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>
#include <libpq-fe.h>

#include "bp-pg-types.h"

G_BEGIN_DECLS

/**
 * BpPgConnectionState:
 * @BP_PG_CONNECTION_STATE_NEW: not connected yet
 * @BP_PG_CONNECTION_STATE_CONNECTING: connect_async() is running
 * @BP_PG_CONNECTION_STATE_IDLE: connected, no operation running
 * @BP_PG_CONNECTION_STATE_BUSY: an operation (query, stream, pipeline,
 *   COPY) is running
 * @BP_PG_CONNECTION_STATE_CLOSED: closed or broken; create a new connection
 */
typedef enum
{
  BP_PG_CONNECTION_STATE_NEW,
  BP_PG_CONNECTION_STATE_CONNECTING,
  BP_PG_CONNECTION_STATE_IDLE,
  BP_PG_CONNECTION_STATE_BUSY,
  BP_PG_CONNECTION_STATE_CLOSED,
} BpPgConnectionState;

/**
 * BpPgPipelineFlags:
 * @BP_PG_PIPELINE_FLAGS_NONE: one sync point for the whole batch: the batch
 *   is one implicit transaction, all or nothing
 * @BP_PG_PIPELINE_FLAGS_SYNC_EACH: a sync point after each statement: each
 *   statement commits on its own and a failure does not abort the others
 */
typedef enum
{
  BP_PG_PIPELINE_FLAGS_NONE      = 0,
  BP_PG_PIPELINE_FLAGS_SYNC_EACH = 1 << 0,
} BpPgPipelineFlags;

#define BP_PG_CONNECTION_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define BP_PG_CONNECTION_DEFAULT_MAX_BUFFERED_ROWS  256
#define BP_PG_CONNECTION_DEFAULT_CANCEL_GRACE_MS    5000

#define BP_TYPE_PG_CONNECTION (bp_pg_connection_get_type ())

G_DECLARE_FINAL_TYPE (BpPgConnection, bp_pg_connection, BP, PG_CONNECTION, GObject)

BpPgConnection      *bp_pg_connection_new                   (const char          *conninfo,
                                                             const char          *password,
                                                             BpClock             *clock);
void                 bp_pg_connection_set_application_name  (BpPgConnection      *self,
                                                             const char          *application_name);
void                 bp_pg_connection_set_connect_timeout   (BpPgConnection      *self,
                                                             guint                timeout_ms);
void                 bp_pg_connection_set_max_buffered_rows (BpPgConnection      *self,
                                                             guint                max_rows);
void                 bp_pg_connection_set_cancel_grace      (BpPgConnection      *self,
                                                             guint                grace_ms);

BpPgConnectionState  bp_pg_connection_get_state             (BpPgConnection      *self);
PGTransactionStatusType bp_pg_connection_get_transaction_status (BpPgConnection *self);
int                  bp_pg_connection_get_backend_pid       (BpPgConnection      *self);
guint                bp_pg_connection_get_buffered_rows     (BpPgConnection      *self);
guint                bp_pg_connection_get_peak_buffered_rows (BpPgConnection     *self);
void                 bp_pg_connection_close                 (BpPgConnection      *self);

void                 bp_pg_connection_connect_async         (BpPgConnection      *self,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
gboolean             bp_pg_connection_connect_finish        (BpPgConnection      *self,
                                                             GAsyncResult        *result,
                                                             GError             **error);

void                 bp_pg_connection_query_async           (BpPgConnection      *self,
                                                             const char          *sql,
                                                             GVariant            *params,
                                                             guint                max_rows,
                                                             guint                timeout_ms,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
gboolean             bp_pg_connection_query_finish          (BpPgConnection      *self,
                                                             GAsyncResult        *result,
                                                             GVariant           **out_columns,
                                                             GVariant           **out_rows,
                                                             guint64             *out_affected,
                                                             GError             **error);

void                 bp_pg_connection_stream_async          (BpPgConnection      *self,
                                                             const char          *sql,
                                                             GVariant            *params,
                                                             guint                timeout_ms,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
BpPgRowDesc         *bp_pg_connection_stream_finish         (BpPgConnection      *self,
                                                             GAsyncResult        *result,
                                                             GError             **error);
void                 bp_pg_connection_stream_next_async     (BpPgConnection      *self,
                                                             guint                max_rows,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
GPtrArray           *bp_pg_connection_stream_next_finish    (BpPgConnection      *self,
                                                             GAsyncResult        *result,
                                                             gboolean            *out_done,
                                                             GError             **error);
void                 bp_pg_connection_stream_close_async    (BpPgConnection      *self,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
gboolean             bp_pg_connection_stream_close_finish   (BpPgConnection      *self,
                                                             GAsyncResult        *result,
                                                             GError             **error);

void                 bp_pg_connection_execute_async         (BpPgConnection      *self,
                                                             GVariant            *statements,
                                                             BpPgPipelineFlags    flags,
                                                             guint                timeout_ms,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
GVariant            *bp_pg_connection_execute_finish        (BpPgConnection      *self,
                                                             GAsyncResult        *result,
                                                             int                 *out_failed_index,
                                                             GError             **error);

void                 bp_pg_connection_copy_from_async       (BpPgConnection      *self,
                                                             const char          *copy_sql,
                                                             GInputStream        *input,
                                                             guint                timeout_ms,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
gboolean             bp_pg_connection_copy_from_finish      (BpPgConnection      *self,
                                                             GAsyncResult        *result,
                                                             guint64             *out_rows,
                                                             GError             **error);
void                 bp_pg_connection_copy_to_async         (BpPgConnection      *self,
                                                             const char          *copy_sql,
                                                             GOutputStream       *output,
                                                             guint                timeout_ms,
                                                             GCancellable        *cancellable,
                                                             GAsyncReadyCallback  callback,
                                                             gpointer             user_data);
gboolean             bp_pg_connection_copy_to_finish        (BpPgConnection      *self,
                                                             GAsyncResult        *result,
                                                             guint64             *out_rows,
                                                             GError             **error);

G_END_DECLS
