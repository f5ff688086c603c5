/* bp-qdrant-client.h: an asynchronous Qdrant REST client on libsoup 3
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bp-qdrant-jsonl.h"

G_BEGIN_DECLS

#define BP_TYPE_QDRANT_CLIENT (bp_qdrant_client_get_type ())

G_DECLARE_FINAL_TYPE (BpQdrantClient, bp_qdrant_client, BP, QDRANT_CLIENT, GObject)

BpQdrantClient *bp_qdrant_client_new                 (const char            *url,
                                                      const char            *api_key,
                                                      GError               **error);
const char     *bp_qdrant_client_get_url             (BpQdrantClient        *self);
void            bp_qdrant_client_set_timeout_ms      (BpQdrantClient        *self,
                                                      guint                  timeout_ms);
guint           bp_qdrant_client_get_timeout_ms      (BpQdrantClient        *self);
gboolean        bp_qdrant_client_set_limits          (BpQdrantClient        *self,
                                                      const BpQdrantLimits  *limits,
                                                      GError               **error);
const BpQdrantLimits *bp_qdrant_client_get_limits    (BpQdrantClient        *self);

void            bp_qdrant_client_version_check_async  (BpQdrantClient      *self,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
gboolean        bp_qdrant_client_version_check_finish (BpQdrantClient      *self,
                                                       GAsyncResult        *result,
                                                       char               **server_version,
                                                       gboolean            *compatible,
                                                       char               **warning,
                                                       GError             **error);

void            bp_qdrant_client_list_collections_async  (BpQdrantClient      *self,
                                                          GCancellable        *cancellable,
                                                          GAsyncReadyCallback  callback,
                                                          gpointer             user_data);
char          **bp_qdrant_client_list_collections_finish (BpQdrantClient      *self,
                                                          GAsyncResult        *result,
                                                          GError             **error);

void            bp_qdrant_client_collection_exists_async  (BpQdrantClient      *self,
                                                           const char          *collection,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
gboolean        bp_qdrant_client_collection_exists_finish (BpQdrantClient      *self,
                                                           GAsyncResult        *result,
                                                           gboolean            *exists,
                                                           GError             **error);

void            bp_qdrant_client_get_collection_async  (BpQdrantClient      *self,
                                                        const char          *collection,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
char           *bp_qdrant_client_get_collection_finish (BpQdrantClient      *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);

void            bp_qdrant_client_create_collection_async  (BpQdrantClient      *self,
                                                           const char          *collection,
                                                           const char          *config_json,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
gboolean        bp_qdrant_client_create_collection_finish (BpQdrantClient      *self,
                                                           GAsyncResult        *result,
                                                           GError             **error);

void            bp_qdrant_client_delete_collection_async  (BpQdrantClient      *self,
                                                           const char          *collection,
                                                           GCancellable        *cancellable,
                                                           GAsyncReadyCallback  callback,
                                                           gpointer             user_data);
gboolean        bp_qdrant_client_delete_collection_finish (BpQdrantClient      *self,
                                                           GAsyncResult        *result,
                                                           GError             **error);

void            bp_qdrant_client_upsert_async  (BpQdrantClient      *self,
                                                const char          *collection,
                                                GPtrArray           *points,
                                                gboolean             wait,
                                                GCancellable        *cancellable,
                                                GAsyncReadyCallback  callback,
                                                gpointer             user_data);
char           *bp_qdrant_client_upsert_finish (BpQdrantClient      *self,
                                                GAsyncResult        *result,
                                                GError             **error);

void            bp_qdrant_client_upsert_from_stream_async  (BpQdrantClient      *self,
                                                            const char          *collection,
                                                            GInputStream        *input,
                                                            guint                batch_size,
                                                            gboolean             wait,
                                                            GCancellable        *cancellable,
                                                            GAsyncReadyCallback  callback,
                                                            gpointer             user_data);
gboolean        bp_qdrant_client_upsert_from_stream_finish (BpQdrantClient      *self,
                                                            GAsyncResult        *result,
                                                            guint64             *n_points,
                                                            GError             **error);

void            bp_qdrant_client_retrieve_async  (BpQdrantClient      *self,
                                                  const char          *collection,
                                                  const char * const  *ids,
                                                  gboolean             with_payload,
                                                  gboolean             with_vector,
                                                  GCancellable        *cancellable,
                                                  GAsyncReadyCallback  callback,
                                                  gpointer             user_data);
GPtrArray      *bp_qdrant_client_retrieve_finish (BpQdrantClient      *self,
                                                  GAsyncResult        *result,
                                                  GError             **error);

void            bp_qdrant_client_delete_points_async  (BpQdrantClient      *self,
                                                       const char          *collection,
                                                       const char * const  *ids,
                                                       const char          *filter_json,
                                                       gboolean             wait,
                                                       GCancellable        *cancellable,
                                                       GAsyncReadyCallback  callback,
                                                       gpointer             user_data);
char           *bp_qdrant_client_delete_points_finish (BpQdrantClient      *self,
                                                       GAsyncResult        *result,
                                                       GError             **error);

void            bp_qdrant_client_count_async  (BpQdrantClient      *self,
                                               const char          *collection,
                                               const char          *filter_json,
                                               gboolean             exact,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
gboolean        bp_qdrant_client_count_finish (BpQdrantClient      *self,
                                               GAsyncResult        *result,
                                               guint64             *count,
                                               GError             **error);

void            bp_qdrant_client_scroll_to_stream_async  (BpQdrantClient      *self,
                                                          const char          *collection,
                                                          const char          *filter_json,
                                                          guint                page_size,
                                                          gboolean             with_payload,
                                                          gboolean             with_vector,
                                                          GOutputStream       *output,
                                                          GCancellable        *cancellable,
                                                          GAsyncReadyCallback  callback,
                                                          gpointer             user_data);
gboolean        bp_qdrant_client_scroll_to_stream_finish (BpQdrantClient      *self,
                                                          GAsyncResult        *result,
                                                          guint64             *n_points,
                                                          GError             **error);

void            bp_qdrant_client_query_async  (BpQdrantClient      *self,
                                               const char          *collection,
                                               const BpQdrantQuery *query,
                                               GCancellable        *cancellable,
                                               GAsyncReadyCallback  callback,
                                               gpointer             user_data);
GPtrArray      *bp_qdrant_client_query_finish (BpQdrantClient      *self,
                                               GAsyncResult        *result,
                                               GError             **error);

void            bp_qdrant_client_query_batch_async  (BpQdrantClient      *self,
                                                     const char          *collection,
                                                     GPtrArray           *queries,
                                                     GCancellable        *cancellable,
                                                     GAsyncReadyCallback  callback,
                                                     gpointer             user_data);
GPtrArray      *bp_qdrant_client_query_batch_finish (BpQdrantClient      *self,
                                                     GAsyncResult        *result,
                                                     GError             **error);

void            bp_qdrant_client_create_snapshot_async  (BpQdrantClient      *self,
                                                         const char          *collection,
                                                         gboolean             wait,
                                                         GCancellable        *cancellable,
                                                         GAsyncReadyCallback  callback,
                                                         gpointer             user_data);
gboolean        bp_qdrant_client_create_snapshot_finish (BpQdrantClient      *self,
                                                         GAsyncResult        *result,
                                                         char               **name,
                                                         GError             **error);

void            bp_qdrant_client_list_snapshots_async  (BpQdrantClient      *self,
                                                        const char          *collection,
                                                        GCancellable        *cancellable,
                                                        GAsyncReadyCallback  callback,
                                                        gpointer             user_data);
char          **bp_qdrant_client_list_snapshots_finish (BpQdrantClient      *self,
                                                        GAsyncResult        *result,
                                                        GError             **error);

void            bp_qdrant_client_delete_snapshot_async  (BpQdrantClient      *self,
                                                         const char          *collection,
                                                         const char          *snapshot,
                                                         gboolean             wait,
                                                         GCancellable        *cancellable,
                                                         GAsyncReadyCallback  callback,
                                                         gpointer             user_data);
gboolean        bp_qdrant_client_delete_snapshot_finish (BpQdrantClient      *self,
                                                         GAsyncResult        *result,
                                                         GError             **error);

G_END_DECLS
