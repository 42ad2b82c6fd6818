package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
)

// fanoutResult is the wake of many different hibernated functions at the
// same moment (issue 13: one event that fans out to sleeping functions).
type fanoutResult struct {
	N      int
	Rounds [][]time.Duration // per round: each function's time to its answer, sorted
	Busy   []float64         // per round: share of the CPUs busy during the wakes
	// Per round, CPU time per wake over the wakes: the provider's own, and
	// the whole machine's (engine, CRIU and the functions included, and
	// other work on a shared machine). Twenty wakes on two cores are CPU
	// bound: these say whose time it was (bench/tried.md 31).
	ProviderCPU, MachineCPU []time.Duration
	Cores                   int
	Failures                []string
	// InPlace is the same measurement over functions hibernated in place
	// (label com.openfaas.criu.in-place=true), its rounds alternated with
	// these; nil when not measured, InPlaceWhy saying why.
	InPlace    *fanoutResult
	InPlaceWhy string
}

// last is the median over rounds of the last function's answer.
func (f *fanoutResult) last() time.Duration {
	var ls []time.Duration
	for _, r := range f.Rounds {
		ls = append(ls, r[len(r)-1])
	}
	return DurMedian(ls)
}

// inPlaceFig is the in-place fan-out's last answer, or why the run has
// none.
func (f *fanoutResult) inPlaceFig() tierFig {
	switch ip := f.InPlace; {
	case ip == nil:
		return tierFig{Why: orNotMeasured(f.InPlaceWhy)}
	case len(ip.Failures) > 0:
		return tierFig{Why: fmt.Sprintf("failed in this run (%d wrong answers or errors: see Failures)", len(ip.Failures))}
	case len(ip.Rounds) == 0:
		return tierFig{Why: "not measured (no round)"}
	}
	return tierFig{Has: true, D: f.InPlace.last()}
}

// fanoutSet is one set of functions of the fan-out, with their counts.
type fanoutSet struct {
	names   []string
	counts  []int
	inPlace bool
	res     *fanoutResult
	// deploy and spent are the phase's time on the set: what each set
	// adds to the run.
	deploy, spent time.Duration
}

// runFanout deploys n trivial functions, and with inPlace n more deployed
// with the in-place label; each round hibernates a set and then calls every
// one of it at the same moment, the sets alternating round by round. The
// in-place set's errors are its failures (the targets then fall back to the
// engine's checkpoint) and end its rounds, not the phase.
func (b *bench) runFanout(ctx context.Context, p *Provider, n, rounds int, inPlace bool) (*fanoutResult, error) {
	cp, err := b.deployFanout(ctx, p, "fanout-", n, false)
	if err != nil {
		return nil, err
	}
	sets := []*fanoutSet{cp}
	if !inPlace {
		cp.res.InPlaceWhy = "not measured (-in-place=false)"
	} else if ip, err := b.deployFanout(ctx, p, "fanout-ip-", n, true); err != nil {
		cp.res.InPlaceWhy = "not measured (" + err.Error() + ")"
	} else {
		cp.res.InPlace = ip.res
		sets = append(sets, ip)
	}
	for round := range rounds {
		for _, s := range sets {
			if s.inPlace && len(s.res.Failures) > 0 {
				continue
			}
			b.progress("fan-out: round %d of %d, %d functions (in place: %v)", round+1, rounds, n, s.inPlace)
			start := time.Now()
			err := b.fanoutRound(ctx, p, s)
			s.spent += time.Since(start)
			if err != nil && !s.inPlace {
				return nil, err
			}
			if err != nil {
				s.res.Failures = append(s.res.Failures, "fan-out in place: "+err.Error())
			}
		}
	}
	for _, s := range sets {
		b.progress("fan-out: the set hibernated in place=%v took %s (deploy %s, rounds %s)", s.inPlace, (s.deploy + s.spent).Round(100*time.Millisecond),
			s.deploy.Round(100*time.Millisecond), s.spent.Round(100*time.Millisecond))
	}
	return cp.res, nil
}

// deployFanout deploys n trivial functions named prefix + index and calls
// each once.
func (b *bench) deployFanout(ctx context.Context, p *Provider, prefix string, n int, inPlace bool) (*fanoutSet, error) {
	start := time.Now()
	s := &fanoutSet{names: make([]string, n), counts: make([]int, n), inPlace: inPlace, res: &fanoutResult{N: n, Cores: runtime.NumCPU()}}
	defer func() { s.deploy = time.Since(start) }()
	for i := range s.names {
		s.names[i] = fmt.Sprintf("%s%02d", prefix, i)
		labels := map[string]string{api.LabelStrategy: api.StrategyCheckpoint, benchLabel: "fanout"}
		if inPlace {
			inPlaceLabels(labels)
		}
		dep := types.FunctionDeployment{Service: s.names[i], Image: fixtureImage, Labels: &labels}
		if err := p.Deploy(ctx, dep); err != nil {
			return nil, fmt.Errorf("deploy %s: %w", s.names[i], err)
		}
	}
	for _, name := range s.names {
		if err := p.WaitAvailable(ctx, name, 1, time.Minute); err != nil {
			return nil, err
		}
	}
	for i, name := range s.names {
		body, _, err := p.Invoke(ctx, name, "/count")
		if err != nil {
			return nil, err
		}
		if s.counts[i], err = strconv.Atoi(body); err != nil {
			return nil, fmt.Errorf("fan-out: %s /count: %q", name, body)
		}
	}
	return s, nil
}

