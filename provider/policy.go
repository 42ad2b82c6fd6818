package provider

import (
	"context"
	"time"

	"github.com/faas-criu/faas-criu/checkpoint"
)

// Admission is consulted before a sleeping function wakes: it may hibernate
// others first to make room (the memory budget).
type Admission interface {
	MakeRoom(ctx context.Context, k checkpoint.Key, need int64)
}

// SetAdmission installs the memory budget's hook.
func (p *Provider) SetAdmission(a Admission) { p.admission = a }

// Fleet returns the provider as the policies see it.
func (p *Provider) Fleet() checkpoint.Fleet { return fleet{p} }

// fleet implements checkpoint.Fleet.
type fleet struct{ p *Provider }

// Activity reports every function's use.
func (f fleet) Activity() []checkpoint.Activity {
	p := f.p
	fns := p.functions()
	out := make([]checkpoint.Activity, 0, len(fns))
	for _, fn := range fns {
		rec, reps := fn.snapshot()
		if fn.isDeleted() {
			continue
		}
		a := checkpoint.Activity{
			Key:         checkpoint.Key{Namespace: fn.key.ns, Name: fn.key.name},
			State:       policyState(rec.State),
			Replicas:    rec.Replicas,
			LastUsed:    time.Unix(0, fn.lastUsed.Load()),
			Inflight:    fn.inflight.Load(),
			Requests:    fn.requests.Load(),
			SleptMemory: rec.SleptMemory,
			SleepReason: rec.SleepReason,
			LastBackup:  time.Unix(0, fn.lastBackup.Load()),
		}
		if rec.Deployment.Labels != nil {
			a.Labels = *rec.Deployment.Labels
		}
		if rec.State != StateHibernated {
			a.Memory = functionMemory(reps)
		}
		out = append(out, a)
	}
	return out
}

func policyState(s string) string {
	switch s {
	case StatePaused:
		return checkpoint.Paused
	case StateHibernated:
		return checkpoint.Hibernated
	}
	return checkpoint.Awake
}

func (fn *function) isDeleted() bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.deleted
}

// policyLock takes a function's operation lock without waiting: a policy
// never queues behind a user's operation.
func (p *Provider) policyLock(k checkpoint.Key) (*function, error) {
	fn, err := p.lookup(k.Namespace, k.Name)
	if err != nil {
		return nil, err
	}
	if !fn.opMu.TryLock() {
		return nil, checkpoint.ErrBusy
	}
	return fn, nil
}

// Sleep puts a function to sleep on behalf of a policy. Unless
// allowInflight, it does nothing while requests are in flight.
func (f fleet) Sleep(ctx context.Context, k checkpoint.Key, how, reason string, allowInflight bool) error {
	p := f.p
	fn, err := p.policyLock(k)
	if err != nil {
		return err
	}
	defer fn.opMu.Unlock()
	return p.sleepLocked(ctx, fn, how, reason, !allowInflight)
}

// Scale sets an awake function's replicas on behalf of the load policy.
func (f fleet) Scale(ctx context.Context, k checkpoint.Key, replicas int) error {
	p := f.p
	fn, err := p.policyLock(k)
	if err != nil {
		return err
	}
	defer fn.opMu.Unlock()
	fn.mu.Lock()
	awake := fn.rec.State == StateAwake && fn.rec.Replicas > 0
	fn.mu.Unlock()
	if !awake {
		return nil
	}
	return p.scaleUpLocked(ctx, fn, replicas)
}

// Wake starts waking a sleeping function on behalf of a policy.
func (f fleet) Wake(ctx context.Context, k checkpoint.Key) error {
	p := f.p
	fn, err := p.lookup(k.Namespace, k.Name)
	if err != nil {
		return err
	}
	fn.mu.Lock()
	if !fn.waking {
		fn.waking = true
		go p.wake(fn)
	}
	fn.mu.Unlock()
	return nil
}

// Backup backs a running function up on behalf of the backup policy.
func (f fleet) Backup(ctx context.Context, k checkpoint.Key, keep int) error {
	fn, err := f.p.policyLock(k)
	if err != nil {
		return err
	}
	defer fn.opMu.Unlock()
	return f.p.backupLocked(ctx, fn, keep)
}
