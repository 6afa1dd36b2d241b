# SPDX-License-Identifier: GPL-2.0
# Common settings for the harness scripts; sourced, never run.

set -eu
set -o pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
KTREE=$BUILD/linux
KOBJ=$BUILD/obj
LOGS=$BUILD/logs
DEB_PKG=linux-source-6.12
DEB_TARBALL=/usr/src/linux-source-6.12.tar.xz
COVER=0000-cover-letter.patch
JOBS=${JOBS:-$(nproc)}

export CCACHE_DIR=${CCACHE_DIR:-$HOME/.cache/ccache}

# The base commit and the series commits are made by the harness, which
# must work on a machine whose git has no identity configured.
git_ident() {
	local name email
	name=$(git config --global user.name 2>/dev/null || true)
	email=$(git config --global user.email 2>/dev/null || true)
	export GIT_COMMITTER_NAME=${GIT_COMMITTER_NAME:-${name:-liveupdate harness}}
	export GIT_COMMITTER_EMAIL=${GIT_COMMITTER_EMAIL:-${email:-harness@liveupdate.invalid}}
}

msg() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Patches named in series, in order, cover letter excluded.
series_patches() {
	[ -f "$TOP/series" ] || return 0
	grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' "$TOP/series" |
		grep -vxF "$COVER" || true
}

# The base version recorded in the series header, e.g. "6.12.117-1~deb12u1".
series_base_pkgver() {
	[ -f "$TOP/series" ] || return 0
	sed -n 's/^# base-package: *[^ ]* *//p' "$TOP/series" | head -n1
}

# Timestamped step timing, appended to build/logs/times.
step_time() {
	mkdir -p "$LOGS"
	printf '%s %s %ss\n' "$(date -u +%FT%TZ)" "$1" "$2" >> "$LOGS/times"
}
