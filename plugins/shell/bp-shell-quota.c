/* bp-shell-quota.c: concurrent process counts, overall and per caller
 *
 * A slot is taken before a process is spawned and given back when the
 * process has been reaped (not when its D-Bus object goes away), so a child
 * that is slow to die still counts.
 *
 * Context: not thread-safe; use from the daemon's main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "bp-shell-quota.h"

struct _BpShellQuota
{
  GObject     parent_instance;

  GHashTable *per_caller; /* (owned): caller unique name → count (GUINT_TO_POINTER) */
  guint       n_total;
  guint       max_total;
  guint       max_per_caller;
};

G_DEFINE_FINAL_TYPE (BpShellQuota, bp_shell_quota, G_TYPE_OBJECT)

static void
bp_shell_quota_finalize (GObject *object)
{
  BpShellQuota *self = BP_SHELL_QUOTA (object);

  g_clear_pointer (&self->per_caller, g_hash_table_unref);

  G_OBJECT_CLASS (bp_shell_quota_parent_class)->finalize (object);
}

static void
bp_shell_quota_class_init (BpShellQuotaClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bp_shell_quota_finalize;
}

static void
bp_shell_quota_init (BpShellQuota *self)
{
  self->per_caller = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

/**
 * bp_shell_quota_new:
 * @max_total: most processes at once over all callers (0: none allowed)
 * @max_per_caller: most processes at once for one caller (0: none allowed)
 *
 * Returns: (transfer full): a new quota
 */
BpShellQuota *
bp_shell_quota_new (guint max_total,
                    guint max_per_caller)
{
  BpShellQuota *self = g_object_new (BP_TYPE_SHELL_QUOTA, NULL);

  self->max_total = max_total;
  self->max_per_caller = max_per_caller;
  return self;
}

/**
 * bp_shell_quota_set_limits:
 * @self: a quota
 * @max_total: new overall bound
 * @max_per_caller: new per-caller bound
 *
 * Changes the bounds (on configuration reload); slots already taken stay
 * taken even above the new bounds.
 */
void
bp_shell_quota_set_limits (BpShellQuota *self,
                           guint         max_total,
                           guint         max_per_caller)
{
  g_return_if_fail (BP_IS_SHELL_QUOTA (self));

  self->max_total = max_total;
  self->max_per_caller = max_per_caller;
}

/**
 * bp_shell_quota_acquire:
 * @self: a quota
 * @caller: the caller's unique bus name (or any key)
 * @error: return location for a #GError
 *
 * Takes one slot for @caller.
 *
 * Returns: %TRUE if taken, else %FALSE with %BP_ERROR_LIMIT_EXCEEDED
 */
gboolean
bp_shell_quota_acquire (BpShellQuota  *self,
                        const char    *caller,
                        GError       **error)
{
  guint n;

  g_return_val_if_fail (BP_IS_SHELL_QUOTA (self), FALSE);
  g_return_val_if_fail (caller != NULL, FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (self->n_total >= self->max_total)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "max-processes: %u processes are running, the limit is %u",
                   self->n_total, self->max_total);
      return FALSE;
    }
  n = GPOINTER_TO_UINT (g_hash_table_lookup (self->per_caller, caller));
  if (n >= self->max_per_caller)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                   "max-processes-per-caller: this caller runs %u processes, the limit is %u",
                   n, self->max_per_caller);
      return FALSE;
    }

  g_hash_table_insert (self->per_caller, g_strdup (caller), GUINT_TO_POINTER (n + 1));
  self->n_total++;
  return TRUE;
}

/**
 * bp_shell_quota_release:
 * @self: a quota
 * @caller: the caller a slot was acquired for
 *
 * Gives back one slot taken with bp_shell_quota_acquire().
 */
void
bp_shell_quota_release (BpShellQuota *self,
                        const char   *caller)
{
  guint n;

  g_return_if_fail (BP_IS_SHELL_QUOTA (self));
  g_return_if_fail (caller != NULL);

  n = GPOINTER_TO_UINT (g_hash_table_lookup (self->per_caller, caller));
  g_return_if_fail (n > 0);
  g_return_if_fail (self->n_total > 0);

  if (n == 1)
    g_hash_table_remove (self->per_caller, caller);
  else
    g_hash_table_insert (self->per_caller, g_strdup (caller), GUINT_TO_POINTER (n - 1));
  self->n_total--;
}

guint
bp_shell_quota_get_n_total (BpShellQuota *self)
{
  g_return_val_if_fail (BP_IS_SHELL_QUOTA (self), 0);

  return self->n_total;
}

guint
bp_shell_quota_get_n_for_caller (BpShellQuota *self,
                                 const char   *caller)
{
  g_return_val_if_fail (BP_IS_SHELL_QUOTA (self), 0);
  g_return_val_if_fail (caller != NULL, 0);

  return GPOINTER_TO_UINT (g_hash_table_lookup (self->per_caller, caller));
}
