/* test-backend.c: BpBackend configuration and its resilient call path
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <glib/gstdio.h>
#include <string.h>

#include <backplane.h>

/* A backend type for the tests, with one key of its own. */
#define TEST_TYPE_BACKEND (test_backend_get_type ())
G_DECLARE_FINAL_TYPE (TestBackend, test_backend, TEST, BACKEND, BpBackend)

struct _TestBackend
{
  BpBackend parent_instance;
  guint64   colour;
};

G_DEFINE_FINAL_TYPE (TestBackend, test_backend, BP_TYPE_BACKEND)

static gboolean
test_backend_configure (BpBackend        *backend,
                        BpConfigSection  *section,
                        GError          **error)
{
  return bp_config_section_get_uint (section, "colour", 1, 0, 10, &TEST_BACKEND (backend)->colour, error);
}

static BpFailureKind
test_backend_classify (BpBackend    *backend,
                       const GError *error)
{
  /* A "unique violation" is the caller's fault, not the server's. */
  if (g_error_matches (error, BP_ERROR, BP_ERROR_BACKEND) && g_str_has_prefix (error->message, "SQLSTATE 23505"))
    return BP_FAILURE_IGNORE;
  return bp_failure_kind_from_error (error);
}

static void
test_backend_class_init (TestBackendClass *klass)
{
  BP_BACKEND_CLASS (klass)->configure = test_backend_configure;
  BP_BACKEND_CLASS (klass)->classify_error = test_backend_classify;
}

static void
test_backend_init (TestBackend *self)
{
}

static BpBackend *
configure (BpClock     *clock,
           const char  *text,
           GError     **error)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(BpConfigSection) section = NULL;
  g_autoptr(BpBackend) backend = NULL;
  g_autofree char *full = g_strconcat ("[backend t]\ntype=test\n", text, NULL);

  g_assert_true (g_key_file_load_from_data (kf, full, -1, G_KEY_FILE_NONE, NULL));
  section = bp_config_section_new (kf, "backend t");
  backend = g_object_new (TEST_TYPE_BACKEND, "name", "t", "type-name", "test", "clock", clock, NULL);
  if (!bp_backend_configure (backend, section, error))
    return NULL;
  return g_steal_pointer (&backend);
}

static void
test_config_applies (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBackend) b = configure (clock,
                                      "colour=7\nbreaker.min-volume=4\nbreaker.error-threshold=25\n"
                                      "breaker.open-ms=1234\nretry.max-attempts=5\nretry.jitter=decorrelated\n"
                                      "retry.multiplier=1.5\npool.min=2\npool.max=3\n", &error);
  guint min_volume, threshold, open_ms, attempts;
  double multiplier;
  BpJitter jitter;

  g_assert_no_error (error);
  g_assert_cmpuint (TEST_BACKEND (b)->colour, ==, 7);
  g_object_get (bp_backend_get_breaker (b), "min-volume", &min_volume, "error-threshold-percent", &threshold,
                "open-ms", &open_ms, NULL);
  g_assert_cmpuint (min_volume, ==, 4);
  g_assert_cmpuint (threshold, ==, 25);
  g_assert_cmpuint (open_ms, ==, 1234);
  g_object_get (bp_backend_get_retry (b), "max-attempts", &attempts, "jitter", &jitter,
                "multiplier", &multiplier, NULL);
  g_assert_cmpuint (attempts, ==, 5);
  g_assert_cmpint (jitter, ==, BP_JITTER_DECORRELATED);
  g_assert_cmpfloat (multiplier, ==, 1.5);
  g_assert_cmpuint (bp_backend_get_pool_config (b)->min, ==, 2);
  g_assert_cmpuint (bp_backend_get_pool_config (b)->max, ==, 3);
  g_assert_cmpstr (bp_backend_get_object_path (b), ==, "/org/backplane/Backplane1/backend/t");
}

