package main

import (
	"os"
	"testing"
)

// TestStackFileOrder: without -f, stack.yaml is read before stack.yml, as
// faas-cli does.
func TestStackFileOrder(t *testing.T) {
	t.Chdir(t.TempDir())
	if got := stackFile(""); got != "stack.yaml" {
		t.Errorf("with no file: %q, want stack.yaml (named in the error)", got)
	}
	os.WriteFile("stack.yml", []byte("x"), 0o644)
	if got := stackFile(""); got != "stack.yml" {
		t.Errorf("with stack.yml only: %q", got)
	}
	os.WriteFile("stack.yaml", []byte("x"), 0o644)
	if got := stackFile(""); got != "stack.yaml" {
		t.Errorf("with both: %q, want stack.yaml", got)
	}
	if got := stackFile("other.yml"); got != "other.yml" {
		t.Errorf("with -f other.yml: %q", got)
	}
}
