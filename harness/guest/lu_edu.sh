#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# lu_edu: persistent IOMMU domains across a real kexec, with edu and
# edu_dma (the VMM's side). Modes:
#   prepare STATE  map, attach, mark and hold edu through the next kexec
#   check STATE    after a kexec that handed edu over: what the kernel
#                  logged taking it back, then the new VMM's take-over,
#                  replace and destroy (edu_dma lu-check), and the log of
#                  the inherited tables being freed
#   quiesced STATE after a kexec that handed nothing over
fail() { echo "FAIL: $*"; exit 1; }
TOKEN=0x4c55ed0000000001
DIR=/mnt/gmfs-lu

mkdir -p $DIR
grep -q " $DIR " /proc/mounts || mount -t guestmemfs none $DIR ||
	fail "mount guestmemfs on $DIR"

case "$1" in
prepare)
	exec /tests/edu_dma lu-prepare $DIR "$2"
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
quiesced)
	! dmesg | grep 'DMAR: live update\|Translation was enabled' ||
		fail "a kexec that handed nothing over left translation on"
	exec /tests/edu_dma lu-quiesced $DIR "$2"
	;;
*)
	fail "usage: lu_edu prepare|check|quiesced STATE"
	;;
esac
