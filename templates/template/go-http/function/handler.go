// Package function is the function's code: Handle answers every request
// except the health checks (/_/health, /_/ready).
package function

import (
	"fmt"
	"io"
	"net/http"
)

// Handle answers a request. It is an ordinary http.HandlerFunc; requests may
// arrive concurrently.
func Handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(body) == 0 {
		fmt.Fprintln(w, "Hello from faas-criu!")
		return
	}
	fmt.Fprintf(w, "Hello from faas-criu! You said: %s\n", body)
}
