#!/usr/bin/env bash
# dev.sh — BotBoard's two quick-start commands on Debian 12.
#
#   ./dev.sh run     install build dependencies, build, run `botboard serve`
#                    on the embedded defaults (SQLite + memory sessions + local)
#   ./dev.sh bench   install wrk and nginx too, build, run every benchmark
#   ./dev.sh test    install build and test dependencies, build with warnings
#                    as errors, run the whole suite, then again under
#                    AddressSanitizer + UndefinedBehaviorSanitizer, and the
#                    end-to-end suites once more under valgrind
#
# PostgreSQL and Redis are started by the tests themselves (temp dirs, free
# ports on 127.0.0.1); only their packages are needed.
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DEPS=(build-essential autoconf automake libtool pkg-config
    libmicrohttpd-dev libjansson-dev libyaml-dev libsqlite3-dev libsodium-dev
    libpq-dev libhiredis-dev libcurl4-openssl-dev)
TEST_DEPS=(libcriterion-dev postgresql redis-server nodejs npm groff-base valgrind openssl)
BENCH_DEPS=(wrk nginx-light)

# Suites run a third time under valgrind (see tests/run-test.sh).
VALGRIND_TESTS=(tests/test_config tests/test_loader tests/test_serve)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
    local missing=()
    for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
    # node/npm may come from elsewhere than Debian: only install when absent
    if command -v node >/dev/null && command -v npm >/dev/null; then
        local keep=(); for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || keep+=("$p"); done
        missing=("${keep[@]}")
    fi
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "dev.sh: installing ${missing[*]}" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build() {   # build DIR [configure args...]
    local dir=$1; shift
    [ -x configure ] || autoreconf -fi
    mkdir -p "$dir"
    (cd "$dir" && { [ -f Makefile ] || ../configure "$@"; } && make -j"$(nproc)")
}

case "${1:-}" in
run)
    install_packages "${BUILD_DEPS[@]}"
    build _build
    echo "dev.sh: starting botboard on http://127.0.0.1:8080 (Ctrl-C stops it)" >&2
    exec ./_build/botboard serve
    ;;
test)
    install_packages "${BUILD_DEPS[@]}" "${TEST_DEPS[@]}"
    build _build --enable-werror
    make -C _build -j"$(nproc)" check
    build _build-asan --enable-werror --enable-sanitizers
    make -C _build-asan -j"$(nproc)" check
    # valgrind memcheck over the suites that drive the binary end to end
    # (every botboard the harness starts runs under valgrind too).
    make -C _build -j"$(nproc)" check BB_VALGRIND=1 TESTS="${VALGRIND_TESTS[*]}"
    echo "dev.sh: all tests passed (plain, sanitized and valgrind runs)" >&2
    ;;
bench)
    install_packages "${BUILD_DEPS[@]}" "${TEST_DEPS[@]}" "${BENCH_DEPS[@]}"
    build _build
    for b in storage storage-postgres sessions rest mcp gateway; do make -C _build "bench-$b"; done
    ;;
*)
    echo "usage: ./dev.sh run | ./dev.sh test | ./dev.sh bench" >&2
    exit 2
    ;;
esac
