package provider

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// hibernatedFleet deploys n functions on a fake engine and scales each to
// zero (checkpointed, sandbox kept).
func hibernatedFleet(t *testing.T, n int) (*Provider, *fakeEngine) {
	t.Helper()
	p, eng := newTestProvider(t)
	for i := range n {
		name := fmt.Sprintf("fn%03d", i)
		deploy(t, p, name, nil)
		if err := p.Scale(context.Background(), "", name, 0); err != nil {
			t.Fatalf("scale %s to 0: %v", name, err)
		}
	}
	return p, eng
}

// TestLoadListsContainersOnce: a start with many functions lists the
// engine's containers once, not once more per function (at 1,000
// functions that was a 19 s start).
func TestLoadListsContainersOnce(t *testing.T) {
	p, eng := hibernatedFleet(t, 20)
	_ = p.Close()
	before := eng.count("list")
	p = startTestProvider(t, eng, p.cfg.StateDir)
	if n := eng.count("list") - before; n != 1 {
		t.Errorf("%d container listings for 20 functions at start, want 1", n)
	}
	if len(p.fns) != 20 {
		t.Fatalf("%d functions loaded, want 20", len(p.fns))
	}
	if got := tier(t, p, "fn007"); got != api.StateHibernated {
		t.Errorf("fn007's tier after the start: %q, want %q", got, api.StateHibernated)
	}
}

// TestNeedsReconcile: the periodic pass reconciles only the functions a
// single listing shows changed, awake, or missing a checkpoint's container.
func TestNeedsReconcile(t *testing.T) {
	p, eng := hibernatedFleet(t, 5)
	ctx := context.Background()
	key := func(i int) api.Key { return api.Key{Namespace: api.DefaultNamespace, Name: fmt.Sprintf("fn%03d", i)} }
	// fn001's sandbox stopped behind the provider's back.
	eng.mu.Lock()
	sb, err := eng.find(p.containerName(key(1), 0) + ".net")
	if err != nil {
		t.Fatal(err)
	}
	eng.stop(sb)
	sb.state = "exited"
	eng.mu.Unlock()
	eng.lose(p.containerName(key(2), 0), false)         // its container gone
	mustInvoke(t, p, "fn003", 1)                        // awake
	p.fns[key(4)].rec.Checkpoints[1] = CheckpointInfo{} // replica 1 has no container
	found, err := p.listContainers(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, true, true, true, true} {
		if got := needsReconcile(p.fns[key(i)], found[key(i)]); got != want {
			t.Errorf("fn%03d: needsReconcile %v, want %v", i, got, want)
		}
	}
	if got := needsReconcile(p.fns[key(0)], nil); !got {
		t.Error("a function whose containers are gone: not reconciled")
	}
}

// TestPartialWakeRetriedByTheReconciliationItQueued: the reconciliation a
// wake's own container events queue (retried once the wake lets go of the
// function) looks redundant after a wake, but a wake of several replicas
// that left one stopped with its checkpoint (its restore failed, or failed
// after it answered) ends awake, and nothing else retries that replica
// before the periodic pass (10 s): that reconciliation restores it.
func TestPartialWakeRetriedByTheReconciliationItQueued(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(eng *fakeEngine) // makes replica 0's restore fail
	}{
		// Queued by replica 1's start.
		{"restore failed", func(eng *fakeEngine) { eng.failNext("restore", errors.New("criu: restore failed")) }},
		// Queued by replica 0's death (and replica 1's start).
		{"failed after an early answer", func(eng *fakeEngine) {
			release := eng.holdRestores(errors.New("containerd: late failure"), true)
			time.AfterFunc(100*time.Millisecond, release)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, eng := newTestProvider(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			p.Start(ctx) // events, their reconciliations, the periodic pass
			deploy(t, p, "fn", map[string]string{labelScaleMin: "2"})
			if err := p.Scale(ctx, "", "fn", 0); err != nil {
				t.Fatal(err)
			}
			settled(t, eng) // not a reconciliation the sleep queued
			tc.fail(eng)
			if err := p.Scale(ctx, "", "fn", 2); err == nil {
				t.Fatal("the wake succeeded; want replica 0's restore failed")
			}
			if got := states(eng); got["running"] != 1 || state(t, p, "fn") != api.StateAwake {
				t.Fatalf("after the wake: containers %v, state %q; want one running, awake", got, state(t, p, "fn"))
			}
			eventually(t, "replica 0 restored by a reconciliation", func() bool {
				return states(eng)["running"] == 2 && len(eng.checkpointNames()) == 0
			})
		})
	}
}

// settled waits until no reconciliation is pending: none listed the
// engine's containers for longer than a busy function's is put off (500 ms).
func settled(t *testing.T, eng *fakeEngine) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for last := eng.count("list"); ; {
		time.Sleep(700 * time.Millisecond)
		n := eng.count("list")
		if n == last {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("reconciliations still running after 10 s")
		}
		last = n
	}
}
