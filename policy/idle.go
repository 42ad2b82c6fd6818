package policy

import (
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// idleAction decides whether an idle function should sleep now, and how
// (Pause or Checkpoint); "" means leave it. Only functions that opt in with
// com.openfaas.scale.zero=true sleep when idle, and never with requests in
// flight.
//
// With pause-then-checkpoint, an awake function idle for PauseAfter is
// paused (it wakes in milliseconds but keeps its memory), and once idle for
// ZeroDuration it is checkpointed (its memory is freed).
func idleAction(a Activity, s Settings, now time.Time, canCheckpoint bool) string {
	if !s.ScaleZero || a.Inflight > 0 {
		return ""
	}
	idle := now.Sub(a.LastUsed)
	checkpoint := api.StrategyCheckpoint
	if !canCheckpoint {
		checkpoint = api.StrategyPause
	}
	switch a.State {
	case api.StateAwake:
		if a.Replicas == 0 {
			return ""
		}
		switch s.Strategy {
		case api.StrategyPause, api.StrategyRemove:
			if idle >= s.ZeroDuration {
				return s.Strategy
			}
		case api.StrategyPauseThenCheckpoint:
			if idle >= s.ZeroDuration {
				return checkpoint
			}
			if idle >= s.PauseAfter {
				return api.StrategyPause
			}
		default:
			if idle >= s.ZeroDuration {
				return checkpoint
			}
		}
	case api.StatePaused:
		if s.Strategy != api.StrategyPause && canCheckpoint && idle >= s.ZeroDuration {
			return api.StrategyCheckpoint
		}
	}
	return ""
}
