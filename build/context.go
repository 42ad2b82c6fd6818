package build

import (
	"archive/tar"
	"fmt"
	"github.com/faas-criu/faas-criu/internal/fsutil"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
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
	return buildContextCopy(templateDir, handlerDir, handlerFolder, "", nil)
}

// buildContextCopy is buildContext with the stack's configuration.copy:
// each path, relative to the stack's directory root and inside it, is
// copied to the same relative path in the handler's folder (the context
// itself for lang: dockerfile), as faas-cli does.
func buildContextCopy(templateDir, handlerDir, handlerFolder, root string, extra []string) (map[string]contextFile, error) {
	files := map[string]contextFile{}
	dst := "."
	if templateDir == "" {
		if err := addTree(files, handlerDir, ".", nil); err != nil {
			return nil, err
		}
		if _, ok := files["Dockerfile"]; !ok {
			return nil, fmt.Errorf("%s has no Dockerfile", handlerDir)
		}
	} else {
		if err := addTree(files, templateDir, ".", nil); err != nil {
			return nil, err
		}
		skip := func(rel string) bool { return rel == "build" || rel == "template" }
		dst = path.Clean(filepath.ToSlash(handlerFolder))
		if err := addTree(files, handlerDir, dst, skip); err != nil {
			return nil, err
		}
	}
	for _, e := range extra {
		rel := filepath.Clean(filepath.FromSlash(e))
		if filepath.IsAbs(rel) || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("configuration.copy %q: must be a path inside the stack's directory, not the directory itself", e)
		}
		src := filepath.Join(root, rel)
		fi, err := os.Lstat(src)
		if err != nil {
			return nil, fmt.Errorf("configuration.copy %q: %w", e, err)
		}
		name := path.Join(dst, filepath.ToSlash(rel))
		if fi.IsDir() {
			err = addTree(files, src, name, nil)
		} else {
			files[name] = contextFile{src: src, fi: fi}
		}
		if err != nil {
			return nil, fmt.Errorf("configuration.copy %q: %w", e, err)
		}
	}
	return files, applyDockerignore(files)
}

// applyDockerignore removes from the context what its .dockerignore
// excludes, with Docker's own rules (the docker CLI applies them before it
// sends a context; the engine does not). As docker does, the Dockerfile and
// the .dockerignore itself are always sent.
func applyDockerignore(files map[string]contextFile) error {
	f, ok := files[".dockerignore"]
	if !ok || !f.fi.Mode().IsRegular() {
		return nil
	}
	fh, err := os.Open(f.src)
	if err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	patterns, err := ignorefile.ReadAll(fh)
	fh.Close()
	if err != nil {
		return fmt.Errorf("build context: %s: %w", f.src, err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("build context: %s: %w", f.src, err)
	}
	// Parents sort before their children, so a directory's result is known
	// when its entries are matched.
	parents := map[string]patternmatcher.MatchInfo{}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		excluded, info, err := pm.MatchesUsingParentResults(name, parents[path.Dir(name)])
		if err != nil {
			return fmt.Errorf("build context: %s: %s: %w", f.src, name, err)
		}
		if files[name].fi.IsDir() {
			parents[name] = info
		}
		if excluded && name != "Dockerfile" && name != ".dockerignore" {
			delete(files, name)
		}
	}
	return nil
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
	return fsutil.WalkRel(src, func(p, rel string, d fs.DirEntry) error {
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

// shrinkwrapAll writes each function's build context to
// o.ShrinkwrapDir/<fn> (faas-cli's --shrinkwrap), replacing what is there,
// for a build elsewhere.
func shrinkwrapAll(plans []*buildPlan, o Options) error {
	dir := o.ShrinkwrapDir
	if dir == "" {
		dir = filepath.Join(o.Stack.Dir, "build")
	}
	for _, p := range plans {
		tmplDir, folder := "", ""
		if p.tmpl != nil {
			tmplDir, folder = p.tmpl.Dir, p.tmpl.Spec.HandlerFolder
		}
		files, err := buildContextCopy(tmplDir, p.handlerDir, folder, p.root, p.copy)
		if err != nil {
			return fmt.Errorf("shrinkwrap %s: %w", p.fn.Name, err)
		}
		dst := filepath.Join(dir, p.fn.Name)
		if err := os.RemoveAll(dst); err != nil {
			return fmt.Errorf("shrinkwrap %s: %w", p.fn.Name, err)
		}
		if err := writeTree(dst, files); err != nil {
			return fmt.Errorf("shrinkwrap %s: %w", p.fn.Name, err)
		}
		fmt.Fprintf(o.Out, "shrinkwrapped %s: %s\n", p.fn.Name, dst)
	}
	return nil
}

// writeTree writes the files below dst, parents first.
func writeTree(dst string, files map[string]contextFile) error {
	names := slices.Sorted(maps.Keys(files))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, name := range names {
		f := files[name]
		p := filepath.Join(dst, filepath.FromSlash(name))
		switch {
		case f.fi.IsDir():
			if err := os.MkdirAll(p, f.fi.Mode().Perm()|0o700); err != nil {
				return err
			}
		case f.fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(f.src)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, p); err != nil {
				return err
			}
		default:
			if err := copyTo(p, f); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyTo copies one regular file of the context to p, with its mode.
func copyTo(p string, f contextFile) error {
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, f.fi.Mode().Perm())
	if err != nil {
		return err
	}
	if err := copyFile(out, f.src, f.fi.Size()); err != nil {
		out.Close()
		return fmt.Errorf("%s: %w", f.src, err)
	}
	return out.Close()
}
