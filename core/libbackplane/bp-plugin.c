/* bp-plugin.c: discovery and loading of backend plugins
 *
 * A plugin is a backend *type*: a keyfile NAME.plugin
 *
 *   [Plugin]
 *   Module=bp-system            # → libbp-system.so beside the keyfile
 *   Name=System
 *   Description=…
 *   X-Backplane-Abi=1
 *   X-Backplane-Backend-Type=system
 *
 * plus a shared module exporting exactly one symbol, bp_plugin_register().
 * Keyfiles are read at start-up; a module is opened only when a configured
 * backend needs its type. Every failure — unreadable keyfile, missing key,
 * wrong ABI, duplicate backend type, missing module, missing symbol, a
 * register function that registers nothing or a non-BpBackend type — is a
 * GError kept on the BpPlugin (shown in Manager.Plugins), never just a
 * warning, and never stops the other plugins.
 *
 * Modules are made resident: GTypes registered statically cannot be
 * unregistered, so a module is never unloaded.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>
#include <gmodule.h>

#include "bp-backend.h"
#include "bp-error.h"
#include "bp-plugin.h"

struct _BpPlugin
{
  GObject    parent_instance;

  char      *file;          /* (owned) */
  char      *id;            /* (owned) */
  char      *name;          /* (owned) */
  char      *description;   /* (owned) */
  char      *module_path;   /* (owned) */
  char      *backend_type;  /* (owned) */
  GError    *error;         /* (owned) (nullable) */
  GModule   *module;        /* (owned) (nullable) */
  GType      backend_gtype;
  GPtrArray *interface_xml; /* (owned) (element-type utf8), NULL-terminated */
  gboolean   registering;
};

G_DEFINE_FINAL_TYPE (BpPlugin, bp_plugin, G_TYPE_OBJECT)

static void
bp_plugin_finalize (GObject *object)
{
  BpPlugin *self = BP_PLUGIN (object);

  g_clear_pointer (&self->file, g_free);
  g_clear_pointer (&self->id, g_free);
  g_clear_pointer (&self->name, g_free);
  g_clear_pointer (&self->description, g_free);
  g_clear_pointer (&self->module_path, g_free);
  g_clear_pointer (&self->backend_type, g_free);
  g_clear_error (&self->error);
  g_clear_pointer (&self->interface_xml, g_ptr_array_unref);
  /* The module stays resident; dropping the handle does not unload it. */
  g_clear_pointer (&self->module, g_module_close);

  G_OBJECT_CLASS (bp_plugin_parent_class)->finalize (object);
}

static void
bp_plugin_class_init (BpPluginClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bp_plugin_finalize;
}

static void
bp_plugin_init (BpPlugin *self)
{
  self->interface_xml = g_ptr_array_new_null_terminated (0, g_free, TRUE);
}

/**
 * bp_plugin_get_search_path:
 *
 * The directories searched for `*.plugin` files, in order:
 * `$BACKPLANE_PLUGIN_PATH` (colon-separated), the build tree when the
 * running program lives in it, then the installed plugin directory.
 *
 * Returns: (transfer full): the directories
 */
char **
bp_plugin_get_search_path (void)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_autofree char *exe = g_file_read_link ("/proc/self/exe", NULL);
  const char *env = g_getenv ("BACKPLANE_PLUGIN_PATH");

  if (env != NULL && env[0] != '\0')
    {
      g_auto(GStrv) parts = g_strsplit (env, G_SEARCHPATH_SEPARATOR_S, -1);

      for (guint i = 0; parts[i] != NULL; i++)
        if (parts[i][0] != '\0')
          g_strv_builder_add (builder, parts[i]);
    }
  if (exe != NULL && g_str_has_prefix (exe, BP_BUILD_ROOT "/"))
    g_strv_builder_add (builder, BP_BUILD_PLUGINDIR);
  g_strv_builder_add (builder, BP_PLUGINDIR);
  return g_strv_builder_end (builder);
}

static char *
dup_required (GKeyFile    *kf,
              const char  *key,
              const char  *path,
              GError     **error)
{
  g_autofree char *value = g_key_file_get_string (kf, "Plugin", key, NULL);

  if (value == NULL || g_strstrip (value)[0] == '\0')
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("%s: [Plugin] %s= is missing"), path, key);
      return NULL;
    }
  return g_steal_pointer (&value);
}

