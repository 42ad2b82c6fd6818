package stack

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	yaml "go.yaml.in/yaml/v3"
)

// Function is one entry of the stack's functions section.
type Function struct {
	Name string
	Line int // where its key is in the stack file

	Lang      string // template name; "dockerfile" builds the handler's own Dockerfile
	Handler   string // directory, relative to the stack file
	Image     string
	FProcess  string
	Namespace string

	Environment     map[string]string
	EnvironmentFile []string // relative to the stack file, later ones win
	Secrets         []string
	Labels          *map[string]string
	Annotations     *map[string]string
	Limits          *Resources
	Requests        *Resources
	Constraints     []string

	ReadOnlyRootFilesystem bool

	BuildArgs    map[string]string
	BuildOptions []string
	SkipBuild    bool
	// Platforms and BuildSecrets are faas-cli's buildx and buildkit
	// settings: accepted, with a warning, since faas-criu builds for the
	// box it runs on and its builds take no secrets.
	Platforms    string
	BuildSecrets map[string]string

	// fileEnv is the merged content of EnvironmentFile.
	fileEnv map[string]string
}

// Resources are a function's memory and CPU limits or requests, as
// Kubernetes-style quantities ("128Mi", "500m").
type Resources struct {
	Memory string
	CPU    string
}

// readFunction decodes and checks one function.
func readFunction(w *walker, name string, knode, n *yaml.Node, dir string) (*Function, error) {
	fn := &Function{Name: name, Line: knode.Line}
	if err := checkName(name); err != nil {
		return nil, w.errorf(knode, "", "%v", err)
	}
	str := func(dst *string) func(*yaml.Node, string) error {
		return func(v *yaml.Node, f string) (err error) { *dst, err = w.str(v, f); return err }
	}
	list := func(dst *[]string) func(*yaml.Node, string) error {
		return func(v *yaml.Node, f string) (err error) { *dst, err = w.strList(v, f); return err }
	}
	strMap := func(dst *map[string]string) func(*yaml.Node, string) error {
		return func(v *yaml.Node, f string) (err error) { *dst, err = w.strMap(v, f); return err }
	}
	ptrMap := func(dst **map[string]string) func(*yaml.Node, string) error {
		return func(v *yaml.Node, f string) error {
			m, err := w.strMap(v, f)
			*dst = &m
			return err
		}
	}
	res := func(dst **Resources) func(*yaml.Node, string) error {
		return func(v *yaml.Node, f string) error {
			r := &Resources{}
			*dst = r
			return w.fields(v, f, map[string]func(*yaml.Node, string) error{
				"memory": func(v *yaml.Node, f string) (err error) {
					if r.Memory, err = w.str(v, f); err != nil {
						return err
					}
					if perr := checkMemory(r.Memory); perr != nil {
						return w.errorf(v, f, "%v", perr)
					}
					return nil
				},
				"cpu": func(v *yaml.Node, f string) (err error) {
					if r.CPU, err = w.str(v, f); err != nil {
						return err
					}
					if perr := checkCPU(r.CPU); perr != nil {
						return w.errorf(v, f, "%v", perr)
					}
					return nil
				},
			})
		}
	}
	boolean := func(dst *bool) func(*yaml.Node, string) error {
		return func(v *yaml.Node, f string) (err error) { *dst, err = w.boolean(v, f); return err }
	}
	err := w.fields(n, "", map[string]func(*yaml.Node, string) error{
		"lang":    str(&fn.Lang),
		"handler": str(&fn.Handler),
		"image": func(v *yaml.Node, f string) (err error) {
			if fn.Image, err = w.str(v, f); err != nil || fn.Image == "" {
				return err
			}
			if _, rerr := reference.ParseNormalizedNamed(fn.Image); rerr != nil {
				return w.errorf(v, f, "invalid image reference %q: %v", fn.Image, rerr)
			}
			return nil
		},
		"fprocess": str(&fn.FProcess),
		"namespace": func(v *yaml.Node, f string) (err error) {
			if fn.Namespace, err = w.str(v, f); err != nil || fn.Namespace == "" {
				return err
			}
			if nerr := checkNamespace(fn.Namespace); nerr != nil {
				return w.errorf(v, f, "%v", nerr)
			}
			return nil
		},
		"environment": func(v *yaml.Node, f string) (err error) {
			if fn.Environment, err = w.strMap(v, f); err != nil {
				return err
			}
			for k := range fn.Environment {
				if !envName.MatchString(k) {
					return w.errorf(v, f, "invalid variable name %q", k)
				}
			}
			return nil
		},
		"environment_file": list(&fn.EnvironmentFile),
		"secrets": func(v *yaml.Node, f string) (err error) {
			if fn.Secrets, err = w.strList(v, f); err != nil {
				return err
			}
			for i, s := range fn.Secrets {
				if err := checkSecretName(s); err != nil {
					return w.errorf(resolve(v).Content[i], fmt.Sprintf("%s[%d]", f, i), "%v", err)
				}
			}
			return nil
		},
		"labels":                   ptrMap(&fn.Labels),
		"annotations":              ptrMap(&fn.Annotations),
		"limits":                   res(&fn.Limits),
		"requests":                 res(&fn.Requests),
		"constraints":              list(&fn.Constraints),
		"readonly_root_filesystem": boolean(&fn.ReadOnlyRootFilesystem),
		"build_args":               strMap(&fn.BuildArgs),
		"build_options":            list(&fn.BuildOptions),
		"skip_build":               boolean(&fn.SkipBuild),
		"platforms": func(v *yaml.Node, f string) (err error) {
			if fn.Platforms, err = w.str(v, f); err == nil && fn.Platforms != "" {
				w.warnf(v, f, "not used by faas-criu (it builds for the box it runs on)")
			}
			return err
		},
		"build_secrets": func(v *yaml.Node, f string) (err error) {
			if fn.BuildSecrets, err = w.strMap(v, f); err == nil && len(fn.BuildSecrets) > 0 {
				w.warnf(v, f, "not used by faas-criu (its builds mount no build secrets)")
			}
			return err
		},
	})
	if err != nil {
		return nil, err
	}
	if strings.EqualFold(fn.Lang, "dockerfile") {
		fn.Lang = "dockerfile"
	}
	if err := fn.check(w, knode, n); err != nil {
		return nil, err
	}
	if fn.fileEnv, err = readEnvFiles(w, fn.EnvironmentFile, dir, n); err != nil {
		return nil, err
	}
	return fn, nil
}

// check validates what needs the whole function.
func (fn *Function) check(w *walker, knode, n *yaml.Node) error {
	at := resolve(n)
	if isNull(at) {
		at = knode
	}
	if fn.Image == "" {
		return w.errorf(at, "image", "required: every function needs an image")
	}
	return nil
}
