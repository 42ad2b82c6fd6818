package checkpoint

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// craft builds a compressed tar from entries, as a hostile sender would.
func craft(t testing.TB, entries []tar.Header, bodies map[string]string) []byte {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, h := range entries {
		h := h
		body := bodies[h.Name]
		if h.Typeflag == tar.TypeReg && h.Size == 0 {
			h.Size = int64(len(body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	var out bytes.Buffer
	zw, _ := Compress(&out)
	zw.Write(raw.Bytes())
	zw.Close()
	return out.Bytes()
}

func manifestJSON(replicas ...int) string {
	m := Manifest{Version: ArchiveVersion, Function: json.RawMessage(`{"service":"f","image":"i"}`)}
	for _, r := range replicas {
		m.Replicas = append(m.Replicas, ReplicaImage{Index: r, Checkpoint: Info{Name: "hib-1"}})
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestArchiveRoundTrip(t *testing.T) {
	src := t.TempDir()
	cp := filepath.Join(src, "hib-1")
	os.MkdirAll(filepath.Join(cp, "sub"), 0o755)
	os.WriteFile(filepath.Join(cp, "pages-1.img"), bytes.Repeat([]byte{7}, 100_000), 0o600)
	os.WriteFile(filepath.Join(cp, "sub", "x.img"), []byte("x"), 0o600)
	m := Manifest{Function: json.RawMessage(`{"service":"f"}`), ImageRef: "img:1", ImageID: "sha256:abc",
		Replicas: []ReplicaImage{{Index: 0, Checkpoint: Info{Name: "hib-1", TakenAt: time.Unix(5, 0).UTC(), Bytes: 100_001}}}}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, m, map[int]string{0: cp}); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > 10_000 {
		t.Errorf("archive of compressible data is %d bytes: not compressed?", buf.Len())
	}
	dst := t.TempDir()
	got, err := ReadArchive(&buf, dst, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.ImageID != "sha256:abc" || len(got.Replicas) != 1 || got.Replicas[0].Checkpoint.Name != "hib-1" {
		t.Errorf("manifest = %+v", got)
	}
	b, err := os.ReadFile(filepath.Join(dst, "checkpoints", "0", "pages-1.img"))
	if err != nil || len(b) != 100_000 {
		t.Errorf("pages: %d bytes, %v", len(b), err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "checkpoints", "0", "sub", "x.img")); string(b) != "x" {
		t.Errorf("nested file = %q", b)
	}
}

func TestReadArchiveRefusesHostileArchives(t *testing.T) {
	man := tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg}
	file := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg} }
	cases := []struct {
		name    string
		entries []tar.Header
		bodies  map[string]string
		limit   int64
		want    error
		says    string
	}{
		{"absolute path", []tar.Header{man, file("/etc/cron.d/evil")}, nil, 1 << 20, ErrArchive, "absolute path"},
		{"dot-dot", []tar.Header{man, file("checkpoints/0/../../../evil")}, nil, 1 << 20, ErrArchive, "leaves the tree"},
		{"dot-dot at the start", []tar.Header{file("../evil")}, nil, 1 << 20, ErrArchive, "leaves the tree"},
		{"symlink out", []tar.Header{man, {Name: "checkpoints/0/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}}, nil, 1 << 20, ErrArchive, "link"},
		{"symlink in the tree", []tar.Header{man, {Name: "checkpoints/0/link", Typeflag: tar.TypeSymlink, Linkname: "pages-1.img"}}, nil, 1 << 20, ErrArchive, "link"},
		{"hard link", []tar.Header{man, {Name: "checkpoints/0/hard", Typeflag: tar.TypeLink, Linkname: "../../x"}}, nil, 1 << 20, ErrArchive, "link"},
		{"device", []tar.Header{man, {Name: "checkpoints/0/dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}, nil, 1 << 20, ErrArchive, "special file"},
		{"fifo", []tar.Header{man, {Name: "checkpoints/0/fifo", Typeflag: tar.TypeFifo}}, nil, 1 << 20, ErrArchive, "special file"},
		{"oversize", []tar.Header{man, file("checkpoints/0/pages-1.img")}, map[string]string{"checkpoints/0/pages-1.img": strings.Repeat("x", 5000)}, 4096, ErrArchiveTooLarge, "more than 4096"},
		{"outside the layout", []tar.Header{man, file("etc/passwd")}, nil, 1 << 20, ErrArchive, "unexpected entry"},
		{"no manifest", []tar.Header{}, nil, 1 << 20, ErrArchive, "no manifest"},
		{"manifest not first", []tar.Header{file("checkpoints/0/pages-1.img"), man}, nil, 1 << 20, ErrArchive, "must come first"},
		{"bad manifest", []tar.Header{man}, map[string]string{"manifest.json": "{"}, 1 << 20, ErrArchive, "manifest"},
		{"wrong version", []tar.Header{man}, map[string]string{"manifest.json": `{"version": 99}`}, 1 << 20, ErrArchive, "format version"},
		{"replica without files", []tar.Header{man}, map[string]string{"manifest.json": manifestJSON(0)}, 1 << 20, ErrArchive, "no checkpoint files"},
		{"bad checkpoint name", []tar.Header{man, file("checkpoints/0/a.img")}, map[string]string{"manifest.json": strings.Replace(manifestJSON(0), "hib-1", "../x", 1)}, 1 << 20, ErrArchive, "invalid checkpoint name"},
		{"same file twice", []tar.Header{man, file("checkpoints/0/a.img"), file("checkpoints/0/a.img")}, map[string]string{"manifest.json": manifestJSON(0)}, 1 << 20, ErrArchive, "exists"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bodies := map[string]string{"manifest.json": manifestJSON()}
			for k, v := range c.bodies {
				bodies[k] = v
			}
			root := t.TempDir()
			dst := filepath.Join(root, "import")
			os.Mkdir(dst, 0o700)
			_, err := ReadArchive(bytes.NewReader(craft(t, c.entries, bodies)), dst, c.limit, nil)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("err = %v, want %v saying %q", err, c.want, c.says)
			}
			assertNothingOutside(t, root, dst)
		})
	}
	if _, err := ReadArchive(strings.NewReader("not zstd at all"), t.TempDir(), 1<<20, nil); !errors.Is(err, ErrArchive) {
		t.Errorf("garbage: %v", err)
	}
}

// assertNothingOutside checks that root holds nothing but dst's subtree.
func assertNothingOutside(t testing.TB, root, dst string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if p == root || p == dst || strings.HasPrefix(p, dst+string(filepath.Separator)) {
			return nil
		}
		t.Errorf("written outside the import area: %s", p)
		return nil
	})
}

func TestReadArchiveCheckRunsBeforeUnpacking(t *testing.T) {
	man := tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg}
	data := craft(t, []tar.Header{man, {Name: "checkpoints/0/pages-1.img", Typeflag: tar.TypeReg}},
		map[string]string{"manifest.json": manifestJSON(0), "checkpoints/0/pages-1.img": strings.Repeat("x", 5000)})
	dst := t.TempDir()
	refused := errors.New("refused by check")
	_, err := ReadArchive(bytes.NewReader(data), dst, 4096, func(m *Manifest) error { return refused })
	if !errors.Is(err, refused) {
		t.Fatalf("err = %v, want the check's error before the size limit", err)
	}
	if entries, _ := os.ReadDir(dst); len(entries) != 0 {
		t.Errorf("unpacked %d entries after the check refused", len(entries))
	}
}

func TestCheckTarAllowsOnlyInTreeLinks(t *testing.T) {
	raw := func(entries ...tar.Header) *bytes.Reader {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range entries {
			h.Mode = 0o644
			tw.WriteHeader(&h)
		}
		tw.Close()
		return bytes.NewReader(b.Bytes())
	}
	ok := raw(tar.Header{Name: "a/layer.tar", Typeflag: tar.TypeReg}, tar.Header{Name: "b/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../a/layer.tar"})
	if err := CheckTar(ok, 1<<20); err != nil {
		t.Errorf("in-tree link refused: %v", err)
	}
	for _, bad := range []tar.Header{
		{Name: "b/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "../../etc/passwd"},
		{Name: "b/layer.tar", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
		{Name: "b/layer.tar", Typeflag: tar.TypeLink, Linkname: "../x"},
		{Name: "/abs", Typeflag: tar.TypeReg},
	} {
		if err := CheckTar(raw(bad), 1<<20); !errors.Is(err, ErrArchive) {
			t.Errorf("%s -> %s accepted: %v", bad.Name, bad.Linkname, err)
		}
	}
}

// rawTar builds an uncompressed tar.
func rawTar(entries []tar.Header, bodies map[string]string) []byte {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, h := range entries {
		body := bodies[h.Name]
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		h.Mode = 0o644
		tw.WriteHeader(&h)
		tw.Write([]byte(body))
	}
	tw.Close()
	return raw.Bytes()
}

// FuzzReadArchive feeds arbitrary tar streams to the archive reader (after
// decompression: zstd itself is a well-fuzzed library). Whatever it is given,
// it must write nothing outside its directory and accept nothing without a
// valid manifest.
func FuzzReadArchive(f *testing.F) {
	man := tar.Header{Name: "manifest.json", Typeflag: tar.TypeReg}
	f.Add(rawTar([]tar.Header{man, {Name: "checkpoints/0/a.img", Typeflag: tar.TypeReg}}, map[string]string{"manifest.json": manifestJSON(0), "checkpoints/0/a.img": "abc"}))
	f.Add(rawTar([]tar.Header{man, {Name: "checkpoints/0/../../x", Typeflag: tar.TypeReg}}, map[string]string{"manifest.json": manifestJSON()}))
	f.Add(rawTar([]tar.Header{man, {Name: "checkpoints/0/l", Typeflag: tar.TypeSymlink, Linkname: "/"}}, map[string]string{"manifest.json": manifestJSON()}))
	f.Add(rawTar([]tar.Header{{Name: "/etc/x", Typeflag: tar.TypeReg}}, nil))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		dst := filepath.Join(root, "import")
		os.Mkdir(dst, 0o700)
		m, err := readArchiveTar(bytes.NewReader(data), dst, 1<<20, nil)
		if err == nil && (m == nil || m.Version != ArchiveVersion) {
			t.Fatalf("accepted without a valid manifest: %+v", m)
		}
		assertNothingOutside(t, root, dst)
	})
}

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
	mk := func(dir, name string, age time.Duration) string {
		d := filepath.Join(tmp, dir)
		os.MkdirAll(d, 0o700)
		if name != "" {
			WriteMeta(d, Info{Name: name})
			when := time.Now().Add(-age)
			os.Chtimes(filepath.Join(d, MetaFile), when, when)
		}
		return d
	}
	a := mk("ctrd-checkpoint111", "hib-1", 0)
	b := mk("ctrd-checkpoint222", "hib-2", time.Hour)
	other := mk("ctrd-checkpoint333", "", time.Hour) // not ours: no metadata
	unrelated := mk("something-else", "hib-1", time.Hour)

	if n := RemoveContainerdCopies(tmp, "hib-1"); n != 1 {
		t.Errorf("removed %d copies of hib-1", n)
	}
	if _, err := os.Stat(a); !os.IsNotExist(err) {
		t.Error("the copy of hib-1 is still there")
	}
	if n := RemoveStaleContainerdCopies(tmp, 10*time.Minute); n != 1 {
		t.Errorf("removed %d stale copies", n)
	}
	for _, d := range []string{other, unrelated} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
	if _, err := os.Stat(b); !os.IsNotExist(err) {
		t.Error("the stale copy is still there")
	}
}

func TestExternalizePages(t *testing.T) {
	root := t.TempDir()
	cp := filepath.Join(root, "checkpoints", "hib-1")
	os.MkdirAll(cp, 0o700)
	os.WriteFile(filepath.Join(cp, "pages-1.img"), bytes.Repeat([]byte{1}, 50_000), 0o600)
	os.WriteFile(filepath.Join(cp, "pagemap-1.img"), []byte("map"), 0o600)
	pages := filepath.Join(root, "criu-pages", "hib-1")
	if err := ExternalizePages(cp, pages); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(cp, "pages-1.img"))
	if err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("pages-1.img is not a link: %v", err)
	}
	// The link resolves from the checkpoint, and from a copy elsewhere.
	for _, dir := range []string{cp, t.TempDir()} {
		if dir != cp {
			target, _ := os.Readlink(filepath.Join(cp, "pages-1.img"))
			os.Symlink(target, filepath.Join(dir, "pages-1.img"))
		}
		if b, err := os.ReadFile(filepath.Join(dir, "pages-1.img")); err != nil || len(b) != 50_000 {
			t.Errorf("reading the page link from %s: %d bytes, %v", dir, len(b), err)
		}
	}
	if size, _ := DirSize(cp); size != 50_003 {
		t.Errorf("DirSize = %d, want the pages counted", size)
	}
	// The archive and copies carry the content.
	var buf bytes.Buffer
	m := Manifest{Function: json.RawMessage(`{}`), Replicas: []ReplicaImage{{Index: 0, Checkpoint: Info{Name: "hib-1"}}}}
	if err := WriteArchive(&buf, m, map[int]string{0: cp}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if _, err := ReadArchive(&buf, dst, 1<<20, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(dst, "checkpoints", "0", "pages-1.img")); err != nil || !fi.Mode().IsRegular() || fi.Size() != 50_000 {
		t.Errorf("archived pages: %v %v", fi, err)
	}
	cpy := filepath.Join(t.TempDir(), "copy")
	if err := CopyDir(cp, cpy); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(cpy, "pages-1.img")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("copied pages: %v %v", fi, err)
	}
	// Both moved elsewhere: relinked.
	moved := filepath.Join(root, "moved")
	os.Rename(filepath.Join(root, "criu-pages"), moved)
	if err := RelinkPages(cp, filepath.Join(moved, "hib-1")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(cp, "pages-1.img")); err != nil || len(b) != 50_000 {
		t.Errorf("after relinking: %d bytes, %v", len(b), err)
	}
}
