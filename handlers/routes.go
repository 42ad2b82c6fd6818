package handlers

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/types"
)

// Deps is what the routes need. Each interface is declared beside the
// handlers that use it, in package api's types, so this package never sees
// the provider behind them.
type Deps struct {
	Functions  Functions
	Secrets    Secrets
	Namespaces Namespaces
	Logs       LogSource
	Migrator   Migrator
	Backups    BackupKeeper
	// Target makes the client for a migration's target.
	Target TargetFunc
	// Invoke serves /function/ (the proxy, with its metrics); Async serves
	// /async-function/ (nil: not served).
	Invoke, Async http.Handler
	// Info is the /system/info document.
	Info func() InfoDoc
	// Credentials guard /system/* with basic auth; nil leaves it open.
	Credentials *Credentials
	// ImportMaxBytes bounds what a migration may bring in.
	ImportMaxBytes int64
	// MaxFollow bounds a followed log stream.
	MaxFollow time.Duration
}

// Mount is faas-criu's route table. It adds to router, ahead of
// faas-provider's own, the routes faas-provider's Serve would register
// differently or not at all, and returns the handlers Serve registers for
// the rest (on the same router, bootstrap.Router()):
//
//	/function/...                         invoke (plain prefix: the hot path skips the patterns below)
//	/async-function/...                   queued invoke
//	/system/logs                  GET     logs, not cut by the write timeout (Serve's wrapper would hide it)
//	/system/migrate               POST    move a function to another faas-criu (NDJSON progress)
//	/system/import                POST    receive a migration archive
//	/system/import/image          GET     ask whether an image is here; POST receive one
//	/system/backups/{name}        GET     list backups
//	/system/backups/{name}/restore POST   restore one
//	by Serve: /system/functions (GET POST PUT DELETE), /system/function/{name},
//	/system/scale-function/{name}, /system/info, /system/secrets,
//	/system/namespaces, /healthz, /metrics
//
// Every /system/ route but /healthz and /metrics needs the credentials.
func Mount(router *mux.Router, d Deps) *types.FaaSHandlers {
	h := &types.FaaSHandlers{
		FunctionLister: ListFunctions(d.Functions),
		DeployFunction: DeployFunction(d.Functions),
		UpdateFunction: UpdateFunction(d.Functions),
		DeleteFunction: DeleteFunction(d.Functions),
		FunctionStatus: FunctionStatus(d.Functions),
		ScaleFunction:  ScaleFunction(d.Functions),
		Secrets:        SecretsHandler(d.Secrets),
		Logs:           Logs(d.Logs, d.MaxFollow),
		ListNamespaces: ListNamespaces(d.Namespaces),
		Info:           Info(d.Info),
		Health:         Health,
		FunctionProxy:  d.Invoke.ServeHTTP,
	}
	Protect(h, d.Credentials)

	router.PathPrefix("/function/").Handler(d.Invoke)
	if d.Async != nil {
		router.PathPrefix("/async-function/").Handler(d.Async)
	}
	route(router, "/system/logs", h.Logs, "GET")
	auth := func(f http.HandlerFunc) http.HandlerFunc { return RequireAuth(d.Credentials, f) }
	route(router, "/system/migrate", auth(Migrate(d.Migrator, d.Target)), "POST")
	route(router, "/system/import", auth(Import(d.Migrator, d.ImportMaxBytes)), "POST")
	route(router, "/system/import/image", auth(Image(d.Migrator, d.ImportMaxBytes)), "GET", "POST")
	route(router, "/system/backups/{name:[-a-z0-9]+}", auth(ListBackups(d.Backups)), "GET")
	route(router, "/system/backups/{name:[-a-z0-9]+}/restore", auth(RestoreBackup(d.Backups)), "POST")
	return h
}

func route(router *mux.Router, path string, h http.HandlerFunc, methods ...string) {
	router.HandleFunc(path, h).Methods(methods...)
}
