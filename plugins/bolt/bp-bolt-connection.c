/* bp-bolt-connection.c: one Bolt connection over GIO
 *
 * A from-scratch Bolt client (neo4j/docs-bolt: bolt/handshake.adoc,
 * bolt/message.adoc, bolt/server-state.adoc) on GSocketClient, optionally
 * TLS. Everything is asynchronous and runs in the main context that was the
 * thread-default when bp_bolt_connection_new() was called; no call blocks.
 *
 * Life of a connection:
 * 1. open: TCP connect (+ TLS), the handshake (magic 60 60 B0 17 and four
 *    proposals: manifest v1, 5.8..5.0, 4.4..4.3), the server's 4-byte
 *    version or its manifest (we then answer with our choice), then HELLO
 *    and, from 5.1 on, LOGON; the whole of it under one open timeout.
 * 2. requests: every request message is queued on the wire at once
 *    (pipelining: RUN goes out together with its first PULL) and a
 *    Request is pushed on a FIFO; each summary (SUCCESS, FAILURE, IGNORED)
 *    completes the head of the FIFO, RECORDs go to the head PULL's stream.
 * 3. failure: after a FAILURE the server ignores everything until RESET;
 *    the connection queues a RESET itself at once, so it is READY again
 *    when the caller's next request arrives. Inside an explicit
 *    transaction the transaction is then marked failed: further RUNs and
 *    COMMIT are refused and ROLLBACK completes without a message.
 * 4. defunct: any I/O error, EOF, protocol violation, receive timeout
 *    (hint connection.recv_timeout_seconds) or RESET FAILURE makes the
 *    connection DEFUNCT for good: all queued requests fail with a
 *    "Bolt connection lost" BP_ERROR_UNAVAILABLE error, an outstanding
 *    COMMIT with "Bolt commit outcome unknown". A pool drops such a
 *    connection (bp_bolt_connection_is_defunct()).
 *
 * A read is always pending while the connection is open, so an idle
 * connection closed by the server turns DEFUNCT at once.
 *
 * Credentials are written only into the outgoing buffer, which is wiped
 * after the write, and never appear in errors or debug output.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <string.h>
#include <sys/utsname.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "bp-bolt-chunker.h"
#include "bp-bolt-private.h"
#include "bp-bolt-values.h"

#define READ_BUFFER_SIZE       (64 * 1024)
#define DEFAULT_OPEN_TIMEOUT   30000
#define DEFAULT_FETCH_SIZE     1000
#define MAX_MANIFEST_ENTRIES   256

/* Message tags */
#define MSG_HELLO     0x01
#define MSG_GOODBYE   0x02
#define MSG_RESET     0x0F
#define MSG_RUN       0x10
#define MSG_BEGIN     0x11
#define MSG_COMMIT    0x12
#define MSG_ROLLBACK  0x13
#define MSG_DISCARD   0x2F
#define MSG_PULL      0x3F
#define MSG_ROUTE     0x66
#define MSG_LOGON     0x6A
#define MSG_SUCCESS   0x70
#define MSG_RECORD    0x71
#define MSG_IGNORED   0x7E
#define MSG_FAILURE   0x7F

typedef enum
{
  REQ_HELLO,
  REQ_LOGON,
  REQ_RUN,
  REQ_PULL,
  REQ_DISCARD,
  REQ_BEGIN,
  REQ_COMMIT,
  REQ_ROLLBACK,
  REQ_RESET,
  REQ_ROUTE,
} RequestKind;

static const char * const request_names[] = {
  "HELLO", "LOGON", "RUN", "PULL", "DISCARD", "BEGIN", "COMMIT", "ROLLBACK", "RESET", "ROUTE",
};

typedef struct
{
  RequestKind   kind;
  GTask        *task;           /* (owned) (nullable) gone once completed or cancelled */
  BpBoltStream *stream;         /* (owned) (nullable) RUN, PULL, DISCARD */
  gboolean      in_tx;
  GSource      *cancel_source;  /* (owned) (nullable) */
} Request;

enum
{
  PROP_0,
  PROP_STATE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

struct _BpBoltConnection
{
  GObject             parent_instance;

  /* configuration */
  char               *host;
  guint16             port;
  char               *address;         /* host:port */
  BpBoltTlsMode       tls_mode;
  GTlsDatabase       *tls_database;    /* (owned) (nullable) */
  BpBoltLimits        limits;
  GVariant           *routing;         /* (owned) (nullable) a{ss} */
  char               *user_agent;
  guint               max_version;
  BpClock            *clock;           /* (owned) */
  guint               open_timeout_ms;
  GMainContext       *context;         /* (owned) */

  /* I/O */
  GIOStream          *iostream;        /* (owned) (nullable) */
  GInputStream       *input;           /* (unowned) */
  GOutputStream      *output;          /* (unowned) */
  GCancellable       *read_cancellable;/* (owned) */
  GByteArray         *read_buffer;     /* (owned) shared with the pending read */
  gboolean            reading;
  GByteArray         *out_pending;     /* (owned) bytes not yet handed to a write */
  gboolean            out_sensitive;   /* out_pending holds credentials */
  gboolean            writing;
  gboolean            closing;         /* GOODBYE queued, close when written */
  gboolean            close_started;
  gboolean            closed;
  GTask              *close_task;      /* (owned) (nullable) */
  BpBoltChunkReader  *chunks;          /* (owned) */

  /* handshake */
  gboolean            handshaking;
  GByteArray         *handshake_buf;   /* (owned) */
  gboolean            used_manifest;
  guint               version;

  /* session */
  BpBoltState         state;
  char               *server_agent;
  char               *connection_id;
  GVariant           *hints;           /* (owned) (nullable) */
  gint64              recv_timeout_us;
  GQueue              requests;        /* (element-type Request) (owned) */
  gboolean            reset_queued;    /* an automatic RESET is in the queue */
  gboolean            tx_open;
  gboolean            tx_failed;
  BpBoltStream       *autocommit_stream; /* (unowned) (nullable) */
  GPtrArray          *tx_streams;      /* (element-type BpBoltStream) (unowned) */
  GTask              *pending_commit;  /* (owned) (nullable) waits for PULLs */
  GVariant           *last_failure;    /* (owned) (nullable) */
  GError             *last_error;      /* (owned) (nullable) */
  GError             *defunct_error;   /* (owned) (nullable) */
  gint64              created_time;
  gint64              last_used_time;
  gint64              last_rx_time;
  GSource            *recv_timer;      /* (owned) (nullable) */
  GPtrArray          *idle_waiters;    /* (element-type GTask) (owned) */

  /* open */
  GTask              *open_task;       /* (owned) (nullable) */
  BpBoltAuth         *auth;            /* (owned) (nullable) while opening */
  GCancellable       *open_cancellable;/* (owned) (nullable) */
  GSource            *open_timer;      /* (owned) (nullable) */
  GSource            *open_cancel_source; /* (owned) (nullable) */
  gboolean            open_timed_out;
};

G_DEFINE_FINAL_TYPE (BpBoltConnection, bp_bolt_connection, G_TYPE_OBJECT)

static void set_defunct       (BpBoltConnection *self,
                               GError           *reason,
                               gboolean          graceful);
static void flush_output      (BpBoltConnection *self);
static void start_reading     (BpBoltConnection *self);
static void update_recv_timer (BpBoltConnection *self);
static void ensure_reset      (BpBoltConnection *self);
static void try_send_commit   (BpBoltConnection *self);

/* ------------------------------------------------------------------ */
/* Object                                                              */

static void
request_free (Request *request)
{
  if (request->cancel_source != NULL)
    {
      g_source_destroy (request->cancel_source);
      g_source_unref (request->cancel_source);
    }
  g_clear_object (&request->task);
  g_clear_object (&request->stream);
  g_free (request);
}

/* Completes every bp_bolt_connection_wait_idle_async() once nothing is in
 * flight (or the connection is gone). */
static void
notify_idle (BpBoltConnection *self)
{
  g_autoptr(GPtrArray) waiters = NULL;

  if (self->idle_waiters->len == 0 ||
      (!g_queue_is_empty (&self->requests) && self->state != BP_BOLT_STATE_DEFUNCT))
    return;
  waiters = g_steal_pointer (&self->idle_waiters);
  self->idle_waiters = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < waiters->len; i++)
    g_task_return_boolean (g_ptr_array_index (waiters, i), self->state != BP_BOLT_STATE_DEFUNCT);
}

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
bp_bolt_connection_dispose (GObject *object)
{
  BpBoltConnection *self = BP_BOLT_CONNECTION (object);

  /* Tasks hold a reference on us, so nothing is pending here. */
  g_cancellable_cancel (self->read_cancellable);
  clear_source (&self->recv_timer);
  clear_source (&self->open_timer);
  clear_source (&self->open_cancel_source);
  /* A read or write still outstanding holds the streams; they close the
   * socket when they are finalized. */
  if (self->iostream != NULL && !self->close_started && !self->reading && !self->writing)
    g_io_stream_close_async (self->iostream, G_PRIORITY_DEFAULT, NULL, NULL, NULL);
  g_clear_object (&self->iostream);
  g_queue_clear_full (&self->requests, (GDestroyNotify) request_free);

  G_OBJECT_CLASS (bp_bolt_connection_parent_class)->dispose (object);
}

static void
bp_bolt_connection_finalize (GObject *object)
{
  BpBoltConnection *self = BP_BOLT_CONNECTION (object);

  g_free (self->host);
  g_free (self->address);
  g_clear_object (&self->tls_database);
  g_clear_pointer (&self->routing, g_variant_unref);
  g_free (self->user_agent);
  g_clear_object (&self->clock);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_object (&self->read_cancellable);
  g_clear_pointer (&self->read_buffer, g_byte_array_unref);
  if (self->out_pending != NULL && self->out_sensitive)
    memset (self->out_pending->data, 0, self->out_pending->len);
  g_clear_pointer (&self->out_pending, g_byte_array_unref);
  g_clear_pointer (&self->chunks, bp_bolt_chunk_reader_free);
  g_clear_pointer (&self->handshake_buf, g_byte_array_unref);
  g_free (self->server_agent);
  g_free (self->connection_id);
  g_clear_pointer (&self->hints, g_variant_unref);
  g_clear_pointer (&self->tx_streams, g_ptr_array_unref);
  g_clear_pointer (&self->idle_waiters, g_ptr_array_unref);
  g_clear_pointer (&self->last_failure, g_variant_unref);
  g_clear_error (&self->last_error);
  g_clear_error (&self->defunct_error);
  g_clear_pointer (&self->auth, bp_bolt_auth_free);
  g_clear_object (&self->open_cancellable);

  G_OBJECT_CLASS (bp_bolt_connection_parent_class)->finalize (object);
}

