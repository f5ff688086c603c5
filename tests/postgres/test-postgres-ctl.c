/* test-postgres-ctl.c: backplanectl sql / listen against the postgres
 * backend, end to end
 *
 * A PostgreSQL cluster (pg-fixture.c), backplaned on a private bus
 * (bp-test-daemon.c) and the backplanectl of the build tree, run as a
 * child process the way a user runs it.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "bp-test-daemon.h"
#include "pg-fixture.h"

static PgFixture *fixture;
static BpTestDaemon *daemon_;

static char *
ctl_path (void)
{
  const char *root = g_getenv ("BACKPLANE_BUILD_ROOT");

  return g_build_filename (root != NULL ? root : BP_BUILD_ROOT, "core", "ctl", "backplanectl", NULL);
}

/* Runs backplanectl --address … ARGS…; returns its exit status. */
static int
ctl (char       **out,
     char       **err,
     const char  *first,
     ...)
{
  g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autofree char *stdout_text = NULL;
  g_autofree char *stderr_text = NULL;
  va_list args;

  g_ptr_array_add (argv, ctl_path ());
  g_ptr_array_add (argv, g_strdup_printf ("--address=%s", daemon_->address));
  va_start (args, first);
  for (const char *a = first; a != NULL; a = va_arg (args, const char *))
    g_ptr_array_add (argv, g_strdup (a));
  va_end (args);
  g_ptr_array_add (argv, NULL);

  proc = g_subprocess_newv ((const char * const *) argv->pdata,
                            G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &stdout_text, &stderr_text, &error);
  g_assert_no_error (error);
  g_test_message ("backplanectl %s: exit %d\nstdout: %s\nstderr: %s", first,
                  g_subprocess_get_exit_status (proc), stdout_text, stderr_text);
  if (out != NULL)
    *out = g_steal_pointer (&stdout_text);
  if (err != NULL)
    *err = g_steal_pointer (&stderr_text);
  return g_subprocess_get_exit_status (proc);
}

static void
test_sql_json (void)
{
  g_autofree char *out = NULL;

  g_assert_cmpint (ctl (&out, NULL, "--json", "sql", "db", "SELECT 1 AS x", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "\"name\": \"x\""));
  g_assert_nonnull (strstr (out, "\"type\": \"int4\""));
  g_assert_nonnull (strstr (out, "\"x\": 1"));
  g_clear_pointer (&out, g_free);

  /* Typed parameters stay data; NULL is null. */
  g_assert_cmpint (ctl (&out, NULL, "--json", "sql", "db", "SELECT $1::int + 1 AS y, $2::text AS t, $3::text AS n",
                        "i:41", "'; DROP TABLE x; --", "n:", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "\"y\": 42"));
  g_assert_nonnull (strstr (out, "\"t\": \"'; DROP TABLE x; --\""));
  g_assert_nonnull (strstr (out, "\"n\": null"));
}

static void
test_sql_table (void)
{
  g_autofree char *out = NULL;

  g_assert_cmpint (ctl (&out, NULL, "sql", "db", "SELECT 'hello' AS greeting", NULL), ==, 0);
  g_assert_nonnull (strstr (out, "greeting"));
  g_assert_nonnull (strstr (out, "hello"));
}

static void
test_sql_error (void)
{
  g_autofree char *err = NULL;

  g_assert_cmpint (ctl (NULL, &err, "sql", "db", "SELEC 1", NULL), !=, 0);
  g_assert_nonnull (strstr (err, "42601"));
}

