/* test-ctl.c: backplanectl against backplaned and against a fake service
 *
 * Runs the built backplanectl as a child process and checks its output and
 * exit status:
 *  - against a real backplaned (system + echo backends) on a private bus;
 *  - against an empty bus and a bogus address (exit 3);
 *  - bad command lines (exit 2), checked with a bogus address so that a
 *    command which tried to connect before validating would exit 3;
 *  - against a fake org.backplane.Backplane1 in this process that exports
 *    Sql, Graph, Vectors, Shell, Process, Subscription and DeadLetters
 *    from the interface XML in data/ — GDBus checks every incoming call
 *    against those signatures — and records each call, so that the tests
 *    assert exactly what backplanectl sent (API.md shapes, options, fds).
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gunixfdlist.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "bp-test-daemon.h"

#define ROOT "/org/backplane/Backplane1"
#define BP_IFACE(x) "org.backplane.Backplane1." x
#define BOGUS_ADDRESS "unix:path=/nonexistent/backplane-test-bus"
#define RUN_TIMEOUT_MS 120000

static const char basic_config[] =
  "[backend sys]\n"
  "type=system\n"
  "[backend echo]\n"
  "type=echo\n";

/* Running backplanectl */

typedef struct
{
  int   status;
  char *out;
  char *err;
} CtlResult;

static void
ctl_result_free (CtlResult *result)
{
  g_free (result->out);
  g_free (result->err);
  g_free (result);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (CtlResult, ctl_result_free)

static char *
ctl_path (void)
{
  const char *root = g_getenv ("BACKPLANE_BUILD_ROOT");

  return g_build_filename (root != NULL ? root : BP_BUILD_ROOT, "core", "ctl", "backplanectl", NULL);
}

typedef struct
{
  gboolean  done;
  char     *out;
  char     *err;
  GError   *error;
} Communicate;

static void
communicated_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  Communicate *c = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &c->out, &c->err, &c->error);
  c->done = TRUE;
}

static gboolean
flag_set (gpointer data)
{
  return *(gboolean *) data;
}

static int
exit_status (GSubprocess *process)
{
  if (g_subprocess_get_if_exited (process))
    return g_subprocess_get_exit_status (process);
  return 128 + g_subprocess_get_term_sig (process);
}

/* For --verbose runs; one message a line keeps the TAP output valid. */
static void
log_output (const char * const *args,
            CtlResult          *result)
{
  g_autofree char *command = g_strjoinv (" ", (char **) args);
  g_auto(GStrv) out = g_strsplit (result->out, "\n", -1);
  g_auto(GStrv) err = g_strsplit (result->err, "\n", -1);

  g_test_message ("backplanectl %s → %d", command, result->status);
  for (guint i = 0; out[i] != NULL; i++)
    if (out[i][0] != '\0')
      g_test_message ("  stdout: %s", out[i]);
  for (guint i = 0; err[i] != NULL; i++)
    if (err[i][0] != '\0')
      g_test_message ("  stderr: %s", err[i]);
}

/* Runs backplanectl [--address ADDRESS] ARGS… while this process' main
 * context keeps serving (the fake service lives here). */
static CtlResult *
run_ctlv (const char         *address,
          const char * const *args)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) process = NULL;
  g_autoptr(GError) error = NULL;
  Communicate c = { 0 };
  CtlResult *result;

  g_ptr_array_add (argv, ctl_path ());
  if (address != NULL)
    {
      g_ptr_array_add (argv, g_strdup ("--address"));
      g_ptr_array_add (argv, g_strdup (address));
    }
  for (guint i = 0; args[i] != NULL; i++)
    g_ptr_array_add (argv, g_strdup (args[i]));
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  /* A critical in backplanectl is a bug: make it a crash the test sees. */
  g_subprocess_launcher_setenv (launcher, "G_DEBUG", "fatal-criticals", TRUE);
  process = g_subprocess_launcher_spawnv (launcher, (const char * const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (process, NULL, NULL, communicated_cb, &c);
  g_assert_true (bp_test_wait_until (flag_set, &c.done, RUN_TIMEOUT_MS));
  g_assert_no_error (c.error);
  g_assert_true (g_subprocess_wait (process, NULL, NULL));

  result = g_new0 (CtlResult, 1);
  result->status = exit_status (process);
  result->out = c.out;
  result->err = c.err;
  log_output (args, result);
  return result;
}

#define run_ctl(address, ...) run_ctlv ((address), (const char * const[]) { __VA_ARGS__, NULL })

static void
assert_contains (const char *haystack,
                 const char *needle)
{
  if (strstr (haystack, needle) == NULL)
    g_error ("“%s” not found in:\n%s", needle, haystack);
}

static void
assert_lacks (const char *haystack,
              const char *needle)
{
  if (strstr (haystack, needle) != NULL)
    g_error ("“%s” unexpectedly found in:\n%s", needle, haystack);
}

static JsonNode *
parse_json (const char *text)
{
  g_autoptr(JsonParser) parser = json_parser_new ();
  g_autoptr(GError) error = NULL;

  json_parser_load_from_data (parser, text, -1, &error);
  g_assert_no_error (error);
  g_assert_nonnull (json_parser_get_root (parser));
  return json_node_copy (json_parser_get_root (parser));
}

/* The lines of a table whose first cell is @first. */
static char *
table_line (const char *table,
            const char *first)
{
  g_auto(GStrv) lines = g_strsplit (table, "\n", -1);

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) cells = g_strsplit_set (g_strstrip (lines[i]), " ", -1);

      if (g_strcmp0 (cells[0], first) == 0)
        return g_strdup (lines[i]);
    }
  g_error ("no line starting with “%s” in:\n%s", first, table);
  return NULL;
}

/* Against a real backplaned */

static gboolean
backends_ready (gpointer data)
{
  BpTestDaemon *t = data;
  g_autofree char *sys = bp_test_daemon_backend_state (t, "sys", NULL);
  g_autofree char *echo = bp_test_daemon_backend_state (t, "echo", NULL);

  return g_str_equal (sys, "ready") && g_str_equal (echo, "ready");
}

static BpTestDaemon *
start_daemon (void)
{
  BpTestDaemon *t = bp_test_daemon_new (basic_config);

  g_assert_true (bp_test_wait_until (backends_ready, t, 20000));
  return t;
}

static void
test_daemon_status (void)
{
  g_autoptr(BpTestDaemon) t = start_daemon ();
  g_autoptr(CtlResult) r = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *sys = NULL;
  JsonObject *object;
  JsonArray *backends;

  r = run_ctl (t->address, "status");
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->out, "backplaned " PACKAGE_VERSION ", D-Bus API version 1");
  assert_contains (r->out, "Main loop lag: p50 ");
  sys = table_line (r->out, "sys");
  assert_contains (sys, "system");
  assert_contains (sys, "ready");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "status", "--json");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  object = json_node_get_object (root);
  g_assert_cmpstr (json_object_get_string_member (object, "daemon-version"), ==, PACKAGE_VERSION);
  g_assert_cmpint (json_object_get_int_member (object, "api-version"), ==, 1);
  g_assert_true (json_object_has_member (json_object_get_object_member (object, "loop-lag"), "p99-us"));
  backends = json_object_get_array_member (object, "backends");
  /* Configuration order. */
  g_assert_cmpuint (json_array_get_length (backends), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (backends, 0), "name"), ==, "sys");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (backends, 0), "type"), ==, "system");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (backends, 1), "name"), ==, "echo");
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (backends, 1), "state"), ==, "ready");
  g_clear_pointer (&r, ctl_result_free);

  /* Without --address: the session bus (bp_test_bus_up() set it for children). */
  r = run_ctl (NULL, "--json", "status");
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->out, "\"daemon-version\": \"" PACKAGE_VERSION "\"");
}

static void
test_daemon_backends_plugins (void)
{
  g_autoptr(BpTestDaemon) t = start_daemon ();
  g_autoptr(CtlResult) r = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *line = NULL;
  JsonArray *array;
  JsonObject *sys, *plugins;

  r = run_ctl (t->address, "backends");
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->out, "BACKEND");
  line = table_line (r->out, "sys");
  assert_contains (line, "System");
  assert_contains (line, "closed");
  g_clear_pointer (&line, g_free);
  line = table_line (r->out, "echo");
  assert_contains (line, "Echo");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "backends", "--json");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  array = json_node_get_array (root);
  g_assert_cmpuint (json_array_get_length (array), ==, 2);
  sys = json_array_get_object_element (array, 0);
  g_assert_cmpstr (json_object_get_string_member (sys, "path"), ==, ROOT "/backend/sys");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (sys, "breaker"), "state"), ==, "closed");
  g_assert_true (json_object_has_member (json_object_get_object_member (sys, "latency"), "p99-us"));
  g_clear_pointer (&root, json_node_unref);
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "plugins");
  g_assert_cmpint (r->status, ==, 0);
  g_clear_pointer (&line, g_free);
  line = table_line (r->out, "system");
  assert_contains (line, "yes");
  g_clear_pointer (&line, g_free);
  line = table_line (r->out, "echo");
  assert_contains (line, "yes");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "--json", "plugins");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  plugins = json_node_get_object (root);
  g_assert_true (json_object_get_boolean_member (json_object_get_object_member (plugins, "system"), "loaded"));
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (plugins, "echo"), "type"), ==, "echo");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "breakers");
  g_assert_cmpint (r->status, ==, 0);
  g_clear_pointer (&line, g_free);
  line = table_line (r->out, "echo");
  assert_contains (line, "closed");
  g_clear_pointer (&r, ctl_result_free);
  g_clear_pointer (&root, json_node_unref);

  r = run_ctl (t->address, "breakers", "--json");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  array = json_node_get_array (root);
  g_assert_cmpuint (json_array_get_length (array), ==, 2);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (array, 1), "backend"), ==, "echo");
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (json_array_get_object_element (array, 1), "breaker"), "state"),
                   ==, "closed");
  g_assert_true (json_object_has_member (json_array_get_object_element (array, 1), "pool"));
}

