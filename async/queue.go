// Package async runs OpenFaaS asynchronous invocations
// (POST /async-function/NAME) on one box: each call is stored on a NATS
// JetStream stream of an embedded server under the provider's state
// directory, run later through the provider's own invoke path, and its
// answer is posted to the caller's X-Callback-Url, as OpenFaaS's
// queue-worker does.
//
// Guarantee: at least once. A call is acknowledged (removed from the
// stream) only after it ran and its answer was posted, so a provider killed
// at any moment runs it again when it starts.
//
// In a fleet (Config.Cluster) the stream lives on the fleet's JetStream
// cluster instead, replicated, and every box takes calls from it (see
// cluster.go).
package async

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faas-criu/faas-criu/internal/natsstart"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Invoker runs one call the way a synchronous invocation runs: the
// provider's handler of /function/NAME[.NAMESPACE][/path], which wakes a
// sleeping function. The queue calls it with such a request.
type Invoker interface {
	ServeHTTP(w http.ResponseWriter, r *http.Request)
}

// Config bounds the queue. Zero values take the defaults below.
type Config struct {
	// Dir is where the embedded server stores the stream
	// (STATE_DIR/nats).
	Dir string
	// MaxInflight is the most calls of one function run at once.
	MaxInflight int
	// MaxAttempts is how many times a call answered 429, 502, 503 or 504
	// is tried in all before its last answer is posted to the callback.
	MaxAttempts int
	// RetryBase is the first retry's delay; each next one doubles, up to
	// RetryMax.
	RetryBase, RetryMax time.Duration
	// CallTimeout is the longest one try of a call may take (the
	// provider's write timeout).
	CallTimeout time.Duration
	// MaxBodyBytes is the largest request body accepted.
	MaxBodyBytes int64
	// MaxQueueBytes bounds the stream on disk: beyond it calls are refused
	// with 503 rather than accepted and lost.
	MaxQueueBytes int64
	// Window is the most calls taken from the stream at once (running,
	// waiting for their function's slot, or posting their answer).
	Window int
	// AckWait is how long the server waits for a sign of life from a
	// running call before it hands it out again. Running calls renew it
	// every AckWait/3.
	AckWait time.Duration
	// Cluster, when set, is the fleet this box belongs to: the stream is on
	// its JetStream, replicated, instead of on an embedded server of this
	// box's own (nil: one box).
	Cluster Cluster
}

// Defaults, documented in the README.
const (
	DefaultMaxInflight   = 4
	DefaultMaxAttempts   = 10
	DefaultRetryBase     = time.Second
	DefaultRetryMax      = time.Minute
	DefaultCallTimeout   = time.Minute
	DefaultMaxBodyBytes  = 4 << 20
	DefaultMaxQueueBytes = 1 << 30
	DefaultWindow        = 256
	DefaultAckWait       = 30 * time.Second
)

func (c *Config) defaults() {
	// NATS refuses a message over 64 MiB.
	c.MaxBodyBytes = min(c.MaxBodyBytes, 60<<20)
	set := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	set(&c.MaxInflight, DefaultMaxInflight)
	set(&c.MaxAttempts, DefaultMaxAttempts)
	set(&c.Window, DefaultWindow)
	setD(&c.RetryBase, DefaultRetryBase)
	setD(&c.RetryMax, DefaultRetryMax)
	setD(&c.CallTimeout, DefaultCallTimeout)
	setD(&c.AckWait, DefaultAckWait)
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
}

const (
	streamName   = "FAAS_CRIU_ASYNC"
	subjectBase  = "faas-criu.async."
	consumerName = "worker"
	// callHeader carries the call's description (all but its body, which
	// is the message's data) as one JSON value.
	callHeader = "Faas-Criu-Call"
)

// call is what is stored of one accepted invocation.
type call struct {
	ID          string      `json:"id"`
	Function    string      `json:"function"` // NAME or NAME.NAMESPACE, as requested
	Method      string      `json:"method"`
	Path        string      `json:"path"` // escaped, below the function
	RawQuery    string      `json:"query,omitempty"`
	Header      http.Header `json:"header,omitempty"`
	Host        string      `json:"host,omitempty"`
	RemoteAddr  string      `json:"remoteAddr,omitempty"`
	CallbackURL string      `json:"callbackUrl,omitempty"`
	Accepted    time.Time   `json:"accepted"`
}

// Queue accepts asynchronous calls and runs them.
type Queue struct {
	cfg     Config
	inv     Invoker
	client  *http.Client
	metrics *metrics

	mu     sync.Mutex
	eng    *engine // nil until the first call, or a recovery at start
	closed bool
	// publishing is held (shared) while a call is being stored, and
	// (exclusive) while an engine stops: the stop's look at the stream
	// sees every call accepted on it.
	publishing sync.RWMutex
	starts     atomic.Int32 // engines started, for tests

	slotsMu sync.Mutex
	slots   map[string]chan struct{} // function -> its in-flight slots
}

