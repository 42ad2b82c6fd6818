package stack

import (
	"fmt"
	"strings"
)

// Error is a problem with a stack file. It names the file, and the function
// and field when there is one:
//
//	stack.yml: function "sensor": field "limits.memroy": unknown key (line 12)
type Error struct {
	File     string // the stack file as given
	Function string // "" for keys outside functions
	Field    string // dotted path below the function, or from the root
	Line     int    // 1-based; 0 when unknown
	Msg      string
	Err      error // the cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Function != "" {
		fmt.Fprintf(&b, ": function %q", e.Function)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, ": field %q", e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