static void
test_daemon_ping_health (void)
{
  g_autoptr(BpTestDaemon) t = start_daemon ();
  g_autoptr(CtlResult) r = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonObject *object;

  r = run_ctl (t->address, "ping", "sys");
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->out, "sys: ping ok in ");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "ping", "echo", "--json");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  object = json_node_get_object (root);
  g_assert_true (json_object_get_boolean_member (object, "ok"));
  g_assert_cmpstr (json_object_get_string_member (object, "backend"), ==, "echo");
  g_assert_cmpint (json_object_get_int_member (object, "round-trip-us"), >, 0);
  g_clear_pointer (&root, json_node_unref);
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "health", "sys");
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->out, "sys: healthy: ");
  assert_contains (r->out, "/proc");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "--json", "health", "sys");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  object = json_node_get_object (root);
  g_assert_true (json_object_get_boolean_member (object, "healthy"));
  assert_contains (json_object_get_string_member (object, "detail"), "/proc");
}

static void
test_daemon_unknown_backend (void)
{
  g_autoptr(BpTestDaemon) t = start_daemon ();
  const char *const cases[][4] = {
    { "ping", "nope", NULL },
    { "health", "nope", NULL },
    { "sql", "nope", "SELECT 1" },
    { "cypher", "nope", "RETURN 1" },
    { "vectors", "nope", "collections" },
    { "run", "nope", "true" },
    { "listen", "nope", "jobs" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(CtlResult) r = run_ctlv (t->address, cases[i]);

      g_assert_cmpint (r->status, ==, 4);
      assert_contains (r->err, "no backend named “nope”");
      g_assert_cmpstr (r->out, ==, "");
    }

  /* A backend of the wrong type: it has no such interface. */
  {
    g_autoptr(CtlResult) r = run_ctl (t->address, "sql", "echo", "SELECT 1");

    g_assert_cmpint (r->status, ==, 4);
    assert_contains (r->err, "backend “echo” is of type echo and has no Sql interface");
  }
  {
    g_autoptr(CtlResult) r = run_ctl (t->address, "system", "status", "--backend", "echo");

    g_assert_cmpint (r->status, ==, 4);
    assert_contains (r->err, "has no System interface");
  }
}

static void
test_daemon_system (void)
{
  g_autoptr(BpTestDaemon) t = start_daemon ();
  g_autoptr(CtlResult) r = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *pid = g_strdup_printf ("%u", t->pid);
  JsonArray *array;
  gboolean found = FALSE;

  r = run_ctl (t->address, "system", "processes", "--limit", "3", "--json");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  array = json_node_get_array (root);
  g_assert_cmpuint (json_array_get_length (array), >=, 1);
  g_assert_cmpuint (json_array_get_length (array), <=, 3);
  /* The default order is by pid. */
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *p = json_array_get_object_element (array, i);

      g_assert_cmpint (json_object_get_int_member (p, "pid"), >, 0);
      g_assert_true (json_object_has_member (p, "cpu-percent"));
      if (i > 0)
        g_assert_cmpint (json_object_get_int_member (p, "pid"), >,
                         json_object_get_int_member (json_array_get_object_element (array, i - 1), "pid"));
    }
  g_clear_pointer (&root, json_node_unref);
  g_clear_pointer (&r, ctl_result_free);

  /* backplaned itself is among the processes, under its name. */
  r = run_ctl (t->address, "system", "processes", "--sort", "rss", "--limit", "10000", "--json");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  array = json_node_get_array (root);
  for (guint i = 0; i < json_array_get_length (array); i++)
    {
      JsonObject *p = json_array_get_object_element (array, i);

      if (json_object_get_int_member (p, "pid") == t->pid)
        {
          g_assert_cmpstr (json_object_get_string_member (p, "name"), ==, "backplaned");
          found = TRUE;
        }
    }
  g_assert_true (found);
  g_clear_pointer (&root, json_node_unref);
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "system", "processes", "--sort", "pid", "--limit", "10000");
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->out, "PID");
  {
    g_autofree char *line = table_line (r->out, pid);

    assert_contains (line, "backplaned");
  }
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "system", "status", "--json");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (root), "daemon-pid"), ==, t->pid);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (root), "n-cpus"), >=, 1);
  g_clear_pointer (&root, json_node_unref);
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "system", "status", "--backend", "sys");
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->out, "Daemon PID:");
  assert_contains (r->out, pid);
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "system", "disks", "--json");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
  g_clear_pointer (&r, ctl_result_free);

  /* Bounds the daemon enforces come back as its named error. */
  r = run_ctl (t->address, "system", "processes", "--limit", "20000");
  g_assert_cmpint (r->status, ==, 1);
  assert_contains (r->err, "InvalidArgument: limit");
}

static void
test_daemon_metrics_reload (void)
{
  g_autoptr(BpTestDaemon) t = start_daemon ();
  g_autoptr(CtlResult) r = NULL;
  g_autoptr(JsonNode) root = NULL;

  r = run_ctl (t->address, "metrics");
  g_assert_cmpint (r->status, ==, 0);
  g_assert_true (g_str_has_suffix (r->out, "# EOF\n"));
  assert_contains (r->out, "backplane_backend_state{backend=\"sys\",state=\"ready\"} 1\n");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "metrics", "--json");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  g_assert_true (g_str_has_suffix (json_object_get_string_member (json_node_get_object (root), "openmetrics"), "# EOF\n"));
  g_clear_pointer (&r, ctl_result_free);

  bp_test_daemon_write_config (t, "[backend sys]\ntype=system\n");
  r = run_ctl (t->address, "reload");
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->out, "Configuration reloaded.");
  g_clear_pointer (&r, ctl_result_free);
  r = run_ctl (t->address, "ping", "echo");
  g_assert_cmpint (r->status, ==, 4);
  g_clear_pointer (&r, ctl_result_free);

  /* A broken file: the daemon's InvalidArgument, by its short name. */
  bp_test_daemon_write_config (t, "[backend sys\n");
  r = run_ctl (t->address, "reload");
  g_assert_cmpint (r->status, ==, 1);
  assert_contains (r->err, "backplanectl: InvalidArgument: ");
  g_assert_cmpstr (r->out, ==, "");
}

static void
test_daemon_dead_letters (void)
{
  g_autoptr(BpTestDaemon) t = start_daemon ();
  g_autoptr(CtlResult) r = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GVariant) props = NULL;
  g_autoptr(GError) error = NULL;

  props = bp_test_daemon_call (t, ROOT "/DeadLetters", "org.freedesktop.DBus.Properties.GetAll",
                               g_variant_new ("(s)", BP_IFACE ("DeadLetters")), "(a{sv})", &error);
  if (props == NULL)
    {
      g_test_skip ("this backplaned has no DeadLetters object yet (the fake-service test covers dlq)");
      return;
    }
  r = run_ctl (t->address, "dlq", "list", "--json");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  g_assert_true (JSON_NODE_HOLDS_ARRAY (root));
  g_assert_cmpuint (json_array_get_length (json_node_get_array (root)), ==, 0);
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "dlq", "show", "424242");
  g_assert_cmpint (r->status, ==, 1);
  assert_contains (r->err, "NotFound: ");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (t->address, "dlq", "purge");
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->out, "0 entries removed.");
}

static void
test_no_daemon (void)
{
  BpTestBus *bus = NULL;
  const char *const commands[][4] = {
    { "status", NULL },
    { "ping", "sys", NULL },
    { "metrics", NULL },
    { "dlq", "list", NULL },
    { "sql", "pg", "SELECT 1", NULL },
  };

  bus = bp_test_bus_up ();
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autoptr(CtlResult) r = run_ctlv (bp_test_bus_get_address (bus), commands[i]);

      g_assert_cmpint (r->status, ==, 3);
      assert_contains (r->err, "backplaned is not running on this bus");
    }
  bp_test_bus_down (bus);

  {
    g_autoptr(CtlResult) r = run_ctl (BOGUS_ADDRESS, "status");

    g_assert_cmpint (r->status, ==, 3);
    assert_contains (r->err, "cannot connect to the bus");
  }
}

