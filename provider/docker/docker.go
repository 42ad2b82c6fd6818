// Package docker is the provider's Engine on the Docker API: containers,
// sandboxes and their addresses, networks, images, logs and checkpoints.
// It is the only package that speaks Docker; package provider sees its own
// types only.
package docker

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/checkpoint"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/faas-criu/faas-criu/provider"
)

// Engine drives one Docker engine.
type Engine struct {
	c *client.Client
	// rootDir is the engine's data directory, where it keeps checkpoints.
	rootDir string
	// ctrd is the engine's containerd, asked directly for checkpoints.
	ctrd containerd
	// initPath is faas-criu-init ("": no in-place hibernation); initBase
	// holds the per-container directories of the init (inplace.go).
	initPath, initBase string
}

var _ provider.Engine = (*Engine)(nil)

// New connects to the engine the environment names (DOCKER_HOST, or the
// default socket), speaking the newest API version both sides know.
func New(opts ...Option) (*Engine, error) {
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation(), oneRequestPerConnection)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	e := &Engine{c: c, initBase: DefaultInitBase}
	for _, o := range opts {
		o(e)
	}
	return e, nil
}

// oneRequestPerConnection makes every API call dial the engine anew.
// dockerd, told to stop, closes its listener first and then stops its
// containers, but it goes on serving the connections already open. Over a
// kept-alive connection the provider, seeing its replicas die, started them
// again in the middle of the engine's teardown, and the engine accepted:
// the container's network namespace stayed mounted after the engine was
// gone (every time, when the teardown lasted seconds), and once, in CI, its
// root filesystem, so that the function's delete failed after the engine
// came back ("failed to remove root filesystem ... device or resource
// busy"). A new connection per call is refused once the listener is closed,
// so nothing reaches an engine that is shutting down
// (TestNoStartWhileTheEngineShutsDown). The price, measured here over 400
// container inspects: a median of 0.99 ms per call against 0.73 ms kept
// alive, about 0.3 ms on each of the few calls a wake makes.
func oneRequestPerConnection(c *client.Client) error {
	t, ok := c.HTTPClient().Transport.(*http.Transport)
	if !ok {
		return fmt.Errorf("docker client: its transport is a %T, not an *http.Transport: cannot turn keep-alive off", c.HTTPClient().Transport)
	}
	t.DisableKeepAlives = true
	return nil
}

// kind wraps err so that the provider can tell a missing object or a name
// conflict from other failures.
func kind(err error) error {
	switch {
	case err == nil:
		return nil
	case orphanTask(err):
		// Before the kinds: Docker may call it a conflict too, and the
		// provider must not take it for a name already in use.
		return fmt.Errorf("%w: %w", provider.ErrEngineTaskExists, err)
	case client.IsErrConnectionFailed(err):
		// Also a connection the engine broke mid-call ("error during
		// connect: ...: EOF"): it crashed, and what it did is unknown.
		return fmt.Errorf("%w: %w", provider.ErrEngineUnreachable, err)
	case taskPaused(err):
		return fmt.Errorf("%w: %w", provider.ErrEngineTaskPaused, err)
	case errdefs.IsNotFound(err):
		return fmt.Errorf("%w: %w", provider.ErrEngineNotFound, err)
	case errdefs.IsConflict(err):
		return fmt.Errorf("%w: %w", provider.ErrEngineConflict, err)
	}
	return err
}

// Info describes the engine, and remembers its data directory.
func (e *Engine) Info(ctx context.Context) (provider.EngineInfo, error) {
	info, err := e.c.Info(ctx)
	if err != nil {
		return provider.EngineInfo{}, fmt.Errorf("docker at %s: %w", e.c.DaemonHost(), err)
	}
	e.rootDir = info.DockerRootDir
	return provider.EngineInfo{
		Version:      info.ServerVersion,
		APIVersion:   e.c.ClientVersion(),
		RootDir:      info.DockerRootDir,
		Experimental: info.ExperimentalBuild,
		CgroupDriver: info.CgroupDriver,
		Kernel:       info.KernelVersion,
		Architecture: info.Architecture,
		Runtimes:     slices.Sorted(maps.Keys(info.Runtimes)),
		InPlace:      e.initPath != "",
	}, nil
}

// Close releases the connection.
func (e *Engine) Close() error { return e.c.Close() }

