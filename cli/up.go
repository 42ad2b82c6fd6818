package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/faas-criu/faas-criu/build"
)

// upOptions are up's flags: build's and deploy's.
type upOptions struct {
	build      buildOptions
	deploy     deployOptions
	skipDeploy bool
}

func newUpCmd(o *upOptions) *cobra.Command {
	bo, do := &o.build, &o.deploy
	cmd := &cobra.Command{
		Use:   "up [-f stack.yml] [--filter NAME] [-g URL]",
		Short: "Build the stack's functions, then deploy them",
		Long: `Builds the selected functions (as "faas-criu build") and then deploys them
(as "faas-criu deploy"). Nothing is deployed if a build fails.`,
		Example: `  faas-criu up
  faas-criu up -f stack.yml --filter sensor --tag sha -e DEBUG=1`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, fns, err := bo.stack.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			// Everything is checked before the first build.
			opts, err := bo.options(s, fns, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			deps, c, err := do.prepare(s, fns)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := build.Run(ctx, opts); err != nil {
				return err
			}
			if o.skipDeploy || bo.shrinkwrap {
				return nil
			}
			return deploy(ctx, c, deps, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	bo.stack.addFlags(cmd.Flags())
	bo.addFlags(cmd.Flags())
	do.addFlags(cmd.Flags())
	boolVar(cmd.Flags(), &o.skipDeploy, "skip-deploy", false, "build only")
	return cmd
}
