/* pg-fixture.h: a throw-away PostgreSQL 15 cluster for tests
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct
{
  char    *dir;              /* temporary directory, holds everything */
  char    *data_dir;         /* dir/data */
  char    *socket_dir;       /* the Unix socket directory (= dir) */
  char    *log_file;         /* dir/postgres.log */
  guint16  port;             /* TCP port on 127.0.0.1 (also names the socket) */
  char    *superuser;        /* superuser name */
  char    *password;         /* its password (TCP needs it: scram-sha-256) */
  char    *conninfo_tcp;     /* host=127.0.0.1 port=… dbname=postgres user=… */
  char    *conninfo_socket;  /* host=<socket_dir> port=… dbname=postgres user=… (trust) */

  /* private */
  char    *server_options;   /* pg_ctl -o */
  int      watchdog_fd;
  GPid     watchdog_pid;
} PgFixture;

PgFixture *pg_fixture_start (GError    **error);
void       pg_fixture_stop  (PgFixture  *fixture);
char      *pg_fixture_psql  (PgFixture  *fixture,
                             const char *sql,
                             GError    **error);
gboolean   pg_fixture_pg_ctl (PgFixture  *fixture,
                              const char *action,
                              GError    **error);

G_END_DECLS
