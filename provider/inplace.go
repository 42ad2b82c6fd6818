package provider

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
	ckpt "github.com/faas-criu/faas-criu/checkpoint"
	"github.com/faas-criu/faas-criu/internal/config"
)

// In-place hibernation (api.LabelInPlace, bench/tried.md and
// /work/team/inplace.md): the function's container runs under
// faas-criu-init, and its hibernation dumps only the function's processes
// (Engine.DumpInPlace) while the container stays up; its wake restores them
// into it (Engine.RestoreInPlace). Docker's start from a checkpoint costs
// about 108 ms around CRIU, which this skips.
//
// The record holds each replica's dump (record.InPlace): written as an
// intent (Done false) before the dump, so that a provider killed during it
// finds out what the dump left (settleInPlace), and marked Done once the
// dump finished. A Done entry is the replica's state: the replica is
// hibernated in place, whatever its container's status (up with only its
// init, or stopped by the deep tier or an engine restart).

// wakeFromInPlace is how the wake record (WakeInfo.From, the last-wake
// annotation) names a wake from a dump in place; one from the deep tier
// says "deep" whichever way it hibernated.
const wakeFromInPlace = "in-place"

// InPlaceDump is one replica's dump in place.
type InPlaceDump struct {
	CheckpointInfo
	// Dir is the dump's directory, under the provider's state directory.
	Dir string `json:"dir"`
	// Done says the dump finished (else it is an intent: see settleInPlace).
	Done bool `json:"done,omitempty"`
}

// inPlaceOf says whether a deployment asks for in-place hibernation (a value
// other than true or false was refused at deploy).
func inPlaceOf(dep types.FunctionDeployment) bool {
	if dep.Labels == nil {
		return false
	}
	on, _ := api.InPlace(*dep.Labels)
	return on
}

// checkInPlace refuses the in-place label when its value is not understood,
// or when the engine cannot create containers under faas-criu-init: a
// function deployed with it would otherwise hibernate another way than asked.
func (p *Provider) checkInPlace(dep types.FunctionDeployment) error {
	if dep.Labels == nil {
		return nil
	}
	on, err := api.InPlace(*dep.Labels)
	if err != nil {
		return err
	}
	if freeze, _ := config.ParseBool((*dep.Labels)[api.LabelHibernateInflight]); on && freeze {
		return errorf(api.ErrInvalid, "labels %s=true and %s=true: a dump in place cannot keep requests in flight (it does not lock the network, so their connections would be reset); choose one", api.LabelInPlace, api.LabelHibernateInflight)
	}
	if on && !p.engineInfo.InPlace {
		return errorf(api.ErrInvalid, "label %s=true: this engine cannot hibernate functions in place (faas-criu-init is not installed: run scripts/setup.sh, or set FAAS_CRIU_INIT to its path); deploy without the label", api.LabelInPlace)
	}
	return nil
}

// inPlaceRoot is where the dumps in place of a container are kept.
func (p *Provider) inPlaceRoot(containerID string) string {
	return filepath.Join(p.cfg.StateDir, "in-place", containerID)
}

// inPlaceDumped says whether replica idx of rec is hibernated in place.
func (rec *record) inPlaceDumped(idx int) (InPlaceDump, bool) {
	d, ok := rec.InPlace[idx]
	return d, ok && d.Done
}

// functionRuns says whether replica r holds its function's processes (and
// memory): its container is running or paused, and not hibernated in place,
// where the container runs its init only.
func (rec *record) functionRuns(r replica) bool {
	if _, asleep := rec.inPlaceDumped(r.index); asleep {
		return false
	}
	return r.status == "running" || r.status == "paused"
}

// setInPlace sets (or with nil, removes) replica idx's entry in rec, on a
// copy of the map: records already committed share theirs.
func (rec *record) setInPlace(idx int, d *InPlaceDump) {
	m := maps.Clone(rec.InPlace)
	if m == nil {
		m = map[int]InPlaceDump{}
	}
	if d == nil {
		delete(m, idx)
	} else {
		m[idx] = *d
	}
	if len(m) == 0 {
		m = nil
	}
	rec.InPlace = m
}

