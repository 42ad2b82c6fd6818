package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// The scale run (issue 13, `make bench-scale`): one provider takes 10, then
// 100, then 1,000 functions (SCALE_SIZES), all of them trivial (the fixture,
// a static Go server FROM scratch), all but the first hibernated and left to
// go deep (sandbox stopped), so that the box holds what a large idle fleet
// holds. At each size it measures the deploy, the list, the provider's
// memory, a restart of the provider, the box's memory and the wake of the
// newest function.

// Network and subnet of the scale run: a /21, since every replica keeps a
// fixed address (2,046 of them).
var (
	scaleNetwork = "fcb-scale"
	scaleSubnet  = "10.77.8.0/21"
)

const scalePrefix = "scale-"

// Targets at 1,000 functions (issue 13).
const (
	scaleTargetN       = 1000
	scaleTargetRSS     = 60 << 20
	scaleTargetList    = 100 * time.Millisecond
	scaleTargetRestart = 5 * time.Second
)

// scalePoint is what the run measured with N functions deployed.
type scalePoint struct {
	N int
	// Added is how many functions this step deployed, in DeployWall, with
	// Workers deploys at a time; DeployEach is each one's time from the
	// deploy call to its first ready replica, HibernateEach the
	// checkpoint (scale to zero) that followed.
	Added                     int
	DeployWall                time.Duration
	DeployEach, HibernateEach []time.Duration
	// SettleWall is how long the provider took to take every hibernated
	// function to the deep tier.
	SettleWall time.Duration
	Tiers      map[string]int
	// List is the time of each GET /system/functions, ListBytes its size.
	List      []time.Duration
	ListBytes int
	// RSS is the provider's resident memory after the deploys, RSSRestart
	// after its restart and the list calls that follow.
	RSS, RSSRestart int64
	// Restart: from the new process's start to /healthz, and to a list of
	// every function with the awake one answering.
	RestartHealthy, RestartServing time.Duration
	// Box: MemAvailable (page cache dropped) and the box's shims.
	MemAvailable int64
	Shims        int
	// WakeLast is the first byte of the newest function's first call after
	// it went deep; WakeTier the tier it was woken from.
	WakeLast time.Duration
	WakeTier string
	// NewRestart and BaseRestart: restart to serving of this build and of
	// the baseline build (-baseline-provider), alternated.
	NewRestart, BaseRestart []time.Duration
}

// scaleResult is the whole run.
type scaleResult struct {
	Sizes    []int
	Workers  int
	Baseline string // another build, whose restart is timed beside this one's
	Base     int64  // MemAvailable with none deployed
	BaseShim int
	Load     string // the machine's load average at the start and the end
	Points   []scalePoint
	Failures []string
	Err      string // why the run stopped early, if it did
}

// parseSizes reads "10,100,1000": increasing positive sizes.
func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 2 {
			return nil, fmt.Errorf("scale size %q: want an integer of at least 2", f)
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("scale sizes %q: want increasing sizes", s)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no scale sizes")
	}
	return out, nil
}

func scaleName(i int) string { return fmt.Sprintf("%s%04d", scalePrefix, i) }

// runScale runs the scale run on its own provider. Whatever happens, the
// functions are deleted by the cleanups registered on cl.
func (b *bench) runScale(ctx context.Context, cl *cleanups, bin, baseline string, sizes []int, workers int) (*scaleResult, error) {
	res := &scaleResult{Sizes: sizes, Workers: workers, Baseline: baseline, Load: loadAvg()}
	if err := removeLeftovers(ctx, b.docker, scaleNetwork); err != nil {
		return nil, err
	}
	p, err := b.startProvider(ctx, cl, providerOpts{Bin: bin, Network: scaleNetwork, Subnet: scaleSubnet,
		LogPath: filepath.Join(b.logDir, "provider-scale.log"),
		Extra:   []string{"--policy-tick", "250ms"}})
	if err != nil {
		return nil, err
	}
	// Deleted in parallel before the provider's own cleanup (which deletes
	// one at a time) runs.
	cl.push(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		b.progress("scale: deleting the functions")
		return p.deleteParallel(ctx, workers)
	})
	if res.Base, res.BaseShim, err = boxMemory(ctx); err != nil {
		return nil, err
	}
	deployed := 0
	for _, n := range sizes {
		pt, err := b.scaleStep(ctx, p, bin, deployed, n, workers, res)
		if pt != nil {
			res.Points = append(res.Points, *pt)
		}
		if err != nil {
			res.Err = fmt.Sprintf("stopped at %d functions: %v", n, err)
			b.progress("scale: %s", res.Err)
			break
		}
		deployed = n
	}
	res.Load += " → " + loadAvg()
	return res, nil
}

