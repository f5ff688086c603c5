/* bp-bolt-stream.c: the records of one RUN, pulled in batches
 *
 * A BpBoltStream is what bp_bolt_connection_run_finish() returns once the
 * server accepted a RUN (its SUCCESS gave the field names). The first PULL
 * was pipelined with the RUN; every later batch is pulled only when the
 * caller asks for it with bp_bolt_stream_next_batch_async(), so a slow
 * consumer holds at most one batch (fetch size records) in memory: that is
 * the back-pressure. A consumer that reads the whole result may turn on
 * prefetching (bp_bolt_stream_set_prefetch()): handing out a batch then
 * sends the PULL of the next one first, so the server produces it while the
 * caller consumes this one (as the drivers' watermarks do), and at most two
 * batches are held. Such a consumer ends early only through
 * bp_bolt_stream_discard_async(): a prefetching stream that is merely
 * dropped frees its connection once the PULL in flight is answered.
 *
 * Records are kept as raw RECORD messages and decoded when a batch is
 * handed out, into GVariant `a{sv}` or straight into JSON text (see
 * bp-bolt-values.h for the mapping).
 *
 * When the result ends (has_more false) the summary is available from
 * bp_bolt_stream_get_summary(). Dropping an unfinished stream makes the
 * connection DISCARD the rest, so the connection stays usable.
 *
 * All calls and callbacks happen in the connection's main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <string.h>

#include "bp-bolt-private.h"
#include "bp-bolt-values.h"

typedef enum
{
  PENDING_NONE,
  PENDING_BATCH,
  PENDING_DISCARD,
} PendingKind;

struct _BpBoltStream
{
  GObject             parent_instance;

  BpBoltConnection   *connection;    /* (owned) */
  BpBoltLimits        limits;
  gboolean            in_tx;
  gint64              fetch_size;
  gint64              qid;
  char              **keys;          /* (owned) unique field names */
  guint               n_keys;
  GVariant           *run_metadata;  /* (owned) (nullable) */
  BpBoltRecordFormat  format;
  gboolean            prefetch;

  GQueue              records;       /* (element-type GBytes) (owned) raw RECORD messages */
  gboolean            pulling;       /* a PULL or DISCARD for us is in the queue */
  gboolean            discarding;    /* drop records, DISCARD the rest */
  gboolean            finished;
  GError             *error;         /* (owned) (nullable) sticky */
  GVariant           *summary;       /* (owned) (nullable) */

  PendingKind         pending_kind;
  GTask              *pending;       /* (owned) (nullable) */
  GSource            *cancel_source; /* (owned) (nullable) watches pending's cancellable */
};

G_DEFINE_FINAL_TYPE (BpBoltStream, bp_bolt_stream, G_TYPE_OBJECT)

static void complete_pending (BpBoltStream *self);

static void
clear_cancel_source (BpBoltStream *self)
{
  if (self->cancel_source != NULL)
    {
      g_source_destroy (self->cancel_source);
      g_clear_pointer (&self->cancel_source, g_source_unref);
    }
}

/* The caller gave up waiting for a batch. A PULL cannot be taken back, so
 * the stream fails, the rest is dropped and the server is interrupted
 * (RESET) so a long query stops. Runs in the task's main context. */
static gboolean
on_cancelled (GCancellable *cancellable,
              gpointer      user_data)
{
  BpBoltStream *self = user_data;
  g_autoptr(GTask) task = g_steal_pointer (&self->pending);

  g_object_ref (self);
  clear_cancel_source (self);
  self->pending_kind = PENDING_NONE;
  if (self->error == NULL)
    self->error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
  self->discarding = TRUE;
  g_queue_clear_full (&self->records, (GDestroyNotify) g_bytes_unref);
  _bp_bolt_connection_interrupt (self->connection);
  if (task != NULL)
    g_task_return_error_if_cancelled (task);
  g_object_unref (self);
  return G_SOURCE_REMOVE;
}

static void
bp_bolt_stream_dispose (GObject *object)
{
  BpBoltStream *self = BP_BOLT_STREAM (object);

  if (self->connection != NULL)
    {
      /* No PULL can be in flight here: the connection holds a reference on
       * a stream it pulls for. */
      _bp_bolt_connection_stream_dropped (self->connection, self, self->qid,
                                          !self->finished && !self->pulling);
      g_clear_object (&self->connection);
    }
  G_OBJECT_CLASS (bp_bolt_stream_parent_class)->dispose (object);
}

