package archive

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faas-criu/faas-criu/checkpoint"
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
		m.Replicas = append(m.Replicas, ReplicaImage{Index: r, Checkpoint: checkpoint.Info{Name: "hib-1"}})
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
		Replicas: []ReplicaImage{{Index: 0, Checkpoint: checkpoint.Info{Name: "hib-1", TakenAt: time.Unix(5, 0).UTC(), Bytes: 100_001}}}}
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
	// Links that each stay in the tree but lead out of it together: ".."
	// from inside a link climbs from where the link leads.
	sym := func(name, to string) tar.Header {
		return tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to}
	}
	for _, chain := range [][]tar.Header{
		{sym("x", "."), sym("x/y", "..")},                            // y is at the root: .. leaves
		{sym("l", "d/.."), sym("d", ".")},                            // d named after l
		{sym("s", "."), sym("l", "s/..")},                            // s/.. is the root's parent
		{sym("x", "."), sym("x/s", "."), sym("l", "s/..")},           // s made through x
		{sym("sub/y", ".."), sym("x", "sub"), sym("l", "x/y/../..")}, // y leads to the root
		{sym("x", "a"), {Name: "x/f", Typeflag: tar.TypeReg}},        // a file written through a link
	} {
		if err := CheckTar(raw(chain...), 1<<20); !errors.Is(err, ErrArchive) {
			var desc []string
			for _, h := range chain {
				desc = append(desc, h.Name+" -> "+h.Linkname)
			}
			t.Errorf("%s accepted: %v", strings.Join(desc, ", "), err)
		}
	}
	// A docker save stream of two images sharing layers, links of links.
	save := raw(tar.Header{Name: "a/", Typeflag: tar.TypeDir}, tar.Header{Name: "a/layer.tar", Typeflag: tar.TypeReg},
		sym("b/layer.tar", "../a/layer.tar"), sym("c/layer.tar", "../b/layer.tar"), tar.Header{Name: "c/json", Typeflag: tar.TypeReg})
	if err := CheckTar(save, 1<<20); err != nil {
		t.Errorf("links between layers refused: %v", err)
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

func TestExternalizePages(t *testing.T) {
	root := t.TempDir()
	cp := filepath.Join(root, "checkpoints", "hib-1")
	os.MkdirAll(cp, 0o700)
	os.WriteFile(filepath.Join(cp, "pages-1.img"), bytes.Repeat([]byte{1}, 50_000), 0o600)
	os.WriteFile(filepath.Join(cp, "pagemap-1.img"), []byte("map"), 0o600)
	pages := filepath.Join(root, "criu-pages", "hib-1")
	if err := checkpoint.ExternalizePages(cp, pages); err != nil {
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
	if size, _ := checkpoint.DirSize(cp); size != 50_003 {
		t.Errorf("DirSize = %d, want the pages counted", size)
	}
	// The archive and copies carry the content.
	var buf bytes.Buffer
	m := Manifest{Function: json.RawMessage(`{}`), Replicas: []ReplicaImage{{Index: 0, Checkpoint: checkpoint.Info{Name: "hib-1"}}}}
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
	if err := checkpoint.CopyDir(cp, cpy); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(cpy, "pages-1.img")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("copied pages: %v %v", fi, err)
	}
	// Both moved elsewhere: relinked.
	moved := filepath.Join(root, "moved")
	os.Rename(filepath.Join(root, "criu-pages"), moved)
	if err := checkpoint.RelinkPages(cp, filepath.Join(moved, "hib-1")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(cp, "pages-1.img")); err != nil || len(b) != 50_000 {
		t.Errorf("after relinking: %d bytes, %v", len(b), err)
	}
}

// FuzzCheckTar feeds arbitrary tar streams to the validator of the image
// stream a migration brings (/system/import/image) before the engine loads
// it. Whatever CheckTar accepts must be safe to unpack: replayed on a model
// of a file system that follows links the way the kernel does, no entry is
// placed, and no link leads, outside the tree; no entry is a special file;
// and the content stays within the limit. What it refuses, it refuses as
// ErrArchive or ErrArchiveTooLarge.
func FuzzCheckTar(f *testing.F) {
	reg := func(name string) tar.Header { return tar.Header{Name: name, Typeflag: tar.TypeReg} }
	sym := func(name, to string) tar.Header {
		return tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to}
	}
	long := strings.Repeat("d/", 60) // past ustar's 100 bytes: the names travel in PAX records
	pad := strings.Repeat("./", 51)  // the same, for names that stay short once cleaned
	for _, seed := range [][]tar.Header{
		// A docker save stream: identical layers linked within the tree.
		{{Name: "a/", Typeflag: tar.TypeDir}, reg("a/layer.tar"), reg("a/json"), sym("b/layer.tar", "../a/layer.tar"), reg("manifest.json"), reg("repositories")},
		{sym("b/layer.tar", "../../etc/passwd")},
		{sym("b/layer.tar", "/etc/passwd")},
		{{Name: "b/layer.tar", Typeflag: tar.TypeLink, Linkname: "../x"}},
		{{Name: "b/hard", Typeflag: tar.TypeLink, Linkname: "a/layer.tar"}},
		{reg("/abs")},
		{reg("../evil")},
		{{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}},
		{{Name: "fifo", Typeflag: tar.TypeFifo}},
		{sym("x", "."), sym("x/y", "a")},
		{sym(long+"l", "../a"), reg(long + "f")},
		// Names and link targets over 100 bytes travel in PAX records,
		// which no checksum covers: the fuzzer can change them.
		{sym(pad+"b/layer.tar", pad+"../a/layer.tar"), sym(pad+"x", pad+"."), sym(pad+"x/y", pad+"a")},
	} {
		f.Add(rawTar(seed, map[string]string{"a/layer.tar": "layer", "manifest.json": `[{"Config":"a/json","Layers":["a/layer.tar"]}]`, long + "f": "x"}))
	}
	f.Add(rawTar([]tar.Header{reg("big")}, map[string]string{"big": strings.Repeat("x", 70_000)}))
	f.Add([]byte("garbage"))
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		err := CheckTar(bytes.NewReader(data), limit)
		if err != nil {
			if !errors.Is(err, ErrArchive) && !errors.Is(err, ErrArchiveTooLarge) {
				t.Fatalf("refused without saying it is the archive: %v", err)
			}
			return
		}
		if problem := unpackModel(t, data, limit); problem != "" {
			t.Fatalf("CheckTar accepted a stream that is unsafe to unpack: %s", problem)
		}
	})
}

