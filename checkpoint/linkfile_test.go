package checkpoint

import (
	"os"
	"path/filepath"
	"testing"
)

// A linked file outlives its source being replaced by a rename (as setup
// replaces faas-criu-init), and a missing source is an error.
func TestLinkFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "init")
	if err := os.WriteFile(src, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "c", "init")
	os.MkdirAll(filepath.Dir(dst), 0o755)
	if err := LinkFile(src, dst); err != nil {
		t.Fatal(err)
	}
	// setup replaces the init by a rename: the container keeps its own.
	if err := os.WriteFile(src+".new", []byte("new"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Rename(src+".new", src)
	if b, _ := os.ReadFile(dst); string(b) != "binary" {
		t.Errorf("the container's file became %q after setup replaced it", b)
	}
	if err := LinkFile(filepath.Join(dir, "missing"), filepath.Join(dir, "c", "x")); err == nil {
		t.Error("linking a missing file succeeded")
	}
}
