package docker

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/client"

	"github.com/faas-criu/faas-criu/provider"
)

// fakeAPI answers /info with the given runtimes and records the HostConfig
// of each container create.
func fakeAPI(t *testing.T, runtimes ...string) (*Engine, *[]map[string]any) {
	t.Helper()
	var created []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/info"):
			rts := map[string]any{}
			for _, rt := range runtimes {
				rts[rt] = map[string]string{"path": rt}
			}
			json.NewEncoder(w).Encode(map[string]any{"ServerVersion": "20.10.24", "Runtimes": rts})
		case strings.HasSuffix(r.URL.Path, "/containers/create"):
			b, _ := io.ReadAll(r.Body)
			var body struct{ HostConfig map[string]any }
			if err := json.Unmarshal(b, &body); err != nil {
				t.Errorf("create body: %v", err)
			}
			created = append(created, body.HostConfig)
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"Id":"c1","Warnings":[]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	c, err := client.NewClientWithOpts(client.WithHost("tcp://"+strings.TrimPrefix(srv.URL, "http://")), client.WithVersion("1.41"))
	if err != nil {
		t.Fatal(err)
	}
	return &Engine{c: c}, &created
}

// The engine's runtimes reach the provider (sorted), and a container spec's
// runtime reaches Docker's HostConfig; an empty one leaves Docker's default.
func TestRuntimeThroughTheAPI(t *testing.T) {
	e, created := fakeAPI(t, "runc", "faas-criu")
	info, err := e.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Runtimes, []string{"faas-criu", "runc"}) {
		t.Errorf("Info().Runtimes = %q", info.Runtimes)
	}
	for _, rt := range []string{"faas-criu", ""} {
		if _, err := e.CreateContainer(context.Background(), provider.ContainerSpec{Name: "f", Image: "i", Runtime: rt}); err != nil {
			t.Fatal(err)
		}
	}
	if len(*created) != 2 {
		t.Fatalf("%d creates", len(*created))
	}
	if got := (*created)[0]["Runtime"]; got != "faas-criu" {
		t.Errorf("HostConfig.Runtime = %v, want faas-criu", got)
	}
	if got, ok := (*created)[1]["Runtime"]; ok && got != "" {
		t.Errorf("HostConfig.Runtime = %v without a runtime in the spec, want none", got)
	}
}
