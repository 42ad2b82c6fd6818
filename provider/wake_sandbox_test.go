package provider

import (
	"encoding/json"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

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
