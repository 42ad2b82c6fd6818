package build

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/moby/sys/mountinfo"
)

// rootfsWriter writes a root filesystem as a tar stream for docker import.
// Names are relative ("usr/bin/env"); parents are added as needed.
type rootfsWriter struct {
	tw    *tar.Writer
	dirs  map[string]bool
	links map[[2]uint64]string // (device, inode) → first name, for hard links
}

func newRootfsWriter(w io.Writer) *rootfsWriter {
	return &rootfsWriter{tw: tar.NewWriter(w), dirs: map[string]bool{".": true}, links: map[[2]uint64]string{}}
}

func (r *rootfsWriter) Close() error { return r.tw.Close() }

func (r *rootfsWriter) parents(name string) error {
	if d := path.Dir(name); !r.dirs[d] {
		return r.dir(d, 0o755, 0, 0)
	}
	return nil
}

func (r *rootfsWriter) dir(name string, mode int64, uid, gid int) error {
	if r.dirs[name] {
		return nil
	}
	if err := r.parents(name); err != nil {
		return err
	}
	r.dirs[name] = true
	return r.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, Uid: uid, Gid: gid, Format: tar.FormatPAX})
}

func (r *rootfsWriter) file(name string, mode int64, data []byte) error {
	if err := r.parents(name); err != nil {
		return err
	}
	if err := r.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err := r.tw.Write(data)
	return err
}

func (r *rootfsWriter) symlink(name, target string) error {
	if err := r.parents(name); err != nil {
		return err
	}
	return r.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, Format: tar.FormatPAX})
}

// tree adds the tree at src under prefix, keeping modes, owners and hard
// links. skip, given a path relative to src, leaves it (and what is below)
// out. Device nodes, sockets and fifos are left out.
func (r *rootfsWriter) tree(src, prefix string, skip func(rel string) bool) error {
	return walkTree(src, prefix, skip, func(p, name string, fi fs.FileInfo) error {
		var err error
		st, _ := fi.Sys().(*syscall.Stat_t)
		hdr := &tar.Header{Name: name, Mode: tarMode(fi.Mode()), ModTime: fi.ModTime(), Format: tar.FormatPAX}
		if st != nil {
			hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		}
		switch {
		case fi.IsDir():
			r.dirs[name] = true
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		case fi.Mode()&fs.ModeSymlink != 0:
			if hdr.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
			hdr.Typeflag = tar.TypeSymlink
		case fi.Mode().IsRegular():
			hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
			if st != nil && st.Nlink > 1 {
				key := [2]uint64{uint64(st.Dev), st.Ino}
				if first, ok := r.links[key]; ok {
					hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				} else {
					r.links[key] = name
				}
			}
		default:
			return nil
		}
		if err := r.parents(name); err != nil {
			return err
		}
		if err := r.tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyFile(r.tw, p, hdr.Size); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	})
}

// tarMode is a file mode as tar stores it, with setuid, setgid and sticky.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

// errImportEnded stops a root filesystem writer whose import has ended.
var errImportEnded = errors.New("import ended")

// importRootfs runs write into a pipe and imports what it writes as the
// image ref (docker import), with Dockerfile-style changes.
func importRootfs(ctx context.Context, cli client.APIClient, ref string, changes []string, write func(w io.Writer) error) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: pr, SourceName: "-"}, ref,
		image.ImportOptions{Changes: changes, Message: "made by faas-criu build"})
	if err == nil {
		err = readMessages(rc, nil, nil)
		rc.Close()
	}
	pr.CloseWithError(errImportEnded) // unblocks a writer the import stopped reading
	if werr := <-done; werr != nil && !errors.Is(werr, errImportEnded) {
		// The writer's failure is what broke the import.
		return fmt.Errorf("docker import %s: writing the root filesystem: %w", ref, werr)
	}
	if err != nil {
		return fmt.Errorf("docker import %s: %w", ref, err)
	}
	return nil
}

// mountsUnder returns the mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	// The mount table names real paths: resolve symlinks (a TMPDIR behind
	// one) so that the prefix matches.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, fmt.Errorf("read the mount table: %w", err)
	}
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return out, nil
}

// removeRootfs removes a scratch root filesystem, first detaching anything
// a failed debootstrap left mounted in it (its /proc, or a bind mount of
// the host's /dev, which RemoveAll must never descend into).
func removeRootfs(dir string) error {
	mounts, err := mountsUnder(dir)
	if err != nil {
		return fmt.Errorf("not removing %s: cannot list mounts: %w", dir, err)
	}
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	if mounts, err = mountsUnder(dir); err != nil || len(mounts) > 0 {
		return fmt.Errorf("not removing %s: still mounted: %s", dir, strings.Join(mounts, ", "))
	}
	return os.RemoveAll(dir)
}
