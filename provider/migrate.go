package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/checkpoint/archive"
)

// Migrate moves a function to the target: it is hibernated here, its image
// (when the target lacks it), definition and checkpoints are streamed, and
// the target restores it. Then the copy here is deleted, or with Keep left
// hibernated. On failure at any step the function ends up as it was here,
// running with its state.
func (p *Provider) Migrate(ctx context.Context, ns, name string, t api.MigrationTarget, opts api.MigrateOptions, report func(api.Progress)) (err error) {
	fn, err := p.lookup(ns, name)
	if err != nil {
		return err
	}
	report = serialReports(report)
	step := api.StepConnect
	report(api.Progress{Step: step})
	if err := t.Check(ctx); err != nil {
		p.metrics.migrations.WithLabelValues("out", "failed").Inc()
		return &api.MigrationError{Step: step, Err: err}
	}
	report(api.Progress{Step: step, Done: true})

	fn.opMu.Lock()
	defer fn.opMu.Unlock()
	rec, _ := fn.snapshot()
	wasAwake := rec.State != api.StateHibernated
	defer func() {
		if err == nil {
			p.metrics.migrations.WithLabelValues("out", "done").Inc()
			return
		}
		p.metrics.migrations.WithLabelValues("out", "failed").Inc()
		var me *api.MigrationError
		if errors.As(err, &me) && wasAwake && me.Step != api.StepConnect {
			me.Restored = p.rollbackMigration(fn)
		}
	}()

	rec, reps, err := p.checkpointForMigration(ctx, fn, report)
	if err != nil {
		return err
	}

	step = api.StepImage
	report(api.Progress{Step: step})
	has, err := t.HasImage(ctx, rec.ImageID)
	if err != nil {
		return &api.MigrationError{Step: step, Err: err}
	}
	if has {
		report(api.Progress{Step: step, Done: true, Note: "the target has it"})
	} else if err := p.streamImage(ctx, rec, t, report); err != nil {
		return &api.MigrationError{Step: step, Err: err}
	}

	step = api.StepTransfer
	report(api.Progress{Step: step})
	if err := p.streamArchive(ctx, fn.key, rec, reps, t, opts.Replace, report); err != nil {
		return &api.MigrationError{Step: step, Err: err}
	}

	step = api.StepFinish
	report(api.Progress{Step: step})
	if opts.Keep {
		report(api.Progress{Step: step, Done: true, Note: "a hibernated copy stays here"})
	} else {
		if err := p.deleteInOp(context.WithoutCancel(ctx), fn); err != nil {
			// The function runs at the target: say so rather than undo it.
			return fmt.Errorf("the function was moved, but removing the copy here failed: %w", err)
		}
		report(api.Progress{Step: step, Done: true, Note: "removed here"})
	}
	slog.Info("function migrated", "function", fn.key.String(), "keep", opts.Keep)
	return nil
}

// serialReports makes report safe to call from the transfers' tickers too:
// one call at a time.
func serialReports(report func(api.Progress)) func(api.Progress) {
	var mu sync.Mutex
	return func(pr api.Progress) {
		mu.Lock()
		defer mu.Unlock()
		report(pr)
	}
}

// checkpointForMigration hibernates the function for the move, requests in
// flight frozen with it, and returns what is to be sent.
func (p *Provider) checkpointForMigration(ctx context.Context, fn *function, report func(api.Progress)) (record, []replica, error) {
	step := api.StepCheckpoint
	report(api.Progress{Step: step})
	if !p.criu.Available {
		return record{}, nil, &api.MigrationError{Step: step, Err: fmt.Errorf("CRIU is not usable here (%s)", p.criu.Problem)}
	}
	start := time.Now()
	// A dump in place restores only into its own container: the target
	// needs the engine's checkpoint of the whole container (init and
	// function), so a function hibernated in place is woken here first.
	if err := p.wakeInPlaceFirst(ctx, fn); err != nil {
		return record{}, nil, &api.MigrationError{Step: step, Err: err}
	}
	if err := p.sleepInOp(ctx, fn, api.StrategyCheckpoint, reasonMigration, inflightFreeze); err != nil {
		return record{}, nil, &api.MigrationError{Step: step, Err: err}
	}
	rec, reps := fn.snapshot()
	if rec.State != api.StateHibernated || len(rec.Checkpoints) == 0 {
		return record{}, nil, &api.MigrationError{Step: step, Err: fmt.Errorf("function %s has no checkpoint to send (state %q)", fn.key, rec.State)}
	}
	report(api.Progress{Step: step, Done: true, Note: fmt.Sprintf("%d replicas in %s", len(rec.Checkpoints), time.Since(start).Round(time.Millisecond))})
	return rec, reps, nil
}

