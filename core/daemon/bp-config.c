/* bp-config.c: backplane.conf, read into the daemon's view of it
 *
 * The file is a GKeyFile: an optional [daemon] group and one
 * [backend NAME] group per backend. A syntax error, an unknown group or an
 * unknown [daemon] key makes the whole file invalid (start-up fails, a reload
 * keeps the running set). Problems inside one backend's group are that
 * backend's alone: the daemon still starts the others and shows the error in
 * the backend's StateReason.
 *
 * Read once at start-up and on SIGHUP/Reload, before any backend work is
 * scheduled; the file is small and local.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "bp-config.h"

#define BACKEND_PREFIX "backend "

static void
backend_config_free (BpBackendConfig *bc)
{
  g_free (bc->name);
  g_free (bc->group);
  g_free (bc->type);
  g_free (bc->digest);
  g_free (bc);
}

void
bp_config_free (BpConfig *config)
{
  if (config == NULL)
    return;
  g_clear_pointer (&config->key_file, g_key_file_unref);
  g_clear_pointer (&config->backends, g_ptr_array_unref);
  g_free (config->source);
  g_free (config->dead_letters_path);
  g_free (config);
}

/**
 * bp_config_default_path:
 *
 * Returns: (transfer full): `$XDG_CONFIG_HOME/backplane/backplane.conf`
 */
char *
bp_config_default_path (void)
{
  return g_build_filename (g_get_user_config_dir (), "backplane", "backplane.conf", NULL);
}

static gboolean
valid_backend_name (const char *name)
{
  if (name[0] == '\0' || strlen (name) > 64)
    return FALSE;
  for (const char *p = name; *p; p++)
    if (!g_ascii_isalnum (*p) && *p != '_' && *p != '-')
      return FALSE;
  return TRUE;
}

static int
compare_str_ptr (const void *a,
                 const void *b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

static char *
group_digest (GKeyFile   *kf,
              const char *group)
{
  g_auto(GStrv) keys = g_key_file_get_keys (kf, group, NULL, NULL);
  GString *s = g_string_new (NULL);

  /* Sorted, so that reordering keys is not a change. */
  if (keys != NULL)
    qsort (keys, g_strv_length (keys), sizeof (char *), compare_str_ptr);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    {
      g_autofree char *v = g_key_file_get_value (kf, group, keys[i], NULL);
      g_string_append_printf (s, "%s=%s\n", keys[i], v ? v : "");
    }
  return g_string_free (s, FALSE);
}

static gboolean
read_daemon_group (BpConfig  *config,
                   GError   **error)
{
  g_autoptr(BpConfigSection) s = bp_config_section_new (config->key_file, "daemon");

  if (!g_key_file_has_group (config->key_file, "daemon"))
    {
      config->grace_period_ms = 5000;
      config->start_timeout_ms = 2000;
      return TRUE;
    }
  config->dead_letters_path = bp_config_section_get_string (s, "dead-letters", NULL);
  return bp_config_section_get_uint (s, "grace-period-ms", 5000, 0, 600000, &config->grace_period_ms, error) &&
         bp_config_section_get_uint (s, "start-timeout-ms", 2000, 0, 600000, &config->start_timeout_ms, error) &&
         bp_config_section_check_unused (s, error);
}

/**
 * bp_config_load_data:
 * @data: the configuration text
 * @source: where it came from, for messages
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the configuration
 */
BpConfig *
bp_config_load_data (const char  *data,
                     const char  *source,
                     GError     **error)
{
  g_autoptr(BpConfig) config = g_new0 (BpConfig, 1);
  g_autoptr(GError) local_error = NULL;
  g_auto(GStrv) groups = NULL;

  config->key_file = g_key_file_new ();
  config->source = g_strdup (source);
  config->backends = g_ptr_array_new_with_free_func ((GDestroyNotify) backend_config_free);

  if (!g_key_file_load_from_data (config->key_file, data, -1, G_KEY_FILE_NONE, &local_error))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "%s: %s", source, local_error->message);
      return NULL;
    }
  if (!read_daemon_group (config, &local_error))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "%s: %s", source, local_error->message);
      return NULL;
    }
  groups = g_key_file_get_groups (config->key_file, NULL);
  for (guint i = 0; groups[i] != NULL; i++)
    {
      BpBackendConfig *bc;
      g_autofree char *enabled = NULL;
      const char *name;

      if (g_str_equal (groups[i], "daemon"))
        continue;
      if (!g_str_has_prefix (groups[i], BACKEND_PREFIX))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       _("%s: unknown group [%s] (expected [daemon] or [backend NAME])"),
                       source, groups[i]);
          return NULL;
        }
      name = groups[i] + strlen (BACKEND_PREFIX);
      if (!valid_backend_name (name))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       _("%s: [%s]: a backend name is 1 to 64 letters, digits, “-” or “_”"),
                       source, groups[i]);
          return NULL;
        }
      for (guint j = 0; j < config->backends->len; j++)
        if (g_str_equal (((BpBackendConfig *) g_ptr_array_index (config->backends, j))->name, name))
          {
            g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                         _("%s: backend “%s” is defined twice"), source, name);
            return NULL;
          }
      bc = g_new0 (BpBackendConfig, 1);
      bc->name = g_strdup (name);
      bc->group = g_strdup (groups[i]);
      bc->type = g_key_file_get_string (config->key_file, groups[i], "type", NULL);
      if (bc->type != NULL)
        g_strstrip (bc->type);
      enabled = g_key_file_get_string (config->key_file, groups[i], "enabled", NULL);
      bc->enabled = enabled == NULL || g_ascii_strcasecmp (g_strstrip (enabled), "false") != 0;
      bc->digest = group_digest (config->key_file, groups[i]);
      g_ptr_array_add (config->backends, bc);
    }
  return g_steal_pointer (&config);
}

/**
 * bp_config_load:
 * @path: (nullable): a file; %NULL for the default path, falling back to
 *   the embedded default when that does not exist
 * @error: return location for a #GError
 *
 * Returns: (transfer full) (nullable): the configuration
 */
BpConfig *
bp_config_load (const char  *path,
                GError     **error)
{
  g_autofree char *default_path = NULL;
  g_autofree char *contents = NULL;
  g_autoptr(GError) local_error = NULL;
  BpConfig *config;

  if (path == NULL)
    {
      default_path = bp_config_default_path ();
      if (g_file_test (default_path, G_FILE_TEST_EXISTS))
        path = default_path;
    }
  if (path == NULL)
    {
      g_autoptr(GBytes) bytes = g_resources_lookup_data ("/org/backplane/Backplane1/default.conf",
                                                         G_RESOURCE_LOOKUP_FLAGS_NONE, error);
      if (bytes == NULL)
        return NULL;
      config = bp_config_load_data (g_bytes_get_data (bytes, NULL), _("embedded default configuration"), error);
      if (config != NULL)
        config->is_default = TRUE;
      return config;
    }
  if (!g_file_get_contents (path, &contents, NULL, &local_error))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, "%s", local_error->message);
      return NULL;
    }
  return bp_config_load_data (contents, path, error);
}
