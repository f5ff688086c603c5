/* bp-shell-spawn-options.c: what to run and how, plus the configured bounds
 *
 * The options are filled from untrusted input (a D-Bus call), so strings are
 * stored with their lengths and checked in bp_shell_spawn_options_validate()
 * (NUL bytes, names, absolute program) and
 * bp_shell_spawn_options_check_limits() (sizes against the configuration).
 * BpShellProcess validates again before it spawns anything.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include "bp-shell-spawn-options-private.h"
#include "bp-shell-util.h"

/**
 * bp_shell_limits_init:
 * @limits: (out caller-allocates): the limits to fill
 *
 * Fills @limits with the defaults: 4096 arguments, 256 KiB of argv,
 * 1024 environment entries, 256 KiB of environment, 16 MiB of stdin,
 * 64 MiB of max-output per stream, unbounded timeout.
 */
void
bp_shell_limits_init (BpShellLimits *limits)
{
  g_return_if_fail (limits != NULL);

  limits->max_args = 4096;
  limits->max_argv_bytes = 256 * 1024;
  limits->max_env = 1024;
  limits->max_env_bytes = 256 * 1024;
  limits->max_stdin = 16 * 1024 * 1024;
  limits->max_output = 64 * 1024 * 1024;
  limits->max_timeout_ms = 0;
}

/**
 * bp_shell_spawn_options_new:
 *
 * Returns: (transfer full): empty options: no argv, the daemon's environment,
 *   stdin from /dev/null, stdout and stderr captured, no timeout
 */
BpShellSpawnOptions *
bp_shell_spawn_options_new (void)
{
  BpShellSpawnOptions *self = g_new0 (BpShellSpawnOptions, 1);

  self->argv = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  self->env = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  for (guint i = 0; i < G_N_ELEMENTS (self->fds); i++)
    self->fds[i] = -1;
  self->max_output = BP_SHELL_DEFAULT_MAX_OUTPUT;
  self->max_line_bytes = BP_SHELL_DEFAULT_MAX_LINE_BYTES;
  self->flush_interval_us = BP_SHELL_DEFAULT_FLUSH_INTERVAL_US;
  self->batch_max_lines = BP_SHELL_DEFAULT_BATCH_MAX_LINES;
  self->batch_max_bytes = BP_SHELL_DEFAULT_BATCH_MAX_BYTES;
  self->kill_grace_ms = BP_SHELL_DEFAULT_KILL_GRACE_MS;
  self->kill_group_on_exit = TRUE;
  self->die_with_parent = TRUE;
  return self;
}

/**
 * bp_shell_spawn_options_free:
 * @self: (transfer full) (nullable): options
 *
 * Frees @self and closes the fds it still owns.
 */
void
bp_shell_spawn_options_free (BpShellSpawnOptions *self)
{
  if (self == NULL)
    return;

  g_clear_pointer (&self->argv, g_ptr_array_unref);
  g_clear_pointer (&self->env, g_ptr_array_unref);
  g_clear_pointer (&self->cwd, g_bytes_unref);
  g_clear_pointer (&self->stdin_bytes, g_bytes_unref);
  g_clear_object (&self->clock);
  for (guint i = 0; i < G_N_ELEMENTS (self->fds); i++)
    if (self->fds[i] >= 0)
      close (self->fds[i]);
  g_free (self);
}

/* The copy is NUL-terminated one byte past its size, so its data can also
 * be read as a C string (cut at any embedded NUL). */
static GBytes *
bytes_from_string (const char *str,
                   gssize      len)
{
  gsize size = len < 0 ? strlen (str) : (gsize) len;
  char *copy = g_malloc (size + 1);

  memcpy (copy, str, size);
  copy[size] = '\0';
  return g_bytes_new_take (copy, size);
}

/**
 * bp_shell_spawn_options_add_arg:
 * @self: options
 * @arg: an argument
 * @len: length of @arg in bytes, or -1 if it is NUL-terminated
 *
 * Appends one argv element. Pass the real length of strings that came from
 * untrusted input so that embedded NUL bytes are caught by validation.
 */
