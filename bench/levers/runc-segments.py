#!/usr/bin/env python3
# runc-segments.py PERFDATA CONTAINERD_PID: for each runc run of that engine that started CRIU twice (its version
# probe, then the dump or restore), from a perf record -k mono of sched exec and fork events: the runtime script
# (a runtime with runtimeArgs), runc exec -> probe fork, probe fork -> dump/restore CRIU fork, that fork -> the
# exec of CRIU proper (through faas-criu-criu's dispatch script or not); medians per runtime.
import re, subprocess, collections, statistics, sys
pat = re.compile(r'^\s*(.+?)\s+(\d+)/(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+(\S+):\s*(.*)$')
parent, execs = {}, collections.defaultdict(list)
for l in subprocess.run(['perf','script','-i',sys.argv[1],'-F','comm,pid,tid,cpu,time,event,trace'],capture_output=True,text=True).stdout.splitlines():
    m=pat.match(l)
    if not m: continue
    tgid,ts,ev,tr=int(m.group(2)),float(m.group(5)),m.group(6),m.group(7)
    if ev=='sched:sched_process_fork': parent[int(re.search(r'child_pid=(\d+)',tr).group(1))]=(tgid,ts)
    else: execs[tgid].append((ts,tr.split()[0][9:]))
def mine(p):
    while p in parent and p!=int(sys.argv[2]): p=parent[p][0]
    return p==int(sys.argv[2])
runcs=[p for p in execs if any(f=='/usr/sbin/runc' for _,f in execs[p]) and mine(p)]
segs=collections.defaultdict(list)
for r in sorted(runcs, key=lambda p: execs[p][0][0]):
    kids=sorted((parent[p][1], p) for p in parent if parent[p][0]==r and p in execs and any('criu' in f for _,f in execs[p]))
    if len(kids)<2: continue
    t0=min(t for t,f in execs[r])
    pr=parent.get(r,(0,0))[0]; sh=[t for t,f in execs.get(pr,[]) if '/runtimes/' in f]
    kind='faas-criu' if sh else 'runc'
    v=kids[0]; c=kids[-1]
    proper=[t for t,f in execs[c[1]] if f=='/usr/local/sbin/criu'][0]
    segs[kind].append(((t0-sh[0])*1000 if sh else 0, (v[0]-t0)*1000, (c[0]-v[0])*1000, (proper-c[0])*1000, (proper-(sh[0] if sh else t0))*1000))
for k,v in segs.items():
    med=lambda i: statistics.median(x[i] for x in v)
    print(f'{k}: n={len(v)} runtime script {med(0):.1f} | runc exec -> probe fork {med(1):.1f} | probe fork -> dump/restore CRIU fork {med(2):.1f} | that fork -> CRIU exec {med(3):.1f} | runtime start -> CRIU exec {med(4):.1f} ms')
