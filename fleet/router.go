package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/openfaas/faas-provider/types"

	"github.com/faas-criu/faas-criu/api"
)

// Annotations the fleet adds to a function's status.
const (
	BoxAnnotation    = "com.openfaas.criu.box"
	PlacedAnnotation = "com.openfaas.criu.placed"
	// DownAnnotation marks a function whose box stopped heartbeating.
	DownAnnotation = "com.openfaas.criu.box-down"
)

// HopHeader marks a request one box forwards to another: the receiver
// answers it from its own engine, never forwarding it again. It names the
// sender.
const HopHeader = "X-Faas-Criu-Fleet-Hop"

const defaultNamespace = "openfaas-fn"

// maxDefinition bounds a deployment's JSON read for placement.
const maxDefinition = 1 << 20

func key(ns, name string) string {
	if ns == "" {
		ns = defaultNamespace
	}
	return ns + "." + name
}

// Wrap puts the fleet in front of the provider's routes (a mux
// middleware): requests about a function placed on another box go there,
// lists gather every box's, deploys are placed first. Requests a box
// forwarded (HopHeader) and everything else go to next unchanged.
func (f *Fleet) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/function/") && f.gate(w, r) {
			return
		}
		if strings.HasPrefix(r.URL.Path, "/system/scale-function/") && f.fencedScale(w, r) {
			return
		}
		if r.Header.Get(HopHeader) != "" {
			next.ServeHTTP(w, r)
			return
		}
		p := r.URL.Path
		switch {
		case strings.HasPrefix(p, "/function/"):
			f.invoke(w, r, next)
		case p == "/system/functions" && r.Method == http.MethodGet:
			f.list(w, r)
		case p == "/system/functions" && r.Method == http.MethodPost:
			f.deploy(w, r, next)
		case p == "/system/functions" && (r.Method == http.MethodPut || r.Method == http.MethodDelete):
			f.change(w, r, next)
		case strings.HasPrefix(p, "/system/function/") && r.Method == http.MethodGet:
			f.status(w, r, next)
		case strings.HasPrefix(p, "/system/scale-function/"):
			f.toOwner(w, r, next, strings.TrimPrefix(p, "/system/scale-function/"), r.URL.Query().Get("namespace"))
		case p == "/system/logs":
			f.toOwner(w, r, next, r.URL.Query().Get("name"), r.URL.Query().Get("namespace"))
		case p == "/system/migrate" && r.Method == http.MethodPost:
			f.migrate(w, r, next)
		case p == "/system/secrets" && r.Method != http.MethodGet:
			f.secret(w, r, next)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// ready answers 503 while the box has not joined yet.
func (f *Fleet) ready(w http.ResponseWriter) bool {
	ok, err := f.state()
	if ok {
		return true
	}
	msg := "fleet: this box has not joined the cluster yet (waiting for the other boxes)"
	if err != nil {
		msg = err.Error()
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, msg, http.StatusServiceUnavailable)
	return false
}

// gate answers 503 for a function this box must not serve, forwarded or
// not: before it has joined (it does not know yet which of its functions
// were taken over while it was away), while fenced (see lease.go), after
// the fence for a function it fenced until a write confirms it still owns
// it (see confirm), and while a function taken over is being brought up
// here.
func (f *Fleet) gate(w http.ResponseWriter, r *http.Request) bool {
	fn, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/function/"), "/")
	name, ns, _ := strings.Cut(fn, ".")
	k := key(ns, name)
	var why string
	rec, known := f.recordOf(k)
	joined, _ := f.state()
	refused := joined && f.refuses(k) // once: this runs on every call
	switch {
	case !joined:
		why = "this box has not joined the fleet yet"
	case refused && f.Fenced():
		why = "this box lost the cluster and fenced itself: it does not serve its functions until it renews its lease"
	case refused:
		why = "this box is back from a partition and has not confirmed yet that it still owns the function"
	case known && rec.Box == f.cfg.Box && rec.Adopt:
		why = "it is being taken over by this box from box " + rec.From
	default:
		return false
	}
	w.Header().Set("Retry-After", "1")
	// The fleet's answer, not the function's: an asynchronous call waits.
	w.Header().Set(UnreachableHeader, f.cfg.Box)
	http.Error(w, fmt.Sprintf("function %s: %s", fn, why), http.StatusServiceUnavailable)
	return true
}

// fencedScale refuses a scale of a function a fenced box must not serve
// (or one it fenced, not confirmed its own yet: see confirm): a gateway
// scales a function to 1 before it forwards a call, which would wake the
// copy the fence hibernated.
func (f *Fleet) fencedScale(w http.ResponseWriter, r *http.Request) bool {
	name := strings.TrimPrefix(r.URL.Path, "/system/scale-function/")
	if !f.refuses(key(r.URL.Query().Get("namespace"), name)) {
		return false
	}
	why := "this box lost the cluster and fenced itself"
	if !f.Fenced() {
		why = "this box is back from a partition and has not confirmed yet that it still owns the function"
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, fmt.Sprintf("function %s: %s", name, why), http.StatusServiceUnavailable)
	return true
}

// invoke forwards /function/NAME[.NS][/path] to the box that runs it.
// Functions the fleet does not know (or before the box joined) are local.
func (f *Fleet) invoke(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rest := strings.TrimPrefix(r.URL.Path, "/function/")
	fn, _, _ := strings.Cut(rest, "/")
	name, ns, _ := strings.Cut(fn, ".")
	rec, box, known, live := f.lookup(r.Context(), key(ns, name))
	if !known || rec.Box == f.cfg.Box {
		next.ServeHTTP(w, r)
		return
	}
	if !live && box.URL != "" && f.beating(r.Context(), rec.Box) {
		// The watch lagged (its lease was renewed all along), or KV
		// cannot tell right now: forward, the box itself refuses what it
		// must not serve.
		live = true
	}
	if !live {
		w.Header().Set(UnreachableHeader, rec.Box)
		http.Error(w, fmt.Sprintf("function %s runs on box %s, which is not heartbeating", fn, rec.Box), http.StatusServiceUnavailable)
		return
	}
	f.proxy(w, r, box)
}

// proxy streams r to box and its answer back.
func (f *Fleet) proxy(w http.ResponseWriter, r *http.Request, box Box) {
	target, err := url.Parse(box.URL)
	if err != nil {
		http.Error(w, fmt.Sprintf("box %s: bad address %q", box.Name, box.URL), http.StatusBadGateway)
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
			pr.Out.Header.Set(HopHeader, f.cfg.Box)
		},
		Transport: f.client.Transport,
		// Streamed both ways: no buffering of a long answer.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set(UnreachableHeader, box.Name)
			http.Error(w, fmt.Sprintf("box %s (%s): %v", box.Name, box.URL, err), http.StatusBadGateway)
		},
	}
	rp.ServeHTTP(w, r)
}

