/* bp-system-probe.c: reading /proc and statvfs()
 *
 * These functions read files and call statvfs(), which can block (a hung
 * network mount, a slow /proc under load). They run on BpWorkerPool
 * threads only, never on the main loop, and build immutable GVariants that
 * are handed back to the main context.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <backplane.h>

#include "bp-system-probe.h"

static char *
read_proc (const char  *path,
           GError     **error)
{
  g_autoptr(GError) local_error = NULL;
  char *contents = NULL;

  if (!g_file_get_contents (path, &contents, NULL, &local_error))
    {
      g_set_error (error, BP_ERROR, BP_ERROR_BACKEND, "%s", local_error->message);
      return NULL;
    }
  return contents;
}

gboolean
bp_system_probe_cpu (BpSystemCpuSample  *sample,
                     GError            **error)
{
  g_autofree char *stat = read_proc ("/proc/stat", error);
  guint64 v[10] = { 0 };
  int n;

  if (stat == NULL)
    return FALSE;
  n = sscanf (stat, "cpu %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
              " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
              " %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT,
              &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  if (n < 4)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_BACKEND, "/proc/stat: no cpu line");
      return FALSE;
    }
  sample->total = 0;
  for (int i = 0; i < 8; i++)
    sample->total += v[i];
  /* idle and iowait are not busy */
  sample->busy = sample->total - v[3] - v[4];
  return TRUE;
}

static guint64
meminfo_kib (const char *meminfo,
             const char *key)
{
  const char *p = strstr (meminfo, key);

  if (p == NULL)
    return 0;
  p += strlen (key);
  while (*p == ' ' || *p == ':')
    p++;
  return g_ascii_strtoull (p, NULL, 10);
}

