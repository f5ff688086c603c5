/* bp-config.h: backplane.conf, read into the daemon's view of it
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

typedef struct
{
  char     *name;        /* NAME of [backend NAME] */
  char     *group;       /* the whole group name */
  char     *type;        /* type= */
  char     *digest;      /* the group's keys and values, to notice changes on reload */
  gboolean  enabled;
} BpBackendConfig;

typedef struct
{
  GKeyFile  *key_file;
  char      *source;           /* file path, or "embedded default" */
  GPtrArray *backends;         /* (element-type BpBackendConfig) in file order */
  guint64    grace_period_ms;
  guint64    start_timeout_ms;
  char      *dead_letters_path; /* (nullable): default under $XDG_STATE_HOME */
  gboolean   is_default;
} BpConfig;

BpConfig *bp_config_load         (const char  *path,
                                  GError     **error);
BpConfig *bp_config_load_data    (const char  *data,
                                  const char  *source,
                                  GError     **error);
char     *bp_config_default_path (void);
void      bp_config_free         (BpConfig    *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpConfig, bp_config_free)

G_END_DECLS
