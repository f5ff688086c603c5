/* bp-qdrant-client.c: an asynchronous Qdrant REST client on libsoup 3
 *
 * One SoupSession (keep-alive, bounded connections) per client. Every call
 * is a GTask; every HTTP request gets a deadline (timeout-ms on the
 * client's BpClock) that cancels an internal GCancellable chained to the
 * caller's, so a stalled server yields BP_ERROR_TIMEOUT while the caller's
 * own cancellation yields G_IO_ERROR_CANCELLED. Response bodies are read
 * in chunks and refused past max-response-bytes; request bodies are built
 * in memory within max-request-bytes (the stream operations hold one
 * batch or one page at a time).
 *
 * All operations must be started from the thread-default main context the
 * client was created in (libsoup 3's rule); every callback below runs in
 * that context. Nothing here blocks. The api key goes only into the
 * `api-key` header: it is never logged and is redacted from any error
 * text a server might echo it in. Logging is g_debug of method and path.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-qdrant-client.h"

#include <string.h>

#include <libsoup/soup.h>

#define READ_CHUNK (64 * 1024)
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_MAX_CONNECTIONS 10
#define DEFAULT_STREAM_BATCH 256
#define DEFAULT_SCROLL_PAGE 256

struct _BpQdrantClient
{
  GObject         parent_instance;

  char           *url;        /* base URL without a trailing slash */
  char           *api_key;    /* (nullable) secret: never logged */
  guint           timeout_ms;
  guint           max_connections;
  BpClock        *clock;      /* (owned) */
  BpQdrantLimits  limits;
  SoupSession    *session;    /* (owned) */
};

enum {
  PROP_0,
  PROP_URL,
  PROP_API_KEY,
  PROP_TIMEOUT_MS,
  PROP_MAX_CONNECTIONS,
  PROP_CLOCK,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void bp_qdrant_client_initable_iface_init (GInitableIface *iface);

G_DEFINE_FINAL_TYPE_WITH_CODE (BpQdrantClient, bp_qdrant_client, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_INITABLE,
                                                      bp_qdrant_client_initable_iface_init))

/* ------------------------------------------------------------- object */

static void
bp_qdrant_client_finalize (GObject *object)
{
  BpQdrantClient *self = BP_QDRANT_CLIENT (object);

  g_clear_object (&self->session);
  g_clear_object (&self->clock);
  g_free (self->url);
  if (self->api_key != NULL)
    {
      memset (self->api_key, 0, strlen (self->api_key));
      g_free (self->api_key);
    }

  G_OBJECT_CLASS (bp_qdrant_client_parent_class)->finalize (object);
}

static void
bp_qdrant_client_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  BpQdrantClient *self = BP_QDRANT_CLIENT (object);

  switch (prop_id)
    {
    case PROP_URL:
      g_value_set_string (value, self->url);
      break;
    case PROP_TIMEOUT_MS:
      g_value_set_uint (value, self->timeout_ms);
      break;
    case PROP_MAX_CONNECTIONS:
      g_value_set_uint (value, self->max_connections);
      break;
    case PROP_CLOCK:
      g_value_set_object (value, self->clock);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_qdrant_client_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  BpQdrantClient *self = BP_QDRANT_CLIENT (object);

  switch (prop_id)
    {
    case PROP_URL:
      self->url = g_value_dup_string (value);
      break;
    case PROP_API_KEY:
      self->api_key = g_value_dup_string (value);
      if (self->api_key != NULL && self->api_key[0] == '\0')
        g_clear_pointer (&self->api_key, g_free);
      break;
    case PROP_TIMEOUT_MS:
      bp_qdrant_client_set_timeout_ms (self, g_value_get_uint (value));
      break;
    case PROP_MAX_CONNECTIONS:
      self->max_connections = g_value_get_uint (value);
      break;
    case PROP_CLOCK:
      self->clock = g_value_dup_object (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_qdrant_client_class_init (BpQdrantClientClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = bp_qdrant_client_finalize;
  object_class->get_property = bp_qdrant_client_get_property;
  object_class->set_property = bp_qdrant_client_set_property;

  /**
   * BpQdrantClient:url:
   *
   * The server's base URL, `http://` or `https://`, optionally with a path
   * prefix; no user info, query or fragment.
   */
  properties[PROP_URL] =
    g_param_spec_string ("url", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * BpQdrantClient:api-key:
   *
   * Sent as the `api-key` header on every request. Write-only.
   */
  properties[PROP_API_KEY] =
    g_param_spec_string ("api-key", NULL, NULL, NULL,
                         G_PARAM_WRITABLE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * BpQdrantClient:timeout-ms:
   *
   * Deadline of each HTTP request, in milliseconds (at least 1).
   */
  properties[PROP_TIMEOUT_MS] =
    g_param_spec_uint ("timeout-ms", NULL, NULL, 1, G_MAXINT32 / 1000, DEFAULT_TIMEOUT_MS,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_EXPLICIT_NOTIFY |
                       G_PARAM_STATIC_STRINGS);
  /**
   * BpQdrantClient:max-connections:
   *
   * Most connections the session keeps open to the server.
   */
  properties[PROP_MAX_CONNECTIONS] =
    g_param_spec_uint ("max-connections", NULL, NULL, 1, 1024, DEFAULT_MAX_CONNECTIONS,
                       G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  /**
   * BpQdrantClient:clock:
   *
   * The clock the request deadlines run on; the default clock if unset.
   */
  properties[PROP_CLOCK] =
    g_param_spec_object ("clock", NULL, NULL, BP_TYPE_CLOCK,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
bp_qdrant_client_init (BpQdrantClient *self)
{
  self->timeout_ms = DEFAULT_TIMEOUT_MS;
  self->max_connections = DEFAULT_MAX_CONNECTIONS;
  bp_qdrant_limits_init (&self->limits);
}

static gboolean
bp_qdrant_client_initable_init (GInitable     *initable,
                                GCancellable  *cancellable,
                                GError       **error)
{
  BpQdrantClient *self = BP_QDRANT_CLIENT (initable);
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GError) local = NULL;
  g_autofree char *path = NULL;
  const char *scheme;
  g_autofree char *ua = NULL;

  if (self->url == NULL)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "url: missing");
      return FALSE;
    }
  uri = g_uri_parse (self->url, G_URI_FLAGS_NONE, &local);
  if (uri == NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "url: not a valid http:// or https:// URL: %s", local->message);
      return FALSE;
    }
  scheme = g_uri_get_scheme (uri);
  if (g_ascii_strcasecmp (scheme, "http") != 0 && g_ascii_strcasecmp (scheme, "https") != 0)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "url: the scheme must be http or https");
      return FALSE;
    }
  if (g_uri_get_host (uri) == NULL || g_uri_get_host (uri)[0] == '\0')
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "url: no host");
      return FALSE;
    }
  if (g_uri_get_userinfo (uri) != NULL || g_uri_get_query (uri) != NULL ||
      g_uri_get_fragment (uri) != NULL)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "url: must not have user info, a query or a fragment "
                           "(give the key with api-key-file= or api-key-env=)");
      return FALSE;
    }
  path = g_strdup (g_uri_get_path (uri));
  while (path[0] != '\0' && path[strlen (path) - 1] == '/')
    path[strlen (path) - 1] = '\0';
  g_free (self->url);
  self->url = g_uri_join (G_URI_FLAGS_NONE, scheme, NULL, g_uri_get_host (uri),
                          g_uri_get_port (uri), path, NULL, NULL);

  if (self->api_key != NULL)
    {
      const char *p;

      for (p = self->api_key; *p != '\0'; p++)
        if ((guchar) *p < 0x20 || (guchar) *p >= 0x7f)
          {
            g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                 "api-key: must be printable ASCII");
            return FALSE;
          }
    }

  if (self->clock == NULL)
    self->clock = g_object_ref (bp_clock_get_default ());

  ua = g_strdup_printf ("backplane-qdrant/%s", PACKAGE_VERSION);
  self->session = soup_session_new_with_options ("max-conns", (int) self->max_connections,
                                                 "max-conns-per-host", (int) self->max_connections,
                                                 "user-agent", ua,
                                                 "idle-timeout", 60,
                                                 NULL);
  bp_qdrant_client_set_timeout_ms (self, self->timeout_ms);
  return TRUE;
}

static void
bp_qdrant_client_initable_iface_init (GInitableIface *iface)
{
  iface->init = bp_qdrant_client_initable_init;
}

