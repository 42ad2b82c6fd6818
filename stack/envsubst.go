package stack

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Substitute expands environment references in text the way faas-cli does
// before it parses a stack file. faas-cli uses github.com/drone/envsubst;
// this is an implementation of the same grammar and results, so that any
// stack faas-cli takes is taken here and means the same:
//
//	${NAME}                  the value; an unset variable is ""
//	${NAME=d} ${NAME:=d} ${NAME:-d} ${NAME:?d} ${NAME:+d}
//	                         d when the value is empty (envsubst gives all
//	                         five that meaning: nothing is assigned, and
//	                         ":?" is not an error); d may hold references
//	${NAME,} ${NAME,,} ${NAME^} ${NAME^^}
//	                         lower/upper case the first or every letter
//	${NAME:pos} ${NAME:pos:len}
//	                         a substring (bytes; a negative pos counts from
//	                         the end; a pos or len that is not a number
//	                         leaves the value whole)
//	${#NAME}                 the value's length in bytes
//	${NAME#p} ${NAME##p} ${NAME%p} ${NAME%%p}
//	                         remove the shortest/longest prefix/suffix
//	                         matching the glob p (* and ? match "/" too)
//	${NAME/p/r} ${NAME//p/r} ${NAME/#p/r} ${NAME/%p/r}
//	                         replace the first/every occurrence of p, or p as
//	                         a prefix/suffix ("\/" is a "/" in p and r)
//	$$                       a "$"; so "$${X}" is the text "${X}"
//	\\ and \/                "\" and "/" outside references (envsubst's
//	                         escapes, so a stack means what it means to
//	                         faas-cli)
//
// "$NAME" without braces is text, as in faas-cli. ${NAME-d}, ${NAME?m} and
// ${NAME+d}, an empty or unterminated reference, and any other operator are
// errors, as in faas-cli; a *SubstError says on which line.
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
	// onError, when set, makes a failed top-level reference not an error:
	// its "${" is replaced by what onError returns and the rest of the text
	// is substituted. Parse uses it to find which function and field the
	// first failure is in.
	onError func(*SubstError) string
}

// maxNesting bounds references inside references.
const maxNesting = 16

func (s substituter) value(name string) string {
	v, _ := s.lookup(name)
	return v
}

// expand substitutes text, whose first line is line number line.
func (s substituter) expand(text string, line int) (string, error) {
	var b strings.Builder
	b.Grow(len(text))
	for i := 0; i < len(text); {
		c := text[i]
		var next byte
		if i+1 < len(text) {
			next = text[i+1]
		}
		switch {
		case c == '$' && next == '{':
			p := &refParser{s: s, text: text, pos: i + 2}
			v, err := p.reference(0)
			if err != nil {
				se := &SubstError{Line: line, Msg: err.Error()}
				if s.onError == nil {
					return "", se
				}
				b.WriteString(s.onError(se))
				i += 2
				continue
			}
			b.WriteString(v)
			line += strings.Count(text[i:p.pos], "\n")
			i = p.pos
		case (c == '$' && next == '$') || (c == '\\' && (next == '\\' || next == '/')):
			b.WriteByte(next)
			i += 2
		default:
			if c == '\n' {
				line++
			}
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), nil
}

// refParser reads one reference, from just after its "${".
type refParser struct {
	s    substituter
	text string
	pos  int
	// start is where the reference's "${" is, for messages.
	start int
}

func (p *refParser) peek() byte {
	if p.pos < len(p.text) {
		return p.text[p.pos]
	}
	return 0
}

// shown is the reference as written, for messages (up to its line's end).
func (p *refParser) shown() string {
	end := p.pos
	for end < len(p.text) && p.text[end] != '\n' && p.text[end] != '}' {
		end++
	}
	if end < len(p.text) && p.text[end] == '}' {
		end++
	}
	return p.text[p.start:end]
}

func (p *refParser) bad(why string) error {
	return fmt.Errorf("bad substitution %q: %s", p.shown(), why)
}

func (p *refParser) unterminated() error {
	if p.pos >= len(p.text) {
		return fmt.Errorf("unterminated \"${\": no closing \"}\"")
	}
	return fmt.Errorf("unterminated \"${\": no closing \"}\" on this line")
}

// name reads a variable name: letters, digits and "_" (digits may lead).
func (p *refParser) name() string {
	start := p.pos
	for p.pos < len(p.text) {
		r, w := utf8.DecodeRuneInString(p.text[p.pos:])
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_') {
			break
		}
		p.pos += w
	}
	return p.text[start:p.pos]
}

