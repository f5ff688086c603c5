/* test-dead-letters.c: BpDeadLetters storage, replay scheduling, crash safety
 *
 * Unit tests run on a manual BpClock: replays fall due only when the test
 * advances it. bp_dead_letters_flush_async() is the barrier that lets the
 * worker thread catch up, so no test sleeps.
 *
 * /dead-letters/crash/kill-9 runs this binary again as a child
 * (--child-writer DB PREFIX N) that enqueues entries and prints each key
 * once its enqueue completed; the parent SIGKILLs it mid-stream and checks
 * the database.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

#include <backplane.h>

#define MS (G_TIME_SPAN_MILLISECOND)

static void
iterate (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

/* ---- synchronous wrappers for the tests --------------------------------- */

typedef struct
{
  gboolean      done;
  GAsyncResult *result;
} Wait;

static void
wait_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Wait *wait = user_data;

  wait->result = g_object_ref (result);
  wait->done = TRUE;
}

static GAsyncResult *
wait_for (Wait *wait)
{
  while (!wait->done)
    g_main_context_iteration (NULL, TRUE);
  return wait->result;
}

static BpDeadLetters *
open_store (const char  *path,
            BpClock     *clock,
            GError     **error)
{
  Wait wait = { 0 };
  g_autoptr(GAsyncResult) result = NULL;

  bp_dead_letters_open_async (path, clock, NULL, wait_cb, &wait);
  result = wait_for (&wait);
  return bp_dead_letters_open_finish (result, error);
}

static void
close_store (BpDeadLetters *dl)
{
  Wait wait = { 0 };
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  bp_dead_letters_close_async (dl, NULL, wait_cb, &wait);
  result = wait_for (&wait);
  g_assert_true (bp_dead_letters_close_finish (dl, result, &error));
  g_assert_no_error (error);
}

static guint64
enqueue_full (BpDeadLetters  *dl,
              const char     *backend,
              const char     *operation,
              GVariant       *payload,
              const char     *key,
              const GError   *last_error,
              gint64          not_before,
              gboolean       *out_added,
              GError        **error)
{
  Wait wait = { 0 };
  g_autoptr(GAsyncResult) result = NULL;

  bp_dead_letters_enqueue_async (dl, backend, operation, payload, key, last_error, 3, not_before,
                                 NULL, wait_cb, &wait);
  g_assert_false (wait.done);
  result = wait_for (&wait);
  return bp_dead_letters_enqueue_finish (dl, result, out_added, error);
}

static guint64
enqueue (BpDeadLetters *dl,
         const char    *backend,
         const char    *key)
{
  g_autoptr(GError) error = NULL;
  guint64 id;

  id = enqueue_full (dl, backend, "Sql.Query", g_variant_new ("(s)", key), key, NULL, 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (id, >, 0);
  return id;
}

static GVariant *
get_entry (BpDeadLetters  *dl,
           guint64         id,
           GError        **error)
{
  Wait wait = { 0 };
  g_autoptr(GAsyncResult) result = NULL;

  bp_dead_letters_get_async (dl, id, NULL, wait_cb, &wait);
  result = wait_for (&wait);
  return bp_dead_letters_get_finish (dl, result, error);
}

static gint64
entry_int (BpDeadLetters *dl,
           guint64        id,
           const char    *key)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) entry = get_entry (dl, id, &error);
  g_autoptr(GVariant) v = NULL;

  g_assert_no_error (error);
  v = g_variant_lookup_value (entry, key, NULL);
  g_assert_nonnull (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
    return g_variant_get_uint32 (v);
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_BOOLEAN))
    return g_variant_get_boolean (v);
  return g_variant_get_int64 (v);
}

static GVariant *
list (BpDeadLetters  *dl,
      guint           offset,
      guint           limit,
      GVariant       *filter,
      GError        **error)
{
  Wait wait = { 0 };
  g_autoptr(GAsyncResult) result = NULL;

  bp_dead_letters_list_async (dl, offset, limit, filter, NULL, wait_cb, &wait);
  result = wait_for (&wait);
  return bp_dead_letters_list_finish (dl, result, error);
}

static void
flush (BpDeadLetters *dl)
{
  Wait wait = { 0 };
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  bp_dead_letters_flush_async (dl, NULL, wait_cb, &wait);
  result = wait_for (&wait);
  g_assert_true (bp_dead_letters_flush_finish (dl, result, &error));
  g_assert_no_error (error);
}

/* Lets every chain of store jobs, handler calls and scheduler passes run
 * to its end: each flush advances every chain by at least one job. */
static void
settle (BpDeadLetters *dl)
{
  for (guint i = 0; i < 12; i++)
    {
      flush (dl);
      iterate ();
    }
}

static void
advance (BpDeadLetters *dl,
         BpClock       *clock,
         gint64         us)
{
  bp_clock_advance (clock, us);
  iterate ();
  settle (dl);
}

/* Reads the database with a separate connection, as an operator would. */
static gint64
sql_int (const char *path,
         const char *sql,
         const char *arg)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  gint64 value;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 5000);
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  if (arg != NULL)
    sqlite3_bind_text (stmt, 1, arg, -1, SQLITE_TRANSIENT);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  value = sqlite3_column_int64 (stmt, 0);
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return value;
}

static char *
sql_text (const char *path,
          const char *sql)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  char *value;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 5000);
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (stmt), ==, SQLITE_ROW);
  value = g_strdup ((const char *) sqlite3_column_text (stmt, 0));
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return value;
}

/* ---- a replay handler under test control -------------------------------- */

enum {
  MODE_SUCCEED,
  MODE_FAIL,
  MODE_CIRCUIT_OPEN,
  MODE_HOLD,
  MODE_ALTERNATE,
  MODE_CANCELLED,
};

typedef struct
{
  int        mode;
  gint64     retry_after_ms;
  guint      n_calls;
  guint      n_alternate;
  GPtrArray *held;        /* (element-type GTask) */
  GPtrArray *keys;        /* (element-type utf8) in call order */
  GVariant  *last_payload;
} Replayer;

static void
replayer_init (Replayer *r,
               int       mode)
{
  memset (r, 0, sizeof *r);
  r->mode = mode;
  r->held = g_ptr_array_new_with_free_func (g_object_unref);
  r->keys = g_ptr_array_new_with_free_func (g_free);
}

static void
replayer_clear (Replayer *r)
{
  g_assert_cmpuint (r->held->len, ==, 0);
  g_ptr_array_unref (r->held);
  g_ptr_array_unref (r->keys);
  g_clear_pointer (&r->last_payload, g_variant_unref);
}

static void
replayer_complete_held (Replayer *r,
                        gboolean  success)
{
  g_autoptr(GPtrArray) held = g_steal_pointer (&r->held);

  r->held = g_ptr_array_new_with_free_func (g_object_unref);
  for (guint i = 0; i < held->len; i++)
    {
      GTask *task = g_ptr_array_index (held, i);

      if (success)
        g_task_return_boolean (task, TRUE);
      else
        g_task_return_new_error (task, BP_ERROR, BP_ERROR_BACKEND, "SQLSTATE 57P01: still down");
    }
}

