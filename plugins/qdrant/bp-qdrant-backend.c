/* bp-qdrant-backend.c: backend type `qdrant`
 *
 * Serves org.backplane.Backplane1.Vectors with a BpQdrantClient. A method
 * handler validates its arguments and options (InvalidArgument naming the
 * key), builds an Op and runs it through the backend's BpRetry; each
 * attempt holds a permit of the backend's breaker. A server's Retry-After
 * (429/503) rides on the error, and BpRetry sleeps at least that long
 * before the next attempt, or does not retry if it does not fit. Reads,
 * upserts and deletes by id are idempotent and retried; collection and
 * snapshot creation and the fd streams are not.
 *
 * Dead letters: Upsert and Delete by ids with the `dead-letter` option
 * that still fail when the retries are over (for a reason that is not the
 * caller's: a retryable, fatal or ambiguous failure, the breaker open) are
 * stored in the daemon's dead-letter queue as `Vectors.Upsert`
 * `(s collection, a(sads) points, b wait)` or `Vectors.Delete`
 * `(s collection, as ids, b wait)`, keyed by the `idempotency-key` option or
 * by a hash of the operation; the caller still gets the error, naming the
 * entry. replay_async() sends a replayed entry once (the base class wraps
 * it in the breaker and the retry budget).
 *
 * Streams: UpsertFromFd reads the caller's fd through a non-blocking
 * GUnixInputStream in bounded batches; ScrollToFd writes a header line,
 * the points and an end (or error) line to a non-blocking
 * GUnixOutputStream, and a G_IO_HUP/G_IO_ERR watch on the fd cancels it
 * as soon as the reader goes away.
 *
 * Everything runs on the main context; nothing blocks.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib-unix.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>

#include "bp-qdrant-backend.h"
#include "bp-qdrant-client.h"
#include "bp-qdrant-dbus.h"

enum
{
  COMPAT_WARN,
  COMPAT_STRICT,
  COMPAT_OFF,
};

struct _BpQdrantBackend
{
  BpBackend       parent_instance;

  BpDBusVectors  *iface;            /* (owned) */
  BpQdrantClient *client;           /* (owned) (nullable) until configured */
  BpQdrantLimits  limits;
  guint           compatibility;
  char           *version_warning;  /* (owned) (nullable) why the server is degraded */
};

G_DEFINE_FINAL_TYPE (BpQdrantBackend, bp_qdrant_backend, BP_TYPE_BACKEND)

/* ------------------------------------------------------------ failures */

/* BpBackendClass.classify_error, for the breaker, the retry policy and
 * the dead-letter decision: unreachable, timed out, 429 and 502/503/504 are
 * retryable; a 5xx or a malformed answer is the server's fault (fatal); the
 * server refusing our input (other 4xx) and anything the client refused
 * before sending is not the backend's fault (ignore). */
static BpFailureKind
bp_qdrant_backend_classify_error (BpBackend    *backend,
                                  const GError *error)
{
  if (error->domain == BP_ERROR && error->code == BP_ERROR_BACKEND)
    {
      if (g_str_has_prefix (error->message, "HTTP 4"))
        return BP_FAILURE_IGNORE;
      return BP_FAILURE_FATAL;
    }
  return bp_failure_kind_from_error (error);
}

/* ---------------------------------------------------------------- ops */

typedef struct _Op Op;

/* Starts the client call of one attempt; its callback gets the result. */
typedef void      (*OpStartFunc)  (Op                  *op,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data);
/* Finishes the client call into the D-Bus reply (a tuple). */
typedef GVariant *(*OpFinishFunc) (Op                  *op,
                                   GAsyncResult        *result,
                                   GError             **error);

struct _Op
{
  BpQdrantBackend *self;          /* (owned) */
  BpCall          *call;          /* (owned) (nullable) */
  GTask           *task;          /* (owned) (nullable) for internal ops */
  OpStartFunc      start;
  OpFinishFunc     finish;
  BpIdempotency    idempotency;
  gint64           started_us;
  GCancellable    *cancellable;   /* (owned) */
  gulong           cancel_id;     /* chains the call's cancellable to ours */

  /* arguments */
  char            *collection;
  char            *name;
  char            *json;
  char           **ids;
  GPtrArray       *points;        /* (element-type BpQdrantPoint) */
  BpQdrantQuery   *query;
  GPtrArray       *queries;       /* (element-type BpQdrantQuery) */
  char            *using;
  gboolean         wait;
  gboolean         with_payload;
  gboolean         with_vector;
  gboolean         exact;
  guint            size;

  /* streams */
  int              fd;
  GInputStream    *input;         /* (owned) (nullable) */
  GOutputStream   *output;        /* (owned) (nullable) */
  GSource         *hup;           /* (owned) (nullable) */
  GBytes          *line;          /* (owned) (nullable) being written */
  guint64          count;

  /* dead letters (the `dead-letter` option) */
  const char      *dl_operation;  /* (nullable) Vectors.Upsert / Vectors.Delete */
  GVariant        *dl_payload;    /* (owned) (nullable) what a replay needs */
  char            *dl_key;        /* (owned) (nullable) the idempotency key */
  GError          *error;         /* (owned) (nullable) while dead-lettering */
};

static void
op_free (Op *op)
{
  if (op->hup != NULL)
    {
      g_source_destroy (op->hup);
      g_clear_pointer (&op->hup, g_source_unref);
    }
  if (op->cancel_id != 0)
    g_cancellable_disconnect (bp_call_get_cancellable (op->call), op->cancel_id);
  g_clear_object (&op->cancellable);
  g_clear_object (&op->call);
  g_clear_object (&op->task);
  g_clear_object (&op->self);
  g_free (op->collection);
  g_free (op->name);
  g_free (op->json);
  g_strfreev (op->ids);
  g_clear_pointer (&op->points, g_ptr_array_unref);
  g_clear_pointer (&op->query, bp_qdrant_query_free);
  g_clear_pointer (&op->queries, g_ptr_array_unref);
  g_free (op->using);
  if (op->input != NULL)
    g_input_stream_close_async (op->input, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  g_clear_object (&op->input);
  if (op->output != NULL)
    g_output_stream_close_async (op->output, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  g_clear_object (&op->output);
  if (op->fd >= 0 && op->input == NULL && op->output == NULL)
    close (op->fd);
  g_clear_pointer (&op->line, g_bytes_unref);
  g_clear_pointer (&op->dl_payload, g_variant_unref);
  g_free (op->dl_key);
  g_clear_error (&op->error);
  g_free (op);
}

static Op *
op_new (BpQdrantBackend *self,
        BpCall          *call,
        OpStartFunc      start,
        OpFinishFunc     finish,
        BpIdempotency    idempotency)
{
  Op *op = g_new0 (Op, 1);

  op->self = g_object_ref (self);
  op->call = call;
  op->start = start;
  op->finish = finish;
  op->idempotency = idempotency;
  op->fd = -1;
  op->cancellable = call != NULL ? g_object_ref (bp_call_get_cancellable (call))
                                 : g_cancellable_new ();
  return op;
}

/* One attempt: a breaker permit, the client call. */
typedef struct
{
  Op              *op;
  GTask           *task;    /* (owned) */
  BpBreakerPermit *permit;  /* (owned) (nullable) */
} Attempt;

static void
attempt_done (Attempt  *a,
              GVariant *reply,
              GError   *error)
{
  if (a->permit != NULL)
    {
      if (error != NULL)
        bp_breaker_permit_release_error (a->permit, error);
      else
        bp_breaker_permit_release (a->permit, BP_BREAKER_OUTCOME_SUCCESS);
      a->permit = NULL;
    }
  if (error != NULL)
    g_task_return_error (a->task, error);
  else
    g_task_return_pointer (a->task, reply, (GDestroyNotify) g_variant_unref);
  g_object_unref (a->task);
  g_free (a);
}

/* Main context: the client call of this attempt completed. */
static void
attempt_client_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Attempt *a = user_data;
  GError *error = NULL;
  GVariant *reply = a->op->finish (a->op, result, &error);

  attempt_done (a, reply, error);
}

static void
attempt_go (Attempt *a)
{
  a->op->start (a->op, g_task_get_cancellable (a->task), attempt_client_cb, a);
}

/* BpOperation.start, in the main context. */
static void
attempt_start (gpointer             op_data,
               GCancellable        *cancellable,
               GAsyncReadyCallback  callback,
               gpointer             callback_data)
{
  Op *op = op_data;
  BpBackend *backend = BP_BACKEND (op->self);
  Attempt *a = g_new0 (Attempt, 1);
  GError *error = NULL;

  a->op = op;
  a->task = g_task_new (NULL, cancellable, callback, callback_data);
  g_task_set_source_tag (a->task, attempt_start);

  if (op->self->client == NULL)
    return attempt_done (a, NULL, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                               "backend %s is not configured",
                                               bp_backend_get_name (backend)));
  a->permit = bp_breaker_try_acquire (bp_backend_get_breaker (backend), &error);
  if (a->permit == NULL)
    return attempt_done (a, NULL, error);

  attempt_go (a);
}

