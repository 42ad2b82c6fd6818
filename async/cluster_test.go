package async

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeFleet stands in for the fleet: one JetStream server that two
// "boxes" (two queues) share, and a switch saying whether the function's
// box is down.
type fakeFleet struct {
	nc     *nats.Conn
	joined atomic.Bool
	down   atomic.Bool
}

func (f *fakeFleet) QueueConn() (*nats.Conn, int, bool) { return f.nc, 1, f.joined.Load() }

func (f *fakeFleet) Wait(_ context.Context, _ string, answer http.Header) bool {
	if answer != nil {
		return answer.Get("X-Unreachable") != ""
	}
	return f.down.Load()
}

func newFakeFleet(t *testing.T) *fakeFleet {
	t.Helper()
	srv, err := server.NewServer(&server.Options{DontListen: true, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); srv.Shutdown() })
	f := &fakeFleet{nc: nc}
	f.joined.Store(true)
	return f
}

func clusterQueue(t *testing.T, f *fakeFleet, inv http.HandlerFunc) *Queue {
	t.Helper()
	q := newQueue(t, t.TempDir(), inv, Config{Cluster: f, AckWait: time.Second})
	if err := q.Recover(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return opened(q) })
	return q
}

func opened(q *Queue) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.eng != nil
}

// A box that has not joined refuses calls with 503 and Retry-After; once
// joined it accepts them, and stores nothing under its own directory.
func TestClusterQueueWaitsForTheJoin(t *testing.T) {
	f := newFakeFleet(t)
	f.joined.Store(false)
	dir := t.TempDir()
	q := newQueue(t, dir, func(w http.ResponseWriter, r *http.Request) {}, Config{Cluster: f})
	if err := q.Recover(); err != nil {
		t.Fatal(err)
	}
	if w := post(t, q, "/async-function/f", "", ""); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("before the join: %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	f.joined.Store(true)
	waitFor(t, func() bool { return opened(q) }) // by Recover's wait
	if w := post(t, q, "/async-function/f", "", ""); w.Code != http.StatusAccepted {
		t.Fatalf("after the join: %d %s", w.Code, w.Body)
	}
	q.Close()
	if f.nc.IsClosed() {
		t.Error("closing the queue closed the fleet's connection")
	}
}

// A call accepted by one box waits, with no try counted, while its
// function's box is down or unreachable, then runs once: on either box.
func TestClusterCallWaitsForItsBox(t *testing.T) {
	f := newFakeFleet(t)
	f.down.Store(true)
	var runs, unreachable atomic.Int32
	inv := func(w http.ResponseWriter, r *http.Request) {
		runs.Add(1)
		if unreachable.Add(-1) >= 0 {
			w.Header().Set("X-Unreachable", "box2")
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Write([]byte("ran"))
	}
	a, b := clusterQueue(t, f, inv), clusterQueue(t, f, inv)
	unreachable.Store(2)
	cb := newCallback(t)
	if w := post(t, a, "/async-function/f", cb.URL, "x"); w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	time.Sleep(2500 * time.Millisecond) // longer than the ack wait: still held, not run
	if n := runs.Load(); n != 0 {
		t.Fatalf("ran %d times while its box was down", n)
	}
	if a.metrics.waitingN.Load()+b.metrics.waitingN.Load() != 1 {
		t.Errorf("async_waiting: %d + %d, want 1 in all", a.metrics.waitingN.Load(), b.metrics.waitingN.Load())
	}
	f.down.Store(false)
	res := cb.next(t, 20*time.Second)
	if got := res.Header.Get("X-Function-Status"); got != "200" {
		t.Errorf("status %s, want 200 (the two unreachable answers are waited out, not posted)", got)
	}
	if n := runs.Load(); n != 3 {
		t.Errorf("ran %d times, want 3 (2 unreachable, then the function)", n)
	}
	for _, q := range []*Queue{a, b} {
		if got := testutil.ToFloat64(q.metrics.retries.WithLabelValues("502")); got != 0 {
			t.Errorf("a wait was counted as a retry: %v", got)
		}
	}
	select {
	case r := <-cb.got:
		t.Errorf("a second callback: %v", r.Header)
	case <-time.After(1500 * time.Millisecond):
	}
}

// A call taken by a box that stops before finishing it (unacknowledged)
// runs on another box after its ack wait.
func TestClusterCallOfAStoppedBoxRunsOnAnother(t *testing.T) {
	f := newFakeFleet(t)
	taken := make(chan struct{}, 1)
	a := clusterQueue(t, f, func(w http.ResponseWriter, r *http.Request) {
		taken <- struct{}{}
		<-r.Context().Done()
	})
	cb := newCallback(t)
	if w := post(t, a, "/async-function/f", cb.URL, "x"); w.Code != http.StatusAccepted {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	<-taken
	clusterQueue(t, f, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("b")) })
	start := time.Now()
	a.Close()
	res := cb.next(t, 20*time.Second)
	if got := res.Header.Get("X-Function-Status"); got != "200" {
		t.Errorf("status %s from the second box", got)
	}
	t.Logf("ran on the second box %s after the first stopped", time.Since(start).Round(10*time.Millisecond))
}