// CreateContainer creates a container. Every container's log is rotated
// (two files of 10 MB), so a chatty function cannot fill the disk.
func (e *Engine) CreateContainer(ctx context.Context, s provider.ContainerSpec) (string, error) {
	cfg := &container.Config{Image: s.Image, Env: s.Env, Labels: s.Labels}
	r := s.Resources
	hc := &container.HostConfig{
		ReadonlyRootfs: s.ReadOnlyRootfs,
		Tmpfs:          s.Tmpfs,
		Runtime:        s.Runtime,
		Resources: container.Resources{
			Memory: r.Memory, MemorySwap: r.MemorySwap, MemoryReservation: r.MemoryReservation,
			NanoCPUs: r.NanoCPUs, CPUShares: r.CPUShares,
		},
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{
			"max-size": "10m", "max-file": "2",
		}},
	}
	for _, m := range s.Mounts {
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	var nc *network.NetworkingConfig
	if s.NetworkOf != "" {
		hc.NetworkMode = container.NetworkMode("container:" + s.NetworkOf)
	} else if s.Network != "" {
		es := &network.EndpointSettings{}
		if s.IP != "" {
			es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: s.IP}
		}
		nc = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{s.Network: es}}
	}
	initBase := ""
	if s.Init {
		var err error
		if initBase, err = e.initContainer(ctx, s, cfg, hc); err != nil {
			return "", err
		}
	}
	resp, err := e.c.ContainerCreate(ctx, cfg, hc, nc, nil, s.Name)
	if err != nil {
		if initBase != "" {
			os.RemoveAll(initBase)
		}
		return "", kind(err)
	}
	return resp.ID, nil
}

func (e *Engine) StartContainer(ctx context.Context, id string) error {
	return kind(e.c.ContainerStart(ctx, id, container.StartOptions{}))
}

// orphanTask says a start failed because containerd still has a task of the
// container ("task ID: already exists"); Docker gives it no error kind of its
// own (it is a system error), so its message is all there is to go by.
func orphanTask(err error) bool {
	return strings.Contains(err.Error(), "already exists") && strings.Contains(err.Error(), "task ")
}

// taskPaused says a pause was refused because containerd's task already is
// paused while Docker counts the container as running: containerd's client
// inside dockerd pauses a task around a checkpoint and resumes it after, so
// a dockerd killed in between leaves it so ("cannot pause a paused
// container").
func taskPaused(err error) bool {
	return strings.Contains(err.Error(), "cannot pause a paused container")
}

func (e *Engine) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	timeout := int(grace / time.Second)
	return kind(e.c.ContainerStop(ctx, id, container.StopOptions{Timeout: &timeout}))
}

func (e *Engine) KillContainer(ctx context.Context, id string) error {
	return kind(e.c.ContainerKill(ctx, id, "KILL"))
}

// RemoveContainer removes a container, and an init container's directory
// with it.
func (e *Engine) RemoveContainer(ctx context.Context, id string) error {
	dir := ""
	if ci, err := e.c.ContainerInspect(ctx, id); err == nil {
		dir = initDirOf(ci.Mounts)
	}
	if err := e.c.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
		return kind(err)
	}
	e.removeInitDir(dir)
	return nil
}

func (e *Engine) RenameContainer(ctx context.Context, id, name string) error {
	return kind(e.c.ContainerRename(ctx, id, name))
}

func (e *Engine) PauseContainer(ctx context.Context, id string) error {
	return kind(e.c.ContainerPause(ctx, id))
}

func (e *Engine) UnpauseContainer(ctx context.Context, id string) error {
	return kind(e.c.ContainerUnpause(ctx, id))
}

func (e *Engine) InspectContainer(ctx context.Context, id string) (provider.ContainerState, error) {
	ci, err := e.c.ContainerInspect(ctx, id)
	if err != nil {
		return provider.ContainerState{}, kind(err)
	}
	if ci.State == nil {
		return provider.ContainerState{}, fmt.Errorf("inspect %s: the engine reported no state", id)
	}
	return provider.ContainerState{Running: ci.State.Running, Paused: ci.State.Paused, Status: ci.State.Status}, nil
}

func labelFilter(labels map[string]string) filters.Args {
	f := filters.NewArgs()
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	return f
}

