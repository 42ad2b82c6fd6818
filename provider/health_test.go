package provider

import (
	"context"
	"github.com/faas-criu/faas-criu/api"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openfaas/faas-provider/types"
)

// TestProbeStatus: a replica is ready on 200-399 only, as a Kubernetes HTTP
// probe counts it (a 404 once counted as ready).
func TestProbeStatus(t *testing.T) {
	status := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status >= 300 && status < 400 {
			// A redirect to a path that fails: the redirect itself is the
			// answer, it is not followed.
			w.Header().Set("Location", "/fails")
		}
		if r.URL.Path == "/fails" {
			status = 500
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	p := &Provider{health: newHealthClient()}
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tt := range []struct {
		code int
		want bool
	}{
		{200, true}, {204, true}, {302, true}, {399, true},
		{400, false}, {401, false}, {404, false}, {429, false}, {499, false}, {500, false}, {503, false},
	} {
		status = tt.code
		if got := p.probe(context.Background(), addr, "/_/health"); got != tt.want {
			t.Errorf("a replica answering %d: ready %v, want %v", tt.code, got, tt.want)
		}
	}
}

// TestReadyPath: com.openfaas.ready.http.path, then
// com.openfaas.health.http.path, then /_/health.
func TestReadyPath(t *testing.T) {
	for _, tt := range []struct {
		ann  map[string]string
		want string
	}{
		{nil, "/_/health"},
		{map[string]string{"com.openfaas.health.http.path": "/healthz"}, "/healthz"},
		{map[string]string{"com.openfaas.ready.http.path": "/_/ready"}, "/_/ready"},
		{map[string]string{"com.openfaas.ready.http.path": "/ready", "com.openfaas.health.http.path": "/healthz"}, "/ready"},
		{map[string]string{"com.openfaas.ready.http.path": "ready"}, "/_/health"}, // not a path
	} {
		dep := types.FunctionDeployment{Service: "f"}
		if tt.ann != nil {
			a := tt.ann
			dep.Annotations = &a
		}
		fn := &function{rec: &record{Deployment: dep, State: api.StateAwake}}
		if got := healthPath(fn); got != tt.want {
			t.Errorf("annotations %v: probe path %q, want %q", tt.ann, got, tt.want)
		}
	}
}
