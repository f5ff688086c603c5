/* bp-pg-cluster.c: a private PostgreSQL cluster run by backplaned
 *
 * For `managed=true`: on first start `initdb` creates the cluster in the
 * data directory (the user's name as superuser, trust authentication: the
 * server listens on a Unix socket only, in a 0700 directory under
 * $XDG_RUNTIME_DIR); then `postgres` runs as a child of the daemon (it gets
 * SIGINT, a fast shutdown, if the daemon dies). Readiness is a successful
 * connection. A server already running on that data directory (left by a
 * previous daemon) is used as is.
 *
 * Everything goes through GSubprocess and BpPgConnection: nothing blocks
 * the main loop. PostgreSQL refuses to run as root, and so does this.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "bp-pg-cluster.h"
#include "bp-pg-connection.h"

#define READY_POLL_MS    100
#define READY_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS  10000
#define PORT             "5432"

struct _BpPgCluster
{
  GObject      parent_instance;

  BpClock     *clock;        /* (owned) */
  char        *bindir;       /* (owned) */
  char        *data_dir;     /* (owned) */
  char        *socket_dir;   /* (owned) */
  char        *log_path;     /* (owned) */
  char        *conninfo;     /* (owned) */
  GSubprocess *server;       /* (owned) (nullable) */
  GTask       *start_task;   /* (owned) (nullable) */
  GSource     *poll_source;  /* (owned) (nullable) */
  gint64       deadline;
};

G_DEFINE_FINAL_TYPE (BpPgCluster, bp_pg_cluster, G_TYPE_OBJECT)

static void poll_ready (BpPgCluster *self);

static void
bp_pg_cluster_dispose (GObject *object)
{
  BpPgCluster *self = BP_PG_CLUSTER (object);

  if (self->poll_source != NULL)
    {
      g_source_destroy (self->poll_source);
      g_clear_pointer (&self->poll_source, g_source_unref);
    }
  if (self->server != NULL)
    g_subprocess_send_signal (self->server, SIGINT);
  g_clear_object (&self->server);
  g_clear_object (&self->clock);
  G_OBJECT_CLASS (bp_pg_cluster_parent_class)->dispose (object);
}

static void
bp_pg_cluster_finalize (GObject *object)
{
  BpPgCluster *self = BP_PG_CLUSTER (object);

  g_assert (self->start_task == NULL);
  g_free (self->bindir);
  g_free (self->data_dir);
  g_free (self->socket_dir);
  g_free (self->log_path);
  g_free (self->conninfo);
  G_OBJECT_CLASS (bp_pg_cluster_parent_class)->finalize (object);
}

static void
bp_pg_cluster_class_init (BpPgClusterClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = bp_pg_cluster_dispose;
  G_OBJECT_CLASS (klass)->finalize = bp_pg_cluster_finalize;
}

static void
bp_pg_cluster_init (BpPgCluster *self)
{
}

/**
 * bp_pg_cluster_new:
 * @bindir: where initdb and postgres are
 * @data_dir: the cluster's data directory (created on first start)
 * @socket_dir: the Unix socket directory (created, mode 0700)
 * @clock: the clock for polls and timeouts
 *
 * Returns: (transfer full): a cluster, not started
 */
BpPgCluster *
bp_pg_cluster_new (const char *bindir,
                   const char *data_dir,
                   const char *socket_dir,
                   BpClock    *clock)
{
  BpPgCluster *self = g_object_new (BP_TYPE_PG_CLUSTER, NULL);
  g_autofree char *parent = g_path_get_dirname (data_dir);
  g_autofree char *base = g_path_get_basename (data_dir);
  g_autofree char *log_name = g_strconcat (base, ".log", NULL);

  self->bindir = g_strdup (bindir);
  self->data_dir = g_strdup (data_dir);
  self->socket_dir = g_strdup (socket_dir);
  self->log_path = g_build_filename (parent, log_name, NULL);
  self->clock = g_object_ref (clock);
  self->conninfo = g_strdup_printf ("host='%s' port=" PORT " dbname=postgres user='%s'",
                                    socket_dir, g_get_user_name ());
  return self;
}

static void
start_fail (BpPgCluster *self,
            GError      *error)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->start_task);

  if (self->poll_source != NULL)
    {
      g_source_destroy (self->poll_source);
      g_clear_pointer (&self->poll_source, g_source_unref);
    }
  g_task_return_error (task, error);
}

/* ---------------------------------------------------------------------- */
/* Readiness                                                               */