static void
bp_bolt_connection_get_property (GObject    *object,
                                 guint       prop_id,
                                 GValue     *value,
                                 GParamSpec *pspec)
{
  BpBoltConnection *self = BP_BOLT_CONNECTION (object);

  switch (prop_id)
    {
    case PROP_STATE:
      g_value_set_int (value, self->state);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_bolt_connection_class_init (BpBoltConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bp_bolt_connection_dispose;
  object_class->finalize = bp_bolt_connection_finalize;
  object_class->get_property = bp_bolt_connection_get_property;

  /**
   * BpBoltConnection:state:
   *
   * The #BpBoltState, as an int. Notified on every change.
   */
  properties[PROP_STATE] =
    g_param_spec_int ("state", NULL, NULL,
                      BP_BOLT_STATE_DISCONNECTED, BP_BOLT_STATE_DEFUNCT, BP_BOLT_STATE_DISCONNECTED,
                      G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
bp_bolt_connection_init (BpBoltConnection *self)
{
  self->read_cancellable = g_cancellable_new ();
  self->read_buffer = g_byte_array_sized_new (READ_BUFFER_SIZE);
  g_byte_array_set_size (self->read_buffer, READ_BUFFER_SIZE);
  self->out_pending = g_byte_array_new ();
  self->handshake_buf = g_byte_array_new ();
  self->tx_streams = g_ptr_array_new ();
  self->idle_waiters = g_ptr_array_new_with_free_func (g_object_unref);
  g_queue_init (&self->requests);
  bp_bolt_limits_init_default (&self->limits);
  self->max_version = BP_BOLT_VERSION (5, 8);
  self->open_timeout_ms = DEFAULT_OPEN_TIMEOUT;
  self->user_agent = g_strdup ("backplane/" PACKAGE_VERSION);
  self->clock = g_object_ref (bp_clock_get_default ());
  self->context = g_main_context_ref_thread_default ();
  self->state = BP_BOLT_STATE_DISCONNECTED;
}

/**
 * bp_bolt_connection_new:
 * @host: the server host name or address
 * @port: the TCP port (7687 by default for Bolt)
 * @tls_mode: whether and how to use TLS
 *
 * Creates an unopened connection. Configure it with the setters, then call
 * bp_bolt_connection_open_async(). The connection belongs to the
 * thread-default main context at this call.
 *
 * Returns: (transfer full): a new #BpBoltConnection
 */
BpBoltConnection *
bp_bolt_connection_new (const char    *host,
                        guint16        port,
                        BpBoltTlsMode  tls_mode)
{
  BpBoltConnection *self;

  g_return_val_if_fail (host != NULL, NULL);

  self = g_object_new (BP_TYPE_BOLT_CONNECTION, NULL);
  self->host = g_strdup (host);
  self->port = port;
  self->tls_mode = tls_mode;
  if (strchr (host, ':') != NULL)
    self->address = g_strdup_printf ("[%s]:%u", host, port);
  else
    self->address = g_strdup_printf ("%s:%u", host, port);
  self->created_time = bp_clock_get_time (self->clock);
  self->last_used_time = self->created_time;
  return self;
}

/**
 * bp_bolt_connection_set_limits:
 * @self: a #BpBoltConnection
 * @limits: bounds for every message and value received or sent
 */
void
bp_bolt_connection_set_limits (BpBoltConnection   *self,
                               const BpBoltLimits *limits)
{
  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));
  g_return_if_fail (limits != NULL);
  g_return_if_fail (self->state == BP_BOLT_STATE_DISCONNECTED);

  self->limits = *limits;
}

/**
 * bp_bolt_connection_set_routing_context:
 * @self: a #BpBoltConnection
 * @routing: (nullable): the routing context `a{ss}` (the `neo4j://` URI's
 *   query plus `address`), or %NULL for a direct (`bolt://`) connection
 *
 * With a routing context HELLO asks the server to route (Bolt 4.1+), and
 * ROUTE sends it by default.
 */
void
bp_bolt_connection_set_routing_context (BpBoltConnection *self,
                                        GVariant         *routing)
{
  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));
  g_return_if_fail (routing == NULL || g_variant_is_of_type (routing, G_VARIANT_TYPE ("a{ss}")));

  g_clear_pointer (&self->routing, g_variant_unref);
  if (routing != NULL)
    self->routing = g_variant_ref_sink (routing);
}

/**
 * bp_bolt_connection_set_user_agent:
 * @self: a #BpBoltConnection
 * @user_agent: "Name/Version", default "backplane/<version>"
 */
void
bp_bolt_connection_set_user_agent (BpBoltConnection *self,
                                   const char       *user_agent)
{
  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));
  g_return_if_fail (user_agent != NULL);

  g_free (self->user_agent);
  self->user_agent = g_strdup (user_agent);
}

/**
 * bp_bolt_connection_set_max_version:
 * @self: a #BpBoltConnection
 * @version: the highest version to offer, e.g. `BP_BOLT_VERSION (4, 4)`
 *
 * The client supports 4.3, 4.4 and 5.0–5.8; by default it offers all.
 */
void
bp_bolt_connection_set_max_version (BpBoltConnection *self,
                                    guint             version)
{
  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));
  g_return_if_fail (version >= BP_BOLT_VERSION (4, 3));

  self->max_version = MIN (version, BP_BOLT_VERSION (5, 8));
}

/**
 * bp_bolt_connection_set_tls_database:
 * @self: a #BpBoltConnection
 * @database: (nullable): the trust database for %BP_BOLT_TLS_VERIFY, or
 *   %NULL for the system one
 */
void
bp_bolt_connection_set_tls_database (BpBoltConnection *self,
                                     GTlsDatabase     *database)
{
  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));

  g_set_object (&self->tls_database, database);
}

/**
 * bp_bolt_connection_set_clock:
 * @self: a #BpBoltConnection
 * @clock: the clock for timeouts and timestamps
 */
void
bp_bolt_connection_set_clock (BpBoltConnection *self,
                              BpClock          *clock)
{
  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));
  g_return_if_fail (BP_IS_CLOCK (clock));

  g_set_object (&self->clock, clock);
}

/**
 * bp_bolt_connection_set_open_timeout:
 * @self: a #BpBoltConnection
 * @timeout_ms: how long connect, TLS, handshake and authentication may take
 *   together (default 30 s); 0 for no limit
 */
void
bp_bolt_connection_set_open_timeout (BpBoltConnection *self,
                                     guint             timeout_ms)
{
  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));

  self->open_timeout_ms = timeout_ms;
}

/* ------------------------------------------------------------------ */
/* Getters                                                             */

const char *
bp_bolt_connection_get_address (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), NULL);
  return self->address;
}

/**
 * bp_bolt_connection_get_protocol_version:
 * @self: a #BpBoltConnection
 *
 * Returns: the agreed version (see BP_BOLT_VERSION()), 0 before the handshake
 */
guint
bp_bolt_connection_get_protocol_version (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), 0);
  return self->version;
}

/**
 * bp_bolt_connection_get_used_manifest:
 * @self: a #BpBoltConnection
 *
 * Returns: %TRUE if the version was chosen from a manifest v1 reply
 */
gboolean
bp_bolt_connection_get_used_manifest (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), FALSE);
  return self->used_manifest;
}

const char *
bp_bolt_connection_get_server_agent (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), NULL);
  return self->server_agent;
}

const char *
bp_bolt_connection_get_connection_id (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), NULL);
  return self->connection_id;
}

/**
 * bp_bolt_connection_get_hints:
 * @self: a #BpBoltConnection
 *
 * Returns: (transfer none) (nullable): HELLO SUCCESS `hints`
 */
GVariant *
bp_bolt_connection_get_hints (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), NULL);
  return self->hints;
}

/**
 * bp_bolt_connection_get_recv_timeout:
 * @self: a #BpBoltConnection
 *
 * Returns: the receive timeout from the `connection.recv_timeout_seconds`
 *   hint in microseconds, 0 if none
 */
gint64
bp_bolt_connection_get_recv_timeout (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), 0);
  return self->recv_timeout_us;
}

BpBoltState
bp_bolt_connection_get_state (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), BP_BOLT_STATE_DEFUNCT);
  return self->state;
}

const char *
bp_bolt_state_to_string (BpBoltState state)
{
  switch (state)
    {
    case BP_BOLT_STATE_DISCONNECTED:
      return "disconnected";
    case BP_BOLT_STATE_CONNECTING:
      return "connecting";
    case BP_BOLT_STATE_READY:
      return "ready";
    case BP_BOLT_STATE_STREAMING:
      return "streaming";
    case BP_BOLT_STATE_TX_READY:
      return "tx-ready";
    case BP_BOLT_STATE_TX_STREAMING:
      return "tx-streaming";
    case BP_BOLT_STATE_FAILED:
      return "failed";
    case BP_BOLT_STATE_DEFUNCT:
      return "defunct";
    default:
      return "unknown";
    }
}

/**
 * bp_bolt_connection_is_defunct:
 * @self: a #BpBoltConnection
 *
 * Returns: %TRUE if the connection is closed or broken and must be dropped
 */
gboolean
bp_bolt_connection_is_defunct (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), TRUE);
  return self->state == BP_BOLT_STATE_DEFUNCT;
}

/**
 * bp_bolt_connection_is_idle:
 * @self: a #BpBoltConnection
 *
 * Returns: %TRUE if the connection is READY with nothing in flight, no open
 *   result and no transaction: fit to go back to a pool
 */
gboolean
bp_bolt_connection_is_idle (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), FALSE);
  return self->state == BP_BOLT_STATE_READY && g_queue_is_empty (&self->requests) &&
         !self->tx_open && self->autocommit_stream == NULL && self->tx_streams->len == 0 &&
         !self->closing;
}

gboolean
bp_bolt_connection_in_transaction (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), FALSE);
  return self->tx_open;
}

gint64
bp_bolt_connection_get_created_time (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), 0);
  return self->created_time;
}

gint64
bp_bolt_connection_get_last_used_time (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), 0);
  return self->last_used_time;
}

/**
 * bp_bolt_connection_dup_last_failure:
 * @self: a #BpBoltConnection
 *
 * Returns: (transfer full) (nullable): the metadata of the last FAILURE
 *   (code, message, GQL fields), for diagnostics
 */
GVariant *
bp_bolt_connection_dup_last_failure (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), NULL);
  return self->last_failure != NULL ? g_variant_ref (self->last_failure) : NULL;
}

/**
 * bp_bolt_connection_get_defunct_error:
 * @self: a #BpBoltConnection
 *
 * Returns: (transfer none) (nullable): why the connection became defunct
 */
const GError *
bp_bolt_connection_get_defunct_error (BpBoltConnection *self)
{
  g_return_val_if_fail (BP_IS_BOLT_CONNECTION (self), NULL);
  return self->defunct_error;
}

static void
set_state (BpBoltConnection *self,
           BpBoltState       state)
{
  if (self->state == state)
    return;
  g_debug ("Bolt %s: %s -> %s", self->address,
           bp_bolt_state_to_string (self->state), bp_bolt_state_to_string (state));
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

/* ------------------------------------------------------------------ */
/* Output                                                              */

typedef struct
{
  GWeakRef    connection;
  GByteArray *data;       /* (owned) */
  gboolean    sensitive;
} WriteOp;

static void
write_op_free (WriteOp *op)
{
  if (op->sensitive)
    memset (op->data->data, 0, op->data->len);
  g_byte_array_unref (op->data);
  g_weak_ref_clear (&op->connection);
  g_free (op);
}

/* Appends one encoded message, chunked. */
static void
queue_message (BpBoltConnection *self,
               GByteArray       *message,
               gboolean          sensitive)
{
  bp_bolt_chunk_write (self->out_pending, message->data, message->len);
  if (sensitive)
    {
      memset (message->data, 0, message->len);
      self->out_sensitive = TRUE;
    }
}

static void
close_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(BpBoltConnection) self = user_data;
  g_autoptr(GTask) task = g_steal_pointer (&self->close_task);

  g_io_stream_close_finish (G_IO_STREAM (source), result, NULL);
  self->closed = TRUE;
  if (task != NULL)
    g_task_return_boolean (task, TRUE);
}

