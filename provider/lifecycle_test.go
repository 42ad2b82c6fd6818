package provider

import (
	"context"
	"errors"
	"fmt"
	"github.com/faas-criu/faas-criu/api"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/checkpoint"
)

// The lifecycle over the fake engine: no Docker, no CRIU, no root.

const (
	testImage     = "fake/fn:1"
	labelStrategy = "com.openfaas.criu.strategy" // as users write it
	labelScaleMin = "com.openfaas.scale.min"
)

// newTestProvider starts a provider over a fake engine, with CRIU said to
// work. Replicas get loopback addresses (127.77.0.0/24) on a free port.
func newTestProvider(t *testing.T) (*Provider, *fakeEngine) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	eng := newFakeEngine(t, port)
	eng.addImage(testImage)
	return startTestProvider(t, eng, t.TempDir()), eng
}

func startTestProvider(t *testing.T, eng *fakeEngine, stateDir string, opts ...Option) *Provider {
	t.Helper()
	cfg := Config{
		StateDir:      stateDir,
		Network:       "fake",
		Subnet:        "127.77.0.0/24",
		FunctionPort:  eng.port,
		ReadyTimeout:  5 * time.Second,
		WakeTimeout:   5 * time.Second,
		DrainTimeout:  time.Second,
		ContainerdTmp: t.TempDir(),
	}
	p, err := New(context.Background(), cfg, eng, append([]Option{WithCRIU(checkpoint.Capabilities{Available: true, NonRootFunctions: true})}, opts...)...)
	if err != nil {
		t.Fatalf("new provider: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func deployment(name string, labels map[string]string) types.FunctionDeployment {
	return types.FunctionDeployment{Service: name, Image: testImage, Labels: &labels}
}

func deploy(t *testing.T, p *Provider, name string, labels map[string]string) {
	t.Helper()
	if err := p.Deploy(context.Background(), deployment(name, labels)); err != nil {
		t.Fatalf("deploy %s: %v", name, err)
	}
}

// invoke sends one request to a function, waking it if needed, and returns
// the function's request count.
func invoke(p *Provider, name string) (int, error) {
	return invokePath(p, name, "/")
}

// invokePath is invoke of a path of the function.
func invokePath(p *Provider, name, path string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	addr, release, err := p.Acquire(ctx, "", name)
	if err != nil {
		return 0, err
	}
	defer release()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(string(b))
}

// mustInvoke invokes and checks the function's count.
func mustInvoke(t *testing.T, p *Provider, name string, want int) {
	t.Helper()
	got, err := invoke(p, name)
	if err != nil {
		t.Fatalf("invoke %s: %v", name, err)
	}
	if got != want {
		t.Fatalf("invoke %s: count %d, want %d", name, got, want)
	}
}

// state is the sleep state the function's status reports.
func state(t *testing.T, p *Provider, name string) string {
	t.Helper()
	st, err := p.Status(context.Background(), "", name)
	if err != nil {
		t.Fatalf("status %s: %v", name, err)
	}
	return (*st.Annotations)[api.AnnotationState]
}

// states counts the function containers of the fake engine by state.
func states(eng *fakeEngine) map[string]int {
	out := map[string]int{}
	for _, s := range eng.functionContainers() {
		out[s]++
	}
	return out
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeployStartsReplicas(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "two", map[string]string{labelScaleMin: "2"})
	if got := states(eng); got["running"] != 2 || len(got) != 1 {
		t.Fatalf("function containers by state: %v, want 2 running", got)
	}
	if n := eng.containerCount(); n != 4 {
		t.Errorf("%d containers, want 4 (2 replicas, each with its sandbox)", n)
	}
	eventually(t, "2 available replicas", func() bool {
		st, err := p.Status(context.Background(), "", "two")
		return err == nil && st.AvailableReplicas == 2 && st.Replicas == 2
	})
	mustInvoke(t, p, "two", 1)

	err := p.Deploy(context.Background(), deployment("two", nil))
	if !errors.Is(err, api.ErrExists) {
		t.Errorf("second deploy: %v, want api.ErrExists", err)
	}
}

func TestDeployFailures(t *testing.T) {
	cases := []struct {
		name    string
		dep     types.FunctionDeployment
		fail    string // engine operation made to fail
		wantErr error
	}{
		{"missing image", types.FunctionDeployment{Service: "fn", Image: "fake/none:1"}, "", api.ErrInvalid},
		{"bad scale label", deployment("fn", map[string]string{labelScaleMin: "many"}), "", api.ErrInvalid},
		{"bad strategy label", deployment("fn", map[string]string{labelStrategy: "freeze"}), "", api.ErrInvalid},
		{"container cannot start", deployment("fn", nil), "start", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, eng := newTestProvider(t)
			if c.fail != "" {
				// The sandbox starts; the function container does not.
				eng.failNext(c.fail, nil, errors.New("injected"))
			}
			err := p.Deploy(context.Background(), c.dep)
			if err == nil || (c.wantErr != nil && !errors.Is(err, c.wantErr)) {
				t.Fatalf("deploy: %v, want an error (%v)", err, c.wantErr)
			}
			if n := eng.containerCount(); n != 0 {
				t.Errorf("a failed deploy left %d containers", n)
			}
			if _, err := p.Status(context.Background(), "", "fn"); !IsNotFound(err) {
				t.Errorf("status after a failed deploy: %v, want not found", err)
			}
		})
	}
}

func TestScaleUpAndDown(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	for _, n := range []int{3, 1, 2} {
		if err := p.Scale(context.Background(), "", "fn", n); err != nil {
			t.Fatalf("scale to %d: %v", n, err)
		}
		if got := states(eng); got["running"] != n || len(got) != 1 {
			t.Fatalf("after scaling to %d: function containers by state %v", n, got)
		}
		if c := eng.containerCount(); c != 2*n {
			t.Fatalf("after scaling to %d: %d containers, want %d (each replica with its sandbox)", n, c, 2*n)
		}
		eventually(t, fmt.Sprintf("%d available replicas", n), func() bool {
			st, _ := p.Status(context.Background(), "", "fn")
			return st.AvailableReplicas == uint64(n)
		})
	}
	for _, bad := range []int{-1, 1001} {
		if err := p.Scale(context.Background(), "", "fn", bad); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("scale to %d: %v, want api.ErrInvalid", bad, err)
		}
	}
}

