package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/checkpoint/archive"
)

// fakeBox as a Local: deploys, deletes and scales in memory, counted.

func (b *fakeBox) Deploy(_ context.Context, d types.FunctionDeployment) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.fns[d.Service]; ok {
		return api.Errorf(api.ErrExists, "%s exists on %s", d.Service, b.name)
	}
	b.fns[d.Service] = d
	b.deploys++
	return nil
}

func (b *fakeBox) Delete(_ context.Context, _, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.fns[name]; !ok {
		return api.Errorf(api.ErrNotFound, "no %s on %s", name, b.name)
	}
	delete(b.fns, name)
	return nil
}

func (b *fakeBox) Scale(_ context.Context, _, name string, n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.fns[name]; !ok {
		return api.Errorf(api.ErrNotFound, "no %s on %s", name, b.name)
	}
	if n == 0 {
		b.slept = append(b.slept, name)
	}
	return nil
}

func (b *fakeBox) Status(_ context.Context, _, name string) (types.FunctionStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.fns[name]; !ok {
		return types.FunctionStatus{}, api.Errorf(api.ErrNotFound, "no %s on %s", name, b.name)
	}
	return types.FunctionStatus{Name: name}, nil
}

func (b *fakeBox) has(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.fns[name]
	return ok
}

// restorer is a box's Restorer: it deploys, into the fake box, the
// function of a checkpoint fetched from the fleet's object store, counted.
func (b *testBox) restorer(ctx context.Context, dir string, _ bool, _ string) error {
	m, err := archive.LoadManifest(dir)
	if err != nil {
		return err
	}
	var dep types.FunctionDeployment
	if err := json.Unmarshal(m.Function, &dep); err != nil || len(m.Replicas) == 0 {
		return fmt.Errorf("restore: the manifest's function %q: %v", m.Function, err)
	}
	if err := b.fake.Deploy(ctx, dep); err != nil {
		return err
	}
	b.restored.Add(1)
	return nil
}

// routeProxy carries one box's route connections to another; blocked, it
// cuts them and refuses new ones (a partition).
type routeProxy struct {
	l       net.Listener
	target  string
	mu      sync.Mutex
	blocked bool
	conns   []net.Conn
}

func newRouteProxy(t *testing.T, target string) *routeProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &routeProxy{l: l, target: target}
	t.Cleanup(func() { l.Close(); p.block(true) })
	go p.serve()
	return p
}

func (p *routeProxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		blocked := p.blocked
		p.mu.Unlock()
		up, err := net.Dial("tcp", p.target)
		if blocked || err != nil {
			c.Close()
			if up != nil {
				up.Close()
			}
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}
}

