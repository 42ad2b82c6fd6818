// Package archive is the migration format: a function's definition and its
// replicas' checkpoints as a zstd-compressed tar, written by the source and
// vetted and unpacked by the target. CheckTar vets the other half of a
// migration, the image's docker save stream, with the same rules for an
// untrusted tar (one walker, one set of link and size checks, the same
// ErrArchive kinds), which is why it lives here and not with the engine.
package archive

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/faas-criu/faas-criu/internal/fsutil"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/faas-criu/faas-criu/checkpoint"
)

// A migration archive carries a function to another box: its definition and
// the checkpoint of each replica, as a zstd-compressed tar:
//
//	manifest.json
//	checkpoints/<replica>/<CRIU image files>
//
// The image travels separately (a docker save stream), when the target
// lacks it.

// ArchiveVersion is the format written; readers refuse others.
const ArchiveVersion = 1

// Manifest describes the function in an archive.
type Manifest struct {
	Version int `json:"version"`
	// Function is the OpenFaaS FunctionDeployment.
	Function    json.RawMessage `json:"function"`
	ImageRef    string          `json:"imageRef"`
	ImageID     string          `json:"imageID"`
	CreatedAt   time.Time       `json:"createdAt"`
	Invocations uint64          `json:"invocations"`
	Source      string          `json:"source,omitempty"`
	Replicas    []ReplicaImage  `json:"replicas"`
}

// ReplicaImage is one replica's checkpoint in the archive.
type ReplicaImage struct {
	Index      int             `json:"index"`
	Checkpoint checkpoint.Info `json:"checkpoint"`
}

// ErrArchive marks an archive that was refused.
var ErrArchive = errors.New("archive refused")

// ErrArchiveTooLarge marks an archive over the size limit.
var ErrArchiveTooLarge = errors.New("archive too large")

// Compress wraps w in a zstd encoder tuned for speed on a small box.
func Compress(w io.Writer) (io.WriteCloser, error) {
	return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
}

// Decompress reads a zstd stream. Frames that ask for more than 8 MiB of
// window or 64 MiB of decoder memory are refused, so a hostile stream cannot
// make the reader allocate much (Compress needs far less).
func Decompress(r io.Reader) (io.ReadCloser, error) {
	d, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(8<<20), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return nil, err
	}
	return d.IOReadCloser(), nil
}

// WriteArchive writes m and the checkpoint directory of each replica
// (dirs[index]) as a compressed archive to w.
func WriteArchive(w io.Writer, m Manifest, dirs map[int]string) error {
	zw, err := Compress(w)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	m.Version = ArchiveVersion
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := writeEntry(tw, "manifest.json", mb); err != nil {
		return err
	}
	for _, r := range m.Replicas {
		dir, ok := dirs[r.Index]
		if !ok {
			return fmt.Errorf("no checkpoint directory for replica %d", r.Index)
		}
		if err := addDir(tw, dir, "checkpoints/"+strconv.Itoa(r.Index)); err != nil {
			return fmt.Errorf("replica %d: %w", r.Index, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func writeEntry(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg, ModTime: time.Now()}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}

// addDir adds the regular files under dir, below prefix.
func addDir(tw *tar.Writer, dir, prefix string) error {
	return fsutil.WalkRel(dir, func(p, rel string, d fs.DirEntry) error {
		name := path.Join(prefix, filepath.ToSlash(rel))
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Name: name + "/", Mode: 0o700, Typeflag: tar.TypeDir})
		}
		// Page images kept outside the directory are linked from it: the
		// archive carries their content.
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: int64(fi.Mode().Perm()), Size: fi.Size(), Typeflag: tar.TypeReg, ModTime: fi.ModTime()}); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
}

var archivePath = regexp.MustCompile(`^(manifest\.json|checkpoints/[0-9]{1,4}(/[A-Za-z0-9._-]+)*)$`)

// ReadArchive unpacks a compressed archive from r into dst, which must be an
// empty directory, and returns its manifest. It refuses absolute paths, "..",
// links and special files, names outside the archive's layout, and more
// than limit bytes of content; nothing is written outside dst. check, when
// not nil, vets the manifest as soon as it is read (it comes first), so an
// unwanted archive is refused before the rest is unpacked.
func ReadArchive(r io.Reader, dst string, limit int64, check func(*Manifest) error) (*Manifest, error) {
	zr, err := Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("%w: not a zstd stream: %w", ErrArchive, err)
	}
	defer zr.Close()
	return readArchiveTar(zr, dst, limit, check)
}

