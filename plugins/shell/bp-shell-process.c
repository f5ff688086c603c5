/* bp-shell-process.c: one child process on GSubprocess, fully asynchronous
 *
 * A BpShellProcess runs an argv (never a shell command line) whose program is
 * an absolute canonical path; the backend resolves names through
 * #BpShellAllowlist first.
 *
 * Process group. The child calls setpgid(0, 0) before exec (a
 * GSpawnChildSetupFunc doing only async-signal-safe calls), so its pid is
 * also its process group id and every signal we send (kill, timeout, close,
 * max-output) goes to the whole group, reaching grandchildren that did not
 * start a session of their own. Once the child has exited, what is left of
 * the group gets SIGKILL (kill-group-on-exit, on by default). The child
 * also gets default signal dispositions, an empty signal mask and, unless
 * disabled, PR_SET_PDEATHSIG so it dies with the daemon.
 *
 * File descriptors. GSubprocess marks every fd other than 0, 1, 2
 * close-on-exec in the child (we never pass G_SUBPROCESS_FLAGS_INHERIT_FDS),
 * so the daemon's sockets and files do not leak. Streams the caller passed
 * as fds are dup'ed into the launcher and the launcher is closed right after
 * the spawn: the child reads or writes them directly and the daemon keeps
 * no copy (the reader of a pipe sees end-of-file when the child is done).
 *
 * Captured streams are read asynchronously in chunks, never more than
 * max-output + 1 bytes per stream. "run" mode (bp_shell_process_run_async())
 * keeps them as bytes; "spawn" mode (bp_shell_process_spawn()) cuts them
 * into lines with a #BpShellLineBatcher and emits `output` batches. More
 * than max-output bytes on a stream kills the group with SIGKILL and fails
 * the process with %BP_ERROR_LIMIT_EXCEEDED. stdin bytes are written
 * asynchronously (our pipe ends are non-blocking) and stdin is then closed.
 *
 * Timeout: SIGTERM (+SIGCONT) to the group, SIGKILL after the kill grace
 * period, and the process fails with %BP_ERROR_TIMEOUT.
 *
 * Reaping is GLib's child watch (g_subprocess_wait_async()), so there is
 * never a zombie. The process is finished when the child has been reaped
 * and every captured pipe reached end-of-file (or, if something outside
 * the group still holds a pipe open, a drain period after the exit); then
 * the last output batch is emitted, then `exited`, then waiters complete.
 * Until then the pending operations hold a reference, so dropping the
 * last external reference never leaves a child behind unnoticed; call
 * bp_shell_process_close() to end it early.
 *
 * The process using this must ignore SIGPIPE (backplaned does in main()):
 * writing to a stdin whose reader exited would otherwise kill it. The child
 * gets SIGPIPE back at its default.
 *
 * Context: not thread-safe. Every callback and signal runs in the
 * thread-default main context of the thread that spawned the process, which
 * should be the main thread (PR_SET_PDEATHSIG follows the spawning thread).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <glib-unix.h>
#include <gio/gunixinputstream.h>
#include <gio/gunixoutputstream.h>

#include "bp-shell-line-batcher.h"
#include "bp-shell-process.h"
#include "bp-shell-spawn-options-private.h"
#include "bp-shell-util.h"

#define READ_CHUNK       (64 * 1024)
#define MIN_DRAIN_US     (1 * G_USEC_PER_SEC)

/* Reads of streams that become Output lines share a budget per main-loop
 * iteration. GLib dispatches the read of every readable pipe in the same
 * iteration, so while N such streams are busy (their last read filled its
 * buffer: the pipe had more) each read takes at most LINE_READ_BUDGET / N
 * bytes (but at least LINE_READ_MIN). Fifty processes printing at full
 * speed then cost the loop about as much per iteration as one does,
 * instead of 50 × 64 KiB of lines at once. Captured (Run) output is only
 * copied and keeps READ_CHUNK. */
#define LINE_READ_BUDGET (16 * 1024)
#define LINE_READ_MIN    512

/* Line streams whose last read filled its buffer, all processes together;
 * atomic, as processes may live in other threads' contexts. */
static gint n_busy_line_streams;

typedef struct
{
  BpShellProcess *self;      /* (unowned): back pointer */
  GInputStream   *stream;    /* (owned) (nullable): set while reading */
  GByteArray     *captured;  /* (owned) (nullable): run mode only */
  guint8         *buffer;    /* (owned) (nullable) */
  guint64         n_read;
  GSource        *source;    /* (owned) (nullable): set while reading */
  guint           number;    /* 1 stdout, 2 stderr */
  gboolean        busy;      /* counted in n_busy_line_streams */
} OutputPipe;

struct _BpShellProcess
{
  GObject              parent_instance;

  GSubprocess         *subprocess;     /* (owned) */
  char               **argv;           /* (owned) */
  BpClock             *clock;          /* (owned) */
  GMainContext        *context;        /* (owned) */
  GCancellable        *io_cancellable; /* (owned): cancels every pipe operation */
  BpShellLineBatcher  *batcher;        /* (owned) (nullable): spawn mode */
  GOutputStream       *stdin_stream;   /* (owned) (nullable): set while writing */
  GBytes              *stdin_bytes;    /* (owned) (nullable) */
  GSource             *timeout_source; /* (owned) (nullable) */
  GSource             *grace_source;   /* (owned) (nullable) */
  GSource             *drain_source;   /* (owned) (nullable) */
  GError              *error;          /* (owned) (nullable): why we ended it */
  GQueue               waiters;        /* (element-type GTask) (owned) */
  OutputPipe           out[2];

