/* pg-fixture.c: a throw-away PostgreSQL 15 cluster for tests
 *
 * pg_fixture_start() runs initdb into a fresh temporary directory and starts
 * the server with fsync=off, listening on a Unix socket in that directory
 * and on 127.0.0.1 at a free port. Local (socket) connections are trusted,
 * TCP needs the superuser's password (scram-sha-256), so tests can check
 * password handling. PostgreSQL refuses to run as root: when euid is 0 every
 * server program runs as the `postgres` system user through runuser, and
 * the directory is chowned to it.
 *
 * Cleanup happens even when a test dies: a watchdog child (forked at start,
 * in its own session) waits on a pipe whose write end only this process
 * holds; when the pipe reports EOF without the "done" byte — the test
 * process exited, crashed or was killed — it stops the cluster with
 * `pg_ctl stop -m immediate` and removes the directory. An atexit()
 * handler stops fixtures left running at a normal exit.
 *
 * Test code only: it blocks (g_spawn_sync) while starting and stopping.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include "pg-fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <pwd.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUPERUSER "bp_test"

static GPtrArray *live_fixtures;  /* (element-type PgFixture) not owned */

static gboolean
running_as_root (void)
{
  return geteuid () == 0;
}

static char *
pg_program (const char *name)
{
  return g_build_filename (BP_PG_BINDIR, name, NULL);
}

/* Runs a server program (as postgres when root) in the fixture directory. */
static gboolean
run_server_program (const char  *dir,
                    GPtrArray   *args,
                    GError     **error)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = 0;

  if (running_as_root ())
    {
      g_ptr_array_add (argv, (char *) "runuser");
      g_ptr_array_add (argv, (char *) "-u");
      g_ptr_array_add (argv, (char *) "postgres");
      g_ptr_array_add (argv, (char *) "--");
    }
  for (guint i = 0; i < args->len; i++)
    g_ptr_array_add (argv, g_ptr_array_index (args, i));
  g_ptr_array_add (argv, NULL);

  if (!g_spawn_sync (dir, (char **) argv->pdata, NULL, G_SPAWN_SEARCH_PATH,
                     NULL, NULL, &out, &err, &status, error))
    return FALSE;
  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED,
                   "%s failed: %s%s", (char *) g_ptr_array_index (args, 0),
                   err != NULL ? err : "", out != NULL ? out : "");
      return FALSE;
    }
  return TRUE;
}

static guint16
find_free_port (GError **error)
{
  g_autoptr(GSocket) socket = NULL;
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) any = g_inet_socket_address_new (loopback, 0);
  g_autoptr(GSocketAddress) bound = NULL;

  socket = g_socket_new (G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, error);
  if (socket == NULL)
    return 0;
  if (!g_socket_bind (socket, any, FALSE, error))
    return 0;
  bound = g_socket_get_local_address (socket, error);
  if (bound == NULL)
    return 0;
  return g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (bound));
}

static char *
cleanup_script (PgFixture *fixture)
{
  g_autofree char *pg_ctl = pg_program ("pg_ctl");
  g_autofree char *q_pg_ctl = g_shell_quote (pg_ctl);
  g_autofree char *q_data = g_shell_quote (fixture->data_dir);
  g_autofree char *q_dir = g_shell_quote (fixture->dir);

  return g_strdup_printf ("cd / && %s %s stop -D %s -m immediate -w -t 30 >/dev/null 2>&1; rm -rf %s",
                          running_as_root () ? "runuser -u postgres --" : "",
                          q_pg_ctl, q_data, q_dir);
}

static gboolean
start_watchdog (PgFixture  *fixture,
                GError    **error)
{
  g_autofree char *script = cleanup_script (fixture);
  char *argv[] = { (char *) "/bin/sh", (char *) "-c", script, NULL };
  int fds[2];
  pid_t pid;

  if (!g_unix_open_pipe (fds, FD_CLOEXEC, error))
    return FALSE;

  pid = fork ();
  if (pid < 0)
    {
      int saved = errno;
      close (fds[0]);
      close (fds[1]);
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "fork: %s", g_strerror (saved));
      return FALSE;
    }
  if (pid == 0)
    {
      /* Child: async-signal-safe calls only until exec. */
      char c;
      ssize_t r;
      int null_fd;

      setsid ();
      close (fds[1]);
      null_fd = open ("/dev/null", O_RDWR);
      if (null_fd >= 0)
        {
          dup2 (null_fd, 0);
          dup2 (null_fd, 1);
          dup2 (null_fd, 2);
        }
      do
        r = read (fds[0], &c, 1);
      while (r < 0 && errno == EINTR);
      if (r == 1)
        _exit (0);  /* the fixture was stopped properly */
      execv ("/bin/sh", argv);
      _exit (127);
    }

  close (fds[0]);
  fixture->watchdog_fd = fds[1];
  fixture->watchdog_pid = pid;
  return TRUE;
}

