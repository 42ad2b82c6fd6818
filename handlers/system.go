package handlers

import (
	"context"
	"net/http"
	"runtime"
	"time"

	"github.com/openfaas/faas-provider/logs"
	"github.com/openfaas/faas-provider/types"
)

// InfoDoc is what /system/info reports: faas-provider's ProviderInfo, and
// the provider's own figures (engine, CRIU, memory), which are extra
// top-level fields in either shape.
type InfoDoc struct {
	Provider types.ProviderInfo
	Extra    map[string]any
}

// Info answers GET /system/info in one of two shapes, because no single
// JSON document decodes into both: "provider" is a string in faas-provider's
// ProviderInfo and an object in the gateway's GatewayInfo.
//   - A gateway in front gets the provider's shape. The OpenFaaS gateway
//     forwards the call with X-Forwarded-For and X-Forwarded-Host set (its
//     forwarding proxy always adds them), so their presence selects it.
//   - Any other caller (faas-cli, the conformance suite straight at
//     faas-criu) gets the gateway's shape (openfaas/faas gateway/types
//     GatewayInfo: provider, version, arch), naming faas-criu as the
//     provider and its version as the "gateway" version.
//
// ?shape=provider or ?shape=gateway overrides the choice.
func Info(info func() InfoDoc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		doc := info()
		out := map[string]any{}
		for k, v := range doc.Extra {
			out[k] = v
		}
		if infoShape(r) == "provider" {
			out["provider"] = doc.Provider.Name
			out["orchestration"] = doc.Provider.Orchestration
			out["version"] = doc.Provider.Version
		} else {
			prov := doc.Provider
			out["provider"] = &prov
			out["version"] = prov.Version
			out["arch"] = runtime.GOARCH
		}
		writeJSON(w, out)
	}
}

// infoShape is "provider" for a gateway in front, else "gateway".
func infoShape(r *http.Request) string {
	switch s := r.URL.Query().Get("shape"); s {
	case "provider", "gateway":
		return s
	}
	if r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("X-Forwarded-Host") != "" {
		return "provider"
	}
	return "gateway"
}

// Namespaces is what the namespaces route needs.
type Namespaces interface {
	Namespaces() []string
}

// ListNamespaces answers GET /system/namespaces with the enabled namespaces.
func ListNamespaces(n Namespaces) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		out := []string{}
		out = append(out, n.Namespaces()...)
		writeJSON(w, out)
	}
}

// Health answers /healthz.
func Health(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("OK\n"))
}

// LogSource is what the logs route needs: faas-provider's log Requester,
// and a way to tell an unknown function from an empty log.
type LogSource interface {
	logs.Requester
	Status(ctx context.Context, ns, name string) (types.FunctionStatus, error)
}

// Logs answers GET /system/logs with faas-provider's log handler. The
// function must exist (404 otherwise), and a followed stream is not cut by
// the server's write timeout.
func Logs(src LogSource, maxFollow time.Duration) http.HandlerFunc {
	stream := logs.NewLogHandlerFunc(src, maxFollow)
	return func(w http.ResponseWriter, r *http.Request) {
		// faas-provider's handler takes the last value of a repeated
		// parameter: check the function it will query, not another one.
		q := r.URL.Query()
		last := func(key string) string {
			if v := q[key]; len(v) > 0 {
				return v[len(v)-1]
			}
			return ""
		}
		if last("name") == "" {
			writeError(w, r, badRequest("the name query parameter is required"))
			return
		}
		// tail<=0 means unlimited (faas-provider's logs.Request); faas-cli
		// sends tail=-1 unless given --lines.
		if _, err := src.Status(r.Context(), last("namespace"), last("name")); err != nil {
			writeError(w, r, err)
			return
		}
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		stream(w, r)
	}
}
