package main

import (
	"fmt"

	"github.com/faas-criu/faas-criu/api"
)

// results are what the phases measured; a nil field did not run.
type results struct {
	Wake      *wakeResult
	Density   *densityResult
	Overhead  *overheadResult
	Migration *migrationResult
	Fanout    *fanoutResult
	Tiers     *tiersResult
	Floor     *floorResult
	// Scale are the figures of the last scale run (make bench-scale), read
	// from the report's kept section.
	Scale scaleFigures
	Foot  *footprint
	// Leftovers are the temporary restore directories the run left.
	Leftovers     int
	LeftoverBytes int64
}

// summary is the table printed at the end and at the top of the report.
func (r *results) summary() table {
	t := table{Header: []string{"Measure", "Case", "Median", "Spread", "Compared"}}
	if w := r.Wake; w != nil {
		for _, k := range wakeKinds {
			for _, way := range w.ways(k.Kind) {
				s := way.Key
				ds := w.TTFB[w.fn(k.Kind, s)]
				cmp := "baseline"
				if r := w.wakeRatio(k.Kind, s); s != api.StrategyRemove && r <= 1 {
					cmp = fmtRatio(1/r) + " sooner than cold start"
				} else if s != api.StrategyRemove {
					cmp = fmtRatio(r) + " the cold start's time"
				}
				t.add("Wake, first byte", k.Kind+", "+way.Back, fmtDur(DurMedian(ds)), "p90 "+fmtDur(DurPercentile(ds, 90)), cmp)
			}
		}
		for _, k := range wakeKinds {
			p := DurMedian(w.Suspend[w.fn(k.Kind, api.StrategyPause)])
			c := w.Suspend[w.fn(k.Kind, api.StrategyCheckpoint)]
			t.add("Suspend", k.Kind+", pause", fmtDur(p), "p90 "+fmtDur(DurPercentile(w.Suspend[w.fn(k.Kind, api.StrategyPause)], 90)), "")
			t.add("Suspend", k.Kind+", checkpoint", fmtDur(DurMedian(c)), "p90 "+fmtDur(DurPercentile(c, 90)), fmtRatio(Ratio(float64(DurMedian(c)), float64(p)))+" the pause")
			if ip := w.Suspend[w.fn(k.Kind, wayInPlace)]; len(ip) > 0 {
				t.add("Suspend", k.Kind+", checkpoint in place", fmtDur(DurMedian(ip)), "p90 "+fmtDur(DurPercentile(ip, 90)), fmtRatio(Ratio(float64(DurMedian(ip)), float64(DurMedian(c))))+" the checkpoint")
			}
		}
		for _, k := range wakeKinds {
			m := w.Mem[k.Kind]
			t.add("Idle memory", k.Kind+": running / paused / hibernated",
				fmtBytes(IntMedian(m.Running))+" / "+fmtBytes(IntMedian(m.Paused))+" / "+fmtBytes(IntMedian(m.Hibernated)),
				"checkpoint "+fmtBytes(IntMedian(m.CheckpointDisk)), "")
		}
	}
	if d := r.Density; d != nil {
		t.add("Density", fmt.Sprintf("pause only, %s budget", fmtBytes(d.Budget)), fmt.Sprintf("%d functions", d.PauseOK), fmtBytes(IntMedian(d.PausePerFn))+" each", "")
		t.add("Density", fmt.Sprintf("hibernation, %s budget", fmtBytes(d.Budget)), fmt.Sprintf("%d functions", d.HibOK), fmt.Sprintf("%d deployed", d.HibDeployed), fmtRatio(d.ratio())+" pause only (cgroups)")
		if _, bm, ba := d.boxRatios(); d.PauseDeployed > 0 {
			t.add("Density", "box level, hibernation / pause only", fmtRatio(bm)+" by MemAvailable", fmtRatio(ba)+" accounted", fmt.Sprintf("%d / %d functions", d.HibOK, d.PauseDeployed))
		}
	}
	if o := r.Overhead; o != nil {
		for _, c := range o.Conns {
			f := o.figures(c)
			t.add("Invoke", fmt.Sprintf("%d conn, provider / direct", c), fmt.Sprintf("%.0f / %.0f req/s", f.ProvRPS, f.DirRPS),
				"p99 "+fmtDur(f.ProvP99)+" / "+fmtDur(f.DirP99), fmt.Sprintf("%s of direct, p99 %s", pct(Ratio(f.ProvRPS, f.DirRPS)), fmtSigned(f.ProvP99-f.DirP99)))
			t.add("Invoke", fmt.Sprintf("%d conn, bare TCP relay / direct", c), fmt.Sprintf("%.0f / %.0f req/s", f.RelayRPS, f.DirRPS),
				"p99 "+fmtDur(f.RelayP99)+" / "+fmtDur(f.DirP99), fmt.Sprintf("%s of direct: any proxy's ceiling", pct(Ratio(f.RelayRPS, f.DirRPS))))
		}
	}
	if f := r.Fanout; f != nil {
		t.add("Wake, many at once", fmt.Sprintf("%d trivial functions, hibernated", f.N), "last answer "+fmtDur(f.last()), fmt.Sprintf("%d rounds", len(f.Rounds)), "")
		if ip := f.InPlace; ip != nil && len(ip.Rounds) > 0 {
			t.add("Wake, many at once", fmt.Sprintf("%d trivial functions, hibernated in place", ip.N), "last answer "+fmtDur(ip.last()), fmt.Sprintf("%d rounds", len(ip.Rounds)),
				fmtRatio(Ratio(float64(ip.last()), float64(f.last())))+" the checkpoint's")
		}
	}
	if x := r.Tiers; x != nil {
		k, d := x.corrected(x.Kept), x.corrected(x.Deep)
		t.add("Box memory per hibernated function", fmt.Sprintf("MemAvailable less other work, %d functions: sandbox kept / deep", x.N), fmtMiB(k.PerFn)+" / "+fmtMiB(d.PerFn), "± "+fmtMiB(k.Noise)+" / ± "+fmtMiB(d.Noise), "sandbox "+fmtMiB(x.sandboxCost())+" (paired); cgroups: 0 B")
		t.add("Wake, first byte", "trivial, hibernated / deep", fmtDur(DurMedian(x.WakeKept))+" / "+fmtDur(DurMedian(x.WakeDeep)), fmt.Sprintf("%d each", len(x.WakeDeep)), "")
		if ip := x.InPlace; ip != nil && len(ip.Kept) > 0 {
			c := ip.corrected(ip.Kept)
			t.add("Box memory per hibernated function", fmt.Sprintf("MemAvailable less other work, %d functions: in place (container and sandbox kept)", ip.N), fmtMiB(c.PerFn), "± "+fmtMiB(c.Noise), "accounted "+fmtMiB(ip.accounted(ip.Kept)))
		}
		if len(x.WakeInPlace)+len(x.WakeInPlaceDeep) > 0 {
			t.add("Wake, first byte", "trivial, hibernated in place / deep from in place", fmtDur(DurMedian(x.WakeInPlace))+" / "+fmtDur(DurMedian(x.WakeInPlaceDeep)), fmt.Sprintf("%d / %d", len(x.WakeInPlace), len(x.WakeInPlaceDeep)), "")
		}
	}
	if fl := r.Floor; fl != nil {
		for _, k := range wakeKinds {
			m := fl.Kinds[k.Kind].medians()
			t.add("Floor, outside the provider", k.Kind+": CRIU alone dump / restore", fmtDur(m.CRIUDump)+" / "+fmtDur(m.CRIURestore), "first byte "+fmtDur(m.CRIUFirstByte), "")
			t.add("Floor, outside the provider", k.Kind+": Docker alone checkpoint / start", fmtDur(m.DockerDump)+" / "+fmtDur(m.DockerRestore), "first byte "+fmtDur(m.DockerFirstByte), "")
		}
		if cold, own, ok := fl.containerdCold(); ok {
			t.add("Cold start, outside the provider", "trivial: containerd directly (`ctr run -d` to first byte)", fmtDur(cold), fmtSpread(fl.Containerd.ColdStart),
				"ctr's own start "+fmtDur(own)+"; network set up beforehand")
		}
	}
	if f := r.Foot; f != nil {
		t.add("Provider", "resident memory idle / under load", fmtBytes(f.RSSIdle)+" / "+fmtBytes(IntMedian(f.LoadRSS)), "peak "+fmtBytes(maxInt(f.LoadRSS)), "binary "+fmtBytes(f.Binary))
	}
	return t
}