// Each strategy, on a scale to zero, then a request: the state it sleeps
// in, what the engine holds meanwhile, and whether the memory survives.
func TestSleepByStrategy(t *testing.T) {
	cases := []struct {
		strategy string
		// deepen is the strategy a policy applies later ("" for none).
		deepen     string
		wantState  string
		wantEngine map[string]int // function containers by state, asleep
		wantCount  int            // the count the request after the wake sees
		restores   int
	}{
		{api.StrategyCheckpoint, "", api.StateHibernated, map[string]int{"exited": 1}, 4, 1},
		{api.StrategyPause, "", api.StatePaused, map[string]int{"paused": 1}, 4, 0},
		{api.StrategyPauseThenCheckpoint, "", api.StatePaused, map[string]int{"paused": 1}, 4, 0},
		{api.StrategyPauseThenCheckpoint, api.StrategyCheckpoint, api.StateHibernated, map[string]int{"exited": 1}, 4, 1},
		// The OpenFaaS CE way: the replicas go, and so does the state.
		{api.StrategyRemove, "", "awake", map[string]int{}, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.strategy+"+"+c.deepen, func(t *testing.T) {
			p, eng := newTestProvider(t)
			deploy(t, p, "fn", map[string]string{labelStrategy: c.strategy})
			for i := 1; i <= 3; i++ {
				mustInvoke(t, p, "fn", i)
			}
			if err := p.Scale(context.Background(), "", "fn", 0); err != nil {
				t.Fatalf("scale to zero: %v", err)
			}
			if c.deepen != "" {
				k := api.Key{Namespace: api.DefaultNamespace, Name: "fn"}
				if err := p.Fleet().Sleep(context.Background(), k, c.deepen, "idle", false, time.Time{}); err != nil {
					t.Fatalf("policy sleep (%s): %v", c.deepen, err)
				}
			}
			if got := state(t, p, "fn"); got != c.wantState {
				t.Errorf("state %q, want %q", got, c.wantState)
			}
			if got := states(eng); fmt.Sprint(got) != fmt.Sprint(c.wantEngine) {
				t.Errorf("function containers by state %v, want %v", got, c.wantEngine)
			}
			hibernated := c.wantState == api.StateHibernated
			if n := len(eng.checkpointNames()); (n == 1) != hibernated || n > 1 {
				t.Errorf("%d checkpoints kept in the engine (hibernated: %v)", n, hibernated)
			}
			mustInvoke(t, p, "fn", c.wantCount)
			if got := state(t, p, "fn"); got != "awake" {
				t.Errorf("after a request: state %q, want awake", got)
			}
			if n := eng.count("restore"); n != c.restores {
				t.Errorf("%d restores, want %d", n, c.restores)
			}
			if hibernated {
				// The restored checkpoint has served: it goes (in the background).
				eventually(t, "the used checkpoint to be deleted", func() bool { return len(eng.checkpointNames()) == 0 })
			}
		})
	}
}