/* Once DEFUNCT: closes the socket when no read or write is outstanding
 * (after a graceful close, once GOODBYE is written). */
static void
maybe_close_iostream (BpBoltConnection *self)
{
  if (self->state != BP_BOLT_STATE_DEFUNCT || self->reading || self->writing)
    return;
  if (self->closing && self->out_pending->len > 0)
    {
      flush_output (self);
      return;
    }
  if (self->iostream != NULL && !self->close_started)
    {
      self->close_started = TRUE;
      g_io_stream_close_async (self->iostream, G_PRIORITY_DEFAULT, NULL, close_cb, g_object_ref (self));
      return;
    }
  if ((self->iostream == NULL || self->closed) && self->close_task != NULL)
    {
      g_autoptr(GTask) task = g_steal_pointer (&self->close_task);
      g_task_return_boolean (task, TRUE);
    }
}

static void
write_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  WriteOp *op = user_data;
  g_autoptr(BpBoltConnection) self = g_weak_ref_get (&op->connection);
  g_autoptr(GError) error = NULL;

  g_output_stream_write_all_finish (G_OUTPUT_STREAM (source), result, NULL, &error);
  write_op_free (op);
  if (self == NULL)
    return;
  self->writing = FALSE;
  if (error != NULL)
    {
      if (self->state == BP_BOLT_STATE_DEFUNCT)
        {
          g_byte_array_set_size (self->out_pending, 0);
          maybe_close_iostream (self);
        }
      else
        set_defunct (self, g_steal_pointer (&error), FALSE);
      return;
    }
  flush_output (self);
}

static void
flush_output (BpBoltConnection *self)
{
  WriteOp *op;

  if (self->writing || self->output == NULL)
    return;
  if (self->state == BP_BOLT_STATE_DEFUNCT && (!self->closing || self->out_pending->len == 0))
    {
      maybe_close_iostream (self);
      return;
    }
  if (self->out_pending->len == 0)
    return;

  op = g_new0 (WriteOp, 1);
  g_weak_ref_init (&op->connection, self);
  op->data = g_steal_pointer (&self->out_pending);
  op->sensitive = self->out_sensitive;
  self->out_pending = g_byte_array_new ();
  self->out_sensitive = FALSE;
  self->writing = TRUE;
  g_output_stream_write_all_async (self->output, op->data->data, op->data->len,
                                   G_PRIORITY_DEFAULT, NULL, write_cb, op);
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */

static void
push_request (BpBoltConnection *self,
              RequestKind       kind,
              GTask            *task,
              BpBoltStream     *stream,
              gboolean          in_tx)
{
  Request *request = g_new0 (Request, 1);

  request->kind = kind;
  request->task = task != NULL ? g_object_ref (task) : NULL;
  request->stream = stream != NULL ? g_object_ref (stream) : NULL;
  request->in_tx = in_tx;
  if (g_queue_is_empty (&self->requests))
    self->last_rx_time = bp_clock_get_time (self->clock);
  g_queue_push_tail (&self->requests, request);
  self->last_used_time = bp_clock_get_time (self->clock);
  update_recv_timer (self);
}

static GError *
copy_defunct_error (BpBoltConnection *self)
{
  if (self->defunct_error != NULL)
    return g_error_copy (self->defunct_error);
  return g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, BP_BOLT_CONNECTION_LOST_PREFIX ": the connection to %s is closed",
                      self->address);
}

static gboolean
check_usable (BpBoltConnection *self,
              GError          **error)
{
  if (self->state == BP_BOLT_STATE_DEFUNCT || self->closing)
    {
      g_propagate_error (error, copy_defunct_error (self));
      return FALSE;
    }
  if (self->state == BP_BOLT_STATE_DISCONNECTED || self->state == BP_BOLT_STATE_CONNECTING)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE,
                   _("The Bolt connection to %s is not open"), self->address);
      return FALSE;
    }
  return TRUE;
}

static GByteArray *
new_message (guint  n_fields,
             guint8 tag)
{
  GByteArray *msg = g_byte_array_new ();

  bp_bolt_pack_struct_header (msg, n_fields, tag);
  return msg;
}

static gboolean
check_message_size (BpBoltConnection *self,
                    GByteArray       *msg,
                    GError          **error)
{
  if (msg->len > self->limits.max_message_size)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   _("Bolt request of %u bytes exceeds the limit of %lu"),
                   msg->len, (gulong) self->limits.max_message_size);
      return FALSE;
    }
  return TRUE;
}

static gboolean
option_type_error (const char *key,
                   GVariant   *value,
                   GError    **error)
{
  g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
               _("Bolt option '%s' has the wrong type '%s'"), key, g_variant_get_type_string (value));
  return FALSE;
}

/* One RUN/BEGIN option; returns FALSE on error, adds 1 to @n when written. */
static gboolean
pack_tx_option (BpBoltConnection *self,
                GByteArray       *body,
                const char       *key,
                GVariant         *value,
                guint            *n,
                GError          **error)
{
  if (strcmp (key, "db") == 0 || strcmp (key, "imp_user") == 0)
    {
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
        return option_type_error (key, value, error);
      if (strcmp (key, "imp_user") == 0 && self->version < BP_BOLT_VERSION (4, 4))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       _("imp_user needs Bolt 4.4 or later, the connection uses %u.%u"),
                       BP_BOLT_VERSION_MAJOR (self->version), BP_BOLT_VERSION_MINOR (self->version));
          return FALSE;
        }
      if (*g_variant_get_string (value, NULL) == '\0')
        return TRUE;
      bp_bolt_pack_string (body, key, -1);
      bp_bolt_pack_string (body, g_variant_get_string (value, NULL), -1);
      (*n)++;
      return TRUE;
    }
  if (strcmp (key, "mode") == 0)
    {
      const char *mode;

      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING))
        return option_type_error (key, value, error);
      mode = g_variant_get_string (value, NULL);
      if (strcmp (mode, "r") != 0 && strcmp (mode, "w") != 0)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       _("mode must be \"r\" or \"w\", not \"%s\""), mode);
          return FALSE;
        }
      /* "w" is the default and is not sent */
      if (strcmp (mode, "r") == 0)
        {
          bp_bolt_pack_string (body, "mode", -1);
          bp_bolt_pack_string (body, "r", -1);
          (*n)++;
        }
      return TRUE;
    }
  if (strcmp (key, "bookmarks") == 0)
    {
      gsize len;
      g_autofree const char **bookmarks = NULL;

      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_STRING_ARRAY))
        return option_type_error (key, value, error);
      bookmarks = g_variant_get_strv (value, &len);
      if (len == 0)
        return TRUE;
      if (len > self->limits.max_collection_size)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED, _("too many bookmarks (%lu)"), (gulong) len);
          return FALSE;
        }
      bp_bolt_pack_string (body, "bookmarks", -1);
      bp_bolt_pack_list_header (body, (guint32) len);
      for (gsize i = 0; i < len; i++)
        bp_bolt_pack_string (body, bookmarks[i], -1);
      (*n)++;
      return TRUE;
    }
  if (strcmp (key, "tx_timeout") == 0)
    {
      gint64 ms;

      if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT64))
        ms = g_variant_get_int64 (value);
      else if (g_variant_is_of_type (value, G_VARIANT_TYPE_INT32))
        ms = g_variant_get_int32 (value);
      else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT32))
        ms = g_variant_get_uint32 (value);
      else if (g_variant_is_of_type (value, G_VARIANT_TYPE_UINT64) && g_variant_get_uint64 (value) <= G_MAXINT64)
        ms = (gint64) g_variant_get_uint64 (value);
      else
        return option_type_error (key, value, error);
      if (ms < 0)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, _("tx_timeout must not be negative"));
          return FALSE;
        }
      bp_bolt_pack_string (body, "tx_timeout", -1);
      bp_bolt_pack_int (body, ms);
      (*n)++;
      return TRUE;
    }
  if (strcmp (key, "tx_metadata") == 0)
    {
      if (!g_variant_is_of_type (value, G_VARIANT_TYPE_VARDICT))
        return option_type_error (key, value, error);
      if (g_variant_n_children (value) == 0)
        return TRUE;
      bp_bolt_pack_string (body, "tx_metadata", -1);
      if (!bp_bolt_pack_variant (body, value, &self->limits, error))
        return FALSE;
      (*n)++;
      return TRUE;
    }
  g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, _("Unknown Bolt option '%s'"), key);
  return FALSE;
}

/* Auto-commit RUN and BEGIN extras, from the caller's a{sv} to the Bolt map. */
static gboolean
pack_tx_extra (BpBoltConnection *self,
               GByteArray       *msg,
               GVariant         *extra,
               GError          **error)
{
  g_autoptr(GByteArray) body = g_byte_array_new ();
  guint n = 0;
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (extra != NULL)
    {
      g_variant_iter_init (&iter, extra);
      while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
        {
          g_autoptr(GVariant) owned = value;

          if (!pack_tx_option (self, body, key, owned, &n, error))
            return FALSE;
        }
    }
  bp_bolt_pack_map_header (msg, n);
  g_byte_array_append (msg, body->data, body->len);
  return TRUE;
}

static void
append_pull (BpBoltConnection *self,
             GByteArray       *out,
             guint8            tag,
             gint64            n,
             gint64            qid)
{
  g_autoptr(GByteArray) msg = new_message (1, tag);

  bp_bolt_pack_map_header (msg, qid >= 0 ? 2 : 1);
  bp_bolt_pack_string (msg, "n", -1);
  bp_bolt_pack_int (msg, n);
  if (qid >= 0)
    {
      bp_bolt_pack_string (msg, "qid", -1);
      bp_bolt_pack_int (msg, qid);
    }
  g_byte_array_append (out, msg->data, msg->len);
}

static void
send_simple (BpBoltConnection *self,
             guint8            tag,
             RequestKind       kind,
             GTask            *task)
{
  g_autoptr(GByteArray) msg = new_message (0, tag);

  queue_message (self, msg, FALSE);
  push_request (self, kind, task, NULL, self->tx_open);
  flush_output (self);
}

/* After a FAILURE or a cancellation: RESET jumps ahead of the server's
 * queue, everything before it is IGNORED, and the connection is READY. */
static void
ensure_reset (BpBoltConnection *self)
{
  if (self->reset_queued || self->state == BP_BOLT_STATE_DEFUNCT || self->closing)
    return;
  self->reset_queued = TRUE;
  send_simple (self, MSG_RESET, REQ_RESET, NULL);
}

void
_bp_bolt_connection_interrupt (BpBoltConnection *self)
{
  if (self->tx_open)
    self->tx_failed = TRUE;
  ensure_reset (self);
}

/* Fails every queued request (the connection is gone). */
static void
fail_requests (BpBoltConnection *self,
               const GError     *error)
{
  Request *request;

  while ((request = g_queue_pop_head (&self->requests)) != NULL)
    {
      g_autoptr(GError) err = NULL;

      if (request->kind == REQ_COMMIT)
        err = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                           BP_BOLT_COMMIT_UNKNOWN_PREFIX ": the connection to %s was lost while the COMMIT was outstanding (%s)",
                           self->address, error->message);
      else
        err = g_error_copy (error);
      if (request->stream != NULL)
        _bp_bolt_stream_abort (request->stream, err);
      if (request->task != NULL)
        g_task_return_error (g_steal_pointer (&request->task), g_steal_pointer (&err));
      request_free (request);
    }
}

