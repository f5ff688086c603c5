# Sourced by build-aux/quickstart and build-aux/run-tests: installs what a
# fresh Debian 12 machine lacks to build and test Backplane. Idempotent.

bp_sudo() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

bp_install_packages() {
  # package  command-or-file that proves it is there
  local want="
    meson:/usr/bin/meson
    ninja-build:/usr/bin/ninja
    gcc:/usr/bin/gcc
    pkg-config:/usr/bin/pkg-config
    libglib2.0-dev:/usr/include/glib-2.0/glib.h
    libglib2.0-dev-bin:/usr/bin/gdbus-codegen
    libglib2.0-bin:/usr/bin/gdbus
    libsoup-3.0-dev:/usr/include/libsoup-3.0/libsoup/soup.h
    libjson-glib-dev:/usr/include/json-glib-1.0/json-glib/json-glib.h
    libpq-dev:/usr/include/postgresql/libpq-fe.h
    libsqlite3-dev:/usr/include/sqlite3.h
    postgresql-15:/usr/lib/postgresql/15/bin/postgres
    dbus-daemon:/usr/bin/dbus-daemon
    gettext:/usr/bin/msgfmt
    python3:/usr/bin/python3
    openssl:/usr/bin/openssl
    util-linux:/usr/sbin/runuser
    nodejs:/usr/bin/node
    npm:/usr/bin/npm
    gobject-introspection:/usr/bin/g-ir-scanner
    libgirepository1.0-dev:/usr/share/gir-1.0/Gio-2.0.gir
    gi-docgen:/usr/bin/gi-docgen
  "
  local missing=""
  for pair in $want; do
    pkg=${pair%%:*}
    path=${pair#*:}
    if [ ! -e "$path" ] && ! dpkg -s "$pkg" >/dev/null 2>&1; then
      missing="$missing $pkg"
    fi
  done
  if [ -n "$missing" ]; then
    echo "Installing:$missing"
    bp_sudo apt-get update -q
    # shellcheck disable=SC2086
    bp_sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
  fi
}

bp_install_node_modules() {
  # The conformance tests run the official npm clients against our protocol
  # servers; versions are pinned by each package-lock.json.
  for d in tests/bolt tests/qdrant; do
    if [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules" ]; then
      npm ci --prefix "$d" --no-audit --no-fund --loglevel=error
    fi
  done
}
