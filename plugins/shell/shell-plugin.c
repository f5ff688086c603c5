/* shell-plugin.c: the entry point of the `shell` plugin
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <backplane.h>

#include "bp-shell-backend.h"

G_MODULE_EXPORT void bp_plugin_register (BpPlugin *plugin);

void
bp_plugin_register (BpPlugin *plugin)
{
  bp_plugin_add_backend_type (plugin, BP_TYPE_SHELL_BACKEND);
}
