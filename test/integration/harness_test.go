//go:build integration

// Package integration drives a real faas-criu provider over HTTP against the
// real Docker engine and CRIU, the way faas-cli and the OpenFaaS gateway do.
// `make test` sets up the engine first; without one these tests fail.
package integration

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/openfaas/faas-provider/types"

	ckpt "github.com/faas-criu/faas-criu/checkpoint"
	"github.com/faas-criu/faas-criu/test/harness"
)

// FixtureImage is the test function (test/fixture), built at the start of
// the run.
const FixtureImage = "faas-criu-test/fixture:latest"

var (
	repoRoot    string
	providerBin string
	// The version and commit the provider under test is built with.
	providerVersion = "it"
	providerCommit  string
	docker          *client.Client
	subnetSeq       atomic.Int32
)

func TestMain(m *testing.M) {
	code, err := setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration setup: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code(m))
}

func setup() (func(*testing.M) int, error) {
	var err error
	if repoRoot, err = filepath.Abs("../.."); err != nil {
		return nil, err
	}
	docker, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := docker.Ping(ctx); err != nil {
		return nil, fmt.Errorf("the Docker engine does not answer (%v): run `make test`, which starts it", err)
	}
	tmp, err := os.MkdirTemp("", "faas-criu-it-")
	if err != nil {
		return nil, err
	}
	providerBin = filepath.Join(tmp, "faas-criu")
	providerCommit = "no-git"
	if out, err := exec.Command("git", "-C", repoRoot, "rev-parse", "HEAD").Output(); err == nil {
		providerCommit = strings.TrimSpace(string(out))
	}
	stamp := "-X main.version=" + providerVersion + " -X main.commit=" + providerCommit
	if os.Getenv("FAAS_CRIU_TEST_RACE") == "1" {
		// The provider under the race detector (needs cgo).
		cmd := exec.Command("go", "build", "-race", "-ldflags", stamp, "-o", providerBin, ".")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build -race: %v\n%s", err, b)
		}
	} else if err := goBuild(providerBin, ".", stamp); err != nil {
		return nil, err
	}
	if err := BuildGoImage(FixtureImage, "./test/fixture", nil); err != nil {
		return nil, err
	}
	return func(m *testing.M) int {
		defer os.RemoveAll(tmp)
		defer stopSecondEngine()
		return m.Run()
	}, nil
}

// goBuild builds a static binary, with more linker flags when given.
func goBuild(out, pkg string, ldflags ...string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", strings.Join(append([]string{"-s"}, ldflags...), " "), "-o", out, pkg)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// buildInit builds faas-criu-init from this tree into the test's temporary
// directory (scripts/setup.sh installs the same build for the provider).
func buildInit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "faas-criu-init")
	if err := goBuild(bin, "./cmd/faas-criu-init"); err != nil {
		t.Fatalf("build faas-criu-init: %v", err)
	}
	return bin
}

// BuildGoImage compiles a Go main package statically and builds a FROM
// scratch image of it, with extra files added at the given paths.
func BuildGoImage(tag, pkg string, extra map[string]string) error {
	dir, err := os.MkdirTemp("", "faas-criu-img-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "fn")
	if err := goBuild(bin, pkg); err != nil {
		return err
	}
	binBytes, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"Dockerfile": []byte("FROM scratch\nCOPY fn /fn\nCOPY tmp /tmp\nENTRYPOINT [\"/fn\"]\n"),
		"fn":         binBytes,
		"tmp/.keep":  nil,
	}
	for path, content := range extra {
		files[path] = []byte(content)
	}
	return BuildImage(tag, files)
}

// BuildImage builds an image from an in-memory build context.
func BuildImage(tag string, files map[string][]byte) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		mode := int64(0o644)
		if name == "fn" || strings.HasPrefix(name, "bin/") {
			mode = 0o755 // programs
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(content); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := docker.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("build %s: %s", tag, out)
	}
	return nil
}

