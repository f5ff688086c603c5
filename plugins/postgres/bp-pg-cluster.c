/* bp-pg-cluster.c: a private PostgreSQL cluster run by backplaned
 *
 * For `managed=true`: on first start `initdb` creates the cluster in the
 * data directory (trust authentication: the server listens on a Unix socket
 * only, in a 0700 directory); then `postgres` runs as a child of the daemon
 * in its own process group. Readiness is a successful connection. A server
 * already running on that data directory (left by a previous daemon) is
 * adopted as is.
 *
 * Who runs it: PostgreSQL refuses to run as root. When backplaned runs as
 * root, initdb, postgres and pg_ctl run as the `postgres` system user: the
 * child drops its privileges (setgroups/setgid/setuid) between fork and exec,
 * the data and socket directories are created 0700 and chowned to that
 * user, and the cluster's superuser role is named after it, so backplaned
 * connects as role `postgres` over the socket (root may open the 0700
 * socket). That user must be able to reach both directories: each existing
 * ancestor needs search permission for it, and the ancestors we create are
 * made 0711. When the configured (XDG) directory is not reachable — root's
 * home is 0700 — the fallback directories are used instead (the backend
 * passes /var/lib/backplane/postgres/NAME and /run/backplane/NAME); when
 * there is no fallback, start fails naming the directory in the way.
 *
 * The server dies with the daemon: the child sets PR_SET_PDEATHSIG to
 * SIGINT (a fast shutdown) after dropping privileges (a credential change
 * would clear it), and exits at once if the daemon is already gone. We
 * do not go through runuser(1) for the server: its watching parent would
 * turn our SIGINT into SIGTERM (a smart shutdown that waits for clients)
 * and the death signal would reach runuser, not the postmaster.
 *
 * Stop is what `pg_ctl stop -m fast` does: SIGINT to the postmaster and a
 * wait for its exit (SIGQUIT after 10 s); an adopted server, which is not
 * our child, is stopped by running `pg_ctl stop -m fast`.
 *
 * Nothing blocks the main loop: the file-system preparation (user lookup,
 * mkdir, chown, permission checks, opening the log) runs on the shared
 * BpWorkerPool, the programs through GSubprocess, the readiness probe
 * through BpPgConnection. Everything else runs in the main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "bp-pg-cluster.h"
#include "bp-pg-connection.h"

#define READY_POLL_MS    100
#define READY_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS  10000
#define PORT             "5432"
#define UNIX_PATH_MAX    108

/* What the worker decided; read-only once back in the main context. */
typedef struct
{
  char     *data_dir;
  char     *socket_dir;
  char     *log_path;
  char     *role;          /* the superuser role = the server's OS user */
  gboolean  drop;          /* run the programs as uid/gid */
  uid_t     uid;
  gid_t     gid;
  gboolean  needs_initdb;
  int       log_fd;        /* (owned) opened for the server's output */
} Plan;

struct _BpPgCluster
{
  GObject      parent_instance;

  BpClock     *clock;                /* (owned) */
  char        *bindir;               /* (owned) */
  char        *data_dir;             /* (owned) */
  char        *socket_dir;           /* (owned) */
  char        *fallback_data_dir;    /* (owned) (nullable) */
  char        *fallback_socket_dir;  /* (owned) (nullable) */
  Plan        *plan;                 /* (owned) (nullable) until prepared */
  char        *conninfo;             /* (owned) (nullable) */
  GSubprocess *server;               /* (owned) (nullable) */
  int          server_pid;
  gboolean     adopted;              /* running, but not our child */
  GTask       *start_task;           /* (owned) (nullable) */
  GSource     *poll_source;          /* (owned) (nullable) */
  gint64       deadline;
};

G_DEFINE_FINAL_TYPE (BpPgCluster, bp_pg_cluster, G_TYPE_OBJECT)

