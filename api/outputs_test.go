package api

import (
	"reflect"
	"testing"

	"github.com/openfaas/faas-provider/types"
)

func TestDropOutputs(t *testing.T) {
	m := func(kv ...string) *map[string]string {
		out := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return &out
	}
	cases := []struct {
		name                  string
		labels, annotations   *map[string]string
		wantLabels, wantAnnos *map[string]string
	}{
		{"nothing", nil, nil, nil, nil},
		{"no outputs", m("team", "edge"), m("topic", "x"), m("team", "edge"), m("topic", "x")},
		{"outputs among inputs", m("team", "edge", LabelFaasFunction, "fn"), m("topic", "x", AnnotationState, "hibernated"),
			m("team", "edge"), m("topic", "x")},
		{"only outputs", m(LabelFaasFunction, "fn"), m(AnnotationState, "awake", AnnotationTier, "awake"), nil, nil},
	}
	for _, c := range cases {
		dep := types.FunctionDeployment{Labels: c.labels, Annotations: c.annotations}
		DropOutputs(&dep)
		if !reflect.DeepEqual(dep.Labels, c.wantLabels) || !reflect.DeepEqual(dep.Annotations, c.wantAnnos) {
			t.Errorf("%s: labels %v, annotations %v; want %v, %v", c.name, dep.Labels, dep.Annotations, c.wantLabels, c.wantAnnos)
		}
	}
	// A deployment without outputs keeps its own maps (its hash is unchanged).
	labels := m("team", "edge")
	dep := types.FunctionDeployment{Labels: labels}
	DropOutputs(&dep)
	if dep.Labels != labels {
		t.Error("a deployment without outputs got new label maps")
	}
}
