#!/usr/bin/env python3
# timeline-logs.py DIR ENGINE_LOG PROVIDER_LOG: per wake of timeline-wakes.py (DIR/i.meta), landmarks in ms from the
# request, from the engine's debug log (dockerd + containerd + shim: "debug": true), the provider's log and CRIU's
# restore.log (copied per wake); medians.
# from the engine's debug log (dockerd + containerd + shim), the provider's log and CRIU's restore.log; medians.
import sys, re, glob, datetime, statistics, os
d, elogpath, plog = sys.argv[1], sys.argv[2], sys.argv[3]
def wall(s):
    s = s.rstrip('Z')
    if '.' in s: a, b = s.split('.'); s = a + '.' + b[:6]
    return datetime.datetime.fromisoformat(s).replace(tzinfo=datetime.timezone.utc).timestamp()
elog = []
for l in open(elogpath):
    m = re.match(r'time="([^"]+)".*?msg="?((?:[^"\\]|\\.)*)', l)
    if m: elog.append((wall(m.group(1)), m.group(2), l))
plines = []
for l in open(plog):
    m = re.match(r'time=(\S+) level=\S+ msg="?([^"]*)', l)
    if m: plines.append((wall(m.group(1)), m.group(2), l))
keys = [('start call', lambda m, l: m.startswith('Calling POST') and 'start?checkpoint' in m),
        ('mounted', lambda m, l: m.startswith('container mounted')),
        ('ctr container created', lambda m, l: m == 'event published' and '/containers/create' in l),
        ('content write', lambda m, l: m.startswith('(*service).Write started')),
        ('shim up', lambda m, l: 'io.containerd.event.v1.publisher' in m),
        ('task created', lambda m, l: m == 'event forwarded' and '/tasks/create' in l),
        ('task started', lambda m, l: m == 'event forwarded' and '/tasks/start' in l),
        ('dockerd got start', lambda m, l: m == 'event' and '/tasks/start' in l),
        ('content deleted', lambda m, l: m == 'event published' and '/content/delete' in l)]
rows = []
for f in sorted(glob.glob(d + '/*.meta'), key=lambda x: int(os.path.basename(x).split('.')[0])):
    meta = dict(kv.split('=') for kv in open(f).read().split())
    t0, ttfb = float(meta['t0']), float(meta['ttfb']) * 1000
    row = {'ttfb': ttfb}
    for name, pred in keys:
        for w, m, l in elog:
            if 0 <= (w - t0) * 1000 < 1500 and pred(m, l):
                row[name] = (w - t0) * 1000; break
    for w, m, l in plines:
        if 0 <= (w - t0) * 1000 < 1500 and m == 'function woke':
            mm = re.search(r'took=([\d.]+)(ms|s)', l); took = float(mm.group(1)) * (1000 if mm.group(2) == 's' else 1); row['provider: woke (its span)'] = took
            row['provider log line'] = (w - t0) * 1000; break
    rl = f[:-5] + '.restore.log'
    if os.path.exists(rl):
        txt = open(rl).read()
        ts = lambda pat: (lambda m: float(m.group(1)) * 1000 if m else None)(re.search(r'\((\d+\.\d+)\) ' + pat, txt))
        row['criu: setup-ns'] = ts('Running setup-namespaces')
        row['criu: post-setup-ns'] = ts('Running post-setup-namespaces')
        row['criu: finished'] = ts('Restore finished')
        row['criu mine'] = 'faas-criu-engine-dockside' in txt
    rows.append(row)
names = [k for k in rows[0]] if rows else []
allk = []
for r in rows:
    for k in r:
        if k not in allk: allk.append(k)
print('%-28s' % 'landmark (ms)', ' '.join('%6d' % (i + 1) for i in range(len(rows))), '  median')
for k in allk:
    vals = [r.get(k) for r in rows]
    num = [v for v in vals if isinstance(v, (int, float)) and not isinstance(v, bool)]
    print('%-28s' % k, ' '.join(('%6.1f' % v) if isinstance(v, float) else ('%6s' % v) for v in vals),
          '  %6.1f' % statistics.median(num) if num else '')
