#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# kunit SUITE...: the built-in KUnit suites ran at boot and passed.
# Prints each suite's KTAP results from debugfs.
fail() { echo "FAIL: $*"; exit 1; }

[ $# -gt 0 ] || fail "usage: kunit SUITE..."
dir=/sys/kernel/debug/kunit
for suite in "$@"; do
	res=$dir/$suite/results
	[ -r "$res" ] || fail "no results for KUnit suite $suite (CONFIG_KUNIT_DEBUGFS?)"
	cat "$res"
	grep -q "^not ok" "$res" && fail "suite $suite has failures"
	tail -n 1 "$res" | grep -q "^ok " || fail "suite $suite did not pass"
	grep -q "^# SKIP\|# SKIP" "$res" && fail "suite $suite skipped tests"
done
exit 0
