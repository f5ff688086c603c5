/* bp-bolt-ops.c: D-Bus options and whole-result operations of the bolt plugin
 *
 * - Parsing of the `a{sv}` options of Graph and GraphTransaction calls,
 *   each validated and bounded, unknown keys refused by name.
 * - bp_bolt_collect_async(): every record of a result as one GVariant
 *   `(asaa{sv}a{sv})`, bounded by max-records (beyond it the rest is
 *   DISCARDed and the call fails with LimitExceeded).
 * - bp_bolt_stream_to_fd_async(): a result as JSON Lines into a file
 *   descriptor, one PULL batch at a time, each pulled only once the previous
 *   one is written; a reader closing its end (POLLERR/POLLHUP, or a failed
 *   write) interrupts the query.
 *
 * Main context only.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <string.h>
#include <unistd.h>
#include <gio/gunixfdlist.h>
#include <gio/gunixoutputstream.h>
#include <glib-unix.h>

#include "bp-bolt-ops.h"
#include "bp-bolt-values.h"

/* ------------------------------------------------------------------ */
/* Options                                                             */

void
bp_bolt_options_clear (BpBoltOptions *options)
{
  g_clear_pointer (&options->database, g_free);
  g_clear_pointer (&options->bookmarks, g_strfreev);
  g_clear_pointer (&options->tx_metadata, g_variant_unref);
}

static gboolean
option_error (GError    **error,
              const char *format,
              ...) G_GNUC_PRINTF (2, 3);

static gboolean
option_error (GError    **error,
              const char *format,
              ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, message);
  return FALSE;
}

static gboolean
database_name_valid (const char *name)
{
  gsize len = strlen (name);

  if (len == 0 || len > 63)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!(g_ascii_isalnum (name[i]) || name[i] == '.' || name[i] == '-' || name[i] == '_'))
      return FALSE;
  return TRUE;
}

static gboolean
parse_one (const char        *key,
           GVariant          *value,
           BpBoltOptionFlags  allowed,
           guint              max_records,
           BpBoltOptions     *out,
           GError           **error)
{
  if (g_str_equal (key, "database") && (allowed & BP_BOLT_OPT_DATABASE))
    {
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
        return option_error (error, _("database: must be a string (s)"));
      if (!database_name_valid (g_variant_get_string (value, NULL)))
        return option_error (error, _("database: 1 to 63 letters, digits, '.', '-' or '_'"));
      g_free (out->database);
      out->database = g_variant_dup_string (value, NULL);
      return TRUE;
    }
  if (g_str_equal (key, "access-mode") && (allowed & BP_BOLT_OPT_ACCESS_MODE))
    {
      const char *mode;

      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
        return option_error (error, _("access-mode: must be a string (s)"));
      mode = g_variant_get_string (value, NULL);
      if (g_str_equal (mode, "read"))
        out->write = FALSE;
      else if (g_str_equal (mode, "write"))
        out->write = TRUE;
      else
        return option_error (error, _("access-mode: must be read or write, not '%s'"), mode);
      return TRUE;
    }
  if (g_str_equal (key, "bookmarks") && (allowed & BP_BOLT_OPT_BOOKMARKS))
    {
      gsize n;
      g_autofree const char **strv = NULL;

      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING_ARRAY))
        return option_error (error, _("bookmarks: must be a string array (as)"));
      strv = g_variant_get_strv (value, &n);
      if (n > BP_BOLT_MAX_BOOKMARKS)
        return option_error (error, _("bookmarks: at most %d"), BP_BOLT_MAX_BOOKMARKS);
      for (gsize i = 0; i < n; i++)
        if (strlen (strv[i]) == 0 || strlen (strv[i]) > 4096)
          return option_error (error, _("bookmarks: each 1 to 4096 bytes"));
      g_strfreev (out->bookmarks);
      out->bookmarks = g_variant_dup_strv (value, NULL);
      return TRUE;
    }
  if (g_str_equal (key, "timeout-ms") && (allowed & BP_BOLT_OPT_TIMEOUT))
    {
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
        return option_error (error, _("timeout-ms: must be an unsigned integer (u)"));
      out->timeout_ms = g_variant_get_uint32 (value);
      return TRUE;
    }
  if (g_str_equal (key, "fetch-size") && (allowed & BP_BOLT_OPT_FETCH_SIZE))
    {
      gint32 n;

      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
        return option_error (error, _("fetch-size: must be an integer (i)"));
      n = g_variant_get_int32 (value);
      if (n == 0 || n < -1 || n > BP_BOLT_MAX_FETCH_SIZE)
        return option_error (error, _("fetch-size: must be 1 to %d, or -1 for all"), BP_BOLT_MAX_FETCH_SIZE);
      out->fetch_size = n;
      return TRUE;
    }
  if (g_str_equal (key, "tx-metadata") && (allowed & BP_BOLT_OPT_TX_METADATA))
    {
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_VARDICT))
        return option_error (error, _("tx-metadata: must be a dictionary (a{sv})"));
      if (g_variant_get_size (value) > 64 * 1024)
        return option_error (error, _("tx-metadata: at most 64 KiB"));
      g_clear_pointer (&out->tx_metadata, g_variant_unref);
      out->tx_metadata = g_variant_ref (value);
      return TRUE;
    }
  if (g_str_equal (key, "max-records") && (allowed & BP_BOLT_OPT_MAX_RECORDS))
    {
      guint n;

      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
        return option_error (error, _("max-records: must be an unsigned integer (u)"));
      n = g_variant_get_uint32 (value);
      if (n == 0 || n > max_records)
        return option_error (error, _("max-records: must be 1 to %u"), max_records);
      out->max_records = n;
      return TRUE;
    }
  if (g_str_equal (key, "idle-timeout-ms") && (allowed & BP_BOLT_OPT_IDLE_TIMEOUT))
    {
      guint n;

      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
        return option_error (error, _("idle-timeout-ms: must be an unsigned integer (u)"));
      n = g_variant_get_uint32 (value);
      if (n == 0 || n > BP_BOLT_MAX_IDLE_TIMEOUT)
        return option_error (error, _("idle-timeout-ms: must be 1 to %d"), BP_BOLT_MAX_IDLE_TIMEOUT);
      out->idle_timeout_ms = n;
      return TRUE;
    }
  return option_error (error, _("Unknown option '%s'"), key);
}

