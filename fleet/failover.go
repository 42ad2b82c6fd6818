package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
)

// Annotations a failover adds to a function's status.
const (
	// FailoverAnnotation says which box lost the function, and when it was
	// taken over: "from BOX at TIME".
	FailoverAnnotation = "com.openfaas.criu.failover"
	// RestoredAnnotation says what the function was brought up from after
	// a failover: "checkpoint taken at TIME on box BOX" (or backup), or
	// "fresh, no checkpoint".
	RestoredAnnotation = "com.openfaas.criu.restored-from"
)

// freshNoCheckpoint is RestoredAnnotation for a takeover with nothing to
// restore.
const freshNoCheckpoint = "fresh, no checkpoint"

// failover runs every HeartbeatEvery on a joined box that holds its lease:
// it removes the copies it lost while fenced (sweepKept), takes over the
// functions of boxes whose lease ran out, and brings up the functions the
// fleet gave this box in a takeover.
func (f *Fleet) failover(ctx context.Context) {
	f.mu.RLock()
	local, since := f.prov, f.joinedAt
	f.mu.RUnlock()
	if local == nil || f.Fenced() {
		return
	}
	// Before any takeover: a copy this box kept at its rejoin but lost
	// meanwhile goes (see sweepKept).
	f.sweepKept(ctx)
	// A box that just joined has seen no renewal yet: it waits a full
	// lease before judging any other box dead.
	if time.Since(since) < BoxTTL {
		return
	}
	orphans, mine := f.orphans()
	dead := map[string]bool{}
	for k, r := range orphans {
		if _, asked := dead[r.Box]; !asked {
			dead[r.Box] = !f.beating(ctx, r.Box)
		}
		if dead[r.Box] {
			f.takeOver(ctx, k, r)
		}
	}
	for k, r := range mine {
		f.adopt(ctx, local, k, r)
	}
}

// orphans returns the records of functions whose box's lease ran out, and
// this box's records still to be brought up.
func (f *Fleet) orphans() (orphans, mine map[string]Record) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	orphans, mine = map[string]Record{}, map[string]Record{}
	for k, r := range f.records {
		switch {
		case r.Box == f.cfg.Box && r.Adopt:
			mine[k] = r
		case r.Box != f.cfg.Box && !f.alive(r.Box):
			orphans[k] = r
		}
	}
	return orphans, mine
}

// takeOver claims an orphan of a dead box for this box when the usual
// placement rules, among the live boxes, pick it: a write on the record's
// revision, so of the boxes that try at once (their views of the fleet may
// differ) exactly one wins.
func (f *Fleet) takeOver(ctx context.Context, k string, r Record) {
	var dep types.FunctionDeployment
	if err := json.Unmarshal(r.Deployment, &dep); err != nil {
		slog.Error("fleet: an orphan's deployment does not decode", "function", k, "err", err)
		return
	}
	box, why, err := Place(f.Boxes(), dep.Constraints)
	if err != nil {
		f.warnOnce(k, r.rev, "fleet: no box can take over a function of a lost box", "function", k, "from", r.Box, "err", err)
		return
	}
	if box.Name != f.cfg.Box && !f.unclaimed(r.Box) {
		// Every survivor places it alike: the chosen one claims it, and
		// knows at once that it must bring it up (the others learn
		// through a watch, which may lag). Should the views disagree
		// for another lease, any box claims it for the box it places
		// it on, which learns through its watch.
		return
	}
	n := r
	now := time.Now().UTC()
	n.Box, n.Placed, n.Epoch, n.From, n.FailedAt, n.Adopt, n.Restored = box.Name, why, r.Epoch+1, r.Box, &now, true, ""
	if err := f.updateRecord(ctx, k, n, r.rev); err != nil {
		// Another box won, or the record changed: the watch brings it.
		slog.Debug("fleet: takeover lost", "function", k, "err", err)
		return
	}
	slog.Warn("fleet: took over a function of a lost box", "function", k, "from", r.Box, "to", box.Name, "why", why, "epoch", n.Epoch)
}