// Provider is one faas-criu process under test, with its own state
// directory, port, network and subnet.
type Provider struct {
	t        *testing.T
	URL      string
	User     string
	Pass     string
	StateDir string
	Network  string
	port     int
	args     []string
	env      []string
	// engine and dockerRoot are the engine the provider drives (the first
	// one unless StartProviderOnB) and its data root.
	engine     *client.Client
	dockerRoot string

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freePort(t *testing.T) int {
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// StartProvider starts a provider for one test and stops and cleans it up
// (its containers, network and state) when the test ends. Autoscaling is off
// unless extraArgs turn it on, so that tests count replicas exactly.
func StartProvider(t *testing.T, extraArgs ...string) *Provider {
	t.Helper()
	return StartProviderEnv(t, nil, extraArgs...)
}

// StartProviderEnv is StartProvider with environment variables replaced
// (entries "NAME=value").
func StartProviderEnv(t *testing.T, env []string, extraArgs ...string) *Provider {
	t.Helper()
	p := newProvider(t)
	p.args = append(append(p.args,
		"--port", fmt.Sprint(p.port),
		"--wake-timeout", "20s",
		"--reconcile-every", "2s",
		"--policy-tick", "200ms",
		"--autoscale=false",
	), extraArgs...)
	p.env = env
	t.Cleanup(p.cleanup)
	p.Start()
	return p
}

// firstEngineRoot is the data root of the engine DOCKER_HOST names (the
// main one unless a session points the tests at an engine of its own:
// FAAS_CRIU_TEST_DOCKER_ROOT, e.g. /var/lib/faas-criu-engine-NAME).
var firstEngineRoot = cmp.Or(os.Getenv("FAAS_CRIU_TEST_DOCKER_ROOT"), "/var/lib/docker")

// The providers' networks: named NETPREFIX-PID-K, on subnets
// SUBNET.K.0/24. By default "fct" and 10.(100 + PID % 100), which two runs
// on one machine (a CI run and a session's) may share by chance: a session
// given its own sets FAAS_CRIU_TEST_NETWORK_PREFIX and
// FAAS_CRIU_TEST_SUBNET ("10.84").
var (
	networkPrefix = cmp.Or(os.Getenv("FAAS_CRIU_TEST_NETWORK_PREFIX"), "fct")
	subnetPrefix  = cmp.Or(os.Getenv("FAAS_CRIU_TEST_SUBNET"), fmt.Sprintf("10.%d", 100+os.Getpid()%100))
)

// newProvider prepares a provider of its own: state directory, free port,
// network and subnet, with the serve flags that give them (but the port).
func newProvider(t *testing.T) *Provider {
	k := subnetSeq.Add(1)
	p := &Provider{
		t:          t,
		engine:     docker,
		dockerRoot: firstEngineRoot,
		StateDir:   t.TempDir(),
		Network:    fmt.Sprintf("%s-%d-%d", networkPrefix, os.Getpid()%10000, k),
		port:       freePort(t),
	}
	p.URL = fmt.Sprintf("http://127.0.0.1:%d", p.port)
	p.args = []string{"serve",
		"--state-dir", p.StateDir,
		"--network", p.Network,
		"--subnet", fmt.Sprintf("%s.%d.0/24", subnetPrefix, k%250),
	}
	return p
}

// Running counts the running containers of a function.
func (p *Provider) Running(name string) int {
	n := 0
	for _, c := range p.Containers(name) {
		if c.State == "running" {
			n++
		}
	}
	return n
}

// readCredentials reads what the provider generated (again after its state
// was wiped).
func (p *Provider) readCredentials() {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.StateDir, "credentials", "basic-auth-password"))
	if err != nil {
		p.t.Fatalf("provider generated no credentials: %v\n%s", err, p.Logs())
	}
	p.User, p.Pass = "admin", strings.TrimSpace(string(b))
}

// Start runs the provider process and waits for /healthz.
func (p *Provider) Start() {
	p.t.Helper()
	p.mu.Lock()
	if p.logs == nil {
		p.logs = &syncBuffer{}
	}
	cmd := exec.Command(providerBin, p.args...)
	cmd.Env = mergeEnv(os.Environ(), p.env)
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()

	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			p.t.Fatalf("provider exited at start:\n%s", p.Logs())
		default:
		}
		resp, err := http.Get(p.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				p.readCredentials()
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatalf("provider did not answer /healthz:\n%s", p.Logs())
}

// Kill stops the provider with SIGKILL, as a crash would.
func (p *Provider) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Stop stops the provider with SIGTERM.
func (p *Provider) Stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// Restart kills the provider and starts it again on the same state.
func (p *Provider) Restart() {
	p.t.Helper()
	p.Kill()
	p.Start()
}

// Logs returns everything the provider printed.
func (p *Provider) Logs() string {
	if p.logs == nil {
		return ""
	}
	return p.logs.String()
}

// InstanceID is the label value on this provider's containers.
func (p *Provider) InstanceID() string {
	b, _ := os.ReadFile(filepath.Join(p.StateDir, "instance-id"))
	return strings.TrimSpace(string(b))
}

// Containers lists this provider's function containers of one function
// ("" for all), without their network sandboxes.
func (p *Provider) Containers(name string) []container.Summary {
	p.t.Helper()
	var out []container.Summary
	for _, c := range p.AllContainers(name) {
		if c.Labels["io.faas-criu.role"] != "sandbox" {
			out = append(out, c)
		}
	}
	return out
}

