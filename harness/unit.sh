#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make unit: the kernel tree's userspace tests of code the series changes,
# built and run on the host: tools/testing/memblock (mm/memblock.c).
. "$(dirname "$0")/lib.sh"

[ -d "$KTREE/.git" ] || die "no $KTREE: run 'make tree' first"
t=$KTREE/tools/testing/memblock
start=$(date +%s)
if ! make -s -C "$t" -j"$JOBS" >"$LOGS/memblock-tests.log" 2>&1; then
	tail -n 20 "$LOGS/memblock-tests.log" >&2
	die "tools/testing/memblock does not build: build/logs/memblock-tests.log"
fi
if ! (cd "$t" && ./main -v) >>"$LOGS/memblock-tests.log" 2>&1; then
	grep -i fail "$LOGS/memblock-tests.log" | head -n 20 >&2
	die "memblock tests failed: build/logs/memblock-tests.log"
fi
echo "memblock tests: $(grep -c ': passed' "$LOGS/memblock-tests.log") passed"
make -s -C "$t" clean >/dev/null 2>&1 || true
step_time unit $(($(date +%s) - start))
