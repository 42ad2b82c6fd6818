// Command faas-criu is an OpenFaaS provider for plain Docker that hibernates
// idle functions with CRIU instead of killing them. Its commands live in
// package cli; this file only hands them the arguments and the version.
//
//	faas-criu serve [flags]     run the provider
//	faas-criu version           print the client's and the server's version
package main

import (
	"os"
	"runtime/debug"

	"github.com/faas-criu/faas-criu/cli"
)

// Set with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

func main() {
	cli.Version, cli.Commit = version, commitID()
	args := os.Args[1:]
	// faas-cli-style --version still prints the version; -v does not (in
	// faas-cli it means verbose).
	if len(args) == 1 && args[0] == "--version" {
		args = []string{"version"}
	}
	os.Exit(cli.Execute(args))
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
