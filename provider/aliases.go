package provider

import "github.com/faas-criu/faas-criu/api"

// The last of package api's names under the provider's old ones, used only
// by invoke.go, the proxy hot path another change (perf3) is editing: the
// rest of the package names api directly. Delete these once that change has
// landed and invoke.go says api.X too.
const StateAwake = api.StateAwake

var (
	ErrNotFound    = api.ErrNotFound
	ErrUnavailable = api.ErrUnavailable
	ErrTimeout     = api.ErrTimeout
)
