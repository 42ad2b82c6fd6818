package handlers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/openfaas/faas-provider/types"
)

// replaceRecorder records the replace flag an import was given.
type replaceRecorder struct {
	fakeMigrator
	replace *bool
}

func (m *replaceRecorder) Import(ctx context.Context, r io.Reader, replace bool) (types.FunctionStatus, error) {
	*m.replace = replace
	return types.FunctionStatus{}, nil
}

// TestImportReplaceParam: ?replace= is a boolean read the OpenFaaS way
// (replace=1 once meant false), and a value not understood is a 400.
func TestImportReplaceParam(t *testing.T) {
	for _, tt := range []struct {
		query string
		code  int
		want  bool
	}{
		{"", 200, false}, {"?replace=true", 200, true}, {"?replace=1", 200, true}, {"?replace=TRUE", 200, true},
		{"?replace=yes", 200, true}, {"?replace=0", 200, false}, {"?replace=false", 200, false}, {"?replace=maybe", 400, false},
	} {
		got := false
		h := Import(&replaceRecorder{replace: &got}, 1<<20)
		w := httptest.NewRecorder()
		h(w, httptest.NewRequest(http.MethodPost, "/system/import"+tt.query, strings.NewReader("x")))
		if w.Code != tt.code || got != tt.want {
			t.Errorf("%q: %d, replace %v; want %d, %v", tt.query, w.Code, got, tt.code, tt.want)
		}
	}
}
