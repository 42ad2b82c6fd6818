package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/faas-criu/faas-criu/api"
	ckpt "github.com/faas-criu/faas-criu/checkpoint"
	"github.com/faas-criu/faas-criu/policy"
)

func (p *Provider) strategyOf(fn *function) string {
	fn.mu.Lock()
	s := labelOf(fn.rec.Deployment, api.LabelStrategy)
	fn.mu.Unlock()
	if api.ValidStrategy(s) {
		return s
	}
	return p.cfg.Strategy
}

// inflightMode says what a sleep does about requests in flight.
type inflightMode int

const (
	// inflightRefuse: no sleep while requests are in flight (the idle
	// policy).
	inflightRefuse inflightMode = iota
	// inflightDrain: stop taking requests, let those in flight finish (up to
	// the drain timeout), then sleep. A scale to zero through the API does
	// this (see Scale).
	inflightDrain
	// inflightFreeze: sleep with them; they finish after the next wake, on
	// the same connection (the memory budget and a scale to zero of a
	// function that opted in with com.openfaas.criu.hibernate-inflight, and
	// migration, which moves them along).
	inflightFreeze
)

// reasonMigration is the sleep reason of a function being migrated.
const reasonMigration = "migration"

// sleepInOp puts every running replica of fn to sleep. With the checkpoint
// strategy (and a working CRIU) each replica is checkpointed and its
// container exits, freeing its memory; otherwise replicas are paused. Paused
// replicas can be checkpointed later (pause-then-checkpoint). If a
// checkpoint fails the function is left running, as it was.
//
// Every request accepted is answered: requests that arrive while it goes
// to sleep wait for a wake, and get one at once once it sleeps (but while the
// memory budget or a migration put it to sleep: the budget wakes it when
// there is room, a migration moves it).
func (p *Provider) sleepInOp(ctx context.Context, fn *function, strategy, why string, mode inflightMode) error {
	rec, reps, err := fn.sleepSnapshot()
	if err != nil {
		return err
	}
	if strategy == api.StrategyRemove {
		return p.removeAllInOp(ctx, fn, &rec, why, mode == inflightRefuse)
	}
	target := p.sleepTarget(strategy)
	if rec.State == target || rec.State == api.StateHibernated {
		return nil // already asleep at least this deeply
	}
	awake := rec.State == api.StateAwake

	start := time.Now()
	memory := functionMemory(snapshotReplicas(reps))
	fn.withdraw(reps, p.cfg.FunctionPort)
	inPlace := inPlaceOf(rec.Deployment) && why != reasonMigration
	if err := p.settleInflight(ctx, fn, reps, mode, inPlace); err != nil {
		return err
	}

	switch {
	case target == api.StatePaused:
		err = p.pauseAll(ctx, fn, reps)
	case inPlace:
		// A migration needs the engine's checkpoint of the containers:
		// a dump in place restores only into the container it came from.
		err = p.hibernateAllInPlace(ctx, fn, reps, &rec)
	default:
		err = p.hibernateAll(ctx, fn, reps, &rec)
	}
	if err != nil {
		return p.sleepFailed(ctx, fn, reps, start, err)
	}

	if awake {
		rec.SleptReplicas = rec.Replicas
		now := time.Now().UTC()
		rec.SleptAt = &now
	}
	rec.Replicas = 0
	rec.State = target
	rec.SleepReason = why
	if memory > 0 {
		rec.SleptMemory = memory
	}
	if err := p.commit(fn, &rec); err != nil {
		return err
	}
	d := time.Since(start)
	p.metrics.observeSleep(target, d)
	attrs := []any{"function", fn.key.String(), "state", target, "replicas", len(reps), "took", d.Round(time.Millisecond), "reason", why}
	if strategy == api.StrategyCheckpoint && target == api.StatePaused {
		attrs = append(attrs, "paused_instead", "CRIU unavailable: "+p.criu.Problem)
	}
	slog.Info("function asleep", attrs...)
	if target == api.StateHibernated && why != reasonMigration {
		p.offerHibernation(fn)
	}
	if why != policy.ReasonBudget && why != reasonMigration {
		p.serveLeftovers(fn, reps, mode)
	}
	return nil
}

