package docker

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/docker/docker/errdefs"

	"github.com/faas-criu/faas-criu/provider"
)

// The provider tells a missing object or a taken name from other failures
// only through these kinds.
func TestKind(t *testing.T) {
	cause := errors.New("engine said no")
	// What Docker answered a start whose containerd task the engine's
	// crash left behind (TestEngineRestart).
	task := errors.New("failed to create task for container: failed to create shim task: task 8a3c: already exists: unknown")
	cases := []struct {
		in                 error
		cause              error
		notFound, conflict bool
		taskExists         bool
	}{
		{errdefs.NotFound(cause), cause, true, false, false},
		{errdefs.Conflict(cause), cause, false, true, false},
		{cause, cause, false, false, false},
		{errdefs.System(task), task, false, false, true},
		{errdefs.Conflict(task), task, false, false, true},
		{errdefs.Conflict(errors.New(`container name "/x" is already in use`)), nil, false, true, false},
	}
	for _, c := range cases {
		err := kind(c.in)
		if errors.Is(err, provider.ErrEngineNotFound) != c.notFound || errors.Is(err, provider.ErrEngineConflict) != c.conflict ||
			errors.Is(err, provider.ErrEngineTaskExists) != c.taskExists {
			t.Errorf("kind(%v) = %v: not found %v, conflict %v, task exists %v", c.in, err, c.notFound, c.conflict, c.taskExists)
		}
		if c.cause != nil && !errors.Is(err, c.cause) {
			t.Errorf("kind(%v) = %v lost its cause", c.in, err)
		}
	}
	if kind(nil) != nil {
		t.Error("kind(nil) is not nil")
	}
}

func TestLastLine(t *testing.T) {
	cases := map[string]string{
		"":       "",
		"a":      "a",
		"a\nb\n": "b",
		"{\"stream\":1}\r\n{\"error\":\"x\"}\r\n": "{\"error\":\"x\"}",
	}
	for in, want := range cases {
		if got := string(lastLine([]byte(in))); got != want {
			t.Errorf("lastLine(%q) = %q, want %q", in, got, want)
		}
	}
}

// Every call to the engine dials anew: a kept-alive connection is one that
// dockerd, shutting down, still serves after closing its listener, and the
// provider's starts over it reached an engine in the middle of its teardown.
func TestEveryCallDialsTheEngineAnew(t *testing.T) {
	var conns, requests atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Api-Version", "1.41")
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			io.WriteString(w, "OK")
			return
		}
		io.WriteString(w, `{"Id":"c1","State":{"Running":true,"Status":"running"}}`)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Setenv("DOCKER_HOST", "tcp://"+strings.TrimPrefix(srv.URL, "http://"))
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.InspectContainer(context.Background(), "c1"); err != nil {
			t.Fatal(err)
		}
	}
	if requests.Load() < 3 || conns.Load() != requests.Load() {
		t.Errorf("%d requests over %d connections; want one connection each", requests.Load(), conns.Load())
	}
}
