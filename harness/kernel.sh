#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Configure and build build/linux: build/bzImage, build/headers/include.
#
# The configuration is tinyconfig plus, in this order: harness/config/*.config
# (the VM and the debug options every test kernel has), then every
# tools/testing/selftests/*/config that the series adds or changes. Every
# option a fragment asks for is checked in the result, so a dependency
# that silently drops an option fails the build instead of a test later.
. "$(dirname "$0")/lib.sh"

# --build-only: configure and build, but leave build/bzImage, build/config
# and build/headers alone (make bisect builds intermediate commits).
# CONFIG_REV: take the series' config fragments from this commit rather
# than from the one checked out (make bisect builds every patch with the
# fragments of the whole series, so each patch's code is compiled as soon
# as it exists).
# KERNEL_FLAVOR=bench: the same series and options without the debug ones
# (harness/config/debug.config is replaced by harness/config/bench/*.config),
# built in build/obj-bench into build/bzImage-bench, for make bench.
BUILD_ONLY=0
[ "${1:-}" = --build-only ] && BUILD_ONLY=1
CONFIG_REV=${CONFIG_REV:-HEAD}
FLAVOR=${KERNEL_FLAVOR:-test}
KLOG=kernel
case "$FLAVOR" in
test) ;;
bench) KOBJ=$BUILD/obj-bench KLOG=kernel-bench ;;
*) die "KERNEL_FLAVOR=$FLAVOR: expected test or bench" ;;
esac

[ -d "$KTREE/.git" ] || die "no $KTREE: run 'make tree' first"
mkdir -p "$KOBJ" "$LOGS"
start=$(date +%s)

CC="ccache gcc"
command -v ccache >/dev/null || CC=gcc
MAKE=(make -C "$KTREE" O="$KOBJ" ARCH=x86_64 CC="$CC" HOSTCC="$CC" -j"$JOBS")

fragments() {
	local f out=$BUILD/config-fragments
	if [ "$FLAVOR" = bench ]; then
		ls "$TOP"/harness/config/*.config | grep -v '/debug\.config$'
		ls "$TOP"/harness/config/bench/*.config
	else
		ls "$TOP"/harness/config/*.config
	fi
	rm -rf "$out"
	git -C "$KTREE" diff --name-only base "$CONFIG_REV" -- \
		'tools/testing/selftests/*config' 'tools/testing/selftests/**/config' |
		grep '/config$' | sort -u | while read -r f; do
			mkdir -p "$out/$(dirname "$f")"
			git -C "$KTREE" show "$CONFIG_REV:$f" > "$out/$f"
			echo "$out/$f"
		done
}

configure() {
	local frags
	mapfile -t frags < <(fragments)
	msg "config: tinyconfig + ${frags[*]#$BUILD/config-fragments/}"
	"${MAKE[@]}" -s tinyconfig >/dev/null
	KCONFIG_CONFIG="$KOBJ/.config" "$KTREE/scripts/kconfig/merge_config.sh" \
		-m -O "$KOBJ" "$KOBJ/.config" "${frags[@]}" >"$LOGS/merge_config${KLOG#kernel}.log"
	"${MAKE[@]}" -s olddefconfig >/dev/null
	# What was asked for must be what we got.
	local bad=0 line sym val got
	for f in "${frags[@]}"; do
		while IFS= read -r line; do
			case "$line" in
			CONFIG_*=*) sym=${line%%=*}; val=${line#*=} ;;
			"# CONFIG_"*" is not set") sym=${line#\# }; sym=${sym%% *}; val=n ;;
			*) continue ;;
			esac
			got=$(grep -E "^$sym=|^# $sym is not set" "$KOBJ/.config" || true)
			case "$got" in
			"$sym=$val") ;;
			"# $sym is not set"|"") [ "$val" = n ] || { warn "$f: $sym=$val requested, not set"; bad=1; } ;;
			*) warn "$f: $sym=$val requested, got ${got#*=}"; bad=1 ;;
			esac
		done < "$f"
	done
	# An intermediate commit of make bisect may not have every option yet.
	[ $bad = 0 ] || [ $BUILD_ONLY = 1 ] ||
		die "the kernel config does not have what the fragments ask for (see above)"
}

configure
msg "building $(make -s -C "$KTREE" kernelversion) (log: build/logs/$KLOG.log)"
if ! "${MAKE[@]}" bzImage >"$LOGS/$KLOG.log" 2>&1; then
	grep -E 'error|Error' "$LOGS/$KLOG.log" | head -30 >&2
	die "kernel build failed: see $LOGS/$KLOG.log"
fi
# Warnings in files the series touches fail the build; the base's own
# warnings are only listed.
grep -E ': warning:' "$LOGS/$KLOG.log" | sed "s|^$KTREE/||; s|^\.\./linux/||" |
	sort -u > "$LOGS/$KLOG-warnings.log" || true
if [ -s "$LOGS/$KLOG-warnings.log" ]; then
	ours=$(git -C "$KTREE" diff --name-only base HEAD | sed 's/[.^$*]/\\&/g; s/^/^/; s/$/:/' |
		grep -f - "$LOGS/$KLOG-warnings.log" || true)
	if [ -n "$ours" ]; then
		printf '%s\n' "$ours" >&2
		die "compiler warnings in files the series touches (above)"
	fi
	warn "$(wc -l < "$LOGS/$KLOG-warnings.log") compiler warnings in the base: build/logs/$KLOG-warnings.log"
fi
[ $BUILD_ONLY = 1 ] && exit 0
if [ "$FLAVOR" = bench ]; then
	cp "$KOBJ/arch/x86/boot/bzImage" "$BUILD/bzImage-bench"
	msg "built build/bzImage-bench ($(stat -c %s "$BUILD/bzImage-bench") bytes)"
	step_time kernel-bench $(($(date +%s) - start))
	exit 0
fi
cp "$KOBJ/arch/x86/boot/bzImage" "$BUILD/bzImage"
cp "$KOBJ/.config" "$BUILD/config"
"${MAKE[@]}" -s headers_install INSTALL_HDR_PATH="$BUILD/headers" >/dev/null
msg "built build/bzImage ($(stat -c %s "$BUILD/bzImage") bytes) and build/headers/include"
step_time kernel $(($(date +%s) - start))
