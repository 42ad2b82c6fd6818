package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/types"
)

// LocalSecrets is this box's own secret store (the provider's).
type LocalSecrets interface {
	CreateSecret(ctx context.Context, s types.Secret) error
	UpdateSecret(ctx context.Context, s types.Secret) error
	DeleteSecret(ctx context.Context, ns, name string) error
}

// SetLocalSecrets gives the fleet this box's secret store: secrets in the
// fleet's KV are written to it when the box joins and whenever they change,
// so that a box that was down, or joins later, has them all.
func (f *Fleet) SetLocalSecrets(s LocalSecrets) {
	f.mu.Lock()
	f.local = s
	f.mu.Unlock()
}

// secret answers POST, PUT and DELETE /system/secrets for the fleet: this
// box answers (so its checks and status codes are the caller's), then every
// other live box is given the same change, and the value is kept in KV,
// sealed with the fleet key.
func (f *Fleet) secret(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !f.ready(w) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 2<<20))
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var sec types.Secret
	if err := json.Unmarshal(body, &sec); err != nil || sec.Name == "" {
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r) // its own answer to a bad request
		return
	}
	if sec.Namespace == "" {
		sec.Namespace = r.URL.Query().Get("namespace")
	}
	self := Box{Name: f.cfg.Box, URL: f.cfg.Advertise}
	auth := r.Header.Get("Authorization")
	resp, err := f.ask(r.Context(), self, r.Method, r.URL.RequestURI(), body, auth)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	code := resp.StatusCode
	k := key(sec.Namespace, sec.Name)
	ctx := context.WithoutCancel(r.Context())
	switch {
	case r.Method == http.MethodDelete && (code/100 == 2 || code == http.StatusNotFound):
		if err := f.secrets.Delete(ctx, k); err != nil {
			slog.Warn("fleet: a deleted secret stays in KV", "secret", k, "err", err)
		}
	case code/100 == 2:
		sealed, err := seal(f.key, k, body)
		if err == nil {
			_, err = f.secrets.Put(ctx, k, sealed)
		}
		if err != nil {
			http.Error(w, "fleet: secret stored on this box but not in the fleet: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
	default:
		relay(w, resp, b)
		return
	}
	// The other live boxes now, so that a deploy that follows finds it
	// wherever it lands (a box that misses it takes it from KV later).
	var wg sync.WaitGroup
	for _, box := range f.Boxes() {
		if box.Name == f.cfg.Box {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			method := r.Method
			if method == http.MethodPost {
				method = http.MethodPut // there already, or not: either way, this value
			}
			if err := f.applyRemote(ctx, box, method, r.URL.RequestURI(), body, auth); err != nil {
				slog.Warn("fleet: secret not applied on a box now (it takes it from KV when it can)", "secret", k, "box", box.Name, "err", err)
			}
		}()
	}
	wg.Wait()
	relay(w, resp, b)
}

func (f *Fleet) applyRemote(ctx context.Context, box Box, method, uri string, body []byte, auth string) error {
	resp, err := f.ask(ctx, box, method, uri, body, auth)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if method == http.MethodPut && resp.StatusCode == http.StatusNotFound {
		if resp, err = f.ask(ctx, box, http.MethodPost, uri, body, auth); err != nil {
			return err
		}
		resp.Body.Close()
	}
	if resp.StatusCode/100 != 2 && resp.StatusCode != http.StatusNotFound {
		return &statusError{box.Name, resp.StatusCode}
	}
	return nil
}

type statusError struct {
	box  string
	code int
}

func (e *statusError) Error() string { return "box " + e.box + " answered " + http.StatusText(e.code) }

// applySecret writes a secret from KV to this box's store (or removes it).
func (f *Fleet) applySecret(k string, v []byte, _ time.Time, del bool) {
	f.mu.RLock()
	local := f.local
	f.mu.RUnlock()
	if local == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if del {
		ns, name, _ := cut(k)
		if err := local.DeleteSecret(ctx, ns, name); err != nil {
			slog.Debug("fleet: secret not removed here", "secret", k, "err", err)
		}
		return
	}
	plain, err := open(f.key, k, v)
	if err != nil {
		slog.Error("fleet: secret in KV not applied", "secret", k, "err", err)
		return
	}
	var sec types.Secret
	if err := json.Unmarshal(plain, &sec); err != nil {
		slog.Error("fleet: secret in KV not applied", "secret", k, "err", err)
		return
	}
	sec.Namespace, sec.Name, _ = cut(k)
	if err := local.UpdateSecret(ctx, sec); err != nil {
		if err := local.CreateSecret(ctx, sec); err != nil {
			slog.Error("fleet: secret in KV not applied", "secret", k, "err", err)
		}
	}
}

// cut splits a KV key NAMESPACE.NAME (a namespace has no dot; a secret's
// name may).
func cut(k string) (ns, name string, ok bool) {
	return strings.Cut(k, ".")
}
