package handlers

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Forwarder sends plain HTTP/1.1 requests to replicas over pooled
// keep-alive connections, in the handler's own goroutine: no per-connection
// reader and writer goroutines, no hand-offs between them, which is most of
// what a proxied request costs beyond the system calls. Upgrades and event
// streams go through httputil.ReverseProxy instead.
type Forwarder struct {
	mu   sync.Mutex
	idle map[string][]*fconn // by replica address
}

type fconn struct {
	net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	used time.Time
	// lr reads a plain answer's body, and closer closes the connection
	// when the caller goes away: kept here, so that neither is allocated
	// per request.
	lr     io.LimitedReader
	closer func()
}

// hop reports the headers meaningful for one connection only, which are
// not forwarded (keys in canonical form, as net/http stores them).
func hop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// copyEndToEnd copies src's headers but the hop-by-hop ones and those the
// Connection header names into dst.
func copyEndToEnd(dst, src http.Header) {
	var named map[string]bool
	for _, c := range src["Connection"] {
		for _, k := range strings.Split(c, ",") {
			if k = strings.TrimSpace(k); k != "" {
				if named == nil {
					named = map[string]bool{}
				}
				named[http.CanonicalHeaderKey(k)] = true
			}
		}
	}
	for k, v := range src {
		if !hop(k) && !named[k] {
			dst[k] = v
		}
	}
}

// Forward sends r to the replica at addr, at path (escaped) with r's query,
// and copies the answer to w. It returns an error only when nothing was
// written to w yet.
func (f *Forwarder) Forward(w http.ResponseWriter, r *http.Request, addr, path string) error {
	x := exchange{f: f, w: w, r: r, addr: addr, path: path, direct: directRequest(r)}
	c, reused, err := f.get(r.Context(), addr)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(r.Context(), c.closer)
	defer func() { stop() }()

	err = x.roundTrip(c)
	if err != nil && reused && (r.Body == nil || r.Body == http.NoBody) {
		// An idle connection the replica had closed: once more, fresh.
		c.Close()
		if c, _, err = f.get(r.Context(), addr); err != nil {
			return err
		}
		stop()
		stop = context.AfterFunc(r.Context(), c.closer)
		err = x.roundTrip(c)
	}
	if err != nil {
		c.Close()
		return err
	}
	buf := copyBufs.Get().(*[]byte)
	ok := x.copyAnswer(c, *buf)
	copyBufs.Put(buf)
	if !ok || !stop() {
		c.Close()
		return nil
	}
	f.put(addr, c)
	return nil
}

// exchange is one request forwarded: sent straight from r (direct), or
// from the outgoing request built for it; the answer parsed straight into
// w's headers (plain), or by http.ReadResponse (resp).
type exchange struct {
	f      *Forwarder
	w      http.ResponseWriter
	r      *http.Request
	addr   string
	path   string
	direct bool
	out    *http.Request

	plain  bool
	status int
	length int64
	resp   *http.Response
}

// roundTrip writes the request and reads the answer's head (past 1xx
// answers).
func (x *exchange) roundTrip(c *fconn) error {
	var err error
	if x.direct {
		err = writeDirect(c.bw, x.r, x.addr, x.path)
	} else {
		if x.out == nil {
			x.out = x.f.outgoing(x.r, x.addr, x.path)
		}
		err = writeRequest(c.bw, x.out)
	}
	if err == nil {
		err = c.bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("send request: %w", err)
	}
	if x.direct {
		if x.status, x.length, x.plain, err = readPlainHead(c.br, x.w.Header()); err != nil {
			return fmt.Errorf("read answer: %w", err)
		}
		if x.plain {
			return nil
		}
		x.out = x.f.outgoing(x.r, x.addr, x.path) // for http.ReadResponse
	}
	for {
		resp, err := http.ReadResponse(c.br, x.out)
		if err != nil {
			return fmt.Errorf("read answer: %w", err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			x.resp = resp
			return nil
		}
		resp.Body.Close() // 100 Continue, 103 Early Hints: the answer follows
	}
}

// copyAnswer writes the answer's status, headers and body to w; it reports
// whether the connection may carry another request.
func (x *exchange) copyAnswer(c *fconn, buf []byte) bool {
	if x.plain {
		x.w.WriteHeader(x.status)
		if x.r.Method == http.MethodHead {
			return true
		}
		c.lr = io.LimitedReader{R: c.br, N: x.length}
		_, err := io.CopyBuffer(x.w, &c.lr, buf)
		return err == nil && c.lr.N == 0
	}
	resp := x.resp
	copyEndToEnd(x.w.Header(), resp.Header)
	x.w.WriteHeader(resp.StatusCode)
	var err error
	if resp.ContentLength == -1 && x.r.Method != http.MethodHead {
		err = copyFlushing(x.w, resp.Body, buf) // streamed: each piece as it comes
	} else {
		_, err = io.CopyBuffer(x.w, resp.Body, buf)
	}
	resp.Body.Close()
	return err == nil && !resp.Close && !x.out.Close
}

// outgoing builds the request sent to the replica: r's method, body and
// end-to-end headers, at path (escaped) with r's query, and the
// X-Forwarded-* headers. Only the fields Request.Write reads are set.
func (f *Forwarder) outgoing(r *http.Request, addr, path string) *http.Request {
	h := make(http.Header, len(r.Header)+3)
	copyEndToEnd(h, r.Header)
	if ip, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		h["X-Forwarded-For"] = []string{ip}
	}
	if r.Host != "" {
		h["X-Forwarded-Host"] = []string{r.Host}
	}
	if len(h["X-Forwarded-Proto"]) == 0 {
		proto := "http"
		if r.TLS != nil {
			proto = "https"
		}
		h["X-Forwarded-Proto"] = []string{proto}
	}
	return &http.Request{
		Method:           r.Method,
		URL:              &url.URL{Scheme: "http", Host: addr, Path: unescapePath(path), RawPath: path, RawQuery: r.URL.RawQuery},
		Proto:            "HTTP/1.1",
		ProtoMajor:       1,
		ProtoMinor:       1,
		Header:           h,
		Body:             r.Body,
		ContentLength:    r.ContentLength,
		TransferEncoding: r.TransferEncoding,
		Host:             addr,
		Trailer:          r.Trailer,
	}
}

