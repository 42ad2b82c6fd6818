package provider

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// hibernated deploys fn, invokes it once (count 1) and hibernates it.
func hibernated(t *testing.T) (*Provider, *fakeEngine) {
	t.Helper()
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	if err := p.Scale(context.Background(), "", "fn", 0); err != nil {
		t.Fatal(err)
	}
	if len(eng.checkpointNames()) != 1 {
		t.Fatalf("checkpoints %v, want one", eng.checkpointNames())
	}
	return p, eng
}

// diskRecord reads fn's record as a provider killed now would find it.
func diskRecord(t *testing.T, stateDir string) record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "functions", api.DefaultNamespace, "fn.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	return rec
}

func available(t *testing.T, p *Provider) uint64 {
	t.Helper()
	st, err := p.Status(context.Background(), "", "fn")
	if err != nil {
		t.Fatal(err)
	}
	return st.AvailableReplicas
}

// invokeAll sends n requests at once and returns their counts.
func invokeAll(t *testing.T, p *Provider, n int) map[int]bool {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]bool{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := invoke(p, "fn")
			if err != nil {
				t.Errorf("request: %v", err)
				return
			}
			mu.Lock()
			seen[c] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	return seen
}

// The waking requests are answered while the engine's start call has not
// returned; the record says the function is awake, with its wake, and
// still holds the checkpoint, which stays on disk until the call returned.
func TestWakeAnswersBeforeStartReturns(t *testing.T) {
	p, eng := hibernated(t)
	release := eng.holdRestores(nil, false)
	defer release()
	if got := available(t, p); got != 0 {
		t.Fatalf("availableReplicas %d while hibernated, want 0", got)
	}
	// Five requests share the wake and all go through before it ends.
	seen := invokeAll(t, p, 5)
	for c := 2; c <= 6; c++ {
		if !seen[c] {
			t.Fatalf("counts %v, want 2 to 6", seen)
		}
	}
	if got := eng.count("restore"); got != 1 {
		t.Errorf("%d restores, want 1", got)
	}
	if got := available(t, p); got != 1 {
		t.Errorf("availableReplicas %d once it answered, want 1", got)
	}
	rec := diskRecord(t, p.cfg.StateDir)
	if rec.State != api.StateAwake || rec.LastWake == nil || !rec.LastWake.Early || rec.LastWake.Restore == nil {
		t.Fatalf("record before the start returned: state %q, last wake %+v; want awake, an early wake with its span", rec.State, rec.LastWake)
	}
	if _, ok := rec.Checkpoints[0]; !ok || len(eng.checkpointNames()) != 1 {
		t.Fatalf("checkpoint in the record %v, on disk %v, before the start returned: want both kept", rec.Checkpoints, eng.checkpointNames())
	}
	// The operation still holds the function: no sleep can start.
	fn, _ := p.lookup("", "fn")
	if fn.opMu.TryLock() {
		fn.opMu.Unlock()
		t.Fatal("the function's operation lock is free while its start runs")
	}

	release()
	eventually(t, "the checkpoint discarded once the start returned", func() bool {
		r := diskRecord(t, p.cfg.StateDir)
		return len(r.Checkpoints) == 0 && len(eng.checkpointNames()) == 0 && r.LastWake != nil && r.LastWake.StartCall > 0
	})
	mustInvoke(t, p, "fn", 7)
	if got := state(t, p, "fn"); got != api.StateAwake {
		t.Errorf("state %q, want awake", got)
	}
}

// The start fails after the replica answered, but the container runs: it
// is accepted, with its state.
func TestLateStartFailureContainerRuns(t *testing.T) {
	p, eng := hibernated(t)
	release := eng.holdRestores(errors.New("containerd: late failure"), false)
	mustInvoke(t, p, "fn", 2)
	release()
	eventually(t, "the checkpoint discarded", func() bool {
		return len(diskRecord(t, p.cfg.StateDir).Checkpoints) == 0 && len(eng.checkpointNames()) == 0
	})
	mustInvoke(t, p, "fn", 3)
	if got := state(t, p, "fn"); got != api.StateAwake {
		t.Errorf("state %q, want awake", got)
	}
	if got := available(t, p); got != 1 {
		t.Errorf("availableReplicas %d, want 1", got)
	}
}

