#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# kho_bench prepare BOOT STATE | check STATE
#
# The KHO figures of make bench. Boot 0 preserves memory in order-0
# pages, boot 1 in 2 MiB folios, boot 2 in 1 GiB blocks: as much as the
# guest can spare (BENCH share of MemAvailable). It times the preservation
# and the finalization; the next kernel reports how long reserving it at
# boot, and restoring every block, took. One "BENCH:" line per order.
DBG=/sys/kernel/debug
fail() { echo "FAIL: $*"; exit 1; }

prepare() {
	case "$1" in
	0) order=0 ;;
	1) order=9 ;;
	2) order=18 ;;
	*) return 0 ;;
	esac
	avail=$(awk '/MemAvailable/ { print int($2 / 1024) }' /proc/meminfo)
	mib=$((avail * 6 / 10))
	[ $order = 18 ] && mib=$((mib / 1024 * 1024))
	[ "$mib" -gt 0 ] || fail "no memory to spare: $avail MiB available"
	echo "preserving $mib of $avail MiB available at order $order"
	echo "$order $mib" > $DBG/kho_test/bench || fail "bench $order $mib"
	bench=$(cat $DBG/kho_test/bench)
	echo "$bench"
	fin=$(timed_write $DBG/kho/out/finalize 1) || fail "finalize"
	echo "finalize: $fin"
	echo "$bench finalize_$fin" > "$2/bench"
}

check() {
	[ -r "$1/bench" ] || return 0
	prev=$(cat "$1/bench")
	rm "$1/bench"
	res=$(dmesg | grep "KHO: reserved")
	rest=$(grep "# bench: restored" $DBG/kho_test/report)
	echo "$res"
	echo "$rest"
	set -- $(echo "$res" | sed -n 's/.*reserved \([0-9]*\) preserved blocks, \([0-9]*\) MiB (\([0-9]*\) bitmaps in \([0-9]*\) chunks, \([0-9]*\) runs) in \([0-9]*\) us.*/\1 \2 \3 \4 \5 \6/p')
	[ $# = 6 ] || fail "no KHO reserve line"
	blocks=$1 bitmaps=$3 chunks=$4 runs=$5 reserve=$6
	restore=$(echo "$rest" | sed -n 's/.* in \([0-9]*\) us$/\1/p')
	[ -n "$restore" ] || fail "no bench restore line"
	echo "$rest" | grep -q "restored \([0-9]*\) of \1 " || fail "not every block restored"
	echo "BENCH: kho $prev all_blocks=$blocks bitmaps=$bitmaps chunks=$chunks runs=$runs meta_bytes=$((bitmaps * 512 + chunks * 4096)) reserve_us=$reserve restore_us=$restore"
}

case "$1" in
prepare) prepare "$2" "$3" ;;
check) check "$2" ;;
*) fail "usage: $0 prepare BOOT STATE | check STATE" ;;
esac
