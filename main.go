// Command faas-criu is an OpenFaaS provider for plain Docker that hibernates
// idle functions with CRIU instead of killing them.
//
//	faas-criu serve [flags]     run the provider
//	faas-criu version           print the version
package main

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/faas-criu/faas-criu/build"
	"github.com/faas-criu/faas-criu/cli"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	cli.Version, cli.Commit = version, commitID()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "serve":
		err = cli.Serve(args)
	case "build":
		err = build.RunBuild(args)
	case "deploy":
		err = cli.RunDeploy(args)
	case "migrate":
		err = cli.RunMigrate(args)
	case "backups":
		err = cli.RunBackups(args)
	case "version", "--version", "-v":
		fmt.Printf("faas-criu %s (commit %s)\n", version, commitID())
	case "help", "--help", "-h":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "faas-criu: unknown command %q\n\n", cmd)
		usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "faas-criu: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `faas-criu: an OpenFaaS provider for Docker that hibernates idle functions with CRIU

Usage:
  faas-criu serve [flags]      run the provider (faas-criu serve -h lists flags)
  faas-criu build -f stack.yml [--filter NAME] [--pull] [--verbose]
                               build the stack's function images offline
  faas-criu deploy -f stack.yml [--filter NAME] [--gateway URL] [--namespace NS]
                               deploy or update the stack's functions
  faas-criu migrate NAME --to URL [--keep] [--replace] [--gateway URL]
                               move a function, with its memory state, to another faas-criu
  faas-criu backups NAME [--restore BACKUP] [--gateway URL]
                               list a function's backups, or restore one
  faas-criu version            print the version
`)
}

// commitID is the commit set at build time, or the one Go recorded.
func commitID() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
