/* bp-dead-letters.c: a persistent dead-letter queue on SQLite (WAL)
 *
 * A dead letter is an idempotent operation that failed after its retries
 * (or was refused while the backend's breaker was open): backend,
 * operation, payload, idempotency key, attempts, last error and the time of
 * its next attempt. BpDeadLetters keeps them in one SQLite database in WAL
 * mode, replays them through per-backend handlers, deletes them on success
 * and poisons them after poison-after failed replays.
 *
 * Durability: every write is one transaction, committed with
 * synchronous=FULL before its caller hears about it, so an entry whose
 * enqueue completed survives kill -9 and power loss. (UNIQUE on
 * (backend, idempotency_key) makes a repeat enqueue return the existing id,
 * so an entry is present exactly once even when the caller retries after a
 * crash.)
 *
 * Threads: all SQLite work runs on one dedicated worker thread (a
 * #BpWorkerPool with one thread): an fsync can stall for far longer than a
 * frame, so none of it touches the main loop. Jobs run in submission order.
 * The worker only sees the Store; every other field of the object lives on
 * the main context that opened the store, where all callbacks and signals
 * run. Public methods must be called from that context.
 *
 * Replay scheduling: one #BpClock timer, armed for the earliest moment
 * something can happen (the earliest next-attempt of a backend that has a
 * handler, or the next rate-limiter token while due entries wait). A
 * scheduler pass fetches due entries of backends with a handler and a free
 * in-flight slot (max-in-flight per backend), takes at most as many as the
 * token bucket allows (max-replays-per-second, burst of one second's worth)
 * and calls the handlers. Completions and new entries trigger a new pass.
 * Time in the database is Unix time in µs; with a manual #BpClock it is the
 * clock's time plus the offset to the wall clock at open, so tests control it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include "bp-dead-letters.h"
#include "bp-error.h"
#include "bp-worker-pool.h"

#define SCHEMA_VERSION 1
#define MAX_NAME_LEN 256
#define MAX_KEY_LEN 1024
#define MAX_ERROR_LEN 4096
#define LIST_DEFAULT_LIMIT 100
#define LIST_MAX_LIMIT 1000
#define BUSY_TIMEOUT_MS 5000
/* Caller operations that may wait for the worker; internal jobs (replay
 * outcomes, at most max-in-flight of them, the due-entry scan and close)
 * have a reserve above it, so a full queue never drops one of them. */
#define MAX_IN_FLIGHT_LIMIT     1000   /* bound of the max-in-flight property */
#define WORKER_MAX_QUEUED       4096
#define WORKER_INTERNAL_RESERVE (MAX_IN_FLIGHT_LIMIT + 16)

/* ---- the worker-side store --------------------------------------------- */

/* Only ever touched on the worker thread. */
typedef struct
{
  sqlite3 *db;        /* (owned) */
  guint64  count;     /* rows */
  guint64  poisoned;  /* rows with poisoned = 1 */
} Store;

typedef struct
{
  guint64   id;
  char     *backend;
  char     *operation;
  char     *key;
  GVariant *payload;       /* (owned) (nullable) */
  gint64    next_attempt;  /* unix µs */
  gboolean  poisoned;
} Entry;

static void
entry_free (Entry *entry)
{
  if (entry == NULL)
    return;
  g_free (entry->backend);
  g_free (entry->operation);
  g_free (entry->key);
  g_clear_pointer (&entry->payload, g_variant_unref);
  g_free (entry);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Entry, entry_free)

static gboolean
store_set_error (sqlite3     *db,
                 int          rc,
                 const char  *what,
                 GError     **error)
{
  BpError code;

  switch (rc & 0xff)
    {
    case SQLITE_FULL:
      code = BP_ERROR_LIMIT_EXCEEDED;
      break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_CANTOPEN:
      code = BP_ERROR_UNAVAILABLE;
      break;
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      code = BP_ERROR_PERMISSION_DENIED;
      break;
    default:
      code = BP_ERROR_FAILED;
      break;
    }
  g_set_error (error, BP_ERROR, code, "Dead-letter store: %s: %s (SQLite %d)",
               what, db != NULL ? sqlite3_errmsg (db) : sqlite3_errstr (rc), rc);
  return FALSE;
}

static gboolean
store_exec (Store       *store,
            const char  *sql,
            GError     **error)
{
  int rc = sqlite3_exec (store->db, sql, NULL, NULL, NULL);

  if (rc != SQLITE_OK)
    return store_set_error (store->db, rc, sql, error);
  return TRUE;
}

static sqlite3_stmt *
store_prepare (Store       *store,
               const char  *sql,
               GError     **error)
{
  sqlite3_stmt *stmt = NULL;
  int rc = sqlite3_prepare_v2 (store->db, sql, -1, &stmt, NULL);

  if (rc != SQLITE_OK)
    {
      store_set_error (store->db, rc, "prepare", error);
      return NULL;
    }
  return stmt;
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (sqlite3_stmt, sqlite3_finalize)

static void
store_rollback (Store *store)
{
  /* Nothing to do if the failed statement already ended the transaction. */
  if (!sqlite3_get_autocommit (store->db))
    sqlite3_exec (store->db, "ROLLBACK", NULL, NULL, NULL);
}

static gboolean
store_recount (Store   *store,
               GError **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  int rc;

  stmt = store_prepare (store, "SELECT COUNT(*), COALESCE(SUM(poisoned != 0), 0) FROM dead_letters", error);
  if (stmt == NULL)
    return FALSE;
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW)
    return store_set_error (store->db, rc, "count", error);
  store->count = (guint64) sqlite3_column_int64 (stmt, 0);
  store->poisoned = (guint64) sqlite3_column_int64 (stmt, 1);
  return TRUE;
}

static void
store_free (Store *store)
{
  /* The last connection checkpoints the WAL into the database and
   * removes it; blocking, so only ever called on the worker thread. */
  if (store->db != NULL)
    sqlite3_close_v2 (store->db);
  g_free (store);
}

static const char schema_v1[] =
  "CREATE TABLE dead_letters ("
  "  id              INTEGER PRIMARY KEY AUTOINCREMENT,"
  "  backend         TEXT    NOT NULL,"
  "  operation       TEXT    NOT NULL,"
  "  idempotency_key TEXT    NOT NULL,"
  "  payload_type    TEXT,"
  "  payload         BLOB,"
  "  attempts        INTEGER NOT NULL DEFAULT 0,"
  "  replays         INTEGER NOT NULL DEFAULT 0,"
  "  last_error      TEXT    NOT NULL DEFAULT '',"
  "  created_at      INTEGER NOT NULL,"
  "  next_attempt    INTEGER NOT NULL,"
  "  poisoned        INTEGER NOT NULL DEFAULT 0,"
  "  UNIQUE (backend, idempotency_key)"
  ");"
  "CREATE INDEX dead_letters_due ON dead_letters (backend, poisoned, next_attempt);"
  "INSERT INTO schema_version (version) VALUES (1);";

static gboolean
store_migrate (Store   *store,
               GError **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  gint64 version = 0;
  int rc;

  if (!store_exec (store, "BEGIN IMMEDIATE", error))
    return FALSE;
  if (!store_exec (store, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", error))
    {
      store_rollback (store);
      return FALSE;
    }

  stmt = store_prepare (store, "SELECT COALESCE(MAX(version), 0) FROM schema_version", error);
  if (stmt == NULL)
    {
      store_rollback (store);
      return FALSE;
    }
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_ROW)
    {
      store_set_error (store->db, rc, "schema version", error);
      store_rollback (store);
      return FALSE;
    }
  version = sqlite3_column_int64 (stmt, 0);
  g_clear_pointer (&stmt, sqlite3_finalize);

  if (version > SCHEMA_VERSION)
    {
      store_rollback (store);
      g_set_error (error, BP_ERROR, BP_ERROR_FAILED,
                   "Dead-letter store: schema version %" G_GINT64_FORMAT
                   " is newer than this build understands (%d)",
                   version, SCHEMA_VERSION);
      return FALSE;
    }
  if (version == 0 && !store_exec (store, schema_v1, error))
    {
      store_rollback (store);
      return FALSE;
    }
  /* Later versions migrate step by step here. */

  return store_exec (store, "COMMIT", error);
}

/* Runs on the worker thread. */
static Store *
store_open (const char  *path,
            GError     **error)
{
  g_autofree char *dir = g_path_get_dirname (path);
  g_autoptr(sqlite3_stmt) stmt = NULL;
  Store *store;
  const char *mode;
  int fd;
  int rc;

  if (g_mkdir_with_parents (dir, 0700) < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "Dead-letter store: cannot create %s: %s", dir, g_strerror (saved));
      return NULL;
    }

  /* Create the file ourselves so it is private (0600); SQLite gives the
   * -wal and -shm files the same permissions. */
  fd = g_open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "Dead-letter store: cannot open %s: %s", path, g_strerror (saved));
      return NULL;
    }
  close (fd);

  store = g_new0 (Store, 1);
  rc = sqlite3_open_v2 (path, &store->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
  if (rc != SQLITE_OK)
    {
      store_set_error (store->db, rc, "open", error);
      store_free (store);
      return NULL;
    }
  sqlite3_extended_result_codes (store->db, 1);
  /* Another process (a second daemon, an operator's sqlite3 shell) may
   * hold the write lock for a moment. */
  sqlite3_busy_timeout (store->db, BUSY_TIMEOUT_MS);

  stmt = store_prepare (store, "PRAGMA journal_mode=WAL", error);
  if (stmt == NULL)
    {
      store_free (store);
      return NULL;
    }
  rc = sqlite3_step (stmt);
  mode = rc == SQLITE_ROW ? (const char *) sqlite3_column_text (stmt, 0) : NULL;
  if (mode == NULL || g_ascii_strcasecmp (mode, "wal") != 0)
    {
      if (rc != SQLITE_ROW)
        store_set_error (store->db, rc, "journal_mode", error);
      else
        g_set_error (error, BP_ERROR, BP_ERROR_FAILED,
                     "Dead-letter store: cannot use WAL (journal mode is %s)",
                     mode != NULL ? mode : "unknown");
      g_clear_pointer (&stmt, sqlite3_finalize);
      store_free (store);
      return NULL;
    }
  g_clear_pointer (&stmt, sqlite3_finalize);

  /* FULL, not NORMAL: in WAL mode NORMAL survives a process crash but may
   * lose the last commits on power loss. An entry here is a write the user
   * was told will be retried, so it must be on disk before enqueue
   * completes. The fsync per commit runs on the worker thread, and dead
   * letters are rare by nature, so the cost is acceptable. */
  if (!store_exec (store, "PRAGMA synchronous=FULL", error) ||
      !store_migrate (store, error) ||
      !store_recount (store, error))
    {
      store_free (store);
      return NULL;
    }
  return store;
}

static GVariant *
payload_from_row (sqlite3_stmt *stmt,
                  int           type_col,
                  int           data_col)
{
  const char *type = (const char *) sqlite3_column_text (stmt, type_col);
  const void *data;
  int len;

  if (type == NULL || !g_variant_type_string_is_valid (type))
    return NULL;
  data = sqlite3_column_blob (stmt, data_col);
  len = sqlite3_column_bytes (stmt, data_col);
  {
    g_autoptr(GBytes) bytes = g_bytes_new (data, len);

    /* Not trusted: GVariant copes with any bytes for a valid type. */
    return g_variant_ref_sink (g_variant_new_from_bytes (G_VARIANT_TYPE (type), bytes, FALSE));
  }
}

static char *
column_dup (sqlite3_stmt *stmt,
            int           col)
{
  const char *text = (const char *) sqlite3_column_text (stmt, col);

  /* Everything we write is UTF-8; a hand-edited row might not be. */
  return g_utf8_make_valid (text != NULL ? text : "", -1);
}

/* ---- the object -------------------------------------------------------- */

typedef struct
{
  guint                  ref_count;
  BpDeadLetterReplayFunc func;
  gpointer               user_data;
  GDestroyNotify         notify;
} Handler;

static Handler *
handler_ref (Handler *handler)
{
  handler->ref_count++;
  return handler;
}

static void
handler_unref (Handler *handler)
{
  if (--handler->ref_count > 0)
    return;
  if (handler->notify != NULL)
    handler->notify (handler->user_data);
  g_free (handler);
}

