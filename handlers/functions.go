package handlers

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/openfaas/faas-provider/types"
)

// Functions is what the function routes need from the provider.
type Functions interface {
	Deploy(ctx context.Context, dep types.FunctionDeployment) error
	Update(ctx context.Context, dep types.FunctionDeployment) error
	Delete(ctx context.Context, ns, name string) error
	List(ctx context.Context, ns string) ([]types.FunctionStatus, error)
	Status(ctx context.Context, ns, name string) (types.FunctionStatus, error)
	Scale(ctx context.Context, ns, name string, replicas int) error
}

// ListFunctions answers GET /system/functions[?namespace=].
func ListFunctions(f Functions) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := f.List(r.Context(), r.URL.Query().Get("namespace"))
		respond(w, r, list, err)
	}
}

// DeployFunction answers POST /system/functions.
func DeployFunction(f Functions) http.HandlerFunc { return applyDeployment(f.Deploy) }

// UpdateFunction answers PUT /system/functions.
func UpdateFunction(f Functions) http.HandlerFunc { return applyDeployment(f.Update) }

// applyDeployment decodes a deployment, hands it to apply and answers 202.
func applyDeployment(apply func(context.Context, types.FunctionDeployment) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var dep types.FunctionDeployment
		if err := decodeJSON(w, r, &dep); err != nil {
			writeError(w, r, err)
			return
		}
		if err := apply(r.Context(), dep); err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}

// DeleteFunction answers DELETE /system/functions with
// {"functionName": ..., "namespace": ...}.
func DeleteFunction(f Functions) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req types.DeleteFunctionRequest
		if !decodeRequired(w, r, &req, "functionName", &req.FunctionName) {
			return
		}
		ns := req.Namespace
		if ns == "" {
			ns = r.URL.Query().Get("namespace")
		}
		if err := f.Delete(r.Context(), ns, req.FunctionName); err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}

// FunctionStatus answers GET /system/function/{name}[?namespace=].
func FunctionStatus(f Functions) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st, err := f.Status(r.Context(), r.URL.Query().Get("namespace"), mux.Vars(r)["name"])
		respond(w, r, st, err)
	}
}

// ScaleFunction answers POST /system/scale-function/{name} with
// {"serviceName": ..., "replicas": N}. The name in the path wins.
func ScaleFunction(f Functions) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req types.ScaleServiceRequest
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, r, err)
			return
		}
		name := mux.Vars(r)["name"]
		if name == "" {
			name = req.ServiceName
		}
		ns := req.Namespace
		if ns == "" {
			ns = r.URL.Query().Get("namespace")
		}
		if req.Replicas > 1000 {
			writeError(w, r, badRequest("replicas must be from 0 to 1000"))
			return
		}
		if err := f.Scale(r.Context(), ns, name, int(req.Replicas)); err != nil {
			writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}
