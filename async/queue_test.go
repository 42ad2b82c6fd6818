package async

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// callback is a receiver of results, as a caller of async runs one.
type callback struct {
	*httptest.Server
	got chan *http.Request
}

func newCallback(t *testing.T) *callback {
	c := &callback{got: make(chan *http.Request, 100)}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		c.got <- r
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *callback) next(t *testing.T, timeout time.Duration) *http.Request {
	t.Helper()
	select {
	case r := <-c.got:
		return r
	case <-time.After(timeout):
		t.Fatalf("no callback within %s", timeout)
		return nil
	}
}

func newQueue(t *testing.T, dir string, inv http.HandlerFunc, cfg Config) *Queue {
	t.Helper()
	cfg.Dir = dir
	if cfg.RetryBase == 0 {
		cfg.RetryBase = 20 * time.Millisecond
	}
	q := New(cfg, inv)
	t.Cleanup(q.Close)
	return q
}

func post(t *testing.T, q *Queue, target, callbackURL, body string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", target, strings.NewReader(body))
	if callbackURL != "" {
		r.Header.Set("X-Callback-Url", callbackURL)
	}
	r.Header.Set("X-Custom", "kept")
	w := httptest.NewRecorder()
	q.ServeHTTP(w, r)
	return w
}

func TestAcceptedCallRunsAndPostsItsAnswer(t *testing.T) {
	seen := make(chan *http.Request, 1)
	q := newQueue(t, t.TempDir(), func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		seen <- r
		w.Header().Set("X-From-Function", "yes")
		w.WriteHeader(201)
		io.WriteString(w, "answer to "+string(b))
	}, Config{})
	cb := newCallback(t)

	w := post(t, q, "/async-function/echo.dev/sub/path?a=1&b=2", cb.URL+"/done", "hello")
	if w.Code != http.StatusAccepted {
		t.Fatalf("want 202, got %d %s", w.Code, w.Body)
	}
	id := w.Header().Get("X-Call-Id")
	if id == "" {
		t.Fatal("no X-Call-Id on the 202")
	}

	r := <-seen
	if r.Method != "POST" || r.URL.Path != "/function/echo.dev/sub/path" || r.URL.RawQuery != "a=1&b=2" {
		t.Errorf("function got %s %s?%s", r.Method, r.URL.Path, r.URL.RawQuery)
	}
	if r.Header.Get("X-Custom") != "kept" || r.Header.Get("X-Call-Id") != id || r.Header.Get("X-Callback-Url") != cb.URL+"/done" {
		t.Errorf("function got headers %v", r.Header)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != "hello" {
		t.Errorf("function got body %q", b)
	}

	res := cb.next(t, 10*time.Second)
	if res.URL.Path != "/done" || res.Method != "POST" {
		t.Errorf("callback got %s %s", res.Method, res.URL.Path)
	}
	for k, want := range map[string]string{"X-Call-Id": id, "X-Function-Status": "201", "X-Function-Name": "echo.dev", "X-From-Function": "yes"} {
		if got := res.Header.Get(k); got != want {
			t.Errorf("callback header %s = %q, want %q", k, got, want)
		}
	}
	if d := res.Header.Get("X-Duration-Seconds"); d == "" || !strings.Contains(d, ".") {
		t.Errorf("callback X-Duration-Seconds = %q", d)
	}
	if b, _ := io.ReadAll(res.Body); string(b) != "answer to hello" {
		t.Errorf("callback body %q", b)
	}
	// Acknowledged: the stream is empty.
	waitFor(t, func() bool { return q.depth() == 0 })
	// The count follows the acknowledgement, so it is waited for too.
	done := func() float64 { return testutil.ToFloat64(q.metrics.calls.WithLabelValues("done")) }
	waitFor(t, func() bool { return done() >= 1 })
	if got := done(); got != 1 {
		t.Errorf("async_calls_total{result=done} = %v", got)
	}
}

