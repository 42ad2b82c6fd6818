#!/usr/bin/env python3
"""tar-logs.py DUMP_LOG RESTORE_LOG (tried 37): CRIU's time per tmpfs mount
(its tar run, the fork and, at dump, opening the mount) from its logs.
Prints: cdump=TOTAL dtar=SUM d:/dev=.. ... criu=TOTAL rtar=SUM r@ID=.. (ms)."""
import re, sys

TS = re.compile(r'^\((\d+\.\d+)\)')


def ts(line):
    m = TS.match(line)
    return float(m.group(1)) * 1000 if m else None


def dump(lines):
    # "mnt: \tID: DEV:/ @ ./path" lines; a tmpfs's tar runs between its line
    # and the next mount's line (or "Dumping file-locks").
    tmpfs = set()
    for l in lines:
        m = re.search(r'type tmpfs source \S+ mnt_id (\d+) s_dev \S+ / @', l)
        if m:
            tmpfs.add(m.group(1))
    marks = []
    for l in lines:
        m = re.search(r'mnt: \t(\d+): \S+ @ (\S+)', l)
        if m:
            marks.append((ts(l), m.group(1), m.group(2)))
        elif 'Dumping file-locks' in l and marks:
            marks.append((ts(l), None, None))
            break
    out = {}
    for (t0, mid, p), (t1, _, _) in zip(marks, marks[1:]):
        if mid in tmpfs:
            out[p] = t1 - t0
    return out


def restore(lines):
    out = {}
    for i, l in enumerate(lines):
        m = re.search(r'Mounting tmpfs @(\d+)', l)
        if m and i + 1 < len(lines) and 'Bind ' not in lines[i + 1]:
            out['@' + m.group(1)] = ts(lines[i + 1]) - ts(l)
    return out


def last(lines):
    for l in reversed(lines):
        t = ts(l)
        if t is not None:
            return t
    return 0


d = open(sys.argv[1], errors='replace').read().splitlines()
r = open(sys.argv[2], errors='replace').read().splitlines()
dd, rr = dump(d), restore(r)
print('cdump=%.1f dtar=%.1f %s criu=%.1f rtar=%.1f %s' % (
    last(d), sum(dd.values()), ' '.join('d:%s=%.1f' % kv for kv in dd.items()),
    last(r), sum(rr.values()), ' '.join('r%s=%.1f' % kv for kv in rr.items())))
