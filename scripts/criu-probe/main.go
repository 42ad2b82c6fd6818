// Command criu-probe is the tiny workload scripts/setup.sh uses to decide
// whether the installed CRIU really works with Docker: it is checkpointed and
// restored, and its in-memory counter must survive.
//
// Usage:
//
//	criu-probe [serve [ADDR]]   serve on ADDR (default :8080); every GET /
//	                            answers the next value of a counter: 1, 2, 3, ...
//	criu-probe get URL          print the body of GET URL; retry for about 2 s
//	                            while the server does not accept connections
//
// It uses only the standard library so it can be built statically and run
// in a FROM scratch image.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"
)

const (
	defaultAddr    = ":8080"
	dialTimeout    = 300 * time.Millisecond
	requestTimeout = time.Second
	retryFor       = 2 * time.Second
	retryEvery     = 100 * time.Millisecond
)

func main() {
	args := os.Args[1:]
	var err error
	switch {
	case len(args) == 0:
		err = serve(defaultAddr)
	case args[0] == "serve" && len(args) <= 2:
		addr := defaultAddr
		if len(args) == 2 {
			addr = args[1]
		}
		err = serve(addr)
	case args[0] == "get" && len(args) == 2:
		err = get(args[1])
	default:
		err = errors.New("usage: criu-probe [serve [ADDR]] | criu-probe get URL")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "criu-probe:", err)
		os.Exit(1)
	}
}

func serve(addr string) error {
	var counter atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, counter.Add(1))
	})
	srv := &http.Server{
		Addr:              addr,
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
	}
	return srv.ListenAndServe()
}

func get(url string) error {
	// No keep-alive: an idle connection left open would have to be
	// checkpointed as an established TCP connection.
	client := &http.Client{
		Timeout: requestTimeout,
		Transport: &http.Transport{
			DialContext:       (&net.Dialer{Timeout: dialTimeout}).DialContext,
			DisableKeepAlives: true,
		},
	}
	deadline := time.Now().Add(retryFor)
	for {
		body, err := fetch(client, url)
		if err == nil {
			fmt.Println(body)
			return nil
		}
		// Retry only when no connection was made: a request the server
		// may have seen must not be repeated, it would skip a count.
		if !isDialError(err) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(retryEvery)
	}
}

func fetch(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func isDialError(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "dial"
}
