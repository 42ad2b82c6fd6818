package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/checkpoint"
	"github.com/faas-criu/faas-criu/policy"
)

// In-place hibernation over the fake engine: a function deployed with
// com.openfaas.criu.in-place=true hibernates and wakes through DumpInPlace
// and RestoreInPlace, never the engine's checkpoints, keeps its container
// up while it sleeps, and keeps its count across every way of sleeping.

var inPlaceLabels = map[string]string{api.LabelInPlace: "true"}

func fnKey(name string) api.Key { return api.Key{Namespace: api.DefaultNamespace, Name: name} }

// record returns the function's record as the provider holds it.
func recordOf(t *testing.T, p *Provider, name string) record {
	t.Helper()
	fn, err := p.lookup("", name)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := fn.snapshot()
	return rec
}

// inPlaceDirs lists the dump directories under the provider's state.
func inPlaceDirs(p *Provider) []string {
	dirs, _ := filepath.Glob(filepath.Join(p.cfg.StateDir, "in-place", "*", "*"))
	return dirs
}

// annotation is one of the function's status annotations.
func annotation(t *testing.T, p *Provider, name, key string) string {
	t.Helper()
	st, err := p.Status(context.Background(), "", name)
	if err != nil {
		t.Fatalf("status %s: %v", name, err)
	}
	return (*st.Annotations)[key]
}

// checkHibernatedInPlace checks what a function hibernated in place looks
// like: the record, its dump on disk, its container up with no function,
// the status.
func checkHibernatedInPlace(t *testing.T, p *Provider, eng *fakeEngine, name string) {
	t.Helper()
	rec := recordOf(t, p, name)
	d, ok := rec.inPlaceDumped(0)
	if rec.State != api.StateHibernated || !ok {
		t.Fatalf("record: state %q, dumps in place %+v; want hibernated with replica 0's dump done", rec.State, rec.InPlace)
	}
	if !checkpoint.Exists(d.Dir) || !strings.HasPrefix(d.Dir, filepath.Join(p.cfg.StateDir, "in-place")+"/") {
		t.Errorf("dump dir %q: missing or not under the state dir", d.Dir)
	}
	if len(rec.Checkpoints) != 0 {
		t.Errorf("engine checkpoints recorded: %v", rec.Checkpoints)
	}
	if got := annotation(t, p, name, api.AnnotationHibernation); got != api.HibernationInPlace {
		t.Errorf("annotation %s = %q, want %q", api.AnnotationHibernation, got, api.HibernationInPlace)
	}
}

// checkAsleepContainer checks that the function container runs its init only.
func checkAsleepContainer(t *testing.T, p *Provider, eng *fakeEngine, name string) {
	t.Helper()
	if st, asleep, _ := eng.inPlaceState(functionID(t, p, name)); st != "running" || !asleep {
		t.Errorf("container %s: state %q asleep %v, want running with no function", name, st, asleep)
	}
}

