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

# Where this boot's carve-out is, from its messages: "base size" in hex.
carveout() {
	at='\([0-9]*\) MiB at \(0x[0-9a-f]*\)'
	dmesg | sed -n "s/.*guestmemfs: $at.*/\\2 \\1/p;
			s/.*guestmemfs: restored from the handover: $at.*/\\2 \\1/p" |
		tail -n 1
}

# Is the recorded carve-out inside a Reserved range of /proc/iomem, and
# in no System RAM?
still_reserved() {
	set -- $(cat "$STATE/gmfs.carveout")
	base=$(($1)) end=$(($1 + $2 * 1048576 - 1)) ok=1
	while read -r range name; do
		s=$((0x${range%-*})) e=$((0x${range#*-}))
		case "$name" in
		": Reserved") [ $s -le $base ] && [ $e -ge $end ] && ok=0 ;;
		": System RAM") [ $s -le $end ] && [ $e -ge $base ] && return 1 ;;
		esac
	done < /proc/iomem
	return $ok
}

# Was the recorded carve-out given back: is every byte of it System RAM
# or this boot's carve-out, none of it reserved and lost?
given_back() {
	set -- $(cat "$STATE/gmfs.carveout")
	base=$(($1)) end=$(($1 + $2 * 1048576)) got=0
	set -- $(carveout)
	if [ $# = 2 ]; then
		s=$(($1)) e=$(($1 + $2 * 1048576))
		[ $s -lt $base ] && s=$base
		[ $e -gt $end ] && e=$end
		[ $s -lt $e ] && got=$((e - s))
	fi
	while read -r range name; do
		[ "$name" = ": System RAM" ] || continue
		s=$((0x${range%-*})) e=$((0x${range#*-} + 1))
		[ $s -lt $base ] && s=$base
		[ $e -gt $end ] && e=$end
		[ $s -lt $e ] && got=$((got + e - s))
	done < /proc/iomem
	[ $got = $((end - base)) ]
}

check_data() {
	while read -r f seed size; do
		$UTIL check "$MNT/$f" "$seed" || fail "data of $f"
	done < "$STATE/gmfs.seeds"
}

prepare() {
	if ! mount_fs; then
		echo "no guestmemfs this boot: nothing to prepare"
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
	kho)
		[ "$state" = tree ] || { echo "no tree was handed over"; return 0; }
		mount_fs || fail "mount after a handover: $(dmesg | grep guestmemfs | tail -n 2)"
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
	plain|corrupt:*)
		rm -f "$STATE/gmfs.state" "$STATE/gmfs.seeds"
		if [ "$state" != tree ]; then
			:
		elif [ "$how" = plain ]; then
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
			[ "$how" != plain ] || fail "no guestmemfs after a plain kexec"
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
