/* bp-pg-fd-stream.h: a query's rows streamed into a file descriptor
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

#include "bp-pg-connection.h"

G_BEGIN_DECLS

typedef enum
{
  BP_PG_FORMAT_JSONL,
  BP_PG_FORMAT_CSV,
} BpPgFormat;

#define BP_TYPE_PG_FD_STREAM (bp_pg_fd_stream_get_type ())

G_DECLARE_FINAL_TYPE (BpPgFdStream, bp_pg_fd_stream, BP, PG_FD_STREAM, GObject)

BpPgFdStream *bp_pg_fd_stream_new          (BpPgConnection      *conn,
                                            int                  fd,
                                            BpPgFormat           format);
void          bp_pg_fd_stream_start_async  (BpPgFdStream        *self,
                                            const char          *sql,
                                            GVariant            *params,
                                            guint                timeout_ms,
                                            GCancellable        *cancellable,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
GVariant     *bp_pg_fd_stream_start_finish (BpPgFdStream        *self,
                                            GAsyncResult        *result,
                                            GError             **error);
void          bp_pg_fd_stream_wait_async   (BpPgFdStream        *self,
                                            GAsyncReadyCallback  callback,
                                            gpointer             user_data);
gboolean      bp_pg_fd_stream_wait_finish  (BpPgFdStream        *self,
                                            GAsyncResult        *result,
                                            guint64             *out_rows,
                                            GError             **error);

G_END_DECLS
