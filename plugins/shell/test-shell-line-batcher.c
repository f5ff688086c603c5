/* test-shell-line-batcher.c: line splitting and batching, on a manual clock
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */
#include "config.h"

#include <string.h>

#include "bp-shell-line-batcher.h"
#include "bp-shell-spawn-options.h"

typedef struct
{
  BpClock            *clock;
  BpShellLineBatcher *batcher;
  GPtrArray          *batches; /* (element-type GVariant) */
} Fixture;

static void
batch_cb (BpShellLineBatcher *batcher,
          GVariant           *lines,
          gpointer            user_data)
{
  Fixture *f = user_data;

  g_assert_true (g_variant_is_of_type (lines, G_VARIANT_TYPE ("a(us)")));
  g_assert_cmpuint (g_variant_n_children (lines), >, 0);
  g_ptr_array_add (f->batches, g_variant_ref (lines));
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  f->clock = bp_clock_new_manual (1000000, 1);
  f->batcher = bp_shell_line_batcher_new (f->clock);
  f->batches = g_ptr_array_new_with_free_func ((GDestroyNotify) g_variant_unref);
  g_signal_connect (f->batcher, "batch", G_CALLBACK (batch_cb), f);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_assert_finalize_object (f->batcher);
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);
  g_ptr_array_unref (f->batches);
  g_assert_finalize_object (f->clock);
}

static void
iterate (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
push (Fixture    *f,
      guint       stream,
      const char *text)
{
  bp_shell_line_batcher_push (f->batcher, stream, (const guint8 *) text, strlen (text));
}

/* All batches so far as "1:line|2:line|…" */
static char *
dump (Fixture *f)
{
  GString *s = g_string_new (NULL);

  for (guint i = 0; i < f->batches->len; i++)
    {
      GVariantIter iter;
      guint32 stream;
      const char *line;

      g_variant_iter_init (&iter, g_ptr_array_index (f->batches, i));
      while (g_variant_iter_next (&iter, "(u&s)", &stream, &line))
        g_string_append_printf (s, "%s%u:%s", s->len > 0 ? "|" : "", stream, line);
    }
  return g_string_free (s, FALSE);
}

static void
assert_dump (Fixture    *f,
             const char *expected)
{
  g_autofree char *got = dump (f);

  g_assert_cmpstr (got, ==, expected);
}

static void
test_idle_no_timer (Fixture       *f,
                    gconstpointer  data)
{
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);

  /* A partial line is not a pending line: still nothing armed. */
  push (f, 1, "partial");
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);
  g_assert_cmpuint (bp_shell_line_batcher_get_n_pending (f->batcher), ==, 0);
  bp_clock_advance (f->clock, G_USEC_PER_SEC);
  iterate ();
  g_assert_cmpuint (f->batches->len, ==, 0);

  /* Flushing nothing emits nothing. */
  bp_shell_line_batcher_flush (f->batcher);
  g_assert_cmpuint (f->batches->len, ==, 0);
}

static void
test_flush_at_interval (Fixture       *f,
                        gconstpointer  data)
{
  push (f, 1, "a\nb\n");
  g_assert_cmpuint (bp_shell_line_batcher_get_n_pending (f->batcher), ==, 2);
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 1);

  /* More lines do not re-arm or extend the timer. */
  bp_clock_advance (f->clock, 60 * G_TIME_SPAN_MILLISECOND);
  iterate ();
  push (f, 2, "c\n");
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 1);

  bp_clock_advance (f->clock, 39 * G_TIME_SPAN_MILLISECOND);
  iterate ();
  g_assert_cmpuint (f->batches->len, ==, 0);

  bp_clock_advance (f->clock, 1 * G_TIME_SPAN_MILLISECOND);
  iterate ();
  g_assert_cmpuint (f->batches->len, ==, 1);
  assert_dump (f, "1:a|1:b|2:c");
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);
  g_assert_cmpuint (bp_shell_line_batcher_get_n_pending (f->batcher), ==, 0);

  /* Idle again: nothing armed until the next line. */
  bp_clock_advance (f->clock, G_USEC_PER_SEC);
  iterate ();
  g_assert_cmpuint (f->batches->len, ==, 1);
  push (f, 1, "d\n");
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 1);
  bp_clock_advance (f->clock, 100 * G_TIME_SPAN_MILLISECOND);
  iterate ();
  g_assert_cmpuint (f->batches->len, ==, 2);
  assert_dump (f, "1:a|1:b|2:c|1:d");
}

