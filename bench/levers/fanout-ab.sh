#!/usr/bin/env bash
# fanout-ab.sh OUTDIR BIN... (tried 31): the bench's fan-out phase alone on
# a private engine, once per BIN in the order given (alternate them: A B B
# A), with the CPU of each part of the engine per wake. Start the engine
# first (FAAS_CRIU_ENGINE_BRIDGE_CIDR=10.253.151.1/24
# scripts/second-engine.sh start fanout); ENGINE names another one, SUBNET
# and SUBNET2 the bench's two networks (default 10.199.51.0/24 and .52:
# pick subnets no other engine on the box routes). The bench runs from a
# copy of this tree (HEAD) whose networks are renamed and whose fan-out
# rounds print, per wake, the CPU of the provider, dockerd, containerd, the
# rest of a cpuacct cgroup holding dockerd and containerd (the shims and
# runc they start), and the containers' cgroups (CRIU, the functions).
# PHASES="-phases tiers -tier-samples 5" FANOUT_TIERWAKES_ONLY=1 times the
# wakes from each sleep tier instead, with the provider's record of each.
# FANOUT_PERF=1 also records each round with perf (OUTDIR/perf-rN.data).
set -euo pipefail
out=$1
shift
name=${ENGINE:-fanout}
here=$(cd "$(dirname "$0")/../.." && pwd)
export DOCKER_HOST=unix:///var/run/faas-criu-engine-$name.sock
mkdir -p "$out"
out=$(cd "$out" && pwd)
copy=$(mktemp -d /tmp/fanout-ab.XXXXXX)
trap 'rm -rf "$copy"' EXIT
git -C "$here" archive HEAD | tar -x -C "$copy"
sed -i -e "s#\"fcb-bench\"#\"$name-bench\"#" -e "s#\"fcb-bench-d\"#\"$name-bench-d\"#" \
	-e "s#\"10.77.0.0/24\"#\"${SUBNET:-10.199.51.0/24}\"#" -e "s#\"10.77.1.0/24\"#\"${SUBNET2:-10.199.52.0/24}\"#" "$copy/bench/main.go"
sed '1,2d' "$here/bench/levers/fanout-cpu.go" >"$copy/bench/fanout_cpu.go"
OUT=$out python3 - "$copy/bench" <<'PY'
import os, sys
d = sys.argv[1]
def patch(name, pairs):
    p = os.path.join(d, name)
    s = open(p).read()
    for old, new in pairs:
        assert old in s, (name, old)
        s = s.replace(old, new, 1)
    open(p, 'w').write(s)
patch('fanout.go', [
    ('import (\n\t"context"', 'import (\n\t"context"\n\t"os/exec"'),
    ("\t\tcpu0, _ := readCPU()\n", """\t\tvar perf *exec.Cmd
\t\tif os.Getenv("FANOUT_PERF") != "" {
\t\t\tperf = exec.Command("perf", "record", "-F", "499", "-a", "-g", "-o", fmt.Sprintf("%s/perf-r%d.data", os.Getenv("OUT"), round+1), "--", "sleep", "3")
\t\t\t_ = perf.Start()
\t\t\ttime.Sleep(400 * time.Millisecond)
\t\t}
\t\teng0 := b.engSnap(ctx, p.PID())
\t\tcpu0, _ := readCPU()
"""),
    ("\t\tprov1, _ := processCPU(p.PID())\n", """\t\tprov1, _ := processCPU(p.PID())
\t\ttime.Sleep(1500 * time.Millisecond) // the background work after the wakes counted too
\t\teng1 := b.engSnap(ctx, p.PID())
\t\tif perf != nil {
\t\t\t_ = perf.Wait()
\t\t}
\t\tlt := slices.Clone(took)
\t\tslices.Sort(lt)
\t\tb.progress("fanout round %d: first %v median %v last %v busy %.0f%% load %s; %s", round+1, lt[0].Round(time.Millisecond), DurMedian(lt).Round(time.Millisecond), lt[n-1].Round(time.Millisecond), 100*cpu1.busySince(cpu0), loadAvg(), eng1.String(eng0, n))
"""),
])
patch('tiers.go', [
    ('import (\n\t"bufio"', 'import (\n\t"bufio"\n\t"encoding/json"'),
    ('\tres := &tiersResult{N: n}\n\tconst prefix = "tier-mem-"\n', '\tres := &tiersResult{N: n}\n\tconst prefix = "tier-mem-"\n\tif os.Getenv("FANOUT_TIERWAKES_ONLY") != "" {\n\t\treturn res, b.tierWakes(ctx, p, res, samples)\n\t}\n'),
    ('\t\t\tif f.tier == "deep" {\n\t\t\t\tres.WakeDeep', """\t\t\tlw := ""
\t\t\tif ms, _ := filepath.Glob(filepath.Join(p.StateDir, "functions", "*", f.name+".json")); len(ms) > 0 {
\t\t\t\trb, _ := os.ReadFile(ms[0])
\t\t\t\tvar rr struct{ LastWake json.RawMessage }
\t\t\t\t_ = json.Unmarshal(rb, &rr)
\t\t\t\tlw = string(rr.LastWake)
\t\t\t}
\t\t\tb.progress("tierwake %s ttfb %v last-wake %s", f.tier, ttfb.Round(time.Millisecond), lw)
\t\t\tif f.tier == "deep" {
\t\t\t\tres.WakeDeep"""),
])
PY
(cd "$copy" && go build -o "$copy/benchbin" ./bench)
cg=/sys/fs/cgroup/cpuacct/$name-engine
dockerd=$(cat "/var/run/faas-criu-engine-$name.pid")
containerd=$(pgrep -P "$dockerd" containerd)
mkdir -p "$cg"
echo "$dockerd" >"$cg/cgroup.procs"
echo "$containerd" >"$cg/cgroup.procs"
export FANOUT_DOCKERD_PID=$dockerd FANOUT_CONTAINERD_PID=$containerd FANOUT_ENGINE_CG=$cg OUT=$out
i=0
for bin in "$@"; do
	i=$((i + 1))
	log=$out/$(printf %02d $i)-$(basename "$bin").log
	echo "== $bin load $(cut -d' ' -f1-3 /proc/loadavg)" >"$log"
	(cd "$copy" && ./benchbin -provider "$bin" ${PHASES:--phases fanout} -out "$out/$(printf %02d $i).md" >>"$log" 2>&1) || echo FAILED >>"$log"
	cp "$copy/bench/out/provider.log" "${log%.log}.provider.log" 2>/dev/null || true
	grep -h "fanout round\|tierwake\|FAILED\|bench:" "$log" | cut -c1-220 || true
done
