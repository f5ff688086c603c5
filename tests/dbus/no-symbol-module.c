/* A plugin module that forgot to export bp_plugin_register(). */
#include <gmodule.h>

G_MODULE_EXPORT int bp_plugin_registr (void);

int
bp_plugin_registr (void)
{
  return 0;
}
