package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/mux"
	bootstrap "github.com/openfaas/faas-provider"
	"github.com/openfaas/faas-provider/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/async"
	gateway "github.com/faas-criu/faas-criu/client"
	"github.com/faas-criu/faas-criu/fleet"
	"github.com/faas-criu/faas-criu/handlers"
	"github.com/faas-criu/faas-criu/internal/config"
	"github.com/faas-criu/faas-criu/internal/statelock"
	"github.com/faas-criu/faas-criu/policy"
	"github.com/faas-criu/faas-criu/provider"
	"github.com/faas-criu/faas-criu/provider/docker"
	"github.com/faas-criu/faas-criu/stack"
)

type serveOptions struct {
	stack           string
	importMax       string
	policy          policy.Config
	budget          string
	port            int
	readTimeout     time.Duration
	writeTimeout    time.Duration
	basicAuth       bool
	secretMountPath string
	cfg             provider.Config
	namespaces      string
	async           async.Config
	fleet           fleet.Config
	// initPath is faas-criu-init (FAAS_CRIU_INIT); "" with initNote: none.
	initPath, initNote string
}

func parseServe(args []string) (*serveOptions, error) {
	return parseServeEnv(args, nil)
}

// parseServeEnv reads serve's flags over its environment variables (lookup
// nil is the process's environment). Every value goes through package
// config: one it does not understand stops the start with its name and
// value, instead of being read as false or as the default.
func parseServeEnv(args []string, lookup func(string) (string, bool)) (*serveOptions, error) {
	o := &serveOptions{}
	def := provider.DefaultConfig()
	env := &config.Env{Lookup: lookup}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	port := env.Int("port", 8080)
	fs.IntVar(&o.port, "port", port, "TCP port to serve on (env port)")
	fs.StringVar(&o.stack, "stack", env.String("stack", ""), "a stack.yml whose functions are deployed (or updated) at start: a rebooted box returns to its declared state")
	config.DurationVar(fs, &o.readTimeout, "read-timeout", env.Duration("read_timeout", 60*time.Second), "HTTP read timeout (env read_timeout)")
	config.DurationVar(fs, &o.writeTimeout, "write-timeout", env.Duration("write_timeout", 60*time.Second), "HTTP write timeout, the longest a function call may take (env write_timeout)")
	config.BoolVar(fs, &o.basicAuth, "basic-auth", env.Bool("basic_auth", true), "require basic auth on /system/* (env basic_auth)")
	fs.StringVar(&o.cfg.StateDir, "state-dir", env.String("state_dir", def.StateDir), "directory for the provider's records, secrets and credentials")
	fs.StringVar(&o.secretMountPath, "secret-mount-path", env.String("secret_mount_path", ""), "directory of basic-auth-user and basic-auth-password (env secret_mount_path; default STATE_DIR/credentials)")
	fs.StringVar(&o.cfg.Network, "network", env.String("network", def.Network), "Docker bridge network for functions (created if missing)")
	fs.StringVar(&o.cfg.Subnet, "subnet", env.String("subnet", def.Subnet), "subnet of that network when the provider creates it")
	fs.StringVar(&o.namespaces, "namespaces", env.String("namespaces", strings.Join(def.Namespaces, ",")), "comma-separated namespaces functions may use")
	fs.StringVar(&o.importMax, "import-max-bytes", env.String("import_max_bytes", quantity(def.ImportMaxBytes)), "the most a migration may bring in (its image, and its checkpoints, each)")
	fs.StringVar(&o.cfg.Pull, "pull", env.String("pull", def.Pull), "pull missing images: never or missing")
	config.DurationVar(fs, &o.cfg.PullTimeout, "pull-timeout", def.PullTimeout, "the longest a pull may take (with --pull=missing)")
	config.DurationVar(fs, &o.cfg.ReadyTimeout, "ready-timeout", env.Duration("ready_timeout", def.ReadyTimeout), "how long a new replica may take to answer its health check")
	config.DurationVar(fs, &o.cfg.WakeTimeout, "wake-timeout", env.Duration("wake_timeout", def.WakeTimeout), "how long a request waits for a sleeping function before 504")
	fs.StringVar(&o.cfg.Strategy, "strategy", env.String("strategy", def.Strategy), "how functions sleep when scaled to zero or idle: checkpoint, pause, pause-then-checkpoint or remove")
	config.BoolVar(fs, &o.cfg.RestoreFallback, "restore-fallback", env.Bool("restore_fallback", false), "start a replica fresh (losing its state, and saying so) when its restore fails")
	config.DurationVar(fs, &o.cfg.ReconcileEvery, "reconcile-every", def.ReconcileEvery, "how often every function is checked against its containers")
	fs.StringVar(&o.cfg.ContainerdTmp, "containerd-tmp", def.ContainerdTmp, "containerd's temporary directory, where it leaves copies of restored checkpoints (the provider removes them)")
	fs.StringVar(&o.cfg.RuncConf, "runc-conf", def.RuncConf, "runc's CRIU configuration file")
	fs.StringVar(&o.cfg.CRIUStamp, "criu-stamp", def.CRIUStamp, "setup's record of the CRIU it verified (used when criu cannot be run here; setup's, so it does not follow --state-dir)")
	config.DurationVar(fs, &o.policy.ZeroDuration, "idle-after", env.Duration("scale_zero_duration", 15*time.Minute), "default idle time before a com.openfaas.scale.zero=true function sleeps")
	config.DurationVar(fs, &o.policy.PauseAfter, "pause-after", env.Duration("pause_after", time.Minute), "default idle time before the pause tier (pause-then-checkpoint)")
	fs.StringVar(&o.budget, "memory-budget", env.String("memory_budget", "0"), "memory for running functions (e.g. 512Mi); least recently used idle functions are hibernated beyond it; 0 is no budget")
	config.DurationVar(fs, &o.policy.DeepAfter, "deep-after", env.Duration("deep_after", 30*time.Minute), "default time a function stays hibernated before its network sandbox is stopped too, the deep tier (0: never; com.openfaas.criu.deep-after overrides)")
	config.BoolVar(fs, &o.policy.Autoscale, "autoscale", env.Bool("autoscale", true), "scale functions between com.openfaas.scale.min and max by request rate")
	config.DurationVar(fs, &o.policy.ScaleWindow, "scale-window", env.Duration("scale_window", 10*time.Second), "window over which the request rate is measured")
	fs.Float64Var(&o.policy.ScaleTarget, "scale-target", 5, "requests per second over the window that trigger a step up (com.openfaas.scale.target overrides)")
	fs.IntVar(&o.policy.ScaleMax, "scale-max", 20, "default com.openfaas.scale.max")
	fs.IntVar(&o.policy.ScaleFactor, "scale-factor", 20, "default com.openfaas.scale.factor (percent of max per step)")
	config.DurationVar(fs, &o.policy.Tick, "policy-tick", time.Second, "how often the idle, memory, load and backup policies look")
	config.DurationVar(fs, &o.policy.BackupInterval, "backup-interval", env.Duration("backup_interval", 0), "default interval between backups of running functions (0: none; com.openfaas.criu.backup-interval overrides)")
	fs.IntVar(&o.policy.BackupsKeep, "backups-keep", 3, "backups kept per replica (com.openfaas.criu.backups-keep overrides)")
	o.async.RegisterFlags(fs)
	o.fleet.RegisterFlags(fs)
	o.initPath, o.initNote = env.InitPath()
	if err := env.Err(); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	budget, err := config.ParseMemory(o.budget)
	if err != nil {
		return nil, fmt.Errorf("serve: memory_budget/--memory-budget: %w", err)
	}
	o.policy.Budget = budget
	if o.cfg.ImportMaxBytes, err = config.ParseMemory(o.importMax); err != nil || o.cfg.ImportMaxBytes <= 0 {
		return nil, fmt.Errorf("serve: import_max_bytes/--import-max-bytes %q: want a positive size such as 512Mi", o.importMax)
	}
	if o.secretMountPath == "" {
		o.secretMountPath = filepath.Join(o.cfg.StateDir, "credentials")
	}
	if err := o.fleet.Finish(o.cfg.StateDir, o.port); err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	for _, ns := range strings.Split(o.namespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			o.cfg.Namespaces = append(o.cfg.Namespaces, ns)
		}
	}
	return o, nil
}