/**
 * bp_bolt_options_parse:
 * @options: the caller's `a{sv}`
 * @allowed: the keys this call takes
 * @default_database: (nullable): the backend's database=
 * @default_fetch_size: the backend's fetch-size=
 * @max_records: the backend's max-records= (default and bound)
 * @out: (out caller-allocates): the parsed options; clear with
 *   bp_bolt_options_clear()
 * @error: a #GError (%BP_ERROR_INVALID_ARGUMENT naming the key)
 *
 * Returns: %TRUE if every key is known, of the right type and in range
 */
gboolean
bp_bolt_options_parse (GVariant           *options,
                       BpBoltOptionFlags   allowed,
                       const char         *default_database,
                       gint64              default_fetch_size,
                       guint               max_records,
                       BpBoltOptions      *out,
                       GError            **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  memset (out, 0, sizeof *out);
  out->database = g_strdup (default_database);
  out->write = TRUE;
  out->fetch_size = default_fetch_size;
  out->max_records = max_records;
  out->idle_timeout_ms = BP_BOLT_DEFAULT_IDLE_TIMEOUT;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) owned = value;

      if (!parse_one (key, owned, allowed, max_records, out, error))
        {
          bp_bolt_options_clear (out);
          return FALSE;
        }
    }
  return TRUE;
}

/**
 * bp_bolt_options_to_extra:
 * @options: parsed options
 *
 * Returns: (transfer floating): the Bolt RUN/BEGIN extra for
 *   bp_bolt_connection_run_async() and bp_bolt_connection_begin_async()
 */
