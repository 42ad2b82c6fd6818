package provider

import "github.com/faas-criu/faas-criu/api"

// errorf returns an error of kind carrying a one-line reason for the user.
func errorf(kind error, format string, args ...any) error {
	return api.Errorf(kind, format, args...)
}