/**
 * BpDeadLetters:
 *
 * A persistent, crash-safe queue of failed idempotent operations (SQLite
 * in WAL mode), deduplicated by idempotency key, replayed through
 * per-backend handlers at a bounded rate, deleted on success and poisoned
 * after #BpDeadLetters:poison-after failed replays. Mirrors the
 * `org.backplane.Backplane1.DeadLetters` D-Bus interface.
 *
 * A dead letter is an idempotent (or keyed) operation that still failed
 * after its retries, or was refused while the backend's breaker was open:
 * its backend, operation name, payload (a #GVariant), idempotency key,
 * attempts, last error and the time of its next attempt.
 *
 * ## The store
 *
 * Open it with [func@Bp.DeadLetters.open_async]. All entries live in one
 * SQLite database file in WAL mode (created with mode 0600, its directory
 * with 0700), with a schema version that is checked and migrated on open.
 * Every write is one transaction committed with `synchronous=FULL` before
 * its caller hears about it, so an entry whose enqueue completed survives
 * kill -9 and power loss. All SQLite work runs on one dedicated worker
 * thread, one operation at a time in submission order
 * ([method@Bp.DeadLetters.flush_async] is a barrier); an fsync never stalls
 * the main loop. At most 4096 caller operations may wait; more fail with
 * %BP_ERROR_LIMIT_EXCEEDED (the queue's own jobs, such as recording a
 * replay's outcome or closing, have a reserve and are never refused). [property@Bp.DeadLetters:max-entries] and
 * [property@Bp.DeadLetters:max-payload-size] bound the store.
 *
 * ## Deduplication
 *
 * An entry is unique per (backend, idempotency key):
 * [method@Bp.DeadLetters.enqueue_async] of a key the backend already has
 * writes nothing and returns the existing entry's id (`out_added` is
 * %FALSE, and [signal@Bp.DeadLetters::added] is not emitted), whatever
 * state that entry is in. A caller that retries its enqueue after a crash
 * or a lost answer therefore never creates a duplicate.
 *
 * ## Replay and poisoning
 *
 * [method@Bp.DeadLetters.set_handler] registers a replay function
 * ([callback@Bp.DeadLetterReplayFunc]) per backend; a backend without one
 * keeps its entries waiting. A scheduler replays the entries of backends
 * with a handler as they fall due, oldest due first, at most
 * [property@Bp.DeadLetters:max-in-flight] at once per backend and at most
 * [property@Bp.DeadLetters:max-replays-per-second] started per second over
 * all backends (bursts of one second's worth). It runs on one
 * [class@Bp.Clock] timer, armed for the earliest moment something can
 * happen.
 *
 * - A new entry is due after [property@Bp.DeadLetters:replay-base-ms]
 *   (with jitter: half to all of it), never before its last error's
 *   retry-after nor the `not_before_us` given to enqueue.
 * - A successful replay deletes the entry and emits
 *   [signal@Bp.DeadLetters::resolved].
 * - A failed replay increments the entry's `attempts` and `replays`,
 *   records the error's message as `last-error`, and makes the entry due
 *   again after `base·2^(replays-1)`, capped at
 *   [property@Bp.DeadLetters:replay-cap-ms] (with the same jitter) and
 *   never before the error's retry-after.
 * - After [property@Bp.DeadLetters:poison-after] failed replays the entry
 *   is *poisoned*: it is kept, but the scheduler no longer replays it, and
 *   [signal@Bp.DeadLetters::poisoned] is emitted. An operator can still
 *   replay it with [method@Bp.DeadLetters.replay_async] (on success it is
 *   deleted; on failure it stays poisoned), delete it, or purge the
 *   backend.
 * - A %BP_ERROR_CIRCUIT_OPEN from the handler is not an attempt: the entry
 *   is only rescheduled, at the error's retry-after or after the base
 *   delay. A cancellation is not an attempt either, and changes nothing.
 *
 * [method@Bp.DeadLetters.replay_all_async] makes the non-poisoned entries
 * of a backend due now, for the scheduler to replay at its usual rate.
 *
 * Times in the database (`created-at`, `next-attempt`) are Unix time in
 * µs; with a manual [class@Bp.Clock] they are the clock's time shifted to
 * Unix time at open, so tests control them
 * ([method@Bp.DeadLetters.get_now_unix]).
 *
 * ## Threads
 *
 * The store belongs to the thread-default main context that was current
 * when [func@Bp.DeadLetters.open_async] was called. Call its methods from
 * there only; all callbacks, handler calls, signals and property
 * notifications run there. [property@Bp.DeadLetters:count] and
 * [property@Bp.DeadLetters:poisoned-count] are updated (and notified)
 * after each completed operation.
 *
 * ## Example
 *
 * ```c
 * static void
 * replayed_cb (GObject      *source,
 *              GAsyncResult *result,
 *              gpointer      user_data)
 * {
 *   g_autoptr(GTask) task = user_data;
 *   GError *error = NULL;
 *
 *   if (my_backend_replay_finish (MY_BACKEND (source), result, &error))
 *     g_task_return_boolean (task, TRUE);
 *   else
 *     g_task_return_error (task, error);
 * }
 *
 * static void
 * replay (BpDeadLetters *dead_letters,
 *         const char    *backend,
 *         const char    *operation,
 *         GVariant      *payload,
 *         const char    *idempotency_key,
 *         GCancellable  *cancellable,
 *         GTask         *task,
 *         gpointer       user_data)
 * {
 *   // through the backend's breaker and retry budget
 *   my_backend_replay_async (user_data, operation, payload,
 *                            idempotency_key, cancellable,
 *                            replayed_cb, task);
 * }
 *
 * bp_dead_letters_set_handler (dead_letters, "pg", replay, backend, NULL);
 *
 * // After a keyed call failed for good:
 * bp_dead_letters_enqueue_async (dead_letters, "pg", "Sql.Query", params,
 *                                key, error, attempts, 0, NULL,
 *                                enqueued_cb, NULL);
 * ```
 */
struct _BpDeadLetters
{
  GObject        parent_instance;

  char          *path;             /* (owned) */
  BpClock       *clock;            /* (owned) */
  GMainContext  *context;          /* (owned) where it was opened */
  BpWorkerPool  *worker;           /* (owned) one thread, runs every job */
  Store         *store;            /* (owned) but only dereferenced by jobs */
  gint64         unix_offset;      /* manual clocks: unix = clock + offset */
  GCancellable  *cancellable;      /* (owned) cancelled on close */

  guint64        count;
  guint64        poisoned;

  /* configuration */
  guint          poison_after;
  guint          max_replays_per_second;
  guint          max_in_flight;
  guint          n_external;       /* caller operations queued or running */
  guint          replay_base_ms;
  guint          replay_cap_ms;
  guint          max_entries;
  guint          max_payload_size;

  /* replay */
  GHashTable    *handlers;         /* (element-type utf8 Handler) (owned) */
  GHashTable    *in_flight;        /* (element-type guint64 Replay) ids being replayed */
  GHashTable    *backend_in_flight; /* (element-type utf8 guint) */
  gboolean       pass_running;
  gboolean       pass_again;
  GSource       *timer;            /* (owned) (nullable) */
  gint64         timer_deadline;   /* clock time */
  double         tokens;
  gint64         tokens_at;

  /* closing */
  gboolean       closing;
  gboolean       store_closing;
  gboolean       closed;
  GPtrArray     *close_tasks;      /* (element-type GTask) (owned) */
};

G_DEFINE_FINAL_TYPE (BpDeadLetters, bp_dead_letters, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_PATH,
  PROP_CLOCK,
  PROP_COUNT,
  PROP_POISONED_COUNT,
  PROP_POISON_AFTER,
  PROP_MAX_REPLAYS_PER_SECOND,
  PROP_MAX_IN_FLIGHT,
  PROP_REPLAY_BASE_MS,
  PROP_REPLAY_CAP_MS,
  PROP_MAX_ENTRIES,
  PROP_MAX_PAYLOAD_SIZE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum {
  SIGNAL_ADDED,
  SIGNAL_RESOLVED,
  SIGNAL_POISONED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void bp_dead_letters_schedule (BpDeadLetters *self);
static void bp_dead_letters_maybe_finish_close (BpDeadLetters *self);

/**
 * bp_dead_letters_get_now_unix:
 * @self: a #BpDeadLetters
 *
 * The store's notion of now, the time base of next-attempt and
 * created-at: Unix time in µs, or the manual clock's time shifted to Unix
 * time when the store runs on a manual #BpClock. Use it to compute the
 * `not_before_us` of [method@Bp.DeadLetters.enqueue_async].
 *
 * Returns: now, in Unix µs
 */
gint64
bp_dead_letters_get_now_unix (BpDeadLetters *self)
{
  g_return_val_if_fail (BP_IS_DEAD_LETTERS (self), 0);

  if (bp_clock_is_manual (self->clock))
    return bp_clock_get_time (self->clock) + self->unix_offset;
  return g_get_real_time ();
}

static gint64
jittered (BpDeadLetters *self,
          gint64         delay_us)
{
  /* "Equal jitter": somewhere in [delay/2, delay]. */
  return delay_us / 2 + (gint64) (bp_clock_random_double (self->clock) * (double) (delay_us / 2));
}

/* ---- jobs -------------------------------------------------------------- */

typedef struct _Job Job;

/* Runs on the worker thread; @store is NULL only for the open job. */
typedef gboolean (*JobRunFunc) (Job *job, Store *store, GError **error);
/* Runs on the store's context; @error is borrowed. */
typedef void (*JobDoneFunc) (Job *job, const GError *error);

struct _Job
{
  BpDeadLetters *self;         /* (owned) */
  Store         *store;        /* (unowned) only dereferenced on the worker */
  GCancellable  *cancellable;  /* (owned) (nullable) checked before running */
  GTask         *task;         /* (owned) (nullable) the public call */
  JobRunFunc     run;
  JobDoneFunc    done;
  GDestroyNotify free_fields;  /* (nullable) frees the job's own fields */
  GError        *error;        /* (owned) (nullable) */
  gboolean       ran;
  gboolean       external;     /* a caller's operation, counted in n_external */
  guint64        count;        /* the store's counts after the job */
  guint64        poisoned;
};

#define JOB(j) ((Job *) (j))

static gpointer
job_new (gsize        size,
         JobRunFunc   run,
         JobDoneFunc  done,
         GDestroyNotify free_fields)
{
  Job *job = g_malloc0 (size);

  job->run = run;
  job->done = done;
  job->free_fields = free_fields;
  return job;
}

static void
job_free (Job *job)
{
  if (job->free_fields != NULL)
    job->free_fields (job);
  g_clear_object (&job->self);
  g_clear_object (&job->cancellable);
  g_clear_object (&job->task);
  g_clear_error (&job->error);
  g_free (job);
}

/* Runs on the worker thread. */
static gpointer
job_thread (gpointer       data,
            GCancellable  *unused,
            GError       **unused_error)
{
  Job *job = data;

  /* Cancelled before it ran: not applied. Once it runs it completes. */
  if (job->cancellable != NULL && g_cancellable_set_error_if_cancelled (job->cancellable, &job->error))
    return job;

  job->ran = TRUE;
  if (!job->run (job, job->store, &job->error) && job->error == NULL)
    g_set_error_literal (&job->error, BP_ERROR, BP_ERROR_FAILED, "Dead-letter store: job failed");
  if (job->store != NULL)
    {
      job->count = job->store->count;
      job->poisoned = job->store->poisoned;
    }
  return job;
}

static void
bp_dead_letters_update_counts (BpDeadLetters *self,
                               guint64        count,
                               guint64        poisoned)
{
  if (self->count != count)
    {
      self->count = count;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_COUNT]);
    }
  if (self->poisoned != poisoned)
    {
      self->poisoned = poisoned;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_POISONED_COUNT]);
    }
}

/* Runs on the store's context: hands the job's outcome to its done
 * function and frees it. */
static void
job_complete (Job *job)
{
  if (job->external)
    job->self->n_external--;
  if (job->ran && job->store != NULL && job->self != NULL)
    bp_dead_letters_update_counts (job->self, job->count, job->poisoned);
  job->done (job, job->error);
  job_free (job);
}

/* Runs on the store's context. */
static void
job_done_cb (GObject      *source_object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Job *job = user_data;
  g_autoptr(GError) error = NULL;

  /* The only error of the pool itself: its queue is full. */
  bp_worker_pool_run_finish (BP_WORKER_POOL (source_object), result, &error);
  if (error != NULL && job->error == NULL)
    job->error = g_steal_pointer (&error);
  job_complete (job);
}

/* Queues @job on the worker thread; it completes on the store's context. */
static void
bp_dead_letters_submit (BpDeadLetters *self,
                        gpointer       job_ptr)
{
  Job *job = job_ptr;

  job->self = g_object_ref (self);
  job->store = self->store;
  g_main_context_push_thread_default (self->context);
  bp_worker_pool_run_async (self->worker, job_thread, job, NULL, NULL, NULL, job_done_cb, job);
  g_main_context_pop_thread_default (self->context);
}

/* A public call's task and job, or an early error. */
static GTask *
bp_dead_letters_new_task (BpDeadLetters       *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data,
                          gpointer             source_tag)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  return task;
}

static gboolean
bp_dead_letters_check_open (BpDeadLetters *self,
                            GTask         *task)
{
  if (self->closing || self->store == NULL)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_UNAVAILABLE, "The dead-letter store is closed");
      return FALSE;
    }
  return TRUE;
}