static gboolean
attempt_finish (gpointer       op_data,
                GAsyncResult  *result,
                gpointer      *out_result,
                GError       **error)
{
  GVariant *reply = g_task_propagate_pointer (G_TASK (result), error);

  if (reply == NULL)
    return FALSE;
  if (out_result != NULL)
    *out_result = reply;
  else
    g_variant_unref (reply);
  return TRUE;
}

static const BpOperation qdrant_operation = {
  attempt_start,
  attempt_finish,
  (GDestroyNotify) g_variant_unref,
};

static void
note_outcome (BpQdrantBackend *self,
              gint64           started_us,
              const GError    *error)
{
  BpBackend *backend = BP_BACKEND (self);
  gint64 now = bp_clock_get_time (bp_backend_get_clock (backend));
  BpBackendState state = bp_backend_get_state (backend);

  bp_backend_record_latency (backend, now - started_us, error == NULL);
  if (state == BP_BACKEND_STATE_STOPPING || state == BP_BACKEND_STATE_STARTING)
    return;
  if (error == NULL)
    {
      if (state == BP_BACKEND_STATE_UNAVAILABLE)
        {
          if (self->version_warning != NULL)
            bp_backend_set_state (backend, BP_BACKEND_STATE_DEGRADED, self->version_warning);
          else
            bp_backend_set_state (backend, BP_BACKEND_STATE_READY, NULL);
        }
    }
  else if (g_error_matches (error, BP_ERROR, BP_ERROR_UNAVAILABLE) &&
           !g_str_has_prefix (error->message, "HTTP "))
    bp_backend_set_state (backend, BP_BACKEND_STATE_UNAVAILABLE, error->message);
}

/* Main context: the failed operation is in the dead-letter queue (or
 * could not be put there); the caller gets the original error either way. */
static void
op_dead_lettered_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  Op *op = user_data;
  g_autoptr(GError) original = bp_error_normalize (op->error);
  g_autoptr(GError) dl_error = NULL;
  g_autoptr(GError) error = NULL;
  guint64 id = 0;

  if (bp_backend_dead_letter_finish (BP_BACKEND (object), result, &id, &dl_error))
    error = g_error_new (BP_ERROR, original->code, "%s (dead-lettered as entry %" G_GUINT64_FORMAT ")",
                         original->message, id);
  else
    error = g_error_new (BP_ERROR, original->code, "%s (not dead-lettered: %s)",
                         original->message, dl_error->message);
  bp_call_return_error (op->call, error);
  op_free (op);
}

/* Whether a failed operation goes to the dead-letter queue: only when the
 * caller asked, and not for a failure of the caller's own making (invalid
 * input, a missing collection, a refused key) nor a cancellation. */
static gboolean
op_should_dead_letter (Op           *op,
                       const GError *error)
{
  if (op->dl_payload == NULL || op->call == NULL)
    return FALSE;
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
      g_error_matches (error, BP_ERROR, BP_ERROR_CANCELLED) ||
      g_cancellable_is_cancelled (op->cancellable))
    return FALSE;
  return bp_backend_classify_error (BP_BACKEND (op->self), error) != BP_FAILURE_IGNORE;
}

/* Main context: all attempts are over. */
static void
op_done_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  Op *op = user_data;
  g_autoptr(GError) error = NULL;
  GVariant *reply = NULL;
  guint attempts = 0;

  bp_retry_run_finish (BP_RETRY (object), result, (gpointer *) &reply, &attempts, &error);
  note_outcome (op->self, op->started_us, error);

  if (reply == NULL && op_should_dead_letter (op, error))
    {
      op->error = g_steal_pointer (&error);
      /* Not cancellable: the caller waits for this answer. */
      bp_backend_dead_letter_async (BP_BACKEND (op->self), op->dl_operation,
                                    op->dl_payload, op->dl_key, op->error,
                                    attempts, NULL, op_dead_lettered_cb, op);
      return;
    }
  if (op->task != NULL)
    {
      if (reply == NULL)
        g_task_return_error (op->task, g_steal_pointer (&error));
      else
        g_task_return_pointer (op->task, reply, (GDestroyNotify) g_variant_unref);
    }
  else if (reply == NULL)
    bp_call_return_error (op->call, error);
  else
    bp_call_return_value (op->call, reply); /* sinks a floating reply */
  op_free (op);
}

static void
op_run (Op *op)
{
  op->started_us = bp_clock_get_time (bp_backend_get_clock (BP_BACKEND (op->self)));
  bp_retry_run_async (bp_backend_get_retry (BP_BACKEND (op->self)), &qdrant_operation, op, NULL,
                      op->idempotency, op->cancellable, op_done_cb, op);
}

/* (transfer full) @op and @error; answers and frees. */
static gboolean
op_reject (Op     *op,
           GError *error)
{
  bp_call_return_error (op->call, error);
  g_error_free (error);
  op_free (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ------------------------------------------------------------ options */

typedef struct
{
  const char *key;
  const char *type;
} OptionSpec;

static gboolean
options_check (GVariant          *options,
               const OptionSpec  *specs,
               const char        *field,
               GError           **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) v = value;
      const OptionSpec *s;

      for (s = specs; s->key != NULL; s++)
        if (g_str_equal (s->key, key))
          break;
      if (s->key == NULL)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "%sunknown option '%s'", field, key);
          return FALSE;
        }
      if (!g_variant_is_of_type (v, G_VARIANT_TYPE (s->type)))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "%s%s: must be of type '%s', not '%s'", field, key, s->type,
                       g_variant_get_type_string (v));
          return FALSE;
        }
    }
  return TRUE;
}

static gboolean
option_bool (GVariant   *options,
             const char *key,
             gboolean    default_value)
{
  gboolean v = default_value;

  g_variant_lookup (options, key, "b", &v);
  return v;
}

