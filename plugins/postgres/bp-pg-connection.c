/* bp-pg-connection.c: one non-blocking libpq connection on a GMainContext
 *
 * Nothing here blocks the main loop. The connection is driven by one fd
 * source on PQsocket() whose condition follows what libpq waits for:
 *
 *  - connect: PQconnectStartParams() + PQconnectPoll() (the socket may change
 *    between polls, so the watch is re-created when PQsocket() changes), host
 *    names resolved beforehand with GResolver into `hostaddr` so that libpq
 *    never calls getaddrinfo() itself, our own timeout on a BpClock (libpq
 *    ignores connect_timeout in this mode), then a setup round trip that
 *    fixes DateStyle ISO, IntervalStyle iso_8601 and TimeZone UTC;
 *  - queries: PQsendQueryParams() (text results), PQflush() while the
 *    output does not fit in the socket, PQconsumeInput()/PQisBusy()/
 *    PQgetResult() on readability; single-row mode always, so that the
 *    number of rows held is bounded by the consumer (max-rows for a
 *    collected Query, max-buffered-rows ahead of a stream consumer: when the
 *    consumer is slow the socket is not read and the server blocks);
 *  - pipelines, COPY FROM STDIN / TO STDOUT through PQputCopyData() /
 *    PQgetCopyData(async) with back-pressure on both sides;
 *  - LISTEN/NOTIFY: PQnotifies() after every read, as ::notification;
 *  - an idle connection keeps watching its socket: a readable socket while
 *    idle means a notification or a dead server (pg_terminate_backend, a
 *    restart), which emits ::closed.
 *
 * Cancellation (GCancellable, per-operation timeouts, a consumer closing its
 * stream) sends the server a cancel request with PQcancel(), which blocks,
 * on the shared BpWorkerPool with its own PGcancel object; the operation then
 * drains the connection and completes once the connection is idle again (or
 * closes the connection if that takes longer than the cancel grace period),
 * so a pool never gets a connection back in the middle of a result.
 *
 * Threading: every function and callback runs in the GMainContext that was
 * thread-default when the connection was created, except cancel_worker_func
 * (a worker thread).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-pg-connection.h"
#include "bp-pg-error.h"

#include <stdlib.h>
#include <string.h>

#define COPY_CHUNK_SIZE        65536
#define MAX_ADDRESSES_PER_HOST 8
/* Results handled per main-loop dispatch before yielding (a kick continues):
 * keeps the loop's latency low while a big result is converted. */
#define RESULTS_PER_DISPATCH   256
/* Statements of a pipeline converted and queued per main-loop dispatch: a
 * batch of thousands goes out over several iterations. */
#define PIPELINE_CHUNK         128
#define SETUP_SQL "SET DateStyle = 'ISO'; SET IntervalStyle = 'iso_8601'; SET TimeZone = 'UTC'"

typedef enum
{
  OP_CONNECT,
  OP_QUERY,
  OP_STREAM,
  OP_PIPELINE,
  OP_COPY_IN,
  OP_COPY_OUT,
} OpKind;

typedef enum
{
  CONNECT_RESOLVE,
  CONNECT_POLL,
  CONNECT_SETUP,
} ConnectPhase;

/* The one operation running on a connection. */
typedef struct
{
  OpKind        kind;
  guint64       serial;
  GTask        *task;                /* (owned) (nullable): main task; a stream's start task */
  GTask        *next_task;           /* (owned) (nullable): stream: pending next */
  GTask        *close_task;          /* (owned) (nullable): stream: pending close */
  GCancellable *io_cancellable;      /* (owned): our own GIO calls (resolver, streams) */
  GSource      *cancel_source;       /* (owned) (nullable): the caller's cancellable */
  GSource      *next_cancel_source;  /* (owned) (nullable): a stream next's cancellable */
  GSource      *timeout_source;      /* (owned) (nullable) */
  GSource      *grace_source;        /* (owned) (nullable) */
  GError       *error;               /* (owned) (nullable): the first error wins */
  guint         timeout_ms;
  guint         aborting : 1;
  guint         cancel_running : 1;
  guint         libpq_done : 1;      /* the last result was read (or the connection died) */
  guint         io_pending;          /* outstanding GIO calls */

  /* connect */
  ConnectPhase  phase;
  char        **host_elems;          /* (owned) (nullable) */
  char        **port_elems;          /* (owned) (nullable) */
  guint         resolve_index;
  GPtrArray    *out_hosts;           /* (owned) (nullable) */
  GPtrArray    *out_addrs;           /* (owned) (nullable) */
  GPtrArray    *out_ports;           /* (owned) (nullable) */
  char         *resolve_error;       /* (owned) (nullable) */

  /* results */
  BpPgRowDesc  *desc;                /* (owned) (nullable) */
  GVariantBuilder *rows;             /* (owned) (nullable): a collected query */
  guint         n_rows;
  guint         max_rows;
  guint64       affected;

  /* stream */
  GQueue        queue;               /* (element-type PGresult) (owned) */
  guint         next_max;
  GPtrArray    *final_batch;         /* (owned) (nullable) */

  /* pipeline */
  guint         syncs_expected;
  guint         syncs_seen;
  guint         index;
  gboolean      index_has_result;
  GArray       *affected_list;       /* (element-type guint64) (owned) (nullable) */
  int           failed_index;
  GVariant     *statements;          /* (owned) (nullable): the batch */
  GPtrArray    *converted;           /* (owned) (nullable) (element-type BpPgParams) */
  guint         n_total;             /* statements to send */
  guint         n_sent;
  gboolean      sync_each;
  gboolean      pipeline_entered;
  GSource      *feed_source;         /* (owned) (nullable): sends the next chunk */

  /* copy */
  GInputStream  *input;              /* (owned) (nullable) */
  GOutputStream *output;             /* (owned) (nullable) */
  gboolean      copying_in;
  gboolean      copying_out;
  gboolean      input_eof;
  gboolean      copy_end_pending;
  GBytes       *chunk;               /* (owned) (nullable): read, not yet queued */
  GString      *out_buf;             /* (owned) (nullable) */
  GBytes       *writing;             /* (owned) (nullable) */
} Op;

struct _BpPgConnection
{
  GObject              parent_instance;

  BpClock             *clock;             /* (owned) */
  GMainContext        *context;           /* (owned) */
  char                *conninfo;          /* (owned) */
  char                *password;          /* (owned) (nullable): never logged */
  char                *application_name;  /* (owned) (nullable) */
  guint                connect_timeout_ms;
  guint                max_buffered_rows;
  guint                cancel_grace_ms;

  PGconn              *conn;              /* (owned) (nullable) */
  BpPgConnectionState  state;
  int                  backend_pid;

  GSource             *fd_source;         /* (owned) (nullable) */
  gpointer             fd_tag;            /* (nullable) */
  int                  watch_fd;
  GIOCondition         watch_cond;
  GSource             *kick_source;       /* (owned) (nullable) */
  gboolean             flush_pending;
  PostgresPollingStatusType poll_status;

  Op                  *op;                /* (owned) (nullable) */
  guint64              op_serial;

  char                *fatal_sqlstate;    /* (owned) (nullable): last FATAL notice */
  char                *fatal_message;     /* (owned) (nullable) */
  guint                peak_buffered;
};

G_DEFINE_FINAL_TYPE (BpPgConnection, bp_pg_connection, G_TYPE_OBJECT)

enum {
  SIGNAL_NOTIFICATION,
  SIGNAL_CLOSED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

typedef struct
{
  GVariant *columns;  /* (owned) */
  GVariant *rows;     /* (owned) */
  guint64   affected;
} QueryResult;

typedef struct
{
  GPtrArray *rows;  /* (owned) */
  gboolean   done;
} NextResult;

typedef struct
{
  BpPgConnection *self;    /* (owned) */
  guint64         serial;
} CancelContext;

static void process          (BpPgConnection *self,
                              GIOCondition    revents);
static void update_watch     (BpPgConnection *self);
static void op_maybe_finish  (BpPgConnection *self);
static void op_abort         (BpPgConnection *self,
                              GError         *error);
static void kick             (BpPgConnection *self);
static void mark_closed      (BpPgConnection *self,
                              const GError   *error,
                              gboolean        emit);
static void stream_update    (BpPgConnection *self);
static void copy_in_continue (BpPgConnection *self);
static void pipeline_schedule_feed (BpPgConnection *self);

/* ---------------------------------------------------------------------- */
/* Small helpers                                                           */

static void
clear_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_source_unref (*source);
      *source = NULL;
    }
}

static void
query_result_free (QueryResult *result)
{
  g_clear_pointer (&result->columns, g_variant_unref);
  g_clear_pointer (&result->rows, g_variant_unref);
  g_free (result);
}

static void
next_result_free (NextResult *result)
{
  g_clear_pointer (&result->rows, g_ptr_array_unref);
  g_free (result);
}

static void
cancel_context_free (CancelContext *context)
{
  g_clear_object (&context->self);
  g_free (context);
}

static guint64
parse_cmd_tuples (PGresult *res)
{
  const char *text = PQcmdTuples (res);

  if (text == NULL || *text == '\0')
    return 0;
  return g_ascii_strtoull (text, NULL, 10);
}

static void
clear_queue (Op *op)
{
  PGresult *res;

  while ((res = g_queue_pop_head (&op->queue)) != NULL)
    PQclear (res);
}

static void
op_free (Op *op)
{
  g_assert (op->task == NULL && op->next_task == NULL && op->close_task == NULL);
  g_clear_object (&op->io_cancellable);
  clear_source (&op->cancel_source);
  clear_source (&op->next_cancel_source);
  clear_source (&op->timeout_source);
  clear_source (&op->grace_source);
  g_clear_error (&op->error);
  g_strfreev (op->host_elems);
  g_strfreev (op->port_elems);
  g_clear_pointer (&op->out_hosts, g_ptr_array_unref);
  g_clear_pointer (&op->out_addrs, g_ptr_array_unref);
  g_clear_pointer (&op->out_ports, g_ptr_array_unref);
  g_free (op->resolve_error);
  g_clear_pointer (&op->desc, bp_pg_row_desc_free);
  if (op->rows != NULL)
    g_variant_builder_unref (op->rows);
  clear_queue (op);
  g_clear_pointer (&op->final_batch, g_ptr_array_unref);
  g_clear_pointer (&op->affected_list, g_array_unref);
  g_clear_pointer (&op->statements, g_variant_unref);
  g_clear_pointer (&op->converted, g_ptr_array_unref);
  clear_source (&op->feed_source);
  g_clear_object (&op->input);
  g_clear_object (&op->output);
  g_clear_pointer (&op->chunk, g_bytes_unref);
  if (op->out_buf != NULL)
    g_string_free (op->out_buf, TRUE);
  g_clear_pointer (&op->writing, g_bytes_unref);
  g_free (op);
}

