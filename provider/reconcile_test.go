package provider

import (
	"context"
	"fmt"
	"testing"

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
