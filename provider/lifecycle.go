package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
	ckpt "github.com/faas-criu/faas-criu/checkpoint"
	"github.com/faas-criu/faas-criu/internal/config"
	"github.com/faas-criu/faas-criu/policy"
)

// checkDeployment validates a deployment, fills in its namespace and
// returns the ID of its image.
func (p *Provider) checkDeployment(ctx context.Context, dep *types.FunctionDeployment) (api.Key, string, error) {
	key, err := p.checkDefinition(ctx, dep)
	if err != nil {
		return key, "", err
	}
	id, err := p.ensureImage(ctx, dep.Image)
	return key, id, err
}

// checkDefinition validates everything in a deployment but its image.
func (p *Provider) checkDefinition(ctx context.Context, dep *types.FunctionDeployment) (api.Key, error) {
	if err := api.ValidateName(dep.Service); err != nil {
		return api.Key{}, err
	}
	ns, err := p.namespace(dep.Namespace)
	if err != nil {
		return api.Key{}, err
	}
	dep.Namespace = ns
	key := api.Key{Namespace: ns, Name: dep.Service}
	api.DropOutputs(dep)
	if dep.Image == "" {
		return key, errorf(api.ErrInvalid, "image is required for function %q", dep.Service)
	}
	if _, err := resources(*dep); err != nil {
		return key, err
	}
	// A policy label not understood is refused, not read as off. The
	// policy package reads them all (scale.min, deep-after, ...): the one
	// place each is parsed.
	if dep.Labels != nil {
		if _, errs := policy.SettingsFor(*dep.Labels, policy.Defaults{}); len(errs) > 0 {
			return key, errorf(api.ErrInvalid, "%v", errs[0])
		}
	}
	if err := p.checkInPlace(*dep); err != nil {
		return key, err
	}
	for _, s := range dep.Secrets {
		if err := api.ValidateSecretName(s); err != nil {
			return key, err
		}
		if _, err := os.Stat(p.store.secretPath(ns, s)); err != nil {
			return key, errorf(api.ErrInvalid, "secret %q does not exist in namespace %q: create it first (faas-cli secret create %s)", s, ns, s)
		}
	}
	if len(dep.Constraints) > 0 {
		slog.Warn("constraints are not supported by faas-criu (one box) and are ignored", "function", key.String(), "constraints", dep.Constraints)
	}
	return key, nil
}

// scaleDownMode is what a scale to zero does with requests in flight:
// drain them, unless the function opted in to hibernating with them. The
// label is read as deploy validated it (1, yes, TRUE too), not as "true" only.
func scaleDownMode(dep types.FunctionDeployment) inflightMode {
	if on, _ := config.ParseBool(labelOf(dep, api.LabelHibernateInflight)); on {
		return inflightFreeze
	}
	return inflightDrain
}

func labelOf(dep types.FunctionDeployment, name string) string {
	if dep.Labels == nil {
		return ""
	}
	return (*dep.Labels)[name]
}

// minReplicas is com.openfaas.scale.min (default 1), as package policy
// reads it: the one place the label is parsed. A malformed value, refused
// at deploy, reads as the default.
func minReplicas(dep types.FunctionDeployment) (int, error) {
	var labels map[string]string
	if dep.Labels != nil {
		labels = *dep.Labels
	}
	s, _ := policy.SettingsFor(labels, policy.Defaults{})
	return s.Min, nil
}

