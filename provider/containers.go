package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/faas-criu/faas-criu/api"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openfaas/faas-provider/types"

	ckpt "github.com/faas-criu/faas-criu/checkpoint"
)

// Labels on every function container. The first two follow OpenFaaS.
const (
	LabelFunction  = "com.openfaas.function"
	LabelNamespace = "com.openfaas.namespace"
	labelInstance  = "io.faas-criu.instance"
	labelReplica   = "io.faas-criu.replica"
	labelSpec      = "io.faas-criu.spec"
	labelOwner     = "io.faas-criu.owner"
)

// SecretsMountPath is where secrets appear inside a function, one file each.
const SecretsMountPath = "/var/openfaas/secrets"

// containerName names a replica's container after the provider's network,
// so that providers sharing an engine (on different networks) never clash:
// faas-criu.hello.openfaas-fn.0.
func (p *Provider) containerName(key api.Key, idx int) string {
	return fmt.Sprintf("%s.%s.%s.%d", p.cfg.Network, key.Name, key.Namespace, idx)
}

// specHash identifies what a function's containers are made from: the
// image and the deployment but its labels and annotations, which steer the
// provider (scaling, sleep, health path) and nothing inside the container.
// Containers made from an older definition, or from an image since rebuilt
// under the same tag, are replaced; a change of labels or annotations keeps
// them, and a hibernated function's state.
//
// The in-place label is the exception: it decides how the container is
// made (under faas-criu-init or not), so it counts, when set, and only then
// (containers of functions without it keep their hash).
func specHash(dep types.FunctionDeployment, imageID string) string {
	inPlace := inPlaceOf(dep)
	dep.Labels, dep.Annotations = nil, nil
	if inPlace {
		imageID += "+init"
	}
	return definitionHash(dep, imageID)
}

// definitionHash hashes the whole deployment. Containers made before
// specHash left labels and annotations out carry this one (see
// sameSpec).
func definitionHash(dep types.FunctionDeployment, imageID string) string {
	b, _ := json.Marshal(dep)
	sum := sha256.Sum256(append(b, imageID...))
	return hex.EncodeToString(sum[:8])
}

// sameSpec says whether a container labelled with spec was made from rec's
// definition: by specHash, or by definitionHash for containers made by an
// earlier provider (so that an upgrade replaces none, hibernated or not).
func sameSpec(spec string, rec record) bool {
	return spec == rec.spec() || spec == definitionHash(rec.Deployment, rec.ImageID)
}

// containerSpec turns a deployment into a container's.
func (p *Provider) containerSpec(key api.Key, dep types.FunctionDeployment, spec string, idx int, sandbox string) (ContainerSpec, error) {
	env := make([]string, 0, len(dep.EnvVars)+2)
	for k, v := range dep.EnvVars {
		if k != "GODEBUG" {
			env = append(env, k+"="+v)
		}
	}
	env = append(env, "GODEBUG="+goDebug(dep.EnvVars["GODEBUG"]))
	if dep.EnvProcess != "" {
		env = append(env, "fprocess="+dep.EnvProcess)
	}
	slices.Sort(env)

	labels := map[string]string{}
	if dep.Labels != nil {
		for k, v := range *dep.Labels {
			labels[k] = v
		}
	}
	labels[LabelFunction] = key.Name
	labels[LabelNamespace] = key.Namespace
	labels[labelInstance] = p.instance
	labels[labelReplica] = strconv.Itoa(idx)
	labels[labelSpec] = spec

	res, err := resources(dep)
	if err != nil {
		return ContainerSpec{}, err
	}
	cs := ContainerSpec{
		Name:           p.containerName(key, idx),
		Image:          dep.Image,
		Env:            env,
		Labels:         labels,
		NetworkOf:      sandbox,
		ReadOnlyRootfs: dep.ReadOnlyRootFilesystem,
		Resources:      res,
		Runtime:        p.functionRuntime(),
		Init:           inPlaceOf(dep),
	}
	if dep.ReadOnlyRootFilesystem {
		cs.Tmpfs = map[string]string{"/tmp": "rw,nosuid,nodev,size=64m"}
	}
	for _, s := range dep.Secrets {
		cs.Mounts = append(cs.Mounts, BindMount{
			Source:   p.store.secretPath(key.Namespace, s),
			Target:   SecretsMountPath + "/" + s,
			ReadOnly: true,
		})
	}
	return cs, nil
}