// AllContainers lists every container of the provider for one function
// ("" for all), sandboxes included.
func (p *Provider) AllContainers(name string) []container.Summary {
	p.t.Helper()
	f := filters.NewArgs(filters.Arg("label", "io.faas-criu.instance="+p.InstanceID()))
	if name != "" {
		f.Add("label", "com.openfaas.function="+name)
	}
	list, err := p.engine.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
	if err != nil {
		p.t.Fatal(err)
	}
	return list
}

func (p *Provider) cleanup() {
	p.Stop()
	if strings.Contains(p.Logs(), "DATA RACE") {
		p.t.Errorf("the race detector reported a data race in the provider")
	}
	if p.t.Failed() {
		p.t.Logf("provider log:\n%s", p.Logs())
	}
	ctx := context.Background()
	if id := p.InstanceID(); id != "" {
		f := filters.NewArgs(filters.Arg("label", "io.faas-criu.instance="+id))
		list, _ := p.engine.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		for _, c := range list {
			_ = removeContainer(ctx, p.engine, c.ID)
		}
	}
	_ = p.engine.NetworkRemove(ctx, p.Network)
}

// containerdTmp is where containerd unpacks the checkpoints it restores (the
// provider's --containerd-tmp default).
const containerdTmp = "/tmp"

// removeContainer removes a container behind the provider's back, as a
// test or its clean-up does, with what containerd left in /tmp of its
// checkpoints (which the provider removes with the containers it removes).
func removeContainer(ctx context.Context, engine *client.Client, id string) error {
	err := engine.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	ckpt.RemoveContainerdLeftoversOf(containerdTmp, id)
	return err
}

// Request makes an HTTP request to the provider with its credentials and
// returns the status and body.
func (p *Provider) Request(method, path string, body any) (int, string) {
	p.t.Helper()
	return p.request(method, path, body, true)
}

// RequestNoAuth makes a request without credentials.
func (p *Provider) RequestNoAuth(method, path string, body any) (int, string) {
	p.t.Helper()
	return p.request(method, path, body, false)
}

func (p *Provider) request(method, path string, body any, auth bool) (int, string) {
	p.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			p.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, p.URL+path, r)
	if err != nil {
		p.t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(p.User, p.Pass)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// Deploy posts a FunctionDeployment, as faas-cli deploy does for a new
// function, and fails the test unless it is accepted.
func (p *Provider) Deploy(dep types.FunctionDeployment) {
	p.t.Helper()
	if code, body := p.Request("POST", "/system/functions", dep); code != http.StatusAccepted {
		p.t.Fatalf("deploy %s: %d %s", dep.Service, code, body)
	}
}

// Delete removes a function and fails the test unless it is accepted.
func (p *Provider) Delete(name string) {
	p.t.Helper()
	if code, body := p.Request("DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: name}); code != http.StatusAccepted {
		p.t.Fatalf("delete %s: %d %s", name, code, body)
	}
}

// Scale sets the replica count and fails the test unless it is accepted.
func (p *Provider) Scale(name string, n uint64) {
	p.t.Helper()
	if code, body := p.Request("POST", "/system/scale-function/"+name, types.ScaleServiceRequest{ServiceName: name, Replicas: n}); code != http.StatusAccepted {
		p.t.Fatalf("scale %s to %d: %d %s", name, n, code, body)
	}
}

// Status returns a function's status.
func (p *Provider) Status(name string) types.FunctionStatus {
	p.t.Helper()
	code, body := p.Request("GET", "/system/function/"+name, nil)
	if code != http.StatusOK {
		p.t.Fatalf("status %s: %d %s", name, code, body)
	}
	var st types.FunctionStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		p.t.Fatalf("status %s: %v: %s", name, err, body)
	}
	return st
}

// List returns the functions of the default namespace.
func (p *Provider) List() []types.FunctionStatus {
	p.t.Helper()
	code, body := p.Request("GET", "/system/functions", nil)
	if code != http.StatusOK {
		p.t.Fatalf("list: %d %s", code, body)
	}
	var list []types.FunctionStatus
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		p.t.Fatalf("list: %v: %s", err, body)
	}
	return list
}

