/* bp-qdrant-point.c: points, hits and queries, and their JSON
 *
 * Writers check caller input against the limits and produce the exact
 * request text (ids digit for digit, payloads and filters spliced as the
 * caller wrote them once they passed the strict scan). Readers take nodes
 * parsed by bp_qdrant_json_parse() with the matching id paths.
 *
 * All functions here are pure and run in any thread.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-qdrant-point.h"

#include <float.h>
#include <math.h>
#include <string.h>

/**
 * bp_qdrant_vector_new:
 * @name: (nullable): the vector's name
 * @values: (array length=n_values) (nullable): the components
 * @n_values: how many
 *
 * Returns: (transfer full): a new vector
 */
BpQdrantVector *
bp_qdrant_vector_new (const char   *name,
                      const double *values,
                      gsize         n_values)
{
  BpQdrantVector *v = g_new0 (BpQdrantVector, 1);

  v->name = g_strdup (name);
  v->values = g_array_sized_new (FALSE, FALSE, sizeof (double), (guint) n_values);
  if (n_values > 0)
    g_array_append_vals (v->values, values, (guint) n_values);
  return v;
}

void
bp_qdrant_vector_free (BpQdrantVector *vector)
{
  if (vector == NULL)
    return;
  g_free (vector->name);
  g_array_unref (vector->values);
  g_free (vector);
}

/**
 * bp_qdrant_point_new:
 * @id: the id as text (checked when written)
 * @values: (array length=n_values) (nullable): the unnamed vector, or %NULL
 *   to add named ones with bp_qdrant_point_add_vector()
 * @n_values: how many components
 * @payload_json: (nullable): the payload object as JSON text; %NULL or ""
 *   for none
 *
 * Returns: (transfer full): a new point
 */
BpQdrantPoint *
bp_qdrant_point_new (const char   *id,
                     const double *values,
                     gsize         n_values,
                     const char   *payload_json)
{
  BpQdrantPoint *p = g_new0 (BpQdrantPoint, 1);

  p->id = g_strdup (id);
  p->vectors = g_ptr_array_new_with_free_func ((GDestroyNotify) bp_qdrant_vector_free);
  if (values != NULL)
    g_ptr_array_add (p->vectors, bp_qdrant_vector_new (NULL, values, n_values));
  if (payload_json != NULL && payload_json[0] != '\0')
    p->payload_json = g_strdup (payload_json);
  return p;
}

/**
 * bp_qdrant_point_add_vector:
 * @point: a point
 * @name: (nullable): the vector's name
 * @values: (array length=n_values): the components
 * @n_values: how many
 *
 * Adds a (named) vector.
 */
void
bp_qdrant_point_add_vector (BpQdrantPoint *point,
                            const char    *name,
                            const double  *values,
                            gsize          n_values)
{
  g_ptr_array_add (point->vectors, bp_qdrant_vector_new (name, values, n_values));
}

/**
 * bp_qdrant_point_get_vector:
 * @point: a point
 * @name: (nullable): a name, or %NULL for the unnamed vector
 *
 * Returns: (transfer none) (nullable): the vector
 */
BpQdrantVector *
bp_qdrant_point_get_vector (BpQdrantPoint *point,
                            const char    *name)
{
  guint i;

  for (i = 0; i < point->vectors->len; i++)
    {
      BpQdrantVector *v = g_ptr_array_index (point->vectors, i);

      if (g_strcmp0 (v->name, name) == 0)
        return v;
    }
  return NULL;
}

void
bp_qdrant_point_free (BpQdrantPoint *point)
{
  if (point == NULL)
    return;
  g_free (point->id);
  g_ptr_array_unref (point->vectors);
  g_free (point->payload_json);
  g_free (point);
}

void
bp_qdrant_hit_free (BpQdrantHit *hit)
{
  if (hit == NULL)
    return;
  g_free (hit->id);
  g_free (hit->payload_json);
  g_free (hit);
}

/**
 * bp_qdrant_query_new:
 * @vector: (array length=n_values): the query vector
 * @n_values: how many components
 * @limit: the most hits wanted; 0 for the server's default
 *
 * Returns: (transfer full): a query for the nearest neighbours of @vector,
 *   with payloads; set the other fields directly
 */
