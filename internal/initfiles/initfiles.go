// Package initfiles is what the host (checkpoint, for an in-place
// hibernation) and faas-criu-init share: the names and formats of the files
// the host writes in the init's directory, and the reading of
// /proc/PID/stat both sides do. It imports nothing heavy, so that the init
// stays a small binary.
package initfiles

import (
	"strconv"
	"strings"
	"syscall"
)

// The files of the init's directory: the host writes them, the init reads
// them.
const (
	// Marker, "PID START" before a dump (the function's pid in the
	// container, the init's start time) or anything while the container is
	// stopped hibernated: the init waits for a restore at its start.
	Marker = "hibernated"
	// Function, "PID START": the restored function, for the init to adopt.
	Function = "function"
	// Exit, "PID STATUS": a restored function's status, written by the host
	// before it reaps it.
	Exit = "exit"
)

// ParsePidStart reads "PID START" and says whether it names the run of the
// init started at start (a file left by an earlier run of the container
// names another start time); 0 and false when it does not. The init itself
// (1) is never named.
func ParsePidStart(s, start string) (int, bool) {
	f := strings.Fields(s)
	if len(f) != 2 || start == "" || f[1] != start {
		return 0, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 1 {
		return 0, false
	}
	return pid, true
}

// StatFields are /proc/PID/stat's fields, field N at index N-1 (the first
// two, pid and command, are left empty: the command may hold spaces).
func StatFields(stat string) []string {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nil
	}
	return append([]string{"", ""}, strings.Fields(stat[i+1:])...)
}

// StartTime is the start time in a process's stat (field 22), the same seen
// from the host and from its container; "" when stat has none.
func StartTime(stat string) string {
	f := StatFields(stat)
	if len(f) < 22 {
		return ""
	}
	return f[21]
}

// ZombieStatus reads a zombie's exit status from its stat (field 52,
// exit_code as waitpid reports it); false when stat is not a zombie's.
func ZombieStatus(stat string) (int, bool) {
	f := StatFields(stat)
	if len(f) < 52 || f[2] != "Z" {
		return 0, false
	}
	code, err := strconv.Atoi(f[51])
	if err != nil {
		return 0, false
	}
	return ExitCode(syscall.WaitStatus(code)), true
}

// ExitCode is a wait status as a shell reports it: 128+N for signal N.
func ExitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
