//go:build integration

package integration

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/fleet"
)

// The fleet's boxes: engines PREFIX1..PREFIX3 (scripts/engines.sh), named
// "fl" unless FAAS_CRIU_TEST_FLEET names another prefix.
var fleetPrefix = cmp.Or(os.Getenv("FAAS_CRIU_TEST_FLEET"), "fl")

// startFleet starts three engines and a provider on each, joined in one
// fleet by embedded NATS servers routed on loopback. The boxes share their
// credentials and fleet key, as a fleet's boxes must.
func startFleet(t *testing.T) []*Provider {
	t.Helper()
	boxes, _ := startFleetWith(t, false)
	return boxes
}

// startFleetWith is startFleet; with proxied, every route passes through a
// proxy of the test's, one per pair of boxes and direction, and a box can
// be cut off from the cluster (its API still reachable) by cut(i, true).
// Its engines then run without live-restore: an engine stopped stops its
// containers, as a dead box's would be.
func startFleetWith(t *testing.T, proxied bool) ([]*Provider, func(i int, cut bool)) {
	t.Helper()
	const n = 3
	script := filepath.Join(repoRoot, "scripts", "engines.sh")
	start := exec.Command(script, "start", fleetPrefix, fmt.Sprint(n))
	if proxied {
		start.Env = append(os.Environ(), "FAAS_CRIU_ENGINE_LIVE_RESTORE=false")
	}
	out, err := start.CombinedOutput()
	t.Cleanup(func() {
		if out, err := exec.Command(script, "purge", fleetPrefix, fmt.Sprint(n)).CombinedOutput(); err != nil {
			t.Logf("engines.sh purge: %v\n%s", err, out)
		}
	})
	if err != nil {
		t.Fatalf("engines.sh start: %v\n%s", err, out)
	}
	hosts := strings.Fields(string(out))
	if len(hosts) != n {
		t.Fatalf("engines.sh start: want %d hosts, got %q", n, out)
	}
	shared := t.TempDir()
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := filepath.Join(shared, "fleet-key")
	pass := hex.EncodeToString(key[:8])
	os.WriteFile(keyFile, []byte(hex.EncodeToString(key)), 0o600)
	// Every port first: a route port is bound only when its box starts,
	// so a port picked later could be handed out again.
	var boxes []*Provider
	taken := map[int]bool{}
	for range hosts {
		p := newProvider(t)
		taken[p.port] = true
		boxes = append(boxes, p)
	}
	listen := make([]string, n)
	for i := range listen {
		port := freePort(t)
		for taken[port] {
			port = freePort(t)
		}
		taken[port] = true
		listen[i] = fmt.Sprintf("127.0.0.1:%d", port)
	}
	routes, cut := fleetRoutes(t, listen, proxied)
	for i, host := range hosts {
		engine, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
		if err != nil {
			t.Fatal(err)
		}
		loadImage(t, engine, FixtureImage)
		p := boxes[i]
		p.engine, p.dockerRoot = engine, fmt.Sprintf("/var/lib/faas-criu-engine-%s%d", fleetPrefix, i+1)
		creds := filepath.Join(p.StateDir, "credentials")
		os.MkdirAll(creds, 0o700)
		os.WriteFile(filepath.Join(creds, "basic-auth-user"), []byte("admin"), 0o600)
		os.WriteFile(filepath.Join(creds, "basic-auth-password"), []byte(pass), 0o600)
		p.args = append(p.args,
			"--port", fmt.Sprint(p.port),
			"--wake-timeout", "20s", "--reconcile-every", "2s", "--policy-tick", "200ms", "--autoscale=false",
			"--box-name", fmt.Sprintf("%s%d", fleetPrefix, i+1),
			"--box-labels", fmt.Sprintf("rack=r%d", i%2),
			"--advertise", p.URL,
			"--cluster-listen", listen[i],
			"--cluster-routes", strings.Join(routes[i], ","),
			"--fleet-key-file", keyFile,
		)
		if proxied {
			// What the servers tell each other of this one leads nowhere:
			// they never route around the proxies.
			p.args = append(p.args, "--cluster-advertise", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
		}
		p.env = []string{"DOCKER_HOST=" + host}
		t.Cleanup(p.cleanup)
		p.Start()
	}
	began := time.Now()
	for _, p := range boxes {
		eventually(t, 60*time.Second, func() string {
			code, body := p.Request("GET", "/system/fleet", nil)
			var doc struct {
				Ready bool
				Boxes []fleet.Box
			}
			if code != http.StatusOK || json.Unmarshal([]byte(body), &doc) != nil || !doc.Ready || len(doc.Boxes) != n {
				return fmt.Sprintf("fleet from %s: %d %s", p.URL, code, body)
			}
			return ""
		})
	}
	t.Logf("three boxes joined in %s", time.Since(began).Round(100*time.Millisecond))
	return boxes, cut
}

// fleetRoutes gives each box its routes: the other boxes' listeners, or
// with proxied a proxy to each, and cut, which blocks (or restores) every
// proxy to and from box i.
func fleetRoutes(t *testing.T, listen []string, proxied bool) ([][]string, func(int, bool)) {
	n := len(listen)
	routes := make([][]string, n)
	links := make([][]*routeProxy, n) // links[i]: the proxies box i's routes pass
	for i := range routes {
		for j := range listen {
			switch {
			case !proxied:
				routes[i] = append(routes[i], "nats://"+listen[j])
			case i != j:
				p := newRouteProxy(t, listen[j])
				links[i], links[j] = append(links[i], p), append(links[j], p)
				routes[i] = append(routes[i], "nats://"+p.addr())
			}
		}
	}
	return routes, func(i int, cut bool) {
		for _, p := range links[i] {
			p.block(cut)
		}
	}
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

func (p *routeProxy) addr() string { return p.l.Addr().String() }

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

// loadImage copies an image from the first engine to another.
func loadImage(t *testing.T, engine *client.Client, ref string) {
	t.Helper()
	rc, err := docker.ImageSave(context.Background(), []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	resp, err := engine.ImageLoad(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func boxOf(st types.FunctionStatus) string {
	if st.Annotations == nil {
		return ""
	}
	return (*st.Annotations)[fleet.BoxAnnotation]
}

// TestFleetThreeBoxes: three boxes on this machine (own engines, own
// providers, one embedded NATS cluster). A deploy with a constraint lands
// on the named box, one without is placed and says where; any box lists
// every function with its box and answers every function, bodies streamed
// both ways; an update through another box reaches the function's box; a secret reaches the box that needs it and is unreadable in
// the KV store's files; a delete from any box removes the function where it
// runs.
func TestFleetThreeBoxes(t *testing.T) {
	boxes := startFleet(t)
	name := func(i int) string { return fmt.Sprintf("%s%d", fleetPrefix, i+1) }

	// A secret posted to box 3, used by a function placed on box 2 from
	// box 1.
	secret := "s3cr3t-" + hex.EncodeToString([]byte(t.Name()))[:8]
	if code, body := boxes[2].Request("POST", "/system/secrets", types.Secret{Name: "fleet-db", Value: secret}); code/100 != 2 {
		t.Fatalf("secret: %d %s", code, body)
	}
	pinned := Fixture("fleet-pinned")
	pinned.Constraints = []string{"node.hostname == " + name(1)}
	pinned.Secrets = []string{"fleet-db"}
	boxes[0].Deploy(pinned)
	if n := len(boxes[1].Containers("fleet-pinned")); n == 0 {
		t.Fatalf("fleet-pinned has no container on %s", name(1))
	}
	for _, i := range []int{0, 2} {
		if n := len(boxes[i].Containers("fleet-pinned")); n != 0 {
			t.Errorf("fleet-pinned has %d containers on %s, want none", n, name(i))
		}
	}
	free := Fixture("fleet-free")
	boxes[2].Deploy(free)
	st := boxes[0].Status("fleet-free")
	freeBox := boxOf(st)
	if freeBox == "" || !strings.Contains((*st.Annotations)[fleet.PlacedAnnotation], "most free memory") {
		t.Fatalf("fleet-free's status does not say where and why: %v", st.Annotations)
	}
	labelled := Fixture("fleet-rack")
	labelled.Constraints = []string{"node.labels.rack == r1"} // box 2 only
	boxes[2].Deploy(labelled)
	if b := boxOf(boxes[2].Status("fleet-rack")); b != name(1) {
		t.Errorf("fleet-rack on %s, want %s (the only box labelled rack=r1)", b, name(1))
	}
	if code, body := boxes[0].Request("POST", "/system/functions", types.FunctionDeployment{Service: "fleet-none", Image: FixtureImage, Constraints: []string{"node.hostname == nowhere"}}); code != http.StatusBadRequest {
		t.Errorf("a deploy no box satisfies: %d %s, want 400", code, body)
	}

	// Any box lists all, with their boxes.
	want := map[string]string{"fleet-pinned": name(1), "fleet-free": freeBox, "fleet-rack": name(1)}
	for i, p := range boxes {
		got := map[string]string{}
		for _, st := range p.List() {
			got[st.Name] = boxOf(st)
		}
		for fn, b := range want {
			if got[fn] != b {
				t.Errorf("list from %s: %s on %q, want %q (all: %v)", name(i), fn, got[fn], b, got)
			}
		}
	}

	// Any box answers any function; a 4 MiB body goes there and back.
	big := bytes.Repeat([]byte("0123456789abcdef"), 256<<10)
	start := time.Now()
	for i, p := range boxes {
		if got := p.MustInvoke("fleet-pinned", "/secret/fleet-db"); got != secret {
			t.Errorf("fleet-pinned's secret through %s: %q", name(i), got)
		}
		p.MustInvoke("fleet-free", "/count")
		code, body := p.InvokeWith("POST", "fleet-pinned", "/echo", bytes.NewReader(big))
		var echo struct{ Body string }
		if code != 200 || json.Unmarshal([]byte(body), &echo) != nil || echo.Body != string(big) {
			t.Errorf("4 MiB echo through %s: %d, %d bytes back", name(i), code, len(echo.Body))
		}
	}
	t.Logf("9 invocations through three boxes in %s", time.Since(start).Round(time.Millisecond))
	if got := boxes[1].MustInvoke("fleet-free", "/count"); got != "4" {
		t.Errorf("fleet-free's counter after four calls through three boxes: %s, want 4 (one replica, on one box)", got)
	}

	// Updated through a box that does not run it: its box updates it.
	updated := Fixture("fleet-free")
	updated.EnvVars = map[string]string{"FLEET_V": "2"}
	other := boxes[0]
	if freeBox == name(0) {
		other = boxes[1]
	}
	if code, body := other.Request("PUT", "/system/functions", updated); code != http.StatusAccepted {
		t.Fatalf("update through another box: %d %s", code, body)
	}
	eventually(t, 30*time.Second, func() string {
		if code, got := boxes[2].Invoke("fleet-free", "/env/FLEET_V"); code != 200 || got != "2" {
			return fmt.Sprintf("fleet-free's FLEET_V through %s: %d %q", name(2), code, got)
		}
		return ""
	})

	// The secret is in the fleet's KV, sealed: no box's JetStream files
	// hold its value.
	for i, p := range boxes {
		found, files := 0, 0
		filepath.WalkDir(filepath.Join(p.StateDir, "fleet", "nats"), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, []byte("openfaas-fn.fleet-db")) {
				files++
			}
			if bytes.Contains(b, []byte(secret)) {
				found++
			}
			return nil
		})
		if files == 0 {
			t.Errorf("%s: the secret's KV entry is not in its JetStream files", name(i))
		}
		if found != 0 {
			t.Errorf("%s: the secret's value is readable in %d JetStream files", name(i), found)
		}
	}

	// Deleted through box 3: gone from box 2 and from every list.
	boxes[2].Delete("fleet-pinned")
	eventually(t, 20*time.Second, func() string {
		if n := len(boxes[1].Containers("fleet-pinned")); n != 0 {
			return fmt.Sprintf("%d containers of fleet-pinned left on %s", n, name(1))
		}
		return ""
	})
	for i, p := range boxes {
		for _, st := range p.List() {
			if st.Name == "fleet-pinned" {
				t.Errorf("list from %s still has fleet-pinned", name(i))
			}
		}
	}
	if code, _ := boxes[0].Invoke("fleet-pinned", "/count"); code == 200 {
		t.Error("fleet-pinned still answers after its delete")
	}
}
