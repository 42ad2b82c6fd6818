package handlers

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// rawBackend answers every request on its connections with a fixed small
// answer, parsing only up to the blank line: a replica that costs next to
// nothing, so that a benchmark of the proxy measures the proxy.
func rawBackend(tb testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 19\r\n\r\nhello from fixture\n")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadSlice('\n')
					if err != nil {
						return
					}
					if len(bytes.TrimSpace(line)) == 0 {
						if _, err := c.Write(answer); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// sinkWriter is a ResponseWriter that keeps nothing but the headers.
type sinkWriter struct {
	h    http.Header
	code int
	n    int
}

func (s *sinkWriter) Header() http.Header         { return s.h }
func (s *sinkWriter) WriteHeader(code int)        { s.code = code }
func (s *sinkWriter) Write(b []byte) (int, error) { s.n += len(b); return len(b), nil }

// BenchmarkProxyServe is one invocation through the proxy's plain path, the
// caller's side in process: its allocations are the proxy's.
func BenchmarkProxyServe(b *testing.B) {
	inv := &fakeInvoker{addr: rawBackend(b)}
	px := NewProxy(inv, &Transports{})
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:8080/function/f/", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("User-Agent", "Go-http-client/1.1")
	req.Header.Set("Accept-Encoding", "gzip")
	w := &sinkWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		clear(w.h)
		px.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			b.Fatalf("status %d", w.code)
		}
	}
	if !strings.Contains(w.h.Get("Content-Type"), "text/plain") {
		b.Fatalf("headers %v", w.h)
	}
}

// TestProxyAllocatesNoCopyBufferPerRequest: copying an answer through a
// ResponseWriter without ReadFrom (the metrics wrapper's) allocated a
// 32 KiB buffer per request; the buffers are now pooled.
func TestProxyAllocatesNoCopyBufferPerRequest(t *testing.T) {
	inv := &fakeInvoker{addr: rawBackend(t)}
	px := NewProxy(inv, &Transports{})
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:8080/function/f/", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	w := &sinkWriter{h: http.Header{}}
	serve := func() {
		clear(w.h)
		px.ServeHTTP(w, req)
		if w.code != http.StatusOK {
			t.Fatalf("status %d", w.code)
		}
	}
	for range 10 {
		serve() // connections and pools warmed
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		serve()
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 16<<10 {
		t.Fatalf("%d bytes allocated per proxied request, want under 16 KiB (no copy buffer per request)", per)
	}
}

// noReadFrom hides the ResponseWriter's ReadFrom, as the metrics wrapper
// does, so the proxy copies through its own buffers.
type noReadFrom struct{ http.ResponseWriter }

// TestProxyCopiesLargeAndStreamedAnswersThroughPooledBuffers: answers
// larger than a buffer, with a length or streamed, arrive whole, also when
// requests run at once and share the pool.
func TestProxyCopiesLargeAndStreamedAnswersThroughPooledBuffers(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 20000) // 320 kB
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stream" {
			for i := range 50 {
				fmt.Fprintf(w, "%s-%d\n", big[:10000], i)
				w.(http.Flusher).Flush()
			}
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(big)))
		io.WriteString(w, big)
	}))
	defer backend.Close()
	px := NewProxy(&fakeInvoker{addr: strings.TrimPrefix(backend.URL, "http://")}, &Transports{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		px.ServeHTTP(noReadFrom{w}, r)
	}))
	defer srv.Close()
	var want strings.Builder
	for i := range 50 {
		fmt.Fprintf(&want, "%s-%d\n", big[:10000], i)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path, exp := "/function/f/", big
			if i%2 == 1 {
				path, exp = "/function/f/stream", want.String()
			}
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != exp {
				t.Errorf("%s: %d bytes, want %d, equal %v", path, len(b), len(exp), string(b) == exp)
			}
		}()
	}
	wg.Wait()
}

// TestWriteRequestMatchesRequestWrite: the one-pass writing of a bodiless
// GET or HEAD reads back as the request Request.Write sends, and every
// other request is written by Request.Write itself.
func TestWriteRequestMatchesRequestWrite(t *testing.T) {
	mk := func(method, target string, h http.Header) *http.Request {
		in := httptest.NewRequest(method, target, nil)
		in.RemoteAddr = "10.0.0.9:5555"
		in.Header = h
		return (&Forwarder{}).outgoing(in, "10.1.2.3:8080", strings.TrimPrefix(in.URL.EscapedPath(), "/function/f"))
	}
	read := func(write func(*bufio.Writer) error) *http.Request {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		if err := write(bw); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		r, err := http.ReadRequest(bufio.NewReader(&buf))
		if err != nil {
			t.Fatalf("%v: %q", err, buf.String())
		}
		return r
	}
	cases := []struct {
		method, target string
		h              http.Header
	}{
		{"GET", "/function/f/a%2Fb/c?x=1&y=%20", http.Header{"Accept": {"text/plain", "*/*"}, "X-Custom": {"v"}, "User-Agent": {"curl/8"}, "X-Forwarded-For": {"1.2.3.4"}}},
		{"HEAD", "/function/f", http.Header{"Connection": {"keep-alive, X-Hop"}, "X-Hop": {"gone"}, "Keep-Alive": {"timeout=5"}}},
		{"GET", "/function/f/", http.Header{}},
	}
	for _, c := range cases {
		fast := read(func(bw *bufio.Writer) error { return writeRequest(bw, mk(c.method, c.target, c.h.Clone())) })
		std := read(func(bw *bufio.Writer) error { return mk(c.method, c.target, c.h.Clone()).Write(bw) })
		if fast.Method != std.Method || fast.RequestURI != std.RequestURI || fast.Host != std.Host || fast.ContentLength != std.ContentLength {
			t.Errorf("%s %s: fast %s %s %s %d, Request.Write %s %s %s %d", c.method, c.target,
				fast.Method, fast.RequestURI, fast.Host, fast.ContentLength, std.Method, std.RequestURI, std.Host, std.ContentLength)
		}
		if fmt.Sprint(fast.Header) != fmt.Sprint(std.Header) {
			t.Errorf("%s %s: headers\n%v\nwant\n%v", c.method, c.target, fast.Header, std.Header)
		}
	}
	// A body, or a value Request.Write would rewrite: Request.Write.
	for _, out := range []*http.Request{
		func() *http.Request {
			r := mk("POST", "/function/f", http.Header{})
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader("hi")), 2
			return r
		}(),
		mk("GET", "/function/f", http.Header{"X-Odd": {" padded "}}),
	} {
		var fast, std bytes.Buffer
		fw, sw := bufio.NewWriter(&fast), bufio.NewWriter(&std)
		if err := writeRequest(fw, out); err != nil {
			t.Fatal(err)
		}
		if out.ContentLength > 0 {
			out.Body = io.NopCloser(strings.NewReader("hi"))
		}
		if err := out.Write(sw); err != nil {
			t.Fatal(err)
		}
		fw.Flush()
		sw.Flush()
		if fast.String() != std.String() {
			t.Errorf("%s: %q, want Request.Write's %q", out.Method, fast.String(), std.String())
		}
	}
}
