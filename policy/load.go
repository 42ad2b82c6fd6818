package policy

import (
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// rateWindow keeps a function's request counter over the scaling window.
type rateWindow struct {
	samples []sample
	managed bool // replicas were raised by the load policy
	setTo   int  // the count the load policy last set
}

type sample struct {
	at       time.Time
	requests uint64
}

// add records a sample and returns the request rate over the window, and
// whether the window is full enough to judge.
func (w *rateWindow) add(at time.Time, requests uint64, window time.Duration) (float64, bool) {
	w.samples = append(w.samples, sample{at, requests})
	cut := 0
	for cut < len(w.samples)-1 && at.Sub(w.samples[cut+1].at) >= window {
		cut++
	}
	w.samples = w.samples[cut:]
	first := w.samples[0]
	span := at.Sub(first.at)
	if span < window*9/10 || span <= 0 {
		return 0, false
	}
	return float64(requests-first.requests) / span.Seconds(), true
}

// loadStep applies the load policy to one function: when its request rate
// over the window is above the target, one step up towards scale.max (a step
// is scale.factor percent of max); when it falls to the target or below, one
// step back down towards scale.min, for replicas the policy added. Equal min
// and max, or a factor of 0, disable it. At most one step per window.
func (p *Policies) loadStep(a Activity, s Settings, now time.Time) (int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := p.rates[a.Key]
	if w == nil {
		w = &rateWindow{}
		p.rates[a.Key] = w
	}
	rate, full := w.add(now, a.Requests, p.cfg.ScaleWindow)
	if a.State != api.StateAwake || a.Replicas == 0 || s.Min == s.Max || s.Factor == 0 || !full || p.busy[a.Key] {
		return 0, false
	}
	if w.managed && a.Replicas != w.setTo {
		w.managed = false // someone else scaled it since: leave it to them
	}
	if now.Sub(p.lastStep[a.Key]) < p.cfg.ScaleWindow {
		return 0, false
	}
	step := max(1, (s.Max*s.Factor+99)/100)
	n := a.Replicas
	switch {
	case rate > s.Target && a.Replicas < s.Max:
		n = min(s.Max, a.Replicas+step)
		w.managed = true
	case rate <= s.Target && w.managed && a.Replicas > s.Min:
		n = max(s.Min, a.Replicas-step)
		if n == s.Min {
			w.managed = false
		}
	default:
		return 0, false
	}
	w.setTo = n
	p.lastStep[a.Key] = now
	return n, true
}
