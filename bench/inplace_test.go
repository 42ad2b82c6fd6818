package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

// judge picks the faster tier, names it and its label, states the other,
// and falls back to the engine's checkpoint, saying so, without an in-place
// figure.
func TestJudge(t *testing.T) {
	cases := []struct {
		name         string
		cp, cpOwn    time.Duration
		ip           tierFig
		d            time.Duration
		inPlace      bool
		head, other  string
		notInFigures []string
	}{
		{"in place faster", 146 * ms, 143 * ms, tierFig{Has: true, D: 52 * ms, Own: 48 * ms}, 52 * ms, true,
			"52.0 ms hibernated in place (label com.openfaas.criu.in-place=true; provider's own wake 48.0 ms)",
			"by the engine's checkpoint 146 ms (provider's own wake 143 ms)", nil},
		{"in place equal: in place", 100 * ms, 0, tierFig{Has: true, D: 100 * ms}, 100 * ms, true,
			"100 ms hibernated in place (label com.openfaas.criu.in-place=true)", "by the engine's checkpoint 100 ms", []string{"provider's own wake"}},
		{"in place slower: the checkpoint", 146 * ms, 143 * ms, tierFig{Has: true, D: 180 * ms}, 146 * ms, false,
			"146 ms by the engine's checkpoint (the default, no label; provider's own wake 143 ms)",
			"hibernated in place (label com.openfaas.criu.in-place=true) 180 ms, slower in this run: the engine's checkpoint is judged", nil},
		{"not measured", 146 * ms, 143 * ms, tierFig{Why: "not measured (-in-place=false)"}, 146 * ms, false,
			"146 ms by the engine's checkpoint",
			"hibernation in place not measured (-in-place=false): judged on the engine's checkpoint, as before the in-place tier", nil},
		{"failed, though faster", 146 * ms, 0, tierFig{D: 10 * ms, Why: "failed in this run (1 wrong answers or errors of wake-trivial-inplace: see Failures)"}, 146 * ms, false,
			"146 ms by the engine's checkpoint (the default, no label)",
			"hibernation in place failed in this run (1 wrong answers or errors of wake-trivial-inplace: see Failures): judged on the engine's checkpoint", []string{"10.0 ms"}},
		{"no reason given", 146 * ms, 0, tierFig{}, 146 * ms, false, "146 ms by the engine's checkpoint", "hibernation in place not measured: judged", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := judge(c.cp, c.cpOwn, c.ip)
			if j.D != c.d || j.InPlace != c.inPlace {
				t.Errorf("judged %v in place %v, want %v %v", j.D, j.InPlace, c.d, c.inPlace)
			}
			if !strings.HasPrefix(j.Head, c.head) {
				t.Errorf("head %q, want it to start %q", j.Head, c.head)
			}
			if !strings.HasPrefix(j.Other, c.other) {
				t.Errorf("other %q, want it to start %q", j.Other, c.other)
			}
			for _, no := range c.notInFigures {
				if strings.Contains(j.Head+j.Other, no) {
					t.Errorf("%q in %q; %q", no, j.Head, j.Other)
				}
			}
		})
	}
}

// withInPlace is allMet with every in-place figure measured, faster than
// the engine's checkpoint, and the checkpoint's own figures missing every
// wake and suspend target.
func withInPlace() targetFigures {
	f := allMet()
	f.TrivialWake, f.TrivialOwn, f.HeavyWake, f.HeavyOwn = 198*ms, 143*ms, 300*ms, 290*ms
	f.TrivialSuspend, f.HeavySuspend, f.FanoutLast = 230*ms, 700*ms, 2100*ms
	f.InPlace = inPlaceFigures{
		TrivialWake: tierFig{Has: true, D: 52 * ms, Own: 48 * ms}, HeavyWake: tierFig{Has: true, D: 110 * ms, Own: 100 * ms},
		TrivialSuspend: tierFig{Has: true, D: 60 * ms}, HeavySuspend: tierFig{Has: true, D: 120 * ms},
		Fanout: tierFig{Has: true, D: 900 * ms}, FanoutBusy: 0.5,
		HasTier: true, TierN: 20, Box: 11 << 20, BoxNoise: 1 << 19, Acc: 10 << 20,
		TierWake: tierFig{Has: true, D: 55 * ms}, TierWakeDeep: tierFig{Has: true, D: 400 * ms},
	}
	return f
}