  gint64               kill_grace_us;
  gsize                max_output;
  GPid                 pid;
  guint                timeout_ms;
  guint                n_pending_io;
  int                  exit_code;
  int                  term_signal;
  BpShellProcessState  state;

  guint                reaped : 1;
  guint                finished : 1;
  guint                terminating : 1;
  guint                closed : 1;
  guint                kill_group_on_exit : 1;
};

G_DEFINE_FINAL_TYPE (BpShellProcess, bp_shell_process, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_PID,
  PROP_ARGV,
  PROP_STATE,
  PROP_EXIT_CODE,
  PROP_TERM_SIGNAL,
  N_PROPS
};

enum {
  SIGNAL_OUTPUT,
  SIGNAL_EXITED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void bp_shell_process_maybe_finish (BpShellProcess *self);

/**
 * bp_shell_run_result_free:
 * @result: (transfer full) (nullable): a result
 */
void
bp_shell_run_result_free (BpShellRunResult *result)
{
  if (result == NULL)
    return;

  g_clear_pointer (&result->stdout_bytes, g_bytes_unref);
  g_clear_pointer (&result->stderr_bytes, g_bytes_unref);
  g_free (result);
}

/**
 * bp_shell_process_state_to_string:
 * @state: a state
 *
 * Returns: "running", "exited", "killed" or "failed" (the D-Bus `State`)
 */
const char *
bp_shell_process_state_to_string (BpShellProcessState state)
{
  switch (state)
    {
    case BP_SHELL_PROCESS_STATE_RUNNING:
      return "running";
    case BP_SHELL_PROCESS_STATE_EXITED:
      return "exited";
    case BP_SHELL_PROCESS_STATE_KILLED:
      return "killed";
    case BP_SHELL_PROCESS_STATE_FAILED:
      return "failed";
    default:
      g_return_val_if_reached ("failed");
    }
}

static void
clear_source (GSource **source)
{
  if (*source == NULL)
    return;
  g_source_destroy (*source);
  g_clear_pointer (source, g_source_unref);
}

static void
bp_shell_process_dispose (GObject *object)
{
  BpShellProcess *self = BP_SHELL_PROCESS (object);

  /* Pending operations hold references, so this runs once the process is
   * finished, or when spawning failed. */
  clear_source (&self->timeout_source);
  clear_source (&self->grace_source);
  clear_source (&self->drain_source);
  g_clear_object (&self->batcher);

  G_OBJECT_CLASS (bp_shell_process_parent_class)->dispose (object);
}

static void
bp_shell_process_finalize (GObject *object)
{
  BpShellProcess *self = BP_SHELL_PROCESS (object);

  g_assert (g_queue_is_empty (&self->waiters));

  for (guint i = 0; i < G_N_ELEMENTS (self->out); i++)
    {
      if (self->out[i].busy)
        g_atomic_int_add (&n_busy_line_streams, -1);
      g_clear_object (&self->out[i].stream);
      g_clear_pointer (&self->out[i].captured, g_byte_array_unref);
      g_clear_pointer (&self->out[i].buffer, g_free);
    }
  g_clear_object (&self->stdin_stream);
  g_clear_pointer (&self->stdin_bytes, g_bytes_unref);
  g_clear_object (&self->subprocess);
  g_clear_object (&self->io_cancellable);
  g_clear_object (&self->clock);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->argv, g_strfreev);
  g_clear_error (&self->error);

  G_OBJECT_CLASS (bp_shell_process_parent_class)->finalize (object);
}

