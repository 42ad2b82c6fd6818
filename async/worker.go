package async

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var urlParse = url.Parse

// work takes calls from the stream, at most Window at once, until ctx ends.
// A stop waits for the calls it runs (see engine.running), not for a fetch
// that waits for the next call.
func (q *Queue) work(ctx context.Context, e *engine, cons jetstream.Consumer) {
	window := make(chan struct{}, q.cfg.Window)
	for {
		select {
		case window <- struct{}{}:
		case <-ctx.Done():
			return
		}
		var msg jetstream.Msg
		for msg == nil {
			m, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				if !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
					log.Printf("async: taking a call: %v", err)
					time.Sleep(time.Second)
				}
				continue
			}
			msg = m
		}
		e.running.Add(1)
		go func() {
			defer func() { <-window; e.running.Done() }()
			q.handle(ctx, msg)
		}()
	}
}

// handle runs one delivery of a call: run it, then either schedule a retry
// or post its answer and acknowledge it. A call cut short by the provider's
// stop is left unacknowledged, to run again at the next start.
func (q *Queue) handle(ctx context.Context, msg jetstream.Msg) {
	var c call
	if err := json.Unmarshal([]byte(msg.Headers().Get(callHeader)), &c); err != nil {
		// Nothing can run it, ever: drop it rather than loop on it.
		log.Printf("async: dropping an unreadable call on %s: %v", msg.Subject(), err)
		_ = msg.Term()
		return
	}
	attempt := uint64(1)
	if md, err := msg.Metadata(); err == nil {
		attempt = md.NumDelivered
	}
	alive := func() { _ = msg.InProgress() }
	res, took, err := q.try(ctx, c, msg.Data(), alive)
	if err != nil {
		return // stopping
	}
	if retryable(res.code) && attempt < uint64(q.cfg.MaxAttempts) {
		delay := q.backoff(int(attempt))
		log.Printf("async: %s (call %s): %d, try %d of %d, next in %s", c.Function, c.ID, res.code, attempt, q.cfg.MaxAttempts, delay)
		q.metrics.retries.WithLabelValues(strconv.Itoa(res.code)).Inc()
		_ = msg.NakWithDelay(delay)
		return
	}
	result := "done"
	if res.code >= 400 {
		result = "failed"
	}
	if c.CallbackURL != "" {
		if _, err := q.keepAlive(ctx, alive, func(ctx context.Context) (*recorder, error) {
			return nil, q.postResult(ctx, c, res, took)
		}); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Printf("async: %s (call %s): callback %s: %v", c.Function, c.ID, c.CallbackURL, err)
			result = "callback_failed"
		}
	}
	// Acknowledged once the answer is out: a crash before this line runs
	// the call again (at least once).
	ackCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := msg.DoubleAck(ackCtx); err != nil {
		log.Printf("async: %s (call %s): acknowledge: %v", c.Function, c.ID, err)
	}
	q.metrics.calls.WithLabelValues(result).Inc()
}

// try runs the call once, in its function's turn (one of its in-flight
// slots), and returns the answer and how long the run took. In a fleet,
// while the function's box is down, or when the fleet could not reach it,
// the call waits and runs again, with no try counted: the function did not
// answer.
func (q *Queue) try(ctx context.Context, c call, body []byte, alive func()) (*recorder, time.Duration, error) {
	for {
		if err := q.awaitBox(ctx, c.Function, alive); err != nil {
			return nil, 0, err
		}
		release, err := q.slot(ctx, c.Function, alive)
		if err != nil {
			return nil, 0, err
		}
		q.metrics.inflightN.Add(1)
		started := time.Now()
		res, err := q.keepAlive(ctx, alive, func(ctx context.Context) (*recorder, error) { return q.invoke(ctx, c, body) })
		took := time.Since(started)
		q.metrics.inflightN.Add(-1)
		release()
		if err != nil || q.cfg.Cluster == nil || !q.cfg.Cluster.Wait(ctx, c.Function, res.header) {
			return res, took, err
		}
		log.Printf("async: %s (call %s): its box could not be reached (%d): waiting", c.Function, c.ID, res.code)
		if err := q.pause(ctx, time.Second, alive); err != nil {
			return nil, 0, err
		}
	}
}

