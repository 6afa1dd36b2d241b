#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make bench: the performance figures, measured in the test VM, written to
# build/bench/ as a table (bench.md) and a plot (bench.svg).
#
# BENCH_MEM: guest memory (default 8G); VMTEST_ACCEL=kvm where it works.
# Under TCG (the default here) times are those of an emulated CPU: compare
# them with each other, not with hardware.
. "$(dirname "$0")/lib.sh"

out=$BUILD/bench
mkdir -p "$out"
[ -f "$BUILD/bzImage" ] || die "no build/bzImage: run 'make kernel' first"

msg "KHO: preserve, finalize, kexec, reserve and restore at orders 0, 9 and 18"
VMTEST_MANIFESTS=$TOP/harness/bench/kho.vmt VMTEST_LOGS=$out/kho \
VMTEST_MEM=${BENCH_MEM:-8G} VMTEST_TIMEOUT=${BENCH_TIMEOUT:-3600} \
	python3 "$TOP/harness/vmtest.py" | tail -n 3

python3 "$TOP/harness/bench_report.py" "$out"
