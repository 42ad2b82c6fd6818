// Command holder is a function container's PID 1 in the "shell" probe
// (bench/levers/shell, issue 13): the container stays up in Docker while
// the function's own process is dumped and restored by CRIU directly.
//
//	/.faas-criu/init -- /fn args...
//
// It starts the function as its child, forwards SIGTERM/SIGINT to it, reaps
// every child (orphans in the container's pid namespace come to PID 1), and
// exits with the function's status when it exits, unless the host wrote the
// marker file (/.faas-criu/hibernated, a read-only bind of a host directory,
// so the function cannot fake it) before dumping it: then it stays up with
// no function. After a restore the host sends SIGUSR1: the restored process
// has the same pid but is not the holder's child (its parent is criu's
// reaper on the host), so the holder watches it with a pidfd. With no
// function, SIGTERM/SIGINT make it exit at once.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const marker = "/.faas-criu/hibernated"

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "holder: usage: init -- CMD [ARG...]")
		os.Exit(2)
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD, syscall.SIGUSR1)
	// Its own session: CRIU dumps a tree whose root leads its session
	// (else --shell-job, which restores it into criu's session).
	p, err := os.StartProcess(lookPath(args[0]), args, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "holder: start:", err)
		os.Exit(127)
	}
	fn := p.Pid
	last := 0     // the function's pid when it was dumped
	child := true // the function is our child (not a restored process)
	pidfd := -1
	exits := make(chan int, 1) // a restored function's exit, from its pidfd
	for {
		select {
		case s := <-sigs:
			switch s {
			case syscall.SIGTERM, syscall.SIGINT:
				if fn == 0 {
					os.Exit(0) // hibernated: nothing to stop
				}
				_ = syscall.Kill(fn, s.(syscall.Signal))
			case syscall.SIGCHLD:
				if st, done := reap(fn, child); done {
					last, fn = fn, gone(st)
				}
			case syscall.SIGUSR1: // the host restored the function
				if fn != 0 || last == 0 {
					continue
				}
				// The same pid as before the dump (CRIU restores it), kept
				// here: the marker may be gone already when this signal is
				// handled (the host removes it right after the restore).
				fn = last
				child = false
				if pidfd, err = unix.PidfdOpen(fn, 0); err != nil {
					fmt.Fprintln(os.Stderr, "holder: restored function gone:", err)
					os.Exit(1)
				}
				go watch(pidfd, fn, exits)
			}
		case st := <-exits:
			unix.Close(pidfd)
			last, fn = fn, gone(st)
		}
	}
}

// reap collects every exited child; done says the function was one of them.
func reap(fn int, child bool) (status int, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return status, done
		}
		if child && pid == fn {
			status, done = exitCode(ws), true
		}
	}
}

// gone decides what the function's exit means: hibernated on purpose
// (stay up, remember no function) or its end (exit with its status).
func gone(status int) int {
	if _, ok := readMarker(); ok {
		return 0
	}
	os.Exit(status)
	return 0
}

// readMarker reads the host's marker, "PID STARTTIME": the function's pid
// here and this holder's start time (field 22 of /proc/1/stat, the same
// seen from the host). A marker left from an earlier run of the container
// (the host died between writing it and removing it; the container was
// started again) names another start time and is ignored, else a plain
// exit of the function would be taken for a hibernation.
func readMarker() (pid int, ok bool) {
	b, err := os.ReadFile(marker)
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[1] != startTime() {
		return 0, false
	}
	pid, err = strconv.Atoi(f[0])
	return pid, err == nil && pid > 1
}

func startTime() string {
	b, err := os.ReadFile("/proc/1/stat")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	return f[19] // field 22
}

// watch waits for a restored (non-child) function to exit. Its status is
// read from /proc while it is a zombie, when its host parent has not
// reaped it yet; else 1.
func watch(pidfd, pid int, exits chan<- int) {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err == unix.EINTR {
			continue
		}
		break
	}
	exits <- zombieStatus(pid)
}

func zombieStatus(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 1
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) < 50 {
		return 1
	}
	code, err := strconv.Atoi(f[49]) // field 52: exit_code, as waitpid reports it
	if err != nil {
		return 1
	}
	return exitCode(syscall.WaitStatus(code))
}

func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

func lookPath(name string) string {
	if strings.Contains(name, "/") {
		return name
	}
	for _, d := range strings.Split(os.Getenv("PATH"), ":") {
		if _, err := os.Stat(d + "/" + name); err == nil {
			return d + "/" + name
		}
	}
	return name
}
