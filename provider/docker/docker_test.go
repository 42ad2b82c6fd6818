package docker

import (
	"errors"
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
