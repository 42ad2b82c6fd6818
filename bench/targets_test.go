package main

import (
	"strings"
	"testing"
	"time"
)

// allMet is a run that meets every target of issue 13.
func allMet() targetFigures {
	ms := time.Millisecond
	return targetFigures{
		HasWake: true, TrivialWake: 140 * ms, TrivialCold: 300 * ms, HeavyWake: 240 * ms, TrivialOwn: 130 * ms, HeavyOwn: 230 * ms,
		TrivialSuspend: 100 * ms, HeavySuspend: 500 * ms, TrivialRunning: 1 << 20, TrivialPaused: 1 << 20,
		HasFloor: true, HasContainerd: true, ContainerdCold: 145 * ms, CtrOverhead: 12 * ms,
		TrivialFloor: kindFloor{CRIUDump: 60 * ms, CRIURestore: 70 * ms, CRIUFirstByte: 72 * ms, DockerDump: 400 * ms, DockerRestore: 800 * ms, DockerFirstByte: 801 * ms},
		HasTiers:     true, TiersN: 30, BoxKept: 4 << 20, BoxDeep: 1 << 18, BoxNoise: 1 << 17, BoxDeepRaw: 1 << 18, BoxNoiseRaw: 1 << 17, AccountedKept: 3 << 20, AccountedDeep: 0,
		HasDensity: true, DensityBox: 11, DensityAccounted: 12, DensityCgroup: 9, DensityHib: 99, DensityPause: 9, DensityFactor: 11, PauseBoxPerFn: 26 << 20, PauseAccPerFn: 25 << 20, HibBox: 230 << 20, HibAcc: 210 << 20,
		HasProxy: true, ProxyRPS: 23000, RelayRPS: 25000, DirectRPS: 40000, ProxyP99: 7 * ms, RelayP99: 6 * ms, DirectP99: 6 * ms,
		HasFanout: true, FanoutN: 20, FanoutCores: 2, FanoutLast: 1900 * ms, FanoutBusy: 0.97,
		Scale: scaleFigures{Has: true, N: 1000, RSS: 50 << 20, List: 20 * ms, Restart: 400 * ms, From: "test"},
	}
}