/* The child setup data; copied into each launcher. */
typedef struct
{
  gboolean drop;
  uid_t    uid;
  gid_t    gid;
  int      death_signal;  /* 0: none */
  pid_t    parent;
} ChildSetup;

static void poll_ready (BpPgCluster *self);

static void
plan_free (Plan *plan)
{
  g_free (plan->data_dir);
  g_free (plan->socket_dir);
  g_free (plan->log_path);
  g_free (plan->role);
  if (plan->log_fd >= 0)
    g_close (plan->log_fd, NULL);
  g_free (plan);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Plan, plan_free)

static void
destroy_source (GSource **source)
{
  if (*source != NULL)
    {
      g_source_destroy (*source);
      g_clear_pointer (source, g_source_unref);
    }
}

static void
bp_pg_cluster_dispose (GObject *object)
{
  BpPgCluster *self = BP_PG_CLUSTER (object);

  destroy_source (&self->poll_source);
  /* Last resort (stop_async is the normal way): a fast shutdown. */
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
  g_free (self->fallback_data_dir);
  g_free (self->fallback_socket_dir);
  g_clear_pointer (&self->plan, plan_free);
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
 * @bindir: where initdb, postgres and pg_ctl are
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

  self->bindir = g_strdup (bindir);
  self->data_dir = g_canonicalize_filename (data_dir, NULL);
  self->socket_dir = g_canonicalize_filename (socket_dir, NULL);
  self->clock = g_object_ref (clock);
  return self;
}

/**
 * bp_pg_cluster_set_fallback_dirs:
 * @self: a cluster, not started
 * @data_dir: (nullable): used when the data directory is not reachable by
 *   the server's user (root only)
 * @socket_dir: (nullable): likewise for the socket directory
 */
void
bp_pg_cluster_set_fallback_dirs (BpPgCluster *self,
                                 const char  *data_dir,
                                 const char  *socket_dir)
{
  g_return_if_fail (BP_IS_PG_CLUSTER (self));
  g_return_if_fail (self->start_task == NULL && self->plan == NULL);

  g_free (self->fallback_data_dir);
  g_free (self->fallback_socket_dir);
  self->fallback_data_dir = data_dir != NULL ? g_canonicalize_filename (data_dir, NULL) : NULL;
  self->fallback_socket_dir = socket_dir != NULL ? g_canonicalize_filename (socket_dir, NULL) : NULL;
}

/**
 * bp_pg_cluster_get_data_dir:
 * @self: a cluster
 *
 * Returns: (nullable): the data directory in use once started (the
 *   configured one or the fallback)
 */
const char *
bp_pg_cluster_get_data_dir (BpPgCluster *self)
{
  g_return_val_if_fail (BP_IS_PG_CLUSTER (self), NULL);
  return self->plan != NULL ? self->plan->data_dir : NULL;
}

/**
 * bp_pg_cluster_get_socket_dir:
 * @self: a cluster
 *
 * Returns: (nullable): the socket directory in use once started
 */
const char *
bp_pg_cluster_get_socket_dir (BpPgCluster *self)
{
  g_return_val_if_fail (BP_IS_PG_CLUSTER (self), NULL);
  return self->plan != NULL ? self->plan->socket_dir : NULL;
}

/**
 * bp_pg_cluster_get_role:
 * @self: a cluster
 *
 * Returns: (nullable): the role backplaned connects as, once started
 */
const char *
bp_pg_cluster_get_role (BpPgCluster *self)
{
  g_return_val_if_fail (BP_IS_PG_CLUSTER (self), NULL);
  return self->plan != NULL ? self->plan->role : NULL;
}

/**
 * bp_pg_cluster_get_server_pid:
 * @self: a cluster
 *
 * Returns: the postmaster's pid while our child runs, else 0
 */
int
bp_pg_cluster_get_server_pid (BpPgCluster *self)
{
  g_return_val_if_fail (BP_IS_PG_CLUSTER (self), 0);
  return self->server != NULL ? self->server_pid : 0;
}