static void
test_sql_to_file (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("bp-ctl-XXXXXX", &error);
  g_autofree char *csv = g_build_filename (dir, "out.csv", NULL);
  g_autofree char *jsonl = g_build_filename (dir, "out.jsonl", NULL);
  g_autofree char *opt_csv = g_strdup_printf ("--to-file=%s", csv);
  g_autofree char *opt_jsonl = g_strdup_printf ("--to-file=%s", jsonl);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;

  g_assert_no_error (error);
  g_assert_cmpint (ctl (NULL, NULL, "sql", "db", "SELECT g, $1 AS name, NULL::text AS n FROM generate_series(1, 3) g",
                        "a,b", opt_csv, NULL), ==, 0);
  g_assert_true (g_file_get_contents (csv, &text, NULL, &error));
  g_assert_cmpstr (text, ==, "g,name,n\n1,\"a,b\",\n2,\"a,b\",\n3,\"a,b\",\n");
  g_clear_pointer (&text, g_free);

  g_assert_cmpint (ctl (NULL, NULL, "sql", "db", "SELECT g FROM generate_series(1, 1000) g", opt_jsonl, NULL), ==, 0);
  g_assert_true (g_file_get_contents (jsonl, &text, NULL, &error));
  lines = g_strsplit (text, "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 1000 + 2 + 1);
  g_assert_true (g_str_has_prefix (lines[0], "{\"columns\":"));
  g_assert_cmpstr (lines[1], ==, "{\"g\":1}");
  g_assert_cmpstr (lines[1001], ==, "{\"end\":{\"rows\":1000}}");

  g_unlink (csv);
  g_unlink (jsonl);
  g_rmdir (dir);
}

typedef struct
{
  GString  *out;
  gboolean  eof;
} Reader;

static void
read_line_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Reader *r = user_data;
  g_autofree char *line = g_data_input_stream_read_line_finish_utf8 (G_DATA_INPUT_STREAM (source), result,
                                                                     NULL, NULL);

  if (line == NULL)
    {
      r->eof = TRUE;
      return;
    }
  g_string_append (r->out, line);
  g_string_append_c (r->out, '\n');
  g_data_input_stream_read_line_async (G_DATA_INPUT_STREAM (source), G_PRIORITY_DEFAULT, NULL, read_line_cb, r);
}

static gboolean
has_payload (gpointer data)
{
  Reader *r = data;

  return strstr (r->out->str, "from-the-test") != NULL;
}

static gboolean
reader_eof (gpointer data)
{
  return ((Reader *) data)->eof;
}

static gint64
listeners (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *n = pg_fixture_psql (fixture, "SELECT count(*) FROM pg_stat_activity "
                                                 "WHERE application_name = 'backplaned/db/listen'", &error);

  g_assert_no_error (error);
  return g_ascii_strtoll (n, NULL, 10);
}

static gboolean
no_listener (gpointer data)
{
  return listeners () == 0;
}

static void
test_listen (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = ctl_path ();
  g_autofree char *address = g_strdup_printf ("--address=%s", daemon_->address);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GDataInputStream) lines = NULL;
  Reader r = { g_string_new (NULL), FALSE };

  proc = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, path, address, "listen", "db", "ctl channel", NULL);
  g_assert_no_error (error);
  lines = g_data_input_stream_new (g_subprocess_get_stdout_pipe (proc));
  g_data_input_stream_read_line_async (lines, G_PRIORITY_DEFAULT, NULL, read_line_cb, &r);

  /* NOTIFYs before its LISTEN is in place are lost: send until one lands. */
  for (guint i = 0; i < 100 && !has_payload (&r); i++)
    {
      g_autofree char *done = pg_fixture_psql (fixture, "SELECT pg_notify('ctl channel', 'from-the-test')", &error);

      g_assert_no_error (error);
      bp_test_wait_until (has_payload, &r, 100);
    }
  g_assert_true (has_payload (&r));
  g_assert_cmpint (listeners (), ==, 1);

  /* Ctrl-C: it closes its subscription (or the daemon sees it leave). */
  g_subprocess_send_signal (proc, SIGINT);
  g_assert_true (bp_test_wait_until (reader_eof, &r, 10000));
  g_subprocess_wait (proc, NULL, NULL);
  g_assert_true (bp_test_wait_until (no_listener, NULL, 10000));
  g_string_free (r.out, TRUE);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *config = NULL;
  g_autofree char *ctl_exe = NULL;
  int ret;

  g_test_init (&argc, &argv, NULL);

  ctl_exe = ctl_path ();
  if (!g_file_test (ctl_exe, G_FILE_TEST_IS_EXECUTABLE))
    g_error ("no backplanectl at %s", ctl_exe);
  fixture = pg_fixture_start (&error);
  if (fixture == NULL)
    g_error ("cannot start the PostgreSQL fixture: %s", error->message);
  config = g_strdup_printf ("[backend db]\ntype=postgres\nconninfo=%s\n", fixture->conninfo_socket);
  daemon_ = bp_test_daemon_new (config);

  g_test_add_func ("/postgres-ctl/sql/json", test_sql_json);
  g_test_add_func ("/postgres-ctl/sql/table", test_sql_table);
  g_test_add_func ("/postgres-ctl/sql/error", test_sql_error);
  g_test_add_func ("/postgres-ctl/sql/to-file", test_sql_to_file);
  g_test_add_func ("/postgres-ctl/listen", test_listen);

  ret = g_test_run ();
  bp_test_daemon_free (daemon_);
  pg_fixture_stop (g_steal_pointer (&fixture));
  return ret;
}
