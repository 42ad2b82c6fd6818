package provider

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/faas-criu/faas-criu/api"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/openfaas/faas-provider/logs"
)

// MaxLogLine bounds one log line; longer lines are split.
const MaxLogLine = 64 << 10

// Query streams a function's log lines from every one of its containers,
// as faas-provider's log handler expects. With Follow it keeps streaming new
// lines until ctx ends.
func (p *Provider) Query(ctx context.Context, req logs.Request) (<-chan logs.Message, error) {
	if err := api.ValidateName(req.Name); err != nil {
		return nil, err
	}
	fn, err := p.lookup(req.Namespace, req.Name)
	if err != nil {
		return nil, err
	}
	found, err := p.listContainers(ctx, &fn.key)
	if err != nil {
		return nil, err
	}
	opts := LogsOptions{Follow: req.Follow}
	if req.Tail > 0 { // <=0 is unlimited, as faas-provider defines it
		opts.Tail = req.Tail
	}
	if req.Since != nil {
		opts.Since = *req.Since
	}

	out := make(chan logs.Message, 64)
	var wg sync.WaitGroup
	for _, r := range found[fn.key] {
		if r.id == "" || (req.Instance != "" && req.Instance != r.name) {
			continue
		}
		rc, err := p.engine.ContainerLogs(ctx, r.id, opts)
		if err != nil {
			slog.Error("read logs", "replica", r.name, "err", err)
			continue
		}
		wg.Add(1)
		go func(r *replica, rc io.ReadCloser) {
			defer wg.Done()
			defer rc.Close()
			// A line longer than MaxLogLine is passed on in pieces of at
			// most MaxLogLine bytes (each a message with the line's
			// timestamp), so one huge line neither ends the replica's
			// stream nor makes the provider buffer without bound.
			err := readLines(newPartialJoiner(rc), MaxLogLine, func(line string, cont bool, ts time.Time) (time.Time, bool) {
				msg := logs.Message{Name: fn.key.Name, Namespace: fn.key.Namespace, Instance: r.name}
				if cont {
					msg.Timestamp, msg.Text = ts, line
				} else {
					msg.Timestamp, msg.Text = splitTimestamp(line)
				}
				select {
				case out <- msg:
					return msg.Timestamp, true
				case <-ctx.Done():
					return msg.Timestamp, false
				}
			})
			if err != nil && ctx.Err() == nil {
				slog.Error("read logs", "replica", r.name, "err", err)
			}
		}(r, rc)
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out, nil
}

// readLines calls emit for each line of r without its newline. A line
// longer than max comes in pieces of max bytes; cont is true for every piece
// but the first, and ts is what emit returned for the line's first piece.
// It stops when emit returns false, at EOF (nil), or on a read error.
func readLines(r io.Reader, max int, emit func(line string, cont bool, ts time.Time) (time.Time, bool)) error {
	br := bufio.NewReaderSize(r, max)
	var ts time.Time
	cont := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			full := err == nil
			if full {
				chunk = chunk[:len(chunk)-1]
			}
			if !(full && cont && len(chunk) == 0) { // a piece ending right at the newline
				t, ok := emit(string(chunk), cont, ts)
				if !ok {
					return nil
				}
				if !cont {
					ts = t
				}
			}
			cont = !full
		}
		switch {
		case err == nil, err == bufio.ErrBufferFull:
		case err == io.EOF:
			return nil
		default:
			return fmt.Errorf("read log stream: %w", err)
		}
	}
}

// dockerPartialSize is the size of the entries Docker's json-file and local
// log drivers cut a long line into (the log copier's 16 KiB buffer). In a
// timestamped log stream each entry has its own timestamp, so a long line
// arrives with a timestamp every 16 KiB inside it.
const dockerPartialSize = 16 << 10

// partialJoiner removes the timestamps Docker puts inside a long line, at
// each dockerPartialSize bytes of its content, so that the line comes out
// whole: "TS1 <16 KiB>TS2 <rest>\n" reads as "TS1 <16 KiB><rest>\n".
type partialJoiner struct {
	br      *bufio.Reader
	atStart bool // the next bytes begin a line
	pass    int  // bytes of the line's own timestamp still to pass on
	n       int  // content bytes of the current entry so far
}

func newPartialJoiner(r io.Reader) *partialJoiner {
	return &partialJoiner{br: bufio.NewReaderSize(r, 64<<10), atStart: true}
}

// tsLen is the length of the RFC 3339 timestamp and space at the start of
// b, or 0.
func tsLen(b []byte) int {
	end := bytes.IndexByte(b, ' ')
	if end < len("2006-01-02T15:04:05Z") {
		return 0
	}
	if _, err := time.Parse(time.RFC3339Nano, string(b[:end])); err != nil {
		return 0
	}
	return end + 1
}

func (j *partialJoiner) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if j.atStart {
		j.atStart, j.pass, j.n = false, j.peekTimestamp(), 0
	}
	if j.pass > 0 { // the line's own timestamp passes on
		b, err := j.br.Peek(min(len(p), j.pass))
		n := copy(p, b)
		_, _ = j.br.Discard(n)
		j.pass -= n
		if n > 0 {
			err = nil
		}
		return n, err
	}
	if j.n == dockerPartialSize {
		// An entry ended without a newline: drop the next one's timestamp.
		if k := j.peekTimestamp(); k > 0 {
			_, _ = j.br.Discard(k)
		}
		j.n = 0
	}
	// What is here already, and at least a byte: a followed stream must
	// not wait for more.
	if _, err := j.br.Peek(1); err != nil {
		return 0, err
	}
	b, _ := j.br.Peek(min(len(p), dockerPartialSize-j.n, j.br.Buffered()))
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
		j.atStart = true
	}
	n := copy(p, b)
	_, _ = j.br.Discard(n)
	j.n += n
	return n, nil
}

// peekTimestamp is the length of the timestamp and space the stream starts
// with, or 0. It waits only for the timestamp's own bytes (Docker writes a
// timestamp and its entry together).
func (j *partialJoiner) peekTimestamp() int {
	const longest = len("2006-01-02T15:04:05.999999999+07:00 ")
	for want := 1; ; want = j.br.Buffered() + 1 {
		if _, err := j.br.Peek(min(want, longest)); err != nil {
			b, _ := j.br.Peek(j.br.Buffered())
			return tsLen(b)
		}
		// Everything here already, before waiting for one byte more.
		b, _ := j.br.Peek(min(j.br.Buffered(), longest))
		if bytes.IndexByte(b, ' ') >= 0 || len(b) >= longest {
			return tsLen(b)
		}
	}
}

// splitTimestamp separates the RFC 3339 timestamp Docker puts before each
// line.
func splitTimestamp(line string) (time.Time, string) {
	ts, text, ok := strings.Cut(line, " ")
	if ok {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			return t, text
		}
	}
	return time.Now().UTC(), line
}