/* ---------------------------------------------------------------------- */
/* Preparation: a worker thread                                            */

typedef struct
{
  char     *bindir;
  char     *data_dir;
  char     *socket_dir;
  char     *fallback_data_dir;    /* (nullable) */
  char     *fallback_socket_dir;  /* (nullable) */
  gboolean  as_root;
} PrepareInput;

static void
prepare_input_free (PrepareInput *input)
{
  g_free (input->bindir);
  g_free (input->data_dir);
  g_free (input->socket_dir);
  g_free (input->fallback_data_dir);
  g_free (input->fallback_socket_dir);
  g_free (input);
}

static gboolean
searchable_by (const struct stat *st,
               uid_t              uid,
               gid_t              gid)
{
  if (st->st_uid == uid)
    return (st->st_mode & S_IXUSR) != 0;
  if (st->st_gid == gid)
    return (st->st_mode & S_IXGRP) != 0;
  return (st->st_mode & S_IXOTH) != 0;
}

/* Worker thread: can uid/gid reach @path? Checks every existing ancestor
 * (the missing ones will be created 0711); sets *@blocker to the first one
 * in the way. */
static gboolean
reachable_by (const char  *path,
              uid_t        uid,
              gid_t        gid,
              char       **blocker)
{
  g_autoptr(GPtrArray) ancestors = g_ptr_array_new_with_free_func (g_free);
  g_autofree char *dir = g_path_get_dirname (path);

  /* Parent first, root last; then walk from the root. */
  for (;;)
    {
      g_autofree char *up = g_path_get_dirname (dir);

      g_ptr_array_add (ancestors, g_steal_pointer (&dir));
      if (g_str_equal (up, g_ptr_array_index (ancestors, ancestors->len - 1)))
        break;
      dir = g_steal_pointer (&up);
    }
  for (guint i = ancestors->len; i > 0; i--)
    {
      const char *a = g_ptr_array_index (ancestors, i - 1);
      struct stat st;

      if (g_stat (a, &st) != 0)
        return TRUE;  /* missing from here on: we create it */
      if (!S_ISDIR (st.st_mode) || !searchable_by (&st, uid, gid))
        {
          *blocker = g_strdup (a);
          return FALSE;
        }
    }
  return TRUE;
}

/* Worker thread: creates the missing ancestors of @path with @mode (not
 * subject to the umask). */
static gboolean
make_ancestors (const char  *path,
                int          mode,
                GError     **error)
{
  g_autofree char *parent = g_path_get_dirname (path);
  struct stat st;

  if (g_stat (parent, &st) == 0)
    {
      if (S_ISDIR (st.st_mode))
        return TRUE;
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE, "%s is not a directory", parent);
      return FALSE;
    }
  if (g_str_equal (parent, path) || !make_ancestors (parent, mode, error))
    return FALSE;
  if (g_mkdir (parent, mode) != 0 && errno != EEXIST)
    {
      int saved = errno;
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE, "cannot create %s: %s", parent, g_strerror (saved));
      return FALSE;
    }
  if (g_chmod (parent, mode) != 0)
    {
      int saved = errno;
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE, "cannot chmod %s: %s", parent, g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

/* Worker thread: @path exists as a 0700 directory owned by the server's
 * user. */
static gboolean
make_private_dir (const char  *path,
                  Plan        *plan,
                  GError     **error)
{
  struct stat st;

  if (!make_ancestors (path, plan->drop ? 0711 : 0700, error))
    return FALSE;
  if (g_mkdir (path, 0700) != 0 && errno != EEXIST)
    {
      int saved = errno;
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE, "cannot create %s: %s", path, g_strerror (saved));
      return FALSE;
    }
  if (g_stat (path, &st) != 0 || !S_ISDIR (st.st_mode))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE, "%s is not a directory", path);
      return FALSE;
    }
  if (plan->drop && (st.st_uid != plan->uid || st.st_gid != plan->gid) &&
      chown (path, plan->uid, plan->gid) != 0)
    {
      int saved = errno;
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE, "cannot chown %s to %s: %s",
                   path, plan->role, g_strerror (saved));
      return FALSE;
    }
  if ((st.st_mode & 0777) != 0700 && g_chmod (path, 0700) != 0)
    {
      int saved = errno;
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE, "cannot chmod %s: %s", path, g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

/* Worker thread: the configured directory, or the fallback when the
 * server's user cannot reach it. */
static char *
choose_dir (const char  *what,
            const char  *key,
            const char  *primary,
            const char  *fallback,
            Plan        *plan,
            GError     **error)
{
  g_autofree char *blocker = NULL;
  g_autofree char *fallback_blocker = NULL;
  const char *chosen = primary;

  if (plan->drop && !reachable_by (primary, plan->uid, plan->gid, &blocker))
    {
      if (fallback == NULL || !reachable_by (fallback, plan->uid, plan->gid, &fallback_blocker))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE,
                       "the managed PostgreSQL runs as the `%s` user, which cannot reach the %s "
                       "directory %s (%s is not searchable by it): set %s= to a directory it can reach",
                       plan->role, what, primary, blocker, key);
          return NULL;
        }
      g_debug ("%s directory %s is not reachable by %s (%s): using %s",
               what, primary, plan->role, blocker, fallback);
      chosen = fallback;
    }
  if (!make_private_dir (chosen, plan, error))
    return NULL;
  return g_strdup (chosen);
}

