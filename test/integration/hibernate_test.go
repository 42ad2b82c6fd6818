//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/checkpoint"
	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/provider"
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
	// The running replica has a memory cgroup (found as the provider finds
	// it, whatever the cgroup version and driver).
	cgroup := provider.MemoryCgroupDir(running.ID)
	if cgroup == "" {
		t.Fatalf("no memory cgroup found for the running container %s", running.ID)
	}
	if _, err := os.Stat(cgroup); err != nil {
		t.Fatalf("memory cgroup %s of the running container: %v", cgroup, err)
	}

	p.Scale("counter", 0)

	// The container is not running and its memory cgroup is gone.
	c := p.Containers("counter")
	if len(c) != 1 || c[0].State == "running" {
		t.Fatalf("containers after hibernation: %+v", c)
	}
	if _, err := os.Stat(cgroup); !os.IsNotExist(err) {
		t.Errorf("memory cgroup %s of the hibernated container still exists (%v)", cgroup, err)
	}
	if d := provider.MemoryCgroupDir(running.ID); d != "" {
		t.Errorf("the hibernated container still has a memory cgroup: %s", d)
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
	if len(dirs) != 1 || !strings.HasPrefix(filepath.Base(dirs[0]), "hib-") {
		t.Fatalf("before the delete, checkpoints %v: want the replica's one hib- checkpoint", dirs)
	}
	p.Delete("counter")
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("checkpoint %s left after delete", d)
		}
	}
}

// directCount calls /count on a replica at its own address, past the
// provider, so that the answer is known to be that replica's.
func directCount(t *testing.T, ip string) int {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + net.JoinHostPort(ip, "8080") + "/count")
	if err != nil {
		t.Fatalf("replica at %s: %v", ip, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if resp.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("replica at %s: %d %q", ip, resp.StatusCode, b)
	}
	return n
}

func TestHibernateEveryReplica(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("pair"))
	p.Scale("pair", 2)
	p.WaitAvailable("pair", 2)
	// Each replica counts from 1: two answers of 1 mean both have served.
	var answers []int
	for ones := 0; ones < 2; {
		if len(answers) == 20 {
			t.Fatalf("after 20 requests only one replica served: %v", answers)
		}
		n := counts(p, "pair", 1)[0]
		answers = append(answers, n)
		if n == 1 {
			ones++
		}
	}
	ips := replicaIPs(t, p, "pair")
	if len(ips) != 2 || ips["0"] == "" || ips["1"] == "" {
		t.Fatalf("replica addresses: %v", ips)
	}
	// Make their counts differ, so that each one's own count is told apart
	// after the wake: replica 0 at least three ahead.
	own := map[string]int{"1": directCount(t, ips["1"])}
	direct := 1
	for own["0"] < own["1"]+3 {
		own["0"] = directCount(t, ips["0"])
		direct++
	}
	if served := own["0"] + own["1"] - direct; served != len(answers) {
		t.Fatalf("replica counts %v less %d direct calls do not add up to the %d requests through the provider", own, direct, len(answers))
	}
	restores := p.Metric("faas_criu_restore_seconds_count")

	p.Scale("pair", 0)
	c := p.Containers("pair")
	if len(c) != 2 {
		t.Fatalf("%d containers after hibernation, want 2", len(c))
	}
	for _, x := range c {
		if x.State != "exited" {
			t.Errorf("replica %s is %s after hibernation, want exited", x.Labels["io.faas-criu.replica"], x.State)
		}
		dirs, _ := filepath.Glob(filepath.Join(p.dockerRoot, "containers", x.ID, "checkpoints", "*"))
		if len(dirs) != 1 || !strings.HasPrefix(filepath.Base(dirs[0]), "hib-") {
			t.Errorf("replica %s checkpoints: %v, want one", x.Labels["io.faas-criu.replica"], dirs)
		}
	}
	if dirs := p.CheckpointDirs("pair"); len(dirs) != 2 {
		t.Errorf("checkpoints after hibernation: %v, want 2", dirs)
	}
	st := p.Status("pair")
	if ann := *st.Annotations; st.Replicas != 0 || ann[stateAnnotation] != "hibernated" || ann["com.openfaas.criu.slept-replicas"] != "2" {
		t.Errorf("status after hibernation: replicas %d, annotations %v", st.Replicas, ann)
	}

	p.Scale("pair", 2)
	p.WaitAvailable("pair", 2)
	if d := p.Metric("faas_criu_restore_seconds_count") - restores; d != 2 {
		t.Errorf("%v restores, want 2 (one per replica)", d)
	}
	if now := replicaIPs(t, p, "pair"); now["0"] != ips["0"] || now["1"] != ips["1"] {
		t.Errorf("replica addresses changed: %v, were %v", now, ips)
	}
	// Each continues its own count.
	for _, idx := range []string{"0", "1"} {
		if got := directCount(t, ips[idx]); got != own[idx]+1 {
			t.Errorf("replica %s answered %d after the wake, want %d", idx, got, own[idx]+1)
		}
	}
	p.Delete("pair")
}

