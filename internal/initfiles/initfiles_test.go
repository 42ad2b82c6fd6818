package initfiles

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestZombieStatus(t *testing.T) {
	stat := func(state string, code int) string {
		f := make([]string, 50)
		for i := range f {
			f[i] = "0"
		}
		f[0], f[49] = state, strconv.Itoa(code)
		return "42 (a) b) " + strings.Join(f, " ")
	}
	for _, tt := range []struct {
		stat string
		st   int
		ok   bool
	}{
		{stat("Z", 3<<8), 3, true},
		{stat("Z", int(syscall.SIGKILL)), 137, true}, // CRIU's end of a dumped tree
		{stat("Z", 0), 0, true},
		{stat("S", 0), 0, false}, // not a zombie: no status yet
		{"42 (a) Z 1", 0, false},
		{"9 (fn) Z", 0, false},
		{"", 0, false},
	} {
		if st, ok := ZombieStatus(tt.stat); st != tt.st || ok != tt.ok {
			t.Errorf("ZombieStatus(%.20q... %d fields) = %d, %v; want %d, %v", tt.stat, len(strings.Fields(tt.stat)), st, ok, tt.st, tt.ok)
		}
	}
}

func TestStatFieldsAndStartTime(t *testing.T) {
	f := StatFields("1 (a b) c) S 0 1 1")
	if !slices.Equal(f, []string{"", "", "S", "0", "1", "1"}) {
		t.Errorf("StatFields = %q", f)
	}
	if StatFields("no command") != nil {
		t.Error("StatFields of a line with no command is not nil")
	}
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if st := StartTime(string(b)); st == "" || st != StatFields(string(b))[21] {
		t.Errorf("StartTime = %q, want field 22 of %q", st, b)
	}
	if StartTime("1 (a) S 0") != "" {
		t.Error("a start time read from a short stat")
	}
}
