package checkpoint

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadRuncConf(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		content string
		want    RuncConf
	}{
		{"", RuncConf{}},
		{"tcp-established\n", RuncConf{TCPEstablished: true}},
		{"# comment\n--tcp-established\nwork-dir /var/lib/x\n", RuncConf{TCPEstablished: true, WorkDir: "/var/lib/x"}},
		{"work-dir=\"/a b\"\nlog-file x\n", RuncConf{WorkDir: "/a b"}},
	}
	for i, c := range cases {
		path := filepath.Join(dir, "runc.conf")
		os.WriteFile(path, []byte(c.content), 0o644)
		got, err := ReadRuncConf(path)
		if err != nil || got != c.want {
			t.Errorf("case %d: %+v %v, want %+v", i, got, err, c.want)
		}
	}
	if got, err := ReadRuncConf(filepath.Join(dir, "missing")); err != nil || got != (RuncConf{}) {
		t.Errorf("missing file: %+v %v", got, err)
	}
}

func TestNamesAndSizes(t *testing.T) {
	n := NewName("hib", time.Unix(0, 42))
	if n != "hib-42" || !ValidName(n) || ValidName("x") || ValidName("../x") {
		t.Errorf("NewName = %q", n)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), make([]byte, 1000), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "b"), make([]byte, 24), 0o644)
	if s, err := DirSize(dir); err != nil || s != 1024 {
		t.Errorf("DirSize = %d %v", s, err)
	}
}

// The names, layout and error text CRIU and Docker impose are read here
// only: the provider asks.
func TestHibernationNamesAndDumpErrors(t *testing.T) {
	n := NewName(HibernationPrefix, time.Unix(0, 7))
	if !IsHibernation(n) || IsHibernation(NewBackupName(time.Unix(0, 7))) || IsHibernation("hib") || IsHibernation("hibx-1") {
		t.Errorf("IsHibernation: %q", n)
	}
	root := BackupsRoot("/state", "dev", "hello")
	if root != "/state/backups/dev/hello" || ReplicaBackups(root, 2) != "/state/backups/dev/hello/2" {
		t.Errorf("backup layout: %s", root)
	}
	dir := t.TempDir()
	if _, ok := ReadMeta(dir); ok {
		t.Error("ReadMeta without a meta file")
	}
	if err := WriteMeta(dir, Info{Name: n, Bytes: 5}); err != nil {
		t.Fatal(err)
	}
	if got, ok := ReadMeta(dir); !ok || got.Name != n || got.Bytes != 5 {
		t.Errorf("ReadMeta = %+v %v", got, ok)
	}
	crit := errors.New("criu failed: Error (criu/cr-dump.c:1): Can't get rlimit of 42")
	if got := ExplainDumpError(crit); !errors.Is(got, crit) || !strings.Contains(got.Error(), NonRootHint) {
		t.Errorf("ExplainDumpError = %v", got)
	}
	other := errors.New("no space left")
	if got := ExplainDumpError(other); got != other || ExplainDumpError(nil) != nil {
		t.Errorf("ExplainDumpError changed %v", got)
	}
}
