package main

import (
	"context"
	"errors"
	"fmt"
	"os"
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
}

// last is the median over rounds of the last function's answer.
func (f *fanoutResult) last() time.Duration {
	var ls []time.Duration
	for _, r := range f.Rounds {
		ls = append(ls, r[len(r)-1])
	}
	return DurMedian(ls)
}

// runFanout deploys n trivial functions, and each round hibernates them all
// and then calls every one at the same moment.
func (b *bench) runFanout(ctx context.Context, p *Provider, n, rounds int) (*fanoutResult, error) {
	res := &fanoutResult{N: n}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("fanout-%02d", i)
		dep := types.FunctionDeployment{Service: names[i], Image: fixtureImage,
			Labels: &map[string]string{api.LabelStrategy: api.StrategyCheckpoint, benchLabel: "fanout"}}
		if err := p.Deploy(ctx, dep); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		if err := p.WaitAvailable(ctx, name, 1, time.Minute); err != nil {
			return nil, err
		}
	}
	counts := make([]int, n)
	for i, name := range names {
		body, _, err := p.Invoke(ctx, name, "/count")
		if err != nil {
			return nil, err
		}
		if counts[i], err = strconv.Atoi(body); err != nil {
			return nil, fmt.Errorf("fan-out: %s /count: %q", name, body)
		}
	}
	for round := range rounds {
		b.progress("fan-out: round %d of %d, %d functions", round+1, rounds, n)
		for _, name := range names {
			if _, err := p.Scale(ctx, name, 0); err != nil {
				return nil, err
			}
			if err := waitAnnotation(ctx, p, name, "com.openfaas.criu.state", "hibernated", time.Minute); err != nil {
				return nil, err
			}
		}
		time.Sleep(time.Second)
		cpu0, _ := readCPU()
		prov0, _ := processCPU(p.PID())
		start := time.Now()
		took := make([]time.Duration, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				body, _, err := p.Invoke(ctx, name, "/count")
				took[i] = time.Since(start)
				if err == nil && body != strconv.Itoa(counts[i]+1) {
					err = fmt.Errorf("%s /count after the wake: %q, want %d (state lost)", name, body, counts[i]+1)
				}
				counts[i]++
				errs[i] = err
			}()
		}
		wg.Wait()
		cpu1, _ := readCPU()
		prov1, _ := processCPU(p.PID())
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
	}
	return res, nil
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

// Section reports the fan-out.
func (f *fanoutResult) Section() Section {
	t := table{Header: []string{"round", "first answer", "median answer", "last answer", "CPUs busy (whole machine)", "CPU per wake: machine", "CPU per wake: provider"}}
	for i, r := range f.Rounds {
		t.add(strconv.Itoa(i+1), fmtDur(r[0]), fmtDur(DurMedian(r)), fmtDur(r[len(r)-1]), pct(f.Busy[i]), at(f.MachineCPU, i), at(f.ProviderCPU, i))
	}
	body := fmt.Sprintf("%d trivial functions, all hibernated, then each called (`GET /function/NAME/count`) at the same moment, from its own goroutine; the time runs from that moment to each answer. Every answer was checked: the count went on. CPU busy is the whole machine's share from `/proc/stat` over the wakes (other work on the shared machine included); the CPU per wake is the machine's busy time over the wakes (the engine, CRIU, the functions, and any other work) and the provider's own (`/proc/PID/stat`), each divided by the wakes.\n\n", f.N) + t.Markdown()
	return Section{Title: "8. Many functions woken at once", Body: body}
}

// at formats xs[i], or "-" when the round has no such figure.
func at(xs []time.Duration, i int) string {
	if i >= len(xs) {
		return "-"
	}
	return fmtDur(xs[i])
}
