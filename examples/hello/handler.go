// Package function is the hello example: a stateless greeting.
package function

import (
	"fmt"
	"net/http"
	"os"
)

// Handle greets whoever is named in ?name=, and says which replica answered.
func Handle(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "world"
	}
	host, _ := os.Hostname()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Hello, %s! (from %s)\n", name, host)
}