static void
replay_func (BpDeadLetters *dl,
             const char    *backend,
             const char    *operation,
             GVariant      *payload,
             const char    *key,
             GCancellable  *cancellable,
             GTask         *task,
             gpointer       user_data)
{
  Replayer *r = user_data;
  GError *error = NULL;
  int mode = r->mode;

  r->n_calls++;
  g_ptr_array_add (r->keys, g_strdup (key));
  g_clear_pointer (&r->last_payload, g_variant_unref);
  if (payload != NULL)
    r->last_payload = g_variant_ref (payload);
  g_assert_cmpstr (operation, ==, "Sql.Query");

  if (mode == MODE_ALTERNATE)
    mode = (r->n_alternate++ % 2 == 0) ? MODE_SUCCEED : MODE_FAIL;

  switch (mode)
    {
    case MODE_SUCCEED:
      g_task_return_boolean (task, TRUE);
      break;
    case MODE_FAIL:
      error = g_error_new (BP_ERROR, BP_ERROR_BACKEND, "SQLSTATE 08006: connection failure");
      if (r->retry_after_ms > 0)
        bp_error_set_retry_after (&error, r->retry_after_ms);
      g_task_return_error (task, error);
      break;
    case MODE_CIRCUIT_OPEN:
      error = g_error_new (BP_ERROR, BP_ERROR_CIRCUIT_OPEN, "Circuit open for backend “%s”", backend);
      if (r->retry_after_ms > 0)
        bp_error_set_retry_after (&error, r->retry_after_ms);
      g_task_return_error (task, error);
      break;
    case MODE_CANCELLED:
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
      break;
    case MODE_HOLD:
      g_ptr_array_add (r->held, task);
      return;
    default:
      g_assert_not_reached ();
    }
  g_object_unref (task);
}

typedef struct
{
  guint    added;
  guint    resolved;
  guint    poisoned;
  guint    count_notifies;
  guint64  last_id;
} Signals;

static void
added_cb (BpDeadLetters *dl,
          guint64        id,
          const char    *backend,
          const char    *operation,
          Signals       *s)
{
  g_assert_nonnull (backend);
  g_assert_cmpstr (operation, ==, "Sql.Query");
  s->added++;
  s->last_id = id;
}

static void
resolved_cb (BpDeadLetters *dl,
             guint64        id,
             Signals       *s)
{
  s->resolved++;
  s->last_id = id;
}

static void
poisoned_cb (BpDeadLetters *dl,
             guint64        id,
             Signals       *s)
{
  s->poisoned++;
  s->last_id = id;
}

static void
count_notify_cb (GObject    *object,
                 GParamSpec *pspec,
                 Signals    *s)
{
  s->count_notifies++;
}

/* ---- fixture ------------------------------------------------------------ */

typedef struct
{
  char          *dir;
  char          *path;
  BpClock       *clock;
  BpDeadLetters *dl;
  Signals        signals;
} Fixture;

static void
connect_signals (Fixture *fx)
{
  g_signal_connect (fx->dl, "added", G_CALLBACK (added_cb), &fx->signals);
  g_signal_connect (fx->dl, "resolved", G_CALLBACK (resolved_cb), &fx->signals);
  g_signal_connect (fx->dl, "poisoned", G_CALLBACK (poisoned_cb), &fx->signals);
  g_signal_connect (fx->dl, "notify::count", G_CALLBACK (count_notify_cb), &fx->signals);
}

static void
fixture_setup (Fixture       *fx,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  fx->dir = g_dir_make_tmp ("bp-dead-letters-XXXXXX", &error);
  g_assert_no_error (error);
  /* A missing parent directory is created. */
  fx->path = g_build_filename (fx->dir, "state", "backplane", "dead-letters.db", NULL);
  fx->clock = bp_clock_new_manual (10 * G_TIME_SPAN_SECOND, 7);
  memset (&fx->signals, 0, sizeof fx->signals);
  fx->dl = open_store (fx->path, fx->clock, &error);
  g_assert_no_error (error);
  g_assert_nonnull (fx->dl);
  connect_signals (fx);
}

static void
remove_tree (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir == NULL)
    {
      g_remove (path);
      return;
    }
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      remove_tree (child);
    }
  g_rmdir (path);
}

static void
fixture_teardown (Fixture       *fx,
                  gconstpointer  data)
{
  if (fx->dl != NULL)
    {
      close_store (fx->dl);
      g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);
      g_assert_finalize_object (g_steal_pointer (&fx->dl));
    }
  g_assert_finalize_object (fx->clock);
  remove_tree (fx->dir);
  g_free (fx->path);
  g_free (fx->dir);
}

static void
reopen (Fixture *fx)
{
  g_autoptr(GError) error = NULL;

  close_store (fx->dl);
  g_assert_finalize_object (g_steal_pointer (&fx->dl));
  fx->dl = open_store (fx->path, fx->clock, &error);
  g_assert_no_error (error);
  connect_signals (fx);
}

/* ---- storage ------------------------------------------------------------ */

static void
test_open_creates (Fixture       *fx,
                   gconstpointer  data)
{
  g_autofree char *parent = g_path_get_dirname (fx->path);
  g_autofree char *mode = NULL;
  GStatBuf st;

  g_assert_cmpint (g_stat (parent, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);
  g_assert_cmpint (g_stat (fx->path, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0600);

  mode = sql_text (fx->path, "PRAGMA journal_mode");
  g_assert_cmpstr (mode, ==, "wal");
  g_assert_cmpint (sql_int (fx->path, "SELECT MAX(version) FROM schema_version", NULL), ==, 1);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 0);
  g_assert_cmpstr (bp_dead_letters_get_path (fx->dl), ==, fx->path);
}

static void
test_open_newer_schema (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bp-dead-letters-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "dl.db", NULL);
  g_autoptr(BpDeadLetters) dl = NULL;
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                                     "INSERT INTO schema_version VALUES (99);",
                                 NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  dl = open_store (path, NULL, &error);
  g_assert_null (dl);
  g_assert_error (error, BP_ERROR, BP_ERROR_FAILED);
  g_assert_nonnull (strstr (error->message, "99"));
  remove_tree (dir);
}

