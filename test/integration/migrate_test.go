//go:build integration

package integration

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// twoBoxes starts a provider on each engine and a faas-cli config with
// both gateways' credentials.
func twoBoxes(t *testing.T, argsB ...string) (a, b *Provider, env []string) {
	t.Helper()
	a = StartProvider(t)
	b = StartProviderOnB(t, argsB...)
	cfg := FaasCLIConfig(t, map[string][2]string{a.URL: {a.User, a.Pass}, b.URL: {b.User, b.Pass}})
	return a, b, []string{"OPENFAAS_CONFIG=" + cfg, "OPENFAAS_URL=" + a.URL}
}

func TestMigrateMovesFunctionWithState(t *testing.T) {
	a, b, env := twoBoxes(t)
	a.Deploy(Fixture("traveller"))
	counts(a, "traveller", 3)

	out, err := Run(t, env, "migrate", "traveller", "--to", b.URL)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	for _, step := range []string{"connect", "checkpoint", "image", "transfer", "finish"} {
		if !strings.Contains(out, step) {
			t.Errorf("no %q step in the output:\n%s", step, out)
		}
	}
	if got := counts(b, "traveller", 1); got[0] != 4 {
		t.Fatalf("B answered %v, want 4", got)
	}
	if code, _ := a.Request("GET", "/system/function/traveller", nil); code != http.StatusNotFound {
		t.Errorf("A still has the function: %d", code)
	}
	if c := a.AllContainers("traveller"); len(c) != 0 {
		t.Errorf("A still has %d containers", len(c))
	}
	if st := b.Status("traveller"); st.Image != FixtureImage || st.AvailableReplicas != 1 {
		t.Errorf("status at B: %+v", st)
	}
	b.Delete("traveller")
}

func TestMigrateKeepLeavesHibernatedCopy(t *testing.T) {
	a, b, env := twoBoxes(t)
	LoadImageOnB(t, FixtureImage)
	a.Deploy(Fixture("twin"))
	counts(a, "twin", 3)
	out, err := Run(t, env, "migrate", "twin", "--to", b.URL, "--keep")
	if err != nil {
		t.Fatalf("migrate --keep: %v\n%s", err, out)
	}
	if !strings.Contains(out, "the target has it") {
		t.Errorf("the image was sent although B has it:\n%s", out)
	}
	if got := counts(b, "twin", 1); got[0] != 4 {
		t.Errorf("B answered %v, want 4", got)
	}
	if s := a.Annotation("twin", stateAnnotation); s != "hibernated" {
		t.Errorf("A's copy is %s, want hibernated", s)
	}
	if got := counts(a, "twin", 1); got[0] != 4 {
		t.Errorf("A's copy woke with %v, want 4", got)
	}
	a.Delete("twin")
	b.Delete("twin")
}

func TestFailedMigrationLeavesFunctionRunning(t *testing.T) {
	a, b, env := twoBoxes(t, "--import-max-bytes", "256Ki")
	LoadImageOnB(t, FixtureImage)
	a.Deploy(Fixture("homebody"))
	count := 0
	next := func(why string) {
		t.Helper()
		count++
		if got := counts(a, "homebody", 1); got[0] != count {
			t.Fatalf("%s: A answered %v, want %d", why, got, count)
		}
	}
	next("before")
	next("before")

	// Wrong credentials for the target.
	badCfg := FaasCLIConfig(t, map[string][2]string{a.URL: {a.User, a.Pass}, b.URL: {b.User, "wrong"}})
	out, err := Run(t, []string{"OPENFAAS_CONFIG=" + badCfg, "OPENFAAS_URL=" + a.URL}, "migrate", "homebody", "--to", b.URL)
	if err == nil || !strings.Contains(out, `step "connect"`) || !strings.Contains(out, "401") {
		t.Errorf("wrong credentials: %v\n%s", err, out)
	}
	next("after wrong credentials")

	// The target's size limit (a full disk): the 1 MiB checkpoint is over it.
	out, err = Run(t, env, "migrate", "homebody", "--to", b.URL)
	if err == nil || !strings.Contains(out, `step "transfer"`) || !strings.Contains(out, "running here again") {
		t.Errorf("over the size limit: %v\n%s", err, out)
	}
	t.Logf("over the size limit:\n%s", out)
	// Refused for its size, not for something else.
	if !strings.Contains(out, "413 Request Entity Too Large") || !strings.Contains(out, "more than 262144 bytes (--import-max-bytes)") {
		t.Errorf("over the size limit, the failure does not say the import limit (413, --import-max-bytes):\n%s", out)
	}
	next("after the size limit")

	// A broken stream: the link drops after 20 KiB of the archive (the
	// second engine has the image already).
	a2, b2, _ := twoBoxes(t) // no size limit at b2
	cut := NewLinkProxy(t, strings.TrimPrefix(b2.URL, "http://"), 0)
	cut.CutAfter(20 << 10)
	cfg := FaasCLIConfig(t, map[string][2]string{a2.URL: {a2.User, a2.Pass}, cut.URL: {b2.User, b2.Pass}})
	a2.Deploy(Fixture("homebody"))
	counts(a2, "homebody", 2)
	out, err = Run(t, []string{"OPENFAAS_CONFIG=" + cfg, "OPENFAAS_URL=" + a2.URL}, "migrate", "homebody", "--to", cut.URL)
	if err == nil || !strings.Contains(out, `step "transfer"`) || !strings.Contains(out, "running here again") {
		t.Errorf("broken stream: %v\n%s", err, out)
	}
	if got := counts(a2, "homebody", 1); got[0] != 3 {
		t.Errorf("after a broken stream A answered %v, want 3", got)
	}
	for _, p := range []*Provider{b, b2} {
		if list := p.List(); len(list) != 0 {
			t.Errorf("the target kept something from failed imports: %+v", list)
		}
		if len(p.AllContainers("")) != 0 {
			t.Errorf("the target kept containers from failed imports")
		}
	}
	a.Delete("homebody")
	a2.Delete("homebody")
}