static void
op_set_error (Op     *op,
              GError *error)
{
  /* (transfer full) error */
  if (op->error == NULL)
    op->error = error;
  else
    g_error_free (error);
}

static void
return_error (GTask  *task,
              GError *error)
{
  /* (transfer full) task and error */
  g_task_return_error (task, error);
  g_object_unref (task);
}

/* ---------------------------------------------------------------------- */
/* GObject                                                                 */

static void
bp_pg_connection_dispose (GObject *object)
{
  BpPgConnection *self = BP_PG_CONNECTION (object);

  /* Tasks hold a reference, so the only operation that can be left is a
   * stream whose consumer went away between two pulls. */
  if (self->op != NULL)
    {
      g_assert (self->op->task == NULL && self->op->next_task == NULL &&
                self->op->close_task == NULL);
      g_clear_pointer (&self->op, op_free);
    }

  clear_source (&self->fd_source);
  self->fd_tag = NULL;
  clear_source (&self->kick_source);
  g_clear_pointer (&self->conn, PQfinish);

  G_OBJECT_CLASS (bp_pg_connection_parent_class)->dispose (object);
}

static void
bp_pg_connection_finalize (GObject *object)
{
  BpPgConnection *self = BP_PG_CONNECTION (object);

  g_clear_object (&self->clock);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_free (self->conninfo);
  if (self->password != NULL)
    {
      memset (self->password, 0, strlen (self->password));
      g_free (self->password);
    }
  g_free (self->application_name);
  g_free (self->fatal_sqlstate);
  g_free (self->fatal_message);

  G_OBJECT_CLASS (bp_pg_connection_parent_class)->finalize (object);
}

static void
bp_pg_connection_class_init (BpPgConnectionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bp_pg_connection_dispose;
  object_class->finalize = bp_pg_connection_finalize;

  /**
   * BpPgConnection::notification:
   * @self: the connection
   * @channel: the NOTIFY channel
   * @payload: the payload ("" when none)
   * @pid: the backend PID of the notifying session
   *
   * A NOTIFY on a channel this connection LISTENs to.
   */
  signals[SIGNAL_NOTIFICATION] =
    g_signal_new ("notification",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 3, G_TYPE_STRING, G_TYPE_STRING, G_TYPE_INT);

  /**
   * BpPgConnection::closed:
   * @self: the connection
   * @error: why
   *
   * The connection broke (server gone, backend terminated, protocol error).
   * Not emitted for bp_pg_connection_close() or failed connects. Emitted
   * once; the connection is then in %BP_PG_CONNECTION_STATE_CLOSED.
   */
  signals[SIGNAL_CLOSED] =
    g_signal_new ("closed",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_ERROR);
}

static void
bp_pg_connection_init (BpPgConnection *self)
{
  self->connect_timeout_ms = BP_PG_CONNECTION_DEFAULT_CONNECT_TIMEOUT_MS;
  self->max_buffered_rows = BP_PG_CONNECTION_DEFAULT_MAX_BUFFERED_ROWS;
  self->cancel_grace_ms = BP_PG_CONNECTION_DEFAULT_CANCEL_GRACE_MS;
  self->watch_fd = -1;
  self->state = BP_PG_CONNECTION_STATE_NEW;
}

/**
 * bp_pg_connection_new:
 * @conninfo: a libpq conninfo string or URI (multi-host allowed)
 * @password: (nullable): the password, from password-file/password-env;
 *   never logged, redacted from error messages
 * @clock: (nullable): the clock for timeouts; %NULL for the default clock
 *
 * Creates an unconnected connection bound to the thread-default main
 * context.
 *
 * Returns: (transfer full): a new connection
 */
BpPgConnection *
bp_pg_connection_new (const char *conninfo,
                      const char *password,
                      BpClock    *clock)
{
  BpPgConnection *self;

  g_return_val_if_fail (conninfo != NULL, NULL);
  g_return_val_if_fail (clock == NULL || BP_IS_CLOCK (clock), NULL);

  self = g_object_new (BP_TYPE_PG_CONNECTION, NULL);
  self->conninfo = g_strdup (conninfo);
  self->password = g_strdup (password);
  self->clock = g_object_ref (clock != NULL ? clock : bp_clock_get_default ());
  self->context = g_main_context_ref_thread_default ();
  return self;
}

void
bp_pg_connection_set_application_name (BpPgConnection *self,
                                       const char     *application_name)
{
  g_return_if_fail (BP_IS_PG_CONNECTION (self));
  g_free (self->application_name);
  self->application_name = g_strdup (application_name);
}

/**
 * bp_pg_connection_set_connect_timeout:
 * @self: a connection
 * @timeout_ms: overall connect timeout over all hosts, 0 for none
 */
void
bp_pg_connection_set_connect_timeout (BpPgConnection *self,
                                      guint           timeout_ms)
{
  g_return_if_fail (BP_IS_PG_CONNECTION (self));
  self->connect_timeout_ms = timeout_ms;
}

/**
 * bp_pg_connection_set_max_buffered_rows:
 * @self: a connection
 * @max_rows: how many rows a stream reads ahead of its consumer (≥ 1)
 */
void
bp_pg_connection_set_max_buffered_rows (BpPgConnection *self,
                                        guint           max_rows)
{
  g_return_if_fail (BP_IS_PG_CONNECTION (self));
  self->max_buffered_rows = MAX (max_rows, 1);
}

/**
 * bp_pg_connection_set_cancel_grace:
 * @self: a connection
 * @grace_ms: how long a cancelled operation may take to drain before the
 *   connection is closed instead
 */
void
bp_pg_connection_set_cancel_grace (BpPgConnection *self,
                                   guint           grace_ms)
{
  g_return_if_fail (BP_IS_PG_CONNECTION (self));
  self->cancel_grace_ms = grace_ms;
}

BpPgConnectionState
bp_pg_connection_get_state (BpPgConnection *self)
{
  g_return_val_if_fail (BP_IS_PG_CONNECTION (self), BP_PG_CONNECTION_STATE_CLOSED);
  return self->state;
}

/**
 * bp_pg_connection_get_transaction_status:
 * @self: a connection
 *
 * Returns: PQTRANS_IDLE when a pool may hand the connection out again;
 *   PQTRANS_INTRANS/PQTRANS_INERROR need a ROLLBACK; PQTRANS_UNKNOWN when
 *   not connected
 */
PGTransactionStatusType
bp_pg_connection_get_transaction_status (BpPgConnection *self)
{
  g_return_val_if_fail (BP_IS_PG_CONNECTION (self), PQTRANS_UNKNOWN);
  if (self->conn == NULL || self->state == BP_PG_CONNECTION_STATE_CONNECTING)
    return PQTRANS_UNKNOWN;
  return PQtransactionStatus (self->conn);
}

int
bp_pg_connection_get_backend_pid (BpPgConnection *self)
{
  g_return_val_if_fail (BP_IS_PG_CONNECTION (self), 0);
  return self->backend_pid;
}

/**
 * bp_pg_connection_get_buffered_rows:
 * @self: a connection
 *
 * Returns: rows of the running stream read but not yet taken by the consumer
 */
guint
bp_pg_connection_get_buffered_rows (BpPgConnection *self)
{
  g_return_val_if_fail (BP_IS_PG_CONNECTION (self), 0);
  if (self->op == NULL || self->op->kind != OP_STREAM)
    return 0;
  return self->op->queue.length;
}

/**
 * bp_pg_connection_get_peak_buffered_rows:
 * @self: a connection
 *
 * Returns: the most rows ever buffered ahead of a stream consumer
 */
guint
bp_pg_connection_get_peak_buffered_rows (BpPgConnection *self)
{
  g_return_val_if_fail (BP_IS_PG_CONNECTION (self), 0);
  return self->peak_buffered;
}

/**
 * bp_pg_connection_close:
 * @self: a connection
 *
 * Closes the connection (PQfinish, which does not block on a non-blocking
 * connection). A running operation fails with %BP_ERROR_UNAVAILABLE.
 * ::closed is not emitted.
 */
void
bp_pg_connection_close (BpPgConnection *self)
{
  g_autoptr(GError) error = NULL;

  g_return_if_fail (BP_IS_PG_CONNECTION (self));

  if (self->state == BP_PG_CONNECTION_STATE_CLOSED)
    return;
  error = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "SQLSTATE 08003: connection closed");
  if (self->op != NULL)
    g_cancellable_cancel (self->op->io_cancellable);
  mark_closed (self, error, FALSE);
}

/* ---------------------------------------------------------------------- */
/* The fd watch                                                            */

typedef struct
{
  GSource source;
  gpointer tag;
} FdSource;

typedef gboolean (*FdSourceFunc) (GIOCondition revents,
                                  gpointer     user_data);

static gboolean
fd_source_dispatch (GSource     *source,
                    GSourceFunc  callback,
                    gpointer     user_data)
{
  FdSource *fd_source = (FdSource *) source;
  GIOCondition revents = 0;

  if (fd_source->tag != NULL)
    revents = g_source_query_unix_fd (source, fd_source->tag);
  return ((FdSourceFunc) (void (*) (void)) callback) (revents, user_data);
}

static GSourceFuncs fd_source_funcs = {
  NULL, NULL, fd_source_dispatch, NULL, NULL, NULL,
};

/* Main context. */
static gboolean
on_fd_ready (GIOCondition revents,
             gpointer     user_data)
{
  BpPgConnection *self = user_data;

  process (self, revents);
  return G_SOURCE_CONTINUE;
}

static gboolean
op_paused (BpPgConnection *self,
           Op             *op)
{
  if (op == NULL || op->aborting)
    return FALSE;
  if (op->kind == OP_STREAM && op->queue.length >= self->max_buffered_rows)
    return TRUE;
  if (op->copying_out && op->io_pending > 0)
    return TRUE;
  return FALSE;
}