static void
test_enqueue_dedup (Fixture       *fx,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) cause = NULL;
  g_autoptr(GVariant) entry = NULL;
  g_autoptr(GVariant) payload = NULL;
  gboolean added = FALSE;
  gint64 now = bp_dead_letters_get_now_unix (fx->dl);
  guint64 a, again, other;

  cause = g_error_new (BP_ERROR, BP_ERROR_BACKEND, "SQLSTATE 40001: serialization failure");
  bp_error_set_retry_after (&cause, 5000);
  a = enqueue_full (fx->dl, "pg", "Sql.Query",
                    g_variant_new ("(s@av)", "INSERT INTO t VALUES ($1)",
                                   g_variant_new_parsed ("[<int64 42>]")),
                    "key-1", cause, 0, &added, &error);
  g_assert_no_error (error);
  g_assert_true (added);
  g_assert_cmpuint (fx->signals.added, ==, 1);
  g_assert_cmpuint (fx->signals.last_id, ==, a);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 1);

  /* Same backend and key: the same entry, nothing written, no signal. */
  again = enqueue_full (fx->dl, "pg", "Sql.Query", NULL, "key-1", NULL, 0, &added, &error);
  g_assert_no_error (error);
  g_assert_false (added);
  g_assert_cmpuint (again, ==, a);
  g_assert_cmpuint (fx->signals.added, ==, 1);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 1);

  /* Same key, another backend: another entry. */
  other = enqueue_full (fx->dl, "pg2", "Sql.Query", NULL, "key-1", NULL, 0, &added, &error);
  g_assert_no_error (error);
  g_assert_true (added);
  g_assert_cmpuint (other, !=, a);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 2);
  g_assert_cmpint (sql_int (fx->path, "SELECT COUNT(*) FROM dead_letters", NULL), ==, 2);

  entry = get_entry (fx->dl, a, &error);
  g_assert_no_error (error);
  {
    const char *backend, *operation, *key, *last_error;
    guint32 attempts;
    gint64 next, created;
    gboolean poisoned;

    g_assert_true (g_variant_lookup (entry, "backend", "&s", &backend));
    g_assert_true (g_variant_lookup (entry, "operation", "&s", &operation));
    g_assert_true (g_variant_lookup (entry, "idempotency-key", "&s", &key));
    g_assert_true (g_variant_lookup (entry, "last-error", "&s", &last_error));
    g_assert_true (g_variant_lookup (entry, "attempts", "u", &attempts));
    g_assert_true (g_variant_lookup (entry, "next-attempt", "x", &next));
    g_assert_true (g_variant_lookup (entry, "created-at", "x", &created));
    g_assert_true (g_variant_lookup (entry, "poisoned", "b", &poisoned));
    g_assert_cmpstr (backend, ==, "pg");
    g_assert_cmpstr (operation, ==, "Sql.Query");
    g_assert_cmpstr (key, ==, "key-1");
    g_assert_nonnull (strstr (last_error, "SQLSTATE 40001"));
    g_assert_cmpuint (attempts, ==, 3);
    g_assert_false (poisoned);
    g_assert_cmpint (created, ==, now);
    /* Never before the error's retry-after. */
    g_assert_cmpint (next, >=, now + 5000 * MS);
  }
  payload = g_variant_lookup_value (entry, "payload", G_VARIANT_TYPE_VARIANT);
  g_assert_nonnull (payload);
  {
    g_autoptr(GVariant) inner = g_variant_get_variant (payload);
    g_autoptr(GVariant) expected = g_variant_ref_sink (
      g_variant_new ("(s@av)", "INSERT INTO t VALUES ($1)", g_variant_new_parsed ("[<int64 42>]")));

    g_assert_true (g_variant_equal (inner, expected));
  }

  /* not_before is honoured too. */
  {
    guint64 late = enqueue_full (fx->dl, "pg", "Sql.Query", NULL, "key-late", NULL,
                                 now + 3600 * G_TIME_SPAN_SECOND, NULL, &error);

    g_assert_no_error (error);
    g_assert_cmpint (entry_int (fx->dl, late, "next-attempt"), ==, now + 3600 * G_TIME_SPAN_SECOND);
  }
}

static void
test_enqueue_limits (Fixture       *fx,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *long_key = g_strnfill (2000, 'k');
  guint8 big[2048] = { 0 };

  g_object_set (fx->dl, "max-entries", 2, "max-payload-size", 1024, NULL);

  g_assert_cmpuint (enqueue_full (fx->dl, "pg", "Sql.Query", NULL, "", NULL, 0, NULL, &error), ==, 0);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "idempotency-key"));
  g_clear_error (&error);

  g_assert_cmpuint (enqueue_full (fx->dl, "", "Sql.Query", NULL, "k", NULL, 0, NULL, &error), ==, 0);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_cmpuint (enqueue_full (fx->dl, "pg", "Sql.Query", NULL, long_key, NULL, 0, NULL, &error), ==, 0);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_cmpuint (enqueue_full (fx->dl, "pg", "Sql.Query",
                                  g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, big, sizeof big, 1),
                                  "k", NULL, 0, NULL, &error), ==, 0);
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);

  enqueue (fx->dl, "pg", "a");
  enqueue (fx->dl, "pg", "b");
  g_assert_cmpuint (enqueue_full (fx->dl, "pg", "Sql.Query", NULL, "c", NULL, 0, NULL, &error), ==, 0);
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);
  /* A repeat of a stored key still answers when full. */
  g_assert_cmpuint (enqueue_full (fx->dl, "pg", "Sql.Query", NULL, "a", NULL, 0, NULL, &error), >, 0);
  g_assert_no_error (error);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 2);
}

