package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
)

const stateAnnotation = "com.openfaas.criu.state"

// counts invokes /count n times and returns the answers.
func counts(p *Provider, name string, n int) []int {
	p.t.Helper()
	var out []int
	for i := 0; i < n; i++ {
		v, err := strconv.Atoi(p.MustInvoke(name, "/count"))
		if err != nil {
			p.t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

func TestHibernateAndWake(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("counter"))
	if got := counts(p, "counter", 3); !slices.Equal(got, []int{1, 2, 3}) {
		t.Fatalf("counts = %v", got)
	}
	running := p.Containers("counter")[0]

	p.Scale("counter", 0)

	// The container is not running and its memory cgroup is gone.
	c := p.Containers("counter")
	if len(c) != 1 || c[0].State == "running" {
		t.Fatalf("containers after hibernation: %+v", c)
	}
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/memory/docker", running.ID)); !os.IsNotExist(err) {
		t.Errorf("memory cgroup of the hibernated container still exists (%v)", err)
	}
	st := p.Status("counter")
	ann := *st.Annotations
	if st.Replicas != 0 || st.AvailableReplicas != 0 || ann[stateAnnotation] != "hibernated" {
		t.Fatalf("status after hibernation: replicas %d available %d annotations %v", st.Replicas, st.AvailableReplicas, ann)
	}
	size, _ := strconv.ParseInt(ann["com.openfaas.criu.checkpoint-bytes"], 10, 64)
	taken, err := time.Parse(time.RFC3339Nano, ann["com.openfaas.criu.checkpoint-at"])
	if size <= 0 || size > 5<<20 || err != nil || time.Since(taken) > time.Minute {
		t.Errorf("checkpoint size %d at %v (%v)", size, taken, err)
	}
	if ann["com.openfaas.criu.pages-written"] == "" || ann["com.openfaas.criu.freezing-ms"] == "" {
		t.Errorf("no CRIU dump statistics in %v", ann)
	}
	dirs := p.CheckpointDirs("counter")
	if len(dirs) != 1 {
		t.Fatalf("checkpoint directories: %v", dirs)
	}

	// The next request wakes it, with its memory.
	if got := counts(p, "counter", 1); got[0] != 4 {
		t.Fatalf("after wake count = %v, want 4", got)
	}
	st = p.Status("counter")
	if st.Replicas != 1 || st.AvailableReplicas != 1 || (*st.Annotations)[stateAnnotation] != "awake" ||
		!strings.HasPrefix((*st.Annotations)["com.openfaas.criu.last-wake"], "checkpoint") {
		t.Errorf("status after wake: %+v", st)
	}

	// Hibernated again: still only one checkpoint for the replica.
	p.Scale("counter", 0)
	if dirs := p.CheckpointDirs("counter"); len(dirs) != 1 {
		t.Errorf("after a second hibernation, checkpoints: %v", dirs)
	}
	if got := counts(p, "counter", 1); got[0] != 5 {
		t.Errorf("after second wake count = %v, want 5", got)
	}
	for _, series := range []string{
		`faas_criu_sleep_seconds_count{how="checkpoint"}`,
		`faas_criu_wake_seconds_count{how="restore"}`,
		"faas_criu_restore_seconds_count",
		"faas_criu_checkpoint_bytes_count",
		"faas_criu_criu_freezing_seconds_count",
	} {
		if v := p.Metric(series); v != 2 {
			t.Errorf("%s = %v, want 2", series, v)
		}
	}

	// Deleting the function deletes its checkpoints.
	p.Scale("counter", 0)
	dirs = p.CheckpointDirs("counter")
	p.Delete("counter")
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("checkpoint %s left after delete", d)
		}
	}
}

func TestConcurrentRequestsShareOneRestore(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("crowd"))
	counts(p, "crowd", 2)
	p.Scale("crowd", 0)
	before := p.Metric("faas_criu_restore_seconds_count")

	var wg sync.WaitGroup
	results := make([]string, 20)
	codes := make([]int, 20)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i], results[i] = p.Invoke("crowd", "/count")
		}(i)
	}
	wg.Wait()
	var got []int
	for i := range results {
		if codes[i] != 200 {
			t.Errorf("request %d: %d %s", i, codes[i], results[i])
		}
		n, _ := strconv.Atoi(results[i])
		got = append(got, n)
	}
	slices.Sort(got)
	want := make([]int, 20)
	for i := range want {
		want[i] = i + 3
	}
	if !slices.Equal(got, want) {
		t.Errorf("answers = %v, want 3..22 (state kept, one replica)", got)
	}
	if d := p.Metric("faas_criu_restore_seconds_count") - before; d != 1 {
		t.Errorf("%v restores for 20 concurrent requests, want 1", d)
	}
	p.Delete("crowd")
}