GVariant *
bp_bolt_options_to_extra (const BpBoltOptions *options)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  if (options->database != NULL)
    g_variant_builder_add (&builder, "{sv}", "db", g_variant_new_string (options->database));
  if (!options->write)
    g_variant_builder_add (&builder, "{sv}", "mode", g_variant_new_string ("r"));
  if (options->bookmarks != NULL && options->bookmarks[0] != NULL)
    g_variant_builder_add (&builder, "{sv}", "bookmarks",
                           g_variant_new_strv ((const char * const *) options->bookmarks, -1));
  if (options->timeout_ms > 0)
    g_variant_builder_add (&builder, "{sv}", "tx_timeout", g_variant_new_int64 (options->timeout_ms));
  if (options->tx_metadata != NULL && g_variant_n_children (options->tx_metadata) > 0)
    g_variant_builder_add (&builder, "{sv}", "tx_metadata", options->tx_metadata);
  return g_variant_builder_end (&builder);
}

/**
 * bp_bolt_check_query:
 * @field: the argument name, for the message
 * @cypher: the query text
 * @error: a #GError
 *
 * Returns: %TRUE if @cypher is non-empty and at most 1 MiB
 */
gboolean
bp_bolt_check_query (const char *field,
                     const char *cypher,
                     GError    **error)
{
  gsize len = strlen (cypher);

  if (len == 0)
    return option_error (error, _("%s: empty query"), field);
  if (len > BP_BOLT_MAX_QUERY_SIZE)
    return option_error (error, _("%s: longer than %d bytes"), field, BP_BOLT_MAX_QUERY_SIZE);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Collect a whole result                                              */

typedef struct
{
  guint      max_records;
  GPtrArray *records;    /* (element-type GVariant) (owned) */
} CollectData;

static void
collect_data_free (CollectData *data)
{
  g_ptr_array_unref (data->records);
  g_free (data);
}

static void collect_batch_cb (GObject *object, GAsyncResult *result, gpointer user_data);

static void
collect_next (GTask *task)
{
  bp_bolt_stream_next_batch_async (g_task_get_source_object (task), g_task_get_cancellable (task),
                                   collect_batch_cb, task);
}

static GVariant *
make_keys (BpBoltStream *stream)
{
  guint n;
  const char * const *keys = bp_bolt_stream_get_keys (stream, &n);

  return g_variant_new_strv (keys, n);
}

/* Main context: one batch arrived. */
static void
collect_batch_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpBoltStream *stream = BP_BOLT_STREAM (object);
  CollectData *data = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) batch = NULL;
  gboolean has_more = FALSE;
  GVariant *summary;

  batch = bp_bolt_stream_next_batch_finish (stream, result, &has_more, &error);
  if (batch == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  for (guint i = 0; i < batch->len; i++)
    g_ptr_array_add (data->records, g_variant_ref (g_ptr_array_index (batch, i)));
  if (data->records->len > data->max_records)
    {
      /* the connection DISCARDs the rest before it is given back */
      bp_bolt_stream_discard_async (stream, NULL, NULL, NULL);
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                               _("The result has more than %u records (max-records)"), data->max_records);
      return;
    }
  if (has_more)
    {
      collect_next (g_steal_pointer (&task));
      return;
    }
  summary = bp_bolt_stream_get_summary (stream);
  g_task_return_pointer (task,
                         g_variant_ref_sink (g_variant_new ("(@as@aa{sv}@a{sv})",
                                                            make_keys (stream),
                                                            g_variant_new_array (G_VARIANT_TYPE_VARDICT,
                                                                                 (GVariant **) data->records->pdata,
                                                                                 data->records->len),
                                                            summary != NULL ? summary
                                                                            : g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0))),
                         (GDestroyNotify) g_variant_unref);
}

/**
 * bp_bolt_collect_async:
 * @stream: a result
 * @max_records: fail with %BP_ERROR_LIMIT_EXCEEDED beyond this many
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with all records
 * @user_data: data for @callback
 */
void
bp_bolt_collect_async (BpBoltStream        *stream,
                       guint                max_records,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  GTask *task = g_task_new (stream, cancellable, callback, user_data);
  CollectData *data = g_new0 (CollectData, 1);

  g_task_set_source_tag (task, bp_bolt_collect_async);
  data->max_records = max_records;
  data->records = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_task_set_task_data (task, data, (GDestroyNotify) collect_data_free);
  bp_bolt_stream_set_record_format (stream, BP_BOLT_RECORD_FORMAT_VARIANT);
  /* every record is wanted: pull the next batch while decoding this one */
  bp_bolt_stream_set_prefetch (stream, TRUE);
  collect_next (task);
}