// quantity writes a byte count as the flags take it (4Gi, 512Mi).
func quantity(n int64) string {
	if n%(1<<30) == 0 {
		return fmt.Sprintf("%dGi", n>>30)
	}
	return fmt.Sprintf("%dMi", n>>20)
}

func Serve(args []string) error {
	o, err := parseServe(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// One provider per state directory, checked before anything changes.
	lock, err := statelock.Acquire(o.cfg.StateDir)
	if err != nil {
		return err
	}
	defer lock.Release()

	// A broken stack stops the start, before anything changes.
	declared, err := loadDeclared(o.stack)
	if err != nil {
		return err
	}
	// A replica being removed may finish its requests for as long as a
	// request may take.
	o.cfg.DrainTimeout = o.writeTimeout
	transports := &handlers.Transports{}
	p, policies, err := newProvider(ctx, o, transports)
	if err != nil {
		return err
	}
	defer p.Close()
	prometheus.MustRegister(p.Metrics().Collectors()...)

	creds, err := credentials(o)
	if err != nil {
		return err
	}

	registerMemoryGauges(policies)

	proxy := countedProxy(p, transports)
	cfg := p.Config()
	fp, err := withFleet(ctx, o, p, proxy, creds)
	if err != nil {
		return err
	}
	if fp.cluster != nil {
		defer fp.cluster.Close()
	}
	// Asynchronous calls: queued on an embedded NATS JetStream (in a
	// fleet, the fleet's), run through the same proxy.
	o.async.Dir, o.async.CallTimeout = async.StoreDir(cfg.StateDir), o.writeTimeout
	queue := async.New(o.async, fp.invoker)
	defer queue.Close()
	prometheus.MustRegister(queue.Collectors()...)
	h := handlers.Mount(fp.router, handlers.Deps{
		Functions: p, Secrets: p, Namespaces: p, Logs: p, Migrator: p, Backups: p,
		Target: fp.target, Invoke: proxy, Async: queue, Info: infoDoc(p, o.policy, policies),
		Credentials: creds, ImportMaxBytes: cfg.ImportMaxBytes, MaxFollow: 24 * time.Hour,
	})

	p.Start(ctx)
	applyStack(ctx, p, o.stack, declared)
	go policies.Run(ctx)
	if err := queue.Recover(); err != nil {
		slog.Error("asynchronous calls accepted before the last stop were not recovered", "err", err)
	}
	slog.Info("faas-criu serving", "version", Version, "port", o.port, "engine", p.EngineInfo().Version, "state", cfg.StateDir)
	bootstrap.Serve(ctx, h, &types.FaaSConfig{
		TCPPort:      &o.port,
		ReadTimeout:  o.readTimeout,
		WriteTimeout: o.writeTimeout,
		EnableHealth: true,
	})
	slog.Info("faas-criu stopped")
	return nil
}

// countedProxy is the invoke path, counted in the gateway's series so
// OpenFaaS dashboards work straight at faas-criu.
func countedProxy(p *provider.Provider, transports *handlers.Transports) http.Handler {
	gwMetrics := handlers.NewGatewayMetrics(p, p, api.DefaultNamespace)
	prometheus.MustRegister(gwMetrics)
	return gwMetrics.Wrap(handlers.NewProxy(p, transports))
}

// fleetParts are what serving differs by in a fleet.
type fleetParts struct {
	router  *mux.Router
	invoker http.Handler
	target  handlers.TargetFunc
	cluster *fleet.Fleet // nil: no fleet
}

// withFleet joins the fleet when one is configured (opt-in): requests about
// functions on other boxes then go to their box, asynchronous calls are
// queued on the fleet's JetStream, checkpoints and backups are copied to
// the fleet's object store, and a migration to another box goes through the
// cluster. Without one, the router, the invoker and the migration target
// are the plain ones, and the fleet nil.
func withFleet(ctx context.Context, o *serveOptions, p *provider.Provider, proxy http.Handler, creds *handlers.Credentials) (fleetParts, error) {
	parts := fleetParts{router: bootstrap.Router(), invoker: proxy, target: migrationTarget}
	if !o.fleet.Enabled() {
		return parts, nil
	}
	// The embedded server holds the asynchronous calls too.
	o.fleet.QueueStore, o.fleet.MaxPayload = o.async.ServerNeeds()
	fl, err := fleet.Start(ctx, o.fleet)
	if err != nil {
		return parts, err
	}
	fl.SetLocalSecrets(p)
	fl.SetRestorer(func(ctx context.Context, dir string, replace bool, why string) error {
		_, err := p.ImportDir(ctx, dir, replace, why)
		return err
	})
	fl.SetImages(p)
	// Takeovers restore (or deploy) here, a fence hibernates here.
	fl.SetLocal(p)
	p.SetOffsite(fl.NewUploader(ctx))
	parts.router.Use(fl.Wrap)
	parts.router.HandleFunc("/system/fleet", handlers.RequireAuth(creds, fl.BoxesHandler)).Methods(http.MethodGet)
	parts.router.HandleFunc("/system/fleet/restore", handlers.RequireAuth(creds, fl.RestoreHandler)).Methods(http.MethodPost)
	parts.router.PathPrefix("/system/fleet/checkpoints/").Handler(handlers.RequireAuth(creds, fl.CheckpointHandler)).Methods(http.MethodGet)
	parts.invoker, parts.cluster = fl.Wrap(proxy), fl
	o.async.Cluster = fl // the asynchronous calls' stream is the fleet's
	parts.target = func(k api.Key, url, user, password, token string) api.MigrationTarget {
		plain := migrationTarget(k, url, user, password, token)
		if t, ok := fl.MigrationTarget(k, url, user, password, token, plain); ok {
			return t
		}
		return plain
	}
	return parts, nil
}

// tuneGC collects less often unless GOGC says otherwise: a proxy's garbage
// is short-lived (the idle footprint stays near 20 MiB).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
}

