package criutar

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// CRIU's argument lists, as criu/filesystems.c passes them (without "tar").
var (
	criuCreate  = []string{"--create", "--gzip", "--no-unquote", "--no-wildcards", "--one-file-system", "--check-links", "--preserve-permissions", "--sparse", "--numeric-owner", "--directory", "/proc/self/fd/0", "."}
	criuExtract = func(dir string) []string {
		return []string{"--extract", "--gzip", "--no-unquote", "--no-wildcards", "--directory", dir}
	}
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		op   Op
		dir  string
	}{
		{"CRIU's dump", criuCreate, OpCreate, ""},
		{"CRIU's restore", criuExtract("/tmp/.criu.mntns.x/mnt-1"), OpExtract, "/tmp/.criu.mntns.x/mnt-1"},
		{"no arguments", nil, OpOther, ""},
		{"version", []string{"--version"}, OpOther, ""},
		{"a listing", []string{"-tzf", "x.tar.gz"}, OpOther, ""},
		{"dump with one more option", append(append([]string{}, criuCreate...), "--xattrs"), OpOther, ""},
		{"dump of another directory", append(append([]string{}, criuCreate[:10]...), "/etc", "."), OpOther, ""},
		{"restore without gzip", []string{"--extract", "--no-unquote", "--no-wildcards", "--directory", "/x"}, OpOther, ""},
		{"restore with a member list", append(criuExtract("/x"), "etc"), OpOther, ""},
		{"restore to an empty name", criuExtract(""), OpOther, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			op, dir := Parse(c.args)
			if op != c.op || dir != c.dir {
				t.Errorf("Parse(%q) = %v, %q; want %v, %q", c.args, op, dir, c.op, c.dir)
			}
		})
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: device nodes, owners (CRIU runs tar as root)")
	}
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("needs GNU tar on PATH to compare with")
	}
}

// mtime is a whole second: GNU tar's gnu format keeps no more.
var mtime = time.Date(2026, 11, 30, 12, 34, 56, 0, time.UTC)

// file is one entry of a test tree.
type file struct {
	name string
	kind byte // 'd' dir, 'f' file, 'l' symlink, 'h' hard link to target, 'c'/'b' device, 'p' fifo
	mode uint32
	uid  int
	gid  int
	data string // content; symlink or hard link target
	dev  [2]uint32
}

// makeTree builds files under root (root itself is ".").
func makeTree(t *testing.T, root string, files []file) {
	t.Helper()
	for i, f := range files {
		p := filepath.Join(root, f.name)
		var err error
		switch f.kind {
		case 'd':
			if f.name != "." {
				err = unix.Mkdir(p, 0o700)
			}
		case 'f':
			err = os.WriteFile(p, []byte(f.data), 0o600)
		case 'l':
			err = unix.Symlink(f.data, p)
		case 'h':
			err = unix.Link(filepath.Join(root, f.data), p)
		case 'c', 'b', 'p':
			typ := map[byte]uint32{'c': unix.S_IFCHR, 'b': unix.S_IFBLK, 'p': unix.S_IFIFO}[f.kind]
			err = unix.Mknod(p, typ|0o600, int(unix.Mkdev(f.dev[0], f.dev[1])))
		}
		if err != nil {
			t.Fatalf("making %s: %v", f.name, err)
		}
		if f.kind == 'h' {
			continue
		}
		if err := unix.Lchown(p, f.uid, f.gid); err != nil {
			t.Fatal(err)
		}
		if f.kind != 'l' {
			if err := unix.Chmod(p, f.mode); err != nil {
				t.Fatal(err)
			}
		}
		// A distinct mtime per entry, so that a mix-up shows.
		ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.Add(time.Duration(i) * time.Hour).UnixNano())}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Fatal(err)
		}
	}
	// Directories' mtimes again, their entries made.
	for i := len(files) - 1; i >= 0; i-- {
		if files[i].kind == 'd' {
			p := filepath.Join(root, files[i].name)
			ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.Add(time.Duration(i) * time.Hour).UnixNano())}
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// snapshot describes a tree: per path its type and mode, owner, mtime,
// device number, content hash or link target, and for hard links the first
// path of the inode; atimes are left out (GNU tar leaves them alone).
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	first := map[[2]uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		extra := ""
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			extra = fmt.Sprintf("sha=%x", sha256.Sum256(b))
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			extra = "-> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			extra = fmt.Sprintf("dev=%d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			key := [2]uint64{st.Dev, st.Ino}
			if f, ok := first[key]; ok {
				extra += " link-of=" + f
			} else {
				first[key] = rel
			}
		}
		lines = append(lines, fmt.Sprintf("%s mode=%o owner=%d:%d mtime=%d.%09d nlink=%d %s",
			rel, st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec, nlink(st), extra))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func nlink(st unix.Stat_t) uint64 {
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return 0 // a directory's count depends on its subdirectories only
	}
	return uint64(st.Nlink) // uint32 on 32-bit ARM
}