// hostileArchive builds a compressed tar as a hostile sender would.
func hostileArchive(t *testing.T, entries ...tar.Header) []byte {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	man, _ := json.Marshal(map[string]any{"version": 1, "function": map[string]string{"service": "evil", "image": FixtureImage},
		"replicas": []map[string]any{{"index": 0, "checkpoint": map[string]string{"name": "hib-1"}}}})
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(man))})
	tw.Write(man)
	for _, h := range entries {
		h.Mode = 0o644
		tw.WriteHeader(&h)
		if h.Typeflag == tar.TypeReg {
			tw.Write(make([]byte, h.Size))
		}
	}
	tw.Close()
	var out bytes.Buffer
	zw, _ := zstd.NewWriter(&out)
	zw.Write(raw.Bytes())
	zw.Close()
	return out.Bytes()
}

// treeSnapshot describes every file and directory under root, except the
// subtree skip: mode, and for anything but a directory size and time, and a
// file's content or a link's target.
func treeSnapshot(t *testing.T, root, skip string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == skip {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		// A directory by its mode (its entries are listed themselves).
		desc := fi.Mode().String()
		if !fi.IsDir() {
			desc += fmt.Sprintf(" %d %s", fi.Size(), fi.ModTime().Format(time.RFC3339Nano))
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %08x", crc32.ChecksumIEEE(b))
		case fi.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(path)
			desc += " -> " + l
		}
		snap[path] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot of %s: %v", root, err)
	}
	return snap
}

