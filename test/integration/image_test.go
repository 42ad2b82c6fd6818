//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

// TestProviderImage builds the provider's image from the repository's
// Dockerfile (as make image does, from the static binary), runs it with the
// engine's socket mounted, and drives it like the provider on the host.
func TestProviderImage(t *testing.T) {
	// A static build, as make image makes (the tests' provider may be a
	// race-detector build, which needs a C library).
	static := filepath.Join(t.TempDir(), "faas-criu")
	if err := goBuild(static, "."); err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(static)
	if err != nil {
		t.Fatal(err)
	}
	dockerfile, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	const tag = "faas-criu-test/provider:latest"
	if err := BuildImage(tag, map[string][]byte{"Dockerfile": dockerfile, "bin/faas-criu": bin}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { docker.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true}) })

	state := t.TempDir() // mounted at the same path: secrets are bind-mounted from it
	port := freePort(t)
	network := fmt.Sprintf("%s-img-%d", networkPrefix, os.Getpid()%10000)
	subnet := subnetPrefix + ".250.0/24"
	bind := func(src string, ro bool) mount.Mount {
		return mount.Mount{Type: mount.TypeBind, Source: src, Target: src, ReadOnly: ro}
	}
	ctx := context.Background()
	resp, err := docker.ContainerCreate(ctx, &container.Config{
		Image: tag,
		Cmd: []string{"serve", "--port", fmt.Sprint(port), "--state-dir", state, "--network", network, "--subnet", subnet,
			"--autoscale=false", "--containerd-tmp", "/host-tmp"},
	}, &container.HostConfig{
		NetworkMode: "host",
		Mounts: []mount.Mount{
			bind("/var/run/docker.sock", false), bind(state, false), bind("/var/lib/docker", false),
			bind("/etc/criu", true), bind("/sys/fs/cgroup", true), bind("/var/lib/faas-criu/criu-verified", true),
			bind("/var/lib/faas-criu/criu-work", false),
			{Type: mount.TypeBind, Source: "/tmp", Target: "/host-tmp"},
		},
	}, nil, nil, network+"-provider")
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{t: t, URL: fmt.Sprintf("http://127.0.0.1:%d", port), StateDir: state, Network: network,
		engine: docker, dockerRoot: "/var/lib/docker"}
	// Whatever happens below: the provider's log when the test failed, then
	// the provider's container, then its functions' containers (found by
	// the instance label, in the state directory, which outlives this) and
	// its network. Cleanups run last-registered first: the state directory
	// (t.TempDir above) is removed after this.
	t.Cleanup(func() {
		ctx := context.Background()
		if t.Failed() {
			if logs, err := docker.ContainerLogs(ctx, resp.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
				b := new(strings.Builder)
				stdcopy.StdCopy(b, b, logs) // the engine multiplexes stdout and stderr
				logs.Close()
				t.Logf("provider log:\n%s", b)
			}
		}
		if err := docker.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("removing the provider's container: %v", err)
		}
		if id := p.InstanceID(); id != "" {
			f := filters.NewArgs(filters.Arg("label", "io.faas-criu.instance="+id))
			list, err := docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
			if err != nil {
				t.Errorf("listing the functions' containers: %v", err)
			}
			for _, c := range list {
				if err := removeContainer(ctx, docker, c.ID); err != nil {
					t.Errorf("removing %v: %v", c.Names, err)
				}
			}
		}
		if err := docker.NetworkRemove(ctx, network); err != nil && !client.IsErrNotFound(err) {
			t.Errorf("removing network %s: %v", network, err)
		}
	})
	if err := docker.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() string {
		r, err := http.Get(p.URL + "/healthz")
		if err != nil {
			return err.Error()
		}
		r.Body.Close()
		return ""
	})
	p.readCredentials()

	_, body := p.Request("GET", "/system/info?shape=provider", nil)
	var info struct {
		Provider string
		CRIU     struct{ Available bool }
	}
	json.Unmarshal([]byte(body), &info)
	if info.Provider != "faas-criu" || !info.CRIU.Available {
		t.Errorf("info from the containerised provider: %s", body)
	}
	p.Deploy(Fixture("boxed"))
	counts(p, "boxed", 2)
	p.Scale("boxed", 0)
	if s := p.Annotation("boxed", stateAnnotation); s != "hibernated" {
		t.Errorf("state %s", s)
	}
	if got := counts(p, "boxed", 1); got[0] != 3 {
		t.Errorf("after hibernation in the containerised provider: %v, want 3", got)
	}
	p.Delete("boxed")
	if left := p.AllContainers("boxed"); len(left) != 0 {
		t.Errorf("%d containers left", len(left))
	}
}
