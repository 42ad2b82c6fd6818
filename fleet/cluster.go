package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/faas-criu/faas-criu/internal/natsstart"
	"github.com/faas-criu/faas-criu/internal/ticker"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bucketsStore is the server's room for the buckets (small: a few KB per
// box, function and secret, with history) and their Raft logs, kept free
// of checkpoints.
const bucketsStore = 256 << 20

// The KV buckets.
const (
	boxesBucket     = "faas_criu_boxes"
	functionsBucket = "faas_criu_functions"
	secretsBucket   = "faas_criu_secrets"
)

// Record is a function's entry in the functions bucket: the deployment as
// posted and the box it runs on.
type Record struct {
	Deployment json.RawMessage `json:"deployment"`
	Box        string          `json:"box"`
	Placed     string          `json:"placed"` // why there
	At         time.Time       `json:"at"`
	// Epoch counts the changes of owner (see lease.go).
	Epoch uint64 `json:"epoch,omitempty"`
	// From, FailedAt: the box that lost it in the last takeover, and when.
	From     string     `json:"from,omitempty"`
	FailedAt *time.Time `json:"failedAt,omitempty"`
	// Adopt: Box is to bring it up (a takeover); Restored then says from
	// what.
	Adopt    bool   `json:"adopt,omitempty"`
	Restored string `json:"restored,omitempty"`

	rev uint64 // its revision in KV, for the next write on it
}

// Fleet is this box's membership.
type Fleet struct {
	cfg    Config
	srv    *server.Server // nil with an existing NATS
	nc     *nats.Conn
	client *http.Client
	key    []byte

	mu      sync.RWMutex
	joined  bool
	err     error
	boxes   jetstream.KeyValue
	funcs   jetstream.KeyValue
	secrets jetstream.KeyValue
	objects jetstream.ObjectStore // checkpoints (objects.go)
	records map[string]Record     // key -> record, kept by a watch
	live    map[string]Box        // name -> box, kept by a watch
	// beat is when this box last saw each box renew its lease (its own
	// monotonic clock, see lease.go), and beatRev the revision it saw: an
	// entry that expires is dropped without a word to the watchers, so
	// liveness is judged by the age of the last renewal seen.
	beat     map[string]time.Time
	beatRev  map[string]uint64
	joinedAt time.Time

	local    LocalSecrets // nil: secrets are not kept in step
	prov     Local        // nil: no takeover, no local fencing
	restorer Restorer     // nil: this box does not restore (migrate.go)
	images   Images       // nil: images are not stored (images.go)
	lease    lease
	warned   map[string]uint64
	// rewatch cancels the current watches, which then start again.
	rewatch []context.CancelFunc

	// replicas is the buckets' (and the asynchronous calls' stream's),
	// set with joined (under mu).
	replicas int

	done chan struct{}
}

// Start starts the embedded server (or connects to the given NATS) and
// joins in the background: the API serves at once, and fleet operations
// answer 503 until the cluster has a JetStream leader and the buckets.
func Start(ctx context.Context, cfg Config) (*Fleet, error) {
	key, err := loadKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	f := &Fleet{
		cfg: cfg, key: key,
		client:  &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 90 * time.Second}},
		records: map[string]Record{},
		live:    map[string]Box{},
		beat:    map[string]time.Time{},
		beatRev: map[string]uint64{},
		warned:  map[string]uint64{},
		lease:   lease{instance: instanceOf(cfg)},
		done:    make(chan struct{}),
	}
	replicas := 1
	if cfg.NATSURL != "" {
		if f.nc, err = nats.Connect(cfg.NATSURL, nats.Name("faas-criu "+cfg.Box), nats.MaxReconnects(-1)); err != nil {
			return nil, fmt.Errorf("fleet: connect to %s: %w", cfg.NATSURL, err)
		}
		replicas = min(3, max(1, len(f.nc.Servers())))
	} else {
		if f.srv, err = startServer(cfg); err != nil {
			return nil, err
		}
		if f.nc, err = nats.Connect("", nats.InProcessServer(f.srv), nats.Name("faas-criu "+cfg.Box), nats.MaxReconnects(-1)); err != nil {
			f.srv.Shutdown()
			return nil, fmt.Errorf("fleet: connect to the embedded server: %w", err)
		}
		replicas = min(3, 1+otherRoutes(cfg))
	}
	go f.join(ctx, replicas)
	return f, nil
}

