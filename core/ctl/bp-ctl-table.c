/* bp-ctl-table.c: aligned text tables
 *
 * Columns are as wide as their widest cell (in terminal columns, so wide
 * and combining characters line up), separated by two spaces; a cell wider
 * than the limit is cut and ends with “…”. Cells are sanitized: control
 * characters never reach the terminal. The last column is not padded.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>

#include "bp-ctl-format.h"
#include "bp-ctl-table.h"

struct _BpCtlTable
{
  GPtrArray *headers;   /* (owned) (element-type utf8) */
  GArray    *aligns;    /* (owned) (element-type BpCtlAlign) */
  GPtrArray *cells;     /* (owned) (element-type utf8): row-major, sanitized */
  gboolean   headers_visible;
};

BpCtlTable *
bp_ctl_table_new (void)
{
  BpCtlTable *self = g_new0 (BpCtlTable, 1);

  self->headers = g_ptr_array_new_with_free_func (g_free);
  self->aligns = g_array_new (FALSE, FALSE, sizeof (BpCtlAlign));
  self->cells = g_ptr_array_new_with_free_func (g_free);
  self->headers_visible = TRUE;
  return self;
}

void
bp_ctl_table_free (BpCtlTable *self)
{
  if (self == NULL)
    return;
  g_ptr_array_unref (self->headers);
  g_array_unref (self->aligns);
  g_ptr_array_unref (self->cells);
  g_free (self);
}

/* Key/value lists are tables without a header line. */
void
bp_ctl_table_set_headers_visible (BpCtlTable *self,
                                  gboolean    visible)
{
  self->headers_visible = visible;
}

void
bp_ctl_table_add_column (BpCtlTable *self,
                         const char *header,
                         BpCtlAlign  align)
{
  g_return_if_fail (self->cells->len == 0);

  g_ptr_array_add (self->headers, bp_ctl_sanitize (header));
  g_array_append_val (self->aligns, align);
}

/**
 * bp_ctl_table_take_cell:
 * @text: (transfer full) (nullable): the next cell, row by row; %NULL is
 *   an empty cell
 */
void
bp_ctl_table_take_cell (BpCtlTable *self,
                        char       *text)
{
  g_autofree char *owned = text;

  g_return_if_fail (self->headers->len > 0);

  g_ptr_array_add (self->cells, bp_ctl_sanitize (owned != NULL ? owned : ""));
}

void
bp_ctl_table_add_cell (BpCtlTable *self,
                       const char *text)
{
  bp_ctl_table_take_cell (self, g_strdup (text));
}

void
bp_ctl_table_add_cellf (BpCtlTable *self,
                        const char *format,
                        ...)
{
  va_list args;
  char *text;

  va_start (args, format);
  text = g_strdup_vprintf (format, args);
  va_end (args);
  bp_ctl_table_take_cell (self, text);
}

guint
bp_ctl_table_get_n_rows (BpCtlTable *self)
{
  return (self->cells->len + self->headers->len - 1) / self->headers->len;
}

/* The longest prefix of @text that fits in @width - 1 columns, plus “…”. */
static char *
truncate_cell (const char *text,
               guint       width)
{
  GString *out = g_string_new (NULL);
  guint used = 0;

  for (const char *p = text; *p != '\0'; p = g_utf8_next_char (p))
    {
      gunichar c = g_utf8_get_char (p);
      guint w = g_unichar_iszerowidth (c) ? 0 : g_unichar_iswide (c) ? 2 : 1;

      if (used + w > width - 1)
        break;
      g_string_append_len (out, p, g_utf8_next_char (p) - p);
      used += w;
    }
  g_string_append (out, "…");
  return g_string_free (out, FALSE);
}

static void
append_cell (GString    *out,
             const char *text,
             guint       text_width,
             guint       column_width,
             BpCtlAlign  align,
             gboolean    last)
{
  guint pad = column_width > text_width ? column_width - text_width : 0;

  if (align == BP_CTL_ALIGN_RIGHT)
    for (guint i = 0; i < pad; i++)
      g_string_append_c (out, ' ');
  g_string_append (out, text);
  if (align == BP_CTL_ALIGN_LEFT && !last)
    for (guint i = 0; i < pad; i++)
      g_string_append_c (out, ' ');
  if (!last)
    g_string_append (out, "  ");
}

/* Ends a line without the padding an empty last cell leaves. */
static void
end_line (GString *out)
{
  while (out->len > 0 && out->str[out->len - 1] == ' ')
    g_string_truncate (out, out->len - 1);
  g_string_append_c (out, '\n');
}

/**
 * bp_ctl_table_render:
 * @max_cell_width: cut longer cells; 0 for no limit
 *
 * Returns: (transfer full): the table, one line per row, each ending in a
 *   newline
 */
char *
bp_ctl_table_render (BpCtlTable *self,
                     guint       max_cell_width)
{
  guint n_columns = self->headers->len;
  guint n_cells = self->cells->len;
  g_autofree guint *widths = g_new0 (guint, n_columns);
  g_autoptr(GPtrArray) shown = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GArray) shown_widths = g_array_new (FALSE, FALSE, sizeof (guint));
  GString *out = g_string_new (NULL);

  /* Pad a short last row so every row is complete. */
  while (n_cells % n_columns != 0)
    {
      g_ptr_array_add (self->cells, g_strdup (""));
      n_cells++;
    }

  for (guint i = 0; i < n_cells; i++)
    {
      const char *cell = g_ptr_array_index (self->cells, i);
      guint w = bp_ctl_display_width (cell);
      char *text;

      if (max_cell_width > 1 && w > max_cell_width)
        {
          text = truncate_cell (cell, max_cell_width);
          w = bp_ctl_display_width (text);
        }
      else
        text = g_strdup (cell);
      g_ptr_array_add (shown, text);
      g_array_append_val (shown_widths, w);
      widths[i % n_columns] = MAX (widths[i % n_columns], w);
    }

  if (self->headers_visible)
    {
      for (guint c = 0; c < n_columns; c++)
        {
          const char *header = g_ptr_array_index (self->headers, c);

          widths[c] = MAX (widths[c], bp_ctl_display_width (header));
        }
      for (guint c = 0; c < n_columns; c++)
        {
          const char *header = g_ptr_array_index (self->headers, c);

          append_cell (out, header, bp_ctl_display_width (header), widths[c],
                       g_array_index (self->aligns, BpCtlAlign, c), c + 1 == n_columns);
        }
      end_line (out);
    }

  for (guint i = 0; i < n_cells; i++)
    {
      guint c = i % n_columns;

      append_cell (out, g_ptr_array_index (shown, i), g_array_index (shown_widths, guint, i), widths[c],
                   g_array_index (self->aligns, BpCtlAlign, c), c + 1 == n_columns);
      if (c + 1 == n_columns)
        end_line (out);
    }
  return g_string_free (out, FALSE);
}

void
bp_ctl_table_print (BpCtlTable *self,
                    gboolean    wide)
{
  g_autofree char *text = bp_ctl_table_render (self, wide ? 0 : BP_CTL_TABLE_MAX_CELL_WIDTH);

  fputs (text, stdout);
}