// Every way a function goes to sleep dumps it in place, and the wake
// restores it in place, twice over, the count carried on; no engine
// checkpoint or restore is ever asked for.
func TestInPlaceRoundTrip(t *testing.T) {
	k := fnKey("fn")
	cases := []struct {
		name  string
		sleep func(p *Provider) error
	}{
		{"scale to zero", func(p *Provider) error { return p.Scale(context.Background(), "", "fn", 0) }},
		{"idle policy", func(p *Provider) error {
			return policySleep(p, k, api.StrategyCheckpoint, "idle", false)
		}},
		{"memory budget", func(p *Provider) error {
			return policySleep(p, k, api.StrategyCheckpoint, policy.ReasonBudget, true)
		}},
		{"pause then checkpoint", func(p *Provider) error {
			if err := policySleep(p, k, api.StrategyPause, "idle", false); err != nil {
				return err
			}
			return policySleep(p, k, api.StrategyCheckpoint, "idle", false)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, eng := newTestProvider(t)
			deploy(t, p, "fn", inPlaceLabels)
			count := 0
			for round := 1; round <= 2; round++ {
				count++
				mustInvoke(t, p, "fn", count)
				if err := c.sleep(p); err != nil {
					t.Fatalf("round %d: sleep: %v", round, err)
				}
				checkHibernatedInPlace(t, p, eng, "fn")
				checkAsleepContainer(t, p, eng, "fn")
				count++
				mustInvoke(t, p, "fn", count)
				if got := state(t, p, "fn"); got != api.StateAwake {
					t.Fatalf("round %d: state %q after a request, want awake", round, got)
				}
				if got := annotation(t, p, "fn", api.AnnotationLastWake); !strings.HasPrefix(got, "in-place ") {
					t.Errorf("round %d: last wake %q, want from in-place", round, got)
				}
				if got := annotation(t, p, "fn", api.AnnotationHibernation); got != "" {
					t.Errorf("round %d: annotation %s = %q while awake, want none", round, api.AnnotationHibernation, got)
				}
				if rec := recordOf(t, p, "fn"); len(rec.InPlace) != 0 {
					t.Errorf("round %d: the record keeps the dump after the wake: %+v", round, rec.InPlace)
				}
				if dirs := inPlaceDirs(p); len(dirs) != 0 {
					t.Errorf("round %d: dumps left on disk after the wake: %v", round, dirs)
				}
				if n, m := eng.count("dumpInPlace"), eng.count("restoreInPlace"); n != round || m != round {
					t.Errorf("round %d: %d dumps and %d restores in place, want %d each", round, n, m, round)
				}
			}
			if n, m := eng.count("checkpoint"), eng.count("restore"); n != 0 || m != 0 {
				t.Errorf("%d engine checkpoints and %d engine restores of an in-place function, want none", n, m)
			}
			// The wake's path asks the engine nothing more than the restore.
			if n := eng.count("inPlaceRunning"); n != 0 {
				t.Errorf("%d InPlaceRunning calls during sleeps and wakes, want none", n)
			}
		})
	}
}

// policySleep is a policy's sleep, tried again while the function is busy
// (the wake that served the last request may still hold it a moment, and a
// policy then tries at its next tick).
func policySleep(p *Provider, k api.Key, how, reason string, inflight bool) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := p.Fleet().Sleep(context.Background(), k, how, reason, inflight, time.Time{})
		if !errors.Is(err, policy.ErrBusy) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Its containers run under faas-criu-init; a function without the label
// does not, and changing the label recreates the containers.
func TestInPlaceContainersUnderInit(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	if eng.initOf(t, functionID(t, p, "fn")) {
		t.Fatal("a function without the label got an Init container")
	}
	if err := p.Update(context.Background(), deployment("fn", inPlaceLabels)); err != nil {
		t.Fatal(err)
	}
	if !eng.initOf(t, functionID(t, p, "fn")) {
		t.Fatal("the update to in-place=true kept the container made without Init")
	}
	mustInvoke(t, p, "fn", 1)
	if err := p.Update(context.Background(), deployment("fn", map[string]string{api.LabelInPlace: "false"})); err != nil {
		t.Fatal(err)
	}
	if eng.initOf(t, functionID(t, p, "fn")) {
		t.Fatal("the update to in-place=false kept the Init container")
	}
	// Absent and "false" are the same containers.
	creates := eng.count("create")
	if err := p.Update(context.Background(), deployment("fn", nil)); err != nil {
		t.Fatal(err)
	}
	if eng.initOf(t, functionID(t, p, "fn")) || eng.count("create") != creates {
		t.Errorf("dropping in-place=false recreated containers (%d creates, %d before)", eng.count("create"), creates)
	}
}

// initOf says whether the function container named runs under the init.
func (e *fakeEngine) initOf(t *testing.T, name string) bool {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(name)
	if err != nil {
		t.Fatal(err)
	}
	return c.spec.Init
}

