// Command faas-criu-init is the first process (PID 1) of a function
// container created for in-place hibernation (provider ContainerSpec.Init):
// the container stays up in Docker while the host dumps and restores only
// the function's processes with CRIU (bench/tried.md 47).
//
//	faas-criu-init [-dir /.faas-criu] -- CMD [ARG...]
//
// It starts CMD as its child in its own session (CRIU dumps a tree whose
// root leads its session), forwards SIGTERM/SIGINT to it, reaps every child
// (orphans of the container's pid namespace come to PID 1), and exits with
// the function's status when it exits, unless the host's marker
// (DIR/hibernated, a read-only bind of a host directory, so the function
// cannot fake it) says the exit was the host's dump: then it stays up with
// no function. With the marker present at its start (the container started
// again while hibernated) it waits for a restore instead of starting CMD.
// A restored function keeps its pid but is not its child (its parent is the
// host's restorer): on SIGUSR1 it reads the pid the host wrote in
// DIR/function and watches it with a pidfd. With no function, SIGTERM and
// SIGINT make it exit at once.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/faas-criu/faas-criu/internal/initfiles"
	"golang.org/x/sys/unix"
)

func main() {
	dir, args, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "faas-criu-init:", err)
		os.Exit(2)
	}
	h := &holder{dir: dir, start: ownStart()}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD, syscall.SIGUSR1)
	if !h.waitsAtStart() {
		burnPids(pidGap)
		h.fn, h.child = startFunction(args), true
	}
	exits := make(chan int, 1) // a restored function's exit, from its pidfd
	for {
		select {
		case s := <-sigs:
			h.signal(s.(syscall.Signal), exits)
		case st := <-exits:
			h.gone(st)
		}
	}
}

// holder is the init's state: the function's pid (0: none, hibernated).
type holder struct {
	dir   string
	start string // this process's start time, ties the host's files to this run
	fn    int
	child bool // fn is our child (started by us, not restored)
}

// pidGap: pids the init uses up before starting the function. A restore
// into the container started again (engine restart) needs the function's
// pids and its threads' free, and the new init's own threads (and runc's
// before it) take the namespace's first pids in a number that varies from
// run to run; the gap keeps them below the function's. About 0.05-0.15 ms
// each at the first start (none when waiting for a restore); the engine
// starts the container again in the rare case the gap was not enough
// (checkpoint.PidsTaken).
const pidGap = 32

// burnPids makes the runtime create and end about n threads: a goroutine
// that ends locked to its thread ends the thread.
func burnPids(n int) {
	done := make(chan struct{})
	for range n {
		go func() {
			runtime.LockOSThread()
			done <- struct{}{}
		}()
		<-done
	}
}

func startFunction(args []string) int {
	p, err := os.StartProcess(lookPath(args[0], os.Getenv("PATH")), args, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "faas-criu-init: start:", err)
		os.Exit(127)
	}
	return p.Pid
}

// waitsAtStart: a marker at start means the container was started while
// its function is hibernated; the host restores it.
func (h *holder) waitsAtStart() bool {
	_, err := os.Stat(h.dir + "/" + initfiles.Marker)
	return err == nil
}

func (h *holder) signal(s syscall.Signal, exits chan<- int) {
	switch s {
	case syscall.SIGTERM, syscall.SIGINT:
		if h.fn == 0 {
			os.Exit(0) // hibernated: nothing to stop
		}
		_ = syscall.Kill(h.fn, s)
	case syscall.SIGCHLD:
		if st, done := reap(h.fn, h.child); done {
			h.gone(st)
		}
	case syscall.SIGUSR1: // the host restored the function
		if h.fn != 0 {
			return
		}
		pid, ok := initfiles.ParsePidStart(readFile(h.dir+"/"+initfiles.Function), h.start)
		if !ok {
			return
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, "faas-criu-init: restored function gone:", err)
			os.Exit(1)
		}
		h.fn, h.child = pid, false
		go watch(fd, pid, h.dir, exits)
	}
}

// gone: the function ended, by the host's dump (stay up) or on its own
// (exit with its status).
func (h *holder) gone(status int) {
	if hibernatedOnPurpose(readFile(h.dir+"/"+initfiles.Marker), h.fn, h.start) {
		h.fn, h.child = 0, false
		return
	}
	os.Exit(status)
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
			status, done = initfiles.ExitCode(ws), true
		}
	}
}

// watch waits for a restored (non-child) function to end. Its status is
// read from /proc while it is a zombie; once its host parent reaped it, from
// the file the host writes before reaping.
func watch(pidfd, pid int, dir string, exits chan<- int) {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != unix.EINTR {
			break
		}
	}
	unix.Close(pidfd)
	st, ok := initfiles.ZombieStatus(readFile(fmt.Sprintf("/proc/%d/stat", pid)))
	if !ok {
		st = exitFileStatus(readFile(dir+"/"+initfiles.Exit), pid)
	}
	exits <- st
}

func ownStart() string { return initfiles.StartTime(readFile("/proc/self/stat")) }

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b)
}
