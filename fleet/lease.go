package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
)

// Ownership is a lease. A function's record names its owner box (and an
// epoch, raised at every change of owner, by a revision-checked write); the
// owner holds all its functions under one lease, its heartbeat entry, which
// it renews every HeartbeatEvery by a revision-checked write (one write per
// beat however many functions it runs). The timings, on every box's own
// monotonic clock:
//
//   - FenceAfter (14 s): a box whose last successful renewal was SENT that
//     long ago fences itself: it answers 503 for the functions it owns, then
//     hibernates them (scale to zero), before anyone may take them over.
//   - BoxTTL (20 s), the takeover deadline: another box takes a function
//     over when it has SEEN no renewal of the owner's lease for that long.
//     A renewal is seen after it is sent, so the owner has fenced itself at
//     least BoxTTL-FenceAfter (6 s) before: one function never runs on two
//     boxes, whatever the clocks say (only their rates must agree).
//
// FenceAfter stays well above a JetStream leader election (up to about 10 s
// when a box holding a stream's leadership dies), during which no box can
// renew: the survivors must not fence themselves then. A box killed is
// taken over at most BoxTTL after its last renewal, plus a placement and a
// deploy (about 1 s): within the 30 s promised.
var (
	HeartbeatEvery = 1 * time.Second
	FenceAfter     = 14 * time.Second
	BoxTTL         = 20 * time.Second
)

// Local is this box's own provider, as the fleet drives it on a takeover
// (deploy), a fence (scale to zero: hibernate) and after a rejoin (delete a
// copy another box now owns). *provider.Provider is one.
type Local interface {
	Deploy(ctx context.Context, dep types.FunctionDeployment) error
	Delete(ctx context.Context, ns, name string) error
	Scale(ctx context.Context, ns, name string, replicas int) error
	Status(ctx context.Context, ns, name string) (types.FunctionStatus, error)
}

// lease is this box's side of its heartbeat lease.
type lease struct {
	mu       sync.Mutex
	instance string    // this box's (instanceOf): tells its own entry from a namesake's
	rev      uint64    // the revision of its heartbeat entry, for the next CAS
	renewed  time.Time // when the last successful renewal was sent
	fenced   bool
	// owned are the functions this box fenced: after the rejoin each is
	// resumed (still its own) or removed (taken over or deleted meanwhile).
	owned []string
	told  bool // that the records could not be read yet, once per fence
	// recheck are the functions this box fenced and kept at a rejoin (see
	// sweepKept): the records the rejoin read may have been stale, so each
	// is checked again on every beat until its record names another box.
	recheck map[string]bool
	// unconfirmed are the functions this box fenced whose ownership no
	// write has proven since: they answer 503 here (see refuses) while
	// their record names this box. A read after the heal may be stale (a
	// box cut off that led the records' stream answers its own reads with
	// its old copy until its raft hears the new term), and serving on it
	// let a function taken over meanwhile answer on two boxes; a write on
	// the record's revision cannot be stale (see confirm).
	unconfirmed map[string]bool
	// lifted is when the fence was last lifted: for a lease after it, the
	// kept functions' records are read again from their leader too.
	lifted time.Time
}

// instanceOf is the box's instance id: kept in its state directory, so
// that the box restarted takes its lease back at once, while another box
// given the same name (another state directory) cannot renew it. Without
// a directory, one per process.
func instanceOf(cfg Config) string {
	b := make([]byte, 8)
	rand.Read(b)
	id := hex.EncodeToString(b)
	if cfg.Dir == "" {
		return id
	}
	path := filepath.Join(filepath.Dir(cfg.Dir), "instance")
	if old, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(old))) > 0 {
		return strings.TrimSpace(string(old))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
		if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
			slog.Warn("fleet: instance id not kept: a restart waits for its old lease to expire", "err", err)
		}
	}
	return id
}

// SetLocal gives the fleet this box's provider (takeovers, fencing and
// rejoin cleanup need it; without it the box never takes a function over).
func (f *Fleet) SetLocal(l Local) {
	f.mu.Lock()
	f.prov = l
	f.mu.Unlock()
}

