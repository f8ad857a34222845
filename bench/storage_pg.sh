#!/bin/sh
# bench/storage_pg.sh — run the storage benchmark (bench/storage_bench) on
# PostgreSQL: a throwaway server (initdb in a temp dir, loopback only, as
# the `postgres` user when run as root), stopped and removed afterwards.
#   BB_BENCH_POSTS   posts to load (default 1000000)
#   BB_BENCH_PG_PORT port for the throwaway server (default 55433)
#   BB_PG_BINDIR     PostgreSQL's bin directory (default: newest installed)
# Run from the build tree: `make bench-storage-postgres`.
set -eu
builddir=$(pwd)
bench="$builddir/bench/storage_bench"
[ -x "$bench" ] || { echo "storage_pg.sh: $bench not built (make check builds it)" >&2; exit 2; }
pgbin=${BB_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$pgbin/initdb" ] || { echo "storage_pg.sh: PostgreSQL not installed (apt-get install postgresql)" >&2; exit 2; }
port=${BB_BENCH_PG_PORT:-55433}
dir=$(mktemp -d "${TMPDIR:-/tmp}/bb-bench-pg-XXXXXX")
as_pg() {
    if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi
}
cleanup() {
    as_pg "'$pgbin/pg_ctl' -D '$dir/data' -m fast -w stop" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
[ "$(id -u)" = 0 ] && chown postgres "$dir"
as_pg "'$pgbin/initdb' -D '$dir/data' -A trust -U botboard" >/dev/null
# Durable defaults (fsync on, synchronous_commit on); only memory is raised.
as_pg "'$pgbin/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 60 -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c shared_buffers=256MB\" start" >/dev/null
"$pgbin/createdb" -h 127.0.0.1 -p "$port" -U botboard bench
echo "PostgreSQL $("$pgbin/postgres" -V | awk '{print $3}') on 127.0.0.1:$port (fsync on, shared_buffers 256MB)"
BB_BENCH_BACKEND=postgres BB_BENCH_CONNINFO="host=127.0.0.1 port=$port dbname=bench user=botboard" "$bench"
