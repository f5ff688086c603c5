/* bp-frame-writer.h: framed rows into a client's fd, with back-pressure
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#if !defined(BP_INSIDE) && !defined(BP_COMPILATION)
# error "Only <backplane.h> can be included directly."
#endif

#include <gio/gio.h>

#include "bp-version-macros.h"

G_BEGIN_DECLS

/**
 * BpFrameFormat:
 * @BP_FRAME_FORMAT_JSONL: JSON Lines: a header object, one object per row,
 *   then `{"end":{…}}` or `{"error":{"name":…,"message":…}}`
 * @BP_FRAME_FORMAT_CSV: CSV records (RFC 4180), no trailer; an error ends
 *   the stream early and travels in the D-Bus reply
 * @BP_FRAME_FORMAT_RAW: bytes as given, no trailer
 *
 * How a #BpFrameWriter frames its output. JSONL and CSV start with the
 * line given to bp_frame_writer_write_header(), and every row is one line
 * (bp_frame_writer_append_line()); RAW takes bp_frame_writer_append_bytes().
 */
typedef enum
{
  BP_FRAME_FORMAT_JSONL,
  BP_FRAME_FORMAT_CSV,
  BP_FRAME_FORMAT_RAW,
} BpFrameFormat;

/**
 * BP_FRAME_WRITER_DEFAULT_MAX_BUFFER:
 *
 * The buffer bound, 1 MiB, used when bp_frame_writer_new() gets 0 for
 * max_buffer.
 */
#define BP_FRAME_WRITER_DEFAULT_MAX_BUFFER (1024 * 1024)

#define BP_TYPE_FRAME_WRITER (bp_frame_writer_get_type ())

BP_AVAILABLE_IN_ALL
G_DECLARE_FINAL_TYPE (BpFrameWriter, bp_frame_writer, BP, FRAME_WRITER, GObject)

BP_AVAILABLE_IN_ALL
BpFrameWriter *bp_frame_writer_new                 (int                  fd,
                                                    BpFrameFormat        format,
                                                    gsize                max_buffer,
                                                    GError             **error);
BP_AVAILABLE_IN_ALL
BpFrameFormat  bp_frame_writer_get_format          (BpFrameWriter       *self);
BP_AVAILABLE_IN_ALL
GCancellable  *bp_frame_writer_get_cancellable     (BpFrameWriter       *self);

BP_AVAILABLE_IN_ALL
gboolean       bp_frame_writer_write_header        (BpFrameWriter       *self,
                                                    const char          *json_object_text);
BP_AVAILABLE_IN_ALL
gboolean       bp_frame_writer_append_line         (BpFrameWriter       *self,
                                                    const char          *text,
                                                    gssize               len);
BP_AVAILABLE_IN_ALL
gboolean       bp_frame_writer_append_bytes        (BpFrameWriter       *self,
                                                    const void          *data,
                                                    gsize                len);
BP_AVAILABLE_IN_ALL
gboolean       bp_frame_writer_wants_more          (BpFrameWriter       *self);
BP_AVAILABLE_IN_ALL
void           bp_frame_writer_wait_writable_async (BpFrameWriter       *self,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
BP_AVAILABLE_IN_ALL
gboolean       bp_frame_writer_wait_writable_finish (BpFrameWriter      *self,
                                                     GAsyncResult       *result,
                                                     GError            **error);
BP_AVAILABLE_IN_ALL
void           bp_frame_writer_finish_async        (BpFrameWriter       *self,
                                                    const char          *end_summary_json,
                                                    const GError        *error,
                                                    GCancellable        *cancellable,
                                                    GAsyncReadyCallback  callback,
                                                    gpointer             user_data);
BP_AVAILABLE_IN_ALL
gboolean       bp_frame_writer_finish_finish       (BpFrameWriter       *self,
                                                    GAsyncResult        *result,
                                                    GError             **error);
BP_AVAILABLE_IN_ALL
void           bp_frame_writer_close               (BpFrameWriter       *self);

BP_AVAILABLE_IN_ALL
gboolean       bp_frame_writer_is_reader_gone      (BpFrameWriter       *self);
BP_AVAILABLE_IN_ALL
guint64        bp_frame_writer_get_bytes_written   (BpFrameWriter       *self);
BP_AVAILABLE_IN_ALL
guint64        bp_frame_writer_get_n_lines         (BpFrameWriter       *self);
BP_AVAILABLE_IN_ALL
gsize          bp_frame_writer_get_buffered        (BpFrameWriter       *self);
BP_AVAILABLE_IN_ALL
gsize          bp_frame_writer_get_max_buffered    (BpFrameWriter       *self);

BP_AVAILABLE_IN_ALL
void           bp_frame_json_append_string         (GString             *out,
                                                    const char          *utf8);
BP_AVAILABLE_IN_ALL
void           bp_frame_json_append_string_len     (GString             *out,
                                                    const char          *text,
                                                    gssize               len);
BP_AVAILABLE_IN_ALL
void           bp_frame_json_append_variant        (GString             *out,
                                                    GVariant            *value);
BP_AVAILABLE_IN_ALL
void           bp_frame_json_append_error          (GString             *out,
                                                    const GError        *error);
BP_AVAILABLE_IN_ALL
void           bp_frame_csv_append_field           (GString             *out,
                                                    const char          *text);
BP_AVAILABLE_IN_ALL
void           bp_frame_csv_append_record          (GString             *out,
                                                    const char * const  *fields,
                                                    gsize                n_fields);

G_END_DECLS