// A failed dump leaves the function awake and serving, with no dump kept
// or recorded, and the error says so; a failed restore keeps the dump on
// disk and in the record, the function hibernated, and the next request
// wakes it with its state.
func TestInPlaceFailures(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", inPlaceLabels)
	mustInvoke(t, p, "fn", 1)

	eng.failNext("dumpInPlace", errors.New("injected dump failure"))
	err := p.Scale(context.Background(), "", "fn", 0)
	if err == nil || !strings.Contains(err.Error(), "injected dump failure") || !strings.Contains(err.Error(), "keeps running") {
		t.Fatalf("scale to zero with a failing dump: %v, want the failure and that it keeps running", err)
	}
	if got := state(t, p, "fn"); got != api.StateAwake {
		t.Errorf("state %q after a failed dump, want awake", got)
	}
	if rec := recordOf(t, p, "fn"); len(rec.InPlace) != 0 {
		t.Errorf("a failed dump is recorded: %+v", rec.InPlace)
	}
	if dirs := inPlaceDirs(p); len(dirs) != 0 {
		t.Errorf("a failed dump left %v", dirs)
	}
	mustInvoke(t, p, "fn", 2)

	scaleZero(t, p)
	eng.failNext("restoreInPlace", errors.New("injected restore failure"))
	if _, err := invoke(p, "fn"); err == nil {
		t.Fatal("a request answered though the restore failed")
	}
	checkHibernatedInPlace(t, p, eng, "fn")
	checkAsleepContainer(t, p, eng, "fn")
	err = p.Scale(context.Background(), "", "fn", 1)
	if err != nil {
		t.Fatalf("scale up after the failed restore: %v", err)
	}
	mustInvoke(t, p, "fn", 3)
	if n := eng.count("restore"); n != 0 {
		t.Errorf("%d engine restores, want none", n)
	}
}

// A scale-up's failed restore reaches the caller, and leaves it hibernated.
func TestInPlaceFailedRestoreReachesScaleUp(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", inPlaceLabels)
	mustInvoke(t, p, "fn", 1)
	scaleZero(t, p)
	eng.failNext("restoreInPlace", errors.New("injected restore failure"))
	err := p.Scale(context.Background(), "", "fn", 1)
	if err == nil || !strings.Contains(err.Error(), "injected restore failure") || !strings.Contains(err.Error(), "dump is kept") {
		t.Fatalf("scale up with a failing restore: %v, want the failure and that the dump is kept", err)
	}
	checkHibernatedInPlace(t, p, eng, "fn")
	mustInvoke(t, p, "fn", 2)
}

// The deep tier stops the function container and the sandbox and keeps the
// dump; the wake starts the sandbox, and RestoreInPlace the container.
func TestInPlaceDeepThenWake(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", inPlaceLabels)
	mustInvoke(t, p, "fn", 1)
	mustInvoke(t, p, "fn", 2)
	scaleZero(t, p)
	if err := p.Fleet().Deepen(context.Background(), fnKey("fn")); err != nil {
		t.Fatalf("deepen: %v", err)
	}
	if got := tier(t, p, "fn"); got != api.TierDeep {
		t.Errorf("tier %q, want deep", got)
	}
	if got := eng.sandboxStates(); !allIn(got, "exited") {
		t.Errorf("sandboxes %v, want exited", got)
	}
	if got := eng.functionContainers(); !allIn(got, "exited") {
		t.Errorf("function containers %v, want exited", got)
	}
	checkHibernatedInPlace(t, p, eng, "fn")

	// A provider restart keeps it deep, with its dump.
	_ = p.Close()
	p = startTestProvider(t, eng, p.cfg.StateDir)
	if got := tier(t, p, "fn"); got != api.TierDeep {
		t.Errorf("tier %q after a provider restart, want deep", got)
	}
	mustInvoke(t, p, "fn", 3)
	if got := eng.sandboxStates(); !allIn(got, "running") {
		t.Errorf("sandboxes %v after the wake, want running", got)
	}
	if n, m := eng.count("restoreInPlace"), eng.count("restore"); n != 1 || m != 0 {
		t.Errorf("%d restores in place and %d engine restores, want 1 and 0", n, m)
	}
}

// The engine restarting (every container stopped) leaves a function
// hibernated in place hibernated, dump kept, and its wake keeps its state;
// an awake in-place function follows today's rules (started afresh, its
// lost state said).
func TestInPlaceEngineRestart(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "asleep", inPlaceLabels)
	deploy(t, p, "awake", inPlaceLabels)
	mustInvoke(t, p, "asleep", 1)
	mustInvoke(t, p, "awake", 1)
	if err := p.Scale(context.Background(), "", "asleep", 0); err != nil {
		t.Fatal(err)
	}
	eng.restartEngine()
	for _, name := range []string{"asleep", "awake"} {
		fn, _ := p.lookup("", name)
		p.reconcile(context.Background(), fn)
	}
	checkHibernatedInPlace(t, p, eng, "asleep")
	if st, _, waits := eng.inPlaceState(functionID(t, p, "asleep")); st != "exited" || !waits {
		t.Errorf("asleep's container: %q (init waiting %v), want exited and left so", st, waits)
	}
	eventually(t, "awake serving again", func() bool {
		n, err := invoke(p, "awake")
		return err == nil && n == 1
	})
	if got := annotation(t, p, "awake", api.AnnotationStateLost); got == "" {
		t.Error("the awake function restarted afresh, but its status does not say its state was lost")
	}
	mustInvoke(t, p, "asleep", 2)
}

