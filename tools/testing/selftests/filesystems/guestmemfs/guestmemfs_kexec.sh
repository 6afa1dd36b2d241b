#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# guestmemfs across a chain of real kexecs.
#
#   guestmemfs_kexec.sh prepare STATE        in the kernel that kexecs,
#                                            before the handover is finalized
#   guestmemfs_kexec.sh check STATE HOW      in the kernel it boots
#
# The kexec is the caller's, and so is the kexec handover; STATE is a
# directory that survives the kexec, and HOW says what the previous kernel
# handed over: "kho" (a good handover), "plain" (none), "corrupt:KIND" (a
# damaged one, see tools/testing/selftests/kho/kho_kexec.sh), or
# "subtree:guestmemfs" (a good handover whose guestmemfs part points at
# memory that is not preserved).
#
# The first time, prepare builds a tree of directories and files of varied
# sizes (one of 300 MiB, one truncated to nothing after it held data) with
# random contents, modes, owners and times, and records it; later it grows,
# shrinks, removes and creates files. It also checks the freeze: with a
# file mapped, finalizing the handover makes namespace changes fail with
# EBUSY while mapped data stays writable, and aborting thaws it. After a
# good handover, check compares every name, size, mode, owner, time and
# byte with the record, then checks that the free space is what the files
# leave, and that filling it to ENOSPC leaves every file intact. After
# none, the filesystem must be new and empty (guestmemfs= reserved a new
# carve-out, and the old one is RAM again or the new one); after a damaged
# one, whatever the kernel could make of it, but never a half-restored
# tree, and the old carve-out still reserved.

MNT=/mnt/guestmemfs
UTIL=$(dirname "$0")/gmfs_util
FINALIZE=/sys/kernel/debug/kho/out/finalize

fail() {
	echo "FAIL: $*"
	exit 1
}

mount_fs() {
	mkdir -p $MNT
	grep -q " $MNT guestmemfs " /proc/mounts && return 0
	# noatime: a check that reads must not change what it checks
	mount -t guestmemfs -o noatime none $MNT 2>/dev/null
}

# name|type|mode|uid|gid|size|mtime|atime, one line per entry, sorted
snapshot() {
	(cd $MNT && find . -mindepth 1 ! -name '.gmfs_*' | sort |
		while read -r f; do
			stat -c '%n|%F|%a|%u|%g|%s|%Y|%X' "$f"
		done)
}

# path seed size, one line per file with data
add_file() {
	$UTIL fill "$MNT/$1" "$2" "$3" || fail "fill $1"
	sed -i "\\|^$1 |d" "$STATE/gmfs.seeds" 2>/dev/null
	echo "$1 $3 $2" >> "$STATE/gmfs.seeds"
}

build_tree() {
	: > "$STATE/gmfs.seeds"
	mkdir -p $MNT/a/b/c $MNT/d || fail "mkdir"
	chmod 0700 $MNT/a/b
	chmod 0711 $MNT/a/b/c
	chown 1000:100 $MNT/d
	chmod 2750 $MNT/d
	touch $MNT/a/empty
	add_file a/one 1 11
	add_file a/b/page 4095 12
	add_file a/b/c/block 2097152 13
	add_file d/blockplus 2097153 14
	add_file d/ten 10485760 15
	add_file big 314572800 16
	chmod 0640 $MNT/a/b/page
	chown 65534:65534 $MNT/a/b/c/block
	chmod 0600 $MNT/big
	touch -t 200102030405.06 $MNT/a/one
	touch -t 199912312359.59 $MNT/d/ten
	empty_file a/emptied 17
}

# A file that held blocks and was truncated to nothing.
empty_file() {
	add_file "$1" 4194304 "$2"
	truncate -s 0 "$MNT/$1" || fail "truncate $1 to 0"
	sed -i "\\|^$1 |d" "$STATE/gmfs.seeds"
}

# Between kexecs: grow, shrink, remove, create.
change_tree() {
	gen=$1
	add_file a/one 3145728 $((100 + gen))
	$UTIL check $MNT/d/ten 15 >/dev/null 2>&1 && {
		truncate -s 4194304 $MNT/d/ten || fail "shrink d/ten"
		sed -i 's|^d/ten 15 .*|d/ten 15 4194304|' "$STATE/gmfs.seeds"
	}
	rm -f $MNT/a/b/page
	sed -i '\|^a/b/page |d' "$STATE/gmfs.seeds"
	mkdir -p $MNT/gen$gen
	add_file gen$gen/new 6291457 $((200 + gen))
	chown 4321:8765 $MNT/gen$gen/new
	empty_file a/emptied $((300 + gen))
}