/**
 * bp_qdrant_client_new:
 * @url: the server's base URL, `http://` or `https://`
 * @api_key: (nullable): the api key, or %NULL
 * @error: return location for a #GError
 *
 * Creates a client bound to the thread-default main context. Use
 * g_initable_new() for the other construct properties (`max-connections`,
 * `clock`, `timeout-ms`).
 *
 * Returns: (transfer full): a new client, or %NULL with
 *   %BP_ERROR_INVALID_ARGUMENT for a bad URL
 */
BpQdrantClient *
bp_qdrant_client_new (const char  *url,
                      const char  *api_key,
                      GError     **error)
{
  return g_initable_new (BP_TYPE_QDRANT_CLIENT, NULL, error,
                         "url", url,
                         "api-key", api_key,
                         NULL);
}

/**
 * bp_qdrant_client_get_url:
 * @self: a client
 *
 * Returns: (transfer none): the normalized base URL
 */
const char *
bp_qdrant_client_get_url (BpQdrantClient *self)
{
  g_return_val_if_fail (BP_IS_QDRANT_CLIENT (self), NULL);
  return self->url;
}

/**
 * bp_qdrant_client_set_timeout_ms:
 * @self: a client
 * @timeout_ms: the deadline of each HTTP request (0 is taken as 1)
 */
void
bp_qdrant_client_set_timeout_ms (BpQdrantClient *self,
                                 guint           timeout_ms)
{
  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  timeout_ms = CLAMP (timeout_ms, 1, G_MAXINT32 / 1000);
  if (self->session != NULL)
    /* I/O inactivity bound of libsoup, a second beyond our own deadline
     * so that the deadline (with its clearer message) normally wins. */
    soup_session_set_timeout (self->session, timeout_ms / 1000 + 2);
  if (self->timeout_ms == timeout_ms)
    return;
  self->timeout_ms = timeout_ms;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TIMEOUT_MS]);
}

guint
bp_qdrant_client_get_timeout_ms (BpQdrantClient *self)
{
  g_return_val_if_fail (BP_IS_QDRANT_CLIENT (self), 0);
  return self->timeout_ms;
}

/**
 * bp_qdrant_client_set_limits:
 * @self: a client
 * @limits: the new bounds (copied)
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @limits were valid and are now in force
 */
gboolean
bp_qdrant_client_set_limits (BpQdrantClient        *self,
                             const BpQdrantLimits  *limits,
                             GError               **error)
{
  g_return_val_if_fail (BP_IS_QDRANT_CLIENT (self), FALSE);

  if (!bp_qdrant_limits_validate (limits, error))
    return FALSE;
  self->limits = *limits;
  return TRUE;
}

/**
 * bp_qdrant_client_get_limits:
 * @self: a client
 *
 * Returns: (transfer none): the bounds in force
 */
const BpQdrantLimits *
bp_qdrant_client_get_limits (BpQdrantClient *self)
{
  g_return_val_if_fail (BP_IS_QDRANT_CLIENT (self), NULL);
  return &self->limits;
}

/* ------------------------------------------------------------ requests */

typedef struct
{
  JsonNode *result;       /* (nullable) */
  char     *status;       /* (nullable) envelope status */
  guint     http_status;
} Response;

static void
response_free (Response *r)
{
  g_clear_pointer (&r->result, json_node_unref);
  g_free (r->status);
  g_free (r);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Response, response_free)

typedef struct
{
  SoupMessage        *msg;            /* (owned) */
  GInputStream       *stream;         /* (owned) (nullable) */
  GByteArray         *body;           /* (owned) */
  GCancellable       *cancellable;    /* (owned) internal: deadline or caller */
  GCancellable       *caller;         /* (owned) (nullable) */
  gulong              caller_id;
  GSource            *deadline;       /* (owned) (nullable) */
  gboolean            timed_out;
  gboolean            enveloped;
  const char * const *id_paths;
  char               *what;           /* "METHOD /path" */
} RequestData;

static void
request_disarm (RequestData *data)
{
  if (data->deadline != NULL)
    {
      g_source_destroy (data->deadline);
      g_clear_pointer (&data->deadline, g_source_unref);
    }
  if (data->caller_id != 0)
    {
      g_cancellable_disconnect (data->caller, data->caller_id);
      data->caller_id = 0;
    }
}

static void
request_data_free (RequestData *data)
{
  request_disarm (data);
  if (data->stream != NULL)
    g_input_stream_close_async (data->stream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  g_clear_object (&data->stream);
  g_clear_object (&data->msg);
  g_clear_pointer (&data->body, g_byte_array_unref);
  g_clear_object (&data->cancellable);
  g_clear_object (&data->caller);
  g_free (data->what);
  g_free (data);
}

/* Replaces any occurrence of the api key in an error message. */
static void
redact (BpQdrantClient  *self,
        GError          *error)
{
  char *hit;

  if (error == NULL || self->api_key == NULL)
    return;
  while ((hit = strstr (error->message, self->api_key)) != NULL)
    {
      g_autofree char *before = g_strndup (error->message, (gsize) (hit - error->message));
      char *msg = g_strconcat (before, "<redacted>", hit + strlen (self->api_key), NULL);

      g_free (error->message);
      error->message = msg;
    }
}

static void
request_fail (GTask  *task,
              GError *error)
{
  BpQdrantClient *self = g_task_get_source_object (task);
  RequestData *data = g_task_get_task_data (task);

  request_disarm (data);
  redact (self, error);
  g_task_return_error (task, error);
  g_object_unref (task);
}

/* Maps a libsoup/GIO failure of the exchange itself. */
static void
request_fail_transport (GTask  *task,
                        GError *error)
{
  BpQdrantClient *self = g_task_get_source_object (task);
  RequestData *data = g_task_get_task_data (task);
  GError *mapped;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      if (data->timed_out)
        {
          mapped = g_error_new (BP_ERROR, BP_ERROR_TIMEOUT,
                                "Qdrant %s timed out after %u ms", data->what,
                                self->timeout_ms);
          g_error_free (error);
          return request_fail (task, mapped);
        }
      return request_fail (task, error);
    }
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    mapped = g_error_new (BP_ERROR, BP_ERROR_TIMEOUT, "Qdrant %s: %s", data->what,
                          error->message);
  else
    mapped = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "Qdrant at %s unavailable: %s: %s",
                          self->url, data->what, error->message);
  g_error_free (error);
  request_fail (task, mapped);
}

static void
request_complete (GTask *task)
{
  BpQdrantClient *self = g_task_get_source_object (task);
  RequestData *data = g_task_get_task_data (task);
  SoupMessageHeaders *headers = soup_message_get_response_headers (data->msg);
  g_autoptr(Response) response = g_new0 (Response, 1);
  GError *error = NULL;

  request_disarm (data);
  response->http_status = soup_message_get_status (data->msg);
  if (!bp_qdrant_response_parse (response->http_status,
                                 soup_message_get_reason_phrase (data->msg),
                                 soup_message_headers_get_one (headers, "Retry-After"),
                                 (const char *) data->body->data, data->body->len,
                                 data->enveloped, self->limits.max_json_depth,
                                 data->id_paths, &response->result, &response->status,
                                 &error))
    return request_fail (task, error);

  g_debug ("%s: HTTP %u", data->what, response->http_status);
  g_task_return_pointer (task, g_steal_pointer (&response), (GDestroyNotify) response_free);
  g_object_unref (task);
}

static void request_read_cb (GObject      *object,
                             GAsyncResult *result,
                             gpointer      user_data);

static void
request_read_next (GTask *task)
{
  RequestData *data = g_task_get_task_data (task);

  g_input_stream_read_bytes_async (data->stream, READ_CHUNK, G_PRIORITY_DEFAULT,
                                   data->cancellable, request_read_cb, task);
}

/* Runs in the client's context once the status line and headers came. */
static void
request_send_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  BpQdrantClient *self = g_task_get_source_object (task);
  RequestData *data = g_task_get_task_data (task);
  GError *error = NULL;
  SoupMessageHeaders *headers;
  goffset length;

  data->stream = soup_session_send_finish (SOUP_SESSION (object), result, &error);
  if (data->stream == NULL)
    return request_fail_transport (task, error);

  headers = soup_message_get_response_headers (data->msg);
  if (soup_message_headers_get_encoding (headers) == SOUP_ENCODING_CONTENT_LENGTH &&
      (length = soup_message_headers_get_content_length (headers)) > 0 &&
      (guint64) length > self->limits.max_response_bytes)
    {
      error = g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                           "Qdrant %s: response of %" G_GINT64_FORMAT " bytes exceeds "
                           "max-response-bytes (%" G_GSIZE_FORMAT ")",
                           data->what, (gint64) length, self->limits.max_response_bytes);
      return request_fail (task, error);
    }
  request_read_next (task);
}

