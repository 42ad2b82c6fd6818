package fleet

import (
	"context"
	"net/http"
	"strings"

	"github.com/nats-io/nats.go"
)

// UnreachableHeader marks an answer the fleet gave in place of a function's
// box (it names the box): that box is not heartbeating, or could not be
// reached. The function itself did not answer.
const UnreachableHeader = "X-Faas-Criu-Fleet-Unreachable"

// QueueConn is the fleet's connection for the asynchronous queue, with the
// replicas its stream should have (those of the buckets), once this box has
// joined.
func (f *Fleet) QueueConn() (*nats.Conn, int, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.nc, f.replicas, f.joined
}

// Wait says whether an asynchronous call of fn (NAME or NAME.NAMESPACE)
// must wait rather than run: with answer nil, because fn runs on another
// box, which is not heartbeating; otherwise, because answer is the fleet's
// own (UnreachableHeader), not the function's. Functions the fleet does
// not know run here, as their synchronous calls do.
func (f *Fleet) Wait(ctx context.Context, fn string, answer http.Header) bool {
	if answer != nil {
		return answer.Get(UnreachableHeader) != ""
	}
	name, ns, _ := strings.Cut(fn, ".")
	rec, _, known, live := f.lookup(ctx, key(ns, name))
	return known && rec.Box != f.cfg.Box && !live
}