func (e *Engine) ListContainers(ctx context.Context, labels map[string]string) ([]provider.Container, error) {
	list, err := e.c.ContainerList(ctx, container.ListOptions{All: true, Filters: labelFilter(labels)})
	if err != nil {
		return nil, kind(err)
	}
	out := make([]provider.Container, 0, len(list))
	for _, c := range list {
		pc := provider.Container{ID: c.ID, State: c.State, Labels: c.Labels, Addresses: map[string]string{}}
		if len(c.Names) > 0 {
			pc.Name = strings.TrimPrefix(c.Names[0], "/")
		}
		if c.NetworkSettings != nil {
			for name, es := range c.NetworkSettings.Networks {
				if es == nil {
					continue
				}
				ip := es.IPAddress
				if es.IPAMConfig != nil && es.IPAMConfig.IPv4Address != "" {
					ip = es.IPAMConfig.IPv4Address
				}
				pc.Addresses[name] = ip
			}
		}
		out = append(out, pc)
	}
	return out, nil
}

func (e *Engine) WaitStopped(ctx context.Context, id string) error {
	okC, errC := e.c.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case <-okC:
		return nil
	case err := <-errC:
		return kind(err)
	}
}

// ContainerLogs demultiplexes Docker's log stream (stdout and stderr framed
// in one stream, as for a container without a terminal).
func (e *Engine) ContainerLogs(ctx context.Context, id string, o provider.LogsOptions) (io.ReadCloser, error) {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: o.Follow}
	if o.Tail > 0 {
		opts.Tail = strconv.Itoa(o.Tail)
	}
	if !o.Since.IsZero() {
		opts.Since = o.Since.Format(time.RFC3339Nano)
	}
	rc, err := e.c.ContainerLogs(ctx, id, opts)
	if err != nil {
		return nil, kind(err)
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		pw.CloseWithError(err)
	}()
	return demuxed{pr, rc}, nil
}

// demuxed is a demultiplexed log stream; closing it closes the engine's.
type demuxed struct {
	*io.PipeReader
	raw io.Closer
}

func (d demuxed) Close() error {
	d.PipeReader.Close()
	return d.raw.Close()
}

// CreateCheckpoint has the engine's containerd write the checkpoint straight
// where dockerd keeps it (see containerd.go), and asks Docker's checkpoint
// API when that cannot be done.
func (e *Engine) CreateCheckpoint(ctx context.Context, id string, o provider.CheckpointOptions) error {
	err := e.checkpointDirect(ctx, id, o)
	if err == nil || !beforeDump(err) {
		return err
	}
	slog.Debug("checkpoint through Docker's API", "container", id, "why", err)
	return kind(e.c.CheckpointCreate(ctx, id, checkpoint.CreateOptions{CheckpointID: o.Name, CheckpointDir: o.Dir, Exit: o.Exit}))
}

// fullID is a container's id as containerd knows it.
var fullID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// checkpointNames is Docker's rule for checkpoint names.
var checkpointNames = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// checkpointDirect asks the engine's containerd to checkpoint container id
// (its full id, as containerd knows it) into the directory dockerd would
// have unpacked the checkpoint to. Like dockerd's, the dump runs to its end
// even if ctx ends: cancelling runc mid-dump could leave the container
// frozen.
func (e *Engine) checkpointDirect(ctx context.Context, id string, o provider.CheckpointOptions) error {
	if e.rootDir == "" || !fullID.MatchString(id) || !checkpointNames.MatchString(o.Name) {
		return fmt.Errorf("%w: engine root unknown, or container %q or checkpoint name %q not as containerd and dockerd name them", errNotDirect, id, o.Name)
	}
	hc := e.ctrd.cached()
	if hc == nil {
		ci, err := e.c.ContainerInspect(ctx, id)
		if err != nil || ci.State == nil {
			return fmt.Errorf("%w: inspect %s: %v", errNotDirect, id, err)
		}
		if hc, err = e.ctrd.endpoint(ci.ID, ci.State.Pid); err != nil {
			return err
		}
	}
	parent := cmp.Or(o.Dir, filepath.Join(e.rootDir, "containers", id, "checkpoints"))
	dir := filepath.Join(parent, o.Name)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("%w: %w", errNotDirect, err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %w", errNotDirect, err) // Docker says why (a name taken, say)
	}
	err := unary(context.WithoutCancel(ctx), hc, "/containerd.services.tasks.v1.Tasks/Checkpoint", checkpointRequest(id, dir, o.Exit))
	if err == nil {
		return nil
	}
	_ = os.RemoveAll(dir)
	if beforeDump(err) {
		e.ctrd.forget()
		return err
	}
	return fmt.Errorf("cannot checkpoint container %s: %w", id, err)
}