func TestScaleUpFromHibernation(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("gw"))
	counts(p, "gw", 3)
	p.Scale("gw", 0)

	// The OpenFaaS gateway's scale from zero: scale to 1, poll until available.
	p.Scale("gw", 1)
	eventually(t, 10*time.Second, func() string {
		if st := p.Status("gw"); st.AvailableReplicas == 0 {
			return "no replica available yet"
		}
		return ""
	})
	if got := counts(p, "gw", 1); got[0] != 4 {
		t.Fatalf("after the gateway's scale from zero: %v, want 4", got)
	}

	// From zero to three: the hibernated replica is restored, the others
	// start fresh.
	p.Scale("gw", 0)
	p.Scale("gw", 3)
	p.WaitAvailable("gw", 3)
	// Nine requests, three per replica: the restored one continues from 5.
	got := counts(p, "gw", 9)
	slices.Sort(got)
	if want := []int{1, 1, 2, 2, 3, 3, 5, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("answers across 3 replicas = %v, want %v: one replica continuing, two fresh", got, want)
	}
	p.Delete("gw")
}

func TestWakeTimeout(t *testing.T) {
	p := StartProvider(t, "--wake-timeout", "1ms")
	p.Deploy(Fixture("slowpoke"))
	p.WaitAvailable("slowpoke", 1)
	counts(p, "slowpoke", 2)
	p.Scale("slowpoke", 0)

	code, body := p.Invoke("slowpoke", "/count")
	if code != http.StatusGatewayTimeout || !strings.Contains(body, "did not become ready within 1ms") {
		t.Fatalf("invoke with a 1ms wake limit: %d %q", code, body)
	}
	// The wake goes on; the function is soon there, with its state.
	eventually(t, 10*time.Second, func() string {
		if code, body := p.Invoke("slowpoke", "/count"); code != 200 || body != "3" {
			return fmt.Sprintf("%d %q", code, body)
		}
		return ""
	})
	p.Delete("slowpoke")
}

