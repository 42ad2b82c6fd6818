package fleet

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// UploadTimeout bounds one checkpoint's upload.
var UploadTimeout = 10 * time.Minute

// Uploader stores the checkpoints this box takes, in the background and
// one at a time, so that the object store's traffic never sits on a wake's
// path nor competes with itself. Per function only the newest offer waits:
// one not yet stored is dropped (and its snapshot removed) when a newer one
// comes, so what waits is bounded by the number of functions.
type Uploader struct {
	objs   *Objects
	images func() Images
	mu     sync.Mutex
	// pending: the newest snapshot of each function not yet stored.
	pending map[api.Key]offered
	wake    chan struct{}
	// Stored, when set, is told of each checkpoint stored (tests, logs).
	Stored func(Meta, time.Duration)
}

type offered struct{ kind, dir string }

// NewUploader starts storing what is offered until ctx ends.
func (f *Fleet) NewUploader(ctx context.Context) *Uploader {
	u := &Uploader{objs: f.Objects(), images: f.imageStore, pending: map[api.Key]offered{}, wake: make(chan struct{}, 1)}
	go u.run(ctx)
	return u
}

// Offer queues dir (a snapshot the caller no longer touches) as key's
// newest checkpoint; the Uploader removes it once stored or dropped.
func (u *Uploader) Offer(key api.Key, kind, dir string) {
	u.mu.Lock()
	if old, ok := u.pending[key]; ok {
		_ = os.RemoveAll(old.dir)
	}
	u.pending[key] = offered{kind, dir}
	u.mu.Unlock()
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

// next takes one waiting offer.
func (u *Uploader) next() (api.Key, offered, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for k, o := range u.pending {
		delete(u.pending, k)
		return k, o, true
	}
	return api.Key{}, offered{}, false
}

func (u *Uploader) run(ctx context.Context) {
	defer func() {
		for k, o, ok := u.next(); ok; k, o, ok = u.next() {
			_ = os.RemoveAll(o.dir)
			slog.Debug("offsite: not stored before the stop", "function", k.String())
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.wake:
		}
		for k, o, ok := u.next(); ok && ctx.Err() == nil; k, o, ok = u.next() {
			u.store(ctx, k, o)
		}
	}
}

func (u *Uploader) store(ctx context.Context, k api.Key, o offered) {
	defer os.RemoveAll(o.dir)
	ctx, cancel := context.WithTimeout(ctx, UploadTimeout)
	defer cancel()
	start := time.Now()
	m, err := u.objs.Put(ctx, k, o.kind, o.dir)
	took := time.Since(start)
	switch {
	case errors.Is(err, ErrOlder):
		slog.Debug("offsite: a newer checkpoint is stored", "function", k.String(), "err", err)
	case err != nil:
		// The function and its checkpoint on this box are untouched; the
		// fleet keeps the one stored before, if any.
		slog.Warn("offsite: checkpoint not stored in the fleet: it stays on this box only", "function", k.String(), "kind", o.kind, "err", err)
	default:
		slog.Info("offsite: checkpoint stored in the fleet", "function", k.String(), "kind", m.Kind,
			"bytes", m.Bytes, "stored", m.Size, "chunks", m.Chunks, "took", took.Round(time.Millisecond))
		if u.Stored != nil {
			u.Stored(m, took)
		}
		// Its image too, once: a box that lacks it loads it from there.
		if err := u.objs.putImage(ctx, u.images(), o.dir); err != nil {
			slog.Warn("offsite: image not stored in the fleet (a box without it cannot restore the function)", "function", k.String(), "err", err)
		}
	}
}
