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
	cases := []struct {
		in       error
		notFound bool
		conflict bool
	}{
		{errdefs.NotFound(cause), true, false},
		{errdefs.Conflict(cause), false, true},
		{cause, false, false},
	}
	for _, c := range cases {
		err := kind(c.in)
		if errors.Is(err, provider.ErrEngineNotFound) != c.notFound || errors.Is(err, provider.ErrEngineConflict) != c.conflict {
			t.Errorf("kind(%v) = %v: not found %v, conflict %v", c.in, err, c.notFound, c.conflict)
		}
		if !errors.Is(err, cause) {
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
