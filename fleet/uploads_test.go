package fleet

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/faas-criu/faas-criu/api"
)

// TestUploaderKeepsNewestOffer: offers that wait are replaced, not
// accumulated: the older snapshot is removed when a newer one of the same
// function comes, and one of each function waits.
func TestUploaderKeepsNewestOffer(t *testing.T) {
	u := &Uploader{pending: map[api.Key]offered{}, wake: make(chan struct{}, 1)}
	dir := func(name string) string {
		d := filepath.Join(t.TempDir(), name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := api.Key{Namespace: "ns", Name: "a"}, api.Key{Namespace: "ns", Name: "b"}
	old, newer, other := dir("old"), dir("newer"), dir("other")
	u.Offer(a, KindCheckpoint, old)
	u.Offer(b, KindBackup, other)
	u.Offer(a, KindBackup, newer)
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("the replaced snapshot is still there: %v", err)
	}
	got := map[api.Key]offered{}
	for k, o, ok := u.next(); ok; k, o, ok = u.next() {
		got[k] = o
	}
	if len(got) != 2 || got[a] != (offered{KindBackup, newer}) || got[b] != (offered{KindBackup, other}) {
		t.Errorf("waiting: %+v, want a's newer backup and b's", got)
	}
}
