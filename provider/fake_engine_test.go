package provider

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeEngine is an Engine in memory, for unit tests of the lifecycle. Its
// containers have states; a function container that runs serves HTTP at its
// sandbox's address (the tests use loopback addresses, 127.x.y.z, so no root
// is needed): /_/health answers 200, and every other path counts a request
// and answers the count. The count is the function's "memory": it survives a
// pause, and a checkpoint (written into the checkpoint directory as a page
// image) and restore, and is lost when the container stops. Operations can
// be made to fail.
type fakeEngine struct {
	t    *testing.T
	root string // where checkpoints are kept
	port int    // the port functions listen on

	mu         sync.Mutex
	seq        int
	containers map[string]*fakeContainer // by ID
	images     map[string]string         // reference -> ID
	networks   map[string]NetworkInfo
	failures   map[string][]error // by operation: errors for its next calls
	// down: the engine is not answering (crashed); cutNext: how the next
	// checkpoint ends when the engine crashes during it (see cutNextCheckpoint).
	down    bool
	cutNext string
	calls   map[string]int // by operation: calls not failed on purpose
	// inspected: the containers inspected, in order.
	inspected []string
	subs      []fakeSub
	// restoreHold, when set, holds a restore's return once its function
	// serves (as dockerd's bookkeeping after CRIU does) until it is closed;
	// restoreLate then fails that restore, the container left running or,
	// with restoreLateStops, stopped (see holdRestores).
	restoreHold      chan struct{}
	restoreLate      error
	restoreLateStops bool
	// runtimes: the runtimes Info lists.
	runtimes []string
	// noInPlace: Info says the engine cannot hibernate in place.
	noInPlace bool
}

type fakeContainer struct {
	id, name string
	spec     ContainerSpec
	state    string // created, running, paused, exited
	// frozen: its task was left paused behind the engine's back (state
	// still says running); locked: a sandbox whose network CRIU left locked.
	frozen, locked bool
	// ln is srv's listener, closed with it: a server closed before its
	// Serve began would leave it open for a moment, and a restore right
	// after (an unpause then a dump in place) found the address taken.
	ln net.Listener
	// memory is the running process's state (the request count).
	memory *atomic.Int64
	srv    *http.Server
	// For containers created with Init (in-place hibernation): asleep, its
	// init runs with no function (dumped in place, or waiting for a
	// restore); waits, its init's marker says that its next start waits
	// for a restore instead of starting the function.
	asleep, waits bool
}

type fakeSub struct {
	ctx    context.Context
	labels map[string]string
	ch     chan ContainerEvent
}

func newFakeEngine(t *testing.T, port int) *fakeEngine {
	e := &fakeEngine{
		t: t, root: t.TempDir(), port: port,
		containers: map[string]*fakeContainer{},
		images:     map[string]string{},
		networks:   map[string]NetworkInfo{},
		failures:   map[string][]error{},
		calls:      map[string]int{},
	}
	t.Cleanup(e.stopAll)
	return e
}

var _ Engine = (*fakeEngine)(nil)

// slowRequest is how long a function takes to answer /slow.
const slowRequest = 300 * time.Millisecond

// sandboxStates returns the sandboxes by name, and their states.
func (e *fakeEngine) sandboxStates() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	for _, c := range e.containers {
		if c.spec.Labels[labelRole] == roleSandbox {
			out[c.name] = c.state
		}
	}
	return out
}

// failNext makes the next calls of op fail, one error each (nil lets that
// call through).
func (e *fakeEngine) failNext(op string, errs ...error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures[op] = append(e.failures[op], errs...)
}

// clearFailures makes every operation succeed again.
func (e *fakeEngine) clearFailures() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.failures = map[string][]error{}
}

// count is how many calls of op were not failed on purpose.
func (e *fakeEngine) count(op string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.calls[op]
}