// restartEngine plays an engine restart without live-restore: every
// container stops.
func (e *fakeEngine) restartEngine() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.containers {
		e.stop(c)
		c.state = "exited"
	}
}

// A provider started again settles each state the record can hold for a
// dump in place against what the container's init says.
func TestInPlaceProviderRestart(t *testing.T) {
	cases := []struct {
		name string
		// before stops the first provider as the case needs, given the
		// function container's ID; it may rewrite the record.
		before    func(t *testing.T, p *Provider, eng *fakeEngine, id string)
		wantState string
		wantDump  bool // the dump is kept on disk and in the record
		wantCount int  // what the next request answers
		wantLost  bool // the status says the state was lost
	}{
		{"hibernated in place", func(t *testing.T, p *Provider, eng *fakeEngine, id string) {
			scaleZero(t, p)
		}, api.StateHibernated, true, 3, false},
		{"restored, not yet recorded", func(t *testing.T, p *Provider, eng *fakeEngine, id string) {
			scaleZero(t, p)
			rec := recordOf(t, p, "fn")
			if err := eng.RestoreInPlace(context.Background(), id, rec.InPlace[0].Dir); err != nil {
				t.Fatal(err)
			}
			// The wake had recorded it awake before it restored.
			rec.State, rec.Replicas = api.StateAwake, 1
			saveRecord(t, p, rec)
		}, api.StateAwake, false, 3, false},
		{"restored, the record still hibernated", func(t *testing.T, p *Provider, eng *fakeEngine, id string) {
			scaleZero(t, p)
			rec := recordOf(t, p, "fn")
			if err := eng.RestoreInPlace(context.Background(), id, rec.InPlace[0].Dir); err != nil {
				t.Fatal(err)
			}
		}, api.StateAwake, false, 3, false},
		{"intent, the dump never ended the function", func(t *testing.T, p *Provider, eng *fakeEngine, id string) {
			rec := recordOf(t, p, "fn")
			dir := filepath.Join(p.inPlaceRoot(id), "hib-1")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			rec.InPlace = map[int]InPlaceDump{0: {Dir: dir}}
			saveRecord(t, p, rec)
		}, api.StateAwake, false, 3, false},
		{"intent, the dump finished", func(t *testing.T, p *Provider, eng *fakeEngine, id string) {
			rec := recordOf(t, p, "fn")
			dir := filepath.Join(p.inPlaceRoot(id), "hib-1")
			if err := eng.DumpInPlace(context.Background(), id, dir); err != nil {
				t.Fatal(err)
			}
			rec.InPlace = map[int]InPlaceDump{0: {Dir: dir}}
			saveRecord(t, p, rec)
		}, api.StateAwake, false, 3, false},
		{"intent, the dump cut short", func(t *testing.T, p *Provider, eng *fakeEngine, id string) {
			rec := recordOf(t, p, "fn")
			dir := filepath.Join(p.inPlaceRoot(id), "hib-1")
			if err := eng.DumpInPlace(context.Background(), id, dir); err != nil {
				t.Fatal(err)
			}
			// What a dump that did not finish leaves: no inventory yet.
			_ = os.Remove(filepath.Join(dir, "inventory.img"))
			rec.InPlace = map[int]InPlaceDump{0: {Dir: dir}}
			saveRecord(t, p, rec)
		}, api.StateAwake, false, 1, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, eng := newTestProvider(t)
			deploy(t, p, "fn", inPlaceLabels)
			mustInvoke(t, p, "fn", 1)
			mustInvoke(t, p, "fn", 2)
			id := functionID(t, p, "fn")
			c.before(t, p, eng, id)
			_ = p.Close()
			p = startTestProvider(t, eng, p.cfg.StateDir)
			rec := recordOf(t, p, "fn")
			if rec.State != c.wantState {
				t.Errorf("state %q after the restart, want %q", rec.State, c.wantState)
			}
			_, dumped := rec.inPlaceDumped(0)
			if dumped != c.wantDump || (len(inPlaceDirs(p)) > 0) != c.wantDump {
				t.Errorf("dump recorded %v, on disk %v; want %v", rec.InPlace, inPlaceDirs(p), c.wantDump)
			}
			if !c.wantDump && len(rec.InPlace) != 0 {
				t.Errorf("entries left in the record: %+v", rec.InPlace)
			}
			mustInvoke(t, p, "fn", c.wantCount)
			lost := annotation(t, p, "fn", api.AnnotationStateLost) != ""
			if lost != c.wantLost {
				t.Errorf("state-lost annotation %v, want %v", lost, c.wantLost)
			}
			if c.wantLost && eng.count("dropInPlace") != 1 {
				t.Errorf("%d DropInPlace calls, want 1", eng.count("dropInPlace"))
			}
			if n := eng.count("restore"); n != 0 {
				t.Errorf("%d engine restores, want none", n)
			}
		})
	}
}