// fanoutRound hibernates every function of the set (in place: checked to
// be so), then calls all at the same moment and records the answers.
func (b *bench) fanoutRound(ctx context.Context, p *Provider, s *fanoutSet) error {
	for _, name := range s.names {
		if _, err := p.Scale(ctx, name, 0); err != nil {
			return err
		}
		if err := waitAnnotation(ctx, p, name, "com.openfaas.criu.state", "hibernated", time.Minute); err != nil {
			return err
		}
		if s.inPlace {
			if err := waitAnnotation(ctx, p, name, annHibernation, hibInPlace, 5*time.Second); err != nil {
				return err
			}
		}
	}
	time.Sleep(time.Second)
	cpu0, _ := readCPU()
	prov0, _ := processCPU(p.PID())
	start := time.Now()
	n := len(s.names)
	took := make([]time.Duration, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, name := range s.names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _, err := p.Invoke(ctx, name, "/count")
			took[i] = time.Since(start)
			if err == nil && body != strconv.Itoa(s.counts[i]+1) {
				err = fmt.Errorf("%s /count after the wake: %q, want %d (state lost)", name, body, s.counts[i]+1)
			}
			s.counts[i]++
			errs[i] = err
		}()
	}
	wg.Wait()
	cpu1, _ := readCPU()
	prov1, _ := processCPU(p.PID())
	res := s.res
	res.ProviderCPU = append(res.ProviderCPU, (prov1-prov0)/time.Duration(n))
	res.MachineCPU = append(res.MachineCPU, cpu1.busyTimeSince(cpu0)/time.Duration(n))
	for _, err := range errs {
		if err != nil {
			res.Failures = append(res.Failures, "fan-out: "+err.Error())
		}
	}
	slices.Sort(took)
	res.Rounds = append(res.Rounds, took)
	res.Busy = append(res.Busy, cpu1.busySince(cpu0))
	return nil
}

func waitAnnotation(ctx context.Context, p *Provider, name, key, want string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got, err := p.Annotation(ctx, name, key)
		if err == nil && got == want {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(fmt.Errorf("%s: %s is %q, want %q", name, key, got, want), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// cpuTimes are the machine's CPU counters from /proc/stat (all cores).
type cpuTimes struct{ total, idle uint64 }

func readCPU() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	var c cpuTimes
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		c.total += v
		if i == 3 || i == 4 { // idle, iowait
			c.idle += v
		}
	}
	return c, nil
}

// busyTimeSince is the CPU time all cores spent busy since o (/proc/stat
// counts in ticks of 10 ms).
func (c cpuTimes) busyTimeSince(o cpuTimes) time.Duration {
	if c.total-c.idle <= o.total-o.idle {
		return 0
	}
	return time.Duration((c.total-c.idle)-(o.total-o.idle)) * 10 * time.Millisecond
}

func (c cpuTimes) busySince(o cpuTimes) float64 {
	if c.total <= o.total {
		return 0
	}
	return 1 - float64(c.idle-o.idle)/float64(c.total-o.total)
}

// Section reports the fan-out, the engine's checkpoint and in place.
func (f *fanoutResult) Section() Section {
	t := table{Header: []string{"hibernated by", "round", "first answer", "median answer", "last answer", "CPUs busy (whole machine)", "CPU per wake: machine", "CPU per wake: provider"}}
	f.addRounds(&t, "the engine's checkpoint")
	if f.InPlace != nil {
		f.InPlace.addRounds(&t, "in place ("+labelInPlace+"=true)")
	}
	body := fmt.Sprintf("%d trivial functions, all hibernated, then each called (`GET /function/NAME/count`) at the same moment, from its own goroutine; the time runs from that moment to each answer. Every answer was checked: the count went on. CPU busy is the whole machine's share from `/proc/stat` over the wakes (other work on the shared machine included); the CPU per wake is the machine's busy time over the wakes (the engine, CRIU, the functions, and any other work) and the provider's own (`/proc/PID/stat`), each divided by the wakes. ", f.N)
	if f.InPlace != nil {
		body += fmt.Sprintf("A second set of %d, deployed with the label `%s=true`, was hibernated in place (its status checked to say so) and woken the same way, its rounds alternated with the first set's; the target is judged on the faster set (median of the last answers: %s in place, %s by the engine's checkpoint).", f.InPlace.N, labelInPlace, fmtDur(f.InPlace.last()), fmtDur(f.last()))
	} else {
		body += "Hibernation in place: " + orNotMeasured(f.InPlaceWhy) + "."
	}
	return Section{Title: "8. Many functions woken at once", Body: body + "\n\n" + t.Markdown()}
}

// addRounds adds f's rounds to the section's table.
func (f *fanoutResult) addRounds(t *table, by string) {
	for i, r := range f.Rounds {
		t.add(by, strconv.Itoa(i+1), fmtDur(r[0]), fmtDur(DurMedian(r)), fmtDur(r[len(r)-1]), pct(f.Busy[i]), at(f.MachineCPU, i), at(f.ProviderCPU, i))
	}
}

// at formats xs[i], or "-" when the round has no such figure.
func at(xs []time.Duration, i int) string {
	if i >= len(xs) {
		return "-"
	}
	return fmtDur(xs[i])
}
