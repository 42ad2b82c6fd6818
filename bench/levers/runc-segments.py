#!/usr/bin/env python3
# runc-segments.py PERFDATA CONTAINERD_PID: for each runc run of that engine that started CRIU twice (its version
# probe, then the dump or restore), from a perf record -k mono of sched exec and fork events: the time from the
# shim's fork of the runtime (runc, or a wrapper: the sh script Docker writes for runtimeArgs, or criu-version-c/rt)
# to the exec of CRIU proper (the real binary, for the dump or restore); medians per kind of runtime.
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
for r in runcs:
    kids=sorted((parent[p][1], p) for p in parent if parent[p][0]==r and p in execs and any(('criu' in f or 'cdisp' in f) for _,f in execs[p]))
    if len(kids)<2: continue
    top=r
    if any('/runtimes/' in f for _,f in execs.get(parent[r][0],[])): top=parent[r][0]
    t_fork=parent[top][1]
    kind='C wrappers' if any(f.endswith('/rt') for _,f in execs[r]) else ('sh wrappers' if top!=r else 'runc')
    c=kids[-1]; proper=[t for t,f in execs[c[1]] if f=='/usr/local/sbin/criu'][0]
    segs[kind].append((proper-t_fork)*1000)
for k,v in sorted(segs.items()):
    q=statistics.quantiles(v,n=4)
    print(f'{k}: n={len(v)} shim forks the runtime -> CRIU proper exec: median {statistics.median(v):.1f} ms (quartiles {q[0]:.1f}-{q[2]:.1f})')
