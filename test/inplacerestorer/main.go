// Command inplacerestorer restores a container's function in place and
// exits: the provider that restored it then restarted, as the in-place
// integration test needs it (the restored function, its child, goes to the
// host's init).
//
//	inplacerestorer CONTAINER DUMP-DIR INIT INIT-BASE
package main

import (
	"context"
	"fmt"
	"os"

	dockereng "github.com/faas-criu/faas-criu/provider/docker"
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: inplacerestorer CONTAINER DUMP-DIR INIT INIT-BASE")
		os.Exit(2)
	}
	e, err := dockereng.New(dockereng.WithInit(os.Args[3]), dockereng.WithInitBase(os.Args[4]))
	if err == nil {
		_, err = e.Info(context.Background())
	}
	if err == nil {
		err = e.RestoreInPlace(context.Background(), os.Args[1], os.Args[2])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "inplacerestorer:", err)
		os.Exit(1)
	}
}
