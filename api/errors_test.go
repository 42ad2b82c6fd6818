package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestStatusCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{ErrInvalid, 400},
		{fmt.Errorf("deploy: %w", ErrNotFound), 404},
		{ErrExists, 409},
		{ErrUnavailable, 503},
		{ErrTimeout, 504},
		{context.DeadlineExceeded, 504},
		{ErrTooLarge, 413},
		{&http.MaxBytesError{Limit: 1}, 413},
		{Errorf(ErrInvalid, "x"), 400},
		{errors.New("boom"), 500},
	}
	for _, c := range cases {
		if got := StatusCode(c.err); got != c.want {
			t.Errorf("StatusCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}
