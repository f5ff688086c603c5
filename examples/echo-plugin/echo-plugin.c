/* echo-plugin.c: the only exported symbol of the example plugin
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include <backplane.h>

#include "bp-echo-backend.h"
#include "bp-echo-resources.h"

G_MODULE_EXPORT void bp_plugin_register (BpPlugin *plugin);

void
bp_plugin_register (BpPlugin *plugin)
{
  g_autoptr(GBytes) xml = g_resource_lookup_data (bp_echo_get_resource (),
                                                  "/org/backplane/Example1/org.backplane.Example1.Echo.xml",
                                                  G_RESOURCE_LOOKUP_FLAGS_NONE, NULL);

  /* Served on Introspect with its documentation. */
  bp_plugin_add_interface_xml (plugin, g_bytes_get_data (xml, NULL));
  bp_plugin_add_backend_type (plugin, BP_TYPE_ECHO_BACKEND);
}
