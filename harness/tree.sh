#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# build/linux: the base (tag "base") plus the series applied with git am.
#
#   KSRC=/path/to/linux   use a user's own 6.12 git tree instead of the
#                         Debian source: it is cloned (hard links, their
#                         checkout untouched), the series is applied on a
#                         new branch, and that branch is pushed back to
#                         their repository as liveupdate-series[-N].
#   FORCE=1               rebuild even if build/linux has work that was
#                         not exported (it is kept on a backup branch).
. "$(dirname "$0")/lib.sh"
git_ident

KSRC=${KSRC:-}
FORCE=${FORCE:-0}

patch_ids() {	# patch-ids of a stream of patches or commits
	git patch-id --stable | awk '{print $1}' | sort -u
}

# Commits on the branch whose change is in no exported patch, plus
# uncommitted changes to tracked files: work that a rebuild would lose.
unexported_work() {
	local branch series
	if [ -n "$(git -C "$KTREE" status --porcelain --untracked-files=no)" ]; then
		echo "uncommitted changes"
		return
	fi
	if [ -d "$KTREE/.git/rebase-apply" ] || [ -d "$KTREE/.git/rebase-merge" ]; then
		echo "a git am or rebase in progress"
		return
	fi
	git -C "$KTREE" rev-parse -q --verify base >/dev/null || return 0
	series=$(cd "$TOP" && series_patches | sed 's|^|patches/|' |
		 xargs -r cat | patch_ids)
	for c in $(git -C "$KTREE" rev-list --no-merges base..HEAD); do
		id=$(git -C "$KTREE" show "$c" | patch_ids)
		[ -z "$id" ] && continue	# empty commit
		if ! grep -qxF "$id" <<<"$series"; then
			git -C "$KTREE" log -1 --format='commit %h %s' "$c"
		fi
	done
}

# Ordered patch-ids: of the branch, and of the series.
branch_ids() {
	local c
	git -C "$KTREE" rev-parse -q --verify base >/dev/null || return 0
	for c in $(git -C "$KTREE" rev-list --reverse --no-merges base..HEAD); do
		git -C "$KTREE" show "$c" | git patch-id --stable | awk '{print $1}'
	done
}
series_ids() {
	local p
	for p in $(series_patches); do
		git patch-id --stable < "$TOP/patches/$p" | awk '{print $1}'
	done
}

check_base_version() {
	local want have
	want=$(series_base_pkgver)
	have=$(dpkg-query -W -f='${Version}' "$DEB_PKG" 2>/dev/null || true)
	[ -n "$have" ] || die "$DEB_PKG is not installed: run 'make deps'"
	if [ -n "$want" ] && [ "$want" != "$have" ]; then
		warn "series was exported on $DEB_PKG $want, installed is $have;"
		warn "the patches may need refreshing (git am will tell)"
	fi
}

fresh_from_debian() {
	local ver date
	check_base_version
	msg "extracting $DEB_TARBALL into $KTREE"
	rm -rf "$KTREE.tmp"
	mkdir -p "$KTREE.tmp"
	tar -xf "$DEB_TARBALL" -C "$KTREE.tmp" --strip-components=1
	# Debian appends "ignore every top-level path" to the kernel's
	# .gitignore for its packaging repository; without removing it, files
	# the series adds at new paths would silently stay untracked.
	python3 - "$KTREE.tmp/.gitignore" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r'(\n#\n)?# Debian packaging: ignore everything.*\Z', '', s, flags=re.S)
open(p, 'w').write(s.rstrip('\n') + '\n')
PY
	grep -qx '/\*' "$KTREE.tmp/.gitignore" && die "could not strip Debian's /* from .gitignore"
	ver=$(make -s -C "$KTREE.tmp" kernelversion)
	date=$(stat -c %Y "$KTREE.tmp/Makefile")
	pkgver=$(dpkg-query -W -f='${Version}' "$DEB_PKG")
	msg "committing Linux $ver ($DEB_PKG $pkgver) as tag base"
	(
		cd "$KTREE.tmp"
		git init -q -b series
		git add -A -f .
		GIT_AUTHOR_NAME="$DEB_PKG" GIT_AUTHOR_EMAIL="debian-kernel@lists.debian.org" \
		GIT_AUTHOR_DATE="@$date" GIT_COMMITTER_DATE="@$date" \
		GIT_COMMITTER_NAME="$DEB_PKG" GIT_COMMITTER_EMAIL="debian-kernel@lists.debian.org" \
			git commit -q -m "Linux $ver ($DEB_PKG $pkgver)" \
				-m "Base of the live update series: the kernel source of Debian's
$DEB_PKG package, version $pkgver, with Debian's packaging
rule removed from the top-level .gitignore."
		git tag base
	)
	mv "$KTREE.tmp" "$KTREE"
}