// gnuCreate runs GNU tar as CRIU runs it for a dump of root.
func gnuCreate(t *testing.T, root string) []byte {
	t.Helper()
	d, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var out, errb bytes.Buffer
	cmd := exec.Command("tar", criuCreate...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = d, &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("GNU tar --create: %v: %s", err, errb.String())
	}
	return out.Bytes()
}

// gnuExtract runs GNU tar as CRIU runs it for a restore into a new
// directory, and gives that directory.
func gnuExtract(t *testing.T, archive []byte) (string, error) {
	t.Helper()
	dir := t.TempDir()
	var errb bytes.Buffer
	cmd := exec.Command("tar", criuExtract(dir)...)
	cmd.Stdin, cmd.Stderr = bytes.NewReader(archive), &errb
	if err := cmd.Run(); err != nil {
		return dir, fmt.Errorf("GNU tar --extract: %v: %s", err, errb.String())
	}
	return dir, nil
}

func ourCreate(t *testing.T, root string) []byte {
	t.Helper()
	var out bytes.Buffer
	if err := Create(root, &out); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return out.Bytes()
}

func ourExtract(t *testing.T, archive []byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := Extract(bytes.NewReader(archive), dir); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	return dir
}

// trees are what a container's tmpfs mounts hold, and more.
var trees = []struct {
	name  string
	files []file
}{
	{"empty, as /sys/firmware", []file{{name: ".", kind: 'd', mode: 0o1777}}},
	{"a container's /dev", []file{
		{name: ".", kind: 'd', mode: 0o755},
		{name: "null", kind: 'c', mode: 0o666, dev: [2]uint32{1, 3}},
		{name: "zero", kind: 'c', mode: 0o666, dev: [2]uint32{1, 5}},
		{name: "urandom", kind: 'c', mode: 0o666, dev: [2]uint32{1, 9}},
		{name: "tty", kind: 'c', mode: 0o666, dev: [2]uint32{5, 0}},
		{name: "fd", kind: 'l', data: "/proc/self/fd"},
		{name: "stdin", kind: 'l', data: "/proc/self/fd/0"},
		{name: "ptmx", kind: 'l', data: "pts/ptmx"},
		{name: "pts", kind: 'd', mode: 0o755},
		{name: "shm", kind: 'd', mode: 0o1777},
		{name: "mqueue", kind: 'd', mode: 0o1777},
	}},
	{"files, owners, modes and links", []file{
		{name: ".", kind: 'd', mode: 0o1777, uid: 5, gid: 6},
		{name: "empty", kind: 'f', mode: 0o644},
		{name: "data", kind: 'f', mode: 0o4755, uid: 1000, gid: 1000, data: strings.Repeat("state ", 5000)},
		{name: "setgid", kind: 'f', mode: 0o2711, uid: 0, gid: 50, data: "x"},
		{name: "hard", kind: 'h', data: "data"},
		{name: "sub", kind: 'd', mode: 0o750, uid: 1000, gid: 2000},
		{name: "sub/deeper", kind: 'd', mode: 0o500},
		{name: "sub/deeper/file", kind: 'f', mode: 0o400, uid: 65534, gid: 65534, data: "deep"},
		{name: "sub/hard-in-sub", kind: 'h', data: "data"},
		{name: "sub/rel", kind: 'l', data: "../data", uid: 1000, gid: 1000},
		{name: "sub/rel-hard", kind: 'h', data: "sub/rel"},
		{name: "dangling", kind: 'l', data: "/nowhere/at/all"},
		{name: "fifo", kind: 'p', mode: 0o620, uid: 7, gid: 8},
		{name: "loop0", kind: 'b', mode: 0o660, gid: 6, dev: [2]uint32{7, 0}},
		{name: "dev-hard", kind: 'c', mode: 0o600, dev: [2]uint32{1, 7}},
		{name: "dev-hard2", kind: 'h', data: "dev-hard"},
		{name: strings.Repeat("long-name-", 12), kind: 'f', mode: 0o644, data: "a name over 100 bytes"},
		{name: "sp ace\tand\nnewline", kind: 'f', mode: 0o644, data: "odd name"},
	}},
}

