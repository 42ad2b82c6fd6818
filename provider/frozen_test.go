package provider

import (
	"errors"
	"testing"
)

// TestRestartThawsReplicaLeftFrozen: the engine's direct checkpoint
// freezes a container before its dump; a provider killed between that
// freeze and the dump (or during a dump that then failed, which puts the
// freeze back) leaves the container running in the engine's books, its
// processes frozen with their memory. The next provider thaws it when it
// brings the function up: the replica answers again, its count kept.
func TestRestartThawsReplicaLeftFrozen(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	mustInvoke(t, p, "fn", 2)
	_ = p.Close()
	var name string
	for n := range eng.functionContainers() {
		name = n
	}
	eng.freezeCgroup(name)

	p = startTestProvider(t, eng, p.cfg.StateDir)
	mustInvoke(t, p, "fn", 3)
	if got := eng.count("thaw"); got < 1 {
		t.Errorf("%d thaws asked of the engine, want at least 1", got)
	}
	if got := states(eng); got["running"] != 1 || len(got) != 1 {
		t.Errorf("function containers by state %v, want the one running", got)
	}
}

// TestThawLeftFrozenFailureIsLogged: an engine that cannot say whether a
// replica is frozen does not stop the replica from being brought up (it is
// health-checked as before).
func TestThawLeftFrozenFailureIsLogged(t *testing.T) {
	p, eng := newTestProvider(t)
	deploy(t, p, "fn", nil)
	mustInvoke(t, p, "fn", 1)
	_ = p.Close()
	eng.failNext("thaw", errors.New("permission denied"))
	p = startTestProvider(t, eng, p.cfg.StateDir)
	mustInvoke(t, p, "fn", 2)
}