// The wake, suspend and fan-out targets are judged on the faster tier, in
// place when measured; without it (not measured, failed) they fall back to
// the engine's checkpoint. The containerd half of the trivial wake stays.
func TestEvalTargetsInPlace(t *testing.T) {
	failed := tierFig{D: 10 * ms, Why: "failed in this run (2 wrong answers or errors of wake-trivial-inplace: see Failures)"}
	judgedOn := []string{"trivial-wake", "heavy-wake", "heavy-suspend", "trivial-suspend", "fanout"}
	cases := []struct {
		name   string
		edit   func(*targetFigures)
		notMet []string
	}{
		{"in place meets what the checkpoint misses", func(*targetFigures) {}, nil},
		{"in place not measured: the checkpoint's figures decide", func(f *targetFigures) { f.InPlace = inPlaceFigures{} }, judgedOn},
		{"in place failed: the checkpoint decides", func(f *targetFigures) {
			f.InPlace.TrivialWake, f.InPlace.HeavyWake, f.InPlace.TrivialSuspend, f.InPlace.HeavySuspend, f.InPlace.Fanout = failed, failed, failed, failed, failed
		}, judgedOn},
		{"trivial in place under 150 ms but not below containerd", func(f *targetFigures) { f.ContainerdCold = 50 * ms }, []string{"trivial-wake"}},
		{"trivial in place over 150 ms", func(f *targetFigures) { f.InPlace.TrivialWake.D = 151 * ms }, []string{"trivial-wake"}},
		{"heavy in place over 250 ms", func(f *targetFigures) { f.InPlace.HeavyWake.D = 251 * ms }, []string{"heavy-wake"}},
		{"suspends in place over", func(f *targetFigures) { f.InPlace.TrivialSuspend.D, f.InPlace.HeavySuspend.D = 121*ms, 601*ms },
			[]string{"heavy-suspend", "trivial-suspend"}},
		{"fan-out in place over 2 s", func(f *targetFigures) { f.InPlace.Fanout.D = 2001 * ms }, []string{"fanout"}},
		{"checkpoint faster than in place and met", func(f *targetFigures) {
			f.TrivialWake, f.InPlace.TrivialWake.D = 100*ms, 151*ms
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := withInPlace()
			c.edit(&f)
			for _, x := range evalTargets(f) {
				if !contains(judgedOn, x.Key) {
					continue
				}
				if x.Missing {
					t.Errorf("%s: missing", x.Key)
				}
				if want := !contains(c.notMet, x.Key); x.Met != want {
					t.Errorf("%s: met %v, want %v (%s)", x.Key, x.Met, want, x.Figure)
				}
			}
		})
	}
}

