#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Kexec handover across a chain of real kexecs, with lib/test_kho.c.
#
#   kho_kexec.sh prepare BOOT STATE   before the kexec out of boot BOOT
#   kho_kexec.sh check STATE          after it, in the next kernel
#   kho_kexec.sh early                at every boot: what was set aside
#                                     before the handover was read
#
# The kexec itself (kexec_file_load, reboot) is the caller's; STATE is a
# directory that survives it and holds what the next kernel must find.
# Which kexec boot BOOT does is set by its number:
#
#   0, 1, 2   finalize: the next kernel restores and checks every byte,
#             three times in a row (memory carried over several kexecs)
#   3         no finalize: the next kernel boots without a handover
#   4         finalize, then add two bad parts to the chunk list (a bitmap
#             in scratch memory, a block past the end of memory) and a
#             scratch area outside memory to the list the kexec image
#             carries: the next kernel is not placed in that area (its
#             decompressor uses only the RAM of the scratch areas), drops
#             the three bad parts, says so, and restores everything else
#   5         finalize, then point the guestmemfs subtree at memory that is
#             not preserved: the handover is taken, guestmemfs refuses its
#             part of it
#   6         finalize, then break the root FDT (its compatible), with
#             kho_on_error=reclaim for the next kernel: it reports it in
#             one line and boots with all memory, as after a plain kexec
#   7         finalize, then break the chunk list (a loop): the next
#             kernel reports it, keeps all memory outside the scratch
#             areas out of use (kho_on_error's default) and runs on those
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
	4) echo bad-ranges ;;
	5) echo subtree:guestmemfs ;;
	6) echo reclaim:compatible ;;
	7) echo corrupt:chunk-loop ;;
	*) echo kho ;;
	esac
}

expected_error() {
	case "$1" in
	chunk-loop) echo "loop in the chunk list" ;;
	compatible) echo "FDT is not kho-v1" ;;
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
	corrupt:*|reclaim:*)
		echo "${plan#*:}" > "$TEST/corrupt" || fail "damage ${plan#*:}"
		;;
	subtree:*|bad-ranges)
		echo "$plan" > "$TEST/corrupt" || fail "damage $plan"
		;;
	esac
	# For the next kernel only
	case "$plan" in
	reclaim:*) echo "kho_on_error=reclaim" >> "$state/kexec-once" ;;
	esac
	return 0
}

IGNORED="KHO: ignoring the handover from the previous kernel"
DROPPED="KHO: dropping part of the handover"
SCRATCH_ONLY="KHO: broken handover: all memory outside the scratch areas stays out of use"

ignored_lines() {
	dmesg | grep -c "$IGNORED"
}

ignored() {
	dmesg | grep "$IGNORED"
}

# MemTotal in MiB
mem_total() {
	awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo
}

restored() {
	[ -r "$KHO/in/fdt" ] || fail "no $KHO/in/fdt"
	[ -r "$KHO/in/sub_fdts/kho-test" ] || fail "no kho-test subtree"
	cat "$TEST/report"
	grep -q "^not ok" "$TEST/report" && fail "restore checks failed"
	grep -q "^ok " "$TEST/report" || fail "nothing was checked"
	grep -qx "# incoming state of generation $prev" "$TEST/report" ||
		fail "the state is not the previous kernel's (generation $prev)"
	[ "$gen" = $((prev + 1)) ] || fail "generation $gen after $prev"
	dmesg | grep "KHO: reserved"
}

