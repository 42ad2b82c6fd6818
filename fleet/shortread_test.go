package fleet

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faas-criu/faas-criu/api"
)

// shortStore is the real object store whose first `short` reads end part
// way with the digest error, as nats.go's do when the chunks' consumer
// sits on a replica still applying the last chunks.
type shortStore struct {
	jetstream.ObjectStore
	short int32
	gets  atomic.Int32
}

func (s *shortStore) Get(ctx context.Context, name string, opts ...jetstream.GetObjectOpt) (jetstream.ObjectResult, error) {
	res, err := s.ObjectStore.Get(ctx, name, opts...)
	if err != nil || s.gets.Add(1) > s.short {
		return res, err
	}
	info, err := res.Info()
	if err != nil {
		return nil, err
	}
	return &shortResult{ObjectResult: res, left: int(info.Size / 2)}, nil
}

// shortResult gives left bytes, then ErrDigestMismatch (nats.go's error
// at the end of a read whose bytes differ from the stored digest).
type shortResult struct {
	jetstream.ObjectResult
	left int
}

func (r *shortResult) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, jetstream.ErrDigestMismatch
	}
	n, err := r.ObjectResult.Read(p[:min(len(p), r.left)])
	r.left -= n
	return n, err
}

// TestFetchReadsAgainAfterAShortRead: a read of a stored checkpoint that
// ended short (the digests differ) is read again, what it unpacked
// removed first, and the checkpoint comes whole; reads that keep ending
// short fail after readLag with the digest error and a message that says
// so, leaving nothing half unpacked.
func TestFetchReadsAgainAfterAShortRead(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := joinBoxes(t, ctx, 3)[0]
	o := f.Objects()
	k := api.Key{Namespace: "openfaas-fn", Name: "short"}
	src := checkpointDir(t, "short", time.Now().Add(-time.Minute).UTC(), 2<<20, 7)
	m, err := o.Put(ctx, k, KindCheckpoint, src)
	if err != nil {
		t.Fatal(err)
	}
	real := f.objects
	wrap := func(short int32) *shortStore {
		s := &shortStore{ObjectStore: real, short: short}
		f.mu.Lock()
		f.objects = s
		f.mu.Unlock()
		return s
	}
	defer func() { f.mu.Lock(); f.objects = real; f.mu.Unlock() }()

	s := wrap(2)
	dst := filepath.Join(t.TempDir(), "fetched")
	if err := o.Fetch(ctx, m, dst); err != nil {
		t.Fatalf("Fetch after 2 short reads: %v", err)
	}
	if n := s.gets.Load(); n != 3 {
		t.Errorf("Fetch read the object %d times, want 3 (2 short, then whole)", n)
	}
	checkFetched(t, src, dst)

	defer func(lag time.Duration) { readLag = lag }(readLag)
	readLag = 500 * time.Millisecond
	wrap(1 << 30)
	dst = filepath.Join(t.TempDir(), "never")
	start := time.Now()
	err = o.Fetch(ctx, m, dst)
	if !errors.Is(err, jetstream.ErrDigestMismatch) {
		t.Fatalf("Fetch when every read ends short: %v, want %v", err, jetstream.ErrDigestMismatch)
	}
	if took := time.Since(start); took < readLag || took > readLag+5*time.Second {
		t.Errorf("Fetch gave up after %s, want about readLag (%s)", took, readLag)
	}
	t.Logf("every read short: %v", err)
	if ents, err := os.ReadDir(dst); err != nil || len(ents) != 0 {
		t.Errorf("after the failed Fetch %s holds %d entries (%v), want it empty", dst, len(ents), err)
	}
}