func TestImportRefusesCraftedArchives(t *testing.T) {
	b := StartProviderOnB(t, "--import-max-bytes", "1Mi")
	marker := fmt.Sprintf("faas-criu-evil-%d", time.Now().UnixNano())
	// A directory outside the tree that a symlink in the archive points to.
	through := t.TempDir()
	outside := []string{
		filepath.Join("/tmp", marker),
		filepath.Join(b.StateDir, marker),
		filepath.Join(filepath.Dir(b.StateDir), marker),
		filepath.Join(through, marker),
	}
	cases := []struct {
		name string
		body []byte
		want int
		why  string
	}{
		{"absolute path", hostileArchive(t, tar.Header{Name: "/tmp/" + marker, Typeflag: tar.TypeReg, Size: 10}), 400,
			`absolute path "/tmp/` + marker + `"`},
		{"path traversal", hostileArchive(t, tar.Header{Name: "checkpoints/0/../../../" + marker, Typeflag: tar.TypeReg, Size: 10}), 400,
			`path "checkpoints/0/../../../` + marker + `" leaves the tree`},
		{"deep traversal", hostileArchive(t, tar.Header{Name: "../../" + marker, Typeflag: tar.TypeReg, Size: 10}), 400,
			`path "../../` + marker + `" leaves the tree`},
		{"symlink out", hostileArchive(t, tar.Header{Name: "checkpoints/0/pages-1.img", Typeflag: tar.TypeSymlink, Linkname: "/tmp/" + marker}), 400,
			`link "checkpoints/0/pages-1.img" -> "/tmp/` + marker + `"`},
		{"hard link out", hostileArchive(t, tar.Header{Name: "checkpoints/0/pages-1.img", Typeflag: tar.TypeLink, Linkname: "../../../" + marker}), 400,
			`link "checkpoints/0/pages-1.img" -> "../../../` + marker + `"`},
		{"file through a symlink", hostileArchive(t,
			tar.Header{Name: "checkpoints/0/out", Typeflag: tar.TypeSymlink, Linkname: through},
			tar.Header{Name: "checkpoints/0/out/" + marker, Typeflag: tar.TypeReg, Size: 10}), 400,
			`link "checkpoints/0/out" -> "` + through + `"`},
		{"oversize", hostileArchive(t, tar.Header{Name: "checkpoints/0/pages-1.img", Typeflag: tar.TypeReg, Size: 2 << 20}), 413,
			"more than 1048576 bytes (--import-max-bytes)"},
		{"not an archive", []byte("hello"), 400, "magic number mismatch"},
	}
	importDir := filepath.Join(b.StateDir, "import")
	before := treeSnapshot(t, b.StateDir, importDir)
	if _, ok := before[filepath.Join(b.StateDir, "credentials", "basic-auth-password")]; !ok {
		t.Fatalf("the snapshot of the state directory misses the credentials: %v", before)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := b.Request("POST", "/system/import", c.body)
			if code != c.want || !strings.Contains(body, "import refused: ") || !strings.Contains(body, c.why) {
				t.Errorf("%d %q, want %d and %q", code, body, c.want, c.why)
			}
		})
	}
	if after := treeSnapshot(t, b.StateDir, importDir); !maps.Equal(before, after) {
		t.Errorf("the state directory outside the import area changed:\nbefore %v\nafter  %v", before, after)
	}
	if code, _ := b.RequestNoAuth("POST", "/system/import", cases[0].body); code != http.StatusUnauthorized {
		t.Errorf("import without credentials: %d", code)
	}
	for _, p := range outside {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("written outside the import area: %s", p)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(b.StateDir, "import")); len(entries) != 0 {
		t.Errorf("the import area kept %d entries", len(entries))
	}
	if list := b.List(); len(list) != 0 {
		t.Errorf("functions after refused imports: %+v", list)
	}
	// An existing function is never overwritten unless asked.
	LoadImageOnB(t, FixtureImage)
	b.Deploy(Fixture("resident"))
	counts(b, "resident", 2)
	a := StartProvider(t)
	a.Deploy(Fixture("resident"))
	cfg := FaasCLIConfig(t, map[string][2]string{a.URL: {a.User, a.Pass}, b.URL: {b.User, b.Pass}})
	out, err := Run(t, []string{"OPENFAAS_CONFIG=" + cfg, "OPENFAAS_URL=" + a.URL}, "migrate", "resident", "--to", b.URL)
	if err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("migrating over an existing function: %v\n%s", err, out)
	}
	t.Logf("migrating over an existing function:\n%s", out)
	if got := counts(b, "resident", 1); got[0] != 3 {
		t.Errorf("B's own function answered %v, want 3", got)
	}
	a.Delete("resident")
	b.Delete("resident")
}

func TestMigrationOverSlowLink(t *testing.T) {
	a, b, _ := twoBoxes(t)
	// About 4 Mbit/s towards the target.
	slow := NewLinkProxy(t, strings.TrimPrefix(b.URL, "http://"), 500_000)
	cfg := FaasCLIConfig(t, map[string][2]string{a.URL: {a.User, a.Pass}, slow.URL: {b.User, b.Pass}})
	dep := Fixture("commuter")
	dep.EnvVars = map[string]string{"STATE_MB": "4", "STATE_RANDOM": "1"} // 4 MiB that do not compress
	a.Deploy(dep)
	counts(a, "commuter", 3)
	want := a.MustInvoke("commuter", "/state")

	start := time.Now()
	out, err := Run(t, []string{"OPENFAAS_CONFIG=" + cfg, "OPENFAAS_URL=" + a.URL}, "migrate", "commuter", "--to", slow.URL)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("migrate over a slow link: %v\n%s", err, out)
	}
	t.Logf("migrated over a 4 Mbit/s link in %s:\n%s", took.Round(time.Millisecond), out)
	if !strings.Contains(out, "sent, ") || !strings.Contains(out, "/s") {
		t.Errorf("no progress while sending:\n%s", out)
	}
	if took < 6*time.Second {
		t.Errorf("4 MiB crossed a 4 Mbit/s link in %s: the link was not slow", took)
	}
	if got := b.MustInvoke("commuter", "/state"); got != want {
		t.Errorf("state at B = %q, want %q", got, want)
	}
	if got := counts(b, "commuter", 1); got[0] != 4 {
		t.Errorf("B answered %v, want 4", got)
	}
	b.Delete("commuter")
}

