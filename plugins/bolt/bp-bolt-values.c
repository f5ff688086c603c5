/* bp-bolt-values.c: PackStream values to GVariant and JSON, and back
 *
 * One decoder walks the PackStream bytes, gives structures their Bolt meaning
 * (structure-semantics.adoc) and reports what it finds to a sink; there are
 * two sinks, one building GVariants and one writing JSON text straight into a
 * GString, so JSON Lines output never goes through GVariant.
 *
 * The decoder handles the cases that need more than one pass over the bytes:
 * - duplicate map keys (last wins): the decoder finds them and tells the sink
 *   to retract the earlier entry;
 * - Path structures: the node and relationship lists are scanned first (to
 *   learn ids and offsets), then the path is emitted in path order by
 *   re-reading entries; re-reads are charged against max_expansion so a path
 *   referencing one big node many times cannot blow up the output.
 *
 * Everything here is pure computation, callable from any thread. The only
 * outside access is the tz database, read (once per zone, through GTimeZone)
 * to give DateTimeZoneId values their offset.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <math.h>
#include <string.h>

#include "bp-bolt-values.h"

/* ------------------------------------------------------------------ */
/* Sinks                                                               */

typedef struct _Sink Sink;

typedef struct
{
  void (*null_)      (Sink *sink);
  void (*boolean)    (Sink *sink, gboolean v);
  void (*integer)    (Sink *sink, gint64 v);
  void (*number)     (Sink *sink, double v);
  void (*string)     (Sink *sink, const char *s, gsize len);
  void (*bytes)      (Sink *sink, const guint8 *b, gsize len);
  void (*begin_list) (Sink *sink, guint32 n, gboolean strings_only);
  void (*end_list)   (Sink *sink);
  void (*begin_map)  (Sink *sink, guint32 n);
  void (*key)        (Sink *sink, const char *k, gsize len);
  void (*retract)    (Sink *sink, guint entry_index);
  void (*end_map)    (Sink *sink);
} SinkClass;

struct _Sink
{
  const SinkClass *klass;
};

/* --- GVariant sink ------------------------------------------------- */

typedef enum
{
  VFRAME_LIST,
  VFRAME_STRLIST,
  VFRAME_MAP,
} VFrameKind;

typedef struct
{
  VFrameKind  kind;
  GPtrArray  *items;      /* (element-type GVariant) (owned); map: value or NULL */
  GPtrArray  *keys;       /* (element-type utf8) (owned), maps only */
  char       *pending_key;
} VFrame;

typedef struct
{
  Sink      parent;
  GArray   *stack;        /* (element-type VFrame) */
  guint     stack_high;   /* the deepest the stack went */
  GVariant *result;       /* (owned) (nullable) */
} VariantSink;

/* Scratch arrays, one cached per thread and kind: a record decoded per
 * call must not cost an allocation per array. A nested or concurrent use
 * finds the cache empty and allocates its own. */
static void
scratch_array_free (gpointer array)
{
  g_array_unref (array);
}

static GPrivate scratch_vframes = G_PRIVATE_INIT (scratch_array_free);
static GPrivate scratch_jframes = G_PRIVATE_INIT (scratch_array_free);
static GPrivate scratch_jentries = G_PRIVATE_INIT (scratch_array_free);
static GPrivate scratch_keys = G_PRIVATE_INIT (scratch_array_free);

/* cached arrays that once held more than this many bytes are not kept */
#define SCRATCH_KEEP_BYTES (64 * 1024)

static GArray *
scratch_take (GPrivate *cache,
              guint     element_size)
{
  GArray *array = g_private_get (cache);

  if (array == NULL)
    return g_array_new (FALSE, FALSE, element_size);
  g_private_set (cache, NULL);
  return array;
}

/* @high_water: the most elements @array held while in use */
static void
scratch_give_back (GPrivate *cache,
                   GArray   *array,
                   guint     high_water)
{
  gsize bytes = (gsize) g_array_get_element_size (array) * MAX (high_water, array->len);

  g_array_set_size (array, 0);
  if (bytes <= SCRATCH_KEEP_BYTES && g_private_get (cache) == NULL)
    g_private_set (cache, array);
  else
    g_array_unref (array);
}

static void
vframe_clear (VFrame *frame)
{
  g_clear_pointer (&frame->items, g_ptr_array_unref);
  g_clear_pointer (&frame->keys, g_ptr_array_unref);
  g_clear_pointer (&frame->pending_key, g_free);
}

static void
unref_nullable (gpointer p)
{
  if (p != NULL)
    g_variant_unref (p);
}

/**
 * bp_bolt_null_variant:
 *
 * Returns: (transfer floating): the positional null, `o '/'`
 */
GVariant *
bp_bolt_null_variant (void)
{
  return g_variant_new_object_path ("/");
}

gboolean
bp_bolt_variant_is_null (GVariant *value)
{
  if (value == NULL)
    return TRUE;
  if (g_variant_is_of_type (value, G_VARIANT_TYPE_VARIANT))
    {
      g_autoptr(GVariant) inner = g_variant_get_variant (value);
      return bp_bolt_variant_is_null (inner);
    }
  return g_variant_is_of_type (value, G_VARIANT_TYPE_OBJECT_PATH) &&
         strcmp (g_variant_get_string (value, NULL), "/") == 0;
}

static void
vsink_emit (VariantSink *self,
            GVariant    *value)   /* (transfer floating) (nullable) for null */
{
  VFrame *top;

  if (value != NULL)
    g_variant_ref_sink (value);

  if (self->stack->len == 0)
    {
      g_clear_pointer (&self->result, g_variant_unref);
      self->result = value != NULL ? value : g_variant_ref_sink (bp_bolt_null_variant ());
      return;
    }

  top = &g_array_index (self->stack, VFrame, self->stack->len - 1);
  switch (top->kind)
    {
    case VFRAME_LIST:
      if (value == NULL)
        value = g_variant_ref_sink (bp_bolt_null_variant ());
      g_ptr_array_add (top->items, g_variant_ref_sink (g_variant_new_variant (value)));
      g_variant_unref (value);
      break;
    case VFRAME_STRLIST:
      g_assert (value != NULL);
      g_ptr_array_add (top->items, value);
      break;
    case VFRAME_MAP:
      g_assert (top->pending_key != NULL);
      g_ptr_array_add (top->keys, g_steal_pointer (&top->pending_key));
      g_ptr_array_add (top->items, value);
      break;
    default:
      g_assert_not_reached ();
    }
}

static void
vsink_null (Sink *sink)
{
  vsink_emit ((VariantSink *) sink, NULL);
}

static void
vsink_boolean (Sink    *sink,
               gboolean v)
{
  vsink_emit ((VariantSink *) sink, g_variant_new_boolean (v));
}

static void
vsink_integer (Sink  *sink,
               gint64 v)
{
  vsink_emit ((VariantSink *) sink, g_variant_new_int64 (v));
}

static void
vsink_number (Sink  *sink,
              double v)
{
  vsink_emit ((VariantSink *) sink, g_variant_new_double (v));
}

static void
vsink_string (Sink       *sink,
              const char *s,
              gsize       len)
{
  g_autofree char *copy = g_strndup (s, len);

  vsink_emit ((VariantSink *) sink, g_variant_new_take_string (g_steal_pointer (&copy)));
}

static void
vsink_bytes (Sink         *sink,
             const guint8 *b,
             gsize         len)
{
  vsink_emit ((VariantSink *) sink,
              g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, b, len, 1));
}

static void
vsink_begin_list (Sink    *sink,
                  guint32  n,
                  gboolean strings_only)
{
  VariantSink *self = (VariantSink *) sink;
  VFrame frame = { 0, };

  frame.kind = strings_only ? VFRAME_STRLIST : VFRAME_LIST;
  frame.items = g_ptr_array_new_full (n, (GDestroyNotify) g_variant_unref);
  g_array_append_val (self->stack, frame);
  self->stack_high = MAX (self->stack_high, self->stack->len);
}

static void
vsink_end_list (Sink *sink)
{
  VariantSink *self = (VariantSink *) sink;
  VFrame frame = g_array_index (self->stack, VFrame, self->stack->len - 1);
  GVariant *value;

  g_array_set_size (self->stack, self->stack->len - 1);
  value = g_variant_new_array (frame.kind == VFRAME_STRLIST ? G_VARIANT_TYPE_STRING : G_VARIANT_TYPE_VARIANT,
                               (GVariant * const *) frame.items->pdata, frame.items->len);
  vframe_clear (&frame);
  vsink_emit (self, value);
}

static void
vsink_begin_map (Sink   *sink,
                 guint32 n)
{
  VariantSink *self = (VariantSink *) sink;
  VFrame frame = { 0, };

  frame.kind = VFRAME_MAP;
  frame.items = g_ptr_array_new_full (n, unref_nullable);
  frame.keys = g_ptr_array_new_full (n, g_free);
  g_array_append_val (self->stack, frame);
  self->stack_high = MAX (self->stack_high, self->stack->len);
}

static void
vsink_key (Sink       *sink,
           const char *k,
           gsize       len)
{
  VariantSink *self = (VariantSink *) sink;
  VFrame *top = &g_array_index (self->stack, VFrame, self->stack->len - 1);

  g_free (top->pending_key);
  top->pending_key = g_strndup (k, len);
}

static void
vsink_retract (Sink *sink,
               guint entry_index)
{
  VariantSink *self = (VariantSink *) sink;
  VFrame *top = &g_array_index (self->stack, VFrame, self->stack->len - 1);

  g_assert (entry_index < top->items->len);
  g_clear_pointer (&top->items->pdata[entry_index], g_variant_unref);
}