/* Bad command lines: exit 2 and a usage line, before any connection. */
static void
test_usage (void)
{
  const struct
  {
    const char *args[10];
    const char *needle;
  } cases[] = {
    { { "frobnicate" }, "unknown command “frobnicate”" },
    { { "--bogus-option", "status" }, "Unknown option --bogus-option" },
    { { "--timeout-ms", "-5", "status" }, "must not be negative" },
    { { "status", "extra" }, "unexpected argument “extra”" },
    { { "ping" }, "Usage: backplanectl ping NAME" },
    { { "health", "a", "b" }, "unexpected argument “b”" },
    { { "system" }, "missing or unknown sub-command" },
    { { "system", "frob" }, "system processes" },
    { { "system", "processes", "--limit", "0" }, "--limit must be at least 1" },
    { { "system", "processes", "--limit", "many" }, "is not a number" },
    { { "system", "processes", "--sort", "size" }, "“size” is not pid, rss or cpu" },
    { { "system", "disks", "--sort", "rss" }, "Unknown option --sort" },
    { { "sql" }, "Usage: backplanectl sql NAME SQL" },
    { { "sql", "pg" }, "missing arguments" },
    { { "sql", "pg", "SELECT $1", "i:12x" }, "“i:12x” is not an integer" },
    { { "sql", "pg", "SELECT $1", "b:maybe" }, "is not a boolean" },
    { { "sql", "pg", "SELECT $1", "n:x" }, "takes no value" },
    { { "sql", "pg", "SELECT $1", "j:{" }, "is not JSON" },
    { { "sql", "pg", "SELECT 1", "--to-file", "out.txt" }, "must end in .csv or .jsonl" },
    { { "sql", "pg", "SELECT 1", "--to-file", "o.csv", "--max-rows", "5" }, "cannot be used with --to-file" },
    { { "listen", "pg" }, "Usage: backplanectl listen NAME CHANNEL" },
    { { "cypher", "g" }, "Usage: backplanectl cypher NAME CYPHER" },
    { { "cypher", "g", "RETURN $x", "--param", "x" }, "“x” is not KEY=VALUE" },
    { { "cypher", "g", "RETURN $x", "--param", "x=1", "--param", "x=2" }, "“x” is given twice" },
    { { "cypher", "g", "RETURN 1", "--to-file", "o.csv" }, "must end in .jsonl" },
    { { "vectors", "v" }, "missing or unknown sub-command" },
    { { "vectors", "v", "create", "c", "--size", "3" }, "--size and --distance are required" },
    { { "vectors", "v", "create", "c", "--size", "3", "--distance", "Hamming" }, "is not Cosine, Dot, Euclid or Manhattan" },
    { { "vectors", "v", "create", "c", "--size", "0", "--distance", "Dot" }, "--size must be at least 1" },
    { { "vectors", "v", "query", "c", "0.1,x" }, "“x” is not a finite number" },
    { { "vectors", "v", "query", "c", "0.1", "--filter", "[1" }, "--filter is not JSON" },
    { { "vectors", "v", "query", "c", "0.1", "--filter", "[1]" }, "must be a JSON object" },
    { { "vectors", "v", "scroll", "c" }, "--to-file is required" },
    { { "vectors", "v", "upsert", "c" }, "Usage: backplanectl vectors NAME upsert" },
    { { "run" }, "missing the backend name" },
    { { "run", "sh" }, "missing the program to run" },
    { { "run", "sh", "--env", "NOEQUALS", "--", "env" }, "“NOEQUALS” is not NAME=VALUE" },
    { { "run", "sh", "--timeout-ms", "soon", "--", "true" }, "is not a number" },
    { { "dlq" }, "missing or unknown sub-command" },
    { { "dlq", "show" }, "Usage: backplanectl dlq show ID" },
    { { "dlq", "show", "abc" }, "“abc” is not a number" },
    { { "dlq", "replay", "-1" }, "Unknown option -1" },
    { { "dlq", "list", "--limit", "1001" }, "is not a number from 0 to 1000" },
    { { "dlq", "purge", "a", "b" }, "unexpected argument “b”" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(CtlResult) r = run_ctlv (BOGUS_ADDRESS, cases[i].args);

      if (r->status != 2)
        g_error ("case %u (%s): exit status %d, not 2; stderr: %s", i, cases[i].args[0], r->status, r->err);
      assert_contains (r->err, cases[i].needle);
      assert_contains (r->err, "Usage:");
      g_assert_cmpstr (r->out, ==, "");
    }

  /* Without any command: the full help, on stderr. */
  {
    g_autoptr(CtlResult) r = run_ctlv (BOGUS_ADDRESS, (const char *const[]) { NULL });

    g_assert_cmpint (r->status, ==, 2);
    assert_contains (r->err, "Commands:");
  }
}

static void
test_help_version (void)
{
  g_autoptr(CtlResult) r = run_ctl (NULL, "--help");
  const char *commands[] = {
    "status", "plugins", "backends", "ping NAME", "health NAME", "breakers", "metrics", "reload",
    "system status", "system disks", "system processes [--sort rss|cpu|pid] [--limit N]",
    "dlq list [--backend NAME] [--poisoned] [--offset N] [--limit N]", "dlq show ID", "dlq replay ID",
    "dlq replay-all [BACKEND]", "dlq delete ID", "dlq purge [BACKEND]",
    "run NAME [--cwd DIR] [--env NAME=VALUE]…", "sql NAME SQL [PARAM…]", "listen NAME CHANNEL",
    "cypher NAME CYPHER [--param KEY=VALUE]… [--database DB]",
    "vectors NAME collections", "vectors NAME create COLLECTION --size N --distance Cosine|Dot|Euclid|Manhattan",
    "vectors NAME upsert COLLECTION FILE.jsonl", "vectors NAME query COLLECTION V1,V2,… [--limit N] [--filter JSON]",
    "vectors NAME count COLLECTION", "vectors NAME scroll COLLECTION --to-file FILE",
    "--address", "--json", "--timeout-ms", "--version",
  };

  g_assert_cmpint (r->status, ==, 0);
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autofree char *line = g_strdup_printf ("  %s", commands[i]);

      assert_contains (r->out, line);
    }
  assert_contains (r->out, "\nExit status:");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (NULL, "sql", "--help");
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->out, "i:42");
  assert_contains (r->out, "--to-file");
  assert_contains (r->out, "--json");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (NULL, "vectors", "--help");
  g_assert_cmpint (r->status, ==, 0);
  assert_contains (r->out, "vectors NAME scroll");
  assert_lacks (r->out, "dlq");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (NULL, "--version");
  g_assert_cmpint (r->status, ==, 0);
  g_assert_cmpstr (r->out, ==, "backplanectl " PACKAGE_VERSION "\n");
}

/* A fake org.backplane.Backplane1 in this process */

typedef struct
{
  char        *path;
  char        *interface;
  char        *method;
  GVariant    *parameters;
  int          n_fds;        /* the fds themselves are not kept: that would hold pipes open */
} FakeCall;

static void
fake_call_free (FakeCall *call)
{
  g_free (call->path);
  g_free (call->interface);
  g_free (call->method);
  g_variant_unref (call->parameters);
  g_free (call);
}

typedef struct
{
  BpTestBus             *bus;
  char                  *address;
  GDBusConnection       *connection;
  GHashTable            *nodes;          /* file name → GDBusNodeInfo */
  GArray                *registrations;
  GPtrArray             *calls;          /* FakeCall */
  GDBusMethodInvocation *held_wait;      /* (nullable): Process.Wait of "sleep" */
  gboolean               hold_wait;
  gboolean               process_exported;
  int                    killed_with;
  guint                  events_sent;
  guint                  owner_id;
  gboolean               owned;
} Fake;

typedef struct
{
  const char *name;
  const char *type;
  const char *interface;  /* (nullable) */
  const char *state;
  const char *reason;
} FakeBackend;

static const FakeBackend fake_backends[] = {
  { "pg", "postgres", BP_IFACE ("Sql"), "ready", "" },
  { "graph", "bolt", BP_IFACE ("Graph"), "ready", "" },
  { "vec", "qdrant", BP_IFACE ("Vectors"), "ready", "" },
  { "sh", "shell", BP_IFACE ("Shell"), "ready", "" },
  { "down", "postgres", NULL, "unavailable", "connection refused" },
};

#define PROCESS_PATH ROOT "/client/test/process1"
#define SUBSCRIPTION_PATH ROOT "/client/test/subscription1"

static const char object_manager_xml[] =
  "<node><interface name='org.freedesktop.DBus.ObjectManager'>"
  "<method name='GetManagedObjects'><arg name='objects' type='a{oa{sa{sv}}}' direction='out'/></method>"
  "</interface></node>";

static GDBusInterfaceInfo *
fake_interface (Fake       *fake,
                const char *name)
{
  GDBusNodeInfo *node = g_hash_table_lookup (fake->nodes, name);

  if (node == NULL)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *contents = NULL;

      if (g_str_equal (name, "org.freedesktop.DBus.ObjectManager"))
        contents = g_strdup (object_manager_xml);
      else
        {
          const char *root = g_getenv ("BACKPLANE_SOURCE_ROOT");
          g_autofree char *file = g_strconcat (name, ".xml", NULL);
          g_autofree char *path = g_build_filename (root != NULL ? root : BP_SOURCE_ROOT, "data", file, NULL);

          g_file_get_contents (path, &contents, NULL, &error);
          g_assert_no_error (error);
        }
      node = g_dbus_node_info_new_for_xml (contents, &error);
      g_assert_no_error (error);
      g_hash_table_insert (fake->nodes, g_strdup (name), node);
    }
  return g_dbus_node_info_lookup_interface (node, name);
}

static const FakeBackend *
fake_backend_for_path (const char *path)
{
  for (guint i = 0; i < G_N_ELEMENTS (fake_backends); i++)
    {
      g_autofree char *p = g_strconcat (ROOT "/backend/", fake_backends[i].name, NULL);

      if (g_str_equal (p, path))
        return &fake_backends[i];
    }
  return NULL;
}

static GVariant *
backend_property (const FakeBackend *b,
                  const char        *name)
{
  if (g_str_equal (name, "Name"))
    return g_variant_new_string (b->name);
  if (g_str_equal (name, "Type"))
    return g_variant_new_string (b->type);
  if (g_str_equal (name, "State"))
    return g_variant_new_string (b->state);
  if (g_str_equal (name, "StateReason"))
    return g_variant_new_string (b->reason);
  if (g_str_equal (name, "Breaker"))
    return g_variant_new_parsed ("{'state': <'open'>, 'error-rate': <62.5>, 'successes': <uint64 3>, "
                                 "'failures': <uint64 5>, 'timeouts': <uint64 1>, 'rejected': <uint64 9>, "
                                 "'retry-after-ms': <int64 1500>}");
  if (g_str_equal (name, "Pool"))
    return g_variant_new_parsed ("{'size': <uint32 4>, 'in-use': <uint32 3>, 'idle': <uint32 1>, "
                                 "'waiting': <uint32 2>, 'max': <uint32 8>}");
  if (g_str_equal (name, "Latency"))
    return g_variant_new_parsed ("{'count': <uint64 8>, 'errors': <uint64 5>, 'p99-us': <int64 2048>}");
  return NULL;
}

static GVariant *
backend_properties (const FakeBackend *b)
{
  const char *names[] = { "Name", "Type", "State", "StateReason", "Breaker", "Pool", "Latency" };
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE_VARDICT);
  for (guint i = 0; i < G_N_ELEMENTS (names); i++)
    g_variant_builder_add (&builder, "{sv}", names[i], backend_property (b, names[i]));
  return g_variant_builder_end (&builder);
}

