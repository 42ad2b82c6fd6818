// Command bench measures faas-criu against its alternatives on this machine
// and writes a report: wake latency from each kind of sleep, suspend
// latency, idle memory, density under a memory budget, invoke overhead and
// the provider's own footprint. `make bench` runs it after `make build`:
//
//	go run ./bench -out bench/REPORT.md
//
// It starts its own providers from bin/faas-criu on their own networks and
// removes everything it created when it ends, also on failure.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/client"

	"github.com/faas-criu/faas-criu/provider"
)

// Networks and subnets of the benchmark's providers (renamed by
// -net-prefix and -subnet-prefix: see networks.go).
var (
	mainNetwork    = "fcb-bench"
	mainSubnet     = "10.77.0.0/24"
	densityNetwork = "fcb-bench-d"
	densitySubnet  = "10.77.1.0/24"
)

type options struct {
	out     string
	bin     string
	samples int
	// wakeSettle starts each timed wake once the previous one has finished.
	wakeSettle bool
	// floorSamples sizes the floor phase (CRIU alone, Docker alone).
	floorSamples int
	phases       map[string]bool
	budget       string
	factor       int
	loadRun      time.Duration
	rounds       int
	maxPause     int
	// densityRounds: calls of every hibernated function, each checked.
	densityRounds int
	// migrations is how many times each function is moved.
	migrations int
	// fanout is how many functions the fan-out phase wakes at once.
	fanout int
	// tierFns, tierRounds and tierSamples size the sleep tiers phase;
	// tierInPlaceFns its in-place tier's memory measurement.
	tierFns, tierRounds, tierSamples, tierInPlaceFns int
	// inPlace measures the in-place tier (label com.openfaas.criu.in-place)
	// beside the others in the wake, suspend, fan-out and tiers phases.
	inPlace bool
	// scale runs only the scale run (make bench-scale), with these sizes
	// and deploys at a time, and splices its section into the report.
	scale        bool
	scaleSizes   []int
	scaleWorkers int
	// baseline is another provider build for the overhead phase's
	// before/after comparison.
	baseline string
	// relayTo makes this process the invoke comparison's relay (internal).
	relayTo string
}

func parseFlags() (options, error) {
	var o options
	var phases string
	flag.StringVar(&o.out, "out", "bench/REPORT.md", "where to write the report")
	flag.StringVar(&o.bin, "provider", "bin/faas-criu", "the provider binary (make build)")
	flag.IntVar(&o.samples, "samples", 20, "wake samples per function")
	flag.BoolVar(&o.wakeSettle, "wake-settle", false, "wake phase: start each timed wake once the provider has finished the previous one (its record written after Docker's start call, its checkpoint deleted), plus 300 ms")
	flag.IntVar(&o.floorSamples, "floor-samples", 3, "dumps and restores of each kind under CRIU alone and in Docker alone (floor phase)")
	flag.StringVar(&phases, "phases", "wake,floor,overhead,fanout,tiers,density,migration", "phases to run")
	flag.IntVar(&o.tierFns, "tier-fns", 60, "functions whose box memory the tiers phase measures (the noise of MemAvailable, per function, shrinks with their number)")
	flag.IntVar(&o.tierRounds, "tier-rounds", 2, "alternations of the two tiers in the memory measurement")
	flag.IntVar(&o.tierSamples, "tier-samples", 5, "wakes from each tier")
	flag.IntVar(&o.tierInPlaceFns, "tier-in-place-fns", 20, "functions whose box memory hibernated in place the tiers phase measures (after the other tiers' functions are deleted)")
	flag.BoolVar(&o.inPlace, "in-place", true, "also measure hibernation in place (functions deployed with com.openfaas.criu.in-place=true) in the wake, suspend, fan-out and tiers phases; a provider that refuses the label leaves those rows not measured")
	flag.IntVar(&o.fanout, "fanout", 20, "functions woken at once in the fan-out phase")
	flag.IntVar(&o.migrations, "migrations", 3, "moves of each function in the migration phase")
	flag.StringVar(&o.budget, "budget", "200Mi", "memory budget of the density comparison")
	flag.IntVar(&o.factor, "density-factor", 15, "functions deployed with hibernation, as a multiple of those that fit paused (issue 13's target is 10x at box level; the functions awake at the end fill the budget as the paused ones did, so the run shows at most about this factor less what its hibernated functions cost: 11 capped it at 9.5x)")
	flag.IntVar(&o.densityRounds, "density-rounds", 1, "rounds of calls over every function of the hibernation density run")
	flag.IntVar(&o.maxPause, "max-paused", 40, "stop the pause-only density count here")
	flag.DurationVar(&o.loadRun, "load-run", 5*time.Second, "length of each invoke overhead run")
	flag.IntVar(&o.rounds, "load-rounds", 3, "invoke overhead rounds (provider, relay and direct at each connection count)")
	flag.StringVar(&o.baseline, "baseline-provider", "", "another build of the provider, for before/after in one run: the overhead phase runs the invoke load through it too, the scale run times its restarts too")
	var sizes string
	flag.BoolVar(&o.scale, "scale", false, "run only the scale run (make bench-scale) and put its section into -out, keeping the rest of the report")
	flag.StringVar(&sizes, "scale-sizes", "10,100,1000", "functions deployed at each step of the scale run")
	flag.IntVar(&o.scaleWorkers, "scale-workers", 6, "deploys at a time in the scale run")
	flag.StringVar(&o.relayTo, "relay-to", "", "internal: run as the invoke comparison's TCP relay to this address")
	netPrefix := flag.String("net-prefix", envOr("FAAS_CRIU_BENCH_NET_PREFIX", defaultNetPrefix), "prefix of the benchmark's Docker network names (env FAAS_CRIU_BENCH_NET_PREFIX), so that two runs on one machine do not collide")
	subnetPrefix := flag.String("subnet-prefix", envOr("FAAS_CRIU_BENCH_SUBNET_PREFIX", defaultSubnetPrefix), "first two octets of the benchmark's subnets (env FAAS_CRIU_BENCH_SUBNET_PREFIX)")
	flag.Parse()
	if err := renameNetworks(*netPrefix, *subnetPrefix); err != nil {
		return o, err
	}
	var err error
	if o.scaleSizes, err = parseSizes(sizes); err != nil {
		return o, fmt.Errorf("-scale-sizes: %w", err)
	}
	if o.scaleWorkers < 1 {
		return o, errors.New("-scale-workers must be at least 1")
	}
	o.phases = map[string]bool{}
	for _, p := range strings.Split(phases, ",") {
		switch p = strings.TrimSpace(p); p {
		case "wake", "floor", "overhead", "fanout", "tiers", "density", "migration":
			o.phases[p] = true
		case "":
		default:
			return o, fmt.Errorf("-phases: unknown phase %q (wake, floor, overhead, fanout, tiers, density, migration)", p)
		}
	}
	if o.samples < 1 || o.factor < 1 || o.rounds < 1 || o.fanout < 1 || o.tierFns < 1 || o.tierRounds < 1 || o.tierSamples < 1 || o.tierInPlaceFns < 1 || o.floorSamples < 1 || o.densityRounds < 1 {
		return o, errors.New("-samples, -density-factor, -load-rounds, -fanout and -tier-* must be at least 1")
	}
	return o, nil
}

