/* bp-bolt-packstream.h: PackStream v1 primitives (markers, sizes, limits)
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

G_BEGIN_DECLS

/**
 * BpBoltLimits:
 * @max_depth: deepest nesting of lists, maps and structures (default 64)
 * @max_collection_size: most entries of one list or map (default 1,000,000)
 * @max_string_size: longest string or byte array in bytes (default 16 MiB)
 * @max_message_size: largest message in bytes, after de-chunking (default 64 MiB)
 * @max_expansion: a decoded value may re-read at most this many times its own
 *   encoded size; bounds Path structures that reference one node many times
 *   (default 16)
 *
 * Bounds applied to every value decoded from the network and every parameter
 * encoded for it. A value beyond a bound is refused with
 * %BP_ERROR_LIMIT_EXCEEDED; malformed bytes with %G_IO_ERROR_INVALID_DATA.
 */
typedef struct
{
  guint max_depth;
  guint max_collection_size;
  gsize max_string_size;
  gsize max_message_size;
  guint max_expansion;
} BpBoltLimits;

void                bp_bolt_limits_init_default  (BpBoltLimits       *limits);
const BpBoltLimits *bp_bolt_limits_get_default   (void);

/**
 * BpBoltType:
 *
 * The PackStream core types, as seen by bp_bolt_reader_peek_type().
 */
typedef enum
{
  BP_BOLT_TYPE_NULL,
  BP_BOLT_TYPE_BOOLEAN,
  BP_BOLT_TYPE_INTEGER,
  BP_BOLT_TYPE_FLOAT,
  BP_BOLT_TYPE_BYTES,
  BP_BOLT_TYPE_STRING,
  BP_BOLT_TYPE_LIST,
  BP_BOLT_TYPE_MAP,
  BP_BOLT_TYPE_STRUCTURE,
} BpBoltType;

const char *bp_bolt_type_to_string (BpBoltType type);

/* Encoding: append to a GByteArray, always the shortest form. */
void bp_bolt_pack_null          (GByteArray   *buf);
void bp_bolt_pack_boolean       (GByteArray   *buf,
                                 gboolean      value);
void bp_bolt_pack_int           (GByteArray   *buf,
                                 gint64        value);
void bp_bolt_pack_float         (GByteArray   *buf,
                                 double        value);
void bp_bolt_pack_string        (GByteArray   *buf,
                                 const char   *str,
                                 gssize        len);
void bp_bolt_pack_bytes         (GByteArray   *buf,
                                 const guint8 *data,
                                 gsize         len);
void bp_bolt_pack_list_header   (GByteArray   *buf,
                                 guint32       n_items);
void bp_bolt_pack_map_header    (GByteArray   *buf,
                                 guint32       n_entries);
void bp_bolt_pack_struct_header (GByteArray   *buf,
                                 guint         n_fields,
                                 guint8        tag);

/**
 * BpBoltReader:
 * @data: the encoded bytes (borrowed)
 * @len: their length
 * @pos: the read position
 * @limits: (nullable): bounds, %NULL for the defaults
 *
 * A cursor over encoded PackStream bytes. Every read checks the remaining
 * length, so truncated input is an error, never an over-read. Strings are
 * returned as pointers into @data (not NUL-terminated), already validated
 * as UTF-8 without embedded NUL.
 */
typedef struct
{
  const guint8       *data;
  gsize               len;
  gsize               pos;
  const BpBoltLimits *limits;
} BpBoltReader;

void     bp_bolt_reader_init               (BpBoltReader       *reader,
                                            const guint8       *data,
                                            gsize               len,
                                            const BpBoltLimits *limits);
gboolean bp_bolt_reader_at_end             (BpBoltReader       *reader);
gboolean bp_bolt_reader_peek_type          (BpBoltReader       *reader,
                                            BpBoltType         *type,
                                            GError            **error);
gboolean bp_bolt_reader_read_null          (BpBoltReader       *reader,
                                            GError            **error);
gboolean bp_bolt_reader_read_boolean       (BpBoltReader       *reader,
                                            gboolean           *value,
                                            GError            **error);
gboolean bp_bolt_reader_read_int           (BpBoltReader       *reader,
                                            gint64             *value,
                                            GError            **error);
gboolean bp_bolt_reader_read_float         (BpBoltReader       *reader,
                                            double             *value,
                                            GError            **error);
gboolean bp_bolt_reader_read_string        (BpBoltReader       *reader,
                                            const char        **str,
                                            gsize              *len,
                                            GError            **error);
gboolean bp_bolt_reader_read_bytes         (BpBoltReader       *reader,
                                            const guint8      **data,
                                            gsize              *len,
                                            GError            **error);
gboolean bp_bolt_reader_read_list_header   (BpBoltReader       *reader,
                                            guint32            *n_items,
                                            GError            **error);
gboolean bp_bolt_reader_read_map_header    (BpBoltReader       *reader,
                                            guint32            *n_entries,
                                            GError            **error);
gboolean bp_bolt_reader_read_struct_header (BpBoltReader       *reader,
                                            guint              *n_fields,
                                            guint8             *tag,
                                            GError            **error);
gboolean bp_bolt_reader_skip               (BpBoltReader       *reader,
                                            guint               depth,
                                            GError            **error);

/* Shared error helpers of the Bolt client. */
gboolean bp_bolt_set_invalid_data          (GError            **error,
                                            const char         *format,
                                            ...) G_GNUC_PRINTF (2, 3);

G_END_DECLS
