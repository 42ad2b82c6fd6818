package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faas-criu/faas-criu/checkpoint/archive"
)

// Images is this box's image store (the provider's). A stored checkpoint
// restores only over its own image, so the image is stored beside it, once
// per image ID, and loaded by a box that lacks it before it restores.
type Images interface {
	HasImage(ctx context.Context, id string) (bool, error)
	// SaveImage streams an image (docker save, uncompressed).
	SaveImage(ctx context.Context, ref string) (io.ReadCloser, error)
	// ImportImage loads a compressed docker save stream, vetted first.
	ImportImage(ctx context.Context, r io.Reader) error
}

// SetImages gives the fleet this box's images.
func (f *Fleet) SetImages(im Images) {
	f.mu.Lock()
	f.images = im
	f.mu.Unlock()
}

func (f *Fleet) imageStore() Images {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.images
}

func imageObject(id string) string { return "image/" + id }

// errImageStored says another box stored the image meanwhile: an ID names
// one content, so the one stored stays.
var errImageStored = errors.New("fleet: the image is stored already")

// putImage stores the image of the checkpoint in dir unless the store has
// it already (images are not replaced: an ID names one content).
func (o *Objects) putImage(ctx context.Context, im Images, dir string) error {
	m, err := archive.LoadManifest(dir)
	if err != nil || m.ImageID == "" || im == nil {
		return err
	}
	obs, err := o.store()
	if err != nil {
		return err
	}
	if _, err := obs.GetInfo(ctx, imageObject(m.ImageID)); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("store image %s: %w", m.ImageRef, err)
	}
	start := time.Now()
	rc, err := im.SaveImage(ctx, m.ImageRef)
	if err != nil {
		return fmt.Errorf("save image %s: %w", m.ImageRef, err)
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	go func() {
		zw, err := archive.Compress(pw)
		if err == nil {
			if _, err = io.Copy(zw, rc); err == nil {
				err = zw.Close()
			}
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	// Staged (see upload): a refused upload leaves no description under
	// the image's name, which the check above would take as stored.
	info, err := o.upload(ctx, o.f.cfg.Box, imageObject(m.ImageID), jetstream.ObjectMeta{
		Description: "image " + m.ImageRef, Metadata: map[string]string{"ref": m.ImageRef},
	}, pr, func(*jetstream.ObjectInfo) error { return errImageStored })
	if errors.Is(err, errImageStored) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store image %s: %w", m.ImageRef, err)
	}
	slog.Info("offsite: image stored in the fleet", "image", m.ImageRef, "id", m.ImageID, "stored", info.Size, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// ensureImage loads the image of the checkpoint unpacked in dir from the
// store when this box lacks it.
func (f *Fleet) ensureImage(ctx context.Context, dir string) error {
	im := f.imageStore()
	m, err := archive.LoadManifest(dir)
	if err != nil || m.ImageID == "" || im == nil {
		return err
	}
	if has, err := im.HasImage(ctx, m.ImageID); err != nil || has {
		return err
	}
	obs, err := f.Objects().store()
	if err != nil {
		return err
	}
	start := time.Now()
	// A read that ended short (see Fetch) is read again; told by the
	// store's own error, whatever the import made of it.
	if err := readWhole(ctx, "stored image "+m.ImageRef, func() (bool, error) {
		return loadImage(ctx, obs, im, m)
	}); err != nil {
		return err
	}
	slog.Info("fleet: image loaded from the store", "image", m.ImageRef, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// loadImage is one read of ensureImage's; short says the read ended short
// of the stored image (jetstream.ErrDigestMismatch).
func loadImage(ctx context.Context, obs jetstream.ObjectStore, im Images, m *archive.Manifest) (short bool, err error) {
	res, err := obs.Get(ctx, imageObject(m.ImageID))
	if err != nil {
		return false, fmt.Errorf("image %s (%s) is not here nor in the fleet's store: %w", m.ImageRef, m.ImageID, err)
	}
	defer res.Close()
	w := &digestWatch{r: res}
	if err := im.ImportImage(ctx, w); err != nil {
		return w.short, fmt.Errorf("load image %s from the fleet's store: %w", m.ImageRef, err)
	}
	return false, nil
}

// digestWatch notes a read that ended with the store's digest error.
type digestWatch struct {
	r     io.Reader
	short bool
}

func (d *digestWatch) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if errors.Is(err, jetstream.ErrDigestMismatch) {
		d.short = true
	}
	return n, err
}
