package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
)

// containerd 1.6 (Debian 12's, under Docker 20.10) unpacks a checkpoint
// into a temporary directory for each restore and never removes it. These
// are the benchmark's own leftovers there, found by the container ids in
// their cgroup image, so that the run can say how much it leaked and
// remove exactly what it created.
const restoreTempGlob = "ctrd-checkpoint*"

// idSet remembers the ids of every container the benchmark's functions had.
type idSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (s *idSet) add(id string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ids == nil {
		s.ids = map[string]bool{}
	}
	s.ids[id] = true
}

func (s *idSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.ids))
	for id := range s.ids {
		out = append(out, id)
	}
	return out
}

// track records the ids of every container carrying the benchmark's label,
// before functions are deleted.
func (b *bench) track(ctx context.Context) {
	f := filters.NewArgs(filters.Arg("label", benchLabel))
	list, err := b.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		b.progress("list benchmark containers: %v", err)
		return
	}
	for _, c := range list {
		b.ids.add(c.ID)
	}
}

// restoreLeftovers lists the temporary restore directories created since
// the run started that belong to the benchmark's containers, and their size.
func (b *bench) restoreLeftovers() (dirs []string, bytes int64) {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), restoreTempGlob))
	ids := b.ids.list()
	for _, d := range matches {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || fi.ModTime().Before(b.started.Add(-time.Second)) {
			continue
		}
		cg, err := os.ReadFile(filepath.Join(d, "cgroup.img"))
		if err != nil {
			continue
		}
		for _, id := range ids {
			if strings.Contains(string(cg), id) {
				dirs = append(dirs, d)
				bytes += treeSize(d)
				break
			}
		}
	}
	return dirs, bytes
}

// treeSize adds up the regular files under dir (links are not followed).
func treeSize(dir string) int64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				total += fi.Size()
			}
		}
		return nil
	})
	return total
}

// removeRestoreLeftovers removes the benchmark's temporary restore
// directories.
func (b *bench) removeRestoreLeftovers() error {
	dirs, _ := b.restoreLeftovers()
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("remove %s: %w", d, err)
		}
	}
	return nil
}

// leftoverSection reports what restores left on disk.
func leftoverSection(n int, bytes int64) Section {
	body := fmt.Sprintf("containerd 1.6 unpacks every checkpoint Docker restores into `%s/%s` and does not remove it. "+
		"After this run's restores, %d such directories of the benchmark's containers were left (found by their ids in `cgroup.img`), %s in all", os.TempDir(), restoreTempGlob, n, fmtBytes(bytes))
	if n == 0 {
		body += ": they were removed during the run (providers built from the current tree remove containerd's copies of their checkpoints after each restore, and stale ones when they start).\n"
	} else {
		body += "; the benchmark removes them at the end, but a provider running for weeks would fill its disk.\n"
	}
	return Section{Title: "Disk left behind by restores", Body: body}
}
