#!/usr/bin/env python3
"""mount-paired.py A B FILE...: per round of mount-variants.sh, A minus B for
each figure; prints the median difference and in how many rounds B was lower."""
import re, statistics, sys
from collections import defaultdict
a, b = sys.argv[1], sys.argv[2]
rounds = defaultdict(dict)
for i, f in enumerate(sys.argv[3:]):
    for line in open(f):
        p = line.split()
        if len(p) < 3 or not p[0].isdigit():
            continue
        d = {}
        for kv in p[2:]:
            m = re.match(r'(\w+)=([0-9.]+)$', kv)
            if m:
                d[m.group(1)] = float(m.group(2)) * (1000 if m.group(1) in ('cdump', 'criu') else 1)
        rounds[(i, p[0])][p[1]] = d
keys = ['dump', 'cdump', 'dmnt', 'start', 'first', 'criu', 'rmnt', 'cpud', 'cpur', 'cpuct']
for k in keys:
    diffs = [r[a][k] - r[b][k] for r in rounds.values() if a in r and b in r and k in r[a] and k in r[b]]
    if diffs:
        print('%-6s %s-%s median %7.1f ms, %s lower in %d of %d rounds' % (k, a, b, statistics.median(diffs), b, sum(x > 0 for x in diffs), len(diffs)))
