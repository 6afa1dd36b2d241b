#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Kexec handover across a chain of real kexecs, with lib/test_kho.c.
#
#   kho_kexec.sh prepare BOOT STATE   before the kexec out of boot BOOT
#   kho_kexec.sh check STATE          after it, in the next kernel
#
# The kexec itself (kexec_file_load, reboot) is the caller's; STATE is a
# directory that survives it and holds what the next kernel must find.
# Which kexec boot BOOT does is set by its number:
#
#   0, 1, 2   finalize: the next kernel restores and checks every byte,
#             three times in a row (memory carried over several kexecs)
#   3         no finalize: the next kernel boots without a handover
#   4         finalize, then point the guestmemfs subtree at memory that is
#             not preserved: the handover is taken, guestmemfs refuses its
#             part of it
#   5, 6, 7   finalize, then damage the handover (chunk list loop,
#             root FDT compatible, bitmap in scratch memory): the next
#             kernel reports it in one line, ignores it and boots
#   8 and on  finalize
#
# Exit status 0 is a pass.

DBG=/sys/kernel/debug
KHO=$DBG/kho
TEST=$DBG/kho_test

fail() {
	echo "FAIL: $*"
	exit 1
}

plan_of() {
	case "$1" in
	0|1|2) echo kho ;;
	3) echo plain ;;
	4) echo subtree:guestmemfs ;;
	5) echo corrupt:chunk-loop ;;
	6) echo corrupt:compatible ;;
	7) echo corrupt:bitmap-scratch ;;
	*) echo kho ;;
	esac
}

expected_error() {
	case "$1" in
	chunk-loop) echo "loop in the chunk list" ;;
	compatible) echo "FDT is not kho-v1" ;;
	bitmap-scratch) echo "bitmap outside usable memory" ;;
	esac
}

prepare() {
	plan=$(plan_of "$1")
	state=$2
	[ -w "$KHO/out/finalize" ] || fail "no $KHO/out/finalize: boot with kho=on"
	[ -r "$TEST/generation" ] || fail "no $TEST: CONFIG_TEST_KEXEC_HANDOVER"
	cat "$TEST/generation" > "$state/kho_generation"
	echo "$plan" > "$state/kho_plan"
	echo "boot $1: $plan, kho_test generation $(cat "$state/kho_generation")"
	[ "$plan" = plain ] && return 0

	echo 1 > "$KHO/out/finalize" || fail "finalize"
	[ "$(cat "$KHO/out/finalize")" = 1 ] || fail "not finalized"
	case "$plan" in
	corrupt:*)
		echo "${plan#corrupt:}" > "$TEST/corrupt" || fail "damage ${plan#corrupt:}"
		;;
	subtree:*)
		echo "$plan" > "$TEST/corrupt" || fail "damage $plan"
		;;
	esac
	return 0
}

IGNORED="KHO: ignoring the handover from the previous kernel"

ignored_lines() {
	dmesg | grep -c "$IGNORED"
}

ignored() {
	dmesg | grep "$IGNORED"
}

check() {
	state=$1
	plan=$(cat "$state/kho_plan" 2>/dev/null) || fail "no plan: was prepare run?"
	prev=$(cat "$state/kho_generation")
	gen=$(cat "$TEST/generation")
	echo "previous boot: $plan, its kho_test generation $prev; now generation $gen"

	case "$plan" in
	kho|subtree:*)
		[ "$(ignored_lines)" = 0 ] || fail "handover ignored: $(ignored)"
		[ -r "$KHO/in/fdt" ] || fail "no $KHO/in/fdt"
		[ -r "$KHO/in/sub_fdts/kho-test" ] || fail "no kho-test subtree"
		cat "$TEST/report"
		grep -q "^not ok" "$TEST/report" && fail "restore checks failed"
		grep -q "^ok " "$TEST/report" || fail "nothing was checked"
		grep -qx "# incoming state of generation $prev" "$TEST/report" ||
			fail "the state is not the previous kernel's (generation $prev)"
		[ "$gen" = $((prev + 1)) ] || fail "generation $gen after $prev"
		dmesg | grep "KHO: reserved"
		;;
	plain|corrupt:*)
		if [ "$plan" = plain ]; then
			[ "$(ignored_lines)" = 0 ] || fail "unexpected: $(ignored)"
		else
			want="$IGNORED: $(expected_error "${plan#corrupt:}")"
			ignored
			[ "$(ignored_lines)" = 1 ] || fail "want exactly one line: $want"
			dmesg | grep -qF "$want" || fail "want: $want"
		fi
		[ ! -e "$KHO/in" ] || fail "$KHO/in exists without a handover"
		grep -q "^1..0 # SKIP no incoming" "$TEST/report" ||
			fail "kho_test found state: $(cat "$TEST/report")"
		[ "$gen" = 0 ] || fail "generation $gen without a handover"
		;;
	*)
		fail "unknown plan $plan"
		;;
	esac
	echo "ok: $plan"
}

case "$1" in
prepare) [ $# = 3 ] || fail "usage: $0 prepare BOOT STATE"; prepare "$2" "$3" ;;
check) [ $# = 2 ] || fail "usage: $0 check STATE"; check "$2" ;;
*) fail "usage: $0 prepare BOOT STATE | check STATE" ;;
esac
