/* bench-pool.c: BpPool checkout cost against a bare GQueue
 *
 * Measures acquire+release cycles per second of one idle resource through
 * the asynchronous path (acquire_async, one main-loop iteration to deliver
 * the GTask, release) and through the synchronous fast path
 * (bp_pool_try_acquire), and a bare GQueue push/pop of a pointer in the
 * same run as the baseline. Prints the ratios; asserts nothing about time.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include <backplane.h>

#define DEFAULT_ITERATIONS 200000

static void
res_create_async (gpointer             user_data,
                  GCancellable        *cancellable,
                  GAsyncReadyCallback  callback,
                  gpointer             callback_data)
{
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, callback_data);

  g_task_return_pointer (task, g_new0 (guint64, 1), NULL);
}

static gpointer
res_create_finish (gpointer       user_data,
                   GAsyncResult  *result,
                   GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
res_destroy (gpointer user_data,
             gpointer resource)
{
  g_free (resource);
}

static const BpPoolFuncs funcs = {
  .create_async = res_create_async,
  .create_finish = res_create_finish,
  .destroy = res_destroy,
};

static void
acquire_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  BpPoolItem **out = user_data;
  g_autoptr(GError) error = NULL;

  *out = bp_pool_acquire_finish (BP_POOL (object), result, &error);
  if (*out == NULL)
    g_error ("acquire failed: %s", error->message);
}

static double
per_second (guint  n,
            gint64 elapsed_us)
{
  return (double) n * G_USEC_PER_SEC / (double) MAX (elapsed_us, 1);
}

int
main (int   argc,
      char *argv[])
{
  guint iterations = DEFAULT_ITERATIONS;
  g_autoptr(BpPool) pool = NULL;
  BpPoolItem *item = NULL;
  GQueue queue = G_QUEUE_INIT;
  guint64 token = 0;
  volatile guint64 sink = 0;
  gint64 start, pool_us, fast_us, queue_us;
  double pool_rate, fast_rate, queue_rate;

  if (argc > 1)
    iterations = (guint) CLAMP (g_ascii_strtoull (argv[1], NULL, 10), 1000, 100000000);

  /* One resource, created before timing starts. */
  pool = bp_pool_new (&funcs, NULL, NULL, "min", 1, "max", 1, NULL);
  while (g_main_context_iteration (NULL, FALSE))
    ;

  start = g_get_monotonic_time ();
  for (guint i = 0; i < iterations; i++)
    {
      item = NULL;
      bp_pool_acquire_async (pool, "bench", NULL, acquire_cb, &item);
      while (item == NULL)
        g_main_context_iteration (NULL, TRUE);
      sink += *(guint64 *) bp_pool_item_get_resource (item);
      bp_pool_release (pool, item, TRUE);
    }
  pool_us = g_get_monotonic_time () - start;

  start = g_get_monotonic_time ();
  for (guint i = 0; i < iterations; i++)
    {
      item = bp_pool_try_acquire (pool, "bench");
      if (item == NULL)
        g_error ("try_acquire found no idle resource");
      sink += *(guint64 *) bp_pool_item_get_resource (item);
      bp_pool_release (pool, item, TRUE);
    }
  fast_us = g_get_monotonic_time () - start;

  g_queue_push_head (&queue, &token);
  start = g_get_monotonic_time ();
  for (guint i = 0; i < iterations; i++)
    {
      guint64 *p = g_queue_pop_head (&queue);

      sink += *p;
      g_queue_push_head (&queue, p);
    }
  queue_us = g_get_monotonic_time () - start;
  g_queue_clear (&queue);

  pool_rate = per_second (iterations, pool_us);
  fast_rate = per_second (iterations, fast_us);
  queue_rate = per_second (iterations, queue_us);

  printf ("pool acquire+release: %.0f/s, bare GQueue: %.0f/s, ratio %.1f\n",
          pool_rate, queue_rate, queue_rate / pool_rate);
  printf ("pool try_acquire+release: %.0f/s, bare GQueue: %.0f/s, ratio %.1f\n",
          fast_rate, queue_rate, queue_rate / fast_rate);
  printf ("iterations: %u, checksum %" G_GUINT64_FORMAT "\n", iterations, (guint64) sink);

  {
    g_autoptr(GVariant) stats = bp_pool_dup_stats (pool);
    g_autofree char *text = g_variant_print (stats, FALSE);

    printf ("stats: %s\n", text);
  }
  return EXIT_SUCCESS;
}