/* Attaches @task (transfer full) to @job and queues it. */
static void
bp_dead_letters_submit_for (BpDeadLetters *self,
                            gpointer       job_ptr,
                            GTask         *task)
{
  Job *job = job_ptr;

  job->task = task;
  if (g_task_get_cancellable (task) != NULL)
    job->cancellable = g_object_ref (g_task_get_cancellable (task));
  if (self->n_external >= WORKER_MAX_QUEUED)
    {
      /* Refused as the worker pool would, but only caller operations are:
       * the task completes on the next iteration, never inside this call. */
      job->self = g_object_ref (self);
      g_set_error (&job->error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "Dead-letter store: %u operations are already waiting", WORKER_MAX_QUEUED);
      job_complete (job);
      return;
    }
  job->external = TRUE;
  self->n_external++;
  bp_dead_letters_submit (self, job);
}

/* ---- open -------------------------------------------------------------- */

typedef struct
{
  Job    job;
  char  *path;
  Store *store_out;   /* (owned) (nullable) */
} OpenJob;

static void
open_job_free (gpointer data)
{
  OpenJob *job = data;

  g_free (job->path);
  /* Only set if nobody took it. */
  g_assert (job->store_out == NULL);
}

static gboolean
open_job_run (Job     *job,
              Store   *unused,
              GError **error)
{
  OpenJob *open = (OpenJob *) job;

  open->store_out = store_open (open->path, error);
  if (open->store_out == NULL)
    return FALSE;
  job->count = open->store_out->count;
  job->poisoned = open->store_out->poisoned;
  return TRUE;
}

static gboolean
close_job_run (Job     *job,
               Store   *store,
               GError **error)
{
  store_free (store);
  job->store = NULL;
  return TRUE;
}

static void
close_job_done_discard (Job          *job,
                        const GError *error)
{
}

static void
open_job_done (Job          *job,
               const GError *error)
{
  OpenJob *open = (OpenJob *) job;
  BpDeadLetters *self = job->self;

  if (error != NULL)
    {
      g_task_return_error (job->task, g_error_copy (error));
      return;
    }

  self->store = g_steal_pointer (&open->store_out);
  bp_dead_letters_update_counts (self, job->count, job->poisoned);

  /* The caller gave up meanwhile: close what we opened, off the loop. */
  if (g_task_return_error_if_cancelled (job->task))
    {
      Job *close = job_new (sizeof (Job), close_job_run, close_job_done_discard, NULL);

      self->closing = TRUE;
      self->store_closing = TRUE;
      bp_dead_letters_submit (self, close);
      self->store = NULL;
      return;
    }

  g_task_return_pointer (job->task, g_object_ref (self), g_object_unref);
  bp_dead_letters_schedule (self);
}

/**
 * bp_dead_letters_open_async:
 * @path: the database file, e.g. `$XDG_STATE_HOME/backplane/dead-letters.db`;
 *   missing parent directories are created with mode 0700 and the file
 *   with mode 0600
 * @clock: (nullable): the time source; bp_clock_get_default() if %NULL
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the store is open
 * @user_data: data for @callback
 *
 * Opens (or creates) the store on its worker thread: WAL journal,
 * synchronous=FULL, a 5 s busy timeout (another process may hold the write
 * lock for a moment), schema version checked and migrated.
 * The calling thread's thread-default main context becomes the store's
 * context: all later calls must come from there, and all signals and
 * handler calls happen there. @callback is called there too; finish with
 * [func@Bp.DeadLetters.open_finish].
 *
 * The configuration properties have their defaults when the store opens;
 * set them on the opened store. If @cancellable is cancelled while the
 * database is being opened, the open fails with `G_IO_ERROR_CANCELLED` and
 * the database is closed again.
 */
void
bp_dead_letters_open_async (const char          *path,
                            BpClock             *clock,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(BpDeadLetters) self = NULL;
  GTask *task;
  OpenJob *job;

  g_return_if_fail (path != NULL);
  g_return_if_fail (clock == NULL || BP_IS_CLOCK (clock));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  self = g_object_new (BP_TYPE_DEAD_LETTERS, "path", path, "clock", clock, NULL);
  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_dead_letters_open_async);
  g_task_set_name (task, "[backplane] bp_dead_letters_open_async");

  job = job_new (sizeof (OpenJob), open_job_run, open_job_done, open_job_free);
  job->path = g_strdup (path);
  bp_dead_letters_submit_for (self, job, task);
}

/**
 * bp_dead_letters_open_finish:
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [func@Bp.DeadLetters.open_async]. Errors: a `G_IO_ERROR` when
 * the directory or the file cannot be created or opened;
 * %BP_ERROR_PERMISSION_DENIED (read-only or forbidden),
 * %BP_ERROR_UNAVAILABLE (locked or busy beyond the busy timeout, cannot
 * open), %BP_ERROR_LIMIT_EXCEEDED (disk full) or %BP_ERROR_FAILED (a
 * database this build cannot use: not WAL-capable, a newer schema, corrupt)
 * from SQLite; `G_IO_ERROR_CANCELLED`.
 *
 * Returns: (transfer full): the open store, or %NULL with @error set
 */
BpDeadLetters *
bp_dead_letters_open_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_dead_letters_open_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- enqueue ----------------------------------------------------------- */

typedef struct
{
  Job       job;
  char     *backend;
  char     *operation;
  char     *key;
  GVariant *payload;       /* (nullable) */
  char     *last_error;
  guint     attempts;
  gint64    now;
  gint64    next_attempt;
  guint     max_entries;
  guint64   id;            /* out */
  gboolean  added;         /* out */
  gint64    next_out;      /* out: the row's next attempt */
} EnqueueJob;

static void
enqueue_job_free (gpointer data)
{
  EnqueueJob *job = data;

  g_free (job->backend);
  g_free (job->operation);
  g_free (job->key);
  g_clear_pointer (&job->payload, g_variant_unref);
  g_free (job->last_error);
}

static gboolean
enqueue_find (Store      *store,
              EnqueueJob *job,
              GError    **error)
{
  g_autoptr(sqlite3_stmt) stmt = NULL;
  int rc;

  stmt = store_prepare (store,
                        "SELECT id, next_attempt FROM dead_letters "
                        "WHERE backend = ?1 AND idempotency_key = ?2",
                        error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_text (stmt, 1, job->backend, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 2, job->key, -1, SQLITE_STATIC);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_ROW)
    {
      job->id = (guint64) sqlite3_column_int64 (stmt, 0);
      job->next_out = sqlite3_column_int64 (stmt, 1);
      return TRUE;
    }
  if (rc != SQLITE_DONE)
    return store_set_error (store->db, rc, "find", error);
  return TRUE;
}

static gboolean
enqueue_job_run (Job     *base,
                 Store   *store,
                 GError **error)
{
  EnqueueJob *job = (EnqueueJob *) base;
  g_autoptr(sqlite3_stmt) stmt = NULL;
  int rc;

  if (!store_exec (store, "BEGIN IMMEDIATE", error))
    return FALSE;

  if (!enqueue_find (store, job, error))
    {
      store_rollback (store);
      return FALSE;
    }
  if (job->id != 0)
    return store_exec (store, "COMMIT", error);

  if (store->count >= job->max_entries)
    {
      store_rollback (store);
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "The dead-letter store is full (max-entries %u)", job->max_entries);
      return FALSE;
    }

  stmt = store_prepare (store,
                        "INSERT INTO dead_letters (backend, operation, idempotency_key, "
                        "payload_type, payload, attempts, replays, last_error, created_at, "
                        "next_attempt, poisoned) "
                        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9, 0)",
                        error);
  if (stmt == NULL)
    {
      store_rollback (store);
      return FALSE;
    }
  sqlite3_bind_text (stmt, 1, job->backend, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 2, job->operation, -1, SQLITE_STATIC);
  sqlite3_bind_text (stmt, 3, job->key, -1, SQLITE_STATIC);
  if (job->payload != NULL)
    {
      sqlite3_bind_text (stmt, 4, g_variant_get_type_string (job->payload), -1, SQLITE_STATIC);
      sqlite3_bind_blob64 (stmt, 5, g_variant_get_data (job->payload),
                           g_variant_get_size (job->payload), SQLITE_STATIC);
    }
  sqlite3_bind_int64 (stmt, 6, job->attempts);
  sqlite3_bind_text (stmt, 7, job->last_error, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stmt, 8, job->now);
  sqlite3_bind_int64 (stmt, 9, job->next_attempt);
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_DONE)
    {
      store_set_error (store->db, rc, "insert", error);
      store_rollback (store);
      return FALSE;
    }
  job->id = (guint64) sqlite3_last_insert_rowid (store->db);
  job->next_out = job->next_attempt;
  if (!store_exec (store, "COMMIT", error))
    {
      store_rollback (store);
      return FALSE;
    }
  job->added = TRUE;
  store->count++;
  return TRUE;
}

static void
enqueue_job_done (Job          *base,
                  const GError *error)
{
  EnqueueJob *job = (EnqueueJob *) base;
  BpDeadLetters *self = base->self;

  if (error != NULL)
    {
      g_task_return_error (base->task, g_error_copy (error));
      return;
    }

  if (job->added)
    {
      g_signal_emit (self, signals[SIGNAL_ADDED], 0, job->id, job->backend, job->operation);
      /* Wake the scheduler only if this entry may be due before it
       * would wake anyway. */
      if (g_hash_table_contains (self->handlers, job->backend))
        {
          gint64 delay = job->next_out - bp_dead_letters_get_now_unix (self);
          gint64 due = bp_clock_get_time (self->clock) + MAX (delay, 0);

          if (self->pass_running || self->timer == NULL || due < self->timer_deadline)
            bp_dead_letters_schedule (self);
        }
    }

  g_task_set_task_data (base->task, GINT_TO_POINTER (job->added), NULL);
  g_task_return_pointer (base->task, g_memdup2 (&job->id, sizeof job->id), g_free);
}

static gboolean
check_name (const char  *value,
            const char  *field,
            gsize        max_len,
            GError     **error)
{
  if (value == NULL || *value == '\0')
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "%s must not be empty", field);
      return FALSE;
    }
  if (strlen (value) > max_len)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "%s is longer than %" G_GSIZE_FORMAT " bytes",
                   field, max_len);
      return FALSE;
    }
  if (!g_utf8_validate (value, -1, NULL))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "%s is not valid UTF-8", field);
      return FALSE;
    }
  return TRUE;
}

static char *
truncate_message (const char *message)
{
  g_autofree char *valid = g_utf8_make_valid (message != NULL ? message : "", -1);
  const char *end;

  if (strlen (valid) <= MAX_ERROR_LEN)
    return g_steal_pointer (&valid);
  end = g_utf8_find_prev_char (valid, valid + MAX_ERROR_LEN + 1);
  return g_strndup (valid, end - valid);
}

/**
 * bp_dead_letters_enqueue_async:
 * @self: a #BpDeadLetters
 * @backend: the backend's name
 * @operation: what to replay, e.g. `Sql.Query`
 * @payload: (nullable): the operation's arguments; may be floating. At
 *   most max-payload-size bytes serialized
 * @idempotency_key: the operation's idempotency key; one entry per
 *   (@backend, @idempotency_key)
 * @last_error: (nullable): why the operation failed; its message becomes
 *   last-error and its retry-after (bp_error_get_retry_after()) bounds the
 *   next attempt
 * @attempts: how many attempts were already made
 * @not_before_us: earliest next attempt, in Unix µs
 *   (bp_dead_letters_get_now_unix() base), or 0
 * @cancellable: (nullable): cancels before the write starts; once started
 *   the write completes (but the finish still reports
 *   `G_IO_ERROR_CANCELLED`; enqueueing again with the same key is safe)
 * @callback: (scope async): called when the entry is durable
 * @user_data: data for @callback
 *
 * Adds an entry, due after the base replay delay (with jitter), never
 * before @last_error's retry-after nor @not_before_us. If the backend
 * already has an entry with this key, nothing is written and its id is
 * returned (whether that entry is due, in flight or poisoned). Its
 * last-error is truncated to 4096 bytes.
 *
 * Fails with %BP_ERROR_LIMIT_EXCEEDED when max-entries are stored or the
 * payload is larger than max-payload-size, %BP_ERROR_INVALID_ARGUMENT for
 * an empty, oversized (@backend and @operation over 256 bytes,
 * @idempotency_key over 1024) or non-UTF-8 name, %BP_ERROR_UNAVAILABLE
 * once the store is closing, or with a SQLite error as for
 * [func@Bp.DeadLetters.open_finish]. On success emits
 * [signal@Bp.DeadLetters::added] (for a new entry) before @callback runs,
 * and the scheduler picks the entry up when it falls due.
 */