static guint64
self_rss_bytes (void)
{
  g_autofree char *statm = NULL;
  guint64 size = 0, resident = 0;

  if (!g_file_get_contents ("/proc/self/statm", &statm, NULL, NULL))
    return 0;
  if (sscanf (statm, "%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT, &size, &resident) != 2)
    return 0;
  return resident * (guint64) sysconf (_SC_PAGESIZE);
}

/**
 * bp_system_probe_status:
 * @previous: (nullable): the CPU sample of the previous call
 * @current: (out): the CPU sample taken now
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the a{sv} of System.GetStatus
 */
GVariant *
bp_system_probe_status (const BpSystemCpuSample  *previous,
                        BpSystemCpuSample        *current,
                        GError                  **error)
{
  g_autofree char *meminfo = NULL;
  g_autofree char *loadavg = NULL;
  g_autofree char *uptime = NULL;
  double load[3] = { 0, 0, 0 };
  double cpu = 0.0;
  GVariantBuilder b;

  if (!bp_system_probe_cpu (current, error))
    return NULL;
  if ((meminfo = read_proc ("/proc/meminfo", error)) == NULL ||
      (loadavg = read_proc ("/proc/loadavg", error)) == NULL ||
      (uptime = read_proc ("/proc/uptime", error)) == NULL)
    return NULL;
  if (sscanf (loadavg, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
    {
      g_set_error_literal (error, BP_ERROR, BP_ERROR_BACKEND, "/proc/loadavg: unexpected format");
      return NULL;
    }
  if (previous != NULL && current->total > previous->total)
    cpu = 100.0 * (double) (current->busy - MIN (current->busy, previous->busy)) /
          (double) (current->total - previous->total);

  g_variant_builder_init (&b, G_VARIANT_TYPE_VARDICT);
  g_variant_builder_add (&b, "{sv}", "cpu-percent", g_variant_new_double (CLAMP (cpu, 0.0, 100.0)));
  g_variant_builder_add (&b, "{sv}", "n-cpus", g_variant_new_uint32 ((guint32) sysconf (_SC_NPROCESSORS_ONLN)));
  g_variant_builder_add (&b, "{sv}", "load",
                         g_variant_new_fixed_array (G_VARIANT_TYPE_DOUBLE, load, 3, sizeof (double)));
  g_variant_builder_add (&b, "{sv}", "memory-total", g_variant_new_uint64 (meminfo_kib (meminfo, "MemTotal") * 1024));
  g_variant_builder_add (&b, "{sv}", "memory-available",
                         g_variant_new_uint64 (meminfo_kib (meminfo, "MemAvailable") * 1024));
  g_variant_builder_add (&b, "{sv}", "swap-total", g_variant_new_uint64 (meminfo_kib (meminfo, "SwapTotal") * 1024));
  g_variant_builder_add (&b, "{sv}", "swap-free", g_variant_new_uint64 (meminfo_kib (meminfo, "SwapFree") * 1024));
  g_variant_builder_add (&b, "{sv}", "uptime", g_variant_new_double (g_ascii_strtod (uptime, NULL)));
  g_variant_builder_add (&b, "{sv}", "daemon-rss", g_variant_new_uint64 (self_rss_bytes ()));
  g_variant_builder_add (&b, "{sv}", "daemon-pid", g_variant_new_uint32 ((guint32) getpid ()));
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

/**
 * bp_system_unescape_mount:
 * @field: a field of /proc/self/mountinfo, with octal escapes (`\040`)
 *
 * Returns: (transfer full): the unescaped text
 */
char *
bp_system_unescape_mount (const char *field)
{
  GString *s = g_string_new (NULL);

  for (const char *p = field; *p; p++)
    {
      if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
          p[3] >= '0' && p[3] <= '7')
        {
          g_string_append_c (s, (char) ((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0')));
          p += 3;
        }
      else
        g_string_append_c (s, *p);
    }
  return g_string_free (s, FALSE);
}

static gboolean
is_pseudo_fs (const char *fstype)
{
  static const char * const pseudo[] = {
    "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "securityfs", "pstore",
    "bpf", "debugfs", "tracefs", "configfs", "fusectl", "mqueue", "hugetlbfs", "autofs",
    "binfmt_misc", "nsfs", "rpc_pipefs", "selinuxfs", "efivarfs", "ramfs", "tmpfs",
    "fuse.gvfsd-fuse", "fuse.portal", "squashfs", NULL
  };

  return g_strv_contains (pseudo, fstype);
}

/**
 * bp_system_probe_disks:
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the a(sssttt) of System.ListDisks
 */
GVariant *
bp_system_probe_disks (GError **error)
{
  g_autofree char *mountinfo = read_proc ("/proc/self/mountinfo", error);
  g_auto(GStrv) lines = NULL;
  g_autoptr(GHashTable) seen = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  GVariantBuilder b;

  if (mountinfo == NULL)
    return NULL;
  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(sssttt)"));
  lines = g_strsplit (mountinfo, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      /* id parent major:minor root mount-point options [optional…] - fstype source super-options */
      g_auto(GStrv) f = g_strsplit (lines[i], " ", -1);
      g_autofree char *mount = NULL;
      g_autofree char *device = NULL;
      const char *fstype;
      struct statvfs st;
      guint n = g_strv_length (f);
      guint dash = 0;

      for (guint j = 6; j < n; j++)
        if (g_str_equal (f[j], "-"))
          {
            dash = j;
            break;
          }
      if (n < 7 || dash == 0 || dash + 2 >= n)
        continue;
      fstype = f[dash + 1];
      if (is_pseudo_fs (fstype))
        continue;
      mount = bp_system_unescape_mount (f[4]);
      device = bp_system_unescape_mount (f[dash + 2]);
      if (g_hash_table_contains (seen, mount))
        continue;
      if (statvfs (mount, &st) != 0 || st.f_blocks == 0)
        continue;
      g_variant_builder_add (&b, "(sssttt)", mount, fstype, device,
                             (guint64) st.f_blocks * st.f_frsize,
                             (guint64) st.f_bfree * st.f_frsize,
                             (guint64) st.f_bavail * st.f_frsize);
      g_hash_table_add (seen, g_steal_pointer (&mount));
    }
  return g_variant_ref_sink (g_variant_builder_end (&b));
}

typedef struct
{
  guint32 pid;
  guint32 ppid;
  char   *name;
  char   *cmdline;
  guint64 rss;
  guint64 start_time;
  double  cpu;
  guint32 uid;
} Proc;

static void
proc_clear (Proc *p)
{
  g_free (p->name);
  g_free (p->cmdline);
}

static gboolean
read_proc_entry (guint32  pid,
                 double   uptime,
                 guint64  boot_time,
                 Proc    *out)
{
  g_autofree char *path = g_strdup_printf ("/proc/%u/stat", pid);
  g_autofree char *stat = NULL;
  g_autofree char *cmdline = NULL;
  g_autofree char *status = NULL;
  gsize cmdline_len = 0;
  const char *open, *close;
  guint64 utime = 0, stime = 0, starttime = 0;
  long long rss_pages = 0;
  int ppid = 0;
  long hz = sysconf (_SC_CLK_TCK);
  double age;

  if (!g_file_get_contents (path, &stat, NULL, NULL))
    return FALSE;
  /* The name is in parentheses and may itself contain spaces and ')'. */
  open = strchr (stat, '(');
  close = strrchr (stat, ')');
  if (open == NULL || close == NULL || close < open)
    return FALSE;
  if (sscanf (close + 2,
              "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT
              " %*d %*d %*d %*d %*d %*d %" G_GUINT64_FORMAT " %*u %lld",
              &ppid, &utime, &stime, &starttime, &rss_pages) != 5)
    return FALSE;

  out->pid = pid;
  out->ppid = (guint32) ppid;
  out->name = g_strndup (open + 1, close - open - 1);
  out->rss = (guint64) MAX (rss_pages, 0) * (guint64) sysconf (_SC_PAGESIZE);
  out->start_time = boot_time + starttime / (guint64) hz;
  age = uptime - (double) starttime / (double) hz;
  out->cpu = age > 0 ? 100.0 * ((double) (utime + stime) / (double) hz) / age : 0.0;

  g_free (path);
  path = g_strdup_printf ("/proc/%u/cmdline", pid);
  if (g_file_get_contents (path, &cmdline, &cmdline_len, NULL) && cmdline_len > 0)
    {
      for (gsize i = 0; i + 1 < cmdline_len; i++)
        if (cmdline[i] == '\0')
          cmdline[i] = ' ';
      cmdline[cmdline_len - 1] = '\0';
      out->cmdline = g_utf8_make_valid (cmdline, -1);
    }
  else
    out->cmdline = g_strdup ("");
  if (!g_utf8_validate (out->name, -1, NULL))
    {
      char *valid = g_utf8_make_valid (out->name, -1);
      g_free (out->name);
      out->name = valid;
    }

  g_free (path);
  path = g_strdup_printf ("/proc/%u/status", pid);
  out->uid = G_MAXUINT32;
  if (g_file_get_contents (path, &status, NULL, NULL))
    {
      const char *u = strstr (status, "\nUid:");
      if (u != NULL)
        out->uid = (guint32) g_ascii_strtoull (u + 5, NULL, 10);
    }
  return TRUE;
}

static int
compare_rss (gconstpointer a,
             gconstpointer b)
{
  const Proc *x = a, *y = b;
  return (y->rss > x->rss) - (y->rss < x->rss);
}

static int
compare_cpu (gconstpointer a,
             gconstpointer b)
{
  const Proc *x = a, *y = b;
  return (y->cpu > x->cpu) - (y->cpu < x->cpu);
}

static int
compare_pid (gconstpointer a,
             gconstpointer b)
{
  const Proc *x = a, *y = b;
  return (x->pid > y->pid) - (x->pid < y->pid);
}

/**
 * bp_system_probe_processes:
 * @limit: at most this many (capped at %BP_SYSTEM_MAX_PROCESSES)
 * @sort: the order
 * @only_uid: a uid, or -1 for all
 * @error: return location for a #GError
 *
 * Returns: (transfer full): the a(uussttd) of System.ListProcesses
 */
GVariant *
bp_system_probe_processes (guint          limit,
                           BpSystemSort   sort,
                           gint64         only_uid,
                           GError       **error)
{
  g_autoptr(GArray) procs = g_array_new (FALSE, TRUE, sizeof (Proc));
  g_autoptr(GDir) dir = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autofree char *uptime_text = NULL;
  g_autofree char *stat = NULL;
  guint64 boot_time = 0;
  double uptime;
  const char *entry;
  GVariantBuilder b;
  const char *btime;

  g_array_set_clear_func (procs, (GDestroyNotify) proc_clear);
  if ((uptime_text = read_proc ("/proc/uptime", error)) == NULL ||
      (stat = read_proc ("/proc/stat", error)) == NULL)
    return NULL;
  uptime = g_ascii_strtod (uptime_text, NULL);
  btime = strstr (stat, "\nbtime ");
  if (btime != NULL)
    boot_time = g_ascii_strtoull (btime + 7, NULL, 10);

  dir = g_dir_open ("/proc", 0, &local_error);
  if (dir == NULL)
    {
      g_set_error (error, BP_ERROR, BP_ERROR_BACKEND, "%s", local_error->message);
      return NULL;
    }
  while ((entry = g_dir_read_name (dir)) != NULL)
    {
      guint64 pid;
      Proc p = { 0 };

      if (!g_ascii_string_to_unsigned (entry, 10, 1, G_MAXUINT32, &pid, NULL))
        continue;
      /* A process may exit between readdir and open: skip it. */
      if (!read_proc_entry ((guint32) pid, uptime, boot_time, &p))
        {
          proc_clear (&p);
          continue;
        }
      if (only_uid >= 0 && p.uid != (guint32) only_uid)
        {
          proc_clear (&p);
          continue;
        }
      g_array_append_val (procs, p);
    }
  g_array_sort (procs, sort == BP_SYSTEM_SORT_RSS ? compare_rss :
                       sort == BP_SYSTEM_SORT_CPU ? compare_cpu : compare_pid);

  g_variant_builder_init (&b, G_VARIANT_TYPE ("a(uussttd)"));
  for (guint i = 0; i < procs->len && i < MIN (limit, BP_SYSTEM_MAX_PROCESSES); i++)
    {
      Proc *p = &g_array_index (procs, Proc, i);
      g_variant_builder_add (&b, "(uussttd)", p->pid, p->ppid, p->name, p->cmdline,
                             p->rss, p->start_time, p->cpu);
    }
  return g_variant_ref_sink (g_variant_builder_end (&b));
}