/* Main context: one readiness probe. */
static void
probe_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(BpPgCluster) self = user_data;
  g_autoptr(GError) error = NULL;
  BpPgConnection *probe = BP_PG_CONNECTION (object);

  if (self->start_task == NULL)
    return;
  if (bp_pg_connection_connect_finish (probe, result, &error))
    {
      g_autoptr(GTask) task = g_steal_pointer (&self->start_task);

      bp_pg_connection_close (probe);
      g_task_return_pointer (task, g_strdup (self->conninfo), g_free);
      return;
    }
  if (bp_clock_get_time (self->clock) > self->deadline)
    {
      start_fail (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                     "the managed PostgreSQL did not accept connections within %d s "
                                     "(see %s): %s", READY_TIMEOUT_MS / 1000, self->log_path,
                                     error->message));
      return;
    }
  poll_ready (self);
}

static gboolean
on_poll (gpointer user_data)
{
  BpPgCluster *self = user_data;
  g_autoptr(BpPgConnection) probe = bp_pg_connection_new (self->conninfo, NULL, self->clock);

  g_clear_pointer (&self->poll_source, g_source_unref);
  bp_pg_connection_set_connect_timeout (probe, 2000);
  bp_pg_connection_connect_async (probe, g_task_get_cancellable (self->start_task), probe_cb,
                                  g_object_ref (self));
  return G_SOURCE_REMOVE;
}

static void
poll_ready (BpPgCluster *self)
{
  self->poll_source = bp_clock_timeout_source_new (self->clock, READY_POLL_MS * 1000);
  g_source_set_callback (self->poll_source, on_poll, self, NULL);
  g_source_set_static_name (self->poll_source, "[bp-postgres] cluster ready poll");
  g_source_attach (self->poll_source, g_main_context_get_thread_default ());
}

/* ---------------------------------------------------------------------- */
/* initdb, postgres                                                        */

/* Child process, after fork: die with the daemon (fast shutdown). */
static void
child_setup (gpointer user_data)
{
  prctl (PR_SET_PDEATHSIG, SIGINT);
}

/* Main context: the server exited (crash, lock held by another server,
 * stop). */
static void
server_exited_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(BpPgCluster) self = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (object), result, NULL);
  g_debug ("managed PostgreSQL exited (status %d)", g_subprocess_get_status (G_SUBPROCESS (object)));
  if (self->server == G_SUBPROCESS (object))
    g_clear_object (&self->server);
  /* While starting, the next probe decides: a server started by a previous
   * daemon may hold the data directory and still answer; if not, fail now
   * rather than at the deadline. */
  if (self->start_task != NULL)
    self->deadline = bp_clock_get_time (self->clock);
}

static void
start_server (BpPgCluster *self)
{
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_INHERIT |
                                                                       G_SUBPROCESS_FLAGS_STDERR_MERGE);
  g_autofree char *postgres = g_build_filename (self->bindir, "postgres", NULL);
  g_autofree char *socket_opt = g_strdup_printf ("unix_socket_directories=%s", self->socket_dir);
  g_autoptr(GError) error = NULL;

  g_subprocess_launcher_set_stdout_file_path (launcher, self->log_path);
  g_subprocess_launcher_set_child_setup (launcher, child_setup, NULL, NULL);
  self->server = g_subprocess_launcher_spawn (launcher, &error, postgres,
                                              "-D", self->data_dir,
                                              "-p", PORT,
                                              "-c", "listen_addresses=",
                                              "-c", socket_opt,
                                              "-c", "unix_socket_permissions=0700",
                                              NULL);
  if (self->server == NULL)
    {
      start_fail (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                     "cannot start the managed PostgreSQL: %s", error->message));
      return;
    }
  g_subprocess_wait_async (self->server, NULL, server_exited_cb, g_object_ref (self));
  self->deadline = bp_clock_get_time (self->clock) + (gint64) READY_TIMEOUT_MS * 1000;
  poll_ready (self);
}

/* Main context: initdb is done. */
static void
initdb_done_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(BpPgCluster) self = user_data;
  GSubprocess *initdb = G_SUBPROCESS (object);
  g_autofree char *output = NULL;
  g_autoptr(GError) error = NULL;

  if (!g_subprocess_communicate_utf8_finish (initdb, result, &output, NULL, &error))
    {
      start_fail (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "initdb: %s", error->message));
      return;
    }
  if (!g_subprocess_get_successful (initdb))
    {
      start_fail (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "initdb failed: %s",
                                     output != NULL ? g_strstrip (output) : "?"));
      return;
    }
  start_server (self);
}

/**
 * bp_pg_cluster_start_async:
 * @self: a cluster
 * @cancellable: (nullable): a #GCancellable
 * @callback: called once the server accepts connections
 * @user_data: data for @callback
 */
