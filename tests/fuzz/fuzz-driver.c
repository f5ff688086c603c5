/* fuzz-driver.c: a plain driver for libFuzzer-style targets
 *
 * Links with any fuzz-*.c that defines LLVMFuzzerTestOneInput() and runs it
 * without libFuzzer, so CI exercises every target on every build:
 *
 *   fuzz-NAME [--iterations N] [--seed S] [--max-len L] [PATH...]
 *
 * PATH may be a directory (its files are the seed corpus) or a file. With
 * --iterations 0 (the default) every file is replayed once — the way to
 * re-run a crash file libFuzzer wrote. With N > 0 the seeds are replayed,
 * then N inputs are made from them by deterministic mutation (bit flips,
 * byte and block insertion, deletion and duplication, interesting bytes
 * such as PackStream markers and size boundaries, splicing two seeds,
 * and fresh random bytes) with a GRand seeded by S (default 1), so a run
 * is reproducible. Targets abort() on a broken invariant; the driver then
 * writes the input being run to ./fuzz-crash-NAME (replay it with
 * `fuzz-NAME fuzz-crash-NAME`) and prints the iteration number.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

int LLVMFuzzerTestOneInput (const guint8 *data,
                            size_t        size);

static const guint8 *current_data;
static gsize current_size;
static guint64 current_iteration;
static const char *program_name;

static void
on_abort (int sig)
{
  char path[256];
  FILE *f;

  g_snprintf (path, sizeof path, "fuzz-crash-%s", program_name);
  f = fopen (path, "wb");
  if (f != NULL)
    {
      if (current_size > 0)
        fwrite (current_data, 1, current_size, f);
      fclose (f);
    }
  fprintf (stderr, "fuzz-driver: crash at iteration %" G_GUINT64_FORMAT " (input of %" G_GSIZE_FORMAT
           " bytes saved to %s)\n", current_iteration, current_size, path);
  signal (sig, SIG_DFL);
  raise (sig);
}

static void
run_one (const guint8 *data,
         gsize         size)
{
  current_data = data;
  current_size = size;
  LLVMFuzzerTestOneInput (data, size);
}

static int
compare_paths (gconstpointer a,
               gconstpointer b)
{
  return g_strcmp0 (*(const char * const *) a, *(const char * const *) b);
}

static void
load_path (const char *path,
           GPtrArray  *seeds)
{
  g_autoptr(GError) error = NULL;

  if (g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      g_autoptr(GDir) dir = g_dir_open (path, 0, &error);
      g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);
      const char *name;

      if (dir == NULL)
        g_error ("%s", error->message);
      while ((name = g_dir_read_name (dir)) != NULL)
        g_ptr_array_add (names, g_build_filename (path, name, NULL));
      /* a stable order, whatever the file system says */
      g_ptr_array_sort (names, compare_paths);
      for (guint i = 0; i < names->len; i++)
        load_path (g_ptr_array_index (names, i), seeds);
      return;
    }
  {
    char *contents;
    gsize len;

    if (!g_file_get_contents (path, &contents, &len, &error))
      g_error ("%s", error->message);
    g_ptr_array_add (seeds, g_bytes_new_take (contents, len));
  }
}

static const guint8 interesting[] = {
  0x00, 0x01, 0x0F, 0x10, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xAF, 0xB0, 0xB1, 0xB3, 0xBF,
  0xC0, 0xC1, 0xC2, 0xC3, 0xC8, 0xC9, 0xCA, 0xCB, 0xCC, 0xCD, 0xCE, 0xD0, 0xD1, 0xD2,
  0xD4, 0xD5, 0xD6, 0xD8, 0xD9, 0xDA, 0xF0, 0xFF,
  0x4E, 0x52, 0x72, 0x50, 0x44, 0x54, 0x74, 0x49, 0x69, 0x64, 0x46, 0x66, 0x45, 0x58, 0x59,
  0x70, 0x71, 0x7E, 0x7F,
};