// Deploy creates a new function and starts its replicas (max(1, scale.min)).
func (p *Provider) Deploy(ctx context.Context, dep types.FunctionDeployment) error {
	key, imageID, err := p.checkDeployment(ctx, &dep)
	if err != nil {
		return err
	}
	minN, _ := minReplicas(dep)
	rec := &record{Deployment: dep, ImageID: imageID, CreatedAt: time.Now().UTC(), Replicas: max(1, minN), State: api.StateAwake}

	p.mu.Lock()
	if p.fns[key] != nil {
		p.mu.Unlock()
		return errorf(api.ErrExists, "function %q already exists in namespace %q: update it with PUT /system/functions (faas-cli deploy does)", key.Name, key.Namespace)
	}
	fn := newFunction(key, rec)
	fn.opMu.Lock() // before publishing, so nobody acts on a half-made function
	p.fns[key] = fn
	p.mu.Unlock()
	defer fn.opMu.Unlock()

	p.makeRoom(ctx, fn, p.memoryNeed(fn, *rec, rec.Replicas))
	// The record goes first: after a crash, reconciliation finishes the job.
	if err := p.store.saveRecord(key.Namespace, key.Name, rec); err != nil {
		p.mu.Lock()
		delete(p.fns, key)
		p.mu.Unlock()
		return err
	}
	if err := p.ensureReplicas(ctx, fn); err != nil {
		// Roll back: a deploy that could not start leaves nothing behind.
		_ = p.deleteInOp(context.WithoutCancel(ctx), fn)
		return fmt.Errorf("deploy %s: %w", key, err)
	}
	p.metrics.functionsDeployed.Inc()
	slog.Info("function deployed", "function", key.String(), "image", dep.Image, "replicas", rec.Replicas)
	return nil
}

// Update replaces a function's definition; its replicas are recreated from
// the new definition. A sleeping function is woken fresh, since its
// checkpoints belong to the old definition. An update that changes nothing
// the containers are made from (same image, only labels or annotations
// changed, or nothing) leaves the function as it is, asleep or not.
func (p *Provider) Update(ctx context.Context, dep types.FunctionDeployment) error {
	key, imageID, err := p.checkDeployment(ctx, &dep)
	if err != nil {
		return err
	}
	fn, err := p.lookup(key.Namespace, key.Name)
	if err != nil {
		return err
	}
	fn.opMu.Lock()
	defer fn.opMu.Unlock()
	fn.mu.Lock()
	if fn.deleted {
		fn.mu.Unlock()
		return errorf(api.ErrNotFound, "function %q not found in namespace %q", key.Name, key.Namespace)
	}
	rec := *fn.rec
	fn.mu.Unlock()
	if specHash(dep, imageID) == rec.spec() {
		// Nothing the containers are made from changed: they stay, awake or
		// asleep, with their state; only the record takes the new labels
		// and annotations. A deploy is also the user's word that a lost
		// state is no longer news.
		if definitionHash(dep, imageID) == definitionHash(rec.Deployment, rec.ImageID) && rec.StateLost == nil {
			return nil
		}
		minN, _ := minReplicas(dep)
		rec.Deployment, rec.StateLost = dep, nil
		grow := rec.State == api.StateAwake && rec.Replicas < minN
		if grow {
			rec.Replicas = minN
		}
		if err := p.commit(fn, &rec); err != nil {
			return err
		}
		if grow {
			if err := p.ensureReplicas(ctx, fn); err != nil {
				return fmt.Errorf("update %s: %w", key, err)
			}
		}
		slog.Info("function labels and annotations updated; its containers (and their state) are kept", "function", key.String())
		return nil
	}

	minN, _ := minReplicas(dep)
	n := rec.Replicas
	if rec.State != api.StateAwake {
		n = rec.SleptReplicas
	}
	rec.Deployment, rec.ImageID = dep, imageID
	rec.Replicas = max(n, minN, 1)
	rec.State, rec.SleptReplicas, rec.SleptAt = api.StateAwake, 0, nil
	rec.Checkpoints, rec.FromBackup, rec.StateLost = nil, nil, nil
	// Dumps in place, like checkpoints, belong to the old containers.
	for _, d := range rec.InPlace {
		_ = os.RemoveAll(d.Dir)
	}
	rec.InPlace = nil
	// Backups of the old definition cannot be restored into the new one.
	if err := os.RemoveAll(p.backupRoot(key)); err != nil {
		return fmt.Errorf("update %s: backups: %w", key, err)
	}
	if err := p.commit(fn, &rec); err != nil {
		return err
	}
	if err := p.ensureReplicas(ctx, fn); err != nil {
		return fmt.Errorf("update %s: %w", key, err)
	}
	slog.Info("function updated", "function", key.String(), "image", dep.Image, "replicas", rec.Replicas)
	return nil
}