static void
vsink_end_map (Sink *sink)
{
  VariantSink *self = (VariantSink *) sink;
  VFrame frame = g_array_index (self->stack, VFrame, self->stack->len - 1);
  guint n = 0;
  GVariant *value;

  /* {sv} entries built in place of the values (no GVariantBuilder: no
   * format strings to parse for every entry of every record) */
  g_array_set_size (self->stack, self->stack->len - 1);
  for (guint i = 0; i < frame.items->len; i++)
    {
      GVariant *v = g_steal_pointer (&frame.items->pdata[i]);

      if (v == NULL)
        continue;
      frame.items->pdata[n++] =
        g_variant_ref_sink (g_variant_new_dict_entry (g_variant_new_take_string (g_steal_pointer (&frame.keys->pdata[i])),
                                                      g_variant_new_variant (v)));
      g_variant_unref (v);
    }
  g_ptr_array_set_size (frame.items, n);
  value = g_variant_new_array (G_VARIANT_TYPE ("{sv}"), (GVariant * const *) frame.items->pdata, n);
  vframe_clear (&frame);
  vsink_emit (self, value);
}

static const SinkClass variant_sink_class = {
  vsink_null, vsink_boolean, vsink_integer, vsink_number, vsink_string,
  vsink_bytes, vsink_begin_list, vsink_end_list, vsink_begin_map, vsink_key,
  vsink_retract, vsink_end_map,
};

/* GLib caches the type info of container types only while a value of the
 * type is alive, so building one record after another creates and drops
 * the info of a{sv}, {sv} and av each time (a locked hash table insert and
 * remove). Values kept alive for good keep those entries warm. */
static const char * const kept_types[] = { "a{sv}", "aa{sv}", "av", "as", "ay" };
static GVariant *kept_values[G_N_ELEMENTS (kept_types)];   /* (owned), for good */

static void
keep_container_types (void)
{
  static gsize kept = 0;

  if (g_once_init_enter (&kept))
    {
      for (guint i = 0; i < G_N_ELEMENTS (kept_types); i++)
        kept_values[i] = g_variant_ref_sink (g_variant_new_array (g_variant_type_element (G_VARIANT_TYPE (kept_types[i])),
                                                                  NULL, 0));
      g_once_init_leave (&kept, 1);
    }
}

static void
variant_sink_init (VariantSink *self)
{
  keep_container_types ();
  self->parent.klass = &variant_sink_class;
  self->stack = scratch_take (&scratch_vframes, sizeof (VFrame));
  self->stack_high = 0;
  self->result = NULL;
}

static void
variant_sink_clear (VariantSink *self)
{
  for (guint i = 0; i < self->stack->len; i++)
    vframe_clear (&g_array_index (self->stack, VFrame, i));
  scratch_give_back (&scratch_vframes, g_steal_pointer (&self->stack), self->stack_high);
  g_clear_pointer (&self->result, g_variant_unref);
}

/* --- JSON sink ----------------------------------------------------- */

typedef struct
{
  gsize start;   /* first byte of "key":value, after any comma */
  gsize end;     /* one past the value */
  gboolean dead;
} JEntry;

typedef struct
{
  gsize    start;        /* offset of the opening bracket */
  gboolean is_map;
  guint    count;
  guint    entry_base;   /* first JEntry of this map in the sink's entries */
  gboolean has_dead;
} JFrame;

typedef struct
{
  Sink     parent;
  GString *out;          /* (unowned) */
  GArray  *stack;        /* (element-type JFrame) */
  GArray  *entries;      /* (element-type JEntry) of all open maps */
  guint    stack_high;
  guint    entries_high;
} JsonSink;

void
bp_bolt_json_append_string (GString    *out,
                            const char *str,
                            gssize      len)
{
  static const char hex[] = "0123456789abcdef";
  gsize n = len < 0 ? strlen (str) : (gsize) len;
  gsize run = 0;

  g_string_append_c (out, '"');
  for (gsize i = 0; i < n; i++)
    {
      guchar c = (guchar) str[i];
      const char *esc = NULL;
      char ubuf[7];

      if (c >= 0x20 && c != '"' && c != '\\')
        continue;
      g_string_append_len (out, str + run, i - run);
      run = i + 1;
      switch (c)
        {
        case '"':
          esc = "\\\"";
          break;
        case '\\':
          esc = "\\\\";
          break;
        case '\n':
          esc = "\\n";
          break;
        case '\r':
          esc = "\\r";
          break;
        case '\t':
          esc = "\\t";
          break;
        case '\b':
          esc = "\\b";
          break;
        case '\f':
          esc = "\\f";
          break;
        default:
          ubuf[0] = '\\';
          ubuf[1] = 'u';
          ubuf[2] = '0';
          ubuf[3] = '0';
          ubuf[4] = hex[c >> 4];
          ubuf[5] = hex[c & 0xF];
          ubuf[6] = '\0';
          esc = ubuf;
          break;
        }
      g_string_append (out, esc);
    }
  g_string_append_len (out, str + run, n - run);
  g_string_append_c (out, '"');
}

/* Decimal digits without printf: most record fields are integers. */
static void
json_append_int (GString *out,
                 gint64   v)
{
  char buf[24];
  char *p = buf + sizeof buf;
  guint64 u = v < 0 ? (guint64) 0 - (guint64) v : (guint64) v;

  do
    {
      *--p = (char) ('0' + u % 10);
      u /= 10;
    }
  while (u != 0);
  if (v < 0)
    *--p = '-';
  g_string_append_len (out, p, buf + sizeof buf - p);
}

static void
json_append_double (GString *out,
                    double   v)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (v))
    {
      g_string_append (out, "\"NaN\"");
      return;
    }
  if (isinf (v))
    {
      g_string_append (out, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
      return;
    }
  for (int prec = 15; prec <= 17; prec++)
    {
      char fmt[8];

      g_snprintf (fmt, sizeof fmt, "%%.%dg", prec);
      g_ascii_formatd (buf, sizeof buf, fmt, v);
      if (prec == 17 || g_ascii_strtod (buf, NULL) == v)
        break;
    }
  g_string_append (out, buf);
  if (strpbrk (buf, ".eE") == NULL)
    g_string_append (out, ".0");
}

/**
 * bp_bolt_variant_to_json:
 * @out: where to append
 * @value: a value in the decoded mapping (summaries, records)
 *
 * Writes @value as JSON: integers exact, `o '/'` null, `ay` base64, `v`
 * unwrapped, `a{s*}` objects, other arrays and tuples arrays; other object
 * paths, signatures and strings are strings.
 */
void
bp_bolt_variant_to_json (GString  *out,
                         GVariant *value)
{
  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      g_string_append (out, g_variant_get_boolean (value) ? "true" : "false");
      break;
    case G_VARIANT_CLASS_BYTE:
      g_string_append_printf (out, "%u", g_variant_get_byte (value));
      break;
    case G_VARIANT_CLASS_INT16:
      g_string_append_printf (out, "%d", g_variant_get_int16 (value));
      break;
    case G_VARIANT_CLASS_UINT16:
      g_string_append_printf (out, "%u", g_variant_get_uint16 (value));
      break;
    case G_VARIANT_CLASS_INT32:
      g_string_append_printf (out, "%d", g_variant_get_int32 (value));
      break;
    case G_VARIANT_CLASS_UINT32:
    case G_VARIANT_CLASS_HANDLE:
      g_string_append_printf (out, "%u", g_variant_get_uint32 (value));
      break;
    case G_VARIANT_CLASS_INT64:
      g_string_append_printf (out, "%" G_GINT64_FORMAT, g_variant_get_int64 (value));
      break;
    case G_VARIANT_CLASS_UINT64:
      g_string_append_printf (out, "%" G_GUINT64_FORMAT, g_variant_get_uint64 (value));
      break;
    case G_VARIANT_CLASS_DOUBLE:
      json_append_double (out, g_variant_get_double (value));
      break;
    case G_VARIANT_CLASS_OBJECT_PATH:
      if (strcmp (g_variant_get_string (value, NULL), "/") == 0)
        {
          g_string_append (out, "null");
          break;
        }
      G_GNUC_FALLTHROUGH;
    case G_VARIANT_CLASS_STRING:
    case G_VARIANT_CLASS_SIGNATURE:
      {
        gsize len;
        const char *s = g_variant_get_string (value, &len);
        bp_bolt_json_append_string (out, s, len);
      }
      break;
    case G_VARIANT_CLASS_VARIANT:
      {
        g_autoptr(GVariant) inner = g_variant_get_variant (value);
        bp_bolt_variant_to_json (out, inner);
      }
      break;
    case G_VARIANT_CLASS_MAYBE:
      {
        g_autoptr(GVariant) inner = g_variant_get_maybe (value);
        if (inner == NULL)
          g_string_append (out, "null");
        else
          bp_bolt_variant_to_json (out, inner);
      }
      break;
    case G_VARIANT_CLASS_ARRAY:
      {
        const GVariantType *elem = g_variant_type_element (g_variant_get_type (value));
        gsize n = g_variant_n_children (value);

        if (g_variant_type_equal (elem, G_VARIANT_TYPE_BYTE))
          {
            gsize len;
            const guint8 *data = g_variant_get_fixed_array (value, &len, 1);
            g_autofree char *b64 = g_base64_encode (data, len);

            g_string_append_c (out, '"');
            g_string_append (out, b64);
            g_string_append_c (out, '"');
          }
        else if (g_variant_type_is_dict_entry (elem) &&
                 g_variant_type_equal (g_variant_type_key (elem), G_VARIANT_TYPE_STRING))
          {
            g_string_append_c (out, '{');
            for (gsize i = 0; i < n; i++)
              {
                g_autoptr(GVariant) entry = g_variant_get_child_value (value, i);
                g_autoptr(GVariant) k = g_variant_get_child_value (entry, 0);
                g_autoptr(GVariant) v = g_variant_get_child_value (entry, 1);
                gsize klen;
                const char *ks = g_variant_get_string (k, &klen);

                if (i > 0)
                  g_string_append_c (out, ',');
                bp_bolt_json_append_string (out, ks, klen);
                g_string_append_c (out, ':');
                bp_bolt_variant_to_json (out, v);
              }
            g_string_append_c (out, '}');
          }
        else
          {
            g_string_append_c (out, '[');
            for (gsize i = 0; i < n; i++)
              {
                g_autoptr(GVariant) child = g_variant_get_child_value (value, i);
                if (i > 0)
                  g_string_append_c (out, ',');
                bp_bolt_variant_to_json (out, child);
              }
            g_string_append_c (out, ']');
          }
      }
      break;
    case G_VARIANT_CLASS_TUPLE:
    case G_VARIANT_CLASS_DICT_ENTRY:
    default:
      g_string_append_c (out, '[');
      for (gsize i = 0; i < g_variant_n_children (value); i++)
        {
          g_autoptr(GVariant) child = g_variant_get_child_value (value, i);
          if (i > 0)
            g_string_append_c (out, ',');
          bp_bolt_variant_to_json (out, child);
        }
      g_string_append_c (out, ']');
      break;
    }
}

