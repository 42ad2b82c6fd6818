package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
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
// their cycles side by side (10 each) to keep the wall time near 30 s.
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
