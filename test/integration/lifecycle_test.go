//go:build integration

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// gatewayClient speaks to a provider as the OpenFaaS CE gateway does with
// scale_from_zero=true: it scales the function to 1, polls its status for
// availableReplicas about every 100 ms, and only then forwards the request.
// Its methods return errors (never t.Fatal), so goroutines may use it.
type gatewayClient struct {
	p      *Provider
	client *http.Client
}

func newGatewayClient(p *Provider) *gatewayClient {
	return &gatewayClient{p: p, client: &http.Client{Timeout: 60 * time.Second}}
}

func (g *gatewayClient) do(method, path string, body any, auth bool) (int, string, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, "", err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, g.p.URL+path, r)
	if err != nil {
		return 0, "", err
	}
	if auth {
		req.SetBasicAuth(g.p.User, g.p.Pass)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(out)), err
}

func (g *gatewayClient) status(name string) (types.FunctionStatus, error) {
	var st types.FunctionStatus
	code, body, err := g.do("GET", "/system/function/"+name, nil, true)
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("status %s: %d %s", name, code, body)
	}
	// availableReplicas is omitted when 0 (omitempty): missing reads 0.
	return st, json.Unmarshal([]byte(body), &st)
}

// wake scales to 1 and polls availableReplicas every 100 ms until it is at
// least 1, for up to limit.
func (g *gatewayClient) wake(name string, limit time.Duration) error {
	code, body, err := g.do("POST", "/system/scale-function/"+name, types.ScaleServiceRequest{ServiceName: name, Replicas: 1}, true)
	if err != nil {
		return err
	}
	if code != http.StatusAccepted && code != http.StatusOK {
		return fmt.Errorf("scale %s to 1: %d %s", name, code, body)
	}
	deadline := time.Now().Add(limit)
	for {
		st, err := g.status(name)
		if err != nil {
			return err
		}
		if st.AvailableReplicas > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no available replica within %s of the scale to 1 (state %s)", name, limit, (*st.Annotations)[stateAnnotation])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// count invokes /count and returns the answer.
func (g *gatewayClient) count(name string) (int, error) {
	code, body, err := g.do("GET", "/function/"+name+"/count", nil, false)
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, fmt.Errorf("invoke %s/count: %d %s", name, code, body)
	}
	return strconv.Atoi(body)
}

// awaitState polls the state annotation until it reads want.
func (g *gatewayClient) awaitState(name, want string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		st, err := g.status(name)
		if err != nil {
			return err
		}
		got := ""
		if st.Annotations != nil {
			got = (*st.Annotations)[stateAnnotation]
		}
		if got == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is %q after %s, want %q", name, got, limit, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func idleDeployment(name string) types.FunctionDeployment {
	dep := Fixture(name)
	dep.Labels = &map[string]string{"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "2s"}
	return dep
}

// Fault 1 of issue 11: a wake by scale-up did not count as use, so the idle
// policy hibernated the function again before the gateway's poll saw it
// available, and the gateway waited about 100 s.
func TestGatewayWakeCountsAsUse(t *testing.T) {
	p := StartProvider(t) // policy tick 200 ms
	g := newGatewayClient(p)
	p.Deploy(idleDeployment("gwwake"))
	counts(p, "gwwake", 2)
	if err := g.awaitState("gwwake", "hibernated", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// Idle for far longer than zero-duration since the last request.
	time.Sleep(500 * time.Millisecond)
	if err := g.wake("gwwake", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	// The idle clock restarted at the wake: it stays awake well into its
	// zero-duration (several policy ticks), without any request.
	for end := time.Now().Add(1200 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		st, err := g.status("gwwake")
		if err != nil {
			t.Fatal(err)
		}
		if st.AvailableReplicas != 1 {
			t.Fatalf("woken by a scale-up, then back to sleep without a request: %+v", *st.Annotations)
		}
	}
	if n, err := g.count("gwwake"); err != nil || n != 3 {
		t.Fatalf("after the wake: %d %v, want 3", n, err)
	}
}

// The acceptance: behind a gateway-like client, with zero-duration
// 2 s and a 200 ms policy tick, 30 idle-hibernate-then-wake cycles each
// answer within 2 s and continue the function's count. Three functions run
// their cycles side by side (10 each) to keep the wall time near 35 s rather
// than 95 s.
func TestGatewayIdleWakeCycles(t *testing.T) {
	const functions, cycles = 3, 10
	p := StartProvider(t)
	g := newGatewayClient(p)
	for i := range functions {
		p.Deploy(idleDeployment(fmt.Sprintf("cycle%d", i)))
	}
	var mu sync.Mutex
	var slowest time.Duration
	var wg sync.WaitGroup
	errs := make(chan error, functions)
	for i := range functions {
		name := fmt.Sprintf("cycle%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Staggered by a third of a cycle (about 3 s): their checkpoints
			// and restores do not all fall on the same policy tick, on a box
			// with 2 cores that other work shares.
			time.Sleep(time.Duration(i) * time.Second)
			want := 1
			if n, err := g.count(name); err != nil || n != want {
				errs <- fmt.Errorf("%s: first count %d %v", name, n, err)
				return
			}
			for c := 1; c <= cycles; c++ {
				if err := g.awaitState(name, "hibernated", 10*time.Second); err != nil {
					errs <- fmt.Errorf("cycle %d: %w", c, err)
					return
				}
				start := time.Now()
				if err := g.wake(name, 2*time.Second); err != nil {
					errs <- fmt.Errorf("cycle %d: %w", c, err)
					return
				}
				n, err := g.count(name)
				d := time.Since(start)
				want++
				if err != nil || n != want {
					errs <- fmt.Errorf("%s cycle %d: count %d (%v), want %d", name, c, n, err, want)
					return
				}
				if d > 2*time.Second {
					errs <- fmt.Errorf("%s cycle %d: answered in %s, want within 2s", name, c, d)
					return
				}
				mu.Lock()
				slowest = max(slowest, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d idle-hibernate-then-wake cycles; slowest wake-to-answer %s", functions*cycles, slowest)
}

// Fault 3 of issue 11: a hibernated function's status read and put back as
// its deployment (GET then PUT, unchanged but for the status annotations the
// status carries) replaced its container: its count went from 3 to 1.
func TestStatusRoundTripKeepsHibernatedState(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("roundtrip")
	dep.Labels = &map[string]string{"team": "a"}
	dep.Annotations = &map[string]string{"topic": "orders"}
	p.Deploy(dep)
	counts(p, "roundtrip", 3)
	p.Scale("roundtrip", 0)

	st := p.Status("roundtrip")
	if (*st.Annotations)[stateAnnotation] != "hibernated" || (*st.Annotations)["com.openfaas.criu.checkpoint-bytes"] == "" {
		t.Fatalf("status of the hibernated function: %v", *st.Annotations)
	}
	back := types.FunctionDeployment{
		Service: st.Name, Namespace: st.Namespace, Image: st.Image, EnvProcess: st.EnvProcess,
		EnvVars: st.EnvVars, Constraints: st.Constraints, Secrets: st.Secrets, Labels: st.Labels,
		Annotations: st.Annotations, Limits: st.Limits, Requests: st.Requests,
		ReadOnlyRootFilesystem: st.ReadOnlyRootFilesystem,
	}
	if code, body := p.Request("PUT", "/system/functions", back); code != http.StatusAccepted {
		t.Fatalf("PUT of its own status: %d %s", code, body)
	}
	if s := p.Annotation("roundtrip", stateAnnotation); s != "hibernated" {
		t.Errorf("a PUT of its unchanged status woke it: %s", s)
	}
	// Labels and annotations steer the provider, not the container: a
	// change of them leaves it asleep with its state too.
	back.Labels = &map[string]string{"team": "b", "com.openfaas.scale.zero-duration": "1h"}
	(*back.Annotations)["topic"] = "orders-v2"
	if code, body := p.Request("PUT", "/system/functions", back); code != http.StatusAccepted {
		t.Fatalf("PUT with new labels: %d %s", code, body)
	}
	st = p.Status("roundtrip")
	if s := (*st.Annotations)[stateAnnotation]; s != "hibernated" || (*st.Labels)["team"] != "b" {
		t.Errorf("after a PUT of new labels and annotations: state %s, labels %v", s, *st.Labels)
	}
	if got := counts(p, "roundtrip", 1); got[0] != 4 {
		t.Errorf("after GET, PUTs and a request the count is %v, want 4 (its state)", got)
	}
	// The status annotations were not taken into the definition; the user's
	// annotation was.
	ann := *p.Status("roundtrip").Annotations
	if ann["topic"] != "orders-v2" || ann[stateAnnotation] != "awake" || ann["com.openfaas.criu.slept-at"] != "" {
		t.Errorf("annotations after the round trip: %v", ann)
	}
	// A deploy with a status annotation does not keep it either.
	dep2 := Fixture("roundtrip2")
	dep2.Annotations = &map[string]string{stateAnnotation: "hibernated", "com.openfaas.criu.state-lost": "x"}
	p.Deploy(dep2)
	ann = *p.Status("roundtrip2").Annotations
	if ann[stateAnnotation] != "awake" || ann["com.openfaas.criu.state-lost"] != "" {
		t.Errorf("status annotations given at deploy were kept: %v", ann)
	}
}

// Fault 11 of issue 11: a request in flight when a scale to zero arrived was
// frozen in the checkpoint and never answered (nothing woke the function).
// Now the scale to zero drains it first; and a request arriving during the
// drain is answered too, by a wake at once.
func TestScaleToZeroAnswersRequestsInFlight(t *testing.T) {
	p := StartProvider(t)
	g := newGatewayClient(p)
	p.Deploy(Fixture("busy"))
	counts(p, "busy", 2)

	type answer struct {
		code int
		body string
		err  error
	}
	call := func(method, path string, body any, auth bool) chan answer {
		c := make(chan answer, 1)
		go func() {
			code, b, err := g.do(method, path, body, auth)
			c <- answer{code, b, err}
		}()
		return c
	}
	expect := func(what string, c chan answer, want string) {
		t.Helper()
		select {
		case a := <-c:
			if a.err != nil || a.code >= 300 || (want != "" && a.body != want) {
				t.Errorf("%s: %d %q %v, want %q", what, a.code, a.body, a.err, want)
			}
		case <-time.After(12 * time.Second):
			t.Errorf("%s: no answer within 12s", what)
		}
	}
	scaleToZero := func() chan answer {
		return call("POST", "/system/scale-function/busy", types.ScaleServiceRequest{ServiceName: "busy", Replicas: 0}, true)
	}

	// Only the request in flight: nothing else would wake the function.
	slow := call("GET", "/function/busy/sleep?ms=1500", nil, false)
	time.Sleep(400 * time.Millisecond)
	scaled := scaleToZero()
	expect("the request in flight", slow, "slept 1500")
	expect("the scale to zero", scaled, "")
	if s := p.Annotation("busy", stateAnnotation); s != "hibernated" {
		t.Errorf("after the scale to zero: %s", s)
	}
	if got := counts(p, "busy", 1); got[0] != 3 {
		t.Errorf("count after the first scale to zero %v, want 3", got)
	}

	// A request that arrives while the scale to zero drains waits, and is
	// answered by a wake at once.
	slow = call("GET", "/function/busy/sleep?ms=1500", nil, false)
	time.Sleep(400 * time.Millisecond)
	scaled = scaleToZero()
	time.Sleep(300 * time.Millisecond)
	late := call("GET", "/function/busy/count", nil, false)
	expect("the request in flight", slow, "slept 1500")
	expect("the scale to zero", scaled, "")
	expect("the request that came during it", late, "4")
	if got := counts(p, "busy", 1); got[0] != 5 {
		t.Errorf("count afterwards %v, want 5", got)
	}
}

// Fault 12 of issue 11, in part: a function whose memory state was lost (its
// process killed, with no backup) came back fresh and its status said
// nothing. Now it says when and why, until the next deploy.
func TestStateLossIsReported(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("fragile")
	p.Deploy(dep)
	counts(p, "fragile", 2)
	if ann := *p.Status("fragile").Annotations; ann["com.openfaas.criu.state-lost"] != "" {
		t.Fatalf("state lost before anything happened: %v", ann)
	}
	ci, err := docker.ContainerInspect(context.Background(), p.Containers("fragile")[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	if err := syscall.Kill(ci.State.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if got := nextCount(t, p, "fragile"); got != 1 {
		t.Fatalf("after its process was killed it answered %d, want a fresh 1", got)
	}
	ann := *p.Status("fragile").Annotations
	at, err := time.Parse(time.RFC3339Nano, ann["com.openfaas.criu.state-lost-at"])
	if !strings.Contains(ann["com.openfaas.criu.state-lost"], "replica 0") || err != nil || at.Before(killed.Add(-time.Second)) || time.Since(at) > time.Minute {
		t.Errorf("status after the loss: state-lost %q at %q (%v)", ann["com.openfaas.criu.state-lost"], ann["com.openfaas.criu.state-lost-at"], err)
	}
	// Kept across a restart of the provider...
	p.Restart()
	if got := p.Annotation("fragile", "com.openfaas.criu.state-lost"); got == "" {
		t.Errorf("the loss was forgotten by a restart")
	}
	// ...until the next deploy.
	if code, body := p.Request("PUT", "/system/functions", dep); code != http.StatusAccepted {
		t.Fatalf("deploy: %d %s", code, body)
	}
	if got := p.Annotation("fragile", "com.openfaas.criu.state-lost"); got != "" {
		t.Errorf("after the next deploy: state-lost %q", got)
	}
}