# One line saying why the handover was ignored, and nothing restored
ignored_once() {
	want="$IGNORED: $(expected_error "$1")"
	ignored
	[ "$(ignored_lines)" = 1 ] || fail "want exactly one line: $want"
	dmesg | grep -qF "$want" || fail "want: $want"
	[ ! -e "$KHO/in" ] || fail "$KHO/in exists without a handover"
	grep -q "^1..0 # SKIP no incoming" "$TEST/report" ||
		fail "kho_test found state: $(cat "$TEST/report")"
	[ "$gen" = 0 ] || fail "generation $gen without a handover"
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
		dmesg | grep -q "$DROPPED" && fail "dropped: $(dmesg | grep "$DROPPED")"
		restored
		;;
	bad-ranges)
		[ "$(ignored_lines)" = 0 ] || fail "handover ignored: $(ignored)"
		dmesg | grep "KHO: dropp"
		n=$(dmesg | grep -c "$DROPPED")
		[ "$n" = 3 ] || fail "$n parts dropped, want the 3 bad ones"
		dmesg | grep -q "$DROPPED: scratch area outside memory" ||
			fail "the scratch area outside memory was not dropped"
		dmesg | grep -q "$DROPPED: bitmap outside usable memory" ||
			fail "the bitmap in scratch memory was not dropped"
		dmesg | grep -q "$DROPPED: preserved memory outside usable memory" ||
			fail "the block past the end of memory was not dropped"
		dmesg | grep -q "KHO: dropped 1 bitmaps and 1 runs" ||
			fail "no summary of what was dropped"
		# Everything else came through
		restored
		;;
	plain)
		[ "$(ignored_lines)" = 0 ] || fail "unexpected: $(ignored)"
		[ ! -e "$KHO/in" ] || fail "$KHO/in exists without a handover"
		grep -q "^1..0 # SKIP no incoming" "$TEST/report" ||
			fail "kho_test found state: $(cat "$TEST/report")"
		[ "$gen" = 0 ] || fail "generation $gen without a handover"
		;;
	reclaim:*)
		ignored_once "${plan#reclaim:}"
		grep -qw kho_on_error=reclaim /proc/cmdline ||
			fail "not booted with kho_on_error=reclaim: $(cat /proc/cmdline)"
		dmesg | grep -q "KHO: kho_on_error=reclaim: booting as without a handover" ||
			fail "no word of reclaiming the memory"
		# All memory is this kernel's, and it can hand over again
		[ -w "$KHO/out/finalize" ] || fail "no handover from this kernel"
		echo "all memory reclaimed: MemTotal $(mem_total) MiB"
		;;
	corrupt:*)
		ignored_once "${plan#corrupt:}"
		line=$(dmesg | grep "$SCRATCH_ONLY") ||
			fail "no word of running on scratch memory"
		echo "$line"
		scratch=$(echo "$line" | sed -n 's/.* runs on \([0-9]*\) MiB of scratch.*/\1/p')
		total=$(mem_total)
		[ -n "$scratch" ] && [ "$total" -le "$scratch" ] ||
			fail "MemTotal $total MiB, more than the $scratch MiB of scratch"
		# Nothing here can be handed over: all of it is scratch
		[ ! -w "$KHO/out/finalize" ] ||
			fail "$KHO/out/finalize in a kernel running on scratch"
		echo "running on scratch: MemTotal $total MiB of $scratch MiB"
		;;
	*)
		fail "unknown plan $plan"
		;;
	esac
	echo "ok: $plan"
}

# Every boot: the gigantic pages the command line asks for (hugepagesz=1G
# hugepages=N) are all there: with KHO they are allocated once the scratch
# areas are set aside, and after a handover once the preserved memory is
# reserved, outside scratch, which is not sized for them. And where this
# kernel set its scratch areas aside, they are the scale it says of the
# early needs it reports (a 2 MiB round-up each), which do not count them.
early() {
	hp=/sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages
	want=$(sed -n 's/.*hugepagesz=1G hugepages=\([0-9]*\).*/\1/p' /proc/cmdline)
	if [ -n "$want" ]; then
		got=$(cat "$hp") || fail "no $hp"
		if dmesg | grep -q "$SCRATCH_ONLY"; then
			# Running on scratch alone: none, and why
			[ "$got" = 0 ] || fail "$got gigantic pages from scratch"
			dmesg | grep "HugeTLB: no 1048576 KiB pages at boot" ||
				fail "no word of the gigantic pages not allocated"
		else
			[ "$got" = "$want" ] ||
				fail "$got gigantic pages of $want: $(dmesg | grep HugeTLB)"
			echo "$got gigantic page(s) of 1 GiB, as asked"
		fi
	fi
	need=$(dmesg | sed -n 's/.*KHO: the next kernel needs about \([0-9]*\) MiB early.*/\1/p')
	if [ -z "$need" ]; then
		[ -e "$KHO/in" ] || dmesg | grep -q "KHO: handover found" ||
			fail "no handover and no scratch sized: $(dmesg | grep KHO:)"
		echo "scratch areas of a previous kernel"
		return 0
	fi
	dmesg | grep "KHO: the next kernel needs"
	# CMA and crash kernel count once
	once=$(dmesg | sed -n 's/.*below 4 GiB; \([0-9]*\) MiB of CMA and crash kernel.*/\1/p')
	[ -n "$once" ] || fail "cannot read the CMA and crash kernel figure"
	want=$((2 * (need - once) + once))
	line=$(dmesg | grep "KHO: scratch, 200% of that") ||
		fail "no scratch at the default 200%: $(dmesg | grep KHO:)"
	echo "$line"
	mib='\([0-9]*\) MiB at [0-9a-fx]*'
	sizes=$(echo "$line" | sed -n "s/.*: $mib, $mib\$/\\1 \\2/p")
	set -- $sizes
	[ $# = 2 ] || fail "cannot read the scratch sizes"
	total=$(($1 + $2))
	# MiB truncated in the log; each area rounded up to 2 MiB
	[ "$total" -ge $((want - 4)) ] && [ "$total" -le $((want + 6)) ] ||
		fail "scratch $total MiB for early needs of $need MiB ($once once) at 200%"
	echo "scratch $total MiB for $need MiB of early needs ($once MiB once)"
}

case "$1" in
early) early ;;
prepare) [ $# = 3 ] || fail "usage: $0 prepare BOOT STATE"; prepare "$2" "$3" ;;
check) [ $# = 2 ] || fail "usage: $0 check STATE"; check "$2" ;;
*) fail "usage: $0 prepare BOOT STATE | check STATE | early" ;;
esac
