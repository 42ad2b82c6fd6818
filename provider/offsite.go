package provider

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"

	"github.com/faas-criu/faas-criu/api"
	ckpt "github.com/faas-criu/faas-criu/checkpoint"
	"github.com/faas-criu/faas-criu/checkpoint/archive"
)

// Offsite keeps a copy of each function's newest checkpoint off this box
// (in a fleet, its object store). Offer hands it a snapshot of a
// checkpoint, a directory laid out as an unpacked migration archive, which
// it owns from then on: it stores it when it can, after the operation that
// took it (never on a wake's path), and removes it. It must not block.
type Offsite interface {
	Offer(key api.Key, kind, dir string)
}

// Kinds of checkpoints offered.
const (
	OffsiteCheckpoint = "checkpoint"
	OffsiteBackup     = "backup"
)

// SetOffsite starts offering every hibernation checkpoint and backup taken
// here to o. Without one (a box alone) nothing is copied.
func (p *Provider) SetOffsite(o Offsite) { p.offsite.Store(&o) }

// offsiteDir is where snapshots wait for the offsite copy.
func (p *Provider) offsiteDir() string { return filepath.Join(p.cfg.StateDir, "offsite") }

// manifestOf describes rec as a migration archive does.
func (p *Provider) manifestOf(rec record) (archive.Manifest, error) {
	dep, err := json.Marshal(rec.Deployment)
	if err != nil {
		return archive.Manifest{}, err
	}
	return archive.Manifest{
		Function: dep, ImageRef: rec.Deployment.Image, ImageID: rec.ImageID,
		CreatedAt: rec.CreatedAt, Invocations: rec.Invocations, Source: p.instance,
	}, nil
}

// offer snapshots the checkpoints cps (by replica; dirs: where each is) of
// fn and hands the snapshot to the offsite copy, if any. The snapshot is
// made of hard links where it can, so it costs little and the checkpoints
// may go meanwhile (a wake removes them).
func (p *Provider) offer(key api.Key, rec record, kind string, cps map[int]CheckpointInfo, dirs map[int]string) {
	o := p.offsite.Load()
	if o == nil || len(cps) == 0 {
		return
	}
	dir, err := p.stage(key, rec, cps, dirs)
	if err != nil {
		_ = os.RemoveAll(dir)
		slog.Warn("offsite: checkpoint not offered", "function", key.String(), "kind", kind, "err", err)
		return
	}
	(*o).Offer(key, kind, dir)
}

func (p *Provider) stage(key api.Key, rec record, cps map[int]CheckpointInfo, dirs map[int]string) (string, error) {
	if err := os.MkdirAll(p.offsiteDir(), 0o700); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(p.offsiteDir(), key.String()+"-")
	if err != nil {
		return "", err
	}
	m, err := p.manifestOf(rec)
	if err != nil {
		return dir, err
	}
	idx := make([]int, 0, len(cps))
	for i := range cps {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		if err := os.MkdirAll(filepath.Dir(archive.ReplicaDir(dir, i)), 0o700); err != nil {
			return dir, err
		}
		if err := ckpt.LinkDir(dirs[i], archive.ReplicaDir(dir, i)); err != nil {
			return dir, fmt.Errorf("snapshot replica %d: %w", i, err)
		}
		m.Replicas = append(m.Replicas, archive.ReplicaImage{Index: i, Checkpoint: cps[i]})
	}
	return dir, archive.SaveManifest(dir, &m)
}

// offerHibernation offers the checkpoints fn just hibernated with. Dumps
// in place are not offered: they restore only into the container they were
// taken from, never on another box; such a function's offsite copies are
// its backups (engine checkpoints of the whole container, taken awake).
func (p *Provider) offerHibernation(fn *function) {
	if p.offsite.Load() == nil {
		return
	}
	rec, reps := fn.snapshot()
	dirs := map[int]string{}
	cps := map[int]CheckpointInfo{}
	for _, r := range reps {
		if info, ok := rec.Checkpoints[r.index]; ok {
			cps[r.index], dirs[r.index] = info, p.checkpointDir(r.id, info.Name)
		}
	}
	p.offer(fn.key, rec, OffsiteCheckpoint, cps, dirs)
}
