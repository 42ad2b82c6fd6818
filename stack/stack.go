// Package stack reads OpenFaaS stack files (stack.yaml, version 1.0) the way
// faas-cli does: environment references are substituted over the whole file
// first, with faas-cli's envsubst rules, then every key is checked. Any file
// faas-cli takes is taken: a key faas-criu does not use (or faas-cli
// ignores) is a warning in Stack.Warnings rather than silently dropped, and
// errors are kept for what faas-cli refuses too or the provider would
// refuse. Errors and warnings name the file, the function and the field.
package stack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	yaml "go.yaml.in/yaml/v3"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/client"
)

// Stack is a parsed stack file.
type Stack struct {
	// Path is the file as given; Dir is the absolute directory it is in,
	// against which handlers and environment files are resolved.
	Path string
	Dir  string

	Version       string
	Provider      Provider
	Configuration Configuration
	// Functions in the order the file lists them.
	Functions []*Function
	// Warnings name what the file holds that faas-criu accepts, as faas-cli
	// does, but does not use (unknown keys, build fields for buildx), each
	// with its file, function, field and line. Callers print them.
	Warnings []string
}

// Provider is the stack's provider section.
type Provider struct {
	Name    string // "openfaas" (or faas-cli's older "faas")
	Gateway string // the gateway URL, may be empty
	Network string // accepted for compatibility; faas-criu ignores it
}

// Configuration is the stack's configuration section.
type Configuration struct {
	Templates []TemplateSource
	// Copy lists paths, relative to the stack file, that faas-cli copies
	// into every function's build context.
	Copy []string
}

// TemplateSource names a template repository, as faas-cli's
// "template pull stack" reads it.
type TemplateSource struct {
	Name   string
	Source string
}

// Load reads, substitutes and parses the stack file at path, and reads the
// environment files its functions name. lookupEnv resolves ${VAR}
// references; nil means os.LookupEnv.
func Load(path string, lookupEnv func(string) (string, bool)) (*Stack, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("stack file: %w", err)
	}
	return Parse(path, data, lookupEnv)
}

// Parse is Load for a file already read. path names the file in errors and
// locates environment files.
func Parse(path string, data []byte, lookupEnv func(string) (string, bool)) (*Stack, error) {
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("stack file %s: %w", path, err)
	}
	text, err := Substitute(string(data), lookupEnv)
	if err != nil {
		var se *SubstError
		if errors.As(err, &se) {
			fn, field := locateSubstError(data, lookupEnv)
			return nil, &Error{File: path, Function: fn, Field: field, Line: se.Line, Msg: se.Msg, Err: err}
		}
		return nil, &Error{File: path, Msg: err.Error(), Err: err}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, &Error{File: path, Msg: err.Error(), Err: err}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: path, Msg: "the file is empty"}
	}
	s := &Stack{Path: path, Dir: dir}
	w := &walker{file: path, warnings: &s.Warnings}
	if err := s.read(w, doc.Content[0]); err != nil {
		return nil, err
	}
	return s, nil
}

// read decodes the root mapping.
func (s *Stack) read(w *walker, root *yaml.Node) error {
	var functions *yaml.Node
	err := w.fields(root, "", map[string]func(*yaml.Node, string) error{
		"version": func(v *yaml.Node, f string) (err error) {
			s.Version, err = w.str(v, f)
			if err == nil && s.Version != "" && s.Version != "1.0" {
				return w.errorf(v, f, "version %q is not supported: use 1.0", s.Version)
			}
			return err
		},
		"provider":      func(v *yaml.Node, f string) error { return s.readProvider(w, v, f) },
		"configuration": func(v *yaml.Node, f string) error { return s.readConfiguration(w, v, f) },
		"functions":     func(v *yaml.Node, f string) error { functions = v; return nil },
	})
	if err != nil {
		return err
	}
	if s.Provider.Name == "" {
		return w.errorf(root, "provider.name", "required: set provider: {name: openfaas}")
	}
	ps, err := w.pairs(functions, "functions")
	if err != nil {
		return err
	}
	if len(ps) == 0 {
		return w.errorf(root, "functions", "no functions defined")
	}
	for _, p := range ps {
		fw := w.child(p.key)
		fn, err := readFunction(fw, p.key, p.knode, p.val, s.Dir)
		if err != nil {
			return err
		}
		s.Functions = append(s.Functions, fn)
	}
	return nil
}

func (s *Stack) readProvider(w *walker, n *yaml.Node, field string) error {
	p := &s.Provider
	return w.fields(n, field, map[string]func(*yaml.Node, string) error{
		"name": func(v *yaml.Node, f string) (err error) {
			if p.Name, err = w.str(v, f); err != nil {
				return err
			}
			if p.Name != "openfaas" && p.Name != "faas" {
				return w.errorf(v, f, "provider %q is not supported: use openfaas", p.Name)
			}
			return nil
		},
		"gateway": func(v *yaml.Node, f string) (err error) {
			if p.Gateway, err = w.str(v, f); err != nil || p.Gateway == "" {
				return err
			}
			// As faas-cli reads it: "host:port" is http://host:port.
			if _, perr := api.ParseURL(client.Normalize(p.Gateway)); perr != nil {
				return w.errorf(v, f, "invalid gateway URL %q: expected [http(s)://]host[:port]", p.Gateway)
			}
			return nil
		},
		"network": func(v *yaml.Node, f string) (err error) {
			// faas-cli's schema no longer has it: accepted, unused.
			p.Network, err = w.str(v, f)
			if err == nil && p.Network != "" {
				w.warnf(v, f, "not used by faas-criu (functions use the provider's --network)")
			}
			return err
		},
	})
}

func (s *Stack) readConfiguration(w *walker, n *yaml.Node, field string) error {
	return w.fields(n, field, map[string]func(*yaml.Node, string) error{
		"copy": func(v *yaml.Node, f string) (err error) {
			s.Configuration.Copy, err = w.strList(v, f)
			return err
		},
		"templates": func(v *yaml.Node, f string) error {
			v = resolve(v)
			if isNull(v) {
				return nil
			}
			if v.Kind != yaml.SequenceNode {
				return w.errorf(v, f, "expected a list, found %s", kindName(v))
			}
			for i, item := range v.Content {
				var t TemplateSource
				err := w.fields(item, fmt.Sprintf("%s[%d]", f, i), map[string]func(*yaml.Node, string) error{
					"name":   func(v *yaml.Node, f string) (err error) { t.Name, err = w.str(v, f); return err },
					"source": func(v *yaml.Node, f string) (err error) { t.Source, err = w.str(v, f); return err },
				})
				if err != nil {
					return err
				}
				if t.Name == "" {
					return w.errorf(item, fmt.Sprintf("%s[%d].name", f, i), "required")
				}
				s.Configuration.Templates = append(s.Configuration.Templates, t)
			}
			return nil
		},
	})
}

// Function returns the function called name, or nil.
func (s *Stack) Function(name string) *Function {
	for _, f := range s.Functions {
		if f.Name == name {
			return f
		}
	}
	return nil
}