// goDebug adds multipathtcp=0 to a function's GODEBUG. Go 1.24 and later
// listen with Multipath TCP by default, and CRIU cannot checkpoint MPTCP
// sockets; a function that chose a multipathtcp setting keeps it.
func goDebug(v string) string {
	if strings.Contains(v, "multipathtcp=") {
		return v
	}
	if v == "" {
		return "multipathtcp=0"
	}
	return v + ",multipathtcp=0"
}

// DockerMinMemory is the smallest memory limit Docker accepts for a
// container (6 MiB).
const DockerMinMemory = 6 << 20

// resources maps OpenFaaS limits and requests onto a container's.
func resources(dep types.FunctionDeployment) (Resources, error) {
	var r Resources
	if l := dep.Limits; l != nil {
		mem, err := ParseMemory(l.Memory)
		if err != nil {
			return r, errorf(api.ErrInvalid, "limits.memory: %v", err)
		}
		if mem > 0 && mem < DockerMinMemory {
			// faas-netes accepts any limit and the OpenFaaS conformance
			// cases deploy 5Mi; Docker refuses below its minimum, so the
			// container gets the minimum and the status keeps reporting
			// the limit asked for.
			mem = DockerMinMemory
		}
		r.Memory = mem
		if mem > 0 {
			r.MemorySwap = mem // no swap beyond the limit
		}
		cpu, err := ParseCPU(l.CPU)
		if err != nil {
			return r, errorf(api.ErrInvalid, "limits.cpu: %v", err)
		}
		r.NanoCPUs = cpu
	}
	if q := dep.Requests; q != nil {
		mem, err := ParseMemory(q.Memory)
		if err != nil {
			return r, errorf(api.ErrInvalid, "requests.memory: %v", err)
		}
		r.MemoryReservation = mem
		cpu, err := ParseCPU(q.CPU)
		if err != nil {
			return r, errorf(api.ErrInvalid, "requests.cpu: %v", err)
		}
		if cpu > 0 {
			r.CPUShares = max(2, cpu*1024/1e9)
		}
	}
	if r.Memory > 0 && r.MemoryReservation > r.Memory {
		return r, errorf(api.ErrInvalid, "requests.memory is larger than limits.memory")
	}
	return r, nil
}

// createContainer creates replica idx's container without starting it, in
// sb's sandbox when sb (a replica whose function container is missing) has
// a running one, else in a new sandbox.
func (p *Provider) createContainer(ctx context.Context, key api.Key, rec *record, idx int, sb *replica) (*replica, error) {
	r := &replica{index: idx, status: "created", load: &replicaLoad{}}
	if sb != nil && sb.sandbox != "" && sb.sandboxUp {
		r.sandbox, r.sandboxUp, r.ip = sb.sandbox, true, sb.ip
	} else {
		if sb != nil {
			_ = p.removeReplica(ctx, sb)
		}
		ip, err := p.ipam.allocate()
		if err != nil {
			return nil, err
		}
		id, err := p.createSandbox(ctx, key, idx, ip)
		if err != nil {
			p.ipam.release(ip)
			return nil, err
		}
		r.sandbox, r.sandboxUp, r.ip = id, true, ip
	}
	if err := p.createFunctionContainer(ctx, key, rec, r); err != nil {
		_ = p.removeReplica(context.WithoutCancel(ctx), r)
		return nil, err
	}
	return r, nil
}

// createFunctionContainer creates r's function container in r's sandbox.
func (p *Provider) createFunctionContainer(ctx context.Context, key api.Key, rec *record, r *replica) error {
	cs, err := p.containerSpec(key, rec.Deployment, rec.spec(), r.index, r.sandbox)
	if err != nil {
		return err
	}
	name := cs.Name
	id, err := p.createOverStale(ctx, cs)
	if err != nil {
		return fmt.Errorf("create container %s: %w", name, err)
	}
	r.id, r.name, r.spec, r.status = id, name, cs.Labels[labelSpec], "created"
	return nil
}

// removeLeftoversOf removes what is kept on disk for a container once it
// is gone: containerd's copies of its checkpoints, and its dumps in place
// (they restore into no other container).
func (p *Provider) removeLeftoversOf(id string) {
	ckpt.RemoveContainerdLeftoversOf(p.cfg.ContainerdTmp, id)
	if id != "" {
		_ = os.RemoveAll(p.inPlaceRoot(id))
	}
}

