#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# gmfs_bench touch | meminfo | prepare STATE | check STATE
#
# The guestmemfs figures of make bench, one "BENCH:" line each:
#   touch    page faults and time to size a 1 GiB file and write every
#            byte of it through a mapping, in guestmemfs (on blocks
#            cleared ahead of time, and clearing them), hugetlbfs (2 MiB
#            pages) and tmpfs
#   meminfo  what the kernel reserved at boot and how it mapped memory,
#            to compare a boot with a guestmemfs carve-out with one that
#            has the same memory in hugetlbfs
#   prepare  fill the carve-out with files and finalize the handover
#   check    after the kexec: restore and mount times (the host times the
#            kexec itself, from the serial console)
UTIL=/tests/filesystems/guestmemfs/gmfs_util
fail() { echo "FAIL: $*"; exit 1; }

AHEAD=/sys/module/guestmemfs/parameters/zero_ahead
CLEAN=/sys/kernel/debug/guestmemfs/clean_blocks

# Until every free block of /mnt/g is cleared ahead of time (up to 2 min)
wait_clean() {
	i=0
	while [ "$(cat $CLEAN)" != "$(stat -f -c %f /mnt/g)" ]; do
		i=$((i + 1))
		[ $i -lt 1200 ] || fail "free blocks not cleared ahead: $(cat $CLEAN)"
		sleep 0.1
	done
}

touch_one() {
	res=$($UTIL touch "$2" 1073741824) || fail "touch $2: $res"
	echo "BENCH: touch fs=$1 $res"
	rm -f "$2"
}

case "$1" in
touch)
	mkdir -p /mnt/g /mnt/h /mnt/t
	mount -t guestmemfs none /mnt/g || fail "mount guestmemfs"
	mount -t hugetlbfs -o pagesize=2M none /mnt/h || fail "mount hugetlbfs"
	mount -t tmpfs -o size=2G none /mnt/t || fail "mount tmpfs"
	# Grows on blocks the kernel cleared ahead of time, then, with that
	# off and every free block freed since (dirty), grows that clear them
	echo 1 > $AHEAD || fail "no $AHEAD"
	wait_clean
	touch_one guestmemfs-cleared-ahead /mnt/g/f
	echo 0 > $AHEAD
	$UTIL fill-rest /mnt/g/d > /dev/null || fail "fill-rest"
	touch_one guestmemfs-clearing /mnt/g/f
	echo 1 > $AHEAD
	touch_one hugetlbfs-2M /mnt/h/f
	touch_one tmpfs /mnt/t/f
	;;
meminfo)
	mem=$(dmesg | sed -n 's/.*Memory: \([0-9]*\)K\/\([0-9]*\)K available.* \([0-9]*\)K reserved.*/avail_k=\1 total_k=\2 reserved_k=\3/p')
	dm=$(awk '/^DirectMap/ { sub(":", "", $1); printf "%s_k=%s ", $1, $2 }' /proc/meminfo)
	echo "BENCH: meminfo cmdline=$(grep -o 'guestmemfs=[^ ]*\|hugepages=[^ ]*' /proc/cmdline | tr '\n' ,) $mem $dm"
	;;
prepare)
	mkdir -p /mnt/g
	mount -t guestmemfs none /mnt/g || fail "mount guestmemfs"
	set -- $(stat -f -c '%b %S' /mnt/g) "$2"
	blocks=$1
	# four large files in most of it, and one with data to check
	each=$(((blocks - 40) / 4 * 2097152))
	for i in 1 2 3 4; do
		truncate -s $each /mnt/g/vm$i || fail "size vm$i"
	done
	$UTIL fill /mnt/g/data 67108864 42 || fail "fill data"
	echo "$blocks $(ls /mnt/g | wc -l)" > "$3/gmfs_bench"
	res=$(timed_write /sys/kernel/debug/kho/out/finalize 1) || fail "finalize"
	echo "$res" >> "$3/gmfs_bench"
	echo "carve-out of $blocks blocks, 5 files; finalize $res"
	;;
check)
	[ -r "$2/gmfs_bench" ] || exit 0
	set -- $(head -n 1 "$2/gmfs_bench") "$2"
	blocks=$1 files=$2 state=$3
	fin=$(sed -n 2p "$state/gmfs_bench")
	mkdir -p /mnt/g
	mnt=$($UTIL mount /mnt/g) || fail "mount"
	echo "BENCH: gmfs-mounted"
	restore=$(dmesg | sed -n 's/.*guestmemfs: restored .* in \([0-9]*\) us.*/\1/p')
	[ "$(ls /mnt/g | wc -l)" = "$files" ] || fail "files missing"
	$UTIL check /mnt/g/data 42 || fail "data"
	echo "BENCH: blackout carveout_mib=$((blocks * 2)) files=$files finalize_$fin restore_us=$restore mount_$mnt"
	;;
*)
	fail "usage: $0 touch | meminfo | prepare STATE | check STATE"
	;;
esac