// heartbeat renews this box's lease: a write that succeeds only on the
// revision it last wrote, so two processes under one box name cannot both
// hold it.
func (f *Fleet) heartbeat(ctx context.Context) error {
	b := Box{Name: f.cfg.Box, URL: f.cfg.Advertise, Labels: f.cfg.Labels, MemAvailable: memAvailable(), Seen: time.Now().UTC().Format(time.RFC3339), Instance: f.lease.instance}
	v, err := json.Marshal(b)
	if err != nil {
		return err
	}
	f.lease.mu.Lock()
	rev := f.lease.rev
	f.lease.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 2*HeartbeatEvery)
	defer cancel()
	sent := time.Now()
	rev, err = f.renew(ctx, rev, v)
	if err != nil {
		return fmt.Errorf("renew the lease of box %s: %w", f.cfg.Box, err)
	}
	f.lease.mu.Lock()
	f.lease.rev = rev
	if sent.After(f.lease.renewed) {
		f.lease.renewed = sent
	}
	f.lease.mu.Unlock()
	f.mu.Lock()
	f.live[f.cfg.Box] = b
	f.mu.Unlock()
	return nil
}

// renew writes the heartbeat on revision rev (0: create it). An entry that
// expired meanwhile is created again; one written by this box (this
// process, or before its restart) is taken up; one written by another box
// is refused.
func (f *Fleet) renew(ctx context.Context, rev uint64, v []byte) (uint64, error) {
	var err error
	if rev != 0 {
		var n uint64
		if n, err = f.boxes.Update(ctx, f.cfg.Box, v, rev); err == nil {
			return n, nil
		}
	}
	n, cerr := f.boxes.Create(ctx, f.cfg.Box, v)
	if cerr == nil {
		return n, nil
	}
	if !errors.Is(cerr, jetstream.ErrKeyExists) {
		return 0, errors.Join(err, cerr)
	}
	e, gerr := f.boxes.Get(ctx, f.cfg.Box)
	if gerr != nil {
		return 0, errors.Join(err, gerr)
	}
	var b Box
	if json.Unmarshal(e.Value(), &b) != nil || b.Instance != f.lease.instance {
		return 0, fmt.Errorf("another box (instance %s, another state directory) heartbeats as box %s: box names must be unique", b.Instance, f.cfg.Box)
	}
	return f.boxes.Update(ctx, f.cfg.Box, v, e.Revision())
}

// guard fences this box when its lease has not been renewed for
// FenceAfter, and lifts the fence once it has been renewed again.
func (f *Fleet) guard(ctx context.Context) {
	f.lease.mu.Lock()
	stale := time.Since(f.lease.renewed) > FenceAfter
	fenced := f.lease.fenced
	f.lease.mu.Unlock()
	switch {
	case stale && !fenced:
		f.fence(ctx)
	case !stale && fenced:
		f.rejoin(ctx)
	}
}

// fence stops serving every function this box owns: from now on they
// answer 503 here (see Wrap), and each is hibernated.
func (f *Fleet) fence(ctx context.Context) {
	f.mu.RLock()
	var owned []string
	for k, r := range f.records {
		if r.Box == f.cfg.Box {
			owned = append(owned, k)
		}
	}
	local := f.prov
	f.mu.RUnlock()
	f.lease.mu.Lock()
	f.lease.fenced, f.lease.owned = true, owned
	since := time.Since(f.lease.renewed)
	f.lease.mu.Unlock()
	slog.Warn("fleet: lease not renewed, fenced: this box stops serving its functions", "box", f.cfg.Box, "since", since.Round(time.Millisecond), "functions", len(owned))
	if local == nil {
		return
	}
	// In the background: a hibernation drains requests in flight first,
	// and the fence must be free to lift meanwhile.
	go func() {
		for _, k := range owned {
			key := splitKey(k)
			if err := local.Scale(ctx, key.Namespace, key.Name, 0); err != nil && !errors.Is(err, api.ErrNotFound) {
				slog.Warn("fleet: fenced function not hibernated (it answers 503 all the same)", "function", k, "err", err)
			}
		}
	}()
}

