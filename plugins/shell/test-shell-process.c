/* test-shell-process.c: BpShellProcess against real processes
 *
 * These tests wait for events (reaping, end-of-file, a file appearing) with
 * a generous overall deadline and assert no durations. Timeouts and kill
 * grace periods run on a manual BpClock that the test advances once the
 * child is known to be in the state under test.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <glib-unix.h>
#include <gio/gunixinputstream.h>

#include "bp-shell-process.h"

#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif

#define SH "/usr/bin/sh"
#define DEADLINE_S 120

/* ------------------------------------------------------------------------ */
/* Waiting for events                                                       */

static gboolean
wake_cb (gpointer data)
{
  return G_SOURCE_CONTINUE;
}

typedef gboolean (*Condition) (gpointer data);

static void
spin_until (Condition   cond,
            gpointer    data,
            const char *what)
{
  gint64 deadline = g_get_monotonic_time () + DEADLINE_S * G_USEC_PER_SEC;
  guint wake = g_timeout_add (20, wake_cb, NULL);

  while (!cond (data))
    {
      if (g_get_monotonic_time () > deadline)
        g_error ("gave up waiting for %s", what);
      g_main_context_iteration (NULL, TRUE);
    }
  g_source_remove (wake);
}

static gboolean
pointer_set (gpointer data)
{
  return *(gpointer *) data != NULL;
}

static gboolean
pointer_unset (gpointer data)
{
  return *(gpointer *) data == NULL;
}

static gboolean
flag_set (gpointer data)
{
  return *(gboolean *) data;
}

static void
store_result_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GAsyncResult **out = user_data;

  g_assert_null (*out);
  *out = g_object_ref (result);
}

static BpShellRunResult *
run_sync (const BpShellSpawnOptions  *options,
          GCancellable               *cancellable,
          GError                    **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  bp_shell_process_run_async (options, cancellable, store_result_cb, &result);
  spin_until (pointer_set, &result, "run_async");
  return bp_shell_process_run_finish (result, error);
}

static gboolean
wait_sync (BpShellProcess  *process,
           int             *exit_code,
           int             *term_signal,
           GError         **error)
{
  g_autoptr(GAsyncResult) result = NULL;

  bp_shell_process_wait_async (process, NULL, store_result_cb, &result);
  spin_until (pointer_set, &result, "wait_async");
  return bp_shell_process_wait_finish (process, result, exit_code, term_signal, error);
}

static BpShellSpawnOptions *
options_new (const char *first,
             ...)
{
  BpShellSpawnOptions *options = bp_shell_spawn_options_new ();
  const char *arg;
  va_list ap;

  bp_shell_spawn_options_add_arg (options, first, -1);
  va_start (ap, first);
  while ((arg = va_arg (ap, const char *)) != NULL)
    bp_shell_spawn_options_add_arg (options, arg, -1);
  va_end (ap);
  return options;
}

static BpShellRunResult *
run_sh (const char *script)
{
  g_autoptr(BpShellSpawnOptions) options = options_new (SH, "-c", script, NULL);
  g_autoptr(GError) error = NULL;
  BpShellRunResult *result = run_sync (options, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (result);
  return result;
}

static void
assert_bytes_eq (GBytes     *bytes,
                 const char *expected)
{
  gsize len;
  const char *data;

  g_assert_nonnull (bytes);
  data = g_bytes_get_data (bytes, &len);
  g_assert_cmpmem (data, len, expected, strlen (expected));
}

/* ------------------------------------------------------------------------ */
/* /proc helpers                                                            */

/* State letter of @pid ('Z' zombie, 'X' dead), 0 if it does not exist,
 * and its parent in @ppid. */
static char
proc_state (pid_t  pid,
            pid_t *ppid)
{
  g_autofree char *path = g_strdup_printf ("/proc/%d/stat", (int) pid);
  g_autofree char *contents = NULL;
  const char *p;
  char state = 0;
  int parent = 0;

  if (!g_file_get_contents (path, &contents, NULL, NULL))
    return 0;
  p = strrchr (contents, ')');
  if (p == NULL || sscanf (p + 1, " %c %d", &state, &parent) != 2)
    return 0;
  if (ppid != NULL)
    *ppid = parent;
  return state;
}

/* A process outside our supervision is "gone" once it does not exist or is
 * a zombie (this container's pid 1 may not reap orphans). */
static gboolean
pid_is_dead (pid_t pid)
{
  char state = proc_state (pid, NULL);

  return state == 0 || state == 'Z' || state == 'X';
}

static gboolean
pid_is_dead_cond (gpointer data)
{
  return pid_is_dead (GPOINTER_TO_INT (data));
}

static guint
count_zombie_children (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc", 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      pid_t ppid = 0;
      char state;

      if (!g_ascii_isdigit (name[0]))
        continue;
      state = proc_state (atoi (name), &ppid);
      if (state == 'Z' && ppid == getpid ())
        n++;
    }
  return n;
}

static guint
count_open_fds (void)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  const char *name;
  guint n = 0;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    n++;
  return n - 1; /* the GDir's own fd */
}

/* GLib's child watch (when it uses pidfds) holds one per child, closed by
 * its worker thread when the watch source goes away, which can be just
 * after our wait callback ran: wait until none is left. */
static gboolean
no_pidfds (gpointer data)
{
  g_autoptr(GDir) dir = g_dir_open ("/proc/self/fd", 0, NULL);
  const char *name;

  g_assert_nonnull (dir);
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *path = g_strdup_printf ("/proc/self/fd/%s", name);
      g_autofree char *target = g_file_read_link (path, NULL);

      if (target != NULL && strstr (target, "pidfd") != NULL)
        return FALSE;
    }
  return TRUE;
}

