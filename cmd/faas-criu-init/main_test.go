package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/internal/initfiles"
)

func TestParseArgs(t *testing.T) {
	for _, tt := range []struct {
		argv []string
		dir  string
		args []string
		bad  bool
	}{
		{argv: []string{"--", "/fn", "-x"}, dir: "/.faas-criu", args: []string{"/fn", "-x"}},
		{argv: []string{"/fn"}, dir: "/.faas-criu", args: []string{"/fn"}},
		{argv: []string{"-dir", "/d", "--", "/fn"}, dir: "/d", args: []string{"/fn"}},
		{argv: []string{"--"}, bad: true},
		{argv: nil, bad: true},
	} {
		dir, args, err := parseArgs(tt.argv)
		if (err != nil) != tt.bad || dir != tt.dir || strings.Join(args, " ") != strings.Join(tt.args, " ") {
			t.Errorf("parseArgs(%q) = %q, %q, %v; want %q, %q, bad %v", tt.argv, dir, args, err, tt.dir, tt.args, tt.bad)
		}
	}
}

func TestHibernatedOnPurpose(t *testing.T) {
	for _, tt := range []struct {
		marker string
		fn     int
		want   bool
	}{
		{"7 12345\n", 7, true},
		{"7 12345", 8, false},   // another process
		{"7 99999\n", 7, false}, // left by an earlier run of the container
		{"", 7, false},          // no marker: the function's own exit
		{"wait", 7, false},      // written while stopped: not this run
		{"1 12345", 1, false},   // never the init itself
		{"x 12345", 7, false},
	} {
		if got := hibernatedOnPurpose(tt.marker, tt.fn, "12345"); got != tt.want {
			t.Errorf("hibernatedOnPurpose(%q, %d) = %v, want %v", tt.marker, tt.fn, got, tt.want)
		}
	}
	if hibernatedOnPurpose("7 ", 7, "") {
		t.Error("an unknown start time matched")
	}
}

func TestExitFileStatus(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want int
	}{{"9 3\n", 3}, {"8 3", 1}, {"", 1}, {"9 x", 1}} {
		if got := exitFileStatus(tt.s, 9); got != tt.want {
			t.Errorf("exitFileStatus(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

// The real binary, as a container's init would run it (not as PID 1: the
// logic does not depend on it).
func buildInit(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "faas-criu-init")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func exitStatus(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if err == nil {
		return 0
	}
	if !errors.As(err, &ee) {
		t.Fatalf("run: %v", err)
	}
	return ee.ExitCode()
}

func TestBinary(t *testing.T) {
	bin := buildInit(t)
	dir := t.TempDir()
	t.Run("function status", func(t *testing.T) {
		err := exec.Command(bin, "-dir", dir, "--", "sh", "-c", "exit 3").Run()
		if st := exitStatus(t, err); st != 3 {
			t.Fatalf("exit status %d, want the function's 3", st)
		}
	})
	t.Run("SIGTERM forwarded", func(t *testing.T) {
		cmd := exec.Command(bin, "-dir", dir, "--", "sh", "-c", "trap 'exit 7' TERM; while :; do sleep 0.05; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if st := exitStatus(t, cmd.Wait()); st != 7 {
			t.Fatalf("exit status %d, want 7 (the function's trap ran)", st)
		}
	})
	t.Run("marker at start waits, SIGTERM exits at once", func(t *testing.T) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, initfiles.Marker), []byte("wait\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(d, "ran")
		cmd := exec.Command(bin, "-dir", d, "--", "touch", out)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if st := exitStatus(t, cmd.Wait()); st != 0 {
			t.Fatalf("exit status %d, want 0", st)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatal("the function was started although the marker was there")
		}
	})
	t.Run("hibernated on purpose stays up", func(t *testing.T) {
		d := t.TempDir()
		cmd := exec.Command(bin, "-dir", d, "--", "sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Process.Kill()
		fn := childOf(t, cmd.Process.Pid)
		start := initfiles.StartTime(readFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat"))
		marker := strconv.Itoa(fn) + " " + start
		if err := os.WriteFile(filepath.Join(d, initfiles.Marker), []byte(marker), 0o644); err != nil {
			t.Fatal(err)
		}
		_ = syscall.Kill(fn, syscall.SIGKILL) // as CRIU ends a dumped tree
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			t.Fatalf("the init exited (%v) after a dump the marker announced", err)
		case <-time.After(500 * time.Millisecond):
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-done:
			if st := exitStatus(t, err); st != 0 {
				t.Fatalf("exit status %d after SIGTERM with no function, want 0", st)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("SIGTERM with no function did not end the init")
		}
	})
}

// childOf waits for pid's first child and returns it.
func childOf(t *testing.T, pid int) int {
	t.Helper()
	for range 100 {
		// Any thread of the Go process may have forked it.
		ts, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
		var all []byte
		for _, tf := range ts {
			b, _ := os.ReadFile(tf)
			all = append(all, b...)
		}
		if f := strings.Fields(string(all)); len(f) > 0 {
			c, _ := strconv.Atoi(f[0])
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the init started no function")
	return 0
}
