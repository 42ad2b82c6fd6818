package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// Version and Commit identify this build; main sets them from its linker
// flags before running a command.
var (
	Version = "dev"
	Commit  = "unknown"
)

// versionInfo is what version prints with --json.
type versionInfo struct {
	Client struct {
		Version string `json:"version"`
		Commit  string `json:"commit"`
	} `json:"client"`
	Server *serverVersion `json:"server,omitempty"`
	// ServerError says why the server did not answer.
	ServerError string `json:"serverError,omitempty"`
}

type serverVersion struct {
	URL           string `json:"url"`
	Provider      string `json:"provider"`
	Orchestration string `json:"orchestration"`
	Version       string `json:"version"`
	Commit        string `json:"commit"`
}

func newVersionCmd() *cobra.Command {
	var gw gatewayOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client's version and the server's (GET /system/info)",
		Long: `Prints this faas-criu's version and commit, then asks the gateway for the
provider's (GET /system/info). A server that does not answer is reported,
not an error.`,
		Example: `  faas-criu version
  faas-criu version -g http://box:8080 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var v versionInfo
			v.Client.Version, v.Client.Commit = Version, Commit
			if c, err := gw.client(""); err != nil {
				v.ServerError = err.Error()
			} else {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if in, err := c.Info(ctx); err != nil {
					v.ServerError = fmt.Sprintf("%s: %v", c.URL, err)
				} else {
					s := &serverVersion{URL: c.URL, Provider: in.Name, Orchestration: in.Orchestration}
					if in.Version != nil {
						s.Version, s.Commit = in.Version.Release, in.Version.SHA
					}
					v.Server = s
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			fmt.Fprintf(out, "faas-criu %s (commit %s)\n", v.Client.Version, v.Client.Commit)
			if s := v.Server; s != nil {
				fmt.Fprintf(out, "server %s: %s %s (commit %s, orchestration %s)\n", s.URL, s.Provider, s.Version, s.Commit, s.Orchestration)
			} else {
				fmt.Fprintf(out, "server: not reached: %s\n", v.ServerError)
			}
			return nil
		},
	}
	gw.addFlags(cmd.Flags(), "")
	boolVar(cmd.Flags(), &asJSON, "json", false, "print as JSON")
	return cmd
}