/* Runs in the client's context once the whole body was read. */
static void
request_closed_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GTask *task = user_data;
  RequestData *data = g_task_get_task_data (task);

  /* The body is complete: a failed close only costs the connection. */
  g_input_stream_close_finish (G_INPUT_STREAM (object), result, NULL);
  g_clear_object (&data->stream);
  request_complete (task);
}

/* Runs in the client's context for each chunk of the body. */
static void
request_read_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  BpQdrantClient *self = g_task_get_source_object (task);
  RequestData *data = g_task_get_task_data (task);
  g_autoptr(GBytes) bytes = NULL;
  GError *error = NULL;
  gsize n;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (object), result, &error);
  if (bytes == NULL)
    return request_fail_transport (task, error);

  n = g_bytes_get_size (bytes);
  if (n == 0)
    {
      /* At its end. Only closing the body stream finishes the message, so
       * that the connection goes back to the session for the next request;
       * dropping our reference is not enough (the message holds one too). */
      g_input_stream_close_async (data->stream, G_PRIORITY_DEFAULT, NULL, request_closed_cb, task);
      return;
    }
  if (data->body->len + n > self->limits.max_response_bytes)
    {
      error = g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                           "Qdrant %s: response exceeds max-response-bytes (%" G_GSIZE_FORMAT ")",
                           data->what, self->limits.max_response_bytes);
      return request_fail (task, error);
    }
  g_byte_array_append (data->body, g_bytes_get_data (bytes, NULL), (guint) n);
  request_read_next (task);
}

/* Runs in the client's context when the deadline passes. */
static gboolean
request_deadline_cb (gpointer user_data)
{
  RequestData *data = user_data;

  data->timed_out = TRUE;
  g_cancellable_cancel (data->cancellable);
  g_clear_pointer (&data->deadline, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* May run in whichever thread cancels the caller's cancellable. */
static void
request_caller_cancelled_cb (GCancellable *caller,
                             gpointer      user_data)
{
  g_cancellable_cancel (G_CANCELLABLE (user_data));
}

/*
 * client_request:
 * @path: the escaped path and query, starting with '/'
 * @body: (nullable): a JSON request body
 * @enveloped: whether the answer is {result, status, time}
 * @id_paths: (nullable): where ids are in the answer
 *
 * Completes with a Response (client_request_finish()).
 */
static void
client_request (BpQdrantClient      *self,
                const char          *method,
                const char          *path,
                GBytes              *body,
                gboolean             enveloped,
                const char * const  *id_paths,
                GCancellable        *cancellable,
                GAsyncReadyCallback  callback,
                gpointer             user_data)
{
  g_autofree char *uri = g_strconcat (self->url, path, NULL);
  GTask *task;
  RequestData *data;
  SoupMessageHeaders *headers;

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, client_request);

  data = g_new0 (RequestData, 1);
  data->body = g_byte_array_new ();
  data->cancellable = g_cancellable_new ();
  data->enveloped = enveloped;
  data->id_paths = id_paths;
  data->what = g_strdup_printf ("%s %s", method, path);
  g_task_set_task_data (task, data, (GDestroyNotify) request_data_free);

  if (body != NULL && g_bytes_get_size (body) > self->limits.max_request_bytes)
    return request_fail (task, g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                                            "request body of %" G_GSIZE_FORMAT " bytes exceeds "
                                            "max-request-bytes (%" G_GSIZE_FORMAT ")",
                                            g_bytes_get_size (body),
                                            self->limits.max_request_bytes));

  data->msg = soup_message_new (method, uri);
  if (data->msg == NULL)
    return request_fail (task, g_error_new (BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                            "cannot form a request URL for %s", data->what));
  soup_message_add_flags (data->msg, SOUP_MESSAGE_NO_REDIRECT);
  /* libsoup sends a POST on a new connection unless it is marked
   * idempotent. Qdrant's POSTs are reads (query, count, scroll, retrieve)
   * and deletes by selector, which may go over a kept-alive connection
   * (and be resent if the server closed it in between); creating a
   * snapshot is the one that must not. */
  if (!(g_str_equal (method, "POST") && strstr (path, "/snapshots") != NULL))
    soup_message_add_flags (data->msg, SOUP_MESSAGE_IDEMPOTENT);
  headers = soup_message_get_request_headers (data->msg);
  soup_message_headers_replace (headers, "Accept", "application/json");
  if (self->api_key != NULL)
    soup_message_headers_replace (headers, "api-key", self->api_key);
  if (body != NULL)
    soup_message_set_request_body_from_bytes (data->msg, "application/json", body);

  g_debug ("%s", data->what);

  data->deadline = bp_clock_timeout_source_new (self->clock, (gint64) self->timeout_ms * 1000);
  g_source_set_callback (data->deadline, request_deadline_cb, data, NULL);
  g_source_attach (data->deadline, g_main_context_get_thread_default ());

  if (cancellable != NULL)
    {
      data->caller = g_object_ref (cancellable);
      data->caller_id = g_cancellable_connect (cancellable,
                                               G_CALLBACK (request_caller_cancelled_cb),
                                               g_object_ref (data->cancellable),
                                               g_object_unref);
    }

  soup_session_send_async (self->session, data->msg, G_PRIORITY_DEFAULT, data->cancellable,
                           request_send_cb, task);
}

static Response *
client_request_finish (BpQdrantClient  *self,
                       GAsyncResult    *result,
                       GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Path helpers: names are validated first, then escaped whole. */
static char *
collection_path (const char *collection,
                 const char *suffix)
{
  g_autofree char *escaped = g_uri_escape_string (collection, NULL, FALSE);

  return g_strconcat ("/collections/", escaped, suffix, NULL);
}

static GBytes *
string_to_bytes (GString *s)
{
  return g_string_free_to_bytes (s);
}

static gboolean
check_collection (const char  *collection,
                  GError     **error)
{
  return bp_qdrant_name_validate (collection, "collection", error);
}

/* Returns a GTask for a public call; if @collection is not NULL it is
 * validated and a failed task is returned as NULL after completing it. */
static GTask *
op_task_new (BpQdrantClient      *self,
             gpointer             source_tag,
             const char          *collection,
             GCancellable        *cancellable,
             GAsyncReadyCallback  callback,
             gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  GError *error = NULL;

  g_task_set_source_tag (task, source_tag);
  if (collection != NULL && !check_collection (collection, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return NULL;
    }
  return task;
}

static void
op_fail (GTask  *task,
         GError *error)
{
  g_task_return_error (task, error);
  g_object_unref (task);
}

static JsonNode *
result_member (Response   *response,
               const char *member,
               GError    **error)
{
  JsonNode *node = NULL;

  if (response->result != NULL && JSON_NODE_HOLDS_OBJECT (response->result))
    node = json_object_get_member (json_node_get_object (response->result), member);
  if (node == NULL)
    g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                 "HTTP %u: malformed response: result.%s is missing",
                 response->http_status, member);
  return node;
}

static const char *
wait_query (gboolean wait)
{
  return wait ? "?wait=true" : "?wait=false";
}

/* ------------------------------------------------------- version check */

static void
version_check_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;
  BpQdrantClient *self = BP_QDRANT_CLIENT (object);
  g_autoptr(Response) response = NULL;
  GError *error = NULL;
  JsonNode *version;

  response = client_request_finish (self, result, &error);
  if (response == NULL)
    return op_fail (task, error);
  version = response->result != NULL && JSON_NODE_HOLDS_OBJECT (response->result)
              ? json_object_get_member (json_node_get_object (response->result), "version")
              : NULL;
  if (version == NULL || json_node_get_value_type (version) != G_TYPE_STRING)
    return op_fail (task, g_error_new (BP_ERROR, BP_ERROR_BACKEND,
                                       "HTTP %u: malformed response: no version",
                                       response->http_status));
  g_task_return_pointer (task, g_strdup (json_node_get_string (version)), g_free);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_version_check_async:
 * @self: a client
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Asks `GET /` for the server's version and compares it with the version
 * this client was written for (%BP_QDRANT_TARGET_MAJOR.%BP_QDRANT_TARGET_MINOR).
 */
void
bp_qdrant_client_version_check_async (BpQdrantClient      *self,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_version_check_async, NULL, cancellable,
                      callback, user_data);
  client_request (self, "GET", "/", NULL, FALSE, NULL, cancellable, version_check_cb, task);
}

