package fleet

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestLivenessAfterABoxDies: when one box of three stops, the other two
// keep seeing each other live (their view must not stall with the watch).
func TestLivenessAfterABoxDies(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The lease timings are TestMain's (a beat 200 ms, a lease 3 s).
	fls := joinBoxes(t, ctx, 3)
	deadline := time.Now().Add(20 * time.Second)
	for len(fls[2].Boxes()) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("ob3 sees %d boxes", len(fls[2].Boxes()))
		}
		time.Sleep(50 * time.Millisecond)
	}
	fls[0].Close()
	stopped := time.Now()
	// The two see each other again once the records' stream has a leader
	// again (ob1 may have led it: until the election ends no lease is
	// renewed, and with the tests' 3 s lease ob3 may lapse in ob2's view
	// for a moment, as CI saw under load); then the view must hold.
	sees := func(f *Fleet) map[string]bool {
		names := map[string]bool{}
		for _, b := range f.Boxes() {
			names[b.Name] = true
		}
		return names
	}
	settled := func() (string, bool) {
		for _, f := range fls[1:] {
			if names := sees(f); !names["ob2"] || !names["ob3"] || names["ob1"] {
				return fmt.Sprintf("%s sees %v", f.cfg.Box, names), false
			}
		}
		return "", true
	}
	deadline = time.Now().Add(BoxTTL + 20*time.Second)
	for {
		why, ok := settled()
		if ok {
			t.Logf("ob2 and ob3 see each other, and not ob1, %s after ob1 stopped", time.Since(stopped).Round(100*time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s after ob1 stopped, want ob2 and ob3", why, BoxTTL+20*time.Second)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := 0; i < 20; i++ {
		if why, ok := settled(); !ok {
			t.Fatalf("%s after ob1 stopped and the two had settled, want ob2 and ob3", why)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
