/* bp-config-section.c: typed, validated access to one `[backend NAME]` group
 *
 * A backend reads its keys through a BpConfigSection. Every read marks the
 * key as known; bp_config_section_check_unused() then reports the first key
 * nobody asked for, so a typo in backplane.conf is an error naming the key
 * instead of a silently ignored setting. Errors are BP_ERROR_INVALID_ARGUMENT
 * and name the group and the key.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp-config-section.h"
#include "bp-error.h"

/**
 * BpConfigSection:
 *
 * Typed, validated access to one group of `backplane.conf`, e.g.
 * `[backend main]`. The daemon creates one per backend and passes it to
 * [method@Bp.Backend.configure], which hands it to the subclass's
 * [vfunc@Bp.Backend.configure].
 *
 * Every read marks its key as known, whether or not the key is set;
 * [method@Bp.ConfigSection.check_unused] then reports the first key that
 * nobody asked for, so a typo in the file is an error naming the key
 * instead of a silently ignored setting. Read every key your backend
 * supports, even those you only need in some modes.
 *
 * The typed getters validate the value and its range; their errors are
 * %BP_ERROR_INVALID_ARGUMENT with a message that starts with `[GROUP]`
 * and names the key and the bad value. Values have surrounding white
 * space removed. Secrets are read with
 * [method@Bp.ConfigSection.get_secret] only.
 *
 * Not thread-safe; it is used on the main context while the configuration
 * is (re)loaded.
 */
struct _BpConfigSection
{
  GObject     parent_instance;

  GKeyFile   *key_file;  /* (owned) */
  char       *group;     /* (owned) */
  GHashTable *known;     /* (owned) set of key names read so far */
};

G_DEFINE_FINAL_TYPE (BpConfigSection, bp_config_section, G_TYPE_OBJECT)

static void
bp_config_section_finalize (GObject *object)
{
  BpConfigSection *self = BP_CONFIG_SECTION (object);

  g_clear_pointer (&self->key_file, g_key_file_unref);
  g_clear_pointer (&self->group, g_free);
  g_clear_pointer (&self->known, g_hash_table_unref);

  G_OBJECT_CLASS (bp_config_section_parent_class)->finalize (object);
}

static void
bp_config_section_class_init (BpConfigSectionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bp_config_section_finalize;
}

