#!/bin/sh
# tests/openapi/run-check.sh SRC_DIR WORK_DIR DOC RECORD_DIR
# Runs check.mjs with its pinned packages (package-lock.json) installed into
# WORK_DIR (the source tree may be read-only, as in distcheck).
# Exit 77 = skip (node/npm missing or the packages cannot be installed).
set -u
src=$1 work=$2 doc=$3 rec=$4
command -v node >/dev/null 2>&1 || { echo "node is not installed"; exit 77; }
command -v npm >/dev/null 2>&1 || { echo "npm is not installed"; exit 77; }
mkdir -p "$work" || exit 1
for f in package.json package-lock.json check.mjs; do
    cp "$src/$f" "$work/$f" && chmod u+w "$work/$f" || exit 1
done
if [ ! -d "$work/node_modules/openapi-backend" ] || [ "$src/package-lock.json" -nt "$work/node_modules" ]; then
    if ! (cd "$work" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1); then
        echo "npm ci failed (registry unreachable?): $(tail -c 400 "$work/npm.log" | tr '\n' ' ')"
        exit 77
    fi
    touch "$work/node_modules"
fi
cd "$work" && exec node check.mjs "$doc" "$rec"
