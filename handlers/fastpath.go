package handlers

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// The forwarder's fast paths, for most invocations: a bodiless GET or HEAD
// is written to the replica straight from the incoming request, and an
// answer with a plain head (HTTP/1.1, a Content-Length, no
// Transfer-Encoding, no Connection) is parsed straight into the caller's
// headers. Building an outgoing http.Request and its header map, and
// http.ReadResponse's Response, header map, strings and body readers, were
// over half of the proxy's allocations per request, and the garbage
// collector a fifth of its CPU. Anything else takes http.Request.Write and
// http.ReadResponse as before.

// directRequest reports whether r can be written by writeDirect.
func directRequest(r *http.Request) bool {
	return (r.Method == http.MethodGet || r.Method == http.MethodHead) &&
		(r.Body == nil || r.Body == http.NoBody) && r.ContentLength == 0 &&
		len(r.TransferEncoding) == 0 && len(r.Trailer) == 0 && plainHeader(r.Header)
}

// writeDirect writes to bw the request outgoing(r, addr, path) describes,
// the bytes writeRequest would write for it (header order aside), without
// building it.
func writeDirect(bw *bufio.Writer, r *http.Request, addr, path string) error {
	u := url.URL{Path: unescapePath(path), RawPath: path, RawQuery: r.URL.RawQuery}
	bw.WriteString(r.Method)
	bw.WriteByte(' ')
	bw.WriteString(u.RequestURI())
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(addr)
	bw.WriteString("\r\n")
	if _, ok := r.Header["User-Agent"]; !ok {
		bw.WriteString("User-Agent: Go-http-client/1.1\r\n") // as Request.Write
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	forFrom := err == nil
	named := connectionNamed(r.Header)
	for k, vs := range r.Header {
		switch {
		case hop(k) || named[k], k == "Host" || k == "Content-Length",
			k == "X-Forwarded-For" && forFrom, k == "X-Forwarded-Host" && r.Host != "":
			continue // replaced below, or not forwarded
		}
		for _, v := range vs {
			writeField(bw, k, v)
		}
	}
	if forFrom {
		bw.WriteString("X-Forwarded-For: ")
		if prior := r.Header["X-Forwarded-For"]; len(prior) > 0 { // as outgoing: even when Connection names it
			for _, p := range prior {
				bw.WriteString(p)
				bw.WriteString(", ")
			}
		}
		bw.WriteString(ip)
		bw.WriteString("\r\n")
	}
	if r.Host != "" {
		writeField(bw, "X-Forwarded-Host", r.Host)
	}
	if len(r.Header["X-Forwarded-Proto"]) == 0 || named["X-Forwarded-Proto"] {
		proto := "http"
		if r.TLS != nil {
			proto = "https"
		}
		writeField(bw, "X-Forwarded-Proto", proto)
	}
	_, err = bw.WriteString("\r\n")
	return err
}

func writeField(bw *bufio.Writer, k, v string) {
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// connectionNamed returns the headers the Connection header names (nil,
// without allocating, when there is none).
func connectionNamed(h http.Header) map[string]bool {
	var named map[string]bool
	for _, c := range h["Connection"] {
		for _, k := range strings.Split(c, ",") {
			if k = strings.TrimSpace(k); k != "" {
				if named == nil {
					named = map[string]bool{}
				}
				named[http.CanonicalHeaderKey(k)] = true
			}
		}
	}
	return named
}

// readPlainHead reads the answer's head from br into dst when it is plain:
// "HTTP/1.1 NNN" with a status from 200 to 599 but 204 and 304, canonical
// header names, one valid Content-Length, and no Transfer-Encoding,
// Trailer or Connection header. It returns ok false, having consumed
// nothing and touched nothing, for any other head; err is a failure to read.
func readPlainHead(br *bufio.Reader, dst http.Header) (status int, length int64, ok bool, err error) {
	head, err := peekHead(br)
	if err != nil || head == nil {
		return 0, 0, false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(head) < 14 || !bytes.HasPrefix(head, []byte("HTTP/1.1 ")) || head[12] != ' ' && head[12] != '\r' {
		return 0, 0, false, nil
	}
	status, cerr := strconv.Atoi(string(head[9:12]))
	if cerr != nil || status < 200 || status > 599 || status == 204 || status == 304 {
		return 0, 0, false, nil
	}
	fields, length, ok := plainFields(head)
	if !ok {
		return 0, 0, false, nil
	}
	s := string(head) // the head's one allocation: keys and values are its substrings
	vals := make([]string, 0, fields)
	line := strings.Index(s, "\r\n") + 2
	for line < len(s)-2 {
		end := line + strings.Index(s[line:], "\r\n")
		colon := line + strings.IndexByte(s[line:end], ':')
		k, v := s[line:colon], strings.Trim(s[colon+1:end], " \t")
		if !hop(k) {
			vals = append(vals, v) // within its capacity: no allocation
			dst[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
		line = end + 2
	}
	br.Discard(len(head))
	return status, length, true, nil
}

// peekHead returns the answer's head, up to and with its blank line,
// without consuming it; nil when it does not fit in br's buffer (it is left
// to http.ReadResponse).
func peekHead(br *bufio.Reader) ([]byte, error) {
	n := 1
	for {
		b, err := br.Peek(n)
		if err != nil {
			return nil, err
		}
		b, _ = br.Peek(br.Buffered())
		if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
			return b[:i+4], nil
		}
		if len(b) >= br.Size() {
			return nil, nil
		}
		n = len(b) + 1 // wait for more of the head
	}
}

// plainFields checks the header lines of head (after the status line) and
// returns how many there are and the Content-Length.
func plainFields(head []byte) (fields int, length int64, ok bool) {
	length = -1
	rest := head[bytes.Index(head, []byte("\r\n"))+2 : len(head)-2]
	for len(rest) > 0 {
		i := bytes.Index(rest, []byte("\r\n"))
		line := rest[:i]
		rest = rest[i+2:]
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !canonicalKey(line[:colon]) || bytes.IndexByte(line, '\n') >= 0 || bytes.IndexByte(line, '\r') >= 0 {
			return 0, 0, false
		}
		// A name given twice (its values joined by http.ReadResponse): rare,
		// and left to it. Names are canonical, so a byte search finds it
		// (or "Name:" inside an earlier value: left to it too).
		if seen := head[:len(head)-2-len(rest)-len(line)-2]; bytes.Contains(seen, line[:colon+1]) {
			return 0, 0, false
		}
		switch string(line[:colon]) {
		case "Transfer-Encoding", "Trailer", "Connection":
			return 0, 0, false
		case "Content-Length":
			n, err := strconv.ParseInt(string(bytes.Trim(line[colon+1:], " \t")), 10, 64)
			if length >= 0 || err != nil || n < 0 {
				return 0, 0, false // a second one, or not a length
			}
			length = n
		}
		fields++
	}
	return fields, length, length >= 0
}

// canonicalKey reports a header name already in the form net/http stores
// it: a token, upper case after each dash and at the start, lower case
// elsewhere.
func canonicalKey(k []byte) bool {
	upper := true
	for _, c := range k {
		switch {
		case c >= 'A' && c <= 'Z':
			if !upper {
				return false
			}
		case c >= 'a' && c <= 'z':
			if upper {
				return false
			}
		case c >= '0' && c <= '9':
		case c == '-':
			upper = true
			continue
		default:
			return false
		}
		upper = false
	}
	return len(k) > 0
}
