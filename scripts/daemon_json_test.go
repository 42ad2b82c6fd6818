package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runSetup sources setup.sh and runs script (which may use $1, the
// daemon.json path) with DAEMON_JSON pointed at path.
func runSetup(t *testing.T, path, script string) (out string, ok bool) {
	t.Helper()
	cmd := exec.Command("bash", "-c", `source ./setup.sh && DAEMON_JSON=$1 && `+script, "test", path)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	b, err := cmd.CombinedOutput()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("bash: %v", err)
	}
	return string(b), err == nil
}

// daemonJSONCase is one daemon.json before a step of setup's, and what the
// step must leave and say.
type daemonJSONCase struct {
	name   string
	before *string // nil: no file
	after  string  // the file's content after ("" with keep: as before)
	keep   bool    // the file must be left byte for byte
	ok     bool
	says   []string
}

func runDaemonJSONCases(t *testing.T, script string, cases []daemonJSONCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "docker", "daemon.json")
			if tc.before != nil {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(*tc.before), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			out, ok := runSetup(t, path, script)
			if ok != tc.ok {
				t.Fatalf("succeeded=%v, want %v; output:\n%s", ok, tc.ok, out)
			}
			for _, s := range tc.says {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.after
			if tc.keep {
				want = *tc.before
			}
			if string(b) != want {
				t.Errorf("daemon.json holds\n%s\nwant\n%s", b, want)
			}
			if fi, err := os.Stat(path); err == nil && tc.before != nil && fi.Mode().Perm() != 0o640 {
				t.Errorf("mode %v, want the file's own 0640 kept", fi.Mode().Perm())
			}
			if _, err := os.Stat(path + ".faas-criu.tmp"); err == nil {
				t.Error("the temporary file is left")
			}
		})
	}
}

// ensure_engine_config turns on experimental and live-restore, keeping
// every other key, and stops on a file it cannot read as an object.
func TestEnsureEngineConfig(t *testing.T) {
	const both = "{\n  \"experimental\": true,\n  \"live-restore\": true\n}\n"
	script := `ensure_engine_config && echo "changed=$CONFIG_CHANGED added=$LIVE_RESTORE_ADDED"`
	runDaemonJSONCases(t, script, []daemonJSONCase{
		{"no file", nil, both, false, true, []string{"wrote", "changed=1 added=1"}},
		{"empty", str(" \n"), both, false, true, []string{`set "experimental": true`, `set "live-restore": true`, "changed=1 added=1"}},
		{"other keys kept", str(`{"debug": true, "experimental": false}`),
			"{\n  \"debug\": true,\n  \"experimental\": true,\n  \"live-restore\": true\n}\n", false, true,
			[]string{`set "experimental": true`, "changed=1 added=1"}},
		{"experimental only", str(`{"live-restore": true}`),
			"{\n  \"live-restore\": true,\n  \"experimental\": true\n}\n", false, true,
			[]string{`set "experimental": true`, "changed=1 added="}},
		{"already set", str(`{"experimental": true, "live-restore": true}`), "", true, true, []string{"changed= added="}},
		{"live-restore off kept", str(`{"experimental": true, "live-restore": false}`), "", true, true,
			[]string{`sets "live-restore": false; left as it is`, "changed= added="}},
		{"not JSON", str(`{"experimental": tru`), "", true, false, []string{"setup: cannot parse", "could not update"}},
		{"not an object", str(`[1]`), "", true, false, []string{"is not a JSON object", "could not update"}},
	})
}

// runtime_entry adds the faas-criu runtime to daemon.json's runtimes,
// keeping the others, and refuses a file it cannot read as an object.
func TestRuntimeEntry(t *testing.T) {
	script := `CRIU_RUNTIME=faas-criu CRIU_DISPATCH=/d/criu; rc=0; runtime_entry /bin/runc || rc=$?; echo "rc=$rc"; [ $rc -lt 2 ] || [ $rc = 10 ]`
	entry := "\"faas-criu\": {\n      \"path\": \"/bin/runc\",\n      \"runtimeArgs\": [\n        \"--criu\",\n        \"/d/criu\"\n      ]\n    }"
	runDaemonJSONCases(t, script, []daemonJSONCase{
		{"empty", str(""), "{\n  \"runtimes\": {\n    " + entry + "\n  }\n}\n", false, true, []string{"rc=10"}},
		{"others kept", str(`{"debug": true, "runtimes": {"x": {"path": "/x"}}}`),
			"{\n  \"debug\": true,\n  \"runtimes\": {\n    \"x\": {\n      \"path\": \"/x\"\n    },\n    " + entry + "\n  }\n}\n", false, true,
			[]string{"rc=10"}},
		{"an older entry replaced", str(`{"runtimes": {"faas-criu": {"path": "/old"}}}`),
			"{\n  \"runtimes\": {\n    " + entry + "\n  }\n}\n", false, true, []string{"rc=10"}},
		{"already there", str(`{"runtimes": {"faas-criu": {"path": "/bin/runc", "runtimeArgs": ["--criu", "/d/criu"]}}}`),
			"", true, true, []string{"rc=0"}},
		{"not JSON", str(`{`), "", true, false, []string{"setup: cannot parse", "rc=2"}},
		{"runtimes not an object", str(`{"runtimes": []}`), "", true, false,
			[]string{"is not a JSON object with an object for runtimes", "rc=2"}},
	})
}

// TestDaemonJSONHelpersHaveOneHome: setup.sh's Python steps on daemon.json
// share one reading (and its refusals) and one writing of the file, which
// each step had a copy of: the tests above hold what they do.
func TestDaemonJSONHelpersHaveOneHome(t *testing.T) {
	b, err := os.ReadFile("setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`json.loads(text) if text.strip() else {}`,
		`"setup: cannot parse %s: %s\n"`,
		`os.replace(tmp, path)`,
	} {
		if n := strings.Count(string(b), s); n != 1 {
			t.Errorf("setup.sh has %q %d times, want once", s, n)
		}
	}
}