/**
 * bp_qdrant_client_version_check_finish:
 * @self: a client
 * @result: the result
 * @server_version: (out) (transfer full) (optional): the server's version
 * @compatible: (out) (optional): whether the major versions are equal and
 *   the minor versions at most one apart
 * @warning: (out) (transfer full) (optional) (nullable): why not, when not
 * @error: return location for a #GError
 *
 * An incompatible server is not an error here: the caller decides whether
 * to refuse it (strict) or to warn.
 *
 * Returns: %TRUE if the version was read
 */
gboolean
bp_qdrant_client_version_check_finish (BpQdrantClient  *self,
                                       GAsyncResult    *result,
                                       char           **server_version,
                                       gboolean        *compatible,
                                       char           **warning,
                                       GError         **error)
{
  g_autofree char *version = NULL;
  g_autoptr(GError) why = NULL;
  gboolean ok;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  version = g_task_propagate_pointer (G_TASK (result), error);
  if (version == NULL)
    return FALSE;
  ok = bp_qdrant_version_check (version, BP_QDRANT_TARGET_MAJOR, BP_QDRANT_TARGET_MINOR, &why);
  if (compatible != NULL)
    *compatible = ok;
  if (warning != NULL)
    *warning = ok ? NULL : g_strdup (why->message);
  if (server_version != NULL)
    *server_version = g_steal_pointer (&version);
  return TRUE;
}

/* --------------------------------------------------------- collections */

static void
list_collections_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(Response) response = NULL;
  g_autoptr(GPtrArray) names = NULL;
  GError *error = NULL;
  JsonNode *collections;
  JsonArray *array;
  guint i;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  collections = result_member (response, "collections", &error);
  if (collections == NULL)
    return op_fail (task, error);
  if (!JSON_NODE_HOLDS_ARRAY (collections))
    return op_fail (task, g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND,
                                               "malformed response: collections is not an array"));
  array = json_node_get_array (collections);
  names = g_ptr_array_new_with_free_func (g_free);
  for (i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *e = json_array_get_element (array, i);
      JsonNode *name = JSON_NODE_HOLDS_OBJECT (e)
                         ? json_object_get_member (json_node_get_object (e), "name")
                         : NULL;

      if (name == NULL || json_node_get_value_type (name) != G_TYPE_STRING)
        return op_fail (task, g_error_new (BP_ERROR, BP_ERROR_BACKEND,
                                           "malformed response: collection %u has no name", i));
      g_ptr_array_add (names, g_strdup (json_node_get_string (name)));
    }
  g_ptr_array_add (names, NULL);
  g_task_return_pointer (task, g_ptr_array_free (g_steal_pointer (&names), FALSE),
                         (GDestroyNotify) g_strfreev);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_list_collections_async:
 * @self: a client
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `GET /collections`.
 */
void
bp_qdrant_client_list_collections_async (BpQdrantClient      *self,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_list_collections_async, NULL, cancellable,
                      callback, user_data);
  client_request (self, "GET", "/collections", NULL, TRUE, NULL, cancellable,
                  list_collections_cb, task);
}

/**
 * bp_qdrant_client_list_collections_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (array zero-terminated=1): the collection names
 */
char **
bp_qdrant_client_list_collections_finish (BpQdrantClient  *self,
                                          GAsyncResult    *result,
                                          GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
collection_exists_cb (GObject      *object,
                      GAsyncResult *result,
                      gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(Response) response = NULL;
  GError *error = NULL;
  JsonNode *exists;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  exists = result_member (response, "exists", &error);
  if (exists == NULL)
    return op_fail (task, error);
  if (json_node_get_value_type (exists) != G_TYPE_BOOLEAN)
    return op_fail (task, g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND,
                                               "malformed response: exists is not a boolean"));
  /* GTask's boolean cannot carry a FALSE answer apart from an error. */
  g_task_return_int (task, json_node_get_boolean (exists) ? 1 : 0);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_collection_exists_async:
 * @self: a client
 * @collection: the collection name
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `GET /collections/{collection}/exists`.
 */
void
bp_qdrant_client_collection_exists_async (BpQdrantClient      *self,
                                          const char          *collection,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data)
{
  g_autofree char *path = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_collection_exists_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  path = collection_path (collection, "/exists");
  client_request (self, "GET", path, NULL, TRUE, NULL, cancellable, collection_exists_cb, task);
}

/**
 * bp_qdrant_client_collection_exists_finish:
 * @self: a client
 * @result: the result
 * @exists: (out): whether the collection exists
 * @error: return location for a #GError
 *
 * Returns: %TRUE if the answer was read
 */
gboolean
bp_qdrant_client_collection_exists_finish (BpQdrantClient  *self,
                                           GAsyncResult    *result,
                                           gboolean        *exists,
                                           GError         **error)
{
  GError *local = NULL;
  gssize v;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  v = g_task_propagate_int (G_TASK (result), &local);
  if (local != NULL)
    {
      g_propagate_error (error, local);
      return FALSE;
    }
  if (exists != NULL)
    *exists = v == 1;
  return TRUE;
}

static void
get_collection_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(Response) response = NULL;
  GError *error = NULL;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  if (response->result == NULL || !JSON_NODE_HOLDS_OBJECT (response->result))
    return op_fail (task, g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND,
                                               "malformed response: result is not an object"));
  g_task_return_pointer (task, bp_qdrant_json_node_to_string (response->result), g_free);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_get_collection_async:
 * @self: a client
 * @collection: the collection name
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `GET /collections/{collection}`: the CollectionInfo.
 */
void
bp_qdrant_client_get_collection_async (BpQdrantClient      *self,
                                       const char          *collection,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_autofree char *path = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_get_collection_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  path = collection_path (collection, "");
  client_request (self, "GET", path, NULL, TRUE, NULL, cancellable, get_collection_cb, task);
}

/**
 * bp_qdrant_client_get_collection_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the CollectionInfo as JSON text
 */
char *
bp_qdrant_client_get_collection_finish (BpQdrantClient  *self,
                                        GAsyncResult    *result,
                                        GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* For answers whose result is `true` (or 202 accepted); what a `false`
 * answer means depends on the call. */
typedef struct
{
  BpError  false_code;
  char    *false_meaning;
} BooleanOp;

static void
boolean_op_free (BooleanOp *op)
{
  g_free (op->false_meaning);
  g_free (op);
}

static void
boolean_op_set (GTask      *task,
                BpError     false_code,
                char       *false_meaning)
{
  BooleanOp *op = g_new0 (BooleanOp, 1);

  op->false_code = false_code;
  op->false_meaning = false_meaning;
  g_task_set_task_data (task, op, (GDestroyNotify) boolean_op_free);
}

static void
boolean_result_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GTask *task = user_data;
  BooleanOp *op = g_task_get_task_data (task);
  g_autoptr(Response) response = NULL;
  GError *error = NULL;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  if (response->http_status == 202 || g_strcmp0 (response->status, "accepted") == 0)
    ;
  else if (response->result == NULL ||
           json_node_get_value_type (response->result) != G_TYPE_BOOLEAN)
    return op_fail (task, g_error_new (BP_ERROR, BP_ERROR_BACKEND,
                                       "HTTP %u: malformed response: result is not a boolean",
                                       response->http_status));
  else if (!json_node_get_boolean (response->result))
    return op_fail (task, g_error_new (BP_ERROR, op->false_code,
                                       "HTTP %u: the server answered false: %s",
                                       response->http_status, op->false_meaning));
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_create_collection_async:
 * @self: a client
 * @collection: the collection name
 * @config_json: a CreateCollection object as JSON text, with `vectors`
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `PUT /collections/{collection}`. @config_json is checked (see
 * bp_qdrant_collection_config_validate()) and sent as written.
 */
void
bp_qdrant_client_create_collection_async (BpQdrantClient      *self,
                                          const char          *collection,
                                          const char          *config_json,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GBytes) body = NULL;
  GError *error = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_create_collection_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  if (!bp_qdrant_collection_config_validate (config_json, &self->limits, &error))
    return op_fail (task, error);
  boolean_op_set (task, BP_ERROR_BACKEND,
                  g_strdup_printf ("collection '%s' was not created", collection));
  path = collection_path (collection, "");
  body = g_bytes_new (config_json, strlen (config_json));
  client_request (self, "PUT", path, body, TRUE, NULL, cancellable, boolean_result_cb, task);
}