// sleepSnapshot copies the record and the replicas (by index) of a function
// that is about to sleep; a deleted one is not found.
func (fn *function) sleepSnapshot() (record, []*replica, error) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if fn.deleted {
		return record{}, nil, errorf(api.ErrNotFound, "function %q not found in namespace %q", fn.key.Name, fn.key.Namespace)
	}
	reps := make([]*replica, 0, len(fn.replicas))
	for _, i := range sortedIndexes(fn.replicas) {
		reps = append(reps, fn.replicas[i])
	}
	return *fn.rec, reps, nil
}

// sleepTarget is the state a strategy puts a function in: checkpoint
// without CRIU pauses instead.
func (p *Provider) sleepTarget(strategy string) string {
	if strategy != api.StrategyCheckpoint || !p.criu.Available {
		return api.StatePaused
	}
	return api.StateHibernated
}

// withdraw takes the replicas out of the endpoints: requests arriving from
// now on wait for the wake-up instead of being sent to a replica that is
// going away.
func (fn *function) withdraw(reps []*replica, port int) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	for _, r := range reps {
		r.ready = false
	}
	fn.refreshEndpointsLocked(port)
}

// sleepFailed gives the replicas back to requests and says what runs now,
// and whether a replica's memory state was lost on the way.
func (p *Provider) sleepFailed(ctx context.Context, fn *function, reps []*replica, start time.Time, err error) error {
	p.giveBack(ctx, fn, reps)
	msg := p.checkRunning(ctx, reps)
	fn.mu.Lock()
	if l := fn.rec.StateLost; l != nil && !l.At.Before(start) {
		msg += fmt.Sprintf("; replica %d's memory state was lost: %s", l.Replica, l.Reason)
	}
	fn.mu.Unlock()
	return fmt.Errorf("%w; %s", err, msg)
}

// settleInflight does what mode says with the requests in flight on the
// withdrawn replicas before a sleep, or gives the replicas back and refuses
// as busy.
func (p *Provider) settleInflight(ctx context.Context, fn *function, reps []*replica, mode inflightMode, inPlace bool) error {
	// A request counts itself in flight before it looks for a replica, so
	// after the replicas were withdrawn this count misses none of them.
	if mode == inflightRefuse && fn.inflight.Load() > 0 {
		p.giveBack(ctx, fn, reps)
		return fmt.Errorf("%w: requests are in flight", policy.ErrBusy)
	}
	if inPlace && mode == inflightFreeze {
		// A dump in place does not lock the network (checkpoint/inplace.go):
		// a request in flight would have its connection reset, not finish
		// after the wake. So it drains instead, and never sleeps with one.
		mode = inflightDrain
	}
	if mode == inflightDrain {
		p.drainAll(ctx, fn, reps)
	}
	if inPlace && servingOf(reps) > 0 {
		p.giveBack(ctx, fn, reps)
		return fmt.Errorf("%w: requests are still in flight after the drain, and a dump in place would reset their connections", policy.ErrBusy)
	}
	return nil
}

// servingOf counts the requests the replicas are serving.
func servingOf(reps []*replica) (n int64) {
	for _, r := range reps {
		n += r.load.inflight.Load()
	}
	return n
}

