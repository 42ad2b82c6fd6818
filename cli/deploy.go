package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/openfaas/faas-provider/types"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/faas-criu/faas-criu/client"
	"github.com/faas-criu/faas-criu/stack"
)

// deployOptions are deploy's flags (up has them too).
type deployOptions struct {
	stack       stackOptions // deploy's own; up uses build's
	tag         string       // deploy's own; up uses build's
	gw          gatewayOptions
	env         []string
	labels      []string
	annotations []string
	secrets     []string
}

func (o *deployOptions) addFlags(fs *pflag.FlagSet) {
	o.gw.addFlags(fs, "namespace for every function, instead of the stack's (default: the provider's)")
	fs.StringArrayVarP(&o.env, "env", "e", nil, "environment variable KEY=VALUE for every function, over the stack's (repeatable)")
	fs.StringArrayVarP(&o.labels, "label", "l", nil, "label KEY=VALUE for every function (repeatable)")
	fs.StringArrayVar(&o.annotations, "annotation", nil, "annotation KEY=VALUE for every function (repeatable)")
	fs.StringArrayVar(&o.secrets, "secret", nil, "secret every function may read (repeatable)")
}

// deployments maps the functions onto deployment requests with the flags'
// overrides.
// prepare turns the functions into deployments and makes the client for
// the gateway they go to: everything checked before anything is sent.
func (o *deployOptions) prepare(s *stack.Stack, fns []*stack.Function) ([]types.FunctionDeployment, *client.Client, error) {
	deps, err := o.deployments(fns)
	if err != nil {
		return nil, nil, err
	}
	c, err := o.gw.client(s.Provider.Gateway)
	if err != nil {
		return nil, nil, err
	}
	return deps, c, nil
}

func (o *deployOptions) deployments(fns []*stack.Function) ([]types.FunctionDeployment, error) {
	env, err := keyValues("env", o.env)
	if err != nil {
		return nil, err
	}
	labels, err := keyValues("label", o.labels)
	if err != nil {
		return nil, err
	}
	annotations, err := keyValues("annotation", o.annotations)
	if err != nil {
		return nil, err
	}
	deps := make([]types.FunctionDeployment, 0, len(fns))
	for _, fn := range fns {
		dep := fn.Deployment()
		if o.gw.namespace != "" {
			dep.Namespace = o.gw.namespace
		}
		dep.EnvVars = merged(dep.EnvVars, env)
		if len(labels) > 0 {
			l := merged(deref(dep.Labels), labels)
			dep.Labels = &l
		}
		if len(annotations) > 0 {
			a := merged(deref(dep.Annotations), annotations)
			dep.Annotations = &a
		}
		for _, s := range o.secrets {
			if !slices.Contains(dep.Secrets, s) {
				dep.Secrets = append(dep.Secrets, s)
			}
		}
		deps = append(deps, dep)
	}
	return deps, nil
}

// merged is a copy of base with over on top (nil when both are empty).
func merged(base, over map[string]string) map[string]string {
	if len(over) == 0 {
		return base
	}
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

func deref(m *map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	return *m
}

// deploy applies the deployments with rollback, a line per function.
func deploy(ctx context.Context, c *client.Client, deps []types.FunctionDeployment, stdout, stderr io.Writer) error {
	d := client.NewDeployer(c, stderr)
	return d.DeployAll(ctx, deps, func(what, name string) { fmt.Fprintf(stdout, "%s %s\n", what, name) })
}

func newDeployCmd(o *deployOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "deploy [-f stack.yml] [--filter NAME] [-g URL]",
		Short: "Deploy or update the stack's functions",
		Long: `Deploys or updates each function of the stack as faas-cli does (PUT
/system/functions, then POST on 404). If one fails, what this run did is
undone: new functions are removed and updated ones get their previous
definition back. Everything is checked before the first request.

Credentials: faas-cli login's config ($OPENFAAS_CONFIG or ~/.openfaas), else
the provider's files in $secret_mount_path or ` + client.ProviderCredentialsDir + `.`,
		Example: `  faas-criu deploy
  faas-criu deploy -f stack.yml --filter sensor -g http://box:8080
  faas-criu deploy -e LOG_LEVEL=debug -l team=iot --secret api-key -n dev`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, fns, err := o.stack.load(cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if err := tagImages(fns, o.tag, s.Dir); err != nil {
				return err
			}
			deps, c, err := o.prepare(s, fns)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return deploy(ctx, c, deps, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.stack.addFlags(cmd.Flags())
	o.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.tag, "tag", "latest", "image tag format: latest, sha, branch or describe (as build's)")
	return cmd
}