gboolean
bp_qdrant_client_create_collection_finish (BpQdrantClient  *self,
                                           GAsyncResult    *result,
                                           GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * bp_qdrant_client_delete_collection_async:
 * @self: a client
 * @collection: the collection name
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `DELETE /collections/{collection}`. A missing collection is
 * %BP_ERROR_NOT_FOUND.
 */
void
bp_qdrant_client_delete_collection_async (BpQdrantClient      *self,
                                          const char          *collection,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data)
{
  g_autofree char *path = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_delete_collection_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  boolean_op_set (task, BP_ERROR_NOT_FOUND,
                  g_strdup_printf ("collection '%s' does not exist", collection));
  path = collection_path (collection, "");
  client_request (self, "DELETE", path, NULL, TRUE, NULL, cancellable, boolean_result_cb, task);
}

gboolean
bp_qdrant_client_delete_collection_finish (BpQdrantClient  *self,
                                           GAsyncResult    *result,
                                           GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* -------------------------------------------------------------- points */

/* For UpdateResult answers: returns the status string. */
static char *
update_status (Response  *response,
               GError   **error)
{
  JsonNode *status = result_member (response, "status", error);

  if (status == NULL)
    return NULL;
  if (json_node_get_value_type (status) != G_TYPE_STRING)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_BACKEND,
                   "HTTP %u: malformed response: result.status is not a string",
                   response->http_status);
      return NULL;
    }
  return g_strdup (json_node_get_string (status));
}

static void
update_result_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(Response) response = NULL;
  GError *error = NULL;
  char *status;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  status = update_status (response, &error);
  if (status == NULL)
    return op_fail (task, error);
  g_task_return_pointer (task, status, g_free);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_upsert_async:
 * @self: a client
 * @collection: the collection name
 * @points: (element-type BpQdrantPoint): the points (at most max-batch-points)
 * @wait: whether the server answers only once the points are applied
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `PUT /collections/{collection}/points?wait=…` with `{"points":[…]}`.
 * Ids, vectors and payloads are checked first (%BP_ERROR_INVALID_ARGUMENT
 * naming `points[i].…`).
 */
void
bp_qdrant_client_upsert_async (BpQdrantClient      *self,
                               const char          *collection,
                               GPtrArray           *points,
                               gboolean             wait,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GBytes) body = NULL;
  GString *text;
  GError *error = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));
  g_return_if_fail (points != NULL);

  task = op_task_new (self, bp_qdrant_client_upsert_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  text = g_string_new (NULL);
  if (!bp_qdrant_points_write (text, points, &self->limits, &error))
    {
      g_string_free (text, TRUE);
      return op_fail (task, error);
    }
  body = string_to_bytes (text);
  path = collection_path (collection, "/points");
  {
    g_autofree char *full = g_strconcat (path, wait_query (wait), NULL);

    client_request (self, "PUT", full, body, TRUE, NULL, cancellable, update_result_cb, task);
  }
}

/**
 * bp_qdrant_client_upsert_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the UpdateResult status: `completed` (with
 *   wait), `acknowledged` (without), or `wait_timeout`
 */
char *
bp_qdrant_client_upsert_finish (BpQdrantClient  *self,
                                GAsyncResult    *result,
                                GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* UpsertFromStream, double-buffered: while batch k is being sent, batch
 * k+1 is read and converted, so the server never waits for us; batch k+1
 * is sent only once batch k was answered, so requests stay in file order
 * (a later line for the same id wins, as it would sequentially) and at
 * most two batches are in memory. Everything runs in the caller's main
 * context. */

typedef struct
{
  BpQdrantJsonlReader *reader;     /* (owned) */
  char                *path;       /* with the wait query */
  guint                batch_size;
  gboolean             reading;    /* a batch is being read */
  gboolean             sending;    /* a batch is being sent */
  gboolean             eof;        /* the reader reached the end */
  GBytes              *ready;      /* (owned) (nullable) read, not sent yet */
  guint                n_ready;
  guint                in_flight;  /* points of the batch being sent */
  guint64              done;       /* points the server took */
  GError              *error;      /* (owned) (nullable) the first failure */
} StreamUpsertData;

static void
stream_upsert_data_free (StreamUpsertData *data)
{
  g_clear_object (&data->reader);
  g_free (data->path);
  g_clear_pointer (&data->ready, g_bytes_unref);
  g_clear_error (&data->error);
  g_free (data);
}

static void stream_upsert_batch_cb (GObject      *object,
                                    GAsyncResult *result,
                                    gpointer      user_data);
static void stream_upsert_sent_cb  (GObject      *object,
                                    GAsyncResult *result,
                                    gpointer      user_data);

/* Decides what happens next; called whenever a read or a send ended. The
 * task completes once nothing is outstanding, so the count is exact. */
static void
stream_upsert_step (GTask *task)
{
  BpQdrantClient *self = g_task_get_source_object (task);
  StreamUpsertData *data = g_task_get_task_data (task);

  if (data->error != NULL)
    {
      GError *error;

      if (data->reading || data->sending)
        return;
      error = g_steal_pointer (&data->error);
      if (data->done > 0 && error->domain == BP_ERROR)
        g_prefix_error (&error, "after %" G_GUINT64_FORMAT " points were upserted: ", data->done);
      op_fail (task, error);
      return;
    }
  if (!data->sending && data->ready != NULL)
    {
      g_autoptr(GBytes) body = g_steal_pointer (&data->ready);

      data->sending = TRUE;
      data->in_flight = data->n_ready;
      client_request (self, "PUT", data->path, body, TRUE, NULL, g_task_get_cancellable (task),
                      stream_upsert_sent_cb, task);
    }
  if (!data->reading && data->ready == NULL && !data->eof)
    {
      data->reading = TRUE;
      bp_qdrant_jsonl_reader_next_batch_async (data->reader, data->batch_size,
                                               g_task_get_cancellable (task),
                                               stream_upsert_batch_cb, task);
      return;
    }
  if (data->eof && !data->reading && !data->sending && data->ready == NULL)
    {
      guint64 *count = g_new (guint64, 1);

      *count = data->done;
      g_task_return_pointer (task, count, g_free);
      g_object_unref (task);
    }
}

static void
stream_upsert_note_error (StreamUpsertData *data,
                          GError           *error)
{
  if (data->error == NULL)
    data->error = error;
  else
    g_error_free (error);
}

static void
stream_upsert_sent_cb (GObject      *object,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  GTask *task = user_data;
  StreamUpsertData *data = g_task_get_task_data (task);
  g_autoptr(Response) response = NULL;
  g_autofree char *status = NULL;
  GError *error = NULL;

  data->sending = FALSE;
  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response != NULL)
    status = update_status (response, &error);
  if (status == NULL)
    stream_upsert_note_error (data, error);
  else
    data->done += data->in_flight;
  data->in_flight = 0;
  stream_upsert_step (task);
}

static void
stream_upsert_batch_cb (GObject      *object,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  GTask *task = user_data;
  StreamUpsertData *data = g_task_get_task_data (task);
  g_autoptr(GBytes) body = NULL;
  GError *error = NULL;
  guint n = 0;

  data->reading = FALSE;
  if (!bp_qdrant_jsonl_reader_next_batch_finish (data->reader, result, &body, &n, &error))
    stream_upsert_note_error (data, error);
  else if (body == NULL)
    data->eof = TRUE;
  else if (data->error == NULL)
    {
      data->ready = g_steal_pointer (&body);
      data->n_ready = n;
    }
  stream_upsert_step (task);
}

/**
 * bp_qdrant_client_upsert_from_stream_async:
 * @self: a client
 * @collection: the collection name
 * @input: JSON Lines, one point a line:
 *   `{"id":…,"vector":[…] or {"name":[…]},"payload":{…}}`
 * @batch_size: points per request (0 for 256; at most max-batch-points)
 * @wait: whether each request waits for the points to be applied
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Upserts every point of @input in batches, one request at a time and in
 * input order; the next batch is read while the previous one is being
 * sent, and no further (bounded memory: two batches; back-pressure on
 * @input). The first invalid line stops it with
 * %BP_ERROR_INVALID_ARGUMENT `line N: …` (batches before it were sent);
 * a failed request stops it once nothing is outstanding, so the count in
 * the message (`after N points were upserted`) is exact. The timeout
 * applies to each request.
 */
