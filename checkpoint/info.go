// Package checkpoint holds what faas-criu knows about CRIU: whether it works
// here (probe, runc.conf), how its checkpoints are named, sized and described
// (meta), the statistics it leaves behind, page images kept outside Docker,
// the layout of backups, and containerd's leftovers. When functions sleep is
// decided in package policy; the migration archive is checkpoint/archive.
package checkpoint

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Info describes one checkpoint of one replica.
type Info struct {
	Name     string        `json:"name"`
	TakenAt  time.Time     `json:"takenAt"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration"`
	Stats    *Stats        `json:"stats,omitempty"`
}

// Docker accepts checkpoint names of at least two characters from this set.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// NewName names a checkpoint taken at t; the prefix says why it was taken
// ("hib" for hibernation, "bak" for a backup).
func NewName(prefix string, t time.Time) string {
	return fmt.Sprintf("%s-%d", prefix, t.UnixNano())
}

// HibernationPrefix starts the name of every hibernation checkpoint (see
// BackupPrefix for backups).
const HibernationPrefix = "hib"

// IsHibernation reports whether name is a hibernation checkpoint's.
func IsHibernation(name string) bool {
	return strings.HasPrefix(name, HibernationPrefix+"-")
}

// ValidName reports whether Docker will accept name as a checkpoint name.
func ValidName(name string) bool { return validName.MatchString(name) }

// DirSize adds up the sizes of the regular files under dir, following the
// links to page images kept outside it.
func DirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() || d.Type()&fs.ModeSymlink != 0 {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			if fi.Mode().IsRegular() {
				total += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return total, nil
}

// Exists reports whether a checkpoint directory is present.
func Exists(dir string) bool {
	fi, err := os.Stat(dir)
	return err == nil && fi.IsDir()
}

// MetaFile is the file faas-criu adds to each checkpoint directory it keeps:
// the checkpoint's description. CRIU ignores it. It also makes the directory
// differ from the blob containerd kept of the dump, which Docker 20.10's
// restore would otherwise collide with ("content ... already exists") until
// containerd's garbage collector removes that blob (moby/moby#42900).
const MetaFile = "faas-criu.json"

// WriteMeta writes info into dir's MetaFile.
func WriteMeta(dir string, info Info) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, MetaFile), b, 0o600); err != nil {
		return fmt.Errorf("describe checkpoint: %w", err)
	}
	return nil
}

// FreeBytes is the space available to an unprivileged writer on the
// filesystem holding path.
func FreeBytes(path string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	// Bsize is int64 on amd64 and arm64 but int32 on 32-bit ARM: convert
	// both so the same line builds everywhere.
	return int64(st.Bavail) * int64(st.Bsize), nil
}
