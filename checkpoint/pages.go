package checkpoint

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Docker 20.10 restores a checkpoint by piping the whole checkpoint
// directory through containerd's content store (a tar, hashed, stored,
// unpacked again: about 13 ms of CPU per MB). Most of a checkpoint is the
// memory CRIU wrote to pages-*.img. Those move out of the directory the
// engine copies, into a pages directory on the same filesystem, and are
// replaced by relative links that climb to / and down to them: they resolve
// from wherever containerd unpacks the copy, on the host, where CRIU opens
// its images. The engine then copies a megabyte or so, whatever the memory.

// PagesPattern matches CRIU's page images.
const PagesPattern = "pages-*.img"

// linkUp is enough "../" to reach / from any directory the links end up in.
var linkUp = strings.Repeat("../", 32)

// ExternalizePages moves the page images of the checkpoint in dir into
// pagesDir (on the same filesystem) and links them from dir.
func ExternalizePages(dir, pagesDir string) error {
	pages, err := filepath.Glob(filepath.Join(dir, PagesPattern))
	if err != nil || len(pages) == 0 {
		return err
	}
	abs, err := filepath.Abs(pagesDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	for _, p := range pages {
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			continue // already a link
		}
		dst := filepath.Join(abs, filepath.Base(p))
		if err := os.Rename(p, dst); err != nil {
			return fmt.Errorf("move %s: %w", filepath.Base(p), err)
		}
		if err := os.Symlink(linkUp+strings.TrimPrefix(dst, "/"), p); err != nil {
			return fmt.Errorf("link %s: %w", filepath.Base(p), err)
		}
	}
	return nil
}

// RelinkPages points the page links of the checkpoint in dir at pagesDir,
// after both moved (a replica renewed into a new container).
func RelinkPages(dir, pagesDir string) error {
	links, err := filepath.Glob(filepath.Join(dir, PagesPattern))
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(pagesDir)
	if err != nil {
		return err
	}
	for _, l := range links {
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			continue
		}
		if err := os.Remove(l); err != nil {
			return err
		}
		if err := os.Symlink(linkUp+strings.TrimPrefix(filepath.Join(abs, filepath.Base(l)), "/"), l); err != nil {
			return err
		}
	}
	return nil
}