static void
test_config_jitter_names (void)
{
  static const struct
  {
    const char *name;
    BpJitter    jitter;
  } cases[] = {
    { "full", BP_JITTER_FULL },
    { "equal", BP_JITTER_EQUAL },
    { "decorrelated", BP_JITTER_DECORRELATED },
    { "none", BP_JITTER_NONE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(BpClock) clock = bp_clock_new_manual (0, 1);
      g_autoptr(GError) error = NULL;
      g_autofree char *text = g_strdup_printf ("retry.jitter=%s\n", cases[i].name);
      g_autoptr(BpBackend) b = configure (clock, text, &error);
      BpJitter jitter;

      g_assert_no_error (error);
      g_object_get (bp_backend_get_retry (b), "jitter", &jitter, NULL);
      g_assert_cmpint (jitter, ==, cases[i].jitter);
    }
}

static void
test_config_errors (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 1);
  struct { const char *text; const char *needle; } cases[] = {
    { "colour=11\n", "colour" },
    { "colur=3\n", "unknown key “colur”" },
    { "retry.jitter=wild\n", "retry.jitter" },
    { "retry.multiplier=0.5\n", "retry.multiplier: “0.5” is not a number from 1 to 10" },
    { "retry.multiplier=11\n", "retry.multiplier" },
    { "retry.multiplier=1,5\n", "retry.multiplier" },
    { "retry.multiplier=nan\n", "retry.multiplier" },
    { "retry.multiplier=inf\n", "retry.multiplier" },
    { "retry.multiplier=\n", "retry.multiplier" },
    { "pool.min=5\npool.max=2\n", "pool.min" },
    { "breaker.error-threshold=0\n", "breaker.error-threshold" },
    { "retry.base-ms=500\nretry.cap-ms=100\n", "retry.base-ms" },
    { "enabled=maybe\n", "enabled" },
    { "password=hunter2\n", "secrets may not be written" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BpBackend) b = configure (clock, cases[i].text, &error);

      g_assert_null (b);
      g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
      if (strstr (error->message, cases[i].needle) == NULL)
        g_error ("“%s” → “%s” does not name “%s”", cases[i].text, error->message, cases[i].needle);
      g_assert_null (strstr (error->message, "hunter2"));
    }
}

static void
test_secret_sources (void)
{
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bp-secret-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "pw", NULL);
  g_autofree char *text = NULL;
  g_autofree char *secret = NULL;
  g_autoptr(BpConfigSection) s = NULL;

  g_assert_true (g_file_set_contents (path, "s3cret\nignored second line\n", -1, NULL));
  g_chmod (path, 0644);
  text = g_strdup_printf ("[g]\npassword-file=%s\napi-key-env=BP_TEST_KEY\n", path);
  g_assert_true (g_key_file_load_from_data (kf, text, -1, G_KEY_FILE_NONE, NULL));
  s = bp_config_section_new (kf, "g");

  /* A world-readable secret file is refused. */
  g_assert_false (bp_config_section_get_secret (s, "password", &secret, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_PERMISSION_DENIED);
  g_clear_error (&error);
  g_chmod (path, 0600);
  g_assert_true (bp_config_section_get_secret (s, "password", &secret, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (secret, ==, "s3cret");
  g_clear_pointer (&secret, g_free);

  g_unsetenv ("BP_TEST_KEY");
  g_assert_false (bp_config_section_get_secret (s, "api-key", &secret, &error));
  g_assert_nonnull (strstr (error->message, "BP_TEST_KEY"));
  g_clear_error (&error);
  g_setenv ("BP_TEST_KEY", "k3y", TRUE);
  g_assert_true (bp_config_section_get_secret (s, "api-key", &secret, &error));
  g_assert_cmpstr (secret, ==, "k3y");
  g_assert_true (bp_config_section_check_unused (s, &error));

  g_unlink (path);
  g_rmdir (dir);
}

/* An operation that fails a given number of times, then succeeds. */
typedef struct
{
  guint   calls;
  guint   failures;
  GError *error;  /* what it fails with */
} FlakyOp;

static void
flaky_start (gpointer             op_data,
             GCancellable        *cancellable,
             GAsyncReadyCallback  callback,
             gpointer             callback_data)
{
  FlakyOp *op = op_data;
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, callback_data);

  if (op->calls++ < op->failures)
    g_task_return_error (task, g_error_copy (op->error));
  else
    g_task_return_pointer (task, g_strdup ("done"), g_free);
}

static gboolean
flaky_finish (gpointer       op_data,
              GAsyncResult  *result,
              gpointer      *out_result,
              GError       **error)
{
  char *value = g_task_propagate_pointer (G_TASK (result), error);

  if (value == NULL)
    return FALSE;
  *out_result = value;
  return TRUE;
}

static const BpOperation flaky_op = { flaky_start, flaky_finish, g_free };

typedef struct
{
  gboolean  done;
  gboolean  ok;
  char     *value;
  guint     attempts;
  GError   *error;
} Outcome;

static void
call_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Outcome *o = user_data;

  o->ok = bp_backend_call_finish (BP_BACKEND (source), result, (gpointer *) &o->value, &o->attempts, &o->error);
  o->done = TRUE;
}

static void
run_until_done (BpClock *clock,
                Outcome *o)
{
  /* Drive retry sleeps with the manual clock: no real waiting. */
  for (guint i = 0; i < 1000 && !o->done; i++)
    {
      while (g_main_context_iteration (NULL, FALSE))
        ;
      if (!o->done)
        bp_clock_advance (clock, 50 * 1000);
    }
  g_assert_true (o->done);
}

