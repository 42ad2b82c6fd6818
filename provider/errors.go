package provider

import "github.com/faas-criu/faas-criu/api"

// Kinds of failure the HTTP layer maps onto OpenFaaS status codes: package
// api's, under the names the provider's code uses.
var (
	ErrInvalid     = api.ErrInvalid     // 400
	ErrNotFound    = api.ErrNotFound    // 404
	ErrExists      = api.ErrExists      // 409
	ErrUnavailable = api.ErrUnavailable // 503
	ErrTimeout     = api.ErrTimeout     // 504
	ErrTooLarge    = api.ErrTooLarge    // 413
	ErrForbidden   = api.ErrForbidden   // 403
)

// errorf returns an error of kind carrying a one-line reason for the user.
func errorf(kind error, format string, args ...any) error {
	return api.Errorf(kind, format, args...)
}
