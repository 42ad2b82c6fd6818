package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
)

// densityOpts: the memory budget, the state each function holds, and how
// many times more functions are deployed with hibernation than fit paused.
type densityOpts struct {
	Budget   int64
	StateMB  int
	Factor   int // hibernation: Factor x the paused count
	MaxPause int // a safety stop for the pause-only count
	Rounds   int // calls of every hibernated function
}

// densityResult compares how many functions stay invocable under one
// memory budget with pause only and with hibernation.
type densityResult struct {
	densityOpts
	PausePerFn    []int64 // working set of each paused function
	PauseFit      int     // paused functions that fit in the budget
	PauseUsed     int64   // their memory
	PauseOK       int     // of those, invocable with their state afterwards
	HibDeployed   int
	HibOK         int             // invocable with their state in both rounds
	HibUsedDeploy []int64         // /system/info usedBytes, sampled while deploying
	HibUsedRounds []int64         // and while calling each in turn
	HibWake       []time.Duration // time to first byte of the round calls
	HibAsleepEnd  int             // hibernated at the end
	HibDeepEnd    int             // of those, in the deep tier when the box was read
	// Box level (issue 13): the box before and after each run (pause only:
	// every paused function deployed, PauseDeployed, the one over the
	// budget included; hibernation: after the calls), so that the shims,
	// sandboxes and kernel state of each function count.
	PauseBase, PauseAfter, HibBase, HibAfter boxSample
	PauseDeployed                            int
	Failures                                 []string
}

// boxCosts is what a run's functions cost the box: MemAvailable lost as
// read; the same with the other processes' change taken out (procmem.go),
// which decides; and the accounted figure (their cgroups and shims, the
// kernel's counters, the engine's and providers' growth).
type boxCosts struct{ Raw, Corrected, Accounted int64 }

func boxCost(base, after boxSample) boxCosts {
	kern := after.kernel() - base.kernel()
	procs := (after.Engine + after.Provider) - (base.Engine + base.Provider)
	return boxCosts{
		Raw:       base.MemAvailable - after.MemAvailable,
		Corrected: base.corrected() - after.corrected(),
		Accounted: after.Cgroups + after.OwnShimPSS + max(kern, 0) + max(procs, 0),
	}
}

// boxRatios are the density at box level, by MemAvailable (as read, and
// corrected) and accounted: the hibernation run kept HibOK functions in
// what it cost the box; in that much, paused functions at their measured
// box cost would number cost/(pause cost/PauseDeployed).
func (d *densityResult) boxRatios() (raw, corrected, accounted float64) {
	if d.PauseDeployed == 0 {
		return 0, 0, 0
	}
	p, h := boxCost(d.PauseBase, d.PauseAfter), boxCost(d.HibBase, d.HibAfter)
	ratio := func(pause, hib int64) float64 {
		if pause <= 0 || hib <= 0 {
			return 0 // noise: the box gained memory
		}
		return Ratio(float64(d.HibOK), float64(hib)/(float64(pause)/float64(d.PauseDeployed)))
	}
	return ratio(p.Raw, h.Raw), ratio(p.Corrected, h.Corrected), ratio(p.Accounted, h.Accounted)
}

// hibernatedCost is what one hibernated function of the hibernation run
// cost the box (corrected MemAvailable): the run's cost less that of the
// functions awake at the end, each counted as a paused one (same image,
// state, cgroup and shims).
func (d *densityResult) hibernatedCost() int64 {
	if d.PauseDeployed == 0 || d.HibAsleepEnd == 0 {
		return 0
	}
	awake := int64(d.HibDeployed - d.HibAsleepEnd)
	pause := boxCost(d.PauseBase, d.PauseAfter).Corrected / int64(d.PauseDeployed)
	return (boxCost(d.HibBase, d.HibAfter).Corrected - awake*pause) / int64(d.HibAsleepEnd)
}

// ceiling is the largest box ratio the hibernation run could show: its
// functions against the ones awake at the end alone (those fill the
// budget), as if the hibernated ones cost nothing.
func (d *densityResult) ceiling() float64 {
	return Ratio(float64(d.HibOK), float64(d.HibDeployed-d.HibAsleepEnd))
}

func densityDeployment(name, strategy string, stateMB int) types.FunctionDeployment {
	labels := map[string]string{api.LabelStrategy: strategy, benchLabel: "density"}
	if strategy == api.StrategyCheckpoint {
		// The deepest tier, as issue 13's density target asks: hibernated
		// functions keep no sandbox (no shim) after a second.
		labels[api.LabelDeepAfter] = "1s"
	}
	return types.FunctionDeployment{
		Service: name,
		Image:   fixtureImage,
		EnvVars: map[string]string{"STATE_MB": strconv.Itoa(stateMB)},
		Labels:  &labels,
	}
}

