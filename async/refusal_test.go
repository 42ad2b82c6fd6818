package async

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
)

// captureLog sends the default logger (and the log package, which slog
// takes over) to a buffer for the rest of the test.
func captureLog(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(old) })
	return &buf
}

// TestRefusalsKeepServerPathsInTheLog: a call not queued is answered 503
// with Retry-After and a reason in general terms; the error itself, which
// can name the store's directory or be the server's API error, goes to the
// provider's log only.
func TestRefusalsKeepServerPathsInTheLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		// queue returns the queue to call, and what its refusal's error
		// carries that the log must keep: hidden says whether the caller
		// must not see it (server-side detail).
		queue    func(t *testing.T) (q *Queue, detail string)
		hidden   bool
		wantBody string
	}{
		{"store not usable", func(t *testing.T) (*Queue, string) {
			dir := t.TempDir() + "/nats"
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir+"/jetstream", []byte("not a directory"), 0o600); err != nil {
				t.Fatal(err)
			}
			return newQueue(t, dir, func(http.ResponseWriter, *http.Request) {}, Config{}), dir
		}, true, "the asynchronous queue is unavailable"},
		{"queue full", func(t *testing.T) (*Queue, string) {
			// Calls that do not finish stay in the stream until it is full.
			// (They end before the queue's Close, which waits for them.)
			block := make(chan struct{})
			q := newQueue(t, t.TempDir(), func(http.ResponseWriter, *http.Request) { <-block }, Config{MaxQueueBytes: 4 << 10})
			t.Cleanup(func() { close(block) })
			for i := 0; ; i++ {
				if w := post(t, q, "/async-function/f", "", strings.Repeat("x", 1<<10)); w.Code != http.StatusAccepted {
					break
				}
				if i == 100 {
					t.Fatal("100 calls of 1 KiB accepted by a queue of 4 KiB")
				}
			}
			return q, "err_code=10077"
		}, true, "the queue is full"},
		// Reasons of the queue's own, with nothing server-side in them:
		// still told as they were.
		{"closed", func(t *testing.T) (*Queue, string) {
			q := newQueue(t, t.TempDir(), func(http.ResponseWriter, *http.Request) {}, Config{})
			q.Close()
			return q, errClosed.Error()
		}, false, "the queue is closed"},
		{"not joined", func(t *testing.T) (*Queue, string) {
			f := newFakeFleet(t)
			f.joined.Store(false)
			return newQueue(t, t.TempDir(), func(http.ResponseWriter, *http.Request) {}, Config{Cluster: f}), errNotJoined.Error()
		}, false, "this box has not joined the fleet's stream yet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, detail := tc.queue(t)
			logged := captureLog(t)
			w := post(t, q, "/async-function/f", "", strings.Repeat("x", 1<<10))
			body := w.Body.String()
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
				t.Errorf("%d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
			}
			if !strings.Contains(body, tc.wantBody) {
				t.Errorf("body %q does not say %q", body, tc.wantBody)
			}
			if strings.Contains(body, os.TempDir()+"/") || tc.hidden && strings.Contains(body, detail) {
				t.Errorf("body %q carries server-side detail (%q)", body, detail)
			}
			if !strings.Contains(logged.String(), detail) {
				t.Errorf("log %q does not keep %q", logged, detail)
			}
		})
	}
}