static void
test_list_get_delete_purge (Fixture       *fx,
                            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) page = NULL;
  guint64 ids[5];
  guint n = 0;

  ids[0] = enqueue (fx->dl, "pg", "k0");
  ids[1] = enqueue (fx->dl, "bolt", "k1");
  ids[2] = enqueue (fx->dl, "pg", "k2");
  ids[3] = enqueue (fx->dl, "pg", "k3");
  ids[4] = enqueue (fx->dl, "bolt", "k4");
  g_assert_cmpuint (fx->signals.count_notifies, ==, 5);

  page = list (fx->dl, 0, 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_variant_get_type_string (page), ==, "a(tsssuxs)");
  g_assert_cmpuint (g_variant_n_children (page), ==, 5);
  g_clear_pointer (&page, g_variant_unref);

  page = list (fx->dl, 1, 1, g_variant_new_parsed ("{'backend': <'pg'>, 'poisoned': <false>}"), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (page), ==, 1);
  {
    guint64 id;
    const char *backend, *operation, *key, *last_error;
    guint32 attempts;
    gint64 next;

    g_variant_get_child (page, 0, "(t&s&s&sux&s)", &id, &backend, &operation, &key,
                         &attempts, &next, &last_error);
    g_assert_cmpuint (id, ==, ids[2]);
    g_assert_cmpstr (backend, ==, "pg");
    g_assert_cmpstr (key, ==, "k2");
    g_assert_cmpuint (attempts, ==, 3);
  }
  g_clear_pointer (&page, g_variant_unref);

  page = list (fx->dl, 0, 10, g_variant_new_parsed ("{'poisoned': <true>}"), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (page), ==, 0);
  g_clear_pointer (&page, g_variant_unref);

  page = list (fx->dl, 0, 10, g_variant_new_parsed ("{'colour': <'red'>}"), &error);
  g_assert_null (page);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "colour"));
  g_clear_error (&error);
  page = list (fx->dl, 0, 10, g_variant_new_parsed ("{'backend': <42>}"), &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  page = list (fx->dl, 0, 5000, NULL, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "limit"));
  g_clear_error (&error);

  {
    g_autoptr(GVariant) missing = get_entry (fx->dl, 999999, &error);

    g_assert_null (missing);
    g_assert_error (error, BP_ERROR, BP_ERROR_NOT_FOUND);
    g_clear_error (&error);
  }

  /* Delete one. */
  {
    Wait wait = { 0 };
    g_autoptr(GAsyncResult) result = NULL;

    bp_dead_letters_delete_async (fx->dl, ids[0], NULL, wait_cb, &wait);
    result = wait_for (&wait);
    g_assert_true (bp_dead_letters_delete_finish (fx->dl, result, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 4);
  }
  {
    Wait wait = { 0 };
    g_autoptr(GAsyncResult) result = NULL;

    bp_dead_letters_delete_async (fx->dl, ids[0], NULL, wait_cb, &wait);
    result = wait_for (&wait);
    g_assert_false (bp_dead_letters_delete_finish (fx->dl, result, &error));
    g_assert_error (error, BP_ERROR, BP_ERROR_NOT_FOUND);
    g_clear_error (&error);
  }

  /* Purge a backend, then everything. */
  {
    Wait wait = { 0 };
    g_autoptr(GAsyncResult) result = NULL;

    bp_dead_letters_purge_async (fx->dl, "bolt", NULL, wait_cb, &wait);
    result = wait_for (&wait);
    g_assert_true (bp_dead_letters_purge_finish (fx->dl, result, &n, &error));
    g_assert_no_error (error);
    g_assert_cmpuint (n, ==, 2);
    g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 2);
  }
  {
    Wait wait = { 0 };
    g_autoptr(GAsyncResult) result = NULL;

    bp_dead_letters_purge_async (fx->dl, "", NULL, wait_cb, &wait);
    result = wait_for (&wait);
    g_assert_true (bp_dead_letters_purge_finish (fx->dl, result, &n, &error));
    g_assert_cmpuint (n, ==, 2);
    g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 0);
  }
  g_assert_cmpint (sql_int (fx->path, "SELECT COUNT(*) FROM dead_letters", NULL), ==, 0);
}

static void
test_reopen_keeps (Fixture       *fx,
                   gconstpointer  data)
{
  guint64 id = enqueue (fx->dl, "pg", "survivor");
  gboolean added = TRUE;
  g_autoptr(GError) error = NULL;

  enqueue (fx->dl, "pg", "other");
  reopen (fx);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 2);
  g_assert_cmpuint (enqueue_full (fx->dl, "pg", "Sql.Query", NULL, "survivor", NULL, 0, &added, &error), ==, id);
  g_assert_false (added);

  /* Closed: calls fail cleanly. */
  close_store (fx->dl);
  g_assert_cmpuint (enqueue_full (fx->dl, "pg", "Sql.Query", NULL, "late", NULL, 0, NULL, &error), ==, 0);
  g_assert_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE);
}

/* ---- replay ------------------------------------------------------------- */

static void
test_replay_success (Fixture       *fx,
                     gconstpointer  data)
{
  Replayer r;
  guint64 id;

  replayer_init (&r, MODE_SUCCEED);
  id = enqueue (fx->dl, "pg", "k");
  bp_dead_letters_set_handler (fx->dl, "pg", replay_func, &r, NULL);
  settle (fx->dl);
  /* Not due yet: the first replay waits for the base delay (1 s, jittered). */
  g_assert_cmpuint (r.n_calls, ==, 0);
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 1);

  advance (fx->dl, fx->clock, 1000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 1);
  g_assert_cmpstr (g_ptr_array_index (r.keys, 0), ==, "k");
  g_assert_true (g_variant_equal (r.last_payload, g_variant_new ("(s)", "k")));
  g_assert_cmpuint (fx->signals.resolved, ==, 1);
  g_assert_cmpuint (fx->signals.last_id, ==, id);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 0);
  g_assert_cmpint (sql_int (fx->path, "SELECT COUNT(*) FROM dead_letters", NULL), ==, 0);
  /* Nothing left: no timer. */
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);

  bp_dead_letters_set_handler (fx->dl, "pg", NULL, NULL, NULL);
  replayer_clear (&r);
}

static void
test_no_handler_waits (Fixture       *fx,
                       gconstpointer  data)
{
  Replayer r;

  replayer_init (&r, MODE_SUCCEED);
  enqueue (fx->dl, "bolt", "k");
  bp_dead_letters_set_handler (fx->dl, "pg", replay_func, &r, NULL);
  advance (fx->dl, fx->clock, 3600 * G_TIME_SPAN_SECOND);
  g_assert_cmpuint (r.n_calls, ==, 0);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 1);
  /* Only other backends' entries: no timer. */
  g_assert_cmpuint (bp_clock_get_n_pending (fx->clock), ==, 0);
  replayer_clear (&r);
}

static void
test_replay_backoff_poison (Fixture       *fx,
                            gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  Replayer r;
  guint64 id;
  gint64 before;

  replayer_init (&r, MODE_FAIL);
  g_object_set (fx->dl, "poison-after", 3, "replay-base-ms", 1000, "replay-cap-ms", 60000, NULL);
  id = enqueue (fx->dl, "pg", "k");
  bp_dead_letters_set_handler (fx->dl, "pg", replay_func, &r, NULL);

  advance (fx->dl, fx->clock, 1000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 1);
  g_assert_cmpint (entry_int (fx->dl, id, "attempts"), ==, 4);
  g_assert_cmpint (entry_int (fx->dl, id, "replays"), ==, 1);
  {
    g_autoptr(GVariant) entry = get_entry (fx->dl, id, &error);
    const char *last_error;

    g_assert_true (g_variant_lookup (entry, "last-error", "&s", &last_error));
    g_assert_nonnull (strstr (last_error, "SQLSTATE 08006"));
  }

  /* Second replay after 1..2 s (base doubled, equal jitter). */
  before = r.n_calls;
  advance (fx->dl, fx->clock, 999 * MS / 2);
  g_assert_cmpuint (r.n_calls, ==, before);
  advance (fx->dl, fx->clock, 2000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 2);
  g_assert_cmpuint (fx->signals.poisoned, ==, 0);

  /* Third failure poisons it. */
  advance (fx->dl, fx->clock, 4000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 3);
  g_assert_cmpuint (fx->signals.poisoned, ==, 1);
  g_assert_cmpuint (fx->signals.last_id, ==, id);
  g_assert_cmpuint (bp_dead_letters_get_poisoned_count (fx->dl), ==, 1);
  g_assert_cmpint (entry_int (fx->dl, id, "poisoned"), ==, 1);

  /* Kept, but the scheduler leaves it alone. */
  advance (fx->dl, fx->clock, 3600 * G_TIME_SPAN_SECOND);
  g_assert_cmpuint (r.n_calls, ==, 3);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 1);
  {
    g_autoptr(GVariant) page = list (fx->dl, 0, 10, g_variant_new_parsed ("{'poisoned': <true>}"), &error);

    g_assert_cmpuint (g_variant_n_children (page), ==, 1);
  }

  /* An explicit replay still runs; a failure keeps it poisoned. */
  {
    Wait wait = { 0 };
    g_autoptr(GAsyncResult) result = NULL;

    bp_dead_letters_replay_async (fx->dl, id, NULL, wait_cb, &wait);
    result = wait_for (&wait);
    g_assert_false (bp_dead_letters_replay_finish (fx->dl, result, &error));
    g_assert_error (error, BP_ERROR, BP_ERROR_BACKEND);
    g_clear_error (&error);
    g_assert_cmpuint (r.n_calls, ==, 4);
    g_assert_cmpint (entry_int (fx->dl, id, "poisoned"), ==, 1);
    g_assert_cmpuint (fx->signals.poisoned, ==, 1);
  }

  /* Once the backend works, the explicit replay resolves it. */
  r.mode = MODE_SUCCEED;
  {
    Wait wait = { 0 };
    g_autoptr(GAsyncResult) result = NULL;

    bp_dead_letters_replay_async (fx->dl, id, NULL, wait_cb, &wait);
    result = wait_for (&wait);
    g_assert_true (bp_dead_letters_replay_finish (fx->dl, result, &error));
    g_assert_no_error (error);
  }
  g_assert_cmpuint (fx->signals.resolved, ==, 1);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 0);
  g_assert_cmpuint (bp_dead_letters_get_poisoned_count (fx->dl), ==, 0);

  /* Replaying what is gone. */
  {
    Wait wait = { 0 };
    g_autoptr(GAsyncResult) result = NULL;

    bp_dead_letters_replay_async (fx->dl, id, NULL, wait_cb, &wait);
    result = wait_for (&wait);
    g_assert_false (bp_dead_letters_replay_finish (fx->dl, result, &error));
    g_assert_error (error, BP_ERROR, BP_ERROR_NOT_FOUND);
  }
  replayer_clear (&r);
}

