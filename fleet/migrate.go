package fleet

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/faas-criu/faas-criu/api"
)

// Restorer restores a function on this box from a checkpoint unpacked in
// dir (the provider's ImportDir); why is what its status says until it
// wakes.
type Restorer func(ctx context.Context, dir string, replace bool, why string) error

// SetRestorer gives the fleet this box's way to restore a function.
func (f *Fleet) SetRestorer(r Restorer) {
	f.mu.Lock()
	f.restorer = r
	f.mu.Unlock()
}

// Restore restores the function whose stored checkpoint m describes on
// this box: fetched, unpacked, restored, and the copy removed. Ownership
// is the caller's business (a migration moves it once this succeeded).
func (f *Fleet) Restore(ctx context.Context, m Meta, replace bool) error {
	f.mu.RLock()
	restore := f.restorer
	f.mu.RUnlock()
	if restore == nil {
		return errors.New("fleet: this box cannot restore functions")
	}
	base := os.TempDir()
	if f.cfg.Dir != "" {
		base = filepath.Dir(f.cfg.Dir) // STATE_DIR/fleet
	}
	if err := os.MkdirAll(base, 0o700); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(base, "restore-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	start := time.Now()
	if err := f.Objects().Fetch(ctx, m, dir); err != nil {
		return err
	}
	fetched := time.Since(start)
	if err := f.ensureImage(ctx, dir); err != nil {
		return err
	}
	why := fmt.Sprintf("restored from the %s %s took at %s", m.Kind, m.Box, m.TakenAt.Format(time.RFC3339Nano))
	if err := restore(ctx, dir, replace, why); err != nil {
		return fmt.Errorf("restore %s from the fleet's store: %w", m.Key, err)
	}
	slog.Info("fleet: function restored from the store", "function", m.Key.String(), "kind", m.Kind, "from", m.Box,
		"taken", m.TakenAt, "stored", m.Size, "fetch", fetched.Round(time.Millisecond), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// restoreRequest is the body of POST /system/fleet/restore: the stored
// checkpoint to restore (Meta, as a migration names it) or the function's
// newest, and whether this box then claims the function.
type restoreRequest struct {
	Meta         *Meta  `json:"meta,omitempty"`
	FunctionName string `json:"functionName,omitempty"`
	Namespace    string `json:"namespace,omitempty"`
	Replace      bool   `json:"replace,omitempty"`
	// Claim moves the function's record to this box once it is restored,
	// by a compare-and-set, and only if its box is not live: a function
	// whose box answers moves by migration.
	Claim bool `json:"claim,omitempty"`
}

// RestoreHandler answers POST /system/fleet/restore: this box restores a
// function from the fleet's store (a migration's step on its target box,
// or an operator bringing back the function of a dead box, with claim).
func (f *Fleet) RestoreHandler(w http.ResponseWriter, r *http.Request) {
	var req restoreRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, maxDefinition)).Decode(&req); err != nil || (req.Meta == nil && req.FunctionName == "") {
		http.Error(w, `want {"meta": a stored checkpoint's Meta} or {"functionName": NAME, "claim": true}`, http.StatusBadRequest)
		return
	}
	k := api.Key{Namespace: cmp.Or(req.Namespace, defaultNamespace), Name: req.FunctionName}
	if req.Meta != nil {
		k = req.Meta.Key
	}
	var rev uint64
	var rec Record
	if req.Claim {
		var code int
		var err error
		if rec, rev, code, err = f.claimable(r.Context(), k); err != nil {
			http.Error(w, err.Error(), code)
			return
		}
	}
	m, err := f.restoreNamed(r.Context(), k, req.Meta, req.Replace)
	if err == nil && req.Claim {
		err = f.claim(r.Context(), k, rec, rev, m)
	}
	if err != nil {
		code := http.StatusBadGateway
		switch {
		case errors.Is(err, ErrReplaced), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			code = http.StatusConflict
		case errors.Is(err, ErrNoObject):
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (f *Fleet) restoreNamed(ctx context.Context, k api.Key, m *Meta, replace bool) (Meta, error) {
	if m == nil {
		newest, err := f.Objects().Newest(ctx, k)
		if err != nil {
			return Meta{}, err
		}
		m = &newest
	}
	return *m, f.Restore(ctx, *m, replace)
}

// claimable reads k's record for a claim: refused while its box is live.
func (f *Fleet) claimable(ctx context.Context, k api.Key) (Record, uint64, int, error) {
	var rec Record
	e, err := f.getRecord(ctx, k)
	if err != nil {
		return rec, 0, http.StatusNotFound, err
	}
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return rec, 0, http.StatusBadGateway, fmt.Errorf("fleet: record of %s: %w", k, err)
	}
	if _, _, _, live := f.record(objectName(k)); live || rec.Box == f.cfg.Box {
		return rec, 0, http.StatusConflict, fmt.Errorf("fleet: %s runs on box %s, which is live: migrate it instead", k, rec.Box)
	}
	return rec, e.Revision(), 0, nil
}

// claim moves k's record to this box from revision rev; if it changed
// meanwhile, the copy restored here is removed.
func (f *Fleet) claim(ctx context.Context, k api.Key, rec Record, rev uint64, m Meta) error {
	from := rec.Box
	// A change of owner, like a takeover (lease.go): the epoch goes up.
	rec.Box, rec.At, rec.Epoch = f.cfg.Box, time.Now().UTC(), rec.Epoch+1
	rec.Placed = fmt.Sprintf("restored from the %s %s took at %s (box %s was down)", m.Kind, m.Box, m.TakenAt.Format(time.RFC3339), from)
	v, _ := json.Marshal(rec)
	nrev, err := f.funcs.Update(ctx, objectName(k), v, rev)
	if err != nil {
		self := &clusterTarget{f: f, key: k, to: Box{Name: f.cfg.Box, URL: f.cfg.Advertise}}
		self.undo(context.WithoutCancel(ctx))
		return fmt.Errorf("fleet: %s restored here but not claimed: %w; the copy here was removed", k, err)
	}
	f.setRecord(objectName(k), v, nrev)
	slog.Info("fleet: function claimed", "function", k.String(), "from", from, "kind", m.Kind, "taken", m.TakenAt)
	return nil
}

// getRecord reads k's record and its revision. The bucket allows direct
// reads, which a replica a moment behind may answer: a record not found is
// looked for again for a while (a stale revision only fails the
// compare-and-set that follows, which is safe).
func (f *Fleet) getRecord(ctx context.Context, k api.Key) (jetstream.KeyValueEntry, error) {
	deadline := time.Now().Add(readLag)
	for {
		e, err := f.funcs.Get(ctx, objectName(k))
		if err == nil || !errors.Is(err, jetstream.ErrKeyNotFound) || time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("fleet: record of %s: %w", k, err)
			}
			return e, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CheckpointHandler answers GET /system/fleet/checkpoints/NAME[?namespace=]:
// the function's stored checkpoint (404: none).
func (f *Fleet) CheckpointHandler(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/system/fleet/checkpoints/")
	k := api.Key{Namespace: cmp.Or(r.URL.Query().Get("namespace"), defaultNamespace), Name: name}
	m, err := f.Objects().Newest(r.Context(), k)
	switch {
	case errors.Is(err, ErrNoObject):
		http.Error(w, err.Error(), http.StatusNotFound)
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		writeJSON(w, http.StatusOK, m)
	}
}

// migrate sends POST /system/migrate to the function's box.
func (f *Fleet) migrate(w http.ResponseWriter, r *http.Request, next http.Handler) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxDefinition))
	if err != nil {
		http.Error(w, "reading the request: "+err.Error(), http.StatusBadRequest)
		return
	}
	var req api.MigrateRequest
	_ = json.Unmarshal(body, &req)
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	if req.FunctionName == "" {
		next.ServeHTTP(w, r) // its own answer to a bad request
		return
	}
	f.toOwner(w, r, next, req.FunctionName, req.Namespace)
}

// MigrationTarget returns the target of a migration of the function k to
// url through the cluster when url is a live box's and the function is the
// fleet's, run here: the archive goes to the object store, the box at url
// restores from there, and then the function's record names that box, by
// a compare-and-set on the record's revision read when the move began. If
// the record changed meanwhile (another box took the function over), the
// copy at url is removed and the migration fails, so the function never
// has two owners. Otherwise (ok false) the migration is the plain one.
func (f *Fleet) MigrationTarget(k api.Key, url, user, password, token string, plain api.MigrationTarget) (api.MigrationTarget, bool) {
	if ready, _ := f.state(); !ready {
		return nil, false
	}
	var to Box
	for _, b := range f.Boxes() {
		if strings.TrimRight(b.URL, "/") == strings.TrimRight(url, "/") {
			to = b
		}
	}
	rec, _, known, _ := f.record(key(k.Namespace, k.Name))
	if to.Name == "" || !known || rec.Box != f.cfg.Box || to.Name == f.cfg.Box {
		return nil, false
	}
	if k.Namespace == "" {
		k.Namespace = defaultNamespace
	}
	auth := ""
	switch {
	case token != "":
		auth = "Bearer " + token
	case user != "":
		auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	}
	return &clusterTarget{MigrationTarget: plain, f: f, key: k, to: to, auth: auth}, true
}

// clusterTarget is a migration to another box of the fleet. The image
// still goes straight to the target (plain), as does the check.
type clusterTarget struct {
	api.MigrationTarget
	f    *Fleet
	key  api.Key
	to   Box
	auth string
	rev  uint64 // the record's revision when the move began
	rec  Record
}

// Check checks the target, and that this box owns the function: the
// revision read here is the one the ownership moves from.
func (t *clusterTarget) Check(ctx context.Context) error {
	if err := t.MigrationTarget.Check(ctx); err != nil {
		return err
	}
	e, err := t.f.getRecord(ctx, t.key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(e.Value(), &t.rec); err != nil {
		return fmt.Errorf("fleet: record of %s: %w", t.key, err)
	}
	if t.rec.Box != t.f.cfg.Box {
		return fmt.Errorf("fleet: %s runs on box %s, not on %s", t.key, t.rec.Box, t.f.cfg.Box)
	}
	t.rev = e.Revision()
	return nil
}

// Import stores the archive, has the target restore it, and moves the
// ownership.
func (t *clusterTarget) Import(ctx context.Context, r io.Reader, replace bool) error {
	m, err := t.f.Objects().PutStream(ctx, t.key, KindCheckpoint, r)
	if err != nil {
		return err
	}
	body, _ := json.Marshal(restoreRequest{Meta: &m, Replace: replace})
	resp, err := t.f.ask(ctx, t.to, http.MethodPost, "/system/fleet/restore", body, t.auth)
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("box %s did not restore %s from the fleet's store: %s: %s", t.to.Name, t.key, resp.Status, strings.TrimSpace(string(msg)))
	}
	rec := t.rec
	rec.Box, rec.At, rec.Epoch = t.to.Name, time.Now().UTC(), rec.Epoch+1 // a change of owner (lease.go)
	rec.Placed = fmt.Sprintf("migrated from %s", t.f.cfg.Box)
	v, _ := json.Marshal(rec)
	rev, err := t.f.funcs.Update(ctx, objectName(t.key), v, t.rev)
	if err != nil {
		t.undo(context.WithoutCancel(ctx))
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			err = errors.New("its record changed during the move (another box took it over)")
		}
		return fmt.Errorf("fleet: ownership of %s not moved to %s: %w; the copy there was removed", t.key, t.to.Name, err)
	}
	t.f.setRecord(objectName(t.key), v, rev)
	slog.Info("fleet: ownership moved", "function", t.key.String(), "from", t.f.cfg.Box, "to", t.to.Name, "stored", m.Size)
	return nil
}

// undo removes the copy the target restored (the source keeps its own).
func (t *clusterTarget) undo(ctx context.Context) {
	body, _ := json.Marshal(map[string]string{"functionName": t.key.Name, "namespace": t.key.Namespace})
	resp, err := t.f.ask(ctx, t.to, http.MethodDelete, "/system/functions", body, t.auth)
	if err == nil {
		resp.Body.Close()
	}
	if err != nil || resp.StatusCode/100 != 2 {
		slog.Error("fleet: a migrated copy whose ownership did not move stays on its box", "function", t.key.String(), "box", t.to.Name, "err", err)
	}
}
