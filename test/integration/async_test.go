//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// faasCLI is the real OpenFaaS CLI: $FAAS_CLI, or faas-cli on PATH.
func faasCLI(t *testing.T) string {
	t.Helper()
	return tool(t, "FAAS_CLI", "faas-cli")
}

// callbackReceiver is what a user of async runs: an HTTP endpoint on
// loopback that the provider posts results to.
type callbackReceiver struct {
	*httptest.Server
	got chan result
}

type result struct {
	header http.Header
	body   string
}

func newCallbackReceiver(t *testing.T) *callbackReceiver {
	t.Helper()
	c := &callbackReceiver{got: make(chan result, 100)}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c.got <- result{r.Header.Clone(), strings.TrimSpace(string(b))}
	}))
	t.Cleanup(c.Close)
	return c
}

// next waits for one result.
func (c *callbackReceiver) next(t *testing.T, p *Provider, timeout time.Duration) result {
	t.Helper()
	select {
	case r := <-c.got:
		return r
	case <-time.After(timeout):
		t.Fatalf("no callback within %s\nprovider log:\n%s", timeout, p.Logs())
		return result{}
	}
}

// InvokeAsync posts an asynchronous call with a callback and returns its
// X-Call-Id, failing the test unless it is accepted.
func (p *Provider) InvokeAsync(name, path, callback, body string) string {
	p.t.Helper()
	req, err := http.NewRequest("POST", p.URL+"/async-function/"+name+path, strings.NewReader(body))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("X-Callback-Url", callback)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("X-Call-Id") == "" {
		b, _ := io.ReadAll(resp.Body)
		p.t.Fatalf("async %s%s: %d (X-Call-Id %q) %s", name, path, resp.StatusCode, resp.Header.Get("X-Call-Id"), b)
	}
	return resp.Header.Get("X-Call-Id")
}

// A user hibernates a function, calls it with faas-cli invoke --async and a
// callback, and gets its answer at the callback; the function woke with
// its state.
func TestAsyncInvokeWithFaasCLI(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("later"))
	p.WaitAvailable("later", 1)
	p.MustInvoke("later", "/count")
	p.Scale("later", 0)
	p.WaitState("later", "hibernated", 20*time.Second)
	cb := newCallbackReceiver(t)

	cmd := exec.Command(faasCLI(t), "invoke", "later", "--async", "--gateway", p.URL,
		"-H", "X-Callback-Url: "+cb.URL+"/result", "--query", "q=1")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "CI=true", "HOME="+cmd.Dir)
	cmd.Stdin = strings.NewReader("payload")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("faas-cli invoke --async: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Function submitted asynchronously") {
		t.Errorf("faas-cli says %q", out)
	}

	r := cb.next(t, p, 30*time.Second)
	if r.header.Get("X-Function-Status") != "200" || r.body != "hello from fixture" {
		t.Errorf("callback: status %q body %q", r.header.Get("X-Function-Status"), r.body)
	}
	// faas-cli addresses the function with its namespace.
	if r.header.Get("X-Function-Name") != "later.openfaas-fn" || r.header.Get("X-Call-Id") == "" || r.header.Get("X-Duration-Seconds") == "" {
		t.Errorf("callback headers: %v", r.header)
	}
	// Woken from its checkpoint, not started afresh.
	if got := p.MustInvoke("later", "/count"); got != "2" {
		t.Errorf("count after the async wake = %s, want 2", got)
	}
	if got := p.Metric("faas_criu_async_accepted_total"); got != 1 {
		t.Errorf("faas_criu_async_accepted_total = %v, want 1", got)
	}
	if got := p.Metric(`faas_criu_async_calls_total{result="done"}`); got != 1 {
		t.Errorf(`faas_criu_async_calls_total{result="done"} = %v, want 1`, got)
	}
	p.Delete("later")
}

// A provider killed with one call running and one waiting for its turn
// runs both after its restart: each callback arrives with the answer.
func TestAsyncCallsSurviveSIGKILL(t *testing.T) {
	p := StartProvider(t, "--async-max-inflight", "1")
	p.Deploy(Fixture("durable"))
	p.WaitAvailable("durable", 1)
	cb := newCallbackReceiver(t)
	// A call, and a clean stop that leaves the queue empty: the next start
	// does not start the queue's server (and must still find what the
	// later crash leaves).
	p.InvokeAsync("durable", "/count", cb.URL, "")
	cb.next(t, p, 20*time.Second)
	// The call is acknowledged just after its callback is posted: a stop in
	// between would (rightly) leave it queued, to run again.
	eventually(t, 10*time.Second, func() string {
		if d := p.Metric("faas_criu_async_queue_depth"); d != 0 {
			return fmt.Sprintf("queue depth %v after the callback, want 0", d)
		}
		return ""
	})
	p.Stop()
	p.Start()
	if strings.Count(p.Logs(), "embedded NATS JetStream started") != 1 {
		t.Errorf("the queue's server started again after a stop that left it empty:\n%s", p.Logs())
	}

	running := p.InvokeAsync("durable", "/sleep?ms=3000", cb.URL, "")
	waiting := p.InvokeAsync("durable", "/echo?n=2", cb.URL, "second")
	eventually(t, 10*time.Second, func() string {
		if n := p.Metric("faas_criu_async_inflight"); n != 1 {
			return fmt.Sprintf("%v calls running, want 1", n)
		}
		return ""
	})
	if d := p.Metric("faas_criu_async_queue_depth"); d != 2 {
		t.Errorf("queue depth %v before the kill, want 2", d)
	}
	p.Kill()
	select {
	case r := <-cb.got:
		t.Fatalf("a callback before the restart: %v %q", r.header, r.body)
	default:
	}
	if _, err := os.Stat(filepath.Join(p.StateDir, "nats")); err != nil {
		t.Fatalf("no queue store in the state directory: %v", err)
	}
	p.Start()

	got := map[string]result{}
	for range 2 {
		r := cb.next(t, p, 30*time.Second)
		got[r.header.Get("X-Call-Id")] = r
	}
	if r := got[running]; r.body != "slept 3000" || r.header.Get("X-Function-Status") != "200" {
		t.Errorf("the running call: %q %v", r.body, r.header)
	}
	if r := got[waiting]; !strings.Contains(r.body, `"body":"second"`) || !strings.Contains(r.body, `"query":"n=2"`) {
		t.Errorf("the waiting call: %q", r.body)
	}
	eventually(t, 10*time.Second, func() string {
		if d := p.Metric("faas_criu_async_queue_depth"); d != 0 {
			return fmt.Sprintf("queue depth %v, want 0", d)
		}
		return ""
	})
	p.Delete("durable")
}

