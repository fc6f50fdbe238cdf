#!/usr/bin/env bash
# Makes TimescaleDB available to the PostgreSQL server the tests use.
#
#   scripts/timescaledb.sh    exit 0, printing on stdout where the extension is:
#                               `system`   installed in the server's own directories: use as is
#                               DIR        built from source into DIR, an overlay that mirrors
#                                          the server's directories (pg_cluster.sh assembles a
#                                          private copy of the server with it)
#                             exit 3: not installed and no source to build it from (says how)
#                             exit 1: the build failed (the end of its log is shown)
#
# An extension installed for the server's major version (its timescaledb.control in
# `pg_config --sharedir`/extension) is used as is. Otherwise TimescaleDB is built from the
# source tarball (or unpacked tree) named by TIMESCALEDB_SOURCE, e.g. the 2.28.3 release (the
# last one for PostgreSQL 15). The build is cached by version and server major in
# ${XDG_CACHE_HOME:-~/.cache}/tickflow/, so it costs ~2-4 min on 2 cores once; a later run
# without TIMESCALEDB_SOURCE uses the newest cached build.
#
# Why an overlay rather than `make install` into the server's directories: an extension that
# is installed but not preloaded changes what every other cluster of that server sees
# (`CREATE EXTENSION` then ends the session with FATAL on a tickflow older than the fix for
# it), and installing there needs root. The overlay touches nothing outside the cache and
# the test clusters' temporary directories.
#
# Built with its TSL part (not APACHE_ONLY): compression and the policy jobs live there.
# Build dependencies (Debian/Ubuntu): postgresql-server-dev-<major> cmake libkrb5-dev
# libssl-dev gcc make; installed with apt when missing and this runs as root.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=scripts/pg_cluster.sh
. "$here/pg_cluster.sh"

bindir=$(pg_server_bindir)
major=$(pg_server_major "$bindir")
pg_config="$bindir/pg_config"
[ -x "$pg_config" ] || pg_config=$(command -v pg_config || true)
if [ -n "$pg_config" ]; then
  sharedir=$("$pg_config" --sharedir)
else
  sharedir=/usr/share/postgresql/$major
fi
control="$sharedir/extension/timescaledb.control"

installed_version() {
  sed -nE "s/^default_version *= *'([^']+)'.*/\1/p" "$control" 2>/dev/null
}

if [ -f "$control" ]; then
  echo "timescaledb $(installed_version) is installed for PostgreSQL $major ($control)" >&2
  echo system
  exit 0
fi

cache_root=${XDG_CACHE_HOME:-$HOME/.cache}/tickflow
source_path=${TIMESCALEDB_SOURCE:-}
if [ -z "$source_path" ] || [ ! -e "$source_path" ]; then
  # Built by an earlier run: the newest cached build for this server, without the source.
  built=$(ls -d "$cache_root"/timescaledb-*-pg"$major"/built 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$built" ] && [ -d "$(dirname "$built")/staging" ]; then
    echo "timescaledb built earlier for PostgreSQL $major: overlay $(dirname "$built")/staging" >&2
    echo "$(dirname "$built")/staging"
    exit 0
  fi
  cat >&2 <<EOF
TimescaleDB is not installed for PostgreSQL $major ($control is missing) and there is no
source to build it from (TIMESCALEDB_SOURCE=${source_path:-<unset>}).
To get it: install the extension for PostgreSQL $major (Timescale's packages:
timescaledb-2-postgresql-$major), or point TIMESCALEDB_SOURCE at a TimescaleDB source
tarball (e.g. timescaledb-2.28.3.tar.gz, the last release for PostgreSQL 15) and run
scripts/test again: it builds it (cached) for the test clusters.
EOF
  exit 3
fi

# The version the source builds, from its version.config.
if [ -d "$source_path" ]; then
  version=$(sed -nE 's/^version *= *([^ ]+).*/\1/p' "$source_path/version.config")
else
  version=$(tar -xzOf "$source_path" --wildcards '*/version.config' | sed -nE 's/^version *= *([^ ]+).*/\1/p')
fi
[ -n "$version" ] || { echo "cannot read the TimescaleDB version from $source_path (version.config)" >&2; exit 1; }

# Build dependencies.
need=()
[ -n "$pg_config" ] && [ -f "$("$pg_config" --includedir-server)/postgres.h" ] || need+=("postgresql-server-dev-$major")
command -v cmake >/dev/null 2>&1 || need+=(cmake)
[ -f /usr/include/gssapi/gssapi.h ] || [ -f /usr/include/gssapi.h ] || need+=(libkrb5-dev)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v make >/dev/null 2>&1 || need+=(make)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing TimescaleDB's build dependencies: ${need[*]}" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
    pg_config="$bindir/pg_config"
  else
    echo "cannot build TimescaleDB: missing ${need[*]} (install them, or run as root with apt)" >&2
    exit 1
  fi
fi

cache=$cache_root/timescaledb-$version-pg$major
log="$cache/build.log"
staging="$cache/staging"
mkdir -p "$cache"
if [ ! -f "$cache/built" ]; then
  echo "building TimescaleDB $version for PostgreSQL $major from $source_path in $cache (log: $log)" >&2
  start=$(date +%s)
  rm -rf "$cache/src" "$staging"
  mkdir -p "$cache/src"
  if [ -d "$source_path" ]; then
    cp -a "$source_path/." "$cache/src/"
  else
    tar -xzf "$source_path" -C "$cache/src" --strip-components=1
  fi
  # Installed into a staging tree (DESTDIR) that mirrors the server's directories, never
  # into the server's own: see the header.
  if ! (
    cd "$cache/src" \
      && ./bootstrap -DCMAKE_BUILD_TYPE=Release -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
        -DWARNINGS_AS_ERRORS=OFF -DPG_CONFIG="$pg_config" \
      && make -C build -j"$(nproc)" \
      && make -C build install DESTDIR="$staging"
  ) >"$log" 2>&1; then
    echo "TimescaleDB $version did not build; the end of $log:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  [ -f "$staging$control" ] || { echo "the build did not produce $staging$control" >&2; exit 1; }
  touch "$cache/built"
  echo "built TimescaleDB $version in $(($(date +%s) - start)) s" >&2
fi
echo "timescaledb $version built for PostgreSQL $major: overlay $staging" >&2
echo "$staging"