// Delete removes a function, its containers and its checkpoints.
func (p *Provider) Delete(ctx context.Context, ns, name string) error {
	if err := api.ValidateName(name); err != nil {
		return err
	}
	fn, err := p.lookup(ns, name)
	if err != nil {
		return err
	}
	fn.opMu.Lock()
	defer fn.opMu.Unlock()
	return p.deleteInOp(ctx, fn)
}

func (p *Provider) deleteInOp(ctx context.Context, fn *function) error {
	fn.mu.Lock()
	fn.deleted = true
	reps := make([]*replica, 0, len(fn.replicas))
	for _, r := range fn.replicas {
		r.ready = false
		reps = append(reps, r)
	}
	fn.refreshEndpointsLocked(p.cfg.FunctionPort)
	fn.mu.Unlock()

	var errs []error
	for _, r := range reps {
		if err := p.removeReplica(ctx, r); err != nil {
			errs = append(errs, err)
		}
	}
	// Containers the provider lost track of are found by label.
	if found, err := p.listContainers(ctx, &fn.key); err == nil {
		for _, r := range found[fn.key] {
			if err := p.removeReplica(ctx, r); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("delete %s: %w", fn.key, errors.Join(errs...))
	}
	if err := os.RemoveAll(p.backupRoot(fn.key)); err != nil {
		return fmt.Errorf("delete %s: backups: %w", fn.key, err)
	}
	if err := p.store.deleteRecord(fn.key.Namespace, fn.key.Name); err != nil {
		return fmt.Errorf("delete %s: %w", fn.key, err)
	}
	p.mu.Lock()
	if p.fns[fn.key] == fn {
		delete(p.fns, fn.key)
	}
	p.mu.Unlock()
	fn.mu.Lock()
	fn.replicas = map[int]*replica{}
	fn.mu.Unlock()
	slog.Info("function deleted", "function", fn.key.String())
	return nil
}

// Scale sets a function's replica count. Zero puts the function to sleep
// (hibernated with CRIU, or paused, by its strategy); from zero, sleeping
// replicas are woken with their state and any beyond them start fresh.
func (p *Provider) Scale(ctx context.Context, ns, name string, replicas int) error {
	if err := api.ValidateName(name); err != nil {
		return err
	}
	if replicas < 0 || replicas > 1000 {
		return errorf(api.ErrInvalid, "replicas must be from 0 to 1000, not %d", replicas)
	}
	fn, err := p.lookup(ns, name)
	if err != nil {
		return err
	}
	fn.opMu.Lock()
	defer fn.opMu.Unlock()
	if replicas == 0 {
		// A scale to zero drains the requests in flight first, so each gets
		// its answer now rather than frozen in a checkpoint until some later
		// wake; a function that opted in to hibernating with requests in
		// flight has them frozen (see inflightMode).
		return p.sleepInOp(ctx, fn, p.strategyOf(fn), "scaled to zero", scaleDownMode(fn.definition()))
	}
	// A scale-up is a request for service (a gateway scales to 1 before it
	// forwards a request): use, even when the function is already awake.
	fn.touch()
	return p.scaleUpInOp(ctx, fn, replicas)
}

// scaleUpInOp sets the target to n > 0 and brings replicas to it.
func (p *Provider) scaleUpInOp(ctx context.Context, fn *function, n int) error {
	fn.mu.Lock()
	if fn.deleted {
		fn.mu.Unlock()
		return errorf(api.ErrNotFound, "function %q not found in namespace %q", fn.key.Name, fn.key.Namespace)
	}
	rec := *fn.rec
	fn.mu.Unlock()
	wasAsleep, asleep := rec.State, rec
	if _, reps := fn.snapshot(); tierOf(rec, reps) == api.TierDeep {
		wasAsleep = api.TierDeep // for the wake's record: its sandboxes start first
	} else if rec.State == api.StateHibernated && len(rec.InPlace) > 0 {
		wasAsleep = wakeFromInPlace
	}
	start := time.Now()
	p.makeRoom(ctx, fn, p.memoryNeed(fn, rec, n))
	var w *wakeInProgress
	if wasAsleep != api.StateAwake {
		// A replica restored may take requests as soon as it answers
		// (early.go); the wake's record is written before it does.
		w = &wakeInProgress{from: wasAsleep, start: start, sandboxes: p.lookAheadAtSandboxes(ctx, fn)}
	}
	rec.Replicas = n
	rec.State, rec.SleptReplicas, rec.SleptAt, rec.SleepReason = api.StateAwake, 0, nil, ""
	if err := p.commit(fn, &rec); err != nil {
		return err
	}
	if wasAsleep != api.StateAwake || asleep.Replicas == 0 {
		// Any wake counts as use, whatever caused it (see touch).
		fn.touch()
	}
	fn.wakeOp = w
	started, err := p.alignReplicas(ctx, fn)
	fn.wakeOp = nil
	// Requests reach the woken replicas only once the wake is recorded.
	defer p.checkReady(ctx, fn, started)
	if w != nil {
		p.afterWake(fn, w, asleep, err)
	}
	return err
}

// afterWake records a wake (unless a replica's early answer did already)
// and, when nothing woke, puts the function's sleep back in its record.
func (p *Provider) afterWake(fn *function, w *wakeInProgress, asleep record, err error) {
	if w.noted {
		p.endWake(fn, w, err)
	} else {
		p.noteWake(fn, w.from, time.Since(w.start), err, false)
	}
	if err == nil || p.anyRunning(fn) {
		return
	}
	// Nothing woke: it is still asleep, checkpoints and all, and the next
	// request or scale-up tries again. What the record learnt meanwhile (a
	// wake that answered early, a lost state) stays.
	fn.mu.Lock()
	asleep.LastWake, asleep.StateLost = fn.rec.LastWake, fn.rec.StateLost
	fn.mu.Unlock()
	if cerr := p.commit(fn, &asleep); cerr != nil {
		slog.Error("record the failed wake", "function", fn.key.String(), "err", cerr)
	}
}

func (p *Provider) anyRunning(fn *function) bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	for idx, r := range fn.replicas {
		// One hibernated in place runs its init only, not its function.
		if _, asleep := fn.rec.inPlaceDumped(idx); r.status == "running" && !asleep {
			return true
		}
	}
	return false
}

