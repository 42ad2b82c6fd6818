package handlers

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gorilla/mux"
)

// BenchmarkProxyStack: invocations through the route, the metrics wrapper
// and the proxy, on a real server, from parallel keep-alive clients.
func BenchmarkProxyStack(b *testing.B) {
	inv := &fakeInvoker{addr: rawBackend(b)}
	m := NewGatewayMetrics(nil, nil, "openfaas-fn")
	px := m.Wrap(NewProxy(inv, &Transports{}))
	router := mux.NewRouter()
	router.PathPrefix("/function/").Handler(px)
	srv := httptest.NewServer(router)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	c := &http.Client{Transport: tr}
	b.SetParallelism(25)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Get(srv.URL + "/function/f/")
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