// hibernateAllInPlace dumps every running or paused replica of an in-place
// function in place. On failure the replicas already dumped are restored,
// so the function stays as it was, and the error says why. On success the
// caller saves rec (it holds the dumps, Done) with the sleep.
func (p *Provider) hibernateAllInPlace(ctx context.Context, fn *function, reps []*replica, rec *record) error {
	var done []*replica
	for _, r := range reps {
		if r.status != "running" && r.status != "paused" {
			continue
		}
		if err := p.dumpInPlace(ctx, fn, r, rec); err != nil {
			p.metrics.hibernateFailures.Inc()
			bg := context.WithoutCancel(ctx)
			for _, q := range done {
				d, _ := rec.inPlaceDumped(q.index)
				if rerr := p.engine.RestoreInPlace(bg, q.id, d.Dir); rerr != nil {
					slog.Error("roll back replica after failed hibernation in place", "function", fn.key.String(), "replica", q.index, "err", rerr)
					continue
				}
				rec.setInPlace(q.index, nil)
				_ = os.RemoveAll(d.Dir)
			}
			_ = p.commit(fn, rec)
			return fmt.Errorf("hibernate %s: %w", fn.key, err)
		}
		done = append(done, r)
	}
	return nil
}

// dumpInPlace dumps one replica in place: the intent is recorded first, the
// dump taken, and the entry marked Done in rec. A failed dump leaves the
// replica running (paused again if it was: the record still says paused),
// its entry and its directory removed.
func (p *Provider) dumpInPlace(ctx context.Context, fn *function, r *replica, rec *record) error {
	start := time.Now()
	name := ckpt.NewName(ckpt.HibernationPrefix, start)
	d := InPlaceDump{CheckpointInfo: CheckpointInfo{Name: name, TakenAt: start.UTC()}, Dir: filepath.Join(p.inPlaceRoot(r.id), name)}
	rec.setInPlace(r.index, &d)
	if err := p.commit(fn, rec); err != nil {
		rec.setInPlace(r.index, nil)
		return err
	}
	err := p.dumpInPlaceUnpaused(ctx, fn, r, d.Dir)
	if err != nil {
		_ = os.RemoveAll(d.Dir)
		rec.setInPlace(r.index, nil)
		if cerr := p.commit(fn, rec); cerr != nil {
			slog.Error("record the failed dump in place", "function", fn.key.String(), "err", cerr)
		}
		return fmt.Errorf("dump replica %d (%s) in place: %w", r.index, r.name, err)
	}
	// Out of service whatever a health check that raced the dump said
	// (its container runs on: nothing else takes it out).
	fn.mu.Lock()
	r.ready = false
	fn.refreshEndpointsLocked(p.cfg.FunctionPort)
	fn.mu.Unlock()
	d.Done, d.Duration = true, time.Since(start)
	d.Bytes, _ = ckpt.DirSize(d.Dir)
	// Marks the dump complete for a provider that restarts before the
	// record says Done (see dumpComplete).
	if err := ckpt.WriteMeta(d.Dir, d.CheckpointInfo); err != nil {
		slog.Warn("describe the dump in place", "function", fn.key.String(), "replica", r.index, "err", err)
	}
	rec.setInPlace(r.index, &d)
	p.metrics.checkpointBytes.Observe(float64(d.Bytes))
	return nil
}

// dumpInPlaceUnpaused dumps a replica's processes into dir; a paused one
// (pause-then-checkpoint's second step) is unpaused for the dump, whose
// freezing is CRIU's, and paused again when the dump fails.
func (p *Provider) dumpInPlaceUnpaused(ctx context.Context, fn *function, r *replica, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	paused := r.status == "paused"
	if paused {
		if err := p.engine.UnpauseContainer(ctx, r.id); err != nil {
			return fmt.Errorf("unpause for the dump: %w", err)
		}
		p.setStatus(fn, r, "running")
	}
	if p.beforeCheckpoint != nil {
		p.beforeCheckpoint(r.addr(p.cfg.FunctionPort))
	}
	err := p.engine.DumpInPlace(ctx, r.id, dir)
	if err != nil && paused {
		if perr := p.engine.PauseContainer(context.WithoutCancel(ctx), r.id); perr != nil {
			// Running, though the record says paused: the next wake finds
			// it running and it serves.
			slog.Error("pause again after a failed dump in place", "function", fn.key.String(), "replica", r.index, "err", perr)
		} else {
			p.setStatus(fn, r, "paused")
		}
	}
	return err
}

