#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Tests of the harness itself.

Offline: vmtest's log analysis on canned serial logs (pass, failing test,
splat, guest death, unexpected results) and its manifest parser.
Live (needs build/bzImage): vmtest run on deliberately broken tests must
fail, name the failing TAP lines, and end within a bounded time when the
kernel panics or hangs after kexec.
"""

import os
import subprocess
import sys
import tempfile
import time
import unittest

OFFLINE = '--offline' in sys.argv
if OFFLINE:
    sys.argv.remove('--offline')
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, 'harness'))
import vmtest  # noqa: E402


def manifest(text):
    with tempfile.NamedTemporaryFile('w', suffix='.vmt', delete=False) as f:
        f.write(text)
    try:
        return vmtest.Manifest([f.name])
    finally:
        os.unlink(f.name)


MAN = 'first\ta\ttrue\nafter\tb\ttrue\nevery\tc\ttrue\nbefore\td\ttrue\nlast\te\ttrue\n'


def log_of(results, boots=2, extra=None):
    lines = []
    for b in range(boots):
        lines.append('[    0.000000] Linux version 6.12.117-liveupdate+ (root@vm)')
        lines += (extra or {}).get(b, [])
        for tid, ok in results:
            if tid.startswith('boot%d/' % b):
                lines.append('VMTEST-BEGIN: ' + tid)
                lines.append('some output')
                lines.append('VMTEST-RESULT: %s %s' % ('ok' if ok else 'not ok', tid))
    lines.append('VMTEST-DONE')
    return lines


class Offline(unittest.TestCase):
    def test_stage_order(self):
        m = manifest(MAN)
        self.assertEqual(m.expected(0), ['boot0/a', 'boot0/c', 'boot0/e'])
        self.assertEqual(m.expected(2), [
            'boot0/a', 'boot0/c', 'boot0/d',
            'boot1/b', 'boot1/c', 'boot1/d',
            'boot2/b', 'boot2/c', 'boot2/e'])

    def test_manifest_errors(self):
        for bad in ('sometimes\tx\ttrue\n', 'first\tx\n',
                    'first\tx\ttrue\nlast\tx\ttrue\n', 'build kunit foo\n',
                    'build selftest\n'):
            with self.assertRaises(SystemExit, msg=bad):
                manifest(bad)

    def test_selftest_builds(self):
        m = manifest('build\tselftest kho\nbuild\tselftest iommu a b\n')
        self.assertEqual(m.selftests, [('kho', []), ('iommu', ['a', 'b'])])

    def test_all_pass(self):
        exp = manifest(MAN).expected(1)
        tap = vmtest.analyse(log_of([(t, True) for t in exp]), exp, 1, 'done')
        self.assertTrue(all(t[0] for t in tap), tap)
        self.assertEqual(len(tap), len(exp) + 2 + 1)

    def test_failing_test_is_reported_with_output(self):
        exp = manifest(MAN).expected(1)
        res = [(t, t != 'boot1/b') for t in exp]
        tap = vmtest.analyse(log_of(res), exp, 1, 'done')
        bad = [t for t in tap if not t[0]]
        self.assertEqual([t[1] for t in bad], ['boot1/b'])
        self.assertEqual(bad[0][3], ['some output'])

    def test_splat_fails_its_boot(self):
        exp = manifest(MAN).expected(1)
        extra = {1: ['[    5.1] WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2']}
        tap = vmtest.analyse(log_of([(t, True) for t in exp], extra=extra),
                             exp, 1, 'done')
        bad = [t[1] for t in tap if not t[0]]
        self.assertEqual(bad, ['boot1/kernel_log'])

    def test_mm_and_iommu_reports_fail_their_boot(self):
        # Page table corruption and DMA the vIOMMU could not translate
        # are failures even without a WARNING or a BUG.
        exp = manifest(MAN).expected(1)
        for report in (
                '[    7.2] mm/pgtable-generic.c:42: bad pud 00000001(8000000140000e7)',
                '[    7.2] mm/pgtable-generic.c:32: bad pmd 0000000f(00000001)',
                '[    7.3] BUG: Bad page map in process x  pte:800000',
                '[    7.3] BUG: Bad rss-counter state mm:000000 type:MM_FILEPAGES val:1',
                'qemu-system-x86_64: vtd_iova_to_slpte: detected slpte permission error (iova=0x4000000, level=0x1, slpte=0x0, write=1, pasid=0x0)',
                'qemu-system-x86_64: vtd_iommu_translate: detected translation failure (dev=01:00:00, iova=0x4000000)'):
            extra = {0: [report]}
            tap = vmtest.analyse(log_of([(t, True) for t in exp], extra=extra),
                                 exp, 1, 'done')
            bad = [t[1] for t in tap if not t[0]]
            self.assertEqual(bad, ['boot0/kernel_log'], report)

    def test_expected_fault_is_accepted_in_its_boot_only(self):
        # A test that provokes a DMA fault says which line it expects;
        # that boot accepts it, another line or another boot does not.
        exp = manifest(MAN).expected(1)
        fault = ('[    9.1] DMAR: [DMA Write NO_PASID] Request device '
                 '[01:00.0] fault addr 0xc2c0000 [fault reason 0x06] PTE Write access is not set')
        qemu = ('qemu-system-x86_64: vtd_iommu_translate: detected '
                'translation failure (dev=01:00:00, iova=0xc2c0005)')
        expect = [r'VMTEST-EXPECT: DMAR: \[DMA Write NO_PASID\] Request device \[01:00.0\] fault addr 0xc[0-3][0-9a-f]{5} ',
                  r'VMTEST-EXPECT: vtd_[a-z_]*: detected translation failure \(dev=01:00:00, iova=0xc[0-3][0-9a-f]{5}\)']
        other = fault.replace('01:00.0', '00:02.0')
        for extra, want in (
                ({1: expect + [fault, qemu]}, []),
                ({1: [fault] + expect}, []),
                ({0: expect, 1: [fault]}, ['boot1/kernel_log']),
                ({1: expect + [other]}, ['boot1/kernel_log']),
                ({1: expect + [fault, '[    9.2] WARNING: CPU: 0 PID: 1 at x']},
                 ['boot1/kernel_log']),
                ({1: ['VMTEST-EXPECT: (']}, ['boot1/expect'])):
            tap = vmtest.analyse(log_of([(t, True) for t in exp], extra=extra),
                                 exp, 1, 'done')
            bad = [t[1] for t in tap if not t[0]]
            self.assertEqual(bad, want, extra)

    def test_guest_death_after_kexec(self):
        exp = manifest(MAN).expected(1)
        lines = log_of([(t, True) for t in exp if t.startswith('boot0')], boots=1)
        lines = lines[:-1] + ['[    0.000000] Linux version 6.12.117',
                              '[    3.0] Kernel panic - not syncing: x']
        tap = vmtest.analyse(lines, exp, 1, 'the guest stopped early')
        bad = sorted(t[1] for t in tap if not t[0])
        self.assertEqual(bad, ['boot1/b', 'boot1/c', 'boot1/e',
                               'boot1/kernel_log', 'vmtest/completed'])

    def test_unexpected_result_fails(self):
        exp = manifest(MAN).expected(0)
        res = [(t, True) for t in exp] + [('boot0/zz', True)]
        tap = vmtest.analyse(log_of(res, boots=1), exp, 0, 'done')
        self.assertEqual([t[1] for t in tap if not t[0]], ['boot0/zz'])

    def test_tap_summary_line(self):
        tap = [(True, 'a', '', []), (False, 'b', 'why', ['x'])]
        with tempfile.TemporaryFile('w+') as f:
            self.assertEqual(vmtest.print_tap(tap, f), 1)
            f.seek(0)
            out = f.read().splitlines()
        self.assertIn('not ok 2 - b # why', out)
        self.assertEqual(out[-1], '1 passed, 1 failed')


def vmrun(vmt, **env):
    e = dict(os.environ)
    # The kernel's boot-time KUnit suites have nothing to do with these.
    e.update(VMTEST_APPEND='kunit.enable=0',
             VMTEST_MANIFESTS=os.path.join(HERE, vmt),
             VMTEST_LOGS=os.path.join(TOP, 'build', 'logs', 'selftest-' + vmt[:-4]))
    e.update({k: str(v) for k, v in env.items()})
    t0 = time.time()
    p = subprocess.run([sys.executable, os.path.join(TOP, 'harness', 'vmtest.py')],
                       env=e, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode, p.stdout.decode(errors='replace'), time.time() - t0


@unittest.skipIf(OFFLINE, '--offline: no QEMU runs')
class Live(unittest.TestCase):
    def test_wrong_byte_and_panic_after_kexec(self):
        rc, out, took = vmrun('panic-after-kexec.vmt', VMTEST_CYCLES=1,
                              VMTEST_TIMEOUT=300)
        lines = out.splitlines()
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r'(?m)^ok \d+ - boot0/write_byte$')
        self.assertRegex(out, r'(?m)^not ok \d+ - boot1/wrong_byte # \(exit status 1\)$')
        self.assertRegex(out, r'(?m)^not ok \d+ - boot1/crash # no result: the guest stopped inside it$')
        self.assertRegex(out, r'(?m)^not ok \d+ - boot1/never_runs # no result')
        self.assertRegex(out, r'(?m)^not ok \d+ - boot1/kernel_log # kernel reported: .*(sysrq|Kernel panic|BUG)')
        self.assertRegex(out, r'(?m)^not ok \d+ - vmtest/completed # the guest stopped early')
        self.assertRegex(lines[-1], r'^\d+ passed, [1-9]\d* failed$')
        # panic=-1 and -no-reboot: QEMU exits at once, not at the timeout
        self.assertLess(took, 200, out)
        print('\n  panic after kexec: vmtest failed in %.0f s' % took, file=sys.stderr)

    def test_hang_after_kexec(self):
        rc, out, took = vmrun('hang-after-kexec.vmt', VMTEST_CYCLES=1,
                              VMTEST_SILENCE=20, VMTEST_TIMEOUT=300)
        self.assertEqual(rc, 1, out)
        self.assertRegex(out, r'(?m)^not ok \d+ - boot1/hang # no result: the guest stopped inside it$')
        self.assertRegex(out, r'(?m)^not ok \d+ - vmtest/completed # timeout: the guest printed nothing for 20 s$')
        self.assertLess(took, 200, out)
        print('\n  hang after kexec: vmtest failed in %.0f s' % took, file=sys.stderr)


if __name__ == '__main__':
    unittest.main(verbosity=2)
