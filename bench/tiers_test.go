package main

import (
	"strings"
	"testing"
)

// The tiers' figures: per-function costs against the baseline, the paired
// sandbox cost, and the noise bound that keeps a noisy reading from
// deciding the target.
func TestTierFigures(t *testing.T) {
	const mi = 1 << 20
	x := &tiersResult{N: 10,
		Base: []boxSample{{MemAvailable: 1000 * mi}, {MemAvailable: 1002 * mi}},
		Kept: []boxSample{{MemAvailable: 960 * mi, OwnShims: 10, OwnShimPSS: 30 * mi, KernelStack: 5 * mi}, {MemAvailable: 962 * mi, OwnShims: 10, OwnShimPSS: 30 * mi, KernelStack: 5 * mi}},
		Deep: []boxSample{{MemAvailable: 999 * mi}, {MemAvailable: 1001 * mi}},
	}
	if got := x.boxPerFn(x.Kept); got != 4*mi {
		t.Errorf("kept per function %d, want 4 MiB (median of 4.1 and 3.9)", got)
	}
	if got := x.sandboxCost(); got != 39*mi/10 {
		t.Errorf("sandbox cost %d, want 3.9 MiB", got)
	}
	if got := x.accounted(x.Kept); got != 3*mi+mi/2 {
		t.Errorf("accounted kept %d, want 3.5 MiB", got)
	}
	if got := x.corrected(x.Deep); got != (boxEstimate{PerFn: mi/10 + 1, Noise: mi / 5}) {
		t.Errorf("deep %+v, want 0.1 MiB ± 0.2 MiB (spread of the baselines and of the deep readings)", got)
	}
	r := &results{Tiers: x}
	if tg := tierTarget(r.targets()); !tg.Met {
		t.Errorf("deep at 0.1 MiB, quiet baseline: target not met: %+v", tg)
	}
	x.Base[1].MemAvailable = 1100 * mi // 10 MiB per function of drift
	if tg := tierTarget(r.targets()); tg.Met || !strings.Contains(tg.Figure, "too noisy") {
		t.Errorf("noisy baseline decided the target: %+v", tg)
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
	if got := x.corrected(x.Deep); got.PerFn != mi/10 || got.Noise != mi/100 {
		t.Errorf("corrected %+v, want 0.1 MiB ± 0.01 MiB", got)
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