func scaleZero(t *testing.T, p *Provider) {
	t.Helper()
	if err := p.Scale(context.Background(), "", "fn", 0); err != nil {
		t.Fatal(err)
	}
}

// saveRecord replaces the function's record, on disk and in memory (which
// the provider's Close writes again).
func saveRecord(t *testing.T, p *Provider, rec record) {
	t.Helper()
	if err := p.commit(mustLookup(t, p), &rec); err != nil {
		t.Fatal(err)
	}
}

func functionID(t *testing.T, p *Provider, name string) string {
	t.Helper()
	fn, err := p.lookup("", name)
	if err != nil {
		t.Fatal(err)
	}
	r := fn.replicaAt(0)
	if r == nil {
		t.Fatal("no replica 0")
	}
	return r.id
}

// The label is "true" or "false", anything else refused as invalid naming
// the label; "true" on an engine that cannot hibernate in place is refused
// too, with why.
func TestInPlaceLabelChecked(t *testing.T) {
	able := &Provider{cfg: Config{Namespaces: []string{api.DefaultNamespace}}, engineInfo: EngineInfo{InPlace: true}}
	unable := &Provider{cfg: Config{Namespaces: []string{api.DefaultNamespace}}}
	cases := []struct {
		value  string
		p      *Provider
		ok     bool
		reason string
	}{
		{"true", able, true, ""},
		{"false", able, true, ""},
		{"false", unable, true, ""},
		{"TRUE", able, false, "want true or false"},
		{"1", able, false, "want true or false"},
		{"yes", able, false, "want true or false"},
		{"", able, false, "want true or false"},
		{"true", unable, false, "cannot hibernate functions in place"},
	}
	for _, c := range cases {
		dep := types.FunctionDeployment{Service: "f", Image: "img", Labels: &map[string]string{api.LabelInPlace: c.value}}
		_, err := c.p.checkDefinition(context.Background(), &dep)
		if c.ok && err != nil {
			t.Errorf("in-place %q (engine able %v) refused: %v", c.value, c.p.engineInfo.InPlace, err)
		}
		if !c.ok && (!errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), api.LabelInPlace) || !strings.Contains(err.Error(), c.reason)) {
			t.Errorf("in-place %q (engine able %v): error %v, want api.ErrInvalid naming the label and %q", c.value, c.p.engineInfo.InPlace, err, c.reason)
		}
	}
}

// A deploy and an update are refused on an engine without in-place
// support, and nothing is created.
func TestInPlaceRefusedWithoutEngineSupport(t *testing.T) {
	eng := newFakeEngine(t, freePort(t))
	eng.addImage(testImage)
	eng.noInPlace = true
	p := startTestProvider(t, eng, t.TempDir())
	if err := p.Deploy(context.Background(), deployment("fn", inPlaceLabels)); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("deploy: %v, want api.ErrInvalid", err)
	}
	if n := eng.containerCount(); n != 0 {
		t.Errorf("a refused deploy created %d containers", n)
	}
	deploy(t, p, "fn", nil)
	if err := p.Update(context.Background(), deployment("fn", inPlaceLabels)); !errors.Is(err, api.ErrInvalid) {
		t.Fatalf("update: %v, want api.ErrInvalid", err)
	}
}