// otherRoutes counts the routes that are not this box's own listener (a
// box may be given the whole list).
func otherRoutes(cfg Config) int {
	n := 0
	for _, r := range cfg.Routes {
		if !strings.HasSuffix(r, "://"+cfg.ClusterListen) {
			n++
		}
	}
	return n
}

func startServer(cfg Config) (*server.Server, error) {
	host, portS, err := net.SplitHostPort(cfg.ClusterListen)
	if err != nil {
		return nil, fmt.Errorf("fleet: --cluster-listen %q: %w", cfg.ClusterListen, err)
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		return nil, fmt.Errorf("fleet: --cluster-listen %q: port: %w", cfg.ClusterListen, err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	opts := &server.Options{
		ServerName: cfg.Box,
		// The provider connects in process; a server with routes needs a
		// client listener all the same (routing waits for it), so it gets
		// a random port on loopback only.
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
		JetStream:          true,
		StoreDir:           cfg.Dir,
		JetStreamMaxMemory: 16 << 20,
		// The checkpoints (objects.go), the asynchronous calls and the
		// buckets each have room of their own: the first two are streams
		// bounded below this limit, which refuse what does not fit,
		// because a server past its limit refuses every write, the
		// leases' included (and its streams' leaders step down).
		JetStreamMaxStore: cfg.objectStore() + cfg.QueueStore + bucketsStore,
		MaxPayload:        cfg.MaxPayload, // 0: NATS's 1 MiB
		NoSigs:            true,
		NoLog:             true,
		Cluster: server.ClusterOpts{
			Name:      "faas-criu",
			Host:      host,
			Port:      port,
			Advertise: cfg.ClusterAdvertise,
		},
		Routes: server.RoutesFromStr(strings.Join(cfg.Routes, ",")),
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("fleet: embedded NATS server: %w", err)
	}
	if err := natsstart.Start(srv, startWait); err != nil {
		if errors.Is(err, natsstart.ErrTimeout) {
			return nil, fmt.Errorf("fleet: the embedded NATS server did not start within %s (is %s free?)", startWait, cfg.ClusterListen)
		}
		return nil, fmt.Errorf("fleet: the embedded NATS server (--cluster-listen %s, store %s) did not start: %w", cfg.ClusterListen, cfg.Dir, err)
	}
	return srv, nil
}

// startWait bounds the embedded server's start (listeners up).
const startWait = 30 * time.Second

// join creates (or opens) the buckets once the cluster can, then
// heartbeats and watches until ctx ends.
func (f *Fleet) join(ctx context.Context, replicas int) {
	defer close(f.done)
	js, err := jetstream.New(f.nc)
	if err != nil {
		f.fail(fmt.Errorf("fleet: jetstream: %w", err))
		return
	}
	var boxes, funcs, secrets jetstream.KeyValue
	var objects jetstream.ObjectStore
	start := time.Now()
	for {
		// A cluster elects its JetStream leader once enough boxes are up:
		// until then bucket creation fails, and is tried again.
		boxes, funcs, secrets, err = buckets(ctx, js, replicas)
		if err == nil {
			objects, err = objectStore(ctx, js, replicas, f.cfg.objectStore())
		}
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > 10*time.Second {
			slog.Warn("fleet: not joined yet", "box", f.cfg.Box, "err", err)
			start = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
	f.mu.Lock()
	f.boxes, f.funcs, f.secrets, f.objects = boxes, funcs, secrets, objects
	f.mu.Unlock()
	if err := f.heartbeat(ctx); err != nil {
		slog.Warn("fleet: first heartbeat", "err", err)
	}
	f.startWatches(ctx, funcs, boxes, secrets)
	// Every record before serving: a box that comes back must know which
	// of its functions were taken over meanwhile.
	for f.resync(ctx) != nil && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
	}
	f.dropTakenOver(ctx)
	f.mu.Lock()
	f.joined, f.joinedAt, f.replicas = true, time.Now(), replicas
	f.mu.Unlock()
	slog.Info("fleet: joined", "box", f.cfg.Box, "advertise", f.cfg.Advertise, "replicas", replicas)
	go ticker.Every(ctx, HeartbeatEvery/4, func() { f.guard(ctx) })
	go ticker.Every(ctx, HeartbeatEvery, func() { f.failover(ctx) })
	failing := false // logged once until the next renewal, not every beat
	ticker.Every(ctx, HeartbeatEvery, func() {
		err := f.heartbeat(ctx)
		switch {
		case err != nil && !failing:
			slog.Warn("fleet: heartbeat", "box", f.cfg.Box, "err", err)
		case err == nil && failing:
			slog.Info("fleet: heartbeat renewed again", "box", f.cfg.Box)
		}
		failing = err != nil
		if err == nil {
			f.unstall()
		}
	})
}

// startWatches keeps the records, the boxes and the secrets in step with
// KV.
func (f *Fleet) startWatches(ctx context.Context, funcs, boxes, secrets jetstream.KeyValue) {
	go f.watch(ctx, funcs, func(e jetstream.KeyValueEntry, del bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if del {
			delete(f.records, e.Key())
			return
		}
		var r Record
		if json.Unmarshal(e.Value(), &r) == nil && e.Revision() >= f.records[e.Key()].rev {
			r.rev = e.Revision()
			f.records[e.Key()] = r
		}
	})
	go f.watch(ctx, boxes, func(e jetstream.KeyValueEntry, del bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if del {
			delete(f.live, e.Key())
			return
		}
		var b Box
		if json.Unmarshal(e.Value(), &b) != nil {
			return
		}
		f.live[e.Key()] = b
		// A watch that restarts delivers the last entries again: only a
		// new revision is a renewal.
		if e.Revision() != f.beatRev[e.Key()] {
			f.beat[e.Key()], f.beatRev[e.Key()] = time.Now(), e.Revision()
		}
	})
	go f.watch(ctx, secrets, func(e jetstream.KeyValueEntry, del bool) {
		f.applySecret(e.Key(), e.Value(), e.Created(), del)
	})
}

func buckets(ctx context.Context, js jetstream.JetStream, replicas int) (b, fn, s jetstream.KeyValue, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if b, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: boxesBucket, Replicas: replicas, TTL: BoxTTL, History: 1, Storage: jetstream.FileStorage,
		Description: "faas-criu boxes: their API address, labels and free memory, renewed by heartbeat",
	}); err != nil {
		return nil, nil, nil, fmt.Errorf("bucket %s: %w", boxesBucket, err)
	}
	if fn, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: functionsBucket, Replicas: replicas, History: 5, Storage: jetstream.FileStorage,
		Description: "faas-criu functions: the deployment as posted and the box that runs it",
	}); err != nil {
		return nil, nil, nil, fmt.Errorf("bucket %s: %w", functionsBucket, err)
	}
	if s, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: secretsBucket, Replicas: replicas, History: 1, Storage: jetstream.FileStorage,
		Description: "faas-criu secrets, AES-GCM encrypted with the fleet key",
	}); err != nil {
		return nil, nil, nil, fmt.Errorf("bucket %s: %w", secretsBucket, err)
	}
	return b, fn, s, nil
}

