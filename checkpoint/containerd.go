package checkpoint

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// containerd 1.6 unpacks every checkpoint it restores into a directory of
// its temporary directory (ctrd-checkpoint*) and never removes it: each
// restore would leave a copy of the checkpoint behind. The copies of
// faas-criu's checkpoints carry its MetaFile, which names them. A dump that
// does not finish (the engine's request cancelled, say) leaves CRIU's first
// images in such a directory too, without a MetaFile.

// ContainerdCopyPattern matches containerd's unpacked checkpoints.
const ContainerdCopyPattern = "ctrd-checkpoint*"

// RemoveContainerdCopies removes containerd's copies of the checkpoint
// called name from tmp (containerd's temporary directory).
func RemoveContainerdCopies(tmp, name string) int {
	n := 0
	for _, d := range containerdDirs(tmp) {
		if info, ok := ReadMeta(d); ok && info.Name == name && os.RemoveAll(d) == nil {
			n++
		}
	}
	return n
}

// RemoveStaleContainerdCopies removes from tmp, once they are older than
// age, containerd's copies of faas-criu checkpoints (left by restores the
// provider did not see through) and the directories of unfinished dumps of
// containers that ours reports (CRIU's cgroup image names the container).
func RemoveStaleContainerdCopies(tmp string, age time.Duration, ours func(containerID string) bool) int {
	cut := time.Now().Add(-age)
	n := 0
	for _, d := range containerdDirs(tmp) {
		fi, err := os.Stat(d)
		if err != nil || fi.ModTime().After(cut) {
			continue
		}
		if _, ok := ReadMeta(d); !ok && !namesContainer(d, ours) {
			continue
		}
		if os.RemoveAll(d) == nil {
			n++
		}
	}
	return n
}

// RemoveContainerdLeftoversOf removes whatever containerd left in tmp of the
// checkpoints of a container that is being removed: copies of restored
// checkpoints and unfinished dumps alike, found by the container's id in
// CRIU's cgroup image.
func RemoveContainerdLeftoversOf(tmp, containerID string) int {
	n := 0
	for _, d := range containerdDirs(tmp) {
		if namesContainer(d, func(id string) bool { return id == containerID }) && os.RemoveAll(d) == nil {
			n++
		}
	}
	return n
}

func containerdDirs(tmp string) []string {
	dirs, _ := filepath.Glob(filepath.Join(tmp, ContainerdCopyPattern))
	return dirs
}

// ReadMeta reads the description faas-criu put in a checkpoint directory.
func ReadMeta(dir string) (Info, bool) {
	var info Info
	b, err := os.ReadFile(filepath.Join(dir, MetaFile))
	if err != nil || json.Unmarshal(b, &info) != nil || info.Name == "" {
		return Info{}, false
	}
	return info, true
}

// containerIDs finds Docker container ids (64 hex digits) in a CRIU image.
var containerIDs = regexp.MustCompile(`[0-9a-f]{64}`)

// namesContainer reports whether dir holds CRIU images of a container ours
// reports, by the ids in its cgroup image (the container's cgroup path).
func namesContainer(dir string, ours func(string) bool) bool {
	f, err := os.Open(filepath.Join(dir, "cgroup.img"))
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return false
	}
	for _, id := range containerIDs.FindAll(b, -1) {
		if ours(string(id)) {
			return true
		}
	}
	return false
}