BpQdrantQuery *
bp_qdrant_query_new (const double *vector,
                     gsize         n_values,
                     guint         limit)
{
  BpQdrantQuery *q = g_new0 (BpQdrantQuery, 1);

  q->vector = g_array_sized_new (FALSE, FALSE, sizeof (double), (guint) n_values);
  if (n_values > 0)
    g_array_append_vals (q->vector, vector, (guint) n_values);
  q->limit = limit;
  q->with_payload = TRUE;
  return q;
}

void
bp_qdrant_query_free (BpQdrantQuery *query)
{
  if (query == NULL)
    return;
  g_array_unref (query->vector);
  g_free (query->using);
  g_free (query->filter_json);
  g_free (query);
}

/* --------------------------------------------------------------- writers */

static gboolean
values_write (GString               *out,
              const double          *values,
              gsize                  n,
              const char            *field,
              const BpQdrantLimits  *limits,
              GError               **error)
{
  gsize i;

  if (n == 0 || n > limits->max_vector_dim)
    {
      g_set_error (error, BP_ERROR, n == 0 ? BP_ERROR_INVALID_ARGUMENT : BP_ERROR_LIMIT_EXCEEDED,
                   "%s: must have 1 to %u components, has %" G_GSIZE_FORMAT,
                   field, limits->max_vector_dim, n);
      return FALSE;
    }
  g_string_append_c (out, '[');
  for (i = 0; i < n; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      /* Qdrant stores float32: larger magnitudes would become infinite. */
      if (!isfinite (values[i]) || fabs (values[i]) > FLT_MAX)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "%s[%" G_GSIZE_FORMAT "]: not a finite 32-bit float", field, i);
          return FALSE;
        }
      bp_qdrant_json_append_double (out, values[i]);
    }
  g_string_append_c (out, ']');
  return TRUE;
}

static gboolean
vector_name_validate (const char  *name,
                      const char  *field,
                      GError     **error)
{
  if (name[0] == '\0' || strlen (name) > 255 || !g_utf8_validate (name, -1, NULL))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "%s: a vector name must be 1 to 255 bytes of UTF-8", field);
      return FALSE;
    }
  return TRUE;
}

static gboolean
point_write (GString               *out,
             BpQdrantPoint         *point,
             guint                  index,
             const BpQdrantLimits  *limits,
             GError               **error)
{
  g_autofree char *field = g_strdup_printf ("points[%u]", index);
  g_autofree char *vfield = g_strdup_printf ("points[%u].vector", index);
  g_autofree char *id = NULL;
  g_autoptr(GError) local = NULL;
  guint i;

  if (point->id == NULL ||
      !bp_qdrant_id_normalize (point->id, -1, &id, NULL, &local))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "%s.id: %s", field,
                   local != NULL ? local->message : "missing");
      return FALSE;
    }
  if (point->vectors->len == 0)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "%s: missing", vfield);
      return FALSE;
    }

  g_string_append (out, "{\"id\":");
  bp_qdrant_json_append_id (out, id);
  g_string_append (out, ",\"vector\":");
  if (point->vectors->len == 1 &&
      ((BpQdrantVector *) g_ptr_array_index (point->vectors, 0))->name == NULL)
    {
      BpQdrantVector *v = g_ptr_array_index (point->vectors, 0);

      if (!values_write (out, (const double *) (gpointer) v->values->data, v->values->len,
                         vfield, limits, error))
        return FALSE;
    }
  else
    {
      g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

      g_string_append_c (out, '{');
      for (i = 0; i < point->vectors->len; i++)
        {
          BpQdrantVector *v = g_ptr_array_index (point->vectors, i);
          g_autofree char *nfield = NULL;

          if (v->name == NULL)
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "%s: an unnamed vector cannot be mixed with named ones", vfield);
              return FALSE;
            }
          if (!vector_name_validate (v->name, vfield, error))
            return FALSE;
          nfield = g_strdup_printf ("%s.%s", vfield, v->name);
          if (!g_hash_table_add (seen, v->name))
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "%s: given twice", nfield);
              return FALSE;
            }
          if (i > 0)
            g_string_append_c (out, ',');
          bp_qdrant_json_append_string (out, v->name);
          g_string_append_c (out, ':');
          if (!values_write (out, (const double *) (gpointer) v->values->data, v->values->len,
                             nfield, limits, error))
            return FALSE;
        }
      g_string_append_c (out, '}');
    }
  if (point->payload_json != NULL && point->payload_json[0] != '\0')
    {
      g_autofree char *pfield = g_strdup_printf ("%s.payload", field);

      if (!bp_qdrant_payload_validate (point->payload_json, limits->max_json_depth,
                                       pfield, error))
        return FALSE;
      g_string_append (out, ",\"payload\":");
      g_string_append (out, point->payload_json);
    }
  g_string_append_c (out, '}');
  return TRUE;
}

