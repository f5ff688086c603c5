#!/bin/sh
# Every C file with translatable strings is in po/POTFILES.in, which is sorted,
# and every listed file exists.
set -eu
cd "$1"
listed=$(grep -v '^#' po/POTFILES.in)
status=0
for f in $(grep -rlE '\b_\("|N_\("' core plugins examples --include=*.c --include=*.h | sort); do
  echo "$listed" | grep -qx "$f" || { echo "not ok: $f has translatable strings but is not in po/POTFILES.in"; status=1; }
done
for f in $listed; do
  [ -f "$f" ] || { echo "not ok: po/POTFILES.in lists missing $f"; status=1; }
done
[ "$listed" = "$(echo "$listed" | LC_ALL=C sort)" ] || { echo "not ok: po/POTFILES.in is not sorted"; status=1; }
[ $status -eq 0 ] && echo "ok: po/POTFILES.in is complete and sorted"
exit $status
