package provider

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/faas-criu/faas-criu/api"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	ckpt "github.com/faas-criu/faas-criu/checkpoint"
)

// Each replica's network lives in a sandbox: a container that holds the
// replica's network namespace and fixed address and does nothing else. The
// function container joins it (NetworkMode container:<sandbox>), so that
// hibernating and restoring the function touch no network: Docker adds its
// network set-up hook only to containers that own their namespace (it cost
// about 150 ms of every restore), and CRIU leaves an external namespace
// alone. The sandbox stays up while its function hibernates, keeping the
// address. Its process is a few instructions that wait for a signal.

// sandboxImage is the sandboxes' image, built by the provider (no registry).
const sandboxImage = "faas-criu/sandbox:1"

// Container roles, in labelRole.
const (
	labelRole   = "io.faas-criu.role"
	roleSandbox = "sandbox"
)

// pauseProgram is a static ELF executable that waits for signals forever,
// for the engine's architecture.
func pauseProgram(arch string) ([]byte, error) {
	switch arch {
	case "x86_64", "amd64":
		// loop: mov eax, 34 (pause); syscall; jmp loop
		return elfExecutable(62, []byte{0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7}), nil
	case "aarch64", "arm64":
		// loop: x0..x3 = 0; x8 = 73 (ppoll); svc 0; b loop
		var code []byte
		for _, insn := range []uint32{0xd2800000, 0xd2800001, 0xd2800002, 0xd2800003, 0xd2800928, 0xd4000001, 0x17fffffa} {
			code = binary.LittleEndian.AppendUint32(code, insn)
		}
		return elfExecutable(183, code), nil
	}
	return nil, fmt.Errorf("no sandbox program for the %s architecture", arch)
}

// elfExecutable makes a minimal 64-bit little-endian ELF executable of one
// loadable segment holding code, which is also its entry point.
func elfExecutable(machine uint16, code []byte) []byte {
	const base, headers = 0x400000, 64 + 56
	size := headers + len(code)
	b := make([]byte, size)
	le := binary.LittleEndian
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1}) // 64-bit, little-endian, version 1
	le.PutUint16(b[16:], 2)                       // executable
	le.PutUint16(b[18:], machine)
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[24:], base+headers) // entry
	le.PutUint64(b[32:], 64)           // program headers' offset
	le.PutUint16(b[52:], 64)           // ELF header size
	le.PutUint16(b[54:], 56)           // program header size
	le.PutUint16(b[56:], 1)            // one program header
	ph := b[64:]
	le.PutUint32(ph[0:], 1) // loadable
	le.PutUint32(ph[4:], 5) // read, execute
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	le.PutUint64(ph[32:], uint64(size))
	le.PutUint64(ph[40:], uint64(size))
	le.PutUint64(ph[48:], 0x1000)
	copy(b[headers:], code)
	return b
}

// ensureSandboxImage builds the sandbox image unless the engine has it.
func (p *Provider) ensureSandboxImage(ctx context.Context) error {
	if _, err := p.engine.ImageID(ctx, sandboxImage); err == nil {
		return nil
	} else if !isNotFound(err) {
		return fmt.Errorf("inspect %s: %w", sandboxImage, err)
	}
	prog, err := pauseProgram(p.engineInfo.Architecture)
	if err != nil {
		return err
	}
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{
		{"Dockerfile", 0o644, []byte("FROM scratch\nCOPY pause /pause\nSTOPSIGNAL SIGKILL\nENTRYPOINT [\"/pause\"]\n")},
		{"pause", 0o755, prog},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := p.engine.BuildImage(ctx, sandboxImage, &ctxTar); err != nil {
		return fmt.Errorf("build %s: %w", sandboxImage, err)
	}
	slog.Info("built the replicas' network sandbox image", "image", sandboxImage, "program_bytes", len(prog))
	return nil
}

func (p *Provider) sandboxName(key api.Key, idx int) string {
	return p.containerName(key, idx) + ".net"
}

// createSandbox creates and starts replica idx's sandbox at address ip.
func (p *Provider) createSandbox(ctx context.Context, key api.Key, idx int, ip string) (string, error) {
	name := p.sandboxName(key, idx)
	cs := ContainerSpec{
		Name:  name,
		Image: sandboxImage,
		Labels: map[string]string{
			LabelFunction: key.Name, LabelNamespace: key.Namespace,
			labelInstance: p.instance, labelReplica: fmt.Sprint(idx), labelRole: roleSandbox,
		},
		Network:   p.cfg.Network,
		IP:        ip,
		Resources: Resources{Memory: 6 << 20, MemorySwap: 6 << 20},
	}
	id, err := p.createOverStale(ctx, cs)
	if err != nil {
		return "", fmt.Errorf("create sandbox %s: %w", name, err)
	}
	if err := p.engine.StartContainer(ctx, id); err != nil {
		_ = p.engine.RemoveContainer(context.WithoutCancel(ctx), id)
		return "", fmt.Errorf("start sandbox %s: %w", name, err)
	}
	return id, nil
}

// removeFunctionContainer removes a replica's function container but keeps
// its sandbox (and address), for a new container of a newer definition.
func (p *Provider) removeFunctionContainer(ctx context.Context, fn *function, r *replica) error {
	p.drain(ctx, r)
	err := p.engine.RemoveContainer(ctx, r.id)
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("remove container %s: %w", r.name, err)
	}
	p.removeLeftoversOf(r.id)
	if p.replicaGone != nil && r.ip != "" {
		p.replicaGone(r.addr(p.cfg.FunctionPort))
	}
	fn.mu.Lock()
	r.id, r.status, r.ready = "", "missing", false
	fn.refreshEndpointsLocked(p.cfg.FunctionPort)
	fn.mu.Unlock()
	return nil
}

