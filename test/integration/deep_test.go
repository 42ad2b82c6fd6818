//go:build integration

package integration

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

const tierAnnotation = "com.openfaas.criu.tier"

// sandboxStates is Docker's state of each network sandbox of a function.
func (p *Provider) sandboxStates(name string) []string {
	p.t.Helper()
	var out []string
	for _, c := range p.AllContainers(name) {
		if c.Labels["io.faas-criu.role"] == "sandbox" {
			out = append(out, c.State)
		}
	}
	return out
}

// runningContainers is what `docker ps` (without -a) shows of a function:
// its running containers, sandboxes included.
func (p *Provider) runningContainers(name string) []container.Summary {
	p.t.Helper()
	var out []container.Summary
	for _, c := range p.AllContainers(name) {
		if c.State == "running" {
			out = append(out, c)
		}
	}
	return out
}

// The deep tier: a function hibernated for com.openfaas.criu.deep-after has
// its network sandbox stopped too (Docker shows it exited, not removed), a
// provider restart keeps it there, and a request wakes it with its state:
// the count goes on.
func TestDeepTierKeepsStateAcrossWakeAndRestart(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("deep")
	dep.Labels = &map[string]string{"com.openfaas.criu.deep-after": "8s"}
	p.Deploy(dep)
	if got := counts(p, "deep", 2); got[1] != 2 {
		t.Fatalf("counts %v", got)
	}
	p.Scale("deep", 0)
	p.WaitState("deep", "hibernated", time.Minute)
	if tier := p.Annotation("deep", tierAnnotation); tier != "hibernated" {
		t.Fatalf("just hibernated, tier %q, want hibernated", tier)
	}
	if got := p.sandboxStates("deep"); len(got) != 1 || got[0] != "running" {
		t.Fatalf("hibernated: sandboxes %v, want one running", got)
	}

	eventually(t, time.Minute, func() string {
		if tier := p.Annotation("deep", tierAnnotation); tier != "deep" {
			return "tier " + tier
		}
		return ""
	})
	// Docker is the engine of record: it shows both containers stopped, and
	// kept (docker ps -a), nothing running (docker ps). (The tier may read
	// deep from the sandbox's kill event a moment before Docker lists it
	// exited.)
	eventually(t, 10*time.Second, func() string {
		if got := p.sandboxStates("deep"); len(got) != 1 || got[0] != "exited" {
			return "deep: sandboxes " + strings.Join(got, ",") + ", want one exited"
		}
		return ""
	})
	if n := len(p.runningContainers("deep")); n != 0 {
		t.Fatalf("deep: docker ps shows %d running containers of the function, want 0", n)
	}
	if s := p.Annotation("deep", stateAnnotation); s != "hibernated" {
		t.Errorf("deep: state %q, want hibernated (deep is its tier)", s)
	}

	p.Restart()
	if tier := p.Annotation("deep", tierAnnotation); tier != "deep" {
		t.Fatalf("after a provider restart tier %q, want deep", tier)
	}
	if n := len(p.runningContainers("deep")); n != 0 {
		t.Fatalf("after a provider restart %d containers of the deep function run, want 0", n)
	}

	if got := counts(p, "deep", 1); got[0] != 3 {
		t.Fatalf("woken from deep: count %v, want 3 (state kept)", got)
	}
	if w := p.Annotation("deep", "com.openfaas.criu.last-wake"); !strings.HasPrefix(w, "deep ") {
		t.Errorf("last wake %q, want a wake from deep", w)
	}
	if tier := p.Annotation("deep", tierAnnotation); tier != "awake" {
		t.Errorf("woken: tier %q, want awake", tier)
	}
	if got := p.sandboxStates("deep"); len(got) != 1 || got[0] != "running" {
		t.Errorf("woken: sandboxes %v, want one running", got)
	}
	p.Delete("deep")
}

// A deep-after label that cannot be read is refused at deploy with a 400
// naming the label; 0 and never are accepted.
func TestDeepAfterLabelValidated(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("deep-bad")
	dep.Labels = &map[string]string{"com.openfaas.criu.deep-after": "ten minutes"}
	code, body := p.Request("POST", "/system/functions", dep)
	if code != http.StatusBadRequest || !strings.Contains(body, "com.openfaas.criu.deep-after") {
		t.Fatalf("deploy with deep-after=\"ten minutes\": %d %q, want 400 naming the label", code, body)
	}
	if n := len(p.AllContainers("deep-bad")); n != 0 {
		t.Errorf("a refused deploy left %d containers", n)
	}
	dep.Labels = &map[string]string{"com.openfaas.criu.deep-after": "never"}
	p.Deploy(dep)
	p.Delete("deep-bad")
}