static GVariant *
fake_get_property (GDBusConnection *connection,
                   const char      *sender,
                   const char      *path,
                   const char      *interface,
                   const char      *property,
                   GError         **error,
                   gpointer         user_data)
{
  if (g_str_equal (interface, BP_IFACE ("Backend")))
    return backend_property (fake_backend_for_path (path), property);
  if (g_str_equal (interface, BP_IFACE ("Manager")))
    {
      if (g_str_equal (property, "Version"))
        return g_variant_new_uint32 (1);
      if (g_str_equal (property, "DaemonVersion"))
        return g_variant_new_string ("9.9.9-fake");
      if (g_str_equal (property, "Backends"))
        {
          GVariantBuilder builder;

          g_variant_builder_init (&builder, G_VARIANT_TYPE_OBJECT_PATH_ARRAY);
          for (guint i = 0; i < G_N_ELEMENTS (fake_backends); i++)
            {
              g_autofree char *p = g_strconcat (ROOT "/backend/", fake_backends[i].name, NULL);

              g_variant_builder_add (&builder, "o", p);
            }
          return g_variant_builder_end (&builder);
        }
      if (g_str_equal (property, "Plugins"))
        return g_variant_new_parsed ("@a{sa{sv}} {}");
      if (g_str_equal (property, "LoopLag"))
        return g_variant_new_parsed ("{'p50-us': <int64 10>, 'p99-us': <int64 20>, 'max-us': <int64 30>, "
                                     "'stalls-over-16ms': <uint64 0>}");
    }
  if (g_str_equal (interface, BP_IFACE ("DeadLetters")))
    return g_variant_new_uint64 (g_str_equal (property, "Count") ? 1 : 0);
  if (g_str_equal (interface, BP_IFACE ("Subscription")))
    return g_variant_new_uint64 (0);
  if (g_str_equal (interface, BP_IFACE ("Process")))
    {
      if (g_str_equal (property, "Pid"))
        return g_variant_new_uint32 (4242);
      if (g_str_equal (property, "Argv"))
        return g_variant_new_strv (NULL, 0);
      if (g_str_equal (property, "State"))
        return g_variant_new_string ("running");
      return g_variant_new_int32 (g_str_equal (property, "ExitCode") ? -1 : 0);
    }
  g_set_error (error, G_DBUS_ERROR, G_DBUS_ERROR_UNKNOWN_PROPERTY, "no property %s", property);
  return NULL;
}

static void fake_method_call (GDBusConnection *, const char *, const char *, const char *, const char *,
                              GVariant *, GDBusMethodInvocation *, gpointer);

static const GDBusInterfaceVTable fake_vtable = { fake_method_call, fake_get_property, NULL, { NULL } };

static void
fake_register (Fake       *fake,
               const char *path,
               const char *interface)
{
  g_autoptr(GError) error = NULL;
  guint id = g_dbus_connection_register_object (fake->connection, path, fake_interface (fake, interface),
                                                &fake_vtable, fake, NULL, &error);

  g_assert_no_error (error);
  g_array_append_val (fake->registrations, id);
}

static void
write_all (int         fd,
           const char *text)
{
  gsize len = strlen (text);

  while (len > 0)
    {
      gssize n = write (fd, text, len);

      g_assert_cmpint (n, >, 0);
      text += n;
      len -= n;
    }
}

static int
fake_take_fd (GDBusMethodInvocation *invocation,
              gint32                 handle)
{
  GUnixFDList *fds = g_dbus_message_get_unix_fd_list (g_dbus_method_invocation_get_message (invocation));
  g_autoptr(GError) error = NULL;
  int fd;

  g_assert_nonnull (fds);
  fd = g_unix_fd_list_get (fds, handle, &error);
  g_assert_no_error (error);
  return fd;
}

static void
return_error (GDBusMethodInvocation *invocation,
              const char            *name,
              const char            *message)
{
  g_autofree char *full = g_strconcat (BP_IFACE ("Error."), name, NULL);

  g_dbus_method_invocation_return_dbus_error (invocation, full, message);
}

static void
handle_get_managed_objects (Fake                  *fake,
                            GDBusMethodInvocation *invocation,
                            GVariant              *parameters)
{
  GVariantBuilder objects;

  g_variant_builder_init (&objects, G_VARIANT_TYPE ("a{oa{sa{sv}}}"));
  for (guint i = 0; i < G_N_ELEMENTS (fake_backends); i++)
    {
      g_autofree char *path = g_strconcat (ROOT "/backend/", fake_backends[i].name, NULL);
      GVariantBuilder ifaces;

      g_variant_builder_init (&ifaces, G_VARIANT_TYPE ("a{sa{sv}}"));
      g_variant_builder_add (&ifaces, "{s@a{sv}}", BP_IFACE ("Backend"), backend_properties (&fake_backends[i]));
      if (fake_backends[i].interface != NULL)
        g_variant_builder_add (&ifaces, "{s@a{sv}}", fake_backends[i].interface,
                               g_variant_new_array (G_VARIANT_TYPE ("{sv}"), NULL, 0));
      g_variant_builder_add (&objects, "{oa{sa{sv}}}", path, &ifaces);
    }
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(a{oa{sa{sv}}})", &objects));
}

static void
handle_sql_query (Fake                  *fake,
                  GDBusMethodInvocation *invocation,
                  GVariant              *parameters)
{
  const char *sql;
  GVariantBuilder row;
  GVariantBuilder rows;
  guint8 bytes[] = { 'h', 'i' };

  g_variant_get (parameters, "(&s@av@a{sv})", &sql, NULL, NULL);
  if (g_str_equal (sql, "FAIL"))
    {
      return_error (invocation, "Backend", "SQLSTATE 42601: syntax error at or near \"FAIL\"");
      return;
    }
  if (g_str_equal (sql, "OPEN"))
    {
      return_error (invocation, "CircuitOpen", "circuit open; retry-after-ms=500");
      return;
    }
  g_variant_builder_init (&rows, G_VARIANT_TYPE ("aa{sv}"));
  g_variant_builder_init (&row, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&row, "{sv}", "id", g_variant_new_int32 (1));
  g_variant_builder_add (&row, "{sv}", "name", g_variant_new_string ("alpha"));
  /* A value with a terminal escape sequence: it must never reach stdout raw. */
  g_variant_builder_add (&row, "{sv}", "name#2", g_variant_new_string ("red\x1b[31mtext"));
  g_variant_builder_add (&row, "{sv}", "data",
                         g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, bytes, sizeof bytes, 1));
  g_variant_builder_add (&row, "{sv}", "doc", g_variant_new_string ("{\"k\": [1, 2]}"));
  g_variant_builder_add (&rows, "a{sv}", &row);
  /* The second row: every column but id is NULL, i.e. absent. */
  g_variant_builder_init (&row, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&row, "{sv}", "id", g_variant_new_int32 (22));
  g_variant_builder_add (&rows, "a{sv}", &row);
  g_dbus_method_invocation_return_value (invocation,
                                         g_variant_new ("(@a(ss)aa{sv})",
                                                        g_variant_new_parsed ("[('id', 'int4'), ('name', 'text'), "
                                                                              "('name', 'text'), ('data', 'bytea'), ('doc', 'jsonb')]"),
                                                        &rows));
}

typedef struct
{
  int   fd;
  char *text;
} DelayedWrite;

/* After the reply, as the daemon does: the rows follow the header. */
static gboolean
delayed_write_cb (gpointer user_data)
{
  DelayedWrite *w = user_data;

  write_all (w->fd, w->text);
  close (w->fd);
  g_free (w->text);
  g_free (w);
  return G_SOURCE_REMOVE;
}

static void
write_after_reply (int         fd,
                   const char *text)
{
  DelayedWrite *w = g_new0 (DelayedWrite, 1);

  w->fd = fd;
  w->text = g_strdup (text);
  g_idle_add (delayed_write_cb, w);
}

static void
handle_sql_query_to_fd (Fake                  *fake,
                        GDBusMethodInvocation *invocation,
                        GVariant              *parameters)
{
  g_autoptr(GVariant) options = NULL;
  const char *sql;
  const char *format = "jsonl";
  gint32 handle;
  int fd;

  g_variant_get (parameters, "(&s@avh@a{sv})", &sql, NULL, &handle, &options);
  g_variant_lookup (options, "format", "&s", &format);
  fd = fake_take_fd (invocation, handle);
  if (g_str_equal (sql, "SLOW"))
    {
      /* Refused before the header: nothing was written. */
      close (fd);
      return_error (invocation, "Timeout", "statement timeout after 300 ms");
      return;
    }
  g_dbus_method_invocation_return_value (invocation, g_variant_new_parsed ("([('id', 'int4')],)"));
  if (g_str_equal (sql, "CUT"))
    write_after_reply (fd, "");
  else if (g_str_equal (format, "csv"))
    write_after_reply (fd, "id\n1\n22\n");
  else if (g_str_equal (sql, "BROKEN"))
    write_after_reply (fd, "{\"columns\":[{\"name\":\"id\",\"key\":\"id\",\"type\":\"int4\"}]}\n{\"id\":1}\n"
                           "{\"error\":{\"name\":\"org.backplane.Backplane1.Error.Timeout\","
                           "\"message\":\"statement timeout after 100 ms\"}}\n");
  else
    write_after_reply (fd, "{\"columns\":[{\"name\":\"id\",\"key\":\"id\",\"type\":\"int4\"}]}\n{\"id\":1}\n"
                           "{\"id\":22}\n{\"end\":{\"rows\":2}}\n");
}

typedef struct
{
  Fake *fake;
  char *destination;
} EmitData;

static gboolean
emit_events_cb (gpointer user_data)
{
  EmitData *e = user_data;
  g_autoptr(GError) error = NULL;

  g_dbus_connection_emit_signal (e->fake->connection, e->destination, SUBSCRIPTION_PATH, BP_IFACE ("Subscription"),
                                 "Events",
                                 g_variant_new_parsed ("([{'channel': <'jobs'>, 'payload': <'hello'>, 'pid': <int32 42>},"
                                                       "  {'channel': <'jobs'>, 'payload': <'world'>, 'pid': <int32 42>}],)"),
                                 &error);
  g_assert_no_error (error);
  e->fake->events_sent++;
  g_free (e->destination);
  g_free (e);
  return G_SOURCE_REMOVE;
}

static void
handle_sql_listen (Fake                  *fake,
                   GDBusMethodInvocation *invocation,
                   GVariant              *parameters)
{
  EmitData *e = g_new0 (EmitData, 1);

  fake_register (fake, SUBSCRIPTION_PATH, BP_IFACE ("Subscription"));
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(o)", SUBSCRIPTION_PATH));
  /* Unicast to the caller, after the reply. */
  e->fake = fake;
  e->destination = g_strdup (g_dbus_method_invocation_get_sender (invocation));
  g_idle_add (emit_events_cb, e);
}

