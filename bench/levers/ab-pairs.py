#!/usr/bin/env python3
"""ab-pairs.py FILE... (tried 37): mount-ab.sh's output paired by round:
medians of suspend and wake per build, new minus old per round (median,
new lower in k of n)."""
import re, statistics, sys
for f in sys.argv[1:]:
    rows = [l.split() for l in open(f) if l.startswith(('old ', 'new '))]
    by = {'old': [], 'new': []}
    for r in rows:
        kv = dict(re.findall(r'(\w+)=([-\d.]+)', ' '.join(r)))
        by[r[0]].append(kv)
    n = min(len(by['old']), len(by['new']))
    for k in ('suspend', 'wake'):
        o = [float(x[k]) for x in by['old'][:n]]; w = [float(x[k]) for x in by['new'][:n]]
        d = [b - a for a, b in zip(o, w)]
        print('%s %s: old %.1f new %.1f ms; paired new-old %.1f, new lower in %d/%d' % (f, k, statistics.median(o), statistics.median(w), statistics.median(d), sum(x < 0 for x in d), n))