func TestConcurrentRequestsShareOneWake(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	if err := p.Scale(context.Background(), "", "fn", 0); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	counts := make(chan int, n)
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := invoke(p, "fn")
			if err != nil {
				errs <- err
				return
			}
			counts <- c
		}()
	}
	wg.Wait()
	close(errs)
	close(counts)
	for err := range errs {
		t.Errorf("request: %v", err)
	}
	seen := map[int]bool{}
	for c := range counts {
		seen[c] = true
	}
	// One restored replica counted every request after the first one.
	for want := 2; want <= n+1; want++ {
		if !seen[want] {
			t.Errorf("no request saw count %d (counts: %v)", want, seen)
		}
	}
	if got := eng.count("restore"); got != 1 {
		t.Errorf("%d restores for %d concurrent requests, want 1", got, n)
	}
}

func TestFailedCheckpointLeavesFunctionRunning(t *testing.T) {
	cases := []struct {
		name     string
		replicas int
		fails    []error // the checkpoints' outcomes, in order
		restores int     // rollbacks of replicas already checkpointed
	}{
		{"only replica", 1, []error{errors.New("criu: dump failed")}, 0},
		{"second of two", 2, []error{nil, errors.New("criu: dump failed")}, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, eng := newTestProvider(t)
			deploy(t, p, "fn", map[string]string{labelScaleMin: strconv.Itoa(c.replicas)})
			eventually(t, "replicas ready", func() bool {
				st, _ := p.Status(context.Background(), "", "fn")
				return st.AvailableReplicas == uint64(c.replicas)
			})
			for i := 1; i <= 2*c.replicas; i++ {
				if _, err := invoke(p, "fn"); err != nil {
					t.Fatal(err)
				}
			}
			eng.failNext("checkpoint", c.fails...)
			err := p.Scale(context.Background(), "", "fn", 0)
			if err == nil || !strings.Contains(err.Error(), "keeps running") || !strings.Contains(err.Error(), "dump failed") {
				t.Fatalf("scale to zero: %v, want the checkpoint's failure and that the function keeps running", err)
			}
			if got := state(t, p, "fn"); got != "awake" {
				t.Errorf("state %q, want awake", got)
			}
			if got := states(eng); got["running"] != c.replicas || len(got) != 1 {
				t.Errorf("function containers by state %v, want %d running", got, c.replicas)
			}
			if n := eng.count("restore"); n != c.restores {
				t.Errorf("%d restores, want %d", n, c.restores)
			}
			eventually(t, "replicas back in service", func() bool {
				st, _ := p.Status(context.Background(), "", "fn")
				return st.AvailableReplicas == uint64(c.replicas) && st.Replicas == uint64(c.replicas)
			})
			// The state is intact: across replicas, the counts go on.
			total := 0
			for range c.replicas {
				n, err := invoke(p, "fn")
				if err != nil {
					t.Fatal(err)
				}
				total += n
			}
			if want := c.replicas * 3; total != want {
				t.Errorf("counts after the failed sleep sum to %d, want %d (state lost?)", total, want)
			}
		})
	}
}

