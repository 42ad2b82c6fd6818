package provider

import (
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/checkpoint"
)

// CheckpointInfo describes the newest checkpoint of one replica.
type CheckpointInfo = checkpoint.Info

// WakeInfo says how a function last came back from sleep.
type WakeInfo struct {
	At       time.Time     `json:"at"`
	From     string        `json:"from"` // "checkpoint", "in-place", "deep" (checkpoint, sandbox stopped), "pause", "fresh"
	Duration time.Duration `json:"duration"`
	// StateLost is set when a restore failed and the replica was started
	// fresh instead (only with --restore-fallback).
	StateLost bool   `json:"stateLost,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// Restore is when the last replica's start from its checkpoint (Docker,
	// containerd, runc and CRIU) began and how long it took, without any
	// wait before it: wakes of different functions are seen to overlap here.
	Restore *Span `json:"restore,omitempty"`
	// Early says the replica took requests as soon as it answered, before
	// the engine's start call returned (early.go): Duration and Restore
	// then end at that answer, and StartCall, written once the call
	// returned, is how long the call took in all.
	Early     bool          `json:"early,omitempty"`
	StartCall time.Duration `json:"startCall,omitempty"`
}

// Span is a stretch of time.
type Span struct {
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
}

// LossInfo says when and why a replica's memory state was lost.
type LossInfo struct {
	At      time.Time `json:"at"`
	Replica int       `json:"replica"`
	Reason  string    `json:"reason"`
}

// replica is one container of a function, in its network sandbox.
type replica struct {
	index int
	id    string // the function container's ID ("" until it is created)
	name  string // its name
	// sandbox is the container holding the replica's network namespace and
	// address; sandboxUp says it is running.
	sandbox   string
	sandboxUp bool
	ip        string
	spec      string // hash of the deployment it was created from
	// status is Docker's: created, running, paused, exited, dead.
	status string
	ready  bool
	// checking is set while a health check is under way.
	checking bool
	// dumpCut is set when the engine stopped answering during a checkpoint
	// of the replica: what the dump left (the replica running, paused,
	// frozen or stopped) is found out when the engine answers (settleDump).
	dumpCut bool

	// hostport is the address requests go to.
	hostport string
	// load is the invoke path's view of the replica, read without locks
	// (every replica is made with one).
	load *replicaLoad
}

// replicaLoad says whether a replica takes requests, and counts those it
// is serving.
type replicaLoad struct {
	serving  atomic.Bool
	inflight atomic.Int64
}

func (r *replica) addr(port int) string { return net.JoinHostPort(r.ip, strconv.Itoa(port)) }

// function is the provider's live view of one function.
//
// opMu serialises lifecycle operations (deploy, update, scale, hibernate,
// wake, delete), which may take a while. mu guards the fields below it and is
// only held briefly. The invoke path touches neither: it reads the atomic
// endpoint snapshot. A method named …InOp is called with opMu held, one named
// …Locked with mu held.
type function struct {
	key  api.Key
	opMu sync.Mutex

	mu        sync.Mutex
	rec       *record
	replicas  map[int]*replica
	deleted   bool
	changed   chan struct{} // closed and replaced whenever endpoints change
	waking    bool
	wakeErr   error // the last wake attempt's failure, for waiting requests
	wakeErrAt time.Time
	// lostState says a replica was started fresh after a failed restore.
	lostState string
	// restoreSpan is the last replica restore's span, for the wake record.
	restoreSpan *Span
	// wakeOp is the wake under way (guarded by opMu, not mu).
	wakeOp *wakeInProgress

	endpoints   atomic.Pointer[[]*replica] // the replicas taking requests
	rr          atomic.Uint64
	invocations atomic.Uint64
	savedInv    atomic.Uint64 // invocations last written to disk
	inflight    atomic.Int64
	lastUsed    atomic.Int64 // unix nanoseconds of the last request start or end
	// requests counts every request start, for rate-based scaling.
	requests atomic.Uint64
	// lastBackup is when the last backup was taken (unix nanoseconds).
	lastBackup atomic.Int64
}

func newFunction(key api.Key, rec *record) *function {
	fn := &function{key: key, rec: rec, replicas: map[int]*replica{}, changed: make(chan struct{})}
	empty := []*replica{}
	fn.endpoints.Store(&empty)
	fn.invocations.Store(rec.Invocations)
	fn.savedInv.Store(rec.Invocations)
	fn.lastUsed.Store(time.Now().UnixNano())
	fn.lastBackup.Store(time.Now().UnixNano())
	return fn
}

// refreshEndpointsLocked rebuilds the ready-address snapshot and wakes any
// request waiting for it. Call with fn.mu held.
func (fn *function) refreshEndpointsLocked(port int) {
	eps := make([]*replica, 0, len(fn.replicas))
	for _, i := range sortedIndexes(fn.replicas) {
		r := fn.replicas[i]
		up := r.ready && r.status == "running" && r.sandboxUp && r.ip != ""
		if up {
			if r.hostport == "" { // once: the invoke path reads it
				r.hostport = r.addr(port)
			}
			eps = append(eps, r)
		}
		r.load.serving.Store(up)
	}
	fn.endpoints.Store(&eps)
	close(fn.changed)
	fn.changed = make(chan struct{})
}

// snapshot returns a copy of the record and replicas for reading.
func (fn *function) snapshot() (record, []replica) {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	rec := *fn.rec
	reps := make([]replica, 0, len(fn.replicas))
	for _, r := range fn.replicas {
		reps = append(reps, *r)
	}
	return rec, reps
}

// definition returns the function's current deployment.
func (fn *function) definition() types.FunctionDeployment {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return fn.rec.Deployment
}

// touch counts as use for the idle policy: a request, and any wake or
// scale-up, whatever caused it. Without it a function woken by a gateway's
// scale-up (which polls availableReplicas before it sends the request) was
// idle by its last request's clock and went back to sleep at once.
func (fn *function) touch() { fn.lastUsed.Store(time.Now().UnixNano()) }

func sortedIndexes(m map[int]*replica) []int {
	idx := make([]int, 0, len(m))
	for i := range m {
		idx = append(idx, i)
	}
	slices.Sort(idx)
	return idx
}

// dumpCut says whether a checkpoint of r was cut short by the engine and is
// not settled yet (see settleDump).
func (fn *function) dumpCut(r *replica) bool {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	return r.dumpCut
}