// engine is the embedded server, the in-process connection and the worker;
// in a fleet, the fleet's connection and the worker (srv is nil).
type engine struct {
	srv    *server.Server
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	cancel context.CancelFunc
	// running counts the calls being handled, which a stop waits for (they
	// end without acknowledging).
	running sync.WaitGroup
}

var errClosed = errors.New("async: the queue is closed")

// New returns a queue; nothing starts until Recover or the first call.
func New(cfg Config, inv Invoker) *Queue {
	cfg.defaults()
	return &Queue{
		cfg: cfg,
		inv: inv,
		// The callback is the caller's own service: no keep-alive pool to
		// hold for it.
		client:  &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		metrics: newMetrics(),
		slots:   map[string]chan struct{}{},
	}
}

// Recover starts the embedded server at the provider's start when an
// earlier run left a stream, so that calls accepted before a crash run
// again. A stream with nothing left is closed again: a provider that no
// longer gets async calls keeps its footprint.
func (q *Queue) Recover() error {
	if q.cfg.Cluster != nil {
		// The fleet's calls wait for every box: start as soon as this box
		// has joined.
		go q.startWhenJoined()
		return nil
	}
	if _, err := os.Stat(q.cfg.Dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if _, err := os.Stat(filepath.Join(q.cfg.Dir, emptyMark)); err == nil {
		return nil // the last stop left nothing to run
	}
	e, err := q.engine()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := e.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("async: stream info: %w", err)
	}
	if info.State.Msgs > 0 {
		log.Printf("async: %d call(s) accepted before the last stop: running them", info.State.Msgs)
		return nil
	}
	q.mu.Lock()
	idle := q.eng == e
	if idle {
		q.eng = nil
	}
	q.mu.Unlock()
	if idle {
		q.shutdown(e)
	}
	return nil
}

// emptyMark, in the store, says that the server was stopped with nothing
// left to run: the next start need not start it to find out. Any start of
// the server removes it first.
const emptyMark = "stopped-empty"

// Close stops the worker and the server. Calls running now are not
// acknowledged: they run again at the next start.
func (q *Queue) Close() {
	q.mu.Lock()
	e := q.eng
	q.eng, q.closed = nil, true
	q.mu.Unlock()
	if e != nil {
		q.shutdown(e)
	}
}

// shutdown stops an engine no longer in q.eng, once the calls being stored
// on it are stored, and marks the store empty when it is.
func (q *Queue) shutdown(e *engine) {
	q.publishing.Lock()
	defer q.publishing.Unlock()
	if e.srv == nil {
		e.stop() // the fleet's stream: nothing of this box's to mark
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	info, err := e.stream.Info(ctx)
	cancel()
	e.stop()
	if err == nil && info.State.Msgs == 0 {
		if err := os.WriteFile(filepath.Join(q.cfg.Dir, emptyMark), nil, 0o600); err != nil {
			log.Printf("async: %v", err)
		}
	}
}

// engine returns the running engine, starting it on first use.
func (q *Queue) engine() (*engine, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, errClosed
	}
	if q.eng != nil {
		return q.eng, nil
	}
	if q.cfg.Cluster != nil {
		// Started by startWhenJoined alone: a cluster without quorum can
		// take long to open the stream, and calls must not queue behind
		// it holding q.mu.
		return nil, errNotJoined
	}
	e, err := q.start()
	if err != nil {
		return nil, err
	}
	q.eng = e
	return e, nil
}

func (q *Queue) start() (*engine, error) {
	e, replicas, err := q.connect()
	if err != nil {
		return nil, err
	}
	cons, err := q.openStream(e, replicas)
	if err != nil {
		e.stop()
		return nil, err
	}
	wctx, wcancel := context.WithCancel(context.Background())
	e.cancel = wcancel
	go q.work(wctx, e, cons)
	return e, nil
}

// connect returns an engine connected to the stream's server: the fleet's
// cluster, or an embedded server of this box's own started now.
func (q *Queue) connect() (*engine, int, error) {
	if q.cfg.Cluster != nil {
		return q.connectCluster()
	}
	if err := q.prepareStore(); err != nil {
		return nil, 0, fmt.Errorf("async: %w", err)
	}
	q.starts.Add(1)
	srv, err := q.startServer()
	if err != nil {
		return nil, 0, err
	}
	e := &engine{srv: srv}
	if e.nc, err = nats.Connect("", nats.InProcessServer(srv), nats.Name("faas-criu"), nats.MaxReconnects(-1)); err != nil {
		e.stop()
		return nil, 0, fmt.Errorf("async: connect to the embedded server: %w", err)
	}
	log.Printf("async: embedded NATS JetStream started (store %s)", q.cfg.Dir)
	return e, 1, nil
}