static void
update_watch (BpPgConnection *self)
{
  GIOCondition want = 0;
  int fd = self->conn != NULL ? PQsocket (self->conn) : -1;

  if (self->state == BP_PG_CONNECTION_STATE_CLOSED || fd < 0)
    {
      clear_source (&self->fd_source);
      self->fd_tag = NULL;
      self->watch_fd = -1;
      return;
    }

  if (self->state == BP_PG_CONNECTION_STATE_CONNECTING &&
      self->op != NULL && self->op->phase == CONNECT_POLL)
    want = self->poll_status == PGRES_POLLING_READING ? G_IO_IN : G_IO_OUT;
  else
    {
      if (!op_paused (self, self->op))
        want |= G_IO_IN;
      if (self->flush_pending)
        want |= G_IO_OUT;
    }

  if (self->fd_source != NULL && fd != self->watch_fd)
    {
      clear_source (&self->fd_source);
      self->fd_tag = NULL;
    }
  if (self->fd_source == NULL)
    {
      self->fd_source = g_source_new (&fd_source_funcs, sizeof (FdSource));
      g_source_set_callback (self->fd_source, (GSourceFunc) (void (*) (void)) on_fd_ready, self, NULL);
      g_source_set_static_name (self->fd_source, "[bp-postgres] libpq socket");
      g_source_attach (self->fd_source, self->context);
      self->watch_fd = fd;
      self->watch_cond = 0;
    }

  /* An fd with no events would still report POLLHUP: remove it instead. */
  if (want == 0)
    {
      if (self->fd_tag != NULL)
        g_source_remove_unix_fd (self->fd_source, self->fd_tag);
      self->fd_tag = NULL;
      ((FdSource *) self->fd_source)->tag = NULL;
    }
  else if (self->fd_tag == NULL)
    {
      self->fd_tag = g_source_add_unix_fd (self->fd_source, fd, want);
      ((FdSource *) self->fd_source)->tag = self->fd_tag;
    }
  else if (want != self->watch_cond)
    g_source_modify_unix_fd (self->fd_source, self->fd_tag, want);
  self->watch_cond = want;
}

/* Main context. */
static gboolean
on_kick (gpointer user_data)
{
  BpPgConnection *self = user_data;

  g_clear_pointer (&self->kick_source, g_source_unref);
  process (self, 0);
  return G_SOURCE_REMOVE;
}

/* Processes what libpq already holds without waiting for the socket (rows
 * buffered while a consumer was slow never make the socket readable). */
static void
kick (BpPgConnection *self)
{
  if (self->kick_source != NULL)
    return;
  self->kick_source = g_idle_source_new ();
  g_source_set_priority (self->kick_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (self->kick_source, on_kick, self, NULL);
  g_source_set_static_name (self->kick_source, "[bp-postgres] kick");
  g_source_attach (self->kick_source, self->context);
}

/* ---------------------------------------------------------------------- */
/* Notices, notifications, closing                                         */

static void
notice_receiver (void           *arg,
                 const PGresult *res)
{
  BpPgConnection *self = arg;
  const char *severity = PQresultErrorField (res, PG_DIAG_SEVERITY_NONLOCALIZED);
  const char *sqlstate = PQresultErrorField (res, PG_DIAG_SQLSTATE);
  const char *primary = PQresultErrorField (res, PG_DIAG_MESSAGE_PRIMARY);

  if (severity != NULL && (g_str_equal (severity, "FATAL") || g_str_equal (severity, "PANIC")))
    {
      g_free (self->fatal_sqlstate);
      g_free (self->fatal_message);
      self->fatal_sqlstate = g_strdup (sqlstate);
      self->fatal_message = g_strdup (primary);
    }
  g_debug ("server %s: %s%s%s", severity != NULL ? severity : "NOTICE",
           sqlstate != NULL ? sqlstate : "", sqlstate != NULL ? " " : "",
           primary != NULL ? primary : "");
}

static void
deliver_notifications (BpPgConnection *self)
{
  PGnotify *notify;

  while (self->conn != NULL && (notify = PQnotifies (self->conn)) != NULL)
    {
      g_autofree char *channel = g_utf8_make_valid (notify->relname, -1);
      g_autofree char *payload = g_utf8_make_valid (notify->extra != NULL ? notify->extra : "", -1);
      int pid = notify->be_pid;

      PQfreemem (notify);
      g_signal_emit (self, signals[SIGNAL_NOTIFICATION], 0, channel, payload, pid);
    }
}

/* libpq 15 drops the server's error result when EOF follows it (the FATAL
 * of pg_terminate_backend during a query) and keeps only the text; with
 * PQERRORS_VERBOSE that text reads "FATAL:  57P01: terminating …". */
static gboolean
parse_fatal_text (const char  *text,
                  char       **out_sqlstate,
                  char       **out_message)
{
  const char *p = text != NULL ? strstr (text, "FATAL:  ") : NULL;
  const char *end;

  if (p == NULL)
    return FALSE;
  p += strlen ("FATAL:  ");
  for (int i = 0; i < 5; i++)
    if (!(g_ascii_isdigit (p[i]) || g_ascii_isupper (p[i])))
      return FALSE;
  if (p[5] != ':' || p[6] != ' ')
    return FALSE;
  end = strchr (p + 7, '\n');
  *out_sqlstate = g_strndup (p, 5);
  *out_message = end != NULL ? g_strndup (p + 7, end - (p + 7)) : g_strdup (p + 7);
  return TRUE;
}

static GError *
make_lost_error (BpPgConnection *self)
{
  g_autofree char *sqlstate = NULL;
  g_autofree char *message = NULL;

  if (self->fatal_sqlstate != NULL)
    return g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "SQLSTATE %s: %s",
                        self->fatal_sqlstate,
                        self->fatal_message != NULL ? self->fatal_message : "connection terminated");
  if (self->conn != NULL && parse_fatal_text (PQerrorMessage (self->conn), &sqlstate, &message))
    return g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "SQLSTATE %s: %s", sqlstate, message);
  return bp_pg_error_new_from_conn (self->conn, "08006", self->password);
}

static void
mark_closed (BpPgConnection *self,
             const GError   *error,
             gboolean        emit)
{
  g_autoptr(BpPgConnection) hold = g_object_ref (self);
  BpPgConnectionState old_state = self->state;

  if (old_state == BP_PG_CONNECTION_STATE_CLOSED)
    return;

  self->state = BP_PG_CONNECTION_STATE_CLOSED;
  clear_source (&self->kick_source);
  g_clear_pointer (&self->conn, PQfinish);
  self->flush_pending = FALSE;
  update_watch (self);

  if (self->op != NULL)
    {
      Op *op = self->op;

      op->libpq_done = TRUE;
      op->copying_in = FALSE;
      op->copying_out = FALSE;
      op->copy_end_pending = FALSE;
      op_set_error (op, g_error_copy (error));
      g_cancellable_cancel (op->io_cancellable);
      op_maybe_finish (self);
    }

  if (emit && old_state != BP_PG_CONNECTION_STATE_CONNECTING)
    g_signal_emit (self, signals[SIGNAL_CLOSED], 0, error);
}

static void
connection_lost (BpPgConnection *self)
{
  g_autoptr(GError) error = make_lost_error (self);

  g_debug ("connection lost: %s", error->message);
  mark_closed (self, error, TRUE);
}

/* ---------------------------------------------------------------------- */
/* Operation lifecycle                                                     */

static gboolean
on_caller_cancelled (GCancellable *cancellable,
                     gpointer      user_data)
{
  BpPgConnection *self = user_data;

  op_abort (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                       "Operation was cancelled"));
  return G_SOURCE_REMOVE;
}

static GSource *
watch_cancellable (BpPgConnection *self,
                   GCancellable   *cancellable)
{
  GSource *source;

  if (cancellable == NULL)
    return NULL;
  source = g_cancellable_source_new (cancellable);
  g_source_set_callback (source, (GSourceFunc) (void (*) (void)) on_caller_cancelled, self, NULL);
  g_source_set_static_name (source, "[bp-postgres] cancellable");
  g_source_attach (source, self->context);
  return source;
}

static gboolean
on_op_timeout (gpointer user_data)
{
  BpPgConnection *self = user_data;
  Op *op = self->op;

  if (op == NULL)
    return G_SOURCE_REMOVE;
  clear_source (&op->timeout_source);
  if (op->kind == OP_CONNECT)
    op_abort (self, g_error_new (BP_ERROR, BP_ERROR_TIMEOUT,
                                 "SQLSTATE 08001: connection timed out after %u ms",
                                 op->timeout_ms));
  else
    op_abort (self, g_error_new (BP_ERROR, BP_ERROR_TIMEOUT,
                                 "timed out after %u ms", op->timeout_ms));
  return G_SOURCE_REMOVE;
}

static Op *
op_begin (BpPgConnection *self,
          OpKind          kind,
          GTask          *task,
          guint           timeout_ms,
          GCancellable   *cancellable)
{
  Op *op = g_new0 (Op, 1);

  g_assert (self->op == NULL);

  op->kind = kind;
  op->serial = ++self->op_serial;
  op->task = g_object_ref (task);
  op->io_cancellable = g_cancellable_new ();
  op->failed_index = -1;
  op->timeout_ms = timeout_ms;
  g_queue_init (&op->queue);
  self->op = op;
  if (kind != OP_CONNECT)
    self->state = BP_PG_CONNECTION_STATE_BUSY;

  op->cancel_source = watch_cancellable (self, cancellable);
  if (timeout_ms > 0)
    {
      op->timeout_source = bp_clock_timeout_source_new (self->clock, (gint64) timeout_ms * 1000);
      g_source_set_callback (op->timeout_source, on_op_timeout, self, NULL);
      g_source_set_static_name (op->timeout_source, "[bp-postgres] timeout");
      g_source_attach (op->timeout_source, self->context);
    }
  return op;
}

/* Checks that an operation may start; returns the error otherwise. */
static gboolean
check_idle (BpPgConnection  *self,
            GError         **error)
{
  switch (self->state)
    {
    case BP_PG_CONNECTION_STATE_IDLE:
      return TRUE;
    case BP_PG_CONNECTION_STATE_CLOSED:
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE, "SQLSTATE 08003: connection is closed");
      return FALSE;
    case BP_PG_CONNECTION_STATE_NEW:
    case BP_PG_CONNECTION_STATE_CONNECTING:
      g_set_error (error, BP_ERROR, BP_ERROR_FAILED, "connection is not connected yet");
      return FALSE;
    case BP_PG_CONNECTION_STATE_BUSY:
    default:
      g_set_error (error, BP_ERROR, BP_ERROR_FAILED, "connection is busy with another operation");
      return FALSE;
    }
}

static void
flush_output (BpPgConnection *self)
{
  int r = PQflush (self->conn);

  if (r < 0)
    {
      connection_lost (self);
      return;
    }
  self->flush_pending = (r == 1);
}

/* Main context: PQcancel() is done (or could not be queued). */
static void
cancel_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  CancelContext *context = user_data;
  BpPgConnection *self = context->self;
  g_autoptr(GError) error = NULL;

  /* A full worker queue means no cancel request: the cancel grace period
   * then closes the connection instead. */
  if (bp_worker_pool_run_finish (BP_WORKER_POOL (object), result, &error) == NULL)
    g_debug ("cancel request not sent: %s", error != NULL ? error->message : "?");
  if (self->op != NULL && self->op->serial == context->serial)
    {
      self->op->cancel_running = FALSE;
      op_maybe_finish (self);
    }
  cancel_context_free (context);
}

/* Worker thread: PQcancel() blocks (connect + send + wait for close), but is
 * thread-safe with its own PGcancel object. */
