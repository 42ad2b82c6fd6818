package provider

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// lockedNet plays CRIU's network lock for pollAnswer: an attempt begun
// while the lock holds sends a SYN that is dropped, so it waits until its
// context ends (its earlyDial deadline, or pollAnswer giving up on it); the
// lock lifts when attempt number lockedFor begins, and later attempts
// connect for real.
type lockedNet struct {
	lockedFor int

	mu          sync.Mutex
	begun       int
	waiting     int // dropped attempts still waiting
	maxInFlight int
	inFlight    int
	// waitingAtWin: dropped attempts still waiting when the one that
	// connected began; -1 until one connected.
	waitingAtWin int
	dropEnds     []error // why each dropped attempt ended
	unlocked     time.Time
}

func (n *lockedNet) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	n.begun++
	n.inFlight++
	n.maxInFlight = max(n.maxInFlight, n.inFlight)
	dropped := n.begun <= n.lockedFor
	if n.begun == n.lockedFor {
		n.unlocked = time.Now()
	}
	if dropped {
		n.waiting++
	} else if n.waitingAtWin < 0 {
		n.waitingAtWin = n.waiting
	}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.inFlight--
		n.mu.Unlock()
	}()
	if !dropped {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	<-ctx.Done()
	n.mu.Lock()
	n.waiting--
	n.dropEnds = append(n.dropEnds, ctx.Err())
	n.mu.Unlock()
	return nil, ctx.Err()
}

func (n *lockedNet) snapshot() lockedNet {
	n.mu.Lock()
	defer n.mu.Unlock()
	return lockedNet{begun: n.begun, waiting: n.waiting, maxInFlight: n.maxInFlight, waitingAtWin: n.waitingAtWin, unlocked: n.unlocked, dropEnds: append([]error(nil), n.dropEnds...)}
}

func readyServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// While CRIU's lock drops SYNs, a wake alone does not wait for an attempt
// to time out before the next: attempts begin every earlyPoll, so the one
// that finds the replica begins while earlier ones still wait, and those
// are cancelled once it answered. Before, one attempt at a time found the
// replica on average half an earlyDial after the unlock.
func TestPollAnswerOverlapsConnects(t *testing.T) {
	addr := readyServer(t)
	n := &lockedNet{lockedFor: 3, waitingAtWin: -1}
	p := &Provider{earlyProbe: newEarlyProbeClient(), probeDial: n.dial}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !p.pollAnswer(ctx, addr, "/_/health") {
		t.Fatal("pollAnswer gave up on a replica that answers once unlocked")
	}
	s := n.snapshot()
	t.Logf("answered %v after the unlock, %d attempts, at most %d in flight", time.Since(s.unlocked), s.begun, s.maxInFlight)
	if s.waitingAtWin < 1 {
		t.Errorf("the attempt that connected began with %d dropped attempts waiting: want it to overlap them", s.waitingAtWin)
	}
	if s.maxInFlight > earlyInFlight {
		t.Errorf("%d attempts in flight at once, want at most %d", s.maxInFlight, earlyInFlight)
	}
	eventually(t, "the dropped attempts cancelled", func() bool { return n.snapshot().waiting == 0 })
	if p.probing.Load() != 0 {
		t.Errorf("probing %d after pollAnswer returned, want 0", p.probing.Load())
	}
}

// Many replicas probed together keep fanout's pacing (bench/tried.md 31):
// their pause is at least earlyDial, so each has one attempt at a time.
func TestPollAnswerPacedWhenManyProbed(t *testing.T) {
	addr := readyServer(t)
	n := &lockedNet{lockedFor: 1 << 30, waitingAtWin: -1}
	p := &Provider{earlyProbe: newEarlyProbeClient(), probeDial: n.dial}
	p.probing.Store(19) // with this one, twenty: a pause of earlyPollMax
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if p.pollAnswer(ctx, addr, "/_/health") {
		t.Fatal("pollAnswer says a replica whose network stays locked answered")
	}
	s := n.snapshot()
	if s.maxInFlight != 1 {
		t.Errorf("%d attempts in flight at once for one of twenty replicas, want 1", s.maxInFlight)
	}
	if want := int(200*time.Millisecond/earlyPollMax) + 1; s.begun > want {
		t.Errorf("%d attempts in 200 ms, want at most %d (one per %v)", s.begun, want, earlyPollMax)
	}
}

// A wake asks the engine about its replica's sandbox while the record that
// says it is awake is being written, not after: the start from the
// checkpoint waited for both in turn. The record is still written before
// the start, and the sandbox is inspected once.
func TestWakeInspectsSandboxWhileRecordIsWritten(t *testing.T) {
	p, eng := hibernated(t)
	fn, _ := p.lookup("", "fn")
	_, reps := fn.snapshot()
	sandbox := reps[0].sandbox
	path := p.store.recordPath(api.DefaultNamespace, "fn")
	inspects := func() (n int) {
		eng.mu.Lock()
		defer eng.mu.Unlock()
		for _, id := range eng.inspected {
			if id == sandbox {
				n++
			}
		}
		return n
	}
	before := inspects()
	var seenDuringWrite atomic.Bool
	var restoresAtWrite atomic.Int64
	restoresAtWrite.Store(-1)
	defer func(w func(string, []byte, os.FileMode) error) { writeRecordFile = w }(writeRecordFile)
	writeRecordFile = func(name string, b []byte, mode os.FileMode) error {
		var rec record
		_ = json.Unmarshal(b, &rec)
		if name == path && rec.State == api.StateAwake && restoresAtWrite.Load() < 0 {
			restoresAtWrite.Store(int64(eng.count("restore")))
			// The first write of the wake: the inspect should be under way.
			deadline := time.Now().Add(2 * time.Second)
			for inspects() == before && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			seenDuringWrite.Store(inspects() > before)
		}
		return writeFileAtomic(name, b, mode)
	}
	mustInvoke(t, p, "fn", 2)
	if !seenDuringWrite.Load() {
		t.Error("the sandbox was not inspected while the wake's record was written")
	}
	if n := restoresAtWrite.Load(); n != 0 {
		t.Errorf("%d restores had begun when the wake's record was written, want 0", n)
	}
	if n := inspects() - before; n != 1 {
		t.Errorf("the sandbox was inspected %d times during the wake, want once", n)
	}
}