/**
 * bp_plugin_new_for_file:
 * @path: a `.plugin` keyfile
 * @error: return location for a #GError
 *
 * Parses @path. A file that cannot be read at all yields %NULL; a file with
 * bad content yields a #BpPlugin carrying the error (so it can be listed).
 *
 * Returns: (transfer full) (nullable): the plugin description
 */
BpPlugin *
bp_plugin_new_for_file (const char  *path,
                        GError     **error)
{
  g_autoptr(BpPlugin) self = NULL;
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autoptr(GError) local_error = NULL;
  g_autofree char *basename = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *module = NULL;
  g_autofree char *abi = NULL;
  char *dot;

  g_return_val_if_fail (path != NULL, NULL);

  self = g_object_new (BP_TYPE_PLUGIN, NULL);
  self->file = g_strdup (path);
  basename = g_path_get_basename (path);
  dot = strrchr (basename, '.');
  if (dot != NULL)
    *dot = '\0';
  self->id = g_strdup (basename);
  self->name = g_strdup (basename);
  self->description = g_strdup ("");
  self->module_path = g_strdup ("");
  self->backend_type = g_strdup ("");

  if (!g_key_file_load_from_file (kf, path, G_KEY_FILE_NONE, &local_error))
    {
      g_set_error (&self->error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("%s: %s"), path, local_error->message);
      return g_steal_pointer (&self);
    }
  if ((module = dup_required (kf, "Module", path, &self->error)) == NULL)
    return g_steal_pointer (&self);
  g_free (self->name);
  if ((self->name = dup_required (kf, "Name", path, &self->error)) == NULL)
    {
      self->name = g_strdup (self->id);
      return g_steal_pointer (&self);
    }
  g_free (self->description);
  self->description = g_key_file_get_locale_string (kf, "Plugin", "Description", NULL, NULL);
  if (self->description == NULL)
    self->description = g_strdup ("");
  g_free (self->backend_type);
  if ((self->backend_type = dup_required (kf, "X-Backplane-Backend-Type", path, &self->error)) == NULL)
    {
      self->backend_type = g_strdup ("");
      return g_steal_pointer (&self);
    }
  if ((abi = dup_required (kf, "X-Backplane-Abi", path, &self->error)) == NULL)
    return g_steal_pointer (&self);
  if (!g_str_equal (abi, G_STRINGIFY (BP_ABI)))
    {
      g_set_error (&self->error, BP_ERROR, BP_ERROR_FAILED,
                   _("%s: plugin ABI %s is not supported (this daemon speaks ABI %d)"),
                   path, abi, BP_ABI);
      return g_steal_pointer (&self);
    }
  if (strchr (module, '/') != NULL)
    {
      g_set_error (&self->error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("%s: Module= must be a plain name, not a path"), path);
      return g_steal_pointer (&self);
    }
  dir = g_path_get_dirname (path);
  g_free (self->module_path);
  self->module_path = g_strdup_printf ("%s/lib%s.so", dir, module);
  return g_steal_pointer (&self);
}

static void
scan_dir (const char *dir,
          GPtrArray  *files,
          guint       depth)
{
  g_autoptr(GDir) d = g_dir_open (dir, 0, NULL);
  const char *entry;

  if (d == NULL)
    return;
  while ((entry = g_dir_read_name (d)) != NULL)
    {
      g_autofree char *path = g_build_filename (dir, entry, NULL);

      if (g_str_has_suffix (entry, ".plugin") && g_file_test (path, G_FILE_TEST_IS_REGULAR))
        g_ptr_array_add (files, g_steal_pointer (&path));
      else if (depth == 0 && g_file_test (path, G_FILE_TEST_IS_DIR))
        scan_dir (path, files, depth + 1);
    }
}