// updateRecord writes n as k's record on the revision prev it was read at
// (so of boxes writing at once, one wins) and keeps it as this box's view.
func (f *Fleet) updateRecord(ctx context.Context, k string, n Record, prev uint64) error {
	v, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("record of %s: %w", k, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rev, err := f.funcs.Update(ctx, k, v, prev)
	if err != nil {
		return fmt.Errorf("record of %s: %w", k, err)
	}
	f.setRecord(k, v, rev)
	return nil
}

// unclaimed says whether box's functions have waited a second lease
// since it was seen last: their chosen box has not claimed them.
func (f *Fleet) unclaimed(box string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	at, ok := f.beat[box]
	return !ok || time.Since(at) > 2*BoxTTL
}

// beating reads a box's lease entry from its stream's leader: a renewal
// the watch has not brought yet (or KV unreadable) counts as alive, so no
// box takes over on a stale view.
func (f *Fleet) beating(ctx context.Context, box string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, rev, err := f.leaderGet(ctx, boxesBucket, box)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false
	}
	if err != nil {
		return true
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if rev != f.beatRev[box] {
		f.beat[box], f.beatRev[box] = time.Now(), rev
		return true
	}
	return false
}

// adopt brings up here a function the fleet gave this box in a takeover:
// from its newest replicated snapshot when there is one, fresh otherwise;
// the record then says which.
func (f *Fleet) adopt(ctx context.Context, local Local, k string, r Record) {
	var dep types.FunctionDeployment
	if err := json.Unmarshal(r.Deployment, &dep); err != nil {
		slog.Error("fleet: a function taken over does not decode", "function", k, "err", err)
		return
	}
	restored, ok := f.restore(ctx, splitKey(k))
	if !ok {
		if err := local.Deploy(ctx, dep); err != nil && !errors.Is(err, api.ErrExists) {
			slog.Error("fleet: a function taken over does not deploy here (tried again)", "function", k, "err", err)
			return
		}
	}
	n := r
	n.Adopt, n.Restored = false, restored
	if err := f.updateRecord(ctx, k, n, r.rev); err != nil {
		slog.Warn("fleet: a function taken over runs here, its record is not updated yet", "function", k, "err", err)
		return
	}
	slog.Info("fleet: a function taken over runs here", "function", k, "from", r.From, "restored", restored)
}

// restore brings key up from its newest snapshot in the fleet's object
// store (Restore: fetched, its image loaded if this box lacks it, then
// imported). It returns what the status is to say, and whether the
// function now runs (false: deploy it fresh).
func (f *Fleet) restore(ctx context.Context, key api.Key) (string, bool) {
	f.mu.RLock()
	can := f.restorer != nil
	f.mu.RUnlock()
	if !can {
		return freshNoCheckpoint, false
	}
	m, err := f.Objects().Newest(ctx, key)
	if errors.Is(err, ErrNoObject) {
		return freshNoCheckpoint, false
	}
	if err != nil {
		return fmt.Sprintf("fresh: the newest checkpoint could not be found: %v", err), false
	}
	what := fmt.Sprintf("%s taken at %s on box %s", m.Kind, m.TakenAt.UTC().Format(time.RFC3339), m.Box)
	// Not replace: a copy already here (an earlier try that restored but
	// did not update the record) is kept, and counts as brought up.
	if err := f.Restore(ctx, m, false); err != nil {
		if errors.Is(err, api.ErrExists) {
			return what, true
		}
		return fmt.Sprintf("fresh: %s could not be restored: %v", what, err), false
	}
	return what, true
}

// dropTakenOver removes, when a box joins, the local copies of functions
// taken over from it while it was away (a box that was killed and comes
// back): the fleet runs them elsewhere now.
func (f *Fleet) dropTakenOver(ctx context.Context) {
	f.mu.RLock()
	var gone []string
	for k, r := range f.records {
		if r.From == f.cfg.Box && r.Box != f.cfg.Box {
			gone = append(gone, k)
		}
	}
	local := f.prov
	f.mu.RUnlock()
	if local == nil {
		return
	}
	for _, k := range gone {
		key := splitKey(k)
		if _, err := local.Status(ctx, key.Namespace, key.Name); err != nil {
			continue // not here
		}
		f.dropLost(ctx, []string{k})
	}
}

// warnOnce logs msg once per record revision (the failover loop retries
// every beat).
func (f *Fleet) warnOnce(k string, rev uint64, msg string, args ...any) {
	f.mu.Lock()
	seen := f.warned[k] == rev
	f.warned[k] = rev
	f.mu.Unlock()
	if !seen {
		slog.Warn(msg, args...)
	}
}
