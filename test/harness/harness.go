// Package harness holds what the integration tests and the benchmark share
// to drive provider processes: a free port to start one on, and one poll
// loop to wait for what it does in its own time. (The provider launcher
// itself moves here with the package layout of issue 12.)
package harness

import (
	"fmt"
	"sync"
	"time"
)

// FreePort is a TCP port, free a moment ago, for a provider that the caller
// starts later: one of ReservePort's, held for the rest of the process.
func FreePort() (int, error) {
	port, release, err := ReservePort()
	if err != nil {
		return 0, err
	}
	held.Lock()
	defer held.Unlock()
	held.ports = append(held.ports, release)
	return port, nil
}

// held keeps FreePort's locks (a lock file closed by its finalizer would
// unlock its port).
var held struct {
	sync.Mutex
	ports []func()
}

// Poll calls check every interval until it returns "" (done), and returns
// an error with check's last answer, the reason it is not done, when
// timeout passes first. check runs at least once.
func Poll(timeout, every time.Duration, check func() string) error {
	deadline := time.Now().Add(timeout)
	for {
		last := check()
		if last == "" {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("not within %s: %s", timeout, last)
		}
		time.Sleep(every)
	}
}