void
bp_pg_cluster_start_async (BpPgCluster         *self,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  g_autofree char *postgres = g_build_filename (self->bindir, "postgres", NULL);
  g_autofree char *initdb = g_build_filename (self->bindir, "initdb", NULL);
  g_autofree char *version_file = g_build_filename (self->data_dir, "PG_VERSION", NULL);
  g_autofree char *parent = g_path_get_dirname (self->data_dir);
  g_autofree char *user_opt = g_strdup_printf ("--username=%s", g_get_user_name ());
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;

  g_return_if_fail (BP_IS_PG_CLUSTER (self));
  g_return_if_fail (self->start_task == NULL);

  self->start_task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (self->start_task, bp_pg_cluster_start_async);

  if (!g_file_test (postgres, G_FILE_TEST_IS_EXECUTABLE) || !g_file_test (initdb, G_FILE_TEST_IS_EXECUTABLE))
    {
      start_fail (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                     "managed=true needs the PostgreSQL server binaries in %s", self->bindir));
      return;
    }
  if (geteuid () == 0)
    {
      start_fail (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                     "PostgreSQL refuses to run as root: use conninfo= instead of managed=true"));
      return;
    }
  if (strlen (self->socket_dir) + strlen ("/.s.PGSQL." PORT) >= 108)
    {
      start_fail (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                     "the socket directory %s is too long for a Unix socket", self->socket_dir));
      return;
    }
  /* Small local mkdirs, as g_file_set_contents() would do on this thread. */
  if (g_mkdir_with_parents (parent, 0700) != 0 || g_mkdir_with_parents (self->socket_dir, 0700) != 0)
    {
      int saved = errno;
      start_fail (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "cannot create %s or %s: %s",
                                     parent, self->socket_dir, g_strerror (saved)));
      return;
    }

  if (g_file_test (version_file, G_FILE_TEST_EXISTS))
    {
      start_server (self);
      return;
    }

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE, &error,
                           initdb, "-D", self->data_dir, user_opt, "--auth=trust",
                           "-E", "UTF8", "--no-locale", "--no-instructions", NULL);
  if (proc == NULL)
    {
      start_fail (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "initdb: %s", error->message));
      return;
    }
  g_subprocess_communicate_utf8_async (proc, NULL, cancellable, initdb_done_cb, g_object_ref (self));
}

/**
 * bp_pg_cluster_start_finish:
 * @self: a cluster
 * @result: the result
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the conninfo of the running server, or %NULL
 */
char *
bp_pg_cluster_start_finish (BpPgCluster   *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---------------------------------------------------------------------- */
/* Stop                                                                    */

typedef struct
{
  GSubprocess *server;   /* (owned) */
  GSource     *timeout;  /* (owned) */
} StopData;

static void
stop_data_free (StopData *data)
{
  if (data->timeout != NULL)
    {
      g_source_destroy (data->timeout);
      g_source_unref (data->timeout);
    }
  g_clear_object (&data->server);
  g_free (data);
}

static gboolean
on_stop_timeout (gpointer user_data)
{
  GTask *task = user_data;
  StopData *data = g_task_get_task_data (task);

  g_debug ("managed PostgreSQL did not stop in time: SIGQUIT");
  g_subprocess_send_signal (data->server, SIGQUIT);
  return G_SOURCE_REMOVE;
}

static void
stopped_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (object), result, NULL);
  g_task_return_boolean (task, TRUE);
}

/**
 * bp_pg_cluster_stop_async:
 * @self: a cluster
 * @callback: called once the server exited
 * @user_data: data for @callback
 *
 * Fast shutdown (SIGINT), then SIGQUIT after 10 s.
 */
void
bp_pg_cluster_stop_async (BpPgCluster         *self,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, NULL, callback, user_data);
  StopData *data;

  g_task_set_source_tag (task, bp_pg_cluster_stop_async);
  if (self->server == NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  data = g_new0 (StopData, 1);
  data->server = g_steal_pointer (&self->server);
  data->timeout = bp_clock_timeout_source_new (self->clock, (gint64) STOP_TIMEOUT_MS * 1000);
  g_source_set_callback (data->timeout, on_stop_timeout, task, NULL);
  g_source_attach (data->timeout, g_main_context_get_thread_default ());
  g_task_set_task_data (task, data, (GDestroyNotify) stop_data_free);
  g_subprocess_send_signal (data->server, SIGINT);
  g_subprocess_wait_async (data->server, NULL, stopped_cb, g_object_ref (task));
}

gboolean
bp_pg_cluster_stop_finish (BpPgCluster   *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
