/* bp-bolt-ops.h: D-Bus options and whole-result operations of the bolt plugin
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bp-bolt-connection.h"

G_BEGIN_DECLS

typedef enum
{
  BP_BOLT_OPT_DATABASE     = 1 << 0,
  BP_BOLT_OPT_ACCESS_MODE  = 1 << 1,
  BP_BOLT_OPT_BOOKMARKS    = 1 << 2,
  BP_BOLT_OPT_TIMEOUT      = 1 << 3,
  BP_BOLT_OPT_FETCH_SIZE   = 1 << 4,
  BP_BOLT_OPT_TX_METADATA  = 1 << 5,
  BP_BOLT_OPT_MAX_RECORDS  = 1 << 6,
  BP_BOLT_OPT_IDLE_TIMEOUT = 1 << 7,
} BpBoltOptionFlags;

#define BP_BOLT_MAX_QUERY_SIZE        (1024 * 1024)
#define BP_BOLT_MAX_BOOKMARKS         1000
#define BP_BOLT_MAX_FETCH_SIZE        100000
#define BP_BOLT_DEFAULT_IDLE_TIMEOUT  60000
#define BP_BOLT_MAX_IDLE_TIMEOUT      3600000

/**
 * BpBoltOptions:
 * @database: (nullable): the database, %NULL for the default
 * @write: %TRUE unless access-mode is read
 * @bookmarks: (nullable): bookmarks to wait for
 * @timeout_ms: transaction timeout, 0 for the server's
 * @fetch_size: records per PULL
 * @tx_metadata: (nullable): `a{sv}`
 * @max_records: the bound on records returned
 * @idle_timeout_ms: idle timeout of an explicit transaction
 *
 * Parsed `a{sv}` options of Graph and GraphTransaction calls.
 */
typedef struct
{
  char      *database;
  gboolean   write;
  char     **bookmarks;
  guint      timeout_ms;
  gint64     fetch_size;
  GVariant  *tx_metadata;
  guint      max_records;
  guint      idle_timeout_ms;
} BpBoltOptions;

gboolean  bp_bolt_options_parse     (GVariant            *options,
                                     BpBoltOptionFlags    allowed,
                                     const char          *default_database,
                                     gint64               default_fetch_size,
                                     guint                max_records,
                                     BpBoltOptions       *out,
                                     GError             **error);
void      bp_bolt_options_clear     (BpBoltOptions       *options);

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (BpBoltOptions, bp_bolt_options_clear)

GVariant *bp_bolt_options_to_extra  (const BpBoltOptions *options);
gboolean  bp_bolt_check_query       (const char          *field,
                                     const char          *cypher,
                                     GError             **error);

void      bp_bolt_collect_async     (BpBoltStream        *stream,
                                     guint                max_records,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data);
GVariant *bp_bolt_collect_finish    (BpBoltStream        *stream,
                                     GAsyncResult        *result,
                                     GError             **error);

void      bp_bolt_run_collect_async  (BpBoltConnection    *connection,
                                      const char          *cypher,
                                      GVariant            *params,
                                      GVariant            *extra,
                                      gint64               fetch_size,
                                      guint                max_records,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data);
GVariant *bp_bolt_run_collect_finish (BpBoltConnection    *connection,
                                      GAsyncResult        *result,
                                      GError             **error);

void      bp_bolt_close_passed_fds    (GDBusMethodInvocation *invocation);

void      bp_bolt_stream_to_fd_async  (BpBoltStream        *stream,
                                       int                  fd,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data);
gboolean  bp_bolt_stream_to_fd_finish (BpBoltStream        *stream,
                                       GAsyncResult        *result,
                                       guint64             *n_records,
                                       GError             **error);

G_END_DECLS
