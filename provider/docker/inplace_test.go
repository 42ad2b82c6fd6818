package docker

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// caught reads SigCgt: a shell that traps USR1 handles it, sleep does not.
func TestCaught(t *testing.T) {
	for _, tt := range []struct {
		script string
		want   bool
	}{
		{"trap 'echo x' USR1; sleep 5 & wait", true},
		{"exec sleep 5", false},
	} {
		cmd := exec.Command("sh", "-c", tt.script)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		got := false
		for range 50 { // until the shell set its trap (or it never does)
			if got = caught(cmd.Process.Pid, syscall.SIGUSR1); got {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if got != tt.want {
			t.Errorf("caught(%q, SIGUSR1) = %v, want %v", tt.script, got, tt.want)
		}
	}
	if caught(1<<30, syscall.SIGUSR1) {
		t.Error("a pid that does not exist handles signals")
	}
}

// removeInitDir removes an init container's directory, never anything
// outside the engine's base.
func TestRemoveInitDir(t *testing.T) {
	base := t.TempDir()
	e := &Engine{initBase: base}
	mine := filepath.Join(base, "0123abcd", "c")
	other := filepath.Join(t.TempDir(), "x", "c")
	for _, d := range []string{mine, other} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.removeInitDir(other)
	e.removeInitDir("")
	e.removeInitDir(base + "/c") // the base itself is never removed
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a directory outside the base was removed: %v", err)
	}
	if _, err := os.Stat(base); err != nil {
		t.Errorf("the base was removed: %v", err)
	}
	e.removeInitDir(mine)
	if _, err := os.Stat(filepath.Dir(mine)); err == nil {
		t.Error("the init container's directory is still there")
	}
}
