import sys,re,collections
d=collections.defaultdict(lambda: collections.defaultdict(list))
for f in sys.argv[1:]:
  for l in open(f):
    p=l.split()
    if len(p)<4: continue
    v=p[1]
    for kv in p[2:]:
      if '=' in kv:
        k,x=kv.split('=',1)
        try: d[v][k].append(float(x)*(1000 if k=='criu' else 1))
        except: pass
def med(a):
  if not a: return float('nan')
  a=sorted(a); n=len(a); return a[n//2] if n%2 else (a[n//2-1]+a[n//2])/2
for v in d:
  print(v, 'n=%d'%len(d[v]['start']), ' '.join('%s=%.0f'%(k,med(d[v][k])) for k in ('start','first','criu','cpu','cpu_engine','cpu_ct')), 'start-range=%.0f-%.0f'%(min(d[v]['start']),max(d[v]['start'])))