static void
mutate (GRand      *rand,
        GByteArray *buf,
        GPtrArray  *seeds,
        gsize       max_len)
{
  guint n = g_rand_int_range (rand, 1, 8);

  for (guint k = 0; k < n; k++)
    {
      guint op = g_rand_int_range (rand, 0, 9);
      guint len = buf->len;
      guint pos = len > 0 ? (guint) g_rand_int_range (rand, 0, len) : 0;

      switch (op)
        {
        case 0: /* bit flip */
          if (len > 0)
            buf->data[pos] ^= (guint8) (1u << g_rand_int_range (rand, 0, 8));
          break;
        case 1: /* random byte */
          if (len > 0)
            buf->data[pos] = (guint8) g_rand_int_range (rand, 0, 256);
          break;
        case 2: /* interesting byte */
          if (len > 0)
            buf->data[pos] = interesting[g_rand_int_range (rand, 0, G_N_ELEMENTS (interesting))];
          break;
        case 3: /* insert bytes */
          {
            guint8 b[4];
            guint m = g_rand_int_range (rand, 1, 5);
            for (guint i = 0; i < m; i++)
              b[i] = g_rand_boolean (rand) ? interesting[g_rand_int_range (rand, 0, G_N_ELEMENTS (interesting))]
                                           : (guint8) g_rand_int_range (rand, 0, 256);
            if (len == 0)
              g_byte_array_append (buf, b, m);
            else
              {
                g_byte_array_set_size (buf, len + m);
                memmove (buf->data + pos + m, buf->data + pos, len - pos);
                memcpy (buf->data + pos, b, m);
              }
          }
          break;
        case 4: /* delete a block */
          if (len > 0)
            {
              guint m = (guint) g_rand_int_range (rand, 1, 17);
              g_byte_array_remove_range (buf, pos, MIN (m, len - pos));
            }
          break;
        case 5: /* duplicate a block */
          if (len > 0)
            {
              guint r = (guint) g_rand_int_range (rand, 1, 65);
              guint m = MIN (r, len - pos);
              g_autofree guint8 *copy = NULL;
              guint at;

              copy = g_memdup2 (buf->data + pos, m);
              at = g_rand_int_range (rand, 0, buf->len + 1);
              g_byte_array_set_size (buf, buf->len + m);
              memmove (buf->data + at + m, buf->data + at, buf->len - m - at);
              memcpy (buf->data + at, copy, m);
            }
          break;
        case 6: /* truncate */
          g_byte_array_set_size (buf, pos);
          break;
        case 7: /* splice with another seed */
          if (seeds->len > 0)
            {
              GBytes *other = g_ptr_array_index (seeds, g_rand_int_range (rand, 0, seeds->len));
              gsize olen;
              const guint8 *od = g_bytes_get_data (other, &olen);
              if (olen > 0)
                {
                  guint from = g_rand_int_range (rand, 0, olen);
                  g_byte_array_set_size (buf, pos);
                  g_byte_array_append (buf, od + from, olen - from);
                }
            }
          break;
        case 8: /* a big-endian size boundary */
          if (len >= 2)
            {
              static const guint16 sizes[] = { 0, 1, 15, 16, 255, 256, 0x7FFF, 0x8000, 0xFFFF };
              guint16 s = sizes[g_rand_int_range (rand, 0, G_N_ELEMENTS (sizes))];
              pos = MIN (pos, len - 2);
              buf->data[pos] = s >> 8;
              buf->data[pos + 1] = s & 0xFF;
            }
          break;
        default:
          break;
        }
    }
  if (buf->len > max_len)
    g_byte_array_set_size (buf, max_len);
}

int
main (int   argc,
      char *argv[])
{
  gint64 iterations = 0;
  gint64 seed = 1;
  gint64 max_len = 4096;
  g_autoptr(GPtrArray) seeds = g_ptr_array_new_with_free_func ((GDestroyNotify) g_bytes_unref);
  g_autoptr(GByteArray) buf = g_byte_array_new ();
  GRand *rand;
  gint64 start = g_get_monotonic_time ();

  program_name = strrchr (argv[0], '/') ? strrchr (argv[0], '/') + 1 : argv[0];
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--iterations") == 0 && i + 1 < argc)
        iterations = g_ascii_strtoll (argv[++i], NULL, 10);
      else if (strcmp (argv[i], "--seed") == 0 && i + 1 < argc)
        seed = g_ascii_strtoll (argv[++i], NULL, 10);
      else if (strcmp (argv[i], "--max-len") == 0 && i + 1 < argc)
        max_len = g_ascii_strtoll (argv[++i], NULL, 10);
      else
        load_path (argv[i], seeds);
    }
  signal (SIGABRT, on_abort);
  signal (SIGSEGV, on_abort);

  run_one ((const guint8 *) "", 0);
  for (guint i = 0; i < seeds->len; i++)
    {
      gsize len;
      const guint8 *data = g_bytes_get_data (g_ptr_array_index (seeds, i), &len);
      run_one (data, len);
    }

  rand = g_rand_new_with_seed ((guint32) seed);
  for (current_iteration = 1; current_iteration <= (guint64) iterations; current_iteration++)
    {
      guint pick = g_rand_int_range (rand, 0, 16);

      g_byte_array_set_size (buf, 0);
      if (pick == 0 || seeds->len == 0)
        {
          /* fresh random bytes */
          guint len = g_rand_int_range (rand, 0, MIN (max_len, 256) + 1);
          for (guint k = 0; k < len; k++)
            {
              guint8 b = (guint8) g_rand_int_range (rand, 0, 256);
              g_byte_array_append (buf, &b, 1);
            }
        }
      else
        {
          gsize len;
          const guint8 *data = g_bytes_get_data (g_ptr_array_index (seeds, g_rand_int_range (rand, 0, seeds->len)), &len);
          g_byte_array_append (buf, data, (guint) MIN (len, (gsize) max_len));
          mutate (rand, buf, seeds, (gsize) max_len);
        }
      run_one (buf->data, buf->len);
    }
  g_rand_free (rand);

  printf ("%s: %u seeds, %" G_GINT64_FORMAT " mutated inputs, seed %" G_GINT64_FORMAT ", %.1f s\n",
          program_name, seeds->len, iterations, seed, (g_get_monotonic_time () - start) / 1e6);
  return 0;
}
