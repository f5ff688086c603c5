/* bp-config-section.h: typed, validated access to one `[backend NAME]` group
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#include <gio/gio.h>

#include "bp-version-macros.h"

G_BEGIN_DECLS

#define BP_TYPE_CONFIG_SECTION (bp_config_section_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpConfigSection, bp_config_section, BP, CONFIG_SECTION, GObject)

BP_AVAILABLE_IN_ALL
BpConfigSection *bp_config_section_new           (GKeyFile         *key_file,
                                                  const char       *group);
BP_AVAILABLE_IN_ALL
const char      *bp_config_section_get_group     (BpConfigSection  *self);
BP_AVAILABLE_IN_ALL
gboolean         bp_config_section_has_key       (BpConfigSection  *self,
                                                  const char       *key);
BP_AVAILABLE_IN_ALL
char            *bp_config_section_get_string    (BpConfigSection  *self,
                                                  const char       *key,
                                                  const char       *default_value);
BP_AVAILABLE_IN_ALL
char           **bp_config_section_get_strv      (BpConfigSection  *self,
                                                  const char       *key);
BP_AVAILABLE_IN_ALL
gboolean         bp_config_section_get_boolean   (BpConfigSection  *self,
                                                  const char       *key,
                                                  gboolean          default_value,
                                                  gboolean         *out_value,
                                                  GError          **error);
BP_AVAILABLE_IN_ALL
gboolean         bp_config_section_get_uint      (BpConfigSection  *self,
                                                  const char       *key,
                                                  guint64           default_value,
                                                  guint64           min_value,
                                                  guint64           max_value,
                                                  guint64          *out_value,
                                                  GError          **error);
BP_AVAILABLE_IN_ALL
gboolean         bp_config_section_get_double    (BpConfigSection  *self,
                                                  const char       *key,
                                                  double            default_value,
                                                  double            min_value,
                                                  double            max_value,
                                                  double           *out_value,
                                                  GError          **error);
BP_AVAILABLE_IN_ALL
gboolean         bp_config_section_get_choice    (BpConfigSection  *self,
                                                  const char       *key,
                                                  const char * const *choices,
                                                  guint             default_index,
                                                  guint            *out_index,
                                                  GError          **error);
BP_AVAILABLE_IN_ALL
gboolean         bp_config_section_get_secret    (BpConfigSection  *self,
                                                  const char       *prefix,
                                                  char            **out_secret,
                                                  GError          **error);
BP_AVAILABLE_IN_ALL
gboolean         bp_config_section_check_unused  (BpConfigSection  *self,
                                                  GError          **error);

G_END_DECLS