/* An operation that never answers by itself: the test completes it late,
 * after the breaker's timeout. Its data lives on the heap, so a use after
 * the call freed it is caught by AddressSanitizer. */
typedef struct
{
  GTask **pending;   /* where start() parks its task */
  guint  *n_freed;
  guint   n_finished;
} SlowOp;

static void
slow_start (gpointer             op_data,
            GCancellable        *cancellable,
            GAsyncReadyCallback  callback,
            gpointer             callback_data)
{
  SlowOp *op = op_data;

  g_assert_null (*op->pending);
  /* no cancellable: the late result comes even after the timeout cancelled it */
  *op->pending = g_task_new (NULL, NULL, callback, callback_data);
}

static gboolean
slow_finish (gpointer       op_data,
             GAsyncResult  *result,
             gpointer      *out_result,
             GError       **error)
{
  SlowOp *op = op_data;
  char *value = g_task_propagate_pointer (G_TASK (result), error);

  op->n_finished++;
  if (value == NULL)
    return FALSE;
  *out_result = value;
  return TRUE;
}

static void
slow_op_free (SlowOp *op)
{
  (*op->n_freed)++;
  g_free (op);
}

static const BpOperation slow_op = { slow_start, slow_finish, g_free };

/* breaker.timeout-ms: the call completes with Timeout at the deadline, and
 * the operation's data lives until its late result has been finished. */
static void
test_call_timeout_late_result (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 7);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBackend) b = configure (clock, "breaker.timeout-ms=100\nretry.max-attempts=1\n", &error);
  GTask *pending = NULL;
  guint n_freed = 0;
  SlowOp *op = g_new0 (SlowOp, 1);
  Outcome o = { 0 };

  g_assert_no_error (error);
  op->pending = &pending;
  op->n_freed = &n_freed;
  bp_backend_call_async (b, &slow_op, op, (GDestroyNotify) slow_op_free, BP_IDEMPOTENCY_IDEMPOTENT,
                         NULL, call_done_cb, &o);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_nonnull (pending);
  bp_clock_advance (clock, 100 * 1000);
  while (!o.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_false (o.ok);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_cmpuint (o.attempts, ==, 1);
  /* the call is over, the attempt is not: its data is still there */
  g_assert_cmpuint (n_freed, ==, 0);

  g_task_return_pointer (pending, g_strdup ("late"), g_free);
  g_clear_object (&pending);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_cmpuint (n_freed, ==, 1);
  g_clear_error (&o.error);
}

static void
test_call_retries_idempotent (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 7);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBackend) b = configure (clock, "retry.max-attempts=4\nretry.base-ms=10\nretry.cap-ms=100\n", &error);
  FlakyOp op = { 0, 2, g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, "server gone") };
  Outcome o = { 0 };
  g_autoptr(GVariant) latency = NULL;
  guint64 count;

  g_assert_no_error (error);
  bp_backend_call_async (b, &flaky_op, &op, NULL, BP_IDEMPOTENCY_IDEMPOTENT, NULL, call_done_cb, &o);
  run_until_done (clock, &o);
  g_assert_no_error (o.error);
  g_assert_true (o.ok);
  g_assert_cmpstr (o.value, ==, "done");
  g_assert_cmpuint (o.attempts, ==, 3);
  g_assert_cmpuint (op.calls, ==, 3);
  latency = bp_backend_dup_latency (b);
  g_assert_true (g_variant_lookup (latency, "count", "t", &count));
  g_assert_cmpuint (count, ==, 1);
  g_free (o.value);
  g_error_free (op.error);
}

static void
test_call_unsafe_not_retried (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 7);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBackend) b = configure (clock, "retry.max-attempts=4\n", &error);
  FlakyOp op = { 0, 2, g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, "server gone") };
  Outcome o = { 0 };

  bp_backend_call_async (b, &flaky_op, &op, NULL, BP_IDEMPOTENCY_UNSAFE, NULL, call_done_cb, &o);
  run_until_done (clock, &o);
  g_assert_false (o.ok);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_UNAVAILABLE);
  g_assert_cmpuint (op.calls, ==, 1);
  g_assert_cmpuint (o.attempts, ==, 1);
  g_clear_error (&o.error);
  g_error_free (op.error);
}

