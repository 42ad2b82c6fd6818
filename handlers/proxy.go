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
	tr.sweepIdle()
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
			http.Error(w, "cannot reach the function: "+err.Error(), code)
		},
	}
	return p
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

// ServeHTTP handles one invocation of /function/NAME[.NAMESPACE][/path].
// The name is read from the path itself, so the route can be a plain
// prefix, matched before gorilla/mux's regular expressions.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/function/")
	full, _, _ := strings.Cut(rest, "/")
	if !ok || full == "" {
		writeError(w, r, badRequest("provide the function name in the path: /function/NAME"))
		return
	}
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
	if upgrades(r) {
		ctx := context.WithValue(r.Context(), targetKey{}, target{addr: addr, path: path})
		p.rp.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	if err := p.transports.fwd.Forward(w, r, addr, path); err != nil {
		p.rp.ErrorHandler(w, r, err)
	}
}

// upgrades reports requests that leave HTTP request/response: protocol
// upgrades (websockets) and event streams, which ReverseProxy carries.
func upgrades(r *http.Request) bool {
	return r.Header.Get("Upgrade") != "" || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

func unescapePath(p string) string {
	u, err := url.PathUnescape(p)
	if err != nil {
		return p
	}
	return u
}

// Transports keeps the connections to replicas: the forwarder's pooled
// ones, and one HTTP transport per replica for ReverseProxy, so that the
// idle connections to one replica can be dropped on their own.
type Transports struct {
	m     sync.Map // addr -> *http.Transport
	fwd   Forwarder
	sweep sync.Once
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
	t.fwd.drop(addr)
	if tr, ok := t.m.Load(addr); ok {
		tr.(*http.Transport).CloseIdleConnections()
	}
}

// Forget closes the idle connections to a replica that is gone and drops
// its transport.
func (t *Transports) Forget(addr string) {
	t.fwd.drop(addr)
	if tr, ok := t.m.LoadAndDelete(addr); ok {
		tr.(*http.Transport).CloseIdleConnections()
	}
}

// sweepIdle closes the forwarder's connections idle for too long, every
// few seconds, from the first proxy made on.
func (t *Transports) sweepIdle() {
	t.sweep.Do(func() {
		go func() {
			for range time.Tick(IdleConnTimeout / 3) {
				t.fwd.sweep()
			}
		}()
	})
}
