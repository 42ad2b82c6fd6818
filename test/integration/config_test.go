//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// TestStackAsFaasCLIReadsIt: a stack faas-cli takes, with its substitutions
// and fields faas-criu does not use, deploys (it was refused), with
// warnings naming what is ignored; stack.yaml is found without -f.
func TestStackAsFaasCLIReadsIt(t *testing.T) {
	p := StartProvider(t)
	dir := t.TempDir()
	t.Setenv("FCT_REPO", "FAAS-CRIU-TEST")
	t.Setenv("FCT_SHA", "latest-and-more")
	stack := "version: 1.0\nprovider:\n  name: openfaas\nfunctions:\n  cli-stack:\n" +
		"    image: ${FCT_REPO,,}/fixture:${FCT_SHA:0:6}\n" +
		"    platforms: linux/amd64\n" +
		"    limits:\n      memroy: 64Mi\n"
	if err := os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(stack), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := p.CLI(dir, "deploy")
	if err != nil {
		t.Fatalf("deploy of a stack faas-cli takes: %v\n%s", err, out)
	}
	for _, want := range []string{
		`stack.yaml: function "cli-stack": field "platforms": not used by faas-criu`,
		`stack.yaml: function "cli-stack": field "limits.memroy": unknown key, ignored`,
	} {
		if !strings.Contains(out, "WARNING: "+want) {
			t.Errorf("no warning %q in:\n%s", want, out)
		}
	}
	if st := p.Status("cli-stack"); st.Image != FixtureImage {
		t.Errorf("image %q, want %q", st.Image, FixtureImage)
	}
	p.Delete("cli-stack")
}

// TestBuildRefusesDroppedRequirements: python3-http-debian installs no pip
// packages, so a requirements.txt with requirements fails the build, naming
// the file, instead of an image that fails at import time.
func TestBuildRefusesDroppedRequirements(t *testing.T) {
	dir := t.TempDir()
	fn := filepath.Join(dir, "pyfn")
	copyDir(t, filepath.Join(repoRoot, "templates", "template", "python3-http-debian", "function"), fn)
	os.WriteFile(filepath.Join(fn, "requirements.txt"), []byte("requests\n"), 0o644)
	stack := "provider: {name: openfaas}\nfunctions:\n  pyfn:\n    lang: python3-http-debian\n    handler: ./pyfn\n    image: faas-criu-test/pyfn-req:latest\n"
	os.WriteFile(filepath.Join(dir, "stack.yaml"), []byte(stack), 0o644)
	cmd := exec.Command(providerBin, "build", "--template-dir", filepath.Join(repoRoot, "templates", "template"))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the build succeeded, dropping requirements.txt:\n%s", out)
	}
	if want := filepath.Join(fn, "requirements.txt") + " lists 1 requirement(s) (requests)"; !strings.Contains(string(out), want) {
		t.Errorf("the failure does not name the file and its requirement (%q):\n%s", want, out)
	}
}

// TestScaleZeroLabelOne: com.openfaas.scale.zero=1 is true (it read as
// false, and the function never slept), and a value not understood is
// refused at deploy rather than read as false.
func TestScaleZeroLabelOne(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("zero-one")
	dep.Labels = &map[string]string{"com.openfaas.scale.zero": "1", "com.openfaas.scale.zero-duration": "1s"}
	p.Deploy(dep)
	p.WaitAvailable("zero-one", 1)
	p.MustInvoke("zero-one", "/count")
	eventually(t, 20*time.Second, func() string {
		if s := p.Annotation("zero-one", stateAnnotation); s != "hibernated" {
			return "state " + s + ", want hibernated"
		}
		return ""
	})
	bad := Fixture("zero-maybe")
	bad.Labels = &map[string]string{"com.openfaas.scale.zero": "sometimes"}
	if code, body := p.Request("POST", "/system/functions", bad); code != http.StatusBadRequest || !strings.Contains(body, `com.openfaas.scale.zero="sometimes"`) {
		t.Errorf("deploy with scale.zero=sometimes: %d %s, want 400 naming the label", code, body)
	}
	p.Delete("zero-one")
}
