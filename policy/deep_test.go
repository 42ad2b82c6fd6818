package policy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// Deepen records the deep step among the fake fleet's sleeps.
func (f *fakeFleet) Deepen(ctx context.Context, k api.Key) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.acts {
		if f.acts[i].Key == k {
			f.acts[i].Deep = true
		}
	}
	f.slept = append(f.slept, k.Name+":deep")
	return nil
}

func TestDeepAfterLabel(t *testing.T) {
	d := defaults
	d.DeepAfter = 30 * time.Minute
	cases := []struct {
		value string // "-": label absent
		want  time.Duration
		bad   bool
	}{
		{"-", 30 * time.Minute, false},
		{"10m", 10 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"0", 0, false},
		{"never", 0, false},
		{"soon", 30 * time.Minute, true},
		{"10", 30 * time.Minute, true}, // a number without a unit is ambiguous
		{"-5m", 30 * time.Minute, true},
		{"", 30 * time.Minute, true},
	}
	for _, c := range cases {
		labels := map[string]string{}
		if c.value != "-" {
			labels[api.LabelDeepAfter] = c.value
		}
		s, errs := SettingsFor(labels, d)
		if s.DeepAfter != c.want {
			t.Errorf("deep-after %q: %s, want %s", c.value, s.DeepAfter, c.want)
		}
		if bad := len(errs) > 0; bad != c.bad {
			t.Errorf("deep-after %q: errors %v, want bad=%v", c.value, errs, c.bad)
		}
		if c.bad && !strings.Contains(errs[0].Error(), api.LabelDeepAfter) {
			t.Errorf("deep-after %q: error %q does not name the label", c.value, errs[0])
		}
	}
}

func TestDeepAction(t *testing.T) {
	now := time.Now()
	s := Settings{DeepAfter: 10 * time.Minute}
	never := Settings{}
	cases := []struct {
		name string
		a    Activity
		s    Settings
		want bool
	}{
		{"hibernated long enough", Activity{State: api.StateHibernated, HibernatedAt: now.Add(-11 * time.Minute)}, s, true},
		{"exactly deep-after", Activity{State: api.StateHibernated, HibernatedAt: now.Add(-10 * time.Minute)}, s, true},
		{"hibernated too recently", Activity{State: api.StateHibernated, HibernatedAt: now.Add(-9 * time.Minute)}, s, false},
		{"already deep", Activity{State: api.StateHibernated, Deep: true, HibernatedAt: now.Add(-time.Hour)}, s, false},
		{"deep-after never", Activity{State: api.StateHibernated, HibernatedAt: now.Add(-1000 * time.Hour)}, never, false},
		{"requests waiting on its wake", Activity{State: api.StateHibernated, Inflight: 1, HibernatedAt: now.Add(-time.Hour)}, s, false},
		{"awake", Activity{State: api.StateAwake, HibernatedAt: now.Add(-time.Hour)}, s, false},
		{"paused: its memory is held, a sandbox stop frees nothing", Activity{State: api.StatePaused, HibernatedAt: now.Add(-time.Hour)}, s, false},
		{"hibernation time unknown", Activity{State: api.StateHibernated}, s, false},
	}
	for _, c := range cases {
		if got := deepAction(c.a, c.s, now); got != c.want {
			t.Errorf("%s: deep %v, want %v", c.name, got, c.want)
		}
	}
}

// The policies' tick takes a function hibernated for deep-after to the deep
// tier, once, and leaves the others (label never, too recent) alone.
func TestTickDeepens(t *testing.T) {
	now := time.Now()
	d := defaults
	d.DeepAfter = 30 * time.Minute
	f := &fakeFleet{acts: []Activity{
		{Key: api.Key{Namespace: "ns", Name: "old"}, State: api.StateHibernated, HibernatedAt: now.Add(-31 * time.Minute)},
		{Key: api.Key{Namespace: "ns", Name: "labelled"}, State: api.StateHibernated, HibernatedAt: now.Add(-2 * time.Minute), Labels: map[string]string{api.LabelDeepAfter: "1m"}},
		{Key: api.Key{Namespace: "ns", Name: "never"}, State: api.StateHibernated, HibernatedAt: now.Add(-time.Hour), Labels: map[string]string{api.LabelDeepAfter: "never"}},
		{Key: api.Key{Namespace: "ns", Name: "recent"}, State: api.StateHibernated, HibernatedAt: now.Add(-time.Minute)},
	}}
	p := New(f, Config{Defaults: d, CanCheckpoint: true})
	p.now = func() time.Time { return now }
	for range 2 {
		p.tick(context.Background())
		waitIdle(t, p)
	}
	f.mu.Lock()
	got := append([]string(nil), f.slept...)
	f.mu.Unlock()
	want := map[string]bool{"old:deep": true, "labelled:deep": true}
	if len(got) != len(want) || !want[got[0]] || !want[got[1]] || got[0] == got[1] {
		t.Fatalf("deepened %q, want old and labelled, once each", got)
	}
}

// waitIdle waits for the policies' actions under way to end.
func waitIdle(t *testing.T, p *Policies) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		n := len(p.busy)
		p.mu.Unlock()
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("policy actions still under way after 5s")
}