static void
abort_streams (BpBoltConnection *self,
               const GError     *error)
{
  if (self->autocommit_stream != NULL)
    _bp_bolt_stream_abort (self->autocommit_stream, error);
  while (self->tx_streams->len > 0)
    {
      BpBoltStream *stream = g_ptr_array_steal_index (self->tx_streams, 0);
      _bp_bolt_stream_abort (stream, error);
    }
  self->autocommit_stream = NULL;
}

static void fail_open (BpBoltConnection *self, GError *error);

/* Takes @reason. The connection is unusable from now on. */
static void
set_defunct (BpBoltConnection *self,
             GError           *reason,
             gboolean          graceful)
{
  g_autoptr(GError) owned_reason = reason;
  g_autoptr(BpBoltConnection) hold G_GNUC_UNUSED = g_object_ref (self);
  g_autoptr(GTask) commit = NULL;

  if (self->state == BP_BOLT_STATE_DEFUNCT)
    return;

  if (self->open_task != NULL)
    {
      fail_open (self, g_steal_pointer (&owned_reason));
      return;
    }

  if (g_error_matches (owned_reason, BP_ERROR, BP_ERROR_UNAVAILABLE) ||
      g_error_matches (owned_reason, BP_ERROR, BP_ERROR_TIMEOUT))
    self->defunct_error = g_error_copy (owned_reason);
  else
    self->defunct_error = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, BP_BOLT_CONNECTION_LOST_PREFIX ": %s: %s",
                                       self->address, owned_reason->message);
  g_debug ("Bolt %s: defunct: %s", self->address, self->defunct_error->message);

  set_state (self, BP_BOLT_STATE_DEFUNCT);
  g_cancellable_cancel (self->read_cancellable);
  clear_source (&self->recv_timer);

  fail_requests (self, self->defunct_error);
  abort_streams (self, self->defunct_error);
  commit = g_steal_pointer (&self->pending_commit);
  if (commit != NULL)
    g_task_return_error (commit, g_error_copy (self->defunct_error));
  notify_idle (self);

  if (graceful)
    self->closing = TRUE;
  else
    {
      if (self->out_sensitive)
        memset (self->out_pending->data, 0, self->out_pending->len);
      g_byte_array_set_size (self->out_pending, 0);
    }
  maybe_close_iostream (self);
}

static void
protocol_violation (BpBoltConnection *self,
                    const char       *format,
                    ...) G_GNUC_PRINTF (2, 3);

static void
protocol_violation (BpBoltConnection *self,
                    const char       *format,
                    ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  set_defunct (self,
               g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, BP_BOLT_CONNECTION_LOST_PREFIX ": %s: protocol violation: %s",
                            self->address, message),
               FALSE);
}

/* ------------------------------------------------------------------ */
/* Receive timeout (hint connection.recv_timeout_seconds)              */

static gboolean
recv_timer_cb (gpointer user_data)
{
  BpBoltConnection *self = user_data;
  gint64 now = bp_clock_get_time (self->clock);
  gint64 silent = now - self->last_rx_time;

  g_clear_pointer (&self->recv_timer, g_source_unref);
  if (g_queue_is_empty (&self->requests))
    return G_SOURCE_REMOVE;
  if (silent >= self->recv_timeout_us)
    {
      set_defunct (self,
                   g_error_new (BP_ERROR, BP_ERROR_TIMEOUT,
                                BP_BOLT_CONNECTION_LOST_PREFIX ": %s: no data from the server for %" G_GINT64_FORMAT
                                " s (connection.recv_timeout_seconds)",
                                self->address, self->recv_timeout_us / G_USEC_PER_SEC),
                   FALSE);
      return G_SOURCE_REMOVE;
    }
  update_recv_timer (self);
  return G_SOURCE_REMOVE;
}

static void
update_recv_timer (BpBoltConnection *self)
{
  gint64 due;

  if (self->recv_timeout_us <= 0 || g_queue_is_empty (&self->requests) ||
      self->state == BP_BOLT_STATE_DEFUNCT)
    {
      clear_source (&self->recv_timer);
      return;
    }
  if (self->recv_timer != NULL)
    return;
  due = self->last_rx_time + self->recv_timeout_us - bp_clock_get_time (self->clock);
  self->recv_timer = bp_clock_timeout_source_new (self->clock, MAX (due, 0));
  g_source_set_callback (self->recv_timer, recv_timer_cb, self, NULL);
  g_source_attach (self->recv_timer, self->context);
}

/* ------------------------------------------------------------------ */
/* Open: connect, handshake, HELLO, LOGON                              */

static gboolean
version_supported (guint major,
                   guint minor)
{
  if (major == 5)
    return minor <= 8;
  if (major == 4)
    return minor == 3 || minor == 4;
  return FALSE;
}

static void
build_handshake (BpBoltConnection *self,
                 GByteArray       *out)
{
  static const guint8 magic[4] = { 0x60, 0x60, 0xB0, 0x17 };
  guint8 slots[16] = { 0, };
  guint n = 0;

  g_byte_array_append (out, magic, 4);
  if (self->max_version >= BP_BOLT_VERSION (5, 7))
    {
      slots[n * 4 + 2] = 0x01;
      slots[n * 4 + 3] = 0xFF;
      n++;
    }
  if (self->max_version >= BP_BOLT_VERSION (5, 0))
    {
      guint top = BP_BOLT_VERSION_MINOR (self->max_version);
      slots[n * 4 + 1] = (guint8) top;     /* range: top .. 0 */
      slots[n * 4 + 2] = (guint8) top;
      slots[n * 4 + 3] = 5;
      n++;
    }
  if (self->max_version >= BP_BOLT_VERSION (4, 4))
    {
      slots[n * 4 + 1] = 1;     /* 4.4, 4.3 */
      slots[n * 4 + 2] = 4;
      slots[n * 4 + 3] = 4;
    }
  else
    {
      slots[n * 4 + 2] = 3;
      slots[n * 4 + 3] = 4;
    }
  g_byte_array_append (out, slots, 16);
}

static void
clear_open_state (BpBoltConnection *self)
{
  clear_source (&self->open_timer);
  clear_source (&self->open_cancel_source);
  g_clear_pointer (&self->auth, bp_bolt_auth_free);
}

static void
fail_open (BpBoltConnection *self,
           GError           *error)
{
  g_autoptr(GError) owned = error;
  g_autoptr(GTask) task = g_steal_pointer (&self->open_task);
  g_autoptr(GError) reason = NULL;

  clear_open_state (self);
  if (self->open_timed_out)
    {
      g_clear_error (&owned);
      owned = g_error_new (BP_ERROR, BP_ERROR_TIMEOUT, BP_BOLT_OPEN_TIMEOUT_PREFIX " to %s timed out after %u ms",
                           self->address, self->open_timeout_ms);
    }
  reason = g_error_copy (owned);
  set_defunct (self, g_steal_pointer (&reason), FALSE);
  if (task != NULL)
    g_task_return_error (task, g_steal_pointer (&owned));
}

static void
complete_open (BpBoltConnection *self)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->open_task);

  clear_open_state (self);
  set_state (self, BP_BOLT_STATE_READY);
  g_debug ("Bolt %s: ready, protocol %u.%u%s, server %s", self->address,
           BP_BOLT_VERSION_MAJOR (self->version), BP_BOLT_VERSION_MINOR (self->version),
           self->used_manifest ? " (manifest)" : "",
           self->server_agent ? self->server_agent : "?");
  if (task != NULL)
    g_task_return_boolean (task, TRUE);
}

static void
send_hello (BpBoltConnection *self)
{
  g_autoptr(GByteArray) msg = new_message (1, MSG_HELLO);
  gboolean agent = self->version >= BP_BOLT_VERSION (5, 3);
  gboolean patch = self->version < BP_BOLT_VERSION (5, 0);
  gboolean auth_in_hello = self->version < BP_BOLT_VERSION (5, 1);
  guint n = 1 + agent + patch + (self->routing != NULL);

  if (auth_in_hello)
    n += bp_bolt_auth_get_n_entries (self->auth);
  bp_bolt_pack_map_header (msg, n);
  bp_bolt_pack_string (msg, "user_agent", -1);
  bp_bolt_pack_string (msg, self->user_agent, -1);
  if (agent)
    {
      struct utsname uts;
      g_autofree char *platform = NULL;
      g_autofree char *details = g_strdup_printf ("GLib %u.%u.%u", glib_major_version,
                                                  glib_minor_version, glib_micro_version);

      if (uname (&uts) == 0)
        platform = g_strdup_printf ("%s %s; %s", uts.sysname, uts.release, uts.machine);
      else
        platform = g_strdup ("unknown");
      bp_bolt_pack_string (msg, "bolt_agent", -1);
      bp_bolt_pack_map_header (msg, 4);
      bp_bolt_pack_string (msg, "product", -1);
      bp_bolt_pack_string (msg, self->user_agent, -1);
      bp_bolt_pack_string (msg, "platform", -1);
      bp_bolt_pack_string (msg, platform, -1);
      bp_bolt_pack_string (msg, "language", -1);
      bp_bolt_pack_string (msg, "C", -1);
      bp_bolt_pack_string (msg, "language_details", -1);
      bp_bolt_pack_string (msg, details, -1);
    }
  if (patch)
    {
      bp_bolt_pack_string (msg, "patch_bolt", -1);
      bp_bolt_pack_list_header (msg, 1);
      bp_bolt_pack_string (msg, "utc", -1);
    }
  if (self->routing != NULL)
    {
      bp_bolt_pack_string (msg, "routing", -1);
      bp_bolt_pack_variant (msg, self->routing, &self->limits, NULL);
    }
  if (auth_in_hello)
    bp_bolt_auth_pack_entries (self->auth, msg);
  queue_message (self, msg, auth_in_hello);
  push_request (self, REQ_HELLO, NULL, NULL, FALSE);

  if (!auth_in_hello)
    {
      g_autoptr(GByteArray) logon = new_message (1, MSG_LOGON);

      bp_bolt_pack_map_header (logon, bp_bolt_auth_get_n_entries (self->auth));
      bp_bolt_auth_pack_entries (self->auth, logon);
      queue_message (self, logon, TRUE);
      push_request (self, REQ_LOGON, NULL, NULL, FALSE);
    }
  /* the token is in the output buffer now; do not keep it longer */
  g_clear_pointer (&self->auth, bp_bolt_auth_free);
  flush_output (self);
}

/* Parses a VarInt at @pos; returns -1 if incomplete, -2 if invalid. */
static int
parse_varint (const guint8 *data,
              gsize         len,
              gsize        *pos,
              guint64      *value)
{
  guint64 v = 0;
  guint shift = 0;

  for (gsize i = *pos; i < len; i++)
    {
      guint8 b = data[i];

      if (shift >= 64 || (shift == 63 && (b & 0x7F) > 1))
        return -2;
      v |= (guint64) (b & 0x7F) << shift;
      shift += 7;
      if ((b & 0x80) == 0)
        {
          *pos = i + 1;
          *value = v;
          return 0;
        }
    }
  return -1;
}

