/* bp-error.c: the Backplane error domain and its D-Bus names
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bp-error.h"

static const GDBusErrorEntry bp_error_entries[] = {
  { BP_ERROR_FAILED, "org.backplane.Backplane1.Error.Failed" },
  { BP_ERROR_INVALID_ARGUMENT, "org.backplane.Backplane1.Error.InvalidArgument" },
  { BP_ERROR_NOT_FOUND, "org.backplane.Backplane1.Error.NotFound" },
  { BP_ERROR_TIMEOUT, "org.backplane.Backplane1.Error.Timeout" },
  { BP_ERROR_CANCELLED, "org.backplane.Backplane1.Error.Cancelled" },
  { BP_ERROR_CIRCUIT_OPEN, "org.backplane.Backplane1.Error.CircuitOpen" },
  { BP_ERROR_POOL_EXHAUSTED, "org.backplane.Backplane1.Error.PoolExhausted" },
  { BP_ERROR_UNAVAILABLE, "org.backplane.Backplane1.Error.Unavailable" },
  { BP_ERROR_BACKEND, "org.backplane.Backplane1.Error.Backend" },
  { BP_ERROR_PERMISSION_DENIED, "org.backplane.Backplane1.Error.PermissionDenied" },
  { BP_ERROR_LIMIT_EXCEEDED, "org.backplane.Backplane1.Error.LimitExceeded" },
};

G_STATIC_ASSERT (G_N_ELEMENTS (bp_error_entries) == BP_ERROR_N_CODES);

/**
 * bp_error_quark:
 *
 * Gets the error domain of [error@Bp.Error], %BP_ERROR. The first call
 * registers the domain with g_dbus_error_register_error_domain(), so a
 * #GError in this domain travels over D-Bus as
 * `org.backplane.Backplane1.Error.<Name>` and a D-Bus error of that name
 * comes back as the same code. Thread-safe.
 *
 * Returns: the #GQuark of %BP_ERROR
 */
GQuark
bp_error_quark (void)
{
  static gsize quark = 0;

  g_dbus_error_register_error_domain ("bp-error-quark",
                                      &quark,
                                      bp_error_entries,
                                      G_N_ELEMENTS (bp_error_entries));
  return (GQuark) quark;
}

/**
 * bp_error_code_to_nick:
 * @code: a #BpError
 *
 * Gets the short name of @code: the last element of its D-Bus error name.
 * A value outside [error@Bp.Error] gives the name of %BP_ERROR_FAILED.
 *
 * Returns: (transfer none): the short name, e.g. `CircuitOpen`, a static
 *   string
 */
const char *
bp_error_code_to_nick (BpError code)
{
  const char *name;

  if ((guint) code >= BP_ERROR_N_CODES)
    code = BP_ERROR_FAILED;
  name = bp_error_entries[code].dbus_error_name;
  return strrchr (name, '.') + 1;
}

static BpError
io_error_to_bp (int code)
{
  switch (code)
    {
    case G_IO_ERROR_CANCELLED:
      return BP_ERROR_CANCELLED;
    case G_IO_ERROR_TIMED_OUT:
      return BP_ERROR_TIMEOUT;
    case G_IO_ERROR_NOT_FOUND:
      return BP_ERROR_NOT_FOUND;
    case G_IO_ERROR_INVALID_ARGUMENT:
    case G_IO_ERROR_INVALID_DATA:
    case G_IO_ERROR_INVALID_FILENAME:
    case G_IO_ERROR_FILENAME_TOO_LONG:
      return BP_ERROR_INVALID_ARGUMENT;
    case G_IO_ERROR_PERMISSION_DENIED:
      return BP_ERROR_PERMISSION_DENIED;
    case G_IO_ERROR_CONNECTION_REFUSED:
    case G_IO_ERROR_HOST_UNREACHABLE:
    case G_IO_ERROR_NETWORK_UNREACHABLE:
    case G_IO_ERROR_NOT_CONNECTED:
    case G_IO_ERROR_CONNECTION_CLOSED: /* == G_IO_ERROR_BROKEN_PIPE */
    case G_IO_ERROR_HOST_NOT_FOUND:
      return BP_ERROR_UNAVAILABLE;
    case G_IO_ERROR_NO_SPACE:
    case G_IO_ERROR_TOO_MANY_OPEN_FILES:
    case G_IO_ERROR_MESSAGE_TOO_LARGE:
      return BP_ERROR_LIMIT_EXCEEDED;
    default:
      return BP_ERROR_FAILED;
    }
}

/**
 * bp_error_normalize:
 * @error: any #GError
 *
 * Maps an error of any domain to %BP_ERROR so that it reaches D-Bus with a
 * registered name (never `org.gtk.GDBus.UnmappedGError.*`). The message is
 * kept, so native detail (SQLSTATE, Neo4j code, HTTP status) and a
 * `(retry-after-ms=N)` survive.
 *
 * An error already in %BP_ERROR is copied. Codes of %G_IO_ERROR,
 * %G_DBUS_ERROR, %G_FILE_ERROR and the parse errors of #GKeyFile,
 * #GOptionContext, #GVariant and g_convert() map to the nearest
 * [error@Bp.Error] (cancelled, timed out, not found, invalid argument,
 * permission denied, unreachable to %BP_ERROR_UNAVAILABLE, out of space or
 * too large to %BP_ERROR_LIMIT_EXCEEDED); everything else becomes
 * %BP_ERROR_FAILED. A backend's own domain is therefore best mapped by the
 * backend itself, e.g. to %BP_ERROR_BACKEND.
 *
 * Returns: (transfer full): a new #GError in the %BP_ERROR domain
 */
