# Throwaway PostgreSQL clusters for the test runner (sourced by scripts/test and
# scripts/timescaledb.sh, not run on its own).
#
# A cluster lives in a temporary directory (data, socket, log), listens on 127.0.0.1 on a
# free port with trust authentication for the `postgres` superuser, and is stopped and
# deleted by pg_cluster_stop. Nothing here touches a system cluster or service.
#
#   pg_server_bindir            the newest installed server's bin/ (installs one with apt when
#                               none is installed and this is root with apt), or fails
#   pg_cluster_start DIR [SETTING...]
#                               initdb into DIR/data, append SETTINGs to postgresql.conf, start;
#                               sets PG_CLUSTER_PORT and PG_CLUSTER_URL. With PG_CLUSTER_OVERLAY
#                               set to a tree that mirrors the server's directories (an extension
#                               built with DESTDIR), the cluster runs a private copy of the server
#                               in DIR/server with the overlay on top: PostgreSQL finds its lib/
#                               and share/ relative to its binaries, so the copy sees the overlay
#                               and the installed server is left as it is.
#   pg_cluster_stop DIR         stop (fast) and delete DIR

# Directories the PostgreSQL server packages install into, newest version first.
pg_installed_bindirs() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -rn); do
    [ -x "$d/postgres" ] && [ -x "$d/initdb" ] && echo "$d"
  done
  # Other layouts (a source build, Homebrew, ...): the initdb on PATH.
  if command -v initdb >/dev/null 2>&1; then
    d=$(dirname "$(readlink -f "$(command -v initdb)")")
    [ -x "$d/postgres" ] && echo "$d"
  fi
}

pg_server_bindir() {
  local bindir
  bindir=$(pg_installed_bindirs | head -n 1)
  if [ -z "$bindir" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL server not installed: installing it with apt-get (package postgresql)" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bindir=$(pg_installed_bindirs | head -n 1)
  fi
  if [ -z "$bindir" ]; then
    echo "no PostgreSQL server found (initdb, postgres): install the server package (Debian/Ubuntu: apt-get install postgresql) or set TEST_DATABASE_URL" >&2
    return 1
  fi
  echo "$bindir"
}

# The server's major version (15 for 15.20).
pg_server_major() {
  "$1/postgres" --version | sed -E 's/[^0-9]*([0-9]+).*/\1/'
}

# Runs a command as the cluster's owner: `postgres` refuses to run as root.
pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pg_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Copies the server whose binaries are in $1 (its bin/ and lib/ parent, and its share
# directory) under $3, lays the overlay $2 on top, and prints the copy's bin/.
pg_private_server() {
  local bindir=$1 overlay=$2 root=$3 prefix sharedir
  prefix=$(dirname "$bindir")
  sharedir=$("$bindir/pg_config" --sharedir) || return 1
  mkdir -p "$root$prefix" "$root$sharedir"
  cp -a "$prefix/." "$root$prefix/" && cp -a "$sharedir/." "$root$sharedir/" && cp -a "$overlay/." "$root/" || return 1
  echo "$root$bindir"
}

pg_cluster_start() {
  local dir=$1; shift
  local bindir
  bindir=$(pg_server_bindir) || return 1
  if [ "$(id -u)" = 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
      echo "running as root, but there is no 'postgres' user to own the cluster" >&2
      return 1
    fi
    chown postgres "$dir"
    if ! runuser -u postgres -- test -w "$dir"; then
      echo "the postgres user cannot reach $dir: every directory above it must be searchable (chmod a+x)" >&2
      return 1
    fi
  fi
  if [ -n "${PG_CLUSTER_OVERLAY:-}" ]; then
    bindir=$(pg_private_server "$bindir" "$PG_CLUSTER_OVERLAY" "$dir/server") || return 1
    [ "$(id -u)" = 0 ] && chown -R postgres "$dir/server"
  fi
  echo "$bindir" >"$dir/bindir"
  pg_as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 -N >"$dir/initdb.log" 2>&1 \
    || pg_as_owner "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-locale -N >"$dir/initdb.log" 2>&1 \
    || { echo "initdb failed:" >&2; cat "$dir/initdb.log" >&2; return 1; }
  local setting port attempt
  for attempt in 1 2 3; do
    port=$(pg_free_port)
    {
      echo "# tickflow test cluster"
      echo "listen_addresses = '127.0.0.1'"
      echo "port = $port"
      echo "unix_socket_directories = '$dir'"
      # A throwaway cluster: durability across an OS crash buys nothing here.
      echo "fsync = off"
      echo "full_page_writes = off"
      echo "synchronous_commit = off"
      echo "max_connections = 200"
      for setting in "$@"; do echo "$setting"; done
    } >>"$dir/data/postgresql.conf"
    if pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1; then
      PG_CLUSTER_PORT=$port
      PG_CLUSTER_URL="postgres://postgres@127.0.0.1:$port/postgres"
      return 0
    fi
    # Another process may have taken the port between the probe and the start: try another.
    sed -i '/^# tickflow test cluster$/,$d' "$dir/data/postgresql.conf"
  done
  echo "the test cluster did not start; its log:" >&2
  cat "$dir/server.log" >&2 2>/dev/null
  return 1
}

pg_cluster_stop() {
  local dir=$1 bindir
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  if [ -f "$dir/data/postmaster.pid" ]; then
    bindir=$(cat "$dir/bindir")
    pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
      || pg_as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}
