/* test-shell-allowlist.c: allowlist, spawn option validation, limits, quota
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bp-shell-allowlist.h"
#include "bp-shell-quota.h"
#include "bp-shell-spawn-options.h"
#include "bp-shell-util.h"

static void
assert_lookup (BpShellAllowlist *allow,
               const char       *program,
               const char       *expected)
{
  g_autoptr(GError) error = NULL;
  const char *path = bp_shell_allowlist_lookup (allow, program, -1, &error);

  g_assert_no_error (error);
  g_assert_cmpstr (path, ==, expected);
}

static void
assert_lookup_fails (BpShellAllowlist *allow,
                     const char       *program,
                     gssize            len,
                     BpError           code)
{
  g_autoptr(GError) error = NULL;
  const char *path = bp_shell_allowlist_lookup (allow, program, len, &error);

  g_assert_error (error, BP_ERROR, (int) code);
  g_assert_null (path);
}

static void
test_allowlist_names (void)
{
  g_autoptr(BpShellAllowlist) allow = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *real_sh = realpath ("/usr/bin/sh", NULL);
  const char * const *programs;

  allow = bp_shell_allowlist_new_from_string (" sh ; true;;", "/nonexistent:/usr/bin", &error);
  g_assert_no_error (error);

  assert_lookup (allow, "sh", "/usr/bin/sh");
  assert_lookup (allow, "true", "/usr/bin/true");
  assert_lookup (allow, "/usr/bin/sh", "/usr/bin/sh");
  /* The file the symlink resolves to is the same program. */
  assert_lookup (allow, real_sh, real_sh);

  programs = bp_shell_allowlist_get_programs (allow);
  g_assert_cmpstr (programs[0], ==, "/usr/bin/sh");
  g_assert_cmpstr (programs[1], ==, "/usr/bin/true");
  g_assert_null (programs[2]);

  assert_lookup_fails (allow, "ls", -1, BP_ERROR_PERMISSION_DENIED);
  assert_lookup_fails (allow, "/usr/bin/ls", -1, BP_ERROR_PERMISSION_DENIED);
  {
    g_autoptr(GError) denied = NULL;
    bp_shell_allowlist_lookup (allow, "rm", -1, &denied);
    g_assert_nonnull (strstr (denied->message, "'rm'"));
  }
}

static void
test_allowlist_relative_tricks (void)
{
  g_autoptr(BpShellAllowlist) allow = NULL;
  g_autoptr(GError) error = NULL;
  static const char * const bad[] = {
    "../bin/sh", "./sh", "sh/../..", "bin/sh", "/usr/bin/../bin/sh",
    "/usr/bin/./sh", "//usr/bin/sh", "/usr//bin/sh", "/usr/bin/sh/", "..", ".",
  };

  allow = bp_shell_allowlist_new_from_string ("sh", "/usr/bin", &error);
  g_assert_no_error (error);

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_test_message ("argv[0] = %s", bad[i]);
      assert_lookup_fails (allow, bad[i], -1, BP_ERROR_INVALID_ARGUMENT);
    }
  assert_lookup_fails (allow, "", -1, BP_ERROR_INVALID_ARGUMENT);
  assert_lookup_fails (allow, "sh\0--evil", 9, BP_ERROR_INVALID_ARGUMENT);
  assert_lookup_fails (allow, "/usr/bin/sh\0x", 13, BP_ERROR_INVALID_ARGUMENT);
}

static void
test_allowlist_absolute_entry (void)
{
  g_autoptr(BpShellAllowlist) allow = NULL;
  g_autoptr(GError) error = NULL;

  allow = bp_shell_allowlist_new_from_string ("/usr/bin/true;/usr/bin/env", NULL, &error);
  g_assert_no_error (error);
  assert_lookup (allow, "/usr/bin/true", "/usr/bin/true");
  /* A bare name finds a configured absolute path with that basename. */
  assert_lookup (allow, "true", "/usr/bin/true");
  assert_lookup (allow, "env", "/usr/bin/env");
  assert_lookup_fails (allow, "false", -1, BP_ERROR_PERMISSION_DENIED);
}