// begin starts an operation with e.mu held: it returns the failure
// planned for it, if any, else counts it.
func (e *fakeEngine) begin(op string) error {
	if q := e.failures[op]; len(q) > 0 {
		e.failures[op] = q[1:]
		if q[0] != nil {
			return q[0]
		}
	}
	e.calls[op]++
	return nil
}

func (e *fakeEngine) addImage(ref string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.images[ref] = "sha256:" + fmt.Sprintf("%x", len(e.images)+1) + "-" + ref
}

// find returns a container by ID or name, with e.mu held.
func (e *fakeEngine) find(idOrName string) (*fakeContainer, error) {
	if c := e.containers[idOrName]; c != nil {
		return c, nil
	}
	for _, c := range e.containers {
		if c.name == idOrName {
			return c, nil
		}
	}
	return nil, fmt.Errorf("%w: no such container: %s", ErrEngineNotFound, idOrName)
}

// functionContainers returns the function containers (not sandboxes) by
// name, and their states.
func (e *fakeEngine) functionContainers() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	for _, c := range e.containers {
		if c.spec.Labels[labelRole] != roleSandbox {
			out[c.name] = c.state
		}
	}
	return out
}

// containerCount counts containers of both kinds.
func (e *fakeEngine) containerCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.containers)
}

// checkpointNames lists the checkpoints kept for every container.
func (e *fakeEngine) checkpointNames() []string {
	dirs, _ := filepath.Glob(filepath.Join(e.root, "containers", "*", "checkpoints", "*"))
	var out []string
	for _, d := range dirs {
		out = append(out, filepath.Base(d))
	}
	return out
}

// lose removes containers behind the provider's back: the named function
// container, and with sandbox its sandbox too.
func (e *fakeEngine) lose(name string, sandbox bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, c := range e.containers {
		if c.name == name || (sandbox && c.name == name+".net") {
			e.stop(c)
			delete(e.containers, id)
			_ = os.RemoveAll(filepath.Join(e.root, "containers", id))
		}
	}
}

// crash stops a running function container as if its process died.
func (e *fakeEngine) crash(name string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(name)
	if err != nil {
		e.t.Fatalf("crash %s: %v", name, err)
	}
	e.stop(c)
	c.state = "exited"
	e.emit(EventDie, c)
}

func (e *fakeEngine) stopAll() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.containers {
		e.stop(c)
	}
}

// run starts c's process with memory, serving at its sandbox's address.
// With e.mu held.
func (e *fakeEngine) run(c *fakeContainer, memory int64) error {
	c.memory = &atomic.Int64{}
	c.memory.Store(memory)
	c.state = "running"
	if c.spec.NetworkOf == "" {
		return nil // a sandbox: it only holds the address
	}
	return e.listen(c)
}

func (e *fakeEngine) listen(c *fakeContainer) error {
	sb, err := e.find(c.spec.NetworkOf)
	if err != nil || sb.state != "running" {
		return fmt.Errorf("container %s: its network sandbox is not running", c.name)
	}
	if sb.locked {
		return nil // it runs, but nothing reaches it
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(sb.spec.IP, strconv.Itoa(e.port)))
	if err != nil {
		return fmt.Errorf("container %s: %w", c.name, err)
	}
	mem := c.memory
	mux := http.NewServeMux()
	mux.HandleFunc("/_/health", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, mem.Add(1))
	})
	// A slow request: counted once it is done, so a checkpoint taken while
	// it runs loses it (and its connection).
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(slowRequest)
		fmt.Fprint(w, mem.Add(1))
	})
	srv := &http.Server{Handler: mux}
	c.srv, c.ln = srv, ln
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// stop ends c's process (its memory is gone). With e.mu held.
func (e *fakeEngine) stop(c *fakeContainer) {
	e.silence(c)
	c.memory = nil
	c.frozen = false
}

// cutNextCheckpoint makes the engine crash during the next checkpoint,
// which leaves the container as outcome says: "untouched" (the crash came
// before the dump began), "paused" (the engine noted the pause around the
// dump), "frozen" (paused behind the engine's back), "stopped" (the dump
// finished, the checkpoint is lost, the sandbox's network is locked). The
// engine is down until setDown(false).
func (e *fakeEngine) cutNextCheckpoint(outcome string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cutNext = outcome
}

