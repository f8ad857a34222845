# bench/lib.sh — what the benchmark scripts share (sourced; POSIX sh):
# a free loopback port, a bounded wait for a server to answer, and an MCP
# session opened the way a client opens one.

# A loopback port nothing listens on (curl exit 7: connection refused).
bench_free_port() {
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        p=$(( 20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 40000 ))
        rc=0
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$p/" 2>/dev/null || rc=$?   # (set -e safe)
        if [ "$rc" -eq 7 ]; then echo "$p"; return 0; fi
    done
    echo "bench: no free port found" >&2
    return 1
}

# bench_wait_http URL LOG NAME: poll until URL answers, at most 10 s; on
# failure print the end of LOG and exit.
bench_wait_http() {
    i=0
    until curl -fs -o /dev/null --max-time 1 "$1" 2>/dev/null; do
        i=$((i + 1))
        if [ $i -ge 200 ]; then
            echo "$3: $1 did not answer:" >&2
            [ -f "$2" ] && tail -5 "$2" >&2
            exit 1
        fi
        sleep 0.05
    done
}

# bench_mcp_session BASE_URL KEY: initialize + notifications/initialized;
# prints the Mcp-Session-Id (empty when the server gave none).
bench_mcp_session() {
    sid=$(curl -fs -D - -o /dev/null "$1/mcp" \
        -H "Authorization: Bearer $2" -H 'Content-Type: application/json' \
        -H 'Accept: application/json, text/event-stream' \
        -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' \
        | tr -d '\r' | awk 'tolower($1)=="mcp-session-id:" {print $2}')
    [ -n "$sid" ] && curl -fs -o /dev/null "$1/mcp" -H "Authorization: Bearer $2" \
        -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
        -H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-11-25' \
        -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
    echo "$sid"
}
