package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Restores of different functions are wakes: the recorder must let them run
// at the same time. Each fake restore waits until every one of them has
// begun, which only happens if none is held behind another.
func TestRecorderRestoresRunConcurrently(t *testing.T) {
	for _, dir := range []string{"", t.TempDir()} {
		r := NewRecorder(dir)
		const n = 4
		var begun sync.WaitGroup
		begun.Add(n)
		all := make(chan struct{})
		go func() { begun.Wait(); close(all) }()

		errs := make(chan error, n)
		for range n {
			go func() {
				_, err := r.Restore(func() error {
					begun.Done()
					select {
					case <-all:
						return nil
					case <-time.After(20 * time.Second):
						return errors.New("the other restores never began while this one ran: restores are serialised")
					}
				})
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatalf("work dir %q: %v", dir, err)
			}
		}
	}
}

// A restore that ran alone reports CRIU's error lines from the shared log;
// one that overlapped another does not claim them as its own.
func TestRecorderRestoreLogAttribution(t *testing.T) {
	dir := t.TempDir()
	r := NewRecorder(dir)
	log := filepath.Join(dir, "restore.log")
	failing := errors.New("start failed")

	_, err := r.Restore(func() error {
		if err := os.WriteFile(log, []byte("(00.1) Error (criu/files.c:1): no such file\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return failing
	})
	if !errors.Is(err, failing) || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("alone: err = %v, want the log's error line", err)
	}

	inOther, release := make(chan struct{}), make(chan struct{})
	otherDone := make(chan error, 1)
	go func() {
		_, err := r.Restore(func() error { close(inOther); <-release; return nil })
		otherDone <- err
	}()
	<-inOther
	_, err = r.Restore(func() error {
		if err := os.WriteFile(log, []byte("(00.1) Error (criu/mount.c:2): someone else's\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return failing
	})
	close(release)
	if err := <-otherDone; err != nil {
		t.Fatalf("the other restore: %v", err)
	}
	if !errors.Is(err, failing) || strings.Contains(err.Error(), "someone else's") || !strings.Contains(err.Error(), "other restores ran at the same time") {
		t.Fatalf("overlapped: err = %v, want no log line and a note on the overlap", err)
	}
	// The log of the overlapped restore was not removed by the later one.
	if _, err := os.Stat(log); err != nil {
		t.Fatalf("restore.log removed while a restore ran: %v", err)
	}
}

// Two recorders on one CRIU work directory stand for two processes (flock
// locks are per open file, so they conflict within one process too): the
// second dump waits for the first, so the first's dump.log is its own when
// it fails.
func TestDumpsOnOneWorkDirTakeTurns(t *testing.T) {
	dir := t.TempDir()
	a, b := NewRecorder(dir), NewRecorder(dir)
	release := make(chan struct{})
	aDone := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		_, err := a.Dump(func() error {
			close(started)
			<-release
			if err := os.WriteFile(filepath.Join(dir, "dump.log"), []byte("Error (criu/sk-inet.c:1): a's reason\n"), 0o600); err != nil {
				return err
			}
			return errors.New("a failed")
		})
		aDone <- err
	}()
	<-started
	bRan := make(chan struct{})
	go func() {
		_, _ = b.Dump(func() error {
			close(bRan)
			return os.WriteFile(filepath.Join(dir, "dump.log"), []byte("b succeeded\n"), 0o600)
		})
	}()
	select {
	case <-bRan:
		t.Fatal("the second dump ran while the first held the work directory")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	err := <-aDone
	if err == nil || !strings.Contains(err.Error(), "a's reason") {
		t.Errorf("first dump's error = %v, want its own log line", err)
	}
	select {
	case <-bRan:
	case <-time.After(5 * time.Second):
		t.Fatal("the second dump never ran after the first finished")
	}
}