static void
test_custom_interval (Fixture       *f,
                      gconstpointer  data)
{
  bp_shell_line_batcher_set_flush_interval (f->batcher, 10 * G_TIME_SPAN_MILLISECOND);
  push (f, 1, "x\n");
  bp_clock_advance (f->clock, 9 * G_TIME_SPAN_MILLISECOND);
  iterate ();
  g_assert_cmpuint (f->batches->len, ==, 0);
  bp_clock_advance (f->clock, 1 * G_TIME_SPAN_MILLISECOND);
  iterate ();
  assert_dump (f, "1:x");
}

static void
test_cap_lines (Fixture       *f,
                gconstpointer  data)
{
  bp_shell_line_batcher_set_max_batch (f->batcher, 3, 64 * 1024);

  push (f, 1, "1\n2\n3\n4\n5\n6\n7\n");
  /* Two full batches went out synchronously, without the clock moving. */
  g_assert_cmpuint (f->batches->len, ==, 2);
  g_assert_cmpuint (g_variant_n_children (g_ptr_array_index (f->batches, 0)), ==, 3);
  g_assert_cmpuint (g_variant_n_children (g_ptr_array_index (f->batches, 1)), ==, 3);
  g_assert_cmpuint (bp_shell_line_batcher_get_n_pending (f->batcher), ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 1);

  bp_clock_advance (f->clock, 100 * G_TIME_SPAN_MILLISECOND);
  iterate ();
  assert_dump (f, "1:1|1:2|1:3|1:4|1:5|1:6|1:7");
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);
}

static void
test_cap_bytes (Fixture       *f,
                gconstpointer  data)
{
  bp_shell_line_batcher_set_max_batch (f->batcher, 1000, 10);

  push (f, 1, "aaaa\nbbbb\ncccc\n");
  /* aaaa+bbbb = 8; cccc would make 12 > 10: the first two go out alone. */
  g_assert_cmpuint (f->batches->len, ==, 1);
  g_assert_cmpuint (g_variant_n_children (g_ptr_array_index (f->batches, 0)), ==, 2);

  /* A line longer than the cap goes out on its own. */
  push (f, 2, "0123456789ABCDEF\n");
  g_assert_cmpuint (f->batches->len, ==, 3);
  g_assert_cmpuint (g_variant_n_children (g_ptr_array_index (f->batches, 1)), ==, 1);
  g_assert_cmpuint (g_variant_n_children (g_ptr_array_index (f->batches, 2)), ==, 1);
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);

  /* Exactly at the cap flushes at once. */
  push (f, 1, "0123456789\n");
  g_assert_cmpuint (f->batches->len, ==, 4);
  assert_dump (f, "1:aaaa|1:bbbb|1:cccc|2:0123456789ABCDEF|1:0123456789");
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);
}

static void
test_partial_lines (Fixture       *f,
                    gconstpointer  data)
{
  push (f, 1, "hel");
  push (f, 1, "lo\nwor");
  push (f, 1, "ld");
  bp_shell_line_batcher_flush (f->batcher);
  assert_dump (f, "1:hello");

  bp_shell_line_batcher_end_stream (f->batcher, 1);
  g_assert_cmpuint (bp_shell_line_batcher_get_n_pending (f->batcher), ==, 1);
  bp_shell_line_batcher_flush (f->batcher);
  assert_dump (f, "1:hello|1:world");

  /* end_stream without a partial line adds nothing. */
  bp_shell_line_batcher_end_stream (f->batcher, 1);
  bp_shell_line_batcher_end_stream (f->batcher, 2);
  g_assert_cmpuint (bp_shell_line_batcher_get_n_pending (f->batcher), ==, 0);
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 0);
}

