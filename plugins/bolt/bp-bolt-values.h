/* bp-bolt-values.h: PackStream values to GVariant and JSON, and back
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include "bp-bolt-packstream.h"

G_BEGIN_DECLS

/*
 * Value mapping (decoding)
 * ========================
 *
 * | PackStream / Bolt      | GVariant                       | JSON                     |
 * |------------------------|--------------------------------|--------------------------|
 * | Null at top level      | `o '/'`                        | `null`                   |
 * | Null in a list         | `<@o '/'>`                     | `null`                   |
 * | Null as a map value    | the key is absent              | `"key": null`            |
 * | Boolean                | `b`                            | `true` / `false`         |
 * | Integer                | `x`                            | exact decimal integer    |
 * | Float                  | `d`                            | shortest round-trip      |
 * |                        |                                | number; NaN/±Inf as the  |
 * |                        |                                | strings "NaN",           |
 * |                        |                                | "Infinity", "-Infinity"  |
 * | String                 | `s`                            | string                   |
 * | Bytes                  | `ay`                           | base64 string            |
 * | List                   | `av`                           | array                    |
 * | Dictionary             | `a{sv}` (duplicate key: last   | object (same rule)       |
 * |                        | wins)                          |                          |
 *
 * Structures become dictionaries (`a{sv}` / JSON objects) with these keys:
 *
 * - Node `4E`: `id` x, `labels` as, `properties` a{sv}, `element-id` s
 * - Relationship `52`: `id` x, `start` x, `end` x, `type` s, `properties`
 *   a{sv}, `element-id` s, `start-element-id` s, `end-element-id` s
 * - UnboundRelationship `72` (only seen standalone if a server sends one):
 *   `id`, `type`, `properties`, `element-id`
 * - Path `50`: `nodes` av (of Node dictionaries, in path order, first node
 *   first) and `relationships` av (of Relationship dictionaries with
 *   `start`/`end` resolved from the path's index sequence and direction)
 *
 *   Before Bolt 5.0 nodes and relationships have no element ids; the
 *   `*element-id` keys then hold the decimal integer id, as the official
 *   drivers do.
 *
 * - Temporal values carry `type`, an ISO-8601 `iso` string and raw fields:
 *   - Date `44`: type "date", `days` (since 1970-01-01), iso "2024-02-29"
 *   - Time `54`: type "time", `nanoseconds` (since midnight),
 *     `tz_offset_seconds`, iso "12:30:00.5+01:00"
 *   - LocalTime `74`: type "local-time", `nanoseconds`, iso "12:30:00"
 *   - DateTime `49`: type "date-time", `seconds` (UTC, since the epoch),
 *     `nanoseconds`, `tz_offset_seconds`, iso "1970-01-01T02:15:00.000000042+01:00"
 *   - DateTimeZoneId `69`: type "date-time-zone-id", `seconds` (UTC),
 *     `nanoseconds`, `tz_id`, iso "1970-01-01T02:15:00+01:00[Europe/Paris]"
 *     (the offset comes from the system tz database; an unknown zone gives
 *     the UTC time: "1970-01-01T01:15:00Z[Mars/Olympus]")
 *   - LocalDateTime `64`: type "local-date-time", `seconds`, `nanoseconds`
 *   - legacy DateTime `46` / DateTimeZoneId `66` (Bolt ≤ 4.4 without the
 *     "utc" patch) are converted to the 5.0 form above (`seconds` in UTC)
 *   - Duration `45`: type "duration", `months`, `days`, `seconds`,
 *     `nanoseconds`, iso "P1Y2M3DT4H5M6.5S"
 *   Years beyond 9999 are written "+10000", years before 1 "-0001" (ISO
 *   8601 expanded form, as Neo4j prints them).
 * - Point2D `58`: `srid` x, `x` d, `y` d; Point3D `59`: plus `z` d
 *
 * Any other structure tag, a field of the wrong type or count, an invalid
 * temporal value, a non-string map key, invalid UTF-8 (or NUL) in a string,
 * truncated input or trailing bytes is %G_IO_ERROR_INVALID_DATA; a value past
 * a #BpBoltLimits bound is %BP_ERROR_LIMIT_EXCEEDED.
 *
 * Value mapping (encoding parameters)
 * ===================================
 *
 * `b` → Boolean; `y n q i u x` → Integer; `t` → Integer (above 2^63-1 is an
 * error); `d` → Float; `s` → String; `o '/'` → Null (other object paths are
 * refused); `ay` → Bytes; `a{s*}` → Dictionary; other arrays and tuples →
 * List; `v` → its content; maybe: nothing → Null. Handles, signatures and
 * dictionaries with non-string keys are %BP_ERROR_INVALID_ARGUMENT.
 */

GVariant *bp_bolt_reader_read_variant (BpBoltReader       *reader,
                                       GError            **error);
gboolean  bp_bolt_reader_read_json    (BpBoltReader       *reader,
                                       GString            *out,
                                       GError            **error);

GVariant *bp_bolt_record_to_variant   (BpBoltReader       *reader,
                                       const char * const *keys,
                                       guint               n_keys,
                                       GError            **error);
gboolean  bp_bolt_record_to_json      (BpBoltReader       *reader,
                                       const char * const *keys,
                                       guint               n_keys,
                                       GString            *out,
                                       GError            **error);

GVariant *bp_bolt_decode_variant      (const guint8       *data,
                                       gsize               len,
                                       const BpBoltLimits *limits,
                                       GError            **error);
char     *bp_bolt_decode_json         (const guint8       *data,
                                       gsize               len,
                                       const BpBoltLimits *limits,
                                       GError            **error);

gboolean  bp_bolt_pack_variant        (GByteArray         *buf,
                                       GVariant           *value,
                                       const BpBoltLimits *limits,
                                       GError            **error);

void      bp_bolt_variant_to_json     (GString            *out,
                                       GVariant           *value);
void      bp_bolt_json_append_string  (GString            *out,
                                       const char         *str,
                                       gssize              len);

GVariant *bp_bolt_null_variant        (void);
gboolean  bp_bolt_variant_is_null     (GVariant           *value);

G_END_DECLS