func (e *fakeEngine) setDown(down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down = down
}

// cut applies a crash's outcome to c, with e.mu held.
func (e *fakeEngine) cut(c *fakeContainer, outcome string) error {
	e.down = true
	switch outcome {
	case "paused":
		e.silence(c)
		c.state = "paused"
	case "frozen":
		e.silence(c)
		c.frozen = true
	case "stopped":
		e.stop(c)
		c.state = "exited"
		if sb, err := e.find(c.spec.NetworkOf); err == nil {
			sb.locked = true
		}
	}
	return fmt.Errorf("%w: error during connect: Post checkpoints: EOF", ErrEngineUnreachable)
}

// unreachable is the error of every call while the engine is down, with
// e.mu held.
func (e *fakeEngine) unreachable() error {
	if e.down {
		return fmt.Errorf("%w: cannot connect to the engine", ErrEngineUnreachable)
	}
	return nil
}

// silence stops serving, keeping the memory (a pause).
func (e *fakeEngine) silence(c *fakeContainer) {
	if c.srv != nil {
		_ = c.srv.Close()
		_ = c.ln.Close()
		c.srv, c.ln = nil, nil
	}
}

func (e *fakeEngine) emit(action string, c *fakeContainer) {
	for _, s := range e.subs {
		if s.ctx.Err() != nil || !hasLabels(c.spec.Labels, s.labels) {
			continue
		}
		select {
		case s.ch <- ContainerEvent{Action: action, ID: c.id, Labels: maps.Clone(c.spec.Labels)}:
		default: // a slow reader misses events, as the provider allows
		}
	}
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func (e *fakeEngine) Info(context.Context) (EngineInfo, error) {
	return EngineInfo{Version: "fake", RootDir: e.root, Experimental: true, Architecture: "amd64", Runtimes: e.runtimes, InPlace: !e.noInPlace}, nil
}

func (e *fakeEngine) Events(ctx context.Context, labels map[string]string) (<-chan ContainerEvent, <-chan error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch := make(chan ContainerEvent, 64)
	e.subs = append(e.subs, fakeSub{ctx: ctx, labels: labels, ch: ch})
	return ch, make(chan error)
}

func (e *fakeEngine) Close() error { return nil }

func (e *fakeEngine) CreateContainer(_ context.Context, spec ContainerSpec) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.begin("create"); err != nil {
		return "", err
	}
	if _, ok := e.images[spec.Image]; !ok {
		return "", fmt.Errorf("%w: no such image: %s", ErrEngineNotFound, spec.Image)
	}
	if _, err := e.find(spec.Name); err == nil {
		return "", fmt.Errorf("%w: container name %s", ErrEngineConflict, spec.Name)
	}
	e.seq++
	id := fmt.Sprintf("c%04d", e.seq)
	e.containers[id] = &fakeContainer{id: id, name: spec.Name, spec: spec, state: "created"}
	return id, nil
}

func (e *fakeEngine) StartContainer(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	if err := e.begin("start"); err != nil {
		return err
	}
	if c.state == "running" || c.state == "paused" {
		return nil
	}
	if c.spec.Init && c.waits {
		// Its init waits for a restore in place: no function yet.
		c.state, c.asleep = "running", true
		e.emit(EventStart, c)
		return nil
	}
	if err := e.run(c, 0); err != nil {
		return err
	}
	c.asleep = false
	e.emit(EventStart, c)
	return nil
}

func (e *fakeEngine) KillContainer(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	e.stop(c)
	c.state = "exited"
	e.emit(EventKill, c)
	return nil
}

func (e *fakeEngine) StopContainer(_ context.Context, id string, _ time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	if err := e.begin("stop"); err != nil {
		return err
	}
	if c.state != "running" && c.state != "paused" {
		return nil
	}
	e.stop(c)
	c.state = "exited"
	e.emit(EventStop, c)
	return nil
}