static gpointer
cancel_worker_func (gpointer       data,
                    GCancellable  *cancellable,
                    GError       **error)
{
  PGcancel *cancel = data;
  char errbuf[256] = "";

  if (!PQcancel (cancel, errbuf, sizeof errbuf))
    g_debug ("cancel request failed: %s", errbuf);
  return GINT_TO_POINTER (TRUE);
}

static void
start_server_cancel (BpPgConnection *self,
                     Op             *op)
{
  CancelContext *context;
  PGcancel *cancel;

  if (op->cancel_running || self->conn == NULL)
    return;
  cancel = PQgetCancel (self->conn);
  if (cancel == NULL)
    return;

  context = g_new0 (CancelContext, 1);
  context->self = g_object_ref (self);
  context->serial = op->serial;
  op->cancel_running = TRUE;
  bp_worker_pool_run_async (bp_worker_pool_get_default (), cancel_worker_func,
                            cancel, (GDestroyNotify) PQfreeCancel, NULL, NULL,
                            cancel_done_cb, context);
}

static gboolean
on_cancel_grace_expired (gpointer user_data)
{
  BpPgConnection *self = user_data;
  g_autoptr(GError) error = NULL;

  if (self->op != NULL)
    clear_source (&self->op->grace_source);
  error = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                       "SQLSTATE 08006: connection closed: the cancelled operation did not end within %u ms",
                       self->cancel_grace_ms);
  mark_closed (self, error, TRUE);
  return G_SOURCE_REMOVE;
}

static void
connect_fail (BpPgConnection *self)
{
  Op *op = self->op;

  clear_source (&self->kick_source);
  g_clear_pointer (&self->conn, PQfinish);
  self->state = BP_PG_CONNECTION_STATE_CLOSED;
  self->flush_pending = FALSE;
  update_watch (self);
  op->libpq_done = TRUE;
  g_cancellable_cancel (op->io_cancellable);
  op_maybe_finish (self);
}

/* Stops the running operation with @error (transfer full, nullable): the
 * server is asked to cancel, the rest of the result is drained and
 * discarded, and the operation completes once the connection is idle. */
static void
op_abort (BpPgConnection *self,
          GError         *error)
{
  g_autoptr(BpPgConnection) hold = g_object_ref (self);
  Op *op = self->op;

  if (op == NULL)
    {
      g_clear_error (&error);
      return;
    }
  if (error != NULL)
    op_set_error (op, error);
  if (op->aborting)
    return;
  op->aborting = TRUE;
  g_cancellable_cancel (op->io_cancellable);

  if (op->kind == OP_CONNECT)
    {
      connect_fail (self);
      return;
    }

  clear_queue (op);
  if (op->kind == OP_PIPELINE && op->n_sent < op->n_total && self->conn != NULL)
    {
      /* Stop feeding. Nothing sent yet: nothing to wait for. Part of it:
       * close the pipeline with a sync (one-sync: the implicit transaction
       * is rolled back by the error the cancel causes) and wait for what
       * was sent. */
      clear_source (&op->feed_source);
      g_debug ("pipeline aborted with %u of %u statements converted, %u sent",
               op->converted != NULL ? op->converted->len : op->n_total, op->n_total, op->n_sent);
      if (!op->pipeline_entered)
        op->libpq_done = TRUE;
      else
        {
          if (!op->sync_each && !PQpipelineSync (self->conn))
            g_debug ("PQpipelineSync: %s", PQerrorMessage (self->conn));
          op->syncs_expected = op->sync_each ? op->n_sent : 1;
          flush_output (self);
        }
      op->n_total = op->n_sent;
    }
  if (self->conn != NULL && !op->libpq_done)
    {
      if (!op->copying_in)
        start_server_cancel (self, op);
      if (self->cancel_grace_ms > 0 && op->grace_source == NULL)
        {
          op->grace_source = bp_clock_timeout_source_new (self->clock,
                                                          (gint64) self->cancel_grace_ms * 1000);
          g_source_set_callback (op->grace_source, on_cancel_grace_expired, self, NULL);
          g_source_set_static_name (op->grace_source, "[bp-postgres] cancel grace");
          g_source_attach (op->grace_source, self->context);
        }
    }
  if (self->conn != NULL)
    {
      update_watch (self);
      kick (self);
    }
  else
    op_maybe_finish (self);
}

/* Completes the running operation and returns the connection to idle (or
 * leaves it closed). Tasks are returned last: their callbacks may start the
 * next operation right away. */
static void
op_finish (BpPgConnection *self)
{
  g_autoptr(BpPgConnection) hold = g_object_ref (self);
  Op *op = g_steal_pointer (&self->op);
  GTask *task = g_steal_pointer (&op->task);
  GTask *next_task = g_steal_pointer (&op->next_task);
  GTask *close_task = g_steal_pointer (&op->close_task);
  GError *error = g_steal_pointer (&op->error);

  clear_source (&op->cancel_source);
  clear_source (&op->next_cancel_source);
  clear_source (&op->timeout_source);
  clear_source (&op->grace_source);

  if (op->kind == OP_CONNECT && error != NULL && self->state != BP_PG_CONNECTION_STATE_CLOSED)
    {
      clear_source (&self->kick_source);
      g_clear_pointer (&self->conn, PQfinish);
      self->state = BP_PG_CONNECTION_STATE_CLOSED;
    }
  if (self->conn != NULL && self->state != BP_PG_CONNECTION_STATE_CLOSED)
    {
      self->state = BP_PG_CONNECTION_STATE_IDLE;
      if (op->kind == OP_CONNECT)
        self->backend_pid = PQbackendPID (self->conn);
    }

  if (self->state == BP_PG_CONNECTION_STATE_CLOSED && error == NULL &&
      op->kind != OP_STREAM)
    error = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "SQLSTATE 08003: connection closed");
  update_watch (self);

  switch (op->kind)
    {
    case OP_CONNECT:
      if (error != NULL)
        return_error (task, g_steal_pointer (&error));
      else
        {
          g_task_return_boolean (task, TRUE);
          g_object_unref (task);
        }
      break;

    case OP_QUERY:
      if (error != NULL)
        return_error (task, g_steal_pointer (&error));
      else
        {
          QueryResult *result = g_new0 (QueryResult, 1);

          if (op->desc != NULL)
            result->columns = g_variant_ref_sink (bp_pg_row_desc_to_columns (op->desc));
          else
            result->columns = g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE ("(ss)"), NULL, 0));
          result->rows = g_variant_ref_sink (g_variant_builder_end (op->rows));
          g_clear_pointer (&op->rows, g_variant_builder_unref);
          result->affected = op->affected;
          g_task_return_pointer (task, result, (GDestroyNotify) query_result_free);
          g_object_unref (task);
        }
      break;

    case OP_STREAM:
      if (close_task != NULL)
        {
          g_task_return_boolean (close_task, TRUE);
          g_clear_object (&close_task);
        }
      if (error == NULL && self->state == BP_PG_CONNECTION_STATE_CLOSED && op->final_batch == NULL)
        error = g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "SQLSTATE 08003: connection closed");
      if (task != NULL)
        {
          if (error != NULL)
            return_error (task, g_error_copy (error));
          else
            {
              g_task_return_pointer (task,
                                     op->desc != NULL ? bp_pg_row_desc_copy (op->desc) : bp_pg_row_desc_new (NULL),
                                     (GDestroyNotify) bp_pg_row_desc_free);
              g_object_unref (task);
            }
        }
      if (next_task != NULL)
        {
          if (op->final_batch != NULL)
            {
              NextResult *result = g_new0 (NextResult, 1);

              result->rows = g_steal_pointer (&op->final_batch);
              result->done = TRUE;
              g_task_return_pointer (next_task, result, (GDestroyNotify) next_result_free);
              g_object_unref (next_task);
            }
          else if (error != NULL)
            return_error (next_task, g_error_copy (error));
          else
            {
              NextResult *result = g_new0 (NextResult, 1);

              result->rows = g_ptr_array_new_with_free_func ((GDestroyNotify) PQclear);
              result->done = TRUE;
              g_task_return_pointer (next_task, result, (GDestroyNotify) next_result_free);
              g_object_unref (next_task);
            }
        }
      g_clear_error (&error);
      break;

    case OP_PIPELINE:
      if (error != NULL)
        {
          g_task_set_task_data (task, GINT_TO_POINTER (op->failed_index + 1), NULL);
          return_error (task, g_steal_pointer (&error));
        }
      else
        {
          g_auto(GVariantBuilder) builder = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("at"));

          for (guint i = 0; i < op->affected_list->len; i++)
            g_variant_builder_add (&builder, "t", g_array_index (op->affected_list, guint64, i));
          g_task_return_pointer (task, g_variant_ref_sink (g_variant_builder_end (&builder)),
                                 (GDestroyNotify) g_variant_unref);
          g_object_unref (task);
        }
      break;

    case OP_COPY_IN:
    case OP_COPY_OUT:
      if (error != NULL)
        return_error (task, g_steal_pointer (&error));
      else
        {
          g_task_return_pointer (task, g_memdup2 (&op->affected, sizeof (guint64)), g_free);
          g_object_unref (task);
        }
      break;

    default:
      g_assert_not_reached ();
    }

  g_clear_error (&error);
  op_free (op);
}

static void
op_maybe_finish (BpPgConnection *self)
{
  Op *op = self->op;

  if (op == NULL)
    return;
  if (op->kind == OP_STREAM)
    {
      stream_update (self);
      return;
    }
  if (op->io_pending > 0 || !op->libpq_done)
    return;
  if (op->cancel_running && self->conn != NULL)
    return;
  op_finish (self);
}

/* ---------------------------------------------------------------------- */
/* Result handling                                                         */

static void
handle_copy_result (BpPgConnection *self,
                    Op             *op,
                    PGresult       *res)
{
  ExecStatusType status = PQresultStatus (res);

  if (status == PGRES_COPY_IN)
    {
      if (op->kind != OP_COPY_IN)
        op_set_error (op, g_error_new (BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                       "sql: COPY … FROM STDIN is only possible with CopyFrom"));
      op->copying_in = TRUE;
      if (op->kind != OP_COPY_IN || op->aborting)
        op->copy_end_pending = TRUE;
    }
  else
    {
      if (op->kind != OP_COPY_OUT)
        op_set_error (op, g_error_new (BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                       "sql: COPY … TO STDOUT is only possible with CopyTo"));
      op->copying_out = TRUE;
      if (op->out_buf == NULL)
        op->out_buf = g_string_new (NULL);
    }
}

