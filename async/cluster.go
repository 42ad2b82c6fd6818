package async

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Cluster is the fleet a box belongs to, as the queue needs it.
//
// In a fleet the calls are on one stream of the fleet's JetStream,
// replicated on min(3, boxes) servers, and every box takes calls from one
// shared consumer; a call runs through the box's invoker, which forwards it
// to the box that runs the function (the path synchronous calls take).
// Consuming on every box, rather than only on the function's box, keeps
// the queue blind to where functions run: a function that moves (a
// migration, a failover) needs no consumer to move with it, and the calls a
// dead box had taken go to the others after their ack wait.
type Cluster interface {
	// QueueConn returns the fleet's connection and the replicas the
	// stream should have, once this box has joined (ok false before).
	QueueConn() (nc *nats.Conn, replicas int, ok bool)
	// Wait says whether a call of fn must wait rather than run, with no
	// try counted: with answer nil, because fn's box is down; otherwise,
	// because answer is the fleet's own (fn's box could not be reached),
	// not the function's.
	Wait(ctx context.Context, fn string, answer http.Header) bool
}

var errNotJoined = errors.New("async: this box has not joined the fleet's stream yet")

// connectCluster uses the fleet's connection.
func (q *Queue) connectCluster() (*engine, int, error) {
	nc, replicas, ok := q.cfg.Cluster.QueueConn()
	if !ok {
		return nil, 0, errNotJoined
	}
	q.starts.Add(1)
	return &engine{nc: nc}, max(1, replicas), nil
}

// startWhenJoined opens the fleet's stream once this box has joined (and
// the cluster can create it), so that it takes its share of the calls
// whether or not it accepts any. Until then calls are refused (503).
func (q *Queue) startWhenJoined() {
	last := time.Now()
	for {
		e, err := q.start() // not under q.mu: see engine
		if err == nil {
			q.mu.Lock()
			closed := q.closed
			if !closed {
				q.eng = e
			}
			q.mu.Unlock()
			if closed {
				e.stop()
				return
			}
			log.Printf("async: taking calls from the fleet's stream %s", streamName)
			return
		}
		if q.isClosed() {
			return
		}
		if !errors.Is(err, errNotJoined) && time.Since(last) > 10*time.Second {
			log.Printf("async: the fleet's stream: %v (trying again)", err)
			last = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (q *Queue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// openShared opens the fleet's stream and the consumer the boxes share
// (each box takes calls from it; the calls a dead box had taken go to the
// others after their ack wait), creating them when missing. Existing ones
// are updated only when this box's configuration differs, and a failed
// update leaves them as they are: a box that restarts must not wait on an
// update the cluster holds back while the box catches up (seen: over 30 s).
func openShared(ctx context.Context, e *engine, scfg jetstream.StreamConfig, ccfg jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	s, err := e.js.Stream(ctx, streamName)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = e.js.CreateStream(ctx, scfg)
	case err == nil:
		if cur := s.CachedInfo().Config; cur.Replicas != scfg.Replicas || cur.MaxBytes != scfg.MaxBytes || cur.MaxMsgSize != scfg.MaxMsgSize {
			uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, uerr := e.js.UpdateStream(uctx, scfg); uerr != nil {
				log.Printf("async: the fleet's stream %s keeps its configuration: %v", streamName, uerr)
			}
			cancel()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("async: stream %s: %w", streamName, err)
	}
	e.stream = s
	c, err := s.Consumer(ctx, consumerName)
	switch {
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		c, err = s.CreateConsumer(ctx, ccfg)
	case err == nil:
		if cur := c.CachedInfo().Config; cur.AckWait != ccfg.AckWait || cur.MaxAckPending != ccfg.MaxAckPending {
			uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if _, uerr := s.UpdateConsumer(uctx, ccfg); uerr != nil {
				log.Printf("async: the fleet's consumer keeps its configuration: %v", uerr)
			}
			cancel()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("async: consumer: %w", err)
	}
	return c, nil
}

// awaitBox returns once fn's box can run it (at once on one box), telling
// the server the call is alive meanwhile. The call holds no slot while it
// waits.
func (q *Queue) awaitBox(ctx context.Context, fn string, alive func()) error {
	if q.cfg.Cluster == nil || !q.cfg.Cluster.Wait(ctx, fn, nil) {
		return nil
	}
	q.metrics.waitingN.Add(1)
	defer q.metrics.waitingN.Add(-1)
	log.Printf("async: %s: its box is down: its calls wait", fn)
	for q.cfg.Cluster.Wait(ctx, fn, nil) {
		if err := q.pause(ctx, time.Second, alive); err != nil {
			return err
		}
	}
	return nil
}

// pause waits d, keeping the call alive (every third of its ack wait).
func (q *Queue) pause(ctx context.Context, d time.Duration, alive func()) error {
	alive()
	t := time.NewTicker(q.cfg.AckWait / 3)
	defer t.Stop()
	end := time.NewTimer(d)
	defer end.Stop()
	for {
		select {
		case <-t.C:
			alive()
		case <-end.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