func (e *fakeEngine) RemoveContainer(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	if err := e.begin("remove"); err != nil {
		return err
	}
	e.stop(c)
	delete(e.containers, c.id)
	e.emit(EventDestroy, c)
	return os.RemoveAll(filepath.Join(e.root, "containers", c.id))
}

func (e *fakeEngine) RenameContainer(_ context.Context, id, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	c.name = name
	return nil
}

func (e *fakeEngine) PauseContainer(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	if err := e.begin("pause"); err != nil {
		return err
	}
	if c.frozen {
		return fmt.Errorf("%w: cannot pause a paused container", ErrEngineTaskPaused)
	}
	if c.state != "running" {
		return fmt.Errorf("container %s is not running", c.name)
	}
	e.silence(c)
	c.state = "paused"
	e.emit(EventPause, c)
	return nil
}

func (e *fakeEngine) UnpauseContainer(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	if err := e.begin("unpause"); err != nil {
		return err
	}
	if c.state != "paused" {
		return fmt.Errorf("container %s is not paused", c.name)
	}
	c.state = "running"
	if err := e.listen(c); err != nil {
		return err
	}
	e.emit(EventUnpause, c)
	return nil
}

func (e *fakeEngine) InspectContainer(_ context.Context, id string) (ContainerState, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.inspected = append(e.inspected, id)
	if err := e.unreachable(); err != nil {
		return ContainerState{}, err
	}
	c, err := e.find(id)
	if err != nil {
		return ContainerState{}, err
	}
	return ContainerState{Running: c.state == "running" || c.state == "paused", Paused: c.state == "paused", Status: c.state}, nil
}

func (e *fakeEngine) ListContainers(_ context.Context, labels map[string]string) ([]Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls["list"]++ // counted, never failed on purpose: a start's cost is in listings
	if err := e.unreachable(); err != nil {
		return nil, err
	}
	var out []Container
	for _, c := range e.containers {
		if !hasLabels(c.spec.Labels, labels) {
			continue
		}
		fc := Container{ID: c.id, Name: c.name, State: c.state, Labels: maps.Clone(c.spec.Labels), Addresses: map[string]string{}}
		if c.spec.Network != "" {
			fc.Addresses[c.spec.Network] = c.spec.IP
		}
		out = append(out, fc)
	}
	return out, nil
}

func (e *fakeEngine) WaitStopped(ctx context.Context, id string) error {
	for {
		e.mu.Lock()
		c, err := e.find(id)
		stopped := err == nil && c.state != "running" && c.state != "paused"
		e.mu.Unlock()
		if err != nil || stopped {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (e *fakeEngine) ContainerLogs(_ context.Context, id string, _ LogsOptions) (io.ReadCloser, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return nil, err
	}
	line := time.Now().UTC().Format(time.RFC3339Nano) + " " + c.name + " started\n"
	return io.NopCloser(strings.NewReader(line)), nil
}

// fakePages is the page image the fake writes its memory to.
const fakePages = "pages-1.img"

func (e *fakeEngine) CreateCheckpoint(_ context.Context, id string, o CheckpointOptions) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	if c.state != "running" && c.state != "paused" {
		return fmt.Errorf("container %s is not running", c.name)
	}
	if outcome := e.cutNext; outcome != "" {
		e.cutNext = ""
		return e.cut(c, outcome)
	}
	if err := e.begin("checkpoint"); err != nil {
		var earlier earlierDump
		if errors.As(err, &earlier) {
			if err := e.dumpLocked(c, e.CheckpointDir(c.id, string(earlier)), true); err != nil {
				return err
			}
			return errors.New("runc did not terminate successfully: container does not exist")
		}
		return err // as CRIU does, the processes it froze run on
	}
	dir := filepath.Join(o.Dir, o.Name)
	if o.Dir == "" {
		dir = e.CheckpointDir(c.id, o.Name)
	}
	return e.dumpLocked(c, dir, o.Exit)
}

// earlierDump, queued with failNext("checkpoint"), plays a dump that a
// provider killed mid-way had asked for: the shim finishes it first (into
// the checkpoint so named, the container exits), and the checkpoint asked
// for now fails, its container gone.
type earlierDump string

func (d earlierDump) Error() string { return "an earlier dump, " + string(d) + ", finished first" }

// dumpLocked writes c's memory as a checkpoint in dir; with exit, c exits.
func (e *fakeEngine) dumpLocked(c *fakeContainer, dir string, exit bool) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, fakePages), []byte(strconv.FormatInt(c.memory.Load(), 10)), 0o600); err != nil {
		return err
	}
	if exit {
		e.stop(c)
		c.state = "exited"
		e.emit(EventDie, c)
	}
	return nil
}

