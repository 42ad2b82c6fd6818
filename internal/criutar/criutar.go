// Package criutar does in-process the two GNU tar runs CRIU makes for every
// tmpfs mount of a container: at each dump
//
//	tar --create --gzip --no-unquote --no-wildcards --one-file-system
//	    --check-links --preserve-permissions --sparse --numeric-owner
//	    --directory /proc/self/fd/0 .
//
// (stdin the mount's root, stdout the image file), and at each restore
//
//	tar --extract --gzip --no-unquote --no-wildcards --directory DIR
//
// (stdin the image file). CRIU (criu/filesystems.c) hard-codes these and
// execs GNU tar, which execs gzip: two execs per mount and per dump or
// restore, five tmpfs mounts in a function container (bench/tried.md 29, 30,
// 37). The archives are the same format GNU tar reads and writes (gzip'd
// "gnu" tar, numeric owners, no names), so checkpoints made with either
// restore with the other.
//
// Only what those runs meet in a container's tmpfs is handled: directories,
// regular files, symlinks, hard links, device nodes and fifos, with their
// modes, numeric owners and mtimes. Anything else (a socket, a sparse file,
// a member name with "..", a pax header, a user name to look up, an entry
// already in the way) is ErrUnsupported, and the caller gives the whole run
// to GNU tar instead, so the result is always GNU tar's.
package criutar

import (
	"errors"
	"fmt"
	"slices"
)

// ErrUnsupported says the archive or tree holds something this package does
// not reproduce exactly as GNU tar would: run GNU tar instead.
var ErrUnsupported = errors.New("not handled in-process")

// unsupported wraps ErrUnsupported with what was met.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupported, fmt.Sprintf(format, args...))
}

// Op is which of CRIU's two tar runs an argument list is.
type Op int

const (
	// OpOther is any argument list but CRIU's two: it goes to GNU tar unchanged.
	OpOther Op = iota
	// OpCreate is CRIU's dump of a tmpfs mount (stdin the mount's root).
	OpCreate
	// OpExtract is CRIU's restore of a tmpfs mount into Dir.
	OpExtract
)

var (
	createArgs = []string{"--create", "--gzip", "--no-unquote", "--no-wildcards",
		"--one-file-system", "--check-links", "--preserve-permissions", "--sparse",
		"--numeric-owner", "--directory", "/proc/self/fd/0", "."}
	extractArgs = []string{"--extract", "--gzip", "--no-unquote", "--no-wildcards", "--directory"}
)

// Parse says which run args (without the program's name) is, and for
// Extract the directory. Only CRIU's exact argument lists match: any other
// option could change what GNU tar does.
func Parse(args []string) (op Op, dir string) {
	if slices.Equal(args, createArgs) {
		return OpCreate, ""
	}
	if len(args) == len(extractArgs)+1 && slices.Equal(args[:len(extractArgs)], extractArgs) &&
		args[len(args)-1] != "" {
		return OpExtract, args[len(args)-1]
	}
	return OpOther, ""
}