void
bp_shell_spawn_options_add_arg (BpShellSpawnOptions *self,
                                const char          *arg,
                                gssize               len)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (arg != NULL);

  g_ptr_array_add (self->argv, bytes_from_string (arg, len));
}

/**
 * bp_shell_spawn_options_set_argv:
 * @self: options
 * @argv: (array zero-terminated=1): the whole argument vector
 *
 * Replaces argv.
 */
void
bp_shell_spawn_options_set_argv (BpShellSpawnOptions *self,
                                 const char * const  *argv)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (argv != NULL);

  g_ptr_array_set_size (self->argv, 0);
  for (guint i = 0; argv[i] != NULL; i++)
    g_ptr_array_add (self->argv, bytes_from_string (argv[i], -1));
}

/**
 * bp_shell_spawn_options_get_program:
 * @self: options
 * @len: (out) (optional): the length of argv[0] in bytes
 *
 * Returns: (nullable): argv[0] as given, NUL-terminated but possibly with
 *   an embedded NUL before @len (pass both to bp_shell_allowlist_lookup()),
 *   or %NULL if argv is empty
 */
const char *
bp_shell_spawn_options_get_program (const BpShellSpawnOptions *self,
                                    gsize                     *len)
{
  gsize size = 0;
  const char *data;

  g_return_val_if_fail (self != NULL, NULL);

  if (self->argv->len == 0)
    return NULL;
  data = g_bytes_get_data (g_ptr_array_index (self->argv, 0), &size);
  if (len != NULL)
    *len = size;
  return data != NULL ? data : "";
}

/**
 * bp_shell_spawn_options_set_program:
 * @self: options with a non-empty argv
 * @program: the resolved program, usually an absolute path from
 *   bp_shell_allowlist_lookup()
 *
 * Replaces argv[0].
 */
void
bp_shell_spawn_options_set_program (BpShellSpawnOptions *self,
                                    const char          *program)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (program != NULL);
  g_return_if_fail (self->argv->len > 0);

  g_bytes_unref (g_ptr_array_index (self->argv, 0));
  g_ptr_array_index (self->argv, 0) = bytes_from_string (program, -1);
}

guint
bp_shell_spawn_options_get_n_args (const BpShellSpawnOptions *self)
{
  g_return_val_if_fail (self != NULL, 0);

  return self->argv->len;
}

/**
 * bp_shell_spawn_options_set_cwd:
 * @self: options
 * @cwd: (nullable): an absolute directory, or %NULL for the daemon's
 * @len: length of @cwd, or -1 if NUL-terminated
 */
void
bp_shell_spawn_options_set_cwd (BpShellSpawnOptions *self,
                                const char          *cwd,
                                gssize               len)
{
  g_return_if_fail (self != NULL);

  g_clear_pointer (&self->cwd, g_bytes_unref);
  if (cwd != NULL)
    self->cwd = bytes_from_string (cwd, len);
}

/**
 * bp_shell_spawn_options_set_clear_env:
 * @self: options
 * @clear_env: %TRUE to start the child with only the entries set with
 *   bp_shell_spawn_options_set_env(), %FALSE to merge them into the
 *   daemon's environment
 */
void
bp_shell_spawn_options_set_clear_env (BpShellSpawnOptions *self,
                                      gboolean             clear_env)
{
  g_return_if_fail (self != NULL);

  self->clear_env = !!clear_env;
}

/**
 * bp_shell_spawn_options_set_env:
 * @self: options
 * @name: a variable name
 * @name_len: length of @name, or -1 if NUL-terminated
 * @value: its value
 * @value_len: length of @value, or -1 if NUL-terminated
 *
 * Adds one environment entry; a later entry with the same name wins.
 */
void
bp_shell_spawn_options_set_env (BpShellSpawnOptions *self,
                                const char          *name,
                                gssize               name_len,
                                const char          *value,
                                gssize               value_len)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (name != NULL);
  g_return_if_fail (value != NULL);

  g_ptr_array_add (self->env, bytes_from_string (name, name_len));
  g_ptr_array_add (self->env, bytes_from_string (value, value_len));
}

