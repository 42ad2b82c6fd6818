package main

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/faas-criu/faas-criu/internal/initfiles"
)

func parseArgs(argv []string) (dir string, args []string, err error) {
	dir = "/.faas-criu"
	if len(argv) >= 2 && argv[0] == "-dir" {
		dir, argv = argv[1], argv[2:]
	}
	if len(argv) > 0 && argv[0] == "--" {
		argv = argv[1:]
	}
	if len(argv) == 0 {
		return "", nil, errors.New("usage: faas-criu-init [-dir DIR] -- CMD [ARG...]")
	}
	return dir, argv, nil
}

// hibernatedOnPurpose: the marker names this function in this run.
func hibernatedOnPurpose(marker string, fn int, start string) bool {
	pid, ok := initfiles.ParsePidStart(marker, start)
	return ok && pid == fn
}

// exitFileStatus reads the host's "PID STATUS" for pid; 1 when it has none.
func exitFileStatus(s string, pid int) int {
	f := strings.Fields(s)
	if len(f) == 2 && f[0] == strconv.Itoa(pid) {
		if st, err := strconv.Atoi(f[1]); err == nil {
			return st
		}
	}
	return 1
}

func lookPath(name, path string) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, d := range strings.Split(path, ":") {
		if st, err := os.Stat(d + "/" + name); err == nil && !st.IsDir() {
			return d + "/" + name
		}
	}
	return name
}