/**
 * bp_bolt_collect_finish:
 * @stream: a result
 * @result: the #GAsyncResult
 * @error: a #GError
 *
 * Returns: (transfer full): `(asaa{sv}a{sv})`: keys, records, summary
 */
GVariant *
bp_bolt_collect_finish (BpBoltStream  *stream,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct
{
  guint max_records;
} RunCollectData;

static void
run_collected_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;
  GVariant *reply = bp_bolt_collect_finish (BP_BOLT_STREAM (object), result, &error);

  if (reply == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, reply, (GDestroyNotify) g_variant_unref);
}

static void
run_started_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  RunCollectData *data = g_task_get_task_data (task);
  GCancellable *cancellable = g_task_get_cancellable (task);
  GError *error = NULL;
  g_autoptr(BpBoltStream) stream = bp_bolt_connection_run_finish (BP_BOLT_CONNECTION (object), result, &error);

  if (stream == NULL)
    {
      g_task_return_error (task, error);
      return;
    }

  bp_bolt_collect_async (stream, data->max_records, cancellable, run_collected_cb, g_steal_pointer (&task));
}

/**
 * bp_bolt_run_collect_async:
 * @connection: a ready connection
 * @cypher: the query
 * @params: (nullable): `a{sv}`
 * @extra: (nullable): `a{sv}` RUN extra (auto-commit only)
 * @fetch_size: records per PULL
 * @max_records: the bound on records
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the whole result
 * @user_data: data for @callback
 *
 * RUN, then every record (see bp_bolt_collect_async()).
 */
void
bp_bolt_run_collect_async (BpBoltConnection    *connection,
                           const char          *cypher,
                           GVariant            *params,
                           GVariant            *extra,
                           gint64               fetch_size,
                           guint                max_records,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  GTask *task = g_task_new (connection, cancellable, callback, user_data);
  RunCollectData *data = g_new0 (RunCollectData, 1);

  g_task_set_source_tag (task, bp_bolt_run_collect_async);
  data->max_records = max_records;
  g_task_set_task_data (task, data, g_free);
  bp_bolt_connection_run_async (connection, cypher, params, extra, fetch_size, cancellable,
                                run_started_cb, task);
}

/**
 * bp_bolt_run_collect_finish:
 * @connection: the connection
 * @result: the #GAsyncResult
 * @error: a #GError
 *
 * Returns: (transfer full): `(asaa{sv}a{sv})`
 */
GVariant *
bp_bolt_run_collect_finish (BpBoltConnection  *connection,
                            GAsyncResult      *result,
                            GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, connection), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ------------------------------------------------------------------ */
/* A result into a file descriptor                                     */

typedef struct
{
  GOutputStream *output;          /* (owned), owns the fd */
  int            fd;
  GCancellable  *cancellable;     /* (owned) ours: the reader went away, or the caller */
  GCancellable  *caller;          /* (owned) (nullable) */
  gulong         caller_id;
  GSource       *hup;             /* (owned) (nullable) */
  GString       *buffer;          /* (owned) the text being written */
  guint64        n_records;
  gboolean       finished;        /* the end or error line is in the buffer */
  GError        *error;           /* (owned) (nullable) what to report */
} FdData;

static void
fd_data_free (FdData *data)
{
  if (data->hup != NULL)
    {
      g_source_destroy (data->hup);
      g_source_unref (data->hup);
    }
  if (data->caller != NULL)
    g_cancellable_disconnect (data->caller, data->caller_id);
  g_clear_object (&data->caller);
  g_clear_object (&data->cancellable);
  g_clear_object (&data->output);
  g_string_free (data->buffer, TRUE);
  g_clear_error (&data->error);
  g_free (data);
}

static void fd_write (GTask *task);

/* The read end is gone (POLLERR/POLLHUP on the write end). */
static gboolean
fd_hup_cb (int          fd,
           GIOCondition condition,
           gpointer     user_data)
{
  FdData *data = user_data;

  g_clear_pointer (&data->hup, g_source_unref);
  g_cancellable_cancel (data->cancellable);
  return G_SOURCE_REMOVE;
}

