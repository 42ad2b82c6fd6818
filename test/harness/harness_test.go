package harness

import (
	"net"
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