func TestCallerCallIDIsKept(t *testing.T) {
	q := newQueue(t, t.TempDir(), func(w http.ResponseWriter, r *http.Request) {}, Config{})
	cb := newCallback(t)
	r := httptest.NewRequest("POST", "/async-function/f", nil)
	r.Header.Set("X-Call-Id", "mine-1")
	r.Header.Set("X-Callback-Url", cb.URL)
	w := httptest.NewRecorder()
	q.ServeHTTP(w, r)
	if w.Code != 202 || w.Header().Get("X-Call-Id") != "mine-1" {
		t.Fatalf("got %d X-Call-Id %q", w.Code, w.Header().Get("X-Call-Id"))
	}
	if got := cb.next(t, 10*time.Second).Header.Get("X-Call-Id"); got != "mine-1" {
		t.Errorf("callback X-Call-Id %q", got)
	}
}

func TestRetriesOn429502503504ThenAnswers(t *testing.T) {
	codes := []int{429, 502, 503, 504, 200}
	var n atomic.Int32
	q := newQueue(t, t.TempDir(), func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(codes[n.Add(1)-1])
	}, Config{})
	cb := newCallback(t)
	post(t, q, "/async-function/flaky", cb.URL, "")
	res := cb.next(t, 20*time.Second)
	if got := res.Header.Get("X-Function-Status"); got != "200" {
		t.Errorf("final status %s, want 200", got)
	}
	if n.Load() != 5 {
		t.Errorf("function ran %d times, want 5", n.Load())
	}
	for _, c := range []string{"429", "502", "503", "504"} {
		if got := testutil.ToFloat64(q.metrics.retries.WithLabelValues(c)); got != 1 {
			t.Errorf("async_retries_total{code=%s} = %v, want 1", c, got)
		}
	}
}

func TestRetriesStopAtTheLimitAndPostTheLastAnswer(t *testing.T) {
	var n atomic.Int32
	q := newQueue(t, t.TempDir(), func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(503)
	}, Config{MaxAttempts: 3})
	cb := newCallback(t)
	post(t, q, "/async-function/down", cb.URL, "")
	res := cb.next(t, 20*time.Second)
	if got := res.Header.Get("X-Function-Status"); got != "503" {
		t.Errorf("final status %s, want 503", got)
	}
	if n.Load() != 3 {
		t.Errorf("function ran %d times, want 3 (the limit)", n.Load())
	}
}

func TestNoRetryOnOtherErrors(t *testing.T) {
	var n atomic.Int32
	q := newQueue(t, t.TempDir(), func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(500)
	}, Config{})
	cb := newCallback(t)
	post(t, q, "/async-function/broken", cb.URL, "")
	if got := cb.next(t, 10*time.Second).Header.Get("X-Function-Status"); got != "500" || n.Load() != 1 {
		t.Errorf("status %s after %d runs, want 500 after 1", got, n.Load())
	}
}

