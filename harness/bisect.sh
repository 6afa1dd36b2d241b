#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Build the tree at every patch of the series, so that each patch is known
# to build on its own (with the same config as the test kernel,
# incrementally in the same object directory). Patches that touch only
# Documentation/, tools/ or MAINTAINERS are not built again. The branch is
# restored afterwards, whatever happens.
. "$(dirname "$0")/lib.sh"

[ -d "$KTREE/.git" ] || die "no $KTREE: run 'make tree' first"
[ -z "$(git -C "$KTREE" status --porcelain --untracked-files=no)" ] ||
	die "$KTREE has uncommitted changes: commit or stash them first"
branch=$(git -C "$KTREE" symbolic-ref -q --short HEAD) ||
	die "$KTREE is not on a branch"
mapfile -t commits < <(git -C "$KTREE" rev-list --reverse base..HEAD)
n=${#commits[@]}
[ "$n" -gt 0 ] || { echo "bisect: no patches to build"; exit 0; }

restore() { git -C "$KTREE" checkout -q "$branch"; }
trap restore EXIT

# Every patch is built with the config fragments of the whole series.
export CONFIG_REV
CONFIG_REV=$(git -C "$KTREE" rev-parse HEAD)

# From the last patch back to the first: the object directory holds the
# build of the whole series (make kernel), so each step only rebuilds what
# one patch changed, instead of first undoing the whole series.
# BISECT_UNTIL (seconds since the epoch; make check sets it from its time
# budget) stops before a build that would likely end after it, and says
# which patches were not built.
start=$(date +%s)
longest=120
for ((i = n; i >= 1; i--)); do
	c=${commits[i - 1]}
	t0=$(date +%s)
	subj=$(git -C "$KTREE" log -1 --format=%s "$c")
	# A patch that changes no file the kernel build reads (documentation,
	# selftests, MAINTAINERS) builds exactly as the one before it.
	if ! git -C "$KTREE" diff-tree --no-commit-id --name-only -r "$c" |
		grep -qvE '^(Documentation/|tools/|MAINTAINERS$)'; then
		printf 'ok      %d/%d %s (no kernel code: builds as patch %d)\n' \
			"$i" "$n" "$subj" $((i - 1))
		continue
	fi
	if [ -n "${BISECT_UNTIL:-}" ] && [ $((t0 + longest)) -gt "$BISECT_UNTIL" ]; then
		echo "bisect: out of time (make check's budget): patches 1-$i not built; run 'make bisect' for all"
		step_time bisect $(($(date +%s) - start))
		exit 0
	fi
	git -C "$KTREE" checkout -q --detach "$c"
	if ! "$TOP/harness/kernel.sh" --build-only >"$LOGS/bisect-$i.log" 2>&1; then
		echo "FAILED  $i/$n $subj"
		tail -n 30 "$LOGS/bisect-$i.log" | sed 's/^/        /'
		die "patch $i does not build on its own: build/logs/bisect-$i.log"
	fi
	t=$(($(date +%s) - t0))
	[ $t -gt $longest ] && longest=$t
	printf 'ok      %d/%d %s (%ds)\n' "$i" "$n" "$subj" $t
done
echo "bisect: all $n patches build"
step_time bisect $(($(date +%s) - start))
