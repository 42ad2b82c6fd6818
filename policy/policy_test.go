package policy

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var defaults = Defaults{Strategy: Checkpoint, ZeroDuration: 10 * time.Minute, PauseAfter: time.Minute, ScaleMax: 20, ScaleFactor: 20, ScaleTarget: 5}

func TestSettingsFor(t *testing.T) {
	cases := []struct {
		name   string
		labels map[string]string
		check  func(Settings) bool
		errs   int
	}{
		{"defaults", nil, func(s Settings) bool {
			return s.Strategy == Checkpoint && !s.ScaleZero && s.Min == 1 && s.Max == 20 && s.Factor == 20 && s.Target == 5
		}, 0},
		{"scale to zero", map[string]string{LabelScaleZero: "true", LabelZeroDuration: "30s"}, func(s Settings) bool {
			return s.ScaleZero && s.ZeroDuration == 30*time.Second
		}, 0},
		{"strategy and pause-after", map[string]string{LabelStrategy: PauseThenCheckpoint, LabelPauseAfter: "5s"}, func(s Settings) bool {
			return s.Strategy == PauseThenCheckpoint && s.PauseAfter == 5*time.Second
		}, 0},
		{"min max factor target", map[string]string{LabelScaleMin: "2", LabelScaleMax: "6", LabelScaleFactor: "50", LabelScaleTarget: "2.5"}, func(s Settings) bool {
			return s.Min == 2 && s.Max == 6 && s.Factor == 50 && s.Target == 2.5
		}, 0},
		{"max below min is raised", map[string]string{LabelScaleMin: "4", LabelScaleMax: "2"}, func(s Settings) bool { return s.Max == 4 }, 0},
		{"in-flight opt-in", map[string]string{LabelHibernateInflight: "true"}, func(s Settings) bool { return s.InflightOptIn }, 0},
		// OpenFaaS booleans: 1, TRUE and yes are true (they read as false).
		{"scale to zero with 1", map[string]string{LabelScaleZero: "1", LabelHibernateInflight: "TRUE"}, func(s Settings) bool {
			return s.ScaleZero && s.InflightOptIn
		}, 0},
		{"scale to zero with yes, off with FALSE", map[string]string{LabelScaleZero: "yes", LabelHibernateInflight: "FALSE"}, func(s Settings) bool {
			return s.ScaleZero && !s.InflightOptIn
		}, 0},
		{"a boolean not understood is an error", map[string]string{LabelScaleZero: "sometimes"}, func(s Settings) bool { return !s.ScaleZero }, 1},
		{"backups", map[string]string{LabelBackupInterval: "2s", LabelBackupsKeep: "5"}, func(s Settings) bool {
			return s.BackupInterval == 2*time.Second && s.BackupsKeep == 5
		}, 0},
		{"bad backups", map[string]string{LabelBackupInterval: "often", LabelBackupsKeep: "0"}, func(s Settings) bool {
			return s.BackupInterval == 0 && s.BackupsKeep == 1
		}, 2},
		{"malformed values keep defaults", map[string]string{LabelStrategy: "freeze", LabelZeroDuration: "soon", LabelScaleMax: "-1", LabelScaleTarget: "0"}, func(s Settings) bool {
			return s.Strategy == Checkpoint && s.ZeroDuration == 10*time.Minute && s.Max == 20 && s.Target == 5
		}, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, errs := SettingsFor(c.labels, defaults)
			if !c.check(s) || len(errs) != c.errs {
				t.Errorf("settings %+v, errors %v (want %d)", s, errs, c.errs)
			}
		})
	}
}