static void
handle_result (BpPgConnection *self,
               Op             *op,
               PGresult       *res)
{
  ExecStatusType status;

  if (res == NULL)
    {
      if (op->kind == OP_PIPELINE)
        {
          if (op->index_has_result)
            {
              op->index++;
              op->index_has_result = FALSE;
            }
          return;
        }
      op->libpq_done = TRUE;
      return;
    }

  status = PQresultStatus (res);

  if (status == PGRES_COPY_IN || status == PGRES_COPY_OUT || status == PGRES_COPY_BOTH)
    {
      if (status == PGRES_COPY_BOTH)
        {
          /* Replication protocol: nothing to do with it here. */
          op_set_error (op, g_error_new (BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                         "sql: replication commands are not supported"));
          PQclear (res);
          mark_closed (self, op->error, TRUE);
          return;
        }
      handle_copy_result (self, op, res);
      PQclear (res);
      return;
    }

  if (status == PGRES_FATAL_ERROR || status == PGRES_BAD_RESPONSE || status == PGRES_NONFATAL_ERROR)
    {
      GError *error = bp_pg_error_new_from_result (res, self->conn);

      if (op->kind == OP_PIPELINE && op->failed_index < 0 && op->error == NULL)
        {
          GError *indexed = g_error_new (error->domain, error->code, "statement %u: %s",
                                         op->index, error->message);
          g_error_free (error);
          error = indexed;
          op->failed_index = (int) op->index;
        }
      if (op->kind == OP_PIPELINE)
        op->index_has_result = TRUE;
      op_set_error (op, error);
      PQclear (res);
      return;
    }

  switch (op->kind)
    {
    case OP_CONNECT:
      break;

    case OP_QUERY:
      if (status == PGRES_SINGLE_TUPLE || status == PGRES_TUPLES_OK)
        {
          if (op->desc == NULL)
            op->desc = bp_pg_row_desc_new (res);
          if (status == PGRES_TUPLES_OK)
            op->affected = parse_cmd_tuples (res);
          for (int r = 0; r < PQntuples (res) && !op->aborting && op->error == NULL; r++)
            {
              GError *local_error = NULL;
              GVariant *row;

              if (op->max_rows > 0 && op->n_rows >= op->max_rows)
                {
                  op_abort (self, g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                                               "max-rows: the result has more than %u rows",
                                               op->max_rows));
                  break;
                }
              row = bp_pg_row_to_variant (op->desc, res, r, &local_error);
              if (row == NULL)
                {
                  op_abort (self, local_error);
                  break;
                }
              g_variant_builder_add_value (op->rows, row);
              op->n_rows++;
            }
        }
      else if (status == PGRES_COMMAND_OK)
        op->affected = parse_cmd_tuples (res);
      break;

    case OP_STREAM:
      if (op->desc == NULL &&
          (status == PGRES_SINGLE_TUPLE || status == PGRES_TUPLES_OK ||
           status == PGRES_COMMAND_OK || status == PGRES_EMPTY_QUERY))
        op->desc = bp_pg_row_desc_new (res);
      if (status == PGRES_SINGLE_TUPLE && !op->aborting && op->error == NULL)
        {
          g_queue_push_tail (&op->queue, res);
          self->peak_buffered = MAX (self->peak_buffered, op->queue.length);
          return;  /* the queue owns it */
        }
      if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
        op->affected = parse_cmd_tuples (res);
      break;

    case OP_PIPELINE:
      if (status == PGRES_PIPELINE_SYNC)
        {
          op->syncs_seen++;
          if (op->syncs_seen == op->syncs_expected)
            {
              if (!PQexitPipelineMode (self->conn))
                g_debug ("PQexitPipelineMode: %s", PQerrorMessage (self->conn));
              op->libpq_done = TRUE;
            }
          break;
        }
      op->index_has_result = TRUE;
      if ((status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) &&
          op->index < op->affected_list->len)
        g_array_index (op->affected_list, guint64, op->index) = parse_cmd_tuples (res);
      break;

    case OP_COPY_IN:
    case OP_COPY_OUT:
      if (status == PGRES_COMMAND_OK)
        op->affected = parse_cmd_tuples (res);
      break;

    default:
      g_assert_not_reached ();
    }

  PQclear (res);
}

/* ---------------------------------------------------------------------- */
/* COPY                                                                    */

static void copy_in_read (BpPgConnection *self, Op *op);

/* Main context: a chunk of COPY input was read. */
static void
copy_in_read_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(BpPgConnection) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (object), result, &error);
  Op *op = self->op;

  g_assert (op != NULL && op->kind == OP_COPY_IN && op->io_pending > 0);
  op->io_pending--;

  if (bytes == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        op_abort (self, NULL);
      else
        op_abort (self, g_error_new (BP_ERROR, BP_ERROR_FAILED, "reading COPY input: %s",
                                     error->message));
    }
  else if (g_bytes_get_size (bytes) == 0)
    {
      op->input_eof = TRUE;
      op->copy_end_pending = TRUE;
    }
  else
    op->chunk = g_steal_pointer (&bytes);

  process (self, 0);
}

static void
copy_in_read (BpPgConnection *self,
              Op             *op)
{
  op->io_pending++;
  g_input_stream_read_bytes_async (op->input, COPY_CHUNK_SIZE, G_PRIORITY_DEFAULT,
                                   op->io_cancellable, copy_in_read_cb, g_object_ref (self));
}

static void
copy_in_continue (BpPgConnection *self)
{
  Op *op = self->op;

  while (self->conn != NULL && op->copying_in)
    {
      if (op->chunk != NULL && !op->aborting)
        {
          gsize len;
          const char *data = g_bytes_get_data (op->chunk, &len);
          int r = PQputCopyData (self->conn, data, (int) len);

          if (r < 0)
            {
              connection_lost (self);
              return;
            }
          if (r == 0)
            {
              self->flush_pending = TRUE;  /* wait for writability, then retry */
              return;
            }
          g_clear_pointer (&op->chunk, g_bytes_unref);
          flush_output (self);
          continue;
        }
      g_clear_pointer (&op->chunk, g_bytes_unref);

      if (op->aborting && op->io_pending == 0)
        op->copy_end_pending = TRUE;

      if (op->copy_end_pending)
        {
          int r = PQputCopyEnd (self->conn, op->aborting || op->error != NULL ? "aborted by the client" : NULL);

          if (r < 0)
            {
              connection_lost (self);
              return;
            }
          if (r == 0)
            {
              self->flush_pending = TRUE;
              return;
            }
          op->copy_end_pending = FALSE;
          op->copying_in = FALSE;
          flush_output (self);
          return;
        }

      /* Back-pressure: the next chunk is read only once libpq sent the last. */
      if (!self->flush_pending && op->io_pending == 0 && !op->input_eof && !op->aborting)
        copy_in_read (self, op);
      return;
    }
}

/* Main context: a chunk of COPY output was written. */
static void
copy_out_write_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(BpPgConnection) self = user_data;
  g_autoptr(GError) error = NULL;
  Op *op = self->op;

  g_assert (op != NULL && op->io_pending > 0);
  op->io_pending--;
  g_clear_pointer (&op->writing, g_bytes_unref);

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        op_abort (self, NULL);
      else
        op_abort (self, g_error_new (BP_ERROR, BP_ERROR_FAILED, "writing COPY output: %s",
                                     error->message));
    }
  if (self->conn != NULL)
    process (self, 0);
  else
    op_maybe_finish (self);
}

static void
copy_out_write (BpPgConnection *self,
                Op             *op)
{
  gsize len;
  const void *data;

  op->writing = g_string_free_to_bytes (g_steal_pointer (&op->out_buf));
  op->out_buf = g_string_new (NULL);
  data = g_bytes_get_data (op->writing, &len);
  op->io_pending++;
  g_output_stream_write_all_async (op->output, data, len, G_PRIORITY_DEFAULT,
                                   op->io_cancellable, copy_out_write_cb, g_object_ref (self));
}

/* Returns TRUE when the result loop may go on. */
static gboolean
copy_out_step (BpPgConnection *self,
               Op             *op)
{
  for (;;)
    {
      char *buf = NULL;
      int n;

      if (op->io_pending > 0)
        return FALSE;

      n = PQgetCopyData (self->conn, &buf, 1);
      if (n > 0)
        {
          if (!op->aborting && op->output != NULL)
            g_string_append_len (op->out_buf, buf, n);
          PQfreemem (buf);
          if (op->out_buf->len >= COPY_CHUNK_SIZE)
            {
              copy_out_write (self, op);
              return FALSE;
            }
          continue;
        }
      if (n == 0)
        {
          /* Nothing more in libpq's buffer: hand over what we have. */
          if (op->out_buf->len > 0 && op->output != NULL && !op->aborting)
            copy_out_write (self, op);
          return FALSE;
        }
      op->copying_out = FALSE;
      if (n == -2)
        op_set_error (op, bp_pg_error_new_from_conn (self->conn, "08006", self->password));
      if (op->out_buf->len > 0 && op->output != NULL && !op->aborting)
        copy_out_write (self, op);
      return TRUE;
    }
}

/* ---------------------------------------------------------------------- */
/* The pump                                                                */

#define OP_IS_CURRENT(self, op, serial) ((self)->op != NULL && (self)->op == (op) && (op)->serial == (serial))

static void
op_step (BpPgConnection *self)
{
  Op *op = self->op;
  guint64 serial = op->serial;
  guint budget = RESULTS_PER_DISPATCH;

  for (;;)
    {
      PGresult *res;

      if (!OP_IS_CURRENT (self, op, serial) || self->conn == NULL)
        return;
      if (op->copying_in)
        {
          copy_in_continue (self);
          if (!OP_IS_CURRENT (self, op, serial) || self->conn == NULL || op->copying_in)
            break;
          continue;
        }
      if (op->copying_out)
        {
          if (!copy_out_step (self, op))
            break;
          continue;
        }
      if (op->libpq_done || op_paused (self, op))
        break;
      if (op->kind == OP_PIPELINE && op->n_sent < op->n_total)
        {
          /* Results are read once the whole batch is out (libpq buffers
           * what arrives meanwhile: PQconsumeInput runs on readability). */
          if (!self->flush_pending)
            pipeline_schedule_feed (self);
          break;
        }
      if (PQisBusy (self->conn))
        break;
      if (budget-- == 0)
        {
          kick (self);
          break;
        }
      res = PQgetResult (self->conn);
      handle_result (self, op, res);
      if (OP_IS_CURRENT (self, op, serial))
        deliver_notifications (self);
    }
  if (OP_IS_CURRENT (self, op, serial))
    op_maybe_finish (self);
}

static void
connect_established (BpPgConnection *self)
{
  Op *op = self->op;

  PQsetErrorVerbosity (self->conn, PQERRORS_VERBOSE);
  if (PQsetnonblocking (self->conn, 1) != 0 ||
      !PQsendQuery (self->conn, SETUP_SQL))
    {
      op_set_error (op, bp_pg_error_new_from_conn (self->conn, "08001", self->password));
      connect_fail (self);
      return;
    }
  op->phase = CONNECT_SETUP;
  flush_output (self);
  if (self->conn != NULL)
    update_watch (self);
}

