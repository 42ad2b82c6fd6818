package provider

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/openfaas/faas-provider/logs"
)

// MaxLogLine bounds one log line; longer lines are split.
const MaxLogLine = 64 << 10

// Query streams a function's log lines from every one of its containers,
// as faas-provider's log handler expects. With Follow it keeps streaming new
// lines until ctx ends.
func (p *Provider) Query(ctx context.Context, req logs.Request) (<-chan logs.Message, error) {
	if err := ValidateName(req.Name); err != nil {
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
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: req.Follow}
	if req.Tail > 0 { // <=0 is unlimited, as faas-provider defines it
		opts.Tail = strconv.Itoa(req.Tail)
	}
	if req.Since != nil {
		opts.Since = req.Since.Format(time.RFC3339Nano)
	}

	out := make(chan logs.Message, 64)
	var wg sync.WaitGroup
	for _, r := range found[fn.key] {
		if r.id == "" || (req.Instance != "" && req.Instance != r.name) {
			continue
		}
		rc, err := p.docker.ContainerLogs(ctx, r.id, opts)
		if err != nil {
			log.Printf("logs of %s: %v", r.name, err)
			continue
		}
		wg.Add(1)
		go func(r *replica, rc io.ReadCloser) {
			defer wg.Done()
			defer rc.Close()
			pr, pw := io.Pipe()
			go func() {
				_, err := stdcopy.StdCopy(pw, pw, rc)
				pw.CloseWithError(err)
			}()
			// A line longer than MaxLogLine is passed on in pieces of at
			// most MaxLogLine bytes (each a message with the line's
			// timestamp), so one huge line neither ends the replica's
			// stream nor makes the provider buffer without bound.
			err := readLines(pr, MaxLogLine, func(line string, cont bool, ts time.Time) (time.Time, bool) {
				msg := logs.Message{Name: fn.key.name, Namespace: fn.key.ns, Instance: r.name}
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
				log.Printf("logs of %s: %v", r.name, err)
			}
			pr.Close()
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
