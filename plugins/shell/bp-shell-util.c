/* bp-shell-util.c: small helpers shared by the shell plugin
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-shell-util.h"

#define DESCRIBE_MAX_BYTES 128

/*
 * bp_shell_describe_string:
 * @str: untrusted bytes (a program name, a path, an env name)
 * @len: length of @str, or -1 if NUL-terminated
 *
 * Makes caller-provided text safe to put into an error message: invalid
 * UTF-8 and NUL bytes become U+FFFD, and anything longer than a short
 * prefix is cut with "…".
 *
 * Returns: (transfer full): a quoted, printable UTF-8 string
 */
char *
bp_shell_describe_string (const char *str,
                          gssize      len)
{
  g_autofree char *valid = NULL;
  gsize n;
  gboolean cut = FALSE;

  if (str == NULL)
    return g_strdup ("(null)");
  n = len < 0 ? strlen (str) : (gsize) len;
  if (n > DESCRIBE_MAX_BYTES)
    {
      n = DESCRIBE_MAX_BYTES;
      cut = TRUE;
    }
  valid = g_utf8_make_valid (str, n);
  return g_strdup_printf ("'%s%s'", valid, cut ? "…" : "");
}

/*
 * bp_shell_path_is_canonical_absolute:
 * @path: a NUL-terminated path
 *
 * Lexical check only (no file system access): @path starts with '/', has no
 * empty, "." or ".." components and no trailing '/'. "/" itself is
 * canonical.
 *
 * Returns: %TRUE if @path is an absolute canonical path
 */
gboolean
bp_shell_path_is_canonical_absolute (const char *path)
{
  const char *p;

  g_return_val_if_fail (path != NULL, FALSE);

  if (path[0] != '/')
    return FALSE;
  if (path[1] == '\0')
    return TRUE;

  p = path + 1;
  for (;;)
    {
      const char *end = strchr (p, '/');
      gsize seg = end != NULL ? (gsize) (end - p) : strlen (p);

      if (seg == 0)
        return FALSE;
      if (seg == 1 && p[0] == '.')
        return FALSE;
      if (seg == 2 && p[0] == '.' && p[1] == '.')
        return FALSE;
      if (end == NULL)
        return TRUE;
      p = end + 1;
    }
}
