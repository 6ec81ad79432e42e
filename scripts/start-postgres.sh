#!/usr/bin/env bash
# A throwaway PostgreSQL server for the log store, outside pytest: to keep one server across test
# runs (the test set-up otherwise starts one per session) or to look at a store with psql.
#
#   eval "$(scripts/start-postgres.sh)"        # starts it, exports SUPPORTLOOP_TEST_PG_URL
#   .venv/bin/python -m pytest tests/agent -k store
#   scripts/start-postgres.sh stop "$SUPPORTLOOP_PG_DIR"
#
# Needs the PostgreSQL server binaries (apt-get install postgresql, or `make system-deps`). The
# data is thrown away: fsync is off, trust authentication on 127.0.0.1 only.
set -euo pipefail

pg_bin() {
  local initdb
  initdb=$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -n 1 || true)
  [ -n "$initdb" ] || initdb=$(command -v initdb || true)
  [ -n "$initdb" ] || { echo "start-postgres: no PostgreSQL binaries; apt-get install postgresql" >&2; exit 1; }
  dirname "$initdb"
}

as_owner() {  # initdb refuses to run as root
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ "${1:-start}" = stop ]; then
  dir=${2:?usage: start-postgres.sh stop DIR}
  as_owner "$(pg_bin)/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  rm -rf "$dir"
  exit 0
fi

bin=$(pg_bin)
dir=$(mktemp -d /tmp/supportloop-pg-XXXXXX)
[ "$(id -u)" = 0 ] && chown postgres "$dir"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >/dev/null
as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >&2
as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres supportloop_test
echo "export SUPPORTLOOP_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:$port/supportloop_test"
echo "export SUPPORTLOOP_PG_DIR=$dir"
