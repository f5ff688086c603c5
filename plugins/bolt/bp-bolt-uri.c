/* bp-bolt-uri.c: bolt:// and neo4j:// URIs
 *
 * The URI forms of the official drivers: bolt:// (direct), neo4j://
 * (routing), each with +s (TLS, verified) and +ssc (TLS, any certificate).
 * No user information in the URI (credentials come from the config keys),
 * no path; the query of a neo4j:// URI is the routing context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <string.h>

#include "bp-bolt-uri.h"

#define DEFAULT_PORT 7687

void
bp_bolt_uri_free (BpBoltUri *uri)
{
  if (uri == NULL)
    return;
  g_free (uri->scheme);
  g_free (uri->host);
  g_clear_pointer (&uri->routing_context, g_variant_unref);
  g_free (uri);
}

/* The URI as it may be shown: user information (a password) replaced. */
static char *
redact (const char *text)
{
  const char *authority = strstr (text, "://");
  const char *end, *at;

  if (authority == NULL)
    return g_strdup (text);
  authority += 3;
  end = authority + strcspn (authority, "/?#");
  at = g_strstr_len (authority, end - authority, "@");
  if (at == NULL)
    return g_strdup (text);
  return g_strdup_printf ("%.*s***%s", (int) (authority - text), text, at);
}

static gboolean
invalid (GError    **error,
         const char *text,
         const char *why)
{
  g_autofree char *shown = redact (text);

  g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, _("uri '%s': %s"), shown, why);
  return FALSE;
}

/**
 * bp_bolt_uri_parse:
 * @text: the URI
 * @error: a #GError
 *
 * Returns: (transfer full): the parsed URI, or %NULL
 *   (%BP_ERROR_INVALID_ARGUMENT)
 */
BpBoltUri *
bp_bolt_uri_parse (const char  *text,
                   GError     **error)
{
  g_autoptr(GUri) parsed = NULL;
  g_autoptr(BpBoltUri) uri = NULL;
  g_autoptr(GError) local = NULL;
  const char *scheme, *host, *path, *query;
  int port;

  g_return_val_if_fail (text != NULL, NULL);

  parsed = g_uri_parse (text, G_URI_FLAGS_NON_DNS | G_URI_FLAGS_ENCODED_QUERY, &local);
  if (parsed == NULL)
    {
      /* GLib's message may quote the text, password included */
      invalid (error, text, strchr (text, '@') == NULL ? local->message : _("not a valid URI"));
      return NULL;
    }
  uri = g_new0 (BpBoltUri, 1);
  scheme = g_uri_get_scheme (parsed);
  if (g_ascii_strcasecmp (scheme, "bolt") == 0 || g_ascii_strcasecmp (scheme, "neo4j") == 0)
    uri->tls_mode = BP_BOLT_TLS_NONE;
  else if (g_ascii_strcasecmp (scheme, "bolt+s") == 0 || g_ascii_strcasecmp (scheme, "neo4j+s") == 0)
    uri->tls_mode = BP_BOLT_TLS_VERIFY;
  else if (g_ascii_strcasecmp (scheme, "bolt+ssc") == 0 || g_ascii_strcasecmp (scheme, "neo4j+ssc") == 0)
    uri->tls_mode = BP_BOLT_TLS_TRUST_ANY;
  else
    {
      invalid (error, text, _("the scheme must be bolt, bolt+s, bolt+ssc, neo4j, neo4j+s or neo4j+ssc"));
      return NULL;
    }
  uri->scheme = g_ascii_strdown (scheme, -1);
  uri->routing = g_str_has_prefix (uri->scheme, "neo4j");

  if (g_uri_get_userinfo (parsed) != NULL)
    {
      invalid (error, text, _("credentials do not belong in the URI; use user= and password-file="));
      return NULL;
    }
  host = g_uri_get_host (parsed);
  if (host == NULL || *host == '\0')
    {
      invalid (error, text, _("no host"));
      return NULL;
    }
  path = g_uri_get_path (parsed);
  if (path != NULL && *path != '\0' && strcmp (path, "/") != 0)
    {
      invalid (error, text, _("a Bolt URI has no path"));
      return NULL;
    }
  if (g_uri_get_fragment (parsed) != NULL)
    {
      invalid (error, text, _("a Bolt URI has no fragment"));
      return NULL;
    }
  uri->host = g_strdup (host);
  port = g_uri_get_port (parsed);
  uri->port = port > 0 ? (guint16) port : DEFAULT_PORT;

  query = g_uri_get_query (parsed);
  if (query != NULL && !uri->routing)
    {
      invalid (error, text, _("only neo4j:// URIs take a routing context (query)"));
      return NULL;
    }
  if (uri->routing)
    {
      GVariantBuilder builder;
      g_autofree char *address = NULL;

      if (strchr (uri->host, ':') != NULL)
        address = g_strdup_printf ("[%s]:%u", uri->host, uri->port);
      else
        address = g_strdup_printf ("%s:%u", uri->host, uri->port);
      g_variant_builder_init (&builder, G_VARIANT_TYPE ("a{ss}"));
      g_variant_builder_add (&builder, "{ss}", "address", address);
      if (query != NULL && *query != '\0')
        {
          g_autoptr(GHashTable) params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, &local);
          GHashTableIter iter;
          gpointer k, v;

          if (params == NULL)
            {
              g_variant_builder_clear (&builder);
              invalid (error, text, local->message);
              return NULL;
            }
          g_hash_table_iter_init (&iter, params);
          while (g_hash_table_iter_next (&iter, &k, &v))
            {
              if (strcmp (k, "address") == 0)
                {
                  g_variant_builder_clear (&builder);
                  invalid (error, text, _("'address' is reserved in the routing context"));
                  return NULL;
                }
              g_variant_builder_add (&builder, "{ss}", (const char *) k, (const char *) v);
            }
        }
      uri->routing_context = g_variant_ref_sink (g_variant_builder_end (&builder));
    }
  return g_steal_pointer (&uri);
}

/**
 * bp_bolt_split_address:
 * @address: "host:port" or "[v6]:port" as in a routing table
 * @host: (out): the host
 * @port: (out): the port (7687 if absent)
 * @error: a #GError
 *
 * Returns: %TRUE if @address is well formed
 */
gboolean
bp_bolt_split_address (const char  *address,
                       char       **host,
                       guint16     *port,
                       GError     **error)
{
  const char *colon;
  guint64 p = DEFAULT_PORT;

  if (address[0] == '[')
    {
      const char *end = strchr (address, ']');
      if (end == NULL || end == address + 1)
        return invalid (error, address, _("bad IPv6 address"));
      *host = g_strndup (address + 1, end - address - 1);
      colon = end[1] == ':' ? end + 1 : NULL;
      if (end[1] != '\0' && end[1] != ':')
        {
          g_clear_pointer (host, g_free);
          return invalid (error, address, _("junk after the IPv6 address"));
        }
    }
  else
    {
      colon = strrchr (address, ':');
      if (colon == address || *address == '\0')
        return invalid (error, address, _("no host"));
      *host = colon ? g_strndup (address, colon - address) : g_strdup (address);
    }
  if (colon != NULL && !g_ascii_string_to_unsigned (colon + 1, 10, 1, 65535, &p, NULL))
    {
      g_clear_pointer (host, g_free);
      return invalid (error, address, _("bad port"));
    }
  *port = (guint16) p;
  return TRUE;
}