// toOwner sends a request about one function to its box.
func (f *Fleet) toOwner(w http.ResponseWriter, r *http.Request, next http.Handler, name, ns string) {
	if !f.ready(w) {
		return
	}
	rec, box, known, live := f.lookup(r.Context(), key(ns, name))
	switch {
	case !known || rec.Box == f.cfg.Box:
		next.ServeHTTP(w, r)
	case !live:
		http.Error(w, fmt.Sprintf("function %s runs on box %s, which is not heartbeating", name, rec.Box), http.StatusServiceUnavailable)
	default:
		f.proxy(w, r, box)
	}
}

// ask sends one request to a box (itself included, over HTTP, so that its
// answer is the same whoever asks) marked as a hop.
func (f *Fleet) ask(ctx context.Context, box Box, method, path string, body []byte, auth string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, box.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set(HopHeader, f.cfg.Box)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("box %s (%s): %w", box.Name, box.URL, err)
	}
	return resp, nil
}

// list gathers every live box's functions, each annotated with its box;
// functions placed on a box that stopped heartbeating are listed from
// their records, with no replicas and the box-down annotation.
func (f *Fleet) list(w http.ResponseWriter, r *http.Request) {
	if !f.ready(w) {
		return
	}
	boxes := f.Boxes()
	type answer struct {
		box  Box
		list []types.FunctionStatus
		err  error
		code int
		body []byte
	}
	answers := make([]answer, len(boxes))
	var wg sync.WaitGroup
	for i, b := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := &answers[i]
			a.box = b
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			resp, err := f.ask(ctx, b, http.MethodGet, "/system/functions?"+r.URL.RawQuery, nil, r.Header.Get("Authorization"))
			if err != nil {
				a.err = err
				return
			}
			defer resp.Body.Close()
			a.code = resp.StatusCode
			a.body, a.err = io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			if a.err == nil && a.code == http.StatusOK {
				a.err = json.Unmarshal(a.body, &a.list)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	out := []types.FunctionStatus{}
	for _, a := range answers {
		if a.code == http.StatusUnauthorized || a.code == http.StatusForbidden {
			// The boxes share their credentials: one that refuses them
			// refuses the caller.
			w.Header().Set("WWW-Authenticate", `Basic realm="Restricted"`)
			http.Error(w, string(a.body), a.code)
			return
		}
		if a.err != nil || a.code != http.StatusOK {
			slog.Warn("fleet: list: a box did not answer", "box", a.box.Name, "status", a.code, "err", a.err)
			continue
		}
		for _, st := range a.list {
			ns := st.Namespace
			k := key(ns, st.Name)
			if rec, _, known, _ := f.record(k); known && rec.Box != a.box.Name {
				continue // a leftover on a box it no longer belongs to
			}
			seen[k] = true
			rec, _ := f.recordOf(k)
			out = append(out, annotate(st, a.box.Name, rec, false))
		}
	}
	ns := r.URL.Query().Get("namespace")
	for k, rec := range f.recordsIn(ns) {
		if seen[k] {
			continue
		}
		var dep types.FunctionDeployment
		if json.Unmarshal(rec.Deployment, &dep) != nil {
			continue
		}
		st := types.FunctionStatus{Name: dep.Service, Image: dep.Image, Namespace: dep.Namespace, Labels: dep.Labels, Annotations: dep.Annotations}
		if st.Namespace == "" {
			st.Namespace = defaultNamespace
		}
		out = append(out, annotate(st, rec.Box, rec, true))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

func (f *Fleet) recordsIn(ns string) map[string]Record {
	if ns == "" {
		ns = defaultNamespace
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := map[string]Record{}
	for k, r := range f.records {
		if strings.HasPrefix(k, ns+".") {
			out[k] = r
		}
	}
	return out
}

// annotate adds to a status where the function runs, why there, and after
// a failover from where and what it was restored from.
func annotate(st types.FunctionStatus, box string, rec Record, down bool) types.FunctionStatus {
	a := map[string]string{}
	if st.Annotations != nil {
		for k, v := range *st.Annotations {
			a[k] = v
		}
	}
	a[BoxAnnotation] = box
	if rec.Placed != "" {
		a[PlacedAnnotation] = rec.Placed
	}
	if rec.From != "" && rec.FailedAt != nil {
		a[FailoverAnnotation] = fmt.Sprintf("from %s at %s", rec.From, rec.FailedAt.Format(time.RFC3339))
	}
	if rec.Restored != "" {
		a[RestoredAnnotation] = rec.Restored
	}
	if down {
		a[DownAnnotation] = "true"
	}
	st.Annotations = &a
	return st
}

// status describes a function from the box that runs it.
func (f *Fleet) status(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !f.ready(w) {
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/system/function/")
	ns := r.URL.Query().Get("namespace")
	k := key(ns, name)
	rec, box, known, live := f.lookup(r.Context(), k)
	if !known {
		next.ServeHTTP(w, r)
		return
	}
	if !live {
		var dep types.FunctionDeployment
		_ = json.Unmarshal(rec.Deployment, &dep)
		st := types.FunctionStatus{Name: name, Image: dep.Image, Namespace: dep.Namespace, Labels: dep.Labels, Annotations: dep.Annotations}
		writeJSON(w, http.StatusOK, annotate(st, rec.Box, rec, true))
		return
	}
	resp, err := f.ask(r.Context(), box, http.MethodGet, r.URL.RequestURI(), nil, r.Header.Get("Authorization"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	var st types.FunctionStatus
	if err != nil || resp.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil {
		relay(w, resp, body)
		return
	}
	writeJSON(w, http.StatusOK, annotate(st, rec.Box, rec, false))
}

// deploy places a new function, records it, and has its box deploy it.
func (f *Fleet) deploy(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !f.ready(w) {
		return
	}
	body, dep, ok := readDeployment(w, r)
	if !ok {
		return
	}
	k := key(dep.Namespace, dep.Service)
	if _, box, known, live := f.lookup(r.Context(), k); known {
		// Already in the fleet: its box answers (as a second deploy on
		// one box would).
		if !live {
			http.Error(w, fmt.Sprintf("function %s exists on box %s, which is not heartbeating", dep.Service, box.Name), http.StatusConflict)
			return
		}
		f.forwardBody(w, r, box, body)
		return
	}
	var constraints []string
	if dep.Constraints != nil {
		constraints = dep.Constraints
	}
	box, why, err := Place(f.Boxes(), constraints)
	if err != nil {
		http.Error(w, "fleet: "+err.Error(), http.StatusBadRequest)
		return
	}
	rec, _ := json.Marshal(Record{Deployment: body, Box: box.Name, Placed: why, At: time.Now().UTC()})
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	rev, err := f.funcs.Create(ctx, k, rec)
	if errors.Is(err, jetstream.ErrKeyExists) {
		http.Error(w, fmt.Sprintf("function %s is being deployed from another box", dep.Service), http.StatusConflict)
		return
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("fleet: record %s: %v", k, err), http.StatusServiceUnavailable)
		return
	}
	f.setRecord(k, rec, rev)
	code := f.forwardBody(w, r, box, body)
	if code < 200 || code > 299 {
		// Its box refused it: the fleet forgets it too.
		if err := f.funcs.Delete(context.WithoutCancel(ctx), k, jetstream.LastRevision(rev)); err != nil {
			slog.Warn("fleet: a refused deploy's record stays", "function", k, "err", err)
		}
	}
	slog.Info("fleet: placed", "function", k, "box", box.Name, "why", why, "status", code)
}

// change sends an update or a delete to the function's box and keeps the
// record in step.
func (f *Fleet) change(w http.ResponseWriter, r *http.Request, next http.Handler) {
	if !f.ready(w) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDefinition))
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var probe struct {
		Service      string `json:"service"`
		FunctionName string `json:"functionName"`
		Namespace    string `json:"namespace"`
	}
	_ = json.Unmarshal(body, &probe)
	name := probe.Service
	if r.Method == http.MethodDelete {
		name = probe.FunctionName
	}
	ns := probe.Namespace
	if ns == "" {
		ns = r.URL.Query().Get("namespace")
	}
	k := key(ns, name)
	rec, box, known, live := f.lookup(r.Context(), k)
	if !known {
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
		return
	}
	if !live {
		if r.Method == http.MethodDelete {
			// Its box is gone: the fleet forgets it (a box that comes
			// back after a fence removes what is no longer its own).
			if err := f.funcs.Delete(r.Context(), k); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			f.forgetCheckpoint(r.Context(), ns, name)
			w.WriteHeader(http.StatusAccepted)
			return
		}
		http.Error(w, fmt.Sprintf("function %s runs on box %s, which is not heartbeating", name, rec.Box), http.StatusServiceUnavailable)
		return
	}
	code := f.forwardBody(w, r, box, body)
	ctx := context.WithoutCancel(r.Context())
	switch {
	case r.Method == http.MethodDelete && (code/100 == 2 || code == http.StatusNotFound):
		if err := f.funcs.Delete(ctx, k); err != nil {
			slog.Warn("fleet: a deleted function's record stays", "function", k, "err", err)
		}
		f.forgetCheckpoint(ctx, ns, name)
	case r.Method == http.MethodPut && code/100 == 2:
		rec.Deployment, rec.At = body, time.Now().UTC()
		v, _ := json.Marshal(rec)
		// On the revision read: a takeover meanwhile is not undone.
		if _, err := f.funcs.Update(ctx, k, v, rec.rev); err != nil {
			slog.Warn("fleet: an updated function's record is stale", "function", k, "err", err)
		}
	}
}

// forwardBody sends r with body to box (or to this box's own handler over
// HTTP, the same way) and relays the answer; it returns the status.
func (f *Fleet) forwardBody(w http.ResponseWriter, r *http.Request, box Box, body []byte) int {
	resp, err := f.ask(r.Context(), box, r.Method, r.URL.RequestURI(), body, r.Header.Get("Authorization"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return http.StatusBadGateway
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	relay(w, resp, b)
	return resp.StatusCode
}

func relay(w http.ResponseWriter, resp *http.Response, body []byte) {
	for _, h := range []string{"Content-Type", "WWW-Authenticate", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

// forgetCheckpoint removes a deleted function's stored checkpoint.
func (f *Fleet) forgetCheckpoint(ctx context.Context, ns, name string) {
	if ns == "" {
		ns = defaultNamespace
	}
	if err := f.Objects().Delete(ctx, api.Key{Namespace: ns, Name: name}); err != nil {
		slog.Warn("fleet: a deleted function's stored checkpoint stays", "function", key(ns, name), "err", err)
	}
}

func (f *Fleet) setRecord(k string, v []byte, rev uint64) {
	var r Record
	if json.Unmarshal(v, &r) == nil {
		r.rev = rev
		f.mu.Lock()
		if rev >= f.records[k].rev {
			f.records[k] = r
		}
		f.mu.Unlock()
	}
}

func readDeployment(w http.ResponseWriter, r *http.Request) ([]byte, types.FunctionDeployment, bool) {
	var dep types.FunctionDeployment
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDefinition+1))
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return nil, dep, false
	}
	if len(body) > maxDefinition {
		http.Error(w, "deployment over 1 MiB", http.StatusRequestEntityTooLarge)
		return nil, dep, false
	}
	if err := json.Unmarshal(body, &dep); err != nil || dep.Service == "" {
		http.Error(w, "a deployment with a service name is required", http.StatusBadRequest)
		return nil, dep, false
	}
	return body, dep, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// BoxesHandler answers GET /system/fleet: this box and the live boxes.
func (f *Fleet) BoxesHandler(w http.ResponseWriter, r *http.Request) {
	ready, err := f.state()
	doc := struct {
		Box   string `json:"box"`
		Ready bool   `json:"ready"`
		// Fenced: this box lost the cluster and does not serve its
		// functions until it renews its lease.
		Fenced bool   `json:"fenced,omitempty"`
		Error  string `json:"error,omitempty"`
		Boxes  []Box  `json:"boxes"`
	}{Box: f.cfg.Box, Ready: ready, Fenced: f.Fenced(), Boxes: f.Boxes()}
	if err != nil {
		doc.Error = err.Error()
	}
	sort.Slice(doc.Boxes, func(i, j int) bool { return doc.Boxes[i].Name < doc.Boxes[j].Name })
	writeJSON(w, http.StatusOK, doc)
}
