package fsutil

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestWalkRelGivesPathsBelowRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"a/b", "skip/c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "a", "b", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	err := WalkRel(root, func(p, rel string, d fs.DirEntry) error {
		if p != filepath.Join(root, rel) {
			t.Errorf("path %s is not root + %s", p, rel)
		}
		if rel == "skip" {
			return filepath.SkipDir
		}
		got = append(got, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{".", "a", "a/b", "a/b/f"}; !slices.Equal(got, want) {
		t.Errorf("walked %q, want %q", got, want)
	}
	if err := WalkRel(filepath.Join(root, "missing"), func(string, string, fs.DirEntry) error { return nil }); err == nil {
		t.Error("a missing root walked without an error")
	}
}
