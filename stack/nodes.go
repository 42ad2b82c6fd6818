package stack

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// walker reads a YAML node tree by hand so that every unknown key, wrong
// type and bad value is reported with its file, function, field and line.
type walker struct {
	file string
	fn   string // the function being read, "" outside functions
	// read holds the entries of the mappings already read, so that a chain
	// of aliased "<<" merges costs one read per node, not one per path;
	// reading holds those being read, so that a mapping merging itself is
	// an error rather than endless recursion.
	read    map[*yaml.Node][]pair
	reading map[*yaml.Node]bool
	// warnings collects what faas-criu accepts but does not use (shared by
	// the walkers of one file); wrap, when set, places a warning inside the
	// stack file (an environment file's warning names its function).
	warnings *[]string
	wrap     func(string) string
}

// warnf records a warning about field at n.
func (w *walker) warnf(n *yaml.Node, field, format string, args ...any) {
	if w.warnings == nil {
		return
	}
	msg := w.errorf(n, field, format, args...).Error()
	if w.wrap != nil {
		msg = w.wrap(msg)
	}
	*w.warnings = append(*w.warnings, msg)
}

// child is a walker for one function of the same file.
func (w *walker) child(fn string) *walker {
	return &walker{file: w.file, fn: fn, warnings: w.warnings}
}

func (w *walker) errorf(n *yaml.Node, field, format string, args ...any) *Error {
	e := &Error{File: w.file, Function: w.fn, Field: field, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
	}
	return e
}

// join appends key to a dotted field path.
func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.Tag == "!!null")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

type pair struct {
	key        string
	knode, val *yaml.Node
}

// pairs returns the entries of a mapping in document order, merging "<<"
// keys (explicit keys win) and refusing duplicates. A null is an empty
// mapping.
func (w *walker) pairs(n *yaml.Node, field string) ([]pair, error) {
	n = resolve(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, w.errorf(n, field, "expected a mapping, found %s", kindName(n))
	}
	if ps, ok := w.read[n]; ok {
		return ps, nil
	}
	if w.reading[n] {
		return nil, w.errorf(n, field, "a \"<<\" merge includes the mapping it is in")
	}
	if w.reading == nil {
		w.read, w.reading = map[*yaml.Node][]pair{}, map[*yaml.Node]bool{}
	}
	w.reading[n] = true
	defer delete(w.reading, n)
	var merged, own []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, w.errorf(k, field, "keys must be strings, found %s", kindName(k))
		}
		if k.Value == "<<" && k.Tag == "!!merge" {
			m, err := w.merge(v, field)
			if err != nil {
				return nil, err
			}
			merged = append(merged, m...)
			continue
		}
		if seen[k.Value] {
			return nil, w.errorf(k, join(field, k.Value), "duplicate key")
		}
		seen[k.Value] = true
		own = append(own, pair{key: k.Value, knode: k, val: v})
	}
	out := own
	for _, p := range merged {
		if !seen[p.key] {
			seen[p.key] = true
			out = append(out, p)
		}
	}
	w.read[n] = out
	return out, nil
}

// merge reads the value of a "<<" key: a mapping or a list of mappings,
// earlier ones winning.
func (w *walker) merge(v *yaml.Node, field string) ([]pair, error) {
	v = resolve(v)
	if v.Kind != yaml.SequenceNode {
		return w.pairs(v, field)
	}
	var out []pair
	seen := map[string]bool{}
	for _, m := range v.Content {
		ps, err := w.pairs(m, field)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			if !seen[p.key] {
				seen[p.key] = true
				out = append(out, p)
			}
		}
	}
	return out, nil
}

// fields reads a mapping by handlers. A key without a handler is a
// warning, not an error: faas-cli ignores keys it does not know, and any
// stack faas-cli takes must be taken here.
func (w *walker) fields(n *yaml.Node, field string, handlers map[string]func(v *yaml.Node, field string) error) error {
	ps, err := w.pairs(n, field)
	if err != nil {
		return err
	}
	for _, p := range ps {
		h, ok := handlers[p.key]
		if !ok {
			w.warnf(p.knode, join(field, p.key), "unknown key, ignored (faas-cli ignores it too; a typo?)")
			continue
		}
		if err := h(p.val, join(field, p.key)); err != nil {
			return err
		}
	}
	return nil
}

// str reads a scalar as a string (numbers and booleans as written); null
// is "".
func (w *walker) str(n *yaml.Node, field string) (string, error) {
	n = resolve(n)
	if isNull(n) {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", w.errorf(n, field, "expected a string, found %s", kindName(n))
	}
	return n.Value, nil
}

// boolean reads true/false (and YAML 1.1's yes/no/on/off).
func (w *walker) boolean(n *yaml.Node, field string) (bool, error) {
	n = resolve(n)
	if isNull(n) {
		return false, nil
	}
	if n.Kind == yaml.ScalarNode {
		switch strings.ToLower(n.Value) {
		case "true", "yes", "on":
			return true, nil
		case "false", "no", "off":
			return false, nil
		}
	}
	return false, w.errorf(n, field, "expected true or false, found %s", kindName(n))
}

// strList reads a list of scalars; null is an empty list.
func (w *walker) strList(n *yaml.Node, field string) ([]string, error) {
	n = resolve(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, w.errorf(n, field, "expected a list, found %s", kindName(n))
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		s, err := w.str(c, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// strMap reads a mapping of scalars; null is an empty mapping.
func (w *walker) strMap(n *yaml.Node, field string) (map[string]string, error) {
	ps, err := w.pairs(n, field)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(ps))
	for _, p := range ps {
		if p.key == "" {
			return nil, w.errorf(p.knode, field, "empty key")
		}
		s, err := w.str(p.val, join(field, p.key))
		if err != nil {
			return nil, err
		}
		out[p.key] = s
	}
	return out, nil
}
