//go:debug multipathtcp=0

// Command handler serves the function in package function over HTTP on
// :8080, with no watchdog: every request but the health checks goes to
// function.Handle. It is built statically and runs FROM scratch.
//
// The go:debug line above matters: Go 1.24 and later listen with Multipath
// TCP by default, and CRIU cannot checkpoint MPTCP sockets.
//
// Environment (as of-watchdog reads it):
//
//	read_timeout, write_timeout   durations ("10s") or seconds; default 60s
//	port                          default 8080
package main

import (
	"context"
	"errors"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"handler/function"
)

func main() {
	log.SetFlags(0)
	log.SetOutput(os.Stdout)

	mux := http.NewServeMux()
	mux.HandleFunc("/_/health", ok)
	mux.HandleFunc("/_/ready", ok)
	mux.HandleFunc("/", function.Handle)

	port := os.Getenv("port")
	if port == "" {
		port = "8080"
	}
	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           logged(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       duration("read_timeout", 60*time.Second),
		WriteTimeout:      duration("write_timeout", 60*time.Second),
		IdleTimeout:       2 * time.Minute,
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("listening on %s", srv.Addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

func ok(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte("OK\n"))
}

// duration reads an environment variable as a duration or whole seconds.
func duration(name string, def time.Duration) time.Duration {
	v := os.Getenv(name)
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return def
}

// logged prints one line per request to stdout: method, path, status,
// bytes and duration. Health checks are not logged.
func logged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_/health" || r.URL.Path == "/_/ready" {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rw := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rw, r)
		log.Printf("%s %s %d %dB %s", r.Method, r.URL.RequestURI(), rw.status, rw.bytes, time.Since(start).Round(time.Microsecond))
	})
}

type recorder struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// Flush lets a handler stream through the recorder.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
