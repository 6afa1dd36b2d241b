#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# bootcheck first|kexec: is this the boot the harness thinks it is?
#
# first: booted by QEMU's loader (boot_params type_of_loader 0xb0) as boot 0.
# kexec: booted by the kernel's kexec_file bzImage loader (0xd0), with the
# marker the previous boot chose on the command line, its initramfs, one
# boot more than it counted, and a new boot_id.
fail() { echo "FAIL: $*"; exit 1; }

arg() {
	for a in $(cat /proc/cmdline); do
		case "$a" in "$1="*) echo "${a#*=}"; return ;; esac
	done
}
loader=$(od -An -tx1 -j 528 -N1 /sys/kernel/boot_params/data | tr -d ' ')
echo "type_of_loader=0x$loader boot=$VMTEST_BOOT cmdline: $(cat /proc/cmdline)"

case "$1" in
first)
	[ "$loader" = b0 ] || fail "loader 0x$loader, expected QEMU (0xb0)"
	[ "$VMTEST_BOOT" = 0 ] || fail "boot $VMTEST_BOOT, expected 0"
	[ ! -e /state/boot ] || fail "/state already has a boot count"
	;;
kexec)
	[ "$loader" = d0 ] || fail "loader 0x$loader, expected kexec_file (0xd0)"
	[ -r /state/marker ] || fail "no /state/marker: the initramfs was not handed over"
	want=$(cat /state/marker)
	got=$(arg vmtest.marker)
	[ "$got" = "$want" ] || fail "marker '$got' on the command line, expected '$want'"
	prev=$(cat /state/boot)
	[ "$VMTEST_BOOT" = $((prev + 1)) ] || fail "boot $VMTEST_BOOT follows boot $prev"
	[ "$(cat /proc/sys/kernel/random/boot_id)" != "$(cat /state/boot_id)" ] ||
		fail "boot_id did not change: not a new kernel"
	echo "kexec'd boot $VMTEST_BOOT after boot $prev, marker $got"
	;;
*)
	fail "usage: bootcheck first|kexec"
	;;
esac