// drainAll waits, up to the drain timeout, for the requests the (already
// withdrawn) replicas serve to finish. Those still running after it are
// frozen with the function and answered after the wake that serveLeftovers
// starts at once.
func (p *Provider) drainAll(ctx context.Context, fn *function, reps []*replica) {
	serving := func() int64 { return servingOf(reps) }
	if serving() == 0 {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DrainTimeout)
	defer cancel()
	for serving() > 0 {
		select {
		case <-ctx.Done():
			slog.Warn("requests still in flight after the drain timeout: they finish after the wake that follows the sleep", "function", fn.key.String(), "inflight", serving(), "timeout", p.cfg.DrainTimeout)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	slog.Info("drained the requests in flight before sleeping", "function", fn.key.String(), "took", time.Since(start).Round(time.Millisecond))
}

// serveLeftovers wakes a function that just went to sleep when requests
// still need it: those that arrived meanwhile (they wait for a replica), and
// with a drain, any still in flight when its time ran out (frozen in the
// checkpoint, answered once restored). Requests frozen on purpose
// (inflightFreeze) wait for the next wake, as their opt-in says.
func (p *Provider) serveLeftovers(fn *function, reps []*replica, mode inflightMode) {
	need := fn.inflight.Load()
	if mode == inflightFreeze {
		for _, r := range reps {
			need -= r.load.inflight.Load()
		}
	}
	if need <= 0 {
		return
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if fn.deleted || fn.waking {
		return
	}
	slog.Info("requests wait for it: waking it again at once", "function", fn.key.String(), "waiting", need)
	fn.waking = true
	// wake takes fn.opMu, held by the caller until it returns.
	go p.wake(fn)
}

// removeAllInOp scales an awake function to zero the OpenFaaS CE way: its
// replicas are removed (state lost) and the next request starts one cold.
func (p *Provider) removeAllInOp(ctx context.Context, fn *function, rec *record, why string, refuseInflight bool) error {
	if rec.State != api.StateAwake {
		return nil
	}
	if refuseInflight && fn.inflight.Load() > 0 {
		return fmt.Errorf("%w: requests are in flight", policy.ErrBusy)
	}
	rec.SleptReplicas = rec.Replicas
	rec.Replicas = 0
	if err := p.commit(fn, rec); err != nil {
		return err
	}
	if err := p.ensureReplicas(ctx, fn); err != nil {
		return err
	}
	slog.Info("function asleep: replicas removed (strategy remove)", "function", fn.key.String(), "reason", why)
	return nil
}

// checkRunning asks the engine whether the replicas that were to sleep
// run, after a sleep that failed, and says what it found. A message claims
// that the function keeps running only when the engine said so: after an
// engine crash mid-checkpoint it used to claim that of a function whose
// container had been stopped and whose state was lost.
func (p *Provider) checkRunning(ctx context.Context, reps []*replica) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var odd []string
	for _, r := range reps {
		if r.id == "" {
			continue
		}
		st, err := p.engine.InspectContainer(ctx, r.id)
		switch {
		case err != nil:
			return fmt.Sprintf("whether the function still runs is unknown: the engine did not say (%v); the provider brings it back when the engine answers", err)
		case st.Paused:
			odd = append(odd, fmt.Sprintf("replica %d is paused", r.index))
		case !st.Running:
			odd = append(odd, fmt.Sprintf("replica %d is %s", r.index, st.Status))
		}
	}
	if len(odd) > 0 {
		return "checked with the engine: " + strings.Join(odd, ", ")
	}
	return "the function keeps running (checked with the engine)"
}

// giveBack returns running replicas to the invoke path after a sleep that
// did not happen.
func (p *Provider) giveBack(ctx context.Context, fn *function, reps []*replica) {
	for _, r := range reps {
		fn.mu.Lock()
		cut := r.dumpCut // out of service until settled (settleDump)
		fn.mu.Unlock()
		if r.status == "running" && !cut {
			go p.markReady(context.WithoutCancel(ctx), fn, r)
		}
	}
}

func snapshotReplicas(reps []*replica) []replica {
	out := make([]replica, len(reps))
	for i, r := range reps {
		out[i] = *r
	}
	return out
}

func (p *Provider) pauseAll(ctx context.Context, fn *function, reps []*replica) error {
	var paused []*replica
	for _, r := range reps {
		if r.status != "running" {
			continue
		}
		if err := p.engine.PauseContainer(ctx, r.id); err != nil {
			for _, q := range paused {
				_ = p.unpauseReplica(context.WithoutCancel(ctx), fn, q)
			}
			return fmt.Errorf("pause %s: %w", r.name, err)
		}
		p.setStatus(fn, r, "paused")
		paused = append(paused, r)
	}
	return nil
}

// hibernateAll checkpoints every running or paused replica. On failure the
// replicas already checkpointed are restored, so the function stays as it
// was, and the error says why. On success the caller saves rec (it holds
// the checkpoints) before it answers.
func (p *Provider) hibernateAll(ctx context.Context, fn *function, reps []*replica, rec *record) error {
	cps := maps.Clone(rec.Checkpoints)
	if cps == nil {
		cps = map[int]CheckpointInfo{}
	}
	var todo, done []*replica
	for _, r := range reps {
		if r.status == "running" || r.status == "paused" {
			todo = append(todo, r)
		}
	}
	for i, r := range todo {
		info, err := p.hibernateReplica(ctx, fn, r)
		if err != nil {
			p.metrics.hibernateFailures.Inc()
			for _, q := range done {
				if rerr := p.restoreReplica(context.WithoutCancel(ctx), fn, q, cps[q.index]); rerr != nil {
					slog.Error("roll back replica after failed hibernation", "function", fn.key.String(), "replica", q.index, "err", rerr)
				} else {
					delete(cps, q.index)
				}
			}
			rec.Checkpoints = cps
			fn.mu.Lock()
			rec.StateLost = fn.rec.StateLost // noted by afterFailedCheckpoint
			fn.mu.Unlock()
			_ = p.commit(fn, rec)
			// Whether it keeps running is for the caller to check (see
			// checkRunning), not to assume: the engine may be gone.
			return fmt.Errorf("hibernate %s: %w", fn.key, err)
		}
		cps[r.index] = info
		done = append(done, r)
		rec.Checkpoints = cps
		// Saved after each replica, so that a crash mid-way still knows
		// every checkpoint taken; but the last, which the caller saves
		// with the sleep itself at once (sleepInOp commits rec next, with
		// nothing in between that can fail): one synced write fewer on
		// every suspend (1.5 ms median, 5 ms p90 at load 9).
		if i < len(todo)-1 {
			if err := p.commit(fn, rec); err != nil {
				return err
			}
		}
	}
	return nil
}

// hibernateReplica checkpoints one replica with CRIU (the engine has its
// containerd write the checkpoint where Docker keeps it, or asks Docker's
// checkpoint API); its container exits. Older checkpoints of the replica are
// removed once the new one is safe.
func (p *Provider) hibernateReplica(ctx context.Context, fn *function, r *replica) (CheckpointInfo, error) {
	if p.beforeCheckpoint != nil {
		p.beforeCheckpoint(r.addr(p.cfg.FunctionPort))
	}
	// Docker stops the container before it writes the checkpoint where it
	// keeps it, so a disk that fills up then loses the state: refuse first.
	if err := p.checkRoom(r); err != nil {
		return CheckpointInfo{}, fmt.Errorf("checkpoint replica %d (%s): %w", r.index, r.name, err)
	}
	start := time.Now()
	name := ckpt.NewName(ckpt.HibernationPrefix, start)
	stats, err := p.recorder.Dump(func() error {
		return p.engine.CreateCheckpoint(ctx, r.id, CheckpointOptions{Name: name, Exit: true})
	})
	if err != nil {
		p.afterFailedCheckpoint(ctx, fn, r, name, err)
		err = ckpt.ExplainDumpError(err)
		return CheckpointInfo{}, fmt.Errorf("checkpoint replica %d (%s): %w", r.index, r.name, err)
	}
	if err := p.waitStopped(ctx, r.id, 10*time.Second); err != nil {
		return CheckpointInfo{}, fmt.Errorf("checkpoint replica %d (%s): container did not stop: %w", r.index, r.name, err)
	}
	p.setStatus(fn, r, "exited")
	size, err := ckpt.DirSize(p.checkpointDir(r.id, name))
	if err != nil {
		return CheckpointInfo{}, fmt.Errorf("checkpoint replica %d: %w", r.index, err)
	}
	info := CheckpointInfo{Name: name, TakenAt: start.UTC(), Bytes: size, Duration: time.Since(start), Stats: stats}
	if err := p.placeCheckpoint(r.id, info); err != nil {
		return CheckpointInfo{}, fmt.Errorf("checkpoint replica %d: %w", r.index, err)
	}
	p.pruneCheckpoints(ctx, r, name)
	p.metrics.checkpointBytes.Observe(float64(size))
	if stats != nil {
		p.metrics.dumpFreezing.Observe(stats.FreezingTime.Seconds())
		p.metrics.dumpPages.Add(float64(stats.PagesWritten))
	}
	return info, nil
}

// checkRoom makes sure the filesystem the replica's checkpoint goes to has
// room for it: twice its working set (a dump through Docker's checkpoint API
// passes through containerd's store on its way; a direct one needs half) and
// 16 MiB more.
func (p *Provider) checkRoom(r *replica) error {
	dir := filepath.Dir(p.checkpointDir(r.id, "x"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	free, err := ckpt.FreeBytes(dir)
	if err != nil {
		return nil // cannot tell: let the dump say
	}
	mem, ok := containerMemory(r.id)
	if !ok {
		mem = 64 << 20
	}
	if need := 2*mem + 16<<20; free < need {
		return fmt.Errorf("not enough disk space for the checkpoint in %s: %d bytes free, about %d needed", dir, free, need)
	}
	return nil
}

// afterFailedCheckpoint makes sure a replica whose checkpoint failed is
// running again (CRIU resumes the processes it froze) and removes the
// partial checkpoint. dumpErr is the checkpoint's error.
func (p *Provider) afterFailedCheckpoint(ctx context.Context, fn *function, r *replica, name string, dumpErr error) {
	ctx = context.WithoutCancel(ctx)
	_ = p.engine.DeleteCheckpoint(ctx, r.id, name)
	_ = os.RemoveAll(p.checkpointDir(r.id, name))
	_ = os.RemoveAll(p.pagesDir(r.id, name))
	if err := p.settleDump(ctx, fn, r, errors.Is(dumpErr, ErrEngineUnreachable)); err != nil {
		slog.Error("bring back the replica after a failed checkpoint", "function", fn.key.String(), "replica", r.index, "err", err)
	}
}

// settleDump brings a replica whose checkpoint failed into a known state,
// from what the engine says of it now; cut says the engine's connection
// broke during the dump. While the engine does not answer, the replica is
// out of service and marked (dumpCut): bringUpReplica settles it when the
// engine is back. Before, a replica whose engine crashed mid-dump was
// trusted to run: left frozen or in a sandbox CRIU had locked, it never
// answered again (TestEngineRestart: "heavy did not become ready").
func (p *Provider) settleDump(ctx context.Context, fn *function, r *replica, cut bool) error {
	ci, err := p.engine.InspectContainer(ctx, r.id)
	if err != nil {
		fn.mu.Lock()
		r.dumpCut, r.ready = true, false
		fn.refreshEndpointsLocked(p.cfg.FunctionPort)
		fn.mu.Unlock()
		return fmt.Errorf("replica %d after a checkpoint the engine cut short: %w", r.index, err)
	}
	fn.mu.Lock()
	cut = cut || r.dumpCut
	fn.mu.Unlock()
	frozen := false
	if cut && ci.Running && !ci.Paused {
		if frozen, err = p.leftFrozen(ctx, r); err != nil {
			return fmt.Errorf("replica %d after a checkpoint the engine cut short: %w", r.index, err)
		}
	}
	switch {
	case ci.Running && ci.Paused:
		p.setStatus(fn, r, "paused") // unpaused with its state by the next wake or reconciliation
	case ci.Running && !frozen:
		p.setStatus(fn, r, "running")
	default:
		// A dump that a restarted provider's own earlier request had
		// queued may have stopped it, and that dump holds the state.
		if frozen || !p.restoreEarlierDump(ctx, fn, r) {
			if err := p.replaceLostReplica(ctx, fn, r, frozen); err != nil {
				return err
			}
		}
	}
	fn.mu.Lock()
	r.dumpCut = false
	fn.mu.Unlock()
	return nil
}

// leftFrozen says whether a replica the engine calls running is frozen for
// good. Docker's engine has containerd pause a container's task around a
// checkpoint and resume it after; killed in between, it comes back with the
// task paused but the container "running" in its books (unless it noted
// the pause before it died), and it then refuses both to unpause it (not
// paused) and to pause it (the task is): asking for a pause tells. A replica
// that was running pauses, and is unpaused at once.
func (p *Provider) leftFrozen(ctx context.Context, r *replica) (bool, error) {
	err := p.engine.PauseContainer(ctx, r.id)
	if errors.Is(err, ErrEngineTaskPaused) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("pause to probe it: %w", err)
	}
	if err := p.engine.UnpauseContainer(ctx, r.id); err != nil {
		return false, fmt.Errorf("unpause after probing it: %w", err)
	}
	return false, nil
}

// replaceLostReplica brings back a replica whose memory a failed checkpoint
// took: its container stopped (Docker stops it before writing the dump out;
// a dump that finished while the engine crashed stopped it too), or it was
// left frozen (killed here). CRIU may have left its sandbox's network
// locked, so the replica gets new containers at the same address first,
// then its newest backup's state if it has one, else a fresh start, and its
// status says the state was lost.
func (p *Provider) replaceLostReplica(ctx context.Context, fn *function, r *replica, frozen bool) error {
	why := "its container stopped during a checkpoint that failed, and it had no backup"
	if frozen {
		why = "a checkpoint cut short by the engine's crash left it frozen (the engine can neither resume nor pause it), and it had no backup"
		_ = p.engine.KillContainer(ctx, r.id)
		_ = p.waitStopped(ctx, r.id, 10*time.Second)
	}
	p.setStatus(fn, r, "exited")
	slog.Error("replica STOPPED or frozen by a failed checkpoint: bringing it back in new containers", "function", fn.key.String(), "replica", r.index, "frozen", frozen)
	if err := p.renewReplica(ctx, fn, r); err != nil {
		return fmt.Errorf("bring back replica %d after a failed checkpoint: %w", r.index, err)
	}
	if restored, err := p.startReplicaFromBackup(ctx, fn, r); restored {
		return err
	}
	if err := p.startReplica(ctx, fn, r); err != nil {
		return fmt.Errorf("bring back replica %d after a failed checkpoint: %w", r.index, err)
	}
	p.noteStateLost(fn, r.index, why)
	return nil
}

// restoreEarlierDump restores a replica that a failed checkpoint found
// stopped from a checkpoint the record does not know of, if one stopped it:
// a provider killed while the engine dumped the replica restarts, and its
// next checkpoint queues in the shim behind that dump (a direct checkpoint
// freezes nothing until runc and CRIU have started), which completes, stops
// the container and makes the new one fail. That dump holds the state.
func (p *Provider) restoreEarlierDump(ctx context.Context, fn *function, r *replica) bool {
	info, ok := p.strayCheckpoint(ctx, r)
	if !ok {
		return false
	}
	if err := p.restoreReplica(ctx, fn, r, info); err != nil {
		slog.Error("restore from the checkpoint that stopped the replica", "function", fn.key.String(), "replica", r.index, "checkpoint", info.Name, "err", err)
		return false
	}
	slog.Warn("replica stopped by an earlier dump during a failed checkpoint: restored from that dump", "function", fn.key.String(), "replica", r.index, "checkpoint", info.Name)
	return true
}

// strayCheckpoint finds the newest hibernation checkpoint of a stopped
// replica that its function's record does not know of (the provider was
// stopped between the dump and saving the record).
func (p *Provider) strayCheckpoint(ctx context.Context, r *replica) (CheckpointInfo, bool) {
	list, err := p.engine.ListCheckpoints(ctx, r.id)
	if err != nil {
		return CheckpointInfo{}, false
	}
	var newest string
	for _, c := range list {
		if ckpt.IsHibernation(c) && c > newest {
			newest = c
		}
	}
	if newest == "" {
		return CheckpointInfo{}, false
	}
	info := CheckpointInfo{Name: newest}
	dir := p.checkpointDir(r.id, newest)
	if meta, ok := ckpt.ReadMeta(dir); ok {
		info, info.Name = meta, newest
	} else if err := ckpt.WriteMeta(dir, info); err != nil {
		return CheckpointInfo{}, false
	}
	return info, true
}

// pruneCheckpoints removes every hibernation checkpoint of a replica except
// keep.
func (p *Provider) pruneCheckpoints(ctx context.Context, r *replica, keep string) {
	list, err := p.engine.ListCheckpoints(ctx, r.id)
	if err != nil {
		return
	}
	for _, c := range list {
		if c != keep && ckpt.IsHibernation(c) {
			_ = p.engine.DeleteCheckpoint(ctx, r.id, c)
			_ = os.RemoveAll(p.pagesDir(r.id, c))
		}
	}
}

// restoreReplica starts a hibernated replica from its checkpoint, with its
// memory state. On failure the checkpoint stays on disk and the replica stays
// hibernated, unless the provider was configured to fall back to a fresh
// start, which it then reports as lost state.
func (p *Provider) restoreReplica(ctx context.Context, fn *function, r *replica, info CheckpointInfo) error {
	dir := p.checkpointDir(r.id, info.Name)
	if !ckpt.Exists(dir) {
		return p.restoreFailed(ctx, fn, r, info, fmt.Errorf("checkpoint %s of replica %d is missing from %s", info.Name, r.index, dir))
	}
	start := time.Now()
	var span Span
	var answered bool
	_, err := p.recorder.Restore(func() (err error) {
		answered, err = p.startFromCheckpoint(ctx, fn, r, info.Name, &span)
		return err
	})
	fn.mu.Lock()
	fn.restoreSpan = &span
	fn.mu.Unlock()
	if err != nil && answered {
		err = p.lateStartFailure(ctx, fn, r, err)
	}
	if err != nil {
		p.metrics.restoreFailures.Inc()
		return p.restoreFailed(ctx, fn, r, info, fmt.Errorf("restore replica %d (%s) from %s: %w", r.index, r.name, info.Name, err))
	}
	if !answered { // else observed at the answer, as the wake was
		p.metrics.restoreSeconds.Observe(time.Since(start).Seconds())
	}
	p.setStatus(fn, r, "running")
	p.forgetCheckpoint(fn, r.index, fn.wakeOp)
	// The checkpoint has served (the running replica is now the state):
	// delete it, and containerd's copy, off the wake's path.
	go p.discardCheckpoint(r.id, info.Name)
	return nil
}

// discardCheckpoint deletes a checkpoint that has been restored, and the
// copy containerd left of it.
func (p *Provider) discardCheckpoint(containerID, name string) {
	_ = p.engine.DeleteCheckpoint(context.Background(), containerID, name)
	_ = os.RemoveAll(p.pagesDir(containerID, name))
	ckpt.RemoveContainerdCopies(p.cfg.ContainerdTmp, name)
}

func (p *Provider) restoreFailed(ctx context.Context, fn *function, r *replica, info CheckpointInfo, err error) error {
	slog.Error("restore failed", "function", fn.key.String(), "err", err)
	// containerd's copy of the checkpoint serves no later attempt (each
	// unpacks its own) and is left behind by a failed one.
	ckpt.RemoveContainerdCopies(p.cfg.ContainerdTmp, info.Name)
	if !p.cfg.RestoreFallback {
		return fmt.Errorf("%w; the checkpoint is kept and the next request or scale-up retries", err)
	}
	if serr := p.renewReplica(ctx, fn, r); serr != nil {
		return errors.Join(err, serr)
	}
	// Kept, for a look, but never taken for a checkpoint to restore again.
	failed := p.checkpointDir(r.id, info.Name)
	_ = os.Rename(failed, filepath.Join(filepath.Dir(failed), "failed-"+info.Name))
	if serr := p.startReplica(ctx, fn, r); serr != nil {
		return errors.Join(err, serr)
	}
	slog.Warn("replica STARTED FRESH after the failed restore: its memory state is lost (--restore-fallback)", "function", fn.key.String(), "replica", r.index)
	fn.mu.Lock()
	fn.lostState = fmt.Sprintf("replica %d started fresh at %s after a failed restore: %v", r.index, time.Now().UTC().Format(time.RFC3339), err)
	fn.mu.Unlock()
	p.forgetCheckpoint(fn, r.index, nil)
	p.noteStateLost(fn, r.index, fmt.Sprintf("started fresh after a failed restore (--restore-fallback): %v", err))
	return nil
}

// noteStateLost records that a replica's memory state was lost: it is
// running again, started fresh. The status says so, with when and why,
// until the next deploy; before, a function whose containers an engine crash
// had stopped came back fresh and its status said "awake" and nothing more.
func (p *Provider) noteStateLost(fn *function, idx int, why string) {
	slog.Warn("replica STARTED FRESH: its memory state is lost", "function", fn.key.String(), "replica", idx, "reason", why)
	fn.mu.Lock()
	rec := *fn.rec
	fn.mu.Unlock()
	rec.StateLost = &LossInfo{At: time.Now().UTC(), Replica: idx, Reason: why}
	if err := p.commit(fn, &rec); err != nil {
		slog.Error("record the lost state", "function", fn.key.String(), "err", err)
	}
}

// forgetCheckpoint drops a replica's checkpoint from the record. During a
// wake w (nil otherwise) whose record was written at an early answer, the
// same write notes how long the engine's start call took, which endWake
// would otherwise write on its own: one fsynced write fewer per wake, a
// quarter of what 20 functions woken at once write (bench/tried.md 31).
func (p *Provider) forgetCheckpoint(fn *function, idx int, w *wakeInProgress) {
	fn.mu.Lock()
	rec := *fn.rec
	fn.mu.Unlock()
	if _, ok := rec.Checkpoints[idx]; !ok {
		return
	}
	if w != nil && w.noted && w.startCall > 0 && rec.LastWake != nil && rec.LastWake.Early {
		lw := *rec.LastWake
		lw.StartCall = w.startCall
		rec.LastWake = &lw
	}
	rec.Checkpoints = maps.Clone(rec.Checkpoints)
	delete(rec.Checkpoints, idx)
	if len(rec.Checkpoints) == 0 {
		rec.Checkpoints = nil
	}
	if err := p.commit(fn, &rec); err != nil {
		slog.Error("record the forgotten checkpoint", "function", fn.key.String(), "err", err)
	}
}

// noteWake records how the function came back from sleep.
// With early, the replica answered before the engine's start call returned
// and the record is written before requests reach it (see publishEarly).
func (p *Provider) noteWake(fn *function, from string, d time.Duration, err error, early bool) {
	how := "restore"
	if from == api.StatePaused {
		how = "unpause"
	}
	fn.mu.Lock()
	span := fn.restoreSpan // this wake's, if it restored: none is kept for the next
	fn.restoreSpan = nil
	fn.mu.Unlock()
	if err != nil {
		p.metrics.wakeFailures.Inc()
		return
	}
	p.metrics.observeWake(how, d)
	fn.mu.Lock()
	rec := *fn.rec
	lost := fn.lostState
	fn.lostState = ""
	fn.mu.Unlock()
	src := "checkpoint"
	switch from {
	case api.StatePaused:
		src = "pause"
	case api.TierDeep:
		src = "deep" // a checkpoint, its stopped sandboxes started first
	case wakeFromInPlace:
		src = wakeFromInPlace
	}
	rec.LastWake = &WakeInfo{At: time.Now().UTC(), From: src, Duration: d, StateLost: lost != "", Reason: lost, Restore: span, Early: early}
	if err := p.commit(fn, &rec); err != nil {
		slog.Error("record the wake", "function", fn.key.String(), "err", err)
	}
	slog.Info("function woke", "function", fn.key.String(), "from", src, "took", d.Round(time.Millisecond), "before_engine_returned", early)
}
