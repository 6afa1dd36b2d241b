#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# lu_edu: persistent IOMMU domains across a real kexec, with edu and
# edu_dma (the VMM's side). Modes:
#   prepare STATE  map, attach, mark and hold edu through the next kexec
#   exit STATE     after KHO finalize: the VMM prepare left holding edu
#                  exits instead of calling reboot(); edu's DMA goes on
#   abort STATE    before KHO finalize: prepare, finalize, the VMM
#                  exits, then abort: iommufd lets edu go (its DMA to
#                  the old IOVA faults), the closed iommufd's pins go
#   check STATE    after a kexec that handed edu over: what the kernel
#                  logged taking it back, then the new VMM's take-over,
#                  replace and destroy (edu_dma lu-check), and the log of
#                  the inherited tables being freed
#   damage STATE   after KHO finalize: damage the VT-d handover (the
#                  "intel-iommu" subtree), as a bug or bad memory would
#   blocked STATE  after a kexec with that damage: the unit was blocked
#                  before memory went to the page allocator, one error
#                  line, nothing taken over, edu's DMA faults
#   unrestored STATE after a kexec whose guestmemfs handover was damaged:
#                  VT-d took edu over, iommufd could not pin the file
#                  again, moved edu out of the domain (its DMA faults) and
#                  freed it
#   quiesced STATE after a kexec that handed nothing over
#   bench-prepare STATE MIB IOVA, bench-check STATE MIB IOVA
#                  make bench: a persistent domain of MIB MiB at IOVA
#                  (its alignment picks the IOPTE size), handed over and
#                  taken back; one "BENCH: lu" line of figures
fail() { echo "FAIL: $*"; exit 1; }
TOKEN=0x4c55ed0000000001
DIR=/mnt/gmfs-lu

# edu's address (bus:slot.fn), from sysfs
edu_bdf() {
	for d in /sys/bus/pci/devices/*; do
		if [ "$(cat $d/vendor):$(cat $d/device)" = 0x1234:0x11e8 ]; then
			echo "${d##*/0000:}"
			return 0
		fi
	done
	return 1
}

# The faults a DMA by edu to L's old IOVA range makes, announced to the
# harness (kernel and QEMU lines), for this boot only
expect_edu_faults() {
	bus=${1%%:*}; slot=${1#*:}; slot=${slot%.*}; fn=${1##*.}
	echo "VMTEST-EXPECT: DMAR: \[DMA Write NO_PASID\] Request device \[$1\] fault addr 0xc[0-3][0-9a-f]{5} "
	echo "VMTEST-EXPECT: vtd_[a-z_]*: detected translation failure \(dev=$bus:$slot:0$fn, iova=0xc[0-3][0-9a-f]{5}\)"
	echo "VMTEST-EXPECT: vtd_iova_to_slpte: detected slpte permission error \(iova=0xc[0-3][0-9a-f]{5}, level=0x[0-9a-f]*, slpte=0x0, write=1,"
}

# The kernel logged the fault of such a DMA
edu_faulted() {
	sleep 1
	dmesg | grep "Request device \[$1\] fault addr" ||
		fail "no DMAR fault logged for edu ($1)"
}

case "$1" in
damage|unrestored) ;;	# no file; after a refused guestmemfs handover, no mount
*)
	mkdir -p $DIR
	grep -q " $DIR " /proc/mounts || mount -t guestmemfs none $DIR ||
		fail "mount guestmemfs on $DIR"
	;;
esac

case "$1" in
prepare)
	exec /tests/edu_dma lu-prepare $DIR "$2"
	;;
exit)
	/tests/edu_dma lu-exit $DIR "$2" || exit 1
	! dmesg | grep 'left its domain\|DMAR: \[DMA' ||
		fail "edu left the HWPT handed over when its VMM exited"
	;;
abort)
	bdf=$(edu_bdf) || fail "no edu device"
	fin=/sys/kernel/debug/kho/out/finalize
	/tests/edu_dma lu-prepare $DIR "$2" || exit 1
	echo 1 > $fin || fail "finalize"
	/tests/edu_dma lu-exit $DIR "$2" || exit 1
	echo 0 > $fin || fail "abort"
	echo "ok: the handover is aborted with edu's VMM gone"
	i=0
	until dmesg | grep -q "$bdf: iommufd: live update: handover aborted"; do
		i=$((i + 1))
		[ $i -lt 50 ] || fail "iommufd did not let edu go after the abort"
		sleep 0.1
	done
	expect_edu_faults "$bdf"
	/tests/edu_dma lu-aborted $DIR "$2" || exit 1
	edu_faulted "$bdf"
	echo "ok: edu's DMA to the old IOVA faulted"
	;;
