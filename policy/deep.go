package policy

import (
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// deepAction decides whether a hibernated function goes to the deep tier
// now: its network sandboxes stopped too. A hibernated function keeps a
// running sandbox per replica (its address and network namespace, so that a
// wake is one restore), which costs about 4 MiB of box memory each (mostly
// the sandbox's containerd shim, bench/design-13.md); a stopped sandbox costs
// none, and a wake then pays one container start more. So only a function
// that stayed hibernated for DeepAfter goes deep, never one with requests
// waiting on it (their wake is under way or due), and never when DeepAfter
// is 0.
func deepAction(a Activity, s Settings, now time.Time) bool {
	if a.State != api.StateHibernated || a.Deep || s.DeepAfter <= 0 || a.Inflight > 0 || a.HibernatedAt.IsZero() {
		return false
	}
	return now.Sub(a.HibernatedAt) >= s.DeepAfter
}