static char *
option_string (GVariant   *options,
               const char *key)
{
  char *v = NULL;

  g_variant_lookup (options, key, "s", &v);
  return v;
}

static guint
option_uint (GVariant   *options,
             const char *key,
             guint       default_value)
{
  guint32 v = default_value;

  g_variant_lookup (options, key, "u", &v);
  return v;
}

#define MAX_IDEMPOTENCY_KEY_BYTES 256

/* The `dead-letter` option was given: keep @payload (floating or not) for
 * the dead-letter queue under the `idempotency-key` option, or under a hash
 * of the backend, the operation and the payload, so that the same failed
 * write is queued once however often it is sent. */
static gboolean
op_keep_for_dead_letter (Op          *op,
                         GVariant    *options,
                         const char  *operation,
                         GVariant    *payload,
                         GError     **error)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (payload);
  g_autofree char *key = option_string (options, "idempotency-key");

  if (key != NULL && (key[0] == '\0' || strlen (key) > MAX_IDEMPOTENCY_KEY_BYTES))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "idempotency-key: must be 1 to %d bytes long", MAX_IDEMPOTENCY_KEY_BYTES);
      return FALSE;
    }
  if (key == NULL)
    {
      g_autoptr(GChecksum) sum = g_checksum_new (G_CHECKSUM_SHA256);
      const char *backend = bp_backend_get_name (BP_BACKEND (op->self));

      g_checksum_update (sum, (const guchar *) backend, (gssize) strlen (backend) + 1);
      g_checksum_update (sum, (const guchar *) operation, (gssize) strlen (operation) + 1);
      g_checksum_update (sum, g_variant_get_data (owned), (gssize) g_variant_get_size (owned));
      key = g_strconcat (operation, ":sha256:", g_checksum_get_string (sum), NULL);
    }
  op->dl_operation = operation;
  op->dl_payload = g_steal_pointer (&owned);
  op->dl_key = g_steal_pointer (&key);
  return TRUE;
}

/* (element-type BpQdrantPoint) the points of an `a(sads)` */
static GPtrArray *
points_from_variant (GVariant *points)
{
  GPtrArray *out = g_ptr_array_new_full ((guint) g_variant_n_children (points),
                                         (GDestroyNotify) bp_qdrant_point_free);
  GVariantIter iter;
  const char *id, *payload;
  GVariant *vector;

  g_variant_iter_init (&iter, points);
  while (g_variant_iter_next (&iter, "(&s@ad&s)", &id, &vector, &payload))
    {
      gsize dims = 0;
      const double *values = g_variant_get_fixed_array (vector, &dims, sizeof (double));

      g_ptr_array_add (out, bp_qdrant_point_new (id, values, dims, payload));
      g_variant_unref (vector);
    }
  return out;
}

static const OptionSpec query_options[] = {
  { "limit", "u" },
  { "filter", "s" },
  { "with-payload", "b" },
  { "score-threshold", "d" },
  { "using", "s" },
  { NULL, NULL },
};

static BpQdrantQuery *
query_from_variant (GVariant    *vector,
                    GVariant    *options,
                    const char  *field,
                    GError     **error)
{
  gsize n = 0;
  const double *values = g_variant_get_fixed_array (vector, &n, sizeof (double));
  g_autoptr(BpQdrantQuery) query = NULL;

  if (!options_check (options, query_options, field, error))
    return NULL;
  query = bp_qdrant_query_new (values, n, option_uint (options, "limit", 0));
  query->filter_json = option_string (options, "filter");
  query->with_payload = option_bool (options, "with-payload", TRUE);
  query->using = option_string (options, "using");
  query->has_score_threshold = g_variant_lookup (options, "score-threshold", "d",
                                                 &query->score_threshold);
  return g_steal_pointer (&query);
}

/* --------------------------------------------------------- replies */

static const char *
payload_or_null (const char *payload_json)
{
  return payload_json != NULL ? payload_json : "null";
}

static GVariant *
hits_to_variant (GPtrArray *hits)
{
  GVariantBuilder b;
  guint i;

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(sds)"));
  for (i = 0; i < hits->len; i++)
    {
      BpQdrantHit *h = g_ptr_array_index (hits, i);

      g_variant_builder_add (&b, "(sds)", h->id, h->score, payload_or_null (h->payload_json));
    }
  return g_variant_builder_end (&b);
}

/* ------------------------------------------------------ collections */

static void
list_collections_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_list_collections_async (op->self->client, c, cb, data);
}

static GVariant *
list_collections_finish (Op *op, GAsyncResult *result, GError **error)
{
  g_auto(GStrv) names = bp_qdrant_client_list_collections_finish (op->self->client, result, error);

  if (names == NULL)
    return NULL;
  return g_variant_ref_sink (g_variant_new ("(^as)", names));
}

static gboolean
handle_list_collections (BpDBusVectors         *iface,
                         GDBusMethodInvocation *invocation,
                         gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);

  op_run (op_new (self, call, list_collections_start, list_collections_finish,
                  BP_IDEMPOTENCY_IDEMPOTENT));
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
collection_exists_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_collection_exists_async (op->self->client, op->collection, c, cb, data);
}

static GVariant *
collection_exists_finish (Op *op, GAsyncResult *result, GError **error)
{
  gboolean exists = FALSE;

  if (!bp_qdrant_client_collection_exists_finish (op->self->client, result, &exists, error))
    return NULL;
  return g_variant_ref_sink (g_variant_new ("(b)", exists));
}

static gboolean
handle_collection_exists (BpDBusVectors         *iface,
                          GDBusMethodInvocation *invocation,
                          const char            *name,
                          gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, collection_exists_start, collection_exists_finish,
                   BP_IDEMPOTENCY_IDEMPOTENT);

  op->collection = g_strdup (name);
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
get_collection_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_get_collection_async (op->self->client, op->collection, c, cb, data);
}

static GVariant *
get_collection_finish (Op *op, GAsyncResult *result, GError **error)
{
  g_autofree char *info = bp_qdrant_client_get_collection_finish (op->self->client, result, error);

  if (info == NULL)
    return NULL;
  return g_variant_ref_sink (g_variant_new ("(s)", info));
}

static gboolean
handle_get_collection (BpDBusVectors         *iface,
                       GDBusMethodInvocation *invocation,
                       const char            *name,
                       gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, get_collection_start, get_collection_finish,
                   BP_IDEMPOTENCY_IDEMPOTENT);

  op->collection = g_strdup (name);
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
create_collection_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_create_collection_async (op->self->client, op->collection, op->json, c, cb, data);
}

static GVariant *
empty_reply (gboolean ok)
{
  return ok ? g_variant_ref_sink (g_variant_new ("()")) : NULL;
}

static GVariant *
create_collection_finish (Op *op, GAsyncResult *result, GError **error)
{
  return empty_reply (bp_qdrant_client_create_collection_finish (op->self->client, result, error));
}

static gboolean
handle_create_collection (BpDBusVectors         *iface,
                          GDBusMethodInvocation *invocation,
                          const char            *name,
                          const char            *config_json,
                          gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, create_collection_start, create_collection_finish,
                   BP_IDEMPOTENCY_UNSAFE);
  GError *error = NULL;

  if (!bp_qdrant_name_validate (name, "name", &error) ||
      !bp_qdrant_collection_config_validate (config_json, &self->limits, &error))
    return op_reject (op, error);
  op->collection = g_strdup (name);
  op->json = g_strdup (config_json);
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
delete_collection_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_delete_collection_async (op->self->client, op->collection, c, cb, data);
}

