package provider

import (
	"github.com/faas-criu/faas-criu/api"
	"os"
	"path/filepath"
	"testing"
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
