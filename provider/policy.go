package provider

import (
	"context"
	"fmt"
	"time"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/policy"
)

// Admission is consulted before a sleeping function wakes: it may hibernate
// others first to make room (the memory budget).
type Admission interface {
	MakeRoom(ctx context.Context, k api.Key, need int64)
}

// defaultReplicaMemory is what a replica of an image never seen running is
// expected to need, without a memory request.
const defaultReplicaMemory = 32 << 20

// makeRoom asks the memory budget for need more bytes before fn grows.
func (p *Provider) makeRoom(ctx context.Context, fn *function, need int64) {
	if p.admission != nil && need > 0 {
		p.admission.MakeRoom(ctx, fn.key, need)
	}
}

// memoryNeed estimates the memory fn takes on when it goes to n replicas:
// a hibernated function its working set when it went to sleep; replicas
// added to an awake function what its replicas use now; new ones what
// replicas of the same image were last seen using, else the memory request,
// else defaultReplicaMemory. Paused replicas already hold their memory.
func (p *Provider) memoryNeed(fn *function, rec record, n int) int64 {
	_, reps := fn.snapshot()
	live := 0
	for _, r := range reps {
		if rec.functionRuns(r) {
			live++
		}
	}
	if rec.State == api.StateHibernated && rec.SleptMemory > 0 {
		return rec.SleptMemory * int64(n) / int64(max(rec.SleptReplicas, 1))
	}
	add := n - live
	if add <= 0 {
		return 0
	}
	per := p.imageMemory(rec.ImageID)
	if live > 0 {
		if m := functionMemory(reps); m > 0 {
			per = m / int64(live)
		}
	}
	if per == 0 {
		if q := rec.Deployment.Requests; q != nil {
			per, _ = ParseMemory(q.Memory)
		}
	}
	if per == 0 {
		per = defaultReplicaMemory
	}
	return per * int64(add)
}

// imageMemory is what a replica of the image was last seen using (0: never).
func (p *Provider) imageMemory(imageID string) int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.seenMemory[imageID]
}

// noteImageMemory records what a replica of the image uses.
func (p *Provider) noteImageMemory(imageID string, perReplica int64) {
	if imageID == "" || perReplica <= 0 {
		return
	}
	p.mu.Lock()
	p.seenMemory[imageID] = perReplica
	p.mu.Unlock()
}

// Fleet returns the provider as the policies see it.
func (p *Provider) Fleet() policy.Fleet { return fleet{p} }

// fleet implements policy.Fleet.
type fleet struct{ p *Provider }

// Activity reports every function's use.
func (f fleet) Activity() []policy.Activity {
	p := f.p
	fns := p.functions()
	out := make([]policy.Activity, 0, len(fns))
	for _, fn := range fns {
		rec, reps := fn.snapshot()
		if fn.isDeleted() {
			continue
		}
		a := policy.Activity{
			Key:         fn.key,
			State:       rec.State,
			Replicas:    rec.Replicas,
			LastUsed:    time.Unix(0, fn.lastUsed.Load()),
			Inflight:    fn.inflight.Load(),
			Requests:    fn.requests.Load(),
			SleptMemory: rec.SleptMemory,
			SleepReason: rec.SleepReason,
			LastBackup:  time.Unix(0, fn.lastBackup.Load()),
		}
		if rec.State == api.StateHibernated {
			a.HibernatedAt, a.Deep = hibernatedAt(rec), sandboxesDown(reps)
		}
		if rec.Deployment.Labels != nil {
			a.Labels = *rec.Deployment.Labels
		}
		if rec.State != api.StateHibernated {
			a.Memory = functionMemory(reps)
			if running := len(*fn.endpoints.Load()); running > 0 && rec.State == api.StateAwake {
				p.noteImageMemory(rec.ImageID, a.Memory/int64(running))
			}
		}
		out = append(out, a)
	}
	return out
}

func (fn *function) isDeleted() bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.deleted
}

// policyLock takes a function's operation lock without waiting: a policy
// never queues behind a user's operation.
func (p *Provider) policyLock(k api.Key) (*function, error) {
	fn, err := p.lookup(k.Namespace, k.Name)
	if err != nil {
		return nil, err
	}
	if !fn.opMu.TryLock() {
		return nil, policy.ErrBusy
	}
	return fn, nil
}

// Sleep puts a function to sleep on behalf of a policy. Unless
// allowInflight, it does nothing while requests are in flight. With usedAt
// set, it does nothing to a function used or woken after usedAt: the policy
// decided on a snapshot taken before, and a wake (by a gateway's scale-up,
// say) must not be undone by a decision about the idle time that preceded
// it.
func (f fleet) Sleep(ctx context.Context, k api.Key, how, reason string, allowInflight bool, usedAt time.Time) error {
	p := f.p
	fn, err := p.policyLock(k)
	if err != nil {
		return err
	}
	defer fn.opMu.Unlock()
	// Under opMu no wake or scale runs, so lastUsed read now is final for
	// everything but requests, which the in-flight check covers.
	if !usedAt.IsZero() && fn.lastUsed.Load() > usedAt.UnixNano() {
		return fmt.Errorf("%w: used since the policy looked", policy.ErrBusy)
	}
	mode := inflightRefuse
	if allowInflight {
		mode = inflightFreeze
	}
	return p.sleepInOp(ctx, fn, how, reason, mode)
}

// Scale sets an awake function's replicas on behalf of the load policy.
func (f fleet) Scale(ctx context.Context, k api.Key, replicas int) error {
	p := f.p
	fn, err := p.policyLock(k)
	if err != nil {
		return err
	}
	defer fn.opMu.Unlock()
	fn.mu.Lock()
	awake := fn.rec.State == api.StateAwake && fn.rec.Replicas > 0
	fn.mu.Unlock()
	if !awake {
		return nil
	}
	return p.scaleUpInOp(ctx, fn, replicas)
}

// Wake starts waking a sleeping function on behalf of a policy.
func (f fleet) Wake(ctx context.Context, k api.Key) error {
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
func (f fleet) Backup(ctx context.Context, k api.Key, keep int) error {
	fn, err := f.p.policyLock(k)
	if err != nil {
		return err
	}
	defer fn.opMu.Unlock()
	return f.p.backupInOp(ctx, fn, keep)
}