static void
test_allowlist_search_path (void)
{
  g_autoptr(BpShellAllowlist) allow = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bp-shell-allow-XXXXXX", &error);
  g_autofree char *prog = NULL;
  g_autofree char *link = NULL;
  g_autofree char *search = NULL;

  g_assert_no_error (error);
  prog = g_build_filename (dir, "myprog", NULL);
  link = g_build_filename (dir, "mytrue", NULL);
  g_assert_true (g_file_set_contents (prog, "#!/bin/sh\nexit 0\n", -1, NULL));
  g_assert_cmpint (g_chmod (prog, 0755), ==, 0);
  g_assert_cmpint (symlink ("/usr/bin/true", link), ==, 0);
  search = g_strdup_printf ("relative/dir:%s", dir);

  allow = bp_shell_allowlist_new_from_string ("myprog;mytrue", search, &error);
  g_assert_no_error (error);
  assert_lookup (allow, "myprog", prog);
  assert_lookup (allow, "mytrue", link);
  /* The symlink's target is allowed as itself. */
  assert_lookup (allow, "/usr/bin/true", "/usr/bin/true");
  g_clear_object (&allow);

  /* Not executable: not found. */
  g_assert_cmpint (g_chmod (prog, 0644), ==, 0);
  allow = bp_shell_allowlist_new_from_string ("myprog", search, &error);
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_assert_null (allow);

  g_assert_cmpint (g_unlink (prog), ==, 0);
  g_assert_cmpint (g_unlink (link), ==, 0);
  g_assert_cmpint (g_rmdir (dir), ==, 0);
}

static void
test_allowlist_config_errors (void)
{
  static const char * const bad[] = {
    "no-such-program-bp-shell",
    "sh;no-such-program-bp-shell",
    "bin/sh",
    "./sh",
    "/nonexistent/program",
    "/usr/bin/../bin/sh",
    "/usr/bin",
  };

  for (guint i = 0; i < G_N_ELEMENTS (bad); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BpShellAllowlist) allow = NULL;

      allow = bp_shell_allowlist_new_from_string (bad[i], "/usr/bin", &error);
      g_test_message ("allow=%s: %s", bad[i], error != NULL ? error->message : "(no error)");
      g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
      g_assert_null (allow);
      g_assert_nonnull (strstr (error->message, "allow"));
    }

  {
    g_autoptr(GError) error = NULL;
    g_autoptr(BpShellAllowlist) allow = NULL;

    allow = bp_shell_allowlist_new_from_string ("sh;no-such-program-bp-shell", "/usr/bin", &error);
    g_assert_nonnull (strstr (error->message, "'no-such-program-bp-shell'"));
  }
}

static void
test_allowlist_empty (void)
{
  static const char * const values[] = { NULL, "", " ; ;" };

  for (guint i = 0; i < G_N_ELEMENTS (values); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(BpShellAllowlist) allow = NULL;

      allow = bp_shell_allowlist_new_from_string (values[i], NULL, &error);
      g_assert_no_error (error);
      g_assert_null (bp_shell_allowlist_get_programs (allow)[0]);
      assert_lookup_fails (allow, "sh", -1, BP_ERROR_PERMISSION_DENIED);
      assert_lookup_fails (allow, "/usr/bin/sh", -1, BP_ERROR_PERMISSION_DENIED);
    }
}