/* Returns TRUE when the handshake is complete (or failed). */
static gboolean
process_handshake (BpBoltConnection *self)
{
  const guint8 *d = self->handshake_buf->data;
  gsize len = self->handshake_buf->len;
  guint major, minor;

  if (len < 4)
    return FALSE;

  if (d[0] == 0 && d[1] == 0 && d[2] == 0x01 && d[3] == 0xFF)
    {
      gsize pos = 4;
      guint64 n, caps;
      guint best = 0;
      int r;
      guint8 reply[4] = { 0, 0, 0, 0 };

      if (self->max_version < BP_BOLT_VERSION (5, 7))
        {
          protocol_violation (self, "manifest handshake reply to a request without manifest");
          return TRUE;
        }
      r = parse_varint (d, len, &pos, &n);
      if (r == -1)
        return FALSE;
      if (r == -2 || n > MAX_MANIFEST_ENTRIES)
        {
          protocol_violation (self, "invalid manifest version count");
          return TRUE;
        }
      if (len < pos + n * 4)
        return FALSE;
      for (guint64 i = 0; i < n; i++)
        {
          const guint8 *e = d + pos + i * 4;
          guint range = e[1], top = e[2], maj = e[3];

          for (guint k = 0; k <= range && k <= top; k++)
            {
              guint v = BP_BOLT_VERSION (maj, top - k);
              if (version_supported (maj, top - k) && v <= self->max_version && v > best)
                best = v;
            }
        }
      pos += n * 4;
      r = parse_varint (d, len, &pos, &caps);
      if (r == -1)
        return FALSE;
      if (r == -2)
        {
          protocol_violation (self, "invalid manifest capabilities");
          return TRUE;
        }
      if (best == 0)
        {
          fail_open (self, g_error_new (BP_ERROR, BP_ERROR_BACKEND,
                                        _("Bolt handshake with %s: the server offers no protocol version this client supports"),
                                        self->address));
          return TRUE;
        }
      self->used_manifest = TRUE;
      self->version = best;
      reply[2] = (guint8) BP_BOLT_VERSION_MINOR (best);
      reply[3] = (guint8) BP_BOLT_VERSION_MAJOR (best);
      g_byte_array_append (self->out_pending, reply, 4);
      g_byte_array_append (self->out_pending, (const guint8 *) "\0", 1);   /* no capabilities */
      g_byte_array_remove_range (self->handshake_buf, 0, (guint) pos);
      return TRUE;
    }

  if (d[0] == 0 && d[1] == 0 && d[2] == 0 && d[3] == 0)
    {
      fail_open (self, g_error_new (BP_ERROR, BP_ERROR_BACKEND,
                                    _("Bolt handshake with %s: the server supports none of the offered protocol versions"),
                                    self->address));
      return TRUE;
    }
  if (memcmp (d, "HTTP", 4) == 0)
    {
      fail_open (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                    _("%s answered the Bolt handshake with HTTP; is this the HTTP port?"),
                                    self->address));
      return TRUE;
    }
  major = d[3];
  minor = d[2];
  if (d[0] != 0 || d[1] != 0 || !version_supported (major, minor) ||
      BP_BOLT_VERSION (major, minor) > self->max_version)
    {
      fail_open (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                    _("Bolt handshake with %s: the server chose %02X %02X %02X %02X, which was not offered"),
                                    self->address, d[0], d[1], d[2], d[3]));
      return TRUE;
    }
  self->version = BP_BOLT_VERSION (major, minor);
  g_byte_array_remove_range (self->handshake_buf, 0, 4);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Responses                                                           */

static void
update_state_after_stream (BpBoltConnection *self,
                           gboolean          in_tx)
{
  if (self->state == BP_BOLT_STATE_FAILED || self->state == BP_BOLT_STATE_DEFUNCT)
    return;
  if (!in_tx)
    {
      if (self->autocommit_stream == NULL)
        set_state (self, BP_BOLT_STATE_READY);
    }
  else
    set_state (self, self->tx_streams->len > 0 ? BP_BOLT_STATE_TX_STREAMING : BP_BOLT_STATE_TX_READY);
}

static void
handle_success (BpBoltConnection *self,
                Request          *request,
                GVariant         *metadata)
{
  g_autoptr(GTask) task = g_steal_pointer (&request->task);

  switch (request->kind)
    {
    case REQ_HELLO:
      {
        gint64 timeout;
        g_autoptr(GVariant) hints = NULL;

        g_clear_pointer (&self->server_agent, g_free);
        g_clear_pointer (&self->connection_id, g_free);
        g_variant_lookup (metadata, "server", "s", &self->server_agent);
        g_variant_lookup (metadata, "connection_id", "s", &self->connection_id);
        hints = g_variant_lookup_value (metadata, "hints", G_VARIANT_TYPE_VARDICT);
        g_clear_pointer (&self->hints, g_variant_unref);
        if (hints != NULL)
          {
            self->hints = g_variant_ref (hints);
            if (g_variant_lookup (hints, "connection.recv_timeout_seconds", "x", &timeout) && timeout > 0 &&
                timeout < G_MAXINT64 / G_USEC_PER_SEC)
              self->recv_timeout_us = timeout * G_USEC_PER_SEC;
          }
        if (self->version < BP_BOLT_VERSION (5, 1))
          complete_open (self);
      }
      break;

    case REQ_LOGON:
      complete_open (self);
      break;

    case REQ_RUN:
      {
        g_autoptr(GError) error = NULL;

        if (!_bp_bolt_stream_set_run_metadata (request->stream, metadata, &error))
          {
            protocol_violation (self, "%s", error->message);
            if (task != NULL)
              g_task_return_error (task, copy_defunct_error (self));
            return;
          }
        set_state (self, request->in_tx ? BP_BOLT_STATE_TX_STREAMING : BP_BOLT_STATE_STREAMING);
        if (task != NULL)
          g_task_return_pointer (task, g_object_ref (request->stream), g_object_unref);
      }
      break;

    case REQ_PULL:
    case REQ_DISCARD:
      if (request->stream != NULL)
        _bp_bolt_stream_pull_done (request->stream, metadata, NULL);
      update_state_after_stream (self, request->in_tx);
      if (self->pending_commit != NULL)
        try_send_commit (self);
      break;

    case REQ_BEGIN:
      set_state (self, BP_BOLT_STATE_TX_READY);
      if (task != NULL)
        g_task_return_boolean (task, TRUE);
      break;

    case REQ_COMMIT:
      {
        char *bookmark = NULL;

        set_state (self, BP_BOLT_STATE_READY);
        g_variant_lookup (metadata, "bookmark", "s", &bookmark);
        if (task != NULL)
          g_task_return_pointer (task, bookmark, g_free);
        else
          g_free (bookmark);
      }
      break;

    case REQ_ROLLBACK:
      set_state (self, BP_BOLT_STATE_READY);
      if (task != NULL)
        g_task_return_boolean (task, TRUE);
      break;

    case REQ_RESET:
      self->reset_queued = FALSE;
      g_clear_pointer (&self->last_failure, g_variant_unref);
      g_clear_error (&self->last_error);
      set_state (self, self->tx_open && !self->tx_failed ? BP_BOLT_STATE_TX_READY : BP_BOLT_STATE_READY);
      if (task != NULL)
        g_task_return_boolean (task, TRUE);
      break;

    case REQ_ROUTE:
      {
        GVariant *rt = g_variant_lookup_value (metadata, "rt", G_VARIANT_TYPE_VARDICT);

        if (task == NULL)
          g_clear_pointer (&rt, g_variant_unref);
        else if (rt == NULL)
          g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_INVALID_DATA,
                                   _("ROUTE SUCCESS from %s has no routing table"), self->address);
        else
          g_task_return_pointer (task, rt, (GDestroyNotify) g_variant_unref);
      }
      break;

    default:
      g_assert_not_reached ();
    }
}

/* FAILURE (@error from the server) or IGNORED (@ignored). */
static void
handle_failure (BpBoltConnection *self,
                Request          *request,
                GError           *error,
                gboolean          ignored)
{
  g_autoptr(GTask) task = g_steal_pointer (&request->task);
  g_autoptr(GError) owned = error;

  switch (request->kind)
    {
    case REQ_HELLO:
    case REQ_LOGON:
      fail_open (self, g_steal_pointer (&owned));
      return;

    case REQ_RESET:
      /* bolt/message.adoc: a client receiving FAILURE for RESET treats the
       * connection as DEFUNCT */
      self->reset_queued = FALSE;
      if (task != NULL)
        g_task_return_error (task, g_error_copy (owned));
      set_defunct (self, g_steal_pointer (&owned), FALSE);
      return;

    case REQ_RUN:
    case REQ_PULL:
    case REQ_DISCARD:
      if (request->stream != NULL)
        _bp_bolt_stream_pull_done (request->stream, NULL, owned);
      break;

    case REQ_BEGIN:
      /* no transaction was begun: pipelined RUNs fail, ROLLBACK is a no-op */
      break;

    default:
      break;
    }

  if (task != NULL)
    g_task_return_error (task, g_steal_pointer (&owned));

  if (!ignored)
    {
      set_state (self, BP_BOLT_STATE_FAILED);
      if (self->tx_open)
        self->tx_failed = TRUE;
      ensure_reset (self);
    }
  if (self->pending_commit != NULL)
    try_send_commit (self);
}

static void
handle_message (BpBoltConnection *self,
                GBytes           *message)
{
  gsize len;
  const guint8 *data = g_bytes_get_data (message, &len);
  BpBoltReader reader;
  guint n_fields;
  guint8 tag;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) metadata = NULL;
  Request *request;

  bp_bolt_reader_init (&reader, data, len, &self->limits);
  if (!bp_bolt_reader_read_struct_header (&reader, &n_fields, &tag, &error))
    {
      protocol_violation (self, "%s", error->message);
      return;
    }
  request = g_queue_peek_head (&self->requests);
  if (request == NULL)
    {
      protocol_violation (self, "unsolicited message 0x%02X", tag);
      return;
    }

  switch (tag)
    {
    case MSG_RECORD:
      {
        BpBoltType type;

        if (request->kind != REQ_PULL || n_fields != 1 ||
            !bp_bolt_reader_peek_type (&reader, &type, NULL) || type != BP_BOLT_TYPE_LIST ||
            reader.pos != 2)
          {
            protocol_violation (self, "unexpected RECORD in reply to %s (%u fields, %u bytes)",
                                request_names[request->kind], n_fields, (guint) len);
            return;
          }
        if (request->stream != NULL)
          _bp_bolt_stream_push_record (request->stream, message);
        return;
      }

    case MSG_SUCCESS:
    case MSG_FAILURE:
      {
        BpBoltType type;

        if (n_fields != 1 || !bp_bolt_reader_peek_type (&reader, &type, &error) || type != BP_BOLT_TYPE_MAP)
          {
            protocol_violation (self, "malformed summary 0x%02X", tag);
            return;
          }
        metadata = bp_bolt_reader_read_variant (&reader, &error);
        if (metadata == NULL)
          {
            protocol_violation (self, "summary metadata: %s", error->message);
            return;
          }
        if (!bp_bolt_reader_at_end (&reader))
          {
            protocol_violation (self, "trailing bytes after the summary");
            return;
          }
      }
      break;

    case MSG_IGNORED:
      if (n_fields != 0 || !bp_bolt_reader_at_end (&reader))
        {
          protocol_violation (self, "malformed IGNORED");
          return;
        }
      break;

    default:
      protocol_violation (self, "unknown message 0x%02X in reply to %s", tag, request_names[request->kind]);
      return;
    }

  request = g_queue_pop_head (&self->requests);
  update_recv_timer (self);
  if (tag == MSG_SUCCESS)
    handle_success (self, request, metadata);
  else if (tag == MSG_FAILURE)
    {
      g_clear_pointer (&self->last_failure, g_variant_unref);
      self->last_failure = g_variant_ref (metadata);
      g_clear_error (&self->last_error);
      self->last_error = bp_bolt_error_new_from_failure (metadata);
      g_debug ("Bolt %s: %s failed: %s", self->address, request_names[request->kind], self->last_error->message);
      handle_failure (self, request, g_error_copy (self->last_error), FALSE);
    }
  else
    {
      GError *err;

      if (self->last_error != NULL)
        err = g_error_copy (self->last_error);
      else
        err = g_error_new (BP_ERROR, BP_ERROR_FAILED, _("Bolt %s was ignored: the server was interrupted by RESET"),
                           request_names[request->kind]);
      handle_failure (self, request, err, TRUE);
    }
  request_free (request);
  notify_idle (self);
}

