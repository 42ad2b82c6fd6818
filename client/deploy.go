package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
)

// ForGateway returns a client for one gateway URL with the credentials
// faas-cli would use for it.
func ForGateway(gw string) (*Client, error) {
	if err := CheckURL(gw); err != nil {
		return nil, err
	}
	creds, err := FindCredentials(gw, nil)
	if err != nil {
		return nil, err
	}
	return NewClient(gw, creds), nil
}

// CheckURL refuses a gateway URL that is not http(s)://host[:port]: the
// check the provider makes of a migration target (api.ParseURL).
func CheckURL(gw string) error {
	_, err := api.ParseURL(gw)
	return err
}

// Deployer applies deployments and remembers how to undo them.
type Deployer struct {
	client *Client
	// log receives one line per rollback step (may be nil).
	log io.Writer
	// undo holds, newest last, what rollback must do.
	undo []undoStep
}

// NewDeployer returns a Deployer that calls c and reports rollback steps
// to log (nil: not reported).
func NewDeployer(c *Client, log io.Writer) *Deployer {
	if log == nil {
		log = io.Discard
	}
	return &Deployer{client: c, log: log}
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

// DeployAll applies each deployment in order, calling done with "deployed"
// or "updated" after each. When one fails, what this run did is undone and
// the error says how the rollback went.
func (d *Deployer) DeployAll(ctx context.Context, deps []types.FunctionDeployment, done func(what, name string)) error {
	for _, dep := range deps {
		what, err := d.Apply(ctx, dep)
		if err != nil {
			return fmt.Errorf("deploy %s: %w%s", dep.Service, err, d.Rollback())
		}
		if done != nil {
			done(what, dep.Service)
		}
	}
	return nil
}

// Apply deploys one function as faas-cli does: PUT, and POST when the PUT
// answers 404. The definition it replaces is read first, for rollback. It
// returns "deployed" or "updated".
func (d *Deployer) Apply(ctx context.Context, dep types.FunctionDeployment) (string, error) {
	var prev *types.FunctionDeployment
	st, err := d.client.Function(ctx, dep.Service, dep.Namespace)
	switch {
	case err == nil:
		p := Definition(st)
		prev = &p
	case !IsNotFound(err):
		return "", fmt.Errorf("reading its current definition: %w", err)
	}

	err = d.client.Update(ctx, dep)
	if IsNotFound(err) {
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
	var se *StatusError
	return !errors.As(err, &se) || se.Code >= 500
}

// Rollback undoes this run's changes, newest first, writing each step to
// the log. It returns a suffix for the error message.
func (d *Deployer) Rollback() string {
	if len(d.undo) == 0 {
		return "; nothing was changed"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*DefaultTimeout)
	defer cancel()
	var failed []string
	for i := len(d.undo) - 1; i >= 0; i-- {
		u := d.undo[i]
		var err error
		var did string
		if u.prev == nil {
			err, did = d.client.Delete(ctx, u.name, u.namespace), "removed "+u.name
			if u.maybe && IsNotFound(err) {
				continue
			}
		} else {
			err, did = d.client.Update(ctx, *u.prev), "restored the previous definition of "+u.name
		}
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", u.name, err))
			fmt.Fprintf(d.log, "rollback: %s failed: %v\n", u.name, err)
			continue
		}
		fmt.Fprintf(d.log, "rollback: %s\n", did)
	}
	d.undo = nil
	if len(failed) > 0 {
		return "; rollback FAILED, the stack is half-deployed: " + strings.Join(failed, "; ")
	}
	return "; rolled back this run's changes"
}

// Definition turns a function's status back into the deployment that made
// it.
func Definition(st types.FunctionStatus) types.FunctionDeployment {
	dep := types.FunctionDeployment{
		Service:                st.Name,
		Image:                  st.Image,
		Namespace:              st.Namespace,
		EnvProcess:             st.EnvProcess,
		EnvVars:                st.EnvVars,
		Constraints:            st.Constraints,
		Secrets:                st.Secrets,
		Labels:                 st.Labels,
		Annotations:            st.Annotations,
		Limits:                 st.Limits,
		Requests:               st.Requests,
		ReadOnlyRootFilesystem: st.ReadOnlyRootFilesystem,
	}
	// What the provider reports (faas_function, its com.openfaas.criu.*
	// annotations) is not part of the definition.
	api.DropOutputs(&dep)
	return dep
}

// Info answers GET /system/info: the provider's name, orchestration and
// version (faas-criu adds more, which this leaves out). faas-criu answers
// the provider's shape to ?shape=provider; a gateway in front answers its
// own, whose "provider" is an object holding the same fields, so both are
// read.
func (c *Client) Info(ctx context.Context) (types.ProviderInfo, error) {
	var raw struct {
		Provider json.RawMessage `json:"provider"`
	}
	var in types.ProviderInfo
	var body json.RawMessage
	if err := c.do(ctx, "GET", "/system/info", url.Values{"shape": {"provider"}}, nil, &body); err != nil {
		return in, err
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return in, fmt.Errorf("GET /system/info: %w", err)
	}
	doc := body
	if len(raw.Provider) > 0 && raw.Provider[0] == '{' {
		doc = raw.Provider // the gateway's shape
	}
	if err := json.Unmarshal(doc, &in); err != nil {
		return in, fmt.Errorf("GET /system/info: %w", err)
	}
	return in, nil
}
