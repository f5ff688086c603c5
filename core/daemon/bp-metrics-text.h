/* bp-metrics-text.h: OpenMetrics text exposition
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _BpMetricsText BpMetricsText;

BpMetricsText *bp_metrics_text_new         (void);
void           bp_metrics_text_add         (BpMetricsText *m,
                                            const char    *name,
                                            const char    *type,
                                            const char    *help,
                                            const char    *label,
                                            const char    *label_value,
                                            double         value);
void           bp_metrics_text_add2        (BpMetricsText *m,
                                            const char    *name,
                                            const char    *type,
                                            const char    *help,
                                            const char    *label1,
                                            const char    *value1,
                                            const char    *label2,
                                            const char    *value2,
                                            double         value);
void           bp_metrics_text_add_vardict (BpMetricsText *m,
                                            const char    *prefix,
                                            const char    *help,
                                            const char    *label,
                                            const char    *label_value,
                                            GVariant      *dict);
char          *bp_metrics_text_finish      (BpMetricsText *m);
void           bp_metrics_text_free        (BpMetricsText *m);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpMetricsText, bp_metrics_text_free)

G_END_DECLS
