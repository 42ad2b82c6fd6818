package stack

import (
	"errors"
	"strings"
	"testing"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestSubstitute(t *testing.T) {
	env := envOf(map[string]string{"A": "alpha", "EMPTY": "", "B_2": "beta", "NESTED": "${A}"})
	tests := []struct {
		name, in, want string
	}{
		{"plain text", "no references here", "no references here"},
		{"bare name", "x=$A.", "x=alpha."},
		{"bare name stops at non-name", "$A-$B_2/$A1", "alpha-beta/"},
		{"braced", "${A}", "alpha"},
		{"braced next to text", "pre${A}post", "prealphapost"},
		{"unset is empty", "[${NOPE}][$NOPE]", "[][]"},
		{"default when unset", "${NOPE:-dflt}", "dflt"},
		{"default when empty", "${EMPTY:-dflt}", "dflt"},
		{"no default when set", "${A:-dflt}", "alpha"},
		{"dash default only when unset", "${EMPTY-dflt}|${NOPE-dflt}", "|dflt"},
		{"colon-equals as colon-dash", "${EMPTY:=d}", "d"},
		{"equals as dash", "${EMPTY=d}${NOPE=e}", "e"},
		{"empty default", "${NOPE:-}", ""},
		{"default with spaces and colons", "${NOPE:-http://h:8080/a b}", "http://h:8080/a b"},
		{"nested default", "${NOPE:-${A}}", "alpha"},
		{"doubly nested default", "${NOPE:-${NOPE2:-${B_2}}}", "beta"},
		{"value is not re-expanded", "${NESTED}", "${A}"},
		{"dollar dollar escapes", "$$A $${A} $$", "$A ${A} $"},
		{"escape in default", "${NOPE:-$$5}", "$5"},
		{"lone dollar kept", "cost: $ 5, $5, $-, $", "cost: $ 5, $5, $-, $"},
		{"question mark when set", "${A:?must be set}", "alpha"},
		{"multi-line file", "a: $A\nb: ${B_2}\n", "a: alpha\nb: beta\n"},
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

func TestSubstituteErrors(t *testing.T) {
	env := envOf(map[string]string{"EMPTY": ""})
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"unterminated", "a: 1\nb: ${A\nc: 3\n", 2, `unterminated "${"`},
		{"unterminated at end", "a: ${A", 1, `unterminated "${"`},
		{"unterminated nested", "x\ny\n${A:-${B}", 3, `unterminated "${"`},
		{"empty name", "\n${}", 2, "bad substitution"},
		{"not a name", "${1A}", 1, "bad substitution"},
		{"unsupported operator", "\n\n\n${A^^}", 4, "unsupported substitution"},
		{"required unset", "${NOPE:?set NOPE first}", 1, "NOPE: set NOPE first"},
		{"required empty", "${EMPTY:?}", 1, "EMPTY: not set"},
		{"required unset without colon", "${NOPE?}", 1, "NOPE: not set"},
		{"error in default", "a\n${NOPE:-${}}", 2, "bad substitution"},
		{"line after a multi-line default", "${A:-x}\n\n${B", 3, "unterminated"},
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

func TestSubstituteRequiredEmptyWithoutColon(t *testing.T) {
	got, err := Substitute("[${EMPTY?}]", envOf(map[string]string{"EMPTY": ""}))
	if err != nil || got != "[]" {
		t.Fatalf("got %q, %v; want \"[]\", nil", got, err)
	}
}

func TestSubstituteBoundsNesting(t *testing.T) {
	deep := strings.Repeat("${A:-", 17) + "x" + strings.Repeat("}", 17)
	if _, err := Substitute(deep, func(string) (string, bool) { return "", false }); err == nil || !strings.Contains(err.Error(), "nested") {
		t.Errorf("17 nested defaults: %v", err)
	}
	ok := strings.Repeat("${A:-", 16) + "x" + strings.Repeat("}", 16)
	if got, err := Substitute(ok, func(string) (string, bool) { return "", false }); err != nil || got != "x" {
		t.Errorf("16 nested defaults: %q %v", got, err)
	}
}
