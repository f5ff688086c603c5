/* bp-bolt-routing-table.c: a cluster routing table from ROUTE
 *
 * ROUTE SUCCESS carries `rt = {ttl, db, servers: [{addresses, role}]}`
 * (bolt/message.adoc §ROUTE) with the roles ROUTE, READ and WRITE. The
 * table expires ttl seconds after it was received (measured on a BpClock);
 * a server that failed is removed until the next refresh, and a server that
 * answered NotALeader is removed from the writers only. Selection is
 * round-robin or least-connections per role.
 *
 * Single-threaded: use from one main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <glib/gi18n-lib.h>

#include <string.h>

#include "bp-bolt-routing-table.h"

#define MAX_SERVERS_PER_ROLE 1024
#define MAX_TTL_SECONDS      (G_GINT64_CONSTANT (10) * 365 * 24 * 3600)

struct _BpBoltRoutingTable
{
  GObject    parent_instance;

  BpClock   *clock;                     /* (owned) */
  char      *database;                  /* (nullable) */
  gint64     ttl;                       /* seconds */
  gint64     expires;                   /* clock time, µs */
  GPtrArray *servers[BP_BOLT_N_ROLES];  /* (element-type utf8) NULL-terminated */
  guint      next[BP_BOLT_N_ROLES];     /* round-robin cursors */
};

G_DEFINE_FINAL_TYPE (BpBoltRoutingTable, bp_bolt_routing_table, G_TYPE_OBJECT)

static void
bp_bolt_routing_table_finalize (GObject *object)
{
  BpBoltRoutingTable *self = BP_BOLT_ROUTING_TABLE (object);

  g_clear_object (&self->clock);
  g_free (self->database);
  for (guint i = 0; i < BP_BOLT_N_ROLES; i++)
    g_clear_pointer (&self->servers[i], g_ptr_array_unref);

  G_OBJECT_CLASS (bp_bolt_routing_table_parent_class)->finalize (object);
}

static void
bp_bolt_routing_table_class_init (BpBoltRoutingTableClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = bp_bolt_routing_table_finalize;
}

static void
bp_bolt_routing_table_init (BpBoltRoutingTable *self)
{
  for (guint i = 0; i < BP_BOLT_N_ROLES; i++)
    self->servers[i] = g_ptr_array_new_null_terminated (0, g_free, TRUE);
}

const char *
bp_bolt_role_to_string (BpBoltRole role)
{
  switch (role)
    {
    case BP_BOLT_ROLE_ROUTE:
      return "ROUTE";
    case BP_BOLT_ROLE_READ:
      return "READ";
    case BP_BOLT_ROLE_WRITE:
      return "WRITE";
    default:
      return "?";
    }
}

static gboolean
invalid (GError    **error,
         const char *what)
{
  g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, _("Invalid routing table: %s"), what);
  return FALSE;
}

static gboolean
contains (GPtrArray  *array,
          const char *address)
{
  for (guint i = 0; i < array->len; i++)
    if (strcmp (g_ptr_array_index (array, i), address) == 0)
      return TRUE;
  return FALSE;
}

static gboolean
parse_servers (BpBoltRoutingTable *self,
               GVariant           *servers,
               GError            **error)
{
  for (gsize i = 0; i < g_variant_n_children (servers); i++)
    {
      g_autoptr(GVariant) boxed = g_variant_get_child_value (servers, i);
      g_autoptr(GVariant) entry = g_variant_get_variant (boxed);
      g_autoptr(GVariant) addresses = NULL;
      const char *role_name;
      int role;

      if (!g_variant_is_of_type (entry, G_VARIANT_TYPE_VARDICT))
        return invalid (error, "a servers entry is not a dictionary");
      if (!g_variant_lookup (entry, "role", "&s", &role_name))
        return invalid (error, "a servers entry has no role");
      addresses = g_variant_lookup_value (entry, "addresses", G_VARIANT_TYPE ("av"));
      if (addresses == NULL)
        return invalid (error, "a servers entry has no addresses list");
      if (strcmp (role_name, "ROUTE") == 0)
        role = BP_BOLT_ROLE_ROUTE;
      else if (strcmp (role_name, "READ") == 0)
        role = BP_BOLT_ROLE_READ;
      else if (strcmp (role_name, "WRITE") == 0)
        role = BP_BOLT_ROLE_WRITE;
      else
        continue;   /* a role from the future */

      for (gsize k = 0; k < g_variant_n_children (addresses); k++)
        {
          g_autoptr(GVariant) b = g_variant_get_child_value (addresses, k);
          g_autoptr(GVariant) a = g_variant_get_variant (b);
          const char *address;

          if (!g_variant_is_of_type (a, G_VARIANT_TYPE_STRING))
            return invalid (error, "an address is not a string");
          address = g_variant_get_string (a, NULL);
          if (*address == '\0')
            return invalid (error, "an address is empty");
          if (self->servers[role]->len >= MAX_SERVERS_PER_ROLE)
            return invalid (error, "too many servers");
          if (!contains (self->servers[role], address))
            g_ptr_array_add (self->servers[role], g_strdup (address));
        }
    }
  return TRUE;
}