static GVariant *
delete_collection_finish (Op *op, GAsyncResult *result, GError **error)
{
  return empty_reply (bp_qdrant_client_delete_collection_finish (op->self->client, result, error));
}

static gboolean
handle_delete_collection (BpDBusVectors         *iface,
                          GDBusMethodInvocation *invocation,
                          const char            *name,
                          gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, delete_collection_start, delete_collection_finish,
                   BP_IDEMPOTENCY_UNSAFE);

  op->collection = g_strdup (name);
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* --------------------------------------------------------------- points */

static void
upsert_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_upsert_async (op->self->client, op->collection, op->points, op->wait, c, cb, data);
}

static GVariant *
upsert_finish (Op *op, GAsyncResult *result, GError **error)
{
  g_autofree char *status = bp_qdrant_client_upsert_finish (op->self->client, result, error);

  if (status == NULL)
    return NULL;
  return g_variant_ref_sink (g_variant_new ("(s)", status));
}

static const OptionSpec upsert_options[] = {
  { "wait", "b" },
  { "dead-letter", "b" },
  { "idempotency-key", "s" },
  { NULL, NULL },
};

static gboolean
handle_upsert (BpDBusVectors         *iface,
               GDBusMethodInvocation *invocation,
               const char            *collection,
               GVariant              *points,
               GVariant              *options,
               gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, upsert_start, upsert_finish, BP_IDEMPOTENCY_IDEMPOTENT);
  GError *error = NULL;
  gsize n = g_variant_n_children (points);

  if (!options_check (options, upsert_options, "", &error))
    return op_reject (op, error);
  /* Bound before copying anything. */
  if (n > self->limits.max_batch_points)
    return op_reject (op, g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                                       "points: %" G_GSIZE_FORMAT " points exceed "
                                       "max-batch-points (%u)", n, self->limits.max_batch_points));
  op->collection = g_strdup (collection);
  op->wait = option_bool (options, "wait", TRUE);
  /* Every point carries its id, so a repeat is harmless: retried, and
   * dead-lettered when asked. */
  if (option_bool (options, "dead-letter", FALSE) &&
      !op_keep_for_dead_letter (op, options, "Vectors.Upsert",
                                g_variant_new ("(s@a(sads)b)", collection, points, op->wait), &error))
    return op_reject (op, error);
  op->points = points_from_variant (points);
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
retrieve_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_retrieve_async (op->self->client, op->collection,
                                   (const char * const *) op->ids, op->with_payload,
                                   op->with_vector, c, cb, data);
}

static GVariant *
retrieve_finish (Op *op, GAsyncResult *result, GError **error)
{
  g_autoptr(GPtrArray) points = bp_qdrant_client_retrieve_finish (op->self->client, result, error);
  GVariantBuilder b;
  guint i;

  if (points == NULL)
    return NULL;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(sads)"));
  for (i = 0; i < points->len; i++)
    {
      BpQdrantPoint *p = g_ptr_array_index (points, i);
      BpQdrantVector *v = bp_qdrant_point_get_vector (p, op->using);
      GVariant *values;

      values = g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE,
                                          v != NULL ? v->values->data : NULL,
                                          v != NULL ? v->values->len : 0, sizeof (double));
      g_variant_builder_add (&b, "(s@ads)", p->id, values, payload_or_null (p->payload_json));
    }
  return g_variant_ref_sink (g_variant_new ("(@a(sads))", g_variant_builder_end (&b)));
}

static const OptionSpec retrieve_options[] = {
  { "with-payload", "b" },
  { "with-vector", "b" },
  { "using", "s" },
  { NULL, NULL },
};

static gboolean
handle_retrieve (BpDBusVectors         *iface,
                 GDBusMethodInvocation *invocation,
                 const char            *collection,
                 const char * const    *ids,
                 GVariant              *options,
                 gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, retrieve_start, retrieve_finish, BP_IDEMPOTENCY_IDEMPOTENT);
  GError *error = NULL;

  if (!options_check (options, retrieve_options, "", &error))
    return op_reject (op, error);
  op->collection = g_strdup (collection);
  op->ids = g_strdupv ((char **) ids);
  op->with_payload = option_bool (options, "with-payload", TRUE);
  op->with_vector = option_bool (options, "with-vector", TRUE);
  op->using = option_string (options, "using");
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
delete_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_delete_points_async (op->self->client, op->collection,
                                        (const char * const *) op->ids, op->json, op->wait,
                                        c, cb, data);
}

static GVariant *
delete_finish (Op *op, GAsyncResult *result, GError **error)
{
  g_autofree char *status = bp_qdrant_client_delete_points_finish (op->self->client, result, error);

  return empty_reply (status != NULL);
}

static const OptionSpec delete_options[] = {
  { "filter", "s" },
  { "wait", "b" },
  { "dead-letter", "b" },
  { "idempotency-key", "s" },
  { NULL, NULL },
};

static gboolean
handle_delete (BpDBusVectors         *iface,
               GDBusMethodInvocation *invocation,
               const char            *collection,
               const char * const    *ids,
               GVariant              *options,
               gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, delete_start, delete_finish, BP_IDEMPOTENCY_IDEMPOTENT);
  GError *error = NULL;

  if (!options_check (options, delete_options, "", &error))
    return op_reject (op, error);
  op->collection = g_strdup (collection);
  op->json = option_string (options, "filter");
  op->wait = option_bool (options, "wait", TRUE);
  if ((ids[0] != NULL) == (op->json != NULL))
    return op_reject (op, g_error_new_literal (BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                               "ids, filter: give ids or the filter option, not both"));
  if (ids[0] != NULL)
    op->ids = g_strdupv ((char **) ids);
  if (option_bool (options, "dead-letter", FALSE))
    {
      /* A filter replayed later would match other points than today. */
      if (op->json != NULL)
        return op_reject (op, g_error_new_literal (BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                                   "dead-letter: only a Delete by ids can be "
                                                   "dead-lettered, not one by filter"));
      if (!op_keep_for_dead_letter (op, options, "Vectors.Delete",
                                    g_variant_new ("(s^asb)", collection, ids, op->wait), &error))
        return op_reject (op, error);
    }
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
count_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_count_async (op->self->client, op->collection, op->json, op->exact, c, cb, data);
}

static GVariant *
count_finish (Op *op, GAsyncResult *result, GError **error)
{
  guint64 n = 0;

  if (!bp_qdrant_client_count_finish (op->self->client, result, &n, error))
    return NULL;
  return g_variant_ref_sink (g_variant_new ("(t)", n));
}

static const OptionSpec count_options[] = {
  { "filter", "s" },
  { "exact", "b" },
  { NULL, NULL },
};

static gboolean
handle_count (BpDBusVectors         *iface,
              GDBusMethodInvocation *invocation,
              const char            *collection,
              GVariant              *options,
              gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, count_start, count_finish, BP_IDEMPOTENCY_IDEMPOTENT);
  GError *error = NULL;

  if (!options_check (options, count_options, "", &error))
    return op_reject (op, error);
  op->collection = g_strdup (collection);
  op->json = option_string (options, "filter");
  op->exact = option_bool (options, "exact", TRUE);
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ---------------------------------------------------------------- query */

static void
query_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_query_async (op->self->client, op->collection, op->query, c, cb, data);
}

