package criutar

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// extraction is one Extract run: the directories made or met, whose owner,
// mode and mtime are set last (deepest first), as GNU tar delays them so
// that creating their entries does not change their mtime.
type extraction struct {
	dir     string
	dirs    map[string]bool // relative names known to be real directories
	delayed []*tar.Header
}

// Extract does what GNU tar's CRIU restore run does with the gzip'd archive
// r into dir, as root: every member created with its numeric owner, its
// mode (setuid and sticky bits included) and mtime. ErrUnsupported can come
// after part of the archive is extracted: GNU tar, run over the whole
// archive afterwards, replaces what is there.
func Extract(r io.Reader, dir string) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return unsupported("not a gzip stream: %v", err)
	}
	tr := tar.NewReader(zr)
	x := &extraction{dir: dir, dirs: map[string]bool{".": true}}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return unsupported("reading the archive: %v", err)
		}
		if err := x.member(hdr, tr); err != nil {
			return err
		}
	}
	return x.finish()
}

// member extracts one archive member.
func (x *extraction) member(hdr *tar.Header, body io.Reader) error {
	name, err := memberName(hdr)
	if err != nil {
		return err
	}
	if err := x.parentIsDir(name); err != nil {
		return err
	}
	p := path.Join(x.dir, name)
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.directory(name, p, hdr)
	case tar.TypeReg, tar.TypeRegA:
		err = regular(p, hdr, body)
	case tar.TypeSymlink:
		err = symlink(p, hdr)
	case tar.TypeLink:
		err = x.hardLink(p, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		err = node(p, hdr)
	default:
		return unsupported("%s has type %q", hdr.Name, hdr.Typeflag)
	}
	if errors.Is(err, unix.EEXIST) {
		// GNU tar would remove what is in the way; it does so when it runs.
		return unsupported("%s exists", p)
	}
	return err
}

// memberName checks what GNU tar would read differently from the header's
// numbers or change before extracting (a leading "/" or a ".." it strips, a
// user or group name it looks up, pax records) and gives the cleaned name.
func memberName(hdr *tar.Header) (string, error) {
	if hdr.Uname != "" || hdr.Gname != "" {
		return "", unsupported("%s has owner names", hdr.Name)
	}
	if len(hdr.PAXRecords) > 0 {
		return "", unsupported("%s has pax records", hdr.Name)
	}
	if hdr.Typeflag == tar.TypeLink {
		if _, err := cleanName(hdr.Linkname); err != nil {
			return "", err
		}
	}
	return cleanName(hdr.Name)
}

// cleanName refuses an empty or absolute name or one with a ".." component
// (GNU tar strips those prefixes with a warning: it will do it itself).
func cleanName(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") {
		return "", unsupported("member name %q", name)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", unsupported("member name %q", name)
		}
	}
	return path.Clean(name), nil
}

// parentIsDir makes sure every directory above name is a real directory
// (not a symlink an earlier member made, which a later one could write
// through), as GNU tar ensures by delaying such symlinks to the end.
func (x *extraction) parentIsDir(name string) error {
	parent := path.Dir(name)
	if x.dirs[parent] {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(path.Join(x.dir, parent), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unsupported("parent of %s is not a directory", name)
	}
	if err := x.parentIsDir(parent); err != nil {
		return err
	}
	x.dirs[parent] = true
	return nil
}

// directory makes a directory (or keeps the one there, as GNU tar does for
// "." and any other) and delays its attributes.
func (x *extraction) directory(name, p string, hdr *tar.Header) error {
	if name != "." {
		if err := unix.Mkdir(p, 0o700); err != nil {
			var st unix.Stat_t
			if !errors.Is(err, unix.EEXIST) || unix.Lstat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				return unsupported("mkdir %s: %v", p, err)
			}
		}
	}
	x.dirs[name] = true
	h := *hdr
	h.Name = name
	x.delayed = append(x.delayed, &h)
	return nil
}

func regular(p string, hdr *tar.Header, body io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return attrs(p, hdr)
}

func symlink(p string, hdr *tar.Header) error {
	if err := unix.Symlink(hdr.Linkname, p); err != nil {
		return err
	}
	return attrs(p, hdr)
}

// hardLink links to an earlier member; GNU tar sets nothing on a link.
func (x *extraction) hardLink(p string, hdr *tar.Header) error {
	target, _ := cleanName(hdr.Linkname) // checked by memberName
	if err := x.parentIsDir(target); err != nil {
		return err
	}
	if err := unix.Link(path.Join(x.dir, target), p); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return err
		}
		return unsupported("link %s to %s: %v", p, target, err)
	}
	return nil
}

func node(p string, hdr *tar.Header) error {
	mode := uint32(unix.S_IFIFO)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode = unix.S_IFCHR
	case tar.TypeBlock:
		mode = unix.S_IFBLK
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	if err := unix.Mknod(p, mode|0o600, int(dev)); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return err
		}
		return fmt.Errorf("mknod %s: %w", p, err)
	}
	return attrs(p, hdr)
}

// attrs sets owner, then mode (a chown clears the setuid bits), then mtime
// (the access time left alone, as GNU tar leaves it). A symlink gets owner
// and mtime only.
func attrs(p string, hdr *tar.Header) error {
	if err := unix.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown %s: %w", p, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := unix.Chmod(p, uint32(hdr.Mode&0o7777)); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if hdr.ModTime.IsZero() {
		ts[1] = unix.NsecToTimespec(time.Unix(0, 0).UnixNano())
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set mtime of %s: %w", p, err)
	}
	return nil
}

// finish sets the directories' attributes, deepest first.
func (x *extraction) finish() error {
	for i := len(x.delayed) - 1; i >= 0; i-- {
		if err := attrs(path.Join(x.dir, x.delayed[i].Name), x.delayed[i]); err != nil {
			return err
		}
	}
	return nil
}