/**
 * bp_bolt_routing_table_new:
 * @rt: the `rt` dictionary of ROUTE SUCCESS (bp_bolt_connection_route_finish())
 * @clock: (nullable): the clock measuring the ttl, %NULL for the default
 * @error: a #GError
 *
 * Returns: (transfer full): the table, or %NULL (%G_IO_ERROR_INVALID_DATA)
 *   if @rt is malformed
 */
BpBoltRoutingTable *
bp_bolt_routing_table_new (GVariant *rt,
                           BpClock  *clock,
                           GError  **error)
{
  g_autoptr(BpBoltRoutingTable) self = NULL;
  g_autoptr(GVariant) servers = NULL;
  gint64 ttl;

  g_return_val_if_fail (rt != NULL && g_variant_is_of_type (rt, G_VARIANT_TYPE_VARDICT), NULL);

  self = g_object_new (BP_TYPE_BOLT_ROUTING_TABLE, NULL);
  self->clock = g_object_ref (clock != NULL ? clock : bp_clock_get_default ());
  if (!g_variant_lookup (rt, "ttl", "x", &ttl) || ttl < 0)
    {
      invalid (error, "ttl missing or negative");
      return NULL;
    }
  self->ttl = MIN (ttl, MAX_TTL_SECONDS);
  self->expires = bp_clock_get_time (self->clock) + self->ttl * G_USEC_PER_SEC;
  g_variant_lookup (rt, "db", "s", &self->database);
  servers = g_variant_lookup_value (rt, "servers", G_VARIANT_TYPE ("av"));
  if (servers == NULL)
    {
      invalid (error, "servers missing");
      return NULL;
    }
  if (!parse_servers (self, servers, error))
    return NULL;
  return g_steal_pointer (&self);
}

/**
 * bp_bolt_routing_table_get_database:
 * @self: a #BpBoltRoutingTable
 *
 * Returns: (nullable): the database the table is for (Bolt 4.4+)
 */
const char *
bp_bolt_routing_table_get_database (BpBoltRoutingTable *self)
{
  g_return_val_if_fail (BP_IS_BOLT_ROUTING_TABLE (self), NULL);
  return self->database;
}

gint64
bp_bolt_routing_table_get_ttl (BpBoltRoutingTable *self)
{
  g_return_val_if_fail (BP_IS_BOLT_ROUTING_TABLE (self), 0);
  return self->ttl;
}

/**
 * bp_bolt_routing_table_get_expires:
 * @self: a #BpBoltRoutingTable
 *
 * Returns: the clock time (µs) at which the table expires
 */
gint64
bp_bolt_routing_table_get_expires (BpBoltRoutingTable *self)
{
  g_return_val_if_fail (BP_IS_BOLT_ROUTING_TABLE (self), 0);
  return self->expires;
}

gboolean
bp_bolt_routing_table_is_expired (BpBoltRoutingTable *self)
{
  g_return_val_if_fail (BP_IS_BOLT_ROUTING_TABLE (self), TRUE);
  return bp_clock_get_time (self->clock) >= self->expires;
}

/**
 * bp_bolt_routing_table_is_stale_for:
 * @self: a #BpBoltRoutingTable
 * @role: %BP_BOLT_ROLE_READ or %BP_BOLT_ROLE_WRITE
 *
 * As the official drivers decide: the table must be refreshed before use
 * if it expired, has no routers, or has no server for @role.
 *
 * Returns: %TRUE if a new ROUTE is needed
 */