static void
bp_config_section_init (BpConfigSection *self)
{
  self->known = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

/**
 * bp_config_section_new:
 * @key_file: the parsed configuration; a reference is kept
 * @group: the group name, e.g. `backend main`
 *
 * Creates a reader for @group of @key_file. The group need not exist: a
 * missing group reads as a group without keys.
 *
 * Returns: (transfer full): a new section reader
 */
BpConfigSection *
bp_config_section_new (GKeyFile   *key_file,
                       const char *group)
{
  BpConfigSection *self;

  g_return_val_if_fail (key_file != NULL, NULL);
  g_return_val_if_fail (group != NULL, NULL);

  self = g_object_new (BP_TYPE_CONFIG_SECTION, NULL);
  self->key_file = g_key_file_ref (key_file);
  self->group = g_strdup (group);
  return self;
}

/**
 * bp_config_section_get_group:
 * @self: a #BpConfigSection
 *
 * Gets the name of the group this section reads, as used in error
 * messages (`[backend main]` shows as `backend main`).
 *
 * Returns: (transfer none): the group name
 */
const char *
bp_config_section_get_group (BpConfigSection *self)
{
  g_return_val_if_fail (BP_IS_CONFIG_SECTION (self), NULL);
  return self->group;
}

static void
mark (BpConfigSection *self,
      const char      *key)
{
  if (!g_hash_table_contains (self->known, key))
    g_hash_table_add (self->known, g_strdup (key));
}

/**
 * bp_config_section_has_key:
 * @self: a #BpConfigSection
 * @key: a key name
 *
 * Checks whether @key is set in the group, and marks it as known, so use
 * it also to accept a key you read in some other way.
 *
 * Returns: %TRUE if @key is set (even to an empty value)
 */
gboolean
bp_config_section_has_key (BpConfigSection *self,
                           const char      *key)
{
  g_return_val_if_fail (BP_IS_CONFIG_SECTION (self), FALSE);

  mark (self, key);
  return g_key_file_has_key (self->key_file, self->group, key, NULL);
}

/**
 * bp_config_section_get_string:
 * @self: a #BpConfigSection
 * @key: a key name
 * @default_value: (nullable): returned when the key is absent
 *
 * Reads @key as a string, with the #GKeyFile escapes (`\n`, `\s`, …)
 * decoded, and marks it as known. A key set to an empty value gives an
 * empty string, not @default_value.
 *
 * Returns: (transfer full) (nullable): the value with surrounding white space
 *   removed, or a copy of @default_value (%NULL if that is %NULL)
 */
char *
bp_config_section_get_string (BpConfigSection *self,
                              const char      *key,
                              const char      *default_value)
{
  char *value;

  g_return_val_if_fail (BP_IS_CONFIG_SECTION (self), NULL);

  mark (self, key);
  value = g_key_file_get_string (self->key_file, self->group, key, NULL);
  if (value == NULL)
    return g_strdup (default_value);
  return g_strstrip (value);
}

/**
 * bp_config_section_get_strv:
 * @self: a #BpConfigSection
 * @key: a key name
 *
 * Reads a `;`-separated list and marks @key as known. Elements have
 * surrounding white space removed; empty elements are dropped.
 *
 * Returns: (transfer full) (array zero-terminated=1): the list, empty (not
 *   %NULL) when the key is absent
 */
char **
bp_config_section_get_strv (BpConfigSection *self,
                            const char      *key)
{
  g_auto(GStrv) raw = NULL;
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  g_return_val_if_fail (BP_IS_CONFIG_SECTION (self), NULL);

  mark (self, key);
  raw = g_key_file_get_string_list (self->key_file, self->group, key, NULL, NULL);
  for (guint i = 0; raw != NULL && raw[i] != NULL; i++)
    {
      g_strstrip (raw[i]);
      if (raw[i][0] != '\0')
        g_strv_builder_add (builder, raw[i]);
    }
  return g_strv_builder_end (builder);
}

/**
 * bp_config_section_get_boolean:
 * @self: a #BpConfigSection
 * @key: a key name
 * @default_value: used when the key is absent
 * @out_value: (out): the value
 * @error: return location for a #GError
 *
 * Reads @key as a boolean and marks it as known. Accepted are `true`,
 * `yes` and `1`, and `false`, `no` and `0`, the words in any case.
 * Anything else fails with %BP_ERROR_INVALID_ARGUMENT, leaving @out_value
 * untouched.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_config_section_get_boolean (BpConfigSection  *self,
                               const char       *key,
                               gboolean          default_value,
                               gboolean         *out_value,
                               GError          **error)
{
  g_autofree char *value = NULL;

  g_return_val_if_fail (BP_IS_CONFIG_SECTION (self), FALSE);
  g_return_val_if_fail (out_value != NULL, FALSE);

  value = bp_config_section_get_string (self, key, NULL);
  if (value == NULL)
    {
      *out_value = default_value;
      return TRUE;
    }
  if (g_ascii_strcasecmp (value, "true") == 0 || g_str_equal (value, "1") ||
      g_ascii_strcasecmp (value, "yes") == 0)
    *out_value = TRUE;
  else if (g_ascii_strcasecmp (value, "false") == 0 || g_str_equal (value, "0") ||
           g_ascii_strcasecmp (value, "no") == 0)
    *out_value = FALSE;
  else
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("[%s] %s: “%s” is not a boolean (true or false)"),
                   self->group, key, value);
      return FALSE;
    }
  return TRUE;
}

/**
 * bp_config_section_get_uint:
 * @self: a #BpConfigSection
 * @key: a key name
 * @default_value: used when the key is absent
 * @min_value: smallest accepted value
 * @max_value: largest accepted value
 * @out_value: (out): the value
 * @error: return location for a #GError
 *
 * Reads @key as a decimal whole number (no sign, no fraction, no unit)
 * and marks it as known. A value that is not a number or lies outside
 * [@min_value, @max_value] fails with %BP_ERROR_INVALID_ARGUMENT, leaving
 * @out_value untouched; the message gives the accepted range. The default
 * is not checked against the range.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_config_section_get_uint (BpConfigSection  *self,
                            const char       *key,
                            guint64           default_value,
                            guint64           min_value,
                            guint64           max_value,
                            guint64          *out_value,
                            GError          **error)
{
  g_autofree char *value = NULL;
  guint64 v;

  g_return_val_if_fail (BP_IS_CONFIG_SECTION (self), FALSE);
  g_return_val_if_fail (out_value != NULL, FALSE);

  value = bp_config_section_get_string (self, key, NULL);
  if (value == NULL)
    {
      *out_value = default_value;
      return TRUE;
    }
  if (!g_ascii_string_to_unsigned (value, 10, min_value, max_value, &v, NULL))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("[%s] %s: “%s” is not a whole number from %llu to %llu"),
                   self->group, key, value, (unsigned long long) min_value, (unsigned long long) max_value);
      return FALSE;
    }
  *out_value = v;
  return TRUE;
}

/**
 * bp_config_section_get_double:
 * @self: a #BpConfigSection
 * @key: a key name
 * @default_value: used when the key is absent
 * @min_value: smallest accepted value
 * @max_value: largest accepted value
 * @out_value: (out): the value
 * @error: return location for a #GError
 *
 * Reads a decimal number in the C locale (`1.5`, never `1,5`) and marks
 * @key as known; `nan`, `inf`, trailing text and values outside
 * [@min_value, @max_value] fail with %BP_ERROR_INVALID_ARGUMENT, leaving
 * @out_value untouched. The default is not checked against the range.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_config_section_get_double (BpConfigSection  *self,
                              const char       *key,
                              double            default_value,
                              double            min_value,
                              double            max_value,
                              double           *out_value,
                              GError          **error)
{
  g_autofree char *value = NULL;
  char *end = NULL;
  double v;

  g_return_val_if_fail (BP_IS_CONFIG_SECTION (self), FALSE);
  g_return_val_if_fail (out_value != NULL, FALSE);

  value = bp_config_section_get_string (self, key, NULL);
  if (value == NULL)
    {
      *out_value = default_value;
      return TRUE;
    }
  v = g_ascii_strtod (value, &end);
  /* !(a <= v && v <= b) also refuses NaN */
  if (end == value || *end != '\0' || !(v >= min_value && v <= max_value))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("[%s] %s: “%s” is not a number from %g to %g"),
                   self->group, key, value, min_value, max_value);
      return FALSE;
    }
  *out_value = v;
  return TRUE;
}