void
bp_qdrant_client_upsert_from_stream_async (BpQdrantClient      *self,
                                           const char          *collection,
                                           GInputStream        *input,
                                           guint                batch_size,
                                           gboolean             wait,
                                           GCancellable        *cancellable,
                                           GAsyncReadyCallback  callback,
                                           gpointer             user_data)
{
  g_autofree char *path = NULL;
  StreamUpsertData *data;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));
  g_return_if_fail (G_IS_INPUT_STREAM (input));

  task = op_task_new (self, bp_qdrant_client_upsert_from_stream_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  if (batch_size == 0)
    batch_size = MIN (DEFAULT_STREAM_BATCH, self->limits.max_batch_points);
  if (batch_size > self->limits.max_batch_points)
    return op_fail (task, g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                                       "batch-size: %u exceeds max-batch-points (%u)",
                                       batch_size, self->limits.max_batch_points));

  data = g_new0 (StreamUpsertData, 1);
  data->reader = bp_qdrant_jsonl_reader_new (input, &self->limits);
  path = collection_path (collection, "/points");
  data->path = g_strconcat (path, wait_query (wait), NULL);
  data->batch_size = batch_size;
  g_task_set_task_data (task, data, (GDestroyNotify) stream_upsert_data_free);
  stream_upsert_step (task);
}

/**
 * bp_qdrant_client_upsert_from_stream_finish:
 * @self: a client
 * @result: the result
 * @n_points: (out) (optional): how many points were upserted
 * @error: return location for a #GError
 *
 * Returns: %TRUE if every line was upserted
 */
gboolean
bp_qdrant_client_upsert_from_stream_finish (BpQdrantClient  *self,
                                            GAsyncResult    *result,
                                            guint64         *n_points,
                                            GError         **error)
{
  g_autofree guint64 *count = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  count = g_task_propagate_pointer (G_TASK (result), error);
  if (count == NULL)
    return FALSE;
  if (n_points != NULL)
    *n_points = *count;
  return TRUE;
}

static void
retrieve_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(Response) response = NULL;
  GError *error = NULL;
  GPtrArray *points;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  points = bp_qdrant_points_from_node (response->result, &error);
  if (points == NULL)
    return op_fail (task, error);
  g_task_return_pointer (task, points, (GDestroyNotify) g_ptr_array_unref);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_retrieve_async:
 * @self: a client
 * @collection: the collection name
 * @ids: (array zero-terminated=1): point ids
 * @with_payload: whether to return payloads
 * @with_vector: whether to return vectors
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `POST /collections/{collection}/points` with `{"ids":[…],…}`. Points
 * that do not exist are simply absent from the answer.
 */
void
bp_qdrant_client_retrieve_async (BpQdrantClient      *self,
                                 const char          *collection,
                                 const char * const  *ids,
                                 gboolean             with_payload,
                                 gboolean             with_vector,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GBytes) body = NULL;
  GString *text;
  GError *error = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_retrieve_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  text = g_string_new ("{\"ids\":");
  if (!bp_qdrant_ids_write (text, ids, "ids", &self->limits, &error))
    {
      g_string_free (text, TRUE);
      return op_fail (task, error);
    }
  g_string_append_printf (text, ",\"with_payload\":%s,\"with_vector\":%s}",
                          with_payload ? "true" : "false", with_vector ? "true" : "false");
  body = string_to_bytes (text);
  path = collection_path (collection, "/points");
  client_request (self, "POST", path, body, TRUE, bp_qdrant_id_paths_records, cancellable,
                  retrieve_cb, task);
}

/**
 * bp_qdrant_client_retrieve_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer container) (element-type BpQdrantPoint): the points found
 */
GPtrArray *
bp_qdrant_client_retrieve_finish (BpQdrantClient  *self,
                                  GAsyncResult    *result,
                                  GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * bp_qdrant_client_delete_points_async:
 * @self: a client
 * @collection: the collection name
 * @ids: (nullable) (array zero-terminated=1): the ids to delete, or %NULL
 * @filter_json: (nullable): a Filter selecting the points to delete, or %NULL
 * @wait: whether the server answers only once applied
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `POST /collections/{collection}/points/delete`; exactly one of @ids and
 * @filter_json.
 */
void
bp_qdrant_client_delete_points_async (BpQdrantClient      *self,
                                      const char          *collection,
                                      const char * const  *ids,
                                      const char          *filter_json,
                                      gboolean             wait,
                                      GCancellable        *cancellable,
                                      GAsyncReadyCallback  callback,
                                      gpointer             user_data)
{
  g_autofree char *path = NULL;
  g_autofree char *full = NULL;
  g_autoptr(GBytes) body = NULL;
  GString *text;
  GError *error = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_delete_points_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  if ((ids == NULL) == (filter_json == NULL))
    return op_fail (task, g_error_new_literal (BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                               "ids, filter: give exactly one of them"));
  if (ids != NULL)
    {
      text = g_string_new ("{\"points\":");
      if (!bp_qdrant_ids_write (text, ids, "ids", &self->limits, &error))
        {
          g_string_free (text, TRUE);
          return op_fail (task, error);
        }
    }
  else
    {
      if (!bp_qdrant_filter_validate (filter_json, self->limits.max_json_depth, "filter", &error))
        return op_fail (task, error);
      text = g_string_new ("{\"filter\":");
      g_string_append (text, filter_json);
    }
  g_string_append_c (text, '}');
  body = string_to_bytes (text);
  path = collection_path (collection, "/points/delete");
  full = g_strconcat (path, wait_query (wait), NULL);
  client_request (self, "POST", full, body, TRUE, NULL, cancellable, update_result_cb, task);
}

/**
 * bp_qdrant_client_delete_points_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the UpdateResult status
 */
char *
bp_qdrant_client_delete_points_finish (BpQdrantClient  *self,
                                       GAsyncResult    *result,
                                       GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
count_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(Response) response = NULL;
  GError *error = NULL;
  JsonNode *count;
  guint64 *value;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  count = result_member (response, "count", &error);
  if (count == NULL)
    return op_fail (task, error);
  if (json_node_get_value_type (count) != G_TYPE_INT64 || json_node_get_int (count) < 0)
    return op_fail (task, g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND,
                                               "malformed response: count is not a non-negative integer"));
  value = g_new (guint64, 1);
  *value = (guint64) json_node_get_int (count);
  g_task_return_pointer (task, value, g_free);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_count_async:
 * @self: a client
 * @collection: the collection name
 * @filter_json: (nullable): a Filter, or %NULL for all points
 * @exact: exact count (slower) rather than an estimate
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `POST /collections/{collection}/points/count`.
 */
void
bp_qdrant_client_count_async (BpQdrantClient      *self,
                              const char          *collection,
                              const char          *filter_json,
                              gboolean             exact,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GBytes) body = NULL;
  GString *text;
  GError *error = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_count_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  if (filter_json != NULL &&
      !bp_qdrant_filter_validate (filter_json, self->limits.max_json_depth, "filter", &error))
    return op_fail (task, error);
  text = g_string_new ("{");
  if (filter_json != NULL)
    g_string_append_printf (text, "\"filter\":%s,", filter_json);
  g_string_append_printf (text, "\"exact\":%s}", exact ? "true" : "false");
  body = string_to_bytes (text);
  path = collection_path (collection, "/points/count");
  client_request (self, "POST", path, body, TRUE, NULL, cancellable, count_cb, task);
}

/**
 * bp_qdrant_client_count_finish:
 * @self: a client
 * @result: the result
 * @count: (out) (optional): the number of points
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success
 */
gboolean
bp_qdrant_client_count_finish (BpQdrantClient  *self,
                               GAsyncResult    *result,
                               guint64         *count,
                               GError         **error)
{
  g_autofree guint64 *value = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  value = g_task_propagate_pointer (G_TASK (result), error);
  if (value == NULL)
    return FALSE;
  if (count != NULL)
    *count = *value;
  return TRUE;
}

/* ScrollToStream: request a page → write it all → request the next. */

typedef struct
{
  GOutputStream *output;       /* (owned) */
  char          *path;
  char          *filter_json;  /* (nullable) */
  char          *offset;       /* (nullable) normalized id of the next page */
  GBytes        *pending;      /* (owned) (nullable) lines being written */
  guint          page_size;
  gboolean       with_payload;
  gboolean       with_vector;
  guint64        written;
  guint          page_points;
} ScrollData;

static void
scroll_data_free (ScrollData *data)
{
  g_clear_object (&data->output);
  g_free (data->path);
  g_free (data->filter_json);
  g_free (data->offset);
  g_clear_pointer (&data->pending, g_bytes_unref);
  g_free (data);
}

static void scroll_page_cb (GObject      *object,
                            GAsyncResult *result,
                            gpointer      user_data);