static GVariant *
query_finish (Op *op, GAsyncResult *result, GError **error)
{
  g_autoptr(GPtrArray) hits = bp_qdrant_client_query_finish (op->self->client, result, error);

  if (hits == NULL)
    return NULL;
  return g_variant_ref_sink (g_variant_new ("(@a(sds))", hits_to_variant (hits)));
}

static gboolean
handle_query (BpDBusVectors         *iface,
              GDBusMethodInvocation *invocation,
              const char            *collection,
              GVariant              *vector,
              GVariant              *options,
              gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, query_start, query_finish, BP_IDEMPOTENCY_IDEMPOTENT);
  GError *error = NULL;

  op->query = query_from_variant (vector, options, "", &error);
  if (op->query == NULL)
    return op_reject (op, error);
  op->collection = g_strdup (collection);
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
query_batch_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_query_batch_async (op->self->client, op->collection, op->queries, c, cb, data);
}

static GVariant *
query_batch_finish (Op *op, GAsyncResult *result, GError **error)
{
  g_autoptr(GPtrArray) lists = bp_qdrant_client_query_batch_finish (op->self->client, result, error);
  GVariantBuilder b;
  guint i;

  if (lists == NULL)
    return NULL;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("aa(sds)"));
  for (i = 0; i < lists->len; i++)
    g_variant_builder_add_value (&b, hits_to_variant (g_ptr_array_index (lists, i)));
  return g_variant_ref_sink (g_variant_new ("(@aa(sds))", g_variant_builder_end (&b)));
}

static const OptionSpec no_options[] = { { NULL, NULL } };

static gboolean
handle_query_batch (BpDBusVectors         *iface,
                    GDBusMethodInvocation *invocation,
                    const char            *collection,
                    GVariant              *queries,
                    GVariant              *options,
                    gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, query_batch_start, query_batch_finish, BP_IDEMPOTENCY_IDEMPOTENT);
  gsize n = g_variant_n_children (queries);
  GError *error = NULL;
  gsize i;

  if (!options_check (options, no_options, "", &error))
    return op_reject (op, error);
  if (n > self->limits.max_batch_queries)
    return op_reject (op, g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                                       "queries: %" G_GSIZE_FORMAT " queries exceed "
                                       "max-batch-queries (%u)", n, self->limits.max_batch_queries));
  op->collection = g_strdup (collection);
  op->queries = g_ptr_array_new_full ((guint) n, (GDestroyNotify) bp_qdrant_query_free);
  for (i = 0; i < n; i++)
    {
      g_autoptr(GVariant) vector = NULL;
      g_autoptr(GVariant) qopts = NULL;
      g_autofree char *field = g_strdup_printf ("queries[%" G_GSIZE_FORMAT "].", i);
      BpQdrantQuery *q;

      g_variant_get_child (queries, i, "(@ad@a{sv})", &vector, &qopts);
      q = query_from_variant (vector, qopts, field, &error);
      if (q == NULL)
        return op_reject (op, error);
      g_ptr_array_add (op->queries, q);
    }
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ------------------------------------------------------------ snapshots */

static void
create_snapshot_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_create_snapshot_async (op->self->client, op->collection, TRUE, c, cb, data);
}

static GVariant *
create_snapshot_finish (Op *op, GAsyncResult *result, GError **error)
{
  g_autofree char *name = NULL;

  if (!bp_qdrant_client_create_snapshot_finish (op->self->client, result, &name, error))
    return NULL;
  return g_variant_ref_sink (g_variant_new ("(s)", name != NULL ? name : ""));
}

static gboolean
handle_create_snapshot (BpDBusVectors         *iface,
                        GDBusMethodInvocation *invocation,
                        const char            *collection,
                        gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, create_snapshot_start, create_snapshot_finish,
                   BP_IDEMPOTENCY_UNSAFE);

  op->collection = g_strdup (collection);
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
list_snapshots_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_list_snapshots_async (op->self->client, op->collection, c, cb, data);
}

static GVariant *
list_snapshots_finish (Op *op, GAsyncResult *result, GError **error)
{
  g_auto(GStrv) names = bp_qdrant_client_list_snapshots_finish (op->self->client, result, error);

  if (names == NULL)
    return NULL;
  return g_variant_ref_sink (g_variant_new ("(^as)", names));
}

static gboolean
handle_list_snapshots (BpDBusVectors         *iface,
                       GDBusMethodInvocation *invocation,
                       const char            *collection,
                       gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, list_snapshots_start, list_snapshots_finish,
                   BP_IDEMPOTENCY_IDEMPOTENT);

  op->collection = g_strdup (collection);
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

static void
delete_snapshot_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_delete_snapshot_async (op->self->client, op->collection, op->name, TRUE,
                                          c, cb, data);
}

static GVariant *
delete_snapshot_finish (Op *op, GAsyncResult *result, GError **error)
{
  return empty_reply (bp_qdrant_client_delete_snapshot_finish (op->self->client, result, error));
}

static gboolean
handle_delete_snapshot (BpDBusVectors         *iface,
                        GDBusMethodInvocation *invocation,
                        const char            *collection,
                        const char            *name,
                        gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, delete_snapshot_start, delete_snapshot_finish,
                   BP_IDEMPOTENCY_UNSAFE);

  op->collection = g_strdup (collection);
  op->name = g_strdup (name);
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* -------------------------------------------------------------- streams */

