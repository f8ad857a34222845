#!/bin/bash
# bench/rest/run.sh [BUILDDIR] — REST API throughput and latency on loopback.
#
# Starts botboard (SQLite, 10,000 seeded posts) and measures with wrk at 64
# keep-alive connections: GET the first page (limit 10), GET with a tag
# filter, POST create.  Starts a static nginx serving a JSON file of the same
# size as our first page and prints our read throughput as a ratio of
# nginx's, then reads the first page at 1,000 concurrent keep-alive
# connections (must finish with no stall and no errors).  Bounded: about
# two minutes.  Targets (issue 4): reads >= 50% of nginx, creates >=
# 5,000/s, p99 < 10 ms for reads at 64 connections.
#   BENCH_SECS (default 8)   seconds per wrk run
#   BENCH_THREADS (default 4) server.threads (poll mode; 2 stalled some of 1,000 connections past 5 s on a loaded machine)
#   BENCH_CACHE_TTL_MS        cache.ttl_ms of the server (unset: the default; 0: no post cache, for before/after)
# Each botboard line ends with the server's CPU time (user+system, from
# /proc/PID/stat) per request: steadier than req/s on a shared machine.
set -u
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$(pwd)}
bin="$build/botboard"
secs=${BENCH_SECS:-8}
threads=${BENCH_THREADS:-4}
posts=10000
for tool in wrk nginx; do
    command -v $tool >/dev/null 2>&1 || [ -x /usr/sbin/$tool ] || { echo "bench-rest: $tool is not installed (apt-get install $tool)"; exit 2; }