# This boot's carve-out, from /proc/iomem: a "first last" line (hex,
# inclusive) per range.
carveout() {
	sed -n 's/^ *\([0-9a-f]*\)-\([0-9a-f]*\) : guestmemfs$/\1 \2/p' /proc/iomem
}

# Bytes of [$1, $2] (inclusive) that /proc/iomem lines named $3 cover
covered() {
	lo=$1 hi=$2 sum=0
	while read -r range name; do
		[ "$name" = ": $3" ] || continue
		s=$((0x${range%-*})) e=$((0x${range#*-}))
		[ $s -lt $lo ] && s=$lo
		[ $e -gt $hi ] && e=$hi
		[ $s -le $e ] && sum=$((sum + e - s + 1))
	done <<EOF
$(sed 's/^ *//' /proc/iomem)
EOF
	echo $sum
}

# Every file with data holds the bytes its seed gives
check_data() {
	while read -r f seed size; do
		$UTIL check "$MNT/$f" "$seed" || fail "data of $f"
	done < "$STATE/gmfs.seeds"
}

# Is every range of the recorded carve-out reserved, none of it RAM?
still_reserved() {
	[ -s "$STATE/gmfs.carveout" ] || return 1
	while read -r first last; do
		lo=$((0x$first)) hi=$((0x$last))
		[ "$(covered $lo $hi "System RAM")" = 0 ] || return 1
		[ "$(covered $lo $hi Reserved)" = $((hi - lo + 1)) ] || return 1
	done < "$STATE/gmfs.carveout"
}

# Was the recorded carve-out given back: is every byte of it System RAM
# or this boot's carve-out, none of it reserved and lost?
given_back() {
	while read -r first last; do
		lo=$((0x$first)) hi=$((0x$last))
		got=$(( $(covered $lo $hi "System RAM") + $(covered $lo $hi guestmemfs) ))
		[ $got = $((hi - lo + 1)) ] || return 1
	done < "$STATE/gmfs.carveout"
}

# Is every range of this boot's carve-out RAM in the firmware memory map,
# /sys/firmware/memmap (e820_table_firmware, where KVM asks whether a PFN
# is RAM to map it write-back)?
firmware_ram() {
	carveout | while read -r first last; do
		lo=$((0x$first)) hi=$((0x$last)) ok=
		for d in /sys/firmware/memmap/*; do
			[ "$(cat "$d/type")" = "System RAM" ] || continue
			s=$(($(cat "$d/start"))) e=$(($(cat "$d/end")))
			[ $s -le $lo ] && [ $e -ge $hi ] && ok=1
		done
		[ -n "$ok" ] || { echo "[$first-$last] is not RAM in the firmware map"; exit 1; }
	done
}

# The 16 hex digits of $1 as its 8 bytes lie in memory (little endian)
le64() {
	h=$(printf '%016x' "$1") out=
	while [ -n "$h" ]; do
		out="$out${h#"${h%??}"}"
		h=${h%??}
	done
	echo "$out"
}

# Does the outgoing handover carry the recorded carve-out as memory
# outside the direct map (base and size of each range, in the root FDT)?
carried() {
	echo 1 > $FINALIZE || return 1
	blob=$(od -An -v -tx1 /sys/kernel/debug/kho/out/fdt | tr -d ' \n')
	echo 0 > $FINALIZE
	while read -r first last; do
		want=$(le64 $((0x$first)))$(le64 $((0x$last - 0x$first + 1)))
		case "$blob" in *"$want"*) ;; *) return 1 ;; esac
	done < "$STATE/gmfs.carveout"
}

prepare() {
	if ! mount_fs; then
		echo "no guestmemfs this boot: nothing to prepare"
		# A carve-out whose metadata was refused: still nobody's at
		# the next kexec with handover
		if [ -s "$STATE/gmfs.carveout" ] && [ -w $FINALIZE ] &&
		   still_reserved; then
			carried || fail "the refused carve-out is not handed over again"
			ranges=$(tr '\n' ' ' < "$STATE/gmfs.carveout")
			echo "the refused carve-out ${ranges}is handed over again"
		fi
		echo nofs > "$STATE/gmfs.state"
		return 0
	fi
	if [ "$(cat "$STATE/gmfs.state" 2>/dev/null)" = tree ]; then
		gen=$(($(cat "$STATE/gmfs.gen") + 1))
		change_tree $gen
		echo "changed the tree (generation $gen)"
	else
		gen=0
		build_tree
		echo "built a new tree"
	fi
	echo $gen > "$STATE/gmfs.gen"
	carveout > "$STATE/gmfs.carveout"
	[ -s "$STATE/gmfs.carveout" ] || fail "where is the carve-out?"
	snapshot > "$STATE/gmfs.snapshot"
	echo tree > "$STATE/gmfs.state"
	$UTIL usage $MNT || fail "free space"

	if [ -w $FINALIZE ]; then
		$UTIL fill $MNT/.gmfs_freeze 4194304 1 || fail "freeze probe"
		$UTIL freeze $MNT/.gmfs_freeze $FINALIZE || fail "freeze"
		rm -f $MNT/.gmfs_freeze
	fi
	echo "$(wc -l < "$STATE/gmfs.snapshot") entries," \
		"$(wc -l < "$STATE/gmfs.seeds") files with data"
}

check() {
	how=$2
	state=$(cat "$STATE/gmfs.state" 2>/dev/null)
	echo "previous kernel: guestmemfs $state, handover $how"
	case "$how" in
	kho|bad-ranges)
		[ "$state" = tree ] || { echo "no tree was handed over"; return 0; }
		mount_fs || fail "mount after a handover: $(dmesg | grep guestmemfs | tail -n 2)"
		[ "$(carveout)" = "$(cat "$STATE/gmfs.carveout")" ] ||
			fail "the carve-out moved: $(carveout | tr '\n' ' ')"
		firmware_ram || fail "KVM would map guest RAM uncached"
		echo "carve-out $(carveout | tr '\n' ' ')kept, RAM in the firmware map"
		snapshot > /tmp/gmfs.now
		if ! cmp -s "$STATE/gmfs.snapshot" /tmp/gmfs.now; then
			diff "$STATE/gmfs.snapshot" /tmp/gmfs.now
			fail "the tree differs"
		fi
		check_data
		echo "tree identical: $(wc -l < /tmp/gmfs.now) entries," \
			"every byte of $(wc -l < "$STATE/gmfs.seeds") files"
		$UTIL usage $MNT || fail "free space"
		$UTIL fill-rest $MNT/.gmfs_filler || fail "fill to ENOSPC"
		check_data
		echo "every file intact after filling the free space"
		;;
	subtree:guestmemfs)
		rm -f "$STATE/gmfs.state" "$STATE/gmfs.seeds"
		[ "$state" = tree ] || { echo "no tree was handed over"; return 0; }
		! mount_fs || fail "mounted metadata that cannot be valid"
		n=$(dmesg | grep -c "guestmemfs: rejecting the handed-over metadata")
		[ "$n" = 1 ] || fail "$n rejection messages, expected one"
		dmesg | grep "guestmemfs: rejecting"
		still_reserved || fail "the carve-out is not reserved any more"
		echo "metadata refused, mount refused," \
			"carve-out $(cat "$STATE/gmfs.carveout") still reserved"
		;;
	plain|corrupt:*|reclaim:*)
		rm -f "$STATE/gmfs.state" "$STATE/gmfs.seeds"
		if [ "$state" != tree ]; then
			:
		elif [ "$how" = plain ] || [ "${how%%:*}" = reclaim ]; then
			# Nothing was handed over: the memory is this kernel's
			# again, not lost at every kexec.
			old=$(cat "$STATE/gmfs.carveout")
			given_back || fail "the old carve-out $old was not given back"
			echo "the old carve-out $old was given back"
		else
			# Handed over and refused: still nobody's.
			still_reserved || fail "the old carve-out is not reserved any more"
			echo "the old carve-out $(cat "$STATE/gmfs.carveout") is still reserved"
		fi
		if mount_fs; then
			[ -z "$(snapshot)" ] || fail "not a new filesystem: $(snapshot | head -n 3)"
			$UTIL usage $MNT || fail "free space"
			echo "a new, empty filesystem"
		else
			echo "no guestmemfs: $(dmesg | grep guestmemfs | tail -n 1)"
			[ "${how%%:*}" = corrupt ] ||
				fail "no guestmemfs after $how"
		fi
		;;
	*)
		fail "unknown handover $how"
		;;
	esac
}

STATE=$2
case "$1" in
prepare) [ $# = 2 ] || fail "usage: $0 prepare STATE"; prepare ;;
check) [ $# = 3 ] || fail "usage: $0 check STATE HOW"; check "$2" "$3" ;;
*) fail "usage: $0 prepare STATE | check STATE HOW" ;;
esac