/* Main context: the reader of a ScrollToFd fd went away. */
static gboolean
stream_hup_cb (gint         fd,
               GIOCondition condition,
               gpointer     user_data)
{
  Op *op = user_data;

  g_debug ("ScrollToFd: the reader closed its end");
  g_cancellable_cancel (op->cancellable);
  g_clear_pointer (&op->hup, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* The call's cancellable (caller gone, shutdown) also cancels the stream's own. */
static void
stream_call_cancelled_cb (GCancellable *cancellable,
                          gpointer      user_data)
{
  g_cancellable_cancel (G_CANCELLABLE (user_data));
}

static void
stream_own_cancellable (Op *op)
{
  GCancellable *own = g_cancellable_new ();

  g_clear_object (&op->cancellable);
  op->cancellable = own;
  op->cancel_id = g_cancellable_connect (bp_call_get_cancellable (op->call),
                                         G_CALLBACK (stream_call_cancelled_cb),
                                         g_object_ref (own), g_object_unref);
}

static void
upsert_from_fd_start (Op *op, GCancellable *c, GAsyncReadyCallback cb, gpointer data)
{
  bp_qdrant_client_upsert_from_stream_async (op->self->client, op->collection, op->input,
                                             op->size, op->wait, c, cb, data);
}

static GVariant *
upsert_from_fd_finish (Op *op, GAsyncResult *result, GError **error)
{
  guint64 n = 0;

  if (!bp_qdrant_client_upsert_from_stream_finish (op->self->client, result, &n, error))
    return NULL;
  return g_variant_ref_sink (g_variant_new ("(t)", n));
}

static const OptionSpec upsert_fd_options[] = {
  { "batch-size", "u" },
  { "wait", "b" },
  { NULL, NULL },
};

static gboolean
handle_upsert_from_fd (BpDBusVectors         *iface,
                       GDBusMethodInvocation *invocation,
                       GUnixFDList           *fd_list,
                       const char            *collection,
                       GVariant              *fd_handle,
                       GVariant              *options,
                       gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, upsert_from_fd_start, upsert_from_fd_finish, BP_IDEMPOTENCY_UNSAFE);
  GError *error = NULL;

  op->fd = bp_call_steal_fd (call, fd_handle, &error);
  if (op->fd < 0)
    return op_reject (op, error);
  if (!options_check (options, upsert_fd_options, "", &error))
    return op_reject (op, error);
  op->size = option_uint (options, "batch-size", 0);
  if (op->size > self->limits.max_batch_points)
    return op_reject (op, g_error_new (BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                       "batch-size: must be at most max-batch-points (%u)",
                                       self->limits.max_batch_points));
  op->wait = option_bool (options, "wait", TRUE);
  op->collection = g_strdup (collection);
  g_unix_set_fd_nonblocking (op->fd, TRUE, NULL);
  op->input = g_unix_input_stream_new (op->fd, TRUE);
  stream_own_cancellable (op);
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ScrollToFd, one attempt: header → pages → end line. */

static void scroll_done_cb            (GObject      *object,
                                       GAsyncResult *result,
                                       gpointer      user_data);
static void scroll_trailer_written_cb (GObject      *object,
                                       GAsyncResult *result,
                                       gpointer      user_data);

static void
scroll_write_line (Op                  *op,
                   GString             *line,
                   GCancellable        *cancellable,
                   GAsyncReadyCallback  callback,
                   GTask               *task)
{
  g_string_append_c (line, '\n');
  g_clear_pointer (&op->line, g_bytes_unref);
  op->line = g_string_free_to_bytes (line);
  g_output_stream_write_all_async (op->output, g_bytes_get_data (op->line, NULL),
                                   g_bytes_get_size (op->line), G_PRIORITY_DEFAULT,
                                   cancellable, callback, task);
}

static void
scroll_header_written_cb (GObject      *object,
                          GAsyncResult *result,
                          gpointer      user_data)
{
  GTask *task = user_data;
  Op *op = g_object_get_data (G_OBJECT (task), "op");
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  bp_qdrant_client_scroll_to_stream_async (op->self->client, op->collection, op->json, op->size,
                                           op->with_payload, op->with_vector, op->output,
                                           g_task_get_cancellable (task), scroll_done_cb, task);
}

static void
scroll_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  Op *op = g_object_get_data (G_OBJECT (task), "op");
  g_autoptr(GError) error = NULL;
  GString *trailer;

  if (!bp_qdrant_client_scroll_to_stream_finish (BP_QDRANT_CLIENT (object), result, &op->count,
                                                 &error))
    {
      g_autoptr(GError) normalized = bp_error_normalize (error);

      g_task_set_task_data (task, g_error_copy (error), (GDestroyNotify) g_error_free);
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
          g_cancellable_is_cancelled (g_task_get_cancellable (task)))
        {
          /* the reader is gone or the caller left: nothing to tell */
          g_task_return_error (task, g_steal_pointer (&error));
          g_object_unref (task);
          return;
        }
      trailer = g_string_new ("{\"error\":{\"name\":");
      {
        g_autofree char *name = g_strconcat ("org.backplane.Backplane1.Error.",
                                             bp_error_code_to_nick (normalized->code), NULL);

        bp_qdrant_json_append_string (trailer, name);
      }
      g_string_append (trailer, ",\"message\":");
      bp_qdrant_json_append_string (trailer, normalized->message);
      g_string_append (trailer, "}}");
    }
  else
    {
      trailer = g_string_new (NULL);
      g_string_append_printf (trailer, "{\"end\":{\"points\":%" G_GUINT64_FORMAT "}}", op->count);
    }
  /* The trailer is written even if the call was cancelled meanwhile. */
  scroll_write_line (op, trailer, NULL, scroll_trailer_written_cb, task);
}

static void
scroll_trailer_written_cb (GObject      *object,
                           GAsyncResult *result,
                           gpointer      user_data)
{
  GTask *task = user_data;
  GError *scroll_error = g_task_get_task_data (task);
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, &error))
    {
      if (scroll_error == NULL)
        {
          g_task_return_error (task, error);
          g_object_unref (task);
          return;
        }
      g_error_free (error);
    }
  if (scroll_error != NULL)
    g_task_return_error (task, g_error_copy (scroll_error));
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static void
scroll_to_fd_start (Op                  *op,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  /* The op outlives the attempt; the chain finds it on the task. */
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  GString *header = g_string_new ("{\"collection\":");

  g_task_set_source_tag (task, scroll_to_fd_start);
  g_object_set_data (G_OBJECT (task), "op", op);
  bp_qdrant_json_append_string (header, op->collection);
  g_string_append_printf (header, ",\"with_payload\":%s,\"with_vector\":%s}",
                          op->with_payload ? "true" : "false",
                          op->with_vector ? "true" : "false");
  scroll_write_line (op, header, cancellable, scroll_header_written_cb, task);
}

static GVariant *
scroll_to_fd_finish (Op           *op,
                     GAsyncResult *result,
                     GError      **error)
{
  if (!g_task_propagate_boolean (G_TASK (result), error))
    return NULL;
  return g_variant_ref_sink (g_variant_new ("(t)", op->count));
}

static const OptionSpec scroll_options[] = {
  { "filter", "s" },
  { "page-size", "u" },
  { "with-payload", "b" },
  { "with-vector", "b" },
  { NULL, NULL },
};

static gboolean
handle_scroll_to_fd (BpDBusVectors         *iface,
                     GDBusMethodInvocation *invocation,
                     GUnixFDList           *fd_list,
                     const char            *collection,
                     GVariant              *fd_handle,
                     GVariant              *options,
                     gpointer               user_data)
{
  BpQdrantBackend *self = user_data;
  BpCall *call = bp_call_new (bp_backend_get_host (BP_BACKEND (self)), invocation);
  Op *op = op_new (self, call, scroll_to_fd_start, scroll_to_fd_finish, BP_IDEMPOTENCY_UNSAFE);
  GError *error = NULL;

  op->fd = bp_call_steal_fd (call, fd_handle, &error);
  if (op->fd < 0)
    return op_reject (op, error);
  if (!options_check (options, scroll_options, "", &error) ||
      !bp_qdrant_name_validate (collection, "collection", &error))
    return op_reject (op, error);
  op->json = option_string (options, "filter");
  if (op->json != NULL &&
      !bp_qdrant_filter_validate (op->json, self->limits.max_json_depth, "filter", &error))
    return op_reject (op, error);
  op->size = option_uint (options, "page-size", 0);
  if (op->size > self->limits.max_result_limit)
    return op_reject (op, g_error_new (BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                       "page-size: must be at most max-result-limit (%u)",
                                       self->limits.max_result_limit));
  op->with_payload = option_bool (options, "with-payload", TRUE);
  op->with_vector = option_bool (options, "with-vector", FALSE);
  op->collection = g_strdup (collection);
  g_unix_set_fd_nonblocking (op->fd, TRUE, NULL);
  op->output = g_unix_output_stream_new (op->fd, TRUE);
  stream_own_cancellable (op);
  op->hup = g_unix_fd_source_new (op->fd, G_IO_ERR | G_IO_HUP);
  g_source_set_callback (op->hup, (GSourceFunc) (void (*) (void)) stream_hup_cb, op, NULL);
  g_source_attach (op->hup, g_main_context_get_thread_default ());
  op_run (op);
  return G_DBUS_METHOD_INVOCATION_HANDLED;
}

/* ------------------------------------------------------ lifecycle */

static gboolean
read_limit (BpConfigSection  *section,
            const char       *key,
            guint64           default_value,
            guint64           min_value,
            guint64           max_value,
            guint64          *out,
            GError          **error)
{
  return bp_config_section_get_uint (section, key, default_value, min_value, max_value, out, error);
}

