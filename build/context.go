package build

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// contextFile is one entry of a build context and where it comes from.
type contextFile struct {
	src string
	fi  fs.FileInfo
}

// buildContext lists a function's build context the way faas-cli lays out
// build/<fn>/: the template's files, with the handler's copied over them
// into handlerFolder (its own "build" and "template" folders left out).
// With no template (lang: dockerfile) the context is the handler itself.
func buildContext(templateDir, handlerDir, handlerFolder string) (map[string]contextFile, error) {
	files := map[string]contextFile{}
	if templateDir == "" {
		if err := addTree(files, handlerDir, ".", nil); err != nil {
			return nil, err
		}
		if _, ok := files["Dockerfile"]; !ok {
			return nil, fmt.Errorf("%s has no Dockerfile", handlerDir)
		}
		return files, nil
	}
	if err := addTree(files, templateDir, ".", nil); err != nil {
		return nil, err
	}
	skip := func(rel string) bool { return rel == "build" || rel == "template" }
	if err := addTree(files, handlerDir, path.Clean(filepath.ToSlash(handlerFolder)), skip); err != nil {
		return nil, err
	}
	return files, nil
}

// addTree adds the tree at src under prefix, replacing what is there.
// skip, given a path relative to src, leaves it (and what is below) out.
func addTree(files map[string]contextFile, src, prefix string, skip func(rel string) bool) error {
	return walkTree(src, prefix, skip, func(p, name string, fi fs.FileInfo) error {
		if !fi.Mode().IsRegular() && !fi.IsDir() && fi.Mode()&fs.ModeSymlink == 0 {
			return nil // sockets, devices: never part of a context
		}
		// A file replacing a directory replaces what was below it too.
		if old, ok := files[name]; ok && old.fi.IsDir() && !fi.IsDir() {
			for k := range files {
				if strings.HasPrefix(k, name+"/") {
					delete(files, k)
				}
			}
		}
		files[name] = contextFile{src: p, fi: fi}
		return nil
	})
}

// walkTree calls visit for each entry under src (not src itself), with its
// path, its name below prefix (slash-separated) and its info. skip, given a
// path relative to src, leaves that path (and what is below it) out.
func walkTree(src, prefix string, skip func(rel string) bool, visit func(p, name string, fi fs.FileInfo) error) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." && skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		name := path.Join(prefix, rel)
		if name == "." {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return visit(p, name, fi)
	})
}

// writeContext writes the files as a tar stream, parents first, owned by
// root.
func writeContext(w io.Writer, files map[string]contextFile) error {
	tw := tar.NewWriter(w)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		f := files[name]
		hdr := &tar.Header{
			Name:    name,
			Mode:    int64(f.fi.Mode().Perm()),
			ModTime: f.fi.ModTime(),
			Format:  tar.FormatPAX,
		}
		switch {
		case f.fi.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
		case f.fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(f.src)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, f.fi.Size()
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("build context: %s: %w", name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyFile(tw, f.src, hdr.Size); err != nil {
				return fmt.Errorf("build context: %s: %w", name, err)
			}
		}
	}
	return tw.Close()
}

// copyFile copies exactly size bytes of the file at src.
func copyFile(w io.Writer, src string, size int64) error {
	fh, err := os.Open(src)
	if err != nil {
		return err
	}
	defer fh.Close()
	n, err := io.Copy(w, io.LimitReader(fh, size))
	if err == nil && n != size {
		err = fmt.Errorf("changed while being read (%d of %d bytes)", n, size)
	}
	return err
}
