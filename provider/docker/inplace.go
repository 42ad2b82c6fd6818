package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/faas-criu/faas-criu/checkpoint"
	"github.com/faas-criu/faas-criu/provider"
)

// In-place hibernation (bench/tried.md 47, checkpoint.DumpTree): a
// container created with ContainerSpec.Init runs faas-criu-init as its first
// process, with the image's entrypoint and command as its child. Each such
// container has a host directory (InitBase/<random>/c) holding a hard link
// of the init and the files the host writes for it (checkpoint.InitMarker
// ...), bound read-only at InitMount; CRIU's logs go beside it. The
// directory is found again from the container's mounts and removed with it.

// InitMount is where a container sees its init's directory.
const InitMount = "/.faas-criu"

// DefaultInitBase holds the per-container directories of the init. Not in
// /run: a container's bind source must exist at its every start, a host
// reboot included.
const DefaultInitBase = "/var/lib/faas-criu/init"

// Option configures an Engine at construction.
type Option func(*Engine)

// WithInit gives the path of faas-criu-init: containers can then be created
// with ContainerSpec.Init and hibernated in place.
func WithInit(path string) Option { return func(e *Engine) { e.initPath = path } }

// WithInitBase overrides DefaultInitBase.
func WithInitBase(dir string) Option { return func(e *Engine) { e.initBase = dir } }

// initContainer prepares a container's init directory and returns its
// entrypoint and command: the init, then the image's own.
func (e *Engine) initContainer(ctx context.Context, s provider.ContainerSpec, cfg *container.Config, hc *container.HostConfig) (string, error) {
	if e.initPath == "" {
		return "", errors.New("in-place hibernation is unavailable: the engine has no faas-criu-init")
	}
	img, err := e.c.ImageInspect(ctx, s.Image)
	if err != nil {
		return "", fmt.Errorf("image %s for an init container: %w", s.Image, kind(err))
	}
	var args []string
	if img.Config != nil {
		args = append(append(args, img.Config.Entrypoint...), img.Config.Cmd...)
	}
	if len(args) == 0 {
		return "", fmt.Errorf("image %s has neither entrypoint nor command for faas-criu-init to start", s.Image)
	}
	token := make([]byte, 12)
	_, _ = rand.Read(token)
	base := filepath.Join(e.initBase, hex.EncodeToString(token))
	dir := filepath.Join(base, "c")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("init directory: %w", err)
	}
	// A hard link where it can (setup replaces the init by a rename, so a
	// container keeps the one it was created with), else a copy.
	if err := checkpoint.LinkFile(e.initPath, filepath.Join(dir, "init")); err != nil {
		os.RemoveAll(base)
		return "", fmt.Errorf("faas-criu-init into %s: %w", dir, err)
	}
	cfg.Entrypoint = []string{InitMount + "/init"}
	cfg.Cmd = append([]string{"--"}, args...)
	hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: dir, Target: InitMount, ReadOnly: true})
	return base, nil
}

// inPlace is what a dump or restore needs of an inspected container.
type inPlace struct {
	running bool
	dir     string // the init's directory, on the host
	tree    checkpoint.InPlaceTree
}

// initDirOf returns the host directory a container's init sees at
// InitMount ("": the container was not created with faas-criu-init).
func initDirOf(mounts []container.MountPoint) string {
	for _, m := range mounts {
		if m.Destination == InitMount {
			return m.Source
		}
	}
	return ""
}

