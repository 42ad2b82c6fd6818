// Command faas-criu-tar stands first on the PATH of the CRIU that Docker's
// runtime "faas-criu" runs (scripts/setup.sh), named "tar". CRIU execs
// "tar" twice per tmpfs mount at every dump and restore (GNU tar then execs
// gzip): this program does those two exact runs in-process
// (internal/criutar), with the same archive format, so that a function
// container's five tmpfs mounts cost no exec. Any other argument list, and
// any tree or archive criutar does not handle, goes to GNU tar unchanged:
// stdin rewound (extract) or stdout truncated (create) first, so GNU tar
// sees what it would have seen.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/faas-criu/faas-criu/internal/criutar"
)

func main() {
	op, dir := criutar.Parse(os.Args[1:])
	var err error
	switch op {
	case criutar.OpCreate:
		err = create()
	case criutar.OpExtract:
		err = extract(dir)
	default:
		err = gnuTar()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "faas-criu-tar: %v\n", err)
		os.Exit(2) // GNU tar's status for a fatal error
	}
}

// create archives the tree at stdin (CRIU's fd of the mount's root, which
// GNU tar reaches as --directory /proc/self/fd/0) to stdout.
func create() error {
	start, err := os.Stdout.Seek(0, io.SeekCurrent)
	if err != nil {
		return gnuTar() // not a file: nothing could be taken back
	}
	err = criutar.Create("/proc/self/fd/0", os.Stdout)
	if err == nil {
		return nil
	}
	if !errors.Is(err, criutar.ErrUnsupported) {
		fmt.Fprintf(os.Stderr, "faas-criu-tar: %v; running GNU tar\n", err)
	}
	if err := os.Stdout.Truncate(start); err != nil {
		return fmt.Errorf("truncating the image for GNU tar: %w", err)
	}
	if _, err := os.Stdout.Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding the image for GNU tar: %w", err)
	}
	return gnuTar()
}

// extract restores the archive on stdin into dir.
func extract(dir string) error {
	start, err := os.Stdin.Seek(0, io.SeekCurrent)
	if err != nil {
		return gnuTar()
	}
	err = criutar.Extract(os.Stdin, dir)
	if err == nil {
		return nil
	}
	if !errors.Is(err, criutar.ErrUnsupported) {
		fmt.Fprintf(os.Stderr, "faas-criu-tar: %v; running GNU tar\n", err)
	}
	if _, err := os.Stdin.Seek(start, io.SeekStart); err != nil {
		return fmt.Errorf("rewinding the image for GNU tar: %w", err)
	}
	return gnuTar()
}

// gnuTar execs the first "tar" on PATH that is not this program's
// directory, with this program's arguments, and PATH without that directory
// (GNU tar runs gzip from it).
func gnuTar() error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this program: %w", err)
	}
	own := filepath.Dir(self)
	var keep []string
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if d != "" && filepath.Clean(d) != own {
			keep = append(keep, d)
		}
	}
	pathEnv := strings.Join(keep, string(os.PathListSeparator))
	for _, d := range keep {
		p := filepath.Join(d, "tar")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			env := append(withoutPath(os.Environ()), "PATH="+pathEnv)
			return fmt.Errorf("exec %s: %w", p, syscall.Exec(p, append([]string{"tar"}, os.Args[1:]...), env))
		}
	}
	return fmt.Errorf("no GNU tar on PATH %q", pathEnv)
}

func withoutPath(env []string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, "PATH=") {
			out = append(out, e)
		}
	}
	return out
}
