package stack

import (
	"errors"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// TestSubstitute: the forms faas-cli's envsubst (github.com/drone/envsubst)
// takes, with its results. Each case is what faas-cli makes of the text.
func TestSubstitute(t *testing.T) {
	env := envOf(map[string]string{
		"A": "alpha", "EMPTY": "", "B_2": "beta", "NESTED": "${A}", "SHA": "0123456789abcdef",
		"MIXED": "Hello World", "PATH_": "/usr/local/bin/tool.tar.gz", "N": "2", "1": "one", "é": "e-acute",
	})
	tests := []struct {
		name, in, want string
	}{
		{"plain text", "no references here", "no references here"},
		{"bare name is text (as in faas-cli)", "x=$A.", "x=$A."},
		{"braced", "${A}", "alpha"},
		{"braced next to text", "pre${A}post", "prealphapost"},
		{"unset is empty", "[${NOPE}]", "[]"},
		{"digits and letters in names", "${1}${é}", "onee-acute"},
		{"default when unset", "${NOPE:-dflt}", "dflt"},
		{"default when empty", "${EMPTY:-dflt}", "dflt"},
		{"no default when set", "${A:-dflt}", "alpha"},
		{"colon-equals", "${EMPTY:=d}", "d"},
		{"equals", "${EMPTY=d}${NOPE=e}${A=f}", "dealpha"},
		{"colon-question is a default", "${NOPE:?msg}|${A:?msg}", "msg|alpha"},
		{"colon-plus is a default", "${NOPE:+alt}|${A:+alt}", "alt|alpha"},
		{"empty default", "${NOPE:-}", ""},
		{"default with spaces and colons", "${NOPE:-http://h:8080/a b}", "http://h:8080/a b"},
		{"nested default", "${NOPE:-${A}}", "alpha"},
		{"default of text and references", "${NOPE:-x${A}y${B_2}z}", "xalphaybetaz"},
		{"doubly nested default", "${NOPE:-${NOPE2:-${B_2}}}", "beta"},
		{"default across lines", "${NOPE:-a\nb}", "a\nb"},
		{"value is not re-expanded", "${NESTED}", "${A}"},
		{"lower all", "${MIXED,,}", "hello world"},
		{"lower first", "${MIXED,}", "hello World"},
		{"upper all", "${MIXED^^}", "HELLO WORLD"},
		{"upper first", "${A^}", "Alpha"},
		{"substring", "${SHA:0:7}", "0123456"},
		{"substring from", "${SHA:10}", "abcdef"},
		{"substring negative from", "${SHA: -3}|${SHA:-3}", "0123456789abcdef|0123456789abcdef"},
		{"substring past the end", "${A:3:100}|${A:9}", "ha|"},
		{"substring position from a reference", "${SHA:${N}:3}", "234"},
		{"substring not a number", "${A:x:1}", "alpha"},
		{"length", "${#SHA}|${#NOPE}", "16|0"},
		{"remove shortest prefix", "${PATH_#*/}", "usr/local/bin/tool.tar.gz"},
		{"remove longest prefix", "${PATH_##*/}", "tool.tar.gz"},
		{"remove shortest suffix", "${PATH_%.*}", "/usr/local/bin/tool.tar"},
		{"remove longest suffix", "${PATH_%%.*}", "/usr/local/bin/tool"},
		{"remove with a class", "${SHA#[0-9][0-9]}", "23456789abcdef"},
		{"replace first", "${MIXED/o/0}", "Hell0 World"},
		{"replace all", "${MIXED//o/0}", "Hell0 W0rld"},
		{"replace prefix", "${MIXED/#Hello/Bye}|${MIXED/#World/x}", "Bye World|Hello World"},
		{"replace suffix", "${MIXED/%World/There}", "Hello There"},
		{"replace with nothing", "${MIXED/l/}", "Helo World"},
		{"replace escaped slash", "${PATH_/\\/usr/~}", "~/local/bin/tool.tar.gz"},
		{"dollar dollar escapes", "$$A $${A} $$", "$A ${A} $"},
		{"three dollars", "$$$", "$$"},
		{"backslash escapes", `a\\b c\/d e\n`, `a\b c/d e\n`},
		{"no escapes in a default", "${NOPE:-$$5}", "$$5"},
		{"lone dollar kept", "cost: $ 5, $5, $-, $", "cost: $ 5, $5, $-, $"},
		{"multi-line file", "a: ${A}\nb: ${B_2}\n", "a: alpha\nb: beta\n"},
		{"brace in a default", "${NOPE:-{x}}", "{x}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Substitute(tt.in, env)
			if err != nil {
				t.Fatalf("Substitute(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Substitute(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestSubstituteErrors: what faas-cli's envsubst refuses is refused, with
// the line it is on.
func TestSubstituteErrors(t *testing.T) {
	env := envOf(map[string]string{"EMPTY": "", "A": "abc"})
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"unterminated", "a: 1\nb: ${A\nc: 3\n", 2, `unterminated "${"`},
		{"unterminated at end", "a: ${A", 1, `unterminated "${"`},
		{"unterminated nested", "x\ny\n${A:-${B}", 3, `unterminated "${"`},
		{"empty name", "\n${}", 2, "bad substitution"},
		{"not a name", "${-A}", 1, "bad substitution"},
		{"dash without colon", "\n\n\n${A-x}", 4, `faas-cli does not take "-" without ":"`},
		{"question without colon", "${NOPE?}", 1, `faas-cli does not take "?"`},
		{"plus without colon", "${A+x}", 1, `faas-cli does not take "+"`},
		{"other operator", "${A.b}", 1, "bad substitution"},
		{"three commas", "${A,,,}", 1, "bad substitution"},
		{"empty substring", "${A:}", 1, "bad substitution"},
		{"negative length", "${A:1:-1}", 1, "negative length"},
		{"empty pattern to remove", "${A#}", 1, "bad substitution"},
		{"replace without a second slash", "${A/x", 1, "unterminated"},
		{"error in default", "a\n${NOPE:-${}}", 2, "bad substitution"},
		{"line after a multi-line default", "${A:-x\n}\n${B", 3, "unterminated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Substitute(tt.in, env)
			var se *SubstError
			if !errors.As(err, &se) {
				t.Fatalf("Substitute(%q) error = %v, want a *SubstError", tt.in, err)
			}
			if se.Line != tt.line || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("Substitute(%q) = line %d %q, want line %d containing %q", tt.in, se.Line, se.Msg, tt.line, tt.msg)
			}
		})
	}
}

func TestSubstituteBoundsNesting(t *testing.T) {
	deep := strings.Repeat("${A:-", 18) + "x" + strings.Repeat("}", 18)
	if _, err := Substitute(deep, func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("18 nested defaults: %v", err)
	}
	ok := strings.Repeat("${A:-", 16) + "x" + strings.Repeat("}", 16)
	if got, err := Substitute(ok, func(string) (string, bool) { return "", false }); err != nil || got != "x" {
		t.Errorf("16 nested defaults: %q %v", got, err)
	}
}
