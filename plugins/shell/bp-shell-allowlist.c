/* bp-shell-allowlist.c: which programs a shell backend may run
 *
 * Built from the `allow=` configuration value: `;`-separated program names
 * or absolute paths. A name is resolved on the search path when the
 * configuration is loaded (not on each call) to an absolute canonical path;
 * a name that is not found, a relative path, or an absolute path that is not
 * an executable file is a configuration error naming the entry.
 *
 * A call's argv[0] is then looked up without touching the file system:
 *   - a bare name ("ls") must be a configured name, or the basename of a
 *     configured absolute path, and maps to that program's path;
 *   - an absolute canonical path must be a configured program, either the
 *     path found at configuration time or the file it resolves to through
 *     symlinks, and maps to itself;
 *   - anything else ("./x", "../bin/ls", "ls/../..", "/usr/bin/../bin/ls",
 *     "") is %BP_ERROR_INVALID_ARGUMENT; a valid but unlisted program is
 *     %BP_ERROR_PERMISSION_DENIED naming it.
 *
 * Context: immutable after construction; lookups are thread-safe.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "bp-shell-allowlist.h"
#include "bp-shell-util.h"

struct _BpShellAllowlist
{
  GObject     parent_instance;

  GHashTable *names;     /* (owned): name → path (owned by @paths) */
  GHashTable *paths;     /* (owned): allowed absolute path → path to execute */
  GPtrArray  *programs;  /* (owned) (element-type utf8): configured programs, NULL-terminated */
};

G_DEFINE_FINAL_TYPE (BpShellAllowlist, bp_shell_allowlist, G_TYPE_OBJECT)

static void
bp_shell_allowlist_finalize (GObject *object)
{
  BpShellAllowlist *self = BP_SHELL_ALLOWLIST (object);

  g_clear_pointer (&self->names, g_hash_table_unref);
  g_clear_pointer (&self->paths, g_hash_table_unref);
  g_clear_pointer (&self->programs, g_ptr_array_unref);

  G_OBJECT_CLASS (bp_shell_allowlist_parent_class)->finalize (object);
}

static void
bp_shell_allowlist_class_init (BpShellAllowlistClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bp_shell_allowlist_finalize;
}

static void
bp_shell_allowlist_init (BpShellAllowlist *self)
{
  self->names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->paths = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->programs = g_ptr_array_new_with_free_func (g_free);
}

static gboolean
is_executable_file (const char *path)
{
  return g_file_test (path, G_FILE_TEST_IS_EXECUTABLE) &&
         !g_file_test (path, G_FILE_TEST_IS_DIR);
}

/* Blocking: stat()s each directory of the search path. */
static char *
find_program (const char *name,
              const char *search_path)
{
  g_auto(GStrv) dirs = NULL;

  if (search_path == NULL)
    return g_find_program_in_path (name);

  dirs = g_strsplit (search_path, ":", -1);
  for (guint i = 0; dirs[i] != NULL; i++)
    {
      g_autofree char *candidate = NULL;

      if (!g_path_is_absolute (dirs[i]))
        continue;
      candidate = g_build_filename (dirs[i], name, NULL);
      if (is_executable_file (candidate))
        return g_steal_pointer (&candidate);
    }
  return NULL;
}

static void
add_path (BpShellAllowlist *self,
          const char       *allowed,
          const char       *exec_path)
{
  if (!g_hash_table_contains (self->paths, allowed))
    g_hash_table_insert (self->paths, g_strdup (allowed), g_strdup (exec_path));
}

static gboolean
add_entry (BpShellAllowlist  *self,
           const char        *entry,
           const char        *search_path,
           GError           **error)
{
  g_autofree char *desc = bp_shell_describe_string (entry, -1);
  g_autofree char *found = NULL;
  g_autofree char *exec_path = NULL;
  char resolved[PATH_MAX];

  if (strchr (entry, '/') == NULL)
    {
      found = find_program (entry, search_path);
      if (found == NULL)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "allow: program %s not found on the search path", desc);
          return FALSE;
        }
      exec_path = g_canonicalize_filename (found, "/");
    }
  else if (bp_shell_path_is_canonical_absolute (entry))
    {
      if (!is_executable_file (entry))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "allow: %s is not an executable file", desc);
          return FALSE;
        }
      exec_path = g_strdup (entry);
    }
  else
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "allow: %s is neither a program name nor an absolute canonical path", desc);
      return FALSE;
    }

  add_path (self, exec_path, exec_path);
  if (realpath (exec_path, resolved) != NULL)
    add_path (self, resolved, exec_path);

  if (strchr (entry, '/') == NULL)
    g_hash_table_replace (self->names, g_strdup (entry), g_hash_table_lookup (self->paths, exec_path));

  g_ptr_array_add (self->programs, g_steal_pointer (&exec_path));
  return TRUE;
}