static void
handle_return_nothing (Fake                  *fake,
                       GDBusMethodInvocation *invocation,
                       GVariant              *parameters)
{
  g_dbus_method_invocation_return_value (invocation, NULL);
}

static void
handle_graph_run (Fake                  *fake,
                  GDBusMethodInvocation *invocation,
                  GVariant              *parameters)
{
  const char *cypher;

  g_variant_get (parameters, "(&s@a{sv}@a{sv})", &cypher, NULL, NULL);
  if (g_str_equal (cypher, "FAIL"))
    {
      return_error (invocation, "Backend", "Neo.ClientError.Statement.SyntaxError: Invalid input 'F'");
      return;
    }
  g_dbus_method_invocation_return_value (invocation, g_variant_new_parsed (
    "(['n', 'age'],"
    " [{'n': <{'id': <int64 1>, 'labels': <['Person']>, 'properties': <{'name': <'Ada'>}>}>, 'age': <int64 36>},"
    "  {'n': <{'id': <int64 2>, 'labels': <['Person']>, 'properties': <@a{sv} {}>}>}],"
    " {'bookmark': <'bm:1'>, 'stats': <{'nodes-created': <int64 2>}>})"));
}

static void
handle_graph_run_to_fd (Fake                  *fake,
                        GDBusMethodInvocation *invocation,
                        GVariant              *parameters)
{
  gint32 handle;
  int fd;

  g_variant_get (parameters, "(&s@a{sv}h@a{sv})", NULL, NULL, &handle, NULL);
  fd = fake_take_fd (invocation, handle);
  g_dbus_method_invocation_return_value (invocation, g_variant_new_parsed ("(['n'],)"));
  write_after_reply (fd, "{\"columns\":[\"n\"]}\n{\"n\":1}\n{\"end\":{\"bookmark\":\"bm:2\"}}\n");
}

static void
handle_vectors_list (Fake                  *fake,
                     GDBusMethodInvocation *invocation,
                     GVariant              *parameters)
{
  g_dbus_method_invocation_return_value (invocation, g_variant_new_parsed ("(['alpha', 'beta'],)"));
}

static void
handle_vectors_upsert_from_fd (Fake                  *fake,
                               GDBusMethodInvocation *invocation,
                               GVariant              *parameters)
{
  g_autoptr(GString) text = g_string_new (NULL);
  g_auto(GStrv) lines = NULL;
  gint32 handle;
  guint64 points = 0;
  char buf[4096];
  gssize n;
  int fd;

  g_variant_get (parameters, "(&sh@a{sv})", NULL, &handle, NULL);
  fd = fake_take_fd (invocation, handle);
  /* A regular file: reading it here is quick (test code). */
  while ((n = read (fd, buf, sizeof buf)) > 0)
    g_string_append_len (text, buf, n);
  close (fd);
  lines = g_strsplit (text->str, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (*g_strstrip (lines[i]) != '\0')
      points++;
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(t)", points));
}

static void
handle_vectors_query (Fake                  *fake,
                      GDBusMethodInvocation *invocation,
                      GVariant              *parameters)
{
  g_dbus_method_invocation_return_value (invocation, g_variant_new_parsed (
    "([('7', 0.875, '{\"color\":\"red\"}'), ('5f0c2a1e-0000-4000-8000-000000000001', 0.5, 'null')],)"));
}

static void
handle_vectors_count (Fake                  *fake,
                      GDBusMethodInvocation *invocation,
                      GVariant              *parameters)
{
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(t)", (guint64) 42));
}

static void
handle_vectors_scroll_to_fd (Fake                  *fake,
                             GDBusMethodInvocation *invocation,
                             GVariant              *parameters)
{
  gint32 handle;
  int fd;

  g_variant_get (parameters, "(&sh@a{sv})", NULL, &handle, NULL);
  fd = fake_take_fd (invocation, handle);
  /* ScrollToFd replies at the end, after everything is written. */
  write_all (fd, "{\"collection\":\"alpha\"}\n{\"id\":7,\"payload\":{}}\n{\"end\":{\"points\":1}}\n");
  close (fd);
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(t)", (guint64) 1));
}

static void
handle_shell_spawn (Fake                  *fake,
                    GDBusMethodInvocation *invocation,
                    GVariant              *parameters)
{
  g_autoptr(GVariant) options = NULL;
  g_autofree const char **argv = NULL;
  gint32 handle;

  g_variant_get (parameters, "(^a&s@a{sv})", &argv, &options);
  /* The child would write to the caller's own stdout and stderr. */
  if (g_variant_lookup (options, "stdout", "h", &handle))
    {
      int fd = fake_take_fd (invocation, handle);

      write_all (fd, "hello from the child\n");
      close (fd);
    }
  if (g_variant_lookup (options, "stderr", "h", &handle))
    {
      int fd = fake_take_fd (invocation, handle);

      write_all (fd, "warning from the child\n");
      close (fd);
    }
  fake->hold_wait = g_str_equal (argv[0], "sleep");
  fake->killed_with = 0;
  if (!fake->process_exported)
    fake_register (fake, PROCESS_PATH, BP_IFACE ("Process"));
  fake->process_exported = TRUE;
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(o)", PROCESS_PATH));
}

static void
handle_process_wait (Fake                  *fake,
                     GDBusMethodInvocation *invocation,
                     GVariant              *parameters)
{
  if (fake->hold_wait)
    {
      fake->held_wait = g_object_ref (invocation);
      return;
    }
  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(ii)", 3, 0));
}

static void
handle_process_kill (Fake                  *fake,
                     GDBusMethodInvocation *invocation,
                     GVariant              *parameters)
{
  g_variant_get (parameters, "(i)", &fake->killed_with);
  g_dbus_method_invocation_return_value (invocation, NULL);
  if (fake->held_wait != NULL)
    {
      g_dbus_method_invocation_return_value (fake->held_wait, g_variant_new ("(ii)", -1, fake->killed_with));
      g_clear_object (&fake->held_wait);
    }
}

static void
handle_dlq_list (Fake                  *fake,
                 GDBusMethodInvocation *invocation,
                 GVariant              *parameters)
{
  g_dbus_method_invocation_return_value (invocation, g_variant_new_parsed (
    "([(uint64 7, 'pg', 'Sql.Execute', 'key-1', uint32 3, int64 1700000000000000, "
    "'SQLSTATE 08006: connection lost')],)"));
}

static void
handle_dlq_get (Fake                  *fake,
                GDBusMethodInvocation *invocation,
                GVariant              *parameters)
{
  guint64 id;

  g_variant_get (parameters, "(t)", &id);
  if (id != 7)
    {
      return_error (invocation, "NotFound", "no dead letter 8");
      return;
    }
  g_dbus_method_invocation_return_value (invocation, g_variant_new_parsed (
    "({'id': <uint64 7>, 'backend': <'pg'>, 'operation': <'Sql.Execute'>, 'attempts': <uint32 3>, "
    "'poisoned': <false>, 'payload': <'{\"sql\":\"INSERT INTO t VALUES ($1)\"}'>},)"));
}

static void
handle_dlq_count (Fake                  *fake,
                  GDBusMethodInvocation *invocation,
                  GVariant              *parameters)
{
  /* ReplayAll → 5 scheduled, Purge → 2 removed. */
  const char *method = g_dbus_method_invocation_get_method_name (invocation);

  g_dbus_method_invocation_return_value (invocation, g_variant_new ("(u)", g_str_equal (method, "ReplayAll") ? 5 : 2));
}

typedef void (*FakeHandler) (Fake *, GDBusMethodInvocation *, GVariant *);

static const struct
{
  const char  *method;
  FakeHandler  handler;
} fake_handlers[] = {
  { "ObjectManager.GetManagedObjects", handle_get_managed_objects },
  { "Manager.Reload", handle_return_nothing },
  { "Sql.Query", handle_sql_query },
  { "Sql.QueryToFd", handle_sql_query_to_fd },
  { "Sql.Listen", handle_sql_listen },
  { "Subscription.Close", handle_return_nothing },
  { "Graph.Run", handle_graph_run },
  { "Graph.RunToFd", handle_graph_run_to_fd },
  { "Vectors.ListCollections", handle_vectors_list },
  { "Vectors.CreateCollection", handle_return_nothing },
  { "Vectors.UpsertFromFd", handle_vectors_upsert_from_fd },
  { "Vectors.Query", handle_vectors_query },
  { "Vectors.Count", handle_vectors_count },
  { "Vectors.ScrollToFd", handle_vectors_scroll_to_fd },
  { "Shell.Spawn", handle_shell_spawn },
  { "Process.Wait", handle_process_wait },
  { "Process.Kill", handle_process_kill },
  { "Process.Close", handle_return_nothing },
  { "DeadLetters.List", handle_dlq_list },
  { "DeadLetters.Get", handle_dlq_get },
  { "DeadLetters.Replay", handle_return_nothing },
  { "DeadLetters.Delete", handle_return_nothing },
  { "DeadLetters.ReplayAll", handle_dlq_count },
  { "DeadLetters.Purge", handle_dlq_count },
};

static void
fake_method_call (GDBusConnection       *connection,
                  const char            *sender,
                  const char            *path,
                  const char            *interface,
                  const char            *method,
                  GVariant              *parameters,
                  GDBusMethodInvocation *invocation,
                  gpointer               user_data)
{
  Fake *fake = user_data;
  FakeCall *call = g_new0 (FakeCall, 1);
  GUnixFDList *fds = g_dbus_message_get_unix_fd_list (g_dbus_method_invocation_get_message (invocation));
  g_autofree char *key = g_strdup_printf ("%s.%s", strrchr (interface, '.') + 1, method);

  call->path = g_strdup (path);
  call->interface = g_strdup (interface);
  call->method = g_strdup (method);
  call->parameters = g_variant_ref (parameters);
  call->n_fds = fds != NULL ? g_unix_fd_list_get_length (fds) : 0;
  g_ptr_array_add (fake->calls, call);

  for (guint i = 0; i < G_N_ELEMENTS (fake_handlers); i++)
    if (g_str_equal (fake_handlers[i].method, key))
      {
        fake_handlers[i].handler (fake, invocation, parameters);
        return;
      }
  g_dbus_method_invocation_return_dbus_error (invocation, "org.freedesktop.DBus.Error.UnknownMethod", key);
}

static void
name_acquired_cb (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  ((Fake *) user_data)->owned = TRUE;
}

static Fake *
fake_new (void)
{
  Fake *fake = g_new0 (Fake, 1);
  g_autoptr(GError) error = NULL;

  fake->nodes = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, (GDestroyNotify) g_dbus_node_info_unref);
  fake->registrations = g_array_new (FALSE, FALSE, sizeof (guint));
  fake->calls = g_ptr_array_new_with_free_func ((GDestroyNotify) fake_call_free);
  fake->bus = bp_test_bus_up ();
  fake->address = g_strdup (bp_test_bus_get_address (fake->bus));
  fake->connection = g_dbus_connection_new_for_address_sync (fake->address,
                                                             G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                             G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                             NULL, NULL, &error);
  g_assert_no_error (error);

  fake_register (fake, ROOT, BP_IFACE ("Manager"));
  fake_register (fake, ROOT, "org.freedesktop.DBus.ObjectManager");
  fake_register (fake, ROOT "/DeadLetters", BP_IFACE ("DeadLetters"));
  for (guint i = 0; i < G_N_ELEMENTS (fake_backends); i++)
    {
      g_autofree char *path = g_strconcat (ROOT "/backend/", fake_backends[i].name, NULL);

      fake_register (fake, path, BP_IFACE ("Backend"));
      if (fake_backends[i].interface != NULL)
        fake_register (fake, path, fake_backends[i].interface);
    }
  fake->owner_id = g_bus_own_name_on_connection (fake->connection, "org.backplane.Backplane1",
                                                 G_BUS_NAME_OWNER_FLAGS_NONE, name_acquired_cb, NULL, fake, NULL);
  g_assert_true (bp_test_wait_until (flag_set, &fake->owned, 30000));
  return fake;
}