done
[ -x "$bin" ] || { echo "bench-rest: no botboard binary at $bin (build first, or pass the build dir)"; exit 2; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ulimit -n 8192 2>/dev/null || true

work=$(mktemp -d /tmp/bb-bench-rest.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

. "$here/../lib.sh"
port=$(bench_free_port)
cat > "$work/botboard.yaml" <<YAML
server:
  listen: 127.0.0.1:$port
  threads: $threads
  poll: poll
  max_connections: 4096
storage:
  backend: sqlite
  sqlite:
    path: bench.db
    connections: $((threads + 2))
session:
  backend: memory
upstream:
  backend: local
logging:
  level: warn
  format: json
ratelimit:
  read: { per_minute: 100000000, burst: 100000000 }
  write: { per_minute: 100000000, burst: 100000000 }
  delete: { per_minute: 100000000, burst: 100000000 }
YAML
[ -n "${BENCH_CACHE_TTL_MS:-}" ] && printf 'cache:\n  ttl_ms: %s\n' "$BENCH_CACHE_TTL_MS" >> "$work/botboard.yaml"
export BOTBOARD_CONFIG="$work/botboard.yaml"

# Seed: one team and 10,000 posts through `botboard import` (one transaction).
now_ms=$(( $(date +%s) * 1000 ))
awk -v n=$posts -v now="$now_ms" 'BEGIN {
    printf "{\"type\":\"team\",\"name\":\"bench\",\"createdAt\":%.0f}\n", now - 86400000;
    for (i = 1; i <= n; i++) {
        id = sprintf("01BENCH%019d", i);
        printf "{\"type\":\"post\",\"id\":\"%s\",\"team\":\"bench\",\"author\":\"agent%d\",\"content\":\"Seeded post number %d: agents discussing the plan for today, with enough words to look like a real post.\",\"tags\":[\"t%d\",\"seed\"],\"parentId\":null,\"threadId\":\"%s\",\"createdAt\":%.0f,\"deletedAt\":null}\n", id, i % 40, i, i % 50, id, now - (n - i) * 1000;
    }
}' > "$work/seed.jsonl"
"$bin" import < "$work/seed.jsonl" >"$work/import.log" 2>&1 || { echo "bench-rest: import failed:"; cat "$work/import.log"; exit 1; }
key=$("$bin" key create --team bench 2>/dev/null) || { echo "bench-rest: key create failed"; exit 1; }

"$bin" serve >"$work/serve.log" 2>&1 &
pids+=($!)
server_pid=$!
base="http://127.0.0.1:$port"
bench_wait_http "$base/healthz" "$work/serve.log" bench-rest

page="/v1/teams/bench/posts?limit=10"
curl -s -H "Authorization: Bearer $key" "$base$page" > "$work/page.json"
size=$(wc -c < "$work/page.json")
grep -q '"totalCount":10000' "$work/page.json" || { echo "bench-rest: unexpected first page: $(head -c 300 "$work/page.json")"; exit 1; }

cpu_ticks() {   # utime + stime of a process, in clock ticks
    awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)

# wrk summary → "req/s p50 p99 errors non2xx cpu-us/req" (cpu "-" unless cpu_pid is set)
cpu_pid=
run_wrk() {   # conns secs url [extra wrk args...]
    local conns=$1 s=$2 url=$3 t0=0 t1=0; shift 3
    [ -n "$cpu_pid" ] && t0=$(cpu_ticks "$cpu_pid")
    wrk -t2 -c"$conns" -d"${s}s" --latency --timeout 5s "$@" "$url" > "$work/wrk.out" 2>&1
    [ -n "$cpu_pid" ] && t1=$(cpu_ticks "$cpu_pid")
    awk -v t0="$t0" -v t1="$t1" -v hz="$clk_tck" -v have="${cpu_pid:+1}" '
        /Requests\/sec/ { rps = $2 }
        / requests in / { reqs = $1 }
        /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
        /Socket errors/ { gsub(",", ""); err = $4 + $6 + $8 + $10 }
        /Non-2xx/ { non2xx = $NF }
        END {
            cpu = (have && reqs > 0) ? sprintf("%.1f", (t1 - t0) * 1e6 / hz / reqs) : "-"
            printf "%s %s %s %d %d %s\n", rps, p50, p99, err, non2xx, cpu
        }' "$work/wrk.out"
}
ms() {   # wrk latency (e.g. 850.00us, 1.20ms, 1.01s) → ms
    awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}
report() {   # label result
    read -r rps p50 p99 err non2xx cpu <<<"$2"
    printf "%-34s %10.0f req/s   p50 %6s ms   p99 %6s ms   errors %d   non-2xx %d   cpu %s us/req\n" "$1" "$rps" "$(ms "$p50")" "$(ms "$p99")" "$err" "$non2xx" "$cpu"
}

echo "botboard REST benchmark — $(nproc) cores, server.threads=$threads, $posts seeded posts, first page $size bytes, ${secs}s per run, cache.ttl_ms ${BENCH_CACHE_TTL_MS:-default}"
cpu_pid=$server_pid
auth=(-H "Authorization: Bearer $key")
wrk -t2 -c64 -d2s "${auth[@]}" "$base$page" >/dev/null 2>&1   # warm-up
first=$(run_wrk 64 "$secs" "$base$page" "${auth[@]}")
report "GET first page (limit 10), 64c" "$first"
tagged=$(run_wrk 64 "$secs" "$base/v1/teams/bench/posts?limit=10&tag=t7" "${auth[@]}")
report "GET tag filter (limit 10), 64c" "$tagged"
created=$(BB_KEY=$key BB_TEAM=bench run_wrk 64 "$secs" "$base" -s "$here/post.lua")
report "POST create, 64c" "$created"
cpu_pid=   # nginx: not our process

# nginx: the same number of bytes from a static file.
nport=$(bench_free_port)
mkdir -p "$work/nginx/html" "$work/nginx/tmp"
cp "$work/page.json" "$work/nginx/html/page.json"
chmod -R a+rX "$work"   # nginx workers run as an unprivileged user when started as root
cat > "$work/nginx/nginx.conf" <<NGINX
daemon off;
master_process on;
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp;
    proxy_temp_path $work/nginx/tmp;
    fastcgi_temp_path $work/nginx/tmp;
    uwsgi_temp_path $work/nginx/tmp;
    scgi_temp_path $work/nginx/tmp;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$nport;
        root $work/nginx/html;
        default_type application/json;
    }
}
NGINX
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>>"$work/nginx/error.log" &
pids+=($!)
bench_wait_http "http://127.0.0.1:$nport/page.json" "$work/nginx/error.log" bench-rest
wrk -t2 -c64 -d2s "http://127.0.0.1:$nport/page.json" >/dev/null 2>&1
ngx=$(run_wrk 64 "$secs" "http://127.0.0.1:$nport/page.json")
report "nginx static $size-byte JSON, 64c" "$ngx"
kill "${pids[-1]}" 2>/dev/null; wait "${pids[-1]}" 2>/dev/null; unset 'pids[-1]'

# 1,000 concurrent keep-alive connections on the first page.
cpu_pid=$server_pid
many=$(run_wrk 1000 "$secs" "$base$page" "${auth[@]}")
report "GET first page, 1000c" "$many"

read -r f_rps _ f_p99 _ _ _ <<<"$first"
read -r _ _ t_p99 _ _ _ <<<"$tagged"
read -r n_rps _ _ _ _ _ <<<"$ngx"
read -r c_rps _ _ _ _ _ <<<"$created"
read -r m_rps _ _ m_err m_non _ <<<"$many"
ratio=$(awk -v a="$f_rps" -v b="$n_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
echo
echo "first-page reads / nginx static: $ratio (target >= 0.50)"
awk -v r="$ratio" -v c="$c_rps" -v p="$(ms "$f_p99")" -v tp="$(ms "$t_p99")" -v me="$m_err" -v mn="$m_non" -v mr="$m_rps" 'BEGIN {
    ok = 1
    if (r < 0.5) { print "  MISS: reads below 50% of nginx"; ok = 0 }
    if (c < 5000) { print "  MISS: creates below 5,000/s"; ok = 0 }
    if (p >= 10) { print "  MISS: first-page read p99 not under 10 ms"; ok = 0 }
    if (tp >= 10) { print "  MISS: tag-filter read p99 not under 10 ms"; ok = 0 }
    if (me > 0 || mn > 0 || mr <= 0) { print "  MISS: errors or a stall at 1,000 connections"; ok = 0 }
    if (ok) print "all targets met"
}'
