package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The scale run records its figures at the targets' size in its section,
// as an HTML comment the full benchmark reads back to judge the targets:
// the scale run takes too long to be part of every make bench.
const scaleFiguresTag = "<!-- scale-figures "

type scaleRecord struct {
	N         int    `json:"n"`
	RSS       int64  `json:"rss_bytes"`
	ListNs    int64  `json:"list_ns"`
	RestartNs int64  `json:"restart_ns"`
	Date      string `json:"date"`
}

// scaleFiguresComment is the line the scale section ends with.
func scaleFiguresComment(n int, rss int64, list, restart time.Duration, at time.Time) string {
	b, _ := json.Marshal(scaleRecord{N: n, RSS: rss, ListNs: int64(list), RestartNs: int64(restart), Date: at.UTC().Format("2006-01-02 15:04 UTC")})
	return scaleFiguresTag + string(b) + " -->\n"
}

// parseScaleFigures reads the figures from a scale section: the comment,
// or, in a section written before it existed, the verdict table's figures.
func parseScaleFigures(body string) scaleFigures {
	if i := strings.Index(body, scaleFiguresTag); i >= 0 {
		rest := body[i+len(scaleFiguresTag):]
		if j := strings.Index(rest, " -->"); j >= 0 {
			var r scaleRecord
			if json.Unmarshal([]byte(rest[:j]), &r) == nil {
				return scaleFigures{Has: true, N: r.N, RSS: r.RSS, List: time.Duration(r.ListNs), Restart: time.Duration(r.RestartNs), From: "make bench-scale of " + r.Date}
			}
		}
	}
	s := scaleFigures{N: scaleTargetN, From: "the report's scale section, kept from make bench-scale"}
	found := 0
	for _, line := range strings.Split(body, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		goal, fig := strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])
		switch {
		case strings.HasPrefix(goal, "provider RSS ≤"):
			if v, ok := parseQuantity(fig); ok {
				s.RSS, found = int64(v), found+1
			}
		case strings.HasPrefix(goal, "`GET /system/functions` ≤"):
			if v, ok := parseQuantity(fig); ok {
				s.List, found = time.Duration(v), found+1
			}
		case strings.HasPrefix(goal, "restart to serving ≤"):
			if v, ok := parseQuantity(fig); ok {
				s.Restart, found = time.Duration(v), found+1
			}
		}
	}
	s.Has = found == 3
	return s
}

var quantityRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) (MiB|KiB|GiB|s|ms|µs)\b`)

// parseQuantity reads "49.44 MiB ..." as bytes and "16.3 ms ..." as
// nanoseconds.
func parseQuantity(s string) (float64, bool) {
	m := quantityRe.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	mult := map[string]float64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "s": 1e9, "ms": 1e6, "µs": 1e3}[m[2]]
	return v * mult, true
}

// figures gathers what the targets are judged on from the run's results.
func (r *results) figures() targetFigures {
	var f targetFigures
	if w := r.Wake; w != nil {
		f.HasWake = true
		med := func(kind, strategy string, m map[string][]time.Duration) time.Duration {
			return DurMedian(m[w.fn(kind, strategy)])
		}
		f.TrivialWake, f.HeavyWake = med("trivial", "checkpoint", w.TTFB), med("heavy", "checkpoint", w.TTFB)
		f.TrivialCold = med("trivial", "remove", w.TTFB)
		f.TrivialOwn, f.HeavyOwn = med("trivial", "checkpoint", w.ProviderWake), med("heavy", "checkpoint", w.ProviderWake)
		f.TrivialSuspend, f.HeavySuspend = med("trivial", "checkpoint", w.Suspend), med("heavy", "checkpoint", w.Suspend)
		f.InPlace.TrivialWake, f.InPlace.HeavyWake = w.inPlaceFig("trivial", w.TTFB, true), w.inPlaceFig("heavy", w.TTFB, true)
		f.InPlace.TrivialSuspend, f.InPlace.HeavySuspend = w.inPlaceFig("trivial", w.Suspend, false), w.inPlaceFig("heavy", w.Suspend, false)
		if m := w.Mem["trivial"]; m != nil {
			f.TrivialRunning, f.TrivialPaused = IntMedian(m.Running), IntMedian(m.Paused)
		}
	}
	if fl := r.Floor; fl != nil && len(fl.Failures) == 0 {
		f.HasFloor = true
		f.TrivialFloor, f.HeavyFloor = fl.Kinds["trivial"].medians(), fl.Kinds["heavy"].medians()
	}
	if fl := r.Floor; fl != nil {
		f.ContainerdCold, f.CtrOverhead, f.HasContainerd = fl.containerdCold()
		f.ContainerdFailed = !f.HasContainerd
	}
	if x := r.Tiers; x != nil {
		f.HasTiers, f.TiersN = true, x.N
		deep, raw := x.corrected(x.Deep), x.estimate(x.Deep, memAvailable)
		f.BoxKept, f.BoxDeep, f.BoxNoise = x.corrected(x.Kept).PerFn, deep.PerFn, deep.Noise
		f.BoxDeepRaw, f.BoxNoiseRaw = raw.PerFn, raw.Noise
		f.BoxReclaimable = x.reclaimablePerFn(x.Deep)
		f.AccountedKept, f.AccountedDeep = x.accounted(x.Kept), x.accounted(x.Deep)
		f.TierWakeKept, f.TierWakeDeep = DurMedian(x.WakeKept), DurMedian(x.WakeDeep)
		x.inPlaceFigures(&f.InPlace)
	}
	if d := r.Density; d != nil {
		f.HasDensity = true
		f.DensityBoxRaw, f.DensityBox, f.DensityAccounted = d.boxRatios()
		f.DensityCgroup = d.ratio()
		f.DensityHib, f.DensityPause, f.DensityFactor = d.HibOK, d.PauseOK, d.Factor
		h := boxCost(d.HibBase, d.HibAfter)
		f.HibBox, f.HibAcc = h.Corrected, h.Accounted
		f.HibPerAsleep, f.DensityCeiling, f.HibAwake = d.hibernatedCost(), d.ceiling(), d.HibDeployed-d.HibAsleepEnd
		if d.PauseDeployed > 0 {
			pc := boxCost(d.PauseBase, d.PauseAfter)
			f.PauseBoxPerFn, f.PauseAccPerFn = pc.Corrected/int64(d.PauseDeployed), pc.Accounted/int64(d.PauseDeployed)
		}
	}
	if o := r.Overhead; o != nil {
		x := o.figures(50)
		f.HasProxy = true
		f.ProxyRPS, f.RelayRPS, f.DirectRPS = x.ProvRPS, x.RelayRPS, x.DirRPS
		f.ProxyP99, f.RelayP99, f.DirectP99 = x.ProvP99, x.RelayP99, x.DirP99
		f.ProxyCPU, f.RelayCPU = o.cpuPerReq("provider", 50), o.cpuPerReq("relay", 50)
	}
	if fo := r.Fanout; fo != nil {
		f.HasFanout = true
		f.FanoutN, f.FanoutCores, f.FanoutLast = fo.N, fo.Cores, fo.last()
		f.FanoutBusy = Median(fo.Busy)
		f.InPlace.Fanout = fo.inPlaceFig()
		if fo.InPlace != nil {
			f.InPlace.FanoutBusy = Median(fo.InPlace.Busy)
		}
	}
	f.Scale = r.Scale
	return f
}

func (k *floorFigures) medians() kindFloor {
	if k == nil {
		return kindFloor{}
	}
	return kindFloor{
		CRIUDump: DurMedian(k.CRIUDump), CRIURestore: DurMedian(k.CRIURestore), CRIUFirstByte: DurMedian(k.CRIUFirstByte),
		DockerDump: DurMedian(k.DockerDump), DockerRestore: DurMedian(k.DockerRestore), DockerFirstByte: DurMedian(k.DockerFirstByte),
	}
}
