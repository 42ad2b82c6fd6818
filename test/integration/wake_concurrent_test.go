//go:build integration

package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/provider"
)

// Hibernated functions woken at the same moment are restored at the same
// time, not one after another (issue 13: 20 such wakes answered one every
// 0.37 s, because the provider ran every restore under one lock). The
// provider records when each Docker start from a checkpoint began and how
// long it took; the test asserts that these spans share a moment, which a
// serialised restore cannot produce whatever the machine's speed.
func TestWakesOfDifferentFunctionsOverlap(t *testing.T) {
	p := StartProvider(t)
	names := []string{"overlap-a", "overlap-b", "overlap-c"}
	for _, n := range names {
		p.Deploy(Fixture(n))
	}
	for _, n := range names {
		if got := counts(p, n, 2); got[1] != 2 {
			t.Fatalf("%s counts %v", n, got)
		}
		p.Scale(n, 0)
	}
	for _, n := range names {
		p.WaitState(n, "hibernated", time.Minute)
	}

	var wg sync.WaitGroup
	got := make([]string, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := p.Invoke(n, "/count")
			got[i] = strconv.Itoa(code) + " " + body
		}()
	}
	wg.Wait()
	for i, n := range names {
		// The state survived each restore: the count goes on.
		if got[i] != "200 3" {
			t.Errorf("%s after the wake: %q, want \"200 3\"", n, got[i])
		}
	}

	var latestStart, earliestEnd time.Time
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(p.StateDir, "functions", api.DefaultNamespace, n+".json"))
		if err != nil {
			t.Fatalf("record of %s: %v", n, err)
		}
		var rec struct {
			LastWake *provider.WakeInfo `json:"lastWake"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("record of %s: %v", n, err)
		}
		if rec.LastWake == nil || rec.LastWake.From != "checkpoint" || rec.LastWake.Restore == nil {
			t.Fatalf("%s: last wake %+v, want a restore from a checkpoint with its span", n, rec.LastWake)
		}
		s := rec.LastWake.Restore
		t.Logf("%s: restore began %s, took %s", n, s.Start.Format("15:04:05.000"), s.Duration.Round(time.Millisecond))
		if end := s.Start.Add(s.Duration); earliestEnd.IsZero() || end.Before(earliestEnd) {
			earliestEnd = end
		}
		if s.Start.After(latestStart) {
			latestStart = s.Start
		}
	}
	if !latestStart.Before(earliestEnd) {
		t.Errorf("the restores did not overlap: the last began at %s, after the first had ended at %s", latestStart.Format("15:04:05.000"), earliestEnd.Format("15:04:05.000"))
	}
}

// Functions woken at the same moment on a real engine answer before the
// engine's start calls return (their probes spaced by how many are probed,
// bench/tried.md 31), keep their state, and each record ends with the
// checkpoint forgotten and the start call's length, written together once
// the call returned (one record write per wake fewer than before).
func TestConcurrentEarlyWakesRecordTheirStartCall(t *testing.T) {
	p := StartProviderOnB(t)
	LoadImageOnB(t, FixtureImage)
	names := []string{"early-a", "early-b", "early-c", "early-d", "early-e", "early-f"}
	for _, n := range names {
		p.Deploy(Fixture(n))
	}
	for _, n := range names {
		if got := counts(p, n, 1); got[0] != 1 {
			t.Fatalf("%s counts %v", n, got)
		}
		p.Scale(n, 0)
	}
	for _, n := range names {
		p.WaitState(n, "hibernated", time.Minute)
	}
	var wg sync.WaitGroup
	got := make([]string, len(names))
	for i, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := p.Invoke(n, "/count")
			got[i] = strconv.Itoa(code) + " " + body
		}()
	}
	wg.Wait()
	early := 0
	for i, n := range names {
		if got[i] != "200 2" {
			t.Errorf("%s after the wake: %q, want \"200 2\"", n, got[i])
		}
		var rec struct {
			Checkpoints map[int]json.RawMessage `json:"checkpoints"`
			LastWake    *provider.WakeInfo      `json:"lastWake"`
		}
		eventually(t, 30*time.Second, func() string {
			b, err := os.ReadFile(filepath.Join(p.StateDir, "functions", api.DefaultNamespace, n+".json"))
			if err != nil {
				return err.Error()
			}
			rec.Checkpoints, rec.LastWake = nil, nil
			if err := json.Unmarshal(b, &rec); err != nil {
				return err.Error()
			}
			if len(rec.Checkpoints) > 0 {
				return n + "'s record still holds its checkpoint"
			}
			return ""
		})
		w := rec.LastWake
		if w == nil || w.From != "checkpoint" || w.Restore == nil {
			t.Fatalf("%s: last wake %+v, want a restore from a checkpoint", n, w)
		}
		if w.Early {
			early++
			if w.StartCall < w.Restore.Duration {
				t.Errorf("%s: an early wake whose start call (%s) is not recorded past its answer (%s)", n, w.StartCall, w.Restore.Duration)
			}
		}
		t.Logf("%s: answered after %s, early %v, start call %s", n, w.Restore.Duration.Round(time.Millisecond), w.Early, w.StartCall.Round(time.Millisecond))
	}
	if early == 0 {
		t.Error("no wake answered before the engine's start call returned")
	}
}
