package handlers

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestWriteDirectMatchesOutgoing: a bodiless GET or HEAD written straight
// from the incoming request reads back as the outgoing request built for it
// and written by writeRequest.
func TestWriteDirectMatchesOutgoing(t *testing.T) {
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
		method, target, remote, host string
		h                            http.Header
	}{
		{"GET", "/function/f/a%2Fb/c?x=1&y=%20", "10.0.0.9:5555", "gw", http.Header{"Accept": {"text/plain", "*/*"}, "X-Custom": {"v"}, "User-Agent": {"curl/8"}, "X-Forwarded-For": {"1.2.3.4", "5.6.7.8"}}},
		{"HEAD", "/function/f", "10.0.0.9:5555", "gw", http.Header{"Connection": {"keep-alive, X-Hop"}, "X-Hop": {"gone"}, "Keep-Alive": {"timeout=5"}, "Te": {"trailers"}}},
		{"GET", "/function/f/", "10.0.0.9:5555", "", http.Header{"X-Forwarded-Host": {"kept"}, "X-Forwarded-Proto": {"https"}}},
		{"GET", "/function/f/", "not-an-address", "gw", http.Header{"X-Forwarded-For": {"kept"}}},
		{"GET", "/function/f/a%20b?q", "[::1]:80", "gw", http.Header{"Connection": {"X-Forwarded-For, X-Forwarded-Proto"}, "X-Forwarded-For": {"named"}, "X-Forwarded-Proto": {"named"}}},
		{"GET", "/function/f/é", "10.0.0.9:5555", "gw", http.Header{}},
	}
	for _, c := range cases {
		in := func() *http.Request {
			r := httptest.NewRequest(c.method, c.target, nil)
			r.RemoteAddr, r.Host, r.Header = c.remote, c.host, c.h.Clone()
			return r
		}
		path := strings.TrimPrefix(in().URL.EscapedPath(), "/function/f")
		if !directRequest(in()) {
			t.Fatalf("%s %s: not direct", c.method, c.target)
		}
		fast := read(func(bw *bufio.Writer) error { return writeDirect(bw, in(), "10.1.2.3:8080", path) })
		std := read(func(bw *bufio.Writer) error {
			return writeRequest(bw, (&Forwarder{}).outgoing(in(), "10.1.2.3:8080", path))
		})
		if fast.Method != std.Method || fast.RequestURI != std.RequestURI || fast.Host != std.Host || fast.ContentLength != std.ContentLength {
			t.Errorf("%s %s: direct %s %s %s %d, outgoing %s %s %s %d", c.method, c.target,
				fast.Method, fast.RequestURI, fast.Host, fast.ContentLength, std.Method, std.RequestURI, std.Host, std.ContentLength)
		}
		if fmt.Sprint(fast.Header) != fmt.Sprint(std.Header) {
			t.Errorf("%s %s: headers\n%v\nwant\n%v", c.method, c.target, fast.Header, std.Header)
		}
	}
}

// TestReadPlainHead: a plain head is parsed into the same end-to-end
// headers and status http.ReadResponse and copyEndToEnd give; any other
// is left unread for http.ReadResponse.
func TestReadPlainHead(t *testing.T) {
	cases := []struct {
		name, head string
		plain      bool
	}{
		{"fixture", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 19\r\nDate: x\r\n\r\n", true},
		{"no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", true},
		{"hop headers dropped", "HTTP/1.1 500 Oops\r\nKeep-Alive: timeout=5\r\nX-Call-Id: 1\r\nContent-Length: 3\r\nX-Empty:\r\n\r\n", true},
		{"spaces around a value", "HTTP/1.1 200 OK\r\nX-A:   v  \r\nContent-Length: 1\r\n\r\n", true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false},
		{"no length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", false},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", false},
		{"repeated name", "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n", false},
		{"name not canonical", "HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n", false},
		{"connection", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n", false},
		{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false},
		{"no content", "HTTP/1.1 204 No Content\r\n\r\n", false},
		{"continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", false},
		{"folded", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 1\r\n\r\n", false},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := "abc"
			br := bufio.NewReader(strings.NewReader(c.head + body))
			got := http.Header{}
			status, length, plain, err := readPlainHead(br, got)
			if err != nil || plain != c.plain {
				t.Fatalf("plain %v, err %v; want plain %v", plain, err, c.plain)
			}
			if !plain {
				if len(got) != 0 || br.Buffered() != len(c.head)+len(body) {
					t.Fatalf("not plain, yet it read or wrote: %v, %d buffered", got, br.Buffered())
				}
				return
			}
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(c.head+body)), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := http.Header{}
			copyEndToEnd(want, resp.Header)
			if status != resp.StatusCode || length != resp.ContentLength || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %d %d %v, want %d %d %v", status, length, got, resp.StatusCode, resp.ContentLength, want)
			}
			if rest, _ := br.Peek(br.Buffered()); string(rest) != body {
				t.Errorf("left %q after the head, want the body", rest)
			}
		})
	}
}

// A head split over several reads is read whole; one longer than the
// connection's buffer is left whole to http.ReadResponse.
func TestReadPlainHeadAcrossReads(t *testing.T) {
	head := "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 3000) + "\r\nContent-Length: 0\r\n\r\n"
	br := bufio.NewReaderSize(&slowReader{s: head, n: 100}, 16<<10)
	h := http.Header{}
	if _, _, plain, err := readPlainHead(br, h); err != nil || !plain || len(h["X-Long"][0]) != 3000 {
		t.Fatalf("plain %v err %v", plain, err)
	}
	huge := "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 20<<10) + "\r\nContent-Length: 0\r\n\r\n"
	br = bufio.NewReaderSize(strings.NewReader(huge), 16<<10)
	if _, _, plain, err := readPlainHead(br, http.Header{}); err != nil || plain {
		t.Fatalf("a head longer than the buffer: plain %v err %v", plain, err)
	}
	if resp, err := http.ReadResponse(br, nil); err != nil || len(resp.Header.Get("X-Long")) != 20<<10 {
		t.Fatalf("left for http.ReadResponse: %v", err)
	}
}

type slowReader struct {
	s string
	n int
}

func (r *slowReader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, fmt.Errorf("EOF")
	}
	n := copy(p[:min(len(p), r.n)], r.s)
	r.s = r.s[n:]
	return n, nil
}