static void
caller_cancelled_cb (GCancellable *caller,
                     gpointer      user_data)
{
  GCancellable *ours = user_data;

  g_cancellable_cancel (ours);
}

static void
append_error_line (GString      *buffer,
                   const GError *error)
{
  g_autoptr(GError) normalized = bp_error_normalize (error);
  g_autofree char *name = g_dbus_error_encode_gerror (normalized);

  g_string_append (buffer, "{\"error\":{\"name\":");
  bp_bolt_json_append_string (buffer, name, -1);
  g_string_append (buffer, ",\"message\":");
  bp_bolt_json_append_string (buffer, normalized->message, -1);
  g_string_append (buffer, "}}\n");
}

static void
fd_closed_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  FdData *data = g_task_get_task_data (task);

  g_output_stream_close_finish (G_OUTPUT_STREAM (object), result, NULL);
  g_debug ("JSON Lines to fd %d: closed after %" G_GUINT64_FORMAT " records%s%s", data->fd, data->n_records,
           data->error ? ": " : "", data->error ? data->error->message : "");
  if (data->error != NULL)
    g_task_return_error (task, g_steal_pointer (&data->error));
  else
    g_task_return_boolean (task, TRUE);
}

static void
fd_finish_with (GTask  *task,
                GError *error)
{
  FdData *data = g_task_get_task_data (task);
  BpBoltStream *stream = g_task_get_source_object (task);

  if (!bp_bolt_stream_is_finished (stream))
    bp_bolt_stream_discard_async (stream, NULL, NULL, NULL);
  if (data->error == NULL)
    data->error = error;
  else
    g_clear_error (&error);
  data->finished = TRUE;
  g_output_stream_close_async (data->output, G_PRIORITY_DEFAULT, NULL, fd_closed_cb, task);
}

static void fd_batch_cb (GObject *object, GAsyncResult *result, gpointer user_data);

static void
fd_written_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  FdData *data = g_task_get_task_data (task);
  BpBoltStream *stream = g_task_get_source_object (task);
  g_autoptr(GError) error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, &error))
    {
      if (data->finished)
        {
          g_output_stream_close_async (data->output, G_PRIORITY_DEFAULT, NULL, fd_closed_cb, task);
          return;
        }
      /* the reader is gone (EPIPE, or POLLHUP cancelled the write): stop the query */
      fd_finish_with (task, g_steal_pointer (&error));
      return;
    }
  g_string_truncate (data->buffer, 0);
  if (data->finished)
    {
      g_output_stream_close_async (data->output, G_PRIORITY_DEFAULT, NULL, fd_closed_cb, task);
      return;
    }
  bp_bolt_stream_next_batch_async (stream, data->cancellable, fd_batch_cb, task);
}

static void
fd_write (GTask *task)
{
  FdData *data = g_task_get_task_data (task);

  g_output_stream_write_all_async (data->output, data->buffer->str, data->buffer->len,
                                   G_PRIORITY_DEFAULT, data->cancellable, fd_written_cb, task);
}

/* Main context: one batch of JSON records, or the end. */
static void
fd_batch_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  FdData *data = g_task_get_task_data (task);
  BpBoltStream *stream = BP_BOLT_STREAM (object);
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) batch = NULL;
  gboolean has_more = FALSE;

  batch = bp_bolt_stream_next_batch_finish (stream, result, &has_more, &error);
  if (batch == NULL)
    {
      if (!g_cancellable_is_cancelled (data->cancellable))
        {
          /* tell the reader, then end */
          append_error_line (data->buffer, error);
          data->error = g_steal_pointer (&error);
          data->finished = TRUE;
          fd_write (task);
          return;
        }
      fd_finish_with (task, g_steal_pointer (&error));
      return;
    }
  for (guint i = 0; i < batch->len; i++)
    {
      g_string_append (data->buffer, g_ptr_array_index (batch, i));
      g_string_append_c (data->buffer, '\n');
    }
  data->n_records += batch->len;
  if (!has_more)
    {
      GVariant *summary = bp_bolt_stream_get_summary (stream);

      g_string_append (data->buffer, "{\"end\":");
      if (summary != NULL)
        bp_bolt_variant_to_json (data->buffer, summary);
      else
        g_string_append (data->buffer, "{}");
      g_string_append (data->buffer, "}\n");
      data->finished = TRUE;
    }
  fd_write (task);
}

