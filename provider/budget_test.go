package provider

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/policy"
)

// budgetProvider is a provider over the fake engine with the memory budget
// as its admission: a budget of 100 MiB, every running replica using 40
// MiB, and making room waiting at most roomWait for busy functions.
func budgetProvider(t *testing.T, roomWait time.Duration) (*Provider, *fakeEngine, *policy.Policies) {
	t.Helper()
	const perReplica = 40 << 20
	old := memoryOf
	memoryOf = func(string) (int64, bool) { return perReplica, true }
	t.Cleanup(func() { memoryOf = old })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	eng := newFakeEngine(t, port)
	eng.addImage(testImage)
	var pol *policy.Policies
	p := startTestProvider(t, eng, t.TempDir(), WithAdmission(func(p *Provider) Admission {
		pol = policy.New(p.Fleet(), policy.Config{Budget: 100 << 20, CanCheckpoint: true, RoomWait: roomWait})
		return pol
	}))
	return p, eng, pol
}

// TestWakeWaitsForBusyFunctionsToMakeRoom: c wakes under a budget that
// fits two functions while a and b, the only ones it can hibernate, are
// busy with other operations (their operation locks held, as by the tail of
// a wake whose replica answered before the engine's start call returned, or
// by a reconciliation). The wake waits for one to be free and hibernates it
// before it restores c: the budget is kept and nothing fails. Held beyond
// the wait, the wake goes ahead over the budget: it is not failed for it.
func TestWakeWaitsForBusyFunctionsToMakeRoom(t *testing.T) {
	const roomWait = 400 * time.Millisecond
	cases := []struct {
		name    string
		holdA   time.Duration // how long a's operation lock stays held (0: not held)
		holdB   time.Duration
		asleep  string // the function hibernated to make room ("": none)
		minTook time.Duration
		maxTook time.Duration
	}{
		// The bounds on took say whether the wake waited: the state of a
		// and b afterwards says for what.
		{name: "none busy", asleep: "a", maxTook: time.Second},
		{name: "a busy, b free", holdA: 1500 * time.Millisecond, asleep: "b", maxTook: time.Second},
		{name: "both busy, a free soon", holdA: 200 * time.Millisecond, holdB: 1500 * time.Millisecond, asleep: "a", minTook: 200 * time.Millisecond, maxTook: 3 * time.Second},
		{name: "both busy, b free soon", holdA: 1500 * time.Millisecond, holdB: 200 * time.Millisecond, asleep: "b", minTook: 200 * time.Millisecond, maxTook: 3 * time.Second},
		{name: "both busy beyond the wait", holdA: 1500 * time.Millisecond, holdB: 1500 * time.Millisecond, asleep: "", minTook: roomWait, maxTook: 3 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _, pol := budgetProvider(t, roomWait)
			deploy(t, p, "c", nil)
			mustInvoke(t, p, "c", 1)
			if err := p.Scale(context.Background(), "", "c", 0); err != nil {
				t.Fatal(err)
			}
			deploy(t, p, "a", nil)
			mustInvoke(t, p, "a", 1) // a is the least recently used
			deploy(t, p, "b", nil)
			mustInvoke(t, p, "b", 1)
			if budget, used := pol.Budget(); used != 80<<20 || budget != 100<<20 {
				t.Fatalf("budget %d, used %d; want 100 MiB, 80 MiB", budget, used)
			}
			hold := func(name string, d time.Duration) {
				if d == 0 {
					return
				}
				fn, err := p.lookup("", name)
				if err != nil {
					t.Fatal(err)
				}
				fn.opMu.Lock() // another operation on it
				time.AfterFunc(d, fn.opMu.Unlock)
			}
			hold("a", c.holdA)
			hold("b", c.holdB)

			start := time.Now()
			mustInvoke(t, p, "c", 2) // wakes c with its state: never failed
			took := time.Since(start)
			if took < c.minTook || took > c.maxTook {
				t.Errorf("the wake took %s, want %s to %s", took, c.minTook, c.maxTook)
			}
			time.Sleep(max(c.holdA, c.holdB) + 50*time.Millisecond) // the holds end
			for _, name := range []string{"a", "b"} {
				want := api.StateAwake
				if name == c.asleep {
					want = api.StateHibernated
				}
				if got := state(t, p, name); got != want {
					t.Errorf("%s is %s, want %s", name, got, want)
				}
			}
			_, used := pol.Budget()
			if over := used > 100<<20; over != (c.asleep == "") {
				t.Errorf("%d MiB used of a budget of 100 MiB after the wake; over %v, want %v", used>>20, over, c.asleep == "")
			}
		})
	}
}

// TestWakeWaitsForAFunctionFinishingItsWake is the case seen in
// TestMemoryBudget: b has just woken (its replica answered and takes
// requests, the engine's start call still runs, so its operation lock is
// held), a is in a short operation (a reconciliation), and c must wake
// under a budget for two. c's wake waits for a and hibernates it: usage
// never goes over the budget.
func TestWakeWaitsForAFunctionFinishingItsWake(t *testing.T) {
	p, eng, pol := budgetProvider(t, 2*time.Second)
	for _, name := range []string{"c", "b"} {
		deploy(t, p, name, nil)
		mustInvoke(t, p, name, 1)
		if err := p.Scale(context.Background(), "", name, 0); err != nil {
			t.Fatal(err)
		}
	}
	deploy(t, p, "a", nil)
	mustInvoke(t, p, "a", 1)

	release := eng.holdRestores(nil, false)
	defer release()
	mustInvoke(t, p, "b", 2) // answered early: b's start call still runs
	fb, _ := p.lookup("", "b")
	if fb.opMu.TryLock() {
		fb.opMu.Unlock()
		t.Fatal("b's operation lock is free while its start call runs")
	}
	fa, _ := p.lookup("", "a")
	fa.opMu.Lock() // a reconciliation, say
	time.AfterFunc(200*time.Millisecond, fa.opMu.Unlock)

	start := time.Now()
	mustInvoke(t, p, "c", 2)
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("c woke in %s, before a was free", took)
	}
	if got := state(t, p, "a"); got != api.StateHibernated {
		t.Errorf("a is %s, want hibernated to make room for c", got)
	}
	if _, used := pol.Budget(); used > 100<<20 {
		t.Errorf("%d MiB used of a budget of 100 MiB after c's wake", used>>20)
	}
	release()
	mustInvoke(t, p, "b", 3)
}
