/* bp-pg-options.c: validated a{sv} options of the Sql methods
 *
 * Every key is checked for its type and range; unknown keys and keys the
 * method does not take are BP_ERROR_INVALID_ARGUMENT naming the key.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-pg-options.h"

#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <string.h>

typedef struct
{
  const char         *key;
  BpPgOptionFlags     flag;
  const GVariantType *type;
} OptionSpec;

#define T(s) ((const GVariantType *) (s))

static const OptionSpec specs[] = {
  { "timeout-ms", BP_PG_OPT_TIMEOUT, T ("u") },
  { "max-rows", BP_PG_OPT_MAX_ROWS, T ("u") },
  { "idempotent", BP_PG_OPT_IDEMPOTENT, T ("b") },
  { "idempotency-key", BP_PG_OPT_IDEMPOTENCY_KEY, T ("s") },
  { "dead-letter", BP_PG_OPT_DEAD_LETTER, T ("b") },
  { "format", BP_PG_OPT_FORMAT, T ("s") },
  { "atomic", BP_PG_OPT_ATOMIC, T ("b") },
  { "isolation", BP_PG_OPT_ISOLATION, T ("s") },
  { "read-only", BP_PG_OPT_READ_ONLY, T ("b") },
  { "idle-timeout-ms", BP_PG_OPT_IDLE_TIMEOUT, T ("u") },
};

void
bp_pg_options_clear (BpPgOptions *options)
{
  g_clear_pointer (&options->idempotency_key, g_free);
}

/**
 * bp_pg_options_parse:
 * @options: (nullable): an `a{sv}`
 * @allowed: the keys this method takes
 * @max_rows_cap: the backend's max-rows: the default and the maximum
 * @out: (out caller-allocates): the parsed options; clear with
 *   bp_pg_options_clear()
 * @error: return location for a #GError
 *
 * Returns: %TRUE if every key is known, allowed and valid
 */
gboolean
bp_pg_options_parse (GVariant         *options,
                     BpPgOptionFlags   allowed,
                     guint             max_rows_cap,
                     BpPgOptions      *out,
                     GError          **error)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  memset (out, 0, sizeof *out);
  out->max_rows = max_rows_cap;
  out->format = BP_PG_FORMAT_JSONL;
  out->isolation = "read-committed";
  out->idle_timeout_ms = BP_PG_DEFAULT_IDLE_TIMEOUT_MS;

  if (options == NULL)
    return TRUE;

  g_variant_iter_init (&iter, options);
  while (g_variant_iter_next (&iter, "{&sv}", &key, &value))
    {
      g_autoptr(GVariant) v = value;
      const OptionSpec *spec = NULL;

      for (gsize i = 0; i < G_N_ELEMENTS (specs); i++)
        if (g_str_equal (specs[i].key, key))
          spec = &specs[i];
      if (spec == NULL || (spec->flag & allowed) == 0)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "options: unknown key “%s”", key);
          return FALSE;
        }
      if (!g_variant_is_of_type (v, spec->type))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       "options.%s: expected type “%s”, got “%s”", key,
                       (const char *) spec->type, g_variant_get_type_string (v));
          return FALSE;
        }

      switch (spec->flag)
        {
        case BP_PG_OPT_TIMEOUT:
          out->timeout_ms = g_variant_get_uint32 (v);
          break;
        case BP_PG_OPT_MAX_ROWS:
          out->max_rows = g_variant_get_uint32 (v);
          if (out->max_rows == 0 || out->max_rows > max_rows_cap)
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "options.max-rows: must be 1 … %u", max_rows_cap);
              return FALSE;
            }
          break;
        case BP_PG_OPT_IDEMPOTENT:
          out->idempotent = g_variant_get_boolean (v);
          break;
        case BP_PG_OPT_IDEMPOTENCY_KEY:
          {
            const char *k = g_variant_get_string (v, NULL);

            if (*k == '\0' || strlen (k) > BP_PG_MAX_IDEMPOTENCY_KEY_BYTES)
              {
                g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                             "options.idempotency-key: must be 1 … %d bytes",
                             BP_PG_MAX_IDEMPOTENCY_KEY_BYTES);
                return FALSE;
              }
            g_free (out->idempotency_key);
            out->idempotency_key = g_strdup (k);
          }
          break;
        case BP_PG_OPT_DEAD_LETTER:
          out->dead_letter = g_variant_get_boolean (v);
          break;
        case BP_PG_OPT_FORMAT:
          {
            const char *f = g_variant_get_string (v, NULL);

            if (g_str_equal (f, "jsonl"))
              out->format = BP_PG_FORMAT_JSONL;
            else if (g_str_equal (f, "csv"))
              out->format = BP_PG_FORMAT_CSV;
            else
              {
                g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                             "options.format: “%s” is not jsonl or csv", f);
                return FALSE;
              }
          }
          break;
        case BP_PG_OPT_ATOMIC:
          out->atomic = g_variant_get_boolean (v);
          break;
        case BP_PG_OPT_ISOLATION:
          {
            const char *s = g_variant_get_string (v, NULL);

            if (g_str_equal (s, "read-committed"))
              out->isolation = "read-committed";
            else if (g_str_equal (s, "repeatable-read"))
              out->isolation = "repeatable-read";
            else if (g_str_equal (s, "serializable"))
              out->isolation = "serializable";
            else
              {
                g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                             "options.isolation: “%s” is not read-committed, repeatable-read or serializable", s);
                return FALSE;
              }
          }
          break;
        case BP_PG_OPT_READ_ONLY:
          out->read_only = g_variant_get_boolean (v);
          break;
        case BP_PG_OPT_IDLE_TIMEOUT:
          out->idle_timeout_ms = g_variant_get_uint32 (v);
          if (out->idle_timeout_ms == 0 || out->idle_timeout_ms > BP_PG_MAX_IDLE_TIMEOUT_MS)
            {
              g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "options.idle-timeout-ms: must be 1 … %d", BP_PG_MAX_IDLE_TIMEOUT_MS);
              return FALSE;
            }
          break;
        default:
          g_assert_not_reached ();
        }
    }
  /* Only what may run twice may be replayed later. */
  if (out->dead_letter && !out->idempotent && out->idempotency_key == NULL)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                           "options.dead-letter: needs idempotent or idempotency-key");
      return FALSE;
    }
  return TRUE;
}