// newProvider starts the provider on the Docker engine, with the policies
// as its admission (they need the provider's fleet view, and it needs them)
// and the proxy's transports told when a replica sleeps or goes.
func newProvider(ctx context.Context, o *serveOptions, transports *handlers.Transports) (*provider.Provider, *policy.Policies, error) {
	var engOpts []docker.Option
	if o.initPath != "" {
		engOpts = append(engOpts, docker.WithInit(o.initPath))
	} else if o.initNote != "" {
		slog.Info(o.initNote)
	}
	eng, err := docker.New(engOpts...)
	if err != nil {
		return nil, nil, err
	}
	var policies *policy.Policies
	p, err := provider.New(ctx, o.cfg, eng,
		provider.WithAdmission(func(p *provider.Provider) provider.Admission {
			o.policy.Strategy = p.Config().Strategy
			o.policy.CanCheckpoint = p.CRIU().Available
			policies = policy.New(p.Fleet(), o.policy)
			return policies
		}),
		provider.WithBeforeCheckpoint(transports.DropIdle),
		provider.WithReplicaGone(transports.Forget))
	if err != nil {
		return nil, nil, err
	}
	return p, policies, nil
}

// loadDeclared reads the stack serve was given (none: nothing declared).
func loadDeclared(file string) ([]types.FunctionDeployment, error) {
	if file == "" {
		return nil, nil
	}
	s, err := stack.Load(file, nil)
	if err != nil {
		return nil, err
	}
	for _, w := range s.Warnings {
		slog.Warn(w, "stack", file)
	}
	return s.Deployments("")
}