static void
connect_poll (BpPgConnection *self)
{
  PostgresPollingStatusType status = PQconnectPoll (self->conn);

  switch (status)
    {
    case PGRES_POLLING_READING:
    case PGRES_POLLING_WRITING:
      self->poll_status = status;
      update_watch (self);
      break;

    case PGRES_POLLING_OK:
      connect_established (self);
      break;

    case PGRES_POLLING_FAILED:
    case PGRES_POLLING_ACTIVE:
    default:
      op_set_error (self->op, bp_pg_error_new_from_conn (self->conn, "08001", self->password));
      connect_fail (self);
      break;
    }
}

/* Main context: the heart of the connection. @revents is 0 for a kick. */
static void
process (BpPgConnection *self,
         GIOCondition    revents)
{
  g_autoptr(BpPgConnection) hold = g_object_ref (self);

  if (self->conn == NULL || self->state == BP_PG_CONNECTION_STATE_CLOSED)
    return;

  if (self->state == BP_PG_CONNECTION_STATE_CONNECTING && self->op != NULL &&
      self->op->phase == CONNECT_POLL)
    {
      if (revents != 0)
        connect_poll (self);
      return;
    }

  if ((revents & (G_IO_IN | G_IO_HUP | G_IO_ERR)) != 0 && !op_paused (self, self->op))
    {
      if (!PQconsumeInput (self->conn))
        {
          connection_lost (self);
          return;
        }
    }
  if (self->flush_pending)
    {
      flush_output (self);
      if (self->conn == NULL)
        return;
    }

  deliver_notifications (self);
  if (self->conn == NULL)
    return;

  if (self->op != NULL)
    op_step (self);
  else if (PQstatus (self->conn) == CONNECTION_BAD)
    {
      connection_lost (self);
      return;
    }

  if (self->conn != NULL)
    update_watch (self);
}

/* ---------------------------------------------------------------------- */
/* Connect                                                                 */

static void
connect_start_libpq (BpPgConnection *self,
                     const char     *host,
                     const char     *hostaddr,
                     const char     *port)
{
  Op *op = self->op;
  const char *keywords[20];
  const char *values[20];
  int k = 0;

  /* Defaults first: the conninfo may override them … */
  keywords[k] = "fallback_application_name"; values[k++] = "backplaned";
  keywords[k] = "gssencmode"; values[k++] = "disable";
  keywords[k] = "keepalives"; values[k++] = "1";
  keywords[k] = "keepalives_idle"; values[k++] = "60";
  keywords[k] = "keepalives_interval"; values[k++] = "10";
  keywords[k] = "keepalives_count"; values[k++] = "3";
  keywords[k] = "dbname"; values[k++] = self->conninfo;
  /* … and these override the conninfo. */
  if (host != NULL)
    {
      keywords[k] = "host"; values[k++] = host;
      keywords[k] = "hostaddr"; values[k++] = hostaddr;
      if (port != NULL)
        {
          keywords[k] = "port"; values[k++] = port;
        }
    }
  if (self->application_name != NULL)
    {
      keywords[k] = "application_name"; values[k++] = self->application_name;
    }
  if (self->password != NULL)
    {
      keywords[k] = "password"; values[k++] = self->password;
    }
  keywords[k] = "client_encoding"; values[k++] = "UTF8";
  keywords[k] = NULL; values[k] = NULL;
  g_assert (k < (int) G_N_ELEMENTS (keywords));

  g_clear_pointer (&self->fatal_sqlstate, g_free);
  g_clear_pointer (&self->fatal_message, g_free);
  self->conn = PQconnectStartParams (keywords, values, 1);
  if (self->conn == NULL || PQstatus (self->conn) == CONNECTION_BAD)
    {
      op_set_error (op, bp_pg_error_new_from_conn (self->conn, "08001", self->password));
      connect_fail (self);
      return;
    }
  PQsetNoticeReceiver (self->conn, notice_receiver, self);
  op->phase = CONNECT_POLL;
  self->poll_status = PGRES_POLLING_WRITING;
  update_watch (self);
}

static gboolean
host_needs_resolution (const char *host)
{
  return *host != '\0' && *host != '/' && *host != '@' && !g_hostname_is_ip_address (host);
}

static void connect_resolve_next (BpPgConnection *self);

/* Main context: one host name was resolved. */
static void
connect_resolved_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(BpPgConnection) self = user_data;
  g_autoptr(GError) error = NULL;
  GList *addresses = g_resolver_lookup_by_name_finish (G_RESOLVER (object), result, &error);
  Op *op = self->op;
  const char *host;
  const char *port;
  guint n = 0;

  g_assert (op != NULL && op->kind == OP_CONNECT && op->io_pending > 0);
  op->io_pending--;

  if (op->libpq_done)
    {
      g_resolver_free_addresses (addresses);
      op_maybe_finish (self);
      return;
    }

  host = op->host_elems[op->resolve_index];
  port = op->port_elems == NULL ? "" :
         g_strv_length (op->port_elems) == 1 ? op->port_elems[0] : op->port_elems[op->resolve_index];

  if (addresses == NULL)
    {
      if (op->resolve_error == NULL)
        op->resolve_error = g_strdup_printf ("could not translate host name \"%s\" to address: %s",
                                             host, error->message);
    }
  for (GList *l = addresses; l != NULL && n < MAX_ADDRESSES_PER_HOST; l = l->next, n++)
    {
      g_ptr_array_add (op->out_hosts, g_strdup (host));
      g_ptr_array_add (op->out_addrs, g_inet_address_to_string (l->data));
      g_ptr_array_add (op->out_ports, g_strdup (port));
    }
  g_resolver_free_addresses (addresses);

  op->resolve_index++;
  connect_resolve_next (self);
}

static char *
join_ptr_array (GPtrArray *array)
{
  g_ptr_array_add (array, NULL);
  {
    char *joined = g_strjoinv (",", (char **) array->pdata);
    g_ptr_array_remove_index (array, array->len - 1);
    return joined;
  }
}

static void
connect_resolve_next (BpPgConnection *self)
{
  Op *op = self->op;
  g_autofree char *hosts = NULL;
  g_autofree char *addrs = NULL;
  g_autofree char *ports = NULL;
  gboolean any_port = FALSE;

  while (op->host_elems[op->resolve_index] != NULL)
    {
      const char *host = op->host_elems[op->resolve_index];
      const char *port = op->port_elems == NULL ? "" :
                         g_strv_length (op->port_elems) == 1 ? op->port_elems[0] :
                         op->port_elems[op->resolve_index];

      if (host_needs_resolution (host))
        {
          g_autoptr(GResolver) resolver = g_resolver_get_default ();

          op->io_pending++;
          g_resolver_lookup_by_name_async (resolver, host, op->io_cancellable,
                                           connect_resolved_cb, g_object_ref (self));
          return;
        }
      g_ptr_array_add (op->out_hosts, g_strdup (host));
      g_ptr_array_add (op->out_addrs, g_strdup (""));
      g_ptr_array_add (op->out_ports, g_strdup (port));
      op->resolve_index++;
    }

  if (op->out_hosts->len == 0)
    {
      op_set_error (op, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "SQLSTATE 08001: %s",
                                     op->resolve_error != NULL ? op->resolve_error : "no host to connect to"));
      connect_fail (self);
      return;
    }

  for (guint i = 0; i < op->out_ports->len; i++)
    if (*(const char *) g_ptr_array_index (op->out_ports, i) != '\0')
      any_port = TRUE;
  hosts = join_ptr_array (op->out_hosts);
  addrs = join_ptr_array (op->out_addrs);
  ports = any_port ? join_ptr_array (op->out_ports) : NULL;
  connect_start_libpq (self, hosts, addrs, ports);
}

static void
connect_resolve (BpPgConnection *self)
{
  Op *op = self->op;
  char *errmsg = NULL;
  PQconninfoOption *options = PQconninfoParse (self->conninfo, &errmsg);
  const char *host = NULL;
  const char *hostaddr = NULL;
  const char *port = NULL;
  gboolean needed = FALSE;

  if (options == NULL)
    {
      g_autofree char *redacted = bp_pg_redact (errmsg != NULL ? errmsg : "out of memory", self->password);

      g_strstrip (redacted);
      op_set_error (op, g_error_new (BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "conninfo: %s", redacted));
      PQfreemem (errmsg);
      connect_fail (self);
      return;
    }

  for (PQconninfoOption *o = options; o->keyword != NULL; o++)
    {
      if (g_str_equal (o->keyword, "host"))
        host = o->val;
      else if (g_str_equal (o->keyword, "hostaddr"))
        hostaddr = o->val;
      else if (g_str_equal (o->keyword, "port"))
        port = o->val;
    }

  if (host != NULL && *host != '\0' && (hostaddr == NULL || *hostaddr == '\0'))
    {
      op->host_elems = g_strsplit (host, ",", -1);
      op->port_elems = port != NULL && *port != '\0' ? g_strsplit (port, ",", -1) : NULL;
      for (guint i = 0; op->host_elems[i] != NULL; i++)
        if (host_needs_resolution (op->host_elems[i]))
          needed = TRUE;
      /* A port list that does not match is libpq's error to report. */
      if (op->port_elems != NULL && g_strv_length (op->port_elems) != 1 &&
          g_strv_length (op->port_elems) != g_strv_length (op->host_elems))
        needed = FALSE;
    }
  PQconninfoFree (options);

  if (!needed)
    {
      connect_start_libpq (self, NULL, NULL, NULL);
      return;
    }

  op->out_hosts = g_ptr_array_new_with_free_func (g_free);
  op->out_addrs = g_ptr_array_new_with_free_func (g_free);
  op->out_ports = g_ptr_array_new_with_free_func (g_free);
  connect_resolve_next (self);
}

/**
 * bp_pg_connection_connect_async:
 * @self: a new connection
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when connected or failed
 * @user_data: data for @callback
 *
 * Connects without blocking: host names are resolved with GResolver, then
 * PQconnectStartParams()/PQconnectPoll() run on the socket, within the
 * connect timeout over all hosts. Errors are %BP_ERROR_UNAVAILABLE
 * ("SQLSTATE 08001: …", the password redacted), %BP_ERROR_TIMEOUT,
 * %BP_ERROR_INVALID_ARGUMENT for a malformed conninfo, or
 * %G_IO_ERROR_CANCELLED. A failed connection is closed.
 */
void
bp_pg_connection_connect_async (BpPgConnection      *self,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BP_IS_PG_CONNECTION (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_pg_connection_connect_async);

  if (self->state != BP_PG_CONNECTION_STATE_NEW)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED, "connection was already started");
      return;
    }

  self->state = BP_PG_CONNECTION_STATE_CONNECTING;
  op_begin (self, OP_CONNECT, task, self->connect_timeout_ms, cancellable);
  self->op->phase = CONNECT_RESOLVE;
  connect_resolve (self);
}

