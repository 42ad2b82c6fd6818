package client

import (
	"testing"

	"github.com/openfaas/faas-provider/types"
)

func TestDefinitionDropsStatusAnnotations(t *testing.T) {
	dep := Definition(types.FunctionStatus{
		Name: "x", Image: "i", Annotations: &map[string]string{"com.openfaas.criu.state": "awake", "mine": "kept"},
	})
	if dep.Annotations == nil || len(*dep.Annotations) != 1 || (*dep.Annotations)["mine"] != "kept" || dep.Service != "x" || dep.Image != "i" {
		t.Errorf("definition = %+v", dep)
	}
}

func TestCheckURL(t *testing.T) {
	for _, tt := range []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:8080", true}, {"https://gw.example", true},
		{"ftp://x", false}, {"127.0.0.1:8080", false}, {"http://", false},
	} {
		if err := CheckURL(tt.url); (err == nil) != tt.ok {
			t.Errorf("CheckURL(%q) = %v, want ok %v", tt.url, err, tt.ok)
		}
	}
}
