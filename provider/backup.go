package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/faas-criu/faas-criu/api"
	ckpt "github.com/faas-criu/faas-criu/checkpoint"
)

// BackupInfo says a replica was brought back from a backup.
type BackupInfo struct {
	Backup     string    `json:"backup"`
	TakenAt    time.Time `json:"takenAt"`
	RestoredAt time.Time `json:"restoredAt"`
}

// backupRoot is where a function's backups live: in the provider's state
// directory, so that they outlive the containers.
func (p *Provider) backupRoot(key api.Key) string {
	return ckpt.BackupsRoot(p.cfg.StateDir, key.Namespace, key.Name)
}

// backupInOp checkpoints every running replica of fn while it keeps
// running, and keeps the newest keep backups of each.
func (p *Provider) backupInOp(ctx context.Context, fn *function, keep int) error {
	fn.mu.Lock()
	var reps []*replica
	for _, i := range sortedIndexes(fn.replicas) {
		if r := fn.replicas[i]; r.status == "running" && r.ready {
			reps = append(reps, r)
		}
	}
	state := fn.rec.State
	fn.mu.Unlock()
	if state != api.StateAwake || len(reps) == 0 {
		return nil
	}
	start := time.Now()
	name := ckpt.NewBackupName(start)
	root := p.backupRoot(fn.key)
	var errs []error
	taken, dirs := map[int]CheckpointInfo{}, map[int]string{}
	for _, r := range reps {
		parent := ckpt.ReplicaBackups(root, r.index)
		if err := os.MkdirAll(parent, 0o700); err != nil {
			return fmt.Errorf("backup %s: %w", fn.key, err)
		}
		if p.beforeCheckpoint != nil {
			p.beforeCheckpoint(r.addr(p.cfg.FunctionPort))
		}
		stats, err := p.recorder.Dump(func() error {
			return p.engine.CreateCheckpoint(ctx, r.id, CheckpointOptions{Name: name, Dir: parent})
		})
		dir := filepath.Join(parent, name)
		if err != nil {
			_ = os.RemoveAll(dir)
			p.metrics.backupFailures.Inc()
			if errors.Is(err, ErrEngineUnreachable) {
				// The engine crashed mid-dump: it may have left the
				// replica frozen (see settleDump).
				_ = p.settleDump(context.WithoutCancel(ctx), fn, r, true)
			}
			errs = append(errs, fmt.Errorf("replica %d: %w", r.index, err))
			continue
		}
		size, _ := ckpt.DirSize(dir)
		info := CheckpointInfo{Name: name, TakenAt: start.UTC(), Bytes: size, Duration: time.Since(start), Stats: stats}
		if err := ckpt.WriteMeta(dir, info); err != nil {
			errs = append(errs, err)
			continue
		}
		taken[r.index], dirs[r.index] = info, dir
	}
	if len(errs) == 0 {
		rec, _ := fn.snapshot()
		p.offer(fn.key, rec, OffsiteBackup, taken, dirs)
	}
	if err := ckpt.PruneBackups(root, keep); err != nil {
		errs = append(errs, err)
	}
	fn.lastBackup.Store(start.UnixNano())
	p.metrics.backupSeconds.Observe(time.Since(start).Seconds())
	if len(errs) > 0 {
		return fmt.Errorf("backup %s: %w", fn.key, errors.Join(errs...))
	}
	return nil
}

// startReplicaFromBackup starts a replica that died (or whose container was
// lost) from its newest backup, with the state of that moment. It reports
// false when the replica has no backup; when the restore fails the replica
// is started fresh and the loss is logged.
func (p *Provider) startReplicaFromBackup(ctx context.Context, fn *function, r *replica) (bool, error) {
	b, ok := ckpt.NewestBackup(p.backupRoot(fn.key), r.index)
	if !ok {
		return false, nil
	}
	if err := p.restoreBackupInto(ctx, fn, r, b); err != nil {
		slog.Warn("restore from backup failed: starting the replica fresh; its state since its start is lost", "function", fn.key.String(), "replica", r.index, "backup", b.Name, "err", err)
		if err := p.renewReplica(ctx, fn, r); err != nil {
			return true, err
		}
		if err := p.startReplica(ctx, fn, r); err != nil {
			return true, err
		}
		p.noteStateLost(fn, r.index, fmt.Sprintf("it had stopped and its backup %s could not be restored: %v", b.Name, err))
		return true, nil
	}
	slog.Info("replica restored from backup", "function", fn.key.String(), "replica", r.index, "backup", b.Name, "taken", b.TakenAt.Format(time.RFC3339Nano))
	return true, nil
}