static void
test_util_canonical (void)
{
  static const struct { const char *path; gboolean ok; } cases[] = {
    { "/", TRUE },
    { "/usr/bin/ls", TRUE },
    { "/a/.hidden/..x/x..", TRUE },
    { "", FALSE },
    { "usr/bin", FALSE },
    { "//", FALSE },
    { "/usr/", FALSE },
    { "/usr//bin", FALSE },
    { "/usr/./bin", FALSE },
    { "/usr/../bin", FALSE },
    { "/..", FALSE },
    { "/.", FALSE },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_test_message ("%s", cases[i].path);
      g_assert_cmpint (bp_shell_path_is_canonical_absolute (cases[i].path), ==, cases[i].ok);
    }
}

static void
test_util_describe (void)
{
  g_autofree char *a = bp_shell_describe_string ("ls", -1);
  g_autofree char *b = bp_shell_describe_string ("a\0b\xff", 4);
  g_autofree char *long_str = g_strnfill (1000, 'x');
  g_autofree char *c = bp_shell_describe_string (long_str, -1);

  g_assert_cmpstr (a, ==, "'ls'");
  g_assert_cmpstr (b, ==, "'a\xef\xbf\xbd" "b\xef\xbf\xbd'");
  g_assert_cmpuint (strlen (c), <, 200);
  g_assert_true (g_str_has_suffix (c, "…'"));
}

static BpShellSpawnOptions *
options_for (const char * const *argv)
{
  BpShellSpawnOptions *options = bp_shell_spawn_options_new ();

  bp_shell_spawn_options_set_argv (options, argv);
  return options;
}

static void
assert_invalid (BpShellSpawnOptions *options,
                const char          *field)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (bp_shell_spawn_options_validate (options, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, field));
}

