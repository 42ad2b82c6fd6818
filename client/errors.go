package client

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// StatusError is an answer from the gateway other than 2xx.
type StatusError struct {
	Method, Path string
	Code         int
	// Message is the first line of the server's answer.
	Message string
	// Hint says what to check, for some codes.
	Hint string
}

func (e *StatusError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.Path, e.Code, http.StatusText(e.Code))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, " (%s)", e.Hint)
	}
	return b.String()
}

// IsNotFound says whether err is a 404 from the gateway.
func IsNotFound(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// maxMessage bounds the part of an error answer kept.
const maxMessage = 512

// firstLine returns the first non-empty line of an answer's body.
func firstLine(r io.Reader) string {
	sc := bufio.NewScanner(io.LimitReader(r, 64<<10))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			if len(line) > maxMessage {
				line = line[:maxMessage] + "..."
			}
			return line
		}
	}
	return ""
}
