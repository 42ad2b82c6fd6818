# Per run of deep-memory.sh (tried 34): MemAvailable, MemAvailable + AnonPages
# and the memory no meminfo counter names, deep less after the deletion, and
# the dying memory cgroups (num_cgroups less directories less the root).
#   python3 bench/levers/deep-memory-sum.py OUT... (functions: 40)
import sys,statistics as st,glob,re
tot=int(open('/proc/meminfo').readline().split()[1])
def mi(f): return {l.split(':')[0]:int(l.split()[1]) for l in open(f)}
def unacc(v): return tot-v['MemFree']-v['Cached']-v['Buffers']-v['AnonPages']-v['Slab']-v['KernelStack']-v['PageTables']-v['Percpu']-v['VmallocUsed']
def dying(f):
    n=[int(l.split()[2]) for l in open(f+'.cgroups') if l.startswith('memory')][0]
    d=[int(l.split()[1]) for l in open(f+'.dirs') if l.startswith('memory')][0]
    return n-d-1
N = int(__import__("os").environ.get("DM_N", "40"))
for r in sys.argv[1:]:
    out=[]
    res={}
    for s in ['before','deep','after']:
        fs=sorted(glob.glob(f'{r}/{s}-[0-9]*.meminfo'))
        V=[mi(f) for f in fs]
        res[s]=dict(n=len(V),avail=st.median(v['MemAvailable'] for v in V)/1024,
            aa=st.median(v['MemAvailable']+v['AnonPages'] for v in V)/1024,
            un=st.median(unacc(v) for v in V)/1024, unr=(min(unacc(v) for v in V)/1024,max(unacc(v) for v in V)/1024),
            dy=[dying(f[:-8]) for f in fs])
    d,a=res['deep'],res['after']
    print(f"{r.split('/')[-1]}: reads {d['n']}; MemAvailable deep-after {d['avail']-a['avail']:+.1f} MiB ({(a['avail']-d['avail'])/N:+.2f}/fn cost); MemAvailable+AnonPages {d['aa']-a['aa']:+.1f} ({(a['aa']-d['aa'])/N:+.2f}/fn); unaccounted med before/deep/after {res['before']['un']:.0f}/{d['un']:.0f}/{a['un']:.0f} range deep {d['unr'][0]:.0f}-{d['unr'][1]:.0f}; dying memcgs before {res['before']['dy']} deep {d['dy']} after {a['dy']}")
