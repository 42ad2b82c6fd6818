package stack

import (
	"errors"
	"fmt"
	"strings"
)

// Substitute expands environment references in text the way faas-cli does
// before it parses a stack file (drone/envsubst semantics, the common part):
//
//	$NAME, ${NAME}       the value, or "" when unset
//	${NAME:-default}     default when NAME is unset or empty
//	${NAME-default}      default when NAME is unset
//	${NAME:=default}     as ${NAME:-default} (nothing is assigned)
//	${NAME=default}      as ${NAME-default}
//	${NAME:?message}     an error with message when NAME is unset or empty
//	${NAME?message}      an error with message when NAME is unset
//	$$                   a literal "$"
//
// A default may itself hold references. A "$" not followed by a name, "{" or
// "$" is kept as it is. An unterminated "${", an empty name and any other
// operator are errors; a *SubstError says on which line.
func Substitute(text string, lookup func(string) (string, bool)) (string, error) {
	s := substituter{lookup: lookup}
	return s.expand(text, 1)
}

// SubstError is a failed substitution, with the 1-based line it started on.
type SubstError struct {
	Line int
	Msg  string
}

func (e *SubstError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

type substituter struct {
	lookup func(string) (string, bool)
	depth  int // defaults inside defaults so far
	// onError, when set, makes a failed top-level reference not an error:
	// the reference is replaced by what onError returns and the rest of
	// the text is substituted. Parse uses it to find which function and
	// field the first failure is in.
	onError func(*SubstError) string
}

// maxNesting bounds defaults inside defaults: each level rescans the rest of
// its text, so deep nesting would cost quadratic time.
const maxNesting = 16

// expand substitutes text, whose first line is line number line.
func (s substituter) expand(text string, line int) (string, error) {
	var b strings.Builder
	b.Grow(len(text))
	for i := 0; i < len(text); {
		c := text[i]
		if c != '$' {
			if c == '\n' {
				line++
			}
			b.WriteByte(c)
			i++
			continue
		}
		switch {
		case i+1 < len(text) && text[i+1] == '$':
			b.WriteByte('$')
			i += 2
		case i+1 < len(text) && text[i+1] == '{':
			end, err := closingBrace(text, i+2)
			if err != nil {
				se := &SubstError{Line: line, Msg: err.Error()}
				if s.onError == nil || s.depth > 0 {
					return "", se
				}
				// Only the "${" is replaced: the rest of the line (a
				// closing quote, say) stays as written.
				b.WriteString(s.onError(se))
				i += 2
				continue
			}
			v, err := s.braced(text[i+2:end], line)
			if err != nil {
				var se *SubstError
				if s.onError == nil || s.depth > 0 || !errors.As(err, &se) {
					return "", err
				}
				v = s.onError(se)
			}
			b.WriteString(v)
			line += strings.Count(text[i:end], "\n")
			i = end + 1
		default:
			n := nameLen(text[i+1:])
			if n == 0 {
				b.WriteByte('$')
				i++
				continue
			}
			v, _ := s.lookup(text[i+1 : i+1+n])
			b.WriteString(v)
			i += 1 + n
		}
	}
	return b.String(), nil
}

// closingBrace finds the "}" that closes a "${" whose body starts at from,
// counting nested "${...}".
func closingBrace(text string, from int) (int, error) {
	depth := 0
	for i := from; i < len(text); i++ {
		switch {
		case text[i] == '$' && i+1 < len(text) && text[i+1] == '$':
			i++
		case text[i] == '$' && i+1 < len(text) && text[i+1] == '{':
			depth++
			i++
		case text[i] == '}':
			if depth == 0 {
				return i, nil
			}
			depth--
		case text[i] == '\n' && depth == 0:
			// A reference never spans lines at the top level: report the
			// line it started on rather than swallow the rest of the file.
			return 0, fmt.Errorf("unterminated \"${\": no closing \"}\" on this line")
		}
	}
	return 0, fmt.Errorf("unterminated \"${\": no closing \"}\"")
}

// braced evaluates the body of ${...}.
func (s substituter) braced(body string, line int) (string, error) {
	n := nameLen(body)
	if n == 0 {
		return "", &SubstError{Line: line, Msg: fmt.Sprintf("bad substitution \"${%s}\": expected a variable name", body)}
	}
	name, rest := body[:n], body[n:]
	val, set := s.lookup(name)
	if rest == "" {
		return val, nil
	}
	if s.depth++; s.depth > maxNesting {
		return "", &SubstError{Line: line, Msg: fmt.Sprintf("substitutions nested more than %d deep", maxNesting)}
	}
	op := rest[:1]
	if op == ":" && len(rest) > 1 {
		op = rest[:2]
	}
	arg := rest[len(op):]
	switch op {
	case ":-", ":=":
		if set && val != "" {
			return val, nil
		}
		return s.expand(arg, line)
	case "-", "=":
		if set {
			return val, nil
		}
		return s.expand(arg, line)
	case ":?", "?":
		if set && (op == "?" || val != "") {
			return val, nil
		}
		msg, err := s.expand(arg, line)
		if err != nil {
			return "", err
		}
		if msg == "" {
			msg = "not set"
		}
		return "", &SubstError{Line: line, Msg: fmt.Sprintf("%s: %s", name, msg)}
	}
	return "", &SubstError{Line: line, Msg: fmt.Sprintf("unsupported substitution \"${%s}\" (supported: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message})", body)}
}

// nameLen is the length of the variable name at the start of s.
func nameLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return i
		}
	}
	return len(s)
}
