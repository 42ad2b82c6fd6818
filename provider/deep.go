package provider

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// Sleep tiers, as the status reports them (AnnotationTier): package api's
// states awake, paused,
// hibernated (checkpointed, network sandbox kept: a wake is one restore) and
// deep (checkpointed, sandbox stopped too: a wake first starts the sandbox
// again). The deep tier is not a state of its own in the record: the engine
// is the record of it (Engine.ListContainers), and a hibernated function whose sandboxes are all
// stopped is deep, whoever stopped them (the deep-after policy, or an engine
// restart). A provider restart therefore forgets nothing.

// tierOf is the sleep tier of a function with record rec and replicas reps.
func tierOf(rec record, reps []replica) string {
	switch rec.State {
	case api.StatePaused:
		return api.StatePaused
	case api.StateHibernated:
		if sandboxesDown(reps) {
			return api.TierDeep
		}
		return api.StateHibernated
	}
	return api.StateAwake
}

// sandboxesDown says that no replica's network sandbox runs (and there is
// at least one replica).
func sandboxesDown(reps []replica) bool {
	for _, r := range reps {
		if r.sandbox != "" && r.sandboxUp {
			return false
		}
	}
	return len(reps) > 0
}

// hibernatedAt is when the newest checkpoint of a hibernated function was
// taken: its time in the tier the deep-after policy counts from.
func hibernatedAt(rec record) time.Time {
	var t time.Time
	for _, c := range rec.Checkpoints {
		if c.TakenAt.After(t) {
			t = c.TakenAt
		}
	}
	for _, d := range rec.InPlace {
		if d.Done && d.TakenAt.After(t) {
			t = d.TakenAt
		}
	}
	if t.IsZero() && rec.SleptAt != nil {
		t = *rec.SleptAt
	}
	return t
}

// Deepen takes a hibernated function to the deep tier on behalf of the
// deep-after policy.
func (f fleet) Deepen(ctx context.Context, k api.Key) error {
	fn, err := f.p.policyLock(k)
	if err != nil {
		return err
	}
	defer fn.opMu.Unlock()
	return f.p.deepenInOp(ctx, fn)
}

// deepenInOp stops (never removes) the network sandbox of every replica of
// a hibernated function. The sandbox's containerd shim, network namespace,
// cgroup and mounts go with it, which is most of what a hibernated function
// costs the box (bench/design-13.md); its containers, address and
// checkpoints stay, and the wake path starts a stopped sandbox before it
// restores (ensureSandbox). A function that is not hibernated, or has a
// replica that is not stopped, or requests waiting, is left as it is.
func (p *Provider) deepenInOp(ctx context.Context, fn *function) error {
	rec, reps := fn.snapshot()
	if fn.isDeleted() || rec.State != api.StateHibernated || fn.inflight.Load() > 0 {
		return nil
	}
	for _, r := range reps {
		if rec.functionRuns(r) {
			return nil // not all of it sleeps: a wake or a fault is under way
		}
	}
	start := time.Now()
	stopped := 0
	for _, r := range reps {
		if err := p.stopInPlaceContainer(ctx, fn, rec, r); err != nil {
			return err
		}
		if r.sandbox == "" || !r.sandboxUp {
			continue
		}
		// The sandbox's program dies on SIGKILL (its STOPSIGNAL): no grace
		// period is waited for.
		err := p.engine.StopContainer(ctx, r.sandbox, 0)
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("deep sleep of %s: stop replica %d's network sandbox: %w", fn.key, r.index, err)
		}
		p.markSandboxDown(fn, r.index)
		stopped++
	}
	if stopped > 0 {
		slog.Info("deep sleep: network sandboxes stopped", "function", fn.key.String(), "sandboxes", stopped,
			"took", time.Since(start).Round(time.Millisecond), "hibernated_since", hibernatedAt(rec).Format(time.RFC3339))
	}
	return nil
}

// markSandboxDown notes that replica idx's sandbox no longer runs.
func (p *Provider) markSandboxDown(fn *function, idx int) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if r := fn.replicas[idx]; r != nil {
		r.sandboxUp, r.ready = false, false
		fn.refreshEndpointsLocked(p.cfg.FunctionPort)
	}
}

// stopInPlaceContainer stops the container of a replica hibernated in place
// for the deep tier: only its init runs there, and its dump stays; the wake
// starts the sandbox, then RestoreInPlace the container.
func (p *Provider) stopInPlaceContainer(ctx context.Context, fn *function, rec record, r replica) error {
	if _, ok := rec.inPlaceDumped(r.index); !ok || r.status != "running" {
		return nil
	}
	if err := p.engine.StopContainer(ctx, r.id, 0); err != nil && !isNotFound(err) {
		return fmt.Errorf("deep sleep of %s: stop replica %d's container (hibernated in place): %w", fn.key, r.index, err)
	}
	fn.mu.Lock()
	if live := fn.replicas[r.index]; live != nil && live.id == r.id {
		live.status, live.ready = "exited", false
	}
	fn.mu.Unlock()
	return nil
}
