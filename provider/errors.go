package provider

import (
	"errors"
	"fmt"
)

// Kinds of failure the HTTP layer maps onto OpenFaaS status codes.
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

func errorf(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}