// scaleStep deploys functions from..n-1 and measures the provider with n.
func (b *bench) scaleStep(ctx context.Context, p *Provider, bin string, from, n, workers int, res *scaleResult) (*scalePoint, error) {
	pt := &scalePoint{N: n, Added: n - from}
	b.progress("scale: deploying %d functions (%d to %d), %d at a time", n-from, from, n-1, workers)
	var mu sync.Mutex
	var next atomic.Int64
	next.Store(int64(from))
	var errs []error
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				dep, hib, err := b.scaleDeployOne(ctx, p, i)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					pt.DeployEach = append(pt.DeployEach, dep)
					if hib > 0 {
						pt.HibernateEach = append(pt.HibernateEach, hib)
					}
				}
				done := len(pt.DeployEach) + len(errs)
				mu.Unlock()
				if done%100 == 0 {
					b.progress("scale: %d of %d deployed", from+done, n)
				}
			}
		}()
	}
	wg.Wait()
	pt.DeployWall = time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return pt, err
	}
	if err := ctx.Err(); err != nil {
		return pt, err
	}

	// The provider's deep-after policy stops the hibernated functions'
	// sandboxes a second after they hibernated.
	b.progress("scale: waiting for %d functions to go deep", n-1)
	start = time.Now()
	for {
		list, _, _, err := p.listTimed(ctx)
		if err != nil {
			return pt, err
		}
		pt.Tiers = map[string]int{}
		for _, f := range list {
			if f.Annotations != nil {
				pt.Tiers[(*f.Annotations)["com.openfaas.criu.tier"]]++
			}
		}
		if len(list) == n && pt.Tiers["deep"] >= n-1 {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return pt, fmt.Errorf("after 5 minutes, tiers %v of %d functions, want %d deep", pt.Tiers, len(list), n-1)
		}
		if err := sleepCtx(ctx, time.Second); err != nil {
			return pt, err
		}
	}
	pt.SettleWall = time.Since(start)
	b.track(ctx)

	b.progress("scale: box memory, provider memory and the list at %d", n)
	var err error
	if pt.MemAvailable, pt.Shims, err = boxMemory(ctx); err != nil {
		return pt, err
	}
	if pt.RSS, err = processRSS(p.PID()); err != nil {
		return pt, err
	}
	for range 20 {
		list, d, size, err := p.listTimed(ctx)
		if err != nil {
			return pt, err
		}
		if len(list) != n {
			return pt, fmt.Errorf("list: %d functions, want %d", len(list), n)
		}
		pt.List, pt.ListBytes = append(pt.List, d), size
	}

	// The newest function, deep, is woken by a call, with its count kept.
	last := scaleName(n - 1)
	st, err := p.Status(ctx, last)
	if err != nil {
		return pt, err
	}
	if st.Annotations != nil {
		pt.WakeTier = (*st.Annotations)["com.openfaas.criu.tier"]
	}
	b.progress("scale: waking %s (%s)", last, pt.WakeTier)
	body, ttfb, err := p.Invoke(ctx, last, "/count")
	if err == nil && body != "2" {
		err = fmt.Errorf("%s /count after its wake: %q, want 2 (state lost)", last, body)
	}
	if err != nil {
		res.Failures = append(res.Failures, "scale: "+err.Error())
	} else {
		pt.WakeLast = ttfb
	}
	if _, err := p.Scale(ctx, last, 0); err != nil {
		return pt, err
	}

	b.progress("scale: restarting the provider with %d functions", n)
	if res.Baseline != "" {
		// The baseline build and this one, alternated, on the same fleet.
		for range 2 {
			for _, bin := range []string{res.Baseline, bin} {
				h, s, err := restartTimed(ctx, p, bin, n)
				if err != nil {
					return pt, err
				}
				if bin == res.Baseline {
					pt.BaseRestart = append(pt.BaseRestart, s)
				} else {
					pt.NewRestart = append(pt.NewRestart, s)
				}
				_ = h
			}
		}
	}
	if pt.RestartHealthy, pt.RestartServing, err = restartTimed(ctx, p, bin, n); err != nil {
		return pt, err
	}
	for range 5 {
		if _, _, _, err := p.listTimed(ctx); err != nil {
			return pt, err
		}
	}
	if pt.RSSRestart, err = processRSS(p.PID()); err != nil {
		return pt, err
	}
	return pt, nil
}