/**
 * bp_qdrant_points_write:
 * @out: the body being built
 * @points: (element-type BpQdrantPoint): the points
 * @limits: the bounds
 * @error: return location for a #GError
 *
 * Appends a PointsList body, `{"points":[…]}`, checking every id, vector
 * and payload. @out may hold a partial text on failure.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_qdrant_points_write (GString               *out,
                        GPtrArray             *points,
                        const BpQdrantLimits  *limits,
                        GError               **error)
{
  guint i;

  if (points->len == 0)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "points: at least one point is needed");
      return FALSE;
    }
  if (points->len > limits->max_batch_points)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "points: %u points exceed max-batch-points (%u)",
                   points->len, limits->max_batch_points);
      return FALSE;
    }
  g_string_append (out, "{\"points\":[");
  for (i = 0; i < points->len; i++)
    {
      if (i > 0)
        g_string_append_c (out, ',');
      if (!point_write (out, g_ptr_array_index (points, i), i, limits, error))
        return FALSE;
    }
  g_string_append (out, "]}");
  return TRUE;
}

/**
 * bp_qdrant_ids_write:
 * @out: the body being built
 * @ids: (array zero-terminated=1): ids as text
 * @field: the argument's name for error messages
 * @limits: the bounds
 * @error: return location for a #GError
 *
 * Appends a JSON array of ExtendedPointIds.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_qdrant_ids_write (GString               *out,
                     const char * const    *ids,
                     const char            *field,
                     const BpQdrantLimits  *limits,
                     GError               **error)
{
  guint n = ids != NULL ? g_strv_length ((char **) ids) : 0;
  guint i;

  if (n == 0)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "%s: at least one id is needed", field);
      return FALSE;
    }
  if (n > limits->max_batch_points)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "%s: %u ids exceed max-batch-points (%u)", field, n,
                   limits->max_batch_points);
      return FALSE;
    }
  g_string_append_c (out, '[');
  for (i = 0; i < n; i++)
    {
      g_autofree char *id = NULL;
      g_autoptr(GError) local = NULL;

      if (!bp_qdrant_id_normalize (ids[i], -1, &id, NULL, &local))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "%s[%u]: %s",
                       field, i, local->message);
          return FALSE;
        }
      if (i > 0)
        g_string_append_c (out, ',');
      bp_qdrant_json_append_id (out, id);
    }
  g_string_append_c (out, ']');
  return TRUE;
}

/**
 * bp_qdrant_query_write:
 * @out: the body being built
 * @query: the query
 * @field: the argument's name for error messages (`query`, `queries[1]`)
 * @limits: the bounds
 * @error: return location for a #GError
 *
 * Appends a QueryRequest for `POST /collections/{c}/points/query`:
 * `{"query":[…],"limit":N,"filter":{…},"with_payload":B,"score_threshold":S,"using":"v"}`.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_qdrant_query_write (GString               *out,
                       const BpQdrantQuery   *query,
                       const char            *field,
                       const BpQdrantLimits  *limits,
                       GError               **error)
{
  g_autofree char *vfield = g_strdup_printf ("%s.vector", field);

  g_string_append (out, "{\"query\":");
  if (!values_write (out, (const double *) (gpointer) query->vector->data, query->vector->len,
                     vfield, limits, error))
    return FALSE;
  if (query->limit > limits->max_result_limit)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "%s.limit: %u exceeds max-result-limit (%u)", field, query->limit,
                   limits->max_result_limit);
      return FALSE;
    }
  if (query->limit > 0)
    g_string_append_printf (out, ",\"limit\":%u", query->limit);
  if (query->filter_json != NULL)
    {
      g_autofree char *ffield = g_strdup_printf ("%s.filter", field);

      if (!bp_qdrant_filter_validate (query->filter_json, limits->max_json_depth, ffield, error))
        return FALSE;
      g_string_append (out, ",\"filter\":");
      g_string_append (out, query->filter_json);
    }
  g_string_append (out, query->with_payload ? ",\"with_payload\":true" : ",\"with_payload\":false");
  if (query->has_score_threshold)
    {
      g_string_append (out, ",\"score_threshold\":");
      if (!bp_qdrant_json_append_double (out, query->score_threshold))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "%s.score-threshold: not a finite number", field);
          return FALSE;
        }
    }
  if (query->using != NULL)
    {
      g_autofree char *ufield = g_strdup_printf ("%s.using", field);

      if (!vector_name_validate (query->using, ufield, error))
        return FALSE;
      g_string_append (out, ",\"using\":");
      bp_qdrant_json_append_string (out, query->using);
    }
  g_string_append_c (out, '}');
  return TRUE;
}

static gboolean
node_values_write (GString               *out,
                   JsonNode              *node,
                   const char            *field,
                   const BpQdrantLimits  *limits,
                   GError               **error)
{
  g_autoptr(GArray) values = NULL;
  JsonArray *array;
  guint i, n;

  if (!JSON_NODE_HOLDS_ARRAY (node))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "%s: must be an array of numbers", field);
      return FALSE;
    }
  array = json_node_get_array (node);
  n = json_array_get_length (array);
  values = g_array_sized_new (FALSE, FALSE, sizeof (double), MIN (n, limits->max_vector_dim));
  for (i = 0; i < n && i <= limits->max_vector_dim; i++)
    {
      JsonNode *e = json_array_get_element (array, i);
      GType t = JSON_NODE_HOLDS_VALUE (e) ? json_node_get_value_type (e) : G_TYPE_INVALID;
      double d;

      if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "%s[%u]: not a number", field, i);
          return FALSE;
        }
      d = json_node_get_double (e);
      g_array_append_val (values, d);
    }
  return values_write (out, (const double *) (gpointer) values->data, n, field, limits, error);
}

static const BpQdrantJsonMember *
find_member (GArray     *members,
             const char *key)
{
  gsize len = strlen (key);
  guint i;

  /* json-glib keeps the last of duplicate keys; so do we. */
  for (i = members->len; i > 0; i--)
    {
      const BpQdrantJsonMember *m = &g_array_index (members, BpQdrantJsonMember, i - 1);

      if (m->key_len == len && memcmp (m->key, key, len) == 0)
        return m;
    }
  return NULL;
}

