package main

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// The files the host keeps in the init's directory (checkpoint.InPlace*
// name the same).
const (
	// MarkerFile: "PID START" written before a dump (the function's pid
	// here, the init's start time), or present while the container is
	// stopped hibernated (then any content: wait for a restore).
	MarkerFile = "hibernated"
	// FunctionFile: "PID START" of a restored function.
	FunctionFile = "function"
	// ExitFile: "PID STATUS" of a restored function, written by the host
	// before it reaps it.
	ExitFile = "exit"
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

// parsePidStart reads "PID START" and says whether it names this run (a
// file left by an earlier run of the container names another start time).
func parsePidStart(s, start string) (int, bool) {
	f := strings.Fields(s)
	if len(f) != 2 || start == "" || f[1] != start {
		return 0, false
	}
	pid, err := strconv.Atoi(f[0])
	return pid, err == nil && pid > 1
}

// hibernatedOnPurpose: the marker names this function in this run.
func hibernatedOnPurpose(marker string, fn int, start string) bool {
	pid, ok := parsePidStart(marker, start)
	return ok && pid == fn
}

// statFields are the fields of /proc/PID/stat after the command (the
// first is field 3, state).
func statFields(stat string) []string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return append([]string{"", ""}, strings.Fields(stat[i+1:])...)
}

// zombieStatus reads a zombie's exit status from its stat (field 52,
// exit_code as waitpid reports it).
func zombieStatus(stat string) (int, bool) {
	f := statFields(stat)
	if len(f) < 52 || f[2] != "Z" {
		return 0, false
	}
	code, err := strconv.Atoi(f[51])
	if err != nil {
		return 0, false
	}
	return exitCode(syscall.WaitStatus(code)), true
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

func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
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