// restartTimed restarts the provider from bin and returns how long it took
// to answer /healthz, and to serve: list every one of the n functions with
// the awake one (the first) answering a call.
func restartTimed(ctx context.Context, p *Provider, bin string, n int) (healthy, serving time.Duration, err error) {
	started, err := p.RestartWith(ctx, bin)
	if err != nil {
		return 0, 0, err
	}
	if err := p.waitHealthy(ctx, 2*time.Minute); err != nil {
		return 0, 0, err
	}
	healthy = time.Since(started)
	for {
		list, _, _, err := p.listTimed(ctx)
		if err == nil && len(list) == n {
			if body, _, ierr := p.Invoke(ctx, scaleName(0), "/count"); ierr == nil && body != "" {
				break
			}
		}
		if time.Since(started) > 2*time.Minute {
			return healthy, 0, fmt.Errorf("provider not serving %d functions 2 minutes after its restart (last error: %v)", n, err)
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return healthy, 0, err
		}
	}
	return healthy, time.Since(started), nil
}

// scaleDeployOne deploys function i, waits for it, calls it once and, for
// every function but the first, hibernates it with a deep-after of a second.
func (b *bench) scaleDeployOne(ctx context.Context, p *Provider, i int) (deploy, hibernate time.Duration, err error) {
	name := scaleName(i)
	labels := map[string]string{benchLabel: "scale", "com.openfaas.criu.strategy": "checkpoint", "com.openfaas.criu.deep-after": "1s"}
	start := time.Now()
	if err := p.Deploy(ctx, types.FunctionDeployment{Service: name, Image: fixtureImage, Labels: &labels}); err != nil {
		return 0, 0, err
	}
	if err := p.WaitAvailable(ctx, name, 1, 2*time.Minute); err != nil {
		return 0, 0, err
	}
	deploy = time.Since(start)
	if body, _, err := p.Invoke(ctx, name, "/count"); err != nil || body != "1" {
		return 0, 0, fmt.Errorf("%s: first call: %q, %v", name, body, err)
	}
	if i == 0 {
		return deploy, 0, nil // stays awake
	}
	hibernate, err = p.Scale(ctx, name, 0)
	return deploy, hibernate, err
}

// listTimed calls GET /system/functions and returns the list, the time to
// its last byte and its size.
func (p *Provider) listTimed(ctx context.Context) ([]types.FunctionStatus, time.Duration, int, error) {
	start := time.Now()
	code, out, err := p.call(ctx, http.MethodGet, "/system/functions", nil)
	d := time.Since(start)
	if err != nil {
		return nil, d, 0, err
	}
	if code != http.StatusOK {
		return nil, d, 0, fmt.Errorf("list functions: status %d", code)
	}
	var list []types.FunctionStatus
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, d, 0, fmt.Errorf("list functions: %w", err)
	}
	return list, d, len(out), nil
}

