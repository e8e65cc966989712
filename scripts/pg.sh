#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests.
#
#   scripts/pg.sh start DIR   initdb in DIR/data (once), start it, print its base URL
#   scripts/pg.sh url DIR     print the base URL again
#   scripts/pg.sh stop DIR    stop it (fast shutdown) and remove DIR
#   scripts/pg.sh halt DIR    stop it (fast shutdown) and keep DIR: `start` brings it back
#                             (tests of a database that goes away and comes back)
#   scripts/pg.sh standby DIR restart it as a hot standby of no primary (in recovery:
#                             reads only, as after a failover), print its base URL
#   scripts/pg.sh promote DIR end the recovery: it takes writes again
#
# The URL names the role `taskmill` (a superuser, trust auth) and the database
# `postgres`; tests replace the database with a fresh one of their own:
#   postgres://taskmill@/postgres?host=DIR&port=5432
# The server listens on no TCP address, only on a unix socket in DIR, so any
# number of clusters can run at once. fsync is off: the data is thrown away.
#
# It uses the newest /usr/lib/postgresql/*/bin (Debian's `postgresql`, which
# `scripts/deps.sh --test` installs). initdb refuses to run as root, so as root
# the cluster runs as the system user `taskmill-pg` (made here when missing);
# DIR is then owned by it and left world-readable so that root can connect.
# Never reads stdin; every wait is bounded; start and stop are idempotent.
set -euo pipefail

die() {
  echo "pg.sh: $*" >&2
  exit 1
}

usage() {
  echo "usage: scripts/pg.sh start|stop|halt|standby|promote|url DIR" >&2
  exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2
[ -n "$dir" ] || usage
case "$dir" in /*) ;; *) dir="$PWD/$dir" ;; esac
dir=${dir%/}
# DIR goes into a URL and a config file unquoted: keep it plain.
case "$dir" in *[!A-Za-z0-9/._+-]*) die "'$dir': only letters, digits and / . _ + - are allowed in DIR" ;; esac
port=5432
# A unix socket path is at most 107 bytes.
[ ${#dir} -le 90 ] || die "'$dir' is too long for a unix socket directory (at most 90 bytes)"

url() {
  echo "postgres://taskmill@/postgres?host=$dir&port=$port"
}

pgbin() {
  local b
  b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$b" ] && [ -x "$b/pg_ctl" ] && [ -x "$b/initdb" ] ||
    die "no PostgreSQL server in /usr/lib/postgresql/*/bin (run scripts/deps.sh --test)"
  echo "$b"
}

# Runs a command as the cluster's owner: taskmill-pg when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u taskmill-pg -- "$@" </dev/null
  else
    "$@" </dev/null
  fi
}

running() {
  [ -f "$dir/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

start() {
  if [ "$(id -u)" -eq 0 ] && ! id -u taskmill-pg >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      taskmill-pg </dev/null || id -u taskmill-pg >/dev/null 2>&1 ||
      die "cannot create the user 'taskmill-pg'"
  fi
  mkdir -p "$dir"
  if [ "$(id -u)" -eq 0 ]; then
    chown taskmill-pg: "$dir"
    [ -d "$dir/data" ] && chown -R taskmill-pg: "$dir/data"
  fi
  chmod 755 "$dir"
  as_owner test -w "$dir" ||
    die "'$dir' is not writable by $(as_owner id -un); its parent directories must be searchable"

  if running; then
    url
    return
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    rm -rf "$dir/data"
    as_owner timeout -k 5 120 "$bin/initdb" -D "$dir/data" -U taskmill --auth=trust \
      --encoding=UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 ||
      die "initdb failed: $(tail -n 20 "$dir/initdb.log")"
    # ~10 servers at once, each with a writer, readers and a listener.
    cat >>"$dir/data/postgresql.conf" <<EOF

# scripts/pg.sh: a throwaway cluster for tests
listen_addresses = ''
unix_socket_directories = '$dir'
unix_socket_permissions = 0777
port = $port
max_connections = 300
shared_buffers = 128MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 1GB
log_min_messages = warning
log_checkpoints = off
log_line_prefix = '%m [%p] %d '
EOF
  fi
  # A postmaster.pid left by a killed cluster: pg_ctl start checks whether
  # its process lives and goes on when it does not.
  if ! as_owner timeout -k 5 60 "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 45 \
    start >"$dir/pg_ctl.log" 2>&1; then
    die "the server did not start: $(tail -n 20 "$dir/server.log" 2>/dev/null)"
  fi
  url
}

halt() {
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_owner timeout -k 5 40 "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    die "the server did not stop: $(tail -n 20 "$dir/server.log" 2>/dev/null)"
}

stop() {
  [ -d "$dir" ] || return 0
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner timeout -k 5 40 "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_owner timeout -k 5 20 "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop \
        >/dev/null 2>&1 || true
    # Still there (a wedged postmaster): kill it, by the pid it wrote.
    if [ -f "$dir/data/postmaster.pid" ]; then
      pid=$(head -n 1 "$dir/data/postmaster.pid")
      case "$pid" in '' | *[!0-9]*) ;; *) kill -KILL "$pid" 2>/dev/null || true ;; esac
    fi
  fi
  rm -rf "$dir"
}

case "$cmd" in
start)
  bin=$(pgbin)
  start
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then bin=$(pgbin); fi
  stop
  ;;
halt)
  bin=$(pgbin)
  halt
  ;;
standby)
  bin=$(pgbin)
  halt
  as_owner touch "$dir/data/standby.signal"
  start
  ;;
promote)
  bin=$(pgbin)
  as_owner timeout -k 5 60 "$bin/pg_ctl" -D "$dir/data" -w -t 45 promote >"$dir/pg_ctl.log" 2>&1 ||
    die "the server was not promoted: $(tail -n 20 "$dir/server.log" 2>/dev/null)"
  ;;
url) url ;;
*) usage ;;
esac
