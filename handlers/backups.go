package handlers

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/faas-criu/faas-criu/api"
)

// BackupKeeper is what the backup routes need from the provider.
type BackupKeeper interface {
	Backups(ctx context.Context, ns, name string) ([]api.Backup, error)
	RestoreBackup(ctx context.Context, ns, name, backup string) error
}

// ListBackups answers GET /system/backups/{name}[?namespace=], newest first.
func ListBackups(b BackupKeeper) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := b.Backups(r.Context(), r.URL.Query().Get("namespace"), mux.Vars(r)["name"])
		respond(w, r, list, err)
	}
}

// RestoreBackup answers POST /system/backups/{name}/restore with
// {"backup": "bak-..."}: the function's replicas go back to that backup.
func RestoreBackup(b BackupKeeper) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Backup string `json:"backup"`
		}
		if !decodeRequired(w, r, &req, "backup", &req.Backup) {
			return
		}
		if err := b.RestoreBackup(r.Context(), r.URL.Query().Get("namespace"), mux.Vars(r)["name"], req.Backup); err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}
