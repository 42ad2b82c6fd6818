package cli

import (
	"bytes"
	"testing"
)

// runCLI runs the faas-criu command line with args and returns what it
// wrote.
func runCLI(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	root := NewRoot(&out, &errb)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errb.String(), err
}

var _ = testing.Short