func TestIdleAction(t *testing.T) {
	now := time.Now()
	zero := map[string]string{LabelScaleZero: "true", LabelZeroDuration: "10m", LabelPauseAfter: "1m"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range zero {
			m[a] = b
		}
		m[k] = v
		return m
	}
	cases := []struct {
		name   string
		labels map[string]string
		state  string
		idle   time.Duration
		flight int64
		criu   bool
		want   string
	}{
		{"not opted in", map[string]string{}, Awake, time.Hour, 0, true, ""},
		{"busy recently", zero, Awake, time.Minute, 0, true, ""},
		{"idle long enough", zero, Awake, 11 * time.Minute, 0, true, Checkpoint},
		{"requests in flight", zero, Awake, time.Hour, 1, true, ""},
		{"no CRIU: pause instead", zero, Awake, time.Hour, 0, false, Pause},
		{"pause strategy", with(LabelStrategy, Pause), Awake, 11 * time.Minute, 0, true, Pause},
		{"pause strategy leaves paused", with(LabelStrategy, Pause), Paused, time.Hour, 0, true, ""},
		{"tiers: not yet", with(LabelStrategy, PauseThenCheckpoint), Awake, 30 * time.Second, 0, true, ""},
		{"tiers: pause first", with(LabelStrategy, PauseThenCheckpoint), Awake, 2 * time.Minute, 0, true, Pause},
		{"tiers: then checkpoint", with(LabelStrategy, PauseThenCheckpoint), Paused, 11 * time.Minute, 0, true, Checkpoint},
		{"tiers: paused, not long enough", with(LabelStrategy, PauseThenCheckpoint), Paused, 5 * time.Minute, 0, true, ""},
		{"tiers: straight to checkpoint", with(LabelStrategy, PauseThenCheckpoint), Awake, 11 * time.Minute, 0, true, Checkpoint},
		{"tiers without CRIU stay paused", with(LabelStrategy, PauseThenCheckpoint), Paused, time.Hour, 0, false, ""},
		{"hibernated stays", zero, Hibernated, time.Hour, 0, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := Activity{State: c.state, Replicas: 1, LastUsed: now.Add(-c.idle), Inflight: c.flight, Labels: c.labels}
			if c.state != Awake {
				a.Replicas = 0
			}
			s, _ := SettingsFor(c.labels, defaults)
			if got := idleAction(a, s, now, c.criu); got != c.want {
				t.Errorf("idleAction = %q, want %q", got, c.want)
			}
		})
	}
}

func TestVictims(t *testing.T) {
	now := time.Now()
	mk := func(name, state string, mem int64, ago time.Duration, flight int64, optIn bool) Activity {
		a := Activity{Key: Key{"ns", name}, State: state, Memory: mem, LastUsed: now.Add(-ago), Inflight: flight}
		if optIn {
			a.Labels = map[string]string{LabelHibernateInflight: "true"}
		}
		return a
	}
	acts := []Activity{
		mk("recent", Awake, 30, time.Second, 0, false),
		mk("oldest", Awake, 20, time.Hour, 0, false),
		mk("old-busy", Awake, 50, 50*time.Minute, 2, false),
		mk("old-busy-optin", Awake, 40, 40*time.Minute, 1, true),
		mk("paused", Paused, 25, 30*time.Minute, 0, false),
		mk("asleep", Hibernated, 0, 2*time.Hour, 0, false),
	}
	names := func(vs []Activity) string {
		var n []string
		for _, v := range vs {
			n = append(n, v.Name)
		}
		return strings.Join(n, ",")
	}
	cases := []struct {
		excess int64
		except string
		want   string
	}{
		{0, "", ""},
		{10, "", "oldest"},
		{50, "", "oldest,old-busy-optin"},
		{70, "", "oldest,old-busy-optin,paused"},
		{10, "oldest", "old-busy-optin"},
		{1000, "", "oldest,old-busy-optin,paused,recent"},
	}
	for _, c := range cases {
		if got := names(victims(acts, c.excess, Key{"ns", c.except}, defaults)); got != c.want {
			t.Errorf("victims(%d, except %q) = %s, want %s", c.excess, c.except, got, c.want)
		}
	}
	if u := Usage(acts); u != 30+20+50+40+25 {
		t.Errorf("Usage = %d", u)
	}
}

