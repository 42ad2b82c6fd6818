package main

import (
	"strings"
	"testing"
)

// boxMiB are box samples with these MemAvailable, in MiB.
func boxMiB(mibs ...int64) []boxSample {
	var out []boxSample
	for _, m := range mibs {
		out = append(out, boxSample{MemAvailable: m << 20})
	}
	return out
}

// The tiers' figures: per-function costs against the baseline, the paired
// sandbox cost, and the noise that keeps a noisy reading from deciding the
// target.
func TestTierFigures(t *testing.T) {
	const mi = 1 << 20
	x := &tiersResult{N: 10, BaseBefore: 3,
		Base: boxMiB(1000, 1001, 1000, 1001, 1000, 1001),
		Kept: []boxSample{{MemAvailable: 960 * mi, OwnShims: 10, OwnShimPSS: 30 * mi, KernelStack: 5 * mi}, {MemAvailable: 962 * mi, OwnShims: 10, OwnShimPSS: 30 * mi, KernelStack: 5 * mi}},
		Deep: boxMiB(999, 1000, 999, 1000, 999, 1000),
	}
	if got := x.boxPerFn(x.Kept); got != 4*mi {
		t.Errorf("kept per function %d, want 4 MiB (1001 after the deletion - 961, over 10)", got)
	}
	if got := x.sandboxCost(); got < 385*mi/100-2 || got > 385*mi/100+2 {
		t.Errorf("sandbox cost %d, want 3.85 MiB (rounds 3.9 and 3.8)", got)
	}
	if got := x.accounted(x.Kept); got != 3*mi+mi/2 {
		t.Errorf("accounted kept %d, want 3.5 MiB", got)
	}
	// Against the baselines after the deletion (median 1001): 0.15 MiB.
	// Deviations 0, 0.5 and 1 MiB, median 0.5: sigma 0.74 MiB, three
	// standard errors of the difference of a median of three and one of
	// six 1.57 MiB.
	got := x.corrected(x.Deep)
	if got.PerFn < 15*mi/100-2 || got.PerFn > 15*mi/100+2 || got.Noise < 157*mi/1000 || got.Noise > 158*mi/1000 {
		t.Errorf("deep %+v, want 0.15 MiB ± 0.157 MiB", got)
	}
	r := &results{Tiers: x}
	if tg := tierTarget(r.targets()); !tg.Met {
		t.Errorf("deep at 0.15 MiB, quiet baseline: target not met: %+v", tg)
	}
	// One sample dips by 100 MiB (other work): the medians hardly move
	// and the robust scatter ignores it.
	x.Deep[5].MemAvailable = 900 * mi
	if got := x.corrected(x.Deep); got.PerFn > mi/5 || got.Noise > mi/5 {
		t.Errorf("one dip moved the deep figure to %+v", got)
	}
	if tg := tierTarget(r.targets()); !tg.Met {
		t.Errorf("one dip decided the target: %+v", tg)
	}
	x.Deep[5].MemAvailable = 1000 * mi
	// Other work took 100 MiB between the baselines before and after,
	// the measurement's side unchanged: the figure (after against deep,
	// seconds apart) does not span it, and it is reported.
	for i := 0; i < 3; i++ {
		x.Base[i].MemAvailable += 100 * mi
	}
	if tg := tierTarget(r.targets()); !tg.Met {
		t.Errorf("other work's drift before the deploys decided the target: %+v", tg)
	}
	if got := x.othersDrift(); got != -99*mi/10 {
		t.Errorf("others' drift %d, want -9.9 MiB per function (1001 after, 1100 before)", got)
	}
	// The engine kept 100 MiB after the deletion (say, its heap): the
	// baselines after would hide as much of the deep tier's cost, so it
	// is noise, 10 MiB per function: too noisy to decide.
	for i := 3; i < 6; i++ {
		x.Base[i].Ours += 100 * mi
	}
	if tg := tierTarget(r.targets()); tg.Met || !strings.Contains(tg.Figure, "too noisy") {
		t.Errorf("what the deletion left behind did not block the target: %+v", tg)
	}
}

// The deciding figure takes out what other processes took meanwhile, and
// only that: their growth in anonymous memory is not the functions'.
func TestTierCorrectedFigure(t *testing.T) {
	const mi = 1 << 20
	x := &tiersResult{N: 100,
		Base: []boxSample{{MemAvailable: 1000 * mi, procMem: procMem{Others: 300 * mi}}, {MemAvailable: 1000 * mi, procMem: procMem{Others: 300 * mi}}, {MemAvailable: 1001 * mi, procMem: procMem{Others: 300 * mi}}},
		// Others took 80 MiB, the functions 10 MiB.
		Deep: []boxSample{{MemAvailable: 910 * mi, procMem: procMem{Others: 380 * mi}}, {MemAvailable: 910 * mi, procMem: procMem{Others: 380 * mi}}},
	}
	if got := x.corrected(x.Deep); got != (boxEstimate{PerFn: mi / 10}) {
		t.Errorf("corrected %+v, want 0.1 MiB ± 0 (every reading agrees)", got)
	}
	if got := x.estimate(x.Deep, memAvailable); got.PerFn != 9*mi/10 {
		t.Errorf("as read %+v, want 0.9 MiB", got)
	}
	// The engine grew by 20 MiB: counted against the functions.
	x.Deep[0].Engine, x.Deep[1].Engine = 20*mi, 20*mi
	if got := x.accounted(x.Deep); got != mi/5 {
		t.Errorf("accounted %d, want 0.2 MiB (the engine's growth)", got)
	}
}

func tierTarget(ts []Target) Target {
	for _, x := range ts {
		if strings.HasPrefix(x.Goal, "Box memory per hibernated function") {
			return x
		}
	}
	return Target{}
}
