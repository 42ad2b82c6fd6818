package provider

import (
	"context"
	"github.com/faas-criu/faas-criu/api"
	"io"
	"net"
	"net/http"
	"time"
)

// Annotations naming the paths probed, as in OpenFaaS: the readiness path
// (com.openfaas.ready.http.path, OpenFaaS Pro's readiness probe; the
// watchdogs serve /_/ready for it) and the health path. faas-criu has one
// probe, which decides whether a replica takes requests, so it is a
// readiness probe: it goes to the ready path when one is set, else the
// health path, else /_/health (faas-netes CE probes /_/health for both).
const (
	annotationReadyPath  = "com.openfaas.ready.http.path"
	annotationHealthPath = "com.openfaas.health.http.path"
)

const defaultHealthPath = "/_/health"

func newHealthClient() *http.Client {
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			// No keep-alive: the check must not leave connections into a
			// replica that is about to be checkpointed.
			DisableKeepAlives: true,
			DialContext:       (&net.Dialer{Timeout: time.Second}).DialContext,
		},
		// A redirect is an answer (3xx counts as ready, as for a
		// Kubernetes probe); following it could leave the replica.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func healthPath(fn *function) string {
	fn.mu.Lock()
	defer fn.mu.Unlock()
	if a := fn.rec.Deployment.Annotations; a != nil {
		for _, name := range []string{annotationReadyPath, annotationHealthPath} {
			if p := (*a)[name]; p != "" && p[0] == '/' {
				return p
			}
		}
	}
	return defaultHealthPath
}

// probe makes one readiness request. A replica is ready when it answers
// with a status from 200 to 399, as Kubernetes' HTTP probes (and so
// faas-netes) count it: a 404 is a missing route, not a ready function, and
// an of-watchdog that is not ready yet answers 503.
func (p *Provider) probe(ctx context.Context, addr, path string) bool {
	return p.probeWith(ctx, p.health, addr, path)
}

// probeWith is probe through client c.
func (p *Provider) probeWith(ctx context.Context, c *http.Client, addr, path string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return false
	}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return readyStatus(resp.StatusCode)
}

// readyStatus is the rule for a probe's answer.
func readyStatus(code int) bool { return code >= 200 && code < 400 }

// waitHealthy polls a replica until it answers its health check, quickly at
// first (a restored replica answers at once), then less often.
func (p *Provider) waitHealthy(ctx context.Context, addr, path string) bool {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	defer cancel()
	delay := 2 * time.Millisecond
	for {
		if p.probe(ctx, addr, path) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// markReady health-checks a replica that is running but not yet ready and
// publishes it as an endpoint once it answers. It is a no-op when a check is
// already under way or the replica changed meanwhile.
func (p *Provider) markReady(ctx context.Context, fn *function, r *replica) bool {
	fn.mu.Lock()
	if r.ready || r.checking || r.status != "running" || !r.sandboxUp {
		ready := r.ready
		fn.mu.Unlock()
		return ready
	}
	r.checking = true
	addr := r.addr(p.cfg.FunctionPort)
	fn.mu.Unlock()

	ok := p.waitHealthy(ctx, addr, healthPath(fn))

	fn.mu.Lock()
	defer fn.mu.Unlock()
	r.checking = false
	// A replica being dumped in place, or hibernated so, keeps its
	// container running: its status does not say it cannot serve.
	_, inPlace := fn.rec.InPlace[r.index]
	if ok && fn.replicas[r.index] == r && r.status == "running" && !inPlace {
		r.ready = true
		fn.refreshEndpointsLocked(p.cfg.FunctionPort)
		// The idle clock starts when a replica can take requests: a wake
		// that took a while is not idle time.
		fn.touch()
	}
	return r.ready
}

// waitAvailable waits until n replicas of fn answer their health checks.
func (p *Provider) waitAvailable(ctx context.Context, fn *function, n int) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.ReadyTimeout)
	defer cancel()
	for {
		fn.mu.Lock()
		ready, changed := len(*fn.endpoints.Load()), fn.changed
		fn.mu.Unlock()
		if ready >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return errorf(api.ErrTimeout, "%s: %d of %d replicas answered their health check within %s", fn.key, ready, n, p.cfg.ReadyTimeout)
		}
	}
}
