package stack

import "testing"

func TestQuantities(t *testing.T) {
	for _, tt := range []struct {
		check func(string) error
		in    string
		ok    bool
	}{
		{checkMemory, "", true},
		{checkMemory, "128Mi", true},
		{checkMemory, "1.5Gi", true},
		{checkMemory, "64000000", true},
		{checkMemory, "500M", true},
		{checkMemory, "1e3", true},
		{checkMemory, " 2k ", true},
		{checkMemory, "128MB", false},
		{checkMemory, "-1Mi", false},
		{checkMemory, "Mi", false},
		// The provider refuses these (too large): a stack must too.
		{checkMemory, "1e400Mi", false},
		{checkMemory, "9e18Gi", false},
		{checkMemory, "0x10Mi", false},
		{checkCPU, "1e400", false},
		{checkCPU, "1e9", false},
		{checkCPU, "500m", true},
		{checkCPU, "1", true},
		{checkCPU, "0.25", true},
		{checkCPU, ".5", true},
		{checkCPU, "1 core", false},
		{checkCPU, "500mi", false},
	} {
		if err := tt.check(tt.in); (err == nil) != tt.ok {
			t.Errorf("check(%q) = %v, want ok=%v", tt.in, err, tt.ok)
		}
	}
}