// readPages reads back the memory dumpLocked wrote in dir.
func readPages(dir string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(dir, fakePages))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(b), 10, 64)
}

func (e *fakeEngine) ListCheckpoints(_ context.Context, id string) ([]string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return nil, err
	}
	entries, _ := os.ReadDir(filepath.Dir(e.CheckpointDir(c.id, "x")))
	var out []string
	for _, d := range entries {
		out = append(out, d.Name())
	}
	slices.Sort(out)
	return out, nil
}

func (e *fakeEngine) DeleteCheckpoint(_ context.Context, id, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	return os.RemoveAll(e.CheckpointDir(c.id, name))
}

func (e *fakeEngine) RestoreContainer(_ context.Context, id, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	// Counted before it is refused: a restore attempted twice shows.
	if err := e.begin("restore"); err != nil {
		return err
	}
	if c.state == "running" || c.state == "paused" {
		return fmt.Errorf("container %s is running", c.name)
	}
	mem, err := readPages(e.CheckpointDir(c.id, name))
	if err != nil {
		return fmt.Errorf("restore %s from %s: %w", c.name, name, err)
	}
	if err := e.run(c, mem); err != nil {
		return err
	}
	if err := e.afterRestore(c); err != nil {
		return err
	}
	e.emit(EventStart, c)
	return nil
}

// holdRestores makes the next restore return only once the returned
// function is called, and then fail with late (nil: succeed); stops says a
// failed one leaves its container stopped.
func (e *fakeEngine) holdRestores(late error, stops bool) (release func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	hold := make(chan struct{})
	e.restoreHold, e.restoreLate, e.restoreLateStops = hold, late, stops
	var once sync.Once
	return func() { once.Do(func() { close(hold) }) }
}

// afterRestore plays what happens once a restored container serves and
// before the engine's call returns (with e.mu held): a hold, then maybe a
// late failure.
func (e *fakeEngine) afterRestore(c *fakeContainer) error {
	hold := e.restoreHold
	if hold == nil {
		return nil
	}
	e.mu.Unlock()
	<-hold
	e.mu.Lock()
	late, stops := e.restoreLate, e.restoreLateStops
	e.restoreHold, e.restoreLate = nil, nil
	if late == nil {
		return nil
	}
	if stops {
		e.stop(c)
		c.state = "exited"
		e.emit(EventDie, c)
	}
	return late
}

func (e *fakeEngine) CheckpointDir(id, name string) string {
	return filepath.Join(e.root, "containers", id, "checkpoints", name)
}

func (e *fakeEngine) ImageID(_ context.Context, ref string) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if id, ok := e.images[ref]; ok {
		return id, nil
	}
	for _, id := range e.images {
		if id == ref {
			return id, nil
		}
	}
	return "", fmt.Errorf("%w: no such image: %s", ErrEngineNotFound, ref)
}

func (e *fakeEngine) PullImage(_ context.Context, ref string) error {
	return fmt.Errorf("pull %s: the fake engine has no registry", ref)
}