// credentials makes sure /system/* has basic-auth credentials, generating
// missing ones, or says loudly that it is open (nil: no auth).
func credentials(o *serveOptions) (*handlers.Credentials, error) {
	if !o.basicAuth {
		slog.Warn(fmt.Sprintf("basic auth is off: anyone who reaches port %d can deploy functions", o.port))
		return nil, nil
	}
	created, err := handlers.EnsureCredentials(o.secretMountPath)
	if err != nil {
		return nil, fmt.Errorf("credentials in %s: %w", o.secretMountPath, err)
	}
	if created {
		slog.Info("generated the missing basic-auth credentials", "dir", o.secretMountPath,
			"user", filepath.Join(o.secretMountPath, "basic-auth-user"), "password", filepath.Join(o.secretMountPath, "basic-auth-password"))
	}
	creds, err := handlers.NewCredentials(o.secretMountPath)
	if err != nil {
		return nil, fmt.Errorf("credentials in %s: %w", o.secretMountPath, err)
	}
	slog.Info("basic auth on /system/*", "credentials", o.secretMountPath)
	return creds, nil
}

// infoDoc builds /system/info's document: faas-provider's fields plus the
// engine, CRIU, sleep settings and memory, read at each request.
func infoDoc(p *provider.Provider, pol policy.Config, policies *policy.Policies) func() handlers.InfoDoc {
	cfg := p.Config()
	return func() handlers.InfoDoc {
		return handlers.InfoDoc{
			Provider: types.ProviderInfo{
				Name:          "faas-criu",
				Orchestration: "docker",
				Version:       &types.VersionInfo{Release: Version, SHA: Commit},
			},
			Extra: map[string]any{
				"engine": p.EngineInfo(),
				"criu":   p.CRIU(),
				"sleep": api.SleepInfo{
					Strategy:        cfg.Strategy,
					IdleAfter:       pol.ZeroDuration.String(),
					PauseAfter:      pol.PauseAfter.String(),
					DeepAfter:       pol.DeepAfter.String(),
					RestoreFallback: cfg.RestoreFallback,
					WakeTimeout:     cfg.WakeTimeout.String(),
					Autoscale:       pol.Autoscale,
				},
				"memory": memory(policies),
			},
		}
	}
}

