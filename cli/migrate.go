package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/client"
)

// migrateOptions are migrate's flags and argument.
type migrateOptions struct {
	gw            gatewayOptions
	name, to      string
	keep, replace bool
}

func newMigrateCmd(o *migrateOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate NAME --to URL",
		Short: "Move a function, with its memory state, to another faas-criu",
		Long: `Moves a function with its memory state to another faas-criu: it is
checkpointed here, its definition, checkpoint and (when the target lacks it)
image are streamed, compressed, and the target restores it. On failure it
keeps running here, with its state.

Credentials for both ends come from faas-cli login's config
($OPENFAAS_CONFIG or ~/.openfaas).`,
		Example: `  faas-criu migrate sensor --to http://box2:8080
  faas-criu migrate sensor --to http://box2:8080 --keep -g http://box1:8080`,
		Args: exactlyOneName,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.name = args[0]
			if o.to == "" {
				return usageError{errors.New("migrate: --to is required")}
			}
			return o.run(cmd)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.to, "to", "", "the faas-criu to move the function to (its URL)")
	o.gw.addFlags(fs, "the function's namespace")
	boolVar(fs, &o.keep, "keep", false, "leave a hibernated copy here instead of removing it")
	boolVar(fs, &o.replace, "replace", false, "overwrite a function of the same name at the target")
	return cmd
}

func (o *migrateOptions) run(cmd *cobra.Command) error {
	src, err := o.gw.client("")
	if err != nil {
		return err
	}
	dst, err := client.ForGateway(strings.TrimRight(o.to, "/"))
	if err != nil {
		return err
	}
	if o.gw.tlsNoVerify {
		dst.SkipTLSVerify()
	}
	req := api.MigrateRequest{FunctionName: o.name, Namespace: o.gw.namespace, To: dst.URL, Keep: o.keep, Replace: o.replace}
	if c := dst.Credentials; c != nil {
		req.ToUser, req.ToPassword, req.ToToken = c.User, c.Password, c.Token
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	out := cmd.OutOrStdout()
	start := time.Now()
	fmt.Fprintf(out, "migrating %s from %s to %s\n", o.name, src.URL, dst.URL)
	mp := &migrateProgress{w: out, tty: isTerminal(out)}
	err = src.Migrate(ctx, req, mp.show)
	mp.finishBar()
	if err != nil {
		var me *api.MigrationError
		if errors.As(err, &me) && me.Restored {
			fmt.Fprintf(out, "%s is running at %s again, with its state\n", o.name, src.URL)
		}
		return err
	}
	where := "removed from " + src.URL
	if o.keep {
		where = "a hibernated copy stays at " + src.URL
	}
	fmt.Fprintf(out, "migrated %s to %s in %s (%s)\n", o.name, dst.URL, time.Since(start).Round(time.Millisecond), where)
	return nil
}