// ensureSandbox makes sure a replica's sandbox runs, just before its
// function container starts: started again when it stopped (the engine
// restarted; a function container still running in the old namespace
// cannot be reached, so it is stopped, to start again in the new one), and
// the whole replica renewed when it is gone.
func (p *Provider) ensureSandbox(ctx context.Context, fn *function, r *replica) error {
	if r.sandbox == "" {
		return p.renewReplica(ctx, fn, r)
	}
	ci, err := p.inspectSandbox(ctx, fn, r)
	if isNotFound(err) {
		return p.renewReplica(ctx, fn, r)
	}
	if err != nil {
		return fmt.Errorf("inspect its network sandbox: %w", err)
	}
	if ci.Running {
		fn.mu.Lock()
		r.sandboxUp = true
		fn.mu.Unlock()
		return nil
	}
	if err := p.engine.StartContainer(ctx, r.sandbox); err != nil {
		if orphanTask(err) {
			slog.Warn("network sandbox cannot start: renewing the replica", "function", fn.key.String(), "replica", r.index, "err", err)
			return p.renewReplica(ctx, fn, r)
		}
		return fmt.Errorf("start its network sandbox: %w", err)
	}
	fn.mu.Lock()
	r.sandboxUp = true
	live := r.id != "" && (r.status == "running" || r.status == "paused")
	fn.mu.Unlock()
	if live {
		slog.Info("network sandbox had stopped: restarting the replica in the new one", "function", fn.key.String(), "replica", r.index)
		_ = p.engine.KillContainer(ctx, r.id)
		_ = p.waitStopped(ctx, r.id, 10*time.Second)
		p.setStatus(fn, r, "exited")
	}
	return nil
}

// orphanTask says a container cannot start because containerd still has a
// task for it (ErrEngineTaskExists; Docker says "task ID: already exists"):
// the engine died while starting it (the provider, restarting replicas whose
// engine was shutting down, started one at that moment). Every later start
// fails the same way, and TestEngineRestart flaked on it ("did not become
// ready within 20s"): only new containers get the replica back.
func orphanTask(err error) bool {
	return errors.Is(err, ErrEngineTaskExists)
}

