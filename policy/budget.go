package policy

import (
	"cmp"
	"context"
	"errors"
	"log"
	"math"
	"slices"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// ReasonBudget is the sleep reason the memory budget gives.
const ReasonBudget = "memory budget"

// Usage adds up the memory of the functions that hold it (awake or paused).
func Usage(acts []Activity) int64 {
	var used int64
	for _, a := range acts {
		if a.State != api.StateHibernated {
			used += a.Memory
		}
	}
	return used
}

// victims picks the least recently used functions to hibernate so that at
// least excess bytes are freed. Functions with requests in flight are spared
// unless they opted in; except is never picked.
func victims(acts []Activity, excess int64, except api.Key, d Defaults) []Activity {
	var cands []Activity
	for _, a := range acts {
		if a.Key == except || a.State == api.StateHibernated || a.Memory <= 0 {
			continue
		}
		if a.Inflight > 0 {
			if s, _ := SettingsFor(a.Labels, d); !s.InflightOptIn {
				continue
			}
		}
		cands = append(cands, a)
	}
	slices.SortStableFunc(cands, func(x, y Activity) int { return x.LastUsed.Compare(y.LastUsed) })
	var out []Activity
	for _, a := range cands {
		if excess <= 0 {
			break
		}
		out = append(out, a)
		excess -= a.Memory
	}
	return out
}

// Budget reports the memory budget (0 when there is none) and the memory
// functions use now.
func (p *Policies) Budget() (budget, used int64) {
	return p.cfg.Budget, Usage(p.fleet.Activity())
}

// enforceBudget hibernates least recently used idle functions while running
// functions use more than the budget.
func (p *Policies) enforceBudget(ctx context.Context, acts []Activity) {
	if p.cfg.Budget <= 0 {
		return
	}
	p.budgetMu.Lock()
	defer p.budgetMu.Unlock()
	if used := Usage(acts); used > p.cfg.Budget {
		p.free(ctx, acts, used-p.cfg.Budget, api.Key{})
	}
}

// DefaultRoomWait bounds how long making room waits for candidates busy
// with another operation. What holds a candidate's operation lock while a
// wake needs its room is mostly short: the tail of its own wake (a restored
// replica takes requests at its first answer, while the engine's start call
// still runs: a median 21 ms, at most 169 ms at load 6-12), a
// reconciliation (one container listing: a median 3 ms, at most 134 ms),
// a deploy's last steps (bench/tried.md 36). Waiting
// that out keeps the budget; an operation that takes longer (a migration, a
// big checkpoint) is not waited for: the wake goes ahead over the budget,
// says so in the log, and the budget policy hibernates once it can.
const DefaultRoomWait = 3 * time.Second

// roomPoll is how often a busy candidate is tried again.
const roomPoll = 20 * time.Millisecond

// MakeRoom hibernates least recently used idle functions until need more
// bytes fit under the budget; k, the function about to wake, is spared. It
// is called before a wake or a deploy. When the candidates that could make
// the room are busy with another operation, it tries them again until
// they are free or RoomWait has passed: before, a wake that found them
// busy went ahead over the budget at once, without a word (seen in
// TestMemoryBudget: the one candidate left was still finishing its own
// wake, the other in a reconciliation).
func (p *Policies) MakeRoom(ctx context.Context, k api.Key, need int64) {
	if p.cfg.Budget <= 0 {
		return
	}
	start := time.Now()
	wait := cmp.Or(p.cfg.RoomWait, DefaultRoomWait)
	var waited []api.Key // the busy candidates waited for, for the log
	for {
		tried := time.Now()
		left, busy := p.makeRoomOnce(ctx, k, need)
		switch {
		case left <= 0:
			if waited != nil {
				log.Printf("policy: room made for %s after waiting %s for %v, busy with other operations", k, tried.Sub(start).Round(time.Millisecond), waited)
			}
			return
		case len(busy) == 0:
			log.Printf("policy: %s goes ahead %d bytes over the memory budget: no other function can be hibernated", k, left)
			return
		case time.Since(start) >= wait:
			log.Printf("policy: %s goes ahead %d bytes over the memory budget: %v still busy with other operations after %s", k, left, busy, wait)
			return
		}
		waited = busy
		select {
		case <-ctx.Done():
			log.Printf("policy: %s goes ahead %d bytes over the memory budget: %v (waiting for %v)", k, left, ctx.Err(), busy)
			return
		case <-time.After(roomPoll):
		}
	}
}

// makeRoomOnce is one attempt of MakeRoom: what is still over the budget
// after it, and the candidates that were busy. The budget's lock is not
// held between attempts, so that a busy candidate's own wake or scale-up,
// waiting to make room itself, is not held up by this one.
func (p *Policies) makeRoomOnce(ctx context.Context, k api.Key, need int64) (left int64, busy []api.Key) {
	p.budgetMu.Lock()
	defer p.budgetMu.Unlock()
	acts := p.fleet.Activity()
	if excess := Usage(acts) + need - p.cfg.Budget; excess > 0 {
		return p.free(ctx, acts, excess, k)
	}
	return 0, nil
}

// free hibernates candidates, least recently used first, until excess
// bytes are freed; it returns what is still over and the candidates that
// were busy.
func (p *Policies) free(ctx context.Context, acts []Activity, excess int64, except api.Key) (left int64, busy []api.Key) {
	if !p.cfg.CanCheckpoint {
		log.Printf("policy: functions use %d bytes over the memory budget, but CRIU is unusable so none can be hibernated", excess)
		return 0, nil // nothing to wait for
	}
	// Every candidate, least recently used first, and the excess counted
	// down only by those that did go to sleep: a candidate busy with
	// another operation (its operation lock held, say by a wake still
	// finishing after its first answer) or one that failed frees nothing,
	// so the next one is taken. Stopping at the list that would have
	// covered the excess let a wake go ahead over the budget whenever one
	// of them was busy.
	for _, v := range victims(acts, math.MaxInt64, except, p.cfg.Defaults) {
		if excess <= 0 {
			return excess, nil
		}
		s, _ := SettingsFor(v.Labels, p.cfg.Defaults)
		err := p.fleet.Sleep(ctx, v.Key, api.StrategyCheckpoint, ReasonBudget, s.InflightOptIn, time.Time{})
		switch {
		case err == nil:
			excess -= v.Memory
		case errors.Is(err, ErrBusy):
			busy = append(busy, v.Key)
		default:
			log.Printf("policy: hibernate %s for the memory budget: %v", v.Key, err)
		}
	}
	if excess <= 0 {
		return excess, nil
	}
	return excess, busy
}