func (e *fakeEngine) BuildImage(_ context.Context, tag string, buildContext io.Reader) error {
	if _, err := io.Copy(io.Discard, buildContext); err != nil {
		return err
	}
	e.addImage(tag)
	return nil
}

func (e *fakeEngine) SaveImage(_ context.Context, ref string) (io.ReadCloser, error) {
	return nil, fmt.Errorf("save %s: not supported by the fake engine", ref)
}

func (e *fakeEngine) LoadImage(context.Context, io.Reader) error {
	return fmt.Errorf("load: not supported by the fake engine")
}

func (e *fakeEngine) InspectNetwork(_ context.Context, name string) (NetworkInfo, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	nw, ok := e.networks[name]
	if !ok {
		return NetworkInfo{}, fmt.Errorf("%w: no such network: %s", ErrEngineNotFound, name)
	}
	for _, c := range e.containers {
		if c.spec.Network == name && c.spec.IP != "" {
			nw.Addresses = append(nw.Addresses, c.spec.IP+"/32")
		}
	}
	return nw, nil
}

func (e *fakeEngine) CreateNetwork(_ context.Context, name string, info NetworkInfo) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.networks[name]; ok {
		return fmt.Errorf("%w: network %s", ErrEngineConflict, name)
	}
	e.networks[name] = info
	return nil
}

// The in-place methods. A dump in place writes the function's memory into
// dir (and an inventory, as CRIU does last) and ends the function; the
// container runs on with its init only (asleep). A restore in place starts
// the container first when it is stopped (its init waiting), then the
// function from dir. Each can be made to fail (failNext "dumpInPlace",
// "restoreInPlace", "inPlaceRunning", "dropInPlace"); a failed dump leaves
// the function running and dir removed, a failed restore leaves dir and
// the container up with no function.

func (e *fakeEngine) DumpInPlace(_ context.Context, id, dir string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	if err := e.unreachable(); err != nil {
		return err
	}
	if !c.spec.Init {
		return fmt.Errorf("container %s was not created with faas-criu-init", c.name)
	}
	if c.state != "running" || c.asleep || c.memory == nil {
		return fmt.Errorf("container %s has no function running", c.name)
	}
	if err := e.begin("dumpInPlace"); err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	if err := e.dumpLocked(c, dir, false); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "inventory.img"), nil, 0o600); err != nil {
		return err
	}
	e.stop(c)
	c.asleep, c.waits = true, true
	return nil
}

func (e *fakeEngine) RestoreInPlace(_ context.Context, id, dir string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	if err := e.unreachable(); err != nil {
		return err
	}
	if c.state != "running" {
		if sb, err := e.find(c.spec.NetworkOf); err != nil || sb.state != "running" {
			return fmt.Errorf("container %s: its network sandbox is not running", c.name)
		}
		c.state, c.asleep = "running", true
		e.emit(EventStart, c)
	}
	if !c.asleep {
		return fmt.Errorf("container %s: its function runs already", c.name)
	}
	if err := e.begin("restoreInPlace"); err != nil {
		return err
	}
	mem, err := readPages(dir)
	if err != nil {
		return fmt.Errorf("restore %s in place from %s: %w", c.name, dir, err)
	}
	if err := e.run(c, mem); err != nil {
		return err
	}
	c.asleep, c.waits = false, false
	return nil
}

func (e *fakeEngine) InPlaceRunning(_ context.Context, id string) (bool, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return false, err
	}
	if err := e.begin("inPlaceRunning"); err != nil {
		return false, err
	}
	return c.state == "running" && !c.asleep && c.memory != nil, nil
}

func (e *fakeEngine) DropInPlace(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(id)
	if err != nil {
		return err
	}
	if err := e.begin("dropInPlace"); err != nil {
		return err
	}
	c.waits = false
	return nil
}

// inPlaceState returns the named container's in-place flags and state.
func (e *fakeEngine) inPlaceState(name string) (state string, asleep, waits bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.find(name)
	if err != nil {
		return "", false, false
	}
	return c.state, c.asleep, c.waits
}
