#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Install the Debian packages the harness needs; quiet when they are there.
. "$(dirname "$0")/lib.sh"

PKGS=(
	# kernel build
	build-essential bc bison flex libelf-dev libssl-dev cpio kmod rsync
	xz-utils python3 python3-ply python3-git git ccache sparse
	# the base source
	"$DEB_PKG"
	# the test VM
	qemu-system-x86 busybox-static
	# handover format tools and series tooling
	libfdt-dev device-tree-compiler b4
	# tools/testing/memblock
	liburcu-dev
)

missing=()
for p in "${PKGS[@]}"; do
	case "$p" in \#*) continue ;; esac
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

[ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]}"
msg "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
