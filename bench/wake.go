package main

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/test/harness"
)

// The two kinds of function woken: the trivial fixture, and a heavy one
// that spends 1.5 s initialising and holds 100 MB of state.
var wakeKinds = []struct {
	Kind string
	Env  map[string]string
}{
	{"trivial", nil},
	{"heavy", map[string]string{"INIT_DELAY": "1.5s", "STATE_MB": "100"}},
}

// wakeWay is one way back from idle: the strategy that put the function
// there, and for a checkpoint, whether it was taken in place.
type wakeWay struct {
	// Key ends the function's name and keys its figures: the strategy, or
	// wayInPlace.
	Key, Strategy string
	InPlace       bool
	Back          string // the way back, as the report names it
}

// The ways back from idle: remove (cold start), pause (unpause), checkpoint
// (restore), and checkpoint in place (restore in place; label
// com.openfaas.criu.in-place=true).
var wakeWays = []wakeWay{
	{Key: api.StrategyRemove, Strategy: api.StrategyRemove, Back: "cold start (remove)"},
	{Key: api.StrategyPause, Strategy: api.StrategyPause, Back: "unpause (pause)"},
	{Key: api.StrategyCheckpoint, Strategy: api.StrategyCheckpoint, Back: "restore (checkpoint)"},
	{Key: wayInPlace, Strategy: api.StrategyCheckpoint, InPlace: true, Back: "restore in place (checkpoint, in-place=true)"},
}

// wakeFn is one deployed function of the wake benchmark.
type wakeFn struct {
	Name, Kind, Strategy string
	InPlace              bool
	env                  map[string]string
	count                int    // its last /count answer
	state                string // its /state answer after deploy
	id                   string // its container when last put to sleep
	// failed counts its wrong answers and errors; an in-place function's
	// error (broken) drops it from the later samples instead of ending the
	// phase, and its figures from the targets.
	failed int
	broken bool
	// spent is the phase's time spent on f (deploy, suspends, wakes and
	// their checks): what each way adds to the run.
	spent time.Duration
}

// timed runs step, adding its duration to f's time.
func (f *wakeFn) timed(step func() error) error {
	start := time.Now()
	err := step()
	f.spent += time.Since(start)
	return err
}

func (f *wakeFn) deployment() types.FunctionDeployment {
	labels := map[string]string{api.LabelStrategy: f.Strategy, benchLabel: "wake"}
	if f.InPlace {
		inPlaceLabels(labels)
	}
	return types.FunctionDeployment{
		Service: f.Name,
		Image:   fixtureImage,
		EnvVars: maps.Clone(f.env),
		Labels:  &labels,
	}
}

// wakeResult holds every sample of the wake, suspend and memory
// measurements, keyed by function name (memory: by kind).
type wakeResult struct {
	Samples      int
	Settle       bool // each wake started once the previous one had finished
	Fns          []*wakeFn
	TTFB         map[string][]time.Duration // request to first byte, from idle
	Suspend      map[string][]time.Duration // POST scale-function {replicas: 0}
	ProviderWake map[string][]time.Duration // the provider's own account (last-wake)
	Parts        map[string][]wakeParts     // restores, by kind
	Mem          map[string]*memFigures     // by kind
	Failures     []string                   // lost state and other wrong answers
	// InPlaceWhy says why the in-place functions were not measured (not
	// asked for, or refused by the provider at deploy).
	InPlaceWhy string
	// Settled is how long each function's wake went on after its checks
	// (-wake-settle: waited before the next wake), by function.
	Settled map[string][]time.Duration
}

// wakeParts splits one restore: time to first byte, the provider's own
// wake (Docker's start from the checkpoint and bookkeeping) and CRIU's
// restore within it, when its statistics could be attributed.
type wakeParts struct {
	TTFB, Own time.Duration
	CRIU      criuRestore
	HasCRIU   bool
}

// memFigures are a function's memory in each state, one entry per sample.
type memFigures struct {
	Running, Paused, Hibernated []int64 // cgroup working set
	HibernatedCgroups           int     // samples where a hibernated container still had a cgroup
	CheckpointDisk              []int64 // checkpoints/ on disk
	CheckpointAnnotation        []int64 // com.openfaas.criu.checkpoint-bytes
	// Hibernated in place: its container's cgroup (the init alone) and the
	// dump's size (checkpoint-bytes annotation).
	InPlace, InPlaceDump []int64
}

func (r *wakeResult) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// failFn records a wrong answer of f.
func (r *wakeResult) failFn(f *wakeFn, format string, args ...any) {
	f.failed++
	r.fail(format, args...)
}

