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

// The ways back from idle, by the strategy that put the function there:
// remove (cold start), pause (unpause), checkpoint (restore).
var wakeStrategies = []string{api.StrategyRemove, api.StrategyPause, api.StrategyCheckpoint}

// wakeFn is one deployed function of the wake benchmark.
type wakeFn struct {
	Name, Kind, Strategy string
	env                  map[string]string
	count                int    // its last /count answer
	state                string // its /state answer after deploy
	id                   string // its container when last put to sleep
}

func (f *wakeFn) deployment() types.FunctionDeployment {
	return types.FunctionDeployment{
		Service: f.Name,
		Image:   fixtureImage,
		EnvVars: maps.Clone(f.env),
		Labels:  &map[string]string{api.LabelStrategy: f.Strategy, benchLabel: "wake"},
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
}

func (r *wakeResult) fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// runWake deploys one function per kind and strategy, then takes samples:
// each puts every function to sleep, then wakes every one in turn through
// /function/NAME, in an order rotated from sample to sample. The first
// round is a warm-up and is not recorded.
func (b *bench) runWake(ctx context.Context, p *Provider, samples int, settle bool) (*wakeResult, error) {
	res := &wakeResult{
		Samples: samples, Settle: settle,
		TTFB: map[string][]time.Duration{}, Suspend: map[string][]time.Duration{},
		ProviderWake: map[string][]time.Duration{}, Parts: map[string][]wakeParts{},
		Mem: map[string]*memFigures{}, Settled: map[string][]time.Duration{},
	}
	for _, k := range wakeKinds {
		res.Mem[k.Kind] = &memFigures{}
		for _, s := range wakeStrategies {
			res.Fns = append(res.Fns, &wakeFn{Name: "wake-" + k.Kind + "-" + s, Kind: k.Kind, Strategy: s, env: k.Env})
		}
	}
	if err := b.deployWake(ctx, p, res.Fns); err != nil {
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

func (b *bench) deployWake(ctx context.Context, p *Provider, fns []*wakeFn) error {
	for _, f := range fns {
		if err := p.Deploy(ctx, f.deployment()); err != nil {
			return fmt.Errorf("deploy %s: %w", f.Name, err)
		}
	}
	for _, f := range fns {
		if err := p.WaitAvailable(ctx, f.Name, 1, 60*time.Second); err != nil {
			return fmt.Errorf("deploy %s: %w", f.Name, err)
		}
		body, _, err := p.Invoke(ctx, f.Name, "/count")
		if err != nil {
			return fmt.Errorf("first call of %s: %w", f.Name, err)
		}
		if body != "1" {
			return fmt.Errorf("first call of %s: /count answered %q, want 1", f.Name, body)
		}
		f.count = 1
		if f.state, _, err = p.Invoke(ctx, f.Name, "/state"); err != nil {
			return fmt.Errorf("state of %s: %w", f.Name, err)
		}
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
	for _, f := range order {
		if err := b.suspendOne(ctx, p, f, res); err != nil {
			return err
		}
	}
	time.Sleep(300 * time.Millisecond) // let the engine settle after the exits
	for i, f := range order {
		if settle && i > 0 {
			start := time.Now()
			if err := b.settleWake(ctx, p, order[i-1]); err != nil {
				return err
			}
			res.Settled[order[i-1].Name] = append(res.Settled[order[i-1].Name], time.Since(start))
			time.Sleep(300 * time.Millisecond)
		}
		if err := b.wakeOne(ctx, p, f, res); err != nil {
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
	switch f.Strategy {
	case api.StrategyPause:
		ws, exists, err := workingSet(id)
		if err != nil {
			return err
		}
		if !exists {
			res.fail("%s: paused container %s has no memory cgroup", f.Name, id[:12])
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
		res.fail("%s: after waking from %s, /count answered %q, want %d", f.Name, f.Strategy, body, want)
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
	if f.Strategy == api.StrategyCheckpoint && ok {
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
		res.fail("%s: /state is %q after waking from %s, was %q", f.Name, st, f.Strategy, f.state)
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
