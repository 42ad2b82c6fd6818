package checkpoint

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// containerd 1.6 unpacks every checkpoint it restores into a directory of
// its temporary directory (ctrd-checkpoint*) and never removes it: each
// restore would leave a copy of the checkpoint behind. The copies of
// faas-criu's checkpoints carry its MetaFile, which names them.

// ContainerdCopyPattern matches containerd's unpacked checkpoints.
const ContainerdCopyPattern = "ctrd-checkpoint*"

// RemoveContainerdCopies removes containerd's copies of the checkpoint
// called name from tmp (containerd's temporary directory).
func RemoveContainerdCopies(tmp, name string) int {
	return removeCopies(tmp, func(info Info, _ time.Time) bool { return info.Name == name })
}

// RemoveStaleContainerdCopies removes containerd's copies of faas-criu
// checkpoints older than age (left by restores before the provider started).
func RemoveStaleContainerdCopies(tmp string, age time.Duration) int {
	cut := time.Now().Add(-age)
	return removeCopies(tmp, func(_ Info, mod time.Time) bool { return mod.Before(cut) })
}

func removeCopies(tmp string, match func(Info, time.Time) bool) int {
	dirs, _ := filepath.Glob(filepath.Join(tmp, ContainerdCopyPattern))
	n := 0
	for _, d := range dirs {
		meta := filepath.Join(d, MetaFile)
		fi, err := os.Stat(meta)
		if err != nil {
			continue // not one of ours
		}
		b, err := os.ReadFile(meta)
		if err != nil {
			continue
		}
		var info Info
		if json.Unmarshal(b, &info) != nil || info.Name == "" {
			continue
		}
		if match(info, fi.ModTime()) && os.RemoveAll(d) == nil {
			n++
		}
	}
	return n
}