// bench holds what every phase needs.
type bench struct {
	docker     *client.Client
	dockerRoot string
	root       string // the repository
	criuDir    string // CRIU's work directory (stats-restore)
	logDir     string // bench/out: the providers' logs
	started    time.Time
	ids        idSet // every function container seen, for the leftovers
	// providers are the PIDs of the providers started, whose memory box
	// samples count as the measurement's own (procmem.go).
	providers []int
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(b.started).Seconds(), fmt.Sprintf(format, args...))
}

func main() {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if o.relayTo != "" {
		fmt.Fprintln(os.Stderr, "bench:", serveRelay(o.relayTo))
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// findRoot returns the repository root: the nearest directory up from here
// with a go.mod.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run the benchmark inside the repository (no go.mod found)")
		}
		dir = parent
	}
}

func run(ctx context.Context, o options) (err error) {
	b := &bench{started: time.Now(), criuDir: criuWorkDir()}
	if b.root, err = findRoot(); err != nil {
		return err
	}
	bin := o.bin
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(b.root, bin)
	}
	binInfo, err := os.Stat(bin)
	if err != nil {
		return fmt.Errorf("provider binary: %w (run make build first)", err)
	}
	budget, err := provider.ParseMemory(o.budget)
	if err != nil || budget <= 0 {
		return fmt.Errorf("-budget %q: want a positive quantity such as 200Mi", o.budget)
	}
	b.logDir = filepath.Join(b.root, "bench", "out")
	if err := os.MkdirAll(b.logDir, 0o755); err != nil {
		return fmt.Errorf("log directory: %w", err)
	}
	if b.docker, err = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation()); err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer b.docker.Close()
	info, err := b.docker.Info(ctx)
	if err != nil {
		return fmt.Errorf("the Docker engine does not answer (%w): run make setup", err)
	}
	b.dockerRoot = info.DockerRootDir
	if err := removeLeftovers(ctx, b.docker, mainNetwork, densityNetwork); err != nil {
		return fmt.Errorf("leftovers of an earlier run: %w", err)
	}

	var cl cleanups
	cl.push(b.removeRestoreLeftovers) // runs last, once every container is gone
	defer func() {
		b.progress("cleaning up")
		if cerr := cl.run(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	b.progress("building the fixture image")
	cl.push(func() error { return removeFixture(context.Background(), b.docker) })
	if err := buildFixture(ctx, b.docker, b.root); err != nil {
		return err
	}
	if o.scale {
		return b.scaleOnly(ctx, o, bin, &cl)
	}
	rep := &Report{Machine: collectMachine(ctx, b.docker, bin)}
	loadStart := loadAvg()
	res := &results{Foot: &footprint{Binary: binInfo.Size()}}
	if err := b.measure(ctx, o, budget, bin, res, &cl); err != nil {
		return err
	}

	b.track(ctx)
	dirs, leaked := b.restoreLeftovers()
	res.Leftovers, res.LeftoverBytes = len(dirs), leaked
	rep.Elapsed = time.Since(b.started)
	rep.Load = loadStart + " → " + loadAvg()
	rep.Summary = res.summary()
	kept, hasScale := keptSection(o.out, scaleTitle)
	if hasScale {
		res.Scale = parseScaleFigures(kept.Body)
	}
	rep.Targets = res.targets()
	addSections(rep, res)
	if hasScale {
		// The scale run's curve, from its own (long) run: kept, before
		// "What was tried".
		last := len(rep.Sections) - 1
		rep.Sections = append(rep.Sections[:last], kept, rep.Sections[last])
	}
	if err := rep.Write(o.out); err != nil {
		return err
	}
	fmt.Println(rep.Summary.Markdown())
	fmt.Println(targetsTable(rep.Targets).Markdown())
	fmt.Printf("report: %s (%s)\n", o.out, rep.Elapsed.Round(time.Second))
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d wrong answers (state lost or calls failed): see %s", len(rep.Failures), o.out)
	}
	return nil
}

