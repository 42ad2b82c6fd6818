// Package scripts holds the tests of scripts/setup.sh's pieces that need
// neither Docker nor CRIU: setup.sh, sourced, only defines its functions.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runRCU sources setup.sh and runs ensure_rcu_expedited with its files
// pointed at file and normal, and FAAS_CRIU_RCU_EXPEDITED set to knob
// (unset when knob is nil).
func runRCU(t *testing.T, knob *string, file, normal string) (out string, ok bool) {
	t.Helper()
	cmd := exec.Command("bash", "-c", `source ./setup.sh && RCU_EXPEDITED_FILE=$1 RCU_NORMAL_FILE=$2 && ensure_rcu_expedited`,
		"test", file, normal)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if knob != nil {
		cmd.Env = append(cmd.Env, "FAAS_CRIU_RCU_EXPEDITED="+*knob)
	}
	b, err := cmd.CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("bash: %v", err)
	}
	return string(b), err == nil
}

func str(s string) *string { return &s }

func TestRCUExpeditedKnob(t *testing.T) {
	tests := []struct {
		name      string
		knob      *string
		start     string // the file's content before setup
		want      string // after
		ok        bool
		saysParts []string
	}{
		{"unset is on", nil, "0", "1", true, []string{"expedited RCU grace periods on: wrote 1 to", "(was 0; FAAS_CRIU_RCU_EXPEDITED=on)"}},
		{"empty is on", str(""), "0", "1", true, []string{"wrote 1 to"}},
		{"on", str("on"), "0", "1", true, []string{"wrote 1 to"}},
		{"TRUE", str("TRUE"), "0", "1", true, []string{"wrote 1 to"}},
		{"yes", str(" yes "), "0", "1", true, []string{"wrote 1 to"}},
		{"1 already", str("1"), "1", "1", true, []string{"expedited RCU grace periods on:", "already 1"}},
		{"off", str("off"), "1", "0", true, []string{"expedited RCU grace periods off: wrote 0 to", "(was 1; FAAS_CRIU_RCU_EXPEDITED=off)"}},
		{"0", str("0"), "1", "0", true, []string{"wrote 0 to"}},
		{"No", str("No"), "1", "0", true, []string{"wrote 0 to"}},
		{"false already", str("false"), "0", "0", true, []string{"already 0"}},
		{"keep 0", str("keep"), "0", "0", true, []string{"left as found:", "is 0 (FAAS_CRIU_RCU_EXPEDITED=keep)"}},
		{"keep 1", str("KEEP"), "1", "1", true, []string{"left as found:", "is 1"}},
		{"maybe refused", str("maybe"), "0", "0", false, []string{"FAAS_CRIU_RCU_EXPEDITED='maybe' is not understood: use on", "keep (leave"}},
		{"2 refused", str("2"), "1", "1", false, []string{"'2' is not understood"}},
		{"expedited refused", str("expedited"), "0", "0", false, []string{"not understood"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "rcu_expedited")
			if err := os.WriteFile(file, []byte(tt.start+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			out, ok := runRCU(t, tt.knob, file, filepath.Join(dir, "none"))
			if ok != tt.ok {
				t.Fatalf("setup succeeded=%v, want %v; output:\n%s", ok, tt.ok, out)
			}
			for _, p := range tt.saysParts {
				if !strings.Contains(out, p) {
					t.Errorf("output lacks %q:\n%s", p, out)
				}
			}
			b, _ := os.ReadFile(file)
			if got := strings.TrimSpace(string(b)); got != tt.want {
				t.Errorf("file holds %q, want %q", got, tt.want)
			}
		})
	}
}

// A file setup cannot write stops it, unless the knob says keep. A
// read-only sysctl stands in for a read-only /sys: root cannot write it
// either.
func TestRCUExpeditedNotWritable(t *testing.T) {
	const ro = "/proc/sys/kernel/osrelease"
	before, err := os.ReadFile(ro)
	if err != nil {
		t.Fatal(err)
	}
	out, ok := runRCU(t, nil, ro, "/nonexistent")
	if ok || !strings.Contains(out, "cannot write 1 to "+ro) || !strings.Contains(out, "rcupdate.rcu_expedited=1") ||
		!strings.Contains(out, "FAAS_CRIU_RCU_EXPEDITED=keep") {
		t.Errorf("want a stop naming the file, the kernel command line and keep; succeeded=%v, output:\n%s", ok, out)
	}
	out, ok = runRCU(t, str("keep"), ro, "/nonexistent")
	if !ok || !strings.Contains(out, "left as found") {
		t.Errorf("keep must go on; succeeded=%v, output:\n%s", ok, out)
	}
	out, ok = runRCU(t, str("on"), filepath.Join(t.TempDir(), "missing"), "/nonexistent")
	if ok || !strings.Contains(out, "set FAAS_CRIU_RCU_EXPEDITED=keep") {
		t.Errorf("a missing file must stop setup unless keep; succeeded=%v, output:\n%s", ok, out)
	}
	out, ok = runRCU(t, str("keep"), filepath.Join(t.TempDir(), "missing"), "/nonexistent")
	if !ok || !strings.Contains(out, "RCU left as it is") {
		t.Errorf("keep must go on without the file; succeeded=%v, output:\n%s", ok, out)
	}
	if after, _ := os.ReadFile(ro); string(after) != string(before) {
		t.Fatalf("%s changed", ro)
	}
}

// rcu_normal=1 overrides rcu_expedited: setup says so.
func TestRCUNormalOverrides(t *testing.T) {
	dir := t.TempDir()
	file, normal := filepath.Join(dir, "rcu_expedited"), filepath.Join(dir, "rcu_normal")
	for _, f := range []string{file, normal} {
		if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, ok := runRCU(t, nil, file, normal); !ok || !strings.Contains(out, "WARNING: "+normal+" is 1, which overrides") {
		t.Errorf("want the warning; succeeded=%v, output:\n%s", ok, out)
	}
	if err := os.WriteFile(normal, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, ok := runRCU(t, nil, file, normal); !ok || strings.Contains(out, "WARNING") {
		t.Errorf("no warning with rcu_normal 0; succeeded=%v, output:\n%s", ok, out)
	}
}

// ensure_init builds faas-criu-init where the provider looks for it, and a
// second run with nothing changed leaves the installed file alone.
func TestEnsureInitInstallsOnce(t *testing.T) {
	dir := t.TempDir()
	run := func() string {
		cmd := exec.Command("bash", "-c", `source ./setup.sh && CRIU_HELPER_DIR=$1 FAAS_CRIU_INIT_BIN=$1/faas-criu-init PROBE_LOG=$1/probe.log && ensure_init`,
			"setup", dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ensure_init: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := run(); !strings.Contains(out, "installed faas-criu-init") {
		t.Fatalf("first run did not install it: %q", out)
	}
	st, err := os.Stat(filepath.Join(dir, "faas-criu-init"))
	if err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("no executable faas-criu-init: %v", err)
	}
	if out := run(); strings.Contains(out, "installed") {
		t.Fatalf("second run replaced an unchanged init: %q", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "faas-criu-init.new")); err == nil {
		t.Fatal("a .new file was left behind")
	}
}