static void
bp_shell_process_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  BpShellProcess *self = BP_SHELL_PROCESS (object);

  switch (prop_id)
    {
    case PROP_PID:
      g_value_set_uint (value, bp_shell_process_get_pid (self));
      break;
    case PROP_ARGV:
      g_value_set_boxed (value, self->argv);
      break;
    case PROP_STATE:
      g_value_set_string (value, bp_shell_process_state_to_string (self->state));
      break;
    case PROP_EXIT_CODE:
      g_value_set_int (value, self->exit_code);
      break;
    case PROP_TERM_SIGNAL:
      g_value_set_int (value, self->term_signal);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
bp_shell_process_class_init (BpShellProcessClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = bp_shell_process_dispose;
  object_class->finalize = bp_shell_process_finalize;
  object_class->get_property = bp_shell_process_get_property;

  properties[PROP_PID] =
    g_param_spec_uint ("pid", NULL, NULL, 0, G_MAXUINT, 0,
                       G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  properties[PROP_ARGV] =
    g_param_spec_boxed ("argv", NULL, NULL, G_TYPE_STRV,
                        G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  /**
   * BpShellProcess:state:
   *
   * "running", "exited", "killed" or "failed"; see #BpShellProcessState.
   */
  properties[PROP_STATE] =
    g_param_spec_string ("state", NULL, NULL, "running",
                         G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * BpShellProcess:exit-code:
   *
   * The exit status; -1 while running or when a signal terminated the child.
   */
  properties[PROP_EXIT_CODE] =
    g_param_spec_int ("exit-code", NULL, NULL, -1, 255, -1,
                      G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * BpShellProcess:term-signal:
   *
   * The signal that terminated the child; 0 while running or after a
   * normal exit.
   */
  properties[PROP_TERM_SIGNAL] =
    g_param_spec_int ("term-signal", NULL, NULL, 0, G_MAXINT, 0,
                      G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * BpShellProcess::output:
   * @self: the process
   * @lines: an `a(us)` of (stream, line): 1 stdout, 2 stderr, in read order
   *
   * A batch of output lines (spawned processes, streams without an fd).
   * Not emitted after bp_shell_process_close().
   */
  signals[SIGNAL_OUTPUT] =
    g_signal_new ("output",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 1, G_TYPE_VARIANT);

  /**
   * BpShellProcess::exited:
   * @self: the process
   * @exit_code: the exit status, or -1 if a signal terminated the child
   * @term_signal: the terminating signal, or 0
   *
   * Emitted once, after the child was reaped and the last `output` batch.
   */
  signals[SIGNAL_EXITED] =
    g_signal_new ("exited",
                  G_TYPE_FROM_CLASS (klass),
                  G_SIGNAL_RUN_LAST,
                  0, NULL, NULL, NULL,
                  G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_INT);
}

static void
bp_shell_process_init (BpShellProcess *self)
{
  g_queue_init (&self->waiters);
  self->exit_code = -1;
  self->state = BP_SHELL_PROCESS_STATE_RUNNING;
  self->io_cancellable = g_cancellable_new ();
  for (guint i = 0; i < G_N_ELEMENTS (self->out); i++)
    {
      self->out[i].self = self;
      self->out[i].number = i + 1;
    }
}

/* ------------------------------------------------------------------------ */
/* Signals to the process group                                             */

static void
signal_group (BpShellProcess *self,
              int             signum)
{
  if (self->pid <= 0)
    return;
  if (kill (-self->pid, signum) < 0 && errno != ESRCH)
    g_debug ("kill(-%d, %d): %s", (int) self->pid, signum, g_strerror (errno));
}

static void
set_error_once (BpShellProcess *self,
                GError         *error)
{
  if (self->error == NULL)
    self->error = error;
  else
    g_error_free (error);
}

/* ------------------------------------------------------------------------ */
/* Spawning                                                                 */

typedef struct
{
  pid_t    parent_pid;
  int      pid_fd;          /* write end of a close-on-exec pipe */
  gboolean die_with_parent;
} ChildSetupData;

/* Runs in the child between fork and exec: async-signal-safe calls only. */
static void
child_setup (gpointer user_data)
{
  const ChildSetupData *data = user_data;
  struct sigaction sa;
  sigset_t mask;

  memset (&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int signum = 1; signum < NSIG; signum++)
    if (signum != SIGKILL && signum != SIGSTOP)
      (void) sigaction (signum, &sa, NULL);
  sigemptyset (&mask);
  (void) sigprocmask (SIG_SETMASK, &mask, NULL);

  (void) setpgid (0, 0);

  /* Tell the parent our pid: GLib may reap a fast child before the parent
   * gets to ask the GSubprocess for it. The pipe closes at exec. */
  {
    pid_t self_pid = getpid ();
    (void) write (data->pid_fd, &self_pid, sizeof self_pid);
  }

#ifdef __linux__
  if (data->die_with_parent)
    {
      (void) prctl (PR_SET_PDEATHSIG, SIGKILL);
      if (getppid () != data->parent_pid)
        _exit (127);
    }
#endif
}

static void
set_spawn_error (GError       **error,
                 const GError  *spawn_error)
{
  BpError code = BP_ERROR_FAILED;
  const char *field = "spawn";

  if (spawn_error->domain == G_SPAWN_ERROR)
    {
      switch ((GSpawnError) spawn_error->code)
        {
        case G_SPAWN_ERROR_CHDIR:
          code = BP_ERROR_INVALID_ARGUMENT;
          field = "cwd";
          break;
        case G_SPAWN_ERROR_NOENT:
          code = BP_ERROR_NOT_FOUND;
          field = "argv[0]";
          break;
        case G_SPAWN_ERROR_ACCES:
        case G_SPAWN_ERROR_PERM:
          code = BP_ERROR_PERMISSION_DENIED;
          field = "argv[0]";
          break;
        case G_SPAWN_ERROR_NOEXEC:
        case G_SPAWN_ERROR_NAMETOOLONG:
        case G_SPAWN_ERROR_NOTDIR:
        case G_SPAWN_ERROR_LOOP:
        case G_SPAWN_ERROR_ISDIR:
        case G_SPAWN_ERROR_LIBBAD:
        case G_SPAWN_ERROR_INVAL:
          code = BP_ERROR_INVALID_ARGUMENT;
          field = "argv[0]";
          break;
        case G_SPAWN_ERROR_TOO_BIG:
          code = BP_ERROR_LIMIT_EXCEEDED;
          field = "argv";
          break;
        case G_SPAWN_ERROR_FORK:
        case G_SPAWN_ERROR_READ:
        case G_SPAWN_ERROR_NOMEM:
        case G_SPAWN_ERROR_TXTBUSY:
        case G_SPAWN_ERROR_IO:
        case G_SPAWN_ERROR_NFILE:
        case G_SPAWN_ERROR_MFILE:
        case G_SPAWN_ERROR_FAILED:
        default:
          break;
        }
    }

  g_set_error (error, BP_ERROR, code, "%s: %s", field, spawn_error->message);
}

static gboolean
take_dup_fd (GSubprocessLauncher  *launcher,
             BpShellStdio          stdio,
             int                   fd,
             GError              **error)
{
  static const char * const names[] = { "stdin", "stdout", "stderr" };
  int copy = fcntl (fd, F_DUPFD_CLOEXEC, 3);

  if (copy < 0)
    {
      int errsv = errno;

      g_set_error (error, BP_ERROR, errsv == EMFILE ? BP_ERROR_LIMIT_EXCEEDED : BP_ERROR_INVALID_ARGUMENT,
                   "%s: cannot use the fd: %s", names[stdio], g_strerror (errsv));
      return FALSE;
    }

  switch (stdio)
    {
    case BP_SHELL_STDIN:
      g_subprocess_launcher_take_stdin_fd (launcher, copy);
      break;
    case BP_SHELL_STDOUT:
      g_subprocess_launcher_take_stdout_fd (launcher, copy);
      break;
    case BP_SHELL_STDERR:
      g_subprocess_launcher_take_stderr_fd (launcher, copy);
      break;
    default:
      g_assert_not_reached ();
    }
  return TRUE;
}

static GSubprocess *
launch (const BpShellSpawnOptions  *options,
        char                      **argv,
        GPid                       *pid,
        GError                    **error)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) subprocess = NULL;
  g_autoptr(GError) spawn_error = NULL;
  GSubprocessFlags flags = G_SUBPROCESS_FLAGS_NONE;
  ChildSetupData setup_data;
  int pid_pipe[2];
  pid_t child_pid = 0;

  if (options->stdin_bytes != NULL)
    flags |= G_SUBPROCESS_FLAGS_STDIN_PIPE;
  if (options->fds[BP_SHELL_STDOUT] < 0)
    flags |= G_SUBPROCESS_FLAGS_STDOUT_PIPE;
  if (options->fds[BP_SHELL_STDERR] < 0)
    flags |= G_SUBPROCESS_FLAGS_STDERR_PIPE;

  launcher = g_subprocess_launcher_new (flags);
  for (guint i = 0; i < G_N_ELEMENTS (options->fds); i++)
    if (options->fds[i] >= 0 && !take_dup_fd (launcher, i, options->fds[i], error))
      return NULL;

  if (options->clear_env)
    {
      char *empty[] = { NULL };
      g_subprocess_launcher_set_environ (launcher, empty);
    }
  for (guint i = 0; i + 1 < options->env->len; i += 2)
    {
      GBytes *name = g_ptr_array_index (options->env, i);
      GBytes *value = g_ptr_array_index (options->env, i + 1);
      g_autofree char *name_str = g_strndup (g_bytes_get_data (name, NULL), g_bytes_get_size (name));
      g_autofree char *value_str = g_bytes_get_size (value) > 0
                                   ? g_strndup (g_bytes_get_data (value, NULL), g_bytes_get_size (value))
                                   : g_strdup ("");

      g_subprocess_launcher_setenv (launcher, name_str, value_str, TRUE);
    }

  if (options->cwd != NULL)
    {
      g_autofree char *cwd = g_strndup (g_bytes_get_data (options->cwd, NULL),
                                        g_bytes_get_size (options->cwd));
      g_subprocess_launcher_set_cwd (launcher, cwd);
    }

  if (!g_unix_open_pipe (pid_pipe, FD_CLOEXEC, &spawn_error))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_FAILED, "spawn: %s", spawn_error->message);
      return NULL;
    }
  (void) g_unix_set_fd_nonblocking (pid_pipe[0], TRUE, NULL);

  /* The launcher is only used synchronously below, so the data may live
   * on the stack. */
  setup_data.parent_pid = getpid ();
  setup_data.pid_fd = pid_pipe[1];
  setup_data.die_with_parent = options->die_with_parent;
  g_subprocess_launcher_set_child_setup (launcher, child_setup, &setup_data, NULL);

  subprocess = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv, &spawn_error);
  /* Close our copies of the caller's fds now: only the child keeps them. */
  g_subprocess_launcher_close (launcher);

  /* spawnv() returns after the child's exec, so child_setup() has written. */
  close (pid_pipe[1]);
  if (subprocess != NULL && read (pid_pipe[0], &child_pid, sizeof child_pid) != sizeof child_pid)
    child_pid = 0;
  close (pid_pipe[0]);

  if (subprocess == NULL)
    {
      set_spawn_error (error, spawn_error);
      return NULL;
    }
  if (child_pid <= 0)
    {
      /* Cannot happen; without the pid we could not signal the group. */
      g_subprocess_force_exit (subprocess);
      g_set_error_literal (error, BP_ERROR, BP_ERROR_FAILED, "spawn: the child did not report its pid");
      return NULL;
    }
  *pid = child_pid;
  return g_steal_pointer (&subprocess);
}

/* ------------------------------------------------------------------------ */
/* stdin                                                                    */

static void
stdin_write_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(BpShellProcess) self = user_data; /* reference taken in start_stdin() */
  g_autoptr(GError) error = NULL;
  gsize written = 0;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, &written, &error))
    g_debug ("pid %d: stdin: %s after %" G_GSIZE_FORMAT " bytes", (int) self->pid, error->message, written);

  (void) g_output_stream_close (self->stdin_stream, NULL, NULL);
  g_clear_object (&self->stdin_stream);
  g_clear_pointer (&self->stdin_bytes, g_bytes_unref);
  self->n_pending_io--;
  bp_shell_process_maybe_finish (self);
}

