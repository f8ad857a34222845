#!/bin/sh
# tests/man_pages.sh — every man page renders with no groff warning, and
# botboard.yaml(5) documents every key `botboard config-reference` knows.
set -u
srcdir=${srcdir:-.}
builddir=${BB_BUILDDIR:-.}
command -v groff >/dev/null 2>&1 || { echo "SKIP: groff not installed (Debian groff-base)"; exit 77; }
fail=0
for page in "$srcdir/man/botboard.1" "$srcdir/man/botboard-plugins.7" "$builddir/man/botboard.yaml.5"; do
    warnings=$(groff -man -Tutf8 -ww "$page" 2>&1 >/dev/null)
    if [ -n "$warnings" ]; then echo "FAIL: $page: $warnings"; fail=1; else echo "ok: $page renders cleanly"; fi
done
keys=$("$builddir/botboard" config-reference | awk '/^[a-z][a-z0-9_.]*[ \t]/ { print $1 }')
[ -n "$keys" ] || { echo "FAIL: config-reference printed no keys"; exit 1; }
missing=0
for k in $keys; do
    grep -q -F -- "$(printf '%s' "$k" | sed 's/-/\\-/g')" "$builddir/man/botboard.yaml.5" || { echo "FAIL: $k missing from botboard.yaml(5)"; missing=1; }
done
[ $missing -eq 0 ] && echo "ok: botboard.yaml(5) lists all $(echo "$keys" | wc -l) keys"
[ $fail -eq 0 ] && [ $missing -eq 0 ]
