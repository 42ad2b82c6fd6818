// Package harness holds what the integration tests and the benchmark share
// to drive provider processes: a free port to start one on, and one poll
// loop to wait for what it does in its own time. (The provider launcher
// itself moves here with the package layout of issue 12.)
package harness

import (
	"fmt"
	"net"
	"time"
)

// FreePort is a TCP port on 127.0.0.1 that was free a moment ago. Another
// process may take it before the caller listens on it; the provider then
// fails at start and says so, which is rare enough for tests.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