static void
start_stdin (BpShellProcess *self)
{
  GOutputStream *pipe = g_subprocess_get_stdin_pipe (self->subprocess);
  gsize len;
  const guint8 *data;

  if (pipe == NULL)
    return;

  data = g_bytes_get_data (self->stdin_bytes, &len);
  if (len == 0)
    {
      (void) g_output_stream_close (pipe, NULL, NULL);
      g_clear_pointer (&self->stdin_bytes, g_bytes_unref);
      return;
    }

  (void) g_unix_set_fd_nonblocking (g_unix_output_stream_get_fd (G_UNIX_OUTPUT_STREAM (pipe)), TRUE, NULL);
  self->stdin_stream = g_object_ref (pipe);
  self->n_pending_io++;
  g_output_stream_write_all_async (pipe, data, len, G_PRIORITY_DEFAULT,
                                   self->io_cancellable, stdin_write_cb, g_object_ref (self));
}

/* ------------------------------------------------------------------------ */
/* stdout, stderr                                                           */

/* Each pipe is read through one pollable source for its whole life (not a
 * GTask a read): one non-blocking read of at most one chunk a dispatch, so
 * a pipe with more waiting is read again in the next iteration. The
 * source holds a reference on the process until output_done(). */

static void
set_busy (OutputPipe *op,
          gboolean    busy)
{
  if (op->busy == busy)
    return;
  op->busy = busy;
  g_atomic_int_add (&n_busy_line_streams, busy ? 1 : -1);
}