/* Called before any value: commas between list elements. Map values are
 * preceded by their key, which wrote the comma. */
static void
jsink_before_value (JsonSink *self)
{
  JFrame *top;

  if (self->stack->len == 0)
    return;
  top = &g_array_index (self->stack, JFrame, self->stack->len - 1);
  if (!top->is_map)
    {
      if (top->count > 0)
        g_string_append_c (self->out, ',');
      top->count++;
    }
}

/* Called after any value: closes the current map entry. */
static void
jsink_after_value (JsonSink *self)
{
  JFrame *top;

  if (self->stack->len == 0)
    return;
  top = &g_array_index (self->stack, JFrame, self->stack->len - 1);
  if (top->is_map)
    {
      JEntry *e = &g_array_index (self->entries, JEntry, self->entries->len - 1);
      e->end = self->out->len;
    }
}

static void
jsink_null (Sink *sink)
{
  JsonSink *self = (JsonSink *) sink;

  jsink_before_value (self);
  g_string_append (self->out, "null");
  jsink_after_value (self);
}

static void
jsink_boolean (Sink    *sink,
               gboolean v)
{
  JsonSink *self = (JsonSink *) sink;

  jsink_before_value (self);
  g_string_append (self->out, v ? "true" : "false");
  jsink_after_value (self);
}

static void
jsink_integer (Sink  *sink,
               gint64 v)
{
  JsonSink *self = (JsonSink *) sink;

  jsink_before_value (self);
  json_append_int (self->out, v);
  jsink_after_value (self);
}

static void
jsink_number (Sink  *sink,
              double v)
{
  JsonSink *self = (JsonSink *) sink;

  jsink_before_value (self);
  json_append_double (self->out, v);
  jsink_after_value (self);
}

static void
jsink_string (Sink       *sink,
              const char *s,
              gsize       len)
{
  JsonSink *self = (JsonSink *) sink;

  jsink_before_value (self);
  bp_bolt_json_append_string (self->out, s, len);
  jsink_after_value (self);
}

static void
jsink_bytes (Sink         *sink,
             const guint8 *b,
             gsize         len)
{
  JsonSink *self = (JsonSink *) sink;
  g_autofree char *b64 = g_base64_encode (b, len);

  jsink_before_value (self);
  g_string_append_c (self->out, '"');
  g_string_append (self->out, b64);
  g_string_append_c (self->out, '"');
  jsink_after_value (self);
}

static void
jsink_begin (JsonSink *self,
             gboolean  is_map)
{
  JFrame frame = { 0, };

  jsink_before_value (self);
  frame.start = self->out->len;
  frame.is_map = is_map;
  frame.entry_base = self->entries->len;
  g_string_append_c (self->out, is_map ? '{' : '[');
  g_array_append_val (self->stack, frame);
  self->stack_high = MAX (self->stack_high, self->stack->len);
}

static void
jsink_begin_list (Sink    *sink,
                  guint32  n,
                  gboolean strings_only)
{
  jsink_begin ((JsonSink *) sink, FALSE);
}

static void
jsink_end_list (Sink *sink)
{
  JsonSink *self = (JsonSink *) sink;

  g_string_append_c (self->out, ']');
  g_array_set_size (self->stack, self->stack->len - 1);
  jsink_after_value (self);
}

static void
jsink_begin_map (Sink   *sink,
                 guint32 n)
{
  jsink_begin ((JsonSink *) sink, TRUE);
}

static void
jsink_key (Sink       *sink,
           const char *k,
           gsize       len)
{
  JsonSink *self = (JsonSink *) sink;
  JFrame *top = &g_array_index (self->stack, JFrame, self->stack->len - 1);
  JEntry entry = { 0, };

  if (top->count > 0)
    g_string_append_c (self->out, ',');
  top->count++;
  entry.start = self->out->len;
  bp_bolt_json_append_string (self->out, k, len);
  g_string_append_c (self->out, ':');
  entry.end = self->out->len;
  g_array_append_val (self->entries, entry);
  self->entries_high = MAX (self->entries_high, self->entries->len);
}

static void
jsink_retract (Sink *sink,
               guint entry_index)
{
  JsonSink *self = (JsonSink *) sink;
  JFrame *top = &g_array_index (self->stack, JFrame, self->stack->len - 1);

  g_array_index (self->entries, JEntry, top->entry_base + entry_index).dead = TRUE;
  top->has_dead = TRUE;
}

static void
jsink_end_map (Sink *sink)
{
  JsonSink *self = (JsonSink *) sink;
  JFrame frame = g_array_index (self->stack, JFrame, self->stack->len - 1);

  if (frame.has_dead)
    {
      /* Rare: a duplicate key. Rebuild this object from its live entries. */
      g_autoptr(GString) rebuilt = g_string_new ("{");
      gboolean first = TRUE;

      for (guint i = frame.entry_base; i < self->entries->len; i++)
        {
          JEntry *e = &g_array_index (self->entries, JEntry, i);

          if (e->dead)
            continue;
          if (!first)
            g_string_append_c (rebuilt, ',');
          first = FALSE;
          g_string_append_len (rebuilt, self->out->str + e->start, e->end - e->start);
        }
      g_string_truncate (self->out, frame.start);
      g_string_append_len (self->out, rebuilt->str, rebuilt->len);
    }
  g_string_append_c (self->out, '}');
  g_array_set_size (self->entries, frame.entry_base);
  g_array_set_size (self->stack, self->stack->len - 1);
  jsink_after_value (self);
}

static const SinkClass json_sink_class = {
  jsink_null, jsink_boolean, jsink_integer, jsink_number, jsink_string,
  jsink_bytes, jsink_begin_list, jsink_end_list, jsink_begin_map, jsink_key,
  jsink_retract, jsink_end_map,
};

static void
json_sink_init (JsonSink *self,
                GString  *out)
{
  self->parent.klass = &json_sink_class;
  self->out = out;
  self->stack = scratch_take (&scratch_jframes, sizeof (JFrame));
  self->entries = scratch_take (&scratch_jentries, sizeof (JEntry));
  self->stack_high = 0;
  self->entries_high = 0;
}

static void
json_sink_clear (JsonSink *self)
{
  scratch_give_back (&scratch_jframes, g_steal_pointer (&self->stack), self->stack_high);
  scratch_give_back (&scratch_jentries, g_steal_pointer (&self->entries), self->entries_high);
}

/* ------------------------------------------------------------------ */
/* The decoder                                                         */

typedef struct
{
  const char *ptr;
  gsize       len;
} KeyRef;

typedef struct
{
  BpBoltReader *r;
  Sink         *sink;
  const SinkClass *k;
  guint64       work;        /* bytes re-read for paths */
  guint64       work_limit;
  GArray       *keys;        /* (element-type KeyRef) keys of the open maps */
  guint         keys_high;
} Decoder;

#define SMALL_MAP 16

static gboolean decode_value (Decoder *d, guint depth, GError **error);

static gboolean
check_depth (Decoder *d,
             guint    depth,
             GError **error)
{
  if (depth >= d->r->limits->max_depth)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   _("PackStream value nested deeper than %u levels"), d->r->limits->max_depth);
      return FALSE;
    }
  return TRUE;
}

static guint
key_hash (gconstpointer p)
{
  const KeyRef *k = p;
  guint h = 5381;

  for (gsize i = 0; i < k->len; i++)
    h = h * 33 + (guchar) k->ptr[i];
  return h;
}

static gboolean
key_equal (gconstpointer a,
           gconstpointer b)
{
  const KeyRef *x = a, *y = b;

  return x->len == y->len && memcmp (x->ptr, y->ptr, x->len) == 0;
}

static gboolean
decode_map_body (Decoder *d,
                 guint32  n,
                 guint    depth,
                 GError **error)
{
  guint base = d->keys->len;
  g_autoptr(GHashTable) index = NULL;   /* KeyRef* -> entry index + 1, for big maps */
  gboolean ok = TRUE;

  d->k->begin_map (d->sink, n);
  for (guint32 i = 0; i < n && ok; i++)
    {
      KeyRef key;
      guint dup = 0;

      if (!bp_bolt_reader_read_string (d->r, &key.ptr, &key.len, error))
        {
          ok = FALSE;
          break;
        }
      /* Duplicate keys: the last one wins (packstream/index.adoc). */
      if (index != NULL)
        dup = GPOINTER_TO_UINT (g_hash_table_lookup (index, &key));
      else
        /* the latest occurrence: earlier ones were retracted already */
        for (guint j = d->keys->len; j > base; j--)
          {
            KeyRef *other = &g_array_index (d->keys, KeyRef, j - 1);
            if (key_equal (other, &key))
              {
                dup = j - base;
                break;
              }
          }
      if (dup != 0)
        d->k->retract (d->sink, dup - 1);
      g_array_append_val (d->keys, key);
      d->keys_high = MAX (d->keys_high, d->keys->len);
      if (index == NULL && i + 1 == SMALL_MAP)
        {
          /* big map: switch from linear scans to a hash table */
          index = g_hash_table_new_full (key_hash, key_equal, g_free, NULL);
          for (guint j = base; j < d->keys->len; j++)
            g_hash_table_replace (index, g_memdup2 (&g_array_index (d->keys, KeyRef, j), sizeof (KeyRef)),
                                  GUINT_TO_POINTER (j - base + 1));
        }
      else if (index != NULL)
        g_hash_table_replace (index, g_memdup2 (&key, sizeof key), GUINT_TO_POINTER (i + 1));
      d->k->key (d->sink, key.ptr, key.len);
      ok = decode_value (d, depth + 1, error);
    }
  g_array_set_size (d->keys, base);
  if (ok)
    d->k->end_map (d->sink);
  return ok;
}

