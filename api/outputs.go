package api

import (
	"strings"

	"github.com/openfaas/faas-provider/types"
)

// LabelFaasFunction is the label faas-netes and faas-swarm put on every
// function's status (faas_function: NAME); the OpenFaaS conformance cases
// expect it from every provider but faasd.
const LabelFaasFunction = "faas_function"

// DropOutputs removes from a deployment what the provider itself reports in
// a status: the faas_function label and the AnnotationPrefix annotations.
// A client that reads a status and puts it back (GET then PUT) sends them;
// kept, they changed the definition's hash and the "update" replaced a
// hibernated function's container, losing its state. The maps are copied,
// and only when there is something to drop, so a deployment without them
// stays exactly what it was.
func DropOutputs(dep *types.FunctionDeployment) {
	dep.Labels = without(dep.Labels, func(k string) bool { return k == LabelFaasFunction })
	dep.Annotations = without(dep.Annotations, func(k string) bool { return strings.HasPrefix(k, AnnotationPrefix) })
}

// without is m less the keys drop picks: m itself when there are none, nil
// when nothing is left.
func without(m *map[string]string, drop func(string) bool) *map[string]string {
	if m == nil {
		return nil
	}
	out := map[string]string{}
	dropped := false
	for k, v := range *m {
		if drop(k) {
			dropped = true
		} else {
			out[k] = v
		}
	}
	switch {
	case !dropped:
		return m
	case len(out) == 0:
		return nil
	}
	return &out
}