func objectStore(ctx context.Context, js jetstream.JetStream, replicas int, maxBytes int64) (jetstream.ObjectStore, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	obs, err := js.CreateOrUpdateObjectStore(ctx, objectsConfig(replicas, maxBytes))
	if err != nil {
		return nil, fmt.Errorf("object store %s: %w", objectsBucket, err)
	}
	return obs, nil
}

func (f *Fleet) watch(ctx context.Context, kv jetstream.KeyValue, apply func(e jetstream.KeyValueEntry, del bool)) {
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(ctx)
		f.mu.Lock()
		f.rewatch = append(f.rewatch, cancel)
		f.mu.Unlock()
		w, err := kv.WatchAll(wctx)
		if err != nil {
			cancel()
			time.Sleep(time.Second)
			continue
		}
		for e := range w.Updates() {
			if e == nil {
				continue // the end of the initial values
			}
			apply(e, e.Operation() != jetstream.KeyValuePut)
		}
		w.Stop()
		cancel()
	}
}

// unstall restarts the watches when this box's own heartbeat, written
// fine, has not come back through them for three beats: a watch (an
// ordered consumer) was seen to stall for good when another box of the
// cluster died, and every box then looked dead to the box watching.
func (f *Fleet) unstall() {
	f.mu.Lock()
	at, ok := f.beat[f.cfg.Box]
	if !ok || time.Since(at) < 3*HeartbeatEvery {
		f.mu.Unlock()
		return
	}
	cancels := f.rewatch
	f.rewatch = nil
	f.mu.Unlock()
	slog.Warn("fleet: the watches stalled: restarting them", "box", f.cfg.Box, "last_beat_seen", at)
	for _, c := range cancels {
		c()
	}
}