static void
process_input (BpBoltConnection *self,
               const guint8     *data,
               gsize             len)
{
  g_autoptr(GError) error = NULL;
  GBytes *message;

  if (self->handshaking)
    {
      g_byte_array_append (self->handshake_buf, data, (guint) len);
      if (self->handshake_buf->len > 4 + 10 + MAX_MANIFEST_ENTRIES * 4 + 10)
        {
          protocol_violation (self, "oversized handshake reply");
          return;
        }
      if (!process_handshake (self))
        return;
      if (self->state == BP_BOLT_STATE_DEFUNCT)
        return;
      self->handshaking = FALSE;
      g_debug ("Bolt %s: negotiated %u.%u", self->address,
               BP_BOLT_VERSION_MAJOR (self->version), BP_BOLT_VERSION_MINOR (self->version));
      send_hello (self);
      data = self->handshake_buf->data;
      len = self->handshake_buf->len;
    }

  if (len > 0 && !bp_bolt_chunk_reader_feed (self->chunks, data, len, &error))
    {
      if (g_error_matches (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED))
        set_defunct (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, BP_BOLT_CONNECTION_LOST_PREFIX ": %s: %s",
                                        self->address, error->message), FALSE);
      else
        protocol_violation (self, "%s", error->message);
      return;
    }
  if (self->handshake_buf->len > 0)
    g_byte_array_set_size (self->handshake_buf, 0);

  while (self->state != BP_BOLT_STATE_DEFUNCT &&
         (message = bp_bolt_chunk_reader_pop (self->chunks)) != NULL)
    {
      handle_message (self, message);
      g_bytes_unref (message);
    }
}

typedef struct
{
  GWeakRef    connection;
  GByteArray *buffer;   /* (owned) */
} ReadOp;

static void
read_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  ReadOp *op = user_data;
  g_autoptr(BpBoltConnection) self = g_weak_ref_get (&op->connection);
  g_autoptr(GError) error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  g_weak_ref_clear (&op->connection);
  if (self != NULL)
    self->reading = FALSE;
  if (self == NULL || self->state == BP_BOLT_STATE_DEFUNCT)
    {
      if (self != NULL)
        maybe_close_iostream (self);
      g_byte_array_unref (op->buffer);
      g_free (op);
      return;
    }
  if (n < 0)
    set_defunct (self, g_steal_pointer (&error), FALSE);
  else if (n == 0)
    set_defunct (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                    BP_BOLT_CONNECTION_LOST_PREFIX ": %s closed the connection", self->address),
                 FALSE);
  else
    {
      self->last_rx_time = bp_clock_get_time (self->clock);
      process_input (self, op->buffer->data, (gsize) n);
      start_reading (self);
    }
  g_byte_array_unref (op->buffer);
  g_free (op);
}

static void
start_reading (BpBoltConnection *self)
{
  ReadOp *op;

  if (self->reading || self->input == NULL || self->state == BP_BOLT_STATE_DEFUNCT)
    return;
  op = g_new0 (ReadOp, 1);
  g_weak_ref_init (&op->connection, self);
  op->buffer = g_byte_array_ref (self->read_buffer);
  self->reading = TRUE;
  g_input_stream_read_async (self->input, op->buffer->data, op->buffer->len, G_PRIORITY_DEFAULT,
                             self->read_cancellable, read_cb, op);
}

static gboolean
accept_any_certificate (GTlsConnection       *conn,
                        GTlsCertificate      *peer_cert,
                        GTlsCertificateFlags  errors,
                        gpointer              user_data)
{
  return TRUE;
}

/* Runs in our context while GSocketClient connects. */
static void
socket_client_event (GSocketClient      *client,
                     GSocketClientEvent  event,
                     GSocketConnectable *connectable,
                     GIOStream          *connection,
                     gpointer            user_data)
{
  BpBoltConnection *self = user_data;

  if (event != G_SOCKET_CLIENT_TLS_HANDSHAKING || !G_IS_TLS_CLIENT_CONNECTION (connection))
    return;
  if (self->tls_mode == BP_BOLT_TLS_TRUST_ANY)
    g_signal_connect (connection, "accept-certificate", G_CALLBACK (accept_any_certificate), NULL);
  else if (self->tls_database != NULL)
    g_tls_connection_set_database (G_TLS_CONNECTION (connection), self->tls_database);
}

/* The transport is up: send the handshake and start reading. */
static void
start_handshake (BpBoltConnection *self,
                 GIOStream        *iostream)
{
  g_autoptr(GByteArray) handshake = g_byte_array_new ();

  self->iostream = g_object_ref (iostream);
  self->input = g_io_stream_get_input_stream (self->iostream);
  self->output = g_io_stream_get_output_stream (self->iostream);
  self->chunks = bp_bolt_chunk_reader_new (self->limits.max_message_size);
  self->handshaking = TRUE;

  build_handshake (self, handshake);
  g_byte_array_append (self->out_pending, handshake->data, handshake->len);
  flush_output (self);
  start_reading (self);
}

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(BpBoltConnection) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketConnection) conn = NULL;
  GSocket *socket;

  conn = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (source), result, &error);
  g_signal_handlers_disconnect_by_data (source, self);
  if (self->open_task == NULL)
    return;   /* already failed (timeout, cancel) */
  if (conn == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) && error->domain != G_TLS_ERROR)
        {
          g_autoptr(GError) wrapped = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "Could not connect to Bolt server %s: %s",
                                                   self->address, error->message);
          fail_open (self, g_steal_pointer (&wrapped));
        }
      else
        fail_open (self, g_steal_pointer (&error));
      return;
    }

  socket = g_socket_connection_get_socket (conn);
  if (g_socket_get_family (socket) != G_SOCKET_FAMILY_UNIX)
    g_socket_set_option (socket, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
  g_socket_set_keepalive (socket, TRUE);

  /* With TLS, GSocketClient wraps the socket connection in a TLS one. */
  start_handshake (self, G_IO_STREAM (conn));
}

static gboolean
open_timeout_cb (gpointer user_data)
{
  BpBoltConnection *self = user_data;

  g_clear_pointer (&self->open_timer, g_source_unref);
  self->open_timed_out = TRUE;
  g_cancellable_cancel (self->open_cancellable);
  fail_open (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_TIMED_OUT, "timed out"));
  return G_SOURCE_REMOVE;
}

static gboolean
open_cancelled_cb (GCancellable *cancellable,
                   gpointer      user_data)
{
  BpBoltConnection *self = user_data;

  g_clear_pointer (&self->open_cancel_source, g_source_unref);
  g_cancellable_cancel (self->open_cancellable);
  fail_open (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled"));
  return G_SOURCE_REMOVE;
}

/* Common start of an open: state, auth copy, cancellation, timeout. */
static void
begin_open (BpBoltConnection *self,
            GTask            *task,
            const BpBoltAuth *auth,
            GCancellable     *cancellable)
{
  set_state (self, BP_BOLT_STATE_CONNECTING);
  self->open_task = task;
  self->auth = bp_bolt_auth_copy (auth);
  self->open_cancellable = g_cancellable_new ();
  if (cancellable != NULL)
    {
      self->open_cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (self->open_cancel_source, G_SOURCE_FUNC (open_cancelled_cb), self, NULL);
      g_source_attach (self->open_cancel_source, self->context);
    }
  if (self->open_timeout_ms > 0)
    {
      self->open_timer = bp_clock_timeout_source_new (self->clock, (gint64) self->open_timeout_ms * 1000);
      g_source_set_callback (self->open_timer, open_timeout_cb, self, NULL);
      g_source_attach (self->open_timer, self->context);
    }
}

/**
 * bp_bolt_connection_open_async:
 * @self: an unopened #BpBoltConnection
 * @auth: the credentials (copied; wiped once sent)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the connection is READY or failed
 * @user_data: data for @callback
 *
 * Connects, negotiates the protocol version and authenticates. Errors:
 * %BP_ERROR_UNAVAILABLE (cannot connect, closed), %BP_ERROR_TIMEOUT (open
 * timeout), %BP_ERROR_BACKEND (the server refused: no common version,
 * `Neo.ClientError.Security.Unauthorized: …`), #G_TLS_ERROR, cancellation.
 */
void
bp_bolt_connection_open_async (BpBoltConnection    *self,
                               const BpBoltAuth    *auth,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GSocketClient) client = NULL;

  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));
  g_return_if_fail (auth != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_connection_open_async);

  if (self->state != BP_BOLT_STATE_DISCONNECTED)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING, _("The Bolt connection was opened before"));
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;

  begin_open (self, g_steal_pointer (&task), auth, cancellable);

  client = g_socket_client_new ();
  if (self->tls_mode != BP_BOLT_TLS_NONE)
    {
      g_socket_client_set_tls (client, TRUE);
      g_signal_connect (client, "event", G_CALLBACK (socket_client_event), self);
    }
  g_debug ("Bolt %s: connecting%s", self->address, self->tls_mode != BP_BOLT_TLS_NONE ? " with TLS" : "");
  g_socket_client_connect_to_host_async (client, self->host, self->port, self->open_cancellable,
                                         connect_cb, g_object_ref (self));
}

/**
 * bp_bolt_connection_open_on_stream_async:
 * @self: an unopened #BpBoltConnection
 * @stream: a connected transport (a Unix socket, a socket pair in tests, an
 *   already negotiated TLS connection); the TLS mode is not applied to it
 * @auth: the credentials (copied; wiped once sent)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the connection is READY or failed
 * @user_data: data for @callback
 *
 * As bp_bolt_connection_open_async(), over @stream instead of a new TCP
 * connection to the host and port.
 */
void
bp_bolt_connection_open_on_stream_async (BpBoltConnection    *self,
                                         GIOStream           *stream,
                                         const BpBoltAuth    *auth,
                                         GCancellable        *cancellable,
                                         GAsyncReadyCallback  callback,
                                         gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));
  g_return_if_fail (G_IS_IO_STREAM (stream));
  g_return_if_fail (auth != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_connection_open_async);

  if (self->state != BP_BOLT_STATE_DISCONNECTED)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING, _("The Bolt connection was opened before"));
      return;
    }
  if (g_task_return_error_if_cancelled (task))
    return;
  begin_open (self, g_steal_pointer (&task), auth, cancellable);
  start_handshake (self, stream);
}

