package fleet

import (
	"context"
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
	time.Sleep(BoxTTL + 2*time.Second)
	for i := 0; i < 20; i++ {
		for _, f := range fls[1:] {
			names := map[string]bool{}
			for _, b := range f.Boxes() {
				names[b.Name] = true
			}
			if !names["ob2"] || !names["ob3"] || names["ob1"] {
				t.Fatalf("%s sees %v after ob1 stopped, want ob2 and ob3", f.cfg.Box, names)
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
}
