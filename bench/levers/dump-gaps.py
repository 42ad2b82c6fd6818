#!/usr/bin/env python3
"""Where a CRIU dump's time goes, from its dump.log (tried 28).

    dump-gaps.py [-m MS] DUMP_LOG...

Per log: CRIU's total, whether it waited for the cgroup freezer (CRIU reads
freezer.state right after writing FROZEN and, if the kernel still says
FREEZING, sleeps 100 ms: criu/seize.c step_ms), the time spent in the tars
of tmpfs mounts and in the conntrack dumps, and every gap between two log
lines longer than MS (default 3) with the line after it. The work directory
runc.conf sets is shared by every dump on the machine: copy dump.log while
holding an exclusive flock on its .dump.lock (as checkpoint.Recorder does),
right after the dump."""
import re
import sys

def main(args):
    ms = 3.0
    if args[:1] == ["-m"]:
        ms, args = float(args[1]), args[2:]
    for path in args:
        rows = []
        for line in open(path, errors="replace"):
            m = re.match(r"\((\d+\.\d+)\)", line)
            if m:
                rows.append((float(m.group(1)) * 1000, line.rstrip()))
        if not rows:
            continue
        waited = any(re.search(r"freezing processes: [1-9]", l) for _, l in rows)
        first = next((l.split("=", 1)[1] for _, l in rows if "freezer.state=" in l), "-")
        gaps, tar, ct = [], 0.0, 0.0
        for (t0, l0), (t1, l1) in zip(rows, rows[1:]):
            d = t1 - t0
            if "mnt:" in l1 and "mnt:" in l0:
                tar += d if d > 2 else 0
            if "Dumping netns links" in l0 and ("Dumping netns links" in l1 or "Namespaces dump complete" in l1):
                ct += d
            if d > ms:
                gaps.append(f"  {d:7.1f} ms before {l1[:120]}")
        print(f"{path}: total {rows[-1][0]:.1f} ms; freezer first read {first}, waited 100 ms: {waited}; "
              f"mount tars ~{tar:.1f} ms; conntrack dumps {ct:.1f} ms")
        print("\n".join(gaps))

if __name__ == "__main__":
    main(sys.argv[1:])