/**
 * bp_bolt_close_passed_fds:
 * @invocation: a call that passed file descriptors
 *
 * Closes the call message's own copies of the passed fds, once the handler
 * took its duplicate with bp_call_steal_fd(): the message may outlive the
 * reply, and a pipe's reader sees end of file only when every copy of the
 * write end is closed.
 */
void
bp_bolt_close_passed_fds (GDBusMethodInvocation *invocation)
{
  GUnixFDList *list = g_dbus_message_get_unix_fd_list (g_dbus_method_invocation_get_message (invocation));
  int n = 0;
  int *fds;

  if (list == NULL)
    return;
  fds = g_unix_fd_list_steal_fds (list, &n);
  for (int i = 0; i < n; i++)
    close (fds[i]);
  g_free (fds);
}

/**
 * bp_bolt_stream_to_fd_async:
 * @stream: a result whose first batch is on its way
 * @fd: (transfer full): where the JSON Lines go; closed at the end
 * @cancellable: (nullable): cancels the transfer (and interrupts the query)
 * @callback: called once everything is written and @fd is closed
 * @user_data: data for @callback
 *
 * Writes `{"columns":[…]}`, one JSON object per record, then
 * `{"end":{…summary…}}` or `{"error":{"name":…,"message":…}}`.
 */
void
bp_bolt_stream_to_fd_async (BpBoltStream        *stream,
                            int                  fd,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task = g_task_new (stream, cancellable, callback, user_data);
  FdData *data = g_new0 (FdData, 1);
  guint n;
  const char * const *keys;

  g_task_set_source_tag (task, bp_bolt_stream_to_fd_async);
  g_task_set_task_data (task, data, (GDestroyNotify) fd_data_free);
  g_unix_set_fd_nonblocking (fd, TRUE, NULL);
  data->fd = fd;
  data->output = g_unix_output_stream_new (fd, TRUE);
  data->cancellable = g_cancellable_new ();
  data->buffer = g_string_new (NULL);
  if (cancellable != NULL)
    {
      data->caller = g_object_ref (cancellable);
      data->caller_id = g_cancellable_connect (cancellable, G_CALLBACK (caller_cancelled_cb),
                                               g_object_ref (data->cancellable), g_object_unref);
    }
  data->hup = g_unix_fd_source_new (fd, G_IO_ERR | G_IO_HUP);
  g_source_set_callback (data->hup, G_SOURCE_FUNC (fd_hup_cb), data, NULL);
  g_source_attach (data->hup, g_main_context_get_thread_default ());

  bp_bolt_stream_set_record_format (stream, BP_BOLT_RECORD_FORMAT_JSON);
  /* the pipe's back-pressure still holds: at most two batches are kept */
  bp_bolt_stream_set_prefetch (stream, TRUE);
  keys = bp_bolt_stream_get_keys (stream, &n);
  g_string_append (data->buffer, "{\"columns\":[");
  for (guint i = 0; i < n; i++)
    {
      if (i > 0)
        g_string_append_c (data->buffer, ',');
      bp_bolt_json_append_string (data->buffer, keys[i], -1);
    }
  g_string_append (data->buffer, "]}\n");
  fd_write (task);
}

/**
 * bp_bolt_stream_to_fd_finish:
 * @stream: the result
 * @result: the #GAsyncResult
 * @n_records: (out) (optional): records written
 * @error: a #GError
 *
 * Returns: %TRUE if every record and the end line were written
 */
gboolean
bp_bolt_stream_to_fd_finish (BpBoltStream  *stream,
                             GAsyncResult  *result,
                             guint64       *n_records,
                             GError       **error)
{
  FdData *data;

  g_return_val_if_fail (g_task_is_valid (result, stream), FALSE);
  data = g_task_get_task_data (G_TASK (result));
  if (n_records != NULL)
    *n_records = data->n_records;
  return g_task_propagate_boolean (G_TASK (result), error);
}