func (e *Engine) inspectInPlace(ctx context.Context, id string) (inPlace, error) {
	ci, err := e.c.ContainerInspect(ctx, id)
	if err != nil {
		return inPlace{}, fmt.Errorf("inspect %s: %w", id, kind(err))
	}
	c := inPlace{dir: initDirOf(ci.Mounts), tree: checkpoint.InPlaceTree{Binds: map[string]string{}}}
	for _, m := range ci.Mounts {
		if (m.Type == mount.TypeBind || m.Type == mount.TypeVolume) && m.Source != "" {
			c.tree.Binds[m.Destination] = m.Source
		}
	}
	if c.dir == "" {
		return inPlace{}, fmt.Errorf("container %s was not created with faas-criu-init", id)
	}
	c.tree.LogDir = filepath.Dir(c.dir) // beside the init's directory, not seen inside
	for target, src := range map[string]string{"/etc/hosts": ci.HostsPath, "/etc/hostname": ci.HostnamePath, "/etc/resolv.conf": ci.ResolvConfPath} {
		if src != "" {
			c.tree.Binds[target] = src
		}
	}
	if ci.State != nil && ci.State.Running && !ci.State.Paused {
		c.running, c.tree.Init = true, ci.State.Pid
	}
	if ci.GraphDriver.Data != nil {
		c.tree.Root = ci.GraphDriver.Data["MergedDir"]
	}
	return c, nil
}

// DumpInPlace checkpoints the function under the container's init into dir
// and ends it; the init stays up (the marker written first tells it the
// exit is a hibernation). A failed dump leaves the function running, the
// marker removed and dir removed.
func (e *Engine) DumpInPlace(ctx context.Context, id, dir string) error {
	c, err := e.inspectInPlace(ctx, id)
	if err != nil {
		return fmt.Errorf("dump in place: %w", err)
	}
	if !c.running {
		return fmt.Errorf("dump in place %s: the container is not running", short(id))
	}
	fn, err := checkpoint.FindFunction(c.tree.Init, c.dir)
	if err == nil && fn == 0 {
		err = checkpoint.ErrNoFunction
	}
	if err != nil {
		return fmt.Errorf("dump in place %s: %w", short(id), err)
	}
	marker := fmt.Sprintf("%d %s\n", checkpoint.NSPid(fn), checkpoint.StartTime(c.tree.Init))
	if err := checkpoint.WriteInitFile(c.dir, checkpoint.InitMarker, marker); err != nil {
		return fmt.Errorf("dump in place %s: %w", short(id), err)
	}
	if err := checkpoint.DumpTree(ctx, c.tree, fn, dir); err != nil {
		os.Remove(filepath.Join(c.dir, checkpoint.InitMarker))
		return fmt.Errorf("dump in place %s: %w", short(id), checkpoint.ExplainDumpError(err))
	}
	return nil
}

// RestoreInPlace restores dir's function into the container, starting the
// container first (its init waits, seeing the marker) when it is stopped.
// The restored process is this process's child: a goroutine reaps it when
// it ends. A failed restore leaves dir, the marker, and the container up
// with no function.
func (e *Engine) RestoreInPlace(ctx context.Context, id, dir string) error {
	c, err := e.startForRestore(ctx, id, dir)
	if err != nil {
		return fmt.Errorf("restore in place: %w", err)
	}
	if err := waitCaught(ctx, c.tree.Init, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("restore in place %s: %w", short(id), err)
	}
	os.Remove(filepath.Join(c.dir, checkpoint.InitExit))
	pid, err := checkpoint.RestoreTree(ctx, c.tree, dir)
	if err != nil {
		return fmt.Errorf("restore in place %s: %w", short(id), err)
	}
	nspid := checkpoint.NSPid(pid)
	go checkpoint.ReapRestored(pid, nspid, c.dir)
	fnFile := fmt.Sprintf("%d %s\n", nspid, checkpoint.StartTime(c.tree.Init))
	if err := checkpoint.WriteInitFile(c.dir, checkpoint.InitFunction, fnFile); err != nil {
		return fmt.Errorf("restore in place %s: %w", short(id), err)
	}
	os.Remove(filepath.Join(c.dir, checkpoint.InitMarker))
	// The init adopts the restored process (a pidfd) on this signal.
	if err := syscall.Kill(c.tree.Init, syscall.SIGUSR1); err != nil {
		return fmt.Errorf("restore in place %s: tell the init: %w", short(id), err)
	}
	return nil
}