static int
compare_paths (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

/**
 * bp_plugin_discover:
 * @search_path: (nullable) (array zero-terminated=1): directories, or %NULL
 *   for bp_plugin_get_search_path()
 *
 * Reads every `*.plugin` in each directory and its direct subdirectories.
 * Earlier directories win for a plugin id; a second plugin claiming a
 * backend type already claimed gets a "duplicate type" error.
 *
 * Returns: (transfer full) (element-type BpPlugin): the plugins found
 */
GPtrArray *
bp_plugin_discover (const char * const *search_path)
{
  g_auto(GStrv) default_path = NULL;
  g_autoptr(GHashTable) ids = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr(GHashTable) types = g_hash_table_new (g_str_hash, g_str_equal);
  GPtrArray *plugins = g_ptr_array_new_with_free_func (g_object_unref);

  if (search_path == NULL)
    search_path = (const char * const *) (default_path = bp_plugin_get_search_path ());

  for (guint i = 0; search_path[i] != NULL; i++)
    {
      g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func (g_free);

      scan_dir (search_path[i], files, 0);
      g_ptr_array_sort (files, compare_paths);
      for (guint j = 0; j < files->len; j++)
        {
          BpPlugin *plugin = bp_plugin_new_for_file (g_ptr_array_index (files, j), NULL);
          BpPlugin *other;

          if (plugin == NULL)
            continue;
          if (g_hash_table_contains (ids, plugin->id))
            {
              g_debug ("plugin %s: %s shadowed by an earlier directory", plugin->id, plugin->file);
              g_object_unref (plugin);
              continue;
            }
          g_hash_table_add (ids, plugin->id);
          if (plugin->error == NULL &&
              (other = g_hash_table_lookup (types, plugin->backend_type)) != NULL)
            g_set_error (&plugin->error, BP_ERROR, BP_ERROR_FAILED,
                         _("%s: duplicate backend type “%s”, already provided by %s"),
                         plugin->file, plugin->backend_type, other->file);
          else if (plugin->error == NULL)
            g_hash_table_insert (types, plugin->backend_type, plugin);
          g_ptr_array_add (plugins, plugin);
        }
    }
  return plugins;
}

const char *
bp_plugin_get_id (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->id;
}

const char *
bp_plugin_get_name (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->name;
}

const char *
bp_plugin_get_description (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->description;
}

const char *
bp_plugin_get_module_path (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->module_path;
}

const char *
bp_plugin_get_backend_type (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->backend_type;
}

const char *
bp_plugin_get_file (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->file;
}

gboolean
bp_plugin_is_loaded (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), FALSE);
  return self->backend_gtype != G_TYPE_INVALID;
}

/**
 * bp_plugin_get_error:
 * @self: a #BpPlugin
 *
 * Returns: (transfer none) (nullable): why the plugin cannot be used
 */
const GError *
bp_plugin_get_error (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->error;
}

void
bp_plugin_set_error (BpPlugin     *self,
                     const GError *error)
{
  g_return_if_fail (BP_IS_PLUGIN (self));

  g_clear_error (&self->error);
  if (error != NULL)
    self->error = g_error_copy (error);
}

/**
 * bp_plugin_load:
 * @self: a #BpPlugin
 * @error: return location for a #GError
 *
 * Opens the module and calls its bp_plugin_register(). Idempotent: a loaded
 * plugin returns %TRUE, a failed one returns its error again.
 *
 * Returns: %TRUE when the backend type is registered
 */