func (e *Engine) ListCheckpoints(ctx context.Context, id string) ([]string, error) {
	list, err := e.c.CheckpointList(ctx, id, checkpoint.ListOptions{})
	if err != nil {
		return nil, kind(err)
	}
	out := make([]string, 0, len(list))
	for _, c := range list {
		out = append(out, c.Name)
	}
	return out, nil
}

func (e *Engine) DeleteCheckpoint(ctx context.Context, id, name string) error {
	return kind(e.c.CheckpointDelete(ctx, id, checkpoint.DeleteOptions{CheckpointID: name}))
}

func (e *Engine) RestoreContainer(ctx context.Context, id, name string) error {
	return kind(e.c.ContainerStart(ctx, id, container.StartOptions{CheckpointID: name}))
}

// CheckpointDir is where dockerd keeps a container's checkpoint (known
// once Info has been asked).
func (e *Engine) CheckpointDir(id, name string) string {
	return filepath.Join(e.rootDir, "containers", id, "checkpoints", name)
}

func (e *Engine) ImageID(ctx context.Context, ref string) (string, error) {
	img, err := e.c.ImageInspect(ctx, ref)
	if err != nil {
		return "", kind(err)
	}
	return img.ID, nil
}

func (e *Engine) PullImage(ctx context.Context, ref string) error {
	rc, err := e.c.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return kind(err)
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

func (e *Engine) BuildImage(ctx context.Context, tag string, buildContext io.Reader) error {
	resp, err := e.c.ImageBuild(ctx, buildContext, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		return kind(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if bytes.Contains(out, []byte(`"error"`)) {
		return fmt.Errorf("%s", out)
	}
	return nil
}

func (e *Engine) SaveImage(ctx context.Context, ref string) (io.ReadCloser, error) {
	rc, err := e.c.ImageSave(ctx, []string{ref})
	return rc, kind(err)
}

// LoadImage loads an archive; the engine reports a failure in its last
// message, not in its status.
func (e *Engine) LoadImage(ctx context.Context, archive io.Reader) error {
	resp, err := e.c.ImageLoad(ctx, archive)
	if err != nil {
		return kind(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var msg struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(lastLine(out), &msg) == nil && msg.Error != "" {
		return fmt.Errorf("%s", msg.Error)
	}
	return nil
}

// lastLine returns the last non-empty line of b.
func lastLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\r\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

func (e *Engine) InspectNetwork(ctx context.Context, name string) (provider.NetworkInfo, error) {
	nw, err := e.c.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		return provider.NetworkInfo{}, kind(err)
	}
	info := provider.NetworkInfo{Labels: nw.Labels}
	if len(nw.IPAM.Config) > 0 {
		info.Subnet, info.Gateway = nw.IPAM.Config[0].Subnet, nw.IPAM.Config[0].Gateway
	}
	for _, ep := range nw.Containers {
		info.Addresses = append(info.Addresses, ep.IPv4Address) // CIDR notation
	}
	return info, nil
}

// CreateNetwork creates a bridge network.
func (e *Engine) CreateNetwork(ctx context.Context, name string, info provider.NetworkInfo) error {
	_, err := e.c.NetworkCreate(ctx, name, network.CreateOptions{
		Driver: "bridge",
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{
			Subnet:  info.Subnet,
			Gateway: info.Gateway,
		}}},
		Labels: info.Labels,
	})
	return kind(err)
}

func (e *Engine) Events(ctx context.Context, labels map[string]string) (<-chan provider.ContainerEvent, <-chan error) {
	f := labelFilter(labels)
	f.Add("type", string(events.ContainerEventType))
	msgs, errs := e.c.Events(ctx, events.ListOptions{Filters: f})
	out, failed := make(chan provider.ContainerEvent), make(chan error, 1)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-msgs:
				select {
				case out <- provider.ContainerEvent{Action: string(m.Action), ID: m.Actor.ID, Labels: m.Actor.Attributes}:
				case <-ctx.Done():
					return
				}
			case err := <-errs:
				failed <- err // the stream broke: the caller reconnects
				return
			}
		}
	}()
	return out, failed
}
