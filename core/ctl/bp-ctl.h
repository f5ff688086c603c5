/* bp-ctl.h: what every backplanectl command shares
 *
 * backplanectl is a one-shot D-Bus client of backplaned. It never links
 * plugin code: everything it knows about the daemon comes from the
 * org.backplane.Backplane1 interfaces (data/ and API.md).
 *
 * Threading and blocking: commands that make one or a few calls use
 * synchronous calls with a bounded timeout *before* any main loop runs, as
 * `gdbus call` does; there is no loop to block then. The commands that wait
 * for signals, streams or a child process (run, listen, sql --to-file,
 * cypher --to-file) run a GMainLoop and only make asynchronous calls from it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define BP_CTL_BUS_NAME              "org.backplane.Backplane1"
#define BP_CTL_ROOT_PATH             "/org/backplane/Backplane1"
#define BP_CTL_DEAD_LETTERS_PATH     "/org/backplane/Backplane1/DeadLetters"
#define BP_CTL_IFACE_PREFIX          "org.backplane.Backplane1."
#define BP_CTL_MANAGER_IFACE         BP_CTL_IFACE_PREFIX "Manager"
#define BP_CTL_BACKEND_IFACE         BP_CTL_IFACE_PREFIX "Backend"
#define BP_CTL_DEAD_LETTERS_IFACE    BP_CTL_IFACE_PREFIX "DeadLetters"
#define BP_CTL_SYSTEM_IFACE          BP_CTL_IFACE_PREFIX "System"
#define BP_CTL_SQL_IFACE             BP_CTL_IFACE_PREFIX "Sql"
#define BP_CTL_GRAPH_IFACE           BP_CTL_IFACE_PREFIX "Graph"
#define BP_CTL_VECTORS_IFACE         BP_CTL_IFACE_PREFIX "Vectors"
#define BP_CTL_SHELL_IFACE           BP_CTL_IFACE_PREFIX "Shell"
#define BP_CTL_PROCESS_IFACE         BP_CTL_IFACE_PREFIX "Process"
#define BP_CTL_SUBSCRIPTION_IFACE    BP_CTL_IFACE_PREFIX "Subscription"

/**
 * BpCtlExit:
 * @BP_CTL_EXIT_OK: success
 * @BP_CTL_EXIT_FAILED: the daemon or a backend reported an error, or a
 *   health check failed
 * @BP_CTL_EXIT_USAGE: bad command line
 * @BP_CTL_EXIT_NO_DAEMON: no bus, or backplaned is not running on it
 * @BP_CTL_EXIT_NO_BACKEND: no backend of that name, or it lacks the
 *   interface the command needs
 *
 * Exit statuses of backplanectl (`run` exits with the program's status).
 */
typedef enum
{
  BP_CTL_EXIT_OK = 0,
  BP_CTL_EXIT_FAILED = 1,
  BP_CTL_EXIT_USAGE = 2,
  BP_CTL_EXIT_NO_DAEMON = 3,
  BP_CTL_EXIT_NO_BACKEND = 4,
} BpCtlExit;

#define BP_CTL_ERROR (bp_ctl_error_quark ())

typedef enum
{
  BP_CTL_ERROR_FAILED,
  BP_CTL_ERROR_USAGE,
  BP_CTL_ERROR_NO_DAEMON,
  BP_CTL_ERROR_NO_BACKEND,
} BpCtlError;

typedef struct
{
  char            *address;      /* (owned) (nullable): --address */
  gboolean         json;         /* --json */
  gboolean         wide;         /* --wide: never truncate table cells */
  int              timeout_ms;   /* --timeout-ms; -1 when not given */
  GDBusConnection *connection;   /* (owned) (nullable): opened on first use */
} BpCtl;

typedef struct _BpCtlCommand BpCtlCommand;

/**
 * BpCtlCommandFunc:
 * @ctl: the global state
 * @command: the command being run
 * @argv: (array zero-terminated=1): the command line from the command (or
 *   sub-command) word on, owned by the caller
 *
 * Returns: the exit status
 */
typedef int (*BpCtlCommandFunc) (BpCtl              *ctl,
                                 const BpCtlCommand *command,
                                 char              **argv);