func TestIdleFunctionHibernatesByItself(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("sleepy")
	dep.Labels = &map[string]string{"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "2s"}
	p.Deploy(dep)
	counts(p, "sleepy", 2)
	p.WaitState("sleepy", "hibernated", 10*time.Second)
	if len(p.CheckpointDirs("sleepy")) != 1 {
		t.Errorf("no checkpoint after idle hibernation")
	}
	if got := counts(p, "sleepy", 1); got[0] != 3 {
		t.Errorf("after idle hibernation: %v, want 3", got)
	}

	// Never while a request is in flight.
	done := make(chan string)
	go func() { _, b := p.Invoke("sleepy", "/sleep?ms=4000"); done <- b }()
	time.Sleep(3 * time.Second)
	if s := p.Annotation("sleepy", stateAnnotation); s != "awake" {
		t.Errorf("state %s with a request in flight, want awake", s)
	}
	if b := <-done; b != "slept 4000" {
		t.Errorf("long request = %q", b)
	}
	p.WaitState("sleepy", "hibernated", 10*time.Second)
	p.Delete("sleepy")
}

func TestPauseTiers(t *testing.T) {
	p := StartProvider(t)

	// pause-then-checkpoint: paused first, hibernated later.
	dep := Fixture("tiered")
	dep.Labels = &map[string]string{
		"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "4s",
		"com.openfaas.criu.strategy": "pause-then-checkpoint", "com.openfaas.criu.pause-after": "1s",
	}
	p.Deploy(dep)
	counts(p, "tiered", 2)
	p.WaitState("tiered", "paused", 5*time.Second)
	if c := p.Containers("tiered"); c[0].State != "paused" {
		t.Errorf("container state %s, want paused", c[0].State)
	}
	p.WaitState("tiered", "hibernated", 10*time.Second)
	if got := counts(p, "tiered", 1); got[0] != 3 {
		t.Errorf("after the tiers: %v, want 3", got)
	}

	// pause strategy: scaling to zero pauses; the wake is an unpause.
	dep2 := Fixture("pauser")
	dep2.Labels = &map[string]string{"com.openfaas.criu.strategy": "pause"}
	p.Deploy(dep2)
	counts(p, "pauser", 2)
	p.Scale("pauser", 0)
	if s := p.Annotation("pauser", stateAnnotation); s != "paused" {
		t.Fatalf("state %s after scale to zero with the pause strategy", s)
	}
	start := time.Now()
	if got := counts(p, "pauser", 1); got[0] != 3 {
		t.Errorf("after unpause: %v, want 3", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("wake from pause took %s", d)
	}
	if v := p.Metric(`faas_criu_wake_seconds_count{how="unpause"}`); v < 1 {
		t.Errorf("unpause wakes counted: %v", v)
	}
	p.Delete("tiered")
	p.Delete("pauser")
}

func TestMemoryBudget(t *testing.T) {
	// Each function holds 24 MB; the budget fits two.
	p := StartProvider(t, "--memory-budget", "60Mi")
	names := []string{"m1", "m2", "m3", "m4", "m5"}
	var over []string
	var mu sync.Mutex
	stop := make(chan struct{})
	sampled := make(chan struct{})
	// Sampled from the first deploy on: deploys make room too.
	go func() {
		defer close(sampled)
		streak := 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			_, body := p.Request("GET", "/system/info", nil)
			var info struct {
				Memory struct{ BudgetBytes, UsedBytes int64 }
			}
			json.Unmarshal([]byte(body), &info)
			if info.Memory.UsedBytes > info.Memory.BudgetBytes {
				streak++
			} else {
				streak = 0
			}
			if streak > 15 { // over the budget for more than 1.5 s
				mu.Lock()
				over = append(over, fmt.Sprintf("%d > %d", info.Memory.UsedBytes, info.Memory.BudgetBytes))
				mu.Unlock()
			}
		}
	}()

	for _, n := range names {
		dep := Fixture(n)
		dep.EnvVars = map[string]string{"STATE_MB": "24"}
		p.Deploy(dep)
		p.WaitAvailable(n, 1)
	}
	for round := 1; round <= 2; round++ {
		for _, n := range names {
			if got := counts(p, n, 1); got[0] != round {
				t.Errorf("%s in round %d answered %d: state lost", n, round, got[0])
			}
		}
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	<-sampled
	if len(over) > 0 {
		t.Errorf("usage stayed above the budget: %v", over)
	}
	hibernated := 0
	for _, n := range names {
		if p.Annotation(n, stateAnnotation) == "hibernated" {
			hibernated++
		}
	}
	if hibernated < 3 {
		t.Errorf("%d of 5 hibernated; with a budget for two, want at least 3", hibernated)
	}
	if !strings.Contains(p.Logs(), "memory budget") {
		t.Errorf("no hibernation for the memory budget in the log")
	}
	for _, n := range names {
		p.Delete(n)
	}
}

func TestRequestInFlightSurvivesHibernation(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("patient")
	dep.Labels = &map[string]string{"com.openfaas.criu.hibernate-inflight": "true"}
	p.Deploy(dep)
	counts(p, "patient", 2)

	type result struct {
		code int
		body string
	}
	done := make(chan result)
	go func() {
		c, b := p.Invoke("patient", "/sleep?ms=6000")
		done <- result{c, b}
	}()
	time.Sleep(2 * time.Second)
	p.Scale("patient", 0) // hibernated mid-request
	if s := p.Annotation("patient", stateAnnotation); s != "hibernated" {
		t.Fatalf("state %s", s)
	}
	time.Sleep(5 * time.Second)
	select {
	case r := <-done:
		t.Fatalf("request finished while hibernated: %+v", r)
	default:
	}
	p.Scale("patient", 1)
	select {
	case r := <-done:
		if r.code != 200 || r.body != "slept 6000" {
			t.Errorf("in-flight request after restore: %d %q", r.code, r.body)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("in-flight request never completed")
	}
	if got := counts(p, "patient", 1); got[0] != 3 {
		t.Errorf("count after = %v, want 3", got)
	}
	p.Delete("patient")
}

func TestWatchdogKeepAliveConnection(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("watchdog")
	dep.EnvVars = map[string]string{"WATCHDOG": "1"}
	p.Deploy(dep)
	// Several requests so the watchdog keeps a connection to its process.
	counts(p, "watchdog", 3)
	p.Scale("watchdog", 0)
	if s := p.Annotation("watchdog", stateAnnotation); s != "hibernated" {
		t.Fatalf("state %s after scale to zero", s)
	}
	if got := counts(p, "watchdog", 2); !slices.Equal(got, []int{4, 5}) {
		t.Errorf("after wake: %v, want [4 5]", got)
	}
	p.Delete("watchdog")
}

func TestLoadPolicyScalesUpAndBack(t *testing.T) {
	p := StartProvider(t, "--autoscale=true", "--scale-window", "2s")
	dep := Fixture("busy")
	dep.Labels = &map[string]string{"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "3", "com.openfaas.scale.factor": "50"}
	p.Deploy(dep)
	p.WaitAvailable("busy", 1)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				p.Invoke("busy", "/sleep?ms=20")
			}
		}()
	}
	eventually(t, 20*time.Second, func() string {
		if st := p.Status("busy"); st.Replicas != 3 || st.AvailableReplicas != 3 {
			return fmt.Sprintf("replicas %d available %d under load", st.Replicas, st.AvailableReplicas)
		}
		return ""
	})
	cancel()
	wg.Wait()
	eventually(t, 20*time.Second, func() string {
		if st := p.Status("busy"); st.Replicas != 1 {
			return fmt.Sprintf("replicas %d after the load stopped", st.Replicas)
		}
		return ""
	})

	// Equal min and max: never scaled.
	fixed := Fixture("fixed")
	fixed.Labels = &map[string]string{"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "1"}
	p.Deploy(fixed)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p.Invoke("fixed", "/")
	}
	if st := p.Status("fixed"); st.Replicas != 1 {
		t.Errorf("min == max scaled to %d", st.Replicas)
	}
	p.Delete("busy")
	p.Delete("fixed")
}

func TestRestartWhileHibernated(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("dreamer"))
	counts(p, "dreamer", 2)
	p.Scale("dreamer", 0)
	p.Restart()
	if s := p.Annotation("dreamer", stateAnnotation); s != "hibernated" {
		t.Fatalf("after restart state %s, want hibernated", s)
	}
	if got := counts(p, "dreamer", 1); got[0] != 3 {
		t.Errorf("after restart and wake: %v, want 3", got)
	}
	p.Delete("dreamer")
}