/**
 * bp_shell_spawn_options_set_stdin_bytes:
 * @self: options
 * @data: (nullable): bytes written to the child's stdin (asynchronously),
 *   after which stdin is closed
 */
void
bp_shell_spawn_options_set_stdin_bytes (BpShellSpawnOptions *self,
                                        GBytes              *data)
{
  g_return_if_fail (self != NULL);

  g_clear_pointer (&self->stdin_bytes, g_bytes_unref);
  if (data != NULL)
    self->stdin_bytes = g_bytes_ref (data);
}

/**
 * bp_shell_spawn_options_take_fd:
 * @self: options
 * @stdio: which standard stream
 * @fd: (transfer full): an fd the child reads (stdin) or writes (stdout,
 *   stderr) directly; the daemon never copies those bytes
 *
 * Takes ownership of @fd; it is closed when @self is freed. The process
 * gets its own duplicate, so free the options soon after spawning: until
 * then the reader of a pipe passed here does not see end-of-file.
 */
void
bp_shell_spawn_options_take_fd (BpShellSpawnOptions *self,
                                BpShellStdio         stdio,
                                int                  fd)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail ((guint) stdio < G_N_ELEMENTS (self->fds));
  g_return_if_fail (fd >= 0);

  if (self->fds[stdio] >= 0)
    close (self->fds[stdio]);
  self->fds[stdio] = fd;
}

gboolean
bp_shell_spawn_options_has_fd (const BpShellSpawnOptions *self,
                               BpShellStdio               stdio)
{
  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail ((guint) stdio < G_N_ELEMENTS (self->fds), FALSE);

  return self->fds[stdio] >= 0;
}

/**
 * bp_shell_spawn_options_set_timeout_ms:
 * @self: options
 * @timeout_ms: after this long the process group gets SIGTERM, then SIGKILL
 *   after the kill grace period; 0 means no timeout
 */
void
bp_shell_spawn_options_set_timeout_ms (BpShellSpawnOptions *self,
                                       guint                timeout_ms)
{
  g_return_if_fail (self != NULL);

  self->timeout_ms = timeout_ms;
}

/**
 * bp_shell_spawn_options_set_kill_grace_ms:
 * @self: options
 * @kill_grace_ms: time between SIGTERM and SIGKILL when the process is
 *   stopped (timeout, cancellation); also how long to wait for captured
 *   pipes to reach end-of-file after the child exited (default 2000)
 */
void
bp_shell_spawn_options_set_kill_grace_ms (BpShellSpawnOptions *self,
                                          guint                kill_grace_ms)
{
  g_return_if_fail (self != NULL);

  self->kill_grace_ms = kill_grace_ms;
}

/**
 * bp_shell_spawn_options_set_max_output:
 * @self: options
 * @max_output: most bytes read from each captured stream; past it the
 *   process group is killed and the process fails with
 *   %BP_ERROR_LIMIT_EXCEEDED (default 16 MiB, must be > 0)
 */
void
bp_shell_spawn_options_set_max_output (BpShellSpawnOptions *self,
                                       gsize                max_output)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (max_output > 0);

  self->max_output = max_output;
}

/**
 * bp_shell_spawn_options_set_kill_group_on_exit:
 * @self: options
 * @kill_group_on_exit: whether to SIGKILL what is left of the process
 *   group once the child exited (default %TRUE)
 */
void
bp_shell_spawn_options_set_kill_group_on_exit (BpShellSpawnOptions *self,
                                               gboolean             kill_group_on_exit)
{
  g_return_if_fail (self != NULL);

  self->kill_group_on_exit = !!kill_group_on_exit;
}

/**
 * bp_shell_spawn_options_set_die_with_parent:
 * @self: options
 * @die_with_parent: whether the child gets SIGKILL when the thread that
 *   spawned it dies (PR_SET_PDEATHSIG; default %TRUE). Spawn from the main
 *   thread when this is set.
 */
void
bp_shell_spawn_options_set_die_with_parent (BpShellSpawnOptions *self,
                                            gboolean             die_with_parent)
{
  g_return_if_fail (self != NULL);

  self->die_with_parent = !!die_with_parent;
}

