//go:build integration

package integration

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// The second engine stands in for a second box: its own socket, data root,
// exec root and bridge (scripts/second-engine.sh). It starts with the first
// test that needs it and stops at the end of the run. Its name is "it", or
// FAAS_CRIU_TEST_ENGINE (one's own, when several people test on one machine).
var engineName = cmp.Or(os.Getenv("FAAS_CRIU_TEST_ENGINE"), "it")

var (
	engineB     struct{ host, root string }
	engineBOnce sync.Once
	engineBErr  error
	dockerB     *client.Client
)

// SecondEngine returns the second engine's DOCKER_HOST and data root.
func SecondEngine(t *testing.T) (host, root string) {
	t.Helper()
	engineBOnce.Do(func() {
		out, err := exec.Command(filepath.Join(repoRoot, "scripts", "second-engine.sh"), "start", engineName).CombinedOutput()
		if err != nil {
			engineBErr = fmt.Errorf("second engine: %v\n%s", err, out)
			return
		}
		engineB.host = strings.TrimSpace(string(out))
		engineB.root = "/var/lib/faas-criu-engine-" + engineName
		dockerB, engineBErr = client.NewClientWithOpts(client.WithHost(engineB.host), client.WithAPIVersionNegotiation())
	})
	if engineBErr != nil {
		t.Fatal(engineBErr)
	}
	return engineB.host, engineB.root
}

// stopSecondEngine stops the second engine if a test started it, and
// removes its data.
func stopSecondEngine() {
	if engineB.host != "" {
		exec.Command(filepath.Join(repoRoot, "scripts", "second-engine.sh"), "purge", engineName).Run()
	}
}

// StartProviderOnB starts a provider on the second engine.
func StartProviderOnB(t *testing.T, extraArgs ...string) *Provider {
	t.Helper()
	host, root := SecondEngine(t)
	p := StartProviderEnv(t, []string{"DOCKER_HOST=" + host}, extraArgs...)
	p.engine, p.dockerRoot = dockerB, root
	return p
}

// LoadImageOnB copies an image from the first engine to the second.
func LoadImageOnB(t *testing.T, ref string) {
	t.Helper()
	SecondEngine(t)
	rc, err := docker.ImageSave(context.Background(), []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	resp, err := dockerB.ImageLoad(context.Background(), rc)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// FaasCLIConfig writes the config faas-cli login would write for these
// gateways and returns its directory (for OPENFAAS_CONFIG).
func FaasCLIConfig(t *testing.T, gateways map[string][2]string) string {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("auths:\n")
	for url, up := range gateways {
		token := base64.StdEncoding.EncodeToString([]byte(up[0] + ":" + up[1]))
		fmt.Fprintf(&b, "- gateway: %s\n  auth: basic\n  token: %s\n", url, token)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Run runs a faas-criu client command with the given environment.
func Run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(providerBin, args...)
	cmd.Env = mergeEnv(os.Environ(), append([]string{"secret_mount_path=/nonexistent"}, env...))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// LinkProxy is a TCP proxy on loopback in front of a provider: it can slow
// the link to a given rate and cut a connection after a number of bytes
// sent upstream.
type LinkProxy struct {
	URL       string
	l         net.Listener
	bytesPerS int64
	cutAfter  atomic.Int64 // 0: never
	sent      atomic.Int64
}

// NewLinkProxy proxies to target ("127.0.0.1:port"), at bytesPerS (0: no
// limit) in the direction of the target.
func NewLinkProxy(t *testing.T, target string, bytesPerS int64) *LinkProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lp := &LinkProxy{URL: "http://" + l.Addr().String(), l: l, bytesPerS: bytesPerS}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go lp.serve(c, target)
		}
	}()
	return lp
}

// CutAfter makes the proxy drop connections once n bytes went upstream.
func (lp *LinkProxy) CutAfter(n int64) { lp.cutAfter.Store(n) }

func (lp *LinkProxy) serve(c net.Conn, target string) {
	defer c.Close()
	if lp.bytesPerS > 0 {
		// A slow link holds little in flight: keep the receive window small.
		c.(*net.TCPConn).SetReadBuffer(64 << 10)
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer up.Close()
	go io.Copy(c, up)
	buf := make([]byte, 16<<10)
	start := time.Now()
	var total int64
	for {
		n, err := c.Read(buf)
		if n > 0 {
			total += int64(n)
			if cut := lp.cutAfter.Load(); cut > 0 && lp.sent.Add(int64(n)) > cut {
				return
			}
			if lp.bytesPerS > 0 {
				due := time.Duration(float64(total) / float64(lp.bytesPerS) * float64(time.Second))
				if wait := due - time.Since(start); wait > 0 {
					time.Sleep(wait)
				}
			}
			if _, err := up.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			if tc, ok := up.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			time.Sleep(100 * time.Millisecond)
			return
		}
	}
}