check)
	dmesg | grep 'DMAR: live update\|iommufd: live update'
	dmesg | grep -q 'took over the translation of 1 of 1 device' ||
		fail "VT-d did not take edu's translation over"
	taken=$(dmesg | sed -n "s/.*the tables of the domain handed over as $TOKEN: \([0-9]*\) page(s).*/\1/p")
	[ -n "$taken" ] || fail "no page count of the tables taken back"
	dmesg | grep -q "DMA goes on through the domain handed over as $TOKEN" ||
		fail "edu was not put in its inherited domain at probe"
	dmesg | grep -q "HWPT $TOKEN restored: 1 area(s), 1 group(s)" ||
		fail "iommufd did not restore the HWPT"
	/tests/edu_dma lu-check $DIR "$2" || exit 1
	dmesg | grep -q 'edu_dma: lu-check: replacing' ||
		fail "edu_dma did not get to the replace"
	if dmesg | sed -n '/edu_dma: lu-check: binding/,/edu_dma: lu-check: replacing/p' |
			grep -i 'reset'; then
		fail "edu was reset while its DMA went through the inherited domain"
	fi
	echo "ok: edu was not reset from the bind to vfio-pci to the replace"
	freed=$(dmesg | sed -n "s/.*freed the \([0-9]*\) page-table page(s) of the domain handed over as $TOKEN.*/\1/p")
	[ "$freed" = "$taken" ] ||
		fail "(f) $taken table pages taken back, ${freed:-none} freed"
	echo "ok: (f) the $freed page-table pages taken back are freed"
	;;
damage)
	echo subtree:intel-iommu > /sys/kernel/debug/kho_test/corrupt ||
		fail "could not damage the intel-iommu subtree"
	echo "ok: the VT-d handover now points at scratch memory"
	;;
blocked)
	bdf=$(edu_bdf) || fail "no edu device"
	early='DMAR: live update: DMAR at 0x[0-9a-f]*: left translating, but the handover.s blob is not preserved memory: DMA of all its devices is blocked'
	dmesg | grep 'DMAR: live update\|iommufd: live update\|Translation was enabled'
	[ "$(dmesg | grep -c "$early")" = 1 ] ||
		fail "want exactly one line: $early"
	# Said, and done, before mem_init() gave memory to the page
	# allocator: slab, set up right after it, says "SLUB: HWalign"
	at=$(dmesg | grep -n "$early" | cut -d: -f1)
	mem=$(dmesg | grep -n '] SLUB: HWalign=' | cut -d: -f1)
	[ -n "$mem" ] && [ "$at" -lt "$mem" ] ||
		fail "the unit was blocked (log line $at) after memory went to the page allocator (line ${mem:-?})"
	echo "ok: the unit was blocked at log line $at, before the page allocator existed (slab at line $mem)"
	! dmesg | grep 'Translation was enabled\|took over the translation' ||
		fail "more than one line, or something taken over"
	dmesg | grep -q "iommufd: live update: no device kept the translation of the HWPT handed over as $TOKEN" ||
		fail "iommufd did not say why it restored nothing"
	# The fault edu_dma provokes: a DMA to L's old IOVA
	# (b) too, if the block stopped it: anywhere in L's IOVA range
	expect_edu_faults "$bdf"
	/tests/edu_dma lu-blocked $DIR "$2" || exit 1
	edu_faulted "$bdf"
	echo "ok: edu's DMA faulted"
	;;
bench-prepare)
	/tests/edu_dma lu-bench-prepare $DIR "$2" "$3" "$4" || exit 1
	echo 1 > /sys/kernel/debug/kho/out/finalize || fail "finalize"
	pt=$(dmesg | sed -n 's/.*the domain marked 0x4c55ed00000000b0: \([0-9]*\) page-table page(s) preserved in \([0-9]*\) us.*/\1 \2/p' | tail -1)
	fin=$(dmesg | sed -n 's/.*iommufd: live update: \([0-9]*\) HWPT(s) handed over in \([0-9]*\) us.*/\2/p' | tail -1)
	[ -n "$pt" ] && [ -n "$fin" ] || fail "no figures of the handover in the log"
	echo "$3 $4 ${pt% *} ${pt#* } $fin" > "$2/lu_bench"
	;;
