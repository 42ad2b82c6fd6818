package fleet

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faas-criu/faas-criu/checkpoint/archive"
)

// bytesImages is a box's image store holding one image's save stream.
type bytesImages struct {
	save     []byte
	imported []byte
}

func (b *bytesImages) HasImage(context.Context, string) (bool, error) { return b.imported != nil, nil }

func (b *bytesImages) SaveImage(context.Context, string) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.save)), nil
}

func (b *bytesImages) ImportImage(_ context.Context, r io.Reader) error {
	zr, err := archive.Decompress(r)
	if err != nil {
		return err
	}
	defer zr.Close()
	data, err := io.ReadAll(zr)
	if err == nil {
		b.imported = data
	}
	return err
}

// TestRefusedImageNotTakenAsStored: an image upload the store refuses
// (full) leaves nothing under the image's name, so the next offer of that
// image uploads it instead of taking it as stored, and another box loads
// it whole.
func TestRefusedImageNotTakenAsStored(t *testing.T) {
	t.Parallel()
	boxes := startTestFleetWith(t, func(c *Config) { c.ObjectStore, c.QueueStore = 8<<20, 1<<20 }, "ri1", "ri2", "ri3")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := boxes[0].fleet.Objects()
	dir := t.TempDir()
	if err := archive.SaveManifest(dir, &archive.Manifest{ImageRef: "ri:1", ImageID: "sha256:ri"}); err != nil {
		t.Fatal(err)
	}
	huge := make([]byte, 12<<20) // incompressible: past the 8 MiB bound
	rand.New(rand.NewSource(1)).Read(huge)
	err := o.putImage(ctx, &bytesImages{save: huge}, dir)
	if !errors.Is(err, ErrStoreFull) {
		t.Errorf("an image past the store's bound: %v, want %v", err, ErrStoreFull)
	}
	t.Logf("an image past the bound: %v", err)
	for _, b := range boxes {
		obs, _ := b.fleet.Objects().store()
		if info, err := obs.GetInfo(ctx, imageObject("sha256:ri")); !errors.Is(err, jetstream.ErrObjectNotFound) {
			t.Errorf("%s: after the refused upload the image's name holds %+v (%v), want nothing", b.fleet.cfg.Box, info, err)
		}
	}
	obs, _ := o.store()
	if st, err := obs.Status(ctx); err != nil || st.Size() > 64<<10 {
		t.Errorf("the store holds %d bytes after the refused upload (%v), want what it held (none)", st.Size(), err)
	}

	small := make([]byte, 1<<20)
	rand.New(rand.NewSource(2)).Read(small)
	if err := o.putImage(ctx, &bytesImages{save: small}, dir); err != nil {
		t.Fatalf("the image offered again, fitting: %v", err)
	}
	if err := o.putImage(ctx, &bytesImages{save: small}, dir); err != nil {
		t.Fatalf("the image offered once stored: %v", err)
	}
	other := &bytesImages{}
	boxes[2].fleet.SetImages(other)
	// The chunks' replica may be behind for a moment (see Fetch).
	for deadline := time.Now().Add(readLag); ; time.Sleep(100 * time.Millisecond) {
		err = boxes[2].fleet.ensureImage(ctx, dir)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !bytes.Equal(other.imported, small) {
		t.Fatalf("another box loads %d bytes of the %d-byte image (%v), want it whole", len(other.imported), len(small), err)
	}

	// A load whose first read ends short (see Fetch) reads it again.
	real := boxes[2].fleet.objects
	s := &shortStore{ObjectStore: real, short: 1}
	boxes[2].fleet.mu.Lock()
	boxes[2].fleet.objects = s
	boxes[2].fleet.mu.Unlock()
	again := &bytesImages{}
	boxes[2].fleet.SetImages(again)
	if err := boxes[2].fleet.ensureImage(ctx, dir); err != nil || !bytes.Equal(again.imported, small) || s.gets.Load() != 2 {
		t.Errorf("a load whose first read ended short: %d bytes of %d in %d reads (%v), want it whole in 2", len(again.imported), len(small), s.gets.Load(), err)
	}
}
