// Package fsutil holds the file-tree walk that the build context, checkpoint
// copies and the migration archive share.
package fsutil

import (
	"io/fs"
	"path/filepath"
)

// WalkRel walks the tree under root as filepath.WalkDir does, giving fn each
// entry's path and its path relative to root (root itself is "."). An error
// reading the tree stops the walk with that error; fn may return
// filepath.SkipDir.
func WalkRel(root string, fn func(path, rel string, d fs.DirEntry) error) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		return fn(p, rel, d)
	})
}
