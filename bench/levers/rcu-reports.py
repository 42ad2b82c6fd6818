import re, sys, glob
# ext.py FILES: one line per wake report: trivial/heavy restore, cold start, suspend, load
for f in sys.argv[1:]:
    s = open(f).read()
    def cell(fn, way):
        m = re.search(r"\| %s\s*\| %s[^|]*\|\s*\d+\s*\|\s*([\d.]+ ms)" % (fn, re.escape(way)), s)
        return m.group(1) if m else "-"
    def susp(fn):
        m = re.search(r"\| %s\s*\|[^|]*\|[^|]*\|\s*([\d.]+ m?s)" % fn, s.split("## 2. Suspend")[1]) if "## 2. Suspend" in s else None
        return m.group(1) if m else "-"
    load = re.search(r"start → end\s*\|\s*([^|]+?)\s*\|", s)
    rcu = re.search(r"rcu_expedited`\)\s*\|\s*([^|]+?)\s*\|", s)
    print("%-28s trivial restore %-8s heavy restore %-8s trivial cold %-8s heavy cold %-8s suspend ckpt trivial %-7s heavy %-7s load %s %s" % (
        f.split("/")[-1], cell("trivial", "restore"), cell("heavy", "restore"), cell("trivial", "cold start"), cell("heavy", "cold start"),
        susp("trivial"), susp("heavy"), load.group(1) if load else "-", ("rcu: " + rcu.group(1)) if rcu else ""))
    for fn in ("trivial", "heavy"):
        m = re.search(r"\| %s\s*\| [\d.]+ ms\s*\| [\d.]+ ms\s*\| ([\d.]+ ms) \(n=\d+\)\s*\| ([\d.]+ ms)" % fn, s)
        if m: print("    %s: CRIU restore %s, around %s" % (fn, m.group(1), m.group(2)))

for f in sys.argv[1:]:  # overhead and fan-out phases
    s = open(f).read()
    load = re.search(r"start → end\s*\|\s*([^|]+?)\s*\|", s).group(1)
    rcu = re.search(r"rcu_expedited`\)\s*\|\s*([^|]+?)\s*\|", s)
    out = []
    if "## 5. Invoke overhead" in s and "provider req/s" in s:
        sec = s.split("## 5. Invoke overhead")[1]
        for c in ("1", "50"):
            m = re.search(r"^\| %s\s*\| (\d+)\s*\| (\d+)\s*\| (\d+)\s*\|" % c, sec, re.M)
            cpu = re.search(r"^\| %s\s*\| ([\d.]+ µs)\s*\| ([\d.]+ µs)" % c, sec, re.M)
            out.append("%s conn: provider/relay/direct %s/%s/%s req/s, CPU/req provider %s relay %s" % (c, m.group(1), m.group(2), m.group(3), cpu.group(1), cpu.group(2)))
    if "## 8. Many functions" in s:
        sec = s.split("## 8. Many functions")[1].split("\n## ")[0]
        for m in re.finditer(r"^\| (\d+|median)\s*\| ([^|]+)\|([^|]+)\|([^|]+)\|([^|]+)\|([^|]+)\|([^|]+)\|", sec, re.M):
            out.append("round %s: first %s median %s last %s busy %s CPU/wake machine %s provider %s" % tuple(x.strip() for x in m.groups()))
    print(f.split("/")[-1], "load", load, ("rcu: " + rcu.group(1)) if rcu else "")
    for o in out: print("   ", o)