// restoreInPlace wakes a replica hibernated in place: RestoreInPlace (which
// starts its container when stopped), then the entry and the dump go. Its
// sandbox must run (bringUpReplica saw to it). A failed restore keeps the
// dump on disk and in the record: the replica stays hibernated and the next
// request or scale-up retries.
func (p *Provider) restoreInPlace(ctx context.Context, fn *function, r *replica, d InPlaceDump) error {
	start := time.Now()
	if err := p.engine.RestoreInPlace(ctx, r.id, d.Dir); err != nil {
		if on, ierr := p.engine.InPlaceRunning(ctx, r.id); ierr == nil && on {
			// Restored before, but that was not recorded (the record's
			// write failed): the function runs. Asked only now, off the
			// wake's path.
			p.setStatus(fn, r, "running")
			p.forgetInPlace(fn, r.index)
			return nil
		}
		p.metrics.restoreFailures.Inc()
		slog.Error("restore in place failed", "function", fn.key.String(), "replica", r.index, "err", err)
		return fmt.Errorf("restore replica %d (%s) in place from %s: %w; the dump is kept and the next request or scale-up retries", r.index, r.name, d.Name, err)
	}
	p.metrics.restoreSeconds.Observe(time.Since(start).Seconds())
	p.setStatus(fn, r, "running")
	p.forgetInPlace(fn, r.index)
	return nil
}

// forgetInPlace drops replica idx's dump in place from the record and the
// disk: it has served, or its replica is gone.
func (p *Provider) forgetInPlace(fn *function, idx int) {
	fn.mu.Lock()
	rec := *fn.rec
	fn.mu.Unlock()
	d, ok := rec.InPlace[idx]
	if !ok {
		return
	}
	rec.setInPlace(idx, nil)
	if err := p.commit(fn, &rec); err != nil {
		slog.Error("record the forgotten dump in place", "function", fn.key.String(), "err", err)
		return
	}
	_ = os.RemoveAll(d.Dir)
}

// inPlaceIntent says whether the record holds a dump in place that did
// not finish. Outside an operation (which holds opMu while it dumps) that
// is one a stopped provider left and settleInPlace could not settle yet.
func (fn *function) inPlaceIntent() bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	for _, d := range fn.rec.InPlace {
		if !d.Done {
			return true
		}
	}
	return false
}