// removeReplica removes a replica's container (with its checkpoints) and
// its sandbox, once the requests it is serving are done.
func (p *Provider) removeReplica(ctx context.Context, r *replica) error {
	p.drain(ctx, r)
	for _, c := range []struct{ id, what string }{{r.id, "container " + r.name}, {r.sandbox, "the network sandbox of " + r.name}} {
		if c.id == "" {
			continue
		}
		err := p.engine.RemoveContainer(ctx, c.id)
		if err != nil && !isNotFound(err) {
			return fmt.Errorf("remove %s: %w", c.what, err)
		}
	}
	p.removeLeftoversOf(r.id)
	if p.replicaGone != nil && r.ip != "" {
		p.replicaGone(r.addr(p.cfg.FunctionPort))
	}
	if r.ip != "" {
		p.ipam.release(r.ip)
	}
	return nil
}

// listContainers returns this provider's replicas (function containers and
// their sandboxes), grouped by function.
func (p *Provider) listContainers(ctx context.Context, key *api.Key) (map[api.Key][]*replica, error) {
	f := map[string]string{labelInstance: p.instance}
	if key != nil {
		f[LabelFunction] = key.Name
		f[LabelNamespace] = key.Namespace
	}
	list, err := p.engine.ListContainers(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	type slot struct {
		key api.Key
		idx int
	}
	byIdx := map[slot]*replica{}
	for _, c := range list {
		k := api.Key{Namespace: c.Labels[LabelNamespace], Name: c.Labels[LabelFunction]}
		idx, err := strconv.Atoi(c.Labels[labelReplica])
		if err != nil {
			continue
		}
		r := byIdx[slot{k, idx}]
		if r == nil {
			r = &replica{index: idx, load: &replicaLoad{}}
			byIdx[slot{k, idx}] = r
		}
		if c.Labels[labelRole] == roleSandbox {
			r.sandbox, r.sandboxUp = c.ID, c.State == "running"
			r.ip = c.Addresses[p.cfg.Network]
			continue
		}
		r.id, r.spec, r.status, r.name = c.ID, c.Labels[labelSpec], c.State, c.Name
	}
	out := map[api.Key][]*replica{}
	for s, r := range byIdx {
		if r.id == "" {
			r.status = "missing"
		}
		out[s.key] = append(out[s.key], r)
	}
	return out, nil
}

// ensureImage makes sure the image is in the local engine and returns its
// ID. With the default pull policy ("never") a missing image is an
// immediate, clear error rather than a pull that hangs where no registry can
// be reached.
func (p *Provider) ensureImage(ctx context.Context, ref string) (string, error) {
	id, err := p.engine.ImageID(ctx, ref)
	if err == nil {
		return id, nil
	}
	if !isNotFound(err) {
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	if p.cfg.Pull != "missing" {
		return "", errorf(api.ErrInvalid, "image %q is not present in the local Docker engine and faas-criu does not pull images (--pull=never): build it here (docker build -t %s .) or load it (docker load)", ref, ref)
	}
	pctx, cancel := context.WithTimeout(ctx, p.cfg.PullTimeout)
	defer cancel()
	err = p.engine.PullImage(pctx, ref)
	if err == nil {
		id, err = p.engine.ImageID(ctx, ref)
	}
	if err != nil {
		return "", errorf(api.ErrInvalid, "image %q is not present locally and could not be pulled within %s: %v", ref, p.cfg.PullTimeout, err)
	}
	return id, nil
}

// waitStopped waits until the engine reports the container as not running.
func (p *Provider) waitStopped(ctx context.Context, id string, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return p.engine.WaitStopped(wctx, id)
}

// isNotFound tells an engine's "no such container/image/network" apart.
func isNotFound(err error) bool { return errors.Is(err, ErrEngineNotFound) }

// drain takes a replica out of service and waits, up to the drain timeout,
// for the requests it is serving to finish, so that scaling down, updating
// or deleting a function cuts no request short.
func (p *Provider) drain(ctx context.Context, r *replica) {
	load := r.load
	load.serving.Store(false)
	if load.inflight.Load() == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.DrainTimeout)
	defer cancel()
	for load.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			slog.Warn("requests still in flight after the drain timeout: removing the replica", "replica", r.name, "inflight", load.inflight.Load(), "timeout", p.cfg.DrainTimeout)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// createOverStale creates a container; one left by an interrupted operation
// that holds the name is removed first.
func (p *Provider) createOverStale(ctx context.Context, cs ContainerSpec) (string, error) {
	id, err := p.engine.CreateContainer(ctx, cs)
	if errors.Is(err, ErrEngineConflict) {
		slog.Warn("removing stale container", "container", cs.Name)
		_ = p.engine.RemoveContainer(ctx, cs.Name)
		id, err = p.engine.CreateContainer(ctx, cs)
	}
	return id, err
}