// tolerate keeps an in-place function's error from ending the phase: it is
// recorded as a failure, the function left out of the later samples, and
// the targets fall back to the engine's checkpoint. Other errors pass.
func (r *wakeResult) tolerate(f *wakeFn, err error) error {
	if err == nil || !f.InPlace {
		return err
	}
	f.broken = true
	r.failFn(f, "%s (in place): %v", f.Name, err)
	return nil
}

// fnOf is the function of a kind and way, nil when not deployed.
func (r *wakeResult) fnOf(kind, key string) *wakeFn {
	for _, f := range r.Fns {
		if f.Name == r.fn(kind, key) {
			return f
		}
	}
	return nil
}

// runWake deploys one function per kind and strategy, then takes samples:
// each puts every function to sleep, then wakes every one in turn through
// /function/NAME, in an order rotated from sample to sample. The first
// round is a warm-up and is not recorded.
func (b *bench) runWake(ctx context.Context, p *Provider, samples int, settle, inPlace bool) (*wakeResult, error) {
	res := &wakeResult{
		Samples: samples, Settle: settle,
		TTFB: map[string][]time.Duration{}, Suspend: map[string][]time.Duration{},
		ProviderWake: map[string][]time.Duration{}, Parts: map[string][]wakeParts{},
		Mem: map[string]*memFigures{}, Settled: map[string][]time.Duration{},
	}
	if !inPlace {
		res.InPlaceWhy = "not measured (-in-place=false)"
	}
	for _, k := range wakeKinds {
		res.Mem[k.Kind] = &memFigures{}
		for _, w := range wakeWays {
			if w.InPlace && !inPlace {
				continue
			}
			res.Fns = append(res.Fns, &wakeFn{Name: "wake-" + k.Kind + "-" + w.Key, Kind: k.Kind, Strategy: w.Strategy, InPlace: w.InPlace, env: k.Env})
		}
	}
	var err error
	if res.Fns, err = b.deployWake(ctx, p, res.Fns, res); err != nil {
		return nil, err
	}
	for i := 0; i <= samples; i++ {
		b.progress("wake: sample %d/%d", i, samples)
		order := rotate(res.Fns, i)
		rec := res
		if i == 0 {
			rec = &wakeResult{TTFB: map[string][]time.Duration{}, Suspend: map[string][]time.Duration{},
				ProviderWake: map[string][]time.Duration{}, Parts: map[string][]wakeParts{}, Mem: map[string]*memFigures{},
				Settled: map[string][]time.Duration{}}
			for _, k := range wakeKinds {
				rec.Mem[k.Kind] = &memFigures{}
			}
		}
		if err := b.sampleWake(ctx, p, order, rec, settle); err != nil {
			return res, fmt.Errorf("wake sample %d: %w", i, err)
		}
		if i == 0 {
			res.Failures = append(res.Failures, rec.Failures...)
		}
	}
	var spent time.Duration
	for _, f := range res.Fns {
		if f.InPlace {
			spent += f.spent
		}
	}
	b.progress("wake: the in-place functions took %s of the phase (deploys, suspends, wakes and checks)", spent.Round(100*time.Millisecond))
	for _, f := range res.Fns {
		if f.Strategy == api.StrategyCheckpoint {
			b.progress("wake: %s, first byte of each sample: %s", f.Name, fmtDurs(res.TTFB[f.Name]))
		}
		if ds := res.Settled[f.Name]; len(ds) > 0 {
			b.progress("wake: %s went on %s (median; max %s) after its checks", f.Name, fmtDur(DurMedian(ds)), fmtDur(DurPercentile(ds, 100)))
		}
	}
	return res, nil
}