GError *
bp_error_normalize (const GError *error)
{
  BpError code = BP_ERROR_FAILED;

  g_return_val_if_fail (error != NULL, NULL);

  if (error->domain == BP_ERROR)
    return g_error_copy (error);
  if (error->domain == G_IO_ERROR)
    code = io_error_to_bp (error->code);
  else if (error->domain == G_DBUS_ERROR)
    {
      switch (error->code)
        {
        case G_DBUS_ERROR_INVALID_ARGS:
          code = BP_ERROR_INVALID_ARGUMENT;
          break;
        case G_DBUS_ERROR_ACCESS_DENIED:
          code = BP_ERROR_PERMISSION_DENIED;
          break;
        case G_DBUS_ERROR_TIMEOUT:
        case G_DBUS_ERROR_TIMED_OUT:
        case G_DBUS_ERROR_NO_REPLY:
          code = BP_ERROR_TIMEOUT;
          break;
        case G_DBUS_ERROR_LIMITS_EXCEEDED:
          code = BP_ERROR_LIMIT_EXCEEDED;
          break;
        case G_DBUS_ERROR_SERVICE_UNKNOWN:
        case G_DBUS_ERROR_NAME_HAS_NO_OWNER:
          code = BP_ERROR_UNAVAILABLE;
          break;
        default:
          code = BP_ERROR_FAILED;
          break;
        }
    }
  else if (error->domain == G_KEY_FILE_ERROR || error->domain == G_OPTION_ERROR ||
           error->domain == G_VARIANT_PARSE_ERROR || error->domain == G_CONVERT_ERROR)
    code = BP_ERROR_INVALID_ARGUMENT;
  else if (error->domain == G_FILE_ERROR)
    code = error->code == G_FILE_ERROR_NOENT ? BP_ERROR_NOT_FOUND : BP_ERROR_FAILED;

  return g_error_new_literal (BP_ERROR, code, error->message);
}

/**
 * bp_error_set_retry_after:
 * @error: (inout) (nullable): a #GError location holding an error
 * @retry_after_ms: milliseconds after which a retry may succeed
 *
 * Appends ` (retry-after-ms=N)` to the message of `*error`, the form
 * API.md documents and [func@Bp.error_get_retry_after] reads back. Clients
 * see it on D-Bus; [class@Bp.Retry] waits at least that long before the
 * next attempt (and does not retry when it does not fit the deadline), and
 * [class@Bp.DeadLetters] does not replay earlier.
 *
 * Does nothing when @error or `*error` is %NULL or @retry_after_ms is
 * negative. Calling it twice appends twice; the last one counts.
 */
void
bp_error_set_retry_after (GError **error,
                          gint64   retry_after_ms)
{
  char *msg;

  if (error == NULL || *error == NULL || retry_after_ms < 0)
    return;
  msg = g_strdup_printf ("%s (retry-after-ms=%" G_GINT64_FORMAT ")",
                         (*error)->message, retry_after_ms);
  g_free ((*error)->message);
  (*error)->message = msg;
}

/**
 * bp_error_get_retry_after:
 * @error: (nullable): a #GError
 *
 * Reads back what bp_error_set_retry_after() appended: the last
 * `(retry-after-ms=N)` in the message, with N a decimal number. Text that
 * merely mentions `retry-after-ms=` (a server's or a user's message quoted
 * in the error) does not count.
 *
 * Returns: the `retry-after-ms` carried in the message (0 or more), or -1
 *   when there is none or @error is %NULL
 */
gint64
bp_error_get_retry_after (const GError *error)
{
  static const char tag[] = "(retry-after-ms=";
  const char *p;
  const char *digits;
  char *end = NULL;
  guint64 v;

  if (error == NULL || error->message == NULL)
    return -1;
  p = g_strrstr (error->message, tag);
  if (p == NULL)
    return -1;
  digits = p + strlen (tag);
  if (!g_ascii_isdigit (*digits))
    return -1;
  errno = 0;
  v = g_ascii_strtoull (digits, &end, 10);
  if (errno != 0 || end == NULL || *end != ')' || v > G_MAXINT64)
    return -1;
  return (gint64) v;
}

/**
 * bp_invocation_return_error:
 * @invocation: (transfer full): the invocation to complete
 * @error: the error
 *
 * Completes @invocation with @error mapped by [func@Bp.error_normalize] to
 * a registered Backplane D-Bus error name; the message is sent unchanged,
 * so it must not contain secrets. Takes ownership of @invocation, like
 * g_dbus_method_invocation_return_gerror().
 */
void
bp_invocation_return_error (GDBusMethodInvocation *invocation,
                            const GError          *error)
{
  g_autoptr(GError) normalized = NULL;

  g_return_if_fail (G_IS_DBUS_METHOD_INVOCATION (invocation));
  g_return_if_fail (error != NULL);

  normalized = bp_error_normalize (error);
  g_dbus_method_invocation_return_gerror (invocation, normalized);
}