static void
scroll_request_page (GTask *task)
{
  BpQdrantClient *self = g_task_get_source_object (task);
  ScrollData *data = g_task_get_task_data (task);
  g_autoptr(GBytes) body = NULL;
  GString *text = g_string_new (NULL);

  g_string_append_printf (text, "{\"limit\":%u,\"with_payload\":%s,\"with_vector\":%s",
                          data->page_size, data->with_payload ? "true" : "false",
                          data->with_vector ? "true" : "false");
  if (data->filter_json != NULL)
    g_string_append_printf (text, ",\"filter\":%s", data->filter_json);
  if (data->offset != NULL)
    {
      g_string_append (text, ",\"offset\":");
      bp_qdrant_json_append_id (text, data->offset);
    }
  g_string_append_c (text, '}');
  body = string_to_bytes (text);
  client_request (self, "POST", data->path, body, TRUE, bp_qdrant_id_paths_points,
                  g_task_get_cancellable (task), scroll_page_cb, task);
}

static void
scroll_written_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GTask *task = user_data;
  ScrollData *data = g_task_get_task_data (task);
  GError *error = NULL;

  g_clear_pointer (&data->pending, g_bytes_unref);
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, &error))
    return op_fail (task, error);
  data->written += data->page_points;
  data->page_points = 0;
  if (data->offset == NULL)
    {
      guint64 *count = g_new (guint64, 1);

      *count = data->written;
      g_task_return_pointer (task, count, g_free);
      g_object_unref (task);
      return;
    }
  scroll_request_page (task);
}

static void
scroll_page_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  ScrollData *data = g_task_get_task_data (task);
  g_autoptr(Response) response = NULL;
  g_autofree char *next = NULL;
  GError *error = NULL;
  JsonNode *points, *offset;
  JsonArray *array;
  GString *lines;
  guint i;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  points = result_member (response, "points", &error);
  if (points == NULL)
    return op_fail (task, error);
  if (!JSON_NODE_HOLDS_ARRAY (points))
    return op_fail (task, g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND,
                                               "malformed response: points is not an array"));
  offset = json_object_get_member (json_node_get_object (response->result), "next_page_offset");
  if (offset != NULL && !JSON_NODE_HOLDS_NULL (offset))
    {
      g_autoptr(GError) local = NULL;

      if (!bp_qdrant_json_node_dup_id (offset, &next, &local))
        return op_fail (task, g_error_new (BP_ERROR, BP_ERROR_BACKEND,
                                           "malformed response: next_page_offset: %s",
                                           local->message));
      if (g_strcmp0 (next, data->offset) == 0)
        return op_fail (task, g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND,
                                                   "malformed response: next_page_offset repeats the current offset"));
    }

  array = json_node_get_array (points);
  lines = g_string_new (NULL);
  for (i = 0; i < json_array_get_length (array); i++)
    if (!bp_qdrant_record_write_line (lines, json_array_get_element (array, i), &error))
      {
        g_string_free (lines, TRUE);
        return op_fail (task, error);
      }
  if (json_array_get_length (array) == 0 && next != NULL)
    {
      g_string_free (lines, TRUE);
      return op_fail (task, g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND,
                                                 "malformed response: an empty page with a next_page_offset"));
    }

  g_free (data->offset);
  data->offset = g_steal_pointer (&next);
  data->page_points = json_array_get_length (array);
  data->pending = string_to_bytes (lines);
  g_output_stream_write_all_async (data->output,
                                   g_bytes_get_data (data->pending, NULL),
                                   g_bytes_get_size (data->pending),
                                   G_PRIORITY_DEFAULT, g_task_get_cancellable (task),
                                   scroll_written_cb, task);
}

/**
 * bp_qdrant_client_scroll_to_stream_async:
 * @self: a client
 * @collection: the collection name
 * @filter_json: (nullable): a Filter, or %NULL for all points
 * @page_size: points per page (0 for 256; at most max-result-limit)
 * @with_payload: whether lines carry payloads
 * @with_vector: whether lines carry vectors
 * @output: where JSON Lines `{"id":…,"vector":…,"payload":…}` go
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Pages through `POST /collections/{collection}/points/scroll` following
 * `next_page_offset` until it is null, writing each page completely
 * before asking for the next (back-pressure from @output). @output is
 * neither flushed nor closed.
 */
void
bp_qdrant_client_scroll_to_stream_async (BpQdrantClient      *self,
                                         const char          *collection,
                                         const char          *filter_json,
                                         guint                page_size,
                                         gboolean             with_payload,
                                         gboolean             with_vector,
                                         GOutputStream       *output,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  ScrollData *data;
  GError *error = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));
  g_return_if_fail (G_IS_OUTPUT_STREAM (output));

  task = op_task_new (self, bp_qdrant_client_scroll_to_stream_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  if (page_size == 0)
    page_size = MIN (DEFAULT_SCROLL_PAGE, self->limits.max_result_limit);
  if (page_size > self->limits.max_result_limit)
    return op_fail (task, g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                                       "page-size: %u exceeds max-result-limit (%u)",
                                       page_size, self->limits.max_result_limit));
  if (filter_json != NULL &&
      !bp_qdrant_filter_validate (filter_json, self->limits.max_json_depth, "filter", &error))
    return op_fail (task, error);

  data = g_new0 (ScrollData, 1);
  data->output = g_object_ref (output);
  data->path = collection_path (collection, "/points/scroll");
  data->filter_json = g_strdup (filter_json);
  data->page_size = page_size;
  data->with_payload = with_payload;
  data->with_vector = with_vector;
  g_task_set_task_data (task, data, (GDestroyNotify) scroll_data_free);
  scroll_request_page (task);
}

/**
 * bp_qdrant_client_scroll_to_stream_finish:
 * @self: a client
 * @result: the result
 * @n_points: (out) (optional): how many points were written
 * @error: return location for a #GError
 *
 * Returns: %TRUE if every page was written
 */
gboolean
bp_qdrant_client_scroll_to_stream_finish (BpQdrantClient  *self,
                                          GAsyncResult    *result,
                                          guint64         *n_points,
                                          GError         **error)
{
  g_autofree guint64 *count = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  count = g_task_propagate_pointer (G_TASK (result), error);
  if (count == NULL)
    return FALSE;
  if (n_points != NULL)
    *n_points = *count;
  return TRUE;
}

/* --------------------------------------------------------------- query */

static void
query_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(Response) response = NULL;
  GError *error = NULL;
  JsonNode *points;
  GPtrArray *hits;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  points = result_member (response, "points", &error);
  if (points == NULL)
    return op_fail (task, error);
  hits = bp_qdrant_hits_from_node (points, &error);
  if (hits == NULL)
    return op_fail (task, error);
  g_task_return_pointer (task, hits, (GDestroyNotify) g_ptr_array_unref);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_query_async:
 * @self: a client
 * @collection: the collection name
 * @query: the query
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * Nearest neighbours through the universal `POST
 * /collections/{collection}/points/query` (never the removed
 * `/points/search`).
 */
void
bp_qdrant_client_query_async (BpQdrantClient      *self,
                              const char          *collection,
                              const BpQdrantQuery *query,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GBytes) body = NULL;
  GString *text;
  GError *error = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));
  g_return_if_fail (query != NULL);

  task = op_task_new (self, bp_qdrant_client_query_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  text = g_string_new (NULL);
  if (!bp_qdrant_query_write (text, query, "query", &self->limits, &error))
    {
      g_string_free (text, TRUE);
      return op_fail (task, error);
    }
  body = string_to_bytes (text);
  path = collection_path (collection, "/points/query");
  client_request (self, "POST", path, body, TRUE, bp_qdrant_id_paths_points, cancellable,
                  query_cb, task);
}

/**
 * bp_qdrant_client_query_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer container) (element-type BpQdrantHit): the hits, best first
 */
