/* bp-ctl-json.h: GVariant to JSON, and JSON text out
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

JsonNode *bp_ctl_json_from_variant   (GVariant    *value);
JsonNode *bp_ctl_json_parse          (const char  *text,
                                      GError     **error);
char     *bp_ctl_json_to_string      (JsonNode    *node,
                                      gboolean     pretty);
void      bp_ctl_json_print          (JsonNode    *node);
void      bp_ctl_json_print_line     (JsonNode    *node);

JsonNode *bp_ctl_json_node_new_string (const char *value);
JsonNode *bp_ctl_json_node_new_int    (gint64      value);
JsonNode *bp_ctl_json_node_new_bool   (gboolean    value);
JsonNode *bp_ctl_json_node_new_null   (void);
JsonNode *bp_ctl_json_node_new_object (JsonObject *object);
JsonNode *bp_ctl_json_node_new_array  (JsonArray  *array);

G_END_DECLS