/**
 * bp_shell_allowlist_new_from_string:
 * @value: (nullable): the `allow=` value; %NULL or "" allows nothing
 * @search_path: (nullable): a `:`-separated list of directories to resolve
 *   names in; %NULL for the daemon's `PATH`
 * @error: return location for a #GError
 *
 * Parses and resolves the allowlist. This looks at the file system (a few
 * stat() calls per entry) and is meant for configuration loading.
 *
 * Returns: (transfer full): the allowlist, or %NULL with
 *   %BP_ERROR_INVALID_ARGUMENT naming the bad entry
 */
BpShellAllowlist *
bp_shell_allowlist_new_from_string (const char  *value,
                                    const char  *search_path,
                                    GError     **error)
{
  g_autoptr(BpShellAllowlist) self = NULL;
  g_auto(GStrv) entries = NULL;

  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  self = g_object_new (BP_TYPE_SHELL_ALLOWLIST, NULL);
  entries = g_strsplit (value != NULL ? value : "", ";", -1);
  for (guint i = 0; entries[i] != NULL; i++)
    {
      char *entry = g_strstrip (entries[i]);

      if (*entry == '\0')
        continue;
      if (!add_entry (self, entry, search_path, error))
        return NULL;
    }

  /* A bare name also matches the basename of a configured absolute path,
   * unless a configured name already claims it. */
  for (guint i = 0; i < self->programs->len; i++)
    {
      const char *path = g_ptr_array_index (self->programs, i);
      g_autofree char *base = g_path_get_basename (path);

      if (!g_hash_table_contains (self->names, base))
        g_hash_table_insert (self->names, g_steal_pointer (&base),
                             g_hash_table_lookup (self->paths, path));
    }

  g_ptr_array_add (self->programs, NULL);
  return g_steal_pointer (&self);
}

/**
 * bp_shell_allowlist_lookup:
 * @self: an allowlist
 * @program: argv[0] as the caller sent it
 * @len: length of @program in bytes, or -1 if NUL-terminated
 * @error: return location for a #GError
 *
 * Returns: (transfer none): the absolute path to execute, or %NULL with
 *   %BP_ERROR_INVALID_ARGUMENT (empty, NUL byte, relative path, not
 *   canonical) or %BP_ERROR_PERMISSION_DENIED (not allowed) naming @program
 */
const char *
bp_shell_allowlist_lookup (BpShellAllowlist  *self,
                           const char        *program,
                           gssize             len,
                           GError           **error)
{
  g_autofree char *desc = NULL;
  const char *path;
  gsize n;

  g_return_val_if_fail (BP_IS_SHELL_ALLOWLIST (self), NULL);
  g_return_val_if_fail (program != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  n = len < 0 ? strlen (program) : (gsize) len;
  desc = bp_shell_describe_string (program, n);

  if (n == 0)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "argv[0]: the program must not be empty");
      return NULL;
    }
  if (memchr (program, '\0', n) != NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "argv[0]: %s contains a NUL byte", desc);
      return NULL;
    }

  if (strcmp (program, ".") == 0 || strcmp (program, "..") == 0)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "argv[0]: %s must be a program name or an absolute canonical path", desc);
      return NULL;
    }

  if (strchr (program, '/') == NULL)
    {
      path = g_hash_table_lookup (self->names, program);
      if (path == NULL)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_PERMISSION_DENIED,
                       "program %s is not allowed", desc);
          return NULL;
        }
      return path;
    }

  if (!bp_shell_path_is_canonical_absolute (program))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "argv[0]: %s must be a program name or an absolute canonical path", desc);
      return NULL;
    }

  if (!g_hash_table_lookup_extended (self->paths, program, (gpointer *) &path, NULL))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_PERMISSION_DENIED,
                   "program %s is not allowed", desc);
      return NULL;
    }
  /* The stored key equals @program; hand out memory we own. */
  return path;
}

/**
 * bp_shell_allowlist_get_programs:
 * @self: an allowlist
 *
 * Returns: (transfer none) (array zero-terminated=1): the configured
 *   programs as absolute paths, in configuration order
 */
const char * const *
bp_shell_allowlist_get_programs (BpShellAllowlist *self)
{
  g_return_val_if_fail (BP_IS_SHELL_ALLOWLIST (self), NULL);

  return (const char * const *) self->programs->pdata;
}
