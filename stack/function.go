package stack

import (
	"fmt"
	"github.com/faas-criu/faas-criu/api"
	"strings"

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
	if err := api.ValidateName(name); err != nil {
		return nil, w.errorf(knode, "", "%v", err)
	}
	err := w.fields(n, "", map[string]decoder{
		"lang":                     w.intoStr(&fn.Lang),
		"handler":                  w.intoStr(&fn.Handler),
		"image":                    w.intoChecked(&fn.Image, checkImage, false),
		"fprocess":                 w.intoStr(&fn.FProcess),
		"namespace":                w.intoChecked(&fn.Namespace, api.ValidateNamespace, false),
		"environment":              w.intoEnvironment(&fn.Environment),
		"environment_file":         w.intoList(&fn.EnvironmentFile),
		"secrets":                  w.intoSecrets(&fn.Secrets),
		"labels":                   w.intoPtrMap(&fn.Labels),
		"annotations":              w.intoPtrMap(&fn.Annotations),
		"limits":                   w.intoResources(&fn.Limits),
		"requests":                 w.intoResources(&fn.Requests),
		"constraints":              w.intoList(&fn.Constraints),
		"readonly_root_filesystem": w.intoBool(&fn.ReadOnlyRootFilesystem),
		"build_args":               w.intoMap(&fn.BuildArgs),
		"build_options":            w.intoList(&fn.BuildOptions),
		"skip_build":               w.intoBool(&fn.SkipBuild),
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

// decoder decodes the node of one field (f names it in errors).
type decoder = func(v *yaml.Node, f string) error

func (w *walker) intoStr(dst *string) decoder {
	return func(v *yaml.Node, f string) (err error) { *dst, err = w.str(v, f); return err }
}

func (w *walker) intoList(dst *[]string) decoder {
	return func(v *yaml.Node, f string) (err error) { *dst, err = w.strList(v, f); return err }
}

func (w *walker) intoMap(dst *map[string]string) decoder {
	return func(v *yaml.Node, f string) (err error) { *dst, err = w.strMap(v, f); return err }
}

func (w *walker) intoBool(dst *bool) decoder {
	return func(v *yaml.Node, f string) (err error) { *dst, err = w.boolean(v, f); return err }
}

// intoPtrMap decodes into a pointer, so that a function without the section
// is told apart from one with an empty section.
func (w *walker) intoPtrMap(dst **map[string]string) decoder {
	return func(v *yaml.Node, f string) error {
		m, err := w.strMap(v, f)
		*dst = &m
		return err
	}
}

// intoChecked decodes a string and holds it to check; an empty value is
// checked too when checkEmpty (a quantity), else it means "not set".
func (w *walker) intoChecked(dst *string, check func(string) error, checkEmpty bool) decoder {
	return func(v *yaml.Node, f string) (err error) {
		if *dst, err = w.str(v, f); err != nil || (*dst == "" && !checkEmpty) {
			return err
		}
		if cerr := check(*dst); cerr != nil {
			return w.errorf(v, f, "%v", cerr)
		}
		return nil
	}
}

func (w *walker) intoResources(dst **Resources) decoder {
	return func(v *yaml.Node, f string) error {
		r := &Resources{}
		*dst = r
		return w.fields(v, f, map[string]decoder{
			"memory": w.intoChecked(&r.Memory, checkMemory, true),
			"cpu":    w.intoChecked(&r.CPU, checkCPU, true),
		})
	}
}

func (w *walker) intoEnvironment(dst *map[string]string) decoder {
	return func(v *yaml.Node, f string) (err error) {
		if *dst, err = w.strMap(v, f); err != nil {
			return err
		}
		for k := range *dst {
			if !envName.MatchString(k) {
				return w.errorf(v, f, "invalid variable name %q", k)
			}
		}
		return nil
	}
}

// intoSecrets points an error at the offending entry's own line.
func (w *walker) intoSecrets(dst *[]string) decoder {
	return func(v *yaml.Node, f string) (err error) {
		if *dst, err = w.strList(v, f); err != nil {
			return err
		}
		for i, s := range *dst {
			if err := api.ValidateSecretName(s); err != nil {
				return w.errorf(resolve(v).Content[i], fmt.Sprintf("%s[%d]", f, i), "%v", err)
			}
		}
		return nil
	}
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
