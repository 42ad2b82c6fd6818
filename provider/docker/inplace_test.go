package docker

import (
	"os"
	"path/filepath"
	"testing"
)

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