void
bp_dead_letters_enqueue_async (BpDeadLetters       *self,
                               const char          *backend,
                               const char          *operation,
                               GVariant            *payload,
                               const char          *idempotency_key,
                               const GError        *last_error,
                               guint                attempts,
                               gint64               not_before_us,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GVariant) owned_payload = NULL;
  GError *error = NULL;
  GTask *task;
  EnqueueJob *job;
  gint64 now, next, retry_after;

  g_return_if_fail (BP_IS_DEAD_LETTERS (self));

  if (payload != NULL)
    owned_payload = g_variant_get_normal_form (g_variant_ref_sink (payload));
  if (payload != NULL)
    g_variant_unref (payload);

  task = bp_dead_letters_new_task (self, cancellable, callback, user_data, bp_dead_letters_enqueue_async);
  g_task_set_name (task, "[backplane] bp_dead_letters_enqueue_async");

  if (!check_name (backend, "backend", MAX_NAME_LEN, &error) ||
      !check_name (operation, "operation", MAX_NAME_LEN, &error) ||
      !check_name (idempotency_key, "idempotency-key", MAX_KEY_LEN, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  if (owned_payload != NULL && g_variant_get_size (owned_payload) > self->max_payload_size)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                               "payload is larger than %u bytes", self->max_payload_size);
      g_object_unref (task);
      return;
    }
  if (!bp_dead_letters_check_open (self, task))
    {
      g_object_unref (task);
      return;
    }

  now = bp_dead_letters_get_now_unix (self);
  next = now + jittered (self, (gint64) self->replay_base_ms * G_TIME_SPAN_MILLISECOND);
  retry_after = last_error != NULL ? bp_error_get_retry_after (last_error) : -1;
  if (retry_after > 0)
    next = MAX (next, now + retry_after * G_TIME_SPAN_MILLISECOND);
  next = MAX (next, not_before_us);

  job = job_new (sizeof (EnqueueJob), enqueue_job_run, enqueue_job_done, enqueue_job_free);
  job->backend = g_strdup (backend);
  job->operation = g_strdup (operation);
  job->key = g_strdup (idempotency_key);
  job->payload = g_steal_pointer (&owned_payload);
  job->last_error = truncate_message (last_error != NULL ? last_error->message : "");
  job->attempts = attempts;
  job->now = now;
  job->next_attempt = next;
  job->max_entries = self->max_entries;
  bp_dead_letters_submit_for (self, job, task);
}

/**
 * bp_dead_letters_enqueue_finish:
 * @self: a #BpDeadLetters
 * @result: the #GAsyncResult
 * @out_added: (out) (optional): %TRUE if a new entry was written, %FALSE
 *   if one with the same key existed
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.DeadLetters.enqueue_async]. On success the entry is
 * on disk.
 *
 * Returns: the entry's id (never 0), or 0 with @error set
 */
guint64
bp_dead_letters_enqueue_finish (BpDeadLetters  *self,
                                GAsyncResult   *result,
                                gboolean       *out_added,
                                GError        **error)
{
  g_autofree guint64 *id = NULL;

  g_return_val_if_fail (BP_IS_DEAD_LETTERS (self), 0);
  g_return_val_if_fail (g_task_is_valid (result, self), 0);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_dead_letters_enqueue_async, 0);

  id = g_task_propagate_pointer (G_TASK (result), error);
  if (id == NULL)
    return 0;
  if (out_added != NULL)
    *out_added = GPOINTER_TO_INT (g_task_get_task_data (G_TASK (result)));
  return *id;
}

/* ---- list, get --------------------------------------------------------- */

typedef struct
{
  Job       job;
  guint     offset;
  guint     limit;
  char     *backend;     /* (nullable) */
  int       poisoned;    /* -1: any */
  GVariant *out;         /* (owned) */
} ListJob;

static void
list_job_free (gpointer data)
{
  ListJob *job = data;

  g_free (job->backend);
  g_clear_pointer (&job->out, g_variant_unref);
}

static gboolean
list_job_run (Job     *base,
              Store   *store,
              GError **error)
{
  ListJob *job = (ListJob *) base;
  g_autoptr(sqlite3_stmt) stmt = NULL;
  GVariantBuilder builder;
  int rc;

  stmt = store_prepare (store,
                        "SELECT id, backend, operation, idempotency_key, attempts, next_attempt, last_error "
                        "FROM dead_letters "
                        "WHERE (?1 IS NULL OR backend = ?1) AND (?2 < 0 OR poisoned = ?2) "
                        "ORDER BY id LIMIT ?3 OFFSET ?4",
                        error);
  if (stmt == NULL)
    return FALSE;
  if (job->backend != NULL)
    sqlite3_bind_text (stmt, 1, job->backend, -1, SQLITE_STATIC);
  sqlite3_bind_int (stmt, 2, job->poisoned);
  sqlite3_bind_int64 (stmt, 3, job->limit);
  sqlite3_bind_int64 (stmt, 4, job->offset);

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(tsssuxs)"));
  while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
    {
      g_autofree char *backend = column_dup (stmt, 1);
      g_autofree char *operation = column_dup (stmt, 2);
      g_autofree char *key = column_dup (stmt, 3);
      g_autofree char *last_error = column_dup (stmt, 6);

      g_variant_builder_add (&builder, "(tsssuxs)",
                             (guint64) sqlite3_column_int64 (stmt, 0),
                             backend, operation, key,
                             (guint32) CLAMP (sqlite3_column_int64 (stmt, 4), 0, G_MAXUINT32),
                             (gint64) sqlite3_column_int64 (stmt, 5),
                             last_error);
    }
  if (rc != SQLITE_DONE)
    {
      g_variant_builder_clear (&builder);
      return store_set_error (store->db, rc, "list", error);
    }
  job->out = g_variant_ref_sink (g_variant_builder_end (&builder));
  return TRUE;
}

static void
list_job_done (Job          *base,
               const GError *error)
{
  ListJob *job = (ListJob *) base;

  if (error != NULL)
    g_task_return_error (base->task, g_error_copy (error));
  else
    g_task_return_pointer (base->task, g_steal_pointer (&job->out), (GDestroyNotify) g_variant_unref);
}

static gboolean
parse_filter (GVariant    *filter,
              char       **out_backend,
              int         *out_poisoned,
              GError     **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  *out_backend = NULL;
  *out_poisoned = -1;
  if (filter == NULL)
    return TRUE;
  if (!g_variant_is_of_type (filter, G_VARIANT_TYPE_VARDICT))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "filter must be a{sv}");
      return FALSE;
    }

  g_variant_iter_init (&iter, filter);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) v = value;

      if (g_str_equal (key, "backend") && g_variant_is_of_type (v, G_VARIANT_TYPE_STRING))
        {
          g_free (*out_backend);
          *out_backend = g_variant_dup_string (v, NULL);
        }
      else if (g_str_equal (key, "poisoned") && g_variant_is_of_type (v, G_VARIANT_TYPE_BOOLEAN))
        *out_poisoned = g_variant_get_boolean (v) ? 1 : 0;
      else
        {
          g_clear_pointer (out_backend, g_free);
          if (g_str_equal (key, "backend") || g_str_equal (key, "poisoned"))
            g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                         "filter key “%s” has the wrong type %s", key, g_variant_get_type_string (v));
          else
            g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                         "Unknown filter key “%s”", key);
          return FALSE;
        }
    }
  return TRUE;
}

/**
 * bp_dead_letters_list_async:
 * @self: a #BpDeadLetters
 * @offset: rows to skip
 * @limit: rows to return, at most 1000; 0 means 100
 * @filter: (nullable): an `a{sv}` with the optional keys `backend` s and
 *   `poisoned` b; any other key is %BP_ERROR_INVALID_ARGUMENT
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the page
 * @user_data: data for @callback
 *
 * Lists entries in id order (that is, oldest first), the shape of
 * DeadLetters.List in API.md: a page of @limit entries after skipping
 * @offset. @filter may be floating. Fails with %BP_ERROR_INVALID_ARGUMENT
 * for a @limit over 1000 or a bad @filter, %BP_ERROR_UNAVAILABLE once the
 * store is closing. Finish with [method@Bp.DeadLetters.list_finish].
 */
void
bp_dead_letters_list_async (BpDeadLetters       *self,
                            guint                offset,
                            guint                limit,
                            GVariant            *filter,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_autoptr(GVariant) owned_filter = filter != NULL ? g_variant_ref_sink (filter) : NULL;
  GError *error = NULL;
  GTask *task;
  ListJob *job;
  char *backend = NULL;
  int poisoned = -1;

  g_return_if_fail (BP_IS_DEAD_LETTERS (self));

  task = bp_dead_letters_new_task (self, cancellable, callback, user_data, bp_dead_letters_list_async);
  g_task_set_name (task, "[backplane] bp_dead_letters_list_async");
  if (limit > LIST_MAX_LIMIT)
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                               "limit must be at most %u", LIST_MAX_LIMIT);
      g_object_unref (task);
      return;
    }
  if (!parse_filter (owned_filter, &backend, &poisoned, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  if (!bp_dead_letters_check_open (self, task))
    {
      g_free (backend);
      g_object_unref (task);
      return;
    }

  job = job_new (sizeof (ListJob), list_job_run, list_job_done, list_job_free);
  job->offset = offset;
  job->limit = limit == 0 ? LIST_DEFAULT_LIMIT : limit;
  job->backend = backend;
  job->poisoned = poisoned;
  bp_dead_letters_submit_for (self, job, task);
}

/**
 * bp_dead_letters_list_finish:
 * @self: a #BpDeadLetters
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.DeadLetters.list_async]. The page is empty past the
 * last entry.
 *
 * Returns: (transfer full): `a(tsssuxs)`: id, backend, operation,
 *   idempotency key, attempts, next attempt (Unix µs), last error; %NULL
 *   with @error set
 */
GVariant *
bp_dead_letters_list_finish (BpDeadLetters  *self,
                             GAsyncResult   *result,
                             GError        **error)
{
  g_return_val_if_fail (BP_IS_DEAD_LETTERS (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_dead_letters_list_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

typedef struct
{
  Job       job;
  guint64   id;
  GVariant *out;     /* (owned) */
  Entry    *entry;   /* (owned) for replay */
} GetJob;

static void
get_job_free (gpointer data)
{
  GetJob *job = data;

  g_clear_pointer (&job->out, g_variant_unref);
  g_clear_pointer (&job->entry, entry_free);
}

static gboolean
get_job_run (Job     *base,
             Store   *store,
             GError **error)
{
  GetJob *job = (GetJob *) base;
  g_autoptr(sqlite3_stmt) stmt = NULL;
  GVariantDict dict;
  Entry *entry;
  int rc;

  stmt = store_prepare (store,
                        "SELECT id, backend, operation, idempotency_key, payload_type, payload, "
                        "attempts, replays, last_error, created_at, next_attempt, poisoned "
                        "FROM dead_letters WHERE id = ?1",
                        error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) job->id);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_DONE)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_NOT_FOUND,
                   "No dead letter with id %" G_GUINT64_FORMAT, job->id);
      return FALSE;
    }
  if (rc != SQLITE_ROW)
    return store_set_error (store->db, rc, "get", error);

  entry = g_new0 (Entry, 1);
  entry->id = job->id;
  entry->backend = column_dup (stmt, 1);
  entry->operation = column_dup (stmt, 2);
  entry->key = column_dup (stmt, 3);
  entry->payload = payload_from_row (stmt, 4, 5);
  entry->next_attempt = sqlite3_column_int64 (stmt, 10);
  entry->poisoned = sqlite3_column_int (stmt, 11) != 0;
  job->entry = entry;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "id", "t", job->id);
  g_variant_dict_insert (&dict, "backend", "s", entry->backend);
  g_variant_dict_insert (&dict, "operation", "s", entry->operation);
  g_variant_dict_insert (&dict, "idempotency-key", "s", entry->key);
  g_variant_dict_insert (&dict, "attempts", "u", (guint32) CLAMP (sqlite3_column_int64 (stmt, 6), 0, G_MAXUINT32));
  g_variant_dict_insert (&dict, "replays", "u", (guint32) CLAMP (sqlite3_column_int64 (stmt, 7), 0, G_MAXUINT32));
  {
    g_autofree char *last_error = column_dup (stmt, 8);

    g_variant_dict_insert (&dict, "last-error", "s", last_error);
  }
  g_variant_dict_insert (&dict, "created-at", "x", (gint64) sqlite3_column_int64 (stmt, 9));
  g_variant_dict_insert (&dict, "next-attempt", "x", entry->next_attempt);
  g_variant_dict_insert (&dict, "poisoned", "b", entry->poisoned);
  if (entry->payload != NULL)
    g_variant_dict_insert_value (&dict, "payload", g_variant_new_variant (entry->payload));
  job->out = g_variant_ref_sink (g_variant_dict_end (&dict));
  return TRUE;
}

static void
get_job_done (Job          *base,
              const GError *error)
{
  GetJob *job = (GetJob *) base;

  if (error != NULL)
    g_task_return_error (base->task, g_error_copy (error));
  else
    g_task_return_pointer (base->task, g_steal_pointer (&job->out), (GDestroyNotify) g_variant_unref);
}

/**
 * bp_dead_letters_get_async:
 * @self: a #BpDeadLetters
 * @id: an entry id
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called with the entry
 * @user_data: data for @callback
 *
 * Reads one entry, payload included; fails with %BP_ERROR_NOT_FOUND if
 * there is none, %BP_ERROR_UNAVAILABLE once the store is closing. Finish
 * with [method@Bp.DeadLetters.get_finish].
 */