// prepareStore makes the store directory and removes the empty mark before
// anything can be accepted: a mark left behind would hide the calls
// accepted from now on from a start after a crash.
func (q *Queue) prepareStore() error {
	if err := os.MkdirAll(q.cfg.Dir, 0o700); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(q.cfg.Dir, emptyMark)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(q.cfg.Dir)
}

// startServer starts the embedded NATS server with JetStream on the store.
func (q *Queue) startServer() (*server.Server, error) {
	opts := &server.Options{
		ServerName: "faas-criu",
		// No port at all: the provider is the only client, in process.
		DontListen: true,
		JetStream:  true,
		StoreDir:   q.cfg.Dir,
		// Written to disk before the 202: a power cut loses no accepted
		// call either (SIGKILL alone would not need it).
		SyncAlways:         true,
		JetStreamMaxStore:  q.cfg.MaxQueueBytes + 64<<20,
		JetStreamMaxMemory: 16 << 20,
		MaxPayload:         int32(q.cfg.MaxBodyBytes + 256<<10),
		NoSigs:             true,
		NoLog:              true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("async: embedded NATS server: %w", err)
	}
	// The server's own reason, at once: with NoLog a store it cannot use
	// was otherwise a silent wait, then an error without a cause.
	if err := natsstart.Start(srv, startWait); err != nil {
		if errors.Is(err, natsstart.ErrTimeout) {
			return nil, fmt.Errorf("async: the embedded NATS server (store %s) did not start within %s", q.cfg.Dir, startWait)
		}
		return nil, fmt.Errorf("async: the embedded NATS server (store %s) did not start: %w", q.cfg.Dir, err)
	}
	return srv, nil
}

// startWait bounds the embedded server's start.
const startWait = 30 * time.Second

// openStream returns the consumer of the calls stream, both created (or
// updated) as this configuration says, the stream with replicas copies.
func (q *Queue) openStream(e *engine, replicas int) (jetstream.Consumer, error) {
	var err error
	if e.js, err = jetstream.New(e.nc); err != nil {
		return nil, fmt.Errorf("async: jetstream: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	scfg := jetstream.StreamConfig{
		Name:        streamName,
		Description: "faas-criu asynchronous invocations",
		Subjects:    []string{subjectBase + ">"},
		// A call leaves the stream when it is acknowledged.
		Retention:  jetstream.WorkQueuePolicy,
		Storage:    jetstream.FileStorage,
		Replicas:   replicas,
		MaxBytes:   q.cfg.MaxQueueBytes,
		MaxMsgSize: int32(q.cfg.MaxBodyBytes + 128<<10),
		// A full queue refuses new calls; it never drops accepted ones.
		Discard: jetstream.DiscardNew,
	}
	ccfg := jetstream.ConsumerConfig{
		Durable:       consumerName,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       q.cfg.AckWait,
		MaxAckPending: q.cfg.Window,
		// Retries are counted and delayed by the worker (NakWithDelay).
		MaxDeliver: -1,
	}
	if e.srv == nil {
		// In a fleet one try is short, and startWhenJoined tries again: a
		// box back from a restart joins at once (its lease is its own
		// again) while the cluster still catches up, and a request then
		// may wait on a stream with no leader yet (seen: over 30 s).
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		return openShared(sctx, e, scfg, ccfg)
	}
	if e.stream, err = e.js.CreateOrUpdateStream(ctx, scfg); err != nil {
		return nil, fmt.Errorf("async: stream %s: %w", streamName, err)
	}
	// On one box the only consumer is this process. Calls a previous
	// process had taken and not finished are still in the stream (a work
	// queue keeps what is not acknowledged): a fresh consumer hands them
	// out at once, instead of after their ack wait.
	if err := e.js.DeleteConsumer(ctx, streamName, consumerName); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("async: reset consumer: %w", err)
	}
	cons, err := e.js.CreateConsumer(ctx, streamName, ccfg)
	if err != nil {
		return nil, fmt.Errorf("async: consumer: %w", err)
	}
	return cons, nil
}

