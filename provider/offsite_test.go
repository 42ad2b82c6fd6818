package provider

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/checkpoint/archive"
)

// keptOffsite is an Offsite that keeps what it is offered.
type keptOffsite struct {
	mu     sync.Mutex
	offers []struct {
		key       api.Key
		kind, dir string
	}
}

func (k *keptOffsite) Offer(key api.Key, kind, dir string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.offers = append(k.offers, struct {
		key       api.Key
		kind, dir string
	}{key, kind, dir})
}

// TestOffsiteHibernationRestoresElsewhere: a hibernation offers a snapshot
// of its checkpoint that outlives the wake removing the checkpoint; a
// backup offers one too; another box (its own engine and state) restores
// the function from the snapshot with ImportDir, its count continuing.
func TestOffsiteHibernationRestoresElsewhere(t *testing.T) {
	ctx := context.Background()
	p, _ := newTestProvider(t)
	off := &keptOffsite{}
	p.SetOffsite(off)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	mustInvoke(t, p, "fn", 2)
	if err := p.Scale(ctx, "", "fn", 0); err != nil {
		t.Fatal(err)
	}
	if len(off.offers) != 1 || off.offers[0].kind != OffsiteCheckpoint || off.offers[0].key.Name != "fn" {
		t.Fatalf("offers after hibernation: %+v", off.offers)
	}
	snap := off.offers[0].dir
	mustInvoke(t, p, "fn", 3) // the wake removes the checkpoint here, not the snapshot
	m, err := archive.LoadManifest(snap)
	if err != nil || len(m.Replicas) != 1 {
		t.Fatalf("snapshot %s: %+v, %v", snap, m, err)
	}
	if _, err := os.Stat(filepath.Join(archive.ReplicaDir(snap, m.Replicas[0].Index), fakePages)); err != nil {
		t.Fatalf("snapshot has no page image: %v", err)
	}
	if err := p.Fleet().Backup(ctx, api.Key{Namespace: api.DefaultNamespace, Name: "fn"}, 2); err != nil {
		t.Fatal(err)
	}
	if len(off.offers) != 2 || off.offers[1].kind != OffsiteBackup {
		t.Fatalf("offers after a backup: %+v", off.offers)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	engB := newFakeEngine(t, port)
	engB.addImage(testImage)
	b := startTestProvider(t, engB, t.TempDir())
	if _, err := b.ImportDir(ctx, snap, false, "restored from the fleet's store"); err != nil {
		t.Fatal(err)
	}
	mustInvoke(t, b, "fn", 3) // the state of the hibernation: two calls
	if _, err := os.Stat(snap); err != nil {
		t.Errorf("ImportDir removed the directory it was given: %v", err)
	}
	if _, err := b.ImportDir(ctx, snap, false, "again"); !errors.Is(err, api.ErrExists) {
		t.Errorf("a second ImportDir: %v, want api.ErrExists", err)
	}
}

// TestNoOffsiteAlone: a box with no fleet (no Offsite) snapshots nothing.
func TestNoOffsiteAlone(t *testing.T) {
	p, _ := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	if err := p.Scale(context.Background(), "", "fn", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.offsiteDir()); !os.IsNotExist(err) {
		t.Errorf("a box alone made %s: %v", p.offsiteDir(), err)
	}
}