func (f *Fleet) fail(err error) {
	slog.Error("fleet: cannot join", "err", err)
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// Close leaves: the heartbeat stops (the entry expires) and the server
// shuts down.
func (f *Fleet) Close() {
	if f.nc != nil {
		f.nc.Close()
	}
	if f.srv != nil {
		f.srv.Shutdown()
		f.srv.WaitForShutdown()
	}
}

// Boxes returns the live boxes, each with its count of functions.
func (f *Fleet) Boxes() []Box {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []Box
	for _, b := range f.live {
		if !f.alive(b.Name) {
			continue
		}
		for _, r := range f.records {
			if r.Box == b.Name {
				b.Functions++
			}
		}
		out = append(out, b)
	}
	return out
}

func (f *Fleet) state() (ready bool, err error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.joined, f.err
}

// record returns a function's record and its box, if live.
func (f *Fleet) record(key string) (Record, Box, bool, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.records[key]
	if !ok {
		return r, Box{}, false, false
	}
	b, live := f.live[r.Box]
	live = live && f.alive(r.Box)
	return r, b, true, live
}

// alive says whether this box saw the box renew its lease within BoxTTL
// (f.mu held).
func (f *Fleet) alive(name string) bool {
	if name == f.cfg.Box {
		// Its own lease, not the watch's echo of it (a watch stalls for
		// a while after a stream changes leader).
		f.lease.mu.Lock()
		defer f.lease.mu.Unlock()
		return !f.lease.fenced && time.Since(f.lease.renewed) < FenceAfter
	}
	at, ok := f.beat[name]
	return ok && time.Since(at) < BoxTTL
}

// lookup is record, asking KV when the watch has not brought the record
// yet (a function deployed through another box a moment ago).
func (f *Fleet) lookup(ctx context.Context, key string) (Record, Box, bool, bool) {
	rec, box, known, live := f.record(key)
	f.mu.RLock()
	funcs := f.funcs
	f.mu.RUnlock()
	if known || funcs == nil {
		return rec, box, known, live
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	e, err := funcs.Get(ctx, key)
	if err != nil {
		return rec, box, false, false // not found, or KV unreachable: local
	}
	f.setRecord(key, e.Value(), e.Revision())
	return f.record(key)
}

// memAvailable reads MemAvailable from /proc/meminfo (0 if unreadable).
func memAvailable() int64 {
	fh, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer fh.Close()
	s := bufio.NewScanner(fh)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "MemAvailable:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
