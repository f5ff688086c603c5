/* test-system-probe.c: the system probes agree with /proc and statvfs()
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "bp-system-probe.h"

static guint64
meminfo_total_bytes (void)
{
  g_autofree char *text = NULL;
  const char *p;

  g_assert_true (g_file_get_contents ("/proc/meminfo", &text, NULL, NULL));
  p = strstr (text, "MemTotal:");
  g_assert_nonnull (p);
  return g_ascii_strtoull (p + strlen ("MemTotal:"), NULL, 10) * 1024;
}

static void
test_status (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) first = NULL;
  g_autoptr(GVariant) second = NULL;
  g_autoptr(GVariant) load = NULL;
  BpSystemCpuSample a, b;
  guint64 total, rss;
  guint32 pid, ncpu;
  double cpu;

  first = bp_system_probe_status (NULL, &a, &error);
  g_assert_no_error (error);
  second = bp_system_probe_status (&a, &b, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (b.total, >=, a.total);

  g_assert_true (g_variant_lookup (second, "memory-total", "t", &total));
  g_assert_cmpuint (total, ==, meminfo_total_bytes ());
  g_assert_true (g_variant_lookup (second, "daemon-pid", "u", &pid));
  g_assert_cmpuint (pid, ==, (guint32) getpid ());
  g_assert_true (g_variant_lookup (second, "daemon-rss", "t", &rss));
  g_assert_cmpuint (rss, >, 0);
  g_assert_true (g_variant_lookup (second, "n-cpus", "u", &ncpu));
  g_assert_cmpuint (ncpu, ==, (guint32) sysconf (_SC_NPROCESSORS_ONLN));
  g_assert_true (g_variant_lookup (second, "cpu-percent", "d", &cpu));
  g_assert_cmpfloat (cpu, >=, 0.0);
  g_assert_cmpfloat (cpu, <=, 100.0);
  load = g_variant_lookup_value (second, "load", G_VARIANT_TYPE ("ad"));
  g_assert_nonnull (load);
  g_assert_cmpuint (g_variant_n_children (load), ==, 3);
}

static void
test_disks_root (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) disks = bp_system_probe_disks (&error);
  struct statvfs st;
  GVariantIter iter;
  const char *mount, *fstype, *device;
  guint64 total, free_bytes, avail;
  gboolean found = FALSE;

  g_assert_no_error (error);
  g_assert_cmpint (statvfs ("/", &st), ==, 0);
  g_variant_iter_init (&iter, disks);
  while (g_variant_iter_next (&iter, "(&s&s&sttt)", &mount, &fstype, &device, &total, &free_bytes, &avail))
    {
      g_assert_cmpstr (fstype, !=, "proc");
      g_assert_cmpstr (fstype, !=, "sysfs");
      g_assert_cmpuint (avail, <=, free_bytes);
      g_assert_cmpuint (free_bytes, <=, total);
      if (g_str_equal (mount, "/"))
        {
          found = TRUE;
          g_assert_cmpuint (total, ==, (guint64) st.f_blocks * st.f_frsize);
        }
    }
  g_assert_true (found);
}

static void
test_processes_self (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) procs = bp_system_probe_processes (BP_SYSTEM_MAX_PROCESSES, BP_SYSTEM_SORT_PID, -1, &error);
  g_autofree char *comm = NULL;
  GVariantIter iter;
  guint32 pid, ppid, last_pid = 0;
  const char *name, *cmdline;
  guint64 rss, start;
  double cpu;
  gboolean found = FALSE;

  g_assert_no_error (error);
  g_assert_true (g_file_get_contents ("/proc/self/comm", &comm, NULL, NULL));
  g_strchomp (comm);
  g_variant_iter_init (&iter, procs);
  while (g_variant_iter_next (&iter, "(uu&s&sttd)", &pid, &ppid, &name, &cmdline, &rss, &start, &cpu))
    {
      g_assert_cmpuint (pid, >, last_pid);
      last_pid = pid;
      if (pid == (guint32) getpid ())
        {
          found = TRUE;
          g_assert_cmpuint (ppid, ==, (guint32) getppid ());
          g_assert_cmpstr (name, ==, comm);
          g_assert_true (strstr (cmdline, "test-system-probe") != NULL);
          g_assert_cmpuint (rss, >, 0);
          g_assert_cmpuint (start, <=, (guint64) (g_get_real_time () / G_USEC_PER_SEC) + 1);
        }
    }
  g_assert_true (found);
}

static void
test_processes_limit_sort_user (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) procs = bp_system_probe_processes (3, BP_SYSTEM_SORT_RSS, -1, &error);
  g_autoptr(GVariant) mine = NULL;
  g_autoptr(GVariant) nobody = NULL;
  guint64 prev = G_MAXUINT64;

  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (procs), <=, 3);
  for (gsize i = 0; i < g_variant_n_children (procs); i++)
    {
      guint64 rss;

      g_variant_get_child (procs, i, "(uu&s&sttd)", NULL, NULL, NULL, NULL, &rss, NULL, NULL);
      g_assert_cmpuint (rss, <=, prev);
      prev = rss;
    }
  mine = bp_system_probe_processes (BP_SYSTEM_MAX_PROCESSES, BP_SYSTEM_SORT_PID, getuid (), &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (mine), >=, 1);
  nobody = bp_system_probe_processes (BP_SYSTEM_MAX_PROCESSES, BP_SYSTEM_SORT_PID, 4000000000u, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_variant_n_children (nobody), ==, 0);
}

static void
test_unescape (void)
{
  g_autofree char *a = bp_system_unescape_mount ("/media/My\\040Disk");
  g_autofree char *b = bp_system_unescape_mount ("/tab\\011x\\134y");
  g_autofree char *c = bp_system_unescape_mount ("trailing\\04");

  g_assert_cmpstr (a, ==, "/media/My Disk");
  g_assert_cmpstr (b, ==, "/tab\tx\\y");
  g_assert_cmpstr (c, ==, "trailing\\04");
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/system/status/matches-proc", test_status);
  g_test_add_func ("/system/disks/root-matches-statvfs", test_disks_root);
  g_test_add_func ("/system/processes/self", test_processes_self);
  g_test_add_func ("/system/processes/limit-sort-user", test_processes_limit_sort_user);
  g_test_add_func ("/system/disks/unescape", test_unescape);
  return g_test_run ();
}
