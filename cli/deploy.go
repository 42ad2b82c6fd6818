package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/build"
	gateway "github.com/faas-criu/faas-criu/client"
	"github.com/faas-criu/faas-criu/stack"
)

type deployOptions struct {
	file      string
	filter    string
	gateway   string
	namespace string
}

func parseDeploy(args []string) (*deployOptions, error) {
	o := &deployOptions{}
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	fs.StringVar(&o.file, "f", "", "stack file (default stack.yml, or stack.yaml)")
	fs.StringVar(&o.file, "yaml", "", "same as -f")
	fs.StringVar(&o.filter, "filter", "", "deploy only the functions matching this glob")
	fs.StringVar(&o.gateway, "gateway", "", "gateway URL (default $OPENFAAS_URL, then the stack's provider.gateway, then "+gateway.DefaultURL+")")
	fs.StringVar(&o.gateway, "g", "", "same as --gateway")
	fs.StringVar(&o.namespace, "namespace", "", "namespace for every function, instead of the stack's (default: the provider's)")
	fs.StringVar(&o.namespace, "n", "", "same as --namespace")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: faas-criu deploy -f stack.yml [--filter NAME] [--gateway URL] [--namespace NS]\n\n"+
			"Deploys or updates each function of the stack as faas-cli does (PUT /system/functions,\n"+
			"then POST on 404). If one fails, what this run did is undone: new functions are\n"+
			"removed and updated ones get their previous definition back.\n\n"+
			"Credentials: faas-cli login's config ($OPENFAAS_CONFIG or ~/.openfaas), else the\n"+
			"provider's files in $secret_mount_path or "+gateway.ProviderCredentialsDir+".\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("deploy: unexpected argument %q", fs.Arg(0))
	}
	o.file = build.StackFile(o.file)
	return o, nil
}

func RunDeploy(args []string) error {
	o, err := parseDeploy(args)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	// Everything is checked before the first request.
	s, err := stack.Load(o.file, nil)
	if err != nil {
		return err
	}
	deps, err := s.Deployments(o.filter)
	if err != nil {
		return err
	}
	if o.namespace != "" {
		for i := range deps {
			deps[i].Namespace = o.namespace
		}
	}
	gw := gateway.URL(o.gateway, s.Provider.Gateway, nil)
	if u, err := url.Parse(gw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("invalid gateway URL %q: expected http(s)://host[:port]", gw)
	}
	creds, err := gateway.FindCredentials(gw, nil)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &deployer{client: gateway.NewClient(gw, creds)}
	for _, dep := range deps {
		what, err := d.apply(ctx, dep)
		if err != nil {
			return fmt.Errorf("deploy %s: %w%s", dep.Service, err, d.rollback())
		}
		fmt.Printf("%s %s\n", what, dep.Service)
	}
	return nil
}

// deployer applies deployments and remembers how to undo them.
type deployer struct {
	client *gateway.Client
	// undo holds, newest last, what rollback must do.
	undo []undoStep
}

// undoStep undoes one function's change: delete it when it was new (prev
// is nil), else put prev back.
type undoStep struct {
	name, namespace string
	prev            *types.FunctionDeployment
	// maybe is set for the function whose request failed: it may not
	// exist, or may be unchanged.
	maybe bool
}

// apply deploys one function as faas-cli does: PUT, and POST when the PUT
// answers 404. The definition it replaces is read first, for rollback.
func (d *deployer) apply(ctx context.Context, dep types.FunctionDeployment) (string, error) {
	var prev *types.FunctionDeployment
	st, err := d.client.Function(ctx, dep.Service, dep.Namespace)
	switch {
	case err == nil:
		p := definition(st)
		prev = &p
	case !gateway.IsNotFound(err):
		return "", fmt.Errorf("reading its current definition: %w", err)
	}

	err = d.client.Update(ctx, dep)
	if gateway.IsNotFound(err) {
		if err = d.client.Deploy(ctx, dep); err != nil {
			if mayHaveChanged(err) {
				d.undo = append(d.undo, undoStep{name: dep.Service, namespace: dep.Namespace, maybe: true})
			}
			return "", err
		}
		d.undo = append(d.undo, undoStep{name: dep.Service, namespace: dep.Namespace})
		return "deployed", nil
	}
	if err != nil {
		// A refused request (4xx) changed nothing; restoring anyway would
		// wake a sleeping function and drop its checkpoints.
		if prev != nil && mayHaveChanged(err) {
			d.undo = append(d.undo, undoStep{name: dep.Service, namespace: dep.Namespace, prev: prev, maybe: true})
		}
		return "", err
	}
	if prev == nil {
		// Created by someone else between our GET and PUT: not ours to undo.
		return "updated", nil
	}
	d.undo = append(d.undo, undoStep{name: dep.Service, namespace: dep.Namespace, prev: prev})
	return "updated", nil
}

// mayHaveChanged says whether a failed request may have changed the
// function: a 5xx, or no answer at all.
func mayHaveChanged(err error) bool {
	var se *gateway.StatusError
	return !errors.As(err, &se) || se.Code >= 500
}

// rollback undoes this run's changes, newest first, printing each step to
// stderr. It returns a suffix for the error message.
func (d *deployer) rollback() string {
	if len(d.undo) == 0 {
		return "; nothing was changed"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*gateway.DefaultTimeout)
	defer cancel()
	var failed []string
	for i := len(d.undo) - 1; i >= 0; i-- {
		u := d.undo[i]
		var err error
		var did string
		if u.prev == nil {
			err, did = d.client.Delete(ctx, u.name, u.namespace), "removed "+u.name
			if u.maybe && gateway.IsNotFound(err) {
				continue
			}
		} else {
			err, did = d.client.Update(ctx, *u.prev), "restored the previous definition of "+u.name
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", u.name, err))
			fmt.Fprintf(os.Stderr, "rollback: %s failed: %v\n", u.name, err)
			continue
		}
		fmt.Fprintf(os.Stderr, "rollback: %s\n", did)
	}
	if len(failed) > 0 {
		return "; rollback FAILED, the stack is half-deployed: " + strings.Join(failed, "; ")
	}
	return "; rolled back this run's changes"
}

// statusAnnotationPrefix marks annotations the provider adds to a
// function's status (its sleep state); they are not part of its definition.
const statusAnnotationPrefix = "com.openfaas.criu."

// definition turns a function's status back into the deployment that made
// it.
func definition(st types.FunctionStatus) types.FunctionDeployment {
	dep := types.FunctionDeployment{
		Service:                st.Name,
		Image:                  st.Image,
		Namespace:              st.Namespace,
		EnvProcess:             st.EnvProcess,
		EnvVars:                st.EnvVars,
		Constraints:            st.Constraints,
		Secrets:                st.Secrets,
		Labels:                 st.Labels,
		Limits:                 st.Limits,
		Requests:               st.Requests,
		ReadOnlyRootFilesystem: st.ReadOnlyRootFilesystem,
	}
	if st.Annotations != nil {
		ann := map[string]string{}
		for k, v := range *st.Annotations {
			if !strings.HasPrefix(k, statusAnnotationPrefix) {
				ann[k] = v
			}
		}
		if len(ann) > 0 {
			dep.Annotations = &ann
		}
	}
	return dep
}