/* The fast path of bp_qdrant_jsonl_line_to_point() for the common line:
 * plain member keys id, vector (an array of numbers) and payload (an
 * object or null), each at most once, an id that is a u64 number or a
 * string without escapes. Works on the spans the strict scan reported, so
 * nothing is parsed twice and no tree is built: a plain decimal component
 * (no exponent) is copied as written once its value is checked, others are
 * written in their shortest form. Anything else, valid or not, returns
 * %FALSE (with part of a point appended to @out, which the caller drops),
 * and the general path decides (and words the error). */
static gboolean
line_to_point_fast (const char            *line,
                    gsize                  len,
                    const BpQdrantLimits  *limits,
                    GArray                *members,
                    GString               *out)
{
  const BpQdrantJsonMember *id = NULL, *vector = NULL, *payload = NULL;
  gsize p, end, n = 0;
  guint i;

  for (i = 0; i < members->len; i++)
    {
      const BpQdrantJsonMember *m = &g_array_index (members, BpQdrantJsonMember, i);
      const BpQdrantJsonMember **slot;

      if (m->key_len == 2 && memcmp (m->key, "id", 2) == 0)
        slot = &id;
      else if (m->key_len == 6 && memcmp (m->key, "vector", 6) == 0)
        slot = &vector;
      else if (m->key_len == 7 && memcmp (m->key, "payload", 7) == 0)
        slot = &payload;
      else
        return FALSE;
      if (*slot != NULL)
        return FALSE;
      *slot = m;
    }
  if (id == NULL || vector == NULL || line[vector->start] != '[')
    return FALSE;
  if (payload != NULL && line[payload->start] != '{' &&
      !(payload->end - payload->start == 4 && memcmp (line + payload->start, "null", 4) == 0))
    return FALSE;

  /* id */
  g_string_append (out, "{\"id\":");
  if (line[id->start] == '"')
    {
      g_autofree char *normalized = NULL;
      const char *text = line + id->start + 1;
      gsize text_len = id->end - id->start - 2;

      if (memchr (text, '\\', text_len) != NULL ||
          !bp_qdrant_id_normalize (text, (gssize) text_len, &normalized, NULL, NULL))
        return FALSE;
      bp_qdrant_json_append_id (out, normalized);
    }
  else if (bp_qdrant_id_parse_u64 (line + id->start, id->end - id->start, NULL))
    g_string_append_len (out, line + id->start, (gssize) (id->end - id->start));
  else
    return FALSE;

  /* vector: the scan vouched for the syntax, so elements are values
   * separated by commas and white space */
  g_string_append (out, ",\"vector\":[");
  p = vector->start + 1;
  end = vector->end - 1; /* the ']' */
  while (p < end)
    {
      gsize t, q, int_digits = 0;
      gboolean plain = TRUE, in_fraction = FALSE;
      char buf[G_ASCII_DTOSTR_BUF_SIZE];
      double d;

      while (p < end && (line[p] == ' ' || line[p] == '\t' || line[p] == '\r' ||
                         line[p] == '\n' || line[p] == ','))
        p++;
      if (p >= end)
        break;
      if (line[p] != '-' && !g_ascii_isdigit (line[p]))
        return FALSE; /* not a number */
      for (q = p; q < end && (g_ascii_isdigit (line[q]) || line[q] == '-' || line[q] == '+' ||
                              line[q] == '.' || line[q] == 'e' || line[q] == 'E'); q++)
        {
          if (line[q] == 'e' || line[q] == 'E')
            plain = FALSE;
          else if (line[q] == '.')
            in_fraction = TRUE;
          else if (!in_fraction && g_ascii_isdigit (line[q]))
            int_digits++;
        }
      t = q - p;
      if (++n > limits->max_vector_dim)
        return FALSE;
      if (n > 1)
        g_string_append_c (out, ',');
      /* Qdrant stores float32: larger magnitudes would become infinite.
       * A plain decimal below 10^38 (FLT_MAX is 3.4·10^38) needs no
       * conversion to know; it goes out as written. */
      if (plain && int_digits <= 38)
        g_string_append_len (out, line + p, (gssize) t);
      else
        {
          if (t >= sizeof buf)
            return FALSE;
          memcpy (buf, line + p, t);
          buf[t] = '\0';
          d = g_ascii_strtod (buf, NULL);
          if (!isfinite (d) || fabs (d) > FLT_MAX)
            return FALSE;
          bp_qdrant_json_append_double (out, d);
        }
      p = q;
    }
  if (n == 0)
    return FALSE;
  g_string_append_c (out, ']');

  if (payload != NULL && line[payload->start] == '{')
    {
      g_string_append (out, ",\"payload\":");
      g_string_append_len (out, line + payload->start, (gssize) (payload->end - payload->start));
    }
  g_string_append_c (out, '}');
  return TRUE;
}

