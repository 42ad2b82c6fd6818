#!/usr/bin/env python3
import sys, statistics
# ab-paired.py FILE: wake-ab output; per round (2 lines) new minus old
rows = [l.split() for l in open(sys.argv[1]) if l.startswith(('old ', 'new '))]
pairs, olds, news = [], [], []
for i in range(0, len(rows) - 1, 2):
    d = {rows[i][0]: float(rows[i][1]), rows[i + 1][0]: float(rows[i + 1][1])}
    if 'old' in d and 'new' in d:
        pairs.append(d['new'] - d['old']); olds.append(d['old']); news.append(d['new'])
bad = [r for r in rows if not r[2].startswith('count=') or r[2] == 'count=']
print(f'n={len(pairs)} old median {statistics.median(olds):.1f} ms, new {statistics.median(news):.1f} ms; paired new-old median {statistics.median(pairs):+.1f} ms, new faster in {sum(p < 0 for p in pairs)}/{len(pairs)}; loads {rows[0][3]}..{rows[-1][3]}; bad {len(bad)}')
