#!/usr/bin/env python3
"""mount-medians.py FILE...: medians per variant of mount-variants.sh output."""
import re, statistics, sys
from collections import defaultdict
vals = defaultdict(lambda: defaultdict(list))
for f in sys.argv[1:]:
    for line in open(f):
        p = line.split()
        if len(p) < 3 or not p[0].isdigit():
            continue
        for kv in p[2:]:
            m = re.match(r'(\w+)=([0-9.]+)$', kv)
            if m:
                v = float(m.group(2))
                if m.group(1) in ('cdump', 'criu'):
                    v *= 1000  # CRIU logs seconds
                vals[p[1]][m.group(1)].append(v)
keys = ['dump', 'cdump', 'dmnt', 'start', 'first', 'criu', 'rmnt', 'cpud', 'cpur', 'cpuct']
print('variant  n  ' + '  '.join('%7s' % k for k in keys) + '   (medians, ms)')
for var, d in vals.items():
    print('%-7s %2d  ' % (var, len(d['start'])) + '  '.join('%7.1f' % statistics.median(d[k]) if d[k] else '      -' for k in keys))