static gboolean
bp_qdrant_backend_configure (BpBackend        *backend,
                             BpConfigSection  *section,
                             GError          **error)
{
  BpQdrantBackend *self = BP_QDRANT_BACKEND (backend);
  static const char * const compat[] = { "warn", "strict", "off", NULL };
  g_autofree char *url = bp_config_section_get_string (section, "url", NULL);
  g_autofree char *api_key = NULL;
  g_autoptr(GError) local = NULL;
  BpQdrantLimits limits;
  guint64 timeout_ms, breaker_timeout_ms, max_conns, v[8];

  if (!bp_config_section_get_uint (section, "timeout-ms", 30000, 1, 3600000, &timeout_ms, error) ||
      !bp_config_section_get_uint (section, "max-connections", 10, 1, 1024, &max_conns, error) ||
      !bp_config_section_get_choice (section, "compatibility", compat, COMPAT_WARN,
                                     &self->compatibility, error) ||
      !bp_config_section_get_secret (section, "api-key", &api_key, error) ||
      !read_limit (section, "max-batch-points", 10000, 1, 1000000, &v[0], error) ||
      !read_limit (section, "max-vector-dim", 65536, 1, 65536, &v[1], error) ||
      !read_limit (section, "max-result-limit", 10000, 1, 1000000, &v[2], error) ||
      !read_limit (section, "max-batch-queries", 100, 1, 10000, &v[3], error) ||
      !read_limit (section, "max-json-depth", 64, 1, 1024, &v[4], error) ||
      !read_limit (section, "max-request-bytes", 32 << 20, 4096, G_GUINT64_CONSTANT (1) << 30, &v[5], error) ||
      !read_limit (section, "max-response-bytes", 64 << 20, 4096, G_GUINT64_CONSTANT (4) << 30, &v[6], error) ||
      !read_limit (section, "max-line-bytes", 1 << 20, 256, 256 << 20, &v[7], error))
    return FALSE;

  if (url == NULL || url[0] == '\0')
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "[%s] url: required (http:// or https:// address of the Qdrant server)",
                   bp_config_section_get_group (section));
      return FALSE;
    }

  limits.max_batch_points = (guint) v[0];
  limits.max_vector_dim = (guint) v[1];
  limits.max_result_limit = (guint) v[2];
  limits.max_batch_queries = (guint) v[3];
  limits.max_json_depth = (guint) v[4];
  limits.max_request_bytes = (gsize) v[5];
  limits.max_response_bytes = (gsize) v[6];
  limits.max_line_bytes = (gsize) v[7];

  /* breaker.timeout-ms, when set and shorter, bounds every request too. */
  breaker_timeout_ms = bp_backend_get_resilience_config (backend)->breaker_timeout_ms;
  if (breaker_timeout_ms > 0 && breaker_timeout_ms < timeout_ms)
    timeout_ms = breaker_timeout_ms;

  g_clear_object (&self->client);
  self->client = g_initable_new (BP_TYPE_QDRANT_CLIENT, NULL, &local,
                                 "url", url,
                                 "api-key", api_key,
                                 "timeout-ms", (guint) timeout_ms,
                                 "max-connections", (guint) max_conns,
                                 "clock", bp_backend_get_clock (backend),
                                 NULL);
  if (api_key != NULL)
    memset (api_key, 0, strlen (api_key));
  if (self->client == NULL ||
      !bp_qdrant_client_set_limits (self->client, &limits, &local))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "[%s] %s",
                   bp_config_section_get_group (section), local->message);
      g_clear_object (&self->client);
      return FALSE;
    }
  self->limits = limits;
  return TRUE;
}

/* The checks behind start and CheckHealth: the server's version (GET /,
 * which Qdrant answers without the api key), then GET /collections, which
 * proves the key is accepted. The task's result is the detail text. */

/* Main context: GET /collections answered. */
static void
access_checked_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  g_auto(GStrv) names = NULL;
  GError *error = NULL;

  names = bp_qdrant_client_list_collections_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (names == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_strdup (g_object_get_data (G_OBJECT (task), "detail")), g_free);
}

/* Main context: GET / answered. */
static void
version_done_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  BpQdrantBackend *self = g_task_get_source_object (task);
  g_autofree char *version = NULL;
  g_autofree char *warning = NULL;
  GError *error = NULL;
  gboolean compatible = FALSE;

  if (!bp_qdrant_client_version_check_finish (BP_QDRANT_CLIENT (object), result, &version,
                                              &compatible, &warning, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  g_clear_pointer (&self->version_warning, g_free);
  if (!compatible && self->compatibility != COMPAT_OFF)
    self->version_warning = g_strdup (warning);
  g_object_set_data_full (G_OBJECT (task), "detail",
                          compatible ? g_strdup_printf ("Qdrant %s at %s", version,
                                                        bp_qdrant_client_get_url (self->client))
                                     : g_steal_pointer (&warning),
                          g_free);
  bp_qdrant_client_list_collections_async (self->client, g_task_get_cancellable (task),
                                           access_checked_cb, task);
}

static void
run_version_check (BpQdrantBackend     *self,
                   GCancellable        *cancellable,
                   gpointer             source_tag,
                   GAsyncReadyCallback  callback,
                   gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  if (self->client == NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, "not configured");
      g_object_unref (task);
      return;
    }
  bp_qdrant_client_version_check_async (self->client, cancellable, version_done_cb, task);
}

static void
start_checked_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpQdrantBackend *self = BP_QDRANT_BACKEND (object);
  BpBackend *backend = BP_BACKEND (self);
  g_autoptr(GError) error = NULL;
  g_autofree char *detail = g_task_propagate_pointer (G_TASK (result), &error);

  if (detail == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
      /* Serve anyway: the first call that gets through makes it ready. */
      bp_backend_set_state (backend, BP_BACKEND_STATE_UNAVAILABLE, error->message);
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (self->version_warning != NULL && self->compatibility == COMPAT_STRICT)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, "%s (compatibility=strict)",
                               self->version_warning);
      return;
    }
  if (self->version_warning != NULL)
    bp_backend_set_state (backend, BP_BACKEND_STATE_DEGRADED, self->version_warning);
  else
    bp_backend_set_state (backend, BP_BACKEND_STATE_READY, NULL);
  g_task_return_boolean (task, TRUE);
}

static void
bp_qdrant_backend_start_async (BpBackend           *backend,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  BpQdrantBackend *self = BP_QDRANT_BACKEND (backend);
  GTask *task = g_task_new (backend, cancellable, callback, user_data);

  /* backplaned ignores SIGPIPE: a reader closing its ScrollToFd pipe is an
   * EPIPE error on the write. */
  g_task_set_source_tag (task, bp_qdrant_backend_start_async);
  run_version_check (self, cancellable, bp_qdrant_backend_start_async, start_checked_cb, task);
}

static void
bp_qdrant_backend_check_health_async (BpBackend           *backend,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  run_version_check (BP_QDRANT_BACKEND (backend), cancellable,
                     bp_qdrant_backend_check_health_async, callback, user_data);
}

static gboolean
bp_qdrant_backend_check_health_finish (BpBackend     *backend,
                                       GAsyncResult  *result,
                                       char         **detail,
                                       GError       **error)
{
  BpQdrantBackend *self = BP_QDRANT_BACKEND (backend);
  char *d = g_task_propagate_pointer (G_TASK (result), error);

  if (d == NULL)
    return FALSE;
  if (self->version_warning != NULL && self->compatibility == COMPAT_STRICT)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_UNAVAILABLE, d);
      g_free (d);
      return FALSE;
    }
  if (detail != NULL)
    *detail = d;
  else
    g_free (d);
  return TRUE;
}