static gsize
output_chunk (OutputPipe *op)
{
  BpShellProcess *self = op->self;
  gsize remaining = self->max_output - MIN (op->n_read, (guint64) self->max_output);
  gsize chunk = READ_CHUNK;

  if (op->captured == NULL)
    chunk = CLAMP (LINE_READ_BUDGET / (gsize) MAX (g_atomic_int_get (&n_busy_line_streams), 1),
                   LINE_READ_MIN, READ_CHUNK);
  /* One byte past the cap is enough to know it was exceeded. */
  return remaining < chunk ? remaining + 1 : chunk;
}

static void
output_done (OutputPipe *op)
{
  BpShellProcess *self = op->self;

  clear_source (&op->source);
  (void) g_input_stream_close (op->stream, NULL, NULL);
  g_clear_object (&op->stream);
  g_clear_pointer (&op->buffer, g_free);
  set_busy (op, FALSE);
  self->n_pending_io--;
  bp_shell_process_maybe_finish (self);
  g_object_unref (self); /* taken in start_output() */
}

static gboolean
output_readable_cb (GObject  *stream,
                    gpointer  user_data)
{
  OutputPipe *op = user_data;
  g_autoptr(BpShellProcess) self = g_object_ref (op->self);
  g_autoptr(GError) error = NULL;
  gsize count;
  gssize n;

  if (g_cancellable_is_cancelled (self->io_cancellable))
    {
      output_done (op);
      return G_SOURCE_REMOVE;
    }

  count = output_chunk (op);
  n = g_pollable_input_stream_read_nonblocking (G_POLLABLE_INPUT_STREAM (stream), op->buffer, count,
                                                NULL, &error);
  if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
    return G_SOURCE_CONTINUE;
  if (n < 0)
    {
      g_debug ("pid %d: stream %u: %s", (int) self->pid, op->number, error->message);
      output_done (op);
      return G_SOURCE_REMOVE;
    }

  if (n == 0)
    {
      if (self->batcher != NULL && !self->closed)
        bp_shell_line_batcher_end_stream (self->batcher, op->number);
      output_done (op);
      return G_SOURCE_REMOVE;
    }

  op->n_read += n;
  if (op->captured == NULL)
    set_busy (op, (gsize) n == count);
  if (op->n_read > self->max_output)
    {
      set_error_once (self, g_error_new (BP_ERROR, BP_ERROR_LIMIT_EXCEEDED,
                                         "%s exceeded max-output (%" G_GUINT64_FORMAT " bytes read)",
                                         op->number == 1 ? "stdout" : "stderr", op->n_read));
      if (!self->reaped)
        signal_group (self, SIGKILL);
      output_done (op);
      return G_SOURCE_REMOVE;
    }

  if (op->captured != NULL)
    g_byte_array_append (op->captured, op->buffer, n);
  else if (self->batcher != NULL && !self->closed)
    bp_shell_line_batcher_push (self->batcher, op->number, op->buffer, n);
  return G_SOURCE_CONTINUE;
}

static void
start_output (BpShellProcess *self,
              OutputPipe     *op,
              GInputStream   *pipe,
              gboolean        capture_bytes)
{
  if (pipe == NULL)
    return;

  (void) g_unix_set_fd_nonblocking (g_unix_input_stream_get_fd (G_UNIX_INPUT_STREAM (pipe)), TRUE, NULL);
  op->stream = g_object_ref (pipe);
  op->buffer = g_malloc (READ_CHUNK);
  if (capture_bytes)
    op->captured = g_byte_array_new ();
  self->n_pending_io++;
  g_object_ref (self); /* dropped in output_done() */
  /* The cancellable makes the source dispatch once cancelled. */
  op->source = g_pollable_input_stream_create_source (G_POLLABLE_INPUT_STREAM (pipe), self->io_cancellable);
  g_source_set_callback (op->source, G_SOURCE_FUNC (output_readable_cb), op, NULL);
  g_source_attach (op->source, self->context);
}

static void
batcher_batch_cb (BpShellLineBatcher *batcher,
                  GVariant           *lines,
                  gpointer            user_data)
{
  BpShellProcess *self = user_data;

  if (!self->closed)
    g_signal_emit (self, signals[SIGNAL_OUTPUT], 0, lines);
}

/* ------------------------------------------------------------------------ */
/* Timers                                                                   */

static GSource *
add_timer (BpShellProcess *self,
           gint64          delay_us,
           GSourceFunc     func)
{
  GSource *source = bp_clock_timeout_source_new (self->clock, delay_us);

  /* No reference: every timer is destroyed in maybe_finish() or dispose. */
  g_source_set_callback (source, func, self, NULL);
  g_source_attach (source, self->context);
  return source;
}

static gboolean
grace_cb (gpointer user_data)
{
  BpShellProcess *self = user_data;

  g_clear_pointer (&self->grace_source, g_source_unref);
  if (!self->reaped)
    signal_group (self, SIGKILL);
  return G_SOURCE_REMOVE;
}

/**
 * bp_shell_process_terminate:
 * @self: a process
 *
 * Asks the process group to stop: SIGTERM and SIGCONT now, SIGKILL after the
 * kill grace period if the child is still not reaped. Does nothing once the
 * child has been reaped or a termination is already under way.
 */