func TestBackupRestoresKilledFunction(t *testing.T) {
	p := StartProvider(t)
	dep := Fixture("phoenix2")
	dep.Labels = &map[string]string{"com.openfaas.criu.backup-interval": "2s", "com.openfaas.criu.backups-keep": "2"}
	p.Deploy(dep)
	counts(p, "phoenix2", 5)
	counted := time.Now()

	env := []string{"OPENFAAS_CONFIG=" + FaasCLIConfig(t, map[string][2]string{p.URL: {p.User, p.Pass}}), "OPENFAAS_URL=" + p.URL}
	var backups []struct {
		Name    string
		TakenAt time.Time
	}
	eventually(t, 15*time.Second, func() string {
		code, body := p.Request("GET", "/system/backups/phoenix2", nil)
		if err := json.Unmarshal([]byte(body), &backups); code != http.StatusOK || err != nil {
			t.Fatalf("backups: %d %v %q", code, err, body)
		}
		if len(backups) == 0 || !backups[0].TakenAt.After(counted) {
			return "no backup taken after the count reached 5: " + body
		}
		return ""
	})
	out, err := Run(t, env, "backups", "phoenix2")
	if err != nil || !strings.Contains(out, backups[0].Name) {
		t.Errorf("faas-criu backups: %v\n%s", err, out)
	}

	// Killed by the engine: it comes back from the backup, not empty.
	c := p.Containers("phoenix2")
	if err := docker.ContainerKill(context.Background(), c[0].ID, "KILL"); err != nil {
		t.Fatal(err)
	}
	var got int
	eventually(t, 20*time.Second, func() string {
		code, body := p.Invoke("phoenix2", "/count")
		if code != 200 {
			return fmt.Sprintf("%d %s", code, body)
		}
		fmt.Sscan(body, &got)
		return ""
	})
	if got < 6 {
		t.Fatalf("after the kill the count is %d: the state was not restored from the backup", got)
	}
	if from := p.Annotation("phoenix2", "com.openfaas.criu.restored-from-backup"); !strings.Contains(from, "taken at") {
		t.Errorf("restored-from-backup annotation = %q", from)
	}

	// A chosen backup, on request: back to its count.
	counts(p, "phoenix2", 3)
	chosen := backups[0]
	out, err = Run(t, env, "backups", "phoenix2", "--restore", chosen.Name)
	if err != nil {
		t.Fatalf("restore %s: %v\n%s", chosen.Name, err, out)
	}
	eventually(t, 10*time.Second, func() string {
		if code, body := p.Invoke("phoenix2", "/count"); code != 200 || body != "6" {
			return fmt.Sprintf("after restoring %s: %d %q, want 6", chosen.Name, code, body)
		}
		return ""
	})
	// Backups are kept to the newest two (a third exists only while a backup
	// is being taken, before the oldest is removed).
	eventually(t, 10*time.Second, func() string {
		code, body := p.Request("GET", "/system/backups/phoenix2", nil)
		var list []struct{ Replica int }
		if err := json.Unmarshal([]byte(body), &list); code != http.StatusOK || err != nil {
			t.Fatalf("backups: %d %v %q", code, err, body)
		}
		onDisk, _ := filepath.Glob(filepath.Join(p.StateDir, "backups", "openfaas-fn", "phoenix2", "0", "bak-*"))
		if len(list) > 3 || len(onDisk) > 3 {
			t.Fatalf("%d backups listed, %d on disk: want 2 kept", len(list), len(onDisk))
		}
		if len(list) != 2 || len(onDisk) != 2 {
			return fmt.Sprintf("%d backups listed, %d on disk, want 2: %s", len(list), len(onDisk), body)
		}
		return ""
	})
	p.Delete("phoenix2")
	if _, err := os.Stat(filepath.Join(p.StateDir, "backups", "openfaas-fn", "phoenix2")); !os.IsNotExist(err) {
		t.Errorf("backups left after delete (%v)", err)
	}
}
