#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scripts/checkpatch.pl --strict on every patch of the series: any error,
# warning or check fails.
. "$(dirname "$0")/lib.sh"

[ -x "$KTREE/scripts/checkpatch.pl" ] || die "no $KTREE: run 'make tree' first"
n=0 bad=0
for p in $(series_patches); do
	n=$((n + 1))
	out=$(cd "$KTREE" && ./scripts/checkpatch.pl --strict --color=never \
		--summary-file --show-types "$TOP/patches/$p" 2>&1) || true
	total=$(grep -E '^total: ' <<<"$out" | tail -n1)
	if [[ "$total" =~ ^total:\ 0\ errors,\ 0\ warnings,\ 0\ checks ]]; then
		printf 'ok      %s\n' "$p"
	else
		printf 'FAILED  %s: %s\n' "$p" "$total"
		grep -E '^(ERROR|WARNING|CHECK):|^#[0-9]+: FILE:|^\+' <<<"$out" | head -60 | sed 's/^/        /'
		bad=$((bad + 1))
	fi
done
echo "checkpatch --strict: $n patches, $bad with findings"
[ $bad = 0 ]