// addSections puts each measurement's part in the report, in order.
func addSections(rep *Report, res *results) {
	if w := res.Wake; w != nil {
		rep.Add(w.WakeSection())
		rep.Add(w.SuspendSection())
		rep.Add(w.MemorySection())
		rep.Failures = append(rep.Failures, w.Failures...)
	} else {
		rep.Add(notMeasured("1-3. Wake, suspend, memory", "phase wake not selected"))
	}
	if d := res.Density; d != nil {
		rep.Add(d.Section())
		rep.Failures = append(rep.Failures, d.Failures...)
	} else {
		rep.Add(notMeasured("4. Density", "phase density not selected"))
	}
	if o := res.Overhead; o != nil {
		rep.Add(o.Section())
	} else {
		rep.Add(notMeasured("5. Invoke overhead", "phase overhead not selected"))
	}
	rep.Add(res.Foot.Section())
	rep.Add(leftoverSection(res.Leftovers, res.LeftoverBytes))
	if m := res.Migration; m != nil {
		rep.Add(m.Section())
		rep.Failures = append(rep.Failures, m.Failures...)
	} else {
		rep.Add(notMeasured("7. Migration", "phase migration not selected"))
	}
	if f := res.Fanout; f != nil {
		rep.Add(f.Section())
		rep.Failures = append(rep.Failures, f.Failures...)
		if f.InPlace != nil {
			rep.Failures = append(rep.Failures, f.InPlace.Failures...)
		}
	} else {
		rep.Add(notMeasured("8. Many functions woken at once", "phase fanout not selected"))
	}
	if f := res.Floor; f != nil {
		rep.Add(f.Section())
		rep.Failures = append(rep.Failures, f.allFailures()...)
	} else {
		rep.Add(notMeasured(floorTitle, "phase floor not selected"))
	}
	if t := res.Tiers; t != nil {
		rep.Add(t.Section())
		rep.Failures = append(rep.Failures, t.Failures...)
	} else {
		rep.Add(notMeasured("9. Sleep tiers: box memory and wake", "phase tiers not selected"))
	}
	if w := res.Wake; w != nil {
		rep.Add(w.BreakdownSection(findingsNotes))
	}
	rep.Add(Section{Title: "What was tried", Body: triedNotes})
}

// scaleOnly runs the scale run and writes its section into the report at
// o.out, in place of the previous one; the rest of the report is kept.
func (b *bench) scaleOnly(ctx context.Context, o options, bin string, cl *cleanups) error {
	baseline := o.baseline
	if baseline != "" && !filepath.IsAbs(baseline) {
		baseline = filepath.Join(b.root, baseline)
	}
	res, err := b.runScale(ctx, cl, bin, baseline, o.scaleSizes, o.scaleWorkers)
	if err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("scale run interrupted (%s): %s left as it was", res.Err, o.out)
	}
	sec := res.Section()
	old, err := os.ReadFile(o.out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("read report: %w", err)
	}
	if err := os.WriteFile(o.out, []byte(spliceSection(string(old), sec)), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	fmt.Printf("## %s\n\n%s\nreport: %s (%s)\n", sec.Title, sec.Body, o.out, time.Since(b.started).Round(time.Second))
	if len(res.Failures) > 0 || res.Err != "" {
		return fmt.Errorf("scale run: %s %s", res.Err, strings.Join(res.Failures, "; "))
	}
	return nil
}
