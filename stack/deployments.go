package stack

import (
	"fmt"
	"maps"
	"path"
	"slices"

	"github.com/openfaas/faas-provider/types"
)

// Select returns the functions whose names match filter, a glob as
// faas-cli's --filter ("*" matches any run of characters), in file order.
// An empty filter selects every function; a filter that matches none is an
// error.
func (s *Stack) Select(filter string) ([]*Function, error) {
	if filter == "" {
		return s.Functions, nil
	}
	if _, err := path.Match(filter, ""); err != nil {
		return nil, fmt.Errorf("--filter %q: %w", filter, err)
	}
	var out []*Function
	for _, f := range s.Functions {
		if ok, _ := path.Match(filter, f.Name); ok {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no function matches --filter %q", s.Path, filter)
	}
	return out, nil
}

// Deployments maps the selected functions (see Select) onto the provider
// API's deployment requests, in file order.
func (s *Stack) Deployments(filter string) ([]types.FunctionDeployment, error) {
	fns, err := s.Select(filter)
	if err != nil {
		return nil, err
	}
	out := make([]types.FunctionDeployment, 0, len(fns))
	for _, f := range fns {
		out = append(out, f.Deployment())
	}
	return out, nil
}

// EnvVars is the function's environment: its environment files merged in
// order, then its environment section on top. It is nil when empty.
func (f *Function) EnvVars() map[string]string {
	if len(f.fileEnv) == 0 && len(f.Environment) == 0 {
		return nil
	}
	env := maps.Clone(f.fileEnv)
	if env == nil {
		env = map[string]string{}
	}
	maps.Copy(env, f.Environment)
	return env
}

// Deployment is the function as a deployment request. It shares nothing
// with f.
func (f *Function) Deployment() types.FunctionDeployment {
	return types.FunctionDeployment{
		Service:                f.Name,
		Image:                  f.Image,
		Namespace:              f.Namespace,
		EnvProcess:             f.FProcess,
		EnvVars:                f.EnvVars(),
		Constraints:            slices.Clone(f.Constraints),
		Secrets:                slices.Clone(f.Secrets),
		Labels:                 clonePtrMap(f.Labels),
		Annotations:            clonePtrMap(f.Annotations),
		Limits:                 f.Limits.resources(),
		Requests:               f.Requests.resources(),
		ReadOnlyRootFilesystem: f.ReadOnlyRootFilesystem,
	}
}

func (r *Resources) resources() *types.FunctionResources {
	if r == nil {
		return nil
	}
	return &types.FunctionResources{Memory: r.Memory, CPU: r.CPU}
}

func clonePtrMap(m *map[string]string) *map[string]string {
	if m == nil {
		return nil
	}
	c := maps.Clone(*m)
	if c == nil {
		c = map[string]string{}
	}
	return &c
}
