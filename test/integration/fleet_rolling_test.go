//go:build integration

package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/fleet"
)

// rollingLoad is the load of TestFleetRollingRestart: synchronous calls of
// counters and asynchronous calls with a callback, through any box.
type rollingLoad struct {
	mu sync.Mutex
	// counts[fn] are the counter values answered 2xx: each accepted
	// synchronous call.
	counts map[string][]int
	// accepted are the asynchronous calls answered 202, by X-Call-Id, with
	// the box that accepted them and when.
	accepted map[string]acceptedCall
	// callbacks counts each call's callbacks; status its last status.
	callbacks map[string]int
	status    map[string]string
	// refused counts the calls not accepted, by kind.
	refused map[string]int
	// took are the accepted calls' latencies (sync, async).
	took [2][]time.Duration
}

type acceptedCall struct {
	box int
	fn  string
	at  time.Time
}

func (l *rollingLoad) refuse(kind string) {
	l.mu.Lock()
	l.refused[kind]++
	l.mu.Unlock()
}

// kind names a refusal: the status (with the fleet's unreachable mark), or
// the connection error's kind.
func kind(prefix string, resp *http.Response, err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return prefix + " connection refused"
	case err != nil && strings.Contains(err.Error(), "EOF") || errors.Is(err, syscall.ECONNRESET):
		return prefix + " connection closed"
	case err != nil:
		return prefix + " " + err.Error()
	case resp.Header.Get(fleet.UnreachableHeader) != "":
		return fmt.Sprintf("%s %d (box unreachable)", prefix, resp.StatusCode)
	default:
		return fmt.Sprintf("%s %d", prefix, resp.StatusCode)
	}
}

// syncCalls calls a random function's counter through a random box until
// stop closes.
func (l *rollingLoad) syncCalls(boxes []*Provider, fns []string, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-time.After(20 * time.Millisecond):
		}
		fn := fns[rand.IntN(len(fns))]
		t0 := time.Now()
		resp, err := loadClient.Get(boxes[rand.IntN(len(boxes))].URL + "/function/" + fn + "/count")
		if err != nil {
			l.refuse(kind("sync", nil, err))
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		n, convErr := strconv.Atoi(strings.TrimSpace(string(body)))
		if resp.StatusCode/100 != 2 || convErr != nil {
			l.refuse(kind("sync", resp, nil))
			continue
		}
		l.mu.Lock()
		l.counts[fn] = append(l.counts[fn], n)
		l.took[0] = append(l.took[0], time.Since(t0))
		l.mu.Unlock()
	}
}

// asyncCalls posts asynchronous calls, each with its own X-Call-Id, through
// a random box until stop closes.
func (l *rollingLoad) asyncCalls(worker int, boxes []*Provider, fns []string, callback string, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
		b := rand.IntN(len(boxes))
		l.postAsync(boxes, b, fns[rand.IntN(len(fns))], fmt.Sprintf("w%d-%d", worker, i), callback)
	}
}

// postAsync posts one asynchronous call through box b and says whether it
// was accepted.
func (l *rollingLoad) postAsync(boxes []*Provider, b int, fn, id, callback string) bool {
	req, _ := http.NewRequest("POST", boxes[b].URL+"/async-function/"+fn+"/echo", strings.NewReader(id))
	req.Header.Set("X-Callback-Url", callback)
	req.Header.Set("X-Call-Id", id)
	t0 := time.Now()
	resp, err := loadClient.Do(req)
	if err != nil {
		l.refuse(kind("async", nil, err))
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		l.refuse(kind("async", resp, nil))
		return false
	}
	l.mu.Lock()
	l.accepted[id] = acceptedCall{box: b, fn: fn, at: time.Now()}
	l.took[1] = append(l.took[1], time.Since(t0))
	l.mu.Unlock()
	return true
}

var loadClient = &http.Client{Timeout: 5 * time.Second}

func (l *rollingLoad) receiver() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		id := r.Header.Get("X-Call-Id")
		l.mu.Lock()
		l.callbacks[id]++
		l.status[id] = r.Header.Get("X-Function-Status")
		l.mu.Unlock()
	})
}

