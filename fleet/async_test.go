package fleet

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// An asynchronous call waits while its function's box is another one that
// stopped heartbeating, or when the answer is the fleet's own (its box
// could not be reached); it runs otherwise.
func TestAsyncCallWaitsOnlyForADownBox(t *testing.T) {
	f := &Fleet{
		cfg: Config{Box: "a"},
		records: map[string]Record{
			key("", "mine"):   {Box: "a"},
			key("", "up"):     {Box: "b"},
			key("dev", "off"): {Box: "c"},
		},
		live: map[string]Box{"a": {Name: "a"}, "b": {Name: "b"}, "c": {Name: "c"}},
		beat: map[string]time.Time{"a": time.Now(), "b": time.Now(), "c": time.Now().Add(-2 * BoxTTL)},
	}
	ctx := context.Background()
	for fn, want := range map[string]bool{"mine": false, "up": false, "off.dev": true, "unknown": false} {
		if got := f.Wait(ctx, fn, nil); got != want {
			t.Errorf("Wait(%s) = %v, want %v", fn, got, want)
		}
	}
	if f.Wait(ctx, "up", http.Header{"Content-Type": {"text/plain"}}) {
		t.Error("a function's own answer made the call wait")
	}
	if !f.Wait(ctx, "up", http.Header{UnreachableHeader: {"b"}}) {
		t.Error("the fleet's unreachable answer did not make the call wait")
	}
}

// The fleet's own answers for a box it cannot reach say so.
func TestUnreachableAnswersAreMarked(t *testing.T) {
	closed := "http://" + freeAddr(t)
	f := &Fleet{cfg: Config{Box: "a"}, client: &http.Client{Transport: &http.Transport{}}}
	w := httptest.NewRecorder()
	f.proxy(w, httptest.NewRequest("GET", "/function/x", nil), Box{Name: "b", URL: closed})
	if w.Code != http.StatusBadGateway || w.Header().Get(UnreachableHeader) != "b" {
		t.Errorf("a box not listening: %d, %s %q", w.Code, UnreachableHeader, w.Header().Get(UnreachableHeader))
	}
	f.records = map[string]Record{key("", "x"): {Box: "b"}}
	f.live, f.beat = map[string]Box{"b": {Name: "b"}}, map[string]time.Time{}
	w = httptest.NewRecorder()
	f.invoke(w, httptest.NewRequest("GET", "/function/x", nil), nil)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get(UnreachableHeader) != "b" {
		t.Errorf("a box not heartbeating: %d, %s %q", w.Code, UnreachableHeader, w.Header().Get(UnreachableHeader))
	}
	// This box's own refusals: not joined yet, then fenced (its own
	// function, x, moved here).
	f.records[key("", "x")] = Record{Box: "a"}
	for _, state := range []string{"not joined", "fenced"} {
		if state == "fenced" {
			f.joined, f.lease.fenced = true, true
		}
		w = httptest.NewRecorder()
		if !f.gate(w, httptest.NewRequest("GET", "/function/x", nil)) || w.Code != http.StatusServiceUnavailable || w.Header().Get(UnreachableHeader) != "a" {
			t.Errorf("a box %s: %d, %s %q", state, w.Code, UnreachableHeader, w.Header().Get(UnreachableHeader))
		}
	}
}