// deleteParallel deletes every function of the provider, workers at a time.
func (p *Provider) deleteParallel(ctx context.Context, workers int) error {
	list, _, _, err := p.listTimed(ctx)
	if err != nil {
		return err
	}
	names := make(chan string)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range names {
				if err := p.Delete(ctx, n); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, f := range list {
		names <- f.Name
	}
	close(names)
	wg.Wait()
	return errors.Join(errs...)
}

// boxMemory drops the page cache and returns the median of five reads of
// MemAvailable 200 ms apart, and the number of containerd shims on the box.
func boxMemory(ctx context.Context) (int64, int, error) {
	if err := exec.CommandContext(ctx, "sync").Run(); err != nil {
		return 0, 0, fmt.Errorf("sync: %w", err)
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("1"), 0); err != nil {
		return 0, 0, fmt.Errorf("drop the page cache (needs root): %w", err)
	}
	var avail []int64
	for i := range 5 {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		m, err := readMeminfo()
		if err != nil {
			return 0, 0, err
		}
		avail = append(avail, m["MemAvailable"])
	}
	shims, _, _ := shimUsage(nil)
	return IntMedian(avail), shims, nil
}

func loadAvg() string {
	f := strings.Fields(readFile("/proc/loadavg"))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// met says whether a target is met, for the report.
func met(ok bool) string {
	if ok {
		return "**met**"
	}
	return "**not met**"
}

// Section is the scale run's part of the report.
func (s *scaleResult) Section() Section {
	t := table{Header: []string{"functions", "deploy (added, wall, per function to ready: median / p95)", "hibernate each (median)", "settle to deep", "`GET /system/functions` (median / max of 20; size)", "provider RSS (after deploys / after restart)", "restart to /healthz / to serving", "box: MemAvailable lost (per function); shims on the box", "wake of the newest (tier)"}}
	for _, p := range s.Points {
		lost := s.Base - p.MemAvailable
		wake := "failed"
		if p.WakeLast > 0 {
			wake = fmt.Sprintf("%s (%s)", fmtDur(p.WakeLast), p.WakeTier)
		}
		t.add(strconv.Itoa(p.N),
			fmt.Sprintf("%d in %s: %s / %s", p.Added, p.DeployWall.Round(100*time.Millisecond), fmtDur(DurMedian(p.DeployEach)), fmtDur(DurPercentile(p.DeployEach, 95))),
			fmtDur(DurMedian(p.HibernateEach)),
			p.SettleWall.Round(100*time.Millisecond).String(),
			fmt.Sprintf("%s / %s; %s", fmtDur(DurMedian(p.List)), fmtDur(DurPercentile(p.List, 100)), fmtBytes(int64(p.ListBytes))),
			fmt.Sprintf("%s / %s", fmtMiB(p.RSS), fmtMiB(p.RSSRestart)),
			fmt.Sprintf("%s / %s", fmtDur(p.RestartHealthy), fmtDur(p.RestartServing)),
			fmt.Sprintf("%s (%s); %d (%d with none)", fmtMiB(lost), fmtMiB(lost/int64(p.N)), p.Shims, s.BaseShim),
			wake)
	}
	var sizes []string
	for _, n := range s.Sizes {
		sizes = append(sizes, strconv.Itoa(n))
	}
	body := fmt.Sprintf("`make bench-scale` (`SCALE_SIZES=%s`; here `go run ./bench -scale -scale-sizes %s -scale-workers %d`): one provider takes the sizes in turn, each step adding functions to the last, %d deploys at a time. Every function is the fixture (a static Go server FROM scratch), deployed, called once (`/count`) and, all but the first, hibernated (scale to 0: a checkpoint) with `com.openfaas.criu.deep-after=1s`, so that the provider's own policy takes it to the deep tier (sandbox stopped). The first stays awake. Then, at each size: MemAvailable after `sync; echo 1 > /proc/sys/vm/drop_caches` (median of 5 reads) against the box before the run, the provider's VmRSS, 20 list calls, a call to the newest function (deep) with its count checked, and a restart of the provider (SIGTERM, then the same command): time to `/healthz`, and to a list of every function with the awake one answering. Load average (1, 5, 15 min) at the start → the end: %s; other work shares the machine, so MemAvailable moves by tens of MiB on its own.\n\n",
		strings.Join(sizes, ","), strings.Join(sizes, ","), s.Workers, s.Workers, s.Load) + t.Markdown()
	if s.Baseline != "" {
		bt := table{Header: []string{"functions", "restart to serving: this build (each)", "baseline build (each)"}}
		for _, p := range s.Points {
			each := func(ds []time.Duration) string {
				var out []string
				for _, d := range ds {
					out = append(out, fmtDur(d))
				}
				return strings.Join(out, ", ")
			}
			bt.add(strconv.Itoa(p.N), each(p.NewRestart), each(p.BaseRestart))
		}
		body += fmt.Sprintf("\nRestart to serving, this build and the baseline build (`-baseline-provider %s`) alternated on the same functions:\n\n", filepath.Base(s.Baseline)) + bt.Markdown()
	}
	if s.Err != "" {
		body += "\n**The run stopped early**: " + s.Err + "\n"
	}
	// The targets, at 1,000 functions.
	tt := table{Header: []string{"target at 1,000 functions", "figure", "verdict"}}
	var at *scalePoint
	for i := range s.Points {
		if s.Points[i].N >= scaleTargetN && s.Points[i].RSSRestart > 0 {
			at = &s.Points[i]
		}
	}
	if at == nil {
		largest := 0
		if len(s.Points) > 0 {
			largest = s.Points[len(s.Points)-1].N
		}
		body += fmt.Sprintf("\nNot run at 1,000 functions (largest size measured: %d): the targets at 1,000 (provider RSS ≤ 60 MiB, list ≤ 100 ms, restart to serving ≤ 5 s) are not judged by this run.\n", largest)
	} else {
		rss := max(at.RSS, at.RSSRestart)
		tt.add("provider RSS ≤ 60 MiB", fmtMiB(rss)+" (the larger of the two readings)", met(rss <= scaleTargetRSS))
		tt.add("`GET /system/functions` ≤ 100 ms", fmtDur(DurMedian(at.List))+" (median)", met(DurMedian(at.List) <= scaleTargetList))
		tt.add("restart to serving ≤ 5 s", fmtDur(at.RestartServing), met(at.RestartServing <= scaleTargetRestart))
		body += "\n" + tt.Markdown() + "\n" + scaleFiguresComment(at.N, rss, DurMedian(at.List), at.RestartServing, time.Now())
	}
	if len(s.Failures) > 0 {
		body += "\nFailures: " + strings.Join(s.Failures, "; ") + "\n"
	}
	return Section{Title: scaleTitle, Body: body}
}

const scaleTitle = "10. Scale: 10, 100 and 1,000 functions"

// spliceSection puts sec into an existing report's markdown: in place of
// the section with the same title, else before "What was tried", else at the
// end. The rest of the report is kept as it was.
func spliceSection(report string, sec Section) string {
	block := fmt.Sprintf("## %s\n\n%s", sec.Title, strings.TrimLeft(sec.Body, "\n"))
	if !strings.HasSuffix(block, "\n") {
		block += "\n"
	}
	head := "## " + sec.Title + "\n"
	if i := sectionStart(report, head); i >= 0 {
		end := len(report)
		if j := strings.Index(report[i+len(head):], "\n## "); j >= 0 {
			end = i + len(head) + j + 1
		}
		if end < len(report) {
			block += "\n"
		}
		return report[:i] + block + report[end:]
	}
	if i := sectionStart(report, "## What was tried\n"); i >= 0 {
		return report[:i] + block + "\n" + report[i:]
	}
	if report != "" && !strings.HasSuffix(report, "\n") {
		report += "\n"
	}
	if report != "" {
		report += "\n"
	}
	return report + block
}

// sectionStart finds a heading line at the start of a line.
func sectionStart(report, head string) int {
	if strings.HasPrefix(report, head) {
		return 0
	}
	if i := strings.Index(report, "\n"+head); i >= 0 {
		return i + 1
	}
	return -1
}

// keptSection returns the section titled title from an existing report, so
// that a full benchmark run keeps the scale run's last curve.
func keptSection(path, title string) (Section, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Section{}, false
	}
	report, head := string(b), "## "+title+"\n"
	i := sectionStart(report, head)
	if i < 0 {
		return Section{}, false
	}
	body := report[i+len(head):]
	if j := strings.Index(body, "\n## "); j >= 0 {
		body = body[:j+1]
	}
	return Section{Title: title, Body: strings.Trim(body, "\n") + "\n"}, true
}
