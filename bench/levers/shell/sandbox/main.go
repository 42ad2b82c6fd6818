// Command sandbox holds a replica's network namespace in the shell probe
// (as the provider's own sandbox image does): it sleeps until SIGTERM/SIGINT.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
