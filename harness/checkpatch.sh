#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# scripts/checkpatch.pl --strict on every patch of the series: any error,
# warning or check fails.
. "$(dirname "$0")/lib.sh"

# spdxcheck.py needs Debian's python3-ply: use the system python3.
export PATH=/usr/bin:$PATH

[ -x "$KTREE/scripts/checkpatch.pl" ] || die "no $KTREE: run 'make tree' first"
n=0 bad=0
for p in $(series_patches); do
	n=$((n + 1))
	out=$(cd "$KTREE" && ./scripts/checkpatch.pl --strict --color=never \
		--show-types "$TOP/patches/$p" 2>&1) || true
	total=$(grep -E "^total: " <<<"$out" | tail -n1 || true)
	# A helper that cannot run (spdxcheck.py without python3-ply or
	# python3-git) would silently skip its checks.
	if grep -q '^Traceback' <<<"$out"; then
		total="checkpatch could not run all its checks: $(grep -m1 Error <<<"$out")"
	fi
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
