//go:build integration && soak

package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/openfaas/faas-provider/types"

	ckpt "github.com/faas-criu/faas-criu/checkpoint"
)

// TestSoak drives a provider with mixed traffic for SOAK_DURATION (default
// 10m): invocations on 50 connections, deploys, updates, deletes, scale
// changes, and hibernate/wake cycles. Run it with `make soak`.
func TestSoak(t *testing.T) {
	duration := 10 * time.Minute
	if d, err := time.ParseDuration(os.Getenv("SOAK_DURATION")); err == nil {
		duration = d
	}
	p := StartProvider(t, "--memory-budget", "256Mi")

	hot := []string{"hot-a", "hot-b"}
	cyclers := []string{"cycle-a", "cycle-b", "cycle-c"}
	for _, n := range append(append([]string{}, hot...), cyclers...) {
		p.Deploy(Fixture(n))
	}
	idle := Fixture("dozer")
	idle.Labels = &map[string]string{"com.openfaas.scale.zero": "true", "com.openfaas.scale.zero-duration": "2s"}
	p.Deploy(idle)
	for _, n := range []string{"hot-a", "hot-b", "cycle-a", "cycle-b", "cycle-c", "dozer"} {
		p.WaitAvailable(n, 1)
	}

	// Warm up, then take the starting figures.
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for i := 0; i < 200; i++ {
		p.Invoke(hot[i%2], "/count")
	}
	time.Sleep(2 * time.Second)
	startFig := p.figures()

	var (
		ok, documented, lost atomic.Int64
		mu                   sync.Mutex
		lostSamples          []string
		ops                  = map[string]*atomic.Int64{"deploy": {}, "update": {}, "delete": {}, "scale": {}, "hibernate": {}}
	)
	record := func(code int, body string, err error, what string) {
		switch {
		case err == nil && code == 200:
			ok.Add(1)
		case err == nil && (code == 503 || code == 504):
			// Documented: a wake that failed or timed out (README).
			documented.Add(1)
		default:
			lost.Add(1)
			mu.Lock()
			if len(lostSamples) < 20 {
				lostSamples = append(lostSamples, fmt.Sprintf("%s: %d %v %.100s", what, code, err, body))
			}
			mu.Unlock()
		}
	}
	invoke := func(name string) {
		resp, err := client.Get(p.URL + "/function/" + name + "/count")
		code, body := 0, ""
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			code, body = resp.StatusCode, string(b)
		}
		record(code, body, err, name)
	}

	// Every container the provider has during the soak, to look for what
	// they leave on disk once deleted.
	seen := &seenContainers{p: p, ids: map[string]bool{}, checkpoints: map[string]bool{}}
	seen.track()

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	loadStart := time.Now()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			seen.track()
			sleepCtx(ctx, 250*time.Millisecond)
		}
	}()
	// 50 connections of invocations.
	for w := 0; w < 50; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w)))
			for ctx.Err() == nil {
				switch x := r.Intn(100); {
				case x < 80:
					invoke(hot[x%2])
				case x < 97:
					invoke(cyclers[x%3])
				default:
					invoke("dozer")
				}
			}
		}(w)
	}
	// Hibernate/wake cycles.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			name := cyclers[i%3]
			if code, body := p.Request("POST", "/system/scale-function/"+name, types.ScaleServiceRequest{ServiceName: name, Replicas: 0}); code != 202 {
				t.Errorf("hibernate %s: %d %s", name, code, body)
			}
			ops["hibernate"].Add(1)
			sleepCtx(ctx, 1500*time.Millisecond)
		}
	}()
	// Scale changes.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			n := uint64(1 + i%3)
			if code, body := p.Request("POST", "/system/scale-function/hot-b", types.ScaleServiceRequest{ServiceName: "hot-b", Replicas: n}); code != 202 {
				t.Errorf("scale hot-b to %d: %d %s", n, code, body)
			}
			ops["scale"].Add(1)
			sleepCtx(ctx, 4*time.Second)
		}
	}()
	// Deploys, updates and deletes of short-lived functions.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			name := fmt.Sprintf("churn-%d", i%4)
			dep := Fixture(name)
			if code, body := p.Request("POST", "/system/functions", dep); code != 202 {
				t.Errorf("deploy %s: %d %s", name, code, body)
			}
			ops["deploy"].Add(1)
			seen.track()
			invoke(name)
			dep.EnvVars = map[string]string{"ROUND": fmt.Sprint(i)}
			if code, body := p.Request("PUT", "/system/functions", dep); code != 202 {
				t.Errorf("update %s: %d %s", name, code, body)
			}
			ops["update"].Add(1)
			seen.track()
			invoke(name)
			if code, body := p.Request("DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: name}); code != 202 {
				t.Errorf("delete %s: %d %s", name, code, body)
			}
			ops["delete"].Add(1)
			sleepCtx(ctx, time.Second)
		}
	}()
	wg.Wait()
	loadTime := time.Since(loadStart)

	// Let it settle past the proxy's idle-connection timeout (30 s) and its sweep (every 10 s), then
	// the ending figures.
	client.CloseIdleConnections()
	time.Sleep(45 * time.Second)
	endFig := p.figures()

	seen.track() // every container there is, before the deletes
	stale := staleCheckpoints(t, p)
	for _, n := range []string{"hot-a", "hot-b", "cycle-a", "cycle-b", "cycle-c", "dozer"} {
		p.Delete(n)
	}
	leftContainers := len(p.AllContainers(""))
	leftCheckpoints := seen.leftOnDisk()
	leftCopies := seen.containerdCopies()
	networksLeft := leftNetworks(t, p)
	backups, _ := filepath.Glob(filepath.Join(p.StateDir, "backups", "*", "*"))
	imports, _ := os.ReadDir(filepath.Join(p.StateDir, "import"))

	var opsLine []string
	for _, k := range []string{"deploy", "update", "delete", "scale", "hibernate"} {
		opsLine = append(opsLine, fmt.Sprintf("%s %d", k, ops[k].Load()))
	}
	sort.Strings(lostSamples)
	total := ok.Load() + documented.Load() + lost.Load()
	report := fmt.Sprintf(`soak: %s, 50 connections
  date: %s
  commit: %s
  requests: %d answered 200, %d documented errors (503/504), %d lost; %.0f requests/s over %s
  operations: %s
  provider goroutines: %.0f -> %.0f
  provider open files: %.0f -> %.0f
  provider resident memory: %.1f MiB -> %.1f MiB (Go heap in use %.1f MiB -> %.1f MiB)
  containers seen: %d
  before the deletes: %d checkpoints beyond one per hibernated replica
  left behind: %d containers, %d checkpoint or page dirs, %d containerd copies, %d networks or endpoints, %d backup dirs, %d import entries
`, duration, time.Now().UTC().Format(time.RFC3339), gitCommit(),
		ok.Load(), documented.Load(), lost.Load(), float64(total)/loadTime.Seconds(), loadTime.Round(time.Second),
		strings.Join(opsLine, ", "),
		startFig.goroutines, endFig.goroutines, startFig.fds, endFig.fds,
		startFig.rss/(1<<20), endFig.rss/(1<<20), startFig.heap/(1<<20), endFig.heap/(1<<20),
		len(seen.ids), len(stale),
		leftContainers, len(leftCheckpoints), len(leftCopies), len(networksLeft), len(backups), len(imports))
	t.Log(report)
	if out := os.Getenv("SOAK_REPORT"); out != "" {
		if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
			t.Errorf("write the report: %v", err)
		}
	}

	if lost.Load() > 0 {
		t.Errorf("%d requests lost: %v", lost.Load(), lostSamples)
	}
	if total == 0 || ok.Load() == 0 {
		t.Errorf("no request answered: %d sent", total)
	}
	if documented.Load()*1000 > total {
		t.Errorf("%d documented errors (503/504) in %d requests: more than 0.1%%", documented.Load(), total)
	}
	if len(seen.ids) == 0 {
		t.Errorf("no container of the provider was seen: the orphan checks looked at nothing")
	}
	if endFig.goroutines > startFig.goroutines+20 {
		t.Errorf("goroutines grew from %.0f to %.0f", startFig.goroutines, endFig.goroutines)
	}
	if endFig.fds > startFig.fds+20 {
		t.Errorf("open files grew from %.0f to %.0f", startFig.fds, endFig.fds)
	}
	if endFig.heap <= 0 || endFig.heap > startFig.heap*2+8<<20 {
		t.Errorf("Go heap in use grew from %.1f to %.1f MiB", startFig.heap/(1<<20), endFig.heap/(1<<20))
	}
	if endFig.rss > startFig.rss*1.5+16<<20 {
		t.Errorf("resident memory grew from %.1f to %.1f MiB", startFig.rss/(1<<20), endFig.rss/(1<<20))
	}
	if len(stale) > 0 {
		t.Errorf("checkpoints kept that the provider no longer needs: %v", stale)
	}
	if leftContainers > 0 || len(leftCheckpoints) > 0 || len(leftCopies) > 0 || len(networksLeft) > 0 || len(backups) > 0 || len(imports) > 0 {
		t.Errorf("orphans: %d containers, checkpoints %v, containerd copies %v, networks %v, %d backups, %d imports",
			leftContainers, leftCheckpoints, leftCopies, networksLeft, len(backups), len(imports))
	}
}

