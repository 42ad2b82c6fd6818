// Package provider runs OpenFaaS functions as containers on a Docker engine.
// It owns the function definitions (in its state directory), the containers
// and their network, secrets, logs, and the mechanics of pausing,
// checkpointing and restoring replicas. Policies that decide when to do so
// live in package policy, CRIU knowledge in package checkpoint; HTTP lives in
// package handlers.
package provider

import (
	"cmp"
	"context"
	"fmt"
	"github.com/faas-criu/faas-criu/internal/ticker"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/checkpoint"
)

// Config is the provider's configuration.
type Config struct {
	StateDir     string
	Network      string        // name of the bridge network the provider owns
	Subnet       string        // its subnet, used when the provider creates it
	Namespaces   []string      // namespaces functions may be deployed to
	FunctionPort int           // port every function listens on (the watchdog's 8080)
	ReadyTimeout time.Duration // how long a new replica may take to answer its health check
	WakeTimeout  time.Duration // how long a request waits for a sleeping function
	Pull         string        // "never" (default) or "missing"
	PullTimeout  time.Duration
	// Strategy is the default sleep strategy.
	Strategy string
	// RestoreFallback starts a replica fresh (losing its state, and saying
	// so) when its restore fails, instead of keeping it hibernated.
	RestoreFallback bool
	RuncConf        string // runc's CRIU configuration file
	CRIUStamp       string // setup's record of the CRIU it verified
	// ReconcileEvery is the period of the safety-net reconciliation.
	ReconcileEvery time.Duration
	// ImportMaxBytes bounds what a migration may bring in (image, and
	// checkpoints, each).
	ImportMaxBytes int64
	// ContainerdTmp is containerd's temporary directory, where it leaves a
	// copy of every checkpoint it restores (the provider removes them).
	ContainerdTmp string
	// DrainTimeout bounds how long a replica being removed may finish the
	// requests it serves.
	DrainTimeout time.Duration
}

