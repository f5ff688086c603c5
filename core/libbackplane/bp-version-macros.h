/* bp-version-macros.h: symbol visibility for libbackplane-1
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#define BP_ABI_VERSION 1

#if defined(BP_COMPILATION)
# define BP_AVAILABLE_IN_ALL __attribute__ ((visibility ("default"))) extern
#else
# define BP_AVAILABLE_IN_ALL extern
#endif