// The figures name the judged tier and its label and state the engine's
// checkpoint beside it; a fallback says so.
func TestInPlaceTargetFigures(t *testing.T) {
	cases := []struct {
		name string
		edit func(*targetFigures)
		key  string
		want []string
	}{
		{"trivial wake in place", func(*targetFigures) {}, "trivial-wake", []string{
			"52.0 ms hibernated in place (label com.openfaas.criu.in-place=true; provider's own wake 48.0 ms) against containerd's direct cold start of 145 ms",
			"; by the engine's checkpoint 198 ms (provider's own wake 143 ms); our cold start through the provider 300 ms"}},
		{"heavy wake in place", func(*targetFigures) {}, "heavy-wake", []string{"110 ms hibernated in place (label com.openfaas.criu.in-place=true", "by the engine's checkpoint 300 ms"}},
		{"heavy suspend in place", func(*targetFigures) {}, "heavy-suspend", []string{"120 ms hibernated in place (label com.openfaas.criu.in-place=true); by the engine's checkpoint 700 ms"}},
		{"trivial suspend in place", func(*targetFigures) {}, "trivial-suspend", []string{"60.0 ms hibernated in place (label com.openfaas.criu.in-place=true); by the engine's checkpoint 230 ms"}},
		{"fan-out in place", func(*targetFigures) {}, "fanout", []string{"last answer 900 ms hibernated in place (label com.openfaas.criu.in-place=true); by the engine's checkpoint 2100 ms; the machine's CPUs 50% busy", "one wake's 48.0 ms x 20 on 2 cores"}},
		{"trivial wake fallback", func(f *targetFigures) { f.InPlace.TrivialWake = tierFig{Why: "not measured (-in-place=false)"} }, "trivial-wake", []string{
			"198 ms by the engine's checkpoint (the default, no label; provider's own wake 143 ms) against containerd's direct cold start of 145 ms",
			"hibernation in place not measured (-in-place=false): judged on the engine's checkpoint, as before the in-place tier"}},
		{"fan-out fallback", func(f *targetFigures) {
			f.InPlace.Fanout = tierFig{Why: "failed in this run (1 wrong answers or errors: see Failures)"}
		}, "fanout", []string{
			"last answer 2100 ms by the engine's checkpoint", "hibernation in place failed in this run", "CPUs 97% busy", "one wake's 143 ms x 20"}},
		{"box target names the in-place tier", func(*targetFigures) {}, "box-memory", []string{
			"hibernated in place (label com.openfaas.criu.in-place=true: container and sandbox kept, under faas-criu-init): 11.00 MiB ± 0.50 MiB of MemAvailable over 20 functions (accounted 10.00 MiB; wake 55.0 ms)",
			"deep reached from in place (deep-after: container and sandbox stopped, the dump kept): wake 400 ms"}},
		{"box target without the in-place tier", func(f *targetFigures) {
			f.InPlace.HasTier, f.InPlace.TierWhy = false, "not measured (deploy tier-ip-00: status 400: label com.openfaas.criu.in-place=true: this engine cannot hibernate functions in place)"
		}, "box-memory", []string{"hibernated in place (label com.openfaas.criu.in-place=true): not measured (deploy tier-ip-00: status 400"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := withInPlace()
			c.edit(&f)
			var x Target
			for _, y := range evalTargets(f) {
				if y.Key == c.key {
					x = y
				}
			}
			for _, w := range c.want {
				if !strings.Contains(x.Figure, w) {
					t.Errorf("figure %q lacks %q", x.Figure, w)
				}
			}
		})
	}
}

// wakeWith is a wake result whose in-place functions were deployed.
func wakeWith(trivialTTFB, heavyTTFB []time.Duration) *wakeResult {
	r := &wakeResult{TTFB: map[string][]time.Duration{}, Suspend: map[string][]time.Duration{}, ProviderWake: map[string][]time.Duration{}, Mem: map[string]*memFigures{}}
	for _, k := range wakeKinds {
		r.Mem[k.Kind] = &memFigures{Running: []int64{1 << 20}, Hibernated: []int64{0}}
		for _, w := range wakeWays {
			name := r.fn(k.Kind, w.Key)
			r.Fns = append(r.Fns, &wakeFn{Name: name, Kind: k.Kind, Strategy: w.Strategy, InPlace: w.InPlace})
			r.TTFB[name] = []time.Duration{200 * ms, 210 * ms, 220 * ms}
			r.Suspend[name] = []time.Duration{300 * ms}
		}
	}
	r.TTFB[r.fn("trivial", wayInPlace)], r.TTFB[r.fn("heavy", wayInPlace)] = trivialTTFB, heavyTTFB
	r.ProviderWake[r.fn("trivial", wayInPlace)] = []time.Duration{40 * ms}
	r.Suspend[r.fn("trivial", wayInPlace)] = []time.Duration{50 * ms, 70 * ms, 60 * ms}
	r.Mem["trivial"].InPlace, r.Mem["trivial"].InPlaceDump = []int64{3 << 19}, []int64{1 << 20}
	return r
}

