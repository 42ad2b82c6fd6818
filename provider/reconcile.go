package provider

import (
	"context"
	"log/slog"
	"maps"
	"time"

	"github.com/faas-criu/faas-criu/api"
	ckpt "github.com/faas-criu/faas-criu/checkpoint"
	"github.com/faas-criu/faas-criu/internal/ticker"
)

// load rebuilds the provider's view from its records and the engine's
// containers, after a start or a crash.
func (p *Provider) load(ctx context.Context) error {
	recs, errs := p.store.loadRecords()
	for _, err := range errs {
		slog.Warn("record not loaded", "err", err)
	}
	found, err := p.listContainers(ctx, nil)
	if err != nil {
		return err
	}
	// The functions are reconciled below from this one listing: a listing
	// per function cost the engine a pass over every container each, so a
	// restart with 100 functions took 0.8 s and grew with the square.
	listed := maps.Clone(found)
	p.cleanImports()
	for key, rec := range recs {
		if rec.Importing {
			// An import cut short: it never answered, so the source still
			// runs the function. Remove what was made here.
			slog.Info("removing a function whose import did not finish", "function", key.String())
			for _, r := range found[key] {
				_ = p.removeReplica(ctx, r)
			}
			delete(found, key)
			_ = p.store.deleteRecord(key.Namespace, key.Name)
			continue
		}
		fn := newFunction(key, rec)
		for _, r := range found[key] {
			fn.replicas[r.index] = r
			if r.ip != "" {
				p.ipam.reserve(r.ip)
			}
		}
		delete(found, key)
		p.fns[key] = fn
	}
	// Containers of this provider without a record belong to an operation
	// cut short before its record was written (or after it was deleted).
	for key, reps := range found {
		for _, r := range reps {
			slog.Info("removing a container of no recorded function", "container", r.name, "function", key.String())
			_ = p.removeReplica(ctx, r)
		}
	}
	slog.Info("functions loaded", "count", len(recs), "state", p.cfg.StateDir)
	for _, fn := range p.functions() {
		fn.opMu.Lock()
		p.reconcileFrom(ctx, fn, listed[fn.key], true)
		fn.opMu.Unlock()
	}
	return nil
}

// refresh reads a function's containers from the engine.
func (p *Provider) refresh(ctx context.Context, fn *function) error {
	found, err := p.listContainers(ctx, &fn.key)
	if err != nil {
		return err
	}
	p.refreshFrom(fn, found[fn.key])
	return nil
}

// refreshFrom sets a function's replicas from a listing of its containers.
func (p *Provider) refreshFrom(fn *function, found []*replica) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	seen := map[int]bool{}
	for _, c := range found {
		seen[c.index] = true
		r := fn.replicas[c.index]
		if r == nil || r.id != c.id || r.sandbox != c.sandbox {
			fn.replicas[c.index] = c
			if c.ip != "" {
				p.ipam.reserve(c.ip)
			}
			continue
		}
		r.sandboxUp = c.sandboxUp
		if r.status != c.status {
			r.status = c.status
		}
		if r.status != "running" || !r.sandboxUp {
			r.ready = false
		}
	}
	for idx := range fn.replicas {
		if !seen[idx] {
			delete(fn.replicas, idx)
		}
	}
	fn.refreshEndpointsLocked(p.cfg.FunctionPort)
}

// reconcile brings one function's containers in line with its record:
// an awake function gets its replicas back (restarted, restored, recreated);
// a sleeping one is left asleep. It waits for the function's operation lock.
func (p *Provider) reconcile(ctx context.Context, fn *function) {
	fn.opMu.Lock()
	defer fn.opMu.Unlock()
	p.reconcileInOp(ctx, fn)
}

