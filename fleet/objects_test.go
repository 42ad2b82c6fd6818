package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/checkpoint"
	"github.com/faas-criu/faas-criu/checkpoint/archive"
)

// joinBoxes starts n embedded servers routed to each other and waits until
// every box has joined.
func joinBoxes(t *testing.T, ctx context.Context, n int) []*Fleet {
	t.Helper()
	urls := make([]string, n)
	for i := range urls {
		urls[i] = "http://127.0.0.1:1"
	}
	return joinBoxesAt(t, ctx, urls)
}

// joinBoxesAt is joinBoxes with the boxes' API addresses.
func joinBoxesAt(t *testing.T, ctx context.Context, urls []string) []*Fleet {
	t.Helper()
	n := len(urls)
	routes := make([]string, n)
	for i := range routes {
		routes[i] = "nats://" + freeAddr(t)
	}
	var fls []*Fleet
	key := t.TempDir() + "/key"
	for i := range n {
		cfg := Config{
			Box: fmt.Sprintf("ob%d", i+1), Advertise: urls[i],
			ClusterListen: strings.TrimPrefix(routes[i], "nats://"), Routes: routes,
			Dir: t.TempDir(), KeyFile: key,
		}
		f, err := Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		fls = append(fls, f)
	}
	// Joining takes 10-20 s (the JetStream leader's election), more on
	// a busy machine.
	deadline := time.Now().Add(60 * time.Second)
	for _, f := range fls {
		for ok, _ := f.state(); !ok; ok, _ = f.state() {
			if time.Now().After(deadline) {
				t.Fatalf("%s has not joined after 60s", f.cfg.Box)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return fls
}

// checkpointDir writes a checkpoint as a provider stages one: the manifest
// and each replica's files, here a page image of size bytes, half random
// (incompressible) and half zeros, as a dump's memory is.
func checkpointDir(t *testing.T, fn string, at time.Time, size int, seed int64) string {
	t.Helper()
	dir := t.TempDir()
	pages := make([]byte, size)
	rand.New(rand.NewSource(seed)).Read(pages[:size/2])
	dep, _ := json.Marshal(map[string]string{"service": fn, "image": "img"})
	m := &archive.Manifest{Function: dep, ImageRef: "img", CreatedAt: at}
	for i := range 2 {
		name := checkpoint.NewName(checkpoint.HibernationPrefix, at)
		d := archive.ReplicaDir(dir, i)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "pages-1.img"), pages, 0o600); err != nil {
			t.Fatal(err)
		}
		m.Replicas = append(m.Replicas, archive.ReplicaImage{Index: i, Checkpoint: checkpoint.Info{Name: name, TakenAt: at.Add(time.Duration(i) * time.Millisecond), Bytes: int64(size)}})
	}
	if err := archive.SaveManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestObjectsAcrossBoxes: a checkpoint stored from one box of four is kept
// in three replicas (min(3, boxes)), chunked and compressed, and fetched
// whole from another box; an older one does not replace it, a newer one
// does (one object per function, not a history); delete removes it.
func TestObjectsAcrossBoxes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fls := joinBoxes(t, ctx, 4)
	a, d := fls[0].Objects(), fls[3].Objects()
	if r, err := a.Replicas(ctx); err != nil || r != 3 {
		t.Fatalf("object store replicas %d (%v), want 3 with four boxes", r, err)
	}
	k := api.Key{Namespace: "openfaas-fn", Name: "sensor"}
	if _, err := d.Newest(ctx, k); !errors.Is(err, ErrNoObject) {
		t.Fatalf("Newest before any Put: %v, want ErrNoObject", err)
	}
	t1 := time.Now().Add(-time.Minute).UTC()
	src := checkpointDir(t, "sensor", t1, 2<<20, 1)
	m, err := a.Put(ctx, k, KindCheckpoint, src)
	if err != nil {
		t.Fatal(err)
	}
	if m.Box != "ob1" || m.Kind != KindCheckpoint || !m.TakenAt.Equal(t1) || m.Bytes != 4<<20 {
		t.Errorf("Put's meta: %+v", m)
	}
	if m.Size >= m.Bytes*3/4 || m.Chunks != int((m.Size+int64(ObjectChunk)-1)/int64(ObjectChunk)) || m.Chunks < 2 {
		t.Errorf("stored %d bytes in %d chunks for %d bytes of checkpoint: want compressed and chunked", m.Size, m.Chunks, m.Bytes)
	}
	// Another box may read a replica that is a moment behind.
	eventuallyNewest(t, ctx, d, k, m)
	dst := filepath.Join(t.TempDir(), "fetched")
	if err := d.Fetch(ctx, m, dst); err != nil {
		t.Fatal(err)
	}
	checkFetched(t, src, dst)

	// Older does not replace newer; newer does (from another box).
	if _, err := d.Put(ctx, k, KindBackup, checkpointDir(t, "sensor", t1.Add(-time.Second), 1<<10, 2)); !errors.Is(err, ErrOlder) {
		t.Errorf("an older checkpoint: %v, want ErrOlder", err)
	}
	t2 := t1.Add(30 * time.Second)
	m2, err := d.Put(ctx, k, KindBackup, checkpointDir(t, "sensor", t2, 1<<10, 3))
	if err != nil {
		t.Fatal(err)
	}
	if got := eventuallyNewest(t, ctx, a, k, m2); got.Box != "ob4" || got.Kind != KindBackup || !got.TakenAt.Equal(t2) {
		t.Errorf("after a newer Put, Newest is %+v", got)
	}
	if err := a.Fetch(ctx, m, t.TempDir()); !errors.Is(err, ErrReplaced) {
		t.Errorf("Fetch of the replaced checkpoint: %v, want ErrReplaced", err)
	}
	obs, _ := a.store()
	st, _ := obs.Status(ctx)
	if st.Size() > uint64(m.Size) {
		t.Errorf("the store holds %d bytes after a %d-byte checkpoint was replaced by a small one: the old chunks stay", st.Size(), m.Size)
	}
	if err := fls[1].Objects().Delete(ctx, k); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(readLag)
	for _, err := a.Newest(ctx, k); !errors.Is(err, ErrNoObject); _, err = a.Newest(ctx, k) {
		if time.Now().After(deadline) {
			t.Fatalf("Newest after Delete: %v, want ErrNoObject", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := a.Delete(ctx, k); err != nil {
		t.Errorf("a second Delete: %v", err)
	}
}

func eventuallyNewest(t *testing.T, ctx context.Context, o *Objects, k api.Key, want Meta) Meta {
	t.Helper()
	deadline := time.Now().Add(readLag)
	for {
		got, err := o.Newest(ctx, k)
		if err == nil && got == want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("Newest from %s: %+v, %v; want %+v", o.f.cfg.Box, got, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkFetched fails t unless dst holds the two-replica archive stored
// from src, page images byte for byte.
func checkFetched(t *testing.T, src, dst string) {
	t.Helper()
	if man, err := archive.LoadManifest(dst); err != nil || len(man.Replicas) != 2 {
		t.Fatalf("fetched manifest: %+v, %v", man, err)
	}
	for i := range 2 {
		want, _ := os.ReadFile(filepath.Join(archive.ReplicaDir(src, i), "pages-1.img"))
		have, _ := os.ReadFile(filepath.Join(archive.ReplicaDir(dst, i), "pages-1.img"))
		if !bytes.Equal(want, have) {
			t.Errorf("replica %d: fetched %d bytes differ from the %d stored", i, len(have), len(want))
		}
	}
}
