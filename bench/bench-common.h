/* bench-common.h: what the benchmarks that run backplaned share
 *
 * A benchmark calls bench_init() once its options are parsed, makes its
 * temporary directory with bench_make_tmpdir(), starts a private
 * dbus-daemon there (bench_start_bus(), bench_connect()) and backplaned
 * from the build tree (bench_daemon_start()), measures, and ends with
 * bench_daemon_stop() and bench_cleanup(). On any failure it calls
 * bench_die(), which shows the logs, kills every process started through
 * bench_spawn_logged() (and so bench_start_bus(), bench_start_server(),
 * bench_daemon_start()), calls what was registered with bench_at_cleanup()
 * and removes the directory. Every such process also dies with the
 * benchmark (PR_SET_PDEATHSIG), even if it is SIGKILLed.
 *
 * A process started with a log name writes its output to that file in the
 * temporary directory. The functions are documented in bench-common.c.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BENCH_BUS_NAME      "org.backplane.Backplane1"
#define BENCH_ROOT_PATH     "/org/backplane/Backplane1"
#define BENCH_MANAGER_IFACE "org.backplane.Backplane1.Manager"

/* Set-up, failure, clean-up */

typedef void (*BenchCleanupFunc) (void);

void                 bench_init            (const char         *program,
                                            const char * const *logs,
                                            gsize               max_log_bytes);
void                 bench_die             (const char         *format,
                                            ...) G_GNUC_NORETURN G_GNUC_PRINTF (1, 2);
void                 bench_cleanup         (void);
void                 bench_at_cleanup      (BenchCleanupFunc    func);
const char          *bench_make_tmpdir     (void);
char                *bench_tmp_path        (const char         *name);
char                *bench_write_file      (const char         *name,
                                            const char         *contents);
const char          *bench_build_root      (void);
const char          *bench_source_root     (void);

/* Child processes */

GSubprocessLauncher *bench_launcher_new    (GSubprocessFlags    flags,
                                            const char         *log_name);
GSubprocess         *bench_spawn_logged    (const char * const *argv,
                                            char              **envp,
                                            GSubprocessFlags    flags,
                                            const char         *log_name);
void                 bench_forget_child    (GSubprocess        *proc);
guint32              bench_pid             (GSubprocess        *proc);
void                 bench_check_log       (const char         *label,
                                            const char         *log_name);
guint16              bench_start_server    (const char * const *argv,
                                            const char         *log_name,
                                            GSubprocess       **proc);

/* The main loop */

gboolean             bench_iterate_until   (const gboolean     *flag,
                                            guint               timeout_ms);
void                 bench_iterate_for     (guint               ms);

/* The private bus and backplaned */

char                *bench_start_bus       (guint32            *pid);
GDBusConnection     *bench_connect         (const char         *address);
char               **bench_service_environ (const char         *extra_plugin_dir);
char                *bench_daemon_exe      (void);
void                 bench_daemon_start    (GDBusConnection    *connection,
                                            const char         *address,
                                            const char         *config,
                                            char              **envp);
void                 bench_daemon_stop     (void);
guint32              bench_daemon_pid      (void);

typedef struct
{
  gint64  p50_us;
  gint64  p99_us;
  gint64  max_us;
  guint64 samples;
  guint64 stalls;     /* iterations over 16 ms */
} BenchLoopLag;

void                 bench_parse_loop_lag  (GVariant           *reply,
                                            BenchLoopLag       *out);
void                 bench_read_loop_lag   (GDBusConnection    *connection,
                                            const char         *wake_path,
                                            const char         *wake_iface,
                                            const char         *wake_method,
                                            BenchLoopLag       *out);

/* The machine, /proc, statistics */

char                *bench_machine_line    (void);
char                *bench_load_line       (void);
guint64              bench_proc_status_kib (guint32             pid,
                                            const char         *key);
guint64              bench_proc_cpu_ticks  (guint32             pid);
double               bench_median          (const double       *values,
                                            guint               n);
void                 bench_range           (const double       *values,
                                            guint               n,
                                            double             *min,
                                            double             *max);
int                  bench_compare_gint64  (gconstpointer       a,
                                            gconstpointer       b);

G_END_DECLS
