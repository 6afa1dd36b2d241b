#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the tree at every patch of the series, in order, so that each patch
# is known to build on its own (with the same config as the test kernel,
# incrementally in the same object directory). The branch is restored
# afterwards, whatever happens.
. "$(dirname "$0")/lib.sh"

[ -d "$KTREE/.git" ] || die "no $KTREE: run 'make tree' first"
[ -z "$(git -C "$KTREE" status --porcelain --untracked-files=no)" ] ||
	die "$KTREE has uncommitted changes: commit or stash them first"
branch=$(git -C "$KTREE" symbolic-ref -q --short HEAD) ||
	die "$KTREE is not on a branch"
mapfile -t commits < <(git -C "$KTREE" rev-list --reverse base..HEAD)
[ ${#commits[@]} -gt 0 ] || { echo "bisect: no patches to build"; exit 0; }

restore() { git -C "$KTREE" checkout -q "$branch"; }
trap restore EXIT

# Every patch is built with the config fragments of the whole series.
export CONFIG_REV
CONFIG_REV=$(git -C "$KTREE" rev-parse HEAD)

start=$(date +%s)
i=0
for c in "${commits[@]}"; do
	i=$((i + 1))
	t0=$(date +%s)
	subj=$(git -C "$KTREE" log -1 --format=%s "$c")
	git -C "$KTREE" checkout -q --detach "$c"
	if ! "$TOP/harness/kernel.sh" --build-only >"$LOGS/bisect-$i.log" 2>&1; then
		echo "FAILED  $i/${#commits[@]} $subj"
		tail -n 30 "$LOGS/bisect-$i.log" | sed 's/^/        /'
		die "patch $i does not build on its own: build/logs/bisect-$i.log"
	fi
	printf 'ok      %d/%d %s (%ds)\n' "$i" "${#commits[@]}" "$subj" $(($(date +%s) - t0))
done
echo "bisect: all ${#commits[@]} patches build"
step_time bisect $(($(date +%s) - start))