/**
 * bp_qdrant_jsonl_line_to_point:
 * @line: one JSON Lines line, without the newline
 * @len: its length
 * @limits: the bounds
 * @out: where the PointStruct is appended
 * @error: return location for a #GError
 *
 * Checks one line `{"id":…,"vector":[…] or {"name":[…]},"payload":{…}}`
 * (id a non-negative integer or UUID, given as a number or a string;
 * payload optional) and appends the PointStruct for it. The payload is
 * copied verbatim. Other members are refused.
 *
 * Returns: %TRUE on success; %BP_ERROR_INVALID_ARGUMENT (or
 *   %BP_ERROR_LIMIT_EXCEEDED) otherwise, the message naming the member
 */
gboolean
bp_qdrant_jsonl_line_to_point (const char            *line,
                               gsize                  len,
                               const BpQdrantLimits  *limits,
                               GString               *out,
                               GError               **error)
{
  g_autoptr(GArray) members = g_array_new (FALSE, FALSE, sizeof (BpQdrantJsonMember));
  g_autoptr(JsonParser) parser = NULL;
  g_autoptr(GError) local = NULL;
  GString *rewritten = NULL;
  g_autofree char *id = NULL;
  JsonNode *root, *idn, *vector, *payload;
  JsonObject *obj;
  JsonObjectIter iter;
  const char *name;
  JsonNode *value;
  gsize mark = out->len;
  gboolean ok;

  if (len > limits->max_line_bytes)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "line longer than max-line-bytes (%" G_GSIZE_FORMAT ")",
                   limits->max_line_bytes);
      return FALSE;
    }
  /* The ids are read from the spans: nothing to rewrite for json-glib. */
  if (bp_qdrant_json_scan (line, len, limits->max_json_depth, NULL, NULL, members, NULL) &&
      line_to_point_fast (line, len, limits, members, out))
    return TRUE;
  g_string_truncate (out, mark);
  g_array_set_size (members, 0);
  if (!bp_qdrant_json_scan (line, len, limits->max_json_depth, bp_qdrant_id_paths_line,
                            &rewritten, members, error))
    return FALSE;
  parser = json_parser_new ();
  if (rewritten != NULL)
    ok = json_parser_load_from_data (parser, rewritten->str, (gssize) rewritten->len, &local);
  else
    ok = json_parser_load_from_data (parser, line, (gssize) len, &local);
  if (rewritten != NULL)
    g_string_free (rewritten, TRUE);
  root = ok ? json_parser_get_root (parser) : NULL;
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root))
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "a point must be a JSON object {\"id\", \"vector\", \"payload\"}");
      return FALSE;
    }
  obj = json_node_get_object (root);

  json_object_iter_init (&iter, obj);
  while (json_object_iter_next (&iter, &name, &value))
    if (!g_str_equal (name, "id") && !g_str_equal (name, "vector") &&
        !g_str_equal (name, "payload"))
      {
        g_autofree char *shown = g_utf8_make_valid (name, MIN (strlen (name), 64));

        g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                     "unknown member '%s' (expected id, vector, payload)", shown);
        return FALSE;
      }

  idn = json_object_get_member (obj, "id");
  if (idn == NULL)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "id: missing");
      return FALSE;
    }
  if (!bp_qdrant_json_node_dup_id (idn, &id, &local))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "id: %s", local->message);
      return FALSE;
    }

  g_string_append (out, "{\"id\":");
  bp_qdrant_json_append_id (out, id);
  g_string_append (out, ",\"vector\":");
  vector = json_object_get_member (obj, "vector");
  if (vector == NULL)
    {
      g_string_truncate (out, mark);
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "vector: missing");
      return FALSE;
    }
  if (JSON_NODE_HOLDS_OBJECT (vector))
    {
      JsonObject *named = json_node_get_object (vector);
      gboolean first = TRUE;

      if (json_object_get_size (named) == 0)
        {
          g_string_truncate (out, mark);
          g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                               "vector: an object of named vectors must not be empty");
          return FALSE;
        }
      g_string_append_c (out, '{');
      json_object_iter_init (&iter, named);
      while (json_object_iter_next (&iter, &name, &value))
        {
          g_autofree char *shown = g_utf8_make_valid (name, MIN (strlen (name), 64));
          g_autofree char *field = g_strdup_printf ("vector.%s", shown);

          if (!vector_name_validate (name, "vector", error))
            {
              g_string_truncate (out, mark);
              return FALSE;
            }
          if (!first)
            g_string_append_c (out, ',');
          first = FALSE;
          bp_qdrant_json_append_string (out, name);
          g_string_append_c (out, ':');
          if (!node_values_write (out, value, field, limits, error))
            {
              g_string_truncate (out, mark);
              return FALSE;
            }
        }
      g_string_append_c (out, '}');
    }
  else if (!node_values_write (out, vector, "vector", limits, error))
    {
      g_string_truncate (out, mark);
      return FALSE;
    }

  payload = json_object_get_member (obj, "payload");
  if (payload != NULL && !JSON_NODE_HOLDS_NULL (payload))
    {
      const BpQdrantJsonMember *m = find_member (members, "payload");

      if (!JSON_NODE_HOLDS_OBJECT (payload))
        {
          g_string_truncate (out, mark);
          g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                               "payload: must be a JSON object or null");
          return FALSE;
        }
      g_string_append (out, ",\"payload\":");
      if (m != NULL)
        g_string_append_len (out, line + m->start, m->end - m->start);
      else /* the key was written with escapes */
        bp_qdrant_json_append_node (out, payload);
    }
  g_string_append_c (out, '}');
  return TRUE;
}

