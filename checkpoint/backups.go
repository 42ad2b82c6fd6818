package checkpoint

import (
	"errors"
	"fmt"
	"github.com/faas-criu/faas-criu/internal/fsutil"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/faas-criu/faas-criu/api"
)

// Backups are checkpoints taken while a function keeps running, kept by the
// provider (not by Docker, so that they outlive the container) as
//
//	<root>/<replica>/bak-<unix nanoseconds>/<CRIU image files>

// BackupsRoot is where the backups of function name in namespace ns live,
// under the provider's state directory.
func BackupsRoot(stateDir, ns, name string) string {
	return filepath.Join(stateDir, "backups", ns, name)
}

// ReplicaBackups is the directory of one replica's backups under root.
func ReplicaBackups(root string, replica int) string {
	return filepath.Join(root, strconv.Itoa(replica))
}

// NewBackupName names a backup taken at t.
func NewBackupName(t time.Time) string { return NewName(BackupPrefix, t) }

// BackupPrefix starts every backup's name.
const BackupPrefix = "bak"

// Backup is one backup of one replica: what the API lists, and where it
// lies.
type Backup struct {
	api.Backup
	Dir string `json:"-"`
}

// backupTime reads the time out of a backup's name.
func backupTime(name string) (time.Time, bool) {
	ns, ok := strings.CutPrefix(name, BackupPrefix+"-")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n).UTC(), true
}

// ListBackups lists the backups under root, newest first (for each replica,
// and across replicas by time).
func ListBackups(root string) ([]Backup, error) {
	reps, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Backup
	for _, r := range reps {
		idx, err := strconv.Atoi(r.Name())
		if err != nil || !r.IsDir() {
			continue
		}
		dirs, err := os.ReadDir(filepath.Join(root, r.Name()))
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			t, ok := backupTime(d.Name())
			if !ok || !d.IsDir() {
				continue
			}
			dir := filepath.Join(root, r.Name(), d.Name())
			size, _ := DirSize(dir)
			out = append(out, Backup{Backup: api.Backup{Replica: idx, Name: d.Name(), TakenAt: t, Bytes: size}, Dir: dir})
		}
	}
	slices.SortStableFunc(out, func(a, b Backup) int {
		if c := b.TakenAt.Compare(a.TakenAt); c != 0 {
			return c
		}
		return a.Replica - b.Replica
	})
	return out, nil
}

// NewestBackup returns the newest backup of one replica.
func NewestBackup(root string, replica int) (Backup, bool) {
	all, err := ListBackups(root)
	if err != nil {
		return Backup{}, false
	}
	for _, b := range all {
		if b.Replica == replica {
			return b, true
		}
	}
	return Backup{}, false
}

// PruneBackups keeps the newest keep backups of each replica under root.
func PruneBackups(root string, keep int) error {
	all, err := ListBackups(root)
	if err != nil {
		return err
	}
	seen := map[int]int{}
	var errs []error
	for _, b := range all {
		seen[b.Replica]++
		if seen[b.Replica] > keep {
			if err := os.RemoveAll(b.Dir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// CopyDir copies the regular files and directories under src to dst, which
// must not exist yet. It is how a checkpoint kept elsewhere is put where the
// engine restores from. A link (to page images kept outside) is copied as
// its content.
func CopyDir(src, dst string) error {
	return mirrorDir(src, dst, "copy", copyFile)
}

// mirrorDir recreates src's directories under dst (which must not exist
// yet) and hands each regular file or link to file; anything else is
// refused, named with verb.
func mirrorDir(src, dst, verb string, file func(src, dst string) error) error {
	return fsutil.WalkRel(src, func(p, rel string, d fs.DirEntry) error {
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if rel == "." {
				return os.Mkdir(target, 0o700)
			}
			return os.MkdirAll(target, 0o700)
		case d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0:
			return file(p, target)
		default:
			return fmt.Errorf("%s %s: not a regular file", verb, p)
		}
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fi.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// LinkDir is CopyDir by hard links where it can (src and dst on one
// filesystem), so that a snapshot of a checkpoint costs no disk space and
// outlives the checkpoint's removal. Links to page images kept outside are
// followed: the snapshot holds the images themselves.
func LinkDir(src, dst string) error {
	return mirrorDir(src, dst, "link", LinkFile)
}

// LinkFile hard-links the file src names (symlinks followed) to dst, or
// copies it, mode kept, when they are on different filesystems. dst must
// not exist.
func LinkFile(src, dst string) error {
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	if os.Link(real, dst) == nil {
		return nil
	}
	return copyFile(real, dst)
}
