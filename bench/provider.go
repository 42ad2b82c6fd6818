package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/faas-criu/faas-criu/test/harness"
)

// providerOpts says how to start one faas-criu provider for the benchmark.
type providerOpts struct {
	Bin     string   // bin/faas-criu
	Network string   // its own bridge network
	Subnet  string   // of that network
	LogPath string   // where its output goes (kept after the run)
	Extra   []string // further serve flags
	Env     []string // further environment ("NAME=value"), e.g. another engine's DOCKER_HOST
}

// Provider is one faas-criu process the benchmark started, with its own
// state directory, port and network.
type Provider struct {
	URL      string
	User     string
	Pass     string
	StateDir string
	Network  string
	LogPath  string

	bin    string
	args   []string
	env    []string
	cmd    *exec.Cmd
	done   chan struct{}
	logF   *os.File
	client *http.Client
}

// StartProvider runs `faas-criu serve` and waits until it answers /healthz.
// Stop it with Stop; the caller removes its functions first.
func StartProvider(ctx context.Context, o providerOpts) (*Provider, error) {
	port, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	state, err := os.MkdirTemp("", "faas-criu-bench-")
	if err != nil {
		return nil, fmt.Errorf("provider state dir: %w", err)
	}
	logF, err := os.Create(o.LogPath)
	if err != nil {
		os.RemoveAll(state)
		return nil, fmt.Errorf("provider log: %w", err)
	}
	args := append([]string{"serve",
		"--port", fmt.Sprint(port),
		"--state-dir", state,
		"--network", o.Network,
		"--subnet", o.Subnet,
		"--autoscale=false",
	}, o.Extra...)
	p := &Provider{
		URL:      fmt.Sprintf("http://127.0.0.1:%d", port),
		StateDir: state,
		Network:  o.Network,
		LogPath:  o.LogPath,
		bin:      o.Bin,
		args:     args,
		env:      append(os.Environ(), o.Env...),
		logF:     logF,
		client: &http.Client{Timeout: 120 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 16, IdleConnTimeout: time.Minute,
		}},
	}
	if err := p.spawn(); err != nil {
		logF.Close()
		os.RemoveAll(state)
		return nil, err
	}
	if err := p.waitHealthy(ctx, 30*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(state, "credentials", "basic-auth-password"))
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("provider credentials: %w", err)
	}
	p.User, p.Pass = "admin", strings.TrimSpace(string(b))
	return p, nil
}

// spawn starts the provider's process with its arguments.
func (p *Provider) spawn() error {
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = p.logF, p.logF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() { _ = cmd.Wait(); close(done) }()
	return nil
}

// Restart ends the provider with SIGTERM and starts it again on the same
// state directory and port, returning when the new process was started
// (the caller times how long it takes to serve).
func (p *Provider) Restart(ctx context.Context) (started time.Time, err error) {
	return p.RestartWith(ctx, p.bin)
}

// RestartWith restarts the provider as Restart does, from the binary bin
// (another build of it) from now on.
func (p *Provider) RestartWith(ctx context.Context, bin string) (started time.Time, err error) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	}
	p.client.CloseIdleConnections()
	p.bin = bin
	started = time.Now()
	return started, p.spawn()
}

func (p *Provider) waitHealthy(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("provider exited at start; see %s", p.LogPath)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := p.client.Get(p.URL + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("provider did not answer /healthz within %s; see %s", timeout, p.LogPath)
}

// PID is the provider's process id.
func (p *Provider) PID() int { return p.cmd.Process.Pid }

// InstanceID is the label value the provider puts on its containers.
func (p *Provider) InstanceID() string {
	b, _ := os.ReadFile(filepath.Join(p.StateDir, "instance-id"))
	return strings.TrimSpace(string(b))
}

// Stop ends the provider with SIGTERM (SIGKILL after 15 s) and removes its
// state directory. Its containers are the caller's to remove.
func (p *Provider) Stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	}
	p.logF.Close()
	p.client.CloseIdleConnections()
	os.RemoveAll(p.StateDir)
}
