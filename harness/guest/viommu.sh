#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# viommu: the Intel vIOMMU is up and the edu device is translated by it.
fail() { echo "FAIL: $*"; exit 1; }

ls /sys/class/iommu/ | grep -q '^dmar' || fail "no DMAR unit in /sys/class/iommu"
for d in /sys/bus/pci/devices/*; do
	[ "$(cat "$d/vendor"):$(cat "$d/device")" = "0x1234:0x11e8" ] || continue
	[ -e "$d/iommu_group" ] || fail "edu at $d is in no IOMMU group"
	[ -e "$d/iommu" ] || fail "edu at $d has no IOMMU"
	grp=$(basename "$(readlink "$d/iommu_group")")
	type=$(cat "/sys/kernel/iommu_groups/$grp/type")
	echo "edu $(basename "$d"): $(basename "$(readlink "$d/iommu")"), group $grp, domain $type"
	case "$type" in
	DMA|DMA-FQ) ;;
	identity)
		# Asked for, for one boot of the live-update tests
		case " $(cat /proc/cmdline) " in
		*" iommu=pt "*) ;;
		*) fail "edu's default domain is identity without iommu=pt" ;;
		esac
		;;
	*) fail "edu's default domain is '$type', expected a translating DMA domain" ;;
	esac
	exit 0
done
fail "no edu device"
