# One run of deep-memory.sh (tried 34): meminfo counters, the engine's and
# provider's RSS, the root memcg's totals and the slab caches that moved most,
# medians of each state's reads, deep less after the deletion.
#   python3 bench/levers/deep-memory-counters.py OUT
import sys,statistics as st,glob,os
d=sys.argv[1]
R={s:sorted(int(f.rsplit('-',1)[1].split('.')[0]) for f in glob.glob(f'{d}/{s}-[0-9]*.meminfo')) for s in ['before','deep','after']}
def mi(f):
    return {l.split(':')[0]:int(l.split()[1]) for l in open(f)}
def slab(f):
    r={}
    for l in open(f).readlines()[2:]:
        x=l.split(); r[x[0]]=int(x[2])*int(x[3])
    return r
def kv(f):
    return {l.split()[0]:int(l.split()[1]) for l in open(f)}
def ms(f):
    return {l.split()[0]:int(l.split()[1]) for l in open(f)}
S=['before','deep','after']
med=lambda L:st.median(L)
print('meminfo (MiB, medians of each state):')
keys=list(mi(f'{d}/before-1.meminfo').keys())
for k in keys:
    v=[med([mi(f'{d}/{s}-{i}.meminfo')[k] for i in R[s]])/1024 for s in S]
    print(f'  {k:14s} '+' '.join(f'{x:9.1f}' for x in v)+f'   deep-after {v[1]-v[2]:+7.1f}')
print('rss/mounts/procs (kB):')
for k in kv(f'{d}/before-1.rss'):
    v=[med([kv(f'{d}/{s}-{i}.rss')[k] for i in R[s]]) for s in S]
    print(f'  {k:12s} '+' '.join(f'{x:9.0f}' for x in v)+f'   deep-after {v[1]-v[2]:+7.0f}')
print('root memory.stat totals (MiB):')
for k in ['total_cache','total_rss','total_shmem','total_mapped_file','total_unevictable','total_inactive_file','total_active_file']:
    v=[med([ms(f'{d}/{s}-{i}.memstat')[k] for i in R[s]])/2**20 for s in S]
    print(f'  {k:18s} '+' '.join(f'{x:9.1f}' for x in v)+f'   deep-after {v[1]-v[2]:+7.1f}')
sl={s:{} for s in S}
for s in S:
    L=[slab(f'{d}/{s}-{i}.slab') for i in R[s]]
    for k in L[0]: sl[s][k]=med([x.get(k,0) for x in L])
diff=sorted(((sl['deep'][k]-sl['after'].get(k,0),k) for k in sl['deep']))
print('slab deep-after top (KiB): total %+.0f'%(sum(x for x,_ in diff)/1024))
for x,k in diff[-12:][::-1]: print(f'  {k:24s} before {sl["before"].get(k,0)/1024:8.0f} deep {sl["deep"][k]/1024:8.0f} after {sl["after"].get(k,0)/1024:8.0f}  {x/1024:+8.0f}')
for x,k in diff[:3]: print(f'  {k:24s} before {sl["before"].get(k,0)/1024:8.0f} deep {sl["deep"][k]/1024:8.0f} after {sl["after"].get(k,0)/1024:8.0f}  {x/1024:+8.0f}')
