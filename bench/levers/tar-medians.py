#!/usr/bin/env python3
"""tar-medians.py A B FILE... (tried 37): medians per variant of
tar-variants.sh's figures, and per round A minus B (median, B lower in k of n)."""
import re, statistics, sys
from collections import defaultdict

a, b = sys.argv[1], sys.argv[2]
keys = ['dump', 'start', 'first', 'cdump', 'dtar', 'criu', 'rtar']
vals = defaultdict(lambda: defaultdict(list))
rounds = defaultdict(dict)
for i, f in enumerate(sys.argv[3:]):
    for l in open(f):
        p = l.split()
        if len(p) < 3 or not p[0].isdigit():
            continue
        kv = dict(re.findall(r'(\w+)=([-\d.]+)', l))
        if not all(k in kv for k in keys):
            continue
        rounds[(i, p[0])][p[1]] = kv
        for k in keys:
            vals[p[1]][k].append(float(kv[k]))
for v in (a, b):
    print(v, 'n=%d' % len(vals[v]['start']), ' '.join('%s=%.1f' % (k, statistics.median(vals[v][k])) for k in keys))
for k in keys:
    d = [float(r[a][k]) - float(r[b][k]) for r in rounds.values() if a in r and b in r]
    print('%s %s-%s paired median %.1f, %s lower in %d of %d' % (k, a, b, statistics.median(d), b, sum(x > 0 for x in d), len(d)))