// runPauseDensity deploys functions with the pause strategy on p (a
// provider without a budget) and pauses each, until their memory exceeds
// the budget; those that fitted are then called once more to check they
// kept their state. They are deleted at the end.
func (b *bench) runPauseDensity(ctx context.Context, p *Provider, res *densityResult) error {
	var names []string
	defer func() {
		b.track(context.WithoutCancel(ctx))
		for _, n := range names {
			if err := p.Delete(context.WithoutCancel(ctx), n); err != nil {
				b.progress("density: %v", err)
			}
		}
	}()
	var err error
	if res.PauseBase, err = b.sampleBox(ctx, p, "dens-pause-"); err != nil {
		return err
	}
	for i := 1; i <= res.MaxPause; i++ {
		name := fmt.Sprintf("dens-pause-%d", i)
		names = append(names, name)
		if err := b.deployCounted(ctx, p, densityDeployment(name, api.StrategyPause, res.StateMB)); err != nil {
			return err
		}
		if _, err := p.Scale(ctx, name, 0); err != nil {
			return fmt.Errorf("pause %s: %w", name, err)
		}
		id, err := b.containerOf(ctx, p, name)
		if err != nil {
			return err
		}
		ws, _, err := workingSet(id)
		if err != nil {
			return err
		}
		res.PausePerFn = append(res.PausePerFn, ws)
		if res.PauseUsed+ws > res.Budget {
			break
		}
		res.PauseUsed += ws
		res.PauseFit++
		b.progress("density: %d paused, %s of %s", res.PauseFit, fmtBytes(res.PauseUsed), fmtBytes(res.Budget))
	}
	if res.PauseAfter, err = b.sampleBox(ctx, p, "dens-pause-"); err != nil {
		return err
	}
	res.PauseDeployed = len(names)
	for i := 1; i <= res.PauseFit; i++ {
		name := fmt.Sprintf("dens-pause-%d", i)
		if b.invokeCount(ctx, p, name, 2, &res.Failures, nil) {
			res.PauseOK++
		}
	}
	return nil
}

// deployCounted deploys a function, waits until it is ready and checks its
// first /count.
func (b *bench) deployCounted(ctx context.Context, p *Provider, dep types.FunctionDeployment) error {
	if err := p.Deploy(ctx, dep); err != nil {
		return fmt.Errorf("deploy %s: %w", dep.Service, err)
	}
	return b.firstCount(ctx, p, dep.Service)
}

// firstCount waits until a deployed function is ready and checks its first
// /count.
func (b *bench) firstCount(ctx context.Context, p *Provider, name string) error {
	if err := p.WaitAvailable(ctx, name, 1, 60*time.Second); err != nil {
		return fmt.Errorf("deploy %s: %w", name, err)
	}
	body, _, err := p.Invoke(ctx, name, "/count")
	if err != nil {
		return fmt.Errorf("first call of %s: %w", name, err)
	}
	if body != "1" {
		return fmt.Errorf("first call of %s: /count answered %q, want 1", name, body)
	}
	return nil
}

// invokeCount calls /count and checks the answer; a wrong or failed answer
// is recorded in failures.
func (b *bench) invokeCount(ctx context.Context, p *Provider, name string, want int, failures *[]string, ttfb *[]time.Duration) bool {
	body, d, err := p.Invoke(ctx, name, "/count")
	if err != nil {
		*failures = append(*failures, err.Error())
		return false
	}
	if ttfb != nil {
		*ttfb = append(*ttfb, d)
	}
	if body != strconv.Itoa(want) {
		*failures = append(*failures, fmt.Sprintf("%s: /count answered %q, want %d", name, body, want))
		return false
	}
	return true
}

// runHibernateDensity deploys Factor x PauseFit functions (checkpoint
// strategy) on p, a provider started with the memory budget, then calls
// each in turn twice, checking every count, while sampling the memory the
// provider says functions use.
func (b *bench) runHibernateDensity(ctx context.Context, p *Provider, res *densityResult, n int) error {
	var names []string
	defer func() {
		b.track(context.WithoutCancel(ctx))
		for _, name := range names {
			if err := p.Delete(context.WithoutCancel(ctx), name); err != nil {
				b.progress("density: %v", err)
			}
		}
	}()
	var err error
	if res.HibBase, err = b.sampleBox(ctx, p, "dens-hib-"); err != nil {
		return err
	}
	stop := b.sampleUsed(ctx, p, &res.HibUsedDeploy)
	defer func() { stop() }()
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("dens-hib-%d", i)
		names = append(names, name)
		if err := b.deployCounted(ctx, p, densityDeployment(name, api.StrategyCheckpoint, res.StateMB)); err != nil {
			return err
		}
		res.HibDeployed++
		if i%10 == 0 {
			b.progress("density: %d deployed under the budget", i)
		}
	}
	stop()
	stop = b.sampleUsed(ctx, p, &res.HibUsedRounds)
	ok := make([]bool, n)
	for i := range ok {
		ok[i] = true
	}
	for round := 2; round <= 1+res.Rounds; round++ {
		b.progress("density: round %d over %d functions", round-1, n)
		for i, name := range names {
			if !b.invokeCount(ctx, p, name, round, &res.Failures, &res.HibWake) {
				ok[i] = false
			}
		}
	}
	for _, v := range ok {
		if v {
			res.HibOK++
		}
	}
	stop()
	// The box is read once every hibernated function reached the deep
	// tier (deep-after=1s; the policy ticks every 200 ms).
	for _, name := range names {
		if st, err := p.Annotation(ctx, name, "com.openfaas.criu.state"); err == nil && st == "hibernated" {
			res.HibAsleepEnd++
			if waitAnnotation(ctx, p, name, "com.openfaas.criu.tier", "deep", 30*time.Second) == nil {
				res.HibDeepEnd++
			}
		}
	}
	if res.HibAfter, err = b.sampleBox(ctx, p, "dens-hib-"); err != nil {
		return err
	}
	return nil
}

// sampleUsed polls /system/info every 100 ms until the returned stop is
// called.
func (b *bench) sampleUsed(ctx context.Context, p *Provider, out *[]int64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if m, err := p.Memory(ctx); err == nil {
					mu.Lock()
					*out = append(*out, m.UsedBytes)
					mu.Unlock()
				}
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}