func TestInflightPerFunctionIsBounded(t *testing.T) {
	var cur, peak atomic.Int32
	q := newQueue(t, t.TempDir(), func(w http.ResponseWriter, r *http.Request) {
		c := cur.Add(1)
		for {
			p := peak.Load()
			if c <= p || peak.CompareAndSwap(p, c) {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
		cur.Add(-1)
	}, Config{MaxInflight: 2})
	cb := newCallback(t)
	for range 8 {
		post(t, q, "/async-function/slow", cb.URL, "")
	}
	for range 8 {
		cb.next(t, 20*time.Second)
	}
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrency %d, want 2", p)
	}
}

// A call taken and not finished when the provider stops runs at the next
// start; so does a call accepted and not yet taken.
func TestUnfinishedCallsRunAfterRestart(t *testing.T) {
	dir := t.TempDir()
	started := make(chan struct{}, 10)
	q1 := New(Config{Dir: dir}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done() // never finishes
	}))
	cb := newCallback(t)
	post(t, q1, "/async-function/stuck", cb.URL, "one")
	<-started
	q1.Close()

	got := make(chan string, 10)
	q2 := newQueue(t, dir, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}, Config{})
	if err := q2.Recover(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if b != "one" {
			t.Errorf("body %q", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the unfinished call did not run after the restart")
	}
	cb.next(t, 10*time.Second)
	waitFor(t, func() bool { return q2.depth() == 0 })
	if n := len(got); n != 0 {
		t.Errorf("the call ran %d more times after its callback", n)
	}
}

// The embedded server costs nothing until used: no store without a call,
// and a store left empty is not kept running.
func TestServerStartsOnlyWhenNeeded(t *testing.T) {
	dir := t.TempDir() + "/nats"
	q := newQueue(t, dir, func(w http.ResponseWriter, r *http.Request) {}, Config{})
	if err := q.Recover(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Recover created the store without any call: %v", err)
	}
	cb := newCallback(t)
	post(t, q, "/async-function/f", cb.URL, "")
	cb.next(t, 10*time.Second)
	waitFor(t, func() bool { return q.depth() == 0 })
	q.Close()

	// Stopped empty: the next start does not even start the server.
	q2 := newQueue(t, dir, func(w http.ResponseWriter, r *http.Request) {}, Config{})
	if err := q2.Recover(); err != nil {
		t.Fatal(err)
	}
	if n := q2.starts.Load(); n != 0 {
		t.Errorf("the server started %d times over a store stopped empty", n)
	}
	// A call accepted now is found by a start after a crash: the mark is
	// gone once the server runs.
	post(t, q2, "/async-function/f", cb.URL, "")
	if _, err := os.Stat(dir + "/" + emptyMark); !os.IsNotExist(err) {
		t.Errorf("the empty mark outlived the server's start: %v", err)
	}
	cb.next(t, 10*time.Second)
}

// A store left by a crash, with nothing in it, is looked at once and
// closed again.
func TestEmptyStoreLeftByACrashIsClosedAtStart(t *testing.T) {
	dir := t.TempDir() + "/nats"
	q := newQueue(t, dir, func(w http.ResponseWriter, r *http.Request) {}, Config{})
	cb := newCallback(t)
	post(t, q, "/async-function/f", cb.URL, "")
	cb.next(t, 10*time.Second)
	waitFor(t, func() bool { return q.depth() == 0 })
	q.Close()
	os.Remove(dir + "/" + emptyMark) // as after a SIGKILL

	q2 := newQueue(t, dir, func(w http.ResponseWriter, r *http.Request) {}, Config{})
	if err := q2.Recover(); err != nil {
		t.Fatal(err)
	}
	q2.mu.Lock()
	running := q2.eng != nil
	q2.mu.Unlock()
	if running || q2.starts.Load() != 1 {
		t.Errorf("running %v after %d starts, want stopped after 1", running, q2.starts.Load())
	}
}

func TestBadRequests(t *testing.T) {
	q := newQueue(t, t.TempDir(), func(w http.ResponseWriter, r *http.Request) {}, Config{MaxBodyBytes: 10})
	for _, tc := range []struct {
		method, target, callback, body string
		want                           int
	}{
		{"POST", "/async-function/", "", "", 400},
		{"POST", "/async-function/Bad_Name", "", "", 400},
		{"POST", "/async-function/a.b.c", "", "", 400},
		{"GET", "/async-function/f", "", "", 405},
		{"POST", "/async-function/f", "ftp://x", "", 400},
		{"POST", "/async-function/f", "", "more than ten bytes", 413},
	} {
		r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		if tc.callback != "" {
			r.Header.Set("X-Callback-Url", tc.callback)
		}
		w := httptest.NewRecorder()
		q.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s %s (callback %q): %d, want %d", tc.method, tc.target, tc.callback, w.Code, tc.want)
		}
	}
}

func TestBackoffDoublesUpToTheMax(t *testing.T) {
	q := New(Config{RetryBase: time.Second, RetryMax: 5 * time.Second}, nil)
	var got []time.Duration
	for a := 1; a <= 5; a++ {
		got = append(got, q.backoff(a))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff = %v, want %v", got, want)
		}
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met within 10s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestStoreNotUsable: an embedded server that cannot use its store (here
// a file where JetStream's directory goes) stops the start at once with
// the store and the server's own reason, not after the whole start wait
// with none (with NoLog the server's fatal error went nowhere).
func TestStoreNotUsable(t *testing.T) {
	dir := t.TempDir() + "/nats"
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir+"/jetstream", []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := newQueue(t, dir, func(w http.ResponseWriter, r *http.Request) {}, Config{})
	start := time.Now()
	err := q.Recover()
	if err == nil {
		t.Fatalf("started on a store whose jetstream directory is a file")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the error came after %s, want at once", took.Round(time.Millisecond))
	}
	for _, want := range []string{"store " + dir, "storage directory is not a directory"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Log(err)
}