// unpackModel replays a tar stream on a model of a file system rooted at
// the tree, as an extractor would (directories and files created through
// the links already there, links created as they are), and says what would
// escape the tree; "" when nothing would.
func unpackModel(t *testing.T, data []byte, limit int64) string {
	fsys := modelFS{links: map[string]string{}}
	var made []string // pairs: where a link was made, its target
	tr := tar.NewReader(bytes.NewReader(data))
	var total int64
	for {
		h, err := tr.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("CheckTar accepted a stream tar cannot read: %v", err)
			}
			break
		}
		total += h.Size
		if total > limit || h.Size < 0 {
			return fmt.Sprintf("%d bytes of content, limit %d", total, limit)
		}
		if h.Name == "" || path.IsAbs(h.Name) {
			return fmt.Sprintf("entry %q", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeDir:
			if _, escapes := fsys.resolve(h.Name, true); escapes {
				return fmt.Sprintf("%q is written outside the tree", h.Name)
			}
		case tar.TypeSymlink:
			at, escapes := fsys.resolve(h.Name, false)
			if escapes {
				return fmt.Sprintf("link %q is placed outside the tree", h.Name)
			}
			if path.IsAbs(h.Linkname) {
				return fmt.Sprintf("link %q -> absolute %q", h.Name, h.Linkname)
			}
			if len(at) > 0 { // else it would be the root, which exists: not created
				fsys.links[strings.Join(at, "/")] = h.Linkname
				made = append(made, strings.Join(at, "/"), h.Linkname)
			}
		case tar.TypeLink:
			if _, escapes := fsys.resolve(h.Name, false); escapes {
				return fmt.Sprintf("hard link %q is placed outside the tree", h.Name)
			}
			if _, escapes := fsys.resolve(h.Linkname, false); escapes || path.IsAbs(h.Linkname) {
				return fmt.Sprintf("hard link %q -> %q outside the tree", h.Name, h.Linkname)
			}
		default:
			return fmt.Sprintf("special file %q (type %q)", h.Name, h.Typeflag)
		}
	}
	// Links are followed once the whole tree is there: a later entry may
	// change where an earlier link leads. Each link made is checked, even
	// one made again at the same place (an extractor may keep either).
	for i := 0; i < len(made); i += 2 {
		at, target := made[i], made[i+1]
		dir := strings.Split(at, "/")
		if _, escapes := fsys.walk(dir[:len(dir)-1], target, true, 0); escapes {
			return fmt.Sprintf("link %s -> %q leads outside the tree", at, target)
		}
	}
	return ""
}