func TestOnlyNewestCheckpointKept(t *testing.T) {
	p := StartProvider(t)
	p.Deploy(Fixture("hoarder"))
	counts(p, "hoarder", 2)
	running := p.Containers("hoarder")[0]
	// A hibernation checkpoint of the replica left behind, as a provider
	// killed between a restore and the clean-up after it leaves one: taken
	// through the engine, the container keeps running.
	stale := fmt.Sprintf("hib-%d", time.Now().Add(-time.Hour).UnixNano())
	if err := docker.CheckpointCreate(context.Background(), running.ID, checkpoint.CreateOptions{CheckpointID: stale, Exit: false}); err != nil {
		t.Fatalf("checkpoint %s: %v", stale, err)
	}
	staleDir := filepath.Join(p.dockerRoot, "containers", running.ID, "checkpoints", stale)
	if dirs := p.CheckpointDirs("hoarder"); !slices.Equal(dirs, []string{staleDir}) {
		t.Fatalf("checkpoints before hibernation: %v, want %s", dirs, staleDir)
	}
	if got := counts(p, "hoarder", 1); got[0] != 3 {
		t.Fatalf("after the leave-running checkpoint: %v, want 3", got)
	}

	p.Scale("hoarder", 0)
	dirs := p.CheckpointDirs("hoarder")
	if len(dirs) != 1 || dirs[0] == staleDir || !strings.HasPrefix(filepath.Base(dirs[0]), "hib-") {
		t.Fatalf("checkpoints after hibernation: %v, want one, not %s", dirs, stale)
	}
	if _, err := os.Stat(staleDir); !os.IsNotExist(err) {
		t.Errorf("the older checkpoint %s is still there (%v)", staleDir, err)
	}
	// The one kept is the newest: the state of the third count.
	if got := counts(p, "hoarder", 1); got[0] != 4 {
		t.Errorf("after the wake: %v, want 4", got)
	}
	p.Delete("hoarder")
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
	// With the harness's short policy tick, the budget policy hibernates
	// what is over the budget soon after; usage may be over it for a moment.
	t.Run("policy tick 200ms", func(t *testing.T) { memoryBudget(t, false) })
	// With a policy tick of an hour the policy never looks: only deploys and
	// wakes making room first keep usage under the budget, and then it must
	// never be over it.
	t.Run("policy tick 1h", func(t *testing.T) { memoryBudget(t, true, "--policy-tick", "1h") })
}