GPtrArray *
bp_qdrant_client_query_finish (BpQdrantClient  *self,
                               GAsyncResult    *result,
                               GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
query_batch_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  guint expected = GPOINTER_TO_UINT (g_task_get_task_data (task));
  g_autoptr(Response) response = NULL;
  g_autoptr(GPtrArray) lists = NULL;
  GError *error = NULL;
  JsonArray *array;
  guint i;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  if (response->result == NULL || !JSON_NODE_HOLDS_ARRAY (response->result) ||
      json_array_get_length (json_node_get_array (response->result)) != expected)
    return op_fail (task, g_error_new (BP_ERROR, BP_ERROR_BACKEND,
                                       "malformed response: expected %u result lists", expected));
  array = json_node_get_array (response->result);
  lists = g_ptr_array_new_full (expected, (GDestroyNotify) g_ptr_array_unref);
  for (i = 0; i < expected; i++)
    {
      JsonNode *e = json_array_get_element (array, i);
      JsonNode *points = JSON_NODE_HOLDS_OBJECT (e)
                           ? json_object_get_member (json_node_get_object (e), "points")
                           : NULL;
      GPtrArray *hits = bp_qdrant_hits_from_node (points, &error);

      if (hits == NULL)
        return op_fail (task, error);
      g_ptr_array_add (lists, hits);
    }
  g_task_return_pointer (task, g_steal_pointer (&lists), (GDestroyNotify) g_ptr_array_unref);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_query_batch_async:
 * @self: a client
 * @collection: the collection name
 * @queries: (element-type BpQdrantQuery): the queries (at most max-batch-queries)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `POST /collections/{collection}/points/query/batch`.
 */
void
bp_qdrant_client_query_batch_async (BpQdrantClient      *self,
                                    const char          *collection,
                                    GPtrArray           *queries,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autofree char *path = NULL;
  g_autoptr(GBytes) body = NULL;
  GString *text;
  GError *error = NULL;
  GTask *task;
  guint i;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));
  g_return_if_fail (queries != NULL);

  task = op_task_new (self, bp_qdrant_client_query_batch_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  if (queries->len == 0 || queries->len > self->limits.max_batch_queries)
    return op_fail (task, g_error_new (BP_ERROR,
                                       queries->len == 0 ? BP_ERROR_INVALID_ARGUMENT
                                                         : BP_ERROR_LIMIT_EXCEEDED,
                                       "queries: must hold 1 to %u queries (max-batch-queries)",
                                       self->limits.max_batch_queries));
  text = g_string_new ("{\"searches\":[");
  for (i = 0; i < queries->len; i++)
    {
      g_autofree char *field = g_strdup_printf ("queries[%u]", i);

      if (i > 0)
        g_string_append_c (text, ',');
      if (!bp_qdrant_query_write (text, g_ptr_array_index (queries, i), field, &self->limits,
                                  &error))
        {
          g_string_free (text, TRUE);
          return op_fail (task, error);
        }
    }
  g_string_append (text, "]}");
  g_task_set_task_data (task, GUINT_TO_POINTER (queries->len), NULL);
  body = string_to_bytes (text);
  path = collection_path (collection, "/points/query/batch");
  client_request (self, "POST", path, body, TRUE, bp_qdrant_id_paths_batch, cancellable,
                  query_batch_cb, task);
}

/**
 * bp_qdrant_client_query_batch_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer container) (element-type GPtrArray): one array of
 *   #BpQdrantHit per query, in order
 */
GPtrArray *
bp_qdrant_client_query_batch_finish (BpQdrantClient  *self,
                                     GAsyncResult    *result,
                                     GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ----------------------------------------------------------- snapshots */

static void
create_snapshot_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(Response) response = NULL;
  GError *error = NULL;
  JsonNode *name;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  if (response->http_status == 202 || g_strcmp0 (response->status, "accepted") == 0)
    {
      /* wait=false: the snapshot is being made; its name is not known. */
      g_task_return_pointer (task, g_strdup (""), g_free);
      g_object_unref (task);
      return;
    }
  name = result_member (response, "name", &error);
  if (name == NULL)
    return op_fail (task, error);
  if (json_node_get_value_type (name) != G_TYPE_STRING)
    return op_fail (task, g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND,
                                               "malformed response: snapshot name is not a string"));
  g_task_return_pointer (task, g_strdup (json_node_get_string (name)), g_free);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_create_snapshot_async:
 * @self: a client
 * @collection: the collection name
 * @wait: whether to wait for the snapshot (else the server answers 202)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `POST /collections/{collection}/snapshots?wait=…`.
 */
void
bp_qdrant_client_create_snapshot_async (BpQdrantClient      *self,
                                        const char          *collection,
                                        gboolean             wait,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  g_autofree char *path = NULL;
  g_autofree char *full = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_create_snapshot_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  path = collection_path (collection, "/snapshots");
  full = g_strconcat (path, wait_query (wait), NULL);
  client_request (self, "POST", full, NULL, TRUE, NULL, cancellable, create_snapshot_cb, task);
}

/**
 * bp_qdrant_client_create_snapshot_finish:
 * @self: a client
 * @result: the result
 * @name: (out) (transfer full) (optional) (nullable): the snapshot's name;
 *   %NULL when the server accepted the request without waiting (202)
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success
 */
gboolean
bp_qdrant_client_create_snapshot_finish (BpQdrantClient  *self,
                                         GAsyncResult    *result,
                                         char           **name,
                                         GError         **error)
{
  g_autofree char *value = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  value = g_task_propagate_pointer (G_TASK (result), error);
  if (value == NULL)
    return FALSE;
  if (name != NULL)
    *name = value[0] != '\0' ? g_steal_pointer (&value) : NULL;
  return TRUE;
}

static void
list_snapshots_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(Response) response = NULL;
  g_autoptr(GPtrArray) names = NULL;
  GError *error = NULL;
  JsonArray *array;
  guint i;

  response = client_request_finish (BP_QDRANT_CLIENT (object), result, &error);
  if (response == NULL)
    return op_fail (task, error);
  if (response->result == NULL || !JSON_NODE_HOLDS_ARRAY (response->result))
    return op_fail (task, g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND,
                                               "malformed response: result is not an array"));
  array = json_node_get_array (response->result);
  names = g_ptr_array_new_with_free_func (g_free);
  for (i = 0; i < json_array_get_length (array); i++)
    {
      JsonNode *e = json_array_get_element (array, i);
      JsonNode *name = JSON_NODE_HOLDS_OBJECT (e)
                         ? json_object_get_member (json_node_get_object (e), "name")
                         : NULL;

      if (name == NULL || json_node_get_value_type (name) != G_TYPE_STRING)
        return op_fail (task, g_error_new (BP_ERROR, BP_ERROR_BACKEND,
                                           "malformed response: snapshot %u has no name", i));
      g_ptr_array_add (names, g_strdup (json_node_get_string (name)));
    }
  g_ptr_array_add (names, NULL);
  g_task_return_pointer (task, g_ptr_array_free (g_steal_pointer (&names), FALSE),
                         (GDestroyNotify) g_strfreev);
  g_object_unref (task);
}

/**
 * bp_qdrant_client_list_snapshots_async:
 * @self: a client
 * @collection: the collection name
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `GET /collections/{collection}/snapshots`.
 */
void
bp_qdrant_client_list_snapshots_async (BpQdrantClient      *self,
                                       const char          *collection,
                                       GCancellable        *cancellable,
                                       GAsyncReadyCallback  callback,
                                       gpointer             user_data)
{
  g_autofree char *path = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_list_snapshots_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  path = collection_path (collection, "/snapshots");
  client_request (self, "GET", path, NULL, TRUE, NULL, cancellable, list_snapshots_cb, task);
}

/**
 * bp_qdrant_client_list_snapshots_finish:
 * @self: a client
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (array zero-terminated=1): the snapshot names
 */
char **
bp_qdrant_client_list_snapshots_finish (BpQdrantClient  *self,
                                        GAsyncResult    *result,
                                        GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * bp_qdrant_client_delete_snapshot_async:
 * @self: a client
 * @collection: the collection name
 * @snapshot: the snapshot name
 * @wait: whether to wait for the deletion (else the server may answer 202)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when done
 * @user_data: data for @callback
 *
 * `DELETE /collections/{collection}/snapshots/{snapshot}?wait=…`.
 */
void
bp_qdrant_client_delete_snapshot_async (BpQdrantClient      *self,
                                        const char          *collection,
                                        const char          *snapshot,
                                        gboolean             wait,
                                        GCancellable        *cancellable,
                                        GAsyncReadyCallback  callback,
                                        gpointer             user_data)
{
  g_autofree char *path = NULL;
  g_autofree char *escaped = NULL;
  GError *error = NULL;
  GTask *task;

  g_return_if_fail (BP_IS_QDRANT_CLIENT (self));

  task = op_task_new (self, bp_qdrant_client_delete_snapshot_async, collection, cancellable,
                      callback, user_data);
  if (task == NULL)
    return;
  if (!bp_qdrant_name_validate (snapshot, "snapshot", &error))
    return op_fail (task, error);
  boolean_op_set (task, BP_ERROR_NOT_FOUND,
                  g_strdup_printf ("snapshot '%s' does not exist", snapshot));
  escaped = g_uri_escape_string (snapshot, NULL, FALSE);
  {
    g_autofree char *suffix = g_strconcat ("/snapshots/", escaped, wait_query (wait), NULL);

    path = collection_path (collection, suffix);
  }
  client_request (self, "DELETE", path, NULL, TRUE, NULL, cancellable, boolean_result_cb, task);
}

gboolean
bp_qdrant_client_delete_snapshot_finish (BpQdrantClient  *self,
                                         GAsyncResult    *result,
                                         GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