// commit saves rec as the function's record.
func (p *Provider) commit(fn *function, rec *record) error {
	rec.Invocations = fn.invocations.Load()
	if err := p.store.saveRecord(fn.key.Namespace, fn.key.Name, rec); err != nil {
		return err
	}
	fn.mu.Lock()
	fn.rec = rec
	fn.mu.Unlock()
	fn.savedInv.Store(rec.Invocations)
	return nil
}

// ensureReplicas brings an awake function's containers in line with its
// record and has the replicas it started health-checked, after which they
// take requests. Call with fn.opMu held.
func (p *Provider) ensureReplicas(ctx context.Context, fn *function) error {
	started, err := p.alignReplicas(ctx, fn)
	p.checkReady(ctx, fn, started)
	return err
}

// checkReady health-checks replicas in the background; each takes requests
// once it answers.
func (p *Provider) checkReady(ctx context.Context, fn *function, reps []*replica) {
	for _, r := range reps {
		go p.markReady(context.WithoutCancel(ctx), fn, r)
	}
}

// alignReplicas brings an awake function's containers in line with its
// record: replicas 0..n-1 running the current definition, none beyond.
// Paused replicas are unpaused, hibernated ones restored, stopped ones
// started, missing or outdated ones (re)created. It returns the replicas
// that may still need their health check. Call with fn.opMu held.
func (p *Provider) alignReplicas(ctx context.Context, fn *function) ([]*replica, error) {
	fn.mu.Lock()
	rec := *fn.rec
	current := map[int]*replica{}
	for i, r := range fn.replicas {
		current[i] = r
	}
	fn.mu.Unlock()
	if rec.State != api.StateAwake {
		return nil, nil
	}
	errs := p.dropStaleReplicas(ctx, fn, &rec, current)
	var started []*replica
	for idx := 0; idx < rec.Replicas; idx++ {
		r, err := p.bringUpReplica(ctx, fn, &rec, idx, current[idx])
		if err != nil {
			errs = append(errs, fmt.Errorf("replica %d: %w", idx, err))
			continue
		}
		started = append(started, r) // may still need its health check
	}
	return started, errors.Join(errs...)
}

