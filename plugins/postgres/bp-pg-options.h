/* bp-pg-options.h: validated a{sv} options of the Sql methods
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <backplane.h>

#include "bp-pg-fd-stream.h"

G_BEGIN_DECLS

typedef enum
{
  BP_PG_OPT_TIMEOUT         = 1 << 0,  /* timeout-ms u */
  BP_PG_OPT_MAX_ROWS        = 1 << 1,  /* max-rows u */
  BP_PG_OPT_IDEMPOTENT      = 1 << 2,  /* idempotent b */
  BP_PG_OPT_IDEMPOTENCY_KEY = 1 << 3,  /* idempotency-key s */
  BP_PG_OPT_DEAD_LETTER     = 1 << 4,  /* dead-letter b */
  BP_PG_OPT_FORMAT          = 1 << 5,  /* format s */
  BP_PG_OPT_ATOMIC          = 1 << 6,  /* atomic b */
  BP_PG_OPT_ISOLATION       = 1 << 7,  /* isolation s */
  BP_PG_OPT_READ_ONLY       = 1 << 8,  /* read-only b */
  BP_PG_OPT_IDLE_TIMEOUT    = 1 << 9,  /* idle-timeout-ms u */
} BpPgOptionFlags;

#define BP_PG_MAX_SQL_BYTES             (1024 * 1024)
#define BP_PG_MAX_IDEMPOTENCY_KEY_BYTES 200
#define BP_PG_DEFAULT_IDLE_TIMEOUT_MS   60000
#define BP_PG_MAX_IDLE_TIMEOUT_MS       3600000

typedef struct
{
  guint       timeout_ms;
  guint       max_rows;
  gboolean    idempotent;
  char       *idempotency_key;   /* (owned) (nullable) */
  gboolean    dead_letter;
  BpPgFormat  format;
  gboolean    atomic;
  const char *isolation;         /* static string */
  gboolean    read_only;
  guint       idle_timeout_ms;
} BpPgOptions;

gboolean bp_pg_options_parse (GVariant         *options,
                              BpPgOptionFlags   allowed,
                              guint             max_rows_cap,
                              BpPgOptions      *out,
                              GError          **error);
void     bp_pg_options_clear (BpPgOptions      *options);
int      bp_pg_steal_fd      (BpCall           *call,
                              GVariant         *handle,
                              GError          **error);
gboolean bp_pg_check_sql     (const char       *field,
                              const char       *sql,
                              GError          **error);

G_END_DECLS