static void
test_call_ignored_never_trips (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 7);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBackend) b = configure (clock, "breaker.min-volume=2\nbreaker.error-threshold=50\n", &error);
  g_autoptr(GVariant) stats = NULL;
  const char *state;

  for (guint i = 0; i < 20; i++)
    {
      FlakyOp op = { 0, 1, g_error_new_literal (BP_ERROR, BP_ERROR_BACKEND, "SQLSTATE 23505: duplicate key") };
      Outcome o = { 0 };

      bp_backend_call_async (b, &flaky_op, &op, NULL, BP_IDEMPOTENCY_IDEMPOTENT, NULL, call_done_cb, &o);
      run_until_done (clock, &o);
      g_assert_error (o.error, BP_ERROR, BP_ERROR_BACKEND);
      g_assert_cmpuint (op.calls, ==, 1); /* IGNORE is not retried either */
      g_clear_error (&o.error);
      g_error_free (op.error);
    }
  stats = bp_backend_dup_breaker_stats (b);
  g_assert_true (g_variant_lookup (stats, "state", "&s", &state));
  g_assert_cmpstr (state, ==, "closed");
}

static void
test_call_trips_breaker (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 7);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBackend) b = configure (clock, "breaker.min-volume=4\nbreaker.error-threshold=50\n"
                                             "retry.max-attempts=1\n", &error);
  g_autoptr(GVariant) stats = NULL;
  Outcome o = { 0 };
  FlakyOp ok_op = { 0, 0, NULL };
  const char *state;

  for (guint i = 0; i < 4; i++)
    {
      FlakyOp op = { 0, 1, g_error_new_literal (BP_ERROR, BP_ERROR_UNAVAILABLE, "down") };
      Outcome fo = { 0 };

      bp_backend_call_async (b, &flaky_op, &op, NULL, BP_IDEMPOTENCY_UNSAFE, NULL, call_done_cb, &fo);
      run_until_done (clock, &fo);
      g_clear_error (&fo.error);
      g_error_free (op.error);
    }
  stats = bp_backend_dup_breaker_stats (b);
  g_assert_true (g_variant_lookup (stats, "state", "&s", &state));
  g_assert_cmpstr (state, ==, "open");

  /* Open: the operation is not even started. */
  bp_backend_call_async (b, &flaky_op, &ok_op, NULL, BP_IDEMPOTENCY_UNSAFE, NULL, call_done_cb, &o);
  while (!o.done)
    g_main_context_iteration (NULL, TRUE);
  g_assert_error (o.error, BP_ERROR, BP_ERROR_CIRCUIT_OPEN);
  g_assert_cmpint (bp_error_get_retry_after (o.error), >, 0);
  g_assert_cmpuint (ok_op.calls, ==, 0);
  g_clear_error (&o.error);

  bp_backend_reset_breaker (b);
  g_clear_pointer (&stats, g_variant_unref);
  stats = bp_backend_dup_breaker_stats (b);
  g_assert_true (g_variant_lookup (stats, "state", "&s", &state));
  g_assert_cmpstr (state, ==, "closed");
}

static void
test_state_notify (void)
{
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 7);
  g_autoptr(GError) error = NULL;
  g_autoptr(BpBackend) b = configure (clock, "", &error);
  guint notified = 0;

  g_signal_connect_swapped (b, "notify::state", G_CALLBACK (g_nullify_pointer), NULL);
  g_signal_handlers_disconnect_matched (b, G_SIGNAL_MATCH_FUNC, 0, 0, NULL, g_nullify_pointer, NULL);
  g_signal_connect_swapped (b, "notify::state", G_CALLBACK (g_atomic_int_inc), &notified);
  g_assert_cmpint (bp_backend_get_state (b), ==, BP_BACKEND_STATE_STARTING);
  bp_backend_set_state (b, BP_BACKEND_STATE_READY, NULL);
  bp_backend_set_state (b, BP_BACKEND_STATE_READY, NULL);
  bp_backend_set_state (b, BP_BACKEND_STATE_DEGRADED, "pool below minimum");
  g_assert_cmpuint (notified, ==, 2);
  g_assert_cmpstr (bp_backend_get_state_reason (b), ==, "pool below minimum");
  g_assert_cmpstr (bp_backend_state_to_string (bp_backend_get_state (b)), ==, "degraded");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/backend/config/applies", test_config_applies);
  g_test_add_func ("/backend/config/errors", test_config_errors);
  g_test_add_func ("/backend/config/jitter-names", test_config_jitter_names);
  g_test_add_func ("/backend/config/secrets", test_secret_sources);
  g_test_add_func ("/backend/call/retries-idempotent", test_call_retries_idempotent);
  g_test_add_func ("/backend/call/timeout-late-result", test_call_timeout_late_result);
  g_test_add_func ("/backend/call/unsafe-not-retried", test_call_unsafe_not_retried);
  g_test_add_func ("/backend/call/ignored-never-trips", test_call_ignored_never_trips);
  g_test_add_func ("/backend/call/trips-breaker", test_call_trips_breaker);
  g_test_add_func ("/backend/state/notify", test_state_notify);
  return g_test_run ();
}
