#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# make demo: from a fresh machine to a live update in QEMU, told step by step.
. "$(dirname "$0")/lib.sh"

n=0
step() {
	n=$((n + 1))
	printf '\n[%d] %s\n' "$n" "$*"
}
took() { printf '    (%ds)\n' $(($(date +%s) - $1)); }

t=$(date +%s)
step "Installing what is missing of: kernel build tools, $DEB_PKG, QEMU, busybox"
"$TOP/harness/deps.sh"
printf '    %s %s, %s\n' "$DEB_PKG" "$(dpkg-query -W -f='${Version}' "$DEB_PKG")" \
	"$(qemu-system-x86_64 --version | head -n1)"
took "$t"

t=$(date +%s)
step "Making build/linux: the Debian kernel source as tag 'base', then the series with git am"
"$TOP/harness/tree.sh"
printf '    %s\n' "$(git -C "$KTREE" log -1 --format='base:  %h %s' base)"
git -C "$KTREE" log --reverse --format='    patch: %h %s' base..HEAD
took "$t"

t=$(date +%s)
step "Building the test kernel (KASAN, lockdep, DEBUG_VM, KASLR; ccache) into build/bzImage"
"$TOP/harness/kernel.sh"
took "$t"

t=$(date +%s)
cycles=${VMTEST_CYCLES:-1}
step "Booting it in QEMU (q35, intel-iommu, edu) and running the tests, kexec'ing $cycles time(s) into the same kernel"
echo "    Each boot runs its tests; before a kexec the guest packs its state into"
echo "    the next initramfs, loads the kernel with kexec_file_load and reboots"
echo "    into it; after it, the tests check what must have survived."
rc=0
VMTEST_DEMO=1 python3 "$TOP/harness/vmtest.py" || rc=$?
took "$t"

step "The assigned device across that kexec (persistent IOMMU domain), as the guest logged it"
echo "    Boot 0: a VMM (edu_dma) maps a guestmemfs file into a HWPT with"
echo "    IOMMU_IOAS_MAP_FILE, attaches edu, marks the HWPT for preservation,"
echo "    holds it through the kexec and starts a DMA just before reboot()."
echo "    Boot 1: the kernel takes edu's translation back; a new VMM binds edu,"
echo "    gets the inherited domain by its token, DMAs, replaces it, frees it."
awk '/^VMTEST-BEGIN: boot(0\/lu_edu_prepare|1\/lu_edu_check)$/ { on = 1; print "    --- " $2; next }
     /^VMTEST-RESULT:/ { if (on) print "    --- " $2 " " $3; on = 0; next }
     on && /ok:|FAIL|replace of|live update|DMA goes on|took over/ {
	sub(/^\[ *[0-9.]+\] /, ""); print "    " $0 }' \
	"$BUILD/logs/vmtest-serial.log"

step "What was found"
if [ $rc = 0 ]; then
	echo "    every test passed, before and after kexec, with no kernel splat."
else
	echo "    failures: see the 'not ok' lines above and build/logs/vmtest-serial.log"
fi
exit $rc