/* Reads a pid the child wrote to @path, waiting until the line is complete. */
typedef struct
{
  const char *path;
  pid_t       pid;
} PidFile;

static gboolean
pid_file_ready (gpointer data)
{
  PidFile *pf = data;
  g_autofree char *contents = NULL;
  gsize len;

  if (!g_file_get_contents (pf->path, &contents, &len, NULL) || len == 0 || contents[len - 1] != '\n')
    return FALSE;
  pf->pid = atoi (contents);
  return pf->pid > 0;
}

static pid_t
wait_for_pid_file (const char *path)
{
  PidFile pf = { path, 0 };

  spin_until (pid_file_ready, &pf, path);
  return pf.pid;
}

static char *
make_tmp_path (const char *name)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bp-shell-test-XXXXXX", &error);

  g_assert_no_error (error);
  return g_build_filename (dir, name, NULL);
}

static void
remove_tmp_path (const char *path)
{
  g_autofree char *dir = g_path_get_dirname (path);

  (void) g_unlink (path);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

/* ------------------------------------------------------------------------ */
/* Run                                                                      */

static void
test_run_exit_codes (void)
{
  static const int codes[] = { 0, 3, 255 };

  for (guint i = 0; i < G_N_ELEMENTS (codes); i++)
    {
      g_autofree char *script = g_strdup_printf ("exit %d", codes[i]);
      g_autoptr(BpShellRunResult) result = run_sh (script);

      g_assert_cmpint (result->exit_code, ==, codes[i]);
      g_assert_cmpint (result->term_signal, ==, 0);
      g_assert_cmpuint (result->pid, >, 0);
      assert_bytes_eq (result->stdout_bytes, "");
      assert_bytes_eq (result->stderr_bytes, "");
    }
}

static void
test_run_signals (void)
{
  static const int sigs[] = { SIGSEGV, SIGKILL, SIGTERM };

  for (guint i = 0; i < G_N_ELEMENTS (sigs); i++)
    {
      g_autofree char *script = g_strdup_printf ("ulimit -c 0; kill -%d $$", sigs[i]);
      g_autoptr(BpShellRunResult) result = run_sh (script);

      g_assert_cmpint (result->exit_code, ==, -1);
      g_assert_cmpint (result->term_signal, ==, sigs[i]);
    }
}

static void
test_run_output (void)
{
  g_autoptr(BpShellRunResult) result = run_sh ("echo out; echo err >&2; printf 'no newline'");

  g_assert_cmpint (result->exit_code, ==, 0);
  assert_bytes_eq (result->stdout_bytes, "out\nno newline");
  assert_bytes_eq (result->stderr_bytes, "err\n");
}

static void
test_run_stdin_cat (void)
{
  g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/cat", NULL);
  g_autoptr(BpShellRunResult) result = NULL;
  g_autoptr(GBytes) input = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (42);
  gsize size = 1024 * 1024;
  guint8 *data = g_malloc (size);

  for (gsize i = 0; i < size; i++)
    data[i] = g_rand_int (rand) & 0xff;
  input = g_bytes_new_take (data, size);
  bp_shell_spawn_options_set_stdin_bytes (options, input);

  result = run_sync (options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (result->exit_code, ==, 0);
  g_assert_true (g_bytes_equal (result->stdout_bytes, input));
  assert_bytes_eq (result->stderr_bytes, "");
}

static void
test_run_stdin_not_read (void)
{
  /* The child exits without reading 4 MiB of stdin: the write fails with
   * EPIPE (SIGPIPE is ignored in this process), the run still succeeds. */
  g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/true", NULL);
  g_autoptr(BpShellRunResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) input = g_bytes_new_take (g_malloc0 (4 * 1024 * 1024), 4 * 1024 * 1024);

  bp_shell_spawn_options_set_stdin_bytes (options, input);
  result = run_sync (options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (result->exit_code, ==, 0);
}

static void
test_run_output_cap (void)
{
  static const struct { const char *script; const char *message; } cases[] = {
    { "exec /usr/bin/yes", "stdout exceeded max-output (1001 bytes read)" },
    { "exec /usr/bin/yes >&2", "stderr exceeded max-output (1001 bytes read)" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(BpShellSpawnOptions) options = options_new (SH, "-c", cases[i].script, NULL);
      g_autoptr(BpShellRunResult) result = NULL;
      g_autoptr(GError) error = NULL;

      bp_shell_spawn_options_set_max_output (options, 1000);
      result = run_sync (options, NULL, &error);
      g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
      g_assert_cmpstr (error->message, ==, cases[i].message);
      g_assert_null (result);
    }

  /* Exactly max-output bytes is fine. */
  {
    g_autoptr(BpShellSpawnOptions) options = options_new (SH, "-c", "/usr/bin/yes | /usr/bin/head -c 1000", NULL);
    g_autoptr(BpShellRunResult) result = NULL;
    g_autoptr(GError) error = NULL;

    bp_shell_spawn_options_set_max_output (options, 1000);
    result = run_sync (options, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpuint (g_bytes_get_size (result->stdout_bytes), ==, 1000);
  }
}

static void
test_spawn_output_cap_kills_group (void)
{
  g_autofree char *pid_path = make_tmp_path ("pid");
  g_autofree char *script = g_strdup_printf ("/usr/bin/sleep 100 & echo $! > %s; exec /usr/bin/yes", pid_path);
  g_autoptr(BpShellSpawnOptions) options = options_new (SH, "-c", script, NULL);
  g_autoptr(BpShellProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  int exit_code = 0, term_signal = 0;
  pid_t grandchild;

  bp_shell_spawn_options_set_max_output (options, 100000);
  bp_shell_spawn_options_set_kill_group_on_exit (options, FALSE);
  process = bp_shell_process_spawn (options, &error);
  g_assert_no_error (error);

  g_assert_false (wait_sync (process, &exit_code, &term_signal, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_assert_cmpint (bp_shell_process_get_exit_code (process), ==, -1);
  g_assert_cmpint (bp_shell_process_get_term_signal (process), ==, SIGKILL);
  g_assert_cmpint (bp_shell_process_get_state (process), ==, BP_SHELL_PROCESS_STATE_FAILED);

  /* The sleep in the same group got the SIGKILL too, although
   * kill-group-on-exit is off. */
  grandchild = wait_for_pid_file (pid_path);
  spin_until (pid_is_dead_cond, GINT_TO_POINTER (grandchild), "grandchild to die");
  remove_tmp_path (pid_path);
}

static void
test_run_timeout_kills_group (void)
{
  g_autofree char *pid_path = make_tmp_path ("pid");
  g_autofree char *script = g_strdup_printf ("trap '' TERM; /usr/bin/sleep 100 & echo $! > %s; wait; wait", pid_path);
  g_autoptr(BpShellSpawnOptions) options = options_new (SH, "-c", script, NULL);
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 1);
  g_autoptr(GAsyncResult) async_result = NULL;
  g_autoptr(BpShellRunResult) result = NULL;
  g_autoptr(GError) error = NULL;
  pid_t grandchild;

  bp_shell_spawn_options_set_clock (options, clock);
  bp_shell_spawn_options_set_timeout_ms (options, 5000);
  bp_shell_spawn_options_set_kill_grace_ms (options, 3000);
  bp_shell_process_run_async (options, NULL, store_result_cb, &async_result);

  grandchild = wait_for_pid_file (pid_path);
  g_assert_false (pid_is_dead (grandchild));
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 1); /* the timeout */

  /* Timeout: SIGTERM, which both ignore; the grace timer is armed. */
  bp_clock_advance (clock, 5000 * G_TIME_SPAN_MILLISECOND);
  while (g_main_context_iteration (NULL, FALSE))
    ;
  g_assert_null (async_result);
  g_assert_false (pid_is_dead (grandchild));
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 1); /* the grace period */

  /* Grace period over: SIGKILL to the group. */
  bp_clock_advance (clock, 3000 * G_TIME_SPAN_MILLISECOND);
  spin_until (pointer_set, &async_result, "run_async");
  result = bp_shell_process_run_finish (async_result, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_null (result);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);

  spin_until (pid_is_dead_cond, GINT_TO_POINTER (grandchild), "grandchild to die");
  remove_tmp_path (pid_path);
}

static void
test_spawn_timeout_state (void)
{
  g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/sleep", "100", NULL);
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 1);
  g_autoptr(BpShellProcess) process = NULL;
  g_autoptr(GError) error = NULL;

  bp_shell_spawn_options_set_clock (options, clock);
  bp_shell_spawn_options_set_timeout_ms (options, 1000);
  process = bp_shell_process_spawn (options, &error);
  g_assert_no_error (error);
  g_assert_cmpint (bp_shell_process_get_state (process), ==, BP_SHELL_PROCESS_STATE_RUNNING);
  g_assert_cmpint (bp_shell_process_get_exit_code (process), ==, -1);

  bp_clock_advance (clock, 1000 * G_TIME_SPAN_MILLISECOND);
  g_assert_false (wait_sync (process, NULL, NULL, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_cmpstr (error->message, ==, "process timed out after 1000 ms");
  g_assert_cmpint (bp_shell_process_get_term_signal (process), ==, SIGTERM);
  g_assert_cmpint (bp_shell_process_get_exit_code (process), ==, -1);
  g_assert_cmpint (bp_shell_process_get_state (process), ==, BP_SHELL_PROCESS_STATE_FAILED);
  g_assert_error (bp_shell_process_get_error (process), BP_ERROR, BP_ERROR_TIMEOUT);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);
}

static void
test_run_env (void)
{
  /* clear-env: exactly what we set. */
  {
    g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/env", NULL);
    g_autoptr(BpShellRunResult) result = NULL;
    g_autoptr(GError) error = NULL;

    bp_shell_spawn_options_set_clear_env (options, TRUE);
    bp_shell_spawn_options_set_env (options, "FOO", -1, "bar baz", -1);
    bp_shell_spawn_options_set_env (options, "EMPTY", -1, "", -1);
    result = run_sync (options, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (result->exit_code, ==, 0);
    {
      g_autofree char *out = g_strndup (g_bytes_get_data (result->stdout_bytes, NULL),
                                        g_bytes_get_size (result->stdout_bytes));
      g_auto(GStrv) lines = g_strsplit (out, "\n", -1);

      g_assert_cmpuint (g_strv_length (lines), ==, 3);
      g_assert_true (g_strv_contains ((const char * const *) lines, "FOO=bar baz"));
      g_assert_true (g_strv_contains ((const char * const *) lines, "EMPTY="));
      g_assert_cmpstr (lines[2], ==, "");
    }
  }

  /* merge: the daemon's environment plus ours, ours winning. */
  {
    g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/env", NULL);
    g_autoptr(BpShellRunResult) result = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *inherited = NULL;

    g_setenv ("BP_SHELL_TEST_INHERITED", "from-parent", TRUE);
    g_setenv ("BP_SHELL_TEST_OVERRIDE", "old", TRUE);
    bp_shell_spawn_options_set_env (options, "BP_SHELL_TEST_OVERRIDE", -1, "new", -1);
    bp_shell_spawn_options_set_env (options, "BP_SHELL_TEST_ADDED", -1, "1", -1);
    result = run_sync (options, NULL, &error);
    g_assert_no_error (error);
    out = g_strndup (g_bytes_get_data (result->stdout_bytes, NULL), g_bytes_get_size (result->stdout_bytes));
    g_assert_nonnull (strstr (out, "\nBP_SHELL_TEST_INHERITED=from-parent\n"));
    g_assert_nonnull (strstr (out, "BP_SHELL_TEST_OVERRIDE=new\n"));
    g_assert_null (strstr (out, "BP_SHELL_TEST_OVERRIDE=old"));
    g_assert_nonnull (strstr (out, "BP_SHELL_TEST_ADDED=1\n"));
    g_unsetenv ("BP_SHELL_TEST_INHERITED");
    g_unsetenv ("BP_SHELL_TEST_OVERRIDE");
  }
}

static void
test_run_cwd (void)
{
  g_autofree char *dir = g_dir_make_tmp ("bp-shell-cwd-XXXXXX", NULL);
  g_autofree char *file = g_build_filename (dir, "file", NULL);
  g_autofree char *missing = g_build_filename (dir, "missing", NULL);
  g_autofree char *expected = g_strdup_printf ("%s\n", dir);

  g_assert_true (g_file_set_contents (file, "", 0, NULL));

  {
    g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/pwd", NULL);
    g_autoptr(BpShellRunResult) result = NULL;
    g_autoptr(GError) error = NULL;

    bp_shell_spawn_options_set_cwd (options, dir, -1);
    result = run_sync (options, NULL, &error);
    g_assert_no_error (error);
    assert_bytes_eq (result->stdout_bytes, expected);
  }

  for (guint i = 0; i < 2; i++)
    {
      const char *bad = i == 0 ? missing : file;
      g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/pwd", NULL);
      g_autoptr(BpShellRunResult) result = NULL;
      g_autoptr(GError) error = NULL;

      bp_shell_spawn_options_set_cwd (options, bad, -1);
      result = run_sync (options, NULL, &error);
      g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
      g_test_message ("%s", error->message);
      g_assert_true (g_str_has_prefix (error->message, "cwd: "));
      g_assert_nonnull (strstr (error->message, bad));
    }

  g_assert_cmpint (g_unlink (file), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static void
test_run_spawn_errors (void)
{
  g_autofree char *not_executable = make_tmp_path ("not-executable");
  const struct { const char *program; BpError code; } cases[] = {
    { "/nonexistent/program", BP_ERROR_NOT_FOUND },
    { not_executable, BP_ERROR_PERMISSION_DENIED },
    { "/usr/bin", BP_ERROR_PERMISSION_DENIED },
  };

  g_assert_true (g_file_set_contents (not_executable, "#!/bin/sh\n", -1, NULL));
  g_assert_cmpint (g_chmod (not_executable, 0644), ==, 0);

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(BpShellSpawnOptions) options = options_new (cases[i].program, NULL);
      g_autoptr(BpShellRunResult) result = NULL;
      g_autoptr(GError) error = NULL;

      result = run_sync (options, NULL, &error);
      g_test_message ("%s: %s", cases[i].program, error != NULL ? error->message : "(none)");
      g_assert_error (error, BP_ERROR, (int) cases[i].code);
      g_assert_true (g_str_has_prefix (error->message, "argv[0]: "));
      g_assert_null (result);
    }
  remove_tmp_path (not_executable);
}

static void
test_bad_argv (void)
{
  static const char * const programs[] = {
    "", "true", "../bin/true", "./true", "true/../..", "/usr/bin/../bin/true", "/usr//bin/true",
  };

  for (guint i = 0; i <= G_N_ELEMENTS (programs); i++)
    {
      g_autoptr(BpShellSpawnOptions) options = bp_shell_spawn_options_new ();
      g_autoptr(BpShellRunResult) result = NULL;
      g_autoptr(BpShellProcess) process = NULL;
      g_autoptr(GError) error = NULL;

      if (i < G_N_ELEMENTS (programs))
        bp_shell_spawn_options_add_arg (options, programs[i], -1);
      /* else: empty argv */

      result = run_sync (options, NULL, &error);
      g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
      g_assert_null (result);
      g_clear_error (&error);

      process = bp_shell_process_spawn (options, &error);
      g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
      g_assert_null (process);
    }

  {
    g_autoptr(BpShellSpawnOptions) options = bp_shell_spawn_options_new ();
    g_autoptr(BpShellProcess) process = NULL;
    g_autoptr(GError) error = NULL;

    bp_shell_spawn_options_add_arg (options, "/usr/bin/echo", -1);
    bp_shell_spawn_options_add_arg (options, "a\0b", 3);
    process = bp_shell_process_spawn (options, &error);
    g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr (error->message, ==, "argv[1]: contains a NUL byte");
  }
}

static void
test_run_cancel (void)
{
  g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/sleep", "100", NULL);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) async_result = NULL;
  g_autoptr(BpShellRunResult) result = NULL;
  g_autoptr(GError) error = NULL;

  bp_shell_process_run_async (options, cancellable, store_result_cb, &async_result);
  g_cancellable_cancel (cancellable);
  spin_until (pointer_set, &async_result, "cancelled run");
  result = bp_shell_process_run_finish (async_result, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (result);
  g_assert_cmpuint (count_zombie_children (), ==, 0);
  g_clear_error (&error);

  /* Already cancelled: nothing is spawned. */
  g_clear_object (&async_result);
  bp_shell_process_run_async (options, cancellable, store_result_cb, &async_result);
  spin_until (pointer_set, &async_result, "cancelled run");
  result = bp_shell_process_run_finish (async_result, &error);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
}

/* ------------------------------------------------------------------------ */
/* Spawn                                                                    */

typedef struct
{
  GString *out;        /* stdout lines joined with '|' */
  GString *err;
  guint    n_batches;
  guint    n_exited;
  gboolean output_after_exit;
  int      exit_code;
  int      term_signal;
} Collector;

static void
collector_output_cb (BpShellProcess *process,
                     GVariant       *lines,
                     Collector      *c)
{
  GVariantIter iter;
  guint32 stream;
  const char *line;

  g_assert_true (g_variant_is_of_type (lines, G_VARIANT_TYPE ("a(us)")));
  if (c->n_exited > 0)
    c->output_after_exit = TRUE;
  c->n_batches++;
  g_variant_iter_init (&iter, lines);
  while (g_variant_iter_next (&iter, "(u&s)", &stream, &line))
    {
      GString *s = stream == 1 ? c->out : c->err;

      g_assert_true (stream == 1 || stream == 2);
      g_string_append_printf (s, "%s%s", s->len > 0 ? "|" : "", line);
    }
}

static void
collector_exited_cb (BpShellProcess *process,
                     int             exit_code,
                     int             term_signal,
                     Collector      *c)
{
  c->n_exited++;
  c->exit_code = exit_code;
  c->term_signal = term_signal;
}

static void
collector_init (Collector      *c,
                BpShellProcess *process)
{
  memset (c, 0, sizeof *c);
  c->out = g_string_new (NULL);
  c->err = g_string_new (NULL);
  g_signal_connect (process, "output", G_CALLBACK (collector_output_cb), c);
  g_signal_connect (process, "exited", G_CALLBACK (collector_exited_cb), c);
}

static void
collector_clear (Collector *c)
{
  g_string_free (c->out, TRUE);
  g_string_free (c->err, TRUE);
}

static gboolean
collector_exited (gpointer data)
{
  Collector *c = data;

  return c->n_exited > 0;
}

static void
test_spawn_output_lines (void)
{
  g_autoptr(BpShellSpawnOptions) options =
    options_new (SH, "-c", "echo a; echo b >&2; echo c; printf 'd\\r\\ne'; printf 'x\\377y\\n' >&2; exit 7", NULL);
  g_autoptr(BpShellProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  g_auto(GStrv) argv = NULL;
  g_autofree char *state = NULL;
  Collector c;
  int exit_code = 0, term_signal = -1;
  guint pid = 0;

  process = bp_shell_process_spawn (options, &error);
  g_assert_no_error (error);
  collector_init (&c, process);

  g_object_get (process, "pid", &pid, "argv", &argv, "state", &state, NULL);
  g_assert_cmpuint (pid, ==, bp_shell_process_get_pid (process));
  g_assert_cmpuint (pid, >, 0);
  g_assert_cmpstr (argv[0], ==, SH);
  g_assert_cmpstr (argv[3], ==, NULL);
  g_assert_cmpstr (state, ==, "running");

  g_assert_true (wait_sync (process, &exit_code, &term_signal, &error));
  g_assert_no_error (error);
  g_assert_cmpint (exit_code, ==, 7);
  g_assert_cmpint (term_signal, ==, 0);
  g_assert_cmpuint (c.n_exited, ==, 1);
  g_assert_cmpint (c.exit_code, ==, 7);
  g_assert_false (c.output_after_exit);
  g_assert_cmpstr (c.out->str, ==, "a|c|d\r|e");
  g_assert_cmpstr (c.err->str, ==, "b|x\xef\xbf\xbdy");
  g_assert_cmpint (bp_shell_process_get_state (process), ==, BP_SHELL_PROCESS_STATE_EXITED);
  g_clear_pointer (&state, g_free);
  g_object_get (process, "state", &state, NULL);
  g_assert_cmpstr (state, ==, "exited");

  /* Waiting again completes at once with the same status. */
  exit_code = 0;
  g_assert_true (wait_sync (process, &exit_code, NULL, &error));
  g_assert_cmpint (exit_code, ==, 7);

  collector_clear (&c);
  g_assert_finalize_object (g_steal_pointer (&process));
}

static void
test_spawn_kill (void)
{
  g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/sleep", "100", NULL);
  g_autoptr(BpShellProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  int exit_code = 0, term_signal = 0;

  process = bp_shell_process_spawn (options, &error);
  g_assert_no_error (error);

  g_assert_false (bp_shell_process_kill (process, 0, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (bp_shell_process_kill (process, 1000, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_clear_error (&error);

  g_assert_true (bp_shell_process_kill (process, SIGUSR1, &error));
  g_assert_true (wait_sync (process, &exit_code, &term_signal, &error));
  g_assert_no_error (error);
  g_assert_cmpint (exit_code, ==, -1);
  g_assert_cmpint (term_signal, ==, SIGUSR1);
  g_assert_cmpint (bp_shell_process_get_state (process), ==, BP_SHELL_PROCESS_STATE_KILLED);

  /* After the exit: a no-op. */
  g_assert_true (bp_shell_process_kill (process, SIGKILL, &error));
  g_assert_finalize_object (g_steal_pointer (&process));
}

static void
test_spawn_close (void)
{
  g_autofree char *pid_path = make_tmp_path ("pid");
  g_autofree char *script = g_strdup_printf ("/usr/bin/sleep 100 & echo $! > %s; echo started; wait", pid_path);
  g_autoptr(BpShellSpawnOptions) options = options_new (SH, "-c", script, NULL);
  g_autoptr(BpShellProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  BpShellProcess *weak;
  Collector c;
  pid_t grandchild;

  bp_shell_spawn_options_set_kill_group_on_exit (options, FALSE);
  process = bp_shell_process_spawn (options, &error);
  g_assert_no_error (error);
  collector_init (&c, process);
  grandchild = wait_for_pid_file (pid_path);

  /* Dropping our reference while it runs keeps it alive until reaped. */
  weak = process;
  g_object_add_weak_pointer (G_OBJECT (weak), (gpointer *) &weak);
  bp_shell_process_close (process);
  bp_shell_process_close (process);
  g_clear_object (&process);
  g_assert_nonnull (weak);

  spin_until (collector_exited, &c, "exited after close");
  g_assert_cmpint (c.exit_code, ==, -1);
  g_assert_cmpint (c.term_signal, ==, SIGKILL);
  spin_until (pointer_unset, &weak, "process to be finalized");
  g_assert_null (weak);

  spin_until (pid_is_dead_cond, GINT_TO_POINTER (grandchild), "grandchild to die");
  collector_clear (&c);
  remove_tmp_path (pid_path);
}

static void
test_spawn_kill_group_on_exit (void)
{
  for (guint i = 0; i < 2; i++)
    {
      gboolean kill_group = i == 0;
      /* The sleep keeps no pipe of ours open (its own /dev/null), so the
       * process finishes as soon as sh exits either way. */
      g_autoptr(BpShellSpawnOptions) options =
        options_new (SH, "-c", "/usr/bin/sleep 100 >/dev/null 2>&1 & echo $!", NULL);
      g_autoptr(BpShellProcess) process = NULL;
      g_autoptr(GError) error = NULL;
      Collector c;
      pid_t grandchild;

      bp_shell_spawn_options_set_kill_group_on_exit (options, kill_group);
      process = bp_shell_process_spawn (options, &error);
      g_assert_no_error (error);
      collector_init (&c, process);
      g_assert_true (wait_sync (process, NULL, NULL, &error));
      grandchild = atoi (c.out->str);
      g_assert_cmpint (grandchild, >, 0);

      if (kill_group)
        {
          spin_until (pid_is_dead_cond, GINT_TO_POINTER (grandchild), "grandchild to die");
        }
      else
        {
          g_assert_false (pid_is_dead (grandchild));
          g_assert_cmpint (kill (grandchild, SIGKILL), ==, 0);
          spin_until (pid_is_dead_cond, GINT_TO_POINTER (grandchild), "grandchild to die");
        }
      collector_clear (&c);
    }
}

static gboolean
clock_has_timer (gpointer data)
{
  return bp_clock_get_n_pending (data) > 0;
}

static void
test_spawn_drain (void)
{
  /* A grandchild in a new session escapes the group kill and keeps stdout
   * open; the process still finishes after the drain period. The outer sh
   * exits once the escaped one has written its pid (after setsid()). */
  g_autofree char *pid_path = make_tmp_path ("pid");
  g_autofree char *script =
    g_strdup_printf ("/usr/bin/setsid /usr/bin/sh -c 'echo $$ > %s; exec /usr/bin/sleep 100' & "
                     "while [ ! -s %s ]; do /usr/bin/sleep 0.01; done", pid_path, pid_path);
  g_autoptr(BpShellSpawnOptions) options = options_new (SH, "-c", script, NULL);
  g_autoptr(BpClock) clock = bp_clock_new_manual (0, 1);
  g_autoptr(BpShellProcess) process = NULL;
  g_autoptr(GError) error = NULL;
  Collector c;
  pid_t escaped;

  if (!g_file_test ("/usr/bin/setsid", G_FILE_TEST_IS_EXECUTABLE))
    {
      g_test_skip ("no /usr/bin/setsid");
      remove_tmp_path (pid_path);
      return;
    }

  bp_shell_spawn_options_set_clock (options, clock);
  process = bp_shell_process_spawn (options, &error);
  g_assert_no_error (error);
  collector_init (&c, process);
  escaped = wait_for_pid_file (pid_path);

  /* No output, no timeout: the only timer is the drain after the reap. */
  spin_until (clock_has_timer, clock, "the drain timer");
  g_assert_cmpuint (c.n_exited, ==, 0);
  g_assert_cmpint (bp_shell_process_get_state (process), ==, BP_SHELL_PROCESS_STATE_RUNNING);

  bp_clock_advance (clock, 2 * G_USEC_PER_SEC);
  spin_until (collector_exited, &c, "exited after drain");
  g_assert_cmpint (c.exit_code, ==, 0);
  g_assert_cmpint (bp_shell_process_get_state (process), ==, BP_SHELL_PROCESS_STATE_EXITED);
  g_assert_cmpuint (bp_clock_get_n_pending (clock), ==, 0);

  g_assert_false (pid_is_dead (escaped));
  g_assert_cmpint (kill (escaped, SIGKILL), ==, 0);
  spin_until (pid_is_dead_cond, GINT_TO_POINTER (escaped), "escaped grandchild to die");
  collector_clear (&c);
  remove_tmp_path (pid_path);
}

static void
test_spawn_wait_cancel (void)
{
  g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/sleep", "100", NULL);
  g_autoptr(BpShellProcess) process = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GAsyncResult) result = NULL;
  g_autoptr(GError) error = NULL;

  process = bp_shell_process_spawn (options, &error);
  g_assert_no_error (error);
  bp_shell_process_wait_async (process, cancellable, store_result_cb, &result);
  g_cancellable_cancel (cancellable);
  spin_until (pointer_set, &result, "cancelled wait");
  g_assert_false (bp_shell_process_wait_finish (process, result, NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_cmpint (bp_shell_process_get_state (process), ==, BP_SHELL_PROCESS_STATE_RUNNING);

  bp_shell_process_close (process);
  g_assert_true (wait_sync (process, NULL, NULL, &error));
  g_assert_cmpint (bp_shell_process_get_term_signal (process), ==, SIGKILL);
}

/* ------------------------------------------------------------------------ */
/* fds                                                                      */

static const char PATTERN[] = "abcdefghijklmnopqrstuvwxyz0123456789\n";
#define PATTERN_LEN (sizeof PATTERN - 1)
#define READ_SIZE (1024 * 1024)

typedef struct
{
  GInputStream *stream;
  guint8       *buffer;
  char         *expected;  /* PATTERN repeated over READ_SIZE + PATTERN_LEN */
  GChecksum    *checksum;
  guint64       n_read;
  gboolean      mismatch;
  gboolean      done;
} PipeReader;

static void pipe_reader_read_cb (GObject *, GAsyncResult *, gpointer);

static void
pipe_reader_next (PipeReader *r)
{
  g_input_stream_read_async (r->stream, r->buffer, READ_SIZE, G_PRIORITY_DEFAULT, NULL,
                             pipe_reader_read_cb, r);
}

static void
pipe_reader_read_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  PipeReader *r = user_data;
  g_autoptr(GError) error = NULL;
  gssize n = g_input_stream_read_finish (r->stream, result, &error);

  g_assert_no_error (error);
  if (n == 0)
    {
      r->done = TRUE;
      return;
    }
  if (memcmp (r->buffer, r->expected + r->n_read % PATTERN_LEN, n) != 0)
    r->mismatch = TRUE;
  if (r->checksum != NULL)
    g_checksum_update (r->checksum, r->buffer, n);
  r->n_read += n;
  pipe_reader_next (r);
}

static char *
repeat_pattern (gsize len)
{
  char *s = g_malloc (len);

  for (gsize i = 0; i < len; i++)
    s[i] = PATTERN[i % PATTERN_LEN];
  return s;
}

static char *
expected_sha256 (guint64 size)
{
  g_autoptr(GChecksum) checksum = g_checksum_new (G_CHECKSUM_SHA256);
  g_autofree char *chunk = repeat_pattern (PATTERN_LEN * 8192);
  guint64 done = 0;

  while (done < size)
    {
      gsize n = MIN (size - done, PATTERN_LEN * 8192);
      g_checksum_update (checksum, (const guchar *) chunk, n);
      done += n;
    }
  return g_strdup (g_checksum_get_string (checksum));
}

static void
run_pipe_transfer (guint64  size,
                   gboolean with_checksum)
{
  g_autofree char *script = g_strdup_printf ("/usr/bin/yes %.*s | /usr/bin/head -c %" G_GUINT64_FORMAT,
                                             (int) (PATTERN_LEN - 1), PATTERN, size);
  g_autoptr(BpShellSpawnOptions) options = options_new (SH, "-c", script, NULL);
  g_autoptr(GAsyncResult) async_result = NULL;
  g_autoptr(BpShellRunResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GTimer) timer = NULL;
  PipeReader r = { 0, };
  int fds[2];
  double seconds;

  g_assert_true (g_unix_open_pipe (fds, FD_CLOEXEC, NULL));
  (void) fcntl (fds[0], F_SETPIPE_SZ, 1024 * 1024);
  bp_shell_spawn_options_take_fd (options, BP_SHELL_STDOUT, fds[1]);

  r.stream = g_unix_input_stream_new (fds[0], TRUE);
  r.buffer = g_malloc (READ_SIZE);
  r.expected = repeat_pattern (READ_SIZE + PATTERN_LEN);
  if (with_checksum)
    r.checksum = g_checksum_new (G_CHECKSUM_SHA256);

  timer = g_timer_new ();
  bp_shell_process_run_async (options, NULL, store_result_cb, &async_result);
  /* Our copy of the write end goes now: only the child holds it. */
  g_clear_pointer (&options, bp_shell_spawn_options_free);
  pipe_reader_next (&r);

  spin_until (flag_set, &r.done, "end of the pipe");
  spin_until (pointer_set, &async_result, "run_async");
  seconds = g_timer_elapsed (timer, NULL);
  g_test_message ("%" G_GUINT64_FORMAT " bytes through the pipe in %.2f s (%.0f MiB/s)",
                  size, seconds, size / seconds / (1024.0 * 1024.0));

  result = bp_shell_process_run_finish (async_result, &error);
  g_assert_no_error (error);
  g_assert_cmpint (result->exit_code, ==, 0);
  g_assert_null (result->stdout_bytes);
  assert_bytes_eq (result->stderr_bytes, "");

  g_assert_cmpuint (r.n_read, ==, size);
  g_assert_false (r.mismatch);
  if (with_checksum)
    {
      g_autofree char *expected = expected_sha256 (size);
      g_assert_cmpstr (g_checksum_get_string (r.checksum), ==, expected);
      g_checksum_free (r.checksum);
    }

  g_object_unref (r.stream);
  g_free (r.buffer);
  g_free (r.expected);
}

static void
test_fd_pipe_64mib (void)
{
  run_pipe_transfer (64 * 1024 * 1024, TRUE);
}

static void
test_fd_pipe_1gib (void)
{
  run_pipe_transfer (G_GUINT64_CONSTANT (1024) * 1024 * 1024, FALSE);
}

static void
test_fd_stdin_stderr (void)
{
  g_autoptr(BpShellSpawnOptions) options = options_new (SH, "-c", "/usr/bin/cat; echo to-stderr >&2", NULL);
  g_autoptr(BpShellRunResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *err_path = make_tmp_path ("stderr");
  g_autofree char *err_contents = NULL;
  int in[2];
  int err_fd;

  g_assert_true (g_unix_open_pipe (in, FD_CLOEXEC, NULL));
  g_assert_cmpint (write (in[1], "hello\n", 6), ==, 6);
  close (in[1]);
  err_fd = open (err_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  g_assert_cmpint (err_fd, >=, 0);

  bp_shell_spawn_options_take_fd (options, BP_SHELL_STDIN, in[0]);
  bp_shell_spawn_options_take_fd (options, BP_SHELL_STDERR, err_fd);
  result = run_sync (options, NULL, &error);
  g_assert_no_error (error);
  assert_bytes_eq (result->stdout_bytes, "hello\n");
  g_assert_null (result->stderr_bytes);

  g_assert_true (g_file_get_contents (err_path, &err_contents, NULL, NULL));
  g_assert_cmpstr (err_contents, ==, "to-stderr\n");
  remove_tmp_path (err_path);
}

static void
test_no_fd_leak_into_child (void)
{
  g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/ls", "-l", "/proc/self/fd", NULL);
  g_autoptr(BpShellRunResult) result = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *sentinel = make_tmp_path ("bp-shell-sentinel");
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;
  int file_fd, pipe_fds[2], sock_fds[2];

  /* Daemon fds opened without close-on-exec, the worst case. */
  file_fd = open (sentinel, O_RDWR | O_CREAT, 0600);
  g_assert_cmpint (file_fd, >=, 0);
  g_assert_cmpint (pipe (pipe_fds), ==, 0);
  g_assert_cmpint (socketpair (AF_UNIX, SOCK_STREAM, 0, sock_fds), ==, 0);

  result = run_sync (options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (result->exit_code, ==, 0);
  out = g_strndup (g_bytes_get_data (result->stdout_bytes, NULL), g_bytes_get_size (result->stdout_bytes));
  g_test_message ("%s", out);
  g_assert_null (strstr (out, "bp-shell-sentinel"));
  g_assert_null (strstr (out, "socket:"));

  /* Only 0, 1, 2 and the directory ls itself opened (3). */
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *arrow = strstr (lines[i], " -> ");
      const char *p;

      if (arrow == NULL)
        continue;
      for (p = arrow; p > lines[i] && p[-1] != ' '; p--)
        ;
      g_assert_cmpint (atoi (p), <=, 3);
    }

  close (file_fd);
  close (pipe_fds[0]);
  close (pipe_fds[1]);
  close (sock_fds[0]);
  close (sock_fds[1]);
  remove_tmp_path (sentinel);
}

static void
test_cycles_no_zombie_no_fd_leak (void)
{
  guint fds_before;

  /* Warm up: the first spawn sets up GLib's child watch machinery. */
  {
    g_autoptr(BpShellRunResult) result = run_sh ("exit 0");
  }
  spin_until (no_pidfds, NULL, "GLib's child watches to go away");
  fds_before = count_open_fds ();
  g_test_message ("%u fds open before", fds_before);

  for (guint i = 0; i < 1000; i++)
    {
      g_autoptr(BpShellSpawnOptions) options = options_new ("/usr/bin/true", NULL);
      g_autoptr(GError) error = NULL;

      if (i % 2 == 0)
        {
          g_autoptr(BpShellProcess) process = bp_shell_process_spawn (options, &error);
          int exit_code = -2;

          g_assert_no_error (error);
          g_assert_true (wait_sync (process, &exit_code, NULL, &error));
          g_assert_cmpint (exit_code, ==, 0);
          g_assert_finalize_object (g_steal_pointer (&process));
        }
      else
        {
          g_autoptr(BpShellRunResult) result = run_sync (options, NULL, &error);

          g_assert_no_error (error);
          g_assert_cmpint (result->exit_code, ==, 0);
        }
    }

  g_assert_cmpuint (count_zombie_children (), ==, 0);
  spin_until (no_pidfds, NULL, "GLib's child watches to go away");
  g_assert_cmpuint (count_open_fds (), ==, fds_before);
}

int
main (int   argc,
      char *argv[])
{
  /* What the daemon does too: a stdin reader that went away is EPIPE. */
  signal (SIGPIPE, SIG_IGN);

  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/shell/process/run/exit-codes", test_run_exit_codes);
  g_test_add_func ("/shell/process/run/signals", test_run_signals);
  g_test_add_func ("/shell/process/run/output", test_run_output);
  g_test_add_func ("/shell/process/run/stdin-cat-1mib", test_run_stdin_cat);
  g_test_add_func ("/shell/process/run/stdin-not-read", test_run_stdin_not_read);
  g_test_add_func ("/shell/process/run/output-cap", test_run_output_cap);
  g_test_add_func ("/shell/process/run/timeout-kills-group", test_run_timeout_kills_group);
  g_test_add_func ("/shell/process/run/env", test_run_env);
  g_test_add_func ("/shell/process/run/cwd", test_run_cwd);
  g_test_add_func ("/shell/process/run/spawn-errors", test_run_spawn_errors);
  g_test_add_func ("/shell/process/run/cancel", test_run_cancel);
  g_test_add_func ("/shell/process/bad-argv", test_bad_argv);
  g_test_add_func ("/shell/process/spawn/output-lines", test_spawn_output_lines);
  g_test_add_func ("/shell/process/spawn/output-cap-kills-group", test_spawn_output_cap_kills_group);
  g_test_add_func ("/shell/process/spawn/timeout-state", test_spawn_timeout_state);
  g_test_add_func ("/shell/process/spawn/kill", test_spawn_kill);
  g_test_add_func ("/shell/process/spawn/close", test_spawn_close);
  g_test_add_func ("/shell/process/spawn/kill-group-on-exit", test_spawn_kill_group_on_exit);
  g_test_add_func ("/shell/process/spawn/drain", test_spawn_drain);
  g_test_add_func ("/shell/process/spawn/wait-cancel", test_spawn_wait_cancel);
  g_test_add_func ("/shell/process/fd/stdin-stderr", test_fd_stdin_stderr);
  g_test_add_func ("/shell/process/fd/pipe-64mib", test_fd_pipe_64mib);
  g_test_add_func ("/shell/process/fd/pipe-1gib", test_fd_pipe_1gib);
  g_test_add_func ("/shell/process/fd/no-leak-into-child", test_no_fd_leak_into_child);
  g_test_add_func ("/shell/process/cycles-no-zombie-no-fd-leak", test_cycles_no_zombie_no_fd_leak);

  return g_test_run ();
}
