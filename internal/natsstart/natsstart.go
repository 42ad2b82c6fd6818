// Package natsstart starts an embedded NATS server and says why it did not
// start: the provider's servers run with NoLog, so a fatal error at start
// (a listener that fails, a JetStream store it cannot use) went nowhere and
// was only found out, without a reason, at the end of the start wait. The
// async queue's server and the fleet's share this one rule.
package natsstart

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ErrTimeout is returned (wrapped) when the server neither started nor
// said why within the wait.
var ErrTimeout = errors.New("the embedded NATS server did not start in time")

// Fatal is the server's own first fatal error at start, e.g. "Can't start
// JetStream: storage directory is not a directory" or "Error listening on
// router port: 6222 - listen tcp 127.0.0.1:6222: bind: address already in
// use".
type Fatal struct{ Msg string }

func (f *Fatal) Error() string { return f.Msg }

// Start starts srv and waits until it takes connections, at most wait. If
// it does not, srv is shut down and the error is a *Fatal as soon as the
// server reports one, or wraps ErrTimeout at the end of the wait. It
// replaces srv's logger: the rest of what it says is dropped, as NoLog did.
func Start(srv *server.Server, wait time.Duration) error {
	said := &startLog{fatal: make(chan string, 1)}
	srv.SetLoggerV2(said, false, false, false)
	srv.Start()
	if err := waitStarted(srv, said, wait); err != nil {
		srv.Shutdown()
		return err
	}
	return nil
}

// waitStarted waits in short steps, so that a fatal error, after which the
// server stops starting without closing anything a wait could see, ends
// the wait at once.
func waitStarted(srv *server.Server, said *startLog, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for !srv.ReadyForConnections(100 * time.Millisecond) {
		select {
		case msg := <-said.fatal:
			return &Fatal{Msg: msg}
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w (waited %s)", ErrTimeout, wait)
		}
	}
	return nil
}

// startLog is the embedded server's logger: it keeps the first fatal error
// for waitStarted and drops the rest.
type startLog struct {
	fatal chan string // buffered 1: the first one only
}

func (l *startLog) Fatalf(format string, v ...any) {
	select {
	case l.fatal <- fmt.Sprintf(format, v...):
	default:
	}
}

func (*startLog) Noticef(string, ...any) {}
func (*startLog) Warnf(string, ...any)   {}
func (*startLog) Errorf(string, ...any)  {}
func (*startLog) Debugf(string, ...any)  {}
func (*startLog) Tracef(string, ...any)  {}
