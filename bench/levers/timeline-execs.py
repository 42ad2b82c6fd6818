#!/usr/bin/env python3
# timeline-execs.py DIR PERFDATA DOCKERD CONTAINERD PROVIDER: per wake (DIR/i.meta) the exec/exit/fsync landmarks of this
# engine's process tree (perf record -k mono of sched exec/fork/exit and fsync/fdatasync), ms from the request; medians.
import sys, re, glob, os, subprocess, statistics, collections
d, pdata, dpid, cpid, ppid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
off = float(open(d + '/off').read())
pat = re.compile(r'^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$')
label = {dpid: 'dockerd', cpid: 'containerd', ppid: 'provider'}
ev = []
for l in subprocess.run(['perf', 'script', '-i', pdata, '-F', 'comm,pid,tid,cpu,time,event,trace'], capture_output=True, text=True).stdout.splitlines():
    m = pat.match(l)
    if not m: continue
    comm, tgid, tid, ts, e, tr = m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(5)), m.group(6), m.group(7)
    if tgid in label and tid not in label: label[tid] = label[tgid]
    if e == 'sched:sched_process_fork':
        if tid in label or tgid in label:
            label[int(re.search(r'child_pid=(\d+)', tr).group(1))] = 'child'
        continue
    if tid not in label and tgid not in label: continue
    ev.append((ts + off, comm, tgid, tid, e, tr))
rows = []
for f in sorted(glob.glob(d + '/*.meta'), key=lambda x: int(os.path.basename(x).split('.')[0])):
    meta = dict(kv.split('=') for kv in open(f).read().split())
    t0, ttfb = float(meta['t0']), float(meta['ttfb']) * 1000
    w = [(round((t - t0) * 1000, 2), c, g, tid, e, tr) for t, c, g, tid, e, tr in ev if -2 < (t - t0) * 1000 < ttfb + 150]
    row = collections.OrderedDict(ttfb=ttfb)
    execs = [x for x in w if x[4] == 'sched:sched_process_exec']
    shims = [x for x in execs if 'containerd-shim' in x[5]]
    runcs = [x for x in execs if x[5].startswith('filename=/usr/sbin/runc')]
    crius = [x for x in execs if '/criu' in x[5]]
    tars = [x for x in execs if x[5].startswith('filename=/usr/bin/tar')]
    exits = {x[2]: x[0] for x in w if x[4] == 'sched:sched_process_exit' and 'group_dead=true' in x[5]}
    if len(shims) >= 2: row['shim exec (start)'], row['shim exec (daemon)'] = shims[0][0], shims[1][0]
    if runcs: row['runc restore exec'] = runcs[0][0]
    if len(crius) >= 2:
        row['criu exec (version probe)'] = crius[0][0]; row['criu version exit'] = exits.get(crius[0][2])
        row['criu exec (restore)'] = crius[1][0]; row['criu restore exit'] = exits.get(crius[1][2])
    if tars: row['first tar'], row['last tar exit'] = tars[0][0], max(exits.get(t[2], 0) for t in tars)
    if runcs: row['runc restore exit'] = exits.get(runcs[0][2])
    fs = {}; syncs = collections.Counter(); sync_ms = collections.Counter()
    for t, c, g, tid, e, tr in w:
        if e.startswith('syscalls:sys_enter_f'): fs[tid] = t
        elif e.startswith('syscalls:sys_exit_f') and tid in fs and t < ttfb:
            who = label.get(g, c); syncs[who] += 1; sync_ms[who] += t - fs.pop(tid)
    for k in ('provider', 'dockerd', 'containerd'):
        row[f'fsyncs before first byte: {k} (n)'] = syncs[k]; row[f'fsyncs before first byte: {k} (ms)'] = sync_ms[k]
    rows.append(row)
allk = []
for r in rows:
    for k in r:
        if k not in allk: allk.append(k)
print('%-40s' % 'landmark (ms from the request)', ' '.join('%6d' % (i + 1) for i in range(len(rows))), '  median')
for k in allk:
    vals = [r.get(k) for r in rows]; num = [v for v in vals if isinstance(v, (int, float))]
    print('%-40s' % k, ' '.join(('%6.1f' % v) if isinstance(v, (int, float)) else '%6s' % '-' for v in vals), '  %6.1f' % statistics.median(num) if num else '')