void
bp_dead_letters_get_async (BpDeadLetters       *self,
                           guint64              id,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  GTask *task;
  GetJob *job;

  g_return_if_fail (BP_IS_DEAD_LETTERS (self));

  task = bp_dead_letters_new_task (self, cancellable, callback, user_data, bp_dead_letters_get_async);
  g_task_set_name (task, "[backplane] bp_dead_letters_get_async");
  if (!bp_dead_letters_check_open (self, task))
    {
      g_object_unref (task);
      return;
    }
  job = job_new (sizeof (GetJob), get_job_run, get_job_done, get_job_free);
  job->id = id;
  bp_dead_letters_submit_for (self, job, task);
}

/**
 * bp_dead_letters_get_finish:
 * @self: a #BpDeadLetters
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.DeadLetters.get_async].
 *
 * Returns: (transfer full): an `a{sv}` with `id` t, `backend` s,
 *   `operation` s, `idempotency-key` s, `attempts` u, `replays` u (failed
 *   replays, the poison counter), `last-error` s, `created-at` x,
 *   `next-attempt` x (both Unix µs), `poisoned` b and, if it has one,
 *   `payload` v; %NULL with @error set
 */
GVariant *
bp_dead_letters_get_finish (BpDeadLetters  *self,
                            GAsyncResult   *result,
                            GError        **error)
{
  g_return_val_if_fail (BP_IS_DEAD_LETTERS (self), NULL);
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_dead_letters_get_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- delete, purge, replay-all, flush ---------------------------------- */

typedef struct
{
  Job      job;
  guint64  id;          /* delete */
  char    *backend;     /* purge, replay-all: "" for all */
  gint64   now;         /* replay-all */
  guint    n;           /* out */
} CountJob;

static void
count_job_free (gpointer data)
{
  CountJob *job = data;

  g_free (job->backend);
}

static gboolean
delete_job_run (Job     *base,
                Store   *store,
                GError **error)
{
  CountJob *job = (CountJob *) base;
  g_autoptr(sqlite3_stmt) stmt = NULL;
  int rc;

  stmt = store_prepare (store, "DELETE FROM dead_letters WHERE id = ?1 RETURNING poisoned", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) job->id);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_DONE)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_NOT_FOUND,
                   "No dead letter with id %" G_GUINT64_FORMAT, job->id);
      return FALSE;
    }
  if (rc != SQLITE_ROW)
    return store_set_error (store->db, rc, "delete", error);
  if (sqlite3_column_int (stmt, 0) != 0)
    store->poisoned--;
  store->count--;
  job->n = 1;
  /* Step to the end so the statement (and its autocommit) completes. */
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_DONE)
    return store_set_error (store->db, rc, "delete", error);
  return TRUE;
}

static gboolean
purge_job_run (Job     *base,
               Store   *store,
               GError **error)
{
  CountJob *job = (CountJob *) base;
  g_autoptr(sqlite3_stmt) stmt = NULL;
  int rc;

  stmt = store_prepare (store, "DELETE FROM dead_letters WHERE ?1 = '' OR backend = ?1", error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_text (stmt, 1, job->backend, -1, SQLITE_STATIC);
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_DONE)
    return store_set_error (store->db, rc, "purge", error);
  job->n = (guint) sqlite3_changes (store->db);
  return store_recount (store, error);
}

static gboolean
replay_all_job_run (Job     *base,
                    Store   *store,
                    GError **error)
{
  CountJob *job = (CountJob *) base;
  g_autoptr(sqlite3_stmt) stmt = NULL;
  int rc;

  stmt = store_prepare (store,
                        "UPDATE dead_letters SET next_attempt = MIN(next_attempt, ?2) "
                        "WHERE poisoned = 0 AND (?1 = '' OR backend = ?1)",
                        error);
  if (stmt == NULL)
    return FALSE;
  sqlite3_bind_text (stmt, 1, job->backend, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stmt, 2, job->now);
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_DONE)
    return store_set_error (store->db, rc, "replay all", error);
  job->n = (guint) sqlite3_changes (store->db);
  return TRUE;
}

static gboolean
flush_job_run (Job     *base,
               Store   *store,
               GError **error)
{
  return TRUE;
}

static void
count_job_done (Job          *base,
                const GError *error)
{
  CountJob *job = (CountJob *) base;

  if (error != NULL)
    {
      g_task_return_error (base->task, g_error_copy (error));
      return;
    }
  if (base->run == replay_all_job_run)
    bp_dead_letters_schedule (base->self);
  g_task_return_int (base->task, job->n);
}

static void
bp_dead_letters_count_job (BpDeadLetters       *self,
                           JobRunFunc           run,
                           guint64              id,
                           const char          *backend,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data,
                           gpointer             source_tag,
                           const char          *name)
{
  GTask *task;
  CountJob *job;

  task = bp_dead_letters_new_task (self, cancellable, callback, user_data, source_tag);
  g_task_set_name (task, name);
  if (backend != NULL && *backend != '\0' &&
      (strlen (backend) > MAX_NAME_LEN || !g_utf8_validate (backend, -1, NULL)))
    {
      g_task_return_new_error (task, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "backend is not a valid name");
      g_object_unref (task);
      return;
    }
  if (!bp_dead_letters_check_open (self, task))
    {
      g_object_unref (task);
      return;
    }
  job = job_new (sizeof (CountJob), run, count_job_done, count_job_free);
  job->id = id;
  job->backend = g_strdup (backend != NULL ? backend : "");
  job->now = bp_dead_letters_get_now_unix (self);
  bp_dead_letters_submit_for (self, job, task);
}

static gssize
bp_dead_letters_count_finish (BpDeadLetters  *self,
                              GAsyncResult   *result,
                              gpointer        source_tag,
                              GError        **error)
{
  g_return_val_if_fail (BP_IS_DEAD_LETTERS (self), -1);
  g_return_val_if_fail (g_task_is_valid (result, self), -1);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == source_tag, -1);

  return g_task_propagate_int (G_TASK (result), error);
}

/**
 * bp_dead_letters_delete_async:
 * @self: a #BpDeadLetters
 * @id: an entry id
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when the entry is gone
 * @user_data: data for @callback
 *
 * Deletes one entry, poisoned or not; %BP_ERROR_NOT_FOUND if there is none.
 * A replay of it in flight still completes, but finds nothing to update
 * (and emits no [signal@Bp.DeadLetters::resolved]). Finish with
 * [method@Bp.DeadLetters.delete_finish].
 */
void
bp_dead_letters_delete_async (BpDeadLetters       *self,
                              guint64              id,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  g_return_if_fail (BP_IS_DEAD_LETTERS (self));
  bp_dead_letters_count_job (self, delete_job_run, id, NULL, cancellable, callback, user_data,
                             bp_dead_letters_delete_async, "[backplane] bp_dead_letters_delete_async");
}

/**
 * bp_dead_letters_delete_finish:
 * @self: a #BpDeadLetters
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.DeadLetters.delete_async].
 *
 * Returns: %TRUE if the entry was deleted; %FALSE with @error set
 *   (%BP_ERROR_NOT_FOUND if there was no such entry)
 */
gboolean
bp_dead_letters_delete_finish (BpDeadLetters  *self,
                               GAsyncResult   *result,
                               GError        **error)
{
  return bp_dead_letters_count_finish (self, result, bp_dead_letters_delete_async, error) > 0;
}

/**
 * bp_dead_letters_purge_async:
 * @self: a #BpDeadLetters
 * @backend: (nullable): a backend name, or "" / %NULL for all
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called when done
 * @user_data: data for @callback
 *
 * Deletes every entry of @backend, or of every backend (poisoned ones
 * too). Replays in flight complete but find nothing to update. Fails with
 * %BP_ERROR_INVALID_ARGUMENT for a name over 256 bytes or not UTF-8.
 * Finish with [method@Bp.DeadLetters.purge_finish].
 */
void
bp_dead_letters_purge_async (BpDeadLetters       *self,
                             const char          *backend,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_return_if_fail (BP_IS_DEAD_LETTERS (self));
  bp_dead_letters_count_job (self, purge_job_run, 0, backend, cancellable, callback, user_data,
                             bp_dead_letters_purge_async, "[backplane] bp_dead_letters_purge_async");
}

/**
 * bp_dead_letters_purge_finish:
 * @self: a #BpDeadLetters
 * @result: the #GAsyncResult
 * @out_count: (out) (optional): how many entries were deleted
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.DeadLetters.purge_async].
 *
 * Returns: %TRUE on success
 */
gboolean
bp_dead_letters_purge_finish (BpDeadLetters  *self,
                              GAsyncResult   *result,
                              guint          *out_count,
                              GError        **error)
{
  gssize n = bp_dead_letters_count_finish (self, result, bp_dead_letters_purge_async, error);

  if (n < 0)
    return FALSE;
  if (out_count != NULL)
    *out_count = (guint) n;
  return TRUE;
}

/**
 * bp_dead_letters_replay_all_async:
 * @self: a #BpDeadLetters
 * @backend: (nullable): a backend name, or "" / %NULL for all
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the entries are rescheduled
 * @user_data: data for @callback
 *
 * Makes every non-poisoned entry of @backend (or of every backend) due
 * now. They are then replayed by the scheduler, through the handler,
 * rate-limited as usual; entries of a backend without a handler stay
 * waiting. Poisoned entries stay put; replay them one by one with
 * [method@Bp.DeadLetters.replay_async]. Finish with
 * [method@Bp.DeadLetters.replay_all_finish].
 */
void
bp_dead_letters_replay_all_async (BpDeadLetters       *self,
                                  const char          *backend,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_return_if_fail (BP_IS_DEAD_LETTERS (self));
  bp_dead_letters_count_job (self, replay_all_job_run, 0, backend, cancellable, callback, user_data,
                             bp_dead_letters_replay_all_async,
                             "[backplane] bp_dead_letters_replay_all_async");
}

/**
 * bp_dead_letters_replay_all_finish:
 * @self: a #BpDeadLetters
 * @result: the #GAsyncResult
 * @out_count: (out) (optional): how many entries were scheduled
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.DeadLetters.replay_all_async]. It completes once the
 * entries are rescheduled, not once they are replayed.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_dead_letters_replay_all_finish (BpDeadLetters  *self,
                                   GAsyncResult   *result,
                                   guint          *out_count,
                                   GError        **error)
{
  gssize n = bp_dead_letters_count_finish (self, result, bp_dead_letters_replay_all_async, error);

  if (n < 0)
    return FALSE;
  if (out_count != NULL)
    *out_count = (guint) n;
  return TRUE;
}

/**
 * bp_dead_letters_flush_async:
 * @self: a #BpDeadLetters
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called after every store operation queued
 *   before this one has completed and called back
 * @user_data: data for @callback
 *
 * A barrier: operations run one at a time in submission order, so this
 * completes after all earlier ones. Useful in tests and before shutdown.
 * Replays in flight are not waited for. Finish with
 * [method@Bp.DeadLetters.flush_finish].
 */
void
bp_dead_letters_flush_async (BpDeadLetters       *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_return_if_fail (BP_IS_DEAD_LETTERS (self));
  bp_dead_letters_count_job (self, flush_job_run, 0, NULL, cancellable, callback, user_data,
                             bp_dead_letters_flush_async, "[backplane] bp_dead_letters_flush_async");
}

/**
 * bp_dead_letters_flush_finish:
 * @self: a #BpDeadLetters
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.DeadLetters.flush_async]. It fails only with
 * %BP_ERROR_UNAVAILABLE (the store is closing),
 * %BP_ERROR_LIMIT_EXCEEDED (too many operations queued) or
 * `G_IO_ERROR_CANCELLED`.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_dead_letters_flush_finish (BpDeadLetters  *self,
                              GAsyncResult   *result,
                              GError        **error)
{
  return bp_dead_letters_count_finish (self, result, bp_dead_letters_flush_async, error) >= 0;
}

/* ---- replay ------------------------------------------------------------ */

typedef enum
{
  OUTCOME_SUCCESS,
  OUTCOME_FAILURE,
  OUTCOME_NOT_ADMITTED,   /* the breaker refused: not an attempt */
  OUTCOME_CANCELLED,      /* not an attempt, nothing changes */
} Outcome;

typedef struct
{
  BpDeadLetters *self;      /* (owned) */
  Entry         *entry;     /* (owned) */
  Handler       *handler;   /* (owned) */
  GTask         *forced;    /* (owned) (nullable) bp_dead_letters_replay_async() */
  GError        *error;     /* (owned) (nullable) the handler's */
} Replay;

static void
replay_free (Replay *replay)
{
  g_clear_pointer (&replay->entry, entry_free);
  g_clear_pointer (&replay->handler, handler_unref);
  g_clear_object (&replay->forced);
  g_clear_error (&replay->error);
  g_clear_object (&replay->self);
  g_free (replay);
}

typedef struct
{
  Job       job;
  Replay   *replay;          /* (owned) */
  Outcome   outcome;
  char     *message;
  gint64    now;
  gint64    not_admitted_next;
  gint64    retry_after_us;  /* -1: none */
  double    jitter;
  gint64    base_us;
  gint64    cap_us;
  guint     poison_after;
  gboolean  deleted;         /* out */
  gboolean  newly_poisoned;  /* out */
} OutcomeJob;