/* --------------------------------------------------------------- readers */

static gboolean
malformed (GError     **error,
           const char  *what,
           guint        index)
{
  g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
               "malformed response: point %u: %s", index, what);
  return FALSE;
}

static char *
payload_dup (JsonObject *obj)
{
  JsonNode *payload = json_object_get_member (obj, "payload");

  if (payload == NULL || !JSON_NODE_HOLDS_OBJECT (payload))
    return NULL;
  return bp_qdrant_json_node_to_string (payload);
}

static gboolean
node_get_id (JsonObject  *obj,
             guint        index,
             char       **id,
             GError     **error)
{
  g_autoptr(GError) local = NULL;

  if (!bp_qdrant_json_node_dup_id (json_object_get_member (obj, "id"), id, &local))
    return malformed (error, local->message, index);
  return TRUE;
}

static gboolean
number_get (JsonNode *node,
            double   *out)
{
  GType t;

  if (node == NULL || !JSON_NODE_HOLDS_VALUE (node))
    return FALSE;
  t = json_node_get_value_type (node);
  if (t != G_TYPE_INT64 && t != G_TYPE_DOUBLE)
    return FALSE;
  *out = json_node_get_double (node);
  return TRUE;
}

/**
 * bp_qdrant_hits_from_node:
 * @points: the `points` array of a QueryResponse
 * @error: return location for a #GError
 *
 * Returns: (transfer container) (element-type BpQdrantHit): the hits
 */
