package handlers

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/logs"
	"github.com/openfaas/faas-provider/types"
)

// Info answers GET /system/info with the document info returns (the
// faas-provider ProviderInfo fields, plus faas-criu's engine, CRIU and
// memory figures).
func Info(info func() any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, info())
	}
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
		// A query the provider refuses would be a 500 from faas-provider.
		if tail, err := strconv.Atoi(last("tail")); err == nil && tail < 0 {
			writeError(w, r, badRequest("tail must not be negative"))
			return
		}
		if _, err := src.Status(r.Context(), last("namespace"), last("name")); err != nil {
			writeError(w, r, err)
			return
		}
		_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		stream(w, r)
	}
}

// Route adds a route to router ahead of faas-provider's own.
func Route(router *mux.Router, path string, h http.HandlerFunc, methods ...string) {
	router.HandleFunc(path, h).Methods(methods...)
}

// NewHandlers assembles the handlers faas-provider's Serve registers.
func NewHandlers(f Functions, s Secrets, n Namespaces, src LogSource, proxy http.Handler, info func() any, maxFollow time.Duration) *types.FaaSHandlers {
	return &types.FaaSHandlers{
		FunctionLister: ListFunctions(f),
		DeployFunction: DeployFunction(f),
		UpdateFunction: UpdateFunction(f),
		DeleteFunction: DeleteFunction(f),
		FunctionStatus: FunctionStatus(f),
		ScaleFunction:  ScaleFunction(f),
		Secrets:        SecretsHandler(s),
		Logs:           Logs(src, maxFollow),
		ListNamespaces: ListNamespaces(n),
		Info:           Info(info),
		Health:         Health,
		FunctionProxy:  proxy.ServeHTTP,
	}
}