// GNU tar's archive extracted by Extract, Create's archive extracted by GNU
// tar and by Extract: each tree identical to GNU tar's own round trip
// (paths, types, modes with setuid/setgid/sticky, numeric owners, mtimes,
// device numbers, contents, link targets, which names share an inode).
func TestRoundTripsAgainstGNUTar(t *testing.T) {
	needRoot(t)
	for _, tc := range trees {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			makeTree(t, src, tc.files)
			gnuArchive := gnuCreate(t, src)
			ref, err := gnuExtract(t, gnuArchive)
			if err != nil {
				t.Fatal(err)
			}
			// GNU tar's round trip is the reference: it is the source but
			// for hard-linked device nodes, which GNU tar writes twice.
			want := snapshot(t, ref)
			ours := ourCreate(t, src)
			gnuOfOurs, err := gnuExtract(t, ours)
			if err != nil {
				t.Fatal(err)
			}
			for name, dir := range map[string]string{
				"GNU tar's archive, extracted by Extract": ourExtract(t, gnuArchive),
				"Create's archive, extracted by GNU tar":  gnuOfOurs,
				"Create's archive, extracted by Extract":  ourExtract(t, ours),
			} {
				if got := snapshot(t, dir); got != want {
					t.Errorf("%s:\n%s\nwant (GNU tar)\n%s", name, got, want)
				}
			}
		})
	}
}

// --one-file-system: a mount inside the tree (as /dev/shm, /dev/pts and
// /dev/mqueue in /dev) is archived as its directory, without its contents,
// as GNU tar does.
func TestOtherMountsNotDescended(t *testing.T) {
	needRoot(t)
	src := t.TempDir()
	makeTree(t, src, []file{{name: ".", kind: 'd', mode: 0o755}, {name: "shm", kind: 'd', mode: 0o1777}, {name: "kept", kind: 'f', mode: 0o644, data: "k"}})
	shm := filepath.Join(src, "shm")
	if err := unix.Mount("tmpfs", shm, "tmpfs", 0, "mode=1777"); err != nil {
		t.Fatalf("mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(shm, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(shm, "inside-the-mount"), []byte("no"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := listing(t, gnuCreate(t, src))
	if strings.Contains(want, "inside-the-mount") || !strings.Contains(want, "./shm/") {
		t.Fatalf("GNU tar's listing %q: the test's mount is not seen as one", want)
	}
	if got := listing(t, ourCreate(t, src)); got != want {
		t.Errorf("Create's members:\n%s\nwant (GNU tar)\n%s", got, want)
	}
}

// listing is an archive's member names and types, sorted.
func listing(t *testing.T, archive []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, fmt.Sprintf("%s %c %o %d:%d", hdr.Name, hdr.Typeflag, hdr.Mode, hdr.Uid, hdr.Gid))
	}
	sort.Strings(names)
	return strings.Join(names, "\n")
}