static void
outcome_job_free (gpointer data)
{
  OutcomeJob *job = data;

  g_clear_pointer (&job->replay, replay_free);
  g_free (job->message);
}

static gint64
backoff_us (gint64 base,
            gint64 cap,
            gint64 n,
            double jitter)
{
  gint64 delay = base;

  /* base · 2^(n-1), capped, without overflow. */
  for (gint64 i = 1; i < n && delay < cap; i++)
    delay *= 2;
  delay = MIN (delay, cap);
  return delay / 2 + (gint64) (jitter * (double) (delay / 2));
}

static gboolean
outcome_job_run (Job     *base,
                 Store   *store,
                 GError **error)
{
  OutcomeJob *job = (OutcomeJob *) base;
  guint64 id = job->replay->entry->id;
  g_autoptr(sqlite3_stmt) stmt = NULL;
  gint64 replays, attempts, next;
  gboolean was_poisoned, poisoned;
  int rc;

  switch (job->outcome)
    {
    case OUTCOME_CANCELLED:
      return TRUE;

    case OUTCOME_SUCCESS:
      stmt = store_prepare (store, "DELETE FROM dead_letters WHERE id = ?1 RETURNING poisoned", error);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) id);
      rc = sqlite3_step (stmt);
      if (rc == SQLITE_ROW)
        {
          if (sqlite3_column_int (stmt, 0) != 0)
            store->poisoned--;
          store->count--;
          job->deleted = TRUE;
          rc = sqlite3_step (stmt);
        }
      if (rc != SQLITE_DONE)
        return store_set_error (store->db, rc, "resolve", error);
      return TRUE;

    case OUTCOME_NOT_ADMITTED:
      stmt = store_prepare (store, "UPDATE dead_letters SET next_attempt = ?2 WHERE id = ?1", error);
      if (stmt == NULL)
        return FALSE;
      sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) id);
      sqlite3_bind_int64 (stmt, 2, job->not_admitted_next);
      rc = sqlite3_step (stmt);
      if (rc != SQLITE_DONE)
        return store_set_error (store->db, rc, "reschedule", error);
      return TRUE;

    case OUTCOME_FAILURE:
    default:
      break;
    }

  if (!store_exec (store, "BEGIN IMMEDIATE", error))
    return FALSE;
  stmt = store_prepare (store, "SELECT replays, attempts, poisoned FROM dead_letters WHERE id = ?1", error);
  if (stmt == NULL)
    {
      store_rollback (store);
      return FALSE;
    }
  sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) id);
  rc = sqlite3_step (stmt);
  if (rc == SQLITE_DONE)
    {
      /* Deleted or purged while it was replayed. */
      g_clear_pointer (&stmt, sqlite3_finalize);
      return store_exec (store, "COMMIT", error);
    }
  if (rc != SQLITE_ROW)
    {
      store_set_error (store->db, rc, "read", error);
      g_clear_pointer (&stmt, sqlite3_finalize);
      store_rollback (store);
      return FALSE;
    }
  replays = sqlite3_column_int64 (stmt, 0) + 1;
  attempts = sqlite3_column_int64 (stmt, 1) + 1;
  was_poisoned = sqlite3_column_int (stmt, 2) != 0;
  g_clear_pointer (&stmt, sqlite3_finalize);

  poisoned = was_poisoned || replays >= job->poison_after;
  next = job->now + backoff_us (job->base_us, job->cap_us, replays, job->jitter);
  if (job->retry_after_us > 0)
    next = MAX (next, job->now + job->retry_after_us);

  stmt = store_prepare (store,
                        "UPDATE dead_letters SET replays = ?2, attempts = ?3, last_error = ?4, "
                        "next_attempt = ?5, poisoned = ?6 WHERE id = ?1",
                        error);
  if (stmt == NULL)
    {
      store_rollback (store);
      return FALSE;
    }
  sqlite3_bind_int64 (stmt, 1, (sqlite3_int64) id);
  sqlite3_bind_int64 (stmt, 2, replays);
  sqlite3_bind_int64 (stmt, 3, attempts);
  sqlite3_bind_text (stmt, 4, job->message, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stmt, 5, next);
  sqlite3_bind_int (stmt, 6, poisoned ? 1 : 0);
  rc = sqlite3_step (stmt);
  if (rc != SQLITE_DONE)
    {
      store_set_error (store->db, rc, "update", error);
      g_clear_pointer (&stmt, sqlite3_finalize);
      store_rollback (store);
      return FALSE;
    }
  g_clear_pointer (&stmt, sqlite3_finalize);
  if (!store_exec (store, "COMMIT", error))
    {
      store_rollback (store);
      return FALSE;
    }
  if (poisoned && !was_poisoned)
    {
      store->poisoned++;
      job->newly_poisoned = TRUE;
    }
  return TRUE;
}

static void
bp_dead_letters_replay_finished (BpDeadLetters *self,
                                 Replay        *replay)
{
  const char *backend = replay->entry->backend;
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->backend_in_flight, backend));

  g_hash_table_remove (self->in_flight, &replay->entry->id);
  if (n <= 1)
    g_hash_table_remove (self->backend_in_flight, backend);
  else
    g_hash_table_insert (self->backend_in_flight, g_strdup (backend), GUINT_TO_POINTER (n - 1));
}

static void
outcome_job_done (Job          *base,
                  const GError *error)
{
  OutcomeJob *job = (OutcomeJob *) base;
  BpDeadLetters *self = base->self;
  Replay *replay = job->replay;
  guint64 id = replay->entry->id;

  bp_dead_letters_replay_finished (self, replay);

  if (error != NULL)
    g_debug ("dead letter %" G_GUINT64_FORMAT ": recording the replay failed: %s", id, error->message);
  if (job->deleted)
    g_signal_emit (self, signals[SIGNAL_RESOLVED], 0, id);
  if (job->newly_poisoned)
    g_signal_emit (self, signals[SIGNAL_POISONED], 0, id);

  if (replay->forced != NULL)
    {
      GTask *forced = g_steal_pointer (&replay->forced);

      if (replay->error != NULL)
        g_task_return_error (forced, g_steal_pointer (&replay->error));
      else if (error != NULL)
        g_task_return_error (forced, g_error_copy (error));
      else
        g_task_return_boolean (forced, TRUE);
      g_object_unref (forced);
    }

  bp_dead_letters_schedule (self);
  bp_dead_letters_maybe_finish_close (self);
}

/* Runs on the store's context when the handler completed its task. */
static void
replay_done_cb (GObject      *source_object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Replay *replay = user_data;
  BpDeadLetters *self = replay->self;
  g_autoptr(GError) error = NULL;
  OutcomeJob *job;
  gint64 retry_after_ms;

  job = job_new (sizeof (OutcomeJob), outcome_job_run, outcome_job_done, outcome_job_free);
  job->now = bp_dead_letters_get_now_unix (self);
  job->base_us = (gint64) self->replay_base_ms * G_TIME_SPAN_MILLISECOND;
  job->cap_us = MAX ((gint64) self->replay_cap_ms * G_TIME_SPAN_MILLISECOND, job->base_us);
  job->poison_after = self->poison_after;
  job->jitter = bp_clock_random_double (self->clock);
  job->retry_after_us = -1;

  if (g_task_propagate_boolean (G_TASK (result), &error))
    job->outcome = OUTCOME_SUCCESS;
  else
    {
      if (error == NULL)
        g_set_error_literal (&error, BP_ERROR, BP_ERROR_FAILED, "The replay handler reported failure");
      retry_after_ms = bp_error_get_retry_after (error);
      if (retry_after_ms > 0)
        job->retry_after_us = retry_after_ms * G_TIME_SPAN_MILLISECOND;

      if ((g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
           g_error_matches (error, BP_ERROR, BP_ERROR_CANCELLED)) &&
          g_cancellable_is_cancelled (self->cancellable))
        job->outcome = OUTCOME_CANCELLED;   /* the queue is closing */
      else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ||
               g_error_matches (error, BP_ERROR, BP_ERROR_CANCELLED))
        {
          /* The handler gave up on its own (its backend stopping, say): not
           * an attempt, but not due again at once either, or the scheduler
           * would pick it straight back up. */
          job->outcome = OUTCOME_NOT_ADMITTED;
          job->not_admitted_next = job->now + jittered (self, job->base_us);
        }
      else if (g_error_matches (error, BP_ERROR, BP_ERROR_CIRCUIT_OPEN))
        {
          job->outcome = OUTCOME_NOT_ADMITTED;
          job->not_admitted_next = job->now +
            (job->retry_after_us > 0 ? job->retry_after_us : jittered (self, job->base_us));
        }
      else
        job->outcome = OUTCOME_FAILURE;
      job->message = truncate_message (error->message);
      replay->error = g_steal_pointer (&error);
    }

  job->replay = replay;
  bp_dead_letters_submit (self, job);
}

static void
bp_dead_letters_start_replay (BpDeadLetters *self,
                              Entry         *entry,
                              Handler       *handler,
                              GTask         *forced)
{
  Replay *replay = g_new0 (Replay, 1);
  guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->backend_in_flight, entry->backend));
  GTask *task;

  replay->self = g_object_ref (self);
  replay->entry = entry;
  replay->handler = handler_ref (handler);
  replay->forced = forced;
  g_hash_table_insert (self->in_flight, &entry->id, replay);
  g_hash_table_insert (self->backend_in_flight, g_strdup (entry->backend), GUINT_TO_POINTER (n + 1));

  g_main_context_push_thread_default (self->context);
  task = g_task_new (self, self->cancellable, replay_done_cb, replay);
  g_main_context_pop_thread_default (self->context);
  /* A replay that succeeded while the store closed still counts. */
  g_task_set_check_cancellable (task, FALSE);
  g_task_set_source_tag (task, bp_dead_letters_start_replay);
  g_task_set_name (task, "[backplane] dead-letter replay");

  g_debug ("replaying dead letter %" G_GUINT64_FORMAT " (%s %s)", entry->id, entry->backend, entry->operation);
  handler->func (self, entry->backend, entry->operation, entry->payload, entry->key,
                 self->cancellable, task, handler->user_data);
}

static void
load_job_done (Job          *base,
               const GError *error)
{
  GetJob *job = (GetJob *) base;
  BpDeadLetters *self = base->self;
  Handler *handler;

  if (error != NULL)
    {
      g_task_return_error (base->task, g_error_copy (error));
      return;
    }
  if (self->closing)
    {
      g_task_return_new_error (base->task, BP_ERROR, BP_ERROR_UNAVAILABLE, "The dead-letter store is closed");
      return;
    }
  handler = g_hash_table_lookup (self->handlers, job->entry->backend);
  if (handler == NULL)
    {
      g_task_return_new_error (base->task, BP_ERROR, BP_ERROR_UNAVAILABLE,
                               "No replay handler for backend “%s”", job->entry->backend);
      return;
    }
  if (g_hash_table_contains (self->in_flight, &job->entry->id))
    {
      g_task_return_new_error (base->task, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                               "Dead letter %" G_GUINT64_FORMAT " is being replayed already",
                               job->entry->id);
      return;
    }

  /* Forced: not due, poisoned, or over the rate limit does not matter. */
  bp_dead_letters_start_replay (self, g_steal_pointer (&job->entry), handler,
                                g_steal_pointer (&base->task));
}

/**
 * bp_dead_letters_replay_async:
 * @self: a #BpDeadLetters
 * @id: an entry id
 * @cancellable: (nullable): cancels before the replay starts
 * @callback: (scope async): called with the replay's outcome
 * @user_data: data for @callback
 *
 * Replays one entry now, even if it is not due, is poisoned, or the rate
 * limit is used up; it still counts against the backend's in-flight
 * replays. Completes with %TRUE once the handler succeeded and the entry was
 * deleted, or with the handler's error (which is recorded as for a
 * scheduled replay; a poisoned entry stays poisoned). Fails with
 * %BP_ERROR_NOT_FOUND, %BP_ERROR_UNAVAILABLE when its backend has no
 * handler or the store is closing, or %BP_ERROR_LIMIT_EXCEEDED when the
 * entry is being replayed already. Finish with
 * [method@Bp.DeadLetters.replay_finish].
 */
void
bp_dead_letters_replay_async (BpDeadLetters       *self,
                              guint64              id,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  GTask *task;
  GetJob *job;

  g_return_if_fail (BP_IS_DEAD_LETTERS (self));

  task = bp_dead_letters_new_task (self, cancellable, callback, user_data, bp_dead_letters_replay_async);
  g_task_set_name (task, "[backplane] bp_dead_letters_replay_async");
  if (!bp_dead_letters_check_open (self, task))
    {
      g_object_unref (task);
      return;
    }
  job = job_new (sizeof (GetJob), get_job_run, load_job_done, get_job_free);
  job->id = id;
  bp_dead_letters_submit_for (self, job, task);
}

/**
 * bp_dead_letters_replay_finish:
 * @self: a #BpDeadLetters
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.DeadLetters.replay_async]. The error is the
 * handler's own (any domain) when it ran, otherwise one of those listed
 * there.
 *
 * Returns: %TRUE if the replay succeeded and the entry is gone
 */