// readArchiveTar is ReadArchive after decompression.
func readArchiveTar(r io.Reader, dst string, limit int64, check func(*Manifest) error) (*Manifest, error) {
	var m *Manifest
	err := walkTar(r, limit, false, func(h *tar.Header, name string, body io.Reader) error {
		if !archivePath.MatchString(name) {
			return fmt.Errorf("%w: unexpected entry %q", ErrArchive, h.Name)
		}
		target := filepath.Join(dst, filepath.FromSlash(name))
		if h.Typeflag == tar.TypeDir {
			return os.MkdirAll(target, 0o700)
		}
		if name == "manifest.json" {
			b, err := io.ReadAll(io.LimitReader(body, 1<<20))
			if err != nil {
				return err
			}
			m = &Manifest{}
			if err := json.Unmarshal(b, m); err != nil {
				return fmt.Errorf("%w: manifest: %v", ErrArchive, err)
			}
			if m.Version != ArchiveVersion {
				return fmt.Errorf("%w: format version %d, want %d", ErrArchive, m.Version, ArchiveVersion)
			}
			if check != nil {
				return check(m)
			}
			return nil
		}
		if m == nil {
			return fmt.Errorf("%w: manifest.json must come first", ErrArchive)
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrArchive, h.Name, err)
		}
		_, err = io.Copy(f, body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("%w: no manifest.json", ErrArchive)
	}
	if m.Version != ArchiveVersion {
		return nil, fmt.Errorf("%w: format version %d, want %d", ErrArchive, m.Version, ArchiveVersion)
	}
	for _, rep := range m.Replicas {
		if !checkpoint.ValidName(rep.Checkpoint.Name) {
			return nil, fmt.Errorf("%w: replica %d: invalid checkpoint name %q", ErrArchive, rep.Index, rep.Checkpoint.Name)
		}
		if !checkpoint.Exists(filepath.Join(dst, "checkpoints", strconv.Itoa(rep.Index))) {
			return nil, fmt.Errorf("%w: replica %d has no checkpoint files", ErrArchive, rep.Index)
		}
	}
	return m, nil
}

// CheckTar reads a (decompressed) tar stream to its end without writing
// anything, refusing absolute paths, "..", links that point out of the tree,
// special files and more than limit bytes. It vets a docker save stream
// before the engine loads it (docker save links identical layers within the
// tree).
func CheckTar(r io.Reader, limit int64) error {
	var names []string
	links := map[string][]string{} // a link's name: its targets
	err := walkTar(r, limit, true, func(h *tar.Header, name string, _ io.Reader) error {
		names = append(names, name)
		if h.Typeflag == tar.TypeSymlink {
			links[name] = append(links[name], h.Linkname)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return checkLinkChains(names, links)
}

// checkLinkChains refuses the ways links that each stay in the tree can
// still lead out of it together: an entry placed under a link (the name
// then says nothing of where it lands), and a link whose target climbs
// ("..") out of a link (from a link to a/b, ".." is a, not the link's own
// directory). Both are checked once every link is known.
func checkLinkChains(names []string, links map[string][]string) error {
	if len(links) == 0 {
		return nil
	}
	throughLink := func(comps []string) (string, bool) {
		for i := 1; i <= len(comps); i++ {
			if p := strings.Join(comps[:i], "/"); links[p] != nil {
				return p, true
			}
		}
		return "", false
	}
	for _, n := range names {
		if dir := path.Dir(n); dir != "." {
			if l, ok := throughLink(strings.Split(dir, "/")); ok {
				return fmt.Errorf("%w: %q is under the link %q", ErrArchive, n, l)
			}
		}
	}
	sorted := make([]string, 0, len(links))
	for n := range links {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		for _, target := range links[n] {
			var at []string
			for _, c := range strings.Split(path.Dir(n)+"/"+target, "/") {
				switch c {
				case "", ".":
				case "..":
					if l, ok := throughLink(at); ok || len(at) == 0 {
						return fmt.Errorf("%w: link %q -> %q climbs out of the link %q", ErrArchive, n, target, l)
					}
					at = at[:len(at)-1]
				default:
					at = append(at, c)
				}
			}
		}
	}
	return nil
}

// walkTar calls f for each entry with its cleaned name, after checking the
// entry is safe and the total size stays within limit. Links are refused,
// or with inTreeLinks, only those leading out of the tree.
func walkTar(r io.Reader, limit int64, inTreeLinks bool, f func(h *tar.Header, name string, body io.Reader) error) error {
	tr := tar.NewReader(r)
	var total int64
	for entries := 0; ; entries++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: broken tar stream: %w", ErrArchive, err)
		}
		if entries > 100_000 {
			return fmt.Errorf("%w: too many entries", ErrArchive)
		}
		name, err := safeName(h, inTreeLinks)
		if err != nil {
			return err
		}
		total += max(h.Size, 0)
		if total > limit {
			return fmt.Errorf("%w: more than %d bytes", ErrArchiveTooLarge, limit)
		}
		if err := f(h, name, tr); err != nil {
			return err
		}
	}
}

// safeName checks one entry: a relative path that stays inside the tree, of
// a regular file or directory (or, with inTreeLinks, a link that stays in
// the tree).
func safeName(h *tar.Header, inTreeLinks bool) (string, error) {
	n := h.Name
	switch {
	case n == "" || strings.ContainsRune(n, 0):
		return "", fmt.Errorf("%w: empty or binary entry name", ErrArchive)
	case strings.HasPrefix(n, "/") || filepath.IsAbs(n):
		return "", fmt.Errorf("%w: absolute path %q", ErrArchive, n)
	}
	clean := path.Clean(n)
	if leaves(n) {
		return "", fmt.Errorf("%w: path %q leaves the tree", ErrArchive, n)
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeDir:
	case tar.TypeSymlink, tar.TypeLink:
		target := h.Linkname
		if h.Typeflag == tar.TypeSymlink && !path.IsAbs(target) {
			target = path.Join(path.Dir(clean), target)
		}
		if !inTreeLinks || target == "" || path.IsAbs(target) || leaves(target) {
			return "", fmt.Errorf("%w: link %q -> %q", ErrArchive, n, h.Linkname)
		}
	default:
		return "", fmt.Errorf("%w: special file %q (type %q)", ErrArchive, n, h.Typeflag)
	}
	if h.Size < 0 {
		return "", fmt.Errorf("%w: negative size for %q", ErrArchive, n)
	}
	return clean, nil
}

// leaves reports whether a slash-separated relative path climbs out of its
// tree.
func leaves(p string) bool {
	c := path.Clean(p)
	return c == ".." || strings.HasPrefix(c, "../") || strings.Contains("/"+p+"/", "/../")
}

// manifestFile is the manifest's name in an archive and in a directory
// holding an unpacked one.
const manifestFile = "manifest.json"

// SaveManifest writes m into dir, so that dir holds an unpacked archive
// (ReadArchive writes the checkpoints, not the manifest it returns).
func SaveManifest(dir string, m *Manifest) error {
	m.Version = ArchiveVersion
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, manifestFile), b, 0o600)
}