// targets evaluates issue 13's goals, then the earlier ones.
func (r *results) targets() []Target {
	return append(evalTargets(r.figures()), r.earlierTargets()...)
}

// earlierTargets are the goals set before issue 13, still reported.
func (r *results) earlierTargets() []Target {
	var ts []Target
	w := r.Wake
	if w != nil {
		heavy := 1 / w.wakeRatio("heavy", api.StrategyCheckpoint)
		ts = append(ts, Target{Goal: "Restore of the heavy function answers at least 5x sooner than its cold start",
			Met: heavy >= 5, Figure: fmt.Sprintf("%s sooner (restore %s, cold start %s)", fmtRatio(heavy),
				fmtDur(DurMedian(w.TTFB[w.fn("heavy", api.StrategyCheckpoint)])), fmtDur(DurMedian(w.TTFB[w.fn("heavy", api.StrategyRemove)])))})
		triv := w.wakeRatio("trivial", api.StrategyCheckpoint)
		restore := DurMedian(w.TTFB[w.fn("trivial", api.StrategyCheckpoint)])
		ts = append(ts, Target{Goal: "Restore of the trivial function within 1.5x of its cold start, and under 300 ms at the median",
			Met: triv <= 1.5 && restore.Milliseconds() < 300, Figure: fmt.Sprintf("restore %s = %s of cold start %s", fmtDur(restore), fmtRatio(triv),
				fmtDur(DurMedian(w.TTFB[w.fn("trivial", api.StrategyRemove)])))})
		var hibBytes int64
		cgroups := 0
		for _, m := range w.Mem {
			hibBytes += maxInt(m.Hibernated)
			cgroups += m.HibernatedCgroups
		}
		ck := IntMedian(w.Mem["trivial"].CheckpointDisk)
		ts = append(ts, Target{Goal: "Hibernated functions hold no memory in their cgroup; trivial checkpoint under 5 MB",
			Met: hibBytes == 0 && cgroups == 0 && ck < 5<<20 && ck > 0, Figure: fmt.Sprintf("hibernated: %s at most, cgroup left %d times; checkpoint %s", fmtBytes(hibBytes), cgroups, fmtBytes(ck))})
	} else {
		ts = append(ts, Target{Goal: "Wake and memory targets", Missing: true})
	}
	if d := r.Density; d != nil {
		ts = append(ts, Target{Goal: "Density with hibernation at least 5x that of pause only, same budget",
			Met: d.ratio() >= 5 && len(d.Failures) == 0, Figure: fmt.Sprintf("%s (%d against %d functions, %s budget)", fmtRatio(d.ratio()), d.HibOK, d.PauseOK, fmtBytes(d.Budget))})
	} else {
		ts = append(ts, Target{Goal: "Density with hibernation at least 5x that of pause only", Missing: true})
	}
	if f := r.Foot; f != nil && f.RSSIdle > 0 {
		ts = append(ts, Target{Goal: "Provider idle resident memory under 30 MB",
			Met: f.RSSIdle < 30<<20, Figure: fmt.Sprintf("%s idle with %d functions (%s just started)", fmtBytes(f.RSSIdle), f.IdleFns, fmtBytes(f.RSSStart))})
	} else {
		ts = append(ts, Target{Goal: "Provider idle resident memory under 30 MB", Missing: true})
	}
	for i := range ts {
		ts[i].Goal = "Before issue 13: " + ts[i].Goal
	}
	return ts
}
