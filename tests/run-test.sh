#!/bin/sh
# tests/run-test.sh — LOG_COMPILER for `make check`.  With BB_VALGRIND=1 the
# test program (and every process it forks or execs: Criterion workers,
# botboard servers) runs under valgrind memcheck; any error fails the test.
if [ "${BB_VALGRIND:-0}" = 1 ]; then
    exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
        --trace-children=yes --trace-children-skip='*/node,*/npm,*/postgres,*/initdb,*/pg_ctl,*/redis-server,*/redis-cli,*/runuser,*/sh,*/bash,*/psql,*/createdb' \
        --track-fds=no --child-silent-after-fork=no \
        --suppressions="$(dirname "$0")/valgrind.supp" "$@"
fi
exec "$@"
