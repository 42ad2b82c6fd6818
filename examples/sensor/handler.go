// Package function is the sensor example: an IoT-style function that keeps
// the last readings in memory. POST a number to add a reading; GET answers
// {count, mean, min, max, last} over the window. The state lives only in
// the process, so it survives hibernation only because CRIU checkpoints
// and restores the process whole.
package function

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
)

// window holds the last readings; its size is $SENSOR_WINDOW (default 100).
var window = newRing(windowSize())

func windowSize() int {
	if n, err := strconv.Atoi(os.Getenv("SENSOR_WINDOW")); err == nil && n > 0 {
		return n
	}
	return 100
}

// Stats summarises the window.
type Stats struct {
	Count int      `json:"count"`
	Mean  *float64 `json:"mean"`
	Min   *float64 `json:"min"`
	Max   *float64 `json:"max"`
	Last  *float64 `json:"last"`
}

// Handle adds a reading (POST, the body is a number) or answers the
// window's statistics (GET). A POST answers the statistics too.
func Handle(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost, http.MethodPut:
		body, err := io.ReadAll(io.LimitReader(r.Body, 1024))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(string(body)), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			http.Error(w, fmt.Sprintf("expected a number, got %q", body), http.StatusBadRequest)
			return
		}
		window.add(v)
	case http.MethodGet, http.MethodHead:
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(window.stats())
}

// ring is a fixed-size window of the newest readings.
type ring struct {
	mu   sync.Mutex
	vals []float64
	next int
	full bool
}

func newRing(n int) *ring { return &ring{vals: make([]float64, n)} }

func (r *ring) add(v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vals[r.next] = v
	r.next = (r.next + 1) % len(r.vals)
	if r.next == 0 {
		r.full = true
	}
}

func (r *ring) stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.vals)
	}
	if n == 0 {
		return Stats{}
	}
	sum, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for _, v := range r.vals[:n] {
		sum += v
		lo, hi = min(lo, v), max(hi, v)
	}
	last := r.vals[(r.next-1+len(r.vals))%len(r.vals)]
	mean := sum / float64(n)
	return Stats{Count: n, Mean: &mean, Min: &lo, Max: &hi, Last: &last}
}
