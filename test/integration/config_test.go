package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// runRefused runs `faas-criu serve` with args and extra environment, and
// returns its output once it exits; the test fails if it is still running
// (serving) after 20 s, or exits 0.
func runRefused(t *testing.T, env []string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, providerBin, args...)
	cmd.Env = mergeEnv(os.Environ(), env)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the provider did not refuse to start (still running after 20 s):\n%s", out)
	}
	if err == nil {
		t.Fatalf("the provider exited 0, want a refusal:\n%s", out)
	}
	return string(out)
}

// TestBasicAuthOneIsOn: basic_auth=1 turns basic auth on, as OpenFaaS reads
// booleans (it once turned it off: anything but "true" was false).
func TestBasicAuthOneIsOn(t *testing.T) {
	for _, v := range []string{"1", "TRUE"} {
		t.Run(v, func(t *testing.T) {
			p := StartProviderEnv(t, []string{"basic_auth=" + v})
			if code, body := p.RequestNoAuth("GET", "/system/functions", nil); code != http.StatusUnauthorized {
				t.Fatalf("basic_auth=%s: /system/functions without credentials answered %d %s, want 401", v, code, body)
			}
			if code, body := p.Request("GET", "/system/functions", nil); code != http.StatusOK {
				t.Fatalf("with credentials: %d %s", code, body)
			}
		})
	}
}

// TestUnknownSettingRefused: a value the provider does not understand stops
// it at start, naming the setting and the value.
func TestUnknownSettingRefused(t *testing.T) {
	p := newProvider(t)
	args := append(p.args, "--port", fmt.Sprint(p.port))
	out := runRefused(t, []string{"basic_auth=maybe"}, args...)
	if !strings.Contains(out, `basic_auth="maybe"`) {
		t.Fatalf("the refusal does not name basic_auth=\"maybe\":\n%s", out)
	}
	if resp, err := http.Get(p.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("something answers on the refused provider's port")
	}
}

// TestStateDirLocked: a second provider on the same state directory refuses
// to start, and the lock goes with the first provider even when it is
// killed with SIGKILL.
func TestStateDirLocked(t *testing.T) {
	p := StartProvider(t)
	second := newProvider(t)
	args := []string{"serve", "--state-dir", p.StateDir, "--network", second.Network, "--port", fmt.Sprint(second.port)}
	out := runRefused(t, nil, args...)
	if !strings.Contains(out, "state directory "+p.StateDir+" is in use by another faas-criu (pid ") {
		t.Fatalf("the second provider's refusal does not say the state directory is in use:\n%s", out)
	}
	if code, body := p.Request("GET", "/system/functions", nil); code != http.StatusOK {
		t.Fatalf("the first provider was disturbed: %d %s", code, body)
	}
	// After a SIGKILL the same state directory starts again.
	p.Restart()
}