// LoadManifest reads the manifest of the archive unpacked in dir and checks
// that every replica it names has its checkpoint there.
func LoadManifest(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrArchive, err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrArchive, err)
	}
	if m.Version != ArchiveVersion {
		return nil, fmt.Errorf("%w: format version %d, want %d", ErrArchive, m.Version, ArchiveVersion)
	}
	for _, rep := range m.Replicas {
		if !checkpoint.ValidName(rep.Checkpoint.Name) {
			return nil, fmt.Errorf("%w: replica %d: invalid checkpoint name %q", ErrArchive, rep.Index, rep.Checkpoint.Name)
		}
		if !checkpoint.Exists(ReplicaDir(dir, rep.Index)) {
			return nil, fmt.Errorf("%w: replica %d has no checkpoint files", ErrArchive, rep.Index)
		}
	}
	return &m, nil
}

// ReplicaDir is where replica index's checkpoint is in a directory holding
// an unpacked archive.
func ReplicaDir(dir string, index int) string {
	return filepath.Join(dir, "checkpoints", strconv.Itoa(index))
}

// WriteDir writes the archive unpacked in dir (as ReadArchive and
// SaveManifest leave it) to w, compressed, and returns its manifest.
func WriteDir(w io.Writer, dir string) (*Manifest, error) {
	m, err := LoadManifest(dir)
	if err != nil {
		return nil, err
	}
	dirs := map[int]string{}
	for _, rep := range m.Replicas {
		dirs[rep.Index] = ReplicaDir(dir, rep.Index)
	}
	return m, WriteArchive(w, *m, dirs)
}
