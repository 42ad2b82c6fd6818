package natsstart

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func newServer(t *testing.T, store string) *server.Server {
	t.Helper()
	srv, err := server.NewServer(&server.Options{DontListen: true, JetStream: true, StoreDir: store, NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// A fatal error at start comes back as the server's own words, at once,
// and the server is shut down; a good start is left running.
func TestStart(t *testing.T) {
	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, server.JetStreamStoreDir), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, bad)
	start := time.Now()
	err := Start(srv, 30*time.Second)
	var fatal *Fatal
	if !errors.As(err, &fatal) || !strings.Contains(fatal.Msg, "storage directory is not a directory") {
		t.Fatalf("err %v, want the server's fatal error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the error came after %s, want at once", took.Round(time.Millisecond))
	}
	if srv.Running() {
		t.Error("the server that failed to start is still running")
	}

	srv = newServer(t, t.TempDir())
	if err := Start(srv, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	if !srv.JetStreamEnabled() {
		t.Error("started without JetStream")
	}
}