/**
 * bp_shell_spawn_options_set_clock:
 * @self: options
 * @clock: (nullable): the clock for the timeout, the kill grace period and
 *   output batching; %NULL for the default clock
 */
void
bp_shell_spawn_options_set_clock (BpShellSpawnOptions *self,
                                  BpClock             *clock)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (clock == NULL || BP_IS_CLOCK (clock));

  g_set_object (&self->clock, clock);
}

/**
 * bp_shell_spawn_options_set_max_line_bytes:
 * @self: options
 * @max_line_bytes: longer output lines are split (spawned processes only)
 */
void
bp_shell_spawn_options_set_max_line_bytes (BpShellSpawnOptions *self,
                                           gsize                max_line_bytes)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (max_line_bytes > 0);

  self->max_line_bytes = max_line_bytes;
}

/**
 * bp_shell_spawn_options_set_batching:
 * @self: options
 * @flush_interval_us: how long lines may wait before they are emitted
 * @max_lines: emit at once when this many lines are pending
 * @max_bytes: emit at once when this many bytes of lines are pending
 *
 * Batching of `output` for spawned processes; see #BpShellLineBatcher.
 */
void
bp_shell_spawn_options_set_batching (BpShellSpawnOptions *self,
                                     gint64               flush_interval_us,
                                     guint                max_lines,
                                     gsize                max_bytes)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (flush_interval_us >= 0);
  g_return_if_fail (max_lines > 0);
  g_return_if_fail (max_bytes > 0);

  self->flush_interval_us = flush_interval_us;
  self->batch_max_lines = max_lines;
  self->batch_max_bytes = max_bytes;
}

static gboolean
has_nul (GBytes *bytes)
{
  gsize len;
  const char *data = g_bytes_get_data (bytes, &len);

  return len > 0 && memchr (data, '\0', len) != NULL;
}

static gboolean
validate_env_name (GBytes  *name,
                   guint    index,
                   GError **error)
{
  gsize len;
  const char *data = g_bytes_get_data (name, &len);
  g_autofree char *desc = NULL;

  if (len == 0)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "env: entry %u has an empty name", index);
      return FALSE;
    }
  if (has_nul (name) || memchr (data, '=', len) != NULL)
    {
      desc = bp_shell_describe_string (data, len);
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "env: name %s must not contain '=' or NUL", desc);
      return FALSE;
    }
  return TRUE;
}

/**
 * bp_shell_spawn_options_validate:
 * @self: options
 * @error: return location for a #GError
 *
 * Checks what no configuration can make valid: argv is not empty, no
 * element holds a NUL byte, argv[0] is an absolute canonical path (no ".",
 * "..", "//"), cwd (if any) is an absolute path without NUL, environment
 * names are non-empty without '=' or NUL and values without NUL, stdin is
 * not given both as bytes and as an fd. Does not touch the file system.
 *
 * Returns: %TRUE if valid, else %FALSE with %BP_ERROR_INVALID_ARGUMENT
 *   naming the field
 */
gboolean
bp_shell_spawn_options_validate (const BpShellSpawnOptions  *self,
                                 GError                    **error)
{
  g_autofree char *program = NULL;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->argv->len == 0)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "argv: must not be empty");
      return FALSE;
    }
  for (guint i = 0; i < self->argv->len; i++)
    {
      if (has_nul (g_ptr_array_index (self->argv, i)))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "argv[%u]: contains a NUL byte", i);
          return FALSE;
        }
    }
  if (g_bytes_get_size (g_ptr_array_index (self->argv, 0)) == 0)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "argv[0]: the program must not be empty");
      return FALSE;
    }
  program = g_strndup (g_bytes_get_data (g_ptr_array_index (self->argv, 0), NULL),
                       g_bytes_get_size (g_ptr_array_index (self->argv, 0)));
  if (!bp_shell_path_is_canonical_absolute (program))
    {
      g_autofree char *desc = bp_shell_describe_string (program, -1);

      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "argv[0]: %s is not an absolute canonical path", desc);
      return FALSE;
    }

  if (self->cwd != NULL)
    {
      gsize len;
      const char *data = g_bytes_get_data (self->cwd, &len);

      if (len == 0 || has_nul (self->cwd) || data[0] != '/')
        {
          g_autofree char *desc = bp_shell_describe_string (data, len);

          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "cwd: %s is not an absolute path without NUL bytes", desc);
          return FALSE;
        }
    }

  for (guint i = 0; i + 1 < self->env->len; i += 2)
    {
      if (!validate_env_name (g_ptr_array_index (self->env, i), i / 2, error))
        return FALSE;
      if (has_nul (g_ptr_array_index (self->env, i + 1)))
        {
          GBytes *name = g_ptr_array_index (self->env, i);
          g_autofree char *desc = bp_shell_describe_string (g_bytes_get_data (name, NULL),
                                                            g_bytes_get_size (name));

          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "env: the value of %s contains a NUL byte", desc);
          return FALSE;
        }
    }

  if (self->stdin_bytes != NULL && self->fds[BP_SHELL_STDIN] >= 0)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "stdin: given both as bytes and as an fd");
      return FALSE;
    }

  return TRUE;
}

