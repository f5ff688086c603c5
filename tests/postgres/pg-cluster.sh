#!/bin/sh
# pg-cluster.sh: a throw-away PostgreSQL cluster for benchmarks and manual runs
#
#   pg-cluster.sh start DIR   initdb into DIR (created), start, print conninfo lines:
#                             PG_CONNINFO_SOCKET=…  PG_CONNINFO_TCP=…  PG_PASSWORD=…
#   pg-cluster.sh stop DIR    stop (immediate) and remove DIR
#
# Like tests/postgres/pg-fixture.c: trust on the Unix socket (in DIR),
# scram-sha-256 on 127.0.0.1 at a free port, fsync=off; as root the server
# runs as the `postgres` user.
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -eu

BINDIR=${BP_PG_BINDIR:-/usr/lib/postgresql/15/bin}
SUPERUSER=bp_test

as_pg () {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port () {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  chmod 700 "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  password=$(head -c 18 /dev/urandom | base64)
  printf '%s' "$password" > "$dir/pwfile"
  chmod 600 "$dir/pwfile"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir/pwfile"
  (cd "$dir" && as_pg "$BINDIR/initdb" -D "$dir/data" -U "$SUPERUSER" --pwfile="$dir/pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale --no-sync \
      --no-instructions >/dev/null)
  rm -f "$dir/pwfile"
  port=$(free_port)
  (cd "$dir" && as_pg "$BINDIR/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
      -o "-c fsync=off -c full_page_writes=off -c synchronous_commit=off -c listen_addresses=127.0.0.1 -p $port -k $dir" \
      start >/dev/null)
  echo "PG_CONNINFO_SOCKET='host=$dir port=$port dbname=postgres user=$SUPERUSER'"
  echo "PG_CONNINFO_TCP='host=127.0.0.1 port=$port dbname=postgres user=$SUPERUSER'"
  echo "PG_PASSWORD='$password'"
  ;;
stop)
  dir=$(cd "$dir" && pwd)
  (cd / && as_pg "$BINDIR/pg_ctl" -D "$dir/data" stop -m immediate -w -t 30 >/dev/null 2>&1) || true
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
