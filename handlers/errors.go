// Package handlers is faas-criu's HTTP layer: it decodes and validates
// requests, calls the provider (through the small interfaces each route
// declares, in package api's types), and encodes answers with OpenFaaS's status
// codes. Nothing here knows about Docker or CRIU.
package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/faas-criu/faas-criu/api"
)

// MaxBodyBytes bounds request bodies on /system/* (a secret's value is at
// most 1 MiB, base64 in JSON).
const MaxBodyBytes = 2 << 20

// writeError answers with the error's status and its message on one line.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := api.StatusCode(err)
	msg := strings.ReplaceAll(err.Error(), "\n", "; ")
	if code >= 500 {
		slog.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", msg)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

// decodeJSON reads a bounded JSON body into v.
// respond answers with v as JSON, or with err when there is one.
func respond(w http.ResponseWriter, r *http.Request, v any, err error) {
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, v)
}

// decodeRequired decodes the body into v and requires the named field (read
// through value, which points into v) to be set. false: the refusal is
// written.
func decodeRequired(w http.ResponseWriter, r *http.Request, v any, field string, value *string) bool {
	err := decodeJSON(w, r, v)
	if err == nil && *value == "" {
		err = badRequest("%s is required", field)
	}
	if err != nil {
		writeError(w, r, err)
		return false
	}
	return true
}

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

// badRequest is an api.ErrInvalid (400) with the reason given.
func badRequest(format string, args ...any) error {
	return api.Errorf(api.ErrInvalid, format, args...)
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(v)
}
