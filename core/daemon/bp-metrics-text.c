/* bp-metrics-text.c: OpenMetrics text exposition
 *
 * Collects samples grouped by metric family (a family's # TYPE and # HELP
 * lines are written once, its samples together, as OpenMetrics requires)
 * and writes them out ending with `# EOF`. Numeric entries of an a{sv}
 * (stats dictionaries of breakers, pools, latency, loop lag) become gauges
 * named PREFIX_KEY with `-` turned into `_`.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <math.h>

#include "bp-metrics-text.h"

typedef struct
{
  char    *name;
  char    *type;
  char    *help;
  GString *samples;
} Family;

struct _BpMetricsText
{
  GPtrArray  *families;  /* (element-type Family) in first-seen order */
  GHashTable *by_name;   /* name → Family (borrowed) */
};

static void
family_free (Family *f)
{
  g_free (f->name);
  g_free (f->type);
  g_free (f->help);
  g_string_free (f->samples, TRUE);
  g_free (f);
}

BpMetricsText *
bp_metrics_text_new (void)
{
  BpMetricsText *m = g_new0 (BpMetricsText, 1);

  m->families = g_ptr_array_new_with_free_func ((GDestroyNotify) family_free);
  m->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  return m;
}

void
bp_metrics_text_free (BpMetricsText *m)
{
  if (m == NULL)
    return;
  g_hash_table_unref (m->by_name);
  g_ptr_array_unref (m->families);
  g_free (m);
}

static Family *
family (BpMetricsText *m,
        const char    *name,
        const char    *type,
        const char    *help)
{
  Family *f = g_hash_table_lookup (m->by_name, name);

  if (f == NULL)
    {
      f = g_new0 (Family, 1);
      f->name = g_strdup (name);
      f->type = g_strdup (type);
      f->help = g_strdup (help);
      f->samples = g_string_new (NULL);
      g_ptr_array_add (m->families, f);
      g_hash_table_insert (m->by_name, f->name, f);
    }
  return f;
}

static void
append_label_value (GString    *s,
                    const char *value)
{
  g_string_append_c (s, '"');
  for (const char *p = value; *p; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_c (s, '\\');
      if (*p == '\n')
        {
          g_string_append (s, "\\n");
          continue;
        }
      g_string_append_c (s, *p);
    }
  g_string_append_c (s, '"');
}

static void
append_value (GString *s,
              double   value)
{
  char buf[G_ASCII_DTOSTR_BUF_SIZE];

  if (isnan (value))
    g_string_append (s, "NaN");
  else if (value == floor (value) && fabs (value) < 1e15)
    g_string_append_printf (s, "%.0f", value);
  else
    g_string_append (s, g_ascii_dtostr (buf, sizeof buf, value));
}

void
bp_metrics_text_add2 (BpMetricsText *m,
                      const char    *name,
                      const char    *type,
                      const char    *help,
                      const char    *label1,
                      const char    *value1,
                      const char    *label2,
                      const char    *value2,
                      double         value)
{
  Family *f = family (m, name, type, help);

  g_string_append (f->samples, name);
  if (label1 != NULL)
    {
      g_string_append_printf (f->samples, "{%s=", label1);
      append_label_value (f->samples, value1);
      if (label2 != NULL)
        {
          g_string_append_printf (f->samples, ",%s=", label2);
          append_label_value (f->samples, value2);
        }
      g_string_append_c (f->samples, '}');
    }
  g_string_append_c (f->samples, ' ');
  append_value (f->samples, value);
  g_string_append_c (f->samples, '\n');
}

void
bp_metrics_text_add (BpMetricsText *m,
                     const char    *name,
                     const char    *type,
                     const char    *help,
                     const char    *label,
                     const char    *label_value,
                     double         value)
{
  bp_metrics_text_add2 (m, name, type, help, label, label_value, NULL, NULL, value);
}

static gboolean
variant_to_double (GVariant *v,
                   double   *out)
{
  if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT64))
    *out = (double) g_variant_get_int64 (v);
  else if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT64))
    *out = (double) g_variant_get_uint64 (v);
  else if (g_variant_is_of_type (v, G_VARIANT_TYPE_INT32))
    *out = g_variant_get_int32 (v);
  else if (g_variant_is_of_type (v, G_VARIANT_TYPE_UINT32))
    *out = g_variant_get_uint32 (v);
  else if (g_variant_is_of_type (v, G_VARIANT_TYPE_DOUBLE))
    *out = g_variant_get_double (v);
  else if (g_variant_is_of_type (v, G_VARIANT_TYPE_BOOLEAN))
    *out = g_variant_get_boolean (v);
  else
    return FALSE;
  return TRUE;
}

void
bp_metrics_text_add_vardict (BpMetricsText *m,
                             const char    *prefix,
                             const char    *help,
                             const char    *label,
                             const char    *label_value,
                             GVariant      *dict)
{
  GVariantIter iter;
  const char *key;
  GVariant *value;

  if (dict == NULL || !g_variant_is_of_type (dict, G_VARIANT_TYPE_VARDICT))
    return;
  g_variant_iter_init (&iter, dict);
  while (g_variant_iter_loop (&iter, "{&sv}", &key, &value))
    {
      g_autofree char *name = NULL;
      double d;

      if (!variant_to_double (value, &d))
        continue;
      name = g_strdup_printf ("%s_%s", prefix, key);
      for (char *p = name; *p; p++)
        if (!g_ascii_isalnum (*p) && *p != '_')
          *p = '_';
      bp_metrics_text_add (m, name, "gauge", help, label, label_value, d);
    }
}

/**
 * bp_metrics_text_finish:
 * @m: the collector
 *
 * Returns: (transfer full): the exposition text, ending with `# EOF`
 */
char *
bp_metrics_text_finish (BpMetricsText *m)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < m->families->len; i++)
    {
      Family *f = g_ptr_array_index (m->families, i);

      g_string_append_printf (s, "# TYPE %s %s\n# HELP %s %s\n%s",
                              f->name, f->type, f->name, f->help, f->samples->str);
    }
  g_string_append (s, "# EOF\n");
  return g_string_free (s, FALSE);
}