// A function that answers 429 or 503 for a while gets the call again,
// later; the callback has its eventual answer and /metrics the retries.
// Past the limit of tries, the last answer is the result.
func TestAsyncRetriesBusyFunctions(t *testing.T) {
	// The fixture's /fail, built under a tag of this test's own: the shared
	// engine's fixture tag may be rebuilt meanwhile from another checkout.
	const image = "faas-criu-test/fixture-async:latest"
	if err := BuildGoImage(image, "./test/fixture", nil); err != nil {
		t.Fatal(err)
	}
	p := StartProvider(t, "--async-max-attempts", "3")
	dep := Fixture("busy")
	dep.Image = image
	p.Deploy(dep)
	p.WaitAvailable("busy", 1)
	cb := newCallbackReceiver(t)

	want := map[string]string{
		p.InvokeAsync("busy", "/fail?key=a&times=2&code=429", cb.URL, ""):   "200 ok after 2 failures",
		p.InvokeAsync("busy", "/fail?key=b&times=1&code=503", cb.URL, ""):   "200 ok after 1 failures",
		p.InvokeAsync("busy", "/fail?key=c&times=100&code=503", cb.URL, ""): "503 failure 3 of 100",
	}
	for range want {
		r := cb.next(t, p, 30*time.Second)
		id := r.header.Get("X-Call-Id")
		if got := r.header.Get("X-Function-Status") + " " + r.body; got != want[id] {
			t.Errorf("call %s: callback %q, want %q", id, got, want[id])
		}
	}
	if got := p.Metric(`faas_criu_async_retries_total{code="429"}`); got != 2 {
		t.Errorf("retries on 429 = %v, want 2", got)
	}
	if got := p.Metric(`faas_criu_async_retries_total{code="503"}`); got != 3 {
		t.Errorf("retries on 503 = %v, want 3 (1 for b, 2 for c)", got)
	}
	if got := p.Metric(`faas_criu_async_calls_total{result="failed"}`); got != 1 {
		t.Errorf(`faas_criu_async_calls_total{result="failed"} = %v, want 1`, got)
	}
	p.Delete("busy")
}

// A call accepted while the function's engine is down runs when the engine
// is back: its tries meanwhile fail with 502, 503 or 504 and are retried. The
// engine is one of this test's own (scripts/second-engine.sh ENGINE-as, after
// the tester's engine name: two people testing on one machine each get theirs).
func TestAsyncCallAcceptedWhileTheEngineIsDown(t *testing.T) {
	script := filepath.Join(repoRoot, "scripts", "second-engine.sh")
	name := engineName + "-as"
	engineCmd := func(verb string) string {
		t.Helper()
		cmd := exec.Command(script, verb, name)
		// A bridge of its own, apart from the other engines' on this machine.
		// Without live-restore: with it the function would keep answering
		// while the engine is down, and this test is about the tries that
		// fail meanwhile.
		cmd.Env = append(os.Environ(), fmt.Sprintf("FAAS_CRIU_ENGINE_BRIDGE_CIDR=10.253.%d.1/24", 200+nameByteSum(name)%50), "FAAS_CRIU_ENGINE_LIVE_RESTORE=false")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("second-engine.sh %s %s: %v\n%s", verb, name, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	host := engineCmd("start")
	t.Cleanup(func() { engineCmd("purge") })
	engine, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := docker.ImageSave(context.Background(), []string{FixtureImage})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := engine.ImageLoad(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	rc.Close()

	p := StartProviderEnv(t, []string{"DOCKER_HOST=" + host})
	p.engine, p.dockerRoot = engine, "/var/lib/faas-criu-engine-"+name
	p.Deploy(Fixture("steady"))
	p.WaitAvailable("steady", 1)
	cb := newCallbackReceiver(t)

	engineCmd("stop")
	id := p.InvokeAsync("steady", "/echo", cb.URL, "while down")
	// A try waits for the function's wake-up, up to the wake timeout (20s
	// here), then fails.
	eventually(t, 60*time.Second, func() string {
		n := 0.0
		for _, code := range []string{"502", "503", "504"} {
			n += p.Metric(`faas_criu_async_retries_total{code="` + code + `"}`)
		}
		if n == 0 {
			return "no retry yet"
		}
		return ""
	})
	engineCmd("start")

	r := cb.next(t, p, 90*time.Second)
	if r.header.Get("X-Call-Id") != id || r.header.Get("X-Function-Status") != "200" || !strings.Contains(r.body, `"body":"while down"`) {
		t.Errorf("callback: %v %q", r.header, r.body)
	}
	p.Delete("steady")
}

// nameByteSum spreads engine names over bridge subnets.
func nameByteSum(s string) int {
	n := 0
	for _, b := range []byte(s) {
		n += int(b)
	}
	return n
}