/**
 * bp_shell_spawn_options_check_limits:
 * @self: options
 * @limits: the configured bounds
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @self stays within @limits, else %FALSE with
 *   %BP_ERROR_LIMIT_EXCEEDED naming the field and the bound
 */
gboolean
bp_shell_spawn_options_check_limits (const BpShellSpawnOptions  *self,
                                     const BpShellLimits        *limits,
                                     GError                    **error)
{
  gsize total = 0;

  g_return_val_if_fail (self != NULL, FALSE);
  g_return_val_if_fail (limits != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->argv->len > limits->max_args)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "argv: %u arguments exceed the limit of %u",
                   self->argv->len, limits->max_args);
      return FALSE;
    }
  for (guint i = 0; i < self->argv->len; i++)
    total += g_bytes_get_size (g_ptr_array_index (self->argv, i)) + 1;
  if (total > limits->max_argv_bytes)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "argv: %" G_GSIZE_FORMAT " bytes exceed the limit of %" G_GSIZE_FORMAT,
                   total, limits->max_argv_bytes);
      return FALSE;
    }

  if (self->env->len / 2 > limits->max_env)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "env: %u entries exceed the limit of %u",
                   self->env->len / 2, limits->max_env);
      return FALSE;
    }
  total = 0;
  for (guint i = 0; i < self->env->len; i++)
    total += g_bytes_get_size (g_ptr_array_index (self->env, i)) + 1;
  if (total > limits->max_env_bytes)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "env: %" G_GSIZE_FORMAT " bytes exceed the limit of %" G_GSIZE_FORMAT,
                   total, limits->max_env_bytes);
      return FALSE;
    }

  if (self->stdin_bytes != NULL && g_bytes_get_size (self->stdin_bytes) > limits->max_stdin)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "stdin: %" G_GSIZE_FORMAT " bytes exceed the limit of %" G_GSIZE_FORMAT,
                   g_bytes_get_size (self->stdin_bytes), limits->max_stdin);
      return FALSE;
    }

  if (self->max_output > limits->max_output)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "max-output: %" G_GSIZE_FORMAT " exceeds the limit of %" G_GSIZE_FORMAT,
                   self->max_output, limits->max_output);
      return FALSE;
    }

  if (limits->max_timeout_ms > 0 &&
      (self->timeout_ms == 0 || self->timeout_ms > limits->max_timeout_ms))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "timeout-ms: %u exceeds the limit of %u (0 means none)",
                   self->timeout_ms, limits->max_timeout_ms);
      return FALSE;
    }

  return TRUE;
}

/* Only after bp_shell_spawn_options_validate() succeeded. */
char **
_bp_shell_spawn_options_dup_argv (const BpShellSpawnOptions *self)
{
  char **argv = g_new0 (char *, self->argv->len + 1);

  for (guint i = 0; i < self->argv->len; i++)
    {
      GBytes *arg = g_ptr_array_index (self->argv, i);
      gsize len;
      const char *data = g_bytes_get_data (arg, &len);

      argv[i] = len > 0 ? g_strndup (data, len) : g_strdup ("");
    }
  return argv;
}