static void
bp_bolt_stream_finalize (GObject *object)
{
  BpBoltStream *self = BP_BOLT_STREAM (object);

  g_assert (self->pending == NULL);
  clear_cancel_source (self);
  g_queue_clear_full (&self->records, (GDestroyNotify) g_bytes_unref);
  g_strfreev (self->keys);
  g_clear_pointer (&self->run_metadata, g_variant_unref);
  g_clear_pointer (&self->summary, g_variant_unref);
  g_clear_error (&self->error);

  G_OBJECT_CLASS (bp_bolt_stream_parent_class)->finalize (object);
}

static void
bp_bolt_stream_class_init (BpBoltStreamClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bp_bolt_stream_dispose;
  object_class->finalize = bp_bolt_stream_finalize;
}

static void
bp_bolt_stream_init (BpBoltStream *self)
{
  g_queue_init (&self->records);
  self->qid = -1;
}

BpBoltStream *
_bp_bolt_stream_new (BpBoltConnection   *connection,
                     gboolean            in_tx,
                     gint64              fetch_size,
                     const BpBoltLimits *limits)
{
  BpBoltStream *self = g_object_new (BP_TYPE_BOLT_STREAM, NULL);

  self->connection = g_object_ref (connection);
  self->in_tx = in_tx;
  self->fetch_size = fetch_size;
  self->limits = *limits;
  self->pulling = TRUE;   /* the first PULL travels with the RUN */
  return self;
}

/* Field names become record keys; a repeated name gets "#2", "#3" as SQL
 * columns do (API.md), so a record never has duplicate keys. */
gboolean
_bp_bolt_stream_set_run_metadata (BpBoltStream *self,
                                  GVariant     *metadata,
                                  GError      **error)
{
  g_autoptr(GVariant) fields = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_autoptr(GPtrArray) keys = g_ptr_array_new_null_terminated (0, g_free, TRUE);
  gint64 qid;

  g_clear_pointer (&self->run_metadata, g_variant_unref);
  self->run_metadata = g_variant_ref (metadata);
  if (g_variant_lookup (metadata, "qid", "x", &qid))
    self->qid = qid;

  fields = g_variant_lookup_value (metadata, "fields", G_VARIANT_TYPE ("av"));
  if (fields == NULL)
    fields = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_VARIANT, NULL, 0));
  for (gsize i = 0; i < g_variant_n_children (fields); i++)
    {
      g_autoptr(GVariant) child = g_variant_get_child_value (fields, i);
      g_autoptr(GVariant) name = g_variant_get_variant (child);
      g_autofree char *key = NULL;
      guint n = 1;

      if (!g_variant_is_of_type (name, G_VARIANT_TYPE_STRING))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                       _("RUN SUCCESS field %lu is not a string"), (gulong) i);
          return FALSE;
        }
      key = g_variant_dup_string (name, NULL);
      while (g_hash_table_contains (seen, key))
        {
          g_free (key);
          key = g_strdup_printf ("%s#%u", g_variant_get_string (name, NULL), ++n);
        }
      g_hash_table_add (seen, g_strdup (key));
      g_ptr_array_add (keys, g_steal_pointer (&key));
    }
  g_strfreev (self->keys);
  self->n_keys = keys->len;
  self->keys = (char **) g_ptr_array_free (g_steal_pointer (&keys), FALSE);
  return TRUE;
}

void
_bp_bolt_stream_push_record (BpBoltStream *self,
                             GBytes       *message)
{
  if (self->discarding || self->error != NULL)
    return;
  g_queue_push_tail (&self->records, g_bytes_ref (message));
}

