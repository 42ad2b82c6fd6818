#!/usr/bin/env python3
"""medians-gaps.py FILE... (tried 38): medians per variant of cg-variants.sh's
fields (start, first, criu, a, b, ipc_mnt, dump), and the load range."""
import re, statistics, sys
from collections import defaultdict
vals = defaultdict(lambda: defaultdict(list))
loads = []
for f in sys.argv[1:]:
    for l in open(f):
        w = l.split()
        if len(w) < 3 or not w[0].isdigit():
            continue
        for kv in w[2:]:
            k, _, v = kv.partition('=')
            try:
                x = float(v)
            except ValueError:
                continue
            if k == 'load':
                loads.append(x)
            else:
                vals[w[1]][k].append(x)
for v, d in vals.items():
    print(v, 'n=%d' % len(d['criu']), ' '.join('%s=%.1f' % (k, statistics.median(d[k])) for k in ('criu', 'a', 'b', 'ipc_mnt', 'start', 'first', 'dump') if d[k]))
if loads:
    print('load %.2f-%.2f' % (min(loads), max(loads)))