gboolean
bp_dead_letters_replay_finish (BpDeadLetters  *self,
                               GAsyncResult   *result,
                               GError        **error)
{
  g_return_val_if_fail (BP_IS_DEAD_LETTERS (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_dead_letters_replay_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- the scheduler ------------------------------------------------------ */

typedef struct
{
  char   *backend;
  guint   free_slots;
  GArray *excluded;    /* (element-type guint64) in flight */
} FetchBackend;

static void
fetch_backend_clear (FetchBackend *fb)
{
  g_free (fb->backend);
  g_array_unref (fb->excluded);
}

typedef struct
{
  Job        job;
  GArray    *backends;      /* (element-type FetchBackend) */
  guint      n;             /* take at most this many */
  gint64     now;
  GPtrArray *due;           /* (element-type Entry) out, by next attempt */
  gint64     next_due;      /* out: earliest future next attempt, 0: none */
  gboolean   more_due;      /* out: due entries left for lack of tokens */
} FetchJob;

static void
fetch_job_free (gpointer data)
{
  FetchJob *job = data;

  g_array_unref (job->backends);
  g_clear_pointer (&job->due, g_ptr_array_unref);
}

static int
compare_entries (gconstpointer a,
                 gconstpointer b)
{
  const Entry *x = *(const Entry * const *) a;
  const Entry *y = *(const Entry * const *) b;

  if (x->next_attempt != y->next_attempt)
    return x->next_attempt < y->next_attempt ? -1 : 1;
  return x->id < y->id ? -1 : x->id > y->id ? 1 : 0;
}

static gboolean
is_excluded (GArray  *excluded,
             guint64  id)
{
  for (guint i = 0; i < excluded->len; i++)
    if (g_array_index (excluded, guint64, i) == id)
      return TRUE;
  return FALSE;
}

static gboolean
fetch_job_run (Job     *base,
               Store   *store,
               GError **error)
{
  FetchJob *job = (FetchJob *) base;
  g_autoptr(GPtrArray) candidates = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
  g_autoptr(sqlite3_stmt) stmt = NULL;

  stmt = store_prepare (store,
                        "SELECT id, operation, idempotency_key, payload_type, payload, next_attempt "
                        "FROM dead_letters WHERE backend = ?1 AND poisoned = 0 "
                        "ORDER BY next_attempt, id LIMIT ?2",
                        error);
  if (stmt == NULL)
    return FALSE;

  /* Per backend, at most its free slots: the earliest entries not in
   * flight. The first one not due yet gives the wake-up time. */
  for (guint b = 0; b < job->backends->len; b++)
    {
      FetchBackend *fb = &g_array_index (job->backends, FetchBackend, b);
      guint taken = 0;
      int rc;

      sqlite3_reset (stmt);
      sqlite3_bind_text (stmt, 1, fb->backend, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (stmt, 2, (sqlite3_int64) fb->free_slots + fb->excluded->len + 1);
      while ((rc = sqlite3_step (stmt)) == SQLITE_ROW)
        {
          guint64 id = (guint64) sqlite3_column_int64 (stmt, 0);
          gint64 next = sqlite3_column_int64 (stmt, 5);
          Entry *entry;

          if (is_excluded (fb->excluded, id))
            continue;
          if (next > job->now)
            {
              if (job->next_due == 0 || next < job->next_due)
                job->next_due = next;
              break;
            }
          if (taken == fb->free_slots)
            break;   /* a completion will start another pass */
          entry = g_new0 (Entry, 1);
          entry->id = id;
          entry->backend = g_strdup (fb->backend);
          entry->operation = column_dup (stmt, 1);
          entry->key = column_dup (stmt, 2);
          entry->payload = payload_from_row (stmt, 3, 4);
          entry->next_attempt = next;
          g_ptr_array_add (candidates, entry);
          taken++;
        }
      if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return store_set_error (store->db, rc, "fetch", error);
    }

  /* Oldest due first across backends, as many as there are tokens. */
  g_ptr_array_sort (candidates, compare_entries);
  job->due = g_ptr_array_new_with_free_func ((GDestroyNotify) entry_free);
  for (guint i = 0; i < candidates->len; i++)
    {
      if (job->due->len == job->n)
        {
          job->more_due = TRUE;
          break;
        }
      g_ptr_array_add (job->due, g_steal_pointer (&candidates->pdata[i]));
    }
  return TRUE;
}

static void
bp_dead_letters_clear_timer (BpDeadLetters *self)
{
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  self->timer_deadline = 0;
}

static gboolean
bp_dead_letters_timer_cb (gpointer user_data)
{
  BpDeadLetters *self = user_data;

  g_clear_pointer (&self->timer, g_source_unref);
  self->timer_deadline = 0;
  bp_dead_letters_schedule (self);
  return G_SOURCE_REMOVE;
}

static void
bp_dead_letters_arm_timer (BpDeadLetters *self,
                           gint64         delay_us)
{
  bp_dead_letters_clear_timer (self);
  delay_us = MAX (delay_us, 0);
  self->timer = bp_clock_timeout_source_new (self->clock, delay_us);
  g_source_set_static_name (self->timer, "[backplane] BpDeadLetters scheduler");
  g_source_set_callback (self->timer, bp_dead_letters_timer_cb, self, NULL);
  g_source_attach (self->timer, self->context);
  self->timer_deadline = bp_clock_get_time (self->clock) + delay_us;
}

static void
bp_dead_letters_refill_tokens (BpDeadLetters *self)
{
  gint64 now = bp_clock_get_time (self->clock);
  double burst = MAX (1.0, (double) self->max_replays_per_second);

  if (now > self->tokens_at)
    self->tokens = MIN (burst, self->tokens +
                        (double) (now - self->tokens_at) * self->max_replays_per_second / G_USEC_PER_SEC);
  self->tokens_at = now;
}

static void
fetch_job_done (Job          *base,
                const GError *error)
{
  FetchJob *job = (FetchJob *) base;
  BpDeadLetters *self = base->self;
  gint64 wake = -1;

  self->pass_running = FALSE;
  if (self->closing)
    {
      bp_dead_letters_maybe_finish_close (self);
      return;
    }
  if (error != NULL)
    {
      /* A transient failure (disk, lock): try again after the base delay
       * rather than never. */
      g_debug ("dead-letter scheduler: %s", error->message);
      bp_dead_letters_arm_timer (self, (gint64) self->replay_base_ms * G_TIME_SPAN_MILLISECOND);
      return;
    }

  bp_dead_letters_refill_tokens (self);
  for (guint i = 0; i < job->due->len; i++)
    {
      Entry *entry = g_ptr_array_index (job->due, i);
      Handler *handler = g_hash_table_lookup (self->handlers, entry->backend);
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->backend_in_flight, entry->backend));

      /* Things may have changed while the worker fetched. */
      if (handler == NULL || n >= self->max_in_flight ||
          g_hash_table_contains (self->in_flight, &entry->id))
        continue;
      if (self->tokens < 1.0)
        {
          job->more_due = TRUE;
          break;
        }
      self->tokens -= 1.0;
      g_ptr_array_index (job->due, i) = NULL;
      bp_dead_letters_start_replay (self, entry, handler, NULL);
      if (self->closing)
        return;
    }

  if (job->next_due > 0)
    wake = MAX (job->next_due - bp_dead_letters_get_now_unix (self), 0);
  if (job->more_due)
    {
      double missing = MAX (0.0, 1.0 - self->tokens);
      gint64 token_wait = MAX (1, (gint64) ceil (missing * G_USEC_PER_SEC / self->max_replays_per_second));

      wake = wake < 0 ? token_wait : MIN (wake, token_wait);
    }

  if (self->pass_again)
    {
      self->pass_again = FALSE;
      bp_dead_letters_schedule (self);
    }
  else if (wake >= 0)
    bp_dead_letters_arm_timer (self, wake);
  else
    bp_dead_letters_clear_timer (self);
}

/* Starts a scheduler pass, or asks for another one after the running one. */
static void
bp_dead_letters_schedule (BpDeadLetters *self)
{
  GHashTableIter iter;
  gpointer key, value;
  FetchJob *job;
  GArray *backends;

  if (self->closing || self->store == NULL)
    return;
  if (self->pass_running)
    {
      self->pass_again = TRUE;
      return;
    }

  backends = g_array_new (FALSE, FALSE, sizeof (FetchBackend));
  g_array_set_clear_func (backends, (GDestroyNotify) fetch_backend_clear);
  g_hash_table_iter_init (&iter, self->handlers);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (self->backend_in_flight, key));
      FetchBackend fb;
      GHashTableIter replays;
      gpointer replay;

      if (n >= self->max_in_flight)
        continue;
      fb.backend = g_strdup (key);
      fb.free_slots = self->max_in_flight - n;
      fb.excluded = g_array_new (FALSE, FALSE, sizeof (guint64));
      g_hash_table_iter_init (&replays, self->in_flight);
      while (g_hash_table_iter_next (&replays, NULL, &replay))
        if (g_str_equal (((Replay *) replay)->entry->backend, key))
          g_array_append_val (fb.excluded, ((Replay *) replay)->entry->id);
      g_array_append_val (backends, fb);
    }

  if (backends->len == 0)
    {
      /* Nothing can be replayed until a handler or a slot frees up, and
       * both trigger a pass. */
      g_array_unref (backends);
      bp_dead_letters_clear_timer (self);
      return;
    }

  bp_dead_letters_refill_tokens (self);
  job = job_new (sizeof (FetchJob), fetch_job_run, fetch_job_done, fetch_job_free);
  job->backends = backends;
  job->n = (guint) self->tokens;
  job->now = bp_dead_letters_get_now_unix (self);
  self->pass_running = TRUE;
  bp_dead_letters_submit (self, job);
}

/**
 * bp_dead_letters_set_handler:
 * @self: a #BpDeadLetters
 * @backend: a backend name
 * @func: (nullable): replays one entry of @backend; %NULL removes the handler
 * @user_data: data for @func
 * @notify: (nullable): frees @user_data once the handler is replaced or
 *   removed and its replays in flight are done
 *
 * Registers how entries of @backend are replayed, replacing any previous
 * handler. Without a handler, a backend's entries wait (and List shows
 * them); with one, the scheduler replays them as they fall due, starting
 * with those already due. Replays in flight finish with the handler they
 * started with. Call it from the store's context; @func is called there.
 */
void
bp_dead_letters_set_handler (BpDeadLetters          *self,
                             const char             *backend,
                             BpDeadLetterReplayFunc  func,
                             gpointer                user_data,
                             GDestroyNotify          notify)
{
  Handler *handler;

  g_return_if_fail (BP_IS_DEAD_LETTERS (self));
  g_return_if_fail (backend != NULL && *backend != '\0');

  if (func == NULL)
    {
      g_hash_table_remove (self->handlers, backend);
      return;
    }

  handler = g_new0 (Handler, 1);
  handler->ref_count = 1;
  handler->func = func;
  handler->user_data = user_data;
  handler->notify = notify;
  g_hash_table_insert (self->handlers, g_strdup (backend), handler);
  bp_dead_letters_schedule (self);
}

/* ---- close ------------------------------------------------------------- */

static void
close_job_done (Job          *base,
                const GError *error)
{
  BpDeadLetters *self = base->self;
  g_autoptr(GPtrArray) tasks = g_steal_pointer (&self->close_tasks);

  self->closed = TRUE;
  self->close_tasks = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < tasks->len; i++)
    g_task_return_boolean (g_ptr_array_index (tasks, i), TRUE);
}

static void
bp_dead_letters_maybe_finish_close (BpDeadLetters *self)
{
  Job *job;

  if (!self->closing || self->store_closing ||
      g_hash_table_size (self->in_flight) > 0 || self->pass_running)
    return;

  self->store_closing = TRUE;
  job = job_new (sizeof (Job), close_job_run, close_job_done, NULL);
  /* Queued after every pending job, so they all see an open store. */
  bp_dead_letters_submit (self, job);
  self->store = NULL;
}

/**
 * bp_dead_letters_close_async:
 * @self: a #BpDeadLetters
 * @cancellable: (nullable): a #GCancellable
 * @callback: (scope async): called once the database is closed
 * @user_data: data for @callback
 *
 * Stops the scheduler, cancels replays in flight (through the
 * #GCancellable their handler got) and waits for their handlers to
 * complete, lets queued operations finish, then closes the database on the
 * worker thread (checkpointing the WAL). Later calls fail with
 * %BP_ERROR_UNAVAILABLE. May be called more than once, and on a store that
 * never opened; every call completes.
 *
 * @cancellable does not stop the close: it only makes
 * [method@Bp.DeadLetters.close_finish] report `G_IO_ERROR_CANCELLED`.
 */
