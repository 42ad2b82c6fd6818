package provider

import (
	"bufio"
	"context"
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
	if req.Tail < 0 {
		return nil, errorf(ErrInvalid, "tail must not be negative")
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
	if req.Tail > 0 {
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
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 4096), MaxLogLine)
			for sc.Scan() {
				msg := logs.Message{Name: fn.key.name, Namespace: fn.key.ns, Instance: r.name}
				msg.Timestamp, msg.Text = splitTimestamp(sc.Text())
				select {
				case out <- msg:
				case <-ctx.Done():
					pr.Close()
					return
				}
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