static void
fake_free (Fake *fake)
{
  g_bus_unown_name (fake->owner_id);
  for (guint i = 0; i < fake->registrations->len; i++)
    g_dbus_connection_unregister_object (fake->connection, g_array_index (fake->registrations, guint, i));
  g_clear_object (&fake->held_wait);
  g_dbus_connection_close_sync (fake->connection, NULL, NULL);
  g_clear_object (&fake->connection);
  bp_test_bus_down (g_steal_pointer (&fake->bus));
  g_array_unref (fake->registrations);
  g_ptr_array_unref (fake->calls);
  g_hash_table_unref (fake->nodes);
  g_free (fake->address);
  g_free (fake);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Fake, fake_free)

/* The last call of Interface.Method; fails the test if there is none. */
static FakeCall *
fake_last_call (Fake       *fake,
                const char *method)
{
  for (guint i = fake->calls->len; i > 0; i--)
    {
      FakeCall *call = g_ptr_array_index (fake->calls, i - 1);
      g_autofree char *key = g_strdup_printf ("%s.%s", strrchr (call->interface, '.') + 1, call->method);

      if (g_str_equal (key, method))
        return call;
    }
  g_error ("%s was not called", method);
  return NULL;
}

static void
assert_parameters (FakeCall   *call,
                   const char *expected_text)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) expected = g_variant_parse (g_variant_get_type (call->parameters), expected_text,
                                                  NULL, NULL, &error);

  g_assert_no_error (error);
  if (!g_variant_equal (call->parameters, expected))
    {
      g_autofree char *got = g_variant_print (call->parameters, TRUE);

      g_error ("%s: got %s, expected %s", call->method, got, expected_text);
    }
}

static void
test_fake_sql (void)
{
  g_autoptr(Fake) fake = fake_new ();
  g_autoptr(CtlResult) r = NULL;
  g_autofree char *line = NULL;
  g_autoptr(JsonNode) root = NULL;
  JsonArray *rows;
  JsonObject *row;

  /* Typed parameters: untyped text is a string, n: is the null path. */
  r = run_ctl (fake->address, "sql", "pg", "SELECT $1, $2, $3, $4, $5, $6, $7, $8", "plain", "i:-42", "f:1.5",
               "b:yes", "n:", "s:i:7", "j:[1,null,\"x\"]", "--", "-3");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "Sql.Query"),
                     "('SELECT $1, $2, $3, $4, $5, $6, $7, $8', [<'plain'>, <int64 -42>, <1.5>, <true>, "
                     "<objectpath '/'>, <'i:7'>, <[<int64 1>, <objectpath '/'>, <'x'>]>, <'-3'>], @a{sv} {})");
  /* Table: the columns in order, NULL as an empty cell, the duplicate
   * column by its #2 key, bytes in base64, escapes never raw. */
  g_assert_true (g_regex_match_simple ("^id  name +name +data  doc$", r->out, G_REGEX_MULTILINE, 0));
  line = table_line (r->out, "1");
  g_assert_cmpstr (line, ==, "1  alpha  red\\x1b[31mtext  aGk=  {\"k\": [1, 2]}");
  g_clear_pointer (&line, g_free);
  line = table_line (r->out, "22");
  g_assert_cmpstr (line, ==, "22");
  assert_lacks (r->out, "\x1b");
  assert_contains (r->out, "(2 rows)");
  g_clear_pointer (&r, ctl_result_free);

  /* --int, --max-rows and --timeout-ms become the documented options. */
  r = run_ctl (fake->address, "--timeout-ms", "1500", "sql", "pg", "SELECT $1, $2", "7", "seven",
               "--int", "--max-rows", "10", "--json");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "Sql.Query"),
                     "('SELECT $1, $2', [<int64 7>, <'seven'>], {'timeout-ms': <uint32 1500>, 'max-rows': <uint32 10>})");
  root = parse_json (r->out);
  g_assert_cmpstr (json_object_get_string_member (json_array_get_object_element (
                     json_object_get_array_member (json_node_get_object (root), "columns"), 3), "type"), ==, "bytea");
  rows = json_object_get_array_member (json_node_get_object (root), "rows");
  g_assert_cmpuint (json_array_get_length (rows), ==, 2);
  row = json_array_get_object_element (rows, 0);
  g_assert_cmpint (json_object_get_int_member (row, "id"), ==, 1);
  g_assert_cmpstr (json_object_get_string_member (row, "name#2"), ==, "red\x1b[31mtext");
  g_assert_cmpstr (json_object_get_string_member (row, "data"), ==, "aGk=");
  /* jsonb is embedded as JSON, not as a string holding JSON. */
  g_assert_cmpint (json_array_get_int_element (json_object_get_array_member (
                     json_object_get_object_member (row, "doc"), "k"), 1), ==, 2);
  row = json_array_get_object_element (rows, 1);
  g_assert_true (json_object_get_null_member (row, "name"));
  g_assert_true (json_object_get_null_member (row, "data"));
  /* The JSON text itself escapes the control character. */
  assert_contains (r->out, "\\u001b[31m");
  g_clear_pointer (&r, ctl_result_free);

  /* Errors by their short name, exit 1. */
  r = run_ctl (fake->address, "sql", "pg", "FAIL");
  g_assert_cmpint (r->status, ==, 1);
  assert_contains (r->err, "backplanectl: Backend: SQLSTATE 42601: syntax error at or near \"FAIL\"");
  g_clear_pointer (&r, ctl_result_free);
  r = run_ctl (fake->address, "sql", "pg", "OPEN");
  g_assert_cmpint (r->status, ==, 1);
  assert_contains (r->err, "backplanectl: CircuitOpen: circuit open; retry-after-ms=500");
  g_clear_pointer (&r, ctl_result_free);

  /* An unavailable backend has lost its typed interface: say why. */
  r = run_ctl (fake->address, "sql", "down", "SELECT 1");
  g_assert_cmpint (r->status, ==, 1);
  assert_contains (r->err, "backend “down” is unavailable: connection refused");
}

static void
test_fake_sql_to_file (void)
{
  g_autoptr(Fake) fake = fake_new ();
  g_autoptr(CtlResult) r = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bp-ctl-XXXXXX", &error);
  g_autofree char *jsonl = g_build_filename (dir, "out.jsonl", NULL);
  g_autofree char *csv = g_build_filename (dir, "out.csv", NULL);
  g_autofree char *broken = g_build_filename (dir, "broken.jsonl", NULL);
  g_autofree char *contents = NULL;
  FakeCall *call;

  g_assert_no_error (error);
  r = run_ctl (fake->address, "sql", "pg", "SELECT id FROM t WHERE id > $1", "i:0", "--to-file", jsonl);
  g_assert_cmpint (r->status, ==, 0);
  call = fake_last_call (fake, "Sql.QueryToFd");
  assert_parameters (call, "('SELECT id FROM t WHERE id > $1', [<int64 0>], handle 0, {'format': <'jsonl'>})");
  g_assert_cmpint (call->n_fds, ==, 1);
  assert_contains (r->out, "Rows written to ");
  /* The CLI returned only once the whole stream was in the file. */
  g_file_get_contents (jsonl, &contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_suffix (contents, "{\"id\":22}\n{\"end\":{\"rows\":2}}\n"));
  g_clear_pointer (&contents, g_free);
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "sql", "pg", "SELECT id FROM t", "--to-file", csv);
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "Sql.QueryToFd"), "('SELECT id FROM t', @av [], handle 0, {'format': <'csv'>})");
  g_file_get_contents (csv, &contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (contents, ==, "id\n1\n22\n");
  g_clear_pointer (&r, ctl_result_free);

  /* A stream that ends with an error line: its error, exit 1. */
  r = run_ctl (fake->address, "sql", "pg", "BROKEN", "--to-file", broken);
  g_assert_cmpint (r->status, ==, 1);
  assert_contains (r->err, "Timeout: statement timeout after 100 ms");
  g_clear_pointer (&r, ctl_result_free);

  /* Refused before any byte: the error, and no file left behind. */
  r = run_ctl (fake->address, "sql", "pg", "SLOW", "--to-file", broken);
  g_assert_cmpint (r->status, ==, 1);
  assert_contains (r->err, "backplanectl: Timeout: statement timeout after 300 ms");
  g_assert_false (g_file_test (broken, G_FILE_TEST_EXISTS));
  g_clear_pointer (&r, ctl_result_free);

  /* A JSON Lines stream that ends without its end line is incomplete. */
  r = run_ctl (fake->address, "sql", "pg", "CUT", "--to-file", broken);
  g_assert_cmpint (r->status, ==, 1);
  assert_contains (r->err, "the stream ended without its end line");

  g_unlink (jsonl);
  g_unlink (csv);
  g_unlink (broken);
  g_rmdir (dir);
}