void
bp_dead_letters_close_async (BpDeadLetters       *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (BP_IS_DEAD_LETTERS (self));

  task = bp_dead_letters_new_task (self, cancellable, callback, user_data, bp_dead_letters_close_async);
  g_task_set_name (task, "[backplane] bp_dead_letters_close_async");

  /* Never opened, or closed already. */
  if (self->closed || (self->store == NULL && !self->store_closing))
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }

  g_ptr_array_add (self->close_tasks, task);
  if (!self->closing)
    {
      self->closing = TRUE;
      bp_dead_letters_clear_timer (self);
      g_cancellable_cancel (self->cancellable);
    }
  bp_dead_letters_maybe_finish_close (self);
}

/**
 * bp_dead_letters_close_finish:
 * @self: a #BpDeadLetters
 * @result: the #GAsyncResult
 * @error: return location for a #GError
 *
 * Finishes [method@Bp.DeadLetters.close_async].
 *
 * Returns: %TRUE once closed; %FALSE with `G_IO_ERROR_CANCELLED` if the
 *   close's cancellable was cancelled (the store closes anyway)
 */
gboolean
bp_dead_letters_close_finish (BpDeadLetters  *self,
                              GAsyncResult   *result,
                              GError        **error)
{
  g_return_val_if_fail (BP_IS_DEAD_LETTERS (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == bp_dead_letters_close_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- GObject ----------------------------------------------------------- */

static void
bp_dead_letters_dispose (GObject *object)
{
  BpDeadLetters *self = BP_DEAD_LETTERS (object);

  bp_dead_letters_clear_timer (self);
  g_hash_table_remove_all (self->handlers);

  /* Not closed: close the database on the worker anyway, without waiting
   * (jobs and replays hold references, so none is pending here). */
  if (self->store != NULL)
    {
      Job *job = job_new (sizeof (Job), close_job_run, close_job_done_discard, NULL);

      self->closing = TRUE;
      self->store_closing = TRUE;
      job->store = self->store;
      self->store = NULL;
      bp_worker_pool_run_async (self->worker, job_thread, job, NULL, NULL, NULL, job_done_cb, job);
    }

  G_OBJECT_CLASS (bp_dead_letters_parent_class)->dispose (object);
}

static void
bp_dead_letters_finalize (GObject *object)
{
  BpDeadLetters *self = BP_DEAD_LETTERS (object);

  g_clear_pointer (&self->path, g_free);
  g_clear_object (&self->clock);
  g_clear_object (&self->worker);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->handlers, g_hash_table_unref);
  g_clear_pointer (&self->in_flight, g_hash_table_unref);
  g_clear_pointer (&self->backend_in_flight, g_hash_table_unref);
  g_clear_pointer (&self->close_tasks, g_ptr_array_unref);

  G_OBJECT_CLASS (bp_dead_letters_parent_class)->finalize (object);
}

static void
bp_dead_letters_constructed (GObject *object)
{
  BpDeadLetters *self = BP_DEAD_LETTERS (object);

  G_OBJECT_CLASS (bp_dead_letters_parent_class)->constructed (object);

  if (self->clock == NULL)
    self->clock = g_object_ref (bp_clock_get_default ());
  self->unix_offset = g_get_real_time () - bp_clock_get_time (self->clock);
  self->tokens = MAX (1.0, (double) self->max_replays_per_second);
  self->tokens_at = bp_clock_get_time (self->clock);
}

static void
bp_dead_letters_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  BpDeadLetters *self = BP_DEAD_LETTERS (object);

  switch (prop_id)
    {
    case PROP_PATH:
      g_value_set_string (value, self->path);
      break;
    case PROP_CLOCK:
      g_value_set_object (value, self->clock);
      break;
    case PROP_COUNT:
      g_value_set_uint64 (value, self->count);
      break;
    case PROP_POISONED_COUNT:
      g_value_set_uint64 (value, self->poisoned);
      break;
    case PROP_POISON_AFTER:
      g_value_set_uint (value, self->poison_after);
      break;
    case PROP_MAX_REPLAYS_PER_SECOND:
      g_value_set_uint (value, self->max_replays_per_second);
      break;
    case PROP_MAX_IN_FLIGHT:
      g_value_set_uint (value, self->max_in_flight);
      break;
    case PROP_REPLAY_BASE_MS:
      g_value_set_uint (value, self->replay_base_ms);
      break;
    case PROP_REPLAY_CAP_MS:
      g_value_set_uint (value, self->replay_cap_ms);
      break;
    case PROP_MAX_ENTRIES:
      g_value_set_uint (value, self->max_entries);
      break;
    case PROP_MAX_PAYLOAD_SIZE:
      g_value_set_uint (value, self->max_payload_size);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_dead_letters_set_property (GObject      *object,
                              guint         prop_id,
                              const GValue *value,
                              GParamSpec   *pspec)
{
  BpDeadLetters *self = BP_DEAD_LETTERS (object);

  switch (prop_id)
    {
    case PROP_PATH:
      g_free (self->path);
      self->path = g_value_dup_string (value);
      return;
    case PROP_CLOCK:
      g_clear_object (&self->clock);
      self->clock = g_value_dup_object (value);
      return;
    case PROP_POISON_AFTER:
      self->poison_after = g_value_get_uint (value);
      return;
    case PROP_MAX_REPLAYS_PER_SECOND:
      self->max_replays_per_second = g_value_get_uint (value);
      if (self->clock != NULL)
        {
          bp_dead_letters_refill_tokens (self);
          self->tokens = MIN (self->tokens, MAX (1.0, (double) self->max_replays_per_second));
        }
      break;
    case PROP_MAX_IN_FLIGHT:
      self->max_in_flight = g_value_get_uint (value);
      break;
    case PROP_REPLAY_BASE_MS:
      self->replay_base_ms = g_value_get_uint (value);
      return;
    case PROP_REPLAY_CAP_MS:
      self->replay_cap_ms = g_value_get_uint (value);
      return;
    case PROP_MAX_ENTRIES:
      self->max_entries = g_value_get_uint (value);
      return;
    case PROP_MAX_PAYLOAD_SIZE:
      self->max_payload_size = g_value_get_uint (value);
      return;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      return;
    }

  /* A new rate or slot count may let more replays through now. */
  if (self->store != NULL)
    bp_dead_letters_schedule (self);
}

static void
bp_dead_letters_class_init (BpDeadLettersClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS;

  object_class->constructed = bp_dead_letters_constructed;
  object_class->dispose = bp_dead_letters_dispose;
  object_class->finalize = bp_dead_letters_finalize;
  object_class->get_property = bp_dead_letters_get_property;
  object_class->set_property = bp_dead_letters_set_property;

  /**
   * BpDeadLetters:path:
   *
   * The database file. Construct-only.
   */
  properties[PROP_PATH] =
    g_param_spec_string ("path", NULL, NULL, NULL,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * BpDeadLetters:clock:
   *
   * The time source of the scheduler, the jitter and, for a manual clock,
   * of the times stored ([method@Bp.DeadLetters.get_now_unix]).
   * Construct-only.
   */
  properties[PROP_CLOCK] =
    g_param_spec_object ("clock", NULL, NULL, BP_TYPE_CLOCK,
                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);

  /**
   * BpDeadLetters:count:
   *
   * How many entries are stored, poisoned ones included, as of the last
   * completed operation. Read-only; notified when it changes.
   */
  properties[PROP_COUNT] =
    g_param_spec_uint64 ("count", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * BpDeadLetters:poisoned-count:
   *
   * How many entries are poisoned, as of the last completed operation.
   * Read-only; notified when it changes.
   */
  properties[PROP_POISONED_COUNT] =
    g_param_spec_uint64 ("poisoned-count", NULL, NULL, 0, G_MAXUINT64, 0,
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  /**
   * BpDeadLetters:poison-after:
   *
   * An entry is poisoned (kept, no longer replayed by the scheduler) after
   * this many failed replays (1 to 1000, default 5).
   */
  properties[PROP_POISON_AFTER] =
    g_param_spec_uint ("poison-after", NULL, NULL, 1, 1000, 5, rw);

  /**
   * BpDeadLetters:max-replays-per-second:
   *
   * Scheduled replays started per second, over all backends (1 to 10000,
   * default 10); bursts up to one second's worth. Forced replays
   * ([method@Bp.DeadLetters.replay_async]) do not count.
   */
  properties[PROP_MAX_REPLAYS_PER_SECOND] =
    g_param_spec_uint ("max-replays-per-second", NULL, NULL, 1, 10000, 10, rw);

  /**
   * BpDeadLetters:max-in-flight:
   *
   * Replays running at once per backend (1 to 1000, default 1).
   */
  properties[PROP_MAX_IN_FLIGHT] =
    g_param_spec_uint ("max-in-flight", NULL, NULL, 1, MAX_IN_FLIGHT_LIMIT, 1, rw);

  /**
   * BpDeadLetters:replay-base-ms:
   *
   * The delay before the first replay, in milliseconds (default 1 s),
   * doubled after each failed one (with jitter: half to all of it).
   */
  properties[PROP_REPLAY_BASE_MS] =
    g_param_spec_uint ("replay-base-ms", NULL, NULL, 1, G_MAXUINT, 1000, rw);

  /**
   * BpDeadLetters:replay-cap-ms:
   *
   * The longest delay between replays, in milliseconds (default 5 min).
   */
  properties[PROP_REPLAY_CAP_MS] =
    g_param_spec_uint ("replay-cap-ms", NULL, NULL, 1, G_MAXUINT, 300000, rw);

  /**
   * BpDeadLetters:max-entries:
   *
   * Enqueue fails with %BP_ERROR_LIMIT_EXCEEDED once this many entries are
   * stored, poisoned ones included (default 100000).
   */
  properties[PROP_MAX_ENTRIES] =
    g_param_spec_uint ("max-entries", NULL, NULL, 1, G_MAXUINT, 100000, rw);

  /**
   * BpDeadLetters:max-payload-size:
   *
   * The largest serialized payload enqueue accepts, in bytes (up to
   * 64 MiB, default 1 MiB); a larger one fails with
   * %BP_ERROR_LIMIT_EXCEEDED.
   */
  properties[PROP_MAX_PAYLOAD_SIZE] =
    g_param_spec_uint ("max-payload-size", NULL, NULL, 0, 64 * 1024 * 1024, 1024 * 1024, rw);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * BpDeadLetters::added:
   * @self: the #BpDeadLetters
   * @id: the new entry's id
   * @backend: its backend
   * @operation: its operation
   *
   * A new entry was stored (not emitted for a deduplicated enqueue).
   * Emitted in the store's context, before the enqueue completes.
   */
  signals[SIGNAL_ADDED] =
    g_signal_new ("added", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 3, G_TYPE_UINT64, G_TYPE_STRING, G_TYPE_STRING);

  /**
   * BpDeadLetters::resolved:
   * @self: the #BpDeadLetters
   * @id: the entry's id
   *
   * A replay (scheduled or forced) succeeded and the entry was deleted.
   */
  signals[SIGNAL_RESOLVED] =
    g_signal_new ("resolved", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_UINT64);

  /**
   * BpDeadLetters::poisoned:
   * @self: the #BpDeadLetters
   * @id: the entry's id
   *
   * The entry failed poison-after replays; the scheduler leaves it alone.
   * Emitted once per entry, when it becomes poisoned.
   */
  signals[SIGNAL_POISONED] =
    g_signal_new ("poisoned", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_UINT64);
}

static void
bp_dead_letters_init (BpDeadLetters *self)
{
  self->context = g_main_context_ref_thread_default ();
  self->worker = bp_worker_pool_new ("dead-letters", 1, WORKER_MAX_QUEUED + WORKER_INTERNAL_RESERVE);
  self->cancellable = g_cancellable_new ();
  self->handlers = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) handler_unref);
  self->in_flight = g_hash_table_new (g_int64_hash, g_int64_equal);
  self->backend_in_flight = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->close_tasks = g_ptr_array_new_with_free_func (g_object_unref);
}

/**
 * bp_dead_letters_get_path:
 * @self: a #BpDeadLetters
 *
 * Gets the path of the database file given to
 * [func@Bp.DeadLetters.open_async] ([property@Bp.DeadLetters:path]).
 *
 * Returns: (transfer none): the database file, owned by @self
 */
const char *
bp_dead_letters_get_path (BpDeadLetters *self)
{
  g_return_val_if_fail (BP_IS_DEAD_LETTERS (self), NULL);
  return self->path;
}

/**
 * bp_dead_letters_get_count:
 * @self: a #BpDeadLetters
 *
 * Gets [property@Bp.DeadLetters:count], without touching the database.
 *
 * Returns: how many entries are stored, as of the last completed operation
 */
guint64
bp_dead_letters_get_count (BpDeadLetters *self)
{
  g_return_val_if_fail (BP_IS_DEAD_LETTERS (self), 0);
  return self->count;
}

/**
 * bp_dead_letters_get_poisoned_count:
 * @self: a #BpDeadLetters
 *
 * Gets [property@Bp.DeadLetters:poisoned-count], without touching the
 * database.
 *
 * Returns: how many entries are poisoned, as of the last completed operation
 */
guint64
bp_dead_letters_get_poisoned_count (BpDeadLetters *self)
{
  g_return_val_if_fail (BP_IS_DEAD_LETTERS (self), 0);
  return self->poisoned;
}