// missing lists the accepted calls whose callback has not come.
func (l *rollingLoad) missing() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id := range l.accepted {
		if l.callbacks[id] == 0 {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// restartBox kills box i's provider (SIGKILL) and stops its engine, as a
// dead box, then starts both again on the same state.
func restartBox(t *testing.T, p *Provider, i int) time.Duration {
	t.Helper()
	script := filepath.Join(repoRoot, "scripts", "second-engine.sh")
	engine := fmt.Sprintf("%s%d", fleetPrefix, i+1)
	start := time.Now()
	p.Kill()
	if out, err := exec.Command(script, "stop", engine).CombinedOutput(); err != nil {
		t.Fatalf("stop engine %s: %v\n%s", engine, err, out)
	}
	if out, err := exec.Command(script, "start", engine).CombinedOutput(); err != nil {
		t.Fatalf("start engine %s: %v\n%s", engine, err, out)
	}
	p.Start()
	return time.Since(start)
}

// fleetReady waits until box p has joined again and sees n boxes.
func fleetReady(t *testing.T, p *Provider, n int) {
	t.Helper()
	eventually(t, 60*time.Second, func() string {
		code, body := p.Request("GET", "/system/fleet", nil)
		var doc struct {
			Ready bool
			Boxes []fleet.Box
		}
		if code != http.StatusOK || json.Unmarshal([]byte(body), &doc) != nil || !doc.Ready || len(doc.Boxes) != n {
			return fmt.Sprintf("fleet from %s: %d %s", p.URL, code, body)
		}
		return ""
	})
}

// TestFleetRollingRestart: three boxes restarted one at a time (provider
// SIGKILLed and engine stopped, then both started again on the same
// state) under a load of synchronous counter calls and asynchronous calls
// with a callback, through every box. No synchronous call answered 2xx is
// lost (each counter's values are distinct: no state went back), and every
// asynchronous call answered 202 has its callback, although the box that
// accepted it, and the box running it, died meanwhile (at least once:
// duplicates are counted, not failed).
func TestFleetRollingRestart(t *testing.T) {
	// A call a dead box had taken goes to another after its ack wait.
	t.Setenv("async_ack_wait", "3s")
	boxes := startFleet(t)
	testStart := time.Now()
	fns := make([]string, len(boxes))
	for i := range boxes {
		fns[i] = fmt.Sprintf("roll-%d", i+1)
		dep := Fixture(fns[i])
		dep.Constraints = []string{fmt.Sprintf("node.hostname == %s%d", fleetPrefix, i+1)}
		boxes[0].Deploy(dep)
		boxes[i].MustInvoke(fns[i], "/count")
	}
	l := &rollingLoad{counts: map[string][]int{}, accepted: map[string]acceptedCall{}, callbacks: map[string]int{}, status: map[string]string{}, refused: map[string]int{}}
	receiver := httptest.NewServer(l.receiver())
	defer receiver.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); l.syncCalls(boxes, fns, stop) }()
		if w < 2 {
			wg.Add(1)
			go func() { defer wg.Done(); l.asyncCalls(w, boxes, fns, receiver.URL+"/done", stop) }()
		}
	}
	var stopped atomic.Bool
	stopLoad := func() {
		if stopped.CompareAndSwap(false, true) {
			close(stop)
			wg.Wait()
		}
	}
	defer stopLoad()

	t.Logf("three functions deployed, one on each box, in %s", time.Since(testStart).Round(100*time.Millisecond))
	time.Sleep(2 * time.Second)
	killed, back := make([]time.Time, len(boxes)), make([]time.Time, len(boxes))
	for i, p := range boxes {
		t0 := time.Now()
		killed[i] = t0
		took := restartBox(t, p, i)
		fleetReady(t, p, len(boxes))
		back[i] = time.Now()
		joined := time.Since(t0)
		// It takes calls again (its queue has the fleet's stream, which
		// has quorum) before the next box dies.
		eventually(t, 30*time.Second, func() string {
			if !l.postAsync(boxes, i, fns[i], fmt.Sprintf("probe-%d-%d", i, time.Now().UnixNano()), receiver.URL+"/done") {
				return "no asynchronous call accepted by the restarted box"
			}
			return ""
		})
		t.Logf("%s%d: killed, engine stopped, both started again in %s, joined at %s, accepting calls at %s", fleetPrefix, i+1,
			took.Round(100*time.Millisecond), joined.Round(100*time.Millisecond), time.Since(t0).Round(100*time.Millisecond))
	}
	stopLoad()
	loadEnd := time.Now()

	// Every accepted asynchronous call's callback arrives.
	if err := pollMissing(l, 60*time.Second); err != "" {
		for i, p := range boxes {
			t.Logf("%s%d log:\n%s", fleetPrefix, i+1, lastLines(p.Logs(), 80))
		}
		t.Errorf("%s", err)
	}
	drained := time.Since(loadEnd)
	checkRolling(t, l, fns, killed, back)
	t.Logf("rolling restart under load: %s, callbacks drained %s after the load stopped", time.Since(testStart).Round(100*time.Millisecond), drained.Round(100*time.Millisecond))
}