void
bp_shell_process_terminate (BpShellProcess *self)
{
  g_return_if_fail (BP_IS_SHELL_PROCESS (self));

  if (self->reaped || self->terminating)
    return;
  self->terminating = TRUE;

  signal_group (self, SIGTERM);
  signal_group (self, SIGCONT);
  if (self->kill_grace_us == 0)
    signal_group (self, SIGKILL);
  else
    self->grace_source = add_timer (self, self->kill_grace_us, grace_cb);
}

static gboolean
timeout_cb (gpointer user_data)
{
  BpShellProcess *self = user_data;

  g_clear_pointer (&self->timeout_source, g_source_unref);
  set_error_once (self, g_error_new (BP_ERROR, BP_ERROR_TIMEOUT,
                                     "process timed out after %u ms", self->timeout_ms));
  bp_shell_process_terminate (self);
  return G_SOURCE_REMOVE;
}

static gboolean
drain_cb (gpointer user_data)
{
  BpShellProcess *self = user_data;

  g_clear_pointer (&self->drain_source, g_source_unref);
  g_debug ("pid %d: pipes still open after exit, giving up on them", (int) self->pid);
  g_cancellable_cancel (self->io_cancellable);
  return G_SOURCE_REMOVE;
}

/* ------------------------------------------------------------------------ */
/* Exit                                                                     */

static void
set_state (BpShellProcess      *self,
           BpShellProcessState  state)
{
  if (self->state == state)
    return;
  self->state = state;
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATE]);
}

static void
subprocess_wait_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  g_autoptr(BpShellProcess) self = user_data; /* reference taken at spawn */
  GSubprocess *subprocess = G_SUBPROCESS (object);

  /* Cannot fail: no cancellable. */
  (void) g_subprocess_wait_finish (subprocess, result, NULL);

  self->reaped = TRUE;
  clear_source (&self->timeout_source);
  clear_source (&self->grace_source);

  if (g_subprocess_get_if_signaled (subprocess))
    {
      self->exit_code = -1;
      self->term_signal = g_subprocess_get_term_sig (subprocess);
    }
  else
    {
      self->exit_code = g_subprocess_get_exit_status (subprocess);
      self->term_signal = 0;
    }
  g_debug ("pid %d: reaped, exit code %d, signal %d",
           (int) self->pid, self->exit_code, self->term_signal);

  /* Grandchildren left in the group would keep our pipes open (and run
   * unsupervised). The group id cannot be reused while any member lives. */
  if (self->kill_group_on_exit)
    signal_group (self, SIGKILL);

  if (self->n_pending_io > 0)
    self->drain_source = add_timer (self, MAX (self->kill_grace_us, MIN_DRAIN_US), drain_cb);

  bp_shell_process_maybe_finish (self);
}

typedef struct
{
  GSource *cancel_source; /* (owned) (nullable) */
} WaitData;

static void
wait_data_free (WaitData *data)
{
  clear_source (&data->cancel_source);
  g_free (data);
}

static void
return_wait (BpShellProcess *self,
             GTask          *task)
{
  if (self->error != NULL)
    g_task_return_error (task, g_error_copy (self->error));
  else
    g_task_return_boolean (task, TRUE);
}

static void
bp_shell_process_maybe_finish (BpShellProcess *self)
{
  GTask *task;

  if (self->finished || !self->reaped || self->n_pending_io > 0)
    return;
  self->finished = TRUE;

  clear_source (&self->drain_source);
  clear_source (&self->timeout_source);
  clear_source (&self->grace_source);

  if (self->batcher != NULL && !self->closed)
    bp_shell_line_batcher_flush (self->batcher);

  g_object_freeze_notify (G_OBJECT (self));
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_EXIT_CODE]);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TERM_SIGNAL]);
  if (self->error != NULL)
    set_state (self, BP_SHELL_PROCESS_STATE_FAILED);
  else if (self->term_signal != 0)
    set_state (self, BP_SHELL_PROCESS_STATE_KILLED);
  else
    set_state (self, BP_SHELL_PROCESS_STATE_EXITED);
  g_object_thaw_notify (G_OBJECT (self));

  g_signal_emit (self, signals[SIGNAL_EXITED], 0, self->exit_code, self->term_signal);

  while ((task = g_queue_pop_head (&self->waiters)) != NULL)
    {
      return_wait (self, task);
      g_object_unref (task);
    }
}

static BpShellProcess *
bp_shell_process_new_internal (const BpShellSpawnOptions  *options,
                               gboolean                    capture_bytes,
                               GError                    **error)
{
  g_autoptr(BpShellProcess) self = NULL;

  if (!bp_shell_spawn_options_validate (options, error))
    return NULL;

  self = g_object_new (BP_TYPE_SHELL_PROCESS, NULL);
  self->argv = _bp_shell_spawn_options_dup_argv (options);
  self->clock = g_object_ref (options->clock != NULL ? options->clock : bp_clock_get_default ());
  self->context = g_main_context_ref_thread_default ();
  self->max_output = options->max_output;
  self->timeout_ms = options->timeout_ms;
  self->kill_grace_us = (gint64) options->kill_grace_ms * G_TIME_SPAN_MILLISECOND;
  self->kill_group_on_exit = options->kill_group_on_exit;
  if (options->stdin_bytes != NULL)
    self->stdin_bytes = g_bytes_ref (options->stdin_bytes);

  if (!capture_bytes && (options->fds[BP_SHELL_STDOUT] < 0 || options->fds[BP_SHELL_STDERR] < 0))
    {
      self->batcher = bp_shell_line_batcher_new (self->clock);
      bp_shell_line_batcher_set_max_line_bytes (self->batcher, options->max_line_bytes);
      bp_shell_line_batcher_set_flush_interval (self->batcher, options->flush_interval_us);
      bp_shell_line_batcher_set_max_batch (self->batcher, options->batch_max_lines, options->batch_max_bytes);
      g_signal_connect (self->batcher, "batch", G_CALLBACK (batcher_batch_cb), self);
    }

  self->subprocess = launch (options, self->argv, &self->pid, error);
  if (self->subprocess == NULL)
    return NULL;

  g_debug ("pid %d: spawned %s", (int) self->pid, self->argv[0]);

  g_subprocess_wait_async (self->subprocess, NULL, subprocess_wait_cb, g_object_ref (self));
  start_stdin (self);
  start_output (self, &self->out[0], g_subprocess_get_stdout_pipe (self->subprocess), capture_bytes);
  start_output (self, &self->out[1], g_subprocess_get_stderr_pipe (self->subprocess), capture_bytes);
  if (self->timeout_ms > 0)
    self->timeout_source = add_timer (self, (gint64) self->timeout_ms * G_TIME_SPAN_MILLISECOND, timeout_cb);

  return g_steal_pointer (&self);
}