// closing consumes the "}" that ends a reference.
func (p *refParser) closing() error {
	if p.peek() != '}' {
		if p.pos >= len(p.text) || p.peek() == '\n' {
			return p.unterminated()
		}
		return p.bad("expected \"}\"")
	}
	p.pos++
	return nil
}

// reference evaluates a reference whose "${" is just before p.pos.
func (p *refParser) reference(depth int) (string, error) {
	if depth > maxNesting {
		return "", fmt.Errorf("substitutions nested more than %d deep", maxNesting)
	}
	p.start = p.pos - 2
	if p.peek() == '#' { // ${#NAME}
		p.pos++
		name := p.name()
		if name == "" {
			return "", p.bad("expected a variable name after \"#\"")
		}
		if err := p.closing(); err != nil {
			return "", err
		}
		return strconv.Itoa(len(p.s.value(name))), nil
	}
	name := p.name()
	if name == "" {
		if p.pos >= len(p.text) || p.peek() == '\n' {
			return "", p.unterminated()
		}
		return "", p.bad("expected a variable name")
	}
	val := p.s.value(name)
	switch c := p.peek(); c {
	case '}':
		p.pos++
		return val, nil
	case ':':
		// ":" then one of "=-?+" is a default, else a substring.
		if p.pos+1 < len(p.text) && strings.IndexByte("=-?+", p.text[p.pos+1]) >= 0 {
			p.pos += 2
			return p.defaulted(val, depth)
		}
		p.pos++
		return p.substring(val, depth)
	case '=':
		p.pos++
		return p.defaulted(val, depth)
	case ',', '^':
		op := p.run(",^", 2)
		if err := p.closing(); err != nil {
			return "", err
		}
		switch op {
		case ",":
			return lowerFirst(val), nil
		case ",,":
			return strings.ToLower(val), nil
		case "^":
			return upperFirst(val), nil
		case "^^":
			return strings.ToUpper(val), nil
		}
		return val, nil // ",^": envsubst leaves the value as it is
	case '/':
		return p.replace(val, depth)
	case '#', '%':
		op := p.run(string(c), 2)
		arg, err := p.param(depth, "}", false)
		if err != nil {
			return "", err
		}
		if err := p.closing(); err != nil {
			return "", err
		}
		return trim(val, op, arg), nil
	case 0, '\n':
		return "", p.unterminated()
	case '-', '?', '+':
		return "", p.bad(fmt.Sprintf("faas-cli does not take \"%c\" without \":\" (use ${%s:%c...})", c, name, c))
	}
	if rest := p.text[p.pos:]; !strings.Contains(strings.SplitN(rest, "\n", 2)[0], "}") {
		return "", p.unterminated()
	}
	return "", p.bad("unsupported operator")
}

// run consumes up to max bytes from set.
func (p *refParser) run(set string, max int) string {
	start := p.pos
	for p.pos < len(p.text) && p.pos-start < max && strings.IndexByte(set, p.text[p.pos]) >= 0 {
		p.pos++
	}
	return p.text[start:p.pos]
}