gboolean
bp_plugin_load (BpPlugin  *self,
                GError   **error)
{
  BpPluginRegisterFunc reg = NULL;

  g_return_val_if_fail (BP_IS_PLUGIN (self), FALSE);

  if (self->backend_gtype != G_TYPE_INVALID)
    return TRUE;
  if (self->error != NULL)
    {
      g_propagate_error (error, g_error_copy (self->error));
      return FALSE;
    }
  if (!g_file_test (self->module_path, G_FILE_TEST_EXISTS))
    {
      g_set_error (&self->error, BP_ERROR, BP_ERROR_NOT_FOUND,
                   _("%s: module %s does not exist"), self->file, self->module_path);
      g_propagate_error (error, g_error_copy (self->error));
      return FALSE;
    }
  self->module = g_module_open (self->module_path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
  if (self->module == NULL)
    {
      g_set_error (&self->error, BP_ERROR, BP_ERROR_FAILED,
                   _("%s: cannot open module: %s"), self->file, g_module_error ());
      g_propagate_error (error, g_error_copy (self->error));
      return FALSE;
    }
  if (!g_module_symbol (self->module, "bp_plugin_register", (gpointer *) &reg) || reg == NULL)
    {
      g_set_error (&self->error, BP_ERROR, BP_ERROR_FAILED,
                   _("%s: %s does not export bp_plugin_register()"), self->file, self->module_path);
      g_clear_pointer (&self->module, g_module_close);
      g_propagate_error (error, g_error_copy (self->error));
      return FALSE;
    }
  g_module_make_resident (self->module);
  self->registering = TRUE;
  reg (self);
  self->registering = FALSE;
  if (self->error == NULL && self->backend_gtype == G_TYPE_INVALID)
    g_set_error (&self->error, BP_ERROR, BP_ERROR_FAILED,
                 _("%s: bp_plugin_register() registered no backend type"), self->file);
  if (self->error != NULL)
    {
      self->backend_gtype = G_TYPE_INVALID;
      g_propagate_error (error, g_error_copy (self->error));
      return FALSE;
    }
  return TRUE;
}

GType
bp_plugin_get_backend_gtype (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), G_TYPE_INVALID);
  return self->backend_gtype;
}

/**
 * bp_plugin_get_interface_xml:
 * @self: a #BpPlugin
 *
 * Returns: (transfer none) (array zero-terminated=1): the interface XML
 *   documents the plugin added
 */
const char * const *
bp_plugin_get_interface_xml (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return (const char * const *) self->interface_xml->pdata;
}

/**
 * bp_plugin_to_variant:
 * @self: a #BpPlugin
 *
 * Returns: (transfer floating): the `a{sv}` of Manager.Plugins
 */
GVariant *
bp_plugin_to_variant (BpPlugin *self)
{
  GVariantBuilder b;

  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "name", g_variant_new_string (self->name));
  g_variant_builder_add (&b, "{sv}", "description", g_variant_new_string (self->description));
  g_variant_builder_add (&b, "{sv}", "module", g_variant_new_string (self->module_path));
  g_variant_builder_add (&b, "{sv}", "type", g_variant_new_string (self->backend_type));
  g_variant_builder_add (&b, "{sv}", "file", g_variant_new_string (self->file));
  g_variant_builder_add (&b, "{sv}", "loaded", g_variant_new_boolean (bp_plugin_is_loaded (self)));
  g_variant_builder_add (&b, "{sv}", "error",
                         g_variant_new_string (self->error != NULL ? self->error->message : ""));
  return g_variant_builder_end (&b);
}

/**
 * bp_plugin_add_backend_type:
 * @self: the plugin being registered
 * @backend_type: a #GType derived from #BpBackend
 *
 * Declares the backend class of this plugin. Only valid inside
 * bp_plugin_register(); a type that is not a #BpBackend, or a second type,
 * becomes the plugin's load error.
 */
void
bp_plugin_add_backend_type (BpPlugin *self,
                            GType     backend_type)
{
  g_return_if_fail (BP_IS_PLUGIN (self));
  g_return_if_fail (self->registering);

  if (self->error != NULL)
    return;
  if (!g_type_is_a (backend_type, BP_TYPE_BACKEND) || G_TYPE_IS_ABSTRACT (backend_type))
    g_set_error (&self->error, BP_ERROR, BP_ERROR_FAILED,
                 _("%s: registered type %s is not a concrete BpBackend"),
                 self->file, g_type_name (backend_type));
  else if (self->backend_gtype != G_TYPE_INVALID)
    g_set_error (&self->error, BP_ERROR, BP_ERROR_FAILED,
                 _("%s: registered a second backend type %s"), self->file, g_type_name (backend_type));
  else
    self->backend_gtype = backend_type;
}

/**
 * bp_plugin_add_interface_xml:
 * @self: the plugin being registered
 * @xml: a D-Bus introspection document of the plugin's interfaces, with
 *   doc annotations; served on Introspect
 */
void
bp_plugin_add_interface_xml (BpPlugin   *self,
                             const char *xml)
{
  g_return_if_fail (BP_IS_PLUGIN (self));
  g_return_if_fail (xml != NULL);

  g_ptr_array_add (self->interface_xml, g_strdup (xml));
}
