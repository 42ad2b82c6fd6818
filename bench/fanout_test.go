package main

import (
	"strings"
	"testing"
	"time"
)

// The fan-out section says whose CPU the wakes took: the machine's busy
// time per wake (from /proc/stat's ticks of 10 ms) and the provider's.
func TestFanoutSectionShowsCPUPerWake(t *testing.T) {
	c0 := cpuTimes{total: 1000, idle: 600}
	c1 := cpuTimes{total: 1400, idle: 620} // 380 busy ticks: 3.8 s
	if got := c1.busyTimeSince(c0); got != 3800*time.Millisecond {
		t.Fatalf("busyTimeSince = %v, want 3.8s", got)
	}
	f := &fanoutResult{N: 20,
		Rounds:      [][]time.Duration{{400 * time.Millisecond, time.Second, 2 * time.Second}},
		Busy:        []float64{0.96},
		MachineCPU:  []time.Duration{190 * time.Millisecond},
		ProviderCPU: []time.Duration{12 * time.Millisecond},
	}
	body := f.Section().Body
	for _, want := range []string{"CPU per wake: machine", "CPU per wake: provider", "190 ms", "12.0 ms"} {
		if !strings.Contains(body, want) {
			t.Errorf("section lacks %q:\n%s", want, body)
		}
	}
	// A round recorded before these figures existed shows none.
	f.MachineCPU, f.ProviderCPU = nil, nil
	if body := f.Section().Body; !strings.Contains(body, "| - ") {
		t.Errorf("a round without CPU figures should show -:\n%s", body)
	}
}