typedef struct
{
  const char *path;
  const char *needle;
} FileWait;

static gboolean
file_contains (gpointer data)
{
  FileWait *w = data;
  g_autofree char *contents = NULL;

  return g_file_get_contents (w->path, &contents, NULL, NULL) && strstr (contents, w->needle) != NULL;
}

static gboolean
subprocess_exited (gpointer data)
{
  return *(gboolean *) data;
}

static void
waited_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_subprocess_wait_finish (G_SUBPROCESS (source), result, NULL);
  *(gboolean *) user_data = TRUE;
}

typedef struct
{
  GSubprocess *process;
  char        *dir;
  char        *out_path;
  char        *err_path;
  gboolean     exited;
} Background;

static Background *
background_start (const char * const *argv)
{
  Background *b = g_new0 (Background, 1);
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE);
  g_autoptr(GError) error = NULL;

  b->dir = g_dir_make_tmp ("bp-ctl-XXXXXX", &error);
  g_assert_no_error (error);
  b->out_path = g_build_filename (b->dir, "stdout", NULL);
  b->err_path = g_build_filename (b->dir, "stderr", NULL);
  g_subprocess_launcher_setenv (launcher, "G_DEBUG", "fatal-criticals", TRUE);
  g_subprocess_launcher_set_stdout_file_path (launcher, b->out_path);
  g_subprocess_launcher_set_stderr_file_path (launcher, b->err_path);
  b->process = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_wait_async (b->process, NULL, waited_cb, &b->exited);
  return b;
}

static void
background_free (Background *b)
{
  g_object_unref (b->process);
  g_unlink (b->out_path);
  g_unlink (b->err_path);
  g_rmdir (b->dir);
  g_free (b->out_path);
  g_free (b->err_path);
  g_free (b->dir);
  g_free (b);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Background, background_free)

static void
test_fake_listen (void)
{
  g_autoptr(Fake) fake = fake_new ();
  g_autofree char *exe = ctl_path ();
  const char *argv[] = { exe, "--address", fake->address, "listen", "pg", "jobs", NULL };
  g_autoptr(Background) b = background_start (argv);
  FileWait w = { b->out_path, "jobs: world\n" };
  g_autofree char *out = NULL;

  /* Both events of the batch, one a line, then Ctrl-C closes it. */
  g_assert_true (bp_test_wait_until (file_contains, &w, RUN_TIMEOUT_MS));
  assert_parameters (fake_last_call (fake, "Sql.Listen"), "('jobs',)");
  g_subprocess_send_signal (b->process, SIGINT);
  g_assert_true (bp_test_wait_until (subprocess_exited, &b->exited, RUN_TIMEOUT_MS));
  g_assert_cmpint (exit_status (b->process), ==, 0);
  g_assert_cmpstr (fake_last_call (fake, "Subscription.Close")->path, ==, SUBSCRIPTION_PATH);
  g_assert_true (g_file_get_contents (b->out_path, &out, NULL, NULL));
  g_assert_cmpstr (out, ==, "jobs: hello\njobs: world\n");
}

static void
test_fake_listen_json (void)
{
  g_autoptr(Fake) fake = fake_new ();
  g_autofree char *exe = ctl_path ();
  const char *argv[] = { exe, "--address", fake->address, "--json", "listen", "pg", "jobs", NULL };
  g_autoptr(Background) b = background_start (argv);
  FileWait w = { b->out_path, "world" };
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;

  g_assert_true (bp_test_wait_until (file_contains, &w, RUN_TIMEOUT_MS));
  g_subprocess_send_signal (b->process, SIGTERM);
  g_assert_true (bp_test_wait_until (subprocess_exited, &b->exited, RUN_TIMEOUT_MS));
  g_assert_cmpint (exit_status (b->process), ==, 0);
  g_assert_true (g_file_get_contents (b->out_path, &out, NULL, NULL));
  /* JSON Lines: one compact object an event. */
  lines = g_strsplit (out, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 3);
  for (guint i = 0; i < 2; i++)
    {
      g_autoptr(JsonNode) event = parse_json (lines[i]);

      g_assert_cmpstr (json_object_get_string_member (json_node_get_object (event), "channel"), ==, "jobs");
      g_assert_cmpint (json_object_get_int_member (json_node_get_object (event), "pid"), ==, 42);
    }
}

static void
test_fake_cypher (void)
{
  g_autoptr(Fake) fake = fake_new ();
  g_autoptr(CtlResult) r = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bp-ctl-XXXXXX", &error);
  g_autofree char *file = g_build_filename (dir, "records.jsonl", NULL);
  JsonObject *object, *node;
  JsonArray *records;

  r = run_ctl (fake->address, "cypher", "graph", "MATCH (n:Person {name: $name}) RETURN n, n.age AS age",
               "--param", "name=Ada", "--param", "age=i:36", "--param", "tags=j:[\"a\"]", "--param", "gone=n:",
               "--database", "people", "--read");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "Graph.Run"),
                     "('MATCH (n:Person {name: $name}) RETURN n, n.age AS age', "
                     "{'name': <'Ada'>, 'age': <int64 36>, 'tags': <[<'a'>]>, 'gone': <objectpath '/'>}, "
                     "{'database': <'people'>, 'access-mode': <'read'>})");
  assert_contains (r->out, "n");
  assert_contains (r->out, "{\"id\":1,\"labels\":[\"Person\"],\"properties\":{\"name\":\"Ada\"}}  36");
  assert_contains (r->out, "(2 records)");
  assert_contains (r->out, "Counters: {\"nodes-created\":2}");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "cypher", "graph", "RETURN 1", "--json");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "Graph.Run"), "('RETURN 1', @a{sv} {}, @a{sv} {})");
  root = parse_json (r->out);
  object = json_node_get_object (root);
  records = json_object_get_array_member (object, "records");
  g_assert_cmpuint (json_array_get_length (records), ==, 2);
  node = json_object_get_object_member (json_array_get_object_element (records, 0), "n");
  g_assert_cmpstr (json_array_get_string_element (json_object_get_array_member (node, "labels"), 0), ==, "Person");
  g_assert_true (json_object_get_null_member (json_array_get_object_element (records, 1), "age"));
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (object, "summary"), "bookmark"), ==, "bm:1");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "cypher", "graph", "FAIL");
  g_assert_cmpint (r->status, ==, 1);
  assert_contains (r->err, "Backend: Neo.ClientError.Statement.SyntaxError: Invalid input 'F'");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "cypher", "graph", "MATCH (n) RETURN n", "--to-file", file);
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "Graph.RunToFd"), "('MATCH (n) RETURN n', @a{sv} {}, handle 0, @a{sv} {})");
  assert_contains (r->out, "Records written to ");
  g_unlink (file);
  g_rmdir (dir);
}

static void
test_fake_vectors (void)
{
  g_autoptr(Fake) fake = fake_new ();
  g_autoptr(CtlResult) r = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bp-ctl-XXXXXX", &error);
  g_autofree char *points = g_build_filename (dir, "points.jsonl", NULL);
  g_autofree char *scrolled = g_build_filename (dir, "scrolled.jsonl", NULL);
  g_autofree char *contents = NULL;
  FakeCall *call;
  JsonArray *hits;

  g_assert_no_error (error);
  r = run_ctl (fake->address, "vectors", "vec", "collections");
  g_assert_cmpint (r->status, ==, 0);
  g_assert_cmpstr (r->out, ==, "COLLECTION\nalpha\nbeta\n");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "vectors", "vec", "create", "alpha", "--size", "4", "--distance", "cosine");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "Vectors.CreateCollection"),
                     "('alpha', '{\"vectors\":{\"size\":4,\"distance\":\"Cosine\"}}')");
  assert_contains (r->out, "Collection “alpha” created.");
  g_clear_pointer (&r, ctl_result_free);

  g_file_set_contents (points, "{\"id\":1,\"vector\":[0.1,0.2,0.3,0.4]}\n\n{\"id\":2,\"vector\":[0.5,0.6,0.7,0.8]}\n",
                       -1, &error);
  g_assert_no_error (error);
  r = run_ctl (fake->address, "vectors", "vec", "upsert", "alpha", points, "--batch-size", "64");
  g_assert_cmpint (r->status, ==, 0);
  call = fake_last_call (fake, "Vectors.UpsertFromFd");
  assert_parameters (call, "('alpha', handle 0, {'batch-size': <uint32 64>})");
  g_assert_cmpint (call->n_fds, ==, 1);
  assert_contains (r->out, "2 points upserted into “alpha”.");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "vectors", "vec", "query", "alpha", "--limit", "2",
               "--filter", "{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}", "--", "-0.5,0.25,1,2e-3");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "Vectors.Query"),
                     "('alpha', [-0.5, 0.25, 1.0, 0.002], {'limit': <uint32 2>, "
                     "'filter': <'{\"must\":[{\"key\":\"color\",\"match\":{\"value\":\"red\"}}]}'>})");
  {
    g_autofree char *line = table_line (r->out, "7");

    g_assert_true (g_regex_match_simple ("^7 +0\\.8750  \\{\"color\":\"red\"\\}$", line, 0, 0));
  }
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "--json", "vectors", "vec", "query", "alpha", "1,2");
  g_assert_cmpint (r->status, ==, 0);
  root = parse_json (r->out);
  hits = json_node_get_array (root);
  g_assert_cmpuint (json_array_get_length (hits), ==, 2);
  /* The payload JSON text is embedded as JSON. */
  g_assert_cmpstr (json_object_get_string_member (json_object_get_object_member (json_array_get_object_element (hits, 0),
                                                                                 "payload"), "color"), ==, "red");
  g_assert_true (json_object_get_null_member (json_array_get_object_element (hits, 1), "payload"));
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "vectors", "vec", "count", "alpha", "--estimate");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "Vectors.Count"), "('alpha', {'exact': <false>})");
  g_assert_cmpstr (r->out, ==, "42\n");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "vectors", "vec", "scroll", "alpha", "--to-file", scrolled, "--with-vectors");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "Vectors.ScrollToFd"), "('alpha', handle 0, {'with-vector': <true>})");
  assert_contains (r->out, "1 point written to ");
  g_file_get_contents (scrolled, &contents, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (contents, "{\"collection\":\"alpha\"}\n"));

  g_unlink (points);
  g_unlink (scrolled);
  g_rmdir (dir);
}

