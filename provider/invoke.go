package provider

import (
	"context"
	"errors"
	"github.com/faas-criu/faas-criu/api"
	"time"
)

// Acquire picks a ready replica of a function for one request, waking the
// function first when it sleeps. Concurrent requests to a sleeping function
// share one wake-up. The caller must call release when the request is done.
func (p *Provider) Acquire(ctx context.Context, ns, name string) (addr string, release func(), err error) {
	fn, err := p.lookup(ns, name)
	if err != nil {
		return "", nil, err
	}
	fn.inflight.Add(1)
	fn.requests.Add(1)
	fn.lastUsed.Store(time.Now().UnixNano())
	for {
		eps := *fn.endpoints.Load()
		if len(eps) == 0 {
			if eps, err = p.awaitEndpoints(ctx, fn); err != nil {
				fn.inflight.Add(-1)
				return "", nil, err
			}
		}
		// Counted first, checked second: a replica being taken out of
		// service (see drain) either sees this request, or this request
		// sees it leaving and picks another.
		for range eps {
			r := eps[int(fn.rr.Add(1)%uint64(len(eps)))]
			load := r.load
			load.inflight.Add(1)
			if load.serving.Load() {
				return r.hostport, func() {
					load.inflight.Add(-1)
					fn.invocations.Add(1)
					fn.lastUsed.Store(time.Now().UnixNano())
					fn.inflight.Add(-1)
				}, nil
			}
			load.inflight.Add(-1)
		}
		// Every replica of this snapshot is leaving: wait for the next.
		if _, err = p.awaitChange(ctx, fn, eps); err != nil {
			fn.inflight.Add(-1)
			return "", nil, err
		}
	}
}

// awaitChange waits until the endpoint snapshot is no longer eps.
func (p *Provider) awaitChange(ctx context.Context, fn *function, eps []*replica) ([]*replica, error) {
	timer := time.NewTimer(p.cfg.WakeTimeout)
	defer timer.Stop()
	for {
		fn.mu.Lock()
		cur, changed := *fn.endpoints.Load(), fn.changed
		fn.mu.Unlock()
		if len(cur) != len(eps) || (len(cur) > 0 && &cur[0] != &eps[0]) {
			return cur, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return nil, errorf(api.ErrTimeout, "function %s had no replica taking requests within %s", fn.key.Name, p.cfg.WakeTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// awaitEndpoints waits until the function has a ready replica, starting a
// wake-up if it sleeps or has no replicas.
func (p *Provider) awaitEndpoints(ctx context.Context, fn *function) ([]*replica, error) {
	timer := time.NewTimer(p.cfg.WakeTimeout)
	defer timer.Stop()
	started := time.Now()
	for {
		fn.mu.Lock()
		if eps := *fn.endpoints.Load(); len(eps) > 0 {
			fn.mu.Unlock()
			return eps, nil
		}
		if fn.deleted {
			fn.mu.Unlock()
			return nil, errorf(api.ErrNotFound, "function %q was deleted", fn.key.Name)
		}
		if fn.wakeErr != nil && fn.wakeErrAt.After(started) {
			err := fn.wakeErr
			fn.mu.Unlock()
			return nil, errorf(api.ErrUnavailable, "function %s could not be woken: %v", fn.key.Name, err)
		}
		if !fn.waking && (fn.rec.State != api.StateAwake || fn.rec.Replicas == 0) {
			fn.waking = true
			go p.wake(fn)
		}
		changed := fn.changed
		fn.mu.Unlock()

		select {
		case <-changed:
		case <-timer.C:
			return nil, errorf(api.ErrTimeout, "function %s did not become ready within %s (wake timeout)", fn.key.Name, p.cfg.WakeTimeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// wake brings a sleeping (or scaled-to-zero) function back to
// max(1, scale.min) replicas. Waiting requests are told of a failure.
func (p *Provider) wake(fn *function) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.WakeTimeout+p.cfg.ReadyTimeout)
	defer cancel()
	fn.opMu.Lock()
	fn.mu.Lock()
	need := !fn.deleted && (fn.rec.State != api.StateAwake || fn.rec.Replicas == 0)
	n, _ := minReplicas(fn.rec.Deployment)
	fn.mu.Unlock()
	var err error
	if need {
		err = p.scaleUpInOp(ctx, fn, max(1, n))
	}
	fn.opMu.Unlock()

	fn.mu.Lock()
	fn.waking = false
	if err != nil {
		fn.wakeErr, fn.wakeErrAt = err, time.Now()
		close(fn.changed)
		fn.changed = make(chan struct{})
	}
	fn.mu.Unlock()
}

// IsNotFound and friends let callers classify provider errors.
func IsNotFound(err error) bool { return errors.Is(err, api.ErrNotFound) }