// The wake phase's in-place figure: the median of its row, or why there is
// none.
func TestWakeInPlaceFig(t *testing.T) {
	cases := []struct {
		name string
		edit func(*wakeResult)
		want tierFig
	}{
		{"measured", func(*wakeResult) {}, tierFig{Has: true, D: 55 * ms, Own: 40 * ms}},
		{"not deployed", func(r *wakeResult) {
			r.Fns = r.Fns[:3]
			r.InPlaceWhy = "not measured (the provider refused the deployment of wake-trivial-inplace: status 400)"
		}, tierFig{Why: "not measured (the provider refused the deployment of wake-trivial-inplace: status 400)"}},
		{"a wrong answer", func(r *wakeResult) { r.failFn(r.fnOf("trivial", wayInPlace), "count") },
			tierFig{Why: "failed in this run (1 wrong answers or errors of wake-trivial-inplace: see Failures)"}},
		{"no sample", func(r *wakeResult) { r.TTFB[r.fn("trivial", wayInPlace)] = nil }, tierFig{Why: "not measured (no sample)"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := wakeWith([]time.Duration{50 * ms, 60 * ms, 55 * ms}, []time.Duration{100 * ms})
			c.edit(r)
			if got := r.inPlaceFig("trivial", r.TTFB, true); got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

// An in-place function's error is a failure that drops the function, not
// the end of the phase; any other function's error still ends it.
func TestTolerate(t *testing.T) {
	boom := errors.New("restore in place: exit status 1")
	cases := []struct {
		name               string
		inPlace            bool
		err                error
		passed, broken     bool
		failures, fnFailed int
	}{
		{"in place, error", true, boom, false, true, 1, 1},
		{"in place, no error", true, nil, false, false, 0, 0},
		{"checkpoint, error", false, boom, true, false, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &wakeResult{}
			f := &wakeFn{Name: "wake-trivial-x", InPlace: c.inPlace}
			got := r.tolerate(f, c.err)
			if (got != nil) != c.passed || f.broken != c.broken || len(r.Failures) != c.failures || f.failed != c.fnFailed {
				t.Errorf("tolerate: err %v broken %v failures %v failed %d", got, f.broken, r.Failures, f.failed)
			}
		})
	}
}

// The wake, suspend, memory sections and the summary show the in-place
// rows when measured, and say why when not.
func TestWakeSectionsInPlace(t *testing.T) {
	cases := []struct {
		name        string
		edit        func(*wakeResult)
		want, wantN []string
	}{
		{"measured", func(*wakeResult) {}, []string{
			"| trivial  | restore in place (checkpoint, in-place=true) | 3 | 55.0 ms",
			"label `com.openfaas.criu.in-place=true`",
			"checkpoint in place p50", "| 60.0 ms",
			"hibernated in place (its container's cgroup: the init)", "| 1.5 MiB",
			"8 functions (two kinds x the ways below)",
		}, nil},
		{"not measured", func(r *wakeResult) {
			var fns []*wakeFn
			for _, f := range r.Fns {
				if !f.InPlace {
					fns = append(fns, f)
				}
			}
			r.Fns, r.InPlaceWhy = fns, "not measured (-in-place=false)"
			delete(r.Suspend, r.fn("trivial", wayInPlace))
			r.Mem["trivial"].InPlace = nil
		}, []string{"Hibernation in place (label `com.openfaas.criu.in-place=true`): not measured (-in-place=false). ", "6 functions"},
			[]string{"restore in place (checkpoint"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := wakeWith([]time.Duration{50 * ms, 60 * ms, 55 * ms}, []time.Duration{100 * ms})
			c.edit(r)
			all := r.WakeSection().Body + r.SuspendSection().Body + r.MemorySection().Body
			for _, w := range c.want {
				if !strings.Contains(all, w) {
					t.Errorf("sections lack %q:\n%s", w, all)
				}
			}
			for _, w := range c.wantN {
				if strings.Contains(all, w) {
					t.Errorf("sections have %q", w)
				}
			}
			sum := (&results{Wake: r}).summary().Markdown()
			if in := strings.Contains(sum, "trivial, restore in place"); in != (c.name == "measured") {
				t.Errorf("summary has the in-place row: %v:\n%s", in, sum)
			}
		})
	}
}

// The fan-out's in-place figure and section: a second set beside the
// first, or why there is none.
func TestFanoutInPlace(t *testing.T) {
	set := func(last time.Duration) *fanoutResult {
		return &fanoutResult{N: 20, Rounds: [][]time.Duration{{100 * ms, last}, {100 * ms, last + 10*ms}}, Busy: []float64{0.9, 0.9}}
	}
	cases := []struct {
		name string
		edit func(*fanoutResult)
		want tierFig
		body []string
	}{
		{"measured", func(*fanoutResult) {}, tierFig{Has: true, D: 905 * ms},
			[]string{"| in place (com.openfaas.criu.in-place=true) | 2 ", "| the engine's checkpoint ", "905 ms in place, 2005 ms by the engine's checkpoint"}},
		{"not measured", func(f *fanoutResult) { f.InPlace, f.InPlaceWhy = nil, "not measured (-in-place=false)" },
			tierFig{Why: "not measured (-in-place=false)"}, []string{"Hibernation in place: not measured (-in-place=false)."}},
		{"failed", func(f *fanoutResult) { f.InPlace.Failures = []string{"fan-out: x"} },
			tierFig{Why: "failed in this run (1 wrong answers or errors: see Failures)"}, nil},
		{"no round", func(f *fanoutResult) { f.InPlace.Rounds, f.InPlace.Busy = nil, nil }, tierFig{Why: "not measured (no round)"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := set(2000 * ms)
			f.InPlace = set(900 * ms)
			c.edit(f)
			if got := f.inPlaceFig(); got != c.want {
				t.Errorf("fig %+v, want %+v", got, c.want)
			}
			body := f.Section().Body
			for _, w := range c.body {
				if !strings.Contains(body, w) {
					t.Errorf("section lacks %q:\n%s", w, body)
				}
			}
		})
	}
}

// The tiers phase's in-place figures: its box memory against its own
// baselines, its wakes, or why they are missing.
func TestTiersInPlaceFigures(t *testing.T) {
	const mi = 1 << 20
	full := func() *tiersResult {
		return &tiersResult{N: 10, BaseBefore: 3, Base: boxMiB(1000, 1000, 1000, 1000, 1000, 1000),
			Kept: boxMiB(960), Deep: boxMiB(1000, 1000, 1000), WakeKept: []time.Duration{150 * ms}, WakeDeep: []time.Duration{500 * ms},
			InPlace:     &tiersResult{N: 20, BaseBefore: 3, Base: boxMiB(1000, 1000, 1000, 1000, 1000, 1000), Kept: boxMiB(780, 780, 780)},
			WakeInPlace: []time.Duration{50 * ms, 60 * ms, 70 * ms}, WakeInPlaceDeep: []time.Duration{400 * ms}}
	}
	cases := []struct {
		name string
		edit func(*tiersResult)
		want inPlaceFigures
		body []string
	}{
		{"measured", func(*tiersResult) {}, inPlaceFigures{HasTier: true, TierN: 20, Box: 11 * mi, TierWake: tierFig{Has: true, D: 60 * ms}, TierWakeDeep: tierFig{Has: true, D: 400 * ms}},
			[]string{"| hibernated in place (container and sandbox kept, under faas-criu-init; 20 functions) | 11.00 MiB ± 0.00 MiB", "**11.00 MiB ± 0.00 MiB per function**",
				"| hibernated in place (container and sandbox kept)                           | 60.0 ms",
				"| deep, reached from in place (container and sandbox stopped, the dump kept) | 400 ms"}},
		{"refused", func(x *tiersResult) {
			x.InPlace, x.WakeInPlace, x.WakeInPlaceDeep, x.InPlaceWhy = nil, nil, nil, "not measured (deploy tier-ip-00: status 400)"
		}, inPlaceFigures{TierWhy: "not measured (deploy tier-ip-00: status 400)", TierWake: tierFig{Why: "not measured (deploy tier-ip-00: status 400)"}, TierWakeDeep: tierFig{Why: "not measured (deploy tier-ip-00: status 400)"}},
			[]string{"Hibernated in place (label `com.openfaas.criu.in-place=true`): not measured (deploy tier-ip-00: status 400)."}},
		{"failed", func(x *tiersResult) {
			x.inPlaceFail(errors.New("tier-ip-03 /count after a sleep in place: \"1\", want 2 (state lost)"))
		},
			inPlaceFigures{TierWhy: "failed in this run (1 wrong answers or errors: see Failures)", TierWake: tierFig{Why: "failed in this run (1 wrong answers or errors: see Failures)"}, TierWakeDeep: tierFig{Why: "failed in this run (1 wrong answers or errors: see Failures)"}},
			[]string{"failed 1 times in this run (see Failures): its figures are not judged"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x := full()
			c.edit(x)
			var got inPlaceFigures
			x.inPlaceFigures(&got)
			got.Acc = 0 // accounted: counted from shims and kernel figures, none here
			if got != c.want {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
			body := x.Section().Body
			for _, w := range c.body {
				if !strings.Contains(body, w) {
					t.Errorf("section lacks %q:\n%s", w, body)
				}
			}
		})
	}
}