// Backups of an awake in-place function are the engine's checkpoints of
// the whole container (init and function), as for any running container;
// one hibernated in place is not backed up (nothing changed since).
func TestInPlaceBackup(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", inPlaceLabels)
	mustInvoke(t, p, "fn", 1)
	eventually(t, "ready", func() bool {
		return annotation(t, p, "fn", api.AnnotationState) == api.StateAwake && p.status(mustLookup(t, p)).AvailableReplicas == 1
	})
	if err := p.Fleet().Backup(context.Background(), fnKey("fn"), 2); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if n := eng.count("checkpoint"); n != 1 {
		t.Fatalf("%d engine checkpoints for the backup, want 1", n)
	}
	scaleZero(t, p)
	if err := p.Fleet().Backup(context.Background(), fnKey("fn"), 2); err != nil {
		t.Fatalf("backup while hibernated in place: %v", err)
	}
	if n := eng.count("checkpoint"); n != 1 {
		t.Errorf("%d engine checkpoints, want still 1: a function hibernated in place is not backed up", n)
	}
	checkHibernatedInPlace(t, p, eng, "fn")
}

func mustLookup(t *testing.T, p *Provider) *function {
	t.Helper()
	fn, err := p.lookup("", "fn")
	if err != nil {
		t.Fatal(err)
	}
	return fn
}

// providerTarget is a migration target that is another provider here.
type providerTarget struct{ p *Provider }

func (t providerTarget) Check(context.Context) error { return nil }
func (t providerTarget) HasImage(ctx context.Context, id string) (bool, error) {
	return t.p.HasImage(ctx, id)
}
func (t providerTarget) SendImage(ctx context.Context, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
func (t providerTarget) Import(ctx context.Context, r io.Reader, replace bool) error {
	_, err := t.p.Import(ctx, r, replace)
	return err
}

// A migration of a function hibernated in place wakes it in place first,
// then takes the engine's checkpoint of its whole container, which the
// target restores, count and all; the target's next hibernation is in
// place again.
func TestInPlaceMigration(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", inPlaceLabels)
	mustInvoke(t, p, "fn", 1)
	mustInvoke(t, p, "fn", 2)
	scaleZero(t, p)

	eng2 := newFakeEngine(t, eng.port)
	eng2.addImage(testImage)
	cfg := p.cfg
	cfg.StateDir, cfg.Subnet, cfg.ContainerdTmp = t.TempDir(), "127.78.0.0/24", t.TempDir()
	p2, err := New(context.Background(), cfg, eng2, WithCRIU(checkpoint.Capabilities{Available: true, NonRootFunctions: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p2.Close() })

	var log bytes.Buffer
	err = p.Migrate(context.Background(), "", "fn", providerTarget{p2}, api.MigrateOptions{}, func(pr api.Progress) {
		b, _ := json.Marshal(pr)
		log.Write(append(b, '\n'))
	})
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, log.String())
	}
	if n, m := eng.count("restoreInPlace"), eng.count("checkpoint"); n != 1 || m != 1 {
		t.Errorf("source: %d restores in place and %d engine checkpoints, want 1 (wake first) and 1 (the move)", n, m)
	}
	if _, err := p.lookup("", "fn"); !IsNotFound(err) {
		t.Errorf("the function is still here after the move: %v", err)
	}
	mustInvoke(t, p2, "fn", 3)
	if n := eng2.count("restore"); n != 1 {
		t.Errorf("target: %d engine restores, want 1", n)
	}
	if !eng2.initOf(t, functionID(t, p2, "fn")) {
		t.Error("the target's container does not run under faas-criu-init")
	}
	if err := p2.Scale(context.Background(), "", "fn", 0); err != nil {
		t.Fatal(err)
	}
	checkHibernatedInPlace(t, p2, eng2, "fn")
	mustInvoke(t, p2, "fn", 4)
}