static void
test_empty_and_crlf (Fixture       *f,
                     gconstpointer  data)
{
  push (f, 1, "\n\na\r\nb\r");
  push (f, 1, "\n");
  bp_shell_line_batcher_flush (f->batcher);
  assert_dump (f, "1:|1:|1:a\r|1:b\r");
}

static void
test_invalid_utf8 (Fixture       *f,
                   gconstpointer  data)
{
  static const guint8 bytes[] = { 0xff, 0x00, 'x', 0xc3, 0xa9, '\n' };
  GVariant *batch;
  const char *line;
  guint32 stream;

  bp_shell_line_batcher_push (f->batcher, 2, bytes, sizeof bytes);
  bp_shell_line_batcher_flush (f->batcher);
  g_assert_cmpuint (f->batches->len, ==, 1);
  batch = g_ptr_array_index (f->batches, 0);
  g_variant_get_child (batch, 0, "(u&s)", &stream, &line);
  g_assert_cmpuint (stream, ==, 2);
  g_assert_cmpstr (line, ==, "\xef\xbf\xbd\xef\xbf\xbdx\xc3\xa9");
  g_assert_true (g_utf8_validate (line, -1, NULL));
  g_assert_true (g_variant_is_normal_form (batch));
}

static void
test_overlong (Fixture       *f,
               gconstpointer  data)
{
  bp_shell_line_batcher_set_max_line_bytes (f->batcher, 4);

  push (f, 1, "abcdefghij\n");
  bp_shell_line_batcher_flush (f->batcher);
  assert_dump (f, "1:abcd|1:efgh|1:ij");
  g_ptr_array_set_size (f->batches, 0);

  /* Exactly max-line-bytes is one line, even when the newline comes later. */
  push (f, 1, "abcd\n");
  push (f, 1, "wxyz");
  push (f, 1, "\n");
  bp_shell_line_batcher_flush (f->batcher);
  assert_dump (f, "1:abcd|1:wxyz");
  g_ptr_array_set_size (f->batches, 0);

  /* Without a newline, a long run is cut as it arrives. */
  push (f, 1, "0123");
  g_assert_cmpuint (bp_shell_line_batcher_get_n_pending (f->batcher), ==, 0);
  push (f, 1, "4567");
  g_assert_cmpuint (bp_shell_line_batcher_get_n_pending (f->batcher), ==, 1);
  push (f, 1, "89");
  g_assert_cmpuint (bp_shell_line_batcher_get_n_pending (f->batcher), ==, 2);
  bp_shell_line_batcher_end_stream (f->batcher, 1);
  bp_shell_line_batcher_flush (f->batcher);
  assert_dump (f, "1:0123|1:4567|1:89");
  g_ptr_array_set_size (f->batches, 0);

  /* A cut does not split a UTF-8 character: "aaé" is 4 bytes, "aaaé" 5. */
  push (f, 1, "aaa\xc3\xa9z\n");
  bp_shell_line_batcher_flush (f->batcher);
  assert_dump (f, "1:aaa|1:\xc3\xa9z");
}

static void
test_order_across_streams (Fixture       *f,
                           gconstpointer  data)
{
  push (f, 1, "a\n");
  push (f, 2, "b\n");
  push (f, 1, "c\nx");
  push (f, 2, "y\n");
  push (f, 1, "z\n");
  bp_clock_advance (f->clock, 100 * G_TIME_SPAN_MILLISECOND);
  iterate ();
  assert_dump (f, "1:a|2:b|1:c|2:y|1:xz");
}

static void
test_dispose_disarms (Fixture       *f,
                      gconstpointer  data)
{
  push (f, 1, "pending\n");
  g_assert_cmpuint (bp_clock_get_n_pending (f->clock), ==, 1);
  /* tear_down finalizes the batcher and checks the timer is gone. */
}

