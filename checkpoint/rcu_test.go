package checkpoint

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadRCU(t *testing.T) {
	tests := []struct {
		name              string
		expedited, normal string // file contents; "-" for no file
		want              string
	}{
		{"expedited", "1\n", "0\n", "expedited (rcu_expedited 1)"},
		{"normal", "0\n", "0\n", "normal (rcu_expedited 0)"},
		{"no rcu_normal", "1\n", "-", "expedited (rcu_expedited 1)"},
		{"overridden", "1\n", "1\n", "normal (rcu_expedited 1, overridden by rcu_normal 1)"},
		{"odd content", "2\n", "0\n", `unknown (rcu_expedited holds "2")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, v := range map[string]string{"rcu_expedited": tt.expedited, "rcu_normal": tt.normal} {
				if v == "-" {
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := ReadRCU(dir).String(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	r := ReadRCU(t.TempDir())
	if r.Err == nil || r.Expedited != "" {
		t.Errorf("no file: want an error, got %+v", r)
	}
	if s := r.String(); len(s) < 10 || s[:9] != "unknown (" {
		t.Errorf("no file: got %q", s)
	}
}
