/* bp-ctl-format.h: values as text for humans
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

char     *bp_ctl_sanitize            (const char *text);
guint     bp_ctl_display_width       (const char *text);
char     *bp_ctl_format_value        (GVariant   *value);
char     *bp_ctl_format_double       (double      value);
char     *bp_ctl_format_bytes        (guint64     bytes);
char     *bp_ctl_format_duration_us  (gint64      microseconds);
char     *bp_ctl_format_unix_time    (gint64      seconds);
char     *bp_ctl_format_lookup       (GVariant   *dict,
                                      const char *key);
gboolean  bp_ctl_lookup_int64        (GVariant   *dict,
                                      const char *key,
                                      gint64     *out);

G_END_DECLS
