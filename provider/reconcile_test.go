package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/openfaas/faas-provider/types"
)

// fakeEngine answers the Docker API's container listing from a fixed set
// of containers, honouring label filters, and counts the listings.
type fakeEngine struct {
	mu       sync.Mutex
	list     []container.Summary
	listings int
}

func (e *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/containers/json") {
		http.Error(w, "not faked: "+r.URL.Path, http.StatusNotImplemented)
		return
	}
	var f map[string]map[string]bool
	_ = json.Unmarshal([]byte(r.URL.Query().Get("filters")), &f)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.listings++
	out := []container.Summary{}
	for _, c := range e.list {
		ok := true
		for l := range f["label"] {
			k, v, _ := strings.Cut(l, "=")
			if c.Labels[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, c)
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}

// hibernatedFleet makes a provider on a fake engine with n hibernated
// functions: a record each, and a stopped function container and a running
// sandbox each in the engine.
func hibernatedFleet(t *testing.T, n int) (*Provider, *fakeEngine) {
	t.Helper()
	eng := &fakeEngine{}
	srv := httptest.NewServer(eng)
	t.Cleanup(srv.Close)
	cli, err := client.NewClientWithOpts(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	am, err := newIPAM("10.9.0.0/16", "")
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{cfg: Config{StateDir: dir, Network: "net", FunctionPort: 8080}, docker: cli, store: st, instance: "inst",
		ipam: am, fns: map[fnKey]*function{}, reconcileQ: make(chan fnKey, 4096)}
	for i := range n {
		name := fmt.Sprintf("fn%03d", i)
		rec := &record{Deployment: types.FunctionDeployment{Service: name, Image: "img"}, State: StateHibernated,
			Replicas: 1, Checkpoints: map[int]CheckpointInfo{0: {}}}
		if err := st.saveRecord("openfaas-fn", name, rec); err != nil {
			t.Fatal(err)
		}
		labels := func(role string) map[string]string {
			l := map[string]string{LabelFunction: name, LabelNamespace: "openfaas-fn", labelInstance: "inst", labelReplica: "0"}
			if role != "" {
				l[labelRole] = role
			}
			return l
		}
		eng.list = append(eng.list,
			container.Summary{ID: "c" + name, Names: []string{"/" + name + "-0"}, State: "exited", Labels: labels("")},
			container.Summary{ID: "s" + name, State: "running", Labels: labels(roleSandbox),
				NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{
					"net": {IPAddress: fmt.Sprintf("10.9.%d.%d", i/200, i%200+2)}}}})
	}
	return p, eng
}

// TestLoadListsContainersOnce: a start with many functions lists the
// engine's containers once, not once more per function.
func TestLoadListsContainersOnce(t *testing.T) {
	p, eng := hibernatedFleet(t, 50)
	if err := p.load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if eng.listings != 1 {
		t.Errorf("%d container listings for 50 functions at start, want 1", eng.listings)
	}
	if len(p.fns) != 50 {
		t.Fatalf("%d functions loaded, want 50", len(p.fns))
	}
	fn := p.fns[fnKey{ns: "openfaas-fn", name: "fn007"}]
	_, reps := fn.snapshot()
	if len(reps) != 1 || reps[0].id != "cfn007" || reps[0].sandbox != "sfn007" || !reps[0].sandboxUp || reps[0].status != "exited" || reps[0].ip != "10.9.0.9" {
		t.Errorf("fn007's replica after load: %+v", reps)
	}
	if tier := tierOf(*fn.rec, reps); tier != TierHibernated {
		t.Errorf("tier %q, want %q", tier, TierHibernated)
	}
}

// TestNeedsReconcile: the periodic pass reconciles only the functions a
// single listing shows changed, awake, or missing a checkpoint's container.
func TestNeedsReconcile(t *testing.T) {
	p, eng := hibernatedFleet(t, 5)
	ctx := context.Background()
	if err := p.load(ctx); err != nil {
		t.Fatal(err)
	}
	key := func(i int) fnKey { return fnKey{ns: "openfaas-fn", name: fmt.Sprintf("fn%03d", i)} }
	eng.list[2*1+1].State = "exited" // fn001's sandbox stopped (deep)
	eng.list[2*2].ID = "other"       // fn002's container replaced
	p.fns[key(3)].rec.State = StateAwake
	p.fns[key(4)].rec.Checkpoints[1] = CheckpointInfo{} // replica 1 has no container
	found, err := p.listContainers(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{false, true, true, true, true} {
		if got := needsReconcile(p.fns[key(i)], found[key(i)]); got != want {
			t.Errorf("fn%03d: needsReconcile %v, want %v", i, got, want)
		}
	}
	if got := needsReconcile(p.fns[key(0)], nil); !got {
		t.Error("a function whose containers are gone: not reconciled")
	}
}