// A provider killed while the engine had begun a dump restarts, and is asked
// to checkpoint the function again before that dump froze it (the direct
// checkpoint freezes only once runc and CRIU have started). The engine's
// shim finishes the first dump, which stops the container, and the second
// fails: the first one's checkpoint holds the state, and the replica comes
// back from it instead of starting fresh.
func TestCheckpointFailedBehindAnEarlierDump(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	mustInvoke(t, p, "fn", 2)
	eng.failNext("checkpoint", earlierDump("hib-1"))
	err := p.Scale(context.Background(), "", "fn", 0)
	if err == nil || !strings.Contains(err.Error(), "container does not exist") || !strings.Contains(err.Error(), "keeps running") {
		t.Fatalf("scale to zero: %v, want the failure and that the function keeps running", err)
	}
	if n := eng.count("restore"); n != 1 {
		t.Errorf("%d restores, want 1 (from the earlier dump)", n)
	}
	if got := state(t, p, "fn"); got != "awake" {
		t.Errorf("state %q, want awake", got)
	}
	eventually(t, "the replica back in service", func() bool {
		st, _ := p.Status(context.Background(), "", "fn")
		return st.AvailableReplicas == 1
	})
	mustInvoke(t, p, "fn", 3)
	if st, _ := p.Status(context.Background(), "", "fn"); st.Annotations != nil && (*st.Annotations)["com.openfaas.criu.state-lost"] != "" {
		t.Errorf("state reported lost: %v", *st.Annotations)
	}
}

func TestFailedRestoreKeepsCheckpoint(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	if err := p.Scale(context.Background(), "", "fn", 0); err != nil {
		t.Fatal(err)
	}
	kept := eng.checkpointNames()
	eng.failNext("restore", errors.New("criu: restore failed"), errors.New("criu: restore failed"))

	_, err := invoke(p, "fn")
	if !errors.Is(err, api.ErrUnavailable) || !strings.Contains(err.Error(), "restore failed") || !strings.Contains(err.Error(), "checkpoint is kept") {
		t.Fatalf("request: %v, want api.ErrUnavailable with the restore's failure", err)
	}
	err = p.Scale(context.Background(), "", "fn", 1)
	if err == nil || !strings.Contains(err.Error(), "restore failed") {
		t.Fatalf("scale up: %v, want the restore's failure", err)
	}
	if got := state(t, p, "fn"); got != api.StateHibernated {
		t.Errorf("state %q, want still hibernated", got)
	}
	if got := eng.checkpointNames(); fmt.Sprint(got) != fmt.Sprint(kept) {
		t.Errorf("checkpoints %v, want %v kept", got, kept)
	}
	// Once restores work again, the state is back.
	mustInvoke(t, p, "fn", 2)
}