// rollbackMigration wakes the function here after a failed migration.
func (p *Provider) rollbackMigration(fn *function) bool {
	rec, _ := fn.snapshot()
	if rec.State == api.StateAwake {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.WakeTimeout+p.cfg.ReadyTimeout)
	defer cancel()
	if err := p.scaleUpInOp(ctx, fn, max(1, rec.SleptReplicas)); err != nil {
		slog.Error("restore after a failed migration", "function", fn.key.String(), "err", err)
		return false
	}
	return true
}

// streamImage sends the function's image (docker save, compressed).
func (p *Provider) streamImage(ctx context.Context, rec record, t api.MigrationTarget, report func(api.Progress)) error {
	ref := rec.ImageID
	if ref == "" {
		ref = rec.Deployment.Image
	}
	rc, err := p.engine.SaveImage(ctx, rec.Deployment.Image)
	if err != nil {
		return fmt.Errorf("docker save %s: %w", ref, err)
	}
	defer rc.Close()
	return p.pump(ctx, api.StepImage, report, func(w io.Writer) error {
		zw, err := archive.Compress(w)
		if err != nil {
			return err
		}
		if _, err := io.Copy(zw, rc); err != nil {
			return err
		}
		return zw.Close()
	}, func(r io.Reader) error { return t.SendImage(ctx, r) })
}

// streamArchive sends the definition and the checkpoints.
func (p *Provider) streamArchive(ctx context.Context, key api.Key, rec record, reps []replica, t api.MigrationTarget, replace bool, report func(api.Progress)) error {
	m, err := p.manifestOf(rec)
	if err != nil {
		return err
	}
	dirs := map[int]string{}
	for _, r := range reps {
		info, ok := rec.Checkpoints[r.index]
		if !ok {
			continue
		}
		m.Replicas = append(m.Replicas, archive.ReplicaImage{Index: r.index, Checkpoint: info})
		dirs[r.index] = p.checkpointDir(r.id, info.Name)
	}
	return p.pump(ctx, api.StepTransfer, report, func(w io.Writer) error {
		return archive.WriteArchive(w, m, dirs)
	}, func(r io.Reader) error { return t.Import(ctx, r, replace) })
}

// pump connects a producer to a consumer through a pipe, reporting the
// bytes that pass every half second and at the end.
func (p *Provider) pump(ctx context.Context, step string, report func(api.Progress), produce func(io.Writer) error, consume func(io.Reader) error) error {
	pr, pw := io.Pipe()
	counter := &countingWriter{w: pw}
	go func() { pw.CloseWithError(produce(counter)) }()

	done := make(chan struct{})
	start := time.Now()
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := counter.n.Load()
				report(api.Progress{Step: step, Bytes: n, Rate: float64(n) / time.Since(start).Seconds()})
			}
		}
	}()
	err := consume(pr)
	close(done)
	pr.CloseWithError(errors.New("stream ended"))
	if err != nil {
		return err
	}
	n := counter.n.Load()
	report(api.Progress{Step: step, Bytes: n, Rate: float64(n) / time.Since(start).Seconds(), Done: true})
	return ctx.Err()
}

type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// SaveImage streams an image (docker save, uncompressed), for a copy kept
// elsewhere.
func (p *Provider) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	rc, err := p.engine.SaveImage(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("docker save %s: %w", ref, err)
	}
	return rc, nil
}

// HasImage reports whether the engine has an image, by ID or reference.
func (p *Provider) HasImage(ctx context.Context, id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	_, err := p.engine.ImageID(ctx, id)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, err
}
