package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Kinds of failure, each answered with the OpenFaaS status code beside it
// (see StatusCode).
var (
	ErrInvalid     = errors.New("invalid request")     // 400
	ErrNotFound    = errors.New("not found")           // 404
	ErrExists      = errors.New("already exists")      // 409
	ErrUnavailable = errors.New("unavailable")         // 503
	ErrTimeout     = errors.New("timed out")           // 504
	ErrTooLarge    = errors.New("request too large")   // 413
	ErrForbidden   = errors.New("operation forbidden") // 403
)

// kindError carries a one-line reason for the user and the kind used to pick
// a status code.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// Errorf returns an error of the given kind whose message is only the
// formatted reason (the kind's own text is not added).
func Errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// StatusCode maps an error onto the status code OpenFaaS uses for it; an
// error of no known kind is a 500.
func StatusCode(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge), errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrExists):
		return http.StatusConflict
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
