package checkpoint

import (
	"os"
	"path/filepath"
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