static void
stop_watchdog (PgFixture *fixture)
{
  if (fixture->watchdog_fd >= 0)
    {
      char c = 'x';
      int status;

      if (write (fixture->watchdog_fd, &c, 1) != 1)
        g_debug ("watchdog write failed");
      close (fixture->watchdog_fd);
      fixture->watchdog_fd = -1;
      while (waitpid (fixture->watchdog_pid, &status, 0) < 0 && errno == EINTR)
        ;
    }
}

static void
stop_all_at_exit (void)
{
  while (live_fixtures != NULL && live_fixtures->len > 0)
    pg_fixture_stop (g_ptr_array_index (live_fixtures, live_fixtures->len - 1));
}

static void
fixture_free (PgFixture *fixture)
{
  g_free (fixture->dir);
  g_free (fixture->data_dir);
  g_free (fixture->socket_dir);
  g_free (fixture->log_file);
  g_free (fixture->superuser);
  g_free (fixture->password);
  g_free (fixture->conninfo_tcp);
  g_free (fixture->conninfo_socket);
  g_free (fixture->server_options);
  g_free (fixture);
}

static gboolean
chown_to_postgres (const char  *path,
                   GError     **error)
{
  struct passwd *pw;

  if (!running_as_root ())
    return TRUE;
  pw = getpwnam ("postgres");
  if (pw == NULL)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "running as root but there is no `postgres` user to run the server");
      return FALSE;
    }
  if (chown (path, pw->pw_uid, pw->pw_gid) != 0)
    {
      int saved = errno;
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   "chown %s: %s", path, g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

/**
 * pg_fixture_start:
 * @error: return location for a #GError
 *
 * Returns: (transfer full): a running cluster, or %NULL
 */
PgFixture *
pg_fixture_start (GError **error)
{
  PgFixture *fixture = g_new0 (PgFixture, 1);
  g_autofree char *pwfile = NULL;
  g_autofree char *initdb = pg_program ("initdb");
  g_autofree char *pg_ctl = pg_program ("pg_ctl");
  g_autoptr(GPtrArray) args = NULL;
  g_autoptr(GError) last_error = NULL;
  guint8 random_bytes[18];

  fixture->watchdog_fd = -1;
  fixture->dir = g_dir_make_tmp ("bp-pg-XXXXXX", error);
  if (fixture->dir == NULL)
    {
      fixture_free (fixture);
      return NULL;
    }
  fixture->data_dir = g_build_filename (fixture->dir, "data", NULL);
  fixture->socket_dir = g_strdup (fixture->dir);
  fixture->log_file = g_build_filename (fixture->dir, "postgres.log", NULL);
  fixture->superuser = g_strdup (SUPERUSER);
  for (guint i = 0; i < sizeof random_bytes; i++)
    random_bytes[i] = (guint8) g_random_int_range (0, 256);
  fixture->password = g_base64_encode (random_bytes, sizeof random_bytes);

  if (!start_watchdog (fixture, error) || !chown_to_postgres (fixture->dir, error))
    {
      pg_fixture_stop (fixture);
      return NULL;
    }

  pwfile = g_build_filename (fixture->dir, "pwfile", NULL);
  if (!g_file_set_contents_full (pwfile, fixture->password, -1,
                                 G_FILE_SET_CONTENTS_NONE, 0600, error) ||
      !chown_to_postgres (pwfile, error))
    {
      pg_fixture_stop (fixture);
      return NULL;
    }

  args = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (args, g_strdup (initdb));
  g_ptr_array_add (args, g_strdup ("-D"));
  g_ptr_array_add (args, g_strdup (fixture->data_dir));
  g_ptr_array_add (args, g_strdup ("-U"));
  g_ptr_array_add (args, g_strdup (SUPERUSER));
  g_ptr_array_add (args, g_strdup_printf ("--pwfile=%s", pwfile));
  g_ptr_array_add (args, g_strdup ("--auth-local=trust"));
  g_ptr_array_add (args, g_strdup ("--auth-host=scram-sha-256"));
  g_ptr_array_add (args, g_strdup ("-E"));
  g_ptr_array_add (args, g_strdup ("UTF8"));
  g_ptr_array_add (args, g_strdup ("--no-locale"));
  g_ptr_array_add (args, g_strdup ("--no-sync"));
  g_ptr_array_add (args, g_strdup ("--no-instructions"));
  if (!run_server_program (fixture->dir, args, error))
    {
      pg_fixture_stop (fixture);
      return NULL;
    }
  g_unlink (pwfile);

  /* The port can be taken between probing and binding: retry a few times. */
  for (guint attempt = 0; attempt < 5; attempt++)
    {
      g_autofree char *options = NULL;
      g_autofree char *q_dir = g_shell_quote (fixture->socket_dir);

      g_clear_error (&last_error);
      fixture->port = find_free_port (&last_error);
      if (fixture->port == 0)
        continue;
      options = g_strdup_printf ("-c fsync=off -c full_page_writes=off -c synchronous_commit=off "
                                 "-c listen_addresses=127.0.0.1 -p %u -k %s "
                                 "-c max_connections=60 -c shared_buffers=16MB",
                                 fixture->port, q_dir);
      g_ptr_array_set_size (args, 0);
      g_ptr_array_add (args, g_strdup (pg_ctl));
      g_ptr_array_add (args, g_strdup ("-D"));
      g_ptr_array_add (args, g_strdup (fixture->data_dir));
      g_ptr_array_add (args, g_strdup ("-l"));
      g_ptr_array_add (args, g_strdup (fixture->log_file));
      g_ptr_array_add (args, g_strdup ("-w"));
      g_ptr_array_add (args, g_strdup ("-t"));
      g_ptr_array_add (args, g_strdup ("60"));
      g_ptr_array_add (args, g_strdup ("-o"));
      g_ptr_array_add (args, g_strdup (options));
      g_ptr_array_add (args, g_strdup ("start"));
      if (run_server_program (fixture->dir, args, &last_error))
        {
          fixture->server_options = g_steal_pointer (&options);
          break;
        }
      fixture->port = 0;
    }
  if (fixture->port == 0)
    {
      g_autofree char *log = NULL;

      g_file_get_contents (fixture->log_file, &log, NULL, NULL);
      g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED, "could not start PostgreSQL: %s\n%s",
                   last_error != NULL ? last_error->message : "?", log != NULL ? log : "");
      pg_fixture_stop (fixture);
      return NULL;
    }

  fixture->conninfo_tcp = g_strdup_printf ("host=127.0.0.1 port=%u dbname=postgres user=%s",
                                           fixture->port, SUPERUSER);
  fixture->conninfo_socket = g_strdup_printf ("host=%s port=%u dbname=postgres user=%s",
                                              fixture->socket_dir, fixture->port, SUPERUSER);

  if (live_fixtures == NULL)
    {
      live_fixtures = g_ptr_array_new ();
      atexit (stop_all_at_exit);
    }
  g_ptr_array_add (live_fixtures, fixture);
  return fixture;
}