/**
 * bp_config_section_get_choice:
 * @self: a #BpConfigSection
 * @key: a key name
 * @choices: (array zero-terminated=1): the accepted values
 * @default_index: index used when the key is absent
 * @out_index: (out): index of the chosen value
 * @error: return location for a #GError
 *
 * Reads @key as one of @choices and marks it as known. The comparison is
 * exact (case-sensitive). Any other value fails with
 * %BP_ERROR_INVALID_ARGUMENT listing the choices, leaving @out_index
 * untouched.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_config_section_get_choice (BpConfigSection     *self,
                              const char          *key,
                              const char * const  *choices,
                              guint                default_index,
                              guint               *out_index,
                              GError             **error)
{
  g_autofree char *value = NULL;
  g_autofree char *joined = NULL;

  g_return_val_if_fail (BP_IS_CONFIG_SECTION (self), FALSE);
  g_return_val_if_fail (out_index != NULL, FALSE);

  value = bp_config_section_get_string (self, key, NULL);
  if (value == NULL)
    {
      *out_index = default_index;
      return TRUE;
    }
  for (guint i = 0; choices[i] != NULL; i++)
    if (g_str_equal (choices[i], value))
      {
        *out_index = i;
        return TRUE;
      }
  joined = g_strjoinv ("|", (char **) choices);
  g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
               _("[%s] %s: “%s” is not one of %s"), self->group, key, value, joined);
  return FALSE;
}

/**
 * bp_config_section_get_secret:
 * @self: a #BpConfigSection
 * @prefix: the key prefix, e.g. `password`, `api-key` or `token`
 * @out_secret: (out) (transfer full) (nullable): the secret, %NULL when none
 *   is configured
 * @error: return location for a #GError
 *
 * Reads a secret from `PREFIX-file=` (the first line of the file, without
 * its line end; the file must have no permission bits for others) or
 * `PREFIX-env=` (an environment variable of the daemon), and marks
 * `PREFIX`, `PREFIX-file` and `PREFIX-env` as known. An inline `PREFIX=` is
 * refused: secrets never live in the config file. Error messages name the
 * key and the file or variable, never the secret.
 *
 * Errors are %BP_ERROR_INVALID_ARGUMENT (inline secret, both keys set, a
 * file that cannot be read, an unset variable) and
 * %BP_ERROR_PERMISSION_DENIED (a file accessible to others).
 *
 * This reads a small local file; it is called while (re)loading the
 * configuration, before a backend starts, never from a main-loop callback
 * that serves a call.
 *
 * Returns: %TRUE on success (also when nothing is configured)
 */
