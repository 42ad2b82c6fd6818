package checkpoint

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Catches reads SigCgt: a shell that traps USR1 handles it, sleep does not.
func TestCatches(t *testing.T) {
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
			if got = Catches(cmd.Process.Pid, syscall.SIGUSR1); got {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if got != tt.want {
			t.Errorf("Catches(%q, SIGUSR1) = %v, want %v", tt.script, got, tt.want)
		}
	}
	if Catches(1<<30, syscall.SIGUSR1) {
		t.Error("a pid that does not exist handles signals")
	}
}
