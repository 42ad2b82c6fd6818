package api

// Key names a function.
type Key struct{ Namespace, Name string }

func (k Key) String() string { return k.Name + "." + k.Namespace }

// Function states: what the provider records, the policies read and the
// com.openfaas.criu.state annotation shows.
const (
	StateAwake      = "awake"
	StatePaused     = "paused"
	StateHibernated = "hibernated"
)

// TierDeep is the sleep tier beyond hibernated that the
// com.openfaas.criu.tier annotation shows: checkpointed with the network
// sandbox stopped too. The other tiers carry the states' names.
const TierDeep = "deep"

// Sleep strategies: how a function is put to sleep when scaled to zero or
// found idle.
const (
	StrategyCheckpoint          = "checkpoint"
	StrategyPause               = "pause"
	StrategyPauseThenCheckpoint = "pause-then-checkpoint"
	// StrategyRemove is OpenFaaS CE's scale to zero: replicas are removed,
	// their state is lost and the next request starts one cold.
	StrategyRemove = "remove"
)

// ValidStrategy reports whether s names a strategy.
func ValidStrategy(s string) bool {
	switch s {
	case StrategyCheckpoint, StrategyPause, StrategyPauseThenCheckpoint, StrategyRemove:
		return true
	}
	return false
}