// param reads one argument: a nested reference, or text up to a byte in
// stop or a "${". escapes turns on "$$", "\\" and "\/". An argument is
// never empty.
func (p *refParser) param(depth int, stop string, escapes bool) (string, error) {
	if strings.HasPrefix(p.text[p.pos:], "${") {
		q := &refParser{s: p.s, text: p.text, pos: p.pos + 2}
		v, err := q.reference(depth + 1)
		if err != nil {
			return "", err
		}
		p.pos = q.pos
		return v, nil
	}
	var b strings.Builder
	start := p.pos
	for p.pos < len(p.text) {
		c := p.text[p.pos]
		var next byte
		if p.pos+1 < len(p.text) {
			next = p.text[p.pos+1]
		}
		if c == '$' && next == '{' {
			break
		}
		if escapes && ((c == '$' && next == '$') || (c == '\\' && (next == '\\' || next == '/'))) {
			b.WriteByte(next)
			p.pos += 2
			continue
		}
		if strings.IndexByte(stop, c) >= 0 {
			break
		}
		b.WriteByte(c)
		p.pos++
	}
	if p.pos == start {
		if p.pos >= len(p.text) {
			return "", p.unterminated()
		}
		return "", p.bad("missing argument")
	}
	return b.String(), nil
}

// defaulted reads the arguments of a default (after its operator): they
// are joined, and taken when val is empty.
func (p *refParser) defaulted(val string, depth int) (string, error) {
	var def strings.Builder
	for p.peek() != '}' {
		arg, err := p.param(depth, "}", false)
		if err != nil {
			return "", err
		}
		def.WriteString(arg)
	}
	p.pos++
	if val == "" {
		return def.String(), nil
	}
	return val, nil
}

// substring reads ${NAME:pos} or ${NAME:pos:len} after the ":".
func (p *refParser) substring(val string, depth int) (string, error) {
	pos, err := p.param(depth, ":}", false)
	if err != nil {
		return "", err
	}
	args := []string{pos}
	if p.peek() == ':' {
		p.pos++
		n, err := p.param(depth, "}", false)
		if err != nil {
			return "", err
		}
		args = append(args, n)
	}
	if err := p.closing(); err != nil {
		return "", err
	}
	return substr(val, args)
}

// replace reads ${NAME/p/r} and its variants, at the first "/".
func (p *refParser) replace(val string, depth int) (string, error) {
	p.pos++ // "/"
	op := "/"
	if c := p.peek(); c == '/' || c == '#' || c == '%' {
		op += string(c)
		p.pos++
	}
	// As in envsubst, the pattern runs to the next "/" (a "}" does not end
	// it).
	pat, err := p.param(depth, "/", true)
	if err != nil {
		return "", err
	}
	if p.peek() != '/' {
		if p.pos >= len(p.text) {
			return "", p.unterminated()
		}
		return "", p.bad("expected \"/\" after the pattern")
	}
	p.pos++
	args := []string{pat}
	if p.peek() != '}' {
		r, err := p.param(depth, "}", true)
		if err != nil {
			return "", err
		}
		args = append(args, r)
	}
	if err := p.closing(); err != nil {
		return "", err
	}
	switch {
	case op == "/#":
		if len(args) == 2 && strings.HasPrefix(val, args[0]) {
			return args[1] + val[len(args[0]):], nil
		}
		return val, nil
	case op == "/%":
		if len(args) == 2 && strings.HasSuffix(val, args[0]) {
			return strings.TrimSuffix(val, args[0]) + args[1], nil
		}
		return val, nil
	}
	n := 1
	if op == "//" {
		n = -1
	}
	with := ""
	if len(args) == 2 {
		with = args[1]
	}
	return strings.Replace(val, args[0], with, n), nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToLower(r)) + s[n:]
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return string(unicode.ToUpper(r)) + s[n:]
}

