/* bp-qdrant-point.h: points, hits and queries, and their JSON
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bp-qdrant-json.h"

G_BEGIN_DECLS

/**
 * BpQdrantVector:
 * @name: (nullable): the vector's name; %NULL for the collection's unnamed vector
 * @values: (element-type double): the components
 */
typedef struct
{
  char   *name;
  GArray *values;
} BpQdrantVector;

/**
 * BpQdrantPoint:
 * @id: the id: decimal (up to 2^64-1) or a UUID; normalized once
 *   written or read
 * @vectors: (element-type BpQdrantVector): one unnamed vector, or named ones
 * @payload_json: (nullable): the payload, a JSON object as text
 */
typedef struct
{
  char      *id;
  GPtrArray *vectors;
  char      *payload_json;
} BpQdrantPoint;

/**
 * BpQdrantHit:
 * @id: the normalized id
 * @score: the score
 * @version: the point's version
 * @payload_json: (nullable): the payload as JSON text, if asked for
 */
typedef struct
{
  char    *id;
  double   score;
  guint64  version;
  char    *payload_json;
} BpQdrantHit;

/**
 * BpQdrantQuery:
 * @vector: (element-type double): the query vector (nearest neighbours)
 * @using: (nullable): which named vector to search
 * @filter_json: (nullable): a Filter as JSON text
 * @limit: how many hits at most; 0 for the server's default (10)
 * @with_payload: whether hits carry their payload
 * @has_score_threshold: whether @score_threshold applies
 * @score_threshold: the worst score returned
 */
typedef struct
{
  GArray   *vector;
  char     *using;
  char     *filter_json;
  guint     limit;
  gboolean  with_payload;
  gboolean  has_score_threshold;
  double    score_threshold;
} BpQdrantQuery;

BpQdrantVector *bp_qdrant_vector_new          (const char            *name,
                                               const double          *values,
                                               gsize                  n_values);
void            bp_qdrant_vector_free         (BpQdrantVector        *vector);

BpQdrantPoint  *bp_qdrant_point_new           (const char            *id,
                                               const double          *values,
                                               gsize                  n_values,
                                               const char            *payload_json);
void            bp_qdrant_point_add_vector    (BpQdrantPoint         *point,
                                               const char            *name,
                                               const double          *values,
                                               gsize                  n_values);
BpQdrantVector *bp_qdrant_point_get_vector    (BpQdrantPoint         *point,
                                               const char            *name);
void            bp_qdrant_point_free          (BpQdrantPoint         *point);

void            bp_qdrant_hit_free            (BpQdrantHit           *hit);

BpQdrantQuery  *bp_qdrant_query_new           (const double          *vector,
                                               gsize                  n_values,
                                               guint                  limit);
void            bp_qdrant_query_free          (BpQdrantQuery         *query);

/* Request bodies (caller input: BP_ERROR_INVALID_ARGUMENT naming the field). */
gboolean        bp_qdrant_points_write        (GString               *out,
                                               GPtrArray             *points,
                                               const BpQdrantLimits  *limits,
                                               GError               **error);
gboolean        bp_qdrant_ids_write           (GString               *out,
                                               const char * const    *ids,
                                               const char            *field,
                                               const BpQdrantLimits  *limits,
                                               GError               **error);
gboolean        bp_qdrant_query_write         (GString               *out,
                                               const BpQdrantQuery   *query,
                                               const char            *field,
                                               const BpQdrantLimits  *limits,
                                               GError               **error);
gboolean        bp_qdrant_jsonl_line_to_point (const char            *line,
                                               gsize                  len,
                                               const BpQdrantLimits  *limits,
                                               GString               *out,
                                               GError               **error);

/* Response parts (server data: BP_ERROR_BACKEND "malformed response"). */
GPtrArray      *bp_qdrant_hits_from_node      (JsonNode              *points,
                                               GError               **error);
GPtrArray      *bp_qdrant_points_from_node    (JsonNode              *records,
                                               GError               **error);
gboolean        bp_qdrant_record_write_line   (GString               *out,
                                               JsonNode              *record,
                                               GError               **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpQdrantVector, bp_qdrant_vector_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpQdrantPoint, bp_qdrant_point_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpQdrantHit, bp_qdrant_hit_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpQdrantQuery, bp_qdrant_query_free)

G_END_DECLS