// dropStaleReplicas removes the replicas beyond the record's count, and
// the function containers of an older definition; what it removed whole
// leaves current.
func (p *Provider) dropStaleReplicas(ctx context.Context, fn *function, rec *record, current map[int]*replica) []error {
	var errs []error
	for idx, r := range current {
		switch {
		case idx >= rec.Replicas:
			p.setReplica(fn, idx, nil)
			if err := p.removeReplica(ctx, r); err != nil {
				errs = append(errs, err)
			}
			p.forgetCheckpoint(fn, idx, nil)
			p.forgetInPlace(fn, idx)
			_ = os.RemoveAll(ckpt.ReplicaBackups(p.backupRoot(fn.key), idx))
			delete(current, idx)
		case r.id != "" && !sameSpec(r.spec, *rec):
			// An older definition: a new function container, in the same
			// sandbox (same address), unless it hibernated (CRIU left the
			// sandbox's network locked): then in a new one.
			_, hibernated := rec.Checkpoints[idx]
			if hibernated || r.status != "running" {
				p.setReplica(fn, idx, nil)
				if err := p.removeReplica(ctx, r); err != nil {
					errs = append(errs, err)
				}
				delete(current, idx)
			} else if err := p.removeFunctionContainer(ctx, fn, r); err != nil {
				errs = append(errs, err)
			}
			p.forgetCheckpoint(fn, idx, nil)
			p.forgetInPlace(fn, idx)
		}
	}
	return errs
}