// substr is ${NAME:pos[:len]} on bytes, with envsubst's rules: a pos or len
// that is not a number leaves s whole; a negative pos counts from the end;
// past the end is "".
func substr(s string, args []string) (string, error) {
	pos, err := strconv.Atoi(args[0])
	if err != nil {
		return s, nil
	}
	if pos < 0 {
		pos = max(len(s)+pos, 0)
	}
	if len(args) == 1 {
		if pos < len(s) {
			return s[pos:], nil
		}
		return "", nil
	}
	n, err := strconv.Atoi(args[1])
	if err != nil {
		return s, nil
	}
	if pos+n >= len(s) {
		if pos < len(s) {
			return s[pos:], nil
		}
		return "", nil
	}
	if n < 0 {
		// envsubst crashes here (faas-cli takes no such stack).
		return "", fmt.Errorf("bad substitution: negative length %d", n)
	}
	return s[pos : pos+n], nil
}

// trim removes the shortest (#, %) or longest (##, %%) non-empty prefix
// (#) or suffix (%) of s matching the glob pattern. As in envsubst, a
// suffix is matched by reversing s and the pattern, and a malformed
// pattern leaves s whole.
func trim(s, op, pattern string) string {
	suffix := op[0] == '%'
	if suffix {
		s, pattern = reverse(s), reverse(pattern)
	}
	longest := len(op) == 2
	cut := -1
	for i := 0; i < len(s); i++ {
		end := len(s) - i
		ok, bad := globMatch(pattern, s[:end])
		if bad {
			cut = -1
			break
		}
		if ok {
			cut = end
			if longest {
				break
			}
		}
	}
	if cut > 0 {
		s = s[cut:]
	}
	if suffix {
		s = reverse(s)
	}
	return s
}

func reverse(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// globMatch matches all of name against a shell glob: * (any run, "/"
// included), ? (any one character), [set] and [^set] with ranges, and \c.
// bad reports a malformed pattern.
func globMatch(pattern, name string) (ok, bad bool) {
	for len(pattern) > 0 {
		switch pattern[0] {
		case '*':
			rest := pattern[1:]
			for i := 0; i <= len(name); i++ {
				if ok, bad := globMatch(rest, name[i:]); ok || bad {
					return ok, bad
				}
			}
			return false, false
		case '?':
			if name == "" {
				return false, false
			}
			_, w := utf8.DecodeRuneInString(name)
			pattern, name = pattern[1:], name[w:]
		case '[':
			if name == "" {
				return false, false
			}
			r, w := utf8.DecodeRuneInString(name)
			matched, n, malformed := matchClass(pattern[1:], r)
			if malformed {
				return false, true
			}
			if !matched {
				return false, false
			}
			pattern, name = pattern[1+n:], name[w:]
		case '\\':
			if len(pattern) < 2 {
				return false, true
			}
			if name == "" || name[0] != pattern[1] {
				return false, false
			}
			pattern, name = pattern[2:], name[1:]
		default:
			if name == "" || name[0] != pattern[0] {
				return false, false
			}
			pattern, name = pattern[1:], name[1:]
		}
	}
	return name == "", false
}

// matchClass matches r against the class at the start of p (just after
// "["), returning how many bytes of p the class used, "]" included.
func matchClass(p string, r rune) (matched bool, n int, malformed bool) {
	i := 0
	negate := false
	if i < len(p) && p[i] == '^' {
		negate = true
		i++
	}
	first := true
	for {
		if i >= len(p) {
			return false, 0, true
		}
		if p[i] == ']' && !first {
			i++
			break
		}
		first = false
		lo, w, ok := classChar(p[i:])
		if !ok {
			return false, 0, true
		}
		i += w
		hi := lo
		if i+1 < len(p) && p[i] == '-' && p[i+1] != ']' {
			h, w, ok := classChar(p[i+1:])
			if !ok {
				return false, 0, true
			}
			hi = h
			i += 1 + w
		}
		if lo <= r && r <= hi {
			matched = true
		}
	}
	return matched != negate, i, false
}

func classChar(p string) (rune, int, bool) {
	if p == "" {
		return 0, 0, false
	}
	if p[0] == '\\' {
		if len(p) < 2 {
			return 0, 0, false
		}
		r, w := utf8.DecodeRuneInString(p[1:])
		return r, 1 + w, true
	}
	r, w := utf8.DecodeRuneInString(p)
	return r, w, true
}