// keepAlive runs f while telling the server the call is still being
// worked on, so that it is not handed out twice.
func (q *Queue) keepAlive(ctx context.Context, alive func(), f func(context.Context) (*recorder, error)) (*recorder, error) {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(q.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				alive()
			case <-stop:
				return
			}
		}
	}()
	return f(ctx)
}

func retryable(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// backoff is the delay after the attempt-th try: RetryBase doubled each
// time, at most RetryMax.
func (q *Queue) backoff(attempt int) time.Duration {
	d := q.cfg.RetryBase
	for i := 1; i < attempt && d < q.cfg.RetryMax; i++ {
		d *= 2
	}
	return min(d, q.cfg.RetryMax)
}

// invoke runs one try of the call through the provider's invoke handler.
// Only the provider's stop is an error; every other failure is an answer.
func (q *Queue) invoke(ctx context.Context, c call, body []byte) (*recorder, error) {
	target := "/function/" + c.Function + c.Path
	if c.RawQuery != "" {
		target += "?" + c.RawQuery
	}
	tctx, cancel := context.WithTimeout(ctx, q.cfg.CallTimeout)
	defer cancel()
	r, err := http.NewRequestWithContext(tctx, c.Method, target, bytes.NewReader(body))
	if err != nil {
		return &recorder{code: http.StatusBadRequest, header: http.Header{}, body: *bytes.NewBufferString(err.Error())}, nil
	}
	r.RequestURI = target
	r.Header = c.Header.Clone()
	if r.Header == nil {
		r.Header = http.Header{}
	}
	r.Host, r.RemoteAddr = c.Host, c.RemoteAddr
	rec := &recorder{header: http.Header{}}
	q.inv.ServeHTTP(rec, r)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if rec.code == 0 {
		// Nothing written: 200 as net/http would answer, unless the try
		// ran out of time.
		rec.code = http.StatusOK
		if tctx.Err() != nil {
			rec.code = http.StatusGatewayTimeout
		}
	}
	return rec, nil
}

// postResult posts the function's answer to the callback, with its headers
// and those OpenFaaS's queue-worker sets. A callback that cannot be
// reached, or answers 429 or 5xx, is tried again a few times.
func (q *Queue) postResult(ctx context.Context, c call, res *recorder, took time.Duration) error {
	var err error
	for try := 1; try <= 3; try++ {
		if err = q.postOnce(ctx, c, res, took); err == nil {
			return nil
		}
		select {
		case <-time.After(q.backoff(try)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (q *Queue) postOnce(ctx context.Context, c call, res *recorder, took time.Duration) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.CallbackURL, bytes.NewReader(res.body.Bytes()))
	if err != nil {
		return fmt.Errorf("callback request: %w", err)
	}
	for k, v := range res.header {
		req.Header[k] = append([]string(nil), v...)
	}
	req.Header.Set("X-Call-Id", c.ID)
	req.Header.Set("X-Function-Status", strconv.Itoa(res.code))
	req.Header.Set("X-Duration-Seconds", fmt.Sprintf("%f", took.Seconds()))
	req.Header.Set("X-Function-Name", c.Function)
	resp, err := q.client.Do(req)
	if err != nil {
		return fmt.Errorf("post the result: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		return fmt.Errorf("post the result: the callback answered %d", resp.StatusCode)
	}
	return nil
}

// recorder keeps a function's answer for its callback.
type recorder struct {
	code   int
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(b)
}

// Flush lets streamed answers through the provider's forwarder; they are
// posted whole.
func (r *recorder) Flush() {}