// restoreBackupInto puts a copy of backup b where the engine restores from
// and starts the (stopped) replica from it.
func (p *Provider) restoreBackupInto(ctx context.Context, fn *function, r *replica, b ckpt.Backup) error {
	dst := p.checkpointDir(r.id, b.Name)
	_ = os.RemoveAll(dst)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	if err := ckpt.CopyDir(b.Dir, dst); err != nil {
		return fmt.Errorf("copy backup %s: %w", b.Name, err)
	}
	if err := ckpt.ExternalizePages(dst, p.pagesDir(r.id, b.Name)); err != nil {
		slog.Info("backup: page images stay in place", "backup", b.Name, "err", err)
	}
	defer func() {
		p.discardCheckpoint(r.id, b.Name)
		_ = os.RemoveAll(dst)
	}()
	if _, err := p.recorder.Restore(func() error {
		return p.engine.RestoreContainer(ctx, r.id, b.Name)
	}); err != nil {
		return err
	}
	p.setStatus(fn, r, "running")
	p.metrics.backupRestores.Inc()
	fn.mu.Lock()
	rec := *fn.rec
	fn.mu.Unlock()
	rec.FromBackup = &BackupInfo{Backup: b.Name, TakenAt: b.TakenAt, RestoredAt: time.Now().UTC()}
	return p.commit(fn, &rec)
}

// Backups lists a function's backups, newest first.
func (p *Provider) Backups(ctx context.Context, ns, name string) ([]api.Backup, error) {
	fn, err := p.lookup(ns, name)
	if err != nil {
		return nil, err
	}
	list, err := ckpt.ListBackups(p.backupRoot(fn.key))
	if err != nil {
		return nil, fmt.Errorf("backups of %s: %w", fn.key, err)
	}
	out := make([]api.Backup, 0, len(list))
	for _, b := range list {
		out = append(out, b.Backup)
	}
	return out, nil
}

// RestoreBackup brings every replica that has the named backup back to the
// state of that backup, on request. The function must be awake.
func (p *Provider) RestoreBackup(ctx context.Context, ns, name, backup string) error {
	if !ckpt.ValidName(backup) {
		return errorf(api.ErrInvalid, "invalid backup name %q", backup)
	}
	fn, err := p.lookup(ns, name)
	if err != nil {
		return err
	}
	fn.opMu.Lock()
	defer fn.opMu.Unlock()
	list, err := ckpt.ListBackups(p.backupRoot(fn.key))
	if err != nil {
		return err
	}
	fn.mu.Lock()
	state := fn.rec.State
	fn.mu.Unlock()
	if state != api.StateAwake {
		return errorf(api.ErrInvalid, "function %q is %s: wake it (scale it up) before restoring a backup", name, state)
	}
	found := false
	for _, b := range list {
		if b.Name != backup {
			continue
		}
		fn.mu.Lock()
		r := fn.replicas[b.Replica]
		fn.mu.Unlock()
		if r == nil {
			continue
		}
		found = true
		p.setStatus(fn, r, "exited")
		if err := p.engine.KillContainer(ctx, r.id); err != nil && r.status == "running" {
			slog.Error("kill replica before restoring a backup", "function", fn.key.String(), "replica", r.index, "backup", backup, "err", err)
		}
		if err := p.waitStopped(ctx, r.id, 10*time.Second); err != nil {
			return fmt.Errorf("restore backup %s: replica %d did not stop: %w", backup, r.index, err)
		}
		if err := p.restoreBackupInto(ctx, fn, r, b); err != nil {
			if p.renewReplica(context.WithoutCancel(ctx), fn, r) == nil {
				_ = p.startReplica(context.WithoutCancel(ctx), fn, r)
			}
			return fmt.Errorf("restore backup %s of replica %d: %w; the replica was started fresh", backup, r.index, err)
		}
		go p.markReady(context.WithoutCancel(ctx), fn, r)
	}
	if !found {
		return errorf(api.ErrNotFound, "function %q has no backup %q of a current replica", name, backup)
	}
	return nil
}