/* Field helpers for structures */

static gboolean
read_int_field (Decoder    *d,
                const char *structure,
                const char *field,
                gint64     *v,
                GError    **error)
{
  g_autoptr(GError) local = NULL;

  if (!bp_bolt_reader_read_int (d->r, v, &local))
    {
      g_set_error (error, local->domain, local->code, "%s.%s: %s", structure, field, local->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_float_field (Decoder    *d,
                  const char *structure,
                  const char *field,
                  double     *v,
                  GError    **error)
{
  g_autoptr(GError) local = NULL;

  if (!bp_bolt_reader_read_float (d->r, v, &local))
    {
      g_set_error (error, local->domain, local->code, "%s.%s: %s", structure, field, local->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
read_string_field (Decoder    *d,
                   const char *structure,
                   const char *field,
                   const char **s,
                   gsize      *len,
                   GError    **error)
{
  g_autoptr(GError) local = NULL;

  if (!bp_bolt_reader_read_string (d->r, s, len, &local))
    {
      g_set_error (error, local->domain, local->code, "%s.%s: %s", structure, field, local->message);
      return FALSE;
    }
  return TRUE;
}

static gboolean
expect_type (Decoder    *d,
             BpBoltType  want,
             const char *structure,
             const char *field,
             GError    **error)
{
  BpBoltType type;

  if (!bp_bolt_reader_peek_type (d->r, &type, error))
    return FALSE;
  if (type != want)
    return bp_bolt_set_invalid_data (error, "%s.%s must be a %s, not a %s", structure, field,
                                     bp_bolt_type_to_string (want), bp_bolt_type_to_string (type));
  return TRUE;
}

static void
emit_int (Decoder    *d,
          const char *key,
          gint64      v)
{
  d->k->key (d->sink, key, strlen (key));
  d->k->integer (d->sink, v);
}

static void
emit_float (Decoder    *d,
            const char *key,
            double      v)
{
  d->k->key (d->sink, key, strlen (key));
  d->k->number (d->sink, v);
}

static void
emit_str (Decoder    *d,
          const char *key,
          const char *s,
          gssize      len)
{
  d->k->key (d->sink, key, strlen (key));
  d->k->string (d->sink, s, len < 0 ? strlen (s) : (gsize) len);
}

static void
emit_id_string (Decoder    *d,
                const char *key,
                gint64      id)
{
  char buf[32];

  g_snprintf (buf, sizeof buf, "%" G_GINT64_FORMAT, id);
  emit_str (d, key, buf, -1);
}

static gboolean
decode_labels (Decoder *d,
               guint    depth,
               GError **error)
{
  guint32 n;

  if (!expect_type (d, BP_BOLT_TYPE_LIST, "Node", "labels", error) ||
      !check_depth (d, depth, error) ||
      !bp_bolt_reader_read_list_header (d->r, &n, error))
    return FALSE;
  d->k->key (d->sink, "labels", 6);
  d->k->begin_list (d->sink, n, TRUE);
  for (guint32 i = 0; i < n; i++)
    {
      const char *s;
      gsize len;

      if (!read_string_field (d, "Node", "labels", &s, &len, error))
        return FALSE;
      d->k->string (d->sink, s, len);
    }
  d->k->end_list (d->sink);
  return TRUE;
}

static gboolean
decode_properties (Decoder    *d,
                   const char *structure,
                   guint       depth,
                   GError    **error)
{
  guint32 n;

  if (!expect_type (d, BP_BOLT_TYPE_MAP, structure, "properties", error) ||
      !check_depth (d, depth, error) ||
      !bp_bolt_reader_read_map_header (d->r, &n, error))
    return FALSE;
  d->k->key (d->sink, "properties", 10);
  return decode_map_body (d, n, depth, error);
}

/* Node(id, labels, properties[, element_id]) */
static gboolean
decode_node (Decoder *d,
             guint    n_fields,
             guint    depth,
             GError **error)
{
  gint64 id;
  const char *eid;
  gsize eid_len;

  if (n_fields != 3 && n_fields != 4)
    return bp_bolt_set_invalid_data (error, "Node has %u fields, expected 3 or 4", n_fields);
  if (!read_int_field (d, "Node", "id", &id, error))
    return FALSE;
  d->k->begin_map (d->sink, 4);
  emit_int (d, "id", id);
  if (!decode_labels (d, depth + 1, error) ||
      !decode_properties (d, "Node", depth + 1, error))
    return FALSE;
  if (n_fields == 4)
    {
      if (!read_string_field (d, "Node", "element_id", &eid, &eid_len, error))
        return FALSE;
      emit_str (d, "element-id", eid, eid_len);
    }
  else
    emit_id_string (d, "element-id", id);
  d->k->end_map (d->sink);
  return TRUE;
}

/* Relationship(id, start, end, type, properties[, element_id, start_eid, end_eid]) */
static gboolean
decode_relationship (Decoder *d,
                     guint    n_fields,
                     guint    depth,
                     GError **error)
{
  gint64 id, start, end;
  const char *type, *eid, *seid, *eeid;
  gsize type_len, eid_len, seid_len, eeid_len;

  if (n_fields != 5 && n_fields != 8)
    return bp_bolt_set_invalid_data (error, "Relationship has %u fields, expected 5 or 8", n_fields);
  if (!read_int_field (d, "Relationship", "id", &id, error) ||
      !read_int_field (d, "Relationship", "startNodeId", &start, error) ||
      !read_int_field (d, "Relationship", "endNodeId", &end, error) ||
      !read_string_field (d, "Relationship", "type", &type, &type_len, error))
    return FALSE;
  d->k->begin_map (d->sink, 8);
  emit_int (d, "id", id);
  emit_int (d, "start", start);
  emit_int (d, "end", end);
  emit_str (d, "type", type, type_len);
  if (!decode_properties (d, "Relationship", depth + 1, error))
    return FALSE;
  if (n_fields == 8)
    {
      if (!read_string_field (d, "Relationship", "element_id", &eid, &eid_len, error) ||
          !read_string_field (d, "Relationship", "start_node_element_id", &seid, &seid_len, error) ||
          !read_string_field (d, "Relationship", "end_node_element_id", &eeid, &eeid_len, error))
        return FALSE;
      emit_str (d, "element-id", eid, eid_len);
      emit_str (d, "start-element-id", seid, seid_len);
      emit_str (d, "end-element-id", eeid, eeid_len);
    }
  else
    {
      emit_id_string (d, "element-id", id);
      emit_id_string (d, "start-element-id", start);
      emit_id_string (d, "end-element-id", end);
    }
  d->k->end_map (d->sink);
  return TRUE;
}

/* UnboundRelationship(id, type, properties[, element_id]); when @path_ends
 * is given it is emitted as a bound Relationship. */
typedef struct
{
  gint64      start;
  gint64      end;
  const char *start_eid;
  gsize       start_eid_len;
  const char *end_eid;
  gsize       end_eid_len;
} PathEnds;

static gboolean
decode_unbound (Decoder        *d,
                guint           n_fields,
                guint           depth,
                const PathEnds *ends,
                GError        **error)
{
  gint64 id;
  const char *type, *eid;
  gsize type_len, eid_len;

  if (n_fields != 3 && n_fields != 4)
    return bp_bolt_set_invalid_data (error, "UnboundRelationship has %u fields, expected 3 or 4", n_fields);
  if (!read_int_field (d, "UnboundRelationship", "id", &id, error) ||
      !read_string_field (d, "UnboundRelationship", "type", &type, &type_len, error))
    return FALSE;
  d->k->begin_map (d->sink, 8);
  emit_int (d, "id", id);
  if (ends != NULL)
    {
      emit_int (d, "start", ends->start);
      emit_int (d, "end", ends->end);
    }
  emit_str (d, "type", type, type_len);
  if (!decode_properties (d, "UnboundRelationship", depth + 1, error))
    return FALSE;
  if (n_fields == 4)
    {
      if (!read_string_field (d, "UnboundRelationship", "element_id", &eid, &eid_len, error))
        return FALSE;
      emit_str (d, "element-id", eid, eid_len);
    }
  else
    emit_id_string (d, "element-id", id);
  if (ends != NULL)
    {
      emit_str (d, "start-element-id", ends->start_eid, ends->start_eid_len);
      emit_str (d, "end-element-id", ends->end_eid, ends->end_eid_len);
    }
  d->k->end_map (d->sink);
  return TRUE;
}

typedef struct
{
  gsize       offset;      /* of the structure marker */
  gsize       length;
  gint64      id;
  const char *eid;         /* element id, or NULL before 5.0 */
  gsize       eid_len;
  char        id_buf[24];  /* decimal id, when eid is NULL */
} PathEntry;

static gboolean
scan_path_list (Decoder    *d,
                guint8      want_tag,
                const char *what,
                guint       depth,
                GArray     *entries,
                GError    **error)
{
  guint32 n;

  if (!expect_type (d, BP_BOLT_TYPE_LIST, "Path", what, error) ||
      !check_depth (d, depth, error) ||
      !bp_bolt_reader_read_list_header (d->r, &n, error))
    return FALSE;
  for (guint32 i = 0; i < n; i++)
    {
      PathEntry e = { 0, };
      guint nf;
      guint8 tag;
      const char *s;
      gsize len;

      e.offset = d->r->pos;
      if (!bp_bolt_reader_read_struct_header (d->r, &nf, &tag, error))
        return FALSE;
      if (tag != want_tag || (nf != 3 && nf != 4))
        return bp_bolt_set_invalid_data (error, "Path.%s holds a structure 0x%02X of %u fields", what, tag, nf);
      if (!read_int_field (d, "Path", what, &e.id, error))
        return FALSE;
      if (want_tag == 0x72 &&
          !read_string_field (d, "Path", "rels.type", &s, &len, error))
        return FALSE;
      if (want_tag == 0x4E)
        {
          if (!expect_type (d, BP_BOLT_TYPE_LIST, "Path", "nodes.labels", error) ||
              !bp_bolt_reader_skip (d->r, depth + 2, error))
            return FALSE;
        }
      if (!expect_type (d, BP_BOLT_TYPE_MAP, "Path", "properties", error) ||
          !bp_bolt_reader_skip (d->r, depth + 2, error))
        return FALSE;
      if (nf == 4)
        {
          if (!read_string_field (d, "Path", "element_id", &e.eid, &e.eid_len, error))
            return FALSE;
        }
      e.length = d->r->pos - e.offset;
      g_array_append_val (entries, e);
    }
  return TRUE;
}

static void
path_entry_eid (PathEntry   *e,
                const char **eid,
                gsize       *len)
{
  if (e->eid != NULL)
    {
      *eid = e->eid;
      *len = e->eid_len;
      return;
    }
  if (e->id_buf[0] == '\0')
    g_snprintf (e->id_buf, sizeof e->id_buf, "%" G_GINT64_FORMAT, e->id);
  *eid = e->id_buf;
  *len = strlen (e->id_buf);
}

static gboolean
charge_work (Decoder *d,
             gsize    bytes,
             GError **error)
{
  d->work += bytes;
  if (d->work > d->work_limit)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   _("PackStream Path expands beyond %u times its message size"),
                   d->r->limits->max_expansion);
      return FALSE;
    }
  return TRUE;
}

/* Re-reads the entry at @e and emits it. */
static gboolean
emit_path_entry (Decoder        *d,
                 PathEntry      *e,
                 guint           depth,
                 const PathEnds *ends,
                 GError        **error)
{
  gsize saved = d->r->pos;
  guint nf;
  guint8 tag;
  gboolean ok;

  if (!charge_work (d, e->length, error))
    return FALSE;
  d->r->pos = e->offset;
  if (!bp_bolt_reader_read_struct_header (d->r, &nf, &tag, error))
    return FALSE;
  if (tag == 0x4E)
    ok = decode_node (d, nf, depth, error);
  else
    ok = decode_unbound (d, nf, depth, ends, error);
  d->r->pos = saved;
  return ok;
}

/* Path(nodes, rels, indices) */
static gboolean
decode_path (Decoder *d,
             guint    n_fields,
             guint    depth,
             GError **error)
{
  g_autoptr(GArray) nodes = g_array_new (FALSE, TRUE, sizeof (PathEntry));
  g_autoptr(GArray) rels = g_array_new (FALSE, TRUE, sizeof (PathEntry));
  g_autoptr(GArray) indices = NULL;
  guint32 n_idx;
  guint prev;

  if (n_fields != 3)
    return bp_bolt_set_invalid_data (error, "Path has %u fields, expected 3", n_fields);
  if (!scan_path_list (d, 0x4E, "nodes", depth + 1, nodes, error) ||
      !scan_path_list (d, 0x72, "rels", depth + 1, rels, error))
    return FALSE;
  if (!expect_type (d, BP_BOLT_TYPE_LIST, "Path", "indices", error) ||
      !bp_bolt_reader_read_list_header (d->r, &n_idx, error))
    return FALSE;
  if (nodes->len == 0)
    return bp_bolt_set_invalid_data (error, "Path without nodes");
  if (n_idx % 2 != 0)
    return bp_bolt_set_invalid_data (error, "Path.indices has an odd length %u", n_idx);
  indices = g_array_sized_new (FALSE, FALSE, sizeof (gint64), n_idx);
  for (guint32 i = 0; i < n_idx; i++)
    {
      gint64 v;

      if (!read_int_field (d, "Path", "indices", &v, error))
        return FALSE;
      if (i % 2 == 0 ? (v == 0 || v > (gint64) rels->len || v < -(gint64) rels->len)
                     : (v < 0 || v >= (gint64) nodes->len))
        return bp_bolt_set_invalid_data (error, "Path.indices[%u] = %" G_GINT64_FORMAT " is out of range", i, v);
      g_array_append_val (indices, v);
    }

  d->k->begin_map (d->sink, 2);
  d->k->key (d->sink, "nodes", 5);
  d->k->begin_list (d->sink, n_idx / 2 + 1, FALSE);
  if (!emit_path_entry (d, &g_array_index (nodes, PathEntry, 0), depth + 2, NULL, error))
    return FALSE;
  for (guint32 i = 1; i < n_idx; i += 2)
    if (!emit_path_entry (d, &g_array_index (nodes, PathEntry, g_array_index (indices, gint64, i)),
                          depth + 2, NULL, error))
      return FALSE;
  d->k->end_list (d->sink);

  d->k->key (d->sink, "relationships", 13);
  d->k->begin_list (d->sink, n_idx / 2, FALSE);
  prev = 0;
  for (guint32 i = 0; i < n_idx; i += 2)
    {
      gint64 r = g_array_index (indices, gint64, i);
      guint next = (guint) g_array_index (indices, gint64, i + 1);
      PathEntry *a = &g_array_index (nodes, PathEntry, prev);
      PathEntry *b = &g_array_index (nodes, PathEntry, next);
      PathEnds ends;

      if (r < 0)
        {
          PathEntry *t = a;
          a = b;
          b = t;
        }
      ends.start = a->id;
      ends.end = b->id;
      path_entry_eid (a, &ends.start_eid, &ends.start_eid_len);
      path_entry_eid (b, &ends.end_eid, &ends.end_eid_len);
      if (!emit_path_entry (d, &g_array_index (rels, PathEntry, (r < 0 ? -r : r) - 1),
                            depth + 2, &ends, error))
        return FALSE;
      prev = next;
    }
  d->k->end_list (d->sink);
  d->k->end_map (d->sink);
  return TRUE;
}

/* --- temporal ------------------------------------------------------ */

#define NANOS_PER_SECOND G_GINT64_CONSTANT (1000000000)
#define SECONDS_PER_DAY  G_GINT64_CONSTANT (86400)
/* ±1,000,000,000 years: beyond Neo4j's range, far within int64 */
#define MAX_ABS_DAYS     G_GINT64_CONSTANT (365250000000)
#define MAX_ABS_SECONDS  (MAX_ABS_DAYS * SECONDS_PER_DAY)
#define MAX_ABS_OFFSET   (SECONDS_PER_DAY)

static gint64
floor_div (gint64 a,
           gint64 b)
{
  gint64 q = a / b;

  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}

/* Howard Hinnant's days_from_civil inverse */
static void
civil_from_days (gint64 z,
                 gint64 *year,
                 guint  *month,
                 guint  *day)
{
  gint64 era, y;
  guint doe, yoe, doy, mp;

  z += 719468;
  era = floor_div (z, 146097);
  doe = (guint) (z - era * 146097);
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = (gint64) yoe + era * 400;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *day = doy - (153 * mp + 2) / 5 + 1;
  *month = mp < 10 ? mp + 3 : mp - 9;
  *year = y + (*month <= 2);
}

static void
append_date (GString *out,
             gint64   days)
{
  gint64 y;
  guint m, d;

  civil_from_days (days, &y, &m, &d);
  if (y > 9999)
    g_string_append_printf (out, "+%" G_GINT64_FORMAT, y);
  else if (y < 0)
    g_string_append_printf (out, "-%04" G_GINT64_FORMAT, -y);
  else
    g_string_append_printf (out, "%04" G_GINT64_FORMAT, y);
  g_string_append_printf (out, "-%02u-%02u", m, d);
}

static void
append_fraction (GString *out,
                 gint64   nanos)
{
  if (nanos == 0)
    return;
  if (nanos % 1000000 == 0)
    g_string_append_printf (out, ".%03" G_GINT64_FORMAT, nanos / 1000000);
  else if (nanos % 1000 == 0)
    g_string_append_printf (out, ".%06" G_GINT64_FORMAT, nanos / 1000);
  else
    g_string_append_printf (out, ".%09" G_GINT64_FORMAT, nanos);
}

/* @nanos_of_day in [0, 86400e9) */
static void
append_time (GString *out,
             gint64   seconds_of_day,
             gint64   nanos)
{
  g_string_append_printf (out, "%02d:%02d:%02d",
                          (int) (seconds_of_day / 3600),
                          (int) (seconds_of_day / 60 % 60),
                          (int) (seconds_of_day % 60));
  append_fraction (out, nanos);
}

static void
append_offset (GString *out,
               gint64   offset)
{
  gint64 a = offset < 0 ? -offset : offset;

  if (offset == 0)
    {
      g_string_append_c (out, 'Z');
      return;
    }
  g_string_append_printf (out, "%c%02d:%02d", offset < 0 ? '-' : '+',
                          (int) (a / 3600), (int) (a / 60 % 60));
  if (a % 60 != 0)
    g_string_append_printf (out, ":%02d", (int) (a % 60));
}

static void
append_local_datetime (GString *out,
                       gint64   local_seconds,
                       gint64   nanos)
{
  gint64 days = floor_div (local_seconds, SECONDS_PER_DAY);

  append_date (out, days);
  g_string_append_c (out, 'T');
  append_time (out, local_seconds - days * SECONDS_PER_DAY, nanos);
}

static gboolean
check_range (const char *structure,
             const char *field,
             gint64      v,
             gint64      min,
             gint64      max,
             GError    **error)
{
  if (v < min || v > max)
    return bp_bolt_set_invalid_data (error, "%s.%s = %" G_GINT64_FORMAT " is out of range",
                                     structure, field, v);
  return TRUE;
}

static gboolean
tz_id_is_sane (const char *id,
               gsize       len)
{
  if (len == 0 || len > 64)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = id[i];
      if (!(g_ascii_isalnum (c) || c == '/' || c == '_' || c == '+' || c == '-' || c == ':'))
        return FALSE;
      if (c == '.' || (c == '/' && (i == 0 || id[i - 1] == '/')))
        return FALSE;
    }
  return id[0] != '/';
}

G_LOCK_DEFINE_STATIC (tz_cache);
static GHashTable *tz_cache;   /* (element-type utf8 GTimeZone) */
#define TZ_CACHE_MAX 256

/* Returns: (transfer full) (nullable): the zone, or %NULL if unknown */
static GTimeZone *
lookup_time_zone (const char *id,
                  gsize       len)
{
  g_autofree char *name = NULL;
  GTimeZone *tz;

  if (!tz_id_is_sane (id, len))
    return NULL;
  name = g_strndup (id, len);
  G_LOCK (tz_cache);
  if (tz_cache == NULL)
    tz_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_time_zone_unref);
  tz = g_hash_table_lookup (tz_cache, name);
  if (tz != NULL)
    {
      tz = g_time_zone_ref (tz);
      G_UNLOCK (tz_cache);
      return tz;
    }
  G_UNLOCK (tz_cache);

  tz = g_time_zone_new_identifier (name);
  if (tz == NULL)
    return NULL;
  G_LOCK (tz_cache);
  if (g_hash_table_size (tz_cache) < TZ_CACHE_MAX)
    g_hash_table_replace (tz_cache, g_steal_pointer (&name), g_time_zone_ref (tz));
  G_UNLOCK (tz_cache);
  return tz;
}

static gboolean
offset_for_utc (GTimeZone *tz,
                gint64     utc_seconds,
                gint64    *offset)
{
  int interval = g_time_zone_find_interval (tz, G_TIME_TYPE_UNIVERSAL, utc_seconds);

  if (interval < 0)
    return FALSE;
  *offset = g_time_zone_get_offset (tz, interval);
  return TRUE;
}

static gboolean
offset_for_local (GTimeZone *tz,
                  gint64     local_seconds,
                  gint64    *offset)
{
  gint64 t = local_seconds;
  int interval = g_time_zone_adjust_time (tz, G_TIME_TYPE_STANDARD, &t);

  if (interval < 0)
    return FALSE;
  *offset = g_time_zone_get_offset (tz, interval);
  return TRUE;
}

static void
emit_iso (Decoder *d,
          GString *iso)
{
  emit_str (d, "iso", iso->str, iso->len);
}

static gboolean
decode_temporal (Decoder *d,
                 guint8   tag,
                 guint    n_fields,
                 GError **error)
{
  g_autoptr(GString) iso = g_string_new (NULL);
  gint64 a = 0, b = 0, c = 0, e = 0;
  const char *tz = NULL;
  gsize tz_len = 0;

  switch (tag)
    {
    case 0x44: /* Date(days) */
      if (n_fields != 1)
        return bp_bolt_set_invalid_data (error, "Date has %u fields, expected 1", n_fields);
      if (!read_int_field (d, "Date", "days", &a, error) ||
          !check_range ("Date", "days", a, -MAX_ABS_DAYS, MAX_ABS_DAYS, error))
        return FALSE;
      append_date (iso, a);
      d->k->begin_map (d->sink, 3);
      emit_str (d, "type", "date", -1);
      emit_int (d, "days", a);
      emit_iso (d, iso);
      break;

    case 0x54: /* Time(nanoseconds, tz_offset_seconds) */
    case 0x74: /* LocalTime(nanoseconds) */
      if (n_fields != (tag == 0x54 ? 2u : 1u))
        return bp_bolt_set_invalid_data (error, "%s has %u fields", tag == 0x54 ? "Time" : "LocalTime", n_fields);
      if (!read_int_field (d, "Time", "nanoseconds", &a, error) ||
          !check_range ("Time", "nanoseconds", a, 0, SECONDS_PER_DAY * NANOS_PER_SECOND - 1, error))
        return FALSE;
      if (tag == 0x54 &&
          (!read_int_field (d, "Time", "tz_offset_seconds", &b, error) ||
           !check_range ("Time", "tz_offset_seconds", b, -MAX_ABS_OFFSET, MAX_ABS_OFFSET, error)))
        return FALSE;
      append_time (iso, a / NANOS_PER_SECOND, a % NANOS_PER_SECOND);
      if (tag == 0x54)
        append_offset (iso, b);
      d->k->begin_map (d->sink, 4);
      emit_str (d, "type", tag == 0x54 ? "time" : "local-time", -1);
      emit_int (d, "nanoseconds", a);
      if (tag == 0x54)
        emit_int (d, "tz_offset_seconds", b);
      emit_iso (d, iso);
      break;

    case 0x49: /* DateTime(seconds, nanoseconds, tz_offset_seconds), UTC */
    case 0x46: /* legacy DateTime, seconds local */
    case 0x69: /* DateTimeZoneId(seconds, nanoseconds, tz_id), UTC */
    case 0x66: /* legacy DateTimeZoneId, seconds local */
    case 0x64: /* LocalDateTime(seconds, nanoseconds) */
      {
        const char *name = tag == 0x64 ? "LocalDateTime" : (tag == 0x49 || tag == 0x46) ? "DateTime" : "DateTimeZoneId";
        gboolean zoned = tag == 0x69 || tag == 0x66;
        gboolean legacy = tag == 0x46 || tag == 0x66;
        gint64 utc, local, offset = 0;
        gboolean have_offset = TRUE;

        if (n_fields != (tag == 0x64 ? 2u : 3u))
          return bp_bolt_set_invalid_data (error, "%s has %u fields", name, n_fields);
        if (!read_int_field (d, name, "seconds", &a, error) ||
            !check_range (name, "seconds", a, -MAX_ABS_SECONDS, MAX_ABS_SECONDS, error) ||
            !read_int_field (d, name, "nanoseconds", &b, error) ||
            !check_range (name, "nanoseconds", b, 0, NANOS_PER_SECOND - 1, error))
          return FALSE;
        if (tag == 0x49 || tag == 0x46)
          {
            if (!read_int_field (d, name, "tz_offset_seconds", &c, error) ||
                !check_range (name, "tz_offset_seconds", c, -MAX_ABS_OFFSET, MAX_ABS_OFFSET, error))
              return FALSE;
            offset = c;
          }
        else if (zoned)
          {
            g_autoptr(GTimeZone) zone = NULL;

            if (!read_string_field (d, name, "tz_id", &tz, &tz_len, error))
              return FALSE;
            zone = lookup_time_zone (tz, tz_len);
            if (zone == NULL)
              have_offset = FALSE;
            else if (legacy)
              have_offset = offset_for_local (zone, a, &offset);
            else
              have_offset = offset_for_utc (zone, a, &offset);
            if (!have_offset)
              offset = 0;
          }

        if (tag == 0x64)
          {
            utc = local = a;
          }
        else if (legacy)
          {
            local = a;
            utc = a - offset;
          }
        else
          {
            utc = a;
            local = a + offset;
          }
        if (have_offset)
          append_local_datetime (iso, local, b);
        else
          append_local_datetime (iso, utc, b);
        if (tag != 0x64)
          append_offset (iso, have_offset ? offset : 0);
        if (zoned)
          {
            g_string_append_c (iso, '[');
            g_string_append_len (iso, tz, tz_len);
            g_string_append_c (iso, ']');
          }

        d->k->begin_map (d->sink, 5);
        emit_str (d, "type", tag == 0x64 ? "local-date-time" : zoned ? "date-time-zone-id" : "date-time", -1);
        emit_int (d, "seconds", utc);
        emit_int (d, "nanoseconds", b);
        if (tag == 0x49 || tag == 0x46)
          emit_int (d, "tz_offset_seconds", c);
        if (zoned)
          emit_str (d, "tz_id", tz, tz_len);
        emit_iso (d, iso);
      }
      break;

    case 0x45: /* Duration(months, days, seconds, nanoseconds) */
      {
        const gint64 lim = G_GINT64_CONSTANT (1) << 60;
        gint64 s, ns, years, mons;
        gboolean neg;

        if (n_fields != 4)
          return bp_bolt_set_invalid_data (error, "Duration has %u fields, expected 4", n_fields);
        if (!read_int_field (d, "Duration", "months", &a, error) ||
            !check_range ("Duration", "months", a, -lim, lim, error) ||
            !read_int_field (d, "Duration", "days", &b, error) ||
            !check_range ("Duration", "days", b, -lim, lim, error) ||
            !read_int_field (d, "Duration", "seconds", &c, error) ||
            !check_range ("Duration", "seconds", c, -lim, lim, error) ||
            !read_int_field (d, "Duration", "nanoseconds", &e, error) ||
            !check_range ("Duration", "nanoseconds", e, -lim, lim, error))
          return FALSE;

        years = a / 12;
        mons = a % 12;
        s = c + e / NANOS_PER_SECOND;
        ns = e % NANOS_PER_SECOND;
        if (s > 0 && ns < 0)
          {
            s -= 1;
            ns += NANOS_PER_SECOND;
          }
        else if (s < 0 && ns > 0)
          {
            s += 1;
            ns -= NANOS_PER_SECOND;
          }
        neg = s < 0 || ns < 0;
        if (s < 0)
          s = -s;
        if (ns < 0)
          ns = -ns;

        g_string_append_c (iso, 'P');
        if (years != 0)
          g_string_append_printf (iso, "%" G_GINT64_FORMAT "Y", years);
        if (mons != 0)
          g_string_append_printf (iso, "%" G_GINT64_FORMAT "M", mons);
        if (b != 0)
          g_string_append_printf (iso, "%" G_GINT64_FORMAT "D", b);
        if (s != 0 || ns != 0)
          {
            const char *sign = neg ? "-" : "";

            g_string_append_c (iso, 'T');
            if (s / 3600 != 0)
              g_string_append_printf (iso, "%s%" G_GINT64_FORMAT "H", sign, s / 3600);
            if (s / 60 % 60 != 0)
              g_string_append_printf (iso, "%s%" G_GINT64_FORMAT "M", sign, s / 60 % 60);
            if (s % 60 != 0 || ns != 0)
              {
                g_string_append_printf (iso, "%s%" G_GINT64_FORMAT, sign, s % 60);
                append_fraction (iso, ns);
                g_string_append_c (iso, 'S');
              }
          }
        if (iso->len == 1)
          g_string_append (iso, "T0S");

        d->k->begin_map (d->sink, 6);
        emit_str (d, "type", "duration", -1);
        emit_int (d, "months", a);
        emit_int (d, "days", b);
        emit_int (d, "seconds", c);
        emit_int (d, "nanoseconds", e);
        emit_iso (d, iso);
      }
      break;

    default:
      g_assert_not_reached ();
    }

  d->k->end_map (d->sink);
  return TRUE;
}

static gboolean
decode_point (Decoder *d,
              guint8   tag,
              guint    n_fields,
              GError **error)
{
  const char *name = tag == 0x58 ? "Point2D" : "Point3D";
  gint64 srid;
  double x, y, z = 0;

  if (n_fields != (tag == 0x58 ? 3u : 4u))
    return bp_bolt_set_invalid_data (error, "%s has %u fields", name, n_fields);
  if (!read_int_field (d, name, "srid", &srid, error) ||
      !read_float_field (d, name, "x", &x, error) ||
      !read_float_field (d, name, "y", &y, error) ||
      (tag == 0x59 && !read_float_field (d, name, "z", &z, error)))
    return FALSE;
  d->k->begin_map (d->sink, 4);
  emit_int (d, "srid", srid);
  emit_float (d, "x", x);
  emit_float (d, "y", y);
  if (tag == 0x59)
    emit_float (d, "z", z);
  d->k->end_map (d->sink);
  return TRUE;
}

static gboolean
decode_structure (Decoder *d,
                  guint    depth,
                  GError **error)
{
  guint nf;
  guint8 tag;

  if (!check_depth (d, depth, error) ||
      !bp_bolt_reader_read_struct_header (d->r, &nf, &tag, error))
    return FALSE;
  switch (tag)
    {
    case 0x4E:
      return decode_node (d, nf, depth, error);
    case 0x52:
      return decode_relationship (d, nf, depth, error);
    case 0x72:
      return decode_unbound (d, nf, depth, NULL, error);
    case 0x50:
      return decode_path (d, nf, depth, error);
    case 0x44:
    case 0x54:
    case 0x74:
    case 0x49:
    case 0x69:
    case 0x64:
    case 0x46:
    case 0x66:
    case 0x45:
      return decode_temporal (d, tag, nf, error);
    case 0x58:
    case 0x59:
      return decode_point (d, tag, nf, error);
    default:
      return bp_bolt_set_invalid_data (error, "unknown structure tag 0x%02X", tag);
    }
}

static gboolean
decode_value (Decoder *d,
              guint    depth,
              GError **error)
{
  BpBoltType type;

  if (!bp_bolt_reader_peek_type (d->r, &type, error))
    return FALSE;
  switch (type)
    {
    case BP_BOLT_TYPE_NULL:
      if (!bp_bolt_reader_read_null (d->r, error))
        return FALSE;
      d->k->null_ (d->sink);
      return TRUE;
    case BP_BOLT_TYPE_BOOLEAN:
      {
        gboolean v;
        if (!bp_bolt_reader_read_boolean (d->r, &v, error))
          return FALSE;
        d->k->boolean (d->sink, v);
        return TRUE;
      }
    case BP_BOLT_TYPE_INTEGER:
      {
        gint64 v;
        if (!bp_bolt_reader_read_int (d->r, &v, error))
          return FALSE;
        d->k->integer (d->sink, v);
        return TRUE;
      }
    case BP_BOLT_TYPE_FLOAT:
      {
        double v;
        if (!bp_bolt_reader_read_float (d->r, &v, error))
          return FALSE;
        d->k->number (d->sink, v);
        return TRUE;
      }
    case BP_BOLT_TYPE_STRING:
      {
        const char *s;
        gsize len;
        if (!bp_bolt_reader_read_string (d->r, &s, &len, error))
          return FALSE;
        d->k->string (d->sink, s, len);
        return TRUE;
      }
    case BP_BOLT_TYPE_BYTES:
      {
        const guint8 *b;
        gsize len;
        if (!bp_bolt_reader_read_bytes (d->r, &b, &len, error))
          return FALSE;
        d->k->bytes (d->sink, b, len);
        return TRUE;
      }
    case BP_BOLT_TYPE_LIST:
      {
        guint32 n;
        if (!check_depth (d, depth, error) ||
            !bp_bolt_reader_read_list_header (d->r, &n, error))
          return FALSE;
        d->k->begin_list (d->sink, n, FALSE);
        for (guint32 i = 0; i < n; i++)
          if (!decode_value (d, depth + 1, error))
            return FALSE;
        d->k->end_list (d->sink);
        return TRUE;
      }
    case BP_BOLT_TYPE_MAP:
      {
        guint32 n;
        if (!check_depth (d, depth, error) ||
            !bp_bolt_reader_read_map_header (d->r, &n, error))
          return FALSE;
        return decode_map_body (d, n, depth, error);
      }
    case BP_BOLT_TYPE_STRUCTURE:
      return decode_structure (d, depth, error);
    default:
      g_assert_not_reached ();
    }
  return FALSE;
}

static void
decoder_init (Decoder      *d,
              BpBoltReader *r,
              Sink         *sink)
{
  guint64 expansion = MAX (r->limits->max_expansion, 1);

  d->r = r;
  d->sink = sink;
  d->k = sink->klass;
  d->work = 0;
  d->work_limit = MAX ((guint64) r->len, 4096) * expansion;
  d->keys = scratch_take (&scratch_keys, sizeof (KeyRef));
  d->keys_high = 0;
}

static void
decoder_clear (Decoder *d)
{
  scratch_give_back (&scratch_keys, g_steal_pointer (&d->keys), d->keys_high);
}

/* A RECORD's data list, mapped onto @keys. */
static gboolean
decode_record (Decoder            *d,
               const char * const *keys,
               guint               n_keys,
               GError            **error)
{
  guint32 n;

  if (!bp_bolt_reader_read_list_header (d->r, &n, error))
    return FALSE;
  if (n != n_keys)
    return bp_bolt_set_invalid_data (error, "record has %u values for %u fields", n, n_keys);
  d->k->begin_map (d->sink, n);
  for (guint i = 0; i < n; i++)
    {
      d->k->key (d->sink, keys[i], strlen (keys[i]));
      if (!decode_value (d, 1, error))
        return FALSE;
    }
  d->k->end_map (d->sink);
  return TRUE;
}

/* ------------------------------------------------------------------ */
/* Public decoding entry points                                        */

/**
 * bp_bolt_reader_read_variant:
 * @reader: a #BpBoltReader
 * @error: a #GError
 *
 * Decodes the next value. A top-level Null is `o '/'`.
 *
 * Returns: (transfer full): the value, or %NULL with @error set (the reader
 *   position is then unspecified)
 */
GVariant *
bp_bolt_reader_read_variant (BpBoltReader *reader,
                             GError      **error)
{
  VariantSink sink;
  Decoder d;
  GVariant *result = NULL;

  variant_sink_init (&sink);
  decoder_init (&d, reader, &sink.parent);
  if (decode_value (&d, 0, error))
    result = g_steal_pointer (&sink.result);
  decoder_clear (&d);
  variant_sink_clear (&sink);
  return result;
}

/**
 * bp_bolt_reader_read_json:
 * @reader: a #BpBoltReader
 * @out: where to append the JSON text
 * @error: a #GError
 *
 * Decodes the next value as JSON. On error @out is restored to its length
 * on entry.
 *
 * Returns: %TRUE on success
 */
gboolean
bp_bolt_reader_read_json (BpBoltReader *reader,
                          GString      *out,
                          GError      **error)
{
  JsonSink sink;
  Decoder d;
  gsize start = out->len;
  gboolean ok;

  json_sink_init (&sink, out);
  decoder_init (&d, reader, &sink.parent);
  ok = decode_value (&d, 0, error);
  decoder_clear (&d);
  json_sink_clear (&sink);
  if (!ok)
    g_string_truncate (out, start);
  return ok;
}

/**
 * bp_bolt_record_to_variant:
 * @reader: a reader positioned at a RECORD's data list
 * @keys: (array length=n_keys): the field names (from RUN SUCCESS), unique
 * @n_keys: how many
 * @error: a #GError
 *
 * Returns: (transfer full): the record as `a{sv}`; Null values are absent keys
 */
GVariant *
bp_bolt_record_to_variant (BpBoltReader       *reader,
                           const char * const *keys,
                           guint               n_keys,
                           GError            **error)
{
  VariantSink sink;
  Decoder d;
  GVariant *result = NULL;

  variant_sink_init (&sink);
  decoder_init (&d, reader, &sink.parent);
  if (decode_record (&d, keys, n_keys, error))
    result = g_steal_pointer (&sink.result);
  decoder_clear (&d);
  variant_sink_clear (&sink);
  return result;
}

/**
 * bp_bolt_record_to_json:
 * @reader: a reader positioned at a RECORD's data list
 * @keys: (array length=n_keys): the field names, unique
 * @n_keys: how many
 * @out: where to append one JSON object (no newline)
 * @error: a #GError
 *
 * Returns: %TRUE on success; on error @out is unchanged
 */
gboolean
bp_bolt_record_to_json (BpBoltReader       *reader,
                        const char * const *keys,
                        guint               n_keys,
                        GString            *out,
                        GError            **error)
{
  JsonSink sink;
  Decoder d;
  gsize start = out->len;
  gboolean ok;

  json_sink_init (&sink, out);
  decoder_init (&d, reader, &sink.parent);
  ok = decode_record (&d, keys, n_keys, error);
  decoder_clear (&d);
  json_sink_clear (&sink);
  if (!ok)
    g_string_truncate (out, start);
  return ok;
}

static gboolean
check_trailing (BpBoltReader *reader,
                GError      **error)
{
  if (!bp_bolt_reader_at_end (reader))
    return bp_bolt_set_invalid_data (error, "%" G_GSIZE_FORMAT " trailing bytes after the value",
                                     reader->len - reader->pos);
  return TRUE;
}

/**
 * bp_bolt_decode_variant:
 * @data: (array length=len): exactly one encoded value
 * @len: its length
 * @limits: (nullable): bounds
 * @error: a #GError
 *
 * Returns: (transfer full): the value; trailing bytes are an error
 */
GVariant *
bp_bolt_decode_variant (const guint8       *data,
                        gsize               len,
                        const BpBoltLimits *limits,
                        GError            **error)
{
  BpBoltReader reader;
  g_autoptr(GVariant) value = NULL;

  bp_bolt_reader_init (&reader, data, len, limits);
  if (len > reader.limits->max_message_size)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   _("PackStream value of %lu bytes exceeds the limit of %lu"),
                   (gulong) len, (gulong) reader.limits->max_message_size);
      return NULL;
    }
  value = bp_bolt_reader_read_variant (&reader, error);
  if (value == NULL || !check_trailing (&reader, error))
    return NULL;
  return g_steal_pointer (&value);
}