struct _BpCtlCommand
{
  const char       *group;       /* (nullable): "system" in "system disks" */
  const char       *group_args;  /* (nullable): N_() arguments between group and name ("NAME") */
  const char       *name;        /* the command word */
  const char       *synopsis;    /* N_(): what follows the name */
  const char       *summary;     /* N_(): one line for --help */
  const char       *description; /* (nullable) N_(): more text for COMMAND --help */
  BpCtlCommandFunc  func;
  gboolean          typed_values; /* --help documents the typed parameter forms */
};

/* Command tables, each ended by an entry whose name is NULL. */
extern const BpCtlCommand bp_ctl_daemon_commands[];
extern const BpCtlCommand bp_ctl_system_commands[];
extern const BpCtlCommand bp_ctl_dlq_commands[];
extern const BpCtlCommand bp_ctl_shell_commands[];
extern const BpCtlCommand bp_ctl_sql_commands[];
extern const BpCtlCommand bp_ctl_graph_commands[];
extern const BpCtlCommand bp_ctl_vectors_commands[];

/**
 * BpCtlBackend:
 *
 * One backend as GetManagedObjects shows it.
 */
typedef struct
{
  char      *path;        /* (owned) */
  char      *name;        /* (owned) */
  char      *type;        /* (owned) */
  char      *state;       /* (owned) */
  char      *reason;      /* (owned) */
  GVariant  *properties;  /* (owned): a{sv} of the Backend interface */
  GStrv      interfaces;  /* (owned): every interface name of the object */
} BpCtlBackend;

GQuark         bp_ctl_error_quark          (void);

BpCtl         *bp_ctl_new                  (void);
void           bp_ctl_free                 (BpCtl               *ctl);

char          *bp_ctl_command_title        (const BpCtlCommand  *command);
gboolean       bp_ctl_parse_command        (BpCtl               *ctl,
                                            const BpCtlCommand  *command,
                                            const GOptionEntry  *entries,
                                            char               **argv,
                                            GStrv               *positional,
                                            GStrv               *rest,
                                            GError             **error);
int            bp_ctl_report_error         (BpCtl               *ctl,
                                            const BpCtlCommand  *command,
                                            const GError        *error);
void           bp_ctl_set_usage_error      (GError             **error,
                                            const char          *format,
                                            ...) G_GNUC_PRINTF (2, 3);
gboolean       bp_ctl_check_n_args         (GStrv                args,
                                            guint                min,
                                            guint                max,
                                            GError             **error);
gboolean       bp_ctl_parse_uint64         (const char          *what,
                                            const char          *text,
                                            guint64              max,
                                            guint64             *out,
                                            GError             **error);

GDBusConnection *bp_ctl_get_connection     (BpCtl               *ctl,
                                            GError             **error);
int            bp_ctl_control_timeout      (BpCtl               *ctl);
int            bp_ctl_data_timeout         (BpCtl               *ctl);
int            bp_ctl_timeout_with_grace   (BpCtl               *ctl);
GVariant      *bp_ctl_call                 (BpCtl               *ctl,
                                            const char          *path,
                                            const char          *interface,
                                            const char          *method,
                                            GVariant            *parameters,
                                            const char          *reply_type,
                                            GError             **error);
GVariant      *bp_ctl_call_full            (BpCtl               *ctl,
                                            const char          *path,
                                            const char          *interface,
                                            const char          *method,
                                            GVariant            *parameters,
                                            const char          *reply_type,
                                            GUnixFDList         *fd_list,
                                            int                  timeout_ms,
                                            GError             **error);
GVariant      *bp_ctl_get_all              (BpCtl               *ctl,
                                            const char          *path,
                                            const char          *interface,
                                            GError             **error);

char          *bp_ctl_get_daemon_owner     (BpCtl               *ctl,
                                            GError             **error);
GPtrArray     *bp_ctl_list_backends        (BpCtl               *ctl,
                                            GError             **error);
BpCtlBackend  *bp_ctl_find_backend         (BpCtl               *ctl,
                                            const char          *name,
                                            const char          *interface,
                                            GError             **error);
BpCtlBackend  *bp_ctl_find_backend_of_type (BpCtl               *ctl,
                                            const char          *type,
                                            const char          *interface,
                                            GError             **error);
gboolean       bp_ctl_backend_has_interface (const BpCtlBackend *backend,
                                             const char         *interface);
void           bp_ctl_backend_free         (BpCtlBackend        *backend);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpCtl, bp_ctl_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (BpCtlBackend, bp_ctl_backend_free)

G_END_DECLS
