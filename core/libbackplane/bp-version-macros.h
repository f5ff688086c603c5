/* bp-version-macros.h: symbol visibility for libbackplane-1
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

/**
 * BP_ABI_VERSION:
 *
 * The plugin ABI that this libbackplane-1 implements. A plugin's keyfile
 * must declare the same number as `X-Backplane-Abi=`, or
 * [ctor@Bp.Plugin.new_for_file] gives the plugin a %BP_ERROR_FAILED load
 * error and its module is never opened. It is raised when the plugin ABI
 * changes incompatibly.
 */
#define BP_ABI_VERSION 1

/**
 * BP_AVAILABLE_IN_ALL:
 *
 * Marks a public symbol of libbackplane-1 that is available in every
 * version of the library. It exports the symbol from the library (which is
 * built with hidden visibility) and expands to `extern` for users.
 */
#if defined(BP_COMPILATION)
# define BP_AVAILABLE_IN_ALL __attribute__ ((visibility ("default"))) extern
#else
# define BP_AVAILABLE_IN_ALL extern
#endif
