package handlers

import (
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
)

// Invoker is what the invoke route needs from the provider: a ready replica
// address for one request, waking the function if it sleeps.
type Invoker interface {
	Acquire(ctx context.Context, ns, name string) (addr string, release func(), err error)
}

type targetKey struct{}

type target struct {
	addr string
	path string // escaped path below /function/NAME
}

// Proxy forwards /function/NAME[.NAMESPACE][/path] to a replica, streaming
// bodies both ways and passing method, path, query and headers.
type Proxy struct {
	inv        Invoker
	transports *Transports
	rp         *httputil.ReverseProxy
}

// NewProxy returns the invoke handler. The transports are shared with the
// provider, which drops idle connections to a replica before checkpointing
// it.
func NewProxy(inv Invoker, tr *Transports) *Proxy {
	p := &Proxy{inv: inv, transports: tr}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(targetKey{}).(target)
			u := &url.URL{Scheme: "http", Host: t.addr, RawPath: t.path, RawQuery: pr.In.URL.RawQuery}
			u.Path, _ = url.PathUnescape(t.path)
			pr.Out.URL = u
			pr.Out.Host = ""
			pr.SetXForwarded()
			if pr.In.Host != "" {
				pr.Out.Header.Set("X-Forwarded-Host", pr.In.Host)
			}
		},
		Transport: tr,
		ErrorLog:  log.New(discard{}, "", 0),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return // the caller went away
			}
			code := http.StatusBadGateway
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				code = http.StatusGatewayTimeout
			}
			w.Header().Set("X-OpenFaaS-Internal", "proxy")
			http.Error(w, "cannot reach function "+mux.Vars(r)["name"]+": "+err.Error(), code)
		},
	}
	return p
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// ServeHTTP handles one invocation.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	full := mux.Vars(r)["name"]
	name, ns, _ := strings.Cut(full, ".")
	addr, release, err := p.inv.Acquire(r.Context(), ns, name)
	if err != nil {
		w.Header().Set("X-OpenFaaS-Internal", "proxy")
		writeError(w, r, err)
		return
	}
	defer release()
	path := strings.TrimPrefix(r.URL.EscapedPath(), "/function/"+full)
	if path == "" {
		path = "/"
	}
	ctx := context.WithValue(r.Context(), targetKey{}, target{addr: addr, path: path})
	p.rp.ServeHTTP(w, r.WithContext(ctx))
}

// Transports keeps one HTTP transport per replica address, so that the idle
// keep-alive connections to one replica can be dropped on their own.
type Transports struct {
	m sync.Map // addr -> *http.Transport
}

// RoundTrip sends the request over its replica's transport.
func (t *Transports) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.get(req.URL.Host).RoundTrip(req)
}

func (t *Transports) get(addr string) *http.Transport {
	if tr, ok := t.m.Load(addr); ok {
		return tr.(*http.Transport)
	}
	tr, _ := t.m.LoadOrStore(addr, &http.Transport{
		// No TCP keep-alive probes: a connection held open while its replica
		// hibernates must survive until the replica is restored.
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: -1}).DialContext,
		MaxIdleConns:        IdleConnsPerReplica,
		MaxIdleConnsPerHost: IdleConnsPerReplica,
		IdleConnTimeout:     IdleConnTimeout,
		DisableCompression:  true,
	})
	return tr.(*http.Transport)
}

// Idle keep-alive connections kept to each replica, and for how long.
const (
	IdleConnsPerReplica = 64
	IdleConnTimeout     = 30 * time.Second
)

// DropIdle closes the idle connections to a replica.
func (t *Transports) DropIdle(addr string) {
	if tr, ok := t.m.Load(addr); ok {
		tr.(*http.Transport).CloseIdleConnections()
	}
}

// Forget closes the idle connections to a replica that is gone and drops
// its transport.
func (t *Transports) Forget(addr string) {
	if tr, ok := t.m.LoadAndDelete(addr); ok {
		tr.(*http.Transport).CloseIdleConnections()
	}
}