func TestUpdateOfSleepingFunction(t *testing.T) {
	for _, strategy := range []string{api.StrategyCheckpoint, api.StrategyPause} {
		t.Run(strategy, func(t *testing.T) {
			p, eng := newTestProvider(t)
			labels := map[string]string{labelStrategy: strategy}
			deploy(t, p, "fn", labels)
			mustInvoke(t, p, "fn", 1)
			if err := p.Scale(context.Background(), "", "fn", 0); err != nil {
				t.Fatal(err)
			}
			asleep := state(t, p, "fn")

			// The same definition changes nothing: it sleeps on.
			if err := p.Update(context.Background(), deployment("fn", labels)); err != nil {
				t.Fatalf("update (same): %v", err)
			}
			if got := state(t, p, "fn"); got != asleep {
				t.Fatalf("after an update that changes nothing: state %q, want %q", got, asleep)
			}

			dep := deployment("fn", labels)
			dep.EnvVars = map[string]string{"VERSION": "2"}
			if err := p.Update(context.Background(), dep); err != nil {
				t.Fatalf("update: %v", err)
			}
			if got := state(t, p, "fn"); got != "awake" {
				t.Errorf("state %q, want awake", got)
			}
			// Its checkpoint belonged to the old definition: a fresh start.
			mustInvoke(t, p, "fn", 1)
			if n := eng.count("restore"); n != 0 {
				t.Errorf("%d restores, want none", n)
			}
			if got := eng.checkpointNames(); len(got) != 0 {
				t.Errorf("checkpoints %v left from the old definition", got)
			}
			if got := states(eng); got["running"] != 1 || len(got) != 1 {
				t.Errorf("function containers by state %v, want 1 running", got)
			}
			eng.mu.Lock()
			for _, c := range eng.containers {
				if c.spec.NetworkOf != "" && !containsString(c.spec.Env, "VERSION=2") {
					t.Errorf("container %s runs the old definition (env %v)", c.name, c.spec.Env)
				}
			}
			eng.mu.Unlock()
		})
	}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func TestDelete(t *testing.T) {
	for _, asleep := range []bool{false, true} {
		t.Run(fmt.Sprint("asleep=", asleep), func(t *testing.T) {
			p, eng := newTestProvider(t)
			deploy(t, p, "fn", map[string]string{labelScaleMin: "2"})
			if asleep {
				if err := p.Scale(context.Background(), "", "fn", 0); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Delete(context.Background(), "", "fn"); err != nil {
				t.Fatalf("delete: %v", err)
			}
			if n := eng.containerCount(); n != 0 {
				t.Errorf("%d containers left", n)
			}
			if got := eng.checkpointNames(); len(got) != 0 {
				t.Errorf("checkpoints %v left", got)
			}
			if _, err := p.Status(context.Background(), "", "fn"); !IsNotFound(err) {
				t.Errorf("status: %v, want not found", err)
			}
			if _, err := os.Stat(p.store.recordPath(api.DefaultNamespace, "fn")); !os.IsNotExist(err) {
				t.Errorf("its record is still on disk (%v)", err)
			}
			if err := p.Delete(context.Background(), "", "fn"); !IsNotFound(err) {
				t.Errorf("second delete: %v, want not found", err)
			}
		})
	}
}

// Containers lost behind the provider's back come back at reconciliation:
// the periodic pass, or the load at the provider's start.
func TestReconcileAfterLostContainers(t *testing.T) {
	cases := []struct {
		name    string
		lose    func(eng *fakeEngine, container string)
		restart bool // reconcile by starting a new provider over the same state
	}{
		{"function container removed", func(e *fakeEngine, c string) { e.lose(c, false) }, false},
		{"replica removed with its sandbox", func(e *fakeEngine, c string) { e.lose(c, true) }, false},
		{"process died", func(e *fakeEngine, c string) { e.crash(c) }, false},
		{"removed while the provider was down", func(e *fakeEngine, c string) { e.lose(c, true) }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, eng := newTestProvider(t)
			deploy(t, p, "fn", map[string]string{labelScaleMin: "2"})
			eventually(t, "replicas ready", func() bool {
				st, _ := p.Status(context.Background(), "", "fn")
				return st.AvailableReplicas == 2
			})
			lost := p.containerName(api.Key{Namespace: api.DefaultNamespace, Name: "fn"}, 1)
			if c.restart {
				_ = p.Close()
				c.lose(eng, lost)
				p = startTestProvider(t, eng, p.cfg.StateDir)
			} else {
				c.lose(eng, lost)
				fn, err := p.lookup("", "fn")
				if err != nil {
					t.Fatal(err)
				}
				p.reconcile(context.Background(), fn)
			}
			if got := states(eng); got["running"] != 2 || len(got) != 1 {
				t.Fatalf("function containers by state %v, want 2 running", got)
			}
			if _, ok := eng.functionContainers()[lost]; !ok {
				t.Errorf("replica 1 (%s) is not back", lost)
			}
			eventually(t, "2 available replicas", func() bool {
				st, _ := p.Status(context.Background(), "", "fn")
				return st.AvailableReplicas == 2 && st.Replicas == 2
			})
			if _, err := invoke(p, "fn"); err != nil {
				t.Fatalf("request after reconciliation: %v", err)
			}
		})
	}
}

// A hibernated function whose containers are gone has lost its state: it
// forgets the checkpoint and starts fresh at the next request.
func TestReconcileForgetsLostCheckpoint(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	if err := p.Scale(context.Background(), "", "fn", 0); err != nil {
		t.Fatal(err)
	}
	eng.lose(p.containerName(api.Key{Namespace: api.DefaultNamespace, Name: "fn"}, 0), true)
	fn, err := p.lookup("", "fn")
	if err != nil {
		t.Fatal(err)
	}
	p.reconcile(context.Background(), fn)
	rec, _ := fn.snapshot()
	if len(rec.Checkpoints) != 0 {
		t.Errorf("the record still names checkpoints %v", rec.Checkpoints)
	}
	mustInvoke(t, p, "fn", 1)
}

// tier is the sleep tier the function's status reports.
func tier(t *testing.T, p *Provider, name string) string {
	t.Helper()
	st, err := p.Status(context.Background(), "", name)
	if err != nil {
		t.Fatalf("status %s: %v", name, err)
	}
	return (*st.Annotations)[api.AnnotationTier]
}

// The deep tier over the engine: the policy's Deepen stops the sandbox (and
// nothing else), the status says deep, also to a provider started again
// (the engine is the record of it), and a request starts the sandbox and
// restores the state.
func TestDeepTier(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	for i := 1; i <= 3; i++ {
		mustInvoke(t, p, "fn", i)
	}
	if err := p.Scale(context.Background(), "", "fn", 0); err != nil {
		t.Fatal(err)
	}
	if got := tier(t, p, "fn"); got != api.StateHibernated {
		t.Fatalf("tier %q after a scale to zero, want %q", got, api.StateHibernated)
	}
	k := api.Key{Namespace: api.DefaultNamespace, Name: "fn"}
	if err := p.Fleet().Deepen(context.Background(), k); err != nil {
		t.Fatalf("deepen: %v", err)
	}
	if got := eng.sandboxStates(); !allIn(got, "exited") {
		t.Errorf("sandboxes by state %v, want all exited", got)
	}
	if n := eng.count("stop"); n != 1 {
		t.Errorf("%d sandbox stops, want 1", n)
	}
	if got := states(eng); fmt.Sprint(got) != "map[exited:1]" {
		t.Errorf("function containers by state %v, want the one exited with its checkpoint", got)
	}
	if got := tier(t, p, "fn"); got != api.TierDeep {
		t.Errorf("tier %q after deepen, want %q", got, api.TierDeep)
	}
	// A second Deepen finds nothing to stop.
	if err := p.Fleet().Deepen(context.Background(), k); err != nil || eng.count("stop") != 1 {
		t.Errorf("second deepen: %v, %d stops", err, eng.count("stop"))
	}

	_ = p.Close()
	p = startTestProvider(t, eng, p.cfg.StateDir)
	if got := tier(t, p, "fn"); got != api.TierDeep {
		t.Errorf("tier %q after a provider restart, want %q", got, api.TierDeep)
	}
	mustInvoke(t, p, "fn", 4)
	if got := tier(t, p, "fn"); got != api.StateAwake {
		t.Errorf("tier %q after a request, want %q", got, api.StateAwake)
	}
	if got := eng.sandboxStates(); !allIn(got, "running") {
		t.Errorf("sandboxes by state %v after the wake, want all running", got)
	}
	if n := eng.count("restore"); n != 1 {
		t.Errorf("%d restores, want 1", n)
	}
}

func allIn(states map[string]string, want string) bool {
	for _, s := range states {
		if s != want {
			return false
		}
	}
	return len(states) > 0
}

// Deepen leaves alone a function that is not hibernated, and a failed stop
// is an error naming the function.
func TestDeepenOnlyHibernated(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "awake", nil)
	deploy(t, p, "paused", map[string]string{labelStrategy: api.StrategyPause})
	deploy(t, p, "fails", nil)
	for _, fn := range []string{"paused", "fails"} {
		if err := p.Scale(context.Background(), "", fn, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, fn := range []string{"awake", "paused"} {
		if err := p.Fleet().Deepen(context.Background(), api.Key{Namespace: api.DefaultNamespace, Name: fn}); err != nil {
			t.Errorf("deepen %s: %v", fn, err)
		}
	}
	if n := eng.count("stop"); n != 0 {
		t.Errorf("%d sandboxes stopped of functions not hibernated", n)
	}
	eng.failNext("stop", errors.New("injected"))
	err := p.Fleet().Deepen(context.Background(), api.Key{Namespace: api.DefaultNamespace, Name: "fails"})
	if err == nil || !strings.Contains(err.Error(), "injected") || !strings.Contains(err.Error(), "fails") {
		t.Errorf("deepen with a failing stop: %v, want the failure naming the function", err)
	}
	if got := tier(t, p, "fails"); got != api.StateHibernated {
		t.Errorf("tier %q after a failed deepen, want %q", got, api.StateHibernated)
	}
	mustInvoke(t, p, "fails", 1)
}

// A scale to zero lets a request in flight finish (drains it) before the
// checkpoint, so it gets its answer now and is counted in the state kept.
func TestScaleToZeroDrainsInFlight(t *testing.T) {
	p, _ := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	fn, err := p.lookup("", "fn")
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		n   int
		err error
		at  time.Time
	}
	done := make(chan answer, 1)
	go func() {
		n, err := invokePath(p, "fn", "/slow")
		done <- answer{n, err, time.Now()}
	}()
	eventually(t, "the slow request in flight", func() bool { return fn.inflight.Load() > 0 })
	if err := p.Scale(context.Background(), "", "fn", 0); err != nil {
		t.Fatalf("scale to zero: %v", err)
	}
	slept := time.Now()
	a := <-done
	if a.err != nil || a.n != 2 {
		t.Fatalf("the request in flight: count %d, %v; want 2, answered", a.n, a.err)
	}
	if a.at.After(slept) {
		t.Errorf("the request in flight was answered %s after the scale to zero returned, want before (drained)", a.at.Sub(slept))
	}
	if got := state(t, p, "fn"); got != api.StateHibernated {
		t.Errorf("state %q, want %q", got, api.StateHibernated)
	}
	mustInvoke(t, p, "fn", 3)
}

// A replica whose container cannot start because the engine's runtime kept
// a task of it (the engine died while starting it) gets new containers at
// the same address, instead of failing every start.
func TestStartWithOrphanTaskRenewsReplica(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	name := p.containerName(api.Key{Namespace: api.DefaultNamespace, Name: "fn"}, 0)
	eng.mu.Lock()
	old, _ := eng.find(name)
	oldID := old.id
	eng.mu.Unlock()
	eng.crash(name)
	eng.failNext("start", fmt.Errorf("%w: failed to create task for container: task %s: already exists", ErrEngineTaskExists, oldID))
	fn, err := p.lookup("", "fn")
	if err != nil {
		t.Fatal(err)
	}
	p.reconcile(context.Background(), fn)
	eng.mu.Lock()
	c, err := eng.find(name)
	eng.mu.Unlock()
	if err != nil || c.id == oldID || c.state != "running" {
		t.Fatalf("replica 0 after reconciliation: %+v, %v; want a new running container", c, err)
	}
	if _, err := eng.InspectContainer(context.Background(), oldID); !isNotFound(err) {
		t.Errorf("the old container is still there (%v)", err)
	}
	mustInvoke(t, p, "fn", 1) // a fresh start: its process had died
}

// The opt-in label is read as every boolean setting is: 1, yes and TRUE
// freeze requests in flight too; anything else (or nothing) drains them.
func TestScaleDownModeReadsTheLabelAsABoolean(t *testing.T) {
	for v, want := range map[string]inflightMode{
		"true": inflightFreeze, "1": inflightFreeze, "yes": inflightFreeze, "TRUE": inflightFreeze,
		"false": inflightDrain, "0": inflightDrain, "": inflightDrain,
	} {
		dep := deployment("fn", map[string]string{api.LabelHibernateInflight: v})
		if got := scaleDownMode(dep); got != want {
			t.Errorf("%s=%q: mode %v, want %v", api.LabelHibernateInflight, v, got, want)
		}
	}
}