/**
 * bp_pg_check_sql:
 * @field: the argument name for the message
 * @sql: the SQL text
 * @error: return location for a #GError
 *
 * Returns: %TRUE if @sql fits the size bound
 */
gboolean
bp_pg_check_sql (const char  *field,
                 const char  *sql,
                 GError     **error)
{
  gsize len = strlen (sql);

  if (len > BP_PG_MAX_SQL_BYTES)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "%s: %" G_GSIZE_FORMAT " bytes, at most %d", field, len, BP_PG_MAX_SQL_BYTES);
      return FALSE;
    }
  return TRUE;
}

/**
 * bp_pg_steal_fd:
 * @call: a call not answered yet
 * @handle: the `h` argument
 * @error: return location for a #GError
 *
 * Takes the fd out of the call's message (g_unix_fd_list_steal_fds), so
 * that no copy stays open while the message lives: a reader must see EOF
 * as soon as we close our end. The other fds of the message are closed.
 *
 * Returns: the fd (owned by the caller), or -1 with
 *   %BP_ERROR_INVALID_ARGUMENT
 */
int
bp_pg_steal_fd (BpCall    *call,
                GVariant  *handle,
                GError   **error)
{
  GDBusMethodInvocation *invocation = bp_call_get_invocation (call);
  GUnixFDList *list;
  g_autofree int *fds = NULL;
  int n = 0;
  int index;
  int fd = -1;

  if (invocation == NULL || handle == NULL || !g_variant_is_of_type (handle, G_VARIANT_TYPE_HANDLE))
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "fd: not a handle");
      return -1;
    }
  index = g_variant_get_handle (handle);
  list = g_dbus_message_get_unix_fd_list (g_dbus_method_invocation_get_message (invocation));
  if (list == NULL || index < 0 || index >= g_unix_fd_list_get_length (list))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "fd: handle %d names no file descriptor passed with the call", index);
      return -1;
    }
  fds = g_unix_fd_list_steal_fds (list, &n);
  for (int i = 0; i < n; i++)
    {
      if (i == index)
        fd = fds[i];
      else
        g_close (fds[i], NULL);
    }
  return fd;
}