// renewReplica gives a stopped replica new containers: a new sandbox at the
// same address, and a new function container, into which its checkpoints
// move (the engine keeps them with the container). It is how a replica whose
// sandbox is gone comes back, and how a replica starts fresh where CRIU may
// have left its sandbox's network locked (it does after a dump that stops
// the container, and after a failed restore; only a restore of that dump
// unlocks it). r is updated in place.
func (p *Provider) renewReplica(ctx context.Context, fn *function, r *replica) error {
	rec, _ := fn.snapshot()
	old := r.id
	name := p.containerName(fn.key, r.index)
	if old != "" {
		if err := p.engine.RenameContainer(ctx, old, fmt.Sprintf("%s.old-%d", name, time.Now().UnixNano())); err != nil && !isNotFound(err) {
			return fmt.Errorf("renew replica %d: %w", r.index, err)
		}
	}
	if r.sandbox != "" {
		if err := p.engine.RemoveContainer(ctx, r.sandbox); err != nil && !isNotFound(err) {
			return fmt.Errorf("renew replica %d: %w", r.index, err)
		}
	}
	if r.ip == "" {
		ip, err := p.ipam.allocate()
		if err != nil {
			return err
		}
		r.ip = ip
	}
	sb, err := p.createSandbox(ctx, fn.key, r.index, r.ip)
	if err != nil {
		return fmt.Errorf("renew replica %d: %w", r.index, err)
	}
	fresh := &replica{index: r.index, sandbox: sb, sandboxUp: true, ip: r.ip, load: r.load}
	if err := p.createFunctionContainer(ctx, fn.key, &rec, fresh); err != nil {
		return fmt.Errorf("renew replica %d: %w", r.index, err)
	}
	if old != "" {
		// Same filesystem: the checkpoints (and their page images) move,
		// whatever their size.
		if err := p.moveCheckpoints(old, fresh.id); err != nil {
			return fmt.Errorf("renew replica %d: %w", r.index, err)
		}
		_ = p.engine.RemoveContainer(ctx, old)
	}
	fn.mu.Lock()
	r.id, r.name, r.spec, r.status, r.ready = fresh.id, fresh.name, fresh.spec, "created", false
	r.sandbox, r.sandboxUp = sb, true
	fn.refreshEndpointsLocked(p.cfg.FunctionPort)
	fn.mu.Unlock()
	slog.Info("replica renewed in a new network sandbox", "function", fn.key.String(), "replica", r.index, "ip", r.ip)
	return nil
}

// moveCheckpoints moves every checkpoint of container from into container
// to, page images included, and points the page links at their new place.
func (p *Provider) moveCheckpoints(from, to string) error {
	for _, dirOf := range []func(id, name string) string{p.checkpointDir, p.pagesDir} {
		src, dst := filepath.Dir(dirOf(from, "x")), filepath.Dir(dirOf(to, "x"))
		entries, _ := os.ReadDir(src)
		if len(entries) == 0 {
			continue
		}
		if err := os.MkdirAll(dst, 0o700); err != nil {
			return err
		}
		for _, e := range entries {
			if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return fmt.Errorf("move checkpoint %s: %w", e.Name(), err)
			}
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(p.checkpointDir(to, "x")))
	for _, e := range entries {
		if err := ckpt.RelinkPages(p.checkpointDir(to, e.Name()), p.pagesDir(to, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// sandboxLook is an inspect of a replica's sandbox begun ahead of its use
// (lookAheadAtSandboxes).
type sandboxLook struct {
	done chan struct{}
	st   ContainerState
	err  error
}

// lookAheadAtSandboxes begins the inspects of the sandboxes a wake will
// check (ensureSandbox) while its record is written: the engine answers an
// inspect in a few milliseconds, the record's two fsyncs take as long, and
// the start from the checkpoint waited for both in turn (bench/tried.md 29,
// 33). Only the engine is asked earlier: the record is still written before
// anything starts (a provider restart forgets nothing), and a failed
// restore still leaves the checkpoint. The answer is what the engine said a
// few milliseconds sooner than before; a sandbox that stops after it was
// always possible between the inspect and the start, and fails the restore
// the same way. Call before the record's write, with fn.opMu held.
func (p *Provider) lookAheadAtSandboxes(ctx context.Context, fn *function) map[string]*sandboxLook {
	_, reps := fn.snapshot()
	looks := map[string]*sandboxLook{}
	for _, r := range reps {
		if r.id == "" || r.sandbox == "" || (r.status == "running" && r.sandboxUp) {
			continue // bringUpReplica will not check it
		}
		l := &sandboxLook{done: make(chan struct{})}
		looks[r.sandbox] = l
		go func(id string) {
			defer close(l.done)
			l.st, l.err = p.engine.InspectContainer(ctx, id)
		}(r.sandbox)
	}
	return looks
}

// inspectSandbox asks the engine about r's sandbox, or takes the answer of
// the inspect the wake under way began (lookAheadAtSandboxes). Each such
// answer serves once: any later check asks the engine again.
func (p *Provider) inspectSandbox(ctx context.Context, fn *function, r *replica) (ContainerState, error) {
	if w := fn.wakeOp; w != nil {
		if l, ok := w.sandboxes[r.sandbox]; ok {
			delete(w.sandboxes, r.sandbox)
			select {
			case <-l.done:
				return l.st, l.err
			case <-ctx.Done():
				return ContainerState{}, fmt.Errorf("inspect its network sandbox: %w", ctx.Err())
			}
		}
	}
	return p.engine.InspectContainer(ctx, r.sandbox)
}