/**
 * bp_shell_process_spawn:
 * @options: what to run; fds in it are duplicated, not taken
 * @error: return location for a #GError
 *
 * Validates @options and starts the child. Streams without an fd come as
 * `output` line batches; `exited` follows the last batch. All signals are
 * emitted from the thread-default main context, never from inside this
 * call.
 *
 * Returns: (transfer full): the running process, or %NULL with
 *   %BP_ERROR_INVALID_ARGUMENT (bad argv, env, cwd), %BP_ERROR_NOT_FOUND
 *   (no such program), %BP_ERROR_PERMISSION_DENIED (not executable),
 *   %BP_ERROR_LIMIT_EXCEEDED (argv too large, out of fds) or
 *   %BP_ERROR_FAILED
 */
BpShellProcess *
bp_shell_process_spawn (const BpShellSpawnOptions  *options,
                        GError                    **error)
{
  g_return_val_if_fail (options != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  return bp_shell_process_new_internal (options, FALSE, error);
}

/**
 * bp_shell_process_get_pid:
 * @self: a process
 *
 * Returns: the child's pid (also its process group id); still the same
 *   number after the child is gone
 */
guint
bp_shell_process_get_pid (BpShellProcess *self)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS (self), 0);

  return (guint) self->pid;
}

/**
 * bp_shell_process_get_argv:
 * @self: a process
 *
 * Returns: (transfer none) (array zero-terminated=1): the argv it runs
 */
const char * const *
bp_shell_process_get_argv (BpShellProcess *self)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS (self), NULL);

  return (const char * const *) self->argv;
}

BpShellProcessState
bp_shell_process_get_state (BpShellProcess *self)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS (self), BP_SHELL_PROCESS_STATE_FAILED);

  return self->state;
}

int
bp_shell_process_get_exit_code (BpShellProcess *self)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS (self), -1);

  return self->exit_code;
}

int
bp_shell_process_get_term_signal (BpShellProcess *self)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS (self), 0);

  return self->term_signal;
}

/**
 * bp_shell_process_get_error:
 * @self: a process
 *
 * Returns: (transfer none) (nullable): why we ended the process
 *   (%BP_ERROR_TIMEOUT, %BP_ERROR_LIMIT_EXCEEDED), or %NULL
 */
const GError *
bp_shell_process_get_error (BpShellProcess *self)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS (self), NULL);

  return self->error;
}

/**
 * bp_shell_process_kill:
 * @self: a process
 * @signum: a signal number, 1 to SIGRTMAX
 * @error: return location for a #GError
 *
 * Sends @signum to the process group. Does nothing once the child has
 * been reaped.
 *
 * Returns: %TRUE, or %FALSE with %BP_ERROR_INVALID_ARGUMENT for a bad
 *   signal number
 */
gboolean
bp_shell_process_kill (BpShellProcess  *self,
                       int              signum,
                       GError         **error)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS (self), FALSE);
  g_return_val_if_fail (error == NULL || *error == NULL, FALSE);

  if (signum <= 0 || signum > SIGRTMAX)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_INVALID_ARGUMENT,
                   "signal: %d is not a signal number (1 to %d)", signum, (int) SIGRTMAX);
      return FALSE;
    }
  if (!self->reaped)
    signal_group (self, signum);
  return TRUE;
}

/**
 * bp_shell_process_close:
 * @self: a process
 *
 * Ends the process now: SIGKILL to the group if the child still runs, no
 * more `output`, pipe I/O cancelled. The child is still reaped, after which
 * `exited` is emitted and waiters complete (state "killed", or "exited" if
 * it had already exited). Idempotent.
 */
void
bp_shell_process_close (BpShellProcess *self)
{
  g_return_if_fail (BP_IS_SHELL_PROCESS (self));

  if (self->closed)
    return;
  self->closed = TRUE;

  if (!self->reaped)
    signal_group (self, SIGKILL);
  g_cancellable_cancel (self->io_cancellable);
}

static gboolean
wait_cancelled_cb (GCancellable *cancellable,
                   gpointer      user_data)
{
  GTask *task = user_data;
  BpShellProcess *self = g_task_get_source_object (task);

  /* The queue's reference is ours now. */
  if (g_queue_remove (&self->waiters, task))
    {
      g_task_return_error_if_cancelled (task);
      g_object_unref (task);
    }
  return G_SOURCE_REMOVE;
}