func memory(p *policy.Policies) api.MemoryInfo {
	budget, used := p.Budget()
	return api.MemoryInfo{BudgetBytes: budget, UsedBytes: used}
}

func registerMemoryGauges(p *policy.Policies) {
	prometheus.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "faas_criu", Name: "memory_budget_bytes",
			Help: "Memory budget for running functions (0: none).",
		}, func() float64 { b, _ := p.Budget(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "faas_criu", Name: "memory_used_bytes",
			Help: "Working set of the functions' live containers.",
		}, func() float64 { _, u := p.Budget(); return float64(u) }),
	)
}

// applyStack deploys the declared functions that are missing and updates
// the others (an unchanged function is left as it is, asleep or awake).
// Functions that are not declared are left alone.
func applyStack(ctx context.Context, p *provider.Provider, file string, declared []types.FunctionDeployment) {
	for _, dep := range declared {
		err := p.Update(ctx, dep)
		verb := "updated"
		if provider.IsNotFound(err) {
			err, verb = p.Deploy(ctx, dep), "deployed"
		}
		if err != nil {
			slog.Error("stack: function not applied", "stack", file, "function", dep.Service, "err", err)
			continue
		}
		slog.Info("stack: "+verb, "stack", file, "function", dep.Service) // "updated" includes "already up to date"
	}
}

// migrationTarget is the client for the faas-criu a function migrates to.
func migrationTarget(_ api.Key, url, user, password, token string) api.MigrationTarget {
	var creds *gateway.Credentials
	if user != "" || token != "" {
		creds = &gateway.Credentials{User: user, Password: password, Token: token, Source: "the migration request"}
	}
	return gateway.NewClient(url, creds)
}

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve [flags]",
		Short: "Run the provider",
		Long: `Runs the faas-criu provider: the OpenFaaS provider API, the function proxy,
and the idle, memory, load and backup policies. "faas-criu serve -h" lists
its flags; most also have an environment variable, as OpenFaaS providers do.`,
		Example: `  faas-criu serve
  faas-criu serve --port 8081 --strategy pause-then-checkpoint --memory-budget 1Gi
  faas-criu serve --log-format json --log-level debug`,
		// The provider's flags keep Go's flag syntax and environment
		// defaults: they are parsed by parseServe, not by cobra.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			lo, rest, err := logFlags(args)
			if err != nil {
				return usageError{err}
			}
			if err := setupLogging(lo, cmd.ErrOrStderr()); err != nil {
				return usageError{err}
			}
			return Serve(rest)
		},
	}
}

// logFlags takes --log-format and --log-level (either form: "--x v" or
// "--x=v") out of serve's arguments, with their environment defaults.
func logFlags(args []string) (logOptions, []string, error) {
	env := &config.Env{}
	lo := logOptions{format: env.String("log_format", "text"), level: env.String("log_level", "info")}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var dst *string
		switch {
		case !strings.HasPrefix(a, "-"):
		case name == "log-format":
			dst = &lo.format
		case name == "log-level":
			dst = &lo.level
		}
		if dst == nil {
			rest = append(rest, a)
			continue
		}
		if !hasValue {
			if i+1 >= len(args) {
				return lo, nil, fmt.Errorf("flag needs an argument: %s", a)
			}
			i++
			value = args[i]
		}
		*dst = value
	}
	return lo, rest, nil
}