gboolean
bp_bolt_connection_open_finish (BpBoltConnection  *self,
                                GAsyncResult      *result,
                                GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_bolt_connection_open_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ------------------------------------------------------------------ */
/* Cancellation of queued requests                                     */

typedef struct
{
  BpBoltConnection *connection;  /* (unowned) */
  Request          *request;     /* (unowned) */
} CancelData;

static gboolean
request_cancelled_cb (GCancellable *cancellable,
                      gpointer      user_data)
{
  CancelData *data = user_data;
  BpBoltConnection *self = data->connection;
  Request *request = data->request;
  g_autoptr(GTask) task = g_steal_pointer (&request->task);
  g_autoptr(BpBoltConnection) hold G_GNUC_UNUSED = g_object_ref (self);

  g_clear_pointer (&request->cancel_source, g_source_unref);
  if (request->stream != NULL)
    {
      g_autoptr(GError) error = g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
      _bp_bolt_stream_abort (request->stream, error);
    }
  /* The request stays queued to consume its reply; RESET makes the server
   * stop the work. */
  _bp_bolt_connection_interrupt (self);
  if (task != NULL)
    g_task_return_error_if_cancelled (task);
  return G_SOURCE_REMOVE;
}

static void
watch_cancellable (BpBoltConnection *self,
                   Request          *request,
                   GCancellable     *cancellable)
{
  CancelData *data;

  if (cancellable == NULL)
    return;
  data = g_new0 (CancelData, 1);
  data->connection = self;
  data->request = request;
  request->cancel_source = g_cancellable_source_new (cancellable);
  g_source_set_callback (request->cancel_source, G_SOURCE_FUNC (request_cancelled_cb), data, g_free);
  g_source_attach (request->cancel_source, self->context);
}

/* ------------------------------------------------------------------ */
/* RUN                                                                 */

/**
 * bp_bolt_connection_run_async:
 * @self: a #BpBoltConnection
 * @query: the Cypher text
 * @parameters: (nullable): `a{sv}` query parameters (see bp-bolt-values.h)
 * @extra: (nullable): `a{sv}` options for an auto-commit query: `db` s,
 *   `mode` s ("r" or "w"), `bookmarks` as, `tx_timeout` (integer, ms),
 *   `tx_metadata` a{sv}, `imp_user` s (4.4+). Must be empty inside a
 *   transaction.
 * @fetch_size: records per PULL; 0 for the default (1000), -1 for all
 * @cancellable: (nullable): a #GCancellable; cancelling interrupts the
 *   query with RESET
 * @callback: called once the server accepted the query
 * @user_data: data for @callback
 *
 * Sends RUN and the first PULL together. Inside an explicit transaction
 * (bp_bolt_connection_begin_async()) the query runs in it; otherwise it is
 * an auto-commit transaction and the connection is busy until its result
 * ends.
 */
void
bp_bolt_connection_run_async (BpBoltConnection    *self,
                              const char          *query,
                              GVariant            *parameters,
                              GVariant            *extra,
                              gint64               fetch_size,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GByteArray) msg = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBoltStream) stream = NULL;
  gboolean in_tx;

  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));
  g_return_if_fail (query != NULL);
  g_return_if_fail (parameters == NULL || g_variant_is_of_type (parameters, G_VARIANT_TYPE_VARDICT));
  g_return_if_fail (extra == NULL || g_variant_is_of_type (extra, G_VARIANT_TYPE_VARDICT));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_connection_run_async);

  if (g_task_return_error_if_cancelled (task))
    return;
  if (!check_usable (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (fetch_size == 0)
    fetch_size = DEFAULT_FETCH_SIZE;
  if (fetch_size < -1)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, _("fetch size must be -1 or positive"));
      return;
    }
  in_tx = self->tx_open;
  if (in_tx)
    {
      if (self->tx_failed)
        {
          g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED,
                                   _("The transaction has failed%s%s; roll it back"),
                                   self->last_error ? ": " : "", self->last_error ? self->last_error->message : "");
          return;
        }
      if (extra != NULL && g_variant_n_children (extra) > 0)
        {
          g_task_return_new_error (task, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                   _("Options for a query inside a transaction belong to the transaction"));
          return;
        }
    }
  else if (self->autocommit_stream != NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED,
                               _("The Bolt connection is busy with an open result; consume or discard it first"));
      return;
    }

  msg = new_message (3, MSG_RUN);
  if (strlen (query) > self->limits.max_string_size)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED, _("query text exceeds the limit of %lu bytes"),
                               (gulong) self->limits.max_string_size);
      return;
    }
  bp_bolt_pack_string (msg, query, -1);
  if (parameters != NULL)
    {
      if (!bp_bolt_pack_variant (msg, parameters, &self->limits, &error))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          return;
        }
    }
  else
    bp_bolt_pack_map_header (msg, 0);
  if (in_tx)
    bp_bolt_pack_map_header (msg, 0);
  else if (!pack_tx_extra (self, msg, extra, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (!check_message_size (self, msg, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  stream = _bp_bolt_stream_new (self, in_tx, fetch_size, &self->limits);
  queue_message (self, msg, FALSE);
  g_byte_array_set_size (msg, 0);
  append_pull (self, msg, MSG_PULL, fetch_size, -1);
  queue_message (self, msg, FALSE);

  push_request (self, REQ_RUN, task, stream, in_tx);
  watch_cancellable (self, g_queue_peek_tail (&self->requests), cancellable);
  push_request (self, REQ_PULL, NULL, stream, in_tx);
  if (in_tx)
    g_ptr_array_add (self->tx_streams, stream);
  else
    self->autocommit_stream = stream;
  flush_output (self);
}

/**
 * bp_bolt_connection_run_finish:
 * @self: a #BpBoltConnection
 * @result: the #GAsyncResult
 * @error: a #GError
 *
 * Returns: (transfer full): the result, with the first batch on its way
 */
BpBoltStream *
bp_bolt_connection_run_finish (BpBoltConnection  *self,
                               GAsyncResult      *result,
                               GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_bolt_connection_run_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Called by a stream that wants more records, or the rest discarded. */
void
_bp_bolt_connection_send_pull (BpBoltConnection *self,
                               BpBoltStream     *stream,
                               gint64            n,
                               gboolean          discard)
{
  g_autoptr(GByteArray) msg = g_byte_array_new ();
  gboolean in_tx = _bp_bolt_stream_is_in_tx (stream);

  if (self->state == BP_BOLT_STATE_DEFUNCT || self->closing)
    {
      g_autoptr(GError) error = copy_defunct_error (self);
      _bp_bolt_stream_pull_done (stream, NULL, error);
      return;
    }
  append_pull (self, msg, discard ? MSG_DISCARD : MSG_PULL, n,
               in_tx ? bp_bolt_stream_get_qid (stream) : -1);
  queue_message (self, msg, FALSE);
  push_request (self, discard ? REQ_DISCARD : REQ_PULL, NULL, stream, in_tx);
  flush_output (self);
}

/* A stream reached its end (summary, failure, abort). */
void
_bp_bolt_connection_stream_done (BpBoltConnection *self,
                                 BpBoltStream     *stream)
{
  if (self->autocommit_stream == stream)
    self->autocommit_stream = NULL;
  g_ptr_array_remove_fast (self->tx_streams, stream);
}

/* The caller dropped a stream; discard what the server still holds. */
void
_bp_bolt_connection_stream_dropped (BpBoltConnection *self,
                                    BpBoltStream     *stream,
                                    gint64            qid,
                                    gboolean          needs_discard)
{
  gboolean in_tx = _bp_bolt_stream_is_in_tx (stream);

  _bp_bolt_connection_stream_done (self, stream);
  if (!needs_discard || self->state == BP_BOLT_STATE_DEFUNCT || self->closing)
    return;
  {
    g_autoptr(GByteArray) msg = g_byte_array_new ();

    append_pull (self, msg, MSG_DISCARD, -1, in_tx ? qid : -1);
    queue_message (self, msg, FALSE);
    push_request (self, REQ_DISCARD, NULL, NULL, in_tx);
    flush_output (self);
  }
}

/* ------------------------------------------------------------------ */
/* Transactions                                                        */

/**
 * bp_bolt_connection_begin_async:
 * @self: a #BpBoltConnection
 * @extra: (nullable): `a{sv}`: `db`, `mode`, `bookmarks`, `tx_timeout`,
 *   `tx_metadata`, `imp_user`, as for bp_bolt_connection_run_async()
 * @cancellable: (nullable): a #GCancellable (checked before sending)
 * @callback: called when the server began the transaction
 * @user_data: data for @callback
 *
 * Queries may be run right away, without waiting: they are pipelined after
 * BEGIN.
 */
void
bp_bolt_connection_begin_async (BpBoltConnection    *self,
                                GVariant            *extra,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GByteArray) msg = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));
  g_return_if_fail (extra == NULL || g_variant_is_of_type (extra, G_VARIANT_TYPE_VARDICT));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_connection_begin_async);

  if (g_task_return_error_if_cancelled (task))
    return;
  if (!check_usable (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (self->tx_open || self->autocommit_stream != NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED,
                               self->tx_open ? _("A transaction is already open on this connection")
                                             : _("The Bolt connection is busy with an open result"));
      return;
    }
  msg = new_message (1, MSG_BEGIN);
  if (!pack_tx_extra (self, msg, extra, &error) ||
      !check_message_size (self, msg, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  queue_message (self, msg, FALSE);
  push_request (self, REQ_BEGIN, task, NULL, TRUE);
  self->tx_open = TRUE;
  self->tx_failed = FALSE;
  flush_output (self);
}

gboolean
bp_bolt_connection_begin_finish (BpBoltConnection  *self,
                                 GAsyncResult      *result,
                                 GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_bolt_connection_begin_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* COMMIT is only valid in TX_READY: results still open are discarded first;
 * a PULL in flight must report has_more before we know whether to. */
static void
try_send_commit (BpBoltConnection *self)
{
  g_autoptr(GPtrArray) open = NULL;

  if (self->pending_commit == NULL)
    return;
  if (self->tx_failed || self->state == BP_BOLT_STATE_FAILED)
    {
      g_autoptr(GTask) task = g_steal_pointer (&self->pending_commit);
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED,
                               _("The transaction has failed%s%s"),
                               self->last_error ? ": " : "", self->last_error ? self->last_error->message : "");
      self->tx_failed = FALSE;
      return;
    }
  for (guint i = 0; i < self->tx_streams->len; i++)
    {
      BpBoltStream *stream = g_ptr_array_index (self->tx_streams, i);
      if (_bp_bolt_stream_is_pulling (stream) && !_bp_bolt_stream_is_discarding (stream))
        return;
    }
  open = g_ptr_array_copy (self->tx_streams, NULL, NULL);
  for (guint i = 0; i < open->len; i++)
    _bp_bolt_stream_discard_internal (g_ptr_array_index (open, i));
  {
    g_autoptr(GTask) task = g_steal_pointer (&self->pending_commit);
    g_autoptr(GByteArray) msg = new_message (0, MSG_COMMIT);

    queue_message (self, msg, FALSE);
    push_request (self, REQ_COMMIT, task, NULL, TRUE);
    flush_output (self);
  }
}

/**
 * bp_bolt_connection_commit_async:
 * @self: a #BpBoltConnection
 * @cancellable: (nullable): a #GCancellable (checked before sending only: a
 *   COMMIT on the wire cannot be taken back)
 * @callback: called when the server committed
 * @user_data: data for @callback
 *
 * Commits the open transaction. Results not read to their end are discarded
 * first. If the connection breaks while the COMMIT is outstanding the error
 * starts with %BP_BOLT_COMMIT_UNKNOWN_PREFIX (class
 * %BP_BOLT_ERROR_CLASS_COMMIT_UNKNOWN): do not retry blindly.
 */
void
bp_bolt_connection_commit_async (BpBoltConnection    *self,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_connection_commit_async);

  if (g_task_return_error_if_cancelled (task))
    return;
  if (!check_usable (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (!self->tx_open || self->pending_commit != NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED, _("No transaction is open on this connection"));
      return;
    }
  if (self->tx_failed)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED,
                               _("The transaction has failed%s%s; roll it back"),
                               self->last_error ? ": " : "", self->last_error ? self->last_error->message : "");
      return;
    }
  self->tx_open = FALSE;
  self->pending_commit = g_steal_pointer (&task);
  try_send_commit (self);
}

/**
 * bp_bolt_connection_commit_finish:
 * @self: a #BpBoltConnection
 * @result: the #GAsyncResult
 * @bookmark: (out) (optional) (nullable) (transfer full): the bookmark
 * @error: a #GError
 *
 * Returns: %TRUE if committed
 */
gboolean
bp_bolt_connection_commit_finish (BpBoltConnection  *self,
                                  GAsyncResult      *result,
                                  char             **bookmark,
                                  GError           **error)
{
  g_autoptr(GError) local = NULL;
  char *value;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_bolt_connection_commit_async, FALSE);

  value = g_task_propagate_pointer (G_TASK (result), &local);
  if (local != NULL)
    {
      g_propagate_error (error, g_steal_pointer (&local));
      return FALSE;
    }
  if (bookmark != NULL)
    *bookmark = value;
  else
    g_free (value);
  return TRUE;
}

