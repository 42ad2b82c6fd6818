package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

var defaults = Defaults{Strategy: api.StrategyCheckpoint, ZeroDuration: 10 * time.Minute, PauseAfter: time.Minute, ScaleMax: 20, ScaleFactor: 20, ScaleTarget: 5}

func TestSettingsFor(t *testing.T) {
	cases := []struct {
		name   string
		labels map[string]string
		check  func(Settings) bool
		errs   int
	}{
		{"defaults", nil, func(s Settings) bool {
			return s.Strategy == api.StrategyCheckpoint && !s.ScaleZero && s.Min == 1 && s.Max == 20 && s.Factor == 20 && s.Target == 5
		}, 0},
		{"scale to zero", map[string]string{api.LabelScaleZero: "true", api.LabelZeroDuration: "30s"}, func(s Settings) bool {
			return s.ScaleZero && s.ZeroDuration == 30*time.Second
		}, 0},
		{"strategy and pause-after", map[string]string{api.LabelStrategy: api.StrategyPauseThenCheckpoint, api.LabelPauseAfter: "5s"}, func(s Settings) bool {
			return s.Strategy == api.StrategyPauseThenCheckpoint && s.PauseAfter == 5*time.Second
		}, 0},
		{"min max factor target", map[string]string{api.LabelScaleMin: "2", api.LabelScaleMax: "6", api.LabelScaleFactor: "50", api.LabelScaleTarget: "2.5"}, func(s Settings) bool {
			return s.Min == 2 && s.Max == 6 && s.Factor == 50 && s.Target == 2.5
		}, 0},
		{"max below min is raised", map[string]string{api.LabelScaleMin: "4", api.LabelScaleMax: "2"}, func(s Settings) bool { return s.Max == 4 }, 0},
		{"in-flight opt-in", map[string]string{api.LabelHibernateInflight: "true"}, func(s Settings) bool { return s.InflightOptIn }, 0},
		// OpenFaaS booleans: 1, TRUE and yes are true (they read as false).
		{"scale to zero with 1", map[string]string{api.LabelScaleZero: "1", api.LabelHibernateInflight: "TRUE"}, func(s Settings) bool {
			return s.ScaleZero && s.InflightOptIn
		}, 0},
		{"scale to zero with yes, off with FALSE", map[string]string{api.LabelScaleZero: "yes", api.LabelHibernateInflight: "FALSE"}, func(s Settings) bool {
			return s.ScaleZero && !s.InflightOptIn
		}, 0},
		{"a boolean not understood is an error", map[string]string{api.LabelScaleZero: "sometimes"}, func(s Settings) bool { return !s.ScaleZero }, 1},
		{"backups", map[string]string{api.LabelBackupInterval: "2s", api.LabelBackupsKeep: "5"}, func(s Settings) bool {
			return s.BackupInterval == 2*time.Second && s.BackupsKeep == 5
		}, 0},
		{"bad backups", map[string]string{api.LabelBackupInterval: "often", api.LabelBackupsKeep: "0"}, func(s Settings) bool {
			return s.BackupInterval == 0 && s.BackupsKeep == 1
		}, 2},
		{"malformed values keep defaults", map[string]string{api.LabelStrategy: "freeze", api.LabelZeroDuration: "soon", api.LabelScaleMax: "-1", api.LabelScaleTarget: "0"}, func(s Settings) bool {
			return s.Strategy == api.StrategyCheckpoint && s.ZeroDuration == 10*time.Minute && s.Max == 20 && s.Target == 5
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
	zero := map[string]string{api.LabelScaleZero: "true", api.LabelZeroDuration: "10m", api.LabelPauseAfter: "1m"}
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
		{"not opted in", map[string]string{}, api.StateAwake, time.Hour, 0, true, ""},
		{"busy recently", zero, api.StateAwake, time.Minute, 0, true, ""},
		{"idle long enough", zero, api.StateAwake, 11 * time.Minute, 0, true, api.StrategyCheckpoint},
		{"requests in flight", zero, api.StateAwake, time.Hour, 1, true, ""},
		{"no CRIU: pause instead", zero, api.StateAwake, time.Hour, 0, false, api.StrategyPause},
		{"pause strategy", with(api.LabelStrategy, api.StrategyPause), api.StateAwake, 11 * time.Minute, 0, true, api.StrategyPause},
		{"pause strategy leaves paused", with(api.LabelStrategy, api.StrategyPause), api.StatePaused, time.Hour, 0, true, ""},
		{"tiers: not yet", with(api.LabelStrategy, api.StrategyPauseThenCheckpoint), api.StateAwake, 30 * time.Second, 0, true, ""},
		{"tiers: pause first", with(api.LabelStrategy, api.StrategyPauseThenCheckpoint), api.StateAwake, 2 * time.Minute, 0, true, api.StrategyPause},
		{"tiers: then checkpoint", with(api.LabelStrategy, api.StrategyPauseThenCheckpoint), api.StatePaused, 11 * time.Minute, 0, true, api.StrategyCheckpoint},
		{"tiers: paused, not long enough", with(api.LabelStrategy, api.StrategyPauseThenCheckpoint), api.StatePaused, 5 * time.Minute, 0, true, ""},
		{"tiers: straight to checkpoint", with(api.LabelStrategy, api.StrategyPauseThenCheckpoint), api.StateAwake, 11 * time.Minute, 0, true, api.StrategyCheckpoint},
		{"tiers without CRIU stay paused", with(api.LabelStrategy, api.StrategyPauseThenCheckpoint), api.StatePaused, time.Hour, 0, false, ""},
		{"hibernated stays", zero, api.StateHibernated, time.Hour, 0, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := Activity{State: c.state, Replicas: 1, LastUsed: now.Add(-c.idle), Inflight: c.flight, Labels: c.labels}
			if c.state != api.StateAwake {
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
		a := Activity{Key: api.Key{Namespace: "ns", Name: name}, State: state, Memory: mem, LastUsed: now.Add(-ago), Inflight: flight}
		if optIn {
			a.Labels = map[string]string{api.LabelHibernateInflight: "true"}
		}
		return a
	}
	acts := []Activity{
		mk("recent", api.StateAwake, 30, time.Second, 0, false),
		mk("oldest", api.StateAwake, 20, time.Hour, 0, false),
		mk("old-busy", api.StateAwake, 50, 50*time.Minute, 2, false),
		mk("old-busy-optin", api.StateAwake, 40, 40*time.Minute, 1, true),
		mk("paused", api.StatePaused, 25, 30*time.Minute, 0, false),
		mk("asleep", api.StateHibernated, 0, 2*time.Hour, 0, false),
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
		if got := names(victims(acts, c.excess, api.Key{Namespace: "ns", Name: c.except}, defaults)); got != c.want {
			t.Errorf("victims(%d, except %q) = %s, want %s", c.excess, c.except, got, c.want)
		}
	}
	if u := Usage(acts); u != 30+20+50+40+25 {
		t.Errorf("Usage = %d", u)
	}
}

func TestLoadStep(t *testing.T) {
	start := time.Now()
	labels := map[string]string{api.LabelScaleMin: "1", api.LabelScaleMax: "4", api.LabelScaleFactor: "50"}
	p := New(nil, Config{Defaults: defaults, ScaleWindow: 10 * time.Second, Autoscale: true})
	k := api.Key{Namespace: "ns", Name: "f"}
	a := Activity{Key: k, State: api.StateAwake, Replicas: 1, Labels: labels}
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
	fixed := map[string]string{api.LabelScaleMin: "2", api.LabelScaleMax: "2"}
	fs, _ := SettingsFor(fixed, defaults)
	b := Activity{Key: api.Key{Namespace: "ns", Name: "fixed"}, State: api.StateAwake, Replicas: 2, Labels: fixed}
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
	busy  map[string]bool // names whose Sleep answers ErrBusy
	// busyFor: names whose Sleep answers ErrBusy that many more times.
	busyFor map[string]int
}

func (f *fakeFleet) Activity() []Activity {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Activity(nil), f.acts...)
}

func (f *fakeFleet) Sleep(ctx context.Context, k api.Key, how, reason string, allowInflight bool, usedAt time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.busy[k.Name] {
		return fmt.Errorf("%w: its operation lock is held", ErrBusy)
	}
	if f.busyFor[k.Name] > 0 {
		f.busyFor[k.Name]--
		return fmt.Errorf("%w: its operation lock is held", ErrBusy)
	}
	for i := range f.acts {
		if f.acts[i].Key == k {
			f.acts[i].State, f.acts[i].Memory = api.StateHibernated, 0
		}
	}
	f.slept = append(f.slept, k.Name+":"+how+":"+reason)
	return nil
}

func (f *fakeFleet) Scale(ctx context.Context, k api.Key, n int) error     { return nil }
func (f *fakeFleet) Backup(ctx context.Context, k api.Key, keep int) error { return nil }
func (f *fakeFleet) Wake(ctx context.Context, k api.Key) error             { return nil }

func TestBudgetHibernatesLeastRecentlyUsed(t *testing.T) {
	now := time.Now()
	f := &fakeFleet{acts: []Activity{
		{Key: api.Key{Namespace: "ns", Name: "a"}, State: api.StateAwake, Memory: 40, LastUsed: now.Add(-3 * time.Minute)},
		{Key: api.Key{Namespace: "ns", Name: "b"}, State: api.StateAwake, Memory: 40, LastUsed: now.Add(-2 * time.Minute)},
		{Key: api.Key{Namespace: "ns", Name: "c"}, State: api.StateAwake, Memory: 40, LastUsed: now.Add(-1 * time.Minute)},
		{Key: api.Key{Namespace: "ns", Name: "d"}, State: api.StateHibernated, SleptMemory: 40, LastUsed: now.Add(-time.Hour)},
	}}
	p := New(f, Config{Defaults: defaults, Budget: 100, CanCheckpoint: true})

	p.enforceBudget(context.Background(), f.Activity())
	if got := strings.Join(f.slept, " "); got != "a:checkpoint:memory budget" {
		t.Fatalf("over budget by 20: slept %q", got)
	}
	// Waking d (40 bytes) needs room: b goes, c (more recent) stays.
	p.MakeRoom(context.Background(), api.Key{Namespace: "ns", Name: "d"}, 40)
	if got := strings.Join(f.slept, " "); got != "a:checkpoint:memory budget b:checkpoint:memory budget" {
		t.Fatalf("after MakeRoom: slept %q", got)
	}
	if b, used := p.Budget(); b != 100 || used != 40 {
		t.Errorf("Budget() = %d, %d", b, used)
	}

	// Without CRIU nothing can be freed.
	g := &fakeFleet{acts: []Activity{{Key: api.Key{Namespace: "ns", Name: "x"}, State: api.StateAwake, Memory: 500}}}
	New(g, Config{Defaults: defaults, Budget: 100}).enforceBudget(context.Background(), g.Activity())
	if len(g.slept) != 0 {
		t.Errorf("slept %v without CRIU", g.slept)
	}
}

// TestMakeRoomPassesOverBusyFunctions: the least recently used function is
// busy with another operation (its operation lock held), so it cannot go to
// sleep; the next one must, or the wake goes ahead over the budget (seen in
// TestMemoryBudget: three functions awake under a budget for two whenever
// the victim was still finishing its own wake).
func TestMakeRoomPassesOverBusyFunctions(t *testing.T) {
	now := time.Now()
	f := &fakeFleet{busy: map[string]bool{"a": true}, acts: []Activity{
		{Key: api.Key{Namespace: "ns", Name: "a"}, State: api.StateAwake, Memory: 40, LastUsed: now.Add(-3 * time.Minute)},
		{Key: api.Key{Namespace: "ns", Name: "b"}, State: api.StateAwake, Memory: 40, LastUsed: now.Add(-2 * time.Minute)},
		{Key: api.Key{Namespace: "ns", Name: "c"}, State: api.StateAwake, Memory: 10, LastUsed: now.Add(-1 * time.Minute)},
		{Key: api.Key{Namespace: "ns", Name: "d"}, State: api.StateHibernated, SleptMemory: 40, LastUsed: now.Add(-time.Hour)},
	}}
	p := New(f, Config{Defaults: defaults, Budget: 100, CanCheckpoint: true})
	// 90 used + 40 needed: 30 over. a is busy, so b goes; c stays.
	p.MakeRoom(context.Background(), api.Key{Namespace: "ns", Name: "d"}, 40)
	if got := strings.Join(f.slept, " "); got != "b:checkpoint:memory budget" {
		t.Fatalf("a busy: slept %q, want b only", got)
	}
	if _, used := p.Budget(); used+40 > 100 {
		t.Errorf("after MakeRoom %d used + 40 needed is over the budget of 100", used)
	}
}

// TestMakeRoomWaitsForBusyFunctions: the functions that could make room for
// a wake are busy with other operations (their operation locks held: the
// tail of their own wake, a reconciliation). Making room tries them again
// until one is free, within RoomWait, rather than letting the wake go over
// the budget at once (seen in TestMemoryBudget); past RoomWait, or with no
// candidate at all, the wake goes ahead over the budget without waiting
// longer (a wake is never failed for the budget).
func TestMakeRoomWaitsForBusyFunctions(t *testing.T) {
	const wait = 400 * time.Millisecond
	cases := []struct {
		name     string
		busy     map[string]bool // busy throughout
		busyFor  map[string]int  // busy for that many attempts
		inflight bool            // a and b serve requests: no candidate
		slept    string
		fits     bool
		min, max time.Duration // how long MakeRoom took
	}{
		{name: "none busy", slept: "a", fits: true, max: wait / 4},
		{name: "least recently used busy, the next free", busy: map[string]bool{"a": true}, slept: "b", fits: true, max: wait / 4},
		{name: "both busy, then the least recently used free", busy: map[string]bool{"b": true}, busyFor: map[string]int{"a": 3}, slept: "a", fits: true, min: 3 * roomPoll, max: wait},
		{name: "both busy, then the other free", busy: map[string]bool{"a": true}, busyFor: map[string]int{"b": 2}, slept: "b", fits: true, min: 2 * roomPoll, max: wait},
		{name: "both busy beyond the wait", busy: map[string]bool{"a": true, "b": true}, slept: "", fits: false, min: wait, max: 2 * wait},
		{name: "no candidate", inflight: true, slept: "", fits: false, max: wait / 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			now := time.Now()
			var inflight int64
			if c.inflight {
				inflight = 1
			}
			f := &fakeFleet{busy: c.busy, busyFor: c.busyFor, acts: []Activity{
				{Key: api.Key{Namespace: "ns", Name: "a"}, State: api.StateAwake, Memory: 40, Inflight: inflight, LastUsed: now.Add(-2 * time.Minute)},
				{Key: api.Key{Namespace: "ns", Name: "b"}, State: api.StateAwake, Memory: 40, Inflight: inflight, LastUsed: now.Add(-1 * time.Minute)},
				{Key: api.Key{Namespace: "ns", Name: "c"}, State: api.StateHibernated, SleptMemory: 40, LastUsed: now.Add(-time.Hour)},
			}}
			p := New(f, Config{Defaults: defaults, Budget: 100, CanCheckpoint: true, RoomWait: wait})
			start := time.Now()
			// 80 used + 40 needed: 20 over, one of a and b must go.
			p.MakeRoom(context.Background(), api.Key{Namespace: "ns", Name: "c"}, 40)
			took := time.Since(start)
			var slept []string
			for _, s := range f.slept {
				slept = append(slept, strings.TrimSuffix(s, ":checkpoint:memory budget"))
			}
			if got := strings.Join(slept, " "); got != c.slept {
				t.Errorf("slept %q, want %q", got, c.slept)
			}
			if _, used := p.Budget(); (used+40 <= 100) != c.fits {
				t.Errorf("after MakeRoom %d used + 40 needed, budget 100: fits %v, want %v", used, used+40 <= 100, c.fits)
			}
			if took < c.min || took > c.max {
				t.Errorf("MakeRoom took %s, want %s to %s", took, c.min, c.max)
			}
		})
	}
}

// TestMakeRoomWaitsWithoutTheBudgetLock: while a wake waits for a busy
// candidate, the budget's lock is free: another wake's room, or the budget
// policy, is not held up behind it (a busy candidate may itself be waiting
// to make room).
func TestMakeRoomWaitsWithoutTheBudgetLock(t *testing.T) {
	now := time.Now()
	f := &fakeFleet{busy: map[string]bool{"a": true}, acts: []Activity{
		{Key: api.Key{Namespace: "ns", Name: "a"}, State: api.StateAwake, Memory: 80, LastUsed: now.Add(-2 * time.Minute)},
		{Key: api.Key{Namespace: "ns", Name: "c"}, State: api.StateHibernated, SleptMemory: 40, LastUsed: now.Add(-time.Hour)},
	}}
	p := New(f, Config{Defaults: defaults, Budget: 100, CanCheckpoint: true, RoomWait: time.Second})
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.MakeRoom(context.Background(), api.Key{Namespace: "ns", Name: "c"}, 40)
	}()
	time.Sleep(3 * roomPoll) // waiting for a by now
	start := time.Now()
	p.MakeRoom(context.Background(), api.Key{Namespace: "ns", Name: "d"}, 10) // fits: nothing to do
	if took := time.Since(start); took > 300*time.Millisecond {
		t.Errorf("a MakeRoom with room to spare took %s while another waited for a busy function", took)
	}
	select {
	case <-done:
		t.Fatal("the waiting MakeRoom returned early: a is busy throughout")
	default:
	}
	<-done
}
