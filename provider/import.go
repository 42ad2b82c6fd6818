package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/faas-criu/faas-criu/api"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/openfaas/faas-provider/types"

	ckpt "github.com/faas-criu/faas-criu/checkpoint"
	"github.com/faas-criu/faas-criu/checkpoint/archive"
)

// importDir is where received archives and images are unpacked and checked
// before anything reaches the engine.
func (p *Provider) importDir() string { return filepath.Join(p.cfg.StateDir, "import") }

// cleanImports removes what an import cut short left behind.
func (p *Provider) cleanImports() {
	_ = os.RemoveAll(p.importDir())
	_ = os.RemoveAll(p.offsiteDir()) // snapshots whose offsite copy a stop cut short
}

// ImportImage receives a compressed docker save stream. It is written to the
// import area and vetted (paths, links, size) before the engine loads it.
func (p *Provider) ImportImage(ctx context.Context, r io.Reader) error {
	if err := os.MkdirAll(p.importDir(), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(p.importDir(), "image-*.tar")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	zr, err := archive.Decompress(r)
	if err != nil {
		return errorf(api.ErrInvalid, "image stream: not zstd: %v", err)
	}
	defer zr.Close()
	n, err := io.Copy(f, io.LimitReader(zr, p.cfg.ImportMaxBytes+1))
	if err != nil {
		return errorf(api.ErrInvalid, "image stream broken after %d bytes: %v", n, err)
	}
	if n > p.cfg.ImportMaxBytes {
		return errorf(api.ErrTooLarge, "image is larger than the import limit of %d bytes (--import-max-bytes)", p.cfg.ImportMaxBytes)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := archive.CheckTar(f, p.cfg.ImportMaxBytes); err != nil {
		return importErr(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := p.engine.LoadImage(ctx, f); err != nil {
		return fmt.Errorf("load image: %w", err)
	}
	return nil
}

func importErr(err error) error {
	switch {
	case errors.Is(err, archive.ErrArchiveTooLarge):
		return errorf(api.ErrTooLarge, "import refused: %v (--import-max-bytes)", err)
	case errors.Is(err, archive.ErrArchive):
		return errorf(api.ErrInvalid, "import refused: %v", err)
	}
	return err
}

// Import receives a migrated function: a compressed archive with its
// definition and checkpoints. The archive is unpacked in the import area and
// checked; only then are the containers created, the checkpoints put in
// place and the function restored. An existing function of the same name is
// replaced only when asked. On any failure nothing is left behind.
func (p *Provider) Import(ctx context.Context, r io.Reader, replace bool) (types.FunctionStatus, error) {
	if err := os.MkdirAll(p.importDir(), 0o700); err != nil {
		return types.FunctionStatus{}, err
	}
	tmp, err := os.MkdirTemp(p.importDir(), "fn-")
	if err != nil {
		return types.FunctionStatus{}, err
	}
	defer os.RemoveAll(tmp)
	m, dep, err := p.readImport(ctx, r, tmp, replace)
	if err != nil {
		return types.FunctionStatus{}, err
	}
	return p.importUnpacked(ctx, m, dep, tmp, replace, "migration")
}

// ImportDir restores a function from a checkpoint unpacked in dir (as
// fleet.Objects.Fetch leaves one: manifest.json and checkpoints/REPLICA/),
// as Import does from a stream: vetted first, nothing left behind on
// failure. why is the sleep reason its status shows until it wakes. dir is
// left as it was.
func (p *Provider) ImportDir(ctx context.Context, dir string, replace bool, why string) (types.FunctionStatus, error) {
	m, err := archive.LoadManifest(dir)
	if err != nil {
		return types.FunctionStatus{}, importErr(err)
	}
	var dep types.FunctionDeployment
	if err := p.vetManifest(ctx, m, &dep, replace); err != nil {
		return types.FunctionStatus{}, importErr(err)
	}
	return p.importUnpacked(ctx, m, dep, dir, replace, why)
}

// importUnpacked restores the function whose archive is unpacked in tmp.
func (p *Provider) importUnpacked(ctx context.Context, m *archive.Manifest, dep types.FunctionDeployment, tmp string, replace bool, why string) (types.FunctionStatus, error) {
	key, imageID, err := p.checkDeployment(ctx, &dep)
	if err != nil {
		return types.FunctionStatus{}, err
	}
	if m.ImageID != "" && imageID != m.ImageID {
		return types.FunctionStatus{}, errorf(api.ErrInvalid, "image %s here is %s, but the checkpoint was taken from %s: send the image too", dep.Image, imageID, m.ImageID)
	}
	if err := p.replaceForImport(ctx, key, replace); err != nil {
		return types.FunctionStatus{}, err
	}

	rec := &record{
		Deployment: dep, ImageID: imageID, CreatedAt: m.CreatedAt, Invocations: m.Invocations,
		State: api.StateHibernated, SleptReplicas: len(m.Replicas), SleepReason: why,
		Checkpoints: map[int]CheckpointInfo{}, Importing: true,
	}
	now := time.Now().UTC()
	rec.SleptAt = &now
	fn, err := p.claim(key, rec)
	if err != nil {
		return types.FunctionStatus{}, err
	}
	defer fn.opMu.Unlock()
	if err := p.restoreImport(ctx, fn, rec, m, tmp); err != nil {
		if derr := p.deleteInOp(context.WithoutCancel(ctx), fn); derr != nil {
			slog.Error("roll back a failed import", "function", key.String(), "err", derr)
		}
		p.metrics.migrations.WithLabelValues("in", "failed").Inc()
		return types.FunctionStatus{}, err
	}
	p.metrics.migrations.WithLabelValues("in", "done").Inc()
	slog.Info("function imported", "function", key.String(), "replicas", len(m.Replicas), "source", m.Source)
	return p.status(fn), nil
}

// readImport unpacks the archive into tmp. The manifest comes first: what
// would be refused anyway is refused before the checkpoints are unpacked.
func (p *Provider) readImport(ctx context.Context, r io.Reader, tmp string, replace bool) (*archive.Manifest, types.FunctionDeployment, error) {
	var dep types.FunctionDeployment
	m, err := archive.ReadArchive(r, tmp, p.cfg.ImportMaxBytes, func(m *archive.Manifest) error {
		return p.vetManifest(ctx, m, &dep, replace)
	})
	if err != nil {
		return nil, dep, importErr(err)
	}
	return m, dep, nil
}

// vetManifest refuses what an import would refuse anyway, from the
// manifest alone, and reads the definition into dep.
func (p *Provider) vetManifest(ctx context.Context, m *archive.Manifest, dep *types.FunctionDeployment, replace bool) error {
	if err := json.Unmarshal(m.Function, dep); err != nil {
		return errorf(api.ErrInvalid, "import refused: function definition: %v", err)
	}
	if len(m.Replicas) == 0 {
		return errorf(api.ErrInvalid, "import refused: no replica checkpoints")
	}
	key, err := p.checkDefinition(ctx, dep)
	if err != nil {
		return err
	}
	if _, err := p.lookup(key.Namespace, key.Name); err == nil && !replace {
		return errExists(key)
	}
	return nil
}

func errExists(key api.Key) error {
	return errorf(api.ErrExists, "function %q already exists in namespace %q: migrate with --replace to overwrite it", key.Name, key.Namespace)
}

// replaceForImport deletes the function an import replaces (when asked to).
func (p *Provider) replaceForImport(ctx context.Context, key api.Key, replace bool) error {
	old, err := p.lookup(key.Namespace, key.Name)
	if err != nil {
		return nil
	}
	if !replace {
		return errExists(key)
	}
	old.opMu.Lock()
	err = p.deleteInOp(ctx, old)
	old.opMu.Unlock()
	if err != nil {
		return fmt.Errorf("replace %s: %w", key, err)
	}
	return nil
}

// claim enters the record under key, its operation lock held, unless a
// function was deployed there meanwhile.
func (p *Provider) claim(key api.Key, rec *record) (*function, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fns[key] != nil {
		return nil, errorf(api.ErrExists, "function %q was deployed meanwhile", key.Name)
	}
	fn := newFunction(key, rec)
	fn.opMu.Lock()
	p.fns[key] = fn
	return fn, nil
}

// restoreImport creates the replicas' containers, puts each checkpoint in
// place and restores them; only then is the record no longer importing.
func (p *Provider) restoreImport(ctx context.Context, fn *function, rec *record, m *archive.Manifest, tmp string) error {
	key := fn.key
	if err := p.store.saveRecord(key.Namespace, key.Name, rec); err != nil {
		return err
	}
	for _, rep := range m.Replicas {
		r, err := p.createContainer(ctx, key, rec, rep.Index, nil)
		if err != nil {
			return err
		}
		p.setReplica(fn, rep.Index, r)
		dst := p.checkpointDir(r.id, rep.Checkpoint.Name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err := ckpt.CopyDir(filepath.Join(tmp, "checkpoints", strconv.Itoa(rep.Index)), dst); err != nil {
			return fmt.Errorf("place checkpoint of replica %d: %w", rep.Index, err)
		}
		if err := p.placeCheckpoint(r.id, rep.Checkpoint); err != nil {
			return fmt.Errorf("place checkpoint of replica %d: %w", rep.Index, err)
		}
		rec.Checkpoints[rep.Index] = rep.Checkpoint
	}
	if err := p.commit(fn, rec); err != nil {
		return err
	}
	if err := p.scaleUpInOp(ctx, fn, len(m.Replicas)); err != nil {
		return errorf(api.ErrUnavailable, "restore of %s failed here: %v", key, err)
	}
	done, _ := fn.snapshot()
	done.Importing = false
	if err := p.commit(fn, &done); err != nil {
		return err
	}
	return p.waitAvailable(ctx, fn, len(m.Replicas))
}