// reconcileSoon reconciles fn unless an operation holds it; then it is
// queued again, so that one busy function never holds up the others.
func (p *Provider) reconcileSoon(ctx context.Context, fn *function) {
	if !fn.opMu.TryLock() {
		go func() {
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
				p.enqueueReconcile(fn.key)
			}
		}()
		return
	}
	defer fn.opMu.Unlock()
	p.reconcileInOp(ctx, fn)
}

func (p *Provider) reconcileInOp(ctx context.Context, fn *function) {
	p.reconcileFrom(ctx, fn, nil, false)
}

// reconcileFrom is reconcileInOp with the function's containers already
// listed (when listed is set), as at start.
func (p *Provider) reconcileFrom(ctx context.Context, fn *function, found []*replica, listed bool) {
	fn.mu.Lock()
	deleted := fn.deleted
	fn.mu.Unlock()
	if deleted {
		return
	}
	if listed {
		p.refreshFrom(fn, found)
	} else if err := p.refresh(ctx, fn); err != nil {
		slog.Error("reconcile", "function", fn.key.String(), "err", err)
		return
	}
	if listed || fn.inPlaceIntent() {
		// At the provider's start, or later when the engine did not
		// answer then: what a dump or restore in place that the provider
		// was stopped during left (see settleInPlace).
		p.settleInPlace(ctx, fn)
	}
	fn.mu.Lock()
	rec := *fn.rec
	lost, lostInPlace := goneReplicas(rec.Checkpoints, fn.replicas), goneReplicas(rec.InPlace, fn.replicas)
	fn.mu.Unlock()
	for _, idx := range lost {
		slog.Warn("the container holding the replica's checkpoint is gone", "function", fn.key.String(), "replica", idx)
		p.forgetCheckpoint(fn, idx, nil)
	}
	for _, idx := range lostInPlace {
		// A dump in place restores only into the container it came from.
		slog.Warn("the container of the replica hibernated in place is gone", "function", fn.key.String(), "replica", idx)
		p.forgetInPlace(fn, idx)
	}
	if rec.State != api.StateAwake {
		return
	}
	if err := p.ensureReplicas(ctx, fn); err != nil {
		slog.Error("reconcile", "function", fn.key.String(), "err", err)
	}
}

// reconcileLoop reconciles every function periodically: a safety net for
// missed events, and the way back after the engine restarts.
func (p *Provider) reconcileLoop(ctx context.Context) {
	ticker.Every(ctx, p.cfg.ReconcileEvery, func() {
		// One listing for the pass, and only the functions it shows
		// changed (or awake, whose replicas are checked) are reconciled,
		// each listing its own containers again. A listing per function
		// every pass kept the engine busy with the square of the number
		// of functions (1,000 listings of 2,000 containers every 10 s).
		found, err := p.listContainers(ctx, nil)
		for _, fn := range p.functions() {
			if err != nil || needsReconcile(fn, found[fn.key]) {
				p.enqueueReconcile(fn.key)
			}
		}
		p.sweepContainerdTmp()
	})
}

// needsReconcile says whether a function's replicas differ from a listing
// of its containers, or it is awake, or a checkpoint lost its container:
// what a reconciliation would act on. A listing older than a change only
// makes a function reconciled once more.
func needsReconcile(fn *function, found []*replica) bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if fn.rec.State == api.StateAwake || len(found) != len(fn.replicas) {
		return true
	}
	for _, c := range found {
		r := fn.replicas[c.index]
		if r == nil || r.id != c.id || r.sandbox != c.sandbox || r.status != c.status || r.sandboxUp != c.sandboxUp {
			return true
		}
	}
	return len(goneReplicas(fn.rec.Checkpoints, fn.replicas)) > 0 || len(goneReplicas(fn.rec.InPlace, fn.replicas)) > 0
}

// goneReplicas lists the replicas that m, a record's map by replica (its
// checkpoints, its dumps in place), names and replicas no longer holds.
func goneReplicas[V any](m map[int]V, replicas map[int]*replica) []int {
	var gone []int
	for idx := range m {
		if replicas[idx] == nil {
			gone = append(gone, idx)
		}
	}
	return gone
}