// memoryBudget deploys five functions of 24 MB under a budget that fits two
// and invokes each twice. Usage is sampled from before the first deploy on:
// deploys make room too. Strict: no sample may be over the budget; else no
// more than 1.5 s in a row.
func memoryBudget(t *testing.T, strict bool, extraArgs ...string) {
	const budget = 60 << 20
	// Later flags win: extraArgs override the harness's --policy-tick.
	p := StartProvider(t, append([]string{"--memory-budget", "60Mi"}, extraArgs...)...)
	names := []string{"m1", "m2", "m3", "m4", "m5"}
	var (
		mu       sync.Mutex
		problems []string
		over     []string
		samples  int
		maxUsed  int64
	)
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		streak := 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			// Not p.Request: t.Fatal must not be called from this goroutine.
			code, body, err := getInfo(p)
			var info struct {
				Memory *struct {
					BudgetBytes *int64
					UsedBytes   *int64
				}
			}
			if err == nil && code == http.StatusOK {
				err = json.Unmarshal([]byte(body), &info)
			}
			mu.Lock()
			samples++
			switch {
			case err != nil || code != http.StatusOK:
				problems = append(problems, fmt.Sprintf("/system/info: %d %v %q", code, err, body))
			case info.Memory == nil || info.Memory.BudgetBytes == nil || info.Memory.UsedBytes == nil:
				problems = append(problems, fmt.Sprintf("/system/info has no memory budget and usage: %s", body))
			case *info.Memory.BudgetBytes != budget:
				problems = append(problems, fmt.Sprintf("/system/info budget %d, want %d", *info.Memory.BudgetBytes, budget))
			default:
				used := *info.Memory.UsedBytes
				maxUsed = max(maxUsed, used)
				if used > budget {
					streak++
				} else {
					streak = 0
				}
				if (strict && streak > 0) || streak > 15 { // over the budget for more than 1.5 s
					over = append(over, fmt.Sprintf("%d > %d", used, budget))
				}
			}
			mu.Unlock()
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
	t.Logf("%d samples, the most used %d bytes of %d", samples, maxUsed, budget)
	if len(problems) > 0 {
		t.Errorf("%d of %d samples failed: %v", len(problems), samples, problems)
	}
	if samples < 10 || maxUsed <= 0 {
		t.Errorf("%d samples, most used %d bytes: usage was never measured", samples, maxUsed)
	}
	if len(over) > 0 {
		t.Errorf("usage above the budget (strict %v) in %d samples: %v", strict, len(over), over)
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

// getInfo fetches /system/info without failing the test (for goroutines).
func getInfo(p *Provider) (int, string, error) {
	req, err := http.NewRequest("GET", p.URL+"/system/info", nil)
	if err != nil {
		return 0, "", err
	}
	req.SetBasicAuth(p.User, p.Pass)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestRequestInFlightSurvivesHibernation(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("patient")
	dep.Labels = &map[string]string{"com.openfaas.criu.hibernate-inflight": "true"}
	p.Deploy(dep)
	counts(p, "patient", 2)
	ip := replicaIPs(t, p, "patient")["0"]
	if ip == "" {
		t.Fatalf("no address for replica 0: %v", replicaIPs(t, p, "patient"))
	}
	addr := net.JoinHostPort(ip, "8080")
	pid := providerPID(p)
	// Three requests at once leave three keep-alive connections in the
	// provider's pool.
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.Invoke("patient", "/sleep?ms=300")
		}()
	}
	wg.Wait()

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
	// The in-flight request holds one of them; the others are idle.
	before := providerConns(t, pid, addr)
	if len(before) < 2 {
		t.Fatalf("before hibernation the provider has %d connections to %s, want the in-flight one and idle ones: %q", len(before), addr, before)
	}
	p.Scale("patient", 0) // hibernated mid-request
	if s := p.Annotation("patient", stateAnnotation); s != "hibernated" {
		t.Fatalf("state %s", s)
	}
	// Only the in-flight connection is left (the idle ones were dropped
	// before the checkpoint), and it has no keep-alive timer: probes into the
	// locked network would break it.
	after := providerConns(t, pid, addr)
	t.Logf("the provider's connections to %s before hibernation %q, after %q", addr, before, after)
	if len(after) != 1 || !strings.HasPrefix(after[0], "ESTAB ") {
		t.Errorf("after hibernation the provider's connections to %s: %q, want only the in-flight one", addr, after)
	}
	var beforeIDs []string
	for _, c := range before {
		beforeIDs = append(beforeIDs, socketID(c))
	}
	for _, c := range after {
		if !slices.Contains(beforeIDs, socketID(c)) {
			t.Errorf("connection %q is not one of those before the hibernation %q", c, before)
		}
		if strings.Contains(c, "keepalive") {
			t.Errorf("the in-flight connection has a keep-alive timer: %q", c)
		}
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

	stop := loadFunction(p, "busy", "/sleep?ms=20")
	eventually(t, 20*time.Second, func() string {
		if st := p.Status("busy"); st.Replicas != 3 || st.AvailableReplicas != 3 {
			return fmt.Sprintf("replicas %d available %d under load", st.Replicas, st.AvailableReplicas)
		}
		return ""
	})
	stop()
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
	p.WaitAvailable("fixed", 1)
	// Under load, sampled all along: a step up and back in between fails
	// as well.
	stop = loadFunction(p, "fixed", "/")
	var scaled []string
	samples := 0
	start := time.Now()
	for time.Since(start) < 5*time.Second {
		samples++
		if st := p.Status("fixed"); st.Replicas != 1 {
			scaled = append(scaled, fmt.Sprintf("replicas %d at %s", st.Replicas, time.Since(start).Round(time.Millisecond)))
		}
		if samples%10 == 0 {
			if c := p.Containers("fixed"); len(c) != 1 {
				scaled = append(scaled, fmt.Sprintf("%d containers at %s", len(c), time.Since(start).Round(time.Millisecond)))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	served := stop()
	if len(scaled) > 0 {
		t.Errorf("min == max scaled: %v", scaled)
	}
	// The load was over the target (5 requests/s): the policy had cause.
	if n := served; n < 100 || samples < 50 {
		t.Errorf("%d requests served and %d samples in 5 s: not a load test", n, samples)
	}
	p.Delete("busy")
	p.Delete("fixed")
}

// loadFunction keeps four workers invoking a function's path until stop is
// called; stop returns how many calls were answered 200.
func loadFunction(p *Provider, name, path string) (stop func() int64) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var served atomic.Int64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if code, _ := p.Invoke(name, path); code == http.StatusOK {
					served.Add(1)
				}
			}
		}()
	}
	return func() int64 {
		cancel()
		wg.Wait()
		return served.Load()
	}
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

// providerPID is the provider process's id.
func providerPID(p *Provider) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// replicaIPs maps each replica index of a function to its address (its
// network sandbox's, fixed for life).
func replicaIPs(t *testing.T, p *Provider, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, c := range p.AllContainers(name) {
		if c.Labels["io.faas-criu.role"] != "sandbox" || c.NetworkSettings == nil {
			continue
		}
		if n := c.NetworkSettings.Networks[p.Network]; n != nil && n.IPAddress != "" {
			out[c.Labels["io.faas-criu.replica"]] = n.IPAddress
		}
	}
	return out
}

// providerConns lists the TCP sockets the process pid holds to addr, as ss
// shows them ("STATE local peer timer..."; sockets no process holds, such as
// TIME-WAIT, are left out). socketID reads "STATE local peer" back.
func providerConns(t *testing.T, pid int, addr string) []string {
	t.Helper()
	out, err := exec.Command("ss", "-Htanpo").Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	var conns []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 || f[4] != addr || !strings.Contains(l, fmt.Sprintf(",pid=%d,", pid)) {
			continue
		}
		c := f[0] + " " + f[3] + " " + f[4]
		for _, x := range f[6:] {
			if strings.HasPrefix(x, "timer:") {
				c += " " + x
			}
		}
		conns = append(conns, c)
	}
	return conns
}

func socketID(conn string) string {
	f := strings.Fields(conn)
	return strings.Join(f[:3], " ")
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
	if !warnsCRIUUnusable(p.Logs(), "not installed") {
		t.Errorf("no loud warning (level=WARN) in the log:\n%s", p.Logs())
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
