// Command subreaper runs a command as a child subreaper and then reaps
// every orphan reparented to it until it has no child left: the parent a
// restored function gets once `criu restore -d` exits (the provider would
// be that subreaper). Without it the function goes to the host's init,
// which on this machine reaps late: its zombie holds its pid in the
// container (the next restore fails) and the container's exit waits for it.
//
//	subreaper CMD [ARG...]   exits with CMD's status once no child is left
package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "subreaper:", err)
		os.Exit(1)
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	status := 0
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "subreaper:", err)
		status = 1
	}
	for {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(-1, &ws, 0, nil); err == syscall.ECHILD {
			os.Exit(status)
		}
	}
}
