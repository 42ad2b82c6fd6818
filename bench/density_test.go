package main

import (
	"math"
	"testing"
)

// The density run's box figures: the run's cost against the paused
// functions', what one hibernated function costs once the awake ones are
// counted as paused, and the most the run could show.
func TestDensityBoxFigures(t *testing.T) {
	const mi = 1 << 20
	d := &densityResult{PauseDeployed: 10, HibDeployed: 135, HibOK: 135, HibAsleepEnd: 126,
		// Paused: 30 MiB each; others took 50 MiB meanwhile.
		PauseBase:  boxSample{MemAvailable: 10000 * mi, procMem: procMem{Others: 100 * mi}},
		PauseAfter: boxSample{MemAvailable: 9650 * mi, procMem: procMem{Others: 150 * mi}},
		// 9 awake at 30 MiB, 126 hibernated at 0.5 MiB: 333 MiB; others
		// gave back 20 MiB.
		HibBase:  boxSample{MemAvailable: 10000 * mi, procMem: procMem{Others: 100 * mi}},
		HibAfter: boxSample{MemAvailable: 9687 * mi, procMem: procMem{Others: 80 * mi}},
	}
	raw, corrected, _ := d.boxRatios()
	if want := 135 / (333.0 / 30); math.Abs(corrected-want) > 0.01 {
		t.Errorf("corrected ratio %.3f, want %.3f", corrected, want)
	}
	if want := 135 / (313.0 / 35); math.Abs(raw-want) > 0.01 {
		t.Errorf("ratio as read %.3f, want %.3f", raw, want)
	}
	if got := d.hibernatedCost(); got != mi/2 {
		t.Errorf("per hibernated function %d, want 0.5 MiB", got)
	}
	if got := d.ceiling(); got != 15 {
		t.Errorf("ceiling %.2f, want 15 (135 functions, 9 awake)", got)
	}
	// Box grew during a run: no ratio.
	d.HibAfter.MemAvailable = 10400 * mi
	if _, c, _ := d.boxRatios(); c != 0 {
		t.Errorf("ratio %.2f with the box gaining memory, want 0 (noise)", c)
	}
}