// Trees Create does not write as GNU tar would are refused before the
// first byte, for GNU tar to archive.
func TestCreateRefuses(t *testing.T) {
	needRoot(t)
	for _, c := range []struct {
		name string
		make func(t *testing.T, root string)
	}{
		{"a socket (GNU tar skips it with a warning)", func(t *testing.T, root string) {
			l, err := net.Listen("unix", filepath.Join(root, "sock"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}},
		{"a sparse file (--sparse stores its holes)", func(t *testing.T, root string) {
			f, err := os.Create(filepath.Join(root, "sparse"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(1 << 20); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			c.make(t, root)
			var out bytes.Buffer
			err := Create(root, &out)
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Create: %v, want ErrUnsupported", err)
			}
			if out.Len() != 0 {
				t.Errorf("Create wrote %d bytes before refusing", out.Len())
			}
		})
	}
}

// member is one header (and body) of a hand-made archive.
type hmember struct {
	hdr  tar.Header
	body string
}

func archive(t *testing.T, members ...hmember) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, m := range members {
		h := m.hdr
		h.Size = int64(len(m.body))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.ModTime.IsZero() {
			h.ModTime = mtime
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(m.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hostileArchives are archives GNU tar extracts differently from their
// headers (stripping a leading "/" or "..", delaying a symlink another
// member would write through) or with things Extract does not do: Extract
// refuses each and writes nothing outside its directory; GNU tar, which the
// command then runs, does its own.
var hostileArchives = []struct {
	Name    string
	Members []hmember
}{
	{"a name climbing out", []hmember{{tar.Header{Name: "../escaped", Typeflag: tar.TypeReg, Format: tar.FormatGNU}, "x"}}},
	{"a name climbing out midway", []hmember{{tar.Header{Name: "./a/../../escaped", Typeflag: tar.TypeReg, Format: tar.FormatGNU}, "x"}}},
	{"an absolute name", []hmember{{tar.Header{Name: "/tmp/escaped-abs", Typeflag: tar.TypeReg, Format: tar.FormatGNU}, "x"}}},
	{"a write through a symlink", []hmember{
		{tar.Header{Name: "./l", Typeflag: tar.TypeSymlink, Linkname: "/tmp", Format: tar.FormatGNU}, ""},
		{tar.Header{Name: "./l/escaped-link", Typeflag: tar.TypeReg, Format: tar.FormatGNU}, "x"},
	}},
	{"a hard link to outside", []hmember{{tar.Header{Name: "./h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd", Format: tar.FormatGNU}, ""}}},
	{"owner names to look up", []hmember{{tar.Header{Name: "./f", Typeflag: tar.TypeReg, Uname: "nobody", Gname: "nogroup", Uid: 1, Gid: 1, Format: tar.FormatGNU}, "x"}}},
	{"pax records", []hmember{{tar.Header{Name: "./f", Typeflag: tar.TypeReg, PAXRecords: map[string]string{"SCHILY.xattr.user.x": "y"}, Format: tar.FormatPAX}, "x"}}},
	{"a member over an existing one", []hmember{
		{tar.Header{Name: "./f", Typeflag: tar.TypeReg, Format: tar.FormatGNU}, "first"},
		{tar.Header{Name: "./f", Typeflag: tar.TypeReg, Format: tar.FormatGNU}, "second"},
	}},
}

func TestExtractRefuseshostileArchives(t *testing.T) {
	needRoot(t)
	for _, c := range hostileArchives {
		t.Run(c.Name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "a", "b")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			err := Extract(bytes.NewReader(archive(t, c.Members...)), dir)
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Extract: %v, want ErrUnsupported", err)
			}
			for _, p := range []string{filepath.Join(parent, "a", "escaped"), filepath.Join(parent, "escaped"), "/tmp/escaped-abs", "/tmp/escaped-link", filepath.Join(parent, "a", "h")} {
				if _, err := os.Lstat(p); err == nil {
					os.Remove(p)
					t.Errorf("%s was written outside the directory", p)
				}
			}
		})
	}
}

func TestExtractRefusesWhatIsNotAnArchive(t *testing.T) {
	needRoot(t)
	for name, b := range map[string][]byte{
		"not gzip":         []byte("plain text"),
		"gzip, not tar":    gz(t, bytes.Repeat([]byte("x"), 1000)),
		"a GNU sparse one": archive(t, hmember{tar.Header{Name: "./s", Typeflag: tar.TypeGNUSparse, Format: tar.FormatGNU}, ""}),
	} {
		t.Run(name, func(t *testing.T) {
			if err := Extract(bytes.NewReader(b), t.TempDir()); !errors.Is(err, ErrUnsupported) {
				t.Errorf("Extract: %v, want ErrUnsupported", err)
			}
		})
	}
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}