static void
test_replay_retry_after (Fixture       *fx,
                         gconstpointer  data)
{
  Replayer r;
  guint64 id;
  gint64 failed_at;

  replayer_init (&r, MODE_FAIL);
  r.retry_after_ms = 60000;
  id = enqueue (fx->dl, "pg", "k");
  bp_dead_letters_set_handler (fx->dl, "pg", replay_func, &r, NULL);
  advance (fx->dl, fx->clock, 1000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 1);
  failed_at = bp_dead_letters_get_now_unix (fx->dl);
  g_assert_cmpint (entry_int (fx->dl, id, "next-attempt"), >=, failed_at + 60000 * MS);

  advance (fx->dl, fx->clock, 59999 * MS);
  g_assert_cmpuint (r.n_calls, ==, 1);
  advance (fx->dl, fx->clock, 1 * MS);
  g_assert_cmpuint (r.n_calls, ==, 2);
  bp_dead_letters_set_handler (fx->dl, "pg", NULL, NULL, NULL);
  replayer_clear (&r);
}

static void
test_replay_circuit_open (Fixture       *fx,
                          gconstpointer  data)
{
  Replayer r;
  guint64 id;

  replayer_init (&r, MODE_CIRCUIT_OPEN);
  r.retry_after_ms = 2000;
  g_object_set (fx->dl, "poison-after", 2, NULL);
  id = enqueue (fx->dl, "pg", "k");
  bp_dead_letters_set_handler (fx->dl, "pg", replay_func, &r, NULL);

  advance (fx->dl, fx->clock, 1000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 1);
  /* Not an attempt: counters unchanged, due again at retry-after. */
  g_assert_cmpint (entry_int (fx->dl, id, "attempts"), ==, 3);
  g_assert_cmpint (entry_int (fx->dl, id, "replays"), ==, 0);
  g_assert_cmpint (entry_int (fx->dl, id, "next-attempt"), ==,
                   bp_dead_letters_get_now_unix (fx->dl) + 2000 * MS);

  advance (fx->dl, fx->clock, 1999 * MS);
  g_assert_cmpuint (r.n_calls, ==, 1);
  advance (fx->dl, fx->clock, 1 * MS);
  g_assert_cmpuint (r.n_calls, ==, 2);

  /* However often the breaker refuses, the entry is never poisoned. */
  for (guint i = 0; i < 5; i++)
    advance (fx->dl, fx->clock, 2000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 7);
  g_assert_cmpuint (fx->signals.poisoned, ==, 0);
  g_assert_cmpint (entry_int (fx->dl, id, "poisoned"), ==, 0);
  g_assert_cmpint (entry_int (fx->dl, id, "attempts"), ==, 3);

  /* The breaker closes: resolved. */
  r.mode = MODE_SUCCEED;
  advance (fx->dl, fx->clock, 2000 * MS);
  g_assert_cmpuint (fx->signals.resolved, ==, 1);
  replayer_clear (&r);
}

/* A handler that gives up by itself (its backend stopping) while the queue
 * stays open: not an attempt, and not due again at once either. */
static void
test_replay_handler_cancelled (Fixture       *fx,
                               gconstpointer  data)
{
  Replayer r;
  guint64 id;
  gint64 next, now;
  guint base_ms = 0;

  replayer_init (&r, MODE_CANCELLED);
  g_object_get (fx->dl, "replay-base-ms", &base_ms, NULL);
  g_assert_cmpuint (base_ms, >, 0);
  id = enqueue (fx->dl, "pg", "k");
  bp_dead_letters_set_handler (fx->dl, "pg", replay_func, &r, NULL);

  advance (fx->dl, fx->clock, 1000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 1);
  g_assert_cmpint (entry_int (fx->dl, id, "attempts"), ==, 3);
  g_assert_cmpint (entry_int (fx->dl, id, "replays"), ==, 0);
  now = bp_dead_letters_get_now_unix (fx->dl);
  next = entry_int (fx->dl, id, "next-attempt");
  g_assert_cmpint (next, >=, now + (gint64) base_ms * MS / 2);
  g_assert_cmpint (next, <=, now + (gint64) base_ms * MS);

  /* nothing more until then, however often the loop runs */
  advance (fx->dl, fx->clock, 0);
  g_assert_cmpuint (r.n_calls, ==, 1);

  r.mode = MODE_SUCCEED;
  advance (fx->dl, fx->clock, next - now);
  g_assert_cmpuint (r.n_calls, ==, 2);
  g_assert_cmpuint (fx->signals.resolved, ==, 1);
  replayer_clear (&r);
}

