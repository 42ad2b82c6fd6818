package stack

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// substMark stands in for a failed reference while locating it. It is a
// plain YAML scalar, valid wherever the reference was.
const substMark = "faas-criu-substitution-error-5c1e0b7d"

// locateSubstError finds the function and field holding the first reference
// Substitute fails on: the file is substituted again with that reference
// replaced by a mark (and later failing ones by nothing), parsed, and the
// mark looked for. It returns "", "" when that cannot be told (the file is
// not YAML even so, or already holds the mark).
func locateSubstError(data []byte, lookup func(string) (string, bool)) (function, field string) {
	if strings.Contains(string(data), substMark) {
		return "", ""
	}
	marked := false
	s := substituter{lookup: lookup, onError: func(*SubstError) string {
		if marked {
			return ""
		}
		marked = true
		return substMark
	}}
	text, err := s.expand(string(data), 1)
	if err != nil || !marked {
		return "", ""
	}
	var doc yaml.Node
	if yaml.Unmarshal([]byte(text), &doc) != nil || len(doc.Content) == 0 {
		return "", ""
	}
	path, ok := findMark(doc.Content[0], "")
	if !ok {
		return "", ""
	}
	// Function names have no dots: functions.NAME.FIELD...
	if rest, in := strings.CutPrefix(path, "functions."); in {
		function, field, _ = strings.Cut(rest, ".")
		return function, field
	}
	return "", path
}

// findMark returns the field path, below field, of the node holding
// substMark. Aliases are not followed: the mark is where the reference was
// written.
func findMark(n *yaml.Node, field string) (string, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		return field, strings.Contains(n.Value, substMark)
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind == yaml.ScalarNode && strings.Contains(k.Value, substMark) {
				return field, true // in a key: the mapping is the field
			}
			sub := field
			if !(k.Kind == yaml.ScalarNode && k.Value == "<<") {
				sub = join(field, k.Value)
			}
			if f, ok := findMark(v, sub); ok {
				return f, true
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if f, ok := findMark(c, fmt.Sprintf("%s[%d]", field, i)); ok {
				return f, true
			}
		}
	}
	return "", false
}