fresh_from_ksrc() {
	local head ver
	git -C "$KSRC" rev-parse --git-dir >/dev/null 2>&1 || die "KSRC=$KSRC is not a git tree"
	ver=$(make -s -C "$KSRC" kernelversion 2>/dev/null || true)
	case "$ver" in
	6.12|6.12.*) ;;
	*) warn "KSRC is Linux '$ver', the series is for 6.12.y" ;;
	esac
	head=$(git -C "$KSRC" rev-parse HEAD)
	msg "cloning $KSRC (at ${head:0:12}, Linux $ver) into $KTREE"
	git clone -q --no-checkout "$KSRC" "$KTREE"
	git -C "$KTREE" checkout -q -b series "$head"
	git -C "$KTREE" tag -f base "$head" >/dev/null
}

apply_series() {
	local p n=0
	for p in $(series_patches); do
		[ -f "$TOP/patches/$p" ] || die "series names patches/$p, which does not exist"
		if ! git -C "$KTREE" am -q "$TOP/patches/$p"; then
			die "patches/$p does not apply: resolve in $KTREE (git am --continue / --abort)"
		fi
		n=$((n + 1))
	done
	msg "applied $n patches on base"
	# The cover letter's subject and blurb live in the branch description,
	# where git format-patch --cover-from-description finds them again.
	if [ -f "$TOP/patches/$COVER" ]; then
		git -C "$KTREE" config branch.series.description \
			"$(python3 "$TOP/harness/export.py" --read-cover "$TOP/patches/$COVER")"
	fi
}

push_back_to_ksrc() {
	local b=liveupdate-series n=1
	while git -C "$KSRC" rev-parse -q --verify "refs/heads/$b" >/dev/null; do
		n=$((n + 1)); b=liveupdate-series-$n
	done
	git -C "$KTREE" push -q origin "series:refs/heads/$b"
	msg "the series is on branch $b of $KSRC (your checkout is untouched)"
}

start=$(date +%s)
if [ -d "$KTREE/.git" ]; then
	lost=$(unexported_work)
	if [ -n "$lost" ]; then
		if [ "$FORCE" != 1 ]; then
			printf '%s\n' "$lost" | sed 's/^/  /' >&2
			die "$KTREE has work that is not in patches/ (above).
Run 'make export' and commit patches/, then 'make tree' again; or run
'make tree FORCE=1' to rebuild anyway (the old branch is kept)."
		fi
		bk=series-backup-$(date +%Y%m%d-%H%M%S)
		git -C "$KTREE" am --abort >/dev/null 2>&1 || true
		git -C "$KTREE" rebase --abort >/dev/null 2>&1 || true
		git -C "$KTREE" stash -q >/dev/null 2>&1 || true
		git -C "$KTREE" branch -f "$bk" HEAD
		warn "kept the old branch as $bk in $KTREE"
	fi
	[ -z "$KSRC" ] && check_base_version
	if [ -z "$lost" ] && [ "$(branch_ids)" = "$(series_ids)" ]; then
		msg "$KTREE is up to date with the series ($(series_patches | wc -l) patches)"
		step_time tree $(($(date +%s) - start))
		exit 0
	fi
	msg "resetting $KTREE to base and re-applying the series"
	git -C "$KTREE" checkout -q -f -B series base
	apply_series
else
	mkdir -p "$BUILD"
	if [ -n "$KSRC" ]; then
		fresh_from_ksrc
		apply_series
		push_back_to_ksrc
	else
		fresh_from_debian
		apply_series
	fi
fi
step_time tree $(($(date +%s) - start))
