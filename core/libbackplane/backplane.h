/* backplane.h: the umbrella header of libbackplane-1, the plugin ABI and the
 * resilience toolkit. Plugins include only this header.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#define BP_INSIDE
#include "bp-version-macros.h"
#include "bp-error.h"
#include "bp-clock.h"
#if __has_include("bp-config-section.h") /* transitional while the toolkit lands */
#include "bp-config-section.h"
#endif
#if __has_include("bp-backend.h") /* transitional while the toolkit lands */
#include "bp-backend.h"
#endif
#include "bp-call.h"
#if __has_include("bp-host.h") /* transitional while the toolkit lands */
#include "bp-host.h"
#endif
#if __has_include("bp-plugin.h") /* transitional while the toolkit lands */
#include "bp-plugin.h"
#endif
#if __has_include("bp-retry.h") /* transitional while the toolkit lands */
#include "bp-retry.h"
#endif
#if __has_include("bp-breaker.h") /* transitional while the toolkit lands */
#include "bp-breaker.h"
#endif
#if __has_include("bp-pool.h") /* transitional while the toolkit lands */
#include "bp-pool.h"
#endif
#if __has_include("bp-worker-pool.h") /* transitional while the toolkit lands */
#include "bp-worker-pool.h"
#endif
#if __has_include("bp-dead-letters.h") /* transitional while the toolkit lands */
#include "bp-dead-letters.h"
#endif
#if __has_include("bp-frame-writer.h") /* transitional while the toolkit lands */
#include "bp-frame-writer.h"
#endif
#if __has_include("bp-subscription.h") /* transitional while the toolkit lands */
#include "bp-subscription.h"
#endif
#if __has_include("bp-metrics.h") /* transitional while the toolkit lands */
#include "bp-metrics.h"
#endif
#undef BP_INSIDE
