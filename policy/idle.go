package policy

import "time"

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
	checkpoint := Checkpoint
	if !canCheckpoint {
		checkpoint = Pause
	}
	switch a.State {
	case Awake:
		if a.Replicas == 0 {
			return ""
		}
		switch s.Strategy {
		case Pause, Remove:
			if idle >= s.ZeroDuration {
				return s.Strategy
			}
		case PauseThenCheckpoint:
			if idle >= s.ZeroDuration {
				return checkpoint
			}
			if idle >= s.PauseAfter {
				return Pause
			}
		default:
			if idle >= s.ZeroDuration {
				return checkpoint
			}
		}
	case Paused:
		if s.Strategy != Pause && canCheckpoint && idle >= s.ZeroDuration {
			return Checkpoint
		}
	}
	return ""
}