GPtrArray *
bp_qdrant_hits_from_node (JsonNode  *points,
                          GError   **error)
{
  g_autoptr(GPtrArray) hits = NULL;
  JsonArray *array;
  guint i;

  if (points == NULL || !JSON_NODE_HOLDS_ARRAY (points))
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_BACKEND,
                           "malformed response: points is not an array");
      return NULL;
    }
  array = json_node_get_array (points);
  hits = g_ptr_array_new_full (json_array_get_length (array), (GDestroyNotify) bp_qdrant_hit_free);
  for (i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *e = json_array_get_element (array, i);
      g_autoptr(BpQdrantHit) hit = g_new0 (BpQdrantHit, 1);
      JsonObject *obj;
      JsonNode *version;

      if (!JSON_NODE_HOLDS_OBJECT (e))
        {
          malformed (error, "not an object", i);
          return NULL;
        }
      obj = json_node_get_object (e);
      if (!node_get_id (obj, i, &hit->id, error))
        return NULL;
      if (!number_get (json_object_get_member (obj, "score"), &hit->score))
        {
          malformed (error, "score is not a number", i);
          return NULL;
        }
      version = json_object_get_member (obj, "version");
      if (version != NULL && JSON_NODE_HOLDS_VALUE (version) &&
          json_node_get_value_type (version) == G_TYPE_INT64 &&
          json_node_get_int (version) >= 0)
        hit->version = (guint64) json_node_get_int (version);
      hit->payload_json = payload_dup (obj);
      g_ptr_array_add (hits, g_steal_pointer (&hit));
    }
  return g_steal_pointer (&hits);
}

/* Dense vectors only: a list of numbers; sparse and multi-vectors are
 * left out (they have no place in (id, vector, payload)). */
static gboolean
dense_values (JsonNode *node,
              GArray  **values)
{
  JsonArray *array;
  guint i;

  if (!JSON_NODE_HOLDS_ARRAY (node))
    return FALSE;
  array = json_node_get_array (node);
  *values = g_array_sized_new (FALSE, FALSE, sizeof (double), json_array_get_length (array));
  for (i = 0; i < json_array_get_length (array); i++)
    {
      double d;

      if (!number_get (json_array_get_element (array, i), &d))
        {
          g_clear_pointer (values, g_array_unref);
          return FALSE;
        }
      g_array_append_val (*values, d);
    }
  return TRUE;
}

