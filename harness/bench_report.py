#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turn the BENCH: lines of make bench's serial logs into a table and a plot.

bench_report.py DIR: reads DIR/*/vmtest-serial.log, writes DIR/bench.md
and DIR/bench.svg, and prints the table.
"""

import glob
import math
import os
import re
import sys


def records(path):
    recs = []
    with open(path, errors='replace') as f:
        for line in f:
            m = re.search(r'BENCH: (\S+) (.*)', line)
            if m:
                rec = dict(kv.split('=', 1) for kv in m.group(2).split() if '=' in kv)
                rec['what'] = m.group(1)
                recs.append(rec)
    return recs


def kho_table(recs):
    rows = ['| preserved | order | blocks | tracker metadata (whole handover) | preserve | finalize '
            '| reserve at boot | restore |',
            '|---|---|---|---|---|---|---|---|']
    for r in recs:
        rows.append('| %s MiB | %s | %s | %s B (%s bitmaps, %s chunks) | %.1f ms '
                    '| %.1f ms | %.1f ms | %.1f ms |' % (
                        r['mib'], r['order'], r['blocks'], r['meta_bytes'],
                        r['bitmaps'], r['chunks'], int(r['preserve_us']) / 1e3,
                        int(r['finalize_us']) / 1e3, int(r['reserve_us']) / 1e3,
                        int(r['restore_us']) / 1e3))
    return rows


def svg_bars(title, groups, series, path):
    """Grouped horizontal bars: groups x series, values in ms, log scale."""
    w, bar, gap, left = 760, 14, 10, 190
    colors = ['#4472c4', '#ed7d31', '#a5a5a5', '#ffc000', '#5b9bd5']
    vmax = max([v for _, vals in groups for v in vals] + [1])
    h = 60 + len(groups) * (len(series) * bar + gap) + 20 * len(series)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif" font-size="12">' % (w, h),
           '<text x="10" y="20" font-size="14">%s</text>' % title]
    y = 40
    for label, vals in groups:
        out.append('<text x="10" y="%d">%s</text>' % (y + bar, label))
        for i, v in enumerate(vals):
            bw = (w - left - 90) * math.log10(1 + v) / math.log10(1 + vmax)
            out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"/>'
                       % (left, y, bw, bar - 2, colors[i % len(colors)]))
            out.append('<text x="%.1f" y="%d">%.1f ms</text>'
                       % (left + bw + 4, y + bar - 3, v))
            y += bar
        y += gap
    for i, s in enumerate(series):
        out.append('<rect x="10" y="%d" width="10" height="10" fill="%s"/>'
                   '<text x="26" y="%d">%s</text>'
                   % (y + 10 + 20 * i, colors[i % len(colors)], y + 19 + 20 * i, s))
    out.append('</svg>')
    with open(path, 'w') as f:
        f.write('\n'.join(out) + '\n')


def timeline(path):
    """(host seconds, line) of a run's vmtest-timeline.log."""
    out = []
    if os.path.exists(path):
        with open(path, errors='replace') as f:
            for line in f:
                t, _, rest = line.partition(' ')
                out.append((float(t), rest.strip()))
    return out


def gmfs_sections(d, recs):
    lines = []
    touch = [r for r in recs if r['what'] == 'touch']
    if touch:
        lines += ['## guestmemfs: sizing a 1 GiB file and writing every byte of it '
                  'through a mapping', '',
                  'guestmemfs allocates blocks when a file grows (ftruncate): '
                  'blocks cleared ahead of time by its background thread '
                  '(guestmemfs-cleared-ahead) need no clearing; with that off and '
                  'the blocks freed since, the grow clears them '
                  '(guestmemfs-clearing). hugetlbfs and tmpfs allocate and clear '
                  'a page when it is first touched.', '',
                  '| filesystem | page faults | ftruncate | first write of every byte '
                  '| total |', '|---|---|---|---|---|']
        lines += ['| %s | %s | %.1f ms | %.1f ms | %.1f ms |' % (
            r['fs'], r['faults'], int(r['size_us']) / 1e3, int(r['touch_us']) / 1e3,
            (int(r['size_us']) + int(r['touch_us'])) / 1e3) for r in touch]
        lines.append('')
    mem = {r['cmdline'].strip(','): r for r in recs if r['what'] == 'meminfo'}
    g = [r for c, r in mem.items() if 'guestmemfs' in c]
    h = [r for c, r in mem.items() if 'hugepages' in c]
    if g and h:
        g, h = g[0], h[0]
        dres = int(h['reserved_k']) - int(g['reserved_k'])
        lines += ['## guestmemfs: 1 GiB carve-out against 1 GiB of hugetlbfs (2 MiB pages)', '',
                  '| boot | memory the kernel manages | reserved at boot | '
                  'direct map 4K / 2M / 1G |', '|---|---|---|---|']
        for name, r in (('guestmemfs=1G', g), ('hugepages=512', h)):
            lines.append('| %s | %s KiB | %s KiB | %s / %s / %s KiB |' % (
                name, r['total_k'], r['reserved_k'], r.get('DirectMap4k_k', '?'),
                r.get('DirectMap2M_k', '?'), r.get('DirectMap1G_k', '?')))
        lines += ['', 'The carve-out saves %d KiB reserved at boot per GiB: its memory '
                  'map (64 B per 4 KiB page, 16384 KiB per GiB), and in a KASAN '
                  'kernel its KASAN shadow too (131072 KiB per GiB); and 1 GiB less '
                  'direct map, whose page tables cost one PUD entry per GiB with '
                  '1 GiB pages, 4 KiB with 2 MiB ones.' % dres, '']
    bo = [r for r in recs if r['what'] == 'blackout']
    tl = timeline(os.path.join(d, 'gmfs-blackout', 'vmtest-timeline.log'))
    if bo and tl:
        r = bo[0]
        t_load = next((t for t, l in tl if 'kexec_file_load + reboot' in l), None)
        t_reboot = next((t for t, l in tl if 'VMTEST-STEP: loaded' in l), None)
        t_boot = next((t for t, l in tl if t_reboot is not None and t > t_reboot
                       and 'Linux version' in l), None)
        t_mnt = next((t for t, l in tl if 'BENCH: gmfs-mounted' in l), None)
        lines += ['## guestmemfs: the live update blackout', '',
                  '%s MiB carve-out, full, in %s files. Finalize, restore and mount '
                  'are timed in the guest, the rest by the host on the serial '
                  'console. Finalize and the kexec load happen while guests still '
                  'run; the blackout is from reboot() to the mount.'
                  % (r['carveout_mib'], r['files']), '',
                  '| step | time |', '|---|---|',
                  '| finalize (every KHO user, guestmemfs included) | %.1f ms |'
                  % (int(r['finalize_us']) / 1e3)]
        if None not in (t_load, t_reboot, t_boot, t_mnt):
            lines += ['| kexec_file_load of the kernel and the test initramfs | %.2f s |'
                      % (t_reboot - t_load),
                      '| reboot() to the next kernel\'s first message | %.2f s |'
                      % (t_boot - t_reboot),
                      '| first message to guestmemfs mounted, files restored | %.2f s |'
                      % (t_mnt - t_boot),
                      '| of which: restoring guestmemfs at boot | %.1f ms |'
                      % (int(r['restore_us']) / 1e3),
                      '| of which: the mount(2) call | %.1f ms |' % (int(r['mount_us']) / 1e3),
                      '| **blackout: reboot() to mounted** | **%.2f s** |' % (t_mnt - t_reboot)]
        lines.append('')
    return lines


def iommufd_sections(recs):
    maps = [r for r in recs if r['what'] == 'iommufd_map_file']
    if not maps:
        return []
    lines = ['## iommufd: IOMMU_IOAS_MAP_FILE of 1 GiB into a VT-d domain', '',
             'The edu device attached to the IOAS, so the map fills its '
             'domain; the files populated first, so the time is pinning and '
             'mapping. Times: median of %s map/unmap runs (min-max). '
             'Page-table pages: the rise of nr_iommu_pages; IOPTEs read from '
             'the VT-d page table.' % maps[0].get('runs', 1), '',
             '| file | IOVA | map | unmap | IOMMU page-table pages | IOPTEs 1 GiB / 2 MiB / 4 KiB |',
             '|---|---|---|---|---|---|']
    for r in maps:
        lines.append('| %s | %s | %.2f ms (%.2f-%.2f) | %.2f ms | %s | %s / %s / %s |' % (
            r['kind'], r['iova'], int(r['map_us']) / 1e3,
            int(r.get('map_min_us', r['map_us'])) / 1e3,
            int(r.get('map_max_us', r['map_us'])) / 1e3,
            int(r['unmap_us']) / 1e3, r['pt_pages'], r.get('iopte_1g', '?'),
            r.get('iopte_2m', '?'), r.get('iopte_4k', '?')))
    return lines + ['']


def lu_sections(recs):
    lus = [r for r in recs if r['what'] == 'lu']
    if not lus:
        return []
    lines = ['## Persistent IOMMU domains: handed over, taken back, replaced', '',
             'edu attached to a HWPT mapping one guestmemfs file, marked, '
             'handed over at KHO finalize and taken back in the next kernel. '
             'The IOVA\'s alignment picks the IOPTE size (1 GiB-aligned, '
             '2 MiB-aligned only, 4 KiB-aligned only). Preserve: VT-d walking '
             'and preserving the table pages; finalize: iommufd\'s whole part '
             'of KHO finalize (preserve included); take back: VT-d at boot, '
             'walking and checking the tables; restore: iommufd at boot, '
             'claiming the domain and pinning its ranges again; replace: the '
             'attach of a new HWPT of the same mapping, with the check that it '
             'maps everything the inherited domain maps.', '',
             '| mapped | IOVA | table pages | preserve | finalize (IOMMU) | take back '
             '| restore | map again | replace (with check) | pages freed |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for r in lus:
        lines.append('| %s MiB | %s | %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms '
                     '| %.2f ms | %.2f ms | %s |' % (
                         r['mib'], r['iova'], r['pt_pages'],
                         int(r['preserve_us']) / 1e3, int(r['finalize_us']) / 1e3,
                         int(r['take_us']) / 1e3, int(r['restore_us']) / 1e3,
                         int(r['map_us']) / 1e3, int(r['replace_us']) / 1e3,
                         r['freed']))
    return lines + ['']


def main():
    d = sys.argv[1]
    recs = []
    for log in sorted(glob.glob(os.path.join(d, '*', 'vmtest-serial.log'))):
        recs += records(log)
    kho = [r for r in recs if r['what'] == 'kho']
    kernel = ''
    if os.path.exists(os.path.join(d, 'kernel')):
        with open(os.path.join(d, 'kernel')) as f:
            kernel = ' ' + f.read().strip().replace(os.path.dirname(d) + '/', '')
    lines = ['# make bench', '',
             'Measured in the QEMU test VM (%s,%s); times under TCG are those of '
             'an emulated CPU.' % (os.environ.get('VMTEST_ACCEL', 'tcg'), kernel), '']
    if kho:
        lines += ['## KHO: preserve, finalize, then in the next kernel reserve '
                  'and restore', ''] + kho_table(kho) + ['']
        svg_bars('KHO: time per step (ms, log scale)',
                 [('%s MiB, order %s' % (r['mib'], r['order']),
                   [int(r[k]) / 1e3 for k in ('preserve_us', 'finalize_us',
                                              'reserve_us', 'restore_us')])
                  for r in kho],
                 ['preserve', 'finalize', 'reserve at boot', 'restore'],
                 os.path.join(d, 'bench.svg'))
    elif os.path.isdir(os.path.join(d, 'kho')):
        lines.append('No KHO figures: see %s/kho/vmtest-serial.log' % d)
    lines += gmfs_sections(d, recs)
    lines += iommufd_sections(recs)
    lines += lu_sections(recs)
    with open(os.path.join(d, 'bench.md'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('\n'.join(lines))
    print('(table: %s, plot: %s)' % (os.path.join(d, 'bench.md'),
                                     os.path.join(d, 'bench.svg')))
    return 0 if recs else 1


if __name__ == '__main__':
    sys.exit(main())