func TestFailedCheckpointLeavesFunctionRunning(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("mptcp")
	// Multipath TCP sockets cannot be checkpointed by CRIU.
	dep.EnvVars = map[string]string{"GODEBUG": "multipathtcp=1"}
	p.Deploy(dep)
	counts(p, "mptcp", 2)
	code, body := p.Request("POST", "/system/scale-function/mptcp", types.ScaleServiceRequest{ServiceName: "mptcp", Replicas: 0})
	if code != http.StatusInternalServerError || !strings.Contains(body, "keeps running") || !strings.Contains(body, "MPTCP") {
		t.Errorf("failed checkpoint answered %d %q", code, body)
	}
	st := p.WaitAvailable("mptcp", 1)
	if (*st.Annotations)[stateAnnotation] != "awake" {
		t.Errorf("state after a failed checkpoint: %v", *st.Annotations)
	}
	if got := counts(p, "mptcp", 1); got[0] != 3 {
		t.Errorf("count after a failed checkpoint = %v, want 3", got)
	}
	if v := p.Metric("faas_criu_hibernate_failures_total"); v != 1 {
		t.Errorf("hibernate failures = %v", v)
	}
	p.Delete("mptcp")
}

// breakCheckpoint hides one image file of a function's checkpoint and returns
// a function that puts it back.
func breakCheckpoint(t *testing.T, p *Provider, name string) func() {
	dirs := p.CheckpointDirs(name)
	if len(dirs) != 1 {
		t.Fatalf("checkpoints: %v", dirs)
	}
	inv := filepath.Join(dirs[0], "inventory.img")
	if err := os.Rename(inv, inv+".hidden"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := os.Rename(inv+".hidden", inv); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFailedRestoreKeepsCheckpoint(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("fragile"))
	counts(p, "fragile", 2)
	p.Scale("fragile", 0)
	repair := breakCheckpoint(t, p, "fragile")

	code, body := p.Invoke("fragile", "/count")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "restore") || !strings.Contains(body, "checkpoint is kept") {
		t.Errorf("invoke with a broken checkpoint: %d %q", code, body)
	}
	if len(p.CheckpointDirs("fragile")) != 1 {
		t.Fatal("the checkpoint was removed after a failed restore")
	}
	if st := p.Status("fragile"); (*st.Annotations)[stateAnnotation] != "hibernated" || st.Replicas != 0 {
		t.Errorf("after a failed restore: replicas %d, annotations %v; want still hibernated", st.Replicas, *st.Annotations)
	}
	if v := p.Metric("faas_criu_restore_failures_total"); v < 1 {
		t.Errorf("restore failures = %v", v)
	}
	// Retried once repaired: the state is there.
	repair()
	eventually(t, 10*time.Second, func() string {
		if code, body := p.Invoke("fragile", "/count"); code != 200 || body != "3" {
			return fmt.Sprintf("after repair: %d %q", code, body)
		}
		return ""
	})
	p.Delete("fragile")
}

