package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// overheadOpts: the connection counts, run length and rounds of the invoke
// overhead comparison.
type overheadOpts struct {
	Conns  []int
	Run    time.Duration
	Rounds int
	// BaselineURL, when set, adds a fourth contender: the same function
	// through another build of the provider (-baseline-provider), for a
	// before/after comparison within one run.
	BaselineURL string
	BaselinePID int
}

// overheadResult holds every run, the contenders' order rotating, and the
// provider's resident memory sampled while it was under load.
type overheadResult struct {
	overheadOpts
	Function string
	Runs     []loadRun
	LoadRSS  []int64
}

// runs returns the runs of one target at one connection count.
func (o *overheadResult) runs(target string, conns int) []loadRun {
	var out []loadRun
	for _, r := range o.Runs {
		if r.Target == target && r.Conns == conns {
			out = append(out, r)
		}
	}
	return out
}

// The contenders of the invoke comparison.
var overheadTargets = []string{"provider", "relay", "direct"}

// runOverhead compares requests through the provider's /function/NAME with
// the same replica called at its container address, and through a bare TCP
// relay to it (the floor of any proxy). Each round runs every target at
// each connection count, the order rotating between rounds.
func (b *bench) runOverhead(ctx context.Context, p *Provider, fn string, o overheadOpts) (*overheadResult, error) {
	id, err := b.containerOf(ctx, p, fn)
	if err != nil {
		return nil, err
	}
	ip, err := containerIP(ctx, b.docker, id, p.Network)
	if err != nil {
		return nil, err
	}
	relay, relayPID, stopRelay, err := startRelay(ip + ":8080")
	if err != nil {
		return nil, err
	}
	defer stopRelay()
	urls := map[string]string{
		"provider": p.URL + "/function/" + fn + "/",
		"relay":    "http://" + relay + "/",
		"direct":   "http://" + ip + ":8080/",
	}
	res := &overheadResult{overheadOpts: o, Function: fn}
	// The proxies' own CPU per request: steadier than their rates when
	// other work shares the machine.
	pids := map[string]int{"provider": p.PID(), "relay": relayPID, "baseline": o.BaselinePID}
	targets := overheadTargets
	if o.BaselineURL != "" {
		urls["baseline"] = o.BaselineURL
		targets = append(targets[:len(targets):len(targets)], "baseline")
	}
	// Warm every path (connections, the provider's transport) first.
	for _, t := range targets {
		if _, err := runLoad(ctx, t, urls[t], max(o.Conns[len(o.Conns)-1], 1), time.Second); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	for round := range o.Rounds {
		for _, c := range o.Conns {
			n := len(targets)
			for i := range n {
				t := targets[(round+i)%n]
				b.progress("overhead: round %d/%d, %s, %d connections", round+1, o.Rounds, t, c)
				var stop func()
				if t == "provider" {
					stop = sampleRSS(p.PID(), &res.LoadRSS)
				}
				cpu0, _ := processCPU(pids[t])
				r, err := runLoad(ctx, t, urls[t], c, o.Run)
				if stop != nil {
					stop()
				}
				if err != nil {
					return res, fmt.Errorf("load %s at %d connections: %w", t, c, err)
				}
				if cpu1, cerr := processCPU(pids[t]); cerr == nil && pids[t] > 0 && r.Requests > 0 {
					r.CPUPerReq = (cpu1 - cpu0) / time.Duration(r.Requests)
				}
				res.Runs = append(res.Runs, r)
			}
		}
	}
	return res, nil
}

// sampleRSS records a process's VmRSS every 100 ms until stop is called.
func sampleRSS(pid int, out *[]int64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if rss, err := processRSS(pid); err == nil {
					*out = append(*out, rss)
				}
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// processCPU is the user and system CPU time a process has used so far
// (/proc/PID/stat, in clock ticks of 10 ms).
func processCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, errors.New("no process")
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU time of %d: %w", pid, err)
	}
	// The fields after the command, which may hold spaces, in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("CPU time of %d: short stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("CPU time of %d: %v %v", pid, err1, err2)
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}