// WaitAvailable waits until a function reports n available replicas.
func (p *Provider) WaitAvailable(name string, n uint64) types.FunctionStatus {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var st types.FunctionStatus
	for time.Now().Before(deadline) {
		st = p.Status(name)
		if st.AvailableReplicas == n && st.Replicas == n {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Said on the failure's own line: CI's excerpt keeps the test's lines
	// but not the provider log printed at cleanup.
	p.t.Fatalf("%s: want %d available replicas, have replicas=%d available=%d; its containers: %s; the provider's last warnings: %s",
		name, n, st.Replicas, st.AvailableReplicas, p.containerStates(name), lastWarnings(p.Logs(), 4))
	return st
}

// containerStates says what the engine reports of a function's containers
// (sandboxes included), or why it cannot.
func (p *Provider) containerStates(name string) string {
	f := filters.NewArgs(filters.Arg("label", "io.faas-criu.instance="+p.InstanceID()), filters.Arg("label", "com.openfaas.function="+name))
	list, err := p.engine.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, c := range list {
		out = append(out, strings.TrimPrefix(c.Names[0], "/")+" "+c.Status)
	}
	return fmt.Sprintf("%q", out)
}

// lastWarnings returns the last n WARN or ERROR lines of a provider log.
func lastWarnings(log string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return fmt.Sprintf("%q", out[max(0, len(out)-n):])
}

// Invoke calls a function (no credentials, as in OpenFaaS) and returns the
// status and body.
func (p *Provider) Invoke(name, path string) (int, string) {
	p.t.Helper()
	return p.InvokeWith("GET", name, path, nil)
}

// InvokeWith calls a function with a method and body.
func (p *Provider) InvokeWith(method, name, path string, body io.Reader) (int, string) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.URL+"/function/"+name+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		p.t.Fatalf("invoke %s%s: %v", name, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(out))
}

// MustInvoke calls a function and fails the test unless it answers 200.
func (p *Provider) MustInvoke(name, path string) string {
	p.t.Helper()
	code, body := p.Invoke(name, path)
	if code != http.StatusOK {
		p.t.Fatalf("invoke %s%s: %d %s", name, path, code, body)
	}
	return body
}

// Fixture is a deployment of the test function.
func Fixture(name string) types.FunctionDeployment {
	return types.FunctionDeployment{Service: name, Image: FixtureImage}
}

// eventually retries check until it returns "" or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, check func() string) {
	t.Helper()
	if err := harness.Poll(timeout, 50*time.Millisecond, check); err != nil {
		t.Fatalf("condition not met: %v", err)
	}
}

func mergeEnv(base, over []string) []string {
	out := []string{}
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		replaced := false
		for _, o := range over {
			if strings.HasPrefix(o, name+"=") {
				replaced = true
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return append(out, over...)
}

// Metric returns the value of one series on /metrics (0 when absent).
func (p *Provider) Metric(series string) float64 {
	p.t.Helper()
	_, body := p.RequestNoAuth("GET", "/metrics", nil)
	for _, l := range strings.Split(body, "\n") {
		if name, val, ok := strings.Cut(l, " "); ok && name == series {
			var f float64
			fmt.Sscan(val, &f)
			return f
		}
	}
	return 0
}

// CheckpointDirs lists the checkpoint directories of a function's containers.
func (p *Provider) CheckpointDirs(name string) []string {
	p.t.Helper()
	var out []string
	for _, c := range p.Containers(name) {
		dirs, _ := filepath.Glob(filepath.Join(p.dockerRoot, "containers", c.ID, "checkpoints", "*"))
		out = append(out, dirs...)
	}
	return out
}

// Annotation returns one annotation of a function's status.
func (p *Provider) Annotation(name, key string) string {
	p.t.Helper()
	st := p.Status(name)
	if st.Annotations == nil {
		return ""
	}
	return (*st.Annotations)[key]
}

// WaitState waits until a function's com.openfaas.criu.state annotation
// reads state.
func (p *Provider) WaitState(name, state string, timeout time.Duration) {
	p.t.Helper()
	eventually(p.t, timeout, func() string {
		if got := p.Annotation(name, "com.openfaas.criu.state"); got != state {
			return name + " is " + got + ", want " + state
		}
		return ""
	})
}

// CLI runs the faas-criu command (build, deploy, ...) against this provider,
// with its credentials, and returns its combined output.
func (p *Provider) CLI(dir string, args ...string) (string, error) {
	p.t.Helper()
	cmd := exec.Command(providerBin, args...)
	cmd.Dir = dir
	cmd.Env = mergeEnv(os.Environ(), []string{
		"OPENFAAS_URL=" + p.URL,
		"secret_mount_path=" + filepath.Join(p.StateDir, "credentials"),
		"OPENFAAS_CONFIG=" + p.t.TempDir(),
	})
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// tool finds a real OpenFaaS binary: env, then PATH. Missing, the suite
// fails and says where to get it; it never skips.
func tool(t *testing.T, env, name string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not found (set %s or put it on PATH): `make test` and `make conformance` take the unmodified builds in "+
		"../shared/ecosystem/bin (beside the clone; see its README.md). Without them these tests cannot run.", name, env)
	return ""
}