static void
test_options_validate (void)
{
  static const char * const ok_argv[] = { "/usr/bin/true", "arg", "", NULL };
  g_autoptr(BpShellSpawnOptions) options = NULL;
  g_autoptr(GError) error = NULL;

  options = options_for (ok_argv);
  bp_shell_spawn_options_set_cwd (options, "/tmp", -1);
  bp_shell_spawn_options_set_env (options, "A", -1, "", -1);
  g_assert_true (bp_shell_spawn_options_validate (options, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (bp_shell_spawn_options_get_n_args (options), ==, 3);
  g_clear_pointer (&options, bp_shell_spawn_options_free);

  options = bp_shell_spawn_options_new ();
  assert_invalid (options, "argv:");
  g_assert_null (bp_shell_spawn_options_get_program (options, NULL));
  g_clear_pointer (&options, bp_shell_spawn_options_free);

  options = bp_shell_spawn_options_new ();
  bp_shell_spawn_options_add_arg (options, "", -1);
  assert_invalid (options, "argv[0]:");
  g_clear_pointer (&options, bp_shell_spawn_options_free);

  options = bp_shell_spawn_options_new ();
  bp_shell_spawn_options_add_arg (options, "/usr/bin/true", -1);
  bp_shell_spawn_options_add_arg (options, "ok", -1);
  bp_shell_spawn_options_add_arg (options, "a\0b", 3);
  assert_invalid (options, "argv[2]:");
  g_clear_pointer (&options, bp_shell_spawn_options_free);

  options = bp_shell_spawn_options_new ();
  bp_shell_spawn_options_add_arg (options, "/usr/bin/true\0/x", 16);
  assert_invalid (options, "argv[0]:");
  g_clear_pointer (&options, bp_shell_spawn_options_free);

  {
    static const char * const relative[] = { "true", "../bin/true", "./true", "true/../..", "/usr/bin/../bin/true" };

    for (guint i = 0; i < G_N_ELEMENTS (relative); i++)
      {
        const char *argv[] = { relative[i], NULL };

        options = options_for (argv);
        assert_invalid (options, "argv[0]:");
        g_clear_pointer (&options, bp_shell_spawn_options_free);
      }
  }

  /* set_program replaces argv[0] with the resolved path. */
  {
    const char *argv[] = { "true", "x", NULL };
    gsize len = 0;

    options = options_for (argv);
    g_assert_cmpstr (bp_shell_spawn_options_get_program (options, &len), ==, "true");
    g_assert_cmpuint (len, ==, 4);
    bp_shell_spawn_options_set_program (options, "/usr/bin/true");
    g_assert_true (bp_shell_spawn_options_validate (options, NULL));
    g_clear_pointer (&options, bp_shell_spawn_options_free);
  }

  options = options_for (ok_argv);
  bp_shell_spawn_options_set_cwd (options, "tmp", -1);
  assert_invalid (options, "cwd:");
  bp_shell_spawn_options_set_cwd (options, "", -1);
  assert_invalid (options, "cwd:");
  bp_shell_spawn_options_set_cwd (options, "/tmp\0/etc", 9);
  assert_invalid (options, "cwd:");
  g_clear_pointer (&options, bp_shell_spawn_options_free);

  options = options_for (ok_argv);
  bp_shell_spawn_options_set_env (options, "", -1, "x", -1);
  assert_invalid (options, "env:");
  g_clear_pointer (&options, bp_shell_spawn_options_free);

  options = options_for (ok_argv);
  bp_shell_spawn_options_set_env (options, "A=B", -1, "x", -1);
  assert_invalid (options, "env:");
  g_clear_pointer (&options, bp_shell_spawn_options_free);

  options = options_for (ok_argv);
  bp_shell_spawn_options_set_env (options, "A\0B", 3, "x", -1);
  assert_invalid (options, "env:");
  g_clear_pointer (&options, bp_shell_spawn_options_free);

  options = options_for (ok_argv);
  bp_shell_spawn_options_set_env (options, "A", -1, "x\0y", 3);
  assert_invalid (options, "env:");
  g_clear_pointer (&options, bp_shell_spawn_options_free);

  options = options_for (ok_argv);
  {
    g_autoptr(GBytes) bytes = g_bytes_new_static ("x", 1);
    bp_shell_spawn_options_set_stdin_bytes (options, bytes);
    bp_shell_spawn_options_take_fd (options, BP_SHELL_STDIN, dup (0));
    g_assert_true (bp_shell_spawn_options_has_fd (options, BP_SHELL_STDIN));
    assert_invalid (options, "stdin:");
  }
}

static void
assert_limit (BpShellSpawnOptions *options,
              BpShellLimits       *limits,
              const char          *field)
{
  g_autoptr(GError) error = NULL;

  g_assert_false (bp_shell_spawn_options_check_limits (options, limits, &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_test_message ("%s", error->message);
  g_assert_true (g_str_has_prefix (error->message, field));
}

static void
test_options_limits (void)
{
  static const char * const argv[] = { "/usr/bin/true", "0123456789", NULL };
  g_autoptr(BpShellSpawnOptions) options = options_for (argv);
  g_autoptr(GBytes) stdin_bytes = g_bytes_new_static ("0123456789", 10);
  BpShellLimits limits;

  bp_shell_limits_init (&limits);
  g_assert_true (bp_shell_spawn_options_check_limits (options, &limits, NULL));

  limits.max_args = 1;
  assert_limit (options, &limits, "argv:");
  bp_shell_limits_init (&limits);
  limits.max_argv_bytes = 25; /* 14 + 11 = 25 fits, 24 does not */
  g_assert_true (bp_shell_spawn_options_check_limits (options, &limits, NULL));
  limits.max_argv_bytes = 24;
  assert_limit (options, &limits, "argv:");

  bp_shell_limits_init (&limits);
  bp_shell_spawn_options_set_env (options, "A", -1, "1", -1);
  bp_shell_spawn_options_set_env (options, "B", -1, "2", -1);
  limits.max_env = 1;
  assert_limit (options, &limits, "env:");
  limits.max_env = 2;
  limits.max_env_bytes = 7;
  assert_limit (options, &limits, "env:");
  limits.max_env_bytes = 8;
  g_assert_true (bp_shell_spawn_options_check_limits (options, &limits, NULL));

  bp_shell_spawn_options_set_stdin_bytes (options, stdin_bytes);
  limits.max_stdin = 9;
  assert_limit (options, &limits, "stdin:");
  limits.max_stdin = 10;
  g_assert_true (bp_shell_spawn_options_check_limits (options, &limits, NULL));

  bp_shell_spawn_options_set_max_output (options, 1000);
  limits.max_output = 999;
  assert_limit (options, &limits, "max-output:");
  limits.max_output = 1000;

  limits.max_timeout_ms = 5000;
  assert_limit (options, &limits, "timeout-ms:"); /* none asked for */
  bp_shell_spawn_options_set_timeout_ms (options, 5001);
  assert_limit (options, &limits, "timeout-ms:");
  bp_shell_spawn_options_set_timeout_ms (options, 5000);
  g_assert_true (bp_shell_spawn_options_check_limits (options, &limits, NULL));
}

static void
test_quota (void)
{
  g_autoptr(BpShellQuota) quota = bp_shell_quota_new (3, 2);
  g_autoptr(GError) error = NULL;

  g_assert_true (bp_shell_quota_acquire (quota, ":1.1", NULL));
  g_assert_true (bp_shell_quota_acquire (quota, ":1.1", NULL));
  g_assert_false (bp_shell_quota_acquire (quota, ":1.1", &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);
  g_assert_cmpuint (bp_shell_quota_get_n_for_caller (quota, ":1.1"), ==, 2);

  g_assert_true (bp_shell_quota_acquire (quota, ":1.2", NULL));
  g_assert_false (bp_shell_quota_acquire (quota, ":1.3", &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  g_clear_error (&error);
  g_assert_cmpuint (bp_shell_quota_get_n_total (quota), ==, 3);

  bp_shell_quota_release (quota, ":1.1");
  g_assert_cmpuint (bp_shell_quota_get_n_for_caller (quota, ":1.1"), ==, 1);
  g_assert_true (bp_shell_quota_acquire (quota, ":1.3", NULL));

  bp_shell_quota_release (quota, ":1.1");
  bp_shell_quota_release (quota, ":1.2");
  bp_shell_quota_release (quota, ":1.3");
  g_assert_cmpuint (bp_shell_quota_get_n_total (quota), ==, 0);
  g_assert_cmpuint (bp_shell_quota_get_n_for_caller (quota, ":1.1"), ==, 0);

  /* Lowering the bounds keeps taken slots but refuses new ones. */
  g_assert_true (bp_shell_quota_acquire (quota, ":1.1", NULL));
  g_assert_true (bp_shell_quota_acquire (quota, ":1.2", NULL));
  bp_shell_quota_set_limits (quota, 1, 1);
  g_assert_false (bp_shell_quota_acquire (quota, ":1.4", &error));
  g_assert_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED);
  bp_shell_quota_release (quota, ":1.1");
  bp_shell_quota_release (quota, ":1.2");

  g_assert_finalize_object (g_steal_pointer (&quota));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/shell/allowlist/names", test_allowlist_names);
  g_test_add_func ("/shell/allowlist/relative-tricks", test_allowlist_relative_tricks);
  g_test_add_func ("/shell/allowlist/absolute-entry", test_allowlist_absolute_entry);
  g_test_add_func ("/shell/allowlist/search-path", test_allowlist_search_path);
  g_test_add_func ("/shell/allowlist/config-errors", test_allowlist_config_errors);
  g_test_add_func ("/shell/allowlist/empty", test_allowlist_empty);
  g_test_add_func ("/shell/util/canonical", test_util_canonical);
  g_test_add_func ("/shell/util/describe", test_util_describe);
  g_test_add_func ("/shell/spawn-options/validate", test_options_validate);
  g_test_add_func ("/shell/spawn-options/limits", test_options_limits);
  g_test_add_func ("/shell/quota", test_quota);

  return g_test_run ();
}