func (p *routeProxy) block(b bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.blocked = b
	if b {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}

// testBox is one box of a test fleet.
type testBox struct {
	name string
	fake *fakeBox
	// restored counts the functions restored here from the object store.
	restored atomic.Int32
	fleet    *Fleet
	url      string
	srv      *httptest.Server
	cancel   context.CancelFunc
	// out and in are the proxies of its routes to and from each other box.
	out, in []*routeProxy
}

// isolate cuts (or restores) every route of the box.
func (b *testBox) isolate(cut bool) {
	for _, p := range append(b.out, b.in...) {
		p.block(cut)
	}
}

// kill stops the box as a crash would: no goodbye.
func (b *testBox) kill() {
	b.cancel()
	b.srv.Close()
	b.fleet.Close()
}

// TestMain shortens the lease timings for every test of the package: fence
// after 2 s, take over after 3 s (the tests run in parallel, and share
// them).
func TestMain(m *testing.M) {
	HeartbeatEvery, FenceAfter, BoxTTL = 200*time.Millisecond, 2*time.Second, 3*time.Second
	os.Exit(m.Run())
}

// startTestFleet joins n boxes whose routes all pass through proxies, one
// per pair and direction, so that a box can be cut off. Each box
// advertises a closed port as its route address: the servers then never
// route around the proxies by what they tell each other.
func startTestFleet(t *testing.T, names ...string) []*testBox {
	t.Helper()
	return startTestFleetWith(t, nil, names...)
}

// startTestFleetWith is startTestFleet with each box's configuration
// changed by tweak (nil: as is).
func startTestFleetWith(t *testing.T, tweak func(*Config), names ...string) []*testBox {
	t.Helper()
	n := len(names)
	listen := make([]string, n)
	for i := range listen {
		listen[i] = freeAddr(t)
	}
	nowhere := freeAddr(t)
	boxes := make([]*testBox, n)
	for i := range boxes {
		boxes[i] = &testBox{name: names[i], in: make([]*routeProxy, n), out: make([]*routeProxy, n)}
	}
	routes := make([][]string, n)
	for i := range boxes {
		for j := range boxes {
			if i == j {
				continue
			}
			p := newRouteProxy(t, listen[j])
			boxes[i].out[j], boxes[j].in[i] = p, p
			routes[i] = append(routes[i], "nats://"+p.l.Addr().String())
		}
		boxes[i].out = compact(boxes[i].out)
	}
	keyFile := t.TempDir() + "/key"
	for i, b := range boxes {
		b.in = compact(b.in)
		b.fake = &fakeBox{name: b.name, fns: map[string]types.FunctionDeployment{}, secs: map[string]string{}}
		b.srv = httptest.NewUnstartedServer(nil)
		b.url = "http://" + b.srv.Listener.Addr().String()
		ctx, cancel := context.WithCancel(context.Background())
		b.cancel = cancel
		t.Cleanup(cancel)
		cfg := Config{
			Box: b.name, Advertise: b.url, Labels: map[string]string{"zone": "z"},
			ClusterListen: listen[i], ClusterAdvertise: nowhere, Routes: routes[i],
			Dir: t.TempDir() + "/nats", KeyFile: keyFile,
		}
		if tweak != nil {
			tweak(&cfg)
		}
		f, err := Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		f.SetLocalSecrets(b.fake)
		f.SetLocal(b.fake)
		f.SetRestorer(b.restorer)
		b.fleet = f
		b.srv.Config.Handler = f.Wrap(b.fake)
		b.srv.Start()
		t.Cleanup(b.srv.Close)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, b := range boxes {
		for ready, _ := b.fleet.state(); !ready || len(b.fleet.Boxes()) < n; ready, _ = b.fleet.state() {
			if time.Now().After(deadline) {
				t.Fatalf("%s sees %d boxes after 30s", b.name, len(b.fleet.Boxes()))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return boxes
}

func compact(ps []*routeProxy) []*routeProxy {
	var out []*routeProxy
	for _, p := range ps {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// call sends a request to a box; direct asks it to answer from its own
// engine (as a box that forwards does), never forwarding.
func call(t *testing.T, method, url, body string, direct bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if direct {
		req.Header.Set(HopHeader, "test")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func deployOn(t *testing.T, via *testBox, body string) {
	t.Helper()
	if code, out := call(t, "POST", via.url+"/system/functions", body, false); code != http.StatusAccepted {
		t.Fatalf("deploy %s: %d %s", body, code, out)
	}
}

func ownerOf(t *testing.T, b *testBox, fn string) Record {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r, ok := b.fleet.recordOf(key("", fn)); ok {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has no record of %s after 5s", b.name, fn)
		}
	}
}

// TestFailoverKilledBox: a box dies; each of its functions that another box
// may run is taken over by exactly one survivor (a CAS on its record), from
// its newest checkpoint when there is one, fresh otherwise, and says so in
// its status; a function pinned to the dead box stays down.
func TestFailoverKilledBox(t *testing.T) {
	t.Parallel()
	boxes := startTestFleet(t, "ka", "kb", "kc")
	ka := boxes[0]
	// Equal memory, equal counts: the first name first, then the fewest.
	deployOn(t, ka, `{"service":"ck","image":"x","constraints":["node.labels.zone == z"]}`)
	deployOn(t, boxes[1], `{"service":"plain","image":"x"}`)
	deployOn(t, boxes[2], `{"service":"pinned","image":"x","constraints":["node.hostname == ka"]}`)
	deployOn(t, boxes[2], `{"service":"fresh","image":"x"}`)
	for fn, want := range map[string]string{"ck": "ka", "pinned": "ka"} {
		if got := ownerOf(t, ka, fn).Box; got != want {
			t.Fatalf("%s placed on %s, want %s", fn, got, want)
		}
	}
	taken := time.Date(2026, 12, 2, 13, 0, 0, 0, time.UTC)
	// ck's checkpoint in the fleet's object store, as ka's uploader
	// leaves it (a real store, replicated on the three servers).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := ka.fleet.Objects().Put(ctx, api.Key{Namespace: defaultNamespace, Name: "ck"}, KindCheckpoint, checkpointDir(t, "ck", taken, 64<<10, 1)); err != nil {
		t.Fatalf("store ck's checkpoint: %v", err)
	}
	start := time.Now()
	ka.kill()
	var took time.Duration
	for took == 0 {
		if code, _ := call(t, "GET", boxes[1].url+"/function/ck", "", false); code == 200 {
			took = time.Since(start)
		} else if time.Since(start) > 30*time.Second {
			t.Fatalf("ck does not answer 30s after its box died: %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("ck answers on another box %s after its box died (lease %s, fence %s)", took.Round(10*time.Millisecond), BoxTTL, FenceAfter)
	if took < BoxTTL-HeartbeatEvery {
		t.Errorf("taken over after %s, before the lease (%s) could run out", took, BoxTTL)
	}
	survivors := boxes[1:]
	holders, restores := 0, int32(0)
	for _, b := range survivors {
		if b.fake.has("ck") {
			holders++
		}
		restores += b.restored.Load()
	}
	if holders != 1 || restores != 1 {
		t.Errorf("ck on %d survivors, restored %d times: want exactly one of each", holders, restores)
	}
	var rec Record
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if rec = ownerOf(t, boxes[1], "ck"); rec.Restored != "" || time.Now().After(deadline) {
			break
		}
	}
	if rec.Epoch != 1 || rec.From != "ka" || rec.Box == "ka" || rec.Adopt {
		t.Errorf("ck's record after the takeover: epoch %d, from %q, box %q, adopt %v", rec.Epoch, rec.From, rec.Box, rec.Adopt)
	}
	_, st := call(t, "GET", boxes[1].url+"/system/function/ck", "", false)
	var status types.FunctionStatus
	json.Unmarshal([]byte(st), &status)
	ann := map[string]string{}
	if status.Annotations != nil {
		ann = *status.Annotations
	}
	if want := "checkpoint taken at 2026-12-02T13:00:00Z on box ka"; ann[RestoredAnnotation] != want || !strings.HasPrefix(ann[FailoverAnnotation], "from ka at ") || ann[BoxAnnotation] != rec.Box {
		t.Errorf("ck's status after the takeover: restored-from %q failover %q box %q, want restored-from %q", ann[RestoredAnnotation], ann[FailoverAnnotation], ann[BoxAnnotation], want)
	}
	if code, body := call(t, "GET", boxes[2].url+"/function/pinned", "", false); code != http.StatusServiceUnavailable {
		t.Errorf("pinned (only ka may run it): %d %s, want 503", code, body)
	}
	// With two of three boxes gone the cluster has no quorum: the last
	// box cannot renew, and fences itself.
	boxes[1].kill()
	last := boxes[2]
	mine := "ck"
	if !last.fake.has(mine) {
		mine = "fresh"
	}
	deadline := time.Now().Add(FenceAfter + 3*time.Second)
	for !last.fleet.Fenced() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !last.fleet.Fenced() {
		t.Fatal("the last box of three, without quorum, did not fence itself")
	}
	if code, _ := call(t, "GET", last.url+"/function/"+mine, "", true); code != http.StatusServiceUnavailable {
		t.Errorf("a fenced box serves its function %s: %d", mine, code)
	}
}

// TestFenceBeforeTakeover: a box cut off from the cluster (its routes cut,
// its API still reachable) fences itself before its functions are taken
// over: polled directly on every box throughout, no function ever answers
// on two boxes. Once the routes are back, the box removes its copy of the
// function taken over, and serves again the one nobody else could take.
func TestFenceBeforeTakeover(t *testing.T) {
	t.Parallel()
	fenceBeforeTakeover(t, false)
}

// TestFenceBeforeTakeoverLeadingRecords is TestFenceBeforeTakeover with
// the box cut off leading the records' stream when it is cut: its first
// reads after the heal are answered by itself, stale (the takeover is not
// in its copy), until its raft hears the new term. The case that once let
// iso answer on two boxes for about two seconds after the heal.
func TestFenceBeforeTakeoverLeadingRecords(t *testing.T) {
	t.Parallel()
	fenceBeforeTakeover(t, true)
}

func fenceBeforeTakeover(t *testing.T, leadRecords bool) {
	boxes := startTestFleet(t, "ia", "ib", "ic")
	ia := boxes[0]
	deployOn(t, boxes[1], `{"service":"iso","image":"x"}`)
	deployOn(t, boxes[2], `{"service":"stay","image":"x","constraints":["node.hostname == ia"]}`)
	if got := ownerOf(t, ia, "iso").Box; got != "ia" {
		t.Fatalf("iso placed on %s, want ia", got)
	}
	ownerOf(t, ia, "stay")
	if leadRecords {
		// The boxes' stream led by another box: ia renews its lease as
		// soon as its routes are back, and rejoins at once.
		leadStream(t, boxes[1], "KV_"+boxesBucket)
		leadStream(t, ia, "KV_"+functionsBucket)
	}
	// Every box, directly, every 20 ms: who serves iso, and when ia fenced.
	var (
		mu       sync.Mutex
		both     []string
		fencedAt time.Time
		servedAt = map[string]time.Time{}
	)
	stop := make(chan struct{})
	polled := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(polled)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var serving []string
			for _, b := range boxes {
				if code, _ := call(t, "GET", b.url+"/function/iso", "", true); code == 200 {
					serving = append(serving, b.name)
				}
			}
			mu.Lock()
			if len(serving) > 1 {
				both = append(both, fmt.Sprintf("%s at %s", serving, time.Since(start)))
			}
			for _, n := range serving {
				if _, ok := servedAt[n]; !ok && n != "ia" {
					servedAt[n] = time.Now()
				}
			}
			if fencedAt.IsZero() && ia.fleet.Fenced() {
				fencedAt = time.Now()
			}
			mu.Unlock()
		}
	}()
	defer func() { close(stop); <-polled }()
	ia.isolate(true)
	var newOwner string
	for deadline := time.Now().Add(40 * time.Second); newOwner == ""; time.Sleep(50 * time.Millisecond) {
		mu.Lock()
		for n := range servedAt {
			newOwner = n
		}
		mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatal("iso not taken over 40s after its box was cut off")
		}
	}
	mu.Lock()
	fence, takeover := fencedAt.Sub(start), servedAt[newOwner].Sub(start)
	mu.Unlock()
	t.Logf("cut off: ia fenced after %s, iso answers on %s after %s (lease %s, fence %s)", fence.Round(10*time.Millisecond), newOwner, takeover.Round(10*time.Millisecond), BoxTTL, FenceAfter)
	if fencedAt.IsZero() || fence > takeover {
		t.Errorf("ia fenced after %s, its function answered elsewhere after %s: the fence must come first", fence, takeover)
	}
	if !ia.fake.has("iso") {
		t.Error("ia's own copy of iso is gone while it was cut off (it should be hibernated, kept until it learns)")
	}
	if code, _ := call(t, "GET", ia.url+"/function/stay", "", false); code != http.StatusServiceUnavailable {
		t.Errorf("stay on the fenced box: %d, want 503", code)
	}
	if code, _ := call(t, "POST", ia.url+"/system/scale-function/stay", `{"serviceName":"stay","replicas":1}`, true); code != http.StatusServiceUnavailable {
		t.Errorf("a scale-up of stay on the fenced box: %d, want 503 (it would wake the hibernated copy)", code)
	}

	if leadRecords {
		staleConfirm(t, ia, "iso")
	}
	// Back in the cluster: the lost copy goes, the kept function serves.
	ia.isolate(false)
	healed := time.Now()
	for deadline := time.Now().Add(40 * time.Second); ia.fleet.Fenced() || ia.fake.has("iso"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("40s after the routes came back: fenced %v, iso still on ia %v", ia.fleet.Fenced(), ia.fake.has("iso"))
		}
	}
	t.Logf("ia rejoined and dropped its stale copy %s after its routes came back", time.Since(healed).Round(10*time.Millisecond))
	// The JetStream elections that follow the heal can, on a loaded
	// machine, outlast this package's 2 s fence (the product's is 14 s for
	// that reason): another box may fence itself for a moment, and ia
	// relays its 503. The checks below are on a cluster whole again.
	for deadline := time.Now().Add(40 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var fenced []string
		for _, b := range boxes {
			if b.fleet.Fenced() {
				fenced = append(fenced, b.name)
			}
		}
		if len(fenced) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("40s after the routes came back, still fenced: %v", fenced)
		}
	}
	// Nor is iso being taken over again (newOwner fenced in those
	// elections, and another box brings iso up).
	for deadline := time.Now().Add(40 * time.Second); ownerOf(t, boxes[1], "iso").Adopt; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("40s after the routes came back, iso still being taken over by %s", ownerOf(t, boxes[1], "iso").Box)
		}
	}
	// stay never left ia, but ia serves it again only once a write on its
	// record's revision confirms it (lift, then sweepKept every beat): in
	// the elections after the heal that write can fail for a while, and
	// stay answers 503 "has not confirmed yet" meanwhile.
	confirmedBy := time.Now().Add(20 * time.Second)
	for {
		code, body := call(t, "GET", ia.url+"/function/stay", "", true)
		if code == 200 {
			break
		}
		if code != 503 || !strings.Contains(body, "has not confirmed yet") || time.Now().After(confirmedBy) {
			t.Fatalf("stay after the rejoin: %d %s", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Its owner now: newOwner, unless newOwner fenced itself too in the
	// elections after the heal and iso moved again, to any live box, ia
	// included (a takeover from the stored checkpoint, not its stale copy:
	// that one was dropped above). Whoever owns it must be the one that
	// answers, and the only one holding it (below).
	owner := ownerOf(t, boxes[1], "iso").Box
	if code, body := call(t, "GET", ia.url+"/function/iso", "", false); code != 200 || !strings.Contains(body, "from "+owner) {
		t.Errorf("iso through ia after the rejoin: %d %q, want its answer from %s (taken over by %s)", code, body, owner, newOwner)
	}
	holders := 0
	for _, b := range boxes {
		if b.fake.has("iso") {
			holders++
		}
	}
	if holders != 1 {
		t.Errorf("iso on %d boxes after the rejoin, want 1", holders)
	}
	rec := ownerOf(t, boxes[1], "iso")
	if rec.Restored != freshNoCheckpoint && ownerOf(t, boxes[2], "iso").Restored != freshNoCheckpoint {
		t.Errorf("iso, with no checkpoint, restored from %q", rec.Restored)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(both) > 0 {
		t.Errorf("iso answered on two boxes at once: %v", both)
	}
}

// staleConfirm checks, on the box b cut off while it led the records'
// stream, the two halves of a heal's race: what b reads of fn is its own
// stale copy (fn was taken over meanwhile, b still leads in its own eyes),
// yet b cannot confirm its ownership on it: its write, on the revision it
// reads, needs a majority it does not have.
func staleConfirm(t *testing.T, b *testBox, fn string) {
	t.Helper()
	k := key("", fn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	v, rev, err := b.fleet.leaderGet(ctx, functionsBucket, k)
	cancel()
	var r Record
	json.Unmarshal(v, &r)
	t.Logf("at the heal: %s leads the records' stream in its own eyes: %v; it reads %s on %q at revision %d (%v)", b.name, b.fleet.srv.JetStreamIsStreamLeader("$G", "KV_"+functionsBucket), fn, r.Box, rev, err)
	if err != nil || r.Box != b.name {
		return // nothing stale to confirm on
	}
	b.fleet.setRecord(k, v, rev)
	if proven, _ := b.fleet.confirm(context.Background(), []string{k}); len(proven) > 0 {
		t.Errorf("%s, cut off, confirmed its ownership of %s on its stale record (revision %d) by a write", b.name, fn, rev)
	}
}

// leadStream makes box b the leader of stream (a stepdown of its leader,
// b preferred).
func leadStream(t *testing.T, b *testBox, stream string) {
	t.Helper()
	js, err := jetstream.New(b.fleet.nc)
	if err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprintf(`{"placement":{"preferred":%q}}`, b.name)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		s, err := js.Stream(ctx, stream)
		cancel()
		if err == nil && s.CachedInfo().Cluster != nil && s.CachedInfo().Cluster.Leader == b.name {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not lead %s after 20s (%v)", b.name, stream, err)
		}
		b.fleet.nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, []byte(req), 2*time.Second)
	}
}

// TestLeaseCAS over one NATS server: a second process under a box's name
// cannot renew that box's lease (it fences itself, the first keeps it);
// of two boxes claiming one orphan at once exactly one wins; and a box
// whose server goes fences itself FenceAfter after its last renewal.
func TestLeaseCAS(t *testing.T) {
	t.Parallel()
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server did not start")
	}
	joinIn := func(name, dir string) (*Fleet, context.CancelFunc) {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		f, err := Start(ctx, Config{Box: name, Advertise: "http://127.0.0.1:1", NATSURL: srv.ClientURL(), KeyFile: t.TempDir() + "/key", Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if ok, _ := f.state(); ok {
				return f, cancel
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not joined after 20s", name)
			}
		}
	}
	join := func(name string) *Fleet {
		f, _ := joinIn(name, t.TempDir()+"/fleet/nats")
		return f
	}
	first := join("dup")
	second := join("dup")
	// The same box restarted (its state directory, so its instance id)
	// takes its lease back at once, though the old entry is still there.
	dir := t.TempDir() + "/fleet/nats"
	before, stop := joinIn("again", dir)
	stop()
	before.Close()
	after, _ := joinIn("again", dir)
	after.lease.mu.Lock()
	renewedAtJoin := !after.lease.renewed.IsZero()
	after.lease.mu.Unlock()
	if !renewedAtJoin {
		t.Error("a box restarted on its state directory did not take its lease back at its first heartbeat")
	}
	time.Sleep(FenceAfter + time.Second)
	if first.Fenced() || !second.Fenced() {
		t.Errorf("two boxes named dup: first fenced %v, second fenced %v; want only the second", first.Fenced(), second.Fenced())
	}
	if after.Fenced() {
		t.Error("a box restarted on its state directory could not take its lease back")
	}

	// Two boxes claim one orphan on the same revision: one write wins.
	a, b := join("ca"), join("cb")
	dep, _ := json.Marshal(types.FunctionDeployment{Service: "orphan", Image: "x"})
	v, _ := json.Marshal(Record{Deployment: dep, Box: "gone"})
	rev, err := a.funcs.Create(context.Background(), "openfaas-fn.orphan", v)
	if err != nil {
		t.Fatal(err)
	}
	orphan := Record{Deployment: dep, Box: "gone", rev: rev}
	var wg sync.WaitGroup
	for _, f := range []*Fleet{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each as if placement chose it (see takeOver): the CAS decides.
			n := orphan
			n.Box, n.Epoch, n.From, n.Adopt = f.cfg.Box, 1, "gone", true
			nv, _ := json.Marshal(n)
			f.funcs.Update(context.Background(), "openfaas-fn.orphan", nv, orphan.rev)
		}()
	}
	wg.Wait()
	e, err := a.funcs.Get(context.Background(), "openfaas-fn.orphan")
	if err != nil {
		t.Fatal(err)
	}
	if e.Revision() != rev+1 {
		t.Errorf("the orphan's record went from revision %d to %d: two claims were written", rev, e.Revision())
	}

	// The server goes: a fences FenceAfter after its last renewal.
	srv.Shutdown()
	deadline := time.Now().Add(FenceAfter + 2*time.Second)
	for !a.Fenced() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	a.lease.mu.Lock()
	since := time.Since(a.lease.renewed)
	a.lease.mu.Unlock()
	if !a.Fenced() || since < FenceAfter || since > FenceAfter+HeartbeatEvery {
		t.Errorf("server gone: fenced %v, %s after the last renewal; want fenced at %s (+ one tick)", a.Fenced(), since, FenceAfter)
	}
	t.Logf("fenced %s after the last renewal (fence %s)", since.Round(time.Millisecond), FenceAfter)
}

// TestStaleRejoinSwept: a box whose rejoin read its records stale (the
// function taken over while it was cut off still looked its own, as when
// the box cut off still answers the leader reads of a stream it led) keeps
// its copy at the rejoin; when the watch brings the takeover a moment
// later, the copy goes on the next beat, not never. The function still its
// own stays, and a removal that fails is tried again.
func TestStaleRejoinSwept(t *testing.T) {
	t.Parallel()
	fake := &fakeBox{name: "ia", fns: map[string]types.FunctionDeployment{"iso": {Service: "iso"}, "stay": {Service: "stay"}}, secs: map[string]string{}}
	iso, stay := key(defaultNamespace, "iso"), key(defaultNamespace, "stay")
	f := &Fleet{
		cfg: Config{Box: "ia"},
		// The cluster's records: iso taken over at revision 7.
		funcs:   &truthKV{revs: map[string]uint64{iso: 7, stay: 6}, last: 7},
		records: map[string]Record{iso: {Box: "ia", rev: 5}, stay: {Box: "ia", rev: 6}},
		live:    map[string]Box{}, beat: map[string]time.Time{}, beatRev: map[string]uint64{}, warned: map[string]uint64{},
		// Joined a moment ago: the beat does not judge other boxes yet.
		joinedAt: time.Now(),
	}
	failing := &failingDelete{fakeBox: fake, fails: 1}
	f.SetLocal(failing)
	ctx := context.Background()
	f.lease.fenced, f.lease.owned = true, []string{iso, stay}

	f.lift(ctx, f.lease.owned) // as rejoin does, on the stale records
	if f.Fenced() || !fake.has("iso") || !fake.has("stay") {
		t.Fatalf("after a rejoin on stale records: fenced %v, iso here %v, stay here %v; want unfenced, both kept", f.Fenced(), fake.has("iso"), fake.has("stay"))
	}
	f.failover(ctx)
	if !fake.has("iso") {
		t.Fatal("iso removed while its record still names this box")
	}
	// The watch brings the takeover.
	v, _ := json.Marshal(Record{Box: "ib", From: "ia", Epoch: 1})
	f.setRecord(iso, v, 7)
	f.failover(ctx) // the removal fails once (the provider busy)
	if !fake.has("iso") {
		t.Fatal("the failing removal removed iso")
	}
	f.failover(ctx)
	if fake.has("iso") {
		t.Error("iso, taken over by ib, still on ia two beats after the watch brought the takeover")
	}
	if !fake.has("stay") {
		t.Error("stay, still ia's own, removed")
	}
}

// failingDelete is a fakeBox whose next fails Deletes fail.
type failingDelete struct {
	*fakeBox
	fails int
}

func (d *failingDelete) Delete(ctx context.Context, ns, name string) error {
	if d.fails > 0 {
		d.fails--
		return fmt.Errorf("delete %s: the box is busy", name)
	}
	return d.fakeBox.Delete(ctx, ns, name)
}

// truthKV is the records' bucket as the cluster has it, which a box's view
// (its records) may lag: Update is a write on a revision, refused unless
// that is the key's last one (as JetStream checks it, against its current
// leader); stuck, every write waits out its context (as one sent to a
// leader that lost its term does).
type truthKV struct {
	jetstream.KeyValue // the other methods: not used
	mu                 sync.Mutex
	revs               map[string]uint64
	last               uint64
	stuck              bool
	writes             int
}

func (kv *truthKV) Update(ctx context.Context, k string, _ []byte, rev uint64) (uint64, error) {
	kv.mu.Lock()
	stuck := kv.stuck
	kv.mu.Unlock()
	if stuck {
		<-ctx.Done()
		return 0, fmt.Errorf("update %s: %w", k, ctx.Err())
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.revs[k] != rev {
		return 0, fmt.Errorf("update %s: wrong last sequence: %d, not %d", k, kv.revs[k], rev)
	}
	kv.last++
	kv.revs[k], kv.writes = kv.last, kv.writes+1
	return kv.last, nil
}

func (kv *truthKV) rev(k string) uint64 {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.revs[k]
}

// gateCode is what the box answers a call of fn before its engine: 503
// when it refuses it, 0 when it serves or forwards it.
func gateCode(f *Fleet, fn string) int {
	w := httptest.NewRecorder()
	if f.gate(w, httptest.NewRequest("GET", "/function/"+fn, nil)) {
		return w.Code
	}
	return 0
}

// TestStaleRejoinRefusedUntilConfirmed: a box whose rejoin read its
// records stale (as when the box cut off led the records' stream and
// answers its own reads with its old copy) must not serve a function it
// fenced on that read: iso, taken over by ib meanwhile, still looks its
// own, and served here it would answer on two boxes. Each function it
// fenced serves again only once a write on its record's revision has gone
// through (stay, still its own); a write that fails (stale revision) or
// cannot be made (the leader not reachable yet) leaves it refused, tried
// again on every beat.
func TestStaleRejoinRefusedUntilConfirmed(t *testing.T) {
	t.Parallel()
	fake := &fakeBox{name: "ia", fns: map[string]types.FunctionDeployment{"iso": {Service: "iso"}, "stay": {Service: "stay"}}, secs: map[string]string{}}
	iso, stay := key(defaultNamespace, "iso"), key(defaultNamespace, "stay")
	truth := &truthKV{revs: map[string]uint64{iso: 7, stay: 6}, last: 7}
	f := &Fleet{
		cfg: Config{Box: "ia"}, funcs: truth, joined: true,
		// The stale view: iso still at 5, naming ia.
		records: map[string]Record{iso: {Box: "ia", rev: 5}, stay: {Box: "ia", rev: 6}},
		live:    map[string]Box{}, beat: map[string]time.Time{}, beatRev: map[string]uint64{}, warned: map[string]uint64{},
		joinedAt: time.Now(),
	}
	f.SetLocal(fake)
	ctx := context.Background()
	f.lease.fenced, f.lease.owned = true, []string{iso, stay}
	f.lease.renewed = time.Now()

	f.lift(ctx, f.lease.owned) // as rejoin does, on the stale records
	if f.Fenced() {
		t.Fatal("still fenced after the rejoin")
	}
	if code := gateCode(f, "iso"); code != http.StatusServiceUnavailable {
		t.Errorf("iso, its record read stale (taken over meanwhile), after the rejoin: gate %d, want 503", code)
	}
	if !f.fencedScale(httptest.NewRecorder(), httptest.NewRequest("POST", "/system/scale-function/iso", nil)) {
		t.Error("a scale-up of iso after the rejoin on a stale read not refused (it would wake the copy the fence hibernated)")
	}
	if code := gateCode(f, "stay"); code != 0 || truth.rev(stay) == 6 {
		t.Errorf("stay, still ia's own, after the rejoin: gate %d, its record at revision %d; want served, confirmed by a write", code, truth.rev(stay))
	}
	f.failover(ctx) // the view still stale: the write fails again
	if code := gateCode(f, "iso"); code != http.StatusServiceUnavailable || !fake.has("iso") || truth.rev(iso) != 7 {
		t.Errorf("iso a beat later, the view still stale: gate %d, here %v, record at %d; want 503, kept, unwritten", code, fake.has("iso"), truth.rev(iso))
	}
	// The watch brings the takeover: forwarded to ib, the copy removed.
	v, _ := json.Marshal(Record{Box: "ib", From: "ia", Epoch: 1})
	f.setRecord(iso, v, 7)
	if code := gateCode(f, "iso"); code != 0 {
		t.Errorf("iso, its record naming ib: gate %d, want forwarded", code)
	}
	f.failover(ctx)
	if fake.has("iso") {
		t.Error("iso, taken over by ib, still here a beat after the watch brought the takeover")
	}

	// Fenced again; this time no write can be made at the rejoin (the
	// leader not known yet): stay waits, and serves once one goes through.
	f.lease.fenced, f.lease.owned = true, []string{stay}
	truth.mu.Lock()
	truth.stuck = true
	truth.mu.Unlock()
	f.lift(ctx, f.lease.owned)
	f.failover(ctx)
	if code := gateCode(f, "stay"); code != http.StatusServiceUnavailable {
		t.Errorf("stay, no write made since the rejoin: gate %d, want 503", code)
	}
	truth.mu.Lock()
	truth.stuck = false
	truth.mu.Unlock()
	f.failover(ctx)
	if code := gateCode(f, "stay"); code != 0 || !fake.has("stay") {
		t.Errorf("stay, its write through: gate %d, here %v; want served", code, fake.has("stay"))
	}
}