// rejoin lifts the fence after a renewal: the records are read again from
// KV first (the watch may lag), then every function this box fenced is
// either its own still (it serves it again: the next request wakes it) or
// another box's, or gone (its local copy is removed). Those it keeps
// are checked again on every beat after (sweepKept): the records read here
// may be stale.
func (f *Fleet) rejoin(ctx context.Context) {
	if err := f.resync(ctx); err != nil {
		f.lease.mu.Lock()
		first := !f.lease.told
		f.lease.told = true
		f.lease.mu.Unlock()
		if first {
			slog.Warn("fleet: renewed, but the records cannot be read yet: still fenced", "box", f.cfg.Box, "err", err)
		}
		return
	}
	f.lease.mu.Lock()
	owned := f.lease.owned
	f.lease.mu.Unlock()
	f.mu.RLock()
	others := make([]string, 0, len(f.live))
	for name := range f.live {
		others = append(others, name)
	}
	f.mu.RUnlock()
	for _, name := range others {
		f.beating(ctx, name) // the boxes watch may lag too
	}
	f.lift(ctx, owned)
}

// lift lifts the fence, the records read again: the local copies of the
// functions it fenced that another box owns now are removed, those still
// its own are confirmed (see confirm) and serve again, and all of them are
// left to sweepKept to check again on every beat (a copy kept on a stale
// record, or one whose removal failed, goes later; one not confirmed yet
// answers 503 until it is).
func (f *Fleet) lift(ctx context.Context, owned []string) {
	lost := f.dropLost(ctx, owned)
	_, unproven := f.confirm(ctx, owned)
	f.lease.mu.Lock()
	f.lease.fenced, f.lease.owned, f.lease.told, f.lease.lifted = false, nil, false, time.Now()
	if f.lease.recheck == nil {
		f.lease.recheck = map[string]bool{}
	}
	if f.lease.unconfirmed == nil {
		f.lease.unconfirmed = map[string]bool{}
	}
	for _, k := range owned {
		f.lease.recheck[k] = true
		delete(f.lease.unconfirmed, k)
	}
	for _, k := range unproven {
		f.lease.unconfirmed[k] = true
	}
	f.lease.mu.Unlock()
	slog.Info("fleet: lease renewed, fence lifted", "box", f.cfg.Box, "kept", len(owned)-lost, "lost", lost, "unconfirmed", len(unproven))
}

// confirm proves that this box still owns each of keys whose record names
// it, by writing that record back unchanged on the revision it read: a
// write succeeds only on the stream's current leader (a stale one cannot
// commit it without a majority) and on the record's last revision
// (checked again when the write is applied), so it fails if the record
// read was stale, a takeover or a delete since. It returns the keys so
// confirmed, and those whose record names this box but whose write failed
// (tried again on the next beat, see sweepKept); a key whose record names
// another box or is gone is neither: lost (forwarded, and removed here by
// dropLost or sweepKept).
func (f *Fleet) confirm(ctx context.Context, keys []string) (proven, unproven []string) {
	// One bound for all: a write to a stale leader waits out its timeout,
	// and the fence and the beat must go on.
	ctx, cancel := context.WithTimeout(ctx, 2*HeartbeatEvery)
	defer cancel()
	for _, k := range keys {
		r, ok := f.recordOf(k)
		if !ok || r.Box != f.cfg.Box {
			continue
		}
		if ctx.Err() == nil {
			err := f.updateRecord(ctx, k, r, r.rev)
			if err == nil {
				proven = append(proven, k)
				continue
			}
			slog.Debug("fleet: ownership not confirmed yet", "function", k, "rev", r.rev, "err", err)
		}
		unproven = append(unproven, k)
	}
	return proven, unproven
}

