/* bp-plugin.h: discovery and loading of backend plugins
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

#define BP_TYPE_PLUGIN (bp_plugin_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpPlugin, bp_plugin, BP, PLUGIN, GObject)

/**
 * BpPluginRegisterFunc:
 * @plugin: the plugin being loaded
 *
 * The one symbol a plugin module exports, named `bp_plugin_register`. It
 * calls bp_plugin_add_backend_type() once, and may add interface XML.
 */
typedef void (*BpPluginRegisterFunc) (BpPlugin *plugin);

BP_AVAILABLE_IN_ALL
char       **bp_plugin_get_search_path      (void);
BP_AVAILABLE_IN_ALL
GPtrArray   *bp_plugin_discover             (const char * const *search_path);
BP_AVAILABLE_IN_ALL
BpPlugin    *bp_plugin_new_for_file         (const char  *path,
                                             GError     **error);

BP_AVAILABLE_IN_ALL
const char  *bp_plugin_get_id               (BpPlugin    *self);
BP_AVAILABLE_IN_ALL
const char  *bp_plugin_get_name             (BpPlugin    *self);
BP_AVAILABLE_IN_ALL
const char  *bp_plugin_get_description      (BpPlugin    *self);
BP_AVAILABLE_IN_ALL
const char  *bp_plugin_get_module_path      (BpPlugin    *self);
BP_AVAILABLE_IN_ALL
const char  *bp_plugin_get_backend_type     (BpPlugin    *self);
BP_AVAILABLE_IN_ALL
const char  *bp_plugin_get_file             (BpPlugin    *self);
BP_AVAILABLE_IN_ALL
gboolean     bp_plugin_is_loaded            (BpPlugin    *self);
BP_AVAILABLE_IN_ALL
const GError *bp_plugin_get_error           (BpPlugin    *self);
BP_AVAILABLE_IN_ALL
void         bp_plugin_set_error            (BpPlugin    *self,
                                             const GError *error);
BP_AVAILABLE_IN_ALL
gboolean     bp_plugin_load                 (BpPlugin    *self,
                                             GError     **error);
BP_AVAILABLE_IN_ALL
GType        bp_plugin_get_backend_gtype    (BpPlugin    *self);
BP_AVAILABLE_IN_ALL
const char * const *
             bp_plugin_get_interface_xml    (BpPlugin    *self);
BP_AVAILABLE_IN_ALL
GVariant    *bp_plugin_to_variant           (BpPlugin    *self);

/* For use inside bp_plugin_register() */
BP_AVAILABLE_IN_ALL
void         bp_plugin_add_backend_type     (BpPlugin    *self,
                                             GType        backend_type);
BP_AVAILABLE_IN_ALL
void         bp_plugin_add_interface_xml    (BpPlugin    *self,
                                             const char  *xml);

G_END_DECLS
