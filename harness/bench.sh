#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make bench: the performance figures, measured in the test VM, written to
# build/bench/ as a table (bench.md) and a plot (bench.svg).
#
# BENCH_MEM: guest memory (default 8G); BENCH_ONLY=kho, gmfs, iommufd or
# iommu-lu:
# one part only; VMTEST_ACCEL=kvm where it works.
# The figures are taken on a kernel of their own: the series with the test
# kernel's options minus the debugging ones (KASAN, lockdep, DEBUG_VM),
# built into build/obj-bench (KERNEL_FLAVOR=bench make kernel), whose
# costs would otherwise dominate them; BENCH_KERNEL=test measures the test
# kernel instead. Under TCG (the default here) times are those of an
# emulated CPU: compare them with each other, not with hardware.
. "$(dirname "$0")/lib.sh"

out=$BUILD/bench
mkdir -p "$out"
case "${BENCH_KERNEL:-bench}" in
bench)
	msg "the bench kernel: the series without the debugging options"
	KERNEL_FLAVOR=bench "$TOP/harness/kernel.sh"
	export VMTEST_KERNEL=$BUILD/bzImage-bench ;;
test)
	[ -f "$BUILD/bzImage" ] || die "no build/bzImage: run 'make kernel' first"
	export VMTEST_KERNEL=$BUILD/bzImage ;;
*) die "BENCH_KERNEL=${BENCH_KERNEL}: expected bench or test" ;;
esac
echo "kernel: $VMTEST_KERNEL" > "$out/kernel"

only=${BENCH_ONLY:-}
if [ -z "$only" ] || [ "$only" = kho ]; then
msg "KHO: preserve, finalize, kexec, reserve and restore at orders 0, 9 and 18"
VMTEST_MANIFESTS=$TOP/harness/bench/kho.vmt VMTEST_LOGS=$out/kho \
VMTEST_MEM=${BENCH_MEM:-8G} VMTEST_TIMEOUT=${BENCH_TIMEOUT:-3600} \
	python3 "$TOP/harness/vmtest.py" | tail -n 1
fi

bench_run() {	# NAME MANIFEST [APPEND]
	VMTEST_MANIFESTS=$TOP/harness/bench/$2 VMTEST_LOGS=$out/$1 \
	VMTEST_APPEND=${3:-} VMTEST_MEM=${BENCH_MEM:-8G} \
	VMTEST_TIMEOUT=${BENCH_TIMEOUT:-3600} \
		python3 "$TOP/harness/vmtest.py" | tail -n 1
}

if [ -z "$only" ] || [ "$only" = gmfs ]; then
msg "guestmemfs: page faults and time to write 1 GiB, against hugetlbfs and tmpfs"
bench_run gmfs-touch gmfs-touch.vmt
msg "guestmemfs: memory map and direct map, 1 GiB carve-out against 1 GiB of hugetlbfs"
bench_run meminfo-guestmemfs gmfs-meminfo.vmt "guestmemfs=1G kunit.enable=0"
bench_run meminfo-hugetlbfs gmfs-meminfo.vmt "hugepagesz=2M hugepages=512 kunit.enable=0"
msg "guestmemfs: the live update blackout with a full 3 GiB carve-out"
bench_run gmfs-blackout gmfs-blackout.vmt
fi

if [ -z "$only" ] || [ "$only" = iommufd ]; then
msg "iommufd: IOMMU_IOAS_MAP_FILE of 1 GiB, guestmemfs against hugetlbfs and shmem memfds"
bench_run iommufd-map iommufd-map.vmt
fi

if [ -z "$only" ] || [ "$only" = iommu-lu ]; then
msg "persistent IOMMU domains: 1 GiB and 4 GiB handed over and taken back, with 1 GiB, 2 MiB and 4 KiB IOPTEs"
bench_run iommu-lu iommu-lu.vmt
fi

python3 "$TOP/harness/bench_report.py" "$out"