// The start fails after the replica answered, and the container does not
// run: a failed restore. The checkpoint is kept, the function sleeps again
// and says its state was lost; the next wake restores the same checkpoint,
// without what the answered request changed (count 2 again).
func TestLateStartFailureContainerStopped(t *testing.T) {
	p, eng := hibernated(t)
	kept := eng.checkpointNames()
	release := eng.holdRestores(errors.New("containerd: late failure"), true)
	mustInvoke(t, p, "fn", 2)
	release()
	// Asleep on disk, and the failed wake over: a request that comes while
	// it still ends is one of its waiters and is told of its failure.
	eventually(t, "the function back asleep", func() bool {
		p.mu.RLock()
		fn := p.fns[api.Key{Namespace: "openfaas-fn", Name: "fn"}]
		p.mu.RUnlock()
		fn.mu.Lock()
		defer fn.mu.Unlock()
		return diskRecord(t, p.cfg.StateDir).State == api.StateHibernated && !fn.waking
	})
	if got := available(t, p); got != 0 {
		t.Errorf("availableReplicas %d after the failed start, want 0", got)
	}
	rec := diskRecord(t, p.cfg.StateDir)
	if _, ok := rec.Checkpoints[0]; !ok || len(eng.checkpointNames()) != 1 || eng.checkpointNames()[0] != kept[0] {
		t.Fatalf("checkpoint in the record %v, on disk %v: want %v kept", rec.Checkpoints, eng.checkpointNames(), kept)
	}
	if rec.StateLost == nil {
		t.Errorf("no lost state recorded")
	}
	st, _ := p.Status(context.Background(), "", "fn")
	if (*st.Annotations)[api.AnnotationStateLost] == "" {
		t.Errorf("status does not say the state was lost")
	}
	mustInvoke(t, p, "fn", 2)
}

// A provider killed after the early answer (before the engine's call
// returned) finds on disk a record that loses nothing: awake, with the
// checkpoint. A new provider over it keeps the running replica (and
// discards the checkpoint), or, if the start failed, restores from the
// checkpoint again.
func TestEarlyWakeRecordSurvivesCrash(t *testing.T) {
	for _, stops := range []bool{false, true} {
		name := map[bool]string{false: "start succeeded", true: "start failed"}[stops]
		t.Run(name, func(t *testing.T) {
			p, eng := hibernated(t)
			var late error
			if stops {
				late = errors.New("containerd: late failure")
			}
			release := eng.holdRestores(late, stops)
			mustInvoke(t, p, "fn", 2)
			crashed := t.TempDir() // what a provider killed now leaves
			copyDir(t, p.cfg.StateDir, crashed)
			release()
			eventually(t, "the wake settled", func() bool {
				fn, _ := p.lookup("", "fn")
				if !fn.opMu.TryLock() {
					return false
				}
				fn.opMu.Unlock()
				return true
			})
			_ = p.Close()

			p2 := startTestProvider(t, eng, crashed)
			want := 3
			if stops {
				want = 2 // restored again: the answered request's change is lost
			}
			mustInvoke(t, p2, "fn", want)
			eventually(t, "no checkpoint left", func() bool {
				return len(diskRecord(t, crashed).Checkpoints) == 0 && len(eng.checkpointNames()) == 0
			})
			if got := state(t, p2, "fn"); got != api.StateAwake {
				t.Errorf("state %q, want awake", got)
			}
		})
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, fi.Mode())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A wake that answers early writes the function's record three times: awake
// (before the restore), the wake (before requests reach the replica), the
// checkpoint forgotten with the engine's start call's length (once it
// returned). The start call's length had a write of its own, and 20
// functions woken at once wrote 80 records, each fsynced twice.
func TestEarlyWakeWritesItsRecordThreeTimes(t *testing.T) {
	p, eng := hibernated(t)
	path := p.store.recordPath(api.DefaultNamespace, "fn")
	var mu sync.Mutex
	var writes []record
	defer func(w func(string, []byte, os.FileMode) error) { writeRecordFile = w }(writeRecordFile)
	writeRecordFile = func(name string, b []byte, mode os.FileMode) error {
		if name == path {
			var rec record
			_ = json.Unmarshal(b, &rec)
			mu.Lock()
			writes = append(writes, rec)
			mu.Unlock()
		}
		return writeFileAtomic(name, b, mode)
	}
	release := eng.holdRestores(nil, false)
	defer release()
	mustInvoke(t, p, "fn", 2) // answered while the start call is held
	release()
	fn, _ := p.lookup("", "fn")
	eventually(t, "the wake's operation ended", func() bool {
		if !fn.opMu.TryLock() {
			return false
		}
		fn.opMu.Unlock()
		return len(diskRecord(t, p.cfg.StateDir).Checkpoints) == 0
	})
	mu.Lock()
	defer mu.Unlock()
	if len(writes) != 3 {
		t.Fatalf("%d writes of the record during the wake, want 3: %+v", len(writes), writes)
	}
	last := writes[2]
	if last.LastWake == nil || !last.LastWake.Early || last.LastWake.StartCall <= 0 || len(last.Checkpoints) != 0 {
		t.Fatalf("last write: checkpoints %v, last wake %+v; want none, an early wake with its start call", last.Checkpoints, last.LastWake)
	}
}

// A wake alone is probed every earlyPoll; replicas restored together space
// their attempts by how many are probed, so that twenty restores sharing
// two cores are not also sending twenty SYNs every 2 ms, up to a bound.
func TestProbePause(t *testing.T) {
	for _, c := range []struct {
		probing int64
		want    time.Duration
	}{{0, earlyPoll}, {1, earlyPoll}, {5, 5 * earlyPoll}, {20, earlyPollMax}, {200, earlyPollMax}} {
		if got := probePause(c.probing); got != c.want {
			t.Errorf("probePause(%d) = %v, want %v", c.probing, got, c.want)
		}
	}
}
