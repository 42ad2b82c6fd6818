package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// A port found by listening on :0 and closing is no reservation: until
// its server binds it, the kernel may hand the same port to any other
// listener on :0 or outgoing connection, in this process (parallel tests)
// or another (go test runs packages side by side). A NATS cluster port
// taken so stops its server at start: TestThreeBoxes flaked so. Ports
// outside the kernel's ephemeral range are never handed out that way.

// lowestPort: below it are the well-known ports of services a developer
// may run (NATS's 4222 and 6222, 8080...).
const lowestPort = 10000

// ReservePort returns a TCP port, free on every address a moment ago, for
// a server the caller starts later, and release for when that server has
// stopped. The port is outside the kernel's ephemeral range, so nothing
// gets it from the kernel meanwhile, and it is locked (a lock file in the
// temporary directory) against every other caller of ReservePort, in this
// process or another, until release, which removes the file. (One never
// released, as FreePort's, held until the process exits, stays until the
// next caller to take its port releases it.) Where the ephemeral range
// leaves no room (ip_local_port_range 1024 65535), the port is one the
// kernel gave, with only the lock: racy as before.
func ReservePort() (port int, release func(), err error) {
	dir := filepath.Join(os.TempDir(), "faas-criu-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return 0, nil, fmt.Errorf("reserve a port: %w", err)
	}
	lo, hi := ephemeralRange()
	outside := portRanges{{lowestPort, lo - 1}, {hi + 1, 65535}}
	n := outside.size()
	if n == 0 {
		return reserveEphemeral(dir)
	}
	first := rand.IntN(n)
	for i := range min(n, 2000) {
		port := outside.nth((first + i) % n)
		if release, ok := tryPort(dir, port); ok {
			return port, release, nil
		}
	}
	return 0, nil, fmt.Errorf("reserve a port: none free among 2000 tried outside the ephemeral range %d-%d", lo, hi)
}

// reserveEphemeral is ReservePort's fallback: a port the kernel gives.
func reserveEphemeral(dir string) (int, func(), error) {
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, nil, fmt.Errorf("reserve a port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if release, ok := tryPort(dir, port); ok {
			return port, release, nil
		}
	}
	return 0, nil, fmt.Errorf("reserve a port: the kernel's ports were all locked or taken")
}

// tryPort locks port and checks that nothing listens on it.
func tryPort(dir string, port int) (func(), bool) {
	path := filepath.Join(dir, strconv.Itoa(port))
	f, ok := lockPath(path)
	if !ok {
		return nil, false
	}
	// Every address: the server may listen on 127.0.0.1 or all of them.
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		unlockPath(f, path)
		return nil, false
	}
	l.Close()
	var once sync.Once
	return func() { once.Do(func() { unlockPath(f, path) }) }, true
}

// lockPath locks the file at path, made if need be; false when another
// holder has it.
func lockPath(path string) (*os.File, bool) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, false
	}
	if !lockOpened(f, path) {
		f.Close()
		return nil, false
	}
	return f, true
}

// lockOpened locks f, opened at path, and says whether that is a
// reservation: path must still name f. A holder removes the file at its
// release (unlockPath), so a file opened before that removal and locked
// after it is one nobody else will ever open again, while a new file of
// the same name (another caller's) may be locked at the same time: this
// lock is worth nothing, and the caller must let it go.
func lockOpened(f *os.File, path string) bool {
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		return false
	}
	held, err := f.Stat()
	if err != nil {
		return false
	}
	named, err := os.Stat(path)
	return err == nil && os.SameFile(held, named)
}

// unlockPath ends a reservation of lockPath's: the file is removed while
// it is still locked, so that path names no file or a newer one (a later
// caller's) but never this one unlocked; then it is closed, which unlocks
// it for the stale openers lockOpened turns away.
func unlockPath(f *os.File, path string) {
	_ = os.Remove(path)
	f.Close()
}

// ephemeralRange is the kernel's range of ports for :0 and outgoing
// connections: Linux's ip_local_port_range, else IANA's (macOS, BSDs).
func ephemeralRange() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && lo <= hi {
				return lo, hi
			}
		}
	}
	return 49152, 65535
}

// portRanges are inclusive ranges of ports; an empty one has last < first.
type portRanges [][2]int

func (r portRanges) size() int {
	n := 0
	for _, p := range r {
		n += max(0, p[1]-p[0]+1)
	}
	return n
}

// nth is the i-th port of r (0 <= i < r.size()).
func (r portRanges) nth(i int) int {
	for _, p := range r {
		if size := max(0, p[1]-p[0]+1); i >= size {
			i -= size
			continue
		}
		return p[0] + i
	}
	panic("harness: port index out of range")
}