static gboolean
lookup_server_user (Plan    *plan,
                    GError **error)
{
  struct passwd pw;
  struct passwd *found = NULL;
  long size = sysconf (_SC_GETPW_R_SIZE_MAX);
  g_autofree char *buf = NULL;
  int rc;

  if (size <= 0)
    size = 16384;
  buf = g_malloc (size);
  rc = getpwnam_r (BP_PG_CLUSTER_SERVER_USER, &pw, buf, size, &found);
  if (found == NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE,
                   "backplaned runs as root, which PostgreSQL refuses, and there is no `%s` system user "
                   "to run the managed cluster as%s%s", BP_PG_CLUSTER_SERVER_USER,
                   rc != 0 ? ": " : "", rc != 0 ? g_strerror (rc) : "");
      return FALSE;
    }
  if (pw.pw_uid == 0)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE,
                   "the `%s` system user is root: PostgreSQL refuses to run as root",
                   BP_PG_CLUSTER_SERVER_USER);
      return FALSE;
    }
  plan->drop = TRUE;
  plan->uid = pw.pw_uid;
  plan->gid = pw.pw_gid;
  plan->role = g_strdup (pw.pw_name);
  return TRUE;
}

/* Worker thread. */
static gpointer
prepare_worker_func (gpointer       data,
                     GCancellable  *cancellable,
                     GError       **error)
{
  PrepareInput *input = data;
  g_autoptr(Plan) plan = g_new0 (Plan, 1);
  g_autofree char *version_file = NULL;
  g_autofree char *parent = NULL;
  g_autofree char *base = NULL;
  g_autofree char *log_name = NULL;
  static const char * const programs[] = { "initdb", "postgres", "pg_ctl" };

  plan->log_fd = -1;
  for (gsize i = 0; i < G_N_ELEMENTS (programs); i++)
    {
      g_autofree char *path = g_build_filename (input->bindir, programs[i], NULL);

      if (!g_file_test (path, G_FILE_TEST_IS_EXECUTABLE))
        {
          g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE,
                       "managed=true needs the PostgreSQL server binaries, but there is no %s in %s "
                       "(install postgresql, or set bindir=)", programs[i], input->bindir);
          return NULL;
        }
    }

  if (input->as_root)
    {
      if (!lookup_server_user (plan, error))
        return NULL;
    }
  else
    plan->role = g_strdup (g_get_user_name ());

  plan->data_dir = choose_dir ("data", "data-dir", input->data_dir, input->fallback_data_dir, plan, error);
  if (plan->data_dir == NULL)
    return NULL;
  plan->socket_dir = choose_dir ("socket", "socket-dir", input->socket_dir, input->fallback_socket_dir,
                                 plan, error);
  if (plan->socket_dir == NULL)
    return NULL;
  if (strlen (plan->socket_dir) + strlen ("/.s.PGSQL." PORT ".lock") >= UNIX_PATH_MAX)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE,
                   "the socket directory %s is too long for a Unix socket: set socket-dir=", plan->socket_dir);
      return NULL;
    }

  /* The server's output goes next to the data directory. */
  parent = g_path_get_dirname (plan->data_dir);
  base = g_path_get_basename (plan->data_dir);
  log_name = g_strconcat (base, ".log", NULL);
  plan->log_path = g_build_filename (parent, log_name, NULL);
  plan->log_fd = g_open (plan->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (plan->log_fd < 0)
    {
      int saved = errno;
      g_set_error (error, BP_ERROR, BP_ERROR_UNAVAILABLE, "cannot open %s: %s", plan->log_path, g_strerror (saved));
      return NULL;
    }

  version_file = g_build_filename (plan->data_dir, "PG_VERSION", NULL);
  plan->needs_initdb = !g_file_test (version_file, G_FILE_TEST_EXISTS);
  return g_steal_pointer (&plan);
}

