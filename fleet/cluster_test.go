package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/test/harness"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/openfaas/faas-provider/types"
)

// fakeBox stands in for one box's provider: functions in memory, and an
// invocation that names the box and echoes the body.
type fakeBox struct {
	name string
	mu   sync.Mutex
	fns  map[string]types.FunctionDeployment
	secs map[string]string
	// deploys counts Deploy calls, slept the functions scaled to zero (as
	// a Local: see failover_test.go).
	deploys int
	slept   []string
}

func (b *fakeBox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/function/"):
		name, _, _ := strings.Cut(strings.TrimPrefix(p, "/function/"), "/")
		if _, ok := b.fns[name]; !ok {
			http.Error(w, "no such function on "+b.name, http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s from %s: %s", name, b.name, body)
	case p == "/system/functions" && r.Method == http.MethodGet:
		list := []types.FunctionStatus{}
		for _, d := range b.fns {
			list = append(list, types.FunctionStatus{Name: d.Service, Image: d.Image, Namespace: defaultNamespace})
		}
		json.NewEncoder(w).Encode(list)
	case p == "/system/functions" && r.Method == http.MethodPost:
		var d types.FunctionDeployment
		json.NewDecoder(r.Body).Decode(&d)
		if _, ok := b.fns[d.Service]; ok {
			http.Error(w, "exists", http.StatusConflict)
			return
		}
		b.fns[d.Service] = d
		w.WriteHeader(http.StatusAccepted)
	case p == "/system/functions" && r.Method == http.MethodDelete:
		var d types.DeleteFunctionRequest
		json.NewDecoder(r.Body).Decode(&d)
		if _, ok := b.fns[d.FunctionName]; !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		delete(b.fns, d.FunctionName)
		w.WriteHeader(http.StatusAccepted)
	case strings.HasPrefix(p, "/system/function/"):
		d, ok := b.fns[strings.TrimPrefix(p, "/system/function/")]
		if !ok {
			http.Error(w, "not found", http.StatusNotFound)
			return
		}
		json.NewEncoder(w).Encode(types.FunctionStatus{Name: d.Service, Image: d.Image, Namespace: defaultNamespace})
	case p == "/system/secrets":
		var s types.Secret
		json.NewDecoder(r.Body).Decode(&s)
		b.secs[s.Name] = s.Value
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

func (b *fakeBox) CreateSecret(_ context.Context, s types.Secret) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.secs[s.Name] = s.Value
	return nil
}
func (b *fakeBox) UpdateSecret(ctx context.Context, s types.Secret) error {
	return b.CreateSecret(ctx, s)
}
func (b *fakeBox) DeleteSecret(_ context.Context, _, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.secs, name)
	return nil
}

// freeAddr is an address on loopback for a server the test starts later
// (a route listener) or for nothing at all, reserved until the test ends:
// a port from :0 closed could go to another test's listener meanwhile.
func freeAddr(t *testing.T) string {
	port, release, err := harness.ReservePort()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// TestThreeBoxes joins three embedded servers on loopback and drives the
// fleet's routes against fake providers: placement by constraint, any box
// answering any function, listing from any box, delete from any box, and a
// secret sealed in KV and applied on every box.
func TestThreeBoxes(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t.Parallel()
	names := []string{"fl1", "fl2", "fl3"}
	routes := make([]string, len(names))
	for i := range names {
		routes[i] = "nats://" + freeAddr(t)
	}
	var (
		fakes []*fakeBox
		urls  []string
		fls   []*Fleet
		srvs  []*httptest.Server
	)
	for i, n := range names {
		fb := &fakeBox{name: n, fns: map[string]types.FunctionDeployment{}, secs: map[string]string{}}
		fakes = append(fakes, fb)
		srv := httptest.NewUnstartedServer(nil)
		cfg := Config{
			Box: n, Advertise: "http://" + srv.Listener.Addr().String(), Labels: map[string]string{"zone": fmt.Sprint(i)},
			ClusterListen: strings.TrimPrefix(routes[i], "nats://"), Routes: routes,
			Dir: t.TempDir(), KeyFile: t.TempDir() + "/key",
		}
		if i > 0 {
			cfg.KeyFile = fls[0].cfg.KeyFile // given to every box at join
		}
		f, err := Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		f.SetLocalSecrets(fb)
		srv.Config.Handler = f.Wrap(fb)
		srv.Start()
		defer srv.Close()
		fls, urls, srvs = append(fls, f), append(urls, srv.URL), append(srvs, srv)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, f := range fls {
		for len(f.Boxes()) < 3 {
			if time.Now().After(deadline) {
				t.Fatalf("%s sees %d boxes after 30s", f.cfg.Box, len(f.Boxes()))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Three boxes: three replicas of each bucket.
	st, err := fls[0].funcs.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 3 {
		t.Errorf("functions bucket has %d replicas, want 3", r)
	}
	do := func(method, url, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Deployed from fl1 with a constraint naming fl3: it lands on fl3.
	if code, body := do("POST", urls[0]+"/system/functions", `{"service":"echo","image":"x","constraints":["node.hostname == fl3"]}`); code != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", code, body)
	}
	if _, ok := fakes[2].fns["echo"]; !ok {
		t.Fatal("echo was not deployed on fl3")
	}
	if code, body := do("POST", urls[1]+"/system/functions", `{"service":"lab","image":"x","constraints":["node.labels.zone == 1"]}`); code != http.StatusAccepted || fakes[1].fns["lab"].Service != "lab" {
		t.Fatalf("deploy with a label constraint: %d %s, on fl2: %v", code, body, fakes[1].fns)
	}
	if code, body := do("POST", urls[1]+"/system/functions", `{"service":"nowhere","image":"x","constraints":["node.hostname == fl9"]}`); code != http.StatusBadRequest {
		t.Fatalf("deploy with an unmet constraint: %d %s", code, body)
	}
	// Any box answers it, the body going both ways.
	for i, u := range urls {
		code, body := do("POST", u+"/function/echo", fmt.Sprintf("hello from %d", i))
		if want := fmt.Sprintf("echo from fl3: hello from %d", i); code != 200 || body != want {
			t.Errorf("invoke through %s: %d %q, want %q", names[i], code, body, want)
		}
	}
	// Any box lists both, each with its box.
	for i, u := range urls {
		code, body := do("GET", u+"/system/functions", "")
		var list []types.FunctionStatus
		if code != 200 || json.Unmarshal([]byte(body), &list) != nil || len(list) != 2 {
			t.Fatalf("list from %s: %d %s", names[i], code, body)
		}
		for _, st := range list {
			want := map[string]string{"echo": "fl3", "lab": "fl2"}[st.Name]
			if st.Annotations == nil || (*st.Annotations)[BoxAnnotation] != want {
				t.Errorf("list from %s: %s annotated %v, want box %s", names[i], st.Name, st.Annotations, want)
			}
		}
		code, body = do("GET", u+"/system/function/echo", "")
		if code != 200 || !strings.Contains(body, `"com.openfaas.criu.box":"fl3"`) {
			t.Errorf("status from %s: %d %s", names[i], code, body)
		}
	}
	// A secret posted to fl2 reaches every box, and is sealed in KV.
	if code, body := do("POST", urls[1]+"/system/secrets", `{"name":"db","value":"hunter2"}`); code/100 != 2 {
		t.Fatalf("secret: %d %s", code, body)
	}
	for _, fb := range fakes {
		fb.mu.Lock()
		v := fb.secs["db"]
		fb.mu.Unlock()
		if v != "hunter2" {
			t.Errorf("secret on %s: %q", fb.name, v)
		}
	}
	// Read from the leader: a KV Get may be answered by a replica behind.
	sealed, _, err := fls[0].leaderGet(ctx, secretsBucket, "openfaas-fn.db")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("hunter2")) {
		t.Error("the secret is readable in KV")
	}
	// Deleted from fl2: gone from fl3 and from the fleet.
	if code, body := do("DELETE", urls[1]+"/system/functions", `{"functionName":"echo"}`); code != http.StatusAccepted {
		t.Fatalf("delete: %d %s", code, body)
	}
	if _, ok := fakes[2].fns["echo"]; ok {
		t.Error("echo is still on fl3")
	}
	// A KV Get may be answered by a replica that has not caught up yet:
	// the record goes within a moment.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := fls[0].funcs.Get(ctx, "openfaas-fn.echo"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Error("echo's record is still in KV 3s after its delete")
			break
		}
	}

	// fl2 stops: within BoxTTL the others stop counting it, its function
	// is listed as down and answers 503 (failover is not built yet).
	fls[1].Close()
	srvs[1].Close()
	start := time.Now()
	for {
		var live []string
		for _, b := range fls[0].Boxes() {
			live = append(live, b.Name)
		}
		sort.Strings(live)
		if strings.Join(live, ",") == "fl1,fl3" {
			break
		}
		if time.Since(start) > 5*BoxTTL {
			t.Fatalf("fl1 sees %v %s after fl2 stopped, want fl1 and fl3", live, time.Since(start))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("fl2 no longer live after %s", time.Since(start).Round(100*time.Millisecond))
	if code, body := do("POST", urls[0]+"/function/lab", "x"); code != http.StatusServiceUnavailable || !strings.Contains(body, "fl2") {
		t.Errorf("a function on a stopped box: %d %s, want 503 naming fl2", code, body)
	}
	code, body := do("GET", urls[2]+"/system/functions", "")
	if code != 200 || !strings.Contains(body, `"com.openfaas.criu.box-down":"true"`) {
		t.Errorf("list after fl2 stopped: %d %s, want lab marked box-down", code, body)
	}
}

// TestExistingNATS: a box joins through a NATS server it does not run
// (--cluster-nats), with one replica for one server.
func TestExistingNATS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	f, err := Start(ctx, Config{Box: "ext1", Advertise: "http://127.0.0.1:1", NATSURL: srv.ClientURL(), KeyFile: t.TempDir() + "/key"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	deadline := time.Now().Add(20 * time.Second)
	for len(f.Boxes()) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("not joined through %s after 20s", srv.ClientURL())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st, err := f.funcs.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 1 {
		t.Errorf("replicas %d, want 1 on a single server", r)
	}
	if r, err := f.Objects().Replicas(ctx); err != nil || r != 1 {
		t.Errorf("object store replicas %d (%v), want 1 on a single server", r, err)
	}
	if srv.NumClients() == 0 {
		t.Error("the box is not a client of the given server")
	}
}

// TestClusterPortTaken: a box whose cluster port is taken (by another
// program, or a port a test picked and something else then got) stops at
// once, with the port and what the server said, not after the whole
// start wait with a guess.
func TestClusterPortTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	start := time.Now()
	f, err := Start(context.Background(), Config{
		Box: "taken", Advertise: "http://127.0.0.1:1", ClusterListen: addr, Routes: []string{"nats://" + addr},
		Dir: t.TempDir(), KeyFile: t.TempDir() + "/key",
	})
	if err == nil {
		f.Close()
		t.Fatalf("started on %s, which is taken", addr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the error came after %s, want at once", took.Round(time.Millisecond))
	}
	for _, want := range []string{"--cluster-listen " + addr, "address already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Log(err)
}