static BpQdrantPoint *
point_from_node (JsonNode  *node,
                 guint      index,
                 GError   **error)
{
  g_autoptr(BpQdrantPoint) point = NULL;
  g_autofree char *id = NULL;
  JsonObject *obj;
  JsonNode *vector;
  GArray *values = NULL;

  if (!JSON_NODE_HOLDS_OBJECT (node))
    {
      malformed (error, "not an object", index);
      return NULL;
    }
  obj = json_node_get_object (node);
  if (!node_get_id (obj, index, &id, error))
    return NULL;
  point = bp_qdrant_point_new (NULL, NULL, 0, NULL);
  point->id = g_steal_pointer (&id);
  point->payload_json = payload_dup (obj);

  vector = json_object_get_member (obj, "vector");
  if (vector != NULL && dense_values (vector, &values))
    {
      BpQdrantVector *v = g_new0 (BpQdrantVector, 1);

      v->values = values;
      g_ptr_array_add (point->vectors, v);
    }
  else if (vector != NULL && JSON_NODE_HOLDS_OBJECT (vector))
    {
      JsonObjectIter iter;
      const char *name;
      JsonNode *value;

      json_object_iter_init (&iter, json_node_get_object (vector));
      while (json_object_iter_next (&iter, &name, &value))
        if (dense_values (value, &values))
          {
            BpQdrantVector *v = g_new0 (BpQdrantVector, 1);

            v->name = g_strdup (name);
            v->values = values;
            g_ptr_array_add (point->vectors, v);
          }
    }
  return g_steal_pointer (&point);
}

/**
 * bp_qdrant_points_from_node:
 * @records: an array of Records
 * @error: return location for a #GError
 *
 * Returns: (transfer container) (element-type BpQdrantPoint): the points;
 *   only dense vectors are kept
 */
GPtrArray *
bp_qdrant_points_from_node (JsonNode  *records,
                            GError   **error)
{
  g_autoptr(GPtrArray) points = NULL;
  JsonArray *array;
  guint i;

  if (records == NULL || !JSON_NODE_HOLDS_ARRAY (records))
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_BACKEND,
                           "malformed response: records are not an array");
      return NULL;
    }
  array = json_node_get_array (records);
  points = g_ptr_array_new_full (json_array_get_length (array),
                                 (GDestroyNotify) bp_qdrant_point_free);
  for (i = 0; i < json_array_get_length (array); i++)
    {
      BpQdrantPoint *p = point_from_node (json_array_get_element (array, i), i, error);

      if (p == NULL)
        return NULL;
      g_ptr_array_add (points, p);
    }
  return g_steal_pointer (&points);
}

/**
 * bp_qdrant_record_write_line:
 * @out: where the line is appended
 * @record: a Record of a scroll page
 * @error: return location for a #GError
 *
 * Appends `{"id":…,"vector":…,"payload":…}` and a newline, the same shape
 * bp_qdrant_jsonl_line_to_point() reads (vector and payload only when the
 * record has them). Integer ids are written digit for digit.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_qdrant_record_write_line (GString   *out,
                             JsonNode  *record,
                             GError   **error)
{
  g_autofree char *id = NULL;
  JsonObject *obj;
  JsonNode *vector, *payload;

  if (record == NULL || !JSON_NODE_HOLDS_OBJECT (record))
    return malformed (error, "not an object", 0);
  obj = json_node_get_object (record);
  if (!node_get_id (obj, 0, &id, error))
    return FALSE;
  g_string_append (out, "{\"id\":");
  bp_qdrant_json_append_id (out, id);
  vector = json_object_get_member (obj, "vector");
  if (vector != NULL && !JSON_NODE_HOLDS_NULL (vector))
    {
      g_string_append (out, ",\"vector\":");
      bp_qdrant_json_append_node (out, vector);
    }
  payload = json_object_get_member (obj, "payload");
  if (payload != NULL && !JSON_NODE_HOLDS_NULL (payload))
    {
      g_string_append (out, ",\"payload\":");
      bp_qdrant_json_append_node (out, payload);
    }
  g_string_append (out, "}\n");
  return TRUE;
}