// deployWake deploys the functions and calls each once; it returns those
// deployed. The in-place ones are left out (and deleted) when the provider
// refuses them or they do not come up, res.InPlaceWhy saying why: a
// provider without faas-criu-init still measures every other way.
func (b *bench) deployWake(ctx context.Context, p *Provider, fns []*wakeFn, res *wakeResult) ([]*wakeFn, error) {
	var ok []*wakeFn
	for _, f := range fns {
		err := f.timed(func() error { return p.Deploy(ctx, f.deployment()) })
		if err != nil && f.InPlace {
			res.InPlaceWhy = fmt.Sprintf("not measured (the provider refused the deployment of %s: %v)", f.Name, err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("deploy %s: %w", f.Name, err)
		}
		ok = append(ok, f)
	}
	var up []*wakeFn
	for _, f := range ok {
		err := f.timed(func() error { return b.firstCall(ctx, p, f) })
		if err != nil && f.InPlace {
			res.InPlaceWhy = fmt.Sprintf("not measured (%s did not come up: %v)", f.Name, err)
			_ = p.Delete(ctx, f.Name)
			continue
		}
		if err != nil {
			return nil, err
		}
		up = append(up, f)
	}
	return up, nil
}

// firstCall waits for f to be available, checks its first /count
// (firstCount, as every other phase does) and reads its /state.
func (b *bench) firstCall(ctx context.Context, p *Provider, f *wakeFn) error {
	if err := b.firstCount(ctx, p, f.Name); err != nil {
		return err
	}
	f.count = 1
	var err error
	if f.state, _, err = p.Invoke(ctx, f.Name, "/state"); err != nil {
		return fmt.Errorf("state of %s: %w", f.Name, err)
	}
	return nil
}

func rotate[T any](xs []T, n int) []T {
	n %= len(xs)
	return append(append([]T{}, xs[n:]...), xs[:n]...)
}

// sampleWake puts every function to sleep, then wakes each in turn. With
// settle, each wake starts once the previous one has finished (settleWake);
// without, right after the previous one's checks.
func (b *bench) sampleWake(ctx context.Context, p *Provider, order []*wakeFn, res *wakeResult, settle bool) error {
	var asleep []*wakeFn
	for _, f := range order {
		if f.broken {
			continue
		}
		if err := res.tolerate(f, f.timed(func() error { return b.suspendOne(ctx, p, f, res) })); err != nil {
			return err
		}
		if !f.broken {
			asleep = append(asleep, f)
		}
	}
	time.Sleep(300 * time.Millisecond) // let the engine settle after the exits
	for i, f := range asleep {
		if prev := asleep[max(i-1, 0)]; settle && i > 0 && !prev.broken {
			start := time.Now()
			if err := res.tolerate(prev, prev.timed(func() error { return b.settleWake(ctx, p, prev) })); err != nil {
				return err
			}
			res.Settled[prev.Name] = append(res.Settled[prev.Name], time.Since(start))
			time.Sleep(300 * time.Millisecond)
		}
		if err := res.tolerate(f, f.timed(func() error { return b.wakeOne(ctx, p, f, res) })); err != nil {
			return err
		}
	}
	return nil
}

// settleWake waits until the provider has finished f's wake, so that the
// next wake (after a short idle) does not share the machine with its tail.
// A wake answers before it is over: a restore's first replica may answer
// before Docker's start call returns, and the record's write that notes
// that call's end also drops the checkpoint from the status (annotation
// checkpoint-bytes); the checkpoint's files are deleted after that, off
// the wake's path.
func (b *bench) settleWake(ctx context.Context, p *Provider, f *wakeFn) error {
	err := harness.Poll(30*time.Second, 5*time.Millisecond, func() string {
		st, err := p.Status(ctx, f.Name)
		if err != nil {
			return err.Error()
		}
		ann := map[string]string{}
		if st.Annotations != nil {
			ann = *st.Annotations
		}
		if st.AvailableReplicas < 1 || ann[api.AnnotationState] != api.StateAwake {
			return fmt.Sprintf("%d replicas ready, state %q", st.AvailableReplicas, ann[api.AnnotationState])
		}
		if f.Strategy != api.StrategyCheckpoint {
			return ""
		}
		if v, ok := ann[api.AnnotationCheckpointBytes]; ok {
			return "the record still holds the checkpoint (" + v + " bytes)"
		}
		if n, err := checkpointBytes(b.dockerRoot, f.id); err != nil || n > 0 {
			return fmt.Sprintf("the checkpoint is still on disk (%d bytes, %v)", n, err)
		}
		return ""
	})
	if err != nil {
		return fmt.Errorf("wait for the wake of %s to finish: %w", f.Name, err)
	}
	return nil
}

func (b *bench) suspendOne(ctx context.Context, p *Provider, f *wakeFn, res *wakeResult) error {
	mem := res.Mem[f.Kind]
	id, err := b.containerOf(ctx, p, f.Name)
	if err != nil {
		return err
	}
	f.id = id
	ws, _, err := workingSet(id)
	if err != nil {
		return err
	}
	mem.Running = append(mem.Running, ws)
	d, err := p.Scale(ctx, f.Name, 0)
	if err != nil {
		return fmt.Errorf("suspend %s: %w", f.Name, err)
	}
	res.Suspend[f.Name] = append(res.Suspend[f.Name], d)
	if f.InPlace {
		return b.suspendedInPlace(ctx, p, f, mem)
	}
	switch f.Strategy {
	case api.StrategyPause:
		ws, exists, err := workingSet(id)
		if err != nil {
			return err
		}
		if !exists {
			res.failFn(f, "%s: paused container %s has no memory cgroup", f.Name, id[:12])
		}
		mem.Paused = append(mem.Paused, ws)
	case api.StrategyCheckpoint:
		ws, exists, err := workingSet(id)
		if err != nil {
			return err
		}
		if exists {
			mem.HibernatedCgroups++
		}
		mem.Hibernated = append(mem.Hibernated, ws)
		disk, err := checkpointBytes(b.dockerRoot, id)
		if err != nil {
			return err
		}
		mem.CheckpointDisk = append(mem.CheckpointDisk, disk)
		ann, err := p.Annotation(ctx, f.Name, "com.openfaas.criu.checkpoint-bytes")
		if err != nil {
			return err
		}
		if n, err := strconv.ParseInt(ann, 10, 64); err == nil {
			mem.CheckpointAnnotation = append(mem.CheckpointAnnotation, n)
		}
	}
	return nil
}

// suspendedInPlace checks that f hibernated in place (the provider says so
// in its status: a provider that took the engine's checkpoint instead must
// not pass for in place) and reads what it keeps: its container's cgroup,
// where only the init runs, and the dump's size.
func (b *bench) suspendedInPlace(ctx context.Context, p *Provider, f *wakeFn, mem *memFigures) error {
	how, err := p.Annotation(ctx, f.Name, annHibernation)
	if err != nil {
		return err
	}
	if how != hibInPlace {
		return fmt.Errorf("scaled to zero with the label %s=true, the status says %s=%q, not %q", labelInPlace, annHibernation, how, hibInPlace)
	}
	ws, _, err := workingSet(f.id)
	if err != nil {
		return err
	}
	mem.InPlace = append(mem.InPlace, ws)
	ann, err := p.Annotation(ctx, f.Name, api.AnnotationCheckpointBytes)
	if err != nil {
		return err
	}
	if n, err := strconv.ParseInt(ann, 10, 64); err == nil {
		mem.InPlaceDump = append(mem.InPlaceDump, n)
	}
	return nil
}

// wakeOne wakes a function with /count, times it to the first byte and
// checks that its state survived (or, after a cold start, that it did not).
func (b *bench) wakeOne(ctx context.Context, p *Provider, f *wakeFn, res *wakeResult) error {
	start := time.Now()
	body, ttfb, err := p.Invoke(ctx, f.Name, "/count")
	if err != nil {
		return fmt.Errorf("wake %s: %w", f.Name, err)
	}
	res.TTFB[f.Name] = append(res.TTFB[f.Name], ttfb)
	want := f.count + 1
	if f.Strategy == api.StrategyRemove {
		want = 1
	}
	got, err := strconv.Atoi(body)
	if err != nil || got != want {
		res.failFn(f, "%s: after waking from %s, /count answered %q, want %d", f.Name, f.Strategy, body, want)
	}
	f.count = got
	if f.Strategy == api.StrategyRemove {
		return b.checkState(ctx, p, f, res)
	}
	own, ok, err := lastWake(ctx, p, f.Name, start)
	if err != nil {
		return err
	}
	if ok {
		res.ProviderWake[f.Name] = append(res.ProviderWake[f.Name], own)
	}
	if f.Strategy == api.StrategyCheckpoint && !f.InPlace && ok {
		parts := wakeParts{TTFB: ttfb, Own: own}
		parts.CRIU, parts.HasCRIU = lastRestore(b.criuDir, start)
		res.Parts[f.Kind] = append(res.Parts[f.Kind], parts)
	}
	return b.checkState(ctx, p, f, res)
}

// checkState compares the /state checksum with the one after deploy (the
// heavy function's 100 MB).
func (b *bench) checkState(ctx context.Context, p *Provider, f *wakeFn, res *wakeResult) error {
	st, _, err := p.Invoke(ctx, f.Name, "/state")
	if err != nil {
		return fmt.Errorf("state of %s: %w", f.Name, err)
	}
	if st != f.state {
		res.failFn(f, "%s: /state is %q after waking from %s, was %q", f.Name, st, f.Strategy, f.state)
	}
	return nil
}

// lastWake reads the provider's own wake time from the
// com.openfaas.criu.last-wake annotation ("checkpoint 212ms at <time>"),
// if it describes a wake that began after since.
func lastWake(ctx context.Context, p *Provider, name string, since time.Time) (time.Duration, bool, error) {
	ann, err := p.Annotation(ctx, name, "com.openfaas.criu.last-wake")
	if err != nil {
		return 0, false, err
	}
	f := strings.Fields(ann)
	if len(f) != 4 || f[2] != "at" {
		return 0, false, nil
	}
	d, err := time.ParseDuration(f[1])
	if err != nil {
		return 0, false, nil
	}
	at, err := time.Parse(time.RFC3339, f[3])
	if err != nil || at.Before(since.Truncate(time.Second)) {
		return 0, false, nil
	}
	return d, true, nil
}

// fmtDurs lists durations in milliseconds, for the log.
func fmtDurs(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64)
	}
	return strings.Join(parts, " ") + " ms"
}
