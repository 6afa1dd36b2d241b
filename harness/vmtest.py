#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boot build/bzImage in QEMU, run the tests across real kexecs, report TAP.

The tests are data: harness/vmtest.d/*.vmt (or VMTEST_MANIFESTS) list them
as "<stage>[@<boot>] <name> <command>" lines (with @<boot>: that boot
only); "build selftest <dir> [<program>...]"
lines name kselftest directories of the kernel tree (or only some of their
programs) to build and install under /tests/<dir>; "append <args>" lines add kernel arguments, and
"kexec-append <args>" ones arguments of the kexec'd kernels only; "cycles <n>"
lines say how many kexecs a suite's plan needs (the run does the most any
suite asks for, unless VMTEST_CYCLES says otherwise). The guest side is
harness/guest/init.

The run fails on any test that fails or never reports, on any kernel splat
in the serial log (BUG, WARNING, KASAN, lockdep, ...), on a guest that
stops early (panic, triple fault) and on a timeout: the whole run is bounded
by VMTEST_TIMEOUT and a silent guest by VMTEST_SILENCE seconds.

Environment: VMTEST_CYCLES (kexecs, default 1), VMTEST_ACCEL (tcg|kvm),
VMTEST_MEM (default 8G), VMTEST_SMP (2), VMTEST_APPEND (more kernel
arguments), VMTEST_TIMEOUT, VMTEST_SILENCE, VMTEST_MANIFESTS (colon
separated), VMTEST_LOGS (where the serial log and TAP go, default
build/logs), VMTEST_DEMO=1 (narrate every step), VMTEST_KERNEL (the
bzImage to boot and kexec into, default build/bzImage).
"""

import glob
import os
import re
import secrets
import select
import shlex
import shutil
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get('BUILD', os.path.join(TOP, 'build'))
KTREE = os.path.join(BUILD, 'linux')
GUEST = os.path.join(TOP, 'harness', 'guest')
KERNEL = os.environ.get('VMTEST_KERNEL', os.path.join(BUILD, 'bzImage'))
STAGES = ('first', 'after', 'every', 'before', 'last')

# A line of the serial log matching any of these fails the boot it is in.
SPLATS = [
    r'\bBUG: ', r'\bWARNING: ', r'kernel BUG at', r'Kernel panic',
    r'\bOops\b', r'general protection fault', r'\bKASAN\b', r'\bUBSAN\b',
    r'possible circular locking', r'possible recursive locking',
    r'inconsistent lock state', r'suspicious RCU usage',
    r'DEBUG_LOCKS_WARN_ON', r'rcu.*detected stalls?', r'blocked for more than',
    r'list_(add|del) corruption', r'refcount_t: ', r'Bad page',
    r'\bbad p(gd|4d|ud|md|te)\b', r'BUG: Bad rss',
    r'page dumped because', r'Call Trace:', r'DMAR: \[(DMA|INTR)',
    # QEMU's intel-iommu on its stderr (merged into the log): a DMA it
    # could not translate
    r'\bvtd_\w+: detected',
]
SPLAT_RE = re.compile('|'.join('(?:%s)' % s for s in SPLATS))
BANNER_RE = re.compile(r'Linux version \S+')
RESULT_RE = re.compile(r'VMTEST-RESULT: (ok|not ok) (\S+)(.*)')
BEGIN_RE = re.compile(r'VMTEST-BEGIN: (\S+)')
STEP_RE = re.compile(r'VMTEST-STEP: (.*)')
# A test that makes the kernel or QEMU report a fault on purpose says so
# first, with the pattern of the line it expects; only its boot accepts it.
EXPECT_RE = re.compile(r'VMTEST-EXPECT: (.*)')


def log(msg):
    print(msg, flush=True)


class Manifest:
    """Tests and selftest builds from the .vmt files."""

    def __init__(self, paths):
        self.tests = []         # (stage, name, command)
        self.selftests = []     # kselftest dirs to build
        self.append = []        # kernel arguments
        self.kexec_append = []  # kernel arguments after a kexec
        self.cycles = None      # kexecs the suites need (default 1)
        for path in paths:
            with open(path) as f:
                for n, line in enumerate(f, 1):
                    line = line.strip()
                    if not line or line.startswith('#'):
                        continue
                    where = '%s:%d' % (os.path.relpath(path, TOP), n)
                    words = line.split(None, 2)
                    if words[0] == 'append' and len(words) > 1:
                        self.append += line.split()[1:]
                        continue
                    if words[0] == 'kexec-append' and len(words) > 1:
                        self.kexec_append += line.split()[1:]
                        continue
                    if words[0] == 'cycles':
                        if len(words) != 2 or not words[1].isdigit():
                            sys.exit('%s: expected "cycles <n>"' % where)
                        self.cycles = max(self.cycles or 0, int(words[1]))
                        continue
                    if words[0] == 'build':
                        w = line.split()
                        if len(w) < 3 or w[1] != 'selftest':
                            sys.exit('%s: expected "build selftest <dir> '
                                     '[<program>...]"' % where)
                        self.selftests.append((w[2], w[3:]))
                        continue
                    stage, _, at = (words[0].partition('@') if words
                                    else ('', '', ''))
                    if len(words) != 3 or stage not in STAGES or \
                            (at and not at.isdigit()):
                        sys.exit('%s: expected "<stage>[@<boot>] <name> '
                                 '<command>" with stage one of %s' %
                                 (where, ', '.join(STAGES)))
                    if not re.match(r'^[A-Za-z0-9_.-]+$', words[1]):
                        sys.exit('%s: bad test name %r' % (where, words[1]))
                    if any(t[1] == words[1] for t in self.tests):
                        sys.exit('%s: duplicate test name %s' % (where, words[1]))
                    self.tests.append(tuple(words))
        if self.cycles is None:
            self.cycles = 1

    def stages_of_boot(self, boot, cycles):
        """The stages boot runs, in order (harness/guest/init agrees)."""
        st = []
        st.append('first' if boot == 0 else 'after')
        st.append('every')
        st.append('before' if boot < cycles else 'last')
        return st

    def expected(self, cycles):
        """Test ids in the order the guest runs them."""
        ids = []
        for boot in range(cycles + 1):
            for stage in self.stages_of_boot(boot, cycles):
                ids += ['boot%d/%s' % (boot, t[1])
                        for t in self.tests
                        if t[0] in (stage, '%s@%d' % (stage, boot))]
        return ids


def run(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       **kw)
    if r.returncode:
        sys.stdout.write(r.stdout.decode(errors='replace'))
        sys.exit('vmtest: failed: %s' % ' '.join(map(shlex.quote, cmd)))
    return r.stdout.decode(errors='replace')


def build_selftest(d, progs, dest):
    """A kselftest directory, whole or only the programs named."""
    src = os.path.join(KTREE, 'tools', 'testing', 'selftests', d)
    out = os.path.join(BUILD, 'vmtest', 'selftests', d)
    os.makedirs(out, exist_ok=True)
    hdr = os.path.join(BUILD, 'headers', 'include')
    make = ['make', '-s', '-C', src, 'OUTPUT=' + out, 'LDFLAGS=-static',
            'KHDR_INCLUDES=-isystem ' + hdr]
    if progs:
        os.makedirs(dest, exist_ok=True)
        for p in progs:
            run(make + [os.path.join(out, p)])
            shutil.copy(os.path.join(out, p), os.path.join(dest, p))
        return
    run(make + ['all'])
    run(make + ['INSTALL_PATH=' + dest, 'install'])


def build_initramfs(manifest, root, cpio):
    """busybox, /init, the tests, and the kernel itself (to kexec into)."""
    shutil.rmtree(root, ignore_errors=True)
    for d in ('bin', 'sbin', 'proc', 'sys', 'dev', 'tmp', 'boot', 'tests',
              'vmtest', 'state', 'etc', 'root'):
        os.makedirs(os.path.join(root, d))
    shutil.copy('/bin/busybox', os.path.join(root, 'bin', 'busybox'))
    os.symlink('busybox', os.path.join(root, 'bin', 'sh'))
    shutil.copy(os.path.join(GUEST, 'init'), os.path.join(root, 'init'))
    os.chmod(os.path.join(root, 'init'), 0o755)
    shutil.copy(KERNEL, os.path.join(root, 'boot', 'bzImage'))
    with open(os.path.join(root, 'etc', 'passwd'), 'w') as f:
        f.write('root:x:0:0:root:/root:/bin/sh\n'
                'nobody:x:65534:65534:nobody:/:/bin/false\n')
    with open(os.path.join(root, 'etc', 'group'), 'w') as f:
        f.write('root:x:0:\nnogroup:x:65534:\n')
    hdr = os.path.join(BUILD, 'headers', 'include')
    tests = os.path.join(root, 'tests')
    for src in sorted(glob.glob(os.path.join(GUEST, '*.c'))):
        name = os.path.basename(src)[:-2]
        run(['gcc', '-static', '-O2', '-Wall', '-Wextra', '-Werror',
             '-isystem', hdr, '-o', os.path.join(tests, name), src])
    for src in sorted(glob.glob(os.path.join(GUEST, '*.sh'))):
        dst = os.path.join(tests, os.path.basename(src)[:-3])
        shutil.copy(src, dst)
        os.chmod(dst, 0o755)
    for d, progs in manifest.selftests:
        build_selftest(d, progs, os.path.join(tests, d))
    with open(os.path.join(root, 'vmtest', 'tests'), 'w') as f:
        for stage, name, cmd in manifest.tests:
            f.write('%s\t%s\t%s\n' % (stage, name, cmd))
    with open(os.path.join(root, 'vmtest', 'kexec-append'), 'w') as f:
        f.write(' '.join(manifest.kexec_append) + '\n')
    files = subprocess.run(['find', '.'], cwd=root, check=True,
                           stdout=subprocess.PIPE).stdout
    with open(cpio, 'wb') as f:
        subprocess.run(['cpio', '--quiet', '-o', '-H', 'newc', '-R', '0:0'],
                       cwd=root, input=files, stdout=f, check=True)


def qemu_cmd(cpio, cycles, extra):
    accel = os.environ.get('VMTEST_ACCEL', 'tcg')
    append = ' '.join([
        'console=ttyS0,115200', 'panic=-1', 'oops=panic', 'intel_iommu=on',
        # Tests read boot messages back from dmesg after fault-injection
        # sweeps have logged thousands of lines.
        'log_buf_len=4M',
        'vmtest.boot=0', 'vmtest.cycles=%d' % cycles,
        'vmtest.marker=%s' % secrets.token_hex(8)] + extra +
        [os.environ.get('VMTEST_APPEND', '')]).strip()
    return ['qemu-system-x86_64',
            '-machine', 'q35,accel=%s' % accel,
            '-cpu', 'host' if accel == 'kvm' else 'qemu64,+pdpe1gb',
            '-smp', os.environ.get('VMTEST_SMP', '2'),
            '-m', os.environ.get('VMTEST_MEM', '8G'),
            '-device', 'intel-iommu,intremap=on',
            # edu behind a PCIe root port: it then has a reset (the
            # port's secondary bus reset), and a bridge above it whose bus
            # mastering a live update must keep too.
            '-device', 'pcie-root-port,id=rp0,chassis=1,slot=1',
            '-device', 'edu,bus=rp0',
            '-display', 'none', '-monitor', 'none', '-serial', 'stdio',
            '-no-reboot',
            '-kernel', KERNEL,
            '-initrd', cpio, '-append', append]


def boot_qemu(cmd, serial_log, timeout, silence, demo):
    """Run QEMU; return (serial lines, how it ended)."""
    lines = []
    t0 = time.time()
    last = t0
    ended = None
    timeline = open(os.path.join(os.path.dirname(serial_log),
                                 'vmtest-timeline.log'), 'w')
    with open(serial_log, 'w') as slog, timeline:
        slog.write('# %s\n' % ' '.join(map(shlex.quote, cmd)))
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        buf = b''
        while True:
            now = time.time()
            if now - t0 > timeout:
                ended = 'timeout: the run took more than %d s' % timeout
                break
            if now - last > silence:
                ended = 'timeout: the guest printed nothing for %d s' % silence
                break
            r, _, _ = select.select([p.stdout], [], [], 1.0)
            if not r:
                continue
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            last = time.time()
            buf += chunk
            *done, buf = buf.split(b'\n')
            for raw in done:
                line = raw.decode(errors='replace').rstrip('\r')
                lines.append(line)
                slog.write(line + '\n')
                # Host time of the guest's steps, which no guest clock
                # can give across a kexec.
                if 'VMTEST-STEP' in line or 'BENCH' in line or \
                        BANNER_RE.search(line):
                    timeline.write('%.3f %s\n' % (time.time() - t0, line))
                if demo:
                    narrate(line, time.time() - t0)
            slog.flush()
        if buf:
            lines.append(buf.decode(errors='replace'))
            slog.write(lines[-1] + '\n')
        if p.poll() is None:
            p.kill()
        rc = p.wait()
    if ended is None:
        if any('VMTEST-DONE' in l for l in lines):
            ended = 'done'
        else:
            ended = 'the guest stopped early (QEMU exit status %d)' % rc
    return lines, ended, time.time() - t0


def narrate(line, t):
    m = STEP_RE.search(line)
    if m:
        log('  [%6.1fs] guest: %s' % (t, m.group(1)))
        return
    m = RESULT_RE.search(line)
    if m:
        log('  [%6.1fs] %s %s%s' % (t, m.group(1), m.group(2), m.group(3)))
        return
    if BANNER_RE.search(line):
        log('  [%6.1fs] kernel: %s' % (t, line[BANNER_RE.search(line).start():][:60]))
    elif SPLAT_RE.search(line):
        log('  [%6.1fs] kernel: %s' % (t, line.strip()))


def analyse(lines, expected, cycles, ended):
    """TAP results from a serial log: [(ok, name, comment, detail lines)]."""
    results = {}
    output = {}
    current = None
    for line in lines:
        m = BEGIN_RE.search(line)
        if m:
            current = m.group(1)
            output[current] = []
            continue
        m = RESULT_RE.search(line)
        if m:
            results[m.group(2)] = (m.group(1) == 'ok', m.group(3).strip())
            current = None
            continue
        if current:
            output[current].append(line)

    tap = []
    for tid in expected:
        if tid in results:
            ok, why = results[tid]
            tap.append((ok, tid, why, output.get(tid, [])))
        else:
            why = 'no result: the guest never ran or finished it'
            if tid in output:
                why = 'no result: the guest stopped inside it'
            tap.append((False, tid, why, output.get(tid, [])))
    for tid, (ok, why) in results.items():
        if tid not in expected:
            tap.append((ok and False, tid, 'unexpected result: ' + why,
                        output.get(tid, [])))

    # One kernel log check per boot, split at each kernel's banner.
    boots = [[]]
    for line in lines:
        if BANNER_RE.search(line) and any(boots[-1]):
            boots.append([])
        boots[-1].append(line)
    for n in range(cycles + 1):
        seg = boots[n] if n < len(boots) else []
        expects = []
        for l in seg:
            m = EXPECT_RE.search(l)
            if m:
                try:
                    expects.append(re.compile(m.group(1).strip()))
                except re.error as e:
                    tap.append((False, 'boot%d/expect' % n,
                                'bad VMTEST-EXPECT pattern: %s' % e, [l]))
        bad = [l for l in seg if SPLAT_RE.search(l) and not EXPECT_RE.search(l)
               and not any(p.search(l) for p in expects)]
        if not seg:
            tap.append((False, 'boot%d/kernel_log' % n, 'this boot never started', []))
        else:
            tap.append((not bad, 'boot%d/kernel_log' % n,
                        'kernel reported: ' + bad[0].strip() if bad else '',
                        splat_context(seg, bad)))
    tap.append((ended == 'done', 'vmtest/completed',
                '' if ended == 'done' else ended, []))
    return tap


def splat_context(seg, bad):
    if not bad:
        return []
    i = seg.index(bad[0])
    return seg[max(0, i - 2):i + 40]


def print_tap(tap, out):
    out.write('TAP version 13\n1..%d\n' % len(tap))
    for i, (ok, name, why, detail) in enumerate(tap, 1):
        out.write('%s %d - %s%s\n' % ('ok' if ok else 'not ok', i, name,
                                      ' # ' + why if why else ''))
        if not ok:
            for d in detail[-60:]:
                out.write('#   %s\n' % d)
    passed = sum(1 for t in tap if t[0])
    out.write('%d passed, %d failed\n' % (passed, len(tap) - passed))
    return len(tap) - passed


def manifests():
    env = os.environ.get('VMTEST_MANIFESTS')
    if env:
        return [p for p in env.split(':') if p]
    return sorted(glob.glob(os.path.join(TOP, 'harness', 'vmtest.d', '*.vmt')))


def main():
    man = Manifest(manifests())
    cycles = int(os.environ.get('VMTEST_CYCLES', man.cycles))
    demo = os.environ.get('VMTEST_DEMO') == '1'
    timeout = int(os.environ.get('VMTEST_TIMEOUT', 240 + 240 * cycles))
    silence = int(os.environ.get('VMTEST_SILENCE', 180))
    logs = os.environ.get('VMTEST_LOGS', os.path.join(BUILD, 'logs'))
    os.makedirs(logs, exist_ok=True)
    if not os.path.exists(KERNEL):
        sys.exit('vmtest: no %s: run "make kernel" first' % KERNEL)

    expected = man.expected(cycles)
    root = os.path.join(BUILD, 'vmtest', 'root')
    cpio = os.path.join(BUILD, 'vmtest', 'initramfs.cpio')
    if demo:
        log('==> building the tests and the initramfs (busybox, %d tests, '
            'the kernel to kexec into)' % len(man.tests))
    build_initramfs(man, root, cpio)
    cmd = qemu_cmd(cpio, cycles, man.append)
    serial_log = os.path.join(logs, 'vmtest-serial.log')
    log('==> booting QEMU (%s, %s kexec cycle%s, timeout %d s); serial log: %s' %
        (os.environ.get('VMTEST_ACCEL', 'tcg'), cycles, '' if cycles == 1 else 's',
         timeout, os.path.relpath(serial_log, TOP)))
    lines, ended, took = boot_qemu(cmd, serial_log, timeout, silence, demo)
    log('==> QEMU ran %.1f s: %s' % (took, ended))
    tap = analyse(lines, expected, cycles, ended)
    if ended != 'done':
        log('==> the last lines of the serial log:')
        for l in lines[-40:]:
            log('    ' + l)
    with open(os.path.join(logs, 'vmtest.tap'), 'w') as f:
        print_tap(tap, f)
    failed = print_tap(tap, sys.stdout)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
