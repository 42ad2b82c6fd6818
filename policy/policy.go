// Package policy decides when functions sleep, wake and scale: the idle
// policy (with its pause tier), the memory budget, load autoscaling and the
// backup schedule. It sees the provider only through Fleet, a small view of
// the functions and the few actions it may take, so it is tested without
// Docker or CRIU.
package policy

import (
	"context"
	"errors"
	"github.com/faas-criu/faas-criu/internal/ticker"
	"log"
	"sync"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// Activity is what the policies know of one function at one moment.
type Activity struct {
	api.Key
	Labels   map[string]string
	State    string // api.StateAwake, StatePaused or StateHibernated
	Replicas int    // target replicas (0 when asleep)
	LastUsed time.Time
	Inflight int64
	Requests uint64 // every request started, ever
	Memory   int64  // working set of its live containers
	// SleptMemory is the working set it had when it went to sleep: what a
	// wake will need.
	SleptMemory int64
	// SleepReason says why it sleeps ("memory budget", "idle", ...).
	SleepReason string
	// LastBackup is when it was last backed up (or deployed).
	LastBackup time.Time
	// HibernatedAt is when its newest checkpoint was taken (hibernated only).
	HibernatedAt time.Time
	// Deep says a hibernated function's sandboxes are stopped too.
	Deep bool
}

// Fleet is what the policies need from the provider. Sleep, Scale and Wake
// return ErrBusy when the function is in the middle of another operation.
type Fleet interface {
	Activity() []Activity
	// Sleep pauses or hibernates a function (how: Pause or Checkpoint). Unless
	// allowInflight, it refuses while requests are in flight. With a non-zero
	// usedAt (the LastUsed the decision was based on) it refuses, ErrBusy, a
	// function used or woken since: the decision is stale.
	Sleep(ctx context.Context, k api.Key, how, reason string, allowInflight bool, usedAt time.Time) error
	Scale(ctx context.Context, k api.Key, replicas int) error
	Wake(ctx context.Context, k api.Key) error
	// Backup checkpoints a running function while it keeps running, keeping
	// the newest keep backups of each replica.
	Backup(ctx context.Context, k api.Key, keep int) error
	// Deepen stops the network sandboxes of a hibernated function (the deep
	// tier); its containers stay, and a wake starts them again.
	Deepen(ctx context.Context, k api.Key) error
}

// ErrBusy says a function is in the middle of another operation.
var ErrBusy = errors.New("function is busy with another operation")

// Config configures the policies.
type Config struct {
	Defaults
	Tick        time.Duration // how often the policies look
	Budget      int64         // bytes for running functions; 0 means no budget
	Autoscale   bool          // the load policy
	ScaleWindow time.Duration // the load policy's measuring window
	// CanCheckpoint is false when CRIU is unusable: the budget then cannot
	// free memory, and checkpoint strategies pause instead.
	CanCheckpoint bool
	// RoomWait bounds how long making room for a wake or a deploy waits
	// for candidates busy with another operation (0: DefaultRoomWait).
	RoomWait time.Duration
}

// Policies decides when functions sleep, wake and scale: the idle policy
// (with its pause tier), the memory budget and the load policy.
type Policies struct {
	fleet Fleet
	cfg   Config
	now   func() time.Time

	budgetMu sync.Mutex // one MakeRoom at a time
	mu       sync.Mutex
	busy     map[api.Key]bool // an action of ours is under way
	rates    map[api.Key]*rateWindow
	lastStep map[api.Key]time.Time
}

// New returns the policies over fleet.
func New(fleet Fleet, cfg Config) *Policies {
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.ScaleWindow <= 0 {
		cfg.ScaleWindow = 10 * time.Second
	}
	return &Policies{
		fleet: fleet, cfg: cfg, now: time.Now,
		busy: map[api.Key]bool{}, rates: map[api.Key]*rateWindow{}, lastStep: map[api.Key]time.Time{},
	}
}

// Run applies the policies every tick until ctx ends.
func (p *Policies) Run(ctx context.Context) {
	ticker.Every(ctx, p.cfg.Tick, func() { p.tick(ctx) })
}

func (p *Policies) tick(ctx context.Context) {
	acts := p.fleet.Activity()
	now := p.now()
	p.enforceBudget(ctx, acts)
	for _, a := range acts {
		s, _ := SettingsFor(a.Labels, p.cfg.Defaults)
		if how := idleAction(a, s, now, p.cfg.CanCheckpoint); how != "" {
			p.async(ctx, a.Key, func(ctx context.Context) error {
				return p.fleet.Sleep(ctx, a.Key, how, "idle", false, a.LastUsed)
			})
			continue
		}
		if deepAction(a, s, now) {
			p.async(ctx, a.Key, func(ctx context.Context) error { return p.fleet.Deepen(ctx, a.Key) })
			continue
		}
		if a.State == api.StateHibernated && a.Inflight > 0 && a.SleepReason == ReasonBudget {
			// Requests wait on a function the budget put to sleep: bring it
			// back when there is room (waking makes room).
			p.async(ctx, a.Key, func(ctx context.Context) error { return p.fleet.Wake(ctx, a.Key) })
			continue
		}
		if a.State == api.StateAwake && a.Replicas > 0 && s.BackupInterval > 0 && now.Sub(a.LastBackup) >= s.BackupInterval && p.cfg.CanCheckpoint {
			p.async(ctx, a.Key, func(ctx context.Context) error { return p.fleet.Backup(ctx, a.Key, s.BackupsKeep) })
			continue
		}
		if p.cfg.Autoscale {
			if n, ok := p.loadStep(a, s, now); ok {
				p.async(ctx, a.Key, func(ctx context.Context) error { return p.fleet.Scale(ctx, a.Key, n) })
			}
		}
	}
	p.forgetGone(acts)
}

// async runs one action for a function unless one is already under way.
func (p *Policies) async(ctx context.Context, k api.Key, f func(context.Context) error) {
	p.mu.Lock()
	if p.busy[k] {
		p.mu.Unlock()
		return
	}
	p.busy[k] = true
	p.mu.Unlock()
	go func() {
		defer func() {
			p.mu.Lock()
			delete(p.busy, k)
			p.mu.Unlock()
		}()
		if err := f(ctx); err != nil && !errors.Is(err, ErrBusy) && ctx.Err() == nil {
			log.Printf("policy: %s: %v", k, err)
		}
	}()
}

func (p *Policies) forgetGone(acts []Activity) {
	live := map[api.Key]bool{}
	for _, a := range acts {
		live[a.Key] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for k := range p.rates {
		if !live[k] {
			delete(p.rates, k)
			delete(p.lastStep, k)
		}
	}
}