static void
test_fake_run (void)
{
  g_autoptr(Fake) fake = fake_new ();
  g_autoptr(CtlResult) r = NULL;
  g_autoptr(GVariant) options = NULL;
  g_autofree char *cwd = g_get_current_dir ();
  g_autofree char *expected_cwd = g_canonicalize_filename ("sub", cwd);
  g_autofree char *cwd_option = NULL;
  FakeCall *call;
  gint32 handle;

  r = run_ctl (fake->address, "run", "sh", "--cwd", "sub", "--env", "A=1", "--env", "B=x=y",
               "--timeout-ms", "5000", "--", "ls", "-l", "--all");
  /* The child's exit code is backplanectl's. */
  g_assert_cmpint (r->status, ==, 3);
  call = fake_last_call (fake, "Shell.Spawn");
  g_variant_get (call->parameters, "(@as@a{sv})", NULL, &options);
  {
    g_autoptr(GVariant) program = g_variant_get_child_value (call->parameters, 0);
    g_autofree const char **strv = g_variant_get_strv (program, NULL);

    g_assert_cmpstrv (strv, ((const char *[]) { "ls", "-l", "--all", NULL }));
  }
  g_assert_true (g_variant_lookup (options, "cwd", "s", &cwd_option));
  g_assert_cmpstr (cwd_option, ==, expected_cwd);
  {
    g_autoptr(GVariant) env = g_variant_lookup_value (options, "env", G_VARIANT_TYPE ("a{ss}"));
    g_autoptr(GVariant) timeout = g_variant_lookup_value (options, "timeout-ms", G_VARIANT_TYPE_UINT32);
    const char *value;

    g_assert_nonnull (env);
    g_assert_true (g_variant_lookup (env, "B", "&s", &value));
    g_assert_cmpstr (value, ==, "x=y");
    g_assert_nonnull (timeout);
    g_assert_cmpuint (g_variant_get_uint32 (timeout), ==, 5000);
  }
  /* Its own stdin, stdout and stderr, as handles into the fd list. */
  g_assert_cmpint (call->n_fds, ==, 3);
  g_assert_true (g_variant_lookup (options, "stdin", "h", &handle));
  g_assert_true (g_variant_lookup (options, "stdout", "h", &handle));
  g_assert_true (g_variant_lookup (options, "stderr", "h", &handle));
  /* What the "child" wrote to those fds is what backplanectl printed. */
  g_assert_cmpstr (r->out, ==, "hello from the child\n");
  g_assert_cmpstr (r->err, ==, "warning from the child\n");
  g_assert_cmpstr (fake_last_call (fake, "Process.Wait")->path, ==, PROCESS_PATH);
  g_assert_cmpstr (fake_last_call (fake, "Process.Close")->path, ==, PROCESS_PATH);
  g_clear_pointer (&r, ctl_result_free);

  /* Without --: everything after NAME that is not an option. */
  r = run_ctl (fake->address, "run", "sh", "true");
  g_assert_cmpint (r->status, ==, 3);
  assert_parameters (fake_last_call (fake, "Shell.Spawn"), "(['true'], {'stdin': <handle 0>, 'stdout': <handle 1>, 'stderr': <handle 2>})");
}

static gboolean
wait_held (gpointer data)
{
  return ((Fake *) data)->held_wait != NULL;
}

static void
test_fake_run_interrupt (void)
{
  g_autoptr(Fake) fake = fake_new ();
  g_autofree char *exe = ctl_path ();
  const char *argv[] = { exe, "--address", fake->address, "run", "sh", "--", "sleep", "1000", NULL };
  g_autoptr(Background) b = background_start (argv);

  /* Ctrl-C while Wait is pending: Kill(SIGINT) is forwarded, the process
   * ends by that signal and backplanectl exits 128 + 2. */
  g_assert_true (bp_test_wait_until (wait_held, fake, RUN_TIMEOUT_MS));
  g_subprocess_send_signal (b->process, SIGINT);
  g_assert_true (bp_test_wait_until (subprocess_exited, &b->exited, RUN_TIMEOUT_MS));
  g_assert_cmpint (fake->killed_with, ==, SIGINT);
  g_assert_cmpint (exit_status (b->process), ==, 128 + SIGINT);
  assert_parameters (fake_last_call (fake, "Process.Kill"), "(2,)");
  g_assert_cmpstr (fake_last_call (fake, "Process.Close")->path, ==, PROCESS_PATH);
}

static void
test_fake_dlq (void)
{
  g_autoptr(Fake) fake = fake_new ();
  g_autoptr(CtlResult) r = NULL;
  g_autoptr(JsonNode) root = NULL;
  g_autofree char *line = NULL;
  JsonObject *entry;

  r = run_ctl (fake->address, "dlq", "list", "--backend", "pg", "--poisoned", "--offset", "5", "--limit", "20");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "DeadLetters.List"), "(5, 20, {'backend': <'pg'>, 'poisoned': <true>})");
  line = table_line (r->out, "7");
  assert_contains (line, "pg");
  assert_contains (line, "Sql.Execute");
  assert_contains (line, "SQLSTATE 08006: connection lost");
  assert_contains (r->out, "1 entries in the queue, 0 poisoned");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "dlq", "list", "--json");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "DeadLetters.List"), "(0, 100, @a{sv} {})");
  root = parse_json (r->out);
  entry = json_array_get_object_element (json_node_get_array (root), 0);
  g_assert_cmpint (json_object_get_int_member (entry, "id"), ==, 7);
  g_assert_cmpint (json_object_get_int_member (entry, "attempts"), ==, 3);
  g_assert_cmpint (json_object_get_int_member (entry, "next-attempt"), ==, 1700000000000000);
  g_assert_cmpstr (json_object_get_string_member (entry, "idempotency-key"), ==, "key-1");
  g_clear_pointer (&root, json_node_unref);
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "dlq", "show", "7");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "DeadLetters.Get"), "(uint64 7,)");
  assert_contains (r->out, "payload:");
  assert_contains (r->out, "INSERT INTO t VALUES ($1)");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "dlq", "show", "8");
  g_assert_cmpint (r->status, ==, 1);
  assert_contains (r->err, "NotFound: no dead letter 8");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "dlq", "replay", "7");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "DeadLetters.Replay"), "(uint64 7,)");
  assert_contains (r->out, "Entry 7 replayed.");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "dlq", "replay-all", "pg");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "DeadLetters.ReplayAll"), "('pg',)");
  assert_contains (r->out, "5 entries scheduled for replay.");
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "dlq", "delete", "7", "--json");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "DeadLetters.Delete"), "(uint64 7,)");
  root = parse_json (r->out);
  g_assert_cmpint (json_object_get_int_member (json_node_get_object (root), "deleted"), ==, 7);
  g_clear_pointer (&r, ctl_result_free);

  r = run_ctl (fake->address, "dlq", "purge");
  g_assert_cmpint (r->status, ==, 0);
  assert_parameters (fake_last_call (fake, "DeadLetters.Purge"), "('',)");
  assert_contains (r->out, "2 entries removed.");
}

static void
test_fake_breakers (void)
{
  g_autoptr(Fake) fake = fake_new ();
  g_autoptr(CtlResult) r = run_ctl (fake->address, "breakers");
  g_autofree char *line = NULL;

  /* BACKEND BREAKER ERROR% OK FAILED TIMEOUTS REJECTED RETRY POOL IN-USE IDLE WAITING MAX */
  g_assert_cmpint (r->status, ==, 0);
  line = table_line (r->out, "pg");
  assert_contains (line, "open");
  assert_contains (line, "62.5");
  assert_contains (line, "1.50 s");
  g_assert_true (g_regex_match_simple ("pg +open +62\\.5 +3 +5 +1 +9 +1\\.50 s +4 +3 +1 +2 +8$", line, 0, 0));
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add_func ("/ctl/no-daemon", test_no_daemon);
  g_test_add_func ("/ctl/usage", test_usage);
  g_test_add_func ("/ctl/help-version", test_help_version);
  g_test_add_func ("/ctl/daemon/status", test_daemon_status);
  g_test_add_func ("/ctl/daemon/backends-plugins-breakers", test_daemon_backends_plugins);
  g_test_add_func ("/ctl/daemon/ping-health", test_daemon_ping_health);
  g_test_add_func ("/ctl/daemon/unknown-backend", test_daemon_unknown_backend);
  g_test_add_func ("/ctl/daemon/system", test_daemon_system);
  g_test_add_func ("/ctl/daemon/metrics-reload", test_daemon_metrics_reload);
  g_test_add_func ("/ctl/daemon/dead-letters", test_daemon_dead_letters);
  g_test_add_func ("/ctl/fake/sql", test_fake_sql);
  g_test_add_func ("/ctl/fake/sql-to-file", test_fake_sql_to_file);
  g_test_add_func ("/ctl/fake/listen", test_fake_listen);
  g_test_add_func ("/ctl/fake/listen-json", test_fake_listen_json);
  g_test_add_func ("/ctl/fake/cypher", test_fake_cypher);
  g_test_add_func ("/ctl/fake/vectors", test_fake_vectors);
  g_test_add_func ("/ctl/fake/run", test_fake_run);
  g_test_add_func ("/ctl/fake/run-interrupt", test_fake_run_interrupt);
  g_test_add_func ("/ctl/fake/dlq", test_fake_dlq);
  g_test_add_func ("/ctl/fake/breakers", test_fake_breakers);

  return g_test_run ();
}