func TestEvalTargets(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name string
		edit func(*targetFigures)
		// notMet and missing list the keys expected so; every other key
		// must be met.
		notMet, missing []string
	}{
		{"all met", func(*targetFigures) {}, nil, nil},
		{"trivial wake over 150 ms", func(f *targetFigures) { f.TrivialWake = 151 * ms }, []string{"trivial-wake"}, nil},
		{"trivial wake not below containerd's direct cold start", func(f *targetFigures) { f.ContainerdCold = 140 * ms }, []string{"trivial-wake"}, nil},
		{"trivial wake over 150 ms, below containerd's", func(f *targetFigures) { f.TrivialWake, f.ContainerdCold = 151*ms, 200*ms }, []string{"trivial-wake"}, nil},
		{"our own cold start does not decide", func(f *targetFigures) { f.TrivialCold = 100 * ms }, nil, nil},
		{"no containerd figure, wake under 150 ms", func(f *targetFigures) { f.HasContainerd = false }, nil, []string{"trivial-wake"}},
		{"no containerd figure, wake over 150 ms", func(f *targetFigures) { f.HasContainerd, f.TrivialWake = false, 151*ms }, []string{"trivial-wake"}, nil},
		{"heavy wake at the limit is met", func(f *targetFigures) { f.HeavyWake = 250 * ms }, nil, nil},
		{"heavy wake over", func(f *targetFigures) { f.HeavyWake = 251 * ms }, []string{"heavy-wake"}, nil},
		{"heavy suspend over", func(f *targetFigures) { f.HeavySuspend = 601 * ms }, []string{"heavy-suspend"}, nil},
		{"trivial suspend over", func(f *targetFigures) { f.TrivialSuspend = 121 * ms }, []string{"trivial-suspend"}, nil},
		{"deep tier over 0.5 MiB", func(f *targetFigures) { f.BoxDeep = 1<<19 + 1 }, []string{"box-memory"}, nil},
		{"deep tier clearly over 0.5 MiB", func(f *targetFigures) { f.BoxDeep, f.BoxDeepRaw = 1<<20, 1<<20 }, []string{"box-memory"}, nil},
		{"box baselines drifted", func(f *targetFigures) { f.BoxNoise = 1 << 20 }, []string{"box-memory"}, nil},
		{"deep under 0.5 MiB but the noise could carry it over", func(f *targetFigures) { f.BoxDeep, f.BoxNoise = 2<<18, 1<<18 }, []string{"box-memory"}, nil},
		{"deep at 0.5 MiB with figure + noise", func(f *targetFigures) { f.BoxDeep, f.BoxNoise = 1<<18, 1<<18 }, nil, nil},
		{"deep negative, little noise", func(f *targetFigures) { f.BoxDeep, f.BoxDeepRaw = -(1 << 18), -(1 << 18) }, nil, nil},
		{"MemAvailable as read clearly over", func(f *targetFigures) { f.BoxDeepRaw = 2 << 20 }, []string{"box-memory"}, nil},
		{"MemAvailable as read too noisy, corrected decides", func(f *targetFigures) { f.BoxDeepRaw, f.BoxNoiseRaw = 1<<20, 10<<20 }, nil, nil},
		{"accounted deep over", func(f *targetFigures) { f.AccountedDeep = 1 << 20 }, []string{"box-memory"}, nil},
		{"density at box level under 10x", func(f *targetFigures) { f.DensityBox = 9.9 }, []string{"density"}, nil},
		{"density accounted under 10x", func(f *targetFigures) { f.DensityAccounted = 9.9 }, []string{"density"}, nil},
		{"proxy under 0.9 of the relay", func(f *targetFigures) { f.ProxyRPS = 22400 }, []string{"proxy-share"}, nil},
		{"p99 added over 2 ms", func(f *targetFigures) { f.ProxyP99 = 8100 * time.Microsecond }, []string{"proxy-p99"}, nil},
		{"fanout over 2 s", func(f *targetFigures) { f.FanoutLast = 2001 * ms }, []string{"fanout"}, nil},
		{"scale RSS over", func(f *targetFigures) { f.Scale.RSS = 61 << 20 }, []string{"scale-rss"}, nil},
		{"scale list over", func(f *targetFigures) { f.Scale.List = 101 * ms }, []string{"scale-list"}, nil},
		{"scale restart over", func(f *targetFigures) { f.Scale.Restart = 5001 * ms }, []string{"scale-restart"}, nil},
		{"scale run smaller than 1,000", func(f *targetFigures) { f.Scale.N = 100 }, nil, []string{"scale-rss", "scale-list", "scale-restart"}},
		{"no wake phase", func(f *targetFigures) { f.HasWake = false }, nil, []string{"trivial-wake", "heavy-wake", "heavy-suspend", "trivial-suspend"}},
		{"no tiers, density, proxy, fanout", func(f *targetFigures) { f.HasTiers, f.HasDensity, f.HasProxy, f.HasFanout = false, false, false, false },
			nil, []string{"box-memory", "density", "proxy-share", "proxy-p99", "fanout"}},
	}
	want := []string{"trivial-wake", "heavy-wake", "heavy-suspend", "trivial-suspend", "box-memory", "density", "proxy-share", "proxy-p99", "fanout", "scale-rss", "scale-list", "scale-restart"}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := allMet()
			c.edit(&f)
			ts := evalTargets(f)
			if len(ts) != len(want) {
				t.Fatalf("%d targets, want %d (every line of issue 13's table)", len(ts), len(want))
			}
			for i, x := range ts {
				if x.Key != want[i] {
					t.Errorf("target %d is %q, want %q", i, x.Key, want[i])
				}
				wantMissing, wantNotMet := contains(c.missing, x.Key), contains(c.notMet, x.Key)
				if x.Missing != wantMissing {
					t.Errorf("%s: missing %v, want %v", x.Key, x.Missing, wantMissing)
				}
				if !x.Missing && x.Met == wantNotMet {
					t.Errorf("%s: met %v, want %v (%s)", x.Key, x.Met, !wantNotMet, x.Figure)
				}
				if !x.Missing && x.Figure == "" {
					t.Errorf("%s: no figure", x.Key)
				}
			}
		})
	}
}

// The drift rule refuses to decide when the noise could carry the figure
// across the limit, and says so.
func TestBoxTargetRefusesWhenNoisy(t *testing.T) {
	const mi = 1 << 20
	cases := []struct {
		name                string
		deep, noise         int64
		met, decided, noisy bool
	}{
		{"quiet, under", mi / 10, mi / 10, true, true, false},
		{"at the limit with its noise", mi / 4, mi / 4, true, true, false},
		{"under, noise carries it over", mi / 4, mi/4 + 1, false, false, true},
		{"over, noise could bring it under", mi * 6 / 10, mi / 5, false, false, true},
		{"over beyond its noise", mi, mi / 5, false, true, false},
		{"last report: -0.28 MiB, 0.69 MiB of drift", -mi * 28 / 100, mi * 69 / 100, false, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			met, decided := boxEstimate{c.deep, c.noise}.decide(limitDeepBox)
			if met != c.met || decided != c.decided {
				t.Errorf("decide: met %v decided %v, want %v %v", met, decided, c.met, c.decided)
			}
			f := allMet()
			f.BoxDeep, f.BoxNoise = c.deep, c.noise
			tg := boxTarget(f)
			if tg.Met != c.met {
				t.Errorf("target met %v, want %v: %s", tg.Met, c.met, tg.Figure)
			}
			if strings.Contains(tg.Figure, "too noisy to decide") != c.noisy {
				t.Errorf("figure says too noisy: %v, want %v: %s", !c.noisy, c.noisy, tg.Figure)
			}
		})
	}
}

