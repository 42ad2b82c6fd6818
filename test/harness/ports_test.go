package harness

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestReleaseRemovesTheLockFile: a released port leaves no file behind
// (they piled up in the temporary directory, one per port ever used).
func TestReleaseRemovesTheLockFile(t *testing.T) {
	port, release, err := ReservePort()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(os.TempDir(), "faas-criu-test-ports", strconv.Itoa(port))
	if _, err := os.Stat(path); err != nil {
		release()
		t.Fatalf("no lock file while reserved: %v", err)
	}
	release()
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lock file of port %d after its release: %v, want none", port, err)
	}
}

// TestLockOpenedBeforeARemovalReservesNothing: a caller that opened a
// port's lock file just before its holder released it (and removed it)
// gets the lock of a file nobody else will open again: that is no
// reservation, whether or not a later caller has made and locked a new
// file of the same name meanwhile.
func TestLockOpenedBeforeARemovalReservesNothing(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name          string
		newerReserved bool // another caller locked the new file first
	}{
		{"before the new file", false},
		{"after the new file", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "lock")
			holder, ok := lockPath(path)
			if !ok {
				t.Fatal("first lock refused")
			}
			// Opened while held (its lock would be refused now), locked
			// after the release.
			stale, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer stale.Close()
			unlockPath(holder, path)
			if tc.newerReserved {
				newer, ok := lockPath(path)
				if !ok {
					t.Fatal("a new lock after the release was refused")
				}
				defer unlockPath(newer, path)
			}
			if lockOpened(stale, path) {
				t.Fatal("a file opened before its removal was locked as a reservation")
			}
			if !tc.newerReserved {
				// The stale opener's refusal does not block the name.
				again, ok := lockPath(path)
				if !ok {
					t.Fatal("lock refused after the stale opener let go")
				}
				unlockPath(again, path)
			}
		})
	}
}
