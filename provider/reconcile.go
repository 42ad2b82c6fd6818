package provider

import (
	"context"
	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/internal/ticker"
	"log/slog"
	"time"

	ckpt "github.com/faas-criu/faas-criu/checkpoint"
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
		p.reconcile(ctx, fn)
	}
	return nil
}

// refresh reads a function's containers from the engine.
func (p *Provider) refresh(ctx context.Context, fn *function) error {
	found, err := p.listContainers(ctx, &fn.key)
	if err != nil {
		return err
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	seen := map[int]bool{}
	for _, c := range found[fn.key] {
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
	return nil
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
	fn.mu.Lock()
	deleted := fn.deleted
	fn.mu.Unlock()
	if deleted {
		return
	}
	if err := p.refresh(ctx, fn); err != nil {
		slog.Error("reconcile", "function", fn.key.String(), "err", err)
		return
	}
	fn.mu.Lock()
	rec := *fn.rec
	var lost []int
	for idx := range rec.Checkpoints {
		if fn.replicas[idx] == nil {
			lost = append(lost, idx)
		}
	}
	fn.mu.Unlock()
	for _, idx := range lost {
		slog.Warn("the container holding the replica's checkpoint is gone", "function", fn.key.String(), "replica", idx)
		p.forgetCheckpoint(fn, idx)
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
		for _, fn := range p.functions() {
			p.enqueueReconcile(fn.key)
		}
		p.sweepContainerdTmp()
	})
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
		p.enqueueReconcile(key)
	}
}