// stop ends the worker and its calls (unacknowledged), then the server.
func (e *engine) stop() {
	if e.cancel != nil {
		e.cancel()
	}
	e.running.Wait()
	if e.srv == nil {
		return // the fleet's connection: the fleet closes it
	}
	if e.nc != nil {
		e.nc.Close()
	}
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// ServeHTTP accepts POST /async-function/NAME[.NAMESPACE][/path]: 202
// with X-Call-Id once the call is stored.
func (q *Queue) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/async-function/")
	full, _, _ := strings.Cut(rest, "/")
	if !ok || full == "" || !validFunction(full) {
		http.Error(w, "provide the function name in the path: /async-function/NAME[.NAMESPACE]", http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost {
		// As in OpenFaaS: an asynchronous call is a POST (its method is
		// still passed on).
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "asynchronous invocations are POSTed", http.StatusMethodNotAllowed)
		return
	}
	c := call{
		ID:          r.Header.Get("X-Call-Id"),
		Function:    full,
		Method:      r.Method,
		Path:        strings.TrimPrefix(rest, full),
		RawQuery:    r.URL.RawQuery,
		Header:      r.Header.Clone(),
		Host:        r.Host,
		RemoteAddr:  r.RemoteAddr,
		CallbackURL: r.Header.Get("X-Callback-Url"),
		Accepted:    time.Now().UTC(),
	}
	if c.CallbackURL != "" {
		u, err := parseCallback(c.CallbackURL)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.CallbackURL = u
	}
	if c.ID == "" {
		c.ID = newID()
		c.Header.Set("X-Call-Id", c.ID)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, q.cfg.MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, fmt.Sprintf("the body exceeds the asynchronous limit of %d bytes", q.cfg.MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if err := q.enqueue(r.Context(), c, body); err != nil {
		// The error can name the store's directory (a server that did not
		// start) or be the server's own: the log keeps it, the caller is
		// told why in general terms.
		slog.Error("async: call not queued", "function", full, "err", err)
		// Not joined yet, no quorum, or a full queue: nothing was
		// accepted, and the caller may try again.
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the call was not queued: "+refusal(err), http.StatusServiceUnavailable)
		return
	}
	q.metrics.accepted.Inc()
	w.Header().Set("X-Call-Id", c.ID)
	w.Header().Set("X-Start-Time", fmt.Sprint(c.Accepted.UnixNano()))
	w.WriteHeader(http.StatusAccepted)
}

// refusal is what the caller of a call not queued is told: the reason,
// without the error's server-side detail.
func refusal(err error) string {
	var apiErr *jetstream.APIError
	switch {
	case errors.Is(err, errNotJoined), errors.Is(err, errClosed):
		// The queue's own words, with nothing of the server's in them.
		return strings.TrimPrefix(err.Error(), "async: ")
	case errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.ErrorCode(server.JSStreamStoreFailedF) &&
		strings.Contains(apiErr.Description, server.ErrMaxBytes.Error()):
		// The stream's MaxBytes (MaxQueueBytes) reached: DiscardNew refuses.
		return "the queue is full; try again later"
	}
	return "the asynchronous queue is unavailable; try again (the provider's log has the cause)"
}

// enqueue stores the call and returns once the server has it on disk.
func (q *Queue) enqueue(ctx context.Context, c call, body []byte) error {
	q.publishing.RLock()
	defer q.publishing.RUnlock()
	e, err := q.engine()
	if err != nil {
		return err
	}
	meta, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode the call: %w", err)
	}
	msg := nats.NewMsg(subjectBase + c.Function)
	msg.Header.Set(callHeader, string(meta))
	msg.Data = body
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := e.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("store the call: %w", err)
	}
	return nil
}

// validFunction: NAME or NAME.NAMESPACE of DNS labels, which is also what
// a NATS subject token may hold.
func validFunction(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) > 2 {
		return false
	}
	for _, p := range parts {
		if p == "" || len(p) > 63 {
			return false
		}
		for _, r := range p {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func parseCallback(s string) (string, error) {
	u, err := urlParse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("X-Callback-Url %q: want an http or https URL", s)
	}
	return u.String(), nil
}

// depth is the number of calls accepted and not finished.
func (q *Queue) depth() float64 {
	q.mu.Lock()
	e := q.eng
	q.mu.Unlock()
	if e == nil {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	info, err := e.stream.Info(ctx)
	if err != nil {
		return 0
	}
	return float64(info.State.Msgs)
}

// slot waits for one of the function's in-flight slots.
func (q *Queue) slot(ctx context.Context, fn string, alive func()) (release func(), err error) {
	q.slotsMu.Lock()
	ch, ok := q.slots[fn]
	if !ok {
		ch = make(chan struct{}, q.cfg.MaxInflight)
		q.slots[fn] = ch
	}
	q.slotsMu.Unlock()
	tick := time.NewTicker(q.cfg.AckWait / 3)
	defer tick.Stop()
	for {
		select {
		case ch <- struct{}{}:
			return func() { <-ch }, nil
		case <-tick.C:
			alive()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// StoreDir is STATE_DIR/nats.
func StoreDir(stateDir string) string { return filepath.Join(stateDir, "nats") }