gboolean
bp_bolt_routing_table_is_stale_for (BpBoltRoutingTable *self,
                                    BpBoltRole          role)
{
  g_return_val_if_fail (BP_IS_BOLT_ROUTING_TABLE (self), TRUE);
  g_return_val_if_fail (role < BP_BOLT_N_ROLES, TRUE);

  return bp_bolt_routing_table_is_expired (self) ||
         self->servers[BP_BOLT_ROLE_ROUTE]->len == 0 ||
         self->servers[role]->len == 0;
}

/**
 * bp_bolt_routing_table_get_servers:
 * @self: a #BpBoltRoutingTable
 * @role: the role
 * @n_servers: (out) (optional): how many
 *
 * Returns: (transfer none) (array length=n_servers): the addresses
 */
const char * const *
bp_bolt_routing_table_get_servers (BpBoltRoutingTable *self,
                                   BpBoltRole          role,
                                   guint              *n_servers)
{
  g_return_val_if_fail (BP_IS_BOLT_ROUTING_TABLE (self), NULL);
  g_return_val_if_fail (role < BP_BOLT_N_ROLES, NULL);

  if (n_servers != NULL)
    *n_servers = self->servers[role]->len;
  return (const char * const *) self->servers[role]->pdata;
}

static gboolean
remove_from (GPtrArray  *array,
             const char *address)
{
  for (guint i = 0; i < array->len; i++)
    if (strcmp (g_ptr_array_index (array, i), address) == 0)
      {
        g_ptr_array_remove_index (array, i);
        return TRUE;
      }
  return FALSE;
}

/**
 * bp_bolt_routing_table_remove_server:
 * @self: a #BpBoltRoutingTable
 * @address: a server that could not be reached
 *
 * Forgets @address in every role until the next refresh.
 *
 * Returns: %TRUE if it was in the table
 */
gboolean
bp_bolt_routing_table_remove_server (BpBoltRoutingTable *self,
                                     const char         *address)
{
  gboolean removed = FALSE;

  g_return_val_if_fail (BP_IS_BOLT_ROUTING_TABLE (self), FALSE);
  g_return_val_if_fail (address != NULL, FALSE);

  for (guint i = 0; i < BP_BOLT_N_ROLES; i++)
    removed |= remove_from (self->servers[i], address);
  return removed;
}

/**
 * bp_bolt_routing_table_remove_writer:
 * @self: a #BpBoltRoutingTable
 * @address: a server that said it is not the leader
 *   (`Neo.ClientError.Cluster.NotALeader`)
 *
 * Returns: %TRUE if it was a writer
 */
gboolean
bp_bolt_routing_table_remove_writer (BpBoltRoutingTable *self,
                                     const char         *address)
{
  g_return_val_if_fail (BP_IS_BOLT_ROUTING_TABLE (self), FALSE);
  g_return_val_if_fail (address != NULL, FALSE);

  return remove_from (self->servers[BP_BOLT_ROLE_WRITE], address);
}

/**
 * bp_bolt_routing_table_select:
 * @self: a #BpBoltRoutingTable
 * @role: the role wanted
 * @policy: how to choose
 * @in_use: (nullable) (scope call): connections in use per address, for
 *   %BP_BOLT_SELECT_LEAST_CONNECTIONS
 * @user_data: data for @in_use
 *
 * Returns: (transfer full) (nullable): an address, or %NULL if the role has
 *   no server
 */
char *
bp_bolt_routing_table_select (BpBoltRoutingTable *self,
                              BpBoltRole          role,
                              BpBoltSelectPolicy  policy,
                              BpBoltInUseFunc     in_use,
                              gpointer            user_data)
{
  GPtrArray *array;
  guint n, start, best;

  g_return_val_if_fail (BP_IS_BOLT_ROUTING_TABLE (self), NULL);
  g_return_val_if_fail (role < BP_BOLT_N_ROLES, NULL);

  array = self->servers[role];
  n = array->len;
  if (n == 0)
    return NULL;
  start = self->next[role] % n;
  self->next[role] = (start + 1) % n;
  best = start;

  if (policy == BP_BOLT_SELECT_LEAST_CONNECTIONS && in_use != NULL)
    {
      guint best_load = G_MAXUINT;

      for (guint k = 0; k < n; k++)
        {
          guint i = (start + k) % n;
          guint load = in_use (g_ptr_array_index (array, i), user_data);

          if (load < best_load)
            {
              best_load = load;
              best = i;
            }
        }
    }
  return g_strdup (g_ptr_array_index (array, best));
}
