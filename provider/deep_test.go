package provider

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
)

// The tier is read from Docker's view of the sandboxes, so that whoever
// stopped them (the policy, an engine restart) the status says deep.
func TestTierOf(t *testing.T) {
	up := replica{sandbox: "sb1", sandboxUp: true, status: "exited"}
	down := replica{sandbox: "sb2", status: "exited"}
	cases := []struct {
		name  string
		state string
		reps  []replica
		want  string
	}{
		{"awake", api.StateAwake, []replica{{sandbox: "sb", sandboxUp: true, status: "running"}}, api.StateAwake},
		{"paused", api.StatePaused, []replica{up}, api.StatePaused},
		{"hibernated, sandbox kept", api.StateHibernated, []replica{up}, api.StateHibernated},
		{"hibernated, one sandbox of two kept", api.StateHibernated, []replica{up, down}, api.StateHibernated},
		{"hibernated, sandboxes stopped", api.StateHibernated, []replica{down, down}, api.TierDeep},
		{"hibernated, no replicas known", api.StateHibernated, nil, api.StateHibernated},
	}
	for _, c := range cases {
		if got := tierOf(record{State: c.state}, c.reps); got != c.want {
			t.Errorf("%s: tier %q, want %q", c.name, got, c.want)
		}
	}
}

func TestHibernatedAt(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	rec := record{SleptAt: &t0, Checkpoints: map[int]CheckpointInfo{
		0: {TakenAt: t0.Add(time.Minute)}, 1: {TakenAt: t0.Add(2 * time.Minute)},
	}}
	if got := hibernatedAt(rec); !got.Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("hibernatedAt = %s, want the newest checkpoint's time", got)
	}
	rec.Checkpoints = nil
	if got := hibernatedAt(rec); !got.Equal(t0) {
		t.Errorf("without checkpoints hibernatedAt = %s, want the time it slept", got)
	}
}

// A deploy (or update) with a deep-after label that cannot be read is
// refused as invalid (HTTP 400) with a message naming the label, instead
// of being deployed with the default silently.
func TestDeepAfterLabelChecked(t *testing.T) {
	p := &Provider{cfg: Config{Namespaces: []string{api.DefaultNamespace}}}
	for v, ok := range map[string]bool{"10m": true, "0": true, "never": true, "1h": true, "ten minutes": false, "10": false, "-1m": false, "": false} {
		dep := types.FunctionDeployment{Service: "f", Image: "img", Labels: &map[string]string{api.LabelDeepAfter: v}}
		_, err := p.checkDefinition(context.Background(), &dep)
		if ok && err != nil {
			t.Errorf("deep-after %q refused: %v", v, err)
		}
		if !ok && (!errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), api.LabelDeepAfter)) {
			t.Errorf("deep-after %q: error %v, want api.ErrInvalid naming the label", v, err)
		}
	}
}

// scale.min is read in one place (package policy): a deploy refuses what it
// cannot read, and the replicas a deploy or wake starts come from the same
// reading.
func TestScaleMinReadOnce(t *testing.T) {
	p := &Provider{cfg: Config{Namespaces: []string{api.DefaultNamespace}}}
	for v, want := range map[string]int{"3": 3, "1": 1, "two": -1, "-1": -1} {
		dep := types.FunctionDeployment{Service: "f", Image: "img", Labels: &map[string]string{api.LabelScaleMin: v}}
		_, err := p.checkDefinition(context.Background(), &dep)
		if want < 0 {
			if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), api.LabelScaleMin) {
				t.Errorf("scale.min %q: error %v, want api.ErrInvalid naming the label", v, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("scale.min %q refused: %v", v, err)
		}
		if n, _ := minReplicas(dep); n != want {
			t.Errorf("minReplicas with scale.min %q = %d, want %d", v, n, want)
		}
	}
	if n, _ := minReplicas(types.FunctionDeployment{Service: "f"}); n != 1 {
		t.Errorf("minReplicas without the label = %d, want 1", n)
	}
}