// copyBufs holds the buffers answers are copied through. io.Copy would
// allocate 32 KiB per request whenever w hides http.response's ReadFrom (the
// metrics wrapper does): at 20,000 requests a second that was 94% of the
// proxy's allocated bytes, and the garbage collector's work with them.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// writeRequest writes out to bw. A GET or HEAD without a body, most
// invocations, is written here in one pass; Request.Write, which formats
// the request line with fmt, sorts the headers and sets up a body writer,
// took about a tenth of the proxy's CPU. It writes the same bytes but the
// order of the headers, and is used for everything else.
func writeRequest(bw *bufio.Writer, out *http.Request) error {
	if (out.Method != http.MethodGet && out.Method != http.MethodHead) ||
		(out.Body != nil && out.Body != http.NoBody) || out.ContentLength != 0 ||
		len(out.TransferEncoding) > 0 || len(out.Trailer) > 0 || !plainHeader(out.Header) {
		return out.Write(bw)
	}
	bw.WriteString(out.Method)
	bw.WriteByte(' ')
	bw.WriteString(out.URL.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(out.Host)
	bw.WriteString("\r\n")
	if _, ok := out.Header["User-Agent"]; !ok {
		bw.WriteString("User-Agent: Go-http-client/1.1\r\n") // as Request.Write
	}
	for k, vs := range out.Header {
		if k == "Host" || k == "Content-Length" || k == "Transfer-Encoding" || k == "Trailer" {
			continue // Request.Write's own, not the header map's
		}
		for _, v := range vs {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// plainHeader says that no header value holds a line break or surrounding
// space, which Request.Write would rewrite.
func plainHeader(h http.Header) bool {
	for _, vs := range h {
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n") || strings.TrimSpace(v) != v {
				return false
			}
		}
	}
	return true
}

func copyFlushing(w http.ResponseWriter, body io.Reader, buf []byte) error {
	rc := http.NewResponseController(w)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
			_ = rc.Flush()
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// get returns an idle connection to addr, or a new one.
func (f *Forwarder) get(ctx context.Context, addr string) (*fconn, bool, error) {
	f.mu.Lock()
	for list := f.idle[addr]; len(list) > 0; list = f.idle[addr] {
		c := list[len(list)-1]
		f.idle[addr] = list[:len(list)-1]
		if time.Since(c.used) < IdleConnTimeout {
			f.mu.Unlock()
			return c, true, nil
		}
		c.Close()
	}
	f.mu.Unlock()
	// No TCP keep-alive probes: a connection held open while its replica
	// hibernates must survive until the replica is restored.
	nc, err := (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: -1}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, fmt.Errorf("connect to replica: %w", err)
	}
	c := &fconn{Conn: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 8<<10)}
	c.closer = func() { c.Close() }
	return c, false, nil
}

func (f *Forwarder) put(addr string, c *fconn) {
	c.used = time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.idle == nil {
		f.idle = map[string][]*fconn{}
	}
	if len(f.idle[addr]) >= IdleConnsPerReplica {
		c.Close()
		return
	}
	f.idle[addr] = append(f.idle[addr], c)
}

// drop closes the idle connections to a replica.
func (f *Forwarder) drop(addr string) {
	f.mu.Lock()
	list := f.idle[addr]
	delete(f.idle, addr)
	f.mu.Unlock()
	for _, c := range list {
		c.Close()
	}
}

// sweep closes connections idle for longer than IdleConnTimeout.
func (f *Forwarder) sweep() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for addr, list := range f.idle {
		kept := list[:0]
		for _, c := range list {
			if time.Since(c.used) < IdleConnTimeout {
				kept = append(kept, c)
			} else {
				c.Close()
			}
		}
		if len(kept) == 0 {
			delete(f.idle, addr)
		} else {
			f.idle[addr] = kept
		}
	}
}