static GVariant *
build_summary (BpBoltStream *self,
               GVariant     *metadata)
{
  GVariantBuilder builder;
  GVariantIter iter;
  const char *key;
  GVariant *value;
  gint64 t_first;
  const char *server;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  if (metadata != NULL)
    {
      g_variant_iter_init (&iter, metadata);
      while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
        if (strcmp (key, "has_more") != 0)
          g_variant_builder_add (&builder, "{sv}", key, value);
    }
  if (self->run_metadata != NULL &&
      g_variant_lookup (self->run_metadata, "t_first", "x", &t_first))
    g_variant_builder_add (&builder, "{sv}", "t_first", g_variant_new_int64 (t_first));
  server = bp_bolt_connection_get_server_agent (self->connection);
  if (server != NULL && (metadata == NULL || !g_variant_lookup (metadata, "server", "&s", NULL)))
    g_variant_builder_add (&builder, "{sv}", "server", g_variant_new_string (server));
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

static void
finish (BpBoltStream *self)
{
  if (self->finished)
    return;
  self->finished = TRUE;
  _bp_bolt_connection_stream_done (self->connection, self);
}

/* The summary of our PULL or DISCARD arrived: @metadata on SUCCESS, @error
 * on FAILURE, IGNORED or a lost connection. */
void
_bp_bolt_stream_pull_done (BpBoltStream *self,
                           GVariant     *metadata,
                           const GError *error)
{
  gboolean has_more = FALSE;

  g_object_ref (self);
  self->pulling = FALSE;
  if (error != NULL)
    {
      if (self->error == NULL)
        self->error = g_error_copy (error);
      g_queue_clear_full (&self->records, (GDestroyNotify) g_bytes_unref);
      finish (self);
    }
  else
    {
      if (metadata != NULL)
        g_variant_lookup (metadata, "has_more", "b", &has_more);
      if (!has_more)
        {
          g_clear_pointer (&self->summary, g_variant_unref);
          self->summary = build_summary (self, metadata);
          finish (self);
        }
      else if (self->discarding)
        {
          self->pulling = TRUE;
          _bp_bolt_connection_send_pull (self->connection, self, -1, TRUE);
        }
    }
  complete_pending (self);
  g_object_unref (self);
}

void
_bp_bolt_stream_abort (BpBoltStream *self,
                       const GError *error)
{
  g_object_ref (self);
  if (self->error == NULL)
    self->error = g_error_copy (error);
  g_queue_clear_full (&self->records, (GDestroyNotify) g_bytes_unref);
  self->pulling = FALSE;
  finish (self);
  complete_pending (self);
  g_object_unref (self);
}

gboolean
_bp_bolt_stream_is_in_tx (BpBoltStream *self)
{
  return self->in_tx;
}

gboolean
_bp_bolt_stream_is_pulling (BpBoltStream *self)
{
  return self->pulling;
}

gboolean
_bp_bolt_stream_is_discarding (BpBoltStream *self)
{
  return self->discarding;
}

/* The connection wants the rest gone (before COMMIT). */
void
_bp_bolt_stream_discard_internal (BpBoltStream *self)
{
  self->discarding = TRUE;
  g_queue_clear_full (&self->records, (GDestroyNotify) g_bytes_unref);
  if (!self->finished && !self->pulling)
    {
      self->pulling = TRUE;
      _bp_bolt_connection_send_pull (self->connection, self, -1, TRUE);
    }
}

/* ------------------------------------------------------------------ */

/**
 * bp_bolt_stream_get_keys:
 * @self: a #BpBoltStream
 * @n_keys: (out) (optional): how many
 *
 * Returns: (transfer none) (array length=n_keys): the record keys, in the
 *   server's column order; a repeated column name gets "#2", "#3"
 */
const char * const *
bp_bolt_stream_get_keys (BpBoltStream *self,
                         guint        *n_keys)
{
  g_return_val_if_fail (BP_IS_BOLT_STREAM (self), NULL);

  if (n_keys != NULL)
    *n_keys = self->n_keys;
  return (const char * const *) self->keys;
}

gint64
bp_bolt_stream_get_qid (BpBoltStream *self)
{
  g_return_val_if_fail (BP_IS_BOLT_STREAM (self), -1);
  return self->qid;
}

/**
 * bp_bolt_stream_get_run_metadata:
 * @self: a #BpBoltStream
 *
 * Returns: (transfer none): the RUN SUCCESS metadata (`fields`, `t_first`, `qid`, …)
 */
GVariant *
bp_bolt_stream_get_run_metadata (BpBoltStream *self)
{
  g_return_val_if_fail (BP_IS_BOLT_STREAM (self), NULL);
  return self->run_metadata;
}

/**
 * bp_bolt_stream_set_prefetch:
 * @self: a #BpBoltStream
 * @prefetch: %TRUE to pull the next batch while the caller uses this one
 *
 * For consumers that read the whole result (or end it with
 * bp_bolt_stream_discard_async()): see the top of this file.
 */
void
bp_bolt_stream_set_prefetch (BpBoltStream *self,
                             gboolean      prefetch)
{
  g_return_if_fail (BP_IS_BOLT_STREAM (self));
  self->prefetch = prefetch;
}

void
bp_bolt_stream_set_record_format (BpBoltStream       *self,
                                  BpBoltRecordFormat  format)
{
  g_return_if_fail (BP_IS_BOLT_STREAM (self));
  self->format = format;
}

/**
 * bp_bolt_stream_get_connection:
 * @self: a #BpBoltStream
 *
 * Returns: (transfer none): the connection the records come from
 */
BpBoltConnection *
bp_bolt_stream_get_connection (BpBoltStream *self)
{
  g_return_val_if_fail (BP_IS_BOLT_STREAM (self), NULL);
  return self->connection;
}

gboolean
bp_bolt_stream_is_finished (BpBoltStream *self)
{
  g_return_val_if_fail (BP_IS_BOLT_STREAM (self), TRUE);
  return self->finished;
}

/**
 * bp_bolt_stream_get_summary:
 * @self: a #BpBoltStream
 *
 * The final PULL/DISCARD SUCCESS metadata without `has_more`, plus
 * `t_first` (from RUN) and `server`: `bookmark` s (auto-commit only),
 * `db` s, `type` s, `t_last` x, `stats` a{sv}, `notifications` /
 * `statuses` av, `plan`/`profile` when asked for.
 *
 * Returns: (transfer none) (nullable): the summary, %NULL until the result
 *   has ended successfully
 */
GVariant *
bp_bolt_stream_get_summary (BpBoltStream *self)
{
  g_return_val_if_fail (BP_IS_BOLT_STREAM (self), NULL);
  return self->summary;
}

static GPtrArray *
decode_records (BpBoltStream *self,
                GError      **error)
{
  g_autoptr(GPtrArray) batch = NULL;
  g_autoptr(GString) json = NULL;

  if (self->format == BP_BOLT_RECORD_FORMAT_JSON)
    {
      batch = g_ptr_array_new_full (self->records.length, g_free);
      json = g_string_new (NULL);
    }
  else
    batch = g_ptr_array_new_full (self->records.length, (GDestroyNotify) g_variant_unref);

  while (!g_queue_is_empty (&self->records))
    {
      g_autoptr(GBytes) message = g_queue_pop_head (&self->records);
      gsize len;
      const guint8 *data = g_bytes_get_data (message, &len);
      BpBoltReader reader;

      /* skip the B1 71 structure header, checked on arrival */
      bp_bolt_reader_init (&reader, data + 2, len - 2, &self->limits);
      if (self->format == BP_BOLT_RECORD_FORMAT_JSON)
        {
          g_string_truncate (json, 0);
          if (!bp_bolt_record_to_json (&reader, (const char * const *) self->keys, self->n_keys, json, error))
            return NULL;
          g_ptr_array_add (batch, g_strndup (json->str, json->len));
        }
      else
        {
          GVariant *record = bp_bolt_record_to_variant (&reader, (const char * const *) self->keys,
                                                        self->n_keys, error);
          if (record == NULL)
            return NULL;
          g_ptr_array_add (batch, record);
        }
      if (!bp_bolt_reader_at_end (&reader))
        {
          g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("RECORD has trailing bytes"));
          return NULL;
        }
    }
  return g_steal_pointer (&batch);
}