// seenContainers remembers every container of a provider (sandboxes
// included) and every checkpoint they had, seen while it is observed.
type seenContainers struct {
	p           *Provider
	mu          sync.Mutex
	ids         map[string]bool
	checkpoints map[string]bool // checkpoint names
}

// track records the provider's containers now, and their checkpoints. It is
// called from other goroutines than the test's: errors are skipped (the
// next call sees the same containers).
func (s *seenContainers) track() {
	f := filters.NewArgs(filters.Arg("label", "io.faas-criu.instance="+s.p.InstanceID()))
	list, err := s.p.engine.ContainerList(context.Background(), container.ListOptions{All: true, Filters: f})
	if err != nil {
		return
	}
	for _, c := range list {
		dirs, _ := filepath.Glob(filepath.Join(s.p.dockerRoot, "containers", c.ID, "checkpoints", "*"))
		s.mu.Lock()
		s.ids[c.ID] = true
		for _, d := range dirs {
			s.checkpoints[filepath.Base(d)] = true
		}
		s.mu.Unlock()
	}
}

// leftOnDisk lists what the engine's directories of the seen containers
// still hold of checkpoints or of their page images (the provider keeps
// those in criu-pages, next to checkpoints).
func (s *seenContainers) leftOnDisk() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var left []string
	for id := range s.ids {
		for _, sub := range []string{"checkpoints", "criu-pages"} {
			dir := filepath.Join(s.p.dockerRoot, "containers", id, sub)
			if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				left = append(left, fmt.Sprintf("%s (%d entries)", dir, len(entries)))
			}
		}
	}
	sort.Strings(left)
	return left
}

