package provider

import (
	"context"
	"errors"
	"testing"

	"github.com/faas-criu/faas-criu/api"
)

// TestRestartThawsReplicaLeftFrozen: the engine's direct checkpoint
// freezes a container before its dump; a provider killed between that
// freeze and the dump (or during a dump that then failed, which puts the
// freeze back) leaves the container running in the engine's books, its
// processes frozen with their memory. The next provider thaws it when it
// brings the function up: the replica answers again, its count kept.
func TestRestartThawsReplicaLeftFrozen(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	mustInvoke(t, p, "fn", 2)
	_ = p.Close()
	var name string
	for n := range eng.functionContainers() {
		name = n
	}
	eng.freezeCgroup(name)

	p = startTestProvider(t, eng, p.cfg.StateDir)
	mustInvoke(t, p, "fn", 3)
	if got := eng.count("thaw"); got < 1 {
		t.Errorf("%d thaws asked of the engine, want at least 1", got)
	}
	if got := states(eng); got["running"] != 1 || len(got) != 1 {
		t.Errorf("function containers by state %v, want the one running", got)
	}
}

// TestThawLeftFrozenFailureIsLogged: an engine that cannot say whether a
// replica is frozen does not stop the replica from being brought up (it is
// health-checked as before).
func TestThawLeftFrozenFailureIsLogged(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	_ = p.Close()
	eng.failNext("thaw", errors.New("permission denied"))
	p = startTestProvider(t, eng, p.cfg.StateDir)
	mustInvoke(t, p, "fn", 2)
}

// TestSuspendWritesTheRecordOnce: a scale to zero saves the function's
// record once per replica (each write synced), the last replica's
// checkpoint with the sleep itself; before, the last checkpoint was saved
// alone, then again with the sleep. The record is on disk when the scale
// answers: a provider started on it knows every checkpoint.
func TestSuspendWritesTheRecordOnce(t *testing.T) {
	for _, replicas := range []int{1, 2} {
		p, eng := newTestProvider(t)
		ctx := context.Background()
		deploy(t, p, "fn", nil)
		if err := p.Scale(ctx, "", "fn", replicas); err != nil {
			t.Fatal(err)
		}
		mustInvoke(t, p, "fn", 1)
		before := p.store.saves.Load()
		if err := p.Scale(ctx, "", "fn", 0); err != nil {
			t.Fatal(err)
		}
		if got := p.store.saves.Load() - before; got != int64(replicas) {
			t.Errorf("%d replicas: %d record writes for the scale to zero, want %d", replicas, got, replicas)
		}
		p2 := startTestProvider(t, eng, p.cfg.StateDir)
		fn, err := p2.lookup("", "fn")
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := fn.snapshot()
		if rec.State != api.StateHibernated || len(rec.Checkpoints) != replicas {
			t.Errorf("%d replicas: the record on disk says %s with %d checkpoints, want hibernated with %d", replicas, rec.State, len(rec.Checkpoints), replicas)
		}
	}
}
