package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
)

// The relay is the invoke-overhead comparison's third contender: a
// byte-for-byte TCP relay to the replica, in its own process, that parses
// nothing and copies each direction with io.Copy (splice(2) between two TCP
// sockets). It is the least any proxy in front of a function does, so its
// share of the direct rate bounds what a proxy can reach on this machine.

// serveRelay relays every connection accepted on a loopback port to `to`.
// It prints the port's address on its first line of output.
func serveRelay(to string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	fmt.Println(ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		go relayConn(c.(*net.TCPConn), to)
	}
}

func relayConn(c *net.TCPConn, to string) {
	defer c.Close()
	nu, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	u := nu.(*net.TCPConn)
	defer u.Close()
	go func() {
		io.Copy(u, c)
		u.CloseWrite()
	}()
	io.Copy(c, u)
}

// startRelay runs this benchmark's own binary as a relay to `to` and
// returns the relay's address and process id.
func startRelay(to string) (addr string, pid int, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return "", 0, nil, fmt.Errorf("relay: %w", err)
	}
	cmd := exec.Command(exe, "-relay-to", to)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, fmt.Errorf("relay: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("relay: %w", err)
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		stop()
		return "", 0, nil, errors.Join(errors.New("relay did not start"), err)
	}
	return strings.TrimSpace(line), cmd.Process.Pid, stop, nil
}
