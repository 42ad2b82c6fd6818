package handlers

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestGatewayMetricsCountsByFunctionAndCode: the wrapper's cached series
// are the vectors' own, per function (namespace defaulted) and status.
func TestGatewayMetricsCountsByFunctionAndCode(t *testing.T) {
	m := NewGatewayMetrics(nil, nil, "openfaas-fn")
	h := m.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("teapot") != "" {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		if r.URL.Query().Get("internal") != "" {
			w.Header().Set("X-OpenFaaS-Internal", "proxy")
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Write([]byte("ok"))
	}))
	for _, path := range []string{"/function/gm", "/function/gm/x", "/function/gm.openfaas-fn?teapot=1", "/function/a.other/", "/function/nosuch?internal=1"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.started.WithLabelValues("gm.openfaas-fn")), 3, "gm started"},
		{testutil.ToFloat64(m.invocations.WithLabelValues("gm.openfaas-fn", "200")), 2, "gm 200"},
		{testutil.ToFloat64(m.invocations.WithLabelValues("gm.openfaas-fn", "418")), 1, "gm 418"},
		{testutil.ToFloat64(m.invocations.WithLabelValues("a.other", "200")), 1, "a.other 200"},
		{testutil.ToFloat64(m.invocations.WithLabelValues("nosuch.openfaas-fn", "404")), 0, "internal 404 not counted"},
		{float64(testutil.CollectAndCount(m.seconds)), 3, "histogram series"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
}