// containerdCopies lists containerd's unpacked copies of checkpoints (see
// checkpoint/containerd.go) that belong to the seen containers: their
// faas-criu description names one of their checkpoints, or CRIU's cgroup
// image names one of the containers.
func (s *seenContainers) containerdCopies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	dirs, _ := filepath.Glob(filepath.Join(containerdTmp, ckpt.ContainerdCopyPattern))
	var left []string
	for _, d := range dirs {
		ours := false
		if b, err := os.ReadFile(filepath.Join(d, ckpt.MetaFile)); err == nil {
			var info ckpt.Info
			ours = json.Unmarshal(b, &info) == nil && s.checkpoints[info.Name]
		}
		if cg, err := os.ReadFile(filepath.Join(d, "cgroup.img")); err == nil && !ours {
			for id := range s.ids {
				if bytes.Contains(cg, []byte(id)) {
					ours = true
					break
				}
			}
		}
		if ours {
			left = append(left, d)
		}
	}
	sort.Strings(left)
	return left
}

// staleCheckpoints lists the checkpoints (and page images) the provider's
// function containers hold beyond what it needs: none for a running
// replica (its checkpoint is discarded once restored), one for a
// hibernated one (older ones are pruned).
func staleCheckpoints(t *testing.T, p *Provider) []string {
	t.Helper()
	var stale []string
	for _, c := range p.Containers("") {
		keep := 0
		if c.State == "exited" {
			keep = 1
		}
		for _, sub := range []string{"checkpoints", "criu-pages"} {
			dir := filepath.Join(p.dockerRoot, "containers", c.ID, sub)
			entries, _ := os.ReadDir(dir)
			for i := keep; i < len(entries); i++ {
				stale = append(stale, fmt.Sprintf("%s/%s (%s %s)", dir, entries[i].Name(), c.Labels["com.openfaas.function"], c.State))
			}
		}
	}
	sort.Strings(stale)
	return stale
}

// leftNetworks lists the networks this test process's providers created
// (the harness names them NETPREFIX-PID-N) other than p's own, and p's network
// if anything is still attached to it.
func leftNetworks(t *testing.T, p *Provider) []string {
	t.Helper()
	list, err := p.engine.NetworkList(context.Background(), network.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("%s-%d-", networkPrefix, os.Getpid()%10000)
	var left []string
	for _, n := range list {
		if strings.HasPrefix(n.Name, prefix) && n.Name != p.Network {
			left = append(left, n.Name)
		}
	}
	nw, err := p.engine.NetworkInspect(context.Background(), p.Network, network.InspectOptions{})
	if err != nil {
		t.Fatalf("the provider's network %s: %v", p.Network, err)
	}
	for id, ep := range nw.Containers {
		left = append(left, fmt.Sprintf("%s endpoint %s (%.12s)", p.Network, ep.Name, id))
	}
	sort.Strings(left)
	return left
}

// gitCommit names the tree under test: the commit, and whether files were
// changed since.
func gitCommit() string {
	out, err := exec.Command("git", "-C", repoRoot, "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	commit := strings.TrimSpace(string(out))
	status := exec.Command("git", "-C", repoRoot, "status", "--porcelain", "--untracked-files=no")
	status.Env = append(os.Environ(), "GIT_OPTIONAL_LOCKS=0") // leave the index alone
	if st, err := status.Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		commit += " with uncommitted changes"
	}
	return commit
}

type figures struct{ goroutines, fds, rss, heap float64 }

func (p *Provider) figures() figures {
	return figures{
		goroutines: p.Metric("go_goroutines"),
		fds:        p.Metric("process_open_fds"),
		rss:        p.Metric("process_resident_memory_bytes"),
		heap:       p.Metric("go_memstats_heap_inuse_bytes"),
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