static void
test_replay_rate_limit (Fixture       *fx,
                        gconstpointer  data)
{
  Replayer r;
  gint64 due = bp_dead_letters_get_now_unix (fx->dl) + 2000 * MS;

  replayer_init (&r, MODE_HOLD);
  g_object_set (fx->dl, "max-replays-per-second", 2, "max-in-flight", 100, NULL);
  /* All due at the same moment: ties go by id. */
  for (guint i = 0; i < 10; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i);
      g_autoptr(GError) error = NULL;

      enqueue_full (fx->dl, "pg", "Sql.Query", NULL, key, NULL, due, NULL, &error);
      g_assert_no_error (error);
    }
  bp_dead_letters_set_handler (fx->dl, "pg", replay_func, &r, NULL);
  settle (fx->dl);
  g_assert_cmpuint (r.n_calls, ==, 0);

  /* All due; the bucket holds 2 tokens. */
  advance (fx->dl, fx->clock, 2000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 2);
  advance (fx->dl, fx->clock, 500 * MS);
  g_assert_cmpuint (r.n_calls, ==, 3);
  advance (fx->dl, fx->clock, 1000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 5);
  /* Earliest due first. */
  for (guint i = 0; i < 5; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i);

      g_assert_cmpstr (g_ptr_array_index (r.keys, i), ==, key);
    }

  replayer_complete_held (&r, TRUE);
  settle (fx->dl);
  g_assert_cmpuint (fx->signals.resolved, ==, 5);
  /* A long pause refills the bucket only up to its burst. */
  advance (fx->dl, fx->clock, 10000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 7);
  replayer_complete_held (&r, TRUE);
  advance (fx->dl, fx->clock, 1000 * MS);
  g_assert_cmpuint (r.n_calls, ==, 9);
  replayer_complete_held (&r, TRUE);
  advance (fx->dl, fx->clock, 500 * MS);
  g_assert_cmpuint (r.n_calls, ==, 10);
  replayer_complete_held (&r, TRUE);
  settle (fx->dl);
  g_assert_cmpuint (fx->signals.resolved, ==, 10);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 0);
  replayer_clear (&r);
}

static void
flush_count_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  guint *counts = user_data;   /* [0] done, [1] refused */
  g_autoptr(GError) error = NULL;

  if (bp_dead_letters_flush_finish (BP_DEAD_LETTERS (source), result, &error))
    counts[0]++;
  else
    {
      g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
      counts[1]++;
    }
}

/* At most 4096 caller operations wait; the next ones are refused at once,
 * however fast the worker drains (the bound is counted where they are
 * answered, not in the worker's queue), and the store works on afterwards. */
static void
test_queue_bound (Fixture       *fx,
                  gconstpointer  data)
{
  guint counts[2] = { 0, 0 };
  const guint n = 4096 + 10;

  for (guint i = 0; i < n; i++)
    bp_dead_letters_flush_async (fx->dl, NULL, flush_count_cb, counts);
  while (counts[0] + counts[1] < n)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (counts[0], ==, 4096);
  g_assert_cmpuint (counts[1], ==, 10);

  enqueue (fx->dl, "pg", "after");
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 1);
}

static void
test_replay_in_flight (Fixture       *fx,
                       gconstpointer  data)
{
  Replayer pg, bolt;

  replayer_init (&pg, MODE_HOLD);
  replayer_init (&bolt, MODE_HOLD);
  g_object_set (fx->dl, "max-replays-per-second", 100, "max-in-flight", 1, NULL);
  for (guint i = 0; i < 3; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i);

      enqueue (fx->dl, "pg", key);
      enqueue (fx->dl, "bolt", key);
    }
  bp_dead_letters_set_handler (fx->dl, "pg", replay_func, &pg, NULL);
  bp_dead_letters_set_handler (fx->dl, "bolt", replay_func, &bolt, NULL);
  advance (fx->dl, fx->clock, 1000 * MS);
  /* One at a time per backend. */
  g_assert_cmpuint (pg.n_calls, ==, 1);
  g_assert_cmpuint (bolt.n_calls, ==, 1);

  /* A forced replay of a busy entry is refused. */
  {
    g_autoptr(GVariant) page = list (fx->dl, 0, 1, NULL, NULL);
    g_autoptr(GError) error = NULL;
    Wait wait = { 0 };
    g_autoptr(GAsyncResult) result = NULL;
    guint64 first;

    g_variant_get_child (page, 0, "(tsssuxs)", &first, NULL, NULL, NULL, NULL, NULL, NULL);
    bp_dead_letters_replay_async (fx->dl, first, NULL, wait_cb, &wait);
    result = wait_for (&wait);
    g_assert_false (bp_dead_letters_replay_finish (fx->dl, result, &error));
    g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  }

  replayer_complete_held (&pg, TRUE);
  settle (fx->dl);
  g_assert_cmpuint (pg.n_calls, ==, 2);
  g_assert_cmpuint (bolt.n_calls, ==, 1);
  replayer_complete_held (&pg, FALSE);
  settle (fx->dl);
  g_assert_cmpuint (pg.n_calls, ==, 3);
  replayer_complete_held (&pg, TRUE);
  replayer_complete_held (&bolt, TRUE);
  settle (fx->dl);
  g_assert_cmpuint (bolt.n_calls, ==, 2);
  replayer_complete_held (&bolt, TRUE);
  settle (fx->dl);
  replayer_complete_held (&bolt, TRUE);
  settle (fx->dl);
  g_assert_cmpuint (bolt.n_calls, ==, 3);
  /* The failed pg entry waits for its backoff. */
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 1);
  g_assert_cmpuint (fx->signals.resolved, ==, 5);

  bp_dead_letters_set_handler (fx->dl, "pg", NULL, NULL, NULL);
  bp_dead_letters_set_handler (fx->dl, "bolt", NULL, NULL, NULL);
  replayer_clear (&pg);
  replayer_clear (&bolt);
}

static void
test_replay_all (Fixture       *fx,
                 gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  gint64 now = bp_dead_letters_get_now_unix (fx->dl);
  Replayer r;
  guint n = 0;

  replayer_init (&r, MODE_SUCCEED);
  g_object_set (fx->dl, "max-replays-per-second", 100, "max-in-flight", 10, NULL);
  for (guint i = 0; i < 4; i++)
    {
      g_autofree char *key = g_strdup_printf ("k%u", i);

      g_assert_cmpuint (enqueue_full (fx->dl, i < 3 ? "pg" : "bolt", "Sql.Query", NULL, key, NULL,
                                      now + 3600 * G_TIME_SPAN_SECOND, NULL, &error), >, 0);
    }
  bp_dead_letters_set_handler (fx->dl, "pg", replay_func, &r, NULL);
  settle (fx->dl);
  g_assert_cmpuint (r.n_calls, ==, 0);

  {
    Wait wait = { 0 };
    g_autoptr(GAsyncResult) result = NULL;

    bp_dead_letters_replay_all_async (fx->dl, "pg", NULL, wait_cb, &wait);
    result = wait_for (&wait);
    g_assert_true (bp_dead_letters_replay_all_finish (fx->dl, result, &n, &error));
    g_assert_no_error (error);
  }
  g_assert_cmpuint (n, ==, 3);
  /* Due now: replayed without moving the clock. */
  settle (fx->dl);
  g_assert_cmpuint (r.n_calls, ==, 3);
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl), ==, 1);
  bp_dead_letters_set_handler (fx->dl, "pg", NULL, NULL, NULL);
  replayer_clear (&r);
}