func TestRestoreFallbackSaysStateWasLost(t *testing.T) {
	p := StartProvider(t, "--restore-fallback")
	p.Deploy(Fixture("phoenix"))
	counts(p, "phoenix", 2)
	p.Scale("phoenix", 0)
	breakCheckpoint(t, p, "phoenix")
	if got := counts(p, "phoenix", 1); got[0] != 1 {
		t.Errorf("after a fallback start: %v, want 1 (fresh)", got)
	}
	if lost := p.Annotation("phoenix", "com.openfaas.criu.state-lost"); !strings.Contains(lost, "started fresh") {
		t.Errorf("state-lost annotation = %q", lost)
	}
	if !strings.Contains(p.Logs(), "memory state is lost") {
		t.Errorf("the lost state was not logged")
	}
	p.Delete("phoenix")
}

func TestWithoutCRIUScaleToZeroPauses(t *testing.T) {
	p := StartProviderEnv(t, []string{"PATH=/usr/bin:/bin"}, "--criu-stamp", "/nonexistent")
	_, body := p.Request("GET", "/system/info", nil)
	var info struct {
		CRIU struct {
			Available bool
			Problem   string
		}
	}
	json.Unmarshal([]byte(body), &info)
	if info.CRIU.Available || !strings.Contains(info.CRIU.Problem, "not installed") {
		t.Errorf("info.criu = %+v", info.CRIU)
	}
	if !strings.Contains(p.Logs(), "WARNING: CRIU cannot be used") {
		t.Errorf("no loud warning in the log")
	}
	p.Deploy(Fixture("nocriu"))
	counts(p, "nocriu", 2)
	p.Scale("nocriu", 0)
	if fb := p.Annotation("nocriu", "com.openfaas.criu.fallback"); !strings.Contains(fb, "paused instead") {
		t.Errorf("fallback annotation = %q", fb)
	}
	if c := p.Containers("nocriu"); c[0].State != "paused" {
		t.Errorf("container %s, want paused", c[0].State)
	}
	if got := counts(p, "nocriu", 1); got[0] != 3 {
		t.Errorf("after unpause: %v, want 3", got)
	}
	p.Delete("nocriu")
}

func TestRemoveStrategyStartsCold(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("coldstart")
	dep.Labels = &map[string]string{"com.openfaas.criu.strategy": "remove"}
	p.Deploy(dep)
	counts(p, "coldstart", 2)
	p.Scale("coldstart", 0)
	if c := p.AllContainers("coldstart"); len(c) != 0 {
		t.Fatalf("%d containers after scale to zero with the remove strategy", len(c))
	}
	if st := p.Status("coldstart"); st.Replicas != 0 || (*st.Annotations)[stateAnnotation] != "awake" {
		t.Errorf("status: replicas %d, %v", st.Replicas, *st.Annotations)
	}
	if got := counts(p, "coldstart", 1); got[0] != 1 {
		t.Errorf("after a cold start: %v, want 1", got)
	}
	p.WaitAvailable("coldstart", 1)
	p.Delete("coldstart")
}

func TestUpdateOfHibernatedFunction(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("evolving")
	dep.EnvVars = map[string]string{"VERSION": "1"}
	p.Deploy(dep)
	counts(p, "evolving", 2)
	p.Scale("evolving", 0)

	// The same definition again changes nothing: it stays hibernated.
	if code, body := p.Request("PUT", "/system/functions", dep); code != http.StatusAccepted {
		t.Fatalf("unchanged update: %d %s", code, body)
	}
	if s := p.Annotation("evolving", stateAnnotation); s != "hibernated" {
		t.Errorf("an unchanged update woke it: %s", s)
	}
	// A new definition starts fresh, reachable (not in the network CRIU
	// locked when it hibernated).
	dep.EnvVars["VERSION"] = "2"
	if code, body := p.Request("PUT", "/system/functions", dep); code != http.StatusAccepted {
		t.Fatalf("update: %d %s", code, body)
	}
	if got := p.MustInvoke("evolving", "/env/VERSION"); got != "2" {
		t.Errorf("after the update VERSION = %q", got)
	}
	if got := counts(p, "evolving", 1); got[0] != 1 {
		t.Errorf("after the update the count is %v, want a fresh 1", got)
	}
	p.Delete("evolving")
}