// DefaultConfig is the configuration when nothing is set: the one source of
// the defaults, which setDefaults fills in and serve's flags show.
func DefaultConfig() Config {
	return Config{
		StateDir:     "/var/lib/faas-criu",
		Network:      "faas-criu",
		Subnet:       "10.62.0.0/16",
		Namespaces:   []string{api.DefaultNamespace},
		FunctionPort: 8080,
		ReadyTimeout: 30 * time.Second,
		WakeTimeout:  30 * time.Second,
		Pull:         "never",
		PullTimeout:  60 * time.Second,
		Strategy:     api.StrategyCheckpoint,
		RuncConf:     checkpoint.RuncConfPath,
		// setup's record, like runc.conf, not the provider's state: it
		// stays where scripts/setup.sh wrote it whatever --state-dir says.
		CRIUStamp:      checkpoint.StampPath,
		ReconcileEvery: 10 * time.Second,
		ImportMaxBytes: 4 << 30,
		DrainTimeout:   60 * time.Second,
		// containerd's own temporary directory (it leaves copies of restored
		// checkpoints there), not this process's TMPDIR.
		ContainerdTmp: "/tmp",
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	c.StateDir = cmp.Or(c.StateDir, d.StateDir)
	c.Network = cmp.Or(c.Network, d.Network)
	c.Subnet = cmp.Or(c.Subnet, d.Subnet)
	if len(c.Namespaces) == 0 {
		c.Namespaces = d.Namespaces
	}
	c.FunctionPort = cmp.Or(c.FunctionPort, d.FunctionPort)
	c.ReadyTimeout = cmp.Or(c.ReadyTimeout, d.ReadyTimeout)
	c.WakeTimeout = cmp.Or(c.WakeTimeout, d.WakeTimeout)
	c.Pull = cmp.Or(c.Pull, d.Pull)
	c.PullTimeout = cmp.Or(c.PullTimeout, d.PullTimeout)
	c.Strategy = cmp.Or(c.Strategy, d.Strategy)
	c.RuncConf = cmp.Or(c.RuncConf, d.RuncConf)
	c.CRIUStamp = cmp.Or(c.CRIUStamp, d.CRIUStamp)
	c.ReconcileEvery = cmp.Or(c.ReconcileEvery, d.ReconcileEvery)
	c.ImportMaxBytes = cmp.Or(c.ImportMaxBytes, d.ImportMaxBytes)
	c.DrainTimeout = cmp.Or(c.DrainTimeout, d.DrainTimeout)
	c.ContainerdTmp = cmp.Or(c.ContainerdTmp, d.ContainerdTmp)
}

func (c *Config) validate() error {
	if c.Pull != "never" && c.Pull != "missing" {
		return fmt.Errorf("pull policy %q: use never or missing", c.Pull)
	}
	if !api.ValidStrategy(c.Strategy) {
		return fmt.Errorf("strategy %q: use checkpoint, pause, pause-then-checkpoint or remove", c.Strategy)
	}
	for _, ns := range c.Namespaces {
		if err := api.ValidateNamespace(ns); err != nil {
			return err
		}
	}
	return nil
}

// Provider runs functions on one Docker engine.
type Provider struct {
	cfg        Config
	engine     Engine
	store      *store
	instance   string
	engineInfo EngineInfo
	criu       checkpoint.Capabilities
	recorder   *checkpoint.Recorder
	ipam       *ipam
	health     *http.Client
	earlyProbe *http.Client // probes a replica whose start still runs (early.go)
	probing    atomic.Int64 // replicas being probed so (pollAnswer)
	metrics    *Metrics

	mu  sync.RWMutex
	fns map[api.Key]*function
	// seenMemory is what a replica of each image was last seen using.
	seenMemory map[string]int64

	admission Admission

	// beforeCheckpoint is called with a replica's address before it is
	// checkpointed, so that idle keep-alive connections to it are dropped.
	beforeCheckpoint func(addr string)
	// replicaGone is called with a removed replica's address, so that
	// connections and transports kept for it are let go.
	replicaGone func(addr string)

	// offsite, when set, keeps a copy of each checkpoint off the box.
	offsite atomic.Pointer[Offsite]

	reconcileQ chan api.Key
	started    time.Time
}

// Option wires the provider to the rest of the program at construction.
type Option func(*options)

type options struct {
	admission        func(*Provider) Admission
	beforeCheckpoint func(addr string)
	replicaGone      func(addr string)
	criu             *checkpoint.Capabilities
}

// WithAdmission installs the memory budget's hook. It is made from the
// provider (the budget watches the fleet the provider is), once the
// provider has loaded its functions.
func WithAdmission(build func(*Provider) Admission) Option {
	return func(o *options) { o.admission = build }
}

// WithBeforeCheckpoint registers a hook called with a replica's address just
// before it is checkpointed.
func WithBeforeCheckpoint(f func(addr string)) Option {
	return func(o *options) { o.beforeCheckpoint = f }
}

// WithReplicaGone registers a hook called with a replica's address once it
// is removed.
func WithReplicaGone(f func(addr string)) Option {
	return func(o *options) { o.replicaGone = f }
}

// WithCRIU takes c for what CRIU can do instead of probing the machine (for
// an engine that is not the local dockerd, such as the tests' fake).
func WithCRIU(c checkpoint.Capabilities) Option {
	return func(o *options) { o.criu = &c }
}

// New connects to the engine, prepares the network and state directory, and
// loads what the provider knew before it last stopped. The provider owns
// eng from then on (Close closes it).
func New(ctx context.Context, cfg Config, eng Engine, opts ...Option) (*Provider, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	var err error
	p := &Provider{
		cfg:              cfg,
		engine:           eng,
		beforeCheckpoint: o.beforeCheckpoint,
		replicaGone:      o.replicaGone,
		fns:              map[api.Key]*function{},
		seenMemory:       map[string]int64{},
		health:           newHealthClient(),
		earlyProbe:       newEarlyProbeClient(),
		metrics:          newMetrics(),
		reconcileQ:       make(chan api.Key, 1024),
		started:          time.Now(),
	}
	if err := p.connectEngine(ctx); err != nil {
		return nil, err
	}
	if p.store, err = openStore(cfg.StateDir); err != nil {
		return nil, err
	}
	if p.instance, err = p.store.instanceID(); err != nil {
		return nil, err
	}
	if p.ipam, err = p.ensureNetwork(ctx); err != nil {
		return nil, err
	}
	if err := p.ensureSandboxImage(ctx); err != nil {
		return nil, err
	}
	if o.criu != nil {
		p.criu = *o.criu
	} else {
		p.criu = checkpoint.Probe(cfg.RuncConf, cfg.CRIUStamp)
	}
	switch {
	case !p.criu.Available:
		slog.Warn("CRIU cannot be used: functions scaled to zero will be PAUSED (memory kept), not hibernated", "problem", p.criu.Problem)
	case !p.engineInfo.Experimental:
		p.criu.Available = false
		p.criu.Problem = "the Docker engine is not in experimental mode, so its checkpoint API is off; set {\"experimental\": true} in /etc/docker/daemon.json and restart dockerd"
		slog.Warn("CRIU cannot be used: functions scaled to zero will be PAUSED (memory kept), not hibernated", "problem", p.criu.Problem)
	default:
		slog.Info("CRIU found", "version", p.criu.Version, "path", p.criu.Path, "tcp_established", p.criu.TCPEstablished, "work_dir", p.criu.WorkDir)
		// Host-wide and set by setup, not here: logged so that a slow
		// restore can be told from a host left with normal grace periods.
		rcu := checkpoint.ReadRCU(checkpoint.SysKernel)
		slog.Info("RCU grace periods "+rcu.String()+" (scripts/setup.sh: FAAS_CRIU_RCU_EXPEDITED)", "rcu_expedited", rcu.Expedited)
		if p.criu.Problem != "" {
			slog.Warn("CRIU", "problem", p.criu.Problem)
		}
		if rt := p.functionRuntime(); rt != "" {
			slog.Info("function containers run with the engine's runtime "+rt+": runc whose CRIU archives tmpfs mounts in-process", "runtime", rt)
		}
		if !p.criu.NonRootFunctions {
			slog.Warn("this machine withholds CAP_SYS_RESOURCE: functions that run as a non-root user cannot be hibernated (they are left running, and the scale to zero reports why)")
		}
	}
	p.recorder = checkpoint.NewRecorder(p.criu.WorkDir)
	if err := p.load(ctx); err != nil {
		return nil, err
	}
	p.sweepContainerdTmp() // once the provider knows its containers
	if o.admission != nil {
		p.admission = o.admission(p)
	}
	return p, nil
}

func (p *Provider) connectEngine(ctx context.Context) error {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	info, err := p.engine.Info(pctx)
	if err != nil {
		return fmt.Errorf("cannot reach the engine: %w; is dockerd running? (make run starts it)", err)
	}
	p.engineInfo = info
	return nil
}

// Start runs the background work: following engine events, reconciling
// functions with their containers, and saving invocation counts.
func (p *Provider) Start(ctx context.Context) {
	go p.watchEvents(ctx)
	go p.reconcileWorker(ctx)
	go p.reconcileLoop(ctx)
	go p.flushLoop(ctx)
}

// Close saves invocation counts and releases the engine connection.
func (p *Provider) Close() error {
	p.flush()
	return p.engine.Close()
}

// EngineInfo describes the engine in use.
func (p *Provider) EngineInfo() EngineInfo { return p.engineInfo }

// CRIU reports what the provider found out about CRIU at start.
func (p *Provider) CRIU() checkpoint.Capabilities { return p.criu }

// Namespaces lists the namespaces functions may use.
func (p *Provider) Namespaces() []string { return slices.Clone(p.cfg.Namespaces) }

// Config returns the provider's effective configuration.
func (p *Provider) Config() Config { return p.cfg }

// namespace resolves a requested namespace ("" means the default).
func (p *Provider) namespace(ns string) (string, error) {
	if ns == "" {
		return api.DefaultNamespace, nil
	}
	if slices.Contains(p.cfg.Namespaces, ns) {
		return ns, nil
	}
	if err := api.ValidateNamespace(ns); err != nil {
		return "", err
	}
	return "", errorf(api.ErrInvalid, "namespace %q is not enabled; enabled: %v (start the provider with --namespaces to add it)", ns, p.cfg.Namespaces)
}

// lookup finds a function.
func (p *Provider) lookup(ns, name string) (*function, error) {
	ns, err := p.namespace(ns)
	if err != nil {
		return nil, err
	}
	p.mu.RLock()
	fn := p.fns[api.Key{Namespace: ns, Name: name}]
	p.mu.RUnlock()
	if fn == nil {
		return nil, errorf(api.ErrNotFound, "function %q not found in namespace %q", name, ns)
	}
	return fn, nil
}

func (p *Provider) checkpointDir(containerID, name string) string {
	return p.engine.CheckpointDir(containerID, name)
}

// pagesDir is where a checkpoint's page images are kept, next to the
// directory the engine copies on restore (removed with the container).
func (p *Provider) pagesDir(containerID, name string) string {
	return filepath.Join(filepath.Dir(filepath.Dir(p.checkpointDir(containerID, name))), "criu-pages", name)
}

// placeCheckpoint finishes a checkpoint directory the engine will restore
// from: its page images move out (see checkpoint.ExternalizePages) and its
// description is written. A failure to move the pages only costs speed.
func (p *Provider) placeCheckpoint(containerID string, info CheckpointInfo) error {
	dir := p.checkpointDir(containerID, info.Name)
	if err := checkpoint.ExternalizePages(dir, p.pagesDir(containerID, info.Name)); err != nil {
		slog.Info("checkpoint page images stay in place: restores will copy them", "checkpoint", info.Name, "err", err)
	}
	return checkpoint.WriteMeta(dir, info)
}

// flushLoop saves invocation counts that changed, every few seconds, so that
// a restart (even a SIGKILL) loses at most a few seconds of counting.
func (p *Provider) flushLoop(ctx context.Context) { ticker.Every(ctx, 2*time.Second, p.flush) }

func (p *Provider) flush() {
	for _, fn := range p.functions() {
		n := fn.invocations.Load()
		if n == fn.savedInv.Load() {
			continue
		}
		fn.mu.Lock()
		if fn.deleted {
			fn.mu.Unlock()
			continue
		}
		fn.rec.Invocations = n
		rec := *fn.rec
		fn.mu.Unlock()
		if err := p.store.saveRecord(fn.key.Namespace, fn.key.Name, &rec); err != nil {
			slog.Error("save invocation count", "function", fn.key.String(), "err", err)
			continue
		}
		fn.savedInv.Store(n)
	}
}

// functions returns every function, in no particular order.
func (p *Provider) functions() []*function {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*function, 0, len(p.fns))
	for _, fn := range p.fns {
		out = append(out, fn)
	}
	return out
}