/**
 * bp_bolt_decode_json:
 * @data: (array length=len): exactly one encoded value
 * @len: its length
 * @limits: (nullable): bounds
 * @error: a #GError
 *
 * Returns: (transfer full): the JSON text
 */
char *
bp_bolt_decode_json (const guint8       *data,
                     gsize               len,
                     const BpBoltLimits *limits,
                     GError            **error)
{
  BpBoltReader reader;
  g_autoptr(GString) out = g_string_new (NULL);

  bp_bolt_reader_init (&reader, data, len, limits);
  if (len > reader.limits->max_message_size)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   _("PackStream value of %lu bytes exceeds the limit of %lu"),
                   (gulong) len, (gulong) reader.limits->max_message_size);
      return NULL;
    }
  if (!bp_bolt_reader_read_json (&reader, out, error) ||
      !check_trailing (&reader, error))
    return NULL;
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* ------------------------------------------------------------------ */
/* Encoding parameters                                                 */

static gboolean
pack_error (GError    **error,
            const char *format,
            ...) G_GNUC_PRINTF (2, 3);

static gboolean
pack_error (GError    **error,
            const char *format,
            ...)
{
  va_list args;
  g_autofree char *message = NULL;

  va_start (args, format);
  message = g_strdup_vprintf (format, args);
  va_end (args);
  g_set_error_literal (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT, message);
  return FALSE;
}

