package provider

import (
	"github.com/faas-criu/faas-criu/api"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A record written while awake had no state ("" was awake); it must load as
// awake, not as an unknown state that every "!= api.StateAwake" reads as asleep.
func TestLoadRecordsNamesTheOldAwakeState(t *testing.T) {
	dir := t.TempDir()
	s, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	ns := filepath.Join(dir, "functions", "openfaas-fn")
	if err := os.MkdirAll(ns, 0o700); err != nil {
		t.Fatal(err)
	}
	old := `{"deployment":{"service":"old","image":"x"},"replicas":1}`
	slept := `{"deployment":{"service":"slept","image":"x"},"replicas":1,"state":"hibernated"}`
	os.WriteFile(filepath.Join(ns, "old.json"), []byte(old), 0o600)
	os.WriteFile(filepath.Join(ns, "slept.json"), []byte(slept), 0o600)
	recs, errs := s.loadRecords()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := recs[api.Key{Namespace: "openfaas-fn", Name: "old"}].State; got != api.StateAwake {
		t.Errorf("old record: state %q, want %q", got, api.StateAwake)
	}
	if got := recs[api.Key{Namespace: "openfaas-fn", Name: "slept"}].State; got != api.StateHibernated {
		t.Errorf("hibernated record: state %q", got)
	}
}

// Writes of different records do not wait for each other (a slow fsync of
// one function's record held every other wake of a fan-out); two writes of
// one record still take turns, the later one on disk.
func TestRecordWritesWaitOnlyForTheirOwnRecord(t *testing.T) {
	s, err := openStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan string, 4), make(chan struct{})
	slow := s.recordPath("openfaas-fn", "slow")
	defer func(w func(string, []byte, os.FileMode) error) { writeRecordFile = w }(writeRecordFile)
	writeRecordFile = func(path string, b []byte, mode os.FileMode) error {
		entered <- filepath.Base(path)
		if path == slow {
			<-release
		}
		return writeFileAtomic(path, b, mode)
	}
	save := func(name string, n int) chan error {
		done := make(chan error, 1)
		go func() { done <- s.saveRecord("openfaas-fn", name, &record{Replicas: n}) }()
		return done
	}
	first := save("slow", 1)
	if got := <-entered; got != "slow.json" {
		t.Fatalf("first write: %s", got)
	}
	second := save("slow", 2) // the same record: waits for the first
	select {
	case err := <-save("other", 1):
		if err != nil {
			t.Fatalf("another record's write: %v", err)
		}
	case <-time.After(5 * time.Second):
		close(release)
		t.Fatal("another record's write waited for slow.json's")
	}
	if got := <-entered; got != "other.json" {
		t.Fatalf("while slow.json is being written, %s was written, want other.json", got)
	}
	select {
	case got := <-entered:
		t.Fatalf("%s was written while its earlier write had not finished", got)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	recs, errs := s.loadRecords()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := recs[api.Key{Namespace: "openfaas-fn", Name: "slow"}].Replicas; got != 2 {
		t.Errorf("slow.json holds replicas %d, want the later write's 2", got)
	}
}