static void
complete_pending (BpBoltStream *self)
{
  g_autoptr(GTask) task = NULL;
  PendingKind kind = self->pending_kind;

  if (self->pending == NULL || self->pulling)
    return;

  task = g_steal_pointer (&self->pending);
  self->pending_kind = PENDING_NONE;
  clear_cancel_source (self);

  if (kind == PENDING_DISCARD)
    {
      if (self->error != NULL)
        g_task_return_error (task, g_error_copy (self->error));
      else
        g_task_return_boolean (task, TRUE);
      return;
    }

  if (self->error != NULL)
    {
      g_task_return_error (task, g_error_copy (self->error));
      return;
    }
  {
    GError *error = NULL;
    gboolean more = !self->finished;
    GPtrArray *batch;

    /* the next batch is on its way while this one is decoded and used */
    if (more && self->prefetch && !self->discarding)
      {
        self->pulling = TRUE;
        _bp_bolt_connection_send_pull (self->connection, self, self->fetch_size, FALSE);
      }
    batch = decode_records (self, &error);

    if (batch == NULL)
      {
        /* The bytes are in sync, the values are not usable: fail the
         * stream and drop the rest so the connection stays READY. */
        self->error = g_error_copy (error);
        g_queue_clear_full (&self->records, (GDestroyNotify) g_bytes_unref);
        if (!self->finished)
          _bp_bolt_stream_discard_internal (self);
        g_task_return_error (task, error);
        return;
      }
    g_task_set_task_data (task, GINT_TO_POINTER (more), NULL);
    g_task_return_pointer (task, batch, (GDestroyNotify) g_ptr_array_unref);
  }
}