func pollMissing(l *rollingLoad, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	for {
		m := l.missing()
		if len(m) == 0 {
			return ""
		}
		if time.Now().After(deadline) {
			l.mu.Lock()
			defer l.mu.Unlock()
			var detail []string
			for _, id := range m[:min(len(m), 10)] {
				a := l.accepted[id]
				detail = append(detail, fmt.Sprintf("%s (accepted by box %d at %s)", id, a.box+1, a.at.Format("15:04:05.000")))
			}
			return fmt.Sprintf("%d of %d accepted asynchronous calls had no callback after %s: %s", len(m), len(l.accepted), timeout, strings.Join(detail, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkRolling checks the synchronous counters and the callbacks' statuses,
// and reports the load's figures.
func checkRolling(t *testing.T, l *rollingLoad, fns []string, killed, back []time.Time) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	syncOK := 0
	for _, fn := range fns {
		seen := map[int]bool{}
		for _, n := range l.counts[fn] {
			if seen[n] {
				t.Errorf("%s answered %d twice: its state went back (an accepted call lost)", fn, n)
			}
			seen[n] = true
		}
		syncOK += len(l.counts[fn])
		if len(l.counts[fn]) == 0 {
			t.Errorf("%s: no synchronous call accepted", fn)
		}
	}
	dups, bad := 0, 0
	for id, n := range l.callbacks {
		dups += n - 1
		if l.status[id] != "200" {
			bad++
			t.Errorf("call %s: callback with status %s", id, l.status[id])
		}
	}
	t.Logf("synchronous: %d accepted (2xx), none lost; asynchronous: %d accepted (202), %d callbacks, %d duplicates, %d not 200", syncOK, len(l.accepted), len(l.callbacks)+dups, dups, bad)
	t.Logf("not accepted (the caller's to retry): %v", l.refused)
	// The calls a box accepted just before it died are in the count above:
	// say how many, so that a run where none were is seen.
	late, waited := make([]int, len(killed)), make([]int, len(killed))
	for _, a := range l.accepted {
		if d := killed[a.box].Sub(a.at); d >= 0 && d < 2*time.Second {
			late[a.box]++
		}
		for i, fn := range fns {
			if a.fn == fn && a.at.After(killed[i]) && a.at.Before(back[i]) {
				waited[i]++
			}
		}
	}
	t.Logf("all called back: calls accepted by each box in the 2 s before it was killed %v; calls of each box's function accepted (by the others) while that box was down %v", late, waited)
	if sum(waited) == 0 {
		t.Error("no call was accepted for a function while its box was down: the wait was not exercised")
	}
	t.Logf("latency of the accepted: synchronous %s, asynchronous (to the 202) %s", percentiles(l.took[0]), percentiles(l.took[1]))
	if len(l.accepted) < 50 || syncOK < 100 {
		t.Errorf("too little load to mean anything: %d asynchronous, %d synchronous calls accepted", len(l.accepted), syncOK)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "none"
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	at := func(p float64) time.Duration {
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %s p99 %s max %s", at(0.5), at(0.99), s[len(s)-1].Round(time.Millisecond))
}

func sum(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}
