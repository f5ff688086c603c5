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

/* meson's bp_abi (config.h, pkg-config's `abi`) and the public header agree. */
G_STATIC_ASSERT (BP_ABI == BP_ABI_VERSION);

/**
 * BpPlugin:
 *
 * A backend plugin: one backend *type*, described by a keyfile
 * `NAME.plugin` and implemented by a shared module beside it.
 *
 * ```ini
 * [Plugin]
 * # the module is libbp-echo.so, in the same directory
 * Module=bp-echo
 * Name=Echo
 * Description=Echoes text
 * # must equal BP_ABI_VERSION
 * X-Backplane-Abi=1
 * # selected by type=echo in a [backend NAME] group
 * X-Backplane-Backend-Type=echo
 * ```
 *
 * The daemon finds keyfiles with [func@Bp.Plugin.discover] at start-up and
 * opens a module with [method@Bp.Plugin.load] only when a configured
 * backend needs its type. The module exports one symbol,
 * `bp_plugin_register` (a [callback@Bp.PluginRegisterFunc]), which calls
 * [method@Bp.Plugin.add_backend_type] with its [class@Bp.Backend]
 * subclass and may add D-Bus interface XML with
 * [method@Bp.Plugin.add_interface_xml]:
 *
 * ```c
 * G_MODULE_EXPORT void bp_plugin_register (BpPlugin *plugin);
 *
 * void
 * bp_plugin_register (BpPlugin *plugin)
 * {
 *   bp_plugin_add_interface_xml (plugin, echo_interface_xml);
 *   bp_plugin_add_backend_type (plugin, BP_TYPE_ECHO_BACKEND);
 * }
 * ```
 *
 * Every failure (unreadable keyfile, missing key, wrong ABI, duplicate
 * backend type, missing module or symbol, a register function that
 * registers nothing or no concrete #BpBackend) is a #GError in %BP_ERROR
 * kept on the plugin ([method@Bp.Plugin.get_error], shown in
 * Manager.Plugins); it never stops the other plugins. Modules are made
 * resident and never unloaded, since their types cannot be unregistered.
 *
 * Used on the main context only.
 */
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
 * Gets the directories searched for `*.plugin` files, in order:
 * `$BACKPLANE_PLUGIN_PATH` (colon-separated; empty elements are skipped),
 * the build tree's `plugins` directory when the running program lives in
 * the build tree, then the installed plugin directory.
 *
 * Returns: (transfer full) (array zero-terminated=1): the directories
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
 * @error: return location for a #GError; currently never set
 *
 * Parses @path. The plugin's id is the file's base name without the
 * extension. The module path is `lib<Module>.so` in the keyfile's
 * directory; nothing is opened yet.
 *
 * A file that cannot be read or parsed, a missing `Module`, `Name`,
 * `X-Backplane-Backend-Type` or `X-Backplane-Abi` key, or a `Module` that
 * contains a `/` gives a plugin whose [method@Bp.Plugin.get_error] is a
 * %BP_ERROR_INVALID_ARGUMENT; an `X-Backplane-Abi` other than
 * %BP_ABI_VERSION gives %BP_ERROR_FAILED. Such a plugin can still be
 * listed, but not loaded.
 *
 * Returns: (transfer full) (nullable): the plugin description, carrying
 *   the error if the file is bad
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
  if (!g_str_equal (abi, G_STRINGIFY (BP_ABI_VERSION)))
    {
      g_set_error (&self->error, BP_ERROR, BP_ERROR_FAILED,
                   _("%s: plugin ABI %s is not supported (this daemon speaks ABI %d)"),
                   path, abi, BP_ABI_VERSION);
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
 * Reads every `*.plugin` in each directory and its direct subdirectories
 * with [ctor@Bp.Plugin.new_for_file], in path order within a directory.
 * Missing directories are skipped. Earlier directories win for a plugin id
 * (a later file with the same id is dropped); a plugin claiming a backend
 * type that an earlier valid plugin already claimed gets a
 * %BP_ERROR_FAILED "duplicate backend type" error. No module is opened.
 *
 * Returns: (transfer full) (element-type BpPlugin): the plugins found,
 *   including those carrying an error
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

/**
 * bp_plugin_get_id:
 * @self: a #BpPlugin
 *
 * Gets the plugin's id: the keyfile's base name without `.plugin`.
 *
 * Returns: (transfer none): the id
 */
const char *
bp_plugin_get_id (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->id;
}

/**
 * bp_plugin_get_name:
 * @self: a #BpPlugin
 *
 * Gets the `Name=` of the keyfile (the id while it is missing).
 *
 * Returns: (transfer none): the human-readable name
 */
const char *
bp_plugin_get_name (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->name;
}

/**
 * bp_plugin_get_description:
 * @self: a #BpPlugin
 *
 * Gets the `Description=` of the keyfile, localized.
 *
 * Returns: (transfer none): the description, empty when there is none
 */
const char *
bp_plugin_get_description (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->description;
}

/**
 * bp_plugin_get_module_path:
 * @self: a #BpPlugin
 *
 * Gets the path of the shared module, `lib<Module>.so` in the
 * keyfile's directory.
 *
 * Returns: (transfer none): the module path, empty when the keyfile is bad
 */
const char *
bp_plugin_get_module_path (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->module_path;
}

/**
 * bp_plugin_get_backend_type:
 * @self: a #BpPlugin
 *
 * Gets the `X-Backplane-Backend-Type=` of the keyfile: the value of
 * `type=` in a `[backend NAME]` group that selects this plugin.
 *
 * Returns: (transfer none): the backend type, empty when the keyfile is bad
 */
const char *
bp_plugin_get_backend_type (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->backend_type;
}

/**
 * bp_plugin_get_file:
 * @self: a #BpPlugin
 *
 * Gets the path of the `.plugin` keyfile.
 *
 * Returns: (transfer none): the keyfile path
 */
const char *
bp_plugin_get_file (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->file;
}

/**
 * bp_plugin_is_loaded:
 * @self: a #BpPlugin
 *
 * Checks whether [method@Bp.Plugin.load] has succeeded, so that
 * [method@Bp.Plugin.get_backend_gtype] is valid.
 *
 * Returns: %TRUE if the module is loaded and its backend type registered
 */
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
 * Gets the error that makes the plugin unusable: from parsing its keyfile,
 * from discovery, from [method@Bp.Plugin.load] or from
 * [method@Bp.Plugin.set_error]. It is in the %BP_ERROR domain and its
 * message names the keyfile.
 *
 * Returns: (transfer none) (nullable): why the plugin cannot be used, or
 *   %NULL
 */
const GError *
bp_plugin_get_error (BpPlugin *self)
{
  g_return_val_if_fail (BP_IS_PLUGIN (self), NULL);
  return self->error;
}

/**
 * bp_plugin_set_error:
 * @self: a #BpPlugin
 * @error: (nullable): the error to keep (copied), or %NULL to clear it
 *
 * Replaces the plugin's error. A plugin with an error is not loaded by
 * [method@Bp.Plugin.load] (which returns the error instead) and shows the
 * message in Manager.Plugins. It does not unload an already loaded
 * plugin.
 */
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
 * Opens the module (resident, never unloaded) and calls its
 * `bp_plugin_register` function, which must register exactly one concrete
 * [class@Bp.Backend] subclass. Idempotent: a loaded plugin returns %TRUE,
 * a plugin with an error returns a copy of that error again without
 * trying.
 *
 * A missing module fails with %BP_ERROR_NOT_FOUND; a module that cannot be
 * opened, lacks the symbol or registers no (or a wrong) type fails with
 * %BP_ERROR_FAILED. The error is also kept as [method@Bp.Plugin.get_error].
 * Runs the plugin's code on the calling thread (the main context).
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

/**
 * bp_plugin_get_backend_gtype:
 * @self: a #BpPlugin
 *
 * Gets the [class@Bp.Backend] subclass that the plugin registered; the
 * daemon instantiates it once per configured backend of this type.
 *
 * Returns: the backend #GType, or %G_TYPE_INVALID while the plugin is not
 *   loaded
 */
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
 * Gets the D-Bus introspection documents added with
 * [method@Bp.Plugin.add_interface_xml], in the order they were added.
 *
 * Returns: (transfer none) (array zero-terminated=1): the interface XML
 *   documents the plugin added; empty before it is loaded
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
 * Describes the plugin as one element of the Manager.Plugins property:
 * `name` s, `description` s, `module` s (the module path), `type` s (the
 * backend type), `file` s (the keyfile), `loaded` b and `error` s (the
 * error message, empty when there is none).
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
 * Declares the backend class of this plugin. Only valid inside the
 * module's `bp_plugin_register` function (otherwise a critical warning is
 * emitted and nothing happens). A type that is not a concrete (non-abstract)
 * [class@Bp.Backend] subclass, or a second type, becomes the plugin's
 * %BP_ERROR_FAILED load error.
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
 *   doc annotations (copied)
 *
 * Adds the introspection XML of the plugin's typed interfaces. Whenever
 * the daemon creates a backend of this type it passes the XML to
 * [method@Bp.Host.add_interface_xml], which serves it, documentation
 * included, on Introspect; XML that does not parse leaves that backend
 * `unavailable`, not started. Call it from the module's
 * `bp_plugin_register` function.
 */
void
bp_plugin_add_interface_xml (BpPlugin   *self,
                             const char *xml)
{
  g_return_if_fail (BP_IS_PLUGIN (self));
  g_return_if_fail (xml != NULL);

  g_ptr_array_add (self->interface_xml, g_strdup (xml));
}