/**
 * bp_bolt_stream_next_batch_async:
 * @self: a #BpBoltStream
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the batch
 * @user_data: data for @callback
 *
 * Gets the records of the next PULL (at most the fetch size). The first call
 * returns what the PULL sent with the RUN delivered; later calls send a new
 * PULL only now. One call at a time.
 *
 * Cancelling interrupts the query on the server (the connection sends RESET;
 * an explicit transaction is then failed).
 */
void
bp_bolt_stream_next_batch_async (BpBoltStream        *self,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BP_IS_BOLT_STREAM (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_stream_next_batch_async);

  if (self->pending != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               _("A batch or discard request is already pending on this result"));
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;

  self->pending = g_steal_pointer (&task);
  self->pending_kind = PENDING_BATCH;

  if (self->error == NULL && !self->pulling && !self->finished && g_queue_is_empty (&self->records))
    {
      self->pulling = TRUE;
      _bp_bolt_connection_send_pull (self->connection, self, self->fetch_size, FALSE);
    }
  if (cancellable != NULL && self->pulling)
    {
      self->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (self->cancel_source, G_SOURCE_FUNC (on_cancelled), self, NULL);
      g_source_attach (self->cancel_source, g_task_get_context (self->pending));
    }
  complete_pending (self);
}

/**
 * bp_bolt_stream_next_batch_finish:
 * @self: a #BpBoltStream
 * @result: the #GAsyncResult
 * @has_more: (out) (optional): %TRUE if another call may return more records
 * @error: a #GError
 *
 * Returns: (transfer full) (element-type GVariant): the records, `a{sv}`
 *   #GVariants or JSON strings depending on the record format; empty at the end
 */
GPtrArray *
bp_bolt_stream_next_batch_finish (BpBoltStream  *self,
                                  GAsyncResult  *result,
                                  gboolean      *has_more,
                                  GError       **error)
{
  GPtrArray *batch;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_bolt_stream_next_batch_async, NULL);

  batch = g_task_propagate_pointer (G_TASK (result), error);
  if (has_more != NULL)
    *has_more = batch != NULL && GPOINTER_TO_INT (g_task_get_task_data (G_TASK (result)));
  return batch;
}

/**
 * bp_bolt_stream_discard_async:
 * @self: a #BpBoltStream
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the result has ended
 * @user_data: data for @callback
 *
 * Drops the records not yet handed out and DISCARDs the rest on the server;
 * the summary is then available. The connection is READY (or TX_READY)
 * again afterwards.
 */
void
bp_bolt_stream_discard_async (BpBoltStream        *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BP_IS_BOLT_STREAM (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_stream_discard_async);

  if (self->pending != NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               _("A batch or discard request is already pending on this result"));
      return;
    }
  self->pending = g_steal_pointer (&task);
  self->pending_kind = PENDING_DISCARD;
  _bp_bolt_stream_discard_internal (self);
  complete_pending (self);
}

gboolean
bp_bolt_stream_discard_finish (BpBoltStream  *self,
                               GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_bolt_stream_discard_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