func TestLoadStep(t *testing.T) {
	start := time.Now()
	labels := map[string]string{LabelScaleMin: "1", LabelScaleMax: "4", LabelScaleFactor: "50"}
	p := New(nil, Config{Defaults: defaults, ScaleWindow: 10 * time.Second, Autoscale: true})
	k := Key{"ns", "f"}
	a := Activity{Key: k, State: Awake, Replicas: 1, Labels: labels}
	s, _ := SettingsFor(labels, defaults)

	var requests uint64
	var steps []int
	for sec := 0; sec <= 60; sec++ {
		if sec < 25 {
			requests += 10 // 10 rps for 25 s, then nothing
		}
		a.Requests = requests
		if n, ok := p.loadStep(a, s, start.Add(time.Duration(sec)*time.Second)); ok {
			steps = append(steps, n)
			a.Replicas = n
		}
	}
	// Up in steps of 2 (50% of 4) to the max, then back down to the min.
	if !slices.Equal(steps, []int{3, 4, 2, 1}) {
		t.Errorf("steps = %v, want [3 4 2 1]", steps)
	}

	// Equal min and max disable it.
	fixed := map[string]string{LabelScaleMin: "2", LabelScaleMax: "2"}
	fs, _ := SettingsFor(fixed, defaults)
	b := Activity{Key: Key{"ns", "fixed"}, State: Awake, Replicas: 2, Labels: fixed}
	for sec := 0; sec < 30; sec++ {
		b.Requests += 100
		if n, ok := p.loadStep(b, fs, start.Add(time.Duration(sec)*time.Second)); ok {
			t.Fatalf("min == max still scaled to %d", n)
		}
	}
}

// fakeFleet records what the policies asked for.
type fakeFleet struct {
	mu    sync.Mutex
	acts  []Activity
	slept []string
}

func (f *fakeFleet) Activity() []Activity {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Activity(nil), f.acts...)
}

func (f *fakeFleet) Sleep(ctx context.Context, k Key, how, reason string, allowInflight bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.acts {
		if f.acts[i].Key == k {
			f.acts[i].State, f.acts[i].Memory = Hibernated, 0
		}
	}
	f.slept = append(f.slept, k.Name+":"+how+":"+reason)
	return nil
}

func (f *fakeFleet) Scale(ctx context.Context, k Key, n int) error     { return nil }
func (f *fakeFleet) Backup(ctx context.Context, k Key, keep int) error { return nil }
func (f *fakeFleet) Wake(ctx context.Context, k Key) error             { return nil }

func TestBudgetHibernatesLeastRecentlyUsed(t *testing.T) {
	now := time.Now()
	f := &fakeFleet{acts: []Activity{
		{Key: Key{"ns", "a"}, State: Awake, Memory: 40, LastUsed: now.Add(-3 * time.Minute)},
		{Key: Key{"ns", "b"}, State: Awake, Memory: 40, LastUsed: now.Add(-2 * time.Minute)},
		{Key: Key{"ns", "c"}, State: Awake, Memory: 40, LastUsed: now.Add(-1 * time.Minute)},
		{Key: Key{"ns", "d"}, State: Hibernated, SleptMemory: 40, LastUsed: now.Add(-time.Hour)},
	}}
	p := New(f, Config{Defaults: defaults, Budget: 100, CanCheckpoint: true})

	p.enforceBudget(context.Background(), f.Activity())
	if got := strings.Join(f.slept, " "); got != "a:checkpoint:memory budget" {
		t.Fatalf("over budget by 20: slept %q", got)
	}
	// Waking d (40 bytes) needs room: b goes, c (more recent) stays.
	p.MakeRoom(context.Background(), Key{"ns", "d"}, 40)
	if got := strings.Join(f.slept, " "); got != "a:checkpoint:memory budget b:checkpoint:memory budget" {
		t.Fatalf("after MakeRoom: slept %q", got)
	}
	if b, used := p.Budget(); b != 100 || used != 40 {
		t.Errorf("Budget() = %d, %d", b, used)
	}

	// Without CRIU nothing can be freed.
	g := &fakeFleet{acts: []Activity{{Key: Key{"ns", "x"}, State: Awake, Memory: 500}}}
	New(g, Config{Defaults: defaults, Budget: 100}).enforceBudget(context.Background(), g.Activity())
	if len(g.slept) != 0 {
		t.Errorf("slept %v without CRIU", g.slept)
	}
}
