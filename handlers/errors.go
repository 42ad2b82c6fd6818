// Package handlers is faas-criu's HTTP layer: it decodes and validates
// requests, calls the provider, and encodes answers with OpenFaaS's status
// codes. Nothing here knows about Docker or CRIU.
package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"

	"github.com/faas-criu/faas-criu/provider"
)

// MaxBodyBytes bounds request bodies on /system/* (a secret's value is at
// most 1 MiB, base64 in JSON).
const MaxBodyBytes = 2 << 20

// statusOf maps an error onto the status code OpenFaaS uses for it.
func statusOf(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge), errors.Is(err, provider.ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, provider.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, provider.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, provider.ErrExists):
		return http.StatusConflict
	case errors.Is(err, provider.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, provider.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, provider.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeError answers with the error's status and its message on one line.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if code >= 500 {
		log.Printf("%s %s: %d %s", r.Method, r.URL.Path, code, msg)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

// decodeJSON reads a bounded JSON body into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if r.Body == nil {
		return badRequest("request body is empty: expected JSON")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return badRequest("request body is empty: expected JSON")
		}
		return badRequest("malformed JSON: %v", err)
	}
	// Only white space may follow the value, up to the limit. (dec.More
	// would pass a stray "}" or "]", and stop at the limit unnoticed.)
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return badRequest("malformed JSON: trailing data after the object")
	}
	return nil
}

type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return provider.ErrInvalid }

func badRequest(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