// dumpComplete says whether dir holds a finished dump: the description the
// provider writes after it, or CRIU's inventory, which it writes last.
func dumpComplete(dir string) bool {
	for _, f := range []string{ckpt.MetaFile, "inventory.img"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// settleInPlace, at the provider's start, settles what the record says of
// the replicas' dumps in place against what their containers' inits say.
// A dump recorded Done whose function runs was restored (the provider
// stopped before it noted that): it goes. An intent (the provider stopped
// during the dump) whose function runs is a dump that failed or never
// began: its partial directory goes; one whose function does not run has
// the state in its dump if the dump finished, else the state is lost: the
// replica starts afresh. Done dumps of stopped containers (an engine
// restart) stay: the function stays hibernated.
func (p *Provider) settleInPlace(ctx context.Context, fn *function) {
	rec, reps := fn.snapshot()
	if len(rec.InPlace) == 0 {
		return
	}
	byIdx := map[int]replica{}
	for _, r := range reps {
		byIdx[r.index] = r
	}
	for idx, d := range rec.InPlace {
		r, ok := byIdx[idx]
		if !ok || r.id == "" {
			continue // its container is gone: reconcileFrom forgets the dump
		}
		on, err := p.engine.InPlaceRunning(ctx, r.id)
		if err != nil {
			slog.Error("ask the engine whether a replica hibernated in place runs", "function", fn.key.String(), "replica", idx, "err", err)
			continue
		}
		switch {
		case on:
			slog.Info("replica recorded hibernated in place runs: the restore had finished", "function", fn.key.String(), "replica", idx, "done", d.Done)
			p.forgetInPlace(fn, idx)
			p.awakeAfterRestore(fn)
		case d.Done:
		case dumpComplete(d.Dir):
			slog.Warn("dump in place finished before the provider stopped: the replica is hibernated in place", "function", fn.key.String(), "replica", idx)
			p.markInPlaceDone(fn, idx, d)
		default:
			p.inPlaceLost(ctx, fn, fn.replicaAt(idx), d)
		}
	}
}

// awakeAfterRestore records awake a function recorded hibernated whose
// every dump in place was found restored: it runs with its state (a wake
// records it awake before it restores, so this is for a record written
// otherwise, such as by hand or by an older provider).
func (p *Provider) awakeAfterRestore(fn *function) {
	fn.mu.Lock()
	rec := *fn.rec
	fn.mu.Unlock()
	if rec.State != api.StateHibernated || len(rec.InPlace) > 0 || len(rec.Checkpoints) > 0 {
		return
	}
	rec.Replicas = max(rec.SleptReplicas, 1)
	rec.State, rec.SleptReplicas, rec.SleptAt, rec.SleepReason = api.StateAwake, 0, nil, ""
	if err := p.commit(fn, &rec); err != nil {
		slog.Error("record awake the function found restored", "function", fn.key.String(), "err", err)
	}
}

// markInPlaceDone records a dump in place found complete.
func (p *Provider) markInPlaceDone(fn *function, idx int, d InPlaceDump) {
	fn.mu.Lock()
	rec := *fn.rec
	fn.mu.Unlock()
	d.Done = true
	d.Bytes, _ = ckpt.DirSize(d.Dir)
	rec.setInPlace(idx, &d)
	if err := p.commit(fn, &rec); err != nil {
		slog.Error("record the dump in place", "function", fn.key.String(), "err", err)
	}
}

// inPlaceLost starts afresh a replica whose dump in place was cut short
// with its function's processes gone: its init is told to forget the
// hibernation, its container restarted, and the status says the state was
// lost.
func (p *Provider) inPlaceLost(ctx context.Context, fn *function, r *replica, d InPlaceDump) {
	if r == nil {
		return
	}
	slog.Error("replica's dump in place did not finish and its function does not run: its state is lost", "function", fn.key.String(), "replica", r.index, "dir", d.Dir)
	err := p.engine.DropInPlace(ctx, r.id)
	if err == nil {
		err = p.engine.StopContainer(ctx, r.id, 0)
	}
	if err == nil {
		p.setStatus(fn, r, "exited")
		err = p.startReplica(ctx, fn, r)
	}
	p.forgetInPlace(fn, r.index)
	if err != nil {
		slog.Error("restart a replica whose dump in place was cut short", "function", fn.key.String(), "replica", r.index, "err", err)
		return
	}
	go p.markReady(context.WithoutCancel(ctx), fn, r)
	p.noteStateLost(fn, r.index, "a dump in place did not finish (the provider stopped during it) and the function's processes had ended; it started afresh")
}

// replicaAt returns replica idx (nil: none).
func (fn *function) replicaAt(idx int) *replica {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.replicas[idx]
}

// wakeInPlaceFirst wakes a function hibernated in place before an operation
// that needs an engine checkpoint of its whole containers (init and
// function), such as a migration: a dump in place can only be restored into
// the container it was taken from. Other functions are left as they are.
func (p *Provider) wakeInPlaceFirst(ctx context.Context, fn *function) error {
	rec, _ := fn.snapshot()
	if rec.State != api.StateHibernated || len(rec.InPlace) == 0 {
		return nil
	}
	if err := p.scaleUpInOp(ctx, fn, max(1, rec.SleptReplicas)); err != nil {
		return fmt.Errorf("wake %s (hibernated in place) first: %w", fn.key, err)
	}
	return nil
}
