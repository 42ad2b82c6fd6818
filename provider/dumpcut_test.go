package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/faas-criu/faas-criu/api"
)

// An engine that crashes during a scale to zero's checkpoint (live-restore
// keeps the containers) leaves the replica in one of four states. Once the
// engine answers again, reconciliation settles it: untouched or paused by
// the engine, it runs on with its state; frozen behind the engine's back,
// or stopped by a dump that finished in a sandbox whose network CRIU left
// locked, it comes back fresh in new containers and its status says the
// state was lost. Before, the last two never answered again
// (TestEngineRestart: "heavy did not become ready within 20s").
func TestCheckpointCutShortByTheEngine(t *testing.T) {
	cases := []struct {
		outcome string
		want    int  // the count of the next request
		lost    bool // the status reports lost state
	}{
		{"untouched", 3, false},
		{"paused", 3, false},
		{"frozen", 1, true},
		{"stopped", 1, true},
	}
	for _, c := range cases {
		t.Run(c.outcome, func(t *testing.T) {
			ctx := context.Background()
			p, eng := newTestProvider(t)
			deploy(t, p, "fn", nil)
			mustInvoke(t, p, "fn", 1)
			mustInvoke(t, p, "fn", 2)
			eng.cutNextCheckpoint(c.outcome)
			err := p.Scale(ctx, "", "fn", 0)
			if err == nil || strings.Contains(err.Error(), "keeps running") {
				t.Fatalf("scale to zero cut by the engine's crash: %v; want an error that claims nothing", err)
			}
			if st, _ := p.Status(ctx, "", "fn"); st.AvailableReplicas != 0 {
				t.Errorf("%d available replicas while the engine is down after a cut dump, want 0 (it may be frozen)", st.AvailableReplicas)
			}
			fn, err := p.lookup("", "fn")
			if err != nil {
				t.Fatal(err)
			}
			p.reconcile(ctx, fn) // the engine is still down: nothing to settle yet
			eng.setDown(false)
			p.reconcile(ctx, fn)
			mustInvoke(t, p, "fn", c.want)
			st, err := p.Status(ctx, "", "fn")
			if err != nil {
				t.Fatal(err)
			}
			lost := (*st.Annotations)[api.AnnotationStateLost]
			if (lost != "") != c.lost {
				t.Errorf("state-lost annotation %q, want one: %v", lost, c.lost)
			}
			if st.AvailableReplicas != 1 || st.Replicas != 1 {
				t.Errorf("replicas %d, available %d, want 1 and 1", st.Replicas, st.AvailableReplicas)
			}
			if got := states(eng); got["running"] != 1 || len(got) != 1 {
				t.Errorf("function containers by state %v, want 1 running", got)
			}
		})
	}
}
