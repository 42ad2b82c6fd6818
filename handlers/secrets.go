package handlers

import (
	"context"
	"net/http"

	"github.com/openfaas/faas-provider/types"
)

// Secrets is what the secrets route needs from the provider.
type Secrets interface {
	ListSecrets(ctx context.Context, ns string) ([]types.Secret, error)
	CreateSecret(ctx context.Context, s types.Secret) error
	UpdateSecret(ctx context.Context, s types.Secret) error
	DeleteSecret(ctx context.Context, ns, name string) error
}

// SecretsHandler answers /system/secrets: GET lists names, POST creates,
// PUT updates, DELETE removes.
func SecretsHandler(s Secrets) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			list, err := s.ListSecrets(r.Context(), r.URL.Query().Get("namespace"))
			respond(w, r, list, err)
			return
		}
		var sec types.Secret
		if err := decodeJSON(w, r, &sec); err != nil {
			writeError(w, r, err)
			return
		}
		if sec.Namespace == "" {
			sec.Namespace = r.URL.Query().Get("namespace")
		}
		var err error
		code := http.StatusOK
		switch r.Method {
		case http.MethodPost:
			err, code = s.CreateSecret(r.Context(), sec), http.StatusCreated
		case http.MethodPut:
			err = s.UpdateSecret(r.Context(), sec)
		case http.MethodDelete:
			err = s.DeleteSecret(r.Context(), sec.Namespace, sec.Name)
		default:
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(code)
	}
}