// bringUpReplica makes replica idx run, whatever state it is found in (r
// nil: it has no container), and returns it.
func (p *Provider) bringUpReplica(ctx context.Context, fn *function, rec *record, idx int, r *replica) (*replica, error) {
	if r != nil && r.id != "" && fn.dumpCut(r) {
		// Its engine crashed during a checkpoint: see what that left first.
		if err := p.settleDump(ctx, fn, r, true); err != nil {
			return nil, err
		}
	}
	if r != nil && r.id != "" && (r.status != "running" || !r.sandboxUp) {
		// About to start, restore or unpause: its sandbox first.
		if err := p.ensureSandbox(ctx, fn, r); err != nil {
			return nil, err
		}
	}
	var err error
	d, inPlace := rec.inPlaceDumped(idx)
	switch {
	case r == nil || r.id == "":
		r, err = p.recreateReplica(ctx, fn, rec, idx, r)
	case inPlace:
		// Hibernated in place: its container may run (its init does),
		// or be stopped (the deep tier, an engine restart).
		err = p.restoreInPlace(ctx, fn, r, d)
	case r.status == "running":
		if info, ok := rec.Checkpoints[idx]; ok {
			// Restored, but the provider stopped before it noted that (a
			// replica that answers early keeps its checkpoint until the
			// engine's start call returned): it has served.
			p.forgetCheckpoint(fn, idx, nil)
			go p.discardCheckpoint(r.id, info.Name)
		}
	case r.status == "paused":
		err = p.unpauseReplica(ctx, fn, r)
	default: // created, exited, dead
		err = p.restartReplica(ctx, fn, rec, idx, r)
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// recreateReplica brings a missing replica back from its newest backup if
// it has one (its container was removed), else fresh.
func (p *Provider) recreateReplica(ctx context.Context, fn *function, rec *record, idx int, old *replica) (*replica, error) {
	r, err := p.createContainer(ctx, fn.key, rec, idx, old)
	if err != nil {
		return nil, err
	}
	p.setReplica(fn, idx, r)
	if restored, berr := p.startReplicaFromBackup(ctx, fn, r); restored {
		return r, berr
	}
	return r, p.startReplica(ctx, fn, r)
}

// restartReplica starts a stopped replica from the best state there is: its
// checkpoint, one the record missed, its newest backup, or fresh.
func (p *Provider) restartReplica(ctx context.Context, fn *function, rec *record, idx int, r *replica) error {
	was := r.status
	if info, ok := rec.Checkpoints[idx]; ok {
		return p.restoreReplica(ctx, fn, r, info)
	}
	if info, ok := p.strayCheckpoint(ctx, r); ok {
		// Checkpointed, but the provider stopped before it noted that:
		// the state is in that checkpoint.
		slog.Warn("replica has a checkpoint the record missed: restoring from it", "function", fn.key.String(), "replica", idx, "checkpoint", info.Name)
		return p.restoreReplica(ctx, fn, r, info)
	}
	if restored, err := p.startReplicaFromBackup(ctx, fn, r); restored {
		// It died: back to its newest backup's state.
		return err
	}
	err := p.startReplica(ctx, fn, r)
	if err == nil && was != "created" {
		// It had run: its process ended (killed, or the engine or the box
		// went down without live-restore) and nothing holds its memory.
		p.noteStateLost(fn, idx, fmt.Sprintf("its container had stopped (%s: killed, or the engine or the machine restarted) and it had no checkpoint or backup", was))
	}
	return err
}

// setReplica installs (or, with nil, removes) replica idx.
func (p *Provider) setReplica(fn *function, idx int, r *replica) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if r == nil {
		delete(fn.replicas, idx)
	} else {
		fn.replicas[idx] = r
		p.ipam.reserve(r.ip)
	}
	fn.refreshEndpointsLocked(p.cfg.FunctionPort)
}

// setStatus records a replica's new Docker status; only running replicas
// can be ready.
func (p *Provider) setStatus(fn *function, r *replica, status string) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	r.status = status
	if status != "running" {
		r.ready = false
	}
	fn.refreshEndpointsLocked(p.cfg.FunctionPort)
}

// startReplica starts a stopped replica afresh (its memory state is gone).
func (p *Provider) startReplica(ctx context.Context, fn *function, r *replica) error {
	err := p.engine.StartContainer(ctx, r.id)
	if orphanTask(err) {
		// See orphanTask: new containers, at the same address.
		slog.Warn("replica cannot start: renewing it", "function", fn.key.String(), "replica", r.index, "err", err)
		if err = p.renewReplica(ctx, fn, r); err == nil {
			err = p.engine.StartContainer(ctx, r.id)
		}
	}
	if err != nil {
		return fmt.Errorf("start %s: %w", r.name, err)
	}
	p.setStatus(fn, r, "running")
	return nil
}

func (p *Provider) unpauseReplica(ctx context.Context, fn *function, r *replica) error {
	if err := p.engine.UnpauseContainer(ctx, r.id); err != nil {
		return fmt.Errorf("unpause %s: %w", r.name, err)
	}
	p.setStatus(fn, r, "running")
	return nil
}
