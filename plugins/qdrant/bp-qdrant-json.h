/* bp-qdrant-json.h: strict JSON scanning, point ids, validation and the
 * Qdrant response envelope
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The Qdrant release this client was written and checked against. */
#define BP_QDRANT_TARGET_MAJOR 1
#define BP_QDRANT_TARGET_MINOR 19

/**
 * BpQdrantLimits:
 * @max_batch_points: points (or ids) one Upsert/Retrieve/Delete call may carry
 * @max_vector_dim: largest vector dimension accepted (Qdrant's own bound is 65536)
 * @max_result_limit: largest `limit` of a query and page size of a scroll
 * @max_batch_queries: queries one QueryBatch call may carry
 * @max_json_depth: deepest nesting of any JSON document read or accepted
 * @max_request_bytes: largest request body sent (the server's default is 32 MiB)
 * @max_response_bytes: largest response body read; bigger ones fail
 * @max_line_bytes: longest JSON Lines line read by UpsertFromStream
 *
 * Every bound the caller or the server can push. bp_qdrant_limits_init()
 * fills in the defaults.
 */
typedef struct
{
  guint max_batch_points;
  guint max_vector_dim;
  guint max_result_limit;
  guint max_batch_queries;
  guint max_json_depth;
  gsize max_request_bytes;
  gsize max_response_bytes;
  gsize max_line_bytes;
} BpQdrantLimits;

void      bp_qdrant_limits_init          (BpQdrantLimits        *limits);
gboolean  bp_qdrant_limits_validate      (const BpQdrantLimits  *limits,
                                          GError               **error);

/* Point ids: an unsigned 64-bit integer in decimal, or a UUID. */
gboolean  bp_qdrant_id_normalize         (const char            *text,
                                          gssize                 len,
                                          char                 **normalized,
                                          gboolean              *is_uuid,
                                          GError               **error);
gboolean  bp_qdrant_id_parse_u64         (const char            *text,
                                          gsize                  len,
                                          guint64               *value);
void      bp_qdrant_json_append_id       (GString               *out,
                                          const char            *normalized_id);
gboolean  bp_qdrant_json_node_dup_id     (JsonNode              *node,
                                          char                 **id,
                                          GError               **error);

/* Id locations in response bodies ("$" is the root, "[]" any element). */
extern const char * const bp_qdrant_id_paths_points[];  /* scroll, query */
extern const char * const bp_qdrant_id_paths_records[]; /* retrieve */
extern const char * const bp_qdrant_id_paths_batch[];   /* query batch */
extern const char * const bp_qdrant_id_paths_line[];    /* a JSON Lines point */

/**
 * BpQdrantJsonMember:
 * @key: the raw (still escaped) key bytes inside the input
 * @key_len: length of @key
 * @start: offset of the member's value in the input
 * @end: offset just past the value
 *
 * A member of the top-level object, as bp_qdrant_json_scan() reports it.
 */
typedef struct
{
  const char *key;
  gsize       key_len;
  gsize       start;
  gsize       end;
} BpQdrantJsonMember;

gboolean  bp_qdrant_json_scan            (const char            *data,
                                          gsize                  len,
                                          guint                  max_depth,
                                          const char * const    *id_paths,
                                          GString              **rewritten,
                                          GArray                *members,
                                          GError               **error);
JsonNode *bp_qdrant_json_parse           (const char            *data,
                                          gsize                  len,
                                          guint                  max_depth,
                                          const char * const    *id_paths,
                                          GError               **error);

void      bp_qdrant_json_append_string   (GString               *out,
                                          const char            *utf8);
gboolean  bp_qdrant_json_append_double   (GString               *out,
                                          double                 value);
void      bp_qdrant_json_append_node     (GString               *out,
                                          JsonNode              *node);
char     *bp_qdrant_json_node_to_string  (JsonNode              *node);

/* Client-side validation of caller input (BP_ERROR_INVALID_ARGUMENT). */
gboolean  bp_qdrant_name_validate        (const char            *name,
                                          const char            *field,
                                          GError               **error);
gboolean  bp_qdrant_filter_validate      (const char            *json,
                                          guint                  max_depth,
                                          const char            *field,
                                          GError               **error);
gboolean  bp_qdrant_payload_validate     (const char            *json,
                                          guint                  max_depth,
                                          const char            *field,
                                          GError               **error);
gboolean  bp_qdrant_collection_config_validate (const char           *json,
                                                const BpQdrantLimits *limits,
                                                GError              **error);

/* Responses. */
gboolean  bp_qdrant_response_parse       (guint                  http_status,
                                          const char            *reason,
                                          const char            *retry_after,
                                          const char            *body,
                                          gsize                  len,
                                          gboolean               enveloped,
                                          guint                  max_depth,
                                          const char * const    *id_paths,
                                          JsonNode             **result,
                                          char                 **status,
                                          GError               **error);
gint64    bp_qdrant_retry_after_parse    (const char            *value,
                                          GDateTime             *now);
gboolean  bp_qdrant_error_is_retryable   (const GError          *error);
gboolean  bp_qdrant_version_check        (const char            *version,
                                          guint                  target_major,
                                          guint                  target_minor,
                                          GError               **error);

G_END_DECLS