// A dump that fails on the second of two replicas restores the first in
// place: the function stays awake on both, nothing recorded or kept.
func TestInPlaceFailedDumpRollsBack(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", map[string]string{api.LabelInPlace: "true", labelScaleMin: "2"})
	eventually(t, "2 available replicas", func() bool { return p.status(mustLookup(t, p)).AvailableReplicas == 2 })
	eng.failNext("dumpInPlace", nil, errors.New("injected dump failure"))
	if err := p.Scale(context.Background(), "", "fn", 0); err == nil || !strings.Contains(err.Error(), "injected dump failure") {
		t.Fatalf("scale to zero: %v, want the second dump's failure", err)
	}
	if n, m := eng.count("dumpInPlace"), eng.count("restoreInPlace"); n != 1 || m != 1 {
		t.Errorf("%d dumps and %d restores in place, want the first replica dumped and restored", n, m)
	}
	if rec := recordOf(t, p, "fn"); rec.State != api.StateAwake || len(rec.InPlace) != 0 {
		t.Errorf("record: state %q, dumps %+v; want awake with none", rec.State, rec.InPlace)
	}
	if dirs := inPlaceDirs(p); len(dirs) != 0 {
		t.Errorf("dumps left on disk: %v", dirs)
	}
	eventually(t, "2 available replicas again", func() bool { return p.status(mustLookup(t, p)).AvailableReplicas == 2 })
}

// A function without the label hibernates through the engine, and its
// status says so.
func TestHibernationAnnotationCheckpoint(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	scaleZero(t, p)
	if got := annotation(t, p, "fn", api.AnnotationHibernation); got != api.HibernationCheckpoint {
		t.Errorf("annotation %s = %q, want %q", api.AnnotationHibernation, got, api.HibernationCheckpoint)
	}
	if n, m := eng.count("checkpoint"), eng.count("dumpInPlace"); n != 1 || m != 0 {
		t.Errorf("%d engine checkpoints and %d dumps in place, want 1 and 0", n, m)
	}
	mustInvoke(t, p, "fn", 2)
}

// A hibernation in place offers nothing offsite (its dump restores only
// into its own container); a backup of the awake function, an engine
// checkpoint of the whole container, is offered.
func TestInPlaceOffsite(t *testing.T) {
	p, _ := newTestProvider(t)
	off := &keptOffsite{}
	p.SetOffsite(off)
	deploy(t, p, "fn", inPlaceLabels)
	mustInvoke(t, p, "fn", 1)
	eventually(t, "ready", func() bool { return p.status(mustLookup(t, p)).AvailableReplicas == 1 })
	if err := p.Fleet().Backup(context.Background(), fnKey("fn"), 1); err != nil {
		t.Fatal(err)
	}
	scaleZero(t, p)
	off.mu.Lock()
	defer off.mu.Unlock()
	if len(off.offers) != 1 || off.offers[0].kind != OffsiteBackup {
		t.Errorf("offers %+v, want the backup only", off.offers)
	}
}

// A health check that raced the dump (a reconciliation's, started before
// the sleep withdrew the replica and answered by the function before it was
// dumped) does not leave the replica published: its container runs on, so
// its status does not take it out. Seen on a real engine: requests after
// the scale to zero went to the dumped function (connection refused).
func TestInPlaceHealthCheckRacingTheDump(t *testing.T) {
	eng := newFakeEngine(t, freePort(t))
	eng.addImage(testImage)
	var p *Provider
	p = startTestProvider(t, eng, t.TempDir(), WithBeforeCheckpoint(func(string) {
		fn := mustLookup(t, p)
		r := fn.replicaAt(0)
		// Once the dump's intent is recorded, a health check that passes
		// does not publish the replica.
		if p.markReady(context.Background(), fn, r) {
			t.Error("a health check during the dump published the replica")
		}
		// One that passed before the intent did: what it left.
		fn.mu.Lock()
		r.ready = true
		fn.refreshEndpointsLocked(p.cfg.FunctionPort)
		fn.mu.Unlock()
	}))
	deploy(t, p, "fn", inPlaceLabels)
	mustInvoke(t, p, "fn", 1)
	scaleZero(t, p)
	if eps := *mustLookup(t, p).endpoints.Load(); len(eps) != 0 {
		t.Fatalf("%d endpoints of a function hibernated in place", len(eps))
	}
	// And one that starts after the dump is refused.
	fn := mustLookup(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if p.markReady(ctx, fn, fn.replicaAt(0)) {
		t.Error("a replica hibernated in place was published by a health check")
	}
	mustInvoke(t, p, "fn", 2)
}

// Both in place and hibernating with requests in flight is refused: a dump
// in place does not lock the network, so those requests would be reset.
func TestInPlaceRefusedWithHibernateInflight(t *testing.T) {
	p := &Provider{cfg: Config{Namespaces: []string{api.DefaultNamespace}}, engineInfo: EngineInfo{InPlace: true}}
	cases := []struct {
		inflight string
		ok       bool
	}{
		{"true", false},
		{"1", false},
		{"false", true},
		{"", true},
	}
	for _, c := range cases {
		labels := map[string]string{api.LabelInPlace: "true"}
		if c.inflight != "" {
			labels[api.LabelHibernateInflight] = c.inflight
		}
		dep := types.FunctionDeployment{Service: "f", Image: "img", Labels: &labels}
		_, err := p.checkDefinition(context.Background(), &dep)
		if c.ok && err != nil {
			t.Errorf("hibernate-inflight %q: refused: %v", c.inflight, err)
		}
		if !c.ok && (!errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), api.LabelHibernateInflight)) {
			t.Errorf("hibernate-inflight %q: error %v, want api.ErrInvalid naming %s", c.inflight, err, api.LabelHibernateInflight)
		}
	}
}