gboolean
bp_pg_connection_connect_finish (BpPgConnection  *self,
                                 GAsyncResult    *result,
                                 GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_pg_connection_connect_async, FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------- */
/* Query, stream                                                           */

static gboolean
send_params_query (BpPgConnection  *self,
                   const char      *sql,
                   BpPgParams      *params,
                   gboolean         single_row,
                   GError         **error)
{
  if (!PQsendQueryParams (self->conn, sql, params->n, params->types,
                          (const char * const *) params->values,
                          params->lengths, params->formats, 0))
    {
      g_propagate_error (error, bp_pg_error_new_from_conn (self->conn, "08006", self->password));
      return FALSE;
    }
  if (single_row && !PQsetSingleRowMode (self->conn))
    g_debug ("PQsetSingleRowMode failed");
  flush_output (self);
  return TRUE;
}

/* Validates and converts parameters; NULL with @error on failure. */
static BpPgParams *
prepare_params (const char  *sql,
                GVariant    *params,
                GError     **error)
{
  g_autoptr(BpPgParams) converted = bp_pg_params_new (params, error);

  if (converted == NULL)
    return NULL;
  if (!bp_pg_params_check_count (sql, (guint) converted->n, error))
    return NULL;
  return g_steal_pointer (&converted);
}

/* Starts an operation that sends one statement; returns FALSE and fails
 * @task if it cannot start. */
static void
begin_statement (BpPgConnection *self,
                 GTask          *task,
                 OpKind          kind,
                 const char     *sql,
                 GVariant       *params,
                 guint           max_rows,
                 gpointer        stream,
                 guint           timeout_ms,
                 GCancellable   *cancellable)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(BpPgParams) converted = NULL;
  Op *op;

  if (!check_idle (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }
  converted = prepare_params (sql, params, &error);
  if (converted == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  op = op_begin (self, kind, task, timeout_ms, cancellable);
  if (kind == OP_QUERY)
    {
      op->rows = g_variant_builder_new (G_VARIANT_TYPE ("aa{sv}"));
      op->max_rows = max_rows;
    }
  else if (kind == OP_COPY_IN)
    op->input = g_object_ref (stream);
  else if (kind == OP_COPY_OUT)
    op->output = g_object_ref (stream);

  if (!send_params_query (self, sql, converted, kind == OP_QUERY || kind == OP_STREAM, &error))
    {
      op_set_error (op, g_steal_pointer (&error));
      connection_lost (self);
      return;
    }
  if (self->conn != NULL)
    update_watch (self);
}

/**
 * bp_pg_connection_query_async:
 * @self: an idle connection
 * @sql: one SQL statement ($1, $2 … for parameters)
 * @params: (nullable): an `av` of parameters
 * @max_rows: fail with %BP_ERROR_LIMIT_EXCEEDED beyond this many rows
 *   (the query is then cancelled); 0 for no limit
 * @timeout_ms: cancel and fail with %BP_ERROR_TIMEOUT after this; 0 for none
 * @cancellable: (nullable): a #GCancellable
 * @callback: called with the whole result
 * @user_data: data for @callback
 *
 * Runs one statement and collects its rows.
 */
void
bp_pg_connection_query_async (BpPgConnection      *self,
                              const char          *sql,
                              GVariant            *params,
                              guint                max_rows,
                              guint                timeout_ms,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BP_IS_PG_CONNECTION (self));
  g_return_if_fail (sql != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_pg_connection_query_async);

  begin_statement (self, task, OP_QUERY, sql, params, max_rows, NULL, timeout_ms, cancellable);
}

/**
 * bp_pg_connection_query_finish:
 * @self: a connection
 * @result: the result
 * @out_columns: (out) (optional) (transfer full): `a(ss)` column names and types
 * @out_rows: (out) (optional) (transfer full): `aa{sv}` rows
 * @out_affected: (out) (optional): rows affected or returned (PQcmdTuples)
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success
 */
gboolean
bp_pg_connection_query_finish (BpPgConnection  *self,
                               GAsyncResult    *result,
                               GVariant       **out_columns,
                               GVariant       **out_rows,
                               guint64         *out_affected,
                               GError         **error)
{
  QueryResult *query_result;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_pg_connection_query_async, FALSE);

  query_result = g_task_propagate_pointer (G_TASK (result), error);
  if (query_result == NULL)
    return FALSE;
  if (out_columns != NULL)
    *out_columns = g_steal_pointer (&query_result->columns);
  if (out_rows != NULL)
    *out_rows = g_steal_pointer (&query_result->rows);
  if (out_affected != NULL)
    *out_affected = query_result->affected;
  query_result_free (query_result);
  return TRUE;
}

/**
 * bp_pg_connection_stream_async:
 * @self: an idle connection
 * @sql: one SQL statement
 * @params: (nullable): an `av` of parameters
 * @timeout_ms: for the whole stream, 0 for none
 * @cancellable: (nullable): cancels the whole stream
 * @callback: called once the column header is known
 * @user_data: data for @callback
 *
 * Starts streaming a result in single-row mode. At most
 * bp_pg_connection_set_max_buffered_rows() rows are read ahead of the
 * consumer; then the socket is not read until the consumer pulls rows with
 * bp_pg_connection_stream_next_async(). The consumer must go on until it gets
 * done = %TRUE or an error, or call bp_pg_connection_stream_close_async();
 * the connection stays busy until then.
 */
void
bp_pg_connection_stream_async (BpPgConnection      *self,
                               const char          *sql,
                               GVariant            *params,
                               guint                timeout_ms,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BP_IS_PG_CONNECTION (self));
  g_return_if_fail (sql != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_pg_connection_stream_async);
  begin_statement (self, task, OP_STREAM, sql, params, 0, NULL, timeout_ms, cancellable);
}

/**
 * bp_pg_connection_stream_finish:
 * @self: a connection
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the row description (columns with
 *   bp_pg_row_desc_to_columns(), rows with bp_pg_row_to_variant() or
 *   bp_pg_row_append_json()), or %NULL on error (the connection is then
 *   idle or closed again)
 */
BpPgRowDesc *
bp_pg_connection_stream_finish (BpPgConnection  *self,
                                GAsyncResult    *result,
                                GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_pg_connection_stream_async, NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
stream_update (BpPgConnection *self)
{
  Op *op = self->op;
  gboolean finished;

  g_assert (op != NULL && op->kind == OP_STREAM);

  finished = op->libpq_done && op->io_pending == 0 &&
             (!op->cancel_running || self->conn == NULL);

  if (op->task != NULL)
    {
      if (op->desc != NULL && op->error == NULL && !op->aborting)
        {
          GTask *task = g_steal_pointer (&op->task);

          g_task_return_pointer (task, bp_pg_row_desc_copy (op->desc),
                                 (GDestroyNotify) bp_pg_row_desc_free);
          g_object_unref (task);
          /* The callback may have pulled, closed, or aborted already. */
          return;
        }
      if (finished)
        op_finish (self);
      return;
    }

  if (op->close_task != NULL)
    {
      if (finished)
        op_finish (self);
      return;
    }

  if (op->next_task == NULL)
    return;

  if (op->queue.length > 0 && !op->aborting)
    {
      guint n = MIN (op->next_max, op->queue.length);
      g_autoptr(GPtrArray) batch = g_ptr_array_new_full (n, (GDestroyNotify) PQclear);
      gboolean was_paused = op_paused (self, op);
      NextResult *result;
      GTask *task;

      for (guint i = 0; i < n; i++)
        g_ptr_array_add (batch, g_queue_pop_head (&op->queue));

      if (finished && op->queue.length == 0 && op->error == NULL)
        {
          op->final_batch = g_steal_pointer (&batch);
          op_finish (self);
          return;
        }

      clear_source (&op->next_cancel_source);
      task = g_steal_pointer (&op->next_task);
      result = g_new0 (NextResult, 1);
      result->rows = g_steal_pointer (&batch);
      result->done = FALSE;
      if (was_paused && self->conn != NULL)
        {
          update_watch (self);
          kick (self);
        }
      g_task_return_pointer (task, result, (GDestroyNotify) next_result_free);
      g_object_unref (task);
      return;
    }

  if (finished)
    op_finish (self);
}

/**
 * bp_pg_connection_stream_next_async:
 * @self: a connection with a stream open
 * @max_rows: at most this many rows in the batch (≥ 1)
 * @cancellable: (nullable): cancels the whole stream
 * @callback: called with the next batch
 * @user_data: data for @callback
 *
 * Takes the rows buffered so far (up to @max_rows), or waits for the next
 * row. The batch is never empty unless the stream is done.
 */
void
bp_pg_connection_stream_next_async (BpPgConnection      *self,
                                    guint                max_rows,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  Op *op;

  g_return_if_fail (BP_IS_PG_CONNECTION (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_pg_connection_stream_next_async);

  op = self->op;
  if (op == NULL || op->kind != OP_STREAM || op->task != NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED, "no stream is open");
      return;
    }
  if (op->next_task != NULL || op->close_task != NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_FAILED, "a stream call is already pending");
      return;
    }

  op->next_task = g_steal_pointer (&task);
  op->next_max = MAX (max_rows, 1);
  op->next_cancel_source = watch_cancellable (self, cancellable);
  stream_update (self);
}

/**
 * bp_pg_connection_stream_next_finish:
 * @self: a connection
 * @result: the result
 * @out_done: (out): %TRUE when this was the last batch (the connection is
 *   idle again)
 * @error: return location for a #GError
 *
 * Returns: (transfer container) (element-type PGresult): one single-row
 *   PGresult per row (decode with the stream's #BpPgRowDesc, row 0), or
 *   %NULL on error (the stream is over then)
 */
GPtrArray *
bp_pg_connection_stream_next_finish (BpPgConnection  *self,
                                     GAsyncResult    *result,
                                     gboolean        *out_done,
                                     GError         **error)
{
  NextResult *next_result;
  GPtrArray *rows;

  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_pg_connection_stream_next_async, NULL);

  if (out_done != NULL)
    *out_done = FALSE;
  next_result = g_task_propagate_pointer (G_TASK (result), error);
  if (next_result == NULL)
    return NULL;
  rows = g_steal_pointer (&next_result->rows);
  if (out_done != NULL)
    *out_done = next_result->done;
  next_result_free (next_result);
  return rows;
}

/**
 * bp_pg_connection_stream_close_async:
 * @self: a connection with a stream open
 * @cancellable: (nullable): ignored; closing always completes
 * @callback: called once the connection is idle (or closed) again
 * @user_data: data for @callback
 *
 * Ends a stream early: the query is cancelled and the rest discarded.
 */
