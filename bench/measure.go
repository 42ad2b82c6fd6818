package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// measure runs the selected phases. Providers it starts are stopped, and
// their functions and networks removed, by the cleanups it registers.
func (b *bench) measure(ctx context.Context, o options, budget int64, bin string, res *results, cl *cleanups) error {
	b.progress("starting the provider")
	p, err := b.startProvider(ctx, cl, providerOpts{Bin: bin, Network: mainNetwork, Subnet: mainSubnet,
		LogPath: filepath.Join(b.logDir, "provider.log")})
	if err != nil {
		return err
	}
	time.Sleep(time.Second)
	if res.Foot.RSSStart, err = processRSS(p.PID()); err != nil {
		return err
	}

	if o.phases["wake"] || o.phases["overhead"] {
		if res.Wake, err = b.runWake(ctx, p, o.samples, o.wakeSettle, o.inPlace); err != nil {
			return err
		}
		time.Sleep(2 * time.Second)
		res.Foot.IdleFns = len(res.Wake.Fns)
		if res.Foot.RSSIdle, err = processRSS(p.PID()); err != nil {
			return err
		}
		if !o.phases["wake"] {
			res.Wake = nil
		}
	}
	if o.phases["floor"] {
		if res.Floor, err = b.runFloor(ctx, p.Network, o.floorSamples); err != nil {
			return err
		}
	}
	if o.phases["overhead"] {
		oo := overheadOpts{Conns: []int{1, 50}, Run: o.loadRun, Rounds: o.rounds}
		if o.baseline != "" {
			if oo.BaselineURL, oo.BaselinePID, err = b.startBaseline(ctx, cl, o.baseline); err != nil {
				return err
			}
		}
		if res.Overhead, err = b.runOverhead(ctx, p, "wake-trivial-checkpoint", oo); err != nil {
			return err
		}
		res.Foot.LoadRSS = res.Overhead.LoadRSS
		time.Sleep(2 * time.Second)
		if res.Foot.RSSAfterLoad, err = processRSS(p.PID()); err != nil {
			return err
		}
	}
	b.track(ctx)
	if err := p.DeleteAll(ctx); err != nil {
		return err
	}
	if o.phases["fanout"] {
		if res.Fanout, err = b.runFanout(ctx, p, o.fanout, 3, o.inPlace); err != nil {
			return err
		}
		b.track(ctx)
		if err := p.DeleteAll(ctx); err != nil {
			return err
		}
	}
	if o.phases["tiers"] {
		if res.Tiers, err = b.runTiers(ctx, p, o.tierFns, o.tierRounds, o.tierSamples, o.tierInPlaceFns, o.inPlace); err != nil {
			return err
		}
		b.track(ctx)
		if err := p.DeleteAll(ctx); err != nil {
			return err
		}
	}
	if o.phases["density"] {
		d := &densityResult{densityOpts: densityOpts{Budget: budget, StateMB: 20, Factor: o.factor, MaxPause: o.maxPause, Rounds: o.densityRounds}}
		b.progress("density: pause only")
		if err := b.runPauseDensity(ctx, p, d); err != nil {
			return err
		}
		if d.PauseOK == 0 {
			return errors.New("density: not even one paused function fits in the budget")
		}
		b.progress("density: hibernation, %d functions", d.Factor*d.PauseOK)
		dp, err := b.startProvider(ctx, cl, providerOpts{Bin: bin, Network: densityNetwork, Subnet: densitySubnet,
			LogPath: filepath.Join(b.logDir, "provider-density.log"),
			Extra:   []string{"--memory-budget", fmt.Sprint(budget), "--policy-tick", "200ms"}})
		if err != nil {
			return err
		}
		if err := b.runHibernateDensity(ctx, dp, d, d.Factor*d.PauseOK); err != nil {
			return err
		}
		res.Density = d
	}
	if o.phases["migration"] {
		if res.Migration, err = b.runMigration(ctx, cl, bin, o.migrations); err != nil {
			return err
		}
	}
	return nil
}

// startProvider starts a provider and registers its removal: its functions
// through the API, then the process, then any container left and its
// network.
func (b *bench) startProvider(ctx context.Context, cl *cleanups, o providerOpts) (*Provider, error) {
	p, err := StartProvider(ctx, o)
	if err != nil {
		_ = removeLeftovers(context.Background(), b.docker, o.Network)
		return nil, err
	}
	b.providers = append(b.providers, p.PID())
	cl.push(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		b.track(ctx)
		derr := p.DeleteAll(ctx)
		p.Stop()
		return errors.Join(derr, removeLeftovers(ctx, b.docker, o.Network))
	})
	return p, nil
}

// DeleteAll deletes every function of the provider.
func (p *Provider) DeleteAll(ctx context.Context) error {
	code, out, err := p.call(ctx, http.MethodGet, "/system/functions", nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("list functions: status %d", code)
	}
	var list []types.FunctionStatus
	if err := json.Unmarshal(out, &list); err != nil {
		return fmt.Errorf("list functions: %w", err)
	}
	var errs []error
	for _, f := range list {
		if err := p.Delete(ctx, f.Name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Network of the overhead phase's baseline provider.
var (
	baselineNetwork = "fcb-bench-c"
	baselineSubnet  = "10.77.2.0/24"
)

// startBaseline starts another build of the provider with the overhead
// phase's function, awake, and returns the function's invoke URL.
func (b *bench) startBaseline(ctx context.Context, cl *cleanups, bin string) (string, int, error) {
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(b.root, bin)
	}
	_ = removeLeftovers(ctx, b.docker, baselineNetwork)
	p, err := b.startProvider(ctx, cl, providerOpts{Bin: bin, Network: baselineNetwork, Subnet: baselineSubnet,
		LogPath: filepath.Join(b.logDir, "provider-baseline.log")})
	if err != nil {
		return "", 0, fmt.Errorf("baseline provider: %w", err)
	}
	const name = "overhead-baseline"
	labels := map[string]string{benchLabel: "overhead", "com.openfaas.criu.strategy": "checkpoint"}
	if err := p.Deploy(ctx, types.FunctionDeployment{Service: name, Image: fixtureImage, Labels: &labels}); err != nil {
		return "", 0, err
	}
	if err := p.WaitAvailable(ctx, name, 1, time.Minute); err != nil {
		return "", 0, err
	}
	return p.URL + "/function/" + name + "/", p.PID(), nil
}
