#!/usr/bin/env python3
"""gaps.py LOG [N]: the N largest gaps between consecutive CRIU log lines."""
import re, sys
lines = open(sys.argv[1]).read().splitlines()
n = int(sys.argv[2]) if len(sys.argv) > 2 else 12
prev, out = 0.0, []
for i, l in enumerate(lines):
    m = re.match(r'\((\d+\.\d+)\)', l)
    if not m:
        continue
    t = float(m.group(1))
    out.append((t - prev, i, lines[i - 1][:140] if i else '', l[:140]))
    prev = t
print(f"total {prev*1000:.1f} ms")
for d, i, a, b in sorted(out, reverse=True)[:n]:
    print(f"{d*1000:6.1f} ms line {i}\n     {a}\n     {b}")