static void
test_close_cancels_in_flight (Fixture       *fx,
                              gconstpointer  data)
{
  Replayer r;
  guint64 id;
  GTask *held;
  Wait wait = { 0 };
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  replayer_init (&r, MODE_HOLD);
  id = enqueue (fx->dl, "pg", "k");
  bp_dead_letters_set_handler (fx->dl, "pg", replay_func, &r, NULL);
  advance (fx->dl, fx->clock, 1000 * MS);
  g_assert_cmpuint (r.held->len, ==, 1);
  held = g_ptr_array_index (r.held, 0);

  bp_dead_letters_close_async (fx->dl, NULL, wait_cb, &wait);
  iterate ();
  /* Waits for the replay, whose cancellable fired. */
  g_assert_false (wait.done);
  g_assert_true (g_cancellable_is_cancelled (g_task_get_cancellable (held)));
  g_task_return_new_error (held, G_IO_ERROR, G_IO_ERROR_CANCELLED, "Operation was cancelled");
  g_ptr_array_set_size (r.held, 0);
  result = wait_for (&wait);
  g_assert_true (bp_dead_letters_close_finish (fx->dl, result, &error));

  /* A cancelled replay is not an attempt. */
  g_clear_object (&result);
  g_assert_finalize_object (g_steal_pointer (&fx->dl));
  fx->dl = open_store (fx->path, fx->clock, &error);
  g_assert_no_error (error);
  g_assert_cmpint (entry_int (fx->dl, id, "attempts"), ==, 3);
  g_assert_cmpint (entry_int (fx->dl, id, "replays"), ==, 0);
  replayer_clear (&r);
}

/* ---- concurrency -------------------------------------------------------- */

typedef struct
{
  guint  done;
  guint  added;
  guint  errors;
} EnqueueCount;

static void
enqueue_count_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  EnqueueCount *c = user_data;
  g_autoptr(GError) error = NULL;
  gboolean added = FALSE;

  if (bp_dead_letters_enqueue_finish (BP_DEAD_LETTERS (object), result, &added, &error) == 0)
    c->errors++;
  else if (added)
    c->added++;
  c->done++;
}

static void
test_concurrent_enqueue_replay (Fixture       *fx,
                                gconstpointer  data)
{
  const guint n_keys = 200;
  EnqueueCount c = { 0 };
  Replayer r;
  guint rounds = 0;

  replayer_init (&r, MODE_ALTERNATE);
  g_object_set (fx->dl,
                "max-replays-per-second", 10000,
                "max-in-flight", 4,
                "poison-after", 1000,
                "replay-base-ms", 100,
                "replay-cap-ms", 400,
                NULL);
  bp_dead_letters_set_handler (fx->dl, "pg", replay_func, &r, NULL);
  bp_dead_letters_set_handler (fx->dl, "bolt", replay_func, &r, NULL);

  /* Every key twice, all in flight at once, while replays run. */
  for (guint round = 0; round < 2; round++)
    for (guint i = 0; i < n_keys; i++)
      {
        g_autofree char *key = g_strdup_printf ("key-%u", i);

        bp_dead_letters_enqueue_async (fx->dl, i % 2 ? "pg" : "bolt", "Sql.Query",
                                       g_variant_new_uint32 (i), key, NULL, 1, 0,
                                       NULL, enqueue_count_cb, &c);
        if (i % 50 == 0)
          {
            bp_clock_advance (fx->clock, 200 * MS);
            iterate ();
          }
      }

  while (c.done < 2 * n_keys)
    g_main_context_iteration (NULL, TRUE);
  g_assert_cmpuint (c.errors, ==, 0);
  /* A key whose first entry was already replayed away when its second
   * enqueue ran is a new dead letter: between n_keys and 2·n_keys rows. */
  g_assert_cmpuint (c.added, >=, n_keys);
  g_assert_cmpuint (c.added, <=, 2 * n_keys);
  g_assert_cmpuint (fx->signals.added, ==, c.added);

  /* Mid-way the store's count agrees with its own listing. */
  settle (fx->dl);
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) all = list (fx->dl, 0, 1000, NULL, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (g_variant_n_children (all), ==, bp_dead_letters_get_count (fx->dl));
  }
  g_assert_cmpuint (bp_dead_letters_get_count (fx->dl) + fx->signals.resolved, ==, c.added);

  while (bp_dead_letters_get_count (fx->dl) > 0)
    {
      g_assert_cmpuint (++rounds, <, 1000);
      advance (fx->dl, fx->clock, 500 * MS);
    }
  g_assert_cmpuint (fx->signals.resolved, ==, c.added);
  g_assert_cmpuint (fx->signals.poisoned, ==, 0);
  /* Every failure was followed by a success of the same entry. */
  g_assert_cmpuint (r.n_calls, >=, n_keys);
  g_assert_cmpint (sql_int (fx->path, "SELECT COUNT(*) FROM dead_letters", NULL), ==, 0);
  {
    g_autofree char *check = sql_text (fx->path, "PRAGMA integrity_check");

    g_assert_cmpstr (check, ==, "ok");
  }
  bp_dead_letters_set_handler (fx->dl, "pg", NULL, NULL, NULL);
  bp_dead_letters_set_handler (fx->dl, "bolt", NULL, NULL, NULL);
  replayer_clear (&r);
}

/* ---- kill -9 ------------------------------------------------------------ */

typedef struct
{
  BpDeadLetters *dl;
  const char    *prefix;
  guint          next;
  guint          n;
  guint          in_flight;
  gboolean       failed;
} Writer;

typedef struct
{
  Writer *w;
  guint   index;
} WriterCall;

static void writer_pump (Writer *w);

static void
writer_enqueue_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autofree WriterCall *call = user_data;
  Writer *w = call->w;
  g_autoptr(GError) error = NULL;

  w->in_flight--;
  if (bp_dead_letters_enqueue_finish (w->dl, result, NULL, &error) == 0)
    {
      g_printerr ("child: enqueue failed: %s\n", error->message);
      w->failed = TRUE;
      return;
    }
  /* Confirmed durable: only now may the parent count on it. */
  printf ("%s-%u\n", w->prefix, call->index);
  fflush (stdout);
  writer_pump (w);
}

static void
writer_pump (Writer *w)
{
  /* A few writes in flight, so the kill lands inside one. */
  while (w->in_flight < 4 && w->next < w->n)
    {
      g_autofree char *key = g_strdup_printf ("%s-%u", w->prefix, w->next);
      WriterCall *call = g_new0 (WriterCall, 1);

      call->w = w;
      call->index = w->next;
      bp_dead_letters_enqueue_async (w->dl, "pg", "Sql.Query",
                                     g_variant_new ("(su)", key, w->next), key, NULL, 1, 0,
                                     NULL, writer_enqueue_cb, call);
      w->in_flight++;
      w->next++;
    }
}