void
bp_pg_connection_stream_close_async (BpPgConnection      *self,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  Op *op;

  g_return_if_fail (BP_IS_PG_CONNECTION (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_pg_connection_stream_close_async);

  op = self->op;
  if (op == NULL || op->kind != OP_STREAM || op->close_task != NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }

  op->close_task = g_steal_pointer (&task);
  if (op->next_task != NULL)
    {
      GTask *next = g_steal_pointer (&op->next_task);

      clear_source (&op->next_cancel_source);
      return_error (next, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "stream closed"));
    }
  if (!op->libpq_done)
    op_abort (self, g_error_new_literal (G_IO_ERROR, G_IO_ERROR_CANCELLED, "stream closed"));
  else
    stream_update (self);
}

gboolean
bp_pg_connection_stream_close_finish (BpPgConnection  *self,
                                      GAsyncResult    *result,
                                      GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_pg_connection_stream_close_async, FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---------------------------------------------------------------------- */
/* Pipeline                                                                */

/* Converts (validates) the next chunk, or sends it once all statements
 * converted: nothing is sent unless every statement's parameters are valid. */
static void
pipeline_feed (BpPgConnection *self)
{
  Op *op = self->op;
  guint budget = PIPELINE_CHUNK;

  while (op->converted->len < op->n_total && budget > 0)
    {
      guint i = op->converted->len;
      const char *sql;
      g_autoptr(GVariant) params = NULL;
      g_autoptr(GError) error = NULL;
      BpPgParams *p;

      g_variant_get_child (op->statements, i, "(&s@av)", &sql, &params);
      p = prepare_params (sql, params, &error);
      if (p == NULL)
        {
          op->failed_index = (int) i;
          op_set_error (op, g_error_new (BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                                         "statements[%u].%s", i, error->message));
          op->n_total = 0;
          op->libpq_done = TRUE;
          op_maybe_finish (self);
          return;
        }
      g_ptr_array_add (op->converted, p);
      budget--;
    }
  if (op->converted->len < op->n_total)
    {
      pipeline_schedule_feed (self);
      return;
    }

  if (!op->pipeline_entered)
    {
      if (!PQenterPipelineMode (self->conn))
        {
          op_set_error (op, bp_pg_error_new_from_conn (self->conn, "08006", self->password));
          connection_lost (self);
          return;
        }
      op->pipeline_entered = TRUE;
    }
  for (; op->n_sent < op->n_total && budget > 0; budget--)
    {
      BpPgParams *p = g_ptr_array_index (op->converted, op->n_sent);
      const char *sql;

      g_variant_get_child (op->statements, op->n_sent, "(&s@av)", &sql, NULL);
      if (!PQsendQueryParams (self->conn, sql, p->n, p->types,
                              (const char * const *) p->values, p->lengths, p->formats, 0) ||
          (op->sync_each && !PQpipelineSync (self->conn)))
        {
          /* Only a broken connection makes libpq refuse to queue here. */
          op_set_error (op, bp_pg_error_new_from_conn (self->conn, "08006", self->password));
          connection_lost (self);
          return;
        }
      op->n_sent++;
    }
  if (op->n_sent == op->n_total && !op->sync_each && !PQpipelineSync (self->conn))
    {
      op_set_error (op, bp_pg_error_new_from_conn (self->conn, "08006", self->password));
      connection_lost (self);
      return;
    }
  flush_output (self);
  if (self->conn == NULL)
    return;
  if (op->n_sent < op->n_total && !self->flush_pending)
    pipeline_schedule_feed (self);
  else if (op->n_sent == op->n_total)
    g_clear_pointer (&op->converted, g_ptr_array_unref);
  update_watch (self);
  kick (self);
}

/* Main context. */
static gboolean
on_pipeline_feed (gpointer user_data)
{
  BpPgConnection *self = user_data;
  Op *op = self->op;

  if (op != NULL && op->kind == OP_PIPELINE)
    g_clear_pointer (&op->feed_source, g_source_unref);
  if (op == NULL || op->kind != OP_PIPELINE || op->aborting || self->conn == NULL ||
      op->n_sent >= op->n_total)
    return G_SOURCE_REMOVE;
  pipeline_feed (self);
  return G_SOURCE_REMOVE;
}

static void
pipeline_schedule_feed (BpPgConnection *self)
{
  Op *op = self->op;

  if (op->feed_source != NULL)
    return;
  op->feed_source = g_idle_source_new ();
  g_source_set_priority (op->feed_source, G_PRIORITY_DEFAULT);
  g_source_set_callback (op->feed_source, on_pipeline_feed, self, NULL);
  g_source_set_static_name (op->feed_source, "[bp-postgres] pipeline feed");
  g_source_attach (op->feed_source, self->context);
}

/**
 * bp_pg_connection_execute_async:
 * @self: an idle connection
 * @statements: an `a(sav)` of (sql, params)
 * @flags: sync points, see #BpPgPipelineFlags
 * @timeout_ms: for the whole batch, 0 for none
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the batch is done
 * @user_data: data for @callback
 *
 * Sends all statements in pipeline mode (PQenterPipelineMode, then one
 * PQpipelineSync per batch or per statement). Parameters are validated
 * first (nothing is sent when one statement's are invalid); conversion and
 * sending go PIPELINE_CHUNK statements per main-loop dispatch. The first
 * failing statement's index is reported; the connection stays usable.
 */
void
bp_pg_connection_execute_async (BpPgConnection      *self,
                                GVariant            *statements,
                                BpPgPipelineFlags    flags,
                                guint                timeout_ms,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  gsize n;
  Op *op;

  g_return_if_fail (BP_IS_PG_CONNECTION (self));
  g_return_if_fail (statements != NULL && g_variant_is_of_type (statements, G_VARIANT_TYPE ("a(sav)")));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_pg_connection_execute_async);

  if (!check_idle (self, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  n = g_variant_n_children (statements);
  if (n == 0)
    {
      g_task_return_pointer (task, g_variant_ref_sink (g_variant_new_array (G_VARIANT_TYPE_UINT64, NULL, 0)),
                             (GDestroyNotify) g_variant_unref);
      return;
    }

  if (n > G_MAXINT)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED, "statements: too many");
      return;
    }
  op = op_begin (self, OP_PIPELINE, task, timeout_ms, cancellable);
  op->affected_list = g_array_new (FALSE, TRUE, sizeof (guint64));
  g_array_set_size (op->affected_list, (guint) n);
  op->statements = g_variant_ref (statements);
  op->converted = g_ptr_array_new_full ((guint) n, (GDestroyNotify) bp_pg_params_free);
  op->n_total = (guint) n;
  op->sync_each = (flags & BP_PG_PIPELINE_FLAGS_SYNC_EACH) != 0;
  op->syncs_expected = op->sync_each ? (guint) n : 1;
  pipeline_feed (self);
}

/**
 * bp_pg_connection_execute_finish:
 * @self: a connection
 * @result: the result
 * @out_failed_index: (out) (optional): the index of the failing statement,
 *   -1 when none (or the failure was not a statement's)
 * @error: return location for a #GError; a statement error reads
 *   "statement N: SQLSTATE …"
 *
 * Returns: (transfer full): `at`, rows affected per statement, or %NULL
 */
GVariant *
bp_pg_connection_execute_finish (BpPgConnection  *self,
                                 GAsyncResult    *result,
                                 int             *out_failed_index,
                                 GError         **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_pg_connection_execute_async, NULL);

  if (out_failed_index != NULL)
    *out_failed_index = GPOINTER_TO_INT (g_task_get_task_data (G_TASK (result))) - 1;
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---------------------------------------------------------------------- */
/* COPY entry points                                                       */

/**
 * bp_pg_connection_copy_from_async:
 * @self: an idle connection
 * @copy_sql: a `COPY … FROM STDIN …` statement
 * @input: where the data comes from, read in 64 KiB chunks with
 *   back-pressure (the next chunk is read once libpq sent the last)
 * @timeout_ms: 0 for none
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the COPY is done
 * @user_data: data for @callback
 *
 * A read error or cancellation ends the COPY with PQputCopyEnd(errormsg),
 * so the server rolls it back.
 */
void
bp_pg_connection_copy_from_async (BpPgConnection      *self,
                                  const char          *copy_sql,
                                  GInputStream        *input,
                                  guint                timeout_ms,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BP_IS_PG_CONNECTION (self));
  g_return_if_fail (copy_sql != NULL);
  g_return_if_fail (G_IS_INPUT_STREAM (input));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_pg_connection_copy_from_async);

  begin_statement (self, task, OP_COPY_IN, copy_sql, NULL, 0, input, timeout_ms, cancellable);
}

/**
 * bp_pg_connection_copy_from_finish:
 * @self: a connection
 * @result: the result
 * @out_rows: (out) (optional): rows copied
 * @error: return location for a #GError
 *
 * Returns: %TRUE on success
 */
gboolean
bp_pg_connection_copy_from_finish (BpPgConnection  *self,
                                   GAsyncResult    *result,
                                   guint64         *out_rows,
                                   GError         **error)
{
  g_autofree guint64 *rows = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_pg_connection_copy_from_async, FALSE);

  rows = g_task_propagate_pointer (G_TASK (result), error);
  if (rows == NULL)
    return FALSE;
  if (out_rows != NULL)
    *out_rows = *rows;
  return TRUE;
}

/**
 * bp_pg_connection_copy_to_async:
 * @self: an idle connection
 * @copy_sql: a `COPY … TO STDOUT …` statement
 * @output: where the data goes; while a write is pending the socket is not
 *   read (back-pressure)
 * @timeout_ms: 0 for none
 * @cancellable: (nullable): a #GCancellable
 * @callback: called when the COPY is done and all data written
 * @user_data: data for @callback
 *
 * A write error (the reader went away) cancels the COPY on the server.
 */
void
bp_pg_connection_copy_to_async (BpPgConnection      *self,
                                const char          *copy_sql,
                                GOutputStream       *output,
                                guint                timeout_ms,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (BP_IS_PG_CONNECTION (self));
  g_return_if_fail (copy_sql != NULL);
  g_return_if_fail (G_IS_OUTPUT_STREAM (output));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_pg_connection_copy_to_async);

  begin_statement (self, task, OP_COPY_OUT, copy_sql, NULL, 0, output, timeout_ms, cancellable);
}

gboolean
bp_pg_connection_copy_to_finish (BpPgConnection  *self,
                                 GAsyncResult    *result,
                                 guint64         *out_rows,
                                 GError         **error)
{
  g_autofree guint64 *rows = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_pg_connection_copy_to_async, FALSE);

  rows = g_task_propagate_pointer (G_TASK (result), error);
  if (rows == NULL)
    return FALSE;
  if (out_rows != NULL)
    *out_rows = *rows;
  return TRUE;
}
