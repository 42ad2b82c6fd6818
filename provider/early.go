package provider

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// A restored replica answers a median 55 ms (27-91 ms) before Docker's
// start-from-checkpoint call returns: after CRIU resumes the processes,
// runc, the shim, containerd and dockerd still do their bookkeeping
// (bench/tried.md 24). A wake therefore probes the replica while the call
// runs and lets its requests through at the first answer. What makes that
// safe:
//   - the wake's record (the function awake, its last wake) is written
//     before the replica is published, so a provider that crashes after the
//     first answers forgets nothing the requests could see;
//   - the checkpoint stays in the record and on disk until the call returned
//     successfully: a failed start can still be retried from it;
//   - fn.opMu stays held until the call returned, so no sleep, scale,
//     deep sleep or reconciliation acts on a replica whose start is still
//     running; only the invoke path and the status (availableReplicas) see
//     it, and only once it answered its readiness probe.
//
// A start that fails after the replica answered is settled by asking the
// engine: a container that runs is accepted (logged); one that does not is
// a failed restore (the checkpoint kept, the next request restores it
// again), and whatever the requests it answered changed in its memory is
// lost: the record says so (StateLost).

// wakeInProgress is the wake a function's operation is doing, while it
// brings its replicas up (set by scaleUpInOp; guarded by fn.opMu).
type wakeInProgress struct {
	from  string // the sleep it wakes from (a state, or TierDeep)
	start time.Time
	// noted: the wake's record was written at a replica's early answer.
	noted bool
	// startCall is how long the engine's start call of the last replica
	// that answered early took in all.
	startCall time.Duration
	// sandboxes: the inspects of its replicas' sandboxes begun while its
	// record was written, by sandbox (see lookAheadAtSandboxes).
	sandboxes map[string]*sandboxLook
}

// Readiness polling while the engine's start call runs. CRIU's network lock
// drops SYNs until it unlocks, and a dropped SYN costs the kernel's 1 s
// retransmit: each attempt gives up on the connection after earlyDial (a
// handshake on the local bridge takes well under a millisecond; an attempt
// that times out is simply made again) and the next begins earlyPoll later,
// or earlyPoll times the number of replicas being probed at once when
// several restore together (see probePause).
const (
	earlyDial = 15 * time.Millisecond
	earlyPoll = 2 * time.Millisecond
	// earlyPollMax bounds the pause between two attempts however many
	// replicas are probed.
	earlyPollMax = 40 * time.Millisecond
)

// probePause is the pause between two attempts of one replica's probe
// while n replicas (this one included) are probed. Restores that run
// together share the cores, and each attempt costs them a socket, a SYN
// and a timer: twenty replicas probed every 2 ms spent about 10 ms of the
// provider's CPU per wake, half of what it spends on one, while each
// restore took 1-2 s (bench/tried.md 31). Spacing the attempts by the
// number probed keeps their total rate about that of a single probe; a
// replica answers at most one pause later than it could have, and a wake
// alone is probed as before.
func probePause(n int64) time.Duration {
	return min(earlyPoll*time.Duration(max(n, 1)), earlyPollMax)
}

func newEarlyProbeClient() *http.Client {
	c := newHealthClient()
	c.Transport = &http.Transport{
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: earlyDial}).DialContext,
	}
	return c
}

// pollAnswer probes a replica being restored until it answers its
// readiness probe (true), or ctx ends (false). Until a bare TCP connection
// succeeds no HTTP request is made: the restore runs on the same cores, and
// a hundred refused HTTP probes cost it more than a hundred connects.
func (p *Provider) pollAnswer(ctx context.Context, addr, path string) bool {
	p.probing.Add(1)
	defer p.probing.Add(-1)
	d := net.Dialer{Timeout: earlyDial}
	for {
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			if p.probeWith(ctx, p.earlyProbe, addr, path) {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(probePause(p.probing.Load())):
		}
	}
}