/* ---------------------------------------------------------------------- */
/* Child processes                                                         */

/* The child, between fork and exec: async-signal-safe calls only. */
static void
child_setup_func (gpointer user_data)
{
  const ChildSetup *setup = user_data;

  /* Our own process group: a Ctrl-C for the daemon's terminal is not a
   * shutdown request for the server; stop_async decides. */
  setpgid (0, 0);
  if (setup->drop)
    {
      if (setgroups (1, &setup->gid) != 0 || setgid (setup->gid) != 0 || setuid (setup->uid) != 0)
        _exit (126);
    }
  if (setup->death_signal != 0)
    {
      prctl (PR_SET_PDEATHSIG, setup->death_signal);
      /* The daemon died before the line above: nobody would tell us. */
      if (getppid () != setup->parent)
        _exit (1);
    }
}

static GSubprocessLauncher *
new_launcher (BpPgCluster     *self,
              GSubprocessFlags flags,
              int              death_signal)
{
  GSubprocessLauncher *launcher = g_subprocess_launcher_new (flags);
  ChildSetup *setup = g_new0 (ChildSetup, 1);

  setup->drop = self->plan->drop;
  setup->uid = self->plan->uid;
  setup->gid = self->plan->gid;
  setup->death_signal = death_signal;
  setup->parent = getpid ();
  g_subprocess_launcher_set_child_setup (launcher, child_setup_func, setup, g_free);
  /* Not the daemon's directory (root's home is out of reach of postgres). */
  g_subprocess_launcher_set_cwd (launcher, "/");
  g_subprocess_launcher_unsetenv (launcher, "PGDATA");
  g_subprocess_launcher_unsetenv (launcher, "PGHOST");
  g_subprocess_launcher_unsetenv (launcher, "PGPORT");
  g_subprocess_launcher_setenv (launcher, "LC_MESSAGES", "C", TRUE);
  return launcher;
}

static void
start_fail (BpPgCluster *self,
            GError      *error)
{
  /* (transfer full) error */
  g_autoptr(GTask) task = g_steal_pointer (&self->start_task);

  destroy_source (&self->poll_source);
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
      /* Up, but not ours: a server left by a previous daemon. */
      self->adopted = self->server == NULL;
      g_task_return_pointer (task, g_strdup (self->conninfo), g_free);
      return;
    }
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      start_fail (self, g_steal_pointer (&error));
      return;
    }
  if (bp_clock_get_time (self->clock) >= self->deadline)
    {
      start_fail (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE,
                                     "the managed PostgreSQL did not accept connections (see %s): %s",
                                     self->plan->log_path, error->message));
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
  bp_pg_connection_set_application_name (probe, "backplaned/probe");
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
  if (self->server != G_SUBPROCESS (object))
    return;
  g_clear_object (&self->server);
  /* While starting, the next probe decides: a server started by a previous
   * daemon may hold the data directory and still answer; if not, fail now
   * rather than at the deadline. After the start (a probe answered before
   * our postmaster gave up on the lock, or it crashed) whatever serves the
   * data directory is not our child: stop through pg_ctl. */
  if (self->start_task != NULL)
    self->deadline = bp_clock_get_time (self->clock);
  else
    self->adopted = TRUE;
}

