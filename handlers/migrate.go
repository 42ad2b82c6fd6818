package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
	"github.com/faas-criu/faas-criu/internal/config"
)

// Migrator is what the migration routes need from the provider.
type Migrator interface {
	Migrate(ctx context.Context, ns, name string, t api.MigrationTarget, opts api.MigrateOptions, report func(api.Progress)) error
	Import(ctx context.Context, r io.Reader, replace bool) (types.FunctionStatus, error)
	ImportImage(ctx context.Context, r io.Reader) error
	HasImage(ctx context.Context, id string) (bool, error)
}

// TargetFunc makes the client for a migration's target, for the function
// key (in a fleet, a move between its boxes goes through the cluster).
type TargetFunc func(key api.Key, url, user, password, token string) api.MigrationTarget

// Migrate answers POST /system/migrate: it moves a function to another
// faas-criu and streams its progress as NDJSON, ending with {"result":"done"}
// or a line with "error" naming the failed step.
func Migrate(m Migrator, target TargetFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req api.MigrateRequest
		if !decodeRequired(w, r, &req, "functionName", &req.FunctionName) {
			return
		}
		u, err := api.ParseURL(req.To)
		if err != nil || u.User != nil {
			writeError(w, r, badRequest("to must be the target's URL, http(s)://host[:port], without credentials in it"))
			return
		}
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{})
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		emit := func(l api.Progress) {
			_ = enc.Encode(l)
			_ = rc.Flush()
		}
		t := target(api.Key{Namespace: req.Namespace, Name: req.FunctionName}, strings.TrimRight(req.To, "/"), req.ToUser, req.ToPassword, req.ToToken)
		opts := api.MigrateOptions{Keep: req.Keep, Replace: req.Replace}
		err = m.Migrate(r.Context(), req.Namespace, req.FunctionName, t, opts, func(p api.Progress) {
			emit(api.Progress{Step: p.Step, Bytes: p.Bytes, Rate: p.Rate, Done: p.Done, Note: p.Note})
		})
		if err != nil {
			line := api.Progress{Error: strings.ReplaceAll(err.Error(), "\n", "; ")}
			var me *api.MigrationError
			if errors.As(err, &me) {
				line.Step, line.Restored = me.Step, me.Restored
			}
			emit(line)
			return
		}
		emit(api.Progress{Result: "done"})
	}
}

// unlimited lifts the server's deadlines for a long transfer over a slow
// link; the body's size is bounded instead.
func unlimited(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
}

// Import answers POST /system/import[?replace=true]: a migration archive
// arrives and the function is restored here; the answer is its status.
func Import(m Migrator, maxBytes int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		unlimited(w)
		// replace=1 or TRUE means what replace=true means; a value not
		// understood is refused rather than read as false.
		replace := false
		if v := r.URL.Query().Get("replace"); v != "" {
			b, err := config.ParseBool(v)
			if err != nil {
				http.Error(w, "replace="+v+": "+err.Error(), http.StatusBadRequest)
				return
			}
			replace = b
		}
		body := http.MaxBytesReader(w, r.Body, maxBytes)
		st, err := m.Import(r.Context(), body, replace)
		respond(w, r, st, err)
	}
}

// Image answers GET /system/import/image?id=ID (200 when the engine has
// the image, 404 when not) and POST /system/import/image (a compressed
// docker save stream to load).
func Image(m Migrator, maxBytes int64) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			id := r.URL.Query().Get("id")
			if id == "" {
				writeError(w, r, badRequest("the id query parameter is required"))
				return
			}
			ok, err := m.HasImage(r.Context(), id)
			switch {
			case err != nil:
				writeError(w, r, err)
			case !ok:
				http.Error(w, "image "+id+" is not here", http.StatusNotFound)
			default:
				w.WriteHeader(http.StatusOK)
			}
			return
		}
		unlimited(w)
		if err := m.ImportImage(r.Context(), http.MaxBytesReader(w, r.Body, maxBytes)); err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}