static void
test_big_input (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GString) input = g_string_new (NULL);
  guint n_lines = 0;

  for (guint i = 0; i < 20000; i++)
    g_string_append_printf (input, "line %u\n", i);
  /* Odd chunk sizes so that lines straddle pushes. */
  for (gsize off = 0; off < input->len; off += 997)
    bp_shell_line_batcher_push (f->batcher, 1, (const guint8 *) input->str + off,
                                MIN (997, input->len - off));
  bp_shell_line_batcher_flush (f->batcher);

  for (guint i = 0; i < f->batches->len; i++)
    {
      GVariant *batch = g_ptr_array_index (f->batches, i);
      gsize bytes = 0;
      GVariantIter iter;
      const char *line;
      guint32 stream;

      g_assert_cmpuint (g_variant_n_children (batch), <=, BP_SHELL_DEFAULT_BATCH_MAX_LINES);
      g_variant_iter_init (&iter, batch);
      while (g_variant_iter_next (&iter, "(u&s)", &stream, &line))
        {
          g_autofree char *expected = g_strdup_printf ("line %u", n_lines++);
          g_assert_cmpstr (line, ==, expected);
          bytes += strlen (line);
        }
      g_assert_cmpuint (bytes, <=, BP_SHELL_DEFAULT_BATCH_MAX_BYTES);
    }
  g_assert_cmpuint (n_lines, ==, 20000);
}

/* The batcher writes GVariant's serialized form itself: it must be exactly
 * what GVariantBuilder makes, for every framing-offset width (containers
 * under 256 bytes, under 64 KiB, and larger) and odd line lengths
 * (padding). */
static void
test_serialized_form (Fixture       *f,
                      gconstpointer  data)
{
  const guint n_lines[] = { 1, 2, 7, 20, 21, 60, 500, 2000, 3000 };
  GRand *rand = g_rand_new_with_seed (42);

  bp_shell_line_batcher_set_max_batch (f->batcher, 100000, 16 * 1024 * 1024);
  for (guint c = 0; c < G_N_ELEMENTS (n_lines); c++)
    {
      g_autoptr(GString) input = g_string_new (NULL);
      g_autoptr(GVariant) expected = NULL;
      GVariant *got;
      GVariantBuilder builder;

      g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(us)"));
      for (guint i = 0; i < n_lines[c]; i++)
        {
          guint stream = g_rand_int_range (rand, 1, 3);
          guint len = g_rand_int_range (rand, 0, 40);
          g_autofree char *line = g_strnfill (len, 'a' + i % 26);

          /* Streams alternate in runs, as a process' output would. */
          push (f, stream, line);
          push (f, stream, "\n");
          g_variant_builder_add (&builder, "(us)", stream, line);
        }
      bp_shell_line_batcher_flush (f->batcher);
      expected = g_variant_ref_sink (g_variant_builder_end (&builder));

      g_assert_cmpuint (f->batches->len, ==, c + 1);
      got = g_ptr_array_index (f->batches, c);
      g_test_message ("%u lines: %" G_GSIZE_FORMAT " bytes", n_lines[c], g_variant_get_size (got));
      g_assert_true (g_variant_is_normal_form (got));
      g_assert_true (g_variant_equal (got, expected));
      g_assert_cmpmem (g_variant_get_data (got), g_variant_get_size (got),
                       g_variant_get_data (expected), g_variant_get_size (expected));
    }
  g_rand_free (rand);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

  ADD ("/shell/line-batcher/idle-no-timer", test_idle_no_timer);
  ADD ("/shell/line-batcher/flush-at-interval", test_flush_at_interval);
  ADD ("/shell/line-batcher/custom-interval", test_custom_interval);
  ADD ("/shell/line-batcher/cap/lines", test_cap_lines);
  ADD ("/shell/line-batcher/cap/bytes", test_cap_bytes);
  ADD ("/shell/line-batcher/partial-lines", test_partial_lines);
  ADD ("/shell/line-batcher/empty-and-crlf", test_empty_and_crlf);
  ADD ("/shell/line-batcher/invalid-utf8", test_invalid_utf8);
  ADD ("/shell/line-batcher/overlong", test_overlong);
  ADD ("/shell/line-batcher/order-across-streams", test_order_across_streams);
  ADD ("/shell/line-batcher/dispose-disarms", test_dispose_disarms);
  ADD ("/shell/line-batcher/big-input", test_big_input);
  ADD ("/shell/line-batcher/serialized-form", test_serialized_form);

#undef ADD

  return g_test_run ();
}
