package provider

import (
	"context"
	"net"
	"testing"

	"github.com/faas-criu/faas-criu/checkpoint"
)

// runtimesByRole deploys a function on eng, calls it, and returns the
// runtime its function container and its sandbox were created with.
func runtimesByRole(t *testing.T, eng *fakeEngine, criu bool) (fn, sandbox string) {
	t.Helper()
	eng.addImage(testImage)
	cfg := Config{StateDir: t.TempDir(), Network: "fake", Subnet: "127.77.0.0/24", FunctionPort: eng.port,
		ReadyTimeout: 5e9, WakeTimeout: 5e9, DrainTimeout: 1e9, ContainerdTmp: t.TempDir()}
	p, err := New(context.Background(), cfg, eng, WithCRIU(checkpoint.Capabilities{Available: criu, NonRootFunctions: true}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	deploy(t, p, "rt", map[string]string{labelStrategy: "checkpoint"})
	if _, err := invoke(p, "rt"); err != nil {
		t.Fatal(err)
	}
	eng.mu.Lock()
	for _, c := range eng.containers {
		if c.spec.Labels[labelRole] == roleSandbox {
			sandbox = c.spec.Runtime
		} else {
			fn = c.spec.Runtime
		}
	}
	eng.mu.Unlock()
	return fn, sandbox
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Function containers run with the engine's faas-criu runtime when the
// engine offers it and CRIU is in use; sandboxes (never checkpointed) and
// engines without it keep the default runtime.
func TestFunctionRuntime(t *testing.T) {
	for _, c := range []struct {
		name        string
		runtimes    []string
		criu        bool
		fn, sandbox string
	}{
		{"offered", []string{"faas-criu", "runc"}, true, CRIURuntime, ""},
		{"not offered", []string{"runc"}, false, "", ""},
		{"offered, CRIU unusable", []string{"faas-criu", "runc"}, false, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			eng := newFakeEngine(t, freePort(t))
			eng.runtimes = c.runtimes
			fn, sandbox := runtimesByRole(t, eng, c.criu)
			if fn != c.fn || sandbox != c.sandbox {
				t.Errorf("function container's runtime %q, sandbox's %q; want %q, %q", fn, sandbox, c.fn, c.sandbox)
			}
		})
	}
}
