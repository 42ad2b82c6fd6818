package statelock

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestSecondAcquireRefused(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open file descriptions: a second open in the
	// same process conflicts just as a second process would.
	if _, err := Acquire(dir); err == nil || !strings.Contains(err.Error(), "in use by another faas-criu (pid ") {
		t.Fatalf("second Acquire: %v, want a refusal naming the holder", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}

// TestLockDiesWithItsProcess: a holder killed with SIGKILL leaves the file
// but not the lock.
func TestLockDiesWithItsProcess(t *testing.T) {
	if os.Getenv("STATELOCK_HOLD") != "" {
		if _, err := Acquire(os.Getenv("STATELOCK_HOLD")); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("held\n")
		// Sleep, not select{}: with no timer pending the runtime would
		// end this holder at once as deadlocked, releasing the lock.
		time.Sleep(time.Hour)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockDiesWithItsProcess$")
	cmd.Env = append(os.Environ(), "STATELOCK_HOLD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // never leave an hour-long holder behind
	buf := make([]byte, 5)
	if _, err := out.Read(buf); err != nil || string(buf) != "held\n" {
		cmd.Process.Kill()
		t.Fatalf("the holder did not take the lock: %q %v", buf, err)
	}
	if _, err := Acquire(dir); err == nil {
		t.Fatal("Acquire succeeded while another process held the lock")
	}
	cmd.Process.Kill() // SIGKILL
	cmd.Wait()
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	l.Release()
}