// confirmPending tries again to confirm the functions not confirmed yet
// whose record names this box (see confirm; the others are lost, left to
// sweepKept).
func (f *Fleet) confirmPending(ctx context.Context) {
	f.lease.mu.Lock()
	var pending []string
	for k := range f.lease.unconfirmed {
		pending = append(pending, k)
	}
	f.lease.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	proven, _ := f.confirm(ctx, pending)
	f.lease.mu.Lock()
	defer f.lease.mu.Unlock()
	for _, k := range proven {
		if f.lease.unconfirmed[k] {
			delete(f.lease.unconfirmed, k)
			slog.Info("fleet: ownership confirmed after the rejoin: serves again", "box", f.cfg.Box, "function", k)
		}
	}
}

// dropLost removes the local copies of keys this box no longer owns; it
// returns how many it found lost.
func (f *Fleet) dropLost(ctx context.Context, keys []string) int {
	n, _ := f.dropLostLeft(ctx, keys)
	return n
}

// dropLostLeft is dropLost, and also returns the lost keys whose local
// copy could not be removed (to try again).
func (f *Fleet) dropLostLeft(ctx context.Context, keys []string) (int, []string) {
	f.mu.RLock()
	local := f.prov
	f.mu.RUnlock()
	n := 0
	var left []string
	for _, k := range keys {
		if r, ok := f.recordOf(k); ok && r.Box == f.cfg.Box {
			continue
		}
		n++
		if local == nil {
			continue
		}
		key := splitKey(k)
		err := local.Delete(ctx, key.Namespace, key.Name)
		switch {
		case errors.Is(err, api.ErrNotFound):
			// Not here (removed already): nothing to say.
		case err != nil:
			slog.Error("fleet: a function this box lost stays here (stopped)", "function", k, "err", err)
			left = append(left, k)
		default:
			slog.Info("fleet: removed the local copy of a function another box owns now", "function", k)
		}
	}
	return n, left
}

// reread reads the records of keys again from their stream's leader, so
// that a takeover reaches this box even should its watch lag or stall. For
// a lease after a rejoin, not for ever: by then this box has stopped
// believing itself a leader (see sweepKept; a read still answered stale
// changes nothing, the newest revision is kept). A record deleted, or one
// unreadable, is left to the watch.
func (f *Fleet) reread(ctx context.Context, keys []string) {
	if f.nc == nil {
		return // not connected (a unit test's fleet)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, k := range keys {
		if v, rev, err := f.leaderGet(ctx, functionsBucket, k); err == nil {
			f.setRecord(k, v, rev)
		}
	}
}

// sweepKept removes the local copy of every function this box kept at a
// rejoin (its record then named this box) whose record names another box
// now, or is gone. The rejoin's own check is not enough: the records it
// reads right after the partition heals may be stale (a box cut off keeps
// believing itself a stream's leader until its raft hears the new term, up
// to ~10 s, and answers the leader reads itself), and a takeover the watch
// brings a moment later triggers nothing by itself; nor does a second
// fence recount the function (the watch has given it to another box by
// then). So the kept functions are checked again on every beat, against
// the records the watch keeps (read again from the leader for a lease
// after the rejoin), until their record names another box; a provider is
// asked only for a function lost.
func (f *Fleet) sweepKept(ctx context.Context) {
	f.lease.mu.Lock()
	kept := make([]string, 0, len(f.lease.recheck))
	for k := range f.lease.recheck {
		kept = append(kept, k)
	}
	fresh := time.Since(f.lease.lifted) < BoxTTL
	f.lease.mu.Unlock()
	if fresh {
		f.reread(ctx, kept)
	}
	// Before the removals below: a function still its own serves again as
	// soon as a write proves it (a removal can take a while).
	f.confirmPending(ctx)
	var lost []string
	for _, k := range kept {
		if r, ok := f.recordOf(k); !ok || r.Box != f.cfg.Box {
			lost = append(lost, k)
		}
	}
	if len(lost) == 0 {
		return
	}
	_, left := f.dropLostLeft(ctx, lost)
	f.lease.mu.Lock()
	for _, k := range lost {
		if !slices.Contains(left, k) {
			delete(f.lease.recheck, k)
			delete(f.lease.unconfirmed, k)
		}
	}
	f.lease.mu.Unlock()
}

