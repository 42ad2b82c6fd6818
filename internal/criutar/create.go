package criutar

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// member is one file of the tree to archive, as lstat saw it.
type member struct {
	name string // in the archive: "./", "./dir/", "./dir/file"
	path string // on disk
	st   unix.Stat_t
	link string // a symlink's target
}

// Create writes to w what GNU tar's CRIU dump run writes for the tree at
// root: a gzip'd gnu-format archive of "." with numeric owners, not
// descending into directories of another file system. The tree is read
// whole before anything is written, so ErrUnsupported comes before the
// first byte; an error after that (a file gone while read) leaves w partly
// written.
func Create(root string, w io.Writer) error {
	members, err := collect(root)
	if err != nil {
		return err
	}
	// BestSpeed: the images are a few KB of headers; GNU tar's gzip -6 buys
	// nothing there but CPU.
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return fmt.Errorf("gzip writer: %w", err)
	}
	tw := tar.NewWriter(zw)
	seen := map[[2]uint64]string{}
	for i := range members {
		if err := writeMember(tw, &members[i], seen); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("closing the archive: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("closing the gzip stream: %w", err)
	}
	return nil
}

// collect lists the tree under root, parents before children, and refuses
// what GNU tar would write in a form this package does not (sockets, which
// GNU tar skips with a warning; sparse files, which --sparse stores as such).
func collect(root string) ([]member, error) {
	var out []member
	var walk func(name, p string, parentDev uint64, top bool) error
	walk = func(name, p string, parentDev uint64, top bool) error {
		m := member{name: name, path: p}
		stat := unix.Lstat
		if top {
			stat = unix.Stat // root may be a link to it: /proc/self/fd/0
		}
		if err := stat(p, &m.st); err != nil {
			return fmt.Errorf("stat %s: %w", p, err)
		}
		if err := check(&m); err != nil {
			return err
		}
		out = append(out, m)
		if m.st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return nil
		}
		// --one-file-system: the directory of another mount is archived,
		// its contents are not (GNU tar's dump_dir0).
		if !top && m.st.Dev != parentDev {
			return nil
		}
		names, err := readNames(p)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := walk(name+"/"+n, path.Join(p, n), m.st.Dev, false); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk(".", root, 0, true)
}

// check refuses the files this package does not write as GNU tar does, and
// reads a symlink's target.
func check(m *member) error {
	switch m.st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		// GNU tar's ST_IS_SPARSE: fewer blocks than the size needs.
		if m.st.Blocks*512 < m.st.Size {
			return unsupported("%s is sparse", m.path)
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(m.path)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", m.path, err)
		}
		m.link = target
	case unix.S_IFDIR, unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
	default:
		return unsupported("%s has file type %#o", m.path, m.st.Mode&unix.S_IFMT)
	}
	return nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", dir, err)
	}
	sort.Strings(names)
	return names, nil
}

// writeMember writes one member's header (a hard link to the first name of
// an inode already written, as GNU tar does for regular files and symlinks:
// device nodes and fifos are written again) and a regular file's bytes.
func writeMember(tw *tar.Writer, m *member, seen map[[2]uint64]string) error {
	hdr := header(m)
	typ := m.st.Mode & unix.S_IFMT
	if (typ == unix.S_IFREG || typ == unix.S_IFLNK) && m.st.Nlink > 1 {
		key := [2]uint64{m.st.Dev, m.st.Ino}
		if first, ok := seen[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
		} else {
			seen[key] = hdr.Name
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("header of %s: %w", m.path, err)
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	f, err := os.Open(m.path)
	if err != nil {
		return fmt.Errorf("open %s: %w", m.path, err)
	}
	defer f.Close()
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("archiving %s: %w", m.path, err)
	}
	return nil
}

// header is GNU tar's header for m: permission bits only in the mode,
// numeric ids and no names (--numeric-owner), mtime in whole seconds.
func header(m *member) *tar.Header {
	hdr := &tar.Header{
		Name:    m.name,
		Mode:    int64(m.st.Mode & 0o7777),
		Uid:     int(m.st.Uid),
		Gid:     int(m.st.Gid),
		ModTime: time.Unix(int64(m.st.Mtim.Sec), 0), // int32 on 32-bit ARM
		Format:  tar.FormatGNU,
	}
	switch m.st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, m.st.Size
	case unix.S_IFLNK:
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, m.link
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if m.st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(m.st.Rdev))
		hdr.Devminor = int64(unix.Minor(m.st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	}
	return hdr
}
