package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/checkpoint/archive"
)

// plainTarget is the target a migration would use without the cluster.
type plainTarget struct{}

func (plainTarget) Check(context.Context) error                    { return nil }
func (plainTarget) HasImage(context.Context, string) (bool, error) { return true, nil }
func (plainTarget) SendImage(context.Context, io.Reader) error     { return nil }
func (plainTarget) Import(context.Context, io.Reader, bool) error  { return nil }

// TestMigrationMovesOwnershipByCAS: a migration between two boxes stores
// the archive, has the target restore it from the store, and moves the
// record by compare-and-set. A record that changed between the start and
// the end (another box took over) fails the move, and the target's copy
// is removed.
func TestMigrationMovesOwnershipByCAS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srvs := []*httptest.Server{httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)}
	urls := []string{"http://" + srvs[0].Listener.Addr().String(), "http://" + srvs[1].Listener.Addr().String()}
	fls := joinBoxesAt(t, ctx, urls)
	restored, deleted := make(chan string, 4), make(chan string, 4)
	for i, f := range fls {
		box := f.cfg.Box
		f.SetRestorer(func(_ context.Context, dir string, _ bool, why string) error {
			if _, err := archive.LoadManifest(dir); err != nil {
				return err
			}
			restored <- box + ": " + why
			return nil
		})
		mux := http.NewServeMux()
		mux.HandleFunc("POST /system/fleet/restore", f.RestoreHandler)
		mux.HandleFunc("DELETE /system/functions", func(w http.ResponseWriter, r *http.Request) {
			deleted <- box
			w.WriteHeader(http.StatusAccepted)
		})
		srvs[i].Config.Handler = f.Wrap(mux)
		srvs[i].Start()
		defer srvs[i].Close()
	}
	for deadline := time.Now().Add(20 * time.Second); len(fls[0].Boxes()) < 2; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("ob1 does not see ob2")
		}
	}
	// Two boxes keep two copies of a checkpoint (one box through an
	// existing server keeps one: TestExistingNATS).
	if r, err := fls[1].Objects().Replicas(ctx); err != nil || r != 2 {
		t.Errorf("two boxes: %d replicas (%v), want 2", r, err)
	}
	k := api.Key{Namespace: defaultNamespace, Name: "mover"}
	v, _ := json.Marshal(Record{Deployment: json.RawMessage(`{"service":"mover","image":"img"}`), Box: "ob1", At: time.Now()})
	rev, err := fls[0].funcs.Create(ctx, objectName(k), v)
	if err != nil {
		t.Fatal(err)
	}
	fls[0].setRecord(objectName(k), v, rev)
	if _, ok := fls[0].MigrationTarget(k, "http://elsewhere:8080", "", "", "", plainTarget{}); ok {
		t.Error("a migration to a URL that is no box of the fleet goes through the cluster")
	}
	move := func(meanwhile func()) error {
		tg, ok := fls[0].MigrationTarget(k, urls[1], "admin", "pw", "", plainTarget{})
		if !ok {
			t.Fatal("a migration of ob1's function to ob2 does not go through the cluster")
		}
		if err := tg.Check(ctx); err != nil {
			return err
		}
		meanwhile()
		var buf bytes.Buffer
		if _, err := archive.WriteDir(&buf, checkpointDir(t, "mover", time.Now(), 4<<10, 7)); err != nil {
			t.Fatal(err)
		}
		return tg.Import(ctx, &buf, false)
	}

	// Another box rewrites the record during the move: no move.
	err = move(func() {
		if _, err := fls[1].funcs.Put(ctx, objectName(k), v); err != nil {
			t.Fatal(err)
		}
	})
	if err == nil || !strings.Contains(err.Error(), "record changed") {
		t.Fatalf("a move whose record changed meanwhile: %v, want refused", err)
	}
	if got := <-restored; !strings.HasPrefix(got, "ob2: restored from the checkpoint ob1 took") {
		t.Errorf("restored %q", got)
	}
	if got := <-deleted; got != "ob2" {
		t.Errorf("the refused move's copy was deleted on %q, want ob2", got)
	}
	e, _ := fls[0].funcs.Get(ctx, objectName(k))
	var rec Record
	if json.Unmarshal(e.Value(), &rec); rec.Box != "ob1" {
		t.Fatalf("after a refused move the record names %s, want ob1", rec.Box)
	}

	// Undisturbed, it moves.
	if err := move(func() {}); err != nil {
		t.Fatal(err)
	}
	<-restored
	for deadline := time.Now().Add(readLag); ; time.Sleep(50 * time.Millisecond) {
		e, _ = fls[1].funcs.Get(ctx, objectName(k)) // a replica may be behind
		if json.Unmarshal(e.Value(), &rec); rec.Box == "ob2" && strings.Contains(rec.Placed, "migrated from ob1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the move the record is %+v, want on ob2", rec)
		}
	}
	if m, err := fls[1].Objects().Newest(ctx, k); err != nil || m.Box != "ob1" || m.Kind != KindCheckpoint {
		t.Errorf("stored after the move: %+v, %v", m, err)
	}
	if _, ok := fls[0].MigrationTarget(k, urls[1], "", "", "", plainTarget{}); ok {
		t.Error("ob1 still moves a function it no longer owns")
	}
	select {
	case b := <-deleted:
		t.Errorf("a successful move deleted the copy on %s", b)
	default:
	}
}
