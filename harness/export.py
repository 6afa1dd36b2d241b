#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Write the series branch of build/linux back into the repository.

  export.py              patches/, series, the mirror of added files (and
                         of changed uAPI headers) and MAINTAINERS, from
                         base..HEAD of build/linux
  export.py --check      export into a scratch directory and compare with
                         what is in the repository; exit 1 on any difference
  export.py --read-cover F
                         print the subject and blurb of cover letter F (the
                         text 'make tree' puts back in the branch description)

Everything written is a pure function of the commits (author, date, message,
content): committer, time and machine do not show, so exporting twice, or
exporting a tree rebuilt by 'git am', gives the same bytes.
"""

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KTREE = os.path.join(os.environ.get('BUILD', os.path.join(TOP, 'build')), 'linux')
COVER = '0000-cover-letter.patch'
# Paths of the repository that are ours, never part of the mirror.
OURS = {'harness', 'patches', 'build', '.ci', '.git', 'series',
        'MAINTAINERS', 'Makefile', 'README.md', '.gitignore'}

DEFAULT_COVER = """\
Live update for Linux 6.12: KHO, guestmemfs and persistent IOMMU domains

This series adds hypervisor live update to Linux 6.12.
"""


def git(*args, check=True):
    r = subprocess.run(['git', '-C', KTREE] + list(args), check=check,
                       stdout=subprocess.PIPE)
    return r.stdout.decode()


def git_bytes(*args):
    return subprocess.run(['git', '-C', KTREE] + list(args), check=True,
                          stdout=subprocess.PIPE).stdout


def read_cover(path):
    """Subject and blurb of a cover letter written by format-patch."""
    with open(path) as f:
        text = f.read()
    head, _, body = text.partition('\n\n')
    m = re.search(r'^Subject: (?:\[[^]]*\] )?(.*(?:\n .*)*)', head, re.M)
    subject = re.sub(r'\n ', ' ', m.group(1)) if m else ''
    lines = body.split('\n')
    end = len(lines)
    # The blurb ends where git's shortlog starts: "Author Name (N):" then
    # indented subjects.
    for i, line in enumerate(lines[:-1]):
        if re.match(r'^\S.* \(\d+\):$', line) and lines[i + 1].startswith('  '):
            end = i
            break
    blurb = '\n'.join(lines[:end]).strip('\n')
    return subject + '\n\n' + blurb + '\n'


def base_header():
    subj = git('log', '-1', '--format=%s', 'base').strip()
    out = ['# Live update for Linux 6.12, as a quilt-style series: "make tree"',
           '# applies these in order with git am (the cover letter is not applied).',
           '# Written by "make export"; do not edit by hand.']
    m = re.match(r'^Linux (\S+) \((\S+) (\S+)\)$', subj)
    if m:
        out.append('# base: Linux %s' % m.group(1))
        out.append('# base-package: %s %s' % (m.group(2), m.group(3)))
    else:
        desc = git('describe', '--tags', '--always', 'base', check=False).strip()
        out.append('# base: %s (%s)' % (desc, subj))
    return out


def format_patches(outdir):
    """format-patch base..HEAD into outdir, return the file names in order."""
    ncommits = int(git('rev-list', '--count', 'base..HEAD').strip())
    if ncommits == 0:
        return []
    desc = git('config', 'branch.series.description', check=False)
    env = dict(os.environ)
    # The cover letter's From: is the committer; make it the series author.
    name, email = git('log', '-1', '--format=%an%n%ae', 'HEAD').splitlines()
    env.update(GIT_COMMITTER_NAME=name, GIT_COMMITTER_EMAIL=email)
    if not desc.strip():
        git('config', 'branch.series.description', DEFAULT_COVER)
    # Headers and documentation first, as the kernel recommends.
    order = os.path.join(KTREE, 'scripts', 'git.orderFile')
    order = ['-O', order] if os.path.exists(order) else []
    subprocess.run(['git', '-C', KTREE, 'format-patch', '-q', '--cover-letter'] + order + [
                    '--cover-from-description=subject', '--zero-commit',
                    '--no-signature', '--abbrev=12', '--no-renames',
                    '-o', outdir, 'base..HEAD'],
                   check=True, env=env)
    # git dates the cover letter "now"; date it with the newest patch.
    date = git('log', '-1', '--format=%aD', '--author-date-order',
               'base..HEAD').strip()
    cpath = os.path.join(outdir, COVER)
    with open(cpath) as f:
        c = f.read()
    c = re.sub(r'^Date: .*$', 'Date: ' + date, c, count=1, flags=re.M)
    with open(cpath, 'w') as f:
        f.write(c)
    names = sorted(os.listdir(outdir))
    return names


def added_files():
    """Every file the series adds, and every uAPI header it changes."""
    out = git_bytes('diff', '--name-only', '--no-renames', '--diff-filter=A',
                    '-z', 'base', 'HEAD')
    files = [p.decode() for p in out.split(b'\0') if p]
    out = git_bytes('diff', '--name-only', '--no-renames', '--diff-filter=M',
                    '-z', 'base', 'HEAD', '--', 'include/uapi/')
    files = sorted(files + [p.decode() for p in out.split(b'\0') if p])
    for p in files:
        if '/' not in p or p.split('/')[0] in OURS:
            sys.exit('export: the series adds %s, which would collide with the '
                     "repository's own files" % p)
    return files


def mirror_roots():
    """Top-level directories of the base tree: where mirrored files live."""
    out = git('ls-tree', '--name-only', '-d', 'base')
    return [d for d in out.split('\n') if d and d not in OURS]


def write_mirror(dest, files):
    for p in files:
        mode = git('ls-tree', 'HEAD', '--', p).split()[0]
        data = git_bytes('show', 'HEAD:' + p)
        path = os.path.join(dest, p)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path):
            os.chmod(path, 0o644)
        with open(path, 'wb') as f:
            f.write(data)
        os.chmod(path, 0o555 if mode == '100755' else 0o444)


def maintainers_entries(rev):
    try:
        text = git('show', rev + ':MAINTAINERS')
    except subprocess.CalledProcessError:
        return []
    # Entries are the blank-line separated blocks after the list header.
    start = text.find('\nMaintainers List\n')
    paras = re.split(r'\n\s*\n', text[start:] if start >= 0 else text)
    return [p.strip('\n') for p in paras if re.search(r'^[A-Z]:\t', p, re.M)]


def maintainers_added():
    old = set(maintainers_entries('base'))
    new = [e for e in maintainers_entries('HEAD') if e not in old]
    return '\n\n'.join(new) + '\n' if new else None


def export_to(dest):
    """Write the whole export under dest (a repository root or scratch)."""
    pdir = os.path.join(dest, 'patches')
    tmp = tempfile.mkdtemp(prefix='export-')
    try:
        names = format_patches(tmp)
        os.makedirs(pdir, exist_ok=True)
        for n in os.listdir(pdir):
            if n.endswith('.patch') and n not in names:
                os.unlink(os.path.join(pdir, n))
        for n in names:
            src, dst = os.path.join(tmp, n), os.path.join(pdir, n)
            if not os.path.exists(dst) or not filecmp.cmp(src, dst, shallow=False):
                shutil.copyfile(src, dst)
    finally:
        shutil.rmtree(tmp)
    with open(os.path.join(dest, 'series'), 'w') as f:
        f.write('\n'.join(base_header() + names) + '\n')

    files = added_files()
    keep = set(files)
    for root in mirror_roots():
        rdir = os.path.join(dest, root)
        if not os.path.isdir(rdir):
            continue
        for d, _, fs in os.walk(rdir, topdown=False):
            for n in fs:
                p = os.path.join(d, n)
                if os.path.relpath(p, dest) not in keep:
                    os.chmod(p, 0o644)
                    os.unlink(p)
            if not os.listdir(d):
                os.rmdir(d)
    write_mirror(dest, files)

    m = maintainers_added()
    mpath = os.path.join(dest, 'MAINTAINERS')
    if m:
        with open(mpath, 'w') as f:
            f.write(m)
    elif os.path.exists(mpath):
        os.unlink(mpath)
    return names, files


def tracked_state(root, roots):
    """Files of the export under root: {relpath: (bytes, executable)}."""
    st = {}
    paths = ['series', 'MAINTAINERS']
    pdir = os.path.join(root, 'patches')
    if os.path.isdir(pdir):
        paths += ['patches/' + n for n in os.listdir(pdir)]
    for r in roots:
        for d, _, fs in os.walk(os.path.join(root, r)):
            paths += [os.path.relpath(os.path.join(d, n), root) for n in fs]
    for p in paths:
        full = os.path.join(root, p)
        if os.path.isfile(full):
            with open(full, 'rb') as f:
                st[p] = (f.read(), os.access(full, os.X_OK))
    return st


def check():
    scratch = tempfile.mkdtemp(prefix='export-check-')
    try:
        export_to(scratch)
        roots = mirror_roots()
        want = tracked_state(scratch, roots)
        have = tracked_state(TOP, roots)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    bad = []
    for p in sorted(set(want) | set(have)):
        if p not in have:
            bad.append('missing from the repository: ' + p)
        elif p not in want:
            bad.append('in the repository but not produced by the series: ' + p)
        elif want[p][0] != have[p][0]:
            bad.append('differs from what the series produces: ' + p)
        elif want[p][1] != have[p][1]:
            bad.append('executable bit differs: ' + p)
    # series and patches/ must name each other.
    with open(os.path.join(TOP, 'series')) as f:
        listed = [l.strip() for l in f if l.strip() and not l.startswith('#')]
    pdir = os.path.join(TOP, 'patches')
    present = [n for n in (os.listdir(pdir) if os.path.isdir(pdir) else [])
               if n.endswith('.patch')]
    for n in listed:
        if n not in present:
            bad.append('series names patches/%s, which does not exist' % n)
    for n in present:
        if n not in listed:
            bad.append('patches/%s is not listed in series' % n)
    for b in bad:
        print('export-check: ' + b)
    if bad:
        print('export-check: FAILED: patches/, series, the mirror and '
              'MAINTAINERS disagree (run "make export" and commit)')
        return 1
    print('export-check: patches/, series, mirror and MAINTAINERS agree '
          '(%d patches, %d mirrored files)' %
          (len([n for n in listed if n != COVER]),
           len([p for p in want if p.split('/')[0] in roots])))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--check', action='store_true')
    ap.add_argument('--read-cover')
    a = ap.parse_args()
    if a.read_cover:
        sys.stdout.write(read_cover(a.read_cover))
        return 0
    if not os.path.isdir(os.path.join(KTREE, '.git')):
        sys.exit('export: no %s: run "make tree" first' % KTREE)
    if git('status', '--porcelain', '--untracked-files=no').strip():
        print('export: warning: %s has uncommitted changes; only commits '
              'are exported' % KTREE, file=sys.stderr)
    if a.check:
        return check()
    names, files = export_to(TOP)
    print('export: %d patches, %d mirrored files' %
          (max(len(names) - 1, 0), len(files)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