/**
 * bp_shell_process_wait_async:
 * @self: a process
 * @cancellable: (nullable): cancels the wait, not the process
 * @callback: called when the process is finished
 * @user_data: data for @callback
 *
 * Waits until the child has been reaped and its output delivered.
 */
void
bp_shell_process_wait_async (BpShellProcess      *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  WaitData *data;

  g_return_if_fail (BP_IS_SHELL_PROCESS (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_shell_process_wait_async);

  if (self->finished)
    {
      return_wait (self, task);
      return;
    }

  data = g_new0 (WaitData, 1);
  g_task_set_task_data (task, data, (GDestroyNotify) wait_data_free);
  if (cancellable != NULL)
    {
      data->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (data->cancel_source, G_SOURCE_FUNC (wait_cancelled_cb), task, NULL);
      g_source_attach (data->cancel_source, self->context);
    }
  g_queue_push_tail (&self->waiters, g_steal_pointer (&task));
}

/**
 * bp_shell_process_wait_finish:
 * @self: a process
 * @result: the result passed to the callback
 * @exit_code: (out) (optional): the exit status, or -1 if killed by a signal
 * @term_signal: (out) (optional): the terminating signal, or 0
 * @error: return location for a #GError
 *
 * Returns: %TRUE, or %FALSE with the reason we ended the process
 *   (%BP_ERROR_TIMEOUT, %BP_ERROR_LIMIT_EXCEEDED) or %G_IO_ERROR_CANCELLED
 *   if the wait was cancelled; the exit status is then still available
 *   from the getters
 */
gboolean
bp_shell_process_wait_finish (BpShellProcess  *self,
                              GAsyncResult    *result,
                              int             *exit_code,
                              int             *term_signal,
                              GError         **error)
{
  g_return_val_if_fail (BP_IS_SHELL_PROCESS (self), FALSE);
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  if (exit_code != NULL)
    *exit_code = self->exit_code;
  if (term_signal != NULL)
    *term_signal = self->term_signal;
  return TRUE;
}

/* ------------------------------------------------------------------------ */
/* Run: spawn, capture, wait                                                */

typedef struct
{
  BpShellProcess *process;       /* (owned) */
  GSource        *cancel_source; /* (owned) (nullable) */
} RunData;

static void
run_data_free (RunData *data)
{
  clear_source (&data->cancel_source);
  g_clear_object (&data->process);
  g_free (data);
}

static gboolean
run_cancelled_cb (GCancellable *cancellable,
                  gpointer      user_data)
{
  RunData *data = user_data;

  g_clear_pointer (&data->cancel_source, g_source_unref);
  bp_shell_process_terminate (data->process);
  return G_SOURCE_REMOVE;
}

static void
run_wait_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  BpShellProcess *process = BP_SHELL_PROCESS (object);
  g_autoptr(BpShellRunResult) run_result = NULL;
  g_autoptr(GError) error = NULL;

  if (g_task_return_error_if_cancelled (task))
    return;
  if (!bp_shell_process_wait_finish (process, result, NULL, NULL, &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  run_result = g_new0 (BpShellRunResult, 1);
  run_result->pid = (guint) process->pid;
  run_result->exit_code = process->exit_code;
  run_result->term_signal = process->term_signal;
  if (process->out[0].captured != NULL)
    run_result->stdout_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&process->out[0].captured));
  if (process->out[1].captured != NULL)
    run_result->stderr_bytes = g_byte_array_free_to_bytes (g_steal_pointer (&process->out[1].captured));
  g_task_return_pointer (task, g_steal_pointer (&run_result), (GDestroyNotify) bp_shell_run_result_free);
}

/**
 * bp_shell_process_run_async:
 * @options: what to run; fds in it are duplicated, not taken
 * @cancellable: (nullable): terminates the process (SIGTERM, SIGKILL after
 *   the grace period) and completes with %G_IO_ERROR_CANCELLED once it is
 *   reaped
 * @callback: called when the process is finished
 * @user_data: data for @callback
 *
 * Runs a process to completion, capturing stdout and stderr (those without
 * an fd) as bytes. The child is spawned before this returns; errors,
 * including spawn errors, come through @callback.
 */
void
bp_shell_process_run_async (const BpShellSpawnOptions *options,
                            GCancellable              *cancellable,
                            GAsyncReadyCallback        callback,
                            gpointer                   user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autoptr(GError) error = NULL;
  RunData *data;

  g_return_if_fail (options != NULL);
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, bp_shell_process_run_async);

  if (g_task_return_error_if_cancelled (task))
    return;

  data = g_new0 (RunData, 1);
  g_task_set_task_data (task, data, (GDestroyNotify) run_data_free);
  data->process = bp_shell_process_new_internal (options, TRUE, &error);
  if (data->process == NULL)
    {
      g_task_return_error (task, g_steal_pointer (&error));
      return;
    }

  if (cancellable != NULL)
    {
      data->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (data->cancel_source, G_SOURCE_FUNC (run_cancelled_cb), data, NULL);
      g_source_attach (data->cancel_source, data->process->context);
    }

  bp_shell_process_wait_async (data->process, NULL, run_wait_cb, g_steal_pointer (&task));
}

/**
 * bp_shell_process_run_finish:
 * @result: the result passed to the callback
 * @error: return location for a #GError
 *
 * A non-zero exit code or a terminating signal is a successful run; errors
 * are spawn errors (see bp_shell_process_spawn()), %BP_ERROR_TIMEOUT,
 * %BP_ERROR_LIMIT_EXCEEDED (max-output) and %G_IO_ERROR_CANCELLED.
 *
 * Returns: (transfer full): the result, or %NULL with @error set
 */
BpShellRunResult *
bp_shell_process_run_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_async_result_is_tagged (result, bp_shell_process_run_async), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