static void
start_server (BpPgCluster *self)
{
  g_autoptr(GSubprocessLauncher) launcher = new_launcher (self, G_SUBPROCESS_FLAGS_STDERR_MERGE, SIGINT);
  g_autofree char *postgres = g_build_filename (self->bindir, "postgres", NULL);
  g_autofree char *socket_opt = g_strdup_printf ("unix_socket_directories=%s", self->plan->socket_dir);
  g_autoptr(GError) error = NULL;

  g_subprocess_launcher_take_stdout_fd (launcher, self->plan->log_fd);
  self->plan->log_fd = -1;
  self->server = g_subprocess_launcher_spawn (launcher, &error, postgres,
                                              "-D", self->plan->data_dir,
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
  self->server_pid = (int) g_ascii_strtoll (g_subprocess_get_identifier (self->server), NULL, 10);
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

static void
run_initdb (BpPgCluster *self)
{
  g_autoptr(GSubprocessLauncher) launcher = new_launcher (self, G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                                G_SUBPROCESS_FLAGS_STDERR_MERGE, 0);
  g_autofree char *initdb = g_build_filename (self->bindir, "initdb", NULL);
  g_autofree char *user_opt = g_strdup_printf ("--username=%s", self->plan->role);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;

  proc = g_subprocess_launcher_spawn (launcher, &error, initdb, "-D", self->plan->data_dir, user_opt,
                                      "--auth=trust", "-E", "UTF8", "--no-locale", "--no-instructions",
                                      NULL);
  if (proc == NULL)
    {
      start_fail (self, g_error_new (BP_ERROR, BP_ERROR_UNAVAILABLE, "initdb: %s", error->message));
      return;
    }
  g_subprocess_communicate_utf8_async (proc, NULL, g_task_get_cancellable (self->start_task),
                                       initdb_done_cb, g_object_ref (self));
}

/* A conninfo value in single quotes, ' and \ escaped as libpq wants. */
static char *
quote_conninfo_value (const char *value)
{
  GString *out = g_string_new ("'");

  for (const char *p = value; *p != '\0'; p++)
    {
      if (*p == '\'' || *p == '\\')
        g_string_append_c (out, '\\');
      g_string_append_c (out, *p);
    }
  g_string_append_c (out, '\'');
  return g_string_free (out, FALSE);
}

/* Main context: the directories are ready (or not). */
static void
prepared_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(BpPgCluster) self = user_data;
  GError *error = NULL;
  Plan *plan = bp_worker_pool_run_finish (BP_WORKER_POOL (object), result, &error);
  g_autofree char *q_socket = NULL;
  g_autofree char *q_role = NULL;

  if (plan == NULL)
    {
      start_fail (self, error);
      return;
    }
  self->plan = plan;
  q_socket = quote_conninfo_value (plan->socket_dir);
  q_role = quote_conninfo_value (plan->role);
  g_free (self->conninfo);
  self->conninfo = g_strdup_printf ("host=%s port=" PORT " dbname=postgres user=%s", q_socket, q_role);
  if (g_task_return_error_if_cancelled (self->start_task))
    {
      g_clear_object (&self->start_task);
      return;
    }
  if (plan->needs_initdb)
    run_initdb (self);
  else
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
  PrepareInput *input;

  g_return_if_fail (BP_IS_PG_CLUSTER (self));
  g_return_if_fail (self->start_task == NULL && self->plan == NULL);

  self->start_task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (self->start_task, bp_pg_cluster_start_async);

  input = g_new0 (PrepareInput, 1);
  input->bindir = g_strdup (self->bindir);
  input->data_dir = g_strdup (self->data_dir);
  input->socket_dir = g_strdup (self->socket_dir);
  input->fallback_data_dir = g_strdup (self->fallback_data_dir);
  input->fallback_socket_dir = g_strdup (self->fallback_socket_dir);
  input->as_root = geteuid () == 0;
  bp_worker_pool_run_async (bp_worker_pool_get_default (), prepare_worker_func, input,
                            (GDestroyNotify) prepare_input_free, (GDestroyNotify) plan_free,
                            cancellable, prepared_cb, g_object_ref (self));
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
  GSubprocess *server;   /* (owned) (nullable): our child */
  GSource     *timeout;  /* (owned) (nullable) */
} StopData;

static void
stop_data_free (StopData *data)
{
  destroy_source (&data->timeout);
  g_clear_object (&data->server);
  g_free (data);
}

/* Main context. */
static gboolean
on_stop_timeout (gpointer user_data)
{
  GTask *task = user_data;
  StopData *data = g_task_get_task_data (task);

  g_debug ("managed PostgreSQL did not stop in time: SIGQUIT");
  g_subprocess_send_signal (data->server, SIGQUIT);
  g_clear_pointer (&data->timeout, g_source_unref);
  return G_SOURCE_REMOVE;
}

/* Main context: the server (or pg_ctl) exited. */
static void
stopped_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;

  g_subprocess_wait_finish (G_SUBPROCESS (object), result, NULL);
  g_task_return_boolean (task, TRUE);
}