// modelFS knows the symbolic links of a tree being unpacked, by their path
// from its root.
type modelFS struct{ links map[string]string }

// resolve walks p from the tree's root the way the kernel does, following
// links in every component (and in the last one with followLast), and
// returns the components of where it ends and whether it climbed out of the
// tree. A loop of links ends the walk where it is (the kernel would refuse
// it).
func (m modelFS) resolve(p string, followLast bool) ([]string, bool) {
	return m.walk(nil, p, followLast, 0)
}

func (m modelFS) walk(at []string, p string, followLast bool, hops int) ([]string, bool) {
	comps := strings.Split(p, "/")
	last := len(comps) - 1
	for last >= 0 && (comps[last] == "" || comps[last] == ".") {
		last-- // "a/b/" and "a/b/." name a/b
	}
	for i, c := range comps {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(at) == 0 {
				return nil, true
			}
			at = at[:len(at)-1]
			continue
		}
		at = append(at[:len(at):len(at)], c)
		target, isLink := m.links[strings.Join(at, "/")]
		if !isLink || (i >= last && !followLast) {
			continue
		}
		if hops > 40 || path.IsAbs(target) {
			return at, path.IsAbs(target)
		}
		var escapes bool
		if at, escapes = m.walk(at[:len(at)-1], target, true, hops+1); escapes {
			return nil, true
		}
	}
	return at, false
}

// errShort stands for a source's own error (the object store's digest
// mismatch when a read ended short).
var errShort = errors.New("source ended short")

// shortReader gives n bytes of r, then err.
type shortReader struct {
	r   io.Reader
	n   int
	err error
}

func (s *shortReader) Read(p []byte) (int, error) {
	if s.n <= 0 {
		return 0, s.err
	}
	n, err := s.r.Read(p[:min(len(p), s.n)])
	s.n -= n
	return n, err
}

// TestReadArchiveKeepsTheSourcesError: when the source fails part way, the
// error ReadArchive returns still is the source's (errors.Is), wherever it
// fails (the zstd header, the tar stream, a file's body), so a caller can
// tell a read that ended short from a broken archive and read again.
func TestReadArchiveKeepsTheSourcesError(t *testing.T) {
	src := t.TempDir()
	cp := filepath.Join(src, "hib-1")
	os.MkdirAll(cp, 0o755)
	pages := make([]byte, 300_000)
	for i := range pages {
		pages[i] = byte(i * 7 / 5)
	}
	os.WriteFile(filepath.Join(cp, "pages-1.img"), pages, 0o600)
	m := Manifest{Function: json.RawMessage(`{"service":"f"}`), Replicas: []ReplicaImage{{Index: 0, Checkpoint: checkpoint.Info{Name: "hib-1"}}}}
	var buf bytes.Buffer
	if err := WriteArchive(&buf, m, map[int]string{0: cp}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 2, 100, buf.Len() / 2, buf.Len() - 1} {
		_, err := ReadArchive(&shortReader{r: bytes.NewReader(buf.Bytes()), n: n, err: errShort}, t.TempDir(), 1<<20, nil)
		if !errors.Is(err, errShort) {
			t.Errorf("source failing after %d of %d bytes: %v, want the source's error", n, buf.Len(), err)
		}
	}
}
