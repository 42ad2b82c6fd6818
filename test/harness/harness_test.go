package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d is not free: %v", port, err)
	}
	l.Close()
}

func TestPoll(t *testing.T) {
	calls := 0
	err := Poll(time.Second, time.Millisecond, func() string {
		if calls++; calls < 3 {
			return "not yet"
		}
		return ""
	})
	if err != nil || calls != 3 {
		t.Errorf("Poll = %v after %d calls, want nil after 3", err, calls)
	}

	calls = 0
	start := time.Now()
	err = Poll(30*time.Millisecond, 5*time.Millisecond, func() string { calls++; return "still " + strconv.Itoa(calls) })
	if err == nil || !strings.Contains(err.Error(), "still "+strconv.Itoa(calls)) {
		t.Errorf("Poll = %v, want the last reason (call %d)", err, calls)
	}
	if took := time.Since(start); took < 30*time.Millisecond || calls < 2 {
		t.Errorf("gave up after %s and %d calls", took, calls)
	}
}

// TestReservePort: the port is free, outside the kernel's ephemeral range
// (where the kernel leaves room), and nobody else reserves it until its
// release.
func TestReservePort(t *testing.T) {
	port, release, err := ReservePort()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if lo, hi := ephemeralRange(); port >= lo && port <= hi && (lo > lowestPort || hi < 65535) {
		t.Errorf("port %d is in the ephemeral range %d-%d", port, lo, hi)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("port %d is not free: %v", port, err)
	}
	l.Close()
	dir := filepath.Join(os.TempDir(), "faas-criu-test-ports")
	if again, ok := tryPort(dir, port); ok {
		again()
		t.Fatalf("port %d reserved twice", port)
	}
	release()
	again, ok := tryPort(dir, port)
	if !ok {
		t.Fatalf("port %d not free after its release", port)
	}
	again()
	release() // twice: no effect
}

func TestPortRanges(t *testing.T) {
	r := portRanges{{10, 12}, {20, 19}, {30, 30}}
	if r.size() != 4 {
		t.Errorf("size %d, want 4", r.size())
	}
	var got []int
	for i := range r.size() {
		got = append(got, r.nth(i))
	}
	if fmt.Sprint(got) != "[10 11 12 30]" {
		t.Errorf("ports %v, want [10 11 12 30]", got)
	}
}