/**
 * pg_fixture_stop:
 * @fixture: (transfer full): a fixture
 *
 * Stops the server (immediate mode), removes the directory and frees.
 */
void
pg_fixture_stop (PgFixture *fixture)
{
  if (fixture == NULL)
    return;

  if (live_fixtures != NULL)
    g_ptr_array_remove (live_fixtures, fixture);

  if (fixture->dir != NULL)
    {
      g_autofree char *script = cleanup_script (fixture);
      char *argv[] = { (char *) "/bin/sh", (char *) "-c", script, NULL };
      int status;

      if (!g_spawn_sync ("/", argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, NULL, NULL, &status, NULL))
        g_debug ("cleanup of %s failed", fixture->dir);
    }
  stop_watchdog (fixture);
  fixture_free (fixture);
}

/**
 * pg_fixture_psql:
 * @fixture: a running fixture
 * @sql: SQL for `psql -c` (superuser, database postgres, Unix socket)
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the unaligned, tuples-only output, stripped
 */
char *
pg_fixture_psql (PgFixture   *fixture,
                 const char  *sql,
                 GError     **error)
{
  g_autofree char *psql = pg_program ("psql");
  g_autofree char *port = g_strdup_printf ("%u", fixture->port);
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  int status = 0;
  const char *argv[] = {
    psql, "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
    "-h", fixture->socket_dir, "-p", port, "-U", fixture->superuser, "-d", "postgres",
    "-c", sql, NULL
  };

  if (!g_spawn_sync ("/", (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                     &out, &err, &status, error))
    return NULL;
  if (!g_spawn_check_wait_status (status, NULL))
    {
      g_set_error (error, G_SPAWN_ERROR, G_SPAWN_ERROR_FAILED, "psql failed: %s", err != NULL ? err : "");
      return NULL;
    }
  return g_strstrip (g_steal_pointer (&out));
}

/**
 * pg_fixture_pg_ctl:
 * @fixture: a fixture
 * @action: "stop" (fast), "start" or "restart" (fast)
 * @error: return location for a #GError
 *
 * Runs pg_ctl on the fixture's cluster and waits for it (-w).
 *
 * Returns: %TRUE on success
 */
gboolean
pg_fixture_pg_ctl (PgFixture   *fixture,
                   const char  *action,
                   GError     **error)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new_with_free_func (g_free);

  g_ptr_array_add (args, pg_program ("pg_ctl"));
  g_ptr_array_add (args, g_strdup (action));
  g_ptr_array_add (args, g_strdup ("-D"));
  g_ptr_array_add (args, g_strdup (fixture->data_dir));
  g_ptr_array_add (args, g_strdup ("-w"));
  g_ptr_array_add (args, g_strdup ("-t"));
  g_ptr_array_add (args, g_strdup ("60"));
  if (!g_str_equal (action, "start"))
    {
      g_ptr_array_add (args, g_strdup ("-m"));
      g_ptr_array_add (args, g_strdup ("fast"));
    }
  if (!g_str_equal (action, "stop"))
    {
      g_ptr_array_add (args, g_strdup ("-l"));
      g_ptr_array_add (args, g_strdup (fixture->log_file));
      g_ptr_array_add (args, g_strdup ("-o"));
      g_ptr_array_add (args, g_strdup (fixture->server_options));
    }
  return run_server_program (fixture->dir, args, error);
}
