/* A plugin module that registers a type that is not a BpBackend. */
#include <backplane.h>

G_MODULE_EXPORT void bp_plugin_register (BpPlugin *plugin);

void
bp_plugin_register (BpPlugin *plugin)
{
  bp_plugin_add_backend_type (plugin, G_TYPE_OBJECT);
}
