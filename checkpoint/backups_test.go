package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBackupsListPruneCopy(t *testing.T) {
	root := t.TempDir()
	mk := func(replica int, ns int64, size int) {
		dir := filepath.Join(root, strconv.Itoa(replica), NewName(BackupPrefix, time.Unix(0, ns)))
		os.MkdirAll(dir, 0o700)
		os.WriteFile(filepath.Join(dir, "pages-1.img"), make([]byte, size), 0o600)
	}
	mk(0, 100, 10)
	mk(0, 300, 30)
	mk(0, 200, 20)
	mk(1, 250, 5)
	os.MkdirAll(filepath.Join(root, "0", "not-a-backup"), 0o700)
	os.MkdirAll(filepath.Join(root, "x"), 0o700)

	all, err := ListBackups(root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, b := range all {
		names = append(names, fmt.Sprintf("%d/%s/%d", b.Replica, b.Name, b.Bytes))
	}
	if got := strings.Join(names, " "); got != "0/bak-300/30 1/bak-250/5 0/bak-200/20 0/bak-100/10" {
		t.Errorf("ListBackups = %s", got)
	}
	if b, ok := NewestBackup(root, 0); !ok || b.Name != "bak-300" || !b.TakenAt.Equal(time.Unix(0, 300)) {
		t.Errorf("NewestBackup = %+v %v", b, ok)
	}
	if err := PruneBackups(root, 2); err != nil {
		t.Fatal(err)
	}
	if all, _ := ListBackups(root); len(all) != 3 || all[len(all)-1].Name != "bak-200" {
		t.Errorf("after prune: %+v", all)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := CopyDir(filepath.Join(root, "0", "bak-300"), dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "pages-1.img")); len(b) != 30 {
		t.Errorf("copied %d bytes", len(b))
	}
	if err := CopyDir(filepath.Join(root, "0", "bak-300"), dst); err == nil {
		t.Error("CopyDir over an existing directory succeeded")
	}
	if all, _ := ListBackups(filepath.Join(root, "missing")); all != nil {
		t.Errorf("missing root: %v", all)
	}
}

func TestRemoveContainerdCopies(t *testing.T) {
	tmp := t.TempDir()
	ourID, theirID := strings.Repeat("a1", 32), strings.Repeat("b2", 32)
	// mk makes a directory of age with faas-criu's description of the
	// checkpoint name, or (name "") CRIU's cgroup image naming container id.
	mk := func(dir, name, id string, age time.Duration) string {
		d := filepath.Join(tmp, dir)
		os.MkdirAll(d, 0o700)
		if name != "" {
			WriteMeta(d, Info{Name: name})
		}
		if id != "" {
			os.WriteFile(filepath.Join(d, "cgroup.img"), []byte("\x0a\x1f/docker/"+id+"\x12"), 0o600)
		}
		when := time.Now().Add(-age)
		os.Chtimes(d, when, when)
		return d
	}
	a := mk("ctrd-checkpoint111", "hib-1", "", 0)
	b := mk("ctrd-checkpoint222", "hib-2", "", time.Hour)
	ourDump := mk("ctrd-checkpoint444", "", ourID, time.Hour) // an unfinished dump of ours
	theirDump := mk("ctrd-checkpoint333", "", theirID, time.Hour)
	freshDump := mk("ctrd-checkpoint555", "", ourID, 0) // perhaps still being written
	bare := mk("ctrd-checkpoint666", "", "", time.Hour)
	unrelated := mk("something-else", "hib-1", "", time.Hour)

	if n := RemoveContainerdCopies(tmp, "hib-1"); n != 1 {
		t.Errorf("removed %d copies of hib-1", n)
	}
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Error("the copy of hib-1 is still there")
	}
	ours := func(id string) bool { return id == ourID }
	if n := RemoveStaleContainerdCopies(tmp, 10*time.Minute, ours); n != 2 {
		t.Errorf("removed %d stale copies and dumps, want 2", n)
	}
	for _, d := range []string{theirDump, freshDump, bare, unrelated} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
	for _, d := range []string{b, ourDump} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s is still there", d)
		}
	}

	// Our container removed: whatever names it goes, however recent.
	if n := RemoveContainerdLeftoversOf(tmp, ourID); n != 1 {
		t.Errorf("removed %d leftovers of the removed container, want 1", n)
	}
	if _, err := os.Stat(freshDump); !os.IsNotExist(err) {
		t.Errorf("%s is still there", freshDump)
	}
	if _, err := os.Stat(theirDump); err != nil {
		t.Errorf("another container's dump was removed: %v", err)
	}
}