static gboolean
pack_value (GByteArray         *buf,
            GVariant           *value,
            const BpBoltLimits *limits,
            guint               depth,
            GError            **error)
{
  /* as the decoder counts: lists and maps nest, scalars do not */
  if (depth >= limits->max_depth &&
      (g_variant_classify (value) == G_VARIANT_CLASS_TUPLE ||
       (g_variant_classify (value) == G_VARIANT_CLASS_ARRAY &&
        !g_variant_is_of_type (value, G_VARIANT_TYPE_BYTESTRING))))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   _("parameter nested deeper than %u levels"), limits->max_depth);
      return FALSE;
    }

  switch (g_variant_classify (value))
    {
    case G_VARIANT_CLASS_BOOLEAN:
      bp_bolt_pack_boolean (buf, g_variant_get_boolean (value));
      return TRUE;
    case G_VARIANT_CLASS_BYTE:
      bp_bolt_pack_int (buf, g_variant_get_byte (value));
      return TRUE;
    case G_VARIANT_CLASS_INT16:
      bp_bolt_pack_int (buf, g_variant_get_int16 (value));
      return TRUE;
    case G_VARIANT_CLASS_UINT16:
      bp_bolt_pack_int (buf, g_variant_get_uint16 (value));
      return TRUE;
    case G_VARIANT_CLASS_INT32:
      bp_bolt_pack_int (buf, g_variant_get_int32 (value));
      return TRUE;
    case G_VARIANT_CLASS_UINT32:
      bp_bolt_pack_int (buf, g_variant_get_uint32 (value));
      return TRUE;
    case G_VARIANT_CLASS_INT64:
      bp_bolt_pack_int (buf, g_variant_get_int64 (value));
      return TRUE;
    case G_VARIANT_CLASS_UINT64:
      {
        guint64 v = g_variant_get_uint64 (value);
        if (v > G_MAXINT64)
          return pack_error (error, _("integer parameter %llu does not fit a signed 64-bit integer"), (unsigned long long) v);
        bp_bolt_pack_int (buf, (gint64) v);
        return TRUE;
      }
    case G_VARIANT_CLASS_DOUBLE:
      bp_bolt_pack_float (buf, g_variant_get_double (value));
      return TRUE;
    case G_VARIANT_CLASS_STRING:
      {
        gsize len;
        const char *s = g_variant_get_string (value, &len);
        if (len > limits->max_string_size)
          {
            g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                         _("string parameter of %lu bytes exceeds the limit of %lu"),
                         (gulong) len, (gulong) limits->max_string_size);
            return FALSE;
          }
        bp_bolt_pack_string (buf, s, len);
        return TRUE;
      }
    case G_VARIANT_CLASS_OBJECT_PATH:
      if (strcmp (g_variant_get_string (value, NULL), "/") != 0)
        return pack_error (error, _("object path parameter '%s': only '/' (null) is allowed"),
                           g_variant_get_string (value, NULL));
      bp_bolt_pack_null (buf);
      return TRUE;
    case G_VARIANT_CLASS_VARIANT:
      {
        /* a v box is no PackStream level: av and a{sv} nest once per
         * list or map, as the decoder produced them */
        g_autoptr(GVariant) inner = g_variant_get_variant (value);
        return pack_value (buf, inner, limits, depth, error);
      }
    case G_VARIANT_CLASS_MAYBE:
      {
        g_autoptr(GVariant) inner = g_variant_get_maybe (value);
        if (inner == NULL)
          {
            bp_bolt_pack_null (buf);
            return TRUE;
          }
        return pack_value (buf, inner, limits, depth, error);
      }
    case G_VARIANT_CLASS_ARRAY:
      {
        const GVariantType *elem = g_variant_type_element (g_variant_get_type (value));
        gsize n = g_variant_n_children (value);

        if (g_variant_type_equal (elem, G_VARIANT_TYPE_BYTE))
          {
            gsize len;
            const guint8 *data = g_variant_get_fixed_array (value, &len, 1);
            if (len > limits->max_string_size)
              {
                g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                             _("byte array parameter of %lu bytes exceeds the limit of %lu"),
                             (gulong) len, (gulong) limits->max_string_size);
                return FALSE;
              }
            bp_bolt_pack_bytes (buf, data, len);
            return TRUE;
          }
        if (n > limits->max_collection_size)
          {
            g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                         _("parameter collection of %lu entries exceeds the limit of %u"),
                         (gulong) n, limits->max_collection_size);
            return FALSE;
          }
        if (g_variant_type_is_dict_entry (elem))
          {
            if (!g_variant_type_equal (g_variant_type_key (elem), G_VARIANT_TYPE_STRING))
              return pack_error (error, _("dictionary parameter of type '%s': keys must be strings"),
                                 g_variant_get_type_string (value));
            bp_bolt_pack_map_header (buf, (guint32) n);
            for (gsize i = 0; i < n; i++)
              {
                g_autoptr(GVariant) entry = g_variant_get_child_value (value, i);
                g_autoptr(GVariant) k = g_variant_get_child_value (entry, 0);
                g_autoptr(GVariant) v = g_variant_get_child_value (entry, 1);
                gsize klen;
                const char *ks = g_variant_get_string (k, &klen);

                bp_bolt_pack_string (buf, ks, klen);
                if (!pack_value (buf, v, limits, depth + 1, error))
                  return FALSE;
              }
            return TRUE;
          }
        bp_bolt_pack_list_header (buf, (guint32) n);
        for (gsize i = 0; i < n; i++)
          {
            g_autoptr(GVariant) child = g_variant_get_child_value (value, i);
            if (!pack_value (buf, child, limits, depth + 1, error))
              return FALSE;
          }
        return TRUE;
      }
    case G_VARIANT_CLASS_TUPLE:
      {
        gsize n = g_variant_n_children (value);
        bp_bolt_pack_list_header (buf, (guint32) n);
        for (gsize i = 0; i < n; i++)
          {
            g_autoptr(GVariant) child = g_variant_get_child_value (value, i);
            if (!pack_value (buf, child, limits, depth + 1, error))
              return FALSE;
          }
        return TRUE;
      }
    case G_VARIANT_CLASS_HANDLE:
    case G_VARIANT_CLASS_SIGNATURE:
    case G_VARIANT_CLASS_DICT_ENTRY:
    default:
      return pack_error (error, _("parameter of type '%s' cannot be sent to a Bolt server"),
                         g_variant_get_type_string (value));
    }
}

/**
 * bp_bolt_pack_variant:
 * @buf: the output
 * @value: the value to encode (see the mapping in the header)
 * @limits: (nullable): bounds
 * @error: a #GError
 *
 * Returns: %TRUE on success; on failure @buf is restored to its length on entry
 */
gboolean
bp_bolt_pack_variant (GByteArray         *buf,
                      GVariant           *value,
                      const BpBoltLimits *limits,
                      GError            **error)
{
  guint start = buf->len;

  if (limits == NULL)
    limits = bp_bolt_limits_get_default ();
  if (!pack_value (buf, value, limits, 0, error))
    {
      g_byte_array_set_size (buf, start);
      return FALSE;
    }
  return TRUE;
}
