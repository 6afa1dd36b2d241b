#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make check: everything CI checks, in order, each step timed. Stops at the
# first step that fails. BISECT=0 leaves out the per-patch builds; they
# stop, saying so, where they would run past CHECK_BUDGET seconds from the
# start (default 38 minutes: CI allows 90, the project asks for under 40).
. "$(dirname "$0")/lib.sh"

steps=(deps tree export-check checkpatch unit kernel harness-selftest vmtest)
[ "${BISECT:-1}" = 1 ] && steps+=(bisect)

mkdir -p "$LOGS"
: > "$LOGS/check-times"
total0=$(date +%s)
export BISECT_UNTIL=$((total0 + ${CHECK_BUDGET:-2280}))
for s in "${steps[@]}"; do
	printf '\n==== make %s\n' "$s"
	t0=$(date +%s)
	if ! make -s -C "$TOP" "$s"; then
		printf '\n==== make check: FAILED at "make %s" after %ds\n' "$s" $(($(date +%s) - total0))
		exit 1
	fi
	printf '%-18s %5ds\n' "$s" $(($(date +%s) - t0)) >> "$LOGS/check-times"
done
printf '%-18s %5ds\n' total $(($(date +%s) - total0)) >> "$LOGS/check-times"
printf '\n==== make check: passed; step times (build/logs/check-times):\n'
cat "$LOGS/check-times"
# The vmtest summary is the last word.
tail -n1 "$LOGS/vmtest.tap"