// A sleep of an in-place function never dumps it with a request in flight,
// even one that asks to keep them (memory pressure): it drains, and when
// one is still served after the drain it refuses as busy and the function
// stays awake and serving.
func TestInPlaceNeverDumpsARequestInFlight(t *testing.T) {
	for _, freeze := range []bool{false, true} {
		t.Run(fmt.Sprintf("freeze=%v", freeze), func(t *testing.T) {
			p, eng := newTestProvider(t)
			p.cfg.DrainTimeout = 50 * time.Millisecond
			deploy(t, p, "fn", inPlaceLabels)
			mustInvoke(t, p, "fn", 1)
			fn, err := p.lookup("", "fn")
			if err != nil {
				t.Fatal(err)
			}
			fn.mu.Lock()
			r := fn.replicas[0]
			fn.mu.Unlock()
			r.load.inflight.Add(1) // a request the replica is serving
			err = p.Fleet().Sleep(context.Background(), fnKey("fn"), api.StrategyCheckpoint, policy.ReasonBudget, freeze, time.Time{})
			if !errors.Is(err, policy.ErrBusy) {
				t.Fatalf("sleep with a request in flight: %v, want policy.ErrBusy", err)
			}
			if n := eng.count("dumpInPlace"); n != 0 {
				t.Errorf("%d dumps in place with a request in flight, want none", n)
			}
			if got := state(t, p, "fn"); got != api.StateAwake {
				t.Errorf("state %q after the refused sleep, want awake", got)
			}
			r.load.inflight.Add(-1)
			mustInvoke(t, p, "fn", 2)
			if err := policySleep(p, fnKey("fn"), api.StrategyCheckpoint, policy.ReasonBudget, freeze); err != nil {
				t.Fatalf("sleep once the request ended: %v", err)
			}
			checkHibernatedInPlace(t, p, eng, "fn")
		})
	}
}

// A removed container takes its directory of dumps in place with it: a
// dump restores into no other container. Here the function hibernated in
// place, woke (its dump gone, its directory left) and hibernated again, and
// is deleted, then another is deleted awake after one wake.
func TestInPlaceDirectoriesGoWithTheirContainers(t *testing.T) {
	p, _ := newTestProvider(t)
	roots := func() []string {
		dirs, _ := filepath.Glob(filepath.Join(p.cfg.StateDir, "in-place", "*"))
		return dirs
	}
	for _, asleep := range []bool{true, false} {
		deploy(t, p, "fn", inPlaceLabels)
		mustInvoke(t, p, "fn", 1)
		scaleZero(t, p)
		mustInvoke(t, p, "fn", 2)
		if asleep {
			scaleZero(t, p)
		}
		if len(roots()) == 0 {
			t.Fatalf("asleep %v: no directory of dumps in place before the delete", asleep)
		}
		if err := p.Delete(context.Background(), "", "fn"); err != nil {
			t.Fatalf("asleep %v: delete: %v", asleep, err)
		}
		if dirs := roots(); len(dirs) != 0 {
			t.Errorf("asleep %v: directories left after the delete: %v", asleep, dirs)
		}
	}
}