// startFromCheckpoint has the engine start replica r from its checkpoint
// name, and fills in span. During a wake it publishes the replica as soon
// as it answers, before the engine's call returns, and says so (answered).
func (p *Provider) startFromCheckpoint(ctx context.Context, fn *function, r *replica, name string, span *Span) (answered bool, err error) {
	span.Start = time.Now()
	w := fn.wakeOp
	if w == nil {
		err = p.engine.RestoreContainer(ctx, r.id, name)
		span.Duration = time.Since(span.Start)
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- p.engine.RestoreContainer(ctx, r.id, name) }()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	answer := make(chan bool, 1)
	addr, path := r.addr(p.cfg.FunctionPort), healthPath(fn)
	go func() { answer <- p.pollAnswer(pctx, addr, path) }()
	select {
	case err = <-done:
	case answered = <-answer:
		if answered {
			p.publishEarly(fn, r, w, Span{Start: span.Start, Duration: time.Since(span.Start)})
		}
		err = <-done
	}
	span.Duration = time.Since(span.Start)
	if answered {
		w.startCall = span.Duration
	}
	return answered, err
}

// publishEarly lets requests through to a restored replica that answered
// while the engine's start call still runs: the wake's record first (once
// per wake), then the endpoint.
func (p *Provider) publishEarly(fn *function, r *replica, w *wakeInProgress, untilAnswer Span) {
	p.metrics.restoreSeconds.Observe(untilAnswer.Duration.Seconds())
	if !w.noted {
		w.noted = true
		fn.mu.Lock()
		fn.restoreSpan = &untilAnswer
		fn.mu.Unlock()
		p.noteWake(fn, w.from, time.Since(w.start), nil, true)
	}
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if fn.deleted || fn.replicas[r.index] != r {
		return
	}
	r.status, r.ready = "running", true
	fn.refreshEndpointsLocked(p.cfg.FunctionPort)
	fn.touch()
}

// lateStartFailure settles a start from a checkpoint that failed after the
// replica had answered (and taken requests): the engine says whether the
// container runs. One that runs is accepted (nil); otherwise the replica is
// withdrawn, what its requests changed is recorded as lost, and the error
// is the restore's (its checkpoint is kept and restored again next time).
func (p *Provider) lateStartFailure(ctx context.Context, fn *function, r *replica, startErr error) error {
	st, err := p.engine.InspectContainer(context.WithoutCancel(ctx), r.id)
	if err == nil && st.Running && !st.Paused {
		slog.Warn("the engine's start from the checkpoint failed after the replica answered, but the container runs: accepted", "function", fn.key.String(), "replica", r.index, "err", startErr)
		return nil
	}
	status := "exited"
	if err == nil {
		status = st.Status
	}
	p.setStatus(fn, r, status) // out of service
	why := fmt.Sprintf("the engine's start from the checkpoint failed (%v) after the restored replica had answered requests; it is not running (%s), and what those requests changed is lost: the next wake restores the same checkpoint", startErr, status)
	if err != nil {
		why = fmt.Sprintf("the engine's start from the checkpoint failed (%v) after the restored replica had answered requests, and whether it runs is unknown (%v): it is out of service, and what those requests changed may be lost", startErr, err)
	}
	slog.Error("restored replica answered, then its start failed", "function", fn.key.String(), "replica", r.index, "reason", why)
	fn.mu.Lock()
	rec := *fn.rec
	fn.mu.Unlock()
	rec.StateLost = &LossInfo{At: time.Now().UTC(), Replica: r.index, Reason: why}
	if cerr := p.commit(fn, &rec); cerr != nil {
		slog.Error("record the lost state", "function", fn.key.String(), "err", cerr)
	}
	return fmt.Errorf("%w (after the replica had answered requests)", startErr)
}

// endWake finishes the record of a wake whose first replica answered
// early (its LastWake already written): how long the engine's start call
// took in all, or the failure that followed.
func (p *Provider) endWake(fn *function, w *wakeInProgress, err error) {
	fn.mu.Lock()
	fn.restoreSpan = nil // the wake's span was recorded at the answer
	rec := *fn.rec
	fn.mu.Unlock()
	if err != nil {
		p.metrics.wakeFailures.Inc()
		slog.Error("wake failed after a replica had answered", "function", fn.key.String(), "err", err)
		return
	}
	if rec.LastWake == nil || !rec.LastWake.Early || rec.LastWake.StartCall == w.startCall {
		return // not early, or noted already (forgetCheckpoint)
	}
	lw := *rec.LastWake
	lw.StartCall = w.startCall
	rec.LastWake = &lw
	if cerr := p.commit(fn, &rec); cerr != nil {
		slog.Error("record the wake", "function", fn.key.String(), "err", cerr)
	}
}
