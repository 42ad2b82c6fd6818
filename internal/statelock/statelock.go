// Package statelock keeps two providers off one state directory. Two
// providers on the same records would each reconcile the other's containers
// away and overwrite each other's checkpoints, so the second one refuses to
// start.
package statelock

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// FileName is the lock file inside the state directory.
const FileName = "lock"

// Lock holds the state directory for this process.
type Lock struct{ f *os.File }

// Acquire takes an exclusive flock(2) on dir/lock, creating dir if needed.
// The kernel releases the lock when the process ends, however it ends (a
// SIGKILL included), so a stale lock file never blocks the next start: only
// a live holder does. The holder's pid is written into the file so the
// message can name it.
func Acquire(dir string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state directory lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b := make([]byte, 32)
		n, _ := f.ReadAt(b, 0)
		f.Close()
		holder := "another process"
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b[:n]))); perr == nil {
			holder = fmt.Sprintf("another faas-criu (pid %d)", pid)
		}
		if err == syscall.EWOULDBLOCK {
			return nil, fmt.Errorf("state directory %s is in use by %s: two providers must not share one state directory (give this one its own --state-dir)", dir, holder)
		}
		return nil, fmt.Errorf("state directory lock %s: %w", path, err)
	}
	// The pid is information for the message above, not the lock itself.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release lets another provider use the state directory.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	return err
}