bench-check)
	read mib iova pages preserve_us finalize_us < "$2/lu_bench" ||
		fail "no lu_bench state: was bench-prepare run?"
	taken=$(dmesg | sed -n 's/.*handed over as 0x4c55ed00000000b0: \([0-9]*\) page(s), taken back in \([0-9]*\) us.*/\1 \2/p')
	restore=$(dmesg | sed -n 's/.*HWPT 0x4c55ed00000000b0 restored: .* in \([0-9]*\) us.*/\1/p')
	out=$(/tests/edu_dma lu-bench-check $DIR "$2" "$mib" "$iova") || {
		echo "$out"; exit 1; }
	echo "$out"
	replace=$(echo "$out" | sed -n 's/^lu-bench: replace .*: \([0-9]*\) us$/\1/p')
	map=$(echo "$out" | sed -n 's/^lu-bench: map .*: \([0-9]*\) us$/\1/p')
	sleep 1
	freed=$(dmesg | sed -n 's/.*freed the \([0-9]*\) page-table page(s) of the domain handed over as 0x4c55ed00000000b0.*/\1/p')
	[ -n "$taken" ] && [ -n "$restore" ] && [ -n "$replace" ] && [ -n "$freed" ] ||
		fail "missing figures: taken '$taken' restore '$restore' replace '$replace' freed '$freed'"
	[ "${taken% *}" = "$pages" ] && [ "$freed" = "$pages" ] ||
		fail "$pages table pages preserved, ${taken% *} taken back, $freed freed"
	echo "BENCH: lu mib=$mib iova=$iova pt_pages=$pages preserve_us=$preserve_us finalize_us=$finalize_us take_us=${taken#* } restore_us=$restore map_us=$map replace_us=$replace freed=$freed"
	;;
unrestored)
	bdf=$(edu_bdf) || fail "no edu device"
	dmesg | grep 'DMAR: live update\|iommufd: live update'
	dmesg | grep -q 'took over the translation of 1 of 1 device' ||
		fail "VT-d did not take edu's translation over"
	taken=$(dmesg | sed -n "s/.*the tables of the domain handed over as $TOKEN: \([0-9]*\) page(s).*/\1/p")
	line="iommufd: live update: HWPT $TOKEN cannot be taken over (-[0-9]*): the DMA of its devices is blocked"
	[ "$(dmesg | grep -c "$line")" = 1 ] || fail "want exactly one line: $line"
	! dmesg | grep "HWPT $TOKEN restored\|HWPT $TOKEN not restored" ||
		fail "iommufd restored or kept the HWPT"
	freed=$(dmesg | sed -n "s/.*freed the \([0-9]*\) page-table page(s) of the domain handed over as $TOKEN.*/\1/p")
	[ -n "$taken" ] && [ "$freed" = "$taken" ] ||
		fail "$taken table pages taken back, ${freed:-none} freed"
	echo "ok: the inherited domain is gone, its $freed table pages freed"
	# With iommu=pt (boot 6 of make check), the default domain does not
	# translate: edu is blocked instead, and its DMA must fault all the same
	type=$(cat /sys/bus/pci/devices/0000:$bdf/iommu_group/type)
	case " $(cat /proc/cmdline) " in
	*" iommu=pt "*)
		[ "$type" = identity ] || fail "iommu=pt, but edu's default domain is '$type'"
		echo "ok: edu's default domain is identity (iommu=pt): edu is blocked instead"
		;;
	*)
		case "$type" in DMA|DMA-FQ) ;; *) fail "edu's group is now '$type'" ;; esac
		echo "ok: edu's group is in its $type domain"
		;;
	esac
	expect_edu_faults "$bdf"
	/tests/edu_dma lu-unrestored $DIR "$2" || exit 1
	edu_faulted "$bdf"
	echo "ok: edu's DMA to the old IOVA faulted"
	;;
quiesced)
	! dmesg | grep 'DMAR: live update\|Translation was enabled' ||
		fail "a kexec that handed nothing over left translation on"
	exec /tests/edu_dma lu-quiesced $DIR "$2"
	;;
*)
	fail "usage: lu_edu prepare|check|damage|blocked|unrestored|quiesced STATE, or bench-prepare|bench-check STATE MIB IOVA"
	;;
esac