// sweepContainerdTmp removes what containerd left in its temporary directory
// of this provider's checkpoints a minute ago or more: copies of restored
// checkpoints whose clean-up a crash or a failure skipped, and dumps that
// did not finish.
func (p *Provider) sweepContainerdTmp() {
	var ids map[string]bool // this provider's function containers, known only when asked
	ours := func(id string) bool {
		if ids == nil {
			ids = map[string]bool{}
			for _, fn := range p.functions() {
				fn.mu.Lock()
				for _, r := range fn.replicas {
					ids[r.id] = r.id != ""
				}
				fn.mu.Unlock()
			}
		}
		return ids[id]
	}
	if n := ckpt.RemoveStaleContainerdCopies(p.cfg.ContainerdTmp, time.Minute, ours); n > 0 {
		slog.Info("removed checkpoint copies and unfinished dumps containerd had left", "count", n, "dir", p.cfg.ContainerdTmp)
	}
}

func (p *Provider) enqueueReconcile(key api.Key) {
	select {
	case p.reconcileQ <- key:
	default: // the periodic pass will catch it
	}
}

// reconcileWorker reconciles the functions queued by events, one at a time,
// skipping repeats already queued.
func (p *Provider) reconcileWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case key := <-p.reconcileQ:
			pending := map[api.Key]bool{key: true}
			for drained := false; !drained; {
				select {
				case k := <-p.reconcileQ:
					pending[k] = true
				default:
					drained = true
				}
			}
			for k := range pending {
				p.mu.RLock()
				fn := p.fns[k]
				p.mu.RUnlock()
				if fn != nil {
					p.reconcileSoon(ctx, fn)
				}
			}
		}
	}
}

// watchEvents follows the engine's container events for this provider's
// containers. A replica that dies is taken out of service at once and its
// function queued for reconciliation. When the stream breaks (the engine
// restarted), it reconnects and reconciles everything.
func (p *Provider) watchEvents(ctx context.Context) {
	f := map[string]string{labelInstance: p.instance}
	backoff := time.Second
	for ctx.Err() == nil {
		msgs, errs := p.engine.Events(ctx, f)
		connected := time.Now()
	loop:
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-msgs:
				p.onEvent(m)
			case err := <-errs:
				if ctx.Err() == nil {
					slog.Warn("engine event stream: reconnecting", "err", err)
				}
				break loop
			}
		}
		if time.Since(connected) > time.Minute {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
		for _, fn := range p.functions() {
			p.enqueueReconcile(fn.key)
		}
	}
}

func (p *Provider) onEvent(m ContainerEvent) {
	key := api.Key{Namespace: m.Labels[LabelNamespace], Name: m.Labels[LabelFunction]}
	p.mu.RLock()
	fn := p.fns[key]
	p.mu.RUnlock()
	if fn == nil {
		return
	}
	switch m.Action {
	case EventDie, EventOOM, EventKill, EventStop, EventPause, EventDestroy:
		// Out of service now; reconciliation decides what comes next.
		fn.mu.Lock()
		for _, r := range fn.replicas {
			if r.sandbox == m.ID && m.Action != EventPause {
				r.sandboxUp = false
			}
			if (r.id == m.ID || r.sandbox == m.ID) && r.ready {
				r.ready = false
				fn.refreshEndpointsLocked(p.cfg.FunctionPort)
			}
		}
		fn.mu.Unlock()
		p.enqueueReconcile(key)
	case EventStart, EventUnpause:
		// Also the provider's own starts: a wake's reconciles the function
		// again once the wake lets go of it. Mostly that finds nothing to
		// do, but a wake of several replicas that left one stopped with
		// its checkpoint ends awake, and this is what retries that replica
		// before the periodic pass
		// (TestPartialWakeRetriedByTheReconciliationItQueued).
		p.enqueueReconcile(key)
	}
}