gboolean
bp_config_section_get_secret (BpConfigSection  *self,
                              const char       *prefix,
                              char            **out_secret,
                              GError          **error)
{
  g_autofree char *file_key = g_strconcat (prefix, "-file", NULL);
  g_autofree char *env_key = g_strconcat (prefix, "-env", NULL);
  g_autofree char *path = NULL;
  g_autofree char *env = NULL;

  g_return_val_if_fail (BP_IS_CONFIG_SECTION (self), FALSE);
  g_return_val_if_fail (out_secret != NULL, FALSE);

  *out_secret = NULL;
  if (bp_config_section_has_key (self, prefix))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("[%s] %s: secrets may not be written in the configuration; use %s= or %s="),
                   self->group, prefix, file_key, env_key);
      return FALSE;
    }
  path = bp_config_section_get_string (self, file_key, NULL);
  env = bp_config_section_get_string (self, env_key, NULL);
  if (path != NULL && env != NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   _("[%s] %s and %s are exclusive"), self->group, file_key, env_key);
      return FALSE;
    }
  if (path != NULL)
    {
      g_autoptr(GError) local_error = NULL;
      g_autofree char *contents = NULL;
      GStatBuf st;
      char *nl;

      if (g_stat (path, &st) != 0)
        {
          int saved = errno;
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       _("[%s] %s: cannot read “%s”: %s"),
                       self->group, file_key, path, g_strerror (saved));
          return FALSE;
        }
      if ((st.st_mode & 0007) != 0)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_PERMISSION_DENIED,
                       _("[%s] %s: “%s” is readable by others; chmod o-rwx it"),
                       self->group, file_key, path);
          return FALSE;
        }
      if (!g_file_get_contents (path, &contents, NULL, &local_error))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       _("[%s] %s: cannot read “%s”: %s"),
                       self->group, file_key, path, local_error->message);
          return FALSE;
        }
      nl = strpbrk (contents, "\r\n");
      if (nl != NULL)
        *nl = '\0';
      *out_secret = g_steal_pointer (&contents);
      return TRUE;
    }
  if (env != NULL)
    {
      const char *value = g_getenv (env);

      if (value == NULL)
        {
          g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                       _("[%s] %s: environment variable %s is not set"),
                       self->group, env_key, env);
          return FALSE;
        }
      *out_secret = g_strdup (value);
    }
  return TRUE;
}

/**
 * bp_config_section_check_unused:
 * @self: a #BpConfigSection
 * @error: return location for a #GError
 *
 * Checks that every key of the group was read (or passed to
 * [method@Bp.ConfigSection.has_key]). [method@Bp.Backend.configure] calls
 * it after the subclass's [vfunc@Bp.Backend.configure], so a backend
 * never needs to.
 *
 * Returns: %TRUE if every key is known; %FALSE with a
 *   %BP_ERROR_INVALID_ARGUMENT naming the first key, in file order, that no
 *   reader asked for
 */
gboolean
bp_config_section_check_unused (BpConfigSection  *self,
                                GError          **error)
{
  g_auto(GStrv) keys = NULL;

  g_return_val_if_fail (BP_IS_CONFIG_SECTION (self), FALSE);

  keys = g_key_file_get_keys (self->key_file, self->group, NULL, NULL);
  for (guint i = 0; keys != NULL && keys[i] != NULL; i++)
    if (!g_hash_table_contains (self->known, keys[i]))
      {
        g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                     _("[%s] unknown key “%s”"), self->group, keys[i]);
        return FALSE;
      }
  return TRUE;
}