static void
stop_adopted (BpPgCluster *self,
              GTask       *task)
{
  g_autoptr(GSubprocessLauncher) launcher = new_launcher (self, G_SUBPROCESS_FLAGS_STDOUT_SILENCE |
                                                                G_SUBPROCESS_FLAGS_STDERR_SILENCE, 0);
  g_autofree char *pg_ctl = g_build_filename (self->bindir, "pg_ctl", NULL);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;

  self->adopted = FALSE;
  proc = g_subprocess_launcher_spawn (launcher, &error, pg_ctl, "stop", "-D", self->plan->data_dir,
                                      "-m", "fast", "-w", "-t", "10", NULL);
  if (proc == NULL)
    {
      g_debug ("pg_ctl stop: %s", error->message);
      g_task_return_boolean (task, TRUE);
      return;
    }
  g_subprocess_wait_async (proc, NULL, stopped_cb, g_object_ref (task));
}

/**
 * bp_pg_cluster_stop_async:
 * @self: a cluster
 * @callback: called once the server exited
 * @user_data: data for @callback
 *
 * A fast shutdown, as `pg_ctl stop -m fast`: SIGINT to our postmaster,
 * SIGQUIT after 10 s; an adopted server is stopped through pg_ctl.
 */
void
bp_pg_cluster_stop_async (BpPgCluster         *self,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (self, NULL, callback, user_data);
  StopData *data;

  g_return_if_fail (BP_IS_PG_CLUSTER (self));

  g_task_set_source_tag (task, bp_pg_cluster_stop_async);
  if (self->server == NULL)
    {
      if (self->adopted && self->plan != NULL)
        stop_adopted (self, task);
      else
        g_task_return_boolean (task, TRUE);
      return;
    }
  data = g_new0 (StopData, 1);
  data->server = g_steal_pointer (&self->server);
  data->timeout = bp_clock_timeout_source_new (self->clock, (gint64) STOP_TIMEOUT_MS * 1000);
  g_source_set_callback (data->timeout, on_stop_timeout, task, NULL);
  g_source_set_static_name (data->timeout, "[bp-postgres] cluster stop timeout");
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
