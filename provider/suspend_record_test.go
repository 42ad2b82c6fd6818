package provider

import (
	"context"
	"testing"

	"github.com/faas-criu/faas-criu/api"
)

// TestSuspendWritesTheRecordOnce: a scale to zero writes each replica's
// checkpoint into the record once, the last one together with the sleep,
// and what is on disk after it is the hibernated function with every
// checkpoint (a provider started on that state finds it so).
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
