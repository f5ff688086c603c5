/* bp-ctl-params.h: typed values from the command line
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The text of --help that documents the forms below. */
#define BP_CTL_PARAMS_HELP \
  N_("Parameters are text unless typed:\n" \
     "  i:42      integer (64-bit)\n" \
     "  f:1.5     floating point\n" \
     "  b:true    boolean (true/false, yes/no, on/off, 1/0)\n" \
     "  n:        null\n" \
     "  s:text    text, e.g. to pass text that starts with i:\n" \
     "  j:JSON    a JSON value (arrays become lists, objects maps)\n" \
     "With --int, untyped parameters that are whole numbers are integers.\n" \
     "Put parameters that start with “-” after “--”.")

GVariant *bp_ctl_param_parse        (const char  *text,
                                     gboolean     integers,
                                     GError     **error);
GVariant *bp_ctl_variant_from_json  (JsonNode    *node);

G_END_DECLS
