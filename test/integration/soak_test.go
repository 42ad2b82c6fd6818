//go:build soak

package integration

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openfaas/faas-provider/types"
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
		case err == nil && (code == 503 || code == 504 || code == 429):
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

	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	var wg sync.WaitGroup
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
			invoke(name)
			dep.EnvVars = map[string]string{"ROUND": fmt.Sprint(i)}
			if code, body := p.Request("PUT", "/system/functions", dep); code != 202 {
				t.Errorf("update %s: %d %s", name, code, body)
			}
			ops["update"].Add(1)
			invoke(name)
			if code, body := p.Request("DELETE", "/system/functions", types.DeleteFunctionRequest{FunctionName: name}); code != 202 {
				t.Errorf("delete %s: %d %s", name, code, body)
			}
			ops["delete"].Add(1)
			sleepCtx(ctx, time.Second)
		}
	}()
	wg.Wait()

	// Let it settle past the proxy's idle-connection timeout (30 s) and its sweep (every 10 s), then
	// the ending figures.
	client.CloseIdleConnections()
	time.Sleep(45 * time.Second)
	endFig := p.figures()

	for _, n := range []string{"hot-a", "hot-b", "cycle-a", "cycle-b", "cycle-c", "dozer"} {
		p.Delete(n)
	}
	leftContainers := len(p.AllContainers(""))
	checkpoints, _ := filepath.Glob("/var/lib/docker/containers/*/checkpoints/hib-*")
	var ours []string
	for _, c := range checkpoints {
		if strings.Contains(c, p.Network) {
			ours = append(ours, c)
		}
	}
	backups, _ := filepath.Glob(filepath.Join(p.StateDir, "backups", "*", "*"))
	imports, _ := os.ReadDir(filepath.Join(p.StateDir, "import"))

	var opsLine []string
	for _, k := range []string{"deploy", "update", "delete", "scale", "hibernate"} {
		opsLine = append(opsLine, fmt.Sprintf("%s %d", k, ops[k].Load()))
	}
	sort.Strings(lostSamples)
	report := fmt.Sprintf(`soak: %s, 50 connections
  requests: %d answered 200, %d documented errors (503/504), %d lost
  operations: %s
  provider goroutines: %.0f -> %.0f
  provider open files: %.0f -> %.0f
  provider resident memory: %.1f MiB -> %.1f MiB
  left behind: %d containers, %d checkpoints, %d backup dirs, %d import entries
`, duration, ok.Load(), documented.Load(), lost.Load(), strings.Join(opsLine, ", "),
		startFig.goroutines, endFig.goroutines, startFig.fds, endFig.fds,
		startFig.rss/(1<<20), endFig.rss/(1<<20),
		leftContainers, len(ours), len(backups), len(imports))
	t.Log(report)
	if out := os.Getenv("SOAK_REPORT"); out != "" {
		os.WriteFile(out, []byte(report), 0o644)
	}

	if lost.Load() > 0 {
		t.Errorf("%d requests lost: %v", lost.Load(), lostSamples)
	}
	if endFig.goroutines > startFig.goroutines+20 {
		t.Errorf("goroutines grew from %.0f to %.0f", startFig.goroutines, endFig.goroutines)
	}
	if endFig.fds > startFig.fds+20 {
		t.Errorf("open files grew from %.0f to %.0f", startFig.fds, endFig.fds)
	}
	if endFig.rss > startFig.rss*1.5+16<<20 {
		t.Errorf("resident memory grew from %.1f to %.1f MiB", startFig.rss/(1<<20), endFig.rss/(1<<20))
	}
	if leftContainers > 0 || len(ours) > 0 || len(backups) > 0 || len(imports) > 0 {
		t.Errorf("orphans: %d containers, %d checkpoints, %d backups, %d imports", leftContainers, len(ours), len(backups), len(imports))
	}
}

type figures struct{ goroutines, fds, rss float64 }

func (p *Provider) figures() figures {
	return figures{
		goroutines: p.Metric("go_goroutines"),
		fds:        p.Metric("process_open_fds"),
		rss:        p.Metric("process_resident_memory_bytes"),
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