/**
 * bp_bolt_connection_rollback_async:
 * @self: a #BpBoltConnection
 * @cancellable: (nullable): a #GCancellable (checked before sending)
 * @callback: called when rolled back
 * @user_data: data for @callback
 *
 * Rolls the open transaction back (ROLLBACK; RESET while results are still
 * open; nothing if the transaction had already failed, since the
 * connection reset it). Without a transaction it succeeds at once.
 */
void
bp_bolt_connection_rollback_async (BpBoltConnection    *self,
                                   GCancellable        *cancellable,
                                   GAsyncReadyCallback  callback,
                                   gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_connection_rollback_async);

  if (g_task_return_error_if_cancelled (task))
    return;
  if (!self->tx_open)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  self->tx_open = FALSE;
  if (self->tx_failed)
    {
      self->tx_failed = FALSE;
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (!check_usable (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (self->tx_streams->len > 0)
    {
      g_autoptr(GError) rolled_back = g_error_new_literal (BP_ERROR, BP_ERROR_FAILED, _("The transaction was rolled back"));

      abort_streams (self, rolled_back);
      self->reset_queued = TRUE;
      send_simple (self, MSG_RESET, REQ_RESET, task);
      return;
    }
  send_simple (self, MSG_ROLLBACK, REQ_ROLLBACK, task);
}

gboolean
bp_bolt_connection_rollback_finish (BpBoltConnection  *self,
                                    GAsyncResult      *result,
                                    GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_bolt_connection_rollback_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * bp_bolt_connection_reset_async:
 * @self: a #BpBoltConnection
 * @cancellable: (nullable): a #GCancellable (checked before sending)
 * @callback: called when the connection is READY again
 * @user_data: data for @callback
 *
 * Sends RESET: the server stops what it is doing, queued requests are
 * IGNORED, an open transaction is rolled back and open results end with an
 * error. A FAILURE reply makes the connection DEFUNCT.
 */
void
bp_bolt_connection_reset_async (BpBoltConnection    *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) reset = NULL;

  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_connection_reset_async);

  if (g_task_return_error_if_cancelled (task))
    return;
  if (!check_usable (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  reset = g_error_new_literal (BP_ERROR, BP_ERROR_FAILED, _("The result was interrupted by RESET"));
  abort_streams (self, reset);
  self->tx_open = FALSE;
  self->tx_failed = FALSE;
  if (self->pending_commit != NULL)
    {
      g_autoptr(GTask) commit = g_steal_pointer (&self->pending_commit);
      g_task_return_new_error (commit, BP_ERROR, BP_ERROR_FAILED, _("The transaction was interrupted by RESET"));
    }
  self->reset_queued = TRUE;
  send_simple (self, MSG_RESET, REQ_RESET, task);
}

gboolean
bp_bolt_connection_reset_finish (BpBoltConnection  *self,
                                 GAsyncResult      *result,
                                 GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_bolt_connection_reset_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ------------------------------------------------------------------ */
/* ROUTE                                                               */

/**
 * bp_bolt_connection_route_async:
 * @self: a #BpBoltConnection
 * @routing: (nullable): the routing context `a{ss}`; %NULL for the one set
 *   with bp_bolt_connection_set_routing_context(), or `{address: host:port}`
 * @bookmarks: (nullable) (array zero-terminated=1): bookmarks to wait for
 * @database: (nullable): the database, %NULL for the home database
 * @imp_user: (nullable): impersonated user (4.4+)
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the routing table
 * @user_data: data for @callback
 *
 * Asks for the routing table (Bolt 4.3+, READY state only).
 */
void
bp_bolt_connection_route_async (BpBoltConnection    *self,
                                GVariant            *routing,
                                const char * const  *bookmarks,
                                const char          *database,
                                const char          *imp_user,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GByteArray) msg = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) routing_ref = NULL;
  guint n_bookmarks = bookmarks != NULL ? g_strv_length ((char **) bookmarks) : 0;

  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));
  g_return_if_fail (routing == NULL || g_variant_is_of_type (routing, G_VARIANT_TYPE ("a{ss}")));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_connection_route_async);
  if (routing != NULL)
    routing_ref = g_variant_ref_sink (routing);

  if (g_task_return_error_if_cancelled (task))
    return;
  if (!check_usable (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  if (self->tx_open || self->autocommit_stream != NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED, _("ROUTE needs an idle connection"));
      return;
    }
  if (imp_user != NULL && self->version < BP_BOLT_VERSION (4, 4))
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, _("imp_user needs Bolt 4.4 or later"));
      return;
    }

  msg = new_message (3, MSG_ROUTE);
  if (routing_ref != NULL)
    bp_bolt_pack_variant (msg, routing_ref, &self->limits, NULL);
  else if (self->routing != NULL)
    bp_bolt_pack_variant (msg, self->routing, &self->limits, NULL);
  else
    {
      bp_bolt_pack_map_header (msg, 1);
      bp_bolt_pack_string (msg, "address", -1);
      bp_bolt_pack_string (msg, self->address, -1);
    }
  bp_bolt_pack_list_header (msg, n_bookmarks);
  for (guint i = 0; i < n_bookmarks; i++)
    bp_bolt_pack_string (msg, bookmarks[i], -1);
  if (self->version >= BP_BOLT_VERSION (4, 4))
    {
      bp_bolt_pack_map_header (msg, (database != NULL) + (imp_user != NULL));
      if (database != NULL)
        {
          bp_bolt_pack_string (msg, "db", -1);
          bp_bolt_pack_string (msg, database, -1);
        }
      if (imp_user != NULL)
        {
          bp_bolt_pack_string (msg, "imp_user", -1);
          bp_bolt_pack_string (msg, imp_user, -1);
        }
    }
  else if (database != NULL)
    bp_bolt_pack_string (msg, database, -1);
  else
    bp_bolt_pack_null (msg);
  if (!check_message_size (self, msg, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  queue_message (self, msg, FALSE);
  push_request (self, REQ_ROUTE, task, NULL, FALSE);
  watch_cancellable (self, g_queue_peek_tail (&self->requests), cancellable);
  flush_output (self);
}

/**
 * bp_bolt_connection_route_finish:
 * @self: a #BpBoltConnection
 * @result: the #GAsyncResult
 * @error: a #GError
 *
 * Returns: (transfer full): the `rt` dictionary: `ttl` x, `db` s (4.4+),
 *   `servers` av of {addresses as, role s}; see bp_bolt_routing_table_new()
 */
GVariant *
bp_bolt_connection_route_finish (BpBoltConnection  *self,
                                 GAsyncResult      *result,
                                 GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_bolt_connection_route_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ------------------------------------------------------------------ */
/* Close                                                               */

/**
 * bp_bolt_connection_close_async:
 * @self: a #BpBoltConnection
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the socket is closed
 * @user_data: data for @callback
 *
 * Sends GOODBYE and closes. Queued requests fail with a connection-lost
 * error. The connection is DEFUNCT afterwards.
 */
void
bp_bolt_connection_close_async (BpBoltConnection    *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  gboolean said_hello;

  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_connection_close_async);

  if (self->close_task != NULL)
    {
      /* a close is under way */
      g_task_return_boolean (task, TRUE);
      return;
    }
  if (self->state == BP_BOLT_STATE_DISCONNECTED)
    {
      set_state (self, BP_BOLT_STATE_DEFUNCT);
      g_task_return_boolean (task, TRUE);
      return;
    }
  self->close_task = g_steal_pointer (&task);
  if (self->state == BP_BOLT_STATE_DEFUNCT)
    {
      maybe_close_iostream (self);
      return;
    }

  said_hello = self->state != BP_BOLT_STATE_CONNECTING;
  if (said_hello)
    {
      g_autoptr(GByteArray) msg = new_message (0, MSG_GOODBYE);
      queue_message (self, msg, FALSE);
    }
  set_defunct (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                  BP_BOLT_CONNECTION_LOST_PREFIX ": the connection to %s was closed by the client",
                                  self->address),
               said_hello);
}

gboolean
bp_bolt_connection_close_finish (BpBoltConnection  *self,
                                 GAsyncResult      *result,
                                 GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_bolt_connection_close_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * bp_bolt_connection_wait_idle_async:
 * @self: a #BpBoltConnection
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when no request is in flight any more
 * @user_data: data for @callback
 *
 * Waits until every queued request was answered (for example the RESET
 * that follows a FAILURE), so the connection can go back to a pool.
 */
void
bp_bolt_connection_wait_idle_async (BpBoltConnection    *self,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BP_IS_BOLT_CONNECTION (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_bolt_connection_wait_idle_async);
  if (g_queue_is_empty (&self->requests) || self->state == BP_BOLT_STATE_DEFUNCT)
    {
      g_task_return_boolean (task, self->state != BP_BOLT_STATE_DEFUNCT);
      return;
    }
  g_ptr_array_add (self->idle_waiters, g_steal_pointer (&task));
}

/**
 * bp_bolt_connection_wait_idle_finish:
 * @self: a #BpBoltConnection
 * @result: the #GAsyncResult
 * @error: a #GError
 *
 * Returns: %TRUE if the connection is still usable, %FALSE if it is defunct
 *   (no error set then) or on cancellation
 */
gboolean
bp_bolt_connection_wait_idle_finish (BpBoltConnection  *self,
                                     GAsyncResult      *result,
                                     GError           **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_bolt_connection_wait_idle_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
