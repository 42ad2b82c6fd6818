package policy

import (
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

// MakeRoom hibernates least recently used idle functions until need more
// bytes fit under the budget; k, the function about to wake, is spared. It
// is called before a wake.
func (p *Policies) MakeRoom(ctx context.Context, k api.Key, need int64) {
	if p.cfg.Budget <= 0 {
		return
	}
	p.budgetMu.Lock()
	defer p.budgetMu.Unlock()
	acts := p.fleet.Activity()
	if excess := Usage(acts) + need - p.cfg.Budget; excess > 0 {
		p.free(ctx, acts, excess, k)
	}
}

func (p *Policies) free(ctx context.Context, acts []Activity, excess int64, except api.Key) {
	if !p.cfg.CanCheckpoint {
		log.Printf("policy: functions use %d bytes over the memory budget, but CRIU is unusable so none can be hibernated", excess)
		return
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
			return
		}
		s, _ := SettingsFor(v.Labels, p.cfg.Defaults)
		err := p.fleet.Sleep(ctx, v.Key, api.StrategyCheckpoint, ReasonBudget, s.InflightOptIn, time.Time{})
		if err == nil {
			excess -= v.Memory
			continue
		}
		if !errors.Is(err, ErrBusy) {
			log.Printf("policy: hibernate %s for the memory budget: %v", v.Key, err)
		}
	}
}