// The trivial wake's figure quotes the wake and containerd's direct cold
// start, or says the latter was not measured.
func TestTrivialWakeFigure(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name   string
		edit   func(*targetFigures)
		want   []string
		result string
	}{
		{"measured, met", func(*targetFigures) {}, []string{"140 ms by the engine's checkpoint (the default, no label; provider's own wake 130 ms) against containerd's direct cold start of 145 ms (ctr's own start 12.0 ms of it; network set up beforehand)", "our cold start through the provider 300 ms"}, "met"},
		{"measured, slower than containerd", func(f *targetFigures) { f.TrivialWake = 146 * ms }, []string{"146 ms", "containerd's direct cold start of 145 ms"}, "not met"},
		{"floor not run", func(f *targetFigures) { f.HasContainerd, f.HasFloor = false, false }, []string{"140 ms", "containerd's direct cold start not measured (phase floor)"}, "not measured"},
		{"containerd's measurement failed", func(f *targetFigures) { f.HasContainerd, f.ContainerdFailed = false, true }, []string{"140 ms", "not measured (it failed: see the floor's section)"}, "not measured"},
		{"floor not run, over 150 ms", func(f *targetFigures) { f.HasContainerd, f.TrivialWake = false, 160*ms }, []string{"160 ms", "not measured (phase floor)"}, "not met"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := allMet()
			c.edit(&f)
			x := evalTargets(f)[0]
			for _, w := range c.want {
				if !strings.Contains(x.Figure, w) {
					t.Errorf("figure %q lacks %q", x.Figure, w)
				}
			}
			if got := targetsTable([]Target{x}).Rows[0][1]; got != c.result {
				t.Errorf("result %q, want %q", got, c.result)
			}
		})
	}
}

// A target that is not met shows its floor, measured in the same run.
func TestUnmetTargetsShowTheirFloor(t *testing.T) {
	f := allMet()
	f.TrivialWake, f.HeavySuspend, f.ProxyRPS = 280*time.Millisecond, 1500*time.Millisecond, 17000
	for _, x := range evalTargets(f) {
		switch x.Key {
		case "trivial-wake":
			if !strings.Contains(x.Figure, "CRIU alone restores it in 70.0 ms") || !strings.Contains(x.Figure, "800 ms") {
				t.Errorf("trivial wake: no floor in %q", x.Figure)
			}
		case "heavy-suspend":
			if !strings.Contains(x.Figure, "CRIU alone dumps it in") {
				t.Errorf("heavy suspend: no floor in %q", x.Figure)
			}
		case "proxy-share":
			if !strings.Contains(x.Figure, "0.68 of the relay") || !strings.Contains(x.Figure, "62% of direct") {
				t.Errorf("proxy: %q", x.Figure)
			}
		}
	}
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func TestParseScaleFigures(t *testing.T) {
	at := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	rec := "text\n" + scaleFiguresComment(1000, 49<<20, 16*time.Millisecond, 327*time.Millisecond, at)
	old := "| target at 1,000 functions | figure | verdict |\n| --- | --- | --- |\n" +
		"| provider RSS ≤ 60 MiB | 49.44 MiB (the larger of the two readings) | **met** |\n" +
		"| `GET /system/functions` ≤ 100 ms | 16.3 ms (median) | **met** |\n" +
		"| restart to serving ≤ 5 s | 1.20 s | **met** |\n"
	cases := []struct {
		name, body string
		want       scaleFigures
	}{
		{"recorded", rec, scaleFigures{Has: true, N: 1000, RSS: 49 << 20, List: 16 * time.Millisecond, Restart: 327 * time.Millisecond}},
		{"verdict table of an older section", old, scaleFigures{Has: true, N: 1000, RSS: 51841597, List: 16300 * time.Microsecond, Restart: 1200 * time.Millisecond}},
		{"not run at 1,000", "Not run at 1,000 functions (largest size measured: 100)", scaleFigures{Has: false, N: 1000}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := parseScaleFigures(c.body)
			got.From = ""
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
