package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	criustats "github.com/checkpoint-restore/go-criu/v7/stats"
)

// Stats are CRIU's own figures for one dump.
type Stats struct {
	FreezingTime time.Duration `json:"freezingTime"`
	FrozenTime   time.Duration `json:"frozenTime"`
	MemdumpTime  time.Duration `json:"memdumpTime"`
	MemwriteTime time.Duration `json:"memwriteTime"`
	PagesScanned uint64        `json:"pagesScanned"`
	PagesWritten uint64        `json:"pagesWritten"`
}

// RestoreStats are CRIU's own figures for one restore.
type RestoreStats struct {
	ForkingTime   time.Duration `json:"forkingTime"`
	RestoreTime   time.Duration `json:"restoreTime"`
	PagesRestored uint64        `json:"pagesRestored"`
}

// Recorder runs dumps one at a time, so that the statistics and log CRIU
// leaves in its shared work directory belong to the dump that just ran.
// Restores run concurrently: they are wakes, and holding one behind another
// made 20 functions woken at once answer one every 0.37 s (issue 13). A
// restore reads CRIU's statistics and log only when it ran alone, since the
// work directory (set in runc.conf, one for every container) holds one
// restore.log and one stats-restore. Without a work directory it only runs
// them.
type Recorder struct {
	dir    string
	dumpMu sync.Mutex

	restoreMu sync.Mutex // guards the fields below, never held across a restore
	restoring int        // restores in flight
	restores  uint64     // restores begun, ever
}

// NewRecorder returns a Recorder reading CRIU's work directory dir ("" when
// runc's configuration sets none).
func NewRecorder(dir string) *Recorder { return &Recorder{dir: dir} }

// WorkDir is the CRIU work directory the recorder reads, or "".
func (r *Recorder) WorkDir() string { return r.dir }

// Dump runs dump (a Docker checkpoint request) and returns CRIU's statistics
// for it. When dump fails, the error carries the last error lines of CRIU's
// log.
func (r *Recorder) Dump(dump func() error) (*Stats, error) {
	r.dumpMu.Lock()
	defer r.dumpMu.Unlock()
	if r.dir == "" {
		return nil, dump()
	}
	defer r.lockDumps()()
	_ = os.Remove(filepath.Join(r.dir, "stats-dump"))
	_ = os.Remove(filepath.Join(r.dir, "dump.log"))
	if err := dump(); err != nil {
		return nil, r.withLog(err, "dump.log")
	}
	d, err := os.Open(r.dir)
	if err != nil {
		return nil, nil
	}
	defer d.Close()
	s, err := criustats.CriuGetDumpStats(d)
	if err != nil {
		return nil, nil
	}
	us := func(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }
	return &Stats{
		FreezingTime: us(s.GetFreezingTime()),
		FrozenTime:   us(s.GetFrozenTime()),
		MemdumpTime:  us(s.GetMemdumpTime()),
		MemwriteTime: us(s.GetMemwriteTime()),
		PagesScanned: s.GetPagesScanned(),
		PagesWritten: s.GetPagesWritten(),
	}, nil
}

// lockDumps holds an exclusive lock on the work directory's dump log until
// the returned func is called. CRIU's work directory comes from runc's
// configuration, one for the whole machine, so every dump on it writes the
// same dump.log and stats-dump: dumpMu orders this provider's dumps, the
// lock orders them with another process's (a second provider, a test's, an
// operator's docker checkpoint through faas-criu), whose dump would
// otherwise overwrite the log that explains this one's failure. Without the
// lock (it cannot be taken) the dump goes on: the log is then only likely
// to be its own.
func (r *Recorder) lockDumps() func() {
	f, err := os.OpenFile(filepath.Join(r.dir, ".dump.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return func() {}
	}
	return func() { f.Close() } // closing the file releases the lock
}

// Restore runs restore (a Docker start from a checkpoint) and returns CRIU's
// statistics for it; on failure the error carries CRIU's log lines. Restores
// run concurrently; one that overlapped another returns no statistics, and on
// failure says that the shared log cannot be attributed.
func (r *Recorder) Restore(restore func() error) (*RestoreStats, error) {
	r.restoreMu.Lock()
	alone := r.restoring == 0
	if alone && r.dir != "" {
		// Only with no other restore running: removing the files under a
		// running CRIU would lose its log.
		_ = os.Remove(filepath.Join(r.dir, "stats-restore"))
		_ = os.Remove(filepath.Join(r.dir, "restore.log"))
	}
	r.restoring++
	r.restores++
	began := r.restores
	r.restoreMu.Unlock()

	err := restore()

	// The files are read under the lock, so that no restore starting now
	// removes them under us.
	r.restoreMu.Lock()
	defer r.restoreMu.Unlock()
	r.restoring--
	alone = alone && r.restores == began
	if r.dir == "" {
		return nil, err
	}
	if err != nil {
		if !alone {
			return nil, fmt.Errorf("%w (CRIU's log in %s is not this restore's alone: other restores ran at the same time)", err, r.dir)
		}
		return nil, r.withLog(err, "restore.log")
	}
	if !alone {
		return nil, nil
	}
	return r.restoreStats(), nil
}

// restoreStats reads stats-restore from the work directory (nil when absent).
func (r *Recorder) restoreStats() *RestoreStats {
	d, err := os.Open(r.dir)
	if err != nil {
		return nil
	}
	defer d.Close()
	s, err := criustats.CriuGetRestoreStats(d)
	if err != nil {
		return nil
	}
	us := func(v uint32) time.Duration { return time.Duration(v) * time.Microsecond }
	return &RestoreStats{
		ForkingTime:   us(s.GetForkingTime()),
		RestoreTime:   us(s.GetRestoreTime()),
		PagesRestored: s.GetPagesRestored(),
	}
}

// withLog appends CRIU's error lines from the named log to err.
func (r *Recorder) withLog(err error, name string) error {
	lines := ErrorLines(filepath.Join(r.dir, name), 3)
	if len(lines) == 0 {
		return err
	}
	return fmt.Errorf("%w (criu: %s)", err, strings.Join(lines, "; "))
}

// ErrorLines returns up to n of the last "Error" lines of a CRIU log.
func ErrorLines(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		// CRIU logs raising its own open-files limit as an error where it
		// lacks CAP_SYS_RESOURCE, and goes on: that line explains nothing.
		if strings.Contains(l, "Error") && !strings.Contains(l, "Can't setup RLIMIT_NOFILE for self") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