// resync reads every record again, each from its stream's leader: a box
// back from a partition must not trust its own replica, which may not have
// caught up yet.
func (f *Fleet) resync(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	lister, err := f.funcs.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("list the functions: %w", err)
	}
	recs := map[string]Record{}
	for k := range lister.Keys() {
		v, rev, err := f.leaderGet(ctx, functionsBucket, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", k, err)
		}
		var r Record
		if json.Unmarshal(v, &r) == nil {
			r.rev = rev
			recs[k] = r
		}
	}
	f.mergeRecords(recs)
	return nil
}

// leaderGet reads a key's last value from its bucket's stream leader (a
// KV Get may be answered by any replica, a lagging one included). A
// deleted key is ErrKeyNotFound.
func (f *Fleet) leaderGet(ctx context.Context, bucket, k string) ([]byte, uint64, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + bucket + "." + k})
	msg, err := f.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+bucket, req)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s from %s's leader: %w", k, bucket, err)
	}
	var resp struct {
		Error *struct {
			ErrCode     jetstream.ErrorCode `json:"err_code"`
			Description string              `json:"description"`
		} `json:"error"`
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, 0, fmt.Errorf("read %s from %s's leader: %w", k, bucket, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == jetstream.JSErrCodeMessageNotFound:
		return nil, 0, jetstream.ErrKeyNotFound
	case resp.Error != nil:
		return nil, 0, fmt.Errorf("read %s from %s's leader: %s", k, bucket, resp.Error.Description)
	case resp.Message == nil:
		return nil, 0, fmt.Errorf("read %s from %s's leader: no message", k, bucket)
	case strings.Contains(string(resp.Message.Hdrs), "KV-Operation"):
		return nil, 0, jetstream.ErrKeyNotFound // a delete or purge marker
	}
	return resp.Message.Data, resp.Message.Seq, nil
}

// mergeRecords takes the records read from KV, keeping any newer one the
// watch brought meanwhile.
func (f *Fleet) mergeRecords(recs map[string]Record) {
	var newest uint64
	for _, r := range recs {
		newest = max(newest, r.rev)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, r := range f.records {
		if n, ok := recs[k]; (ok && r.rev > n.rev) || (!ok && r.rev > newest) {
			recs[k] = r
		}
	}
	f.records = recs
}

// Fenced says whether this box has fenced itself.
func (f *Fleet) Fenced() bool {
	f.lease.mu.Lock()
	defer f.lease.mu.Unlock()
	return f.lease.fenced
}

// refuses says whether this box must not serve the function k itself: it
// is fenced, and k is not known to run elsewhere (its own functions, those
// it had when it fenced, and any its records lack: deployed through
// another box a moment ago, or from before the join); or k is one it
// fenced whose ownership is not confirmed yet (see confirm), and its
// record (perhaps stale) names this box.
func (f *Fleet) refuses(k string) bool {
	f.lease.mu.Lock()
	// The lease's age too, not only the guard's flag: a process frozen
	// past its fence (a pause, a suspended VM) must not serve the
	// request it finds on waking, before the guard's next tick.
	fenced := f.lease.fenced || (!f.lease.renewed.IsZero() && time.Since(f.lease.renewed) > FenceAfter)
	owned := f.lease.owned
	unproven := f.lease.unconfirmed[k]
	f.lease.mu.Unlock()
	switch {
	case fenced && slices.Contains(owned, k):
		return true
	case !fenced && !unproven:
		return false
	}
	r, ok := f.recordOf(k)
	return !ok || r.Box == f.cfg.Box
}

func (f *Fleet) recordOf(k string) (Record, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.records[k]
	return r, ok
}

// splitKey is key's inverse: "NS.NAME" (a namespace has no dots).
func splitKey(k string) api.Key {
	ns, name, _ := strings.Cut(k, ".")
	return api.Key{Namespace: ns, Name: name}
}
