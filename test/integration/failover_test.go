//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/fleet"
	"github.com/openfaas/faas-provider/types"
)

// direct calls a function on one box's own engine, as a box that forwards
// a request does: the box answers it itself or refuses, never forwarding.
func direct(p *Provider, name, path string) (int, string) {
	req, _ := http.NewRequest("GET", p.URL+"/function/"+name+path, nil)
	req.Header.Set(fleet.HopHeader, "test")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// fenced says whether a box says it fenced itself.
func fenced(p *Provider) bool {
	code, body := p.Request("GET", "/system/fleet", nil)
	var doc struct{ Fenced bool }
	return code == http.StatusOK && json.Unmarshal([]byte(body), &doc) == nil && doc.Fenced
}

// TestFleetBoxKilled: the box running a function dies (provider SIGKILLed,
// engine stopped) after the function hibernated and its checkpoint reached
// the fleet's object store: within 30 s the function answers through the
// others, restored on one of them from that checkpoint, its counter
// continuing, and its status says where, from which box and from which
// checkpoint. A second function on that box stays awake and is backed up
// (a backup policy): it too answers through the others within 30 s,
// restored from its newest stored backup, its counter continuing. A
// function pinned to the dead box stays down, listed as such. When the box
// comes back it removes its stale copies before serving, and serves the
// pinned one again.
func TestFleetBoxKilled(t *testing.T) {
	boxes, _ := startFleetWith(t, true)
	name := func(i int) string { return fmt.Sprintf("%s%d", fleetPrefix, i+1) }
	boxes[0].Deploy(Fixture("fo-kill"))
	victim := -1
	for i := range boxes {
		if boxOf(boxes[0].Status("fo-kill")) == name(i) {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("fo-kill is on no box: %v", boxes[0].Status("fo-kill").Annotations)
	}
	pinned := Fixture("fo-pinned")
	pinned.Constraints = []string{"node.hostname == " + name(victim)}
	boxes[0].Deploy(pinned)
	// Awake, backed up every 2 s: placed on the victim by a pin that an
	// update then drops (an update keeps a function on its box), so that
	// the takeover may put it anywhere.
	awake := Fixture("fo-awake")
	awake.Labels = &map[string]string{"com.openfaas.criu.backup-interval": "2s"}
	awake.Constraints = []string{"node.hostname == " + name(victim)}
	boxes[0].Deploy(awake)
	awake.Constraints = nil
	if code, body := boxes[0].Request("PUT", "/system/functions", awake); code != http.StatusAccepted {
		t.Fatalf("unpin fo-awake: %d %s", code, body)
	}
	for range 3 {
		boxes[(victim+1)%3].MustInvoke("fo-kill", "/count")
	}
	witness := boxes[(victim+1)%3]
	for range 2 {
		witness.MustInvoke("fo-awake", "/count")
	}
	counted := time.Now()
	// Hibernated: its checkpoint (counter at 3) is uploaded in the
	// background; the kill waits until the store has it.
	hibernated := time.Now()
	witness.Scale("fo-kill", 0)
	stored := storedCheckpoint(t, witness, "fo-kill", name(victim), hibernated.Add(-time.Second))
	if stored.Kind != fleet.KindCheckpoint {
		t.Fatalf("fo-kill's stored snapshot: %+v, want a checkpoint", stored)
	}
	// Awake: a backup taken after its counter reached 2 is in the store.
	backup := storedCheckpoint(t, witness, "fo-awake", name(victim), counted)
	if backup.Kind != fleet.KindBackup {
		t.Fatalf("fo-awake's stored snapshot: %+v, want a backup", backup)
	}
	if b := boxOf(witness.Status("fo-awake")); b != name(victim) {
		t.Fatalf("fo-awake runs on %q, want the victim %s", b, name(victim))
	}

	boxes[victim].Kill()
	out, err := exec.Command(filepath.Join(repoRoot, "scripts", "second-engine.sh"), "stop", name(victim)).CombinedOutput()
	if err != nil {
		t.Fatalf("stop engine %s: %v\n%s", name(victim), err, out)
	}
	startEngines := func() *exec.Cmd {
		cmd := exec.Command(filepath.Join(repoRoot, "scripts", "engines.sh"), "start", fleetPrefix, "3")
		cmd.Env = append(os.Environ(), "FAAS_CRIU_ENGINE_LIVE_RESTORE=false")
		return cmd
	}
	// Up again before the purge, whatever happens: a stopped engine's
	// network bridges outlive it, and one left behind would capture the
	// traffic of a later network on its subnet.
	t.Cleanup(func() { startEngines().Run() })
	killed := time.Now()
	count := map[string]string{}
	for _, fn := range []struct {
		name string
		from fleet.Meta
	}{{"fo-kill", stored}, {"fo-awake", backup}} {
		eventually(t, 40*time.Second, func() string {
			code, body := witness.Invoke(fn.name, "/count")
			if code != http.StatusOK {
				return fmt.Sprintf("%s through %s %s after its box died: %d %s", fn.name, witness.URL, time.Since(killed).Round(time.Second), code, body)
			}
			count[fn.name] = body
			return ""
		})
		took := time.Since(killed)
		t.Logf("%s answers on another box %s after its box died (lease %s, fence %s)", fn.name, took.Round(100*time.Millisecond), fleet.BoxTTL, fleet.FenceAfter)
		if took > 30*time.Second {
			t.Errorf("%s's failover took %s, want under 30s", fn.name, took)
		}
		checkTakenOver(t, witness.Status(fn.name), name(victim), fn.from)
	}
	for i, p := range boxes {
		if i != victim {
			for _, l := range logLines(p, `fleet: (function restored from the store|took over)`) {
				t.Log(l)
			}
		}
	}
	if count["fo-kill"] != "4" {
		t.Errorf("fo-kill's counter after the takeover: %s, want 4 (3 in its checkpoint)", count["fo-kill"])
	}
	if count["fo-awake"] != "3" {
		t.Errorf("fo-awake's counter after the takeover: %s, want 3 (2 in its backup)", count["fo-awake"])
	}
	for _, fn := range []string{"fo-kill", "fo-awake"} {
		holders := 0
		for i, p := range boxes {
			if i != victim && len(p.Containers(fn)) > 0 {
				holders++
			}
		}
		if holders != 1 {
			t.Errorf("%s has containers on %d surviving boxes, want 1", fn, holders)
		}
	}
	if code, body := witness.Invoke("fo-pinned", "/count"); code != http.StatusServiceUnavailable {
		t.Errorf("fo-pinned, pinned to the dead box: %d %s, want 503", code, body)
	}
	for _, st := range witness.List() {
		if st.Name == "fo-pinned" && (st.Annotations == nil || (*st.Annotations)[fleet.DownAnnotation] != "true") {
			t.Errorf("fo-pinned listed without box-down: %v", st.Annotations)
		}
	}

	// The dead box comes back (engine, then provider, on the same state):
	// it removes its copy of fo-kill, run elsewhere now, before it serves
	// anything, and serves fo-pinned again, still its own.
	if out, err := startEngines().CombinedOutput(); err != nil {
		t.Fatalf("restart engine %s: %v\n%s", name(victim), err, out)
	}
	back := boxes[victim]
	if n := len(back.Containers("fo-kill")); n == 0 {
		t.Fatal("the dead box's engine kept no container of fo-kill: nothing stale to remove")
	}
	back.Start()
	eventually(t, 60*time.Second, func() string {
		if code, body := direct(back, "fo-kill", "/count"); code == http.StatusOK {
			t.Errorf("the box back serves its stale copy of fo-kill: %s", body)
		}
		for _, fn := range []string{"fo-kill", "fo-awake"} {
			if n := len(back.Containers(fn)); n != 0 {
				return fmt.Sprintf("%d containers of %s on the box back", n, fn)
			}
		}
		if code, body := witness.Invoke("fo-pinned", "/count"); code != http.StatusOK {
			return fmt.Sprintf("fo-pinned through %s: %d %s", witness.URL, code, body)
		}
		return ""
	})
	if got := witness.MustInvoke("fo-kill", "/count"); got != "5" {
		t.Errorf("fo-kill after its old box came back: %s, want 5 (the copy taken over)", got)
	}
}

// checkTakenOver checks the status of a function taken over from the dead
// box: another box, the failover, and the snapshot it was restored from.
func checkTakenOver(t *testing.T, st types.FunctionStatus, dead string, from fleet.Meta) {
	t.Helper()
	ann := map[string]string{}
	if st.Annotations != nil {
		ann = *st.Annotations
	}
	if b := ann[fleet.BoxAnnotation]; b == dead || b == "" {
		t.Errorf("%s's status after the failover names box %q", st.Name, b)
	}
	if f := ann[fleet.FailoverAnnotation]; !strings.HasPrefix(f, "from "+dead+" at ") {
		t.Errorf("%s's failover annotation: %q", st.Name, f)
	}
	// A backup policy keeps backing up until the kill: the newest one
	// may be younger than from, never older.
	r := ann[fleet.RestoredAnnotation]
	at, ok := strings.CutPrefix(r, from.Kind+" taken at ")
	at, ok2 := strings.CutSuffix(at, " on box "+dead)
	taken, err := time.Parse(time.RFC3339, at)
	if !ok || !ok2 || err != nil || taken.Before(from.TakenAt.Truncate(time.Second)) {
		t.Errorf("%s's restored-from: %q, want the %s taken on box %s at %s or later", st.Name, r, from.Kind, dead, from.TakenAt.UTC().Format(time.RFC3339))
	}
}

// TestFleetBoxIsolated: the box running two functions is cut off from the
// cluster (its NATS routes cut, its API still answering). Polled directly
// on every box every 100 ms throughout, no function ever answers on two
// boxes: the box fences itself (503, its functions hibernated) before the
// one another box may run is taken over. When the routes come back it
// removes its copy of that one, and the one pinned to it serves again with
// its state (hibernated by the fence, woken by the next request).
func TestFleetBoxIsolated(t *testing.T) {
	boxes, cut := startFleetWith(t, true)
	name := func(i int) string { return fmt.Sprintf("%s%d", fleetPrefix, i+1) }
	boxes[1].Deploy(Fixture("fo-iso"))
	x := -1
	for i := range boxes {
		if boxOf(boxes[1].Status("fo-iso")) == name(i) {
			x = i
		}
	}
	if x < 0 {
		t.Fatal("fo-iso is on no box")
	}
	stay := Fixture("fo-stay")
	stay.Constraints = []string{"node.hostname == " + name(x)}
	boxes[1].Deploy(stay)
	for range 2 {
		boxes[x].MustInvoke("fo-stay", "/count")
	}
	iso := boxes[x]

	var (
		mu       sync.Mutex
		both     []string
		fencedAt time.Duration
		served   = map[int]time.Duration{}
	)
	stop, polled := make(chan struct{}), make(chan struct{})
	start := time.Now()
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			var serving []int
			for i, p := range boxes {
				if code, _ := direct(p, "fo-iso", "/count"); code == http.StatusOK {
					serving = append(serving, i)
				}
			}
			isFenced := fenced(iso)
			mu.Lock()
			if len(serving) > 1 {
				both = append(both, fmt.Sprintf("boxes %v at %s", serving, time.Since(start).Round(time.Millisecond)))
			}
			for _, i := range serving {
				if _, ok := served[i]; !ok && i != x {
					served[i] = time.Since(start)
				}
			}
			if fencedAt == 0 && isFenced {
				fencedAt = time.Since(start)
			}
			mu.Unlock()
		}
	}()
	defer func() { close(stop); <-polled }()

	cut(x, true)
	newOwner := -1
	eventually(t, 60*time.Second, func() string {
		mu.Lock()
		defer mu.Unlock()
		for i := range served {
			newOwner = i
			return ""
		}
		return fmt.Sprintf("fo-iso answers on no other box %s after %s was cut off", time.Since(start).Round(time.Second), name(x))
	})
	mu.Lock()
	fence, takeover := fencedAt, served[newOwner]
	mu.Unlock()
	t.Logf("%s cut off: fenced after %s; fo-iso answers on %s after %s (fence %s, lease %s)", name(x), fence.Round(100*time.Millisecond), name(newOwner), takeover.Round(100*time.Millisecond), fleet.FenceAfter, fleet.BoxTTL)
	if fence == 0 || fence > takeover {
		t.Errorf("%s fenced after %s, fo-iso answered elsewhere after %s: the fence must come first", name(x), fence, takeover)
	}
	if code, body := direct(iso, "fo-stay", "/count"); code != http.StatusServiceUnavailable {
		t.Errorf("fo-stay on the fenced box: %d %s, want 503", code, body)
	}
	eventually(t, 20*time.Second, func() string {
		if n := iso.Running("fo-iso") + iso.Running("fo-stay"); n != 0 {
			return fmt.Sprintf("%d containers still running on the fenced box", n)
		}
		return ""
	})

	cut(x, false)
	healed := time.Now()
	eventually(t, 60*time.Second, func() string {
		if fenced(iso) || len(iso.Containers("fo-iso")) > 0 {
			return fmt.Sprintf("%s after the routes came back: fenced %v, %d containers of fo-iso", name(x), fenced(iso), len(iso.Containers("fo-iso")))
		}
		return ""
	})
	t.Logf("%s rejoined and removed its copy of fo-iso %s after its routes came back", name(x), time.Since(healed).Round(100*time.Millisecond))
	if got := iso.MustInvoke("fo-stay", "/count"); got != "3" {
		t.Errorf("fo-stay's counter after the rejoin: %s, want 3 (its state kept through the fence)", got)
	}
	// Through the box back too (a moment's 503 with Retry-After while the
	// cluster settles after the heal is allowed).
	eventually(t, 5*time.Second, func() string {
		if code, body := iso.Invoke("fo-iso", "/count"); code != http.StatusOK {
			return fmt.Sprintf("fo-iso through %s after the rejoin: %d %s", name(x), code, body)
		}
		return ""
	})
	for i, p := range boxes {
		n := 0
		for _, st := range p.List() {
			if st.Name == "fo-iso" {
				n++
				if boxOf(st) != name(newOwner) {
					t.Errorf("list from %s: fo-iso on %s, want %s", name(i), boxOf(st), name(newOwner))
				}
			}
		}
		if n != 1 {
			t.Errorf("list from %s: fo-iso %d times", name(i), n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(both) > 0 {
		t.Errorf("fo-iso answered on two boxes at once: %v", both)
	}
}