static int
child_writer_main (const char *path,
                   const char *prefix,
                   guint       n)
{
  g_autoptr(GError) error = NULL;
  Writer w = { 0 };

  w.dl = open_store (path, NULL, &error);
  if (w.dl == NULL)
    {
      g_printerr ("child: %s\n", error->message);
      return 1;
    }
  w.prefix = prefix;
  w.n = n;
  writer_pump (&w);
  while (!w.failed && (w.in_flight > 0 || w.next < w.n))
    g_main_context_iteration (NULL, TRUE);
  close_store (w.dl);
  g_object_unref (w.dl);
  return w.failed ? 1 : 0;
}

typedef struct
{
  GSubprocess      *child;
  GDataInputStream *lines;
  GPtrArray        *keys;
  guint             kill_after;
  gboolean          killed;
  gboolean          eof;
  gboolean          timed_out;
} CrashRun;

static void
crash_read_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  CrashRun *run = user_data;
  g_autoptr(GError) error = NULL;
  char *line;

  line = g_data_input_stream_read_line_finish_utf8 (run->lines, result, NULL, &error);
  g_assert_no_error (error);
  if (line == NULL)
    {
      run->eof = TRUE;
      return;
    }
  g_ptr_array_add (run->keys, line);
  if (!run->killed && run->keys->len >= run->kill_after)
    {
      /* SIGKILL, mid-stream: the child is writing as fast as it can. */
      g_subprocess_force_exit (run->child);
      run->killed = TRUE;
    }
  g_data_input_stream_read_line_async (run->lines, G_PRIORITY_DEFAULT, NULL, crash_read_cb, run);
}

static gboolean
crash_timeout_cb (gpointer user_data)
{
  CrashRun *run = user_data;

  run->timed_out = TRUE;
  return G_SOURCE_REMOVE;
}

static void
test_crash_kill_9 (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bp-dead-letters-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "dl.db", NULL);
  g_autofree char *self_exe = g_file_read_link ("/proc/self/exe", &error);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(BpDeadLetters) dl = NULL;
  CrashRun run = { 0 };
  guint timeout_id;
  gint64 rows, distinct;

  g_assert_no_error (error);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  run.child = g_subprocess_launcher_spawn (launcher, &error, self_exe, "--child-writer",
                                           path, "crash", "100000000", NULL);
  g_assert_no_error (error);
  run.lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (run.child));
  run.keys = g_ptr_array_new_with_free_func (g_free);
  run.kill_after = 50;

  /* A real process: wait on events, with a generous overall bound. */
  timeout_id = g_timeout_add_seconds (120, crash_timeout_cb, &run);
  g_data_input_stream_read_line_async (run.lines, G_PRIORITY_DEFAULT, NULL, crash_read_cb, &run);
  while (!run.eof && !run.timed_out)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (run.timed_out);
  g_source_remove (timeout_id);

  g_assert_true (g_subprocess_wait (run.child, NULL, &error));
  g_assert_true (run.killed);
  g_assert_true (g_subprocess_get_if_signaled (run.child));
  g_assert_cmpint (g_subprocess_get_term_sig (run.child), ==, SIGKILL);
  g_assert_cmpuint (run.keys->len, >=, run.kill_after);
  g_test_message ("child confirmed %u entries before SIGKILL", run.keys->len);

  /* The database is intact, and every confirmed key is there exactly once. */
  {
    g_autofree char *check = sql_text (path, "PRAGMA integrity_check");

    g_assert_cmpstr (check, ==, "ok");
  }
  for (guint i = 0; i < run.keys->len; i++)
    g_assert_cmpint (sql_int (path, "SELECT COUNT(*) FROM dead_letters WHERE idempotency_key = ?1",
                              g_ptr_array_index (run.keys, i)), ==, 1);
  rows = sql_int (path, "SELECT COUNT(*) FROM dead_letters", NULL);
  distinct = sql_int (path, "SELECT COUNT(DISTINCT idempotency_key) FROM dead_letters", NULL);
  g_test_message ("%" G_GINT64_FORMAT " rows after the crash", rows);
  g_assert_cmpint (rows, ==, distinct);
  /* Unconfirmed writes may or may not have landed, but no more than were
   * in flight. */
  g_assert_cmpint (rows, >=, run.keys->len);
  g_assert_cmpint (rows, <=, run.keys->len + 4);

  /* Reopened, it serves; re-enqueueing the same keys writes nothing. */
  dl = open_store (path, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (bp_dead_letters_get_count (dl), ==, rows);
  for (guint i = 0; i < run.keys->len; i++)
    {
      gboolean added = TRUE;
      guint64 id = enqueue_full (dl, "pg", "Sql.Query", NULL, g_ptr_array_index (run.keys, i),
                                 NULL, 0, &added, &error);

      g_assert_no_error (error);
      g_assert_cmpuint (id, >, 0);
      g_assert_false (added);
    }
  g_assert_cmpuint (bp_dead_letters_get_count (dl), ==, rows);
  g_assert_cmpint (sql_int (path, "SELECT COUNT(*) FROM dead_letters", NULL), ==, rows);
  close_store (dl);
  g_assert_finalize_object (g_steal_pointer (&dl));

  g_ptr_array_unref (run.keys);
  g_object_unref (run.lines);
  g_object_unref (run.child);
  remove_tree (dir);
}

int
main (int   argc,
      char *argv[])
{
  if (argc == 5 && g_str_equal (argv[1], "--child-writer"))
    return child_writer_main (argv[2], argv[3], (guint) g_ascii_strtoull (argv[4], NULL, 10));

  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)

  ADD ("/dead-letters/open/creates", test_open_creates);
  g_test_add_func ("/dead-letters/open/newer-schema", test_open_newer_schema);
  ADD ("/dead-letters/enqueue/dedup", test_enqueue_dedup);
  ADD ("/dead-letters/enqueue/limits", test_enqueue_limits);
  ADD ("/dead-letters/list-get-delete-purge", test_list_get_delete_purge);
  ADD ("/dead-letters/reopen", test_reopen_keeps);
  ADD ("/dead-letters/replay/success", test_replay_success);
  ADD ("/dead-letters/replay/no-handler-waits", test_no_handler_waits);
  ADD ("/dead-letters/replay/backoff-poison", test_replay_backoff_poison);
  ADD ("/dead-letters/replay/retry-after", test_replay_retry_after);
  ADD ("/dead-letters/replay/circuit-open-not-counted", test_replay_circuit_open);
  ADD ("/dead-letters/replay/handler-cancelled-backs-off", test_replay_handler_cancelled);
  ADD ("/dead-letters/queue-bound", test_queue_bound);
  ADD ("/dead-letters/replay/rate-limit", test_replay_rate_limit);
  ADD ("/dead-letters/replay/in-flight", test_replay_in_flight);
  ADD ("/dead-letters/replay/all", test_replay_all);
  ADD ("/dead-letters/close/cancels-in-flight", test_close_cancels_in_flight);
  ADD ("/dead-letters/concurrent/enqueue-and-replay", test_concurrent_enqueue_replay);
  g_test_add_func ("/dead-letters/crash/kill-9", test_crash_kill_9);

#undef ADD

  return g_test_run ();
}