// startForRestore returns the container running with no function: started
// (with the marker, so that its init waits) when it was stopped, and again
// (up to three times) while its new init's threads hold a pid of the dump.
func (e *Engine) startForRestore(ctx context.Context, id, dir string) (inPlace, error) {
	c, err := e.inspectInPlace(ctx, id)
	if err != nil {
		return c, err
	}
	if c.running {
		fn, err := checkpoint.FindFunction(c.tree.Init, c.dir)
		if err != nil {
			return c, fmt.Errorf("%s: %w", short(id), err)
		}
		if fn != 0 {
			return c, fmt.Errorf("%s: its init already has a function (pid %d)", short(id), fn)
		}
		return c, waitPidsFree(ctx, c.tree.Init, dir)
	}
	// The directory may be gone (removed by hand): the bind needs it.
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return c, fmt.Errorf("init directory: %w", err)
	}
	if err := checkpoint.WriteInitFile(c.dir, checkpoint.InitMarker, "wait\n"); err != nil {
		return c, err
	}
	for try := 1; ; try++ {
		if c, err = e.startWaiting(ctx, id); err != nil {
			return c, err
		}
		taken, err := checkpoint.PidsTaken(c.tree.Init, dir)
		if err != nil || taken == 0 || try == 3 {
			return c, err
		}
		slog.Info("in place: the container's new init holds a pid of the dump; starting it again", "container", short(id))
		if err := e.StopContainer(ctx, id, 5*time.Second); err != nil {
			return c, fmt.Errorf("stop %s: %w", short(id), err)
		}
	}
}

// waitPidsFree waits (up to 3 s) until the dump's pids are free in the
// running container: the dumped function's zombie is reaped by this process
// right after the dump when this process restored it, else by the host's
// init (after a provider restart), which may take a second.
func waitPidsFree(ctx context.Context, init int, dir string) error {
	deadline := time.Now().Add(3 * time.Second)
	for {
		pid, err := checkpoint.PidsTaken(init, dir)
		if err != nil || pid == 0 {
			return err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("pid %d of the dump is still in use in the container (a zombie not reaped yet?)", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *Engine) startWaiting(ctx context.Context, id string) (inPlace, error) {
	if err := e.StartContainer(ctx, id); err != nil {
		return inPlace{}, fmt.Errorf("start %s: %w", short(id), err)
	}
	c, err := e.inspectInPlace(ctx, id)
	if err == nil && !c.running {
		err = fmt.Errorf("%s stopped right after its start", short(id))
	}
	return c, err
}

// waitCaught waits (up to 2 s) until pid handles sig: a signal the init of
// a pid namespace does not handle yet is dropped.
func waitCaught(ctx context.Context, pid int, sig syscall.Signal) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		if checkpoint.Catches(pid, sig) {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the init (pid %d) does not handle %v", pid, sig)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// InPlaceRunning says whether the container's init has a function.
func (e *Engine) InPlaceRunning(ctx context.Context, id string) (bool, error) {
	c, err := e.inspectInPlace(ctx, id)
	if err != nil || !c.running {
		return false, err
	}
	fn, err := checkpoint.FindFunction(c.tree.Init, c.dir)
	if err != nil {
		return false, fmt.Errorf("in place %s: %w", short(id), err)
	}
	return fn != 0, nil
}

// DropInPlace removes the container's marker: its init starts the function
// on the container's next start.
func (e *Engine) DropInPlace(ctx context.Context, id string) error {
	c, err := e.inspectInPlace(ctx, id)
	if err != nil {
		return fmt.Errorf("drop in place: %w", err)
	}
	for _, f := range []string{checkpoint.InitMarker, checkpoint.InitFunction, checkpoint.InitExit} {
		if err := os.Remove(filepath.Join(c.dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("drop in place %s: %w", short(id), err)
		}
	}
	return nil
}

// removeInitDir removes an init container's directory once the container
// is gone (only ever under initBase).
func (e *Engine) removeInitDir(dir string) {
	base := filepath.Dir(dir)
	if dir == "" || filepath.Dir(base) != filepath.Clean(e.initBase) {
		return
	}
	os.RemoveAll(base)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