static GVariant *
bp_qdrant_backend_dup_pool_stats (BpBackend *backend)
{
  BpQdrantBackend *self = BP_QDRANT_BACKEND (backend);
  GVariantDict dict;
  guint max = 0;

  g_variant_dict_init (&dict, NULL);
  if (self->client != NULL)
    {
      g_object_get (self->client, "max-connections", &max, NULL);
      g_variant_dict_insert (&dict, "max", "u", max);
    }
  return g_variant_ref_sink (g_variant_dict_end (&dict));
}

/* Dead-letter replays: one request, no retry of our own (the base class
 * runs this through the breaker and the retry budget). */

typedef struct
{
  gint64 started_us;
} ReplayData;

static void
replay_done (GTask        *task,
             gboolean      ok,
             GError       *error)
{
  BpQdrantBackend *self = g_task_get_source_object (task);
  ReplayData *data = g_task_get_task_data (task);

  note_outcome (self, data->started_us, error);
  if (!ok)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

/* Main context: the replayed upsert was answered. */
static void
replay_upsert_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GError *error = NULL;
  g_autofree char *status = bp_qdrant_client_upsert_finish (BP_QDRANT_CLIENT (object), result, &error);

  replay_done (user_data, status != NULL, error);
}

/* Main context: the replayed delete was answered. */
static void
replay_delete_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GError *error = NULL;
  g_autofree char *status = bp_qdrant_client_delete_points_finish (BP_QDRANT_CLIENT (object), result,
                                                                   &error);

  replay_done (user_data, status != NULL, error);
}

static void
bp_qdrant_backend_replay_async (BpBackend           *backend,
                                const char          *operation,
                                GVariant            *payload,
                                const char          *idempotency_key,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  BpQdrantBackend *self = BP_QDRANT_BACKEND (backend);
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  ReplayData *data = g_new0 (ReplayData, 1);
  const char *collection;
  gboolean wait;

  g_task_set_source_tag (task, bp_qdrant_backend_replay_async);
  data->started_us = bp_clock_get_time (bp_backend_get_clock (backend));
  g_task_set_task_data (task, data, g_free);

  if (self->client == NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, "backend %s is not configured",
                               bp_backend_get_name (backend));
      g_object_unref (task);
      return;
    }
  if (g_str_equal (operation, "Vectors.Upsert") && payload != NULL &&
      g_variant_is_of_type (payload, G_VARIANT_TYPE ("(sa(sads)b)")))
    {
      g_autoptr(GVariant) points = NULL;
      g_autoptr(GPtrArray) array = NULL;

      g_variant_get (payload, "(&s@a(sads)b)", &collection, &points, &wait);
      array = points_from_variant (points);
      bp_qdrant_client_upsert_async (self->client, collection, array, wait, cancellable,
                                     replay_upsert_cb, task);
      return;
    }
  if (g_str_equal (operation, "Vectors.Delete") && payload != NULL &&
      g_variant_is_of_type (payload, G_VARIANT_TYPE ("(sasb)")))
    {
      g_autofree const char **ids = NULL;

      g_variant_get (payload, "(&s^a&sb)", &collection, &ids, &wait);
      bp_qdrant_client_delete_points_async (self->client, collection, ids, NULL, wait, cancellable,
                                            replay_delete_cb, task);
      return;
    }
  g_task_return_new_error (task, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "backend %s cannot replay “%s” with a payload of type %s",
                           bp_backend_get_name (backend), operation,
                           payload != NULL ? g_variant_get_type_string (payload) : "none");
  g_object_unref (task);
}

static gboolean
bp_qdrant_backend_replay_finish (BpBackend     *backend,
                                 GAsyncResult  *result,
                                 GError       **error)
{
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
bp_qdrant_backend_dispose (GObject *object)
{
  BpQdrantBackend *self = BP_QDRANT_BACKEND (object);

  g_clear_object (&self->iface);
  g_clear_object (&self->client);
  G_OBJECT_CLASS (bp_qdrant_backend_parent_class)->dispose (object);
}

static void
bp_qdrant_backend_finalize (GObject *object)
{
  BpQdrantBackend *self = BP_QDRANT_BACKEND (object);

  g_free (self->version_warning);
  G_OBJECT_CLASS (bp_qdrant_backend_parent_class)->finalize (object);
}

static void
bp_qdrant_backend_class_init (BpQdrantBackendClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  BpBackendClass *backend_class = BP_BACKEND_CLASS (klass);

  object_class->dispose = bp_qdrant_backend_dispose;
  object_class->finalize = bp_qdrant_backend_finalize;
  backend_class->configure = bp_qdrant_backend_configure;
  backend_class->start_async = bp_qdrant_backend_start_async;
  backend_class->check_health_async = bp_qdrant_backend_check_health_async;
  backend_class->check_health_finish = bp_qdrant_backend_check_health_finish;
  backend_class->dup_pool_stats = bp_qdrant_backend_dup_pool_stats;
  backend_class->classify_error = bp_qdrant_backend_classify_error;
  backend_class->replay_async = bp_qdrant_backend_replay_async;
  backend_class->replay_finish = bp_qdrant_backend_replay_finish;
}

static void
bp_qdrant_backend_init (BpQdrantBackend *self)
{
  bp_qdrant_limits_init (&self->limits);
  self->iface = bp_dbus_vectors_skeleton_new ();
  g_signal_connect (self->iface, "handle-list-collections", G_CALLBACK (handle_list_collections), self);
  g_signal_connect (self->iface, "handle-collection-exists", G_CALLBACK (handle_collection_exists), self);
  g_signal_connect (self->iface, "handle-get-collection", G_CALLBACK (handle_get_collection), self);
  g_signal_connect (self->iface, "handle-create-collection", G_CALLBACK (handle_create_collection), self);
  g_signal_connect (self->iface, "handle-delete-collection", G_CALLBACK (handle_delete_collection), self);
  g_signal_connect (self->iface, "handle-upsert", G_CALLBACK (handle_upsert), self);
  g_signal_connect (self->iface, "handle-upsert-from-fd", G_CALLBACK (handle_upsert_from_fd), self);
  g_signal_connect (self->iface, "handle-query", G_CALLBACK (handle_query), self);
  g_signal_connect (self->iface, "handle-query-batch", G_CALLBACK (handle_query_batch), self);
  g_signal_connect (self->iface, "handle-retrieve", G_CALLBACK (handle_retrieve), self);
  g_signal_connect (self->iface, "handle-scroll-to-fd", G_CALLBACK (handle_scroll_to_fd), self);
  g_signal_connect (self->iface, "handle-count", G_CALLBACK (handle_count), self);
  g_signal_connect (self->iface, "handle-delete", G_CALLBACK (handle_delete), self);
  g_signal_connect (self->iface, "handle-create-snapshot", G_CALLBACK (handle_create_snapshot), self);
  g_signal_connect (self->iface, "handle-list-snapshots", G_CALLBACK (handle_list_snapshots), self);
  g_signal_connect (self->iface, "handle-delete-snapshot", G_CALLBACK (handle_delete_snapshot), self);
  bp_backend_add_interface (BP_BACKEND (self), G_DBUS_INTERFACE_SKELETON (self->iface));
}
